variable "name" {
  description = "Prefix for every resource name, e.g. \"kurt-prod\"."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range. Split into three /18 private subnets (nodes and pods), three /22 public subnets (load balancers, NAT) and three /22 data subnets (RDS, ElastiCache, MSK) that together form the /20 deploy/base/network-policies.yaml allows egress to."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Exactly three availability zones to spread subnets, nodes and data services over."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Give exactly three availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, but egress from the private subnets stops when its zone fails). False gives one per zone."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Days to keep VPC flow logs in CloudWatch."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

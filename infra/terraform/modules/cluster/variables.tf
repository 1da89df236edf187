variable "name" {
  description = "Cluster name and prefix for its resources, e.g. \"kurt-prod\"."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (deploy/ is validated against the same minor version)."
  type        = string
  default     = "1.33"
}

variable "vpc_id" {
  description = "VPC of the cluster (network module)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control-plane interfaces and the nodes, one per zone."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "Address ranges allowed to reach the public API endpoint (e.g. the office and CI). Empty disables the public endpoint; the private one is always on."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "EC2 instance types of the general node group (several types improve spot/capacity odds)."
  type        = list(string)
  default     = ["m7i.xlarge", "m6i.xlarge"]
}

variable "node_min_size" {
  description = "Fewest nodes; at least one per zone so topology spread can place every service in each zone."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Most nodes the cluster autoscaler (or Karpenter) may run."
  type        = number
  default     = 30
}

variable "node_desired_size" {
  description = "Nodes at creation; the autoscaler changes it afterwards (ignored by later plans)."
  type        = number
  default     = 3
}

variable "node_disk_gib" {
  description = "Root volume size of each node in GiB."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "KMS key that encrypts Kubernetes Secrets and the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

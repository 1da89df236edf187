variable "name" {
  description = "Replication group id and prefix, e.g. \"kurt-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per zone."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Address ranges allowed to connect on 6379 (the cluster's private subnets)."
  type        = list(string)
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "replicas" {
  description = "Replicas of the primary, each in another zone; one of them is promoted automatically when the primary fails."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1
    error_message = "Automatic failover needs at least one replica."
  }
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots (the cache can be rebuilt, rate-limit buckets are short-lived: a few days suffice)."
  type        = number
  default     = 3
}

variable "kms_key_arn" {
  description = "KMS key for data at rest and the slow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the slow log."
  type        = number
  default     = 365
}

variable "auth_update_strategy" {
  description = "How a changed AUTH token is applied: ROTATE (the old token stays valid beside the new one, while the pods roll over to it) or SET (only the new one; the second step of a rotation)."
  type        = string
  default     = "ROTATE"

  validation {
    condition     = contains(["ROTATE", "SET"], var.auth_update_strategy)
    error_message = "Use ROTATE or SET."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Prefix of the bucket names (globally unique across AWS), e.g. \"kurt-prod-123456789012\"."
  type        = string
}

variable "artifact_expiry_days" {
  description = "Days after which report artifacts are deleted (users download them soon after the notification)."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days to keep S3 access logs and CDN logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key for the report artifacts (user data)."
  type        = string
}

variable "writer_role_arns" {
  description = "IAM roles allowed to read and write report artifacts (the pod-identity roles of kurt-reports and kurt-report-worker)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Prefix of the CDN's resources, e.g. \"kurt-prod\"."
  type        = string
}

variable "app_domain" {
  description = "Host name the SPA and its API calls are served on, e.g. \"app.kurt.example\" (DNS CNAME to the distribution)."
  type        = string
}

variable "acm_certificate_arn" {
  description = "ACM certificate for app_domain, issued in us-east-1 (CloudFront's requirement)."
  type        = string
}

variable "spa_bucket" {
  description = "Name of the bucket with the SPA's files (storage module)."
  type        = string
}

variable "spa_bucket_arn" {
  description = "ARN of the SPA bucket."
  type        = string
}

variable "spa_bucket_regional_domain_name" {
  description = "Regional domain of the SPA bucket."
  type        = string
}

variable "edge_origin_domain" {
  description = "Public host name of the Kurt edge (the ingress-nginx load balancer, with a certificate for it), which serves /v1/* behind the CDN."
  type        = string
}

variable "logs_bucket_domain_name" {
  description = "Bucket domain the CDN writes access logs to (storage module)."
  type        = string
}

variable "price_class" {
  description = "CloudFront price class (which edge locations serve the distribution)."
  type        = string
  default     = "PriceClass_100"
}

variable "api_rate_limit_per_5min" {
  description = "Requests per client address per 5 minutes above which the web ACL blocks /v1/* (the edge's own per-key limits act below this)."
  type        = number
  default     = 6000
}

variable "log_retention_days" {
  description = "Days to keep the web ACL's logs."
  type        = number
  default     = 365
}

variable "waf_log_kms_key_arn" {
  description = "KMS key in us-east-1 that encrypts the web ACL's log group."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

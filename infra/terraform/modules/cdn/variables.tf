variable "name" {
  description = "Prefix of the CDN's resources, e.g. \"kurt-prod\"."
  type        = string
}

variable "app_domain" {
  description = "Host name the SPA and its API calls are served on, e.g. \"app.kurt.example\": the distribution's alias, its us-east-1 certificate's name and an alias record in zone_id. The edge's --cors_origins (deploy/overlays/prod) holds https://<this>."
  type        = string
}

variable "zone_id" {
  description = "Public Route 53 hosted zone of app_domain: its alias records and its certificate's validation records."
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
  description = "Host name CloudFront sends /v1/* to (over HTTPS, as the Host header): one the ingress in front of kurt-edge has a rule and a certificate for, e.g. the short domain \"kurt.example\", not the load balancer's AWS name."
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

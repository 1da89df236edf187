output "distribution_id" {
  description = "CloudFront distribution id (for invalidations after an SPA release)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_domain_name" {
  description = "The distribution's own host name, the target of app_domain's alias records."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "distribution_hosted_zone_id" {
  description = "Route 53 zone id of CloudFront, for an alias record."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

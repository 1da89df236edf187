output "artifacts_bucket" {
  description = "Bucket for report artifacts."
  value       = aws_s3_bucket.artifacts.id
}

output "artifacts_bucket_arn" {
  description = "ARN of the report-artifact bucket."
  value       = aws_s3_bucket.artifacts.arn
}

output "spa_bucket" {
  description = "Bucket the SPA's build is uploaded to (aws s3 sync dist/ s3://…)."
  value       = aws_s3_bucket.spa.id
}

output "spa_bucket_arn" {
  description = "ARN of the SPA bucket (the CDN module grants its distribution read access)."
  value       = aws_s3_bucket.spa.arn
}

output "spa_bucket_regional_domain_name" {
  description = "Regional domain of the SPA bucket, the CDN's origin."
  value       = aws_s3_bucket.spa.bucket_regional_domain_name
}

output "logs_bucket_domain_name" {
  description = "Domain of the log bucket, where the CDN writes its access logs."
  value       = aws_s3_bucket.logs.bucket_domain_name
}

output "cluster_name" {
  description = "EKS cluster: aws eks update-kubeconfig --name <this>."
  value       = module.cluster.cluster_name
}

output "data_cidr_block" {
  description = "The data subnets' range; deploy/base/network-policies.yaml allows egress to it."
  value       = module.network.data_cidr_block
}

output "postgres_app_secret_arn" {
  description = "Secret with the kurt role's password, source of the kurt-pg-credentials and kurt-pgbouncer-auth Kubernetes Secrets."
  value       = module.postgres.app_secret_arn
}

output "postgres_master_secret_arn" {
  description = "Secret RDS keeps the kurt_admin password in (for creating the kurt role once)."
  value       = module.postgres.master_user_secret_arn
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint: connect and checkHost of the prod overlay's Redis TLS sidecar (redis-tls.conf)."
  value       = module.redis.primary_endpoint
}

output "redis_auth_secret_arn" {
  description = "Secret with the Redis AUTH token, source of the kurt-redis-auth Kubernetes Secret (KURT_REDIS_PASSWORD)."
  value       = module.redis.auth_secret_arn
}

output "kafka_bootstrap_brokers" {
  description = "MSK bootstrap servers for SASL/SCRAM over TLS (host:9096): the prod overlay's KURT_KAFKA_BROKERS."
  value       = module.kafka.bootstrap_brokers_sasl_scram
}

output "kafka_scram_secret_arns" {
  description = "Secret of each Kafka user by name, sources of the kurt-<service>-kafka Kubernetes Secrets (KURT_KAFKA_SASL_USERNAME, KURT_KAFKA_SASL_PASSWORD)."
  value       = module.kafka.scram_secret_arns
}

output "artifacts_bucket" {
  description = "Bucket for report artifacts."
  value       = module.storage.artifacts_bucket
}

output "spa_bucket" {
  description = "Bucket to upload the SPA build to."
  value       = module.storage.spa_bucket
}

output "cdn_domain_name" {
  description = "CloudFront host name, which app_domain's alias records point at."
  value       = module.cdn.distribution_domain_name
}

output "cdn_distribution_id" {
  description = "CloudFront distribution id, for invalidations."
  value       = module.cdn.distribution_id
}

output "internal_names" {
  description = "Private DNS names the prod overlay uses, and what each points at."
  value       = { for k, r in aws_route53_record.internal : r.name => one(r.records) }
}

output "primary_endpoint" {
  description = "Host name of the current primary (moves with a failover), the name its TLS certificate carries: the prod overlay's Redis TLS sidecar connects to it and checks it."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "Host name that balances over the replicas."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "auth_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token (source of the kurt-redis-auth Kubernetes Secret)."
  value       = aws_secretsmanager_secret.auth.arn
}

output "primary_endpoint" {
  description = "Host name of the current primary (moves with a failover); the services' KURT_REDIS_URL points at it through the private zone."
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

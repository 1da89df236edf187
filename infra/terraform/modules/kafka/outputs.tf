output "bootstrap_brokers_sasl_scram" {
  description = "SASL/SCRAM over TLS bootstrap servers, comma-separated host:9096 (what KURT_KAFKA_BROKERS takes in the prod overlay): the names the brokers' certificates carry."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "scram_secret_arns" {
  description = "Secrets Manager secret of each Kafka user, by user name (sources of the kurt-<service>-kafka Kubernetes Secrets)."
  value       = { for u, s in aws_secretsmanager_secret.scram : u => s.arn }
}

output "bootstrap_brokers" {
  description = "Plaintext bootstrap servers, comma-separated host:9092 (what KURT_KAFKA_BROKERS takes)."
  value       = aws_msk_cluster.this.bootstrap_brokers
}

output "bootstrap_brokers_tls" {
  description = "TLS bootstrap servers, comma-separated host:9094."
  value       = aws_msk_cluster.this.bootstrap_brokers_tls
}

output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

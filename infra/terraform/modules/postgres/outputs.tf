output "primary_address" {
  description = "Host name of the primary (follows a Multi-AZ failover)."
  value       = aws_db_instance.primary.address
}

output "replica_addresses" {
  description = "Host names of the read replicas, in order."
  value       = aws_db_instance.replica[*].address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.primary.port
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the kurt_admin password in."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "app_secret_arn" {
  description = "Secrets Manager secret holding the kurt role's generated password."
  value       = aws_secretsmanager_secret.app.arn
}

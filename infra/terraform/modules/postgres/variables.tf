variable "name" {
  description = "Prefix of the instance identifiers, e.g. \"kurt-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per zone."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Address ranges allowed to connect on 5432: the private subnets, where PgBouncer and the migration Job run."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version (the project builds and tests against 15)."
  type        = string
  default     = "15"
}

variable "instance_class" {
  description = "Instance class of the primary and the replicas."
  type        = string
  default     = "db.r7g.large"
}

variable "replica_instance_class" {
  description = "Instance class of the read replicas; null means the primary's."
  type        = string
  default     = null
}

variable "replica_count" {
  description = "Number of streaming read replicas. Each gets a PgBouncer database (deploy/overlays/prod/pgbouncer-prod.ini) and a name pg-replica-N in the private zone."
  type        = number
  default     = 2
}

variable "allocated_storage_gib" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 200
}

variable "max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 2000
}

variable "max_connections" {
  description = "Server max_connections: PgBouncer replicas x default_pool_size x databases, plus the migration Job and headroom."
  type        = number
  default     = 500
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the generated secrets."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the primary (turn off deliberately before destroying an environment)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

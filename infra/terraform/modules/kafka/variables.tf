variable "name" {
  description = "Cluster name and prefix, e.g. \"kurt-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per zone (one broker per zone per step of three)."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Address ranges allowed to reach the brokers (the cluster's private subnets)."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version on MSK (the project tests against Apache Kafka 4.1 with librdkafka 2.0; the client protocol is the same)."
  type        = string
  default     = "3.9.x"

  # Kafka 4 brokers check the SCRAM nonce strictly (RFC 5802) and reject the proof librdkafka
  # computed before 2.6.1; the services' librdkafka is Debian 12's 2.0.2, so SASL/SCRAM needs 3.x.
  validation {
    condition     = !startswith(var.kafka_version, "4.")
    error_message = "MSK Kafka 4.x rejects the SASL/SCRAM proof of librdkafka < 2.6.1 (Debian 12 ships 2.0.2): keep 3.x until the services' librdkafka is newer."
  }
}

variable "broker_count" {
  description = "Number of brokers, a multiple of the three zones. Raise it when broker CPU or network stays above about 60%."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count % 3 == 0
    error_message = "Use a multiple of three brokers (one per zone)."
  }
}

variable "broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_volume_gib" {
  description = "EBS storage per broker in GiB."
  type        = number
  default     = 500
}

variable "default_partitions" {
  description = "Partitions of a new topic. The upper bound on consumers of a group: keep it at or above the maxReplicas of the consumer HPAs in deploy/base."
  type        = number
  default     = 12
}

variable "scram_users" {
  description = "Kafka users (SASL/SCRAM), one per client: each Kafka-using service (deploy/base: the binaries that link platform/kafka), the release pipeline that creates topics, kafka-exporter."
  type        = list(string)
  default = [
    "kurt-links",
    "kurt-analytics",
    "kurt-reports",
    "kurt-report-worker",
    "kurt-notifications",
    "kurt-release",
    "kafka-exporter",
  ]

  validation {
    condition     = alltrue([for u in var.scram_users : can(regex("^[a-z][a-z0-9-]*$", u))])
    error_message = "User names: lower-case letters, digits and dashes (they are part of the secrets' names)."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for data at rest, the broker log group and the SCRAM secrets (MSK refuses secrets under the default key)."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep broker logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# Kafka: an MSK cluster with a broker per zone, replication factor 3 and min.insync.replicas 2, so
# acks=all writes survive a zone. Topics (kurt.clicks.v1 and the others in docs/development.md) are
# created by the deployment, not by brokers on first use.
#
# Every client authenticates: SASL/SCRAM-SHA-512 over TLS is the only listener (port 9096), no
# plaintext and no anonymous access, so nobody else in the network can forge clicks or "report
# ready" events. Each client has a user of its own (var.scram_users: one per Kafka-using service,
# the release pipeline's, kafka-exporter's), so a leaked password is one user's to revoke, and
# Kafka ACLs can later narrow each to its topics. SCRAM rather than mutual TLS: librdkafka does it
# with a user name and password from a Kubernetes Secret, and MSK's TLS client authentication would
# need an AWS Private CA.

resource "aws_security_group" "this" {
  name        = "${var.name}-kafka"
  description = "Kafka brokers: SASL/SCRAM over TLS from the cluster's private subnets only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "Kafka (SASL/SCRAM over TLS, 9096) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 9096
  to_port           = 9096
  cidr_ipv4         = each.value
}

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-kafka"
  kafka_versions = [var.kafka_version]
  server_properties = join("\n", [
    "auto.create.topics.enable=false",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "num.partitions=${var.default_partitions}",
    "unclean.leader.election.enable=false",
    "offsets.topic.replication.factor=3",
    "transaction.state.log.replication.factor=3",
    "transaction.state.log.min.isr=2",
    "log.retention.hours=168",
  ])
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_gib
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
      iam   = false
    }
  }

  enhanced_monitoring = "PER_TOPIC_PER_PARTITION"

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }

  tags = var.tags
}

# One SCRAM user per client. MSK reads them from Secrets Manager: the names must start with
# AmazonMSK_ and the secrets be encrypted with a customer-managed key (MSK refuses the default
# one). The cluster's secret operator turns each into its pod's own Kubernetes Secret
# (kurt-<service>-kafka: KURT_KAFKA_SASL_USERNAME, KURT_KAFKA_SASL_PASSWORD; deploy/overlays/prod).
resource "random_password" "scram" {
  for_each = toset(var.scram_users)
  length   = 40
  special  = false
}

resource "aws_secretsmanager_secret" "scram" {
  #checkov:skip=CKV2_AWS_57:rotation is a new secret version and a rollout of the user's pods (infra/terraform/README.md), not a Lambda
  for_each    = toset(var.scram_users)
  name        = "AmazonMSK_${var.name}_${each.value}"
  description = "SASL/SCRAM credentials of the Kafka user ${each.value}"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  for_each  = toset(var.scram_users)
  secret_id = aws_secretsmanager_secret.scram[each.key].id
  secret_string = jsonencode({
    username = each.value
    password = random_password.scram[each.key].result
  })
}

# MSK puts this policy on an associated secret itself; declaring it keeps the plan clean.
data "aws_iam_policy_document" "scram" {
  #checkov:skip=CKV_AWS_108:a secret's own resource policy, for the MSK service: the resource is that one secret
  for_each = toset(var.scram_users)
  statement {
    sid       = "AWSKafkaResourcePolicy"
    actions   = ["secretsmanager:getSecretValue"]
    resources = [aws_secretsmanager_secret.scram[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "scram" {
  for_each   = toset(var.scram_users)
  secret_arn = aws_secretsmanager_secret.scram[each.key].arn
  policy     = data.aws_iam_policy_document.scram[each.key].json
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [for u in var.scram_users : aws_secretsmanager_secret.scram[u].arn]
  depends_on      = [aws_secretsmanager_secret_version.scram, aws_secretsmanager_secret_policy.scram]
}

# Redis: an ElastiCache replication group (cluster mode off: the services use plain commands on one
# keyspace) with a replica in each other zone, automatic failover and Multi-AZ. The services reach
# it through the primary endpoint, which moves with a failover. Redis is a cache and rate-limit
# store here: Kurt works without it, so losing unreplicated writes at failover is acceptable.
#
# Redis decides access (cached API-key records, rate limits), so whoever reaches it must not be able
# to write it: TLS is required on every connection and every client must AUTH with a generated
# token, kept in Secrets Manager. The services' client (Debian 12's hiredis 0.14) has no TLS; each
# Redis-using pod runs a TLS sidecar (stunnel, deploy/docker/redis-tls.Dockerfile) that takes
# plaintext on the pod's loopback only and speaks TLS to the primary endpoint, verifying its
# certificate (deploy/overlays/prod). The token travels inside that TLS connection.

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "Redis (TLS and AUTH): 6379 from the cluster's private subnets only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "Redis from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
  cidr_ipv4         = each.value
}

resource "aws_elasticache_parameter_group" "this" {
  name   = "${var.name}-redis7"
  family = "redis7"

  # Cache keys carry TTLs; under memory pressure evict the least recently used of them.
  parameter {
    name  = "maxmemory-policy"
    value = "volatile-lru"
  }
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "slow" {
  name              = "/aws/elasticache/${var.name}/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# The AUTH token: 64 letters and digits (ElastiCache takes 16 to 128 printable characters, some
# punctuation refused). It lives in the Terraform state too, like the PostgreSQL passwords: the
# state bucket is encrypted and access to it restricted.
resource "random_password" "auth" {
  length  = 64
  special = false
}

# Source of the kurt-redis-auth Kubernetes Secret (KURT_REDIS_PASSWORD), which only the pods that
# use Redis get (kurt-edge, kurt-links, kurt-accounts), through the cluster's secret operator.
resource "aws_secretsmanager_secret" "auth" {
  #checkov:skip=CKV2_AWS_57:rotation goes through ElastiCache's ROTATE/SET token strategy and a rollout of the pods in between (infra/terraform/README.md), not a Lambda
  name        = "${var.name}/redis/auth-token"
  description = "AUTH token of the Kurt ElastiCache replication group"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id = aws_secretsmanager_secret.auth.id
  secret_string = jsonencode({
    password = random_password.auth.result
    host     = aws_elasticache_replication_group.this.primary_endpoint_address
    port     = aws_elasticache_replication_group.this.port
  })
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Kurt cache, rate limits and API-key cache"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.this.id]

  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  # TLS on every connection, and AUTH: a client without the token is refused. ROTATE keeps the
  # old token valid beside a new one until the next apply with SET (infra/terraform/README.md).
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth.result
  auth_token_update_strategy = var.auth_update_strategy

  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = var.tags
}

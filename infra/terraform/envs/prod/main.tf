# Kurt in production on AWS: the network, an EKS cluster for deploy/overlays/prod, RDS PostgreSQL
# with read replicas, ElastiCache Redis with automatic failover, MSK Kafka, S3 for report artifacts
# and the SPA, and CloudFront in front of the SPA and the cacheable API routes. A private DNS zone
# gives the managed endpoints the stable names deploy/overlays/prod uses.

data "aws_caller_identity" "current" {}

locals {
  name = "kurt-${var.environment}"
  tags = merge(var.tags, {
    Project     = "kurt"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

# One customer-managed key for the environment's data at rest and its log groups.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_109:the account root administers its own key (AWS's default key policy); IAM policies narrow it further
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${local.name}: data at rest and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

# The same for the pieces CloudFront keeps in us-east-1 (the web ACL's logs).
data "aws_iam_policy_document" "kms_us_east_1" {
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_109:the account root administers its own key (AWS's default key policy); IAM policies narrow it further
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.us-east-1.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "us_east_1" {
  provider                = aws.us_east_1
  description             = "${local.name}: CDN logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_us_east_1.json
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  kms_key_arn        = aws_kms_key.main.arn
  tags               = local.tags
}

module "cluster" {
  source              = "../../modules/cluster"
  name                = local.name
  kubernetes_version  = var.kubernetes_version
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  public_access_cidrs = var.cluster_public_access_cidrs
  kms_key_arn         = aws_kms_key.main.arn
  tags                = local.tags
}

module "postgres" {
  source         = "../../modules/postgres"
  name           = local.name
  vpc_id         = module.network.vpc_id
  subnet_ids     = module.network.data_subnet_ids
  client_cidrs   = module.network.private_subnet_cidrs
  instance_class = var.postgres_instance_class
  replica_count  = var.postgres_replica_count
  kms_key_arn    = aws_kms_key.main.arn
  tags           = local.tags
}

module "redis" {
  source       = "../../modules/redis"
  name         = local.name
  vpc_id       = module.network.vpc_id
  subnet_ids   = module.network.data_subnet_ids
  client_cidrs = module.network.private_subnet_cidrs
  node_type    = var.redis_node_type
  kms_key_arn  = aws_kms_key.main.arn
  tags         = local.tags
}

module "kafka" {
  source               = "../../modules/kafka"
  name                 = local.name
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.data_subnet_ids
  client_cidrs         = module.network.private_subnet_cidrs
  broker_count         = var.kafka_broker_count
  broker_instance_type = var.kafka_broker_instance_type
  kms_key_arn          = aws_kms_key.main.arn
  tags                 = local.tags
}

# kurt-reports and kurt-report-worker read and write report artifacts through EKS Pod Identity
# (their ServiceAccounts in deploy/base), not with keys.
data "aws_iam_policy_document" "pod_identity_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "artifacts" {
  name               = "${local.name}-report-artifacts"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json
}

data "aws_iam_policy_document" "artifacts_access" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${module.storage.artifacts_bucket_arn}/*"]
  }
  # HEAD of the bucket at start-up (platform/s3 checks it can work), and 404 rather than 403 for a
  # missing artifact.
  statement {
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [module.storage.artifacts_bucket_arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "artifacts" {
  name   = "report-artifacts"
  role   = aws_iam_role.artifacts.id
  policy = data.aws_iam_policy_document.artifacts_access.json
}

resource "aws_eks_pod_identity_association" "artifacts" {
  for_each        = toset(["kurt-reports", "kurt-report-worker"])
  cluster_name    = module.cluster.cluster_name
  namespace       = "kurt"
  service_account = each.value
  role_arn        = aws_iam_role.artifacts.arn
}

module "storage" {
  source           = "../../modules/storage"
  name             = "${local.name}-${data.aws_caller_identity.current.account_id}"
  kms_key_arn      = aws_kms_key.main.arn
  writer_role_arns = [aws_iam_role.artifacts.arn]
  tags             = local.tags
}

module "cdn" {
  source = "../../modules/cdn"
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }
  name                            = local.name
  app_domain                      = var.app_domain
  zone_id                         = var.public_zone_id
  spa_bucket                      = module.storage.spa_bucket
  spa_bucket_arn                  = module.storage.spa_bucket_arn
  spa_bucket_regional_domain_name = module.storage.spa_bucket_regional_domain_name
  edge_origin_domain              = var.short_domain
  logs_bucket_domain_name         = module.storage.logs_bucket_domain_name
  waf_log_kms_key_arn             = aws_kms_key.us_east_1.arn
  tags                            = local.tags
}

# The short domain is ingress-nginx's network load balancer (made by Kubernetes for the chart's
# Service, hence known only once deploy/ is applied): an alias, since the short domain may be the
# zone's apex, where no CNAME may be.
data "aws_lb_hosted_zone_id" "network" {
  load_balancer_type = "network"
}

resource "aws_route53_record" "short" {
  for_each = var.ingress_load_balancer_hostname == "" ? toset([]) : toset(["A", "AAAA"])
  zone_id  = var.public_zone_id
  name     = var.short_domain
  type     = each.value
  alias {
    name                   = var.ingress_load_balancer_hostname
    zone_id                = data.aws_lb_hosted_zone_id.network.id
    evaluate_target_health = true
  }
}

# Stable names for PostgreSQL, used by deploy/overlays/prod (pgbouncer-prod.ini, the migration Job,
# KURT_PG_LISTEN_URL): a replaced instance changes a record here, not the manifests. Redis and Kafka
# have none: their clients verify the TLS certificate, which names the AWS endpoint itself (an
# alias would fail the check), so the overlay takes those names from `terraform output`.
resource "aws_route53_zone" "internal" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing applies to public zones; this zone is private to the VPC
  #checkov:skip=CKV2_AWS_39:query logging of a private zone is covered by the VPC resolver's flow logs
  name    = "kurt.internal"
  comment = "${local.name}: names of the managed data services"
  vpc {
    vpc_id = module.network.vpc_id
  }
}

locals {
  internal_records = merge(
    {
      "pg-primary" = module.postgres.primary_address
    },
    # Keys from counts known at plan time, values known only after apply.
    { for i in range(var.postgres_replica_count) : "pg-replica-${i + 1}" => module.postgres.replica_addresses[i] },
  )
}

resource "aws_route53_record" "internal" {
  for_each = local.internal_records
  zone_id  = aws_route53_zone.internal.zone_id
  name     = "${each.key}.kurt.internal"
  type     = "CNAME"
  ttl      = 30
  records  = [each.value]
}

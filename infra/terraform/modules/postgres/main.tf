# PostgreSQL: an RDS primary in Multi-AZ (a synchronous standby that takes over on failure) and
# read replicas fed by streaming replication, which serve the reads that tolerate lag. TLS is
# required. The master password is generated and kept by RDS in Secrets Manager; the application
# role's password is generated here and kept in Secrets Manager too, never in code or variables.

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL: 5432 from the cluster's private subnets only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.this.id
  description       = "PostgreSQL from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-postgres${var.engine_version}"
  family = "postgres${var.engine_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name         = "max_connections"
    value        = tostring(var.max_connections)
    apply_method = "pending-reboot"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "250"
  }
  parameter {
    name  = "log_lock_waits"
    value = "1"
  }
  # Queries on a replica may be cancelled by conflicting cleanup on the primary; this trades a little
  # bloat on the primary for report scans that finish.
  parameter {
    name  = "hot_standby_feedback"
    value = "1"
  }
  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  tags = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "primary" {
  identifier     = "${var.name}-primary"
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  multi_az       = true

  db_name                       = "kurt"
  username                      = "kurt_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false

  iam_database_authentication_enabled = true
  backup_retention_period             = var.backup_retention_days
  backup_window                       = "02:00-03:00"
  maintenance_window                  = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-primary-final"
  auto_minor_version_upgrade          = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  tags = var.tags
}

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_133:a read replica needs no backups of its own; the primary's cover the data
  #checkov:skip=CKV_AWS_157:a replica is not a failover target; readers fall back to the primary (itself Multi-AZ) when one is down
  count               = var.replica_count
  identifier          = "${var.name}-replica-${count.index + 1}"
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = coalesce(var.replica_instance_class, var.instance_class)
  multi_az            = false

  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn
  max_allocated_storage = var.max_allocated_storage_gib

  vpc_security_group_ids = [aws_security_group.this.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false

  iam_database_authentication_enabled = true
  # Replicas of a replica are not used; no backups of their own.
  backup_retention_period    = 0
  copy_tags_to_snapshot      = true
  skip_final_snapshot        = true
  auto_minor_version_upgrade = true
  deletion_protection        = var.deletion_protection

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  tags = var.tags
}

# The application role "kurt" (what the services and PgBouncer log in as). Its password is made
# here and stored in Secrets Manager; the cluster's secret operator turns it into the kurt-pg-credentials
# and kurt-pgbouncer-auth Kubernetes Secrets. Creating the role in the database is the one manual
# step (infra/terraform/README.md).
resource "random_password" "app" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:rotation needs the role's password changed in PostgreSQL and in PgBouncer together; done by the runbook in infra/terraform/README.md, not by a Lambda
  name        = "${var.name}/postgres/kurt"
  description = "Password of the PostgreSQL role kurt used by the Kurt services"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    username = "kurt"
    password = random_password.app.result
    host     = aws_db_instance.primary.address
    port     = aws_db_instance.primary.port
    dbname   = "kurt"
  })
}

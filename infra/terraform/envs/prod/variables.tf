variable "region" {
  description = "AWS region of everything but CloudFront's us-east-1 pieces."
  type        = string
  default     = "eu-west-1"
}

variable "availability_zones" {
  description = "The three zones of the region to use."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "environment" {
  description = "Environment name, part of every resource name."
  type        = string
  default     = "prod"
}

variable "vpc_cidr" {
  description = "The VPC's range; its data-subnet /20 must match the ipBlock in deploy/base/network-policies.yaml (10.40.208.0/20 for the default)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "cluster_public_access_cidrs" {
  description = "Address ranges that may reach the Kubernetes API from outside the VPC (CI, operators). No default: name them."
  type        = list(string)
}

variable "kubernetes_version" {
  description = "EKS version; tools/check-deploy validates deploy/ against the same minor version."
  type        = string
  default     = "1.33"
}

variable "postgres_instance_class" {
  description = "RDS instance class of the primary and replicas."
  type        = string
  default     = "db.r7g.large"
}

variable "postgres_replica_count" {
  description = "Read replicas of the primary (deploy/overlays/prod expects two: pg-replica-1 and pg-replica-2)."
  type        = number
  default     = 2
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "kafka_broker_count" {
  description = "MSK brokers, a multiple of three (deploy/overlays/prod names three as bootstrap servers, from output kafka_bootstrap_brokers; more brokers are found through them)."
  type        = number
  default     = 3
}

variable "kafka_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

# The public hosts. The manifests name the same ones (deploy/overlays/prod: the Ingress, its
# certificate kurt-public-tls, kurt-edge-config and kurt-links-config); tests/deploy/test_cdn.py
# checks terraform.tfvars.example against them.
variable "public_zone_id" {
  description = "Public Route 53 hosted zone holding app_domain and short_domain (records and certificate validation go there)."
  type        = string
}

variable "app_domain" {
  description = "Host name of the console (the SPA) and its API calls on the CDN, e.g. app.kurt.example; Terraform makes its certificate in us-east-1."
  type        = string
}

variable "short_domain" {
  description = "Host name of the short links and of the API for programs, e.g. kurt.example: the ingress-nginx load balancer directly (TLS by cert-manager in the cluster), and the CDN's origin for /v1/*."
  type        = string
}

variable "ingress_load_balancer_hostname" {
  description = "AWS host name of ingress-nginx's network load balancer (kubectl -n ingress-nginx get svc ingress-nginx-controller), which short_domain points at; empty until deploy/ is applied, and then no record is made."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Extra tags for every resource (cost centre, owner)."
  type        = map(string)
  default     = {}
}

output "vpc_id" {
  description = "Id of the VPC the whole environment lives in."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's address range."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Subnets for the Kubernetes nodes and pods, one per zone."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Address ranges of the private subnets: where every client of the data services is."
  value       = aws_subnet.private[*].cidr_block
}

output "public_subnet_ids" {
  description = "Subnets for internet-facing load balancers."
  value       = aws_subnet.public[*].id
}

output "data_subnet_ids" {
  description = "Subnets for RDS, ElastiCache and MSK, one per zone."
  value       = aws_subnet.data[*].id
}

output "data_cidr_block" {
  description = "The /20 that holds the three data subnets (the ipBlock of deploy/base/network-policies.yaml)."
  value       = cidrsubnet(var.cidr_block, 4, 13)
}

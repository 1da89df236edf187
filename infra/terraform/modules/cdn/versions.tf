terraform {
  required_version = ">= 1.8"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
      # CloudFront's certificate and web ACL live in us-east-1, whatever the region of the rest.
      configuration_aliases = [aws.us_east_1]
    }
  }
}

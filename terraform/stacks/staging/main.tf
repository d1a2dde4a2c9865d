# Staging: pull requests deploy here (GitHub Actions, preview) before production.

terraform {
  required_version = ">= 1.10.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }

  # The bucket is given at init (-backend-config=bucket=...) and, for
  # developer stacks, the key too; woocom-dev deploy does both.
  backend "s3" {
    key          = "staging/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = coalesce(var.region, local.manifest.stack.region)

  default_tags {
    tags = {
      Project   = "woocom"
      Stack     = local.prefix
      ManagedBy = "terraform"
    }
  }
}

locals {
  manifest_file = "${path.module}/../../manifest.json"
  manifest      = jsondecode(file(local.manifest_file))
  prefix        = "woocom-staging"
}

module "woocom" {
  source = "../../modules/woocom"

  prefix                 = local.prefix
  manifest_file          = local.manifest_file
  package_dir            = var.package_dir
  architecture           = var.architecture
  api_stage              = var.api_stage
  log_retention_days     = var.log_retention_days
  reserve_concurrency    = var.reserve_concurrency
  throttling_rate_limit  = var.throttling_rate_limit
  throttling_burst_limit = var.throttling_burst_limit
  point_in_time_recovery = var.point_in_time_recovery
  deletion_protection    = var.deletion_protection
  force_destroy_site     = var.force_destroy_site
  alarm_email            = var.alarm_email
}

output "rest_api_url" {
  value = module.woocom.rest_api_url
}

output "websocket_url" {
  value = module.woocom.websocket_url
}

output "site_url" {
  value = module.woocom.site_url
}

output "site_bucket" {
  value = module.woocom.site_bucket
}

output "site_distribution_id" {
  value = module.woocom.site_distribution_id
}

output "function_names" {
  value = module.woocom.function_names
}

output "table_names" {
  value = module.woocom.table_names
}

output "alerts_topic_arn" {
  value = module.woocom.alerts_topic_arn
}

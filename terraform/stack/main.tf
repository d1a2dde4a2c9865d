# One WooCom stack: everything dev.toml declares, deployed under one name
# prefix, woocom-<stack>. The same root serves every stack; what differs is
# given at init and plan (woocom-dev deploy does both):
#
#   terraform init -backend-config=bucket=<state bucket> \
#     -backend-config=key=<stack's state key> -backend-config=region=<…>
#   terraform apply -var-file=env/<dev|staging|production>.tfvars -var stack=<stack>
#
# Stacks: dev-<name> (a developer's own, state key dev/<name>/terraform.tfstate),
# staging and production (state key <stack>/terraform.tfstate).

terraform {
  # use_lockfile (S3-native state locking) is Terraform 1.11's.
  required_version = ">= 1.11.0"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.70+ tags event source mappings (the deploy policies allow it);
      # .terraform.lock.hcl pins the exact version.
      version = "~> 5.100"
    }
  }

  # bucket, key and region are given at init (-backend-config).
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = local.region

  # The Stack tag is also what the deploy policies recognise a stack's
  # API, distribution and event source mappings by
  # (modules/access_policy).
  default_tags {
    tags = {
      Project   = "woocom"
      Stack     = local.prefix
      ManagedBy = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Stage logging needs the API Gateway account setting of this region
# (its CloudWatch Logs role), which terraform/bootstrap sets in the region it
# runs in, with a role named after that region. The provider has no data
# source for the account setting; the role's presence says bootstrap ran
# here, and its absence stops the plan with what to do.
data "aws_iam_roles" "apigateway_cloudwatch" {
  name_regex = "^woocom-apigateway-cloudwatch-${local.region}$"

  lifecycle {
    postcondition {
      condition     = length(self.arns) == 1
      error_message = "API Gateway has no CloudWatch Logs role in ${local.region} (no role woocom-apigateway-cloudwatch-${local.region}), so stage logging would be refused: run terraform/bootstrap with -var region=${local.region} first (README, Deploying to AWS)."
    }
  }
}

locals {
  manifest = jsondecode(file(var.manifest_file))
  region   = coalesce(var.region, local.manifest.stack.region)
  prefix   = module.access.prefix
}

# Names only (no provider): the permissions boundary bootstrap created for
# this stack.
module "access" {
  source = "../modules/access_policy"

  stack      = var.stack
  partition  = data.aws_partition.current.partition
  region     = local.region
  account_id = data.aws_caller_identity.current.account_id
}

module "manifest" {
  source = "../modules/manifest"

  manifest             = local.manifest
  prefix               = local.prefix
  partition            = data.aws_partition.current.partition
  region               = local.region
  account_id           = data.aws_caller_identity.current.account_id
  api_stage            = var.api_stage
  websocket_api_id     = module.websocket_api.id
  function_invoke_arns = module.functions.invoke_arns
}

module "tables" {
  source = "../modules/tables"

  tables                 = module.manifest.tables
  point_in_time_recovery = var.point_in_time_recovery
  deletion_protection    = var.deletion_protection
}

module "functions" {
  source = "../modules/functions"

  functions            = module.manifest.functions
  package_dir          = var.package_dir
  architecture         = var.architecture
  log_retention_days   = var.log_retention_days
  reserve_concurrency  = var.reserve_concurrency
  permissions_boundary = coalesce(var.permissions_boundary, module.access.boundary_arn)
  queue_arns           = module.messaging.queue_arns
  topic_arns           = module.messaging.topic_arns
}

module "messaging" {
  source = "../modules/messaging"

  queues              = module.manifest.queues
  topics              = module.manifest.topics
  topic_subscriptions = module.manifest.topic_subscriptions
  function_arns       = module.functions.arns
  function_names      = module.functions.names
  rule_arns           = module.events.rule_arns
  event_topic_kms_key = var.event_topic_kms_key
}

module "events" {
  source = "../modules/events"

  buses                = module.manifest.buses
  rules                = module.manifest.rules
  targets              = module.manifest.event_targets
  partition            = data.aws_partition.current.partition
  region               = local.region
  account_id           = data.aws_caller_identity.current.account_id
  prefix               = local.prefix
  function_arns        = module.functions.arns
  function_names       = module.functions.names
  queue_arns           = module.messaging.queue_arns
  topic_arns           = module.messaging.topic_arns
  permissions_boundary = coalesce(var.permissions_boundary, module.access.boundary_arn)
}

module "rest_api" {
  source = "../modules/rest_api"

  name                   = "${local.prefix}-rest"
  openapi                = module.manifest.openapi
  stage                  = var.api_stage
  stage_variables        = module.manifest.stage_variables
  permissions            = module.manifest.rest_permissions
  function_names         = module.functions.names
  throttling_rate_limit  = var.throttling_rate_limit
  throttling_burst_limit = var.throttling_burst_limit
  log_retention_days     = var.log_retention_days
}

module "websocket_api" {
  source = "../modules/websocket_api"

  name                       = "${local.prefix}-websocket"
  enabled                    = try(local.manifest.websocket, null) != null
  route_selection_expression = try(local.manifest.websocket.route_selection_expression, "$request.body.action")
  routes                     = try(local.manifest.websocket.routes, [])
  stage                      = var.api_stage
  function_names             = module.functions.names
  function_invoke_arns       = module.functions.invoke_arns
  throttling_rate_limit      = var.throttling_rate_limit
  throttling_burst_limit     = var.throttling_burst_limit
  log_retention_days         = var.log_retention_days
}

module "subscriptions" {
  source = "../modules/subscriptions"

  subscriptions  = module.manifest.subscriptions
  stream_arns    = module.tables.stream_arns
  function_names = module.functions.names
  queue_arns     = module.messaging.queue_arns
  topic_arns     = module.messaging.topic_arns
}

module "frontend" {
  source = "../modules/frontend"

  name               = "${local.prefix}-site"
  logs_bucket_prefix = "${local.prefix}-logs-"
  log_retention_days = var.log_retention_days
  force_destroy      = var.force_destroy_site
  config = {
    apiUrl       = module.rest_api.url
    websocketUrl = module.websocket_api.url
    stack        = local.prefix
  }
}

module "monitoring" {
  source = "../modules/monitoring"

  name                  = local.prefix
  alarm_emails          = var.alarm_emails
  alarm_https_endpoints = var.alarm_https_endpoints
  rest_api_name         = module.rest_api.name
  rest_api_stage        = module.rest_api.stage
  function_names        = module.functions.names
  stream_functions      = module.subscriptions.functions
  queue_names           = merge(module.subscriptions.queue_names, module.manifest.dead_letter_queues)
}

# Alarms nobody receives are no alarms: staging and production should name
# subscribers (a warning, so a first deploy is not blocked by it).
check "alerts_reach_someone" {
  assert {
    condition     = startswith(var.stack, "dev-") || module.monitoring.subscriber_count > 0
    error_message = "No one is subscribed to ${local.prefix}-alerts: set alarm_emails and/or alarm_https_endpoints (README, Deploying to AWS: Alerts)."
  }
}

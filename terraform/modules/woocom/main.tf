# One WooCom stack: everything dev.toml declares, deployed under one name
# prefix. The stacks in terraform/stacks/ call this with their settings;
# nothing here is specific to a developer, staging or production.

terraform {
  required_version = ">= 1.10.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  manifest = jsondecode(file(var.manifest_file))
  region   = data.aws_region.current.name
}

module "manifest" {
  source = "../manifest"

  manifest             = local.manifest
  prefix               = var.prefix
  partition            = data.aws_partition.current.partition
  region               = local.region
  account_id           = data.aws_caller_identity.current.account_id
  api_stage            = var.api_stage
  websocket_api_id     = module.websocket_api.id
  function_invoke_arns = module.functions.invoke_arns
}

module "tables" {
  source = "../tables"

  tables                 = module.manifest.tables
  point_in_time_recovery = var.point_in_time_recovery
  deletion_protection    = var.deletion_protection
}

module "functions" {
  source = "../functions"

  functions           = module.manifest.functions
  package_dir         = var.package_dir
  architecture        = var.architecture
  log_retention_days  = var.log_retention_days
  reserve_concurrency = var.reserve_concurrency
}

module "rest_api" {
  source = "../rest_api"

  name                   = "${var.prefix}-rest"
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
  source = "../websocket_api"

  name                       = "${var.prefix}-websocket"
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
  source = "../subscriptions"

  subscriptions  = module.manifest.subscriptions
  stream_arns    = module.tables.stream_arns
  function_names = module.functions.names
}

module "frontend" {
  source = "../frontend"

  name               = "${var.prefix}-site"
  logs_bucket_prefix = "${var.prefix}-logs-"
  log_retention_days = var.log_retention_days
  force_destroy      = var.force_destroy_site
  config = {
    apiUrl       = module.rest_api.url
    websocketUrl = module.websocket_api.url
    stack        = var.prefix
  }
}

module "monitoring" {
  source = "../monitoring"

  name             = var.prefix
  alarm_email      = var.alarm_email
  rest_api_name    = module.rest_api.name
  rest_api_stage   = module.rest_api.stage
  function_names   = module.functions.names
  stream_functions = module.subscriptions.functions
  queue_names      = module.subscriptions.queue_names
}

# Evaluates modules/manifest (no provider, so it runs offline) on a rendered
# manifest with fixed account facts, and outputs what the AWS modules would
# receive. devserver/tests/smoke/terraform-hcl.sh applies it to
# terraform/manifest.json, tests/fixtures/full-rendered.json and
# tests/fixtures/events-rendered.json and checks the result with tests/check-manifest-module.py.

terraform {
  required_version = ">= 1.5.0"
}

variable "manifest_file" {
  type = string
}

locals {
  manifest = jsondecode(file(var.manifest_file))
}

module "manifest" {
  source = "../../modules/manifest"

  manifest         = local.manifest
  prefix           = "woocom-dev-test"
  partition        = "aws"
  region           = "eu-west-1"
  account_id       = "123456789012"
  api_stage        = "api"
  websocket_api_id = "abc123defg"
  function_invoke_arns = {
    for name, _ in local.manifest.functions :
    name => "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-test-${name}/invocations"
  }
}

output "format_ok" {
  value = module.manifest.format_ok
}

output "tables" {
  value = module.manifest.tables
}

output "functions" {
  value = module.manifest.functions
}

output "subscriptions" {
  value = module.manifest.subscriptions
}

output "queues" {
  value = module.manifest.queues
}

output "topics" {
  value = module.manifest.topics
}

output "topic_subscriptions" {
  value = module.manifest.topic_subscriptions
}

output "dead_letter_queues" {
  value = module.manifest.dead_letter_queues
}

output "websocket" {
  value = module.manifest.websocket
}

output "websocket_endpoint" {
  value = module.manifest.websocket_endpoint
}

output "openapi" {
  value = module.manifest.openapi
}

output "rest_permissions" {
  value = module.manifest.rest_permissions
}

output "stage_variables" {
  value = module.manifest.stage_variables
}

output "buses" {
  value = module.manifest.buses
}

output "rules" {
  value = module.manifest.rules
}

output "event_targets" {
  value = module.manifest.event_targets
}

output "bus_names" {
  value = module.manifest.bus_names
}

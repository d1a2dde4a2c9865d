output "rest_api_url" {
  value = module.rest_api.url
}

output "websocket_url" {
  description = "Empty when dev.toml declares no [websocket]."
  value       = module.websocket_api.url
}

output "websocket_management_endpoint" {
  value = module.manifest.websocket_endpoint
}

output "site_url" {
  value = module.frontend.url
}

output "site_bucket" {
  value = module.frontend.bucket
}

output "site_distribution_id" {
  value = module.frontend.distribution_id
}

output "function_names" {
  value = module.functions.names
}

output "table_names" {
  value = module.tables.names
}

output "queue_names" {
  description = "[queues] (as in dev.toml) => deployed name."
  value       = module.messaging.queue_names
}

output "capped_message_size_queues" {
  description = "Queues that take 1 MiB messages under woocom-dev but are deployed with 256 KiB, the most hashicorp/aws 5.x sets (set max_message_size = 262144 in dev.toml to match)."
  value       = module.messaging.capped_message_size_queues
}

output "topic_arns" {
  description = "[topics] (as in dev.toml) => ARN."
  value       = module.messaging.topic_arns
}

output "event_bus_names" {
  description = "Bus (as in dev.toml, `default` included) => name in AWS (what a function's bus reference is set to)."
  value       = module.manifest.bus_names
}

output "event_rule_arns" {
  description = "[rules] (as in dev.toml) => ARN."
  value       = module.events.rule_arns
}

output "alerts_topic_arn" {
  value = module.monitoring.topic_arn
}

output "permissions_boundary" {
  description = "The boundary every role of the stack carries."
  value       = coalesce(var.permissions_boundary, module.access.boundary_arn)
}

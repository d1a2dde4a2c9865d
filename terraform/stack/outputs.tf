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

output "alerts_topic_arn" {
  value = module.monitoring.topic_arn
}

output "permissions_boundary" {
  description = "The boundary every role of the stack carries."
  value       = coalesce(var.permissions_boundary, module.access.boundary_arn)
}

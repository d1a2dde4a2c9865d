# The WebSocket API: routes from dev.toml's [websocket], one Lambda proxy
# integration per function, route responses for two-way routes, one
# auto-deployed stage. Created only when dev.toml declares [websocket]
# (count = 0 otherwise, so a stack plans before WebSocket exists).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "name" {
  type = string
}

variable "enabled" {
  type = bool
}

variable "route_selection_expression" {
  type    = string
  default = "$request.body.action"
}

variable "stage" {
  type = string
}

variable "throttling_rate_limit" {
  type    = number
  default = 100
}

variable "throttling_burst_limit" {
  type    = number
  default = 200
}

variable "log_retention_days" {
  type    = number
  default = 30
}

resource "aws_apigatewayv2_api" "this" {
  count = var.enabled ? 1 : 0

  name                       = var.name
  protocol_type              = "WEBSOCKET"
  route_selection_expression = var.route_selection_expression
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest with its own keys; a customer managed key (1 USD a month per key and a key policy for the logs service) adds no protection from a reader who already holds logs:GetLogEvents, and these logs carry no secrets.
  count = var.enabled ? 1 : 0

  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "this" {
  #checkov:skip=CKV2_AWS_51:Browsers open the WebSocket and cannot present client certificates.
  count = var.enabled ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = var.stage
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access[0].arn
    format = jsonencode({
      requestId    = "$context.requestId"
      connectionId = "$context.connectionId"
      eventType    = "$context.eventType"
      routeKey     = "$context.routeKey"
      status       = "$context.status"
      requestTime  = "$context.requestTime"
      errorMessage = "$context.error.message"
    })
  }
}

output "id" {
  description = "Empty when the manifest has no [websocket]."
  value       = var.enabled ? aws_apigatewayv2_api.this[0].id : ""
}

output "execution_arn" {
  value = var.enabled ? aws_apigatewayv2_api.this[0].execution_arn : ""
}

output "url" {
  value = var.enabled ? aws_apigatewayv2_stage.this[0].invoke_url : ""
}

output "route_keys" {
  value = sort(keys(aws_apigatewayv2_route.this))
}

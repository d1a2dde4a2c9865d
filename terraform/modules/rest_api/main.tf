# The REST API: API Gateway imports the OpenAPI document the manifest module
# builds from dev.toml's [[routes]] (Lambda proxy integrations, CORS
# preflights and gateway responses, binary media types), one stage with
# access logging and throttling, and one invoke permission per route.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

variable "name" {
  type = string
}

variable "openapi" {
  description = "The manifest module's `openapi` output."
  type        = any
}

variable "stage" {
  type = string
}

variable "stage_variables" {
  type    = map(string)
  default = {}
}

variable "permissions" {
  description = "The manifest module's `rest_permissions` output."
  type        = any
}

variable "function_names" {
  description = "Function (as in dev.toml) => deployed Lambda function name."
  type        = map(string)
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second for the stage."
  type        = number
  default     = 100
}

variable "throttling_burst_limit" {
  type    = number
  default = 200
}

variable "log_retention_days" {
  type    = number
  default = 30
}

resource "aws_api_gateway_rest_api" "this" {
  name = var.name
  body = jsonencode(var.openapi)

  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  triggers = {
    redeployment = sha1(jsonencode(var.openapi))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
}

# Access logging needs the account's API Gateway CloudWatch role, set once
# per account and region by terraform/bootstrap.
resource "aws_api_gateway_stage" "this" {
  rest_api_id   = aws_api_gateway_rest_api.this.id
  deployment_id = aws_api_gateway_deployment.this.id
  stage_name    = var.stage
  variables     = var.stage_variables

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      extendedRequestId  = "$context.extendedRequestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integration.status"
      errorMessage       = "$context.error.message"
      userAgent          = "$context.identity.userAgent"
    })
  }
}

resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }
}

resource "aws_lambda_permission" "route" {
  for_each = var.permissions

  statement_id  = each.key
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.value.function]
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${each.value.source_path}"
}

output "id" {
  value = aws_api_gateway_rest_api.this.id
}

output "name" {
  value = aws_api_gateway_rest_api.this.name
}

output "stage" {
  value = aws_api_gateway_stage.this.stage_name
}

output "url" {
  description = "Base URL, as woocom-dev's `api` URL locally (…/<stage>)."
  value       = aws_api_gateway_stage.this.invoke_url
}

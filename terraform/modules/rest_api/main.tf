# The REST API: API Gateway imports the OpenAPI document the manifest module
# builds from dev.toml's [[routes]] (Lambda proxy integrations, CORS
# preflights and gateway responses, binary media types), one stage with
# access logging and throttling, and one invoke permission per route.

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

  lifecycle {
    create_before_destroy = true
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
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest with its own keys; a customer managed key (1 USD a month per key and a key policy for the logs service) adds no protection from a reader who already holds logs:GetLogEvents, and these logs carry no secrets.
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
}

# Execution logs (logging_level below) go to this group, which API Gateway
# would otherwise create itself with no retention.
resource "aws_cloudwatch_log_group" "execution" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest with its own keys; a customer managed key (1 USD a month per key and a key policy for the logs service) adds no protection from a reader who already holds logs:GetLogEvents, and these logs carry no secrets.
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage}"
  retention_in_days = var.log_retention_days
}

# Access and execution logging need the account's API Gateway CloudWatch
# role, an account setting of each region: terraform/bootstrap sets it in
# the region it runs in, so a stack in another region needs bootstrap run
# there too (terraform/stack checks that before planning anything). Without
# it AWS rejects the stage ("CloudWatch Logs role ARN must be set in account
# settings to enable logging").
# <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>
resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses are per shopper and change with every write (baskets, orders, stock); a stage cache would serve stale or another shopper's data, and a cache cluster bills by the hour.
  #checkov:skip=CKV_AWS_73:The functions run with tracing PassThrough and their least-privilege roles hold no xray:PutTraceSegments, so traces started here would stop at the Lambda boundary; turn X-Ray on together with Active function tracing when traces are wanted.
  #checkov:skip=CKV2_AWS_51:A public API called by browsers, which cannot present client certificates; CORS, throttling and the functions' own checks apply instead.
  #checkov:skip=CKV2_AWS_29:No WAF web ACL (at least 5 USD a month per stack plus per request): the stage throttles every method (throttling_rate_limit/burst_limit) and the 5xx alarm watches it; add an ACL per stack when traffic calls for one.
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
  #checkov:skip=CKV_AWS_225:No caching, as on the stage (see its CKV_AWS_120): responses are per shopper and change with every write.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  depends_on = [aws_cloudwatch_log_group.execution]
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

# Routes and integrations, separate from the API itself: the functions need
# the API's id (for WOOCOM_WEBSOCKET_ENDPOINT) before the integrations can
# name the functions, and Terraform orders resources, not modules.

variable "routes" {
  description = "[{route_key, function, two_way}] from the manifest."
  type        = any
  default     = []
}

variable "function_names" {
  type    = map(string)
  default = {}
}

variable "function_invoke_arns" {
  type    = map(string)
  default = {}
}

locals {
  route_functions = toset([for r in var.routes : r.function])
  routes          = { for r in var.routes : r.route_key => r }
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = var.enabled ? local.route_functions : toset([])

  api_id                    = aws_apigatewayv2_api.this[0].id
  integration_type          = "AWS_PROXY"
  integration_method        = "POST"
  integration_uri           = var.function_invoke_arns[each.key]
  content_handling_strategy = "CONVERT_TO_TEXT"
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:The live feed (catalogue stock and order-status topics) is open to anonymous shoppers: the shop has no sign-in or identity provider to authorize against, a WebSocket API can put an authorizer only on $connect, and the live function validates the topics a connection asks for.
  for_each = var.enabled ? local.routes : {}

  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.function[each.value.function].id}"
  # A two-way route sends the function's return value back to the client.
  route_response_selection_expression = try(each.value.two_way, false) ? "$default" : null
}

resource "aws_apigatewayv2_route_response" "two_way" {
  for_each = var.enabled ? { for k, r in local.routes : k => r if try(r.two_way, false) } : {}

  api_id             = aws_apigatewayv2_api.this[0].id
  route_id           = aws_apigatewayv2_route.this[each.key].id
  route_response_key = "$default"
}

resource "aws_lambda_permission" "route" {
  for_each = var.enabled ? local.routes : {}

  statement_id  = "websocket-${substr(sha1(each.key), 0, 12)}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.value.function]
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/${var.stage}/${each.key}"
}

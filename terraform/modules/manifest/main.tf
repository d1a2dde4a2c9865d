# What the stack is made of, computed from terraform/manifest.json (rendered
# from dev.toml by `woocom-dev render`). No provider and no resources: the
# other modules take their for_each maps from here, and the offline tests
# evaluate it with `terraform apply` on fake inputs (terraform/tests/).

terraform {
  required_version = ">= 1.5.0"
}

variable "manifest" {
  description = "The decoded terraform/manifest.json."
  type        = any
}

variable "prefix" {
  description = "Prefix of every resource name (e.g. woocom-dev-alice)."
  type        = string
}

variable "partition" {
  type    = string
  default = "aws"
}

variable "region" {
  type = string
}

variable "account_id" {
  type = string
}

variable "api_stage" {
  description = "Stage name of the REST and WebSocket APIs."
  type        = string
}

variable "websocket_api_id" {
  description = "Id of the WebSocket API, when the manifest declares one."
  type        = string
  default     = ""
}

variable "function_invoke_arns" {
  description = "Function name (as in dev.toml) => Lambda invoke ARN, for the REST API's integrations."
  type        = map(string)
  default     = {}
}

locals {
  m      = var.manifest
  deploy = local.m.deploy

  tables = {
    for name, t in try(local.m.tables, {}) : name => {
      name      = "${var.prefix}-${name}"
      hash_key  = t.partition_key.name
      range_key = try(t.sort_key.name, null)
      # Every attribute used as a key by the table or an index, once.
      attributes = distinct(concat(
        [t.partition_key],
        t.sort_key == null ? [] : [t.sort_key],
        flatten([for i in t.global_indexes : concat([i.partition_key], i.sort_key == null ? [] : [i.sort_key])]),
        [for i in t.local_indexes : i.sort_key],
      ))
      global_indexes = [for i in t.global_indexes : {
        name               = i.name
        hash_key           = i.partition_key.name
        range_key          = try(i.sort_key.name, null)
        projection_type    = i.projection.type
        non_key_attributes = i.projection.type == "INCLUDE" ? i.projection.non_key_attributes : null
      }]
      local_indexes = [for i in t.local_indexes : {
        name               = i.name
        range_key          = i.sort_key.name
        projection_type    = i.projection.type
        non_key_attributes = i.projection.type == "INCLUDE" ? i.projection.non_key_attributes : null
      }]
      stream_view_type = try(t.stream, null)
      ttl_attribute    = try(t.ttl_attribute, null)
    }
  }

  websocket        = try(local.m.websocket, null)
  websocket_routes = try(local.websocket.routes, [])
  websocket_endpoint = local.websocket == null || var.websocket_api_id == "" ? "" : format(
    "https://%s.execute-api.%s.amazonaws.com/%s", var.websocket_api_id, var.region, var.api_stage,
  )

  # The ARN templates of the rendered policies, filled in.
  placeholders = {
    "$${partition}"        = var.partition
    "$${region}"           = var.region
    "$${account_id}"       = var.account_id
    "$${prefix}"           = var.prefix
    "$${websocket_api_id}" = var.websocket_api_id
    "$${websocket_stage}"  = var.api_stage
  }

  functions = {
    for name, f in local.m.functions : name => {
      name        = "${var.prefix}-${name}"
      binary      = local.deploy.functions[name].binary
      memory      = f.memory
      timeout     = local.deploy.functions[name].timeout
      concurrency = f.concurrency
      # Asynchronous invocation: retries (0-2) and the oldest event still run.
      event_invoke = try(f.event_invoke, { maximum_retry_attempts = 2, maximum_event_age_in_seconds = 21600 })
      # dev.toml's env; values naming a declared table become the deployed
      # table's name; functions that post to @connections get the
      # management endpoint.
      env = merge(
        local.deploy.functions[name].env,
        { for k, t in local.deploy.functions[name].table_env : k => local.tables[t].name },
        { for k, v in { WOOCOM_WEBSOCKET_ENDPOINT = local.websocket_endpoint } : k => v if local.deploy.functions[name].websocket_endpoint && v != "" },
      )
      policy = replace(replace(replace(replace(replace(replace(
        jsonencode(local.deploy.functions[name].policy),
        "$${partition}", var.partition),
        "$${region}", var.region),
        "$${account_id}", var.account_id),
        "$${prefix}", var.prefix),
        "$${websocket_api_id}", var.websocket_api_id),
      "$${websocket_stage}", var.api_stage)
    }
  }

  subscriptions = {
    for i, s in try(local.m.subscriptions, []) : local.deploy.subscriptions[i].key => {
      table                              = s.table
      function                           = s.function
      queue                              = "${var.prefix}-${local.deploy.subscriptions[i].queue}"
      batch_size                         = try(s.batch_size, null)
      maximum_batching_window_in_seconds = try(s.maximum_batching_window_in_seconds, null)
      starting_position                  = coalesce(try(s.starting_position, null), "LATEST")
      maximum_retry_attempts             = try(s.maximum_retry_attempts, null)
      maximum_record_age_in_seconds      = try(s.maximum_record_age_in_seconds, null)
      bisect_batch_on_function_error     = coalesce(try(s.bisect_batch_on_function_error, null), false)
      report_batch_item_failures         = coalesce(try(s.report_batch_item_failures, null), false)
      # Lambda wants each filter as a JSON pattern string.
      # (A filter is a pattern string, a pattern object, or {pattern = ...}.)
      filters = try(s.filters, null) == null ? [] : [
        for f in s.filters : try(tostring(f.pattern), jsonencode(f.pattern), tostring(f), jsonencode(f))
      ]
    }
  }

  # ---- REST API: one OpenAPI document, so each route is declared once --
  routes = try(local.m.routes, [])
  api    = local.m.api
  cors   = try(local.api.cors, null)
  paths  = distinct([for r in local.routes : r.path])

  path_parameters = {
    for p in local.paths : p => [
      for m in regexall("\\{([^}+]+)\\+?\\}", p) : {
        name     = m[0]
        in       = "path"
        required = true
        schema   = { type = "string" }
      }
    ]
  }

  cors_headers = local.cors == null ? {} : merge(
    {
      "Access-Control-Allow-Origin"  = "'${local.cors.allow_origin}'"
      "Access-Control-Allow-Methods" = "'${join(",", local.cors.allow_methods)}'"
      "Access-Control-Allow-Headers" = "'${join(",", local.cors.allow_headers)}'"
    },
    { for k, v in { "Access-Control-Max-Age" = try(local.cors.max_age, null) } : k => "'${v}'" if v != null },
  )

  # What "Enable CORS" creates: a mock OPTIONS method answering preflights.
  cors_preflight = {
    parameters = []
    responses = {
      "200" = {
        description = "CORS preflight"
        headers     = { for h, _ in local.cors_headers : h => { schema = { type = "string" } } }
      }
    }
    "x-amazon-apigateway-integration" = {
      type                = "mock"
      passthroughBehavior = "when_no_match"
      requestTemplates    = { "application/json" = "{\"statusCode\": 200}" }
      responses = {
        default = {
          statusCode         = "200"
          responseParameters = { for h, v in local.cors_headers : "method.response.header.${h}" => v }
        }
      }
    }
  }

  openapi = {
    openapi = "3.0.1"
    info = {
      title   = "${var.prefix}-rest"
      version = "1"
    }
    "x-amazon-apigateway-binary-media-types" = local.api.binary_media_types
    paths = {
      for p in local.paths : p => merge(
        {
          for r in local.routes : (r.method == "ANY" ? "x-amazon-apigateway-any-method" : lower(r.method)) => {
            parameters = local.path_parameters[p]
            "x-amazon-apigateway-integration" = {
              type                = "aws_proxy"
              httpMethod          = "POST"
              uri                 = lookup(var.function_invoke_arns, r.function, "arn:${var.partition}:apigateway:${var.region}:lambda:path/2015-03-31/functions/${r.function}/invocations")
              timeoutInMillis     = local.api.integration_timeout_ms
              passthroughBehavior = "when_no_match"
            }
          } if r.path == p
        },
        {
          for k, v in { options = merge(local.cors_preflight, { parameters = local.path_parameters[p] }) } : k => v
          if local.cors != null && !contains([for r in local.routes : r.method if r.path == p], "OPTIONS")
        },
      )
    }
    # CORS headers on API Gateway's own errors (403 unknown route, 5xx...).
    "x-amazon-apigateway-gateway-responses" = {
      for k in ["DEFAULT_4XX", "DEFAULT_5XX"] : k => {
        responseParameters = { for h, v in local.cors_headers : "gatewayresponse.header.${h}" => v }
      } if local.cors != null
    }
  }

  # One invoke permission per route, scoped to its stage, method and path.
  rest_permissions = {
    for r in local.routes : "rest-${substr(sha1("${r.method} ${r.path}"), 0, 12)}" => {
      function    = r.function
      source_path = "${var.api_stage}/${r.method == "ANY" ? "*" : r.method}${replace(r.path, "/\\{[^}]+\\}/", "*")}"
    }
  }
}

output "format_ok" {
  description = "The rendered manifest's layout is the one these modules read."
  value       = local.m.format == 1
  precondition {
    condition     = local.m.format == 1
    error_message = "terraform/manifest.json has format ${local.m.format}; these modules read format 1. Re-render it with this version of woocom-dev (`woocom-dev render`)."
  }
}

output "stack_name" {
  value = local.m.stack.name
}

output "tables" {
  value = local.tables
}

output "functions" {
  value = local.functions
}

output "subscriptions" {
  value = local.subscriptions
}

output "websocket" {
  description = "null when dev.toml declares no [websocket]."
  value = local.websocket == null ? null : {
    route_selection_expression = try(local.websocket.route_selection_expression, "$request.body.action")
    routes                     = local.websocket_routes
    functions                  = distinct([for r in local.websocket_routes : r.function])
  }
}

output "websocket_endpoint" {
  value = local.websocket_endpoint
}

output "openapi" {
  description = "The REST API's OpenAPI 3 document with API Gateway extensions."
  value       = local.openapi
}

output "rest_permissions" {
  value = local.rest_permissions
}

output "stage_variables" {
  value = try(local.api.stage_variables, {})
}

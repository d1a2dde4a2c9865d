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
      # Asynchronous invocation: retries (0-2), the oldest event still run,
      # and where records go: on_success / on_failure (a queue, topic or
      # function) and dead_letter (a queue or topic), each null or
      # { kind, name } with the name as in dev.toml.
      event_invoke = {
        maximum_retry_attempts       = try(f.event_invoke.maximum_retry_attempts, 2)
        maximum_event_age_in_seconds = try(f.event_invoke.maximum_event_age_in_seconds, 21600)
        on_success                   = try(f.event_invoke.on_success, null)
        on_failure                   = try(f.event_invoke.on_failure, null)
        dead_letter                  = try(f.event_invoke.dead_letter, null)
      }
      # dev.toml's env; values naming a declared table or bus become the
      # deployed table's or bus's name (`default` stays `default`);
      # functions that post to @connections get the management endpoint.
      env = merge(
        local.deploy.functions[name].env,
        { for k, t in local.deploy.functions[name].table_env : k => local.tables[t].name },
        { for k, b in try(local.deploy.functions[name].bus_env, {}) : k => local.bus_names[b] },
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

  # Event source mappings: a table's stream or an SQS queue. Stream
  # mappings send failed batches' records to on_failure: their own queue
  # (dedicated, created by modules/subscriptions), or a queue or topic of
  # [queues] / [topics]. SQS mappings have none (the queue's redrive
  # policy applies), and no stream-only settings.
  subscriptions = {
    for i, s in try(local.m.subscriptions, []) : local.deploy.subscriptions[i].key => {
      source_kind                        = local.deploy.subscriptions[i].source.kind
      source                             = local.deploy.subscriptions[i].source.name
      function                           = s.function
      on_failure                         = local.deploy.subscriptions[i].on_failure
      dedicated_queue                    = try(local.deploy.subscriptions[i].on_failure.dedicated, false) ? "${var.prefix}-${local.deploy.subscriptions[i].on_failure.name}" : null
      batch_size                         = try(s.batch_size, null)
      maximum_batching_window_in_seconds = try(s.maximum_batching_window_in_seconds, null)
      starting_position                  = local.deploy.subscriptions[i].source.kind == "queue" ? null : coalesce(try(s.starting_position, null), "LATEST")
      maximum_retry_attempts             = local.deploy.subscriptions[i].source.kind == "queue" ? null : try(s.maximum_retry_attempts, null)
      maximum_record_age_in_seconds      = local.deploy.subscriptions[i].source.kind == "queue" ? null : try(s.maximum_record_age_in_seconds, null)
      bisect_batch_on_function_error     = local.deploy.subscriptions[i].source.kind == "queue" ? null : coalesce(try(s.bisect_batch_on_function_error, null), false)
      report_batch_item_failures         = coalesce(try(s.report_batch_item_failures, null), false)
      maximum_concurrency                = try(s.maximum_concurrency, null)
      # Lambda wants each filter as a JSON pattern string.
      # (A filter is a pattern string, a pattern object, or {pattern = ...}.)
      filters = try(s.filters, null) == null ? [] : [
        for f in s.filters : try(tostring(f.pattern), jsonencode(f.pattern), tostring(f), jsonencode(f))
      ]
    }
  }

  # ---- Queues and topics (modules/messaging) ---------------------------
  topics_declared = try(local.m.topics, {})

  # Who sends to a queue as SNS: topics subscribing it, or naming it as a
  # subscription's dead-letter queue. Its queue policy lets exactly those.
  queue_publishers = {
    for name, _ in try(local.m.queues, {}) : name => sort(distinct(flatten([
      for t, topic in local.topics_declared : [
        for s in topic.subscriptions : t
        if(s.protocol == "sqs" && s.endpoint == name) || try(s.dead_letter_queue, null) == name
      ]
    ])))
  }

  queues = {
    for name, q in try(local.m.queues, {}) : name => {
      name                        = "${var.prefix}-${name}"
      fifo_queue                  = q.fifo_queue
      content_based_deduplication = q.content_based_deduplication
      visibility_timeout_seconds  = q.visibility_timeout_seconds
      message_retention_seconds   = q.message_retention_seconds
      delay_seconds               = q.delay_seconds
      max_message_size            = q.max_message_size
      receive_wait_time_seconds   = q.receive_wait_time_seconds
      # { dead_letter_queue (as in dev.toml), max_receive_count } or null.
      redrive_policy = try(q.redrive_policy, null)
      # allowAll | denyAll | byQueue (with source_queues, as in dev.toml).
      redrive_allow_policy = try(q.redrive_allow_policy, null)
      source_queues        = try(q.source_queues, [])
      topic_publishers     = local.queue_publishers[name]
      event_rules          = local.queue_event_rules[name]
    }
  }

  # Queues of [queues] that receive failures: redrive targets, topic
  # subscriptions' dead-letter queues, functions' dead_letter and
  # on_failure queues, stream mappings' on_failure queues, EventBridge
  # targets' dead-letter queues. A message there
  # is work that failed for good (modules/monitoring alarms on depth).
  dead_letter_queues = sort(distinct(concat(
    [for q in values(try(local.m.queues, {})) : q.redrive_policy.dead_letter_queue if try(q.redrive_policy, null) != null],
    flatten([for t in values(local.topics_declared) : [for s in t.subscriptions : s.dead_letter_queue if try(s.dead_letter_queue, null) != null]]),
    [for f in values(local.functions) : f.event_invoke.dead_letter.name if try(f.event_invoke.dead_letter.kind, "") == "queue"],
    [for f in values(local.functions) : f.event_invoke.on_failure.name if try(f.event_invoke.on_failure.kind, "") == "queue"],
    [for s in values(local.subscriptions) : s.on_failure.name if try(s.on_failure.kind, "") == "queue" && !try(s.on_failure.dedicated, true)],
    [for t in values(local.event_targets) : t.dead_letter_queue if t.dead_letter_queue != null],
  )))

  topics = {
    for name, t in local.topics_declared : name => {
      name                        = "${var.prefix}-${name}"
      fifo_topic                  = t.fifo_topic
      content_based_deduplication = t.content_based_deduplication
      event_rules                 = local.topic_event_rules[name]
    }
  }

  # One per topic and endpoint (SNS keeps one subscription per protocol and
  # endpoint on a topic), so reordering dev.toml replaces nothing.
  topic_subscriptions = merge([
    for t, topic in local.topics_declared : {
      for s in topic.subscriptions : "${t}/${s.protocol}/${s.endpoint}" => {
        topic                = t
        protocol             = s.protocol
        endpoint             = s.endpoint
        raw_message_delivery = s.raw_message_delivery
        filter_policy        = try(s.filter_policy, null) == null ? null : try(tostring(s.filter_policy), jsonencode(s.filter_policy))
        filter_policy_scope  = try(s.filter_policy, null) == null ? null : s.filter_policy_scope
        dead_letter_queue    = try(s.dead_letter_queue, null)
      }
    }
  ]...)

  # ---- EventBridge (modules/events) -----------------------------------
  buses_declared = try(local.m.buses, {})
  rules_declared = try(local.m.rules, {})

  # Bus as dev.toml names it => its name in AWS.
  bus_names = merge(
    { default = "default" },
    { for name, _ in local.buses_declared : name => "${var.prefix}-${name}" },
  )

  buses = {
    for name, b in local.buses_declared : name => {
      name        = local.bus_names[name]
      description = try(b.description, null)
    }
  }

  rules = {
    for name, r in local.rules_declared : name => {
      name                = "${var.prefix}-${name}"
      bus                 = r.bus
      bus_name            = local.bus_names[r.bus]
      description         = try(r.description, null)
      event_pattern       = try(r.event_pattern, null)
      schedule_expression = try(r.schedule_expression, null)
      state               = r.state
    }
  }

  # One per rule and target id (ids are unique within a rule). kind is
  # function, queue, topic or bus; names (and dead_letter_queue) are as in
  # dev.toml. A bus target is given no retry policy: AWS's CDK documents
  # that EventBridge supports none there (its EventBus target has no
  # retry settings), so dev.toml's is applied locally only.
  # <https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_events_targets.EventBusProps.html>
  event_targets = merge([
    for rule, r in local.rules_declared : {
      for t in r.targets : "${rule}/${t.id}" => {
        rule              = rule
        target_id         = t.id
        kind              = t.kind
        name              = t.name
        input             = try(t.input, null)
        input_path        = try(t.input_path, null)
        input_transformer = try(t.input_transformer, null)
        message_group_id  = try(t.message_group_id, null)
        retry_policy      = t.kind == "bus" ? null : t.retry_policy
        dead_letter_queue = try(t.dead_letter_queue, null)
      }
    }
  ]...)

  # Who sends to a queue or topic as EventBridge: the rules targeting it,
  # or naming it as a target's dead-letter queue.
  queue_event_rules = {
    for name, _ in try(local.m.queues, {}) : name => sort(distinct([
      for t in values(local.event_targets) : t.rule
      if(t.kind == "queue" && t.name == name) || t.dead_letter_queue == name
    ]))
  }
  topic_event_rules = {
    for name, _ in local.topics_declared : name => sort(distinct([
      for t in values(local.event_targets) : t.rule if t.kind == "topic" && t.name == name
    ]))
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

output "queues" {
  description = "[queues] as modules/messaging creates them."
  value       = local.queues
}

output "topics" {
  value = local.topics
}

output "dead_letter_queues" {
  description = "Deployed name => deployed name of every queue of [queues] that receives failures (for depth alarms)."
  value       = { for q in local.dead_letter_queues : local.queues[q].name => local.queues[q].name }
}

output "topic_subscriptions" {
  description = "Each topic subscription, keyed <topic>/<protocol>/<endpoint>; endpoints of sqs and lambda ones are names as in dev.toml."
  value       = local.topic_subscriptions
}

output "buses" {
  description = "[buses] (custom buses; `default` is the account's): name in AWS and description."
  value       = local.buses
}

output "rules" {
  description = "[rules]: name in AWS, bus (as in dev.toml and in AWS), pattern or schedule, state."
  value       = local.rules
}

output "event_targets" {
  description = "Each rule target, keyed <rule>/<target id>; names as in dev.toml."
  value       = local.event_targets
}

output "bus_names" {
  description = "Bus (as in dev.toml, `default` included) => its name in AWS."
  value       = local.bus_names
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

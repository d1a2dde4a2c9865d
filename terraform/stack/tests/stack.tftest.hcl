# The stack root planned and applied against a mocked AWS provider (real
# schema from hashicorp/aws, no AWS account): the rendered manifest, the
# full fixture (every section) and one without WebSocket, CORS or streams.
# Run by devserver/tests/smoke/terraform-validate.sh:
#   terraform -chdir=terraform/stack test
# (env.tftest.hcl is run there once per env/*.tfvars.)

mock_provider "aws" {
  source = "./tests/aws"
}

variables {
  stack       = "dev-alice"
  region      = "eu-west-1"
  package_dir = "../tests/fixtures/packages"
}

run "rendered_manifest" {
  variables {
    manifest_file = "../manifest.json"
  }

  assert {
    condition     = alltrue([for b in values(module.functions.role_boundaries) : b == "arn:aws:iam::123456789012:policy/woocom/woocom-dev-alice-boundary-eu-west-1"])
    error_message = "Every function role carries the stack's permissions boundary: ${jsonencode(module.functions.role_boundaries)}"
  }
  assert {
    condition     = length(module.functions.role_boundaries) == length(jsondecode(file("../manifest.json")).functions)
    error_message = "One role per function."
  }
  assert {
    condition     = alltrue([for n in values(module.functions.names) : startswith(n, "woocom-dev-alice-")])
    error_message = "Every function is named woocom-dev-alice-…"
  }
  assert {
    condition     = module.frontend.minimum_protocol_version == "TLSv1"
    error_message = "With the default CloudFront certificate AWS reports TLSv1; anything else changes on every plan."
  }
  assert {
    condition     = length(module.subscriptions.mapping_ids) == length(jsondecode(file("../manifest.json")).subscriptions)
    error_message = "One event source mapping per subscription."
  }
  assert {
    condition     = contains(values(module.monitoring.alarm_names), "woocom-dev-alice-api-5xx")
    error_message = "The 5xx alarm exists: ${jsonencode(module.monitoring.alarm_names)}"
  }
  assert {
    condition     = length(module.websocket_api.route_keys) == length(jsondecode(file("../manifest.json")).websocket.routes)
    error_message = "One WebSocket route per manifest route."
  }
  assert {
    condition     = output.permissions_boundary == "arn:aws:iam::123456789012:policy/woocom/woocom-dev-alice-boundary-eu-west-1"
    error_message = "permissions_boundary output"
  }
}

run "every_section" {
  variables {
    manifest_file = "../tests/fixtures/full-rendered.json"
  }

  assert {
    condition     = length(module.subscriptions.mapping_ids) == 2 && length(module.websocket_api.route_keys) > 0
    error_message = "The full fixture has two subscriptions and WebSocket routes."
  }
  assert {
    condition     = anytrue([for p in values(module.manifest.openapi.paths) : contains(keys(p), "options")])
    error_message = "CORS adds OPTIONS preflights."
  }
}

run "without_websocket_cors_or_streams" {
  variables {
    manifest_file = "../tests/fixtures/minimal-rendered.json"
  }

  assert {
    condition     = output.websocket_url == "" && length(module.websocket_api.route_keys) == 0
    error_message = "No WebSocket API without [websocket]."
  }
  assert {
    condition     = length(module.subscriptions.mapping_ids) == 0 && length(module.subscriptions.queue_names) == 0
    error_message = "No event source mapping or on-failure queue without subscriptions."
  }
  assert {
    condition     = !anytrue([for p in values(module.manifest.openapi.paths) : contains(keys(p), "options")])
    error_message = "No OPTIONS preflight without CORS."
  }
  assert {
    condition     = length([for k in keys(module.monitoring.alarm_names) : k if startswith(k, "iterator-age-") || startswith(k, "depth-")]) == 0
    error_message = "No stream alarms without streams."
  }
}

# Queues, topics, an SQS mapping and destinations (issue #14): every
# resource from the fixture, with real ARNs (the mock gives every queue,
# topic and function one ARN, so they are overridden per instance), and
# each grant naming exactly its sender.
run "queues_topics_and_destinations" {
  variables {
    manifest_file = "../tests/fixtures/events-rendered.json"
  }

  override_resource {
    target = module.messaging.aws_sqs_queue.this["orders"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders", id = "https://sqs.eu-west-1.amazonaws.com/123456789012/woocom-dev-alice-orders" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["orders-dlq"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders-dlq" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["notify-dlq"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-notify-dlq" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["mail-failures"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-mail-failures" }
  }
  override_resource {
    target = module.messaging.aws_sns_topic.this["order-events"]
    values = { arn = "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events" }
  }
  override_resource {
    target = module.functions.aws_lambda_function.this["audit"]
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-audit" }
  }
  override_resource {
    target = module.functions.aws_lambda_function.this["mailer"]
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-mailer" }
  }

  # Queues: every field of dev.toml, prefixed names, encryption.
  assert {
    condition = (
      module.messaging.queues["orders"].name == "woocom-dev-alice-orders"
      && module.messaging.queues["orders"].visibility_timeout_seconds == 60
      && module.messaging.queues["orders"].message_retention_seconds == 86400
      && module.messaging.queues["orders"].delay_seconds == 2
      && module.messaging.queues["orders"].max_message_size == 262144
      && module.messaging.queues["orders"].receive_wait_time_seconds == 20
      && alltrue([for q in module.messaging.queues : q.sqs_managed_sse_enabled])
    )
    error_message = "[queues.orders] is deployed with its settings, and every queue is encrypted."
  }
  assert {
    condition = (
      module.messaging.queues["payments.fifo"].name == "woocom-dev-alice-payments.fifo"
      && module.messaging.queues["payments.fifo"].fifo_queue
      && module.messaging.queues["payments.fifo"].content_based_deduplication
    )
    error_message = "The FIFO queue keeps .fifo and content-based deduplication."
  }
  assert {
    condition = jsondecode(module.messaging.redrive_policies["orders"]) == {
      deadLetterTargetArn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders-dlq"
      maxReceiveCount     = 3
    }
    error_message = "orders redrives to orders-dlq after 3 receives: ${module.messaging.redrive_policies["orders"]}"
  }
  assert {
    condition = (
      jsondecode(module.messaging.redrive_allow_policies["orders-dlq"]) == {
        redrivePermission = "byQueue"
        sourceQueueArns   = ["arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders"]
      }
      && jsondecode(module.messaging.redrive_allow_policies["notify-dlq"]) == { redrivePermission = "denyAll" }
      && length(module.messaging.redrive_allow_policies) == 2
    )
    error_message = "Redrive allow policies as declared (byQueue with its source, denyAll), none where not declared."
  }

  # The topic, encrypted, and its subscriptions.
  assert {
    condition = (
      module.messaging.topics["order-events"].name == "woocom-dev-alice-order-events"
      && module.messaging.topics["order-events"].kms_master_key_id == "alias/aws/sns"
    )
    error_message = "The topic is prefixed and KMS-encrypted."
  }
  assert {
    condition = (
      length(module.messaging.subscriptions) == 3
      && module.messaging.subscriptions["order-events/sqs/orders"].endpoint == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders"
      && module.messaging.subscriptions["order-events/sqs/orders"].raw_message_delivery
      && jsondecode(module.messaging.subscriptions["order-events/sqs/orders"].filter_policy) == { type = ["OrderPlaced"] }
      && module.messaging.subscriptions["order-events/sqs/orders"].filter_policy_scope == "MessageAttributes"
      && jsondecode(module.messaging.subscriptions["order-events/sqs/orders"].redrive_policy) == { deadLetterTargetArn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders-dlq" }
    )
    error_message = "The queue subscription: raw delivery, its filter policy and scope, its dead-letter queue."
  }
  assert {
    condition = (
      module.messaging.subscriptions["order-events/lambda/mailer"].endpoint == "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-mailer"
      && module.messaging.subscriptions["order-events/lambda/mailer"].filter_policy_scope == "MessageBody"
      && module.messaging.subscriptions["order-events/lambda/mailer"].raw_message_delivery == false
      && module.messaging.subscriptions["order-events/https/https://hooks.example.com/orders"].endpoint == "https://hooks.example.com/orders"
      && module.messaging.subscriptions["order-events/https/https://hooks.example.com/orders"].filter_policy == null
    )
    error_message = "The function and HTTPS subscriptions."
  }
  assert {
    condition = (
      length(module.messaging.lambda_permissions) == 1
      && module.messaging.lambda_permissions["order-events/mailer"].principal == "sns.amazonaws.com"
      && module.messaging.lambda_permissions["order-events/mailer"].action == "lambda:InvokeFunction"
      && module.messaging.lambda_permissions["order-events/mailer"].function_name == "woocom-dev-alice-mailer"
      && module.messaging.lambda_permissions["order-events/mailer"].source_arn == "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"
    )
    error_message = "SNS may invoke the subscribed function, for that topic only."
  }
  # The queue policies: SNS may send to the subscribed queue and to the
  # subscription's dead-letter queue, for this topic only; no other queue
  # gets a policy.
  assert {
    condition = (
      toset(keys(module.messaging.queue_policies)) == toset(["orders", "orders-dlq"])
      && jsondecode(module.messaging.queue_policies["orders"]).Statement == [{
        Sid       = "TopicsOfTheStack"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders"
        Condition = { ArnEquals = { "aws:SourceArn" = ["arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"] } }
      }]
      && jsondecode(module.messaging.queue_policies["orders-dlq"]).Statement[0].Resource == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders-dlq"
    )
    error_message = "Queue policies: ${jsonencode(module.messaging.queue_policies)}"
  }

  # Event source mappings: the SQS one with its scaling, batching and
  # filters and no stream settings; the stream ones with their on-failure
  # destinations (a topic, a queue of [queues]).
  assert {
    condition = (
      module.subscriptions.mappings["fulfil-orders"].event_source_arn == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders"
      && module.subscriptions.mappings["fulfil-orders"].scaling_config[0].maximum_concurrency == 5
      && module.subscriptions.mappings["fulfil-orders"].batch_size == 20
      && module.subscriptions.mappings["fulfil-orders"].maximum_batching_window_in_seconds == 5
      && module.subscriptions.mappings["fulfil-orders"].function_response_types == toset(["ReportBatchItemFailures"])
      && jsondecode(one(module.subscriptions.mappings["fulfil-orders"].filter_criteria[0].filter).pattern) == { body = { kind = ["order"] } }
      && module.subscriptions.mappings["fulfil-orders"].starting_position == null
      && length(module.subscriptions.mappings["fulfil-orders"].destination_config) == 0
    )
    error_message = "The SQS mapping: ${jsonencode(module.subscriptions.mappings["fulfil-orders"])}"
  }
  assert {
    condition = (
      module.subscriptions.on_failure_arns["notify-orders"] == "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"
      && module.subscriptions.on_failure_arns["audit-orders"] == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-mail-failures"
      && module.subscriptions.on_failure_arns["fulfil-orders"] == null
      && length(module.subscriptions.queue_names) == 0
    )
    error_message = "Stream mappings fail to the topic and queue named, with no dedicated queue: ${jsonencode(module.subscriptions.on_failure_arns)}"
  }

  # Asynchronous invocation: destinations and the dead-letter queue.
  assert {
    condition = (
      module.functions.destinations["notify"].on_success == "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"
      && module.functions.destinations["notify"].on_failure == "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-audit"
      && module.functions.destinations["mailer"].on_failure == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-mail-failures"
      && module.functions.destinations["fulfil"] == { on_success = null, on_failure = null }
      && module.functions.dead_letter_arns == { notify = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-notify-dlq" }
      && module.functions.event_invoke_configs["notify"].maximum_retry_attempts == 1
      && module.functions.event_invoke_configs["notify"].maximum_event_age_in_seconds == 3600
    )
    error_message = "Destinations: ${jsonencode(module.functions.destinations)}, dead-letter: ${jsonencode(module.functions.dead_letter_arns)}"
  }

  # Roles: each may reach exactly what it polls and sends to.
  assert {
    condition = (
      [for s in jsondecode(module.functions.role_policies["fulfil"]).Statement : s if s.Sid == "QueueSourceOrders"] == [{
        Sid      = "QueueSourceOrders"
        Effect   = "Allow"
        Action   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        Resource = ["arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-orders"]
      }]
      && {
        for s in jsondecode(module.functions.role_policies["notify"]).Statement : s.Sid => s.Resource
        if contains(["SendToQueues", "PublishToTopics", "InvokeFunctions"], s.Sid)
        } == {
        SendToQueues    = ["arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-notify-dlq"]
        PublishToTopics = ["arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"]
        InvokeFunctions = ["arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-audit"]
      }
      && strcontains(module.functions.role_policies["audit"], "lambda:InvokeFunction") == false
      && strcontains(module.functions.role_policies["mailer"], "sqs:ReceiveMessage") == false
    )
    error_message = "Role policies: ${jsonencode(module.functions.role_policies)}"
  }

  # 1 MiB (SQS's default) is deployed as the provider's 256 KiB, and said.
  assert {
    condition = (
      module.messaging.queues["notify-dlq"].max_message_size == 262144
      && output.capped_message_size_queues == tolist(["mail-failures", "notify-dlq", "orders-dlq", "payments.fifo"])
    )
    error_message = "Capped: ${jsonencode(output.capped_message_size_queues)}"
  }

  # Failures waiting in a queue raise an alarm.
  assert {
    condition     = alltrue([for q in ["orders-dlq", "notify-dlq", "mail-failures"] : contains(values(module.monitoring.alarm_names), "woocom-dev-alice-${q}-depth")])
    error_message = "Depth alarms on the dead-letter queues: ${jsonencode(module.monitoring.alarm_names)}"
  }
}

# EventBridge: custom buses, rules with patterns and a schedule, targets of
# every kind, and each grant naming exactly its rule (the mock gives every
# bus, rule, queue, topic and function one ARN, so they are overridden per
# instance).
run "buses_rules_and_targets" {
  variables {
    manifest_file = "../tests/fixtures/eventbridge-rendered.json"
  }

  override_resource {
    target = module.events.aws_cloudwatch_event_bus.this["shop"]
    values = { arn = "arn:aws:events:eu-west-1:123456789012:event-bus/woocom-dev-alice-shop" }
  }
  override_resource {
    target = module.events.aws_cloudwatch_event_bus.this["partners"]
    values = { arn = "arn:aws:events:eu-west-1:123456789012:event-bus/woocom-dev-alice-partners" }
  }
  override_resource {
    target = module.events.aws_cloudwatch_event_rule.this["order-placed"]
    values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-order-placed" }
  }
  override_resource {
    target = module.events.aws_cloudwatch_event_rule.this["invoice-due"]
    values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-invoice-due" }
  }
  override_resource {
    target = module.events.aws_cloudwatch_event_rule.this["nightly"]
    values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-nightly" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["fulfilment"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-fulfilment" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["invoices.fifo"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-invoices.fifo" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["events-dlq"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-events-dlq" }
  }
  override_resource {
    target = module.messaging.aws_sqs_queue.this["audit-log"]
    values = { arn = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-audit-log" }
  }
  override_resource {
    target = module.messaging.aws_sns_topic.this["order-events"]
    values = { arn = "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events" }
  }
  override_resource {
    target = module.functions.aws_lambda_function.this["ship"]
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-ship" }
  }
  override_resource {
    target = module.functions.aws_lambda_function.this["audit"]
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-audit" }
  }

  # Buses: the custom ones, prefixed; `default` is not created.
  assert {
    condition = (
      toset([for b in module.events.buses : b.name]) == toset(["woocom-dev-alice-shop", "woocom-dev-alice-partners"])
      && module.events.buses["shop"].description == "facts of the shop's services"
    )
    error_message = "Buses: ${jsonencode(module.events.buses)}"
  }

  # Rules: prefixed, on their bus, with their pattern or schedule and state.
  assert {
    condition = (
      module.events.rules["order-placed"].name == "woocom-dev-alice-order-placed"
      && module.events.rules["order-placed"].event_bus_name == "woocom-dev-alice-shop"
      && jsondecode(module.events.rules["order-placed"].event_pattern) == { source = ["woocom.orders"], detail-type = ["OrderPlaced"] }
      && module.events.rules["order-placed"].state == "ENABLED"
      && module.events.rules["order-placed"].description == "an order was placed"
      && module.events.rules["order-placed"].schedule_expression == null
      && module.events.rules["nightly"].event_bus_name == "default"
      && module.events.rules["nightly"].schedule_expression == "rate(1 day)"
      && module.events.rules["nightly"].event_pattern == null
      && module.events.rules["nightly"].state == "DISABLED"
    )
    error_message = "Rules: ${jsonencode(module.events.rules)}"
  }

  # Targets: the deployed resources' ARNs, input, retry policy, DLQ.
  assert {
    condition = (
      length(module.events.targets) == 8
      && module.events.targets["order-placed/ship"].arn == "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-ship"
      && module.events.targets["order-placed/ship"].rule == "woocom-dev-alice-order-placed"
      && module.events.targets["order-placed/ship"].event_bus_name == "woocom-dev-alice-shop"
      && module.events.targets["order-placed/ship"].target_id == "ship"
      && module.events.targets["order-placed/ship"].input_path == "$.detail"
      && module.events.targets["order-placed/ship"].retry_policy[0].maximum_retry_attempts == 10
      && module.events.targets["order-placed/ship"].retry_policy[0].maximum_event_age_in_seconds == 3600
      && module.events.targets["order-placed/ship"].dead_letter_config[0].arn == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-events-dlq"
      && module.events.targets["order-placed/ship"].role_arn == null
    )
    error_message = "The function target: ${jsonencode(module.events.targets["order-placed/ship"])}"
  }
  assert {
    condition = (
      module.events.targets["order-placed/fulfilment"].arn == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-fulfilment"
      && module.events.targets["order-placed/fulfilment"].input_transformer[0].input_paths == tomap({ order = "$.detail.orderId" })
      && module.events.targets["order-placed/fulfilment"].input_transformer[0].input_template == "{\"order\": <order>}"
      && module.events.targets["order-placed/fulfilment"].retry_policy[0].maximum_retry_attempts == 185
      && length(module.events.targets["order-placed/fulfilment"].sqs_target) == 0
      && module.events.targets["invoice-due/invoices.fifo"].arn == "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-invoices.fifo"
      && module.events.targets["invoice-due/invoices.fifo"].sqs_target[0].message_group_id == "invoices"
      && jsondecode(module.events.targets["invoice-due/invoices.fifo"].input) == { kind = "invoice-due" }
      && module.events.targets["order-placed/order-events"].arn == "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"
      && module.events.targets["nightly/audit"].arn == "arn:aws:lambda:eu-west-1:123456789012:function:woocom-dev-alice-audit"
      && module.events.targets["nightly/audit"].event_bus_name == "default"
    )
    error_message = "Queue, FIFO queue, topic and scheduled targets: ${jsonencode(module.events.targets)}"
  }

  # Bus targets: a role per target bus, allowed PutEvents on that bus only;
  # no retry policy (see modules/manifest's event_targets).
  assert {
    condition = (
      module.events.targets["order-placed/to-partners"].arn == "arn:aws:events:eu-west-1:123456789012:event-bus/woocom-dev-alice-partners"
      && module.events.targets["order-placed/to-partners"].role_arn != null
      && length(module.events.targets["order-placed/to-partners"].retry_policy) == 0
      && module.events.targets["invoice-due/default"].arn == "arn:aws:events:eu-west-1:123456789012:event-bus/default"
      && jsondecode(module.events.bus_target_role_policies["partners"]).Statement == [{
        Sid      = "PutEventsOnTheTargetBus"
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = ["arn:aws:events:eu-west-1:123456789012:event-bus/woocom-dev-alice-partners"]
      }]
      && jsondecode(module.events.bus_target_role_policies["default"]).Statement[0].Resource == ["arn:aws:events:eu-west-1:123456789012:event-bus/default"]
      && module.events.bus_target_roles["partners"].name == "woocom-dev-alice-events-to-partners"
      && module.events.bus_target_roles["partners"].permissions_boundary == "arn:aws:iam::123456789012:policy/woocom/woocom-dev-alice-boundary-eu-west-1"
    )
    error_message = "Bus targets: ${jsonencode(module.events.bus_target_role_policies)}"
  }

  # EventBridge may invoke each function target for its rule only.
  assert {
    condition = (
      length(module.events.lambda_permissions) == 2
      && module.events.lambda_permissions["order-placed/ship"].principal == "events.amazonaws.com"
      && module.events.lambda_permissions["order-placed/ship"].function_name == "woocom-dev-alice-ship"
      && module.events.lambda_permissions["order-placed/ship"].source_arn == "arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-order-placed"
      && module.events.lambda_permissions["nightly/audit"].source_arn == "arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-nightly"
    )
    error_message = "Invoke permissions: ${jsonencode(module.events.lambda_permissions)}"
  }

  # Queue policies: EventBridge may send to the queue targets and the
  # dead-letter queue for exactly the rules that use them; the queue a
  # topic subscription also delivers to has one policy with both grants.
  assert {
    condition = (
      toset(keys(module.messaging.queue_policies)) == toset(["fulfilment", "invoices.fifo", "events-dlq", "audit-log"])
      && jsondecode(module.messaging.queue_policies["events-dlq"]).Statement == [{
        Sid       = "RulesOfTheStack"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = "arn:aws:sqs:eu-west-1:123456789012:woocom-dev-alice-events-dlq"
        Condition = { ArnEquals = { "aws:SourceArn" = ["arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-order-placed"] } }
      }]
      && jsondecode(module.messaging.queue_policies["invoices.fifo"]).Statement[0].Condition.ArnEquals["aws:SourceArn"] == ["arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-invoice-due"]
      && [for s in jsondecode(module.messaging.queue_policies["audit-log"]).Statement : [s.Sid, s.Principal.Service, s.Condition.ArnEquals["aws:SourceArn"]]] == [
        ["TopicsOfTheStack", "sns.amazonaws.com", ["arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"]],
        ["RulesOfTheStack", "events.amazonaws.com", ["arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-order-placed"]],
      ]
    )
    error_message = "Queue policies: ${jsonencode(module.messaging.queue_policies)}"
  }

  # The topic target: EventBridge may publish for its rule only, and the
  # topic is not under aws/sns, whose key EventBridge cannot use.
  assert {
    condition = (
      jsondecode(module.messaging.topic_policies["order-events"]).Statement == [{
        Sid       = "RulesOfTheStack"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = "arn:aws:sns:eu-west-1:123456789012:woocom-dev-alice-order-events"
        Condition = { ArnEquals = { "aws:SourceArn" = ["arn:aws:events:eu-west-1:123456789012:rule/woocom-dev-alice-shop/woocom-dev-alice-order-placed"] } }
      }]
      && module.messaging.topics["order-events"].kms_master_key_id == null
    )
    error_message = "Topic policy: ${jsonencode(module.messaging.topic_policies)}"
  }

  # The function that puts events: its env names the deployed bus, and its
  # role may put events there only.
  assert {
    condition = (
      module.manifest.functions["orders"].env == { EVENT_BUS_NAME = "woocom-dev-alice-shop", ORDERS_TABLE = "woocom-dev-alice-orders" }
      && [for s in jsondecode(module.functions.role_policies["orders"]).Statement : s.Resource if s.Sid == "PutEvents"] == [["arn:aws:events:eu-west-1:123456789012:event-bus/woocom-dev-alice-shop"]]
      && output.event_bus_names == { default = "default", shop = "woocom-dev-alice-shop", partners = "woocom-dev-alice-partners" }
    )
    error_message = "The publisher: ${jsonencode(module.manifest.functions["orders"].env)}"
  }

  # Failed deliveries waiting in the dead-letter queue raise an alarm.
  assert {
    condition     = contains(values(module.monitoring.alarm_names), "woocom-dev-alice-events-dlq-depth")
    error_message = "Depth alarm on the EventBridge dead-letter queue: ${jsonencode(module.monitoring.alarm_names)}"
  }
}

# modules/events on its own, planned: a rule too long once prefixed stops
# the plan with the rule's name.
run "rule_name_too_long_for_the_prefix" {
  command = plan

  module {
    source = "../modules/events"
  }

  variables {
    buses                = {}
    rules                = { long = { name = "woocom-dev-a-very-long-developer-name-${join("", [for i in range(40) : "r"])}", bus = "default", description = null, event_pattern = "{\"source\": [\"a\"]}", schedule_expression = null, state = "ENABLED" } }
    targets              = {}
    region               = "eu-west-1"
    account_id           = "123456789012"
    prefix               = "woocom-dev-a-very-long-developer-name"
    permissions_boundary = "arn:aws:iam::123456789012:policy/woocom/woocom-dev-x-boundary-eu-west-1"
  }

  expect_failures = [aws_cloudwatch_event_rule.this]
}

# Stage logging needs the region's API Gateway CloudWatch role: a region
# without bootstrap stops at plan with instructions, not at the stage.
run "region_without_bootstrap" {
  command = plan

  override_data {
    target = data.aws_iam_roles.apigateway_cloudwatch
    values = { arns = [], names = [] }
  }

  expect_failures = [data.aws_iam_roles.apigateway_cloudwatch]
}

# Staging and production without alarm subscribers: a warning.
run "staging_without_subscribers" {
  command = plan

  variables {
    stack = "staging"
  }

  expect_failures = [check.alerts_reach_someone]
}

run "staging_with_subscribers" {
  variables {
    stack                 = "staging"
    alarm_emails          = ["oncall@example.com"]
    alarm_https_endpoints = ["https://events.example.com/integration/sns/secret"]
  }

  assert {
    condition     = alltrue([for n in values(module.functions.names) : startswith(n, "woocom-staging-")])
    error_message = "Staging's functions are woocom-staging-…"
  }
}

run "bad_stack_name" {
  command = plan

  variables {
    stack = "dev-Alice"
  }

  expect_failures = [var.stack]
}

# The alarms themselves (modules/monitoring on its own).
run "alarms" {
  command = plan

  module {
    source = "../modules/monitoring"
  }

  variables {
    name                  = "woocom-staging"
    rest_api_name         = "woocom-staging-rest"
    rest_api_stage        = "api"
    function_names        = { products = "woocom-staging-products", notify = "woocom-staging-notify" }
    stream_functions      = { notify-orders = "notify" }
    queue_names           = { q = "woocom-staging-notify-orders-failures" }
    alarm_emails          = ["oncall@example.com", "team@example.com"]
    alarm_https_endpoints = ["https://events.example.com/integration/sns/secret"]
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["api-5xx"].metric_name == "5XXError"
      && aws_cloudwatch_metric_alarm.this["api-5xx"].threshold == 150
      && aws_cloudwatch_metric_alarm.this["api-5xx"].period == 60
      && aws_cloudwatch_metric_alarm.this["api-5xx"].comparison_operator == "GreaterThanThreshold"
    )
    error_message = "The REST API alarm fires above 150 5xx a minute."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["errors-products"].threshold >= 1
      && aws_cloudwatch_metric_alarm.this["errors-products"].datapoints_to_alarm >= 2
    )
    error_message = "One failed invocation does not fire the errors alarm."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 1 + 2 * 2 + 1 + 1
    error_message = "5xx, errors and throttles per function, iterator age per stream consumer, depth per queue: ${jsonencode(keys(aws_cloudwatch_metric_alarm.this))}"
  }
  assert {
    condition     = length(aws_sns_topic_subscription.email) == 2 && length(aws_sns_topic_subscription.https) == 1 && aws_sns_topic_subscription.https[0].protocol == "https"
    error_message = "Every address and endpoint is subscribed."
  }
}

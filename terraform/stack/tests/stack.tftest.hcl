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

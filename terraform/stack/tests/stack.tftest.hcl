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

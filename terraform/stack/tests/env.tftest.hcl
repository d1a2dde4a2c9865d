# Each environment's tfvars applied to the stack root against a mocked AWS
# provider, with the rendered manifest, with one without WebSocket, CORS
# or streams, with queues, topics and destinations, and with buses and
# rules. Run once per env/*.tfvars by
# devserver/tests/smoke/terraform-validate.sh:
#   terraform -chdir=terraform/stack test -filter=tests/env.tftest.hcl \
#     -var-file=env/<environment>.tfvars -var stack=<stack>

mock_provider "aws" {
  source = "./tests/aws"
}

variables {
  region       = "eu-west-1"
  package_dir  = "../tests/fixtures/packages"
  alarm_emails = ["oncall@example.com"]
}

run "environment" {
  assert {
    condition     = alltrue([for n in values(module.functions.names) : startswith(n, "woocom-${var.stack}-")])
    error_message = "Every function is named woocom-${var.stack}-…"
  }
  assert {
    condition     = output.permissions_boundary == "arn:aws:iam::123456789012:policy/woocom/woocom-${var.stack}-boundary-eu-west-1"
    error_message = "The roles carry the boundary bootstrap created for ${var.stack}."
  }
}

run "environment_without_websocket_cors_or_streams" {
  variables {
    manifest_file = "../tests/fixtures/minimal-rendered.json"
  }

  assert {
    condition     = output.websocket_url == "" && length(module.subscriptions.mapping_ids) == 0
    error_message = "No WebSocket API or event source mapping without them."
  }
}

run "environment_with_queues_and_topics" {
  variables {
    manifest_file = "../tests/fixtures/events-rendered.json"
  }

  assert {
    condition = (
      alltrue([for q in values(module.messaging.queue_names) : startswith(q, "woocom-${var.stack}-")])
      && alltrue([for t in values(module.messaging.topics) : startswith(t.name, "woocom-${var.stack}-")])
      && length(module.subscriptions.mapping_ids) == 3
    )
    error_message = "Queues and topics are named woocom-${var.stack}-…, and every mapping is created."
  }
}

run "environment_with_buses_and_rules" {
  variables {
    manifest_file = "../tests/fixtures/eventbridge-rendered.json"
  }

  assert {
    condition = (
      alltrue([for b in values(module.events.buses) : startswith(b.name, "woocom-${var.stack}-")])
      && alltrue([for r in values(module.events.rules) : startswith(r.name, "woocom-${var.stack}-")])
      && length(module.events.targets) == 8
    )
    error_message = "Buses and rules are named woocom-${var.stack}-…, and every target is created."
  }
}

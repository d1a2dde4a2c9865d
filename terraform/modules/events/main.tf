# dev.toml's [buses] and [rules]: EventBridge custom buses (`default` is
# the account's own, never created), rules with their event pattern or
# schedule, and their targets (functions, queues, topics, buses of this
# stack) with input, retry policy and dead-letter queue, as woocom-dev
# delivers them locally. What may deliver to what is granted to exactly
# the rule: a function target's invoke permission names the rule's ARN
# (here); a queue's or topic's policy lets EventBridge send for exactly the
# rules that target it or use it as a dead-letter queue (modules/messaging,
# which owns those policies, one per queue or topic); a bus target gets a
# role that may put events on that bus only.
# <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html>

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "buses" {
  description = "The manifest module's `buses` output."
  type        = any
}

variable "rules" {
  description = "The manifest module's `rules` output."
  type        = any
}

variable "targets" {
  description = "The manifest module's `event_targets` output."
  type        = any
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

variable "prefix" {
  description = "Prefix of every resource name (e.g. woocom-dev-alice): names the bus targets' roles."
  type        = string
}

variable "function_arns" {
  description = "Function (as in dev.toml) => ARN."
  type        = map(string)
  default     = {}
}

variable "function_names" {
  description = "Function (as in dev.toml) => deployed name."
  type        = map(string)
  default     = {}
}

variable "queue_arns" {
  description = "Queue of [queues] (as in dev.toml) => ARN: targets and dead-letter queues."
  type        = map(string)
  default     = {}
}

variable "topic_arns" {
  description = "Topic of [topics] (as in dev.toml) => ARN."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary" {
  description = "ARN of the managed policy every role of the stack carries as its permissions boundary (terraform/bootstrap)."
  type        = string
}

locals {
  # EventBridge's limit on rule names; the prefix is known only here
  # (woocom-dev render checks against production's).
  max_rule_name = 64

  default_bus_arn = "arn:${var.partition}:events:${var.region}:${var.account_id}:event-bus/default"
  bus_arns = merge(
    { default = local.default_bus_arn },
    { for k, b in aws_cloudwatch_event_bus.this : k => b.arn },
  )

  target_arns = {
    function = var.function_arns
    queue    = var.queue_arns
    topic    = var.topic_arns
    bus      = local.bus_arns
  }

  # One invoke permission per rule and function, however many of the
  # rule's targets name the function.
  function_permissions = {
    for pair in distinct([for t in values(var.targets) : { rule = t.rule, function = t.name } if t.kind == "function"]) :
    "${pair.rule}/${pair.function}" => pair
  }

  # One role per bus that rules send to: it may put events on that bus
  # only. AWS recommends a role for every bus target, and the boundary
  # caps it like the functions' roles.
  # <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html>
  target_buses = toset([for t in values(var.targets) : t.name if t.kind == "bus"])
}

resource "aws_cloudwatch_event_bus" "this" {
  for_each = var.buses

  name        = each.value.name
  description = each.value.description
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = var.rules

  name                = each.value.name
  event_bus_name      = each.value.bus == "default" ? "default" : aws_cloudwatch_event_bus.this[each.value.bus].name
  description         = each.value.description
  event_pattern       = each.value.event_pattern
  schedule_expression = each.value.schedule_expression
  state               = each.value.state

  lifecycle {
    precondition {
      condition     = length(each.value.name) <= local.max_rule_name
      error_message = "[rules.${each.key}]: its name in AWS, ${each.value.name}, is ${length(each.value.name)} characters; EventBridge allows ${local.max_rule_name}. Shorten the rule's name in dev.toml."
    }
  }
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    # Only this account's EventBridge (confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_iam_role" "bus_target" {
  for_each = local.target_buses

  name                 = "${var.prefix}-events-to-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.events_assume.json
  permissions_boundary = var.permissions_boundary

  lifecycle {
    precondition {
      condition     = length("${var.prefix}-events-to-${each.key}") <= 64
      error_message = "The role EventBridge uses to send to bus ${each.key}, ${var.prefix}-events-to-${each.key}, is longer than IAM's 64 characters: shorten the bus's name in dev.toml."
    }
  }
}

resource "aws_iam_role_policy" "bus_target" {
  for_each = local.target_buses

  name = "put-events"
  role = aws_iam_role.bus_target[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "PutEventsOnTheTargetBus"
      Effect   = "Allow"
      Action   = ["events:PutEvents"]
      Resource = [local.bus_arns[each.key]]
    }]
  })
}

# EventBridge invokes a function target asynchronously, for this rule only.
# <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions>
resource "aws_lambda_permission" "events" {
  for_each = local.function_permissions

  statement_id  = "events-${each.value.rule}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.value.function]
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.value.rule].arn
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = var.targets

  rule           = aws_cloudwatch_event_rule.this[each.value.rule].name
  event_bus_name = aws_cloudwatch_event_rule.this[each.value.rule].event_bus_name
  target_id      = each.value.target_id
  arn            = local.target_arns[each.value.kind][each.value.name]
  role_arn       = each.value.kind == "bus" ? aws_iam_role.bus_target[each.value.name].arn : null
  input          = each.value.input
  input_path     = each.value.input_path

  dynamic "input_transformer" {
    for_each = each.value.input_transformer == null ? [] : [each.value.input_transformer]
    content {
      input_paths    = input_transformer.value.input_paths
      input_template = input_transformer.value.input_template
    }
  }

  dynamic "retry_policy" {
    for_each = each.value.retry_policy == null ? [] : [each.value.retry_policy]
    content {
      maximum_retry_attempts       = retry_policy.value.maximum_retry_attempts
      maximum_event_age_in_seconds = retry_policy.value.maximum_event_age_in_seconds
    }
  }

  dynamic "dead_letter_config" {
    for_each = each.value.dead_letter_queue == null ? [] : [each.value.dead_letter_queue]
    content {
      arn = var.queue_arns[dead_letter_config.value]
    }
  }

  # FIFO queue targets: the message group of every event sent.
  dynamic "sqs_target" {
    for_each = each.value.message_group_id == null ? [] : [each.value.message_group_id]
    content {
      message_group_id = sqs_target.value
    }
  }

  # A function target's first events would be refused before its invoke
  # permission exists; a bus target's, before its role may put events.
  depends_on = [aws_lambda_permission.events, aws_iam_role_policy.bus_target]
}

output "bus_arns" {
  description = "Bus (as in dev.toml, `default` included) => ARN."
  value       = local.bus_arns
}

output "rule_arns" {
  description = "Rule (as in dev.toml) => ARN: the aws:SourceArn of what it delivers."
  value       = { for k, r in aws_cloudwatch_event_rule.this : k => r.arn }
}

# The resources themselves, for terraform/stack/tests.
output "buses" {
  value = aws_cloudwatch_event_bus.this
}

output "rules" {
  value = aws_cloudwatch_event_rule.this
}

output "targets" {
  description = "<rule>/<target id> => the target."
  value       = aws_cloudwatch_event_target.this
}

output "lambda_permissions" {
  description = "<rule>/<function> => the permission letting EventBridge invoke the function for that rule."
  value       = aws_lambda_permission.events
}

output "bus_target_role_policies" {
  description = "Target bus (as in dev.toml) => the policy (JSON) of the role EventBridge sends to it with."
  value       = { for k, p in aws_iam_role_policy.bus_target : k => p.policy }
}

output "bus_target_roles" {
  value = aws_iam_role.bus_target
}

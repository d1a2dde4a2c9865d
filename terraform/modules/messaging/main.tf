# dev.toml's [queues] and [topics]: SQS queues (redrive and redrive allow
# policies as declared, SQS-managed encryption), SNS topics (encrypted with
# KMS) and their subscriptions to queues, functions and HTTP(S) endpoints.
# What may send to what is granted on the resource, to exactly the
# sender: a queue's policy lets only the topics that deliver to it (as a
# subscription or its dead-letter queue) send, by aws:SourceArn; a
# function subscribed to a topic may be invoked by SNS for that topic only.
# EventBridge rules (modules/events) are let in the same way: a queue's or
# topic's one policy also lets EventBridge send or publish for exactly the
# rules that target it or use it as a dead-letter queue.
# Functions' own permissions (mappings, destinations) are in their roles
# (modules/functions, rendered from dev.toml).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "queues" {
  description = "The manifest module's `queues` output."
  type        = any
}

variable "topics" {
  description = "The manifest module's `topics` output."
  type        = any
}

variable "topic_subscriptions" {
  description = "The manifest module's `topic_subscriptions` output."
  type        = any
}

variable "function_arns" {
  description = "Function (as in dev.toml) => ARN, for lambda subscriptions."
  type        = map(string)
}

variable "function_names" {
  description = "Function (as in dev.toml) => deployed name."
  type        = map(string)
}

variable "rule_arns" {
  description = "Rule (as in dev.toml) => ARN (modules/events): the aws:SourceArn EventBridge sends to queues and topics with."
  type        = map(string)
  default     = {}
}

variable "event_topic_kms_key" {
  description = "KMS key (id or ARN) of the topics EventBridge rules publish to. EventBridge cannot publish to a topic under the AWS managed alias/aws/sns, so these topics are unencrypted unless this names a customer managed key whose policy lets events.amazonaws.com use kms:GenerateDataKey and kms:Decrypt (and lets the topic's other publishers use it)."
  type        = string
  default     = null
}

variable "topic_kms_key" {
  description = "KMS key (id, ARN or alias) the topics are encrypted with. The AWS managed alias/aws/sns serves publishers of this account (the functions' destinations) and delivery to SQS-managed-encrypted queues, Lambda and HTTPS; a customer managed key is needed only for publishers it cannot serve (e.g. CloudWatch alarms, EventBridge)."
  type        = string
  default     = "alias/aws/sns"
}

locals {
  # SQS takes messages up to 1 MiB (its default since August 2025), but
  # hashicorp/aws 5.x validates max_message_size against the old 256 KiB
  # limit (and sends 256 KiB when it is left out). Until the provider pin
  # moves to 6.x, dev.toml's 1 MiB is deployed as 256 KiB (the stack's
  # output capped_message_size_queues names those queues); a size in
  # between cannot be deployed and stops the plan. (Not a check block:
  # terraform test fails on those, and every default queue would trip it.)
  provider_max_message_size = 262144
  sqs_max_message_size      = 1048576
  capped_queues             = sort([for k, q in var.queues : k if q.max_message_size > local.provider_max_message_size])
}

resource "aws_sqs_queue" "this" {
  for_each = var.queues

  name                        = each.value.name
  fifo_queue                  = each.value.fifo_queue
  content_based_deduplication = each.value.fifo_queue ? each.value.content_based_deduplication : null
  visibility_timeout_seconds  = each.value.visibility_timeout_seconds
  message_retention_seconds   = each.value.message_retention_seconds
  delay_seconds               = each.value.delay_seconds
  max_message_size            = min(each.value.max_message_size, local.provider_max_message_size)
  receive_wait_time_seconds   = each.value.receive_wait_time_seconds
  # SQS-managed keys: SNS can deliver to the queue (with the AWS managed
  # aws/sqs key it could not, as that key's policy cannot name SNS).
  sqs_managed_sse_enabled = true

  lifecycle {
    precondition {
      condition     = each.value.max_message_size <= local.provider_max_message_size || each.value.max_message_size == local.sqs_max_message_size
      error_message = "[queues.${each.key}] max_message_size = ${each.value.max_message_size}: the pinned hashicorp/aws 5.x provider sets at most ${local.provider_max_message_size}; give 1024-${local.provider_max_message_size} in dev.toml (or leave SQS's default, 1 MiB, deployed as ${local.provider_max_message_size})."
    }
    precondition {
      condition     = length(each.value.name) <= 80
      error_message = "[queues.${each.key}]: its name in AWS, ${each.value.name}, is ${length(each.value.name)} characters; SQS allows 80. Shorten the queue's name in dev.toml."
    }
  }
}

# Set apart from the queues: a policy names other queues of the same
# for_each by ARN, and SQS checks, when a source queue's redrive policy is
# set, that its dead-letter queue allows it (so allow policies go first).
resource "aws_sqs_queue_redrive_allow_policy" "this" {
  for_each = { for k, q in var.queues : k => q if q.redrive_allow_policy != null }

  queue_url = aws_sqs_queue.this[each.key].id
  redrive_allow_policy = jsonencode(merge(
    { redrivePermission = each.value.redrive_allow_policy },
    each.value.redrive_allow_policy == "byQueue" ? { sourceQueueArns = [for q in each.value.source_queues : aws_sqs_queue.this[q].arn] } : {},
  ))
}

resource "aws_sqs_queue_redrive_policy" "this" {
  for_each = { for k, q in var.queues : k => q if q.redrive_policy != null }

  queue_url = aws_sqs_queue.this[each.key].id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.this[each.value.redrive_policy.dead_letter_queue].arn
    maxReceiveCount     = each.value.redrive_policy.max_receive_count
  })

  depends_on = [aws_sqs_queue_redrive_allow_policy.this]
}

resource "aws_sns_topic" "this" {
  for_each = var.topics

  name                        = each.value.name
  fifo_topic                  = each.value.fifo_topic
  content_based_deduplication = each.value.fifo_topic ? each.value.content_based_deduplication : null
  # EventBridge can publish only to a topic it may use the key of, which
  # the AWS managed key's policy never allows.
  # <https://repost.aws/knowledge-center/sns-not-getting-eventbridge-notification>
  kms_master_key_id = length(each.value.event_rules) > 0 ? var.event_topic_kms_key : var.topic_kms_key

  lifecycle {
    precondition {
      condition     = length(each.value.name) <= 256
      error_message = "[topics.${each.key}]: its name in AWS, ${each.value.name}, is longer than the 256 characters SNS allows."
    }
  }
}

# SNS delivers to a queue (and moves undeliverable messages to a
# subscription's dead-letter queue) as the service principal, and so does
# EventBridge for a rule's queue target or dead-letter queue: the queue's
# one policy lets exactly the stack's topics and rules that do so.
# <https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html>
# <https://docs.aws.amazon.com/sns/latest/dg/sns-configure-dead-letter-queue.html>
# <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions>
# <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html>
resource "aws_sqs_queue_policy" "this" {
  for_each = { for k, q in var.queues : k => q if length(q.topic_publishers) + length(q.event_rules) > 0 }

  queue_url = aws_sqs_queue.this[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(each.value.topic_publishers) == 0 ? [] : [{
        Sid       = "TopicsOfTheStack"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.this[each.key].arn
        Condition = { ArnEquals = { "aws:SourceArn" = [for t in each.value.topic_publishers : aws_sns_topic.this[t].arn] } }
      }],
      length(each.value.event_rules) == 0 ? [] : [{
        Sid       = "RulesOfTheStack"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.this[each.key].arn
        Condition = { ArnEquals = { "aws:SourceArn" = [for r in each.value.event_rules : var.rule_arns[r]] } }
      }],
    )
  })
}

# The address the queue policies had when only topics sent to queues.
moved {
  from = aws_sqs_queue_policy.topics
  to   = aws_sqs_queue_policy.this
}

# EventBridge publishes to a topic target as the service principal, for
# exactly the rules that target it. (The stack's functions publish with
# their roles, which this account's topics honour without a grant here.)
# <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions>
resource "aws_sns_topic_policy" "events" {
  for_each = { for k, t in var.topics : k => t if length(t.event_rules) > 0 }

  arn = aws_sns_topic.this[each.key].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "RulesOfTheStack"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.this[each.key].arn
      Condition = { ArnEquals = { "aws:SourceArn" = [for r in each.value.event_rules : var.rule_arns[r]] } }
    }]
  })
}

locals {
  lambda_subscriptions = {
    for k, s in var.topic_subscriptions : "${s.topic}/${s.endpoint}" => s if s.protocol == "lambda"
  }
  endpoint_arns = {
    sqs    = { for k, q in aws_sqs_queue.this : k => q.arn }
    lambda = var.function_arns
  }
}

# SNS invokes a subscribed function asynchronously, for that topic only.
# <https://docs.aws.amazon.com/sns/latest/dg/sns-lambda-as-subscriber.html>
resource "aws_lambda_permission" "sns" {
  for_each = local.lambda_subscriptions

  statement_id  = "sns-${each.value.topic}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.value.endpoint]
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.this[each.value.topic].arn
}

resource "aws_sns_topic_subscription" "this" {
  for_each = var.topic_subscriptions

  topic_arn            = aws_sns_topic.this[each.value.topic].arn
  protocol             = each.value.protocol
  endpoint             = lookup(lookup(local.endpoint_arns, each.value.protocol, {}), each.value.endpoint, each.value.endpoint)
  raw_message_delivery = each.value.raw_message_delivery
  filter_policy        = each.value.filter_policy
  filter_policy_scope  = each.value.filter_policy_scope
  redrive_policy = each.value.dead_letter_queue == null ? null : jsonencode({
    deadLetterTargetArn = aws_sqs_queue.this[each.value.dead_letter_queue].arn
  })

  # SNS confirms a queue or function subscription at once; deliveries
  # before the queue policy or the invoke permission exist would fail.
  depends_on = [aws_sqs_queue_policy.this, aws_lambda_permission.sns]
}

output "queue_arns" {
  description = "Queue (as in dev.toml) => ARN."
  value       = { for k, q in aws_sqs_queue.this : k => q.arn }
}

output "queue_names" {
  description = "Queue (as in dev.toml) => deployed name."
  value       = { for k, q in aws_sqs_queue.this : k => q.name }
}

output "capped_message_size_queues" {
  description = "Queues (as in dev.toml) that take 1 MiB messages locally but 256 KiB in AWS (hashicorp/aws 5.x's limit)."
  value       = local.capped_queues
}

output "topic_arns" {
  description = "Topic (as in dev.toml) => ARN."
  value       = { for k, t in aws_sns_topic.this : k => t.arn }
}

output "subscription_arns" {
  description = "Topic subscription key (<topic>/<protocol>/<endpoint>) => ARN."
  value       = { for k, s in aws_sns_topic_subscription.this : k => s.arn }
}

output "queue_policies" {
  description = "Queue (as in dev.toml) => its policy (JSON), for queues topics or rules deliver to."
  value       = { for k, p in aws_sqs_queue_policy.this : k => p.policy }
}

output "topic_policies" {
  description = "Topic (as in dev.toml) => its policy (JSON), for topics rules publish to."
  value       = { for k, p in aws_sns_topic_policy.events : k => p.policy }
}

# The resources themselves, for terraform/stack/tests.
output "queues" {
  value = aws_sqs_queue.this
}

output "redrive_policies" {
  value = { for k, p in aws_sqs_queue_redrive_policy.this : k => p.redrive_policy }
}

output "redrive_allow_policies" {
  value = { for k, p in aws_sqs_queue_redrive_allow_policy.this : k => p.redrive_allow_policy }
}

output "topics" {
  value = aws_sns_topic.this
}

output "subscriptions" {
  value = aws_sns_topic_subscription.this
}

output "lambda_permissions" {
  description = "<topic>/<function> => the permission letting SNS invoke the function for that topic."
  value       = aws_lambda_permission.sns
}

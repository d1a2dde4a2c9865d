# Event source mappings from dev.toml's [[subscriptions]], with the same
# batching, retry, bisect, partial-failure, filter and concurrency settings
# the devserver applies locally. A table's stream sends failed batches'
# records to its on-failure destination: the mapping's own SQS queue
# (created here), or a queue or topic of the stack (modules/messaging). An
# SQS queue's failed messages return to it (its redrive policy applies).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "subscriptions" {
  description = "The manifest module's `subscriptions` output."
  type        = any
}

variable "stream_arns" {
  description = "Table (as in dev.toml) => stream ARN."
  type        = map(string)
}

variable "function_names" {
  type = map(string)
}

variable "queue_arns" {
  description = "Queue of [queues] (as in dev.toml) => ARN: SQS sources and on-failure destinations."
  type        = map(string)
  default     = {}
}

variable "topic_arns" {
  description = "Topic of [topics] (as in dev.toml) => ARN: on-failure destinations."
  type        = map(string)
  default     = {}
}

# One queue per name: subscriptions may share a dedicated on-failure queue.
resource "aws_sqs_queue" "on_failure" {
  for_each = toset([for s in values(var.subscriptions) : s.dedicated_queue if s.dedicated_queue != null])

  name                      = each.key
  message_retention_seconds = 1209600 # 14 days, SQS's longest
  sqs_managed_sse_enabled   = true
}

locals {
  source_arns = {
    table = var.stream_arns
    queue = var.queue_arns
  }
  on_failure_arns = {
    for k, s in var.subscriptions : k => (
      s.on_failure == null ? null
      : s.dedicated_queue != null ? aws_sqs_queue.on_failure[s.dedicated_queue].arn
      : s.on_failure.kind == "topic" ? var.topic_arns[s.on_failure.name]
      : var.queue_arns[s.on_failure.name]
    )
  }
}

resource "aws_lambda_event_source_mapping" "this" {
  for_each = var.subscriptions

  event_source_arn  = local.source_arns[each.value.source_kind][each.value.source]
  function_name     = var.function_names[each.value.function]
  starting_position = each.value.starting_position

  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  maximum_retry_attempts             = each.value.maximum_retry_attempts
  maximum_record_age_in_seconds      = each.value.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = each.value.bisect_batch_on_function_error
  function_response_types            = each.value.report_batch_item_failures ? ["ReportBatchItemFailures"] : []

  dynamic "filter_criteria" {
    for_each = length(each.value.filters) == 0 ? [] : [each.value.filters]
    content {
      dynamic "filter" {
        for_each = filter_criteria.value
        content {
          pattern = filter.value
        }
      }
    }
  }

  # SQS: batches of the queue in flight at once (ScalingConfig).
  dynamic "scaling_config" {
    for_each = each.value.maximum_concurrency == null ? [] : [each.value.maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  dynamic "destination_config" {
    for_each = local.on_failure_arns[each.key] == null ? [] : [local.on_failure_arns[each.key]]
    content {
      on_failure {
        destination_arn = destination_config.value
      }
    }
  }
}

output "queue_names" {
  description = "Dedicated on-failure queue name => queue name (a map, for for_each)."
  value       = { for k, q in aws_sqs_queue.on_failure : k => q.name }
}

output "functions" {
  description = "Stream subscription key => function (as in dev.toml), for iterator-age alarms."
  value       = { for k, s in var.subscriptions : k => s.function if s.source_kind == "table" }
}

output "on_failure_arns" {
  description = "Subscription key => its on-failure destination's ARN (null for SQS mappings)."
  value       = local.on_failure_arns
}

output "mapping_ids" {
  description = "Subscription key => its event source mapping's id."
  value       = { for k, m in aws_lambda_event_source_mapping.this : k => m.uuid }
}

output "mappings" {
  description = "Subscription key => the event source mapping (for terraform/stack/tests)."
  value       = aws_lambda_event_source_mapping.this
}

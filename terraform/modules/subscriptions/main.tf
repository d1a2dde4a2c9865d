# Stream event source mappings from dev.toml's [[subscriptions]], with the
# same batching, retry, bisect, partial-failure and filter settings the
# devserver applies locally, and an SQS on-failure destination each.

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

# One queue per name: subscriptions may share a dead-letter queue.
resource "aws_sqs_queue" "on_failure" {
  for_each = toset([for s in values(var.subscriptions) : s.queue])

  name                      = each.key
  message_retention_seconds = 1209600 # 14 days, SQS's longest
  sqs_managed_sse_enabled   = true
}

resource "aws_lambda_event_source_mapping" "this" {
  for_each = var.subscriptions

  event_source_arn  = var.stream_arns[each.value.table]
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

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.on_failure[each.value.queue].arn
    }
  }
}

output "queue_names" {
  description = "Queue name => queue name (a map, for for_each)."
  value       = { for k, q in aws_sqs_queue.on_failure : k => q.name }
}

output "functions" {
  description = "Subscription key => function (as in dev.toml), for iterator-age alarms."
  value       = { for k, s in var.subscriptions : k => s.function }
}

output "mapping_ids" {
  description = "Subscription key => its event source mapping's id."
  value       = { for k, m in aws_lambda_event_source_mapping.this : k => m.uuid }
}

# CloudWatch alarms into one SNS topic and its subscribers: REST API 5xx
# (over 150 a minute), function errors (a few a minute, not one failure)
# and throttles, stream iterator age, on-failure queue depth. Every alarm is
# one entry of local.alarms; the alarm resource is written once.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "name" {
  type = string
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm the mail AWS sends)."
  type        = list(string)
  default     = []
}

variable "alarm_https_endpoints" {
  description = "HTTPS endpoints subscribed to the alerts topic (a chat or paging webhook that confirms SNS subscriptions). Sensitive: webhook URLs carry their secret."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "rest_api_name" {
  type = string
}

variable "rest_api_stage" {
  type = string
}

variable "api_5xx_per_minute" {
  type    = number
  default = 150
}

variable "function_names" {
  description = "Function (as in dev.toml) => deployed name."
  type        = map(string)
}

variable "function_errors_per_minute" {
  description = "Errors alarm: more than this many failed invocations a minute…"
  type        = number
  default     = 5
}

variable "function_errors_minutes" {
  description = "…in this many of the last three minutes."
  type        = number
  default     = 2
}

variable "stream_functions" {
  description = "Subscription key => function (as in dev.toml)."
  type        = map(string)
  default     = {}
}

variable "iterator_age_ms" {
  description = "Alarm when a stream consumer falls this far behind."
  type        = number
  default     = 60000
}

variable "queue_names" {
  description = "Names of the queues that receive failures: on-failure and dead-letter queues (a map, for for_each)."
  type        = map(string)
  default     = {}
}

# Not encrypted with the AWS managed SNS key: CloudWatch alarms cannot
# publish to a topic under aws/sns (its key policy is not editable).
resource "aws_sns_topic" "alerts" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS managed aws/sns key, and the messages are alarm state changes (names, metrics, thresholds) with no data worth a customer managed key per stack.
  name = "${var.name}-alerts"
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

# By position: for_each cannot take sensitive keys; only the count is
# revealed.
resource "aws_sns_topic_subscription" "https" {
  count = length(nonsensitive(var.alarm_https_endpoints))

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "https"
  endpoint  = var.alarm_https_endpoints[count.index]
}

locals {
  minute = { period = 60, evaluation_periods = 1, datapoints_to_alarm = 1, statistic = "Sum" }

  alarms = merge(
    {
      "api-5xx" = merge(local.minute, {
        name        = "${var.name}-api-5xx"
        description = "REST API answered more than ${var.api_5xx_per_minute} 5xx in a minute."
        namespace   = "AWS/ApiGateway"
        metric      = "5XXError"
        dimensions  = { ApiName = var.rest_api_name, Stage = var.rest_api_stage }
        threshold   = var.api_5xx_per_minute
      })
    },
    {
      for f, name in var.function_names : "errors-${f}" => merge(local.minute, {
        name                = "${name}-errors"
        description         = "Function ${f} failed more than ${var.function_errors_per_minute} invocations a minute in ${var.function_errors_minutes} of 3 minutes."
        namespace           = "AWS/Lambda"
        metric              = "Errors"
        dimensions          = { FunctionName = name }
        threshold           = var.function_errors_per_minute
        evaluation_periods  = 3
        datapoints_to_alarm = var.function_errors_minutes
      })
    },
    {
      for f, name in var.function_names : "throttles-${f}" => merge(local.minute, {
        name        = "${name}-throttles"
        description = "Function ${f} was throttled."
        namespace   = "AWS/Lambda"
        metric      = "Throttles"
        dimensions  = { FunctionName = name }
        threshold   = 0
      })
    },
    {
      for f in toset(values(var.stream_functions)) : "iterator-age-${f}" => merge(local.minute, {
        name                = "${var.function_names[f]}-iterator-age"
        description         = "Function ${f} is more than ${var.iterator_age_ms} ms behind its stream."
        namespace           = "AWS/Lambda"
        metric              = "IteratorAge"
        dimensions          = { FunctionName = var.function_names[f] }
        statistic           = "Maximum"
        threshold           = var.iterator_age_ms
        evaluation_periods  = 5
        datapoints_to_alarm = 5
      })
    },
    {
      for k, q in var.queue_names : "depth-${k}" => merge(local.minute, {
        name        = "${q}-depth"
        description = "Records or messages that failed for good are waiting in ${q}."
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = q }
        statistic   = "Maximum"
        threshold   = 0
      })
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = each.value.name
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

output "topic_arn" {
  value = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  value = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.alarm_name }
}

output "subscriber_count" {
  value = length(var.alarm_emails) + length(nonsensitive(var.alarm_https_endpoints))
}

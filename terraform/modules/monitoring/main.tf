# CloudWatch alarms into one SNS topic: REST API 5xx (over 150 a minute),
# function errors and throttles, stream iterator age, on-failure queue depth.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

variable "name" {
  type = string
}

variable "alarm_email" {
  description = "Subscribed to the alerts topic when set (the address must confirm)."
  type        = string
  default     = null
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
  type    = number
  default = 0
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
  description = "On-failure queue names (a map, for for_each)."
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
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx"
  alarm_description   = "REST API answered more than ${var.api_5xx_per_minute} 5xx in a minute."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = var.rest_api_name, Stage = var.rest_api_stage }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.api_5xx_per_minute
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.function_names

  alarm_name          = "${each.value}-errors"
  alarm_description   = "Function ${each.key} failed invocations."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = var.function_errors_per_minute
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = var.function_names

  alarm_name          = "${each.value}-throttles"
  alarm_description   = "Function ${each.key} was throttled."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = toset(values(var.stream_functions))

  alarm_name          = "${var.function_names[each.key]}-iterator-age"
  alarm_description   = "Function ${each.key} is more than ${var.iterator_age_ms} ms behind its stream."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = var.function_names[each.key] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = var.queue_names

  alarm_name          = "${each.value}-depth"
  alarm_description   = "Stream records that failed for good are waiting in ${each.value}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

output "topic_arn" {
  value = aws_sns_topic.alerts.arn
}

# Lambda functions on provided.al2023: the zips `woocom-dev package` wrote,
# one IAM role per function with the policy rendered from dev.toml (only the
# tables, indexes, streams, queues it polls, destinations, buses it puts
# events on and @connections it uses), a log group with retention, and what
# Lambda does with its asynchronous invocations (retries, event age,
# destinations, dead-letter queue or topic).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "functions" {
  description = "The manifest module's `functions` output."
  type        = any
}

variable "package_dir" {
  description = "Folder with <architecture>/packages.json and the zips (woocom-dev package's output)."
  type        = string
}

variable "architecture" {
  description = "arm64 or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture is arm64 or x86_64."
  }
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "reserve_concurrency" {
  description = "Apply dev.toml's `concurrency` as reserved concurrency. Leave false on accounts whose concurrency quota is low (new accounts have 10, and 10 must stay unreserved)."
  type        = bool
  default     = false
}

variable "permissions_boundary" {
  description = "ARN of the managed policy every function role carries as its permissions boundary (terraform/bootstrap creates it; the deploy roles may create roles only with it)."
  type        = string
}

variable "queue_arns" {
  description = "Queue of [queues] (as in dev.toml) => ARN: destinations and dead-letter targets."
  type        = map(string)
  default     = {}
}

variable "topic_arns" {
  description = "Topic of [topics] (as in dev.toml) => ARN: destinations and dead-letter targets."
  type        = map(string)
  default     = {}
}

variable "tracing" {
  description = "X-Ray tracing mode: PassThrough or Active."
  type        = string
  default     = "PassThrough"
}

locals {
  packages_file = "${var.package_dir}/${var.architecture}/packages.json"
  # Absent (e.g. while destroying a stack on a fresh checkout): the
  # precondition on each function says what to run.
  packages = try(jsondecode(file(local.packages_file)).functions, {})

  # Where a function's records may go, keyed "<kind>:<name>" as dev.toml
  # writes them: a dead-letter target is a queue or topic; a destination
  # may also be a function (of this module, so looked up apart).
  sink_arns = merge(
    { for k, a in var.queue_arns : "queue:${k}" => a },
    { for k, a in var.topic_arns : "topic:${k}" => a },
  )
  destination_arns = merge(
    local.sink_arns,
    { for k, f in aws_lambda_function.this : "function:${k}" => f.arn },
  )
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = var.functions

  name                 = each.value.name
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary
}

resource "aws_iam_role_policy" "function" {
  for_each = var.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = each.value.policy
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest with its own keys; a customer managed key (1 USD a month per key and a key policy for the logs service) adds no protection from a reader who already holds logs:GetLogEvents, and these logs carry no secrets.
  for_each = var.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:A dead-letter queue is set where dev.toml declares one (dead_letter). Most functions are invoked synchronously (API Gateway) or by event source mappings (failed batches go to their on-failure destinations or back to the queue), where a DLQ never receives anything; asynchronously invoked ones can keep failures with on_failure destinations, which carry more than a DLQ.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs (DynamoDB, API Gateway's @connections); a VPC would need a NAT gateway (about 32 USD a month) or interface endpoints (about 7 USD a month each per zone) in every stack, and would protect no private resource.
  #checkov:skip=CKV_AWS_272:The zips are built by `woocom-dev package` from the commit being deployed, by the same run that deploys them, and pinned by source_code_hash; there is no separate publisher whose signature AWS Signer would check.
  #checkov:skip=CKV_AWS_173:The environment holds only table names, the @connections endpoint and settings from dev.toml (no secrets), and Lambda already encrypts it at rest with its AWS managed key.
  for_each = var.functions

  function_name    = each.value.name
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = "${var.package_dir}/${var.architecture}/${each.key}.zip"
  source_code_hash = try(local.packages[each.key].sha256, null)
  memory_size      = each.value.memory
  timeout          = each.value.timeout

  reserved_concurrent_executions = var.reserve_concurrency ? each.value.concurrency : -1

  dynamic "environment" {
    for_each = length(each.value.env) == 0 ? [] : [each.value.env]
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = var.tracing
  }

  # DeadLetterConfig: the discarded asynchronous event itself.
  dynamic "dead_letter_config" {
    for_each = each.value.event_invoke.dead_letter == null ? [] : [each.value.event_invoke.dead_letter]
    content {
      target_arn = local.sink_arns["${dead_letter_config.value.kind}:${dead_letter_config.value.name}"]
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  lifecycle {
    precondition {
      condition     = contains(keys(local.packages), each.key)
      error_message = "No package for function ${each.key} in ${local.packages_file}: run `woocom-dev package --arch ${var.architecture}` first (woocom-dev deploy does)."
    }
  }

  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# What Lambda does with an asynchronous invocation (dev.toml's
# maximum_retry_attempts, maximum_event_age_in_seconds, on_success and
# on_failure), as woocom-dev does locally. The role's policy already lets
# the function send to exactly these destinations (Lambda checks it here).
resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = var.functions

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = each.value.event_invoke.maximum_retry_attempts
  maximum_event_age_in_seconds = each.value.event_invoke.maximum_event_age_in_seconds

  dynamic "destination_config" {
    for_each = each.value.event_invoke.on_success == null && each.value.event_invoke.on_failure == null ? [] : [each.value.event_invoke]
    content {
      dynamic "on_success" {
        for_each = destination_config.value.on_success == null ? [] : [destination_config.value.on_success]
        content {
          destination = local.destination_arns["${on_success.value.kind}:${on_success.value.name}"]
        }
      }
      dynamic "on_failure" {
        for_each = destination_config.value.on_failure == null ? [] : [destination_config.value.on_failure]
        content {
          destination = local.destination_arns["${on_failure.value.kind}:${on_failure.value.name}"]
        }
      }
    }
  }
}

output "names" {
  value = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "arns" {
  value = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "invoke_arns" {
  value = { for k, f in aws_lambda_function.this : k => f.invoke_arn }
}

output "role_names" {
  value = { for k, r in aws_iam_role.function : k => r.name }
}

output "dead_letter_arns" {
  description = "Function => its DeadLetterConfig target's ARN (functions with one)."
  value       = { for k, f in aws_lambda_function.this : k => f.dead_letter_config[0].target_arn if length(f.dead_letter_config) > 0 }
}

output "destinations" {
  description = "Function => { on_success, on_failure } destination ARNs (null where none)."
  value = {
    for k, c in aws_lambda_function_event_invoke_config.this : k => {
      on_success = try(c.destination_config[0].on_success[0].destination, null)
      on_failure = try(c.destination_config[0].on_failure[0].destination, null)
    }
  }
}

output "event_invoke_configs" {
  description = "Function => its asynchronous invocation config (for terraform/stack/tests)."
  value       = aws_lambda_function_event_invoke_config.this
}

output "role_policies" {
  description = "Function => its role's policy (JSON)."
  value       = { for k, p in aws_iam_role_policy.function : k => p.policy }
}

output "role_boundaries" {
  description = "Function => its role's permissions boundary."
  value       = { for k, r in aws_iam_role.function : k => r.permissions_boundary }
}

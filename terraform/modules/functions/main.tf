# Lambda functions on provided.al2023: the zips `woocom-dev package` wrote,
# one IAM role per function with the policy rendered from dev.toml (only the
# tables, indexes, streams, queues and @connections it uses), and a log
# group with retention.

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
  #checkov:skip=CKV_AWS_116:No function is invoked asynchronously: API Gateway invokes them synchronously and stream records are polled by event source mappings, whose failed batches go to the subscriptions' SQS on-failure destinations. A function DLQ would never receive anything.
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

# What Lambda does with an asynchronous invocation that fails (dev.toml's
# maximum_retry_attempts and maximum_event_age_in_seconds), as woocom-dev
# does locally.
resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = var.functions

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = each.value.event_invoke.maximum_retry_attempts
  maximum_event_age_in_seconds = each.value.event_invoke.maximum_event_age_in_seconds
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

output "role_boundaries" {
  description = "Function => its role's permissions boundary."
  value       = { for k, r in aws_iam_role.function : k => r.permissions_boundary }
}

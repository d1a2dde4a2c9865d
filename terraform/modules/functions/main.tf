# Lambda functions on provided.al2023: the zips `woocom-dev package` wrote,
# one IAM role per function with the policy rendered from dev.toml (only the
# tables, indexes, streams, queues and @connections it uses), and a log
# group with retention.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
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

  name               = each.value.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "function" {
  for_each = var.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = each.value.policy
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = var.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
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

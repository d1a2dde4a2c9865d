# Run once per AWS account (with an administrator's credentials, local
# state): the S3 bucket holding every stack's Terraform state, API
# Gateway's account-wide CloudWatch Logs role (needed for access logs), and
# the GitHub OIDC provider with the roles the workflows assume (no
# long-lived keys anywhere).
#
#   terraform -chdir=terraform/bootstrap init
#   terraform -chdir=terraform/bootstrap apply -var github_repository=owner/repo
#   export WOOCOM_STATE_BUCKET=$(terraform -chdir=terraform/bootstrap output -raw state_bucket)

terraform {
  required_version = ">= 1.10.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows deploy."
  type        = string
}

variable "noncurrent_state_days" {
  description = "Days a replaced state version is kept (the 10 newest are always kept)."
  type        = number
  default     = 90
}

variable "state_log_retention_days" {
  description = "Days the state bucket's access logs are kept."
  type        = number
  default     = 365
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { Project = "woocom", ManagedBy = "terraform", Stack = "bootstrap" }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# ---- Terraform state --------------------------------------------------------

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_145:The S3 backend (encrypt = true in every stack) writes each state object with SSE-S3 itself, which overrides a bucket default; who may read which stack's state is decided by IAM (each deploy role reaches only its own prefix), which a KMS key would not change.
  #checkov:skip=CKV_AWS_144:Versioned, with every old state kept noncurrent_state_days; a copy in a second region (a second bucket, a replication role, twice the storage) guards only against losing the region the stacks themselves run in.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to state writes; event notifications would have no consumer.
  bucket = "woocom-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}"
  lifecycle {
    prevent_destroy = true
  }
}

# Old versions of each state are kept noncurrent_state_days (and always the
# 10 newest), then expire.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket     = aws_s3_bucket.state.id
  depends_on = [aws_s3_bucket_versioning.state]

  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days           = var.noncurrent_state_days
      newer_noncurrent_versions = 10
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "state" {
  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket     = aws_s3_bucket.state.id
  policy     = data.aws_iam_policy_document.state.json
  depends_on = [aws_s3_bucket_public_access_block.state]
}

# Who read or wrote which state, in a second bucket.
resource "aws_s3_bucket_logging" "state" {
  bucket        = aws_s3_bucket.state.id
  target_bucket = aws_s3_bucket.state_logs.id
  target_prefix = "state/"
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket" "state_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket of the state bucket; it cannot log to itself.
  #checkov:skip=CKV_AWS_21:Access logs are written once by S3 and expire after state_log_retention_days; versioning would only keep each expired log as a noncurrent version.
  #checkov:skip=CKV_AWS_144:Access logs kept in the region of the state they describe; a replica would double their cost for no use here.
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to buckets encrypted with SSE-S3 (SSE-KMS targets are not supported); SSE-S3 is set below.
  #checkov:skip=CKV2_AWS_62:Nothing processes the logs as they arrive; event notifications would have no consumer.
  bucket = "woocom-tfstate-logs-${data.aws_caller_identity.current.account_id}-${var.region}"
}

resource "aws_s3_bucket_public_access_block" "state_logs" {
  bucket                  = aws_s3_bucket.state_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state_logs" {
  bucket = aws_s3_bucket.state_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state_logs" {
  bucket = aws_s3_bucket.state_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state_logs" {
  bucket = aws_s3_bucket.state_logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.state_log_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "state_logs" {
  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.state_logs.arn}/state/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.state.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state_logs.arn, "${aws_s3_bucket.state_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state_logs" {
  bucket     = aws_s3_bucket.state_logs.id
  policy     = data.aws_iam_policy_document.state_logs.json
  depends_on = [aws_s3_bucket_public_access_block.state_logs]
}

# ---- API Gateway's CloudWatch role (one per account and region) -------------

data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigateway_cloudwatch" {
  name               = "woocom-apigateway-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
}

resource "aws_iam_role_policy_attachment" "apigateway_cloudwatch" {
  role       = aws_iam_role.apigateway_cloudwatch.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = aws_iam_role.apigateway_cloudwatch.arn
  depends_on          = [aws_iam_role_policy_attachment.apigateway_cloudwatch]
}

# ---- GitHub Actions through OIDC --------------------------------------------

resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate itself; the thumbprint is required by
  # the API but not used for this provider.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

locals {
  # Which workflow runs may assume which role: the `sub` claim names the
  # repository and the GitHub environment of the job.
  deployers = {
    staging    = "repo:${var.github_repository}:environment:staging"
    production = "repo:${var.github_repository}:environment:production"
  }
}

data "aws_iam_policy_document" "github_assume" {
  for_each = local.deployers
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [each.value]
    }
  }
}

# Deploying creates roles, functions, APIs, tables, queues, alarms, buckets
# and a distribution, all named woocom-<stack>-*. Where a service's ARNs
# carry those names (S3, DynamoDB, SQS, SNS, Lambda functions, IAM roles)
# the deploy role reaches only its own stack's; the staging role cannot
# touch production's data, functions or state. API Gateway, CloudFront and
# event source mappings are named by generated ids, and Terraform lists
# log groups and alarms account-wide, so those stay limited by region only.
locals {
  # ARNs of this account in any region: the names carry the stack.
  account_arn = "${data.aws_partition.current.partition}:%s:*:${data.aws_caller_identity.current.account_id}"
}

data "aws_iam_policy_document" "deploy" {
  for_each = local.deployers

  statement {
    sid     = "StackBuckets"
    actions = ["s3:*"]
    resources = [
      "arn:${data.aws_partition.current.partition}:s3:::woocom-${each.key}-*",
      "arn:${data.aws_partition.current.partition}:s3:::woocom-${each.key}-*/*",
    ]
  }

  statement {
    sid       = "StackTables"
    actions   = ["dynamodb:*"]
    resources = ["arn:${format(local.account_arn, "dynamodb")}:table/woocom-${each.key}-*"]
  }

  statement {
    sid       = "StackQueues"
    actions   = ["sqs:*"]
    resources = ["arn:${format(local.account_arn, "sqs")}:woocom-${each.key}-*"]
  }

  statement {
    sid       = "StackTopics"
    actions   = ["sns:*"]
    resources = ["arn:${format(local.account_arn, "sns")}:woocom-${each.key}-*"]
  }

  statement {
    sid       = "StackFunctions"
    actions   = ["lambda:*"]
    resources = ["arn:${format(local.account_arn, "lambda")}:function:woocom-${each.key}-*"]
  }

  # Event source mappings have generated ids: allowed when they feed one of
  # the stack's functions.
  statement {
    sid = "StackEventSourceMappings"
    actions = [
      "lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
      "lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping",
    ]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "lambda:FunctionArn"
      values   = ["arn:${format(local.account_arn, "lambda")}:function:woocom-${each.key}-*"]
    }
  }

  statement {
    sid       = "ListEventSourceMappings"
    actions   = ["lambda:ListEventSourceMappings"]
    resources = ["*"]
  }

  statement {
    sid       = "RegionalServices"
    actions   = ["apigateway:*", "cloudfront:*", "cloudwatch:*", "logs:*", "xray:*"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.region, "us-east-1"] # CloudFront is global (us-east-1)
    }
  }

  statement {
    sid = "StackRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy",
      "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:PassRole",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/woocom-${each.key}-*"]
  }

  statement {
    sid       = "State"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${each.key}/*"]
  }

  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }
}

resource "aws_iam_role" "github" {
  for_each = local.deployers

  name                 = "woocom-github-deploy-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "github" {
  for_each = local.deployers

  name   = "deploy"
  role   = aws_iam_role.github[each.key].id
  policy = data.aws_iam_policy_document.deploy[each.key].json
}

output "state_bucket" {
  value = aws_s3_bucket.state.id
}

output "github_role_arns" {
  description = "Set as the repository variables AWS_ROLE_STAGING and AWS_ROLE_PRODUCTION."
  value       = { for k, r in aws_iam_role.github : k => r.arn }
}

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
  bucket = "woocom-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}"
  lifecycle {
    prevent_destroy = true
  }
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

# Deploying creates roles, functions, APIs, tables, queues, alarms, a bucket
# and a distribution, all named woocom-<stack>-*: the deploy role may act on
# those names only (plus the state objects of its own stack).
data "aws_iam_policy_document" "deploy" {
  for_each = local.deployers

  statement {
    sid = "StackResources"
    actions = [
      "apigateway:*", "cloudfront:*", "cloudwatch:*", "dynamodb:*", "lambda:*",
      "logs:*", "s3:*", "sns:*", "sqs:*", "xray:*",
    ]
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

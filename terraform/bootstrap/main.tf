# Run once per AWS account and region that hosts stacks (with an
# administrator's credentials, local state): the S3 bucket holding the
# stacks' Terraform state, API Gateway's CloudWatch Logs role and account
# setting for the region (stage logging needs it), the GitHub OIDC provider
# (or an existing one) with the roles the workflows assume (no long-lived
# keys anywhere), each stack's permissions boundary, and one IAM policy per
# developer for their own dev-<name> stack. IAM names carry the region, so
# a second region's bootstrap does not clash with the first.
#
#   terraform -chdir=terraform/bootstrap init
#   terraform -chdir=terraform/bootstrap apply -var github_repository=owner/repo \
#     -var region=eu-west-1 -var 'developers=["alice","bob"]'
#   export WOOCOM_STATE_BUCKET=$(terraform -chdir=terraform/bootstrap output -raw state_bucket)
#
# In a second region (or an account that already has GitHub's OIDC
# provider): -var github_oidc_provider_arn=arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com

terraform {
  required_version = ">= 1.11.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
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

variable "github_oidc_provider_arn" {
  description = "ARN of the account's existing GitHub Actions OIDC provider (token.actions.githubusercontent.com); null creates it. An account holds one provider per URL, so a second bootstrap (another region) or an account that already has one must name it."
  type        = string
  default     = null
}

variable "developers" {
  description = "Developers of the test account: each gets the IAM policies woocom-developer-<name>-{1,2}-<region>, which create and destroys their own dev-<name> stack and nothing else. Attach it to their IAM user, group or permission set."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for d in var.developers : can(regex("^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$", d))])
    error_message = "Each developer name is 1-20 lowercase letters, digits and '-', not starting or ending with '-' (their stack is dev-<name>)."
  }
  # Stack resources are matched by name prefix (woocom-dev-<name>-*), so
  # alice's policy would reach woocom-dev-alice-x-…: such pairs are refused.
  validation {
    condition     = alltrue([for a in var.developers : alltrue([for b in var.developers : a == b || !startswith(b, "${a}-")])])
    error_message = "No developer name may be another's followed by '-' (alice and alice-x): alice's policy, matching woocom-dev-alice-*, would reach alice-x's stack."
  }
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
  target_bucket = module.state_logs.id
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

module "state_logs" {
  source = "../modules/log_bucket"

  bucket         = "woocom-tfstate-logs-${data.aws_caller_identity.current.account_id}-${var.region}"
  retention_days = var.state_log_retention_days
  s3_log_sources = { "state/" = aws_s3_bucket.state.arn }
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

# terraform/stack finds this role by its name to know bootstrap ran in its
# region.
resource "aws_iam_role" "apigateway_cloudwatch" {
  name               = "woocom-apigateway-cloudwatch-${var.region}"
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
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate itself; the thumbprint is required by
  # the API but not used for this provider.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
}

locals {
  github_oidc_provider_arn = coalesce(var.github_oidc_provider_arn, one(aws_iam_openid_connect_provider.github[*].arn))

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
      identifiers = [local.github_oidc_provider_arn]
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

# ---- Who may change which stack ---------------------------------------------
#
# One policy document per stack, from modules/access_policy: the CI roles'
# (staging, production) and each developer's (dev-<name>), each reaching
# only its own stack's resources and state; plus each stack's permissions
# boundary, which every role a stack creates must carry.
# terraform/tests/check-policies.py evaluates them against each other.

locals {
  stacks = merge(
    { for k in keys(local.deployers) : k => k },
    { for d in var.developers : "dev-${d}" => "dev-${d}" },
  )
}

module "access" {
  source   = "../modules/access_policy"
  for_each = local.stacks

  stack        = each.key
  partition    = data.aws_partition.current.partition
  region       = var.region
  account_id   = data.aws_caller_identity.current.account_id
  state_bucket = aws_s3_bucket.state.id
}

resource "aws_iam_policy" "boundary" {
  for_each = local.stacks

  name        = module.access[each.key].boundary_name
  path        = module.access[each.key].boundary_path
  description = "Permissions boundary of every role the ${each.key} stack creates in ${var.region}."
  policy      = module.access[each.key].boundary_policy
}

# Two managed policies per developer (a managed policy holds 6,144
# characters; see modules/access_policy): attach both.
resource "aws_iam_policy" "developer" {
  for_each = { for pair in setproduct(var.developers, [1, 2]) : "${pair[0]}-${pair[1]}" => { developer = pair[0], part = pair[1] } }

  name        = "woocom-developer-${each.key}-${var.region}"
  path        = "/woocom/"
  description = "Create, change and destroy the dev-${each.value.developer} stack in ${var.region}, and nothing else (part ${each.value.part} of 2)."
  policy      = module.access["dev-${each.value.developer}"].deploy_policy_parts[each.value.part - 1]
}

resource "aws_iam_role" "github" {
  for_each = local.deployers

  name                 = "woocom-github-deploy-${each.key}-${var.region}"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "github" {
  for_each = local.deployers

  name   = "deploy"
  role   = aws_iam_role.github[each.key].id
  policy = module.access[each.key].deploy_policy
}

output "state_bucket" {
  value = aws_s3_bucket.state.id
}

output "developer_policy_arns" {
  description = "Developer => the two policies to attach to them (their IAM user, group or IAM Identity Center permission set)."
  value       = { for d in var.developers : d => [aws_iam_policy.developer["${d}-1"].arn, aws_iam_policy.developer["${d}-2"].arn] }
}

output "boundary_arns" {
  value = { for k, p in aws_iam_policy.boundary : k => p.arn }
}

output "github_oidc_provider_arn" {
  value = local.github_oidc_provider_arn
}

output "github_role_arns" {
  description = "Set as the repository variables AWS_ROLE_STAGING and AWS_ROLE_PRODUCTION."
  value       = { for k, r in aws_iam_role.github : k => r.arn }
}

# A private bucket that receives access logs and keeps them
# retention_days: S3 server access logs of the buckets named in
# s3_log_sources (each under its own prefix), and, with cloudfront_logs,
# CloudFront's standard logs. Used for a stack's site (terraform/stack) and
# for the Terraform state bucket (terraform/bootstrap).

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "bucket" {
  description = "The bucket's name; null to take bucket_prefix."
  type        = string
  default     = null
}

variable "bucket_prefix" {
  description = "Name prefix (at most 37 characters) when bucket is null."
  type        = string
  default     = null
}

variable "force_destroy" {
  type    = bool
  default = false
}

variable "retention_days" {
  type = number
}

variable "s3_log_sources" {
  description = "Key prefix (e.g. \"s3/\") => ARN of the bucket whose server access logs are written under it."
  type        = map(string)
  default     = {}
}

variable "cloudfront_logs" {
  description = "CloudFront standard logging delivers here (it needs ACLs on the bucket)."
  type        = bool
  default     = false
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:This is an access-log bucket; it cannot log to itself.
  #checkov:skip=CKV_AWS_21:Logs are written once by S3 and CloudFront and expire after retention_days; versioning would only keep each expired log as a noncurrent version.
  #checkov:skip=CKV_AWS_144:Access logs are kept in the region of what they describe; replicating them to a second region doubles their cost for no use here.
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to buckets encrypted with SSE-S3 (SSE-KMS targets are not supported); SSE-S3 is set below.
  #checkov:skip=CKV2_AWS_62:Nothing processes the logs as they arrive; event notifications would have no consumer.
  bucket        = var.bucket
  bucket_prefix = var.bucket == null ? var.bucket_prefix : null
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# CloudFront's standard logging writes through an ACL grant to its
# log-delivery account, so a bucket that receives them keeps ACLs on
# (objects still belong to the bucket owner).
resource "aws_s3_bucket_ownership_controls" "this" {
  #checkov:skip=CKV2_AWS_65:CloudFront standard logging delivers through an ACL grant (awslogsdelivery); it cannot write to a bucket with ACLs disabled. Buckets without CloudFront logs are BucketOwnerEnforced, and every one blocks public ACLs.
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = var.cloudfront_logs ? "BucketOwnerPreferred" : "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "this" {
  dynamic "statement" {
    for_each = var.s3_log_sources
    content {
      sid       = "S3ServerAccessLogs${replace(title(replace(statement.key, "/[^a-zA-Z0-9]+/", " ")), " ", "")}"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this.arn}/${statement.key}*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [statement.value]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }

  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
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

resource "aws_s3_bucket_policy" "this" {
  bucket     = aws_s3_bucket.this.id
  policy     = data.aws_iam_policy_document.this.json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

output "id" {
  value = aws_s3_bucket.this.id
}

output "arn" {
  value = aws_s3_bucket.this.arn
}

output "domain_name" {
  description = "For CloudFront's logging_config."
  value       = aws_s3_bucket.this.bucket_domain_name
}

output "ready" {
  description = "Known once the bucket accepts CloudFront's ACL-based delivery (depend on it)."
  value       = aws_s3_bucket_ownership_controls.this.id
}

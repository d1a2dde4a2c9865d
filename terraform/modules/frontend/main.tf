# Frontend hosting: a private S3 bucket read only by CloudFront through an
# origin access control, HTTPS only, and config.json with the API URLs.
# `woocom-dev deploy` uploads the built frontend next to config.json.
# CloudFront's and S3's access logs go to a second, private bucket that
# keeps them for log_retention_days.

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

variable "config" {
  description = "Written to config.json, read by the frontend at start."
  type        = map(string)
}

variable "force_destroy" {
  description = "Let `terraform destroy` empty the bucket (developer stacks)."
  type        = bool
  default     = false
}

variable "price_class" {
  type    = string
  default = "PriceClass_100"
}

variable "logs_bucket_prefix" {
  description = "Name prefix of the access-log bucket (at most 37 characters, as S3's bucket_prefix)."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudFront and S3 access logs are kept."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted site file stays restorable (bucket versioning)."
  type        = number
  default     = 30
}

resource "aws_s3_bucket" "site" {
  #checkov:skip=CKV_AWS_144:The site is a build of the repository that `woocom-dev deploy` re-uploads in minutes; a replica in a second region would double storage and uploads for files git already keeps.
  #checkov:skip=CKV_AWS_145:Public website files, encrypted at rest with SSE-S3; SSE-KMS behind an origin access control needs a customer managed key (1 USD a month per stack) whose policy lets CloudFront decrypt, which protects nothing that CloudFront does not serve to anyone.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads; event notifications would have no consumer.
  bucket_prefix = "${var.name}-"
  force_destroy = var.force_destroy
}

# A bad upload is undone by restoring the previous versions; they expire
# after noncurrent_version_days.
resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket     = aws_s3_bucket.site.id
  depends_on = [aws_s3_bucket_versioning.site]

  rule {
    id     = "expire-replaced-files"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_logging" "site" {
  bucket        = aws_s3_bucket.site.id
  target_bucket = module.logs.id
  target_prefix = "s3/"
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_cloudfront_origin_access_control" "site" {
  name                              = var.name
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# AWS managed cache policies.
# <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html>
locals {
  caching_optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled  = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
}

# AWS's managed security headers (Strict-Transport-Security,
# X-Content-Type-Options, X-Frame-Options, Referrer-Policy,
# X-XSS-Protection) on every response; looked up by name rather than a
# custom policy per stack (an account holds 20 custom policies).
# <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-response-headers-policies.html>
data "aws_cloudfront_response_headers_policy" "security_headers" {
  name = "Managed-SecurityHeadersPolicy"
}

resource "aws_cloudfront_distribution" "site" {
  #checkov:skip=CKV_AWS_174:No custom domain: the distribution answers on *.cloudfront.net with CloudFront's default certificate, whose TLS policy AWS sets and reports as TLSv1 (see viewer_certificate); TLSv1.2_2021 goes with aliases and an ACM certificate.
  #checkov:skip=CKV2_AWS_42:No custom domain to hold a certificate for; the default *.cloudfront.net certificate serves HTTPS.
  #checkov:skip=CKV_AWS_68:Static, public, read-only files (GET/HEAD only) from a private bucket; a WAF web ACL costs at least 5 USD a month per stack plus per request, and the API it could protect is a separate origin with its own throttling.
  #checkov:skip=CKV2_AWS_47:No WAF web ACL (see CKV_AWS_68): there is no ACL to add the Log4j rule set to, and nothing behind CloudFront runs Java.
  #checkov:skip=CKV_AWS_374:A public shop serves every country; blocking countries is a business decision, not a security default.
  #checkov:skip=CKV_AWS_310:One origin by design: the files are a build of the repository that a deploy re-uploads; a failover origin needs a replicated bucket in a second region (see the site bucket's CKV_AWS_144).
  enabled             = true
  comment             = var.name
  default_root_object = "index.html"
  price_class         = var.price_class
  http_version        = "http2and3"

  origin {
    origin_id                = "site"
    domain_name              = aws_s3_bucket.site.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.site.id
  }

  default_cache_behavior {
    target_origin_id           = "site"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized
    response_headers_policy_id = data.aws_cloudfront_response_headers_policy.security_headers.id
  }

  # The API URLs change with a redeploy; never cache them at the edge.
  ordered_cache_behavior {
    path_pattern               = "/config.json"
    target_origin_id           = "site"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_disabled
    response_headers_policy_id = data.aws_cloudfront_response_headers_policy.security_headers.id
  }

  # Client-side routes: S3 answers 403 for a missing key behind OAC.
  custom_error_response {
    error_code         = 403
    response_code      = 200
    response_page_path = "/index.html"
  }

  custom_error_response {
    error_code         = 404
    response_code      = 200
    response_page_path = "/index.html"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  # With the default *.cloudfront.net certificate AWS sets the TLS policy
  # itself (TLSv1 or later is negotiated as its default certificate allows)
  # and reports minimum_protocol_version as TLSv1: any other value here is
  # a change on every plan and a wait for the distribution on every apply.
  # The provider documents it: "If you have specified
  # cloudfront_default_certificate, TLSv1 must be specified."
  # <https://registry.terraform.io/providers/hashicorp/aws/5.100.0/docs/resources/cloudfront_distribution#minimum_protocol_version>
  # <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-cloudfront-distributionconfig-viewercertificate.html>
  # TLSv1.2_2021 belongs with aliases and an ACM certificate.
  viewer_certificate {
    cloudfront_default_certificate = true
    minimum_protocol_version       = "TLSv1"
  }

  logging_config {
    bucket          = module.logs.domain_name
    prefix          = "cloudfront/"
    include_cookies = false
  }

  depends_on = [module.logs]
}

data "aws_iam_policy_document" "site" {
  statement {
    sid       = "CloudFrontReadsThroughOAC"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.site.arn]
    }
  }

  statement {
    sid       = "HttpsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.site.arn, "${aws_s3_bucket.site.arn}/*"]
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

resource "aws_s3_bucket_policy" "site" {
  bucket     = aws_s3_bucket.site.id
  policy     = data.aws_iam_policy_document.site.json
  depends_on = [aws_s3_bucket_public_access_block.site]
}

resource "aws_s3_object" "config" {
  bucket        = aws_s3_bucket.site.id
  key           = "config.json"
  content       = jsonencode(var.config)
  content_type  = "application/json"
  cache_control = "no-cache"
}

# ---- Access logs ----------------------------------------------------------

module "logs" {
  source = "../log_bucket"

  bucket_prefix   = var.logs_bucket_prefix
  force_destroy   = var.force_destroy
  retention_days  = var.log_retention_days
  s3_log_sources  = { "s3/" = aws_s3_bucket.site.arn }
  cloudfront_logs = true
}

output "bucket" {
  value = aws_s3_bucket.site.id
}

output "distribution_id" {
  value = aws_cloudfront_distribution.site.id
}

output "logs_bucket" {
  value = module.logs.id
}

output "url" {
  value = "https://${aws_cloudfront_distribution.site.domain_name}"
}

output "minimum_protocol_version" {
  value = one(aws_cloudfront_distribution.site.viewer_certificate[*].minimum_protocol_version)
}

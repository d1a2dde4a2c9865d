# DynamoDB tables: keys, indexes, streams and TTL from dev.toml; on-demand
# capacity, point-in-time recovery and encryption with the AWS managed key.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

variable "tables" {
  description = "The manifest module's `tables` output."
  type        = any
}

variable "point_in_time_recovery" {
  type    = bool
  default = true
}

variable "deletion_protection" {
  description = "Refuse to delete tables (production)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for table encryption; null uses the AWS managed key (aws/dynamodb)."
  type        = string
  default     = null
}

resource "aws_dynamodb_table" "this" {
  for_each = var.tables

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.value.name
      type = attribute.value.type
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_indexes
    content {
      name               = global_secondary_index.value.name
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection_type
      non_key_attributes = global_secondary_index.value.non_key_attributes
    }
  }

  dynamic "local_secondary_index" {
    for_each = each.value.local_indexes
    content {
      name               = local_secondary_index.value.name
      range_key          = local_secondary_index.value.range_key
      projection_type    = local_secondary_index.value.projection_type
      non_key_attributes = local_secondary_index.value.non_key_attributes
    }
  }

  stream_enabled   = each.value.stream_view_type != null
  stream_view_type = each.value.stream_view_type

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

output "names" {
  value = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "arns" {
  value = { for k, t in aws_dynamodb_table.this : k => t.arn }
}

output "stream_arns" {
  description = "Tables with a stream only."
  value       = { for k, t in aws_dynamodb_table.this : k => t.stream_arn if var.tables[k].stream_view_type != null }
}

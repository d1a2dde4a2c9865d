variable "stack" {
  description = "Which stack: dev-<name> (a developer's own), staging or production. Every resource is named woocom-<stack>-…"
  type        = string
  validation {
    condition     = can(regex("^(staging|production|dev-[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?)$", var.stack))
    error_message = "stack is staging, production or dev-<name>, name = 1-20 lowercase letters, digits and '-', not starting or ending with '-'."
  }
}

variable "region" {
  description = "AWS region; null takes dev.toml's [stack] region."
  type        = string
  default     = null
}

variable "manifest_file" {
  description = "terraform/manifest.json, rendered from dev.toml by `woocom-dev render`."
  type        = string
  default     = "../manifest.json"
}

variable "package_dir" {
  description = "`woocom-dev package`'s output (target/lambda), absolute or relative to this folder."
  type        = string
  default     = "../../target/lambda"
}

variable "architecture" {
  type    = string
  default = "arm64"
}

variable "api_stage" {
  description = "Stage of the REST and WebSocket APIs (the last part of their URLs)."
  type        = string
  default     = "api"
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "reserve_concurrency" {
  type    = bool
  default = false
}

variable "throttling_rate_limit" {
  type    = number
  default = 100
}

variable "throttling_burst_limit" {
  type    = number
  default = 200
}

variable "point_in_time_recovery" {
  type    = bool
  default = true
}

variable "deletion_protection" {
  type    = bool
  default = false
}

variable "force_destroy_site" {
  type    = bool
  default = false
}

variable "alarm_emails" {
  description = "E-mail addresses that receive the stack's alarms (each confirms AWS's subscription mail once)."
  type        = list(string)
  default     = []
}

variable "alarm_https_endpoints" {
  description = "HTTPS endpoints (a chat or paging webhook that confirms SNS subscriptions) that receive the stack's alarms; pass them as TF_VAR_alarm_https_endpoints from a secret."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary of every role the stack creates; null takes the one terraform/bootstrap created for this stack and region."
  type        = string
  default     = null
}

variable "event_topic_kms_key" {
  description = "Customer managed KMS key of the topics EventBridge rules publish to (its policy must let events.amazonaws.com use kms:GenerateDataKey and kms:Decrypt); null leaves those topics unencrypted, as EventBridge cannot use the AWS managed alias/aws/sns."
  type        = string
  default     = null
}

variable "prefix" {
  description = "Prefix of every resource name: woocom-dev-<developer>, woocom-staging, woocom-production."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.prefix))
    error_message = "prefix is 3-31 lowercase letters, digits and '-' (it prefixes S3 buckets, tables, functions and roles)."
  }
}

variable "manifest_file" {
  description = "terraform/manifest.json, rendered from dev.toml by `woocom-dev render`."
  type        = string
}

variable "package_dir" {
  description = "`woocom-dev package`'s output folder (target/lambda)."
  type        = string
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

variable "alarm_email" {
  type    = string
  default = null
}

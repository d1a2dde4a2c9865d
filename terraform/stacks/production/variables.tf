variable "region" {
  description = "AWS region; null takes dev.toml's [stack] region."
  type        = string
  default     = null
}

variable "package_dir" {
  description = "`woocom-dev package`'s output (target/lambda), absolute or relative to this folder."
  type        = string
  default     = "../../../target/lambda"
}

variable "architecture" {
  type    = string
  default = "arm64"
}

variable "api_stage" {
  type    = string
  default = "api"
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

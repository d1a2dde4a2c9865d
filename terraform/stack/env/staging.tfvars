# Staging: pull requests deploy here as previews, and main deploys here
# before production (.github/workflows/).
stack                  = "staging"
log_retention_days     = 14
point_in_time_recovery = true
deletion_protection    = false
force_destroy_site     = true
throttling_rate_limit  = 50
throttling_burst_limit = 100
# Alarm subscribers come from the GitHub environment (README, Alerts):
# ALARM_EMAILS (variable) and ALARM_HTTPS_ENDPOINTS (secret), JSON lists,
# become TF_VAR_alarm_emails / TF_VAR_alarm_https_endpoints. Or set here:
# alarm_emails = ["team@example.com"]

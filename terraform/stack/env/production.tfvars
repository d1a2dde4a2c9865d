# Production: deployed from main after staging, behind the `production`
# environment's approval (.github/workflows/deploy.yml).
stack                  = "production"
log_retention_days     = 90
point_in_time_recovery = true
deletion_protection    = true
force_destroy_site     = false
# dev.toml's `concurrency` caps each function at a laptop-sized number;
# reserve it here only with a quota and numbers sized for production.
reserve_concurrency    = false
throttling_rate_limit  = 500
throttling_burst_limit = 1000
# Alarm subscribers come from the GitHub environment (README, Alerts):
# ALARM_EMAILS (variable) and ALARM_HTTPS_ENDPOINTS (secret), JSON lists,
# become TF_VAR_alarm_emails / TF_VAR_alarm_https_endpoints. Or set here:
# alarm_emails = ["oncall@example.com"]

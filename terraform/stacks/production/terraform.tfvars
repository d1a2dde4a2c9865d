log_retention_days     = 90
point_in_time_recovery = true
deletion_protection    = true
force_destroy_site     = false
# dev.toml's `concurrency` caps each function at a laptop-sized number;
# reserve it here only with a quota and numbers sized for production.
reserve_concurrency    = false
throttling_rate_limit  = 500
throttling_burst_limit = 1000
# alarm_email = "oncall@example.com"

log_retention_days     = 14
point_in_time_recovery = true
deletion_protection    = false
force_destroy_site     = true
throttling_rate_limit  = 50
throttling_burst_limit = 100

# A developer stack (woocom-dev deploy --stack dev-<name> passes
# -var stack=dev-<name>): cheap, short-lived, removable in one command.
log_retention_days     = 7
point_in_time_recovery = false
deletion_protection    = false
force_destroy_site     = true
throttling_rate_limit  = 20
throttling_burst_limit = 40

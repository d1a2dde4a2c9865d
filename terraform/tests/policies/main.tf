# Evaluates modules/access_policy (no provider, so it runs offline) for the
# two CI stacks and two developers with fixed account facts, as
# terraform/bootstrap calls it. devserver/tests/smoke/terraform-validate.sh
# applies it and checks the documents with tests/check-policies.py.

terraform {
  required_version = ">= 1.5.0"
}

locals {
  stacks = ["staging", "production", "dev-alice", "dev-bob"]
}

module "access" {
  source   = "../../modules/access_policy"
  for_each = toset(local.stacks)

  stack        = each.key
  partition    = "aws"
  region       = "eu-west-1"
  account_id   = "123456789012"
  state_bucket = "woocom-tfstate-123456789012-eu-west-1"
}

output "stacks" {
  value = {
    for s, m in module.access : s => {
      prefix          = m.prefix
      state_prefix    = m.state_prefix
      boundary_arn    = m.boundary_arn
      deploy_policy   = jsondecode(m.deploy_policy)
      boundary_policy = jsondecode(m.boundary_policy)
      deploy_parts    = [for part in m.deploy_policy_parts : jsondecode(part)]
      deploy_size     = length(m.deploy_policy)
      part_sizes      = [for part in m.deploy_policy_parts : length(part)]
    }
  }
}

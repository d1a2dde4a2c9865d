# terraform/bootstrap planned and applied against a mocked AWS provider:
# names carry the region, an existing OIDC provider is used as is, each
# developer gets their policies, and the roles get modules/access_policy's
# documents (which terraform/tests/check-policies.py evaluates).
# Run by devserver/tests/smoke/terraform-validate.sh.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::woocom-tfstate-mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_iam_openid_connect_provider" {
    defaults = { arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/woocom/mock" }
  }
}

# Known at plan, as the bucket's name is in AWS (it is not generated).
override_resource {
  target          = aws_s3_bucket.state
  override_during = plan
  values = {
    id  = "woocom-tfstate-123456789012-eu-west-1"
    arn = "arn:aws:s3:::woocom-tfstate-123456789012-eu-west-1"
  }
}

variables {
  region            = "eu-west-1"
  github_repository = "example/woocom"
  developers        = ["alice", "bob"]
}

# Plans only: the state bucket is prevent_destroy, which a test's
# teardown would trip over.
run "first_region" {
  command = plan

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 1
    error_message = "Without an existing provider, bootstrap creates GitHub's."
  }
  assert {
    condition     = aws_iam_role.github["staging"].name == "woocom-github-deploy-staging-eu-west-1" && aws_iam_role.github["production"].name == "woocom-github-deploy-production-eu-west-1"
    error_message = "Deploy role names carry the region."
  }
  assert {
    condition     = aws_iam_role.apigateway_cloudwatch.name == "woocom-apigateway-cloudwatch-eu-west-1"
    error_message = "The API Gateway logging role is per region (terraform/stack looks for this name)."
  }
  assert {
    condition     = aws_iam_role_policy.github["staging"].policy == module.access["staging"].deploy_policy && aws_iam_role_policy.github["production"].policy == module.access["production"].deploy_policy
    error_message = "Each deploy role gets its own stack's deploy policy."
  }
  assert {
    condition     = toset(keys(aws_iam_policy.boundary)) == toset(["staging", "production", "dev-alice", "dev-bob"])
    error_message = "One permissions boundary per stack: ${jsonencode(keys(aws_iam_policy.boundary))}"
  }
  assert {
    condition     = aws_iam_policy.boundary["dev-alice"].name == "woocom-dev-alice-boundary-eu-west-1" && aws_iam_policy.boundary["dev-alice"].path == "/woocom/"
    error_message = "Boundary names are what terraform/stack expects."
  }
  assert {
    condition     = toset(keys(aws_iam_policy.developer)) == toset(["alice-1", "alice-2", "bob-1", "bob-2"])
    error_message = "Two managed policies per developer: ${jsonencode(keys(aws_iam_policy.developer))}"
  }
  assert {
    condition     = aws_iam_policy.developer["alice-1"].policy == module.access["dev-alice"].deploy_policy_parts[0] && aws_iam_policy.developer["alice-2"].policy == module.access["dev-alice"].deploy_policy_parts[1]
    error_message = "A developer's policies are the deploy policy of their own stack."
  }
  assert {
    condition     = length(output.developer_policy_arns["bob"]) == 2
    error_message = "developer_policy_arns lists both policies."
  }
}

run "second_region_with_existing_oidc_provider" {
  command = plan

  variables {
    region                   = "us-west-2"
    github_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "An existing provider is used, not created again (EntityAlreadyExists)."
  }
  assert {
    condition     = output.github_oidc_provider_arn == var.github_oidc_provider_arn
    error_message = "The roles trust the existing provider."
  }
  assert {
    condition     = aws_iam_role.github["staging"].name == "woocom-github-deploy-staging-us-west-2" && aws_iam_policy.developer["alice-1"].name == "woocom-developer-alice-1-us-west-2"
    error_message = "A second region's names do not clash with the first's."
  }
}

# alice's policy matches woocom-dev-alice-*, which would include alice-x's
# stack: such names are refused.
run "developer_names_that_overlap" {
  command = plan

  variables {
    developers = ["alice", "alice-x"]
  }

  expect_failures = [var.developers]
}

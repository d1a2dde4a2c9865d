# Who may change one stack, and what the roles that stack creates may ever
# do: the deploy policy (a CI role's, or a developer's for dev-<name>) and
# the permissions boundary every role of the stack must carry. No provider:
# terraform/bootstrap attaches these documents, the stack reads the
# boundary's ARN from here, and terraform/tests/policies evaluates them
# offline (terraform/tests/check-policies.py).
#
# How a stack's resources are told apart:
#  - by name, where the ARN carries it: every bucket, table, queue, topic,
#    function, role, alarm and most log groups are named woocom-<stack>-…;
#  - by the `Stack` tag (default_tags in terraform/stack), where the ARN
#    holds a generated id: REST and WebSocket APIs (API Gateway children
#    inherit the API's tags for access control), CloudFront distributions,
#    event source mappings and API Gateway's execution log group. A create
#    must carry the stack's own tag (aws:RequestTag; a mapping instead names
#    one of the stack's functions), a change needs it on the resource
#    (aws:ResourceTag), and the tag cannot be rewritten on another stack's
#    resource. Every action and condition key here is checked against AWS's
#    service authorization reference by terraform/tests/simulate-policies.mjs.
#    <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-supported-resources.html>
#    <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-iam-policy.html>
#    <https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html>

terraform {
  required_version = ">= 1.5.0"
}

variable "stack" {
  description = "staging, production or dev-<name>."
  type        = string
  validation {
    condition     = can(regex("^(staging|production|dev-[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?)$", var.stack))
    error_message = "stack is staging, production or dev-<name> (1-20 lowercase letters, digits and '-')."
  }
}

variable "partition" {
  type    = string
  default = "aws"
}

variable "region" {
  type = string
}

variable "account_id" {
  type = string
}

variable "state_bucket" {
  description = "Name of the bucket holding Terraform state (bootstrap's state_bucket); only the deploy policy uses it (terraform/stack, which reads just the boundary's name, leaves it empty)."
  type        = string
  default     = ""
}

locals {
  prefix = "woocom-${var.stack}"
  # The stack's state object(s) (see devserver/src/deploy/terraform.rs).
  state_prefix = startswith(var.stack, "dev-") ? "dev/${trimprefix(var.stack, "dev-")}/" : "${var.stack}/"

  p      = var.partition
  here   = "${var.region}:${var.account_id}"
  iam    = "arn:${local.p}:iam::${var.account_id}"
  apigw  = "arn:${local.p}:apigateway:${var.region}::"
  lambda = "arn:${local.p}:lambda:${local.here}"
  logs   = "arn:${local.p}:logs:${local.here}:log-group"
  events = "arn:${local.p}:events:${local.here}"

  # IAM objects are global, bootstrap runs once per region: the region is
  # part of every name it creates.
  boundary_name = "${local.prefix}-boundary-${var.region}"
  boundary_path = "/woocom/"
  boundary_arn  = "${local.iam}:policy${local.boundary_path}${local.boundary_name}"

  own_tag     = { "aws:ResourceTag/Stack" = local.prefix }
  request_tag = { "aws:RequestTag/Stack" = local.prefix }

  deploy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "StackBuckets"
        Effect   = "Allow"
        Action   = ["s3:*"]
        Resource = ["arn:${local.p}:s3:::${local.prefix}-*", "arn:${local.p}:s3:::${local.prefix}-*/*"]
      },
      {
        Sid      = "StackTables"
        Effect   = "Allow"
        Action   = ["dynamodb:*"]
        Resource = ["arn:${local.p}:dynamodb:${local.here}:table/${local.prefix}-*"]
      },
      {
        Sid      = "StackQueues"
        Effect   = "Allow"
        Action   = ["sqs:*"]
        Resource = ["arn:${local.p}:sqs:${local.here}:${local.prefix}-*"]
      },
      {
        Sid      = "StackTopics"
        Effect   = "Allow"
        Action   = ["sns:*"]
        Resource = ["arn:${local.p}:sns:${local.here}:${local.prefix}-*"]
      },
      {
        # Buses and rules by name: a rule's ARN is rule/<rule> on the
        # default bus and rule/<bus>/<rule> on a custom one, both named
        # <prefix>-…; targets are changed through their rule.
        Sid      = "StackEventBusesAndRules"
        Effect   = "Allow"
        Action   = ["events:*"]
        Resource = ["${local.events}:event-bus/${local.prefix}-*", "${local.events}:rule/${local.prefix}-*"]
      },
      {
        Sid      = "StackFunctions"
        Effect   = "Allow"
        Action   = ["lambda:*"]
        Resource = ["${local.lambda}:function:${local.prefix}-*"]
      },
      # Event source mappings have generated ids. Create names the function
      # (lambda:FunctionArn); with provider 5.70+ and default_tags the
      # mapping is tagged at creation, which needs lambda:TagResource on the
      # mapping's own ARN, and reading it back needs lambda:ListTags.
      # <https://docs.aws.amazon.com/lambda/latest/dg/tags-esm.html>
      # <https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html>
      {
        Sid       = "CreateMappingsForStackFunctions"
        Effect    = "Allow"
        Action    = ["lambda:CreateEventSourceMapping"]
        Resource  = ["*"]
        Condition = { ArnLike = { "lambda:FunctionArn" = "${local.lambda}:function:${local.prefix}-*" } }
      },
      {
        # Reads carry no lambda:FunctionArn for certain, so they are not
        # conditioned: a mapping's settings are no secret.
        Sid      = "ReadMappings"
        Effect   = "Allow"
        Action   = ["lambda:GetEventSourceMapping", "lambda:ListTags"]
        Resource = ["${local.lambda}:event-source-mapping:*"]
      },
      {
        Sid      = "ListMappings"
        Effect   = "Allow"
        Action   = ["lambda:ListEventSourceMappings"]
        Resource = ["*"]
      },
      {
        # Tag on create (no tags yet) or retag the stack's own mapping,
        # always with the stack's own Stack tag.
        Sid       = "TagStackMappings"
        Effect    = "Allow"
        Action    = ["lambda:TagResource"]
        Resource  = ["${local.lambda}:event-source-mapping:*"]
        Condition = { StringEquals = local.request_tag, StringEqualsIfExists = local.own_tag }
      },
      {
        Sid       = "ChangeMappingsOfStackFunctions"
        Effect    = "Allow"
        Action    = ["lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"]
        Resource  = ["${local.lambda}:event-source-mapping:*"]
        Condition = { ArnLike = { "lambda:FunctionArn" = "${local.lambda}:function:${local.prefix}-*" } }
      },
      {
        Sid       = "ChangeStackTaggedMappings"
        Effect    = "Allow"
        Action    = ["lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping", "lambda:UntagResource"]
        Resource  = ["${local.lambda}:event-source-mapping:*"]
        Condition = { StringEquals = local.own_tag }
      },
      # API Gateway (REST and WebSocket): a new API must carry the stack's
      # tag; everything under an API (stages, deployments, routes,
      # integrations…) is changed only when the API carries it. Reads are
      # open within the region: `terraform plan` reads /account and the
      # APIs, and configuration is no secret. PATCH /account (the
      # CloudWatch role, bootstrap's) is not granted.
      {
        Sid       = "CreateStackApis"
        Effect    = "Allow"
        Action    = ["apigateway:POST"]
        Resource  = ["${local.apigw}/restapis", "${local.apigw}/apis"]
        Condition = { StringEquals = local.request_tag }
      },
      {
        Sid       = "ChangeStackApis"
        Effect    = "Allow"
        Action    = ["apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"]
        Resource  = ["${local.apigw}/restapis/*", "${local.apigw}/apis/*"]
        Condition = { StringEquals = local.own_tag }
      },
      {
        Sid       = "TagStackApis"
        Effect    = "Allow"
        Action    = ["apigateway:PUT", "apigateway:POST", "apigateway:DELETE"]
        Resource  = ["${local.apigw}/tags/*"]
        Condition = { StringEquals = local.own_tag, StringEqualsIfExists = local.request_tag }
      },
      {
        # Not /apikeys, /usageplans or /domainnames: API key values are
        # secrets, and the stacks use none of them.
        Sid    = "ReadApis"
        Effect = "Allow"
        Action = ["apigateway:GET"]
        Resource = [
          "${local.apigw}/account", "${local.apigw}/restapis", "${local.apigw}/restapis/*",
          "${local.apigw}/apis", "${local.apigw}/apis/*", "${local.apigw}/tags/*",
        ]
      },
      # CloudFront (global): distributions as API Gateway's APIs.
      # CreateDistribution has no resource type (its Resource is "*") but
      # sees the request's tags; tagging the new distribution is
      # TagResource on its ARN. Origin access controls cannot be tagged;
      # see check-policies.py for what that leaves open.
      # <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudfront.html>
      {
        Sid       = "CreateStackDistributions"
        Effect    = "Allow"
        Action    = ["cloudfront:CreateDistribution"]
        Resource  = ["*"]
        Condition = { StringEquals = local.request_tag }
      },
      {
        Sid       = "TagStackDistributions"
        Effect    = "Allow"
        Action    = ["cloudfront:TagResource"]
        Resource  = ["arn:${local.p}:cloudfront::${var.account_id}:distribution/*"]
        Condition = { StringEquals = local.request_tag, StringEqualsIfExists = local.own_tag }
      },
      {
        Sid    = "ChangeStackDistributions"
        Effect = "Allow"
        Action = [
          "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution", "cloudfront:CreateInvalidation",
          "cloudfront:UntagResource",
        ]
        Resource  = ["arn:${local.p}:cloudfront::${var.account_id}:distribution/*"]
        Condition = { StringEquals = local.own_tag }
      },
      {
        # Reads need no tag: CloudFront's support for tag conditions is
        # partial, and a read must not be what stops a deploy.
        # <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/security_iam_service-with-iam.html>
        Sid    = "ReadDistributions"
        Effect = "Allow"
        Action = [
          "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:GetInvalidation",
          "cloudfront:ListTagsForResource",
        ]
        Resource = ["arn:${local.p}:cloudfront::${var.account_id}:distribution/*"]
      },
      {
        # No resource type, no tags: a new OAC changes nothing that exists.
        Sid      = "CreateOriginAccessControls"
        Effect   = "Allow"
        Action   = ["cloudfront:CreateOriginAccessControl"]
        Resource = ["*"]
      },
      {
        Sid    = "OriginAccessControls"
        Effect = "Allow"
        Action = [
          "cloudfront:GetOriginAccessControl", "cloudfront:UpdateOriginAccessControl",
          "cloudfront:DeleteOriginAccessControl",
        ]
        Resource = ["arn:${local.p}:cloudfront::${var.account_id}:origin-access-control/*"]
      },
      {
        Sid      = "ReadCloudFrontPolicies"
        Effect   = "Allow"
        Action   = ["cloudfront:ListResponseHeadersPolicies", "cloudfront:GetResponseHeadersPolicy", "cloudfront:ListOriginAccessControls"]
        Resource = ["*"]
      },
      # Logs: the stack's own groups by name; API Gateway names its
      # execution log group after the API id, so that one goes by tag.
      {
        Sid    = "StackLogGroups"
        Effect = "Allow"
        Action = ["logs:*"]
        Resource = [
          "${local.logs}:/aws/lambda/${local.prefix}-*",
          "${local.logs}:/aws/apigateway/${local.prefix}-*",
        ]
      },
      {
        Sid       = "CreateExecutionLogGroups"
        Effect    = "Allow"
        Action    = ["logs:CreateLogGroup", "logs:TagResource", "logs:TagLogGroup"]
        Resource  = ["${local.logs}:API-Gateway-Execution-Logs_*"]
        Condition = { StringEquals = local.request_tag, StringEqualsIfExists = local.own_tag }
      },
      {
        Sid       = "ChangeStackExecutionLogGroups"
        Effect    = "Allow"
        Action    = ["logs:*"]
        Resource  = ["${local.logs}:API-Gateway-Execution-Logs_*"]
        Condition = { StringEquals = local.own_tag }
      },
      {
        Sid      = "ListLogGroups"
        Effect   = "Allow"
        Action   = ["logs:DescribeLogGroups"]
        Resource = ["*"]
      },
      {
        Sid      = "StackAlarms"
        Effect   = "Allow"
        Action   = ["cloudwatch:*"]
        Resource = ["arn:${local.p}:cloudwatch:${local.here}:alarm:${local.prefix}-*"]
      },
      {
        Sid      = "ListAlarms"
        Effect   = "Allow"
        Action   = ["cloudwatch:DescribeAlarms"]
        Resource = ["*"]
      },
      # Roles: only the stack's own, only with the stack's boundary, and
      # only passed to Lambda. The boundary caps whatever inline policy a
      # role is given, so a role created here can never exceed it.
      # <https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html>
      # <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_permissionsboundary>
      {
        Sid       = "StackRolesWithBoundary"
        Effect    = "Allow"
        Action    = ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"]
        Resource  = ["${local.iam}:role/${local.prefix}-*"]
        Condition = { StringEquals = { "iam:PermissionsBoundary" = local.boundary_arn } }
      },
      {
        Sid    = "StackRoles"
        Effect = "Allow"
        Action = [
          "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
          "iam:ListInstanceProfilesForRole", "iam:ListRoleTags", "iam:TagRole", "iam:UntagRole",
          "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole",
        ]
        Resource = ["${local.iam}:role/${local.prefix}-*"]
      },
      {
        Sid       = "PassStackRolesToLambda"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = ["${local.iam}:role/${local.prefix}-*"]
        Condition = { StringEquals = { "iam:PassedToService" = "lambda.amazonaws.com" } }
      },
      {
        # The roles EventBridge sends to a bus target with (modules/events).
        Sid       = "PassBusTargetRolesToEventBridge"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = ["${local.iam}:role/${local.prefix}-events-to-*"]
        Condition = { StringEquals = { "iam:PassedToService" = "events.amazonaws.com" } }
      },
      {
        # The stack looks for bootstrap's API Gateway logging role of its
        # region (terraform/stack, data.aws_iam_roles): names only.
        Sid      = "ListRoles"
        Effect   = "Allow"
        Action   = ["iam:ListRoles"]
        Resource = ["*"]
      },
      {
        Sid      = "ReadBoundary"
        Effect   = "Allow"
        Action   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
        Resource = [local.boundary_arn]
      },
      {
        Sid      = "NeverLoseTheBoundary"
        Effect   = "Deny"
        Action   = ["iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion"]
        Resource = ["*"]
      },
      {
        Sid      = "State"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["arn:${local.p}:s3:::${var.state_bucket}/${local.state_prefix}*"]
      },
      {
        Sid      = "StateList"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = ["arn:${local.p}:s3:::${var.state_bucket}"]
      },
    ]
  }

  half = ceil(length(local.deploy.Statement) / 2)

  # The most any role of the stack may do: what dev.toml's rendered
  # function policies can ask for (terraform/tests/check-policies.py checks
  # each of them fits), on the stack's own resources.
  boundary = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.logs}:/aws/lambda/${local.prefix}-*"]
      },
      {
        Sid      = "OwnTables"
        Effect   = "Allow"
        Action   = ["dynamodb:*"]
        Resource = ["arn:${local.p}:dynamodb:${local.here}:table/${local.prefix}-*"]
      },
      {
        # Sending (on-failure destinations, dead-letter queues) and what
        # an SQS event source mapping does with the function's role.
        Sid    = "OwnQueues"
        Effect = "Allow"
        Action = [
          "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
        ]
        Resource = ["arn:${local.p}:sqs:${local.here}:${local.prefix}-*"]
      },
      {
        # Destinations and dead-letter topics.
        Sid      = "OwnTopics"
        Effect   = "Allow"
        Action   = ["sns:Publish"]
        Resource = ["arn:${local.p}:sns:${local.here}:${local.prefix}-*"]
      },
      {
        # Functions whose env references a bus, and the roles EventBridge
        # sends to a bus target with; the default bus is the account's,
        # shared by every stack.
        Sid      = "OwnBusesAndTheDefaultBus"
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = ["${local.events}:event-bus/${local.prefix}-*", "${local.events}:event-bus/default"]
      },
      {
        # Function destinations of asynchronous invocations.
        Sid      = "OwnFunctions"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = ["${local.lambda}:function:${local.prefix}-*"]
      },
      {
        # WebSocket API ids are generated; the functions' own policies
        # name their stack's API.
        Sid      = "Connections"
        Effect   = "Allow"
        Action   = ["execute-api:ManageConnections"]
        Resource = ["arn:${local.p}:execute-api:${local.here}:*/*/*/@connections/*"]
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = ["*"]
      },
    ]
  }
}

output "prefix" {
  value = local.prefix
}

output "deploy_policy" {
  description = "The deploy policy (JSON): a CI role's (inline) for staging/production."
  value       = jsonencode(local.deploy)
}

# A managed policy holds at most 6,144 characters (an inline one 10,240),
# and the deploy policy is longer: developers get it as two managed
# policies. check-policies.py checks both limits.
# <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>
output "deploy_policy_parts" {
  description = "The deploy policy split in two documents (JSON), for managed policies."
  value = [
    jsonencode({ Version = local.deploy.Version, Statement = slice(local.deploy.Statement, 0, local.half) }),
    jsonencode({ Version = local.deploy.Version, Statement = slice(local.deploy.Statement, local.half, length(local.deploy.Statement)) }),
  ]
}

output "boundary_policy" {
  description = "The permissions boundary (JSON) every role of the stack carries."
  value       = jsonencode(local.boundary)
}

output "boundary_name" {
  value = local.boundary_name
}

output "boundary_path" {
  value = local.boundary_path
}

output "boundary_arn" {
  value = local.boundary_arn
}

output "state_prefix" {
  value = local.state_prefix
}

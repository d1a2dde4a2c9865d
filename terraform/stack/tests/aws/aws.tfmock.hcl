# The mocked AWS provider of the stack's tests (terraform test): account
# 123456789012 in eu-west-1, and ARNs in AWS's format where the provider
# validates them (a random string is not an ARN).

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws" }
}

# Bootstrap ran in the region.
mock_data "aws_iam_roles" {
  defaults = {
    arns  = ["arn:aws:iam::123456789012:role/woocom-apigateway-cloudwatch-eu-west-1"]
    names = ["woocom-apigateway-cloudwatch-eu-west-1"]
  }
}

mock_data "aws_iam_policy_document" {
  defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn           = "arn:aws:lambda:eu-west-1:123456789012:function:mock"
    qualified_arn = "arn:aws:lambda:eu-west-1:123456789012:function:mock:$LATEST"
    invoke_arn    = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:mock/invocations"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock" }
}

mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:mock" }
}

mock_resource "aws_sns_topic_subscription" {
  defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:mock:0b9a6e4c-0000-4000-8000-000000000001" }
}

mock_resource "aws_dynamodb_table" {
  defaults = {
    arn        = "arn:aws:dynamodb:eu-west-1:123456789012:table/mock"
    stream_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/mock/stream/2026-01-01T00:00:00.000"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn                         = "arn:aws:s3:::mock"
    bucket_domain_name          = "mock.s3.amazonaws.com"
    bucket_regional_domain_name = "mock.s3.eu-west-1.amazonaws.com"
  }
}

mock_resource "aws_cloudfront_distribution" {
  defaults = {
    arn         = "arn:aws:cloudfront::123456789012:distribution/EMOCK"
    domain_name = "dmock.cloudfront.net"
  }
}

mock_resource "aws_api_gateway_rest_api" {
  defaults = {
    arn           = "arn:aws:apigateway:eu-west-1::/restapis/mock"
    execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:mock"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    arn           = "arn:aws:apigateway:eu-west-1::/apis/mock"
    execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:mock"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = { arn = "arn:aws:events:eu-west-1:123456789012:event-bus/mock" }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
}

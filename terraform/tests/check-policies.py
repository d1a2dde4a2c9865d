#!/usr/bin/env python3
"""Evaluates the deploy policies, developers' policies and permissions
boundaries of modules/access_policy against the ARNs each must and must not
reach, with IAM's evaluation rules for what these documents use.

    check-policies.py [--emit requests.json] <stacks.json> <rendered manifest.json>...

<stacks.json> is terraform/tests/policies' `stacks` output (terraform output
-json stacks): per stack, its deploy policy (whole, and in the two parts
developers get as managed policies) and its boundary, for account
123456789012 in eu-west-1. Each rendered manifest's function policies are
checked to fit inside every stack's boundary, and to reach nothing of
another stack through it.

The evaluator (class Policy) implements, after the IAM User Guide:
- Action / NotAction (case-insensitive) and Resource / NotResource
  (case-sensitive), with `*` (any run of characters, `/` and `:` included)
  and `?` (one character);
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html>
- an explicit Deny in any policy wins over every Allow; no Allow is an
  implicit deny; with a permissions boundary, an action must be allowed by
  both the identity policy and the boundary;
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>
- Condition: operators String{Equals,NotEquals,Like,NotLike},
  Arn{Equals,Like,NotEquals,NotLike}, Bool, Null, the IfExists suffix and
  the ForAllValues/ForAnyValue prefixes; keys are case-insensitive, several
  keys in one operator and several operators must all hold, several values
  for one key are alternatives; a key missing from the request fails a
  positive operator, satisfies a negated one, and satisfies any
  ...IfExists operator.
  <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
  Unknown operators fail the check, so a new one in a policy cannot be
  silently misread.

With --emit, every decision checked is also written out (policies, request,
expected answer) for terraform/tests/simulate-policies.mjs, which replays
them through an independent simulator that also knows, from AWS's service
authorization reference, which resource types and condition keys each
action has.
"""

import json
import re
import sys

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STATE_BUCKET = f"woocom-tfstate-{ACCOUNT}-{REGION}"


# ---- the evaluator ---------------------------------------------------------

def wildcard(pattern, value, ignore_case=False):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def as_list(v):
    return v if isinstance(v, list) else [v]


NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "StringNotEqualsIgnoreCase"}


def compare(op, pattern, value):
    if op in ("StringEquals", "ArnEquals"):
        return pattern == value
    if op == "StringEqualsIgnoreCase":
        return pattern.lower() == value.lower()
    if op in ("StringLike", "ArnLike"):
        return wildcard(pattern, value)
    if op == "Bool":
        return pattern.lower() == str(value).lower()
    raise ValueError(f"unsupported condition operator {op}")


def condition_holds(operator, conditions, context):
    ctx = {k.lower(): v for k, v in context.items()}
    op, if_exists, qualifier = operator, False, None
    if ":" in op:
        qualifier, op = op.split(":", 1)
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise ValueError(f"unsupported qualifier {qualifier}")
    if op.endswith("IfExists"):
        op, if_exists = op[: -len("IfExists")], True
    for key, wanted in conditions.items():
        wanted = [str(w) if not isinstance(w, bool) else str(w).lower() for w in as_list(wanted)]
        present = key.lower() in ctx
        if op == "Null":
            if (wanted[0] == "true") != (not present):
                return False
            continue
        if not present:
            if if_exists or op in NEGATED or qualifier == "ForAllValues":
                continue
            return False
        values = as_list(ctx[key.lower()])
        positive = op.replace("Not", "", 1) if op in NEGATED else op

        def one(v):
            hit = any(compare(positive, w, v) for w in wanted)
            return not hit if op in NEGATED else hit

        if qualifier == "ForAllValues":
            ok = all(one(v) for v in values)
        else:  # single-valued, or ForAnyValue
            ok = any(one(v) for v in values)
        if not ok:
            return False
    return True


class Policy:
    def __init__(self, document):
        self.document = document
        self.statements = as_list(document["Statement"])
        for s in self.statements:
            assert s["Effect"] in ("Allow", "Deny"), s
            assert ("Action" in s) != ("NotAction" in s), s
            assert ("Resource" in s) != ("NotResource" in s), s

    @staticmethod
    def _applies(s, action, resource, context):
        if "Action" in s:
            if not any(wildcard(a, action, ignore_case=True) for a in as_list(s["Action"])):
                return False
        elif any(wildcard(a, action, ignore_case=True) for a in as_list(s["NotAction"])):
            return False
        if "Resource" in s:
            if not any(wildcard(r, resource) for r in as_list(s["Resource"])):
                return False
        elif any(wildcard(r, resource) for r in as_list(s["NotResource"])):
            return False
        return all(condition_holds(op, c, context) for op, c in s.get("Condition", {}).items())

    def decide(self, action, resource, context=None):
        """"Deny" (explicit), "Allow", or None (no statement applies)."""
        context = context or {}
        hits = [s["Effect"] for s in self.statements if self._applies(s, action, resource, context)]
        if "Deny" in hits:
            return "Deny"
        return "Allow" if hits else None


def allowed(policies, action, resource, context=None, boundary=None):
    decisions = [p.decide(action, resource, context) for p in policies]
    if "Deny" in decisions or "Allow" not in decisions:
        return False
    if boundary is not None:
        return boundary.decide(action, resource, context) == "Allow"
    return True


def self_test():
    """The evaluator's own rules, on examples from the IAM User Guide."""
    p = Policy({"Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/secret/*"},
        {"Effect": "Allow", "NotAction": ["iam:*", "s3:*", "sqs:*", "sns:*", "ec2:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "NotResource": "arn:aws:sqs:*:*:prod-*"},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:eu-west-1:1:t?pic"},
        {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/Team": ["a", "b"], "ec2:InstanceType": "t3.micro"}}},
        {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "*",
         "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/Team": "a"}}},
        {"Effect": "Allow", "Action": "ec2:StartInstances", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:ResourceTag/Team": "b"}}},
        {"Effect": "Allow", "Action": "ec2:RebootInstances", "Resource": "*",
         "Condition": {"Null": {"aws:ResourceTag/Team": "true"}}},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["Team", "Name"]}}},
    ]})
    cases = [
        ("s3:GetObject", "arn:aws:s3:::bucket/a/b", {}, "Allow"),
        ("S3:getobject", "arn:aws:s3:::bucket/a", {}, "Allow"),  # actions ignore case
        ("s3:GetObject", "arn:aws:s3:::BUCKET/a", {}, None),  # resources do not
        ("s3:GetObject", "arn:aws:s3:::bucketx/a", {}, None),
        ("s3:GetObject", "arn:aws:s3:::bucket/secret/k", {}, "Deny"),  # Deny wins
        ("s3:PutObject", "arn:aws:s3:::bucket/a", {}, None),
        ("dynamodb:GetItem", "arn:aws:dynamodb:x:1:table/t", {}, "Allow"),  # NotAction
        ("iam:CreateRole", "arn:aws:iam::1:role/r", {}, None),
        ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:dev-q", {}, "Allow"),  # NotResource
        ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:prod-q", {}, None),
        ("sns:Publish", "arn:aws:sns:eu-west-1:1:topic", {}, "Allow"),  # ?
        ("sns:Publish", "arn:aws:sns:eu-west-1:1:tooopic", {}, None),
        ("ec2:RunInstances", "*", {"aws:RequestTag/Team": "b", "ec2:InstanceType": "t3.micro"}, "Allow"),
        ("ec2:RunInstances", "*", {"aws:requesttag/team": "a", "EC2:InstanceType": "t3.micro"}, "Allow"),
        ("ec2:RunInstances", "*", {"aws:RequestTag/Team": "c", "ec2:InstanceType": "t3.micro"}, None),
        ("ec2:RunInstances", "*", {"aws:RequestTag/Team": "a"}, None),  # every key must hold
        ("ec2:StopInstances", "*", {}, "Allow"),  # IfExists: absent key passes
        ("ec2:StopInstances", "*", {"aws:ResourceTag/Team": "b"}, None),
        ("ec2:StartInstances", "*", {}, "Allow"),  # negated: absent key passes
        ("ec2:StartInstances", "*", {"aws:ResourceTag/Team": "b"}, None),
        ("ec2:RebootInstances", "*", {}, "Allow"),
        ("ec2:RebootInstances", "*", {"aws:ResourceTag/Team": "a"}, None),
        ("ec2:CreateTags", "*", {"aws:TagKeys": ["Team"]}, "Allow"),
        ("ec2:CreateTags", "*", {"aws:TagKeys": ["Team", "Owner"]}, None),
    ]
    for action, resource, context, want in cases:
        got = p.decide(action, resource, context)
        assert got == want, f"evaluator: {action} on {resource} with {context}: {got}, want {want}"
    try:
        condition_holds("NumericLessThan", {"k": "1"}, {"k": "0"})
    except ValueError:
        pass
    else:
        raise AssertionError("evaluator: an unknown operator must fail, not pass")
    return len(cases)


# ---- what each stack must and must not reach --------------------------------

def arn_facts(prefix, stack):
    return {
        "p": prefix,
        "a": ACCOUNT,
        "r": REGION,
        "fn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}-notify",
        "state": stack_state_prefix(stack),
    }


def stack_state_prefix(stack):
    return f"dev/{stack[4:]}/" if stack.startswith("dev-") else f"{stack}/"


# (action, resource, request context) a deploy needs on a stack's own
# resources; the same on another stack's must be refused. The context is
# what AWS would put in the request: the resource's Stack tag (the stack it
# belongs to), or the tag a create carries.
OWN_ONLY = [
    ("s3:CreateBucket", "arn:aws:s3:::{p}-site-20260101", {}),
    ("s3:PutObject", "arn:aws:s3:::{p}-site-20260101/index.html", {}),
    ("s3:PutBucketPolicy", "arn:aws:s3:::{p}-logs-20260101", {}),
    ("s3:DeleteBucket", "arn:aws:s3:::{p}-site-20260101", {}),
    ("dynamodb:CreateTable", "arn:aws:dynamodb:{r}:{a}:table/{p}-orders", {}),
    ("dynamodb:DeleteTable", "arn:aws:dynamodb:{r}:{a}:table/{p}-orders", {}),
    ("dynamodb:Scan", "arn:aws:dynamodb:{r}:{a}:table/{p}-orders", {}),
    ("dynamodb:DescribeStream", "arn:aws:dynamodb:{r}:{a}:table/{p}-orders/stream/2026-01-01T00:00:00.000", {}),
    ("sqs:CreateQueue", "arn:aws:sqs:{r}:{a}:{p}-notify-orders-failures", {}),
    ("sqs:DeleteQueue", "arn:aws:sqs:{r}:{a}:{p}-notify-orders-failures", {}),
    ("sns:CreateTopic", "arn:aws:sns:{r}:{a}:{p}-alerts", {}),
    ("sns:Subscribe", "arn:aws:sns:{r}:{a}:{p}-alerts", {}),
    ("events:CreateEventBus", "arn:aws:events:{r}:{a}:event-bus/{p}-shop", {}),
    ("events:DeleteEventBus", "arn:aws:events:{r}:{a}:event-bus/{p}-shop", {}),
    ("events:PutRule", "arn:aws:events:{r}:{a}:rule/{p}-shop/{p}-order-placed", {}),
    ("events:PutRule", "arn:aws:events:{r}:{a}:rule/{p}-nightly", {}),
    ("events:PutTargets", "arn:aws:events:{r}:{a}:rule/{p}-shop/{p}-order-placed", {}),
    ("events:RemoveTargets", "arn:aws:events:{r}:{a}:rule/{p}-nightly", {}),
    ("events:DeleteRule", "arn:aws:events:{r}:{a}:rule/{p}-shop/{p}-order-placed", {}),
    ("iam:PassRole", "arn:aws:iam::{a}:role/{p}-events-to-partners", {"iam:PassedToService": "events.amazonaws.com"}),
    ("lambda:CreateFunction", "arn:aws:lambda:{r}:{a}:function:{p}-products", {}),
    ("lambda:UpdateFunctionCode", "arn:aws:lambda:{r}:{a}:function:{p}-products", {}),
    ("lambda:AddPermission", "arn:aws:lambda:{r}:{a}:function:{p}-products", {}),
    ("lambda:CreateEventSourceMapping", "*", {"lambda:FunctionArn": "{fn}"}),
    # Tag on create: the new mapping has no tags yet.
    ("lambda:TagResource", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001",
     {"aws:RequestTag/Stack": "{p}"}),
    ("lambda:UpdateEventSourceMapping", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001",
     {"lambda:FunctionArn": "{fn}", "aws:ResourceTag/Stack": "{p}"}),
    # Delete without lambda:FunctionArn in the request: by the tag alone.
    ("lambda:DeleteEventSourceMapping", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001",
     {"aws:ResourceTag/Stack": "{p}"}),
    ("lambda:DeleteEventSourceMapping", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001",
     {"lambda:FunctionArn": "{fn}"}),
    ("iam:CreateRole", "arn:aws:iam::{a}:role/{p}-products",
     {"iam:PermissionsBoundary": "arn:aws:iam::{a}:policy/woocom/{p}-boundary-{r}", "aws:RequestTag/Stack": "{p}"}),
    ("iam:PutRolePolicy", "arn:aws:iam::{a}:role/{p}-products",
     {"iam:PermissionsBoundary": "arn:aws:iam::{a}:policy/woocom/{p}-boundary-{r}"}),
    ("iam:DeleteRole", "arn:aws:iam::{a}:role/{p}-products", {}),
    ("iam:PassRole", "arn:aws:iam::{a}:role/{p}-products", {"iam:PassedToService": "lambda.amazonaws.com"}),
    ("apigateway:POST", "arn:aws:apigateway:{r}::/restapis", {"aws:RequestTag/Stack": "{p}"}),
    ("apigateway:POST", "arn:aws:apigateway:{r}::/apis", {"aws:RequestTag/Stack": "{p}"}),
    ("apigateway:PUT", "arn:aws:apigateway:{r}::/restapis/a1b2c3d4e5", {"aws:ResourceTag/Stack": "{p}"}),
    ("apigateway:POST", "arn:aws:apigateway:{r}::/restapis/a1b2c3d4e5/deployments", {"aws:ResourceTag/Stack": "{p}"}),
    ("apigateway:PATCH", "arn:aws:apigateway:{r}::/restapis/a1b2c3d4e5/stages/api", {"aws:ResourceTag/Stack": "{p}"}),
    ("apigateway:DELETE", "arn:aws:apigateway:{r}::/restapis/a1b2c3d4e5", {"aws:ResourceTag/Stack": "{p}"}),
    ("apigateway:PATCH", "arn:aws:apigateway:{r}::/apis/f6g7h8i9j0/routes/abc1234", {"aws:ResourceTag/Stack": "{p}"}),
    ("apigateway:DELETE", "arn:aws:apigateway:{r}::/apis/f6g7h8i9j0", {"aws:ResourceTag/Stack": "{p}"}),
    ("cloudfront:CreateDistribution", "*", {"aws:RequestTag/Stack": "{p}"}),
    ("cloudfront:TagResource", "arn:aws:cloudfront::{a}:distribution/E2ABCDEFGHIJKL", {"aws:RequestTag/Stack": "{p}"}),
    ("cloudfront:UpdateDistribution", "arn:aws:cloudfront::{a}:distribution/E2ABCDEFGHIJKL", {"aws:ResourceTag/Stack": "{p}"}),
    ("cloudfront:DeleteDistribution", "arn:aws:cloudfront::{a}:distribution/E2ABCDEFGHIJKL", {"aws:ResourceTag/Stack": "{p}"}),
    ("cloudfront:CreateInvalidation", "arn:aws:cloudfront::{a}:distribution/E2ABCDEFGHIJKL", {"aws:ResourceTag/Stack": "{p}"}),
    ("logs:CreateLogGroup", "arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{p}-products", {}),
    ("logs:DeleteLogGroup", "arn:aws:logs:{r}:{a}:log-group:/aws/apigateway/{p}-rest/access", {}),
    ("logs:PutRetentionPolicy", "arn:aws:logs:{r}:{a}:log-group:API-Gateway-Execution-Logs_a1b2c3d4e5/api",
     {"aws:ResourceTag/Stack": "{p}"}),
    ("logs:CreateLogGroup", "arn:aws:logs:{r}:{a}:log-group:API-Gateway-Execution-Logs_a1b2c3d4e5/api",
     {"aws:RequestTag/Stack": "{p}"}),
    ("cloudwatch:PutMetricAlarm", "arn:aws:cloudwatch:{r}:{a}:alarm:{p}-api-5xx", {}),
    ("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:{r}:{a}:alarm:{p}-products-errors", {}),
    ("s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/{{state}}terraform.tfstate", {}),
    ("s3:PutObject", f"arn:aws:s3:::{STATE_BUCKET}/{{state}}terraform.tfstate.tflock", {}),
    ("s3:DeleteObject", f"arn:aws:s3:::{STATE_BUCKET}/{{state}}terraform.tfstate.tflock", {}),
]

# Needed by every deploy and harmless to share: reads and lists.
EVERYONE = [
    ("apigateway:GET", "arn:aws:apigateway:{r}::/account", {}),
    ("apigateway:GET", "arn:aws:apigateway:{r}::/restapis/a1b2c3d4e5", {}),
    ("lambda:GetEventSourceMapping", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001", {}),
    ("lambda:ListTags", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001", {}),
    ("lambda:ListEventSourceMappings", "*", {}),
    ("cloudfront:GetDistribution", "arn:aws:cloudfront::{a}:distribution/E2ABCDEFGHIJKL", {}),
    ("cloudfront:ListResponseHeadersPolicies", "*", {}),
    ("cloudfront:GetResponseHeadersPolicy", "arn:aws:cloudfront::{a}:response-headers-policy/67f7725c-6f97-4210-82d7-5512b31e9d03", {}),
    ("cloudfront:CreateOriginAccessControl", "*", {}),
    ("logs:DescribeLogGroups", "*", {}),
    ("cloudwatch:DescribeAlarms", "*", {}),
    ("iam:ListRoles", "*", {}),
    ("s3:ListBucket", f"arn:aws:s3:::{STATE_BUCKET}", {}),
]

# Refused to every deploy policy, even on the stack's own resources.
NOBODY = [
    # A role without the stack's boundary, or with another's, or none.
    ("iam:CreateRole", "arn:aws:iam::{a}:role/{p}-products", {}),
    ("iam:CreateRole", "arn:aws:iam::{a}:role/{p}-products",
     {"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ("iam:PutRolePolicy", "arn:aws:iam::{a}:role/{p}-products", {}),
    ("iam:DeleteRolePermissionsBoundary", "arn:aws:iam::{a}:role/{p}-products", {}),
    ("iam:AttachRolePolicy", "arn:aws:iam::{a}:role/{p}-products",
     {"iam:PermissionsBoundary": "arn:aws:iam::{a}:policy/woocom/{p}-boundary-{r}",
      "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ("iam:CreatePolicyVersion", "arn:aws:iam::{a}:policy/woocom/{p}-boundary-{r}", {}),
    ("iam:DeletePolicy", "arn:aws:iam::{a}:policy/woocom/{p}-boundary-{r}", {}),
    ("iam:PassRole", "arn:aws:iam::{a}:role/{p}-products", {"iam:PassedToService": "ec2.amazonaws.com"}),
    # Only the bus targets' roles go to EventBridge.
    ("iam:PassRole", "arn:aws:iam::{a}:role/{p}-products", {"iam:PassedToService": "events.amazonaws.com"}),
    # The account's default bus and its rules of other origin.
    ("events:TagResource", "arn:aws:events:{r}:{a}:event-bus/default", {}),
    ("events:PutRule", "arn:aws:events:{r}:{a}:rule/someone-elses-rule", {}),
    ("iam:CreateUser", "arn:aws:iam::{a}:user/{p}-x", {}),
    ("iam:CreateAccessKey", "arn:aws:iam::{a}:user/admin", {}),
    ("iam:UpdateAssumeRolePolicy", "arn:aws:iam::{a}:role/woocom-github-deploy-production-{r}", {}),
    ("iam:PutRolePolicy", "arn:aws:iam::{a}:role/woocom-github-deploy-production-{r}", {}),
    ("sts:AssumeRole", "arn:aws:iam::{a}:role/woocom-github-deploy-production-{r}", {}),
    # The account-wide API Gateway setting is bootstrap's.
    ("apigateway:PATCH", "arn:aws:apigateway:{r}::/account", {}),
    # API key values are secrets.
    ("apigateway:GET", "arn:aws:apigateway:{r}::/apikeys/k1", {}),
    # Untagged or foreign creates.
    ("apigateway:POST", "arn:aws:apigateway:{r}::/restapis", {}),
    ("cloudfront:CreateDistribution", "*", {}),
    ("lambda:TagResource", "arn:aws:lambda:{r}:{a}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000001", {}),
    # Bootstrap's state bucket itself, and other buckets.
    ("s3:DeleteBucket", f"arn:aws:s3:::{STATE_BUCKET}", {}),
    ("s3:PutBucketPolicy", f"arn:aws:s3:::{STATE_BUCKET}", {}),
    ("s3:GetObject", f"arn:aws:s3:::woocom-tfstate-logs-{ACCOUNT}-{REGION}/state/x", {}),
    # Regions are not stacks' to choose: the policies name bootstrap's.
    ("dynamodb:DeleteTable", "arn:aws:dynamodb:us-east-1:{a}:table/{p}-orders", {}),
    ("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:{a}:function:{p}-products", {}),
]

# Allowed on every resource without a condition although they write: they
# have no resource type (AWS requires "*") and create something new.
CREATES_THAT_CHANGE_NOTHING = {"cloudfront:CreateOriginAccessControl"}

# Known open, by design or by AWS (printed, so they stay visible).
KNOWN_OPEN = [
    ("cloudfront:UpdateOriginAccessControl", "arn:aws:cloudfront::{a}:origin-access-control/E3OAC", {},
     "CloudFront origin access controls cannot be tagged: a deploy role could change another stack's OAC "
     "(not its distribution or bucket policy)"),
]


def fill(template, facts):
    if isinstance(template, dict):
        return {k: fill(v, facts) for k, v in template.items()}
    return template.format(**facts)


def main():
    args = sys.argv[1:]
    emit = None
    if args[:1] == ["--emit"]:
        emit, args = args[1], args[2:]
    stacks_file, manifests = args[0], args[1:]
    emitted = []
    stacks = json.load(open(stacks_file))
    names = sorted(stacks)
    problems, checked = [], 0
    print(f"check-policies: evaluator self-test: {self_test()} cases")

    deploy = {s: Policy(v["deploy_policy"]) for s, v in stacks.items()}
    parts = {s: [Policy(d) for d in v["deploy_parts"]] for s, v in stacks.items()}
    boundary = {s: Policy(v["boundary_policy"]) for s, v in stacks.items()}

    for s, v in stacks.items():
        if v["deploy_size"] > 10240:
            problems.append(f"{s}: deploy policy is {v['deploy_size']} characters; an inline role policy holds 10,240")
        for i, size in enumerate(v["part_sizes"]):
            if size > 6144:
                problems.append(f"{s}: deploy policy part {i + 1} is {size} characters; a managed policy holds 6,144")
        statements = [st for d in v["deploy_parts"] for st in d["Statement"]]
        if statements != v["deploy_policy"]["Statement"]:
            problems.append(f"{s}: the two parts are not the whole deploy policy")
        assert v["boundary_arn"] == f"arn:aws:iam::{ACCOUNT}:policy/woocom/{v['prefix']}-boundary-{REGION}", v["boundary_arn"]
        assert v["state_prefix"] == stack_state_prefix(s), v["state_prefix"]
        # Statements on every resource: only reads, lists, conditioned
        # creates and denies.
        for st in v["deploy_policy"]["Statement"]:
            if st["Effect"] == "Allow" and "*" in as_list(st.get("Resource", [])):
                for a in as_list(st["Action"]):
                    verb = a.split(":", 1)[1]
                    if not (verb.startswith(("List", "Get", "Describe")) or "Condition" in st
                            or a in CREATES_THAT_CHANGE_NOTHING):
                        problems.append(f"{s}: {st['Sid']} allows {a} on every resource without a condition")

    def expect(who, policies, action, resource, context, want, why):
        nonlocal checked
        checked += 1
        emitted.append({"who": who, "identity": [p.document for p in policies], "boundary": None,
                        "action": action, "resource": resource, "context": context, "allowed": want, "why": why})
        got = allowed(policies, action, resource, context)
        if got != want:
            problems.append(f"{who}: {action} on {resource} {context or ''}: "
                            f"{'allowed' if got else 'refused'}, must be {'allowed' if want else 'refused'} ({why})")

    for x in names:
        own = arn_facts(stacks[x]["prefix"], x)
        for label, policies in (("deploy", [deploy[x]]), ("developer (2 managed policies)", parts[x])):
            who = f"{x} {label}"
            for y in names:
                theirs = arn_facts(stacks[y]["prefix"], y)
                for action, resource, context in OWN_ONLY:
                    expect(who, policies, action, fill(resource, theirs), fill(context, theirs), x == y,
                           "its own stack" if x == y else f"{y}'s resource")
                # Foreign creates: another stack's tag on a new resource.
                for action, resource, context in OWN_ONLY:
                    if any(k.startswith("aws:RequestTag") for k in context) and x != y:
                        expect(who, policies, action, fill(resource, own), fill(context, theirs), False,
                               f"a new resource tagged as {y}'s")
                # A mapping of x's function, but y's by tag: retagging or
                # deleting another stack's mapping is refused.
                if x != y:
                    esm = f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:0b9a6e4c-0000-4000-8000-000000000002"
                    expect(who, policies, "lambda:TagResource", esm,
                           {"aws:RequestTag/Stack": own["p"], "aws:ResourceTag/Stack": theirs["p"]}, False,
                           f"retagging {y}'s mapping as its own")
                    expect(who, policies, "lambda:UntagResource", esm, {"aws:ResourceTag/Stack": theirs["p"]}, False,
                           f"untagging {y}'s mapping")
                    expect(who, policies, "iam:CreateRole", fill("arn:aws:iam::{a}:role/{p}-products", own),
                           {"iam:PermissionsBoundary": stacks[y]["boundary_arn"]}, False,
                           f"a role with {y}'s boundary")
            for action, resource, context in EVERYONE:
                expect(who, policies, action, fill(resource, own), fill(context, own), True, "needed by every deploy")
            for action, resource, context in NOBODY:
                expect(who, policies, action, fill(resource, own), fill(context, own), False, "never granted")

    # Boundaries: every rendered function policy fits its stack's boundary,
    # and reaches no other stack's tables, queues or logs through it.
    fitted = 0
    for path in manifests:
        rendered = json.load(open(path))
        for fname, f in rendered["deploy"]["functions"].items():
            for x in names:
                values = {"${partition}": "aws", "${region}": REGION, "${account_id}": ACCOUNT,
                          "${prefix}": stacks[x]["prefix"], "${websocket_api_id}": "f6g7h8i9j0",
                          "${websocket_stage}": "api"}
                text = json.dumps(f["policy"])
                for k, v in values.items():
                    text = text.replace(k, v)
                policy = json.loads(text)
                for st in policy["Statement"]:
                    for action in as_list(st["Action"]):
                        for resource in as_list(st["Resource"]):
                            checked += 1
                            fitted += 1
                            emitted.append({"who": f"{x} role of {fname}", "identity": [policy],
                                            "boundary": stacks[x]["boundary_policy"], "action": action,
                                            "resource": resource, "context": {}, "allowed": True,
                                            "why": "a function's own policy inside its stack's boundary"})
                            if boundary[x].decide(action, resource) != "Allow":
                                problems.append(f"{x} boundary: refuses {fname}'s {action} on {resource} ({path})")
                            if resource.startswith("arn:aws:execute-api:"):
                                continue  # API ids are not stack names (see the boundary's Connections)
                            if resource == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default":
                                continue  # the account's bus, every stack's (see OwnBusesAndTheDefaultBus)
                            for y in names:
                                if y != x:
                                    checked += 1
                                    if boundary[y].decide(action, resource) == "Allow":
                                        problems.append(f"{y} boundary: lets a role reach {x}'s {resource} ({action})")
    for x in names:
        own = arn_facts(stacks[x]["prefix"], x)
        for action, resource in [
            ("iam:CreateRole", "arn:aws:iam::{a}:role/{p}-x"),
            ("iam:PassRole", "arn:aws:iam::{a}:role/{p}-x"),
            ("sts:AssumeRole", "arn:aws:iam::{a}:role/woocom-github-deploy-production-{r}"),
            ("lambda:UpdateFunctionCode", "arn:aws:lambda:{r}:{a}:function:{p}-products"),
            ("s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/{{state}}terraform.tfstate"),
            ("dynamodb:DeleteTable", "arn:aws:dynamodb:{r}:{a}:table/woocom-production-orders"),
        ]:
            if x == "production" and "woocom-production-orders" in resource:
                continue
            checked += 1
            if boundary[x].decide(action, fill(resource, own)) == "Allow":
                problems.append(f"{x} boundary: allows {action} on {fill(resource, own)}")

    for action, resource, context, why in KNOWN_OPEN:
        facts = arn_facts(stacks["production"]["prefix"], "production")
        if allowed([deploy["staging"]], action, fill(resource, facts), context):
            print(f"check-policies: known open: staging may {action} on {fill(resource, facts)}: {why}")

    sizes = ", ".join(f"{s} {v['deploy_size']} ({'+'.join(map(str, v['part_sizes']))})" for s, v in sorted(stacks.items()))
    print(f"check-policies: policy sizes in characters: {sizes}")
    print(f"check-policies: {checked} decisions checked for stacks {', '.join(names)}: "
          f"own resources allowed, other stacks' refused, {len(EVERYONE)} shared reads, "
          f"{len(NOBODY)} never-granted actions, {fitted} function permissions inside their boundary "
          f"({len(manifests)} manifest(s))")
    if emit:
        json.dump(emitted, open(emit, "w"))
    for p in problems:
        print(f"check-policies: FAILED: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

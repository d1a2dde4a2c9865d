#!/usr/bin/env bash
# SNS with clients nobody here wrote: the AWS CLI and boto3 against
# `woocom-dev up` (tests/fixtures/sns.toml): topics from dev.toml, publish
# with attributes through a filter policy to queues, an SQS subscription
# made through the API, PublishBatch, SNS's error codes, and
# `woocom-dev topics`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${WOOCOM_DEV:-$here/../../../target/debug/woocom-dev}
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/sns.toml" up --free-ports --no-frontend --data "$work/data" --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
aws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aws"])' "$work/ready.json")

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
fail() { echo "FAIL: $*"; exit 1; }
sns() { aws --endpoint-url "$aws_url" sns "$@"; }
sqs() { aws --endpoint-url "$aws_url" sqs "$@"; }
topic=arn:aws:sns:us-east-1:000000000000:orders

sns list-topics --query 'Topics[].TopicArn' --output text | grep -q "$topic" || fail "list-topics"
sns publish --topic-arn "$topic" --message '{"orderId":"o-1"}' \
    --message-attributes '{"type":{"DataType":"String","StringValue":"OrderPlaced"},"total":{"DataType":"Number","StringValue":"150"}}' \
    --query MessageId --output text >"$work/id.txt" || fail "publish"
raw_url="$aws_url/000000000000/raw"
sqs receive-message --queue-url "$raw_url" --message-attribute-names All --wait-time-seconds 2 >"$work/got.json" || fail "receive"
python3 - "$work/got.json" <<'PY' || fail "raw delivery"
import json, sys
[m] = json.load(open(sys.argv[1]))["Messages"]
assert m["Body"] == '{"orderId":"o-1"}', m
assert m["MessageAttributes"]["type"]["StringValue"] == "OrderPlaced", m
PY

if sns publish --topic-arn arn:aws:sns:us-east-1:000000000000:nope --message m 2>"$work/err.txt"; then fail "published to a missing topic"; fi
grep -q "NotFound" "$work/err.txt" || { cat "$work/err.txt"; fail "NotFound"; }

"$here/../../../.woocom/venv/bin/python" - "$aws_url" <<'PY' || fail "boto3"
import json, sys
import boto3
from botocore.exceptions import ClientError
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
sns = boto3.client("sns", **kw)
sqs = boto3.client("sqs", **kw)
arn = sns.create_topic(Name="smoke", Attributes={"DisplayName": "Smoke"})["TopicArn"]
assert arn == "arn:aws:sns:us-east-1:000000000000:smoke", arn
q = sqs.create_queue(QueueName="smoke-inbox")["QueueUrl"]
qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn,
                    Attributes={"FilterPolicyScope": "MessageBody",
                                "FilterPolicy": json.dumps({"kind": [{"prefix": "order"}]})},
                    ReturnSubscriptionArn=True)["SubscriptionArn"]
assert sub.startswith(arn + ":"), sub
res = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
    {"Id": "a", "Message": json.dumps({"kind": "order-placed"})},
    {"Id": "b", "Message": json.dumps({"kind": "stock-low"})},
])
assert sorted(e["Id"] for e in res["Successful"]) == ["a", "b"], res
got = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
assert len(got) == 1, got
envelope = json.loads(got[0]["Body"])
assert envelope["Type"] == "Notification" and json.loads(envelope["Message"])["kind"] == "order-placed", envelope
attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
assert attrs["FilterPolicyScope"] == "MessageBody", attrs
try:
    sns.publish(TopicArn=arn, Message="")
    raise SystemExit("an empty message was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameter", e.response
try:
    sns.get_subscription_attributes(SubscriptionArn=arn + ":00000000-0000-0000-0000-000000000000")
    raise SystemExit("a missing subscription was found")
except ClientError as e:
    assert e.response["Error"]["Code"] == "NotFound", e.response
sns.unsubscribe(SubscriptionArn=sub)
assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
print("boto3 ok")
PY

# woocom-dev topics: the same stack seen from the CLI.
"$bin" topics --ready-file "$work/ready.json" >"$work/topics.txt" || fail "topics"
grep -q "^orders: 3 subscription(s)" "$work/topics.txt" || { cat "$work/topics.txt"; fail "topics output"; }
grep -q "  -> sqs raw  (raw; filter on MessageAttributes" "$work/topics.txt" || { cat "$work/topics.txt"; fail "topics subscription line"; }
grep -q "  -> lambda listener" "$work/topics.txt" || { cat "$work/topics.txt"; fail "topics lambda line"; }
echo "sns-awscli: ok"

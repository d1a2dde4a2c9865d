#!/usr/bin/env bash
# EventBridge with clients nobody here wrote: the AWS CLI and boto3 against
# `woocom-dev up` (tests/fixtures/eventbridge.toml): put-events through a
# rule to a queue, the per-entry errors, rules and targets made through
# the API, test-event-pattern, and `woocom-dev events` (list, put, tail,
# test-pattern, fire).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${WOOCOM_DEV:-$here/../../../target/debug/woocom-dev}
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; [ -n "${tail_pid:-}" ] && kill "$tail_pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/eventbridge.toml" up --free-ports --no-frontend --data "$work/data" --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
aws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aws"])' "$work/ready.json")

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
fail() { echo "FAIL: $*"; exit 1; }
events() { aws --endpoint-url "$aws_url" events "$@"; }
sqs() { aws --endpoint-url "$aws_url" sqs "$@"; }

# woocom-dev events tail, in the background, sees what follows.
"$bin" events --ready-file "$work/ready.json" tail --bus shop >"$work/tail.txt" 2>/dev/null &
tail_pid=$!

events list-event-buses --query 'EventBuses[].Name' --output text | grep -q shop || fail "list-event-buses"
events put-events --entries '[{"EventBusName":"shop","Source":"woocom.orders","DetailType":"OrderPlaced","Detail":"{\"orderId\":\"o-1\",\"total\":150}"}]' \
    --query 'Entries[0].EventId' --output text >"$work/id.txt" || fail "put-events"
sqs receive-message --queue-url "$aws_url/000000000000/orders" --wait-time-seconds 5 >"$work/got.json" || fail "receive"
python3 - "$work/got.json" "$(cat "$work/id.txt")" <<'PY' || fail "delivery to the queue"
import json, sys
[m] = json.load(open(sys.argv[1]))["Messages"]
event = json.loads(m["Body"])
assert event["id"] == sys.argv[2], event
assert event["detail"] == {"orderId": "o-1", "total": 150}, event
PY
events put-events --entries '[{"Source":"s","DetailType":"t","Detail":"not json"}]' >"$work/bad.json"
grep -q '"MalformedDetail"' "$work/bad.json" || { cat "$work/bad.json"; fail "MalformedDetail"; }

"$here/../../../.woocom/venv/bin/python" - "$aws_url" <<'PY' || fail "boto3"
import json, sys
import boto3
from botocore.exceptions import ClientError
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
events = boto3.client("events", **kw)
sqs = boto3.client("sqs", **kw)
q = sqs.create_queue(QueueName="smoke-events")["QueueUrl"]
qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
arn = events.put_rule(Name="smoke", EventPattern=json.dumps({"source": [{"prefix": "smoke."}]}))["RuleArn"]
assert arn == "arn:aws:events:us-east-1:000000000000:rule/smoke", arn
res = events.put_targets(Rule="smoke", Targets=[{
    "Id": "q", "Arn": qarn,
    "InputTransformer": {"InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '{"n": <n>}'}}])
assert res["FailedEntryCount"] == 0, res
out = events.put_events(Entries=[{"Source": "smoke.test", "DetailType": "t", "Detail": json.dumps({"n": 7})}])
assert out["FailedEntryCount"] == 0, out
got = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=5).get("Messages", [])
assert len(got) == 1 and json.loads(got[0]["Body"]) == {"n": 7}, got
assert events.test_event_pattern(
    EventPattern=json.dumps({"detail": {"n": [{"numeric": [">", 5]}]}}),
    Event=json.dumps({"id": "1", "account": "000000000000", "source": "s", "time": "2026-12-05T00:00:00Z",
                      "region": "us-east-1", "resources": [], "detail-type": "t", "detail": {"n": 7}}))["Result"] is True
try:
    events.describe_rule(Name="nope")
    raise SystemExit("a missing rule was found")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ResourceNotFoundException", e.response
try:
    events.delete_rule(Name="smoke")
    raise SystemExit("a rule with targets was deleted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response
events.remove_targets(Rule="smoke", Ids=["q"])
events.delete_rule(Name="smoke")
print("boto3 ok")
PY

# woocom-dev events: list, put, test-pattern, fire.
"$bin" events --ready-file "$work/ready.json" list >"$work/list.txt" || fail "events list"
grep -q "^large-orders (bus shop): " "$work/list.txt" || { cat "$work/list.txt"; fail "events list: rule line"; }
grep -q "  -> orders arn:aws:sqs:us-east-1:000000000000:orders  (dead letters -> events-dlq)" "$work/list.txt" || { cat "$work/list.txt"; fail "events list: target line"; }
echo '{"Source":"woocom.orders","DetailType":"OrderPlaced","Detail":{"orderId":"o-2","total":200}}' \
    | "$bin" events --ready-file "$work/ready.json" put --bus shop - >"$work/put.txt" || fail "events put"
grep -q "^put " "$work/put.txt" || { cat "$work/put.txt"; fail "events put output"; }
echo '{"id":"1","account":"0","source":"s","time":"t","region":"r","resources":[],"detail-type":"t","detail":{"n":1}}' >"$work/event.json"
"$bin" events test-pattern '{"source":["s"]}' "$work/event.json" | grep -q "^match" || fail "test-pattern match"
if "$bin" events test-pattern '{"source":["x"]}' "$work/event.json" >/dev/null; then fail "test-pattern no match"; fi
"$bin" events --ready-file "$work/ready.json" fire tick | grep -q "^fired tick" || fail "events fire"
for _ in $(seq 1 50); do grep -q "o-2" "$work/tail.txt" && break; sleep 0.1; done
grep -q "woocom.orders / OrderPlaced .* -> large-orders" "$work/tail.txt" || { cat "$work/tail.txt"; fail "events tail"; }
echo "eventbridge-awscli: ok"

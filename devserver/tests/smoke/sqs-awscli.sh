#!/usr/bin/env bash
# SQS with clients nobody here wrote: the AWS CLI (which checks the MD5
# digests of what it sends and receives) and boto3 against `woocom-dev up`:
# queues from dev.toml, send with attributes, receive, delete, errors,
# long polling, and a dead-letter queue's redrive.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${WOOCOM_DEV:-$here/../../../target/debug/woocom-dev}
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/sqs.toml" up --free-ports --no-frontend --data "$work/data" --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
aws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aws"])' "$work/ready.json")

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
fail() { echo "FAIL: $*"; exit 1; }
sqs() { aws --endpoint-url "$aws_url" sqs "$@"; }

url=$(sqs get-queue-url --queue-name orders --query QueueUrl --output text)
[ "$url" = "$aws_url/000000000000/orders" ] || fail "queue URL $url"
sqs send-message --queue-url "$url" --message-body '{"order":"o-1"}' \
    --message-attributes '{"kind":{"DataType":"String","StringValue":"order"},"n":{"DataType":"Number","StringValue":"7"},"raw":{"DataType":"Binary","BinaryValue":"AAEC"}}' \
    >"$work/sent.json" || fail "send-message (the CLI checks MD5OfMessageBody and MD5OfMessageAttributes)"
sqs receive-message --queue-url "$url" --message-attribute-names All --attribute-names All \
    --max-number-of-messages 10 >"$work/got.json" || fail "receive-message (digests checked)"
python3 - "$work/got.json" <<'PY' || fail "receive-message answer"
import json, sys
got = json.load(open(sys.argv[1]))
[m] = got["Messages"]
assert m["Body"] == '{"order":"o-1"}', m
assert m["MessageAttributes"]["kind"]["StringValue"] == "order", m
assert m["Attributes"]["ApproximateReceiveCount"] == "1", m
PY
receipt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Messages"][0]["ReceiptHandle"])' "$work/got.json")
sqs delete-message --queue-url "$url" --receipt-handle "$receipt" || fail "delete-message"

if sqs get-queue-url --queue-name nope 2>"$work/err.txt"; then fail "a missing queue was found"; fi
grep -q "AWS.SimpleQueueService.NonExistentQueue" "$work/err.txt" || { cat "$work/err.txt"; fail "error code"; }

"$here/../../../.woocom/venv/bin/python" - "$aws_url" <<'PY' || fail "boto3"
import sys, threading, time
import boto3
from botocore.exceptions import ClientError
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
q = sqs.create_queue(QueueName="smoke", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
# A long poll woken by a send from another thread.
threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=q, MessageBody="late")).start()
t = time.monotonic()
got = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=10)
assert got["Messages"][0]["Body"] == "late", got
assert time.monotonic() - t < 5, "the long poll waited for its timer"
# Batches with per-entry results.
res = sqs.send_message_batch(QueueUrl=q, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2"}])
assert sorted(e["Id"] for e in res["Successful"]) == ["a", "b"], res
# FIFO with content-based deduplication.
f = sqs.get_queue_url(QueueName="payments.fifo")["QueueUrl"]
a = sqs.send_message(QueueUrl=f, MessageBody="pay", MessageGroupId="g")
b = sqs.send_message(QueueUrl=f, MessageBody="pay", MessageGroupId="g")
assert a["MessageId"] == b["MessageId"], (a, b)
try:
    sqs.send_message(QueueUrl=f, MessageBody="x")
    raise SystemExit("a FIFO send without a group was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "MissingParameter", e.response
try:
    sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=11)
    raise SystemExit("MaxNumberOfMessages 11 was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameterValue", e.response
print("boto3 ok")
PY
# woocom-dev queues: the same stack seen from the CLI.
"$bin" queues --ready-file "$work/ready.json" list >"$work/list.txt" || fail "queues list"
grep -q "^orders: 0 visible, 0 in flight, 0 delayed  -> orders-dlq after 2 receives" "$work/list.txt" || { cat "$work/list.txt"; fail "queues list output"; }
grep -q "^smoke: 2 visible, 1 in flight" "$work/list.txt" || { cat "$work/list.txt"; fail "queues list counts"; }
"$bin" queues --ready-file "$work/ready.json" peek smoke -n 10 >"$work/peek.txt" || fail "queues peek"
grep -q "received 0 time(s)" "$work/peek.txt" || { cat "$work/peek.txt"; fail "queues peek output"; }
"$bin" queues --ready-file "$work/ready.json" purge smoke >/dev/null || fail "queues purge"
"$bin" queues --ready-file "$work/ready.json" list | grep -q "^smoke: 0 visible" || fail "purged"
echo "sqs-awscli: ok"

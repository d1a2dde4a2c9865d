#!/usr/bin/env bash
# DynamoDB and DynamoDB Streams with clients nobody here wrote: the AWS CLI
# and boto3 against `woocom-dev up`. Tables come from dev.toml; data lives in
# a throwaway project folder.
set -euo pipefail
for tool in aws python3; do
    command -v "$tool" >/dev/null || { echo "dynamodb-awscli: SKIP ($tool not found)"; exit 0; }
done
python3 -c 'import boto3' 2>/dev/null || { echo "dynamodb-awscli: SKIP (boto3 not installed)"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
bin=${WOOCOM_DEV:-$here/../../../target/debug/woocom-dev}
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/up.log" ] && tail -20 "$work/up.log"; exit 1; }

cp "$here/../fixtures/dynamodb.toml" "$work/dev.toml"
WOOCOM_LOG=warn "$bin" -m "$work/dev.toml" up --free-ports --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || fail "no ready file within 120 s"
python3 - "$work/ready.json" <<'PY' || fail "ready file keys"
import json, sys
ready = json.load(open(sys.argv[1]))
for key in ("aws", "api", "websocket", "health"):
    assert key in ready, key
PY
aws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aws"])' "$work/ready.json")

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
export AWS_MAX_ATTEMPTS=1
ddb() { timeout 60 aws --endpoint-url "$aws_url" dynamodb "$@"; }
streams() { timeout 60 aws --endpoint-url "$aws_url" dynamodbstreams "$@"; }

# Tables from dev.toml exist.
ddb list-tables >"$work/tables.json" || fail "list-tables"
grep -q '"orders"' "$work/tables.json" && grep -q '"products"' "$work/tables.json" || fail "tables from dev.toml"

# Put, get, conditional put.
ddb put-item --table-name products --item '{"sku":{"S":"tea"},"stock":{"N":"3"}}' || fail "put-item"
ddb get-item --table-name products --key '{"sku":{"S":"tea"}}' >"$work/get.json" || fail "get-item"
grep -q '"N": "3"' "$work/get.json" || fail "get-item value"
if ddb put-item --table-name products --item '{"sku":{"S":"tea"}}' \
    --condition-expression 'attribute_not_exists(sku)' 2>"$work/err.txt"; then
    fail "conditional put succeeded"
fi
grep -q ConditionalCheckFailedException "$work/err.txt" || fail "no ConditionalCheckFailedException: $(cat "$work/err.txt")"

# A transaction that cannot apply is cancelled with reasons.
cat >"$work/tx.json" <<'JSON'
[
  {"Put": {"TableName": "orders", "Item": {"pk": {"S": "o1"}, "sk": {"S": "meta"}}}},
  {"Update": {"TableName": "products", "Key": {"sku": {"S": "tea"}},
              "UpdateExpression": "SET stock = stock - :q", "ConditionExpression": "stock >= :q",
              "ExpressionAttributeValues": {":q": {"N": "5"}}}}
]
JSON
if ddb transact-write-items --transact-items "file://$work/tx.json" 2>"$work/err.txt"; then
    fail "transaction succeeded"
fi
grep -q TransactionCanceledException "$work/err.txt" || fail "no TransactionCanceledException: $(cat "$work/err.txt")"
grep -q ConditionalCheckFailed "$work/err.txt" || fail "no cancellation reason"

# Streams: the stream of products holds the put, DescribeStream is AWS-shaped.
arn=$(streams list-streams --table-name products --query 'Streams[0].StreamArn' --output text) || fail "list-streams"
streams describe-stream --stream-arn "$arn" >"$work/stream.json" || fail "describe-stream"
python3 - "$work/stream.json" <<'PY' || fail "describe-stream shape"
import json, sys
d = json.load(open(sys.argv[1]))["StreamDescription"]
shard = d["Shards"][0]
assert shard["SequenceNumberRange"]["StartingSequenceNumber"], shard
assert d["StreamViewType"] == "NEW_IMAGE", d
PY
shard=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["StreamDescription"]["Shards"][0]["ShardId"])' "$work/stream.json")
it=$(streams get-shard-iterator --stream-arn "$arn" --shard-id "$shard" --shard-iterator-type TRIM_HORIZON \
    --query ShardIterator --output text) || fail "get-shard-iterator"
streams get-records --shard-iterator "$it" >"$work/records.json" || fail "get-records"
python3 - "$work/records.json" <<'PY' || fail "stream records"
import json, sys
records = json.load(open(sys.argv[1]))["Records"]
assert records and records[0]["eventName"] == "INSERT", records
assert records[0]["dynamodb"]["NewImage"]["sku"] == {"S": "tea"}, records[0]
PY
if streams list-streams --limit 0 2>"$work/err.txt"; then fail "ListStreams Limit 0 accepted"; fi
grep -q ValidationException "$work/err.txt" || grep -q "Invalid value for parameter" "$work/err.txt" || fail "Limit 0: $(cat "$work/err.txt")"

# boto3: batch writes, paginated query on a GSI, the nesting guard, faults.
python3 - "$aws_url" "$bin" "$work/dev.toml" "$work/ready.json" <<'PY' || fail "boto3"
import subprocess, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

url, woocom, manifest, ready = sys.argv[1:5]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30)
ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", config=cfg)
table = boto3.resource("dynamodb", endpoint_url=url, region_name="us-east-1", config=cfg).Table("orders")

with table.batch_writer() as batch:
    for i in range(40):
        batch.put_item(Item={"pk": "c9", "sk": f"o{i:03}", "customer": "c9", "placed_at": i})
pages = ddb.get_paginator("query").paginate(
    TableName="orders", IndexName="by_customer",
    KeyConditionExpression="customer = :c", ExpressionAttributeValues={":c": {"S": "c9"}},
    PaginationConfig={"PageSize": 15})
counts = [p["Count"] for p in pages]
assert sum(counts) == 40 and len(counts) >= 3, counts

doc = {"S": "leaf"}
for _ in range(40):
    doc = {"M": {"a": doc}}
try:
    ddb.put_item(TableName="products", Item={"sku": {"S": "deep"}, "doc": doc})
    raise SystemExit("deep item accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response
    assert "Nesting Levels" in e.response["Error"]["Message"], e.response

subprocess.run([woocom, "-m", manifest, "faults", "--ready-file", ready, "set", "products",
                "--rate", "1", "--error", "ProvisionedThroughputExceededException"],
               check=True, timeout=30, stdout=subprocess.DEVNULL)
try:
    ddb.get_item(TableName="products", Key={"sku": {"S": "tea"}})
    raise SystemExit("fault not injected")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
subprocess.run([woocom, "-m", manifest, "faults", "--ready-file", ready, "clear"],
               check=True, timeout=30, stdout=subprocess.DEVNULL)
assert ddb.get_item(TableName="products", Key={"sku": {"S": "tea"}})["Item"]["stock"] == {"N": "3"}
PY

# boto3, issue #18: ARNs with the stack's region and an ISO-8601 label, a new
# stream per enabling with old records on the old ARN only, no record for a
# write that changes nothing, continuous backups, unsigned requests refused.
python3 - "$aws_url" <<'PY' || fail "boto3 (issue #18)"
import re, sys
import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

url = sys.argv[1]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30)
ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", config=cfg)
streams = boto3.client("dynamodbstreams", endpoint_url=url, region_name="us-east-1", config=cfg)

arn_shape = r"arn:aws:dynamodb:us-east-1:000000000000:table/%s/stream/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
table = ddb.describe_table(TableName="orders")["Table"]
assert table["TableArn"] == "arn:aws:dynamodb:us-east-1:000000000000:table/orders", table["TableArn"]
assert re.fullmatch(arn_shape % "orders", table["LatestStreamArn"]), table["LatestStreamArn"]

def records(arn):
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = []
    while it:
        page = streams.get_records(ShardIterator=it)
        out += page["Records"]
        it = page.get("NextShardIterator") if page["Records"] else None
    return out

ddb.create_table(TableName="cycled", BillingMode="PAY_PER_REQUEST",
                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                 StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
ddb.put_item(TableName="cycled", Item={"id": {"S": "first"}, "v": {"N": "1"}})
ddb.put_item(TableName="cycled", Item={"id": {"S": "first"}, "v": {"N": "1"}})
old = ddb.describe_table(TableName="cycled")["Table"]["LatestStreamArn"]
assert re.fullmatch(arn_shape % "cycled", old), old
try:
    ddb.update_table(TableName="cycled", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    raise SystemExit("a second enabling was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response
ddb.update_table(TableName="cycled", StreamSpecification={"StreamEnabled": False})
ddb.update_table(TableName="cycled", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
ddb.put_item(TableName="cycled", Item={"id": {"S": "second"}, "v": {"N": "2"}})
new = ddb.describe_table(TableName="cycled")["Table"]["LatestStreamArn"]
assert new != old
got_old = [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records(old)]
assert got_old == [("INSERT", "first")], got_old
got_new = records(new)
assert [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in got_new] == [("INSERT", "second")], got_new
assert got_new[0]["dynamodb"]["StreamViewType"] == "NEW_IMAGE" and "NewImage" in got_new[0]["dynamodb"]
assert streams.describe_stream(StreamArn=old)["StreamDescription"]["StreamStatus"] == "DISABLED"

backups = ddb.describe_continuous_backups(TableName="orders")["ContinuousBackupsDescription"]
assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED", backups
ddb.update_continuous_backups(TableName="orders",
                              PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
backups = ddb.describe_continuous_backups(TableName="orders")["ContinuousBackupsDescription"]
assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", backups

unsigned = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                        config=cfg.merge(Config(signature_version=UNSIGNED)))
try:
    unsigned.list_tables()
    raise SystemExit("an unsigned request was served")
except ClientError as e:
    assert e.response["Error"]["Code"] == "MissingAuthenticationTokenException", e.response
PY

# Clean shutdown on SIGTERM, bounded.
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "still running 10 s after SIGTERM"; fi
wait "$pid" || fail "woocom-dev up exited with an error"
pid=

# The data outlived the server; the CLI reads it.
timeout 30 "$bin" -m "$work/dev.toml" tables >"$work/tables.txt" || fail "woocom-dev tables"
grep -E '^orders +4[01] ' "$work/tables.txt" >/dev/null || { cat "$work/tables.txt"; fail "tables item count"; }
echo "dynamodb-awscli: ok"

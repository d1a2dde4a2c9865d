#!/usr/bin/env bash
# The Lambda Invoke API with the AWS CLI, a client nobody here wrote:
# RequestResponse with a Tail log, a function error, and an unknown function.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${WOOCOM_DEV:-$here/../../../target/debug/woocom-dev}
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/probe.toml" up --free-ports --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
aws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["aws"])' "$work/ready.json")

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
fail() { echo "FAIL: $*"; exit 1; }

aws --endpoint-url "$aws_url" lambda invoke --function-name probe \
--payload '{"probe":"echo","from":"awscli"}' \
    --log-type Tail "$work/out.json" >"$work/meta.json"
python3 - "$work/out.json" "$work/meta.json" <<'PY' || fail "RequestResponse"
import base64, json, sys
out = json.load(open(sys.argv[1]))
meta = json.load(open(sys.argv[2]))
assert out["event"]["from"] == "awscli", out
assert meta["StatusCode"] == 200, meta
assert meta["ExecutedVersion"] == "$LATEST", meta
assert "FunctionError" not in meta, meta
log = base64.b64decode(meta["LogResult"]).decode()
assert log.startswith("START RequestId: ") and "REPORT RequestId: " in log, log
PY

aws --endpoint-url "$aws_url" lambda invoke --function-name probe \
--payload '{"probe":"error"}' \
    "$work/err.json" >"$work/meta.json"
python3 - "$work/err.json" "$work/meta.json" <<'PY' || fail "function error"
import json, sys
err = json.load(open(sys.argv[1]))
meta = json.load(open(sys.argv[2]))
assert meta["FunctionError"] == "Unhandled", meta
assert err["errorMessage"] == "probe failed on purpose", err
PY

if aws --endpoint-url "$aws_url" lambda invoke --function-name nope "$work/x.json" 2>"$work/stderr.txt"; then
    fail "unknown function succeeded"
fi
grep -q "ResourceNotFoundException" "$work/stderr.txt" || { cat "$work/stderr.txt"; fail "no ResourceNotFoundException"; }
echo "lambda-awscli: ok"

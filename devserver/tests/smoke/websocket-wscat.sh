#!/usr/bin/env bash
# The WebSocket API with wscat (npm), a client nobody here wrote: a query
# string reaching $connect, a custom route answering two-way, $connect
# refusing the handshake, and — with the AWS CLI when it is installed —
# `aws apigatewaymanagementapi` pushing to the wscat connection, describing
# it, and 410 GoneException once it is closed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${WOOCOM_DEV:-$root/target/debug/woocom-dev}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# wscat into a project-local folder, once.
node_dir="$root/.woocom/node"
wscat="$node_dir/node_modules/.bin/wscat"
if [ ! -x "$wscat" ]; then
    command -v npm >/dev/null || fail "npm is needed to install wscat"
    echo "installing wscat into .woocom/node (first run only)" >&2
    npm install --prefix "$node_dir" --no-audit --no-fund --silent wscat >/dev/null
fi

# The AWS CLI (scripts/test installs it into .woocom/venv); optional here.
aws=$(command -v aws || true)
[ -z "$aws" ] && [ -x "$root/.woocom/venv/bin/aws" ] && aws="$root/.woocom/venv/bin/aws"

WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/websocket.toml" up --free-ports --ready-file "$work/ready.json" \
    >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
[ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
ws_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["websocket"])' "$work/ready.json")
endpoint=${ws_url/ws:\/\//http://}

# wscat quits when its stdin ends, so each run gets a stdin that stays open
# a little longer than its `-w` wait.
# A custom route, two-way: the probe answers with the event it got.
sleep 5 | "$wscat" --no-color -c "$ws_url?token=smoke" -H "X-Client: wscat" \
    -x '{"action":"echo","from":"wscat"}' -w 2 >"$work/echo.txt" 2>"$work/echo.err" \
    || { cat "$work/echo.err"; fail "wscat could not connect"; }
python3 - "$work/echo.txt" <<'PY' || fail "echo route"
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip().startswith("{")]
assert lines, "no message received"
event = json.loads(lines[0].lstrip("< "))
ctx = event["requestContext"]
assert ctx["routeKey"] == "echo", ctx
assert ctx["eventType"] == "MESSAGE", ctx
assert json.loads(event["body"]) == {"action": "echo", "from": "wscat"}, event
assert len(ctx["connectionId"]) == 16, ctx
PY

# $connect refusing: the handshake fails with the function's status.
if sleep 3 | "$wscat" --no-color -c "$ws_url?reject=401" -x '{}' -w 1 >"$work/reject.txt" 2>&1; then
    fail "a refused connection was accepted"
fi
grep -q "Unexpected server response: 401" "$work/reject.txt" || { cat "$work/reject.txt"; fail "no 401"; }

if [ -z "$aws" ]; then
    echo "websocket-wscat: ok (AWS CLI not installed: @connections part skipped)"
    exit 0
fi
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""

# A connection held open by wscat; the AWS CLI pushes to it.
sleep 8 | "$wscat" --no-color -c "$ws_url" -x '{"action":"echo"}' -w 5 >"$work/held.txt" 2>&1 &
held=$!
id=
for _ in $(seq 1 100); do
    id=$(python3 - "$work/held.txt" <<'PY' 2>/dev/null || true
import json, sys
for l in open(sys.argv[1]).read().splitlines():
    l = l.lstrip("< ").strip()
    if l.startswith("{"):
        print(json.loads(l)["requestContext"]["connectionId"]); break
PY
)
    [ -n "$id" ] && break
    sleep 0.1
done
[ -n "$id" ] || { cat "$work/held.txt"; fail "no connection id from wscat"; }
"$aws" --endpoint-url "$endpoint" apigatewaymanagementapi post-to-connection \
    --connection-id "$id" --data '{"pushed":"by the AWS CLI"}' || fail "post-to-connection"
"$aws" --endpoint-url "$endpoint" apigatewaymanagementapi get-connection \
    --connection-id "$id" >"$work/info.json" || fail "get-connection"
python3 - "$work/info.json" <<'PY' || fail "get-connection answer"
import json, sys
info = json.load(open(sys.argv[1]))
assert info["Identity"]["SourceIp"] == "127.0.0.1", info
assert "ConnectedAt" in info and "LastActiveAt" in info, info
PY
wait "$held" || true
grep -q '{"pushed":"by the AWS CLI"}' "$work/held.txt" || { cat "$work/held.txt"; fail "push not received"; }

# wscat has gone: 410 GoneException.
for _ in $(seq 1 50); do
    if ! "$aws" --endpoint-url "$endpoint" apigatewaymanagementapi get-connection \
        --connection-id "$id" >/dev/null 2>"$work/gone.txt"; then
        break
    fi
    sleep 0.1
done
grep -q "GoneException" "$work/gone.txt" || { cat "$work/gone.txt"; fail "no GoneException after close"; }
echo "websocket-wscat: ok"

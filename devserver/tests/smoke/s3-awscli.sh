#!/usr/bin/env bash
# S3 with clients nobody here wrote: the AWS CLI's `s3` (sync, cp with
# multipart, ls) and `s3api` commands, and boto3 (presigned GET/PUT, a
# presigned POST from generate_presigned_post with its policy enforced,
# S3's error codes) against `woocom-dev up`; then `woocom-dev buckets`
# and a restart that keeps what was written.
#
# Needs the AWS CLI and the project's Python venv (.woocom/venv with
# boto3); without them it says SKIPPED and exits 0, naming what did not run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../../..
bin=${WOOCOM_DEV:-$root/target/debug/woocom-dev}
python=$root/.woocom/venv/bin/python
aws=$root/.woocom/venv/bin/aws
[ -x "$aws" ] || aws=$(command -v aws || true)
if [ -z "$aws" ] || [ ! -x "$python" ] || ! "$python" -c 'import boto3' 2>/dev/null; then
    echo "s3-awscli: SKIPPED: needs the AWS CLI and boto3 in .woocom/venv; the S3 CLI and boto3 checks did not run" >&2
    exit 0
fi
work=$(mktemp -d)
pid=
stop() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=; }
trap 'stop; rm -rf "$work"' EXIT

start() {
    rm -f "$work/ready.json"
    WOOCOM_LOG=warn "$bin" -m "$here/../fixtures/s3.toml" up --free-ports --no-frontend --data "$work/data" \
        --ready-file "$work/ready.json" >"$work/up.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do [ -s "$work/ready.json" ] && break; sleep 0.2; done
    [ -s "$work/ready.json" ] || { echo "no ready file"; cat "$work/up.log"; exit 1; }
    s3_url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["s3"])' "$work/ready.json")
}
start

# Any access key; the local endpoint's secret (what functions get).
export AWS_ACCESS_KEY_ID=AKIASMOKETEST AWS_SECRET_ACCESS_KEY=woocom-local-secret AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
fail() { echo "FAIL: $*"; exit 1; }
s3() { "$aws" --endpoint-url "$s3_url" s3 "$@"; }
s3api() { "$aws" --endpoint-url "$s3_url" s3api "$@"; }

s3 mb s3://smoke-bucket >/dev/null || fail "s3 mb"
mkdir -p "$work/site/img"
echo "<h1>hello</h1>" >"$work/site/index.html"
printf 'png' >"$work/site/img/logo.png"
s3 sync "$work/site" s3://smoke-bucket/site >/dev/null || fail "s3 sync"
s3 ls s3://smoke-bucket/site/ >"$work/ls.txt" || fail "s3 ls"
grep -q "PRE img/" "$work/ls.txt" || { cat "$work/ls.txt"; fail "s3 ls shows the img/ prefix"; }
grep -q "index.html" "$work/ls.txt" || { cat "$work/ls.txt"; fail "s3 ls shows index.html"; }
# 20 MiB: the CLI uploads it in 8 MiB parts (multipart) and checks the result.
head -c $((20 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
s3 cp "$work/big.bin" s3://smoke-bucket/big.bin >/dev/null || fail "s3 cp (multipart)"
s3 cp s3://smoke-bucket/big.bin "$work/back.bin" >/dev/null || fail "s3 cp back"
cmp -s "$work/big.bin" "$work/back.bin" || fail "the multipart object came back different"
etag=$(s3api head-object --bucket smoke-bucket --key big.bin --query ETag --output text)
case "$etag" in *-3\"|*-3) ;; *) fail "a 3-part upload's ETag ends in -3, got $etag" ;; esac
s3api head-object --bucket smoke-bucket --key site/index.html --query ContentType --output text | grep -q "text/html" \
    || fail "s3 sync sets the content type"
s3api put-object --bucket smoke-bucket --key meta.txt --body "$work/site/index.html" --metadata owner=smoke >/dev/null \
    || fail "s3api put-object"
s3api get-object --bucket smoke-bucket --key meta.txt "$work/meta.out" >"$work/meta.json" || fail "s3api get-object"
grep -q '"owner": "smoke"' "$work/meta.json" || { cat "$work/meta.json"; fail "user metadata"; }
if s3api get-object --bucket smoke-bucket --key missing "$work/x" 2>"$work/err.txt"; then fail "a missing key was found"; fi
grep -q "NoSuchKey" "$work/err.txt" || { cat "$work/err.txt"; fail "NoSuchKey"; }
if s3 rb s3://smoke-bucket 2>"$work/err.txt"; then fail "a bucket with objects was removed"; fi
grep -q "BucketNotEmpty" "$work/err.txt" || { cat "$work/err.txt"; fail "BucketNotEmpty"; }

"$python" - "$s3_url" <<'PY' || fail "boto3"
import sys, time, urllib.request, urllib.error, uuid
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
url = sys.argv[1]
# SigV4 for presigned URLs (boto3's generate_presigned_url still signs
# with SigV2 unless told; S3 regions opened since 2014 accept only V4).
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  aws_access_key_id="AKIABOTO", aws_secret_access_key="woocom-local-secret",
                  config=Config(signature_version="s3v4"))
s3.create_bucket(Bucket="boto-bucket")
s3.put_object(Bucket="boto-bucket", Key="a b/c.txt", Body=b"hello", ContentType="text/plain")
got = s3.get_object(Bucket="boto-bucket", Key="a b/c.txt", Range="bytes=1-3")
assert got["Body"].read() == b"ell" and got["ContentRange"] == "bytes 1-3/5", got
listed = s3.list_objects_v2(Bucket="boto-bucket", Prefix="a b/")
assert [o["Key"] for o in listed["Contents"]] == ["a b/c.txt"], listed
try:
    s3.head_bucket(Bucket="no-such-bucket")
    raise SystemExit("a missing bucket answered")
except ClientError as e:
    assert e.response["Error"]["Code"] == "404", e.response

# Presigned GET and PUT, used with a plain HTTP client.
get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "a b/c.txt"}, ExpiresIn=60)
assert urllib.request.urlopen(get_url).read() == b"hello"
put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "boto-bucket", "Key": "put.txt"}, ExpiresIn=60)
urllib.request.urlopen(urllib.request.Request(put_url, data=b"via presigned put", method="PUT"))
assert s3.get_object(Bucket="boto-bucket", Key="put.txt")["Body"].read() == b"via presigned put"
try:
    head, sig = get_url.split("X-Amz-Signature=")
    sig = ("1" if sig[0] == "0" else "0") + sig[1:]
    urllib.request.urlopen(head + "X-Amz-Signature=" + sig)
    raise SystemExit("a tampered signature was accepted")
except urllib.error.HTTPError as e:
    body = e.read().decode()
    assert e.code == 403 and "SignatureDoesNotMatch" in body, (e.code, body)
short = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "put.txt"}, ExpiresIn=1)
time.sleep(2.2)
try:
    urllib.request.urlopen(short)
    raise SystemExit("an expired URL was accepted")
except urllib.error.HTTPError as e:
    body = e.read().decode()
    assert e.code == 403 and "AccessDenied" in body and "Request has expired" in body, (e.code, body)

# A presigned POST, as a browser form sends it.
def post(fields, key, data):
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in list(fields.items()) + [("key", key)]:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\nContent-Type: image/png\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(form["url"], data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        return urllib.request.urlopen(req).status, ""
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
form = s3.generate_presigned_post(
    "boto-bucket", "uploads/${filename}",
    Fields={"Content-Type": "image/png"},
    Conditions=[["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1024], {"Content-Type": "image/png"}],
    ExpiresIn=60)
fields = dict(form["fields"])
fields.pop("key")
status, _ = post(fields, "uploads/ok.png", b"png bytes")
assert status in (200, 204), status
assert s3.get_object(Bucket="boto-bucket", Key="uploads/ok.png")["Body"].read() == b"png bytes"
status, body = post(fields, "elsewhere/x.png", b"png")
assert status == 403 and "AccessDenied" in body, (status, body)
status, body = post(fields, "uploads/big.png", b"x" * 2048)
assert status == 400 and "EntityTooLarge" in body, (status, body)
for key in ("elsewhere/x.png", "uploads/big.png"):
    try:
        s3.head_object(Bucket="boto-bucket", Key=key)
        raise SystemExit(f"a refused POST left {key} behind")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "404", e.response
print("boto3 ok")
PY

# woocom-dev buckets: the same stack seen from the CLI.
"$bin" buckets --ready-file "$work/ready.json" list >"$work/buckets.txt" || fail "buckets list"
grep -q "^smoke-bucket: 4 object(s)" "$work/buckets.txt" || { cat "$work/buckets.txt"; fail "buckets list output"; }
"$bin" buckets --ready-file "$work/ready.json" objects smoke-bucket --prefix site/ >"$work/objects.txt" || fail "buckets objects"
grep -q "site/img/logo.png" "$work/objects.txt" || { cat "$work/objects.txt"; fail "buckets objects output"; }

# What was acknowledged is there after a restart.
stop
start
s3 cp s3://smoke-bucket/big.bin "$work/again.bin" >/dev/null || fail "s3 cp after restart"
cmp -s "$work/big.bin" "$work/again.bin" || fail "the object changed across a restart"
echo "s3-awscli: ok"

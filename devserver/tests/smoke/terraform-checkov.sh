#!/usr/bin/env bash
# Static security scan of terraform/ (issue #8) with checkov from PyPI,
# installed into its own project-local venv (.woocom/venv-checkov, first run
# only). Every module is scanned as the stack root (terraform/stack) calls
# it, plus terraform/bootstrap. A check that does not fit this project
# is skipped on the resource itself with `#checkov:skip=CKV_...:reason`;
# nothing is skipped on the command line, and a skip without a reason fails
# here. Exits non-zero when any check fails, and shows first that a failing
# resource does fail the scan.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)

# Pinned: a new checkov release brings new checks, which should land as a
# reviewed change of this line, not as a red smoke run.
version=3.3.30
venv="$root/.woocom/venv-checkov"
if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/checkov" --version 2>/dev/null)" != "$version" ]; then
    echo "terraform-checkov: installing checkov $version into .woocom/venv-checkov (first run only)" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$version"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# --skip-download: no call to the Prisma Cloud API (guidelines, severities);
# this machine has no network beyond the package registries.
checkov() {
    LOG_LEVEL=ERROR "$venv/bin/checkov" --framework terraform --skip-download --compact "$@"
}

# The scan must fail on a failing resource: an unencrypted queue in a stack.
cp -r terraform "$scratch/terraform"
cat >>"$scratch/terraform/stack/main.tf" <<'EOF'

resource "aws_sqs_queue" "checkov_probe" {
  name                    = "checkov-probe"
  sqs_managed_sse_enabled = false
}
EOF
if checkov --quiet -d "$scratch/terraform" >"$scratch/probe.log" 2>&1; then
    cat "$scratch/probe.log" >&2
    echo "terraform-checkov: checkov passed a queue without encryption" >&2
    exit 1
fi
grep -q "CKV_AWS_27" "$scratch/probe.log" || {
    cat "$scratch/probe.log" >&2
    echo "terraform-checkov: the probe did not fail on CKV_AWS_27" >&2
    exit 1
}

# The scan itself, as JSON (every passed, failed and skipped check).
status=0
checkov -d terraform -o json >"$scratch/results.json" 2>"$scratch/checkov.err" || status=$?
[ -s "$scratch/results.json" ] || { cat "$scratch/checkov.err" >&2; exit 1; }

"$venv/bin/python" - "$scratch/results.json" "$status" <<'PY'
import json, sys

report = json.load(open(sys.argv[1]))
status = int(sys.argv[2])
if isinstance(report, list):  # one entry per framework
    [report] = [r for r in report if r["check_type"] == "terraform"]
summary, results = report["summary"], report["results"]
problems = []


def distinct(key):
    return {(c["check_id"], c["resource"]) for c in results.get(key, [])}


passed, failed, skipped = distinct("passed_checks"), distinct("failed_checks"), distinct("skipped_checks")
print(f"terraform-checkov: checkov {summary['checkov_version']}: {summary['resource_count']} resources; "
      f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']} "
      f"(a module's resource counts once per stack that calls it)")
print(f"terraform-checkov: distinct check/resource pairs: "
      f"{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")

seen = set()
for c in sorted(results.get("skipped_checks", []), key=lambda c: (c["repo_file_path"], c["file_line_range"][0], c["check_id"])):
    key = (c["check_id"], c["resource"])
    if key in seen:
        continue
    seen.add(key)
    reason = (c.get("check_result") or {}).get("suppress_comment") or ""
    where = f"{c['repo_file_path'].lstrip('/')}:{c['file_line_range'][0]}"
    print(f"terraform-checkov:   skipped {c['check_id']} on {c['resource']} ({where}): {reason}")
    if len(reason.strip()) < 20:
        problems.append(f"{c['check_id']} on {c['resource']} ({where}) is skipped without a reason")

for c in sorted(results.get("failed_checks", []), key=lambda c: (c["repo_file_path"], c["file_line_range"][0], c["check_id"])):
    where = f"{c['repo_file_path'].lstrip('/')}:{c['file_line_range'][0]}"
    print(f"terraform-checkov:   FAILED {c['check_id']} on {c['resource']} ({where}): {c['check_name']}", file=sys.stderr)

if summary["parsing_errors"]:
    problems.append(f"{summary['parsing_errors']} file(s) checkov could not parse: {results.get('parsing_errors')}")
if summary["resource_count"] == 0 or not passed:
    problems.append("checkov scanned no resource")
if summary["failed"] or status != 0:
    problems.append(f"{summary['failed']} failed check(s) (listed above), checkov exit status {status}")
for p in problems:
    print(f"terraform-checkov: FAILED: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "terraform-checkov: ok"

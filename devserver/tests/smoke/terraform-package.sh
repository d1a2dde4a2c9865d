#!/usr/bin/env bash
# `woocom-dev package` (issue #8): builds every function for Lambda, arm64
# and x86_64, with cargo-zigbuild + zig (installed from PyPI into
# .woocom/venv), checks the zips, then runs the packaged bootstraps against
# the devserver's Runtime API (devserver/tests/package.rs): the host's
# architecture natively and arm64 under qemu-user when the machine is
# x86_64 (Debian's qemu-user-static, installed when apt-get is usable).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)
woocom_dev=${WOOCOM_DEV:-$root/target/debug/woocom-dev}

venv="$root/.woocom/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
    echo "terraform-package: installing cargo-zigbuild and zig (ziglang) into .woocom/venv (first run only)" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-zigbuild ziglang
fi
export PATH="$venv/bin:$PATH"
if command -v rustup >/dev/null; then
    rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# On CI (scripts/test sets WOOCOM_TEST_LEAN) the two release builds go to a
# target folder of their own, removed with the zips (about 1 GB that nothing
# after this script reads); at a desk they stay in target/<triple>/release
# for the next `package`.
package_env=()
[ -z "${WOOCOM_TEST_LEAN:-}" ] || package_env=(CARGO_TARGET_DIR="$out/target")
env "${package_env[@]}" "$woocom_dev" package --output "$out" --quiet

for arch in arm64 x86_64; do
    python3 - "$out/$arch" "$arch" <<'PY'
import base64, hashlib, json, pathlib, sys, zipfile
folder, arch = pathlib.Path(sys.argv[1]), sys.argv[2]
packages = json.loads((folder / "packages.json").read_text())
assert packages["arch"] == arch, packages
machine = {"arm64": 183, "x86_64": 62}[arch]
for name, entry in packages["functions"].items():
    data = (folder / entry["zip"]).read_bytes()
    assert base64.b64encode(hashlib.sha256(data).digest()).decode() == entry["sha256"], name
    with zipfile.ZipFile(folder / entry["zip"]) as z:
        assert z.testzip() is None, name
        [info] = z.infolist()
        assert info.filename == "bootstrap", info.filename
        assert (info.external_attr >> 16) & 0o777 == 0o755, oct(info.external_attr >> 16)
        elf = z.read(info)
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == machine, name
    glibc = tuple(int(x) for x in (entry["glibc"] or "0.0").split("."))
    assert glibc <= (2, 34), (name, entry["glibc"])
    print(f"terraform-package: {arch} {name}: {entry['size']} bytes, glibc {entry['glibc']}, sha256 {entry['sha256']}")
PY
done

# Run the packaged bootstrap for real.
host=$(uname -m)
case "$host" in
    x86_64) host_arch=x86_64 ;;
    aarch64) host_arch=arm64 ;;
    *) echo "terraform-package: no Lambda architecture for host $host" >&2; exit 1 ;;
esac
WOOCOM_PACKAGE_DIR="$out" WOOCOM_PACKAGE_ARCH="$host_arch" \
    cargo test -p woocom-dev --test package -- --nocapture

if [ "$host_arch" = x86_64 ]; then
    # qemu-user runs the arm64 bootstrap; Debian's arm64 glibc (2.36) is
    # its loader and libc, as AL2023's (2.34) is on Lambda.
    sysroot=/usr/aarch64-linux-gnu
    packages="qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross"
    if { ! command -v qemu-aarch64-static >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; } \
        && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "terraform-package: installing $packages to run the arm64 bootstrap" >&2
        # shellcheck disable=SC2086
        apt-get install -y -qq $packages >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $packages >/dev/null; }
    fi
    if command -v qemu-aarch64-static >/dev/null && [ -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
        WOOCOM_PACKAGE_DIR="$out" WOOCOM_PACKAGE_ARCH=arm64 WOOCOM_PACKAGE_RUNNER="qemu-aarch64-static -L $sysroot" \
            cargo test -p woocom-dev --test package -- --nocapture
    else
        echo "terraform-package: NOT RUN: the arm64 bootstrap under emulation (needs $packages, and no apt-get as root); its ELF checks above ran" >&2
    fi
fi
echo "terraform-package: ok"

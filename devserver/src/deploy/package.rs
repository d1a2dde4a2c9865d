//! `woocom-dev package`: every function of the manifest built for Lambda
//! (`provided.al2023`, arm64 and/or x86_64), checked, and zipped.
//!
//! Cross-compiling and linking against a glibc no newer than AL2023's is
//! [cargo-zigbuild]'s job: `--target aarch64-unknown-linux-gnu.2.34` links
//! with zig against glibc 2.34 symbol stubs, from any Linux or macOS host,
//! with no C cross toolchain. (cargo-lambda does the same through
//! cargo-zigbuild; we call it directly to control the glibc version and the
//! output.) Each binary is then checked (architecture, loader, newest
//! glibc symbol) before it is zipped as `bootstrap`.
//!
//! Output, per architecture, under `target/lambda/<arch>/`: `<function>.zip`
//! and `packages.json` with each zip's base64 SHA-256, which the Terraform
//! `functions` module passes as `source_code_hash`.
//!
//! [cargo-zigbuild]: https://github.com/rust-cross/cargo-zigbuild

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::elf;
use super::zip;
use crate::manifest::Manifest;

/// The glibc of Amazon Linux 2023, what `provided.al2023` runs.
/// <https://docs.aws.amazon.com/linux/al2023/ug/compare-with-al2.html>
pub const AL2023_GLIBC: [u32; 2] = [2, 34];

/// Where packages go, relative to the workspace.
pub const DEFAULT_OUTPUT: &str = "target/lambda";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
pub enum Arch {
    #[value(name = "arm64", alias = "aarch64")]
    #[serde(rename = "arm64")]
    Arm64,
    #[value(name = "x86_64", alias = "amd64")]
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Arm64, Arch::X86_64];

    /// Lambda's name for it (`architectures = ["arm64"]`).
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }

    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }

    fn elf_machine(self) -> u16 {
        match self {
            Arch::Arm64 => elf::EM_AARCH64,
            Arch::X86_64 => elf::EM_X86_64,
        }
    }

    /// The dynamic loader Amazon Linux has for it.
    fn loader(self) -> &'static str {
        match self {
            Arch::Arm64 => "/lib/ld-linux-aarch64.so.1",
            Arch::X86_64 => "/lib64/ld-linux-x86-64.so.2",
        }
    }

    /// The machine this runs on, when Lambda has it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "aarch64" => Some(Arch::Arm64),
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.lambda_name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "cargo-zigbuild is not installed ({0}). Install it and zig with `pip install cargo-zigbuild ziglang` (or `cargo install --locked cargo-zigbuild` plus zig from your package manager); `./scripts/test` puts a Python venv at .woocom/venv whose bin/ can hold them"
    )]
    NoZigbuild(String),
    #[error(
        "the Rust standard library for {target} is not installed: run `rustup target add {target}`"
    )]
    NoTarget { target: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cargo zigbuild failed for {target}; the compiler's messages are above")]
    BuildFailed { target: String },
    #[error("cargo zigbuild built no binary `{bin}` (package {package}) for {target}")]
    NoBinary {
        package: String,
        bin: String,
        target: String,
    },
    #[error("{}: {problem}", path.display())]
    BadBinary { path: PathBuf, problem: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the manifest declares no functions")]
    NoFunctions,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct PackageOptions {
    pub arches: Vec<Arch>,
    /// `target/lambda` by default (relative to the workspace).
    pub output: PathBuf,
    pub quiet: bool,
}

/// One function's zip for one architecture.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    pub function: String,
    pub arch: Arch,
    /// Path of the zip.
    pub zip: PathBuf,
    /// Base64 SHA-256 of the zip: Terraform's `source_code_hash`.
    pub sha256: String,
    pub size: u64,
    /// Newest glibc symbol version the bootstrap needs, e.g. "2.34".
    pub glibc: Option<String>,
}

/// `packages.json` of one architecture folder.
#[derive(Debug, Serialize)]
struct PackagesFile<'a> {
    #[serde(rename = "//")]
    comment: &'static str,
    arch: Arch,
    rust_target: &'static str,
    glibc_max: String,
    functions: BTreeMap<&'a str, PackageEntry>,
}

#[derive(Debug, Serialize)]
struct PackageEntry {
    zip: String,
    sha256: String,
    size: u64,
    glibc: Option<String>,
}

/// Fails with the install command when cargo-zigbuild or a Rust target is
/// missing, before anything is built.
pub fn check_tools(arches: &[Arch]) -> Result<(), PackageError> {
    match Command::new(cargo())
        .args(["zigbuild", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(PackageError::NoZigbuild(format!(
                "`cargo zigbuild --help` exited with {s}"
            )));
        }
        Err(e) => return Err(PackageError::NoZigbuild(e.to_string())),
    }
    // Without rustup (a distro toolchain) the build itself reports it.
    if let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        let installed = String::from_utf8_lossy(&out.stdout);
        for arch in arches {
            if out.status.success() && !installed.lines().any(|l| l.trim() == arch.rust_target()) {
                return Err(PackageError::NoTarget {
                    target: arch.rust_target().to_owned(),
                });
            }
        }
    }
    Ok(())
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds, checks and zips every function for every architecture asked.
pub fn package(
    manifest: &Manifest,
    options: &PackageOptions,
) -> Result<Vec<Package>, PackageError> {
    if manifest.functions.is_empty() {
        return Err(PackageError::NoFunctions);
    }
    let mut arches = options.arches.clone();
    arches.sort();
    arches.dedup();
    check_tools(&arches)?;
    let root = manifest.root();
    let output = if options.output.is_absolute() {
        options.output.clone()
    } else {
        root.join(&options.output)
    };
    let mut packages = Vec::new();
    for arch in arches {
        let binaries = build(root, manifest, arch, options.quiet)?;
        let dir = output.join(arch.lambda_name());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut entries = BTreeMap::new();
        for (function, binary) in &binaries {
            let package = zip_one(function, binary, arch, &dir)?;
            entries.insert(
                function.as_str(),
                PackageEntry {
                    zip: format!("{function}.zip"),
                    sha256: package.sha256.clone(),
                    size: package.size,
                    glibc: package.glibc.clone(),
                },
            );
            packages.push(package);
        }
        let file = PackagesFile {
            comment: "Written by `woocom-dev package`; the Terraform functions module reads it.",
            arch,
            rust_target: arch.rust_target(),
            glibc_max: format!("{}.{}", AL2023_GLIBC[0], AL2023_GLIBC[1]),
            functions: entries,
        };
        let path = dir.join("packages.json");
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| PackageError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        text.push('\n');
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(packages)
}

/// One `cargo zigbuild --release` for all functions: function name → binary.
fn build(
    root: &Path,
    manifest: &Manifest,
    arch: Arch,
    quiet: bool,
) -> Result<BTreeMap<String, PathBuf>, PackageError> {
    let target = format!(
        "{}.{}.{}",
        arch.rust_target(),
        AL2023_GLIBC[0],
        AL2023_GLIBC[1]
    );
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["zigbuild", "--release", "--target", &target])
        .arg("--message-format=json-render-diagnostics");
    if quiet {
        cmd.arg("--quiet");
    }
    let mut wanted: Vec<(String, String, String)> = Vec::new(); // function, package, bin
    for (name, f) in &manifest.functions {
        let bin = f.bin.clone().unwrap_or_else(|| f.package.clone());
        wanted.push((name.clone(), f.package.clone(), bin));
    }
    let mut packages: Vec<&str> = wanted.iter().map(|w| w.1.as_str()).collect();
    packages.sort();
    packages.dedup();
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    let mut bins: Vec<&str> = wanted.iter().map(|w| w.2.as_str()).collect();
    bins.sort();
    bins.dedup();
    for b in bins {
        cmd.arg("--bin").arg(b);
    }
    if !quiet {
        eprintln!(
            "woocom-dev: building {} function(s) for {arch} ({target})",
            wanted.len()
        );
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|source| PackageError::Spawn {
        program: "cargo zigbuild".into(),
        source,
    })?;
    let mut executables: BTreeMap<String, PathBuf> = BTreeMap::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let (Some(exe), Some(bin)) =
                (msg["executable"].as_str(), msg["target"]["name"].as_str())
            else {
                continue;
            };
            executables.insert(bin.to_owned(), PathBuf::from(exe));
        }
    }
    let status = child.wait().map_err(|source| PackageError::Spawn {
        program: "cargo zigbuild".into(),
        source,
    })?;
    if !status.success() {
        return Err(PackageError::BuildFailed { target });
    }
    let mut out = BTreeMap::new();
    for (function, package, bin) in wanted {
        let Some(exe) = executables.get(&bin) else {
            return Err(PackageError::NoBinary {
                package,
                bin,
                target,
            });
        };
        out.insert(function, exe.clone());
    }
    Ok(out)
}

/// Checks `binary` for Lambda on `arch` and returns the newest glibc it
/// needs ("2.34").
pub fn check_binary(
    binary: &Path,
    bytes: &[u8],
    arch: Arch,
) -> Result<Option<String>, PackageError> {
    let bad = |problem: String| PackageError::BadBinary {
        path: binary.to_owned(),
        problem,
    };
    let info = elf::inspect(bytes).map_err(&bad)?;
    if info.machine != arch.elf_machine() {
        return Err(bad(format!(
            "built for ELF machine {} but {arch} is machine {}",
            info.machine,
            arch.elf_machine()
        )));
    }
    if let Some(interpreter) = &info.interpreter
        && interpreter != arch.loader()
    {
        return Err(bad(format!(
            "needs the loader {interpreter}; Amazon Linux has {}",
            arch.loader()
        )));
    }
    let glibc = info
        .max_glibc()
        .map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join("."));
    if let Some(max) = info.max_glibc()
        && max > &AL2023_GLIBC[..]
    {
        {
            return Err(bad(format!(
                "needs glibc {} but Lambda's provided.al2023 has {}.{}: build with cargo zigbuild --target {}.{}.{}",
                glibc.clone().unwrap_or_default(),
                AL2023_GLIBC[0],
                AL2023_GLIBC[1],
                arch.rust_target(),
                AL2023_GLIBC[0],
                AL2023_GLIBC[1]
            )));
        }
    }
    Ok(glibc)
}

fn zip_one(function: &str, binary: &Path, arch: Arch, dir: &Path) -> Result<Package, PackageError> {
    let bytes = std::fs::read(binary).map_err(io(binary))?;
    let glibc = check_binary(binary, &bytes, arch)?;
    let zipped = zip::single_file("bootstrap", &bytes, 0o755).map_err(io(binary))?;
    let path = dir.join(format!("{function}.zip"));
    std::fs::write(&path, &zipped).map_err(io(&path))?;
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zipped));
    Ok(Package {
        function: function.to_owned(),
        arch,
        zip: path,
        sha256,
        size: zipped.len() as u64,
        glibc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_test_binary_passes_or_names_its_glibc() {
        let exe = std::env::current_exe().expect("exe");
        let bytes = std::fs::read(&exe).expect("read");
        let Some(arch) = Arch::host() else { return };
        match check_binary(&exe, &bytes, arch) {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("needs glibc"), "{e}"),
        }
        let other = if arch == Arch::Arm64 {
            Arch::X86_64
        } else {
            Arch::Arm64
        };
        let err = check_binary(&exe, &bytes, other).expect_err("wrong arch");
        assert!(err.to_string().contains("ELF machine"), "{err}");
    }
}

//! Builds function crates with cargo and finds their binaries from cargo's
//! JSON messages. Cargo's own progress bar and rendered diagnostics go to
//! the terminal as they are.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error("cannot run cargo: {0}")]
    #[diagnostic(
        code(woocom::cargo),
        help("install Rust with rustup (https://rustup.rs) so that `cargo` is on PATH")
    )]
    Spawn(std::io::Error),
    #[error("cargo build failed for {packages}; the compiler's messages are above")]
    #[diagnostic(
        code(woocom::build_failed),
        help("fix the first error above; `cargo build -p <package>` shows the messages again")
    )]
    Failed { packages: String, errors: String },
    #[error("{0}")]
    #[diagnostic(code(woocom::build))]
    Joined(String),
    #[error("cargo built {package} but produced no binary `{bin}`")]
    #[diagnostic(
        code(woocom::no_binary),
        help(
            "give the crate a binary (src/main.rs or a [[bin]]), or name one with `bin` in dev.toml's [functions.x]"
        )
    )]
    NoBinary { package: String, bin: String },
}

/// One binary to build: `package`'s bin target `bin`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinTarget {
    pub package: String,
    pub bin: String,
}

type Built = BTreeMap<BinTarget, PathBuf>;
type BuildKey = (PathBuf, Vec<BinTarget>, bool);

/// A build in progress that other callers asking for the same build join
/// instead of queueing on cargo's lock (in-process test stacks start many
/// at once). A request made after a build finished runs cargo again.
#[derive(Default)]
struct Flight {
    result: Mutex<Option<Result<Built, String>>>,
    done: Condvar,
}

static IN_FLIGHT: LazyLock<Mutex<HashMap<BuildKey, Arc<Flight>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// How to run cargo.
#[derive(Debug, Clone, Default)]
pub struct BuildSettings {
    pub release: bool,
    /// Hide cargo's progress and warnings (errors are shown either way).
    pub quiet: bool,
    /// `--target-dir`, when not the workspace's own.
    pub target_dir: Option<PathBuf>,
}

/// Runs one `cargo build` for all targets in the workspace at `root` and
/// returns each target's executable.
pub fn build(
    root: &Path,
    targets: &[BinTarget],
    settings: &BuildSettings,
) -> Result<Built, BuildError> {
    let release = settings.release;
    let mut sorted = targets.to_vec();
    sorted.sort();
    let key: BuildKey = (root.to_owned(), sorted, release);
    let (flight, leader) = {
        let mut map = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&key) {
            Some(f) => (f.clone(), false),
            None => {
                let f = Arc::new(Flight::default());
                map.insert(key.clone(), f.clone());
                (f, true)
            }
        }
    };
    if leader {
        let result = run_cargo(root, targets, settings);
        *flight.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(
            result
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string),
        );
        IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        flight.done.notify_all();
        return result;
    }
    let mut slot = flight.result.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(result) = slot.as_ref() {
            return result.clone().map_err(BuildError::Joined);
        }
        slot = flight
            .done
            .wait(slot)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

fn run_cargo(
    root: &Path,
    targets: &[BinTarget],
    settings: &BuildSettings,
) -> Result<Built, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    let color = std::io::stderr().is_terminal();
    cmd.current_dir(root).arg("build").arg(if color {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    });
    if settings.release {
        cmd.arg("--release");
    }
    if settings.quiet {
        cmd.arg("--quiet");
    }
    if let Some(dir) = &settings.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    let mut packages: Vec<&str> = targets.iter().map(|t| t.package.as_str()).collect();
    packages.sort();
    packages.dedup();
    for p in &packages {
        cmd.arg("-p").arg(p);
    }
    for t in targets {
        cmd.arg("--bin").arg(&t.bin);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(BuildError::Spawn)?;
    let mut found = BTreeMap::new();
    let mut errors = String::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-message" {
                let level = msg["message"]["level"].as_str().unwrap_or_default();
                let rendered = msg["message"]["rendered"].as_str().unwrap_or_default();
                let is_error = level == "error";
                if is_error {
                    errors.push_str(&strip_ansi(rendered));
                }
                if is_error || !settings.quiet {
                    let crate_name = msg["target"]["name"].as_str().unwrap_or("?");
                    eprintln!("[{crate_name}] {rendered}");
                }
                continue;
            }
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let Some(exe) = msg["executable"].as_str() else {
                continue;
            };
            let bin = msg["target"]["name"].as_str().unwrap_or_default();
            let is_bin = msg["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
            // Bin names are unique among the targets asked for, so the name
            // alone identifies the package (cargo's package ids omit the
            // name when it matches the folder).
            for t in targets.iter().filter(|t| is_bin && t.bin == bin) {
                found.insert(t.clone(), PathBuf::from(exe));
            }
        }
    }
    let status = child.wait().map_err(BuildError::Spawn)?;
    if !status.success() {
        return Err(BuildError::Failed {
            packages: packages.join(", "),
            errors,
        });
    }
    for t in targets {
        if !found.contains_key(t) {
            return Err(BuildError::NoBinary {
                package: t.package.clone(),
                bin: t.bin.clone(),
            });
        }
    }
    Ok(found)
}

/// Compiler output without terminal colours (for messages kept as text).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first error of a failed build, for a one-line summary.
pub fn first_error(errors: &str) -> Option<&str> {
    errors.lines().find(|l| l.starts_with("error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[1m\u{1b}[31merror\u{1b}[0m: x"),
            "error: x"
        );
    }
}

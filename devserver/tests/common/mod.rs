//! Shared by the integration tests: start a stack from a fixture manifest
//! on free ports.

#![allow(dead_code)]

pub mod golden;
pub mod raw;
pub mod sdk;

use std::ops::Deref;
use std::path::{Path, PathBuf};

use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn manifest(name: &str) -> Manifest {
    Manifest::load(&fixture(name)).expect("fixture manifest is valid")
}

/// The probe stack (tests/fixtures/probe.toml) on free ports.
pub async fn probe_stack() -> Stack {
    stack_from(manifest("probe.toml")).await
}

pub async fn stack_from(manifest: Manifest) -> Stack {
    stack_with_options(manifest, |_| {}).await
}

/// A stack on free ports with options edited first (limits, ...).
pub async fn stack_with_options(manifest: Manifest, edit: impl FnOnce(&mut StackOptions)) -> Stack {
    let mut options = StackOptions::new(manifest).free_ports().quiet_build();
    edit(&mut options);
    Stack::start(options).await.expect("stack starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// An `aws-sdk-lambda` client for the stack's AWS endpoint, over plain HTTP.
pub async fn lambda_client(stack: &Stack) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk::config(&stack.urls().aws).await)
}

/// The probe's report of the event it got (the `body` of its response).
pub async fn probe_report(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), 200, "probe answered");
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).expect("probe report is JSON")
}

/// A folder of its own, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `woocom-<label>-<pid>-<nanos>` under the system temp folder.
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("woocom-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Cargo workspace of its own under the tests' temp folder,
/// `<label>-<pid>`, removed on drop, with one Lambda function crate in
/// `<dir>/<folder>` named `package` (lambda_runtime, serde_json, tokio) and
/// `main_rs` as its source: for tests that edit a function's code. It takes the repository's
/// profiles and lock file, so builds sharing a target folder reuse the
/// dependencies already built.
pub fn function_workspace(label: &str, folder: &str, package: &str, main_rs: &str) -> TempDir {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(folder).join("src")).expect("mkdir");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [\"{folder}\"]\n\n[profile.dev]\ndebug = \"line-tables-only\"\n\n[profile.dev.package.\"*\"]\nopt-level = 1\ndebug = false\n"
        ),
    )
    .expect("write");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock");
    std::fs::write(
        dir.join(folder).join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nlambda_runtime = \"1\"\nserde_json = \"1\"\ntokio = {{ version = \"1\", features = [\"full\"] }}\n"
        ),
    )
    .expect("write");
    std::fs::write(dir.join(folder).join("src/main.rs"), main_rs).expect("write");
    TempDir(dir)
}

//! Hot reload benchmark: `cargo bench -p woocom-dev --bench reload`.
//!
//! On a copy of this workspace's `products` function (and the domain crate
//! it depends on), in a temporary workspace sharing a target folder:
//!
//! (a) edit → first response from the new code, through `woocom-dev`'s
//!     watcher, next to a bare `cargo build -p woocom-products` of the same
//!     kind of edit measured in the same run;
//! (b) failed requests while a steady load (50 requests/s) runs across the
//!     reloads.
//!
//! `RELOAD_BENCH_ROUNDS` (default 5) sets the number of edits of each kind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

const MANIFEST: &str = r#"
[ports]
api = 0
websocket = 0
aws = 0

[api]
stage = "bench"

[functions.products]
crate = "woocom-products"
timeout = 10
env = { PRODUCTS_TABLE = "products" }

[[routes]]
method = "GET"
path = "/products/{id}"
function = "products"

[tables.products]
partition_key = { name = "id", type = "S" }
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

/// A workspace with copies of the products and domain crates, using the
/// repository's versions and lints.
fn workspace(repo: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    copy_dir(
        &repo.join("functions/domain"),
        &dir.join("functions/domain"),
    );
    copy_dir(
        &repo.join("functions/products"),
        &dir.join("functions/products"),
    );
    // Without the dev-dependency on the devserver: only the function builds.
    let cargo_toml = dir.join("functions/products/Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml).expect("read");
    let text = text
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default()
        .to_owned();
    std::fs::write(&cargo_toml, text).expect("write");
    let _ = std::fs::remove_dir_all(dir.join("functions/products/tests"));
    let root = std::fs::read_to_string(repo.join("Cargo.toml")).expect("read");
    let start = root.find("members").expect("members");
    let end = start + root[start..].find(']').expect("end of members") + 1;
    let root = format!(
        "{}members = [\"functions/*\"]{}",
        &root[..start],
        &root[end..]
    );
    std::fs::write(dir.join("Cargo.toml"), root).expect("write");
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock");
    std::fs::write(dir.join("dev.toml"), MANIFEST).expect("write");
}

/// Makes the not-found message carry `marker`, so a response tells which
/// build answered.
fn edit(dir: &Path, marker: &str) {
    let lib = dir.join("functions/products/src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("read");
    let start = text.find("no product {id}").expect("the not-found message");
    let end = start + text[start..].find('"').expect("end of string");
    let edited = format!(
        "{}no product {{id}} [{marker}]{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&lib, edited).expect("write");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    // The reload's own lines (building, reloaded in, errors) on stderr;
    // WOOCOM_LOG as for woocom-dev (default: the reload lines only).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WOOCOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("reload=info,warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rounds: usize = std::env::var("RELOAD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = std::fs::canonicalize(&repo).expect("repo");
    let target = repo.join("target/reload-bench");
    let dir: PathBuf = repo.join("target/reload-bench-workspace");
    workspace(&repo, &dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = || {
        let started = Instant::now();
        let status = Command::new(&cargo)
            .current_dir(&dir)
            .args(["build", "--quiet", "-p", "woocom-products", "--target-dir"])
            .arg(&target)
            .status()
            .expect("cargo");
        assert!(status.success(), "cargo build");
        started.elapsed()
    };
    eprintln!("warming: first build of the copied crates (may take a while)");
    build();

    // (a) baseline: cargo alone, same edit.
    let mut cargo_times = Vec::new();
    for i in 0..rounds {
        edit(&dir, &format!("cargo-{i}"));
        cargo_times.push(build());
    }

    let manifest = Manifest::load(&dir.join("dev.toml")).expect("manifest");
    let mut options = StackOptions::new(manifest)
        .free_ports()
        .quiet_build()
        .watch();
    options.target_dir = Some(target.clone());
    let stack = Stack::start(options).await.expect("stack");
    // An id the function rejects before reaching the store: its answer
    // (404) comes from the first "no product" message, the one edited.
    let url = format!("{}/products/not.an.id", stack.urls().api);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    // (b) steady load across the reloads: 50 requests/s.
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (http, url, sent, failed) = (http.clone(), url.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let (http, url, sent, failed) =
                    (http.clone(), url.clone(), sent.clone(), failed.clone());
                tokio::spawn(async move {
                    sent.fetch_add(1, Ordering::Relaxed);
                    // The function answers 404 for a missing product: any
                    // other status (502, 504) or no answer is a failure.
                    match http.get(&url).send().await {
                        Ok(r) if r.status() == 404 => {}
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        })
    };

    let mut reload_times = Vec::new();
    for i in 0..rounds {
        let marker = format!("reload-{i}");
        let started = Instant::now();
        edit(&dir, &marker);
        loop {
            let body = http
                .get(&url)
                .send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body");
            if body.contains(&marker) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "no reload");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        reload_times.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    load.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.shutdown().await;

    let cargo_median = median(cargo_times.clone());
    let reload_median = median(reload_times.clone());
    println!("\nhot reload of woocom-products ({rounds} edits each, medians)");
    println!(
        "  cargo build -p woocom-products     {:>8.0} ms   {:?}",
        cargo_median.as_secs_f64() * 1e3,
        ms(&cargo_times)
    );
    println!(
        "  edit -> first new response         {:>8.0} ms   {:?}",
        reload_median.as_secs_f64() * 1e3,
        ms(&reload_times)
    );
    println!(
        "  added by the reload                {:>8.0} ms   (target: < 300 ms)",
        (reload_median.as_secs_f64() - cargo_median.as_secs_f64()) * 1e3
    );
    println!(
        "  steady load, 50 req/s: {} sent, {} failed   (target: 0 failed)",
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

fn ms(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_millis() as u64).collect()
}

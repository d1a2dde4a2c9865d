//! Resident memory of the devserver under the load of issue 20, next to a
//! plain axum server taking the same bodies in the same run:
//!
//! ```text
//! cargo bench -p woocom-dev --bench memory
//! ```
//!
//! It starts a real `woocom-dev up --free-ports --ready-file` (the binary
//! cargo builds with this bench, or `WOOCOM_DEV`) on `benches/memory.toml`,
//! then a plain axum server (this bench's own binary, re-run as a child)
//! that reads the same bodies and answers at once. Each gets, from 127.0.0.1:
//!
//! 1. REST: 20 bodies of 11 MB (over API Gateway's 10 MB: 413) and 10 of
//!    5 MB (taken; the devserver hands them to a function), 4 at a time;
//! 2. DynamoDB: 100 `PutItem`s of a 380 KB item and 100 `GetItem`s, 4 at a
//!    time;
//! 3. Lambda: 100 asynchronous (`Event`) invokes of a 1 MB payload, 8 at a
//!    time.
//!
//! It prints each server's resident memory (VmRSS of its process, not of
//! the function processes) when idle, its peak (VmHWM) and after the load
//! once it has settled: the issue asks the devserver to fall back to within
//! 30 MB of idle.
//!
//! Options, as `--name value` after `--` or environment variables:
//! `--settle` / `BENCH_SETTLE_SECS`: seconds to wait after the load (10);
//! `--parts` / `BENCH_PARTS`: which loads, of `rest,dynamodb,invoke` (all).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;

const BASELINE_FLAG: &str = "--baseline-server";

fn option(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
}

/// A `/proc/<pid>/status` field in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Server {
    name: String,
    child: Child,
    /// The REST API with its stage, and the AWS endpoint.
    api: String,
    aws: String,
    _dir: Option<TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM would be kinder; the child holds nothing worth keeping.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (bounded) for a ready file and returns its JSON.
fn wait_ready(path: &std::path::Path, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(v) = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn devserver() -> Server {
    let binary =
        std::env::var("WOOCOM_DEV").unwrap_or_else(|_| env!("CARGO_BIN_EXE_woocom-dev").to_owned());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/memory.toml");
    let dir = std::env::temp_dir().join(format!("woocom-memory-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ready = dir.join("ready.json");
    let mut child = Command::new(&binary)
        .arg("--manifest")
        .arg(&manifest)
        .args([
            "up",
            "--free-ports",
            "--no-watch",
            "--no-frontend",
            "--no-seed",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .arg("--data")
        .arg(dir.join("data"))
        .env(
            "WOOCOM_LOG",
            std::env::var("WOOCOM_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    let urls = wait_ready(&ready, &mut child);
    Server {
        name: "woocom-dev up".into(),
        api: urls["api"].as_str().expect("api").to_owned(),
        aws: urls["aws"].as_str().expect("aws").to_owned(),
        child,
        _dir: Some(TempDir(dir)),
    }
}

fn baseline() -> Server {
    let dir = std::env::temp_dir().join(format!("woocom-memory-axum-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ready = dir.join("ready.json");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .arg(BASELINE_FLAG)
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("baseline server");
    let urls = wait_ready(&ready, &mut child);
    let base = urls["url"].as_str().expect("url").to_owned();
    Server {
        name: "plain axum, same bodies".into(),
        api: format!("{base}/bench"),
        aws: base,
        child,
        _dir: Some(TempDir(dir)),
    }
}

/// The baseline: reads each body whole (10 MB at most on the REST path, as
/// API Gateway), parses JSON where the devserver does, answers at once.
fn run_baseline(ready: &str) {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::routing::post;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let rest = |request: axum::extract::Request| async move {
            match axum::body::to_bytes(request.into_body(), 10 * 1024 * 1024).await {
                Ok(_) => (StatusCode::OK, "{}"),
                Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, "{}"),
            }
        };
        let json = |body: Bytes| async move {
            let _: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            (StatusCode::OK, "{}")
        };
        let invoke = |body: Bytes| async move {
            let _: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            StatusCode::ACCEPTED
        };
        let app = axum::Router::new()
            .route("/bench/sink", post(rest))
            .route("/", post(json))
            .route("/2015-03-31/functions/{f}/invocations", post(invoke))
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::fs::write(ready, serde_json::json!({ "url": url }).to_string()).expect("ready");
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn run_all<F, Fut>(count: usize, at_once: usize, f: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    stream::iter(0..count)
        .map(f)
        .buffer_unordered(at_once)
        .collect()
        .await
}

fn dynamodb(
    http: &reqwest::Client,
    aws: &str,
    target: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(aws)
        .header("x-amz-target", format!("DynamoDB_20120810.{target}"))
        .header("content-type", "application/x-amz-json-1.0");
    for (name, value) in woocom_dev::dynamodb::sigv4::sign(
        aws.trim_start_matches("http://").trim_end_matches('/'),
        &[],
        body.as_bytes(),
        "us-east-1",
        "AKIAEXAMPLE",
        "bench",
        chrono::Utc::now(),
    ) {
        request = request.header(name, value);
    }
    request.body(body)
}

/// The load of the module documentation; returns a summary of statuses.
async fn load(server: &Server) -> String {
    let parts = option("--parts", "BENCH_PARTS").unwrap_or_else(|| "rest,dynamodb,invoke".into());
    let part = |name: &str| parts.split(',').any(|p| name.starts_with(p));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let http = Arc::new(http);
    let mut summary = Vec::new();
    let mut count = |label: &str, statuses: Vec<u16>| {
        let mut seen = std::collections::BTreeMap::new();
        for s in statuses {
            *seen.entry(s).or_insert(0) += 1;
        }
        summary.push(format!("{label} {seen:?}"));
    };

    if part("rest11") {
        let big = bytes::Bytes::from(vec![b'a'; 11 * 1024 * 1024]);
        let statuses = run_all(20, 4, |_| {
            let (http, big, url) = (http.clone(), big.clone(), format!("{}/sink", server.api));
            async move {
                http.post(url)
                    .body(big)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .await;
        count("REST 11 MB", statuses);
    }
    if part("rest5") {
        let five = bytes::Bytes::from(vec![b'b'; 5 * 1024 * 1024]);
        let statuses = run_all(10, 4, |_| {
            let (http, five, url) = (
                http.clone(),
                five.clone(),
                format!("{}/sink?probe=ok", server.api),
            );
            async move {
                http.post(url)
                    .body(five)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .await;
        count("REST 5 MB", statuses);
    }
    if part("dynamodb") {
        let blob = "c".repeat(380 * 1024);
        let statuses = run_all(100, 4, |i| {
            let http = http.clone();
            let body = serde_json::json!({
                "TableName": "blobs",
                "Item": { "id": { "S": format!("item-{i}") }, "blob": { "S": blob } }
            })
            .to_string();
            let aws = server.aws.clone();
            async move {
                dynamodb(&http, &aws, "PutItem", body)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .await;
        count("PutItem 380 KB", statuses);
        let statuses = run_all(100, 4, |i| {
            let http = http.clone();
            let body = serde_json::json!({
                "TableName": "blobs",
                "Key": { "id": { "S": format!("item-{i}") } }
            })
            .to_string();
            let aws = server.aws.clone();
            async move {
                match dynamodb(&http, &aws, "GetItem", body).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                }
            }
        })
        .await;
        count("GetItem 380 KB", statuses);
    }
    if part("invoke") {
        let payload = bytes::Bytes::from(
            serde_json::json!({ "probe": "ok", "pad": "d".repeat(1_000_000) }).to_string(),
        );
        let statuses = run_all(100, 8, |_| {
            let (http, payload) = (http.clone(), payload.clone());
            let url = format!("{}/2015-03-31/functions/sink/invocations", server.aws);
            async move {
                http.post(url)
                    .header("x-amz-invocation-type", "Event")
                    .body(payload)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .await;
        count("Invoke Event 1 MB", statuses);
    }
    summary.join(", ")
}

struct Figures {
    idle: f64,
    peak: f64,
    after: f64,
    statuses: String,
}

fn measure(runtime: &tokio::runtime::Runtime, server: &Server, settle: Duration) -> Figures {
    let pid = server.child.id();
    // Warm: one small request of each kind, then a moment to settle.
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let _ = http
            .post(format!("{}/sink?probe=ok", server.api))
            .body("{}")
            .send()
            .await;
        let _ = dynamodb(
            &http,
            &server.aws,
            "GetItem",
            r#"{"TableName":"blobs","Key":{"id":{"S":"none"}}}"#.into(),
        )
        .send()
        .await;
    });
    std::thread::sleep(Duration::from_secs(2));
    let idle = status_mb(pid, "VmRSS:");
    let statuses = runtime.block_on(load(server));
    // After the load: the asynchronous invokes are still running; wait for
    // the figure to settle.
    let deadline = Instant::now() + settle;
    let mut after = status_mb(pid, "VmRSS:");
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        after = status_mb(pid, "VmRSS:");
    }
    Figures {
        idle,
        peak: status_mb(pid, "VmHWM:"),
        after,
        statuses,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == BASELINE_FLAG) {
        run_baseline(args.get(i + 1).expect("ready file"));
        return;
    }
    let settle = Duration::from_secs_f64(
        option("--settle", "BENCH_SETTLE_SECS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10.0),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows = Vec::new();
    for start in [devserver as fn() -> Server, baseline] {
        let server = start();
        let figures = measure(&runtime, &server, settle);
        rows.push((server.name.clone(), figures));
    }
    println!();
    println!("resident memory of the server process, MB (settled {settle:?} after the load)");
    println!(
        "{:<26} {:>8} {:>8} {:>11} {:>13}",
        "", "idle", "peak", "after load", "after - idle"
    );
    for (name, f) in &rows {
        println!(
            "{name:<26} {:>8.1} {:>8.1} {:>11.1} {:>13.1}",
            f.idle,
            f.peak,
            f.after,
            f.after - f.idle
        );
    }
    println!();
    for (name, f) in &rows {
        println!("{name}: {}", f.statuses);
    }
}

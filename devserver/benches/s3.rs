//! S3 (issue #16): what a developer's code sees, through `aws-sdk-s3`
//! against an in-process stack that keeps its objects on disk (as
//! `woocom-dev up` does), next to writing and reading the same bytes as a
//! local file in the same run.
//!
//! `cargo bench -p woocom-dev --bench s3` (about a minute; loopback).
//!
//! - PutObject / GetObject of 4 KB: ops/s and p50 (sequential, one client);
//! - PutObject / GetObject of 10 MB: MB/s;
//! - baselines: the same bytes written to a file (write + fsync + rename,
//!   the durability PutObject gives; and a plain write), read back;
//! - upload → notification → function invoked: p50 / p99 from just before
//!   PutObject to the probe receiving the S3 event
//!   (tests/fixtures/s3-notify.toml).

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;
use woocom_dev::dynamodb::DataLocation;
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

#[path = "../tests/common/sdk.rs"]
mod sdk;

const SMALL: usize = 4 * 1024;
const LARGE: usize = 10 * 1024 * 1024;
const SMALL_OPS: usize = 400;
const LARGE_OPS: usize = 10;
const NOTIFY_EVENTS: usize = 200;
const PACE: Duration = Duration::from_millis(5);

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Timings of `ops` runs of `f` (ms each).
async fn timed<F, Fut>(ops: usize, mut f: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let t = Instant::now();
        f(i).await;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sorted(out)
}

fn report(label: &str, ms: &[f64], bytes: usize) {
    let total: f64 = ms.iter().sum::<f64>() / 1000.0;
    let ops = ms.len() as f64 / total;
    println!(
        "{label:<44} {ops:>9.0} ops/s {:>8.1} MB/s   p50 {:>7.3} ms  p99 {:>7.3} ms",
        ops * bytes as f64 / 1_048_576.0,
        percentile(ms, 0.5),
        percentile(ms, 0.99),
    );
}

/// The baseline: the bytes as a local file, written durably (write, fsync,
/// rename, fsync of the folder: what an acknowledged PutObject costs) or
/// plainly, then read back.
fn file_baseline(dir: &std::path::Path, bytes: &[u8], ops: usize, durable: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let t = Instant::now();
        let tmp = dir.join(format!("tmp-{i}"));
        let dest = dir.join(format!("file-{}", i % 16));
        let mut f = std::fs::File::create(&tmp).expect("create");
        f.write_all(bytes).expect("write");
        if durable {
            f.sync_all().expect("fsync");
        }
        drop(f);
        std::fs::rename(&tmp, &dest).expect("rename");
        if durable {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .expect("fsync dir");
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sorted(out)
}

fn file_reads(dir: &std::path::Path, ops: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let t = Instant::now();
        let data = std::fs::read(dir.join(format!("file-{}", i % 16))).expect("read");
        std::hint::black_box(data);
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sorted(out)
}

async fn client(stack: &Stack) -> aws_sdk_s3::Client {
    let config = sdk::loader(&stack.urls().s3)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIABENCH",
            woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "bench",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::new(&config)
}

async fn throughput(scratch: &std::path::Path) {
    let data_dir = scratch.join("stack");
    let mut options = StackOptions::new(Manifest::load(&fixture("s3.toml")).expect("fixture"))
        .free_ports()
        .quiet_build();
    options.data = DataLocation::Dir(data_dir);
    let stack = Stack::start(options).await.expect("stack starts");
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("bench")
        .send()
        .await
        .expect("bucket");
    let files = scratch.join("files");
    std::fs::create_dir_all(&files).expect("files dir");

    for (size, ops, name) in [(SMALL, SMALL_OPS, "4 KB"), (LARGE, LARGE_OPS, "10 MB")] {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // Warm up the connection and the code paths.
        s3.put_object()
            .bucket("bench")
            .key("warm")
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .expect("warm put");
        let puts = timed(ops, |i| {
            let (s3, body) = (s3.clone(), bytes.clone());
            async move {
                s3.put_object()
                    .bucket("bench")
                    .key(format!("obj-{}", i % 16))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .expect("put");
            }
        })
        .await;
        let gets = timed(ops, |i| {
            let s3 = s3.clone();
            async move {
                let out = s3
                    .get_object()
                    .bucket("bench")
                    .key(format!("obj-{}", i % 16))
                    .send()
                    .await
                    .expect("get");
                let body = out.body.collect().await.expect("body").into_bytes();
                assert_eq!(body.len(), size);
            }
        })
        .await;
        let durable = file_baseline(&files, &bytes, ops, true);
        let plain = file_baseline(&files, &bytes, ops, false);
        let reads = file_reads(&files, ops);
        println!("--- {name} objects ({ops} sequential operations each)");
        report(&format!("PutObject {name} (SDK, fsynced)"), &puts, size);
        report(
            &format!("baseline: file write+fsync+rename {name}"),
            &durable,
            size,
        );
        report(
            &format!("baseline: file write (no fsync) {name}"),
            &plain,
            size,
        );
        report(&format!("GetObject {name} (SDK)"), &gets, size);
        report(&format!("baseline: file read {name}"), &reads, size);
    }
    stack.shutdown().await;
}

async fn notification_latency(scratch: &std::path::Path) {
    let log = scratch.join("s3-events.log");
    let mut manifest = Manifest::load(&fixture("s3-notify.toml")).expect("fixture");
    if let Some(f) = manifest.functions.get_mut("thumbnail") {
        f.env
            .insert("PROBE_S3_LOG".into(), log.display().to_string());
    }
    let stack = Stack::start(StackOptions::new(manifest).free_ports().quiet_build())
        .await
        .expect("stack starts");
    let s3 = client(&stack).await;
    // Warm the function's instance.
    s3.put_object()
        .bucket("photos")
        .key("uploads/warm.jpg")
        .body(ByteStream::from_static(b"w"))
        .send()
        .await
        .expect("warm");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&log).unwrap_or_default().is_empty() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sent = Vec::with_capacity(NOTIFY_EVENTS);
    for i in 0..NOTIFY_EVENTS {
        sent.push(now_us());
        s3.put_object()
            .bucket("photos")
            .key(format!("uploads/bench-{i}.jpg"))
            .body(ByteStream::from_static(b"jpeg"))
            .send()
            .await
            .expect("put");
        tokio::time::sleep(PACE).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let received = loop {
        let got: Vec<(usize, u128)> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                let key = v["event"]["Records"][0]["s3"]["object"]["key"].as_str()?;
                let n = key
                    .strip_prefix("uploads/bench-")?
                    .strip_suffix(".jpg")?
                    .parse()
                    .ok()?;
                Some((n, v["received_us"].as_u64().map_or(0, u128::from)))
            })
            .collect();
        if got.len() >= NOTIFY_EVENTS || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let latencies = sorted(
        received
            .iter()
            .filter_map(|(n, at)| Some((at.checked_sub(*sent.get(*n)?)?) as f64 / 1000.0))
            .collect(),
    );
    println!(
        "--- upload -> notification -> function invoked ({} of {NOTIFY_EVENTS} events, one every {} ms)",
        latencies.len(),
        PACE.as_millis()
    );
    println!(
        "PutObject -> probe received S3Event           p50 {:>7.3} ms  p99 {:>7.3} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    stack.shutdown().await;
}

#[tokio::main]
async fn main() {
    let scratch = std::env::temp_dir().join(format!("woocom-s3-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    throughput(&scratch).await;
    notification_latency(&scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
}

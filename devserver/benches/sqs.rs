//! SQS (issue #14): what a developer's code sees, through `aws-sdk-sqs`
//! against an in-process stack (tests/fixtures/sqs-bench.toml), next to the
//! queue engine alone (the same `Sqs` calls without HTTP) in the same run.
//!
//! `cargo bench -p woocom-dev --bench sqs` (about a minute; loopback).
//!
//! - send → function invoked: p50 / p99 from just before `SendMessage` to
//!   the probe receiving the message (goal: p50 < 5 ms, p99 < 25 ms);
//! - messages/s through a mapping with batches of 10, from the first send
//!   of a burst to the last delivery (goal: at least 5,000/s);
//! - long poll: from calling `SendMessage` to a waiting `ReceiveMessage`
//!   (WaitTimeSeconds 10) returning the message (the send's own round trip
//!   included);
//! - baseline: the engine's send + receive + delete per second, and its
//!   long-poll wake-up, called in-process.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::Value;
use woocom_dev::manifest::Manifest;
use woocom_dev::sqs::{ReceiveRequest, SendRequest, Sqs};
use woocom_dev::{Stack, StackOptions};

#[path = "../tests/common/sdk.rs"]
mod sdk;

const LATENCY_SENDS: usize = 400;
const PACE: Duration = Duration::from_millis(3);
const BURST: usize = 20_000;
const BURST_SENDERS: usize = 8;
const POLLS: usize = 200;
const ENGINE_OPS: usize = 20_000;

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

/// Every `(body, received_us)` the probe logged.
fn deliveries(log: &std::path::Path) -> Vec<(String, u128)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let at = v["received_us"].as_u64().map_or(0, u128::from);
        for r in v["records"].as_array().into_iter().flatten() {
            out.push((r["body"].as_str().unwrap_or_default().to_owned(), at));
        }
    }
    out
}

async fn wait_for(log: &std::path::Path, prefix: &str, total: usize) -> Vec<(String, u128)> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got: Vec<(String, u128)> = deliveries(log)
            .into_iter()
            .filter(|(b, _)| b.starts_with(prefix))
            .collect();
        if got.len() >= total || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn engine_baseline() -> (f64, Vec<f64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sqs = Sqs::open(
            &woocom_dev::dynamodb::DataLocation::Memory,
            "us-east-1",
            "000000000000",
        )
        .expect("engine");
        sqs.create_queue("q", &Default::default(), Default::default())
            .expect("queue");
        let started = Instant::now();
        for i in 0..ENGINE_OPS {
            sqs.send(
                "q",
                SendRequest {
                    body: format!("m{i}"),
                    ..SendRequest::default()
                },
            )
            .expect("send");
            let got = sqs
                .receive(
                    "q",
                    ReceiveRequest {
                        max: 1,
                        visibility_timeout: None,
                        wait: Some(Duration::ZERO),
                    },
                )
                .await
                .expect("receive");
            for m in got {
                sqs.delete_message("q", m.receipt.as_deref().unwrap_or_default())
                    .expect("delete");
            }
        }
        let per_s = ENGINE_OPS as f64 / started.elapsed().as_secs_f64();
        let mut wake = Vec::new();
        for i in 0..POLLS {
            let waiter = {
                let sqs: Arc<Sqs> = sqs.clone();
                tokio::spawn(async move {
                    sqs.receive(
                        "q",
                        ReceiveRequest {
                            max: 1,
                            visibility_timeout: None,
                            wait: Some(Duration::from_secs(10)),
                        },
                    )
                    .await
                    .map(|m| (Instant::now(), m))
                })
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
            let sent = Instant::now();
            sqs.send(
                "q",
                SendRequest {
                    body: format!("w{i}"),
                    ..SendRequest::default()
                },
            )
            .expect("send");
            if let Ok(Ok((at, got))) = waiter.await {
                wake.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                for m in got {
                    let _ = sqs.delete_message("q", m.receipt.as_deref().unwrap_or_default());
                }
            }
        }
        (per_s, wake)
    })
}

fn main() {
    let (engine_per_s, engine_wake) = engine_baseline();
    let engine_wake = sorted(engine_wake);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("woocom-sqs-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("sqs.log");
        let mut m = Manifest::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqs-bench.toml"),
        )
        .expect("manifest");
        if let Some(f) = m.functions.get_mut("consumer") {
            f.env.insert("PROBE_SQS_LOG".into(), log.display().to_string());
        }
        let stack = Stack::start(StackOptions::new(m).free_ports().quiet_build())
            .await
            .expect("stack");
        let sqs = aws_sdk_sqs::Client::new(&sdk::config(&stack.urls().aws).await);
        let url = |name: &str| format!("{}/000000000000/{name}", stack.urls().aws);

        // Warm the function's instances.
        for i in 0..20 {
            sqs.send_message().queue_url(url("bench")).message_body(format!("warm-{i}")).send().await.expect("send");
        }
        wait_for(&log, "warm-", 20).await;

        // Send -> invoked.
        let mut sent_at = std::collections::HashMap::new();
        for i in 0..LATENCY_SENDS {
            let body = format!("lat-{i}");
            sent_at.insert(body.clone(), now_us());
            sqs.send_message().queue_url(url("bench")).message_body(body).send().await.expect("send");
            tokio::time::sleep(PACE).await;
        }
        let got = wait_for(&log, "lat-", LATENCY_SENDS).await;
        let latency = sorted(
            got.iter()
                .filter_map(|(b, at)| sent_at.get(b).map(|s| (*at as f64 - *s as f64) / 1000.0))
                .collect(),
        );

        // Burst through the mapping.
        let started = Instant::now();
        let per_sender = BURST / BURST_SENDERS;
        let mut senders = Vec::new();
        for s in 0..BURST_SENDERS {
            let sqs = sqs.clone();
            let q = url("bench");
            senders.push(tokio::spawn(async move {
                for chunk in 0..per_sender / 10 {
                    let entries: Vec<SendMessageBatchRequestEntry> = (0..10)
                        .map(|i| {
                            SendMessageBatchRequestEntry::builder()
                                .id(format!("e{i}"))
                                .message_body(format!("burst-{s}-{chunk}-{i}"))
                                .build()
                                .expect("entry")
                        })
                        .collect();
                    sqs.send_message_batch().queue_url(&q).set_entries(Some(entries)).send().await.expect("batch");
                }
            }));
        }
        for s in senders {
            let _ = s.await;
        }
        let sent_in = started.elapsed();
        let burst = wait_for(&log, "burst-", BURST).await;
        let delivered_in = started.elapsed();

        // Long poll wake-up through the SDK.
        let mut wake = Vec::new();
        for i in 0..POLLS {
            let waiter = {
                let sqs = sqs.clone();
                let q = url("poll");
                tokio::spawn(async move {
                    let got = sqs.receive_message().queue_url(&q).wait_time_seconds(10).send().await;
                    (Instant::now(), got)
                })
            };
            tokio::time::sleep(Duration::from_millis(5)).await;
            let sent = Instant::now();
            sqs.send_message().queue_url(url("poll")).message_body(format!("p{i}")).send().await.expect("send");
            if let Ok((at, Ok(got))) = waiter.await {
                wake.push(at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
                for m in got.messages() {
                    let _ = sqs.delete_message().queue_url(url("poll")).receipt_handle(m.receipt_handle().unwrap_or_default()).send().await;
                }
            }
        }
        let wake = sorted(wake);

        println!("SQS (in-process stack, aws-sdk-sqs over loopback, logs as configured)");
        println!(
            "  send -> function invoked   p50 {:.2} ms  p99 {:.2} ms  ({} messages, goal p50 < 5, p99 < 25)",
            percentile(&latency, 0.5),
            percentile(&latency, 0.99),
            latency.len()
        );
        println!(
            "  mapping, batch 10          {:.0} messages/s delivered ({} of {BURST} in {:.2} s; sent in {:.2} s; goal >= 5,000/s)",
            burst.len() as f64 / delivered_in.as_secs_f64(),
            burst.len(),
            delivered_in.as_secs_f64(),
            sent_in.as_secs_f64()
        );
        println!(
            "  long poll wake-up (SDK)    p50 {:.2} ms  p99 {:.2} ms  ({} polls)",
            percentile(&wake, 0.5),
            percentile(&wake, 0.99),
            wake.len()
        );
        println!("baseline, the queue engine in-process (same run)");
        println!("  send + receive + delete    {engine_per_s:.0} messages/s");
        println!(
            "  long poll wake-up          p50 {:.3} ms  p99 {:.3} ms",
            percentile(&engine_wake, 0.5),
            percentile(&engine_wake, 0.99)
        );
        stack.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

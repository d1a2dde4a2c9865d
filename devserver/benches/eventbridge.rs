//! EventBridge (issue #15): what a developer's code sees, through
//! `aws-sdk-eventbridge` against an in-process stack
//! (tests/fixtures/events-bench.toml, plus 99 rules that do not match, so
//! every event is matched against 100 rules), next to Lambda's own
//! asynchronous `Invoke` of the same function in the same run.
//!
//! `cargo bench -p woocom-dev --bench eventbridge` (about half a minute;
//! loopback).
//!
//! - PutEvents → function invoked: p50 / p99 from just before `PutEvents`
//!   to the probe receiving the event (goal: p50 < 5 ms);
//! - PutEvents accepted: entries/s with 8 senders of 10-entry requests;
//! - baseline: `Invoke` with `InvocationType: Event` → function invoked,
//!   the same function and pacing.
//!
//! Pattern matching alone is measured by
//! `cargo bench -p woocom-event-pattern`.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{Value, json};
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

#[path = "../tests/common/sdk.rs"]
mod sdk;

const LATENCY_EVENTS: usize = 400;
const PACE: Duration = Duration::from_millis(3);
const BURST_REQUESTS: usize = 1_000;
const BURST_SENDERS: usize = 8;
const EXTRA_RULES: usize = 99;

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

/// Every `(tag, received_us)` the probe logged: the event's `detail.tag`,
/// or the `tag` of a direct invocation's payload.
fn received(log: &std::path::Path) -> Vec<(String, u128)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| {
            let tag = v["event"]["detail"]["tag"].as_str()?.to_owned();
            Some((tag, v["received_us"].as_u64().map_or(0, u128::from)))
        })
        .collect()
}

async fn wait_for(log: &std::path::Path, prefix: &str, total: usize) -> Vec<(String, u128)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got: Vec<(String, u128)> = received(log)
            .into_iter()
            .filter(|(t, _)| t.starts_with(prefix))
            .collect();
        if got.len() >= total || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event(tag: &str, n: usize) -> Value {
    json!({ "tag": tag, "n": n, "order": { "id": format!("o-{n}"), "total": n % 500 } })
}

fn entry(tag: &str, n: usize) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name("bench")
        .source("bench")
        .detail_type("Tick")
        .detail(event(tag, n).to_string())
        .build()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("woocom-events-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("events.log");
        let mut m = Manifest::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/events-bench.toml"),
        )
        .expect("manifest");
        if let Some(f) = m.functions.get_mut("listener") {
            f.env
                .insert("PROBE_EVENTS_LOG".into(), log.display().to_string());
        }
        let stack = Stack::start(StackOptions::new(m).free_ports().quiet_build())
            .await
            .expect("stack");
        let config = sdk::config(&stack.urls().aws).await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let lambda = aws_sdk_lambda::Client::new(&config);

        // 99 rules that do not match the bench's events, on the same bus.
        for i in 0..EXTRA_RULES {
            let pattern = match i % 4 {
                0 => json!({ "source": [format!("other-{i}")] }),
                1 => json!({ "source": ["bench"], "detail-type": [format!("Other{i}")] }),
                2 => json!({ "source": [{ "prefix": "bench" }], "detail": { "order": { "total": [{ "numeric": [">", 1000 + i] }] } } }),
                _ => json!({ "detail": { "missing": [{ "exists": true }], "n": [{ "anything-but": [i] }] } }),
            };
            events
                .put_rule()
                .event_bus_name("bench")
                .name(format!("other-{i}"))
                .event_pattern(pattern.to_string())
                .send()
                .await
                .expect("rule");
        }

        // Warm the function's instances.
        for i in 0..20 {
            events.put_events().entries(entry("warm", i)).send().await.expect("put");
        }
        wait_for(&log, "warm", 20).await;

        // PutEvents -> invoked.
        let mut sent_at = std::collections::HashMap::new();
        for i in 0..LATENCY_EVENTS {
            let tag = format!("lat-{i}");
            sent_at.insert(tag.clone(), now_us());
            events.put_events().entries(entry(&tag, i)).send().await.expect("put");
            tokio::time::sleep(PACE).await;
        }
        let got = wait_for(&log, "lat-", LATENCY_EVENTS).await;
        let latency = sorted(
            got.iter()
                .filter_map(|(t, at)| sent_at.get(t).map(|s| (*at as f64 - *s as f64) / 1000.0))
                .collect(),
        );

        // Baseline: Lambda's own asynchronous Invoke, same function, same pacing.
        let mut invoked_at = std::collections::HashMap::new();
        for i in 0..LATENCY_EVENTS {
            let tag = format!("inv-{i}");
            let payload = json!({
                "version": "0", "id": tag, "source": "bench", "detail-type": "Tick",
                "account": "000000000000", "region": "us-east-1", "time": "2026-12-05T00:00:00Z",
                "resources": [], "detail": event(&tag, i),
            });
            invoked_at.insert(tag, now_us());
            lambda
                .invoke()
                .function_name("listener")
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                .send()
                .await
                .expect("invoke");
            tokio::time::sleep(PACE).await;
        }
        let got = wait_for(&log, "inv-", LATENCY_EVENTS).await;
        let baseline = sorted(
            got.iter()
                .filter_map(|(t, at)| invoked_at.get(t).map(|s| (*at as f64 - *s as f64) / 1000.0))
                .collect(),
        );

        // PutEvents accepted per second (deliveries go on in the background).
        let started = Instant::now();
        let mut senders = Vec::new();
        for s in 0..BURST_SENDERS {
            let events = events.clone();
            senders.push(tokio::spawn(async move {
                let mut accepted = 0usize;
                for r in 0..BURST_REQUESTS / BURST_SENDERS {
                    let entries: Vec<PutEventsRequestEntry> = (0..10)
                        .map(|i| {
                            PutEventsRequestEntry::builder()
                                .event_bus_name("bench")
                                .source("burst")
                                .detail_type("Tick")
                                .detail(event("burst", s * 100_000 + r * 10 + i).to_string())
                                .build()
                        })
                        .collect();
                    let out = events
                        .put_events()
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .expect("put");
                    accepted += 10 - usize::try_from(out.failed_entry_count()).unwrap_or(10);
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for s in senders {
            accepted += s.await.unwrap_or(0);
        }
        let burst_s = started.elapsed().as_secs_f64();

        println!("EventBridge (in-process stack, aws-sdk-eventbridge over loopback, 100 rules on the bus)");
        println!(
            "  PutEvents -> function invoked   p50 {:.2} ms  p99 {:.2} ms  ({} events, goal p50 < 5)",
            percentile(&latency, 0.5),
            percentile(&latency, 0.99),
            latency.len()
        );
        println!(
            "  PutEvents accepted              {:.0} entries/s ({accepted} in {burst_s:.2} s, {BURST_SENDERS} senders, 10 per request)",
            accepted as f64 / burst_s
        );
        println!("baseline, Lambda's asynchronous Invoke of the same function (same run)");
        println!(
            "  Invoke (Event) -> invoked       p50 {:.2} ms  p99 {:.2} ms  ({} invocations)",
            percentile(&baseline, 0.5),
            percentile(&baseline, 0.99),
            baseline.len()
        );
        stack.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

//! Stream delivery (issue #6): sustained writes to a streamed table with one
//! subscribed function (the probe, which appends each batch it gets to a
//! file with the time it got it), against the engine's raw stream read rate
//! measured in the same run.
//!
//! `cargo bench -p woocom-dev --bench streams` (under a minute; loopback).
//! Prints write-to-invoke latency p50/p99 (from just before the PutItem is
//! sent to the function receiving its record), records/s delivered, and the
//! engine's GetRecords rate through its library API.
//!
//! A second phase writes a burst with BatchWriteItem (25 items a call,
//! several writers, no pause) and reports the records/s delivered in
//! batches of 100, from the first write to the last delivery.
//!
//! Targets (issue #6): p50 under 5 ms and p99 under 25 ms with no batching
//! window (AWS polls each shard about 4 times a second, so its typical delay
//! is hundreds of ms); at least 5,000 records/s delivered with batches of
//! 100.

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use woocom_dev::manifest::Manifest;
use woocom_dev::{Stack, StackOptions};

const WRITERS: usize = 4;
/// The burst phase: items written with BatchWriteItem, by how many writers.
const BURST_ITEMS: usize = 20_000;
const BURST_WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 1000;
/// Pause between one writer's writes: a sustained rate, not a burst.
const PACE: Duration = Duration::from_millis(2);

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

#[path = "../tests/common/sdk.rs"]
mod sdk;

async fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk::config(endpoint).await)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// Waits (at most two minutes) until the function has logged `total`
/// records whose id starts with `prefix`; returns records and batches seen.
async fn wait_for(log: &std::path::Path, prefix: char, total: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut delivered = 0usize;
        let mut batches = 0usize;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let n = v["records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    r["dynamodb"]["Keys"]["id"]["S"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(prefix))
                })
                .count();
            if n > 0 {
                batches += 1;
                delivered += n;
            }
        }
        if delivered >= total || Instant::now() > deadline {
            return (delivered, batches);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let log =
        std::env::temp_dir().join(format!("woocom-streams-bench-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/streams-bench.toml");
    let mut manifest = Manifest::load(&path).expect("bench manifest");
    for f in manifest.functions.values_mut() {
        f.env
            .insert("PROBE_STREAM_LOG".into(), log.display().to_string());
    }
    let stack = Stack::start(StackOptions::new(manifest).free_ports().quiet_build())
        .await
        .expect("stack starts");
    let endpoint = stack.urls().aws.clone();

    // Warm up: the function's first instance starts on the first batch.
    let db = client(&endpoint).await;
    db.put_item()
        .table_name("events")
        .item("id", AttributeValue::S("warm-up".into()))
        .item("t0", AttributeValue::N(now_us().to_string()))
        .send()
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let total = WRITERS * WRITES_PER_WRITER;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = client(&endpoint).await;
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES_PER_WRITER {
                db.put_item()
                    .table_name("events")
                    .item("id", AttributeValue::S(format!("w{w}-{i}")))
                    .item("t0", AttributeValue::N(now_us().to_string()))
                    .send()
                    .await
                    .expect("put");
                tokio::time::sleep(PACE).await;
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let write_time = started.elapsed();

    // Wait for every record to be delivered.
    let mut latencies: Vec<f64> = Vec::with_capacity(total);
    let mut batches;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        latencies.clear();
        batches = 0;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let received = v["received_us"].as_f64().unwrap_or(0.0);
            batches += 1;
            for r in v["records"].as_array().into_iter().flatten() {
                let id = r["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap_or("");
                if !id.starts_with('w') || id == "warm-up" {
                    continue;
                }
                let t0: f64 = r["dynamodb"]["NewImage"]["t0"]["N"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(received);
                latencies.push((received - t0) / 1000.0);
            }
        }
        if latencies.len() >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivery_time = started.elapsed();
    latencies.sort_by(f64::total_cmp);

    // Burst through the endpoint: as fast as the writers go, 25 items per
    // BatchWriteItem. Delivery can only be as fast as these writes.
    let burst_started = Instant::now();
    let mut writers = Vec::new();
    let per_writer = BURST_ITEMS / BURST_WRITERS;
    for w in 0..BURST_WRITERS {
        let db = client(&endpoint).await;
        writers.push(tokio::spawn(async move {
            for chunk in (0..per_writer).collect::<Vec<_>>().chunks(25) {
                let requests = chunk
                    .iter()
                    .map(|i| {
                        let put = aws_sdk_dynamodb::types::PutRequest::builder()
                            .item("id", AttributeValue::S(format!("b{w}-{i}")))
                            .item("t0", AttributeValue::N(now_us().to_string()))
                            .build()
                            .expect("put request");
                        aws_sdk_dynamodb::types::WriteRequest::builder()
                            .put_request(put)
                            .build()
                    })
                    .collect::<Vec<_>>();
                let mut pending = Some(requests);
                while let Some(requests) = pending.take() {
                    let out = db
                        .batch_write_item()
                        .request_items("events", requests)
                        .send()
                        .await
                        .expect("batch write");
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get("events").cloned())
                        .filter(|r| !r.is_empty());
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("burst writer");
    }
    let burst_write_time = burst_started.elapsed();
    let burst_total = per_writer * BURST_WRITERS;
    let (burst_delivered, burst_batches) = wait_for(&log, 'b', burst_total).await;
    let burst_time = burst_started.elapsed();

    // Burst straight into the engine (its library API, one writer, then a
    // change signal per call as the endpoint gives): the writes outrun
    // delivery, so this is what the poller and the function deliver.
    let database = stack.dynamodb().database();
    let engine_started = Instant::now();
    for chunk in (0..BURST_ITEMS).collect::<Vec<_>>().chunks(25) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|i| {
                serde_json::json!({"PutRequest": {"Item": {
                    "id": {"S": format!("e-{i}")},
                    "t0": {"N": now_us().to_string()}
                }}})
            })
            .collect();
        let request = serde_json::from_value(serde_json::json!({
            "RequestItems": {"events": requests}
        }))
        .expect("request");
        database.batch_write_item(request).expect("engine write");
        stack.dynamodb().notify_change();
    }
    let engine_write_time = engine_started.elapsed();
    let (engine_delivered, engine_batches) = wait_for(&log, 'e', BURST_ITEMS).await;
    let engine_time = engine_started.elapsed();

    // The engine's raw stream read rate, same data, same run.
    let shard = dynoxide::streams::shard_id("events");
    let read_started = Instant::now();
    let mut read = 0usize;
    let mut position = 0i64;
    loop {
        let iterator = dynoxide::actions::get_shard_iterator::encode_shard_iterator(
            "events", &shard, position,
        );
        let page = database
            .get_records(dynoxide::actions::get_records::GetRecordsRequest {
                shard_iterator: iterator,
                limit: Some(1000),
            })
            .expect("engine GetRecords");
        let Some(last) = page.records.last() else {
            break;
        };
        position =
            woocom_dev::event_source_mapping::stored_sequence(&last.dynamodb.sequence_number)
                .expect("sequence number");
        read += page.records.len();
    }
    let read_time = read_started.elapsed();

    println!(
        "stream delivery: {total} writes from {WRITERS} writers ({PACE:?} pause each), batch size 100, no window"
    );
    println!(
        "  writes: {:.0}/s over {:.2} s",
        total as f64 / write_time.as_secs_f64(),
        write_time.as_secs_f64()
    );
    println!(
        "  delivered: {} of {total} records in {batches} batches, {:.0} records/s (first write to last delivery)",
        latencies.len(),
        latencies.len() as f64 / delivery_time.as_secs_f64()
    );
    println!(
        "  write-to-invoke latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "burst: {burst_total} items by BatchWriteItem from {BURST_WRITERS} writers, written at {:.0} items/s",
        burst_total as f64 / burst_write_time.as_secs_f64()
    );
    println!(
        "  delivered: {burst_delivered} of {burst_total} records in {burst_batches} batches, {:.0} records/s (first write to last delivery: bound by the writes)",
        burst_delivered as f64 / burst_time.as_secs_f64()
    );
    println!(
        "engine burst: {BURST_ITEMS} items written into the engine directly at {:.0} items/s",
        BURST_ITEMS as f64 / engine_write_time.as_secs_f64()
    );
    println!(
        "  delivered: {engine_delivered} of {BURST_ITEMS} records in {engine_batches} batches, {:.0} records/s (first write to last delivery; target >= 5,000)",
        engine_delivered as f64 / engine_time.as_secs_f64()
    );
    println!(
        "  baseline, engine GetRecords (library API, 1000/page): {read} records in {:.1} ms, {:.0} records/s",
        read_time.as_secs_f64() * 1000.0,
        read as f64 / read_time.as_secs_f64()
    );
    stack.shutdown().await;
    let _ = std::fs::remove_file(&log);
}

//! DynamoDB Streams delivered to functions (issue #6): writes through
//! `aws-sdk-dynamodb`, delivery to the probe function, which appends every
//! batch it gets to a file and fails as the records' `fail` attribute says.

#[path = "../dynamodb_support/mod.rs"]
mod dynamodb_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use dynamodb_support::{TempDir, dynamodb, golden, http, manifest};
use serde_json::Value;
use woocom_dev::{Stack, StackOptions};

mod control;
mod delivery;
mod failures;
mod reload;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// The streams fixture with every function logging into `dir`.
async fn stack(dir: &Path) -> Stack {
    let mut m = manifest("streams.toml");
    for (name, f) in m.functions.iter_mut() {
        f.env.insert(
            "PROBE_STREAM_LOG".into(),
            dir.join(format!("{name}.jsonl")).display().to_string(),
        );
    }
    Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts")
}

/// The batches a function got, in order. A line still being written (no
/// newline yet) is left for the next look; any other line that does not
/// parse fails the test at once: skipping it made a garbled log (instances
/// of one function interleaving their lines) look like batches never
/// delivered, a 30 s timeout far from the cause.
fn batches(dir: &Path, function: &str) -> Vec<Vec<Value>> {
    let text = std::fs::read_to_string(dir.join(format!("{function}.jsonl"))).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("{function}'s log has a garbled line ({e}): {l}"))
        })
        .map(|v| v["records"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Waits until `done` holds for the function's batches.
async fn wait_for(
    dir: &Path,
    function: &str,
    what: &str,
    done: impl Fn(&[Vec<Value>]) -> bool,
) -> Vec<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = batches(dir, function);
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: timed out; {function} got {got:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn records_of(batches: &[Vec<Value>], table: &str) -> Vec<Value> {
    batches
        .iter()
        .flatten()
        .filter(|r| {
            r["eventSourceARN"]
                .as_str()
                .is_some_and(|a| a.contains(&format!(":table/{table}/stream/")))
        })
        .cloned()
        .collect()
}

fn id_of(r: &Value) -> String {
    r["dynamodb"]["Keys"]["id"]["S"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn get_json(url: String) -> Value {
    let response = http().get(url).send().await.expect("endpoint answers");
    serde_json::from_str(&response.text().await.expect("body")).expect("JSON")
}

/// The mapping's line of `/_woocom/streams/status` once it has processed
/// every record (checkpoint at the newest record). A function logs a batch
/// before it answers, and the checkpoint moves after the answer, so seeing
/// the records in the log does not mean the checkpoint moved yet.
async fn settled(aws: &str, subscription: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(format!("{aws}/_woocom/streams/status")).await;
        let mapping = status["subscriptions"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["name"] == subscription))
            .cloned()
            .unwrap_or_else(|| panic!("no mapping {subscription}: {status:#}"));
        if mapping["lag_records"] == 0
            && !mapping["checkpoint"].is_null()
            && mapping["checkpoint"] == mapping["latest_sequence_number"]
        {
            return mapping;
        }
        assert!(
            Instant::now() < deadline,
            "{subscription} never caught up: {mapping:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put(db: &aws_sdk_dynamodb::Client, table: &str, item: &[(&str, &str)]) {
    let mut request = db.put_item().table_name(table);
    for (k, v) in item {
        request = request.item(*k, s(v));
    }
    request.send().await.expect("put");
}

fn tx_put(table: &str, id: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .item("id", s(id))
                .build()
                .expect("put"),
        )
        .build()
}

fn tx_items(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    items: &[(&str, Option<&str>)],
) -> aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder {
    let mut request = db.transact_write_items();
    for (id, fail) in items {
        let mut put = Put::builder().table_name(table).item("id", s(id));
        if let Some(f) = fail {
            put = put.item("fail", s(f));
        }
        request = request.transact_items(
            TransactWriteItem::builder()
                .put(put.build().expect("put"))
                .build(),
        );
    }
    request
}

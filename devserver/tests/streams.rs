//! DynamoDB Streams delivered to functions (issue #6): writes through
//! `aws-sdk-dynamodb`, delivery to the probe function, which appends every
//! batch it gets to a file and fails as the records' `fail` attribute says.

mod dynamodb_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use dynamodb_support::{TempDir, dynamodb, golden, http, manifest};
use serde_json::Value;
use woocom_dev::{Stack, StackOptions};

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

#[tokio::test]
async fn insert_modify_remove_carry_the_images_of_each_view_type() {
    let dir = TempDir::new("streams-views");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    for table in ["keys_only", "new_image", "old_image"] {
        put(&db, table, &[("id", "a"), ("v", "1")]).await;
        put(&db, table, &[("id", "a"), ("v", "2")]).await;
        db.delete_item()
            .table_name(table)
            .key("id", s("a"))
            .send()
            .await
            .expect("delete");
    }
    put(&db, "both", &[("id", "a"), ("sk", "1"), ("v", "1")]).await;
    // The same item again changes nothing: no record. (Only checked with
    // NEW_AND_OLD_IMAGES: the engine records a MODIFY for a no-op write and
    // other view types keep too little to tell.)
    put(&db, "both", &[("id", "a"), ("sk", "1"), ("v", "1")]).await;
    put(&db, "both", &[("id", "a"), ("sk", "1"), ("v", "2")]).await;
    db.delete_item()
        .table_name("both")
        .key("id", s("a"))
        .key("sk", s("1"))
        .send()
        .await
        .expect("delete");

    let got = wait_for(&dir.0, "sink", "12 records", |b| {
        b.iter().map(Vec::len).sum::<usize>() >= 12
    })
    .await;
    let has = |r: &Value, image: &str| r["dynamodb"].get(image).is_some();
    for table in ["keys_only", "new_image", "old_image", "both"] {
        let records = records_of(&got, table);
        let names: Vec<&str> = records
            .iter()
            .map(|r| r["eventName"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["INSERT", "MODIFY", "REMOVE"],
            "{table}: {records:#?}"
        );
        for r in &records {
            assert_eq!(r["eventSource"], "aws:dynamodb");
            assert_eq!(r["eventVersion"], "1.1");
            assert_eq!(r["awsRegion"], "eu-west-1");
            assert!(r.get("userIdentity").is_none(), "a user's delete has none");
            assert!(r["dynamodb"]["ApproximateCreationDateTime"].is_number());
            assert!(r["dynamodb"]["SizeBytes"].is_number());
            let seq = r["dynamodb"]["SequenceNumber"].as_str().expect("seq");
            assert!((21..=40).contains(&seq.len()), "{seq}");
            assert_eq!(r["dynamodb"]["Keys"]["id"]["S"], "a");
        }
        let (insert, modify, remove) = (&records[0], &records[1], &records[2]);
        if table == "both" {
            golden::assert_matches("example-dynamodb-stream-insert.json", insert);
            golden::assert_matches("example-dynamodb-stream-modify.json", modify);
        }
        let view = modify["dynamodb"]["StreamViewType"]
            .as_str()
            .unwrap_or_default();
        match table {
            "keys_only" => {
                assert_eq!(view, "KEYS_ONLY");
                assert!(!has(modify, "NewImage") && !has(modify, "OldImage"));
            }
            "new_image" => {
                assert_eq!(view, "NEW_IMAGE");
                assert_eq!(modify["dynamodb"]["NewImage"]["v"]["S"], "2");
                assert!(!has(modify, "OldImage") && !has(remove, "NewImage"));
            }
            "old_image" => {
                assert_eq!(view, "OLD_IMAGE");
                assert_eq!(modify["dynamodb"]["OldImage"]["v"]["S"], "1");
                assert!(!has(insert, "OldImage") && !has(modify, "NewImage"));
            }
            _ => {
                assert_eq!(view, "NEW_AND_OLD_IMAGES");
                assert!(has(insert, "NewImage") && !has(insert, "OldImage"));
                assert_eq!(modify["dynamodb"]["OldImage"]["v"]["S"], "1");
                assert_eq!(modify["dynamodb"]["NewImage"]["v"]["S"], "2");
                assert!(has(remove, "OldImage") && !has(remove, "NewImage"));
                assert_eq!(modify["dynamodb"]["Keys"]["sk"]["S"], "1");
            }
        }
    }
    // Every batch deserializes as aws_lambda_events' DynamoDB event.
    for batch in &got {
        let event = serde_json::json!({ "Records": batch });
        woocom_dev::event_source_mapping::event::parse_event(event.to_string().as_bytes())
            .expect("aws_lambda_events::dynamodb::Event");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn concurrent_writers_are_delivered_once_each_in_order() {
    let dir = TempDir::new("streams-order");
    let stack = stack(&dir.0).await;
    let writers = 4;
    let per_writer = 40;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let db = dynamodb(&stack.urls().aws).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                // Every writer updates one shared item and one of its own.
                for id in ["shared".to_owned(), format!("w{w}")] {
                    db.put_item()
                        .table_name("new_image")
                        .item("id", s(&id))
                        .item("v", AttributeValue::N(i.to_string()))
                        .item("writer", AttributeValue::N(w.to_string()))
                        .send()
                        .await
                        .expect("put");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let total = writers * per_writer * 2;
    let got = wait_for(&dir.0, "sink", "every write", |b| {
        records_of(b, "new_image").len() >= total
    })
    .await;
    // Caught up: a duplicate would already be in the log.
    settled(&stack.urls().aws, "sink-new_image").await;
    let records = records_of(&batches(&dir.0, "sink"), "new_image");
    assert_eq!(records.len(), total, "exactly once: {}", got.len());
    let seqs: Vec<u128> = records
        .iter()
        .map(|r| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("seq")
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "shard order");
    // Per writer's own item, values arrive in write order.
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let id = id_of(r);
        if id == "shared" {
            continue;
        }
        let v: i64 = r["dynamodb"]["NewImage"]["v"]["N"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("v");
        if let Some(prev) = last.insert(id.clone(), v) {
            assert_eq!(v, prev + 1, "{id}");
        }
    }
    stack.shutdown().await;
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

#[tokio::test]
async fn a_transaction_yields_one_record_per_item_and_a_cancelled_one_none() {
    let dir = TempDir::new("streams-tx");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    db.transact_write_items()
        .transact_items(tx_put("new_image", "t1"))
        .transact_items(tx_put("new_image", "t2"))
        .transact_items(tx_put("keys_only", "t3"))
        .send()
        .await
        .expect("transaction");
    let cancelled = db
        .transact_write_items()
        .transact_items(tx_put("new_image", "c1"))
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("new_image")
                        .item("id", s("t1"))
                        .condition_expression("attribute_not_exists(id)")
                        .build()
                        .expect("put"),
                )
                .build(),
        )
        .send()
        .await;
    assert!(cancelled.is_err(), "the condition fails");
    put(&db, "new_image", &[("id", "after")]).await;
    let got = wait_for(&dir.0, "sink", "4 records", |b| {
        records_of(b, "new_image").len() + records_of(b, "keys_only").len() >= 4
    })
    .await;
    // Caught up: a record of the cancelled transaction would be in the log.
    for mapping in ["sink-new_image", "sink-keys_only"] {
        settled(&stack.urls().aws, mapping).await;
    }
    let ids: Vec<String> = records_of(&batches(&dir.0, "sink"), "new_image")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, ["t1", "t2", "after"], "{got:#?}");
    assert_eq!(records_of(&got, "keys_only").len(), 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_failed_batch_is_retried_and_blocks_later_records() {
    let dir = TempDir::new("streams-retry");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "retried", &[("id", "a"), ("fail", "once")]).await;
    put(&db, "retried", &[("id", "b")]).await;
    let got = wait_for(&dir.0, "retry", "a twice, then b", |b| {
        b.iter().flatten().any(|r| id_of(r) == "b")
    })
    .await;
    let ids: Vec<String> = got.iter().flatten().map(id_of).collect();
    // a failed once, was retried, and b never overtook it (one record per
    // batch: with both in one batch, b would be in a's failed batch).
    assert_eq!(ids.iter().filter(|i| *i == "a").count(), 2, "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("b"), "{ids:?}");
    let first_b = ids.iter().position(|i| i == "b").expect("b");
    assert!(ids[..first_b].iter().filter(|i| *i == "a").count() == 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn exhausted_retries_go_to_the_dead_letter_queue_with_awss_failure_record_and_redrive() {
    let dir = TempDir::new("streams-dlq");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "dead", &[("id", "poison"), ("fail", "always")]).await;
    put(&db, "dead", &[("id", "next")]).await;
    let got = wait_for(&dir.0, "dlq", "next delivered", |b| {
        b.iter().flatten().any(|r| id_of(r) == "next")
    })
    .await;
    let poison_invocations = got
        .iter()
        .filter(|b| b.iter().any(|r| id_of(r) == "poison"))
        .count();
    assert_eq!(
        poison_invocations, 2,
        "1 attempt + maximum_retry_attempts 1"
    );

    let aws = &stack.urls().aws;
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{list:#}");
    let id = entries[0]["id"].as_str().expect("id");
    let entry = get_json(format!("{aws}/_woocom/streams/dlq/{id}")).await;
    let failure = &entry["failure"];
    assert_eq!(
        failure["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(
        failure["requestContext"]["functionArn"],
        "arn:aws:lambda:eu-west-1:000000000000:function:dlq"
    );
    assert_eq!(failure["responseContext"]["statusCode"], 200);
    assert_eq!(failure["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
    assert_eq!(failure["version"], "1.0");
    assert!(
        failure["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let info = &failure["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert!(
        info["shardId"]
            .as_str()
            .is_some_and(|s| s.starts_with("shardId-"))
    );
    assert!(
        info["streamArn"]
            .as_str()
            .is_some_and(|a| a.contains(":table/dead/stream/"))
    );
    assert!(info["approximateArrivalOfFirstRecord"].is_string());
    assert_eq!(entry["records"][0]["dynamodb"]["Keys"]["id"]["S"], "poison");
    assert_eq!(entry["queue"], "dead-failures");

    // Redrive: still poison, so the entry stays.
    let redriven: Value = http()
        .post(format!("{aws}/_woocom/streams/dlq/{id}/redrive"))
        .send()
        .await
        .expect("redrive")
        .json()
        .await
        .expect("json");
    assert_eq!(redriven["succeeded"], false, "{redriven:#}");
    assert_eq!(redriven["functionError"], "Unhandled");
    let missing = http()
        .post(format!("{aws}/_woocom/streams/dlq/nope/redrive"))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_redriven_entry_that_succeeds_leaves_the_queue() {
    let dir = TempDir::new("streams-redrive");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // `bisected` allows no retries: a record that fails once goes straight
    // to the queue, and succeeds when redriven.
    put(&db, "bisected", &[("id", "x"), ("fail", "once")]).await;
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if let Some(id) = list["entries"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no DLQ entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let redriven: Value = http()
        .post(format!("{aws}/_woocom/streams/dlq/{id}/redrive"))
        .send()
        .await
        .expect("redrive")
        .json()
        .await
        .expect("json");
    assert_eq!(redriven["succeeded"], true, "{redriven:#}");
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(0));
    stack.shutdown().await;
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

#[tokio::test]
async fn bisect_isolates_the_poison_record() {
    let dir = TempDir::new("streams-bisect");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // One transaction: the four records reach the shard together.
    tx_items(
        &db,
        "bisected",
        &[("a", None), ("b", Some("always")), ("c", None), ("d", None)],
    )
    .send()
    .await
    .expect("transaction");
    let got = wait_for(&dir.0, "bisect", "c and d delivered", |b| {
        b.iter()
            .any(|batch| batch.len() == 2 && id_of(&batch[1]) == "d")
    })
    .await;
    let shapes: Vec<Vec<String>> = got.iter().map(|b| b.iter().map(id_of).collect()).collect();
    let items = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    assert_eq!(
        shapes,
        [
            items(&["a", "b", "c", "d"]),
            items(&["a", "b"]),
            items(&["a"]),
            items(&["b"]),
            items(&["c", "d"]),
        ],
        "halves, then the poison record alone"
    );
    let aws = &stack.urls().aws;
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{list:#}");
    assert_eq!(entries[0]["batchSize"], 1);
    assert_eq!(entries[0]["condition"], "RetryAttemptsExhausted");
    let entry = get_json(format!(
        "{aws}/_woocom/streams/dlq/{}",
        entries[0]["id"].as_str().unwrap_or_default()
    ))
    .await;
    assert_eq!(entry["records"][0]["dynamodb"]["Keys"]["id"]["S"], "b");
    stack.shutdown().await;
}

#[tokio::test]
async fn partial_batch_failure_resumes_from_the_first_failed_record() {
    let dir = TempDir::new("streams-partial");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    tx_items(
        &db,
        "partial",
        &[("a", None), ("b", Some("partial")), ("c", None)],
    )
    .send()
    .await
    .expect("transaction");
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if list["entries"].as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(Instant::now() < deadline, "no DLQ entry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let got = batches(&dir.0, "partial");
    let shapes: Vec<Vec<String>> = got.iter().map(|b| b.iter().map(id_of).collect()).collect();
    assert_eq!(
        shapes,
        [vec!["a", "b", "c"], vec!["b", "c"]],
        "resumes at b"
    );
    // The shard moves on.
    put(&db, "partial", &[("id", "d")]).await;
    wait_for(&dir.0, "partial", "d delivered", |b| {
        b.last()
            .is_some_and(|batch| batch.len() == 1 && id_of(&batch[0]) == "d")
    })
    .await;
    let entry = get_json(format!(
        "{}/_woocom/streams/dlq/{}",
        stack.urls().aws,
        list["entries"][0]["id"].as_str().unwrap_or_default()
    ))
    .await;
    let failure = &entry["failure"];
    assert_eq!(failure["DDBStreamBatchInfo"]["batchSize"], 2);
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert!(
        failure["responseContext"].get("functionError").is_none(),
        "a partial failure is not a function error: {failure:#}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn filters_drop_records_that_match_no_pattern() {
    let dir = TempDir::new("streams-filter");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "filtered", &[("id", "1"), ("status", "DRAFT")]).await;
    put(&db, "filtered", &[("id", "2"), ("status", "PLACED")]).await;
    put(&db, "filtered", &[("id", "2"), ("status", "SHIPPED")]).await;
    db.delete_item()
        .table_name("filtered")
        .key("id", s("1"))
        .send()
        .await
        .expect("delete");
    wait_for(&dir.0, "filter", "2 records", |b| {
        b.iter().map(Vec::len).sum::<usize>() >= 2
    })
    .await;
    let mapping = settled(&stack.urls().aws, "filter-filtered").await;
    let got = batches(&dir.0, "filter");
    let seen: Vec<(String, String)> = got
        .iter()
        .flatten()
        .map(|r| {
            (
                r["eventName"].as_str().unwrap_or_default().to_owned(),
                id_of(r),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("INSERT".to_owned(), "2".to_owned()),
            ("REMOVE".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(mapping["records_filtered"], 2, "{mapping:#}");
    stack.shutdown().await;
}

#[tokio::test]
async fn records_past_their_maximum_age_are_discarded_with_record_age_exceeded() {
    let dir = TempDir::new("streams-age");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // Retries are unlimited: only the age limit (60 s, run 1000x fast)
    // unblocks the shard.
    put(&db, "aged", &[("id", "old"), ("fail", "always")]).await;
    put(&db, "aged", &[("id", "young")]).await;
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if let Some(e) = list["entries"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["queue"] == "aged-failures"))
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "nothing aged out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entry["condition"], "RecordAgeExceeded");
    stack.shutdown().await;
}

#[tokio::test]
async fn ttl_deletions_carry_the_ttl_services_user_identity() {
    let dir = TempDir::new("streams-ttl");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        - 60;
    db.put_item()
        .table_name("both")
        .item("id", s("ttl"))
        .item("sk", s("1"))
        .item("expires_at", AttributeValue::N(past.to_string()))
        .send()
        .await
        .expect("put");
    let got = wait_for(&dir.0, "sink", "TTL REMOVE", |b| {
        records_of(b, "both")
            .iter()
            .any(|r| r["eventName"] == "REMOVE")
    })
    .await;
    let remove = records_of(&got, "both")
        .into_iter()
        .find(|r| r["eventName"] == "REMOVE")
        .expect("remove");
    assert_eq!(remove["userIdentity"]["type"], "Service");
    assert_eq!(
        remove["userIdentity"]["principalId"],
        "dynamodb.amazonaws.com"
    );
    assert!(remove["dynamodb"].get("OldImage").is_some());
    stack.shutdown().await;
}

#[tokio::test]
async fn replay_delivers_a_range_again_without_moving_the_checkpoint() {
    let dir = TempDir::new("streams-replay");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    for id in ["r1", "r2", "r3"] {
        put(&db, "old_image", &[("id", id)]).await;
    }
    let got = wait_for(&dir.0, "sink", "3 records", |b| {
        records_of(b, "old_image").len() >= 3
    })
    .await;
    let records = records_of(&got, "old_image");
    let seq = |r: &Value| {
        r["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let aws = &stack.urls().aws;
    // The checkpoint moves after the last batch's answer: wait for it, so
    // the replay is what would move it.
    settled(aws, "sink-old_image").await;
    let before = get_json(format!("{aws}/_woocom/streams/status")).await;
    let response: Value = http()
        .post(format!("{aws}/_woocom/streams/replay"))
        .json(&serde_json::json!({
            "subscription": "sink-old_image",
            "from": seq(&records[1]),
            "to": seq(&records[2]),
        }))
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(response["records"], 2, "{response:#}");
    let again = records_of(&batches(&dir.0, "sink"), "old_image");
    let ids: Vec<String> = again.iter().map(id_of).collect();
    assert_eq!(ids, ["r1", "r2", "r3", "r2", "r3"]);
    let after = get_json(format!("{aws}/_woocom/streams/status")).await;
    let checkpoint = |v: &Value| {
        v["subscriptions"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["name"] == "sink-old_image"))
            .map(|m| m["checkpoint"].clone())
    };
    assert_eq!(checkpoint(&before), checkpoint(&after));
    let bad = http()
        .post(format!("{aws}/_woocom/streams/replay"))
        .json(&serde_json::json!({"subscription": "nope", "from": "1", "to": "2"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn cli_shows_status_and_the_dead_letter_queue() {
    let dir = TempDir::new("streams-cli");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "bisected", &[("id", "p"), ("fail", "always")]).await;
    let aws = stack.urls().aws.clone();
    // Run on a blocking thread: the stack serves on this test's runtime.
    let cli = |args: &[&str]| {
        let aws = aws.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_woocom-dev"))
                    .args(["streams", "--endpoint", &aws])
                    .args(&args)
                    .output()
                    .expect("woocom-dev runs");
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            })
            .await
            .expect("cli thread")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let listing = loop {
        let (ok, text) = cli(&["dlq", "list"]).await;
        assert!(ok, "{text}");
        if text.contains("bisect-failures") {
            break text;
        }
        assert!(Instant::now() < deadline, "no entry listed: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listing.contains("RetryAttemptsExhausted"), "{listing}");
    let id = listing.split_whitespace().next().expect("id").to_owned();
    let (ok, shown) = cli(&["dlq", "show", &id]).await;
    assert!(ok && shown.contains("DDBStreamBatchInfo"), "{shown}");
    let (ok, redriven) = cli(&["dlq", "redrive", &id]).await;
    assert!(!ok && redriven.contains("entry kept"), "{redriven}");
    let (ok, status) = cli(&["status"]).await;
    assert!(ok, "{status}");
    assert!(
        status.contains("bisect-bisected (bisected -> bisect)"),
        "{status}"
    );
    assert!(status.contains("1 in DLQ"), "{status}");
    stack.shutdown().await;
}

/// A stream function for the hot reload test: appends `<version> <id>` for
/// each record it gets to the file named by `RELAY_LOG`.
fn relay_source(version: &str) -> String {
    format!(
        r#"use std::io::Write;

use lambda_runtime::{{service_fn, Error, LambdaEvent}};
use serde_json::{{json, Value}};

#[tokio::main]
async fn main() -> Result<(), Error> {{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {{
        let mut lines = String::new();
        for r in event.payload["Records"].as_array().into_iter().flatten() {{
            let id = r["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap_or("?");
            lines.push_str(&format!("{version} {{id}}\n"));
        }}
        let path = std::env::var("RELAY_LOG")?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(lines.as_bytes())?;
        Ok::<Value, Error>(json!({{}}))
    }}))
    .await
}}
"#
    )
}

#[tokio::test]
async fn a_hot_reloaded_function_keeps_its_subscriptions() {
    use woocom_dev::reload::ReloadEvent;
    // A workspace of its own with one function, as the reload tests make
    // them; its builds share their target folder.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = dynamodb_support::function_workspace(
        "streams-reload",
        "relay",
        "relay-streams",
        &relay_source("v1"),
    );
    let log = dir.join("relay.log");
    std::fs::write(
        dir.join("dev.toml"),
        format!(
            r#"[stack]
name = "streams-reload"
[ports]
api = 0
websocket = 0
aws = 0

[functions.relay]
crate = "relay-streams"
env = {{ RELAY_LOG = "{}" }}

[tables.items]
partition_key = {{ name = "id" }}
stream = "NEW_IMAGE"

[[subscriptions]]
table = "items"
function = "relay"
starting_position = "TRIM_HORIZON"
"#,
            log.display()
        ),
    )
    .expect("write");
    let manifest = woocom_dev::manifest::Manifest::load(&dir.join("dev.toml")).expect("manifest");
    let mut options = StackOptions::new(manifest)
        .free_ports()
        .quiet_build()
        .watch();
    options.target_dir = Some(tmp.join("reload-target"));
    let stack = Stack::start(options).await.expect("stack starts");
    let mut events = stack.reload_events();
    let db = dynamodb(&stack.urls().aws).await;
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_line = |line: &'static str| {
        let lines = &lines;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !lines().lines().any(|l| l == line) {
                assert!(Instant::now() < deadline, "no `{line}`: {}", lines());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    put(&db, "items", &[("id", "before")]).await;
    wait_line("v1 before").await;
    std::fs::write(dir.join("relay/src/main.rs"), relay_source("v2")).expect("write");
    let reloaded = tokio::time::timeout(Duration::from_secs(300), events.recv())
        .await
        .expect("a reload event in time")
        .expect("event channel open");
    assert!(
        matches!(&reloaded, ReloadEvent::Reloaded { functions, .. } if functions == &["relay"]),
        "{reloaded:?}"
    );
    // The mapping delivers to the new binary, from where it was.
    put(&db, "items", &[("id", "after")]).await;
    wait_line("v2 after").await;
    assert_eq!(lines(), "v1 before\nv2 after\n");
    let mapping = settled(&stack.urls().aws, "relay-items").await;
    assert_eq!(mapping["records_delivered"], 2, "{mapping:#}");
    assert_eq!(mapping["function_errors"], 0, "{mapping:#}");
    stack.shutdown().await;
}

//! The DynamoDB service through the clients a shop uses: `aws-sdk-dynamodb`
//! and `aws-sdk-dynamodbstreams` against an in-process stack, plus raw HTTP
//! for what the SDKs never send (gzip bodies, hostile payloads).

mod dynamodb_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, PutRequest, ReturnValue, TransactWriteItem,
    Update, WriteRequest,
};
use dynamodb_support::{dynamodb, dynamodb_with_retries, http, stack, streams};
use serde_json::{Value, json};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Sends one raw request to the endpoint; returns status, headers and body.
async fn raw(
    endpoint: &str,
    target: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = http()
        .post(format!("{endpoint}/"))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn error_type(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("error body is JSON");
    v["__type"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn tables_from_dev_toml_exist_with_keys_indexes_streams_and_ttl() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let tables = db
        .list_tables()
        .send()
        .await
        .expect("list")
        .table_names
        .unwrap_or_default();
    for t in ["counters", "keys_only", "old_image", "orders", "products"] {
        assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
    }
    let orders = db
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .expect("describe");
    let table = orders.table.expect("table");
    assert_eq!(table.key_schema().len(), 2);
    assert_eq!(
        table.global_secondary_indexes()[0].index_name(),
        Some("by_customer")
    );
    assert_eq!(
        table.local_secondary_indexes()[0].index_name(),
        Some("by_status")
    );
    let spec = table.stream_specification.expect("stream");
    assert!(spec.stream_enabled);
    assert_eq!(
        spec.stream_view_type
            .map(|v| v.as_str().to_owned())
            .as_deref(),
        Some("NEW_AND_OLD_IMAGES")
    );
    let ttl = db
        .describe_time_to_live()
        .table_name("orders")
        .send()
        .await
        .expect("ttl");
    assert_eq!(
        ttl.time_to_live_description.and_then(|d| d.attribute_name),
        Some("expires_at".to_owned())
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn put_get_update_delete_and_conditional_writes() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("products")
        .item("sku", s("tea"))
        .item("stock", n(5))
        .item("tags", AttributeValue::Ss(vec!["green".into()]))
        .send()
        .await
        .expect("put");
    let got = db
        .get_item()
        .table_name("products")
        .key("sku", s("tea"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.item().and_then(|i| i.get("stock")), Some(&n(5)));

    // Stock never goes negative: the conditional decrement fails at 0.
    let decrement = || {
        db.update_item()
            .table_name("products")
            .key("sku", s("tea"))
            .update_expression("SET stock = stock - :q")
            .condition_expression("stock >= :q")
            .expression_attribute_values(":q", n(3))
            .return_values(ReturnValue::UpdatedNew)
            .send()
    };
    let first = decrement().await.expect("5 - 3");
    assert_eq!(first.attributes().and_then(|a| a.get("stock")), Some(&n(2)));
    let err = decrement().await.expect_err("2 - 3 refused");
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception())
    );

    // An order is placed once.
    let place = || {
        db.put_item()
            .table_name("orders")
            .item("pk", s("order#1"))
            .item("sk", s("meta"))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    place().await.expect("first placement");
    assert_eq!(
        place().await.expect_err("second").code(),
        Some("ConditionalCheckFailedException")
    );

    db.delete_item()
        .table_name("products")
        .key("sku", s("tea"))
        .send()
        .await
        .expect("delete");
    let gone = db
        .get_item()
        .table_name("products")
        .key("sku", s("tea"))
        .send()
        .await
        .expect("get");
    assert!(gone.item().is_none());
    stack.shutdown().await;
}

#[tokio::test]
async fn batch_write_batch_get_query_scan_with_pagination_and_gsi() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let writes: Vec<WriteRequest> = (0..25)
        .map(|i| {
            let put = PutRequest::builder()
                .item("pk", s("customer#7"))
                .item("sk", s(&format!("order#{i:03}")))
                .item("customer", s(if i % 2 == 0 { "even" } else { "odd" }))
                .item("placed_at", n(i))
                .item("status", s("new"))
                .build()
                .expect("put request");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for chunk in writes.chunks(25) {
        let out = db
            .batch_write_item()
            .request_items("orders", chunk.to_vec())
            .send()
            .await
            .expect("batch write");
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }

    let keys = KeysAndAttributes::builder()
        .keys(HashMap::from([
            ("pk".into(), s("customer#7")),
            ("sk".into(), s("order#001")),
        ]))
        .keys(HashMap::from([
            ("pk".into(), s("customer#7")),
            ("sk".into(), s("order#002")),
        ]))
        .build()
        .expect("keys");
    let got = db
        .batch_get_item()
        .request_items("orders", keys)
        .send()
        .await
        .expect("batch get");
    assert_eq!(
        got.responses().and_then(|r| r.get("orders")).map(Vec::len),
        Some(2)
    );

    // Query pages of 10: 10 + 10 + 5.
    let mut pages = Vec::new();
    let mut start = None;
    loop {
        let page = db
            .query()
            .table_name("orders")
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("customer#7"))
            .limit(10)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("query");
        pages.push(page.items().len());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    assert_eq!(pages.iter().sum::<usize>(), 25, "{pages:?}");
    assert!(pages.len() >= 3, "{pages:?}");

    // The GSI, sorted by its numeric sort key.
    let odd = db
        .query()
        .table_name("orders")
        .index_name("by_customer")
        .key_condition_expression("customer = :c AND placed_at > :t")
        .expression_attribute_values(":c", s("odd"))
        .expression_attribute_values(":t", n(10))
        .scan_index_forward(false)
        .send()
        .await
        .expect("gsi query");
    let times: Vec<&AttributeValue> = odd
        .items()
        .iter()
        .filter_map(|i| i.get("placed_at"))
        .collect();
    assert_eq!(
        times,
        vec![&n(23), &n(21), &n(19), &n(17), &n(15), &n(13), &n(11)]
    );

    // Scan through the SDK's paginator.
    let scanned: Vec<_> = db
        .scan()
        .table_name("orders")
        .limit(7)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("scan");
    assert_eq!(scanned.len(), 25);
    stack.shutdown().await;
}

#[tokio::test]
async fn transaction_with_a_failed_condition_is_cancelled_with_reasons() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("products")
        .item("sku", s("mug"))
        .item("stock", n(1))
        .send()
        .await
        .expect("put");
    let checkout = |qty: i64| {
        db.transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name("orders")
                            .item("pk", s(&format!("order#{qty}")))
                            .item("sk", s("meta"))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name("products")
                            .key("sku", s("mug"))
                            .update_expression("SET stock = stock - :q")
                            .condition_expression("stock >= :q")
                            .expression_attribute_values(":q", n(qty))
                            .build()
                            .expect("update"),
                    )
                    .build(),
            )
            .send()
    };
    let err = checkout(2).await.expect_err("not enough stock");
    assert_eq!(err.code(), Some("TransactionCanceledException"));
    let reasons: Vec<Option<String>> = err
        .as_service_error()
        .and_then(|e| match e {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
                Some(t.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect())
            }
            _ => None,
        })
        .expect("cancellation reasons");
    assert_eq!(
        reasons,
        vec![Some("None".into()), Some("ConditionalCheckFailed".into())]
    );
    // Nothing of the cancelled transaction was written.
    let order = db
        .get_item()
        .table_name("orders")
        .key("pk", s("order#2"))
        .key("sk", s("meta"))
        .send()
        .await
        .expect("get");
    assert!(order.item().is_none());
    checkout(1).await.expect("exactly the stock");
    db.transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("orders")
                        .key("pk", s("order#1"))
                        .key("sk", s("meta"))
                        .build()
                        .expect("delete"),
                )
                .build(),
        )
        .send()
        .await
        .expect("delete in a transaction");
    stack.shutdown().await;
}

#[tokio::test]
async fn expired_items_are_deleted_by_ttl() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let past = chrono_like_now() - 60;
    for (sk, expires) in [("old", past), ("new", past + 3600 * 24)] {
        db.put_item()
            .table_name("orders")
            .item("pk", s("ttl"))
            .item("sk", s(sk))
            .item("expires_at", n(expires))
            .send()
            .await
            .expect("put");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old = db
            .get_item()
            .table_name("orders")
            .key("pk", s("ttl"))
            .key("sk", s("old"))
            .send()
            .await
            .expect("get");
        if old.item().is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired item still there after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new = db
        .get_item()
        .table_name("orders")
        .key("pk", s("ttl"))
        .key("sk", s("new"))
        .send()
        .await
        .expect("get");
    assert!(new.item().is_some(), "an item that has not expired stays");
    stack.shutdown().await;
}

fn chrono_like_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Reads every record of a table's stream from TRIM_HORIZON.
async fn stream_records(
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    let listed = streams
        .list_streams()
        .table_name(table)
        .send()
        .await
        .expect("list streams");
    let arn = listed.streams()[0].stream_arn().expect("arn").to_owned();
    let described = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe");
    let description = described.stream_description.expect("description");
    let shard = &description.shards()[0];
    let range = shard.sequence_number_range().expect("SequenceNumberRange");
    assert!(
        range.starting_sequence_number().is_some(),
        "StartingSequenceNumber"
    );
    assert!(
        range.ending_sequence_number().is_none(),
        "an open shard has no end"
    );
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shard.shard_id().expect("shard id"))
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(it) = iterator.take() {
        let page = streams
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .expect("records");
        let empty = page.records().is_empty();
        records.extend(page.records().iter().cloned());
        if empty {
            break;
        }
        iterator = page.next_shard_iterator;
    }
    records
}

#[tokio::test]
async fn stream_records_carry_the_images_of_each_view_type() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let mut changes = stack.dynamodb().subscribe_changes();
    changes.borrow_and_update();
    // (table, key attribute, extra key)
    let tables = [
        ("orders", true),
        ("products", false),
        ("keys_only", false),
        ("old_image", false),
    ];
    for (table, has_sort) in tables {
        let key_name = match table {
            "orders" => "pk",
            "products" => "sku",
            _ => "id",
        };
        let put = |v: i64| {
            let mut req = db
                .put_item()
                .table_name(table)
                .item(key_name, s("k"))
                .item("v", n(v));
            if has_sort {
                req = req.item("sk", s("s"));
            }
            req.send()
        };
        put(1).await.expect("insert");
        put(2).await.expect("modify");
        let mut del = db.delete_item().table_name(table).key(key_name, s("k"));
        if has_sort {
            del = del.key("sk", s("s"));
        }
        del.send().await.expect("remove");
    }
    // Every committed write woke the change subscribers.
    tokio::time::timeout(Duration::from_secs(1), changes.changed())
        .await
        .expect("woken")
        .expect("sender alive");
    assert!(*changes.borrow() >= 12);

    let client = streams(&stack.urls().aws).await;
    for (table, view, has_new, has_old) in [
        ("orders", "NEW_AND_OLD_IMAGES", true, true),
        ("products", "NEW_IMAGE", true, false),
        ("keys_only", "KEYS_ONLY", false, false),
        ("old_image", "OLD_IMAGE", false, true),
    ] {
        let records = stream_records(&client, table).await;
        let names: Vec<&str> = records
            .iter()
            .filter_map(|r| r.event_name().map(|e| e.as_str()))
            .collect();
        assert_eq!(names, vec!["INSERT", "MODIFY", "REMOVE"], "{table}");
        let modify = records[1].dynamodb().expect("stream record");
        assert_eq!(
            modify.stream_view_type().map(|v| v.as_str()),
            Some(view),
            "{table}"
        );
        assert!(
            !modify.keys().unwrap_or(&HashMap::new()).is_empty(),
            "{table}: keys"
        );
        assert_eq!(modify.new_image().is_some(), has_new, "{table}: new image");
        assert_eq!(modify.old_image().is_some(), has_old, "{table}: old image");
        if has_new {
            let v = modify.new_image().and_then(|i| i.get("v"));
            assert_eq!(
                v,
                Some(&aws_sdk_dynamodbstreams::types::AttributeValue::N(
                    "2".into()
                ))
            );
        }
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn streams_api_validates_limits_arns_and_iterators() {
    let stack = stack().await;
    let client = streams(&stack.urls().aws).await;
    for limit in [0, 101] {
        let err = client
            .list_streams()
            .limit(limit)
            .send()
            .await
            .expect_err("limit");
        assert_eq!(err.code(), Some("ValidationException"), "{limit}");
    }
    client
        .list_streams()
        .limit(100)
        .send()
        .await
        .expect("100 is allowed");
    let err = client
        .describe_stream()
        .stream_arn("fake-stream")
        .send()
        .await
        .expect_err("arn");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .describe_stream()
        .stream_arn("arn:aws:dynamodb:us-east-1:000000000000:table/orders/not-a-stream")
        .send()
        .await
        .expect_err("arn");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .get_records()
        .shard_iterator("bm90LWFuLWl0ZXJhdG9y")
        .send()
        .await
        .expect_err("iterator");
    assert_eq!(err.code(), Some("ValidationException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn gzip_requests_are_read_and_responses_compressed_on_request() {
    let stack = stack().await;
    let aws = &stack.urls().aws;
    let put = json!({"TableName": "products", "Item": {"sku": {"S": "gz"}, "blob": {"S": "x".repeat(10_000)}}});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(put.to_string().as_bytes()).expect("gzip");
    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        enc.finish().expect("gzip"),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let get = json!({"TableName": "products", "Key": {"sku": {"S": "gz"}}}).to_string();
    let (status, headers, body) = raw(
        aws,
        "DynamoDB_20120810.GetItem",
        get.into_bytes(),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert!(body.len() < 2_000, "compressed: {} bytes", body.len());
    // The CRC32 covers the bytes on the wire.
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    assert_eq!(
        headers.get("x-amz-crc32").and_then(|v| v.to_str().ok()),
        Some(crc.sum().to_string().as_str())
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["Item"]["blob"]["S"].as_str().map(str::len), Some(10_000));

    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.GetItem",
        b"definitely not gzip".to_vec(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_type(&body).ends_with("#SerializationException"));
    stack.shutdown().await;
}

fn nested_m(levels: usize) -> Value {
    let mut v = json!({"S": "leaf"});
    for _ in 0..levels {
        v = json!({"M": {"a": v}});
    }
    v
}

#[tokio::test]
async fn deep_nesting_and_oversized_input_get_validation_errors_and_the_server_lives() {
    let stack = stack().await;
    let aws = &stack.urls().aws;
    let db = dynamodb(aws).await;

    // 31 levels are stored; 32 and beyond are refused with DynamoDB's message.
    let ok = json!({"TableName": "products", "Item": {"sku": {"S": "deep"}, "doc": nested_m(31)}});
    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        ok.to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for levels in [32, 40, 500] {
        let deep = json!({"TableName": "products", "Item": {"sku": {"S": "deep"}, "doc": nested_m(levels)}});
        let (status, _, body) = raw(
            aws,
            "DynamoDB_20120810.PutItem",
            deep.to_string().into_bytes(),
            &[],
        )
        .await;
        assert_eq!(status, 400, "{levels}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(
            v["__type"]
                .as_str()
                .is_some_and(|t| t.ends_with("#ValidationException")),
            "{v}"
        );
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("Nesting Levels have exceeded supported limits")),
            "{v}"
        );
    }
    // Far past anything serde or the engine would follow.
    let hostile = format!(
        r#"{{"TableName":"products","Item":{{"sku":{}"#,
        "{\"M\":{\"a\":".repeat(100_000)
    );
    let (status, _, body) = raw(aws, "DynamoDB_20120810.PutItem", hostile.into_bytes(), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_type(&body),
        "com.amazonaws.dynamodb.v20120810#ValidationException"
    );

    // An expression past 4 KB.
    let err = db
        .update_item()
        .table_name("products")
        .key("sku", s("deep"))
        .update_expression(format!("SET a = :v{}", ", a = :v".repeat(600)))
        .expression_attribute_values(":v", n(1))
        .send()
        .await
        .expect_err("long expression");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Expression size has exceeded")),
        "{err:?}"
    );

    // An item past 400 KB.
    let err = db
        .put_item()
        .table_name("products")
        .item("sku", s("big"))
        .item("blob", s(&"x".repeat(401 * 1024)))
        .send()
        .await
        .expect_err("item too large");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Item size has exceeded the maximum allowed size")),
        "{err:?}"
    );

    // A body past 16 MB.
    let (status, _, _) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        vec![b' '; 16 * 1024 * 1024 + 10],
        &[],
    )
    .await;
    assert_eq!(status, 413);

    let got = db
        .get_item()
        .table_name("products")
        .key("sku", s("deep"))
        .send()
        .await
        .expect("still serving");
    assert!(got.item().is_some());
    stack.shutdown().await;
}

/// Faults declared in dev.toml (`[tables.<name>.faults]`) are in force from
/// the start, for the operations they name only.
#[tokio::test]
async fn faults_declared_in_dev_toml_apply_from_the_start() {
    let text = r#"
[stack]
name = "faults-from-toml"

[tables.flaky]
partition_key = { name = "id", type = "S" }

[tables.flaky.faults]
rate = 1.0
error = "ThrottlingException"
operations = ["GetItem"]
"#;
    let manifest = woocom_dev::manifest::Manifest::parse("dev.toml".as_ref(), text)
        .expect("manifest is valid");
    let stack = woocom_dev::Stack::start(
        woocom_dev::StackOptions::new(manifest)
            .free_ports()
            .quiet_build(),
    )
    .await
    .expect("stack starts");
    let rules = stack.dynamodb().faults().list();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules["flaky"].rate, 1.0);

    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("flaky")
        .item("id", s("a"))
        .send()
        .await
        .expect("PutItem is not named by the rule");
    let err = db
        .get_item()
        .table_name("flaky")
        .key("id", s("a"))
        .send()
        .await
        .expect_err("GetItem is throttled");
    assert_eq!(err.code(), Some("ThrottlingException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn fault_injection_answers_dynamodbs_throttling_shapes_and_sdk_retries_through() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let http = http();
    let faults_url = format!("{aws}/_woocom/dynamodb/faults");
    let set = http
        .put(&faults_url)
        .json(&json!({"table": "products", "rate": 1.0, "error": "ProvisionedThroughputExceededException"}))
        .send()
        .await
        .expect("set");
    assert_eq!(set.status(), 200);

    let db = dynamodb(&aws).await;
    let err = db
        .get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception())
    );
    // Other tables are untouched.
    db.get_item()
        .table_name("counters")
        .key("id", s("x"))
        .send()
        .await
        .expect("other table");

    // The exact wire shape.
    let (status, _, body) = raw(
        &aws,
        "DynamoDB_20120810.GetItem",
        json!({"TableName": "products", "Key": {"sku": {"S": "x"}}})
            .to_string()
            .into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["__type"],
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The level of configured provisioned throughput"))
    );

    for (error, status, code) in [
        ("ThrottlingException", 400, "ThrottlingException"),
        ("InternalServerError", 500, "InternalServerError"),
    ] {
        http.put(&faults_url)
            .json(&json!({"table": "*", "rate": 1.0, "error": error, "operations": ["PutItem"]}))
            .send()
            .await
            .expect("set");
        let (got, _, body) = raw(
            &aws,
            "DynamoDB_20120810.PutItem",
            json!({"TableName": "counters", "Item": {"id": {"S": "x"}}})
                .to_string()
                .into_bytes(),
            &[],
        )
        .await;
        assert_eq!(got, status, "{error}");
        assert!(error_type(&body).ends_with(&format!("#{code}")), "{error}");
    }

    // A share of failures: the SDK's standard retries get every call through.
    http.delete(&faults_url).send().await.expect("clear");
    http.put(&faults_url)
        .json(&json!({"table": "counters", "rate": 0.3, "error": "ThrottlingException"}))
        .send()
        .await
        .expect("set");
    let retrying = dynamodb_with_retries(&aws, 10).await;
    for i in 0..30 {
        retrying
            .put_item()
            .table_name("counters")
            .item("id", s(&format!("c{i}")))
            .send()
            .await
            .expect("retried through");
    }
    let listed: Value = http
        .get(&faults_url)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"]["counters"]["rate"], 0.3);
    http.put(&faults_url)
        .json(&json!({"table": "products", "rate": 1.0, "error": "ThrottlingException"}))
        .send()
        .await
        .expect("set");
    http.delete(format!("{faults_url}?table=counters"))
        .send()
        .await
        .expect("clear one");
    db.get_item()
        .table_name("counters")
        .key("id", s("x"))
        .send()
        .await
        .expect("counters cleared");
    db.get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect_err("products still faulty");
    http.delete(&faults_url).send().await.expect("clear all");
    db.get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect("cleared");
    stack.shutdown().await;
}

// ---- fuzzing ------------------------------------------------------------------

/// xorshift64*: deterministic, so a failing run can be replayed by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "TableName",
    "Key",
    "Item",
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "ExpressionAttributeValues",
    "ExpressionAttributeNames",
    "Limit",
    "ExclusiveStartKey",
    "RequestItems",
    "TransactItems",
    "Statement",
    "StreamArn",
    "ShardIterator",
    "ReturnValues",
    "M",
    "L",
    "S",
    "N",
    "B",
    "SS",
    "NS",
    "BOOL",
    "NULL",
    "pk",
    "sku",
];
const OPERATIONS: &[&str] = &[
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.GetItem",
    "DynamoDB_20120810.UpdateItem",
    "DynamoDB_20120810.DeleteItem",
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.Scan",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.BatchGetItem",
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDB_20120810.TransactGetItems",
    "DynamoDB_20120810.ExecuteStatement",
    "DynamoDB_20120810.CreateTable",
    "DynamoDB_20120810.UpdateTable",
    "DynamoDB_20120810.DescribeTable",
    "DynamoDBStreams_20120810.DescribeStream",
    "DynamoDBStreams_20120810.GetRecords",
    "DynamoDBStreams_20120810.GetShardIterator",
    "DynamoDBStreams_20120810.ListStreams",
    "DynamoDB_20120810.Nope",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth == 0 || rng.below(3) == 0;
    if leaf {
        return match rng.below(7) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!(f64::from(rng.below(1000) as u32) / 7.0),
            4 => json!(*rng.pick(&[
                "products",
                "orders",
                "pk",
                "sku",
                ":v",
                "#n",
                "a = :v",
                "SET a = :v",
                "attribute_exists(pk)",
                "SELECT * FROM \"orders\""
            ])),
            5 => Value::String("é\u{0}\u{ffff}".repeat(rng.below(50) as usize)),
            _ => Value::String(String::new()),
        };
    }
    if rng.below(2) == 0 {
        Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        )
    } else {
        let mut map = serde_json::Map::new();
        for _ in 0..rng.below(5) {
            map.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth - 1));
        }
        Value::Object(map)
    }
}

fn fuzz_body(rng: &mut Rng) -> (Vec<u8>, bool) {
    let gzip = rng.below(10) == 0;
    let body = match rng.below(9) {
        0 => (0..rng.below(2000)).map(|_| rng.next() as u8).collect(),
        1 => {
            let mut v = random_value(rng, 6).to_string().into_bytes();
            let cut = rng.below(v.len() as u64 + 1) as usize;
            v.truncate(cut);
            v
        }
        2 => {
            let depth = rng.below(200_000) as usize;
            let open = *rng.pick(&["[", "{\"M\":", "{\"L\":[", "{\"a\":"]);
            format!("{{\"TableName\":\"products\",\"Item\":{{\"sku\":{}", open.repeat(depth)).into_bytes()
        }
        3 => json!({"TableName": "products", "Item": {"sku": {"S": "x".repeat(rng.below(2_000_000) as usize)}}}).to_string().into_bytes(),
        4 => {
            let expr = rng.pick(&["(", "NOT ", "a.", "a[0]", "size(", "if_not_exists(a, "]).repeat(rng.below(3000) as usize);
            json!({"TableName": "products", "Key": {"sku": {"S": "x"}}, "UpdateExpression": format!("SET a = {expr}:v"), "ConditionExpression": expr, "ExpressionAttributeValues": {":v": {"N": "1"}}}).to_string().into_bytes()
        }
        5 => json!({"Statement": format!("SELECT * FROM \"products\" WHERE {}", rng.pick(&["(", "[", "{'a':", "NOT "]).repeat(rng.below(4000) as usize))}).to_string().into_bytes(),
        _ => random_value(rng, 8).to_string().into_bytes(),
    };
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = enc.write_all(&body);
        (enc.finish().unwrap_or_default(), true)
    } else {
        (body, false)
    }
}

/// Random and malformed requests (bad JSON, deep nesting, huge strings,
/// hostile expressions, bad gzip) from 8 clients at once: each gets an
/// AWS-shaped answer and the server keeps serving. Bounded: 3,200 requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_requests_never_take_the_server_down() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let seed = std::env::var("WOOCOM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let aws = aws.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (worker + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let client = http();
            for i in 0..400 {
                let target = *rng.pick(OPERATIONS);
                let (body, gzip) = fuzz_body(&mut rng);
                let mut req = client
                    .post(format!("{aws}/"))
                    .header("x-amz-target", target)
                    .body(body);
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                let ours = target.starts_with("DynamoDB");
                let response = match req.send().await {
                    Ok(r) => r,
                    // Not a DynamoDB target: the AWS endpoint's own fallback
                    // may answer before reading a large body, and close.
                    Err(_) if !ours => continue,
                    Err(e) => {
                        panic!("seed {seed} worker {worker} request {i} ({target}): no answer: {e}")
                    }
                };
                let status = response.status().as_u16();
                let body = response.bytes().await.expect("body");
                if !ours {
                    assert!(status >= 400, "seed {seed}: {target} answered {status}");
                    continue;
                }
                assert!(
                    matches!(status, 200 | 400 | 413 | 500),
                    "seed {seed} worker {worker} request {i}: status {status}"
                );
                if status != 200 {
                    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        panic!("seed {seed} worker {worker} request {i}: error body not JSON")
                    });
                    assert!(
                        v["__type"].as_str().is_some_and(|t| t.contains('#')),
                        "seed {seed}: {v}"
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("fuzz worker");
    }
    let health = http()
        .get(&stack.urls().health)
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let db = dynamodb(&aws).await;
    db.put_item()
        .table_name("products")
        .item("sku", s("after-fuzz"))
        .send()
        .await
        .expect("still serving");
    stack.shutdown().await;
}

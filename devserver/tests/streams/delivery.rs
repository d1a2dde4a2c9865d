//! What reaches functions: the records of each view type, in order, once each; transactions; filters; TTL deletions.

use super::*;

#[tokio::test]
async fn insert_modify_remove_carry_the_images_of_each_view_type() {
    let dir = TempDir::new("streams-views");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    for table in ["keys_only", "new_image", "old_image"] {
        put(&db, table, &[("id", "a"), ("v", "1")]).await;
        // The same item again changes nothing: DynamoDB writes no record,
        // whatever the view type (issue #18; the engine records a MODIFY).
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
            // The stack's region and account, and an ISO-8601 label, as
            // DynamoDB writes a stream ARN.
            let arn = r["eventSourceARN"].as_str().unwrap_or_default();
            let label = arn
                .strip_prefix(&format!(
                    "arn:aws:dynamodb:eu-west-1:000000000000:table/{table}/stream/"
                ))
                .unwrap_or_else(|| panic!("{table}: eventSourceARN {arn}"));
            assert!(
                chrono::NaiveDateTime::parse_from_str(label, "%Y-%m-%dT%H:%M:%S%.3f").is_ok()
                    && label.len() == 23,
                "{arn}"
            );
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

//! The DynamoDB Streams API through aws-sdk-dynamodbstreams: records of each view type, limits, ARNs and iterators.

use super::*;

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

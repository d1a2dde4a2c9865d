//! Tables from dev.toml, items, batches, queries, transactions and TTL through aws-sdk-dynamodb.

use super::*;

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

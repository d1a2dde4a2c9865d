//! Results that differed from AWS's (issue #18).

use super::*;

/// Regression: the engine created an item (its key alone) for an
/// UpdateItem whose only action is REMOVE on a key that does not exist;
/// DynamoDB creates nothing.
#[tokio::test]
async fn update_item_that_only_removes_creates_no_item() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let update = |id: &str| {
        db.update_item()
            .table_name("counters")
            .key("id", s(id))
            .update_expression("REMOVE #n, extra")
            .expression_attribute_names("#n", "note")
    };
    let answer = update("ghost")
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("a REMOVE on a missing item succeeds");
    assert!(answer.attributes().is_none(), "{answer:?}");
    let got = db
        .get_item()
        .table_name("counters")
        .key("id", s("ghost"))
        .send()
        .await
        .expect("get");
    assert!(got.item().is_none(), "nothing was created: {got:?}");

    // Its condition is still evaluated, on no item.
    let err = update("ghost")
        .condition_expression("attribute_exists(id)")
        .send()
        .await
        .expect_err("the condition fails");
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
    update("ghost")
        .condition_expression("attribute_not_exists(id) AND #n <> :v")
        .expression_attribute_values(":v", s("x"))
        .send()
        .await
        .expect("the condition holds on no item");
    assert!(
        db.get_item()
            .table_name("counters")
            .key("id", s("ghost"))
            .send()
            .await
            .expect("get")
            .item()
            .is_none()
    );
    // And the request is still checked: a key attribute cannot be removed.
    let err = db
        .update_item()
        .table_name("counters")
        .key("id", s("ghost"))
        .update_expression("REMOVE id")
        .send()
        .await
        .expect_err("removing the key");
    assert_eq!(err.code(), Some("ValidationException"));

    // On an item that exists, REMOVE removes.
    db.put_item()
        .table_name("counters")
        .item("id", s("real"))
        .item("note", s("n"))
        .item("keep", n(1))
        .send()
        .await
        .expect("put");
    let answer = update("real")
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("remove");
    let item = answer.attributes().expect("the item after");
    assert!(item.get("note").is_none() && item.get("keep").is_some());
    stack.shutdown().await;
}

/// Regression: TransactGetItems ignored each Get's ProjectionExpression,
/// and UpdateItem's ALL_OLD on an item it created returned the new key.
#[tokio::test]
async fn transact_get_projects_and_all_old_of_a_created_item_is_empty() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("counters")
        .item("id", s("a"))
        .item("v", n(1))
        .item(
            "m",
            AttributeValue::M(HashMap::from([
                ("x".to_owned(), n(1)),
                ("y".to_owned(), s("s")),
            ])),
        )
        .send()
        .await
        .expect("put");
    let got = db
        .transact_get_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactGetItem::builder()
                .get(
                    aws_sdk_dynamodb::types::Get::builder()
                        .table_name("counters")
                        .key("id", s("a"))
                        .projection_expression("v, #m.y")
                        .expression_attribute_names("#m", "m")
                        .build()
                        .expect("get"),
                )
                .build(),
        )
        .send()
        .await
        .expect("transact get");
    let item = got.responses()[0].item().expect("item");
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    assert_eq!(names, ["m", "v"], "{item:?}");
    let AttributeValue::M(m) = &item["m"] else {
        panic!("m is a map: {item:?}")
    };
    assert_eq!(m.len(), 1, "only m.y: {m:?}");

    let created = db
        .update_item()
        .table_name("counters")
        .key("id", s("new"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", n(1))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("update");
    assert!(created.attributes().is_none(), "{created:?}");
    let existing = db
        .update_item()
        .table_name("counters")
        .key("id", s("new"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", n(2))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("update");
    assert_eq!(existing.attributes().and_then(|a| a.get("v")), Some(&n(1)));
    stack.shutdown().await;
}

/// Regression: BETWEEN bounds of two types or in the wrong order, an
/// unknown `attribute_type` name and an attribute defined twice were
/// accepted.
#[tokio::test]
async fn expressions_and_definitions_dynamodb_refuses_are_refused() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let scan = |filter: &str, a: AttributeValue, b: AttributeValue| {
        db.scan()
            .table_name("counters")
            .filter_expression(filter)
            .expression_attribute_values(":a", a)
            .expression_attribute_values(":b", b)
            .send()
    };
    let err = scan("v BETWEEN :a AND :b", n(5), n(1))
        .await
        .expect_err("reversed bounds");
    assert_eq!(
        err.message(),
        Some(
            "Invalid FilterExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"
        )
    );
    let err = scan("v BETWEEN :a AND :b", n(1), s("5"))
        .await
        .expect_err("two types");
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("requires same data type"),
        "{err:?}"
    );
    scan("v BETWEEN :a AND :b", n(1), n(5))
        .await
        .expect("bounds in order");
    let err = scan("attribute_type(v, :a) OR v = :b", s("XX"), n(1))
        .await
        .expect_err("unknown type");
    assert!(
        err.message()
            .unwrap_or_default()
            .starts_with("Invalid FilterExpression: Invalid attribute type name found; type: XX"),
        "{err:?}"
    );
    // The short path (one item) checks too.
    let err = db
        .put_item()
        .table_name("counters")
        .item("id", s("c"))
        .condition_expression("v BETWEEN :a AND :b")
        .expression_attribute_values(":a", s("b"))
        .expression_attribute_values(":b", s("a"))
        .send()
        .await
        .expect_err("reversed bounds on a write");
    assert_eq!(err.code(), Some("ValidationException"));

    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let definition = || {
        AttributeDefinition::builder()
            .attribute_name("id")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attr")
    };
    let err = db
        .create_table()
        .table_name("twice")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(definition())
        .attribute_definitions(definition())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect_err("an attribute defined twice");
    assert_eq!(err.message(), Some("Attribute Name is duplicated: id"));
    stack.shutdown().await;
}

/// Regression: tag keys and values with characters AWS does not allow, and
/// keys in AWS's `aws:` namespace, were accepted.
#[tokio::test]
async fn tags_dynamodb_refuses_are_refused() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let arn = db
        .describe_table()
        .table_name("counters")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.table_arn)
        .expect("arn");
    let tag = |key: &str, value: &str| {
        aws_sdk_dynamodb::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .expect("tag")
    };
    for (key, value) in [("k{", "v"), ("aws:owner", "v"), ("k", "v<")] {
        let err = db
            .tag_resource()
            .resource_arn(&arn)
            .tags(tag(key, value))
            .send()
            .await
            .expect_err(key);
        assert_eq!(err.code(), Some("ValidationException"), "{key}");
    }
    db.tag_resource()
        .resource_arn(&arn)
        .tags(tag("team:name", "shop @ home"))
        .send()
        .await
        .expect("allowed characters");
    stack.shutdown().await;
}

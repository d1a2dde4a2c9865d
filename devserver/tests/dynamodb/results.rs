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

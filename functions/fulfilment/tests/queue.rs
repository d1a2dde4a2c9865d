//! Fulfilment against the local stack (dev.toml at the repository root,
//! started in-process on free ports). The handler tests call `process`
//! directly with `SqsEvent`s built here, against the stack's real
//! DynamoDB, so redeliveries and mixed batches are exact; the last tests
//! follow events through the whole hand-off: checkout → `shop` bus →
//! `order-placed` rule → `fulfilment` queue → the function's real binary →
//! `CONFIRMED`, and what fails on the way into `fulfilment-dlq`.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Utc;
use serde_json::{Value, json};
use woocom_dev::Stack;
use woocom_domain::basket::Basket;
use woocom_domain::events::{OrderEvent, OrderPlaced, SOURCE};
use woocom_domain::order::order_id_for;
use woocom_domain::{Order, OrderRepo, OrderStatus, Product};
use woocom_fulfilment::{confirm, process};
use woocom_testkit::{
    Shop, dynamodb, eventbridge, receive_until, shop_options, shop_stack as stack, sqs,
};

/// How long the hand-off may take through the stack here.
const HAND_OFF: Duration = Duration::from_secs(20);

/// An order, stored as checkout stores it, that no event announced (so
/// the stack's own fulfilment function never sees it).
async fn stored_order(db: &aws_sdk_dynamodb::Client, key: &str, status: OrderStatus) -> Order {
    let mut basket = Basket::new(Utc::now());
    let mug = Product {
        id: "mug".to_owned(),
        name: "Mug".to_owned(),
        description: String::new(),
        price: 1200,
        currency: "EUR".to_owned(),
        stock: 10,
        category: String::new(),
    };
    basket.add(&mug, 2).expect("add");
    let mut order = Order::from_basket(order_id_for(key), &basket, "ann", Utc::now());
    order.status = status;
    db.put_item()
        .table_name("orders")
        .set_item(Some(serde_dynamo::to_item(&order).expect("item")))
        .send()
        .await
        .expect("put order");
    order
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.body = Some(body.to_owned());
    message.event_source = Some("aws:sqs".to_owned());
    message
        .attributes
        .insert("ApproximateReceiveCount".to_owned(), "1".to_owned());
    message
}

/// A message body as the `order-placed` rule sends it: the EventBridge
/// event, the order in `detail`.
fn envelope(placed: &OrderPlaced) -> String {
    let event = OrderEvent::Placed(placed.clone());
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.detail_type(),
        "source": SOURCE,
        "account": "000000000000",
        "time": "2026-12-04T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": serde_json::from_str::<Value>(&event.detail()).expect("detail"),
    })
    .to_string()
}

fn placed(order: &Order) -> String {
    envelope(&OrderPlaced::of(order))
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

fn failed(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn a_redelivered_message_confirms_the_order_once() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;
    let orders = OrderRepo::status_only(db.clone(), "orders".into());
    let order = stored_order(&db, "fulfil-redelivery", OrderStatus::Placed).await;
    let event = batch(vec![message("m-1", &placed(&order))]);

    let response = process(&orders, &event).await.expect("a response");
    assert_eq!(failed(&response), Vec::<&str>::new());
    let confirmed = orders.get(&order.id).await.expect("get").expect("order");
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert!(confirmed.updated_at >= order.updated_at);

    // SQS delivers at least once: the same message again, twice in one
    // batch, changes nothing and fails nothing.
    let again = batch(vec![
        message("m-1", &placed(&order)),
        message("m-1b", &placed(&order)),
    ]);
    let response = process(&orders, &again).await.expect("a response");
    assert_eq!(failed(&response), Vec::<&str>::new());
    let after = orders.get(&order.id).await.expect("get").expect("order");
    assert_eq!(after, confirmed, "not applied twice (updatedAt unchanged)");

    // A person moved it on meanwhile: a late copy leaves it where it is.
    orders
        .set_status(
            &order.id,
            OrderStatus::Confirmed,
            OrderStatus::Paid,
            Utc::now(),
        )
        .await
        .expect("pay")
        .expect("was confirmed");
    let response = process(&orders, &event).await.expect("a response");
    assert!(response.batch_item_failures.is_empty());
    let paid = orders.get(&order.id).await.expect("get").expect("order");
    assert_eq!(paid.status, OrderStatus::Paid);
    stack.shutdown().await;
}

#[tokio::test]
async fn two_copies_handled_at_once_confirm_the_order_once() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;
    let orders = OrderRepo::status_only(db.clone(), "orders".into());
    let order = stored_order(&db, "fulfil-race", OrderStatus::Placed).await;
    let placed = OrderPlaced::of(&order);
    let (a, b) = tokio::join!(confirm(&orders, &placed), confirm(&orders, &placed));
    let mut outcomes = [format!("{a:?}"), format!("{b:?}")];
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["Ok(AlreadyHandled(Confirmed))", "Ok(Confirmed)"],
        "exactly one copy moves the order"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_batch_reports_only_the_messages_it_could_not_handle() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;
    let orders = OrderRepo::status_only(db.clone(), "orders".into());
    let good = stored_order(&db, "fulfil-good", OrderStatus::Placed).await;
    let cancelled = stored_order(&db, "fulfil-cancelled", OrderStatus::Cancelled).await;
    let tampered = stored_order(&db, "fulfil-tampered", OrderStatus::Placed).await;
    let mut wrong = OrderPlaced::of(&tampered);
    wrong.items[0].quantity = 20;
    let mut missing = OrderPlaced::of(&good);
    missing.order_id = order_id_for("fulfil-never-placed");

    let event = batch(vec![
        message("good", &placed(&good)),
        message("missing", &envelope(&missing)),
        message("cancelled", &placed(&cancelled)),
        message("garbage", "{\"hello\": \"world\"}"),
        message("tampered", &envelope(&wrong)),
    ]);
    let response = process(&orders, &event).await.expect("a response");
    assert_eq!(failed(&response), ["missing", "garbage", "tampered"]);

    let status = |id: String| {
        let orders = &orders;
        async move { orders.get(&id).await.expect("get").expect("order").status }
    };
    assert_eq!(status(good.id.clone()).await, OrderStatus::Confirmed);
    assert_eq!(status(cancelled.id.clone()).await, OrderStatus::Cancelled);
    assert_eq!(status(tampered.id.clone()).await, OrderStatus::Placed);

    // The JSON Lambda gets back names exactly the failed messages.
    let json = serde_json::to_value(&response).expect("JSON");
    assert_eq!(
        json["batchItemFailures"][0],
        serde_json::json!({"itemIdentifier": "missing"})
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_placed_order_is_confirmed_through_the_bus_and_the_queue() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("bowl", "Bowl", 1500, 5).await;
    let basket = shop.basket(&[("bowl", 2)]).await;
    let (status, order) = shop.checkout(&basket, "ann", "fulfil-flow").await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "PLACED");
    let id = order["id"].as_str().expect("id");

    let confirmed = shop.wait_for_status(id, "CONFIRMED", HAND_OFF).await;
    assert_eq!(confirmed["createdAt"], order["createdAt"]);
    assert!(confirmed["updatedAt"].as_str() >= order["updatedAt"].as_str());
    // Once confirmed, the shop's lifecycle goes on from there.
    let (status, paid) = shop.set_status(id, "PAID").await;
    assert_eq!((status, &paid["status"]), (200, &serde_json::json!("PAID")));
    stack.shutdown().await;
}

/// Puts an `OrderPlaced` for `placed` on the `shop` bus, as the orders
/// function does.
async fn put_order_placed(stack: &Stack, placed: &OrderPlaced) {
    let event = OrderEvent::Placed(placed.clone());
    let out = eventbridge(stack)
        .await
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name("shop")
                .source(SOURCE)
                .detail_type(event.detail_type())
                .detail(event.detail())
                .build(),
        )
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
}

fn order_id_in(body: &Value) -> Option<&str> {
    body["detail"]["orderId"].as_str()
}

#[tokio::test]
async fn an_event_the_consumer_keeps_failing_on_reaches_fulfilment_dlq() {
    // The queue's visibility timeout (60 s) and three receives would keep
    // this test waiting minutes: a 1 s function timeout allows a 1 s
    // visibility timeout (a mapping may not have it shorter).
    let mut options = shop_options();
    options
        .manifest
        .functions
        .get_mut("fulfilment")
        .expect("fulfilment")
        .timeout = Duration::from_secs(1);
    options
        .manifest
        .queues
        .get_mut("fulfilment")
        .expect("fulfilment queue")
        .visibility_timeout_seconds = 1;
    let stack = Stack::start(options).await.expect("stack starts");
    let db = dynamodb(&stack).await;
    // An OrderPlaced for an order that does not exist: no retry mends it.
    let template = stored_order(&db, "fulfil-dlq-template", OrderStatus::Placed).await;
    let mut ghost = OrderPlaced::of(&template);
    ghost.order_id = order_id_for("fulfil-dlq-never-placed");
    put_order_placed(&stack, &ghost).await;

    let sqs = sqs(&stack).await;
    let dead = receive_until(&sqs, "fulfilment-dlq", HAND_OFF, |body| {
        order_id_in(body) == Some(ghost.order_id.as_str())
    })
    .await;
    let body: Value = serde_json::from_str(dead.body().expect("body")).expect("JSON");
    assert_eq!(body["source"], SOURCE);
    assert_eq!(body["detail-type"], "OrderPlaced");
    // Moved by the queue's redrive policy, after its 3 receives (not by
    // EventBridge, which adds RULE_ARN and ERROR_CODE attributes).
    let source = dead
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::DeadLetterQueueSourceArn))
        .cloned()
        .unwrap_or_default();
    assert!(source.ends_with(":fulfilment"), "{source}");
    assert!(
        dead.message_attributes()
            .is_none_or(|a| !a.contains_key("RULE_ARN"))
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn an_event_eventbridge_cannot_deliver_reaches_fulfilment_dlq() {
    let stack = stack().await;
    let sqs = sqs(&stack).await;
    let db = dynamodb(&stack).await;
    // The rule's target is gone: EventBridge does not retry a queue that
    // does not exist, and sends the event to the target's dead-letter queue.
    let queue = sqs
        .get_queue_url()
        .queue_name("fulfilment")
        .send()
        .await
        .expect("queue url");
    sqs.delete_queue()
        .queue_url(queue.queue_url().expect("url"))
        .send()
        .await
        .expect("delete the fulfilment queue");
    let order = stored_order(&db, "fulfil-undeliverable", OrderStatus::Placed).await;
    put_order_placed(&stack, &OrderPlaced::of(&order)).await;

    let dead = receive_until(&sqs, "fulfilment-dlq", HAND_OFF, |body| {
        order_id_in(body) == Some(order.id.as_str())
    })
    .await;
    let attribute = |name: &str| {
        dead.message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        attribute("RULE_ARN").ends_with(":rule/shop/order-placed"),
        "{}",
        attribute("RULE_ARN")
    );
    assert!(attribute("TARGET_ARN").ends_with(":fulfilment"));
    assert_eq!(attribute("ERROR_CODE"), "RESOURCE_NOT_FOUND");
    // The body is the event as the queue would have had it: a redrive to
    // the fulfilment queue hands it to the function unchanged.
    let body: Value = serde_json::from_str(dead.body().expect("body")).expect("JSON");
    let placed = woocom_fulfilment::read_order_placed(&body.to_string()).expect("an OrderPlaced");
    assert_eq!(placed, OrderPlaced::of(&order));
    stack.shutdown().await;
}

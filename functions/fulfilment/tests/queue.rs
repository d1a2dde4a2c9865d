//! Fulfilment against the local stack (dev.toml at the repository root,
//! started in-process on free ports). The handler tests call `process`
//! directly with `SqsEvent`s built here, against the stack's real
//! DynamoDB, so redeliveries and mixed batches are exact; the last test
//! follows an order through the whole hand-off: checkout → `order-events`
//! topic → `fulfilment` queue → the function's real binary → `CONFIRMED`.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use woocom_domain::basket::Basket;
use woocom_domain::events::{OrderEvent, OrderPlaced};
use woocom_domain::order::order_id_for;
use woocom_domain::{Order, OrderRepo, OrderStatus, Product};
use woocom_fulfilment::{confirm, process};
use woocom_testkit::{Shop, dynamodb, shop_stack as stack};

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

fn placed(order: &Order) -> String {
    OrderEvent::OrderPlaced(OrderPlaced::of(order)).to_json()
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
        message("missing", &OrderEvent::OrderPlaced(missing).to_json()),
        message("cancelled", &placed(&cancelled)),
        message("garbage", "{\"hello\": \"world\"}"),
        message("tampered", &OrderEvent::OrderPlaced(wrong).to_json()),
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
async fn a_placed_order_is_confirmed_through_the_topic_and_the_queue() {
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

//! Checkout and orders through the whole local stack (dev.toml at the
//! repository root, started in-process on free ports): API Gateway → the
//! baskets, products and orders functions' real binaries → DynamoDB
//! transactions and global indexes. The orders function publishes its
//! facts on the `shop` bus; the `order-placed` rule hands OrderPlaced to
//! the `fulfilment` function (through the `fulfilment` queue), which
//! confirms the order: the tests wait for that before paying an order.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use woocom_dev::Stack;
use woocom_testkit::{Shop, eventbridge, receive_until, shop_options, shop_stack as stack, sqs};

/// How long fulfilment may take to confirm a placed order here.
const HAND_OFF: Duration = Duration::from_secs(20);

/// An order without what fulfilment changes (`status`, `updatedAt`):
/// two reads of one order compare equal whether or not it was confirmed
/// between them.
fn without_progress(order: &Value) -> Value {
    let mut order = order.clone();
    if let Some(fields) = order.as_object_mut() {
        fields.remove("status");
        fields.remove("updatedAt");
    }
    order
}

fn ids(orders: &[Value]) -> Vec<&str> {
    orders
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn checkout_places_an_order_once_and_lists_it() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("teapot", "Teapot", 3900, 5).await;
    shop.product("mug", "Mug", 1200, 4).await;
    let basket = shop.basket(&[("teapot", 2), ("mug", 1)]).await;

    let (status, order) = shop.checkout(&basket, "alice", "key-1").await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "PLACED");
    assert_eq!(order["basketId"], basket.as_str());
    assert_eq!(order["customerRef"], "alice");
    assert_eq!(order["total"], 2 * 3900 + 1200);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(order["createdAt"], order["updatedAt"]);
    let order_id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (shop.stock("teapot").await, shop.stock("mug").await),
        (3, 3)
    );
    // Fulfilment takes it on; from here on every read says CONFIRMED.
    let order = shop.wait_for_status(&order_id, "CONFIRMED", HAND_OFF).await;

    let (status, closed) = shop
        .send(Method::GET, &format!("/baskets/{basket}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(closed["status"], "CHECKED_OUT");
    assert_eq!(closed["orderId"], order_id.as_str());

    // The same clientKey again (a retry after a lost answer): the same
    // order, 200, and nothing decremented twice.
    let (status, again) = shop.checkout(&basket, "alice", "key-1").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, order);
    assert_eq!(
        (shop.stock("teapot").await, shop.stock("mug").await),
        (3, 3)
    );

    let (status, got) = shop
        .send(Method::GET, &format!("/orders/{order_id}"), None)
        .await;
    assert_eq!((status, &got), (200, &order));

    // A closed basket refuses changes and other checkouts.
    let (status, body) = shop
        .send(
            Method::POST,
            &format!("/baskets/{basket}/items"),
            Some(json!({"productId": "mug", "quantity": 1})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "basket_closed");
    let (status, body) = shop
        .send(
            Method::DELETE,
            &format!("/baskets/{basket}/items/mug"),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("basket_closed"))
    );
    let (status, body) = shop.checkout(&basket, "alice", "key-other").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "basket_closed");

    // A key that placed an order is not reused for another basket.
    let second = shop.basket(&[("mug", 1)]).await;
    let (status, body) = shop.checkout(&second, "alice", "key-1").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(shop.stock("mug").await, 3);

    let (status, newer) = shop.checkout(&second, "alice", "key-2").await;
    assert_eq!(status, 201, "{newer}");
    let newer_id = newer["id"].as_str().expect("id").to_owned();
    let (status, _) = shop
        .checkout(&shop.basket(&[("mug", 1)]).await, "bob", "key-3")
        .await;
    assert_eq!(status, 201);

    // Newest first, one page at a time, each of alice's orders once.
    let alice = shop.list_all("customerRef=alice", 1).await;
    assert_eq!(ids(&alice), [newer_id.as_str(), order_id.as_str()]);
    let alice = shop.list_all("customerRef=alice", 20).await;
    assert_eq!(ids(&alice), [newer_id.as_str(), order_id.as_str()]);
    let by_basket = shop.list_all(&format!("basketId={basket}"), 20).await;
    assert_eq!(by_basket, [order]);
    assert!(shop.list_all("customerRef=nobody", 20).await.is_empty());
    let (status, body) = shop
        .send(Method::GET, "/orders?customerRef=alice&next=bm9wZQ", None)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_request"))
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn too_little_stock_is_409_sold_out_and_changes_nothing() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("cup", "Cup", 800, 3).await;
    shop.product("saucer", "Saucer", 500, 10).await;
    let basket = shop.basket(&[("saucer", 3), ("cup", 3)]).await;
    // Someone else takes a cup after it went into the basket (a basket
    // takes no more than is in stock when the line is added).
    shop.product("cup", "Cup", 800, 2).await;

    let (status, body) = shop.checkout(&basket, "carol", "sold-out-1").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "sold_out");
    assert_eq!(body["error"]["fields"], json!({"cup": "2"}), "what is left");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("Cup"), "names the product: {message}");
    assert_eq!(
        (shop.stock("cup").await, shop.stock("saucer").await),
        (2, 10)
    );
    let (_, still) = shop
        .send(Method::GET, &format!("/baskets/{basket}"), None)
        .await;
    assert_eq!(still["status"], "OPEN");
    assert!(shop.list_all("customerRef=carol", 20).await.is_empty());

    // Fewer cups, and the same basket checks out.
    shop.send(
        Method::PUT,
        &format!("/baskets/{basket}/items/cup"),
        Some(json!({"quantity": 2})),
    )
    .await;
    let (status, order) = shop.checkout(&basket, "carol", "sold-out-2").await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        (shop.stock("cup").await, shop.stock("saucer").await),
        (0, 7)
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn concurrent_checkouts_for_the_last_units_have_one_winner() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    for round in 0..4 {
        let lamp = format!("lamp-{round}");
        shop.product(&lamp, "Lamp", 4500, 3).await;
        let first = shop.basket(&[(lamp.as_str(), 2)]).await;
        let second = shop.basket(&[(lamp.as_str(), 2)]).await;
        let (key_a, key_b) = (format!("race-{round}-a"), format!("race-{round}-b"));
        let (a, b) = tokio::join!(
            shop.checkout(&first, "dan", &key_a),
            shop.checkout(&second, "erin", &key_b),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {} / {}", a.1, b.1);
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(loser["error"]["code"], "sold_out");
        assert_eq!(loser["error"]["fields"], json!({ lamp.as_str(): "1" }));
        assert_eq!(shop.stock(&lamp).await, 1, "round {round}");
    }
    let placed = shop.list_all("customerRef=dan", 20).await.len()
        + shop.list_all("customerRef=erin", 20).await.len();
    assert_eq!(placed, 4, "one order per round");

    // The same checkout sent twice at once: one order, stock taken once.
    shop.product("vase", "Vase", 2000, 5).await;
    let basket = shop.basket(&[("vase", 2)]).await;
    let (a, b) = tokio::join!(
        shop.checkout(&basket, "fay", "twice"),
        shop.checkout(&basket, "fay", "twice"),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", a.1, b.1);
    // (Fulfilment may confirm it between the two answers.)
    assert_eq!(
        without_progress(&a.1),
        without_progress(&b.1),
        "both answers are the one order"
    );
    assert_eq!(shop.stock("vase").await, 3);
    stack.shutdown().await;
}

#[tokio::test]
async fn order_status_follows_the_lifecycle() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("kettle", "Kettle", 2900, 20).await;
    let (_, order) = shop
        .checkout(&shop.basket(&[("kettle", 1)]).await, "gus", "life-1")
        .await;
    let id = order["id"].as_str().expect("id").to_owned();
    let confirmed = shop.wait_for_status(&id, "CONFIRMED", HAND_OFF).await;
    assert!(confirmed["updatedAt"].as_str() >= order["updatedAt"].as_str());

    let (status, paid) = shop.set_status(&id, "PAID").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["createdAt"], order["createdAt"]);
    assert!(paid["updatedAt"].as_str() >= confirmed["updatedAt"].as_str());
    for (to, expected) in [
        ("PAID", 409),
        ("CONFIRMED", 409),
        ("DELIVERED", 409),
        ("PLACED", 409),
        ("SHIPPED", 200),
        ("CANCELLED", 409),
        ("DELIVERED", 200),
        ("CANCELLED", 409),
    ] {
        let (status, body) = shop.set_status(&id, to).await;
        assert_eq!(status, expected, "to {to}: {body}");
        if status == 409 {
            assert_eq!(body["error"]["code"], "invalid_transition");
        }
    }
    let (_, got) = shop.send(Method::GET, &format!("/orders/{id}"), None).await;
    assert_eq!(got["status"], "DELIVERED");

    let (_, order) = shop
        .checkout(&shop.basket(&[("kettle", 1)]).await, "gus", "life-2")
        .await;
    let id = order["id"].as_str().expect("id").to_owned();
    // Cancelled whether or not fulfilment confirmed it first; a message
    // that comes after leaves it cancelled.
    assert_eq!(shop.set_status(&id, "CANCELLED").await.0, 200);
    assert_eq!(shop.set_status(&id, "PAID").await.0, 409);
    assert_eq!(shop.set_status(&id, "CONFIRMED").await.0, 409);

    // Two concurrent advances from CONFIRMED to PAID: exactly one wins.
    let (_, order) = shop
        .checkout(&shop.basket(&[("kettle", 1)]).await, "gus", "life-3")
        .await;
    let id = order["id"].as_str().expect("id").to_owned();
    shop.wait_for_status(&id, "CONFIRMED", HAND_OFF).await;
    let (a, b) = tokio::join!(shop.set_status(&id, "PAID"), shop.set_status(&id, "PAID"));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.1, b.1);

    let (status, body) = shop.set_status(&id, "LOST").await;
    assert_eq!(status, 400);
    assert!(body["error"]["fields"]["status"].is_string());
    let (status, body) = shop
        .set_status("o-00000000000000000000000000000000", "PAID")
        .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    stack.shutdown().await;
}

// Bug (issue #19): cancelling an order did not return its units to stock.
#[tokio::test]
async fn a_cancelled_orders_units_return_to_stock_exactly_once() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("bowl", "Bowl", 900, 6).await;
    shop.product("plate", "Plate", 1100, 4).await;
    let (status, order) = shop
        .checkout(
            &shop.basket(&[("bowl", 5), ("plate", 1)]).await,
            "kim",
            "cancel-1",
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (shop.stock("bowl").await, shop.stock("plate").await),
        (1, 3)
    );

    let (status, cancelled) = shop.set_status(&id, "CANCELLED").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        (shop.stock("bowl").await, shop.stock("plate").await),
        (6, 4)
    );
    let (_, stored) = shop.send(Method::GET, &format!("/orders/{id}"), None).await;
    assert_eq!(stored, cancelled, "the answer is what is stored");

    // The cancel sent again (its answer was lost): refused, nothing returned twice.
    let (status, body) = shop.set_status(&id, "CANCELLED").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("invalid_transition"))
    );
    assert_eq!(
        (shop.stock("bowl").await, shop.stock("plate").await),
        (6, 4)
    );

    // Two cancels of one order at once, a few times: one returns the units.
    for round in 0..3 {
        let (status, order) = shop
            .checkout(
                &shop.basket(&[("bowl", 2)]).await,
                "kim",
                &format!("cancel-race-{round}"),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().expect("id").to_owned();
        assert_eq!(shop.stock("bowl").await, 4);
        let (a, b) = tokio::join!(
            shop.set_status(&id, "CANCELLED"),
            shop.set_status(&id, "CANCELLED")
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: {} / {}", a.1, b.1);
        assert_eq!(shop.stock("bowl").await, 6, "round {round}");
    }

    // A shipped order keeps its units.
    let (_, order) = shop
        .checkout(&shop.basket(&[("plate", 2)]).await, "kim", "cancel-late")
        .await;
    let id = order["id"].as_str().expect("id").to_owned();
    shop.wait_for_status(&id, "CONFIRMED", HAND_OFF).await;
    for to in ["PAID", "SHIPPED"] {
        assert_eq!(shop.set_status(&id, to).await.0, 200, "to {to}");
    }
    assert_eq!(shop.set_status(&id, "CANCELLED").await.0, 409);
    assert_eq!(shop.stock("plate").await, 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn bad_checkouts_and_unknown_orders() {
    let stack = stack().await;
    let shop = Shop::new(&stack);

    let (status, body) = shop.checkout("nope", "", "a b").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "validation_failed");
    let fields = body["error"]["fields"].as_object().expect("fields");
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["basketId", "clientKey", "customerRef"]);

    let (status, body) = shop
        .send(Method::POST, "/orders", Some(json!({"basketId": 1})))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_request"))
    );

    let (status, body) = shop
        .checkout("6f9619ff-8b86-4d01-b42d-00c04fc964ff", "hal", "k")
        .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));

    let empty = shop.basket(&[]).await;
    let (status, body) = shop.checkout(&empty, "hal", "k").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["fields"]["basketId"].is_string());

    for path in [
        "/orders/o-00000000000000000000000000000000",
        "/orders/whatever",
    ] {
        let (status, body) = shop.send(Method::GET, path, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
    let (status, _) = shop.send(Method::GET, "/orders", None).await;
    assert_eq!(status, 400);
    let (status, body) = shop.send(Method::GET, "/orders?basketId=nope", None).await;
    assert_eq!(status, 400);
    assert!(body["error"]["fields"]["basketId"].is_string());
    stack.shutdown().await;
}

/// A queue that receives every event of the orders service on the
/// `shop` bus, through a rule the test adds with the EventBridge API.
async fn observe_order_events(stack: &Stack) -> aws_sdk_sqs::Client {
    let sqs = sqs(stack).await;
    let queue = sqs
        .create_queue()
        .queue_name("observed-order-events")
        .send()
        .await
        .expect("CreateQueue");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(queue.queue_url().expect("url"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .expect("QueueArn");
    let events = eventbridge(stack).await;
    events
        .put_rule()
        .event_bus_name("shop")
        .name("observe-orders")
        .event_pattern(r#"{"source": ["woocom.orders"]}"#)
        .send()
        .await
        .expect("PutRule");
    let out = events
        .put_targets()
        .event_bus_name("shop")
        .rule("observe-orders")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("observed")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    sqs
}

/// The next event of `detail_type` about order `id` in the observing queue.
async fn observed(sqs: &aws_sdk_sqs::Client, detail_type: &str, id: &str) -> Value {
    let message = receive_until(sqs, "observed-order-events", HAND_OFF, |event| {
        event["detail-type"] == detail_type && event["detail"]["orderId"] == id
    })
    .await;
    serde_json::from_str(message.body().expect("body")).expect("JSON")
}

#[tokio::test]
async fn checkout_and_status_changes_are_published_on_the_shop_bus() {
    let stack = stack().await;
    let events = observe_order_events(&stack).await;
    let shop = Shop::new(&stack);
    shop.product("tray", "Tray", 1800, 5).await;
    let (status, order) = shop
        .checkout(&shop.basket(&[("tray", 2)]).await, "jo", "bus-1")
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().expect("id").to_owned();

    let placed = observed(&events, "OrderPlaced", &id).await;
    assert_eq!(placed["source"], "woocom.orders");
    assert_eq!(
        placed["detail"],
        json!({
            "orderId": id, "customerRef": "jo",
            "items": [{"productId": "tray", "quantity": 2}],
            "total": 3600, "currency": "EUR", "placedAt": order["createdAt"],
        })
    );
    // The order-placed rule hands the same event to fulfilment.
    shop.wait_for_status(&id, "CONFIRMED", HAND_OFF).await;

    let (status, paid) = shop.set_status(&id, "PAID").await;
    assert_eq!(status, 200, "{paid}");
    let event = observed(&events, "OrderPaid", &id).await;
    assert_eq!(event["detail"]["status"], "PAID");
    assert_eq!(event["detail"]["previousStatus"], "CONFIRMED");
    assert_eq!(event["detail"]["changedAt"], paid["updatedAt"]);
    assert_eq!(event["detail"]["total"], 3600);

    assert_eq!(shop.set_status(&id, "CANCELLED").await.0, 200);
    let event = observed(&events, "OrderCancelled", &id).await;
    assert_eq!(event["detail"]["previousStatus"], "PAID");
    assert_eq!(shop.set_status(&id, "SHIPPED").await.0, 409);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_checkout_whose_hand_off_fails_still_places_the_order() {
    // The orders function publishes to a bus that does not exist:
    // EventBridge refuses every entry (PutEvents answers 200 with the
    // entry failed), so no event reaches fulfilment.
    let mut options = shop_options();
    options
        .manifest
        .functions
        .get_mut("orders")
        .expect("orders")
        .env
        .insert("EVENT_BUS_NAME".to_owned(), "no-such-bus".to_owned());
    let stack = Stack::start(options).await.expect("stack starts");
    let shop = Shop::new(&stack);
    shop.product("jug", "Jug", 2200, 3).await;
    let basket = shop.basket(&[("jug", 1)]).await;

    let (status, order) = shop.checkout(&basket, "ida", "lost-hand-off").await;
    assert_eq!(status, 201, "the customer gets the order: {order}");
    assert_eq!(order["status"], "PLACED");
    assert_eq!(shop.stock("jug").await, 2);
    // A retry publishes again (and fails again); the order is unchanged.
    let (status, again) = shop.checkout(&basket, "ida", "lost-hand-off").await;
    assert_eq!((status, &again), (200, &order));
    // A status change stands without its event too.
    let id = order["id"].as_str().expect("id");
    let (status, cancelled) = shop.set_status(id, "CANCELLED").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    stack.shutdown().await;
}

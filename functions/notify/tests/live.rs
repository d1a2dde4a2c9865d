//! Live updates through the whole local stack (dev.toml at the repository
//! root, started in-process on free ports): a real WebSocket client
//! subscribes through the `live` function, table changes flow through
//! DynamoDB Streams to `notify`, and `notify` pushes through `@connections`.
//! Stream delivery is asynchronous: every wait is bounded.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use woocom_dev::{Stack, StackOptions};
use woocom_testkit::{dynamodb, http, shop_stack as stack};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a change may take to reach a browser here.
const DELIVERY: Duration = Duration::from_secs(20);

async fn try_connect(stack: &Stack, query: &str) -> Result<Client, tungstenite::Error> {
    let url = format!("{}{query}", stack.urls().websocket);
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
}

async fn connect(stack: &Stack, query: &str) -> Client {
    try_connect(stack, query).await.expect("handshake accepted")
}

/// The next JSON message from the gateway, within [`DELIVERY`].
async fn next_json(ws: &mut Client) -> Value {
    loop {
        let message = tokio::time::timeout(DELIVERY, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Nothing arrives for a while. Called once another client has received the
/// push this one must not get, so the push has been sent if it ever will.
async fn assert_quiet(ws: &mut Client, wait: Duration) {
    if let Ok(message) = tokio::time::timeout(wait, ws.next()).await {
        panic!("expected no message, got {message:?}");
    }
}

/// Every item of the connections table as (topic, connectionId).
async fn subscriptions(db: &aws_sdk_dynamodb::Client) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let out = db
            .scan()
            .table_name("connections")
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan connections");
        for item in out.items() {
            let text = |k: &str| match item.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                other => panic!("{k}: {other:?}"),
            };
            rows.push((text("topic"), text("connectionId")));
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    rows.sort();
    rows
}

/// Waits (bounded) until the connections table satisfies `done`.
async fn wait_for_subscriptions(
    db: &aws_sdk_dynamodb::Client,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + DELIVERY;
    loop {
        let rows = subscriptions(db).await;
        if done(&rows) {
            return rows;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: connections table is {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_product(stack: &Stack, id: &str, stock: i64) {
    let response = http()
        .put(format!("{}/products/{id}", stack.urls().api))
        .json(&json!({ "name": "Mug", "price": 1200, "stock": stock }))
        .send()
        .await
        .expect("PUT product");
    assert_eq!(response.status(), 200, "PUT /products/{id}");
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[tokio::test]
async fn stock_changes_are_pushed_to_catalogue_subscribers() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;
    let mut ws = connect(&stack, "?topics=catalogue").await;

    // A connection that went away without its $disconnect: @connections
    // answers 410 and notify deletes its item.
    db.put_item()
        .table_name("connections")
        .item("topic", s("catalogue"))
        .item("connectionId", s("GoneConnId00000="))
        .item("expiresAt", AttributeValue::N("4102444800".into()))
        .send()
        .await
        .expect("put a stale subscription");

    // Creating a product is not a stock change (the subscription passes
    // MODIFY only); changing its stock is.
    put_product(&stack, "live-mug", 5).await;
    put_product(&stack, "live-mug", 4).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({ "type": "stock", "productId": "live-mug", "stock": 4 })
    );
    wait_for_subscriptions(&db, "the gone connection is forgotten", |rows| {
        rows.iter().all(|(_, c)| c != "GoneConnId00000=")
    })
    .await;

    // A change that leaves the stock alone pushes nothing; the next stock
    // change is the next message.
    let response = http()
        .put(format!("{}/products/live-mug", stack.urls().api))
        .json(&json!({ "name": "Mug", "price": 1500, "stock": 4 }))
        .send()
        .await
        .expect("PUT product");
    assert_eq!(response.status(), 200);
    put_product(&stack, "live-mug", 0).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({ "type": "stock", "productId": "live-mug", "stock": 0 })
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn order_status_changes_reach_the_orders_subscribers_only() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;
    let mut follower = connect(&stack, "?topics=catalogue").await;
    let mut bystander = connect(&stack, "?topics=order:o-other").await;

    follower
        .send(Message::text(
            r#"{"action":"subscribe","topics":["order:o-live-1"]}"#,
        ))
        .await
        .expect("send");
    assert_eq!(
        next_json(&mut follower).await,
        json!({ "type": "subscribed", "topics": ["order:o-live-1"] })
    );
    // The subscription replaced the catalogue.
    let rows = subscriptions(&db).await;
    assert_eq!(
        rows.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["order:o-live-1", "order:o-other"]
    );

    let order = |status: &str, updated_at: &str| -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("id".to_owned(), s("o-live-1")),
            ("basketId".to_owned(), s("b-1")),
            ("customerRef".to_owned(), s("alice")),
            ("status".to_owned(), s(status)),
            ("createdAt".to_owned(), s("2026-11-23T10:00:00Z")),
            ("updatedAt".to_owned(), s(updated_at)),
        ])
    };
    db.put_item()
        .table_name("orders")
        .set_item(Some(order("PLACED", "2026-11-23T10:00:00Z")))
        .send()
        .await
        .expect("put order");
    assert_eq!(
        next_json(&mut follower).await,
        json!({ "type": "order", "orderId": "o-live-1", "status": "PLACED",
                "updatedAt": "2026-11-23T10:00:00Z" })
    );
    db.update_item()
        .table_name("orders")
        .key("id", s("o-live-1"))
        .update_expression("SET #status = :paid, updatedAt = :now")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":paid", s("PAID"))
        .expression_attribute_values(":now", s("2026-11-23T10:05:00Z"))
        .send()
        .await
        .expect("update order");
    assert_eq!(
        next_json(&mut follower).await,
        json!({ "type": "order", "orderId": "o-live-1", "status": "PAID",
                "updatedAt": "2026-11-23T10:05:00Z" })
    );

    // The other order's follower heard nothing of it.
    assert_quiet(&mut bystander, Duration::from_millis(500)).await;

    // The catalogue is no longer the first client's topic: a catalogue
    // watcher gets the stock change, the first client does not.
    let mut watcher = connect(&stack, "?topics=catalogue").await;
    put_product(&stack, "live-cup", 2).await;
    put_product(&stack, "live-cup", 1).await;
    assert_eq!(
        next_json(&mut watcher).await,
        json!({ "type": "stock", "productId": "live-cup", "stock": 1 })
    );
    assert_quiet(&mut follower, Duration::from_millis(500)).await;
    assert_quiet(&mut bystander, Duration::from_millis(100)).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn disconnect_forgets_the_connection_and_bad_topics_are_refused() {
    let stack = stack().await;
    let db = dynamodb(&stack).await;

    for bad in [
        "?topics=prices",
        "?topics=order:a%2Fb",
        "?topics=catalogue,,",
    ] {
        match try_connect(&stack, bad).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 400, "{bad}")
            }
            Err(other) => panic!("{bad}: unexpected error {other}"),
            Ok(_) => panic!("{bad}: the handshake was accepted"),
        }
    }
    assert_eq!(subscriptions(&db).await, []);

    let mut ws = connect(&stack, "?topics=catalogue,order:o-7").await;
    let rows = subscriptions(&db).await;
    let topics: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["catalogue", "order:o-7"]);
    assert_eq!(rows[0].1, rows[1].1, "one connection");

    // An unknown action is answered with an error naming it.
    ws.send(Message::text(r#"{"action":"dance"}"#))
        .await
        .expect("send");
    let error = next_json(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "bad_request");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown action `dance`")),
        "{error}"
    );

    ws.close(None).await.expect("close");
    wait_for_subscriptions(&db, "$disconnect removes the rows", |rows| rows.is_empty()).await;
    stack.shutdown().await;
}

/// The connections table alone (no functions to build): the root
/// dev.toml's tables in an in-process DynamoDB.
async fn tables_only() -> Stack {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dev.toml");
    let mut options = StackOptions::from_manifest_file(&manifest)
        .expect("dev.toml is valid")
        .free_ports()
        .quiet_build();
    options.manifest.functions.clear();
    options.manifest.routes.clear();
    options.manifest.websocket = None;
    options.manifest.subscriptions.clear();
    Stack::start(options).await.expect("stack starts")
}

#[tokio::test]
async fn connection_repo_pages_replaces_and_removes() {
    use woocom_domain::live::{ConnectionRepo, MAX_TOPICS, PAGE_SIZE, Topic, expires_at, now_secs};
    let stack = tables_only().await;
    let db = dynamodb(&stack).await;
    let repo = ConnectionRepo::new(db.clone(), "connections".to_owned());
    let now = now_secs();

    // More connections on one topic than a page holds, and some whose
    // items expired (TTL deletes them only eventually).
    let topic = Topic::order("o-busy");
    let live: Vec<String> = (0..PAGE_SIZE * 2 + 37)
        .map(|i| format!("conn-{i:05}="))
        .collect();
    for id in &live {
        repo.subscribe(id, std::slice::from_ref(&topic), now + 60)
            .await
            .expect("subscribe");
    }
    for i in 0..5 {
        repo.subscribe(&format!("old-{i}="), std::slice::from_ref(&topic), now - 1)
            .await
            .expect("subscribe");
    }
    let first = repo.page(&topic, None, now).await.expect("page");
    assert!(first.next.is_some(), "more than one page");
    let mut ids = repo.connection_ids(&topic, now).await.expect("all pages");
    ids.sort();
    assert_eq!(ids, live);

    // Replace: from every topic allowed to two, one of them kept.
    let many: Vec<Topic> = std::iter::once(Topic::Catalogue)
        .chain((1..MAX_TOPICS).map(|i| Topic::order(&format!("o-{i}"))))
        .collect();
    let expiry = expires_at(0, now);
    repo.subscribe("me=", &many, expiry)
        .await
        .expect("subscribe");
    let mut topics = repo.topics_of("me=").await.expect("topics");
    topics.sort();
    assert_eq!(topics.len(), MAX_TOPICS);
    repo.replace("me=", &[Topic::order("o-3"), Topic::order("o-new")], expiry)
        .await
        .expect("replace");
    let mut topics = repo.topics_of("me=").await.expect("topics");
    topics.sort();
    assert_eq!(topics, ["order:o-3", "order:o-new"]);
    assert_eq!(
        repo.connection_ids(&Topic::Catalogue, now)
            .await
            .expect("catalogue"),
        Vec::<String>::new()
    );

    assert_eq!(repo.remove_connection("me=").await.expect("remove"), 2);
    assert_eq!(
        repo.topics_of("me=").await.expect("topics"),
        Vec::<String>::new()
    );
    assert_eq!(
        repo.remove_connection("me=").await.expect("remove again"),
        0
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn an_undelivered_record_is_reported_and_pushed_on_the_retry() {
    use woocom_dev::dynamodb::{FaultRule, InjectedError};
    let stack = stack().await;
    let mut ws = connect(&stack, "?topics=catalogue").await;
    put_product(&stack, "live-pot", 3).await;

    // Every Query of the connections table fails: notify cannot find the
    // subscribers, so it reports the record instead of dropping it.
    stack
        .dynamodb()
        .faults()
        .set(
            "connections",
            FaultRule {
                rate: 1.0,
                error: InjectedError::InternalServerError,
                operations: vec!["Query".to_owned()],
                count: None,
            },
        )
        .expect("fault rule");
    put_product(&stack, "live-pot", 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = stack.event_source_mappings().status().await;
        let products = status
            .iter()
            .find(|m| m.table.as_deref() == Some("products"))
            .expect("the products subscription");
        if products.last_processing_result == "PROBLEM: partial batch failure" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no partial batch failure reported: {products:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The stream brings the record again; with DynamoDB answering, it is
    // pushed.
    stack.dynamodb().faults().clear(None);
    assert_eq!(
        next_json(&mut ws).await,
        json!({ "type": "stock", "productId": "live-pot", "stock": 2 })
    );
    stack.shutdown().await;
}

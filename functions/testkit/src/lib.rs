//! What the function crates' whole-stack tests share: the shop's stack
//! (the repository's dev.toml, started in-process on free ports, every
//! function its real binary) and clients for it.

// Test support: a failure to start or to reach the stack is the test's
// failure, with the reason in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use woocom_dev::{Stack, StackOptions};

/// The shop as `woocom-dev up` runs it, minus the frontend and seed data,
/// on free ports with tables in memory.
pub async fn shop_stack() -> Stack {
    Stack::start(shop_options()).await.expect("stack starts")
}

/// What [`shop_stack`] starts, for a test that changes a setting first
/// (a function's environment, say).
pub fn shop_options() -> StackOptions {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dev.toml");
    StackOptions::from_manifest_file(&manifest)
        .expect("dev.toml is valid")
        .free_ports()
        .quiet_build()
}

/// An HTTP client that never goes through a proxy (everything is loopback).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

// The devserver's tests and benches configure the SDKs the same way.
#[path = "../../../devserver/tests/common/sdk.rs"]
mod sdk;

/// The AWS SDK's DynamoDB client for the stack's endpoint, over plain HTTP.
pub async fn dynamodb(stack: &Stack) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk::config(&stack.urls().aws).await)
}

/// The AWS SDK's SQS client for the stack's endpoint, over plain HTTP.
pub async fn sqs(stack: &Stack) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk::config(&stack.urls().aws).await)
}

/// The AWS SDK's EventBridge client for the stack's endpoint, over plain
/// HTTP.
pub async fn eventbridge(stack: &Stack) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&sdk::config(&stack.urls().aws).await)
}

/// Receives from `queue` until a message whose body `wanted` accepts
/// arrives, for at most `within`, deleting what it receives; that message.
pub async fn receive_until(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    within: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> aws_sdk_sqs::types::Message {
    let url = sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .expect("queue url")
        .queue_url
        .expect("url");
    let deadline = Instant::now() + within;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        for message in out.messages.unwrap_or_default() {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete");
            let body: Value =
                serde_json::from_str(message.body().unwrap_or_default()).unwrap_or(Value::Null);
            if wanted(&body) {
                return message;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no wanted message in {queue} within {within:?}"
        );
    }
}

/// A DynamoDB client for an address nothing answers on: for handler unit
/// tests that must stop (on validation, routing) before any store call.
pub fn unreachable_dynamodb() -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The REST API as the frontend calls it.
pub struct Shop {
    pub http: reqwest::Client,
    pub api: String,
}

impl Shop {
    pub fn new(stack: &Stack) -> Shop {
        Shop {
            http: http(),
            api: stack.urls().api.clone(),
        }
    }

    /// Sends a request and returns the status and the JSON body; every
    /// answer must allow any origin (the frontend is served elsewhere).
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"*"[..]),
            "{method} {path} allows any origin"
        );
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Creates or replaces a product.
    pub async fn product(&self, id: &str, name: &str, price: i64, stock: i64) {
        let (status, body) = self
            .send(
                Method::PUT,
                &format!("/products/{id}"),
                Some(json!({ "name": name, "price": price, "stock": stock })),
            )
            .await;
        assert_eq!(status, 200, "PUT /products/{id}: {body}");
    }

    /// A product's stock level.
    pub async fn stock(&self, id: &str) -> i64 {
        let (status, body) = self
            .send(Method::GET, &format!("/products/{id}"), None)
            .await;
        assert_eq!(status, 200, "GET /products/{id}: {body}");
        body["stock"].as_i64().expect("stock")
    }

    /// A new basket holding `lines`; its id.
    pub async fn basket(&self, lines: &[(&str, i64)]) -> String {
        let (status, basket) = self.send(Method::POST, "/baskets", None).await;
        assert_eq!(status, 201, "{basket}");
        let id = basket["id"].as_str().expect("id").to_owned();
        for (product, quantity) in lines {
            let (status, body) = self
                .send(
                    Method::POST,
                    &format!("/baskets/{id}/items"),
                    Some(json!({"productId": product, "quantity": quantity})),
                )
                .await;
            assert_eq!(status, 200, "add {product}: {body}");
        }
        id
    }

    pub async fn checkout(&self, basket: &str, customer: &str, key: &str) -> (u16, Value) {
        self.send(
            Method::POST,
            "/orders",
            Some(json!({"basketId": basket, "customerRef": customer, "clientKey": key})),
        )
        .await
    }

    pub async fn set_status(&self, order: &str, status: &str) -> (u16, Value) {
        self.send(
            Method::POST,
            &format!("/orders/{order}/status"),
            Some(json!({ "status": status })),
        )
        .await
    }

    /// Reads order `id` until its status is `status`, for at most
    /// `within`; the order as last read. The status moves on
    /// asynchronously (fulfilment takes a placed order on through the
    /// `shop` bus's `order-placed` rule and the `fulfilment` queue).
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, order) = self.send(Method::GET, &format!("/orders/{id}"), None).await;
            assert_eq!(code, 200, "GET /orders/{id}: {order}");
            if order["status"] == status {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} is still {} after {within:?}, not {status}",
                order["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every order of a listing, following `next` with pages of `limit`.
    pub async fn list_all(&self, query: &str, limit: u32) -> Vec<Value> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..20 {
            let mut path = format!("/orders?{query}&limit={limit}");
            if let Some(n) = &next {
                path.push_str(&format!("&next={n}"));
            }
            let (status, page) = self.send(Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {page}");
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= limit as usize);
            all.extend(items.iter().cloned());
            next = page["next"].as_str().map(str::to_owned);
            if next.is_none() {
                return all;
            }
        }
        panic!("listing {query} never ended");
    }
}

//! The products API through the whole local stack (dev.toml at the
//! repository root, started in-process on free ports): API Gateway → this
//! function's real binary → DynamoDB.

use serde_json::{Value, json};
use woocom_testkit::{http, shop_stack as stack};

#[tokio::test]
async fn create_get_list_and_validate_products() {
    let stack = stack().await;
    let api = &stack.urls().api;
    let http = http();

    let missing = http
        .get(format!("{api}/products/teapot"))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");

    for (id, name, price) in [
        ("teapot", "Teapot", 3900),
        ("mug", "Mug", 1200),
        ("cup", "Cup", 800),
    ] {
        let put = http
            .put(format!("{api}/products/{id}"))
            .json(&json!({ "name": name, "price": price, "stock": 4 }))
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), 200, "PUT {id}");
    }
    let got: Value = http
        .get(format!("{api}/products/teapot"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        got,
        json!({ "id": "teapot", "name": "Teapot", "description": "",
        "price": 3900, "currency": "EUR", "stock": 4, "category": "" })
    );

    // Pages of two: every product exactly once.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..5 {
        let mut url = format!("{api}/products?limit=2");
        if let Some(n) = &next {
            url.push_str(&format!("&next={n}"));
        }
        let page: Value = http
            .get(url)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        next = page["next"].as_str().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["cup", "mug", "teapot"]);

    let bad = http
        .put(format!("{api}/products/mug"))
        .json(&json!({ "name": "", "price": -1, "stock": 1 }))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(body["error"]["fields"]["price"].is_string());
    stack.shutdown().await;
}

/// Throttling is absorbed by the SDK's retries (woocom_domain::aws): with
/// fewer injected failures than attempts the caller never sees them; with
/// as many, it gets the contract's 503, and nothing is left half done.
#[tokio::test]
async fn throttled_reads_are_retried_then_reported() {
    use woocom_dev::dynamodb::{FaultRule, InjectedError};
    use woocom_testkit::Shop;

    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("kettle", "Kettle", 4500, 2).await;
    let get = || shop.send(reqwest::Method::GET, "/products/kettle", None);
    let throttle = |count| FaultRule {
        rate: 1.0,
        error: InjectedError::ProvisionedThroughputExceededException,
        operations: vec!["GetItem".to_owned()],
        count: Some(count),
    };
    let faults = stack.dynamodb().faults();

    // One attempt fewer than the SDK makes: the last one succeeds.
    let attempts = u64::from(woocom_domain::aws::MAX_ATTEMPTS);
    faults
        .set("products", throttle(attempts - 1))
        .expect("rule");
    let (status, body) = get().await;
    assert_eq!(status, 200, "retried past the throttling: {body}");
    assert_eq!(body["name"], "Kettle");
    assert!(faults.list().is_empty(), "all met: {:?}", faults.list());

    // As many failures as attempts: a clear 503, no retry beyond them.
    faults.set("products", throttle(attempts)).expect("rule");
    let (status, body) = get().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    assert!(faults.list().is_empty(), "{:?}", faults.list());
    let (status, _) = get().await;
    assert_eq!(status, 200, "the store answers again");
}

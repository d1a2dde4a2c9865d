//! The baskets API through the whole local stack (dev.toml at the
//! repository root, started in-process on free ports): API Gateway → this
//! function's real binary → DynamoDB.

use reqwest::Method;
use serde_json::{Value, json};
use woocom_testkit::{Shop, shop_stack as stack};

fn quantities(basket: &Value) -> Vec<(String, i64)> {
    basket["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| {
            (
                l["productId"].as_str().expect("productId").to_owned(),
                l["quantity"].as_i64().expect("quantity"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_basket_is_created_filled_changed_and_emptied() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("mug", "Mug", 1200, 10).await;
    shop.product("cup", "Cup", 800, 10).await;

    let (status, basket) = shop.send(Method::POST, "/baskets", None).await;
    assert_eq!(status, 201, "{basket}");
    assert_eq!(basket["status"], "OPEN");
    assert_eq!(basket["items"], json!([]));
    assert_eq!(basket["total"], 0);
    assert_eq!(basket["orderId"], Value::Null);
    assert!(basket["updatedAt"].is_string());
    let id = basket["id"].as_str().expect("id").to_owned();
    let items = format!("/baskets/{id}/items");

    let (status, got) = shop
        .send(Method::GET, &format!("/baskets/{id}"), None)
        .await;
    assert_eq!((status, &got), (200, &basket));

    let (status, basket) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "mug", "quantity": 2})),
        )
        .await;
    assert_eq!(status, 200, "{basket}");
    assert_eq!(
        basket["items"],
        json!([{"productId": "mug", "name": "Mug", "unitPrice": 1200, "quantity": 2, "lineTotal": 2400}])
    );
    let (_, basket) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "mug", "quantity": 1})),
        )
        .await;
    assert_eq!(
        quantities(&basket),
        [("mug".to_owned(), 3)],
        "adds to the line"
    );
    let (_, basket) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "cup", "quantity": 1})),
        )
        .await;
    assert_eq!(basket["total"], 3 * 1200 + 800);
    assert_eq!(basket["currency"], "EUR");

    let (status, basket) = shop
        .send(
            Method::PUT,
            &format!("{items}/mug"),
            Some(json!({"quantity": 5})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        quantities(&basket),
        [("mug".to_owned(), 5), ("cup".to_owned(), 1)]
    );
    assert_eq!(basket["total"], 5 * 1200 + 800);

    // A line takes the price the product has when the line changes.
    shop.product("cup", "Cup", 900, 10).await;
    let (_, basket) = shop
        .send(
            Method::PUT,
            &format!("{items}/cup"),
            Some(json!({"quantity": 2})),
        )
        .await;
    assert_eq!(basket["total"], 5 * 1200 + 2 * 900);

    let (_, basket) = shop
        .send(
            Method::PUT,
            &format!("{items}/cup"),
            Some(json!({"quantity": 0})),
        )
        .await;
    assert_eq!(quantities(&basket), [("mug".to_owned(), 5)], "0 removes");
    let (status, basket) = shop
        .send(Method::DELETE, &format!("{items}/mug"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(basket["items"], json!([]));
    assert_eq!(basket["total"], 0);
    let (_, got) = shop
        .send(Method::GET, &format!("/baskets/{id}"), None)
        .await;
    assert_eq!(got, basket, "the answer is what is stored");
    stack.shutdown().await;
}

#[tokio::test]
async fn bad_lines_unknown_products_and_unknown_baskets() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    // More than 99 in stock: the per-line bound is what is tested.
    shop.product("mug", "Mug", 1200, 200).await;
    let (_, basket) = shop.send(Method::POST, "/baskets", None).await;
    let id = basket["id"].as_str().expect("id").to_owned();
    let items = format!("/baskets/{id}/items");

    let (status, body) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "mug", "quantity": 0})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(body["error"]["fields"]["quantity"].is_string());

    let (status, body) = shop
        .send(
            Method::PUT,
            &format!("{items}/mug"),
            Some(json!({"quantity": 100})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["fields"]["quantity"].is_string());

    shop.send(
        Method::POST,
        &items,
        Some(json!({"productId": "mug", "quantity": 99})),
    )
    .await;
    let (status, body) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "mug", "quantity": 1})),
        )
        .await;
    assert_eq!(status, 400, "99 is the most of one product: {body}");

    let (status, body) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "teapot", "quantity": 1})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body) = shop
        .send(Method::POST, &items, Some(json!({"productId": "mug"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");

    let unknown = "6f9619ff-8b86-4d01-b42d-00c04fc964ff";
    for (method, path) in [
        (Method::GET, format!("/baskets/{unknown}")),
        (Method::DELETE, format!("/baskets/{unknown}/items/mug")),
        (Method::GET, "/baskets/not-a-basket".to_owned()),
    ] {
        let (status, body) = shop.send(method.clone(), &path, None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = shop
        .send(
            Method::POST,
            &format!("/baskets/{unknown}/items"),
            Some(json!({"productId": "mug", "quantity": 1})),
        )
        .await;
    assert_eq!(status, 404);
    stack.shutdown().await;
}

// Bug (issue #19): a product with 6 in stock took 7 in the basket, and
// the basket took 50; the customer learnt it at checkout.
#[tokio::test]
async fn a_basket_takes_no_more_than_is_in_stock() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    shop.product("lamp", "Lamp", 4500, 6).await;
    let (_, basket) = shop.send(Method::POST, "/baskets", None).await;
    let id = basket["id"].as_str().expect("id").to_owned();
    let items = format!("/baskets/{id}/items");

    let (status, body) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "lamp", "quantity": 7})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "sold_out");
    assert_eq!(body["error"]["fields"], json!({"lamp": "6"}));
    let (status, basket) = shop
        .send(
            Method::POST,
            &items,
            Some(json!({"productId": "lamp", "quantity": 6})),
        )
        .await;
    assert_eq!(status, 200, "{basket}");
    let (status, body) = shop
        .send(
            Method::PUT,
            &format!("{items}/lamp"),
            Some(json!({"quantity": 50})),
        )
        .await;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("sold_out")));
    let (_, got) = shop
        .send(Method::GET, &format!("/baskets/{id}"), None)
        .await;
    assert_eq!(quantities(&got), [("lamp".to_owned(), 6)]);

    // Someone bought four meanwhile: the line comes down to what is left.
    shop.product("lamp", "Lamp", 4500, 2).await;
    let (status, _) = shop
        .send(
            Method::PUT,
            &format!("{items}/lamp"),
            Some(json!({"quantity": 3})),
        )
        .await;
    assert_eq!(
        status, 200,
        "coming down is allowed while still above stock"
    );
    let (status, body) = shop
        .send(
            Method::PUT,
            &format!("{items}/lamp"),
            Some(json!({"quantity": 4})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["fields"]),
        (409, &json!({"lamp": "2"}))
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn concurrent_changes_to_one_basket_are_all_kept() {
    let stack = stack().await;
    let shop = Shop::new(&stack);
    for p in ["a", "b", "c", "d"] {
        shop.product(p, p, 100, 10).await;
    }
    let (_, basket) = shop.send(Method::POST, "/baskets", None).await;
    let id = basket["id"].as_str().expect("id").to_owned();
    let items = format!("/baskets/{id}/items");
    let add = |p: &'static str| {
        shop.send(
            Method::POST,
            &items,
            Some(json!({"productId": p, "quantity": 1})),
        )
    };
    let answers = tokio::join!(add("a"), add("b"), add("c"), add("d"));
    for (status, body) in [answers.0, answers.1, answers.2, answers.3] {
        assert_eq!(status, 200, "{body}");
    }
    let (_, basket) = shop
        .send(Method::GET, &format!("/baskets/{id}"), None)
        .await;
    let mut got = quantities(&basket);
    got.sort();
    assert_eq!(
        got,
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1),
            ("d".to_owned(), 1)
        ],
        "no change lost another"
    );
    assert_eq!(basket["total"], 400);
    stack.shutdown().await;
}

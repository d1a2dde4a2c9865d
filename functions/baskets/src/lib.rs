//! `POST /baskets`, `GET /baskets/{id}`, `POST /baskets/{id}/items` (add
//! to a line), `PUT /baskets/{id}/items/{productId}` (set a line; 0
//! removes it), `DELETE /baskets/{id}/items/{productId}`.
//!
//! A change reads the basket, applies itself, and writes the basket back on
//! condition it is still open at the version read; when another change got
//! there first it reads again ([`MAX_ATTEMPTS`] times in all).

use chrono::Utc;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;
use woocom_domain::basket::{self, AddItemInput, SetQuantityInput, timestamp};
use woocom_domain::error::{body_of, json_response, respond};
use woocom_domain::product::valid_id as valid_product_id;
use woocom_domain::{ApiError, Basket, BasketRepo, Product, ProductRepo, aws};

/// Reads and conditional writes of one change before giving up with 409.
pub const MAX_ATTEMPTS: usize = 5;

pub struct Handler {
    pub baskets: BasketRepo,
    pub products: ProductRepo,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        let baskets = aws::env("BASKETS_TABLE")?;
        let products = aws::env("PRODUCTS_TABLE")?;
        let client = aws::dynamodb().await;
        Ok(Handler {
            baskets: BasketRepo::new(client.clone(), baskets),
            products: ProductRepo::new(client, products),
        })
    }
}

pub async fn handle(handler: &Handler, request: Request) -> Result<Response<Body>, Error> {
    Ok(respond(route(handler, &request).await))
}

async fn route(handler: &Handler, request: &Request) -> Result<Response<Body>, ApiError> {
    let params = request.path_parameters_ref();
    let id = params.and_then(|p| p.first("id")).map(str::to_owned);
    let product_id = params.and_then(|p| p.first("productId")).map(str::to_owned);
    let method = request.method().as_str();
    match (method, id, product_id) {
        ("POST", None, None) => create(handler).await,
        ("GET", Some(id), None) => get(handler, &id).await,
        ("POST", Some(id), None) => add(handler, &id, request.body()).await,
        ("PUT", Some(id), Some(product_id)) => set(handler, &id, &product_id, request.body()).await,
        ("DELETE", Some(id), Some(product_id)) => remove(handler, &id, &product_id).await,
        (other, _, _) => Err(ApiError::method_not_allowed(other)),
    }
}

fn no_basket(id: &str) -> ApiError {
    ApiError::not_found(format!("no basket {id}"))
}

async fn create(handler: &Handler) -> Result<Response<Body>, ApiError> {
    let now = Utc::now();
    let mut basket = Basket::new(now);
    handler.baskets.create(&mut basket, now).await?;
    Ok(json_response(201, &json!(basket)))
}

async fn get(handler: &Handler, id: &str) -> Result<Response<Body>, ApiError> {
    if !basket::valid_id(id) {
        return Err(no_basket(id));
    }
    match handler.baskets.get(id).await? {
        Some(basket) => Ok(json_response(200, &json!(basket))),
        None => Err(no_basket(id)),
    }
}

async fn product(handler: &Handler, id: &str) -> Result<Product, ApiError> {
    handler
        .products
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no product {id}")))
}

async fn add(handler: &Handler, id: &str, body: &Body) -> Result<Response<Body>, ApiError> {
    if !basket::valid_id(id) {
        return Err(no_basket(id));
    }
    let input: AddItemInput = body_of(body, "a line (productId, quantity)")?;
    input.validate()?;
    let product = product(handler, &input.product_id).await?;
    change(handler, id, |basket| basket.add(&product, input.quantity)).await
}

async fn set(
    handler: &Handler,
    id: &str,
    product_id: &str,
    body: &Body,
) -> Result<Response<Body>, ApiError> {
    if !basket::valid_id(id) {
        return Err(no_basket(id));
    }
    let input: SetQuantityInput = body_of(body, "a quantity")?;
    input.validate()?;
    if input.quantity == 0 {
        return change(handler, id, |basket| {
            basket.remove(product_id);
            Ok(())
        })
        .await;
    }
    if !valid_product_id(product_id) {
        return Err(ApiError::not_found(format!("no product {product_id}")));
    }
    let product = product(handler, product_id).await?;
    change(handler, id, |basket| basket.set(&product, input.quantity)).await
}

async fn remove(handler: &Handler, id: &str, product_id: &str) -> Result<Response<Body>, ApiError> {
    if !basket::valid_id(id) {
        return Err(no_basket(id));
    }
    change(handler, id, |basket| {
        basket.remove(product_id);
        Ok(())
    })
    .await
}

/// Applies `apply` to the stored basket and writes it back if nobody
/// changed or closed it meanwhile; answers the basket as stored.
async fn change<F>(handler: &Handler, id: &str, apply: F) -> Result<Response<Body>, ApiError>
where
    F: Fn(&mut Basket) -> Result<(), ApiError>,
{
    for _ in 0..MAX_ATTEMPTS {
        let mut basket = handler
            .baskets
            .get(id)
            .await?
            .ok_or_else(|| no_basket(id))?;
        if !basket.is_open() {
            return Err(ApiError::basket_closed(id));
        }
        apply(&mut basket)?;
        let now = Utc::now();
        basket.updated_at = timestamp(now);
        if handler.baskets.save(&mut basket, now).await? {
            return Ok(json_response(200, &json!(basket)));
        }
    }
    Err(ApiError::conflict(format!(
        "basket {id} kept changing while this change was applied; try again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;

    /// A handler whose store is unreachable: these tests stop before it.
    fn handler() -> Handler {
        let client = woocom_testkit::unreachable_dynamodb();
        Handler {
            baskets: BasketRepo::new(client.clone(), "baskets".into()),
            products: ProductRepo::new(client, "products".into()),
        }
    }

    const BASKET: &str = "6f9619ff-8b86-4d01-b42d-00c04fc964ff";

    fn request(method: &str, params: &[(&str, &str)], body: &str) -> Request {
        let req = lambda_http::http::Request::builder()
            .method(method)
            .uri("/baskets")
            .body(Body::Text(body.to_owned()))
            .expect("request");
        let params: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        req.with_path_parameters(QueryMap::from(params))
    }

    async fn answer(req: Request) -> (u16, serde_json::Value) {
        let response = handle(&handler(), req).await.expect("a response");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "every answer allows any origin"
        );
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body().as_ref()).expect("JSON body");
        (status, body)
    }

    #[tokio::test]
    async fn a_bad_line_names_each_field() {
        let (status, body) = answer(request(
            "POST",
            &[("id", BASKET)],
            r#"{"productId":"a b","quantity":100}"#,
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["fields"]["productId"].is_string());
        assert!(body["error"]["fields"]["quantity"].is_string());
    }

    #[tokio::test]
    async fn a_negative_quantity_is_refused() {
        let (status, body) = answer(request(
            "PUT",
            &[("id", BASKET), ("productId", "mug")],
            r#"{"quantity":-1}"#,
        ))
        .await;
        assert_eq!(status, 400);
        assert!(body["error"]["fields"]["quantity"].is_string());
    }

    #[tokio::test]
    async fn malformed_json_and_unknown_fields_are_bad_requests() {
        for body in ["{nope", r#"{"productId":"mug","quantity":1,"price":1}"#, ""] {
            let (status, answer) = answer(request("POST", &[("id", BASKET)], body)).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(answer["error"]["code"], "bad_request");
        }
    }

    #[tokio::test]
    async fn ids_that_no_basket_can_have_are_404() {
        let (status, body) = answer(request("GET", &[("id", "not-a-basket")], "")).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = answer(request("DELETE", &[("id", "x"), ("productId", "mug")], "")).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn other_methods_are_405() {
        let (status, body) = answer(request("PATCH", &[("id", BASKET)], "")).await;
        assert_eq!(status, 405);
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}

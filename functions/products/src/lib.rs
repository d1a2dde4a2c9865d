//! `GET /products` (pagination with `limit` and `next`), `GET
//! /products/{id}`, `PUT /products/{id}` (create or replace, validated).

use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;
use woocom_domain::error::{body_of, json_response, respond};
use woocom_domain::product::valid_id;
use woocom_domain::{ApiError, ProductInput, ProductRepo, aws};

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

pub struct Handler {
    pub products: ProductRepo,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        let table = aws::env("PRODUCTS_TABLE")?;
        Ok(Handler {
            products: ProductRepo::new(aws::dynamodb().await, table),
        })
    }
}

pub async fn handle(handler: &Handler, request: Request) -> Result<Response<Body>, Error> {
    Ok(respond(route(handler, &request).await))
}

async fn route(handler: &Handler, request: &Request) -> Result<Response<Body>, ApiError> {
    let id = request
        .path_parameters_ref()
        .and_then(|p| p.first("id"))
        .map(str::to_owned);
    let method = request.method().as_str();
    match (method, id) {
        ("GET", None) => list(handler, request).await,
        ("GET", Some(id)) => get(handler, &id).await,
        ("PUT", Some(id)) => put(handler, &id, request.body()).await,
        (other, _) => Err(ApiError::method_not_allowed(other)),
    }
}

async fn list(handler: &Handler, request: &Request) -> Result<Response<Body>, ApiError> {
    let query = request.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<i32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_PAGE}"
                )));
            }
        },
    };
    let cursor = query.and_then(|q| q.first("next"));
    let page = handler.products.list(limit, cursor).await?;
    Ok(json_response(200, &json!(page)))
}

async fn get(handler: &Handler, id: &str) -> Result<Response<Body>, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::not_found(format!("no product {id}")));
    }
    match handler.products.get(id).await? {
        Some(product) => Ok(json_response(200, &json!(product))),
        None => Err(ApiError::not_found(format!("no product {id}"))),
    }
}

async fn put(handler: &Handler, id: &str, body: &Body) -> Result<Response<Body>, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::bad_request(
            "a product id is 1-64 letters, digits, `-` or `_`",
        ));
    }
    let input: ProductInput = body_of(body, "a product")?;
    input.validate()?;
    let product = input.into_product(id.to_owned());
    handler.products.put(&product).await?;
    Ok(json_response(200, &json!(product)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;

    /// A handler whose store is unreachable: these tests stop before it.
    fn handler() -> Handler {
        Handler {
            products: ProductRepo::new(woocom_testkit::unreachable_dynamodb(), "products".into()),
        }
    }

    fn request(method: &str, id: Option<&str>, body: &str) -> Request {
        let mut req = lambda_http::http::Request::builder()
            .method(method)
            .uri("/products")
            .body(Body::Text(body.to_owned()))
            .expect("request");
        if let Some(id) = id {
            req = req.with_path_parameters(QueryMap::from(HashMap::from([(
                "id".to_owned(),
                id.to_owned(),
            )])));
        }
        req
    }

    async fn error_of(req: Request) -> (u16, serde_json::Value) {
        let response = handle(&handler(), req).await.expect("a response");
        let status = response.status().as_u16();
        let body: serde_json::Value =
            serde_json::from_slice(response.body().as_ref()).expect("JSON body");
        (status, body)
    }

    #[tokio::test]
    async fn invalid_product_names_each_field() {
        let (status, body) = error_of(request(
            "PUT",
            Some("mug"),
            r#"{"name":"","price":-1,"stock":2}"#,
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(body["error"]["fields"]["name"].is_string());
        assert!(body["error"]["fields"]["price"].is_string());
    }

    #[tokio::test]
    async fn malformed_json_is_400_and_unknown_methods_405() {
        let (status, body) = error_of(request("PUT", Some("mug"), "{nope")).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "bad_request");
        let (status, _) = error_of(request("DELETE", Some("mug"), "")).await;
        assert_eq!(status, 405);
    }

    #[tokio::test]
    async fn bad_limit_is_400() {
        let req =
            request("GET", None, "").with_query_string_parameters(QueryMap::from(HashMap::from([
                ("limit".to_owned(), "1000".to_owned()),
            ])));
        let (status, body) = error_of(req).await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit"))
        );
    }
}

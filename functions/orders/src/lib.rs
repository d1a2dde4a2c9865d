//! `POST /orders` (checkout), `GET /orders/{id}`, `GET
//! /orders?customerRef=` or `?basketId=` (newest first, `limit` and
//! `next`), `POST /orders/{id}/status`.
//!
//! Checkout places the order in one DynamoDB transaction
//! ([`OrderRepo::place`]) whose id comes from the client's `clientKey`, so
//! a repeated request finds the order its first attempt placed and answers
//! it with 200 instead of charging stock twice.
//!
//! The service announces its facts on the shop's EventBridge bus
//! ([`events`]): `OrderPlaced` once the checkout transaction has
//! committed (a rule hands it to fulfilment), and `OrderPaid`,
//! `OrderCancelled`, ... once a status change has. The change stands
//! whether or not the event is published: a failed publish is logged and
//! the caller still gets their order (a placed one stays `PLACED`). A
//! retried checkout (same `clientKey`) of an order still `PLACED`
//! publishes again; fulfilment ignores an order it has taken on.

pub mod events;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;
use woocom_domain::basket::{self, Basket};
use woocom_domain::error::{body_of, json_response, respond};
use woocom_domain::events::{OrderEvent, OrderPlaced, StatusChanged};
use woocom_domain::order::{
    self, Cancellation, CheckoutInput, OrderIndex, Placement, StatusInput, order_id_for,
    sold_out_error,
};
use woocom_domain::{ApiError, BasketRepo, Line, Order, OrderRepo, OrderStatus, aws};

pub use events::OrderEvents;

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;
/// Transactions or conditional updates one request tries before answering
/// 409: each retry follows a change someone else made meanwhile.
pub const MAX_ATTEMPTS: u32 = 5;

pub struct Handler {
    pub orders: OrderRepo,
    pub baskets: BasketRepo,
    pub events: OrderEvents,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        let orders = aws::env("ORDERS_TABLE")?;
        let baskets = aws::env("BASKETS_TABLE")?;
        let products = aws::env("PRODUCTS_TABLE")?;
        let bus = aws::env("EVENT_BUS_NAME")?;
        let config = aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        Ok(Handler {
            orders: OrderRepo::new(client.clone(), orders, baskets.clone(), products),
            baskets: BasketRepo::new(client, baskets),
            events: OrderEvents::new(aws_sdk_eventbridge::Client::new(&config), bus),
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
        ("POST", None) => checkout(handler, request.body()).await,
        ("GET", None) => list(handler, request).await,
        ("GET", Some(id)) => get(handler, &id).await,
        ("POST", Some(id)) => set_status(handler, &id, request.body()).await,
        (other, _) => Err(ApiError::method_not_allowed(other)),
    }
}

fn no_order(id: &str) -> ApiError {
    ApiError::not_found(format!("no order {id}"))
}

async fn get(handler: &Handler, id: &str) -> Result<Response<Body>, ApiError> {
    if !order::valid_id(id) {
        return Err(no_order(id));
    }
    match handler.orders.get(id).await? {
        Some(order) => Ok(json_response(200, &json!(order))),
        None => Err(no_order(id)),
    }
}

async fn checkout(handler: &Handler, body: &Body) -> Result<Response<Body>, ApiError> {
    let input: CheckoutInput = body_of(body, "a checkout (basketId, customerRef, clientKey)")?;
    input.validate()?;
    let order_id = order_id_for(&input.client_key);
    for attempt in 0..MAX_ATTEMPTS {
        let basket = handler
            .baskets
            .get(&input.basket_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no basket {}", input.basket_id)))?;
        if !basket.is_open() {
            return replay_or_closed(handler, &order_id, &basket).await;
        }
        if basket.items.is_empty() {
            return Err(ApiError::validation(
                [("basketId".to_owned(), "the basket is empty".to_owned())].into(),
            ));
        }
        let order = Order::from_basket(order_id.clone(), &basket, &input.customer_ref, Utc::now());
        match handler.orders.place(&order, &basket).await? {
            Placement::Placed => {
                tracing::info!(order = %order.id, basket = %basket.id, total = order.total, "order placed");
                hand_off(handler, &order).await;
                return Ok(json_response(201, &json!(order)));
            }
            Placement::OrderExists => return replay(handler, &order_id, &basket.id).await,
            Placement::SoldOut(shortages) => return Err(sold_out_error(&shortages)),
            Placement::BasketChanged(None) => {
                return Err(ApiError::not_found(format!("no basket {}", basket.id)));
            }
            Placement::BasketChanged(Some(now)) if !now.is_open() => {
                return replay_or_closed(handler, &order_id, &now).await;
            }
            // Changed since it was read: check out what it holds now.
            Placement::BasketChanged(Some(_)) => {}
            Placement::Contended => back_off(attempt).await,
        }
    }
    Err(ApiError::conflict(
        "the basket or its products kept changing during checkout; try again",
    ))
}

/// A closed basket: the answer to a repeated checkout if this `clientKey`
/// closed it, else 409 `basket_closed`.
async fn replay_or_closed(
    handler: &Handler,
    order_id: &str,
    basket: &Basket,
) -> Result<Response<Body>, ApiError> {
    if basket.order_id.as_deref() == Some(order_id) {
        replay(handler, order_id, &basket.id).await
    } else {
        Err(ApiError::basket_closed(&basket.id))
    }
}

/// The order this `clientKey` placed before, if it was for this basket.
async fn replay(
    handler: &Handler,
    order_id: &str,
    basket_id: &str,
) -> Result<Response<Body>, ApiError> {
    match handler.orders.get(order_id).await? {
        Some(order) if order.basket_id == basket_id => {
            // The first attempt's hand-off may be what failed.
            if order.status == OrderStatus::Placed {
                hand_off(handler, &order).await;
            }
            Ok(json_response(200, &json!(order)))
        }
        Some(_) => Err(ApiError::conflict(
            "this clientKey placed an order for another basket; make up a new key per checkout",
        )),
        None => Err(ApiError::internal(format!(
            "order {order_id} failed its does-not-exist condition but cannot be read"
        ))),
    }
}

/// Announces a placed order (a rule hands it to fulfilment). Never fails
/// the checkout: the order is committed, so the customer gets it; a
/// failure is logged with the order id and the order stays `PLACED` until
/// a retried checkout publishes again or someone publishes it by hand.
async fn hand_off(handler: &Handler, order: &Order) {
    publish(
        handler,
        &OrderEvent::Placed(OrderPlaced::of(order)),
        "the order stays PLACED until it is",
    )
    .await;
}

/// Publishes `event`; a failure is logged (`<detail-type> not published`,
/// with the order id and `consequence`), never returned: what the event
/// announces has been committed already.
async fn publish(handler: &Handler, event: &OrderEvent, consequence: &str) {
    let detail_type = event.detail_type();
    let order = event.order_id();
    match handler.events.publish(event).await {
        Ok(event_id) => {
            tracing::info!(order, %event_id, detail_type, "event published");
        }
        Err(e) => {
            tracing::error!(
                order,
                detail_type,
                "{detail_type} not published, {consequence}: {e}"
            );
        }
    }
}

/// Exponential backoff with jitter, as the SDK's own retries wait.
async fn back_off(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

async fn set_status(handler: &Handler, id: &str, body: &Body) -> Result<Response<Body>, ApiError> {
    if !order::valid_id(id) {
        return Err(no_order(id));
    }
    let input: StatusInput = body_of(body, "a status")?;
    let to = input.validate()?;
    if to == OrderStatus::Cancelled {
        return cancel(handler, id).await;
    }
    for _ in 0..MAX_ATTEMPTS {
        let order = handler.orders.get(id).await?.ok_or_else(|| no_order(id))?;
        if !order.status.can_move_to(to) {
            return Err(ApiError::invalid_transition(
                order.status.as_str(),
                to.as_str(),
            ));
        }
        // Conditioned on the status just read: of two concurrent changes
        // one wins and the other reads again and is judged against it.
        if let Some(updated) = handler
            .orders
            .set_status(id, order.status, to, Utc::now())
            .await?
        {
            let event = OrderEvent::StatusChanged(StatusChanged::of(&updated, order.status));
            publish(handler, &event, "consumers do not hear of this change").await;
            return Ok(json_response(200, &json!(updated)));
        }
    }
    Err(ApiError::conflict(format!(
        "order {id} kept changing; try again"
    )))
}

/// Cancels order `id` and returns its units to stock, once: the
/// transaction is conditioned on the status just read, so of a cancel and
/// its retry (or two at once) one returns the units and the other reads
/// `CANCELLED` and is refused (409 `invalid_transition`).
async fn cancel(handler: &Handler, id: &str) -> Result<Response<Body>, ApiError> {
    // Products deleted since the order was placed: their units stay out.
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for attempt in 0..MAX_ATTEMPTS {
        let order = handler.orders.get(id).await?.ok_or_else(|| no_order(id))?;
        if !order.status.can_move_to(OrderStatus::Cancelled) {
            return Err(ApiError::invalid_transition(
                order.status.as_str(),
                OrderStatus::Cancelled.as_str(),
            ));
        }
        let restock: Vec<Line> = order
            .items
            .iter()
            .filter(|line| !gone.contains(&line.product_id))
            .cloned()
            .collect();
        match handler.orders.cancel(&order, &restock, Utc::now()).await? {
            Cancellation::Cancelled(cancelled) => {
                tracing::info!(order = %id, lines = restock.len(), "order cancelled, units returned to stock");
                let event = OrderEvent::StatusChanged(StatusChanged::of(&cancelled, order.status));
                publish(handler, &event, "consumers do not hear of this change").await;
                return Ok(json_response(200, &json!(cancelled)));
            }
            Cancellation::StatusChanged => {}
            Cancellation::ProductsGone(ids) => {
                tracing::warn!(order = %id, products = ?ids, "products of a cancelled order no longer exist; their units are not returned");
                gone.extend(ids);
            }
            Cancellation::Contended => back_off(attempt).await,
        }
    }
    Err(ApiError::conflict(format!(
        "order {id} kept changing; try again"
    )))
}

async fn list(handler: &Handler, request: &Request) -> Result<Response<Body>, ApiError> {
    let query = request.query_string_parameters_ref();
    let param = |name: &str| query.and_then(|q| q.first(name));
    let (index, key) = match (param("customerRef"), param("basketId")) {
        (Some(customer), None) => {
            if !order::valid_customer_ref(customer) {
                return Err(ApiError::validation(
                    [(
                        "customerRef".to_owned(),
                        format!(
                            "1 to {} characters, no control characters",
                            order::MAX_CUSTOMER_REF
                        ),
                    )]
                    .into(),
                ));
            }
            (OrderIndex::ByCustomer, customer)
        }
        (None, Some(basket_id)) => {
            if !basket::valid_id(basket_id) {
                return Err(ApiError::validation(
                    [(
                        "basketId".to_owned(),
                        "a basket id as POST /baskets gave it".to_owned(),
                    )]
                    .into(),
                ));
            }
            (OrderIndex::ByBasket, basket_id)
        }
        _ => {
            return Err(ApiError::bad_request(
                "list orders by one of `customerRef` or `basketId`",
            ));
        }
    };
    let limit = match param("limit") {
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
    let page = handler
        .orders
        .list(index, key, limit, param("next"))
        .await?;
    Ok(json_response(200, &json!(page)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;

    /// EventBridge at an address nothing answers on.
    fn unreachable_eventbridge() -> aws_sdk_eventbridge::Client {
        use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIAEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// A handler whose store is unreachable: these tests stop before it.
    fn handler() -> Handler {
        let client = woocom_testkit::unreachable_dynamodb();
        Handler {
            orders: OrderRepo::new(
                client.clone(),
                "orders".into(),
                "baskets".into(),
                "products".into(),
            ),
            baskets: BasketRepo::new(client, "baskets".into()),
            events: OrderEvents::new(unreachable_eventbridge(), "shop".into()),
        }
    }

    #[tokio::test]
    async fn an_unreachable_bus_is_an_error_not_a_panic() {
        let order = Order::from_basket(
            order_id_for("k"),
            &Basket::new(Utc::now()),
            "ann",
            Utc::now(),
        );
        let event = OrderEvent::Placed(OrderPlaced::of(&order));
        let err = handler()
            .events
            .publish(&event)
            .await
            .expect_err("nothing answers");
        assert!(
            matches!(
                err,
                events::PublishError::Call(_) | events::PublishError::Timeout(_)
            ),
            "{err}"
        );
    }

    fn request(method: &str, id: Option<&str>, body: &str) -> Request {
        let mut req = lambda_http::http::Request::builder()
            .method(method)
            .uri("/orders")
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

    fn with_query(req: Request, query: &[(&str, &str)]) -> Request {
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        req.with_query_string_parameters(QueryMap::from(query))
    }

    async fn answer(req: Request) -> (u16, serde_json::Value) {
        let response = handle(&handler(), req).await.expect("a response");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body().as_ref()).expect("JSON body");
        (status, body)
    }

    #[tokio::test]
    async fn a_bad_checkout_names_each_field() {
        let (status, body) = answer(request(
            "POST",
            None,
            r#"{"basketId":"b","customerRef":"","clientKey":"no spaces"}"#,
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "validation_failed");
        for field in ["basketId", "customerRef", "clientKey"] {
            assert!(body["error"]["fields"][field].is_string(), "{field}");
        }
    }

    #[tokio::test]
    async fn a_checkout_without_a_client_key_is_a_bad_request() {
        let (status, body) = answer(request(
            "POST",
            None,
            r#"{"basketId":"6f9619ff-8b86-4d01-b42d-00c04fc964ff","customerRef":"a"}"#,
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("clientKey"))
        );
    }

    #[tokio::test]
    async fn an_unknown_status_is_a_validation_error() {
        let id = order_id_for("k");
        let (status, body) = answer(request("POST", Some(&id), r#"{"status":"LOST"}"#)).await;
        assert_eq!(status, 400);
        assert!(body["error"]["fields"]["status"].is_string());
    }

    #[tokio::test]
    async fn ids_that_no_order_can_have_are_404() {
        let (status, body) = answer(request("GET", Some("o-nope"), "")).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = answer(request("POST", Some("x"), r#"{"status":"PAID"}"#)).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn listing_takes_exactly_one_key_and_a_bounded_limit() {
        let (status, _) = answer(request("GET", None, "")).await;
        assert_eq!(status, 400);
        let both = with_query(
            request("GET", None, ""),
            &[("customerRef", "a"), ("basketId", "b")],
        );
        assert_eq!(answer(both).await.0, 400);
        let bad_basket = with_query(request("GET", None, ""), &[("basketId", "b")]);
        let (status, body) = answer(bad_basket).await;
        assert_eq!(status, 400);
        assert!(body["error"]["fields"]["basketId"].is_string());
        let bad_limit = with_query(
            request("GET", None, ""),
            &[("customerRef", "a"), ("limit", "0")],
        );
        assert_eq!(answer(bad_limit).await.0, 400);
    }

    #[tokio::test]
    async fn other_methods_are_405() {
        assert_eq!(answer(request("DELETE", Some("o-1"), "")).await.0, 405);
    }
}

//! The fulfilment consumer (function `fulfilment`): reads `OrderPlaced`
//! events from the SQS queue `fulfilment` (delivered there by the `shop`
//! bus's `order-placed` rule, each message body an EventBridge event with
//! the order in `detail`) and takes each order on, moving it from `PLACED`
//! to `CONFIRMED`. The orders table's stream then carries the
//! change to `notify`, which pushes it to the customer's order page (see
//! functions/README.md, "Fulfilment").
//!
//! SQS delivers at least once, so a message may come again, and two
//! copies may be handled at once. Handling is idempotent: the move is
//! conditioned on the order still being `PLACED`, and a message about an
//! order that is past `PLACED` (confirmed by an earlier copy, paid,
//! cancelled) succeeds without changing anything.
//!
//! A message that cannot be handled is reported in `batchItemFailures`
//! (the mapping has `report_batch_item_failures`): only it comes back,
//! after the queue's visibility timeout, and after `max_receive_count`
//! receives the queue's redrive policy moves it to `fulfilment-dlq`.
//! That covers storage errors (they may pass) and messages no retry can
//! mend (not an `OrderPlaced` event, no such order, an event that does not
//! match its order): those land in the dead-letter queue for a person to
//! read.
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use woocom_domain::events::{ORDER_PLACED, OrderEvent, OrderPlaced, SOURCE, awaits_confirmation};
use woocom_domain::{ApiError, OrderRepo, OrderStatus, aws};

/// Reads of the order one message makes at most: each further one follows
/// a change someone else made between the read and the conditional write.
pub const MAX_ATTEMPTS: u32 = 3;

/// What handling a message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The order moved from `PLACED` to `CONFIRMED`.
    Confirmed,
    /// The order had left `PLACED` already (a redelivery, or a person
    /// moved it on): nothing changed.
    AlreadyHandled(OrderStatus),
}

/// Why a message was not handled; each is a batch item failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    /// The body is not an `OrderPlaced` event of the orders service.
    #[error("not an order event: {0}")]
    Unreadable(String),
    #[error("no order {0}")]
    NoSuchOrder(String),
    /// The event's lines or total differ from the stored order's.
    #[error("the event does not match order {0} (lines or total differ)")]
    Mismatch(String),
    #[error("order {0} kept changing while it was confirmed")]
    Contended(String),
    #[error("storage: {0}")]
    Storage(ApiError),
}

impl MessageError {
    /// Whether a retry may succeed. Those that cannot still fail (to reach
    /// the dead-letter queue), logged as errors for a person to look at.
    pub fn is_transient(&self) -> bool {
        matches!(self, MessageError::Storage(_) | MessageError::Contended(_))
    }
}

impl From<ApiError> for MessageError {
    fn from(e: ApiError) -> Self {
        MessageError::Storage(e)
    }
}

/// The body the `order-events` SNS topic delivered raw before the shop
/// moved to EventBridge: the event with its type inside. Messages in that
/// shape may still sit in `fulfilment-dlq` (kept 14 days) and come back
/// when it is redriven.
#[derive(Deserialize)]
struct LegacyBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    placed: OrderPlaced,
}

/// The `OrderPlaced` a message body carries: an EventBridge event of
/// source `woocom.orders` and detail-type `OrderPlaced` (what the
/// `order-placed` rule sends to the queue, and what EventBridge puts in
/// `fulfilment-dlq` when it cannot deliver), or, from before the bus, the
/// bare event.
/// <https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html>
pub fn read_order_placed(body: &str) -> Result<OrderPlaced, MessageError> {
    let unreadable = |e: String| MessageError::Unreadable(e);
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| unreadable(e.to_string()))?;
    if value.get("detail-type").is_none() && value.get("type").is_some() {
        let legacy: LegacyBody =
            serde_json::from_value(value).map_err(|e| unreadable(e.to_string()))?;
        if legacy.kind != ORDER_PLACED {
            return Err(unreadable(format!(
                "a {} event, not {ORDER_PLACED}",
                legacy.kind
            )));
        }
        return Ok(legacy.placed);
    }
    let event: EventBridgeEvent =
        serde_json::from_value(value).map_err(|e| unreadable(e.to_string()))?;
    if event.source != SOURCE || event.detail_type != ORDER_PLACED {
        return Err(unreadable(format!(
            "a {} event from {}, not {ORDER_PLACED} from {SOURCE}",
            event.detail_type, event.source
        )));
    }
    match OrderEvent::read(&event.detail_type, event.detail).map_err(unreadable)? {
        OrderEvent::Placed(placed) => Ok(placed),
        other => Err(unreadable(format!("a {} event", other.detail_type()))),
    }
}

/// Takes the order `placed` announces on: `PLACED` → `CONFIRMED`, once.
pub async fn confirm(orders: &OrderRepo, placed: &OrderPlaced) -> Result<Outcome, MessageError> {
    let id = &placed.order_id;
    for _ in 0..MAX_ATTEMPTS {
        let order = orders
            .get(id)
            .await?
            .ok_or_else(|| MessageError::NoSuchOrder(id.clone()))?;
        if !placed.matches(&order) {
            return Err(MessageError::Mismatch(id.clone()));
        }
        if !awaits_confirmation(order.status) {
            return Ok(Outcome::AlreadyHandled(order.status));
        }
        // Conditioned on PLACED: of two copies handled at once one moves
        // it, the other reads again and finds it handled.
        if orders
            .set_status(id, OrderStatus::Placed, OrderStatus::Confirmed, Utc::now())
            .await?
            .is_some()
        {
            return Ok(Outcome::Confirmed);
        }
    }
    Err(MessageError::Contended(id.clone()))
}

/// Handles one message.
pub async fn handle_message(
    orders: &OrderRepo,
    message: &SqsMessage,
) -> Result<Outcome, MessageError> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| MessageError::Unreadable("the message has no body".to_owned()))?;
    confirm(orders, &read_order_placed(body)?).await
}

/// Handles every message of a batch and reports those that failed.
pub async fn process(orders: &OrderRepo, event: &SqsEvent) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let receives = message
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str)
            .unwrap_or("?");
        match handle_message(orders, message).await {
            Ok(Outcome::Confirmed) => {
                tracing::info!(message_id, "order confirmed");
            }
            Ok(Outcome::AlreadyHandled(status)) => {
                tracing::info!(
                    message_id,
                    status = status.as_str(),
                    "order already past PLACED; nothing to do"
                );
            }
            Err(e) => {
                if e.is_transient() {
                    tracing::warn!(message_id, receives, "message not handled, retried: {e}");
                } else {
                    tracing::error!(
                        message_id,
                        receives,
                        "message cannot be handled; it goes to the dead-letter queue after its last receive: {e}"
                    );
                }
                // Without its id only failing the whole batch makes it
                // come again (the others are idempotent).
                if message_id.is_empty() {
                    return Err(format!("a message without a messageId failed: {e}").into());
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id.to_owned();
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}

pub struct Handler {
    pub orders: OrderRepo,
}

impl Handler {
    pub async fn from_env() -> Result<Handler, ApiError> {
        let orders = aws::env("ORDERS_TABLE")?;
        Ok(Handler {
            orders: OrderRepo::status_only(aws::dynamodb().await, orders),
        })
    }
}

pub async fn handle(
    handler: &Handler,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    process(&handler.orders, &event.payload).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail() -> serde_json::Value {
        json!({"orderId": "o-1", "customerRef": "ann",
            "items": [{"productId": "mug", "quantity": 2}], "total": 2400,
            "currency": "EUR", "placedAt": "2026-12-04T10:00:00.000Z"})
    }

    /// An event as EventBridge puts it in the queue.
    fn event(source: &str, detail_type: &str, detail: serde_json::Value) -> String {
        json!({"version": "0", "id": "2d3e5b8a-6f0c-4e1d-9a7b-3c2f1e0d9b8a",
            "detail-type": detail_type, "source": source, "account": "000000000000",
            "time": "2026-12-04T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail})
        .to_string()
    }

    /// What the `fulfilment` queue's mapping delivers for one OrderPlaced
    /// the `order-placed` rule sent to the queue.
    const FIXTURE: &str = include_str!("../fixtures/example-sqs-order-placed.json");

    #[test]
    fn the_queue_event_fixture_round_trips_and_carries_an_order_placed() {
        let event: SqsEvent = serde_json::from_str(FIXTURE).expect("an SqsEvent");
        let again: SqsEvent =
            serde_json::from_value(serde_json::to_value(&event).expect("serialises"))
                .expect("re-parses");
        assert_eq!(again, event);
        let body = event.records[0].body.as_deref().expect("body");
        let envelope: EventBridgeEvent = serde_json::from_str(body).expect("an EventBridge event");
        let back: EventBridgeEvent =
            serde_json::from_value(serde_json::to_value(&envelope).expect("serialises"))
                .expect("re-parses");
        assert_eq!(back, envelope);
        let placed = read_order_placed(body).expect("reads");
        assert_eq!(placed.items.len(), 2);
        assert_eq!(placed.total, 6400);
    }

    #[test]
    fn the_order_is_read_from_the_events_detail() {
        let placed =
            read_order_placed(&event("woocom.orders", "OrderPlaced", detail())).expect("reads");
        assert_eq!(placed.order_id, "o-1");
        assert_eq!(placed.items[0].quantity, 2);
    }

    #[test]
    fn a_body_from_before_the_bus_still_reads() {
        let mut legacy = detail();
        legacy["type"] = json!("OrderPlaced");
        let placed = read_order_placed(&legacy.to_string()).expect("reads");
        assert_eq!(placed.order_id, "o-1");
        legacy["type"] = json!("OrderShipped");
        assert!(read_order_placed(&legacy.to_string()).is_err());
    }

    #[test]
    fn anything_else_is_unreadable_and_no_retry_mends_it() {
        let status = json!({"orderId": "o-1", "customerRef": "ann", "status": "PAID",
            "previousStatus": "CONFIRMED", "total": 2400, "currency": "EUR", "changedAt": "x"});
        for body in [
            String::new(),
            "not json".to_owned(),
            "[]".to_owned(),
            r#"{"hello": "world"}"#.to_owned(),
            event("woocom.orders", "OrderPaid", status),
            event("woocom.payments", "OrderPlaced", detail()),
            event("woocom.orders", "OrderPlaced", json!({"orderId": "o-1"})),
        ] {
            let err = read_order_placed(&body).expect_err(&body);
            assert!(matches!(err, MessageError::Unreadable(_)), "{body}: {err}");
            assert!(!err.is_transient());
        }
    }

    #[tokio::test]
    async fn a_message_without_a_body_fails_alone() {
        let orders =
            OrderRepo::status_only(woocom_testkit::unreachable_dynamodb(), "orders".into());
        let mut message = SqsMessage::default();
        message.message_id = Some("m-1".to_owned());
        let mut event = SqsEvent::default();
        event.records.push(message);
        let response = process(&orders, &event).await.expect("a response");
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m-1"]);
    }

    #[tokio::test]
    async fn a_failed_message_without_an_id_fails_the_batch() {
        let orders =
            OrderRepo::status_only(woocom_testkit::unreachable_dynamodb(), "orders".into());
        let mut message = SqsMessage::default();
        message.body = Some("not json".to_owned());
        let mut event = SqsEvent::default();
        event.records.push(message);
        assert!(process(&orders, &event).await.is_err());
    }
}

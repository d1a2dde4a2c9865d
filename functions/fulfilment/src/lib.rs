//! The fulfilment consumer (function `fulfilment`): reads `OrderPlaced`
//! events from the SQS queue `fulfilment` (delivered there by the
//! `order-events` topic's subscription) and takes each order on, moving it
//! from `PLACED` to `CONFIRMED`. The orders table's stream then carries the
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
//! mend (not an order event, no such order, an event that does not match
//! its order): those land in the dead-letter queue for a person to read.
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use woocom_domain::events::{OrderEvent, OrderPlaced, awaits_confirmation};
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
    /// The body is not an order event, raw or in an SNS envelope.
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

/// The envelope SNS wraps a message in when the subscription does not ask
/// for raw delivery.
/// <https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html>
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    message: String,
}

/// The order event a message body carries: the event itself (raw
/// delivery, as dev.toml subscribes the queue), or an SNS notification
/// whose `Message` is the event.
pub fn read_event(body: &str) -> Result<OrderEvent, MessageError> {
    let unreadable = |e: serde_json::Error| MessageError::Unreadable(e.to_string());
    let value: serde_json::Value = serde_json::from_str(body).map_err(unreadable)?;
    if value.get("Type").is_some() && value.get("Message").is_some() {
        let envelope: SnsEnvelope = serde_json::from_value(value).map_err(unreadable)?;
        if envelope.kind != "Notification" {
            return Err(MessageError::Unreadable(format!(
                "an SNS {} message, not a Notification",
                envelope.kind
            )));
        }
        return serde_json::from_str(&envelope.message).map_err(unreadable);
    }
    serde_json::from_value(value).map_err(unreadable)
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
    match read_event(body)? {
        OrderEvent::OrderPlaced(placed) => confirm(orders, &placed).await,
    }
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

    const PLACED: &str = r#"{"type":"OrderPlaced","orderId":"o-1","customerRef":"ann",
        "items":[{"productId":"mug","quantity":2}],"total":2400,"currency":"EUR",
        "placedAt":"2026-12-04T10:00:00.000Z"}"#;

    /// What the `fulfilment` queue's mapping delivers for one OrderPlaced
    /// the topic passed on raw.
    const FIXTURE: &str = include_str!("../fixtures/example-sqs-order-placed.json");

    #[test]
    fn the_queue_event_fixture_round_trips_and_carries_an_order_placed() {
        let event: SqsEvent = serde_json::from_str(FIXTURE).expect("an SqsEvent");
        let again: SqsEvent =
            serde_json::from_value(serde_json::to_value(&event).expect("serialises"))
                .expect("re-parses");
        assert_eq!(again, event);
        let message = &event.records[0];
        assert_eq!(
            message.message_attributes["type"].string_value.as_deref(),
            Some("OrderPlaced")
        );
        let OrderEvent::OrderPlaced(placed) =
            read_event(message.body.as_deref().expect("body")).expect("reads");
        assert_eq!(placed.items.len(), 2);
        assert_eq!(placed.total, 6400);
    }

    #[test]
    fn a_raw_body_is_the_event() {
        let event = read_event(PLACED).expect("reads");
        assert_eq!(event.order_id(), "o-1");
    }

    #[test]
    fn an_sns_notification_envelope_is_unwrapped() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:000000000000:order-events",
            "Message": PLACED,
            "Timestamp": "2026-12-04T10:00:00.000Z",
            "SignatureVersion": "1",
            "MessageAttributes": {"type": {"Type": "String", "Value": "OrderPlaced"}}
        });
        let event = read_event(&envelope.to_string()).expect("reads");
        assert_eq!(event.order_id(), "o-1");
        let confirmation = serde_json::json!({
            "Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe"
        });
        assert!(matches!(
            read_event(&confirmation.to_string()),
            Err(MessageError::Unreadable(_))
        ));
    }

    #[test]
    fn anything_else_is_unreadable_and_no_retry_mends_it() {
        for body in [
            "",
            "not json",
            "[]",
            r#"{"type":"OrderShipped","orderId":"o-1"}"#,
            r#"{"type":"OrderPlaced","orderId":"o-1"}"#,
        ] {
            let err = read_event(body).expect_err(body);
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

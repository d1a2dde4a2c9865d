//! The orders service's facts, published with EventBridge `PutEvents` to
//! the shop's bus (its name in `EVENT_BUS_NAME`): `OrderPlaced` after
//! checkout, `OrderPaid`, `OrderCancelled`, ... after each status change.
//! Rules on the bus hand them to other services, e.g. `OrderPlaced` to the
//! `fulfilment` queue (see functions/README.md, "Order events").

use std::time::Duration;

use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use woocom_domain::events::{OrderEvent, SOURCE};

/// How long a request waits for EventBridge, the SDK's retries included,
/// before it answers without the event: well inside the function's 10 s
/// timeout, so a slow EventBridge costs the customer at most this much.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge did not answer within {0:?}")]
    Timeout(Duration),
    /// The call failed (unreachable, throttled past the retries, denied).
    #[error("PutEvents failed: {0}")]
    Call(String),
    /// The call succeeded but the entry was refused: `PutEvents` answers
    /// 200 with a failed entry for, e.g., a bus that does not exist.
    /// <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>
    #[error("EventBridge refused the event: {code}: {message}")]
    Refused { code: String, message: String },
}

/// Publishes the orders service's events to one bus.
pub struct OrderEvents {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl OrderEvents {
    /// `bus`: a bus name or ARN.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        OrderEvents { client, bus }
    }

    /// Puts `event` on the bus (source [`SOURCE`], its detail-type and
    /// detail); EventBridge's event id.
    pub async fn publish(&self, event: &OrderEvent) -> Result<String, PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(event.detail())
            .build();
        let send = self.client.put_events().entries(entry).send();
        let out = match tokio::time::timeout(PUBLISH_TIMEOUT, send).await {
            Err(_) => return Err(PublishError::Timeout(PUBLISH_TIMEOUT)),
            Ok(Err(e)) => return Err(PublishError::Call(DisplayErrorContext(e).to_string())),
            Ok(Ok(out)) => out,
        };
        let entry = out.entries().first();
        match entry.and_then(|e| e.event_id()) {
            Some(id) if out.failed_entry_count() == 0 => Ok(id.to_owned()),
            _ => Err(PublishError::Refused {
                code: entry
                    .and_then(|e| e.error_code())
                    .unwrap_or("NoEventId")
                    .to_owned(),
                message: entry
                    .and_then(|e| e.error_message())
                    .unwrap_or("the answer has no event id")
                    .to_owned(),
            }),
        }
    }
}

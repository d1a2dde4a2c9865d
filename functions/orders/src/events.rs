//! The hand-off of placed orders: an `OrderPlaced` event published to the
//! SNS topic `order-events` (its ARN in `ORDER_EVENTS_TOPIC_ARN`), whose
//! subscription delivers it to the `fulfilment` queue (see
//! functions/README.md, "Fulfilment").

use std::time::Duration;

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use woocom_domain::events::{OrderEvent, TYPE_ATTRIBUTE};

/// How long checkout waits for SNS, the SDK's retries included, before it
/// answers without the hand-off: well inside the function's 10 s timeout,
/// so a slow SNS costs the customer at most this much.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("SNS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("SNS refused the message: {0}")]
    Sns(String),
}

/// Publishes the shop's order events.
pub struct OrderEvents {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl OrderEvents {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> Self {
        OrderEvents { client, topic_arn }
    }

    /// Publishes `event` with its type as the [`TYPE_ATTRIBUTE`] String
    /// attribute; SNS's message id.
    pub async fn publish(&self, event: &OrderEvent) -> Result<String, PublishError> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(event.type_name())
            .build()
            .map_err(|e| PublishError::Sns(e.to_string()))?;
        let send = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(event.to_json())
            .message_attributes(TYPE_ATTRIBUTE, attribute)
            .send();
        match tokio::time::timeout(PUBLISH_TIMEOUT, send).await {
            Err(_) => Err(PublishError::Timeout(PUBLISH_TIMEOUT)),
            Ok(Err(e)) => Err(PublishError::Sns(DisplayErrorContext(e).to_string())),
            Ok(Ok(out)) => Ok(out.message_id.unwrap_or_default()),
        }
    }
}

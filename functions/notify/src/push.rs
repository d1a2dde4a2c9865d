//! Pushing a message to a topic's connections through the `@connections`
//! API (`PostToConnection`), a bounded number at a time.
//!
//! A connection that answers 410 `GoneException` has closed without its
//! `$disconnect` having cleaned up (or not yet): its items are deleted and
//! it does not count as a failure. Any other error, after the SDK's own
//! retries, fails the record so the stream brings it again. Pushes carry
//! state (the stock, the status), not deltas, so the repeats a retry sends
//! to connections that did get the message are harmless.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html>

use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use futures_util::stream;
use woocom_domain::live::{self, ConnectionRepo, LiveMessage, Topic};
use woocom_domain::{ApiError, aws};

use crate::{Deliver, RecordError};

/// `PostToConnection` calls in flight at once per record.
pub const CONCURRENT_POSTS: usize = 16;

/// The environment variable with the `@connections` endpoint:
/// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` in AWS.
pub const ENDPOINT_VARIABLE: &str = "WOOCOM_WEBSOCKET_ENDPOINT";

pub struct Pusher {
    pub connections: ConnectionRepo,
    pub api: aws_sdk_apigatewaymanagement::Client,
}

/// What became of one post.
enum Posted {
    Sent,
    Gone,
    Failed(String),
}

impl Pusher {
    pub async fn from_env() -> Result<Pusher, ApiError> {
        let config = aws::sdk_config().await;
        let endpoint = aws::env(ENDPOINT_VARIABLE)?;
        let table = aws::env("CONNECTIONS_TABLE")?;
        let api_config = aws_sdk_apigatewaymanagement::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .build();
        Ok(Pusher {
            connections: ConnectionRepo::new(aws_sdk_dynamodb::Client::new(&config), table),
            api: aws_sdk_apigatewaymanagement::Client::from_conf(api_config),
        })
    }

    async fn post(&self, connection_id: &str, data: &str) -> Posted {
        let result = self
            .api
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Posted::Sent,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Posted::Gone,
            Err(e) => Posted::Failed(DisplayErrorContext(&e).to_string()),
        }
    }

    /// Forgets a connection that is gone; the TTL removes its items if this
    /// fails, so a failure here is logged, not reported.
    async fn forget(&self, connection_id: &str) {
        match self.connections.remove_connection(connection_id).await {
            Ok(n) => {
                tracing::info!(connection_id, items = n, "connection gone (410): removed")
            }
            Err(e) => tracing::warn!(
                connection_id,
                "connection gone (410), its items stay until the TTL: {}",
                e.message
            ),
        }
    }
}

impl Deliver for Pusher {
    async fn deliver(&self, topic: &Topic, message: &LiveMessage) -> Result<(), RecordError> {
        let data = message.to_json();
        let now = live::now_secs();
        let (mut sent, mut gone, mut failed) = (0usize, 0usize, Vec::new());
        let mut start = None;
        loop {
            let page = self
                .connections
                .page(topic, start, now)
                .await
                .map_err(|e| RecordError::Delivery(e.message))?;
            let outcomes: Vec<(String, Posted)> = stream::iter(page.connection_ids)
                .map(|id| {
                    let data = &data;
                    async move {
                        let posted = self.post(&id, data).await;
                        (id, posted)
                    }
                })
                .buffer_unordered(CONCURRENT_POSTS)
                .collect()
                .await;
            for (id, posted) in outcomes {
                match posted {
                    Posted::Sent => sent += 1,
                    Posted::Gone => {
                        gone += 1;
                        self.forget(&id).await;
                    }
                    Posted::Failed(e) => failed.push(format!("{id}: {e}")),
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        tracing::info!(topic = %topic, sent, gone, failed = failed.len(), "pushed");
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Delivery(format!(
                "{} of {} connections: {}",
                failed.len(),
                sent + gone + failed.len(),
                failed.join("; ")
            )))
        }
    }
}

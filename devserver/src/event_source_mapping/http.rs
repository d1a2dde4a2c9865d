//! `/_woocom/streams/...` on the AWS endpoint: what `woocom-dev streams`
//! asks a running stack (not AWS paths, so they cannot collide).
//!
//! - `GET  /_woocom/streams/status`: each mapping's position and lag
//! - `GET  /_woocom/streams/dlq`: dead-letter entries (failure records)
//! - `GET  /_woocom/streams/dlq/{id}`: one entry, with its records
//! - `POST /_woocom/streams/dlq/{id}/redrive`: deliver its records again
//! - `POST /_woocom/streams/replay` `{"subscription","from","to"}`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::source::SourceError;
use super::{EventSourceMappings, MappingError};

pub const STREAMS_PATH: &str = "/_woocom/streams";

pub fn router(streams: Arc<EventSourceMappings>) -> Router {
    Router::new()
        .route(&format!("{STREAMS_PATH}/status"), get(status))
        .route(&format!("{STREAMS_PATH}/dlq"), get(dlq_list))
        .route(&format!("{STREAMS_PATH}/dlq/{{id}}"), get(dlq_show))
        .route(&format!("{STREAMS_PATH}/dlq/{{id}}/redrive"), post(redrive))
        .route(&format!("{STREAMS_PATH}/replay"), post(replay))
        .with_state(streams)
}

impl IntoResponse for MappingError {
    fn into_response(self) -> Response {
        let status = match &self {
            MappingError::UnknownSubscription(_) | MappingError::UnknownEntry(_) => {
                StatusCode::NOT_FOUND
            }
            MappingError::BadRequest(_)
            | MappingError::Source(SourceError::Missing(_) | SourceError::BadRequest(_)) => {
                StatusCode::BAD_REQUEST
            }
            MappingError::Source(SourceError::Read(_)) | MappingError::Invoke(_) => {
                StatusCode::BAD_GATEWAY
            }
        };
        (status, Json(json!({ "message": self.to_string() }))).into_response()
    }
}

async fn status(State(streams): State<Arc<EventSourceMappings>>) -> Response {
    Json(json!({ "subscriptions": streams.status().await })).into_response()
}

async fn dlq_list(State(streams): State<Arc<EventSourceMappings>>) -> Response {
    let entries: Vec<serde_json::Value> = streams
        .dlq_entries()
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "queue": e.queue,
                "subscription": e.subscription,
                "function": e.function,
                "condition": e.failure["requestContext"]["condition"],
                "timestamp": e.failure["timestamp"],
                "batchSize": e.failure["DDBStreamBatchInfo"]["batchSize"],
                "startSequenceNumber": e.failure["DDBStreamBatchInfo"]["startSequenceNumber"],
                "endSequenceNumber": e.failure["DDBStreamBatchInfo"]["endSequenceNumber"],
            })
        })
        .collect();
    Json(json!({ "entries": entries })).into_response()
}

async fn dlq_show(
    State(streams): State<Arc<EventSourceMappings>>,
    Path(id): Path<String>,
) -> Response {
    match streams.dlq_entry(&id) {
        Ok(e) => Json(e).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn redrive(
    State(streams): State<Arc<EventSourceMappings>>,
    Path(id): Path<String>,
) -> Response {
    match streams.redrive(&id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct ReplayRequest {
    subscription: String,
    from: String,
    to: String,
}

async fn replay(
    State(streams): State<Arc<EventSourceMappings>>,
    body: axum::body::Bytes,
) -> Response {
    let request: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return MappingError::BadRequest(format!(
                "expected {{\"subscription\", \"from\", \"to\"}}: {e}"
            ))
            .into_response();
        }
    };
    match streams
        .replay(&request.subscription, &request.from, &request.to)
        .await
    {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

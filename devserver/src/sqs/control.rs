//! `/_woocom/queues/...` on the AWS endpoint: what `woocom-dev queues` asks
//! a running stack (not AWS paths, so they cannot collide).
//!
//! - `GET  /_woocom/queues`: each queue's depth, in-flight and delayed
//!   counts and its dead-letter queue
//! - `GET  /_woocom/queues/{name}/messages?max=N`: the first messages,
//!   without receiving them (no receipt handle, no receive count change)
//! - `POST /_woocom/queues/{name}/purge`: `PurgeQueue`
//! - `POST /_woocom/queues/{name}/redrive`: a dead-letter queue's messages
//!   back to their source queues (`StartMessageMoveTask`)

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::Sqs;

pub const QUEUES_PATH: &str = "/_woocom/queues";

pub fn router(sqs: Arc<Sqs>) -> Router {
    Router::new()
        .route(QUEUES_PATH, get(list))
        .route(&format!("{QUEUES_PATH}/{{name}}/messages"), get(peek))
        .route(&format!("{QUEUES_PATH}/{{name}}/purge"), post(purge))
        .route(&format!("{QUEUES_PATH}/{{name}}/redrive"), post(redrive))
        .with_state(sqs)
}

async fn list(State(sqs): State<Arc<Sqs>>) -> Response {
    Json(json!({ "queues": sqs.status() })).into_response()
}

#[derive(serde::Deserialize)]
struct PeekQuery {
    max: Option<usize>,
}

async fn peek(
    State(sqs): State<Arc<Sqs>>,
    Path(name): Path<String>,
    Query(q): Query<PeekQuery>,
) -> Response {
    match sqs.peek(&name, q.max.unwrap_or(10).min(1000)) {
        Ok(messages) => {
            let list: Vec<serde_json::Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "messageId": m.id,
                        "body": m.body,
                        "sentTimestamp": m.sent_ms,
                        "receiveCount": m.receive_count,
                        "inFlight": m.in_flight(),
                        "messageGroupId": m.group_id,
                        "deadLetterQueueSourceArn": m.dead_letter_source_arn,
                    })
                })
                .collect();
            Json(json!({ "queue": name, "messages": list })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn purge(State(sqs): State<Arc<Sqs>>, Path(name): Path<String>) -> Response {
    match sqs.purge(&name) {
        Ok(()) => Json(json!({ "queue": name, "purged": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn redrive(State(sqs): State<Arc<Sqs>>, Path(name): Path<String>) -> Response {
    let arn = sqs.queue_arn(&name);
    match sqs.start_move_task(&arn, None).map(|handle| {
        sqs.move_tasks(&arn)
            .into_iter()
            .find(|t| t.handle == handle)
    }) {
        Ok(Some(task)) => Json(json!(task)).into_response(),
        Ok(None) => Json(json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}

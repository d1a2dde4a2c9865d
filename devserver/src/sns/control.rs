//! `/_woocom/topics` on the AWS endpoint: what `woocom-dev topics` asks a
//! running stack (not an AWS path, so it cannot collide).
//!
//! - `GET /_woocom/topics`: each topic with its subscriptions (protocol,
//!   endpoint, raw delivery, filter policy, dead-letter queue, pending)

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::Sns;

pub const TOPICS_PATH: &str = "/_woocom/topics";

pub fn router(sns: Arc<Sns>) -> Router {
    Router::new().route(TOPICS_PATH, get(list)).with_state(sns)
}

async fn list(State(sns): State<Arc<Sns>>) -> Response {
    Json(json!({ "topics": sns.status() })).into_response()
}

//! `/_woocom/events` on the AWS endpoint: what `woocom-dev events` asks a
//! running stack (not an AWS path, so it cannot collide).
//!
//! - `GET /_woocom/events`: buses, rules with their targets, the
//!   deliveries that failed for good, archives and replays.
//! - `POST /_woocom/events/fire?rule=<name>[&bus=<name>]`: fires a rule now
//!   with a `Scheduled Event`.
//! - `GET /_woocom/events/tail[?bus=<name>]`: every event as it arrives,
//!   one JSON line each (`{"bus", "event", "rules"}`), until the client
//!   goes away.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::EventBridge;

pub const EVENTS_PATH: &str = "/_woocom/events";
pub const FIRE_PATH: &str = "/_woocom/events/fire";
pub const TAIL_PATH: &str = "/_woocom/events/tail";

pub fn router(events: Arc<EventBridge>) -> Router {
    Router::new()
        .route(EVENTS_PATH, get(list))
        .route(FIRE_PATH, post(fire))
        .route(TAIL_PATH, get(tail))
        .with_state(events)
}

async fn list(State(events): State<Arc<EventBridge>>) -> Response {
    Json(json!({
        "buses": events.buses(),
        "rules": events.all_rules(),
        "failures": events.failures(),
        "archives": events.list_archives(),
        "replays": events.list_replays(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct FireQuery {
    rule: String,
    bus: Option<String>,
}

async fn fire(State(events): State<Arc<EventBridge>>, Query(q): Query<FireQuery>) -> Response {
    let bus = events.bus_name(q.bus.as_deref());
    match events.fire(&bus, &q.rule) {
        Ok(id) => Json(json!({ "eventId": id, "rule": q.rule, "bus": bus })).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({ "message": e.message }))).into_response(),
    }
}

#[derive(Deserialize)]
struct TailQuery {
    bus: Option<String>,
}

async fn tail(State(events): State<Arc<EventBridge>>, Query(q): Query<TailQuery>) -> Response {
    let bus = q.bus;
    let receiver = events.subscribe();
    let lines = futures_util::stream::unfold(receiver, move |mut rx| {
        let bus = bus.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(t) if bus.as_ref().is_none_or(|b| *b == t.bus) => {
                        let mut line = serde_json::to_string(&t).unwrap_or_default();
                        line.push('\n');
                        return Some((Ok::<_, std::convert::Infallible>(line), rx));
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let line = format!("{}\n", json!({ "skipped": n }));
                        return Some((Ok(line), rx));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(lines))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

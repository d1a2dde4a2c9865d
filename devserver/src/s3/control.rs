//! `/_woocom/buckets/...` on the AWS endpoint: what `woocom-dev buckets`
//! asks a running stack (not AWS paths, so they cannot collide).
//!
//! - `GET /_woocom/buckets`: each bucket with its object count and bytes
//! - `GET /_woocom/buckets/{name}/objects?prefix=P&max=N`: its objects

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::S3;

pub const BUCKETS_PATH: &str = "/_woocom/buckets";

pub fn router(s3: Arc<S3>) -> Router {
    Router::new()
        .route(BUCKETS_PATH, get(list))
        .route(&format!("{BUCKETS_PATH}/{{name}}/objects"), get(objects))
        .with_state(s3)
}

async fn list(State(s3): State<Arc<S3>>) -> Response {
    Json(json!({ "buckets": s3.statuses() })).into_response()
}

#[derive(serde::Deserialize)]
struct ObjectsQuery {
    prefix: Option<String>,
    max: Option<usize>,
}

async fn objects(
    State(s3): State<Arc<S3>>,
    Path(name): Path<String>,
    Query(q): Query<ObjectsQuery>,
) -> Response {
    let max = q.max.unwrap_or(1000).min(100_000);
    match s3.objects(&name, q.prefix.as_deref().unwrap_or(""), max) {
        Some(list) => {
            let objects: Vec<serde_json::Value> = list
                .iter()
                .map(|(key, r)| {
                    json!({
                        "key": key,
                        "size": r.size,
                        "etag": r.etag,
                        "lastModified": chrono::DateTime::from_timestamp_millis(r.last_modified_ms)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                        "contentType": r.headers.content_type,
                    })
                })
                .collect();
            Json(json!({ "bucket": name, "objects": objects })).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": format!("no bucket {name} in this stack") })),
        )
            .into_response(),
    }
}

//! The devserver's AWS endpoint: one URL that the AWS SDKs take as
//! `endpoint_url` for every emulated service. Requests are told apart the
//! way AWS's own endpoints are: Lambda by its REST paths
//! (`/2015-03-31/...`); JSON-protocol services by `X-Amz-Target`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dynamodb::{self, DynamoDb};
use crate::lambda::{LambdaHost, invoke_api};
use crate::sqs::{self, Sqs};

/// Path of the health endpoint (not an AWS path, so it cannot collide).
pub const HEALTH_PATH: &str = "/_woocom/health";

#[derive(Clone)]
pub struct AwsEndpoint {
    pub lambda: Arc<LambdaHost>,
    pub urls: Arc<crate::urls::StackUrls>,
    pub dynamodb: Arc<DynamoDb>,
    pub sqs: Arc<Sqs>,
}

pub fn router(endpoint: AwsEndpoint) -> Router {
    let health = Router::new()
        .route(HEALTH_PATH, get(health))
        .with_state(endpoint.clone());
    // DynamoDB and Streams answer `POST /` by `X-Amz-Target`; anything else
    // there falls through to `unknown`.
    let dynamo = Router::new()
        .route("/", axum::routing::post(json_protocol))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(endpoint.clone());
    invoke_api::router(endpoint.lambda.clone())
        .merge(health)
        .merge(dynamo)
        .merge(dynamodb::http::control_router(endpoint.dynamodb.clone()))
        .fallback(unknown)
}

async fn json_protocol(
    State(endpoint): State<AwsEndpoint>,
    request: axum::extract::Request,
) -> Response {
    if dynamodb::http::is_dynamodb_target(request.headers()) {
        return dynamodb::http::serve(endpoint.dynamodb.clone(), request).await;
    }
    let sqs_operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(sqs::TARGET_PREFIX))
        .map(str::to_owned);
    if let Some(operation) = sqs_operation {
        // A batch of ten 1 MiB messages, with room for the JSON around it.
        let Ok(body) = axum::body::to_bytes(request.into_body(), 12 * 1024 * 1024).await else {
            return sqs::error::SqsError::batch_request_too_long(1024 * 1024).into_response();
        };
        return sqs::api::serve(endpoint.sqs.clone(), &operation, &body).await;
    }
    unknown(request).await
}

async fn health(State(endpoint): State<AwsEndpoint>) -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "urls": &*endpoint.urls,
        "instances": endpoint.lambda.instance_counts(),
    }))
    .into_response()
}

async fn unknown(request: axum::extract::Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let message = match target {
        Some(t) => format!("no emulated service handles X-Amz-Target {t}"),
        None => format!(
            "no emulated service handles {} {}",
            request.method(),
            request.uri().path()
        ),
    };
    // Read (and drop) the body before answering: answering first makes the
    // server close the connection, failing the client's next request on it.
    let _ = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024).await;
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        serde_json::json!({ "__type": "UnknownOperationException", "message": message })
            .to_string(),
    )
        .into_response()
}

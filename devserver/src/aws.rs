//! The devserver's AWS endpoint: one URL that the AWS SDKs take as
//! `endpoint_url` for every emulated service. Requests are told apart the
//! way AWS's own endpoints are: Lambda by its REST paths
//! (`/2015-03-31/...`); JSON-protocol services by `X-Amz-Target`; SNS,
//! which speaks the query protocol, by the `Action` of its form body (or
//! query string, as in a subscription's `SubscribeURL`). EventBridge is a
//! JSON-protocol service too (`AWSEvents.*`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dynamodb::{self, DynamoDb};
use crate::eventbridge::{self, EventBridge};
use crate::lambda::{LambdaHost, invoke_api};
use crate::sns::{self, Sns};
use crate::sqs::{self, Sqs};

/// Path of the health endpoint (not an AWS path, so it cannot collide).
pub const HEALTH_PATH: &str = "/_woocom/health";

#[derive(Clone)]
pub struct AwsEndpoint {
    pub lambda: Arc<LambdaHost>,
    pub urls: Arc<crate::urls::StackUrls>,
    pub dynamodb: Arc<DynamoDb>,
    pub sqs: Arc<Sqs>,
    pub sns: Arc<Sns>,
    pub events: Arc<EventBridge>,
}

pub fn router(endpoint: AwsEndpoint) -> Router {
    let health = Router::new()
        .route(HEALTH_PATH, get(health))
        .with_state(endpoint.clone());
    // DynamoDB and Streams answer `POST /` by `X-Amz-Target`; anything else
    // there falls through to `unknown`.
    let dynamo = Router::new()
        .route(
            "/",
            axum::routing::post(json_protocol)
                .get(query_string)
                .options(preflight),
        )
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
    let events_operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(eventbridge::TARGET_PREFIX))
        .map(str::to_owned);
    if let Some(operation) = events_operation {
        // Ten entries of up to 1 MiB in all, with the JSON around them.
        let Ok(body) = axum::body::to_bytes(request.into_body(), 4 * 1024 * 1024).await else {
            return eventbridge::EventsError::validation(
                "Total size of the entries in the request is over the limit.",
            )
            .into_response();
        };
        return eventbridge::api::serve(&endpoint.events, &operation, &body);
    }
    let form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        // SNS's largest request is a batch of ten messages of 256 KiB in
        // all, form-encoded (up to three bytes per byte).
        let Ok(body) = axum::body::to_bytes(request.into_body(), 4 * 1024 * 1024).await else {
            return sns::SnsError::invalid_parameter("Message too long").into_response();
        };
        let action = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if sns::api::is_sns_action(&action) {
            return sns::api::serve(&endpoint.sns, &body);
        }
        let message = if action.is_empty() {
            "a form-encoded request without an Action".to_owned()
        } else {
            format!("no emulated service handles the query-protocol action {action}")
        };
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>{}</Message></Error></ErrorResponse>",
                sns::xml::escape(&message)
            ),
        )
            .into_response();
    }
    unknown(request).await
}

/// `GET /?Action=...`: the links SNS puts in its messages
/// (`SubscribeURL`, `UnsubscribeURL`).
async fn query_string(
    State(endpoint): State<AwsEndpoint>,
    request: axum::extract::Request,
) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    if query.is_empty() {
        // DynamoDB's endpoints answer `GET /` as a health check.
        return (
            StatusCode::OK,
            [("content-type", "text/plain")],
            format!(
                "healthy: dynamodb.{}.amazonaws.com ",
                endpoint.dynamodb.identity().region
            ),
        )
            .into_response();
    }
    sns::api::serve(&endpoint.sns, query.as_bytes())
}

/// A browser's CORS preflight: any origin may call the endpoint with the
/// headers the SDKs send (DynamoDB's endpoints allow browsers; the request
/// itself is still signed).
async fn preflight(headers: axum::http::HeaderMap) -> Response {
    let requested = headers
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or_else(|| {
            axum::http::HeaderValue::from_static(
                "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent,x-amz-content-sha256,x-amz-security-token,amz-sdk-invocation-id,amz-sdk-request",
            )
        });
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    dynamodb::http::add_cors_headers(h);
    h.insert(
        "access-control-allow-methods",
        axum::http::HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert("access-control-allow-headers", requested);
    h.insert(
        "access-control-max-age",
        axum::http::HeaderValue::from_static("172800"),
    );
    response
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

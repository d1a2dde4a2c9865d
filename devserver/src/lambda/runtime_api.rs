//! The Lambda Runtime API, one listener per instance as in a Lambda
//! sandbox (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>`).
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>
//! Error shapes follow AWS's runtime interface emulator
//! (`internal/lambda/rapi/rendering`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use super::MAX_RUNTIME_RESPONSE;
use super::instance::Instance;
use super::invocation::Completion;

pub const API_VERSION: &str = "2018-06-01";

pub mod headers {
    pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
    pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
    pub const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
    pub const TRACE_ID: &str = "lambda-runtime-trace-id";
    pub const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
    pub const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
}

pub(crate) fn router(instance: Arc<Instance>) -> Router {
    let base = format!("/{API_VERSION}/runtime");
    Router::new()
        .route(&format!("{base}/invocation/next"), get(next))
        .route(
            &format!("{base}/invocation/{{request_id}}/response"),
            post(response),
        )
        .route(
            &format!("{base}/invocation/{{request_id}}/error"),
            post(invocation_error),
        )
        .route(&format!("{base}/init/error"), post(init_error))
        // Bodies are checked against Lambda's own limit below, so the
        // runtime gets Lambda's error rather than a generic one.
        .layer(DefaultBodyLimit::max(MAX_RUNTIME_RESPONSE * 2))
        .with_state(instance)
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string(),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn invalid_request_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

async fn next(State(instance): State<Arc<Instance>>) -> Response {
    let first = match instance.mark_reached_next() {
        Ok(first) => first,
        Err(message) => {
            return error(StatusCode::FORBIDDEN, "InvalidStateTransition", message);
        }
    };
    let Some(pool) = instance.scheduler.upgrade() else {
        return std::future::pending().await;
    };
    let Some(dispatch) = pool.next(&instance, first).await else {
        // This instance is retired (new version, shutdown): it is stopped
        // and never gets another event.
        instance.stop();
        return std::future::pending().await;
    };
    let mut response = Response::new(axum::body::Body::from(dispatch.payload));
    let h = response.headers_mut();
    h.reserve(6);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    set(h, headers::REQUEST_ID, &dispatch.request_id);
    h.insert(
        headers::DEADLINE_MS,
        HeaderValue::from(dispatch.deadline_ms),
    );
    h.insert(headers::FUNCTION_ARN, pool.arn_header());
    set(h, headers::TRACE_ID, &dispatch.trace_id);
    if let Some(cc) = &dispatch.client_context {
        set(h, headers::CLIENT_CONTEXT, cc);
    }
    response
}

/// Sets a header whose value came from a caller; one that is not a valid
/// header value is left out.
fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

async fn response(
    State(instance): State<Arc<Instance>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    if !instance.is_current(&request_id) {
        return invalid_request_id();
    }
    if body.len() > MAX_RUNTIME_RESPONSE {
        let _ = instance.complete(
            &request_id,
            Completion::Error(super::error_payload(
                "Function.ResponseSizeTooLarge",
                &format!(
                    "Response payload size exceeded maximum allowed payload size ({MAX_RUNTIME_RESPONSE} bytes)."
                ),
            )),
        );
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("Exceeded maximum allowed payload size ({MAX_RUNTIME_RESPONSE} bytes)."),
        );
    }
    match instance.complete(&request_id, Completion::Response(body)) {
        Ok(()) => accepted(),
        Err(()) => invalid_request_id(),
    }
}

async fn invocation_error(
    State(instance): State<Arc<Instance>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !instance.is_current(&request_id) {
        return invalid_request_id();
    }
    let payload = function_error_payload(&headers, body);
    match instance.complete(&request_id, Completion::Error(payload)) {
        Ok(()) => accepted(),
        Err(()) => invalid_request_id(),
    }
}

async fn init_error(
    State(instance): State<Arc<Instance>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    instance.record_init_error(function_error_payload(&headers, body));
    accepted()
}

/// The error object the caller sees: the runtime's JSON body when it sent
/// one, else one built from the error-type header.
fn function_error_payload(headers: &HeaderMap, body: Bytes) -> Bytes {
    if serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object()) {
        return body;
    }
    let error_type = headers
        .get(headers::ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled");
    super::error_payload(error_type, &String::from_utf8_lossy(&body))
}

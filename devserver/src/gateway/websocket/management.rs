//! The `@connections` management API (`apigatewaymanagementapi`,
//! 2018-11-29), on the WebSocket listener as on the API's domain in AWS:
//! `POST` sends data to a connection, `GET` describes it, `DELETE` closes
//! it. The AWS SDKs and the AWS CLI reach it with the stage URL as
//! `endpoint_url`; requests are not signature-checked locally.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html>
//!
//! A connection that is closed, never existed, or is still in `$connect`
//! is `410 GoneException`, with no body (only `x-amzn-ErrorType`), which is
//! why SDKs report its message as just "410".

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, TimeZone, Utc};

use super::{MAX_MESSAGE_BYTES, Outbound, WebSocketGateway, close_code};

pub mod headers {
    pub const REQUEST_ID: &str = "x-amzn-requestid";
    pub const ERROR_TYPE: &str = "x-amzn-errortype";
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert(headers::REQUEST_ID, v);
    }
    response
}

fn error(status: StatusCode, error_type: &'static str, message: Option<&str>) -> Response {
    let mut response = match message {
        Some(m) => (
            status,
            [("content-type", "application/json")],
            serde_json::json!({ "message": m }).to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    response
        .headers_mut()
        .insert(headers::ERROR_TYPE, HeaderValue::from_static(error_type));
    with_request_id(response)
}

fn gone() -> Response {
    error(StatusCode::GONE, "GoneException", None)
}

fn iso8601(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) async fn handle(
    gateway: Arc<WebSocketGateway>,
    raw_id: String,
    request: Request,
) -> Response {
    let id = percent_encoding::percent_decode_str(&raw_id)
        .decode_utf8_lossy()
        .into_owned();
    let method = request.method().clone();
    if id.is_empty() || id.contains('/') {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            Some("Invalid connectionId"),
        );
    }
    match method {
        Method::POST => {
            let length = crate::listener::content_length(request.headers());
            let body =
                crate::listener::read_body(request.into_body(), length, MAX_MESSAGE_BYTES).await;
            let body = match body {
                Ok(body) => body,
                Err(crate::listener::ReadBodyError::TooLarge { .. }) => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PayloadTooLargeException",
                        Some("The data has exceeded the maximum size allowed (128 KB)."),
                    );
                }
                // A broken or too slow body.
                Err(e) => {
                    tracing::info!(target: "gateway", connection_id = %id, "@connections POST: {e}");
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        Some("Could not read the request body."),
                    );
                }
            };
            let Some(connection) = gateway.connection(&id) else {
                return gone();
            };
            let message = match std::str::from_utf8(&body) {
                Ok(text) => Outbound::Text(text.to_owned()),
                Err(_) => Outbound::Binary(body),
            };
            // Never waits on the client: a client that does not read is
            // closed and this post, like any to a closed connection, is 410.
            if connection.outbox.push(message).is_err() {
                return gone();
            }
            with_request_id(StatusCode::OK.into_response())
        }
        Method::GET => {
            let Some(connection) = gateway.connection(&id) else {
                return gone();
            };
            let facts = &connection.facts;
            let mut identity = serde_json::Map::new();
            identity.insert("sourceIp".into(), facts.source_ip.clone().into());
            if let Some(agent) = &facts.user_agent {
                identity.insert("userAgent".into(), agent.clone().into());
            }
            // The wire names are the model's `jsonName`s (camelCase); boto3
            // and the AWS CLI show the members as `ConnectedAt`, ...
            let body = serde_json::json!({
                "connectedAt": iso8601(facts.connected_at.timestamp_millis()),
                "identity": identity,
                "lastActiveAt": iso8601(connection.last_active_ms.load(Ordering::Relaxed)),
            });
            let mut response = Response::new(Body::from(body.to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            with_request_id(response)
        }
        Method::DELETE => {
            let Some(connection) = gateway.connection(&id) else {
                return gone();
            };
            // Answers at once; the connection closes in the background.
            if !connection.outbox.close(close_code::NORMAL, "") {
                return gone();
            }
            with_request_id(StatusCode::NO_CONTENT.into_response())
        }
        other => error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            Some(&format!(
                "No method found matching route {}/@connections/{raw_id} for http method {other}.",
                gateway.stage
            )),
        ),
    }
}

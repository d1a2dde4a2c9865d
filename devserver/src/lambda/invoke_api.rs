//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! served on the devserver's AWS endpoint for `aws-sdk-lambda` and
//! `aws lambda invoke --endpoint-url`.
//! <https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;

use super::{
    InvokeRequest, LATEST, LambdaError, LambdaHost, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD, tail_4k,
};

pub const API_VERSION: &str = "2015-03-31";

pub mod headers {
    pub const INVOCATION_TYPE: &str = "x-amz-invocation-type";
    pub const LOG_TYPE: &str = "x-amz-log-type";
    pub const CLIENT_CONTEXT: &str = "x-amz-client-context";
    pub const FUNCTION_ERROR: &str = "x-amz-function-error";
    pub const LOG_RESULT: &str = "x-amz-log-result";
    pub const EXECUTED_VERSION: &str = "x-amz-executed-version";
    pub const REQUEST_ID: &str = "x-amzn-requestid";
    pub const ERROR_TYPE: &str = "x-amzn-errortype";
}

pub fn router(host: Arc<LambdaHost>) -> Router {
    // Payload limits are checked in the handler, while reading, so that
    // clients get Lambda's error (`RequestTooLargeException`) for any size.
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(host)
}

/// Reads a payload of at most `limit` bytes (see
/// [`crate::listener::read_body`]); a larger one is answered 413
/// `RequestTooLargeException`, whatever its size.
async fn read_payload(
    body: axum::body::Body,
    headers: &HeaderMap,
    limit: usize,
    invocation_type: &str,
) -> Result<Bytes, ApiError> {
    use crate::listener::{ReadBodyError, content_length, read_body};
    read_body(body, content_length(headers), limit)
        .await
        .map_err(|e| match e {
            ReadBodyError::TooLarge { size, limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                format!(
                    "{size} byte payload is too large for the {invocation_type} invocation type (limit {limit} bytes)"
                ),
            ),
            ReadBodyError::Broken(e, _) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not read the request body: {e}"),
            ),
        })
}

/// A full ARN naming another region or account: Lambda does not look for
/// the function here. Another region is answered as Lambda answers it
/// (`ResourceNotFoundException`, "Functions from 'eu-west-1' are not
/// reachable in this region ('us-east-1')"); a function of another account
/// does not exist on this machine, so it is not found either.
fn foreign_arn(host: &LambdaHost, raw: &str, name: &str) -> Option<ApiError> {
    let requested: Vec<&str> = raw.split(':').collect();
    let local_arn = host.function_arn(name);
    let local: Vec<&str> = local_arn.split(':').collect();
    let (region, account) = match requested.as_slice() {
        ["arn", _, "lambda", region, account, ..] => (Some(*region), *account),
        [account, "function", ..] => (None, *account),
        _ => return None,
    };
    let (local_region, local_account) = (local.get(3)?, local.get(4)?);
    if let Some(region) = region.filter(|r| r != local_region) {
        return Some(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "Functions from '{region}' are not reachable in this region ('{local_region}')"
            ),
        ));
    }
    if account != *local_account {
        let arn = format!(
            "arn:aws:lambda:{}:{account}:function:{name}",
            region.unwrap_or(local_region)
        );
        return Some(LambdaError::FunctionNotFound { arn }.into());
    }
    None
}

/// A Lambda API error, as restJson1 clients read it: the type in
/// `x-amzn-ErrorType` and `{"Type", "message"}` in the body.
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        };
        let body = serde_json::json!({ "Type": kind, "message": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        let h = response.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(self.error_type) {
            h.insert(headers::ERROR_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            h.insert(headers::REQUEST_ID, v);
        }
        response
    }
}

impl From<LambdaError> for ApiError {
    fn from(e: LambdaError) -> Self {
        match e {
            LambdaError::FunctionNotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                e.to_string(),
            ),
            LambdaError::RequestTooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", m)
            }
            LambdaError::TooManyRequests(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", m)
            }
            LambdaError::ShuttingDown | LambdaError::CallerTimedOut(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                e.to_string(),
            ),
        }
    }
}

/// The function name out of any form Invoke accepts: `name`,
/// `name:qualifier`, `123456789012:function:name[:qualifier]` or a full ARN.
pub fn parse_function_name(raw: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
        ] => (*name, None),
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
            q,
        ] => (*name, Some(*q)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, q] => (*name, Some(*q)),
        _ => return None,
    };
    if name.is_empty() {
        return None;
    }
    Some((name.to_owned(), qualifier.map(str::to_owned)))
}

#[derive(serde::Deserialize)]
struct InvokeQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

async fn invoke(
    State(host): State<Arc<LambdaHost>>,
    Path(function): Path<String>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Some((name, qualifier)) = parse_function_name(&function) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{function}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            ),
        ));
    };
    if let Some(refusal) = foreign_arn(&host, &function, &name) {
        return Err(refusal);
    }
    let qualifier = qualifier.or(query.qualifier);
    if !host.has_function(&name) || qualifier.as_deref().is_some_and(|q| q != LATEST) {
        let arn = match &qualifier {
            Some(q) => format!("{}:{q}", host.function_arn(&name)),
            None => host.function_arn(&name),
        };
        return Err(LambdaError::FunctionNotFound { arn }.into());
    }

    let invocation_type = headers
        .get(headers::INVOCATION_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let limit = match invocation_type {
        "RequestResponse" | "DryRun" => MAX_SYNC_PAYLOAD,
        "Event" => MAX_ASYNC_PAYLOAD,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!(
                    "Unsupported invocation type {other}: expected RequestResponse, Event or DryRun"
                ),
            ));
        }
    };
    let body = read_payload(body, &headers, limit, invocation_type).await?;
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        // serde_json skips the bytes of strings it ignores without checking
        // them, so UTF-8 is checked first: Lambda refuses it too.
        let json = std::str::from_utf8(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!(
                    "Could not parse request body into json: Could not parse payload into json: Invalid UTF-8: {e}"
                ),
            )
        })?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!(
                    "Could not parse request body into json: Could not parse payload into json: {e}"
                ),
            ));
        }
        body
    };
    let client_context = match headers.get(headers::CLIENT_CONTEXT) {
        None => None,
        Some(v) => {
            let decoded = v
                .to_str()
                .ok()
                .and_then(|s| BASE64.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| {
                    serde_json::from_str::<serde_json::Value>(s).is_ok_and(|v| v.is_object())
                });
            match decoded {
                Some(json) => Some(json),
                None => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameterValueException",
                        "Client context must be a valid Base64-encoded JSON object.",
                    ));
                }
            }
        }
    };
    let tail_logs = headers
        .get(headers::LOG_TYPE)
        .is_some_and(|v| v.as_bytes() == b"Tail");
    let request = InvokeRequest {
        payload,
        client_context,
        tail_logs: tail_logs && invocation_type == "RequestResponse",
        ..InvokeRequest::default()
    };

    match invocation_type {
        "DryRun" => Ok(StatusCode::NO_CONTENT.into_response()),
        "Event" => {
            let request_id = host.invoke_event(&name, request)?;
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(headers::REQUEST_ID, v);
            }
            Ok(response)
        }
        _ => {
            let result = host.invoke(&name, request).await?;
            let mut response = (StatusCode::OK, result.payload).into_response();
            let h = response.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            h.insert(headers::EXECUTED_VERSION, HeaderValue::from_static(LATEST));
            if let Ok(v) = HeaderValue::from_str(&result.request_id) {
                h.insert(headers::REQUEST_ID, v);
            }
            if let Some(kind) = result.function_error
                && let Ok(v) = HeaderValue::from_str(&kind)
            {
                h.insert(headers::FUNCTION_ERROR, v);
            }
            if let Some(log) = result.log
                && let Ok(v) = HeaderValue::from_str(&BASE64.encode(tail_4k(&log)))
            {
                h.insert(headers::LOG_RESULT, v);
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_function_name;

    #[test]
    fn function_name_forms() {
        let plain = Some(("orders".to_owned(), None));
        assert_eq!(parse_function_name("orders"), plain);
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:000000000000:function:orders"),
            plain
        );
        assert_eq!(parse_function_name("000000000000:function:orders"), plain);
        assert_eq!(
            parse_function_name("orders:$LATEST"),
            Some(("orders".to_owned(), Some("$LATEST".to_owned())))
        );
        assert_eq!(parse_function_name("a:b:c"), None);
        assert_eq!(parse_function_name(""), None);
    }
}

//! The one error shape of the shop's APIs:
//! `{"error": {"code": "...", "message": "...", "fields": {...}}}` with
//! the matching HTTP status.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use lambda_http::{Body, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Field name → what is wrong with it, for validation errors.
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "bad_request", message)
    }

    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        ApiError {
            status: 400,
            code: "validation_failed",
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }

    /// `Ok` when no field is at fault, else 400 `validation_failed` naming
    /// each one: the end of every input's `validate`.
    pub fn check(fields: BTreeMap<String, String>) -> Result<(), ApiError> {
        if fields.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(fields))
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "not_found", message)
    }

    pub fn method_not_allowed(method: &str) -> Self {
        ApiError::new(
            405,
            "method_not_allowed",
            format!("{method} is not supported here"),
        )
    }

    /// Checkout found too little stock. `left` maps each short product's id
    /// to the units that remain (a decimal number), `message` names them.
    pub fn sold_out(message: impl Into<String>, left: BTreeMap<String, String>) -> Self {
        ApiError {
            status: 409,
            code: "sold_out",
            message: message.into(),
            fields: left,
        }
    }

    /// A change to a basket that was checked out already.
    pub fn basket_closed(basket_id: &str) -> Self {
        ApiError::new(
            409,
            "basket_closed",
            format!("basket {basket_id} was checked out already"),
        )
    }

    /// An order status change the lifecycle does not allow.
    pub fn invalid_transition(from: &str, to: &str) -> Self {
        ApiError::new(
            409,
            "invalid_transition",
            format!("an order cannot move from {from} to {to}"),
        )
    }

    /// The request collides with the current state in a way a retry of the
    /// same request will not fix (e.g. a `clientKey` used for another basket).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(409, "conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "internal", message)
    }

    /// A DynamoDB call failed after the SDK's retries. The caller gets the
    /// error code; the log gets everything.
    pub fn storage<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = e.code().unwrap_or("no answer").to_owned();
        tracing::error!(
            "DynamoDB call failed: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        );
        ApiError::new(
            503,
            "storage_unavailable",
            format!("the store did not answer ({code})"),
        )
    }

    pub fn to_response(&self) -> Response<Body> {
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.fields.is_empty() {
            error["fields"] = json!(self.fields);
        }
        json_response(self.status, &json!({ "error": error }))
    }
}

pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::OK);
    response.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    // The shop's pages are served from another origin; the gateway's CORS
    // setting answers preflights, the function answers the request itself.
    response.headers_mut().insert(
        "access-control-allow-origin",
        lambda_http::http::HeaderValue::from_static("*"),
    );
    response
}

/// A handler's answer: the response, or the error in the one JSON shape.
/// Server-side failures are logged with their details (the client gets the
/// status and a short message).
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    match result {
        Ok(response) => response,
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(status = e.status, "{}", e.message);
            }
            e.to_response()
        }
    }
}

/// A JSON request body as `T`; 400 `bad_request` saying what was expected
/// and where the body goes wrong.
pub fn body_of<T: serde::de::DeserializeOwned>(body: &Body, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body.as_ref())
        .map_err(|e| ApiError::bad_request(format!("the body is not {what}: {e}")))
}

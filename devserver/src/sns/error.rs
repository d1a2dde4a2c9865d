//! SNS errors as the query protocol carries them: an XML `ErrorResponse`
//! with the fault (`Sender`/`Receiver`), the code the SDKs report, and the
//! message, with the status AWS uses for that code.
//! <https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html>

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::xml::escape;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SnsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl SnsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> SnsError {
        SnsError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `InvalidParameter`, with AWS's `Invalid parameter: ` prefix.
    pub fn invalid_parameter(what: impl std::fmt::Display) -> SnsError {
        SnsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("Invalid parameter: {what}"),
        )
    }

    /// `InvalidParameterValue` (message attributes).
    pub fn invalid_parameter_value(message: impl Into<String>) -> SnsError {
        SnsError::new(StatusCode::BAD_REQUEST, "ParameterValueInvalid", message)
    }

    pub fn topic_not_found() -> SnsError {
        SnsError::new(StatusCode::NOT_FOUND, "NotFound", "Topic does not exist")
    }

    pub fn subscription_not_found() -> SnsError {
        SnsError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Subscription does not exist",
        )
    }

    pub fn resource_not_found() -> SnsError {
        SnsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "Resource does not exist",
        )
    }

    /// A required member left out, as the query protocol's validation
    /// reports it.
    pub fn missing_parameter(name: &str) -> SnsError {
        let mut member = name.to_owned();
        if let Some(first) = member.get_mut(0..1) {
            first.make_ascii_lowercase();
        }
        SnsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ),
        )
    }

    pub fn invalid_action(action: &str) -> SnsError {
        SnsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("The action {action} is not valid for this endpoint."),
        )
    }

    pub fn batch(code: &'static str, message: &str) -> SnsError {
        SnsError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> SnsError {
        SnsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

impl IntoResponse for SnsError {
    fn into_response(self) -> Response {
        let body = format!(
            "<ErrorResponse xmlns=\"{}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            super::xml::NAMESPACE,
            self.fault(),
            self.code,
            escape(&self.message),
            uuid::Uuid::new_v4()
        );
        (self.status, [("content-type", "text/xml")], body).into_response()
    }
}

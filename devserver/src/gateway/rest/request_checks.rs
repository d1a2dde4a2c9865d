//! What the REST API refuses before routing: requests API Gateway (and the
//! HTTP/1.1 rules in front of it) do not take.
//!
//! - Request line and header values over API Gateway's quota of 10,240
//!   bytes ("Total combined size of request line and header values"):
//!   <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html>.
//!   AWS does not document the answer; HTTP's own is 431 (RFC 6585 §5).
//! - An HTTP/1.1 request without `Host`: 400, as RFC 9112 §3.2 requires.
//! - `Transfer-Encoding` together with `Content-Length`: 400 (RFC 9112
//!   §6.3 lets a server refuse what may be request smuggling; hyper itself
//!   would take the chunked body and drop the length).
//! - A body whose framing is broken or that stops early: 400; only a body
//!   over the 10 MB payload quota is 413.

use axum::http::StatusCode;
use http::request::Parts;

use super::GatewayResponse;
use crate::listener::{AmbiguousLength, BodyFailure, ReadBodyError};

/// API Gateway's quota on the request line plus header values, in bytes.
pub const MAX_REQUEST_LINE_AND_HEADERS: usize = 10_240;

pub(super) const BAD_REQUEST: GatewayResponse = GatewayResponse {
    status: StatusCode::BAD_REQUEST,
    error_type: "BadRequestException",
    body: r#"{"message":"Bad Request"}"#,
};
pub(super) const HEADERS_TOO_LARGE: GatewayResponse = GatewayResponse {
    status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    error_type: "RequestHeaderFieldsTooLargeException",
    body: r#"{"message":"Request Header Fields Too Large"}"#,
};

/// The refusal a request's head earns, if any.
pub(super) fn check(parts: &Parts) -> Option<&'static GatewayResponse> {
    let request_line =
        parts.method.as_str().len() + 1 + parts.uri.to_string().len() + " HTTP/1.1".len();
    let header_values: usize = parts.headers.values().map(|v| v.len()).sum();
    if request_line + header_values > MAX_REQUEST_LINE_AND_HEADERS {
        return Some(&HEADERS_TOO_LARGE);
    }
    if parts.version == http::Version::HTTP_11 && !parts.headers.contains_key(http::header::HOST) {
        return Some(&BAD_REQUEST);
    }
    let both_lengths = parts.extensions.get::<AmbiguousLength>().is_some()
        || (parts.headers.contains_key(http::header::TRANSFER_ENCODING)
            && parts.headers.contains_key(http::header::CONTENT_LENGTH));
    if both_lengths {
        return Some(&BAD_REQUEST);
    }
    None
}

/// The answer to a body that could not be read.
pub(super) fn body_refusal(error: &ReadBodyError) -> &'static GatewayResponse {
    match error.failure() {
        BodyFailure::TooLarge => &super::REQUEST_TOO_LARGE,
        BodyFailure::TimedOut | BodyFailure::Malformed => &BAD_REQUEST,
    }
}

//! The AWS JSON 1.0 wire format of DynamoDB and DynamoDB Streams: target
//! prefixes, content types, and errors as the SDKs read them
//! (`{"__type": "<namespace>#<Code>", "message": "..."}`; the SDKs match on
//! the part after `#`).
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html>

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::StatusCode;

/// `X-Amz-Target` prefix of the DynamoDB API.
pub const DYNAMODB_TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// `X-Amz-Target` prefix of the DynamoDB Streams API.
pub const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";
/// The content type DynamoDB answers with (and the SDKs send).
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

pub mod headers {
    pub const TARGET: &str = "x-amz-target";
    pub const REQUEST_ID: &str = "x-amzn-requestid";
    /// CRC32 of the response body as sent (compressed, if it is).
    pub const CRC32: &str = "x-amz-crc32";
}

/// Error namespaces DynamoDB writes in `__type`.
const DYNAMODB_NS: &str = "com.amazonaws.dynamodb.v20120810";
const COMMON_NS: &str = "com.amazon.coral.service";
const AVAILABILITY_NS: &str = "com.amazon.coral.availability";

/// An error answered on the wire, with DynamoDB's `__type` and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The full `__type`, e.g. `com.amazonaws.dynamodb.v20120810#ValidationException`.
    pub error_type: String,
    pub message: Option<String>,
    /// A complete body, when the engine wrote one (cancellation reasons,
    /// items returned on a failed condition): sent as is.
    pub body: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error_type: String, message: Option<String>) -> ApiError {
        ApiError {
            status,
            error_type,
            message,
            body: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{DYNAMODB_NS}#ValidationException"),
            Some(message.into()),
        )
    }

    pub fn resource_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{DYNAMODB_NS}#ResourceNotFoundException"),
            Some(message.into()),
        )
    }

    pub fn table_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{DYNAMODB_NS}#TableNotFoundException"),
            Some(message.into()),
        )
    }

    /// A shard iterator older than its 15 minutes.
    pub fn expired_iterator(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{DYNAMODB_NS}#ExpiredIteratorException"),
            Some(message.into()),
        )
    }

    /// A body that is not JSON, or not the shape an operation takes.
    /// DynamoDB answers these without a message.
    pub fn serialization(message: Option<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{COMMON_NS}#SerializationException"),
            message,
        )
    }

    /// A DynamoDB request without a SigV4 signature.
    pub fn missing_authentication_token() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{COMMON_NS}#MissingAuthenticationTokenException"),
            Some("Request is missing Authentication Token".to_owned()),
        )
    }

    /// A signature of the wrong shape, or too old or new.
    pub fn invalid_signature(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{COMMON_NS}#InvalidSignatureException"),
            Some(message.into()),
        )
    }

    pub fn unknown_operation() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{COMMON_NS}#UnknownOperationException"),
            None,
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{DYNAMODB_NS}#InternalServerError"),
            Some(message.into()),
        )
    }

    /// `413`: a body above the largest request DynamoDB reads.
    pub fn request_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{COMMON_NS}#RequestEntityTooLarge"),
            Some(format!(
                "Request entity too large: the request body exceeds {limit} bytes"
            )),
        )
    }

    /// An error the engine returned, in the engine's own JSON.
    pub fn from_engine(error: &dynoxide::DynoxideError) -> ApiError {
        let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError {
            status,
            error_type: error.error_type().to_owned(),
            message: Some(error.to_string()),
            body: Some(error.to_json()),
        }
    }

    /// The error code the SDKs match on (`ValidationException`, ...).
    pub fn code(&self) -> &str {
        self.error_type
            .rsplit_once('#')
            .map_or(self.error_type.as_str(), |(_, code)| code)
    }

    pub fn body(&self) -> Bytes {
        if let Some(body) = &self.body {
            return Bytes::from(body.clone());
        }
        let mut map = serde_json::Map::new();
        map.insert("__type".into(), self.error_type.clone().into());
        if let Some(message) = &self.message {
            map.insert("message".into(), message.clone().into());
        }
        Bytes::from(serde_json::Value::Object(map).to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.code()),
            None => f.write_str(self.code()),
        }
    }
}

/// The throttling and server errors fault injection answers with, in the
/// exact shapes DynamoDB sends them, so SDK retry code sees the real thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InjectedError {
    ProvisionedThroughputExceededException,
    ThrottlingException,
    InternalServerError,
}

impl InjectedError {
    pub const ALL: [InjectedError; 3] = [
        InjectedError::ProvisionedThroughputExceededException,
        InjectedError::ThrottlingException,
        InjectedError::InternalServerError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InjectedError::ProvisionedThroughputExceededException => {
                "ProvisionedThroughputExceededException"
            }
            InjectedError::ThrottlingException => "ThrottlingException",
            InjectedError::InternalServerError => "InternalServerError",
        }
    }

    pub fn parse(name: &str) -> Option<InjectedError> {
        InjectedError::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn to_api_error(self) -> ApiError {
        match self {
            InjectedError::ProvisionedThroughputExceededException => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{DYNAMODB_NS}#ProvisionedThroughputExceededException"),
                Some(
                    "The level of configured provisioned throughput for the table was exceeded. \
                     Consider increasing your provisioning level with the UpdateTable API."
                        .to_owned(),
                ),
            ),
            InjectedError::ThrottlingException => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{AVAILABILITY_NS}#ThrottlingException"),
                Some("Rate of requests exceeds the allowed throughput.".to_owned()),
            ),
            InjectedError::InternalServerError => ApiError::internal("Internal server error"),
        }
    }
}

impl std::fmt::Display for InjectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A DynamoDB-style request id: 52 characters of `[0-9A-Z]`.
///
/// Ids only need to differ, not to be secret: they come from a splitmix64
/// sequence seeded once from a random UUID, written into one allocation
/// (two UUIDs formatted, joined and upper-cased took five per response).
pub fn request_id() -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut id = String::with_capacity(52);
    while id.len() < 52 {
        let mut z = NEXT
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(seed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 36^12 < 2^64: twelve digits from each draw.
        for _ in 0..12 {
            if id.len() == 52 {
                break;
            }
            id.push(char::from(DIGITS[(z % 36) as usize]));
            z /= 36;
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_has_dynamodb_shape() {
        let body = ApiError::validation("bad").body();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            v["__type"],
            "com.amazonaws.dynamodb.v20120810#ValidationException"
        );
        assert_eq!(v["message"], "bad");
    }

    #[test]
    fn request_ids_are_52_characters_of_digits_and_capitals_and_differ() {
        let (a, b) = (request_id(), request_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 52, "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{id}"
            );
        }
        assert_ne!(a, b);
    }

    #[test]
    fn injected_errors_round_trip_by_name() {
        for e in InjectedError::ALL {
            assert_eq!(InjectedError::parse(e.name()), Some(e));
            assert_eq!(e.to_api_error().code(), e.name());
        }
        assert_eq!(
            InjectedError::InternalServerError.to_api_error().status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

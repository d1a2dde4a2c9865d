//! SQS errors as the JSON protocol carries them: status 400 (or 500), the
//! error's shape in `__type`, and the query-protocol code the SDKs report
//! in `x-amzn-query-error` (`AWS.SimpleQueueService.NonExistentQueue;Sender`),
//! since SQS moved from the query protocol and keeps its old codes.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html>

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqsError {
    pub status: StatusCode,
    /// The shape name, after `com.amazonaws.sqs#` in `__type`.
    pub shape: &'static str,
    /// The query-protocol code (what the SDKs show as the error code).
    pub code: &'static str,
    pub message: String,
}

impl SqsError {
    fn new(shape: &'static str, code: &'static str, message: impl Into<String>) -> SqsError {
        SqsError {
            status: StatusCode::BAD_REQUEST,
            shape,
            code,
            message: message.into(),
        }
    }

    pub fn queue_does_not_exist() -> SqsError {
        SqsError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }

    pub fn queue_name_exists(attribute: &str) -> SqsError {
        SqsError::new(
            "QueueNameExists",
            "QueueAlreadyExists",
            format!(
                "A queue already exists with the same name and a different value for attribute {attribute}"
            ),
        )
    }

    pub fn invalid_parameter(message: impl Into<String>) -> SqsError {
        SqsError::new(
            "InvalidParameterValueException",
            "InvalidParameterValue",
            message,
        )
    }

    pub fn missing_parameter(name: &str) -> SqsError {
        SqsError::new(
            "MissingRequiredParameterException",
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )
    }

    pub fn invalid_attribute_name(name: &str) -> SqsError {
        SqsError::new(
            "InvalidAttributeName",
            "InvalidAttributeName",
            format!("Unknown Attribute {name}."),
        )
    }

    pub fn invalid_attribute_value(name: &str) -> SqsError {
        SqsError::new(
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            format!("Invalid value for the parameter {name}."),
        )
    }

    pub fn receipt_handle_is_invalid(handle: &str) -> SqsError {
        SqsError::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }

    pub fn message_not_inflight() -> SqsError {
        SqsError::new(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "Message does not exist or is not available for visibility timeout change.",
        )
    }

    pub fn invalid_message_contents(c: char) -> SqsError {
        SqsError::new(
            "InvalidMessageContents",
            "InvalidMessageContents",
            format!(
                "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
                u32::from(c)
            ),
        )
    }

    pub fn empty_batch(entry: &str) -> SqsError {
        SqsError::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            format!("There should be at least one {entry} in the request."),
        )
    }

    pub fn too_many_entries(sent: usize) -> SqsError {
        SqsError::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are 10. You have sent {sent}."),
        )
    }

    pub fn batch_ids_not_distinct(id: &str) -> SqsError {
        SqsError::new(
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            format!("Id {id} repeated."),
        )
    }

    pub fn invalid_batch_entry_id() -> SqsError {
        SqsError::new(
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        )
    }

    pub fn batch_request_too_long(limit: usize) -> SqsError {
        SqsError::new(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!("Batch requests cannot be longer than {limit} bytes."),
        )
    }

    pub fn purge_in_progress(queue: &str) -> SqsError {
        SqsError::new(
            "PurgeQueueInProgress",
            "AWS.SimpleQueueService.PurgeQueueInProgress",
            format!("Only one PurgeQueue operation on {queue} is allowed every 60 seconds."),
        )
    }

    pub fn unsupported_operation(message: impl Into<String>) -> SqsError {
        SqsError::new(
            "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            message,
        )
    }

    pub fn resource_not_found(message: impl Into<String>) -> SqsError {
        SqsError::new(
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            message,
        )
    }

    pub fn invalid_action(target: &str) -> SqsError {
        SqsError::new(
            "InvalidAction",
            "InvalidAction",
            format!("The action {target} is not valid for this endpoint."),
        )
    }

    pub fn malformed(message: impl Into<String>) -> SqsError {
        SqsError::new(
            "InvalidParameterValueException",
            "InvalidParameterValue",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> SqsError {
        SqsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..SqsError::new("InternalError", "InternalError", message)
        }
    }

    /// The `Code` a batch result's failed entry carries.
    pub fn batch_code(&self) -> &'static str {
        self.shape
    }
}

impl IntoResponse for SqsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "__type": format!("com.amazonaws.sqs#{}", self.shape),
            "message": self.message,
        })
        .to_string();
        let mut response = (self.status, body).into_response();
        let h = response.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        let fault = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", self.code)) {
            h.insert("x-amzn-query-error", v);
        }
        if let Ok(v) = HeaderValue::from_str(self.shape) {
            h.insert("x-amzn-errortype", v);
        }
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            h.insert("x-amzn-requestid", v);
        }
        response
    }
}

//! DynamoDB's HTTP surface on the AWS endpoint: `POST /` with
//! `X-Amz-Target: DynamoDB_20120810.<Operation>` or
//! `DynamoDBStreams_20120810.<Operation>`, AWS JSON 1.0 bodies, optionally
//! gzip-compressed in either direction; plus the fault-injection control
//! endpoint under `/_woocom/`.

use std::io::{Read, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::faults::FaultRule;
use super::guard::MAX_REQUEST_BYTES;
use super::sigv4::{self, SignatureError};
use super::wire::{self, ApiError, headers};
use super::{DynamoDb, engine};

/// The control endpoint for fault injection (not an AWS path).
pub const FAULTS_PATH: &str = "/_woocom/dynamodb/faults";

/// Whether a request's `X-Amz-Target` names a DynamoDB or Streams operation.
pub fn is_dynamodb_target(headers: &HeaderMap) -> bool {
    headers
        .get(headers::TARGET)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with(wire::DYNAMODB_TARGET_PREFIX)
                || t.starts_with(wire::STREAMS_TARGET_PREFIX)
        })
}

/// The control routes (`/_woocom/dynamodb/...`).
pub fn control_router(db: Arc<DynamoDb>) -> Router {
    Router::new()
        .route(
            FAULTS_PATH,
            get(list_faults)
                .put(set_fault)
                .post(set_fault)
                .delete(clear_faults),
        )
        .with_state(db)
}

/// Serves one DynamoDB request. The caller has checked
/// [`is_dynamodb_target`].
pub async fn serve(db: Arc<DynamoDb>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let reply_encoding = reply_encoding(&parts.headers);
    let cors = parts.headers.contains_key(http::header::ORIGIN);
    let result = async {
        // The body is read before anything is refused, so the connection
        // stays usable for the client's next request (an unread body would
        // make the server close it); into one buffer of its declared size,
        // without the copies of a growing or joined one.
        let length = crate::listener::content_length(&parts.headers);
        let raw = crate::listener::read_body(body, length, MAX_REQUEST_BYTES)
            .await
            .map_err(|_| ApiError::request_too_large(MAX_REQUEST_BYTES))?;
        match sigv4::check(&parts.headers, parts.uri.query(), chrono::Utc::now()) {
            Ok(()) => {}
            Err(SignatureError::Missing) => return Err(ApiError::missing_authentication_token()),
            Err(SignatureError::Invalid(message)) => {
                return Err(ApiError::invalid_signature(message));
            }
        }
        let operation = operation(&parts.headers)?;
        let body = decode_body(&parts.headers, raw)?;
        tracing::debug!(operation, bytes = body.len(), "dynamodb request");
        if operation == "DescribeEndpoints" {
            return Ok(describe_endpoints(&parts.headers));
        }
        db.call(operation, body).await.map_err(|e| {
            if e.status.is_server_error() {
                tracing::warn!(operation, error = %e, "dynamodb request failed");
            } else {
                tracing::debug!(operation, error = %e, "dynamodb request refused");
            }
            e
        })
    }
    .await;
    let mut response = match result {
        Ok(body) => respond(StatusCode::OK, Bytes::from(body), reply_encoding),
        Err(e) => respond(e.status, e.body(), reply_encoding),
    };
    if cors {
        add_cors_headers(response.headers_mut());
    }
    response
}

/// CORS headers on a response to a browser (a request with `Origin`): any
/// origin may call the endpoint, as any may call DynamoDB's, and read the
/// headers the SDKs read.
pub fn add_cors_headers(headers: &mut HeaderMap) {
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-amzn-RequestId,x-amzn-ErrorType,x-amz-crc32,x-amz-id-2,Date"),
    );
}

/// DynamoDB's endpoint discovery: the one endpoint is this one (an SDK
/// with discovery on sends its next requests to the address given, so it
/// must not be AWS's).
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeEndpoints.html>
fn describe_endpoints(headers: &HeaderMap) -> String {
    let address = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    serde_json::json!({
        "Endpoints": [{"Address": address, "CachePeriodInMinutes": 1440}]
    })
    .to_string()
}

fn operation(headers: &HeaderMap) -> Result<&str, ApiError> {
    let target = headers
        .get(headers::TARGET)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unknown_operation)?;
    let (operation, streams) = match target.strip_prefix(wire::DYNAMODB_TARGET_PREFIX) {
        Some(op) => (op, false),
        None => match target.strip_prefix(wire::STREAMS_TARGET_PREFIX) {
            Some(op) => (op, true),
            None => return Err(ApiError::unknown_operation()),
        },
    };
    // Each API serves only its own operations, as AWS's endpoints do.
    if !engine::OPERATIONS.contains(&operation)
        || engine::is_streams_operation(operation) != streams
    {
        return Err(ApiError::unknown_operation());
    }
    Ok(operation)
}

/// Inflates a `Content-Encoding: gzip` or `deflate` body, bounded by the
/// request limit (so a small bomb cannot expand without end). `deflate` is
/// zlib-wrapped as HTTP defines it; a raw deflate stream, which some
/// clients send under that name, is accepted too.
fn decode_body(headers: &HeaderMap, raw: Bytes) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => inflate(flate2::read::GzDecoder::new(&raw[..]), "gzip"),
        "deflate" => inflate(flate2::read::ZlibDecoder::new(&raw[..]), "deflate")
            .or_else(|_| inflate(flate2::read::DeflateDecoder::new(&raw[..]), "deflate")),
        other => Err(ApiError::serialization(Some(format!(
            "Unsupported Content-Encoding `{other}`: DynamoDB accepts gzip and deflate"
        )))),
    }
}

fn inflate(reader: impl Read, name: &str) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    reader
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::serialization(Some(format!("The request body is not valid {name}: {e}")))
        })?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::request_too_large(MAX_REQUEST_BYTES));
    }
    Ok(Bytes::from(out))
}

/// How a response is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

/// Whether `Accept-Encoding` lists `coding` (and does not refuse it with
/// q=0).
fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case(wanted) || coding == "*") && !refused
        })
}

/// gzip when the client takes it, else deflate, else none.
fn reply_encoding(headers: &HeaderMap) -> Encoding {
    if accepts(headers, "gzip") {
        Encoding::Gzip
    } else if accepts(headers, "deflate") {
        Encoding::Deflate
    } else {
        Encoding::Identity
    }
}

/// A response as DynamoDB sends it: its content type, a request id, and
/// the CRC32 of the body as sent (the SDKs that check it read the bytes on
/// the wire, compressed when they are).
fn respond(status: StatusCode, body: Bytes, encoding: Encoding) -> Response {
    let compressed = match encoding {
        Encoding::Identity => None,
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(&body)
                .and_then(|()| encoder.finish())
                .ok()
                .map(|b| (b, "gzip"))
        }
        Encoding::Deflate => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(&body)
                .and_then(|()| encoder.finish())
                .ok()
                .map(|b| (b, "deflate"))
        }
    };
    let (body, coding) = match compressed {
        Some((b, coding)) => (Bytes::from(b), Some(coding)),
        None => (body, None),
    };
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(wire::CONTENT_TYPE),
    );
    if let Ok(id) = HeaderValue::from_str(&wire::request_id()) {
        h.insert(headers::REQUEST_ID, id);
    }
    h.insert(headers::CRC32, HeaderValue::from(crc.sum()));
    if let Some(coding) = coding {
        h.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static(coding),
        );
    }
    response
}

// ---- fault injection control -----------------------------------------------

#[derive(serde::Deserialize)]
struct SetFault {
    table: String,
    #[serde(flatten)]
    rule: FaultRule,
}

#[derive(serde::Deserialize)]
struct ClearFaults {
    table: Option<String>,
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

async fn list_faults(State(db): State<Arc<DynamoDb>>) -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({ "faults": db.faults().list() }),
    )
}

async fn set_fault(State(db): State<Arc<DynamoDb>>, body: Bytes) -> Response {
    let request: SetFault = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "message": format!("expected {{\"table\", \"rate\", \"error\", \"operations\"?, \"count\"?}}: {e}") }),
            );
        }
    };
    match db.faults().set(&request.table, request.rule) {
        Ok(()) => {
            tracing::info!(table = %request.table, "fault injection set");
            json(
                StatusCode::OK,
                serde_json::json!({ "faults": db.faults().list() }),
            )
        }
        Err(message) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "message": message }),
        ),
    }
}

async fn clear_faults(State(db): State<Arc<DynamoDb>>, Query(q): Query<ClearFaults>) -> Response {
    db.faults().clear(q.table.as_deref());
    tracing::info!(table = ?q.table, "fault injection cleared");
    json(
        StatusCode::OK,
        serde_json::json!({ "faults": db.faults().list() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        let mut h = HeaderMap::new();
        assert_eq!(reply_encoding(&h), Encoding::Identity);
        h.insert(
            "accept-encoding",
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert_eq!(reply_encoding(&h), Encoding::Gzip);
        h.insert(
            "accept-encoding",
            HeaderValue::from_static("gzip;q=0, identity"),
        );
        assert_eq!(reply_encoding(&h), Encoding::Identity);
        h.insert(
            "accept-encoding",
            HeaderValue::from_static("deflate, gzip;q=0"),
        );
        assert_eq!(reply_encoding(&h), Encoding::Deflate);
    }

    #[test]
    fn targets_are_split_by_api() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        );
        assert_eq!(operation(&h).ok(), Some("GetItem"));
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.GetRecords"),
        );
        assert!(operation(&h).is_err(), "GetRecords belongs to Streams");
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDBStreams_20120810.GetRecords"),
        );
        assert_eq!(operation(&h).ok(), Some("GetRecords"));
    }

    #[test]
    fn gzip_bodies_are_decoded_and_bombs_stopped() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", HeaderValue::from_static("gzip"));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(b"{\"TableName\":\"t\"}").expect("write");
        let body = decode_body(&h, Bytes::from(enc.finish().expect("gzip"))).expect("decoded");
        assert_eq!(&body[..], b"{\"TableName\":\"t\"}");

        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..17 {
            bomb.write_all(&zeros).expect("write");
        }
        let err = decode_body(&h, Bytes::from(bomb.finish().expect("gzip"))).expect_err("bomb");
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);

        assert!(decode_body(&h, Bytes::from_static(b"not gzip")).is_err());

        h.insert("content-encoding", HeaderValue::from_static("deflate"));
        for mut enc in [
            Box::new(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::best(),
            )) as Box<dyn WriteFinish>,
            Box::new(flate2::write::DeflateEncoder::new(
                Vec::new(),
                flate2::Compression::best(),
            )),
        ] {
            enc.write_all(b"{\"TableName\":\"t\"}").expect("write");
            let body = decode_body(&h, Bytes::from(enc.done())).expect("deflated");
            assert_eq!(&body[..], b"{\"TableName\":\"t\"}");
        }
        h.insert("content-encoding", HeaderValue::from_static("br"));
        assert_eq!(
            decode_body(&h, Bytes::from_static(b"{}"))
                .expect_err("unsupported")
                .code(),
            "SerializationException"
        );
    }

    trait WriteFinish: Write {
        fn done(self: Box<Self>) -> Vec<u8>;
    }
    impl WriteFinish for flate2::write::ZlibEncoder<Vec<u8>> {
        fn done(self: Box<Self>) -> Vec<u8> {
            self.finish().expect("zlib")
        }
    }
    impl WriteFinish for flate2::write::DeflateEncoder<Vec<u8>> {
        fn done(self: Box<Self>) -> Vec<u8> {
            self.finish().expect("deflate")
        }
    }
}

//! The S3 listener: s3s's service behind what it leaves to its user.
//!
//! - CORS: a preflight (`OPTIONS`) is answered from the bucket's rules,
//!   a refusal being S3's 403 `AccessForbidden`; an actual request with an
//!   `Origin` gets the matching rule's headers on its answer (errors
//!   included, as S3 does);
//! - presigned URLs valid longer than 7 days are refused as S3 refuses
//!   them (s3s checks the expiry, not its upper bound);
//! - any access key signs with [`super::LOCAL_SECRET_ACCESS_KEY`].

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};

use super::api::Api;
use super::{S3, cors};

/// Any access key id, one secret (see the module docs of [`super`]).
struct LocalAuth;

#[async_trait::async_trait]
impl s3s::auth::S3Auth for LocalAuth {
    async fn get_secret_key(&self, _access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        Ok(s3s::auth::SecretKey::from(super::LOCAL_SECRET_ACCESS_KEY))
    }
}

#[cfg(test)]
mod tests {
    use super::policy_condition;

    #[test]
    fn policy_failures_are_worded_as_s3_words_them() {
        assert_eq!(
            policy_condition(
                "Policy condition 'starts-with' for field 'key' failed: expected prefix 'uploads/', got 'x'"
            )
            .as_deref(),
            Some(r#"["starts-with", "$key", "uploads/"]"#)
        );
        assert_eq!(
            policy_condition(
                "Policy condition 'eq' for field 'content-type' failed: expected 'image/png', got 'text/html'"
            )
            .as_deref(),
            Some(r#"["eq", "$content-type", "image/png"]"#)
        );
        assert!(policy_condition("something else").is_none());
    }
}

/// `<bucket>.localhost[:port]` is virtual-host style; any other host
/// (`127.0.0.1:4004`, `localhost:4004`) path style.
struct LocalHosts;

impl s3s::host::S3Host for LocalHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            _ => host,
        };
        Ok(match name.strip_suffix(".localhost") {
            Some(bucket) if !bucket.is_empty() => {
                s3s::host::VirtualHost::new(host).with_bucket(bucket)
            }
            _ => s3s::host::VirtualHost::new(host),
        })
    }
}

#[derive(Clone)]
struct Endpoint {
    s3: Arc<S3>,
    service: s3s::service::S3Service,
}

/// The S3 endpoint's router (its own listener: `[ports] s3`).
pub fn router(s3: Arc<S3>) -> Router {
    let mut builder = s3s::service::S3ServiceBuilder::new(Api { s3: s3.clone() });
    builder.set_auth(LocalAuth);
    builder.set_host(LocalHosts);
    let endpoint = Endpoint {
        s3,
        service: builder.build(),
    };
    Router::new()
        .fallback(serve)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(endpoint)
}

/// S3's XML error document.
pub fn error_xml(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_uppercase();
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>",
        escape(code),
        escape(message)
    );
    for (k, v) in extra {
        body.push_str(&format!("<{k}>{}</{k}>", escape(v)));
    }
    body.push_str(&format!(
        "<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    ));
    (
        status,
        [
            ("content-type", "application/xml".to_owned()),
            ("x-amz-request-id", request_id),
        ],
        body,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The bucket a request addresses: `<bucket>.localhost` (virtual host), or
/// the first path segment (path style).
fn bucket_of(headers: &HeaderMap, path: &str) -> Option<String> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if let Some(bucket) = host.strip_suffix(".localhost")
        && !bucket.is_empty()
    {
        return Some(bucket.to_owned());
    }
    let first = path.trim_start_matches('/').split('/').next()?;
    if first.is_empty() {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(first)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn serve(
    axum::extract::State(endpoint): axum::extract::State<Endpoint>,
    request: axum::extract::Request,
) -> Response {
    let bucket = bucket_of(request.headers(), request.uri().path());
    if request.method() == Method::OPTIONS {
        return preflight(&endpoint.s3, bucket.as_deref(), request.headers());
    }
    if let Some(expires) = request
        .uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "X-Amz-Expires")
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|v| v.parse::<u64>().ok())
        && expires > super::MAX_PRESIGNED_EXPIRES_SECONDS
    {
        return error_xml(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            &[],
        );
    }
    let origin = header(request.headers(), "origin").map(str::to_owned);
    let method = request.method().as_str().to_owned();
    let form_post = request.method() == Method::POST
        && header(request.headers(), "content-type")
            .is_some_and(|t| t.starts_with("multipart/form-data"));
    let request = request.map(s3s::Body::http_body_unsync);
    let mut response = match endpoint.service.call(request).await {
        Ok(r) => r.map(Body::new),
        Err(e) => {
            tracing::error!(target: "s3", "request failed: {e:?}");
            return error_xml(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
                &[],
            );
        }
    };
    if response.status().as_u16() >= 400 && method != "HEAD" {
        response = complete_error(response, form_post).await;
    }
    if let (Some(origin), Some(bucket)) = (origin, bucket)
        && let Some(rules) = endpoint.s3.cors_of(&bucket)
        && let Some(rule) = cors::find(&rules, &origin, &method, &[])
    {
        response
            .headers_mut()
            .extend(cors::response_headers(rule, &origin, None));
    }
    response
}

/// S3's message for codes s3s answers without one.
fn default_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied" => "Access Denied",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "MalformedXML" => {
            "The XML you provided was not well-formed or did not validate against our published schema"
        }
        "NotImplemented" => "A header you provided implies functionality that is not implemented",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "InvalidArgument" => "Invalid Argument",
        _ => return None,
    })
}

fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A failed POST policy condition as S3 words it: 403 `AccessDenied`,
/// "Invalid according to Policy: Policy Condition failed: [...]" (s3s
/// answers 400 `InvalidPolicyDocument` with its own text).
fn policy_condition(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Policy condition '")?;
    let (op, rest) = rest.split_once("' for field '")?;
    let (field, rest) = rest.split_once("' failed: expected ")?;
    let value = rest.strip_prefix("prefix ").unwrap_or(rest);
    let value = value.strip_prefix('\'')?;
    let (value, _) = value.split_once("', got '")?;
    // S3 writes the condition as JSON with a space after each comma.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    Some(format!(
        "[{}, {}, {}]",
        quote(op),
        quote(&format!("${field}")),
        quote(value)
    ))
}

/// Completes an error answer of s3s: S3's message where s3s has none, a
/// request id, and POST policy failures in S3's words.
async fn complete_error(response: Response, form_post: bool) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return error_xml(
            parts.status,
            "InternalError",
            "We encountered an internal error. Please try again.",
            &[],
        );
    };
    let text = String::from_utf8_lossy(&bytes);
    let Some(code) = element(&text, "Code").map(unescape) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let message = element(&text, "Message").map(unescape).unwrap_or_default();
    let (status, code, message) = if form_post && code == "InvalidPolicyDocument" {
        match policy_condition(&message) {
            Some(condition) => (
                StatusCode::FORBIDDEN,
                "AccessDenied".to_owned(),
                format!("Invalid according to Policy: Policy Condition failed: {condition}"),
            ),
            None => (parts.status, code, message),
        }
    } else if form_post && code == "AccessDenied" && message == "Request has expired" {
        (
            StatusCode::FORBIDDEN,
            code,
            "Invalid according to Policy: Policy expired.".to_owned(),
        )
    } else if message.is_empty() {
        let m = default_message(&code).unwrap_or_default().to_owned();
        (parts.status, code, m)
    } else {
        (parts.status, code, message)
    };
    let mut answer = error_xml(status, &code, &message, &[]);
    for (name, value) in &parts.headers {
        if name != "content-length" && name != "content-type" {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// A CORS preflight, answered from the bucket's rules.
fn preflight(s3: &S3, bucket: Option<&str>, headers: &HeaderMap) -> Response {
    let Some(origin) = header(headers, "origin") else {
        return error_xml(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
            &[],
        );
    };
    let Some(method) = header(headers, "access-control-request-method") else {
        return error_xml(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid Access-Control-Request-Method: null",
            &[],
        );
    };
    let resource = if bucket.is_some() { "OBJECT" } else { "BUCKET" };
    let extra = [("Method", method), ("ResourceType", resource)];
    let Some(bucket) = bucket else {
        return error_xml(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            cors::MESSAGE_NOT_ENABLED,
            &extra,
        );
    };
    if s3.store.bucket(bucket).ok().flatten().is_none() {
        return error_xml(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &[("BucketName", bucket)],
        );
    }
    let Some(rules) = s3.cors_of(bucket) else {
        return error_xml(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            cors::MESSAGE_NOT_ENABLED,
            &extra,
        );
    };
    let requested = cors::requested_headers(headers);
    match cors::find(&rules, origin, method, &requested) {
        Some(rule) => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().extend(cors::response_headers(
                rule,
                origin,
                Some((method, &requested)),
            ));
            response
        }
        None => error_xml(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            cors::MESSAGE_NOT_ALLOWED,
            &extra,
        ),
    }
}

//! The Lambda proxy integration input (payload format 1.0), built with
//! `aws_lambda_events`' `ApiGatewayProxyRequest` and then adjusted where
//! the type cannot say what API Gateway sends: header names keep their
//! spelling, and absent collections are `null`, not `{}`.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format>

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyRequestContext};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};

/// Facts about the request that are not in its headers.
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    /// The path as sent, after the stage, still percent-encoded.
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub local_port: u16,
    pub request_id: &'a str,
    pub extended_request_id: &'a str,
    pub trace_id: &'a str,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// Facts about the API and the matched resource.
pub struct ApiFacts<'a> {
    pub api_id: &'a str,
    pub account_id: &'a str,
    pub stage: &'a str,
    pub deployment_id: &'a str,
    pub resource_path: String,
    pub resource_id: String,
    pub path_params: &'a [(String, String)],
    pub stage_variables: &'a std::collections::BTreeMap<String, String>,
    pub binary_media_types: &'a [String],
}

pub fn build(req: &RequestFacts<'_>, api: &ApiFacts<'_>) -> Value {
    let headers = header_pairs(req);
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let user_agent = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.clone());
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    let (body, is_base64) = if req.body.is_empty() {
        (None, false)
    } else if content_type.is_some_and(|ct| is_binary(ct, api.binary_media_types)) {
        (Some(BASE64.encode(req.body)), true)
    } else {
        (Some(String::from_utf8_lossy(req.body).into_owned()), false)
    };

    let mut context = ApiGatewayProxyRequestContext::default();
    context.account_id = Some(api.account_id.to_owned());
    context.resource_id = Some(api.resource_id.clone());
    context.stage = Some(api.stage.to_owned());
    context.domain_name = host.clone();
    context.domain_prefix = Some(api.api_id.to_owned());
    context.request_id = Some(req.request_id.to_owned());
    context.protocol = Some("HTTP/1.1".to_owned());
    context.identity.source_ip = Some(req.source_ip.clone());
    context.identity.user_agent = user_agent;
    context.resource_path = Some(api.resource_path.clone());
    context.path = Some(format!("/{}{}", api.stage, req.path));
    context.http_method = req.method.clone();
    context.request_time = Some(req.time.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    context.request_time_epoch = req.time.timestamp_millis();
    context.apiid = Some(api.api_id.to_owned());

    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(api.resource_path.clone());
    event.path = Some(req.path.to_owned());
    event.http_method = req.method.clone();
    event.request_context = context;
    event.body = body;
    event.is_base64_encoded = is_base64;

    let mut value = serde_json::to_value(&event).unwrap_or_else(|_| json!({}));
    let Some(obj) = value.as_object_mut() else {
        return value;
    };

    // Header names as the client spelled them (lower-cased by HTTP/1 parsing
    // here, so written in the canonical Title-Case most clients send).
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, v) in &headers {
        single.insert(name.clone(), Value::String(v.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(list)) => list.push(Value::String(v.clone())),
            _ => {
                multi.insert(name.clone(), json!([v]));
            }
        }
    }
    obj.insert("headers".into(), Value::Object(single));
    obj.insert("multiValueHeaders".into(), Value::Object(multi));

    let query = parse_query(req.raw_query.unwrap_or(""));
    if query.is_empty() {
        obj.insert("queryStringParameters".into(), Value::Null);
        obj.insert("multiValueQueryStringParameters".into(), Value::Null);
    } else {
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (k, v) in query {
            single.insert(k.clone(), Value::String(v.clone()));
            match multi.get_mut(&k) {
                Some(Value::Array(list)) => list.push(Value::String(v)),
                _ => {
                    multi.insert(k, json!([v]));
                }
            }
        }
        obj.insert("queryStringParameters".into(), Value::Object(single));
        obj.insert(
            "multiValueQueryStringParameters".into(),
            Value::Object(multi),
        );
    }
    obj.insert(
        "pathParameters".into(),
        if api.path_params.is_empty() {
            Value::Null
        } else {
            Value::Object(
                api.path_params
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        },
    );
    obj.insert(
        "stageVariables".into(),
        if api.stage_variables.is_empty() {
            Value::Null
        } else {
            Value::Object(
                api.stage_variables
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        },
    );
    if let Some(Value::Object(ctx)) = obj.get_mut("requestContext") {
        ctx.insert(
            "extendedRequestId".into(),
            Value::String(req.extended_request_id.to_owned()),
        );
        ctx.insert(
            "deploymentId".into(),
            Value::String(api.deployment_id.to_owned()),
        );
        if let Some(Value::Object(identity)) = ctx.get_mut("identity") {
            identity.insert("principalOrgId".into(), Value::Null);
        }
    }
    value
}

/// Request headers in order, with the ones API Gateway adds at the edge.
fn header_pairs(req: &RequestFacts<'_>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                title_case(k.as_str()),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut add = |name: &str, value: String| {
        if !pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            pairs.push((name.to_owned(), value));
        }
    };
    add("X-Amzn-Trace-Id", req.trace_id.to_owned());
    add("X-Forwarded-For", req.source_ip.clone());
    add("X-Forwarded-Port", req.local_port.to_string());
    add("X-Forwarded-Proto", "http".to_owned());
    pairs
}

/// `content-type` → `Content-Type`.
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

/// Query parameters in order, decoded as API Gateway decodes them (`+` is a
/// space); a key without `=` has the empty value.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a media type is one of the API's binary media types
/// (`image/png`, `image/*`, `*/*`).
pub fn is_binary(media_type: &str, binary_media_types: &[String]) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    binary_media_types.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        if pattern == "*/*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(top) => essence.split('/').next() == Some(top),
            None => essence == pattern,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_keep_all_values_in_order() {
        let q = parse_query("price=10&price=20&price=30&email=test+alias%40gmail.com&flag");
        assert_eq!(q[2], ("price".to_owned(), "30".to_owned()));
        assert_eq!(q[3].1, "test alias@gmail.com");
        assert_eq!(q[4], ("flag".to_owned(), String::new()));
    }

    #[test]
    fn title_case_header_names() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("x-amz-date"), "X-Amz-Date");
    }

    #[test]
    fn binary_media_type_patterns() {
        let types = vec!["image/*".to_owned(), "application/octet-stream".to_owned()];
        assert!(is_binary("image/png", &types));
        assert!(is_binary("application/octet-stream; charset=x", &types));
        assert!(!is_binary("application/json", &types));
        assert!(is_binary("text/plain", &["*/*".to_owned()]));
    }
}

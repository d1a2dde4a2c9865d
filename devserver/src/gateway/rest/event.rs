//! The Lambda proxy integration input (payload format 1.0), written
//! straight to JSON bytes: the gateway builds one per request, and going
//! through `serde_json::Value` cost an allocation per field (issue #2).
//! The bytes are those of `aws_lambda_events`' `ApiGatewayProxyRequest`,
//! adjusted where the type cannot say what API Gateway sends: header names
//! keep their spelling, and absent collections are `null`, not `{}`. A unit
//! test holds them to the typed event, field for field and byte for byte.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format>

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, Method};

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

/// The event as JSON. Keys are in `serde_json`'s order (sorted), as the
/// typed event serialised through a `Value` had them.
pub fn build(req: &RequestFacts<'_>, api: &ApiFacts<'_>) -> Vec<u8> {
    let mut headers = header_pairs(req);
    let host = header(&headers, "host");
    let user_agent = header(&headers, "user-agent");
    let content_type = header(&headers, "content-type");
    let (body, is_base64) = if req.body.is_empty() {
        (None, false)
    } else if content_type.is_some_and(|ct| is_binary(&ct, api.binary_media_types)) {
        (Some(Cow::Owned(BASE64.encode(req.body))), true)
    } else {
        (Some(String::from_utf8_lossy(req.body)), false)
    };
    // Maps are written in key order; a stable sort keeps repeated keys'
    // values in the order they came.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut query = parse_query(req.raw_query.unwrap_or(""));
    query.sort_by(|a, b| a.0.cmp(&b.0));
    let mut path_params: Vec<(&str, &str)> = api
        .path_params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    path_params.sort_by(|a, b| a.0.cmp(b.0));

    let mut out = Json(Vec::with_capacity(
        1536 + req.body.len() * 4 / 3 + req.headers.len() * 96,
    ));
    out.raw(r#"{"body":"#);
    out.opt(body.as_deref());
    out.raw(r#","headers":"#);
    out.last_of_each(&headers);
    out.raw(r#","httpMethod":"#);
    out.str(req.method.as_str());
    out.raw(if is_base64 {
        r#","isBase64Encoded":true,"multiValueHeaders":"#
    } else {
        r#","isBase64Encoded":false,"multiValueHeaders":"#
    });
    out.all_of_each(&headers);
    out.raw(r#","multiValueQueryStringParameters":"#);
    if query.is_empty() {
        out.raw("null");
    } else {
        out.all_of_each(&query);
    }
    out.raw(r#","path":"#);
    out.str(req.path);
    out.raw(r#","pathParameters":"#);
    if path_params.is_empty() {
        out.raw("null");
    } else {
        out.last_of_each(&path_params);
    }
    out.raw(r#","queryStringParameters":"#);
    if query.is_empty() {
        out.raw("null");
    } else {
        out.last_of_each(&query);
    }

    out.raw(r#","requestContext":{"accountId":"#);
    out.str(api.account_id);
    out.raw(r#","apiId":"#);
    out.str(api.api_id);
    out.raw(r#","deploymentId":"#);
    out.str(api.deployment_id);
    out.raw(r#","domainName":"#);
    out.opt(host.as_deref());
    out.raw(r#","domainPrefix":"#);
    out.str(api.api_id);
    out.raw(r#","extendedRequestId":"#);
    out.str(req.extended_request_id);
    out.raw(r#","httpMethod":"#);
    out.str(req.method.as_str());
    out.raw(concat!(
        r#","identity":{"accessKey":null,"accountId":null,"apiKey":null,"apiKeyId":null,"#,
        r#""caller":null,"cognitoAuthenticationProvider":null,"cognitoAuthenticationType":null,"#,
        r#""cognitoIdentityId":null,"cognitoIdentityPoolId":null,"principalOrgId":null,"sourceIp":"#
    ));
    out.str(&req.source_ip);
    out.raw(r#","user":null,"userAgent":"#);
    out.opt(user_agent.as_deref());
    out.raw(r#","userArn":null},"path":"/"#);
    // `/{stage}{path}`: neither needs escaping beyond what `str` does, but
    // they are one JSON string.
    out.str_body(api.stage);
    out.str_body(req.path);
    out.raw(r#"","protocol":"HTTP/1.1","requestId":"#);
    out.str(req.request_id);
    out.raw(r#","requestTime":"#);
    out.str(&req.time.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    out.raw(r#","requestTimeEpoch":"#);
    out.raw(&req.time.timestamp_millis().to_string());
    out.raw(r#","resourceId":"#);
    out.str(&api.resource_id);
    out.raw(r#","resourcePath":"#);
    out.str(&api.resource_path);
    out.raw(r#","stage":"#);
    out.str(api.stage);
    out.raw(r#"},"resource":"#);
    out.str(&api.resource_path);
    out.raw(r#","stageVariables":"#);
    if api.stage_variables.is_empty() {
        out.raw("null");
    } else {
        let vars: Vec<(&str, &str)> = api
            .stage_variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        out.last_of_each(&vars);
    }
    out.raw("}");
    out.0
}

fn header<'a>(headers: &[(String, Cow<'a, str>)], name: &str) -> Option<Cow<'a, str>> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// A JSON text being written; strings are escaped as `serde_json` escapes
/// them.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn str(&mut self, s: &str) {
        self.0.push(b'"');
        self.str_body(s);
        self.0.push(b'"');
    }

    /// The inside of a JSON string, without its quotes.
    fn str_body(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.0.extend_from_slice(&bytes[start..i]);
                    self.0.extend_from_slice(b"\\u00");
                    self.0.push(HEX[usize::from(b >> 4)]);
                    self.0.push(HEX[usize::from(b & 0xf)]);
                    start = i + 1;
                    continue;
                }
                _ => continue,
            };
            self.0.extend_from_slice(&bytes[start..i]);
            self.0.extend_from_slice(escape);
            start = i + 1;
        }
        self.0.extend_from_slice(&bytes[start..]);
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    /// `{"k":"v",..}` from pairs sorted by key; a repeated key has its last
    /// value, as inserting into a map would leave it.
    fn last_of_each<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: &[(K, V)]) {
        self.0.push(b'{');
        let mut first = true;
        for (i, (k, v)) in pairs.iter().enumerate() {
            if pairs
                .get(i + 1)
                .is_some_and(|(next, _)| next.as_ref() == k.as_ref())
            {
                continue;
            }
            if !first {
                self.0.push(b',');
            }
            first = false;
            self.str(k.as_ref());
            self.0.push(b':');
            self.str(v.as_ref());
        }
        self.0.push(b'}');
    }

    /// `{"k":["v1","v2"],..}` from pairs sorted by key.
    fn all_of_each<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: &[(K, V)]) {
        self.0.push(b'{');
        let mut previous: Option<&str> = None;
        for (k, v) in pairs {
            let k = k.as_ref();
            if previous == Some(k) {
                self.0.push(b',');
            } else {
                if previous.is_some() {
                    self.0.extend_from_slice(b"],");
                }
                self.str(k);
                self.0.extend_from_slice(b":[");
                previous = Some(k);
            }
            self.str(v.as_ref());
        }
        if previous.is_some() {
            self.0.push(b']');
        }
        self.0.push(b'}');
    }
}

/// Request headers in order, with the ones API Gateway adds at the edge;
/// names as the client spelled them (lower-cased by HTTP/1 parsing here, so
/// written in the canonical Title-Case most clients send).
fn header_pairs<'a>(req: &'a RequestFacts<'_>) -> Vec<(String, Cow<'a, str>)> {
    let mut pairs: Vec<(String, Cow<'a, str>)> = Vec::with_capacity(req.headers.len() + 4);
    pairs.extend(req.headers.iter().map(|(k, v)| {
        (
            title_case(k.as_str()),
            String::from_utf8_lossy(v.as_bytes()),
        )
    }));
    let mut add = |name: &str, value: Cow<'a, str>| {
        if !pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            pairs.push((name.to_owned(), value));
        }
    };
    add("X-Amzn-Trace-Id", Cow::Borrowed(req.trace_id));
    add("X-Forwarded-For", Cow::Borrowed(&req.source_ip));
    add("X-Forwarded-Port", Cow::Owned(req.local_port.to_string()));
    add("X-Forwarded-Proto", Cow::Borrowed("http"));
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

    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyRequestContext};
    use serde_json::Value;

    use crate::gateway::websocket::event::value_maps;

    /// The event as it was built before it was written straight to bytes:
    /// the typed event through a `Value`, adjusted. The reference model for
    /// [`build`].
    fn typed_reference(req: &RequestFacts<'_>, api: &ApiFacts<'_>) -> Value {
        let headers: Vec<(String, String)> = header_pairs(req)
            .into_iter()
            .map(|(k, v)| (k, v.into_owned()))
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let host = find("host");
        let user_agent = find("user-agent");
        let content_type = find("content-type");
        let (body, is_base64) = if req.body.is_empty() {
            (None, false)
        } else if content_type.is_some_and(|ct| is_binary(&ct, api.binary_media_types)) {
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

        let mut value = serde_json::to_value(&event).expect("serialisable");
        let obj = value.as_object_mut().expect("an object");
        let (single, multi) = value_maps(&headers);
        obj.insert("headers".into(), single);
        obj.insert("multiValueHeaders".into(), multi);
        let query = parse_query(req.raw_query.unwrap_or(""));
        let (single, multi) = if query.is_empty() {
            (Value::Null, Value::Null)
        } else {
            value_maps(&query)
        };
        obj.insert("queryStringParameters".into(), single);
        obj.insert("multiValueQueryStringParameters".into(), multi);
        let map_or_null = |pairs: Vec<(String, String)>| {
            if pairs.is_empty() {
                Value::Null
            } else {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            }
        };
        obj.insert(
            "pathParameters".into(),
            map_or_null(api.path_params.to_vec()),
        );
        obj.insert(
            "stageVariables".into(),
            map_or_null(
                api.stage_variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        );
        let ctx = obj
            .get_mut("requestContext")
            .and_then(Value::as_object_mut)
            .expect("requestContext");
        ctx.insert(
            "extendedRequestId".into(),
            Value::String(req.extended_request_id.to_owned()),
        );
        ctx.insert(
            "deploymentId".into(),
            Value::String(api.deployment_id.to_owned()),
        );
        let identity = ctx
            .get_mut("identity")
            .and_then(Value::as_object_mut)
            .expect("identity");
        identity.insert("principalOrgId".into(), Value::Null);
        value
    }

    struct Case {
        method: Method,
        path: &'static str,
        query: Option<&'static str>,
        headers: Vec<(&'static str, &'static [u8])>,
        body: &'static [u8],
        path_params: Vec<(String, String)>,
        stage_variables: Vec<(&'static str, &'static str)>,
    }

    fn check(case: &Case) {
        let mut headers = HeaderMap::new();
        for (name, value) in &case.headers {
            headers.append(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        let stage_variables = case
            .stage_variables
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let binary = vec!["image/*".to_owned()];
        let req = RequestFacts {
            method: &case.method,
            path: case.path,
            raw_query: case.query,
            headers: &headers,
            body: case.body,
            source_ip: "127.0.0.1".to_owned(),
            local_port: 4000,
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            extended_request_id: "abcdefghijklmno=",
            trace_id: "Root=1-5f0c1a2b-0123456789abcdef01234567",
            time: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).expect("time"),
        };
        let api = ApiFacts {
            api_id: "abc123defg",
            account_id: "000000000000",
            stage: "local",
            deployment_id: "d3pl0y",
            resource_path: "/items/{id}".to_owned(),
            resource_id: "r3s0ur".to_owned(),
            path_params: &case.path_params,
            stage_variables: &stage_variables,
            binary_media_types: &binary,
        };
        let bytes = build(&req, &api);
        let expected = serde_json::to_vec(&typed_reference(&req, &api)).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected),
            "the event differs from the typed one"
        );
        // And the real crates read it.
        let typed: ApiGatewayProxyRequest = serde_json::from_slice(&bytes).expect("typed event");
        assert_eq!(typed.http_method, case.method);
        let _: lambda_http::request::LambdaRequest =
            serde_json::from_slice(&bytes).expect("lambda_http request");
    }

    #[test]
    fn bytes_match_the_typed_event_without_headers_query_or_body() {
        check(&Case {
            method: Method::GET,
            path: "/",
            query: None,
            headers: vec![],
            body: b"",
            path_params: vec![],
            stage_variables: vec![],
        });
    }

    #[test]
    fn bytes_match_the_typed_event_with_repeated_and_escaped_values() {
        check(&Case {
            method: Method::POST,
            path: "/items/caf%C3%A9/\"q\"",
            query: Some("b=2&a=1&b=3&e=%22x%5C%0A%01%7F&flag&emoji=%F0%9F%90%88&=v"),
            headers: vec![
                ("host", b"api.example.com"),
                ("user-agent", b"curl/8 \"quoted\" \\ back"),
                ("x-multi", b"one"),
                ("accept", b"*/*"),
                ("x-multi", b"two"),
                ("x-forwarded-for", b"10.0.0.1"),
                ("x-latin", b"caf\xe9 \t tab"),
                ("content-type", b"text/plain; charset=utf-8"),
            ],
            body: "line\nnext \u{1} \u{2028} é \"\\".as_bytes(),
            path_params: vec![
                ("id".to_owned(), "caf%C3%A9".to_owned()),
                ("alpha".to_owned(), "1".to_owned()),
            ],
            stage_variables: vec![("zeta", "z\""), ("alpha", "a")],
        });
    }

    #[test]
    fn bytes_match_the_typed_event_for_binary_and_invalid_utf8_bodies() {
        check(&Case {
            method: Method::PUT,
            path: "/upload",
            query: Some("x=1"),
            headers: vec![("content-type", b"image/png")],
            body: b"\x89PNG\r\n\x1a\n\0\xff",
            path_params: vec![],
            stage_variables: vec![],
        });
        check(&Case {
            method: Method::DELETE,
            path: "/upload",
            query: Some(""),
            headers: vec![("content-type", b"application/json")],
            body: b"{\"bad\":\"\xff\xfe\"}",
            path_params: vec![],
            stage_variables: vec![],
        });
    }

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

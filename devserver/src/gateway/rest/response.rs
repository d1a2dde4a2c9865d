//! The Lambda proxy integration output, checked as strictly as API Gateway
//! checks it: anything but `{statusCode, headers, multiValueHeaders, body,
//! isBase64Encoded}` with the right types is a malformed response (502).
//! Recorded AWS behaviour: LocalStack's snapshot
//! `test_aws_proxy_response_payload_format_validation`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

#[derive(Debug, PartialEq)]
pub struct ProxyResponse {
    pub status: u16,
    /// Merged headers in output order: `multiValueHeaders` values first,
    /// then `headers`, names compared case-insensitively.
    pub headers: Vec<(String, Vec<String>)>,
    pub body: Vec<u8>,
}

const KEYS: &[&str] = &[
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// Parses a function's result. `decode_binary` says whether a base64 body
/// may be decoded (the request's `Accept` matched a binary media type).
pub fn parse(payload: &[u8], decode_binary: bool) -> Result<ProxyResponse, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("response is not a JSON object".to_owned());
    };
    if obj.is_empty() {
        return Err("response is an empty object".to_owned());
    }
    if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unexpected key `{key}` in the response"));
    }
    let status = match obj.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("statusCode {n} is not an integer"))?,
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map_err(|_| format!("statusCode `{s}` is not a number"))?,
        Some(other) => return Err(format!("statusCode {other} is not a number")),
    };
    if !(100..=599).contains(&status) {
        return Err(format!("statusCode {status} is not an HTTP status"));
    }

    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    let mut push = |name: &str, value: String| match headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some((_, values)) => values.push(value),
        None => headers.push((name.to_owned(), vec![value])),
    };
    match obj.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, values) in m {
                match values {
                    Value::Array(list) => {
                        for v in list {
                            push(
                                name,
                                scalar(v).ok_or_else(|| {
                                    format!("multiValueHeaders.{name} holds a non-scalar value")
                                })?,
                            );
                        }
                    }
                    Value::Null => {}
                    _ => return Err(format!("multiValueHeaders.{name} is not a list")),
                }
            }
        }
        Some(_) => return Err("multiValueHeaders is not an object".to_owned()),
    }
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, v) in m {
                if v.is_null() {
                    continue;
                }
                push(
                    name,
                    scalar(v).ok_or_else(|| format!("headers.{name} is not a scalar value"))?,
                );
            }
        }
        Some(_) => return Err("headers is not an object".to_owned()),
    }

    let is_base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isBase64Encoded is not a boolean".to_owned()),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if is_base64 && decode_binary => BASE64
            .decode(s)
            .map_err(|e| format!("body is not valid base64: {e}"))?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err("body is not a string".to_owned()),
    };
    Ok(ProxyResponse {
        status: status as u16,
        headers,
        body,
    })
}

/// Header values may be strings, numbers or booleans (sent as written).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> ProxyResponse {
        parse(json.as_bytes(), false).expect("well-formed")
    }

    #[test]
    fn status_only_gives_empty_body() {
        let r = ok(r#"{"statusCode":200}"#);
        assert_eq!((r.status, r.body.len()), (200, 0));
    }

    #[test]
    fn missing_status_is_200_and_numeric_string_status_is_accepted() {
        assert_eq!(ok(r#"{"headers":{"a":"b"}}"#).status, 200);
        assert_eq!(ok(r#"{"statusCode":"201"}"#).status, 201);
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        for bad in [
            r#"{}"#,
            r#""justAString""#,
            r#"{"statusCode":"test"}"#,
            r#"{"statusCode":200,"wrongValue":"value"}"#,
            r#"{"statusCode":200,"body":{"a":1}}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"a":"b"}}"#,
            r#"not json"#,
        ] {
            assert!(
                parse(bad.as_bytes(), false).is_err(),
                "{bad} should be malformed"
            );
        }
    }

    #[test]
    fn multi_value_headers_come_first_and_merge_case_insensitively() {
        let r = ok(r#"{"statusCode":200,
            "headers":{"test-multi":"value-solo","flag":true},
            "multiValueHeaders":{"tesT-Multi":["value-multi"]}}"#);
        assert_eq!(
            r.headers,
            vec![
                (
                    "tesT-Multi".to_owned(),
                    vec!["value-multi".to_owned(), "value-solo".to_owned()]
                ),
                ("flag".to_owned(), vec!["true".to_owned()]),
            ]
        );
    }

    #[test]
    fn base64_body_is_decoded_only_for_binary_requests() {
        let json = r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#;
        assert_eq!(parse(json.as_bytes(), false).expect("ok").body, b"aGk=");
        assert_eq!(parse(json.as_bytes(), true).expect("ok").body, b"hi");
    }
}

//! Checks in front of the engine. A request reaches dynoxide only once it is
//! known to be within DynamoDB's limits, because some requests outside them
//! (a value nested thousands of levels deep, an expression of thousands of
//! parentheses) recurse deeper than a thread's stack and abort the process,
//! which no `catch_unwind` can stop.
//!
//! Limits: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>
//!
//! Invariant: every walk here is iterative, so a hostile body costs heap
//! bounded by its size, never stack.

use serde_json::Value;

use super::wire::ApiError;

/// The largest request body DynamoDB reads (a full BatchWriteItem).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// DynamoDB's limit on any one expression string.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// Nesting of documents: a leaf may sit inside 31 maps or lists; 32 is
/// refused. The engine words the refusal for each position itself, so the
/// guard lets a value one level past the limit through (the engine refuses
/// it with DynamoDB's positional message) and stops anything deeper.
pub const MAX_DOCUMENT_NESTING: usize = 32;

/// JSON nesting no valid request reaches: a value at the deepest level
/// DynamoDB accepts takes two JSON levels per document level, inside at most
/// six levels of request structure (TransactItems, Put, Item, ...).
const MAX_JSON_DEPTH: usize = 2 * (MAX_DOCUMENT_NESTING + 1) + 12;

/// Parentheses an expression may open inside one another. DynamoDB bounds
/// expressions by length (4 KB) and operator count (300); no expression
/// within those needs more than this, and the engine's recursive-descent
/// parser must not be handed thousands of levels.
const MAX_EXPRESSION_NESTING: usize = 300;

/// DynamoDB's wording for a document nested past its limit.
pub const NESTING_MESSAGE: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

/// Parses a request body within DynamoDB's limits, or says which it breaks.
pub fn parse_request(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::request_too_large(MAX_REQUEST_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        // DynamoDB requires a JSON body for every operation.
        return Err(ApiError::serialization(None));
    }
    if json_depth(body) > MAX_JSON_DEPTH {
        return Err(ApiError::validation(NESTING_MESSAGE));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::serialization(None))?;
    if !value.is_object() {
        return Err(ApiError::serialization(None));
    }
    check_values(&value)?;
    Ok(value)
}

/// How deep `[` and `{` nest in a JSON text, strings skipped. Malformed text
/// gets some number; the parser reports it afterwards.
fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Walks the request once: attribute values nested too deep, expressions too
/// long or too deeply parenthesised.
fn check_values(root: &Value) -> Result<(), ApiError> {
    // (value, the key it sits under, document nesting so far)
    let mut stack: Vec<(&Value, Option<&str>, usize)> = vec![(root, None, 0)];
    while let Some((value, key, nesting)) = stack.pop() {
        match value {
            Value::Object(map) => {
                // An attribute value is a one-member object naming its type;
                // `M` and `L` open a level of the document.
                let opens_level = map.len() == 1
                    && matches!(
                        map.iter().next(),
                        Some((k, Value::Object(_))) if k == "M"
                    )
                    || map.len() == 1
                        && matches!(map.iter().next(), Some((k, Value::Array(_))) if k == "L");
                let nesting = nesting + usize::from(opens_level);
                if nesting > MAX_DOCUMENT_NESTING + 1 {
                    return Err(ApiError::validation(NESTING_MESSAGE));
                }
                for (k, v) in map {
                    stack.push((v, Some(k.as_str()), nesting));
                }
            }
            Value::Array(items) => {
                for v in items {
                    stack.push((v, key, nesting));
                }
            }
            Value::String(text) => {
                if let Some(key) = key.filter(|k| is_expression_field(k)) {
                    check_expression(key, text)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_expression_field(key: &str) -> bool {
    matches!(
        key,
        "ConditionExpression"
            | "UpdateExpression"
            | "KeyConditionExpression"
            | "FilterExpression"
            | "ProjectionExpression"
            | "Statement"
    )
}

fn check_expression(field: &str, text: &str) -> Result<(), ApiError> {
    // PartiQL statements have their own, larger limit (8 KB) which the engine
    // checks; only their nesting is bounded here.
    if field != "Statement" && text.len() > MAX_EXPRESSION_BYTES {
        return Err(ApiError::validation(format!(
            "Invalid {field}: Expression size has exceeded the maximum allowed size; expression size: {}",
            text.len()
        )));
    }
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_EXPRESSION_NESTING {
        return Err(ApiError::validation(format!(
            "Invalid {field}: The expression has too many nested levels; \
             nesting depth: {max}, limit: {MAX_EXPRESSION_NESTING}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_item(levels: usize) -> String {
        let mut v = r#"{"S":"leaf"}"#.to_owned();
        for _ in 0..levels {
            v = format!(r#"{{"M":{{"a":{v}}}}}"#);
        }
        format!(r#"{{"TableName":"t","Item":{{"pk":{{"S":"1"}},"doc":{v}}}}}"#)
    }

    #[test]
    fn values_within_the_limit_pass() {
        parse_request(nested_item(31).as_bytes()).expect("31 levels are allowed");
        // One past the limit goes to the engine for its positional message.
        parse_request(nested_item(32).as_bytes()).expect("left to the engine");
    }

    #[test]
    fn values_far_past_the_limit_are_refused_with_dynamodbs_message() {
        for levels in [34, 40, 200, 50_000] {
            let err = parse_request(nested_item(levels).as_bytes()).expect_err("too deep");
            assert_eq!(err.code(), "ValidationException");
            assert_eq!(err.message.as_deref(), Some(NESTING_MESSAGE), "{levels}");
        }
    }

    #[test]
    fn deep_json_that_is_no_attribute_value_is_refused() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_request(body.as_bytes()).expect_err("deep").code(),
            "ValidationException"
        );
    }

    #[test]
    fn long_and_deeply_parenthesised_expressions_are_refused() {
        let long = format!(
            r#"{{"TableName":"t","ConditionExpression":"{}"}}"#,
            "a = b AND ".repeat(500)
        );
        let err = parse_request(long.as_bytes()).expect_err("long");
        assert!(
            err.message
                .as_deref()
                .is_some_and(|m| m.contains("Expression size has exceeded")),
            "{err}"
        );
        let deep = format!(
            r#"{{"TableName":"t","FilterExpression":"{}a = b{}"}}"#,
            "(".repeat(1000),
            ")".repeat(1000)
        );
        assert_eq!(
            parse_request(deep.as_bytes()).expect_err("deep").code(),
            "ValidationException"
        );
    }

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        for body in ["", "not json", "{", "[1,2]", "\"x\"", "{\"a\":1}}"] {
            let err = parse_request(body.as_bytes()).expect_err(body);
            assert_eq!(err.code(), "SerializationException", "{body}");
        }
        assert!(parse_request(b"{}").is_ok());
    }

    #[test]
    fn strings_with_brackets_do_not_count_as_nesting() {
        let body = format!(
            r#"{{"TableName":"t","Item":{{"pk":{{"S":"{}"}}}}}}"#,
            "[{".repeat(5000)
        );
        parse_request(body.as_bytes()).expect("brackets in a string are text");
    }
}

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

/// What [`check_request`] learned about a body it let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The deepest parenthesis nesting of any expression in the request.
    pub expression_nesting: usize,
}

/// The checks of [`parse_request`] without building a tree: `Some` when the
/// body is a JSON object within every limit, `None` when it breaks any of
/// them or is not JSON at all. A `None` is then run through
/// [`parse_request`], which words the refusal, so every error keeps one
/// source and the fast path changes no answer.
///
/// The walk recurses once per JSON level, and only after [`json_depth`] has
/// bounded the levels to [`MAX_JSON_DEPTH`].
pub fn check_request(body: &[u8]) -> Option<Shape> {
    use serde::de::DeserializeSeed;

    if body.len() > MAX_REQUEST_BYTES
        || body.iter().all(u8::is_ascii_whitespace)
        || json_depth(body) > MAX_JSON_DEPTH
    {
        return None;
    }
    let mut walk = Walk::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let root = Node {
        walk: &mut walk,
        key: Key::Other,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    (root.object && root.nesting <= MAX_DOCUMENT_NESTING + 1 && !walk.refused).then_some(Shape {
        expression_nesting: walk.expression_nesting,
    })
}

/// State of one [`check_request`] walk.
#[derive(Default)]
struct Walk {
    refused: bool,
    expression_nesting: usize,
}

/// The member name a value sits under, as far as the checks care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Expression { statement: bool },
    M,
    L,
    Other,
}

impl Key {
    fn of(name: &str) -> Key {
        match name {
            "M" => Key::M,
            "L" => Key::L,
            "Statement" => Key::Expression { statement: true },
            _ if is_expression_field(name) => Key::Expression { statement: false },
            _ => Key::Other,
        }
    }
}

/// A value as the walk saw it: whether it is an object or an array, and the
/// most document levels any path below it (itself included) opens.
#[derive(Default)]
struct Seen {
    object: bool,
    array: bool,
    nesting: usize,
}

/// Reads one value (under `key`) for [`check_request`].
struct Node<'w> {
    walk: &'w mut Walk,
    key: Key,
}

impl<'de> serde::de::DeserializeSeed<'de> for Node<'_> {
    type Value = Seen;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads a member name into its [`Key`].
struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::of(v))
    }
}

impl<'de> serde::de::Visitor<'de> for Node<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Seen, E> {
        Ok(Seen::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::default())
    }

    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::default())
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Seen, E> {
        if let Key::Expression { statement } = self.key {
            match expression_nesting(statement, text) {
                Some(depth) => {
                    self.walk.expression_nesting = self.walk.expression_nesting.max(depth);
                }
                None => self.walk.refused = true,
            }
        }
        Ok(Seen::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        let mut nesting = 0;
        // Items of an array keep the member name it sits under, as in
        // `check_values`.
        while let Some(item) = seq.next_element_seed(Node {
            walk: &mut *self.walk,
            key: self.key,
        })? {
            nesting = nesting.max(item.nesting);
        }
        Ok(Seen {
            array: true,
            nesting,
            ..Seen::default()
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut nesting = 0usize;
        // A `{"M": {..}}` or `{"L": [..]}` of one member is an attribute
        // value that opens a document level. A name given twice is one
        // member, holding its last value, as in the parsed tree.
        let (mut first, mut one_member, mut last_opens) = (None, true, false);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(Node {
                walk: &mut *self.walk,
                key,
            })?;
            one_member &= *first.get_or_insert(key) == key && matches!(key, Key::M | Key::L);
            last_opens = (key == Key::M && value.object) || (key == Key::L && value.array);
            nesting = nesting.max(value.nesting);
        }
        let opens = one_member && last_opens;
        Ok(Seen {
            object: true,
            nesting: nesting + usize::from(opens),
            ..Seen::default()
        })
    }
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
    let max = parenthesis_depth(text);
    if max > MAX_EXPRESSION_NESTING {
        return Err(ApiError::validation(format!(
            "Invalid {field}: The expression has too many nested levels; \
             nesting depth: {max}, limit: {MAX_EXPRESSION_NESTING}"
        )));
    }
    Ok(())
}

/// How deep `(` and `[` nest in an expression.
fn parenthesis_depth(text: &str) -> usize {
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
    max
}

/// An expression's nesting when [`check_expression`] lets it through.
fn expression_nesting(statement: bool, text: &str) -> Option<usize> {
    if !statement && text.len() > MAX_EXPRESSION_BYTES {
        return None;
    }
    let depth = parenthesis_depth(text);
    (depth <= MAX_EXPRESSION_NESTING).then_some(depth)
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
    fn the_walk_lets_through_exactly_what_parse_request_accepts() {
        let mut bodies: Vec<String> = [
            "",
            " ",
            "not json",
            "{",
            "[1,2]",
            "\"x\"",
            "{\"a\":1}}",
            "{}",
            "{} ",
            r#"{"TableName":"t","Limit":1e400}"#,
            r#"{"TableName":"t","Key":{"pk":{"S":"\ud800"}}}"#,
            r#"{"TableName":"t","Key":{"pk":{"S":"a\u0062"}}}"#,
            r#"{"M":{"a":{"S":"x"}}}"#,
        ]
        .map(str::to_owned)
        .to_vec();
        for levels in [0, 1, 30, 31, 32, 33, 34, 40] {
            bodies.push(nested_item(levels));
            let mut v = r#"{"S":"leaf"}"#.to_owned();
            for _ in 0..levels {
                v = format!(r#"{{"L":[{v},{{"N":"1"}}]}}"#);
            }
            bodies.push(format!(r#"{{"TableName":"t","Item":{{"l":{v}}}}}"#));
            // A second member makes a map an item, not an attribute value...
            let mut v = r#"{"S":"leaf"}"#.to_owned();
            for _ in 0..levels {
                v = format!(r#"{{"M":{{"a":{v}}},"x":{{"S":"y"}}}}"#);
            }
            bodies.push(format!(r#"{{"Item":{{"doc":{v}}}}}"#));
            // ...but a name given twice is one member, holding its last value.
            let mut v = r#"{"S":"leaf"}"#.to_owned();
            for _ in 0..levels {
                v = format!(r#"{{"M":[1],"M":{{"a":{v}}}}}"#);
            }
            bodies.push(format!(r#"{{"Item":{{"doc":{v}}}}}"#));
        }
        for (field, text) in [
            ("ConditionExpression", "a = b AND ".repeat(409)),
            ("ConditionExpression", "a = b AND ".repeat(410)),
            ("Statement", "a = b AND ".repeat(700)),
            (
                "FilterExpression",
                format!("{}a{}", "(".repeat(300), ")".repeat(300)),
            ),
            (
                "FilterExpression",
                format!("{}a{}", "(".repeat(301), ")".repeat(301)),
            ),
        ] {
            bodies.push(format!(r#"{{"TableName":"t","{field}":"{text}"}}"#));
            bodies.push(format!(r#"{{"Statements":[{{"{field}":["{text}"]}}]}}"#));
        }
        for body in &bodies {
            assert_eq!(
                check_request(body.as_bytes()).is_some(),
                parse_request(body.as_bytes()).is_ok(),
                "{body}"
            );
        }
    }

    #[test]
    fn the_walk_reports_how_deep_expressions_nest() {
        let body = r#"{"TableName":"t","ConditionExpression":"(a = b) OR ((c[1] = d))",
            "KeyConditionExpression":"pk = :pk"}"#;
        assert_eq!(
            check_request(body.as_bytes()),
            Some(Shape {
                expression_nesting: 3
            })
        );
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

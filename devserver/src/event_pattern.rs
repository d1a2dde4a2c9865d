//! Event patterns, the one matching engine of the devserver: Lambda event
//! filtering (`FilterCriteria` of an event source mapping: a record is kept
//! when any pattern matches, others are dropped, never sent, never
//! retried), and next EventBridge rules and SNS filter policies.
//!
//! A pattern is parsed once, when `dev.toml` is read; a bad one is refused
//! there with the line and the problem.
//!
//! Supported: exact values (string, number, boolean, `null`), `prefix`,
//! `suffix`, `equals-ignore-case`, `anything-but` (value, list, or
//! `{"prefix": ..}`), `numeric` (`=`, `<`, `<=`, `>`, `>=`, one or two
//! comparisons), `exists`. Fields in a pattern are ANDed, values in one
//! array ORed; an array in the record matches when any element does.
//! `numeric` only matches JSON numbers: DynamoDB `N` values are strings and
//! never match it, as in AWS.
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html>

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct FilterPattern {
    root: Map<String, Value>,
    /// The pattern as written (what Terraform deploys).
    text: String,
}

/// Serialized as written, as `FilterCriteria` carries it.
impl serde::Serialize for FilterPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl FilterPattern {
    /// Parses and checks a pattern; the error names the problem (Lambda
    /// itself only says "Invalid filter pattern definition.").
    pub fn parse(text: &str) -> Result<FilterPattern, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(root) = value else {
            return Err("a pattern is a JSON object".to_owned());
        };
        if root.is_empty() {
            return Err("a pattern needs at least one field".to_owned());
        }
        check_object(&root, "")?;
        Ok(FilterPattern {
            root,
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, record: &Value) -> bool {
        match_object(&self.root, Some(record))
    }
}

/// Keeps a record when any pattern matches (all records when there are none).
pub fn keep(patterns: &[FilterPattern], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(record))
}

fn check_object(object: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (key, value) in object {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => check_object(inner, &here)?,
            Value::Array(matchers) if !matchers.is_empty() => {
                for m in matchers {
                    check_matcher(m, &here)?;
                }
            }
            _ => {
                return Err(format!(
                    "`{here}` must be a non-empty array of values or a nested object"
                ));
            }
        }
    }
    Ok(())
}

fn check_matcher(m: &Value, path: &str) -> Result<(), String> {
    let Value::Object(op) = m else {
        return match m {
            Value::Array(_) => Err(format!("`{path}`: arrays cannot be nested")),
            _ => Ok(()),
        };
    };
    if op.len() != 1 {
        return Err(format!(
            "`{path}`: a matcher object has exactly one operator"
        ));
    }
    let (name, arg) = op.iter().next().ok_or("empty matcher")?;
    let bad = |what: &str| Err(format!("`{path}`: `{name}` {what}"));
    match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => match arg {
            Value::String(_) => Ok(()),
            _ => bad("takes a string"),
        },
        "exists" => match arg {
            Value::Bool(_) => Ok(()),
            _ => bad("takes true or false"),
        },
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => Ok(()),
            Value::Array(items)
                if !items.is_empty() && items.iter().all(|v| v.is_string() || v.is_number()) =>
            {
                Ok(())
            }
            Value::Object(inner)
                if inner.len() == 1 && inner.get("prefix").is_some_and(Value::is_string) =>
            {
                Ok(())
            }
            _ => bad("takes a value, a list of values or {\"prefix\": \"..\"}"),
        },
        "numeric" => {
            let Value::Array(parts) = arg else {
                return bad("takes [\"<op>\", number, ...]");
            };
            if parts.len() != 2 && parts.len() != 4 {
                return bad("takes one or two comparisons");
            }
            for pair in parts.chunks(2) {
                let op_ok = pair[0]
                    .as_str()
                    .is_some_and(|o| matches!(o, "=" | "<" | "<=" | ">" | ">="));
                if !op_ok || !pair[1].is_number() {
                    return bad("takes [\"<op>\", number, ...] with <op> one of = < <= > >=");
                }
            }
            Ok(())
        }
        other => Err(format!("`{path}`: unknown operator `{other}`")),
    }
}

fn match_object(pattern: &Map<String, Value>, value: Option<&Value>) -> bool {
    pattern.iter().all(|(key, p)| {
        let field = value.and_then(|v| v.get(key));
        match p {
            Value::Object(inner) => match field {
                Some(Value::Array(items)) => items.iter().any(|i| match_object(inner, Some(i))),
                other => match_object(inner, other),
            },
            Value::Array(matchers) => matchers.iter().any(|m| match_field(m, field)),
            _ => false,
        }
    })
}

/// One matcher against a field that may be absent or an array.
fn match_field(matcher: &Value, field: Option<&Value>) -> bool {
    if let Value::Object(op) = matcher
        && let Some(Value::Bool(wanted)) = op.get("exists")
    {
        let present = !matches!(field, None | Some(Value::Object(_)));
        return present == *wanted;
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|i| match_value(matcher, i)),
        Some(v) => match_value(matcher, v),
    }
}

fn match_value(matcher: &Value, value: &Value) -> bool {
    let Value::Object(op) = matcher else {
        return literal_eq(matcher, value);
    };
    let Some((name, arg)) = op.iter().next() else {
        return false;
    };
    match (name.as_str(), value) {
        ("prefix", Value::String(s)) => arg.as_str().is_some_and(|p| s.starts_with(p)),
        ("suffix", Value::String(s)) => arg.as_str().is_some_and(|p| s.ends_with(p)),
        ("equals-ignore-case", Value::String(s)) => {
            arg.as_str().is_some_and(|p| s.eq_ignore_ascii_case(p))
        }
        ("anything-but", v) => match arg {
            Value::Array(items) => !items.iter().any(|i| literal_eq(i, v)),
            Value::Object(inner) => match (inner.get("prefix").and_then(Value::as_str), v) {
                (Some(p), Value::String(s)) => !s.starts_with(p),
                _ => false,
            },
            single => !literal_eq(single, v),
        },
        ("numeric", Value::Number(n)) => {
            let (Some(x), Value::Array(parts)) = (n.as_f64(), arg) else {
                return false;
            };
            parts.chunks(2).all(|pair| {
                let Some(bound) = pair.get(1).and_then(Value::as_f64) else {
                    return false;
                };
                match pair[0].as_str() {
                    Some("=") => x == bound,
                    Some("<") => x < bound,
                    Some("<=") => x <= bound,
                    Some(">") => x > bound,
                    Some(">=") => x >= bound,
                    _ => false,
                }
            })
        }
        _ => false,
    }
}

fn literal_eq(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "eventName": "INSERT",
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            "dynamodb": {
                "ApproximateCreationDateTime": 1700000000,
                "Keys": {"pk": {"S": "order#1"}},
                "NewImage": {"pk": {"S": "order#1"}, "status": {"S": "PLACED"}, "total": {"N": "42"}}
            }
        })
    }

    fn matches(pattern: &str) -> bool {
        FilterPattern::parse(pattern)
            .expect(pattern)
            .matches(&record())
    }

    #[test]
    fn exact_prefix_and_nested_fields() {
        assert!(matches(r#"{"eventName": ["INSERT", "MODIFY"]}"#));
        assert!(!matches(r#"{"eventName": ["REMOVE"]}"#));
        assert!(matches(
            r#"{"dynamodb": {"NewImage": {"status": {"S": ["PLACED"]}}}}"#
        ));
        assert!(matches(
            r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "order#"}]}}}}"#
        ));
        assert!(!matches(r#"{"eventName": ["insert"]}"#), "no case folding");
        assert!(matches(
            r#"{"eventName": [{"equals-ignore-case": "insert"}]}"#
        ));
    }

    #[test]
    fn fields_are_anded() {
        assert!(!matches(
            r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["SHIPPED"]}}}}"#
        ));
    }

    #[test]
    fn numeric_does_not_match_dynamodb_number_strings_but_matches_numbers() {
        assert!(!matches(
            r#"{"dynamodb": {"NewImage": {"total": {"N": [{"numeric": [">", 1]}]}}}}"#
        ));
        assert!(matches(
            r#"{"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 1600000000, "<=", 1700000000]}]}}"#
        ));
    }

    #[test]
    fn exists_and_anything_but() {
        assert!(matches(r#"{"userIdentity": {"type": [{"exists": true}]}}"#));
        assert!(matches(
            r#"{"dynamodb": {"OldImage": {"pk": [{"exists": false}]}}}"#
        ));
        assert!(matches(r#"{"eventName": [{"anything-but": ["REMOVE"]}]}"#));
        assert!(!matches(r#"{"eventName": [{"anything-but": "INSERT"}]}"#));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"eventName": "INSERT"}"#,
            r#"{"eventName": []}"#,
            r#"{"eventName": [{"regex": "x"}]}"#,
            r#"{"eventName": [{"numeric": [">"]}]}"#,
            r#"{"eventName": [{"prefix": 1}]}"#,
        ] {
            assert!(FilterPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_patterns_keeps_everything() {
        assert!(keep(&[], &record()));
    }
}

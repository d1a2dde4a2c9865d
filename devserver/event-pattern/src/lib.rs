//! Event patterns, matched as AWS matches them: EventBridge rules, Lambda
//! event filtering (`FilterCriteria`) and SNS subscription filter policies
//! share one language, implemented here once.
//!
//! A pattern is parsed and checked once ([`FilterPattern::parse`]) into a
//! tree of typed matchers; [`FilterPattern::matches`] then walks that tree
//! against an event already parsed into a [`serde_json::Value`]; a
//! [`PatternSet`] matches many patterns (a bus's rules) against each event,
//! checking only those whose exact `source`-like values the event has.
//!
//! Operators, as EventBridge documents them:
//! exact values (string, number, `true`, `false`, `null`, `""`); `prefix`
//! and `suffix` (also `{"equals-ignore-case": ..}` inside them);
//! `equals-ignore-case`; `wildcard` (`*`, with `\*` and `\\` escapes);
//! `anything-but` (a string or number, a list of strings or of numbers, or
//! `{"prefix" | "suffix" | "equals-ignore-case" | "wildcard": value or
//! list}`); `numeric` (one comparison, or a lower then an upper bound);
//! `exists`; `cidr` (IPv4 and IPv6); `$or` (two or more sub-patterns, at
//! any level).
//!
//! Semantics:
//! - Fields in a pattern are ANDed, the values in one array ORed.
//! - An array in the event matches when any element does; nested arrays
//!   are flattened. Fields under one array of objects must match within
//!   the same element.
//! - Numbers compare as decimals (`3.0` equals `3`) within the dialect's
//!   range and precision (EventBridge: ±5.0e9, 6 decimal places); `numeric`
//!   matches JSON numbers only, never strings such as DynamoDB's `N`.
//! - `exists` looks at leaf values: an object is not a value, so
//!   `{"exists": false}` matches a field holding an object.
//! - `prefix`, `suffix`, `equals-ignore-case`, `wildcard`, `cidr` and the
//!   object forms of `anything-but` match strings only; `anything-but` with
//!   values matches any present value but those.
//!
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html>
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html>
//! <https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html>
//! <https://github.com/aws/event-ruler> (AWS's open-source matcher, the
//! reference for edge cases).

mod cidr;
mod compile;
mod number;
mod set;
mod tree;
mod wildcard;

use std::fmt;

use serde_json::Value;

use crate::compile::Compiler;
use crate::number::{EVENTBRIDGE_LIMITS, NumberLimits, SNS_LIMITS};
use crate::tree::Node;

pub use crate::set::PatternSet;

/// Which service's rules a pattern is checked and matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// EventBridge rules and Lambda event filtering.
    #[default]
    EventBridge,
    /// SNS subscription filter policies: no `wildcard`; numbers within
    /// ±1.0e9 with 5 decimal places; at most 5 keys and 150 combinations
    /// of values.
    /// <https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html>
    Sns,
}

impl Dialect {
    fn limits(self) -> NumberLimits {
        match self {
            Dialect::EventBridge => EVENTBRIDGE_LIMITS,
            Dialect::Sns => SNS_LIMITS,
        }
    }
}

/// Why a pattern was refused: where, and AWS's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The dotted path of the field at fault (`detail.state`), empty for
    /// the pattern as a whole.
    path: String,
    /// event-ruler's reason text, as EventBridge reports it.
    reason: String,
}

impl PatternError {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The message of EventBridge's `InvalidEventPatternException`.
    /// AWS appends the parser's position; we name the field instead.
    pub fn aws_message(&self) -> String {
        if self.path.is_empty() {
            format!("Event pattern is not valid. Reason: {}", self.reason)
        } else {
            format!(
                "Event pattern is not valid. Reason: {} at `{}`",
                self.reason, self.path
            )
        }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "`{}`: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for PatternError {}

/// A checked pattern, ready to match.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    root: Node,
    dialect: Dialect,
    /// The pattern as written (what Terraform deploys).
    text: String,
}

/// Two patterns are equal when written alike for the same service.
impl PartialEq for FilterPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.dialect == other.dialect
    }
}

/// Serialized as written, as `FilterCriteria` and `PutRule` carry it.
impl serde::Serialize for FilterPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl FilterPattern {
    /// Parses and checks an EventBridge / Lambda pattern; the error names
    /// the field and the problem (Lambda itself only says "Invalid filter
    /// pattern definition.").
    pub fn parse(text: &str) -> Result<FilterPattern, String> {
        Self::parse_with(text, Dialect::EventBridge).map_err(|e| e.to_string())
    }

    /// Parses and checks a pattern as `dialect`'s service would.
    pub fn parse_with(text: &str, dialect: Dialect) -> Result<FilterPattern, PatternError> {
        let compiler = Compiler {
            dialect,
            limits: dialect.limits(),
        };
        Ok(FilterPattern {
            root: compiler.root(text)?,
            dialect,
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches(Some(event), &self.dialect.limits())
    }
}

/// Keeps a record when any pattern matches (all records when there are none).
pub fn keep(patterns: &[FilterPattern], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(record))
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
    fn refusals_name_the_field_and_read_like_eventbridge() {
        let e = FilterPattern::parse_with(
            r#"{"detail": {"state": [{"regex": "x"}]}}"#,
            Dialect::EventBridge,
        )
        .expect_err("unknown operator");
        assert_eq!(e.path(), "detail.state");
        assert_eq!(
            e.to_string(),
            "`detail.state`: Unrecognized match type regex"
        );
        assert_eq!(
            e.aws_message(),
            "Event pattern is not valid. Reason: Unrecognized match type regex at `detail.state`"
        );
    }

    #[test]
    fn no_patterns_keeps_everything() {
        assert!(keep(&[], &record()));
    }

    #[test]
    fn serializes_as_written_and_compares_by_text() {
        let text = r#"{"source": ["shop"]}"#;
        let p = FilterPattern::parse(text).expect("valid");
        assert_eq!(serde_json::to_value(&p).expect("serializes"), json!(text));
        assert_eq!(p, FilterPattern::parse(text).expect("valid"));
        assert_ne!(
            p,
            FilterPattern::parse_with(text, Dialect::Sns).expect("valid")
        );
    }
}

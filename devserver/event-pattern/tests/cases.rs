//! The pattern engine against AWS's own examples: `cases.json` holds
//! (pattern, event, expected match) cases and invalid patterns with the
//! refusal AWS gives, each naming the page or source file it comes from.
//! A pattern is JSON (or a string, for text that is not JSON); `dialect`
//! is `"sns"` for SNS filter policies, EventBridge otherwise.

use serde_json::Value;
use woocom_event_pattern::{Dialect, FilterPattern};

const CASES: &str = include_str!("cases.json");

fn cases() -> Vec<Value> {
    match serde_json::from_str(CASES) {
        Ok(Value::Array(cases)) => cases,
        other => panic!("cases.json is not an array of cases: {other:?}"),
    }
}

fn field<'a>(case: &'a Value, name: &str) -> &'a Value {
    case.get(name)
        .unwrap_or_else(|| panic!("case {case} has no `{name}`"))
}

fn describe(case: &Value) -> String {
    format!(
        "{} ({})",
        field(case, "name").as_str().unwrap_or_default(),
        field(case, "source").as_str().unwrap_or_default()
    )
}

fn pattern_text(case: &Value) -> String {
    match field(case, "pattern") {
        Value::String(text) => text.clone(),
        pattern => pattern.to_string(),
    }
}

fn dialect(case: &Value) -> Dialect {
    match case.get("dialect").and_then(Value::as_str) {
        Some("sns") => Dialect::Sns,
        None => Dialect::EventBridge,
        Some(other) => panic!("unknown dialect {other}"),
    }
}

#[test]
fn every_case_names_its_source_and_there_are_enough() {
    let cases = cases();
    for case in &cases {
        let source = field(case, "source").as_str().unwrap_or_default();
        assert!(source.starts_with("https://"), "{}", describe(case));
    }
    let matching = cases.iter().filter(|c| c.get("matches").is_some()).count();
    assert!(matching >= 80, "only {matching} matching cases");
    let both_outcomes = cases
        .iter()
        .filter_map(|c| c.get("matches").and_then(Value::as_bool))
        .fold(
            (0, 0),
            |(yes, no), m| if m { (yes + 1, no) } else { (yes, no + 1) },
        );
    assert!(both_outcomes.0 > 0 && both_outcomes.1 > 0);
}

#[test]
fn patterns_match_events_as_aws_documents() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.get("matches").is_some()) {
        let expected = field(case, "matches").as_bool().unwrap_or_default();
        match FilterPattern::parse_with(&pattern_text(case), dialect(case)) {
            Ok(pattern) => {
                let got = pattern.matches(field(case, "event"));
                if got != expected {
                    failures.push(format!(
                        "{}: expected {expected}, got {got}",
                        describe(case)
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: refused: {e}", describe(case))),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn invalid_patterns_are_refused_with_aws_reason_and_field() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.get("error").is_some()) {
        let reason = field(case, "error").as_str().unwrap_or_default();
        let path = case.get("path").and_then(Value::as_str).unwrap_or_default();
        match FilterPattern::parse_with(&pattern_text(case), dialect(case)) {
            Ok(_) => failures.push(format!("{}: accepted", describe(case))),
            Err(e) if !e.reason().starts_with(reason) || e.path() != path => {
                failures.push(format!(
                    "{}: expected `{path}`: {reason}, got `{}`: {}",
                    describe(case),
                    e.path(),
                    e.reason()
                ))
            }
            Err(e) => {
                let message = e.aws_message();
                if !message.starts_with("Event pattern is not valid. Reason: ") {
                    failures.push(format!("{}: message {message}", describe(case)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The same text is accepted by EventBridge when only SNS's limits refuse
/// it: the dialects differ in limits, not in meaning.
#[test]
fn sns_only_refusals_are_valid_eventbridge_patterns() {
    for case in cases()
        .iter()
        .filter(|c| c.get("error").is_some() && dialect(c) == Dialect::Sns)
    {
        assert!(
            FilterPattern::parse(&pattern_text(case)).is_ok(),
            "{}",
            describe(case)
        );
    }
}

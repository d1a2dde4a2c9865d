//! What a target receives: the event, or `Input` (fixed JSON), or
//! `InputPath` (a part of the event), or `InputTransformer` (values picked
//! by `InputPathsMap` put into `InputTemplate`).
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html>
//!
//! Placeholders in a template, as EventBridge fills them:
//! - inside a JSON string (`"order <id>"`), a string value goes in as its
//!   text, without quotes; other values as their JSON;
//! - elsewhere (`{"order": <id>}`), the value goes in as JSON (a string
//!   with its quotes);
//! - a path that finds nothing gives `null` outside a string and nothing
//!   inside one;
//! - `<aws.events.rule-arn>`, `<aws.events.rule-name>`,
//!   `<aws.events.event>` (the event), `<aws.events.event.json>` (the event
//!   as JSON text) and `<aws.events.event.ingestion-time>` are predefined.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifest::events::InputTransformer;

/// A JSONPath in the dot notation EventBridge takes: `$`, `$.detail`,
/// `$.detail.items[0].sku`, `$.detail['odd key']` is not supported (AWS
/// asks for dot notation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let bad = || format!("`{text}` is not a JSONPath in dot notation (such as $.detail.id)");
        let rest = text.strip_prefix('$').ok_or_else(bad)?;
        let mut steps = Vec::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let mut key = String::new();
                    while let Some(&n) = chars.peek() {
                        if n == '.' || n == '[' {
                            break;
                        }
                        key.push(n);
                        chars.next();
                    }
                    if key.is_empty() {
                        return Err(bad());
                    }
                    steps.push(Step::Key(key));
                }
                '[' => {
                    let mut digits = String::new();
                    for n in chars.by_ref() {
                        if n == ']' {
                            break;
                        }
                        digits.push(n);
                    }
                    let index = digits.parse::<usize>().map_err(|_| bad())?;
                    steps.push(Step::Index(index));
                }
                _ => return Err(bad()),
            }
        }
        Ok(JsonPath { steps })
    }

    pub fn find<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        let mut at = value;
        for step in &self.steps {
            at = match step {
                Step::Key(k) => at.get(k)?,
                Step::Index(i) => at.get(*i)?,
            };
        }
        Some(at)
    }
}

/// Names EventBridge reserves in templates.
const PREDEFINED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event",
    "aws.events.event.json",
    "aws.events.event.ingestion-time",
];

/// An `InputTransformer`, checked.
#[derive(Debug, Clone)]
pub struct Transformer {
    paths: BTreeMap<String, JsonPath>,
    template: String,
}

/// What the predefined placeholders stand for.
pub struct Context<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

impl Transformer {
    /// Checks the paths map and the template (AWS: at most 100 paths, keys
    /// of letters, digits, `_` and `-` not starting with `AWS.`, a template
    /// of at most 8,192 characters whose placeholders are defined).
    pub fn new(t: &InputTransformer) -> Result<Transformer, String> {
        if t.input_paths.len() > 100 {
            return Err("InputPathsMap takes at most 100 entries".to_owned());
        }
        if t.input_template.is_empty() || t.input_template.len() > 8192 {
            return Err("InputTemplate must be 1-8192 characters".to_owned());
        }
        let mut paths = BTreeMap::new();
        for (key, path) in &t.input_paths {
            let key_ok = !key.is_empty()
                && key.len() <= 256
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !key_ok || key.to_ascii_lowercase().starts_with("aws.") {
                return Err(format!(
                    "InputPathsMap key `{key}`: letters, digits, `_` and `-`, not a reserved `aws.` name"
                ));
            }
            paths.insert(key.clone(), JsonPath::parse(path)?);
        }
        for name in placeholders(&t.input_template) {
            if !paths.contains_key(name) && !PREDEFINED.contains(&name) {
                return Err(format!(
                    "InputTemplate uses <{name}>, which InputPathsMap does not define"
                ));
            }
        }
        Ok(Transformer {
            paths,
            template: t.input_template.clone(),
        })
    }

    /// The template filled from `event`.
    pub fn apply(&self, event: &Value, cx: &Context<'_>) -> String {
        let mut out = String::with_capacity(self.template.len() + 64);
        let mut in_string = false;
        let mut escaped = false;
        let mut rest = self.template.as_str();
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(end) = rest[1..].find('>')
            {
                let name = &rest[1..=end];
                if let Some(value) = self.value_of(name, event, cx) {
                    push_value(&mut out, value.as_deref(), in_string);
                    rest = &rest[end + 2..];
                    continue;
                }
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// `Some(None)`: a defined placeholder whose path finds nothing.
    fn value_of<'a>(
        &self,
        name: &str,
        event: &'a Value,
        cx: &Context<'_>,
    ) -> Option<Option<std::borrow::Cow<'a, Value>>> {
        use std::borrow::Cow;
        if let Some(path) = self.paths.get(name) {
            return Some(path.find(event).map(Cow::Borrowed));
        }
        let value = match name {
            "aws.events.rule-arn" => Value::String(cx.rule_arn.to_owned()),
            "aws.events.rule-name" => Value::String(cx.rule_name.to_owned()),
            "aws.events.event.ingestion-time" => Value::String(cx.ingestion_time.to_owned()),
            "aws.events.event" => return Some(Some(Cow::Borrowed(event))),
            "aws.events.event.json" => Value::String(event.to_string()),
            _ => return None,
        };
        Some(Some(Cow::Owned(value)))
    }
}

fn push_value(out: &mut String, value: Option<&Value>, in_string: bool) {
    match (value, in_string) {
        (None, true) => {}
        (None, false) => out.push_str("null"),
        (Some(Value::String(s)), true) => {
            // Escaped as JSON string content, so the template stays JSON.
            let quoted = Value::String(s.clone()).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
        (Some(v), _) => out.push_str(&v.to_string()),
    }
}

/// The `<name>`s of a template.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('<').skip(1).filter_map(|part| {
        let (name, _) = part.split_once('>')?;
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        ok.then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::{Context, JsonPath, Transformer};
    use crate::manifest::events::InputTransformer;

    fn event() -> serde_json::Value {
        json!({
            "id": "e1", "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
            "detail": { "instance-id": "i-0123456789", "state": "RUNNING", "n": 3, "tags": ["a", "b"] }
        })
    }

    fn apply(paths: &[(&str, &str)], template: &str) -> String {
        let t = Transformer::new(&InputTransformer {
            input_paths: paths
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            input_template: template.to_owned(),
        })
        .expect("transformer");
        t.apply(
            &event(),
            &Context {
                rule_arn: "arn:aws:events:us-east-1:000000000000:rule/r",
                rule_name: "r",
                ingestion_time: "2026-12-05T00:00:00Z",
            },
        )
    }

    #[test]
    fn paths_find_keys_and_indexes() {
        let e = event();
        let p = JsonPath::parse("$.detail.tags[1]").expect("path");
        assert_eq!(p.find(&e), Some(&json!("b")));
        assert_eq!(JsonPath::parse("$").expect("root").find(&e), Some(&e));
        assert!(JsonPath::parse("detail").is_err());
        assert!(JsonPath::parse("$..x").is_err());
    }

    #[test]
    fn placeholders_in_and_out_of_strings() {
        // AWS's documented example.
        let out = apply(
            &[
                ("instance", "$.detail.instance-id"),
                ("state", "$.detail.state"),
            ],
            r#"{"myInstance": <instance>, "myStatus": "<instance> is in state \"<state>\""}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["myInstance"], "i-0123456789");
        assert_eq!(v["myStatus"], "i-0123456789 is in state \"RUNNING\"");
        let out = apply(&[("state", "$.detail.state")], r#""<state> now""#);
        assert_eq!(out, r#""RUNNING now""#);
        let out = apply(
            &[("n", "$.detail.n"), ("x", "$.detail.nope")],
            r#"{"n": <n>, "x": <x>, "s": "<x>"}"#,
        );
        assert_eq!(out, r#"{"n": 3, "x": null, "s": ""}"#);
        let out = apply(
            &[],
            r#"{"rule": "<aws.events.rule-name>", "e": <aws.events.event>}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["rule"], "r");
        assert_eq!(v["e"]["id"], "e1");
    }

    #[test]
    fn undefined_placeholders_and_reserved_keys_are_refused() {
        let t = |paths: &[(&str, &str)], template: &str| {
            Transformer::new(&InputTransformer {
                input_paths: paths
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                input_template: template.to_owned(),
            })
        };
        assert!(t(&[], "<nope>").is_err());
        assert!(t(&[("aws.x", "$.a")], "<aws.x>").is_err());
        assert!(t(&[("a", "a")], "<a>").is_err());
        assert!(t(&[("a", "$.a")], "<a>").is_ok());
    }
}

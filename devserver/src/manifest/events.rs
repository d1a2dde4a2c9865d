//! `[buses.<name>]` and `[rules.<name>]` in `dev.toml`: EventBridge event
//! buses, and rules with their event pattern (or schedule) and targets,
//! created or reconciled on `woocom-dev up` and on edit. Field names are
//! those of Terraform's `aws_cloudwatch_event_bus`, `_rule` and `_target`.
//! The `default` bus always exists.
//! <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutTargets.html>
//!
//! ```toml
//! [buses.shop]
//! description = "facts of the shop's services"
//!
//! [rules.order-placed]
//! bus = "shop"                                   # default: "default"
//! event_pattern = '{"source": ["woocom.orders"], "detail-type": ["OrderPlaced"]}'
//! # schedule_expression = "rate(5 minutes)"      # instead of a pattern (default bus)
//! state = "ENABLED"                              # or "DISABLED"
//!
//! [[rules.order-placed.targets]]
//! function = "fulfil"          # or queue = "<name>", topic = "<name>", bus = "<name>"
//! id = "fulfil"                # default: the function's, queue's, topic's or bus's name
//! input_path = "$.detail"      # or input = '<JSON>', or
//! # input_transformer = { input_paths = { id = "$.detail.orderId" }, input_template = '{"order": <id>}' }
//! message_group_id = "orders"  # FIFO queue targets
//! retry_policy = { maximum_retry_attempts = 185, maximum_event_age_in_seconds = 86400 }
//! dead_letter_queue = "events-dlq"
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Function, ManifestError, Queue, Topic};
use crate::event_pattern::FilterPattern;

/// The bus every account has.
pub const DEFAULT_BUS: &str = "default";
/// EventBridge's defaults for a target's retry policy (classic buses).
pub const DEFAULT_MAXIMUM_RETRY_ATTEMPTS: u32 = 185;
pub const DEFAULT_MAXIMUM_EVENT_AGE: u32 = 86_400;
/// Targets per rule.
pub const MAX_TARGETS: usize = 5;

/// A custom event bus as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bus {
    pub name: String,
    pub description: Option<String>,
}

/// A rule as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    pub bus: String,
    pub description: Option<String>,
    pub event_pattern: Option<FilterPattern>,
    pub schedule_expression: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    pub targets: Vec<Target>,
}

/// What a target delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum TargetKind {
    Function(String),
    Queue(String),
    Topic(String),
    Bus(String),
}

impl TargetKind {
    pub fn name(&self) -> &str {
        match self {
            TargetKind::Function(n)
            | TargetKind::Queue(n)
            | TargetKind::Topic(n)
            | TargetKind::Bus(n) => n,
        }
    }
}

/// `input_transformer`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputTransformer {
    #[serde(default)]
    pub input_paths: BTreeMap<String, String>,
    pub input_template: String,
}

/// `retry_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_attempts")]
    pub maximum_retry_attempts: u32,
    #[serde(default = "default_age")]
    pub maximum_event_age_in_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_retry_attempts: DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds: DEFAULT_MAXIMUM_EVENT_AGE,
        }
    }
}

fn default_attempts() -> u32 {
    DEFAULT_MAXIMUM_RETRY_ATTEMPTS
}

fn default_age() -> u32 {
    DEFAULT_MAXIMUM_EVENT_AGE
}

/// One target of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub id: String,
    #[serde(flatten)]
    pub kind: TargetKind,
    pub input: Option<String>,
    pub input_path: Option<String>,
    pub input_transformer: Option<InputTransformer>,
    pub message_group_id: Option<String>,
    pub retry_policy: RetryPolicy,
    pub dead_letter_queue: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBus {
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    bus: Option<Spanned<String>>,
    description: Option<String>,
    event_pattern: Option<Spanned<String>>,
    schedule_expression: Option<Spanned<String>>,
    state: Option<Spanned<String>>,
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    id: Option<String>,
    function: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    topic: Option<Spanned<String>>,
    bus: Option<Spanned<String>>,
    input: Option<Spanned<String>>,
    input_path: Option<Spanned<String>>,
    input_transformer: Option<Spanned<InputTransformer>>,
    message_group_id: Option<String>,
    retry_policy: Option<Spanned<RetryPolicy>>,
    dead_letter_queue: Option<Spanned<String>>,
}

/// EventBridge's rule for bus and rule names: 1-64 letters, digits, `.`,
/// `-` and `_` (a custom bus may not be called `default`... except the
/// one that exists).
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Checks a schedule expression: `rate(<n> minute[s]|hour[s]|day[s])` or
/// `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`.
pub fn schedule_ok(expression: &str) -> Result<(), String> {
    if let Some(inner) = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return crate::eventbridge::schedule::Rate::parse(inner).map(|_| ());
    }
    if let Some(inner) = expression
        .strip_prefix("cron(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return crate::eventbridge::schedule::Cron::parse(inner).map(|_| ());
    }
    Err("Parameter ScheduleExpression is not valid.".to_owned())
}

/// Checks an `input_path` or a path of `input_paths`: JSONPath in dot
/// notation (`$`, `$.detail`, `$.detail.items[0].sku`).
pub fn json_path_ok(path: &str) -> bool {
    crate::eventbridge::transform::JsonPath::parse(path).is_ok()
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

pub(super) fn parse_buses(
    raw: BTreeMap<Spanned<String>, Spanned<RawBus>>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Bus>, ManifestError> {
    let mut buses = BTreeMap::new();
    for (name, bus) in raw {
        let span = name.span();
        let name = name.into_inner();
        if !name_ok(&name) || name.starts_with("aws.") {
            return Err(at(
                span,
                format!(
                    "bus name `{name}`: EventBridge allows 1-64 letters, digits, `.`, `-` and `_`, not starting with `aws.`"
                ),
            ));
        }
        if name == DEFAULT_BUS {
            return Err(at(
                span,
                "bus `default` always exists; declare only custom buses in [buses]".to_owned(),
            ));
        }
        buses.insert(
            name.clone(),
            Bus {
                name,
                description: bus.into_inner().description,
            },
        );
    }
    Ok(buses)
}

pub(super) struct Declared<'a> {
    pub buses: &'a BTreeMap<String, Bus>,
    pub queues: &'a BTreeMap<String, Queue>,
    pub topics: &'a BTreeMap<String, Topic>,
    pub functions: &'a BTreeMap<String, Function>,
}

pub(super) fn parse_rules(
    raw: BTreeMap<Spanned<String>, Spanned<RawRule>>,
    d: &Declared<'_>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Rule>, ManifestError> {
    let mut rules = BTreeMap::new();
    for (name, rule) in raw {
        let span = name.span();
        let name = name.into_inner();
        let rule_span = rule.span();
        let r = rule.into_inner();
        if !name_ok(&name) {
            return Err(at(
                span,
                format!(
                    "rule name `{name}`: EventBridge allows 1-64 letters, digits, `.`, `-` and `_`"
                ),
            ));
        }
        let bus = match r.bus {
            Some(b) if b.get_ref() != DEFAULT_BUS && !d.buses.contains_key(b.get_ref()) => {
                return Err(at(
                    b.span(),
                    format!(
                        "rule `{name}`: bus `{}` is not in [buses] (declared: {}; `default` always exists)",
                        b.get_ref(),
                        known(d.buses.keys())
                    ),
                ));
            }
            Some(b) => b.into_inner(),
            None => DEFAULT_BUS.to_owned(),
        };
        let event_pattern = match r.event_pattern {
            Some(p) => Some(FilterPattern::parse(p.get_ref()).map_err(|problem| {
                at(
                    p.span(),
                    format!("rule `{name}`: Event pattern is not valid. Reason: {problem}"),
                )
            })?),
            None => None,
        };
        if let Some(s) = &r.schedule_expression {
            schedule_ok(s.get_ref())
                .map_err(|problem| at(s.span(), format!("rule `{name}`: {problem}")))?;
            if bus != DEFAULT_BUS {
                return Err(at(
                    s.span(),
                    format!(
                        "rule `{name}`: ScheduleExpression is supported only on the default event bus."
                    ),
                ));
            }
        }
        if event_pattern.is_none() && r.schedule_expression.is_none() {
            return Err(at(
                rule_span,
                format!("rule `{name}`: give it an event_pattern or a schedule_expression"),
            ));
        }
        let state = match r.state {
            Some(s) if s.get_ref() == "ENABLED" || s.get_ref() == "DISABLED" => s.into_inner(),
            Some(s) => {
                return Err(at(
                    s.span(),
                    format!(
                        "rule `{name}`: state `{}` must be ENABLED or DISABLED",
                        s.get_ref()
                    ),
                ));
            }
            None => "ENABLED".to_owned(),
        };
        if r.targets.len() > MAX_TARGETS {
            return Err(at(
                rule_span,
                format!(
                    "rule `{name}`: {} targets; EventBridge allows {MAX_TARGETS} per rule",
                    r.targets.len()
                ),
            ));
        }
        let mut targets: Vec<Target> = Vec::new();
        for (i, t) in r.targets.into_iter().enumerate() {
            let tspan = t.span();
            let t = t.into_inner();
            let what = format!("rule `{name}` target {}", i + 1);
            let kind = target_kind(&t, &what, tspan.clone(), d, at)?;
            if let TargetKind::Bus(b) = &kind
                && *b == bus
            {
                return Err(at(
                    tspan,
                    format!("{what}: a rule cannot send to its own bus `{bus}`"),
                ));
            }
            let id = t.id.unwrap_or_else(|| kind.name().to_owned());
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(at(
                    tspan,
                    format!("{what}: id `{id}`: 1-64 letters, digits, `.`, `-` and `_`"),
                ));
            }
            if targets.iter().any(|o| o.id == id) {
                return Err(at(
                    tspan,
                    format!(
                        "{what}: id `{id}` is used by another target of the rule; give one an `id`"
                    ),
                ));
            }
            let inputs = usize::from(t.input.is_some())
                + usize::from(t.input_path.is_some())
                + usize::from(t.input_transformer.is_some());
            if inputs > 1 {
                return Err(at(
                    tspan,
                    format!("{what}: give at most one of input, input_path and input_transformer"),
                ));
            }
            if let Some(input) = &t.input
                && serde_json::from_str::<serde_json::Value>(input.get_ref()).is_err()
            {
                return Err(at(
                    input.span(),
                    format!("{what}: input must be valid JSON text"),
                ));
            }
            if let Some(path) = &t.input_path
                && !json_path_ok(path.get_ref())
            {
                return Err(at(
                    path.span(),
                    format!(
                        "{what}: input_path `{}` is not a JSONPath such as $.detail",
                        path.get_ref()
                    ),
                ));
            }
            if let Some(tr) = &t.input_transformer {
                crate::eventbridge::transform::Transformer::new(tr.get_ref()).map_err(
                    |problem| at(tr.span(), format!("{what}: input_transformer: {problem}")),
                )?;
            }
            let fifo_queue = match &kind {
                TargetKind::Queue(q) => d.queues.get(q).is_some_and(|q| q.fifo_queue),
                _ => false,
            };
            if fifo_queue
                && !d
                    .queues
                    .get(kind.name())
                    .is_some_and(|q| q.content_based_deduplication)
            {
                return Err(at(
                    tspan,
                    format!(
                        "{what}: queue `{}` is a FIFO queue; EventBridge needs content_based_deduplication = true on it",
                        kind.name()
                    ),
                ));
            }
            if fifo_queue && t.message_group_id.is_none() {
                return Err(at(
                    tspan,
                    format!(
                        "{what}: queue `{}` is a FIFO queue; give message_group_id",
                        kind.name()
                    ),
                ));
            }
            if !fifo_queue && t.message_group_id.is_some() {
                return Err(at(
                    tspan,
                    format!("{what}: message_group_id is for FIFO queue targets only"),
                ));
            }
            let retry_policy = match t.retry_policy {
                Some(p) => {
                    let policy = *p.get_ref();
                    if policy.maximum_retry_attempts > 185 {
                        return Err(at(
                            p.span(),
                            format!("{what}: retry_policy.maximum_retry_attempts must be 0-185"),
                        ));
                    }
                    if !(60..=86_400).contains(&policy.maximum_event_age_in_seconds) {
                        return Err(at(
                            p.span(),
                            format!(
                                "{what}: retry_policy.maximum_event_age_in_seconds must be 60-86400"
                            ),
                        ));
                    }
                    policy
                }
                None => RetryPolicy::default(),
            };
            let dead_letter_queue = match t.dead_letter_queue {
                Some(q) => match d.queues.get(q.get_ref()) {
                    Some(queue) if queue.fifo_queue => {
                        return Err(at(
                            q.span(),
                            format!(
                                "{what}: dead_letter_queue `{}` is a FIFO queue; EventBridge dead-letter queues are standard queues",
                                q.get_ref()
                            ),
                        ));
                    }
                    Some(_) => Some(q.into_inner()),
                    None => {
                        return Err(at(
                            q.span(),
                            format!(
                                "{what}: dead_letter_queue `{}` is not in [queues] (declared: {})",
                                q.get_ref(),
                                known(d.queues.keys())
                            ),
                        ));
                    }
                },
                None => None,
            };
            targets.push(Target {
                id,
                kind,
                input: t.input.map(Spanned::into_inner),
                input_path: t.input_path.map(Spanned::into_inner),
                input_transformer: t.input_transformer.map(Spanned::into_inner),
                message_group_id: t.message_group_id,
                retry_policy,
                dead_letter_queue,
            });
        }
        rules.insert(
            name.clone(),
            Rule {
                name,
                bus,
                description: r.description,
                event_pattern,
                schedule_expression: r.schedule_expression.map(Spanned::into_inner),
                state,
                targets,
            },
        );
    }
    Ok(rules)
}

fn target_kind(
    t: &RawTarget,
    what: &str,
    span: Range<usize>,
    d: &Declared<'_>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<TargetKind, ManifestError> {
    let named: Vec<(&str, &Spanned<String>)> = [
        ("function", &t.function),
        ("queue", &t.queue),
        ("topic", &t.topic),
        ("bus", &t.bus),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let [(kind, name)] = named.as_slice() else {
        return Err(at(
            span,
            format!("{what}: name exactly one of `function`, `queue`, `topic` or `bus`"),
        ));
    };
    let n = name.get_ref().clone();
    let missing = |section: &str, keys: String| {
        at(
            name.span(),
            format!("{what}: {kind} `{n}` is not in [{section}] (declared: {keys})"),
        )
    };
    Ok(match *kind {
        "function" if d.functions.contains_key(&n) => TargetKind::Function(n),
        "function" => return Err(missing("functions", known(d.functions.keys()))),
        "queue" if d.queues.contains_key(&n) => TargetKind::Queue(n),
        "queue" => return Err(missing("queues", known(d.queues.keys()))),
        "topic" => match d.topics.get(&n) {
            Some(topic) if topic.fifo_topic => {
                return Err(at(
                    name.span(),
                    format!(
                        "{what}: topic `{n}` is a FIFO topic; EventBridge targets standard topics"
                    ),
                ));
            }
            Some(_) => TargetKind::Topic(n),
            None => return Err(missing("topics", known(d.topics.keys()))),
        },
        _ if n == DEFAULT_BUS || d.buses.contains_key(&n) => TargetKind::Bus(n),
        _ => return Err(missing("buses", known(d.buses.keys()))),
    })
}

#[cfg(test)]
mod tests {
    use super::TargetKind;
    use crate::manifest::Manifest;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse("dev.toml".as_ref(), text).map_err(|e| e.to_string())
    }

    #[test]
    fn buses_rules_and_targets_are_read() {
        let m = parse(
            "[functions.f]\ncrate = \"f\"\n[queues.q]\n[queues.dlq]\n[buses.shop]\n\
             [rules.r]\nbus = \"shop\"\nevent_pattern = '{\"source\": [\"a\"]}'\n\
             [[rules.r.targets]]\nfunction = \"f\"\ninput_path = \"$.detail\"\n\
             dead_letter_queue = \"dlq\"\nretry_policy = { maximum_retry_attempts = 2 }\n\
             [[rules.r.targets]]\nqueue = \"q\"\nid = \"to-q\"\n\
             [rules.tick]\nschedule_expression = \"rate(1 minute)\"\n\
             [[rules.tick.targets]]\nfunction = \"f\"\n",
        )
        .expect("manifest");
        let r = &m.rules["r"];
        assert_eq!(r.bus, "shop");
        assert_eq!(r.targets[0].kind, TargetKind::Function("f".into()));
        assert_eq!(r.targets[0].id, "f");
        assert_eq!(r.targets[0].retry_policy.maximum_retry_attempts, 2);
        assert_eq!(
            r.targets[0].retry_policy.maximum_event_age_in_seconds,
            86_400
        );
        assert_eq!(r.targets[1].id, "to-q");
        assert_eq!(m.rules["tick"].bus, "default");
        assert!(m.buses.contains_key("shop"));
    }

    #[test]
    fn bad_rules_are_refused_with_their_line() {
        let err = parse("[rules.r]\nbus = \"nope\"\nevent_pattern = '{\"a\": [1]}'\n")
            .expect_err("unknown bus");
        assert!(err.contains("dev.toml:2:"), "{err}");
        assert!(err.contains("bus `nope` is not in [buses]"), "{err}");
        let err = parse("[rules.r]\nevent_pattern = '{\"a\": 1}'\n").expect_err("pattern");
        assert!(err.contains("Event pattern is not valid"), "{err}");
        let err = parse("[rules.r]\n").expect_err("neither");
        assert!(
            err.contains("event_pattern or a schedule_expression"),
            "{err}"
        );
        let err =
            parse("[rules.r]\nschedule_expression = \"rate(0 minutes)\"\n").expect_err("rate");
        assert!(err.contains("dev.toml:2:"), "{err}");
        let err = parse(
            "[rules.r]\nevent_pattern = '{\"a\": [1]}'\n[[rules.r.targets]]\nqueue = \"nope\"\n",
        )
        .expect_err("queue");
        assert!(err.contains("dev.toml:4:"), "{err}");
        assert!(err.contains("queue `nope` is not in [queues]"), "{err}");
        let err = parse(
            "[queues.\"q.fifo\"]\nfifo_queue = true\ncontent_based_deduplication = true\n[rules.r]\nevent_pattern = '{\"a\": [1]}'\n[[rules.r.targets]]\nqueue = \"q.fifo\"\n",
        )
        .expect_err("group id");
        assert!(err.contains("give message_group_id"), "{err}");
        let err = parse(
            "[queues.q]\n[rules.r]\nevent_pattern = '{\"a\": [1]}'\n[[rules.r.targets]]\nqueue = \"q\"\ninput_path = \"detail\"\n",
        )
        .expect_err("path");
        assert!(err.contains("input_path `detail`"), "{err}");
        let err = parse(
            "[queues.q]\n[rules.r]\nevent_pattern = '{\"a\": [1]}'\n[[rules.r.targets]]\nqueue = \"q\"\nretry_policy = { maximum_event_age_in_seconds = 10 }\n",
        )
        .expect_err("age");
        assert!(err.contains("60-86400"), "{err}");
        let err = parse("[buses.default]\n").expect_err("default bus");
        assert!(err.contains("always exists"), "{err}");
    }
}

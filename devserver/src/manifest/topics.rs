//! `[topics.<name>]` in `dev.toml`: the SNS topics of the stack and their
//! subscriptions, created or reconciled on `woocom-dev up` and on edit.
//! Field names are those of Terraform's `aws_sns_topic` and
//! `aws_sns_topic_subscription`.
//! <https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html>
//!
//! ```toml
//! [topics.order-events]
//! # fifo_topic = true                  # the name must end in .fifo
//! # content_based_deduplication = true # FIFO topics only
//!
//! [[topics.order-events.subscriptions]]
//! queue = "fulfilment"                 # or function = "<name>", or
//!                                      # endpoint = "http://127.0.0.1:9000/hook"
//! raw_message_delivery = true          # queues and HTTP endpoints only
//! filter_policy = '{"type": ["OrderPlaced"]}'
//! filter_policy_scope = "MessageAttributes"   # or "MessageBody"
//! redrive_policy = { dead_letter_queue = "fulfilment-dlq" }
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Function, ManifestError, Queue};
use crate::event_pattern::{Dialect, FilterPattern};

/// A topic as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topic {
    pub name: String,
    pub fifo_topic: bool,
    pub content_based_deduplication: bool,
    pub subscriptions: Vec<TopicSubscription>,
}

/// Where a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "protocol", content = "endpoint", rename_all = "lowercase")]
pub enum Endpoint {
    /// An SQS queue of `[queues]`.
    Sqs(String),
    /// A function of `[functions]`.
    Lambda(String),
    /// An `http://` URL.
    Http(String),
    /// An `https://` URL.
    Https(String),
}

impl Endpoint {
    /// SNS's protocol name (`sqs`, `lambda`, `http`, `https`).
    pub fn protocol(&self) -> &'static str {
        match self {
            Endpoint::Sqs(_) => "sqs",
            Endpoint::Lambda(_) => "lambda",
            Endpoint::Http(_) => "http",
            Endpoint::Https(_) => "https",
        }
    }

    /// The queue name, function name or URL.
    pub fn target(&self) -> &str {
        match self {
            Endpoint::Sqs(t) | Endpoint::Lambda(t) | Endpoint::Http(t) | Endpoint::Https(t) => t,
        }
    }
}

/// Which part of a message a filter policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum FilterPolicyScope {
    #[default]
    MessageAttributes,
    MessageBody,
}

impl FilterPolicyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterPolicyScope::MessageAttributes => "MessageAttributes",
            FilterPolicyScope::MessageBody => "MessageBody",
        }
    }
}

/// One subscription of a topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicSubscription {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub raw_message_delivery: bool,
    pub filter_policy: Option<FilterPattern>,
    pub filter_policy_scope: FilterPolicyScope,
    /// The SQS queue of `[queues]` that gets messages SNS could not deliver.
    pub dead_letter_queue: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopic {
    #[serde(default)]
    fifo_topic: bool,
    #[serde(default)]
    content_based_deduplication: bool,
    #[serde(default)]
    subscriptions: Vec<Spanned<RawSubscription>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscription {
    queue: Option<Spanned<String>>,
    function: Option<Spanned<String>>,
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    raw_message_delivery: bool,
    filter_policy: Option<Spanned<String>>,
    #[serde(default)]
    filter_policy_scope: FilterPolicyScope,
    redrive_policy: Option<Spanned<RawRedrive>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedrive {
    dead_letter_queue: String,
}

/// SNS's rule for topic names: 1-256 letters, digits, `-` and `_`, and a
/// FIFO topic's name ends in `.fifo`.
pub fn name_ok(name: &str, fifo: bool) -> bool {
    let base = if fifo {
        match name.strip_suffix(".fifo") {
            Some(b) => b,
            None => return false,
        }
    } else {
        name
    };
    !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

pub(super) fn parse(
    raw: BTreeMap<Spanned<String>, Spanned<RawTopic>>,
    queues: &BTreeMap<String, Queue>,
    functions: &BTreeMap<String, Function>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Topic>, ManifestError> {
    let mut topics = BTreeMap::new();
    for (name, topic) in raw {
        let span = name.span();
        let name = name.into_inner();
        let t = topic.into_inner();
        if !name_ok(&name, t.fifo_topic) {
            let why = if t.fifo_topic {
                "a FIFO topic's name is 1-251 letters, digits, `-` and `_`, then `.fifo`"
            } else if name.ends_with(".fifo") {
                "a name ending in `.fifo` needs `fifo_topic = true`"
            } else {
                "SNS allows 1-256 letters, digits, `-` and `_`"
            };
            return Err(at(span, format!("topic name `{name}`: {why}")));
        }
        if t.content_based_deduplication && !t.fifo_topic {
            return Err(at(
                span,
                format!("topic `{name}`: content_based_deduplication is for FIFO topics only"),
            ));
        }
        let mut subscriptions = Vec::new();
        for (i, s) in t.subscriptions.into_iter().enumerate() {
            let sspan = s.span();
            let s = s.into_inner();
            let what = format!("topic `{name}` subscription {}", i + 1);
            let endpoint = match (s.queue, s.function, s.endpoint) {
                (Some(q), None, None) => {
                    let Some(queue) = queues.get(q.get_ref()) else {
                        return Err(at(
                            q.span(),
                            format!(
                                "{what}: queue `{}` is not in [queues] (declared: {})",
                                q.get_ref(),
                                known(queues.keys())
                            ),
                        ));
                    };
                    if queue.fifo_queue && !t.fifo_topic {
                        return Err(at(
                            q.span(),
                            format!(
                                "{what}: queue `{}` is a FIFO queue; a standard topic cannot deliver to it",
                                q.get_ref()
                            ),
                        ));
                    }
                    Endpoint::Sqs(q.into_inner())
                }
                (None, Some(f), None) => {
                    if !functions.contains_key(f.get_ref()) {
                        return Err(at(
                            f.span(),
                            format!(
                                "{what}: function `{}` is not in [functions] (declared: {})",
                                f.get_ref(),
                                known(functions.keys())
                            ),
                        ));
                    }
                    if t.fifo_topic {
                        return Err(at(
                            f.span(),
                            format!("{what}: a FIFO topic delivers to SQS queues only"),
                        ));
                    }
                    Endpoint::Lambda(f.into_inner())
                }
                (None, None, Some(e)) => {
                    let url = e.get_ref();
                    let endpoint = if url.starts_with("http://") {
                        Endpoint::Http(url.clone())
                    } else if url.starts_with("https://") {
                        Endpoint::Https(url.clone())
                    } else {
                        return Err(at(
                            e.span(),
                            format!("{what}: endpoint `{url}` must be an http:// or https:// URL"),
                        ));
                    };
                    if t.fifo_topic {
                        return Err(at(
                            e.span(),
                            format!("{what}: a FIFO topic delivers to SQS queues only"),
                        ));
                    }
                    endpoint
                }
                _ => {
                    return Err(at(
                        sspan,
                        format!(
                            "{what}: name exactly one of `queue`, `function` or `endpoint` (an http(s) URL)"
                        ),
                    ));
                }
            };
            if s.raw_message_delivery && matches!(endpoint, Endpoint::Lambda(_)) {
                return Err(at(
                    sspan,
                    format!(
                        "{what}: raw_message_delivery is for queues and HTTP endpoints; a function always gets the SNS event"
                    ),
                ));
            }
            let filter_policy = match s.filter_policy {
                Some(p) => Some(
                    FilterPattern::parse_with(p.get_ref(), Dialect::Sns).map_err(|problem| {
                        at(
                            p.span(),
                            format!("{what}: Invalid filter policy: {problem}"),
                        )
                    })?,
                ),
                None => None,
            };
            let dead_letter_queue = match s.redrive_policy {
                Some(r) => {
                    let dlq = &r.get_ref().dead_letter_queue;
                    let Some(queue) = queues.get(dlq) else {
                        return Err(at(
                            r.span(),
                            format!(
                                "{what}: redrive_policy names `{dlq}`, which is not in [queues] (declared: {})",
                                known(queues.keys())
                            ),
                        ));
                    };
                    if queue.fifo_queue != t.fifo_topic {
                        return Err(at(
                            r.span(),
                            format!(
                                "{what}: the dead-letter queue of a {} topic's subscription must be a {} queue",
                                if t.fifo_topic { "FIFO" } else { "standard" },
                                if t.fifo_topic { "FIFO" } else { "standard" }
                            ),
                        ));
                    }
                    Some(r.into_inner().dead_letter_queue)
                }
                None => None,
            };
            subscriptions.push(TopicSubscription {
                endpoint,
                raw_message_delivery: s.raw_message_delivery,
                filter_policy,
                filter_policy_scope: s.filter_policy_scope,
                dead_letter_queue,
            });
        }
        topics.insert(
            name.clone(),
            Topic {
                name,
                fifo_topic: t.fifo_topic,
                content_based_deduplication: t.content_based_deduplication,
                subscriptions,
            },
        );
    }
    Ok(topics)
}

#[cfg(test)]
mod tests {
    use super::Endpoint;
    use crate::manifest::Manifest;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse("dev.toml".as_ref(), text).map_err(|e| e.to_string())
    }

    #[test]
    fn topics_and_their_subscriptions_are_read() {
        let m = parse(
            "[functions.f]\ncrate = \"f\"\n[queues.q]\n[queues.dlq]\n[topics.t]\n\
             [[topics.t.subscriptions]]\nqueue = \"q\"\nraw_message_delivery = true\n\
             redrive_policy = { dead_letter_queue = \"dlq\" }\n\
             [[topics.t.subscriptions]]\nfunction = \"f\"\nfilter_policy = '{\"kind\": [\"a\"]}'\n",
        )
        .expect("manifest");
        let t = &m.topics["t"];
        assert_eq!(t.subscriptions[0].endpoint, Endpoint::Sqs("q".into()));
        assert_eq!(t.subscriptions[0].dead_letter_queue.as_deref(), Some("dlq"));
        assert_eq!(t.subscriptions[1].endpoint, Endpoint::Lambda("f".into()));
        assert!(t.subscriptions[1].filter_policy.is_some());
    }

    #[test]
    fn bad_topics_are_refused_with_their_line() {
        let err = parse("[topics.\"a.fifo\"]\n").expect_err("needs fifo");
        assert!(err.contains("dev.toml:1:"), "{err}");
        let err = parse("[topics.t]\n[[topics.t.subscriptions]]\nqueue = \"nope\"\n")
            .expect_err("unknown queue");
        assert!(err.contains("dev.toml:3:"), "{err}");
        assert!(err.contains("queue `nope` is not in [queues]"), "{err}");
        let err = parse("[topics.t]\n[[topics.t.subscriptions]]\nendpoint = \"ftp://x\"\n")
            .expect_err("scheme");
        assert!(err.contains("http:// or https://"), "{err}");
        let err = parse(
            "[queues.q]\n[topics.t]\n[[topics.t.subscriptions]]\nqueue = \"q\"\nfilter_policy = '{\"a\": 1}'\n",
        )
        .expect_err("policy");
        assert!(err.contains("Invalid filter policy"), "{err}");
        let err = parse(
            "[functions.f]\ncrate = \"f\"\n[topics.t]\n[[topics.t.subscriptions]]\nfunction = \"f\"\nraw_message_delivery = true\n",
        )
        .expect_err("raw to lambda");
        assert!(err.contains("raw_message_delivery is for queues"), "{err}");
    }
}

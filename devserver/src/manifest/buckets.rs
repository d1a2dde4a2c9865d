//! `[buckets.<name>]` in `dev.toml`: the S3 buckets of the stack, created
//! on `woocom-dev up` and reconciled on edit. Field names follow
//! Terraform's `aws_s3_bucket_cors_configuration` (`cors_rule`) and
//! `aws_s3_bucket_notification` (`lambda_function`, `queue`, `topic`,
//! with `events`, `filter_prefix`, `filter_suffix`), naming the stack's
//! functions, queues and topics instead of ARNs.
//!
//! ```toml
//! [buckets.product-images]
//! cors_rule = [
//!   { allowed_origins = ["http://localhost:4003"], allowed_methods = ["PUT", "POST"],
//!     allowed_headers = ["*"], expose_headers = ["ETag"], max_age_seconds = 3000 },
//! ]
//! lambda_function = [
//!   { function = "thumbnail", events = ["s3:ObjectCreated:*"], filter_prefix = "uploads/" },
//! ]
//! queue = [{ queue = "uploads", events = ["s3:ObjectRemoved:*"] }]
//! topic = [{ topic = "files", events = ["s3:ObjectCreated:Put"], filter_suffix = ".pdf" }]
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Function, ManifestError, Queue, Topic};
use crate::s3::cors::{self, CorsRule};

/// Event types S3 notifications accept
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html>).
/// The local endpoint emits the `ObjectCreated` and `ObjectRemoved` ones.
pub const EVENT_TYPES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
];

/// A bucket as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub name: String,
    pub cors_rule: Vec<CorsRule>,
    pub notifications: Vec<Notification>,
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum NotificationTarget {
    Function(String),
    Queue(String),
    Topic(String),
}

/// One notification configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// S3's configuration id (`<bucket>-<kind>-<n>` unless given).
    pub id: String,
    pub target: NotificationTarget,
    pub events: Vec<String>,
    pub filter_prefix: Option<String>,
    pub filter_suffix: Option<String>,
}

impl Notification {
    /// Whether `event` (`ObjectCreated:Put`) and `key` match.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let wanted = self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            match e.strip_suffix('*') {
                Some(family) => event.starts_with(family),
                None => e == event,
            }
        });
        wanted
            && self
                .filter_prefix
                .as_deref()
                .is_none_or(|p| key.starts_with(p))
            && self
                .filter_suffix
                .as_deref()
                .is_none_or(|s| key.ends_with(s))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBucket {
    #[serde(default)]
    cors_rule: Vec<Spanned<RawCorsRule>>,
    #[serde(default)]
    lambda_function: Vec<Spanned<RawNotification>>,
    #[serde(default)]
    queue: Vec<Spanned<RawNotification>>,
    #[serde(default)]
    topic: Vec<Spanned<RawNotification>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorsRule {
    id: Option<String>,
    allowed_origins: Vec<String>,
    allowed_methods: Vec<String>,
    #[serde(default)]
    allowed_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    max_age_seconds: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotification {
    id: Option<String>,
    function: Option<String>,
    queue: Option<String>,
    topic: Option<String>,
    events: Vec<String>,
    filter_prefix: Option<String>,
    filter_suffix: Option<String>,
}

/// S3's bucket naming rules
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>).
pub fn name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Some("bucket names are 3 to 63 characters long");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return Some("bucket names hold lowercase letters, digits, dots and hyphens only");
    }
    let first_last = [bytes[0], bytes[bytes.len() - 1]];
    if !first_last
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Some("bucket names begin and end with a letter or a digit");
    }
    if name.contains("..") {
        return Some("bucket names hold no two adjacent dots");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("bucket names are not formatted as an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
        return Some("bucket names do not use S3's reserved prefixes and suffixes");
    }
    None
}

/// Two filters overlap when one prefix starts the other and one suffix
/// ends the other (S3 refuses such configurations for a shared event type).
fn overlap(a: &Notification, b: &Notification) -> bool {
    let prefixes = {
        let (p, q) = (
            a.filter_prefix.as_deref().unwrap_or(""),
            b.filter_prefix.as_deref().unwrap_or(""),
        );
        p.starts_with(q) || q.starts_with(p)
    };
    let suffixes = {
        let (p, q) = (
            a.filter_suffix.as_deref().unwrap_or(""),
            b.filter_suffix.as_deref().unwrap_or(""),
        );
        p.ends_with(q) || q.ends_with(p)
    };
    let family = |e: &str| {
        let e = e.strip_prefix("s3:").unwrap_or(e);
        e.split(':').next().unwrap_or(e).to_owned()
    };
    let shared = a.events.iter().any(|x| {
        b.events
            .iter()
            .any(|y| x == y || (x.ends_with('*') || y.ends_with('*')) && family(x) == family(y))
    });
    prefixes && suffixes && shared
}

pub(super) fn parse(
    raw: BTreeMap<Spanned<String>, Spanned<RawBucket>>,
    functions: &BTreeMap<String, Function>,
    queues: &BTreeMap<String, Queue>,
    topics: &BTreeMap<String, Topic>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Bucket>, ManifestError> {
    let mut buckets = BTreeMap::new();
    for (name, bucket) in raw {
        let span = name.span();
        let name = name.into_inner();
        if let Some(problem) = name_problem(&name) {
            return Err(at(span, format!("bucket name `{name}`: {problem}")));
        }
        let b = bucket.into_inner();
        let mut cors_rule = Vec::new();
        for rule in b.cors_rule {
            let rule_span = rule.span();
            let r = rule.into_inner();
            let rule = CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers,
                expose_headers: r.expose_headers,
                max_age_seconds: r.max_age_seconds,
            };
            if let Err(problem) = cors::validate(std::slice::from_ref(&rule)) {
                return Err(at(
                    rule_span,
                    format!("bucket `{name}`: cors_rule: {problem}"),
                ));
            }
            cors_rule.push(rule);
        }
        if cors_rule.len() > cors::MAX_RULES {
            return Err(at(
                span,
                format!(
                    "bucket `{name}`: at most {} cors_rule entries",
                    cors::MAX_RULES
                ),
            ));
        }
        let mut notifications: Vec<Notification> = Vec::new();
        for (kind, list) in [
            ("lambda_function", b.lambda_function),
            ("queue", b.queue),
            ("topic", b.topic),
        ] {
            for (i, n) in list.into_iter().enumerate() {
                let n_span = n.span();
                let n = n.into_inner();
                let fail = |problem: String| {
                    at(
                        n_span.clone(),
                        format!("bucket `{name}`: {kind}: {problem}"),
                    )
                };
                let target = match (kind, n.function, n.queue, n.topic) {
                    ("lambda_function", Some(f), None, None) => {
                        if !functions.contains_key(&f) {
                            return Err(fail(format!("no function `{f}` in [functions]")));
                        }
                        NotificationTarget::Function(f)
                    }
                    ("queue", None, Some(q), None) => {
                        let Some(queue) = queues.get(&q) else {
                            return Err(fail(format!("no queue `{q}` in [queues]")));
                        };
                        // S3 cannot notify FIFO queues.
                        if queue.fifo_queue {
                            return Err(fail(format!(
                                "queue `{q}` is FIFO; S3 event notifications go to standard queues only"
                            )));
                        }
                        NotificationTarget::Queue(q)
                    }
                    ("topic", None, None, Some(t)) => {
                        let Some(topic) = topics.get(&t) else {
                            return Err(fail(format!("no topic `{t}` in [topics]")));
                        };
                        if topic.fifo_topic {
                            return Err(fail(format!(
                                "topic `{t}` is FIFO; S3 event notifications go to standard topics only"
                            )));
                        }
                        NotificationTarget::Topic(t)
                    }
                    _ => {
                        let field = match kind {
                            "lambda_function" => "function",
                            other => other,
                        };
                        return Err(fail(format!(
                            "name the target with `{field} = \"...\"` (and no other target field)"
                        )));
                    }
                };
                if n.events.is_empty() {
                    return Err(fail("`events` needs at least one event type".to_owned()));
                }
                for e in &n.events {
                    if !EVENT_TYPES.contains(&e.as_str()) {
                        return Err(fail(format!(
                            "unknown event type `{e}` (for example s3:ObjectCreated:* or s3:ObjectRemoved:Delete)"
                        )));
                    }
                }
                let notification = Notification {
                    id: n.id.unwrap_or_else(|| format!("{name}-{kind}-{}", i + 1)),
                    target,
                    events: n.events,
                    filter_prefix: n.filter_prefix.filter(|p| !p.is_empty()),
                    filter_suffix: n.filter_suffix.filter(|s| !s.is_empty()),
                };
                if let Some(other) = notifications.iter().find(|o| overlap(o, &notification)) {
                    return Err(fail(format!(
                        "Configurations overlap. Configurations on the same bucket cannot share a common event type (overlaps `{}`; give them prefixes or suffixes that do not overlap)",
                        other.id
                    )));
                }
                notifications.push(notification);
            }
        }
        buckets.insert(
            name.clone(),
            Bucket {
                name,
                cors_rule,
                notifications,
            },
        );
    }
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> Notification {
        Notification {
            id: "x".into(),
            target: NotificationTarget::Function("f".into()),
            events: events.iter().map(|s| s.to_string()).collect(),
            filter_prefix: prefix.map(str::to_owned),
            filter_suffix: suffix.map(str::to_owned),
        }
    }

    #[test]
    fn events_match_by_family_and_exact_name_with_filters() {
        let all = n(&["s3:ObjectCreated:*"], Some("uploads/"), Some(".jpg"));
        assert!(all.matches("ObjectCreated:Put", "uploads/a.jpg"));
        assert!(all.matches("ObjectCreated:CompleteMultipartUpload", "uploads/b.jpg"));
        assert!(!all.matches("ObjectRemoved:Delete", "uploads/a.jpg"));
        assert!(!all.matches("ObjectCreated:Put", "other/a.jpg"));
        assert!(!all.matches("ObjectCreated:Put", "uploads/a.png"));
        let put = n(&["s3:ObjectCreated:Put"], None, None);
        assert!(put.matches("ObjectCreated:Put", "k"));
        assert!(!put.matches("ObjectCreated:Post", "k"));
    }

    #[test]
    fn overlapping_configurations_are_found() {
        assert!(overlap(
            &n(&["s3:ObjectCreated:*"], Some("a/"), None),
            &n(&["s3:ObjectCreated:Put"], Some("a/b/"), None)
        ));
        assert!(!overlap(
            &n(&["s3:ObjectCreated:*"], Some("a/"), None),
            &n(&["s3:ObjectCreated:*"], Some("b/"), None)
        ));
        assert!(!overlap(
            &n(&["s3:ObjectCreated:*"], None, Some(".jpg")),
            &n(&["s3:ObjectCreated:*"], None, Some(".png"))
        ));
        assert!(!overlap(
            &n(&["s3:ObjectCreated:*"], None, None),
            &n(&["s3:ObjectRemoved:*"], None, None)
        ));
    }

    fn load(text: &str) -> Result<crate::manifest::Manifest, ManifestError> {
        crate::manifest::Manifest::parse(std::path::Path::new("dev.toml"), text)
    }

    const STACK: &str = r#"
[functions.thumbnail]
crate = "woocom-probe"

[queues.removed]
[queues."ordered.fifo"]
fifo_queue = true

[buckets.product-images]
cors_rule = [{ allowed_origins = ["*"], allowed_methods = ["PUT"] }]
lambda_function = [{ function = "thumbnail", events = ["s3:ObjectCreated:*"], filter_prefix = "uploads/" }]
queue = [{ queue = "removed", events = ["s3:ObjectRemoved:*"] }]
"#;

    #[test]
    fn buckets_parse_with_cors_and_notifications() {
        let m = load(STACK).expect("valid");
        let b = &m.buckets["product-images"];
        assert_eq!(b.cors_rule[0].allowed_methods, ["PUT"]);
        assert_eq!(b.notifications.len(), 2);
        assert_eq!(
            b.notifications[0].target,
            NotificationTarget::Function("thumbnail".into())
        );
        assert_eq!(b.notifications[0].id, "product-images-lambda_function-1");
    }

    #[test]
    fn mistakes_name_the_line_and_the_fix() {
        let cases = [
            (
                STACK.replace("function = \"thumbnail\"", "function = \"thumb\""),
                11,
                "no function `thumb`",
            ),
            (
                STACK.replace("queue = \"removed\"", "queue = \"ordered.fifo\""),
                12,
                "FIFO",
            ),
            (
                STACK.replace("s3:ObjectRemoved:*", "s3:ObjectDeleted"),
                12,
                "unknown event type `s3:ObjectDeleted`",
            ),
            (
                STACK.replace("[\"PUT\"]", "[\"PATCH\"]"),
                10,
                "Unsupported method is PATCH",
            ),
            (
                STACK.replace("buckets.product-images", "buckets.Product_Images"),
                9,
                "bucket name `Product_Images`",
            ),
            (
                STACK
                    .replace("s3:ObjectRemoved:*", "s3:ObjectCreated:Put")
                    .replace(
                        "events = [\"s3:ObjectCreated:Put\"] }]",
                        "events = [\"s3:ObjectCreated:Put\"], filter_prefix = \"uploads/a/\" }]",
                    ),
                12,
                "Configurations overlap",
            ),
        ];
        for (text, line, message) in cases {
            let err = load(&text).expect_err(message);
            assert!(err.message.contains(message), "{err}");
            assert_eq!(err.line, line, "{err}");
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(name_problem("product-images").is_none());
        assert!(name_problem("my.bucket.1").is_none());
        assert!(name_problem("ab").is_some());
        assert!(name_problem("Upper").is_some());
        assert!(name_problem("under_score").is_some());
        assert!(name_problem("-start").is_some());
        assert!(name_problem("a..b").is_some());
        assert!(name_problem("192.168.1.1").is_some());
    }
}

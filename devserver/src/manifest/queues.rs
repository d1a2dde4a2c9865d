//! `[queues.<name>]` in `dev.toml`: the SQS queues of the stack, created or
//! reconciled on `woocom-dev up` and on edit. Field names and ranges are
//! those of Terraform's `aws_sqs_queue` and SQS's `CreateQueue`.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>
//!
//! ```toml
//! [queues.orders]
//! visibility_timeout_seconds = 30      # 0-43200
//! message_retention_seconds = 345600   # 60-1209600
//! delay_seconds = 0                    # 0-900
//! max_message_size = 1048576           # 1024-1048576
//! receive_wait_time_seconds = 0        # 0-20
//! redrive_policy = { dead_letter_queue = "orders-dlq", max_receive_count = 3 }
//!
//! [queues."orders-dlq"]
//! redrive_allow_policy = "allowAll"     # allowAll | denyAll | byQueue
//!
//! [queues."payments.fifo"]
//! fifo_queue = true                     # the name must end in .fifo
//! content_based_deduplication = true
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ManifestError;

/// SQS's defaults and limits.
pub const DEFAULT_VISIBILITY_TIMEOUT: u32 = 30;
pub const DEFAULT_RETENTION: u32 = 345_600;
pub const MAX_MESSAGE_SIZE: u32 = 1_048_576;

/// A queue as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub name: String,
    pub fifo_queue: bool,
    pub content_based_deduplication: bool,
    pub visibility_timeout_seconds: u32,
    pub message_retention_seconds: u32,
    pub delay_seconds: u32,
    pub max_message_size: u32,
    pub receive_wait_time_seconds: u32,
    pub redrive_policy: Option<RedrivePolicy>,
    /// `allowAll` (default), `denyAll`, or `byQueue` with `source_queues`.
    pub redrive_allow_policy: Option<String>,
    pub source_queues: Vec<String>,
}

/// Where messages go after `max_receive_count` receives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedrivePolicy {
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    #[serde(default)]
    fifo_queue: bool,
    #[serde(default)]
    content_based_deduplication: bool,
    visibility_timeout_seconds: Option<Spanned<u32>>,
    message_retention_seconds: Option<Spanned<u32>>,
    delay_seconds: Option<Spanned<u32>>,
    max_message_size: Option<Spanned<u32>>,
    receive_wait_time_seconds: Option<Spanned<u32>>,
    redrive_policy: Option<Spanned<RedrivePolicy>>,
    redrive_allow_policy: Option<Spanned<String>>,
    #[serde(default)]
    source_queues: Vec<String>,
}

/// SQS's rule for queue names: 1-80 letters, digits, `-` and `_`, and a
/// FIFO queue's name ends in `.fifo`.
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
        && name.len() <= 80
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn parse(
    raw: BTreeMap<Spanned<String>, Spanned<RawQueue>>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Queue>, ManifestError> {
    let mut queues = BTreeMap::new();
    let mut dead_letters: Vec<(String, Spanned<RedrivePolicy>)> = Vec::new();
    for (name, queue) in raw {
        let span = name.span();
        let name = name.into_inner();
        let q = queue.into_inner();
        if !name_ok(&name, q.fifo_queue) {
            let why = if q.fifo_queue {
                "a FIFO queue's name is 1-75 letters, digits, `-` and `_`, then `.fifo`"
            } else if name.ends_with(".fifo") {
                "a name ending in `.fifo` needs `fifo_queue = true`"
            } else {
                "SQS allows 1-80 letters, digits, `-` and `_`"
            };
            return Err(at(span, format!("queue name `{name}`: {why}")));
        }
        if q.content_based_deduplication && !q.fifo_queue {
            return Err(at(
                span,
                format!("queue `{name}`: content_based_deduplication is for FIFO queues only"),
            ));
        }
        let ranged = |v: Option<Spanned<u32>>,
                      field: &str,
                      range: std::ops::RangeInclusive<u32>,
                      default: u32|
         -> Result<u32, ManifestError> {
            match v {
                Some(v) if !range.contains(v.get_ref()) => Err(at(
                    v.span(),
                    format!(
                        "queue `{name}`: {field} must be between {} and {} (SQS's range)",
                        range.start(),
                        range.end()
                    ),
                )),
                Some(v) => Ok(v.into_inner()),
                None => Ok(default),
            }
        };
        let visibility = ranged(
            q.visibility_timeout_seconds,
            "visibility_timeout_seconds",
            0..=43_200,
            DEFAULT_VISIBILITY_TIMEOUT,
        )?;
        let retention = ranged(
            q.message_retention_seconds,
            "message_retention_seconds",
            60..=1_209_600,
            DEFAULT_RETENTION,
        )?;
        let delay = ranged(q.delay_seconds, "delay_seconds", 0..=900, 0)?;
        let size = ranged(
            q.max_message_size,
            "max_message_size",
            1024..=MAX_MESSAGE_SIZE,
            MAX_MESSAGE_SIZE,
        )?;
        let wait = ranged(
            q.receive_wait_time_seconds,
            "receive_wait_time_seconds",
            0..=20,
            0,
        )?;
        let allow = match q.redrive_allow_policy {
            Some(p) if !["allowAll", "denyAll", "byQueue"].contains(&p.get_ref().as_str()) => {
                return Err(at(
                    p.span(),
                    format!(
                        "queue `{name}`: redrive_allow_policy is allowAll, denyAll or byQueue, not `{}`",
                        p.get_ref()
                    ),
                ));
            }
            Some(p) => Some(p.into_inner()),
            None => None,
        };
        let redrive = match q.redrive_policy {
            Some(p) => {
                if !(1..=1000).contains(&p.get_ref().max_receive_count) {
                    return Err(at(
                        p.span(),
                        format!(
                            "queue `{name}`: redrive_policy.max_receive_count must be between 1 and 1000"
                        ),
                    ));
                }
                let policy = p.get_ref().clone();
                dead_letters.push((name.clone(), p));
                Some(policy)
            }
            None => None,
        };
        queues.insert(
            name.clone(),
            Queue {
                name,
                fifo_queue: q.fifo_queue,
                content_based_deduplication: q.content_based_deduplication,
                visibility_timeout_seconds: visibility,
                message_retention_seconds: retention,
                delay_seconds: delay,
                max_message_size: size,
                receive_wait_time_seconds: wait,
                redrive_policy: redrive,
                redrive_allow_policy: allow,
                source_queues: q.source_queues,
            },
        );
    }
    // A dead-letter queue is declared too, and of the same kind.
    for (source, policy) in dead_letters {
        let dlq = &policy.get_ref().dead_letter_queue;
        let Some(target) = queues.get(dlq) else {
            let known: Vec<&str> = queues.keys().map(String::as_str).collect();
            return Err(at(
                policy.span(),
                format!(
                    "queue `{source}`: redrive_policy names `{dlq}`, which is not a queue in dev.toml (declared: {})",
                    known.join(", ")
                ),
            ));
        };
        if target.fifo_queue != queues[&source].fifo_queue {
            return Err(at(
                policy.span(),
                format!(
                    "queue `{source}`: the dead-letter queue of a {} queue must be a {} queue too",
                    if target.fifo_queue {
                        "standard"
                    } else {
                        "FIFO"
                    },
                    if target.fifo_queue {
                        "standard"
                    } else {
                        "FIFO"
                    }
                ),
            ));
        }
        if dlq == &source {
            return Err(at(
                policy.span(),
                format!("queue `{source}`: a queue cannot be its own dead-letter queue"),
            ));
        }
    }
    Ok(queues)
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse("dev.toml".as_ref(), text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_sqss() {
        let m = parse("[queues.orders]\n").expect("manifest");
        let q = &m.queues["orders"];
        assert_eq!(q.visibility_timeout_seconds, 30);
        assert_eq!(q.message_retention_seconds, 345_600);
        assert_eq!(q.max_message_size, 1_048_576);
        assert!(!q.fifo_queue);
    }

    #[test]
    fn names_ranges_and_dead_letter_queues_are_checked_with_their_line() {
        let err = parse("[queues.\"a.fifo\"]\n").expect_err("needs fifo");
        assert!(err.contains("dev.toml:1:"), "{err}");
        assert!(err.contains("needs `fifo_queue = true`"), "{err}");
        let err = parse("[queues.q]\nvisibility_timeout_seconds = 50000\n").expect_err("range");
        assert!(err.contains("dev.toml:2:"), "{err}");
        let err = parse(
            "[queues.q]\nredrive_policy = { dead_letter_queue = \"dlq\", max_receive_count = 3 }\n",
        )
        .expect_err("unknown dlq");
        assert!(err.contains("names `dlq`, which is not a queue"), "{err}");
        let err = parse(
            "[queues.\"q.fifo\"]\nfifo_queue = true\nredrive_policy = { dead_letter_queue = \"dlq\", max_receive_count = 3 }\n[queues.dlq]\n",
        )
        .expect_err("kind");
        assert!(err.contains("must be a FIFO queue too"), "{err}");
    }

    #[test]
    fn asynchronous_destinations_name_a_standard_queue_of_the_stack() {
        let f = "[functions.f]\ncrate = \"f\"\n";
        let err = parse(&format!("{f}on_failure = \"queue:nope\"\n")).expect_err("unknown");
        assert!(err.contains("dev.toml:3:"), "{err}");
        assert!(
            err.contains("on_failure: queue `nope` is not in [queues]"),
            "{err}"
        );
        let err = parse(&format!("{f}on_success = \"bus:t\"\n")).expect_err("kind");
        assert!(
            err.contains("must be `queue:<name>`, `topic:<name>`"),
            "{err}"
        );
        let err = parse(&format!("{f}dead_letter = \"function:f\"\n")).expect_err("dlq kind");
        assert!(err.contains("cannot be the target here"), "{err}");
        let err = parse(&format!(
            "{f}on_failure = \"queue:q.fifo\"\n[queues.\"q.fifo\"]\nfifo_queue = true\n"
        ))
        .expect_err("fifo");
        assert!(err.contains("is a FIFO queue"), "{err}");
        let m = parse(&format!("{f}on_failure = \"queue:q\"\n[queues.q]\n")).expect("ok");
        assert_eq!(
            m.functions["f"].event_invoke.on_failure,
            Some(crate::manifest::Destination::Queue("q".into()))
        );
    }
}

//! `[[subscriptions]]` in `dev.toml`: event source mappings (a table's
//! stream, or an SQS queue, delivered to a function), with Lambda's
//! parameters and ranges; and `[streams]`, local-only knobs for tests.
//!
//! ```toml
//! [[subscriptions]]
//! queue = "orders"                            # an SQS queue of [queues]
//! function = "fulfil"
//! batch_size = 10                             # 1-10 (up to 10000 with a batching window)
//! maximum_batching_window_in_seconds = 0      # 0-300
//! report_batch_item_failures = true
//! maximum_concurrency = 5                     # 2-1000 (ScalingConfig)
//! filters = ['{"body": {"kind": ["order"]}}']
//! ```
//!
//! ```toml
//! [[subscriptions]]
//! table = "orders"
//! function = "notify"
//! starting_position = "TRIM_HORIZON"          # or LATEST; required, as in AWS
//! batch_size = 100                            # 1-10000
//! maximum_batching_window_in_seconds = 0      # 0-300
//! maximum_retry_attempts = -1                 # -1 (until the record expires) or 0-10000
//! maximum_record_age_in_seconds = -1          # -1 or 60-604800
//! bisect_batch_on_function_error = false
//! report_batch_item_failures = false          # FunctionResponseTypes = ["ReportBatchItemFailures"]
//! filters = ['{"eventName": ["INSERT"]}']     # up to 5 EventBridge-style patterns
//! on_failure = "dlq:orders-failures"          # a local dead-letter queue,
//!                                             # or "queue:<name>" / "topic:<name>",
//!                                             # a queue or topic of the stack
//!
//! [streams]                                   # local only, never deployed
//! retry_backoff_ms = 1000
//! record_age_speedup = 1
//! ```
//!
//! Field names are those of Terraform's `aws_lambda_event_source_mapping`.
//! Ranges: <https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html>

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::destination::{Accepts, Destination};
use super::queues::Queue;
use super::{Function, ManifestError, Table, Topic};
use crate::event_pattern::FilterPattern;

/// What a mapping reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingSource {
    /// A DynamoDB table's stream.
    Table(String),
    /// An SQS queue.
    Queue(String),
}

/// One event source mapping, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    /// Names the mapping in `woocom-dev streams` and its checkpoint
    /// (default `<function>-<table or queue>`).
    pub name: String,
    #[serde(flatten)]
    pub source: MappingSource,
    pub function: String,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u32,
    pub starting_position: StartingPosition,
    /// -1: retry until the record expires.
    pub maximum_retry_attempts: i32,
    /// -1: no limit.
    pub maximum_record_age_in_seconds: i32,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// Filter patterns (`FilterCriteria`), parsed at load; serialized as
    /// written.
    pub filters: Vec<FilterPattern>,
    /// Where records that exhaust retries or age go, e.g. `dlq:orders-failures`.
    pub on_failure: Option<String>,
    /// SQS only: batches in flight at once (`ScalingConfig.MaximumConcurrency`).
    pub maximum_concurrency: Option<u32>,
}

impl Subscription {
    /// The table whose stream this mapping reads.
    pub fn table(&self) -> Option<&str> {
        match &self.source {
            MappingSource::Table(t) => Some(t),
            MappingSource::Queue(_) => None,
        }
    }

    /// The queue this mapping reads.
    pub fn queue(&self) -> Option<&str> {
        match &self.source {
            MappingSource::Queue(q) => Some(q),
            MappingSource::Table(_) => None,
        }
    }

    /// The table or queue's name.
    pub fn source_name(&self) -> &str {
        match &self.source {
            MappingSource::Table(n) | MappingSource::Queue(n) => n,
        }
    }

    /// Lambda's `FunctionResponseTypes`.
    pub fn function_response_types(&self) -> Vec<&'static str> {
        if self.report_batch_item_failures {
            vec!["ReportBatchItemFailures"]
        } else {
            Vec::new()
        }
    }

    /// The SQS queue of the stack that gets the on-failure records
    /// (`on_failure = "queue:<name>"`).
    pub fn on_failure_queue(&self) -> Option<&str> {
        self.on_failure
            .as_deref()
            .and_then(|d| d.strip_prefix("queue:"))
    }

    /// The SNS topic of the stack that gets the on-failure records
    /// (`on_failure = "topic:<name>"`).
    pub fn on_failure_topic(&self) -> Option<&str> {
        self.on_failure
            .as_deref()
            .and_then(|d| d.strip_prefix("topic:"))
    }

    /// The local dead-letter queue's name (`on_failure` without `dlq:`).
    pub fn dlq(&self) -> Option<&str> {
        self.on_failure
            .as_deref()
            .and_then(|d| d.strip_prefix("dlq:"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum StartingPosition {
    #[serde(rename = "TRIM_HORIZON")]
    TrimHorizon,
    #[serde(rename = "LATEST")]
    Latest,
}

/// `[streams]`: local knobs, not AWS settings (not deployed).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsSettings {
    /// Wait before retrying a failed batch (doubling up to 30 s). Lambda
    /// backs off too; tests set a few milliseconds.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Record ages are measured this many times faster than the clock, so
    /// `maximum_record_age_in_seconds` (at least 60 in AWS) can be tested
    /// in a second.
    #[serde(default = "one")]
    pub record_age_speedup: u32,
}

impl Default for StreamsSettings {
    fn default() -> Self {
        StreamsSettings {
            retry_backoff_ms: default_retry_backoff_ms(),
            record_age_speedup: 1,
        }
    }
}

fn default_retry_backoff_ms() -> u64 {
    1000
}
fn one() -> u32 {
    1
}

/// Lambda's default and maximum batch size for DynamoDB streams.
pub const DEFAULT_BATCH_SIZE: u32 = 100;
pub const MAX_BATCH_SIZE: u32 = 10_000;
/// Lambda allows five filters per mapping (a quota that can be raised).
pub const MAX_FILTERS: usize = 5;

// ---- raw (as written) ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscription {
    name: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    function: Spanned<String>,
    maximum_concurrency: Option<Spanned<i64>>,
    batch_size: Option<Spanned<i64>>,
    maximum_batching_window_in_seconds: Option<Spanned<i64>>,
    starting_position: Option<Spanned<String>>,
    maximum_retry_attempts: Option<Spanned<i64>>,
    maximum_record_age_in_seconds: Option<Spanned<i64>>,
    #[serde(default)]
    bisect_batch_on_function_error: bool,
    #[serde(default)]
    report_batch_item_failures: bool,
    filters: Option<Spanned<Vec<Spanned<String>>>>,
    on_failure: Option<Spanned<String>>,
}

fn known(names: impl Iterator<Item = impl AsRef<str>>) -> String {
    let list: Vec<String> = names.map(|n| n.as_ref().to_owned()).collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// Validates `[[subscriptions]]` against the tables and functions declared.
pub(super) fn parse(
    raw: Vec<Spanned<RawSubscription>>,
    tables: &BTreeMap<String, Table>,
    queues: &BTreeMap<String, Queue>,
    topics: &BTreeMap<String, Topic>,
    functions: &BTreeMap<String, Function>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<Vec<Subscription>, ManifestError> {
    let mut out: Vec<Subscription> = Vec::new();
    for entry in raw {
        let span = entry.span();
        let s = entry.into_inner();
        let source = match (&s.table, &s.queue) {
            (Some(t), None) => {
                let table = t.get_ref();
                let Some(declared) = tables.get(table) else {
                    return Err(at(
                        t.span(),
                        format!(
                            "subscription: unknown table `{table}` (declared: {})",
                            known(tables.keys())
                        ),
                    ));
                };
                if declared.stream.is_none() {
                    return Err(at(
                        t.span(),
                        format!(
                            "subscription: table `{table}` has no stream; add `stream = \"NEW_AND_OLD_IMAGES\"` (or another view type) to [tables.{table}]"
                        ),
                    ));
                }
                MappingSource::Table(table.clone())
            }
            (None, Some(q)) => {
                let queue = q.get_ref();
                if !queues.contains_key(queue) {
                    return Err(at(
                        q.span(),
                        format!(
                            "subscription: unknown queue `{queue}` (declared: {})",
                            known(queues.keys())
                        ),
                    ));
                }
                MappingSource::Queue(queue.clone())
            }
            _ => {
                return Err(at(
                    span,
                    "subscription: name exactly one source, `table = \"...\"` (its stream) or `queue = \"...\"`".to_owned(),
                ));
            }
        };
        let table = source_name(&source);
        let function = s.function.get_ref();
        if !functions.contains_key(function) {
            return Err(at(
                s.function.span(),
                format!(
                    "subscription: unknown function `{function}` (declared: {})",
                    known(functions.keys())
                ),
            ));
        }
        let what = format!("subscription {table} -> {function}");
        if let (MappingSource::Queue(q), Some(f)) = (&source, functions.get(function)) {
            // CreateEventSourceMapping refuses this: a batch could become
            // visible again while the function still works on it.
            let visibility = queues[q].visibility_timeout_seconds;
            if f.timeout.as_secs_f64() > f64::from(visibility) {
                return Err(at(
                    span,
                    format!(
                        "{what}: Queue visibility timeout: {visibility} seconds is less than Function timeout: {} seconds (raise [queues.{q}] visibility_timeout_seconds, or lower the function's timeout)",
                        f.timeout.as_secs_f64()
                    ),
                ));
            }
        }
        let ranged = |v: &Option<Spanned<i64>>,
                      field: &str,
                      ok: &dyn Fn(i64) -> bool,
                      rule: &str,
                      default: i64|
         -> Result<i64, ManifestError> {
            match v {
                Some(v) if !ok(*v.get_ref()) => Err(at(
                    v.span(),
                    format!("{what}: {field} = {} {rule}", v.get_ref()),
                )),
                Some(v) => Ok(*v.get_ref()),
                None => Ok(default),
            }
        };
        let window = ranged(
            &s.maximum_batching_window_in_seconds,
            "maximum_batching_window_in_seconds",
            &|v| (0..=300).contains(&v),
            "is out of range: Lambda allows 0 to 300",
            0,
        )?;
        let is_queue = matches!(source, MappingSource::Queue(_));
        let batch_size = if is_queue {
            // SQS: 1-10, or up to 10000 with a batching window.
            // <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html>
            let max = if window > 0 { 10_000 } else { 10 };
            ranged(
                &s.batch_size,
                "batch_size",
                &|v| (1..=max).contains(&v),
                "is out of range: Lambda allows 1 to 10 for SQS, or up to 10000 with maximum_batching_window_in_seconds",
                10,
            )?
        } else {
            ranged(
                &s.batch_size,
                "batch_size",
                &|v| (1..=i64::from(MAX_BATCH_SIZE)).contains(&v),
                "is out of range: Lambda allows 1 to 10000 for DynamoDB streams",
                i64::from(DEFAULT_BATCH_SIZE),
            )?
        };
        let maximum_concurrency = match (&s.maximum_concurrency, is_queue) {
            (Some(c), false) => {
                return Err(at(
                    c.span(),
                    format!("{what}: maximum_concurrency is for SQS queues only"),
                ));
            }
            (Some(c), true) if !(2..=1000).contains(c.get_ref()) => {
                return Err(at(
                    c.span(),
                    format!(
                        "{what}: maximum_concurrency = {} is out of range: Lambda allows 2 to 1000",
                        c.get_ref()
                    ),
                ));
            }
            (Some(c), true) => Some(*c.get_ref() as u32),
            (None, _) => None,
        };
        if is_queue {
            // What only streams have is refused, not ignored.
            let stream_only = [
                (
                    "starting_position",
                    s.starting_position.as_ref().map(Spanned::span),
                ),
                (
                    "maximum_retry_attempts",
                    s.maximum_retry_attempts.as_ref().map(Spanned::span),
                ),
                (
                    "maximum_record_age_in_seconds",
                    s.maximum_record_age_in_seconds.as_ref().map(Spanned::span),
                ),
                ("on_failure", s.on_failure.as_ref().map(Spanned::span)),
            ];
            for (field, at_span) in stream_only {
                if let Some(sp) = at_span {
                    return Err(at(
                        sp,
                        format!(
                            "{what}: {field} is for DynamoDB streams; a queue's failed messages return to it and its redrive_policy moves them to a dead-letter queue"
                        ),
                    ));
                }
            }
            if s.bisect_batch_on_function_error {
                return Err(at(
                    span,
                    format!("{what}: bisect_batch_on_function_error is for DynamoDB streams"),
                ));
            }
        }
        let retries = ranged(
            &s.maximum_retry_attempts,
            "maximum_retry_attempts",
            &|v| (-1..=10_000).contains(&v),
            "is out of range: Lambda allows -1 (retry until the record expires) or 0 to 10000",
            -1,
        )?;
        let age = ranged(
            &s.maximum_record_age_in_seconds,
            "maximum_record_age_in_seconds",
            &|v| v == -1 || (60..=604_800).contains(&v),
            "is out of range: Lambda allows -1 (no limit) or 60 to 604800",
            -1,
        )?;
        let starting_position = match &s.starting_position {
            None if is_queue => StartingPosition::TrimHorizon,
            None => {
                return Err(at(
                    span,
                    format!(
                        "{what}: starting_position is required for a DynamoDB stream: \"TRIM_HORIZON\" or \"LATEST\""
                    ),
                ));
            }
            Some(p) => match p.get_ref().as_str() {
                "TRIM_HORIZON" => StartingPosition::TrimHorizon,
                "LATEST" => StartingPosition::Latest,
                other => {
                    return Err(at(
                        p.span(),
                        format!(
                            "{what}: starting_position `{other}` is not \"TRIM_HORIZON\" or \"LATEST\" (AT_TIMESTAMP is for Kinesis only)"
                        ),
                    ));
                }
            },
        };
        let mut filters = Vec::new();
        if let Some(list) = s.filters {
            if list.get_ref().len() > MAX_FILTERS {
                return Err(at(
                    list.span(),
                    format!("{what}: at most {MAX_FILTERS} filters per subscription"),
                ));
            }
            for f in list.into_inner() {
                let pattern = FilterPattern::parse(f.get_ref()).map_err(|problem| {
                    at(
                        f.span(),
                        format!("{what}: Invalid filter pattern definition. ({problem})"),
                    )
                })?;
                filters.push(pattern);
            }
        }
        let on_failure = match s.on_failure {
            Some(d) => {
                if let Some(target) = Destination::parse(d.get_ref())
                    .filter(|t| !matches!(t, Destination::Function(_)))
                {
                    target
                        .check(Accepts { function: false }, queues, topics, functions)
                        .map_err(|problem| at(d.span(), format!("{what}: on_failure {problem}")))?;
                    Some(d.into_inner())
                } else {
                    let name = d.get_ref().strip_prefix("dlq:").unwrap_or_default();
                    let ok = !name.is_empty()
                        && name.len() <= 80
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !ok {
                        return Err(at(
                            d.span(),
                            format!(
                                "{what}: on_failure `{}` must be `dlq:<name>` (1-80 letters, digits, `-`, `_`: a local dead-letter queue), `queue:<name>` or `topic:<name>` (an SQS queue or SNS topic of the stack)",
                                d.get_ref()
                            ),
                        ));
                    }
                    Some(d.into_inner())
                }
            }
            None => None,
        };
        let name = match s.name {
            Some(n) => {
                let ok = !n.get_ref().is_empty()
                    && n.get_ref()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(at(
                        n.span(),
                        format!(
                            "{what}: name `{}` may only contain letters, digits, `-` and `_`",
                            n.get_ref()
                        ),
                    ));
                }
                n.into_inner()
            }
            None => format!("{function}-{table}"),
        };
        if out.iter().any(|o| o.name == name) {
            return Err(at(
                span,
                format!(
                    "{what}: another subscription is already named `{name}`; give this one a `name`"
                ),
            ));
        }
        out.push(Subscription {
            name,
            source: source.clone(),
            function: function.clone(),
            batch_size: batch_size as u32,
            maximum_batching_window_in_seconds: window as u32,
            starting_position,
            maximum_retry_attempts: retries as i32,
            maximum_record_age_in_seconds: age as i32,
            bisect_batch_on_function_error: s.bisect_batch_on_function_error,
            report_batch_item_failures: s.report_batch_item_failures,
            filters,
            on_failure,
            maximum_concurrency,
        });
    }
    Ok(out)
}

fn source_name(source: &MappingSource) -> &str {
    match source {
        MappingSource::Table(n) | MappingSource::Queue(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use std::path::Path;

    const BASE: &str = r#"
[functions.notify]
crate = "woocom-probe"

[tables.orders]
partition_key = { name = "pk" }
stream = "NEW_AND_OLD_IMAGES"

[tables.plain]
partition_key = { name = "pk" }
"#;

    fn parse(sub: &str) -> Result<Manifest, crate::manifest::ManifestError> {
        Manifest::parse(
            Path::new("dev.toml"),
            &format!("{BASE}\n[[subscriptions]]\n{sub}"),
        )
    }

    #[test]
    fn defaults_follow_lambda() {
        let m = parse("table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"")
            .expect("valid");
        let s = &m.subscriptions[0];
        assert_eq!(s.name, "notify-orders");
        assert_eq!(s.batch_size, 100);
        assert_eq!(s.maximum_retry_attempts, -1);
        assert_eq!(s.maximum_record_age_in_seconds, -1);
        assert_eq!(s.maximum_batching_window_in_seconds, 0);
        assert!(s.function_response_types().is_empty());
    }

    #[test]
    fn unknown_table_function_and_streamless_table_are_located() {
        let err =
            parse("table = \"ordres\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"")
                .expect_err("unknown table");
        assert!(err.message.contains("unknown table `ordres`"), "{err}");
        assert_eq!(err.line, 13);
        let err = parse("table = \"orders\"\nfunction = \"nope\"\nstarting_position = \"LATEST\"")
            .expect_err("unknown function");
        assert!(err.message.contains("unknown function `nope`"), "{err}");
        assert_eq!(err.line, 14);
        let err = parse("table = \"plain\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"")
            .expect_err("no stream");
        assert!(err.message.contains("has no stream"), "{err}");
    }

    #[test]
    fn ranges_are_lambdas() {
        for (field, bad) in [
            ("batch_size", "0"),
            ("batch_size", "10001"),
            ("maximum_batching_window_in_seconds", "301"),
            ("maximum_retry_attempts", "-2"),
            ("maximum_retry_attempts", "10001"),
            ("maximum_record_age_in_seconds", "59"),
            ("maximum_record_age_in_seconds", "604801"),
        ] {
            let err = parse(&format!(
                "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"\n{field} = {bad}"
            ))
            .expect_err(field);
            assert!(err.message.contains(field), "{err}");
            assert_eq!(err.line, 16, "{err}");
        }
    }

    #[test]
    fn starting_position_is_required_and_checked() {
        let err = parse("table = \"orders\"\nfunction = \"notify\"").expect_err("required");
        assert!(
            err.message.contains("starting_position is required"),
            "{err}"
        );
        let err = parse(
            "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"AT_TIMESTAMP\"",
        )
        .expect_err("kinesis only");
        assert!(err.message.contains("AT_TIMESTAMP"), "{err}");
    }

    #[test]
    fn bad_filter_pattern_is_lambdas_message() {
        let err = parse(
            "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"\nfilters = ['{\"eventName\": \"INSERT\"}']",
        )
        .expect_err("bad filter");
        assert!(
            err.message.contains("Invalid filter pattern definition."),
            "{err}"
        );
        assert_eq!(err.line, 16);
    }

    #[test]
    fn on_failure_must_name_a_local_queue() {
        let err = parse(
            "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"\non_failure = \"arn:aws:sqs:us-east-1:1:q\"",
        )
        .expect_err("sqs arn");
        assert!(err.message.contains("dlq:<name>"), "{err}");
        let m = parse(
            "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"\non_failure = \"dlq:orders-failures\"",
        )
        .expect("valid");
        assert_eq!(m.subscriptions[0].dlq(), Some("orders-failures"));
        let err = parse(
            "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"\non_failure = \"queue:nope\"",
        )
        .expect_err("unknown queue");
        assert!(
            err.message
                .contains("on_failure queue `nope` is not in [queues]"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let sub = "table = \"orders\"\nfunction = \"notify\"\nstarting_position = \"LATEST\"";
        let err = parse(&format!("{sub}\n[[subscriptions]]\n{sub}")).expect_err("dup");
        assert!(
            err.message.contains("already named `notify-orders`"),
            "{err}"
        );
    }
}

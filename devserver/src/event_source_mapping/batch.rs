//! One batch, from invocation to a verdict on every record, with Lambda's
//! error handling for ordered sources:
//!
//! - a failed batch is retried, backing off, and blocks later records
//!   (`MaximumRetryAttempts`, -1: until the records expire);
//! - `BisectBatchOnFunctionError` splits a failed batch in two (splits do
//!   not count against `MaximumRetryAttempts`);
//! - `ReportBatchItemFailures` (`FunctionResponseTypes`): the function
//!   names failed records; processing resumes from the lowest failed one,
//!   and a malformed failure list fails the whole batch;
//! - records older than `MaximumRecordAgeInSeconds` are discarded before
//!   an invocation;
//! - discarded records produce the on-failure record Lambda sends to a
//!   `DestinationConfig.OnFailure` destination (locally: a dead-letter
//!   entry, with the records themselves for redrive).
//!
//! AWS: <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};

use super::source::SourceRecord;
use super::store::DlqEntry;
use super::{Mapping, MappingsCore, lock};
use crate::lambda::{InvokeRequest, InvokeResponse};

/// Longest wait between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a stream keeps records: with `MaximumRecordAgeInSeconds` -1 a
/// record older than this expires, so a poison record stops blocking.
const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How an invocation's answer reads.
pub(super) enum Outcome {
    Success,
    /// `ReportBatchItemFailures`: the indexes of the records the function
    /// named, in order (an ordered source resumes from the first).
    Partial(Vec<usize>),
    Failure(InvokeResponse),
    /// The function could not be invoked (not counted as a retry).
    NotInvoked(String),
}

/// Judges an answer per
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>:
/// success is an empty or null list, an empty or null response; a failure
/// entry with an empty, null or unknown `itemIdentifier` (or another key)
/// fails the whole batch.
pub(super) fn judge(
    response: &InvokeResponse,
    records: &[SourceRecord],
    report_failures: bool,
) -> Outcome {
    if response.function_error.is_some() {
        return Outcome::Failure(response.clone());
    }
    if !report_failures {
        return Outcome::Success;
    }
    let body: Value = if response.payload.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&response.payload) {
            Ok(v) => v,
            Err(_) => return Outcome::Failure(response.clone()),
        }
    };
    let failures = match &body {
        Value::Null => return Outcome::Success,
        Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(Value::Null) => return Outcome::Success,
            Some(Value::Array(list)) if list.is_empty() => return Outcome::Success,
            Some(Value::Array(list)) => list,
            Some(_) => return Outcome::Failure(response.clone()),
        },
        _ => return Outcome::Failure(response.clone()),
    };
    let mut failed: Vec<usize> = Vec::new();
    for f in failures {
        let id = f
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(index) = records.iter().position(|r| !id.is_empty() && r.id == id) else {
            return Outcome::Failure(response.clone());
        };
        failed.push(index);
    }
    failed.sort_unstable();
    failed.dedup();
    if failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial(failed)
    }
}

/// Records still to deliver, with the retries and invocations so far.
struct Work {
    records: Vec<SourceRecord>,
    retries: u32,
    invokes: u32,
}

impl MappingsCore {
    fn backoff(&self, mapping: &Mapping, attempt: u32) -> Duration {
        let base = Duration::from_millis(mapping.settings.retry_backoff_ms);
        base.saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF)
    }

    fn age(&self, mapping: &Mapping, r: &SourceRecord) -> Duration {
        SystemTime::now()
            .duration_since(r.arrival)
            .unwrap_or_default()
            .saturating_mul(mapping.settings.record_age_speedup.max(1))
    }

    /// Delivers one batch until every record is processed or discarded.
    /// Returns `false` when the mapping stops first (nothing of the batch
    /// is committed then).
    pub(super) async fn deliver(&self, mapping: &Mapping, batch: Vec<SourceRecord>) -> bool {
        let sub = &mapping.sub;
        let mut stop = mapping.stop.subscribe();
        let mut work: VecDeque<Work> = VecDeque::from([Work {
            records: batch,
            retries: 0,
            invokes: 0,
        }]);
        let max_age = if sub.maximum_record_age_in_seconds >= 0 {
            Duration::from_secs(sub.maximum_record_age_in_seconds as u64)
        } else {
            RETENTION
        };
        let mut last_failure: Option<InvokeResponse> = None;
        while let Some(Work {
            mut records,
            retries,
            invokes,
        }) = work.pop_front()
        {
            if mapping.stopping() {
                return false;
            }
            // Records past their age are discarded before any invocation.
            let expired = records
                .iter()
                .take_while(|r| self.age(mapping, r) > max_age)
                .count();
            if expired > 0 {
                let rest = records.split_off(expired);
                self.discard(
                    mapping,
                    &records,
                    "RecordAgeExceeded",
                    invokes,
                    last_failure.as_ref(),
                );
                records = rest;
                if records.is_empty() {
                    continue;
                }
            }
            let retry = |records: Vec<SourceRecord>, response: Option<InvokeResponse>| {
                let max = sub.maximum_retry_attempts;
                if max >= 0 && i64::from(retries) >= i64::from(max) {
                    self.discard(
                        mapping,
                        &records,
                        "RetryAttemptsExhausted",
                        invokes + 1,
                        response.as_ref(),
                    );
                    None
                } else {
                    Some(Work {
                        records,
                        retries: retries + 1,
                        invokes: invokes + 1,
                    })
                }
            };
            let again = match self.invoke(mapping, &records).await {
                Outcome::Success => {
                    lock(&mapping.activity).last_result = "OK".into();
                    last_failure = None;
                    None
                }
                Outcome::Partial(failed) => {
                    let index = failed[0];
                    mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                    lock(&mapping.activity).last_result = "PROBLEM: partial batch failure".into();
                    let rest = records.split_off(index);
                    // Bisect at the failed record: the rest is retried as a
                    // new batch; without bisect this counts as a retry.
                    if sub.bisect_batch_on_function_error && index > 0 {
                        work.push_front(Work {
                            records: rest,
                            retries,
                            invokes: invokes + 1,
                        });
                        None
                    } else {
                        retry(rest, None)
                    }
                }
                Outcome::Failure(response) => {
                    mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                    lock(&mapping.activity).last_result = "PROBLEM: Function call failed".into();
                    if sub.bisect_batch_on_function_error && records.len() > 1 {
                        let right = records.split_off(records.len() / 2);
                        for half in [right, records] {
                            work.push_front(Work {
                                records: half,
                                retries,
                                invokes: invokes + 1,
                            });
                        }
                        None
                    } else {
                        last_failure = Some(response.clone());
                        retry(records, Some(response))
                    }
                }
                Outcome::NotInvoked(error) => {
                    lock(&mapping.activity).last_result = format!("PROBLEM: {error}");
                    mapping.set_state("Retrying: the function could not be invoked");
                    if sleep(&mut stop, self.backoff(mapping, retries.min(5))).await {
                        return false;
                    }
                    work.push_front(Work {
                        records,
                        retries,
                        invokes,
                    });
                    None
                }
            };
            if let Some(next) = again {
                mapping.set_state(&format!("Retrying: attempt {}", next.retries));
                if sleep(&mut stop, self.backoff(mapping, next.retries - 1)).await {
                    return false;
                }
                work.push_front(next);
            }
        }
        mapping.set_state("Enabled");
        true
    }

    pub(super) async fn invoke(&self, mapping: &Mapping, records: &[SourceRecord]) -> Outcome {
        let payload = mapping.source.payload(records);
        mapping.counters.batches.fetch_add(1, Ordering::Relaxed);
        let result = self
            .invoker
            .invoke(
                &mapping.sub.function,
                InvokeRequest {
                    payload: Bytes::from(payload),
                    ..InvokeRequest::default()
                },
            )
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => return Outcome::NotInvoked(e.to_string()),
        };
        let outcome = judge(&response, records, mapping.sub.report_batch_item_failures);
        let done = match &outcome {
            Outcome::Success => records.len(),
            // An ordered source counts the records before the first
            // failure; a queue every record not named.
            Outcome::Partial(failed) if mapping.source.ordered() => failed[0],
            Outcome::Partial(failed) => records.len() - failed.len(),
            _ => 0,
        };
        mapping
            .counters
            .delivered
            .fetch_add(done as u64, Ordering::Relaxed);
        if let Outcome::Failure(r) = &outcome {
            tracing::warn!(
                subscription = %mapping.sub.name,
                function = %mapping.sub.function,
                request_id = %r.request_id,
                records = records.len(),
                "batch failed"
            );
        }
        outcome
    }

    /// Delivers one batch of an unordered source (a queue) once: what
    /// succeeded is committed (deleted); what failed is left to return to
    /// the queue when its visibility timeout ends, where the queue's own
    /// redrive policy counts the receives.
    /// <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>
    pub(super) async fn deliver_unordered(&self, mapping: &Mapping, batch: Vec<SourceRecord>) {
        match self.invoke(mapping, &batch).await {
            Outcome::Success => {
                lock(&mapping.activity).last_result = "OK".into();
                mapping.source.commit(&batch).await;
            }
            Outcome::Partial(failed) => {
                mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                lock(&mapping.activity).last_result = "PROBLEM: partial batch failure".into();
                let done: Vec<SourceRecord> = batch
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| failed.binary_search(i).is_err())
                    .map(|(_, r)| r)
                    .collect();
                mapping.source.commit(&done).await;
            }
            Outcome::Failure(_) => {
                mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                lock(&mapping.activity).last_result = "PROBLEM: Function call failed".into();
            }
            Outcome::NotInvoked(error) => {
                lock(&mapping.activity).last_result = format!("PROBLEM: {error}");
            }
        }
    }

    /// Records discarded: the on-failure record, to the local DLQ.
    fn discard(
        &self,
        mapping: &Mapping,
        records: &[SourceRecord],
        condition: &str,
        invokes: u32,
        response: Option<&InvokeResponse>,
    ) {
        mapping
            .counters
            .discarded
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        tracing::warn!(
            subscription = %mapping.sub.name,
            condition,
            records = records.len(),
            first = %first.id,
            "stream records discarded"
        );
        let batch_info = mapping.source.batch_info(first, last, records.len());
        let failure = failure_record(
            &self.invoker.function_arn(&mapping.sub.function),
            condition,
            invokes,
            response,
            batch_info,
        );
        // An SQS queue or SNS topic of the stack gets the record, as in AWS
        // (metadata only: the records stay in the stream until it expires
        // them).
        let target = match (
            mapping.sub.on_failure_queue(),
            mapping.sub.on_failure_topic(),
        ) {
            (Some(q), _) => Some(crate::manifest::Destination::Queue(q.to_owned())),
            (None, Some(t)) => Some(crate::manifest::Destination::Topic(t.to_owned())),
            (None, None) => None,
        };
        if let Some(target) = target {
            if let Err(e) = self.destinations.deliver(&target, failure.to_string(), &[]) {
                tracing::warn!(subscription = %mapping.sub.name, destination = %target, "cannot send the on-failure record: {e}");
            }
            return;
        }
        let Some(queue) = mapping.sub.dlq() else {
            return;
        };
        self.store.add_dlq(DlqEntry {
            id: uuid::Uuid::new_v4().to_string(),
            queue: queue.to_owned(),
            subscription: mapping.sub.name.clone(),
            function: mapping.sub.function.clone(),
            failure,
            records: records.iter().map(|r| r.value.clone()).collect(),
        });
    }
}

/// Sleeps `d` unless the mapping stops first (`true`: stopped).
async fn sleep(stop: &mut tokio::sync::watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

pub(super) fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The on-failure record, as Lambda sends it to an SQS/SNS destination
/// (metadata, not the records): `[ESM-DDB]` "Example on-failure record".
fn failure_record(
    function_arn: &str,
    condition: &str,
    invokes: u32,
    response: Option<&InvokeResponse>,
    (batch_key, batch_info): (&'static str, Value),
) -> Value {
    let mut record = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
        "version": "1.0",
        "timestamp": iso(SystemTime::now()),
    });
    record[batch_key] = batch_info;
    // Records that aged out before any invocation have no response.
    if response.is_some() || invokes > 0 {
        let mut context = json!({
            "statusCode": 200,
            "executedVersion": crate::lambda::LATEST,
        });
        if let Some(e) = response.and_then(|r| r.function_error.as_ref()) {
            context["functionError"] = Value::String(e.clone());
        }
        record["responseContext"] = context;
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> SourceRecord {
        SourceRecord {
            id: format!("1000{seq}"),
            position: seq as i64,
            value: json!({}),
            arrival: SystemTime::now(),
        }
    }

    fn response(payload: &str, error: bool) -> InvokeResponse {
        InvokeResponse {
            request_id: "r".into(),
            payload: Bytes::from(payload.to_owned()),
            function_error: error.then(|| "Unhandled".to_owned()),
            log: None,
        }
    }

    fn judged(payload: &str) -> String {
        let records = [rec(1), rec(2), rec(3)];
        match judge(&response(payload, false), &records, true) {
            Outcome::Success => "success".into(),
            Outcome::Partial(f) => format!("partial {f:?}"),
            Outcome::Failure(_) => "failure".into(),
            Outcome::NotInvoked(_) => "not invoked".into(),
        }
    }

    #[test]
    fn batch_item_failure_responses_read_as_lambda_reads_them() {
        for ok in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures": []}"#,
            r#"{"batchItemFailures": null}"#,
        ] {
            assert_eq!(judged(ok), "success", "{ok}");
        }
        assert_eq!(
            judged(
                r#"{"batchItemFailures": [{"itemIdentifier": "10003"}, {"itemIdentifier": "10002"}]}"#
            ),
            "partial [1, 2]"
        );
        for bad in [
            r#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
            r#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
            r#"{"batchItemFailures": [{"foo": "bar"}]}"#,
            r#"{"batchItemFailures": [{"itemIdentifier": "10009"}]}"#,
            r#""not an object""#,
        ] {
            assert_eq!(judged(bad), "failure", "{bad}");
        }
    }

    #[test]
    fn function_errors_fail_and_responses_are_ignored_without_reporting() {
        let records = [rec(1)];
        assert!(matches!(
            judge(&response("{}", true), &records, false),
            Outcome::Failure(_)
        ));
        assert!(matches!(
            judge(
                &response(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, false),
                &records,
                false
            ),
            Outcome::Success
        ));
    }

    #[test]
    fn the_on_failure_record_has_lambdas_shape() {
        let record = failure_record(
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            "RetryAttemptsExhausted",
            3,
            Some(&response("{}", true)),
            ("DDBStreamBatchInfo", json!({"batchSize": 2})),
        );
        assert_eq!(record["version"], "1.0");
        assert_eq!(
            record["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        assert_eq!(record["DDBStreamBatchInfo"]["batchSize"], 2);
        let aged = failure_record("arn", "RecordAgeExceeded", 0, None, ("B", json!({})));
        assert!(aged.get("responseContext").is_none());
    }
}

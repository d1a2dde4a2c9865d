//! Event source mappings: Lambda polling a source and invoking a function
//! with batches of its records (`[[subscriptions]]` in dev.toml, Terraform's
//! `aws_lambda_event_source_mapping`). Today's source is a DynamoDB table's
//! stream; SQS queues plug in behind the same [`source::EventSource`]
//! interface.
//!
//! - [`source`]: what a mapping reads; what differs between sources;
//! - [`dynamodb_streams`]: a table's stream, read in order from a checkpoint;
//! - [`poller`]: one task per mapping: `BatchSize`,
//!   `MaximumBatchingWindowInSeconds`, `FilterCriteria`, woken by writes;
//! - [`batch`]: one batch's fate: retries (`MaximumRetryAttempts`),
//!   `BisectBatchOnFunctionError`, `ReportBatchItemFailures`,
//!   `MaximumRecordAgeInSeconds`, the `OnFailure` destination record;
//! - this module: the service: mappings started, changed and stopped as
//!   dev.toml says ([`EventSourceMappings::apply`]), and what
//!   `woocom-dev streams` asks (status, replay, dead letters, redrive,
//!   served by [`http`]); [`store`] keeps checkpoints and dead letters.
//!
//! Functions are reached only through the [`Invoker`] interface.

pub mod batch;
pub mod dynamodb_streams;
pub mod event;
pub mod http;
mod poller;
pub mod source;
pub mod sqs_queue;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dynamodb::DynamoDb;
use crate::lambda::{DestinationSink, InvokeRequest, Invoker};
use crate::manifest::subscriptions::MappingSource;
use crate::manifest::{StreamsSettings, Subscription};
use crate::sqs::Sqs;
pub use dynamodb_streams::{public_sequence, stored_sequence};
use source::{EventSource, SourceError, SourceRecord};
use store::{DlqEntry, Store};

/// How long a stopping mapping may finish its batch before it is cut off
/// (its records are delivered again when it starts: at least once).
const STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("no subscription named `{0}`")]
    UnknownSubscription(String),
    #[error("no dead-letter entry `{0}`")]
    UnknownEntry(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot invoke the function: {0}")]
    Invoke(String),
}

/// Counters shown by `woocom-dev streams status`.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    delivered: AtomicU64,
    filtered: AtomicU64,
    errors: AtomicU64,
    discarded: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct Activity {
    state: String,
    last_result: String,
    /// Arrival of the oldest record in flight (for iterator age).
    in_flight_since: Option<SystemTime>,
}

/// One running mapping.
pub(crate) struct Mapping {
    sub: Subscription,
    settings: StreamsSettings,
    source: Arc<dyn EventSource>,
    counters: Counters,
    activity: Mutex<Activity>,
    /// Set once to stop the mapping's poller.
    stop: watch::Sender<bool>,
}

impl Mapping {
    fn set_state(&self, state: &str) {
        lock(&self.activity).state = state.to_owned();
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What every mapping's poller shares.
pub(crate) struct MappingsCore {
    invoker: Arc<dyn Invoker>,
    store: Arc<Store>,
    /// Where `on_failure = "queue:<name>"` / `"topic:<name>"` records go.
    destinations: Arc<dyn DestinationSink>,
}

struct Running {
    mapping: Arc<Mapping>,
    task: JoinHandle<()>,
}

/// The event source mappings of one stack.
pub struct EventSourceMappings {
    core: Arc<MappingsCore>,
    dynamodb: Arc<DynamoDb>,
    sqs: Arc<Sqs>,
    region: String,
    /// In dev.toml's order.
    running: Mutex<Vec<Running>>,
    /// Serialises [`EventSourceMappings::apply`] calls.
    applying: tokio::sync::Mutex<()>,
}

/// One mapping's position and lag.
#[derive(Debug, Clone, Serialize)]
pub struct MappingStatus {
    pub name: String,
    /// The table whose stream the mapping reads, or `null`.
    pub table: Option<String>,
    /// The queue the mapping reads, or `null`.
    pub queue: Option<String>,
    pub function: String,
    pub state: String,
    pub stream_arn: Option<String>,
    /// The last sequence number delivered (or skipped); `null` before any.
    pub checkpoint: Option<String>,
    pub latest_sequence_number: Option<String>,
    /// Records after the checkpoint (capped at 10000).
    pub lag_records: usize,
    /// Age of the oldest record not yet processed (Lambda's IteratorAge).
    pub iterator_age_ms: u64,
    pub batches_invoked: u64,
    pub records_delivered: u64,
    pub records_filtered: u64,
    pub function_errors: u64,
    pub records_discarded: u64,
    pub last_processing_result: String,
    pub dead_letter_entries: usize,
}

impl EventSourceMappings {
    /// The service with no mapping yet; [`EventSourceMappings::apply`]
    /// starts them.
    pub fn new(
        dynamodb: Arc<DynamoDb>,
        sqs: Arc<Sqs>,
        invoker: Arc<dyn Invoker>,
        destinations: Arc<dyn DestinationSink>,
        region: &str,
    ) -> Arc<EventSourceMappings> {
        Arc::new(EventSourceMappings {
            core: Arc::new(MappingsCore {
                invoker,
                store: Arc::new(Store::open(dynamodb.location())),
                destinations,
            }),
            dynamodb,
            sqs,
            region: region.to_owned(),
            running: Mutex::new(Vec::new()),
            applying: tokio::sync::Mutex::new(()),
        })
    }

    /// Makes the running mappings those of `subscriptions`: new ones start
    /// (from their checkpoint if they had one), removed ones stop, changed
    /// ones (or all, when `settings` change) restart with the new
    /// configuration from their checkpoint. Returns what changed, for the
    /// reload log.
    pub async fn apply(
        &self,
        subscriptions: &[Subscription],
        settings: StreamsSettings,
    ) -> Vec<String> {
        let _one_at_a_time = self.applying.lock().await;
        let mut changes = Vec::new();
        let mut restarted = std::collections::BTreeSet::new();
        let (keep, stopping): (Vec<Running>, Vec<Running>) = {
            let mut running = lock(&self.running);
            running.drain(..).partition(|r| {
                r.mapping.settings == settings && subscriptions.iter().any(|s| *s == r.mapping.sub)
            })
        };
        for r in &stopping {
            let name = &r.mapping.sub.name;
            if subscriptions.iter().any(|s| &s.name == name) {
                restarted.insert(name.clone());
                changes.push(format!(
                    "subscription {name} restarted with its new settings"
                ));
            } else {
                changes.push(format!("subscription {name} stopped"));
            }
        }
        for r in stopping {
            stop(r).await;
        }
        let mut keep: Vec<Option<Running>> = keep.into_iter().map(Some).collect();
        let mut next = Vec::with_capacity(subscriptions.len());
        for sub in subscriptions {
            let kept = keep
                .iter_mut()
                .find(|r| r.as_ref().is_some_and(|r| r.mapping.sub == *sub))
                .and_then(Option::take);
            match kept {
                Some(r) => next.push(r),
                None => {
                    if !restarted.contains(&sub.name) {
                        changes.push(format!("subscription {} started", sub.name));
                    }
                    next.push(self.start(sub, settings));
                }
            }
        }
        *lock(&self.running) = next;
        changes
    }

    fn start(&self, sub: &Subscription, settings: StreamsSettings) -> Running {
        let source: Arc<dyn EventSource> = match &sub.source {
            MappingSource::Table(table) => Arc::new(dynamodb_streams::DynamoDbStream::new(
                self.dynamodb.clone(),
                table,
                &self.region,
                sub.starting_position,
                &sub.name,
                self.core.store.clone(),
            )),
            MappingSource::Queue(queue) => Arc::new(sqs_queue::SqsQueue::new(
                self.sqs.clone(),
                queue,
                &self.region,
            )),
        };
        let mapping = Arc::new(Mapping {
            sub: sub.clone(),
            settings,
            source,
            counters: Counters::default(),
            activity: Mutex::new(Activity {
                state: "Creating".into(),
                last_result: "No records processed".into(),
                in_flight_since: None,
            }),
            stop: watch::channel(false).0,
        });
        let task = tokio::spawn(poller::run(self.core.clone(), mapping.clone()));
        Running { mapping, task }
    }

    /// Stops every mapping (a batch in flight is abandoned; its records are
    /// delivered again on the next start, as Lambda's at-least-once).
    pub async fn shutdown(&self) {
        let all: Vec<Running> = lock(&self.running).drain(..).collect();
        for r in &all {
            r.mapping.stop.send_replace(true);
        }
        for r in all {
            r.task.abort();
            let _ = r.task.await;
        }
    }

    fn mappings(&self) -> Vec<Arc<Mapping>> {
        lock(&self.running)
            .iter()
            .map(|r| r.mapping.clone())
            .collect()
    }

    fn mapping(&self, name: &str) -> Result<Arc<Mapping>, MappingError> {
        self.mappings()
            .into_iter()
            .find(|m| m.sub.name == name)
            .ok_or_else(|| MappingError::UnknownSubscription(name.to_owned()))
    }

    /// The subscriptions running now, in dev.toml's order.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.mappings().iter().map(|m| m.sub.clone()).collect()
    }

    // ---- what the CLI asks ----------------------------------------------

    pub async fn status(&self) -> Vec<MappingStatus> {
        let mut out = Vec::new();
        let dead_letters = self.core.store.dlq_entries();
        for m in self.mappings() {
            let source = m.source.status().await;
            let activity = lock(&m.activity).clone();
            let since = activity.in_flight_since.or(source.oldest_arrival);
            let iterator_age_ms = if source.lag == 0 {
                0
            } else {
                since
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map_or(0, |d| d.as_millis() as u64)
            };
            out.push(MappingStatus {
                name: m.sub.name.clone(),
                table: m.sub.table().map(str::to_owned),
                queue: m.sub.queue().map(str::to_owned),
                function: m.sub.function.clone(),
                state: activity.state,
                stream_arn: source.arn,
                checkpoint: source.checkpoint,
                latest_sequence_number: source.latest,
                lag_records: source.lag,
                iterator_age_ms,
                batches_invoked: m.counters.batches.load(Ordering::Relaxed),
                records_delivered: m.counters.delivered.load(Ordering::Relaxed),
                records_filtered: m.counters.filtered.load(Ordering::Relaxed),
                function_errors: m.counters.errors.load(Ordering::Relaxed),
                records_discarded: m.counters.discarded.load(Ordering::Relaxed),
                last_processing_result: activity.last_result,
                dead_letter_entries: dead_letters
                    .iter()
                    .filter(|e| e.subscription == m.sub.name)
                    .count(),
            });
        }
        out
    }

    pub fn dlq_entries(&self) -> Vec<DlqEntry> {
        self.core.store.dlq_entries()
    }

    pub fn dlq_entry(&self, id: &str) -> Result<DlqEntry, MappingError> {
        self.core
            .store
            .dlq_entry(id)
            .ok_or_else(|| MappingError::UnknownEntry(id.to_owned()))
    }

    /// Sends a dead-letter entry's records to its function again, as one
    /// batch; on success the entry is removed.
    pub async fn redrive(&self, id: &str) -> Result<Value, MappingError> {
        let entry = self.dlq_entry(id)?;
        let mapping = self.mapping(&entry.subscription).ok();
        let records: Vec<SourceRecord> = entry
            .records
            .iter()
            .map(|v| match &mapping {
                Some(m) => m.source.record_of(v.clone()),
                None => dynamodb_streams::record_of(v.clone()),
            })
            .collect();
        // Without its mapping (renamed or removed since), the entry is
        // still a stream batch: every dead letter today comes from one.
        let payload = match &mapping {
            Some(m) => m.source.payload(&records),
            None => event::payload(&entry.records),
        };
        let response = self
            .core
            .invoker
            .invoke(
                &entry.function,
                InvokeRequest {
                    payload: Bytes::from(payload),
                    ..InvokeRequest::default()
                },
            )
            .await
            .map_err(|e| MappingError::Invoke(e.to_string()))?;
        let report = mapping
            .as_ref()
            .is_some_and(|m| m.sub.report_batch_item_failures);
        let ok = matches!(
            batch::judge(&response, &records, report),
            batch::Outcome::Success
        );
        if ok {
            self.core.store.remove_dlq(id);
        }
        Ok(json!({
            "id": id,
            "function": entry.function,
            "records": entry.records.len(),
            "succeeded": ok,
            "requestId": response.request_id,
            "functionError": response.function_error,
            "response": String::from_utf8_lossy(&response.payload),
        }))
    }

    /// Delivers the records `from..=to` (the source's numbering: sequence
    /// numbers) to the mapping's function again, in batches of its size,
    /// through its filters; no retries, no checkpoint change. For
    /// debugging a function.
    pub async fn replay(&self, name: &str, from: &str, to: &str) -> Result<Value, MappingError> {
        let mapping = self.mapping(name)?;
        let source = &mapping.source;
        let bad = |s: &str| MappingError::BadRequest(format!("`{s}` is not a sequence number"));
        let from_n = source.parse_position(from).ok_or_else(|| bad(from))?;
        let to_n = source.parse_position(to).ok_or_else(|| bad(to))?;
        if to_n < from_n {
            return Err(MappingError::BadRequest(
                "--to comes before --from".to_owned(),
            ));
        }
        let mut position = from_n - 1;
        let mut batches = Vec::new();
        let mut total = 0;
        loop {
            let records = source
                .read_between(
                    position,
                    to_n,
                    mapping.sub.batch_size as usize,
                    poller::MAX_BATCH_BYTES,
                )
                .await?;
            let Some(last) = records.last() else { break };
            position = last.position;
            let kept: Vec<SourceRecord> = records
                .into_iter()
                .filter(|r| crate::event_pattern::keep(&mapping.sub.filters, &r.value))
                .collect();
            if kept.is_empty() {
                continue;
            }
            total += kept.len();
            let response = self
                .core
                .invoker
                .invoke(
                    &mapping.sub.function,
                    InvokeRequest {
                        payload: Bytes::from(source.payload(&kept)),
                        ..InvokeRequest::default()
                    },
                )
                .await
                .map_err(|e| MappingError::Invoke(e.to_string()))?;
            batches.push(json!({
                "firstSequenceNumber": kept.first().map(|r| r.id.clone()),
                "lastSequenceNumber": kept.last().map(|r| r.id.clone()),
                "records": kept.len(),
                "requestId": response.request_id,
                "functionError": response.function_error,
                "response": String::from_utf8_lossy(&response.payload),
            }));
        }
        Ok(json!({ "subscription": name, "records": total, "batches": batches }))
    }
}

/// Stops one mapping: its poller finishes the batch in hand (up to
/// [`STOP_GRACE`]) and is then cut off.
async fn stop(running: Running) {
    running.mapping.stop.send_replace(true);
    let mut task = running.task;
    if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
        task.abort();
        let _ = task.await;
    }
}

impl Drop for EventSourceMappings {
    fn drop(&mut self) {
        for r in lock(&self.running).iter() {
            r.mapping.stop.send_replace(true);
            r.task.abort();
        }
    }
}

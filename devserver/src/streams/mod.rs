//! DynamoDB Streams delivered to functions with Lambda's event source
//! mapping semantics (`[[subscriptions]]` in dev.toml).
//!
//! One poller task per mapping reads the table's shard in-process through
//! the engine's stream API, woken by [`DynamoDb::subscribe_changes`] after
//! every committed write (with a slow fallback poll), and invokes the
//! function through [`LambdaHost::invoke`], one batch at a time, in order:
//!
//! - a failed batch is retried (backing off) and blocks later records of
//!   the shard; with `bisect_batch_on_function_error` it is split in two,
//!   splits not counting against `maximum_retry_attempts`;
//! - with `report_batch_item_failures`, delivery resumes from the lowest
//!   failed sequence number; a malformed failure list fails the whole batch;
//! - records that exhaust retries or exceed `maximum_record_age_in_seconds`
//!   are discarded, and the failure record AWS writes goes to the local
//!   dead-letter queue (`on_failure = "dlq:<name>"`) with the records;
//! - filters drop records before batching (never sent, never retried).
//!
//! AWS: <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>.
//!
//! Invariant: a mapping's checkpoint only moves forward, and only past
//! records that were delivered successfully, filtered out or discarded.

pub mod event;
pub mod filter;
pub mod http;
pub mod store;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dynamodb::{DynamoDb, streams_api};
use crate::lambda::{InvokeRequest, InvokeResponse, LambdaHost, MAX_SYNC_PAYLOAD};
use crate::manifest::{Manifest, StreamsSettings, Subscription, subscriptions::StartingPosition};
use filter::FilterPattern;
use store::{DlqEntry, Store};

/// Without a change signal (e.g. writes made behind the service's back),
/// shards are still read this often.
const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// The engine returns at most this many records per read.
const ENGINE_PAGE: usize = 1000;
/// Longest wait between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the stream keeps records (records older than this expire
/// and a poison record stops blocking its shard).
const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// The offset between the engine's stored and public sequence numbers.
const SEQUENCE_OFFSET: u128 = 100_000_000_000_000_000_000;

/// The stored (engine) form of a public sequence number.
pub fn stored_sequence(public: &str) -> Option<i64> {
    let v: u128 = public.parse().ok()?;
    i64::try_from(v.checked_sub(SEQUENCE_OFFSET)?).ok()
}

fn public_sequence(stored: i64) -> String {
    (SEQUENCE_OFFSET + u128::try_from(stored.max(0)).unwrap_or(0)).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("no subscription named `{0}`")]
    UnknownSubscription(String),
    #[error("no dead-letter entry `{0}`")]
    UnknownEntry(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("table `{0}` has no stream yet")]
    NoStream(String),
    #[error("cannot read the stream: {0}")]
    Engine(String),
    #[error("cannot invoke the function: {0}")]
    Invoke(String),
}

/// One record read from the shard, as it will be delivered.
#[derive(Debug, Clone)]
struct Rec {
    stored: i64,
    value: Value,
    /// When the record reached the stream, as near as we know.
    arrival: SystemTime,
}

impl Rec {
    fn sequence(&self) -> &str {
        event::sequence_number(&self.value)
    }
}

/// The table's stream as the engine names it.
#[derive(Debug, Clone)]
struct StreamRef {
    arn: String,
    engine_shard: String,
    public_shard: String,
}

/// Counters and state shown by `woocom-dev streams status`.
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

struct Mapping {
    sub: Subscription,
    patterns: Vec<FilterPattern>,
    counters: Counters,
    activity: Mutex<Activity>,
    stream: Mutex<Option<StreamRef>>,
}

impl Mapping {
    fn set_state(&self, state: &str) {
        lock(&self.activity).state = state.to_owned();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The stream delivery service of one stack.
pub struct Streams {
    mappings: Vec<Arc<Mapping>>,
    store: Store,
    dynamodb: Arc<DynamoDb>,
    lambda: Arc<LambdaHost>,
    settings: StreamsSettings,
    region: String,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One mapping's position and lag.
#[derive(Debug, Clone, Serialize)]
pub struct MappingStatus {
    pub name: String,
    pub table: String,
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

enum Outcome {
    Success,
    /// Records before this index were processed.
    Partial(usize),
    Failure(InvokeResponse),
    /// The function could not be invoked (not counted as a retry).
    NotInvoked(String),
}

impl Streams {
    /// Starts one poller per subscription.
    pub fn start(
        manifest: &Manifest,
        dynamodb: Arc<DynamoDb>,
        lambda: Arc<LambdaHost>,
    ) -> Arc<Streams> {
        let mappings = manifest
            .subscriptions
            .iter()
            .map(|sub| {
                Arc::new(Mapping {
                    patterns: sub
                        .filters
                        .iter()
                        .filter_map(|f| FilterPattern::parse(f).ok())
                        .collect(),
                    sub: sub.clone(),
                    counters: Counters::default(),
                    activity: Mutex::new(Activity {
                        state: "Creating".into(),
                        last_result: "No records processed".into(),
                        in_flight_since: None,
                    }),
                    stream: Mutex::new(None),
                })
            })
            .collect();
        let (stop, _) = watch::channel(false);
        let streams = Arc::new(Streams {
            mappings,
            store: Store::open(dynamodb.location()),
            dynamodb,
            lambda,
            settings: manifest.streams,
            region: manifest.stack.region.clone(),
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        let tasks: Vec<JoinHandle<()>> = streams
            .mappings
            .iter()
            .map(|m| tokio::spawn(streams.clone().poll(m.clone())))
            .collect();
        *lock(&streams.tasks) = tasks;
        streams
    }

    /// Stops the pollers (a batch in flight is abandoned; its records are
    /// delivered again on the next start, as Lambda's at-least-once).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn mapping(&self, name: &str) -> Result<&Arc<Mapping>, StreamsError> {
        self.mappings
            .iter()
            .find(|m| m.sub.name == name)
            .ok_or_else(|| StreamsError::UnknownSubscription(name.to_owned()))
    }

    // ---- reading the shard ------------------------------------------------

    async fn resolve_stream(&self, table: &str) -> Result<StreamRef, StreamsError> {
        let db = self.dynamodb.database();
        let table = table.to_owned();
        tokio::task::spawn_blocking(move || {
            let meta = db
                .get_table_metadata(&table)
                .map_err(|e| StreamsError::Engine(e.to_string()))?;
            match meta {
                Some(m) if m.stream_enabled => {
                    let label = m.stream_label.unwrap_or_default();
                    Ok(StreamRef {
                        arn: dynoxide::streams::stream_arn(&table, &label),
                        engine_shard: dynoxide::streams::shard_id(&table),
                        public_shard: streams_api::public_shard_id(&table),
                    })
                }
                _ => Err(StreamsError::NoStream(table)),
            }
        })
        .await
        .map_err(|e| StreamsError::Engine(e.to_string()))?
    }

    /// Up to `limit` records after stored sequence `after` (and at most
    /// `max_bytes` of them, but at least one).
    async fn read(
        &self,
        table: &str,
        stream: &StreamRef,
        after: i64,
        limit: usize,
        max_bytes: usize,
        up_to: Option<i64>,
    ) -> Result<Vec<Rec>, StreamsError> {
        let db = self.dynamodb.database();
        let table = table.to_owned();
        let stream = stream.clone();
        let region = self.region.clone();
        tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let now_secs = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut out: Vec<Rec> = Vec::new();
            let mut bytes = 0;
            let mut position = after;
            'pages: while out.len() < limit {
                let iterator = dynoxide::actions::get_shard_iterator::encode_shard_iterator(
                    &table,
                    &stream.engine_shard,
                    position,
                );
                let page = db
                    .get_records(dynoxide::actions::get_records::GetRecordsRequest {
                        shard_iterator: iterator,
                        limit: Some((limit - out.len()).min(ENGINE_PAGE)),
                    })
                    .map_err(|e| StreamsError::Engine(e.to_string()))?;
                if page.records.is_empty() {
                    break;
                }
                for r in &page.records {
                    let stored = stored_sequence(&r.dynamodb.sequence_number).unwrap_or(0);
                    if up_to.is_some_and(|last| stored > last) {
                        break 'pages;
                    }
                    position = position.max(stored);
                    let value = event::event_record(r, &region, &stream.arn)
                        .map_err(StreamsError::Engine)?;
                    let size = value.to_string().len();
                    if !out.is_empty() && bytes + size > max_bytes {
                        break 'pages;
                    }
                    bytes += size;
                    // Records written while nobody read (before a restart)
                    // keep their creation time; fresh ones are stamped now,
                    // which is within milliseconds of their write.
                    let created = r.dynamodb.approximate_creation_date_time as u64;
                    let arrival = if created + 2 < now_secs {
                        SystemTime::UNIX_EPOCH + Duration::from_secs(created)
                    } else {
                        now
                    };
                    out.push(Rec {
                        stored,
                        value,
                        arrival,
                    });
                    if out.len() >= limit {
                        break 'pages;
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StreamsError::Engine(e.to_string()))?
    }

    /// The stored sequence number of the newest record (0 when empty).
    async fn latest(&self, table: &str, stream: &StreamRef) -> Result<i64, StreamsError> {
        let db = self.dynamodb.database();
        let request = dynoxide::actions::get_shard_iterator::GetShardIteratorRequest {
            stream_arn: stream.arn.clone(),
            shard_id: stream.engine_shard.clone(),
            shard_iterator_type: "LATEST".into(),
            sequence_number: None,
        };
        let _ = table;
        tokio::task::spawn_blocking(move || {
            let response = db
                .get_shard_iterator(request)
                .map_err(|e| StreamsError::Engine(e.to_string()))?;
            Ok(response
                .shard_iterator
                .as_deref()
                .and_then(dynoxide::actions::get_shard_iterator::decode_shard_iterator)
                .map_or(0, |(_, _, position)| position))
        })
        .await
        .map_err(|e| StreamsError::Engine(e.to_string()))?
    }

    // ---- the poller -------------------------------------------------------

    async fn poll(self: Arc<Self>, mapping: Arc<Mapping>) {
        let mut changes = self.dynamodb.subscribe_changes();
        let mut stop = self.stop.subscribe();
        let sub = &mapping.sub;
        // Wait for the table's stream (reconcile creates it before us, but
        // a stream can be switched off and on at run time).
        let stream = loop {
            match self.resolve_stream(&sub.table).await {
                Ok(s) => break s,
                Err(e) => {
                    mapping.set_state(&format!("Waiting: {e}"));
                    if self.wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                        return;
                    }
                }
            }
        };
        *lock(&mapping.stream) = Some(stream.clone());
        let mut position = match self
            .store
            .checkpoint(&sub.name)
            .and_then(|c| stored_sequence(&c))
        {
            Some(p) => p,
            None => match sub.starting_position {
                StartingPosition::TrimHorizon => 0,
                StartingPosition::Latest => {
                    let p = self.latest(&sub.table, &stream).await.unwrap_or(0);
                    self.store.set_checkpoint(&sub.name, &public_sequence(p));
                    p
                }
            },
        };
        mapping.set_state("Enabled");
        let limit = sub.batch_size as usize;
        let window = Duration::from_secs(u64::from(sub.maximum_batching_window_in_seconds));
        // Payload limit, less the envelope.
        let max_bytes = MAX_SYNC_PAYLOAD - 64;
        loop {
            if self.stopping() {
                return;
            }
            let mut records = match self
                .read(&sub.table, &stream, position, limit, max_bytes, None)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    mapping.set_state(&format!("Waiting: {e}"));
                    if self.wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                        return;
                    }
                    continue;
                }
            };
            if records.is_empty() {
                lock(&mapping.activity).in_flight_since = None;
                if self.wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                    return;
                }
                continue;
            }
            // Batching window: wait for a full batch or the window's end.
            if !window.is_zero() && records.len() < limit {
                let deadline = Instant::now() + window;
                while records.len() < limit && Instant::now() < deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if self.wait(&mut changes, &mut stop, left).await {
                        return;
                    }
                    if let Ok(more) = self
                        .read(&sub.table, &stream, position, limit, max_bytes, None)
                        .await
                        && more.len() > records.len()
                    {
                        // Keep the first arrival times.
                        let mut merged = records.clone();
                        merged.extend(more.into_iter().skip(records.len()));
                        records = merged;
                    }
                }
            }
            let last = records.last().map_or(position, |r| r.stored);
            // A write that changes nothing writes no record in DynamoDB; the
            // engine records a MODIFY. With both images it shows, so such
            // records are dropped here. Other view types keep too little to
            // tell (KEYS_ONLY nothing, NEW_IMAGE not the item before, OLD_IMAGE
            // not the item after), and the engine's API can neither skip nor
            // delete a record: the fix belongs where dynoxide records the
            // change (`streams::record_stream_event`: no record when the old
            // and new items are equal). Until then such tables see the MODIFY,
            // and so does a GetRecords client of any view type.
            records.retain(|r| !is_no_op(&r.value));
            lock(&mapping.activity).in_flight_since = records.first().map(|r| r.arrival);
            let before = records.len();
            records.retain(|r| filter::keep(&mapping.patterns, &r.value));
            mapping
                .counters
                .filtered
                .fetch_add((before - records.len()) as u64, Ordering::Relaxed);
            if !records.is_empty() && !self.deliver(&mapping, &stream, records, &mut stop).await {
                return;
            }
            position = last;
            self.store
                .set_checkpoint(&sub.name, &public_sequence(position));
        }
    }

    /// Waits for a change, the timeout, or the stop signal (`true`: stop).
    async fn wait(
        &self,
        changes: &mut watch::Receiver<u64>,
        stop: &mut watch::Receiver<bool>,
        timeout: Duration,
    ) -> bool {
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(timeout) => {}
            _ = stop.wait_for(|s| *s) => return true,
        }
        self.stopping()
    }

    async fn sleep(&self, stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = stop.wait_for(|s| *s) => true,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = Duration::from_millis(self.settings.retry_backoff_ms);
        base.saturating_mul(1u32 << attempt.min(16))
            .min(MAX_BACKOFF)
    }

    fn age(&self, r: &Rec) -> Duration {
        SystemTime::now()
            .duration_since(r.arrival)
            .unwrap_or_default()
            .saturating_mul(self.settings.record_age_speedup.max(1))
    }

    /// Delivers one batch until every record is processed or discarded.
    /// Returns `false` when the service stops first (the checkpoint stays
    /// before the batch).
    async fn deliver(
        &self,
        mapping: &Mapping,
        stream: &StreamRef,
        batch: Vec<Rec>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let sub = &mapping.sub;
        // (records, retries so far, invocations so far)
        let mut work: VecDeque<(Vec<Rec>, u32, u32)> = VecDeque::from([(batch, 0, 0)]);
        let max_age = if sub.maximum_record_age_in_seconds >= 0 {
            Duration::from_secs(sub.maximum_record_age_in_seconds as u64)
        } else {
            RETENTION
        };
        let mut last_failure: Option<InvokeResponse> = None;
        while let Some((mut records, retries, invokes)) = work.pop_front() {
            if self.stopping() {
                return false;
            }
            // Records past their age are discarded before any invocation.
            let expired = records.iter().take_while(|r| self.age(r) > max_age).count();
            if expired > 0 {
                let rest = records.split_off(expired);
                self.discard(
                    mapping,
                    stream,
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
            match self.invoke(mapping, &records).await {
                Outcome::Success => {
                    lock(&mapping.activity).last_result = "OK".into();
                    last_failure = None;
                }
                Outcome::Partial(index) => {
                    mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                    lock(&mapping.activity).last_result = "PROBLEM: partial batch failure".into();
                    let rest = records.split_off(index);
                    // Bisect at the failed record: the rest is retried as a
                    // new batch; without bisect this counts as a retry.
                    if sub.bisect_batch_on_function_error && index > 0 {
                        work.push_front((rest, retries, invokes + 1));
                    } else {
                        self.retry_or_discard(
                            mapping,
                            stream,
                            rest,
                            retries,
                            invokes + 1,
                            None,
                            &mut work,
                            stop,
                        )
                        .await;
                    }
                }
                Outcome::Failure(response) => {
                    mapping.counters.errors.fetch_add(1, Ordering::Relaxed);
                    lock(&mapping.activity).last_result = "PROBLEM: Function call failed".into();
                    if sub.bisect_batch_on_function_error && records.len() > 1 {
                        let right = records.split_off(records.len() / 2);
                        work.push_front((right, retries, invokes + 1));
                        work.push_front((records, retries, invokes + 1));
                    } else {
                        last_failure = Some(response.clone());
                        self.retry_or_discard(
                            mapping,
                            stream,
                            records,
                            retries,
                            invokes + 1,
                            Some(response),
                            &mut work,
                            stop,
                        )
                        .await;
                    }
                }
                Outcome::NotInvoked(error) => {
                    lock(&mapping.activity).last_result = format!("PROBLEM: {error}");
                    mapping.set_state("Retrying: the function could not be invoked");
                    if self.sleep(stop, self.backoff(retries.min(5))).await {
                        return false;
                    }
                    work.push_front((records, retries, invokes));
                }
            }
        }
        mapping.set_state("Enabled");
        true
    }

    #[allow(clippy::too_many_arguments)]
    async fn retry_or_discard(
        &self,
        mapping: &Mapping,
        stream: &StreamRef,
        records: Vec<Rec>,
        retries: u32,
        invokes: u32,
        response: Option<InvokeResponse>,
        work: &mut VecDeque<(Vec<Rec>, u32, u32)>,
        stop: &mut watch::Receiver<bool>,
    ) {
        let max = mapping.sub.maximum_retry_attempts;
        if max >= 0 && i64::from(retries) >= i64::from(max) {
            self.discard(
                mapping,
                stream,
                &records,
                "RetryAttemptsExhausted",
                invokes,
                response.as_ref(),
            );
            return;
        }
        mapping.set_state(&format!("Retrying: attempt {}", retries + 1));
        if self.sleep(stop, self.backoff(retries)).await {
            // Put it back so the caller sees it is unfinished and stops.
            work.push_front((records, retries + 1, invokes));
            return;
        }
        work.push_front((records, retries + 1, invokes));
    }

    async fn invoke(&self, mapping: &Mapping, records: &[Rec]) -> Outcome {
        let values: Vec<Value> = records.iter().map(|r| r.value.clone()).collect();
        let payload = event::payload(&values);
        mapping.counters.batches.fetch_add(1, Ordering::Relaxed);
        let result = self
            .lambda
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
            Outcome::Partial(i) => *i,
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
                "stream batch failed"
            );
        }
        outcome
    }

    /// Records discarded: the failure record AWS writes, to the local DLQ.
    fn discard(
        &self,
        mapping: &Mapping,
        stream: &StreamRef,
        records: &[Rec],
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
            first = first.sequence(),
            "stream records discarded"
        );
        let Some(queue) = mapping.sub.dlq() else {
            return;
        };
        let failure = failure_record(FailureInfo {
            function_arn: &self.lambda.function_arn(&mapping.sub.function),
            condition,
            invokes,
            response,
            stream,
            first,
            last,
            count: records.len(),
        });
        self.store.add_dlq(DlqEntry {
            id: uuid::Uuid::new_v4().to_string(),
            queue: queue.to_owned(),
            subscription: mapping.sub.name.clone(),
            function: mapping.sub.function.clone(),
            failure,
            records: records.iter().map(|r| r.value.clone()).collect(),
        });
    }

    // ---- what the CLI asks ----------------------------------------------

    pub async fn status(&self) -> Vec<MappingStatus> {
        let mut out = Vec::new();
        for m in &self.mappings {
            let stream = lock(&m.stream).clone();
            let checkpoint = self.store.checkpoint(&m.sub.name);
            let (mut latest, mut lag, mut oldest) = (None, 0, None);
            if let Some(s) = &stream {
                let after = checkpoint.as_deref().and_then(stored_sequence).unwrap_or(0);
                if let Ok(l) = self.latest(&m.sub.table, s).await
                    && l > 0
                {
                    latest = Some(public_sequence(l));
                }
                if let Ok(pending) = self
                    .read(&m.sub.table, s, after, 10_000, usize::MAX, None)
                    .await
                {
                    lag = pending.len();
                    oldest = pending.first().map(|r| r.arrival);
                }
            }
            let activity = lock(&m.activity).clone();
            let since = activity.in_flight_since.or(oldest);
            let iterator_age_ms = if lag == 0 {
                0
            } else {
                since
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map_or(0, |d| d.as_millis() as u64)
            };
            out.push(MappingStatus {
                name: m.sub.name.clone(),
                table: m.sub.table.clone(),
                function: m.sub.function.clone(),
                state: activity.state,
                stream_arn: stream.map(|s| s.arn),
                checkpoint,
                latest_sequence_number: latest,
                lag_records: lag,
                iterator_age_ms,
                batches_invoked: m.counters.batches.load(Ordering::Relaxed),
                records_delivered: m.counters.delivered.load(Ordering::Relaxed),
                records_filtered: m.counters.filtered.load(Ordering::Relaxed),
                function_errors: m.counters.errors.load(Ordering::Relaxed),
                records_discarded: m.counters.discarded.load(Ordering::Relaxed),
                last_processing_result: activity.last_result,
                dead_letter_entries: self
                    .store
                    .dlq_entries()
                    .iter()
                    .filter(|e| e.subscription == m.sub.name)
                    .count(),
            });
        }
        out
    }

    pub fn dlq_entries(&self) -> Vec<DlqEntry> {
        self.store.dlq_entries()
    }

    pub fn dlq_entry(&self, id: &str) -> Result<DlqEntry, StreamsError> {
        self.store
            .dlq_entry(id)
            .ok_or_else(|| StreamsError::UnknownEntry(id.to_owned()))
    }

    /// Sends a dead-letter entry's records to its function again, as one
    /// batch; on success the entry is removed.
    pub async fn redrive(&self, id: &str) -> Result<Value, StreamsError> {
        let entry = self.dlq_entry(id)?;
        let response = self
            .lambda
            .invoke(
                &entry.function,
                InvokeRequest {
                    payload: Bytes::from(event::payload(&entry.records)),
                    ..InvokeRequest::default()
                },
            )
            .await
            .map_err(|e| StreamsError::Invoke(e.to_string()))?;
        let report = self
            .mapping(&entry.subscription)
            .is_ok_and(|m| m.sub.report_batch_item_failures);
        let recs: Vec<Rec> = entry
            .records
            .iter()
            .map(|v| Rec {
                stored: stored_sequence(event::sequence_number(v)).unwrap_or(0),
                value: v.clone(),
                arrival: SystemTime::now(),
            })
            .collect();
        let ok = matches!(judge(&response, &recs, report), Outcome::Success);
        if ok {
            self.store.remove_dlq(id);
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

    /// Delivers the records `from..=to` (sequence numbers) to the mapping's
    /// function again, in batches of its size, through its filters; no
    /// retries, no checkpoint change. For debugging a function.
    pub async fn replay(&self, name: &str, from: &str, to: &str) -> Result<Value, StreamsError> {
        let mapping = self.mapping(name)?;
        let bad = |s: &str| StreamsError::BadRequest(format!("`{s}` is not a sequence number"));
        let from_n = stored_sequence(from).ok_or_else(|| bad(from))?;
        let to_n = stored_sequence(to).ok_or_else(|| bad(to))?;
        if to_n < from_n {
            return Err(StreamsError::BadRequest(
                "--to comes before --from".to_owned(),
            ));
        }
        let known = lock(&mapping.stream).clone();
        let stream = match known {
            Some(s) => s,
            None => self.resolve_stream(&mapping.sub.table).await?,
        };
        let mut position = from_n - 1;
        let mut batches = Vec::new();
        let mut total = 0;
        loop {
            let records = self
                .read(
                    &mapping.sub.table,
                    &stream,
                    position,
                    mapping.sub.batch_size as usize,
                    MAX_SYNC_PAYLOAD - 64,
                    Some(to_n),
                )
                .await?;
            let Some(last) = records.last() else { break };
            position = last.stored;
            let kept: Vec<Rec> = records
                .into_iter()
                .filter(|r| filter::keep(&mapping.patterns, &r.value))
                .collect();
            if kept.is_empty() {
                continue;
            }
            total += kept.len();
            let values: Vec<Value> = kept.iter().map(|r| r.value.clone()).collect();
            let response = self
                .lambda
                .invoke(
                    &mapping.sub.function,
                    InvokeRequest {
                        payload: Bytes::from(event::payload(&values)),
                        ..InvokeRequest::default()
                    },
                )
                .await
                .map_err(|e| StreamsError::Invoke(e.to_string()))?;
            batches.push(json!({
                "firstSequenceNumber": kept.first().map(Rec::sequence),
                "lastSequenceNumber": kept.last().map(Rec::sequence),
                "records": kept.len(),
                "requestId": response.request_id,
                "functionError": response.function_error,
                "response": String::from_utf8_lossy(&response.payload),
            }));
        }
        Ok(json!({ "subscription": name, "records": total, "batches": batches }))
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in lock(&self.tasks).iter() {
            t.abort();
        }
    }
}

/// A MODIFY whose images are equal (only visible with NEW_AND_OLD_IMAGES).
fn is_no_op(record: &Value) -> bool {
    let change = &record["dynamodb"];
    record["eventName"] == "MODIFY"
        && change.get("NewImage").is_some()
        && change.get("NewImage") == change.get("OldImage")
}

/// How an invocation's answer reads, per
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>:
/// success is an empty or null list, an empty or null response; a failure
/// entry with an empty, null or unknown `itemIdentifier` (or another key)
/// fails the whole batch.
fn judge(response: &InvokeResponse, records: &[Rec], report_failures: bool) -> Outcome {
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
    let mut lowest: Option<usize> = None;
    for f in failures {
        let id = f
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(index) = records
            .iter()
            .position(|r| !id.is_empty() && r.sequence() == id)
        else {
            return Outcome::Failure(response.clone());
        };
        lowest = Some(lowest.map_or(index, |l| l.min(index)));
    }
    match lowest {
        Some(i) => Outcome::Partial(i),
        None => Outcome::Success,
    }
}

struct FailureInfo<'a> {
    function_arn: &'a str,
    condition: &'a str,
    invokes: u32,
    response: Option<&'a InvokeResponse>,
    stream: &'a StreamRef,
    first: &'a Rec,
    last: &'a Rec,
    count: usize,
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The on-failure record, as Lambda sends it to an SQS/SNS destination
/// (metadata, not the records): `[ESM-DDB]` "Example on-failure record".
fn failure_record(info: FailureInfo<'_>) -> Value {
    let mut record = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": info.function_arn,
            "condition": info.condition,
            "approximateInvokeCount": info.invokes,
        },
        "version": "1.0",
        "timestamp": iso(SystemTime::now()),
        "DDBStreamBatchInfo": {
            "shardId": info.stream.public_shard,
            "startSequenceNumber": info.first.sequence(),
            "endSequenceNumber": info.last.sequence(),
            "approximateArrivalOfFirstRecord": iso(info.first.arrival),
            "approximateArrivalOfLastRecord": iso(info.last.arrival),
            "batchSize": info.count,
            "streamArn": info.stream.arn,
        },
    });
    // Records that aged out before any invocation have no response.
    if let Some(response) = info.response {
        let mut context = json!({
            "statusCode": 200,
            "executedVersion": crate::lambda::LATEST,
        });
        if let Some(e) = &response.function_error {
            context["functionError"] = Value::String(e.clone());
        }
        record["responseContext"] = context;
    } else if info.invokes > 0 {
        record["responseContext"] = json!({
            "statusCode": 200,
            "executedVersion": crate::lambda::LATEST,
        });
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64) -> Rec {
        Rec {
            stored: seq,
            value: json!({"dynamodb": {"SequenceNumber": public_sequence(seq)}}),
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
            Outcome::Partial(i) => format!("partial {i}"),
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
        let two = public_sequence(2);
        let three = public_sequence(3);
        assert_eq!(
            judged(&format!(
                r#"{{"batchItemFailures": [{{"itemIdentifier": "{three}"}}, {{"itemIdentifier": "{two}"}}]}}"#
            )),
            "partial 1"
        );
        for bad in [
            r#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
            r#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
            r#"{"batchItemFailures": [{"foo": "bar"}]}"#,
            r#"{"batchItemFailures": [{"itemIdentifier": "100000000000000000999"}]}"#,
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
    fn sequence_numbers_map_both_ways() {
        assert_eq!(public_sequence(42), "100000000000000000042");
        assert_eq!(stored_sequence("100000000000000000042"), Some(42));
        assert_eq!(stored_sequence("12"), None);
    }
}

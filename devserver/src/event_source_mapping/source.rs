//! What an event source mapping reads from: the [`EventSource`] interface.
//!
//! The poller ([`super::poller`]) and the batch judgement
//! ([`super::batch`]) are the same for every source; what differs sits
//! behind this interface:
//!
//! | | DynamoDB Streams ([`super::dynamodb_streams`]) | SQS (next) |
//! |---|---|---|
//! | order | per shard, a failed batch blocks the shard | none |
//! | done  | checkpoint moves past the batch | messages deleted |
//! | failed | retried in place (`MaximumRetryAttempts`, `BisectBatchOnFunctionError`) | left to reappear after the visibility timeout (the queue's redrive policy counts) |
//! | `itemIdentifier` | `SequenceNumber` | `messageId` |
//!
//! A source reports [`EventSource::ordered`]; the poller retries and
//! bisects only for ordered sources.

use std::time::SystemTime;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

/// One record of a batch, as the function will receive it.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// What `batchItemFailures[].itemIdentifier` names this record by.
    pub id: String,
    /// The record's position in its source (streams: the stored sequence
    /// number); increases along the source.
    pub position: i64,
    /// The record as it appears in the event's `Records`.
    pub value: Value,
    /// When the record reached the source, as near as known
    /// (`MaximumRecordAgeInSeconds`, IteratorAge).
    pub arrival: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source does not exist (yet): a table without a stream.
    #[error("{0}")]
    Missing(String),
    #[error("cannot read the source: {0}")]
    Read(String),
    #[error("{0}")]
    BadRequest(String),
}

/// Where a mapping stands in its source, for `woocom-dev streams status`.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// The source's ARN (a stream ARN).
    pub arn: Option<String>,
    /// The last record processed, in the source's own numbering.
    pub checkpoint: Option<String>,
    /// The newest record in the source.
    pub latest: Option<String>,
    /// Records not yet processed (capped at 10,000).
    pub lag: usize,
    /// Arrival of the oldest record not yet processed.
    pub oldest_arrival: Option<SystemTime>,
}

/// A source of records for an event source mapping.
pub trait EventSource: Send + Sync + 'static {
    /// Bumped whenever the source may have new records; the poller waits on
    /// it (with a slow fallback poll) instead of a timer.
    fn changes(&self) -> watch::Receiver<u64>;

    /// Resolves the source and sets where reading starts: the checkpoint
    /// of an earlier run, else the mapping's `StartingPosition`.
    fn open(&self) -> BoxFuture<'_, Result<(), SourceError>>;

    /// Whether records are delivered in order, a failed batch blocking the
    /// ones after it (streams), or independently (queues).
    fn ordered(&self) -> bool;

    /// Up to `limit` records not yet committed, at most `max_bytes` of them
    /// (but at least one), oldest first.
    fn read(
        &self,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>>;

    /// These records are processed (delivered, filtered out or discarded)
    /// and are never read again: a stream's checkpoint moves past the last
    /// of them; a queue deletes them.
    fn commit<'a>(&'a self, records: &'a [SourceRecord]) -> BoxFuture<'a, ()>;

    /// What filter patterns are matched against: the record as delivered,
    /// or (SQS) with a JSON `body` parsed, as Lambda filters it.
    fn filter_view<'a>(&self, record: &'a SourceRecord) -> std::borrow::Cow<'a, Value> {
        std::borrow::Cow::Borrowed(&record.value)
    }

    /// Lambda's event for a batch.
    fn payload(&self, records: &[SourceRecord]) -> Vec<u8>;

    /// The batch description in an on-failure record, e.g.
    /// `("DDBStreamBatchInfo", {...})`.
    fn batch_info(
        &self,
        first: &SourceRecord,
        last: &SourceRecord,
        count: usize,
    ) -> (&'static str, Value);

    /// A record as delivered before (a dead-letter entry's), for redrive.
    fn record_of(&self, value: Value) -> SourceRecord;

    fn status(&self) -> BoxFuture<'_, SourceStatus>;

    /// A position in the source's own numbering (a sequence number).
    fn parse_position(&self, text: &str) -> Option<i64>;

    /// Up to `limit` records after `after` and at most through `up_to`,
    /// regardless of the checkpoint (replay).
    fn read_between(
        &self,
        after: i64,
        up_to: i64,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>>;
}

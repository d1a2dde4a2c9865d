//! A DynamoDB table's stream as an event source: one shard per table (as
//! the engine keeps it), read in order from the checkpoint, through
//! [`DynamoDb`]'s typed stream reads (the engine's workers, its panic
//! recovery and accounting), woken by [`DynamoDb::subscribe_changes`].
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>
//!
//! Invariant: the checkpoint only moves forward, and only past records
//! that were processed (delivered, filtered out or discarded).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::event;
use super::source::{EventSource, SourceError, SourceRecord, SourceStatus};
use super::store::Store;
use crate::dynamodb::{DynamoDb, TableStream};
use crate::manifest::subscriptions::StartingPosition;

/// The engine returns at most this many records per read.
const ENGINE_PAGE: usize = 1000;
/// Records counted for the status' lag at most.
const LAG_CAP: usize = 10_000;
/// The offset between the engine's stored and public sequence numbers.
const SEQUENCE_OFFSET: u128 = 100_000_000_000_000_000_000;

/// The stored (engine) form of a public sequence number.
pub fn stored_sequence(public: &str) -> Option<i64> {
    let v: u128 = public.parse().ok()?;
    i64::try_from(v.checked_sub(SEQUENCE_OFFSET)?).ok()
}

pub fn public_sequence(stored: i64) -> String {
    (SEQUENCE_OFFSET + u128::try_from(stored.max(0)).unwrap_or(0)).to_string()
}

#[derive(Default)]
struct Reader {
    stream: Option<TableStream>,
    /// [`DynamoDb::stream_generation`] when `stream` was looked up: a
    /// stream enabled since has another ARN, which events must carry.
    generation: u64,
    /// Stored sequence number of the last record processed.
    position: i64,
}

pub struct DynamoDbStream {
    dynamodb: Arc<DynamoDb>,
    table: String,
    region: String,
    starting_position: StartingPosition,
    /// The mapping's name: its checkpoint's key.
    checkpoint_key: String,
    store: Arc<Store>,
    reader: Mutex<Reader>,
}

impl DynamoDbStream {
    pub fn new(
        dynamodb: Arc<DynamoDb>,
        table: &str,
        region: &str,
        starting_position: StartingPosition,
        checkpoint_key: &str,
        store: Arc<Store>,
    ) -> DynamoDbStream {
        DynamoDbStream {
            dynamodb,
            table: table.to_owned(),
            region: region.to_owned(),
            starting_position,
            checkpoint_key: checkpoint_key.to_owned(),
            store,
            reader: Mutex::new(Reader::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reader> {
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stream(&self) -> Option<TableStream> {
        self.lock().stream.clone()
    }

    async fn resolve(&self) -> Result<TableStream, SourceError> {
        if let Some(s) = self.stream() {
            return Ok(s);
        }
        self.resolve_fresh().await
    }

    /// The table's current stream, looked up again.
    async fn resolve_fresh(&self) -> Result<TableStream, SourceError> {
        match self.dynamodb.table_stream(&self.table).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(SourceError::Missing(format!(
                "table `{}` has no stream yet",
                self.table
            ))),
            Err(e) => Err(SourceError::Read(e.to_string())),
        }
    }

    /// Up to `limit` records after `after` (through `up_to`), at most
    /// `max_bytes` of them but at least one.
    async fn read_after(
        &self,
        stream: &TableStream,
        after: i64,
        limit: usize,
        max_bytes: usize,
        up_to: Option<i64>,
    ) -> Result<Vec<SourceRecord>, SourceError> {
        let now = SystemTime::now();
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut out: Vec<SourceRecord> = Vec::new();
        let mut bytes = 0;
        let mut position = after;
        while out.len() < limit {
            let page = self
                .dynamodb
                .stream_records(stream, position, (limit - out.len()).min(ENGINE_PAGE))
                .await
                .map_err(|e| SourceError::Read(e.to_string()))?;
            if page.last <= position {
                break;
            }
            // Records of writes that changed nothing are not in the page
            // (DynamoDB writes none); reading goes on past them.
            position = page.last;
            for r in &page.records {
                let stored = stored_sequence(&r.dynamodb.sequence_number).unwrap_or(0);
                if up_to.is_some_and(|last| stored > last) {
                    return Ok(out);
                }
                position = position.max(stored);
                let value =
                    event::event_record(r, &self.region, &stream.arn).map_err(SourceError::Read)?;
                let size = value.to_string().len();
                if !out.is_empty() && bytes + size > max_bytes {
                    return Ok(out);
                }
                bytes += size;
                // Records written while nobody read (before a restart) keep
                // their creation time; fresh ones are stamped now, which is
                // within milliseconds of their write.
                let created = r.dynamodb.approximate_creation_date_time as u64;
                let arrival = if created + 2 < now_secs {
                    SystemTime::UNIX_EPOCH + Duration::from_secs(created)
                } else {
                    now
                };
                out.push(SourceRecord {
                    id: r.dynamodb.sequence_number.clone(),
                    position: stored,
                    value,
                    arrival,
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

impl DynamoDbStream {
    /// Moves the checkpoint past `last` (never back).
    fn checkpoint(&self, last: &SourceRecord) {
        let mut reader = self.lock();
        if last.position > reader.position {
            reader.position = last.position;
            self.store
                .set_checkpoint(&self.checkpoint_key, &public_sequence(last.position));
        }
    }
}

impl EventSource for DynamoDbStream {
    fn changes(&self) -> watch::Receiver<u64> {
        self.dynamodb.subscribe_changes()
    }

    fn open(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let stream = self.resolve().await?;
            let position = match self
                .store
                .checkpoint(&self.checkpoint_key)
                .and_then(|c| stored_sequence(&c))
            {
                Some(p) => p,
                None => match self.starting_position {
                    StartingPosition::TrimHorizon => 0,
                    StartingPosition::Latest => {
                        let p = self
                            .dynamodb
                            .latest_stream_sequence(&stream)
                            .await
                            .unwrap_or(0);
                        self.store
                            .set_checkpoint(&self.checkpoint_key, &public_sequence(p));
                        p
                    }
                },
            };
            let mut reader = self.lock();
            reader.stream = Some(stream);
            reader.position = position;
            Ok(())
        })
    }

    fn ordered(&self) -> bool {
        true
    }

    fn read(
        &self,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>> {
        Box::pin(async move {
            let generation = self.dynamodb.stream_generation();
            let (stream, position) = {
                let reader = self.lock();
                let current = reader
                    .stream
                    .clone()
                    .filter(|_| reader.generation == generation);
                (current, reader.position)
            };
            let stream = match stream {
                Some(s) => s,
                None => {
                    let s = self.resolve_fresh().await?;
                    let mut reader = self.lock();
                    reader.stream = Some(s.clone());
                    reader.generation = generation;
                    s
                }
            };
            let mut records = self
                .read_after(&stream, position, limit, max_bytes, None)
                .await?;
            // A write that changes nothing writes no record in DynamoDB;
            // `stream_records` leaves those out for streams whose records
            // have both images (every stream enabled through our layer).
            // A stream the engine made alone with a narrower view type still
            // shows them; with both images they are skipped here too
            // (ENGINE-GAPS.md §12).
            while let Some(last) = records.last().cloned() {
                records.retain(|r| !is_no_op(&r.value));
                if !records.is_empty() {
                    break;
                }
                self.checkpoint(&last);
                records = self
                    .read_after(&stream, last.position, limit, max_bytes, None)
                    .await?;
            }
            Ok(records)
        })
    }

    fn commit<'a>(&'a self, records: &'a [SourceRecord]) -> BoxFuture<'a, ()> {
        if let Some(last) = records.iter().max_by_key(|r| r.position) {
            self.checkpoint(last);
        }
        Box::pin(std::future::ready(()))
    }

    fn payload(&self, records: &[SourceRecord]) -> Vec<u8> {
        let values: Vec<&Value> = records.iter().map(|r| &r.value).collect();
        event::payload(&values)
    }

    fn batch_info(
        &self,
        first: &SourceRecord,
        last: &SourceRecord,
        count: usize,
    ) -> (&'static str, Value) {
        let stream = self.stream();
        (
            "DDBStreamBatchInfo",
            json!({
                "shardId": stream.as_ref().map(|s| s.public_shard.clone()),
                "startSequenceNumber": first.id,
                "endSequenceNumber": last.id,
                "approximateArrivalOfFirstRecord": super::batch::iso(first.arrival),
                "approximateArrivalOfLastRecord": super::batch::iso(last.arrival),
                "batchSize": count,
                "streamArn": stream.map(|s| s.arn),
            }),
        )
    }

    fn record_of(&self, value: Value) -> SourceRecord {
        record_of(value)
    }

    fn status(&self) -> BoxFuture<'_, SourceStatus> {
        Box::pin(async move {
            let checkpoint = self.store.checkpoint(&self.checkpoint_key);
            let Some(stream) = self.stream() else {
                return SourceStatus {
                    checkpoint,
                    ..SourceStatus::default()
                };
            };
            let after = checkpoint.as_deref().and_then(stored_sequence).unwrap_or(0);
            let latest = match self.dynamodb.latest_stream_sequence(&stream).await {
                Ok(l) if l > 0 => Some(public_sequence(l)),
                _ => None,
            };
            let pending = self
                .read_after(&stream, after, LAG_CAP, usize::MAX, None)
                .await
                .unwrap_or_default();
            SourceStatus {
                arn: Some(stream.arn),
                checkpoint,
                latest,
                lag: pending.len(),
                oldest_arrival: pending.first().map(|r| r.arrival),
            }
        })
    }

    fn parse_position(&self, text: &str) -> Option<i64> {
        stored_sequence(text)
    }

    fn read_between(
        &self,
        after: i64,
        up_to: i64,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceRecord>, SourceError>> {
        Box::pin(async move {
            let stream = self.resolve().await?;
            self.read_after(&stream, after, limit, max_bytes, Some(up_to))
                .await
        })
    }
}

/// A stream record as delivered before (a dead letter's), to deliver again.
pub fn record_of(value: Value) -> SourceRecord {
    let id = event::sequence_number(&value).to_owned();
    SourceRecord {
        position: stored_sequence(&id).unwrap_or(0),
        id,
        value,
        arrival: SystemTime::now(),
    }
}

/// A MODIFY whose images are equal (only visible with NEW_AND_OLD_IMAGES).
fn is_no_op(record: &Value) -> bool {
    let change = &record["dynamodb"];
    record["eventName"] == "MODIFY"
        && change.get("NewImage").is_some()
        && change.get("NewImage") == change.get("OldImage")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_map_both_ways() {
        assert_eq!(public_sequence(42), "100000000000000000042");
        assert_eq!(stored_sequence("100000000000000000042"), Some(42));
        assert_eq!(stored_sequence("12"), None);
    }

    #[test]
    fn only_a_modify_with_equal_images_is_a_no_op() {
        let image = json!({"pk": {"S": "a"}});
        let modify = |new: Value, old: Value| json!({"eventName": "MODIFY", "dynamodb": {"NewImage": new, "OldImage": old}});
        assert!(is_no_op(&modify(image.clone(), image.clone())));
        assert!(!is_no_op(&modify(image.clone(), json!({"pk": {"S": "b"}}))));
        assert!(!is_no_op(
            &json!({"eventName": "INSERT", "dynamodb": {"NewImage": image}})
        ));
    }
}

//! Every stream a table has had: our own table beside the engine's.
//!
//! The engine keeps one label per table (the current stream's) and one
//! shard per table name, for the table's whole life and beyond it: records
//! of a stream that was disabled, and of a table that was deleted and made
//! again under the same name, stay in that shard. DynamoDB gives each
//! enabling of a stream a new ARN and new shards, and keeps the old
//! stream's records readable on the old ARN only
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Enabling>).
//! So each enabling is an [`Epoch`] here: the records of the table's shard
//! whose stored sequence number is above the epoch's `after` and not above
//! the next epoch's `after` are that stream's.
//!
//! The engine's sequence numbers only grow for a table (one past the
//! largest, never below the clock in microseconds), so the bounds are exact
//! as long as no record is written while a bound is taken: the caller holds
//! [`super::DynamoDb`]'s write gate for that.
//!
//! Kept in `dynamodb-streams.json` beside the database (replaced atomically;
//! `woocom-dev reset` removes it), in memory for in-memory stacks.
//!
//! Invariant: for one table, epochs are in the order they were enabled, and
//! their `after` bounds never decrease.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file beside the database.
pub const HISTORY_FILE: &str = "dynamodb-streams.json";

/// One enabling of a table's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    pub table: String,
    /// The label the engine gave it (`<seconds>.<nanoseconds>`).
    pub engine_label: String,
    /// DynamoDB's form of the label: ISO-8601 in UTC, to the millisecond.
    pub label: String,
    /// The view type the table asked for (the engine records both images
    /// whatever it is; see `streams_api::present`).
    pub view_type: String,
    /// When it was enabled (seconds since the epoch).
    pub created: f64,
    /// Records with a stored sequence number above this are this stream's.
    pub after: i64,
    /// The last stored sequence number the stream can hold, once it is
    /// disabled (or its table deleted): its shard is closed.
    pub end: Option<i64>,
    /// The table's key schema, as DescribeStream reports it.
    #[serde(default)]
    pub key_schema: Value,
}

impl Epoch {
    /// The stream's one shard, in DynamoDB's form (`shardId-<20 digits>-<8
    /// hex>`, 37 characters): the enabling time in milliseconds and a hash
    /// of the table and label, so each stream's shard has its own id.
    pub fn shard_id(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for b in self.table.bytes().chain([b'/']).chain(self.label.bytes()) {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let millis = (self.created * 1000.0).max(0.0) as u64;
        format!("shardId-{millis:020}-{hash:08x}")
    }

    /// Whether a stored sequence number is one of this stream's records.
    pub fn holds(&self, stored: i64) -> bool {
        stored > self.after && self.end.is_none_or(|end| stored <= end)
    }
}

/// The ISO-8601 label DynamoDB gives a stream enabled at the time the
/// engine's `<seconds>.<nanoseconds>` label names. Labels already in that
/// form are returned unchanged.
pub fn iso_label(engine_label: &str) -> String {
    let Some((secs, frac)) = engine_label.split_once('.') else {
        return engine_label.to_owned();
    };
    let (Ok(secs), Ok(nanos)) = (secs.parse::<i64>(), frac.parse::<u32>()) else {
        return engine_label.to_owned();
    };
    match chrono::DateTime::from_timestamp(secs, nanos.min(999_999_999)) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
        None => engine_label.to_owned(),
    }
}

/// The time an engine label names, in seconds.
pub fn label_time(engine_label: &str) -> f64 {
    engine_label.parse().unwrap_or(0.0)
}

/// The history of every table's streams.
pub struct History {
    file: Option<PathBuf>,
    epochs: Mutex<Vec<Epoch>>,
    /// Bumped by every [`History::enable`] and [`History::close`].
    generation: AtomicU64,
}

impl History {
    /// Reads `<dir>/dynamodb-streams.json` (none for a memory store). An
    /// unreadable file starts an empty history (with a warning): tables'
    /// current streams are found again from the engine.
    pub fn open(dir: Option<&Path>) -> History {
        let file = dir.map(|d| d.join(HISTORY_FILE));
        let epochs = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| match serde_json::from_str(&text) {
                Ok(epochs) => Some(epochs),
                Err(e) => {
                    tracing::warn!(error = %e, "the stream history is unreadable; starting it again");
                    None
                }
            })
            .unwrap_or_default();
        History {
            file,
            epochs: Mutex::new(epochs),
            generation: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Epoch>> {
        self.epochs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, epochs: &[Epoch]) {
        let Some(file) = &self.file else { return };
        let result = serde_json::to_vec_pretty(epochs)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = file.with_extension("json.tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(tmp, file)
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, file = %file.display(), "cannot save the stream history");
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every epoch, oldest first per table.
    pub fn all(&self) -> Vec<Epoch> {
        self.lock().clone()
    }

    /// The table's newest epoch.
    pub fn latest(&self, table: &str) -> Option<Epoch> {
        self.lock().iter().rev().find(|e| e.table == table).cloned()
    }

    /// The epoch the engine's current label names, if recorded.
    pub fn by_engine_label(&self, table: &str, engine_label: &str) -> Option<Epoch> {
        self.lock()
            .iter()
            .find(|e| e.table == table && e.engine_label == engine_label)
            .cloned()
    }

    /// The epoch a stream ARN's label names: DynamoDB's ISO label, or the
    /// engine's own (ARNs handed out before labels were rewritten).
    pub fn by_label(&self, table: &str, label: &str) -> Option<Epoch> {
        self.lock()
            .iter()
            .find(|e| e.table == table && (e.label == label || e.engine_label == label))
            .cloned()
    }

    /// Records a new stream; the table's previous one, if still open, is
    /// closed at `after` (no record could have been written between).
    pub fn enable(&self, epoch: Epoch) {
        let mut epochs = self.lock();
        for e in epochs.iter_mut().filter(|e| e.table == epoch.table) {
            if e.end.is_none() {
                e.end = Some(epoch.after.max(e.after));
            }
        }
        epochs.push(epoch);
        self.save(&epochs);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Closes the table's open stream at `end`.
    pub fn close(&self, table: &str, end: i64) {
        let mut epochs = self.lock();
        let mut changed = false;
        for e in epochs
            .iter_mut()
            .filter(|e| e.table == table && e.end.is_none())
        {
            e.end = Some(end.max(e.after));
            changed = true;
        }
        if changed {
            self.save(&epochs);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(table: &str, label: &str, after: i64) -> Epoch {
        Epoch {
            table: table.into(),
            engine_label: label.into(),
            label: iso_label(label),
            view_type: "KEYS_ONLY".into(),
            created: label_time(label),
            after,
            end: None,
            key_schema: Value::Null,
        }
    }

    #[test]
    fn engine_labels_become_iso_8601_to_the_millisecond() {
        assert_eq!(iso_label("1795439712.965914011"), "2026-11-23T13:15:12.965");
        assert_eq!(
            iso_label("2024-01-01T00:00:00.000"),
            "2024-01-01T00:00:00.000"
        );
    }

    #[test]
    fn shard_ids_have_dynamodbs_shape_and_differ_per_stream() {
        let a = epoch("orders", "1795439712.965914011", 0);
        let b = epoch("orders", "1795439799.000000001", 5);
        for id in [a.shard_id(), b.shard_id()] {
            assert_eq!(id.len(), 37, "{id}");
            assert!(id.starts_with("shardId-0000000"), "{id}");
        }
        assert_ne!(a.shard_id(), b.shard_id());
    }

    #[test]
    fn a_new_stream_closes_the_old_one_and_splits_the_records() {
        let dir = std::env::temp_dir().join(format!("woocom-history-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let history = History::open(Some(&dir));
        history.enable(epoch("orders", "1795439712.965914011", 0));
        history.close("orders", 7);
        history.enable(epoch("orders", "1795439799.000000001", 7));
        let reopened = History::open(Some(&dir));
        let all = reopened.all();
        assert_eq!(all.len(), 2);
        assert!(all[0].holds(7) && !all[0].holds(8));
        assert!(!all[1].holds(7) && all[1].holds(8));
        assert_eq!(
            reopened
                .by_label("orders", "2026-11-23T13:15:12.965")
                .map(|e| e.after),
            Some(0)
        );
        assert_eq!(
            reopened
                .by_label("orders", "1795439799.000000001")
                .map(|e| e.after),
            Some(7)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

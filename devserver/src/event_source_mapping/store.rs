//! What stream delivery keeps: each mapping's checkpoint (the last sequence
//! number delivered or discarded) and the local dead-letter queues. In
//! memory for in-process test stacks; under `<data>/streams/` next to the
//! tables when the stack is persistent, so a restart resumes where it was
//! and DLQ entries survive.
//!
//! Files are replaced atomically (write to a temporary file, rename), so a
//! crash leaves the old or the new version, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dynamodb::DataLocation;

/// One dead-letter entry: the failure record AWS would send to an SQS/SNS
/// destination, plus (locally) the records themselves so a person can
/// inspect and redrive them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DlqEntry {
    pub id: String,
    /// The queue (`on_failure = "dlq:<queue>"`).
    pub queue: String,
    pub subscription: String,
    pub function: String,
    /// What AWS writes to the destination (metadata only).
    pub failure: Value,
    /// The discarded event records, as they were delivered.
    pub records: Vec<Value>,
}

pub struct Store {
    dir: Option<PathBuf>,
    checkpoints: Mutex<BTreeMap<String, String>>,
    dlq: Mutex<BTreeMap<String, DlqEntry>>,
}

const CHECKPOINTS_FILE: &str = "checkpoints.json";
const DLQ_DIR: &str = "dlq";

impl Store {
    pub fn open(location: &DataLocation) -> Store {
        let dir = match location {
            DataLocation::Memory => None,
            DataLocation::Dir(d) => Some(d.join("streams")),
        };
        let mut checkpoints = BTreeMap::new();
        let mut dlq = BTreeMap::new();
        if let Some(dir) = &dir {
            if let Ok(text) = std::fs::read_to_string(dir.join(CHECKPOINTS_FILE)) {
                match serde_json::from_str(&text) {
                    Ok(map) => checkpoints = map,
                    Err(e) => {
                        tracing::warn!(error = %e, "stream checkpoints unreadable; starting over")
                    }
                }
            }
            if let Ok(entries) = std::fs::read_dir(dir.join(DLQ_DIR)) {
                for entry in entries.flatten() {
                    let parsed = std::fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|t| serde_json::from_str::<DlqEntry>(&t).ok());
                    if let Some(e) = parsed {
                        dlq.insert(e.id.clone(), e);
                    }
                }
            }
        }
        Store {
            dir,
            checkpoints: Mutex::new(checkpoints),
            dlq: Mutex::new(dlq),
        }
    }

    pub fn checkpoint(&self, mapping: &str) -> Option<String> {
        lock(&self.checkpoints).get(mapping).cloned()
    }

    pub fn set_checkpoint(&self, mapping: &str, sequence_number: &str) {
        let snapshot = {
            let mut map = lock(&self.checkpoints);
            map.insert(mapping.to_owned(), sequence_number.to_owned());
            self.dir.as_ref().map(|_| map.clone())
        };
        if let (Some(dir), Some(map)) = (&self.dir, snapshot)
            && let Ok(text) = serde_json::to_string_pretty(&map)
            && let Err(e) = write_atomic(dir, CHECKPOINTS_FILE, text.as_bytes())
        {
            tracing::warn!(error = %e, "cannot save stream checkpoints");
        }
    }

    pub fn add_dlq(&self, entry: DlqEntry) {
        if let Some(dir) = &self.dir
            && let Ok(text) = serde_json::to_string_pretty(&entry)
            && let Err(e) = write_atomic(
                &dir.join(DLQ_DIR),
                &format!("{}.json", entry.id),
                text.as_bytes(),
            )
        {
            tracing::warn!(error = %e, "cannot save a dead-letter entry");
        }
        lock(&self.dlq).insert(entry.id.clone(), entry);
    }

    pub fn dlq_entries(&self) -> Vec<DlqEntry> {
        let mut list: Vec<DlqEntry> = lock(&self.dlq).values().cloned().collect();
        list.sort_by(|a, b| {
            a.failure["timestamp"]
                .as_str()
                .cmp(&b.failure["timestamp"].as_str())
                .then(a.id.cmp(&b.id))
        });
        list
    }

    pub fn dlq_entry(&self, id: &str) -> Option<DlqEntry> {
        lock(&self.dlq).get(id).cloned()
    }

    pub fn remove_dlq(&self, id: &str) {
        lock(&self.dlq).remove(id);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(DLQ_DIR).join(format!("{id}.json")));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, dir.join(name))
}

//! Where a persistent stack's queues live: `<data>/sqs.db`, SQLite in WAL
//! mode. Every change is written before the request that made it is
//! answered, so an acknowledged send (or delete) survives `kill -9`: a
//! committed WAL transaction is in the operating system's hands once the
//! call returns. In-memory test stacks have no store.
//!
//! Rows are the queue and message records as JSON; the queue logic keeps
//! its indexes in memory and rebuilds them from these rows at start.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::attributes::QueueAttributes;
use super::message::Message;

pub const DATABASE_FILE: &str = "sqs.db";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRecord {
    pub name: String,
    pub attributes: QueueAttributes,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

pub struct Store {
    conn: Connection,
}

#[derive(Debug, thiserror::Error)]
#[error("the SQS store {path}: {source}")]
pub struct StoreError {
    pub path: String,
    pub source: rusqlite::Error,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let wrap = |source| StoreError {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS messages (
                 queue TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
                 PRIMARY KEY (queue, seq));",
        )
        .map_err(wrap)?;
        Ok(Store { conn })
    }

    /// Every queue with its messages. Rows that no longer parse (written by
    /// another version) are skipped with a warning.
    pub fn load(&self) -> Result<Vec<(QueueRecord, Vec<Message>)>, rusqlite::Error> {
        let mut out = Vec::new();
        let mut queues = self.conn.prepare("SELECT record FROM queues")?;
        let mut messages = self
            .conn
            .prepare("SELECT record FROM messages WHERE queue = ?1 ORDER BY seq")?;
        let records: Vec<String> = queues
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        for text in records {
            let Ok(queue) = serde_json::from_str::<QueueRecord>(&text) else {
                tracing::warn!("an SQS queue record could not be read and is skipped");
                continue;
            };
            let rows: Vec<String> = messages
                .query_map([&queue.name], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?;
            let list = rows
                .iter()
                .filter_map(|t| serde_json::from_str::<Message>(t).ok())
                .collect();
            out.push((queue, list));
        }
        Ok(out)
    }

    pub fn put_queue(&self, record: &QueueRecord) -> Result<(), rusqlite::Error> {
        let text = serde_json::to_string(record).unwrap_or_default();
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO queues (name, record) VALUES (?1, ?2)")?
            .execute(params![record.name, text])?;
        Ok(())
    }

    pub fn delete_queue(&mut self, name: &str) -> Result<(), rusqlite::Error> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM messages WHERE queue = ?1", [name])?;
        tx.execute("DELETE FROM queues WHERE name = ?1", [name])?;
        tx.commit()
    }

    /// Writes these messages and removes those, in one transaction.
    pub fn change(
        &mut self,
        queue: &str,
        put: &[&Message],
        removed: &[u64],
    ) -> Result<(), rusqlite::Error> {
        if put.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO messages (queue, seq, record) VALUES (?1, ?2, ?3)",
            )?;
            for m in put {
                let text = serde_json::to_string(m).unwrap_or_default();
                insert.execute(params![queue, m.seq as i64, text])?;
            }
            let mut delete =
                tx.prepare_cached("DELETE FROM messages WHERE queue = ?1 AND seq = ?2")?;
            for seq in removed {
                delete.execute(params![queue, *seq as i64])?;
            }
        }
        tx.commit()
    }
}

//! DynamoDB and DynamoDB Streams, served on the devserver's AWS endpoint.
//!
//! The engine is [dynoxide](https://docs.rs/dynoxide-rs), embedded as a
//! library: one SQLite database per stack, under
//! `<project>/.woocom/data/<stack>/` for `woocom-dev up`, in memory for
//! in-process test stacks. This module makes the embedding safe to expose:
//!
//! - [`guard`] refuses requests outside DynamoDB's limits before the engine
//!   sees them (deep nesting would overflow the engine's stack);
//! - [`engine`] runs calls on large-stack workers under `catch_unwind`, and
//!   short, shallow ones on the caller's thread while the engine is idle;
//! - [`streams_api`] closes gaps in the Streams API (see `ENGINE-GAPS.md`);
//! - [`faults`] injects throttling for resilience tests;
//! - [`http`] speaks AWS JSON 1.0 (gzip both ways, CRC32, request ids);
//! - [`reconcile`] creates and updates the tables declared in `dev.toml`.
//!
//! Every committed write bumps a counter that [`DynamoDb::subscribe_changes`]
//! hands out, so a stream poller wakes within milliseconds of a write.

mod engine;
pub mod faults;
pub mod guard;
pub mod http;
pub mod reconcile;
mod stream_index;
pub mod streams_api;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use crate::manifest::Manifest;
use engine::Engine;
pub use faults::{FaultRule, Faults};
pub use reconcile::{ReconcileError, ReconcileReport};
pub use wire::{ApiError, InjectedError};

/// Where a stack keeps its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLocation {
    /// Gone when the stack stops (in-process tests).
    Memory,
    /// A folder holding the SQLite database; created if missing.
    Dir(PathBuf),
}

impl DataLocation {
    /// `<folder of dev.toml>/.woocom/data/<stack name>`: what `woocom-dev up`,
    /// `tables`, `scan` and `reset` use.
    pub fn project(manifest: &Manifest) -> DataLocation {
        DataLocation::Dir(
            manifest
                .root()
                .join(".woocom")
                .join("data")
                .join(&manifest.stack.name),
        )
    }

    pub fn database_file(&self) -> Option<PathBuf> {
        match self {
            DataLocation::Memory => None,
            DataLocation::Dir(dir) => Some(dir.join(DATABASE_FILE)),
        }
    }
}

/// The database file inside a [`DataLocation::Dir`].
pub const DATABASE_FILE: &str = "dynamodb.sqlite3";
/// Names the process that has the data folder open.
const PID_FILE: &str = "woocom-dev.pid";

/// How often expired items (TTL) are deleted. DynamoDB takes up to a few
/// days; locally a short period keeps TTL testable.
pub const TTL_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Engine workers. The engine serialises its calls on one lock; a few
/// workers overlap decoding and encoding with the call in progress.
const ENGINE_WORKERS: usize = 4;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DynamoDbError {
    #[error("cannot create the data folder {}: {source}", path.display())]
    #[diagnostic(
        code(woocom::data_folder),
        help("check the folder's permissions, or pass `up --data DIR`")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the DynamoDB database {}: {source}", path.display())]
    #[diagnostic(
        code(woocom::database),
        help(
            "if the file is damaged, `woocom-dev reset` starts the stack's tables afresh (their items are lost)"
        )
    )]
    Open {
        path: PathBuf,
        source: Box<dynoxide::DynoxideError>,
    },
    #[error("{} is in use by another woocom-dev (pid {pid})", dir.display())]
    #[diagnostic(
        code(woocom::data_in_use),
        help("stop it first, or give this stack another [stack] name")
    )]
    InUse { dir: PathBuf, pid: u32 },
    #[error("cannot start the DynamoDB engine: {0}")]
    #[diagnostic(code(woocom::engine))]
    Engine(std::io::Error),
    #[error(transparent)]
    #[diagnostic(
        code(woocom::table_change),
        help(
            "DynamoDB cannot make this change in place: give the table a new name, or start clean with `woocom-dev reset`"
        )
    )]
    Reconcile(Box<ReconcileError>),
}

/// Without these indexes the store works, only slower as streams grow.
fn add_stream_indexes(path: &Path) {
    if let Err(e) = stream_index::add(path) {
        tracing::warn!(error = %e, "cannot index the stream records; stream reads and writes slow down as streams grow");
    }
}

/// A table's stream as the engine names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStream {
    pub table: String,
    /// The stream ARN (with its label).
    pub arn: String,
    /// The engine's shard id (what its iterators carry).
    pub engine_shard: String,
    /// The shard id DynamoDB Streams clients see.
    pub public_shard: String,
}

/// The DynamoDB service of one stack.
pub struct DynamoDb {
    engine: Arc<Engine>,
    /// Bumped after every committed write; receivers wake on each bump.
    changes: watch::Sender<u64>,
    faults: Faults,
    location: DataLocation,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl DynamoDb {
    /// Opens (or creates) the store. A folder in use by another live
    /// `woocom-dev` is refused: two writers would each miss the other's
    /// change signals.
    pub fn open(location: DataLocation) -> Result<Arc<DynamoDb>, DynamoDbError> {
        let (db, path) = match &location {
            DataLocation::Memory => {
                // Named, so a second connection can add the stream indexes.
                let uri = stream_index::memory_uri();
                let db = dynoxide::Database::new(&uri).map_err(|source| DynamoDbError::Open {
                    path: PathBuf::from(":memory:"),
                    source: Box::new(source),
                })?;
                add_stream_indexes(Path::new(&uri));
                (db, None)
            }
            DataLocation::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| DynamoDbError::Io {
                    path: dir.clone(),
                    source,
                })?;
                claim(dir)?;
                let file = dir.join(DATABASE_FILE);
                let db = dynoxide::Database::new(&file.to_string_lossy()).map_err(|source| {
                    DynamoDbError::Open {
                        path: file.clone(),
                        source: Box::new(source),
                    }
                })?;
                add_stream_indexes(&file);
                (db, Some(file))
            }
        };
        let engine = Engine::new(db, path, ENGINE_WORKERS).map_err(DynamoDbError::Engine)?;
        let (changes, _) = watch::channel(0);
        Ok(Arc::new(DynamoDb {
            engine,
            changes,
            faults: Faults::default(),
            location,
            sweeper: Mutex::new(None),
        }))
    }

    /// Wakes on every committed write (the value counts them). A stream
    /// poller waits on `changed()` and then reads the shards.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The engine's library API (for the stream poller, the CLI and the
    /// benchmarks). Writes made through it do not wake subscribers: call
    /// [`DynamoDb::notify_change`] after them.
    pub fn database(&self) -> dynoxide::Database {
        self.engine.database()
    }

    pub fn notify_change(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn location(&self) -> &DataLocation {
        &self.location
    }

    /// Serves one request: `operation` as named by `X-Amz-Target` (without
    /// the prefix), `body` as sent (already un-gzipped). Returns the JSON
    /// response body.
    ///
    /// A request for one item or one Query page, with no fault rules to
    /// consult, is checked by the guard's walk and decoded once, from the
    /// bytes; anything that walk or decode refuses (and every other request)
    /// takes [`DynamoDb::call_value`]'s path, which words the refusals.
    pub async fn call(self: &Arc<Self>, operation: &str, body: Bytes) -> Result<String, ApiError> {
        let Some(operation) = engine::OPERATIONS.iter().copied().find(|o| *o == operation) else {
            return Err(ApiError::unknown_operation());
        };
        if engine::is_short(operation)
            && self.faults.is_empty()
            && let Some(shape) = guard::check_request(&body)
        {
            let len = body.len();
            let raw = body.clone();
            let dispatched = self
                .engine
                .run_short(shape.expression_nesting, len, move |db| {
                    engine::dispatch(db, operation, engine::Request::Raw(&raw))
                })
                .await?;
            if let engine::Dispatched::Answered(result) = dispatched {
                if result.is_ok() && engine::is_write(operation) {
                    self.notify_change();
                }
                return result;
            }
        }
        let request = guard::parse_request(&body)?;
        self.call_value(operation, request).await
    }

    /// [`DynamoDb::call`] for a request already parsed; it still goes
    /// through every check.
    pub async fn call_value(
        self: &Arc<Self>,
        operation: &str,
        mut request: Value,
    ) -> Result<String, ApiError> {
        let Some(operation) = engine::OPERATIONS.iter().copied().find(|o| *o == operation) else {
            return Err(ApiError::unknown_operation());
        };
        if let Some(error) = self.faults.check(operation, &request) {
            return Err(error);
        }
        streams_api::check_request(operation, &request)?;
        streams_api::rewrite_request(operation, &mut request);
        let result = self
            .engine
            .run(move |db| {
                engine::dispatch(db, operation, engine::Request::Parsed(&request)).answer()
            })
            .await
            .and_then(|r| r);
        if result.is_ok() && engine::is_write(operation) {
            self.notify_change();
        }
        match (operation, result) {
            ("DescribeStream", Ok(body)) => Ok(streams_api::fix_describe_stream(body)),
            (_, result) => result,
        }
    }

    /// The table's stream, when one is enabled (for event source
    /// mappings; read through the engine's workers like any request).
    pub async fn table_stream(
        self: &Arc<Self>,
        table: &str,
    ) -> Result<Option<TableStream>, ApiError> {
        let table = table.to_owned();
        self.engine
            .run(move |db| {
                let meta = db
                    .get_table_metadata(&table)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                Ok(meta.filter(|m| m.stream_enabled).map(|m| TableStream {
                    arn: dynoxide::streams::stream_arn(&table, &m.stream_label.unwrap_or_default()),
                    engine_shard: dynoxide::streams::shard_id(&table),
                    public_shard: streams_api::public_shard_id(&table),
                    table,
                }))
            })
            .await?
    }

    /// Up to `limit` change records of `stream` after the stored sequence
    /// number `after`, oldest first, in one engine call.
    pub async fn stream_records(
        self: &Arc<Self>,
        stream: &TableStream,
        after: i64,
        limit: usize,
    ) -> Result<Vec<dynoxide::actions::get_records::Record>, ApiError> {
        let iterator = dynoxide::actions::get_shard_iterator::encode_shard_iterator(
            &stream.table,
            &stream.engine_shard,
            after,
        );
        self.engine
            .run(move |db| {
                db.get_records(dynoxide::actions::get_records::GetRecordsRequest {
                    shard_iterator: iterator,
                    limit: Some(limit),
                })
                .map(|page| page.records)
                .map_err(|e| ApiError::internal(e.to_string()))
            })
            .await?
    }

    /// The stored sequence number of `stream`'s newest record (0 when
    /// it has none).
    pub async fn latest_stream_sequence(
        self: &Arc<Self>,
        stream: &TableStream,
    ) -> Result<i64, ApiError> {
        let request = dynoxide::actions::get_shard_iterator::GetShardIteratorRequest {
            stream_arn: stream.arn.clone(),
            shard_id: stream.engine_shard.clone(),
            shard_iterator_type: "LATEST".into(),
            sequence_number: None,
        };
        self.engine
            .run(move |db| {
                let response = db
                    .get_shard_iterator(request)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                Ok(response
                    .shard_iterator
                    .as_deref()
                    .and_then(dynoxide::actions::get_shard_iterator::decode_shard_iterator)
                    .map_or(0, |(_, _, position)| position))
            })
            .await?
    }

    /// Calls an operation with a JSON request and parses the answer.
    pub async fn call_json(
        self: &Arc<Self>,
        operation: &str,
        request: Value,
    ) -> Result<Value, ApiError> {
        let body = self.call_value(operation, request).await?;
        serde_json::from_str(&body)
            .map_err(|e| ApiError::internal(format!("the engine answered with bad JSON: {e}")))
    }

    /// Creates or updates the tables `manifest` declares, and loads their
    /// fault rules.
    pub async fn reconcile(
        self: &Arc<Self>,
        manifest: &Manifest,
    ) -> Result<ReconcileReport, ReconcileError> {
        let report = reconcile::reconcile(self, manifest).await?;
        for table in manifest.tables.values() {
            if let Some(f) = &table.faults {
                let rule = FaultRule {
                    rate: f.rate,
                    error: InjectedError::parse(&f.error)
                        .unwrap_or(InjectedError::InternalServerError),
                    operations: f.operations.clone(),
                    count: None,
                };
                if let Err(e) = self.faults.set(&table.name, rule) {
                    tracing::warn!(table = %table.name, error = %e, "fault rule ignored");
                }
            }
        }
        Ok(report)
    }

    /// Starts deleting expired items every [`TTL_SWEEP_PERIOD`].
    pub fn start_ttl_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(TTL_SWEEP_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { break };
                match store.engine.run(|db| db.sweep_ttl()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(deleted)) => {
                        tracing::debug!(deleted, "TTL sweep deleted expired items");
                        store.notify_change();
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "TTL sweep failed"),
                    Err(e) => tracing::warn!(error = %e, "TTL sweep failed"),
                }
            }
        });
        if let Ok(mut sweeper) = self.sweeper.lock()
            && let Some(old) = sweeper.replace(task)
        {
            old.abort();
        }
    }

    /// Stops the sweeper and the engine workers, and gives the data folder
    /// up. Committed writes are already on disk (SQLite WAL), so nothing is
    /// flushed here.
    pub fn close(&self) {
        if let Ok(mut sweeper) = self.sweeper.lock()
            && let Some(task) = sweeper.take()
        {
            task.abort();
        }
        self.engine.shutdown();
        if let DataLocation::Dir(dir) = &self.location {
            release(dir);
        }
    }
}

impl From<ReconcileError> for DynamoDbError {
    fn from(e: ReconcileError) -> Self {
        DynamoDbError::Reconcile(Box::new(e))
    }
}

impl Drop for DynamoDb {
    fn drop(&mut self) {
        self.close();
    }
}

// ---- the data folder's owner ------------------------------------------------

/// The live process (other than this one) that holds `dir`, if any.
pub fn holder(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (pid != std::process::id() && process_alive(pid)).then_some(pid)
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        // A killed process its parent has not reaped yet is a zombie: gone.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        })
    } else {
        // Without a portable liveness check, a pid file is trusted; `reset`
        // names it so a stale one can be removed by hand.
        true
    }
}

fn claim(dir: &Path) -> Result<(), DynamoDbError> {
    if let Some(pid) = holder(dir) {
        return Err(DynamoDbError::InUse {
            dir: dir.to_owned(),
            pid,
        });
    }
    let path = dir.join(PID_FILE);
    std::fs::write(&path, std::process::id().to_string())
        .map_err(|source| DynamoDbError::Io { path, source })
}

fn release(dir: &Path) {
    let path = dir.join(PID_FILE);
    let ours = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        == Some(std::process::id());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Deletes a stack's tables (the database files). Refused while a live
/// `woocom-dev` holds the folder.
pub fn reset(location: &DataLocation) -> Result<Vec<PathBuf>, DynamoDbError> {
    let DataLocation::Dir(dir) = location else {
        return Ok(Vec::new());
    };
    if let Some(pid) = holder(dir) {
        return Err(DynamoDbError::InUse {
            dir: dir.clone(),
            pid,
        });
    }
    let mut removed = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = dir.join(format!("{DATABASE_FILE}{suffix}"));
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DynamoDbError::Io { path, source }),
        }
    }
    Ok(removed)
}

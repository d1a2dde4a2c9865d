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

mod backups;
mod checks;
mod engine;
pub mod faults;
pub mod guard;
pub mod http;
pub mod reconcile;
mod results;
pub mod sigv4;
mod stream_history;
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
use stream_history::{Epoch, History};
pub use streams_api::{Identity, StreamPage};
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

/// A table's current stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStream {
    pub table: String,
    /// The stream ARN, as DynamoDB writes it: the stack's region and
    /// account, an ISO-8601 label.
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
    /// The region and account of the stack's ARNs.
    identity: Identity,
    /// Every stream each table has had (the engine keeps only the current).
    history: Arc<History>,
    /// Point-in-time recovery settings (the engine keeps none).
    backups: Arc<backups::Backups>,
    /// Writes hold it shared; a change to a table's stream holds it alone,
    /// so the sequence number bounding the old and new streams is taken
    /// while no record can be written (see `stream_history`).
    gate: tokio::sync::RwLock<()>,
}

impl DynamoDb {
    /// Opens (or creates) the store. A folder in use by another live
    /// `woocom-dev` is refused: two writers would each miss the other's
    /// change signals.
    pub fn open(location: DataLocation) -> Result<Arc<DynamoDb>, DynamoDbError> {
        DynamoDb::open_as(location, Identity::default())
    }

    /// [`DynamoDb::open`], for a stack whose ARNs carry `identity`'s region
    /// and account (`[stack]` in dev.toml).
    pub fn open_as(
        location: DataLocation,
        identity: Identity,
    ) -> Result<Arc<DynamoDb>, DynamoDbError> {
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
        let dir = match &location {
            DataLocation::Memory => None,
            DataLocation::Dir(dir) => Some(dir.as_path()),
        };
        let history = Arc::new(History::open(dir));
        let backups = Arc::new(backups::Backups::open(dir));
        Ok(Arc::new(DynamoDb {
            engine,
            changes,
            faults: Faults::default(),
            location,
            sweeper: Mutex::new(None),
            identity,
            history,
            backups,
            gate: tokio::sync::RwLock::new(()),
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

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Changes each time a table's stream is enabled or disabled through
    /// this layer: a consumer holding a stream's ARN looks it up again.
    pub fn stream_generation(&self) -> u64 {
        self.history.generation()
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
            && !needs_our_layer(operation, &body)
            && let Some(shape) = guard::check_request(&body)
        {
            let len = body.len();
            let raw = body.clone();
            let _writing = match engine::is_write(operation) {
                true => Some(self.gate.read().await),
                false => None,
            };
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
        request: Value,
    ) -> Result<String, ApiError> {
        let Some(operation) = engine::OPERATIONS.iter().copied().find(|o| *o == operation) else {
            return Err(ApiError::unknown_operation());
        };
        if let Some(error) = self.faults.check(operation, &request) {
            return Err(error);
        }
        streams_api::check_request(operation, &request)?;
        checks::check(operation, &request)?;
        let history = self.history.clone();
        let identity = self.identity.clone();
        if engine::is_streams_operation(operation) {
            let answer = self
                .engine
                .run(move |db| streams_api::serve(db, &history, &identity, operation, &request))
                .await??;
            return Ok(answer.to_string());
        }
        let describes_table = matches!(
            operation,
            "CreateTable" | "UpdateTable" | "DeleteTable" | "DescribeTable"
        );
        let backups = self.backups.clone();
        // A change to a table's stream runs alone (see `gate`).
        let (_shared, _alone) = match operation {
            "CreateTable" | "UpdateTable" | "DeleteTable" => (None, Some(self.gate.write().await)),
            _ if engine::is_write(operation) => (Some(self.gate.read().await), None),
            _ => (None, None),
        };
        let result = self
            .engine
            .run(move |db| match operation {
                _ if describes_table => {
                    let answer = change_table(db, &history, &identity, operation, request);
                    if operation == "DeleteTable"
                        && let Ok(body) = &answer
                        && let Some(table) =
                            serde_json::from_str::<Value>(body).ok().and_then(|v| {
                                v["TableDescription"]["TableName"]
                                    .as_str()
                                    .map(str::to_owned)
                            })
                    {
                        backups.forget(&table);
                    }
                    answer
                }
                "DescribeContinuousBackups" | "UpdateContinuousBackups" => {
                    let table = existing_table(db, &request)?;
                    if operation == "DescribeContinuousBackups" {
                        Ok(backups.describe(&table).to_string())
                    } else {
                        backups.update(&table, &request).map(|v| v.to_string())
                    }
                }
                _ => {
                    if operation == "UpdateTimeToLive" {
                        check_ttl_change(db, &request)?;
                    }
                    if operation == "UpdateItem" && is_remove_only(&request) {
                        return update_remove_only(db, request);
                    }
                    // ALL_OLD of an item the update creates is nothing
                    // (the engine gives the new item's key).
                    let created = operation == "UpdateItem"
                        && request["ReturnValues"] == "ALL_OLD"
                        && !item_exists(db, &request);
                    let answer = engine::dispatch(db, operation, engine::Request::Parsed(&request))
                        .answer()?;
                    Ok(match operation {
                        "TransactGetItems" => results::project_transact_get(&request, answer),
                        _ if created => without_attributes(answer),
                        _ => answer,
                    })
                }
            })
            .await
            .and_then(|r| r);
        if result.is_ok() && engine::is_write(operation) {
            self.notify_change();
        }
        result
    }

    /// The table's stream, when one is enabled (for event source
    /// mappings; read through the engine's workers like any request).
    pub async fn table_stream(
        self: &Arc<Self>,
        table: &str,
    ) -> Result<Option<TableStream>, ApiError> {
        let table = table.to_owned();
        let history = self.history.clone();
        let identity = self.identity.clone();
        self.engine
            .run(move |db| {
                let epoch = streams_api::current_epoch(db, &history, &table)?;
                Ok(epoch.map(|epoch| TableStream {
                    arn: identity.stream_arn(&epoch),
                    engine_shard: dynoxide::streams::shard_id(&table),
                    public_shard: epoch.shard_id(),
                    table,
                }))
            })
            .await?
    }

    /// Up to `limit` change records of `stream`'s table after the stored
    /// sequence number `after`, oldest first, in one engine call, as the
    /// table's streams show them (no record for a write that changed
    /// nothing, images as each stream's view type keeps them).
    pub async fn stream_records(
        self: &Arc<Self>,
        stream: &TableStream,
        after: i64,
        limit: usize,
    ) -> Result<StreamPage, ApiError> {
        let table = stream.table.clone();
        let history = self.history.clone();
        let region = self.identity.region.clone();
        self.engine
            .run(move |db| {
                let epochs: Vec<Epoch> = history
                    .all()
                    .into_iter()
                    .filter(|e| e.table == table)
                    .collect();
                streams_api::read_records(db, &table, &epochs, &region, after, None, limit)
            })
            .await?
    }

    /// The stored sequence number of `stream`'s newest record (0 when
    /// it has none).
    pub async fn latest_stream_sequence(
        self: &Arc<Self>,
        stream: &TableStream,
    ) -> Result<i64, ApiError> {
        let table = stream.table.clone();
        self.engine
            .run(move |db| streams_api::latest_position(db, &table))
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
                let writing = store.gate.read().await;
                let swept = store.engine.run(|db| db.sweep_ttl()).await;
                drop(writing);
                match swept {
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
    let files = ["", "-wal", "-shm", "-journal"]
        .map(|suffix| format!("{DATABASE_FILE}{suffix}"))
        .into_iter()
        .chain([
            stream_history::HISTORY_FILE.to_owned(),
            backups::BACKUPS_FILE.to_owned(),
        ]);
    for name in files {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DynamoDbError::Io { path, source }),
        }
    }
    Ok(removed)
}

// ---- tables and their streams -------------------------------------------------

/// The view types a stream takes, in the API model's order.
const VIEW_TYPES: [&str; 4] = ["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"];

/// A request's table name (a `TableName` may be the table's ARN).
fn table_name(request: &Value) -> Option<String> {
    let name = request.get("TableName")?.as_str()?;
    match name.strip_prefix("arn:") {
        Some(arn) => arn
            .split_once(":table/")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_owned()),
        None => Some(name.to_owned()),
    }
}

/// What a CreateTable or UpdateTable asks of the stream: `Some((enabled,
/// view type))`, checked as DynamoDB checks it.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_StreamSpecification.html>
fn stream_request(
    operation: &str,
    request: &Value,
) -> Result<Option<(bool, Option<String>)>, ApiError> {
    let Some(spec) = request.get("StreamSpecification").filter(|s| !s.is_null()) else {
        return Ok(None);
    };
    let view = match spec.get("StreamViewType") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) if VIEW_TYPES.contains(&v.as_str()) => Some(v.clone()),
        Some(Value::String(v)) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{v}' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                VIEW_TYPES.join(", ")
            )));
        }
        // The engine's decoding words the wrong JSON types.
        Some(_) => return Ok(None),
    };
    let Some(enabled) = spec.get("StreamEnabled").and_then(Value::as_bool) else {
        return Ok(None);
    };
    let message = match (operation, enabled, &view) {
        ("CreateTable", true, None) => {
            "One or more parameter values were invalid: Table is being created with a stream enabled, UpdateViewType is required"
        }
        ("UpdateTable", true, None) => {
            "One or more parameter values were invalid: If stream is being enabled then UpdateViewType is required"
        }
        ("UpdateTable", false, Some(_)) => {
            "One or more parameter values were invalid: If stream is being disabled, then UpdateViewType must not be specified"
        }
        _ => return Ok(Some((enabled, view))),
    };
    Err(ApiError::validation(message))
}

/// Runs CreateTable, UpdateTable, DeleteTable or DescribeTable, keeping
/// the stream history in step, and answers with the table's description
/// as DynamoDB writes it (the stack's region and account in ARNs, the
/// stream's ISO-8601 label and its view type).
///
/// The engine records every stream with both images (`present` in
/// `streams_api` shows each stream's own view type), so that a write which
/// changed nothing is seen whatever the view type.
///
/// The caller holds the write gate alone for the three changes.
fn change_table(
    db: &dynoxide::Database,
    history: &History,
    identity: &Identity,
    operation: &str,
    mut request: Value,
) -> Result<String, ApiError> {
    let table = table_name(&request);
    let before = match &table {
        Some(t) => db
            .get_table_metadata(t)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        None => None,
    };
    let wanted = match operation {
        "CreateTable" | "UpdateTable" => stream_request(operation, &request)?,
        _ => None,
    };
    if let (Some((enabled, _)), Some(meta), Some(name)) = (&wanted, &before, &table)
        && operation == "UpdateTable"
    {
        // Changing the view type of an enabled stream is refused the
        // same way: it takes a disable and a new enable.
        if *enabled && meta.stream_enabled {
            return Err(ApiError::validation(format!(
                "Table already has an enabled stream: TableName: {name}"
            )));
        }
        if !*enabled && !meta.stream_enabled {
            return Err(ApiError::validation(format!(
                "Table has no stream to disable: TableName: {name}"
            )));
        }
    }
    let enabling = wanted
        .as_ref()
        .and_then(|(enabled, view)| (*enabled).then(|| view.clone()).flatten());
    if enabling.is_some() {
        request["StreamSpecification"]["StreamViewType"] =
            Value::String("NEW_AND_OLD_IMAGES".into());
    }
    let closing = before.as_ref().is_some_and(|m| m.stream_enabled)
        && (operation == "DeleteTable" || wanted.as_ref().is_some_and(|(enabled, _)| !enabled));
    let end = match (&table, closing) {
        (Some(t), true) => Some(streams_api::latest_position(db, t)?),
        _ => None,
    };
    let body = engine::dispatch(db, operation, engine::Request::Parsed(&request)).answer()?;
    if let (Some(t), Some(end)) = (&table, end) {
        history.close(t, end);
    }
    if let (Some(t), Some(view_type)) = (&table, enabling)
        && let Some(meta) = db
            .get_table_metadata(t)
            .map_err(|e| ApiError::internal(e.to_string()))?
        && meta.stream_enabled
    {
        let engine_label = meta.stream_label.clone().unwrap_or_default();
        history.enable(Epoch {
            table: t.clone(),
            label: stream_history::iso_label(&engine_label),
            created: stream_history::label_time(&engine_label),
            engine_label,
            view_type,
            after: streams_api::latest_position(db, t)?,
            end: None,
            key_schema: serde_json::from_str(&meta.key_schema).unwrap_or(Value::Null),
        });
    }
    if operation == "DescribeTable"
        && let Some(t) = &table
    {
        streams_api::current_epoch(db, history, t)?;
    }
    Ok(describe(history, identity, body))
}

/// A table description as DynamoDB writes it.
fn describe(history: &History, identity: &Identity, body: String) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&body) else {
        return identity.rewrite_arns(&body);
    };
    for key in ["TableDescription", "Table"] {
        let Some(description) = value.get_mut(key) else {
            continue;
        };
        let table = description["TableName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(label) = description["LatestStreamLabel"].as_str() else {
            continue;
        };
        let Some(epoch) = history.by_engine_label(&table, label) else {
            continue;
        };
        description["LatestStreamLabel"] = Value::String(epoch.label.clone());
        description["LatestStreamArn"] = Value::String(identity.stream_arn(&epoch));
        if let Some(spec) = description.get_mut("StreamSpecification")
            && spec.get("StreamViewType").is_some()
        {
            spec["StreamViewType"] = Value::String(epoch.view_type.clone());
        }
    }
    identity.rewrite_arns(&value.to_string())
}

/// The table a backups request names, which must exist.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeContinuousBackups.html#API_DescribeContinuousBackups_Errors>
fn existing_table(db: &dynoxide::Database, request: &Value) -> Result<String, ApiError> {
    let Some(table) = table_name(request) else {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
        ));
    };
    match db
        .get_table_metadata(&table)
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        Some(_) => Ok(table),
        None => Err(ApiError::table_not_found(format!(
            "Table not found: {table}"
        ))),
    }
}

/// UpdateTimeToLive's refusals of a change that changes nothing or the
/// wrong attribute (the engine makes them silently).
fn check_ttl_change(db: &dynoxide::Database, request: &Value) -> Result<(), ApiError> {
    let Some(table) = table_name(request) else {
        return Ok(());
    };
    let spec = &request["TimeToLiveSpecification"];
    let (Some(enabled), Some(attribute)) =
        (spec["Enabled"].as_bool(), spec["AttributeName"].as_str())
    else {
        return Ok(());
    };
    let Some(meta) = db
        .get_table_metadata(&table)
        .map_err(|e| ApiError::internal(e.to_string()))?
    else {
        return Ok(());
    };
    let current = meta.ttl_attribute.as_deref().filter(|_| meta.ttl_enabled);
    let message = match (enabled, current) {
        (true, Some(_)) => "TimeToLive is already enabled".to_owned(),
        (false, None) => "TimeToLive is already disabled".to_owned(),
        (false, Some(current)) if current != attribute => format!(
            "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
        ),
        _ => return Ok(()),
    };
    Err(ApiError::validation(message))
}

// ---- UpdateItem that only removes ---------------------------------------------

/// Whether a short request may need what only [`DynamoDb::call_value`]'s
/// path does ([`checks`], REMOVE-only updates, ALL_OLD of a created item):
/// a cheap scan of the body that keeps such requests off the short path.
fn needs_our_layer(operation: &str, body: &[u8]) -> bool {
    let has = |word: &[u8]| {
        body.windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    has(b"BETWEEN")
        || has(b"attribute_type")
        || (operation == "UpdateItem" && (has(b"REMOVE") || has(b"ALL_OLD")))
}

/// Whether the item an item request's `Key` names exists.
fn item_exists(db: &dynoxide::Database, request: &Value) -> bool {
    engine::dispatch(
        db,
        "GetItem",
        engine::Request::Parsed(&serde_json::json!({
            "TableName": request["TableName"],
            "Key": request["Key"],
            "ConsistentRead": true,
        })),
    )
    .answer()
    .ok()
    .and_then(|body| serde_json::from_str::<Value>(&body).ok())
    .is_some_and(|v| v.get("Item").is_some())
}

/// An answer without its `Attributes`.
fn without_attributes(answer: String) -> String {
    match serde_json::from_str::<Value>(&answer) {
        Ok(Value::Object(mut map)) => {
            map.remove("Attributes");
            Value::Object(map).to_string()
        }
        _ => answer,
    }
}

/// Whether an UpdateItem's only action is REMOVE. Clause keywords are
/// reserved words, so in an expression they can only be clauses.
fn is_remove_only(request: &Value) -> bool {
    let Some(expression) = request.get("UpdateExpression").and_then(Value::as_str) else {
        return false;
    };
    let words: Vec<String> = expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    words.first().is_some_and(|w| w == "REMOVE")
        && !words
            .iter()
            .any(|w| matches!(w.as_str(), "SET" | "ADD" | "DELETE"))
}

/// The name our layer gives the key attribute in the conditions it adds.
const KEY_NAME_TOKEN: &str = "#woocomPartitionKey";

/// UpdateItem whose only action is REMOVE: on an item that does not exist,
/// DynamoDB creates nothing (the engine would create the item with its
/// key), yet checks the request and its condition as for any update.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.REMOVE>
///
/// The engine runs the update with `attribute_exists(<partition key>)`
/// added to its condition, so every check it makes is made and nothing is
/// created. When that added part is what failed (the item is missing), the
/// request's own condition, if any, is evaluated on the missing item by a
/// DeleteItem with the same key (which deletes nothing and records
/// nothing).
fn update_remove_only(db: &dynoxide::Database, request: Value) -> Result<String, ApiError> {
    let run = |operation: &str, request: &Value| {
        engine::dispatch(db, operation, engine::Request::Parsed(request)).answer()
    };
    let Some(table) = table_name(&request) else {
        return run("UpdateItem", &request);
    };
    let Some(meta) = db
        .get_table_metadata(&table)
        .map_err(|e| ApiError::internal(e.to_string()))?
    else {
        return run("UpdateItem", &request);
    };
    let schema: Value = serde_json::from_str(&meta.key_schema).unwrap_or(Value::Null);
    let Some(partition_key) = schema.as_array().and_then(|keys| {
        keys.iter()
            .find(|k| k["KeyType"] == "HASH")
            .and_then(|k| k["AttributeName"].as_str())
    }) else {
        return run("UpdateItem", &request);
    };
    // A key attribute cannot be removed; the engine checks this after the
    // condition, which the added part makes fail first on a missing item.
    let key_names: Vec<&str> = schema
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["AttributeName"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let expression = request["UpdateExpression"].as_str().unwrap_or_default();
    let paths = expression
        .trim_start()
        .get(6..)
        .unwrap_or_default()
        .split(',');
    for path in paths {
        let first = path
            .trim()
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .trim();
        let name = match first.strip_prefix('#') {
            Some(_) => request["ExpressionAttributeNames"][first]
                .as_str()
                .unwrap_or(first),
            None => first,
        };
        if key_names.contains(&name) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
            )));
        }
    }
    let original = request
        .get("ConditionExpression")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut guarded = request.clone();
    guarded["ConditionExpression"] = Value::String(match &original {
        Some(c) => format!("({c}) AND attribute_exists({KEY_NAME_TOKEN})"),
        None => format!("attribute_exists({KEY_NAME_TOKEN})"),
    });
    if !guarded["ExpressionAttributeNames"].is_object() {
        guarded["ExpressionAttributeNames"] = serde_json::json!({});
    }
    guarded["ExpressionAttributeNames"][KEY_NAME_TOKEN] = Value::String(partition_key.to_owned());
    let error = match run("UpdateItem", &guarded) {
        Ok(answer) => return Ok(answer),
        Err(e) if e.code() == "ConditionalCheckFailedException" => e,
        Err(e) => return Err(e),
    };
    if item_exists(db, &request) {
        // The request's own condition failed on the item.
        return Err(error);
    }
    if let Some(condition) = original {
        // Only the names and values the condition uses (DynamoDB refuses
        // unused ones).
        let used = |map: &Value| -> Value {
            map.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| condition.contains(k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<serde_json::Map<_, _>>()
                })
                .map_or(Value::Null, Value::Object)
        };
        let mut check = serde_json::json!({
            "TableName": request["TableName"],
            "Key": request["Key"],
            "ConditionExpression": condition,
        });
        for field in ["ExpressionAttributeNames", "ExpressionAttributeValues"] {
            let kept = used(&request[field]);
            if kept.as_object().is_some_and(|m| !m.is_empty()) {
                check[field] = kept;
            }
        }
        if let Some(on_failure) = request.get("ReturnValuesOnConditionCheckFailure") {
            check["ReturnValuesOnConditionCheckFailure"] = on_failure.clone();
        }
        run("DeleteItem", &check)?;
    }
    let mut answer = serde_json::json!({});
    if request
        .get("ReturnConsumedCapacity")
        .and_then(Value::as_str)
        .is_some_and(|r| r != "NONE")
    {
        answer["ConsumedCapacity"] = serde_json::json!({"TableName": table, "CapacityUnits": 1.0});
    }
    Ok(answer.to_string())
}

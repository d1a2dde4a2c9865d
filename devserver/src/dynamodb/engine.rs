//! The embedded engine: dynoxide's library API behind a small pool of
//! worker threads.
//!
//! Why a pool of our own rather than `spawn_blocking`: engine calls recurse
//! (expression parsers, value decoding), and a stack overflow aborts the
//! process. The guard keeps requests within DynamoDB's limits; the workers'
//! large stacks are the margin behind it. Every call runs under
//! `catch_unwind`, so an engine panic becomes a 500 `InternalServerError`
//! and the worker lives on.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use dynoxide::{Database, DynoxideError};
use serde_json::Value;

use super::wire::ApiError;

/// Stack of each engine worker. Only touched pages are committed, so this
/// costs address space, not memory.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The engine, shared by every request.
pub(crate) struct Engine {
    /// Swapped for a fresh connection after an engine panic: the panicking
    /// call rolled its transaction back while unwinding, but left the
    /// engine's lock poisoned, which would fail every later call.
    db: RwLock<Database>,
    /// The file, for a persistent store (a memory store cannot be reopened).
    path: Option<PathBuf>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Engine {
    pub(crate) fn new(
        db: Database,
        path: Option<PathBuf>,
        workers: usize,
    ) -> std::io::Result<Arc<Engine>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("dynamodb-engine-{i}"))
                    .stack_size(WORKER_STACK_BYTES)
                    .spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(poisoned) => poisoned.into_inner().recv(),
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => break,
                            }
                        }
                    })?,
            );
        }
        Ok(Arc::new(Engine {
            db: RwLock::new(db),
            path,
            jobs: Mutex::new(Some(tx)),
            workers: Mutex::new(handles),
        }))
    }

    /// The engine's library API, for in-process consumers (the stream poller,
    /// the CLI, benchmarks).
    pub(crate) fn database(&self) -> Database {
        match self.db.read() {
            Ok(db) => db.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `f` against the engine on a worker thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let engine = self.clone();
        let job: Job = Box::new(move || {
            let db = engine.database();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&db)));
            if result.is_err() {
                engine.recover();
            }
            let _ = tx.send(result);
        });
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().map(|s| s.send(job).is_ok()),
            Err(_) => None,
        };
        if sent != Some(true) {
            return Err(ApiError::internal("The DynamoDB engine is shut down"));
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "the DynamoDB engine panicked; request answered with 500");
                Err(ApiError::internal("Internal server error"))
            }
            Err(_) => Err(ApiError::internal("Internal server error")),
        }
    }

    /// After a panic: reopen a persistent database so the poisoned lock is
    /// left behind. A memory database has nowhere to be reopened from; it
    /// keeps answering, with the engine's "Lock poisoned" error.
    fn recover(&self) {
        let Some(path) = &self.path else {
            tracing::error!("the in-memory DynamoDB store cannot recover from an engine panic");
            return;
        };
        match Database::new(&path.to_string_lossy()) {
            Ok(fresh) => {
                if let Ok(mut db) = self.db.write() {
                    *db = fresh;
                }
                tracing::warn!(path = %path.display(), "reopened the DynamoDB store after an engine panic");
            }
            Err(e) => tracing::error!(error = %e, "cannot reopen the DynamoDB store"),
        }
    }

    /// Stops the workers once the calls in flight finish.
    pub(crate) fn shutdown(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let handles = match self.workers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => Vec::new(),
        };
        let current = std::thread::current().id();
        for handle in handles {
            // The last Arc may be dropped on a worker: it cannot join itself.
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

/// Operations that change data: a success wakes change subscribers.
pub(crate) fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem"
            | "UpdateItem"
            | "DeleteItem"
            | "BatchWriteItem"
            | "TransactWriteItems"
            | "ExecuteStatement"
            | "ExecuteTransaction"
            | "BatchExecuteStatement"
            | "CreateTable"
            | "UpdateTable"
            | "DeleteTable"
            | "UpdateTimeToLive"
    )
}

/// Every operation the engine serves, DynamoDB's and DynamoDB Streams'.
pub(crate) const OPERATIONS: &[&str] = &[
    "CreateTable",
    "DeleteTable",
    "DescribeTable",
    "ListTables",
    "UpdateTable",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
    "ExecuteStatement",
    "ExecuteTransaction",
    "BatchExecuteStatement",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "ListStreams",
    "DescribeStream",
    "GetShardIterator",
    "GetRecords",
];

/// Streams operations, served under `DynamoDBStreams_20120810.`.
pub(crate) fn is_streams_operation(operation: &str) -> bool {
    matches!(
        operation,
        "ListStreams" | "DescribeStream" | "GetShardIterator" | "GetRecords"
    )
}

/// Decodes the request for `operation`, runs it, encodes the response.
pub(crate) fn dispatch(
    db: &Database,
    operation: &str,
    request: &Value,
) -> Result<String, ApiError> {
    fn decode<T: serde::de::DeserializeOwned>(
        operation: &str,
        request: &Value,
    ) -> Result<T, ApiError> {
        T::deserialize(request).map_err(|e| decode_error(operation, &e))
    }
    fn encode<T: serde::Serialize>(response: &T) -> Result<String, ApiError> {
        serde_json::to_string(response)
            .map_err(|e| ApiError::internal(format!("cannot encode the response: {e}")))
    }
    macro_rules! call {
        ($method:ident) => {{
            let request = decode(operation, request)?;
            match db.$method(request) {
                Ok(response) => encode(&response),
                Err(e) => Err(engine_error(operation, e)),
            }
        }};
    }
    match operation {
        "CreateTable" => call!(create_table),
        "DeleteTable" => call!(delete_table),
        "DescribeTable" => call!(describe_table),
        "ListTables" => call!(list_tables),
        "UpdateTable" => call!(update_table),
        "PutItem" => call!(put_item),
        "GetItem" => call!(get_item),
        "DeleteItem" => call!(delete_item),
        "UpdateItem" => call!(update_item),
        "Query" => call!(query),
        "Scan" => call!(scan),
        "BatchGetItem" => call!(batch_get_item),
        "BatchWriteItem" => call!(batch_write_item),
        "TransactWriteItems" => call!(transact_write_items),
        "TransactGetItems" => call!(transact_get_items),
        "UpdateTimeToLive" => call!(update_time_to_live),
        "DescribeTimeToLive" => call!(describe_time_to_live),
        "ExecuteStatement" => call!(execute_statement),
        "ExecuteTransaction" => call!(execute_transaction),
        "BatchExecuteStatement" => call!(batch_execute_statement),
        "TagResource" => call!(tag_resource),
        "UntagResource" => call!(untag_resource),
        "ListTagsOfResource" => call!(list_tags_of_resource),
        "ListStreams" => call!(list_streams),
        "DescribeStream" => call!(describe_stream),
        "GetShardIterator" => call!(get_shard_iterator),
        "GetRecords" => call!(get_records),
        _ => Err(ApiError::unknown_operation()),
    }
}

/// The engine's error as `operation` writes it on the wire. ExecuteStatement
/// writes a failed condition that carries the item in its own shape (as the
/// engine's HTTP server does).
fn engine_error(operation: &str, error: DynoxideError) -> ApiError {
    match (operation, error) {
        (
            "ExecuteStatement",
            DynoxideError::ConditionalCheckFailedException(message, Some(item)),
        ) => ApiError::from_engine(&DynoxideError::StatementConditionalCheckFailed(
            message, item,
        )),
        (_, error) => ApiError::from_engine(&error),
    }
}

/// A request the engine's types refused to decode, as DynamoDB words it.
///
/// The engine's decoders mark the class of each refusal with a prefix
/// (`VALIDATION:`, `SERIALIZATION:`, ...), which its HTTP server maps to
/// errors. That mapping is private to the engine (see ENGINE-GAPS.md), so it
/// is repeated here; no marker may reach the wire.
fn decode_error(operation: &str, e: &serde_json::Error) -> ApiError {
    let text = e.to_string();
    let stripped = strip_position(&text);
    let error = if let Some(m) = text.strip_prefix("SERIALIZATION_AS_READ:") {
        DynoxideError::SerializationException(m.to_owned())
    } else if let Some(m) = text.strip_prefix("VALIDATION_AS_READ:") {
        DynoxideError::ValidationException(m.to_owned())
    } else if let Some(m) = stripped.strip_prefix("SERIALIZATION:") {
        DynoxideError::SerializationException(m.to_owned())
    } else if let Some(m) = stripped.strip_prefix("VALIDATION_REQUEST:") {
        // PutItem, UpdateItem and DeleteItem wrap these in DynamoDB's
        // request-validation envelope; other operations report them bare.
        match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" => {
                DynoxideError::ValidationException(format!("1 validation error detected: {m}"))
            }
            _ => DynoxideError::ValidationException(m.to_owned()),
        }
    } else if let Some(m) = stripped.strip_prefix("VALIDATION:") {
        DynoxideError::ValidationException(m.to_owned())
    } else if stripped.contains("missing field")
        || stripped.contains("unknown variant")
        || stripped.contains("invalid type: null")
        || stripped.contains("Supplied AttributeValue")
    {
        // DynamoDB answers missing members, nulls and unknown enum values
        // with a ValidationException; only JSON type mismatches are
        // SerializationExceptions.
        DynoxideError::ValidationException(stripped.to_owned())
    } else if stripped.contains("empty AttributeValue") {
        DynoxideError::ValidationException(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
                .to_owned(),
        )
    } else {
        DynoxideError::SerializationException(stripped.to_owned())
    };
    ApiError::from_engine(&error)
}

/// serde_json's message without its ` at line N column N` suffix (the
/// position is in our parsed copy, not in anything the client sent).
fn strip_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains("column") => &text[..i],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_panic_is_a_500_and_the_worker_lives_on() {
        let engine = Engine::new(Database::memory().expect("db"), None, 1).expect("engine");
        let err = engine
            .run(|_db| -> () { panic!("engine bug") })
            .await
            .expect_err("panic is an error");
        assert_eq!(err.status, http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code(), "InternalServerError");
        // The only worker survived its panic.
        let tables = engine
            .run(|db| dispatch(db, "ListTables", &serde_json::json!({})))
            .await
            .expect("worker alive");
        assert!(tables.is_ok());
        engine.shutdown();
    }
}

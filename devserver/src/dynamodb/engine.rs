//! The embedded engine: dynoxide's library API behind a small pool of
//! worker threads, with short calls made on the caller's thread.
//!
//! Why a pool of our own rather than `spawn_blocking`: engine calls recurse
//! (expression parsers, value decoding), and a stack overflow aborts the
//! process. The guard keeps requests within DynamoDB's limits; the workers'
//! large stacks are the margin behind it. Every call runs under
//! `catch_unwind`, so an engine panic becomes a 500 `InternalServerError`
//! and the worker lives on.
//!
//! A hand-off to a worker and back costs two thread wake-ups, more than a
//! GetItem costs the engine. So [`Engine::run_short`] makes a call on the
//! caller's own (async runtime) thread when the call is short and shallow
//! and the engine is idle: one item or one Query page ([`is_short`]), no
//! expression nested more than [`INLINE_MAX_EXPRESSION_NESTING`] deep
//! (tested to fit a quarter of a runtime thread's stack in a debug build),
//! no call on the workers in progress, and no other call on a runtime
//! thread. The engine serialises calls on one lock, so a second concurrent
//! call would only wait for it, and a runtime thread that waits on a lock
//! serves nothing else meanwhile: under concurrency, calls go to the
//! workers as before, and at most one runtime thread is ever in the engine.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use dynoxide::{Database, DynoxideError};
use serde_json::Value;

use super::wire::ApiError;

/// Stack of each engine worker. Only touched pages are committed, so this
/// costs address space, not memory.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The deepest parenthesis nesting of a request's expressions that is run
/// off the workers' large stacks (DynamoDB allows up to 300 operators; real
/// expressions nest a few levels).
pub(crate) const INLINE_MAX_EXPRESSION_NESTING: usize = 16;

/// Bodies above this go to the workers: decoding a large item takes long
/// enough to hold up the other tasks of a runtime thread.
pub(crate) const INLINE_MAX_BODY_BYTES: usize = 64 * 1024;

/// Operations whose calls are short enough to make on a runtime thread:
/// one item, or one page of a Query (the engine stops a page at 1 MB).
pub(crate) fn is_short(operation: &str) -> bool {
    matches!(
        operation,
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query"
    )
}

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
    /// Calls sent to the workers and not finished. While any is, a short
    /// call goes to the workers too rather than block a runtime thread
    /// behind it on the engine's lock.
    pooled: AtomicUsize,
    /// Set while a runtime thread is making a call (see `run_short`).
    inline: AtomicBool,
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
            pooled: AtomicUsize::new(0),
            inline: AtomicBool::new(false),
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
            let result = engine.call(f);
            engine.pooled.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(result);
        });
        self.pooled.fetch_add(1, Ordering::AcqRel);
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().map(|s| s.send(job).is_ok()),
            Err(_) => None,
        };
        if sent != Some(true) {
            self.pooled.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::internal("The DynamoDB engine is shut down"));
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiError::internal("Internal server error")))
    }

    /// Runs a short call (see the module notes) on this thread when the
    /// engine is idle, on a worker otherwise: `expression_nesting` and
    /// `body_len` are the guard's account of the request.
    pub(crate) async fn run_short<T, F>(
        self: &Arc<Self>,
        expression_nesting: usize,
        body_len: usize,
        f: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> T + Send + 'static,
    {
        let shallow = expression_nesting <= INLINE_MAX_EXPRESSION_NESTING
            && body_len <= INLINE_MAX_BODY_BYTES;
        if !shallow
            || self.pooled.load(Ordering::Acquire) > 0
            || self
                .inline
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return self.run(f).await;
        }
        let result = self.call(f);
        self.inline.store(false, Ordering::Release);
        result
    }

    /// Makes one call on this thread, a panic turned into a 500.
    fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Database) -> T,
    {
        let db = self.database();
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(&db))) {
            Ok(value) => Ok(value),
            Err(panic) => {
                drop(db);
                self.recover();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "the DynamoDB engine panicked; request answered with 500");
                Err(ApiError::internal("Internal server error"))
            }
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
    // Served by our layer, not the engine.
    "DescribeEndpoints",
    "DescribeContinuousBackups",
    "UpdateContinuousBackups",
];

/// Streams operations, served under `DynamoDBStreams_20120810.`.
pub(crate) fn is_streams_operation(operation: &str) -> bool {
    matches!(
        operation,
        "ListStreams" | "DescribeStream" | "GetShardIterator" | "GetRecords"
    )
}

/// A request as [`dispatch`] decodes it.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    /// Parsed by the guard: a refusal to decode is answered.
    Parsed(&'a Value),
    /// The body as sent, which the guard's walk let through: decoded
    /// straight into the operation's type, the one parse it gets. A refusal
    /// to decode is [`Dispatched::Undecoded`] (and nothing has run), so that
    /// the caller can answer it from the parsed tree, whose error messages
    /// (positions, member order) are the ones clients see.
    Raw(&'a [u8]),
}

/// What [`dispatch`] did.
#[derive(Debug)]
pub(crate) enum Dispatched {
    Answered(Result<String, ApiError>),
    /// A [`Request::Raw`] did not decode; the engine was not called.
    Undecoded,
}

impl Dispatched {
    /// The answer to a [`Request::Parsed`], which always has one.
    pub(crate) fn answer(self) -> Result<String, ApiError> {
        match self {
            Dispatched::Answered(answer) => answer,
            Dispatched::Undecoded => Err(ApiError::internal("the request did not decode")),
        }
    }
}

/// Decodes the request for `operation`, runs it, encodes the response.
pub(crate) fn dispatch(db: &Database, operation: &str, request: Request<'_>) -> Dispatched {
    fn decode<T: serde::de::DeserializeOwned>(
        operation: &str,
        request: Request<'_>,
    ) -> Result<T, Dispatched> {
        match request {
            Request::Parsed(value) => T::deserialize(value)
                .map_err(|e| Dispatched::Answered(Err(decode_error(operation, &e)))),
            Request::Raw(body) => serde_json::from_slice(body).map_err(|_| Dispatched::Undecoded),
        }
    }
    fn encode<T: serde::Serialize>(response: &T) -> Result<String, ApiError> {
        serde_json::to_string(response)
            .map_err(|e| ApiError::internal(format!("cannot encode the response: {e}")))
    }
    macro_rules! call {
        ($method:ident) => {{
            match decode(operation, request) {
                Ok(request) => Dispatched::Answered(match db.$method(request) {
                    Ok(response) => encode(&response),
                    Err(e) => Err(engine_error(operation, e)),
                }),
                Err(undecoded) => undecoded,
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
        _ => Dispatched::Answered(Err(ApiError::unknown_operation())),
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

    /// The deepest requests [`Engine::run_short`] makes on a runtime thread
    /// (documents at DynamoDB's nesting limit, expressions at
    /// [`INLINE_MAX_EXPRESSION_NESTING`]) fit in a quarter of the 2 MiB
    /// stack tokio gives its threads, in this (unoptimised) build. An
    /// overflow would abort the test binary.
    #[test]
    fn short_calls_fit_in_a_quarter_of_a_runtime_threads_stack() {
        let db = Database::memory().expect("db");
        let create = serde_json::json!({
            "TableName": "deep",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        });
        dispatch(&db, "CreateTable", Request::Parsed(&create))
            .answer()
            .expect("table");
        let n = INLINE_MAX_EXPRESSION_NESTING;
        // `c AND (c OR c AND (c OR ...))`: parentheses that matter (the
        // engine refuses redundant ones).
        let parens = |c: &str| (0..n).fold(c.to_owned(), |e, _| format!("{c} AND ({c} OR {e})"));
        let mut map = r#"{"S":"leaf"}"#.to_owned();
        let mut list = r#"{"S":"leaf"}"#.to_owned();
        let mut path = "doc".to_owned();
        for _ in 0..31 {
            map = format!(r#"{{"M":{{"a":{map}}}}}"#);
            list = format!(r#"{{"L":[{list}]}}"#);
            path.push_str(".a");
        }
        let key = r#""pk":{"S":"p"},"sk":{"S":"s"}"#;
        let condition = format!("{path} <> :x AND {}", parens("x <> :x"));
        let update_condition = format!("attribute_exists({path}) AND {condition}");
        // One level past the limit passes the guard, for the engine's own
        // refusal.
        let too_deep = format!(r#"{{"M":{{"a":{map}}}}}"#);
        let requests = [
            (
                "PutItem",
                format!(r#"{{"TableName":"deep","Item":{{{key},"doc":{too_deep}}}}}"#),
            ),
            (
                "PutItem",
                format!(r#"{{"TableName":"deep","Item":{{{key},"doc":{map},"lst":{list}}}}}"#),
            ),
            (
                "UpdateItem",
                format!(
                    r#"{{"TableName":"deep","Key":{{{key}}},"UpdateExpression":"SET {path} = :v, lst = list_append(lst, :l)",
                    "ConditionExpression":"{}","ExpressionAttributeValues":{{":v":{{"S":"v"}},":l":{{"L":[{{"S":"x"}}]}},":x":{{"S":"x"}}}},
                    "ReturnValues":"ALL_NEW"}}"#,
                    update_condition
                ),
            ),
            (
                "GetItem",
                format!(
                    r#"{{"TableName":"deep","Key":{{{key}}},"ProjectionExpression":"{path}, lst[0][0][0]"}}"#
                ),
            ),
            (
                "Query",
                format!(
                    r#"{{"TableName":"deep","KeyConditionExpression":"pk = :p","FilterExpression":"{}",
                    "ExpressionAttributeValues":{{":p":{{"S":"p"}},":x":{{"S":"x"}}}}}}"#,
                    condition
                ),
            ),
            (
                "DeleteItem",
                format!(
                    r#"{{"TableName":"deep","Key":{{{key}}},"ConditionExpression":"{}","ReturnValues":"ALL_OLD",
                    "ExpressionAttributeValues":{{":x":{{"S":"x"}}}}}}"#,
                    condition
                ),
            ),
        ];
        let deepest = requests
            .iter()
            .map(|(operation, body)| {
                crate::dynamodb::guard::check_request(body.as_bytes())
                    .unwrap_or_else(|| panic!("{operation} passes the guard"))
                    .expression_nesting
            })
            .max();
        assert_eq!(deepest, Some(n), "the expressions reach the bound");
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn_scoped(scope, || {
                    for (i, (operation, body)) in requests.iter().enumerate() {
                        let answer = dispatch(&db, operation, Request::Raw(body.as_bytes()));
                        match answer {
                            Dispatched::Answered(Err(e)) if i == 0 => {
                                assert_eq!(e.code(), "ValidationException", "{e}");
                            }
                            answer => assert!(
                                matches!(answer, Dispatched::Answered(Ok(_))),
                                "{operation}: {answer:?}"
                            ),
                        }
                    }
                })
                .expect("thread")
                .join()
                .expect("no panic");
        });
    }

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
            .run(|db| dispatch(db, "ListTables", Request::Parsed(&serde_json::json!({}))).answer())
            .await
            .expect("worker alive");
        assert!(tables.is_ok());
        engine.shutdown();
    }
}

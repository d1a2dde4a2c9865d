//! The Lambda service: runs function binaries as child processes that talk
//! to an emulated Runtime API, one invocation at a time per instance, and
//! exposes the Invoke API.
//!
//! Other services reach it only through the [`Invoker`] interface, which
//! [`LambdaHost`] implements: invoke synchronously (`RequestResponse`) or
//! queue an event (`Event`, with Lambda's asynchronous semantics, see
//! [`event_invoke`]).

pub mod build;
pub mod event_invoke;
mod instance;
mod invocation;
pub mod invoke_api;
mod logs;
mod pool;
mod runtime_api;
#[cfg(test)]
mod runtime_api_tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::manifest;
pub use logs::{FUNCTION_LOG_TARGET, tail_4k};
use pool::FunctionPool;

/// Lambda's synchronous payload limit, request and response alike; the
/// Runtime API accepts 100 bytes more for framing.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
pub const MAX_RUNTIME_RESPONSE: usize = MAX_SYNC_PAYLOAD + 100;
/// Asynchronous (`Event`) invocation payload limit.
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;

/// The version every local invocation runs: there is no publishing locally.
pub const LATEST: &str = "$LATEST";

/// What the host needs to know about the environment it runs functions in.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub region: String,
    pub account_id: String,
    /// Variables every function gets on top of Lambda's own, e.g.
    /// `AWS_ENDPOINT_URL_DYNAMODB` pointing at the devserver.
    pub shared_env: BTreeMap<String, String>,
}

/// A function ready to run: its configuration and its built binary.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub config: manifest::Function,
    pub binary: PathBuf,
    /// Identifies the binary's build (its modification time): cargo
    /// rewrites the same path, so a new build is only seen here.
    pub stamp: u128,
}

impl FunctionSpec {
    pub fn stamp_of(binary: &std::path::Path) -> u128 {
        std::fs::metadata(binary)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos())
    }
}

/// One invocation as a caller asks for it.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// The invocation's request id (`Lambda-Runtime-Aws-Request-Id`); one is
    /// made when absent. The retries of an asynchronous invocation keep the
    /// id its `202` answer gave, as Lambda does.
    pub request_id: Option<String>,
    /// How long the caller waits once the function is ready to run (a
    /// rebuild in progress holds the invocation first): API Gateway's
    /// integration timeout. The function's own timeout applies regardless;
    /// an invocation the caller stops waiting for still runs to its end, as
    /// in Lambda.
    pub caller_timeout: Option<Duration>,
    /// Base64 JSON from `X-Amz-Client-Context`, passed on to the runtime.
    pub client_context: Option<String>,
    /// Keep the invocation's log lines for `X-Amz-Log-Type: Tail`.
    pub tail_logs: bool,
    /// X-Ray trace header to pass on; one is made when absent.
    pub trace_id: Option<String>,
}

/// How an invocation ended, as the Invoke API reports it: a function error
/// is still a completed invocation (HTTP 200 with `X-Amz-Function-Error`).
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub request_id: String,
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<String>,
    /// The invocation's log (START ... REPORT), when asked for.
    pub log: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("Function not found: {arn}")]
    FunctionNotFound { arn: String },
    #[error("{0}")]
    RequestTooLarge(String),
    #[error("the Lambda host is shutting down")]
    ShuttingDown,
    /// The caller's [`InvokeRequest::caller_timeout`] passed first.
    #[error("no answer within {0:?}")]
    CallerTimedOut(Duration),
    /// The function's queue of asynchronous events is full (Lambda answers
    /// `429 TooManyRequestsException`).
    #[error("{0}")]
    TooManyRequests(String),
}

/// Where asynchronous invocation records and discarded events go
/// (`DestinationConfig`'s `OnSuccess` / `OnFailure`, `DeadLetterConfig`,
/// a stream mapping's `OnFailure`): the stack routes a destination to its
/// queue, topic or function.
pub trait DestinationSink: Send + Sync {
    /// Sends `body` to `to`, with string message attributes (a dead-letter
    /// message's `RequestID`, `ErrorCode`, `ErrorMessage`).
    fn deliver(
        &self,
        to: &crate::manifest::Destination,
        body: String,
        attributes: &[(&str, String)],
    ) -> Result<(), String>;
}

/// How services other than Lambda invoke functions: the REST and WebSocket
/// gateways, event source mappings and (later) queues, topics and buses.
/// [`LambdaHost`] implements it; router tests implement it with a fake.
pub trait Invoker: Send + Sync + 'static {
    /// Invokes `function` synchronously (`RequestResponse`): the answer, a
    /// function error (still `Ok`, with `function_error` set), or why it
    /// could not run.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, LambdaError>>;

    /// Queues an asynchronous (`Event`) invocation and returns its request
    /// id at once; retries and event age follow the function's
    /// [`manifest::EventInvokeConfig`].
    fn invoke_event(&self, function: &str, request: InvokeRequest) -> Result<String, LambdaError>;

    /// The ARN Lambda gives `function` (for events and failure records).
    fn function_arn(&self, function: &str) -> String;

    /// The last failed build of `function` while its previous version
    /// serves (shown by the gateways); `None` for a fake or a clean build.
    fn build_error(&self, _function: &str) -> Option<String> {
        None
    }
}

/// The Lambda service of one stack.
pub struct LambdaHost {
    settings: HostSettings,
    functions: RwLock<HashMap<String, Arc<FunctionPool>>>,
    /// Functions being rebuilt: their invocations wait, so that none runs
    /// the old code once the new build is ready (hot reload holds them).
    held: tokio::sync::watch::Sender<BTreeSet<String>>,
    /// The last failed build of a function, while its old version serves.
    build_errors: RwLock<HashMap<String, String>>,
    /// Each function's queue of asynchronous events.
    events: event_invoke::EventQueues,
    /// Where destinations' records go (none until the stack sets it).
    destinations: RwLock<Option<Arc<dyn DestinationSink>>>,
}

impl LambdaHost {
    pub fn new(settings: HostSettings, functions: Vec<FunctionSpec>) -> Arc<LambdaHost> {
        let host = Arc::new(LambdaHost {
            settings,
            functions: RwLock::new(HashMap::new()),
            held: tokio::sync::watch::Sender::new(BTreeSet::new()),
            build_errors: RwLock::new(HashMap::new()),
            events: event_invoke::EventQueues::default(),
            destinations: RwLock::new(None),
        });
        for spec in functions {
            host.put_function(spec);
        }
        host
    }

    /// Adds a function or replaces its configuration and binary. Instances of
    /// the previous version finish what they are doing and then stop.
    pub fn put_function(&self, spec: FunctionSpec) {
        let mut functions = self
            .functions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = spec.config.name.clone();
        match functions.get(&name) {
            Some(pool) => pool.replace_spec(spec),
            None => {
                let pool = FunctionPool::new(spec, self.settings.clone());
                functions.insert(name, pool);
            }
        }
    }

    /// Stops a function removed from dev.toml: its instances finish what
    /// they are doing, then stop.
    pub fn remove_function(&self, name: &str) {
        let removed = self
            .functions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        if let Some(pool) = removed {
            pool.shutdown();
        }
    }

    /// Makes new invocations of these functions wait until [`release`].
    ///
    /// [`release`]: LambdaHost::release
    pub fn hold(&self, names: &[String]) {
        self.held
            .send_modify(|held| held.extend(names.iter().cloned()));
    }

    pub fn release(&self, names: &[String]) {
        self.held.send_modify(|held| {
            for n in names {
                held.remove(n);
            }
        });
    }

    /// Waits while `function` is held for a rebuild.
    pub async fn ready(&self, function: &str) {
        if !self.held.borrow().contains(function) {
            return;
        }
        let mut rx = self.held.subscribe();
        let _ = rx.wait_for(|held| !held.contains(function)).await;
    }

    /// Records (or clears) the failed build of a function whose previous
    /// version keeps serving.
    pub fn set_build_error(&self, function: &str, error: Option<String>) {
        let mut errors = self
            .build_errors
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match error {
            Some(e) => errors.insert(function.to_owned(), e),
            None => errors.remove(function),
        };
    }

    pub fn build_error(&self, function: &str) -> Option<String> {
        let errors = self
            .build_errors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.is_empty() {
            return None;
        }
        errors.get(function).cloned()
    }

    /// The binary a function currently runs.
    pub fn binary_of(&self, name: &str) -> Option<PathBuf> {
        self.pool(name).map(|p| p.spec().binary.clone())
    }

    pub fn function_names(&self) -> Vec<String> {
        let functions = self
            .functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut names: Vec<String> = functions.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn function_arn(&self, name: &str) -> String {
        function_arn(&self.settings, name)
    }

    fn pool(&self, name: &str) -> Option<Arc<FunctionPool>> {
        self.functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub fn has_function(&self, name: &str) -> bool {
        self.pool(name).is_some()
    }

    /// Invokes a function synchronously and waits for it to finish, fail
    /// or time out (the function's own timeout).
    pub async fn invoke(
        &self,
        function: &str,
        request: InvokeRequest,
    ) -> Result<InvokeResponse, LambdaError> {
        // A function being built (new, or rebuilt) is held: wait for it
        // before looking it up, so a function added to dev.toml answers
        // once built instead of "not found" meanwhile.
        self.ready(function).await;
        let pool = self
            .pool(function)
            .ok_or_else(|| LambdaError::FunctionNotFound {
                arn: self.function_arn(function),
            })?;
        if request.payload.len() > MAX_SYNC_PAYLOAD {
            return Err(LambdaError::RequestTooLarge(format!(
                "{} byte payload is too large for the RequestResponse invocation type (limit {MAX_SYNC_PAYLOAD} bytes)",
                request.payload.len()
            )));
        }
        match request.caller_timeout {
            None => pool.invoke(request).await,
            Some(limit) => tokio::time::timeout(limit, pool.invoke(request))
                .await
                .map_err(|_| LambdaError::CallerTimedOut(limit))?,
        }
    }

    /// Queues an asynchronous invocation (see [`event_invoke`]).
    pub fn invoke_event(
        self: &Arc<Self>,
        function: &str,
        request: InvokeRequest,
    ) -> Result<String, LambdaError> {
        let pool = self
            .pool(function)
            .ok_or_else(|| LambdaError::FunctionNotFound {
                arn: self.function_arn(function),
            })?;
        if request.payload.len() > MAX_ASYNC_PAYLOAD {
            return Err(LambdaError::RequestTooLarge(format!(
                "{} byte payload is too large for the Event invocation type (limit {MAX_ASYNC_PAYLOAD} bytes)",
                request.payload.len()
            )));
        }
        let config = pool.spec().config.event_invoke.clone();
        self.events
            .enqueue(Arc::downgrade(self), function, config, request)
    }

    /// Sets where asynchronous invocations' destination records go.
    pub fn set_destinations(&self, sink: Arc<dyn DestinationSink>) {
        *self
            .destinations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    pub(crate) fn destinations(&self) -> Option<Arc<dyn DestinationSink>> {
        self.destinations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asynchronous events of `function` accepted and not yet finished.
    pub fn queued_events(&self, function: &str) -> usize {
        self.events.queued(function)
    }

    /// Instances currently alive per function (for status output and tests).
    pub fn instance_counts(&self) -> BTreeMap<String, usize> {
        let functions = self
            .functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        functions
            .iter()
            .map(|(name, pool)| (name.clone(), pool.live_instances()))
            .collect()
    }

    /// Stops every instance and waits until their processes are gone.
    pub async fn shutdown(&self) {
        let pools: Vec<Arc<FunctionPool>> = self
            .functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for pool in &pools {
            pool.shutdown();
        }
        for pool in &pools {
            pool.wait_stopped(Duration::from_secs(5)).await;
        }
    }
}

/// The host's [`Invoker`] is an `Arc` (asynchronous events outlive the
/// call that queued them).
impl Invoker for Arc<LambdaHost> {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, LambdaError>> {
        Box::pin(LambdaHost::invoke(self, function, request))
    }

    fn invoke_event(&self, function: &str, request: InvokeRequest) -> Result<String, LambdaError> {
        LambdaHost::invoke_event(self, function, request)
    }

    fn function_arn(&self, function: &str) -> String {
        LambdaHost::function_arn(self, function)
    }

    fn build_error(&self, function: &str) -> Option<String> {
        LambdaHost::build_error(self, function)
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        let functions = self
            .functions
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for pool in functions.values() {
            pool.shutdown();
        }
    }
}

pub fn function_arn(settings: &HostSettings, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        settings.region, settings.account_id
    )
}

/// The body Lambda reports for a function error it raises itself (timeout,
/// crash), shaped as the runtime's own error objects.
pub(crate) fn error_payload(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// A new X-Ray trace header (`Root=1-<epoch hex>-<96 bits>;Parent=..;Sampled=0`).
pub fn new_trace_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // The first 96 and 64 bits of two v4 UUIDs, as their hex spelled them.
    let root = uuid::Uuid::new_v4().as_u128() >> 32;
    let parent = uuid::Uuid::new_v4().as_u128() >> 64;
    format!("Root=1-{now:08x}-{root:024x};Parent={parent:016x};Sampled=0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_id_has_x_rays_shape() {
        let id = super::new_trace_id();
        let rest = id.strip_prefix("Root=1-").expect("root");
        let (root, rest) = rest.split_once(';').expect("parent");
        let (epoch, random) = root.split_once('-').expect("two parts");
        let parent = rest.strip_prefix("Parent=").expect("parent");
        let (parent, sampled) = parent.split_once(';').expect("sampled");
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        assert!(epoch.len() == 8 && hex(epoch), "{id}");
        assert!(random.len() == 24 && hex(random), "{id}");
        assert!(parent.len() == 16 && hex(parent), "{id}");
        assert_eq!(sampled, "Sampled=0");
        assert_ne!(super::new_trace_id(), id);
    }
}

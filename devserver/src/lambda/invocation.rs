//! One invocation as it travels between the pool that queues it, the
//! instance that runs it and the Runtime API that hands it over: shared
//! types with no behaviour, so that those three modules need not import
//! each other.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

/// What `/next` hands the runtime.
#[derive(Debug)]
pub(crate) struct Dispatch {
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub trace_id: String,
    /// Epoch milliseconds; set when the invocation starts on an instance.
    pub deadline_ms: u64,
}

/// What an instance reports when an invocation ends.
#[derive(Debug)]
pub(crate) enum Completion {
    Response(Bytes),
    Error(Bytes),
}

/// An invocation waiting for an instance.
pub(crate) struct Pending {
    pub dispatch: Dispatch,
    pub done: oneshot::Sender<Completion>,
    pub log: Option<Arc<Mutex<String>>>,
}

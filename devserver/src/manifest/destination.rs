//! Where Lambda sends what it could not (or did) process: asynchronous
//! invocation destinations (`on_success`, `on_failure`), a function's
//! dead-letter queue (`dead_letter`), and a stream mapping's `on_failure`.
//! Written as `queue:<name>`, `topic:<name>` or `function:<name>`, naming a
//! queue, topic or function of the same `dev.toml`.
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Function, Queue, Topic};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Destination {
    /// A standard SQS queue of `[queues]`.
    Queue(String),
    /// A standard SNS topic of `[topics]`.
    Topic(String),
    /// A function of `[functions]` (invoked asynchronously).
    Function(String),
}

/// Which kinds a field accepts.
#[derive(Debug, Clone, Copy)]
pub struct Accepts {
    pub function: bool,
}

impl Destination {
    /// Reads `queue:<name>`, `topic:<name>` or `function:<name>`.
    pub fn parse(text: &str) -> Option<Destination> {
        let (kind, name) = text.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        let name = name.to_owned();
        match kind {
            "queue" => Some(Destination::Queue(name)),
            "topic" => Some(Destination::Topic(name)),
            "function" => Some(Destination::Function(name)),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(n) | Destination::Topic(n) | Destination::Function(n) => n,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Queue(_) => "queue",
            Destination::Topic(_) => "topic",
            Destination::Function(_) => "function",
        }
    }

    /// The expected form, for messages.
    pub fn forms(accepts: Accepts) -> &'static str {
        if accepts.function {
            "`queue:<name>`, `topic:<name>` or `function:<name>`"
        } else {
            "`queue:<name>` or `topic:<name>`"
        }
    }

    /// Checks that it names a standard queue, a standard topic or a
    /// function of the stack, as Lambda requires of destinations.
    pub fn check(
        &self,
        accepts: Accepts,
        queues: &BTreeMap<String, Queue>,
        topics: &BTreeMap<String, Topic>,
        functions: &BTreeMap<String, Function>,
    ) -> Result<(), String> {
        fn declared<V>(m: &BTreeMap<String, V>) -> String {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            }
        }
        match self {
            Destination::Queue(q) => match queues.get(q) {
                Some(queue) if queue.fifo_queue => Err(format!(
                    "queue `{q}` is a FIFO queue; Lambda sends to standard queues only"
                )),
                Some(_) => Ok(()),
                None => Err(format!(
                    "queue `{q}` is not in [queues] (declared: {})",
                    declared(queues)
                )),
            },
            Destination::Topic(t) => match topics.get(t) {
                Some(topic) if topic.fifo_topic => Err(format!(
                    "topic `{t}` is a FIFO topic; Lambda sends to standard topics only"
                )),
                Some(_) => Ok(()),
                None => Err(format!(
                    "topic `{t}` is not in [topics] (declared: {})",
                    declared(topics)
                )),
            },
            Destination::Function(f) if !accepts.function => Err(format!(
                "function `{f}`: a function cannot be the target here; name {}",
                Destination::forms(accepts)
            )),
            Destination::Function(f) if functions.contains_key(f) => Ok(()),
            Destination::Function(f) => Err(format!(
                "function `{f}` is not in [functions] (declared: {})",
                declared(functions)
            )),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

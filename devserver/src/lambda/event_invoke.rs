//! Asynchronous invocation (`InvocationType: Event`) with Lambda's
//! semantics: the caller gets the request id at once; the event waits in
//! the function's queue; a failing invocation is retried
//! (`MaximumRetryAttempts`, 0-2) with the same request id, and an event
//! older than `MaximumEventAgeInSeconds` is discarded instead of run.
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html>
//!
//! Differences from AWS, on purpose:
//! - Lambda waits about one and then two minutes between retries of a
//!   function error; locally that would only slow the feedback loop, so
//!   the waits are one and two seconds ([`RETRY_DELAYS`]).
//! - Lambda's own queue is effectively unbounded; here each function's
//!   queue holds at most [`MAX_QUEUED_EVENTS`] events and
//!   [`MAX_QUEUED_BYTES`] of payload, so a burst cannot grow the devserver
//!   without limit. Beyond it the Invoke API answers as Lambda does when it
//!   throttles: `429 TooManyRequestsException`.
//!
//! Destinations (`on_success` / `on_failure` in dev.toml): a queue, topic or
//! function gets the invocation record Lambda sends, with the request, the
//! response and the condition (`Success`, `RetriesExhausted`,
//! `EventAgeExceeded`). A dead-letter queue or topic (`dead_letter`) gets a
//! discarded event as it was sent, with `RequestID`, `ErrorCode` and
//! `ErrorMessage` attributes.
//!
//! Invariant: an event counts against its function's queue from the
//! moment `invoke_event` accepts it until its last attempt ends (success,
//! discard, or shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{InvokeRequest, InvokeResponse, LambdaError, LambdaHost};
use crate::manifest::{Destination, EventInvokeConfig};

/// Waits before the first and second retry of a function error.
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// Longest wait between attempts when the function could not be run at
/// all (Lambda retries throttles and system errors until the event's age
/// runs out, backing off up to five minutes; here up to ten seconds).
const MAX_NOT_RUN_BACKOFF: Duration = Duration::from_secs(10);
/// Events one function's queue holds before `invoke_event` refuses more.
pub const MAX_QUEUED_EVENTS: usize = 1_000;
/// Payload bytes one function's queue holds (32 events of 1 MB, Lambda's
/// asynchronous payload limit).
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// Events and bytes waiting (or running) per function.
#[derive(Default)]
struct Load {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

/// Every function's asynchronous queue.
#[derive(Default)]
pub(crate) struct EventQueues {
    loads: Mutex<HashMap<String, Arc<Load>>>,
}

/// An event's claim on its function's queue, released on drop.
struct Slot {
    load: Arc<Load>,
    bytes: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.load.events.fetch_sub(1, Ordering::AcqRel);
        self.load.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl EventQueues {
    fn load(&self, function: &str) -> Arc<Load> {
        self.loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(function.to_owned())
            .or_default()
            .clone()
    }

    pub fn queued(&self, function: &str) -> usize {
        self.load(function).events.load(Ordering::Acquire)
    }

    fn claim(&self, function: &str, bytes: usize) -> Result<Slot, LambdaError> {
        let load = self.load(function);
        let events = load.events.fetch_add(1, Ordering::AcqRel) + 1;
        let queued = load.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        // Constructed first so that a refusal gives the claim back.
        let slot = Slot { load, bytes };
        if events > MAX_QUEUED_EVENTS || queued > MAX_QUEUED_BYTES {
            tracing::warn!(
                function,
                events = events - 1,
                bytes = queued - bytes,
                "asynchronous invocation refused: the function's event queue is full"
            );
            return Err(LambdaError::TooManyRequests(format!(
                "Rate Exceeded. The asynchronous event queue of {function} holds {} events ({} bytes); the devserver keeps at most {MAX_QUEUED_EVENTS} events or {MAX_QUEUED_BYTES} bytes per function",
                events - 1,
                queued - bytes
            )));
        }
        Ok(slot)
    }

    /// Accepts an event for `function` and starts its delivery; returns the
    /// request id every attempt will carry.
    pub fn enqueue(
        &self,
        host: Weak<LambdaHost>,
        function: &str,
        config: EventInvokeConfig,
        mut request: InvokeRequest,
    ) -> Result<String, LambdaError> {
        let slot = self.claim(function, request.payload.len())?;
        let request_id = request
            .request_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        // The caller's wait does not apply to an event: nobody waits.
        request.caller_timeout = None;
        request.tail_logs = false;
        tokio::spawn(deliver(host, function.to_owned(), config, request, slot));
        Ok(request_id)
    }
}

/// Why an event was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    /// `MaximumEventAgeInSeconds` passed before a successful attempt.
    EventAgeExceeded,
    /// The function failed on every attempt (`MaximumRetryAttempts`).
    RetriesExhausted,
    /// The function no longer exists.
    FunctionRemoved,
}

impl DiscardReason {
    /// The condition as Lambda's failure destination record names it.
    pub fn condition(self) -> &'static str {
        match self {
            DiscardReason::EventAgeExceeded => "EventAgeExceeded",
            DiscardReason::RetriesExhausted => "RetriesExhausted",
            DiscardReason::FunctionRemoved => "ResourceNotFound",
        }
    }
}

async fn deliver(
    host: Weak<LambdaHost>,
    function: String,
    config: EventInvokeConfig,
    request: InvokeRequest,
    _slot: Slot,
) {
    let accepted = Instant::now();
    let max_age = Duration::from_secs(u64::from(config.maximum_event_age_in_seconds));
    let request_id = request.request_id.clone().unwrap_or_default();
    let mut failures: u32 = 0;
    let mut not_run: u32 = 0;
    let mut last: Option<InvokeResponse> = None;
    let reason = loop {
        if accepted.elapsed() > max_age {
            break DiscardReason::EventAgeExceeded;
        }
        let Some(strong) = host.upgrade() else {
            return;
        };
        let outcome = strong.invoke(&function, request.clone()).await;
        drop(strong);
        let wait = match outcome {
            Ok(result) if result.function_error.is_none() => {
                if let Some(to) = &config.on_success {
                    let record = invocation_record(
                        &host,
                        &function,
                        &request,
                        "Success",
                        failures + 1,
                        Some(&result),
                    );
                    send_record(&host, to, &function, &request_id, record);
                }
                return;
            }
            Ok(result) => {
                failures += 1;
                tracing::warn!(
                    function = %function,
                    request_id = %request_id,
                    attempt = failures,
                    "asynchronous invocation failed: {}",
                    String::from_utf8_lossy(&result.payload)
                );
                last = Some(result);
                if failures > config.maximum_retry_attempts {
                    break DiscardReason::RetriesExhausted;
                }
                RETRY_DELAYS[(failures as usize - 1).min(RETRY_DELAYS.len() - 1)]
            }
            Err(LambdaError::ShuttingDown) => return,
            Err(LambdaError::FunctionNotFound { .. }) => break DiscardReason::FunctionRemoved,
            Err(e) => {
                // Not run at all (too large, ...): retried until the event
                // is too old, as Lambda retries throttles, backing off.
                not_run += 1;
                tracing::warn!(function = %function, request_id = %request_id,
                    "asynchronous invocation not run: {e}");
                Duration::from_millis(100)
                    .saturating_mul(1 << not_run.min(10))
                    .min(MAX_NOT_RUN_BACKOFF)
            }
        };
        let left = max_age.saturating_sub(accepted.elapsed());
        tokio::time::sleep(wait.min(left + Duration::from_millis(1))).await;
    };
    tracing::warn!(
        function = %function,
        request_id = %request_id,
        condition = reason.condition(),
        attempts = failures,
        "asynchronous event discarded"
    );
    if let Some(to) = &config.on_failure {
        let record = invocation_record(
            &host,
            &function,
            &request,
            reason.condition(),
            failures,
            last.as_ref(),
        );
        send_record(&host, to, &function, &request_id, record);
    }
    // The dead-letter queue gets the event itself, with the request id and
    // the error as message attributes.
    // <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq>
    if let Some(to) = &config.dead_letter {
        let (code, message) = match &last {
            Some(r) => {
                let error: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
                let mut message = error["errorMessage"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&r.payload).into_owned());
                // The first kilobyte, as Lambda sends it.
                let mut end = message.len().min(1024);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                ("200".to_owned(), message)
            }
            None => (reason.condition().to_owned(), reason.condition().to_owned()),
        };
        let body = String::from_utf8_lossy(&request.payload).into_owned();
        let attributes = [
            ("RequestID", request_id.clone()),
            ("ErrorCode", code),
            ("ErrorMessage", message),
        ];
        let Some(sink) = host.upgrade().and_then(|h| h.destinations()) else {
            return;
        };
        match sink.deliver(to, body, &attributes) {
            Ok(()) => {
                tracing::info!(function = %function, request_id = %request_id, dead_letter = %to,
                "discarded event sent to the dead-letter queue")
            }
            Err(e) => {
                tracing::warn!(function = %function, request_id = %request_id, dead_letter = %to,
                "cannot send the discarded event to the dead-letter queue: {e}")
            }
        }
    }
}

/// The record Lambda sends to a destination.
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>
fn invocation_record(
    host: &Weak<LambdaHost>,
    function: &str,
    request: &InvokeRequest,
    condition: &str,
    invokes: u32,
    response: Option<&InvokeResponse>,
) -> Value {
    let arn = host
        .upgrade()
        .map(|h| h.function_arn(function))
        .unwrap_or_default();
    let json_or_text = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    let mut record = json!({
        "version": "1.0",
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "requestContext": {
            "requestId": request.request_id,
            "functionArn": format!("{arn}:{}", super::LATEST),
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
        "requestPayload": json_or_text(&request.payload),
    });
    if let Some(r) = response {
        let mut context = json!({ "statusCode": 200, "executedVersion": super::LATEST });
        if let Some(e) = &r.function_error {
            context["functionError"] = json!(e);
        }
        record["responseContext"] = context;
        record["responsePayload"] = json_or_text(&r.payload);
    }
    record
}

fn send_record(
    host: &Weak<LambdaHost>,
    to: &Destination,
    function: &str,
    request_id: &str,
    record: Value,
) {
    let Some(sink) = host.upgrade().and_then(|h| h.destinations()) else {
        return;
    };
    match sink.deliver(to, record.to_string(), &[]) {
        Ok(()) => tracing::info!(function, request_id, destination = %to,
            condition = %record["requestContext"]["condition"], "invocation record sent to the destination"),
        Err(e) => tracing::warn!(
            function,
            request_id,
            destination = %to,
            "cannot send the invocation record: {e}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_a_finished_event_frees_its_place() {
        let queues = EventQueues::default();
        let mut slots = Vec::new();
        for _ in 0..MAX_QUEUED_EVENTS {
            slots.push(queues.claim("f", 1).expect("room"));
        }
        assert!(matches!(
            queues.claim("f", 1),
            Err(LambdaError::TooManyRequests(_))
        ));
        // A refused claim takes nothing; other functions have their own.
        assert_eq!(queues.queued("f"), MAX_QUEUED_EVENTS);
        assert!(queues.claim("g", 1).is_ok());
        slots.pop();
        assert!(queues.claim("f", 1).is_ok());
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        let queues = EventQueues::default();
        let mb = 1024 * 1024;
        let held: Vec<Slot> = (0..MAX_QUEUED_BYTES / mb)
            .map(|_| queues.claim("f", mb).expect("room"))
            .collect();
        assert!(queues.claim("f", mb).is_err());
        drop(held);
        assert_eq!(queues.queued("f"), 0);
        assert!(queues.claim("f", mb).is_ok());
    }
}

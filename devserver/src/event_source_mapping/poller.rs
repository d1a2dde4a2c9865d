//! One task per mapping: wait for the source, read a batch (`BatchSize`,
//! `MaximumBatchingWindowInSeconds`, the 6 MB payload limit), drop what the
//! filters (`FilterCriteria`) do not match, deliver the rest
//! ([`super::batch`]) and commit the batch in the source.
//!
//! The poller is woken by the source's change signal after every write
//! (DynamoDB: each committed write), with a slow fallback poll.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::source::SourceRecord;
use super::{Mapping, MappingsCore, lock};
use crate::event_pattern;
use crate::lambda::MAX_SYNC_PAYLOAD;

/// Without a change signal (e.g. writes made behind the service's back),
/// sources are still read this often.
const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// The synchronous payload limit, less the event's envelope.
pub(super) const MAX_BATCH_BYTES: usize = MAX_SYNC_PAYLOAD - 64;

/// Waits for a change, the timeout, or the stop signal (`true`: stop).
async fn wait(
    changes: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
    timeout: Duration,
) -> bool {
    tokio::select! {
        _ = changes.changed() => {}
        _ = tokio::time::sleep(timeout) => {}
        _ = stop.wait_for(|s| *s) => return true,
    }
    *stop.borrow()
}

pub(super) async fn run(core: Arc<MappingsCore>, mapping: Arc<Mapping>) {
    let source = mapping.source.clone();
    let mut changes = source.changes();
    let mut stop = mapping.stop.subscribe();
    let sub = &mapping.sub;
    // Wait for the source (reconcile creates a table's stream before the
    // mapping starts, but a stream can be switched off and on at run time).
    loop {
        match source.open().await {
            Ok(()) => break,
            Err(e) => {
                mapping.set_state(&format!("Waiting: {e}"));
                if wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                    return;
                }
            }
        }
    }
    mapping.set_state("Enabled");
    if !source.ordered() {
        return run_unordered(core, mapping, changes, stop).await;
    }
    let limit = sub.batch_size as usize;
    let window = Duration::from_secs(u64::from(sub.maximum_batching_window_in_seconds));
    loop {
        if mapping.stopping() {
            return;
        }
        let mut records = match source.read(limit, MAX_BATCH_BYTES).await {
            Ok(r) => r,
            Err(e) => {
                mapping.set_state(&format!("Waiting: {e}"));
                if wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                    return;
                }
                continue;
            }
        };
        if records.is_empty() {
            lock(&mapping.activity).in_flight_since = None;
            if wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                return;
            }
            continue;
        }
        // MaximumBatchingWindowInSeconds: wait for a full batch or the
        // window's end.
        if !window.is_zero() && records.len() < limit {
            let deadline = Instant::now() + window;
            while records.len() < limit && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait(&mut changes, &mut stop, left).await {
                    return;
                }
                if let Ok(more) = source.read(limit, MAX_BATCH_BYTES).await
                    && more.len() > records.len()
                {
                    // Keep the first arrival times.
                    records.extend(more.into_iter().skip(records.len()));
                }
            }
        }
        lock(&mapping.activity).in_flight_since = records.first().map(|r| r.arrival);
        let read = records.clone();
        let kept = filter(&mapping, records);
        if !kept.is_empty() && !core.deliver(&mapping, kept).await {
            return;
        }
        source.commit(&read).await;
    }
}

/// `FilterCriteria`: records no pattern matches are dropped (counted,
/// never delivered, never retried).
pub(super) fn filter(mapping: &Mapping, mut records: Vec<SourceRecord>) -> Vec<SourceRecord> {
    let before = records.len();
    let source = &mapping.source;
    records.retain(|r| event_pattern::keep(&mapping.sub.filters, &source.filter_view(r)));
    mapping
        .counters
        .filtered
        .fetch_add((before - records.len()) as u64, Ordering::Relaxed);
    records
}

/// Batches of a queue in flight at once without `maximum_concurrency`
/// (Lambda starts five pollers for a queue).
const DEFAULT_QUEUE_CONCURRENCY: usize = 5;

/// An unordered source (a queue): batches are read and delivered
/// concurrently, up to `maximum_concurrency`; each is delivered once.
async fn run_unordered(
    core: Arc<MappingsCore>,
    mapping: Arc<Mapping>,
    mut changes: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let source = mapping.source.clone();
    let sub = &mapping.sub;
    let limit = sub.batch_size as usize;
    let window = Duration::from_secs(u64::from(sub.maximum_batching_window_in_seconds));
    let permits = Arc::new(tokio::sync::Semaphore::new(
        sub.maximum_concurrency
            .map_or(DEFAULT_QUEUE_CONCURRENCY, |c| c as usize),
    ));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut records = match source.read(limit, MAX_BATCH_BYTES).await {
            Ok(r) => r,
            Err(e) => {
                mapping.set_state(&format!("Waiting: {e}"));
                drop(permit);
                if wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                    return;
                }
                continue;
            }
        };
        if records.is_empty() {
            drop(permit);
            if wait(&mut changes, &mut stop, FALLBACK_POLL).await {
                return;
            }
            continue;
        }
        if !window.is_zero() && records.len() < limit {
            let deadline = Instant::now() + window;
            while records.len() < limit && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait(&mut changes, &mut stop, left).await {
                    return;
                }
                if let Ok(more) = source.read(limit - records.len(), MAX_BATCH_BYTES).await {
                    records.extend(more);
                }
            }
        }
        let read = records.clone();
        let kept = filter(&mapping, records);
        // Lambda deletes the messages its filters drop.
        let dropped: Vec<SourceRecord> = read
            .into_iter()
            .filter(|r| !kept.iter().any(|k| k.id == r.id))
            .collect();
        source.commit(&dropped).await;
        if kept.is_empty() {
            continue;
        }
        let core = core.clone();
        let mapping = mapping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            core.deliver_unordered(&mapping, kept).await;
        });
    }
}

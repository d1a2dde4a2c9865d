//! Amazon SQS on the devserver's AWS endpoint (JSON protocol,
//! `X-Amz-Target: AmazonSQS.*`), for the stock SDK clients and the AWS CLI.
//!
//! - [`queue`]: one queue's rules (visibility, delays, receive counts,
//!   retention, FIFO groups, deduplication), time passed in;
//! - [`store`]: persistence (`<data>/sqs.db`): an acknowledged change is
//!   written before the answer, so it survives `kill -9`;
//! - [`api`]: the operations as the JSON protocol carries them;
//! - this module: the service: queues by name, long polling woken by sends,
//!   redrive to dead-letter queues, message move tasks, and the typed calls
//!   the SQS event source mapping and `woocom-dev queues` use.
//!
//! The engine is our own, on SQLite (already the devserver's store): the
//! embeddable crates measured (awsim-sqs 0.8, rustack-sqs-core 0.12) keep
//! queues in memory only, so an acknowledged send would not survive a
//! restart.

pub mod api;
pub mod attributes;
pub mod control;
pub mod error;
pub mod message;
pub mod queue;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::dynamodb::DataLocation;
use crate::manifest;
use attributes::{QueueAttributes, RedrivePolicy};
use error::SqsError;
use message::{AttributeValue, Message};
use queue::Queue;
use store::{QueueRecord, Store};

/// The JSON protocol's target prefix.
pub const TARGET_PREFIX: &str = "AmazonSQS.";

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Entry {
    queue: Queue,
    /// Bumped on every change that may make a message receivable.
    wake: watch::Sender<u64>,
}

struct Inner {
    queues: BTreeMap<String, Entry>,
    store: Option<Store>,
    next_seq: u64,
    move_tasks: Vec<MoveTask>,
}

/// A `StartMessageMoveTask` and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct MoveTask {
    pub handle: String,
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub status: &'static str,
    pub moved: u64,
    pub to_move: u64,
    pub started_ms: i64,
    pub failure_reason: Option<String>,
}

/// What a send asks for.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub body: String,
    pub delay_seconds: Option<u32>,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub trace_header: Option<String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What a send answers.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub md5_of_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// What a receive asks for.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveRequest {
    pub max: usize,
    pub visibility_timeout: Option<u32>,
    pub wait: Option<Duration>,
}

/// One queue's numbers, for `woocom-dev queues`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub name: String,
    pub url: String,
    pub fifo: bool,
    pub visible: usize,
    pub in_flight: usize,
    pub delayed: usize,
    pub dead_letter_queue: Option<String>,
    pub max_receive_count: Option<u32>,
}

/// The SQS service of one stack.
pub struct Sqs {
    inner: Mutex<Inner>,
    region: String,
    account_id: String,
    /// The AWS endpoint's base URL: queue URLs point at it.
    endpoint: RwLock<String>,
    /// Bumped on every change to any queue (event source mappings wait on it).
    changes: watch::Sender<u64>,
}

impl Sqs {
    /// Opens the stack's queues (`<data>/sqs.db`, or in memory).
    pub fn open(
        location: &DataLocation,
        region: &str,
        account_id: &str,
    ) -> Result<Arc<Sqs>, store::StoreError> {
        let mut inner = Inner {
            queues: BTreeMap::new(),
            store: None,
            next_seq: 1,
            move_tasks: Vec::new(),
        };
        if let DataLocation::Dir(dir) = location {
            let _ = std::fs::create_dir_all(dir);
            let path = dir.join(store::DATABASE_FILE);
            let store = Store::open(&path)?;
            let loaded = store.load().map_err(|source| store::StoreError {
                path: path.display().to_string(),
                source,
            })?;
            for (record, messages) in loaded {
                let mut queue = Queue::new(&record.name, record.attributes, record.created_ms);
                queue.tags = record.tags;
                queue.modified_ms = record.modified_ms;
                for m in messages {
                    inner.next_seq = inner.next_seq.max(m.seq + 1);
                    queue.insert(m);
                }
                inner.queues.insert(
                    record.name,
                    Entry {
                        queue,
                        wake: watch::channel(0).0,
                    },
                );
            }
            inner.store = Some(store);
        }
        Ok(Arc::new(Sqs {
            inner: Mutex::new(inner),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            endpoint: RwLock::new("http://127.0.0.1:4002".to_owned()),
            changes: watch::channel(0).0,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_endpoint(&self, url: &str) {
        *self
            .endpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            url.trim_end_matches('/').to_owned();
    }

    pub fn queue_url(&self, name: &str) -> String {
        let endpoint = self
            .endpoint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        format!("{endpoint}/{}/{name}", self.account_id)
    }

    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// The queue a URL names (its last path segment).
    pub fn name_from_url(url: &str) -> Option<&str> {
        url.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
    }

    pub fn name_from_arn(arn: &str) -> Option<&str> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", _, _, name] => Some(name),
            _ => None,
        }
    }

    /// Wakes on every change to any queue.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self, entry: &Entry) {
        entry.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn persist_queue(inner: &Inner, queue: &Queue) -> Result<(), SqsError> {
        if let Some(store) = &inner.store {
            store
                .put_queue(&QueueRecord {
                    name: queue.name.clone(),
                    attributes: queue.attributes.clone(),
                    tags: queue.tags.clone(),
                    created_ms: queue.created_ms,
                    modified_ms: queue.modified_ms,
                })
                .map_err(|e| SqsError::internal(format!("cannot save the queue: {e}")))?;
        }
        Ok(())
    }

    fn persist(
        store: &mut Option<Store>,
        queue: &str,
        put: &[&Message],
        removed: &[u64],
    ) -> Result<(), SqsError> {
        if let Some(store) = store {
            store.change(queue, put, removed).map_err(|e| {
                SqsError::internal(format!("cannot save the queue's messages: {e}"))
            })?;
        }
        Ok(())
    }

    // ---- queues ------------------------------------------------------------

    /// Creates a queue, or returns the existing one's URL when its
    /// attributes agree (as `CreateQueue` does).
    pub fn create_queue(
        &self,
        name: &str,
        requested: &BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, SqsError> {
        let fifo_requested = requested
            .get("FifoQueue")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !manifest::queues::name_ok(name, fifo_requested) {
            return Err(SqsError::invalid_parameter(
                if name.ends_with(".fifo") && !fifo_requested {
                    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".to_owned()
                } else {
                    "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".to_owned()
                },
            ));
        }
        let mut attributes = QueueAttributes::default();
        attributes.apply(requested, true)?;
        let mut inner = self.lock();
        if let Some(existing) = inner.queues.get(name) {
            let current = existing.queue.attributes.to_map();
            let wanted = attributes.to_map();
            for key in requested.keys() {
                if current.get(key) != wanted.get(key) {
                    return Err(SqsError::queue_name_exists(key));
                }
            }
            drop(inner);
            return Ok(self.queue_url(name));
        }
        let now = now_ms();
        let mut queue = Queue::new(name, attributes, now);
        queue.tags = tags;
        Self::persist_queue(&inner, &queue)?;
        inner.queues.insert(
            name.to_owned(),
            Entry {
                queue,
                wake: watch::channel(0).0,
            },
        );
        drop(inner);
        Ok(self.queue_url(name))
    }

    pub fn delete_queue(&self, name: &str) -> Result<(), SqsError> {
        let mut inner = self.lock();
        let entry = inner
            .queues
            .remove(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        if let Some(store) = &mut inner.store {
            store
                .delete_queue(name)
                .map_err(|e| SqsError::internal(e.to_string()))?;
        }
        // Long polls waiting on it end (their receiver sees the sender go).
        drop(entry);
        Ok(())
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lock().queues.contains_key(name)
    }

    pub fn queue_names(&self) -> Vec<String> {
        self.lock().queues.keys().cloned().collect()
    }

    pub fn attributes(&self, name: &str) -> Result<BTreeMap<String, String>, SqsError> {
        let now = now_ms();
        let inner = self.lock();
        let entry = inner
            .queues
            .get(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let q = &entry.queue;
        let mut m = q.attributes.to_map();
        let (visible, in_flight, delayed) = q.counts(now);
        m.insert("ApproximateNumberOfMessages".into(), visible.to_string());
        m.insert(
            "ApproximateNumberOfMessagesNotVisible".into(),
            in_flight.to_string(),
        );
        m.insert(
            "ApproximateNumberOfMessagesDelayed".into(),
            delayed.to_string(),
        );
        m.insert("CreatedTimestamp".into(), (q.created_ms / 1000).to_string());
        m.insert(
            "LastModifiedTimestamp".into(),
            (q.modified_ms / 1000).to_string(),
        );
        m.insert("QueueArn".into(), self.queue_arn(name));
        Ok(m)
    }

    pub fn set_attributes(
        &self,
        name: &str,
        requested: &BTreeMap<String, String>,
    ) -> Result<(), SqsError> {
        let mut inner = self.lock();
        let entry = inner
            .queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let mut attributes = entry.queue.attributes.clone();
        attributes.apply(requested, false)?;
        entry.queue.attributes = attributes;
        entry.queue.modified_ms = now_ms();
        let queue = &inner.queues[name].queue;
        Self::persist_queue(&inner, queue)?;
        self.bump(&inner.queues[name]);
        Ok(())
    }

    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, SqsError> {
        let inner = self.lock();
        inner
            .queues
            .get(name)
            .map(|e| e.queue.tags.clone())
            .ok_or_else(SqsError::queue_does_not_exist)
    }

    pub fn change_tags(
        &self,
        name: &str,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), SqsError> {
        let mut inner = self.lock();
        let entry = inner
            .queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        entry.queue.tags.extend(add);
        for k in remove {
            entry.queue.tags.remove(k);
        }
        let queue = &inner.queues[name].queue;
        Self::persist_queue(&inner, queue)
    }

    /// Creates or updates the queues dev.toml declares (dead-letter queues
    /// first, so redrive policies name existing ARNs). Returns what changed.
    pub fn reconcile(
        &self,
        declared: &BTreeMap<String, manifest::Queue>,
    ) -> Result<Vec<String>, SqsError> {
        let mut order: Vec<&manifest::Queue> = declared.values().collect();
        order.sort_by_key(|q| q.redrive_policy.is_some());
        let mut changes = Vec::new();
        for q in order {
            let mut wanted = BTreeMap::new();
            wanted.insert("DelaySeconds".to_owned(), q.delay_seconds.to_string());
            wanted.insert(
                "MaximumMessageSize".to_owned(),
                q.max_message_size.to_string(),
            );
            wanted.insert(
                "MessageRetentionPeriod".to_owned(),
                q.message_retention_seconds.to_string(),
            );
            wanted.insert(
                "ReceiveMessageWaitTimeSeconds".to_owned(),
                q.receive_wait_time_seconds.to_string(),
            );
            wanted.insert(
                "VisibilityTimeout".to_owned(),
                q.visibility_timeout_seconds.to_string(),
            );
            wanted.insert(
                "RedrivePolicy".to_owned(),
                q.redrive_policy
                    .as_ref()
                    .map(|p| {
                        serde_json::json!({
                            "deadLetterTargetArn": self.queue_arn(&p.dead_letter_queue),
                            "maxReceiveCount": p.max_receive_count,
                        })
                        .to_string()
                    })
                    .unwrap_or_default(),
            );
            let allow = match q.redrive_allow_policy.as_deref() {
                Some("byQueue") => serde_json::json!({
                    "redrivePermission": "byQueue",
                    "sourceQueueArns": q.source_queues.iter().map(|s| self.queue_arn(s)).collect::<Vec<_>>(),
                })
                .to_string(),
                Some(p) => serde_json::json!({ "redrivePermission": p }).to_string(),
                None => String::new(),
            };
            wanted.insert("RedriveAllowPolicy".to_owned(), allow);
            if q.fifo_queue {
                wanted.insert(
                    "ContentBasedDeduplication".to_owned(),
                    q.content_based_deduplication.to_string(),
                );
            }
            if self.exists(&q.name) {
                let before = self.attributes(&q.name)?;
                let fifo_now = before.get("FifoQueue").is_some_and(|v| v == "true");
                if fifo_now != q.fifo_queue {
                    return Err(SqsError::invalid_parameter(format!(
                        "queue `{}`: fifo_queue cannot change on an existing queue (AWS needs a new queue); `woocom-dev reset` starts afresh",
                        q.name
                    )));
                }
                let differs = wanted
                    .iter()
                    .any(|(k, v)| before.get(k).map_or(!v.is_empty(), |b| b != v));
                if differs {
                    self.set_attributes(&q.name, &wanted)?;
                    changes.push(format!("updated queue {}", q.name));
                }
            } else {
                if q.fifo_queue {
                    wanted.insert("FifoQueue".to_owned(), "true".to_owned());
                }
                self.create_queue(&q.name, &wanted, BTreeMap::new())?;
                changes.push(format!("created queue {}", q.name));
            }
        }
        Ok(changes)
    }

    // ---- messages ----------------------------------------------------------

    /// Sends one message.
    pub fn send(&self, name: &str, request: SendRequest) -> Result<SendResult, SqsError> {
        let now = now_ms();
        let mut inner = self.lock();
        let Inner {
            queues,
            store,
            next_seq,
            ..
        } = &mut *inner;
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let q = &mut entry.queue;
        let a = &q.attributes;
        if let Some(c) = message::invalid_character(&request.body) {
            return Err(SqsError::invalid_message_contents(c));
        }
        if request.body.is_empty() {
            return Err(SqsError::missing_parameter("MessageBody"));
        }
        let size = request.body.len()
            + request
                .attributes
                .iter()
                .map(|(n, v)| v.size(n))
                .sum::<usize>();
        if size > a.maximum_message_size as usize {
            return Err(SqsError::invalid_parameter(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                a.maximum_message_size
            )));
        }
        if let Some(d) = request.delay_seconds
            && d > 900
        {
            return Err(SqsError::invalid_parameter(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )));
        }
        let md5_of_body = message::md5_hex(request.body.as_bytes());
        let md5_of_attributes = message::md5_of_attributes(&request.attributes);
        let md5_of_system_attributes = request
            .trace_header
            .as_deref()
            .map(message::md5_of_trace_header);
        let mut dedup_id = None;
        if a.fifo_queue {
            if request.group_id.is_none() {
                return Err(SqsError::missing_parameter("MessageGroupId"));
            }
            if request.delay_seconds.is_some_and(|d| d > 0) {
                return Err(SqsError::invalid_parameter(format!(
                    "Value {} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
                    request.delay_seconds.unwrap_or_default()
                )));
            }
            dedup_id = match (&request.dedup_id, a.content_based_deduplication) {
                (Some(d), _) => Some(d.clone()),
                (None, true) => Some(sha256_hex(request.body.as_bytes())),
                (None, false) => {
                    return Err(SqsError::invalid_parameter(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ));
                }
            };
            if let Some(d) = &dedup_id
                && let Some((message_id, sequence_number)) = q.duplicate_of(d, now)
            {
                return Ok(SendResult {
                    message_id,
                    md5_of_body,
                    md5_of_attributes,
                    md5_of_system_attributes,
                    sequence_number,
                });
            }
        } else if request.dedup_id.is_some() {
            return Err(SqsError::invalid_parameter(
                "The request include parameter MessageDeduplicationId that is not valid for this queue type",
            ));
        }
        let delay = request.delay_seconds.unwrap_or(a.delay_seconds);
        let seq = *next_seq;
        *next_seq += 1;
        let sequence_number = a.fifo_queue.then(|| q.next_sequence_number());
        let message = Message {
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            body: request.body,
            attributes: request.attributes,
            trace_header: request.trace_header,
            sender_id: self.account_id.clone(),
            sent_ms: now,
            visible_at_ms: now + i64::from(delay) * 1000,
            receive_count: 0,
            first_receive_ms: None,
            receipt: None,
            group_id: request.group_id,
            dedup_id: dedup_id.clone(),
            sequence_number: sequence_number.clone(),
            dead_letter_source_arn: None,
        };
        Self::persist(store, name, &[&message], &[])?;
        if let Some(d) = &dedup_id {
            q.remember_dedup(d, &message.id, sequence_number.clone(), now);
        }
        let message_id = message.id.clone();
        q.insert(message);
        let entry = &queues[name];
        self.bump(entry);
        Ok(SendResult {
            message_id,
            md5_of_body,
            md5_of_attributes,
            md5_of_system_attributes,
            sequence_number,
        })
    }

    /// Receives up to `request.max` messages, waiting up to `request.wait`
    /// (or the queue's `ReceiveMessageWaitTimeSeconds`) for the first. A
    /// waiting receive wakes on a send, or when an in-flight or delayed
    /// message becomes receivable.
    pub async fn receive(
        &self,
        name: &str,
        request: ReceiveRequest,
    ) -> Result<Vec<Message>, SqsError> {
        let started = tokio::time::Instant::now();
        loop {
            let (got, mut wake, wait, next_visible) = {
                let now = now_ms();
                let mut inner = self.lock();
                let got = self.receive_now(&mut inner, name, request, now)?;
                let entry = &inner.queues[name];
                let wait = request.wait.unwrap_or(Duration::from_secs(u64::from(
                    entry.queue.attributes.receive_message_wait_time_seconds,
                )));
                let next = entry.queue.next_visible_at().map(|at| at - now);
                (got, entry.wake.subscribe(), wait, next)
            };
            let elapsed = started.elapsed();
            if !got.is_empty() || elapsed >= wait {
                return Ok(got);
            }
            let mut left = wait - elapsed;
            if let Some(ms) = next_visible {
                left = left.min(Duration::from_millis(ms.max(1) as u64));
            }
            // The queue was deleted while this receive waited.
            if let Ok(Err(_)) = tokio::time::timeout(left, wake.changed()).await {
                return Err(SqsError::queue_does_not_exist());
            }
        }
    }

    fn receive_now(
        &self,
        inner: &mut Inner,
        name: &str,
        request: ReceiveRequest,
        now: i64,
    ) -> Result<Vec<Message>, SqsError> {
        let Inner {
            queues,
            store,
            next_seq,
            ..
        } = inner;
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let expired = entry.queue.expire(now);
        Self::persist(store, name, &[], &expired)?;
        // A redrive policy moves messages received maxReceiveCount times to
        // the dead-letter queue instead of giving them out again.
        if let Some(RedrivePolicy {
            dead_letter_target_arn,
            max_receive_count,
        }) = entry.queue.attributes.redrive_policy.clone()
        {
            let dlq = Self::name_from_arn(&dead_letter_target_arn)
                .map(str::to_owned)
                .filter(|d| d != name && queues.contains_key(d));
            if let Some(dlq) = dlq {
                let source_arn = self.queue_arn(name);
                let exhausted = queues
                    .get_mut(name)
                    .map(|e| e.queue.take_exhausted(now, max_receive_count))
                    .unwrap_or_default();
                if !exhausted.is_empty() {
                    let removed: Vec<u64> = exhausted.iter().map(|m| m.seq).collect();
                    let moved: Vec<Message> = exhausted
                        .into_iter()
                        .map(|mut m| {
                            m.seq = *next_seq;
                            *next_seq += 1;
                            m.visible_at_ms = now;
                            m.receipt = None;
                            m.receive_count = 0;
                            m.first_receive_ms = None;
                            m.dead_letter_source_arn = Some(source_arn.clone());
                            m
                        })
                        .collect();
                    tracing::info!(queue = name, dead_letter_queue = %dlq, messages = moved.len(),
                        "moved to the dead-letter queue after {max_receive_count} receives");
                    Self::persist(store, name, &[], &removed)?;
                    let refs: Vec<&Message> = moved.iter().collect();
                    Self::persist(store, &dlq, &refs, &[])?;
                    if let Some(target) = queues.get_mut(&dlq) {
                        for m in moved {
                            target.queue.insert(m);
                        }
                        target.wake.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
            }
        }
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let visibility = request
            .visibility_timeout
            .unwrap_or(entry.queue.attributes.visibility_timeout);
        let got: Vec<Message> = entry
            .queue
            .receive(now, request.max, i64::from(visibility) * 1000)
            .into_iter()
            .map(|r| r.message)
            .collect();
        let refs: Vec<&Message> = got.iter().collect();
        Self::persist(store, name, &refs, &[])?;
        Ok(got)
    }

    /// Deletes the message a receipt handle names. A stale handle of this
    /// queue is accepted (the message was deleted or received again), as
    /// SQS accepts it.
    pub fn delete_message(&self, name: &str, receipt: &str) -> Result<(), SqsError> {
        let mut inner = self.lock();
        let Inner { queues, store, .. } = &mut *inner;
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        match entry.queue.by_receipt(receipt) {
            Some(seq) => {
                entry.queue.remove(seq);
                Self::persist(store, name, &[], &[seq])?;
                // A FIFO group may be free now.
                self.bump(&queues[name]);
                Ok(())
            }
            None if entry.queue.owns_receipt(receipt) => Ok(()),
            None => Err(SqsError::receipt_handle_is_invalid(receipt)),
        }
    }

    pub fn change_visibility(
        &self,
        name: &str,
        receipt: &str,
        timeout_seconds: u32,
    ) -> Result<(), SqsError> {
        if timeout_seconds > 43_200 {
            return Err(SqsError::invalid_parameter(format!(
                "Value {timeout_seconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
            )));
        }
        let now = now_ms();
        let mut inner = self.lock();
        let Inner { queues, store, .. } = &mut *inner;
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let Some(seq) = entry.queue.by_receipt(receipt) else {
            return Err(if entry.queue.owns_receipt(receipt) {
                SqsError::message_not_inflight()
            } else {
                SqsError::receipt_handle_is_invalid(receipt)
            });
        };
        if !entry
            .queue
            .change_visibility(seq, now, i64::from(timeout_seconds) * 1000)
        {
            return Err(SqsError::message_not_inflight());
        }
        if let Some(m) = entry.queue.message(seq) {
            Self::persist(store, name, &[m], &[])?;
        }
        self.bump(&queues[name]);
        Ok(())
    }

    pub fn purge(&self, name: &str) -> Result<(), SqsError> {
        let now = now_ms();
        let mut inner = self.lock();
        let Inner { queues, store, .. } = &mut *inner;
        let entry = queues
            .get_mut(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        if entry.queue.last_purge_ms.is_some_and(|t| now - t < 60_000) {
            return Err(SqsError::purge_in_progress(name));
        }
        entry.queue.last_purge_ms = Some(now);
        let removed = entry.queue.purge();
        Self::persist(store, name, &[], &removed)
    }

    /// The first `n` messages in order, without receiving them (CLI).
    pub fn peek(&self, name: &str, n: usize) -> Result<Vec<Message>, SqsError> {
        let inner = self.lock();
        let entry = inner
            .queues
            .get(name)
            .ok_or_else(SqsError::queue_does_not_exist)?;
        let mut all: Vec<Message> = entry.queue.messages().cloned().collect();
        all.sort_by_key(|m| m.seq);
        all.truncate(n);
        Ok(all)
    }

    pub fn status(&self) -> Vec<QueueStatus> {
        let now = now_ms();
        let inner = self.lock();
        inner
            .queues
            .values()
            .map(|e| {
                let (visible, in_flight, delayed) = e.queue.counts(now);
                let redrive = e.queue.attributes.redrive_policy.as_ref();
                QueueStatus {
                    name: e.queue.name.clone(),
                    url: self.queue_url(&e.queue.name),
                    fifo: e.queue.attributes.fifo_queue,
                    visible,
                    in_flight,
                    delayed,
                    dead_letter_queue: redrive.and_then(|p| {
                        Self::name_from_arn(&p.dead_letter_target_arn).map(str::to_owned)
                    }),
                    max_receive_count: redrive.map(|p| p.max_receive_count),
                }
            })
            .collect()
    }

    /// Queues whose redrive policy names this one.
    pub fn dead_letter_sources(&self, name: &str) -> Vec<String> {
        let arn = self.queue_arn(name);
        let inner = self.lock();
        inner
            .queues
            .values()
            .filter(|e| {
                e.queue
                    .attributes
                    .redrive_policy
                    .as_ref()
                    .is_some_and(|p| p.dead_letter_target_arn == arn)
            })
            .map(|e| e.queue.name.clone())
            .collect()
    }

    /// `StartMessageMoveTask`: moves a dead-letter queue's messages back to
    /// the queues they came from (or to `destination`), at once.
    pub fn start_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
    ) -> Result<String, SqsError> {
        let source = Self::name_from_arn(source_arn)
            .filter(|n| self.exists(n))
            .ok_or_else(|| {
                SqsError::resource_not_found(
                    "The resource that you specified for the SourceArn parameter doesn't exist.",
                )
            })?
            .to_owned();
        if self.dead_letter_sources(&source).is_empty() {
            return Err(SqsError::invalid_parameter(
                "Source queue must be configured as a Dead Letter Queue.",
            ));
        }
        let destination = match destination_arn {
            Some(arn) => Some(
                Self::name_from_arn(arn)
                    .filter(|n| self.exists(n))
                    .ok_or_else(|| {
                        SqsError::resource_not_found(
                            "The resource that you specified for the DestinationArn parameter doesn't exist.",
                        )
                    })?
                    .to_owned(),
            ),
            None => None,
        };
        let now = now_ms();
        let mut inner = self.lock();
        let Inner {
            queues,
            store,
            next_seq,
            move_tasks,
        } = &mut *inner;
        let Some(entry) = queues.get_mut(&source) else {
            return Err(SqsError::queue_does_not_exist());
        };
        let messages = entry.queue.take_all();
        let removed: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        Self::persist(store, &source, &[], &removed)?;
        let to_move = messages.len() as u64;
        let mut moved = 0;
        let mut back = Vec::new();
        for mut m in messages {
            let target = destination.clone().or_else(|| {
                m.dead_letter_source_arn
                    .as_deref()
                    .and_then(Self::name_from_arn)
                    .map(str::to_owned)
            });
            match target.filter(|t| queues.contains_key(t)) {
                Some(t) => {
                    m.seq = *next_seq;
                    *next_seq += 1;
                    m.receipt = None;
                    m.receive_count = 0;
                    m.first_receive_ms = None;
                    m.visible_at_ms = now;
                    m.dead_letter_source_arn = None;
                    Self::persist(store, &t, &[&m], &[])?;
                    if let Some(e) = queues.get_mut(&t) {
                        e.queue.insert(m);
                        e.wake.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    moved += 1;
                }
                // No queue to go back to: it stays in the dead-letter queue.
                None => back.push(m),
            }
        }
        let failure_reason = (!back.is_empty())
            .then(|| format!("{} messages have no source queue to return to", back.len()));
        if let Some(e) = queues.get_mut(&source) {
            let refs: Vec<&Message> = back.iter().collect();
            Self::persist(store, &source, &refs, &[])?;
            for m in back {
                e.queue.insert(m);
            }
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        let handle = uuid::Uuid::new_v4().to_string();
        move_tasks.push(MoveTask {
            handle: handle.clone(),
            source_arn: source_arn.to_owned(),
            destination_arn: destination_arn.map(str::to_owned),
            status: if failure_reason.is_some() {
                "FAILED"
            } else {
                "COMPLETED"
            },
            moved,
            to_move,
            started_ms: now,
            failure_reason,
        });
        Ok(handle)
    }

    pub fn move_tasks(&self, source_arn: &str) -> Vec<MoveTask> {
        self.lock()
            .move_tasks
            .iter()
            .filter(|t| t.source_arn == source_arn)
            .cloned()
            .collect()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

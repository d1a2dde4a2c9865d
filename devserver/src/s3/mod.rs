//! Amazon S3 on the devserver: its own loopback listener (`[ports] s3`,
//! `AWS_ENDPOINT_URL_S3`), path-style (`/<bucket>/<key>`) and, for
//! `<bucket>.localhost` hosts, virtual-host style.
//!
//! - the wire protocol (REST + XML, SigV4 header and presigned-query
//!   signatures, presigned POST policies, `aws-chunked` bodies with
//!   trailing checksums) is the `s3s` crate's; [`http`] wraps it with what
//!   s3s leaves to its user: bucket CORS (preflight and response headers)
//!   and the 7-day limit of presigned URLs;
//! - [`api`]: the operations, on our own backend (s3s's `S3` trait);
//! - [`store`]: bodies as files, records in SQLite; an acknowledged write
//!   survives `kill -9`;
//! - [`cors`]: CORS rule evaluation;
//! - [`notify`]: event notifications to functions, queues and topics.
//!
//! Why not `s3s-fs` (the filesystem backend of the same project): it writes
//! bodies in place before checking checksums (a bad checksum leaves the
//! new body behind), keeps metadata in side files written separately from
//! the body, never fsyncs, and has no CORS or notification hook.
//!
//! Credentials: any access key is accepted, and requests must be signed
//! with the secret [`LOCAL_SECRET_ACCESS_KEY`] — the one the Lambda host
//! gives every function — so a URL a function presigns verifies here as it
//! would in AWS, and a tampered one does not.

pub mod api;
pub mod control;
pub mod cors;
pub mod http;
pub mod notify;
pub mod store;

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::dynamodb::DataLocation;
use store::{BucketRecord, Store, StoreError};

/// The secret access key requests to the local S3 endpoint are signed
/// with, whatever the access key id (`AWS_SECRET_ACCESS_KEY` of every
/// function; tests and scripts use it too).
pub const LOCAL_SECRET_ACCESS_KEY: &str = "woocom-local-secret";

/// S3's longest presigned URL validity: 7 days
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>).
pub const MAX_PRESIGNED_EXPIRES_SECONDS: u64 = 604_800;

/// An object change, as notifications report it.
#[derive(Debug, Clone)]
pub struct ObjectEvent {
    pub bucket: String,
    pub key: String,
    /// Without the `s3:` prefix: `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub event_name: &'static str,
    pub size: u64,
    pub etag: String,
    /// Grows with every event of the stack (hex), as S3's `sequencer`.
    pub sequencer: String,
    pub source_ip: String,
    pub principal: String,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// Receives object events (the notification dispatcher).
pub trait EventSink: Send + Sync {
    fn object_event(&self, event: ObjectEvent);
}

/// One bucket's numbers, for `woocom-dev buckets`.
#[derive(Debug, Clone, Serialize)]
pub struct BucketStatus {
    pub name: String,
    pub created: String,
    pub objects: u64,
    pub bytes: u64,
    pub cors_rules: usize,
    pub declared: bool,
}

/// The S3 service of one stack.
pub struct S3 {
    pub(crate) store: Store,
    region: String,
    account_id: String,
    sink: RwLock<Option<Arc<dyn EventSink>>>,
    sequencer: std::sync::atomic::AtomicU64,
}

impl S3 {
    /// Opens the stack's buckets (`<data>/s3/`, or a temporary folder).
    pub fn open(
        location: &DataLocation,
        region: &str,
        account_id: &str,
    ) -> Result<Arc<S3>, StoreError> {
        let dir = match location {
            DataLocation::Dir(d) => Some(d.as_path()),
            DataLocation::Memory => None,
        };
        Ok(Arc::new(S3 {
            store: Store::open(dir)?,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            sink: RwLock::new(None),
            sequencer: std::sync::atomic::AtomicU64::new(
                u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0) << 8,
            ),
        }))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The folder of the bodies and records (`<data>/s3`).
    pub fn store_root(&self) -> &std::path::Path {
        self.store.root()
    }

    pub fn bucket_arn(bucket: &str) -> String {
        format!("arn:aws:s3:::{bucket}")
    }

    pub fn set_sink(&self, sink: Arc<dyn EventSink>) {
        *self
            .sink
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    pub(crate) fn next_sequencer(&self) -> String {
        let n = self
            .sequencer
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{n:016X}")
    }

    pub(crate) fn emit(&self, event: ObjectEvent) {
        let sink = self
            .sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(sink) = sink {
            sink.object_event(event);
        }
    }

    /// Creates a bucket if missing (dev.toml); `true` when created.
    pub fn ensure_bucket(&self, name: &str) -> Result<bool, String> {
        match self.store.bucket(name) {
            Ok(Some(_)) => Ok(false),
            Ok(None) => {
                self.store
                    .put_bucket(&BucketRecord {
                        name: name.to_owned(),
                        created_ms: chrono::Utc::now().timestamp_millis(),
                        cors: None,
                        declared: true,
                    })
                    .map_err(|e| e.to_string())?;
                Ok(true)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sets (or clears) a bucket's CORS rules.
    pub fn set_cors(&self, name: &str, rules: Option<Vec<cors::CorsRule>>) -> Result<(), String> {
        if let Some(r) = &rules {
            cors::validate(r)?;
        }
        let mut record = self
            .store
            .bucket(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no bucket {name}"))?;
        record.cors = rules;
        self.store.put_bucket(&record).map_err(|e| e.to_string())
    }

    pub fn cors_of(&self, name: &str) -> Option<Vec<cors::CorsRule>> {
        self.store.bucket(name).ok().flatten().and_then(|b| b.cors)
    }

    /// Every bucket with its object count and size.
    pub fn statuses(&self) -> Vec<BucketStatus> {
        self.store
            .buckets()
            .unwrap_or_default()
            .into_iter()
            .map(|b| {
                let (objects, bytes) = self.store.object_count(&b.name).unwrap_or((0, 0));
                BucketStatus {
                    created: chrono::DateTime::from_timestamp_millis(b.created_ms)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                        .unwrap_or_default(),
                    cors_rules: b.cors.as_ref().map_or(0, Vec::len),
                    name: b.name,
                    objects,
                    bytes,
                    declared: b.declared,
                }
            })
            .collect()
    }

    /// Objects of a bucket (key, size, ETag, last modified), in key order.
    pub fn objects(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Option<Vec<(String, store::ObjectRecord)>> {
        self.store.bucket(bucket).ok().flatten()?;
        self.store.keys_after(bucket, prefix, "", limit).ok()
    }
}

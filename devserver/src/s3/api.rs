//! The S3 operations, on [`super::store`], behind s3s's `S3` trait: s3s
//! parses and signs, this answers as S3 does
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html>).
//!
//! Errors carry S3's codes and messages (`NoSuchBucket`, `NoSuchKey`,
//! `BucketNotEmpty`, `InvalidPart`, `PreconditionFailed`, ...); a storage
//! failure is an `InternalError` with the cause in our log, never a panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use s3s::crypto::Checksum as _;
use s3s::dto::{self, StreamingBlob, Timestamp, TimestampFormat};
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::store::{Checksums, ObjectHeaders, ObjectRecord, PartRecord, UploadRecord};
use super::{ObjectEvent, S3};

/// The canonical user id of the stack's (only) owner, as S3 shows it.
pub const OWNER_ID: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";
/// S3's smallest part, but for the last (5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's part numbers run 1..=10000.
pub const MAX_PART_NUMBER: i32 = 10_000;

/// The operations, over the stack's S3 service.
#[derive(Clone)]
pub struct Api {
    pub s3: Arc<S3>,
}

fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    tracing::error!(target: "s3", "{what}: {e}");
    s3_error!(
        InternalError,
        "We encountered an internal error. Please try again."
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn timestamp(ms: i64) -> Timestamp {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    Timestamp::from(t)
}

/// Milliseconds since the epoch of a timestamp s3s parsed.
fn millis(t: &Timestamp) -> Option<i64> {
    let mut out = Vec::new();
    t.format(TimestampFormat::EpochSeconds, &mut out).ok()?;
    let seconds: f64 = std::str::from_utf8(&out).ok()?.parse().ok()?;
    Some((seconds * 1000.0) as i64)
}

fn no_such_bucket(bucket: &str) -> S3Error {
    let mut e = s3_error!(NoSuchBucket, "The specified bucket does not exist");
    e.set_message(format!("The specified bucket does not exist: {bucket}"));
    e
}

fn no_such_key() -> S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn precondition_failed() -> S3Error {
    s3_error!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold"
    )
}

fn etag_of(record_etag: &str) -> dto::ETag {
    dto::ETag::Strong(record_etag.to_owned())
}

fn etag_matches(condition: &dto::ETagCondition, etag: &str) -> bool {
    match condition {
        dto::ETagCondition::Any => true,
        dto::ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// GET/HEAD conditions in RFC 7232's order, as S3 applies them
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html>):
/// If-Match (else If-Unmodified-Since) → 412; If-None-Match (else
/// If-Modified-Since) → 304.
fn check_read_conditions(
    record: &ObjectRecord,
    if_match: Option<&dto::ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&dto::ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> S3Result<()> {
    // HTTP dates have whole seconds.
    let modified_s = record.last_modified_ms / 1000;
    match if_match {
        Some(c) if !etag_matches(c, &record.etag) => return Err(precondition_failed()),
        Some(_) => {}
        None => {
            if let Some(t) = if_unmodified_since.and_then(millis)
                && modified_s > t / 1000
            {
                return Err(precondition_failed());
            }
        }
    }
    match if_none_match {
        Some(c) if etag_matches(c, &record.etag) => return Err(s3_error!(NotModified)),
        Some(_) => {}
        None => {
            if let Some(t) = if_modified_since.and_then(millis)
                && modified_s <= t / 1000
            {
                return Err(s3_error!(NotModified));
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which checksums to compute, from what the request names.
#[derive(Debug, Clone, Copy, Default)]
struct Algorithms {
    crc32: bool,
    crc32c: bool,
    crc64nvme: bool,
    sha1: bool,
    sha256: bool,
}

impl Algorithms {
    fn add(&mut self, name: &str) -> S3Result<()> {
        match name.to_ascii_uppercase().as_str() {
            "CRC32" => self.crc32 = true,
            "CRC32C" => self.crc32c = true,
            "CRC64NVME" => self.crc64nvme = true,
            "SHA1" => self.sha1 = true,
            "SHA256" => self.sha256 = true,
            other => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Value for x-amz-checksum-algorithm header is invalid: {other}"
                ));
            }
        }
        Ok(())
    }

    fn hasher(self) -> s3s::checksum::ChecksumHasher {
        let mut h = s3s::checksum::ChecksumHasher::default();
        if self.crc32 {
            h.crc32 = Some(Default::default());
        }
        if self.crc32c {
            h.crc32c = Some(Default::default());
        }
        if self.crc64nvme {
            h.crc64nvme = Some(Default::default());
        }
        if self.sha1 {
            h.sha1 = Some(Default::default());
        }
        if self.sha256 {
            h.sha256 = Some(Default::default());
        }
        h
    }
}

/// The checksums a request declares: headers, then the trailer of an
/// `aws-chunked` body (read once the body is consumed).
#[derive(Debug, Default, Clone)]
struct Declared {
    crc32: Option<String>,
    crc32c: Option<String>,
    crc64nvme: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
}

impl Declared {
    fn algorithms(&self, algorithm: Option<&str>) -> S3Result<Algorithms> {
        let mut a = Algorithms::default();
        if let Some(name) = algorithm {
            a.add(name)?;
        }
        a.crc32 |= self.crc32.is_some();
        a.crc32c |= self.crc32c.is_some();
        a.crc64nvme |= self.crc64nvme.is_some();
        a.sha1 |= self.sha1.is_some();
        a.sha256 |= self.sha256.is_some();
        Ok(a)
    }

    fn add_trailers(&mut self, trailers: Option<&s3s::TrailingHeaders>) {
        let Some(map) = trailers.and_then(|t| t.take()) else {
            return;
        };
        let get = |name: &str| {
            map.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.crc32 = self.crc32.take().or_else(|| get("x-amz-checksum-crc32"));
        self.crc32c = self.crc32c.take().or_else(|| get("x-amz-checksum-crc32c"));
        self.crc64nvme = self
            .crc64nvme
            .take()
            .or_else(|| get("x-amz-checksum-crc64nvme"));
        self.sha1 = self.sha1.take().or_else(|| get("x-amz-checksum-sha1"));
        self.sha256 = self.sha256.take().or_else(|| get("x-amz-checksum-sha256"));
    }

    /// `BadDigest` naming the algorithm whose value differs.
    fn verify(&self, computed: &dto::Checksum) -> S3Result<()> {
        let pairs = [
            ("CRC32", &self.crc32, &computed.checksum_crc32),
            ("CRC32C", &self.crc32c, &computed.checksum_crc32c),
            ("CRC64NVME", &self.crc64nvme, &computed.checksum_crc64nvme),
            ("SHA1", &self.sha1, &computed.checksum_sha1),
            ("SHA256", &self.sha256, &computed.checksum_sha256),
        ];
        for (name, declared, computed) in pairs {
            if let Some(d) = declared
                && Some(d) != computed.as_ref()
            {
                return Err(s3_error!(
                    BadDigest,
                    "The {name} you specified did not match the calculated checksum."
                ));
            }
        }
        Ok(())
    }
}

fn checksums_of(c: &dto::Checksum, kind: &str) -> Checksums {
    Checksums {
        crc32: c.checksum_crc32.clone(),
        crc32c: c.checksum_crc32c.clone(),
        crc64nvme: c.checksum_crc64nvme.clone(),
        sha1: c.checksum_sha1.clone(),
        sha256: c.checksum_sha256.clone(),
        kind: Some(kind.to_owned()),
    }
}

/// A body received into `tmp/`, fsynced, not yet in place.
struct Received {
    tmp: PathBuf,
    size: u64,
    md5: [u8; 16],
    checksum: dto::Checksum,
}

impl Received {
    async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

/// A stream of a file's bytes, read on a blocking thread (s3s wants a
/// `Sync` stream; a channel receiver is one).
struct FileStream(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_util::Stream for FileStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The bytes of an open body file. The file is opened before the answer
/// starts, so an overwrite that removes it meanwhile (its old body) cannot
/// cut the answer short: the open file stays readable.
fn file_stream(mut file: tokio::fs::File, range: std::ops::Range<u64>) -> StreamingBlob {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(range.start)).await {
            let _ = tx.send(Err(e)).await;
            return;
        }
        let mut left = range.end - range.start;
        while left > 0 {
            let chunk = usize::try_from(left.min(256 * 1024)).unwrap_or(256 * 1024);
            let mut buf = vec![0u8; chunk];
            match file.read(&mut buf).await {
                Ok(0) => {
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "object body shorter than its record",
                        )))
                        .await;
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    StreamingBlob::wrap(FileStream(rx))
}

/// Writes a whole file durably: data fsynced before it is renamed in.
async fn install(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    tokio::fs::rename(tmp, dest).await?;
    if let Some(dir) = dest.parent() {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || super::store::sync_dir(&dir))
            .await
            .map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// The stored headers of a request that sets them (PutObject, CopyObject
/// with `REPLACE`, CreateMultipartUpload: the same field names).
macro_rules! object_headers {
    ($input:expr) => {
        ObjectHeaders {
            content_type: $input.content_type.clone(),
            content_encoding: $input.content_encoding.clone(),
            content_disposition: $input.content_disposition.clone(),
            content_language: $input.content_language.clone(),
            cache_control: $input.cache_control.clone(),
            expires: http_date($input.expires.as_ref()),
            website_redirect_location: $input.website_redirect_location.clone(),
            metadata: lower_case_names($input.metadata.clone()),
        }
    };
}

fn http_date(t: Option<&Timestamp>) -> Option<String> {
    let mut out = Vec::new();
    t?.format(TimestampFormat::HttpDate, &mut out).ok()?;
    String::from_utf8(out).ok()
}

/// `x-amz-meta-*` names, lower-cased as S3 returns them.
fn lower_case_names(metadata: Option<dto::Metadata>) -> BTreeMap<String, String> {
    metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

fn parse_expires(text: &Option<String>) -> Option<Timestamp> {
    text.as_deref()
        .and_then(|t| Timestamp::parse(TimestampFormat::HttpDate, t).ok())
}

fn metadata_out(record: &ObjectRecord) -> Option<dto::Metadata> {
    if record.headers.metadata.is_empty() {
        None
    } else {
        Some(record.headers.metadata.clone().into_iter().collect())
    }
}

/// The principal of a request, as notifications show it.
fn principal<T>(req: &S3Request<T>) -> String {
    req.credentials
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |c| c.access_key.clone())
}

fn source_ip<T>(req: &S3Request<T>) -> String {
    req.extensions
        .get::<std::net::SocketAddr>()
        .map_or_else(|| "127.0.0.1".to_owned(), |a| a.ip().to_string())
}

impl Api {
    fn require_bucket(&self, bucket: &str) -> S3Result<super::store::BucketRecord> {
        self.s3
            .store
            .bucket(bucket)
            .map_err(|e| internal("reading a bucket", e))?
            .ok_or_else(|| no_such_bucket(bucket))
    }

    /// An object's record with its body file open: read again when an
    /// overwrite removed the body between the two.
    async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<(ObjectRecord, tokio::fs::File)> {
        for _ in 0..3 {
            let record = self.object(bucket, key)?;
            match tokio::fs::File::open(self.s3.store.object_path(&record.data)).await {
                Ok(file) => return Ok((record, file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(internal("opening a body", e)),
            }
        }
        Err(internal("opening a body", "the object kept changing"))
    }

    fn object(&self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        self.require_bucket(bucket)?;
        self.s3
            .store
            .object(bucket, key)
            .map_err(|e| internal("reading an object", e))?
            .ok_or_else(no_such_key)
    }

    /// Receives a body into `tmp/`: MD5 and the named checksums computed on
    /// the way, fsynced. The caller checks and installs (or discards) it.
    async fn receive(
        &self,
        body: Option<StreamingBlob>,
        algorithms: Algorithms,
    ) -> S3Result<Received> {
        let tmp = self.s3.store.tmp_path();
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| internal("creating a temporary file", e))?;
        let mut md5 = s3s::crypto::Md5::new();
        let mut hasher = algorithms.hasher();
        let mut size = 0u64;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        drop(file);
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(s3_error!(
                            IncompleteBody,
                            "The request body could not be read: {e}"
                        ));
                    }
                };
                md5.update(&chunk);
                hasher.update(&chunk);
                size += chunk.len() as u64;
                if let Err(e) = file.write_all(&chunk).await {
                    drop(file);
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(internal("writing a body", e));
                }
            }
        }
        if let Err(e) = file.sync_all().await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(internal("syncing a body", e));
        }
        Ok(Received {
            tmp,
            size,
            md5: md5.finalize(),
            checksum: hasher.finalize(),
        })
    }

    /// Checks Content-MD5 and the declared checksums of a received body.
    fn check_body(
        received: &Received,
        content_md5: Option<&str>,
        declared: &Declared,
    ) -> S3Result<()> {
        if let Some(sent) = content_md5 {
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sent.trim()) else {
                return Err(s3_error!(
                    InvalidDigest,
                    "The Content-MD5 you specified was invalid."
                ));
            };
            if bytes.len() != 16 {
                return Err(s3_error!(
                    InvalidDigest,
                    "The Content-MD5 you specified was invalid."
                ));
            }
            if bytes != received.md5 {
                return Err(s3_error!(
                    BadDigest,
                    "The Content-MD5 you specified did not match what we received."
                ));
            }
        }
        declared.verify(&received.checksum)
    }

    /// Puts `received` in place as `bucket/key` and commits its record;
    /// the old body (if any) goes.
    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        received: Received,
        mut record: ObjectRecord,
    ) -> S3Result<ObjectRecord> {
        let data = uuid::Uuid::new_v4().simple().to_string();
        let dest = self.s3.store.object_path(&data);
        if let Err(e) = install(&received.tmp, &dest).await {
            received.discard().await;
            return Err(internal("installing a body", e));
        }
        record.data = data;
        let old = match self.s3.store.put_object(bucket, key, &record) {
            Ok(old) => old,
            Err(e) => {
                let _ = tokio::fs::remove_file(&dest).await;
                return Err(internal("committing an object", e));
            }
        };
        if let Some(old) = old {
            let _ = tokio::fs::remove_file(self.s3.store.object_path(&old.data)).await;
        }
        Ok(record)
    }

    fn event<T>(
        &self,
        req: &S3Request<T>,
        bucket: &str,
        key: &str,
        name: &'static str,
        size: u64,
        etag: &str,
    ) {
        self.s3.emit(ObjectEvent {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            event_name: name,
            size,
            etag: etag.to_owned(),
            sequencer: self.s3.next_sequencer(),
            source_ip: source_ip(req),
            principal: principal(req),
            time: chrono::Utc::now(),
        });
    }

    /// PUT-side conditions (`If-None-Match: *`, `If-Match`), checked again
    /// at commit time by the caller holding no lock: S3's conditional
    /// writes are best effort here between two concurrent writers.
    fn check_write_conditions(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&dto::ETagCondition>,
        if_none_match: Option<&dto::ETagCondition>,
    ) -> S3Result<()> {
        if if_match.is_none() && if_none_match.is_none() {
            return Ok(());
        }
        let existing = self
            .s3
            .store
            .object(bucket, key)
            .map_err(|e| internal("reading an object", e))?;
        if let Some(c) = if_none_match
            && existing.is_some()
            && c.is_any()
        {
            return Err(precondition_failed());
        }
        if let Some(c) = if_match {
            match &existing {
                None => return Err(no_such_key()),
                Some(r) if !etag_matches(c, &r.etag) => return Err(precondition_failed()),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// ListObjects(V2): one page of keys and common prefixes after
    /// `cursor`. Returns the entries, whether more follow, and the cursor
    /// of the last entry.
    fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        cursor: Cursor,
        max_keys: usize,
    ) -> S3Result<Page> {
        let mut page = Page::default();
        let mut after = cursor.after.clone();
        let mut last_prefix = cursor.common_prefix.clone();
        if max_keys == 0 {
            return Ok(page);
        }
        'scan: loop {
            let batch = self
                .s3
                .store
                .keys_after(bucket, prefix, &after, 1000)
                .map_err(|e| internal("listing objects", e))?;
            if batch.is_empty() {
                break;
            }
            for (key, record) in batch {
                after.clone_from(&key);
                if let Some(cp) = &last_prefix
                    && key.starts_with(cp.as_str())
                {
                    continue;
                }
                let grouped = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                    key[prefix.len()..]
                        .find(d)
                        .map(|i| key[..prefix.len() + i + d.len()].to_owned())
                });
                if page.entries.len() == max_keys {
                    page.truncated = true;
                    break 'scan;
                }
                match grouped {
                    Some(cp) => {
                        last_prefix = Some(cp.clone());
                        page.entries.push(Entry::Prefix(cp));
                    }
                    None => page.entries.push(Entry::Object(key, Box::new(record))),
                }
            }
        }
        Ok(page)
    }
}

#[derive(Debug, Default, Clone)]
struct Cursor {
    /// List keys after this one.
    after: String,
    /// Skip keys under this common prefix (already returned).
    common_prefix: Option<String>,
}

enum Entry {
    Object(String, Box<ObjectRecord>),
    Prefix(String),
}

#[derive(Default)]
struct Page {
    entries: Vec<Entry>,
    truncated: bool,
}

impl Entry {
    fn token(&self) -> String {
        let raw = match self {
            Entry::Object(k, _) => format!("k{k}"),
            Entry::Prefix(p) => format!("p{p}"),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }
}

fn cursor_of_token(token: &str) -> S3Result<Cursor> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The continuation token provided is incorrect"
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    match text.split_at_checked(1) {
        Some(("k", key)) => Ok(Cursor {
            after: key.to_owned(),
            common_prefix: None,
        }),
        Some(("p", prefix)) => Ok(Cursor {
            after: prefix.to_owned(),
            common_prefix: Some(prefix.to_owned()),
        }),
        _ => Err(bad()),
    }
}

fn listed_object(key: String, record: &ObjectRecord) -> dto::Object {
    dto::Object {
        key: Some(key),
        e_tag: Some(etag_of(&record.etag)),
        size: Some(record.size as i64),
        last_modified: Some(timestamp(record.last_modified_ms)),
        storage_class: Some(dto::ObjectStorageClass::from(
            record
                .storage_class
                .clone()
                .unwrap_or_else(|| "STANDARD".to_owned()),
        )),
        checksum_algorithm: record.checksums.crc64nvme.as_ref().map(|_| {
            vec![dto::ChecksumAlgorithm::from_static(
                dto::ChecksumAlgorithm::CRC64NVME,
            )]
        }),
        checksum_type: record.checksums.kind.clone().map(dto::ChecksumType::from),
        ..Default::default()
    }
}

fn owner() -> dto::Owner {
    dto::Owner {
        id: Some(OWNER_ID.to_owned()),
        display_name: None,
    }
}

/// Keys in a listing, URL-encoded when the client asks
/// (`encoding-type=url`, as boto3 and the CLI do).
fn encode_key(key: &str, url: bool) -> String {
    if url {
        s3s_url_encode(key)
    } else {
        key.to_owned()
    }
}

/// S3's URL encoding of keys in listings: everything but unreserved
/// characters and `/` percent-encoded.
fn s3s_url_encode(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

fn wants_url(encoding: &Option<dto::EncodingType>) -> bool {
    encoding.as_ref().is_some_and(|e| e.as_str() == "url")
}

fn max_keys_of(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "Argument maxKeys must be an integer between 0 and 2147483647"
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

#[async_trait::async_trait]
impl s3s::S3 for Api {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let bucket = req.input.bucket;
        let existing = self
            .s3
            .store
            .bucket(&bucket)
            .map_err(|e| internal("reading a bucket", e))?;
        if existing.is_some() {
            // us-east-1 answers 200 to its owner re-creating a bucket; the
            // other regions answer 409 BucketAlreadyOwnedByYou
            // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html).
            if self.s3.region() != "us-east-1" {
                return Err(s3_error!(
                    BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it."
                ));
            }
        } else {
            self.s3
                .store
                .put_bucket(&super::store::BucketRecord {
                    name: bucket.clone(),
                    created_ms: now_ms(),
                    cors: None,
                    declared: false,
                })
                .map_err(|e| internal("creating a bucket", e))?;
        }
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket)?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(self.s3.region().to_owned()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.require_bucket(&req.input.bucket)?;
        // us-east-1 buckets have no location constraint (an empty element).
        let region = self.s3.region();
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint: (region != "us-east-1")
                .then(|| dto::BucketLocationConstraint::from(region.to_owned())),
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let prefix = req.input.prefix.clone().unwrap_or_default();
        let buckets = self
            .s3
            .store
            .buckets()
            .map_err(|e| internal("listing buckets", e))?
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix))
            .map(|b| dto::Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: Some(self.s3.region().to_owned()),
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            prefix: req.input.prefix,
            continuation_token: None,
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.require_bucket(&bucket)?;
        let uploads = self
            .s3
            .store
            .uploads(&bucket)
            .map_err(|e| internal("listing uploads", e))?;
        let deleted = self
            .s3
            .store
            .delete_bucket(&bucket)
            .map_err(|e| internal("deleting a bucket", e))?;
        if !deleted {
            return Err(s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            ));
        }
        for u in uploads {
            let _ = self.s3.store.delete_upload(&u.upload_id);
        }
        Ok(S3Response::with_status(
            dto::DeleteBucketOutput {},
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let input = &req.input;
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        self.require_bucket(&bucket)?;
        if key.len() > 1024 {
            return Err(s3_error!(KeyTooLongError, "Your key is too long"));
        }
        self.check_write_conditions(
            &bucket,
            &key,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
        )?;
        let mut declared = Declared {
            crc32: input.checksum_crc32.clone(),
            crc32c: input.checksum_crc32c.clone(),
            crc64nvme: input.checksum_crc64nvme.clone(),
            sha1: input.checksum_sha1.clone(),
            sha256: input.checksum_sha256.clone(),
        };
        let mut algorithms =
            declared.algorithms(input.checksum_algorithm.as_ref().map(|a| a.as_str()))?;
        // The checksum a trailer will carry (x-amz-trailer) is computed too.
        if let Some(trailer) = req
            .headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
        {
            for name in trailer.split(',') {
                if let Some(alg) = name.trim().strip_prefix("x-amz-checksum-") {
                    algorithms.add(alg)?;
                }
            }
        }
        // S3 gives every new object a CRC64NVME checksum when the request
        // names none (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
        algorithms.crc64nvme = true;

        let mut req = req;
        let body = req.input.body.take();
        let received = self.receive(body, algorithms).await?;
        declared.add_trailers(req.trailing_headers.as_ref());
        if let Some(len) = req.input.content_length
            && u64::try_from(len).ok() != Some(received.size)
        {
            received.discard().await;
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header"
            ));
        }
        if let Err(e) = Self::check_body(&received, req.input.content_md5.as_deref(), &declared) {
            received.discard().await;
            return Err(e);
        }
        let input = object_headers!(req.input);
        let etag = hex(&received.md5);
        let record = ObjectRecord {
            data: String::new(),
            size: received.size,
            etag: etag.clone(),
            last_modified_ms: now_ms(),
            headers: input,
            checksums: checksums_of(&received.checksum, dto::ChecksumType::FULL_OBJECT),
            part_sizes: Vec::new(),
            storage_class: req
                .input
                .storage_class
                .as_ref()
                .map(|s| s.as_str().to_owned()),
        };
        let checksum = received.checksum.clone();
        let record = self.commit_object(&bucket, &key, received, record).await?;
        // A POST (browser form upload) is ObjectCreated:Post.
        let name = if req.method == http::Method::POST {
            "ObjectCreated:Post"
        } else {
            "ObjectCreated:Put"
        };
        self.event(&req, &bucket, &key, name, record.size, &etag);
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag_of(&etag)),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_type: Some(dto::ChecksumType::from_static(
                dto::ChecksumType::FULL_OBJECT,
            )),
            size: Some(record.size as i64),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let input = req.input;
        let (record, file) = self.open_object(&input.bucket, &input.key).await?;
        check_read_conditions(
            &record,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        )?;
        if input.range.is_some() && input.part_number.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        let (range, content_range, parts_count) =
            read_range(&record, input.range.as_ref(), input.part_number)?;
        let whole = content_range.is_none();
        let checksum_mode = input
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == "ENABLED");
        let c = &record.checksums;
        let show = checksum_mode && whole;
        let headers = &record.headers;
        let output = dto::GetObjectOutput {
            body: Some(file_stream(file, range.clone())),
            content_length: Some((range.end - range.start) as i64),
            content_range,
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag_of(&record.etag)),
            last_modified: Some(timestamp(record.last_modified_ms)),
            content_type: input
                .response_content_type
                .or_else(|| headers.content_type.clone())
                .or_else(|| Some("binary/octet-stream".to_owned())),
            content_encoding: input
                .response_content_encoding
                .or_else(|| headers.content_encoding.clone()),
            content_disposition: input
                .response_content_disposition
                .or_else(|| headers.content_disposition.clone()),
            content_language: input
                .response_content_language
                .or_else(|| headers.content_language.clone()),
            cache_control: input
                .response_cache_control
                .or_else(|| headers.cache_control.clone()),
            expires: input
                .response_expires
                .or_else(|| parse_expires(&headers.expires)),
            website_redirect_location: headers.website_redirect_location.clone(),
            metadata: metadata_out(&record),
            parts_count,
            checksum_crc32: c.crc32.clone().filter(|_| show),
            checksum_crc32c: c.crc32c.clone().filter(|_| show),
            checksum_crc64nvme: c.crc64nvme.clone().filter(|_| show),
            checksum_sha1: c.sha1.clone().filter(|_| show),
            checksum_sha256: c.sha256.clone().filter(|_| show),
            checksum_type: c.kind.clone().filter(|_| show).map(dto::ChecksumType::from),
            ..Default::default()
        };
        let status = if whole {
            http::StatusCode::OK
        } else {
            http::StatusCode::PARTIAL_CONTENT
        };
        Ok(S3Response::with_status(output, status))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let input = req.input;
        let record = self.object(&input.bucket, &input.key)?;
        check_read_conditions(
            &record,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        )?;
        let (range, content_range, parts_count) =
            read_range(&record, input.range.as_ref(), input.part_number)?;
        let show = input
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == "ENABLED")
            && content_range.is_none();
        let c = &record.checksums;
        let headers = &record.headers;
        Ok(S3Response::new(dto::HeadObjectOutput {
            content_length: Some((range.end - range.start) as i64),
            content_range,
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag_of(&record.etag)),
            last_modified: Some(timestamp(record.last_modified_ms)),
            content_type: headers
                .content_type
                .clone()
                .or_else(|| Some("binary/octet-stream".to_owned())),
            content_encoding: headers.content_encoding.clone(),
            content_disposition: headers.content_disposition.clone(),
            content_language: headers.content_language.clone(),
            cache_control: headers.cache_control.clone(),
            expires: parse_expires(&headers.expires),
            website_redirect_location: headers.website_redirect_location.clone(),
            metadata: metadata_out(&record),
            parts_count,
            checksum_crc32: c.crc32.clone().filter(|_| show),
            checksum_crc32c: c.crc32c.clone().filter(|_| show),
            checksum_crc64nvme: c.crc64nvme.clone().filter(|_| show),
            checksum_sha1: c.sha1.clone().filter(|_| show),
            checksum_sha256: c.sha256.clone().filter(|_| show),
            checksum_type: c.kind.clone().filter(|_| show).map(dto::ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.require_bucket(&bucket)?;
        if let Some(c) = &req.input.if_match {
            match self
                .s3
                .store
                .object(&bucket, &key)
                .map_err(|e| internal("reading an object", e))?
            {
                None => return Err(no_such_key()),
                Some(r) if !etag_matches(c, &r.etag) => return Err(precondition_failed()),
                Some(_) => {}
            }
        }
        // Deleting a missing key succeeds (204), and S3 still notifies
        // nothing for it (no object was removed).
        let old = self
            .s3
            .store
            .delete_object(&bucket, &key)
            .map_err(|e| internal("deleting an object", e))?;
        if let Some(old) = old {
            let _ = tokio::fs::remove_file(self.s3.store.object_path(&old.data)).await;
            self.event(&req, &bucket, &key, "ObjectRemoved:Delete", 0, "");
        }
        Ok(S3Response::with_status(
            dto::DeleteObjectOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        self.require_bucket(&bucket)?;
        if req.input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = req.input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for id in &req.input.delete.objects {
            match self.s3.store.delete_object(&bucket, &id.key) {
                Ok(old) => {
                    if let Some(old) = old {
                        let _ = tokio::fs::remove_file(self.s3.store.object_path(&old.data)).await;
                        self.event(&req, &bucket, &id.key, "ObjectRemoved:Delete", 0, "");
                    }
                    if !quiet {
                        deleted.push(dto::DeletedObject {
                            key: Some(id.key.clone()),
                            ..Default::default()
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(target: "s3", "deleting {bucket}/{}: {e}", id.key);
                    errors.push(dto::Error {
                        key: Some(id.key.clone()),
                        code: Some("InternalError".to_owned()),
                        message: Some(
                            "We encountered an internal error. Please try again.".to_owned(),
                        ),
                        version_id: None,
                    });
                }
            }
        }
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            request_charged: None,
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let input = &req.input;
        let (src_bucket, src_key) = match &input.copy_source {
            dto::CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
                ));
            }
        };
        self.require_bucket(&input.bucket)?;
        let (source, source_file) = self.open_object(&src_bucket, &src_key).await?;
        // x-amz-copy-source-if-* (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html):
        // all failures are 412.
        check_read_conditions(
            &source,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
        )
        .map_err(|_| precondition_failed())?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        if src_bucket == input.bucket
            && src_key == input.key
            && !replace
            && input.storage_class.is_none()
            && input.website_redirect_location.is_none()
        {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let headers = if replace {
            object_headers!(input)
        } else {
            source.headers.clone()
        };
        let mut algorithms = Algorithms {
            crc64nvme: true,
            ..Default::default()
        };
        if let Some(a) = &input.checksum_algorithm {
            algorithms.add(a.as_str())?;
        }
        // The copy is read through the same path as an upload: a fresh
        // MD5 (a copy of a multipart object gets a plain ETag) and checksums.
        let body = file_stream(source_file, 0..source.size);
        let received = self.receive(Some(body), algorithms).await?;
        if received.size != source.size {
            received.discard().await;
            return Err(internal(
                "copying an object",
                "the source body changed while it was read",
            ));
        }
        let etag = hex(&received.md5);
        let checksum = received.checksum.clone();
        let record = ObjectRecord {
            data: String::new(),
            size: received.size,
            etag: etag.clone(),
            last_modified_ms: now_ms(),
            headers,
            checksums: checksums_of(&received.checksum, dto::ChecksumType::FULL_OBJECT),
            part_sizes: Vec::new(),
            storage_class: input.storage_class.as_ref().map(|s| s.as_str().to_owned()),
        };
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let record = self.commit_object(&bucket, &key, received, record).await?;
        self.event(
            &req,
            &bucket,
            &key,
            "ObjectCreated:Copy",
            record.size,
            &etag,
        );
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag_of(&etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                checksum_crc64nvme: checksum.checksum_crc64nvme,
                checksum_crc32: checksum.checksum_crc32,
                checksum_type: Some(dto::ChecksumType::from_static(
                    dto::ChecksumType::FULL_OBJECT,
                )),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = max_keys_of(input.max_keys)?;
        let cursor = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => cursor_of_token(t)?,
            (None, Some(s)) => Cursor {
                after: s.clone(),
                common_prefix: None,
            },
            (None, None) => Cursor::default(),
        };
        let page = self.list_page(
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            cursor,
            max_keys,
        )?;
        let url = wants_url(&input.encoding_type);
        let next = page
            .truncated
            .then(|| page.entries.last().map(Entry::token))
            .flatten();
        let mut contents = Vec::new();
        let mut prefixes = Vec::new();
        for e in page.entries {
            match e {
                Entry::Object(k, r) => contents.push(listed_object(encode_key(&k, url), &r)),
                Entry::Prefix(p) => prefixes.push(dto::CommonPrefix {
                    prefix: Some(encode_key(&p, url)),
                }),
            }
        }
        let key_count = (contents.len() + prefixes.len()) as i32;
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_key(&prefix, url)),
            delimiter: input.delimiter.map(|d| encode_key(&d, url)),
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            is_truncated: Some(page.truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after.map(|s| encode_key(&s, url)),
            encoding_type: input.encoding_type,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            request_charged: None,
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = max_keys_of(input.max_keys)?;
        let cursor = Cursor {
            after: input.marker.clone().unwrap_or_default(),
            common_prefix: None,
        };
        let page = self.list_page(
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            cursor,
            max_keys,
        )?;
        let url = wants_url(&input.encoding_type);
        // NextMarker only with a delimiter (clients use the last key otherwise).
        let next_marker = (page.truncated && input.delimiter.is_some())
            .then(|| {
                page.entries.last().map(|e| match e {
                    Entry::Object(k, _) => encode_key(k, url),
                    Entry::Prefix(p) => encode_key(p, url),
                })
            })
            .flatten();
        let mut contents = Vec::new();
        let mut prefixes = Vec::new();
        for e in page.entries {
            match e {
                Entry::Object(k, r) => {
                    let mut o = listed_object(encode_key(&k, url), &r);
                    o.owner = Some(owner());
                    contents.push(o);
                }
                Entry::Prefix(p) => prefixes.push(dto::CommonPrefix {
                    prefix: Some(encode_key(&p, url)),
                }),
            }
        }
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_key(&prefix, url)),
            marker: Some(input.marker.unwrap_or_default()),
            delimiter: input.delimiter,
            max_keys: Some(max_keys as i32),
            is_truncated: Some(page.truncated),
            next_marker,
            encoding_type: input.encoding_type,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            request_charged: None,
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase());
        if let Some(a) = &algorithm {
            Algorithms::default().add(a)?;
        }
        // CRC64NVME is full-object only; the others default to COMPOSITE
        // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html#large-object-checksums).
        let kind = input
            .checksum_type
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .or_else(|| {
                algorithm.as_ref().map(|a| {
                    if a == "CRC64NVME" {
                        dto::ChecksumType::FULL_OBJECT.to_owned()
                    } else {
                        dto::ChecksumType::COMPOSITE.to_owned()
                    }
                })
            });
        if algorithm.as_deref() == Some("CRC64NVME")
            && kind.as_deref() == Some(dto::ChecksumType::COMPOSITE)
        {
            return Err(s3_error!(
                InvalidRequest,
                "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."
            ));
        }
        let upload_id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let record = UploadRecord {
            upload_id: upload_id.clone(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            headers: object_headers!(input),
            checksum_algorithm: algorithm.clone(),
            checksum_type: kind.clone(),
            storage_class: input.storage_class.map(|s| s.as_str().to_owned()),
        };
        self.s3
            .store
            .put_upload(&record)
            .map_err(|e| internal("creating an upload", e))?;
        let _ =
            tokio::fs::create_dir_all(self.s3.store.root().join("parts").join(&upload_id)).await;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: algorithm.map(dto::ChecksumAlgorithm::from),
            checksum_type: kind.map(dto::ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let mut req = req;
        let input = &req.input;
        self.require_bucket(&input.bucket)?;
        let upload = self
            .s3
            .store
            .upload(&input.upload_id)
            .map_err(|e| internal("reading an upload", e))?
            .filter(|u| u.bucket == input.bucket && u.key == input.key)
            .ok_or_else(no_such_upload)?;
        let number = input.part_number;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let mut declared = Declared {
            crc32: input.checksum_crc32.clone(),
            crc32c: input.checksum_crc32c.clone(),
            crc64nvme: input.checksum_crc64nvme.clone(),
            sha1: input.checksum_sha1.clone(),
            sha256: input.checksum_sha256.clone(),
        };
        let mut algorithms =
            declared.algorithms(input.checksum_algorithm.as_ref().map(|a| a.as_str()))?;
        if let Some(a) = &upload.checksum_algorithm {
            algorithms.add(a)?;
        }
        if let Some(trailer) = req
            .headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
        {
            for name in trailer.split(',') {
                if let Some(alg) = name.trim().strip_prefix("x-amz-checksum-") {
                    algorithms.add(alg)?;
                }
            }
        }
        let content_md5 = input.content_md5.clone();
        let content_length = input.content_length;
        let upload_id = input.upload_id.clone();
        let body = req.input.body.take();
        let received = self.receive(body, algorithms).await?;
        declared.add_trailers(req.trailing_headers.as_ref());
        if let Some(len) = content_length
            && u64::try_from(len).ok() != Some(received.size)
        {
            received.discard().await;
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header"
            ));
        }
        if let Err(e) = Self::check_body(&received, content_md5.as_deref(), &declared) {
            received.discard().await;
            return Err(e);
        }
        let dest = self.s3.store.part_path(&upload_id, number);
        if let Some(dir) = dest.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        if let Err(e) = install(&received.tmp, &dest).await {
            received.discard().await;
            return Err(internal("installing a part", e));
        }
        let etag = hex(&received.md5);
        let part = PartRecord {
            number,
            size: received.size,
            etag: etag.clone(),
            last_modified_ms: now_ms(),
            checksums: checksums_of(&received.checksum, dto::ChecksumType::FULL_OBJECT),
        };
        self.s3
            .store
            .put_part(&upload_id, &part)
            .map_err(|e| internal("recording a part", e))?;
        let c = received.checksum;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(etag_of(&etag)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let upload = self
            .s3
            .store
            .upload(&input.upload_id)
            .map_err(|e| internal("reading an upload", e))?
            .filter(|u| u.bucket == input.bucket && u.key == input.key)
            .ok_or_else(no_such_upload)?;
        let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let marker = input.part_number_marker.unwrap_or(0);
        let all: Vec<PartRecord> = self
            .s3
            .store
            .parts(&input.upload_id)
            .map_err(|e| internal("listing parts", e))?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let parts: Vec<dto::Part> = all
            .iter()
            .take(max)
            .map(|p| dto::Part {
                part_number: Some(p.number),
                e_tag: Some(etag_of(&p.etag)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.last_modified_ms)),
                checksum_crc32: p.checksums.crc32.clone(),
                checksum_crc32c: p.checksums.crc32c.clone(),
                checksum_crc64nvme: p.checksums.crc64nvme.clone(),
                checksum_sha1: p.checksums.sha1.clone(),
                checksum_sha256: p.checksums.sha256.clone(),
            })
            .collect();
        let next = truncated
            .then(|| parts.last().and_then(|p| p.part_number))
            .flatten();
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next,
            parts: Some(parts),
            owner: Some(owner()),
            initiator: Some(dto::Initiator {
                id: Some(OWNER_ID.to_owned()),
                display_name: None,
            }),
            storage_class: Some(dto::StorageClass::from(
                upload
                    .storage_class
                    .unwrap_or_else(|| "STANDARD".to_owned()),
            )),
            checksum_algorithm: upload.checksum_algorithm.map(dto::ChecksumAlgorithm::from),
            checksum_type: upload.checksum_type.map(dto::ChecksumType::from),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads: Vec<dto::MultipartUpload> = self
            .s3
            .store
            .uploads(&input.bucket)
            .map_err(|e| internal("listing uploads", e))?
            .into_iter()
            .filter(|u| u.key.starts_with(&prefix))
            .take(1000)
            .map(|u| dto::MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated_ms)),
                owner: Some(owner()),
                initiator: Some(dto::Initiator {
                    id: Some(OWNER_ID.to_owned()),
                    display_name: None,
                }),
                storage_class: Some(dto::StorageClass::from(
                    u.storage_class.unwrap_or_else(|| "STANDARD".to_owned()),
                )),
                checksum_algorithm: u.checksum_algorithm.map(dto::ChecksumAlgorithm::from),
                checksum_type: u.checksum_type.map(dto::ChecksumType::from),
            })
            .collect();
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            max_uploads: Some(1000),
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        self.s3
            .store
            .upload(&input.upload_id)
            .map_err(|e| internal("reading an upload", e))?
            .filter(|u| u.bucket == input.bucket && u.key == input.key)
            .ok_or_else(no_such_upload)?;
        self.s3
            .store
            .delete_upload(&input.upload_id)
            .map_err(|e| internal("aborting an upload", e))?;
        Ok(S3Response::with_status(
            dto::AbortMultipartUploadOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let input = &req.input;
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        self.require_bucket(&bucket)?;
        let upload = self
            .s3
            .store
            .upload(&input.upload_id)
            .map_err(|e| internal("reading an upload", e))?
            .filter(|u| u.bucket == bucket && u.key == key)
            .ok_or_else(no_such_upload)?;
        self.check_write_conditions(
            &bucket,
            &key,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
        )?;
        let requested = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.clone())
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let stored: BTreeMap<i32, PartRecord> = self
            .s3
            .store
            .parts(&input.upload_id)
            .map_err(|e| internal("listing parts", e))?
            .into_iter()
            .map(|p| (p.number, p))
            .collect();
        let invalid_part = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let mut chosen: Vec<&PartRecord> = Vec::new();
        let mut previous = 0;
        for p in &requested {
            let number = p.part_number.unwrap_or(0);
            if number <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. The parts list must be specified in order by part number."
                ));
            }
            previous = number;
            let part = stored.get(&number).ok_or_else(invalid_part)?;
            if let Some(e) = &p.e_tag
                && e.value() != part.etag
            {
                return Err(invalid_part());
            }
            let given = [
                (&p.checksum_crc32, &part.checksums.crc32),
                (&p.checksum_crc32c, &part.checksums.crc32c),
                (&p.checksum_crc64nvme, &part.checksums.crc64nvme),
                (&p.checksum_sha1, &part.checksums.sha1),
                (&p.checksum_sha256, &part.checksums.sha256),
            ];
            if given
                .iter()
                .any(|(sent, have)| sent.is_some() && sent != have)
            {
                return Err(invalid_part());
            }
            chosen.push(part);
        }
        for part in &chosen[..chosen.len() - 1] {
            if part.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
        }

        // The parts, concatenated into one body; the full-object checksum
        // computed on the way (CRC64NVME by default, or the upload's
        // algorithm when FULL_OBJECT).
        let kind = upload
            .checksum_type
            .clone()
            .unwrap_or_else(|| dto::ChecksumType::FULL_OBJECT.to_owned());
        let mut algorithms = Algorithms::default();
        match (&upload.checksum_algorithm, kind.as_str()) {
            (Some(a), dto::ChecksumType::FULL_OBJECT) => algorithms.add(a)?,
            (None, _) => algorithms.crc64nvme = true,
            _ => {}
        }
        let tmp = self.s3.store.tmp_path();
        let assembled = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            let mut hasher = algorithms.hasher();
            let mut buf = vec![0u8; 256 * 1024];
            for part in &chosen {
                let mut f =
                    tokio::fs::File::open(self.s3.store.part_path(&upload.upload_id, part.number))
                        .await?;
                loop {
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    out.write_all(&buf[..n]).await?;
                }
            }
            out.sync_all().await?;
            Ok::<_, std::io::Error>(hasher.finalize())
        }
        .await;
        let mut checksum = match assembled {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(internal("assembling an upload", e));
            }
        };
        // COMPOSITE: the checksum of the parts' checksums, `-<parts>`.
        if kind == dto::ChecksumType::COMPOSITE
            && let Some(a) = &upload.checksum_algorithm
        {
            let mut composite = Algorithms::default();
            composite.add(a)?;
            let mut h = composite.hasher();
            for part in &chosen {
                let value = match a.as_str() {
                    "CRC32" => &part.checksums.crc32,
                    "CRC32C" => &part.checksums.crc32c,
                    "SHA1" => &part.checksums.sha1,
                    _ => &part.checksums.sha256,
                };
                let raw = value
                    .as_deref()
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .unwrap_or_default();
                h.update(&raw);
            }
            let mut c = h.finalize();
            let suffix = format!("-{}", chosen.len());
            for v in [
                &mut c.checksum_crc32,
                &mut c.checksum_crc32c,
                &mut c.checksum_sha1,
                &mut c.checksum_sha256,
            ]
            .into_iter()
            .flatten()
            {
                v.push_str(&suffix);
            }
            checksum = c;
        }

        // ETag: MD5 of the parts' binary MD5s, `-<parts>`
        // (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTCommonResponseHeaders.html).
        let mut md5 = s3s::crypto::Md5::new();
        for part in &chosen {
            let raw: Vec<u8> = (0..part.etag.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(part.etag.get(i..i + 2)?, 16).ok())
                .collect();
            md5.update(&raw);
        }
        let etag = format!("{}-{}", hex(&md5.finalize()), chosen.len());
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let data = uuid::Uuid::new_v4().simple().to_string();
        let dest = self.s3.store.object_path(&data);
        if let Err(e) = install(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(internal("installing an upload", e));
        }
        let record = ObjectRecord {
            data,
            size,
            etag: etag.clone(),
            last_modified_ms: now_ms(),
            headers: upload.headers.clone(),
            checksums: checksums_of(&checksum, &kind),
            part_sizes: chosen.iter().map(|p| p.size).collect(),
            storage_class: upload.storage_class.clone(),
        };
        let old = match self
            .s3
            .store
            .complete_upload(&upload.upload_id, &bucket, &key, &record)
        {
            Ok(old) => old,
            Err(e) => {
                let _ = tokio::fs::remove_file(&dest).await;
                return Err(internal("completing an upload", e));
            }
        };
        if let Some(old) = old {
            let _ = tokio::fs::remove_file(self.s3.store.object_path(&old.data)).await;
        }
        self.event(
            &req,
            &bucket,
            &key,
            "ObjectCreated:CompleteMultipartUpload",
            size,
            &etag,
        );
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            bucket: Some(bucket.clone()),
            key: Some(key.clone()),
            e_tag: Some(etag_of(&etag)),
            location: Some(format!("/{bucket}/{key}")),
            checksum_crc32: checksum.checksum_crc32,
            checksum_crc32c: checksum.checksum_crc32c,
            checksum_crc64nvme: checksum.checksum_crc64nvme,
            checksum_sha1: checksum.checksum_sha1,
            checksum_sha256: checksum.checksum_sha256,
            checksum_type: Some(dto::ChecksumType::from(kind)),
            ..Default::default()
        }))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<dto::GetBucketCorsInput>,
    ) -> S3Result<S3Response<dto::GetBucketCorsOutput>> {
        let bucket = self.require_bucket(&req.input.bucket)?;
        let rules = bucket.cors.ok_or_else(|| {
            s3_error!(
                NoSuchCORSConfiguration,
                "The CORS configuration does not exist"
            )
        })?;
        Ok(S3Response::new(dto::GetBucketCorsOutput {
            cors_rules: Some(
                rules
                    .into_iter()
                    .map(|r| dto::CORSRule {
                        id: r.id,
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: (!r.allowed_headers.is_empty())
                            .then_some(r.allowed_headers),
                        expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
                        max_age_seconds: r.max_age_seconds,
                    })
                    .collect(),
            ),
        }))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<dto::PutBucketCorsInput>,
    ) -> S3Result<S3Response<dto::PutBucketCorsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let rules: Vec<super::cors::CorsRule> = input
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| super::cors::CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect();
        super::cors::validate(&rules)
            .map_err(|m| S3Error::with_message(s3s::S3ErrorCode::InvalidRequest, m))?;
        self.s3
            .set_cors(&input.bucket, Some(rules))
            .map_err(|e| internal("storing CORS rules", e))?;
        Ok(S3Response::new(dto::PutBucketCorsOutput::default()))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<dto::DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketCorsOutput>> {
        self.require_bucket(&req.input.bucket)?;
        self.s3
            .set_cors(&req.input.bucket, None)
            .map_err(|e| internal("removing CORS rules", e))?;
        Ok(S3Response::with_status(
            dto::DeleteBucketCorsOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }
}

/// 416 InvalidPartNumber (a code s3s does not list).
fn invalid_part_number() -> S3Error {
    let mut e = S3Error::with_message(
        s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
        "The requested partnumber is not satisfiable",
    );
    e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
    e
}

/// `partNumber=N` on GET/HEAD: the byte range of that part.
/// The bytes a GET or HEAD reads: the `Range` header's (with its
/// `Content-Range`), else part `part_number`'s, else the whole object.
fn read_range(
    record: &ObjectRecord,
    range: Option<&dto::Range>,
    part_number: Option<i32>,
) -> S3Result<(std::ops::Range<u64>, Option<String>, Option<i32>)> {
    match (range, part_number) {
        (Some(r), _) => {
            let range = r
                .check(record.size)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
            let header = format!(
                "bytes {}-{}/{}",
                range.start,
                range.end.saturating_sub(1),
                record.size
            );
            Ok((range, Some(header), None))
        }
        (None, Some(n)) => part_range(record, n),
        (None, None) => Ok((0..record.size, None, None)),
    }
}

fn part_range(
    record: &ObjectRecord,
    n: i32,
) -> S3Result<(std::ops::Range<u64>, Option<String>, Option<i32>)> {
    if record.part_sizes.is_empty() {
        if n == 1 {
            return Ok((0..record.size, None, None));
        }
        return Err(invalid_part_number());
    }
    let index = usize::try_from(n - 1).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )
    })?;
    let Some(size) = record.part_sizes.get(index) else {
        return Err(invalid_part_number());
    };
    let start: u64 = record.part_sizes[..index].iter().sum();
    let range = start..start + size;
    let header = format!(
        "bytes {}-{}/{}",
        range.start,
        range.end.saturating_sub(1),
        record.size
    );
    Ok((range, Some(header), Some(record.part_sizes.len() as i32)))
}

//! Where a stack's buckets live: object bodies as files, everything else
//! (buckets, object records, multipart uploads) in SQLite.
//!
//! Layout under `<data>/s3/`:
//! - `s3.db`: the records (WAL);
//! - `objects/<id>`: one file per object body, named by a fresh id;
//! - `parts/<upload id>/<part number>`: parts of multipart uploads;
//! - `tmp/`: bodies being received.
//!
//! Invariants (what makes an acknowledged write survive `kill -9`):
//! - a body is written to `tmp/`, fsynced, checked (checksums,
//!   Content-MD5), then renamed into `objects/` and the directory fsynced,
//!   *before* its record is committed; the commit is the acknowledgement;
//! - a record names its body file; a body file no record names is garbage
//!   from a write that did not finish (or the old body of an overwritten
//!   key) and is removed at the next start ([`Store::sweep`]).
//!
//! In-process test stacks keep the records in memory and the files in a
//! temporary folder removed when the store is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub const DATABASE_FILE: &str = "s3.db";

/// A bucket as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ms: i64,
    /// The bucket's CORS rules (PutBucketCors / dev.toml).
    #[serde(default)]
    pub cors: Option<Vec<super::cors::CorsRule>>,
    /// Set when the bucket comes from dev.toml (shown by `woocom-dev buckets`).
    #[serde(default)]
    pub declared: bool,
}

/// The checksums S3 keeps for an object (base64, as on the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Checksums {
    pub fn is_empty(&self) -> bool {
        self.crc32.is_none()
            && self.crc32c.is_none()
            && self.crc64nvme.is_none()
            && self.sha1.is_none()
            && self.sha256.is_none()
    }
}

/// The headers S3 stores with an object and returns on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header as sent (an HTTP date).
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*`, names lower-cased as S3 returns them.
    pub metadata: BTreeMap<String, String>,
}

/// An object as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The body file under `objects/`.
    pub data: String,
    pub size: u64,
    /// Without quotes: an MD5 in hex, or `<md5 of part md5s>-<parts>`.
    pub etag: String,
    pub last_modified_ms: i64,
    pub headers: ObjectHeaders,
    #[serde(default)]
    pub checksums: Checksums,
    /// Parts of a multipart upload (`x-amz-mp-parts-count`), with their sizes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_sizes: Vec<u64>,
    pub storage_class: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub headers: ObjectHeaders,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    pub storage_class: Option<String>,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: i32,
    pub size: u64,
    /// MD5 hex, no quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub checksums: Checksums,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the S3 store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the S3 store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub struct Store {
    conn: Mutex<Connection>,
    root: PathBuf,
    /// A temporary root (in-process stacks) is removed on drop.
    temporary: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl Store {
    /// Opens `<dir>/s3/` (`Some`), or a temporary store (`None`).
    pub fn open(dir: Option<&Path>) -> Result<Store, StoreError> {
        let (root, temporary) = match dir {
            Some(d) => (d.join("s3"), false),
            None => (
                std::env::temp_dir().join(format!("woocom-s3-{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        for sub in ["objects", "parts", "tmp"] {
            let path = root.join(sub);
            std::fs::create_dir_all(&path).map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        let db = root.join(DATABASE_FILE);
        let wrap = |source| StoreError::Sqlite {
            path: db.display().to_string(),
            source,
        };
        let conn = if temporary {
            Connection::open_in_memory()
        } else {
            Connection::open(&db)
        }
        .map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS objects (
                 bucket TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL,
                 PRIMARY KEY (bucket, key));
             CREATE TABLE IF NOT EXISTS uploads (
                 upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
                 record TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS parts (
                 upload_id TEXT NOT NULL, number INTEGER NOT NULL, record TEXT NOT NULL,
                 PRIMARY KEY (upload_id, number));",
        )
        .map_err(wrap)?;
        let store = Store {
            conn: Mutex::new(conn),
            root,
            temporary,
        };
        store.sweep();
        Ok(store)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn object_path(&self, data: &str) -> PathBuf {
        self.root.join("objects").join(data)
    }

    pub fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join("parts")
            .join(upload_id)
            .join(number.to_string())
    }

    /// Removes what an unfinished write left: files in `tmp/`, body files
    /// no record names, part folders of no upload.
    pub fn sweep(&self) {
        let _ = std::fs::remove_dir_all(self.root.join("tmp"));
        let _ = std::fs::create_dir_all(self.root.join("tmp"));
        let (named, uploads) = {
            let conn = self.conn();
            let named: std::collections::HashSet<String> = conn
                .prepare("SELECT record FROM objects")
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default()
                .iter()
                .filter_map(|t| parse::<ObjectRecord>(t))
                .map(|r| r.data)
                .collect();
            let uploads: std::collections::HashSet<String> = conn
                .prepare("SELECT upload_id FROM uploads")
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default()
                .into_iter()
                .collect();
            (named, uploads)
        };
        if let Ok(entries) = std::fs::read_dir(self.root.join("objects")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !named.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join("parts")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !uploads.contains(&name) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    pub fn buckets(&self) -> rusqlite::Result<Vec<BucketRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT record FROM buckets ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.iter().filter_map(|t| parse(t)).collect())
    }

    pub fn bucket(&self, name: &str) -> rusqlite::Result<Option<BucketRecord>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .prepare_cached("SELECT record FROM buckets WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| parse(&t)))
    }

    pub fn put_bucket(&self, record: &BucketRecord) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached("INSERT OR REPLACE INTO buckets (name, record) VALUES (?1, ?2)")?
            .execute(params![record.name, json(record)])?;
        Ok(())
    }

    /// Deletes an empty bucket; `Ok(false)` when it still holds objects.
    pub fn delete_bucket(&self, name: &str) -> rusqlite::Result<bool> {
        let conn = self.conn();
        let objects: i64 = conn.query_row(
            "SELECT COUNT(*) FROM objects WHERE bucket = ?1",
            [name],
            |r| r.get(0),
        )?;
        if objects > 0 {
            return Ok(false);
        }
        conn.execute("DELETE FROM uploads WHERE bucket = ?1", [name])?;
        conn.execute("DELETE FROM buckets WHERE name = ?1", [name])?;
        Ok(true)
    }

    pub fn object(&self, bucket: &str, key: &str) -> rusqlite::Result<Option<ObjectRecord>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .prepare_cached("SELECT record FROM objects WHERE bucket = ?1 AND key = ?2")?
            .query_row([bucket, key], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| parse(&t)))
    }

    /// Commits an object record; returns the record it replaced, whose body
    /// file the caller removes.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> rusqlite::Result<Option<ObjectRecord>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old = replace_record(&tx, bucket, key, record)?;
        tx.commit()?;
        Ok(old.and_then(|t| parse(&t)))
    }

    pub fn delete_object(&self, bucket: &str, key: &str) -> rusqlite::Result<Option<ObjectRecord>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old: Option<String> = tx
            .query_row(
                "SELECT record FROM objects WHERE bucket = ?1 AND key = ?2",
                [bucket, key],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
            [bucket, key],
        )?;
        tx.commit()?;
        Ok(old.and_then(|t| parse(&t)))
    }

    /// Keys of `bucket` after `after` (exclusive) that start with `prefix`,
    /// in UTF-8 binary order (SQLite's BINARY collation compares bytes,
    /// which is S3's order), at most `limit`.
    pub fn keys_after(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> rusqlite::Result<Vec<(String, ObjectRecord)>> {
        let conn = self.conn();
        let start = if after >= prefix { after } else { prefix };
        let inclusive = start != after;
        let sql = if inclusive {
            "SELECT key, record FROM objects WHERE bucket = ?1 AND key >= ?2 ORDER BY key LIMIT ?3"
        } else {
            "SELECT key, record FROM objects WHERE bucket = ?1 AND key > ?2 ORDER BY key LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![bucket, start, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, t)| parse(&t).map(|r| (k, r)))
            .collect())
    }

    pub fn object_count(&self, bucket: &str) -> rusqlite::Result<(u64, u64)> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT record FROM objects WHERE bucket = ?1")?;
        let rows = stmt
            .query_map([bucket], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let sizes: Vec<u64> = rows
            .iter()
            .filter_map(|t| parse::<ObjectRecord>(t))
            .map(|r| r.size)
            .collect();
        Ok((sizes.len() as u64, sizes.iter().sum()))
    }

    pub fn put_upload(&self, record: &UploadRecord) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT OR REPLACE INTO uploads (upload_id, bucket, key, record) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![record.upload_id, record.bucket, record.key, json(record)])?;
        Ok(())
    }

    pub fn upload(&self, upload_id: &str) -> rusqlite::Result<Option<UploadRecord>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .prepare_cached("SELECT record FROM uploads WHERE upload_id = ?1")?
            .query_row([upload_id], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| parse(&t)))
    }

    pub fn uploads(&self, bucket: &str) -> rusqlite::Result<Vec<UploadRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT record FROM uploads WHERE bucket = ?1 ORDER BY key, upload_id")?;
        let rows = stmt
            .query_map([bucket], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.iter().filter_map(|t| parse(t)).collect())
    }

    pub fn put_part(&self, upload_id: &str, part: &PartRecord) -> rusqlite::Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT OR REPLACE INTO parts (upload_id, number, record) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![upload_id, part.number, json(part)])?;
        Ok(())
    }

    pub fn parts(&self, upload_id: &str) -> rusqlite::Result<Vec<PartRecord>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT record FROM parts WHERE upload_id = ?1 ORDER BY number")?;
        let rows = stmt
            .query_map([upload_id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.iter().filter_map(|t| parse(t)).collect())
    }

    /// Ends an upload: removes its records, and its part files.
    pub fn delete_upload(&self, upload_id: &str) -> rusqlite::Result<()> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
            tx.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id])?;
            tx.commit()?;
        }
        let _ = std::fs::remove_dir_all(self.root.join("parts").join(upload_id));
        Ok(())
    }

    /// Completes an upload in one transaction: the object record replaces
    /// the old one and the upload's records go.
    pub fn complete_upload(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> rusqlite::Result<Option<ObjectRecord>> {
        let old = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let old = replace_record(&tx, bucket, key, record)?;
            tx.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
            tx.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id])?;
            tx.commit()?;
            old
        };
        let _ = std::fs::remove_dir_all(self.root.join("parts").join(upload_id));
        Ok(old.and_then(|t| parse(&t)))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// fsyncs a directory, so a rename into it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `key`'s record in `tx`, returning the one it replaces (as stored).
fn replace_record(
    tx: &rusqlite::Transaction<'_>,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
) -> rusqlite::Result<Option<String>> {
    let old: Option<String> = tx
        .query_row(
            "SELECT record FROM objects WHERE bucket = ?1 AND key = ?2",
            [bucket, key],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT OR REPLACE INTO objects (bucket, key, record) VALUES (?1, ?2, ?3)",
        params![bucket, key, json(record)],
    )?;
    Ok(old)
}

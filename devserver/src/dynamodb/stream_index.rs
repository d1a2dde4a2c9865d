//! Indexes the engine's stream-record table lacks (ENGINE-GAPS.md, "Stream
//! writes and reads scan every record").
//!
//! dynoxide-rs 3.2.0 finds a table's next stream sequence number with
//! `MAX(CAST(sequence_number AS INTEGER)) ... WHERE table_name = ?` and
//! reads a shard with `CAST(sequence_number AS INTEGER) > ? ORDER BY
//! CAST(...)`; with no index on that expression both scan every stored
//! record, so each write to a streamed table and each poll grow slower as
//! the stream grows (about 3 ms each at 50,000 records). SQLite uses an
//! index on the same expression for both, which makes them
//! microseconds. The engine does not expose its connection, so the indexes
//! are created through a second connection to the same database: the file
//! of a project's data folder, or a named shared-cache in-memory database
//! (what [`memory_uri`] names) for in-memory stacks.

use std::path::Path;

/// The two indexes, on exactly the expressions the engine's queries use.
const CREATE_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS _woocom_stream_seq_by_table
        ON _stream_records (table_name, CAST(sequence_number AS INTEGER));
    CREATE INDEX IF NOT EXISTS _woocom_stream_seq_by_shard
        ON _stream_records (table_name, shard_id, CAST(sequence_number AS INTEGER));
";

/// A private in-memory database that a second connection in this process
/// can open by name (SQLite URI filename, shared cache); it lives while the
/// engine's connection is open.
pub fn memory_uri() -> String {
    format!(
        "file:woocom-{}?mode=memory&cache=shared",
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates the indexes in the database at `path` (a file path or a
/// [`memory_uri`]) that the engine has opened, so its tables exist.
pub fn add(path: &Path) -> Result<(), rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(CREATE_INDEXES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        let rows = stmt
            .query_map(
                rusqlite::params!["events", "shard", 5i64, 10i64][..sql.matches('?').count()]
                    .as_ref(),
                |r| r.get::<_, String>(3),
            )
            .expect("plan");
        rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn the_engines_stream_queries_use_the_indexes() {
        let uri = memory_uri();
        let db = dynoxide::Database::new(&uri).expect("engine on a shared memory database");
        add(Path::new(&uri)).expect("indexes");
        let conn = rusqlite::Connection::open(&uri).expect("second connection");
        // The engine's own statements (dynoxide-rs 3.2.0, storage.rs).
        let next = "SELECT COALESCE(MAX(CAST(sequence_number AS INTEGER)), 0) + 1 FROM _stream_records WHERE table_name = ?1";
        let range = "SELECT event_name FROM _stream_records WHERE table_name = ?1 AND shard_id = ?2 AND CAST(sequence_number AS INTEGER) > ?3 ORDER BY CAST(sequence_number AS INTEGER) ASC LIMIT ?4";
        assert!(
            plan(&conn, next).contains("_woocom_stream_seq_by_table"),
            "{}",
            plan(&conn, next)
        );
        let range_plan = plan(&conn, range);
        assert!(
            range_plan.contains("_woocom_stream_seq_by_shard")
                && !range_plan.contains("TEMP B-TREE"),
            "{range_plan}"
        );
        drop(conn);
        // The engine still works on its database.
        assert!(db.list_tables(Default::default()).is_ok());
    }
}

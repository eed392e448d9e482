//! The SQLite day partitions of earlier versions, read once to migrate them
//! ([`super::migrate`]); tests and the benchmarks' old-store path create them with
//! [`open_writer`] ([`super::legacy`]).

use super::EventStoreError;
use rusqlite::{Connection, OpenFlags, ffi};
use std::path::Path;
use std::time::Duration;

/// Schema version kept in `PRAGMA user_version`; 0 means "being created".
/// Version 2 added the field indexes (`FIELD_INDEXES`), version 3 the event-log
/// offset the partition holds (`LOG_META`).
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    class_uid INTEGER NOT NULL,
    severity_id INTEGER NOT NULL,
    disposition_id INTEGER,
    src_ip TEXT,
    dst_ip TEXT,
    user TEXT,
    message TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_tenant_time ON events(tenant, time);
CREATE INDEX IF NOT EXISTS events_tenant_class_time ON events(tenant, class_uid, time);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(text, content='', contentless_delete=1, tokenize='trigram');
";

/// Indexes of the fields kept in columns (addresses and users), partial so events
/// without them cost nothing. Time is the second key, so a search for an address over
/// a range reads only matching rows.
const FIELD_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS events_src_ip_time ON events(src_ip, time) WHERE src_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_dst_ip_time ON events(dst_ip, time) WHERE dst_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user_time ON events(user, time) WHERE user IS NOT NULL;
";

/// The last event-log offset whose event the partition holds (events indexed from
/// the log; a replay after a restart skips those at or before it).
const LOG_META: &str = "
CREATE TABLE IF NOT EXISTS log_meta (id INTEGER PRIMARY KEY CHECK (id = 1), log_offset INTEGER NOT NULL);
";

/// Reads the partition's last event-log offset.
pub(crate) const LOG_OFFSET: &str = "SELECT log_offset FROM log_meta WHERE id = 1";
/// Sets it.
#[cfg(test)]
pub(crate) const SET_LOG_OFFSET: &str = "INSERT INTO log_meta (id, log_offset) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET log_offset = excluded.log_offset";

/// Inserts one event row (the FTS row follows with rowid = seq).
pub(crate) const INSERT_EVENT: &str = "INSERT INTO events (id, time, tenant, class_uid, severity_id, disposition_id, src_ip, dst_ip, user, message, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// Inserts the full-text row of an event.
pub(crate) const INSERT_FTS: &str = "INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating when needed) a partition for the writer thread: WAL,
/// `synchronous=FULL`, schema created in one transaction that ends by setting
/// `user_version`, so readers skip a partition until it is complete.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, EventStoreError> {
    let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(EventStoreError::Corrupt(format!("{}: journal mode {mode} instead of wal", path.display())));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;")?;
    conn.set_prepared_statement_cache_capacity(32);
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if (0..SCHEMA_VERSION).contains(&version) {
        // New partition, or an older one: what it lacks is added (every statement is
        // IF NOT EXISTS).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(FIELD_INDEXES)?;
        tx.execute_batch(LOG_META)?;
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        tx.commit()?;
    } else if version != SCHEMA_VERSION {
        return Err(EventStoreError::Corrupt(format!("{}: unknown schema version {version}", path.display())));
    }
    Ok(conn)
}

/// Opens a partition for reading, or returns None when it does not exist (any more)
/// or is still being created.
pub(crate) fn open_reader(path: &Path) -> Result<Option<Connection>, EventStoreError> {
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX) {
        Ok(c) => c,
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ffi::ErrorCode::CannotOpen => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        return Ok(None);
    }
    // Version 1 partitions (not yet reopened by the writer) are read without the field
    // indexes: slower for field filters, same answers.
    if !(1..=SCHEMA_VERSION).contains(&version) {
        return Err(EventStoreError::Corrupt(format!("{}: unknown schema version {version}", path.display())));
    }
    Ok(Some(conn))
}

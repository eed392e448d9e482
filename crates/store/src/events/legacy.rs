//! The write path of the SQLite event store of earlier versions (one database per day,
//! FTS5 trigram index, B-tree indexes on tenant, class, time, addresses and user,
//! `synchronous=FULL`), kept so benchmarks can run it beside the block store on the
//! same events in the same run; and so tests can make partitions to migrate.

use super::EventStoreError;
use super::day::{day_name, day_of};
use super::schema::{INSERT_EVENT, INSERT_FTS, open_writer};
use mamori_core::Event;
use rusqlite::{Connection, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A folder of SQLite day partitions, written as the old store wrote them.
pub struct SqliteStore {
    dir: PathBuf,
    conns: BTreeMap<i64, Connection>,
}

impl SqliteStore {
    /// Opens (creating) the folder.
    pub fn open(dir: &Path) -> Result<SqliteStore, EventStoreError> {
        std::fs::create_dir_all(dir)?;
        Ok(SqliteStore { dir: dir.to_path_buf(), conns: BTreeMap::new() })
    }

    /// Appends events: per day one transaction with the rows and their full-text rows,
    /// committed (durable) before it returns.
    pub fn append(&mut self, events: &[Event]) -> Result<u64, EventStoreError> {
        let mut by_day: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
        for e in events {
            by_day.entry(day_of(e.time)).or_default().push(e);
        }
        for (day, evs) in by_day {
            if !self.conns.contains_key(&day) {
                let conn = open_writer(&self.dir.join(format!("{}.sqlite", day_name(day))))?;
                self.conns.insert(day, conn);
            }
            let Some(conn) = self.conns.get_mut(&day) else { continue };
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut ins = tx.prepare_cached(INSERT_EVENT)?;
                let mut fts = tx.prepare_cached(INSERT_FTS)?;
                for e in evs {
                    let doc = serde_json::to_string(&e.to_ocsf()).map_err(|e| EventStoreError::Write(e.to_string()))?;
                    ins.execute(params![
                        e.id.to_string(),
                        e.time,
                        e.tenant.to_string(),
                        i64::from(e.class.0),
                        i64::from(e.severity.0),
                        e.disposition.map(|d| i64::from(d.0)),
                        e.src.as_ref().and_then(|s| s.ip.clone()),
                        e.dst.as_ref().and_then(|s| s.ip.clone()),
                        e.user,
                        e.message,
                        doc
                    ])?;
                    fts.execute(params![tx.last_insert_rowid(), e.search_text()])?;
                }
            }
            tx.commit()?;
        }
        Ok(events.len() as u64)
    }

    /// Bytes of the partitions (databases and write-ahead logs).
    pub fn bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir).map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
    }
}

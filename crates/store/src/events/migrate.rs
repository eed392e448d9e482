//! Migration of the SQLite day partitions of earlier versions
//! (`DIR/YYYY-MM-DD.sqlite`): when the store opens, each one is read in order, its
//! events written as blocks into the day's new partition with the event-log offset it
//! held, and the old files deleted. A migration cut short by a crash starts that day
//! again from the old file (the new partition of a day whose old file is still there
//! holds only the interrupted migration's rows).

use super::EventStoreError;
use super::day::{day_name, list_partitions};
use super::part::Catalog;
use super::schema::{LOG_OFFSET, open_reader};
use super::writer::{self, Writer};
use mamori_core::Event;
use rusqlite::OptionalExtension;
use std::path::{Path, PathBuf};

/// Rows read and written at a time.
const CHUNK: i64 = 20_000;

/// Migrates every SQLite partition in `dir`; returns the events moved.
pub(crate) fn migrate(dir: &Path, catalog: &Catalog, w: &mut Writer) -> Result<u64, EventStoreError> {
    let mut moved = 0u64;
    for (day, path) in list_partitions(dir)? {
        catalog.remove(day)?;
        let mut n = 0u64;
        if let Some(conn) = open_reader(&path)? {
            // Version 1 and 2 partitions have no log offset.
            let floor: i64 = conn.query_row(LOG_OFFSET, [], |r| r.get(0)).optional().unwrap_or(None).unwrap_or(-1);
            let mut last = 0i64;
            loop {
                let mut stmt = conn.prepare_cached("SELECT seq, id, doc FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
                let mut g = writer::Grouper::new();
                let mut rs = stmt.query(rusqlite::params![last, CHUNK])?;
                while let Some(r) = rs.next()? {
                    let (seq, id, doc): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    last = seq;
                    let value: serde_json::Value = serde_json::from_str(&doc).map_err(|e| corrupt(day, seq, e))?;
                    // Readable as an event, or the migration stops here (the old file stays).
                    Event::from_ocsf(&value, None, |_| true).map_err(|e| corrupt(day, seq, e))?;
                    if !g.add(doc, None, Some(writer::MIGRATED_SEQ_BASE + seq.max(0))) {
                        return Err(corrupt(day, seq, format!("event {id} lacks time, tenant or class")));
                    }
                }
                if g.rows() == 0 {
                    break;
                }
                n += g.rows() as u64;
                let groups = g.finish();
                let refs: Vec<&writer::Group> = groups.iter().collect();
                w.write_day(day, &refs, None)?;
            }
            if floor >= 0 {
                w.write_day(day, &[], Some(floor))?;
            }
        }
        remove_sqlite(&path)?;
        tracing::info!(day = %day_name(day), events = n, "event store: SQLite partition migrated to blocks");
        moved += n;
    }
    Ok(moved)
}

fn corrupt(day: i64, seq: i64, why: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt(format!("SQLite partition {} row {seq}: {why}", day_name(day)))
}

/// Deletes a SQLite partition file and its WAL and shared-memory files.
fn remove_sqlite(path: &Path) -> Result<(), EventStoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::schema::{SET_LOG_OFFSET, open_writer};
    use super::super::{EventQuery, EventStore, Logged};
    use crate::access::Scope;
    use mamori_core::{Event, EventClass, TenantId};
    use rusqlite::params;

    const DAY: i64 = 86_400_000;
    /// 2025-11-20T00:00:00Z.
    const BASE: i64 = 1_763_596_800_000;

    fn old_partition(dir: &std::path::Path, events: &[Event], log_offset: i64) {
        let mut old = super::super::legacy::SqliteStore::open(dir).unwrap();
        assert_eq!(old.append(events).unwrap(), events.len() as u64);
        drop(old);
        let conn = open_writer(&dir.join("2025-11-20.sqlite")).unwrap();
        conn.execute(SET_LOG_OFFSET, params![log_offset]).unwrap();
    }

    #[tokio::test]
    async fn sqlite_partitions_are_migrated_in_place_and_a_replay_skips_what_they_held() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new();
        let events: Vec<Event> =
            (0..2500).map(|i| Event::new(t, BASE + i * 1000, EventClass::HTTP_ACTIVITY, format!("県庁への不正アクセス {i}"), "test")).collect();
        old_partition(dir.path(), &events, 41);
        let store = EventStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("2025-11-20.sqlite").exists(), "the old file is gone");
        let scope = Scope::of_tenants_for_tests(&[t]);
        let q = EventQuery { limit: 1000, text: Some("アクセス 249".into()), ..EventQuery::between(BASE, BASE + DAY) };
        let page = store.query(&scope, &q).await.unwrap();
        let mut got: Vec<String> = page.events.iter().map(|e| e.event.message.clone()).collect();
        got.sort();
        let mut want: Vec<String> = events.iter().filter(|e| e.message.contains("アクセス") && e.message.contains("249")).map(|e| e.message.clone()).collect();
        want.sort();
        assert_eq!(got, want);
        let sample = &events[1234];
        assert_eq!(store.get(&scope, sample.id).await.unwrap().unwrap().event, *sample);
        // The log's events up to offset 41 were in the old partition: a replay skips
        // them and stores what follows.
        let again = |offset: u64, msg: &str| {
            let e = Event::new(t, BASE + 5000 * 1000 + offset as i64, EventClass::HTTP_ACTIVITY, msg, "test");
            Logged { offset, doc: e.to_ocsf().to_string() }
        };
        store.index(vec![again(40, "replayed"), again(41, "replayed"), again(42, "new")]).await.unwrap();
        let all = store.query(&scope, &EventQuery { limit: 1000, ..EventQuery::between(BASE + 4000 * 1000, BASE + DAY) }).await.unwrap();
        assert_eq!(all.events.iter().map(|e| e.event.message.as_str()).collect::<Vec<_>>(), ["new"]);
        drop(store);
        // Opening again migrates nothing and keeps everything.
        let store = EventStore::open(dir.path()).unwrap();
        let n = store.count_by_tenant(&scope, BASE, BASE + DAY, None).await.unwrap()[&t];
        assert_eq!(n, 2501);
    }
}

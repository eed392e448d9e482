//! The single writer thread: group commit of appends and retention purges.

use super::day::{DAY_MS, END_TIME_MS, MIN_TIME_MS, day_of, day_start, list_partitions, partition_path};
use super::schema::{INSERT_EVENT, INSERT_FTS, LOG_OFFSET, SET_LOG_OFFSET, open_writer};
use super::{EventStoreError, PurgeReport};
use mamori_core::{Event, Problem, Problems, TenantId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use tokio::sync::oneshot;

// The limits `Event::from_ocsf` applies when the store reads an event back (the
// constants of mamori-core are not exported); an event beyond them is refused at
// append, so every stored row can be read.
/// Problems reported for one refused batch, at most.
const MAX_PROBLEMS: usize = 20;
/// Rows written in one group commit, at most (more wait for the next one).
const MAX_GROUP_ROWS: usize = 50_000;
/// Partition connections the writer keeps open.
const CACHED_PARTITIONS: usize = 8;

/// An event ready to be written.
pub(crate) struct Row {
    day: i64,
    time: i64,
    id: String,
    tenant: String,
    class_uid: i64,
    severity_id: i64,
    disposition_id: Option<i64>,
    src_ip: Option<String>,
    dst_ip: Option<String>,
    user: Option<String>,
    message: String,
    doc: String,
    text: String,
    /// Its offset in the event log (events indexed from there).
    offset: Option<i64>,
}

/// Where the writer sends a result.
pub(crate) enum Reply<T> {
    /// An `async` caller.
    Async(oneshot::Sender<Result<T, EventStoreError>>),
    /// A blocking caller.
    Blocking(SyncSender<Result<T, EventStoreError>>),
}

impl<T> Reply<T> {
    fn send(self, result: Result<T, EventStoreError>) {
        // A caller that went away no longer wants the answer; the work is done anyway.
        match self {
            Reply::Async(s) => {
                let _ = s.send(result);
            }
            Reply::Blocking(s) => {
                let _ = s.send(result);
            }
        }
    }
}

/// What the writer thread is asked to do.
pub(crate) enum Command {
    /// Appends rows.
    Append { rows: Vec<Row>, reply: Reply<u64> },
    /// Applies retention.
    Purge { now_ms: i64, default_days: u32, per_tenant: HashMap<TenantId, u32>, reply: Reply<PurgeReport> },
}

/// Checks a batch and serializes each event's OCSF document; refuses the whole batch
/// when any event is out of bounds (time outside 2000–2200, id time differing from the
/// event time, or beyond the limits the store needs to read it back).
pub(crate) fn check(events: &[Event]) -> Result<Vec<String>, EventStoreError> {
    let mut problems = Problems::default();
    let mut docs = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if problems.0.len() >= MAX_PROBLEMS {
            break;
        }
        let at = format!("events[{i}].");
        if !(MIN_TIME_MS..END_TIME_MS).contains(&e.time) {
            problems.push(
                Problem::new(
                    "time",
                    "time_out_of_range",
                    "イベントの時刻が範囲外です（2000年〜2200年のみ記録できます）",
                    "event time must be within the years 2000-2200",
                )
                .within(&at),
            );
        } else if e.id.time_ms() != e.time {
            problems.push(
                Problem::new(
                    "metadata.uid",
                    "id_time_mismatch",
                    "イベントIDに埋め込まれた時刻がイベントの時刻と一致しません",
                    "the time embedded in the event id differs from the event time",
                )
                .within(&at),
            );
        }
        match e.checked_ocsf() {
            Ok(ocsf) if problems.is_empty() => docs.push(serde_json::to_string(&ocsf).unwrap_or_default()),
            Ok(_) => {}
            Err(ps) => ps.0.into_iter().for_each(|p| problems.push(p.within(&at))),
        }
    }
    if problems.is_empty() { Ok(docs) } else { Err(EventStoreError::Rejected(problems)) }
}

/// Checks and serializes a batch ([`check`]) into rows.
pub(crate) fn prepare(events: Vec<Event>) -> Result<Vec<Row>, EventStoreError> {
    let docs = check(&events)?;
    Ok(events.into_iter().zip(docs).map(|(e, doc)| row(e, doc, None)).collect())
}

/// The row of an event whose document is `doc`; `offset` is its place in the event
/// log when it comes from there.
pub(crate) fn row(e: Event, doc: String, offset: Option<u64>) -> Row {
    let text = e.search_text();
    Row {
        day: day_of(e.time),
        time: e.time,
        id: e.id.to_string(),
        tenant: e.tenant.to_string(),
        class_uid: i64::from(e.class.0),
        severity_id: i64::from(e.severity.0),
        disposition_id: e.disposition.map(|d| i64::from(d.0)),
        src_ip: e.src.and_then(|s| s.ip),
        dst_ip: e.dst.and_then(|d| d.ip),
        user: e.user,
        message: e.message,
        doc,
        text,
        offset: offset.and_then(|o| i64::try_from(o).ok()),
    }
}

/// Returns a copy of an error for another waiter of the same failed commit.
fn copy_error(e: &EventStoreError) -> EventStoreError {
    match e {
        EventStoreError::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => EventStoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone())),
        EventStoreError::Io(io) => EventStoreError::Io(std::io::Error::new(io.kind(), io.to_string())),
        EventStoreError::Closed => EventStoreError::Closed,
        other => EventStoreError::Write(other.to_string()),
    }
}

/// The writer's state: the store's folder and the partitions it keeps open.
struct Writer {
    dir: PathBuf,
    /// Open partitions, least recently used first, each with the last event-log
    /// offset it holds (-1: none).
    conns: Vec<(i64, Connection, i64)>,
}

/// Runs the writer loop until every sender is gone.
pub(crate) fn run(dir: PathBuf, rx: Receiver<Command>) {
    let mut w = Writer { dir, conns: Vec::new() };
    let mut pending: Vec<(Vec<Row>, Reply<u64>)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut rows = 0usize;
        // Group commit: take everything already queued.
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append { rows: r, reply } => {
                    rows += r.len();
                    pending.push((r, reply));
                }
                Command::Purge { now_ms, default_days, per_tenant, reply } => {
                    w.flush(&mut pending);
                    rows = 0;
                    reply.send(w.purge(now_ms, default_days, &per_tenant));
                }
            }
            if rows >= MAX_GROUP_ROWS {
                w.flush(&mut pending);
                rows = 0;
            }
            next = rx.try_recv().ok();
        }
        w.flush(&mut pending);
    }
    tracing::debug!("event store writer stopped");
}

impl Writer {
    /// Returns the cached connection of a day, opening (and creating) it when needed.
    fn conn(&mut self, day: i64) -> Result<(&mut Connection, &mut i64), EventStoreError> {
        if let Some(pos) = self.conns.iter().position(|(d, _, _)| *d == day) {
            let entry = self.conns.remove(pos);
            self.conns.push(entry);
        } else {
            let conn = open_writer(&partition_path(&self.dir, day))?;
            let offset: i64 = conn.query_row(LOG_OFFSET, [], |r| r.get(0)).optional()?.unwrap_or(-1);
            if self.conns.len() >= CACHED_PARTITIONS {
                self.conns.remove(0);
            }
            self.conns.push((day, conn, offset));
        }
        match self.conns.last_mut() {
            Some((_, c, o)) => Ok((c, o)),
            None => Err(EventStoreError::Write("no partition connection".into())),
        }
    }

    /// Closes the cached connection of a day, if any.
    fn forget(&mut self, day: i64) {
        self.conns.retain(|(d, _, _)| *d != day);
    }

    /// Writes every pending batch (one transaction per day) and answers the callers.
    fn flush(&mut self, pending: &mut Vec<(Vec<Row>, Reply<u64>)>) {
        if pending.is_empty() {
            return;
        }
        let batches = std::mem::take(pending);
        let mut by_day: BTreeMap<i64, Vec<(usize, usize)>> = BTreeMap::new();
        for (b, (rows, _)) in batches.iter().enumerate() {
            for (r, row) in rows.iter().enumerate() {
                by_day.entry(row.day).or_default().push((b, r));
            }
        }
        let mut failed: Vec<Option<EventStoreError>> = batches.iter().map(|_| None).collect();
        for (day, refs) in &by_day {
            if let Err(e) = self.write_day(*day, &batches, refs) {
                tracing::error!(day = %super::day::day_name(*day), error = %e, "event store: commit failed");
                for (b, _) in refs {
                    if let Some(slot) = failed.get_mut(*b)
                        && slot.is_none()
                    {
                        *slot = Some(copy_error(&e));
                    }
                }
                // A broken connection is reopened next time.
                self.forget(*day);
            }
        }
        for ((rows, reply), fail) in batches.into_iter().zip(failed) {
            reply.send(match fail {
                Some(e) => Err(e),
                None => Ok(rows.len() as u64),
            });
        }
    }

    /// Writes the given rows of one day in one transaction.
    ///
    /// Rows from the event log at or before the last offset the partition holds are
    /// already in it (indexed before a restart) and are skipped, so replaying the log
    /// never stores an event twice; the partition's last offset is written in the same
    /// transaction as its rows.
    fn write_day(&mut self, day: i64, batches: &[(Vec<Row>, Reply<u64>)], refs: &[(usize, usize)]) -> Result<(), EventStoreError> {
        let (conn, held) = self.conn(day)?;
        let mut last = *held;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut ins = tx.prepare_cached(INSERT_EVENT)?;
            let mut fts = tx.prepare_cached(INSERT_FTS)?;
            for (b, r) in refs {
                let Some(row) = batches.get(*b).and_then(|(rows, _)| rows.get(*r)) else { continue };
                if let Some(o) = row.offset {
                    if o <= last {
                        continue;
                    }
                    last = o;
                }
                ins.execute(params![
                    row.id,
                    row.time,
                    row.tenant,
                    row.class_uid,
                    row.severity_id,
                    row.disposition_id,
                    row.src_ip,
                    row.dst_ip,
                    row.user,
                    row.message,
                    row.doc
                ])?;
                let seq = tx.last_insert_rowid();
                fts.execute(params![seq, row.text])?;
            }
            if last != *held {
                tx.prepare_cached(SET_LOG_OFFSET)?.execute(params![last])?;
            }
        }
        tx.commit()?;
        *held = last;
        Ok(())
    }

    /// Applies retention: drops partitions older than the longest retention and
    /// deletes the rows of shorter-retention tenants from the others.
    fn purge(&mut self, now_ms: i64, default_days: u32, per_tenant: &HashMap<TenantId, u32>) -> Result<PurgeReport, EventStoreError> {
        let cutoff = |days: u32| now_ms.saturating_sub(i64::from(days) * DAY_MS);
        let longest = per_tenant.values().copied().fold(default_days, u32::max);
        let drop_before = cutoff(longest);
        let mut report = PurgeReport::default();
        for (day, path) in list_partitions(&self.dir)? {
            let start = day_start(day);
            if start.saturating_add(DAY_MS) <= drop_before {
                self.forget(day);
                remove_partition(&path)?;
                report.partitions_dropped += 1;
                tracing::info!(day = %super::day::day_name(day), "event store: partition dropped by retention");
                continue;
            }
            let default_cutoff = cutoff(default_days);
            let tenant_cutoffs: Vec<(String, i64)> = per_tenant.iter().map(|(t, d)| (t.to_string(), cutoff(*d))).filter(|(_, c)| *c > start).collect();
            if default_cutoff <= start && tenant_cutoffs.is_empty() {
                continue;
            }
            let explicit: Vec<String> = per_tenant.keys().map(|t| t.to_string()).collect();
            let explicit = serde_json::to_string(&explicit).map_err(|e| EventStoreError::Write(e.to_string()))?;
            let deleted = match self.conns.iter_mut().find(|(d, _, _)| *d == day) {
                Some((_, conn, _)) => purge_day(conn, start, default_cutoff, &explicit, &tenant_cutoffs)?,
                None => purge_day(&mut open_writer(&path)?, start, default_cutoff, &explicit, &tenant_cutoffs)?,
            };
            report.events_deleted += deleted;
        }
        Ok(report)
    }
}

/// Deletes the expired rows (and their full-text rows) of one partition.
fn purge_day(conn: &mut Connection, start: i64, default_cutoff: i64, explicit_json: &str, tenant_cutoffs: &[(String, i64)]) -> Result<u64, EventStoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut deleted = 0u64;
    for (tenant, cutoff) in tenant_cutoffs {
        tx.execute("DELETE FROM events_fts WHERE rowid IN (SELECT seq FROM events WHERE tenant = ?1 AND time < ?2)", params![tenant, cutoff])?;
        deleted += tx.execute("DELETE FROM events WHERE tenant = ?1 AND time < ?2", params![tenant, cutoff])? as u64;
    }
    if default_cutoff > start {
        let others = "tenant NOT IN (SELECT value FROM json_each(?1)) AND time < ?2";
        tx.execute(&format!("DELETE FROM events_fts WHERE rowid IN (SELECT seq FROM events WHERE {others})"), params![explicit_json, default_cutoff])?;
        deleted += tx.execute(&format!("DELETE FROM events WHERE {others}"), params![explicit_json, default_cutoff])? as u64;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Deletes a partition file and its WAL and shared-memory files.
fn remove_partition(path: &Path) -> Result<(), EventStoreError> {
    std::fs::remove_file(path)?;
    for suffix in ["-wal", "-shm"] {
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
    use super::*;
    use mamori_core::{EventClass, EventId};

    #[test]
    fn prepare_refuses_the_whole_batch_for_one_bad_event() {
        let t = TenantId::new();
        let good = Event::new(t, 1_763_800_000_000, EventClass::HTTP_ACTIVITY, "ok", "test");
        let old = Event::new(t, 946_684_799_999, EventClass::HTTP_ACTIVITY, "1999", "test");
        let future = Event::new(t, END_TIME_MS, EventClass::HTTP_ACTIVITY, "2201", "test");
        let mut moved = good.clone();
        moved.time += 1;
        let mut huge = good.clone();
        huge.message = "あ".repeat(5000);
        let Err(EventStoreError::Rejected(p)) = prepare(vec![good.clone(), old, future, moved, huge]) else { panic!("not rejected") };
        let got: Vec<(&str, &str)> = p.0.iter().map(|p| (p.field.as_str(), p.code)).collect();
        assert_eq!(
            got,
            [
                ("events[1].time", "time_out_of_range"),
                ("events[2].time", "time_out_of_range"),
                ("events[3].metadata.uid", "id_time_mismatch"),
                ("events[4].message", "too_long")
            ]
        );
        assert!(p.0.iter().all(|p| !p.ja.is_empty() && !p.en.is_empty()));
        let mut ok = good.clone();
        ok.id = EventId::at(ok.time);
        assert_eq!(prepare(vec![good, ok]).map(|r| r.len()).ok(), Some(2));
    }
}

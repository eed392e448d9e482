//! The single writer thread: group commit of appends and retention purges.
//!
//! Each flush takes every batch already queued, splits its rows by day, tenant and
//! class, lays them out as blocks ([`super::block`]) of at most 1,024 rows and writes
//! each day's blocks with one append and two syncs ([`super::part::Files::append`]).
//! Rows from the event log at or before the offset a tenant and class of the day
//! already hold are skipped, so a replay after a crash stores nothing twice.

use super::block::{self, FastHash, HashSet64, MAX_ROWS, NO_DISPOSITION};
use super::day::{DAY_MS, END_TIME_MS, MIN_TIME_MS, day_name, day_of, day_start};
use super::part::{BlockMeta, Catalog, Entry, Files, Partition, crc};
use super::{EventStoreError, PurgeReport};
use mamori_core::{Event, Problem, Problems, TenantId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use tokio::sync::oneshot;

/// Problems reported for one refused batch, at most.
const MAX_PROBLEMS: usize = 20;
/// Rows written in one group commit, at most (more wait for the next one).
const MAX_GROUP_ROWS: usize = 50_000;
/// Partitions whose files the writer keeps open.
const CACHED_PARTITIONS: usize = 8;
/// Sequence numbers of rows that did not come from the event log start here (rows
/// from the log have their offset + 1, rows migrated from the SQLite store 2^61 +
/// their old number), so the three never meet.
const APPEND_SEQ_BASE: i64 = 1 << 62;
/// Where migrated rows' sequence numbers start.
pub(crate) const MIGRATED_SEQ_BASE: i64 = 1 << 61;

/// A log offset as the directory keeps it (offsets beyond i64 never occur).
fn log_offset(o: u64) -> i64 {
    i64::try_from(o).unwrap_or(i64::MAX)
}

/// Events of one day, tenant and class (at most [`MAX_ROWS`]) ready to be written,
/// with the bloom hashes of all of them.
pub(crate) struct Group {
    day: i64,
    tenant: TenantId,
    class: u32,
    rows: Vec<block::Row>,
    set: HashSet64,
}

/// The rows of one tenant and class in a flush, and the hash sets of their groups.
type KeyRows<'a> = (Vec<&'a block::Row>, Vec<&'a HashSet64>);

/// Sorts documents into [`Group`]s, reading each one once ([`block::scan_doc`]).
pub(crate) struct Grouper {
    groups: Vec<Group>,
    open: HashMap<(i64, TenantId, u32), usize, FastHash>,
    scratch: Vec<u64>,
    rows: usize,
}

impl Grouper {
    pub(crate) fn new() -> Grouper {
        Grouper { groups: Vec::new(), open: HashMap::with_hasher(FastHash), scratch: Vec::with_capacity(4096), rows: 0 }
    }

    /// Adds a document; `offset` is its place in the event log when it comes from
    /// there, `seq` a sequence number of its own (migrated rows). Returns false when
    /// the document is not JSON or lacks a valid time, tenant or class.
    pub(crate) fn add(&mut self, doc: String, offset: Option<u64>, seq: Option<i64>) -> bool {
        self.scratch.clear();
        let Some(c) = block::scan_doc(&doc, &mut self.scratch) else { return false };
        let Some(time) = c.time.filter(|t| (MIN_TIME_MS..END_TIME_MS).contains(t)) else { return false };
        let Some(tenant) = c.tenant.as_deref().and_then(|t| t.parse::<TenantId>().ok()) else { return false };
        let Some(class) = c.class.and_then(|c| u32::try_from(c).ok()) else { return false };
        let key = (day_of(time), tenant, class);
        let idx = match self.open.get(&key) {
            Some(i) if self.groups.get(*i).is_some_and(|g| g.rows.len() < MAX_ROWS) => *i,
            _ => {
                self.groups.push(Group { day: key.0, tenant, class, rows: Vec::new(), set: HashSet64::with_capacity(2048) });
                self.open.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let Some(g) = self.groups.get_mut(idx) else { return false };
        for h in &self.scratch {
            g.set.insert(*h);
        }
        let small = |v: Option<u64>| v.and_then(|v| u8::try_from(v).ok());
        g.rows.push(block::Row {
            time,
            seq: seq.or_else(|| offset.map(|o| log_offset(o).saturating_add(1))).unwrap_or(0),
            severity: small(c.severity).unwrap_or(0),
            disposition: small(c.disposition).unwrap_or(NO_DISPOSITION),
            src_ip: c.src_ip,
            dst_ip: c.dst_ip,
            user: c.user,
            doc,
            log: offset,
        });
        self.rows += 1;
        true
    }

    /// Returns the rows added.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Returns the groups of the day of each.
    pub(crate) fn finish(self) -> Vec<Group> {
        self.groups
    }
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
    /// Appends rows (`rows` of them in the groups).
    Append { groups: Vec<Group>, rows: u64, reply: Reply<u64> },
    /// Applies retention.
    Purge { now_ms: i64, rules: super::RetentionRules, reply: Reply<PurgeReport> },
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
        match e.checked_ocsf_text() {
            Ok((_, text)) if problems.is_empty() => docs.push(text),
            Ok(_) => {}
            Err(ps) => ps.0.into_iter().for_each(|p| problems.push(p.within(&at))),
        }
    }
    if problems.is_empty() { Ok(docs) } else { Err(EventStoreError::Rejected(problems)) }
}

/// Checks and serializes a batch ([`check`]) into groups; returns them and the
/// number of events.
pub(crate) fn prepare(events: Vec<Event>) -> Result<(Vec<Group>, u64), EventStoreError> {
    let docs = check(&events)?;
    let mut g = Grouper::new();
    for doc in docs {
        g.add(doc, None, None);
    }
    let n = g.rows() as u64;
    Ok((g.finish(), n))
}

/// Returns a copy of an error for another waiter of the same failed commit.
fn copy_error(e: &EventStoreError) -> EventStoreError {
    match e {
        EventStoreError::Io(io) => EventStoreError::Io(std::io::Error::new(io.kind(), io.to_string())),
        EventStoreError::Closed => EventStoreError::Closed,
        other => EventStoreError::Write(other.to_string()),
    }
}

/// The writer's state: the partitions and the files it keeps open.
pub(crate) struct Writer {
    catalog: Arc<Catalog>,
    /// Open partitions, least recently used first.
    files: Vec<(i64, Files)>,
    /// The next sequence number of a row that did not come from the log.
    next_seq: i64,
}

/// Runs the writer loop until every sender is gone.
pub(crate) fn run(mut w: Writer, rx: Receiver<Command>) {
    let mut pending: Vec<(Vec<Group>, u64, Reply<u64>)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut rows = 0usize;
        // Group commit: take everything already queued.
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append { groups, rows: n, reply } => {
                    rows += n as usize;
                    pending.push((groups, n, reply));
                }
                Command::Purge { now_ms, rules, reply } => {
                    w.flush(&mut pending);
                    rows = 0;
                    reply.send(w.purge(now_ms, &rules));
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
    pub(crate) fn new(catalog: Arc<Catalog>) -> Writer {
        // Microseconds since the epoch, times 1,024: a restart never reuses a number
        // unless a run wrote more than a thousand rows a microsecond.
        let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
        Writer { catalog, files: Vec::new(), next_seq: APPEND_SEQ_BASE + (micros << 10) % APPEND_SEQ_BASE }
    }

    /// Returns the open files of a partition, opening them (and cutting back what its
    /// directory does not name) when needed.
    fn files(&mut self, part: &Partition) -> Result<&mut Files, EventStoreError> {
        if let Some(pos) = self.files.iter().position(|(d, _)| *d == part.day) {
            let entry = self.files.remove(pos);
            self.files.push(entry);
        } else {
            let files = Files::open(part)?;
            if self.files.len() >= CACHED_PARTITIONS {
                self.files.remove(0);
            }
            self.files.push((part.day, files));
        }
        match self.files.last_mut() {
            Some((_, f)) => Ok(f),
            None => Err(EventStoreError::Write("no partition files".into())),
        }
    }

    /// Closes the files of a day, if open.
    fn forget(&mut self, day: i64) {
        self.files.retain(|(d, _)| *d != day);
    }

    /// Writes every pending batch (one append per day) and answers the callers.
    fn flush(&mut self, pending: &mut Vec<(Vec<Group>, u64, Reply<u64>)>) {
        if pending.is_empty() {
            return;
        }
        let mut batches = std::mem::take(pending);
        for (groups, _, _) in &mut batches {
            for r in groups.iter_mut().flat_map(|g| g.rows.iter_mut()).filter(|r| r.seq == 0) {
                r.seq = self.next_seq;
                self.next_seq += 1;
            }
        }
        let mut by_day: BTreeMap<i64, Vec<(usize, usize)>> = BTreeMap::new();
        for (b, (groups, _, _)) in batches.iter().enumerate() {
            for (i, g) in groups.iter().enumerate() {
                by_day.entry(g.day).or_default().push((b, i));
            }
        }
        let mut failed: Vec<Option<EventStoreError>> = batches.iter().map(|_| None).collect();
        for (day, refs) in &by_day {
            let groups: Vec<&Group> = refs.iter().filter_map(|(b, i)| batches.get(*b).and_then(|(g, _, _)| g.get(*i))).collect();
            if let Err(e) = self.write_day(*day, &groups, None) {
                tracing::error!(day = %day_name(*day), error = %e, "event store: commit failed");
                for (b, _) in refs {
                    if let Some(slot) = failed.get_mut(*b)
                        && slot.is_none()
                    {
                        *slot = Some(copy_error(&e));
                    }
                }
                // Broken files are reopened (and cut back) next time.
                self.forget(*day);
            }
        }
        for ((_, n, reply), fail) in batches.into_iter().zip(failed) {
            reply.send(match fail {
                Some(e) => Err(e),
                None => Ok(n),
            });
        }
    }

    /// Writes groups of one day as blocks, one per tenant and class (more past
    /// [`MAX_ROWS`]), in one append. Rows from the log at or before the offset their
    /// tenant and class already hold are skipped. `floor` also records that the
    /// partition holds every log event up to that offset (migration).
    pub(crate) fn write_day(&mut self, day: i64, groups: &[&Group], floor: Option<i64>) -> Result<(), EventStoreError> {
        let part = self.catalog.create(day)?;
        let mut keys: Vec<(TenantId, u32)> = Vec::new();
        let mut merged: HashMap<(TenantId, u32), KeyRows<'_>, FastHash> = HashMap::with_hasher(FastHash);
        let at = {
            let st = part.read_state()?;
            for g in groups {
                let key = (g.tenant, g.class);
                let held = st.held(g.tenant, g.class);
                let entry = merged.entry(key).or_insert_with(|| {
                    keys.push(key);
                    (Vec::new(), Vec::new())
                });
                entry.0.extend(g.rows.iter().filter(|r| r.log.is_none_or(|o| log_offset(o) > held)));
                entry.1.push(&g.set);
            }
            st.data_len
        };
        let mut data = Vec::new();
        let mut entries = Vec::new();
        for key in keys {
            let Some((rows, sets)) = merged.get(&key) else { continue };
            if rows.is_empty() {
                continue;
            }
            // Blocks from several groups of a key get the union of their hashes (a
            // superset for each: more false positives, never a miss).
            let union;
            let set = match sets.as_slice() {
                [one] => *one,
                many => {
                    let mut u = HashSet64::with_capacity(many.iter().map(|s| s.len()).max().unwrap_or(0));
                    many.iter().for_each(|s| u.merge(s));
                    union = u;
                    &union
                }
            };
            for chunk in rows.chunks(MAX_ROWS) {
                let (bytes, head_len, cols_end) = block::encode(chunk, set)?;
                let meta = BlockMeta {
                    class: key.1,
                    rows: chunk.len() as u32,
                    min_time: chunk.iter().map(|r| r.time).min().unwrap_or(0),
                    max_time: chunk.iter().map(|r| r.time).max().unwrap_or(0),
                    max_log: chunk.iter().filter_map(|r| r.log).map(log_offset).max().unwrap_or(-1),
                    max_severity: chunk.iter().map(|r| r.severity).max().unwrap_or(0),
                    pos: at + data.len() as u64,
                    len: bytes.len() as u32,
                    head_len: head_len as u32,
                    cols_end: cols_end as u32,
                    cols_crc: crc(bytes.get(..cols_end).unwrap_or(&[])),
                    docs_crc: crc(bytes.get(cols_end..).unwrap_or(&[])),
                };
                data.extend_from_slice(&bytes);
                entries.push(Entry::Block(key.0, meta));
            }
        }
        if let Some(f) = floor {
            entries.push(Entry::Floor(f));
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.files(&part)?.append(&part, at, &data, &entries)
    }

    /// Applies retention: drops partitions older than the longest retention (unless a
    /// legal hold reaches into them) and marks the rows past their class's retention
    /// as gone in the others (a directory entry per tenant and class; the blocks they
    /// fill alone are no longer read, the others are filtered). A mark never passes
    /// the start of a hold of its tenant, and never the end of its day (so a day gone
    /// whole is marked once, not again at every purge).
    fn purge(&mut self, now_ms: i64, rules: &super::RetentionRules) -> Result<PurgeReport, EventStoreError> {
        let cutoff = |days: u32| now_ms.saturating_sub(i64::from(days) * DAY_MS);
        let drop_before = cutoff(rules.longest());
        let mut report = PurgeReport::default();
        for day in self.catalog.days()? {
            let start = day_start(day);
            let end = start.saturating_add(DAY_MS);
            let held = |t: Option<TenantId>| rules.holds.iter().filter(move |h| t.is_none_or(|t| h.tenant == t) && h.from_ms < end && h.to_ms > start);
            if end <= drop_before && held(None).next().is_none() {
                self.forget(day);
                self.catalog.remove(day)?;
                report.partitions_dropped += 1;
                tracing::info!(day = %day_name(day), "event store: partition dropped by retention");
                continue;
            }
            let Some(part) = self.catalog.get(day)? else { continue };
            let tenants: Vec<(TenantId, super::part::TenantPart)> = {
                let st = part.read_state()?;
                st.tenants.iter().map(|(t, tp)| (*t, tp.clone())).collect()
            };
            let mut entries = Vec::new();
            for (t, tp) in tenants {
                let hold_from = held(Some(t)).map(|h| h.from_ms).min().unwrap_or(i64::MAX);
                let classes: std::collections::BTreeSet<u32> = tp.blocks.iter().map(|b| b.class).collect();
                for class in classes {
                    let hidden = tp.hidden_for(class);
                    let until = cutoff(rules.days_for(t, class)).min(end).min(hold_from);
                    if until <= start || until <= hidden {
                        continue;
                    }
                    for m in tp.blocks.iter().filter(|m| m.class == class && m.min_time < until) {
                        report.events_deleted += super::search::count_rows(&part, m, hidden, until)?;
                    }
                    entries.push(Entry::HideClass(t, class, until));
                }
            }
            if !entries.is_empty() {
                let at = part.read_state()?.data_len;
                self.files(&part)?.append(&part, at, &[], &entries)?;
            }
        }
        Ok(report)
    }
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
        assert_eq!(prepare(vec![good, ok]).map(|(_, n)| n).ok(), Some(2));
    }
}

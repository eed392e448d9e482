//! Embedded event store: blocks in day partitions, with bloom filters for full text
//! and attributes.
//!
//! # Design
//! - A day partition (`DIR/YYYY-MM-DD/`, [`part`]) holds append-only blocks
//!   ([`block`]) of up to 1,024 events of one tenant and one class: columns for the
//!   filters (time, sequence, severity, disposition, addresses, user), the OCSF
//!   documents compressed with zstd in frames of 128, and a bloom filter of the
//!   trigrams of the events' search text and of every `path=value` leaf of their
//!   documents. Searching one tenant reads only that tenant's blocks; a Japanese
//!   substring of 3 characters or more, or any attribute, skips every block whose
//!   bloom lacks it. Once [`EventStore::append`] (or [`EventStore::index`]) returns,
//!   the events are synced. Retention drops whole partitions, or marks a tenant's
//!   older rows gone in a partition it keeps for others (one directory entry).
//! - Writes go through ONE writer thread fed by a channel. It takes every batch
//!   already queued (group commit), lays out each day's blocks, writes them with one
//!   append and syncs, then answers every waiter. Retention ([`EventStore::purge`])
//!   runs on the same thread, so it never races an append. A batch that spans several
//!   days is committed one day at a time: when a commit fails, the batch reports the
//!   error although its other days may be stored.
//! - Reads run in `spawn_blocking` on the partitions' shared directories ([`search`]),
//!   newest partition first, and stop as soon as the page is full. Paging is by key:
//!   the cursor `time.seq.day` names the last row returned, so pages neither repeat
//!   nor skip rows while appends go on.
//! - Search text is split on white space; every word must occur in the event's text
//!   (message, addresses, user, attribute strings, raw data), ASCII case folded.
//!   Field paths are checked against `^[a-z][a-z0-9_]*(\.[a-z0-9_]+){0,7}$`.
//! - Tenant isolation: every read takes a [`Scope`]; a tenant scope reads only its
//!   tenants' blocks, a scope that reaches nothing reads nothing.
//! - SQLite partitions of earlier versions are migrated when the store opens
//!   ([`migrate`]).
//!
//! Only one [`EventStore`] may be open on a folder at a time.

mod block;
mod day;
pub mod legacy;
mod migrate;
pub mod mix;
mod part;
mod query;
mod schema;
pub mod seal;
mod search;
mod writer;

pub use query::{EventPage, EventQuery, FieldFilter, Histogram, MAX_BUCKETS, MAX_FIELD_FILTERS, MAX_LIMIT, MAX_RANGE_DAYS, MAX_TEXT_CHARS, StoredEvent};

use crate::access::Scope;
use mamori_core::{Event, EventId, Problem, Problems, Severity, TenantId};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel, sync_channel};
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use writer::{Command, Reply};

/// An error of the event store.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// SQLite failed (reading a partition of an earlier version).
    #[error("event store database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("event store i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The query is invalid; the problems say why, in Japanese and English.
    #[error("invalid event query: {0}")]
    BadQuery(Problems),
    /// The batch was refused before anything was written.
    #[error("events refused: {0}")]
    Rejected(Problems),
    /// The writer thread has stopped.
    #[error("event store writer has stopped")]
    Closed,
    /// A write failed for a reason other than SQLite or I/O (every batch of a failed
    /// group commit gets a copy of the cause).
    #[error("event store write failed: {0}")]
    Write(String),
    /// A partition holds something the store cannot read.
    #[error("event store data is corrupt: {0}")]
    Corrupt(String),
    /// A background task failed.
    #[error("event store task failed: {0}")]
    Task(String),
}

/// An event read back from the event log ([`EventStore::index`]).
#[derive(Clone, Debug)]
pub struct Logged {
    /// Its offset in the log.
    pub offset: u64,
    /// Its OCSF document as written in the log.
    pub doc: String,
}

/// How long events are kept ([`EventStore::purge`]): days per tenant, days per event
/// class over them, and legal holds that nothing purges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionRules {
    /// Days for a tenant with no rule of its own.
    pub default_days: u32,
    /// Days per class (`class_uid`) for a tenant with no rule of its own; other
    /// classes keep `default_days`.
    pub default_classes: HashMap<u32, u32>,
    /// Rules of tenants.
    pub tenants: HashMap<TenantId, TenantRetention>,
    /// Events under legal hold (linked to a case): never purged while held.
    pub holds: Vec<Hold>,
}

/// One tenant's retention.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantRetention {
    /// Days for its events.
    pub days: u32,
    /// Days per class (`class_uid`), shorter or longer than `days`.
    pub classes: HashMap<u32, u32>,
}

/// A legal hold: a tenant's events in a time range (Unix ms, `from` included, `to`
/// excluded) that retention keeps until the hold is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The tenant.
    pub tenant: TenantId,
    /// From (included).
    pub from_ms: i64,
    /// To (excluded).
    pub to_ms: i64,
}

impl RetentionRules {
    /// Rules of days per tenant only (no class rules, no holds).
    pub fn days(default_days: u32, per_tenant: HashMap<TenantId, u32>) -> Self {
        RetentionRules {
            default_days,
            tenants: per_tenant.into_iter().map(|(t, days)| (t, TenantRetention { days, classes: HashMap::new() })).collect(),
            ..Default::default()
        }
    }

    /// Days a tenant's events of a class are kept.
    pub fn days_for(&self, tenant: TenantId, class: u32) -> u32 {
        match self.tenants.get(&tenant) {
            Some(t) => t.classes.get(&class).copied().unwrap_or(t.days),
            None => self.default_classes.get(&class).copied().unwrap_or(self.default_days),
        }
    }

    /// The longest retention of any tenant and class.
    pub fn longest(&self) -> u32 {
        self.all_days().max().unwrap_or(self.default_days)
    }

    /// Every number of days the rules name.
    fn all_days(&self) -> impl Iterator<Item = u32> + '_ {
        let tenants = self.tenants.values().flat_map(|t| std::iter::once(t.days).chain(t.classes.values().copied()));
        std::iter::once(self.default_days).chain(self.default_classes.values().copied()).chain(tenants)
    }
}

/// What [`EventStore::purge`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Whole day partitions deleted.
    pub partitions_dropped: u64,
    /// Events deleted from the partitions kept.
    pub events_deleted: u64,
}

/// One day partition on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Size of its blocks and directory, in bytes.
    pub bytes: u64,
}

/// Handle on the event store; cheap to clone. The writer thread stops (after writing
/// what is queued) when the last handle is dropped.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    catalog: Arc<part::Catalog>,
    tx: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once the queue is written.
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("event store writer panicked");
        }
    }
}

impl fmt::Debug for EventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStore").field("dir", &self.inner.dir).finish()
    }
}

impl EventStore {
    /// Returns the store kept in `dir` (created when missing), with its writer thread
    /// started.
    pub fn open(dir: &Path) -> Result<EventStore, EventStoreError> {
        std::fs::create_dir_all(dir)?;
        let catalog = Arc::new(part::Catalog::new(dir));
        // Fails early on an unreadable folder.
        catalog.days()?;
        let mut writer = writer::Writer::new(catalog.clone());
        let moved = migrate::migrate(dir, &catalog, &mut writer)?;
        if moved > 0 {
            tracing::info!(events = moved, "event store: SQLite partitions migrated");
        }
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new().name("mamori-event-writer".into()).spawn(move || writer::run(writer, rx))?;
        Ok(EventStore { inner: Arc::new(Inner { dir: dir.to_path_buf(), catalog, tx: Some(tx), thread: Some(thread) }) })
    }

    /// Returns the store kept in `dir` for reading only, without a writer: what a
    /// command running beside a serving node may do (appends and purges give
    /// [`EventStoreError::Closed`]; what the node writes after a day's directory was
    /// loaded is not seen). Migrates nothing.
    pub fn open_read_only(dir: &Path) -> Result<EventStore, EventStoreError> {
        let catalog = Arc::new(part::Catalog::new(dir));
        catalog.days()?;
        Ok(EventStore { inner: Arc::new(Inner { dir: dir.to_path_buf(), catalog, tx: None, thread: None }) })
    }

    /// Returns the folder of the store.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn send(&self, cmd: Command) -> Result<(), EventStoreError> {
        match &self.inner.tx {
            Some(tx) => tx.send(cmd).map_err(|_| EventStoreError::Closed),
            None => Err(EventStoreError::Closed),
        }
    }

    /// Appends events and returns how many were written, once they are committed to
    /// disk. The whole batch is refused ([`EventStoreError::Rejected`]) when an event
    /// is out of bounds (time outside the years 2000–2200, an id whose embedded time
    /// is not the event time, sizes `Event::from_ocsf` would refuse). Events are
    /// serialized on the calling task, so batches of about a thousand suit best.
    /// Dropping the future after it started does not cancel the write.
    pub async fn append(&self, events: Vec<Event>) -> Result<u64, EventStoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let (groups, rows) = writer::prepare(events)?;
        self.write(groups, rows).await
    }

    /// Hands groups of rows to the writer thread and waits until they are committed.
    async fn write(&self, groups: Vec<writer::Group>, rows: u64) -> Result<u64, EventStoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Append { groups, rows, reply: Reply::Async(tx) })?;
        rx.await.map_err(|_| EventStoreError::Closed)?
    }

    /// Returns what [`EventStore::append`] returns, blocking the calling thread (for
    /// the command line and benchmarks; usable inside or outside a runtime, but it
    /// blocks the thread it runs on).
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<u64, EventStoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let (groups, rows) = writer::prepare(events)?;
        let (tx, rx) = sync_channel(1);
        self.send(Command::Append { groups, rows, reply: Reply::Blocking(tx) })?;
        rx.recv().map_err(|_| EventStoreError::Closed)?
    }

    /// Checks `events` as [`EventStore::append`] does and returns each one's OCSF
    /// document, for the event log: what passes here is indexed from there without
    /// another check.
    pub fn check(events: &[Event]) -> Result<Vec<String>, EventStoreError> {
        writer::check(events)
    }

    /// Stores events read back from the event log, once they are committed, and
    /// returns how many were events (a document without a valid time, tenant or class
    /// is left out and said in the log). An event at or before the last offset its
    /// tenant and class hold in its day partition is already there (indexed before a
    /// restart) and is skipped, so a replay stores nothing twice. Offsets must ascend
    /// within a call and from call to call.
    pub async fn index(&self, logged: Vec<Logged>) -> Result<u64, EventStoreError> {
        if logged.is_empty() {
            return Ok(0);
        }
        let (groups, rows) = Self::blocking(move || {
            let n = logged.len();
            let mut g = writer::Grouper::new();
            for l in logged {
                g.add(l.doc, Some(l.offset), None);
            }
            if g.rows() < n {
                // Checked when published, so only a document from elsewhere (or a newer
                // version) lacks time, tenant or class.
                tracing::error!(skipped = n - g.rows(), "event store: logged documents without time, tenant or class were not indexed");
            }
            let rows = g.rows() as u64;
            Ok((g.finish(), rows))
        })
        .await?;
        self.write(groups, rows).await
    }

    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, EventStoreError> + Send + 'static) -> Result<T, EventStoreError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| EventStoreError::Task(e.to_string()))?
    }

    /// Returns one page of the events matching `q` within `scope`, newest first
    /// (time, then arrival order). An invalid query gives [`EventStoreError::BadQuery`].
    pub async fn query(&self, scope: &Scope, q: &EventQuery) -> Result<EventPage, EventStoreError> {
        let cursor = query::validate(q, true)?;
        let Some(plan) = search::plan(scope, q) else { return Ok(EventPage { events: Vec::new(), next_cursor: None }) };
        let (catalog, q) = (self.inner.catalog.clone(), q.clone());
        Self::blocking(move || search::run_query(&catalog, &plan, &q, cursor)).await
    }

    /// Returns the event with this id, or None when it does not exist or is outside
    /// `scope`.
    pub async fn get(&self, scope: &Scope, id: EventId) -> Result<Option<StoredEvent>, EventStoreError> {
        let (catalog, scope) = (self.inner.catalog.clone(), scope.clone());
        Self::blocking(move || search::run_get(&catalog, &scope, id)).await
    }

    /// Returns the counts of the events matching `q` (its cursor and limit ignored)
    /// over `buckets` (1..=200) equal slices of its time range.
    pub async fn histogram(&self, scope: &Scope, q: &EventQuery, buckets: usize) -> Result<Histogram, EventStoreError> {
        query::validate(q, false)?;
        query::validate_buckets(buckets)?;
        let plan = search::plan(scope, q);
        let (catalog, q) = (self.inner.catalog.clone(), q.clone());
        Self::blocking(move || search::run_histogram(&catalog, plan.as_ref(), &q, buckets)).await
    }

    /// Returns the number of events of each tenant within `scope` in
    /// `from_ms..to_ms`, counting only those at least `min_severity` when given.
    pub async fn count_by_tenant(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
        min_severity: Option<Severity>,
    ) -> Result<HashMap<TenantId, u64>, EventStoreError> {
        query::validate_range(from_ms, to_ms)?;
        let (catalog, scope) = (self.inner.catalog.clone(), scope.clone());
        Self::blocking(move || search::run_counts(&catalog, &scope, from_ms, to_ms, min_severity)).await
    }

    /// Applies retention as of `now_ms`: a tenant's events of a class older than its
    /// days ([`RetentionRules::days_for`]) are deleted, except those under a legal
    /// hold, and a day partition older than the longest retention and under no hold
    /// is deleted whole. Runs on the writer thread after the appends queued before it.
    /// Retention days must be at least 1. Deletes every tenant's events, so it takes
    /// the platform's cross-tenant grant.
    pub async fn purge(&self, _grant: &crate::CrossTenant, now_ms: i64, rules: RetentionRules) -> Result<PurgeReport, EventStoreError> {
        if rules.all_days().any(|d| d == 0) {
            return Err(EventStoreError::BadQuery(
                Problem::new("retention_days", "invalid_retention", "保存期間は1日以上で指定してください", "retention must be at least 1 day").into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Purge { now_ms, rules, reply: Reply::Async(tx) })?;
        rx.await.map_err(|_| EventStoreError::Closed)?
    }

    /// Seals the day partitions that ended at least `after_ms` before `now_ms` and
    /// grew since their last seal ([`seal`]); returns the seals made, for the audit
    /// log. Reads files off the writer thread: intake goes on meanwhile.
    pub async fn seal(&self, _grant: &crate::CrossTenant, now_ms: i64, after_ms: i64) -> Result<Vec<seal::SealRecord>, EventStoreError> {
        let catalog = self.inner.catalog.clone();
        Self::blocking(move || seal::seal_closed(&catalog, now_ms, after_ms)).await
    }

    /// Returns the number of damaged blocks queries have skipped since the store
    /// opened (each is said in the log).
    pub fn damaged_blocks(&self) -> u64 {
        self.inner.catalog.damaged()
    }

    /// Returns the day partitions on disk, oldest first, with their sizes.
    pub fn partitions(&self) -> Result<Vec<PartitionInfo>, EventStoreError> {
        let mut out = Vec::new();
        for d in self.inner.catalog.days()? {
            out.push(PartitionInfo { day: day::day_name(d), bytes: self.inner.catalog.bytes(d) });
        }
        Ok(out)
    }
}

/// Reads a partition directory and a block as a damaged disk may hold them, for the
/// fuzz target `event_blocks`: returns the entries and rows read; never panics.
#[doc(hidden)]
pub fn fuzz_partition_bytes(index: &[u8], block_bytes: &[u8]) -> (usize, usize) {
    let (entries, _) = part::read_index(index, u64::MAX);
    (entries.len(), block::read_any(block_bytes))
}

//! The event bus of Mamori.
//!
//! - [`Bus::publish`] checks events, writes them to the event log and returns once they
//!   are durable there: that is the acknowledgement, and an acknowledged event survives
//!   a crash. It then fans them out to live subscribers. The log is local ([`log`]:
//!   segments on this node's disk, the default) or NATS JetStream ([`jetstream`]: for
//!   split nodes, where intake nodes publish and indexing nodes consume).
//! - The indexer, a task of the bus, reads the log by offset and stores the events in
//!   the searchable event store, asynchronously; after a restart it goes on from its
//!   checkpoint, and a replay stores nothing twice. [`Bus::searchable`] waits until
//!   what was published is searchable. When the indexer falls behind by more than
//!   [`BusOptions::max_lag`] events, publishers wait (back-pressure, not memory).
//! - Consumers that must see every event read the log by their own cursor
//!   ([`Bus::reader`]) and never miss one. Live subscribers ([`Bus::subscribe`]) are
//!   best effort: one that falls behind loses live copies, and the loss is counted.
//!
//! Components publish through the runtime (`mamori-runtime`), which counts their typed
//! events before they reach the bus.
#![deny(missing_docs)]

pub mod bench;
pub mod cursor;
pub mod jetstream;
pub mod log;
pub mod testing;

use jetstream::{JetStream, JetStreamOptions};
use log::{Log, LogError, LogOptions, LogReader};
use mamori_core::Event;
use mamori_store::events::{EventStore, EventStoreError, Logged};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Errors of publishing.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The event store refused or failed; nothing was acknowledged.
    #[error("event store: {0}")]
    Store(#[from] EventStoreError),
    /// The event log failed; nothing was acknowledged.
    #[error("{0}")]
    Log(#[from] LogError),
    /// JetStream failed or is unreachable; what it did not acknowledge was not
    /// acknowledged (a retry is safe: JetStream drops duplicates by event id).
    #[error("{0}")]
    Transport(String),
    /// A durable cursor could not be used.
    #[error("cursor: {0}")]
    Cursor(String),
}

/// Counters of the bus, for `/metrics`.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Events acknowledged (in the log).
    pub published: AtomicU64,
    /// Live copies dropped because a subscriber fell behind.
    pub lagged: AtomicU64,
    /// Log records the indexer could not read back as events (counted, skipped).
    pub unreadable: AtomicU64,
}

/// How the bus runs.
#[derive(Clone, Debug)]
pub struct BusOptions {
    /// Events each live subscriber may fall behind before it loses copies.
    pub live_capacity: usize,
    /// Events the indexer may fall behind before publishers wait.
    pub max_lag: u64,
    /// The event log.
    pub log: LogOptions,
    /// How long fully indexed log segments are kept for readers by cursor.
    pub log_keep: Duration,
    /// How long segments are kept at most for a durable cursor that is behind (a
    /// forwarder whose receiver is down): past that the oldest go, and the cursor's
    /// reader counts what it lost.
    pub reader_keep: Duration,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            live_capacity: 4096,
            max_lag: 2_000_000,
            log: LogOptions::default(),
            log_keep: Duration::from_secs(86_400),
            reader_keep: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The state of the pipeline, for `/metrics` and the console (with JetStream, summed
/// over the partitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// The offset after the last acknowledged event.
    pub log_end: u64,
    /// The offset up to which events are searchable.
    pub indexed: u64,
    /// Damaged log records skipped.
    pub damaged: u64,
    /// Bytes of the log on disk.
    pub log_bytes: u64,
}

/// Where the log is.
#[derive(Clone)]
enum Transport {
    Local(Log),
    JetStream(JetStream),
}

/// The event bus.
#[derive(Clone)]
pub struct Bus {
    events: EventStore,
    transport: Transport,
    live: broadcast::Sender<Arc<Event>>,
    stats: Arc<BusStats>,
    /// Per partition (one for the local log): the offset after the last acknowledged
    /// event, and the offset up to which events are stored by its indexer.
    ends: Vec<watch::Receiver<u64>>,
    indexed: Vec<watch::Receiver<u64>>,
    /// The partition readers by cursor read.
    own: u32,
    max_lag: u64,
    /// Dropped with the last clone: the indexer then stops.
    _stop: Arc<watch::Sender<()>>,
}

/// The indexer's checkpoint file in the log folder: the offset up to which every
/// event is stored (a hint: a replay from before it stores nothing twice).
const CHECKPOINT: &str = "indexed";
/// Records the indexer takes at once.
const INDEX_BATCH: usize = 20_000;
/// The indexer stores at most this often unless a whole batch is waiting, so a
/// trickle of events does not become a trickle of one-event blocks (the event store
/// writes one block per tenant and class of each call). Also the longest an
/// acknowledged event waits to be searchable when the indexer keeps up.
const INDEX_INTERVAL: Duration = Duration::from_millis(250);

fn read_checkpoint(path: &Path) -> u64 {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn write_checkpoint(path: &Path, offset: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, offset.to_string())?;
    std::fs::rename(tmp, path)
}

impl Bus {
    /// Returns a bus writing into `events`, with its log in `events`' folder under
    /// `log/`, and starts the indexer (from its checkpoint). Must be called inside a
    /// Tokio runtime.
    pub fn open(events: EventStore, options: BusOptions) -> Result<Self, BusError> {
        let dir = events.dir().join("log");
        let log = Log::open(&dir, options.log.clone())?;
        let checkpoint = dir.join(CHECKPOINT);
        let start = read_checkpoint(&checkpoint).min(log.end());
        let (indexed_tx, indexed) = watch::channel(start);
        let (stop, stop_rx) = watch::channel(());
        let stats = Arc::new(BusStats::default());
        let indexer = Indexer {
            source: Source::Local { log: log.clone(), reader: Some(log.reader(start)), end: log.watch_end() },
            progress: Progress::Local(indexed_tx),
            events: events.clone(),
            checkpoint,
            stats: stats.clone(),
            cleanup: Some(Cleanup { log: log.clone(), keep: options.log_keep, reader_keep: options.reader_keep.max(options.log_keep) }),
        };
        tokio::spawn(indexer.run(stop_rx));
        Ok(Self::assemble(events, Transport::Local(log.clone()), &options, stats, vec![log.watch_end()], vec![indexed], 0, stop))
    }

    /// Returns a bus whose log is NATS JetStream: it connects, makes the streams when
    /// missing, and starts the indexer of the partition this node indexes (if any,
    /// `index_partition`), from its checkpoint in `events`' folder.
    pub async fn connect(events: EventStore, options: BusOptions, js: JetStreamOptions) -> Result<Self, BusError> {
        let js = JetStream::connect(js).await?;
        let (stop, stop_rx) = watch::channel(());
        let stats = Arc::new(BusStats::default());
        let own = js.options().index_partition.unwrap_or(0);
        if let Some(k) = js.options().index_partition {
            let dir = events.dir().join("log");
            std::fs::create_dir_all(&dir).map_err(LogError::Io)?;
            let checkpoint = dir.join(format!("{CHECKPOINT}-{}_{k}", js.options().stream));
            let end = js.end(k);
            let start = read_checkpoint(&checkpoint);
            if start > end {
                // The stream was made again (its sequence starts anew): its events would
                // be taken for ones already stored.
                return Err(BusError::Transport(format!(
                    "JetStream stream {}_{k} ends at {end} but this node has indexed it up to {start}: the stream was deleted and made again. Give the new stream another name ([events.jetstream] stream) or this node a fresh event store / ストリームが作り直されています。別の名前にするか、このノードのイベントストアを新しくしてください",
                    js.options().stream
                )));
            }
            let indexer = Indexer {
                source: Source::JetStream(Box::new(js.reader(k, start))),
                progress: Progress::JetStream(js.clone(), k),
                events: events.clone(),
                checkpoint,
                stats: stats.clone(),
                cleanup: None,
            };
            js.report(k, start).await;
            tokio::spawn(indexer.run(stop_rx));
        }
        let (ends, indexed) = (js.ends(), js.indexed());
        Ok(Self::assemble(events, Transport::JetStream(js), &options, stats, ends, indexed, own, stop))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        events: EventStore,
        transport: Transport,
        options: &BusOptions,
        stats: Arc<BusStats>,
        ends: Vec<watch::Receiver<u64>>,
        indexed: Vec<watch::Receiver<u64>>,
        own: u32,
        stop: watch::Sender<()>,
    ) -> Self {
        let (live, _) = broadcast::channel(options.live_capacity.max(16));
        Self { events, transport, live, stats, ends, indexed, own, max_lag: options.max_lag, _stop: Arc::new(stop) }
    }

    /// Returns a bus as [`Bus::open`] does, keeping `live_capacity` events per live
    /// subscriber.
    pub fn new(events: EventStore, live_capacity: usize) -> Result<Self, BusError> {
        Self::open(events, BusOptions { live_capacity, ..Default::default() })
    }

    /// Checks `events` and writes them to the log; returns how many once they are
    /// durable there (acknowledged), then sends them to live subscribers. A batch with
    /// one bad event is refused whole. Waits while the indexer is too far behind.
    pub async fn publish(&self, events: Vec<Event>) -> Result<u64, BusError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut events = events;
        let now = mamori_core::time::now_ms();
        for e in &mut events {
            e.received = Some(now);
        }
        let docs = EventStore::check(&events)?;
        self.wait_for_indexer().await;
        let n = docs.len() as u64;
        match &self.transport {
            Transport::Local(log) => {
                log.append(docs.into_iter().map(String::into_bytes).collect()).await?;
            }
            Transport::JetStream(js) => js.append(&events, docs).await?,
        }
        self.stats.published.fetch_add(n, Ordering::Relaxed);
        if self.live.receiver_count() > 0 {
            for e in events {
                // An error only means nobody is listening right now.
                let _ = self.live.send(Arc::new(e));
            }
        }
        Ok(n)
    }

    async fn wait_for_indexer(&self) {
        for (end, indexed) in self.ends.iter().zip(&self.indexed) {
            let mut indexed = indexed.clone();
            while end.borrow().saturating_sub(*indexed.borrow()) > self.max_lag {
                if indexed.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Waits until every event acknowledged before the call is searchable (with
    /// JetStream: by the indexers of every partition, wherever they run).
    pub async fn searchable(&self) {
        let targets: Vec<u64> = match &self.transport {
            Transport::Local(log) => vec![log.end()],
            Transport::JetStream(js) => match js.fresh_ends().await {
                Ok(t) => t,
                Err(_) => self.ends.iter().map(|e| *e.borrow()).collect(),
            },
        };
        for (target, indexed) in targets.into_iter().zip(&self.indexed) {
            let mut indexed = indexed.clone();
            while *indexed.borrow() < target {
                if indexed.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Returns a reader of every acknowledged event from `offset` on (0: the oldest
    /// kept; [`Bus::end`]: only new ones). With JetStream, of the partition this node
    /// indexes.
    pub fn reader(&self, offset: u64) -> EventReader {
        let source = match &self.transport {
            Transport::Local(log) => Source::Local { log: log.clone(), reader: Some(log.reader(offset)), end: log.watch_end() },
            Transport::JetStream(js) => Source::JetStream(Box::new(js.reader(self.own, offset))),
        };
        EventReader { source, stats: self.stats.clone() }
    }

    /// Opens the durable cursor `name` of the log readers read ([`Bus::reader`]),
    /// making it at `start` when it is new ([`cursor::Cursor::created`]). See
    /// [`cursor`].
    pub fn cursor(&self, name: &str, start: u64) -> Result<cursor::Cursor, BusError> {
        cursor::Cursor::open(&self.cursor_dir(), name, &self.cursor_file(name), start, self.end())
    }

    /// Every durable cursor of the log readers read: (name, offset).
    pub fn cursors(&self) -> Vec<(String, u64)> {
        cursor::list(&self.cursor_dir(), &self.cursor_suffix())
    }

    /// Removes a durable cursor (its consumer is gone for good), so the log no longer
    /// keeps segments for it.
    pub fn remove_cursor(&self, name: &str) -> Result<(), BusError> {
        cursor::check_name(name)?;
        match std::fs::remove_file(self.cursor_dir().join(self.cursor_file(name))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::Io(e).into()),
            _ => Ok(()),
        }
    }

    fn cursor_dir(&self) -> PathBuf {
        self.events.dir().join("log").join(cursor::DIR)
    }

    fn cursor_file(&self, name: &str) -> String {
        format!("{name}{}", self.cursor_suffix())
    }

    /// The local log's cursors are named alone; JetStream's by stream and partition.
    fn cursor_suffix(&self) -> String {
        match &self.transport {
            Transport::Local(_) => String::new(),
            Transport::JetStream(js) => format!("@{}_{}", js.options().stream, self.own),
        }
    }

    /// Whether this node has a log that readers by cursor read: the local log, or the
    /// JetStream partition it indexes (an intake-only node has none: its readers
    /// would read a partition that another node reads).
    pub fn reads_log(&self) -> bool {
        match &self.transport {
            Transport::Local(_) => true,
            Transport::JetStream(js) => js.options().index_partition.is_some(),
        }
    }

    /// The offset after the last acknowledged event (of the partition readers read).
    pub fn end(&self) -> u64 {
        self.ends.get(self.own as usize).map(|e| *e.borrow()).unwrap_or(0)
    }

    /// Returns a live subscription to events published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { rx: self.live.subscribe(), stats: self.stats.clone() }
    }

    /// Returns the event store.
    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// Returns the counters.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }

    /// Returns where the pipeline stands.
    pub fn pipeline(&self) -> Pipeline {
        let (damaged, log_bytes) = match &self.transport {
            Transport::Local(log) => (log.stats().damaged.load(Ordering::Relaxed), log.bytes()),
            Transport::JetStream(js) => (0, js.bytes()),
        };
        Pipeline { log_end: self.ends.iter().map(|e| *e.borrow()).sum(), indexed: self.indexed.iter().map(|i| *i.borrow()).sum(), damaged, log_bytes }
    }
}

/// Sets a watched offset, telling watchers only when it changed.
fn set(tx: &watch::Sender<u64>, to: u64) {
    tx.send_if_modified(|v| {
        let moved = *v != to;
        *v = to;
        moved
    });
}

/// Decodes a log record into the event it holds (with its own id, `metadata.uid`).
fn decode(payload: Vec<u8>) -> Option<(Event, String)> {
    let doc = String::from_utf8(payload).ok()?;
    let value: serde_json::Value = serde_json::from_str(&doc).ok()?;
    let mut event = Event::from_ocsf(&value, None, |_| true).ok()?;
    event.id = value.get("metadata")?.get("uid")?.as_str()?.parse().ok()?;
    Some((event, doc))
}

/// Where a reader of the log reads: records by offset.
enum Source {
    Local { log: Log, reader: Option<LogReader>, end: watch::Receiver<u64> },
    JetStream(Box<jetstream::Reader>),
}

impl Source {
    fn position(&self) -> u64 {
        match self {
            Source::Local { reader, .. } => reader.as_ref().map(LogReader::position).unwrap_or(0),
            Source::JetStream(reader) => reader.position(),
        }
    }

    fn end(&self) -> u64 {
        match self {
            Source::Local { end, .. } => *end.borrow(),
            Source::JetStream(reader) => reader.end(),
        }
    }

    fn seek(&mut self, offset: u64) {
        match self {
            Source::Local { log, reader, .. } => *reader = Some(log.reader(offset)),
            Source::JetStream(reader) => reader.seek(offset),
        }
    }

    /// Returns up to `max` records from the position on, waiting up to `wait` when
    /// there are none yet. `LogError::Closed` when the log is gone.
    async fn read(&mut self, max: usize, wait: Duration) -> Result<Vec<(u64, Vec<u8>)>, BusError> {
        match self {
            Source::Local { reader, end, .. } => {
                end.borrow_and_update();
                let r = reader.take().ok_or(LogError::Closed)?;
                let (r, got) = tokio::task::spawn_blocking(move || {
                    let mut r = r;
                    let got = r.read(max.max(1));
                    (r, got)
                })
                .await
                .map_err(|_| LogError::Closed)?;
                *reader = Some(r);
                let got = got?;
                if got.is_empty()
                    && let Ok(Err(_)) = tokio::time::timeout(wait, end.changed()).await
                {
                    return Err(LogError::Closed.into());
                }
                Ok(got)
            }
            Source::JetStream(reader) => reader.read(max.max(1), wait).await,
        }
    }
}

/// Where the indexer says how far it is.
enum Progress {
    Local(watch::Sender<u64>),
    JetStream(JetStream, u32),
}

/// What the indexer removes from the local log, and when.
struct Cleanup {
    log: Log,
    /// Indexed segments read by every cursor are kept this long.
    keep: Duration,
    /// Indexed segments are kept at most this long for cursors behind.
    reader_keep: Duration,
}

/// Reads the log into the event store.
struct Indexer {
    source: Source,
    progress: Progress,
    events: EventStore,
    checkpoint: PathBuf,
    stats: Arc<BusStats>,
    /// The local log, and how long indexed segments are kept.
    cleanup: Option<Cleanup>,
}

impl Progress {
    async fn report(&self, offset: u64) {
        match self {
            Progress::Local(tx) => set(tx, offset),
            Progress::JetStream(js, k) => js.report(*k, offset).await,
        }
    }
}

impl Indexer {
    async fn run(mut self, mut stop: watch::Receiver<()>) {
        let mut last_cleanup = std::time::Instant::now();
        let mut last_index: Option<std::time::Instant> = None;
        let mut reported = self.source.position();
        loop {
            if let Some(at) = last_index
                && at.elapsed() < INDEX_INTERVAL
                && self.source.end().saturating_sub(self.source.position()) < INDEX_BATCH as u64
            {
                tokio::select! {
                    _ = tokio::time::sleep(INDEX_INTERVAL.saturating_sub(at.elapsed())) => {}
                    _ = stop.changed() => return,
                }
            }
            let first = self.source.position();
            let batch = tokio::select! {
                b = self.source.read(INDEX_BATCH, Duration::from_millis(500)) => b,
                _ = stop.changed() => return,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(BusError::Log(LogError::Closed)) => return,
                Err(e) => {
                    tracing::error!(error = %e, "event indexer: cannot read the log; retrying");
                    self.source.seek(first);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            };
            let position = self.source.position();
            if batch.is_empty() {
                // Caught up: the reader's position is the end (or beyond damage).
                if position != reported {
                    self.progress.report(position).await;
                    reported = position;
                }
                continue;
            }
            let stats = self.stats.clone();
            let logged = tokio::task::spawn_blocking(move || {
                batch
                    .into_iter()
                    .filter_map(|(offset, payload)| match String::from_utf8(payload).ok() {
                        Some(doc) => Some(Logged { offset, doc }),
                        None => {
                            stats.unreadable.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(offset, "event indexer: a log record is not an event; skipped");
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let logged = match logged {
                Ok(l) => l,
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    tracing::error!(error = %e, "event indexer: decoding failed; retrying");
                    self.source.seek(first);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let handed = logged.len() as u64;
            match self.events.index(logged).await {
                // Records the store could not read as events (it says which in its log).
                Ok(taken) => {
                    self.stats.unreadable.fetch_add(handed.saturating_sub(taken), Ordering::Relaxed);
                }
                Err(e) => {
                    // A store that cannot write now: the same records are read again, so
                    // nothing acknowledged is skipped.
                    tracing::error!(error = %e, "event indexer: cannot store events; retrying");
                    self.source.seek(first);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
            last_index = Some(std::time::Instant::now());
            if let Err(e) = write_checkpoint(&self.checkpoint, position) {
                tracing::warn!(error = %e, "event indexer: cannot write its checkpoint (a restart replays more)");
            }
            self.progress.report(position).await;
            reported = position;
            if last_cleanup.elapsed() > Duration::from_secs(60) {
                last_cleanup = std::time::Instant::now();
                self.cleanup(position);
            }
        }
    }

    fn cleanup(&self, indexed: u64) {
        if let Some(c) = &self.cleanup {
            c.run(indexed, std::time::SystemTime::now());
        }
    }
}

impl Cleanup {
    /// Removes local log segments that are indexed, read by every durable cursor and
    /// older than their keeping time, and those indexed and older than the longest
    /// keeping time for cursors whatever the cursors say.
    fn run(&self, indexed: u64, now: std::time::SystemTime) {
        let read = cursor::list(&self.log.dir().join(cursor::DIR), "").into_iter().map(|(_, o)| o).fold(indexed, u64::min);
        let removed = self
            .log
            .remove_before(read, now.checked_sub(self.keep))
            .and_then(|a| Ok(a + self.log.remove_before(indexed, now.checked_sub(self.reader_keep))?));
        match removed {
            Ok(0) => {}
            Ok(n) => tracing::info!(segments = n, "event log: indexed segments past their keeping time removed"),
            Err(e) => tracing::warn!(error = %e, "event log: cannot remove old segments"),
        }
    }
}

/// Reads every acknowledged event from an offset on ([`Bus::reader`]).
pub struct EventReader {
    source: Source,
    stats: Arc<BusStats>,
}

impl EventReader {
    /// The offset of the next event this reader returns (a consumer keeps it as its
    /// cursor).
    pub fn position(&self) -> u64 {
        self.source.position()
    }

    /// Returns the next events (up to `max`) with their offsets, waiting until there
    /// are some. None when the bus is gone.
    pub async fn next(&mut self, max: usize) -> Option<Vec<(u64, Event)>> {
        Some(self.next_records(max).await?.into_iter().map(|r| (r.offset, r.event)).collect())
    }

    /// Returns the next records (up to `max`): each event with its offset and its
    /// OCSF document as logged, waiting until there are some. None when the bus is
    /// gone.
    pub async fn next_records(&mut self, max: usize) -> Option<Vec<Record>> {
        loop {
            let at = self.source.position();
            match self.source.read(max, Duration::from_secs(1)).await {
                Ok(batch) => {
                    let mut out = Vec::with_capacity(batch.len());
                    for (offset, payload) in batch {
                        match decode(payload) {
                            Some((event, doc)) => out.push(Record { offset, event, doc }),
                            None => {
                                self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if !out.is_empty() {
                        return Some(out);
                    }
                }
                Err(BusError::Log(LogError::Closed)) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "event reader: cannot read the log; retrying");
                    self.source.seek(at);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// An event read by cursor.
#[derive(Clone, Debug)]
pub struct Record {
    /// Its offset in the log.
    pub offset: u64,
    /// The event.
    pub event: Event,
    /// Its OCSF document (JSON), as logged.
    pub doc: String,
}

/// A live subscription.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    stats: Arc<BusStats>,
}

impl Subscription {
    /// Returns the next event, skipping (and counting) those lost by lagging behind.
    /// None when the bus is gone.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.stats.lagged.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(lost = n, "live subscriber fell behind; stored events are unaffected");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn segments_a_cursor_needs_are_kept_until_the_readers_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogOptions { segment_bytes: 4096, ..Default::default() }).unwrap();
        for _ in 0..20 {
            log.append((0..20).map(|i| format!("record {i:0>100}").into_bytes()).collect()).await.unwrap();
        }
        let segments = || std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count();
        let before = segments();
        assert!(before > 5, "{before} segments");
        let end = log.end();
        let mut cursor = cursor::Cursor::open(&dir.path().join(cursor::DIR), "forward.x", "forward.x", 0, end).unwrap();
        cursor.save(10).await.unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        let cleanup = |reader_keep: u64| Cleanup { log: log.clone(), keep: Duration::from_secs(60), reader_keep: Duration::from_secs(reader_keep) };
        // Indexed to the end, but the cursor is at 10: its segment and the later ones stay.
        cleanup(7200).run(end, later);
        assert_eq!(segments(), before, "the cursor still needs them");
        cursor.save(end - 1).await.unwrap();
        cleanup(7200).run(end, later);
        assert_eq!(segments(), 1, "read by everyone: only the newest stays");
        // A cursor left behind keeps nothing past the readers' limit.
        for _ in 0..20 {
            log.append((0..20).map(|i| format!("record {i:0>100}").into_bytes()).collect()).await.unwrap();
        }
        cursor.save(end).await.unwrap();
        cleanup(1800).run(log.end(), later);
        assert_eq!(segments(), 1, "past reader_keep, segments go whatever the cursor says");
    }
}

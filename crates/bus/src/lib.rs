//! The event bus of Mamori.
//!
//! - [`Bus::publish`] checks events, writes them to the event log ([`log`]) and returns
//!   once they are synced there: that is the acknowledgement, and an acknowledged event
//!   survives a crash. It then fans them out to live subscribers.
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
pub mod log;

use log::{Log, LogError, LogOptions, LogReader};
use mamori_core::Event;
use mamori_store::events::{EventStore, EventStoreError, Logged};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    pub log_keep: std::time::Duration,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions { live_capacity: 4096, max_lag: 2_000_000, log: LogOptions::default(), log_keep: std::time::Duration::from_secs(86_400) }
    }
}

/// The state of the pipeline, for `/metrics` and the console.
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

/// The in-process event bus.
#[derive(Clone)]
pub struct Bus {
    events: EventStore,
    log: Log,
    live: broadcast::Sender<Arc<Event>>,
    stats: Arc<BusStats>,
    indexed: watch::Receiver<u64>,
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
const INDEX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

fn read_checkpoint(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(CHECKPOINT)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn write_checkpoint(dir: &Path, offset: u64) -> std::io::Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT}.tmp"));
    std::fs::write(&tmp, offset.to_string())?;
    std::fs::rename(tmp, dir.join(CHECKPOINT))
}

impl Bus {
    /// Returns a bus writing into `events`, with its log in `events`' folder under
    /// `log/`, and starts the indexer (from its checkpoint). Must be called inside a
    /// Tokio runtime.
    pub fn open(events: EventStore, options: BusOptions) -> Result<Self, BusError> {
        let dir = events.dir().join("log");
        let log = Log::open(&dir, options.log.clone())?;
        let start = read_checkpoint(&dir).min(log.end());
        let (indexed_tx, indexed) = watch::channel(start);
        let (stop, stop_rx) = watch::channel(());
        let (live, _) = broadcast::channel(options.live_capacity.max(16));
        let stats = Arc::new(BusStats::default());
        let indexer = Indexer { log: log.clone(), events: events.clone(), dir, indexed: indexed_tx, stats: stats.clone(), keep: options.log_keep };
        tokio::spawn(indexer.run(log.reader(start), stop_rx));
        Ok(Self { events, log, live, stats, indexed, max_lag: options.max_lag, _stop: Arc::new(stop) })
    }

    /// Returns a bus as [`Bus::open`] does, keeping `live_capacity` events per live
    /// subscriber.
    pub fn new(events: EventStore, live_capacity: usize) -> Result<Self, BusError> {
        Self::open(events, BusOptions { live_capacity, ..Default::default() })
    }

    /// Checks `events` and writes them to the log; returns how many once they are
    /// synced there (acknowledged), then sends them to live subscribers. A batch with
    /// one bad event is refused whole. Waits while the indexer is too far behind.
    pub async fn publish(&self, events: Vec<Event>) -> Result<u64, BusError> {
        if events.is_empty() {
            return Ok(0);
        }
        let docs = EventStore::check(&events)?;
        self.wait_for_indexer().await;
        let copies: Vec<Arc<Event>> = if self.live.receiver_count() > 0 { events.into_iter().map(Arc::new).collect() } else { Vec::new() };
        let n = docs.len() as u64;
        self.log.append(docs.into_iter().map(String::into_bytes).collect()).await?;
        self.stats.published.fetch_add(n, Ordering::Relaxed);
        for e in copies {
            // An error only means nobody is listening right now.
            let _ = self.live.send(e);
        }
        Ok(n)
    }

    async fn wait_for_indexer(&self) {
        let mut indexed = self.indexed.clone();
        while self.log.end().saturating_sub(*indexed.borrow()) > self.max_lag {
            if indexed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until every event acknowledged before the call is searchable.
    pub async fn searchable(&self) {
        let target = self.log.end();
        let mut indexed = self.indexed.clone();
        while *indexed.borrow() < target {
            if indexed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Returns a reader of every acknowledged event from `offset` on (0: the oldest
    /// kept; [`Bus::end`]: only new ones).
    pub fn reader(&self, offset: u64) -> EventReader {
        EventReader { inner: Some(self.log.reader(offset)), end: self.log.watch_end(), stats: self.stats.clone() }
    }

    /// The offset after the last acknowledged event.
    pub fn end(&self) -> u64 {
        self.log.end()
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
        Pipeline {
            log_end: self.log.end(),
            indexed: *self.indexed.borrow(),
            damaged: self.log.stats().damaged.load(Ordering::Relaxed),
            log_bytes: self.log.bytes(),
        }
    }
}

/// Decodes a log record into the event it holds (with its own id, `metadata.uid`).
fn decode(payload: Vec<u8>) -> Option<(Event, String)> {
    let doc = String::from_utf8(payload).ok()?;
    let value: serde_json::Value = serde_json::from_str(&doc).ok()?;
    let mut event = Event::from_ocsf(&value, None, |_| true).ok()?;
    event.id = value.get("metadata")?.get("uid")?.as_str()?.parse().ok()?;
    Some((event, doc))
}

/// Reads the log into the event store.
struct Indexer {
    log: Log,
    events: EventStore,
    dir: PathBuf,
    indexed: watch::Sender<u64>,
    stats: Arc<BusStats>,
    keep: std::time::Duration,
}

impl Indexer {
    async fn run(self, reader: LogReader, mut stop: watch::Receiver<()>) {
        let mut reader = Some(reader);
        let mut end = self.log.watch_end();
        let mut last_cleanup = std::time::Instant::now();
        let mut last_index: Option<std::time::Instant> = None;
        loop {
            let Some(r) = reader.take() else { return };
            if let Some(at) = last_index
                && at.elapsed() < INDEX_INTERVAL
                && self.log.end().saturating_sub(r.position()) < INDEX_BATCH as u64
            {
                tokio::select! {
                    _ = tokio::time::sleep(INDEX_INTERVAL.saturating_sub(at.elapsed())) => {}
                    _ = stop.changed() => return,
                }
            }
            let read = tokio::task::spawn_blocking(move || {
                let mut r = r;
                let batch = r.read(INDEX_BATCH);
                (r, batch)
            })
            .await;
            let (r, batch) = match read {
                Ok(x) => x,
                // Cancelled: the runtime is shutting down (the log keeps the rest).
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    tracing::error!(error = %e, "event indexer: read task failed");
                    return;
                }
            };
            let position = r.position();
            reader = Some(r);
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "event indexer: cannot read the log; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                // Caught up: the reader's position is the end (or beyond damage).
                self.indexed.send_if_modified(|i| {
                    let moved = *i != position;
                    *i = position;
                    moved
                });
                tokio::select! {
                    changed = end.changed() => if changed.is_err() { return },
                    _ = stop.changed() => return,
                }
                continue;
            }
            let first = batch.first().map(|(o, _)| *o).unwrap_or(position);
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
                    reader = Some(self.log.reader(first));
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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
                    reader = Some(self.log.reader(first));
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
            last_index = Some(std::time::Instant::now());
            self.indexed.send_replace(position);
            if let Err(e) = write_checkpoint(&self.dir, position) {
                tracing::warn!(error = %e, "event indexer: cannot write its checkpoint (a restart replays more)");
            }
            if last_cleanup.elapsed() > std::time::Duration::from_secs(60) {
                last_cleanup = std::time::Instant::now();
                self.cleanup(position);
            }
        }
    }

    /// Removes log segments that are indexed and older than `keep`.
    fn cleanup(&self, indexed: u64) {
        let cutoff = std::time::SystemTime::now().checked_sub(self.keep);
        match self.log.remove_before(indexed, cutoff) {
            Ok(0) => {}
            Ok(n) => tracing::info!(segments = n, "event log: indexed segments past their keeping time removed"),
            Err(e) => tracing::warn!(error = %e, "event log: cannot remove old segments"),
        }
    }
}

/// Reads every acknowledged event from an offset on ([`Bus::reader`]).
pub struct EventReader {
    inner: Option<LogReader>,
    end: watch::Receiver<u64>,
    stats: Arc<BusStats>,
}

impl EventReader {
    /// The offset of the next event this reader returns (a consumer keeps it as its
    /// cursor).
    pub fn position(&self) -> u64 {
        self.inner.as_ref().map(LogReader::position).unwrap_or(0)
    }

    /// Returns the next events (up to `max`) with their offsets, waiting until there
    /// are some. None when the bus is gone.
    pub async fn next(&mut self, max: usize) -> Option<Vec<(u64, Event)>> {
        loop {
            let mut r = self.inner.take()?;
            let (r, got) = tokio::task::spawn_blocking(move || {
                let got = r.read(max.max(1));
                (r, got)
            })
            .await
            .ok()?;
            self.inner = Some(r);
            match got {
                Ok(batch) if !batch.is_empty() => {
                    let mut out = Vec::with_capacity(batch.len());
                    for (offset, payload) in batch {
                        match decode(payload) {
                            Some((e, _)) => out.push((offset, e)),
                            None => {
                                self.stats.unreadable.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if !out.is_empty() {
                        return Some(out);
                    }
                }
                Ok(_) => {
                    if self.position() >= *self.end.borrow_and_update() {
                        if self.end.changed().await.is_err() {
                            return None;
                        }
                    } else {
                        // Stuck before the end (a damaged stretch not yet passed).
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "event reader: cannot read the log; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
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

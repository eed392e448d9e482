//! The pipeline measured the way `mamori bench events` and `cargo bench -p mamori-bus`
//! report it: `n` events of the benchmark mix ([`mamori_store::events::mix`]) published
//! in batches of 1,000 by a few concurrent publishers into a fresh folder, timed until
//! every one is searchable.

use crate::{Bus, BusError, BusOptions};
use mamori_store::events::EventStore;
use mamori_store::events::mix::{Kind, Mix};
use std::path::Path;
use std::time::{Duration, Instant};

/// Events per published batch.
pub const BATCH: usize = 1000;
/// Concurrent publishers (as several components or API clients would be).
pub const PUBLISHERS: usize = 4;

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Events published.
    pub events: usize,
    /// Time until the last was acknowledged (in the log).
    pub acknowledged: Duration,
    /// Time until the last was searchable (the whole run).
    pub searchable: Duration,
    /// Bytes of raw records (`raw_data`) published.
    pub raw_bytes: u64,
    /// Bytes of the searchable store on disk.
    pub store_bytes: u64,
    /// Bytes of the log on disk.
    pub log_bytes: u64,
    /// With [`Split::IndexAfter`]: the time the indexing node took alone, from its
    /// start on a stream holding every event until all were searchable.
    pub index_only: Option<Duration>,
}

/// How a JetStream run is split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Split {
    /// One bus publishes and indexes at once.
    #[default]
    Together,
    /// An intake-only bus publishes every event first; then an indexing bus starts
    /// and is timed alone (what an indexing node of a split installation does).
    IndexAfter,
}

impl Report {
    /// Events per second, publish to searchable.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.searchable.as_secs_f64().max(1e-9)
    }
}

/// Runs the pipeline on `n` events of the standard mix in `dir` (which must be empty
/// or absent). Events are generated before the clock starts.
pub async fn run(dir: &Path, n: usize) -> Result<Report, BusError> {
    run_mix(dir, n, Kind::Standard).await
}

/// Runs the pipeline on `n` events of a mix of this kind.
pub async fn run_mix(dir: &Path, n: usize, kind: Kind) -> Result<Report, BusError> {
    run_with(dir, n, kind, None).await
}

/// Runs the pipeline on `n` events of a mix of this kind, with the log over JetStream
/// when `js` is given (this process then both publishes and indexes; the run's streams
/// are removed afterwards).
pub async fn run_with(dir: &Path, n: usize, kind: Kind, js: Option<crate::jetstream::JetStreamOptions>) -> Result<Report, BusError> {
    run_split(dir, n, kind, js, Split::Together).await
}

/// As [`run_with`], with the JetStream run split as `split` says.
pub async fn run_split(dir: &Path, n: usize, kind: Kind, js: Option<crate::jetstream::JetStreamOptions>, split: Split) -> Result<Report, BusError> {
    let mut mix = Mix::of(kind, n, mamori_core::time::now_ms());
    let mut batches = Vec::with_capacity(n.div_ceil(BATCH));
    let mut raw_bytes = 0u64;
    for from in (0..n).step_by(BATCH) {
        let b = mix.batch(from, (from + BATCH).min(n));
        raw_bytes += b.iter().filter_map(|e| e.raw.as_ref()).map(|r| r.len() as u64).sum::<u64>();
        batches.push(b);
    }
    // Oldest first, as events arrive.
    batches.reverse();
    // With IndexAfter, the indexing node's options; the publishing bus then indexes nothing.
    let indexer_options = js.clone().filter(|_| split == Split::IndexAfter);
    let bus = match js {
        None => Bus::open(EventStore::open(dir)?, BusOptions::default())?,
        Some(mut js) => {
            if indexer_options.is_some() {
                js.index_partition = None;
            }
            Bus::connect(EventStore::open(dir)?, BusOptions::default(), js).await?
        }
    };
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        let (bus, queue) = (bus.clone(), queue.clone());
        publishers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(batch) = next else { return Ok::<(), BusError>(()) };
                bus.publish(batch).await?;
            }
        }));
    }
    for p in publishers {
        p.await.map_err(|e| BusError::Log(crate::log::LogError::Write(e.to_string())))??;
    }
    let acknowledged = started.elapsed();
    let mut index_only = None;
    let bus = match indexer_options {
        Some(js) => {
            drop(bus);
            let indexing = Instant::now();
            let indexer = Bus::connect(EventStore::open(dir)?, BusOptions::default(), js).await?;
            indexer.searchable().await;
            index_only = Some(indexing.elapsed());
            indexer
        }
        None => {
            bus.searchable().await;
            bus
        }
    };
    let searchable = started.elapsed();
    let store_bytes = bus.events().partitions()?.iter().map(|p| p.bytes).sum();
    let log_bytes = match &bus.transport {
        crate::Transport::Local(log) => log.bytes(),
        crate::Transport::JetStream(js) => {
            let bytes = js.fresh_bytes().await?;
            js.delete_streams().await?;
            bytes
        }
    };
    Ok(Report { events: n, acknowledged, searchable, raw_bytes, store_bytes, log_bytes, index_only })
}

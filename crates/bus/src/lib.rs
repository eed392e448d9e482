//! The event bus of Mamori.
//!
//! - [`Bus`]: components publish [`Event`]s; [`Bus::publish`] returns only after the
//!   events are committed to the event store (so an acknowledged event survives a
//!   crash), then fans them out to live subscribers (console live view, detection).
//!   A subscriber that falls behind loses live copies, never stored events, and the loss
//!   is counted.
//!
//! Components publish through the runtime (`mamori-runtime`), which counts their typed
//! events before they reach the bus.
#![deny(missing_docs)]

use mamori_core::Event;
use mamori_store::events::{EventStore, EventStoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// Errors of publishing.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The event store refused or failed; nothing was acknowledged.
    #[error("event store: {0}")]
    Store(#[from] EventStoreError),
}

/// Counters of the bus, for `/metrics`.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Events committed.
    pub published: AtomicU64,
    /// Live copies dropped because a subscriber fell behind.
    pub lagged: AtomicU64,
}

/// The in-process event bus.
#[derive(Clone)]
pub struct Bus {
    events: EventStore,
    live: broadcast::Sender<Arc<Event>>,
    stats: Arc<BusStats>,
}

impl Bus {
    /// Returns a bus writing into `events`, keeping `live_capacity` events per
    /// subscriber before a slow one starts losing live copies.
    pub fn new(events: EventStore, live_capacity: usize) -> Self {
        let (live, _) = broadcast::channel(live_capacity.max(16));
        Self { events, live, stats: Arc::new(BusStats::default()) }
    }

    /// Stores `events` durably, then sends them to live subscribers. Returns how many
    /// were stored.
    pub async fn publish(&self, events: Vec<Event>) -> Result<u64, BusError> {
        if events.is_empty() {
            return Ok(0);
        }
        let copies: Vec<Arc<Event>> = if self.live.receiver_count() > 0 { events.iter().cloned().map(Arc::new).collect() } else { Vec::new() };
        let n = self.events.append(events).await?;
        self.stats.published.fetch_add(n, Ordering::Relaxed);
        for e in copies {
            // An error only means nobody is listening right now.
            let _ = self.live.send(e);
        }
        Ok(n)
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

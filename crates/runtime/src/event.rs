//! Typed events: each component has its own event enum, which converts into the OCSF
//! [`Event`] the bus stores, and is counted by kind on the way
//! (`mamori_component_events_total{component, kind}`).

use crate::metrics::{EventLabels, Metrics};
use mamori_bus::{Bus, BusError};
use mamori_core::Event;

/// An event of one component, e.g. `MonitorEvent::StateChanged`.
pub trait ComponentEvent: Send + 'static {
    /// The kind, for counting and logs: snake case, past tense (`state_changed`).
    fn kind(&self) -> &'static str;
    /// The event as stored and searched.
    fn into_event(self) -> Event;
}

/// Where a component's events go: counted, then published durably.
#[derive(Clone)]
pub struct Emitter {
    component: &'static str,
    bus: Bus,
    metrics: Metrics,
}

impl Emitter {
    /// Returns the emitter of `component`.
    pub fn new(component: &'static str, bus: Bus, metrics: &Metrics) -> Self {
        Self { component, bus, metrics: metrics.clone() }
    }

    /// Counts and publishes `events`; returns when they are stored.
    pub async fn emit<E: ComponentEvent>(&self, events: impl IntoIterator<Item = E>) -> Result<u64, BusError> {
        let events: Vec<Event> = events
            .into_iter()
            .map(|e| {
                let kind = e.kind();
                self.metrics.runtime.events.get_or_create(&EventLabels { component: self.component, kind }).inc();
                tracing::debug!(component = self.component, kind, "event");
                e.into_event()
            })
            .collect();
        self.bus.publish(events).await
    }

    /// Returns the bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }
}

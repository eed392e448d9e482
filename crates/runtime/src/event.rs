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

/// What the runtime itself tells the SOC about a component, as events of the
/// prefecture (they are counted under the component's name).
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeEvent {
    /// This node took a singleton's lease and runs the component now.
    LeaseTaken {
        /// The prefecture.
        tenant: mamori_core::TenantId,
        /// When (Unix ms).
        at: i64,
        /// The component.
        component: &'static str,
        /// This node's name.
        node: String,
        /// The lease's epoch.
        epoch: i64,
    },
    /// The component panicked or failed and will be started again.
    ComponentFailed {
        /// The prefecture.
        tenant: mamori_core::TenantId,
        /// When (Unix ms).
        at: i64,
        /// The component.
        component: &'static str,
        /// This node's name.
        node: String,
        /// `panic` or `error`.
        reason: &'static str,
        /// What it said.
        message: String,
        /// Seconds until the restart.
        retry_in_secs: u64,
    },
}

impl ComponentEvent for RuntimeEvent {
    fn kind(&self) -> &'static str {
        match self {
            RuntimeEvent::LeaseTaken { .. } => "lease_taken",
            RuntimeEvent::ComponentFailed { .. } => "failed",
        }
    }

    fn into_event(self) -> Event {
        use mamori_core::{EventClass, Severity};
        match self {
            RuntimeEvent::LeaseTaken { tenant, at, component, node, epoch } => {
                let mut e = Event::new(
                    tenant,
                    at,
                    EventClass::APPLICATION_LIFECYCLE,
                    format!("コンポーネント {component} をノード {node} で開始しました（リース世代 {epoch}）"),
                    "mamori-runtime",
                );
                e.fields.insert("unmapped".into(), serde_json::json!({ "component": component, "node": node, "epoch": epoch }));
                e
            }
            RuntimeEvent::ComponentFailed { tenant, at, component, node, reason, message, retry_in_secs } => {
                let message: String = message.chars().take(1000).collect();
                let mut e = Event::new(
                    tenant,
                    at,
                    EventClass::APPLICATION_LIFECYCLE,
                    format!("コンポーネント {component} がノード {node} で異常終了しました（{reason}）。{retry_in_secs} 秒後に再起動します"),
                    "mamori-runtime",
                );
                e.severity = Severity::MEDIUM;
                e.fields.insert("unmapped".into(), serde_json::json!({ "component": component, "node": node, "reason": reason, "message": message }));
                e
            }
        }
    }
}

//! Typed events of the `monitor` component and its counters.
//!
//! Requirements: F01–F05 state changes as events for the SOC (F18, F20).

use mamori_core::monitor::{MonitorId, Reason, Status};
use mamori_core::{Event, EventClass, Severity, TenantId};
use mamori_runtime::ComponentEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;

/// What the monitor tells the bus.
#[derive(Clone, Debug, PartialEq)]
pub enum MonitorEvent {
    /// A monitor changed state (Application Lifecycle; severity by the new state).
    StateChanged {
        /// The monitor's municipality.
        tenant: TenantId,
        /// When (Unix ms).
        at: i64,
        /// The monitor.
        monitor: MonitorId,
        /// Its name.
        name: String,
        /// The state before.
        from: Status,
        /// The state now.
        to: Status,
        /// Why, when the check said.
        reason: Option<Reason>,
    },
    /// A watched page's content changed (HTTP Activity; tamper detection builds on it).
    ContentChanged {
        /// The monitor's municipality.
        tenant: TenantId,
        /// When (Unix ms).
        at: i64,
        /// The monitor.
        monitor: MonitorId,
        /// Its name.
        name: String,
        /// SHA-256 of the content now.
        sha256: String,
        /// SHA-256 of the content before.
        previous: String,
    },
}

impl ComponentEvent for MonitorEvent {
    fn kind(&self) -> &'static str {
        match self {
            MonitorEvent::StateChanged { .. } => "state_changed",
            MonitorEvent::ContentChanged { .. } => "content_changed",
        }
    }

    fn into_event(self) -> Event {
        match self {
            MonitorEvent::StateChanged { tenant, at, monitor, name, from, to, reason } => {
                let reason_ja = reason.as_ref().map(|x| format!("（{}）", x.ja)).unwrap_or_default();
                let reason_en = reason.as_ref().map(|x| format!("({})", x.en)).unwrap_or_default();
                let mut ev = Event::new(
                    tenant,
                    at,
                    EventClass::APPLICATION_LIFECYCLE,
                    format!("監視「{name}」: {} → {}{reason_ja}", from.ja(), to.ja()),
                    "mamori-monitor",
                );
                ev.severity = match to {
                    Status::Down => Severity::HIGH,
                    Status::Unreachable | Status::Degraded | Status::Pending => Severity::LOW,
                    _ => Severity::INFO,
                };
                ev.fields.insert(
                    "unmapped".into(),
                    json!({"monitor_id": monitor, "monitor": name, "from": from, "to": to, "reason": reason.as_ref().map(|x| x.code.clone()), "reason_en": reason_en}),
                );
                ev
            }
            MonitorEvent::ContentChanged { tenant, at, monitor, name, sha256, previous } => {
                let mut ev = Event::new(tenant, at, EventClass::HTTP_ACTIVITY, format!("監視「{name}」: ページの内容が変わりました"), "mamori-monitor");
                ev.severity = Severity::LOW;
                ev.fields.insert("unmapped".into(), json!({"monitor_id": monitor, "content_sha256": sha256, "previous_sha256": previous}));
                ev
            }
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// Counters of the monitor (`mamori_monitor_*`).
#[derive(Clone, Default)]
pub struct MonitorMetrics {
    results: Family<StatusLabels, Counter>,
}

impl MonitorMetrics {
    /// Returns the counters, registered in the node's registry.
    pub fn register(metrics: &mamori_runtime::Metrics) -> Self {
        let m = Self::default();
        metrics.register("monitor", "check_results", "Check results applied, by the status the check reported", m.results.clone());
        m
    }

    /// Counts one result.
    pub fn result(&self, status: Status) {
        self.results.get_or_create(&StatusLabels { status: status.as_str() }).inc();
    }
}

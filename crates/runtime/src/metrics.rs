//! The metrics registry of a node: every component adds its counters and histograms,
//! the runtime adds its own, and `/metrics` serves them all.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ComponentLabels {
    pub component: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RestartLabels {
    pub component: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EventLabels {
    pub component: &'static str,
    pub kind: &'static str,
}

/// The runtime's own metrics.
#[derive(Clone, Default)]
pub(crate) struct RuntimeMetrics {
    pub restarts: Family<RestartLabels, Counter>,
    pub ready: Family<ComponentLabels, Gauge>,
    pub leader: Family<ComponentLabels, Gauge>,
    pub events: Family<EventLabels, Counter>,
}

/// The node's metrics registry (prefix `mamori_`). Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    pub(crate) runtime: RuntimeMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mamori");
        let runtime = RuntimeMetrics::default();
        registry.register("component_restarts", "Restarts of a component after a panic or an error (reason: panic, error)", runtime.restarts.clone());
        registry.register("component_ready", "1 while the component is active or standing by, else 0", runtime.ready.clone());
        registry.register("component_leader", "1 while this node holds the component's singleton lease", runtime.leader.clone());
        registry.register("component_events", "Typed events a component emitted, by kind", runtime.events.clone());
        Self { registry: Arc::new(RwLock::new(registry)), runtime }
    }
}

impl Metrics {
    /// Registers a metric of `component` as `mamori_<component>_<name>` (counters get
    /// `_total`). Call it once, when the component is built.
    pub fn register(&self, component: &str, name: &str, help: &str, metric: impl Metric) {
        let mut r = self.registry.write().unwrap_or_else(|p| p.into_inner());
        r.sub_registry_with_prefix(component).register(name, help, metric);
    }

    /// Appends the metrics in OpenMetrics text, without the closing `# EOF` (the
    /// server serving them adds its own and then closes).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        let r = self.registry.read().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode_registry(out, &r)
    }
}

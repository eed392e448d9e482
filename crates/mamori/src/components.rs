//! The components this binary knows: the one place they are wired together.

use mamori_runtime::Registry;
use std::sync::Arc;

/// Returns every component, and the monitor (the console hands probe results to it).
pub fn registry() -> (Registry, Arc<mamori_monitor::Monitoring>) {
    let mut registry = Registry::builtin();
    let monitoring = Arc::new(mamori_monitor::Monitoring::new());
    registry.add(monitoring.clone());
    (registry, monitoring)
}

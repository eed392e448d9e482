//! The components this binary knows: the one place they are wired together.

use mamori_runtime::Registry;
use std::sync::Arc;

/// Returns every component.
pub fn registry() -> Registry {
    let mut registry = Registry::builtin();
    registry.add(Arc::new(mamori_monitor::Monitoring::new()));
    registry.add(Arc::new(mamori_forward::Forwarding));
    registry
}

//! Counters of a server, read by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a server has done since it started. Counters only grow, except
/// `connections_open`.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_open: AtomicU64,
    pub(crate) refused_total_cap: AtomicU64,
    pub(crate) refused_client_cap: AtomicU64,
    pub(crate) tls_handshake_failed: AtomicU64,
    pub(crate) header_timeouts: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

/// A copy of [`ServerStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections accepted and admitted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections closed at once because the server was at `max_connections`.
    pub refused_total_cap: u64,
    /// Connections closed at once because their client was at `max_connections_per_client`.
    pub refused_client_cap: u64,
    /// TLS handshakes that failed.
    pub tls_handshake_failed: u64,
    /// Connections closed because a request head (or the TLS handshake) was not complete
    /// within `header_read_timeout`.
    pub header_timeouts: u64,
    /// Keep-alive connections closed after `idle_timeout`.
    pub idle_closed: u64,
    /// Connections closed because the client stopped reading its response.
    pub write_timeouts: u64,
    /// Requests handed to the application.
    pub requests: u64,
    /// Requests whose handler panicked (answered 500).
    pub handler_panics: u64,
    /// Failed `accept` calls (for example out of file descriptors).
    pub accept_errors: u64,
}

impl ServerStats {
    /// Returns the counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            connections_accepted: get(&self.connections_accepted),
            connections_open: get(&self.connections_open),
            refused_total_cap: get(&self.refused_total_cap),
            refused_client_cap: get(&self.refused_client_cap),
            tls_handshake_failed: get(&self.tls_handshake_failed),
            header_timeouts: get(&self.header_timeouts),
            idle_closed: get(&self.idle_closed),
            write_timeouts: get(&self.write_timeouts),
            requests: get(&self.requests),
            handler_panics: get(&self.handler_panics),
            accept_errors: get(&self.accept_errors),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

//! Prometheus metrics at `/metrics` (text exposition format).

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The HTTP server's own counters (`mamori_http::ServerStats`), copied in at each scrape.
struct HttpServerMetrics {
    stats: Arc<mamori_http::ServerStats>,
    accepted: Counter,
    open: Gauge<i64, AtomicI64>,
    refused: Family<ReasonLabels, Counter>,
    closed: Family<ReasonLabels, Counter>,
    requests: Counter,
    panics: Counter,
    accept_errors: Counter,
    /// Copies run one at a time, so two scrapes never add the same difference twice.
    sync: Mutex<()>,
}

impl HttpServerMetrics {
    fn register(registry: &mut Registry, stats: Arc<mamori_http::ServerStats>) -> Self {
        let m = Self {
            stats,
            accepted: Counter::default(),
            open: Gauge::default(),
            refused: Family::default(),
            closed: Family::default(),
            requests: Counter::default(),
            panics: Counter::default(),
            accept_errors: Counter::default(),
            sync: Mutex::new(()),
        };
        registry.register("http_connections_accepted", "Connections accepted by the HTTP server", m.accepted.clone());
        registry.register("http_connections_open", "Connections open now", m.open.clone());
        registry.register("http_connections_refused", "Connections closed at once by a cap (total_cap, client_cap)", m.refused.clone());
        registry.register(
            "http_connections_closed",
            "Connections closed by the server for a reason (header_timeout, idle, write_timeout, tls_handshake)",
            m.closed.clone(),
        );
        registry.register("http_server_requests", "Requests handed to the application by the HTTP server", m.requests.clone());
        registry.register("http_handler_panics", "Requests whose handler panicked (answered 500)", m.panics.clone());
        registry.register("http_accept_errors", "Failed accept calls (for example out of file descriptors)", m.accept_errors.clone());
        m
    }

    fn copy(&self) {
        let _one = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let s = self.stats.snapshot();
        let up = |c: &Counter, v: u64| {
            let cur = c.get();
            if v > cur {
                c.inc_by(v - cur);
            }
        };
        up(&self.accepted, s.connections_accepted);
        self.open.set(i64::try_from(s.connections_open).unwrap_or(i64::MAX));
        up(&self.refused.get_or_create(&ReasonLabels { reason: "total_cap" }), s.refused_total_cap);
        up(&self.refused.get_or_create(&ReasonLabels { reason: "client_cap" }), s.refused_client_cap);
        up(&self.closed.get_or_create(&ReasonLabels { reason: "header_timeout" }), s.header_timeouts);
        up(&self.closed.get_or_create(&ReasonLabels { reason: "idle" }), s.idle_closed);
        up(&self.closed.get_or_create(&ReasonLabels { reason: "write_timeout" }), s.write_timeouts);
        up(&self.closed.get_or_create(&ReasonLabels { reason: "tls_handshake" }), s.tls_handshake_failed);
        up(&self.requests, s.requests);
        up(&self.panics, s.handler_panics);
        up(&self.accept_errors, s.accept_errors);
    }
}

/// The console's counters.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    logins: Family<LoginLabels, Counter>,
    events_published: Gauge<i64, AtomicI64>,
    live_lagged: Gauge<i64, AtomicI64>,
    pipeline: [Gauge<i64, AtomicI64>; 7],
    http: HttpServerMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl Metrics {
    /// The console's metrics, including the counters of the HTTP server serving it.
    pub fn new(http_stats: Arc<mamori_http::ServerStats>) -> Self {
        let mut registry = Registry::with_prefix("mamori");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let logins = Family::<LoginLabels, Counter>::default();
        let events_published = Gauge::<i64, AtomicI64>::default();
        let live_lagged = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests", "HTTP requests answered, by kind (page, api) and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests", latency.clone());
        registry.register("logins", "Login attempts by result", logins.clone());
        registry.register("events_published", "Events acknowledged (in the event log) since start", events_published.clone());
        registry.register("live_events_lagged", "Live event copies lost by slow subscribers since start", live_lagged.clone());
        let pipeline: [Gauge<i64, AtomicI64>; 7] = Default::default();
        for (g, (name, help)) in pipeline.iter().zip([
            ("event_log_end", "Offset after the last event acknowledged in the event log"),
            ("event_log_indexed", "Offset up to which logged events are searchable"),
            ("event_index_lag", "Events acknowledged but not yet searchable"),
            ("event_log_damaged", "Damaged event-log records found and skipped since start"),
            ("event_log_bytes", "Bytes of the event log on disk"),
            ("event_blocks_damaged", "Damaged event-store blocks queries found and skipped since start"),
            ("events_unreadable", "Logged records the indexer could not read as events since start"),
        ]) {
            registry.register(name, help, g.clone());
        }
        let http = HttpServerMetrics::register(&mut registry, http_stats);
        Self { registry, requests, latency, logins, events_published, live_lagged, pipeline, http }
    }

    /// Counts an answered request.
    pub fn observe_request(&self, status: u16, secs: f64, api: bool) {
        self.requests.get_or_create(&RequestLabels { kind: if api { "api" } else { "page" }, status }).inc();
        self.latency.observe(secs);
    }

    /// Counts a login attempt (`ok`, `failed`, `locked`, `expired`).
    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }
}

/// Serves `/metrics`: to scrapers on the same host, and elsewhere only with a bearer
/// token (or session) of an operator role, since counts by status and login results are
/// operational information.
pub async fn render(State(state): State<AppState>, parts: axum::http::request::Parts) -> Response {
    // A request relayed by a trusted proxy that named no client is not taken for a local one.
    let local = parts.extensions.get::<mamori_http::ClientAddr>().is_some_and(|c| c.is_local());
    if !local {
        match crate::auth::authenticate(&parts).await {
            Ok(a) if a.principal.role().is_operator() => {}
            Ok(_) => return crate::AppError::Forbidden.json(),
            Err(_) => return crate::AppError::Unauthorized.json(),
        }
    }
    let stats = state.bus.stats();
    state.metrics.events_published.set(stats.published.load(Ordering::Relaxed) as i64);
    state.metrics.live_lagged.set(stats.lagged.load(Ordering::Relaxed) as i64);
    let p = state.bus.pipeline();
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for (g, v) in state.metrics.pipeline.iter().zip([
        p.log_end,
        p.indexed,
        p.log_end.saturating_sub(p.indexed),
        p.damaged,
        p.log_bytes,
        state.bus.events().damaged_blocks(),
        stats.unreadable.load(Ordering::Relaxed),
    ]) {
        g.set(gauge(v));
    }
    state.metrics.http.copy();
    let mut out = String::new();
    let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &state.metrics.registry)
        .and_then(|()| state.node.metrics.encode(&mut out))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    if encoded.is_err() {
        return crate::AppError::Internal("metrics encoding failed".into()).json();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
}

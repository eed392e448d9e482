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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

/// The console's counters.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    logins: Family<LoginLabels, Counter>,
    events_published: Gauge<i64, AtomicI64>,
    live_lagged: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mamori");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let logins = Family::<LoginLabels, Counter>::default();
        let events_published = Gauge::<i64, AtomicI64>::default();
        let live_lagged = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests", "HTTP requests answered, by kind (page, api) and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests", latency.clone());
        registry.register("logins", "Login attempts by result", logins.clone());
        registry.register("events_published", "Events committed to the event store since start", events_published.clone());
        registry.register("live_events_lagged", "Live event copies lost by slow subscribers since start", live_lagged.clone());
        Self { registry, requests, latency, logins, events_published, live_lagged }
    }
}

impl Metrics {
    /// Counts an answered request.
    pub fn observe_request(&self, status: u16, secs: f64, api: bool) {
        self.requests.get_or_create(&RequestLabels { kind: if api { "api" } else { "page" }, status }).inc();
        self.latency.observe(secs);
    }

    /// Counts a login attempt (`ok`, `failed`, `locked`).
    pub fn login(&self, result: &'static str) {
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }
}

/// Serves `/metrics`: to scrapers on the same host, and elsewhere only with a bearer
/// token (or session) of an operator role, since counts by status and login results are
/// operational information.
pub async fn render(State(state): State<AppState>, parts: axum::http::request::Parts) -> Response {
    let local = crate::auth::client_ip(&parts).and_then(|ip| ip.parse::<std::net::IpAddr>().ok()).is_some_and(|ip| ip.is_loopback());
    if !local {
        match crate::auth::authenticate(&state, &parts).await {
            Ok(a) if a.principal.role.is_operator() => {}
            Ok(_) => return crate::AppError::Forbidden.json(),
            Err(_) => return crate::AppError::Unauthorized.json(),
        }
    }
    let stats = state.bus.stats();
    state.metrics.events_published.set(stats.published.load(Ordering::Relaxed) as i64);
    state.metrics.live_lagged.set(stats.lagged.load(Ordering::Relaxed) as i64);
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &state.metrics.registry).is_err() {
        return crate::AppError::Internal("metrics encoding failed".into()).json();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
}

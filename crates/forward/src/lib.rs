//! Event forwarding: every event of the log, to outside SOC contractors and existing
//! SIEMs, at least once.
//!
//! Each destination of `[components.forward]` reads the event log by its own durable
//! cursor (`forward.NAME`, [`mamori_bus::cursor`]), keeps the events of its tenants,
//! classes and severities, formats them ([`format`]) and sends them ([`sink`]):
//!
//! | kind | protocol | acknowledged by |
//! |---|---|---|
//! | `syslog` | RFC 5424 or CEF over UDP, TCP, TLS (RFC 5425) | nothing (TCP: the kernel took it) |
//! | `syslog` | over RELP (plain or TLS) | the receiver, per message |
//! | `splunk_hec` | HTTP Event Collector | the HTTP answer |
//! | `elasticsearch` | bulk API (`create`, event id as `_id`) | each item's status |
//!
//! The cursor moves only past events the receiver took (or refused for good: counted
//! in `mamori_forward_rejected_total` and logged), and only once that is on disk, so a
//! crash or a receiver that is down repeats, never skips: delivery is at least once
//! (Elasticsearch drops the repeats by id). A receiver that is down makes the cursor
//! fall behind, up to `[events] reader_keep_hours`, which the log keeps for it; the lag
//! is in `/metrics` (`mamori_forward_lag_events`), on the console's イベント転送 page and
//! `GET /api/v1/forwarding`, and after a minute of failures in the node's notices.
//!
//! Placement: replicated. Each node forwards the log it has: its local log, or with
//! JetStream the partition it indexes (an intake-only node forwards nothing).

pub mod config;
pub mod format;
pub mod sink;
pub mod status;
pub mod testing;
mod web;

pub use config::{Destination, ForwardConfig, Kind};

use format::TenantInfo;
use mamori_bus::{Bus, Record};
use mamori_runtime::{BoxFuture, BuildCx, BuildError, Component, ComponentError, HealthReporter, Metrics, RunCx, Service, TenantResolver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sink::{SendError, Sink};
use status::Status;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The forwarding component.
pub struct Forwarding;

/// Longest pause between attempts at a receiver that fails.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A receiver failing this long becomes a notice of the node.
const NOTICE_AFTER_MS: i64 = 60_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabel {
    destination: String,
}

/// The forwarder's metrics, by destination.
#[derive(Clone, Default)]
struct ForwardMetrics {
    sent: Family<DestinationLabel, Counter>,
    rejected: Family<DestinationLabel, Counter>,
    skipped: Family<DestinationLabel, Counter>,
    failures: Family<DestinationLabel, Counter>,
    lag: Family<DestinationLabel, Gauge>,
    failing: Family<DestinationLabel, Gauge>,
    last_sent: Family<DestinationLabel, Gauge<i64, AtomicI64>>,
}

impl ForwardMetrics {
    fn register(m: &Metrics) -> Self {
        let me = Self::default();
        m.register("forward", "sent", "Events a receiver took", me.sent.clone());
        m.register("forward", "rejected", "Events a receiver refused for good (not sent again)", me.rejected.clone());
        m.register(
            "forward",
            "skipped",
            "Events the log no longer had when the cursor reached them (the receiver was down longer than the log keeps events)",
            me.skipped.clone(),
        );
        m.register("forward", "failures", "Failed attempts to send a batch", me.failures.clone());
        m.register("forward", "lag_events", "Events acknowledged on this node not yet forwarded", me.lag.clone());
        m.register("forward", "failing", "1 while the receiver fails", me.failing.clone());
        m.register("forward", "last_sent_timestamp_seconds", "When a receiver last took a batch (Unix seconds)", me.last_sent.clone());
        me
    }

    fn of(&self, name: &str) -> DestinationLabel {
        DestinationLabel { destination: name.to_string() }
    }
}

impl Component for Forwarding {
    type Config = ForwardConfig;

    fn name(&self) -> &'static str {
        "forward"
    }

    fn web(&self, cx: &mamori_web::WebCx) -> Option<mamori_web::WebPart> {
        Some(web::part(cx))
    }

    async fn build(&self, config: ForwardConfig, cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
        let mut destinations = Vec::new();
        for (i, d) in config.destinations.into_iter().enumerate() {
            let ca_pem = if d.ca_file.is_empty() {
                None
            } else {
                let file = |reason: String| BuildError::File { key: "ca_file", path: d.ca_file.clone(), reason };
                let pem = std::fs::read_to_string(&d.ca_file).map_err(|e| file(e.to_string()))?;
                sink::client_config(Some(&pem), true).map_err(|e| file(e.0))?;
                Some(pem)
            };
            let secret_name = match d.kind {
                Some(Kind::SplunkHec) => d.token_secret.clone(),
                Some(Kind::Elasticsearch) if !d.api_key_secret.is_empty() => d.api_key_secret.clone(),
                Some(Kind::Elasticsearch) => d.password_secret.clone(),
                _ => String::new(),
            };
            let secret = if secret_name.is_empty() {
                None
            } else {
                let v = cx.vault.secrets.get(cx.system_grant(), None, &secret_name).await.map_err(|e| BuildError::Other(e.to_string()))?;
                let v = v.ok_or_else(|| {
                    BuildError::Other(format!(
                        "[components.forward] destinations[{i}]: secret '{secret_name}' does not exist (mamori vault set-secret --name {secret_name}) / シークレット「{secret_name}」がありません"
                    ))
                })?;
                Some(v.expose_str().ok_or_else(|| BuildError::Other(format!("secret '{secret_name}' is not UTF-8")))?.trim().to_string())
            };
            // Checks the TLS setup once here: a bad one stops the start.
            Sink::new(&d, ca_pem.as_deref(), secret.clone()).map_err(|e| BuildError::Other(format!("[components.forward] destinations[{i}]: {e}")))?;
            destinations.push(Arc::new(Prepared { destination: d, ca_pem, secret }));
        }
        Ok(Arc::new(ForwardService { destinations, metrics: ForwardMetrics::register(&cx.metrics) }))
    }
}

/// A destination with what its sink needs.
struct Prepared {
    destination: Destination,
    ca_pem: Option<String>,
    secret: Option<String>,
}

struct ForwardService {
    destinations: Vec<Arc<Prepared>>,
    metrics: ForwardMetrics,
}

impl Service for ForwardService {
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
        Box::pin(async move {
            let bus = cx.bus().clone();
            let mut stop = cx.stop.clone();
            if !bus.reads_log() {
                if !self.destinations.is_empty() {
                    cx.health.notice(
                        "forward_no_log",
                        "このノードはイベントログのパーティションを担当しないため、転送しません（担当するノードが転送します）",
                        "this node indexes no event-log partition and forwards nothing (the nodes that index one do)",
                    );
                }
                mamori_runtime::stopped(&mut stop).await;
                return Ok(());
            }
            // Cursors of destinations no longer configured would keep log segments for nobody.
            let configured: HashSet<String> = self.destinations.iter().map(|p| p.destination.cursor()).collect();
            for (name, _) in bus.cursors() {
                if name.starts_with("forward.") && !configured.contains(&name) {
                    tracing::info!(cursor = %name, "forwarding: removing the cursor of a destination no longer configured");
                    bus.remove_cursor(&name)?;
                    status::remove(&status::dir(&bus), name.trim_start_matches("forward."));
                }
            }
            let host = mamori_runtime::hostname();
            let mut tasks = tokio::task::JoinSet::new();
            for p in &self.destinations {
                let forwarder = Forwarder {
                    prepared: p.clone(),
                    bus: bus.clone(),
                    tenants: cx.tenants.clone(),
                    metrics: self.metrics.clone(),
                    health: cx.health.clone(),
                    host: host.clone(),
                    position: Arc::new(AtomicU64::new(0)),
                };
                tasks.spawn(forwarder.run(cx.stop.clone()));
            }
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) if e.is_panic() => return Err(ComponentError::Other(format!("a forwarder panicked: {e}"))),
                    Err(_) => {}
                }
            }
            // No destinations (or every one ended with the bus): a running component
            // returns only when told to stop.
            mamori_runtime::stopped(&mut stop).await;
            Ok(())
        })
    }
}

/// One destination's loop.
struct Forwarder {
    prepared: Arc<Prepared>,
    bus: Bus,
    tenants: TenantResolver,
    metrics: ForwardMetrics,
    health: HealthReporter,
    host: String,
    /// The cursor's offset, for the lag reporter.
    position: Arc<AtomicU64>,
}

/// Formats one record for a destination: the bytes its sink sends.
pub fn prepare(d: &Destination, r: &Record, tenant: &TenantInfo, host: &str) -> Vec<u8> {
    match d.kind {
        Some(Kind::Syslog) => {
            let m = format::syslog(&r.event, &r.doc, tenant, d, host);
            match d.protocol {
                config::Protocol::Tcp => format::frame(&m, d.framing),
                config::Protocol::Udp | config::Protocol::Relp => m.into_bytes(),
            }
        }
        Some(Kind::SplunkHec) => format::hec(&r.event, &r.doc, tenant, d, host).into_bytes(),
        Some(Kind::Elasticsearch) | None => format::bulk(&r.event, &r.doc, tenant, d).into_bytes(),
    }
}

impl Forwarder {
    async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), ComponentError> {
        let d = &self.prepared.destination;
        let label = self.metrics.of(&d.name);
        let mut status = Status::new(d);
        let status_dir = status::dir(&self.bus);
        // Every series exists from the start, so a dashboard sees zeros, not gaps.
        self.metrics.failing.get_or_create(&label).set(0);
        for family in [&self.metrics.sent, &self.metrics.rejected, &self.metrics.skipped, &self.metrics.failures] {
            let _ = family.get_or_create(&label);
        }
        let start = match d.start {
            config::Start::New => self.bus.end(),
            config::Start::Oldest => 0,
        };
        let mut cursor = self.bus.cursor(&d.cursor(), start)?;
        if cursor.created() {
            tracing::info!(destination = %d.name, offset = cursor.offset(), "forwarding: new destination");
        }
        self.position.store(cursor.offset(), Ordering::Relaxed);
        status.position = cursor.offset();
        if let Some(old) = status::read(&status_dir, &d.name) {
            status.carry_over(&old);
        }
        let lag = tokio::spawn(report_lag(self.bus.clone(), self.position.clone(), self.metrics.lag.get_or_create(&label).clone(), stop.clone()));
        let _lag = AbortOnDrop(lag);
        if !d.enabled {
            status.write(&status_dir);
            mamori_runtime::stopped(&mut stop).await;
            return Ok(());
        }
        let mut sink = Sink::new(d, self.prepared.ca_pem.as_deref(), self.prepared.secret.clone()).map_err(|e| ComponentError::Other(e.0))?;
        let mut reader = self.bus.reader(cursor.offset());
        let tenants: HashSet<&str> = d.tenants.iter().map(String::as_str).collect();
        let classes: HashSet<u32> = d.classes.iter().copied().collect();
        status.write(&status_dir);
        let mut saved = std::time::Instant::now();
        loop {
            let records = tokio::select! {
                r = reader.next_records(d.batch_events) => r,
                _ = mamori_runtime::stopped(&mut stop) => {
                    cursor.save(status.position).await?;
                    status.write(&status_dir);
                    return Ok(());
                }
            };
            let Some(records) = records else { return Ok(()) };
            // The reader goes on from `status.position`: a first offset beyond it means
            // records are gone.
            if let Some(first) = records.first()
                && first.offset > status.position
            {
                let lost = first.offset - status.position;
                self.metrics.skipped.get_or_create(&label).inc_by(lost);
                status.skipped += lost;
                tracing::error!(destination = %d.name, lost, "forwarding: events could not be read from the log and were not sent (removed after [events] reader_keep_hours while the receiver was down, or damaged)");
            }
            let dir = self.tenants.directory();
            let mut items = Vec::with_capacity(records.len());
            for r in &records {
                let e = &r.event;
                let entry = dir.tenant(e.tenant);
                let code = entry.map(|t| t.code.as_str()).unwrap_or("");
                if (!tenants.is_empty() && !tenants.contains(code)) || (!classes.is_empty() && !classes.contains(&e.class.0)) || e.severity.0 < d.min_severity {
                    continue;
                }
                let info = TenantInfo { code: code.to_string(), name: entry.map(|t| t.name.clone()).unwrap_or_default() };
                items.push((e.received.unwrap_or(e.time), prepare(d, r, &info, &self.host)));
            }
            let next = reader.position();
            if items.is_empty() {
                // Nothing here for this destination: reading it again after a crash
                // sends nothing, so the cursor is saved at most once a second.
                if saved.elapsed() >= Duration::from_secs(1) {
                    cursor.save(next).await?;
                    saved = std::time::Instant::now();
                }
            } else {
                if !self.deliver(&mut sink, &items, &mut status, &status_dir, &label, &mut stop).await {
                    // Stopped before the receiver took this batch: it goes again next time.
                    cursor.save(status.position).await?;
                    status.write(&status_dir);
                    return Ok(());
                }
                // Everything before `next` is dealt with: durable before going on.
                cursor.save(next).await?;
                saved = std::time::Instant::now();
            }
            self.position.store(next, Ordering::Relaxed);
            status.position = next;
            status.end = self.bus.end();
            if next >= status.end {
                // Caught up: the page shows where it stands now.
                status.write(&status_dir);
            } else {
                status.write_at_most_every(&status_dir, Duration::from_secs(1));
            }
        }
    }

    /// Sends `items` until the receiver has taken or refused each; false when stopped
    /// first.
    async fn deliver(
        &self,
        sink: &mut Sink,
        items: &[(i64, Vec<u8>)],
        status: &mut Status,
        status_dir: &std::path::Path,
        label: &DestinationLabel,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let d = &self.prepared.destination;
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut backoff = Duration::from_secs(1);
        loop {
            let batch: Vec<&[u8]> = pending.iter().map(|i| items[*i].1.as_slice()).collect();
            let result = tokio::select! {
                r = sink.send(&batch) => r,
                _ = mamori_runtime::stopped(stop) => return false,
            };
            let now = mamori_core::time::now_ms();
            let error = match result {
                Ok(delivery) => {
                    for (_, why) in &delivery.rejected {
                        tracing::error!(destination = %d.name, reason = %why, "forwarding: the receiver refused an event; it is not sent again");
                        status.last_rejection = Some(status::Note { at: now, text: why.clone() });
                    }
                    let rejected = delivery.rejected.len() as u64;
                    let retry: Vec<usize> = delivery.retry.iter().filter_map(|j| pending.get(*j).copied()).collect();
                    let taken = (pending.len() - retry.len()).saturating_sub(delivery.rejected.len()) as u64;
                    self.metrics.sent.get_or_create(label).inc_by(taken);
                    self.metrics.rejected.get_or_create(label).inc_by(rejected);
                    status.sent += taken;
                    status.rejected += rejected;
                    if taken > 0 {
                        status.last_sent = Some(now);
                        self.metrics.last_sent.get_or_create(label).set(now / 1000);
                    }
                    if retry.is_empty() {
                        self.recovered(status, label);
                        return true;
                    }
                    let n = retry.len();
                    pending = retry;
                    SendError(format!("the receiver asked for {n} events again"))
                }
                Err(e) => e,
            };
            self.metrics.failures.get_or_create(label).inc();
            self.metrics.failing.get_or_create(label).set(1);
            let since = *status.failing_since.get_or_insert(now);
            status.last_error = Some(status::Note { at: now, text: error.0.clone() });
            status.oldest_pending = pending.first().map(|i| items[*i].0);
            status.end = self.bus.end();
            status.write_at_most_every(status_dir, Duration::from_secs(1));
            tracing::warn!(destination = %d.name, error = %error, retry_in = ?backoff, "forwarding: sending failed; trying again");
            if now - since >= NOTICE_AFTER_MS {
                self.health.notice(
                    &format!("forward_failing_{}", d.name),
                    format!("転送先「{}」（{}）へ送れません: {}", d.name, d.target(), error.0),
                    format!("cannot forward to '{}' ({}): {}", d.name, d.target(), error.0),
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = mamori_runtime::stopped(stop) => return false,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn recovered(&self, status: &mut Status, label: &DestinationLabel) {
        if status.failing_since.take().is_some() {
            tracing::info!(destination = %self.prepared.destination.name, "forwarding: the receiver takes events again");
            self.metrics.failing.get_or_create(label).set(0);
            self.health.clear_notice(&format!("forward_failing_{}", self.prepared.destination.name));
        }
        status.oldest_pending = None;
    }
}

/// Sets the lag gauge every second: acknowledged events not yet forwarded.
async fn report_lag(bus: Bus, position: Arc<AtomicU64>, gauge: Gauge, mut stop: watch::Receiver<bool>) {
    loop {
        gauge.set(bus.end().saturating_sub(position.load(Ordering::Relaxed)) as i64);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = mamori_runtime::stopped(&mut stop) => return,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

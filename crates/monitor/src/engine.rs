//! The monitoring engine: schedules checks, turns results into states, opens and closes
//! fault records, publishes state changes and drives notifications.
//!
//! One task owns all state (no locks around monitor state). Checks run as separate
//! tasks, at most `concurrency` at once, and send their results back over a channel;
//! results of remote probes arrive on the same channel ([`Inbox`]).
//!
//! State rules, per result:
//! - inside a maintenance window: MAINTENANCE (no fault, no notification);
//! - a passing check: UP or DEGRADED (warnings); an open fault closes (recovery);
//! - a failing check while a monitor it depends on is DOWN: UNREACHABLE (no fault);
//! - otherwise PENDING until `retries` further failures, then DOWN with a fault record
//!   whose start is the first failed check.
//!
//! A monitor that changes between available and unavailable `flap_threshold` times
//! within `flap_window` is FLAPPING: its fault stays open through short recoveries and
//! reminders and escalations pause, until it has been stable for the window.
//!
//! Requirements: service monitoring of F01–F05 and the fault records of F25.

use crate::events::{MonitorEvent, MonitorMetrics};
use crate::notify::{Notifier, NotifyPolicy, Why, targets};
use mamori_core::monitor::{CheckResult, Fault, FaultEntry, FaultId, Monitor, MonitorId, MonitorState, Reason, Status};
use mamori_core::{Tenant, TenantId};
use mamori_runtime::{Emitter, PolicyFeed, PolicySnapshot};
use mamori_store::{CrossTenant, Scope};
use mamori_store::{Store, StoreError};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Results kept in memory while the store cannot be written.
const MAX_PENDING_RESULTS: usize = 100_000;

/// Engine settings (component config).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Checks running at once.
    pub concurrency: usize,
    /// Days of raw results kept.
    pub results_days: u32,
    /// Window in which state changes count towards flapping.
    pub flap_window: Duration,
    /// State changes within the window that make a monitor flap.
    pub flap_threshold: usize,
    /// Checks of one tenant running at once (so one tenant's slow or black-holed
    /// targets cannot hold every slot).
    pub per_tenant: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { concurrency: 256, results_days: 35, flap_window: Duration::from_secs(30 * 60), flap_threshold: 6, per_tenant: 64 }
    }
}

/// Scheduling statistics: how late checks started against their due time.
#[derive(Debug, Default)]
pub struct Stats {
    /// Checks started.
    pub started: AtomicU64,
    /// Sum of start delays (µs).
    pub delay_sum_us: AtomicU64,
    /// Largest start delay (µs).
    pub delay_max_us: AtomicU64,
    /// Start delays over 1 s.
    pub late: AtomicU64,
    /// Results applied.
    pub results: AtomicU64,
}

impl Stats {
    fn record_delay(&self, d: Duration) {
        let us = d.as_micros() as u64;
        self.started.fetch_add(1, Ordering::Relaxed);
        self.delay_sum_us.fetch_add(us, Ordering::Relaxed);
        self.delay_max_us.fetch_max(us, Ordering::Relaxed);
        if d > Duration::from_secs(1) {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where remote probes' results are handed in.
#[derive(Clone, Debug)]
pub struct Inbox(mpsc::Sender<CheckResult>);

impl Inbox {
    /// Hands in a result; false when the engine is not running or is overloaded.
    pub fn submit(&self, r: CheckResult) -> bool {
        self.0.try_send(r).is_ok()
    }
}

struct Entry {
    monitor: Monitor,
    state: MonitorState,
    first_failure_at: Option<i64>,
    transitions: VecDeque<i64>,
    flapping: bool,
    running: bool,
    generation: u64,
    due: Instant,
}

struct Track {
    fault: Fault,
    steps_sent: usize,
    last_sent: i64,
    pending_close: Option<i64>,
}

/// The engine.
pub struct Engine {
    store: Store,
    events: Option<Emitter>,
    metrics: MonitorMetrics,
    notifier: Arc<Notifier>,
    cfg: EngineConfig,
    grant: CrossTenant,
    entries: HashMap<MonitorId, Entry>,
    heap: BinaryHeap<Reverse<(Instant, u64, MonitorId)>>,
    tx: mpsc::Sender<CheckResult>,
    rx: mpsc::Receiver<CheckResult>,
    semaphore: Arc<Semaphore>,
    tenant_slots: HashMap<TenantId, Arc<Semaphore>>,
    tenants: HashMap<TenantId, Tenant>,
    /// Notification policies: the default and each tenant's own, parsed once.
    policies: Arc<PolicySnapshot<NotifyPolicy>>,
    faults: HashMap<FaultId, Track>,
    dirty: HashMap<MonitorId, MonitorState>,
    results: Vec<CheckResult>,
    stats: Arc<Stats>,
    gen_counter: u64,
    /// Where the engine says what operators should know (mail not configured or
    /// failing); none in tests and benchmarks.
    health: Option<mamori_runtime::HealthReporter>,
}

/// Waits for the next change of the feed's policies; forever without a feed.
async fn policy_changes(feed: &mut Option<PolicyFeed<NotifyPolicy>>) -> Result<mamori_runtime::PolicyChanges, mamori_runtime::PolicyFeedError> {
    match feed {
        Some(f) => f.changed().await,
        None => std::future::pending().await,
    }
}

fn change_entry(at: i64, kind: &str, ja: String, en: String) -> FaultEntry {
    FaultEntry { at, kind: kind.into(), ja, en, actor: None }
}

impl Engine {
    /// Returns an engine over `store`; `events` receives state-change events.
    pub fn new(store: Store, events: Option<Emitter>, notifier: Notifier, cfg: EngineConfig, grant: CrossTenant) -> Self {
        let (tx, rx) = mpsc::channel(16_384);
        let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        Self {
            store,
            events,
            metrics: MonitorMetrics::default(),
            notifier: Arc::new(notifier),
            cfg,
            grant,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            tx,
            rx,
            semaphore,
            tenant_slots: HashMap::new(),
            tenants: HashMap::new(),
            policies: Arc::new(PolicySnapshot::fixed(NotifyPolicy::default(), HashMap::new())),
            faults: HashMap::new(),
            dirty: HashMap::new(),
            results: Vec::new(),
            stats: Arc::new(Stats::default()),
            gen_counter: 0,
            health: None,
        }
    }

    /// Returns the inbox for remote probes' results.
    pub fn inbox(&self) -> Inbox {
        Inbox(self.tx.clone())
    }

    /// Returns the scheduling statistics.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    fn scope(&self) -> Scope {
        self.grant.scope()
    }

    /// Sets the policies in force (notification steps per tenant).
    pub fn set_policies(&mut self, p: Arc<PolicySnapshot<NotifyPolicy>>) {
        self.policies = p;
    }

    /// Loads monitors, tenants, stored states and open faults; schedules what is new.
    /// `spread`: first checks of new monitors are spread over their interval (at
    /// start), else they run at once.
    pub async fn reload(&mut self, spread: bool) -> Result<(), StoreError> {
        let scope = self.scope();
        self.tenants = self.store.list_tenants(&scope).await?.into_iter().map(|t| (t.id, t)).collect();
        let monitors = self.store.list_monitors(&scope, None).await?;
        let first_load = self.entries.is_empty();
        let mut stored: HashMap<MonitorId, MonitorState> =
            if first_load { self.store.monitor_states(&scope, None).await?.into_iter().map(|s| (s.monitor, s)).collect() } else { HashMap::new() };
        if first_load {
            for f in self.store.open_faults(&self.grant).await? {
                let policy = self.policy_of(f.tenant);
                let elapsed_min = (mamori_core::time::now_ms() - f.opened_at) / 60_000;
                let steps_sent = policy.steps().iter().filter(|s| i64::from(s.after_minutes) <= elapsed_min).count().max(1);
                self.faults.insert(f.id, Track { fault: f, steps_sent, last_sent: mamori_core::time::now_ms(), pending_close: None });
            }
        }
        let now = Instant::now();
        let now_ms = mamori_core::time::now_ms();
        let mut seen = std::collections::HashSet::new();
        for m in monitors {
            seen.insert(m.id);
            let changed = match self.entries.get(&m.id) {
                Some(e) => e.monitor.updated_at != m.updated_at,
                None => true,
            };
            if !changed {
                continue;
            }
            let interval = Duration::from_secs(u64::from(m.spec.interval_secs));
            let due = if spread && first_load {
                let h = m.id.0.as_u128() as u64;
                now + Duration::from_millis(h % (interval.as_millis() as u64).max(1))
            } else {
                now
            };
            self.gen_counter += 1;
            let generation = self.gen_counter;
            let entry = match self.entries.remove(&m.id) {
                Some(mut e) => {
                    e.monitor = m;
                    e.generation = generation;
                    e.due = due;
                    e
                }
                None => {
                    let state = stored.remove(&m.id).unwrap_or(MonitorState {
                        monitor: m.id,
                        status: Status::Unknown,
                        since: now_ms,
                        last_check: 0,
                        last_rt_ms: 0,
                        reason: None,
                        failures: 0,
                        fault: None,
                        content_hash: None,
                    });
                    Entry { monitor: m, state, first_failure_at: None, transitions: VecDeque::new(), flapping: false, running: false, generation, due }
                }
            };
            let mut entry = entry;
            if !entry.monitor.spec.enabled {
                if entry.state.status != Status::Paused {
                    entry.state.status = Status::Paused;
                    entry.state.since = now_ms;
                    self.dirty.insert(entry.monitor.id, entry.state.clone());
                }
            } else {
                if entry.state.status == Status::Paused {
                    entry.state.status = Status::Unknown;
                    entry.state.since = now_ms;
                }
                let first = if entry.monitor.spec.probe.is_some() { now + probe_grace(&entry.monitor) } else { due };
                entry.due = first;
                self.heap.push(Reverse((first, generation, entry.monitor.id)));
            }
            self.entries.insert(entry.monitor.id, entry);
        }
        if first_load {
            self.reattach_faults(now_ms).await?;
        }
        let gone: Vec<MonitorId> = self.entries.keys().filter(|id| !seen.contains(id)).copied().collect();
        for id in gone {
            if let Some(e) = self.entries.remove(&id)
                && let Some(fid) = e.state.fault
            {
                let entry = change_entry(now_ms, "closed", "監視が削除されたため障害記録を閉じました".into(), "closed: the monitor was deleted".into());
                self.store.close_fault(&self.grant, fid, now_ms, &entry).await?;
                self.faults.remove(&fid);
            }
        }
        Ok(())
    }

    /// Links each open fault to its monitor's state (the link is saved a moment after
    /// the fault, so a crash in between must not leave the fault orphaned). A monitor
    /// keeps its newest open fault; older duplicates are closed.
    async fn reattach_faults(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let mut by_monitor: HashMap<MonitorId, Vec<(i64, FaultId)>> = HashMap::new();
        for t in self.faults.values() {
            by_monitor.entry(t.fault.monitor).or_default().push((t.fault.opened_at, t.fault.id));
        }
        for (monitor, mut list) in by_monitor {
            list.sort_unstable();
            let Some((_, newest)) = list.pop() else { continue };
            for (_, old) in list {
                let entry = change_entry(
                    now_ms,
                    "closed",
                    "同じ監視の新しい障害記録に引き継ぎました".into(),
                    "closed: superseded by a newer record of the same monitor".into(),
                );
                self.store.close_fault(&self.grant, old, now_ms, &entry).await?;
                self.faults.remove(&old);
            }
            match self.entries.get_mut(&monitor) {
                Some(e) if e.state.fault != Some(newest) => {
                    e.state.fault = Some(newest);
                    self.dirty.insert(monitor, e.state.clone());
                }
                Some(_) => {}
                None => {
                    let entry = change_entry(now_ms, "closed", "監視が削除されたため障害記録を閉じました".into(), "closed: the monitor was deleted".into());
                    self.store.close_fault(&self.grant, newest, now_ms, &entry).await?;
                    self.faults.remove(&newest);
                }
            }
        }
        Ok(())
    }

    fn policy_of(&self, tenant: TenantId) -> NotifyPolicy {
        self.policies.for_tenant(tenant).clone()
    }

    /// Starts every check that is due; returns when the next one is due.
    pub fn launch_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        while let Some(Reverse((due, generation, id))) = self.heap.peek().copied() {
            if due > now {
                return Some(due);
            }
            self.heap.pop();
            let Some(e) = self.entries.get_mut(&id) else { continue };
            if e.generation != generation || !e.monitor.spec.enabled {
                continue;
            }
            if e.monitor.spec.probe.is_some() {
                // A probe's monitor is due here only when its probe stayed silent.
                let r = CheckResult {
                    monitor: id,
                    at: mamori_core::time::now_ms(),
                    status: Status::Down,
                    rt_ms: 0,
                    reason: Some(Reason::new(
                        "probe_silent",
                        "リモートプローブから結果が届いていません（プローブ停止または通信断）",
                        "no result from the remote probe (probe down or unreachable)",
                    )),
                    details: json!({}),
                };
                if self.tx.try_send(r).is_err() {
                    // The inbox is full: look again shortly.
                    let due = now + Duration::from_secs(5);
                    e.due = due;
                    self.heap.push(Reverse((due, generation, id)));
                }
                continue;
            }
            if e.running {
                continue;
            }
            e.running = true;
            let spec = e.monitor.spec.clone();
            let per_tenant = self.cfg.per_tenant.max(1);
            let slots = self.tenant_slots.entry(e.monitor.tenant).or_insert_with(|| Arc::new(Semaphore::new(per_tenant))).clone();
            let (tx, sem, stats) = (self.tx.clone(), self.semaphore.clone(), self.stats.clone());
            tokio::spawn(async move {
                let Ok(_tenant_permit) = slots.acquire_owned().await else { return };
                let Ok(_permit) = sem.acquire_owned().await else { return };
                stats.record_delay(Instant::now().saturating_duration_since(due));
                let r = crate::check::run(id, &spec).await;
                let _ = tx.send(r).await;
            });
        }
        None
    }

    fn schedule(&mut self, id: MonitorId, after: Duration) {
        if let Some(e) = self.entries.get_mut(&id) {
            // Keep the cadence: the next due time follows the previous one, not the
            // end of the check, so slow checks do not drift.
            let base = if e.due + after > Instant::now() { e.due } else { Instant::now() };
            e.due = base + after;
            self.heap.push(Reverse((e.due, e.generation, id)));
        }
    }

    /// Applies one result: state, fault records, events, notifications.
    pub async fn apply(&mut self, mut r: CheckResult) -> Result<(), StoreError> {
        self.stats.results.fetch_add(1, Ordering::Relaxed);
        let (dep_down, dep_pending) = {
            let Some(e) = self.entries.get(&r.monitor) else { return Ok(()) };
            // A paused monitor's late result (a check in flight when it was paused)
            // changes nothing.
            if !e.monitor.spec.enabled {
                return Ok(());
            }
            // Probe results come at most about twice per interval; more is a flood.
            if e.monitor.spec.probe.is_some() && r.reason.as_ref().is_none_or(|x| x.code != "probe_silent") {
                let min_gap = i64::from(e.monitor.spec.interval_secs) * 500;
                if e.state.last_check > 0 && r.at.saturating_sub(e.state.last_check) < min_gap {
                    return Ok(());
                }
            }
            let dep = e.monitor.spec.depends_on.and_then(|d| self.entries.get(&d)).map(|d| d.state.status);
            (matches!(dep, Some(Status::Down | Status::Unreachable | Status::Maintenance)), matches!(dep, Some(Status::Pending)))
        };
        let now = r.at;
        let flap_window_ms = self.cfg.flap_window.as_millis() as i64;
        let flap_threshold = self.cfg.flap_threshold;
        let Some(e) = self.entries.get_mut(&r.monitor) else { return Ok(()) };
        e.running = false;
        let mut events = Vec::new();
        // Content tracking (tamper detection later builds on this).
        if let Some(h) = r.details.get("content_sha256").and_then(|v| v.as_str()).map(String::from) {
            if let Some(old) = &e.state.content_hash
                && *old != h
                && r.status != Status::Down
            {
                r.status = Status::Degraded;
                r.reason = Some(Reason::new("content_changed", "ページの内容が前回から変わりました", "the page content changed since the last check"));
                events.push(MonitorEvent::ContentChanged {
                    tenant: e.monitor.tenant,
                    at: now,
                    monitor: e.monitor.id,
                    name: e.monitor.spec.name.clone(),
                    sha256: h.clone(),
                    previous: old.clone(),
                });
            }
            e.state.content_hash = Some(h);
        }
        let spec = &e.monitor.spec;
        let old = e.state.status;
        let failed = r.status == Status::Down;
        let in_maint = spec.maintenance.iter().any(|m| m.covers(now));
        // Failures count only where they can lead to a fault: not inside maintenance,
        // not while a dependency explains them.
        if failed && !in_maint && !dep_down {
            e.state.failures += 1;
            e.first_failure_at.get_or_insert(now);
        } else {
            e.state.failures = 0;
            e.first_failure_at = None;
        }
        let new = if in_maint {
            Status::Maintenance
        } else if !failed {
            r.status
        } else if dep_down {
            Status::Unreachable
        } else if old == Status::Down || (e.state.failures > spec.retries && !dep_pending) {
            Status::Down
        } else {
            Status::Pending
        };
        e.state.last_check = now;
        e.state.last_rt_ms = r.rt_ms;
        e.state.reason = r.reason.clone();
        e.state.status = new;
        if new != old {
            e.state.since = now;
            if old.is_available() != new.is_available() && old != Status::Unknown {
                e.transitions.push_back(now);
            }
        }
        while e.transitions.front().is_some_and(|t| now - t > flap_window_ms) {
            e.transitions.pop_front();
        }
        let was_flapping = e.flapping;
        e.flapping = if e.flapping { !e.transitions.is_empty() } else { e.transitions.len() >= flap_threshold };
        let (tenant, id, name, retries) = (e.monitor.tenant, e.monitor.id, spec.name.clone(), spec.retries);
        let interval = Duration::from_secs(u64::from(spec.interval_secs));
        let retry = Duration::from_secs(u64::from(spec.retry_interval_secs));
        let first_failure = e.first_failure_at.unwrap_or(now);
        let probe = spec.probe.is_some();
        let flapping = e.flapping;
        let fault_id = e.state.fault;
        if new != old {
            events.push(MonitorEvent::StateChanged { tenant, at: now, monitor: id, name: name.clone(), from: old, to: new, reason: r.reason.clone() });
        }
        self.dirty.insert(id, self.entries[&id].state.clone());
        self.results.push(r.clone());

        // Schedule first: a store error below must not drop the monitor from the
        // schedule.
        if probe {
            // Re-arm the silence watchdog; older watchdog entries lapse with the
            // generation.
            self.gen_counter += 1;
            let generation = self.gen_counter;
            if let Some(e) = self.entries.get_mut(&id) {
                e.generation = generation;
                e.due = Instant::now() + probe_grace(&e.monitor);
                self.heap.push(Reverse((e.due, generation, id)));
            }
        } else {
            let after =
                if matches!(new, Status::Pending) || (failed && new != Status::Down && new != Status::Unreachable) { retry.min(interval) } else { interval };
            self.schedule(id, after);
        }
        // Fault records.
        match (fault_id, new) {
            (None, Status::Down) => {
                let cause = r.reason.clone().unwrap_or_else(|| Reason::new("unknown", "原因不明", "unknown cause"));
                let fault = Fault {
                    id: FaultId::new(),
                    tenant,
                    monitor: id,
                    monitor_name: name.clone(),
                    opened_at: first_failure,
                    closed_at: None,
                    cause: cause.clone(),
                    acknowledged_by: None,
                    timeline: vec![change_entry(
                        now,
                        "opened",
                        // The count first: the cause often ends in brackets of its own.
                        format!("障害を検知しました（{}回連続で失敗）: {}", retries + 1, cause.ja),
                        format!("fault detected ({} failed checks in a row): {}", retries + 1, cause.en),
                    )],
                    notifications: vec![],
                };
                self.store.open_fault(&self.grant, &fault).await?;
                if let Some(e) = self.entries.get_mut(&id) {
                    e.state.fault = Some(fault.id);
                    self.dirty.insert(id, e.state.clone());
                }
                let track = Track { fault, steps_sent: 0, last_sent: now, pending_close: None };
                let fid = track.fault.id;
                self.faults.insert(fid, track);
                self.escalate_one(fid, now).await?;
            }
            (Some(fid), s) if s.is_available() || (s == Status::Maintenance && !failed) => {
                if flapping {
                    if let Some(t) = self.faults.get_mut(&fid)
                        && t.pending_close.is_none()
                    {
                        t.pending_close = Some(now);
                        self.store
                            .add_fault_entry(
                                &self.grant,
                                fid,
                                &change_entry(
                                    now,
                                    "check",
                                    "一時的に回復しました（不安定なため、安定を確認してから障害記録を閉じます）".into(),
                                    "recovered for now (flapping: the record closes once stable)".into(),
                                ),
                            )
                            .await?;
                    }
                } else {
                    self.close(id, fid, now).await?;
                }
            }
            (Some(fid), _) if failed => {
                if let Some(t) = self.faults.get_mut(&fid)
                    && t.pending_close.take().is_some()
                {
                    self.store.add_fault_entry(&self.grant, fid, &change_entry(now, "check", "再び失敗しました".into(), "failing again".into())).await?;
                }
            }
            _ => {}
        }
        if flapping && !was_flapping {
            if let Some(fid) = self.entries.get(&id).and_then(|e| e.state.fault) {
                self.store
                    .add_fault_entry(
                        &self.grant,
                        fid,
                        &change_entry(
                            now,
                            "flapping",
                            "状態が短時間に何度も変わっています（フラッピング）。安定するまで再通知を止めます".into(),
                            "flapping: state keeps changing; reminders pause until stable".into(),
                        ),
                    )
                    .await?;
            }
        } else if was_flapping
            && !flapping
            && let Some(e) = self.entries.get(&id)
            && let Some(fid) = e.state.fault
            && let Some(at) = self.faults.get(&fid).and_then(|t| t.pending_close)
            && e.state.status.is_available()
        {
            self.close(id, fid, at).await?;
        }
        if let Some(emitter) = &self.events
            && !events.is_empty()
            && let Err(err) = emitter.emit(events).await
        {
            tracing::warn!(error = %err, "cannot publish monitor events");
        }
        Ok(())
    }

    async fn close(&mut self, monitor: MonitorId, fid: FaultId, at: i64) -> Result<(), StoreError> {
        let Some(t) = self.faults.get(&fid) else {
            // Not tracked (e.g. beyond what was loaded): close the record all the same.
            let entry = change_entry(at, "closed", "復旧しました".into(), "recovered".into());
            self.store.close_fault(&self.grant, fid, at, &entry).await?;
            if let Some(e) = self.entries.get_mut(&monitor) {
                e.state.fault = None;
                self.dirty.insert(monitor, e.state.clone());
            }
            return Ok(());
        };
        let minutes = (at - t.fault.opened_at).max(0) / 60_000;
        let entry = change_entry(at, "closed", format!("復旧しました（障害時間 {minutes}分）"), format!("recovered (down for {minutes} min)"));
        self.store.close_fault(&self.grant, fid, at, &entry).await?;
        let Some(mut t) = self.faults.remove(&fid) else { return Ok(()) };
        t.fault.closed_at = Some(at);
        if let Some(e) = self.entries.get_mut(&monitor) {
            e.state.fault = None;
            self.dirty.insert(monitor, e.state.clone());
        }
        let policy = self.policy_of(t.fault.tenant);
        if policy.notify_recovery && t.steps_sent > 0 {
            let (emails, hooks) = self.reached_targets(&t, &policy);
            self.spawn_notify(t.fault.clone(), Why::Up, 0, emails, hooks);
        }
        Ok(())
    }

    fn reached_targets(&self, t: &Track, policy: &NotifyPolicy) -> (Vec<String>, Vec<String>) {
        let tenant = self.tenants.get(&t.fault.tenant);
        let steps = policy.steps().iter().take(t.steps_sent).enumerate();
        crate::notify::merge_targets(steps.map(|(i, step)| targets(step, tenant, &self.notifier.always, i == 0)))
    }

    fn spawn_notify(&self, fault: Fault, why: Why, step: u32, emails: Vec<String>, hooks: Vec<String>) {
        if emails.is_empty() && hooks.is_empty() {
            return;
        }
        let (notifier, store, grant) = (self.notifier.clone(), self.store.clone(), self.grant.clone());
        let tenant_name = self.tenants.get(&fault.tenant).map(|t| t.name.clone()).unwrap_or_default();
        let tenant_hooks = self.policies.has_own(fault.tenant);
        let health = self.health.clone();
        tokio::spawn(async move {
            let sent = notifier.send(&fault, &tenant_name, why, step, &emails, &hooks, tenant_hooks).await;
            if let Some(h) = &health {
                crate::notify::note_outcome(h, &sent);
            }
            for n in sent {
                if let Err(e) = store.add_fault_notification(&grant, fault.id, &n).await {
                    tracing::warn!(error = %e, "cannot record a notification");
                }
            }
        });
    }

    /// Sends due escalation steps and reminders of every open fault.
    pub async fn escalate(&mut self, now: i64) -> Result<(), StoreError> {
        let ids: Vec<FaultId> = self.faults.keys().copied().collect();
        for fid in ids {
            self.escalate_one(fid, now).await?;
        }
        Ok(())
    }

    /// Sends one fault's due escalation steps and reminder.
    async fn escalate_one(&mut self, fid: FaultId, now: i64) -> Result<(), StoreError> {
        let Some((tenant, monitor)) = self.faults.get(&fid).map(|t| (t.fault.tenant, t.fault.monitor)) else { return Ok(()) };
        // Nobody is told about a paused monitor or one in maintenance.
        if self.entries.get(&monitor).is_some_and(|e| !e.monitor.spec.enabled || e.state.status == Status::Maintenance) {
            return Ok(());
        }
        let flapping = self.entries.get(&monitor).is_some_and(|e| e.flapping);
        let policy = self.policy_of(tenant);
        let elapsed = now - self.faults[&fid].fault.opened_at;
        // Escalation steps reached by now (while flapping, only the first).
        loop {
            let t = &self.faults[&fid];
            let i = t.steps_sent;
            let Some(step) = policy.steps().get(i) else { break };
            if i64::from(step.after_minutes) * 60_000 > elapsed || (flapping && i > 0) {
                break;
            }
            let (emails, hooks) = targets(step, self.tenants.get(&tenant), &self.notifier.always, i == 0);
            let f = t.fault.clone();
            if i > 0 {
                self.store
                    .add_fault_entry(
                        &self.grant,
                        fid,
                        &change_entry(
                            now,
                            "escalated",
                            format!("エスカレーション {} 段階目（発生から{}分）", i + 1, step.after_minutes),
                            format!("escalation step {} ({} min after opening)", i + 1, step.after_minutes),
                        ),
                    )
                    .await?;
            }
            self.spawn_notify(f, Why::Down, i as u32, emails, hooks);
            if let Some(t) = self.faults.get_mut(&fid) {
                t.steps_sent = i + 1;
                t.last_sent = now;
            }
        }
        let t = &self.faults[&fid];
        if policy.repeat_minutes > 0
            && !flapping
            && t.pending_close.is_none()
            && t.fault.acknowledged_by.is_none()
            && now - t.last_sent >= i64::from(policy.repeat_minutes) * 60_000
        {
            let (emails, hooks) = self.reached_targets(t, &policy);
            let f = t.fault.clone();
            let step = t.steps_sent.saturating_sub(1) as u32;
            self.spawn_notify(f, Why::Repeat, step, emails, hooks);
            if let Some(t) = self.faults.get_mut(&fid) {
                t.last_sent = now;
            }
        }
        Ok(())
    }

    async fn apply_logged(&mut self, r: CheckResult) {
        let id = r.monitor;
        self.metrics.result(r.status);
        if let Err(e) = self.apply(r).await {
            tracing::error!(monitor = %id, error = %e, "cannot record a monitor result");
        }
    }

    /// Refreshes acknowledgements made in the console.
    pub async fn refresh_faults(&mut self) -> Result<(), StoreError> {
        let open = self.store.open_faults(&self.grant).await?;
        for f in open {
            if let Some(t) = self.faults.get_mut(&f.id) {
                t.fault.acknowledged_by = f.acknowledged_by;
            }
        }
        Ok(())
    }

    /// Writes pending states and results.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if self.dirty.is_empty() && self.results.is_empty() {
            return Ok(());
        }
        let states: Vec<MonitorState> = self.dirty.drain().map(|(_, s)| s).collect();
        let results = std::mem::take(&mut self.results);
        if let Err(e) = self.store.save_monitor_batch(&self.grant, &states, &results).await {
            // Keep what was not saved for the next try (newer states win); results are
            // bounded so a long outage cannot eat the memory.
            for s in states {
                self.dirty.entry(s.monitor).or_insert(s);
            }
            let mut results = results;
            results.append(&mut self.results);
            let keep = results.len().saturating_sub(MAX_PENDING_RESULTS);
            self.results = results.split_off(keep);
            return Err(e);
        }
        Ok(())
    }

    /// Applies the results remote probes posted (to whichever node), then deletes them.
    /// A crash between the two applies a result twice, which changes nothing.
    async fn drain_probe_inbox(&mut self) -> Result<(), StoreError> {
        for _ in 0..10 {
            let queued = self.store.queued_probe_results(&self.grant, 1000).await?;
            let Some(last) = queued.last().map(|(seq, _)| *seq) else { return Ok(()) };
            let n = queued.len();
            for (_, r) in queued {
                // Only monitors this engine runs that a probe is assigned to.
                if self.entries.get(&r.monitor).is_some_and(|e| e.monitor.spec.probe.is_some()) {
                    self.apply_logged(r).await;
                }
            }
            self.store.delete_probe_results(&self.grant, last).await?;
            if n < 1000 {
                break;
            }
        }
        Ok(())
    }

    /// Sends the test notifications people asked for (on any node), each in a task of
    /// its own, and writes back how each delivery went.
    async fn send_notify_tests(&mut self) -> Result<(), StoreError> {
        for test in self.store.take_notify_tests(&self.grant, 20).await? {
            let tenant = test.tenant.and_then(|t| self.tenants.get(&t)).cloned();
            if test.tenant.is_some() && tenant.is_none() {
                // A tenant this engine does not know yet (just created): next reload.
                continue;
            }
            let policy = test.tenant.map(|t| self.policy_of(t)).unwrap_or_default();
            let (emails, hooks) = crate::notify::test_targets(&policy, tenant.as_ref(), &self.notifier.always);
            let tenant_hooks = test.tenant.is_some_and(|t| self.policies.has_own(t));
            let (notifier, store, grant, health) = (self.notifier.clone(), self.store.clone(), self.grant.clone(), self.health.clone());
            tokio::spawn(async move {
                let named = tenant.as_ref().map(|t| (t.id, t.name.as_str()));
                let sent = notifier.send_test(named, &test.requested_by, &emails, &hooks, tenant_hooks).await;
                if let Some(h) = &health {
                    crate::notify::note_outcome(h, &sent);
                }
                if let Err(e) = store.finish_notify_test(&grant, test.id, &sent).await {
                    tracing::warn!(error = %e, "cannot record a test notification; it is sent again later");
                }
            });
        }
        Ok(())
    }

    /// Reports through `health` what operators should know: a mail server that is
    /// not configured (said each time the engine starts to run: a component that
    /// stops running takes its notices back), mail that cannot be sent.
    pub fn with_health(mut self, health: mamori_runtime::HealthReporter) -> Self {
        self.health = Some(health);
        self
    }

    fn say_mail_server(&self) {
        let Some(health) = &self.health else { return };
        if self.notifier.mail.is_none() {
            health.notice(
                "no_mail_server",
                "メールサーバーが設定されていないため、障害通知のメールは送信されず、記録だけが残ります（mamori.toml の [components.monitor] smtp_host）。",
                "No mail server is configured: fault notification mail is not sent, only recorded ([components.monitor] smtp_host in mamori.toml).",
            );
        } else {
            health.clear_notice("no_mail_server");
        }
    }

    /// Counts results in these counters (registered in the node's registry).
    pub fn with_metrics(mut self, metrics: MonitorMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Deletes results older than the configured days.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        self.store.purge_monitor_results(&self.grant, mamori_core::time::now_ms() - i64::from(self.cfg.results_days) * 86_400_000).await
    }

    /// Runs until `shutdown` turns true, following the component's typed policies
    /// through `feed` (None: the policies set before, for tests and benchmarks).
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>, mut feed: Option<PolicyFeed<NotifyPolicy>>) -> Result<(), StoreError> {
        if let Some(f) = &feed {
            self.set_policies(f.snapshot());
        }
        self.say_mail_server();
        self.reload(true).await?;
        let mut changed = self.store.watch_monitors();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            let next = self.launch_due().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                Some(r) = self.rx.recv() => {
                    self.apply_logged(r).await;
                    // Apply some more of what is waiting before scheduling again (bounded, so
                    // a flood of results cannot starve the schedule and the flushes).
                    for _ in 0..256 {
                        let Ok(r) = self.rx.try_recv() else { break };
                        self.apply_logged(r).await;
                    }
                }
                _ = tick.tick() => {
                    ticks += 1;
                    // Results remote probes posted to any node.
                    if let Err(e) = self.drain_probe_inbox().await {
                        tracing::error!(error = %e, "cannot read queued probe results; retrying");
                    }
                    // Test notifications asked for on any node.
                    if let Err(e) = self.send_notify_tests().await {
                        tracing::error!(error = %e, "cannot read test notifications; retrying");
                    }
                    // A store that cannot be written (locked, disconnected) must not stop
                    // monitoring: log, keep the state, try again on the next tick.
                    if let Err(e) = self.flush().await {
                        tracing::error!(error = %e, "cannot save monitor states; retrying");
                    }
                    if ticks.is_multiple_of(10) {
                        let refreshed = match self.refresh_faults().await {
                            Ok(()) => self.escalate(mamori_core::time::now_ms()).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = refreshed {
                            tracing::error!(error = %e, "cannot escalate faults; retrying");
                        }
                    }
                    if ticks.is_multiple_of(30) {
                        // Changes made by other nodes on a shared database.
                        if let Err(e) = self.reload(false).await {
                            tracing::error!(error = %e, "cannot reload monitors; retrying");
                        }
                    }
                    if ticks % 3600 == 1 {
                        match self.purge().await {
                            Ok(n) if n > 0 => tracing::info!(deleted = n, "purged old monitor results"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot purge old monitor results"),
                        }
                    }
                }
                Ok(()) = changed.changed() => {
                    if let Err(e) = self.reload(false).await {
                        tracing::error!(error = %e, "cannot reload monitors; retrying");
                    }
                }
                changes = policy_changes(&mut feed) => match changes {
                    // Escalations read the tenant's policy when they are due: the new
                    // snapshot is all there is to do.
                    Ok(c) => {
                        if let Some(f) = &feed {
                            tracing::debug!(default = c.default, tenants = c.tenants.len(), "monitor policies changed");
                            self.set_policies(f.snapshot());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read changed monitor policies; keeping the previous ones"),
                },
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.flush().await?;
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// How long the core waits for a probe's result before calling the probe silent.
fn probe_grace(m: &Monitor) -> Duration {
    Duration::from_secs(u64::from(m.spec.interval_secs) * 3 + 30)
}

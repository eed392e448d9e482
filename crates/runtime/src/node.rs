//! One node: checks the components' config, binds their listeners, builds them, runs
//! each under a supervisor (placement, restarts), reports health, and stops them all
//! in parallel.
//!
//! ```text
//! Plan::check ──► Plan::bind ──► (drop privileges) ──► BoundPlan::start ──► Running::shutdown
//!  no I/O,          listeners        the binary          build (I/O once),     stop all, drain
//!  every problem                                         supervise each        until the grace
//! ```

use crate::component::{AnyComponent, BuildCx, Checked, Placement, Registry, RunCx, Service};
use crate::event::{Emitter, RuntimeEvent};
use crate::health::{Health, HealthReporter, State};
use crate::listen::{self, Bound, Resource};
use crate::metrics::{ComponentLabels, Metrics, RestartLabels};
use crate::tenants::TenantResolver;
use mamori_bus::Bus;
use mamori_store::{Authority, NodeReport, Store};
use mamori_vault::Vault;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of a node (`[server]` and `[server.cluster]` of mamori.toml).
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The node's name in the console; unique per machine is enough.
    pub name: String,
    /// How long a singleton's lease lasts unrenewed; a killed node's singletons move
    /// to another node within about this time.
    pub lease_ttl: Duration,
    /// How long components get to finish on shutdown, all together.
    pub shutdown_grace: Duration,
    /// How often the node reports itself to the config store.
    pub report_interval: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self { name: hostname(), lease_ttl: Duration::from_secs(15), shutdown_grace: Duration::from_secs(10), report_interval: Duration::from_secs(5) }
    }
}

/// Returns this machine's host name, or `mamori` when it has none.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "mamori".into())
}

/// This node: who it is, its components' health, its metrics.
#[derive(Clone)]
pub struct Node {
    /// Unique per process: the name and a random suffix.
    pub id: Arc<str>,
    /// The name given in the settings.
    pub name: Arc<str>,
    /// When the process started (Unix ms).
    pub started_at: i64,
    /// The health of its components.
    pub health: Health,
    /// Its metrics registry.
    pub metrics: Metrics,
    options: Arc<NodeOptions>,
}

impl Default for Node {
    fn default() -> Self {
        Self::new(NodeOptions::default())
    }
}

impl Node {
    /// Returns a node with no components yet.
    pub fn new(options: NodeOptions) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            id: format!("{}-{}", options.name, &suffix[..8]).into(),
            name: options.name.clone().into(),
            started_at: mamori_core::time::now_ms(),
            health: Health::default(),
            metrics: Metrics::default(),
            options: Arc::new(options),
        }
    }

    /// Returns what `/healthz` shows: 'ok' when every component is ready.
    pub fn health_document(&self) -> Value {
        json!({
            "node": { "id": &*self.id, "name": &*self.name },
            "ready": self.health.ready(),
            "components": self.health.snapshot(),
        })
    }
}

/// The lease name of a singleton component.
pub fn lease_name(component: &str) -> String {
    format!("component:{component}")
}

struct Planned {
    component: Arc<dyn AnyComponent>,
    checked: Checked,
}

/// The components a node will run, with their configs checked.
pub struct Plan {
    entries: Vec<Planned>,
}

impl Plan {
    /// Checks every known component's section (`sections`: name → JSON) and keeps
    /// those `selected` says this node runs. Refuses sections of unknown components and
    /// listeners that clash with each other or with `reserved` (the console's). Returns
    /// every problem, each prefixed with its section.
    pub fn check(
        registry: &Registry,
        sections: &BTreeMap<String, Value>,
        selected: impl Fn(&str) -> bool,
        reserved: &[(String, Resource)],
    ) -> Result<Plan, Vec<String>> {
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for c in registry.all() {
            let section = sections.get(c.name()).cloned().unwrap_or(Value::Null);
            match c.check(&section) {
                Ok(checked) if selected(c.name()) => entries.push(Planned { component: c.clone(), checked }),
                Ok(_) => {}
                Err(p) => problems.extend(p.0.iter().map(|p| format!("[components.{}] {p}", c.name()))),
            }
        }
        for name in sections.keys().filter(|n| registry.get(n).is_none()) {
            let known: Vec<&str> = registry.all().iter().map(|c| c.name()).collect();
            problems.push(format!("[components.{name}] no such component (known: {}) / そのようなコンポーネントはありません", known.join(", ")));
        }
        let plan = Plan { entries };
        let mut all: Vec<(String, Resource)> = reserved.to_vec();
        all.extend(plan.resources());
        problems.extend(listen::clashes(&all));
        if problems.is_empty() { Ok(plan) } else { Err(problems) }
    }

    /// Returns the listeners of the planned components, by component.
    pub fn resources(&self) -> Vec<(String, Resource)> {
        self.entries.iter().flat_map(|p| p.checked.resources.iter().map(|r| (p.component.name().to_string(), r.clone()))).collect()
    }

    /// Binds every listener. Call it before giving up root.
    pub fn bind(self) -> Result<BoundPlan, String> {
        let bound = Bound::bind(&self.resources())
            .map_err(|(r, e)| format!("cannot listen on {} ({}, listener '{}'): {e} / 待ち受けできません", r.addr, r.transport.as_str(), r.name))?;
        Ok(BoundPlan { entries: self.entries, bound })
    }
}

/// Components with their listeners bound, ready to build.
pub struct BoundPlan {
    entries: Vec<Planned>,
    bound: Bound,
}

impl BoundPlan {
    /// Returns the address a listener was bound to (port 0 picks one).
    pub fn local_addr(&self, component: &str, listener: &str) -> Option<std::net::SocketAddr> {
        self.bound.local_addr(component, listener)
    }

    /// Builds every component (each does its I/O once), then starts each under its
    /// supervisor. A component that cannot be built stops the start: the error names
    /// every component that failed.
    ///
    /// The `authority` mints each component's cross-tenant grant (and the tenant
    /// resolver's), once, in the audit log.
    pub async fn start(self, node: &Node, store: Store, authority: &Authority, bus: Bus, vault: Vault) -> Result<Running, Vec<String>> {
        let mut built = Vec::new();
        let mut problems = Vec::new();
        let on = format!("start of node {}", node.id);
        let resolver_grant = authority.grant("runtime:tenant-resolver", &on).await.map_err(|e| vec![format!("tenant directory: {e}")])?;
        let tenants = TenantResolver::load(&store, &resolver_grant).await.map_err(|e| vec![format!("tenant directory: {e}")])?;
        for p in self.entries {
            let name = p.component.name();
            let reporter = node.health.reporter(name, p.component.placement());
            let grant = match authority.grant(&format!("component:{name}"), &on).await {
                Ok(g) => g,
                Err(e) => {
                    problems.push(format!("[components.{name}] {e}"));
                    continue;
                }
            };
            let cx = BuildCx {
                name,
                store: store.clone(),
                bus: bus.clone(),
                metrics: node.metrics.clone(),
                tenants: tenants.clone(),
                vault: vault.clone(),
                grant: grant.clone(),
            };
            match p.component.clone().build(p.checked, cx).await {
                Ok(service) => built.push((p.component, service, reporter, grant)),
                Err(e) => problems.push(format!("[components.{name}] {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (component, service, reporter, grant) in built {
            let name = component.name();
            let cx = RunCx {
                name,
                store: store.clone(),
                events: Emitter::new(name, bus.clone(), &node.metrics),
                stop: stop_rx.clone(),
                health: reporter.clone(),
                tenants: tenants.clone(),
                vault: vault.clone(),
                listeners: self.bound.clone(),
                validator: component.policy(),
                grant,
            };
            let sup = Supervisor { node: node.clone(), service, reporter, cx };
            tasks.push(tokio::spawn(match component.placement() {
                Placement::Replicated => Box::pin(sup.replicated()) as crate::BoxFuture<()>,
                Placement::Singleton => Box::pin(sup.singleton()),
            }));
        }
        let refresh = tenants.spawn_refresh(store.clone(), resolver_grant, stop_rx.clone());
        let reports = tokio::spawn(report_loop(node.clone(), store.clone(), stop_rx));
        Ok(Running { node: node.clone(), store, stop_tx, tasks, reports, refresh, tenants })
    }
}

/// The running components of a node.
pub struct Running {
    node: Node,
    store: Store,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    reports: JoinHandle<()>,
    refresh: JoinHandle<()>,
    tenants: TenantResolver,
}

impl Running {
    /// Returns the node's tenant resolver (the one its components use).
    pub fn tenants(&self) -> &TenantResolver {
        &self.tenants
    }

    /// Stops every component at once and waits for them, together, until the node's
    /// shutdown grace; what has not finished by then is dropped. Singletons give their
    /// leases up, so another node takes over at once.
    pub async fn shutdown(self) {
        for c in self.node.health.snapshot() {
            if c.state != State::Stopped {
                self.node.health.reporter_of(c.name).set(State::Stopping, None);
            }
        }
        let _ = self.stop_tx.send(true);
        let grace = self.node.options.shutdown_grace;
        let all = futures_join(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(grace_secs = grace.as_secs(), "components did not finish within the shutdown grace; stopping them");
        }
        let _ = self.reports.await;
        let _ = self.refresh.await;
        let _ = report(&self.node, &self.store).await;
    }
}

/// Waits for every task; aborts those still running when dropped (the grace ran out).
async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    struct AbortAll(Vec<tokio::task::AbortHandle>);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            for h in &self.0 {
                h.abort();
            }
        }
    }
    let _guard = AbortAll(tasks.iter().map(|t| t.abort_handle()).collect());
    for t in tasks {
        let _ = t.await;
    }
}

struct Supervisor {
    node: Node,
    service: Arc<dyn Service>,
    reporter: HealthReporter,
    cx: RunCx,
}

/// First pause before a restart; doubles up to [`MAX_BACKOFF`], and starts again from
/// here after a run of [`STABLE_RUN`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const STABLE_RUN: Duration = Duration::from_secs(60);

impl Supervisor {
    fn labels(&self) -> ComponentLabels {
        ComponentLabels { component: self.cx.name }
    }

    /// Publishes a runtime event of the prefecture (none before a prefecture exists).
    async fn tell(&self, make: impl FnOnce(mamori_core::TenantId) -> RuntimeEvent) {
        let scope = self.cx.system_grant().scope();
        let prefecture = match self.cx.store.list_tenants(&scope).await {
            Ok(list) => list.into_iter().find(|t| t.kind == mamori_core::TenantKind::Prefecture).map(|t| t.id),
            Err(e) => {
                tracing::warn!(component = self.cx.name, error = %e, "cannot find the prefecture for a runtime event");
                None
            }
        };
        if let Some(tenant) = prefecture
            && let Err(e) = self.cx.events.emit([make(tenant)]).await
        {
            tracing::warn!(component = self.cx.name, error = %e, "cannot publish a runtime event");
        }
    }

    fn mark(&self, state: State, reason: Option<String>) {
        self.reporter.set(state, reason);
        self.node.metrics.runtime.ready.get_or_create(&self.labels()).set(i64::from(state.is_ready()));
    }

    /// Runs on every node that runs the component.
    async fn replicated(self) {
        let stop = self.cx.stop.clone();
        self.run_restarting(self.cx.clone(), stop).await;
    }

    /// Runs where the component's lease is held; stands by elsewhere.
    async fn singleton(self) {
        let name = self.cx.name;
        let lease = lease_name(name);
        let ttl = self.node.options.lease_ttl;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let renew_every = ttl / 3;
        let mut node_stop = self.cx.stop.clone();
        let store = self.cx.store.clone();
        let holder = self.node.id.clone();
        let acquire = || {
            let (store, lease, holder) = (store.clone(), lease.clone(), holder.clone());
            async move {
                match tokio::time::timeout(renew_every, store.acquire_lease(&lease, &holder, ttl_ms)).await {
                    Ok(Ok(l)) => Ok(l),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the config store did not answer in time".to_string()),
                }
            }
        };
        loop {
            self.mark(State::Standby, None);
            // Stand by until the lease is ours.
            let epoch = loop {
                match acquire().await {
                    Ok(Some(l)) => break l.epoch,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(component = name, error = %e, "cannot ask for the singleton lease"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(renew_every) => {}
                    _ = crate::stopped(&mut node_stop) => { self.mark(State::Stopped, None); return; }
                }
            };
            tracing::info!(component = name, node = &*self.node.id, epoch, "lease taken: this node runs the component");
            self.reporter.set_lease(Some(epoch));
            self.node.metrics.runtime.leader.get_or_create(&self.labels()).set(1);
            let node = self.node.name.to_string();
            self.tell(|tenant| RuntimeEvent::LeaseTaken { tenant, at: mamori_core::time::now_ms(), component: name, node, epoch }).await;
            let (instance_stop_tx, instance_stop_rx) = watch::channel(false);
            let mut instance_cx = self.cx.clone();
            instance_cx.stop = instance_stop_rx.clone();
            let mut instance = std::pin::pin!(self.run_restarting(instance_cx, instance_stop_rx));
            let mut last_renewal = Instant::now();
            // Give up before the lease can lapse in the database, so the next holder
            // never overlaps with us.
            let give_up_after = ttl * 2 / 3;
            let outcome = loop {
                tokio::select! {
                    _ = tokio::time::sleep(renew_every) => match acquire().await {
                        Ok(Some(_)) => last_renewal = Instant::now(),
                        Ok(None) => break Leadership::Lost(Loss::Taken),
                        Err(e) if last_renewal.elapsed() >= give_up_after => {
                            tracing::error!(component = name, error = %e, "cannot renew the singleton lease; stopping here");
                            break Leadership::Lost(Loss::Unrenewed);
                        }
                        Err(e) => tracing::warn!(component = name, error = %e, "cannot renew the singleton lease; retrying"),
                    },
                    _ = crate::stopped(&mut node_stop) => break Leadership::Shutdown,
                    () = &mut instance => break Leadership::Ended,
                }
            };
            let _ = instance_stop_tx.send(true);
            if outcome != Leadership::Ended {
                // Bounded by the node's grace on shutdown (the task is dropped then); a
                // lost lease also by what is left of it, so the drain never overlaps the
                // next holder: another node's lease ends it at once, an unrenewed one
                // before it lapses in the store.
                let grace = match outcome {
                    Leadership::Lost(loss) => drain_within_lease(self.node.options.shutdown_grace, ttl, last_renewal.elapsed(), loss),
                    _ => self.node.options.shutdown_grace,
                };
                if tokio::time::timeout(grace, &mut instance).await.is_err() {
                    tracing::warn!(component = name, grace_ms = grace.as_millis() as u64, "did not stop in time; stopped");
                }
            }
            self.reporter.set_lease(None);
            self.node.metrics.runtime.leader.get_or_create(&self.labels()).set(0);
            let Leadership::Lost(loss) = outcome else {
                if let Err(e) = self.cx.store.release_lease(&lease, &self.node.id).await {
                    tracing::warn!(component = name, error = %e, "cannot release the singleton lease; it lapses by itself");
                }
                self.mark(State::Stopped, None);
                return;
            };
            tracing::warn!(component = name, reason = loss.reason(), "lease lost: standing by");
        }
    }

    /// Runs the service until `stop` turns true, starting it again after a panic or an
    /// error, with backoff.
    async fn run_restarting(&self, cx: RunCx, mut stop: watch::Receiver<bool>) {
        let name = cx.name;
        let mut delay = FIRST_BACKOFF;
        loop {
            if *stop.borrow() {
                self.mark(State::Stopped, None);
                return;
            }
            self.mark(State::Active, None);
            let started = Instant::now();
            let task = AbortOnDrop(tokio::spawn(self.service.clone().run(cx.clone())));
            let outcome = task.join().await;
            if *stop.borrow() {
                self.mark(State::Stopped, None);
                return;
            }
            let (reason, message) = match outcome {
                Ok(Ok(())) => {
                    tracing::info!(component = name, "component ended");
                    self.mark(State::Stopped, None);
                    return;
                }
                Ok(Err(e)) => ("error", e.to_string()),
                Err(e) if e.is_panic() => ("panic", panic_message(e.into_panic())),
                Err(_) => ("error", "cancelled".to_string()),
            };
            self.node.metrics.runtime.restarts.get_or_create(&RestartLabels { component: name, reason }).inc();
            self.reporter.restarted();
            if started.elapsed() >= STABLE_RUN {
                delay = FIRST_BACKOFF;
            }
            tracing::error!(component = name, reason, error = %message, retry_in_secs = delay.as_secs(), "component failed; restarting");
            self.mark(State::Restarting, Some(format!("{reason}: {message}")));
            let node = self.node.name.to_string();
            let retry_in_secs = delay.as_secs();
            self.tell(|tenant| RuntimeEvent::ComponentFailed {
                tenant,
                at: mamori_core::time::now_ms(),
                component: name,
                node,
                reason,
                message,
                retry_in_secs,
            })
            .await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = crate::stopped(&mut stop) => {}
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}

/// How a singleton's lease was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// Another node holds it.
    Taken,
    /// It could not be renewed in time.
    Unrenewed,
}

impl Loss {
    fn reason(self) -> &'static str {
        match self {
            Loss::Taken => "another node took the lease",
            Loss::Unrenewed => "the lease could not be renewed",
        }
    }
}

/// Returns how long a component whose lease is lost may drain: within the node's grace,
/// and only while the lease, last renewed `since_renewal` ago, is still ours (with a
/// margin for the store's clock); nothing when another node already holds it.
fn drain_within_lease(grace: Duration, ttl: Duration, since_renewal: Duration, loss: Loss) -> Duration {
    if loss == Loss::Taken {
        return Duration::ZERO;
    }
    let margin = ttl / 10;
    grace.min(ttl.saturating_sub(since_renewal).saturating_sub(margin))
}

/// How a singleton's time as the lease holder ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leadership {
    /// The lease was lost: stand by again.
    Lost(Loss),
    /// The node shuts down: give the lease up.
    Shutdown,
    /// The component ended by itself: give the lease up.
    Ended,
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_else(|| "panic".into()),
    }
}

/// Reports the node to the config store until the node stops.
async fn report_loop(node: Node, store: Store, mut stop: watch::Receiver<bool>) {
    let mut rounds: u64 = 0;
    loop {
        if let Err(e) = report(&node, &store).await {
            tracing::warn!(error = %e, "cannot report this node to the config store");
        }
        if rounds.is_multiple_of(720) {
            // Nodes gone for a day leave the list.
            let _ = store.forget_nodes(mamori_core::time::now_ms() - 86_400_000).await;
        }
        rounds += 1;
        tokio::select! {
            _ = tokio::time::sleep(node.options.report_interval) => {}
            _ = crate::stopped(&mut stop) => return,
        }
    }
}

async fn report(node: &Node, store: &Store) -> Result<(), mamori_store::StoreError> {
    store
        .report_node(&NodeReport {
            id: node.id.to_string(),
            name: node.name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: node.started_at,
            seen_at: mamori_core::time::now_ms(),
            status: json!({ "components": node.health.snapshot() }),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::{Duration, Loss, drain_within_lease};

    #[test]
    fn a_lost_lease_is_drained_only_while_it_is_still_ours() {
        let (grace, ttl) = (Duration::from_secs(10), Duration::from_secs(15));
        // Renewals failing for 10 s: 15 − 10 − 1.5 s left, less than the grace.
        assert_eq!(drain_within_lease(grace, ttl, Duration::from_secs(10), Loss::Unrenewed), Duration::from_millis(3500));
        assert_eq!(drain_within_lease(grace, ttl, Duration::from_secs(1), Loss::Unrenewed), grace);
        assert_eq!(drain_within_lease(grace, ttl, Duration::from_secs(20), Loss::Unrenewed), Duration::ZERO);
        assert_eq!(drain_within_lease(grace, ttl, Duration::ZERO, Loss::Taken), Duration::ZERO, "another node holds it");
    }
}

//! The supervisor and placement of the component runtime: a panicking component is
//! restarted, counted and shown as restarting meanwhile; a singleton runs on one node
//! and moves to another when its lease lapses or is released.

use mamori_bus::Bus;
use mamori_runtime::{
    BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, Node, NodeOptions, Placement, Plan, Registry, RunCx, Service, State,
};
use mamori_store::Store;
use mamori_store::events::EventStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct FlakyConfig {
    /// 何回目の起動まで異常終了するか。
    /// Runs that panic before one stays up.
    panics: u64,
}
impl ComponentConfig for FlakyConfig {}

/// Panics on its first `panics` runs, then runs until stopped. Counts its runs.
struct Flaky {
    name: &'static str,
    placement: Placement,
    runs: Arc<AtomicU64>,
}

struct FlakyService {
    panics: u64,
    runs: Arc<AtomicU64>,
}

impl Component for Flaky {
    type Config = FlakyConfig;
    fn name(&self) -> &'static str {
        self.name
    }
    fn placement(&self) -> Placement {
        self.placement
    }
    async fn build(&self, config: FlakyConfig, _cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
        Ok(Arc::new(FlakyService { panics: config.panics, runs: self.runs.clone() }))
    }
}

impl Service for FlakyService {
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
        Box::pin(async move {
            let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if run <= self.panics {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("flaky run {run} fails");
            }
            let mut stop = cx.stop.clone();
            mamori_runtime::stopped(&mut stop).await;
            Ok(())
        })
    }
}

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(secs), "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metrics_text(node: &Node) -> String {
    let mut s = String::new();
    node.metrics.encode(&mut s).unwrap();
    s
}

#[tokio::test]
async fn a_panicking_component_is_restarted_counted_and_shown_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let (store, authority) = Store::open(&format!("sqlite://{}", dir.path().join("m.db").display())).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    let bus = Bus::new(EventStore::open(&dir.path().join("events")).unwrap(), 16).unwrap();
    let pref = mamori_core::NewTenant {
        code: mamori_core::LocalGovCode::from_five("39000").unwrap().to_string(),
        name: "サンプル県".into(),
        kana: "サンプルケン".into(),
        kind: "prefecture".into(),
        ..Default::default()
    };
    let system = grant.scope();
    store.create_tenant(&system, &mamori_core::Actor::system(), pref.check().unwrap()).await.unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let mut registry = Registry::default();
    registry.add(Arc::new(Flaky { name: "flaky", placement: Placement::Replicated, runs: runs.clone() }));
    let sections = [("flaky".to_string(), serde_json::json!({"panics": 1}))].into_iter().collect();
    let node = Node::default();
    let running = Plan::check(&registry, &sections, |_| true, &[])
        .unwrap()
        .bind()
        .unwrap()
        .start(&node, store.clone(), &authority, bus.clone(), mamori_vault::Vault::for_tests(store.clone(), &grant, dir.path()).await)
        .await
        .unwrap();
    until("the panic is seen", 5, || node.health.snapshot()[0].state == State::Restarting).await;
    let h = node.health.snapshot()[0].clone();
    assert!(!node.health.ready(), "a restarting component makes the node not ready");
    assert!(h.reason.as_deref().unwrap_or("").contains("flaky run 1 fails"), "{h:?}");
    assert!(metrics_text(&node).contains("mamori_component_restarts_total{component=\"flaky\",reason=\"panic\"} 1"), "{}", metrics_text(&node));
    until("restarted after the backoff", 5, || node.health.snapshot()[0].state == State::Active).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(node.health.snapshot()[0].restarts, 1);
    assert!(node.health.ready());
    assert!(metrics_text(&node).contains("mamori_component_ready{component=\"flaky\"} 1"));
    // The SOC sees it too: an event of the prefecture, counted under the component.
    let now = mamori_core::time::now_ms();
    let q = mamori_store::events::EventQuery { from_ms: now - 60_000, to_ms: now + 1, limit: 10, ..Default::default() };
    let events = bus.events().query(&system, &q).await.unwrap().events;
    assert!(
        events.iter().any(|e| e.event.message.contains("コンポーネント flaky がノード") && e.event.message.contains("異常終了しました（panic）")),
        "{events:?}"
    );
    assert!(metrics_text(&node).contains("mamori_component_events_total{component=\"flaky\",kind=\"failed\"} 1"));
    let t = Instant::now();
    running.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(2), "a component that stops when asked does not wait for the grace");
    assert_eq!(node.health.snapshot()[0].state, State::Stopped);
}

#[tokio::test]
async fn a_bad_section_names_every_problem_and_an_unknown_section_is_refused() {
    let mut registry = Registry::builtin();
    registry.add(Arc::new(Flaky { name: "flaky", placement: Placement::Replicated, runs: Arc::default() }));
    let sections = [
        ("flaky".to_string(), serde_json::json!({"panics": "x", "colour": 1})),
        ("retention".to_string(), serde_json::json!({"interval_secs": 1})),
        ("gatway".to_string(), serde_json::json!({})),
    ]
    .into_iter()
    .collect();
    let problems = Plan::check(&registry, &sections, |_| true, &[]).err().unwrap();
    let text = problems.join("\n");
    assert_eq!(problems.len(), 4, "{text}");
    for needle in ["[components.flaky] colour", "[components.flaky] panics", "[components.retention] interval_secs", "[components.gatway] no such component"] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
}

#[tokio::test]
async fn a_singleton_runs_on_one_node_and_fails_over() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {backend}");
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let mut registry = Registry::default();
        registry.add(Arc::new(Flaky { name: "solo", placement: Placement::Singleton, runs: runs.clone() }));
        let sections = Default::default();
        let options = NodeOptions { lease_ttl: Duration::from_millis(900), ..Default::default() };
        let mut nodes = Vec::new();
        for i in 0..2 {
            let node = Node::new(NodeOptions { name: format!("n{i}"), ..options.clone() });
            let bus = Bus::new(EventStore::open(&dir.path().join(format!("events-{backend}-{i}"))).unwrap(), 16).unwrap();
            let running = Plan::check(&registry, &sections, |_| true, &[])
                .unwrap()
                .bind()
                .unwrap()
                .start(&node, store.clone(), &authority, bus, mamori_vault::Vault::for_tests(store.clone(), &grant, dir.path()).await)
                .await
                .unwrap();
            nodes.push((node, running));
        }
        let active = |nodes: &[(Node, mamori_runtime::Running)]| -> Vec<usize> {
            nodes.iter().enumerate().filter(|(_, (n, _))| n.health.snapshot()[0].state == State::Active).map(|(i, _)| i).collect()
        };
        until("one node active", 5, || active(&nodes).len() == 1).await;
        // It stays one: the other stands by through several renewals.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(active(&nodes).len(), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the singleton ran once, on one node");
        let leader = active(&nodes)[0];
        let other = 1 - leader;
        assert_eq!(nodes[other].0.health.snapshot()[0].state, State::Standby);
        assert!(nodes[other].0.health.ready(), "standing by is healthy");
        let epoch = nodes[leader].0.health.snapshot()[0].lease_epoch.unwrap();

        // A stopped node releases its lease: the other takes over at once.
        let (_, running) = nodes.remove(leader);
        let t = Instant::now();
        running.shutdown().await;
        until("the other node takes over", 3, || active(&nodes).len() == 1).await;
        eprintln!("failover after release: {:?}", t.elapsed());
        assert!(nodes[0].0.health.snapshot()[0].lease_epoch.unwrap() > epoch);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let (_, running) = nodes.remove(0);
        running.shutdown().await;
        store.close().await;
    }
}

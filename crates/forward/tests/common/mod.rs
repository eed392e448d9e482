//! A node running the forwarder over a local event log, with two municipalities.
#![allow(dead_code)]

use mamori_bus::Bus;
use mamori_core::{Actor, Event, EventClass, Severity, TenantId};
use mamori_forward::status::{self, Status};
use mamori_runtime::{Node, Plan, Registry, Running};
use mamori_store::events::EventStore;
use mamori_store::{CrossTenant, Store};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use mamori_forward::testing::Rsyslog;

pub struct Harness {
    pub bus: Bus,
    pub store: Store,
    pub grant: CrossTenant,
    pub node: Node,
    /// Two towns: 393410 and 39342x.
    pub a: TenantId,
    pub b: TenantId,
    running: Option<Running>,
    authority: mamori_store::Authority,
    vault: mamori_vault::Vault,
    sections: std::collections::BTreeMap<String, Value>,
}

pub const CODE_A: &str = "393410";

impl Harness {
    /// Opens the stores in `dir`; `secrets` are put in the vault before the start.
    pub async fn start(dir: &Path, forward: Value, secrets: &[(&str, &str)]) -> Harness {
        let bus = Bus::new(EventStore::open(&dir.join("events")).unwrap(), 64).unwrap();
        Self::start_with(dir, bus, forward, secrets).await
    }

    /// As [`Harness::start`], on a bus of the caller's (JetStream).
    pub async fn start_with(dir: &Path, bus: Bus, forward: Value, secrets: &[(&str, &str)]) -> Harness {
        let (store, authority) = Store::open(&format!("sqlite://{}", dir.join("mamori.db").display())).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let a = mamori_store::testing::town(&store, &grant, "39341").await;
        let b = mamori_store::testing::town(&store, &grant, "39342").await;
        let actor = Actor::system();
        let vault = mamori_vault::Vault::for_tests(store.clone(), &grant, dir).await;
        for (name, value) in secrets {
            vault.secrets.put(&grant.scope(), &actor, None, name, mamori_vault::SecretKind::Other, value.as_bytes()).await.unwrap();
        }
        let sections = [("forward".to_string(), forward)].into_iter().collect();
        let mut h = Harness { bus, store, grant, node: Node::default(), a, b, running: None, authority, vault, sections };
        h.run().await;
        h
    }

    /// Starts the forwarder (again).
    pub async fn run(&mut self) {
        let mut registry = Registry::default();
        registry.add(Arc::new(mamori_forward::Forwarding));
        let plan = Plan::check(&registry, &self.sections, |n| n == "forward", &[]).unwrap();
        self.node = Node::default();
        let running = plan.bind().unwrap().start(&self.node, self.store.clone(), &self.authority, self.bus.clone(), self.vault.clone()).await.unwrap();
        self.running = Some(running);
        // Started: every destination has its cursor ("new" ones start from here).
        let wanted = if self.bus.reads_log() { self.sections["forward"]["destinations"].as_array().map_or(0, Vec::len) } else { 0 };
        let bus = self.bus.clone();
        wait_until(10, "the destinations' cursors", async || bus.cursors().len() >= wanted).await;
    }

    /// Replaces `[components.forward]` (takes effect at the next [`Harness::run`]).
    pub fn set_forward(&mut self, forward: Value) {
        self.sections.insert("forward".into(), forward);
    }

    /// Stops the forwarder.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Publishes `n` events of `tenant` and `class`, each message naming `tag` and its
    /// number; returns their ids.
    pub async fn publish(&self, tenant: TenantId, class: EventClass, n: usize, tag: &str) -> Vec<String> {
        let now = mamori_core::time::now_ms();
        let events: Vec<Event> = (0..n)
            .map(|i| {
                let mut e = Event::new(tenant, now, class, format!("{tag} {i} 接続を拒否しました"), "test-fw");
                e.severity = Severity::MEDIUM;
                e.raw = Some(format!("raw {tag} {i}"));
                e
            })
            .collect();
        let ids = events.iter().map(|e| e.id.to_string()).collect();
        for chunk in events.chunks(1000) {
            self.bus.publish(chunk.to_vec()).await.unwrap();
        }
        ids
    }

    pub fn status(&self, name: &str) -> Option<Status> {
        status::read(&status::dir(&self.bus), name)
    }

    /// The metric line `name{destination="dest"}` of /metrics.
    pub fn metric(&self, name: &str, dest: &str) -> Option<f64> {
        let mut out = String::new();
        self.node.metrics.encode(&mut out).unwrap();
        let prefix = format!("{name}{{destination=\"{dest}\"}} ");
        out.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
    }
}

/// Waits until `cond` holds, up to `secs`.
pub async fn wait_until(secs: u64, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

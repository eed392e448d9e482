//! The engine's rules without network peers: retries before DOWN, escalation steps,
//! reminders until acknowledged, maintenance, dependencies, flapping, probe silence.
//! Results are handed in directly, and escalation is driven with explicit times.

use mamori_core::monitor::{CheckResult, Fault, MonitorId, MonitorSpec, Reason, Status};
use mamori_core::{Actor, Contact, NewTenant, TenantId};
use mamori_monitor::engine::{Engine, EngineConfig};
use mamori_monitor::notify::Notifier;
use mamori_monitor::notify::NotifyPolicy;
use mamori_runtime::PolicySnapshot;
use mamori_store::Scope;
use mamori_store::{FaultFilter, Store};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    engine: Engine,
    tenant: TenantId,
    scope: Scope,
}

async fn world(policy: serde_json::Value) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (store, authority) = Store::open(&format!("sqlite://{}", dir.path().join("e.db").display())).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    let actor = Actor::system();
    let grant = grant.clone();
    let scope = grant.scope();
    let t = store
        .create_tenant(
            &scope,
            &actor,
            NewTenant {
                code: "011002".into(),
                name: "札幌市".into(),
                kana: "サッポロシ".into(),
                kind: "city".into(),
                contacts: vec![Contact { name: "担当".into(), department: String::new(), email: "tanto@city.example.lg.jp".into(), phone: String::new() }],
                ..Default::default()
            }
            .check()
            .unwrap(),
        )
        .await
        .unwrap();
    // No mail server: every e-mail is recorded as tried and failed, which is what these
    // tests count.
    let notifier =
        Notifier { mail: None, from: "m@x".into(), always: vec!["soc@pref.example.lg.jp".into()], console_url: String::new(), timeout: Duration::from_secs(1) };
    let mut engine = Engine::new(store.clone(), None, notifier, EngineConfig::default(), grant);
    let own = HashMap::from([(t.id, NotifyPolicy::from_doc(&policy))]);
    engine.set_policies(std::sync::Arc::new(PolicySnapshot::fixed(NotifyPolicy::from_doc(&json!({})), own)));
    World { _dir: dir, store, engine, tenant: t.id, scope }
}

impl World {
    async fn monitor(&mut self, doc: serde_json::Value) -> MonitorId {
        let spec: MonitorSpec = serde_json::from_value(doc).unwrap();
        let m = self.store.create_monitor(&self.scope, &Actor::system(), self.tenant, spec).await.unwrap();
        self.engine.reload(false).await.unwrap();
        m.id
    }
    async fn result(&mut self, m: MonitorId, at: i64, up: bool) {
        let r = CheckResult {
            monitor: m,
            at,
            status: if up { Status::Up } else { Status::Down },
            rt_ms: 5,
            reason: (!up).then(|| Reason::new("connect_refused", "接続が拒否されました", "refused")),
            details: json!({}),
        };
        self.engine.apply(r).await.unwrap();
        self.engine.flush().await.unwrap();
    }
    async fn status(&self, m: MonitorId) -> Status {
        self.store.monitor_states(&self.scope, None).await.unwrap().into_iter().find(|s| s.monitor == m).map(|s| s.status).unwrap_or(Status::Unknown)
    }
    async fn faults(&self, m: MonitorId) -> Vec<Fault> {
        let mut out = Vec::new();
        for f in self.store.all_faults(&self.scope, &FaultFilter { monitor: Some(m), ..Default::default() }).await.unwrap() {
            out.push(self.store.get_fault(&self.scope, f.id).await.unwrap());
        }
        out
    }
    /// Waits for the notifications sent in the background to be recorded.
    async fn notifications(&self, m: MonitorId, want: usize) -> Vec<mamori_core::monitor::Notification> {
        for _ in 0..100 {
            let n: Vec<_> = self.faults(m).await.into_iter().flat_map(|f| f.notifications).collect();
            if n.len() >= want {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.faults(m).await.into_iter().flat_map(|f| f.notifications).collect()
    }
}

fn web(retries: u32) -> serde_json::Value {
    json!({"name": "web", "check": {"type": "tcp", "host": "192.0.2.1", "port": 80}, "retries": retries})
}

const MIN: i64 = 60_000;

#[tokio::test]
async fn f01_f05_retries_then_down_escalation_reminders_and_acknowledgement() {
    let policy = json!({"escalation": [{"after_minutes": 0, "tenant_contacts": true}, {"after_minutes": 30, "emails": ["kacho@city.example.lg.jp"]}], "repeat_minutes": 60});
    let mut w = world(policy).await;
    let m = w.monitor(web(2)).await;
    let t0 = mamori_core::time::now_ms();
    w.result(m, t0, false).await;
    assert_eq!(w.status(m).await, Status::Pending);
    w.result(m, t0 + 20_000, false).await;
    assert_eq!(w.status(m).await, Status::Pending);
    assert!(w.faults(m).await.is_empty(), "no fault while retries remain");
    w.result(m, t0 + 40_000, false).await;
    assert_eq!(w.status(m).await, Status::Down);
    let f = &w.faults(m).await[0];
    assert_eq!(f.opened_at, t0, "the fault starts at the first failed check");
    // Step 1 at once: the tenant's contact and the SOC.
    let n = w.notifications(m, 2).await;
    let mut to: Vec<_> = n.iter().map(|n| n.target.as_str()).collect();
    to.sort();
    assert_eq!(to, ["soc@pref.example.lg.jp", "tanto@city.example.lg.jp"]);
    assert!(n.iter().all(|n| !n.ok && n.error.is_some()), "without a mail server the failure is recorded");
    // Step 2 after 30 minutes.
    w.engine.escalate(t0 + 29 * MIN).await.unwrap();
    assert_eq!(w.notifications(m, 3).await.len(), 2, "not yet");
    w.engine.escalate(t0 + 31 * MIN).await.unwrap();
    let n = w.notifications(m, 3).await;
    assert!(n.iter().any(|n| n.target == "kacho@city.example.lg.jp" && n.step == 1), "{n:?}");
    assert!(w.faults(m).await[0].timeline.iter().any(|e| e.kind == "escalated"));
    // A reminder an hour after the last message, to everyone reached so far.
    let before = n.len();
    w.engine.escalate(t0 + 92 * MIN).await.unwrap();
    let n = w.notifications(m, before + 3).await;
    assert_eq!(n.iter().filter(|n| n.reason == "repeat").count(), 3, "{n:?}");
    // Acknowledged: no more reminders.
    let fid = w.faults(m).await[0].id;
    w.store.comment_fault(&w.scope, &Actor::system(), fid, "対応中", true).await.unwrap();
    w.engine.refresh_faults().await.unwrap();
    let before = w.notifications(m, 0).await.len();
    w.engine.escalate(t0 + 400 * MIN).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.notifications(m, 0).await.len(), before);
    // Recovery closes the fault and tells everyone reached.
    w.result(m, t0 + 401 * MIN, true).await;
    assert_eq!(w.status(m).await, Status::Up);
    let f = &w.faults(m).await[0];
    assert_eq!(f.closed_at, Some(t0 + 401 * MIN));
    let n = w.notifications(m, before + 3).await;
    assert_eq!(n.iter().filter(|n| n.reason == "up").count(), 3, "{n:?}");
}

#[tokio::test]
async fn f01_f05_maintenance_dependencies_and_flapping() {
    let mut w = world(json!({"escalation": [], "repeat_minutes": 0})).await;
    // Maintenance: failures change nothing.
    let now = mamori_core::time::now_ms();
    let maint = w
        .monitor(json!({"name": "m", "check": {"type": "tcp", "host": "192.0.2.1", "port": 80}, "retries": 0,
            "maintenance": [{"kind": "once", "start": mamori_core::time::format_rfc3339(now - MIN), "end": mamori_core::time::format_rfc3339(now + 60 * MIN)}]}))
        .await;
    w.result(maint, now, false).await;
    w.result(maint, now + 1000, false).await;
    assert_eq!(w.status(maint).await, Status::Maintenance);
    assert!(w.faults(maint).await.is_empty());

    // Dependency: the proxy is DOWN, so the web check through it is UNREACHABLE.
    let proxy = w.monitor(json!({"name": "proxy", "check": {"type": "tcp", "host": "192.0.2.2", "port": 8080}, "retries": 0})).await;
    let mut dep = web(0);
    dep["depends_on"] = json!(proxy);
    let site = w.monitor(dep).await;
    w.result(proxy, now, false).await;
    assert_eq!(w.status(proxy).await, Status::Down);
    w.result(site, now, false).await;
    assert_eq!(w.status(site).await, Status::Unreachable);
    assert!(w.faults(site).await.is_empty(), "the proxy's fault explains it");

    // Flapping (6 changes within 30 minutes): from then on one fault stays open through
    // short recoveries, however long it goes on.
    let flappy = w.monitor(web(0)).await;
    for i in 0..40 {
        w.result(flappy, now + i * 10_000, i % 2 == 1).await;
    }
    let faults = w.faults(flappy).await;
    assert_eq!(faults.len(), 4, "three down/up cycles before flapping is known, then one record");
    assert!(faults.iter().any(|f| f.timeline.iter().any(|e| e.kind == "flapping")), "{faults:?}");
    assert!(faults.iter().any(|f| f.closed_at.is_none()), "the fault stays open while flapping");
}

#[tokio::test]
async fn test_notifications_go_to_every_step_and_say_why_mail_cannot_go() {
    let policy = json!({"escalation": [
        {"after_minutes": 0, "tenant_contacts": true},
        {"after_minutes": 30, "emails": ["kacho@city.example.lg.jp"], "webhooks": ["https://127.0.0.1:1/hook?token=secret-token"]}
    ]});
    let w = world(policy).await;
    let health = mamori_runtime::Health::default();
    let reporter = health.reporter("monitor", mamori_runtime::Placement::Singleton);
    reporter.set_for_tests(mamori_runtime::State::Active);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let World { store, engine, tenant, scope, _dir } = w;
    let run = tokio::spawn(engine.with_health(reporter).run(stop_rx, None));

    let soc = Actor { name: "soc-operator".into(), ..Actor::system() };
    let for_tenant = store.request_notify_test(&scope, &soc, Some(tenant)).await.unwrap();
    let for_soc = store.request_notify_test(&scope, &soc, None).await.unwrap();
    let done = |id| {
        let (store, scope) = (store.clone(), scope.clone());
        async move {
            for _ in 0..200 {
                let t = store.get_notify_test(&scope, id).await.unwrap();
                if t.done_at.is_some() {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the engine never sent test {id}");
        }
    };
    let t = done(for_tenant.id).await;
    let got: Vec<(&str, &str, bool)> = t.results.iter().map(|n| (n.channel.as_str(), n.target.as_str(), n.ok)).collect();
    assert_eq!(
        got,
        vec![("email", "kacho@city.example.lg.jp", false), ("email", "tanto@city.example.lg.jp", false), ("webhook", "https://127.0.0.1:1/hook?…", false)],
        "every step's targets, the SOC left out, the webhook's token hidden: {t:?}"
    );
    assert!(t.results.iter().all(|n| n.reason == "test"));
    assert_eq!(t.results[0].error.as_deref(), Some(mamori_monitor::notify::NO_MAIL_SERVER.0));
    let s = done(for_soc.id).await;
    assert_eq!(s.results.iter().map(|n| n.target.as_str()).collect::<Vec<_>>(), vec!["soc@pref.example.lg.jp"], "without a tenant: the SOC");

    // The running engine says why no mail goes (once, not as failing mail).
    let notices = health.snapshot()[0].notices.clone();
    assert_eq!(notices.iter().map(|n| n.code.as_str()).collect::<Vec<_>>(), vec!["no_mail_server"], "{notices:?}");
    assert!(notices[0].ja.contains("smtp_host"));
    let _ = stop_tx.send(true);
    run.await.unwrap().unwrap();
}

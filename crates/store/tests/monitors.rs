//! Monitors, states, results, fault records and probes, on SQLite and PostgreSQL alike.

use mamori_core::monitor::{CheckResult, Fault, FaultEntry, FaultId, MonitorSpec, MonitorState, Notification, Reason, Status};
use mamori_core::{Actor, NewTenant};
use mamori_store::{FaultFilter, Store, StoreError};
use serde_json::json;

fn spec(name: &str) -> MonitorSpec {
    serde_json::from_value(json!({"name": name, "check": {"type": "http", "url": "https://www.city.example.lg.jp/"}})).unwrap()
}

/// A市 and B町.
async fn two_tenants(store: &Store, scope: &mamori_store::Scope, actor: &Actor) -> (mamori_core::Tenant, mamori_core::Tenant) {
    let mk = |five: &str, name: &str| {
        NewTenant {
            code: mamori_core::LocalGovCode::from_five(five).unwrap().to_string(),
            name: name.into(),
            kana: "テスト".into(),
            kind: "city".into(),
            ..Default::default()
        }
        .check()
        .unwrap()
    };
    (store.create_tenant(scope, actor, mk("39341", "A市")).await.unwrap(), store.create_tenant(scope, actor, mk("39342", "B町")).await.unwrap())
}

#[tokio::test]
async fn monitors_states_results_and_faults_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in mamori_store::testing::backends(dir.path()).await {
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let actor = Actor::system();
        let (a, b) = two_tenants(&store, &grant.scope(), &actor).await;
        let m = store.create_monitor(&grant.scope(), &actor, a.id, spec("web")).await.unwrap();
        let other = store.create_monitor(&grant.scope(), &actor, b.id, spec("b-web")).await.unwrap();

        // Scope: a tenant sees its own, and cannot create for another, nor aim at the platform.
        let scope_a = grant.tenant(a.id);
        assert_eq!(store.list_monitors(&scope_a, None).await.unwrap().len(), 1, "{backend}");
        assert!(matches!(store.get_monitor(&scope_a, other.id).await, Err(StoreError::NotFound)));
        assert!(store.create_monitor(&scope_a, &actor, b.id, spec("x")).await.is_err());
        let internal: MonitorSpec = serde_json::from_value(json!({"name": "i", "check": {"type": "tcp", "host": "127.0.0.1", "port": 5432}})).unwrap();
        assert!(matches!(store.create_monitor(&scope_a, &actor, a.id, internal.clone()).await, Err(StoreError::Invalid(_))), "{backend}");
        store.create_monitor(&grant.scope(), &actor, a.id, internal).await.unwrap();

        // A dependency must be of the same tenant and not form a cycle.
        let mut dep = spec("dep");
        dep.depends_on = Some(other.id);
        assert!(store.create_monitor(&grant.scope(), &actor, a.id, dep.clone()).await.is_err());
        dep.depends_on = Some(m.id);
        let d = store.create_monitor(&grant.scope(), &actor, a.id, dep).await.unwrap();
        let mut cyc = spec("web");
        cyc.depends_on = Some(d.id);
        assert!(store.update_monitor(&grant.scope(), &actor, m.id, cyc).await.is_err(), "{backend}: cycle");

        // States and results in one batch; a deleted monitor's leftovers are ignored.
        let now = mamori_core::time::now_ms();
        let st = MonitorState {
            monitor: m.id,
            status: Status::Down,
            since: now,
            last_check: now,
            last_rt_ms: 12,
            reason: Some(Reason::new("connect_refused", "拒否", "refused")),
            failures: 3,
            fault: None,
            content_hash: None,
        };
        let res = CheckResult { monitor: m.id, at: now, status: Status::Down, rt_ms: 12, reason: st.reason.clone(), details: json!({}) };
        store.save_monitor_batch(&grant, std::slice::from_ref(&st), &[res.clone(), res.clone()]).await.unwrap();
        store.save_monitor_batch(&grant, std::slice::from_ref(&st), std::slice::from_ref(&res)).await.unwrap();
        assert_eq!(store.monitor_states(&scope_a, None).await.unwrap(), vec![st.clone()], "{backend}");
        assert_eq!(store.monitor_results(&scope_a, m.id, now - 1, now + 1, 100).await.unwrap().len(), 3);
        assert!(store.monitor_results(&grant.tenant(b.id), m.id, 0, i64::MAX, 100).await.is_err());

        // Faults: open, timeline, notifications, comments, close; overlap filters.
        let f = Fault {
            id: FaultId::new(),
            tenant: a.id,
            monitor: m.id,
            monitor_name: "web".into(),
            opened_at: now - 60_000,
            closed_at: None,
            cause: Reason::new("connect_refused", "拒否", "refused"),
            acknowledged_by: None,
            timeline: vec![FaultEntry { at: now - 60_000, kind: "opened".into(), ja: "発生".into(), en: "opened".into(), actor: None }],
            notifications: vec![],
        };
        store.open_fault(&grant, &f).await.unwrap();
        let n = Notification { at: now, channel: "email".into(), target: "a@b.example".into(), reason: "down".into(), step: 0, ok: true, error: None };
        store.add_fault_notification(&grant, f.id, &n).await.unwrap();
        store.comment_fault(&scope_a, &actor, f.id, "確認中です", true).await.unwrap();
        assert!(store.comment_fault(&grant.tenant(b.id), &actor, f.id, "x", false).await.is_err());
        assert_eq!(store.open_faults(&grant).await.unwrap().len(), 1);
        store
            .close_fault(&grant, f.id, now, &FaultEntry { at: now, kind: "closed".into(), ja: "復旧".into(), en: "closed".into(), actor: None })
            .await
            .unwrap();
        let got = store.get_fault(&scope_a, f.id).await.unwrap();
        assert_eq!(got.closed_at, Some(now));
        assert_eq!(got.timeline.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["opened", "acknowledged", "closed"], "{backend}");
        assert_eq!(got.notifications, vec![n]);
        assert_eq!(got.acknowledged_by.as_deref(), Some("system"));
        let window = |from, to| FaultFilter { from_ms: Some(from), to_ms: Some(to), ..Default::default() };
        assert_eq!(store.all_faults(&grant.scope(), &window(now - 30_000, now + 1)).await.unwrap().len(), 1);
        assert_eq!(store.all_faults(&grant.scope(), &window(now + 1, now + 2)).await.unwrap().len(), 0);
        let up = mamori_store::monitors::uptime_percent(now - 120_000, &[got], now - 120_000, now, now).unwrap();
        assert!((up - 50.0).abs() < 0.01, "{up}");

        // Deleting keeps fault records but removes results and state.
        assert!(store.delete_monitor(&grant.scope(), &actor, m.id).await.is_err(), "{backend}: a dependent remains");
        store.delete_monitor(&grant.scope(), &actor, d.id).await.unwrap();
        store.delete_monitor(&grant.scope(), &actor, m.id).await.unwrap();
        assert!(store.monitor_states(&grant.scope(), Some(a.id)).await.unwrap().is_empty());
        assert_eq!(store.all_faults(&grant.scope(), &FaultFilter { monitor: Some(m.id), ..Default::default() }).await.unwrap().len(), 1);

        // Probes: a tenant registers its own; the token finds it; deleting hands monitors back.
        let p = store.create_probe(&scope_a, &actor, Some(a.id), "庁内", "hash-a").await.unwrap();
        assert!(store.create_probe(&scope_a, &actor, Some(b.id), "x", "hash-x").await.is_err());
        let shared = store.create_probe(&grant.scope(), &actor, None, "共通", "hash-shared").await.unwrap();
        // A tenant id that is not there is not found (found by scripts/api-check: it was a 500).
        let nowhere = store.create_probe(&grant.scope(), &actor, Some(mamori_core::TenantId::new()), "x", "hash-nowhere").await;
        assert!(matches!(nowhere, Err(mamori_store::StoreError::NotFound)), "{nowhere:?}");
        let mut on_probe = spec("via probe");
        on_probe.probe = Some(shared.id);
        assert!(store.create_monitor(&scope_a, &actor, a.id, on_probe.clone()).await.is_err(), "{backend}: the shared probe is the operators'");
        on_probe.probe = Some(p.id);
        let pm = store.create_monitor(&scope_a, &actor, a.id, on_probe).await.unwrap();
        assert_eq!(store.probe_monitors(&p).await.unwrap().len(), 1);
        // A probe's results count for its own monitors only.
        let mine = CheckResult { monitor: pm.id, at: now, status: Status::Up, rt_ms: 3, reason: None, details: json!({}) };
        let not_mine = CheckResult { monitor: d.id, ..mine.clone() };
        assert_eq!(store.queue_probe_results(&p, &[mine, not_mine]).await.unwrap(), 1, "{backend}");
        let queued = store.queued_probe_results(&grant, 10).await.unwrap();
        assert!(queued.iter().all(|(_, r)| r.monitor == pm.id), "{backend}");
        assert_eq!(store.probe_by_token("hash-a", Some("192.0.2.9")).await.unwrap().map(|x| x.id), Some(p.id));
        assert!(store.probe_by_token("nope", None).await.unwrap().is_none());
        store.delete_probe(&scope_a, &actor, p.id).await.unwrap();
        let back = store.get_monitor(&scope_a, pm.id).await.unwrap();
        assert!(back.spec.probe.is_none() && back.updated_at >= pm.updated_at, "{backend}");
        assert!(store.probe_monitors(&p).await.unwrap().is_empty());

        // Every change above was audited.
        let audit = store.list_audit(&grant.scope(), &Default::default(), None, 200).await.unwrap();
        for action in ["monitor.create", "monitor.delete", "fault.acknowledge", "probe.create", "probe.delete"] {
            assert!(audit.iter().any(|e| e.action == action), "{backend}: {action} not audited");
        }
    }
}

#[tokio::test]
async fn test_notifications_are_asked_for_taken_once_and_answered_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in mamori_store::testing::backends(dir.path()).await {
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let actor = Actor { name: "soc-operator".into(), ..Actor::system() };
        let (a, b) = two_tenants(&store, &grant.scope(), &actor).await;
        let (scope_a, scope_b) = (grant.tenant(a.id), grant.tenant(b.id));

        // A tenant asks for itself only; the SOC's test is the operators'.
        assert!(matches!(store.request_notify_test(&scope_a, &actor, Some(b.id)).await, Err(StoreError::Forbidden(_))), "{backend}");
        assert!(matches!(store.request_notify_test(&scope_a, &actor, None).await, Err(StoreError::Forbidden(_))), "{backend}");
        assert!(matches!(store.request_notify_test(&grant.scope(), &actor, Some(mamori_core::TenantId::new())).await, Err(StoreError::NotFound)));
        let ta = store.request_notify_test(&scope_a, &actor, Some(a.id)).await.unwrap();
        let soc = store.request_notify_test(&grant.scope(), &actor, None).await.unwrap();
        assert_eq!((ta.tenant, ta.requested_by.as_str(), ta.started_at, ta.done_at), (Some(a.id), "soc-operator", None, None));

        // Each sees its own; the other tenant sees nothing of them.
        assert_eq!(store.list_notify_tests(&scope_a, None, 50).await.unwrap(), vec![ta.clone()], "{backend}");
        assert!(store.list_notify_tests(&scope_b, None, 50).await.unwrap().is_empty());
        assert!(matches!(store.get_notify_test(&scope_b, ta.id).await, Err(StoreError::NotFound)));
        assert!(matches!(store.get_notify_test(&scope_a, soc.id).await, Err(StoreError::NotFound)), "the SOC's test is not a tenant's");
        assert_eq!(store.list_notify_tests(&grant.scope(), None, 50).await.unwrap().len(), 2);
        assert_eq!(store.list_notify_tests(&grant.scope(), Some(a.id), 50).await.unwrap(), vec![ta.clone()]);
        let filter = mamori_store::AuditFilter { action: Some("notify.test".into()), ..Default::default() };
        let audit = store.list_audit(&grant.scope(), &filter, None, 100).await.unwrap();
        assert_eq!(audit.len(), 2, "{backend}: asking is audited");

        // Taken once, oldest first; a second holder finds nothing until the first is long silent.
        let taken = store.take_notify_tests(&grant, 20).await.unwrap();
        assert_eq!(taken.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ta.id, soc.id], "{backend}");
        assert!(taken.iter().all(|t| t.started_at.is_some()));
        assert!(store.take_notify_tests(&grant, 20).await.unwrap().is_empty(), "{backend}: not taken twice");

        // The outcome is kept per target; a finished test is not taken again.
        let sent = vec![
            Notification { at: 1, channel: "email".into(), target: "joho@a.example.lg.jp".into(), reason: "test".into(), step: 0, ok: true, error: None },
            Notification {
                at: 1,
                channel: "webhook".into(),
                target: "https://hooks.example/x".into(),
                reason: "test".into(),
                step: 0,
                ok: false,
                error: Some("HTTP 500".into()),
            },
        ];
        store.finish_notify_test(&grant, ta.id, &sent).await.unwrap();
        let done = store.get_notify_test(&scope_a, ta.id).await.unwrap();
        assert_eq!(done.results, sent, "{backend}");
        assert!(done.done_at.is_some());

        // A tenant keeps its last 50.
        for _ in 0..55 {
            store.request_notify_test(&scope_a, &actor, Some(a.id)).await.unwrap();
        }
        let kept = store.list_notify_tests(&scope_a, None, 1000).await.unwrap();
        assert_eq!(kept.len(), 50, "{backend}");
        assert!(!kept.iter().any(|t| t.id == ta.id), "{backend}: the oldest went");
        assert_eq!(store.list_notify_tests(&grant.scope(), None, 1000).await.unwrap().len(), 51, "{backend}: the SOC's stays");
    }
}

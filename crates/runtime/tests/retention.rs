//! The component runtime, shown with the retention component (F18 log retention): a policy saved in the
//! config store reaches the running component within seconds, without a restart.

use mamori_bus::Bus;
use mamori_core::{Actor, Event, EventClass, NewTenant};
use mamori_runtime::{Node, Plan, Registry};
use mamori_store::Scope;
use mamori_store::Store;
use mamori_store::events::{EventQuery, EventStore};
use serde_json::json;
use std::time::Duration;

async fn count(bus: &Bus, scope: &Scope) -> usize {
    let now = mamori_core::time::now_ms();
    let q = EventQuery { from_ms: now - 60 * 86_400_000, to_ms: now + 1, limit: 1000, ..Default::default() };
    bus.events().query(scope, &q).await.unwrap().events.len()
}

#[tokio::test]
async fn f18_a_saved_retention_policy_takes_effect_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {name}");
        let events_dir = tempfile::tempdir().unwrap();
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let bus = Bus::new(EventStore::open(events_dir.path()).unwrap(), 64).unwrap();
        let mk = |five: &str, name: &str, kind: &str| NewTenant {
            code: mamori_core::LocalGovCode::from_five(five).unwrap().to_string(),
            name: name.into(),
            kana: "テスト".into(),
            kind: kind.into(),
            ..Default::default()
        };
        let actor = Actor::system();
        store.create_tenant(&grant.scope(), &actor, mk("39000", "サンプル県", "prefecture").check().unwrap()).await.unwrap();
        let a = store.create_tenant(&grant.scope(), &actor, mk("39341", "甲町", "town").check().unwrap()).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, mk("39342", "乙町", "town").check().unwrap()).await.unwrap();
        let now = mamori_core::time::now_ms();
        let mut old = Vec::new();
        for (t, days) in [(a.id, 10), (a.id, 2), (b.id, 10), (b.id, 2)] {
            old.push(Event::new(t, now - days * 86_400_000, EventClass::NETWORK_ACTIVITY, format!("{days} days old"), "test"));
        }
        bus.publish(old).await.unwrap();
        bus.searchable().await;

        let registry = Registry::builtin();
        let sections = [("retention".to_string(), json!({"interval_secs": 3600}))].into_iter().collect();
        let plan = Plan::check(&registry, &sections, |n| n == "retention", &[]).unwrap();
        let node = Node::default();
        let running = plan
            .bind()
            .unwrap()
            .start(&node, store.clone(), &authority, bus.clone(), mamori_vault::Vault::for_tests(store.clone(), &grant, dir.path()).await)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(&bus, &grant.tenant(a.id)).await, 2, "default retention (365 days) keeps everything");

        // A bad policy is refused before it is stored.
        let validator = registry.validator("retention").unwrap();
        assert!(store.put_policy(&grant.scope(), &actor, Some(a.id), validator.as_ref(), json!({"events_days": -1})).await.is_err());

        // Below the platform minimum (a year by default), no policy is saved, by anyone.
        let refused = store.put_policy(&grant.scope(), &actor, Some(a.id), validator.as_ref(), json!({"events_days": 5})).await.unwrap_err();
        assert!(refused.to_string().contains("platform minimum"), "{refused}");
        // An operator lowers the minimum (audited); then A's 5 days can be saved.
        store.put_policy_minimums(&grant.scope(), &actor, validator.as_ref(), json!({"events_days": 3})).await.unwrap();
        // Shorten A's retention to 5 days: the running component applies it.
        store.put_policy(&grant.scope(), &actor, Some(a.id), validator.as_ref(), json!({"events_days": 5})).await.unwrap();
        let started = std::time::Instant::now();
        while count(&bus, &grant.tenant(a.id)).await != 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "policy not applied within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("applied after {:?}", started.elapsed());
        assert_eq!(count(&bus, &grant.tenant(b.id)).await, 2, "the other tenant keeps its events");
        // The purge is itself recorded as an event of the prefecture.
        let all = count(&bus, &grant.scope()).await;
        assert_eq!(all, 4, "3 remaining test events + 1 lifecycle event");

        let mut encoded = String::new();
        node.metrics.encode(&mut encoded).unwrap();
        assert!(encoded.contains("mamori_component_events_total{component=\"retention\",kind=\"purged\"} 1"), "{encoded}");
        tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await.unwrap();
        assert_eq!(node.health.snapshot()[0].state, mamori_runtime::State::Stopped);
        store.close().await;
    }
}

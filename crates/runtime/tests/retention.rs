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
        // The purge is itself recorded as an event of the prefecture (emitted after the
        // purge, searchable once the indexer has it).
        let started = std::time::Instant::now();
        while count(&bus, &grant.scope()).await != 4 {
            assert!(started.elapsed() < Duration::from_secs(10), "3 remaining test events + 1 lifecycle event: {}", count(&bus, &grant.scope()).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let mut encoded = String::new();
        node.metrics.encode(&mut encoded).unwrap();
        assert!(encoded.contains("mamori_component_events_total{component=\"retention\",kind=\"purged\"} 1"), "{encoded}");
        tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await.unwrap();
        assert_eq!(node.health.snapshot()[0].state, mamori_runtime::State::Stopped);
        store.close().await;
    }
}

/// Retention by event class through the component, and a legal hold: network traffic
/// goes after its class's days, authentication of the same age stays, the held range
/// stays until the hold is released.
#[tokio::test]
async fn f18_class_retention_and_a_legal_hold_through_the_component() {
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {name}");
        let events_dir = tempfile::tempdir().unwrap();
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let bus = Bus::new(EventStore::open(events_dir.path()).unwrap(), 64).unwrap();
        let actor = Actor::system();
        let town = NewTenant {
            code: mamori_core::LocalGovCode::from_five("39341").unwrap().to_string(),
            name: "甲町".into(),
            kana: "コウチョウ".into(),
            kind: "town".into(),
            ..Default::default()
        };
        let a = store.create_tenant(&grant.scope(), &actor, town.check().unwrap()).await.unwrap();
        let now = mamori_core::time::now_ms();
        let day = 86_400_000;
        let mk = |age: i64, class: EventClass| Event::new(a.id, now - age * day, class, format!("{} {age}", class.0), "test");
        let (net10, auth10, net20, http2) =
            (mk(10, EventClass::NETWORK_ACTIVITY), mk(10, EventClass::AUTHENTICATION), mk(20, EventClass::NETWORK_ACTIVITY), mk(2, EventClass::HTTP_ACTIVITY));
        bus.publish(vec![net10.clone(), auth10.clone(), net20.clone(), http2.clone()]).await.unwrap();
        bus.searchable().await;
        let ids = |bus: Bus, scope: Scope| async move {
            let q = EventQuery { from_ms: now - 60 * day, to_ms: now + 1, limit: 1000, ..Default::default() };
            bus.events().query(&scope, &q).await.unwrap().events.into_iter().map(|e| e.event.id).collect::<std::collections::HashSet<_>>()
        };
        let validator = Registry::builtin().validator("retention").unwrap();
        store.put_policy_minimums(&grant.scope(), &actor, validator.as_ref(), json!({"events_days": 3})).await.unwrap();
        let hold =
            mamori_store::NewEventHold {
                tenant: a.id, from_ms: now - 21 * day, to_ms: now - 19 * day, reason: "事案調査".into(), reference: String::new()
            };
        let hold = store.place_event_hold(&grant.scope(), &actor, hold).await.unwrap();

        let registry = Registry::builtin();
        let sections = [("retention".to_string(), json!({"interval_secs": 3600}))].into_iter().collect();
        let plan = Plan::check(&registry, &sections, |n| n == "retention", &[]).unwrap();
        let node = Node::default();
        let vault = mamori_vault::Vault::for_tests(store.clone(), &grant, dir.path()).await;
        let running = plan.bind().unwrap().start(&node, store.clone(), &authority, bus.clone(), vault).await.unwrap();
        store
            .put_policy(&grant.scope(), &actor, Some(a.id), validator.as_ref(), json!({"events_days": 30, "classes": [{"class_uid": 4001, "days": 5}]}))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        while ids(bus.clone(), grant.tenant(a.id)).await.contains(&net10.id) {
            assert!(started.elapsed() < Duration::from_secs(10), "class retention not applied within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = ids(bus.clone(), grant.tenant(a.id)).await;
        assert!(left.contains(&auth10.id), "authentication of the same age is kept (30 days)");
        assert!(left.contains(&net20.id), "the held network event is kept past its class's 5 days");
        assert!(left.contains(&http2.id));
        // Released, the next purge (here: a policy change) takes it.
        store.release_event_hold(&grant.scope(), &actor, hold.id).await.unwrap();
        store
            .put_policy(&grant.scope(), &actor, Some(a.id), validator.as_ref(), json!({"events_days": 31, "classes": [{"class_uid": 4001, "days": 5}]}))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        while ids(bus.clone(), grant.tenant(a.id)).await.contains(&net20.id) {
            assert!(started.elapsed() < Duration::from_secs(10), "the released hold's event is purged within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ids(bus.clone(), grant.tenant(a.id)).await.contains(&auth10.id));
        tokio::time::timeout(Duration::from_secs(5), running.shutdown()).await.unwrap();
        store.close().await;
    }
}

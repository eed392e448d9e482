//! Typed policies and the per-(component, tenant) change feed: parsed once, swapped
//! atomically, only changed tenants re-read and reported, other components' saves
//! ignored, a document that no longer fits kept at its previous value.

use mamori_core::{Actor, PolicyValidator, Problems};
use mamori_runtime::{Health, Placement, PolicyChanges, PolicyFeed, State};
use mamori_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

struct Limits;
impl PolicyValidator for Limits {
    fn component(&self) -> &'static str {
        "limits"
    }
    fn default_policy(&self) -> Value {
        json!({"max": 10})
    }
    fn validate(&self, _: &Value) -> Result<(), Problems> {
        Ok(())
    }
}

struct Other;
impl PolicyValidator for Other {
    fn component(&self) -> &'static str {
        "other"
    }
    fn default_policy(&self) -> Value {
        json!({})
    }
    fn validate(&self, _: &Value) -> Result<(), Problems> {
        Ok(())
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct LimitsDoc {
    max: u32,
}

async fn next(feed: &mut PolicyFeed<LimitsDoc>) -> PolicyChanges {
    tokio::time::timeout(Duration::from_secs(5), feed.changed()).await.expect("a change within 5 s").unwrap()
}

#[tokio::test]
async fn only_changed_tenants_are_reread_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {backend}");
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let system = grant.scope();
        let actor = Actor::system();
        let towns = [mamori_store::testing::town(&store, &grant, "39301").await, mamori_store::testing::town(&store, &grant, "39302").await];
        let (a, b) = (towns[0], towns[1]);
        store.put_policy(&system, &actor, Some(a), &Limits, json!({"max": 3})).await.unwrap();
        let health = Health::default();
        let reporter = health.reporter("limits", Placement::Replicated);
        let mut feed = PolicyFeed::<LimitsDoc>::open(store.clone(), grant.clone(), &Limits, reporter.clone()).await.unwrap();
        let shared = feed.shared();
        let snap = feed.snapshot();
        assert_eq!(snap.for_tenant(a).max, 3);
        assert_eq!(snap.for_tenant(b).max, 10, "the built-in default");

        store.put_policy(&system, &actor, None, &Limits, json!({"max": 20})).await.unwrap();
        assert_eq!(next(&mut feed).await, PolicyChanges { default: true, tenants: vec![] });
        assert_eq!(shared.load().for_tenant(b).max, 20, "handlers holding the shared handle see it");
        assert_eq!(shared.load().for_tenant(a).max, 3);

        // Another component's save wakes the feed but is not reported; B's next save is.
        store.put_policy(&system, &actor, Some(a), &Other, json!({"x": 1})).await.unwrap();
        store.put_policy(&system, &actor, Some(b), &Limits, json!({"max": 5})).await.unwrap();
        assert_eq!(next(&mut feed).await, PolicyChanges { default: false, tenants: vec![b] });
        let now = feed.snapshot();
        assert!(now.shares(&snap, a), "A's parsed policy is the same value: not re-read");
        assert!(!now.shares(&snap, b));
        assert_eq!(now.for_tenant(b).max, 5);

        // A document that no longer fits keeps the previous value and marks the component degraded.
        reporter.set_for_tests(State::Active);
        store.put_policy(&system, &actor, Some(b), &Limits, json!({"maximum": 7})).await.unwrap();
        next_any(&mut feed).await;
        assert_eq!(feed.snapshot().for_tenant(b).max, 5);
        let h = health.snapshot().into_iter().find(|c| c.name == "limits").unwrap();
        assert_eq!(h.state, State::Degraded, "{h:?}");
        assert!(h.reason.unwrap_or_default().contains("maximum"));
        store.close().await;
    }
}

/// Lets the feed apply a save that reports no change (it then waits for the next one).
async fn next_any(feed: &mut PolicyFeed<LimitsDoc>) {
    let _ = tokio::time::timeout(Duration::from_millis(500), feed.changed()).await;
}

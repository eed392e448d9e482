//! The tenant resolver of a node (F06, F07, F11, F41): built at start, swapped when
//! tenants change, also when the change is made on another node of the same store.

use mamori_bus::Bus;
use mamori_core::{Actor, NewTenant, Segment, SegmentName};
use mamori_runtime::{Node, Plan, Registry};
use mamori_store::Store;
use mamori_store::events::EventStore;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn town(code5: &str, name: &str, ranges: &[&str], mail: &str) -> mamori_core::CheckedTenant {
    NewTenant {
        code: mamori_core::LocalGovCode::from_five(code5).unwrap().to_string(),
        name: name.into(),
        kana: "テスト".into(),
        kind: "town".into(),
        network_ranges: ranges.iter().map(|r| r.to_string()).collect(),
        mail_domains: vec![mail.into()],
        ..Default::default()
    }
    .check()
    .unwrap()
}

#[tokio::test]
async fn f06_resolver_follows_changes_made_on_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    // Two nodes: two processes' stores on one database.
    let (here, authority) = Store::open(&url).await.unwrap();
    let _grant = authority.grant("test", "test").await.unwrap();
    let (there, authority) = Store::open(&url).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    let poller = here.spawn_directory_poller(Duration::from_millis(100));
    let system = grant.scope();
    let actor = Actor::system();
    for (name, zone) in [("wan-a", "internet"), ("wan-b", "internet")] {
        there.put_segment(&system, &actor, Segment::check(name, name, zone, "").unwrap()).await.unwrap();
    }
    there.create_tenant(&system, &actor, town("39301", "東町", &["192.168.1.0/24@wan-a"], "higashi.example.lg.jp")).await.unwrap();

    let bus = Bus::new(EventStore::open(&dir.path().join("events")).unwrap(), 16).unwrap();
    let node = Node::default();
    let running = Plan::check(&Registry::default(), &Default::default(), |_| true, &[])
        .unwrap()
        .bind()
        .unwrap()
        .start(&node, here.clone(), &authority, bus, mamori_vault::Vault::for_tests(here.clone(), &grant, dir.path()).await)
        .await
        .unwrap();
    let resolver = running.tenants().clone();
    let (a, b): (SegmentName, SegmentName) = ("wan-a".parse().unwrap(), "wan-b".parse().unwrap());
    let ip: IpAddr = "192.168.1.20".parse().unwrap();
    let east = resolver.by_address(&a, ip).expect("loaded at start");
    assert_eq!(resolver.by_address(&b, ip), None);

    // Another node registers a second town with the same private range on wan-b.
    let west = there.create_tenant(&system, &actor, town("39302", "西町", &["192.168.1.0/24@wan-b"], "nishi.example.lg.jp")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while resolver.by_address(&b, ip).is_none() {
        assert!(Instant::now() < deadline, "the change on the other node never reached this node's resolver");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(resolver.by_address(&b, ip), Some(west.id));
    assert_eq!(resolver.by_address(&a, ip), Some(east));
    assert_eq!(resolver.by_mail_domain("kikaku@nishi.example.lg.jp"), Some(west.id));

    // A deletion there is seen here too.
    there.delete_tenant(&system, &actor, west.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while resolver.by_address(&b, ip).is_some() {
        assert!(Instant::now() < deadline, "the deletion never reached this node's resolver");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    poller.abort();
}

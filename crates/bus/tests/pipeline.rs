//! The pipeline end to end: publish (acknowledged in the log), asynchronous indexing
//! into the event store, replay after a restart, back-pressure, and readers by cursor
//! that see every event while a slow live subscriber loses copies and counts them.

mod common;

use common::{BASE, events, grant};
use mamori_bus::{Bus, BusOptions};
use mamori_core::TenantId;
use mamori_store::Scope;
use mamori_store::events::{EventQuery, EventStore};
use std::path::Path;
use std::sync::atomic::Ordering;

async fn count(bus: &Bus, scope: &Scope) -> usize {
    let mut q = EventQuery { from_ms: BASE - 1, to_ms: BASE + 86_400_000, limit: 1000, ..Default::default() };
    let mut total = 0;
    loop {
        let page = bus.events().query(scope, &q).await.unwrap();
        total += page.events.len();
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return total,
        }
    }
}

fn open(dir: &Path, options: BusOptions) -> Bus {
    Bus::open(EventStore::open(dir).unwrap(), options).unwrap()
}

#[tokio::test]
async fn published_events_become_searchable_and_a_replay_stores_none_twice() {
    let (_c, grant) = grant().await;
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new();
    let scope = grant.scope();
    {
        let bus = open(dir.path(), BusOptions::default());
        for b in 0..5 {
            assert_eq!(bus.publish(events(tenant, b * 400, 400)).await.unwrap(), 400);
        }
        assert_eq!(bus.end(), 2000, "acknowledged in the log");
        bus.searchable().await;
        assert_eq!(count(&bus, &scope).await, 2000);
        let q = EventQuery { from_ms: BASE - 1, to_ms: BASE + 86_400_000, text: Some("試行 1234".into()), ..Default::default() };
        assert_eq!(bus.events().query(&scope, &q).await.unwrap().events.len(), 1, "full text still finds Japanese");
        let p = bus.pipeline();
        assert_eq!((p.log_end, p.indexed), (2000, 2000));
    }
    // A stale checkpoint (a crash before it was written): the indexer replays the
    // whole log, and the partitions skip what they hold.
    std::fs::remove_file(dir.path().join("log/indexed")).unwrap();
    let bus = open(dir.path(), BusOptions::default());
    bus.publish(events(tenant, 2000, 10)).await.unwrap();
    bus.searchable().await;
    assert_eq!(count(&bus, &scope).await, 2010, "every event once");
    // A bad event refuses its batch, and nothing of it is acknowledged.
    let mut bad = events(tenant, 3000, 2);
    bad[1].time = 1;
    assert!(bus.publish(bad).await.is_err());
    assert_eq!(bus.end(), 2010);
}

#[tokio::test]
async fn publishers_wait_for_an_indexer_too_far_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new();
    let bus = open(dir.path(), BusOptions { max_lag: 500, ..Default::default() });
    let mut worst = 0;
    for b in 0..20 {
        bus.publish(events(tenant, b * 250, 250)).await.unwrap();
        let p = bus.pipeline();
        worst = worst.max(p.log_end - p.indexed);
    }
    assert!(worst <= 500 + 250, "the lag stays bounded: {worst}");
    bus.searchable().await;
    assert_eq!(bus.pipeline().indexed, 5000);
}

/// A burst of a million events (`MAMORI_BURST_EVENTS` for another number): a reader
/// by cursor gets every event in order, while a live subscriber that never reads
/// loses copies and the loss is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_by_cursor_sees_every_event_of_a_burst_while_a_slow_subscriber_drops() {
    let n: usize = std::env::var("MAMORI_BURST_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new();
    let bus = open(dir.path(), BusOptions { live_capacity: 1000, max_lag: u64::MAX, ..Default::default() });
    let mut slow = bus.subscribe();
    let mut reader = bus.reader(0);
    let reading = tokio::spawn(async move {
        let mut next = 0u64;
        while (next as usize) < n {
            let Some(batch) = reader.next(10_000).await else { break };
            for (offset, e) in batch {
                assert_eq!(offset, next, "in order, no gap, no repeat");
                assert_eq!(e.time, BASE + offset as i64);
                next += 1;
            }
        }
        next
    });
    let publisher = bus.clone();
    let publishing = tokio::spawn(async move {
        for from in (0..n).step_by(1000) {
            publisher.publish(events(tenant, from, 1000.min(n - from))).await.unwrap();
        }
    });
    publishing.await.unwrap();
    assert_eq!(reading.await.unwrap(), n as u64, "the reader saw every event");
    // The slow subscriber gets the newest copies and learns how many it lost.
    let first = slow.next().await.unwrap();
    assert!(first.time > BASE, "older copies are gone");
    // (The live channel rounds its 1,000 up to a power of two.)
    let lost = bus.stats().lagged.load(Ordering::Relaxed);
    assert_eq!(lost, (n - 1024) as u64, "the loss is counted, exactly");
}

/// A late event lands in the day partition of its event time and keeps both times: when
/// it happened and when the bus received it (`metadata.logged_time`), whatever the
/// submitter wrote there.
#[tokio::test]
async fn a_late_event_lands_in_its_own_day_with_its_receipt_time() {
    let (_c, grant) = grant().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = open(dir.path(), BusOptions::default());
    let now = mamori_core::time::now_ms();
    let tenant = TenantId::new();
    let mut late = mamori_core::Event::new(tenant, now - 3 * 86_400_000, mamori_core::EventClass::HTTP_ACTIVITY, "三日前の記録", "test");
    late.received = Some(1); // a submitter's claim: replaced
    bus.publish(vec![late.clone()]).await.unwrap();
    bus.searchable().await;
    let day = mamori_core::time::format_rfc3339(late.time)[..10].to_string();
    assert_eq!(bus.events().partitions().unwrap().into_iter().map(|p| p.day).collect::<Vec<_>>(), vec![day], "the partition of its event time");
    let got = bus.events().get(&grant.scope(), late.id).await.unwrap().unwrap();
    assert_eq!(got.event.time, late.time);
    let received = got.event.received.unwrap();
    assert!(received >= now && received <= mamori_core::time::now_ms(), "received now: {received}");
    assert_eq!(got.doc["metadata"]["logged_time"], received);
}

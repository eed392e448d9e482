//! The event log over a real NATS JetStream (Debian's `nats-server`, started here with
//! JetStream on): an intake bus publishes, an indexing bus with its own event store
//! consumes; restarting the indexer or the server loses nothing and stores nothing
//! twice; partitions split tenants between indexers; a retried publish is stored once.
//!
//! Outside CI the tests are skipped when `nats-server` is not installed; under CI (`CI`
//! set) that is a failure (`scripts/test` installs it).

mod common;

use common::{BASE, events, grant};
use mamori_bus::jetstream::JetStreamOptions;
use mamori_bus::testing::NatsServer;
use mamori_bus::{Bus, BusError, BusOptions};
use mamori_core::TenantId;
use mamori_store::Scope;
use mamori_store::events::{EventQuery, EventStore};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// A nats-server for one test, with its store in a folder of its own.
struct Nats {
    server: NatsServer,
    _dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Option<Nats> {
        let dir = tempfile::tempdir().unwrap();
        Some(Nats { server: NatsServer::start(dir.path())?, _dir: dir })
    }

    fn options(&self, partitions: u32, index: Option<u32>) -> JetStreamOptions {
        JetStreamOptions { urls: vec![self.server.url()], partitions, index_partition: index, node: "test".into(), ..Default::default() }
    }
}

/// Every stored event's (tenant, id), page by page.
async fn stored(bus: &Bus, scope: &Scope) -> Vec<(TenantId, String)> {
    let mut q = EventQuery { from_ms: BASE - 1, to_ms: BASE + 86_400_000, limit: 1000, ..Default::default() };
    let mut out = Vec::new();
    loop {
        let page = bus.events().query(scope, &q).await.unwrap();
        out.extend(page.events.iter().map(|e| (e.event.tenant, e.event.id.to_string())));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

async fn connect(dir: &Path, nats: &Nats, partitions: u32, index: Option<u32>) -> Bus {
    Bus::connect(EventStore::open(dir).unwrap(), BusOptions::default(), nats.options(partitions, index)).await.unwrap()
}

async fn within<F: std::future::Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f).await.unwrap_or_else(|_| panic!("{what} within {secs} s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_on_an_intake_bus_are_searchable_on_the_indexing_bus_and_a_restart_loses_nothing() {
    let Some(nats) = Nats::start() else { return };
    let (_c, grant) = grant().await;
    let scope = grant.scope();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let intake = connect(a_dir.path(), &nats, 1, None).await;
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::new()).collect();
    let mut sent = HashSet::new();
    let indexer = connect(b_dir.path(), &nats, 1, Some(0)).await;
    for (i, t) in tenants.iter().enumerate() {
        let batch = events(*t, i * 10_000, 2000);
        sent.extend(batch.iter().map(|e| e.id.to_string()));
        assert_eq!(intake.publish(batch).await.unwrap(), 2000);
    }
    // The intake node knows when the indexer has them (its progress, through JetStream).
    within(30, "searchable as seen from the intake bus", intake.searchable()).await;
    let got = stored(&indexer, &scope).await;
    assert_eq!(got.len(), 6000);
    assert_eq!(got.iter().map(|(_, id)| id.clone()).collect::<HashSet<_>>(), sent);
    assert!(stored(&intake, &scope).await.is_empty(), "an intake node stores nothing itself");
    let p = intake.pipeline();
    assert_eq!((p.log_end, p.indexed), (6000, 6000), "the lag is visible on the intake node: {p:?}");

    // The indexer goes away; the intake goes on; the indexer comes back from its
    // checkpoint on its own disk and catches up, storing nothing twice.
    drop(indexer);
    for (i, t) in tenants.iter().enumerate() {
        let batch = events(*t, i * 10_000 + 2000, 1500);
        sent.extend(batch.iter().map(|e| e.id.to_string()));
        intake.publish(batch).await.unwrap();
    }
    // Its checkpoint set back: a replay from the start, which the store recognises.
    std::fs::write(b_dir.path().join("log").join("indexed-MAMORI_EVENTS_0"), "1000").unwrap();
    let indexer = connect(b_dir.path(), &nats, 1, Some(0)).await;
    within(30, "caught up after the restart", indexer.searchable()).await;
    let got = stored(&indexer, &scope).await;
    let ids: HashSet<String> = got.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), got.len(), "none twice");
    assert_eq!(ids, sent, "none lost");

    drop(indexer);
    // A checkpoint beyond the stream's end (the stream was made again): refused.
    std::fs::write(b_dir.path().join("log").join("indexed-MAMORI_EVENTS_0"), "99999999").unwrap();
    let refused = Bus::connect(EventStore::open(b_dir.path()).unwrap(), BusOptions::default(), nats.options(1, Some(0))).await;
    assert!(matches!(&refused, Err(BusError::Transport(m)) if m.contains("made again")), "{:?}", refused.err());
    std::fs::write(b_dir.path().join("log").join("indexed-MAMORI_EVENTS_0"), sent.len().to_string()).unwrap();
    let indexer = connect(b_dir.path(), &nats, 1, Some(0)).await;

    // A reader by cursor on the indexing node sees every event in order.
    let mut reader = indexer.reader(0);
    let mut seen = 0;
    while seen < sent.len() {
        let batch = within(10, "the reader by cursor", reader.next(5000)).await.unwrap();
        for (offset, _) in &batch {
            assert_eq!(*offset, seen as u64);
            seen += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_publish_is_stored_once_and_a_server_restart_loses_nothing() {
    let Some(mut nats) = Nats::start() else { return };
    let (_c, grant) = grant().await;
    let scope = grant.scope();
    let dir = tempfile::tempdir().unwrap();
    let bus = connect(dir.path(), &nats, 1, Some(0)).await;
    let tenant = TenantId::new();
    let batch = events(tenant, 0, 500);
    bus.publish(batch.clone()).await.unwrap();
    // The same events again, as a client does when an acknowledgement was lost.
    bus.publish(batch.clone()).await.unwrap();
    within(30, "searchable", bus.searchable()).await;
    assert_eq!(stored(&bus, &scope).await.len(), 500, "JetStream dropped the duplicates by event id");

    // The server goes down: publishing fails clearly (nothing acknowledged), nothing panics.
    nats.server.kill();
    let failed = tokio::time::timeout(Duration::from_secs(30), bus.publish(events(tenant, 1000, 10))).await;
    assert!(matches!(failed, Ok(Err(BusError::Transport(_))) | Err(_)), "{failed:?}");
    // It comes back with its store: what was acknowledged is there, new events flow.
    nats.server.run();
    let mut more = events(tenant, 2000, 300);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match bus.publish(more.clone()).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "publishing did not resume: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                more = more.clone();
            }
        }
    }
    within(30, "searchable after the server restart", bus.searchable()).await;
    let got = stored(&bus, &scope).await;
    let ids: HashSet<&String> = got.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), got.len(), "none twice");
    for e in batch.iter().chain(&more) {
        assert!(ids.contains(&e.id.to_string()), "acknowledged event {} is stored", e.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_split_tenants_between_indexers() {
    let Some(nats) = Nats::start() else { return };
    let (_c, grant) = grant().await;
    let scope = grant.scope();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let intake = connect(dirs[0].path(), &nats, 2, None).await;
    let first = connect(dirs[1].path(), &nats, 2, Some(0)).await;
    let second = connect(dirs[2].path(), &nats, 2, Some(1)).await;
    let tenants: Vec<TenantId> = (0..12).map(|_| TenantId::new()).collect();
    for (i, t) in tenants.iter().enumerate() {
        intake.publish(events(*t, i * 1000, 200)).await.unwrap();
    }
    within(30, "both partitions searchable", intake.searchable()).await;
    let a: HashSet<TenantId> = stored(&first, &scope).await.into_iter().map(|(t, _)| t).collect();
    let b: HashSet<TenantId> = stored(&second, &scope).await.into_iter().map(|(t, _)| t).collect();
    assert!(a.is_disjoint(&b), "a tenant is indexed by one indexer only");
    assert_eq!(a.len() + b.len(), tenants.len(), "every tenant is indexed");
    assert!(!a.is_empty() && !b.is_empty(), "both partitions are used: {a:?} {b:?}");
    for t in &tenants {
        let k = mamori_bus::jetstream::partition_of(&t.to_string(), 2);
        assert!(if k == 0 { a.contains(t) } else { b.contains(t) });
    }
    assert_eq!(stored(&first, &scope).await.len() + stored(&second, &scope).await.len(), 12 * 200);
}

/// The benchmark's split run: every event through an intake-only bus, then an indexing
/// bus alone on the full stream, timed apart; all are searchable at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_times_an_indexing_node_alone() {
    let Some(nats) = Nats::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let js = JetStreamOptions { stream: "BENCHSPLIT".into(), subject: "bench.split".into(), ..nats.options(1, Some(0)) };
    let r = mamori_bus::bench::run_split(
        &dir.path().join("events"),
        3000,
        mamori_store::events::mix::Kind::Standard,
        Some(js),
        mamori_bus::bench::Split::IndexAfter,
    )
    .await
    .unwrap();
    let alone = r.index_only.expect("the indexing node is timed alone");
    assert!(alone <= r.searchable && r.acknowledged <= r.searchable);
    let (_g, grant) = grant().await;
    let store = EventStore::open(&dir.path().join("events")).unwrap();
    let now = mamori_core::time::now_ms();
    let counts = store.count_by_tenant(&grant.scope(), now - 30 * 86_400_000, now + 86_400_000, None).await.unwrap();
    assert_eq!(counts.values().sum::<u64>(), 3000, "every event indexed by the second bus");
}

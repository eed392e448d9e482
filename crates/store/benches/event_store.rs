//! Event store benchmark: append throughput, then query latencies.
//!
//! `MAMORI_BENCH_EVENTS` events (default 10 000 000) spread over 7 days and 50
//! tenants are appended in batches of 1000 with `append_blocking` from one thread;
//! then each query shape runs 20 times (rotating the tenant) and the median and p95
//! latencies are printed, with the size on disk. The store goes to a temporary folder
//! under Cargo's target directory (or `MAMORI_BENCH_DIR`, kept afterwards).
//!
//! ```text
//! MAMORI_BENCH_EVENTS=200000 cargo bench -p mamori-store --bench event_store
//! ```

use mamori_core::{EventClass, Severity, TenantId};
use mamori_store::events::mix::{DAY, Mix, TENANTS};
use mamori_store::events::{EventQuery, EventStore, FieldFilter};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
const RUNS: usize = 20;

fn stats(name: &str, mut times: Vec<Duration>, rows: usize) {
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[((times.len() * 95).div_ceil(100)).saturating_sub(1).min(times.len() - 1)];
    println!("{name:<58} median {:>9.2} ms   p95 {:>9.2} ms   ({rows} rows in the last run)", median.as_secs_f64() * 1e3, p95.as_secs_f64() * 1e3);
}

fn main() {
    let n: usize = std::env::var("MAMORI_BENCH_EVENTS").ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(10_000_000);
    let (tmp, dir) = match std::env::var("MAMORI_BENCH_DIR") {
        Ok(d) => (None, std::path::PathBuf::from(d)),
        Err(_) => {
            let t = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary folder");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    println!("event store benchmark: {n} events, 7 days, {TENANTS} tenants, batches of {BATCH}, in {}", dir.display());
    let store = EventStore::open(&dir).expect("open store");
    let end = mamori_core::time::now_ms();
    let mut mix = Mix::new(n, end);
    let tenants: Vec<TenantId> = mix.tenants.clone();
    let start = mix.start();

    let wall = Instant::now();
    let mut in_store = Duration::ZERO;
    let mut done = 0usize;
    let mut last_report = Instant::now();
    while done < n {
        let size = BATCH.min(n - done);
        let batch = mix.batch(done, done + size);
        let t = Instant::now();
        let appended = store.append_blocking(batch).expect("append");
        in_store += t.elapsed();
        assert_eq!(appended, size as u64);
        done += size;
        if last_report.elapsed() > Duration::from_secs(30) {
            println!("  {done} events, {:.0} events/s so far", done as f64 / wall.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
    }
    let wall = wall.elapsed();
    println!(
        "append: {n} events in {:.1} s: {:.0} events/s overall, {:.0} events/s in append_blocking (excluding event generation)",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        n as f64 / in_store.as_secs_f64()
    );
    let parts = store.partitions().expect("partitions");
    let bytes: u64 = parts.iter().map(|p| p.bytes).sum();
    println!("on disk: {:.1} MiB in {} partitions ({:.0} bytes/event)", bytes as f64 / 1048576.0, parts.len(), bytes as f64 / n.max(1) as f64);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    // The event store has no authority of its own: a config store opened for the grant.
    let grant = rt.block_on(async {
        let (_cfg, authority) = mamori_store::Store::open(&format!("sqlite://{}", dir.join("config.db").display())).await.expect("config store");
        authority.grant("bench", "event store benchmark").await.expect("grant")
    });
    let last_day = EventQuery { limit: 100, ..EventQuery::between(end - DAY + 1, end + 1) };
    let probe_ip = {
        // An address that occurs in the last day of the first tenant.
        let q = EventQuery { classes: vec![EventClass::HTTP_ACTIVITY], ..last_day.clone() };
        let page = rt.block_on(store.query(&grant.tenant(tenants[0]), &q)).expect("query");
        page.events.first().and_then(|e| e.event.src.as_ref()?.ip.clone()).unwrap_or_else(|| "198.51.100.7".into())
    };
    let run = |name: &str, f: &dyn Fn(TenantId) -> usize| {
        let mut times = Vec::with_capacity(RUNS);
        let mut rows = 0;
        for i in 0..RUNS {
            let t = Instant::now();
            rows = f(tenants[i % TENANTS]);
            times.push(t.elapsed());
        }
        stats(name, times, rows);
    };
    run("(a) tenant + class HTTP + last 24 h, limit 100", &|t| {
        let q = EventQuery { classes: vec![EventClass::HTTP_ACTIVITY], ..last_day.clone() };
        rt.block_on(store.query(&grant.tenant(t), &q)).expect("query").events.len()
    });
    run("(b) (a) + text 不正アクセス", &|t| {
        let q = EventQuery { classes: vec![EventClass::HTTP_ACTIVITY], text: Some("不正アクセス".into()), ..last_day.clone() };
        rt.block_on(store.query(&grant.tenant(t), &q)).expect("query").events.len()
    });
    let ip_filter = FieldFilter::parse(&format!("src_endpoint.ip={probe_ip}")).expect("filter");
    run(&format!("(c) tenant + last 24 h + src_endpoint.ip={probe_ip}"), &|t| {
        let q = EventQuery { fields: vec![ip_filter.clone()], ..last_day.clone() };
        rt.block_on(store.query(&grant.tenant(t), &q)).expect("query").events.len()
    });
    run("(d) histogram, tenant, 7 days, 168 buckets", &|t| {
        let q = EventQuery::between(start, end + 1);
        rt.block_on(store.histogram(&grant.tenant(t), &q, 168)).expect("histogram").total as usize
    });
    let all = grant.scope();
    run("(e) all tenants + severity >= high + last 24 h, limit 100", &|_| {
        let q = EventQuery { min_severity: Some(Severity::HIGH), ..last_day.clone() };
        rt.block_on(store.query(&all, &q)).expect("query").events.len()
    });
    drop(store);
    drop(tmp);
}

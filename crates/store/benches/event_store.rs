//! Event store benchmark: append throughput, then query latencies.
//!
//! `MAMORI_BENCH_EVENTS` events (default 10 000 000) spread over 7 days and 50
//! tenants are appended in batches of 20,000 (the event pipeline's indexer hands the
//! store batches of that size) with `append_blocking` from one thread; then each query
//! shape runs 20 times (rotating the tenant) and the median and p95 latencies are
//! printed, with the size on disk. The store goes to a temporary folder under Cargo's
//! target directory (or `MAMORI_BENCH_DIR`, kept afterwards).
//!
//! With `MAMORI_BENCH_PG_URL` (a PostgreSQL server with `pg_trgm`, e.g.
//! `PG_DURABLE=1 scripts/pg-test-server start /tmp/pgb 55498`), the same events then go
//! into PostgreSQL as a peer: one table with B-tree indexes on the same keys and a
//! `pg_trgm` GIN index over the search text, loaded with `COPY` in the same batches
//! (each one commit), and the same queries run against it. `MAMORI_BENCH_PG_EVENTS`
//! loads fewer events there (the same mix of N events over the same 7 days, e.g. when
//! disk or time do not allow 10 million; compare with a run of ours at that N).
//!
//! ```text
//! MAMORI_BENCH_EVENTS=200000 cargo bench -p mamori-store --bench event_store
//! ```

use mamori_core::{EventClass, Severity, TenantId};
use mamori_store::events::mix::{DAY, Mix, TENANTS};
use mamori_store::events::{EventQuery, EventStore, FieldFilter};
use std::time::{Duration, Instant};

const BATCH: usize = 20_000;
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
    if let Ok(url) = std::env::var("MAMORI_BENCH_PG_URL") {
        let pg_n: usize = std::env::var("MAMORI_BENCH_PG_EVENTS").ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(n).min(n);
        rt.block_on(pg::run(&url, pg_n, end, &probe_ip)).expect("PostgreSQL peer");
    }
}

/// The PostgreSQL peer: the same events, indexes a user would create, the same queries.
mod pg {
    use super::{BATCH, RUNS, stats};
    use mamori_core::{Event, EventClass};
    use mamori_store::events::mix::{DAY, Mix, TENANTS};
    use sqlx::postgres::{PgPoolCopyExt, PgPoolOptions};
    use std::time::{Duration, Instant};

    const SCHEMA: &[&str] = &[
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "DROP TABLE IF EXISTS bench_events",
        "CREATE TABLE bench_events (seq bigserial PRIMARY KEY, id uuid NOT NULL, time bigint NOT NULL, tenant uuid NOT NULL, class_uid int NOT NULL, \
         severity_id int NOT NULL, disposition_id int, src_ip text, dst_ip text, usr text, message text NOT NULL, doc jsonb NOT NULL, search text NOT NULL)",
        "CREATE INDEX ON bench_events (time)",
        "CREATE INDEX ON bench_events (tenant, time)",
        "CREATE INDEX ON bench_events (tenant, class_uid, time)",
        "CREATE INDEX ON bench_events (src_ip, time) WHERE src_ip IS NOT NULL",
        "CREATE INDEX ON bench_events (dst_ip, time) WHERE dst_ip IS NOT NULL",
        "CREATE INDEX ON bench_events (usr, time) WHERE usr IS NOT NULL",
        "CREATE INDEX ON bench_events USING gin (search gin_trgm_ops)",
    ];

    /// Appends `s` escaped for COPY's text format.
    fn field(out: &mut String, s: Option<&str>) {
        match s {
            None => out.push_str("\\N"),
            Some(s) => {
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }

    fn line(out: &mut String, e: &Event) {
        let cols: [Option<String>; 12] = [
            Some(e.id.to_string()),
            Some(e.time.to_string()),
            Some(e.tenant.to_string()),
            Some(e.class.0.to_string()),
            Some(e.severity.0.to_string()),
            e.disposition.map(|d| d.0.to_string()),
            e.src.as_ref().and_then(|s| s.ip.clone()),
            e.dst.as_ref().and_then(|s| s.ip.clone()),
            e.user.clone(),
            Some(e.message.clone()),
            Some(serde_json::to_string(&e.to_ocsf()).unwrap_or_default()),
            Some(e.search_text()),
        ];
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            field(out, c.as_deref());
        }
        out.push('\n');
    }

    pub async fn run(url: &str, pg_n: usize, end: i64, probe_ip: &str) -> Result<(), sqlx::Error> {
        let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&pool).await?;
        }
        println!("PostgreSQL peer: {pg_n} events of the same mix, COPY in batches of {BATCH} (one commit each)");
        // The same mix (same seed, same 7 days, same end): pg_n events of it.
        let mut mix = Mix::new(pg_n, end);
        let tenants = mix.tenants.clone();
        let start = mix.start();
        let wall = Instant::now();
        let mut in_pg = Duration::ZERO;
        let mut done = 0;
        while done < pg_n {
            let size = BATCH.min(pg_n - done);
            let batch = mix.batch(done, done + size);
            let t = Instant::now();
            let mut text = String::with_capacity(size * 1500);
            for e in &batch {
                line(&mut text, e);
            }
            let mut copy = pool
                .copy_in_raw(
                    "COPY bench_events (id, time, tenant, class_uid, severity_id, disposition_id, src_ip, dst_ip, usr, message, doc, search) FROM STDIN",
                )
                .await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
            in_pg += t.elapsed();
            done += size;
        }
        let wall = wall.elapsed();
        println!(
            "PostgreSQL append: {pg_n} events in {:.1} s: {:.0} events/s overall, {:.0} events/s in COPY (excluding event generation)",
            wall.as_secs_f64(),
            pg_n as f64 / wall.as_secs_f64(),
            pg_n as f64 / in_pg.as_secs_f64()
        );
        sqlx::query("ANALYZE bench_events").execute(&pool).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('bench_events')").fetch_one(&pool).await?;
        println!("PostgreSQL on disk: {:.1} MiB ({:.0} bytes/event, table and indexes)", bytes as f64 / 1048576.0, bytes as f64 / pg_n.max(1) as f64);
        let (lo, hi) = (end - DAY + 1, end + 1);
        let http = i32::try_from(EventClass::HTTP_ACTIVITY.0).unwrap_or(0);
        macro_rules! timed {
            ($name:expr, $sql:expr, $bind:expr) => {{
                let mut times = Vec::with_capacity(RUNS);
                let mut rows = 0;
                for i in 0..RUNS {
                    let t = tenants[i % TENANTS];
                    let started = Instant::now();
                    let q = sqlx::query($sql);
                    rows = $bind(q, t).fetch_all(&pool).await?.len();
                    times.push(started.elapsed());
                }
                stats($name, times, rows);
            }};
        }
        type Q<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;
        timed!(
            "PG (a) tenant + class HTTP + last 24 h, limit 100",
            "SELECT doc FROM bench_events WHERE tenant = $1::uuid AND class_uid = $2 AND time >= $3 AND time < $4 ORDER BY time DESC, seq DESC LIMIT 100",
            |q: Q<'static>, t: mamori_core::TenantId| q.bind(t.to_string()).bind(http).bind(lo).bind(hi)
        );
        timed!(
            "PG (b) (a) + text 不正アクセス (ILIKE, pg_trgm)",
            "SELECT doc FROM bench_events WHERE tenant = $1::uuid AND class_uid = $2 AND time >= $3 AND time < $4 AND search ILIKE '%不正アクセス%' ORDER BY time DESC, seq DESC LIMIT 100",
            |q: Q<'static>, t: mamori_core::TenantId| q.bind(t.to_string()).bind(http).bind(lo).bind(hi)
        );
        let ip = probe_ip.to_string();
        timed!(
            &format!("PG (c) tenant + last 24 h + src_ip={probe_ip}"),
            "SELECT doc FROM bench_events WHERE tenant = $1::uuid AND src_ip = $2 AND time >= $3 AND time < $4 ORDER BY time DESC, seq DESC LIMIT 100",
            |q: Q<'static>, t: mamori_core::TenantId| q.bind(t.to_string()).bind(ip.clone()).bind(lo).bind(hi)
        );
        let range = end + 1 - start;
        let bucket = (range + 167) / 168;
        timed!(
            "PG (d) histogram, tenant, 7 days, 168 buckets",
            "SELECT (time - $2) / $3 AS b, count(*) FROM bench_events WHERE tenant = $1::uuid AND time >= $2 AND time < $4 GROUP BY 1",
            |q: Q<'static>, t: mamori_core::TenantId| q.bind(t.to_string()).bind(start).bind(bucket).bind(end + 1)
        );
        timed!(
            "PG (e) all tenants + severity >= high + last 24 h, limit 100",
            "SELECT doc FROM bench_events WHERE severity_id >= 4 AND time >= $1 AND time < $2 ORDER BY time DESC, seq DESC LIMIT 100",
            |q: Q<'static>, _t: mamori_core::TenantId| q.bind(lo).bind(hi)
        );
        sqlx::query("DROP TABLE bench_events").execute(&pool).await?;
        Ok(())
    }
}

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

use mamori_core::{Disposition, Endpoint, Event, EventClass, Severity, TenantId};
use mamori_store::events::{EventQuery, EventStore, FieldFilter};
use serde_json::json;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000;
const TENANTS: usize = 50;
const BATCH: usize = 1000;
const RUNS: usize = 20;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PATHS: [&str; 8] =
    ["/", "/portal/login", "/kurashi/gomi.html", "/api/v1/forms", "/admin/login", "/bousai/index.html", "/wp-login.php", "/search?q=%E7%A8%8E"];
const USERS: [&str; 6] = ["tanaka", "suzuki", "sato", "takahashi", "watanabe", "admin"];
const DOMAINS: [&str; 5] = ["www.pref.example.lg.jp", "mail.example.lg.jp", "update.example.com", "cdn.example.net", "c2.bad.example"];

/// Returns one realistic event of tenant `t` at `time`.
fn make_event(rng: &mut Rng, tenants: &[TenantId], time: i64) -> Event {
    let ti = rng.below(TENANTS as u64) as usize;
    let tenant = tenants[ti];
    let internal = format!("10.{}.{}.{}", ti, rng.below(256), rng.below(254) + 1);
    let external = format!("{}.{}", ["198.51.100", "203.0.113", "192.0.2"][rng.below(3) as usize], rng.below(256));
    let roll = rng.below(100);
    let (class, message, severity, disposition) = match roll {
        0..40 => {
            let path = PATHS[rng.below(PATHS.len() as u64) as usize];
            if rng.below(200) == 0 {
                (EventClass::HTTP_ACTIVITY, format!("県庁への不正アクセスを検知: {path}"), Severity::HIGH, Disposition::BLOCKED)
            } else {
                let status = [200, 200, 200, 304, 404, 403][rng.below(6) as usize];
                (EventClass::HTTP_ACTIVITY, format!("GET {path} {status}"), Severity::INFO, Disposition::ALLOWED)
            }
        }
        40..65 => (EventClass::NETWORK_ACTIVITY, format!("TCP {internal} -> {external}:443 許可"), Severity::INFO, Disposition::ALLOWED),
        65..80 => {
            let d = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
            (EventClass::DNS_ACTIVITY, format!("DNS 問い合わせ {d} A"), Severity::INFO, Disposition::LOGGED)
        }
        80..90 => {
            let u = USERS[rng.below(USERS.len() as u64) as usize];
            if rng.below(4) == 0 {
                (EventClass::AUTHENTICATION, format!("ログイン失敗: ユーザー {u}"), Severity::MEDIUM, Disposition::BLOCKED)
            } else {
                (EventClass::AUTHENTICATION, format!("ログイン成功: ユーザー {u}"), Severity::INFO, Disposition::ALLOWED)
            }
        }
        90..95 => (EventClass::DETECTION_FINDING, format!("マルウェア通信の疑い: {external} (C2)"), Severity::CRITICAL, Disposition::BLOCKED),
        95..98 => (EventClass::EMAIL_ACTIVITY, "添付ファイルを無害化しました: 請求書.zip".to_string(), Severity::LOW, Disposition::CORRECTED),
        _ => (EventClass::APPLICATION_LIFECYCLE, "mamori-edge を再起動しました".to_string(), Severity::INFO, Disposition::LOGGED),
    };
    let mut e = Event::new(tenant, time, class, message, "mamori-edge");
    e.severity = severity;
    e.disposition = Some(disposition);
    let inbound = class == EventClass::HTTP_ACTIVITY || class == EventClass::AUTHENTICATION;
    let (src, dst) = if inbound { (external, internal) } else { (internal, external) };
    let sport = 1024 + rng.below(60_000) as u16;
    e.src = Some(Endpoint { ip: Some(src.clone()), port: Some(sport), hostname: None });
    e.dst = Some(Endpoint { ip: Some(dst.clone()), port: Some(443), hostname: None });
    if class == EventClass::AUTHENTICATION {
        e.user = Some(USERS[rng.below(USERS.len() as u64) as usize].to_string());
    }
    if class == EventClass::HTTP_ACTIVITY {
        e.fields.insert("http_request".into(), json!({"http_method": "GET", "url": {"hostname": "www.pref.example.lg.jp"}}));
    }
    let raw = format!(
        "<134>1 {time} fw{:02} mamori-edge 2231 - - action={} src={src} sport={sport} dst={dst} dport=443 proto=tcp bytes={} rule=R{:04} policy=default session={:016x}",
        ti % 4,
        disposition.en().to_lowercase(),
        rng.below(100_000),
        rng.below(2000),
        rng.next()
    );
    e.raw = Some(raw);
    e
}

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
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tenants: Vec<TenantId> = (0..TENANTS).map(|_| TenantId::new()).collect();
    let end = mamori_core::time::now_ms();
    let start = end - 7 * DAY;
    let span = (end - start) as u128;

    let wall = Instant::now();
    let mut in_store = Duration::ZERO;
    let mut done = 0usize;
    let mut last_report = Instant::now();
    while done < n {
        let size = BATCH.min(n - done);
        let batch: Vec<Event> = (done..done + size).map(|i| make_event(&mut rng, &tenants, start + ((i as u128 * span) / n as u128) as i64)).collect();
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

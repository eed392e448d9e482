//! Monitoring benchmark: checks per minute on one core (HTTP and DNS against the local
//! nginx and BIND of `scripts/monitor-peers`), side by side with Prometheus
//! blackbox_exporter (Debian package) pinned to one core; scheduler jitter; memory per
//! 10,000 monitors.
//!
//! Run (as root): `cargo bench -p mamori-monitor --bench monitor`
//! Env: `MAMORI_BENCH_SECS` (default 10) seconds per measurement.

use mamori_core::monitor::{MonitorId, MonitorSpec};
use mamori_core::{Actor, NewTenant};
use mamori_monitor::engine::{Engine, EngineConfig};
use mamori_monitor::notify::Notifier;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn secs() -> u64 {
    std::env::var("MAMORI_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok())))
        .unwrap_or(0)
}

/// Runs `conc` check loops on a single-threaded runtime (one core) for `secs`; returns checks/min.
fn ours(spec: &MonitorSpec, conc: usize, secs: u64) -> (f64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (spec, done, failed) = (spec.clone(), done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = mamori_monitor::check::run(MonitorId::new(), &spec).await;
                    if r.status == mamori_core::monitor::Status::Down {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    (done.load(Ordering::Relaxed) as f64 * 60.0 / secs as f64, failed.load(Ordering::Relaxed))
}

/// Drives blackbox_exporter's /probe with `conc` clients; returns probes/min and failures.
fn blackbox(port: u16, query: &str, conc: usize, secs: u64) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (done, failed, query) = (done.clone(), failed.clone(), query.to_string());
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                while Instant::now() < deadline {
                    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { continue };
                    let _ = s.write_all(format!("GET /probe?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
                    let mut b = String::new();
                    let _ = s.read_to_string(&mut b);
                    if !b.contains("probe_success 1") {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    (done.load(Ordering::Relaxed) as f64 * 60.0 / secs as f64, failed.load(Ordering::Relaxed))
}

fn main() {
    // Pin ourselves to core 0; blackbox_exporter gets core 1.
    let _ = Command::new("taskset").args(["-pc", "0", &std::process::id().to_string()]).stdout(Stdio::null()).status();
    let secs = secs();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/monitor-peers");
    let dir = tempfile::Builder::new().prefix("mamori-bench-peers").tempdir_in("/tmp").unwrap();
    let ok = Command::new("bash")
        .arg(&script)
        .args(["start", &dir.path().to_string_lossy(), &(21_000 + (std::process::id() % 200) * 50).to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("cannot start the peers (run as root after `scripts/monitor-peers install`)");
        std::process::exit(1);
    }
    let env: std::collections::HashMap<String, String> = std::fs::read_to_string(dir.path().join("peers.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let http_port = &env["HTTP_PORT"];
    let ns1 = &env["NS1_PORT"];
    let http: MonitorSpec = serde_json::from_value(
        json!({"name": "b", "check": {"type": "http", "url": format!("http://127.0.0.1:{http_port}/"), "keyword": "Mamori"}, "platform_targets": true}),
    )
    .unwrap();
    let dns: MonitorSpec =
        serde_json::from_value(json!({"name": "b", "check": {"type": "dns", "zone": "test.lg.jp", "servers": [format!("127.0.0.1:{ns1}")], "refuse_recursion": false, "serial_consistency": false}, "platform_targets": true}))
            .unwrap();

    // blackbox_exporter on core 1, one Go thread.
    let bb_dir = tempfile::tempdir().unwrap();
    let cfg = bb_dir.path().join("blackbox.yml");
    std::fs::write(
        &cfg,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      fail_if_body_not_matches_regexp: [\"Mamori\"]\n  dns_soa:\n    prober: dns\n    timeout: 5s\n    dns:\n      query_name: \"test.lg.jp\"\n      query_type: \"SOA\"\n      transport_protocol: \"udp\"\n      preferred_ip_protocol: \"ip4\"\n      recursion_desired: false\n",
    )
    .unwrap();
    let bb_port = 20_990u16;
    let bb = Command::new("taskset")
        .args([
            "-c",
            "1",
            "/usr/bin/prometheus-blackbox-exporter",
            &format!("--config.file={}", cfg.display()),
            &format!("--web.listen-address=127.0.0.1:{bb_port}"),
        ])
        .env("GOMAXPROCS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    std::thread::sleep(Duration::from_secs(1));

    println!("== checks per minute on one core ({secs} s each, 64 concurrent)");
    let (h, hf) = ours(&http, 64, secs);
    println!("mamori  HTTP  {h:>10.0} checks/min  (failed {hf})");
    let (d, df) = ours(&dns, 64, secs);
    println!("mamori  DNS   {d:>10.0} checks/min  (failed {df})");
    if bb.is_ok() {
        let (bh, bhf) = blackbox(bb_port, &format!("module=http_2xx&target=http://127.0.0.1:{http_port}/"), 64, secs);
        println!("blackbox HTTP {bh:>10.0} probes/min  (failed {bhf})   ratio mamori/blackbox {:.2}", h / bh.max(1.0));
        let (bd, bdf) = blackbox(bb_port, &format!("module=dns_soa&target=127.0.0.1:{ns1}"), 64, secs);
        println!("blackbox DNS  {bd:>10.0} probes/min  (failed {bdf})   ratio mamori/blackbox {:.2}", d / bd.max(1.0));
    } else {
        println!("blackbox_exporter not found (apt-get install prometheus-blackbox-exporter)");
    }
    if let Ok(mut c) = bb {
        let _ = c.kill();
        let _ = c.wait();
    }

    // Scheduler jitter and memory: monitors in a store, the engine running them.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let db = tempfile::tempdir().unwrap();
        let (store, authority) = mamori_store::Store::open(&format!("sqlite://{}", db.path().join("b.db").display())).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let actor = Actor::system();
        let grant = grant.clone();
        let scope = grant.scope();
        let t = store
            .create_tenant(&scope, &actor, NewTenant { code: "011002".into(), name: "札幌市".into(), kana: "サッポロシ".into(), kind: "city".into(), ..Default::default() }.check().unwrap())
            .await
            .unwrap();
        // A TCP target that accepts everything.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        for (n, interval) in [(2_000usize, 10u32), (10_000, 60)] {
            let before_rows = store.list_monitors(&scope, None).await.unwrap().len();
            let tenants: Vec<_> = {
                let mut v = vec![t.id];
                // 500 monitors per tenant at most: spread over tenants.
                for i in 0..(n / 400) {
                    let i = i + if n > 2_000 { 100 } else { 0 };
                    let five = [2, 0, (i / 100 % 10) as u8, (i / 10 % 10) as u8, (i % 10) as u8];
                    let code = format!("{}{}{}{}{}{}", five[0], five[1], five[2], five[3], five[4], mamori_core::LocalGovCode::check_digit(&five));
                    let nt = NewTenant { code, name: format!("団体{n}-{i}"), kana: "ダンタイ".into(), kind: "town".into(), ..Default::default() };
                    if let Ok(c) = nt.check()
                        && let Ok(tt) = store.create_tenant(&scope, &actor, c).await
                    {
                        v.push(tt.id);
                    }
                }
                v
            };
            let _ = before_rows;
            for i in 0..n {
                let spec: MonitorSpec =
                    serde_json::from_value(json!({"name": format!("m{i}"), "check": {"type": "tcp", "host": "127.0.0.1", "port": port}, "interval_secs": interval, "timeout_secs": 5}))
                        .unwrap();
                store.create_monitor(&scope, &actor, tenants[i % tenants.len()], spec).await.unwrap();
            }
            let rss0 = rss_kib();
            let notifier = Notifier { mail: None, from: "b@x".into(), always: vec![], console_url: String::new(), timeout: Duration::from_secs(1) };
            let mut engine = Engine::new(store.clone(), None, notifier, EngineConfig::default(), grant.clone());
            engine.reload(true).await.unwrap();
            let rss1 = rss_kib();
            let stats = engine.stats();
            let (tx, rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(engine.run(rx, None));
            let run_for = Duration::from_secs(u64::from(interval) + 5);
            tokio::time::sleep(run_for).await;
            let _ = tx.send(true);
            let _ = task.await;
            let started = stats.started.load(Ordering::Relaxed).max(1);
            println!(
                "engine  {n:>6} monitors / {interval:>2} s: {started} checks in {} s, start delay mean {:.1} ms, max {:.1} ms, >1 s late {}; engine memory {:.1} MiB ({:.0} bytes per monitor)",
                run_for.as_secs(),
                stats.delay_sum_us.load(Ordering::Relaxed) as f64 / started as f64 / 1000.0,
                stats.delay_max_us.load(Ordering::Relaxed) as f64 / 1000.0,
                stats.late.load(Ordering::Relaxed),
                rss1.saturating_sub(rss0) as f64 / 1024.0,
                rss1.saturating_sub(rss0) as f64 * 1024.0 / n as f64,
            );
            // Start the next size afresh.
            for m in store.list_monitors(&scope, None).await.unwrap() {
                store.delete_monitor(&scope, &actor, m.id).await.unwrap();
            }
        }
    });
    let _ = Command::new("bash").arg(&script).args(["stop-all", &dir.path().to_string_lossy()]).status();
}

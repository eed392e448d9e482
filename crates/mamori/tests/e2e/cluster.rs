//! The component runtime in the real binary: config checked at start with every
//! problem listed, root given up after binding, and the singleton monitor (F01–F05) on
//! two nodes sharing one PostgreSQL.

use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn component_state(server: &Server, component: &str) -> (u16, String) {
    let (status, _, body) = server.http("GET", "/healthz", &[], "");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let state = doc["components"].as_array().into_iter().flatten().find(|c| c["name"] == component).map(|c| c["state"].as_str().unwrap_or("").to_string());
    (status, state.unwrap_or_default())
}

fn policy_revision(server: &Server, component: &str) -> Option<i64> {
    let (_, _, body) = server.http("GET", "/healthz", &[], "");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    doc["components"].as_array()?.iter().find(|c| c["name"] == component)?["policy_revision"].as_i64()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(secs), "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

#[test]
fn a_bad_component_section_stops_serve_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(
        &cfg,
        "[components.monitor]\nconcurrency = 0\nsmtp_starttls = \"maybe\"\ncolour = \"red\"\n[components.retention]\ninterval_secs = \"soon\"\n[components.gatway]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out =
        Command::new(BIN).args(["--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "[components.monitor] colour",
        "[components.monitor] concurrency",
        "[components.monitor] smtp_starttls",
        "[components.retention] interval_secs",
        "[components.gatway] no such component",
    ] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
    assert!(!data.exists(), "nothing was started or written: the check comes first");

    // A file the config names that does not exist stops the start too (build, not a retry loop).
    std::fs::write(&cfg, "[components.monitor]\nsmtp_host = \"127.0.0.1\"\nsmtp_ca_file = \"/nonexistent/ca.pem\"\n").unwrap();
    let out =
        Command::new(BIN).args(["--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("smtp_ca_file: /nonexistent/ca.pem"), "{err}");
}

#[test]
fn root_is_given_up_after_binding_a_privileged_port() {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(&cfg, "[server]\nuser = \"nobody\"\n").unwrap();
    let data = dir.path().join("data");
    let port = (600..1000).find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()).unwrap();
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "serve", "--no-demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("MAMORI_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::plain(port);
    wait_until("the node answers on the privileged port", 60, || client.request("GET", "/healthz", &[], "").0 == 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(uid.split_whitespace().skip(1).all(|u| u == "65534"), "real, effective, saved and fs uid are nobody's: {uid}");
    assert!(data.join("mamori.db").exists());
}

#[test]
fn two_nodes_run_the_singleton_monitor_once_and_fail_over() {
    let Some(url) = fresh_postgres() else { return };
    // A municipality with three monitors checked every 10 s, made before any node runs.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let town_id = rt.block_on(async {
        use mamori_core::{Actor, NewTenant};

        let (store, authority) = mamori_store::Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let system = grant.scope();
        let town = NewTenant {
            code: mamori_core::LocalGovCode::from_five("39341").unwrap().to_string(),
            name: "甲町".into(),
            kana: "コウチョウ".into(),
            kind: "town".into(),
            ..Default::default()
        };
        let town = store.create_tenant(&system, &Actor::system(), town.check().unwrap()).await.unwrap();
        for i in 0..3 {
            let spec = serde_json::from_value(serde_json::json!({
                "name": format!("port {i}"), "check": {"type": "tcp", "host": "127.0.0.1", "port": 9}, "interval_secs": 10, "timeout_secs": 2,
            }))
            .unwrap();
            store.create_monitor(&system, &Actor::system(), town.id, spec).await.unwrap();
        }
        store.close().await;
        town.id
    });
    // And a monitor run by a remote probe inside another municipality.
    let probe_token = "mmp_cluster-test-probe-token";
    let probe_monitor = crate::https::seed_probe(&url, probe_token, 9);
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for (i, name) in ["north", "south"].iter().enumerate() {
        let cfg = dir.path().join(format!("{name}.toml"));
        // Every node of one store seals with the same master key: the first node made
        // it, the second is given it (as an operator copies the key file).
        let key = dir.path().join("north").join("master.key");
        let vault = if i == 0 { String::new() } else { format!("[vault]\nmaster_key_file = \"{}\"\n", key.display()) };
        std::fs::write(&cfg, format!("[server]\nnode_name = \"{name}\"\n[server.cluster]\nlease_secs = 3\n{vault}")).unwrap();
        nodes.push(start_with(&dir.path().join(name), Opts { args: &["--no-demo"], config: Some(&cfg), database_url: Some(&url), ..Default::default() }));
        // Let the first take the lease before the second exists.
        if i == 0 {
            wait_until("north runs the monitor", 20, || component_state(&nodes[0], "monitor").1 == "active");
        }
    }
    let (north, south) = (&nodes[0], &nodes[1]);
    assert_eq!(component_state(south, "monitor"), (200, "standby".to_string()), "standing by is healthy");
    wait_until("north runs checks", 30, || metric(north, "mamori_monitor_check_results_total") >= 3.0);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(metric(south, "mamori_monitor_check_results_total"), 0.0, "only one node runs the checks");
    assert_eq!(metric(south, "mamori_component_leader{component=\"monitor\"}"), 0.0);
    assert_eq!(metric(north, "mamori_component_leader{component=\"monitor\"}"), 1.0);
    // Retention is replicated: both nodes run it.
    assert_eq!(component_state(south, "retention").1, "active");
    // A policy saved elsewhere (here: straight into the store) reaches both nodes, and
    // each says which revision it runs; so does a rollback to the first version.
    let policy = mamori_runtime::retention::RetentionPolicy;
    let (store, authority) = rt.block_on(mamori_store::Store::open(&url)).unwrap();
    let system = rt.block_on(authority.grant("test", "test")).unwrap().scope();
    for days in [400, 500] {
        rt.block_on(store.put_policy(&system, &mamori_core::Actor::system(), Some(town_id), &policy, serde_json::json!({"events_days": days}))).unwrap();
    }
    let newest = rt.block_on(store.latest_policy_revision("retention")).unwrap();
    for node in [north, south] {
        let seen = wait_until("the policy reaches the node", 15, || policy_revision(node, "retention") == Some(newest));
        eprintln!("policy revision {newest} running after {seen:?}");
    }
    let back = rt.block_on(store.rollback_policy(&system, &mamori_core::Actor::system(), Some(town_id), &policy, 1)).unwrap();
    assert_eq!(back.document, serde_json::json!({"events_days": 400}));
    for node in [north, south] {
        wait_until("the rollback reaches the node", 15, || policy_revision(node, "retention") == Some(back.revision));
    }
    rt.block_on(store.close());

    // A probe may post to the node standing by: the node running the monitor applies it.
    let result = serde_json::json!([{"monitor": probe_monitor, "at": mamori_core::time::now_ms(), "status": "degraded", "rt_ms": 5, "details": {}}]);
    let bearer = format!("Bearer {probe_token}");
    let (status, _, body) =
        south.http("POST", "/api/v1/probe/results", &[("authorization", &bearer), ("content-type", "application/json")], &result.to_string());
    assert_eq!(status, 202, "{body}");
    wait_until("north applies the probe's result", 10, || metric(north, "mamori_monitor_check_results_total{status=\"degraded\"}") == 1.0);

    // North dies without a word: its lease lapses and south takes over.
    let mut north = nodes.remove(0);
    north.child.kill().unwrap();
    north.child.wait().unwrap();
    let south = &nodes[0];
    let took = wait_until("south takes over the monitor", 20, || component_state(south, "monitor").1 == "active");
    eprintln!("failover after SIGKILL: {took:?} (lease 3 s)");
    wait_until("south runs checks", 30, || metric(south, "mamori_monitor_check_results_total") >= 1.0);
}

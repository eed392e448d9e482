//! End-to-end: the real `mamori` binary, started as an operator would start it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mamori");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running server, killed on drop.
struct Server {
    child: Child,
    port: u16,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is killed and waited for by `Server::drop`, or on the panic path by the test harness ending.
#[allow(clippy::zombie_processes)]
fn start(args: &[&str], data: &Path) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap()])
        .args(["serve", "--listen", &listen])
        .args(args)
        .env("MAMORI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Read stdout until the console line appears, keeping what was printed.
    let mut lines = Vec::new();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => lines.push(l),
            Err(_) if started.elapsed() > Duration::from_secs(60) => panic!("server did not start: {lines:?}"),
            Err(_) => {}
        }
        if lines.iter().any(|l| l.contains("console:")) && http("GET", port, "/healthz", &[], "").0 == 200 {
            // Collect the rest of the banner.
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                lines.push(l);
            }
            return Server { child, port, stdout: lines };
        }
    }
}

/// A minimal HTTP/1.1 client: returns (status, headers, body).
fn http(method: &str, port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new(), String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn one_time_password(lines: &[String], user: &str) -> String {
    for l in lines {
        if l.contains("first login:") && user == "admin" {
            return l.rsplit(' ').next().unwrap().to_string();
        }
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.first() == Some(&user) && cols.len() >= 4 {
            return cols.last().unwrap().to_string();
        }
    }
    panic!("no password for {user} in {lines:?}")
}

fn mamori(data: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(["--data", data.to_str().unwrap()]).args(args).env("MAMORI_LOG", "warn").output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn first_start_seeds_the_demo_and_prints_the_first_login() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&[], &data);
    let banner = server.stdout.join("\n");
    assert!(banner.contains(&format!("http://127.0.0.1:{}/", server.port)), "{banner}");
    let admin_pw = one_time_password(&server.stdout, "admin");
    assert!(admin_pw.len() >= 12);
    // A demo tenant user logs in with the printed password and must change it first.
    let pw = one_time_password(&server.stdout, "sakuragawa-user");
    let (status, head, _) =
        http("POST", server.port, "/login", &[("Content-Type", "application/x-www-form-urlencoded")], &format!("username=sakuragawa-user&password={pw}"));
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /login/password"), "{head}");
    // The data directory is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // The second start of the same data seeds nothing and prints no password.
    drop(server);
    let again = start(&[], &data);
    assert!(!again.stdout.join("\n").contains("one-time password"), "{:?}", again.stdout);
    let (code, out) = mamori(&data, &["user", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("sakuragawa-admin") && out.contains("operator_admin"), "{out}");
}

#[test]
fn no_demo_installs_only_the_first_operator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&["--no-demo"], &data);
    assert!(server.stdout.join("\n").contains("first login: admin"));
    drop(server);
    let (_, out) = mamori(&data, &["tenant", "export"]);
    assert_eq!(out.trim_start_matches('\u{feff}').lines().count(), 1, "only the header: {out}");
}

#[test]
fn audit_verify_detects_a_modified_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&[], &data));
    let (code, out) = mamori(&data, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    // Someone with access to the database file rewrites history.
    let db = rusqlite::Connection::open(data.join("mamori.db")).unwrap();
    assert!(db.execute("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 3", []).is_err(), "the trigger refuses updates");
    db.execute_batch("DROP TRIGGER audit_log_no_update").unwrap();
    let changed = db.execute("UPDATE audit_log SET after_doc = replace(after_doc, '桜川市', '偽市') WHERE seq = 2 AND after_doc LIKE '%桜川市%'", []).unwrap();
    assert_eq!(changed, 1, "entry 2 records the creation of 桜川市");
    drop(db);
    let (code, out) = mamori(&data, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 2"), "{out}");
}

#[test]
fn admin_commands_work_before_the_console_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&["--no-demo"], &data));
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "code,name,kana,kind\n390003,サンプル県,サンプルケン,prefecture\n392910,桜川市,さくらがわし,city\n").unwrap();
    let (code, out) = mamori(&data, &["tenant", "import", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = mamori(&data, &["user", "create", "--username", "clerk1", "--role", "tenant_user", "--tenant", "392910"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("one-time password:"));
    let (code, out) = mamori(&data, &["user", "create", "--username", "clerk2", "--role", "tenant_user"]);
    assert_ne!(code, 0);
    assert!(out.contains("--tenant"), "{out}");
    std::fs::write(&csv, "code,name,kana,kind\n392911,壊れ市,コワレシ,city\n").unwrap();
    let (code, out) = mamori(&data, &["tenant", "import", csv.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("検査数字"), "{out}");
    for args in
        [vec!["user", "unlock", "clerk1"], vec!["user", "reset-password", "clerk1"], vec!["user", "reset-totp", "admin"], vec!["migrate"], vec!["version"]]
    {
        let (code, out) = mamori(&data, &args);
        assert_eq!(code, 0, "{args:?}: {out}");
    }
    let (code, out) = mamori(&data, &["audit", "export"]);
    assert_eq!(code, 0);
    assert!(out.contains("cli:") && out.contains("tenant.create"), "the CLI's changes are audited: {out}");
}

#[test]
fn init_writes_a_config_that_serve_accepts_and_typos_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mamori.toml");
    let (code, _) = mamori(dir.path(), &["init", "--path", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, out) = mamori(dir.path(), &["init", "--path", cfg.to_str().unwrap()]);
    assert_ne!(code, 0, "no silent overwrite: {out}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("[server]") && text.contains("サンプル県"));
    std::fs::write(&cfg, text.replace("listen =", "listn =")).unwrap();
    let out = Command::new(BIN).args(["--config", cfg.to_str().unwrap(), "serve"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN).args(["serve", "--only", "nonesuch"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown part 'nonesuch'"));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&["--no-demo"], &dir.path().join("data"));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_component_node_serves_health_without_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&["--only", "retention", "--no-demo"], &dir.path().join("data"));
    assert_eq!(http("GET", server.port, "/healthz", &[], "").0, 200);
    assert_eq!(http("GET", server.port, "/login", &[], "").0, 404);
}

#[test]
fn postgres_is_a_drop_in_config_store() {
    let Some(admin) = std::env::var("MAMORI_TEST_PG_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "MAMORI_TEST_PG_URL must be set under CI");
        eprintln!("MAMORI_TEST_PG_URL not set; skipped");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = rt.block_on(mamori_store::testing::fresh_postgres_database(&admin));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "--database-url", &url, "serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MAMORI_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while http("GET", port, "/healthz", &[], "").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "no health on PostgreSQL");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!data.join("mamori.db").exists(), "nothing written to SQLite");
    let (code, out) = mamori(&data, &["--database-url", &url, "audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"));
    let (code, out) = mamori(&data, &["--database-url", &url, "user", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("sakuragawa-admin"), "{out}");
}

/// A remote probe (`mamori probe`, a second process) fetches its assignment from the
/// core with its own token, runs the check and reports; the core's state follows the
/// probe's results, and the probe token reaches nothing else.
#[test]
fn a_remote_probe_runs_its_checks_and_reports_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    let token = "mmp_e2e-probe-token-0123456789";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db_url = format!("sqlite://{}", data.join("mamori.db").display());
    let (monitor, _tenant) = rt.block_on(async {
        use mamori_core::{Actor, CrossTenant, NewTenant, Scope};
        let store = mamori_store::Store::open(&db_url).await.unwrap();
        let scope = Scope::All(CrossTenant::system(Actor::system()));
        let t = store
            .create_tenant(
                &scope,
                &Actor::system(),
                NewTenant { code: "011002".into(), name: "札幌市".into(), kana: "サッポロシ".into(), kind: "city".into(), ..Default::default() }
                    .check()
                    .unwrap(),
            )
            .await
            .unwrap();
        let hash = hex_sha256(token);
        let p = store.create_probe(&scope, &Actor::system(), Some(t.id), "庁内プローブ", &hash).await.unwrap();
        let spec: mamori_core::monitor::MonitorSpec = serde_json::from_value(serde_json::json!({
            "name": "庁内サーバー", "check": {"type": "tcp", "host": "127.0.0.1", "port": target_port},
            "interval_secs": 10, "retries": 0, "probe": p.id
        }))
        .unwrap();
        let m = store.create_monitor(&scope, &Actor::system(), t.id, spec).await.unwrap();
        store.db().close().await;
        (m.id, t.id)
    });
    let server = start(&[], &data);
    let (status, _, _) = http("GET", server.port, "/api/v1/monitors", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(status, 401, "a probe token reaches only the probe endpoints");
    let (status, _, body) = http("GET", server.port, "/api/v1/probe/monitors", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("庁内サーバー"));

    let mut probe = Command::new(BIN)
        .args(["probe", "--server", &format!("http://127.0.0.1:{}", server.port), "--token", token, "--refresh-secs", "5"])
        .env("MAMORI_LOG", "warn")
        .spawn()
        .unwrap();
    let state = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got: Option<String> = rusqlite::Connection::open(data.join("mamori.db"))
                .ok()
                .and_then(|c| c.query_row("SELECT state FROM monitor_state WHERE monitor_id = ?1", [monitor.to_string()], |r| r.get(0)).ok());
            if got.as_deref().is_some_and(|s| s.contains(&format!("\"status\":\"{want}\""))) {
                return got.unwrap_or_default();
            }
            assert!(Instant::now() < deadline, "monitor never became {want}: {got:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    state("up");
    drop(target);
    let down = state("down");
    assert!(down.contains("connect_refused"), "{down}");
    let _ = probe.kill();
    let _ = probe.wait();
    let last_seen: Option<i64> =
        rusqlite::Connection::open(data.join("mamori.db")).unwrap().query_row("SELECT last_seen_at FROM probes", [], |r| r.get(0)).unwrap();
    assert!(last_seen.is_some());
}

fn hex_sha256(s: &str) -> String {
    // The console keeps the SHA-256 (hex) of a probe token.
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

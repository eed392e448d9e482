//! HTTPS as a real installation runs it: the binary on a non-loopback listen address
//! (all addresses) with its self-signed certificate, `--no-demo`, PostgreSQL, a login
//! and a remote probe over HTTPS; and a configured certificate from a CA of the
//! operator's, renewed without a restart.

use crate::support::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Creates a municipality, a probe with `token` and a TCP monitor of `target_port` run
/// by that probe, directly in the config store (as the console would).
pub fn seed_probe(db_url: &str, token: &str, target_port: u16) -> mamori_core::monitor::MonitorId {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use mamori_core::Actor;

        let (store, authority) = mamori_store::Store::open(db_url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let scope = grant.scope();
        let t = create_city(&store, &scope).await;
        let p = store.create_probe(&scope, &Actor::system(), Some(t.id), "庁内プローブ", &hex_sha256(token)).await.unwrap();
        let spec: mamori_core::monitor::MonitorSpec = serde_json::from_value(serde_json::json!({
            "name": "庁内サーバー", "check": {"type": "tcp", "host": "127.0.0.1", "port": target_port},
            "interval_secs": 10, "retries": 0, "probe": p.id
        }))
        .unwrap();
        let m = store.create_monitor(&scope, &Actor::system(), t.id, spec).await.unwrap();
        store.db().close().await;
        m.id
    })
}

/// Waits until the monitor's state (as JSON) says `status`, and returns it.
fn wait_state(db_url: &str, monitor: mamori_core::monitor::MonitorId, status: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (store, authority) = mamori_store::Store::open(db_url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let scope = grant.scope();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let states = store.monitor_states(&scope, None).await.unwrap();
            let got = states.iter().find(|s| s.monitor == monitor).map(|s| serde_json::to_string(s).unwrap());
            if let Some(s) = got.as_deref().filter(|s| s.contains(&format!("\"status\":\"{status}\""))) {
                let s = s.to_string();
                store.db().close().await;
                return s;
            }
            assert!(Instant::now() < deadline, "monitor never became {status}: {got:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Runs `mamori probe` against `server_url` until the monitor was seen UP and then, with
/// its target gone, DOWN through the probe.
fn probe_round_trip(
    server_url: &str,
    ca_file: Option<&Path>,
    db_url: &str,
    token: &str,
    monitor: mamori_core::monitor::MonitorId,
    target: std::net::TcpListener,
) {
    let mut cmd = Command::new(BIN);
    cmd.args(["probe", "--server", server_url, "--token", token, "--refresh-secs", "5"]).env("MAMORI_LOG", "warn");
    if let Some(ca) = ca_file {
        cmd.args(["--ca-file", ca.to_str().unwrap()]);
    }
    let mut probe = cmd.spawn().unwrap();
    wait_state(db_url, monitor, "up");
    drop(target);
    let down = wait_state(db_url, monitor, "down");
    let _ = probe.kill();
    let _ = probe.wait();
    assert!(down.contains("connect_refused"), "{down}");
}

pub fn hex_sha256(s: &str) -> String {
    // The console keeps the SHA-256 (hex) of a probe token.
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Makes a municipal user of 札幌市 with the CLI, before the first start; returns its
/// one-time password.
fn create_clerk(data: &Path, db_url: &str) -> String {
    let (code, out) = mamori(data, &["--database-url", db_url, "user", "create", "--username", "sapporo-clerk", "--role", "tenant_user", "--tenant", "011002"]);
    assert_eq!(code, 0, "{out}");
    out.lines().find_map(|l| l.strip_prefix("one-time password: ")).unwrap().trim().to_string()
}

/// Logs `sapporo-clerk` in over HTTPS: password, the forced change, the dashboard, with a
/// `__Host-` secure session cookie.
fn log_in_over_https(server: &Server, one_time: &str) {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = server.http("POST", "/login", &form, &format!("username=sapporo-clerk&password={one_time}"));
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /login/password"), "{head}");
    let session = cookie(&head, "__Host-mamori_session").expect("a __Host- session cookie under TLS");
    assert!(session.contains("Secure") && session.contains("HttpOnly"), "{session}");
    let session = session.split(';').next().unwrap().to_string();
    let (status, _, page) = server.http("GET", "/login/password", &[("Cookie", &session)], "");
    assert_eq!(status, 200);
    let csrf = csrf_field(&page);
    let new_pw = "Tokei-dai-2026-Yuki";
    let (status, head, _) =
        server.http("POST", "/login/password", &[form[0], ("Cookie", &session)], &format!("csrf={csrf}&password={new_pw}&confirm={new_pw}"));
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /\r") || head.ends_with("location: /"), "{head}");
    let session = cookie(&head, "__Host-mamori_session").map(|c| c.split(';').next().unwrap().to_string()).unwrap_or(session);
    let (status, _, page) = server.http("GET", "/", &[("Cookie", &session)], "");
    assert_eq!(status, 200);
    assert!(page.contains("札幌市"), "the dashboard of the user's municipality");
}

/// A remote probe (`mamori probe`, a second process) fetches its assignment from the
/// core with its own token, runs the check and reports; the core's state follows the
/// probe's results, and the probe token reaches nothing else. Plain HTTP on loopback.
#[test]
fn a_remote_probe_runs_its_checks_and_reports_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "mmp_e2e-probe-token-0123456789";
    let db_url = format!("sqlite://{}", data.join("mamori.db").display());
    let monitor = seed_probe(&db_url, token, target.local_addr().unwrap().port());
    let server = start(&[], &data);
    let (status, _, _) = server.http("GET", "/api/v1/monitors", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(status, 401, "a probe token reaches only the probe endpoints");
    let (status, _, body) = server.http("GET", "/api/v1/probe/monitors", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("庁内サーバー"));
    probe_round_trip(&format!("http://127.0.0.1:{}", server.port), None, &db_url, token, monitor, target);
    let last_seen: Option<i64> =
        rusqlite::Connection::open(data.join("mamori.db")).unwrap().query_row("SELECT last_seen_at FROM probes", [], |r| r.get(0)).unwrap();
    assert!(last_seen.is_some());
}

/// The installation of the issue that broke: `mamori serve --listen 0.0.0.0:PORT` on
/// PostgreSQL with `--no-demo`. HTTPS with the self-signed certificate answers (HTTP/1.1
/// here; HTTP/2 in the crate tests and the browser), a municipality's user logs in and
/// gets a `__Host-` secure session, the remote probe works over HTTPS trusting that
/// certificate, silent connections are closed at the header timeout, and plain HTTP on
/// the HTTPS port gets nothing.
#[test]
fn https_on_all_addresses_with_the_self_signed_certificate_login_and_probe() {
    let Some(db_url) = fresh_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("mamori.toml");
    std::fs::write(&config, "[server.http]\nheader_read_timeout_secs = 3\n").unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "mmp_e2e-https-probe-0123456789";
    let monitor = seed_probe(&db_url, token, target.local_addr().unwrap().port());
    let one_time = create_clerk(&data, &db_url);

    let server =
        start_with(&data, Opts { args: &["--no-demo"], listen_ip: "0.0.0.0", config: Some(&config), database_url: Some(&db_url), ..Default::default() });
    let banner = server.stdout.join("\n");
    assert!(banner.contains(&format!("https://localhost:{}/", server.port)), "{banner}");
    assert!(!data.join("mamori.db").exists(), "PostgreSQL only");

    // Health, with HSTS.
    let (status, head, body) = server.http("GET", "/healthz", &[], "");
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("\"ok\""), "{body}");
    assert!(head.to_ascii_lowercase().contains("strict-transport-security"), "{head}");

    log_in_over_https(&server, &one_time);

    // Silent connections (no TLS handshake at all) are closed at the header timeout.
    let started = Instant::now();
    let mut silent: Vec<_> = (0..50).map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    for s in &mut silent {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 16];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)), "closed by the server");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    assert_eq!(server.http("GET", "/healthz", &[], "").0, 200);

    // Plain HTTP to the HTTPS port gets no answer.
    assert_ne!(http("GET", server.port, "/healthz", &[], "").0, 200);

    // The remote probe, over HTTPS, trusting the self-signed certificate.
    probe_round_trip(&format!("https://127.0.0.1:{}", server.port), Some(&data.join("tls/console.crt")), &db_url, token, monitor, target);
}

/// A CA of the operator's and a leaf it signed, as PEM.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "サンプル県 テスト認証局");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, ca_key }
    }

    /// Writes a leaf for `names` to `cert` and `key`; returns its DER.
    fn leaf(&self, names: &[&str], cert: &Path, key: &Path) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &self.ca, &self.ca_key).unwrap();
        // The chain file holds the leaf, then the CA, as operators usually deploy it.
        std::fs::write(cert, format!("{}{}", leaf.pem(), self.ca.pem())).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
        leaf.der().to_vec()
    }
}

/// A configured certificate from the operator's CA, on all addresses: verified by name
/// against that CA alone, a login and a remote probe trusting only that CA; a renewed
/// certificate is taken up on SIGHUP without a restart, and broken files on SIGHUP keep
/// the old one.
#[test]
fn a_configured_certificate_is_served_and_renewed_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db_url = format!("sqlite://{}", data.join("mamori.db").display());
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "mmp_e2e-configured-cert-0123456789";
    let monitor = seed_probe(&db_url, token, target.local_addr().unwrap().port());
    let one_time = create_clerk(&data, &db_url);
    let (cert, key, ca) = (dir.path().join("console.pem"), dir.path().join("console.key"), dir.path().join("ca.pem"));
    let pki = Pki::new();
    std::fs::write(&ca, pki.ca.pem()).unwrap();
    let names = ["mamori.pref.example.lg.jp", "127.0.0.1"];
    let first = pki.leaf(&names, &cert, &key);
    let config = dir.path().join("mamori.toml");
    std::fs::write(&config, format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert.display(), key.display())).unwrap();
    let server = start_with(
        &data,
        Opts {
            args: &["--no-demo"],
            listen_ip: "0.0.0.0",
            config: Some(&config),
            ca: Some(ca.clone()),
            server_name: "mamori.pref.example.lg.jp",
            ..Default::default()
        },
    );
    assert!(server.stdout.join("\n").contains("https://localhost:"), "{:?}", server.stdout);
    assert!(!data.join("tls").exists(), "no self-signed certificate is made when one is configured");
    assert_eq!(server.client.peer_certificate(), first);
    log_in_over_https(&server, &one_time);
    probe_round_trip(&format!("https://127.0.0.1:{}", server.port), Some(&ca), &db_url, token, monitor, target);

    // Renewal: new files, then SIGHUP.
    let second = pki.leaf(&names, &cert, &key);
    assert_ne!(first, second);
    let hup = || assert!(Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap().success());
    hup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.client.peer_certificate() != second {
        assert!(Instant::now() < deadline, "the renewed certificate was not taken up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken renewal keeps the certificate in use, and the server keeps serving.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    hup();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.client.peer_certificate(), second);
    assert_eq!(server.http("GET", "/healthz", &[], "").0, 200);
    // A client that does not trust the operator's CA is refused by the handshake.
    let stranger = Client::https(server.port, &Pki::new().ca.pem(), "mamori.pref.example.lg.jp");
    assert_eq!(stranger.request("GET", "/healthz", &[], "").0, 0);
}

/// A certificate path that does not exist stops `mamori serve` at start with the path
/// named, before anything listens.
#[test]
fn a_missing_certificate_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mamori.toml");
    std::fs::write(&config, "[tls]\ncert = \"/nonexistent/console.pem\"\nkey = \"/nonexistent/console.key\"\n").unwrap();
    let port = free_port();
    let out = Command::new(BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--data",
            dir.path().join("data").to_str().unwrap(),
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("MAMORI_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/console.pem"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("is running"), "nothing announced");
}

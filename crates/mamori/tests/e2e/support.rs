//! Starting the real binary and talking to it over HTTP or HTTPS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mamori");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to start a server.
pub struct Opts<'a> {
    /// Extra `serve` arguments.
    pub args: &'a [&'a str],
    /// The address to listen on (the port is chosen here).
    pub listen_ip: &'a str,
    /// A config file (`--config`).
    pub config: Option<&'a Path>,
    /// A database URL (`--database-url`).
    pub database_url: Option<&'a str>,
    /// The CA the client trusts under HTTPS; default the self-signed DATA/tls/console.crt.
    pub ca: Option<PathBuf>,
    /// The TLS server name the client asks for.
    pub server_name: &'a str,
    /// Write the server's log (at debug level) to this file instead of the terminal.
    pub log: Option<&'a Path>,
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Self { args: &[], listen_ip: "127.0.0.1", config: None, database_url: None, ca: None, server_name: "localhost", log: None, env: &[] }
    }
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub stdout: Vec<String>,
    pub client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// One request: (status, head, body).
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
        self.client.request(method, path, headers, body)
    }
}

/// Starts `mamori serve` on loopback plain HTTP.
pub fn start(args: &[&str], data: &Path) -> Server {
    start_with(data, Opts { args, ..Default::default() })
}

pub fn start_with(data: &Path, opts: Opts<'_>) -> Server {
    // The port is free when chosen but another test may take it before the server binds
    // it: a server that exits before it is ready is started again on another port.
    for _ in 0..3 {
        if let Some(server) = start_once(data, &opts) {
            return server;
        }
    }
    panic!("the server exited before it was ready, three times (see its stderr above)")
}

// The child is killed and waited for by `Server::drop`, or on the panic path by the test harness ending.
#[allow(clippy::zombie_processes)]
fn start_once(data: &Path, opts: &Opts<'_>) -> Option<Server> {
    let port = free_port();
    let listen = if opts.listen_ip.contains(':') { format!("[{}]:{port}", opts.listen_ip) } else { format!("{}:{port}", opts.listen_ip) };
    let mut cmd = Command::new(BIN);
    cmd.args(["--data", data.to_str().unwrap()]);
    if let Some(c) = opts.config {
        cmd.args(["--config", c.to_str().unwrap()]);
    }
    if let Some(u) = opts.database_url {
        cmd.args(["--database-url", u]);
    }
    match opts.log {
        Some(path) => cmd.env("MAMORI_LOG", "debug").stderr(std::fs::File::create(path).unwrap()),
        None => cmd.env("MAMORI_LOG", "warn").stderr(Stdio::inherit()),
    };
    let mut child = cmd.envs(opts.env.iter().copied()).args(["serve", "--listen", &listen]).args(opts.args).stdout(Stdio::piped()).spawn().unwrap();
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
    let mut client = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => lines.push(l),
            Err(_) if started.elapsed() > Duration::from_secs(60) => panic!("server did not start: {lines:?}"),
            Err(_) if client.is_none() && matches!(child.try_wait(), Ok(Some(_))) => return None,
            Err(_) => {}
        }
        if client.is_none()
            && let Some(line) = lines.iter().find(|l| l.contains("console:"))
        {
            client = Some(if line.contains("https://") {
                let ca = opts.ca.clone().unwrap_or_else(|| data.join("tls/console.crt"));
                Client::https(port, &std::fs::read_to_string(ca).unwrap(), opts.server_name)
            } else {
                Client::plain(port)
            });
        }
        if let Some(c) = &client
            && c.request("GET", "/healthz", &[], "").0 == 200
        {
            // Collect the rest of the banner.
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                lines.push(l);
            }
            return Some(Server { child, port, stdout: lines, client: client.unwrap() });
        }
    }
}

/// A minimal HTTP/1.1 client, plain or TLS (verifying the server against one CA).
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
}

impl Client {
    pub fn plain(port: u16) -> Self {
        Self { port, tls: None }
    }

    pub fn https(port: u16, ca_pem: &str, server_name: &str) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Full handshakes only: a resumed session would report the certificate of the
        // session it resumed, not the one the server presents now.
        config.resumption = rustls::client::Resumption::disabled();
        Self { port, tls: Some((Arc::new(config), server_name.to_string())) }
    }

    /// The leaf certificate the server presents (DER), under TLS.
    pub fn peer_certificate(&self) -> Vec<u8> {
        let (config, name) = self.tls.as_ref().expect("a TLS client");
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name.clone().try_into().unwrap()).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        s.conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// One request on a fresh connection: (status, head, body); status 0 when the
    /// connection or the TLS handshake failed.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
        let Ok(tcp) = TcpStream::connect(("127.0.0.1", self.port)) else { return (0, String::new(), String::new()) };
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n", self.port, body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let raw = match &self.tls {
            None => exchange(tcp, &req),
            Some((config, name)) => {
                let conn = rustls::ClientConnection::new(config.clone(), name.clone().try_into().unwrap()).unwrap();
                exchange(rustls::StreamOwned::new(conn, tcp), &req)
            }
        };
        let Some(raw) = raw else { return (0, String::new(), String::new()) };
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }
}

fn exchange(mut s: impl Read + Write, req: &str) -> Option<Vec<u8>> {
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => Some(raw),
        // A server closing without TLS close_notify after a complete answer is fine.
        Err(_) if !raw.is_empty() => Some(raw),
        Err(_) => None,
    }
}

/// A plain request to loopback: (status, head, body).
pub fn http(method: &str, port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    Client::plain(port).request(method, path, headers, body)
}

pub fn one_time_password(lines: &[String], user: &str) -> String {
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

pub fn mamori(data: &Path, args: &[&str]) -> (i32, String) {
    mamori_with(data, args, None, &[])
}

/// Runs a command with `stdin` given and extra environment variables.
pub fn mamori_with(data: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap()])
        .args(args)
        .env("MAMORI_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A fresh database on the PostgreSQL server of the test suite, or None outside CI
/// when there is no server.
pub fn fresh_postgres() -> Option<String> {
    let Some(admin) = std::env::var("MAMORI_TEST_PG_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "MAMORI_TEST_PG_URL must be set under CI");
        eprintln!("MAMORI_TEST_PG_URL not set; skipped");
        return None;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Some(rt.block_on(mamori_store::testing::fresh_postgres_database(&admin)))
}

/// Connects to `port` on 127.0.0.1 from loopback address `src` (std has no
/// bind-before-connect), as a blocking stream.
pub fn connect_from(src: [u8; 4], port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let s = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(std::net::SocketAddr::from((src, 0))).unwrap();
        s.connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s
}

/// The value of cookie `name` set by a response head.
pub fn cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The hidden CSRF field of a form page.
pub fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\"").expect("a form with a CSRF field");
    let tail = &page[at..];
    let v = tail.find("value=\"").unwrap() + 7;
    tail[v..v + tail[v..].find('"').unwrap()].to_string()
}

/// Creates the municipality 札幌市 (011002) in the store, as the console would.
pub async fn create_city(store: &mamori_store::Store, scope: &mamori_store::Scope) -> mamori_core::Tenant {
    let city =
        mamori_core::NewTenant { code: "011002".into(), name: "札幌市".into(), kana: "サッポロシ".into(), kind: "city".into(), ..Default::default() };
    store.create_tenant(scope, &mamori_core::Actor::system(), city.check().unwrap()).await.unwrap()
}

/// A metric of the server's `/metrics`: the sum of its series (0 when absent).
pub fn metric(server: &Server, name: &str) -> f64 {
    let (_, _, body) = server.http("GET", "/metrics", &[], "");
    body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Posts `n` events of `tenant` (HTTP Activity, messages `{words} e{i}`) through the
/// API; their ids, or None when the server did not take them.
pub fn post_events(client: &Client, bearer: &str, tenant: &str, words: &str, n: usize) -> Option<Vec<String>> {
    let batch: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"class_uid": 4002, "severity_id": 2, "message": format!("{words} e{i}"), "metadata": {"tenant_uid": tenant}}))
        .collect();
    let (status, _, body) = client.request(
        "POST",
        "/api/v1/events",
        &[("authorization", bearer), ("content-type", "application/json")],
        &serde_json::Value::from(batch).to_string(),
    );
    if status != 201 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(answer["ids"].as_array()?.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
}

/// `clients` threads post batches of 200 events (`{word} c{k} b{n} e{i}`) until the
/// server is killed (SIGKILL) after `after`; returns every id acknowledged before.
pub fn post_then_kill(mut server: Server, bearer: &str, tenant: &str, clients: usize, word: &str, after: Duration) -> std::collections::HashSet<String> {
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..clients)
        .map(|k| {
            let (client, acked, bearer, tenant, word) = (server.client.clone(), acked.clone(), bearer.to_string(), tenant.to_string(), word.to_string());
            std::thread::spawn(move || {
                for n in 0.. {
                    match post_events(&client, &bearer, &tenant, &format!("{word} c{k} b{n}"), 200) {
                        Some(ids) => acked.lock().unwrap().extend(ids),
                        None => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(after);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    acked.lock().unwrap().iter().cloned().collect()
}

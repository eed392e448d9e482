//! The real binary under hostile clients: slowloris and connection floods from one
//! address. Hostile clients connect from 127.0.0.2 and up (all of 127/8 is loopback on
//! Linux), the test's own checks from 127.0.0.1.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn is_closed(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within.max(Duration::from_millis(1)))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

fn metric(server: &Server, name: &str) -> u64 {
    let (_, _, body) = server.http("GET", "/metrics", &[], "");
    body.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Thousands of half-open requests from one client (the attack that used to make
/// `/healthz` time out): health keeps answering, and every one of them is closed by the
/// server once the header timeout has passed.
#[test]
fn slowloris_from_one_client_does_not_starve_health_checks() {
    const HALF_OPEN: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mamori.toml");
    // The per-client cap above the attack, so that the header timeout is what is tested.
    std::fs::write(&config, "[server.http]\nheader_read_timeout_secs = 3\nmax_connections_per_client = 5000\n").unwrap();
    let server = start_with(&dir.path().join("data"), Opts { args: &["--no-demo"], config: Some(&config), ..Default::default() });
    let opened = Instant::now();
    let mut attack: Vec<TcpStream> = (0..HALF_OPEN)
        .map(|_| {
            let mut s = connect_from([127, 0, 0, 2], server.port);
            s.write_all(b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: ").unwrap();
            s
        })
        .collect();
    let all_open = opened.elapsed();
    for _ in 0..4 {
        for s in &mut attack {
            let _ = s.write_all(b"b");
        }
        let asked = Instant::now();
        assert_eq!(server.http("GET", "/healthz", &[], "").0, 200, "health answered during the attack");
        assert!(asked.elapsed() < Duration::from_secs(5), "health took {:?}", asked.elapsed());
        std::thread::sleep(Duration::from_millis(400));
    }
    let deadline = opened + all_open + Duration::from_secs(3) + Duration::from_secs(4);
    let still_open = attack.iter_mut().map(|s| is_closed(s, deadline.saturating_duration_since(Instant::now()))).filter(|closed| !closed).count();
    assert_eq!(still_open, 0, "{still_open} of {HALF_OPEN} still open after {:?}", opened.elapsed());
    assert!(metric(&server, "mamori_http_connections_closed_total{reason=\"header_timeout\"}") >= HALF_OPEN as u64);
}

/// One client is held to `max_connections_per_client`; others are served meanwhile,
/// and the refusals are counted in `/metrics`.
#[test]
fn one_client_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mamori.toml");
    std::fs::write(&config, "[server.http]\nmax_connections_per_client = 20\nheader_read_timeout_secs = 60\n").unwrap();
    let server = start_with(&dir.path().join("data"), Opts { args: &["--no-demo"], config: Some(&config), ..Default::default() });
    let held: Vec<TcpStream> = (0..20).map(|_| connect_from([127, 0, 0, 3], server.port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = 0;
    for _ in 0..30 {
        let mut s = connect_from([127, 0, 0, 3], server.port);
        if is_closed(&mut s, Duration::from_secs(2)) {
            refused += 1;
        }
    }
    assert_eq!(refused, 30, "every connection over the cap is closed at once");
    assert_eq!(server.http("GET", "/healthz", &[], "").0, 200, "another client is served");
    assert_eq!(metric(&server, "mamori_http_connections_refused_total{reason=\"client_cap\"}"), 30);
    assert!(metric(&server, "mamori_http_connections_open") >= 20);
    drop(held);
}

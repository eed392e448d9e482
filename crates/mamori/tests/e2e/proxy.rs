//! Behind a real reverse proxy (Debian's nginx): the client address comes from the
//! proxy's `X-Forwarded-For` because the proxy is in `trusted_proxies`, so the login
//! throttle and the audit log see each person's own address, not the proxy's; the same
//! header from anyone else is ignored.

use crate::support::*;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn nginx() -> Option<&'static str> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "nginx must be installed under CI (scripts/monitor-peers install)");
        eprintln!("nginx not installed; skipped");
    }
    found
}

/// A login attempt for an unknown name, sent from loopback address `src` to `port`
/// with `extra` headers; returns the status.
fn login_from(src: [u8; 4], port: u16, name: &str, extra: &str) -> u16 {
    let mut s = connect_from(src, port);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = format!("username={name}&password=not-the-password");
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn behind_nginx_each_client_is_known_by_its_own_address() {
    let Some(nginx) = nginx() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mamori.toml");
    std::fs::write(&config, "[server.http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").unwrap();
    let data = dir.path().join("data");
    let server = start_with(&data, Opts { args: &["--no-demo"], config: Some(&config), ..Default::default() });

    // nginx in front, as a municipality's reverse proxy would be.
    let proxy_port = free_port();
    let n = dir.path().join("nginx");
    std::fs::create_dir_all(n.join("tmp")).unwrap();
    let conf = format!(
        "user root;\nworker_processes 1;\ndaemon on;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
         server {{\n    listen 127.0.0.1:{proxy_port};\n    location / {{\n      proxy_pass http://127.0.0.1:{port};\n      proxy_set_header Host $http_host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n",
        d = n.display(),
        port = server.port
    );
    std::fs::write(n.join("nginx.conf"), conf).unwrap();
    let ok = Command::new(nginx).args(["-c", n.join("nginx.conf").to_str().unwrap(), "-p", n.to_str().unwrap()]).status().unwrap();
    assert!(ok.success(), "nginx did not start: {}", std::fs::read_to_string(n.join("error.log")).unwrap_or_default());
    struct Stop(std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(self.0.join("nginx.pid")) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _stop = Stop(n.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while http("GET", proxy_port, "/healthz", &[], "").0 != 200 {
        assert!(Instant::now() < deadline, "no health through nginx");
        std::thread::sleep(Duration::from_millis(100));
    }

    // One person sprays passwords through the proxy from 127.0.0.7, even claiming to
    // be someone else in a header of their own; after 30 failures that address alone
    // is refused.
    for i in 0..30 {
        assert_eq!(login_from([127, 0, 0, 7], proxy_port, &format!("nobody{i}"), "X-Forwarded-For: 127.0.0.8\r\n"), 200, "attempt {i}");
    }
    assert_eq!(login_from([127, 0, 0, 7], proxy_port, "nobody-more", ""), 429, "the sprayer is throttled");
    assert_eq!(login_from([127, 0, 0, 7], proxy_port, "nobody-more", "X-Forwarded-For: 127.0.0.8\r\n"), 429, "a forged header does not help");
    // Another person behind the same proxy is not.
    assert_eq!(login_from([127, 0, 0, 8], proxy_port, "nobody-else", ""), 200, "another client behind the proxy");
    // Someone who is not the proxy cannot use the header to frame the sprayer's address.
    assert_eq!(login_from([127, 0, 0, 9], server.port, "direct", "X-Forwarded-For: 127.0.0.7\r\n"), 200, "an untrusted peer's header is ignored");
    drop(server);

    // The audit log names the sprayer's own address, not the proxy's.
    let (code, out) = mamori(&data, &["audit", "export"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("127.0.0.7"), "{out}");
    assert!(out.contains("127.0.0.9"), "the direct client is recorded as itself: {out}");
}

//! The event pipeline under a crash: events posted through the API by several clients
//! at once while the server is killed (SIGKILL); after a restart every acknowledged
//! event is present and searchable, and none is there twice.

use super::support::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An operator's API token made by the command line (the demo admin's one-time
/// password set aside, as after a first login).
fn operator_token(data: &std::path::Path) -> String {
    rusqlite::Connection::open(data.join("mamori.db")).unwrap().execute("UPDATE users SET must_change_password = 0 WHERE username = 'admin'", []).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "token", "create", "--user", "admin", "--name", "crash", "--scopes", "events:write,events:read,tenants:read"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every event id the search finds for `word`, page by page.
pub fn found(server: &Server, bearer: &str, word: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/events?q={word}&limit=1000{cursor}");
        let (status, _, body) = server.http("GET", &path, &[("authorization", bearer)], "");
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        for e in page["events"].as_array().unwrap() {
            ids.push(e["metadata"]["uid"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

#[test]
fn acknowledged_events_survive_a_kill_during_sustained_publishing_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&[], &data)); // first start: the demo prefecture
    let bearer = format!("Bearer {}", operator_token(&data));
    let server = start(&[], &data);
    let (_, _, body) = server.http("GET", "/api/v1/tenants", &[("authorization", &bearer)], "");
    let tenants: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tenant = tenants[0]["id"].as_str().unwrap().to_string();

    // Four clients post batches of 200 until the server is gone.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for k in 0..4 {
        let (client, acked, bearer, tenant) = (server.client.clone(), acked.clone(), bearer.clone(), tenant.clone());
        clients.push(std::thread::spawn(move || {
            for n in 0.. {
                let batch: Vec<serde_json::Value> = (0..200)
                    .map(|i| serde_json::json!({"class_uid": 4002, "severity_id": 2, "message": format!("crashrun c{k} b{n} e{i}"), "metadata": {"tenant_uid": tenant}}))
                    .collect();
                let (status, _, body) =
                    client.request("POST", "/api/v1/events", &[("authorization", &bearer), ("content-type", "application/json")], &serde_json::Value::from(batch).to_string());
                if status != 201 {
                    return n;
                }
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                acked.lock().unwrap().extend(answer["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
            }
            unreachable!()
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for c in clients {
        c.join().unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 1000, "publishing went on for a while: {}", acked.len());
    eprintln!("{} events acknowledged before the kill", acked.len());

    let server = start(&[], &data);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ids = found(&server, &bearer, "crashrun");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no event is stored twice");
        let missing = acked.iter().filter(|id| !unique.contains(id)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged events are not searchable after the restart", acked.len());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The benchmark contract command: N events through the real pipeline, all searchable,
/// the last line `RATE <events/s>`; a folder that is not fresh is refused.
#[test]
fn bench_events_reports_its_rate_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (code, out) = mamori(dir.path(), &["bench", "events", "--events", "3000", "--data", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    let rate: f64 = last.strip_prefix("RATE ").and_then(|r| r.strip_suffix(" events/s")).and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("{out}"));
    assert!(rate > 0.0);
    assert!(run.join("log").is_dir(), "the run used the event log");
    let (code, out) = mamori(dir.path(), &["bench", "events", "--events", "10", "--data", run.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.contains("not empty"), "{out}");
}

//! The event pipeline under a crash: events posted through the API by several clients
//! at once while the server is killed (SIGKILL); after a restart every acknowledged
//! event is present and searchable, and none is there twice.

use super::support::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// An operator's API token made by the command line (the demo admin's one-time
/// password set aside, as after a first login).
pub fn operator_token(data: &std::path::Path) -> String {
    rusqlite::Connection::open(data.join("mamori.db")).unwrap().execute("UPDATE users SET must_change_password = 0 WHERE username = 'admin'", []).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "token", "create", "--user", "admin", "--name", "crash", "--scopes", "events:write,events:read,tenants:read"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every event id the search finds for `word` (of the last 24 hours), page by page.
pub fn found(server: &Server, bearer: &str, word: &str) -> Vec<String> {
    found_in(server, bearer, word, "")
}

/// As [`found`], with more of the query string (`&from=…`).
pub fn found_in(server: &Server, bearer: &str, word: &str, more: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/events?q={word}&limit=1000{more}{cursor}");
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
    let acked = post_then_kill(server, &bearer, &tenant, 4, "crashrun", Duration::from_secs(2));
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

/// Sealed partitions through the real binary: events of past days posted through the
/// API are sealed by the retention component at the next start, `mamori events
/// verify` finds every seal holding (manifest and audit log agree); an evidence export
/// verifies until its file is changed; verify then reports a changed byte and a removed
/// manifest of a partition, with exit status 1.
#[test]
fn closed_days_are_sealed_exported_as_evidence_and_verify_finds_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(start(&[], &data));
    let bearer = format!("Bearer {}", operator_token(&data));
    let server = start(&[], &data);
    let (_, _, body) = server.http("GET", "/api/v1/tenants", &[("authorization", &bearer)], "");
    let tenants: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tenant = tenants[0]["id"].as_str().unwrap().to_string();
    let now = mamori_core::time::now_ms();
    let batch: Vec<serde_json::Value> = (0..300)
        .map(|i| serde_json::json!({"class_uid": 4002, "time": now - (2 + i % 2) * 86_400_000, "message": format!("sealrun e{i}"), "metadata": {"tenant_uid": tenant}}))
        .collect();
    let (status, _, body) =
        server.http("POST", "/api/v1/events", &[("authorization", &bearer), ("content-type", "application/json")], &serde_json::Value::from(batch).to_string());
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let from = format!("&from={}", now - 4 * 86_400_000);
    while found_in(&server, &bearer, "sealrun", &from).len() < 300 {
        assert!(Instant::now() < deadline, "the events are searchable");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    // At start the retention component purges, then seals the days over for a day.
    let days: Vec<String> = [2, 3].iter().map(|d| mamori_core::time::format_rfc3339(now - d * 86_400_000)[..10].to_string()).collect();
    let server = start(&[], &data);
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let (code, out) = mamori(&data, &["events", "verify"]);
        if days.iter().all(|d| out.lines().any(|l| l.starts_with(d.as_str()) && l.contains("\tOK\t"))) {
            assert_eq!(code, 0, "{out}");
            break out;
        }
        assert!(Instant::now() < deadline, "the past days are sealed: {out}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(!out.contains("BROKEN"), "{out}");

    // An evidence export of those days, beside the running server: the file, its
    // manifest naming the seals it read, an audit entry; verify holds, then not once
    // the file is changed.
    let code = tenants[0]["code"].as_str().unwrap().to_string();
    let export = dir.path().join("evidence.ndjson");
    let (from, to) = (mamori_core::time::format_rfc3339(now - 4 * 86_400_000), mamori_core::time::format_rfc3339(now));
    let (status, out) =
        mamori(&data, &["events", "export", "--tenant", &code, "--from", &from, "--to", &to, "--query", "sealrun", "--output", export.to_str().unwrap()]);
    assert_eq!(status, 0, "{out}");
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 300);
    assert!(lines.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].as_str().unwrap().starts_with("sealrun")));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("evidence.ndjson.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["events"], 300);
    let sealed: Vec<&str> = manifest["partition_seals"].as_array().unwrap().iter().map(|s| s["day"].as_str().unwrap()).collect();
    assert!(days.iter().all(|d| sealed.contains(&d.as_str())), "{manifest}");
    let (status, out) = mamori(&data, &["events", "verify", "--export", export.to_str().unwrap()]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
    std::fs::write(&export, lines.replacen("sealrun", "sealrum", 1)).unwrap();
    let (status, out) = mamori(&data, &["events", "verify", "--export", export.to_str().unwrap()]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("BROKEN"), "{out}");

    // A legal hold by the command line: placed, listed, refused without a reason,
    // released.
    let (status, out) =
        mamori(&data, &["events", "hold", "add", "--tenant", &code, "--from", &from, "--to", "2026-12-31", "--reason", "事案調査", "--reference", "第12号"]);
    assert_eq!(status, 0, "{out}");
    let id = out.lines().find(|l| l.len() == 36 && l.chars().filter(|c| *c == '-').count() == 4).expect("the hold's id").to_string();
    let (_, out) = mamori(&data, &["events", "hold", "list"]);
    assert!(out.lines().any(|l| l.starts_with(&id) && l.contains("事案調査") && l.contains("holding")), "{out}");
    let (status, out) = mamori(&data, &["events", "hold", "add", "--tenant", &code, "--from", &from, "--to", &to, "--reason", " "]);
    assert_ne!(status, 0, "{out}");
    assert!(out.contains("理由"), "{out}");
    let (status, out) = mamori(&data, &["events", "hold", "release", &id]);
    assert_eq!(status, 0, "{out}");
    let (_, out) = mamori(&data, &["events", "hold", "list"]);
    assert!(!out.contains(&id), "{out}");
    let (_, out) = mamori(&data, &["events", "hold", "list", "--all"]);
    assert!(out.lines().any(|l| l.starts_with(&id) && l.contains("released")), "{out}");
    drop(server);

    // One changed byte of a sealed day.
    let file = data.join("events").join(&days[0]).join("blocks.dat");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let (code, out) = mamori(&data, &["events", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with(days[0].as_str()) && l.contains("BROKEN")), "{out}");
    bytes[0] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    // A removed manifest: the audit log still records the day's seals.
    std::fs::remove_file(data.join("events").join(&days[1]).join("manifest.json")).unwrap();
    let (code, out) = mamori(&data, &["events", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.starts_with(days[1].as_str()) && l.contains("BROKEN") && l.contains("audit")), "{out}");
    assert!(out.lines().any(|l| l.starts_with(days[0].as_str()) && l.contains("\tOK\t")), "restored, the first day holds again: {out}");
}

//! Forwarding to a real rsyslog: RFC 5424 over TCP for one municipality, CEF over
//! RELP for all; rsyslog stopped while events keep coming, then started again: over
//! RELP nothing is lost, the lag shows meanwhile.

mod common;

use common::{CODE_A, Harness, Rsyslog, wait_until};
use mamori_core::EventClass;
use serde_json::json;
use std::collections::HashMap;

/// How often each id occurs in `lines`.
fn seen(lines: &[String], ids: &[String]) -> HashMap<String, usize> {
    let mut count: HashMap<String, usize> = ids.iter().map(|i| (i.clone(), 0)).collect();
    for l in lines {
        // RFC 5424 carries the id as uid="…"; CEF as externalId=….
        let id = l.split(" uid=\"").nth(1).and_then(|r| r.split('"').next()).or_else(|| l.split("externalId=").nth(1).and_then(|r| r.split(' ').next()));
        if let Some(id) = id
            && let Some(c) = count.get_mut(id)
        {
            *c += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_gets_every_event_over_relp_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rs_dir = tempfile::tempdir().unwrap();
    let Some(mut rsyslog) = Rsyslog::start(rs_dir.path()) else { return };
    let forward = json!({ "destinations": [
        { "name": "tcp-a", "kind": "syslog", "address": format!("127.0.0.1:{}", rsyslog.tcp), "protocol": "tcp", "format": "rfc5424", "tenants": [CODE_A], "batch_events": 200 },
        { "name": "relp-all", "kind": "syslog", "address": format!("127.0.0.1:{}", rsyslog.relp), "protocol": "relp", "format": "cef", "classes": [4001], "batch_events": 300, "timeout_secs": 5 },
    ]});
    let mut h = Harness::start(dir.path(), forward, &[]).await;

    let a_ids = h.publish(h.a, EventClass::NETWORK_ACTIVITY, 1500, "fw-a").await;
    let b_ids = h.publish(h.b, EventClass::NETWORK_ACTIVITY, 1500, "fw-b").await;
    let auth_ids = h.publish(h.a, EventClass::AUTHENTICATION, 300, "auth-a").await;
    let all_net: Vec<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    wait_until(60, "rsyslog to have every event", async || {
        let lines = rsyslog.lines();
        seen(&lines, &b_ids).values().all(|c| *c >= 1) && seen(&lines, &a_ids).values().all(|c| *c >= 2)
    })
    .await;
    let lines = rsyslog.lines();
    // TCP: tenant A only, RFC 5424 with the OCSF document; RELP: class 4001 only, CEF.
    let rfc: Vec<&String> = lines.iter().filter(|l| l.contains("[mamori@32473 ") && !l.contains("CEF:0|")).collect();
    let cef: Vec<&String> = lines.iter().filter(|l| l.contains("CEF:0|")).collect();
    assert_eq!(rfc.len(), a_ids.len() + auth_ids.len(), "tenant A's events of both classes over TCP");
    assert_eq!(cef.len(), a_ids.len() + b_ids.len(), "class 4001 of both tenants over RELP");
    assert!(rfc.iter().all(|l| l.contains(&format!("tenant=\"{CODE_A}\""))), "only tenant A over TCP");
    assert!(rfc[0].starts_with("<132>1 ") && rfc[0].contains(" test-fw - 4001 ") || rfc[0].contains(" test-fw - 3002 "), "{}", rfc[0]);
    assert!(rfc[0].contains("\"class_uid\":"), "the message is the OCSF JSON: {}", rfc[0]);
    assert!(cef.iter().all(|l| l.contains("cs1Label=tenant")) && !cef.iter().any(|l| l.contains("auth-a")), "CEF, network activity only");
    assert!(cef[0].contains("接続を拒否しました"), "Japanese survives: {}", cef[0]);
    wait_until(10, "the statuses to catch up", async || h.status("relp-all").is_some_and(|s| s.lag(h.bus.end()) == 0 && s.sent == 3000)).await;
    assert_eq!(h.status("tcp-a").unwrap().sent, 1800);

    // rsyslog goes away; events keep coming: the lag grows and shows.
    rsyslog.stop();
    let during = h.publish(h.b, EventClass::NETWORK_ACTIVITY, 1000, "during").await;
    wait_until(30, "the failure to show", async || h.status("relp-all").is_some_and(|s| s.failing_since.is_some() && s.lag(h.bus.end()) > 0)).await;
    assert!(h.metric("mamori_forward_lag_events", "relp-all").unwrap_or(0.0) > 0.0, "the lag is in /metrics");
    assert_eq!(h.metric("mamori_forward_failing", "relp-all"), Some(1.0));
    let s = h.status("relp-all").unwrap();
    assert!(s.last_error.as_ref().is_some_and(|e| e.text.contains("127.0.0.1")), "{:?}", s.last_error);

    // The forwarder restarts too (its cursor is on disk), then rsyslog comes back.
    h.stop().await;
    h.run().await;
    rsyslog.run();
    wait_until(120, "the events sent while rsyslog was down", async || seen(&rsyslog.lines(), &during).values().all(|c| *c >= 1)).await;
    wait_until(10, "the lag to go back to zero", async || h.status("relp-all").is_some_and(|s| s.lag(h.bus.end()) == 0 && s.failing_since.is_none())).await;
    let counts = seen(&rsyslog.lines(), &all_net);
    assert!(counts.values().all(|c| *c >= 1), "every event before the stop is there");
    let dupes: usize = seen(&rsyslog.lines(), &during).values().map(|c| c - 1).sum();
    eprintln!("RELP: {} events while rsyslog was down, all delivered; {dupes} repeated", during.len());
    assert_eq!(h.metric("mamori_forward_failing", "relp-all"), Some(0.0));
    assert_eq!(h.metric("mamori_forward_rejected_total", "relp-all"), Some(0.0));
    assert!(h.metric("mamori_forward_sent_total", "relp-all").is_some_and(|v| v >= during.len() as f64), "this run's sends are counted");
}

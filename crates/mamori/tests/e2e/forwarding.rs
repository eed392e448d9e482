//! Forwarding through the real binary: a RELP destination to a real rsyslog, events
//! posted through the API while the server is killed (SIGKILL); after the restart
//! rsyslog has every acknowledged event, and `GET /api/v1/forwarding` shows the
//! destination caught up.

use super::events::operator_token;
use super::support::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn rsyslog_gets_every_acknowledged_event_across_a_kill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let rs_dir = tempfile::tempdir().unwrap();
    let Some(rsyslog) = mamori_forward::testing::Rsyslog::start(rs_dir.path()) else { return };
    let data = dir.path().join("data");
    drop(start(&[], &data));
    let bearer = format!("Bearer {}", operator_token(&data));
    let config = dir.path().join("mamori.toml");
    std::fs::write(
        &config,
        format!(
            "[[components.forward.destinations]]\nname = \"rsyslog\"\nkind = \"syslog\"\naddress = \"127.0.0.1:{}\"\nprotocol = \"relp\"\nformat = \"cef\"\nstart = \"oldest\"\n",
            rsyslog.relp
        ),
    )
    .unwrap();
    let opts = || Opts { config: Some(&config), ..Default::default() };
    let server = start_with(&data, opts());
    let (_, _, body) = server.http("GET", "/api/v1/tenants", &[("authorization", &bearer)], "");
    let tenants: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tenant = tenants[0]["id"].as_str().unwrap().to_string();

    let acked = post_then_kill(server, &bearer, &tenant, 2, "fwdrun", Duration::from_secs(2));
    assert!(acked.len() >= 400, "publishing went on for a while: {}", acked.len());

    let server = start_with(&data, opts());
    let deadline = Instant::now() + Duration::from_secs(120);
    let received = || -> HashSet<String> {
        rsyslog.lines().iter().filter_map(|l| l.split("externalId=").nth(1).and_then(|r| r.split(' ').next()).map(str::to_string)).collect()
    };
    loop {
        let got = received();
        let missing = acked.iter().filter(|id| !got.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged events never reached rsyslog", acked.len());
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("{} acknowledged events, all in rsyslog ({} lines)", acked.len(), rsyslog.lines().len());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = server.http("GET", "/api/v1/forwarding", &[("authorization", &bearer)], "");
        assert_eq!(status, 200, "{body}");
        let f: serde_json::Value = serde_json::from_str(&body).unwrap();
        let d = &f["destinations"][0];
        assert_eq!(d["name"], "rsyslog");
        assert_eq!(d["target"], format!("relp://127.0.0.1:{}", rsyslog.relp));
        if d["lag"] == 0 && d["failing_since"].is_null() {
            assert!(d["sent"].as_u64().unwrap() >= acked.len() as u64 / 2, "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "the destination does not catch up: {d}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

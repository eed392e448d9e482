//! Forwarding throughput, side by side with rsyslog doing the same job.
//!
//! N events (200-byte messages, one tenant) are in the event log; a destination made
//! with `start = "oldest"` sends them all to a real rsyslog, once over TCP and once
//! over RELP; the time is from the forwarder's start to its cursor at the log's end.
//! The peer: a second rsyslog reading the same number of lines, of the size of our
//! messages as the receiver wrote them, from a file (imfile) and relaying them to the
//! same receiver with omfwd (TCP) and omrelp (RELP); its time is from its start to
//! the last line at the receiver. Ours also reads each event from the log, decodes
//! and formats it; the peer only moves lines. Both senders get the
//! same cores (none is pinned); the ratio is ours over the peer's events/s.
//!
//! `cargo bench -p mamori-forward --bench forward [-- N]` (default 200000).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Harness, Rsyslog, wait_until};
use mamori_core::EventClass;
use serde_json::json;
use std::time::{Duration, Instant};

/// Counts the lines the receiver wrote, reading only what was added since last time.
struct Lines {
    path: std::path::PathBuf,
    read: u64,
    count: usize,
}

impl Lines {
    fn count(&mut self) -> usize {
        use std::io::{Read, Seek};
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let _ = f.seek(std::io::SeekFrom::Start(self.read));
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            self.read += buf.len() as u64;
            self.count += buf.iter().filter(|b| **b == b'\n').count();
        }
        self.count
    }
}

/// Runs the peer: an rsyslog relaying `n` lines of a file to `port` over `protocol`.
/// Each line about `bytes` long, as the messages it compares with.
fn peer(dir: &std::path::Path, n: usize, bytes: usize, lines: &mut Lines, protocol: &str, port: u16) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let line = "x".repeat(bytes.saturating_sub(20));
    let mut input = String::with_capacity(n * (bytes + 1));
    for i in 0..n {
        input.push_str(&format!("peer {i:>10} {line}\n"));
    }
    std::fs::write(dir.join("in.log"), input).unwrap();
    let before = lines.count();
    let action = match protocol {
        "relp" => format!("action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{port}\")"),
        _ => format!(
            "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\")"
        ),
    };
    let conf = format!(
        "global(workDirectory=\"{d}\")\nmodule(load=\"imfile\" mode=\"inotify\")\nmodule(load=\"omrelp\")\n\
         input(type=\"imfile\" File=\"{d}/in.log\" Tag=\"peer\" ruleset=\"fwd\" readMode=\"0\")\n\
         ruleset(name=\"fwd\") {{ {action} }}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("peer.conf"), conf).unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new("/usr/sbin/rsyslogd")
        .args(["-n", "-f"])
        .arg(dir.join("peer.conf"))
        .arg("-i")
        .arg(dir.join("peer.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rsyslogd");
    while lines.count() < before + n {
        assert!(started.elapsed() < Duration::from_secs(600), "the peer did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    n as f64 / secs
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rs_dir = tempfile::tempdir().unwrap();
    let Some(receiver) = Rsyslog::start(rs_dir.path()) else { return };
    println!("forwarding {n} events (200-byte event messages; each syslog line carries the OCSF document) to rsyslog on loopback");
    println!("{:<6} {:>7} {:>14} {:>14} {:>7}", "proto", "B/msg", "mamori ev/s", "rsyslog ev/s", "ratio");
    rt.block_on(async {
        let mut h = Harness::start(dir.path(), json!({ "destinations": [] }), &[]).await;
        let line = "x".repeat(200);
        for chunk in 0..n.div_ceil(10_000) {
            let k = 10_000.min(n - chunk * 10_000);
            h.publish(h.a, EventClass::NETWORK_ACTIVITY, k, &format!("bench {line}")).await;
        }
        h.bus.searchable().await;
        let mut lines = Lines { path: rs_dir.path().join("out.log"), read: 0, count: 0 };
        for (name, protocol, port) in [("tcp", "tcp", receiver.tcp), ("relp", "relp", receiver.relp)] {
            h.stop().await;
            let d = json!({ "name": format!("bench-{name}"), "kind": "syslog", "address": format!("127.0.0.1:{port}"), "protocol": protocol, "start": "oldest", "batch_events": 2000 });
            h.set_forward(json!({ "destinations": [d] }));
            let (read_before, count_before) = (lines.read, lines.count());
            let started = Instant::now();
            h.run().await;
            let end = h.bus.end();
            wait_until(600, "the forwarder to reach the end", async || h.status(&format!("bench-{name}")).is_some_and(|s| s.position >= end)).await;
            let ours = n as f64 / started.elapsed().as_secs_f64();
            // What the receiver wrote of ours: the size the peer's lines get.
            wait_until(60, "the receiver to write every message", async || lines.count() >= count_before + n).await;
            let bytes = ((lines.read - read_before) as usize / n).max(1);
            let theirs = peer(&dir.path().join(format!("peer-{name}")), n, bytes, &mut lines, protocol, port);
            println!("{name:<6} {bytes:>7} {ours:>14.0} {theirs:>14.0} {:>7.2}", ours / theirs);
        }
        h.stop().await;
    });
}

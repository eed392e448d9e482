//! Where each destination stands, as the console shows it: a small JSON file per
//! destination beside the event log (`events/forward/NAME.json`), written by the
//! forwarder at most once a second, read by the console of the same node.

use crate::config::Destination;
use mamori_bus::Bus;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest status file read.
const MAX_BYTES: u64 = 64 * 1024;

/// Something that happened: when (Unix ms) and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Note {
    /// When (Unix ms).
    pub at: i64,
    /// What (the receiver's words, or ours).
    pub text: String,
}

/// One destination's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Status {
    /// Name.
    pub name: String,
    /// Kind, for people.
    pub kind: String,
    /// Where it sends.
    pub target: String,
    /// Whether it sends.
    pub enabled: bool,
    /// Tenants (codes; empty: all).
    pub tenants: Vec<String>,
    /// Classes (empty: all).
    pub classes: Vec<u32>,
    /// Lowest severity sent.
    pub min_severity: u8,
    /// The cursor: the next offset not yet dealt with.
    pub position: u64,
    /// The log's end when last written.
    pub end: u64,
    /// Events the receiver took (since the destination was made).
    pub sent: u64,
    /// Events refused for good.
    pub rejected: u64,
    /// Events gone from the log before they were sent.
    pub skipped: u64,
    /// When the receiver last took events (Unix ms).
    pub last_sent: Option<i64>,
    /// The last failure: when and why.
    pub last_error: Option<Note>,
    /// The last refused event: when and why.
    pub last_rejection: Option<Note>,
    /// Since when it fails (None: it works).
    pub failing_since: Option<i64>,
    /// Receipt time of the oldest event waiting while it fails.
    pub oldest_pending: Option<i64>,
    /// When this was written (Unix ms).
    pub updated: i64,
    #[serde(skip)]
    #[schemars(skip)]
    written: Option<Instant>,
}

impl Status {
    /// A fresh status of `d`.
    pub fn new(d: &Destination) -> Self {
        Self {
            name: d.name.clone(),
            kind: d.kind.map(|k| k.label().to_string()).unwrap_or_default(),
            target: d.target(),
            enabled: d.enabled,
            tenants: d.tenants.clone(),
            classes: d.classes.clone(),
            min_severity: d.min_severity,
            ..Default::default()
        }
    }

    /// Keeps the counters of the previous run.
    pub fn carry_over(&mut self, old: &Status) {
        self.sent = old.sent;
        self.rejected = old.rejected;
        self.skipped = old.skipped;
        self.last_sent = old.last_sent;
        self.last_error = old.last_error.clone();
        self.last_rejection = old.last_rejection.clone();
    }

    /// Events not yet dealt with, against the log's end `end`.
    pub fn lag(&self, end: u64) -> u64 {
        end.saturating_sub(self.position)
    }

    /// Writes the file (a failure is logged: the status is for people only).
    pub fn write(&mut self, dir: &Path) {
        self.updated = mamori_core::time::now_ms();
        self.written = Some(Instant::now());
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{}.json", self.name));
            let tmp = dir.join(format!(".{}.tmp", self.name));
            std::fs::write(&tmp, serde_json::to_vec(self).unwrap_or_default())?;
            std::fs::rename(tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!(destination = %self.name, error = %e, "forwarding: cannot write the status file");
        }
    }

    /// Writes the file unless it was written within `every`.
    pub fn write_at_most_every(&mut self, dir: &Path, every: Duration) {
        if self.written.is_none_or(|w| w.elapsed() >= every) {
            self.write(dir);
        }
    }
}

/// The folder of the status files of a bus's node.
pub fn dir(bus: &Bus) -> PathBuf {
    bus.events().dir().join("forward")
}

/// Reads one destination's status.
pub fn read(dir: &Path, name: &str) -> Option<Status> {
    let path = dir.join(format!("{name}.json"));
    if std::fs::metadata(&path).ok()?.len() > MAX_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Reads every destination's status, by name.
pub fn all(dir: &Path) -> Vec<Status> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Status> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| !f.starts_with('.'))
        .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
        .filter_map(|name| read(dir, &name))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Removes a destination's status.
pub fn remove(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(dir.join(format!("{name}.json")));
}

//! The remote probe (`mamori probe`): runs the checks assigned to it from inside a
//! municipality's network and reports results to the core over its REST API.
//!
//! - `GET  /api/v1/probe/monitors` (every `refresh`): the monitors assigned to this probe.
//! - `POST /api/v1/probe/results`: results, in batches of up to 500.
//!
//! Authentication is the probe's own token (`Authorization: Bearer mmp_…`), which can
//! do nothing but these two calls. Results are kept in memory while the core cannot be
//! reached (up to [`MAX_BUFFERED`], oldest dropped first and counted), and the core
//! marks a probe's monitors DOWN with reason `probe_silent` when nothing arrives.
//!
//! Requirements: F01–F05 checks run from inside a member organization's network (e.g. F05
//! AD servers).

use bytes::Bytes;
use mamori_core::monitor::{CheckResult, MonitorId, MonitorSpec};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest answer read from the core (the assignments of a shared probe can be large).
const MAX_ASSIGNMENTS_BYTES: usize = 64 * 1024 * 1024;

/// Results buffered while the core is unreachable.
pub const MAX_BUFFERED: usize = 10_000;

/// One assigned monitor, as the core sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assignment {
    /// Monitor id.
    pub id: MonitorId,
    /// Its settings (with secrets: the probe needs them).
    pub spec: MonitorSpec,
}

/// The answer of `GET /api/v1/probe/monitors`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assignments {
    /// The probe's name.
    pub probe: String,
    /// Its monitors.
    pub monitors: Vec<Assignment>,
}

/// Errors of the probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The core refused the token.
    #[error("the core refused the probe token (HTTP {0})")]
    Unauthorized(u16),
    /// The settings are wrong.
    #[error("{0}")]
    Config(String),
}

/// Probe settings.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The core's base URL, e.g. `https://mamori.pref.example.lg.jp`.
    pub server: String,
    /// The probe token.
    pub token: String,
    /// Extra trust anchor (PEM) for the core's certificate.
    pub ca_pem: Option<String>,
    /// How often assignments are fetched.
    pub refresh: Duration,
}

async fn call(cfg: &ProbeConfig, method: &str, path: &str, body: Option<Bytes>) -> Result<(u16, Vec<u8>), String> {
    let auth = format!("Bearer {}", cfg.token);
    let url = format!("{}{path}", cfg.server.trim_end_matches('/'));
    let a = crate::check::request(
        &url,
        method,
        &[("authorization", auth.as_str()), ("accept", "application/json")],
        body.map(|b| ("application/json", b)),
        cfg.ca_pem.as_deref(),
        MAX_ASSIGNMENTS_BYTES,
        false,
        Duration::from_secs(30),
    )
    .await
    .map_err(|r| r.en)?;
    if a.truncated {
        return Err("the core's answer is too large".into());
    }
    Ok((a.status, a.body))
}

/// Fetches the probe's assignments.
pub async fn fetch(cfg: &ProbeConfig) -> Result<Result<Assignments, String>, ProbeError> {
    match call(cfg, "GET", "/api/v1/probe/monitors", None).await {
        Ok((401 | 403, _)) => Err(ProbeError::Unauthorized(401)),
        Ok((200, body)) => Ok(serde_json::from_slice(&body).map_err(|e| format!("cannot read the assignments: {e}"))),
        Ok((s, _)) => Ok(Err(format!("the core answered HTTP {s}"))),
        Err(e) => Ok(Err(e)),
    }
}

/// Runs the probe until `shutdown` turns true.
pub async fn run(cfg: ProbeConfig, mut shutdown: tokio::sync::watch::Receiver<bool>) -> Result<(), ProbeError> {
    if !(cfg.server.starts_with("https://") || cfg.server.starts_with("http://127.0.0.1") || cfg.server.starts_with("http://localhost")) {
        return Err(ProbeError::Config("the server URL must be https:// (plain http only on loopback)".into()));
    }
    let (tx, mut rx) = mpsc::channel::<CheckResult>(4096);
    let mut running: HashMap<MonitorId, (MonitorSpec, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut buffer: VecDeque<CheckResult> = VecDeque::new();
    let mut dropped: u64 = 0;
    let mut refresh = tokio::time::interval(cfg.refresh);
    let mut send = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = refresh.tick() => {
                match fetch(&cfg).await? {
                    Ok(a) => {
                        let wanted: HashMap<MonitorId, MonitorSpec> = a.monitors.into_iter().map(|m| (m.id, m.spec)).collect();
                        running.retain(|id, (spec, h)| {
                            let keep = wanted.get(id) == Some(spec);
                            if !keep { h.abort(); }
                            keep
                        });
                        for (id, spec) in wanted {
                            if running.contains_key(&id) || !spec.enabled { continue; }
                            let (tx, s) = (tx.clone(), spec.clone());
                            let h = tokio::spawn(async move {
                                let mut every = tokio::time::interval(Duration::from_secs(u64::from(s.interval_secs)));
                                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                                loop {
                                    every.tick().await;
                                    let r = crate::check::run(id, &s).await;
                                    if tx.send(r).await.is_err() { return; }
                                }
                            });
                            running.insert(id, (spec, h));
                        }
                        tracing::info!(probe = %a.probe, monitors = running.len(), "assignments");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot fetch assignments; keeping the current ones"),
                }
            }
            Some(r) = rx.recv() => {
                if buffer.len() >= MAX_BUFFERED {
                    buffer.pop_front();
                    dropped += 1;
                }
                buffer.push_back(r);
            }
            _ = send.tick() => {
                while !buffer.is_empty() {
                    let n = buffer.len().min(500);
                    let batch: Vec<&CheckResult> = buffer.iter().take(n).collect();
                    let body = Bytes::from(serde_json::to_vec(&batch).unwrap_or_default());
                    match call(&cfg, "POST", "/api/v1/probe/results", Some(body)).await {
                        Ok((200..=299, _)) => { buffer.drain(..n); }
                        Ok((401 | 403, _)) => return Err(ProbeError::Unauthorized(401)),
                        Ok((s, _)) => { tracing::warn!(status = s, buffered = buffer.len(), "the core did not take results"); break; }
                        Err(e) => { tracing::warn!(error = %e, buffered = buffer.len(), dropped, "cannot reach the core"); break; }
                    }
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    for (_, (_, h)) in running { h.abort(); }
                    return Ok(());
                }
            }
        }
    }
}

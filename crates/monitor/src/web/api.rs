//! `/api/v1/monitors`, `/api/v1/faults`, `/api/v1/probes` and the remote probes' own
//! `/api/v1/probe/*` (probe token).
//!
//! Requirements: F01–F05 monitors, faults (F25) and remote probes.

use super::board::{board, create_standard, monthly_uptime, read_spec, read_standard, target_tenant};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mamori_core::monitor::{CheckResult, FaultId, MonitorId, ProbeId, Reason, Status};
use mamori_core::{Permission, TenantId};
use mamori_store::Store;
use mamori_store::{FaultFilter, Probe};
use mamori_web::api::{ApiResult, body, created, int_param, ok, patch_doc, replace_doc, tenant_param};
use mamori_web::auth::{client_ip, random_token, sha256_hex};
use mamori_web::{ApiAuth, AppError, Authed};
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

fn monitor_id(s: &str) -> Result<MonitorId, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}

fn tenant_filter(q: &HashMap<String, String>) -> Result<Option<TenantId>, AppError> {
    tenant_param("tenant", q.get("tenant").map(String::as_str))
}

pub async fn list(State(store): State<Store>, ApiAuth(a): ApiAuth, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    store.note_scope(&scope, "monitors").await?;
    ok(json!(board(&store, &scope, tenant_filter(&q)?).await?))
}

pub async fn create(State(store): State<Store>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let (tenant, spec) = read_spec(body(&bytes)?)?;
    let tenant = target_tenant(&a.principal, tenant.as_deref())?;
    let m = store.create_monitor(&a.principal.scope(), &a.principal.actor(), tenant, spec).await?;
    created(json!(mamori_core::monitor::Monitor { spec: m.spec.redacted(), ..m }))
}

pub async fn create_standard_set(State(store): State<Store>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let (tenant, set) = read_standard(body(&bytes)?)?;
    let tenant = target_tenant(&a.principal, tenant.as_deref())?;
    let made = create_standard(&store, &a.principal, tenant, &set).await?;
    created(json!(made.into_iter().map(|m| mamori_core::monitor::Monitor { spec: m.spec.redacted(), ..m }).collect::<Vec<_>>()))
}

pub async fn get(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    let m = store.get_monitor(&scope, monitor_id(&id)?).await?;
    let st = store.monitor_states(&scope, Some(m.tenant)).await?.into_iter().find(|s| s.monitor == m.id);
    ok(json!({"monitor": mamori_core::monitor::Monitor { spec: m.spec.redacted(), ..m }, "state": st}))
}

/// PUT: every field of the monitor (an omitted one is an error, not a reset; a masked
/// password keeps the stored one).
pub async fn update(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let (id, current) = current_spec(&store, &a, &id).await?;
    let (_, spec) = read_spec(replace_doc(&current, &bytes, &["platform_targets"])?)?;
    save(&store, &a, id, spec).await
}

/// PATCH: the fields named change, the others stay (JSON merge patch).
pub async fn patch(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let (id, current) = current_spec(&store, &a, &id).await?;
    let (_, spec) = read_spec(patch_doc(current, &bytes)?)?;
    save(&store, &a, id, spec).await
}

/// The monitor in scope as the document PUT and PATCH start from (secrets masked).
async fn current_spec(store: &Store, a: &Authed, id: &str) -> Result<(MonitorId, Value), AppError> {
    let m = store.get_monitor(&a.principal.scope(), monitor_id(id)?).await?;
    Ok((m.id, json!(m.spec.redacted())))
}

async fn save(store: &Store, a: &Authed, id: MonitorId, spec: mamori_core::monitor::MonitorSpec) -> ApiResult {
    let m = store.update_monitor(&a.principal.scope(), &a.principal.actor(), id, spec).await?;
    ok(json!(mamori_core::monitor::Monitor { spec: m.spec.redacted(), ..m }))
}

pub async fn delete(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    store.delete_monitor(&a.principal.scope(), &a.principal.actor(), monitor_id(&id)?).await?;
    ok(json!({"deleted": id}))
}

fn time_param(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, AppError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => mamori_core::time::parse_time(s)
            .map(Some)
            .ok_or_else(|| mamori_core::Problem::new(key, "invalid_time", format!("{key} の日時が正しくありません"), format!("invalid time in {key}")).into()),
    }
}

pub async fn results(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let now = mamori_core::time::now_ms();
    let to = time_param(&q, "to")?.unwrap_or(now + 1);
    let from = time_param(&q, "from")?.unwrap_or(to - 86_400_000);
    let limit = int_param(q.get("limit").map(String::as_str), "limit", 1440, 1..=20_000)?;
    ok(json!(store.monitor_results(&a.principal.scope(), monitor_id(&id)?, from, to, limit).await?))
}

pub async fn uptime(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    let m = store.get_monitor(&scope, monitor_id(&id)?).await?;
    let months = int_param(q.get("months").map(String::as_str), "months", 6, 1..=24)? as i32;
    ok(json!(monthly_uptime(&store, &scope, &m, months).await?))
}

/// Reads the fault list's query parameters.
pub fn fault_filter(q: &HashMap<String, String>) -> Result<FaultFilter, AppError> {
    Ok(FaultFilter {
        tenant: tenant_filter(q)?,
        monitor: q.get("monitor").filter(|s| !s.is_empty()).map(|s| monitor_id(s)).transpose()?,
        open_only: q.get("open").is_some_and(|v| v == "true" || v == "1"),
        from_ms: time_param(q, "from")?,
        to_ms: time_param(q, "to")?,
        limit: q.get("limit").filter(|l| !l.is_empty()).map(|l| int_param(Some(l), "limit", 100, 1..=10_000)).transpose()?,
    })
}

pub async fn faults(State(store): State<Store>, ApiAuth(a): ApiAuth, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    store.note_scope(&scope, "faults").await?;
    ok(json!(store.list_faults(&scope, &fault_filter(&q)?).await?))
}

pub async fn fault(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let id: FaultId = id.parse().map_err(|_| AppError::NotFound)?;
    ok(json!(store.get_fault(&a.principal.scope(), id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    #[serde(default)]
    text: String,
    #[serde(default)]
    acknowledge: bool,
}

pub async fn comment(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    if !a.principal.can(Permission::MonitorsWrite) {
        return Err(AppError::Forbidden);
    }
    let id: FaultId = id.parse().map_err(|_| AppError::NotFound)?;
    let c: Comment = body(&bytes)?;
    store.comment_fault(&a.principal.scope(), &a.principal.actor(), id, &c.text, c.acknowledge).await?;
    ok(json!(store.get_fault(&a.principal.scope(), id).await?))
}

pub async fn probes(State(store): State<Store>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    ok(json!(store.list_probes(&a.principal.scope()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProbe {
    name: String,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// Registers a probe; returns it with its token (shown once).
pub async fn register_probe(store: &Store, a: &Authed, name: &str, tenant: Option<&str>) -> Result<(Probe, String), AppError> {
    let tenant = match (a.principal.tenant_id(), tenant.filter(|t| !t.is_empty())) {
        (Some(own), Some(t)) if t.parse::<TenantId>().ok() != Some(own) => return Err(AppError::NotFound),
        (Some(own), _) => Some(own),
        (None, Some(t)) => Some(t.parse().map_err(|_| AppError::NotFound)?),
        (None, None) => None,
    };
    let secret = format!("mmp_{}", random_token(32));
    let p = store.create_probe(&a.principal.scope(), &a.principal.actor(), tenant, name, &sha256_hex(&secret)).await?;
    Ok((p, secret))
}

pub async fn create_probe(State(store): State<Store>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let n: NewProbe = body(&bytes)?;
    let (p, secret) = register_probe(&store, &a, &n.name, n.tenant_id.as_deref()).await?;
    created(json!({"probe": p, "token": secret}))
}

pub async fn delete_probe(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let id: ProbeId = id.parse().map_err(|_| AppError::NotFound)?;
    store.delete_probe(&a.principal.scope(), &a.principal.actor(), id).await?;
    ok(json!({"deleted": id}))
}

/// A request authenticated by a probe token (`mmp_…`). Such a token reaches nothing
/// but the probe endpoints.
pub struct ProbeAuth(pub Probe);

impl FromRequestParts<Store> for ProbeAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, store: &Store) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with("mmp_") && t.len() <= 128);
        let Some(token) = token else { return Err(AppError::Unauthorized.json()) };
        match store.probe_by_token(&sha256_hex(token), client_ip(parts).as_deref()).await {
            Ok(Some(p)) => Ok(ProbeAuth(p)),
            Ok(None) => Err(AppError::Unauthorized.json()),
            Err(e) => Err(AppError::from(e).json()),
        }
    }
}

pub async fn probe_monitors(State(store): State<Store>, ProbeAuth(p): ProbeAuth) -> ApiResult {
    let monitors = store.probe_monitors(&p).await?;
    ok(json!(crate::probe::Assignments {
        probe: p.name,
        monitors: monitors.into_iter().map(|m| crate::probe::Assignment { id: m.id, spec: m.spec }).collect(),
    }))
}

/// Most results in one probe submission.
const MAX_PROBE_RESULTS: usize = 1000;

pub async fn probe_results(State(store): State<Store>, ProbeAuth(p): ProbeAuth, bytes: Bytes) -> ApiResult {
    let results: Vec<CheckResult> = body(&bytes)?;
    if results.len() > MAX_PROBE_RESULTS {
        return Err(mamori_core::Problem::new("body", "too_many", "一度に送れる結果は1000件までです", "at most 1000 results at once").into());
    }
    let assigned: std::collections::HashSet<MonitorId> = store.probe_monitors(&p).await?.into_iter().map(|m| m.id).collect();
    let now = mamori_core::time::now_ms();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for mut r in results {
        // Only the probe's own monitors; only verdicts a check can give; times near now;
        // bounded texts.
        if !assigned.contains(&r.monitor) || !matches!(r.status, Status::Up | Status::Degraded | Status::Down) {
            refused += 1;
            continue;
        }
        if r.at.abs_diff(now) > 10 * 60_000 {
            r.at = now;
        }
        r.reason = r.reason.map(|x| Reason::new(clip(&x.code, 64), clip(&x.ja, 1000), clip(&x.en, 1000)));
        if serde_json::to_vec(&r.details).map(|v| v.len()).unwrap_or(0) > 16 * 1024 {
            r.details = Value::Null;
        }
        accepted.push(r);
    }
    // Queued in the config store: whichever node runs the monitor applies them within a
    // second, so a probe may post to any node.
    store.queue_probe_results(&p, &accepted).await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"accepted": accepted.len(), "refused": refused}))).into_response())
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

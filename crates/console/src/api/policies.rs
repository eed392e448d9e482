//! `/api/v1/policies`

use super::{ApiResult, body, ok};
use crate::auth::{ApiAuth, Authed};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Permission, Problem, TenantId};
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
}

fn tenant_of(q: &TenantQuery, own: Option<TenantId>) -> Result<Option<TenantId>, AppError> {
    match q.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Ok(Some(t.parse().map_err(|_| AppError::NotFound)?)),
        None => Ok(own),
    }
}

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    let list: Vec<Value> = state
        .registry
        .policy_components()
        .into_iter()
        .map(|c| json!({ "component": c, "default": state.registry.validator(c).map(|v| v.default_policy()) }))
        .collect();
    ok(json!(list))
}

pub async fn get(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<TenantQuery>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let scope = a.principal.scope();
    let tenant = tenant_of(&q, a.principal.tenant_id())?;
    if tenant.is_some_and(|t| !scope.includes(t)) {
        return Err(AppError::NotFound);
    }
    let (document, source, version) = match state.store.effective_policy(&scope, tenant, &component).await? {
        Some(p) => (p.document, if p.tenant.is_some() { "tenant" } else { "platform" }, Some(p.version)),
        None => (validator.default_policy(), "builtin", None),
    };
    ok(json!({ "component": component, "tenant": tenant, "source": source, "version": version, "document": document }))
}

/// Refuses a policy write by a role the component's policy writers do not include,
/// saying who may: the store's own check (every save, review and cancel makes it too),
/// asked first so a refused writer hears that before anything about the request body.
pub async fn require_policy_writer(state: &AppState, a: &Authed, component: &str) -> Result<(), AppError> {
    a.require(Permission::PoliciesWrite)?;
    Ok(state.store.check_policy_writer(&a.principal.scope(), component).await?)
}

#[derive(Deserialize)]
pub struct PutQuery {
    tenant: Option<String>,
    /// Only show what would change.
    #[serde(default)]
    dry_run: bool,
    /// Take effect at this time (RFC 3339, or JST `YYYY-MM-DD HH:MM`) instead of now.
    effective_at: Option<String>,
}

/// Parses a scheduled time as people and clients give it.
pub fn effective_at(input: Option<&str>) -> Result<Option<i64>, AppError> {
    match input.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => mamori_core::time::parse_time(s).map(Some).ok_or_else(|| {
            Problem::new(
                "effective_at",
                "invalid_time",
                format!("適用日時「{s}」を読めません（例: 2026-12-24 09:00）"),
                format!("cannot read the time '{s}' (e.g. 2026-12-24T09:00:00+09:00)"),
            )
            .into()
        }),
    }
}

pub async fn put(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<PutQuery>, bytes: Bytes) -> ApiResult {
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    require_policy_writer(&state, &a, &component).await?;
    let doc: Value = body(&bytes)?;
    let tenant = tenant_of(&TenantQuery { tenant: q.tenant.clone() }, a.principal.tenant_id())?;
    let scope = a.principal.scope();
    if q.dry_run {
        let (version, changes) = state.store.preview_policy(&scope, tenant, validator.as_ref(), &doc).await?;
        return ok(json!({"component": component, "tenant": tenant, "version": version, "changes": changes}));
    }
    match effective_at(q.effective_at.as_deref())? {
        Some(at) => ok(json!(state.store.schedule_policy(&scope, &a.principal.actor(), tenant, validator.as_ref(), doc, at).await?)),
        None => ok(json!(state.store.put_policy(&scope, &a.principal.actor(), tenant, validator.as_ref(), doc).await?)),
    }
}

pub async fn cancel(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<RollbackQuery>) -> ApiResult {
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    require_policy_writer(&state, &a, &component).await?;
    let tenant = tenant_of(&TenantQuery { tenant: q.tenant.clone() }, a.principal.tenant_id())?;
    state.store.cancel_scheduled_policy(&a.principal.scope(), &a.principal.actor(), tenant, &component, q.version).await?;
    ok(json!({"cancelled": q.version}))
}

#[derive(Deserialize)]
pub struct RollbackQuery {
    tenant: Option<String>,
    version: i64,
}

pub async fn rollback(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<RollbackQuery>) -> ApiResult {
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    require_policy_writer(&state, &a, &component).await?;
    let tenant = tenant_of(&TenantQuery { tenant: q.tenant.clone() }, a.principal.tenant_id())?;
    ok(json!(state.store.rollback_policy(&a.principal.scope(), &a.principal.actor(), tenant, validator.as_ref(), q.version).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WritersInput {
    roles: Vec<mamori_core::Role>,
}

pub async fn writers(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    ok(json!({"component": component, "roles": state.store.policy_writers(&component).await?}))
}

pub async fn put_writers(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, bytes: Bytes) -> ApiResult {
    a.require_operator(Permission::SettingsWrite)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let input: WritersInput = body(&bytes)?;
    let roles = state.store.put_policy_writers(&a.principal.scope(), &a.principal.actor(), &component, &input.roles).await?;
    ok(json!({"component": component, "roles": roles}))
}

pub async fn versions(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<TenantQuery>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let tenant = tenant_of(&q, a.principal.tenant_id())?;
    ok(json!(state.store.policy_versions(&a.principal.scope(), tenant, &component, 100).await?))
}

pub async fn minimums(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    ok(json!({ "component": component, "minimums": state.store.policy_minimums(validator.as_ref()).await? }))
}

pub async fn put_minimums(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, bytes: Bytes) -> ApiResult {
    a.require_operator(Permission::SettingsWrite)?;
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let doc: Value = body(&bytes)?;
    state.store.put_policy_minimums(&a.principal.scope(), &a.principal.actor(), validator.as_ref(), doc.clone()).await?;
    ok(json!({ "component": component, "minimums": doc }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalInput {
    required: bool,
}

pub async fn approval(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    ok(json!({"component": component, "required": state.store.policy_needs_approval(&component).await?}))
}

pub async fn put_approval(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, bytes: Bytes) -> ApiResult {
    a.require_operator(Permission::SettingsWrite)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let input: ApprovalInput = body(&bytes)?;
    state.store.put_policy_approval(&a.principal.scope(), &a.principal.actor(), &component, input.required).await?;
    ok(json!({"component": component, "required": input.required}))
}

/// A version waiting for approval, with what it changes against the version in force
/// (the tenant's own, else the platform default, else the component's default).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct PendingChange {
    /// The waiting version.
    pub policy: mamori_core::PolicyDocument,
    /// What it changes.
    pub changes: Vec<mamori_core::PolicyChange>,
}

/// Returns the versions in the caller's scope that wait for approval.
pub async fn pending_changes(state: &AppState, a: &Authed) -> Result<Vec<PendingChange>, AppError> {
    a.require(Permission::PoliciesRead)?;
    let scope = a.principal.scope();
    let mut out = Vec::new();
    for p in state.store.pending_policies(&scope).await? {
        let current = state.store.effective_policy(&scope, p.tenant, &p.component).await?.map(|c| c.document);
        let before = current.or_else(|| state.registry.validator(&p.component).map(|v| v.default_policy())).unwrap_or(Value::Null);
        let changes = mamori_core::policy_diff(&before, &p.document);
        out.push(PendingChange { policy: p, changes });
    }
    Ok(out)
}

pub async fn approvals(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    ok(json!(pending_changes(&state, &a).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionInput {
    #[serde(default)]
    note: String,
}

/// Approves or rejects a waiting version (the prefecture's approver).
pub async fn decide(
    state: &AppState,
    a: &Authed,
    component: &str,
    tenant: Option<TenantId>,
    version: i64,
    approve: bool,
    note: &str,
) -> Result<mamori_core::PolicyDocument, AppError> {
    a.require(Permission::PoliciesApprove)?;
    let validator = state.registry.validator(component).ok_or(AppError::NotFound)?;
    Ok(state.store.decide_policy(&a.principal.scope(), &a.principal.actor(), tenant, validator.as_ref(), version, approve, note).await?)
}

async fn decision(state: AppState, a: Authed, component: String, q: TenantQuery, version: i64, bytes: Bytes, approve: bool) -> ApiResult {
    let input: DecisionInput = if bytes.is_empty() { DecisionInput::default() } else { body(&bytes)? };
    let tenant = tenant_of(&q, None)?;
    ok(json!(decide(&state, &a, &component, tenant, version, approve, &input.note).await?))
}

pub async fn approve(
    State(state): State<AppState>,
    ApiAuth(a): ApiAuth,
    Path((component, version)): Path<(String, i64)>,
    Query(q): Query<TenantQuery>,
    bytes: Bytes,
) -> ApiResult {
    decision(state, a, component, q, version, bytes, true).await
}

pub async fn reject(
    State(state): State<AppState>,
    ApiAuth(a): ApiAuth,
    Path((component, version)): Path<(String, i64)>,
    Query(q): Query<TenantQuery>,
    bytes: Bytes,
) -> ApiResult {
    decision(state, a, component, q, version, bytes, false).await
}

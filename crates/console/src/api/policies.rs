//! `/api/v1/policies`

use super::{ApiResult, body, ok};
use crate::auth::ApiAuth;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use mamori_core::{Permission, TenantId};
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
    let tenant = tenant_of(&q, a.principal.tenant_id)?;
    if tenant.is_some_and(|t| !scope.includes(t)) {
        return Err(AppError::NotFound);
    }
    let own = state.store.policy(&scope, tenant, &component).await?;
    let fallback = if tenant.is_some() && own.is_none() { state.store.policy(&scope, None, &component).await? } else { None };
    let (document, source, version) = match (own, fallback) {
        (Some(p), _) => (p.document, if tenant.is_some() { "tenant" } else { "platform" }, Some(p.version)),
        (None, Some(p)) => (p.document, "platform", Some(p.version)),
        (None, None) => (validator.default_policy(), "builtin", None),
    };
    ok(json!({ "component": component, "tenant": tenant, "source": source, "version": version, "document": document }))
}

pub async fn put(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<TenantQuery>, bytes: Bytes) -> ApiResult {
    a.require(Permission::PoliciesWrite)?;
    let validator = state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let doc: Value = body(&bytes)?;
    let tenant = tenant_of(&q, a.principal.tenant_id)?;
    ok(json!(state.store.put_policy(&a.principal.scope(), &a.principal.actor(), tenant, validator.as_ref(), doc).await?))
}

pub async fn versions(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(component): Path<String>, Query(q): Query<TenantQuery>) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    state.registry.validator(&component).ok_or(AppError::NotFound)?;
    let tenant = tenant_of(&q, a.principal.tenant_id)?;
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

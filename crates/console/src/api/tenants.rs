//! `/api/v1/tenants`
//!
//! Requirements: see `pages::tenants` (F05, F17, F21, F30–F51).

use super::{ApiResult, body, created, from_doc, ok, patch_doc, replace_doc};
use crate::auth::ApiAuth;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Contact, NewTenant, Permission, TenantId};
use mamori_web::Path;
use serde_json::json;

fn id(s: &str) -> Result<TenantId, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::TenantsRead)?;
    ok(json!(state.store.list_tenants(&a.principal.scope()).await?))
}

pub async fn create(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::TenantsWrite)?;
    let input: NewTenant = body(&bytes)?;
    let t = state.store.create_tenant(&a.principal.scope(), &a.principal.actor(), input.check()?).await?;
    created(json!(t))
}

pub async fn get(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(tid): Path<String>) -> ApiResult {
    a.require(Permission::TenantsRead)?;
    ok(json!(state.store.get_tenant(&a.principal.scope(), id(&tid)?).await?.ok_or(AppError::NotFound)?))
}

/// PUT: every field of the tenant (an omitted one is an error, not a reset).
pub async fn update(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(tid): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::TenantsWrite)?;
    let (tid, current) = current_input(&state, &a, &tid).await?;
    let input: NewTenant = from_doc(replace_doc(&current, &bytes, &[])?)?;
    ok(json!(state.store.update_tenant(&a.principal.scope(), &a.principal.actor(), tid, input.check()?).await?))
}

/// PATCH: the fields named change, the others stay (JSON merge patch).
pub async fn patch(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(tid): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::TenantsWrite)?;
    let (tid, current) = current_input(&state, &a, &tid).await?;
    let input: NewTenant = from_doc(patch_doc(current, &bytes)?)?;
    ok(json!(state.store.update_tenant(&a.principal.scope(), &a.principal.actor(), tid, input.check()?).await?))
}

/// The tenant in scope as the document PUT and PATCH start from.
async fn current_input(state: &AppState, a: &crate::auth::Authed, tid: &str) -> Result<(TenantId, serde_json::Value), AppError> {
    let tid = id(tid)?;
    let t = state.store.get_tenant(&a.principal.scope(), tid).await?.ok_or(AppError::NotFound)?;
    Ok((tid, json!(t.to_input())))
}

pub async fn delete(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(tid): Path<String>) -> ApiResult {
    a.require(Permission::TenantsWrite)?;
    state.store.delete_tenant(&a.principal.scope(), &a.principal.actor(), id(&tid)?).await?;
    ok(json!({"deleted": tid}))
}

pub async fn contacts(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(tid): Path<String>, bytes: Bytes) -> ApiResult {
    let tid = id(&tid)?;
    if !a.principal.may_edit_contacts(tid) {
        return Err(AppError::Forbidden);
    }
    let contacts: Vec<Contact> = body(&bytes)?;
    let scope = a.principal.scope();
    let current = state.store.get_tenant(&scope, tid).await?.ok_or(AppError::NotFound)?;
    let contacts = current.check_contacts(contacts)?;
    ok(json!(state.store.update_contacts(&scope, &a.principal.actor(), tid, contacts).await?))
}

pub async fn export(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::TenantsRead)?;
    let tenants = state.store.list_tenants(&a.principal.scope()).await?;
    Ok(crate::pages::tenants_csv_response(crate::csv_io::export_tenants(&tenants)))
}

pub async fn import(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::TenantsWrite)?;
    let rows = crate::csv_io::import_tenants(&bytes)?;
    ok(json!(state.store.import_tenants(&a.principal.scope(), &a.principal.actor(), rows).await?))
}

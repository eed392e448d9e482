//! `/api/v1/secrets`: keys, certificates and passwords for components. Write-only: an
//! answer shows a secret's name, kind and history, never its value.
//!
//! Requirements: see `pages::secrets` (F05, F09, F14, F50).

use super::{ApiResult, body, ok};
use crate::auth::{ApiAuth, Authed};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Permission, Role, TenantId};
use mamori_vault::SecretKind;
use mamori_web::Query;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

/// Which secret: a tenant's (empty tenant: the caller's own, or the platform's for an
/// operator) by name.
#[derive(Deserialize)]
pub struct SecretQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    name: String,
}

/// Returns the tenant a secret request is about: the one named, `platform`, or (empty)
/// the caller's own tenant, which for operators is the platform. The platform's own secrets are for operator admins only.
pub fn secret_tenant(a: &Authed, tenant: &str) -> Result<Option<TenantId>, AppError> {
    let t = tenant.trim();
    let tenant = match t {
        "" => a.principal.tenant_id(),
        "platform" => None,
        id => Some(id.parse().map_err(|_| AppError::NotFound)?),
    };
    match tenant {
        None if a.principal.role() != Role::OperatorAdmin => Err(AppError::Forbidden),
        Some(t) if !a.principal.scope().includes(t) => Err(AppError::NotFound),
        other => Ok(other),
    }
}

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::PoliciesRead)?;
    ok(json!(state.vault.secrets.list(&a.principal.scope()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretInput {
    #[serde(default)]
    tenant: String,
    name: String,
    kind: String,
    value: String,
}

pub async fn put(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::PoliciesWrite)?;
    let input: SecretInput = body(&bytes)?;
    let value = Zeroizing::new(input.value);
    let tenant = secret_tenant(&a, &input.tenant)?;
    let kind: SecretKind = input.kind.parse()?;
    let info = state.vault.secrets.put(&a.principal.scope(), &a.principal.actor(), tenant, &input.name, kind, value.as_bytes()).await?;
    ok(json!(info))
}

pub async fn delete(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<SecretQuery>) -> ApiResult {
    a.require(Permission::PoliciesWrite)?;
    let tenant = secret_tenant(&a, &q.tenant)?;
    state.vault.secrets.delete(&a.principal.scope(), &a.principal.actor(), tenant, &q.name).await?;
    ok(json!({"deleted": q.name}))
}

//! `/api/v1/audit`

use super::{ApiResult, ok};
use crate::auth::ApiAuth;
use crate::pages::AuditQuery;
use crate::{AppError, AppState};
use axum::extract::State;
use mamori_core::Permission;
use mamori_web::Query;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct Paging {
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<AuditQuery>, Query(p): Query<Paging>) -> ApiResult {
    a.require(Permission::AuditRead)?;
    let entries = state.store.list_audit(&a.principal.scope(), &q.filter()?, p.before, p.limit.unwrap_or(100).clamp(1, 1000)).await?;
    ok(json!(entries))
}

pub async fn export(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<AuditQuery>) -> ApiResult {
    a.require(Permission::AuditRead)?;
    let entries = crate::pages::audit_export_entries(&state, &a.principal, &q).await?;
    Ok(crate::pages::csv_download("audit-log.csv", crate::csv_io::export_audit(&entries)))
}

pub async fn verify(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::AuditRead)?;
    // The chain spans every tenant; only operator roles may walk it.
    if a.principal.tenant_id().is_some() {
        return Err(AppError::Forbidden);
    }
    let report = state.store.verify_audit().await?;
    ok(
        json!({ "entries": report.entries, "head": report.head, "intact": report.first_bad.is_none(), "first_bad": report.first_bad.map(|(seq, why)| json!({"seq": seq, "reason": why})) }),
    )
}

//! `/api/v1/segments` and `/api/v1/resolve`: network segments (operators define them)
//! and the tenant lookup every component uses.
//!
//! Requirements: see `pages::segments` (F03, F06, F07, F10, F11, F14, F18, F41).

use super::{ApiResult, body, ok};
use crate::auth::ApiAuth;
use crate::pages::{Lookup, resolve_lookup, tenant_directory};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Permission, Segment, SegmentName};
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::json;

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::TenantsRead)?;
    ok(json!(state.store.list_segments().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentInput {
    label: String,
    zone: String,
    #[serde(default)]
    notes: String,
}

pub async fn put(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(name): Path<String>, bytes: Bytes) -> ApiResult {
    a.require_operator(Permission::TenantsWrite)?;
    let input: SegmentInput = body(&bytes)?;
    let segment = Segment::check(&name, &input.label, &input.zone, &input.notes)?;
    ok(json!(state.store.put_segment(&a.principal.scope(), &a.principal.actor(), segment).await?))
}

pub async fn delete(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(name): Path<String>) -> ApiResult {
    a.require_operator(Permission::TenantsWrite)?;
    let name: SegmentName = name.parse().map_err(|_| AppError::NotFound)?;
    state.store.delete_segment(&a.principal.scope(), &a.principal.actor(), &name).await?;
    ok(json!({"deleted": name}))
}

pub async fn lookup(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<Lookup>) -> ApiResult {
    a.require_operator(Permission::TenantsRead)?;
    let (tenants, dir) = tenant_directory(&state, &a.principal.scope()).await?;
    let Some((asked, found)) = resolve_lookup(&dir, &q)? else {
        return Err(mamori_core::Problem::new(
            "query",
            "missing_query",
            "address（と segment）、mail、host のいずれかを指定してください",
            "give one of address (with segment), mail or host",
        )
        .into());
    };
    let tenant = found.and_then(|id| tenants.iter().find(|t| t.id == id));
    ok(json!({"asked": asked, "tenant": tenant.map(|t| json!({"id": t.id, "code": t.code, "name": t.name, "separation": t.separation}))}))
}

//! `/api/v1/holds`: legal holds (証拠保全) on a tenant's events. Anyone who may read
//! events sees the holds in their scope; operators with `events:write` place and
//! release them (a legal or investigative decision of the prefecture's SOC, not of a
//! municipality). Placing and releasing are audited (`events.hold`,
//! `events.release`).

use super::{ApiResult, body, created, ok};
use crate::auth::ApiAuth;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Permission, Problem, Problems, TenantId};
use mamori_store::NewEventHold;
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

/// What `POST /api/v1/holds` takes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// The tenant whose events are kept.
    pub tenant_id: TenantId,
    /// From: RFC 3339, `YYYY-MM-DD HH:MM` (JST) or `YYYY-MM-DD` (its start).
    pub from: String,
    /// To: the same; a date alone is the end of that day.
    pub to: String,
    /// Why (1-500 characters).
    pub reason: String,
    /// What it is for: a case number, a letter's reference (up to 200).
    #[serde(default)]
    pub reference: String,
}

/// Reads a request into a hold to place; every problem at once.
pub fn hold_from(tenant: TenantId, from: &str, to: &str, reason: &str, reference: &str) -> Result<NewEventHold, AppError> {
    let mut p = Problems::default();
    let from_ms = mamori_core::time::parse_time(from);
    let to_ms = mamori_core::time::parse_range_end(to);
    if from_ms.is_none() {
        p.push(Problem::new(
            "from",
            "invalid_time",
            "開始日時を読めません（YYYY-MM-DD または YYYY-MM-DD HH:MM）",
            "cannot read from (YYYY-MM-DD or YYYY-MM-DD HH:MM)",
        ));
    }
    if to_ms.is_none() {
        p.push(Problem::new(
            "to",
            "invalid_time",
            "終了日時を読めません（YYYY-MM-DD または YYYY-MM-DD HH:MM）",
            "cannot read to (YYYY-MM-DD or YYYY-MM-DD HH:MM)",
        ));
    }
    if !p.is_empty() {
        return Err(AppError::Invalid(p));
    }
    Ok(NewEventHold {
        tenant,
        from_ms: from_ms.unwrap_or_default(),
        to_ms: to_ms.unwrap_or_default(),
        reason: reason.to_string(),
        reference: reference.to_string(),
    })
}

/// GET /api/v1/holds
pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::EventsRead)?;
    let all = matches!(q.get("all").map(String::as_str), Some("true" | "1"));
    let scope = a.principal.scope();
    state.store.note_scope(&scope, "event_holds").await?;
    ok(json!(state.store.list_event_holds(&scope, all).await?))
}

/// POST /api/v1/holds
pub async fn place(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require_operator(Permission::EventsWrite)?;
    let r: HoldRequest = body(&bytes)?;
    let hold = hold_from(r.tenant_id, &r.from, &r.to, &r.reason, &r.reference)?;
    created(json!(state.store.place_event_hold(&a.principal.scope(), &a.principal.actor(), hold).await?))
}

/// POST /api/v1/holds/{id}/release
pub async fn release(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require_operator(Permission::EventsWrite)?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    ok(json!(state.store.release_event_hold(&a.principal.scope(), &a.principal.actor(), id).await?))
}

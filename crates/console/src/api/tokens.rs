//! `/api/v1/tokens`: the caller's own API tokens.

use super::{ApiResult, body, created, ok};
use crate::auth::ApiAuth;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::TokenScope;
use mamori_web::Path;
use serde::Deserialize;
use serde_json::json;

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth) -> ApiResult {
    ok(json!(state.store.list_tokens(&a.principal.own_account()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    scopes: Vec<TokenScope>,
    #[serde(default = "ninety")]
    days: i64,
}

fn ninety() -> i64 {
    90
}

pub async fn create(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    let b: NewTokenBody = body(&bytes)?;
    let (token, secret) = crate::pages::issue_token(&state, &a, &b.name, b.scopes, b.days).await?;
    created(json!({ "token": token, "secret": secret }))
}

pub async fn revoke(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    let id = id.parse().map_err(|_| AppError::NotFound)?;
    state.store.revoke_token(&a.principal.scope(), &a.principal.actor(), a.user.id, id).await?;
    ok(json!({"revoked": id}))
}

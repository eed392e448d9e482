//! `/api/v1/events`
//!
//! Requirements: F18 log collection (submission) and analysis (search).

use super::{ApiResult, created, ok};
use crate::auth::ApiAuth;
use crate::pages::SearchParams;
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Event, Permission, Problem, Problems};
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most events accepted in one POST.
pub const MAX_BATCH: usize = 1000;

pub async fn search(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(p): Query<SearchParams>) -> ApiResult {
    a.require(Permission::EventsRead)?;
    let scope = a.principal.scope();
    let q = p.to_query()?;
    state.store.note_scope(&scope, "events").await?;
    let page = state.bus.events().query(&scope, &q).await?;
    ok(json!({ "events": page.events.iter().map(|e| &e.doc).collect::<Vec<_>>(), "next_cursor": page.next_cursor }))
}

#[derive(Deserialize)]
pub struct BucketsQuery {
    buckets: Option<usize>,
}

pub async fn histogram(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(p): Query<SearchParams>, Query(h): Query<BucketsQuery>) -> ApiResult {
    a.require(Permission::EventsRead)?;
    let scope = a.principal.scope();
    let q = p.to_query()?;
    state.store.note_scope(&scope, "events").await?;
    ok(json!(state.bus.events().histogram(&scope, &q, h.buckets.unwrap_or(60)).await?))
}

pub async fn get(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::EventsRead)?;
    let scope = a.principal.scope();
    let id = id.parse().map_err(|_| AppError::NotFound)?;
    state.store.note_scope(&scope, "events").await?;
    let e = state.bus.events().get(&scope, id).await?.ok_or(AppError::NotFound)?;
    ok(e.doc)
}

pub async fn submit(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::EventsWrite)?;
    let doc: Value = super::body(&bytes)?;
    let docs = match doc {
        Value::Array(v) => v,
        v @ Value::Object(_) => vec![v],
        _ => return Err(Problem::new("body", "not_events", "イベントのオブジェクトか配列を送ってください", "send an event object or an array of them").into()),
    };
    if docs.len() > MAX_BATCH {
        return Err(Problem::new(
            "body",
            "too_many",
            format!("一度に送れるイベントは{MAX_BATCH}件までです"),
            format!("at most {MAX_BATCH} events per request"),
        )
        .into());
    }
    let scope = a.principal.scope();
    let known: Vec<_> = state.store.list_tenants(&scope).await?.into_iter().map(|t| t.id).collect();
    let default_tenant = scope.tenant();
    let mut events: Vec<Event> = Vec::with_capacity(docs.len());
    let mut problems = Problems::default();
    for (i, d) in docs.iter().enumerate() {
        match Event::from_ocsf(d, default_tenant, |t| known.contains(&t)) {
            Ok(e) => events.push(e),
            Err(ps) => ps.0.into_iter().for_each(|p| problems.push(p.within(&format!("[{i}]")))),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    let n = state.bus.publish(events).await.map_err(|e| match e {
        mamori_bus::BusError::Store(s) => AppError::from(s),
        mamori_bus::BusError::Log(l) => AppError::Internal(l.to_string()),
        mamori_bus::BusError::Cursor(c) => AppError::Internal(c),
        mamori_bus::BusError::Transport(t) => AppError::Unavailable(t),
    })?;
    created(json!({ "accepted": n, "ids": ids }))
}

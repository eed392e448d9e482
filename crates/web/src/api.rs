//! What every component's REST endpoints share: the route documentation the OpenAPI
//! document is generated from, and the JSON answers.
//!
//! Errors are `{"error", "message", "message_ja", "problems": [{field, code, ja, en}]}`
//! ([`crate::AppError::json`]).

use crate::AppError;
use axum::Json;
use mamori_core::Permission;
use serde_json::Value;

/// One documented endpoint.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    /// HTTP method.
    pub method: &'static str,
    /// Path with `{param}`s.
    pub path: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Summary (English).
    pub summary: &'static str,
    /// Permission needed, if any beyond being logged in.
    pub permission: Option<Permission>,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Request body schema name (in `components.schemas`), if any.
    pub body: Option<&'static str>,
    /// Whether the endpoint changes something.
    pub writes: bool,
}

/// Documents an endpoint (a `const` so route tables are static).
pub const fn route(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    permission: Option<Permission>,
    query: &'static [&'static str],
    body: Option<&'static str>,
) -> RouteDoc {
    let writes = !matches!(method.as_bytes(), b"GET");
    RouteDoc { method, path, tag, summary, permission, query, body, writes }
}

/// The JSON result of an API handler.
pub type ApiResult = Result<axum::response::Response, AppError>;

/// Returns 200 with `v`.
pub fn ok(v: Value) -> ApiResult {
    Ok(axum::response::IntoResponse::into_response(Json(v)))
}

/// Returns 201 with `v`.
pub fn created(v: Value) -> ApiResult {
    Ok(axum::response::IntoResponse::into_response((axum::http::StatusCode::CREATED, Json(v))))
}

/// Reads a JSON body, turning syntax and type errors into clear problems.
pub fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| mamori_core::Problem::new("body", "invalid_json", format!("JSON を読めません: {e}"), format!("cannot read the JSON body: {e}")).into())
}

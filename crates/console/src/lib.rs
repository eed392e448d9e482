//! The web console (Japanese first, English available) and the REST API of Mamori.
//!
//! - Pages ([`pages`]) are rendered on the server with maud: no JavaScript build step,
//!   charts as inline SVG, a strict Content-Security-Policy (no inline script; one
//!   same-origin script refreshes live fragments, and pages work without it).
//! - The REST API ([`api`]) under `/api/v1` does everything the console does; its
//!   OpenAPI 3 document is served at `/api/openapi.json` and built from the same route
//!   table ([`api::ROUTES`]) the router is built from.
//! - Authentication ([`auth`]): Argon2id passwords, TOTP (RFC 6238, mandatory for
//!   operator roles), lockout, sessions in secure cookies with CSRF tokens, API tokens
//!   with scopes and expiry.
//! - Every handler derives a [`mamori_store::Scope`] from the principal and passes it to
//!   the store, which enforces tenant isolation.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
mod csv_io;
mod metrics;
pub mod pages;
mod security;
#[doc(hidden)]
pub mod testing;

pub use csv_io::{export_audit as export_audit_csv, export_tenants as export_tenants_csv, import_tenants as import_tenants_csv};
pub use mamori_web::{AppError, AuthSettings, Lang};
pub use metrics::Metrics;

use axum::Router;
use mamori_bus::Bus;
use mamori_runtime::Registry;
use mamori_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Console settings (`[console]` of mamori.toml).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Mark cookies `Secure` and use the `__Host-` cookie prefix. On whenever the
    /// console is served over TLS; off only for plain HTTP on loopback.
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes (CSV imports included).
    pub max_body_bytes: usize,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    pub argon2_iterations: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { secure_cookies: false, max_body_bytes: 4 * 1024 * 1024, argon2_memory_kib: 19_456, argon2_iterations: 2 }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Config store.
    pub store: Store,
    /// Event bus (and through it the event store).
    pub bus: Bus,
    /// Built-in components (for policy validators).
    pub registry: Registry,
    /// Console settings.
    pub config: Arc<ConsoleConfig>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Version string shown in the console.
    pub version: &'static str,
    /// Failed logins per client address.
    pub throttle: Arc<auth::LoginThrottle>,
    /// This node: its components' health and its metrics registry.
    pub node: mamori_runtime::Node,
    /// Secrets and blobs.
    pub vault: mamori_vault::Vault,
}

impl AppState {
    /// Returns the security settings in force.
    pub async fn auth_settings(&self) -> AuthSettings {
        AuthSettings::load(&self.store).await
    }

    /// Returns the password hasher with the configured cost.
    pub fn hasher(&self) -> auth::PasswordHasher {
        auth::PasswordHasher::new(self.config.argon2_memory_kib, self.config.argon2_iterations)
    }

    /// Hashes a password off the async workers, a few at a time (each Argon2id run
    /// takes ~19 MiB; unbounded parallel logins would exhaust memory).
    pub async fn hash_password(&self, password: String) -> Result<String, AppError> {
        let hasher = self.hasher();
        let _permit = ARGON2_PERMITS.acquire().await.map_err(|e| AppError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || hasher.hash(&password)).await.map_err(|e| AppError::Internal(e.to_string()))?.map_err(AppError::Internal)
    }

    /// Verifies a password the same way (bounded, off the async workers).
    pub async fn verify_password(&self, password: String, phc: String) -> bool {
        let hasher = self.hasher();
        let Ok(_permit) = ARGON2_PERMITS.acquire().await else { return false };
        tokio::task::spawn_blocking(move || hasher.verify(&password, &phc)).await.unwrap_or(false)
    }

    /// Spends the time of one verification (unknown login names answer as slowly).
    pub async fn waste_password_time(&self) {
        let hasher = self.hasher();
        if let Ok(_permit) = ARGON2_PERMITS.acquire().await {
            let _ = tokio::task::spawn_blocking(move || hasher.waste()).await;
        }
    }
}

/// Argon2id runs at once in this process.
static ARGON2_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The console's site: its own pages and API and the web part of every registered
/// component, assembled. The console depends on no component crate: each part brings
/// its routes, pages, navigation entries and OpenAPI schemas.
pub struct Assembly {
    /// Every component's web part.
    pub parts: Vec<mamori_web::WebPart>,
    /// Every API endpoint: the console's and the parts'.
    pub routes: Vec<mamori_web::RouteDoc>,
    /// Every page (GET): the console's and the parts'.
    pub pages: Vec<&'static str>,
}

impl Assembly {
    /// Collects the web parts of the state's registry.
    pub fn of(state: &AppState) -> Assembly {
        let cx = mamori_web::WebCx::new(state.store.clone(), state.bus.clone(), state.vault.clone());
        let parts = state.registry.web_parts(&cx);
        let routes = api::ROUTES.iter().chain(parts.iter().flat_map(|p| p.api.iter())).copied().collect();
        let pages = pages::PAGES.iter().chain(parts.iter().flat_map(|p| p.pages.iter())).copied().collect();
        Assembly { parts, routes, pages }
    }

    /// The navigation of the console and every part.
    fn nav(&self) -> Vec<mamori_web::NavEntry> {
        pages::NAV.iter().chain(self.parts.iter().flat_map(|p| p.nav.iter())).copied().collect()
    }
}

/// Builds the whole HTTP application: pages, API (the console's and every component's
/// web part), health and metrics.
pub fn router(state: AppState) -> Router {
    let assembly = Assembly::of(&state);
    let attention = assembly.parts.iter().filter_map(|p| p.attention.clone()).collect();
    let site = mamori_web::Site::new(state.store.clone(), state.config.secure_cookies, assembly.nav(), attention);
    let mut app = Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .route("/healthz", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics::render))
        .route("/static/app.css", axum::routing::get(security::stylesheet))
        .route("/static/live.js", axum::routing::get(security::live_script))
        .with_state(state.clone());
    let mut schemas = serde_json::Map::new();
    for part in assembly.parts {
        schemas.extend(part.schemas);
        app = app.merge(part.router);
    }
    // The document never changes while the process runs: encoded once, served as bytes.
    let openapi = axum::body::Bytes::from(api::openapi::document(state.version, &assembly.routes, schemas).to_string());
    let app = app.route(
        "/api/openapi.json",
        axum::routing::get(move || std::future::ready(([(axum::http::header::CONTENT_TYPE, "application/json")], openapi.clone()))),
    );
    security::layers(app.fallback(security::not_found), &state).layer(axum::Extension(site))
}

/// Builds the HTTP application of a node without the console: `/healthz` and
/// `/metrics` only, behind the same security layers.
pub fn node_router(state: AppState) -> Router {
    let app = Router::new()
        .route("/healthz", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics::render))
        .with_state(state.clone())
        .fallback(security::not_found);
    let site = mamori_web::Site::new(state.store.clone(), state.config.secure_cookies, Vec::new(), Vec::new());
    security::layers(app, &state).layer(axum::Extension(site))
}

/// Serves `/healthz`: 200 while the config store answers and every component of this
/// node is ready (active, or a singleton standing by), else 503; the body lists each
/// component and its state either way. Nothing in it is secret or tenant data; the
/// reasons of failures are shown only to clients on this host.
pub async fn health(axum::extract::State(state): axum::extract::State<AppState>, parts: axum::http::request::Parts) -> axum::response::Response {
    use axum::response::IntoResponse;
    let schema = state.store.db().schema_version().await.ok().filter(|v| *v > 0);
    let mut doc = state.node.health_document();
    // Why a component failed may name internal hosts or files: only for this host's
    // own checks (the operators see it on /nodes).
    let local = parts.extensions.get::<mamori_http::ClientAddr>().is_some_and(|c| c.is_local());
    if !local && let Some(list) = doc.get_mut("components").and_then(serde_json::Value::as_array_mut) {
        for c in list.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            c.remove("reason");
        }
    }
    let ready = schema.is_some() && state.node.health.ready();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "status".into(),
            serde_json::json!(if ready {
                "ok"
            } else if schema.is_none() {
                "unavailable"
            } else {
                "degraded"
            }),
        );
        obj.insert("schema".into(), serde_json::json!(schema));
        obj.insert("version".into(), serde_json::json!(state.version));
    }
    let status = if ready { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(doc)).into_response()
}

//! The web console (Japanese first, English available) and the REST API of Mamori.
//!
//! - Pages ([`pages`]) are rendered on the server with maud: no JavaScript build step,
//!   charts as inline SVG, a strict Content-Security-Policy (no inline script at all).
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
mod error;
mod i18n;
mod metrics;
pub mod monitoring;
pub mod pages;
mod security;
mod svg;

pub use csv_io::{export_audit as export_audit_csv, export_tenants as export_tenants_csv, import_tenants as import_tenants_csv};
pub use error::AppError;
pub use i18n::Lang;
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

/// Security settings that operators change in the console (stored as settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Failed logins in a row before the account is locked.
    pub lockout_threshold: i64,
    /// How long a lockout lasts, in minutes.
    pub lockout_minutes: i64,
    /// A session ends after this many idle minutes.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after login, active or not.
    pub session_max_hours: i64,
    /// Shortest password accepted.
    pub password_min_length: usize,
    /// Tenant admins must use TOTP (operator roles always must).
    pub totp_tenant_admins: bool,
    /// Tenant users must use TOTP.
    pub totp_tenant_users: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            lockout_threshold: 5,
            lockout_minutes: 15,
            session_idle_minutes: 30,
            session_max_hours: 12,
            password_min_length: 12,
            totp_tenant_admins: true,
            totp_tenant_users: false,
        }
    }
}

impl AuthSettings {
    /// Returns whether accounts of `role` must use a TOTP second factor: operator roles
    /// always, tenant roles as these settings say.
    pub fn requires_totp(&self, role: mamori_core::Role) -> bool {
        match role {
            mamori_core::Role::TenantAdmin => self.totp_tenant_admins,
            mamori_core::Role::TenantUser => self.totp_tenant_users,
            _ => true,
        }
    }
}

impl AuthSettings {
    /// Checks ranges; returns every problem.
    pub fn check(&self) -> Result<(), mamori_core::Problems> {
        use mamori_core::Problem;
        let mut p = mamori_core::Problems::default();
        if !(3..=20).contains(&self.lockout_threshold) {
            p.push(Problem::new("lockout_threshold", "range", "ロックまでの失敗回数は3〜20回です", "lockout threshold must be 3-20"));
        }
        if !(1..=1440).contains(&self.lockout_minutes) {
            p.push(Problem::new("lockout_minutes", "range", "ロック時間は1〜1440分です", "lockout must be 1-1440 minutes"));
        }
        if !(5..=480).contains(&self.session_idle_minutes) {
            p.push(Problem::new("session_idle_minutes", "range", "無操作タイムアウトは5〜480分です", "idle timeout must be 5-480 minutes"));
        }
        if !(1..=24).contains(&self.session_max_hours) {
            p.push(Problem::new("session_max_hours", "range", "セッションの最長時間は1〜24時間です", "session maximum must be 1-24 hours"));
        }
        if !(10..=128).contains(&self.password_min_length) {
            p.push(Problem::new("password_min_length", "range", "パスワードの最小文字数は10〜128です", "minimum password length must be 10-128"));
        }
        p.into_result(())
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
        match self.store.setting("auth").await {
            Ok(Some(v)) => serde_json::from_value(v).unwrap_or_default(),
            _ => AuthSettings::default(),
        }
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

/// Builds the whole HTTP application: pages, API, health and metrics.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .route("/healthz", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics::render))
        .route("/static/app.css", axum::routing::get(security::stylesheet))
        .fallback(security::not_found);
    security::layers(app, state.clone()).with_state(state)
}

/// Builds the HTTP application of a node without the console: `/healthz` and
/// `/metrics` only, behind the same security layers.
pub fn node_router(state: AppState) -> Router {
    let app = Router::new().route("/healthz", axum::routing::get(health)).route("/metrics", axum::routing::get(metrics::render)).fallback(security::not_found);
    security::layers(app, state.clone()).with_state(state)
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

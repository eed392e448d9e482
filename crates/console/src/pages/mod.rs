//! Console pages, server-rendered with maud. Japanese by default, English with
//! `?lang=en`. Every page that shows tenant data derives its scope from the logged-in
//! principal; forms carry the session's CSRF token.

mod approvals;
mod audit;
mod dashboard;
mod events;
mod holds;
pub mod login;
mod nodes;
mod secrets;
mod segments;
mod settings;
mod tenants;
pub(crate) mod users;

use crate::{AppState, Lang};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mamori_core::Permission;
use mamori_web::NavEntry;

pub use mamori_web::layout::{Pairs, bare, error_page, field, layout, page_result, problems, see_other, when};

pub use audit::{AuditQuery, export_entries as audit_export_entries};
pub use events::SearchParams;
pub use segments::{Lookup, directory as tenant_directory, resolve as resolve_lookup};
pub use settings::{issue_token, tabs as settings_tabs};
pub use tenants::csv_response as csv_download;

/// Returns the tenant CSV as a download.
pub fn tenants_csv_response(body: String) -> Response {
    tenants::csv_response("tenants.csv", body)
}

/// Every page path (GET) of the console itself, for the isolation test and the docs
/// (components list theirs in their web parts). `{id}` stands
/// for an id of the kind the page shows.
pub const PAGES: &[&str] = &[
    "/",
    "/tenants",
    "/tenants/new",
    "/tenants/{id}",
    "/tenants/import",
    "/tenants/export.csv",
    "/tenants/segments",
    "/users",
    "/users/new",
    "/users/{id}",
    "/audit",
    "/audit/export.csv",
    "/events",
    "/events/holds",
    "/events/{id}",
    "/settings",
    "/settings/policies",
    "/approvals",
    "/settings/tokens",
    "/settings/secrets",
    "/nodes",
];

/// The page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/totp", get(login::totp_form).post(login::totp_submit))
        .route("/login/enroll", get(login::enroll_form).post(login::enroll_submit))
        .route("/login/password", get(login::password_form).post(login::password_submit))
        .route("/logout", post(login::logout))
        .route("/lang/{code}", get(set_lang))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route("/tenants/new", get(tenants::new_form))
        .route("/tenants/import", get(tenants::import_form).post(tenants::import))
        .route("/tenants/export.csv", get(tenants::export))
        .route("/tenants/segments", get(segments::page).post(segments::save))
        .route("/tenants/segments/{name}/delete", post(segments::delete))
        .route("/tenants/{id}", get(tenants::show).post(tenants::update))
        .route("/tenants/{id}/contacts", post(tenants::update_contacts))
        .route("/tenants/{id}/delete", post(tenants::delete))
        .route("/users", get(users::list).post(users::create))
        .route("/users/new", get(users::new_form))
        .route("/users/{id}", get(users::show).post(users::update))
        .route("/users/{id}/action", post(users::action))
        .route("/audit", get(audit::page))
        .route("/audit/export.csv", get(audit::export))
        .route("/events", get(events::page))
        .route("/events/holds", get(holds::page).post(holds::place))
        .route("/events/holds/{id}/release", post(holds::release))
        .route("/events/{id}", get(events::show))
        .route("/settings", get(settings::page).post(settings::save_account))
        .route("/settings/security", post(settings::save_security))
        .route("/settings/policies", get(settings::policies).post(settings::save_policy))
        .route("/settings/policies/minimums", post(settings::save_minimums))
        .route("/settings/policies/rollback", post(settings::rollback_policy))
        .route("/settings/policies/cancel", post(settings::cancel_policy))
        .route("/settings/policies/writers", post(settings::save_policy_access))
        .route("/settings/policies/approval", post(settings::save_policy_access))
        .route("/approvals", get(approvals::list).post(approvals::decide))
        .route("/settings/tokens", get(settings::tokens).post(settings::create_token))
        .route("/settings/secrets", get(secrets::page).post(secrets::save))
        .route("/settings/secrets/delete", post(secrets::delete))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/nodes", get(nodes::page))
}

async fn set_lang(mamori_web::Path(code): mamori_web::Path<String>, headers: axum::http::HeaderMap) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    // Go back where the person was, but only within this site.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    let mut r = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("mamori_lang={}; Path=/; SameSite=Lax; Max-Age=31536000", lang.code())) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The console's own navigation entries (components bring theirs in their web parts).
pub const NAV: &[NavEntry] = &[
    NavEntry::new("/", "ダッシュボード", "Dashboard", 0),
    NavEntry::new("/events", "イベント検索", "Events", 30).needs(Permission::EventsRead),
    NavEntry::new("/tenants", "団体", "Tenants", 40).needs(Permission::TenantsRead),
    NavEntry::new("/users", "利用者", "Users", 50).needs(Permission::UsersRead),
    NavEntry::new("/audit", "監査ログ", "Audit log", 60).needs(Permission::AuditRead),
    NavEntry::new("/approvals", "承認待ち", "Approvals", 70).needs(Permission::PoliciesApprove),
    NavEntry::new("/nodes", "ノード", "Nodes", 90).needs(Permission::MonitorsRead).operators(),
    NavEntry::new("/settings", "設定", "Settings", 100),
];

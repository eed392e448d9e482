//! Console pages, server-rendered with maud. Japanese by default, English with
//! `?lang=en`. Every page that shows tenant data derives its scope from the logged-in
//! principal; forms carry the session's CSRF token.

mod approvals;
mod audit;
mod dashboard;
mod events;
pub mod login;
mod monitors;
mod nodes;
mod secrets;
mod segments;
mod settings;
mod tenants;
pub(crate) mod users;

use crate::auth::Authed;
use crate::{AppError, AppState, Lang};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mamori_core::Permission;
use maud::{DOCTYPE, Markup, html};

pub use audit::{AuditQuery, export_entries as audit_export_entries};
pub use events::SearchParams;
pub use segments::{Lookup, directory as tenant_directory, resolve as resolve_lookup};
pub use settings::{issue_token, tabs as settings_tabs};
pub use tenants::csv_response as csv_download;

/// Returns the tenant CSV as a download.
pub fn tenants_csv_response(body: String) -> Response {
    tenants::csv_response("tenants.csv", body)
}

/// Every console page path (GET), for the isolation test and the docs. `{id}` stands
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
    "/events/{id}",
    "/settings",
    "/settings/policies",
    "/approvals",
    "/settings/tokens",
    "/settings/secrets",
    "/monitors",
    "/monitors/new",
    "/monitors/new-custom",
    "/monitors/probes",
    "/monitors/{id}",
    "/faults",
    "/faults/{id}",
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
        .route("/monitors", get(monitors::list))
        .route("/monitors/new", get(monitors::new_form).post(monitors::create_set))
        .route("/monitors/new-custom", get(monitors::custom_new).post(monitors::custom_create))
        .route("/monitors/probes", get(monitors::probes).post(monitors::create_probe))
        .route("/monitors/probes/{id}/delete", post(monitors::delete_probe))
        .route("/monitors/{id}", get(monitors::show).post(monitors::update))
        .route("/monitors/{id}/toggle", post(monitors::toggle))
        .route("/monitors/{id}/delete", post(monitors::delete))
        .route("/faults", get(monitors::faults))
        .route("/faults/{id}", get(monitors::fault))
        .route("/faults/{id}/comment", post(monitors::comment))
        .route("/nodes", get(nodes::page))
}

async fn set_lang(axum::extract::Path(code): axum::extract::Path<String>, headers: axum::http::HeaderMap) -> Response {
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

/// A navigation entry.
struct Nav {
    path: &'static str,
    ja: &'static str,
    en: &'static str,
    needs: Option<Permission>,
    /// Shown to operator roles only (platform pages).
    operators: bool,
}

const NAV: &[Nav] = &[
    Nav { path: "/", ja: "ダッシュボード", en: "Dashboard", needs: None, operators: false },
    Nav { path: "/monitors", ja: "サービス監視", en: "Monitoring", needs: Some(Permission::MonitorsRead), operators: false },
    Nav { path: "/faults", ja: "障害記録", en: "Faults", needs: Some(Permission::MonitorsRead), operators: false },
    Nav { path: "/events", ja: "イベント検索", en: "Events", needs: Some(Permission::EventsRead), operators: false },
    Nav { path: "/tenants", ja: "団体", en: "Tenants", needs: Some(Permission::TenantsRead), operators: false },
    Nav { path: "/users", ja: "利用者", en: "Users", needs: Some(Permission::UsersRead), operators: false },
    Nav { path: "/audit", ja: "監査ログ", en: "Audit log", needs: Some(Permission::AuditRead), operators: false },
    Nav { path: "/approvals", ja: "承認待ち", en: "Approvals", needs: Some(Permission::PoliciesApprove), operators: false },
    Nav { path: "/nodes", ja: "ノード", en: "Nodes", needs: Some(Permission::MonitorsRead), operators: true },
    Nav { path: "/settings", ja: "設定", en: "Settings", needs: None, operators: false },
];

/// The `<head>` of every page.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " | Mamori" }
            link rel="stylesheet" href="/static/app.css";
            link rel="icon" href="data:,";
        }
    }
}

/// Renders a full page for a logged-in person.
pub fn layout(a: &Authed, title: &str, active: &str, body: Markup) -> Response {
    let l = a.lang;
    let scope_label = match a.principal.role().reach() {
        mamori_core::Reach::AllTenants => l.t("全団体", "All tenants"),
        mamori_core::Reach::OwnTenant => l.t("自団体のみ", "Own tenant only"),
        mamori_core::Reach::NamedTenants => l.t("担当団体のみ", "Named tenants only"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(l.code()) {
            (head(title))
            body {
                header.top {
                    a.brand href="/" { "守 Mamori" }
                    nav {
                        @for n in NAV {
                            @if n.needs.is_none_or(|p| a.principal.can(p)) && (!n.operators || a.principal.role().is_operator()) {
                                a href=(n.path) class=[(active == n.path).then_some("active")] { (l.t(n.ja, n.en)) }
                            }
                        }
                    }
                    div.who {
                        span.user { (a.user.display_name) " (" (l.t(a.principal.role().ja(), a.principal.role().en())) " / " (scope_label) ")" }
                        @if l == Lang::Ja { a href="/lang/en" { "English" } } @else { a href="/lang/ja" { "日本語" } }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(a.csrf());
                            button.link type="submit" { (l.t("ログアウト", "Log out")) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// Renders a page for someone not (fully) logged in.
pub fn bare(lang: Lang, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body.bare {
                main.narrow {
                    p.brand { "守 Mamori" }
                    p.langs { @if lang == Lang::Ja { a href="/lang/en" { "English" } } @else { a href="/lang/ja" { "日本語" } } }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// Renders an error page.
pub fn error_page(lang: Lang, e: &AppError) -> Response {
    if let AppError::Internal(detail) = e {
        tracing::error!(error = %detail, "internal error");
    }
    let mut r = bare(
        lang,
        lang.t("エラー", "Error"),
        html! {
            p.error { (e.message(lang)) }
            p { a href="/" { (lang.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
        },
    );
    *r.status_mut() = e.status();
    r
}

/// Renders the problems of a form.
pub fn problems(lang: Lang, e: &AppError) -> Markup {
    html! {
        div.error role="alert" {
            @match e {
                AppError::Invalid(p) => ul { @for p in &p.0 { li { (p.message(lang.code())) } } },
                other => p { (other.message(lang)) },
            }
        }
    }
}

/// Turns a handler result into a page, rendering errors in the person's language.
pub fn page_result(lang: Lang, r: Result<Response, AppError>) -> Response {
    match r {
        Ok(r) => r,
        Err(AppError::Unauthorized) => Redirect::to("/login").into_response(),
        Err(e) => error_page(lang, &e),
    }
}

/// Returns "303 See Other" to `path` (after a successful POST).
pub fn see_other(path: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_string())]).into_response()
}

/// The fields of a posted form, in order (repeated names kept).
pub(crate) type Pairs = Vec<(String, String)>;

/// Returns the first value of form field `key`, or "" when absent.
pub(crate) fn field<'a>(pairs: &'a Pairs, key: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Formats Unix ms for people (JST).
pub fn when(ms: i64) -> String {
    mamori_core::time::format_jst(ms)
}

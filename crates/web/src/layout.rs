//! The frame of every page: head, navigation (the console's entries and every
//! component's), the person's name and role, language switch, logout; pages for people
//! not logged in; error pages; small helpers for forms and redirects.

use crate::{AppError, Authed, Lang};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use mamori_core::Permission;
use maud::{DOCTYPE, Markup, html};

/// A navigation entry, contributed by the console or a component.
#[derive(Clone, Copy, Debug)]
pub struct NavEntry {
    /// Where it leads.
    pub path: &'static str,
    /// Label in Japanese.
    pub ja: &'static str,
    /// Label in English.
    pub en: &'static str,
    /// Shown only to principals with this permission.
    pub needs: Option<Permission>,
    /// Shown to operator roles only (platform pages).
    pub operators: bool,
    /// Place in the bar: lower first (dashboard 0, settings 100).
    pub order: u16,
}

impl NavEntry {
    /// An entry for everyone logged in.
    pub const fn new(path: &'static str, ja: &'static str, en: &'static str, order: u16) -> Self {
        NavEntry { path, ja, en, needs: None, operators: false, order }
    }

    /// Shown only with permission `p`.
    pub const fn needs(self, p: Permission) -> Self {
        NavEntry { needs: Some(p), ..self }
    }

    /// Shown to operator roles only.
    pub const fn operators(self) -> Self {
        NavEntry { operators: true, ..self }
    }

    /// Returns whether the principal sees this entry.
    pub fn visible_to(&self, a: &Authed) -> bool {
        self.needs.is_none_or(|p| a.principal.can(p)) && (!self.operators || a.principal.role().is_operator())
    }
}

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

/// Renders a full page for a logged-in person; `active` is the navigation entry to
/// highlight.
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
                        @for n in a.site.nav().iter().filter(|n| n.visible_to(a)) {
                            a href=(n.path) class=[(active == n.path).then_some("active")] { (l.t(n.ja, n.en)) }
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
                // Live refresh of fragments marked `data-live` (crate::live).
                script src="/static/live.js" defer {}
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
pub type Pairs = Vec<(String, String)>;

/// Returns the first value of form field `key`, or "" when absent.
pub fn field<'a>(pairs: &'a Pairs, key: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Formats Unix ms for people (JST).
pub fn when(ms: i64) -> String {
    mamori_core::time::format_jst(ms)
}

//! Security layers around every response: headers (strict CSP, no framing, no
//! sniffing, no caching of pages), refusal of cross-site state-changing requests, a
//! request body limit with a clear message, and request metrics.

use crate::{AppError, AppState, Lang};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every response: nothing but our stylesheet, images
/// and the one same-origin script (live refresh, which streams from us alone); forms
/// post only to us; no one frames us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Wraps the router in the security layers.
pub fn layers(app: Router, state: &AppState) -> Router {
    let limit = state.config.max_body_bytes;
    app.layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(state.clone(), headers))
}

async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let path_is_api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    state.metrics.observe_request(res.status().as_u16(), started.elapsed().as_secs_f64(), path_is_api);
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null`
    // on our own form posts, which the cross-site guard below must then refuse.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.secure_cookies {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    res
}

/// Refuses oversized bodies up front, and state-changing requests that a browser made
/// from another site (a second line of defence beside CSRF tokens and SameSite).
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lang = Lang::from_headers(req.headers());
    let is_api = req.uri().path().starts_with("/api/");
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.config.max_body_bytes) {
        let mb = state.config.max_body_bytes / (1024 * 1024);
        let msg_ja = format!("送信されたデータが大きすぎます（上限 {mb} MiB）");
        let msg_en = format!("request body too large (limit {mb} MiB)");
        return too_large(is_api, lang, &msg_ja, &msg_en);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !req.headers().contains_key(header::AUTHORIZATION)
        && !same_origin(req.headers())
    {
        return if is_api { AppError::Csrf.json() } else { crate::pages::error_page(lang, &AppError::Csrf) };
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(is_api, lang, "送信されたデータが大きすぎます", "request body too large");
    }
    res
}

/// Returns false when a browser tells us the request comes from another site:
/// `Sec-Fetch-Site` other than `same-origin`/`none`, an `Origin` naming another host,
/// or an opaque `Origin: null` that the browser does not vouch for as same-origin
/// (sandboxed frames and `data:` pages send `null`). Clients that send neither header
/// (scripts, curl) are judged by their CSRF token or bearer token alone.
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    match origin {
        None => true,
        Some("null") => site == Some("same-origin"),
        Some(o) => o.split_once("://").map(|(_, h)| h) == Some(host),
    }
}

fn too_large(is_api: bool, lang: Lang, ja: &str, en: &str) -> Response {
    if is_api {
        (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(serde_json::json!({"error": "too_large", "message": en, "message_ja": ja, "problems": []}))).into_response()
    } else {
        let mut r = crate::pages::error_page(lang, &AppError::Invalid(mamori_core::Problem::new("body", "too_large", ja, en).into()));
        *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        r
    }
}

/// Serves the stylesheet.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        Body::from(include_str!("../static/app.css")),
    )
        .into_response()
}

/// Serves the live-refresh script (`mamori_web::live`).
pub async fn live_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        Body::from(include_str!("../static/live.js")),
    )
        .into_response()
}

/// Answers unknown paths.
pub async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        AppError::NotFound.json()
    } else {
        crate::pages::error_page(Lang::from_headers(req.headers()), &AppError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn browsers_own_posts_pass_and_foreign_ones_do_not() {
        assert!(super::same_origin(&h(&[("host", "c.example"), ("origin", "https://c.example"), ("sec-fetch-site", "same-origin")])));
        assert!(super::same_origin(&h(&[("host", "c.example"), ("origin", "null"), ("sec-fetch-site", "same-origin")])), "no-referrer pages send Origin: null");
        assert!(super::same_origin(&h(&[("host", "c.example")])), "non-browser clients");
        assert!(!super::same_origin(&h(&[("host", "c.example"), ("origin", "null")])), "opaque origin without the browser's word");
        assert!(!super::same_origin(&h(&[("host", "c.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")])));
        assert!(!super::same_origin(&h(&[("host", "c.example"), ("origin", "https://evil.example")])));
        assert!(!super::same_origin(&h(&[("host", "c.example"), ("sec-fetch-site", "same-site")])), "a sibling subdomain is another site here");
    }
}

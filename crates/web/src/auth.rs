//! The extractors that turn a request into a [`Principal`], for every component's
//! pages and API.
//!
//! A console session is a random 256-bit token in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` with the `__Host-` prefix under TLS); the store keeps only its
//! SHA-256. Sessions pass through stages (password → TOTP or enrollment → password
//! change → full); only a full session reaches pages and the API. State-changing
//! requests with a session must carry its CSRF token (form field `csrf` or header
//! `X-CSRF-Token`). API tokens (`Authorization: Bearer mmr_…`) need no CSRF token.
//!
//! The extractors work with any router state: they find the [`Site`] the console put
//! in the request's extensions, so a component's routes need nothing of the console.

use crate::{AppError, AuthSettings, Lang, Site};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use mamori_store::{Principal, Session, SessionStage, User};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Returns `n` random bytes as URL-safe base64.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Returns the SHA-256 of a secret as hex (what the store keeps).
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Compares two secrets in constant time.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && a.ct_eq(b).into()
}

/// Returns the value of a cookie.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Returns the session cookie's name.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-mamori_session" } else { "mamori_session" }
}

/// Returns a `Set-Cookie` value for the session token (empty token: delete it).
pub fn session_cookie(secure: bool, token: &str, max_age_secs: i64) -> String {
    let name = session_cookie_name(secure);
    let age = if token.is_empty() { 0 } else { max_age_secs };
    format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{}", if secure { "; Secure" } else { "" })
}

/// Returns the page of a login stage.
pub fn stage_path(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Totp => "/login/totp",
        SessionStage::Enroll => "/login/enroll",
        SessionStage::ChangePassword => "/login/password",
        SessionStage::Full => "/",
    }
}

/// Returns the client address of a request as the HTTP server resolved it: the
/// connection's peer, or behind a trusted reverse proxy the address it reported.
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<mamori_http::ClientAddr>().map(|c| c.ip.to_string())
}

/// The client address of a request (see [`client_ip`]), as an extractor. A request
/// that did not come through `mamori_http` has none and is refused with 500: that is
/// a wiring fault, never a client's.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<mamori_http::ClientAddr>()
            .map(|c| ClientIp(c.ip))
            .ok_or_else(|| AppError::Internal("request without a client address (not served by mamori_http)".into()))
    }
}

/// An authenticated request.
#[derive(Clone, Debug)]
pub struct Authed {
    /// Who.
    pub principal: Principal,
    /// The account.
    pub user: User,
    /// The session, for console requests (None with an API token).
    pub session: Option<Session>,
    /// Language.
    pub lang: Lang,
    /// The site the request came to (its navigation).
    pub site: Site,
}

impl Authed {
    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        match &self.session {
            Some(s) if constant_eq(s.csrf.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(AppError::Csrf),
            None => Ok(()),
        }
    }

    /// Returns the session's CSRF token for forms.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map(|s| s.csrf.as_str()).unwrap_or("")
    }

    /// Fails unless the principal has `p`.
    pub fn require(&self, p: mamori_core::Permission) -> Result<(), AppError> {
        if self.principal.can(p) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// Fails unless the principal has `p` and an operator role (platform pages and
    /// settings that span every municipality).
    pub fn require_operator(&self, p: mamori_core::Permission) -> Result<(), AppError> {
        self.require(p)?;
        if self.principal.role().is_operator() { Ok(()) } else { Err(AppError::Forbidden) }
    }
}

/// Why authentication failed.
#[derive(Debug)]
pub enum AuthFailure {
    /// No (valid) credentials.
    Missing,
    /// A session exists but has not finished login (TOTP, enrollment, password change).
    Incomplete(SessionStage),
    /// The store failed.
    Internal(String),
}

/// Returns the site a request came to, as the console's layers put it there.
pub fn site_of(parts: &Parts) -> Result<Site, AuthFailure> {
    parts.extensions.get::<Site>().cloned().ok_or_else(|| AuthFailure::Internal("request without a site (not routed through the console)".into()))
}

/// Authenticates a request by API token or full session (the store makes the
/// [`Principal`] only from a live token or a fully logged-in session of a usable account).
pub async fn authenticate(parts: &Parts) -> Result<Authed, AuthFailure> {
    let site = site_of(parts)?;
    let store = site.store();
    let lang = Lang::from_headers(&parts.headers);
    let ip = client_ip(parts);
    let internal = |e: mamori_store::StoreError| AuthFailure::Internal(e.to_string());
    let now = mamori_core::time::now_ms();
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let token = h.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).ok_or(AuthFailure::Missing)?;
        if !token.starts_with("mmr_") || token.len() > 128 {
            return Err(AuthFailure::Missing);
        }
        let a = store.authenticate_token(&sha256_hex(token), now, ip).await.map_err(internal)?.ok_or(AuthFailure::Missing)?;
        return Ok(Authed { principal: a.principal, user: a.user, session: None, lang, site });
    }
    let Some(token) = cookie(&parts.headers, session_cookie_name(site.secure_cookies())).filter(|t| t.len() <= 128) else {
        return Err(AuthFailure::Missing);
    };
    let id_hash = sha256_hex(&token);
    let Some(a) = store.authenticate_session(&id_hash, now, ip).await.map_err(internal)? else {
        // A session that exists but has not finished login goes back to its stage.
        return match store.session(&id_hash, now).await.map_err(internal)? {
            Some(s) if s.stage != SessionStage::Full => Err(AuthFailure::Incomplete(s.stage)),
            _ => Err(AuthFailure::Missing),
        };
    };
    let Some(session) = a.session else { return Err(AuthFailure::Missing) };
    if now - session.last_seen_at > 60_000 {
        let settings = AuthSettings::load(store).await;
        let expires = (now + settings.session_idle_minutes * 60_000).min(session.created_at + settings.session_max_hours * 3_600_000);
        store.touch_session(&session.id_hash, now, expires).await.map_err(internal)?;
    }
    let lang = match cookie(&parts.headers, "mamori_lang") {
        Some(_) => lang,
        None => Lang::parse(&a.user.lang).unwrap_or_default(),
    };
    Ok(Authed { principal: a.principal, user: a.user, session: Some(session), lang, site })
}

/// Extractor for console pages: redirects to the login page when not logged in.
pub struct PageAuth(pub Authed);

impl<S: Send + Sync> FromRequestParts<S> for PageAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match authenticate(parts).await {
            Ok(a) if a.session.is_some() => Ok(PageAuth(a)),
            Ok(_) | Err(AuthFailure::Missing) => Err(Redirect::to("/login").into_response()),
            Err(AuthFailure::Incomplete(stage)) => Err(Redirect::to(stage_path(stage)).into_response()),
            Err(AuthFailure::Internal(e)) => Err(AppError::Internal(e).into_response()),
        }
    }
}

/// Extractor for the REST API: a bearer token, or a full session (then state-changing
/// methods need the `X-CSRF-Token` header).
pub struct ApiAuth(pub Authed);

impl<S: Send + Sync> FromRequestParts<S> for ApiAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match authenticate(parts).await {
            Ok(a) => {
                if a.session.is_some() && !matches!(parts.method, Method::GET | Method::HEAD) {
                    let header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
                    a.check_csrf(header).map_err(|e| e.json())?;
                }
                Ok(ApiAuth(a))
            }
            Err(AuthFailure::Internal(e)) => Err(AppError::Internal(e).json()),
            Err(_) => Err(AppError::Unauthorized.json()),
        }
    }
}

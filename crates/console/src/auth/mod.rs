//! Authentication: passwords, TOTP, the login throttle, API tokens; the extractors
//! that turn a request into a [`mamori_store::Principal`] live in `mamori_web::auth`
//! (re-exported here) so every component's routes use the same ones.

mod password;
mod throttle;
mod totp;

pub use mamori_web::auth::{
    ApiAuth, AuthFailure, Authed, ClientIp, PageAuth, authenticate, client_ip, constant_eq, cookie, random_token, session_cookie, session_cookie_name,
    sha256_hex,
};
pub use password::{PasswordHasher, check_password_policy};
pub use throttle::LoginThrottle;
pub use totp::{Totp, base32_decode, base32_encode};

use crate::{AppError, AppState};
use axum::http::HeaderMap;
use mamori_store::Session;

/// Makes a new API token (`mmr_…`) for `user_id`: returns what the store keeps and the
/// secret, which is shown once and kept nowhere.
pub fn mint_api_token(user_id: mamori_core::UserId, name: &str, scopes: Vec<mamori_core::TokenScope>, expires_at: i64) -> (mamori_store::NewToken, String) {
    let secret = format!("mmr_{}", random_token(32));
    let token =
        mamori_store::NewToken { user_id, name: name.to_string(), token_hash: sha256_hex(&secret), prefix: secret[..10].to_string(), scopes, expires_at };
    (token, secret)
}

/// Returns the session (in any stage) named by the request's cookie.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
    let Some(token) = cookie(headers, session_cookie_name(state.config.secure_cookies)) else { return Ok(None) };
    if token.len() > 128 {
        return Ok(None);
    }
    Ok(state.store.session(&sha256_hex(&token), mamori_core::time::now_ms()).await?)
}

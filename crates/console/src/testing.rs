//! A console on a fresh store, driven in-process through the router, with helpers to
//! log in and to read CSRF tokens off pages: for the console's tests and for tests of
//! the assembled site (every component's web part) in the binary's crate.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::{AppState, ConsoleConfig, Metrics};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use mamori_bus::Bus;
use mamori_core::{Actor, NewTenant, Role, Tenant, TenantId, TokenScope, UserId};
use mamori_runtime::Registry;
use mamori_store::CrossTenant;
use mamori_store::events::EventStore;
use mamori_store::{NewToken, NewUser, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct-horse-battery-staple";

pub struct Console {
    pub state: AppState,
    pub app: Router,
    /// The test's own cross-tenant grant, for setting things up behind the console.
    pub grant: CrossTenant,
    pub _dir: tempfile::TempDir,
}

/// A console with the runtime's own components (no component web parts).
pub async fn console(url: &str, dir: tempfile::TempDir) -> Console {
    console_with(url, dir, Registry::builtin()).await
}

/// A console whose site assembles the web parts of `registry`.
pub async fn console_with(url: &str, dir: tempfile::TempDir, registry: Registry) -> Console {
    let (store, authority) = Store::open(url).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    let events = EventStore::open(&dir.path().join("events")).unwrap();
    let vault = mamori_vault::Vault::for_tests(store.clone(), &grant, dir.path()).await;
    let state = AppState {
        vault,
        store,
        bus: Bus::new(events, 64).unwrap(),
        registry,
        config: Arc::new(ConsoleConfig { argon2_memory_kib: 64, argon2_iterations: 1, max_body_bytes: 256 * 1024, ..Default::default() }),
        metrics: Arc::new(Metrics::default()),
        version: "test",
        throttle: Arc::new(crate::auth::LoginThrottle::default()),
        node: mamori_runtime::Node::default(),
    };
    Console { app: crate::router(state.clone()), state, grant, _dir: dir }
}

/// Runs `f` against a console on every backend (SQLite, and PostgreSQL when configured).
pub async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Console) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    each_backend_with(Registry::builtin, f).await
}

/// Runs `f` against a console assembling `registry()`'s web parts on every backend.
pub async fn each_backend_with<R, F, Fut>(registry: R, f: F)
where
    R: Fn() -> Registry,
    F: Fn(Console) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let base = tempfile::tempdir().unwrap();
    for (name, url) in mamori_store::testing::backends(base.path()).await {
        eprintln!("backend: {name}");
        let dir = tempfile::tempdir().unwrap();
        let url = if name == "sqlite" { format!("sqlite://{}", dir.path().join("m.db").display()) } else { url };
        let c = console_with(&url, dir, registry()).await;
        let store = c.state.store.clone();
        f(c).await;
        store.close().await;
    }
}

pub fn tenant_input(five: &str, name: &str, range: &str) -> NewTenant {
    NewTenant {
        code: mamori_core::LocalGovCode::from_five(five).unwrap().to_string(),
        name: name.into(),
        kana: "テスト".into(),
        kind: "town".into(),
        network_ranges: vec![range.into()],
        ..Default::default()
    }
}

impl Console {
    pub async fn tenant(&self, five: &str, name: &str, range: &str) -> Tenant {
        self.state.store.create_tenant(&self.grant.scope(), &Actor::system(), tenant_input(five, name, range).check().unwrap()).await.unwrap()
    }

    pub async fn user(&self, username: &str, display: &str, role: Role, tenant: Option<TenantId>) -> UserId {
        self.account(username, display, role, tenant, Vec::new(), None).await
    }

    /// Creates a maintenance vendor's account for `tenants`, working until `expires_at`.
    pub async fn vendor(&self, username: &str, tenants: Vec<TenantId>, expires_at: i64) -> UserId {
        self.account(username, "保守 太郎", Role::MaintenanceVendor, None, tenants, Some(expires_at)).await
    }

    async fn account(&self, username: &str, display: &str, role: Role, tenant: Option<TenantId>, tenants: Vec<TenantId>, expires_at: Option<i64>) -> UserId {
        let hash = self.state.hasher().hash(PASSWORD).unwrap();
        self.state
            .store
            .create_user(
                &self.grant.scope(),
                &Actor::system(),
                NewUser {
                    username: username.into(),
                    display_name: display.into(),
                    email: String::new(),
                    role,
                    tenant_id: tenant,
                    tenants,
                    expires_at,
                    password_hash: hash,
                    must_change_password: false,
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Returns a bearer token of `user` with every scope its role allows.
    pub async fn token(&self, user: UserId, role: Role, name: &str) -> (mamori_core::TokenId, String) {
        let secret = format!("mmr_{}", crate::auth::random_token(32));
        let scopes = TokenScope::ALL.into_iter().filter(|s| role.allows(s.permission())).collect();
        let t = self
            .state
            .store
            .create_token_for(
                &self.grant,
                NewToken {
                    user_id: user,
                    name: name.into(),
                    token_hash: crate::auth::sha256_hex(&secret),
                    prefix: secret[..10].into(),
                    scopes,
                    expires_at: mamori_core::time::now_ms() + 86_400_000,
                },
                None,
            )
            .await
            .unwrap();
        (t.id, secret)
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = req;
        if req.extensions().get::<mamori_http::ClientAddr>().is_none() {
            req.extensions_mut().insert(client_addr([127, 0, 0, 1]));
        }
        let res: Response<Body> = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        if headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) {
            return (status, headers, first_event(res.into_body()).await);
        }
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).to_string())
    }

    /// Opens a live stream (server-sent events) for [`next_event`].
    pub async fn open(&self, path: &str, auth: &Auth) -> (StatusCode, Body) {
        let mut req = auth.apply(Request::get(path)).body(Body::empty()).unwrap();
        req.extensions_mut().insert(client_addr([127, 0, 0, 1]));
        let res = self.app.clone().oneshot(req).await.unwrap();
        (res.status(), res.into_body())
    }

    /// GET; a live stream (server-sent events) gives its first event.
    pub async fn get(&self, path: &str, auth: &Auth) -> (StatusCode, String) {
        let (s, _, b) = self.send(auth.apply(Request::get(path)).body(Body::empty()).unwrap()).await;
        (s, b)
    }

    pub async fn post_form(&self, path: &str, auth: &Auth, form: &[(&str, &str)]) -> (StatusCode, axum::http::HeaderMap, String) {
        let body = form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        self.send(auth.apply(Request::post(path)).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(body)).unwrap()).await
    }

    pub async fn api(&self, method: &str, path: &str, auth: &Auth, body: Option<serde_json::Value>) -> (StatusCode, String) {
        let mut b = auth.apply(Request::builder().method(method).uri(path));
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let (s, _, text) = self.send(b.body(body).unwrap()).await;
        (s, text)
    }

    /// Logs in through the form, enrolling TOTP with a computed code when the account
    /// must use it (tenant admins by default), and returns the session.
    pub async fn login(&self, username: &str, password: &str) -> Auth {
        let (status, headers, _) = self.post_form("/login", &Auth::None, &[("username", username), ("password", password)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {username}");
        let cookie = session_cookie(&headers).expect("session cookie");
        let auth = Auth::Session { cookie, csrf: String::new() };
        if headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) == Some("/login/enroll") {
            let (_, page) = self.get("/login/enroll", &auth).await;
            let i = page.find("data-secret=\"").unwrap() + 13;
            let secret = page[i..].split('"').next().unwrap().to_string();
            let csrf = csrf_of(&page).unwrap();
            let code = crate::auth::Totp::from_base32(&secret).unwrap().code_at_step(crate::auth::Totp::step_of(mamori_core::time::now_ms()));
            let (s, _, _) = self.post_form("/login/enroll", &auth, &[("csrf", &csrf), ("code", &code)]).await;
            assert_eq!(s, StatusCode::SEE_OTHER, "TOTP enrollment of {username}");
        }
        let (_, page) = self.get("/settings", &auth).await;
        let csrf = csrf_of(&page).expect("csrf on settings page");
        match auth {
            Auth::Session { cookie, .. } => Auth::Session { cookie, csrf },
            other => other,
        }
    }
}

pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mamori_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

pub fn csrf_of(page: &str) -> Option<String> {
    let i = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[i..].split('"').next()?.to_string())
}

pub fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") }).collect()
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Session { cookie: String, csrf: String },
    Bearer(String),
}

impl Auth {
    pub fn apply(&self, b: axum::http::request::Builder) -> axum::http::request::Builder {
        match self {
            Auth::None => b,
            Auth::Session { cookie, csrf } => b.header(header::COOKIE, cookie.as_str()).header("x-csrf-token", csrf.as_str()),
            Auth::Bearer(t) => b.header(header::AUTHORIZATION, format!("Bearer {t}")),
        }
    }

    pub fn csrf(&self) -> &str {
        match self {
            Auth::Session { csrf, .. } => csrf,
            _ => "",
        }
    }
}

impl Console {
    /// Logs an operator in by walking enrollment with a computed TOTP code.
    pub async fn login_operator_bypass(&self, user: UserId) -> Auth {
        let rec = self.state.store.login_record_by_id(user).await.unwrap().unwrap();
        let (_, headers, _) = self.post_form("/login", &Auth::None, &[("username", &rec.user.username), ("password", PASSWORD)]).await;
        let pending = Auth::Session { cookie: session_cookie(&headers).unwrap(), csrf: String::new() };
        let (_, page) = self.get("/login/enroll", &pending).await;
        let i = page.find("data-secret=\"").unwrap() + 13;
        let secret = page[i..].split('"').next().unwrap().to_string();
        let csrf = csrf_of(&page).unwrap();
        let code = crate::auth::Totp::from_base32(&secret).unwrap().code_at_step(crate::auth::Totp::step_of(mamori_core::time::now_ms()));
        let (s, _, _) = self.post_form("/login/enroll", &pending, &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let (_, page) = self.get("/settings", &pending).await;
        match pending {
            Auth::Session { cookie, .. } => Auth::Session { cookie, csrf: csrf_of(&page).unwrap() },
            other => other,
        }
    }
}

/// The client address the HTTP server would give a request from `ip`.
pub fn client_addr(ip: [u8; 4]) -> mamori_http::ClientAddr {
    let peer = SocketAddr::from((ip, 40000));
    mamori_http::ClientAddr { ip: peer.ip(), peer, forwarded: false, via_proxy: false }
}

/// Reads a server-sent event stream up to the end of its first event (a stream never
/// ends by itself); panics when none comes within 10 s.
async fn first_event(mut body: Body) -> String {
    next_event(&mut body).await.expect("a live stream sends its first event")
}

/// Reads the next event of a server-sent event stream (keep-alive comments skipped):
/// None once the stream ended; panics when nothing comes within 10 s.
pub async fn next_event(body: &mut Body) -> Option<String> {
    let mut seen = String::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
                // Comments (`:` lines) keep the stream open; an event has data.
                if seen.ends_with("\n\n") {
                    if seen.lines().any(|l| l.starts_with("data:")) {
                        return true;
                    }
                    seen.clear();
                }
            }
        }
        false
    };
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("the live stream sent or ended within 10 s");
    got.then_some(seen)
}

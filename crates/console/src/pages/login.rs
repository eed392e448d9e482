//! Login: password, then TOTP (or its enrollment, mandatory for operator roles and, by
//! default, tenant admins), then a
//! forced password change where one is due. Every step is its own page; the session
//! only becomes "full" at the end. Failures count toward the lockout, are published as
//! Authentication events, and never say whether the login name exists.

use super::{bare, see_other};
use crate::auth::{self, Totp, check_password_policy, random_token, session_cookie, sha256_hex};
use crate::{AppError, AppState, Lang};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_core::{Event, EventClass, Severity, TenantId};
use mamori_store::{LoginRecord, NewSession, Session, SessionStage};
use mamori_web::Form;
use maud::{PreEscaped, html};
use serde::Deserialize;

/// Minutes a half-finished login may take.
const PENDING_MINUTES: i64 = 10;

pub use mamori_web::auth::stage_path;

fn login_page(lang: Lang, error: Option<&str>, username: &str) -> Response {
    bare(
        lang,
        lang.t("ログイン", "Log in"),
        html! {
            @if let Some(e) = error { div.error role="alert" { (e) } }
            form method="post" action="/login" {
                label { (lang.t("ログイン名", "Login name")) input type="text" name="username" value=(username) autocomplete="username" required autofocus; }
                label { (lang.t("パスワード", "Password")) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (lang.t("ログイン", "Log in")) }
            }
            p.hint { (lang.t("自治体情報セキュリティクラウド 運用コンソール", "Municipal information security cloud console")) }
        },
    )
}

/// The answer to a failed login. It never says which part was wrong, nor whether the
/// login name exists.
fn failed_page(lang: Lang, username: &str) -> Response {
    login_page(
        lang,
        Some(lang.t("ログイン名またはパスワードが違うか、アカウントがロックされています", "wrong login name or password, or the account is locked")),
        username,
    )
}

/// The answer while the client's address is throttled.
fn throttled_page(lang: Lang, username: &str) -> Response {
    login_page(
        lang,
        Some(lang.t(
            "この端末からのログイン失敗が続いたため、しばらく受け付けません。15分ほどしてから再度お試しください",
            "too many failed logins from this address; try again in about 15 minutes",
        )),
        username,
    )
}

/// GET /login
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Ok(Some(s)) = auth::session_of(&state, &headers).await {
        return Redirect::to(stage_path(s.stage)).into_response();
    }
    login_page(Lang::from_headers(&headers), None, "")
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// POST /login
pub async fn submit(
    State(state): State<AppState>,
    crate::auth::ClientIp(client): crate::auth::ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let ip = client.to_string();
    let now = mamori_core::time::now_ms();
    let Some(attempt) = state.throttle.begin(client, now) else {
        state.metrics.login("throttled");
        let mut r = throttled_page(lang, &f.username);
        *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return r;
    };
    let failed = || {
        attempt.failed();
        failed_page(lang, &f.username)
    };
    if f.username.len() > 64 || f.password.len() > 1024 {
        return failed();
    }
    let rec = match state.store.login_record(&f.username).await {
        Ok(r) => r,
        Err(e) => return super::error_page(lang, &e.into()),
    };
    let Some(rec) = rec else {
        // Same work as a real check, so timing does not reveal unknown names.
        state.waste_password_time().await;
        state.metrics.login("failed");
        auth_event(&state, None, None, &ip, false, "unknown login name").await;
        return failed();
    };
    if rec.user.disabled {
        state.metrics.login("locked");
        auth_event(&state, rec.user.tenant_id, Some(&rec.user.username), &ip, false, "account disabled").await;
        return failed();
    }
    match count_attempt(&state, &rec).await {
        Ok(true) => {}
        Ok(false) => {
            state.metrics.login("locked");
            auth_event(&state, rec.user.tenant_id, Some(&rec.user.username), &ip, false, "account locked").await;
            return failed();
        }
        Err(e) => return super::error_page(lang, &e),
    }
    if !state.verify_password(f.password.clone(), rec.password_hash.clone()).await {
        state.metrics.login("failed");
        auth_event(&state, rec.user.tenant_id, Some(&rec.user.username), &ip, false, "wrong password").await;
        return failed();
    }
    if let Err(e) = state.store.reset_login_failures(rec.user.id).await {
        return super::error_page(lang, &e.into());
    }
    if let Some(refused) = refuse_expired(&state, &rec, &ip, lang, now).await {
        return refused;
    }
    let stage = next_stage(&rec, false, &state.auth_settings().await);
    let token = random_token(32);
    let new = NewSession {
        id_hash: sha256_hex(&token),
        user_id: rec.user.id,
        stage,
        csrf: random_token(24),
        created_at: now,
        expires_at: now + PENDING_MINUTES * 60_000,
        ip: ip.clone(),
    };
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let session = match state.store.create_session(new, ua).await {
        Ok(s) => s,
        Err(e) => return super::error_page(lang, &e.into()),
    };
    if stage == SessionStage::Full
        && let Err(e) = finish(&state, &session, &rec, &ip).await
    {
        return super::error_page(lang, &e);
    }
    let mut r = see_other(stage_path(stage));
    set_cookie(&mut r, &session_cookie(state.config.secure_cookies, &token, 24 * 3600));
    r
}

/// Refuses an expired account after its password (or code) was right: said plainly
/// only to whoever knows it, since the account's end is theirs to know.
async fn refuse_expired(state: &AppState, rec: &LoginRecord, ip: &str, lang: Lang, now: i64) -> Option<Response> {
    let end = rec.user.expires_at.filter(|_| rec.user.expired_at(now))?;
    state.metrics.login("expired");
    auth_event(state, rec.user.tenant_id, Some(&rec.user.username), ip, false, "account expired").await;
    Some(expired_page(lang, end))
}

/// The answer to a correct password of an expired account.
fn expired_page(lang: Lang, end: i64) -> Response {
    let day = mamori_core::time::format_date_jst(end - 1);
    let mut r = bare(
        lang,
        lang.t("アカウントの有効期限切れ", "Account expired"),
        html! {
            div.error role="alert" {
                (lang.t(&format!("このアカウントの有効期限（{day}まで）が過ぎたため、ログインできません。"), &format!("This account expired after {day} and can no longer log in.")))
            }
            p { (lang.t("引き続き作業が必要な場合は、運用管理者に有効期限の延長を依頼してください。", "If the work goes on, ask an operator admin to extend the account.")) }
            p { a href="/login" { (lang.t("ログイン画面へ戻る", "Back to the login page")) } }
        },
    );
    *r.status_mut() = axum::http::StatusCode::FORBIDDEN;
    r
}

/// Counts a login attempt before it is checked, so that parallel guesses cannot
/// outrun the lockout (a success clears the count). Returns false when the account is
/// locked, now or already.
async fn count_attempt(state: &AppState, rec: &LoginRecord) -> Result<bool, AppError> {
    let settings = state.auth_settings().await;
    let now = mamori_core::time::now_ms();
    if rec.user.locked_until > now {
        return Ok(false);
    }
    // `threshold + 1`: this attempt is counted before it is known to fail, so the lock
    // falls on the attempt after `threshold` failures.
    state.store.login_failed(rec.user.id, settings.lockout_threshold + 1, settings.lockout_minutes * 60_000).await?;
    let current = state.store.login_record_by_id(rec.user.id).await?.ok_or(AppError::NotFound)?;
    Ok(current.user.locked_until <= now && !current.user.disabled)
}

fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Returns the stage after the password (and, with `totp_done`, after TOTP).
fn next_stage(rec: &LoginRecord, totp_done: bool, settings: &crate::AuthSettings) -> SessionStage {
    if !totp_done && rec.totp_secret.is_some() {
        SessionStage::Totp
    } else if !totp_done && settings.requires_totp(rec.user.role) {
        SessionStage::Enroll
    } else if rec.user.must_change_password {
        SessionStage::ChangePassword
    } else {
        SessionStage::Full
    }
}

async fn finish(state: &AppState, session: &Session, rec: &LoginRecord, ip: &str) -> Result<(), AppError> {
    let settings = state.auth_settings().await;
    let now = mamori_core::time::now_ms();
    let expires = (now + settings.session_idle_minutes * 60_000).min(session.created_at + settings.session_max_hours * 3_600_000);
    state.store.set_session_stage(&session.id_hash, SessionStage::Full, expires).await?;
    state.store.login_succeeded(rec.user.id).await?;
    state.metrics.login("ok");
    auth_event(state, rec.user.tenant_id, Some(&rec.user.username), ip, true, "login").await;
    Ok(())
}

/// Records a login attempt. A municipality's accounts get an OCSF Authentication event
/// (3002, activity 1 Logon) in their own tenant, where that municipality sees it.
/// Operator accounts and unknown login names belong to no municipality: they go to the
/// audit log, which only operator roles read, and an unknown name is not kept (people
/// type passwords into the name field).
async fn auth_event(state: &AppState, tenant: Option<TenantId>, user: Option<&str>, ip: &str, ok: bool, reason: &str) {
    let now = mamori_core::time::now_ms();
    let Some(tenant) = tenant else {
        let actor = mamori_core::Actor {
            kind: mamori_core::ActorKind::User,
            user_id: None,
            name: user.unwrap_or("(unknown login name)").to_string(),
            ip: Some(ip.to_string()),
        };
        let change = mamori_store::Change {
            actor: &actor,
            tenant: None,
            action: if ok { "auth.login" } else { "auth.login_failed" },
            target_kind: "session",
            target_id: None,
            before: None,
            after: Some(serde_json::json!({ "reason": reason })),
        };
        if let Err(err) = state.store.record(change).await {
            tracing::warn!(error = %err, "could not record a login");
        }
        return;
    };
    let user = user.unwrap_or_default();
    let msg = if ok {
        format!("コンソールにログインしました: {user}")
    } else {
        format!("コンソールへのログインに失敗しました: {user}（{reason}）")
    };
    let mut e = Event::new(tenant, now, EventClass::AUTHENTICATION, msg, "mamori-console");
    e.activity_id = 1;
    e.severity = if ok { Severity::INFO } else { Severity::LOW };
    e.user = Some(user.chars().take(64).collect());
    e.src = Some(mamori_core::Endpoint { ip: Some(ip.to_string()), port: None, hostname: None });
    e.fields.insert("status_id".into(), serde_json::json!(if ok { 1 } else { 2 }));
    e.fields.insert("status".into(), serde_json::json!(if ok { "Success" } else { "Failure" }));
    e.fields.insert("status_detail".into(), serde_json::json!(reason));
    e.fields.insert("auth_protocol".into(), serde_json::json!("password"));
    if let Err(err) = state.bus.publish(vec![e]).await {
        tracing::warn!(error = %err, "could not record authentication event");
    }
}

/// Returns the session of a stage form after checking its CSRF token; a wrong token
/// answers with the error page in `headers`' language.
async fn pending_form(state: &AppState, headers: &HeaderMap, stage: SessionStage, csrf: &str) -> Result<(Session, LoginRecord), Response> {
    let (session, rec) = pending(state, headers, stage).await?;
    if !auth::constant_eq(session.csrf.as_bytes(), csrf.as_bytes()) {
        return Err(super::error_page(Lang::from_headers(headers), &AppError::Csrf));
    }
    Ok((session, rec))
}

/// Returns the right of a person changing their own account during login (TOTP
/// enrollment, forced password change): their session's, whatever their role.
fn own_change(session: &Session, rec: &LoginRecord, ip: std::net::IpAddr) -> Result<mamori_store::OwnAccount, AppError> {
    session.own_account(rec, Some(ip.to_string())).ok_or(AppError::NotFound)
}

async fn pending(state: &AppState, headers: &HeaderMap, stage: SessionStage) -> Result<(Session, LoginRecord), Response> {
    let session = auth::session_of(state, headers).await.ok().flatten().ok_or_else(|| Redirect::to("/login").into_response())?;
    if session.stage != stage {
        return Err(Redirect::to(stage_path(session.stage)).into_response());
    }
    let rec = state
        .store
        .login_record_by_id(session.user_id)
        .await
        .ok()
        .flatten()
        .filter(|r| !r.user.disabled)
        .ok_or_else(|| Redirect::to("/login").into_response())?;
    Ok((session, rec))
}

/// A form with one code.
#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

fn totp_page(lang: Lang, csrf: &str, error: Option<&str>) -> Response {
    bare(
        lang,
        lang.t("確認コード", "Verification code"),
        html! {
            @if let Some(e) = error { div.error role="alert" { (e) } }
            p { (lang.t("認証アプリに表示されている6桁の確認コードを入力してください。", "Enter the 6-digit code shown by your authenticator app.")) }
            form method="post" action="/login/totp" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t("確認コード", "Code")) input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required autofocus; }
                button type="submit" { (lang.t("確認", "Verify")) }
            }
        },
    )
}

/// GET /login/totp
pub async fn totp_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    match pending(&state, &headers, SessionStage::Totp).await {
        Ok((s, _)) => totp_page(lang, &s.csrf, None),
        Err(r) => r,
    }
}

/// POST /login/totp
pub async fn totp_submit(
    State(state): State<AppState>,
    crate::auth::ClientIp(client): crate::auth::ClientIp,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let (session, rec) = match pending_form(&state, &headers, SessionStage::Totp, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ip = client.to_string();
    let now = mamori_core::time::now_ms();
    let Some(attempt) = state.throttle.begin(client, now) else {
        let _ = state.store.delete_session(&session.id_hash).await;
        return throttled_page(lang, "");
    };
    match count_attempt(&state, &rec).await {
        Ok(true) => {}
        Ok(false) => {
            state.metrics.login("locked");
            auth_event(&state, rec.user.tenant_id, Some(&rec.user.username), &ip, false, "account locked").await;
            let _ = state.store.delete_session(&session.id_hash).await;
            return failed_page(lang, "");
        }
        Err(e) => return super::error_page(lang, &e),
    }
    let step = rec.totp_secret.as_deref().and_then(Totp::from_base32).and_then(|t| t.check(&f.code, now));
    let fresh = match step {
        Some(s) => state.store.use_totp_step(rec.user.id, s).await.unwrap_or(false),
        None => false,
    };
    if !fresh {
        attempt.failed();
        state.metrics.login("failed");
        auth_event(&state, rec.user.tenant_id, Some(&rec.user.username), &ip, false, "wrong TOTP code").await;
        return totp_page(lang, &session.csrf, Some(lang.t("確認コードが正しくないか、使用済みです", "the code is wrong or was already used")));
    }
    if let Err(e) = state.store.reset_login_failures(rec.user.id).await {
        return super::error_page(lang, &e.into());
    }
    if let Some(refused) = refuse_expired(&state, &rec, &ip, lang, now).await {
        return refused;
    }
    advance(&state, &session, &rec, &ip).await
}

async fn advance(state: &AppState, session: &Session, rec: &LoginRecord, ip: &str) -> Response {
    let lang = Lang::parse(&rec.user.lang).unwrap_or_default();
    match next_stage(rec, true, &state.auth_settings().await) {
        SessionStage::Full => match finish(state, session, rec, ip).await {
            Ok(()) => see_other("/"),
            Err(e) => super::error_page(lang, &e),
        },
        stage => {
            let expires = mamori_core::time::now_ms() + PENDING_MINUTES * 60_000;
            match state.store.set_session_stage(&session.id_hash, stage, expires).await {
                Ok(()) => see_other(stage_path(stage)),
                Err(e) => super::error_page(lang, &e.into()),
            }
        }
    }
}

fn enroll_page(lang: Lang, csrf: &str, secret: &str, account: &str, error: Option<&str>) -> Response {
    let uri = Totp::uri(secret, account, "Mamori");
    let qr = qrcode::QrCode::new(uri.as_bytes()).map(|c| c.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build()).unwrap_or_default();
    let grouped: String = secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).to_string()).collect::<Vec<_>>().join(" ");
    bare(
        lang,
        lang.t("二要素認証の設定", "Set up two-factor authentication"),
        html! {
            @if let Some(e) = error { div.error role="alert" { (e) } }
            p { (lang.t("このアカウントでは二要素認証（TOTP）が必須です。認証アプリ（Google Authenticator、Microsoft Authenticator など）で QR コードを読み取るか、次のキーを入力してください。",
                        "This account must use two-factor authentication (TOTP). Scan the QR code with an authenticator app, or type in the key below.")) }
            div.qr { (PreEscaped(qr)) }
            p { (lang.t("キー", "Key")) ": " code #totp-secret data-secret=(secret) { (grouped) } }
            form method="post" action="/login/enroll" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t("アプリに表示された確認コード", "Code shown by the app")) input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus; }
                button type="submit" { (lang.t("設定を完了", "Finish setup")) }
            }
        },
    )
}

/// GET /login/enroll
pub async fn enroll_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let (session, rec) = match pending(&state, &headers, SessionStage::Enroll).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let secret = match session.pending_totp.clone() {
        Some(s) => s,
        None => {
            let s = Totp::new_secret();
            if let Err(e) = state.store.set_session_pending_totp(&session.id_hash, Some(&s)).await {
                return super::error_page(lang, &e.into());
            }
            s
        }
    };
    enroll_page(lang, &session.csrf, &secret, &rec.user.username, None)
}

/// POST /login/enroll
pub async fn enroll_submit(
    State(state): State<AppState>,
    crate::auth::ClientIp(client): crate::auth::ClientIp,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let (session, rec) = match pending_form(&state, &headers, SessionStage::Enroll, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(secret) = session.pending_totp.clone() else { return Redirect::to("/login/enroll").into_response() };
    let now = mamori_core::time::now_ms();
    let Some(step) = Totp::from_base32(&secret).and_then(|t| t.check(&f.code, now)) else {
        return enroll_page(
            lang,
            &session.csrf,
            &secret,
            &rec.user.username,
            Some(lang.t("確認コードが正しくありません。時刻がずれていないかも確認してください", "the code is wrong; check the device's clock too")),
        );
    };
    let own = match own_change(&session, &rec, client) {
        Ok(o) => o,
        Err(e) => return super::error_page(lang, &e),
    };
    if let Err(e) = state.store.set_own_totp(&own, &secret, step).await {
        return super::error_page(lang, &e.into());
    }
    let _ = state.store.set_session_pending_totp(&session.id_hash, None).await;
    let rec = LoginRecord { totp_secret: Some(secret), ..rec };
    advance(&state, &session, &rec, &client.to_string()).await
}

/// The password change form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: String,
    confirm: String,
}

fn password_page(lang: Lang, csrf: &str, error: Option<&str>) -> Response {
    bare(
        lang,
        lang.t("パスワードの変更", "Change your password"),
        html! {
            @if let Some(e) = error { div.error role="alert" { (e) } }
            p { (lang.t("初回ログインまたはパスワード再設定の後は、新しいパスワードを設定してください。", "After the first login or a reset, set a new password.")) }
            form method="post" action="/login/password" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t("新しいパスワード", "New password")) input type="password" name="password" autocomplete="new-password" required autofocus; }
                label { (lang.t("新しいパスワード（確認）", "New password again")) input type="password" name="confirm" autocomplete="new-password" required; }
                button type="submit" { (lang.t("変更する", "Change")) }
            }
        },
    )
}

/// GET /login/password
pub async fn password_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    match pending(&state, &headers, SessionStage::ChangePassword).await {
        Ok((s, _)) => password_page(lang, &s.csrf, None),
        Err(r) => r,
    }
}

/// POST /login/password
pub async fn password_submit(
    State(state): State<AppState>,
    crate::auth::ClientIp(client): crate::auth::ClientIp,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let (session, rec) = match pending_form(&state, &headers, SessionStage::ChangePassword, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if f.password != f.confirm {
        return password_page(lang, &session.csrf, Some(lang.t("確認用のパスワードが一致しません", "the two passwords differ")));
    }
    let settings = state.auth_settings().await;
    if let Err(p) = check_password_policy(&f.password, &rec.user.username, settings.password_min_length) {
        return password_page(lang, &session.csrf, Some(p.message(lang.code())));
    }
    if state.verify_password(f.password.clone(), rec.password_hash.clone()).await {
        return password_page(lang, &session.csrf, Some(lang.t("現在と同じパスワードは使えません", "the new password must differ from the current one")));
    }
    let hash = match state.hash_password(f.password.clone()).await {
        Ok(h) => h,
        Err(e) => return super::error_page(lang, &e),
    };
    let own = match own_change(&session, &rec, client) {
        Ok(o) => o,
        Err(e) => return super::error_page(lang, &e),
    };
    if let Err(e) = state.store.set_own_password(&own, &hash, Some(&session.id_hash)).await {
        return super::error_page(lang, &e.into());
    }
    let rec = LoginRecord { user: mamori_store::User { must_change_password: false, ..rec.user }, password_hash: hash, ..rec };
    match finish(&state, &session, &rec, &client.to_string()).await {
        Ok(()) => see_other("/"),
        Err(e) => super::error_page(lang, &e),
    }
}

/// The logout form.
#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// POST /logout
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    if let Ok(Some(s)) = auth::session_of(&state, &headers).await
        && auth::constant_eq(s.csrf.as_bytes(), f.csrf.as_bytes())
    {
        let _ = state.store.delete_session(&s.id_hash).await;
    }
    let mut r = see_other("/login");
    set_cookie(&mut r, &session_cookie(state.config.secure_cookies, "", 0));
    r
}

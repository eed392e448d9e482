//! Login stages, TOTP, lockout, CSRF, API tokens, security headers.

use crate::support::*;
use axum::http::{StatusCode, header};
use mamori_console::auth::Totp;
use mamori_core::Role;
use serde_json::json;

fn secret_of(page: &str) -> String {
    let i = page.find("data-secret=\"").expect("secret on page") + "data-secret=\"".len();
    page[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn operators_must_enroll_totp_and_codes_work_once() {
    each_backend(|c| async move {
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        // Password → enrollment (operators must have TOTP).
        let (status, headers, _) = c.post_form("/login", &Auth::None, &[("username", "op1"), ("password", PASSWORD)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/login/enroll");
        let cookie = session_cookie(&headers).unwrap();
        let pending = Auth::Session { cookie: cookie.clone(), csrf: String::new() };
        // Not logged in yet: pages and the API refuse the half-made session.
        let (s, _) = c.get("/", &pending).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let (s, _) = c.api("GET", "/api/v1/me", &pending, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (_, page) = c.get("/login/enroll", &pending).await;
        let secret = secret_of(&page);
        let csrf = csrf_of(&page).unwrap();
        let totp = Totp::from_base32(&secret).unwrap();
        let now = mamori_core::time::now_ms();
        let (s, _, body) = c.post_form("/login/enroll", &pending, &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("確認コードが正しくありません"));
        let code = totp.code_at_step(Totp::step_of(now));
        let (s, h, _) = c.post_form("/login/enroll", &pending, &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!((s, h[header::LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/"));
        let (s, body) = c.api("GET", "/api/v1/me", &pending, None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        // A second login asks for the code; the same step is not accepted twice.
        let (_, headers, _) = c.post_form("/login", &Auth::None, &[("username", "op1"), ("password", PASSWORD)]).await;
        assert_eq!(headers[header::LOCATION], "/login/totp");
        let second = Auth::Session { cookie: session_cookie(&headers).unwrap(), csrf: String::new() };
        let (_, page) = c.get("/login/totp", &second).await;
        let csrf2 = csrf_of(&page).unwrap();
        let (s, _, body) = c.post_form("/login/totp", &second, &[("csrf", &csrf2), ("code", &code)]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("使用済み"), "replayed code refused");
        let next = totp.code_at_step(Totp::step_of(now) + 1);
        let (s, h, _) = c.post_form("/login/totp", &second, &[("csrf", &csrf2), ("code", &next)]).await;
        assert_eq!((s, h[header::LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/"));
        let user = c.state.store.get_user(&c.grant.scope(), op).await.unwrap().unwrap();
        assert!(user.totp_enabled && user.last_login_at.is_some());
        // Both logins, and the failures, are Authentication events of the platform.
        let log = c
            .state
            .store
            .list_audit(&c.grant.scope(), &mamori_store::AuditFilter { action: Some("user.totp".into()), ..Default::default() }, None, 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        for _ in 0..5 {
            let (s, _, body) = c.post_form("/login", &Auth::None, &[("username", "clerk"), ("password", "wrong-password-123")]).await;
            assert_eq!(s, StatusCode::OK);
            assert!(body.contains("ログイン名またはパスワードが違うか"));
        }
        let (s, _, _) = c.post_form("/login", &Auth::None, &[("username", "clerk"), ("password", PASSWORD)]).await;
        assert_eq!(s, StatusCode::OK, "locked: the right password is refused too");
        // Unknown names get the very same answer.
        let (_, _, body) = c.post_form("/login", &Auth::None, &[("username", "nobody"), ("password", PASSWORD)]).await;
        assert!(body.contains("ログイン名またはパスワードが違うか"));
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, tok) = c.token(op, Role::OperatorAdmin, "t").await;
        let (s, users) = c.api("GET", "/api/v1/users", &Auth::Bearer(tok.clone()), None).await;
        assert_eq!(s, StatusCode::OK);
        let clerk = serde_json::from_str::<serde_json::Value>(&users).unwrap().as_array().unwrap().iter().find(|u| u["username"] == "clerk").unwrap().clone();
        assert!(clerk["locked_until"].as_i64().unwrap() > mamori_core::time::now_ms());
        let (s, _) = c.api("POST", &format!("/api/v1/users/{}/unlock", clerk["id"].as_str().unwrap()), &Auth::Bearer(tok), None).await;
        assert_eq!(s, StatusCode::OK);
        c.login("clerk", PASSWORD).await;
    })
    .await;
}

#[tokio::test]
async fn csrf_and_cross_site_requests_are_refused() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        let s = c.login("tadmin", PASSWORD).await;
        let Auth::Session { cookie, .. } = &s else { unreachable!() };
        let no_csrf = Auth::Session { cookie: cookie.clone(), csrf: "forged".into() };
        let (status, _, _) = c.post_form(&format!("/tenants/{}/contacts", t.id), &no_csrf, &[("csrf", "forged"), ("contact_name_0", "x")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = c.api("POST", "/api/v1/tokens", &no_csrf, Some(json!({"name": "x", "scopes": ["events:read"]}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Right token but a foreign Origin.
        let req = s
            .apply(axum::http::Request::post(format!("/tenants/{}/contacts", t.id)))
            .header(header::ORIGIN, "https://evil.example")
            .header(header::HOST, "console.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(format!("csrf={}&contact_name_0=x", s.csrf())))
            .unwrap();
        let (status, _, _) = c.send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // With the session's token it works.
        let (status, _, _) = c
            .post_form(&format!("/tenants/{}/contacts", t.id), &s, &[("csrf", s.csrf()), ("contact_name_0", "山田"), ("contact_email_0", "yamada@example.jp")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(c.state.store.get_tenant(&c.grant.scope(), t.id).await.unwrap().unwrap().contacts[0].name, "山田");
    })
    .await;
}

#[tokio::test]
async fn tokens_are_scoped_expire_and_revoke() {
    each_backend(|c| async move {
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (status, body) = c.api("POST", "/api/v1/tokens", &s, Some(json!({"name": "events only", "scopes": ["events:read"], "days": 30}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let secret = v["secret"].as_str().unwrap().to_string();
        let id = v["token"]["id"].as_str().unwrap().to_string();
        let bearer = Auth::Bearer(secret.clone());
        assert_eq!(c.api("GET", "/api/v1/events", &bearer, None).await.0, StatusCode::OK);
        assert_eq!(c.api("GET", "/api/v1/tenants", &bearer, None).await.0, StatusCode::FORBIDDEN);
        // A token cannot mint tokens.
        assert_eq!(c.api("POST", "/api/v1/tokens", &bearer, Some(json!({"name": "x", "scopes": ["events:read"]}))).await.0, StatusCode::FORBIDDEN);
        assert_eq!(c.api("DELETE", &format!("/api/v1/tokens/{id}"), &s, None).await.0, StatusCode::OK);
        assert_eq!(c.api("GET", "/api/v1/events", &bearer, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(c.api("GET", "/api/v1/events", &Auth::Bearer("mmr_forged".into()), None).await.0, StatusCode::UNAUTHORIZED);
        // Scopes beyond the role are refused.
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let u = c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        let _ = u;
        let cs = c.login("clerk", PASSWORD).await;
        let (status, body) = c.api("POST", "/api/v1/tokens", &cs, Some(json!({"name": "x", "scopes": ["tenants:write"]}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        // Every change above is in the audit log, and the chain holds.
        assert!(c.state.store.verify_audit().await.unwrap().first_bad.is_none());
    })
    .await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_metrics_count_them() {
    each_backend(|c| async move {
        let (status, headers, body) = c.send(axum::http::Request::get("/login").body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(body.contains("lang=\"ja\"") && body.contains("ログイン"));
        assert!(!body.contains("<script"), "no script on pages");
        let (_, _, metrics) = c.send(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
        assert!(metrics.contains("mamori_http_requests_total{kind=\"page\",status=\"200\"}"), "{metrics}");
        // The event pipeline's gauges, the store's damage and the unreadable records too.
        for g in ["mamori_event_index_lag 0", "mamori_event_blocks_damaged 0", "mamori_events_unreadable 0", "mamori_event_log_damaged 0"] {
            assert!(metrics.contains(g), "{g} in {metrics}");
        }
        let (status, _, body) = c.send(axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // English on request.
        let (_, h, _) = c.send(axum::http::Request::get("/lang/en").body(axum::body::Body::empty()).unwrap()).await;
        let lang_cookie = h[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
        let (_, _, body) = c.send(axum::http::Request::get("/login").header(header::COOKIE, lang_cookie).body(axum::body::Body::empty()).unwrap()).await;
        assert!(body.contains("Log in"));
    })
    .await;
}

fn from(ip: [u8; 4], req: axum::http::request::Builder) -> axum::http::request::Builder {
    req.extension(crate::support::client_addr(ip))
}

#[tokio::test]
async fn one_address_cannot_spray_passwords_across_accounts() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        c.user("clerk0", "職員", Role::TenantUser, Some(t.id)).await;
        let attacker = [198, 51, 100, 9];
        let body = |user: &str, pw: &str| axum::body::Body::from(format!("username={user}&password={pw}"));
        // 30 failures spread over many login names (no account reaches its own lockout)…
        for i in 0..mamori_console::auth::LoginThrottle::MAX as usize {
            let req = from(attacker, axum::http::Request::post("/login"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body(&format!("staff{i}"), "wrong-password-1"))
                .unwrap();
            assert_eq!(c.send(req).await.0, StatusCode::OK);
        }
        // …then even the right password is refused from that address, with a clear reason.
        let req = from(attacker, axum::http::Request::post("/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body("clerk0", PASSWORD))
            .unwrap();
        let (status, _, page) = c.send(req).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(page.contains("15分ほどしてから"));
        // Other addresses are unaffected.
        let req = from([192, 0, 2, 50], axum::http::Request::post("/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body("clerk0", PASSWORD))
            .unwrap();
        assert_eq!(c.send(req).await.0, StatusCode::SEE_OTHER);
    })
    .await;
}

#[tokio::test]
async fn metrics_are_open_to_the_host_only() {
    each_backend(|c| async move {
        let remote = |auth: &Auth| from([192, 0, 2, 7], auth.apply(axum::http::Request::get("/metrics"))).body(axum::body::Body::empty()).unwrap();
        assert_eq!(c.send(remote(&Auth::None)).await.0, StatusCode::UNAUTHORIZED);
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let clerk = c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        let (_, tok) = c.token(clerk, Role::TenantUser, "t").await;
        assert_eq!(c.send(remote(&Auth::Bearer(tok))).await.0, StatusCode::FORBIDDEN);
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, tok) = c.token(op, Role::OperatorAdmin, "t").await;
        assert_eq!(c.send(remote(&Auth::Bearer(tok))).await.0, StatusCode::OK);
        assert_eq!(c.send(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await.0, StatusCode::OK, "loopback");
    })
    .await;
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_lockout() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        let guesses = (0..20).map(|i| {
            let c = &c;
            async move {
                // Different addresses, so only the account lockout stands in the way.
                let req = from([192, 0, 2, i as u8 + 1], axum::http::Request::post("/login"))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from(format!("username=clerk&password=guess-{i}-wrong")))
                    .unwrap();
                c.send(req).await.0
            }
        });
        futures_util::future::join_all(guesses).await;
        let now = mamori_core::time::now_ms();
        let q =
            mamori_store::events::EventQuery { from_ms: now - 60_000, to_ms: now + 1, limit: 100, text: Some("wrong password".into()), ..Default::default() };
        let checked = c.state.bus.events().query(&c.grant.scope(), &q).await.unwrap().events.len();
        assert!(checked <= 5, "only the allowed attempts reach the password check, {checked} did");
        let (status, _, _) = c.post_form("/login", &Auth::None, &[("username", "clerk"), ("password", PASSWORD)]).await;
        assert_eq!(status, StatusCode::OK, "locked");
    })
    .await;
}

#[tokio::test]
async fn a_reset_revokes_the_accounts_tokens() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let clerk = c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        let (_, tok) = c.token(clerk, Role::TenantUser, "t").await;
        let bearer = Auth::Bearer(tok);
        assert_eq!(c.api("GET", "/api/v1/me", &bearer, None).await.0, StatusCode::OK);
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, optok) = c.token(op, Role::OperatorAdmin, "o").await;
        let (status, _) = c.api("POST", &format!("/api/v1/users/{clerk}/reset-password"), &Auth::Bearer(optok), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(c.api("GET", "/api/v1/me", &bearer, None).await.0, StatusCode::UNAUTHORIZED, "the taken-over account's token is gone");
        assert!(c.state.store.account_tokens(&c.grant.scope(), clerk).await.unwrap().iter().all(|t| t.revoked_at.is_some()));
    })
    .await;
}

#[tokio::test]
async fn operator_logins_stay_out_of_the_prefectures_events() {
    each_backend(|c| async move {
        let pref = c
            .state
            .store
            .create_tenant(&c.grant.scope(), &mamori_core::Actor::system(), {
                let mut i = tenant_input("39000", "サンプル県", "10.39.0.0/20");
                i.kind = "prefecture".into();
                i.check().unwrap()
            })
            .await
            .unwrap();
        c.user("pref-user", "県職員", Role::TenantUser, Some(pref.id)).await;
        c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let _ = c.post_form("/login", &Auth::None, &[("username", "ope"), ("password", "wrong-password-9")]).await;
        let _ = c.post_form("/login", &Auth::None, &[("username", "my-secret-password"), ("password", "x")]).await;
        let s = c.login("pref-user", PASSWORD).await;
        let (_, body) = c.api("GET", "/api/v1/events?class=3002", &s, None).await;
        assert!(!body.contains("ope") || !body.contains("wrong password\""), "{body}");
        assert!(!body.contains("my-secret-password"), "mistyped names are not kept: {body}");
        assert!(!body.contains("\"ope\""), "operator activity is not the prefecture's data: {body}");
        let log = c
            .state
            .store
            .list_audit(&c.grant.scope(), &mamori_store::AuditFilter { action: Some("auth.".into()), ..Default::default() }, None, 10)
            .await
            .unwrap();
        assert!(log.iter().any(|e| e.actor_name == "ope" && e.action == "auth.login_failed"), "{log:?}");
        assert!(log.iter().all(|e| e.actor_name != "my-secret-password"));
    })
    .await;
}

#[tokio::test]
async fn the_node_list_is_for_operators() {
    each_backend(|c| async move {
        c.state
            .store
            .report_node(&mamori_store::NodeReport {
                id: "north-1".into(),
                name: "north".into(),
                version: "0.1.0".into(),
                started_at: 1,
                seen_at: mamori_core::time::now_ms(),
                status: json!({"components": [{"name": "retention", "placement": "replicated", "state": "standby", "restarts": 2, "policy_revision": 0}]}),
            })
            .await
            .unwrap();
        c.state.store.acquire_lease("component:monitor", "north-1", 60_000).await.unwrap();
        // A policy saved after the node last loaded its policies.
        let validator = c.state.registry.validator("retention").unwrap();
        c.state.store.put_policy(&c.grant.scope(), &mamori_core::Actor::system(), None, validator.as_ref(), validator.default_policy()).await.unwrap();
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, token) = c.token(op, Role::OperatorAdmin, "nodes").await;
        let (s, body) = c.api("GET", "/api/v1/nodes", &Auth::Bearer(token), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["nodes"][0]["name"], "north");
        assert_eq!(doc["leases"][0]["holder"], "north-1");
        let auth = c.login_operator_bypass(op).await;
        let (s, page) = c.get("/nodes", &auth).await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("north") && page.contains("待機中") && page.contains("component:monitor"), "{page}");
        assert!(page.contains("旧版（反映待ち）"), "the node still runs revision 0: {page}");
        // A municipality's administrator sees neither.
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let ta = c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        let (_, token) = c.token(ta, Role::TenantAdmin, "nodes").await;
        assert_eq!(c.api("GET", "/api/v1/nodes", &Auth::Bearer(token), None).await.0, StatusCode::FORBIDDEN);
        let s = c.login("tadmin", PASSWORD).await;
        assert_eq!(c.get("/nodes", &s).await.0, StatusCode::FORBIDDEN);
        assert!(!c.get("/", &s).await.1.contains("href=\"/nodes\""), "no link to it either");
    })
    .await;
}

/// Issue 8: a tenant admin cannot purge the municipality's own evidence by saving a
/// short retention; only an operator admin moves the platform minimum (F18).
#[tokio::test]
async fn retention_cannot_go_below_the_platform_minimum() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let ta = c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        let (_, token) = c.token(ta, Role::TenantAdmin, "policy").await;
        let tenant_api = Auth::Bearer(token);
        let path = format!("/api/v1/policies/retention?tenant={}", t.id);
        let (s, body) = c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 1}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("below_minimum") && body.contains("最低日数（365日）"), "{body}");
        assert_eq!(c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 400}))).await.0, StatusCode::OK);
        // The console says the same in Japanese, and keeps what was typed.
        let s = c.login("tadmin", PASSWORD).await;
        let form = [("csrf", s.csrf()), ("component", "retention"), ("tenant", &t.id.to_string()), ("document", "{\"events_days\": 30}")];
        let (status, _, page) = c.post_form("/settings/policies", &s, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("県が定めた最低日数（365日）より短くできません") && page.contains("ポリシーは保存されていません"), "{page}");
        // Nor can the tenant admin move the minimum.
        assert_eq!(c.api("PUT", "/api/v1/policies/retention/minimums", &tenant_api, Some(json!({"events_days": 1}))).await.0, StatusCode::FORBIDDEN);
        // An operator admin can (audited); then 30 days is accepted.
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, op_token) = c.token(op, Role::OperatorAdmin, "minimums").await;
        let op_api = Auth::Bearer(op_token);
        let (s, body) = c.api("PUT", "/api/v1/policies/retention/minimums", &op_api, Some(json!({"events_days": 0}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "minimums are checked like a policy: {body}");
        assert_eq!(c.api("PUT", "/api/v1/policies/retention/minimums", &op_api, Some(json!({"events_days": 30}))).await.0, StatusCode::OK);
        assert_eq!(
            c.api("GET", "/api/v1/policies/retention/minimums", &tenant_api, None).await.1,
            json!({"component": "retention", "minimums": {"events_days": 30}}).to_string()
        );
        assert_eq!(c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 30}))).await.0, StatusCode::OK);
        let (_, audit) = c.api("GET", "/api/v1/audit?action=setting.update", &op_api, None).await;
        assert!(audit.contains("policy_minimums.retention"), "{audit}");
    })
    .await;
}

#[tokio::test]
async fn healthz_answers_503_while_a_component_is_not_ready() {
    each_backend(|c| async move {
        let get = || c.send(axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap());
        let (status, _, body) = get().await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A component that has not started yet (the runtime registers it as starting).
        let _reporter = c.state.node.health.reporter("monitor", mamori_runtime::Placement::Singleton);
        let (status, _, body) = get().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["status"], "degraded");
        assert_eq!(doc["components"][0]["name"], "monitor");
        assert_eq!(doc["components"][0]["state"], "starting");
    })
    .await;
}

/// Issue 8 (tenant resolver), F06/F41: two towns with the same 192.168.1.0/24 on two
/// segments resolve to themselves; an overlap within a segment, a third FQDN without F41
/// and a tenant admin defining segments are refused with clear Japanese messages.
#[tokio::test]
async fn f06_same_private_range_on_two_segments_resolves_to_each_town() {
    each_backend(|c| async move {
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, op_token) = c.token(op, Role::OperatorAdmin, "segments").await;
        let op_api = Auth::Bearer(op_token);
        for (name, label) in [("wan-a", "県WAN 回線A"), ("wan-b", "県WAN 回線B")] {
            let (s, body) = c.api("PUT", &format!("/api/v1/segments/{name}"), &op_api, Some(json!({"label": label, "zone": "internet"}))).await;
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        let town = |code: &str, name: &str, range: &str| {
            json!({"code": mamori_core::LocalGovCode::from_five(code).unwrap().to_string(), "name": name, "kana": "テスト", "kind": "town",
                   "separation": "β", "network_ranges": [range], "fqdns": [format!("www.{code}.example.jp")]})
        };
        let (s, east) = c.api("POST", "/api/v1/tenants", &op_api, Some(town("39301", "東町", "192.168.1.0/24@wan-a"))).await;
        assert_eq!(s, StatusCode::CREATED, "{east}");
        let (s, west) = c.api("POST", "/api/v1/tenants", &op_api, Some(town("39302", "西町", "192.168.1.0/24@wan-b"))).await;
        assert_eq!(s, StatusCode::CREATED, "{west}");
        let (s, body) = c.api("POST", "/api/v1/tenants", &op_api, Some(town("39303", "南町", "192.168.1.64/26@wan-a"))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("同じセグメント「wan-a」にある「東町」の 192.168.1.0/24@wan-a と重なっています"), "{body}");
        let mut three = town("39303", "南町", "192.168.1.0/24");
        three["fqdns"] = json!(["a.example.jp", "b.example.jp", "c.example.jp"]);
        let (s, body) = c.api("POST", "/api/v1/tenants", &op_api, Some(three)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("F41 が2件必要"), "{body}");

        let lookup = |q: String| {
            let op_api = &op_api;
            let c = &c;
            async move {
                let (s, body) = c.api("GET", &format!("/api/v1/resolve?{q}"), op_api, None).await;
                assert_eq!(s, StatusCode::OK, "{body}");
                serde_json::from_str::<serde_json::Value>(&body).unwrap()["tenant"]["name"].clone()
            }
        };
        assert_eq!(lookup("segment=wan-a&address=192.168.1.10".into()).await, "東町");
        assert_eq!(lookup("segment=wan-b&address=192.168.1.10".into()).await, "西町");
        assert_eq!(lookup("segment=default&address=192.168.1.10".into()).await, serde_json::Value::Null);
        assert_eq!(lookup("host=WWW.39302.example.jp".into()).await, "西町");
        // The console page answers the same question.
        let s = c.login_operator_bypass(op).await;
        let (status, page) = c.get("/tenants/segments?segment=wan-b&address=192.168.1.10", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("192.168.1.10@wan-b → ") && page.contains(">西町</a>"), "{page}");
        assert!(page.contains("県WAN 回線A") && page.contains("東町"), "{page}");

        // A tenant admin sees neither the lookup nor may define segments.
        let east_id = serde_json::from_str::<serde_json::Value>(&east).unwrap()["id"].as_str().unwrap().parse().unwrap();
        let ta = c.user("tadmin", "管理", Role::TenantAdmin, Some(east_id)).await;
        let (_, token) = c.token(ta, Role::TenantAdmin, "segments").await;
        let tenant_api = Auth::Bearer(token);
        assert_eq!(c.api("PUT", "/api/v1/segments/mine", &tenant_api, Some(json!({"label": "x", "zone": "internet"}))).await.0, StatusCode::FORBIDDEN);
        assert_eq!(c.api("GET", "/api/v1/resolve?address=192.168.1.10&segment=wan-b", &tenant_api, None).await.0, StatusCode::FORBIDDEN);
        // A segment in use stays.
        let (s, body) = c.api("DELETE", "/api/v1/segments/wan-b", &op_api, None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("西町 のネットワーク範囲があるため削除できません"), "{body}");
    })
    .await;
}

/// Issue 8 (secrets): a town keeps its own secrets, write-only; another town neither
/// sees nor deletes them; the platform's are for operator admins; the page shows names
/// and never a value.
#[tokio::test]
async fn secrets_are_write_only_and_kept_per_tenant() {
    each_backend(|c| async move {
        let a = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let b = c.tenant("39342", "他市", "10.67.0.0/24").await;
        let (_, ta) = c.token(c.user("admin-a", "管理A", Role::TenantAdmin, Some(a.id)).await, Role::TenantAdmin, "s").await;
        let (_, tb) = c.token(c.user("admin-b", "管理B", Role::TenantAdmin, Some(b.id)).await, Role::TenantAdmin, "s").await;
        let (ta, tb) = (Auth::Bearer(ta), Auth::Bearer(tb));
        const VALUE: &str = "town-a-ldap-password-41";
        let (s, body) = c.api("PUT", "/api/v1/secrets", &ta, Some(json!({"name": "ldap/ad01", "kind": "password", "value": VALUE}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(!body.contains(VALUE));
        let (s, body) = c.api("PUT", "/api/v1/secrets", &ta, Some(json!({"name": "ldap/ad01", "kind": "passwd", "value": "x"}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("種類「passwd」は不明です"), "{body}");
        assert_eq!(c.api("GET", "/api/v1/secrets", &tb, None).await.1, "[]", "the other town sees none");
        let path = format!("/api/v1/secrets?tenant={}&name=ldap/ad01", a.id);
        assert_eq!(c.api("DELETE", &path, &tb, None).await.0, StatusCode::NOT_FOUND);
        let platform = json!({"tenant": "platform", "name": "smtp/relay", "kind": "password", "value": "x"});
        assert_eq!(c.api("PUT", "/api/v1/secrets", &ta, Some(platform.clone())).await.0, StatusCode::FORBIDDEN);
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, to) = c.token(op, Role::OperatorAdmin, "s").await;
        let to = Auth::Bearer(to);
        assert_eq!(c.api("PUT", "/api/v1/secrets", &to, Some(platform)).await.0, StatusCode::OK);
        let (_, all) = c.api("GET", "/api/v1/secrets", &to, None).await;
        assert!(all.contains("smtp/relay") && all.contains("ldap/ad01") && !all.contains(VALUE), "{all}");
        // The console page: names, no values; a town admin stores one by the form.
        let s = c.login("admin-a", PASSWORD).await;
        let (status, page) = c.get("/settings/secrets", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("ldap/ad01") && !page.contains(VALUE) && !page.contains("smtp/relay"), "{page}");
        let form = [("csrf", s.csrf()), ("name", "Bad Name"), ("kind", "password"), ("value", "v")];
        let (status, _, page) = c.post_form("/settings/secrets", &s, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("英小文字・数字"), "{page}");
        let form = [("csrf", s.csrf()), ("name", "smtp/own"), ("kind", "password"), ("value", "form-value-93")];
        assert_eq!(c.post_form("/settings/secrets", &s, &form).await.0, StatusCode::SEE_OTHER);
        assert!(c.get("/settings/secrets", &s).await.1.contains("smtp/own"));
        let grant = c.grant.clone();
        let v = c.state.vault.secrets.get(&grant, Some(a.id), "smtp/own").await.unwrap().unwrap();
        assert_eq!(v.expose_str(), Some("form-value-93"), "what components read");
    })
    .await;
}

/// Issue 8 (policies): who may write a component's policy is set per component by
/// operator admins; a change is shown as a diff before it is saved; a rollback saves an
/// earlier version again and the components run it.
#[tokio::test]
async fn policy_writers_diff_and_rollback() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let ta = c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        let (_, token) = c.token(ta, Role::TenantAdmin, "policy").await;
        let tenant_api = Auth::Bearer(token);
        let path = format!("/api/v1/policies/retention?tenant={}", t.id);
        assert_eq!(c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 400}))).await.0, StatusCode::OK);
        // A dry run lists the changes and saves nothing.
        let (s, body) = c.api("PUT", &format!("{path}&dry_run=true"), &tenant_api, Some(json!({"events_days": 500}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["changes"], json!([{"path": "events_days", "before": 400, "after": 500}]));
        assert_eq!(v["version"], 1);
        assert_eq!(c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 500}))).await.0, StatusCode::OK);

        // The console shows the same review before saving.
        let s = c.login("tadmin", PASSWORD).await;
        let tid = t.id.to_string();
        let form = [("csrf", s.csrf()), ("component", "retention"), ("tenant", tid.as_str()), ("document", "{\"events_days\": 600}")];
        let (status, _, page) = c.post_form("/settings/policies", &s, &form).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("変更内容の確認") && page.contains("id=\"policy-diff\"") && page.contains("<code>500</code>") && page.contains("<code>600</code>"),
            "{page}"
        );
        let versions = |c: &crate::support::Console| {
            let grant = c.grant.scope();
            let store = c.state.store.clone();
            async move { store.policy_versions(&grant, Some(t.id), "retention", 10).await.unwrap() }
        };
        assert_eq!(versions(&c).await.len(), 2, "reviewing saves nothing");
        let confirm = [("csrf", s.csrf()), ("component", "retention"), ("tenant", tid.as_str()), ("document", "{\"events_days\": 600}"), ("confirm", "1")];
        assert_eq!(c.post_form("/settings/policies", &s, &confirm).await.0, StatusCode::OK);
        assert_eq!(versions(&c).await[0].document, json!({"events_days": 600}));

        // Roll back to version 1: a new version with its document, which components run.
        let (s2, body) = c.api("POST", &format!("/api/v1/policies/retention/rollback?tenant={}&version=1", t.id), &tenant_api, None).await;
        assert_eq!(s2, StatusCode::OK, "{body}");
        let latest = c.state.store.latest_policies(&c.grant, "retention").await.unwrap();
        let mine = latest.iter().find(|p| p.tenant == Some(t.id)).unwrap();
        assert_eq!((mine.version, &mine.document), (4, &json!({"events_days": 400})));
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, op_token) = c.token(op, Role::OperatorAdmin, "writers").await;
        let op_api = Auth::Bearer(op_token);
        let (_, audit) = c.api("GET", "/api/v1/audit?action=policy.rollback", &op_api, None).await;
        assert!(audit.contains("retention@4"), "{audit}");

        // Operator admins take the retention policy away from tenant admins.
        assert_eq!(c.api("PUT", "/api/v1/policies/retention/writers", &tenant_api, Some(json!({"roles": []}))).await.0, StatusCode::FORBIDDEN);
        let (st, body) = c.api("PUT", "/api/v1/policies/retention/writers", &op_api, Some(json!({"roles": ["soc_analyst"]}))).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let (st, body) = c.api("PUT", &path, &tenant_api, Some(json!({"events_days": 700}))).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert!(body.contains("「retention」のポリシーを変更できるのは 運用管理者、SOC アナリスト です"), "{body}");
        let (status, _, page) = c.post_form("/settings/policies", &s, &confirm).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("県の運用管理者に依頼してください"), "{page}");
        assert!(!c.get(&format!("/settings/policies?component=retention&tenant={}", t.id), &s).await.1.contains("この版に戻す"), "no rollback buttons either");
        let (_, body) = c.api("PUT", "/api/v1/policies/retention/writers", &op_api, Some(json!({"roles": ["helpdesk"]}))).await;
        assert!(body.contains("cannot_write_policies"), "{body}");
    })
    .await;
}

/// Issue 8: TOTP is required of tenant admins by default, of tenant users when operator
/// admins turn it on; operator roles always.
#[tokio::test]
async fn totp_is_required_of_tenant_admins_by_default() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        c.user("clerk", "職員", Role::TenantUser, Some(t.id)).await;
        let next = |user: &'static str| {
            let c = &c;
            async move {
                let (s, h, _) = c.post_form("/login", &Auth::None, &[("username", user), ("password", PASSWORD)]).await;
                assert_eq!(s, StatusCode::SEE_OTHER);
                h.get(axum::http::header::LOCATION).unwrap().to_str().unwrap().to_string()
            }
        };
        assert_eq!(next("tadmin").await, "/login/enroll");
        assert_eq!(next("clerk").await, "/");
        // An operator admin turns it on for tenant users and off for tenant admins.
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get("/settings", &s).await;
        assert!(page.contains("name=\"totp_tenant_admins\" value=\"1\" checked"), "on by default");
        let form = [
            ("csrf", s.csrf()),
            ("lockout_threshold", "5"),
            ("lockout_minutes", "15"),
            ("session_idle_minutes", "30"),
            ("session_max_hours", "12"),
            ("password_min_length", "12"),
            ("totp_tenant_users", "1"),
        ];
        assert_eq!(c.post_form("/settings/security", &s, &form).await.0, StatusCode::SEE_OTHER);
        assert_eq!(next("tadmin").await, "/");
        assert_eq!(next("clerk").await, "/login/enroll");
    })
    .await;
}

/// Issue 8 (policies): a change can be scheduled; it takes effect at its time (the
/// nodes' poll activates it) and can be cancelled before.
#[tokio::test]
async fn a_scheduled_policy_takes_effect_at_its_time() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let ta = c.user("tadmin", "管理", Role::TenantAdmin, Some(t.id)).await;
        let (_, token) = c.token(ta, Role::TenantAdmin, "policy").await;
        let api = Auth::Bearer(token);
        let path = format!("/api/v1/policies/retention?tenant={}", t.id);
        assert_eq!(c.api("PUT", &path, &api, Some(json!({"events_days": 400}))).await.0, StatusCode::OK);
        let soon = mamori_core::time::format_rfc3339(mamori_core::time::now_ms() + 1500);
        let (s, body) = c.api("PUT", &format!("{path}&effective_at={}", enc(&soon)), &api, Some(json!({"events_days": 500}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["revision"].as_i64().unwrap() < 0, "waits: {body}");
        let later = mamori_core::time::format_rfc3339(mamori_core::time::now_ms() + 86_400_000);
        let (_, body) = c.api("PUT", &format!("{path}&effective_at={}", enc(&later)), &api, Some(json!({"events_days": 900}))).await;
        let far: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(far["version"].is_i64(), "{body}");
        let (s, body) = c.api("PUT", &format!("{path}&effective_at=someday"), &api, Some(json!({"events_days": 500}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("適用日時「someday」を読めません"), "{body}");
        let in_force = |c: &crate::support::Console| {
            let (store, grant) = (c.state.store.clone(), c.grant.clone());
            async move { store.latest_policies(&grant, "retention").await.unwrap().into_iter().find(|p| p.tenant == Some(t.id)).unwrap().document }
        };
        assert_eq!(c.state.store.activate_due_policies().await.unwrap(), 0, "not yet");
        assert_eq!(in_force(&c).await, json!({"events_days": 400}));
        let s = c.login("tadmin", PASSWORD).await;
        let page = c.get(&format!("/settings/policies?component=retention&tenant={}", t.id), &s).await.1;
        assert!(page.contains("予定 ") && page.contains("適用中") && page.contains("予定を取り消す"), "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        assert_eq!(c.state.store.activate_due_policies().await.unwrap(), 1);
        assert_eq!(in_force(&c).await, json!({"events_days": 500}));
        assert_eq!(c.state.store.activate_due_policies().await.unwrap(), 0, "once");
        // The one far ahead is cancelled and never takes effect.
        let cancel = format!("/api/v1/policies/retention/scheduled?tenant={}&version={}", t.id, far["version"]);
        let (st, body) = c.api("DELETE", &cancel, &api, None).await;
        assert_eq!(st, StatusCode::OK, "{cancel}: {body}");
        assert_eq!(c.api("DELETE", &cancel, &api, None).await.0, StatusCode::NOT_FOUND);
        let op = c.user("op1", "運用1", Role::OperatorAdmin, None).await;
        let (_, op_token) = c.token(op, Role::OperatorAdmin, "audit").await;
        let (_, audit) = c.api("GET", "/api/v1/audit?limit=100", &Auth::Bearer(op_token), None).await;
        for action in ["policy.schedule", "policy.activate", "policy.cancel"] {
            assert!(audit.contains(action), "{action}: {audit}");
        }
    })
    .await;
}

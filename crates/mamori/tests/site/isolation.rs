//! Tenant isolation over the assembled site: a tenant admin of one municipality walks
//! EVERY API endpoint and EVERY page of the console and of every component's web part
//! (the union `mamori serve` serves), aimed at another municipality's objects, and
//! nothing of the other municipality is readable or writable.
//!
//! The platform's objects (tenant, account, token, event, policy) are seeded here;
//! each component seeds its own through its part's isolation fixture.

use axum::http::StatusCode;
use mamori_console::Assembly;
use mamori_console::testing::*;
use mamori_core::{Event, EventClass, Role, TenantId};
use mamori_web::{Fixture, FixtureCx};
use serde_json::json;

/// Strings that only the other municipality's platform data contains.
const MARKERS: &[&str] = &["マーカー町", "marker-b-user", "マーカー職員", "MARKERB", "marker-b-token", "b-contact@marker.example.jp", "10.77.0.0/24"];

/// Seeds every part's fixture for `tenant`.
async fn seed_parts(c: &Console, assembly: &Assembly, tenant: TenantId) -> Vec<Fixture> {
    let mut out = Vec::new();
    for part in &assembly.parts {
        if let Some(f) = &part.fixture {
            let cx = FixtureCx { store: &c.state.store, grant: &c.grant, tenant };
            out.push(f.seed(cx).await.unwrap_or_else(|e| panic!("fixture of {}: {e}", part.name)));
        }
    }
    out
}

/// Every part's description of `tenant`'s data.
async fn snapshot_parts(c: &Console, assembly: &Assembly, tenant: TenantId) -> String {
    let mut out = String::new();
    for part in &assembly.parts {
        if let Some(f) = &part.fixture {
            let cx = FixtureCx { store: &c.state.store, grant: &c.grant, tenant };
            out.push_str(&f.snapshot(cx).await.unwrap_or_else(|e| panic!("snapshot of {}: {e}", part.name)));
            out.push('|');
        }
    }
    out
}

/// The id a documented path's `{id}` stands for: a part's object, else the platform's.
fn id_for(path: &str, fixtures: &[Fixture], platform: &[(&str, String)], fallback: &str) -> String {
    fixtures
        .iter()
        .find_map(|f| f.id_for(path))
        .map(str::to_string)
        .or_else(|| platform.iter().find(|(prefix, _)| path.starts_with(prefix)).map(|(_, id)| id.clone()))
        .unwrap_or_else(|| fallback.to_string())
}

#[tokio::test]
async fn a_tenant_admin_reaches_nothing_of_another_tenant() {
    each_backend_with(mamori::components::registry, |c| async move {
        let assembly = Assembly::of(&c.state);
        assert!(assembly.parts.iter().any(|p| p.name == "monitor"), "the monitor's part is assembled");
        // Own municipality A, other municipality B with recognizable data.
        let a = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let mut b_input = tenant_input("39342", "マーカー町", "10.77.0.0/24");
        b_input.contacts =
            vec![mamori_core::Contact {
                name: "B担当".into(), department: "情報課".into(), email: "b-contact@marker.example.jp".into(), phone: String::new()
            }];
        let b = c.state.store.create_tenant(&c.grant.scope(), &mamori_core::Actor::system(), b_input.check().unwrap()).await.unwrap();
        let admin_a = c.user("admin-a", "A管理者", Role::TenantAdmin, Some(a.id)).await;
        let user_b = c.user("marker-b-user", "マーカー職員", Role::TenantUser, Some(b.id)).await;
        let (token_b, _) = c.token(user_b, Role::TenantUser, "marker-b-token").await;
        let now = mamori_core::time::now_ms() - 60_000;
        let event_b = Event::new(b.id, now, EventClass::HTTP_ACTIVITY, "MARKERB イベント", "test");
        let event_a = Event::new(a.id, now, EventClass::HTTP_ACTIVITY, "own event", "test");
        c.state.bus.publish(vec![event_b.clone(), event_a]).await.unwrap();
        c.state.bus.searchable().await;
        let retention = mamori_runtime::retention::RetentionPolicy;
        c.state.store.put_policy(&c.grant.scope(), &mamori_core::Actor::system(), Some(b.id), &retention, json!({"events_days": 777})).await.unwrap();
        let hold_b =
            mamori_store::NewEventHold { tenant: b.id, from_ms: now - 86_400_000, to_ms: now, reason: "MARKERB 保全".into(), reference: "MARKERB-1".into() };
        let hold_b = c.state.store.place_event_hold(&c.grant.scope(), &mamori_core::Actor::system(), hold_b).await.unwrap();
        let fixtures = seed_parts(&c, &assembly, b.id).await;
        let markers: Vec<String> = MARKERS.iter().map(|m| m.to_string()).chain(fixtures.iter().flat_map(|f| f.markers.iter().cloned())).collect();

        let snapshot = || async {
            let t = c.state.store.get_tenant(&c.grant.scope(), b.id).await.unwrap();
            let u = c.state.store.get_user(&c.grant.scope(), user_b).await.unwrap();
            let tokens = c.state.store.account_tokens(&c.grant.scope(), user_b).await.unwrap();
            let pol = c.state.store.policy_versions(&c.grant.scope(), Some(b.id), "retention", 100).await.unwrap();
            let ev = c
                .state
                .bus
                .events()
                .count_by_tenant(&c.grant.scope(), mamori_core::time::now_ms() - 300 * 86_400_000, mamori_core::time::now_ms() + 86_400_000, None)
                .await
                .unwrap()
                .get(&b.id)
                .copied();
            let holds = c.state.store.list_event_holds(&c.grant.tenant(b.id), true).await.unwrap();
            format!("{t:?}|{u:?}|{tokens:?}|{pol:?}|{ev:?}|{holds:?}|{}", snapshot_parts(&c, &assembly, b.id).await)
        };
        let before = snapshot().await;

        let (_, token_a) = c.token(admin_a, Role::TenantAdmin, "a-token").await;
        let bearer = Auth::Bearer(token_a);
        let session = c.login("admin-a", PASSWORD).await;

        let leaks = |what: &str, body: &str| {
            for m in &markers {
                assert!(!body.contains(m.as_str()), "{what} leaked '{m}' of the other tenant:\n{}", &body[..body.len().min(2000)]);
            }
        };
        let platform_ids = [
            ("/api/v1/tenants/", b.id.to_string()),
            ("/api/v1/users/", user_b.to_string()),
            ("/api/v1/events/", event_b.id.to_string()),
            ("/api/v1/tokens/", token_b.to_string()),
            ("/api/v1/holds/", hold_b.id.to_string()),
        ];

        // Every API endpoint, by token and by session, aimed at B.
        let b_csv = format!("code,name,kana,kind\n{},乗っ取り,ノットリ,town\n", b.code);
        for r in &assembly.routes {
            let path = r
                .path
                .replace("{id}", &id_for(r.path, &fixtures, &platform_ids, &b.id.to_string()))
                .replace("{component}", "retention")
                .replace("{version}", "1");
            let path = if r.query.contains(&"tenant") { format!("{path}?tenant={}", b.id) } else { path };
            let path = if r.query.contains(&"version") { format!("{path}&version=1") } else { path };
            let body = match (r.method, r.path) {
                ("PATCH", "/api/v1/tenants/{id}") => Some(json!({"name": "乗っ取り"})),
                ("PATCH", "/api/v1/settings/auth") => Some(json!({"lockout_threshold": 20})),
                ("POST", "/api/v1/tenants") | ("PUT", "/api/v1/tenants/{id}") => {
                    Some(json!({"code": b.code.to_string(), "name": "乗っ取り", "kana": "ノットリ", "kind": "town"}))
                }
                ("PUT", "/api/v1/tenants/{id}/contacts") => Some(json!([{"name": "乗っ取り"}])),
                ("POST", "/api/v1/users") => Some(json!({"username": "intruder", "display_name": "x", "role": "tenant_user", "tenant_id": b.id})),
                ("PATCH", "/api/v1/users/{id}") => Some(json!({"display_name": "乗っ取り", "disabled": true})),
                ("POST", "/api/v1/events") => Some(json!({"class_uid": 4002, "message": "injected", "metadata": {"tenant_uid": b.id.to_string()}})),
                ("PUT", "/api/v1/policies/{component}") => Some(json!({"events_days": 1})),
                ("POST", "/api/v1/tokens") => Some(json!({"name": "t", "scopes": ["events:read"]})),
                ("PUT", "/api/v1/settings/auth") => Some(json!({"lockout_threshold": 20})),
                (m, p) => fixtures.iter().find_map(|f| f.body_for(m, p)).cloned(),
            };
            for auth in [&bearer, &session] {
                let (status, text) = if r.path == "/api/v1/tenants/import" {
                    let req =
                        auth.apply(axum::http::Request::post(&path)).header("content-type", "text/csv").body(axum::body::Body::from(b_csv.clone())).unwrap();
                    let (s, _, t) = c.send(req).await;
                    (s, t)
                } else {
                    c.api(r.method, &path, auth, body.clone()).await
                };
                leaks(&format!("{} {path}", r.method), &text);
                if r.writes && r.tag != "account" {
                    assert!(
                        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY)
                            || (r.tag == "probe" && status == StatusCode::UNAUTHORIZED),
                        "{} {path} answered {status}: {text}",
                        r.method
                    );
                }
            }
        }

        // Every page, with B's ids and B as filter.
        let week_ago = mamori_core::time::now_ms() - 7 * 86_400_000;
        for p in &assembly.pages {
            let variants: Vec<String> = match *p {
                "/tenants/{id}" => vec![format!("/tenants/{}", b.id)],
                "/users/{id}" => vec![format!("/users/{user_b}")],
                "/events/{id}" => vec![format!("/events/{}", event_b.id)],
                "/events" => vec![
                    "/events".into(),
                    format!("/events?tenant={}", b.id),
                    "/events?q=%E3%82%A4%E3%83%99%E3%83%B3%E3%83%88".into(),
                    format!("/events?from={week_ago}&fields=metadata.tenant_uid%3D{}", b.id),
                    format!("/events?from={week_ago}&format=csv"),
                    format!("/events?from={week_ago}&format=csv&tenant={}", b.id),
                ],
                "/tenants" => vec!["/tenants".into(), "/tenants?format=csv".into(), "/tenants?sort=name&dir=desc".into()],
                "/users" => vec!["/users".into(), format!("/users?tenant={}", b.id)],
                "/audit" => vec!["/audit".into(), format!("/audit?tenant={}", b.id), "/audit?verify=1".into()],
                "/audit/export.csv" => vec!["/audit/export.csv".into(), format!("/audit/export.csv?tenant={}", b.id)],
                "/settings/policies" => vec![format!("/settings/policies?tenant={}&component=retention", b.id)],
                other => fixtures
                    .iter()
                    .find_map(|f| f.pages.iter().find(|(page, _)| *page == other).map(|(_, v)| v.clone()))
                    .unwrap_or_else(|| vec![other.replace("{id}", &id_for(other, &fixtures, &[], &b.id.to_string()))]),
            };
            for path in variants {
                let (_, body) = c.get(&path, &session).await;
                leaks(&format!("page {path}"), &body);
            }
        }
        // Every form aimed at B.
        let csrf = session.csrf().to_string();
        let b_id = b.id.to_string();
        let mut forms: Vec<(String, Vec<(String, String)>)> = [
            (format!("/tenants/{}", b.id), vec![("name", "乗っ取り"), ("code", "393423"), ("kana", "ノットリ"), ("kind", "town")]),
            (format!("/tenants/{}/contacts", b.id), vec![("contact_name_0", "乗っ取り")]),
            (format!("/tenants/{}/delete", b.id), vec![("confirm", "on")]),
            (format!("/users/{user_b}"), vec![("display_name", "乗っ取り"), ("role", "tenant_user"), ("tenant", &a.id.to_string())]),
            (format!("/users/{user_b}/action"), vec![("action", "reset_password")]),
            (format!("/users/{user_b}/action"), vec![("action", "delete")]),
            ("/settings/policies".into(), vec![("component", "retention"), ("tenant", &b_id), ("document", "{\"events_days\": 1}")]),
            (format!("/settings/tokens/{token_b}/revoke"), vec![]),
            (format!("/events/holds/{}/release", hold_b.id), vec![("confirm", "on")]),
            ("/events/holds".into(), vec![("tenant", &b_id), ("from", "2026-01-01"), ("to", "2026-01-02"), ("reason", "乗っ取り")]),
            ("/users".into(), vec![("username", "intruder2"), ("display_name", "x"), ("role", "tenant_user"), ("tenant", &b_id)]),
        ]
        .into_iter()
        .map(|(path, form)| (path, form.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
        .collect();
        forms.extend(fixtures.iter().flat_map(|f| f.forms.iter().cloned()));
        for (path, form) in forms {
            let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form.push(("csrf", &csrf));
            let (status, _, body) = c.post_form(&path, &session, &form).await;
            leaks(&format!("form {path}"), &body);
            assert!(!status.is_redirection() || path == "/users", "form {path} answered {status}");
        }
        // The user the tenant admin tried to create in B (as a tenant_user of their own
        // tenant, since the tenant field is ignored for tenant admins) never lands in B.
        let in_b = c.state.store.list_users(&c.grant.tenant(b.id), &Default::default()).await.unwrap();
        assert!(in_b.iter().all(|u| u.username == "marker-b-user"), "{in_b:?}");
        assert_eq!(snapshot().await, before, "the other tenant's data changed");
    })
    .await;
}

#[tokio::test]
async fn every_documented_route_is_served() {
    each_backend_with(mamori::components::registry, |c| async move {
        let assembly = Assembly::of(&c.state);
        let a = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (tok_id, tok) = c.token(op, Role::OperatorAdmin, "op").await;
        let e = Event::new(a.id, mamori_core::time::now_ms() - 1000, EventClass::HTTP_ACTIVITY, "x", "t");
        c.state.bus.publish(vec![e.clone()]).await.unwrap();
        c.state.bus.searchable().await;
        let auth = Auth::Bearer(tok);
        let fixtures = seed_parts(&c, &assembly, a.id).await;
        let probe_token = {
            let secret = "mmp_probe-token-for-the-route-walk";
            c.state
                .store
                .create_probe(&c.grant.scope(), &mamori_core::Actor::system(), Some(a.id), "walk", &mamori_console::auth::sha256_hex(secret))
                .await
                .unwrap();
            Auth::Bearer(secret.into())
        };
        let platform_ids = [("/api/v1/tenants/", a.id.to_string()), ("/api/v1/users/", op.to_string()), ("/api/v1/events/", e.id.to_string())];
        for r in assembly.routes.iter().filter(|r| r.method == "GET") {
            let path = r
                .path
                .replace("{id}", &id_for(r.path, &fixtures, &platform_ids, &tok_id.to_string()))
                .replace("{component}", "retention")
                .replace("{version}", "1");
            // A lookup without a question is a 400; ask one.
            let path = if r.path == "/api/v1/resolve" { format!("{path}?address=192.0.2.1") } else { path };
            let auth = if r.tag == "probe" { &probe_token } else { &auth };
            let (status, body) = c.api("GET", &path, auth, None).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        }
        let (status, body) = c.api("GET", "/api/openapi.json", &Auth::None, None).await;
        assert_eq!(status, StatusCode::OK);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        for r in &assembly.routes {
            assert!(doc["paths"][r.path][r.method.to_lowercase()].is_object(), "{} {} missing from OpenAPI", r.method, r.path);
            if let Some(b) = r.body {
                assert!(doc["components"]["schemas"][b].is_object(), "{} {}: schema {b} missing from OpenAPI", r.method, r.path);
            }
        }
        let ops: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(ops, assembly.routes.len(), "no method and path documented twice");
    })
    .await;
}

/// The OpenAPI document gives every operation of the union its success status with a
/// body schema (scripts/api-check checks real answers against them), and every
/// `$ref` in it names a schema that is there.
#[tokio::test]
async fn the_openapi_document_gives_every_answer_a_schema() {
    each_backend_with(mamori::components::registry, |c| async move {
        let assembly = Assembly::of(&c.state);
        let (status, body) = c.get("/api/openapi.json", &Auth::None).await;
        assert_eq!(status, StatusCode::OK);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in &assembly.routes {
            let responses = doc["paths"][r.path][r.method.to_lowercase()]["responses"].as_object().unwrap();
            let (code, schema) = r.response;
            assert!((200..300).contains(&code), "{} {}", r.method, r.path);
            let ok = &responses[&code.to_string()];
            match schema {
                Some(name) => {
                    assert!(schemas.contains_key(name), "{} {}: no schema {name}", r.method, r.path);
                    assert!(ok["content"].as_object().is_some_and(|m| m.len() == 1), "{} {}: {ok}", r.method, r.path);
                }
                None => assert!(ok.get("content").is_none()),
            }
        }
        fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("a $ref outside the schemas: {r}"));
            assert!(schemas.contains_key(name), "dangling $ref {r}");
        }
    })
    .await;
}

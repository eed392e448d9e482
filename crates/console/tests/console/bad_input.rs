//! Bad input gets a clear error (Japanese in the console) and changes nothing.

use crate::support::*;
use axum::http::{StatusCode, header};
use mamori_core::Role;
use serde_json::json;

#[tokio::test]
async fn bad_tenant_input_is_refused_with_every_problem() {
    each_backend(|c| async move {
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        // Console form: wrong check digit, katakana, overlapping ranges… all listed, in Japanese.
        let (status, _, body) = c
            .post_form(
                "/tenants",
                &s,
                &[("csrf", s.csrf()), ("code", "393412"), ("name", "テスト町"), ("kana", "test"), ("kind", "town"), ("network_ranges", "10.1.0.0/33")],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        for text in ["検査数字", "カタカナ", "CIDR"] {
            assert!(body.contains(text), "missing '{text}'");
        }
        // API: JSON with every problem.
        let (status, body) = c.api("POST", "/api/v1/tenants", &s, Some(json!({"code": "1", "name": "", "kana": "x", "kind": "metropolis"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["problems"].as_array().unwrap().len() >= 4, "{body}");
        assert!(v["message_ja"].as_str().unwrap().contains("団体コード"));
        let (status, _) = c.api("POST", "/api/v1/tenants", &s, Some(json!({"code": "393413", "unexpected": 1}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(c.state.store.list_tenants(&c.grant.scope()).await.unwrap().is_empty(), "nothing was created");
    })
    .await;
}

#[tokio::test]
async fn malformed_csv_imports_change_nothing() {
    each_backend(|c| async move {
        let existing = c.tenant("39341", "既存町", "10.66.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, tok) = c.token(op, Role::OperatorAdmin, "t").await;
        let bearer = Auth::Bearer(tok);
        let audit_before = c.state.store.verify_audit().await.unwrap().entries;
        for csv in [
            format!("code,name,kana,kind\n{},名前変更,キソンチョウ,town\n393420,新町,シンマチ,town\n999999,壊れ,コワレ,town\n", existing.code),
            "code,name\n1,2\n".to_string(),
            "\u{0}\u{1}binary".to_string(),
            "code,name,kana,kind\n\"393420,x".to_string(),
        ] {
            let req = bearer
                .apply(axum::http::Request::post("/api/v1/tenants/import"))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(axum::body::Body::from(csv))
                .unwrap();
            let (status, _, body) = c.send(req).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(body.contains("message_ja"));
        }
        let tenants = c.state.store.list_tenants(&c.grant.scope()).await.unwrap();
        assert_eq!(tenants.len(), 1);
        assert_eq!(tenants[0].name, "既存町");
        assert_eq!(c.state.store.verify_audit().await.unwrap().entries, audit_before);
        // Shift_JIS from old Excel: a clear Japanese explanation.
        let req =
            bearer.apply(axum::http::Request::post("/api/v1/tenants/import")).body(axum::body::Body::from(vec![0x83u8, 0x65, 0x83, 0x58, 0x83, 0x67])).unwrap();
        let (_, _, body) = c.send(req).await;
        assert!(body.contains("UTF-8"));
    })
    .await;
}

#[tokio::test]
async fn oversized_bodies_get_413_with_a_clear_message() {
    each_backend(|c| async move {
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, tok) = c.token(op, Role::OperatorAdmin, "t").await;
        let big = "x".repeat(300 * 1024);
        let req = Auth::Bearer(tok.clone())
            .apply(axum::http::Request::post("/api/v1/events"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, big.len())
            .body(axum::body::Body::from(big.clone()))
            .unwrap();
        let (status, _, body) = c.send(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body.contains("大きすぎます"), "{body}");
        // Without a Content-Length (chunked), the limit still holds.
        let stream = futures_body(big);
        let req = Auth::Bearer(tok).apply(axum::http::Request::post("/api/v1/tenants/import")).body(stream).unwrap();
        let (status, _, _) = c.send(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // A console page explains it in Japanese.
        let req = axum::http::Request::post("/login").header(header::CONTENT_LENGTH, 10_000_000).body(axum::body::Body::empty()).unwrap();
        let (status, _, body) = c.send(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body.contains("送信されたデータが大きすぎます"));
    })
    .await;
}

fn futures_body(s: String) -> axum::body::Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = s.into_bytes().chunks(8192).map(|c| Ok(axum::body::Bytes::copy_from_slice(c))).collect();
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn bad_event_searches_and_submissions_are_explained() {
    each_backend(|c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (status, body) = c.get("/events?from=2026-13-45&fields=a;drop%20table", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("日時「2026-13-45」を読めません"), "the page explains the bad date");
        let (status, body) = c.api("GET", "/api/v1/events?cursor=garbage", &s, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) =
            c.api("POST", "/api/v1/events", &s, Some(json!([{"class_uid": 4002, "metadata": {"tenant_uid": t.id.to_string()}}, {"class_uid": "x"}]))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("[1]"), "the bad item is named: {body}");
        assert_eq!(
            c.state
                .bus
                .events()
                .count_by_tenant(&c.grant.scope(), mamori_core::time::now_ms() - 300 * 86_400_000, mamori_core::time::now_ms() + 86_400_000, None)
                .await
                .unwrap()
                .len(),
            0,
            "nothing stored"
        );
        let (status, body) =
            c.api("POST", "/api/v1/events", &s, Some(json!({"class_uid": 4002, "message": "ok", "metadata": {"tenant_uid": t.id.to_string()}}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Bad policy: refused before it is stored, every problem listed.
        let (status, body) = c.api("PUT", &format!("/api/v1/policies/retention?tenant={}", t.id), &s, Some(json!({"events_days": 0, "typo": true}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("events_days") && body.contains("typo"), "{body}");
        assert!(c.state.store.policy(&c.grant.scope(), Some(t.id), "retention").await.unwrap().is_none());
        let (status, body) = c
            .post_form("/settings/policies", &s, &[("csrf", s.csrf()), ("component", "retention"), ("tenant", &t.id.to_string()), ("document", "{not json")])
            .await
            .into_pair();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("JSON として読めません"));
    })
    .await;
}

trait Pair {
    fn into_pair(self) -> (StatusCode, String);
}
impl Pair for (StatusCode, axum::http::HeaderMap, String) {
    fn into_pair(self) -> (StatusCode, String) {
        (self.0, self.2)
    }
}

/// Issue 9: a bad query or path parameter is a JSON error naming it (never axum's
/// plain-text 400, never silently ignored), and PUT never resets what it omits.
#[tokio::test]
async fn bad_parameters_are_json_errors_and_put_never_resets_omitted_fields() {
    each_backend(|c| async move {
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, token) = c.token(op, Role::OperatorAdmin, "op").await;
        let auth = Auth::Bearer(token);
        for path in [
            "/api/v1/audit?limit=many",
            "/api/v1/audit?before=yesterday",
            "/api/v1/events?limit=abc",
            "/api/v1/users?tenant=not-a-tenant",
            "/api/v1/audit?tenant=not-a-tenant",
            "/api/v1/policies/retention/versions/x/approve",
        ] {
            let method = if path.ends_with("approve") { "POST" } else { "GET" };
            let (status, body) = c.api(method, path, &auth, None).await;
            assert!(status.is_client_error(), "{path}: {status}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path} answered no JSON: {body}"));
            assert!(v["error"].is_string() && v["message_ja"].is_string(), "{path}: {body}");
        }
        // The same on a page: an error page in Japanese, not plain text.
        let s = c.login_operator_bypass(op).await;
        let (status, page) = c.get("/audit?before=yesterday", &s).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("URL のパラメータが正しくありません"), "{page}");

        // PUT with a partial body is refused and changes nothing…
        let (status, _) = c.api("PATCH", "/api/v1/settings/auth", &auth, Some(json!({"lockout_minutes": 45}))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = c.api("PUT", "/api/v1/settings/auth", &auth, Some(json!({"lockout_threshold": 7}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("missing_fields") && body.contains("lockout_minutes"), "{body}");
        let (_, body) = c.api("GET", "/api/v1/settings/auth", &auth, None).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v["lockout_threshold"].as_i64(), v["lockout_minutes"].as_i64()), (Some(5), Some(45)), "{body}");
        // …a PATCH changes only what it names, and a full PUT replaces everything.
        let (status, _) = c.api("PATCH", "/api/v1/settings/auth", &auth, Some(json!({"lockout_threshold": 7}))).await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = c.api("GET", "/api/v1/settings/auth", &auth, None).await;
        let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v["lockout_threshold"].as_i64(), v["lockout_minutes"].as_i64()), (Some(7), Some(45)), "{body}");
        v["session_idle_minutes"] = json!(60);
        let (status, body) = c.api("PUT", "/api/v1/settings/auth", &auth, Some(v)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A tenant: PUT without its ranges is refused; PATCH of the name keeps them.
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let path = format!("/api/v1/tenants/{}", t.id);
        let (status, body) = c.api("PUT", &path, &auth, Some(json!({"code": t.code.to_string(), "name": "新市", "kana": "シンシ", "kind": "city"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("network_ranges"), "{body}");
        let (status, body) = c.api("PATCH", &path, &auth, Some(json!({"name": "新市"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after = c.state.store.get_tenant(&c.grant.scope(), t.id).await.unwrap().unwrap();
        assert_eq!(after.name, "新市");
        assert_eq!(after.network_ranges, t.network_ranges, "the ranges stay");
    })
    .await;
}

//! Legal holds (証拠保全) from the console and the API: operators place and release
//! them, everyone who reads events sees those of their scope, tenants change nothing,
//! and every change is in the audit log.

use crate::support::*;
use axum::http::StatusCode;
use mamori_core::Role;
use serde_json::{Value, json};

#[tokio::test]
async fn operators_place_and_release_holds_and_tenants_see_only_theirs() {
    each_backend(|c| async move {
        let a = c.tenant("39341", "甲市", "10.66.0.0/24").await;
        let b = c.tenant("39342", "乙町", "10.67.0.0/24").await;
        let op = c.user("soc", "SOC", Role::SocAnalyst, None).await;
        let (_, op_token) = c.token(op, Role::SocAnalyst, "soc").await;
        let op_api = Auth::Bearer(op_token);
        let admin_a = c.user("admin-a", "甲管理者", Role::TenantAdmin, Some(a.id)).await;
        let (_, a_token) = c.token(admin_a, Role::TenantAdmin, "a").await;
        let a_api = Auth::Bearer(a_token);

        // Bad input: every problem at once, nothing placed.
        let (status, body) =
            c.api("POST", "/api/v1/holds", &op_api, Some(json!({"tenant_id": a.id, "from": "someday", "to": "2026-13-01", "reason": "x"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("\"from\"") && body.contains("\"to\""), "{body}");
        let (status, body) =
            c.api("POST", "/api/v1/holds", &op_api, Some(json!({"tenant_id": a.id, "from": "2026-11-02", "to": "2026-11-01", "reason": " "}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("invalid_range") && body.contains("invalid_reason"), "{body}");

        // An operator places holds on both; a date alone as `to` is the end of that day (JST).
        let (status, body) = c
            .api(
                "POST",
                "/api/v1/holds",
                &op_api,
                Some(json!({"tenant_id": a.id, "from": "2026-11-01", "to": "2026-11-30", "reason": "不正アクセス事案の調査", "reference": "令和8年第12号"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let hold_a: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(hold_a["to_ms"].as_i64(), mamori_core::time::end_of_day_jst("2026-11-30"));
        assert!(hold_a["created_by"].as_str().unwrap().starts_with("soc"), "{hold_a}");
        let (status, _) =
            c.api("POST", "/api/v1/holds", &op_api, Some(json!({"tenant_id": b.id, "from": "2026-10-01", "to": "2026-10-31", "reason": "乙町の保全"}))).await;
        assert_eq!(status, StatusCode::CREATED);

        // A tenant admin sees its own hold only, and may not place or release one.
        let (status, body) = c.api("GET", "/api/v1/holds", &a_api, None).await;
        assert_eq!(status, StatusCode::OK);
        let seen: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(seen.len(), 1, "{body}");
        assert_eq!(seen[0]["tenant"], a.id.to_string());
        let (status, _) =
            c.api("POST", "/api/v1/holds", &a_api, Some(json!({"tenant_id": a.id, "from": "2026-01-01", "to": "2026-01-02", "reason": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let id = hold_a["id"].as_str().unwrap();
        let (status, _) = c.api("POST", &format!("/api/v1/holds/{id}/release"), &a_api, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // The page lists them; the operator releases A's through its form (confirmation required).
        let s = c.login_operator_bypass(op).await;
        let (status, page) = c.get("/events/holds", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("不正アクセス事案の調査") && page.contains("令和8年第12号") && page.contains("乙町の保全"), "{page}");
        let csrf = s.csrf().to_string();
        let (status, _, page) = c.post_form(&format!("/events/holds/{id}/release"), &s, &[("csrf", &csrf)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        let (status, _, _) = c.post_form(&format!("/events/holds/{id}/release"), &s, &[("csrf", &csrf), ("confirm", "on")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (_, page) = c.get("/events/holds", &s).await;
        assert!(!page.contains("不正アクセス事案の調査"), "released holds are hidden by default");
        let (_, page) = c.get("/events/holds?all=1", &s).await;
        assert!(page.contains("不正アクセス事案の調査") && page.contains("解除済み"), "and kept as a record");
        let (_, body) = c.api("GET", "/api/v1/holds?all=true", &op_api, None).await;
        let all: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert!(all.iter().any(|h| h["id"] == id && h["released_by"].as_str().is_some_and(|b| b.starts_with("soc"))), "{body}");

        // A hold placed through the form, with a bad range kept in the form.
        let tenant = b.id.to_string();
        let (status, _, page) = c
            .post_form("/events/holds", &s, &[("csrf", &csrf), ("tenant", &tenant), ("from", "2026-12-01"), ("to", "2026-11-01"), ("reason", "フォームから")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("フォームから"), "what was typed stays");
        let (status, _, _) = c
            .post_form("/events/holds", &s, &[("csrf", &csrf), ("tenant", &tenant), ("from", "2026-11-01"), ("to", "2026-11-02"), ("reason", "フォームから")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        // Every change is audited.
        let (_, body) = c.api("GET", "/api/v1/audit?action=events.", &op_api, None).await;
        let entries: Vec<Value> = serde_json::from_str(&body).unwrap();
        let actions: Vec<&str> = entries.iter().map(|x| x["action"].as_str().unwrap_or("")).collect();
        assert_eq!(actions.iter().filter(|a| **a == "events.hold").count(), 3, "{body}");
        assert_eq!(actions.iter().filter(|a| **a == "events.release").count(), 1, "{body}");
    })
    .await;
}

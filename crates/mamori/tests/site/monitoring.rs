//! The monitor's pages and API as the assembled console serves them.

use axum::http::StatusCode;
use mamori_console::testing::*;
use mamori_core::Role;
use serde_json::json;

/// A monitor that was never checked shows no availability (not 100%), and no month
/// before it existed.
#[tokio::test]
async fn a_never_checked_monitor_has_no_uptime() {
    each_backend_with(mamori::components::registry, |c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let spec: mamori_core::monitor::MonitorSpec =
            serde_json::from_value(json!({"name": "庁内", "check": {"type": "tcp", "host": "192.0.2.1", "port": 1}})).unwrap();
        let m = c.state.store.create_monitor(&c.grant.scope(), &mamori_core::Actor::system(), t.id, spec).await.unwrap();
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, token) = c.token(op, Role::OperatorAdmin, "op").await;
        let auth = Auth::Bearer(token);
        let (status, body) = c.api("GET", "/api/v1/monitors", &auth, None).await;
        assert_eq!(status, StatusCode::OK);
        let board: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(board[0]["uptime_30d"], serde_json::Value::Null, "{body}");
        let (_, body) = c.api("GET", &format!("/api/v1/monitors/{}/uptime", m.id), &auth, None).await;
        assert_eq!(body, "[]");
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get(&format!("/monitors/{}", m.id), &s).await;
        assert!(page.contains("まだ一度も確認していない"), "{page}");
        let (_, page) = c.get("/monitors", &s).await;
        assert!(page.contains("確認前") && page.contains("状態の意味"), "the board explains its states");
        assert!(page.contains("href=\"/monitors\"") && page.contains("href=\"/faults\""), "the monitor's navigation entries");
        // A bad month count is a JSON error naming it.
        let (status, body) = c.api("GET", &format!("/api/v1/monitors/{}/uptime?months=99", m.id), &auth, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("months"), "{body}");
    })
    .await;
}

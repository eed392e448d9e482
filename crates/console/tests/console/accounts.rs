//! Accounts beyond the municipality's own staff (issue "Platform v2", Deliver 2): a
//! maintenance vendor (保守業者, the remote maintenance of F33) reaches only the
//! municipalities named on the account, and only until the account expires; the prefecture's approver (県の承認者) decides on
//! policy changes that need approval.

use crate::support::*;
use axum::http::StatusCode;
use mamori_core::Role;
use serde_json::json;

#[tokio::test]
async fn f33_a_maintenance_vendor_reaches_its_named_tenants_and_cannot_log_in_once_expired() {
    each_backend(|c| async move {
        let a = c.tenant("39301", "東町", "10.1.0.0/16").await;
        let b = c.tenant("39302", "西町", "10.2.0.0/16").await;
        let other = c.tenant("39303", "南町", "10.3.0.0/16").await;
        c.user("ops-admin", "運用 太郎", Role::OperatorAdmin, None).await;
        let op = c.login("ops-admin", PASSWORD).await;

        // An operator names the vendor's municipalities and its last day; without a
        // date the account is refused, in Japanese.
        let (status, body) = c
            .api(
                "POST",
                "/api/v1/users",
                &op,
                Some(json!({"username": "vendor1", "display_name": "保守 一郎", "role": "maintenance_vendor", "tenants": [a.id, b.id], "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("有効期限が必要"), "{body}");
        let form = [
            ("csrf", op.csrf()),
            ("username", "vendor1"),
            ("display_name", "保守 一郎"),
            ("role", "maintenance_vendor"),
            ("tenant", ""),
            ("vendor_tenant", &a.id.to_string()),
            ("vendor_tenant", &b.id.to_string()),
            ("expires_on", "2199-12-31"),
        ];
        let (status, _, page) = c.post_form("/users", &op, &form).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let i = page.find("id=\"one-time-password\">").unwrap() + "id=\"one-time-password\">".len();
        let once = page[i..].split('<').next().unwrap().to_string();
        let user = c.state.store.login_record("vendor1").await.unwrap().unwrap().user;
        assert_eq!(user.tenants.len(), 2);
        assert_eq!(user.expires_at, mamori_core::time::end_of_day_jst("2199-12-31"));
        // The account page says whom the vendor serves and until when.
        let (_, page) = c.get(&format!("/users/{}", user.id), &op).await;
        assert!(page.contains("担当: ") && page.contains("東町") && page.contains("西町") && page.contains("2199-12-31"), "{page}");

        // The vendor logs in (its one-time password set to the test's own here; the
        // forced change is the auth flow tests' concern), enrolls TOTP, which a vendor
        // must, and sees its two municipalities only.
        assert!(!once.is_empty());
        let hash = c.state.hasher().hash(PASSWORD).unwrap();
        c.state.store.set_password(&c.grant.scope(), c.grant.actor(), user.id, &hash, false, None).await.unwrap();
        let v = c.login("vendor1", PASSWORD).await;
        assert!(c.state.store.login_record("vendor1").await.unwrap().unwrap().user.totp_enabled, "a vendor must use TOTP");
        let (status, body) = c.api("GET", "/api/v1/tenants", &v, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("東町") && body.contains("西町") && !body.contains("南町"), "{body}");
        assert_eq!(c.api("GET", &format!("/api/v1/tenants/{}", other.id), &v, None).await.0, StatusCode::NOT_FOUND);
        let (_, page) = c.get("/tenants", &v).await;
        assert!(page.contains("東町") && !page.contains("南町"), "{page}");
        assert_eq!(c.api("GET", "/api/v1/users", &v, None).await.0, StatusCode::FORBIDDEN, "a vendor manages no accounts");
        assert_eq!(c.api("POST", "/api/v1/tenants", &v, Some(json!({}))).await.0, StatusCode::FORBIDDEN);

        // The contract ends: the operator sets the last day in the past. The vendor's
        // session stops working at once, and a correct password gets a plain answer.
        let (status, body) = c.api("PATCH", &format!("/api/v1/users/{}", user.id), &op, Some(json!({"expires_on": "2020-03-31"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(c.api("GET", "/api/v1/tenants", &v, None).await.0, StatusCode::UNAUTHORIZED);
        let (status, _, page) = c.post_form("/login", &Auth::None, &[("username", "vendor1"), ("password", PASSWORD)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("有効期限（2020-03-31まで）が過ぎたため、ログインできません"), "{page}");
        // A wrong password says nothing about the account.
        let (status, _, page) = c.post_form("/login", &Auth::None, &[("username", "vendor1"), ("password", "wrong-password-123")]).await;
        assert_ne!(status, StatusCode::FORBIDDEN);
        assert!(!page.contains("有効期限"));
        let (_, page) = c.get("/users", &op).await;
        assert!(page.contains("期限切れ"), "the list shows the account expired");
        let audit = c.state.store.list_audit(&c.grant.scope(), &mamori_store::AuditFilter::default(), None, 200).await.unwrap();
        assert!(audit.iter().any(|e| e.action == "user.update" && e.target_id.as_deref() == Some(&user.id.to_string())));
    })
    .await;
}

#[tokio::test]
async fn only_operator_admins_create_vendors_and_approvers() {
    each_backend(|c| async move {
        let a = c.tenant("39301", "東町", "10.1.0.0/16").await;
        c.user("town-admin", "東町 管理者", Role::TenantAdmin, Some(a.id)).await;
        let admin = c.login("town-admin", PASSWORD).await;
        for role in ["maintenance_vendor", "prefecture_approver"] {
            let body = json!({"username": format!("x-{role}"), "display_name": "X", "role": role, "tenants": [a.id], "expires_on": "2199-01-01", "password": PASSWORD});
            assert_eq!(c.api("POST", "/api/v1/users", &admin, Some(body)).await.0, StatusCode::FORBIDDEN, "{role}");
        }
        let (_, page) = c.get("/users/new", &admin).await;
        assert!(!page.contains("maintenance_vendor") && !page.contains("担当団体"), "the form offers no vendor to a tenant admin");
    })
    .await;
}

#[tokio::test]
async fn policy_changes_of_a_component_that_needs_approval_wait_for_the_prefectures_approver() {
    each_backend(|c| async move {
        let a = c.tenant("39301", "東町", "10.1.0.0/16").await;
        let b = c.tenant("39302", "西町", "10.2.0.0/16").await;
        c.user("ops-admin", "運用 太郎", Role::OperatorAdmin, None).await;
        c.user("a-admin", "東町 管理者", Role::TenantAdmin, Some(a.id)).await;
        c.user("b-admin", "西町 管理者", Role::TenantAdmin, Some(b.id)).await;
        c.user("approver1", "県 承認者", Role::PrefectureApprover, None).await;
        let (ops, admin, other, approver) = (
            c.login("ops-admin", PASSWORD).await,
            c.login("a-admin", PASSWORD).await,
            c.login("b-admin", PASSWORD).await,
            c.login("approver1", PASSWORD).await,
        );
        let in_force = |t| {
            let (store, scope) = (c.state.store.clone(), c.grant.scope());
            async move { store.policy(&scope, Some(t), "retention").await.unwrap().map(|p| p.document["events_days"].clone()) }
        };

        // Only operator admins turn approval on for a component.
        let on = Some(json!({"required": true}));
        assert_eq!(c.api("PUT", "/api/v1/policies/retention/approval", &admin, on.clone()).await.0, StatusCode::FORBIDDEN);
        assert_eq!(c.api("PUT", "/api/v1/policies/retention/approval", &ops, on).await.0, StatusCode::OK);
        let (_, body) = c.api("GET", "/api/v1/policies/retention/approval", &admin, None).await;
        assert!(body.contains("\"required\":true"), "{body}");

        // The tenant admin's change is saved, waiting; the policy in force stays.
        let (status, body) = c.api("PUT", &format!("/api/v1/policies/retention?tenant={}", a.id), &admin, Some(json!({"events_days": 500}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("\"approval\":\"pending\""), "{body}");
        assert_eq!(in_force(a.id).await, None);
        // Approving is the prefecture's: not the submitter, not an operator admin.
        for who in [&admin, &ops] {
            let (status, _) = c.api("POST", &format!("/api/v1/policies/retention/versions/1/approve?tenant={}", a.id), who, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        // The approver sees what it changes; another municipality sees nothing of it.
        let (_, body) = c.api("GET", "/api/v1/approvals", &approver, None).await;
        assert!(body.contains("events_days") && body.contains("500") && body.contains("365"), "{body}");
        let (_, body) = c.api("GET", "/api/v1/approvals", &other, None).await;
        assert_eq!(body, "[]");
        let (_, page) = c.get("/approvals", &approver).await;
        assert!(page.contains("東町") && page.contains("承認して適用する"), "{page}");
        let (_, page) = c.get("/approvals", &admin).await;
        assert!(page.contains("東町") && !page.contains("承認して適用する"), "the submitter sees it wait, without the buttons");

        // A rejection needs a reason and leaves the policy as it was, for good.
        let reject = format!("/api/v1/policies/retention/versions/1/reject?tenant={}", a.id);
        let (status, body) = c.api("POST", &reject, &approver, Some(json!({"note": ""}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("却下する理由"), "{body}");
        let (status, body) = c.api("POST", &reject, &approver, Some(json!({"note": "保存期間の延長は来年度の予算確定後に"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        c.state.store.activate_due_policies().await.unwrap();
        assert_eq!(in_force(a.id).await, None, "a rejected version never takes effect");
        let (_, page) = c.get(&format!("/settings/policies?component=retention&tenant={}", a.id), &admin).await;
        assert!(page.contains("却下") && page.contains("来年度の予算確定後に"), "the submitter reads why");

        // Submitted again through the console, approved through the console: in force.
        let form =
            [("csrf", admin.csrf()), ("component", "retention"), ("tenant", &a.id.to_string()), ("document", "{\"events_days\": 600}"), ("confirm", "1")];
        let (status, _, page) = c.post_form("/settings/policies", &admin, &form).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("承認待ちとして保存しました"), "{page}");
        let decide =
            [("csrf", approver.csrf()), ("component", "retention"), ("tenant", &a.id.to_string()), ("version", "2"), ("decision", "approve"), ("note", "")];
        let (status, headers, _) = c.post_form("/approvals", &approver, &decide).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers.get("location").unwrap(), "/approvals?done=approved");
        assert_eq!(in_force(a.id).await, Some(json!(600)));
        // Deciding twice is refused.
        let (status, _, _) = c.post_form("/approvals", &approver, &decide).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // An approved change scheduled for later waits for its time.
        let later = mamori_core::time::format_rfc3339(mamori_core::time::now_ms() + 3_600_000);
        let (status, body) =
            c.api("PUT", &format!("/api/v1/policies/retention?tenant={}&effective_at={}", a.id, enc(&later)), &admin, Some(json!({"events_days": 700}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = c.api("POST", &format!("/api/v1/policies/retention/versions/3/approve?tenant={}", a.id), &approver, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("\"approval\":\"approved\"") && body.contains("\"revision\":-"), "{body}");
        c.state.store.activate_due_policies().await.unwrap();
        assert_eq!(in_force(a.id).await, Some(json!(600)), "not before its time");

        let audit = c
            .state
            .store
            .list_audit(&c.grant.scope(), &mamori_store::AuditFilter { action: Some("policy.".into()), ..Default::default() }, None, 50)
            .await
            .unwrap();
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        for want in ["policy.submit", "policy.reject", "policy.approve"] {
            assert!(actions.contains(&want), "{want} in {actions:?}");
        }
        assert!(audit.iter().any(|e| e.action == "policy.approve" && e.actor_name == "approver1"));
    })
    .await;
}

//! What people read on the platform's pages: search that folds kana and width, audit
//! actions with Japanese labels.

use crate::support::*;
use axum::http::StatusCode;
use mamori_core::Role;

#[tokio::test]
async fn hiragana_finds_katakana_and_audit_actions_have_labels() {
    each_backend(|c| async move {
        let mut input = tenant_input("39341", "桜川市", "10.66.0.0/24");
        input.kana = "サクラガワシ".into();
        c.state.store.create_tenant(&c.grant.scope(), &mamori_core::Actor::system(), input.check().unwrap()).await.unwrap();
        c.tenant("39342", "別町", "10.67.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        for q in ["%E3%81%95%E3%81%8F%E3%82%89", "%E3%82%B5%E3%82%AF%E3%83%A9", "%EF%BC%93%EF%BC%99%EF%BC%93%EF%BC%94"] {
            // さくら, サクラ, ３９３４ (full-width digits of the code)
            let (status, page) = c.get(&format!("/tenants?q={q}"), &s).await;
            assert_eq!(status, StatusCode::OK);
            assert!(page.contains("桜川市"), "q={q}");
            assert!(!page.contains("別町") || q.starts_with("%EF"), "q={q} finds only the match");
        }
        let (_, page) = c.get("/audit", &s).await;
        assert!(page.contains("団体の登録") && page.contains("<code>tenant.create</code>"), "label beside the code");
    })
    .await;
}

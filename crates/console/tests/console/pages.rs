//! What people read on the platform's pages: search that folds kana and width, audit
//! actions with Japanese labels, the account list as a sortable table.

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
        // The account list sorts by a heading and exports the same rows.
        c.user("zz-last", "最後", Role::SocAnalyst, None).await;
        let (_, page) = c.get("/users?sort=username&dir=desc", &s).await;
        assert!(page.find(">zz-last<").unwrap() < page.find(">ope<").unwrap(), "descending by login name");
        assert!(page.contains("aria-sort=\"descending\""));
        let (status, csv) = c.get("/users?format=csv&sort=username", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(csv.starts_with("\u{feff}ログイン名,表示名,ロール,所属団体,二要素認証,状態,最終ログイン\r\nope,"), "{csv}");
        let (status, _) = c.get("/users?tenant=nonsense", &s).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a bad tenant filter is an error, not every account");
        let (_, page) = c.get("/audit", &s).await;
        assert!(page.contains("団体の登録") && page.contains("<code>tenant.create</code>"), "label beside the code");
    })
    .await;
}

/// The audit page leaves out the notes of operators' list views (`access.cross_tenant`)
/// unless asked for; the API and the CSV export keep every entry.
#[tokio::test]
async fn the_audit_page_hides_reads_unless_asked() {
    each_backend(|c| async move {
        c.tenant("39341", "桜川市", "10.66.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (status, _) = c.get("/tenants", &s).await;
        assert_eq!(status, StatusCode::OK);
        let (_, page) = c.get("/audit", &s).await;
        assert!(!page.contains("<code>access.cross_tenant</code>"), "reads are left out by default");
        assert!(page.contains("閲覧の記録も表示"), "{page}");
        let (_, page) = c.get("/audit?reads=1", &s).await;
        assert!(page.contains("<code>access.cross_tenant</code>"), "shown when asked: {page}");
        let (_, page) = c.get("/audit?action=access.", &s).await;
        assert!(page.contains("<code>access.cross_tenant</code>"), "shown when asked for by name");
        let (_, csv) = c.get("/audit/export.csv", &s).await;
        assert!(csv.contains("access.cross_tenant"), "the export has every entry");
        let (_, token) = c.token(op, Role::OperatorAdmin, "op").await;
        let (_, body) = c.api("GET", "/api/v1/audit", &Auth::Bearer(token), None).await;
        assert!(body.contains("access.cross_tenant"), "the API has every entry");
    })
    .await;
}

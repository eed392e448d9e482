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

/// Every list is a table sorted by its headings and exported with the filters it
/// shows: tenants (in the form the import reads), the audit log (paged by sequence
/// number, exported and audited) and event search (paged by cursor, exported whole).
#[tokio::test]
async fn tenants_audit_and_events_sort_page_and_export() {
    each_backend(|c| async move {
        let tenant = |five: &'static str, name: &'static str, kana: &'static str, range: &'static str| {
            let c = &c;
            async move {
                let t = mamori_core::NewTenant { kana: kana.into(), ..tenant_input(five, name, range) };
                c.state.store.create_tenant(&c.grant.scope(), &mamori_core::Actor::system(), t.check().unwrap()).await.unwrap()
            }
        };
        let a = tenant("39341", "桜川市", "サクラガワシ", "10.66.0.0/24").await;
        tenant("39342", "別町", "ベツチョウ", "10.67.0.0/24").await;
        tenant("39343", "青空村", "アオゾラムラ", "10.68.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;

        // Tenants: by code unless asked; by name (in the order of the reading) when asked.
        let (_, page) = c.get("/tenants", &s).await;
        assert!(page.find("桜川市").unwrap() < page.find("別町").unwrap(), "by code: {page}");
        let (_, page) = c.get("/tenants?sort=name&dir=asc", &s).await;
        let (aozora, betsu, sakura) = (page.find("青空村").unwrap(), page.find("別町").unwrap(), page.find("桜川市").unwrap());
        assert!(aozora < sakura && sakura < betsu, "アオゾラ, サクラガワ, ベツ");
        assert!(page.contains(r#"href="/tenants/export.csv?sort=name&amp;dir=asc""#), "the export has the list's order: {page}");
        let (status, csv) = c.get("/tenants/export.csv?q=%E3%81%95%E3%81%8F%E3%82%89", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(csv.contains("桜川市") && !csv.contains("別町"), "the export has the search's tenants only: {csv}");
        let rows = mamori_console::import_tenants_csv(csv.as_bytes()).expect("the export re-imports");
        assert_eq!(rows.len(), 1);
        let (_, csv) = c.get("/tenants?format=csv&sort=code&dir=desc", &s).await;
        assert!(csv.find("青空村").unwrap() < csv.find("桜川市").unwrap(), "{csv}");

        // The audit log: 100 entries a page, the next page by sequence number, sorted
        // within a page, exported with its filters.
        let actor = mamori_core::Actor::system();
        for i in 0..105 {
            let change = mamori_store::Change {
                actor: &actor,
                tenant: Some(a.id),
                action: if i % 2 == 0 { "setting.update" } else { "tenant.update" },
                target_kind: "setting",
                target_id: Some(format!("k{i}")),
                before: None,
                after: None,
            };
            c.state.store.record(change).await.unwrap();
        }
        let (_, page) = c.get(&format!("/audit?tenant={}", a.id), &s).await;
        assert!(page.contains("100 件を表示"), "{page}");
        let next = page.split(r#"" rel="next""#).next().and_then(|p| p.rsplit("href=\"").next()).unwrap().replace("&amp;", "&");
        assert!(next.starts_with("/audit?") && next.contains("before=") && next.contains(&format!("tenant={}", a.id)), "{next}");
        let (_, older) = c.get(&next, &s).await;
        assert!(older.contains("件を表示") && older.contains("rel=\"first\"") && !older.contains("rel=\"next\""), "{older}");
        let (_, sorted) = c.get(&format!("/audit?tenant={}&sort=action&dir=asc", a.id), &s).await;
        let (setting, tenant) = (sorted.find("<code>setting.update</code>").unwrap(), sorted.find("<code>tenant.update</code>").unwrap());
        assert!(setting < tenant, "by the action code: setting.update before tenant.update");
        let (_, only) = c.get("/audit?action=tenant.", &s).await;
        assert!(only.contains("href=\"/audit/export.csv?action=tenant.\""), "the export link keeps the filter: {only}");
        let (_, csv) = c.get("/audit/export.csv?action=tenant.&sort=seq&dir=desc", &s).await;
        assert!(!csv.contains("setting.update") && csv.contains("tenant.update"), "{csv}");
        let seqs: Vec<i64> = csv.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect();
        assert!(seqs.len() >= 52 && seqs.windows(2).all(|w| w[0] > w[1]), "newest first, as asked: {seqs:?}");
        let (_, page) = c.get("/audit?action=audit.export", &s).await;
        assert!(page.contains("<code>audit.export</code>"), "the export is in the log");

        // Events: sorted within the page; the export has every match with its id.
        for (sev, msg) in [(2, "ev-low"), (5, "ev-high"), (3, "ev-mid")] {
            let ev = serde_json::json!({"class_uid": 4002, "severity_id": sev, "message": msg, "metadata": {"tenant_uid": a.id.to_string()}, "src_endpoint": {"ip": "192.0.2.7", "port": 443}});
            let (status, body) = c.api("POST", "/api/v1/events", &s, Some(ev)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        c.state.bus.searchable().await;
        let from = mamori_core::time::now_ms() - 86_400_000;
        let (_, page) = c.get(&format!("/events?from={from}&sort=severity&dir=desc"), &s).await;
        let (high, mid, low) = (page.find("ev-high").expect(&page), page.find("ev-mid").unwrap(), page.find("ev-low").unwrap());
        assert!(high < mid && mid < low, "by severity, highest first");
        assert!(page.contains("192.0.2.7:443"));
        let (status, csv) = c.get(&format!("/events?from={from}&format=csv&sort=severity"), &s).await;
        assert_eq!(status, StatusCode::OK);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("\u{feff}日時,団体,種類,重大度,処理,送信元,宛先,内容,製品,イベント ID,日時（UTC）"), "{csv}");
        assert_eq!(lines.len(), 4, "every match: {csv}");
        assert!(lines[1].contains("ev-low") && lines[3].contains("ev-high"), "in the order asked: {csv}");
        let (status, body) = c.get("/events?from=someday&format=csv", &s).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a bad search is explained, not exported: {body}");
    })
    .await;
}

//! Config store behavior, run against SQLite and PostgreSQL alike.

use mamori_core::{Actor, NewTenant, Role, TenantId, UserId};
use mamori_store::{AuditFilter, NewUser, Store, StoreError, UserFilter, UserPatch};
use mamori_store::{CrossTenant, NewSession, SessionStage};
use serde_json::json;

fn city(code5: &str, name: &str, range: &str) -> mamori_core::CheckedTenant {
    NewTenant {
        code: mamori_core::LocalGovCode::from_five(code5).unwrap().to_string(),
        name: name.into(),
        kana: "テスト".into(),
        kind: "city".into(),
        network_ranges: vec![range.into()],
        ..Default::default()
    }
    .check()
    .unwrap()
}

fn new_user(name: &str, role: Role, tenant: Option<TenantId>) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: name.into(),
        email: String::new(),
        role,
        tenant_id: tenant,
        password_hash: "x".into(),
        must_change_password: false,
        tenants: Vec::new(),
        expires_at: None,
    }
}

/// Stores a fully logged-in session of `user`; returns its id hash.
async fn full_session(store: &Store, user: UserId) -> String {
    let id_hash = format!("{:064x}", rand_id());
    let now = mamori_core::time::now_ms();
    let s = NewSession {
        id_hash: id_hash.clone(),
        user_id: user,
        stage: SessionStage::Full,
        csrf: "c".into(),
        created_at: now,
        expires_at: now + 3_600_000,
        ip: "127.0.0.1".into(),
    };
    store.create_session(s, "test").await.unwrap();
    id_hash
}

fn rand_id() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store, CrossTenant) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in mamori_store::testing::backends(dir.path()).await {
        eprintln!("backend: {name}");
        let (store, authority) = Store::open(&url).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        f(store.clone(), grant).await;
        store.close().await;
    }
}

#[tokio::test]
async fn tenants_are_created_scoped_and_audited() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        let a = store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, city("13102", "中央区", "198.51.100.0/24")).await.unwrap();
        // Duplicate code and overlapping ranges are refused with clear problems.
        match store.create_tenant(&grant.scope(), &actor, city("13101", "X", "203.0.113.0/24")).await {
            Err(StoreError::Invalid(p)) => assert_eq!(p.0[0].code, "duplicate_code"),
            other => panic!("{other:?}"),
        }
        match store.create_tenant(&grant.scope(), &actor, city("13103", "港区", "192.0.2.128/25")).await {
            Err(StoreError::Invalid(p)) => assert_eq!(p.0[0].code, "range_overlap"),
            other => panic!("{other:?}"),
        }
        // A tenant scope sees only its own tenant and cannot create or change tenants.
        let scope_a = grant.tenant(a.id);
        let seen: Vec<_> = store.list_tenants(&scope_a).await.unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(seen, vec![a.id]);
        assert!(store.get_tenant(&scope_a, b.id).await.unwrap().is_none());
        assert!(store.tenant_by_code(&scope_a, &b.code.to_string()).await.unwrap().is_none());
        assert!(matches!(store.create_tenant(&scope_a, &actor, city("13104", "新宿区", "203.0.113.0/24")).await, Err(StoreError::Forbidden(_))));
        assert!(matches!(store.update_contacts(&scope_a, &actor, b.id, vec![]).await, Err(StoreError::NotFound)));
        assert_eq!(store.list_tenants(&grant.scope()).await.unwrap().len(), 2);
        // Updating writes before and after into the audit log.
        let changed = city("13101", "千代田区役所", "192.0.2.0/24");
        store.update_tenant(&grant.scope(), &actor, a.id, changed).await.unwrap();
        let log = store.list_audit(&grant.scope(), &AuditFilter::default(), None, 10).await.unwrap();
        assert_eq!(log[0].action, "tenant.update");
        assert_eq!(log[0].before.as_ref().unwrap()["name"], "千代田区");
        assert_eq!(log[0].after.as_ref().unwrap()["name"], "千代田区役所");
        // The tenant's own audit view holds only its entries.
        let own = store.list_audit(&scope_a, &AuditFilter::default(), None, 100).await.unwrap();
        assert!(own.iter().all(|e| e.tenant_id.as_deref() == Some(a.id.to_string().as_str())));
        assert!(store.verify_audit().await.unwrap().first_bad.is_none());
    })
    .await;
}

#[tokio::test]
async fn import_is_all_or_nothing() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let rows =
            vec![city("13101", "千代田区（更新）", "192.0.2.0/24"), city("13102", "中央区", "198.51.100.0/24"), city("13103", "港区", "198.51.100.0/25")];
        assert!(store.import_tenants(&grant.scope(), &actor, rows).await.is_err(), "overlap in the last row");
        let names: Vec<_> = store.list_tenants(&grant.scope()).await.unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["千代田区"], "nothing changed");
        let rows = vec![city("13101", "千代田区（更新）", "192.0.2.0/24"), city("13102", "中央区", "198.51.100.0/24")];
        let report = store.import_tenants(&grant.scope(), &actor, rows).await.unwrap();
        assert_eq!((report.created, report.updated), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn users_stay_in_their_tenant() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        let a = store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, city("13102", "中央区", "198.51.100.0/24")).await.unwrap();
        let ua = store.create_user(&grant.scope(), &actor, new_user("admin-a", Role::TenantAdmin, Some(a.id))).await.unwrap();
        let ub = store.create_user(&grant.scope(), &actor, new_user("admin-b", Role::TenantAdmin, Some(b.id))).await.unwrap();
        let op = store.create_user(&grant.scope(), &actor, new_user("operator", Role::OperatorAdmin, None)).await.unwrap();
        let sa = grant.tenant(a.id);
        let listed: Vec<_> = store.list_users(&sa, &UserFilter::default()).await.unwrap().into_iter().map(|u| u.id).collect();
        assert_eq!(listed, vec![ua.id]);
        assert!(store.get_user(&sa, ub.id).await.unwrap().is_none());
        assert!(store.get_user(&sa, op.id).await.unwrap().is_none(), "operators are outside every tenant");
        // A tenant admin cannot create accounts elsewhere, operator accounts, or move an account out.
        assert!(store.create_user(&sa, &actor, new_user("x1", Role::TenantUser, Some(b.id))).await.is_err());
        assert!(store.create_user(&sa, &actor, new_user("x2", Role::Auditor, None)).await.is_err());
        assert!(store.update_user(&sa, &actor, ua.id, UserPatch { tenant_id: Some(Some(b.id)), ..Default::default() }).await.is_err());
        assert!(matches!(store.update_user(&sa, &actor, ub.id, UserPatch { disabled: Some(true), ..Default::default() }).await, Err(StoreError::NotFound)));
        assert!(matches!(store.set_password(&sa, &actor, ub.id, "h", true, None).await, Err(StoreError::NotFound)));
        assert!(matches!(store.delete_user(&sa, &actor, op.id).await, Err(StoreError::NotFound)));
        // Role and tenant must agree; names are unique.
        assert!(store.create_user(&grant.scope(), &actor, new_user("x3", Role::TenantUser, None)).await.is_err());
        assert!(store.create_user(&grant.scope(), &actor, new_user("x4", Role::Auditor, Some(a.id))).await.is_err());
        match store.create_user(&grant.scope(), &actor, new_user("ADMIN-A", Role::TenantUser, Some(a.id))).await {
            Err(StoreError::Invalid(p)) => assert_eq!(p.0[0].code, "duplicate_username"),
            other => panic!("{other:?}"),
        }
        // Lockout after the threshold.
        assert!(!store.login_failed(ua.id, 3, 60_000).await.unwrap());
        assert!(!store.login_failed(ua.id, 3, 60_000).await.unwrap());
        assert!(store.login_failed(ua.id, 3, 60_000).await.unwrap());
        let rec = store.login_record("admin-a").await.unwrap().unwrap();
        assert!(rec.user.locked_until > mamori_core::time::now_ms());
        store.unlock_user(&sa, &actor, ua.id).await.unwrap();
        // TOTP steps are accepted once.
        assert!(store.use_totp_step(ua.id, 100).await.unwrap());
        assert!(!store.use_totp_step(ua.id, 100).await.unwrap());
        assert!(store.verify_audit().await.unwrap().first_bad.is_none());
    })
    .await;
}

struct Retention;
impl mamori_core::PolicyValidator for Retention {
    fn component(&self) -> &'static str {
        "test"
    }
    fn default_policy(&self) -> serde_json::Value {
        json!({"days": 1})
    }
    fn validate(&self, d: &serde_json::Value) -> Result<(), mamori_core::Problems> {
        match d.get("days").and_then(|v| v.as_u64()) {
            Some(1..=10) => Ok(()),
            _ => Err(mamori_core::Problem::new("days", "bad", "日数が不正です", "bad days").into()),
        }
    }
}

#[tokio::test]
async fn policies_are_versioned_validated_and_watched() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        let a = store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, city("13102", "中央区", "198.51.100.0/24")).await.unwrap();
        let mut watch = store.watch_policies();
        let p1 = store.put_policy(&grant.scope(), &actor, Some(a.id), &Retention, json!({"days": 3})).await.unwrap();
        assert_eq!(p1.version, 1);
        assert_eq!(watch.changed().await, Some(p1.revision));
        let p2 = store.put_policy(&grant.tenant(a.id), &actor, Some(a.id), &Retention, json!({"days": 4})).await.unwrap();
        assert_eq!((p2.version, p2.revision), (2, p1.revision + 1));
        assert!(matches!(store.put_policy(&grant.scope(), &actor, Some(a.id), &Retention, json!({"days": 99})).await, Err(StoreError::Invalid(_))));
        assert!(store.put_policy(&grant.tenant(a.id), &actor, Some(b.id), &Retention, json!({"days": 4})).await.is_err());
        assert!(store.put_policy(&grant.tenant(a.id), &actor, None, &Retention, json!({"days": 4})).await.is_err());
        assert!(store.policy(&grant.tenant(b.id), Some(a.id), "test").await.unwrap().is_none());
        assert_eq!(store.policy(&grant.scope(), Some(a.id), "test").await.unwrap().unwrap().document, json!({"days": 4}));
        assert_eq!(store.policy_versions(&grant.scope(), Some(a.id), "test", 10).await.unwrap().len(), 2);
        assert_eq!(store.latest_policies(&grant, "test").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn cross_tenant_reads_by_people_are_audited_once_per_window() {
    each_backend(|store, grant| async move {
        let soc = store.create_user(&grant.scope(), grant.actor(), new_user("soc1", Role::SocAnalyst, None)).await.unwrap();
        let session = full_session(&store, soc.id).await;
        let p = store.authenticate_session(&session, mamori_core::time::now_ms(), Some("127.0.0.1".into())).await.unwrap().unwrap().principal;
        store.list_tenants(&p.scope()).await.unwrap();
        store.list_tenants(&p.scope()).await.unwrap();
        let log = store.list_audit(&grant.scope(), &AuditFilter { action: Some("access.cross_tenant".into()), ..Default::default() }, None, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].actor_name.as_str(), log[0].target_kind.as_str()), ("soc1", "tenants"));
    })
    .await;
}

#[tokio::test]
async fn system_grants_are_audited_with_their_holder_and_purpose() {
    each_backend(|store, grant| async move {
        let log = store.list_audit(&grant.scope(), &AuditFilter { action: Some("access.grant".into()), ..Default::default() }, None, 10).await.unwrap();
        assert_eq!(log.len(), 1, "the test's own grant");
        assert_eq!(log[0].actor_name, "test");
        assert_eq!(log[0].after.as_ref().and_then(|a| a["purpose"].as_str()), Some("test"));
    })
    .await;
}

#[tokio::test]
async fn f33_a_vendor_reaches_its_named_tenants_until_its_account_expires() {
    each_backend(|store, grant| async move {
        let actor = grant.actor().clone();
        let a = store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, city("13102", "中央区", "198.51.100.0/24")).await.unwrap();
        let c = store.create_tenant(&grant.scope(), &actor, city("13103", "港区", "203.0.113.0/24")).await.unwrap();
        let now = mamori_core::time::now_ms();
        // A vendor needs tenants and an end date; tenant roles take neither list.
        let vendor = |tenants: Vec<TenantId>, expires_at: Option<i64>| NewUser { tenants, expires_at, ..new_user("vendor1", Role::MaintenanceVendor, None) };
        for bad in [vendor(vec![], Some(now + 3_600_000)), vendor(vec![a.id], None)] {
            assert!(matches!(store.create_user(&grant.scope(), &actor, bad).await, Err(StoreError::Invalid(_))));
        }
        let mixed = NewUser { tenants: vec![b.id], ..new_user("clerk", Role::TenantUser, Some(a.id)) };
        assert!(matches!(store.create_user(&grant.scope(), &actor, mixed).await, Err(StoreError::Invalid(_))));
        // A tenant admin cannot make one.
        assert!(store.create_user(&grant.tenant(a.id), &actor, vendor(vec![a.id], Some(now + 3_600_000))).await.is_err());
        let v = store.create_user(&grant.scope(), &actor, vendor(vec![b.id, a.id], Some(now + 3_600_000))).await.unwrap();
        let session = full_session(&store, v.id).await;
        let p = store.authenticate_session(&session, now, None).await.unwrap().expect("a live vendor logs in").principal;
        let seen: Vec<TenantId> = store.list_tenants(&p.scope()).await.unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(seen.len(), 2);
        assert!(seen.contains(&a.id) && seen.contains(&b.id) && !seen.contains(&c.id));
        assert!(store.get_tenant(&p.scope(), c.id).await.unwrap().is_none());
        assert!(store.list_users(&p.scope(), &Default::default()).await.unwrap().is_empty(), "a vendor manages no accounts");
        // Past its end, neither its session nor a token works, and the session is gone
        // once an operator moves the date.
        assert!(store.authenticate_session(&session, now + 3_600_001, None).await.unwrap().is_none());
        let patch = mamori_store::UserPatch { expires_at: Some(Some(now - 1)), ..Default::default() };
        let expired = store.update_user(&grant.scope(), &actor, v.id, patch).await.unwrap();
        assert!(expired.expired_at(now));
        assert!(store.session(&session, now).await.unwrap().is_none(), "an expired account's sessions end");
        // Dropping a named tenant narrows the scope at once.
        let patch = mamori_store::UserPatch { tenants: Some(vec![a.id]), expires_at: Some(Some(now + 3_600_000)), ..Default::default() };
        store.update_user(&grant.scope(), &actor, v.id, patch).await.unwrap();
        let session = full_session(&store, v.id).await;
        let p = store.authenticate_session(&session, now, None).await.unwrap().unwrap().principal;
        assert_eq!(store.list_tenants(&p.scope()).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn audit_verify_detects_a_modified_row_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let url = format!("sqlite://{}", path.display());
    let (store, authority) = Store::open(&url).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    let actor = Actor::system();
    for (c, n, r) in [("13101", "千代田区", "192.0.2.0/24"), ("13102", "中央区", "198.51.100.0/24"), ("13103", "港区", "203.0.113.0/24")] {
        store.create_tenant(&grant.scope(), &actor, city(c, n, r)).await.unwrap();
    }
    assert_eq!(store.verify_audit().await.unwrap().entries, 4, "the grant and three tenants");
    // The append-only trigger refuses a plain UPDATE.
    assert!(sqlx::query("UPDATE audit_log SET actor_name = 'x' WHERE seq = 2").execute(store.db_pool()).await.is_err());
    // Someone with file access drops the trigger and edits a row: verify names it.
    sqlx::raw_sql("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 2").execute(store.db_pool()).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.first_bad.as_ref().map(|b| b.0), Some(2), "{report:?}");
    // A removed row is found too.
    sqlx::raw_sql("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 1").execute(store.db_pool()).await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap().first_bad.map(|b| b.0), Some(2));
}

/// F06/F11/F41: the same private range on two segments belongs to two tenants; within
/// one segment it is refused, as are a second tenant's mail domain or FQDN.
#[tokio::test]
async fn f06_tenants_on_segments_resolve_and_conflicts_are_refused() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        let seg = |name: &str, zone: &str| mamori_core::Segment::check(name, &format!("回線 {name}"), zone, "").unwrap();
        store.put_segment(&grant.scope(), &actor, seg("wan-a", "internet")).await.unwrap();
        store.put_segment(&grant.scope(), &actor, seg("wan-b", "internet")).await.unwrap();
        store.put_segment(&grant.scope(), &actor, seg("lgwan", "lgwan")).await.unwrap();
        let with = |code5: &str, name: &str, ranges: &[&str], mail: &[&str], fqdns: &[&str]| {
            NewTenant {
                code: mamori_core::LocalGovCode::from_five(code5).unwrap().to_string(),
                name: name.into(),
                kana: "テスト".into(),
                kind: "town".into(),
                separation: "beta".into(),
                network_ranges: ranges.iter().map(|r| r.to_string()).collect(),
                mail_domains: mail.iter().map(|r| r.to_string()).collect(),
                fqdns: fqdns.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            }
            .check()
            .unwrap()
        };
        let x = store
            .create_tenant(
                &grant.scope(),
                &actor,
                with("39301", "東町", &["192.168.1.0/24@wan-a", "10.20.0.0/16@lgwan"], &["higashi.example.lg.jp"], &["www.town.higashi.example.jp"]),
            )
            .await
            .unwrap();
        let y = store.create_tenant(&grant.scope(), &actor, with("39302", "西町", &["192.168.1.0/24@wan-b"], &["nishi.example.lg.jp"], &[])).await.unwrap();
        assert_eq!(x.separation, mamori_core::SeparationModel::Beta);

        // Within one segment an overlap is refused, naming the segment and the other tenant.
        match store.create_tenant(&grant.scope(), &actor, with("39303", "南町", &["192.168.1.128/25@wan-a"], &[], &[])).await {
            Err(StoreError::Invalid(p)) => {
                assert_eq!(p.0[0].code, "range_overlap");
                assert!(p.0[0].ja.contains("同じセグメント「wan-a」にある「東町」"), "{}", p.0[0].ja);
            }
            other => panic!("{other:?}"),
        }
        // An unknown segment, a taken mail domain and a taken FQDN, all at once.
        match store
            .create_tenant(
                &grant.scope(),
                &actor,
                with("39303", "南町", &["172.16.0.0/12@nowhere"], &["HIGASHI.example.lg.jp"], &["www.town.higashi.example.jp"]),
            )
            .await
        {
            Err(StoreError::Invalid(p)) => {
                let codes: Vec<_> = p.0.iter().map(|p| p.code).collect();
                assert_eq!(codes, ["unknown_segment", "domain_taken", "fqdn_taken"], "{p:?}");
            }
            other => panic!("{other:?}"),
        }
        // A tenant may change its own ranges without clashing with itself.
        let x =
            store.update_tenant(&grant.scope(), &actor, x.id, with("39301", "東町", &["192.168.0.0/23@wan-a"], &["higashi.example.lg.jp"], &[])).await.unwrap();

        let dir = store.tenant_directory(&grant.clone()).await.unwrap();
        let ip: std::net::IpAddr = "192.168.1.10".parse().unwrap();
        assert_eq!(dir.by_address(&"wan-a".parse().unwrap(), ip), Some(x.id));
        assert_eq!(dir.by_address(&"wan-b".parse().unwrap(), ip), Some(y.id));
        assert_eq!(dir.by_address(&"default".parse().unwrap(), ip), None);
        assert_eq!(dir.by_mail_domain("soumu@higashi.example.lg.jp"), Some(x.id));
        assert_eq!(dir.by_mail_domain("nishi.example.lg.jp"), Some(y.id));

        // Segments in use can be neither deleted nor moved to the other zone.
        let wan_b: mamori_core::SegmentName = "wan-b".parse().unwrap();
        match store.delete_segment(&grant.scope(), &actor, &wan_b).await {
            Err(StoreError::Invalid(p)) => assert!(p.0[0].ja.contains("西町"), "{p:?}"),
            other => panic!("{other:?}"),
        }
        match store.put_segment(&grant.scope(), &actor, seg("wan-b", "lgwan")).await {
            Err(StoreError::Invalid(p)) => assert_eq!(p.0[0].code, "segment_in_use"),
            other => panic!("{other:?}"),
        }
        // A tenant scope may not define segments; the default segment stays.
        assert!(matches!(store.put_segment(&grant.tenant(x.id), &actor, seg("mine", "internet")).await, Err(StoreError::Forbidden(_))));
        assert!(store.delete_segment(&grant.scope(), &actor, &"default".parse().unwrap()).await.is_err());
        store.delete_tenant(&grant.scope(), &actor, y.id).await.unwrap();
        store.delete_segment(&grant.scope(), &actor, &wan_b).await.unwrap();
        let names: Vec<String> = store.list_segments().await.unwrap().into_iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["default", "lgwan", "wan-a"]);
        let actions: Vec<String> = store.list_audit(&grant.scope(), &AuditFilter::default(), None, 100).await.unwrap().into_iter().map(|e| e.action).collect();
        assert!(actions.contains(&"segment.create".to_string()) && actions.contains(&"segment.delete".to_string()), "{actions:?}");
    })
    .await;
}

/// Legal holds: placed and released within scope only, checked, audited, and the
/// ones in force are what retention gets.
#[tokio::test]
async fn event_holds_are_scoped_checked_audited_and_released() {
    each_backend(|store, grant| async move {
        let actor = Actor::system();
        let a = store.create_tenant(&grant.scope(), &actor, city("13101", "千代田区", "192.0.2.0/24")).await.unwrap();
        let b = store.create_tenant(&grant.scope(), &actor, city("13102", "中央区", "198.51.100.0/24")).await.unwrap();
        let hold = |t: TenantId, from_ms: i64, to_ms: i64, reason: &str| mamori_store::NewEventHold {
            tenant: t,
            from_ms,
            to_ms,
            reason: reason.into(),
            reference: "令和8年 第12号".into(),
        };
        // Bad ranges and missing reasons are refused with every problem.
        match store.place_event_hold(&grant.scope(), &actor, hold(a.id, 200, 100, " ")).await {
            Err(StoreError::Invalid(p)) => assert_eq!(p.0.iter().map(|p| p.code).collect::<Vec<_>>(), ["invalid_range", "invalid_reason"]),
            other => panic!("{other:?}"),
        }
        // A tenant's scope reaches its own events only.
        let scope_a = grant.tenant(a.id);
        assert!(matches!(store.place_event_hold(&scope_a, &actor, hold(b.id, 100, 200, "x")).await, Err(StoreError::NotFound)));
        let ha = store.place_event_hold(&grant.scope(), &actor, hold(a.id, 100, 200, "不正アクセス事案の調査")).await.unwrap();
        let hb = store.place_event_hold(&grant.scope(), &actor, hold(b.id, 300, 400, "監査の依頼")).await.unwrap();
        assert_eq!(store.list_event_holds(&scope_a, false).await.unwrap(), vec![ha.clone()]);
        assert_eq!(store.list_event_holds(&grant.scope(), false).await.unwrap().len(), 2);
        let active = store.active_event_holds(&grant).await.unwrap();
        assert_eq!(active.len(), 2);
        assert!(active.contains(&mamori_store::events::Hold { tenant: a.id, from_ms: 100, to_ms: 200 }));
        // Another tenant cannot release it; an operator can, once.
        assert!(matches!(store.release_event_hold(&scope_a, &actor, hb.id).await, Err(StoreError::NotFound)));
        let released = store.release_event_hold(&grant.scope(), &actor, ha.id).await.unwrap();
        assert!(released.released_at.is_some());
        assert_eq!(store.release_event_hold(&grant.scope(), &actor, ha.id).await.unwrap(), released, "releasing again changes nothing");
        assert_eq!(store.active_event_holds(&grant).await.unwrap(), vec![mamori_store::events::Hold { tenant: b.id, from_ms: 300, to_ms: 400 }]);
        assert!(store.list_event_holds(&grant.scope(), false).await.unwrap().iter().all(|h| h.id != ha.id));
        assert_eq!(store.list_event_holds(&grant.scope(), true).await.unwrap().len(), 2, "a released hold stays as a record");
        let log = store.list_audit(&grant.scope(), &AuditFilter::default(), None, 10).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(&actions[..3], ["events.release", "events.hold", "events.hold"]);
        assert_eq!(log[0].after.as_ref().unwrap()["reason"], "不正アクセス事案の調査");
        assert!(store.verify_audit().await.unwrap().first_bad.is_none());
    })
    .await;
}

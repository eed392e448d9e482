//! The first start: an initial operator account and, unless turned off, the demo
//! prefecture サンプル県 with its member organizations, accounts of every role and a
//! week of sample events.

use anyhow::Context;
use mamori_bus::Bus;
use mamori_console::auth::{PasswordHasher, random_token};
use mamori_core::{Contact, Disposition, Endpoint, Event, EventClass, LocalGovCode, NewTenant, Role, Severity, TenantId};
use mamori_store::CrossTenant;
use mamori_store::{NewUser, Store};
use serde_json::json;
use std::collections::BTreeMap;

/// A created account and its one-time password.
pub struct Credential {
    pub username: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub password: String,
}

/// Where an account works: its municipality (tenant roles), the ones a maintenance
/// vendor serves, or none (operator roles).
#[derive(Default)]
pub struct AccountReach {
    /// The municipality of a tenant role, with its name.
    pub tenant: Option<(TenantId, String)>,
    /// A maintenance vendor's municipalities, with their names.
    pub tenants: Vec<(TenantId, String)>,
    /// The end of the account (Unix ms).
    pub expires_at: Option<i64>,
}

impl AccountReach {
    /// The reach of a tenant role.
    pub fn tenant(id: TenantId, name: String) -> Self {
        Self { tenant: Some((id, name)), ..Self::default() }
    }
}

/// Creates an account with a one-time password (changed at first login).
pub async fn create_account(
    store: &Store,
    grant: &CrossTenant,
    hasher: &PasswordHasher,
    username: &str,
    display: &str,
    role: Role,
    reach: AccountReach,
) -> anyhow::Result<Credential> {
    let tenant = reach
        .tenant
        .clone()
        .or_else(|| (!reach.tenants.is_empty()).then(|| (reach.tenants[0].0, reach.tenants.iter().map(|t| t.1.as_str()).collect::<Vec<_>>().join("、"))));
    let password = random_token(12);
    let hash = hasher.hash(&password).map_err(anyhow::Error::msg)?;
    store
        .create_user(
            &grant.scope(),
            grant.actor(),
            NewUser {
                username: username.into(),
                display_name: display.into(),
                email: String::new(),
                role,
                tenant_id: reach.tenant.as_ref().map(|t| t.0),
                tenants: reach.tenants.iter().map(|t| t.0).collect(),
                expires_at: reach.expires_at,
                password_hash: hash,
                must_change_password: true,
            },
        )
        .await
        .with_context(|| format!("cannot create account {username}"))?;
    Ok(Credential { username: username.into(), role, tenant: tenant.map(|t| t.1), password })
}

struct DemoTenant {
    five: &'static str,
    name: &'static str,
    kana: &'static str,
    kind: &'static str,
    slug: &'static str,
    separation: &'static str,
    ranges: &'static [&'static str],
    services: &'static [(&'static str, u32)],
}

const DEMO: &[DemoTenant] = &[
    DemoTenant {
        five: "39000",
        name: "サンプル県",
        kana: "サンプルケン",
        kind: "prefecture",
        slug: "pref",
        separation: "alpha",
        ranges: &["10.39.0.0/20", "192.0.2.0/27"],
        services: &[("F30", 1), ("F32", 1), ("F51", 1)],
    },
    DemoTenant {
        five: "39291",
        name: "桜川市",
        kana: "サクラガワシ",
        kind: "city",
        slug: "sakuragawa",
        separation: "beta",
        ranges: &["10.39.16.0/22", "192.0.2.32/28"],
        services: &[("F41", 2), ("F43", 1), ("F45", 1), ("F46", 1)],
    },
    DemoTenant {
        five: "39292",
        name: "青葉市",
        kana: "アオバシ",
        kind: "city",
        slug: "aoba",
        separation: "alpha_prime",
        ranges: &["10.39.20.0/22", "192.0.2.48/28"],
        services: &[("F05", 1), ("F42", 1), ("F45", 1)],
    },
    DemoTenant {
        five: "39601",
        name: "若葉町",
        kana: "ワカバチョウ",
        kind: "town",
        slug: "wakaba",
        separation: "beta_prime",
        ranges: &["10.39.24.0/24", "198.51.100.0/28"],
        services: &[("F35", 1), ("F43", 1)],
    },
    DemoTenant {
        five: "39701",
        name: "星ヶ丘村",
        kana: "ホシガオカムラ",
        kind: "village",
        slug: "hoshigaoka",
        separation: "alpha",
        ranges: &["10.39.25.0/24", "198.51.100.16/28", "192.168.10.0/24@wan-b"],
        services: &[("F38", 1)],
    },
    DemoTenant {
        five: "39801",
        name: "サンプル県市町村総合事務組合",
        kana: "サンプルケンシチョウソンソウゴウジムクミアイ",
        kind: "joint_association",
        slug: "kumiai",
        separation: "alpha",
        ranges: &["10.39.26.0/24", "192.168.10.0/24"],
        services: &[],
    },
];

/// Seeds the demo prefecture; returns the demo accounts.
pub async fn demo(store: &Store, grant: &CrossTenant, bus: &Bus, hasher: &PasswordHasher) -> anyhow::Result<Vec<Credential>> {
    let (system, actor) = (grant.scope(), grant.actor().clone());
    // A second line of the prefecture WAN: its village reuses 192.168.10.0/24, which the
    // joint association also has on the default segment.
    let wan_b = mamori_core::Segment::check("wan-b", "県WAN 回線B（星ヶ丘村）", "internet", "デモ用のセグメントです。")
        .map_err(|p| anyhow::anyhow!("demo segment: {p:?}"))?;
    store.put_segment(&system, &actor, wan_b).await?;
    let mut tenants = Vec::new();
    for d in DEMO {
        let code = LocalGovCode::from_five(d.five).map_err(|p| anyhow::anyhow!(p.en))?;
        let input = NewTenant {
            code: code.to_string(),
            name: d.name.into(),
            kana: d.kana.into(),
            kind: d.kind.into(),
            contacts: vec![
                Contact {
                    name: "情報 太郎".into(),
                    department: "情報政策課".into(),
                    email: format!("joho@{}.example.jp", d.slug),
                    phone: "0000-00-0000".into(),
                },
                Contact { name: "総務 花子".into(), department: "総務課".into(), email: format!("somu@{}.example.jp", d.slug), phone: String::new() },
            ],
            network_ranges: d.ranges.iter().map(|s| s.to_string()).collect(),
            separation: d.separation.into(),
            mail_domains: vec![format!("{}.example.lg.jp", d.slug)],
            fqdns: vec![format!("www.{}.example.jp", d.slug)],
            services: d.services.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            notes: "デモ用の団体です。/ Demo organization.".into(),
        };
        let checked = input.check().map_err(|p| anyhow::anyhow!("demo tenant {}: {p}", d.name))?;
        tenants.push((store.create_tenant(&system, &actor, checked).await?, d.slug));
    }
    let mut creds = Vec::new();
    for (name, display, role) in
        [("soc", "SOC 分析 一郎", Role::SocAnalyst), ("helpdesk", "ヘルプデスク 次郎", Role::Helpdesk), ("auditor", "監査 三郎", Role::Auditor)]
    {
        creds.push(create_account(store, grant, hasher, name, display, role, AccountReach::default()).await?);
    }
    creds.push(create_account(store, grant, hasher, "approver", "県 承認 四郎", Role::PrefectureApprover, AccountReach::default()).await?);
    for (t, slug) in tenants.iter().skip(1).take(2) {
        let reach = || AccountReach::tenant(t.id, t.name.clone());
        creds.push(create_account(store, grant, hasher, &format!("{slug}-admin"), &format!("{} 管理者", t.name), Role::TenantAdmin, reach()).await?);
        creds.push(create_account(store, grant, hasher, &format!("{slug}-user"), &format!("{} 職員", t.name), Role::TenantUser, reach()).await?);
    }
    // A maintenance vendor for two municipalities, for a quarter.
    let served = tenants.iter().skip(1).take(2).map(|(t, _)| (t.id, t.name.clone())).collect();
    let quarter = AccountReach { tenants: served, expires_at: Some(mamori_core::time::now_ms() + 90 * 86_400_000), ..AccountReach::default() };
    creds.push(create_account(store, grant, hasher, "vendor", "保守 五郎（保守業者）", Role::MaintenanceVendor, quarter).await?);
    // Policies: the platform default and one municipality's own, to show versions.
    let retention = mamori_runtime::retention::RetentionPolicy;
    store.put_policy(&system, &actor, None, &retention, json!({"events_days": 365})).await?;
    store.put_policy(&system, &actor, Some(tenants[1].0.id), &retention, json!({"events_days": 400})).await?;
    store.put_policy(&system, &actor, Some(tenants[1].0.id), &retention, json!({"events_days": 730})).await?;
    let ids: Vec<TenantId> = tenants.iter().map(|(t, _)| t.id).collect();
    bus.publish(sample_events(&ids, mamori_core::time::now_ms())).await?;
    // The demo is searchable when the console opens.
    bus.searchable().await;
    Ok(creds)
}

/// Returns a week of plausible events for the tenants (deterministic).
pub fn sample_events(tenants: &[TenantId], now: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let sites = ["www.sakuragawa.example.jp", "www.aoba.example.jp", "www.wakaba.example.jp", "www.pref.sample.example.jp"];
    for i in 0..1500u64 {
        let tenant = tenants[(rnd(tenants.len() as u64)) as usize];
        let time = now - (rnd(7 * 86_400) as i64) * 1000 - 60_000;
        let src = format!("203.0.113.{}", rnd(250) + 1);
        let kind = rnd(100);
        let mut e = match kind {
            0..=39 => {
                let site = sites[(i % 4) as usize];
                let mut e = Event::new(tenant, time, EventClass::HTTP_ACTIVITY, format!("GET https://{site}/ 200"), "mamori-edge");
                e.activity_id = 3;
                e.disposition = Some(Disposition::ALLOWED);
                e.fields.insert("http_request".into(), json!({"http_method": "GET", "url": {"hostname": site, "path": "/"}}));
                e.fields.insert("http_response".into(), json!({"code": 200}));
                e
            }
            40..=54 => {
                let site = sites[(i % 4) as usize];
                let mut e =
                    Event::new(tenant, time, EventClass::HTTP_ACTIVITY, format!("WAF: SQL インジェクションの試行を遮断しました（{site}）"), "mamori-edge");
                e.activity_id = 3;
                e.severity = Severity::MEDIUM;
                e.disposition = Some(Disposition::BLOCKED);
                e.fields.insert(
                    "http_request".into(),
                    json!({"http_method": "GET", "url": {"hostname": site, "path": "/search", "query_string": "q=1%27%20OR%201=1--"}}),
                );
                e.raw = Some(format!("{src} - - \"GET /search?q=1' OR 1=1-- HTTP/1.1\" 403"));
                e
            }
            55..=69 => {
                let mut e = Event::new(tenant, time, EventClass::EMAIL_ACTIVITY, "迷惑メールを隔離しました: 「【重要】アカウント確認のお願い」", "mamori-mail");
                e.activity_id = 2;
                e.severity = Severity::LOW;
                e.disposition = Some(Disposition::QUARANTINED);
                e.fields.insert("email".into(), json!({"from": "security@phish.example.net", "subject": "【重要】アカウント確認のお願い"}));
                e
            }
            70..=84 => {
                let mut e =
                    Event::new(tenant, time, EventClass::DNS_ACTIVITY, "DNS 問い合わせ: malware.example.net（既知の不正ドメイン）を遮断", "mamori-gateway");
                e.activity_id = 1;
                e.severity = Severity::MEDIUM;
                e.disposition = Some(Disposition::BLOCKED);
                e.fields.insert("query".into(), json!({"hostname": "malware.example.net", "type": "A"}));
                e
            }
            85..=94 => {
                let mut e =
                    Event::new(tenant, time, EventClass::NETWORK_ACTIVITY, format!("ファイアウォール: {src} から 3389/tcp への接続を遮断"), "mamori-gateway");
                e.activity_id = 5;
                e.severity = Severity::LOW;
                e.disposition = Some(Disposition::BLOCKED);
                e.dst = Some(Endpoint { ip: Some("10.39.16.10".into()), port: Some(3389), hostname: None });
                e
            }
            _ => {
                let mut e =
                    Event::new(tenant, time, EventClass::DETECTION_FINDING, "県庁への不正アクセスを検知: 同一送信元からのログイン試行が多発", "mamori-soc");
                e.activity_id = 1;
                e.severity = if kind == 99 { Severity::CRITICAL } else { Severity::HIGH };
                e.disposition = Some(Disposition::DETECTED);
                e.fields.insert("finding_info".into(), json!({"title": "ブルートフォース攻撃の疑い", "uid": format!("demo-{i}")}));
                e
            }
        };
        if e.src.is_none() {
            e.src = Some(Endpoint { ip: Some(src), port: Some(40000 + rnd(20000) as u16), hostname: None });
        }
        out.push(e);
    }
    out
}

/// Seeds the demo prefecture's first monitor: the console's own health endpoint, so the
/// status board shows a live check from the first minute. Under the self-signed
/// certificate the check trusts that certificate; under a configured one, whose names
/// need not include the loopback address checked, no self-monitor is seeded.
pub async fn demo_monitors(store: &Store, grant: &CrossTenant, listen: std::net::SocketAddr, tls: bool, self_signed_pem: Option<String>) -> anyhow::Result<()> {
    if tls && self_signed_pem.is_none() {
        return Ok(());
    }
    let scheme = if tls { "https" } else { "http" };
    let scope = grant.scope();
    let Some(pref) = store.list_tenants(&scope).await?.into_iter().find(|t| t.kind == mamori_core::TenantKind::Prefecture) else { return Ok(()) };
    let host = if listen.ip().is_unspecified() { "127.0.0.1".to_string() } else { listen.ip().to_string() };
    let url = if listen.is_ipv6() && !listen.ip().is_unspecified() {
        format!("{scheme}://[{host}]:{}/healthz", listen.port())
    } else {
        format!("{scheme}://{host}:{}/healthz", listen.port())
    };
    let spec: mamori_core::monitor::MonitorSpec = serde_json::from_value(serde_json::json!({
        "name": "Mamori コンソール（自己監視）",
        // Under a self-signed certificate the monitor trusts exactly that certificate.
        "check": {"type": "http", "url": url, "keyword": "ok", "slow_ms": 1000, "ca_pem": self_signed_pem},
        "interval_secs": 30,
    }))?;
    store.create_monitor(&scope, grant.actor(), pref.id, spec).await?;
    Ok(())
}

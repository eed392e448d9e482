//! Service monitoring pages: status board, adding a municipality's standard monitors,
//! one monitor's history (response-time chart, monthly uptime, faults), fault records
//! with their timeline, and remote probes.
//!
//! Requirements: the status board and fault records of F01–F05 (F25).

use super::board::{BoardRow, board, create_standard, monthly_uptime, read_spec, target_tenant};
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use mamori_core::monitor::{Fault, FaultId, MonitorId, StandardSet, Status};
use mamori_core::{Permission, Tenant, TenantId};
use mamori_store::FaultFilter;
use mamori_store::Store;
use mamori_web::Form;
use mamori_web::layout::{Pairs, field, layout, page_result, problems, see_other, when};
use mamori_web::table::{Table, TableQuery, num, text};
use mamori_web::{AppError, Authed, Lang, PageAuth};
use mamori_web::{Path, Query};
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// A status badge.
pub fn badge(l: Lang, s: Status) -> Markup {
    html! { span class=(format!("st st-{}", s.as_str())) { (l.t(s.ja(), s.en())) } }
}

/// What a state means, for the board's legend (ja, en).
fn status_help(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Unknown => ("登録後、まだ一度も確認していません。", "Registered, not checked yet."),
        Status::Up => ("最後の確認で応答しました。", "Answered at the last check."),
        Status::Degraded => {
            ("応答しましたが、遅い・証明書の期限が近いなどの注意点があります。", "Answered, with a warning (slow, certificate near expiry, …).")
        }
        Status::Pending => {
            ("確認に失敗し、再確認しています。再確認でも失敗すると「障害」になります。", "A check failed and is being retried; further failures make it DOWN.")
        }
        Status::Down => ("再確認でも失敗しました。障害記録を作成し、通知します。", "Failed after retries: a fault record is opened and notified."),
        Status::Unreachable => ("依存先の監視が障害のため、確認できません（障害記録は作りません）。", "A monitor it depends on is DOWN (no fault record)."),
        Status::Maintenance => ("メンテナンス時間中のため、失敗しても障害にしません。", "In a maintenance window: failures open no fault."),
        Status::Paused => ("監視を一時停止しています。", "Monitoring is paused."),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.2}%")).unwrap_or_else(|| "—".into())
}

/// Where a state sorts on the board: what needs someone first.
fn urgency(s: Status) -> f64 {
    match s {
        Status::Down => 0.0,
        Status::Unreachable => 1.0,
        Status::Pending => 2.0,
        Status::Degraded => 3.0,
        Status::Unknown => 4.0,
        Status::Maintenance => 5.0,
        Status::Up => 6.0,
        Status::Paused => 7.0,
    }
}

/// The board's table: broken first, sortable by every column, paged, exported as CSV.
fn board_table<'a>(l: Lang, operator: bool) -> Table<'a, BoardRow> {
    let mut t = Table::new("/monitors", "monitors.csv")
        .class("board")
        .page_size(100)
        .default_sort("status", false)
        .row_class(|r: &BoardRow| format!("status-{}", r.status().as_str()));
    if operator {
        t = t.text_column("tenant", ("団体", "Tenant"), |r: &BoardRow| r.tenant_name.clone()).nowrap();
    }
    t.column(
        "name",
        ("監視", "Monitor"),
        |r: &BoardRow| html! { a href=(format!("/monitors/{}", r.monitor.id)) { (r.monitor.spec.name) } },
        |r| r.monitor.spec.name.clone(),
        text(|r: &BoardRow| r.monitor.spec.name.clone()),
    )
    .nowrap()
    .text_column("type", ("種別", "Type"), move |r: &BoardRow| l.t(r.monitor.spec.check.kind_ja(), r.monitor.spec.check.kind()).to_string())
    .text_column("target", ("対象", "Target"), |r: &BoardRow| r.monitor.spec.check.target())
    .column(
        "status",
        ("状態", "Status"),
        move |r: &BoardRow| badge(l, r.status()),
        move |r| l.t(r.status().ja(), r.status().en()).to_string(),
        num(|r: &BoardRow| Some(urgency(r.status()))),
    )
    .nowrap()
    .column(
        "since",
        ("変化した時刻", "Since"),
        |r: &BoardRow| html! { (r.state.as_ref().map(|s| when(s.since)).unwrap_or_default()) },
        |r| r.state.as_ref().map(|s| when(s.since)).unwrap_or_default(),
        num(|r: &BoardRow| r.state.as_ref().map(|s| s.since as f64)),
    )
    .nowrap()
    .column(
        "rt",
        ("応答", "Response"),
        |r: &BoardRow| html! { (response_time(r)) },
        response_time,
        num(|r: &BoardRow| r.state.as_ref().filter(|s| s.last_check > 0).map(|s| f64::from(s.last_rt_ms))),
    )
    .nowrap()
    .column("uptime", ("30日稼働率", "30-day uptime"), |r: &BoardRow| html! { (pct(r.uptime_30d)) }, |r| pct(r.uptime_30d), num(|r: &BoardRow| r.uptime_30d))
    .text_column("reason", ("理由", "Reason"), move |r: &BoardRow| {
        r.state.as_ref().and_then(|s| s.reason.as_ref()).map(|x| x.text(l.code()).to_string()).unwrap_or_default()
    })
}

fn response_time(r: &BoardRow) -> String {
    r.state.as_ref().filter(|s| s.last_check > 0).map(|s| format!("{} ms", s.last_rt_ms)).unwrap_or_default()
}

/// What the board shows of the query: one tenant, one state.
struct BoardQuery {
    tenant: Option<TenantId>,
    only: Option<Status>,
    table: TableQuery,
}

impl BoardQuery {
    fn read(q: &HashMap<String, String>) -> Result<BoardQuery, AppError> {
        let tenant = mamori_web::api::tenant_param("tenant", q.get("tenant").map(String::as_str))?;
        let only = match q.get("status").map(String::as_str).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<Status>().map_err(|_| {
                AppError::from(mamori_core::Problem::new("status", "invalid_status", format!("状態「{s}」はありません"), format!("no state '{s}'")))
            })?),
        };
        Ok(BoardQuery { tenant, only, table: TableQuery::from_query(q) })
    }
}

/// The live part of the board: the counts and the table.
async fn board_view(store: &Store, a: &Authed, q: &BoardQuery) -> Result<Markup, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    let rows = board(store, &scope, q.tenant).await?;
    let open = store.list_faults(&scope, &FaultFilter { tenant: q.tenant, open_only: true, limit: Some(1000), ..Default::default() }).await?;
    let mut counts: HashMap<Status, usize> = HashMap::new();
    for r in &rows {
        *counts.entry(r.status()).or_default() += 1;
    }
    let shown: Vec<BoardRow> = rows.into_iter().filter(|r| q.only.is_none_or(|s| r.status() == s)).collect();
    let operator = a.principal.tenant_id().is_none();
    let notify = super::notifications::status(store).await?;
    Ok(html! {
        // Trouble with notifications shows where people watch: faults would go unseen.
        @if notify.running_on.is_empty() || !notify.notices.is_empty() {
            (super::notifications::status_view(l, &notify))
            p { a href="/monitors/notifications" { (l.t("障害通知の設定とテスト送信 →", "Notification settings and test →")) } }
        }
        div.cards {
            @for (s, class) in [(Status::Down, "card bad"), (Status::Unreachable, "card warn"), (Status::Degraded, "card warn"), (Status::Pending, "card warn"), (Status::Up, "card")] {
                a class=(class) href=(format!("/monitors?status={}", s.as_str())) {
                    h3 { (l.t(s.ja(), s.en())) }
                    p.big { (counts.get(&s).copied().unwrap_or(0)) }
                }
            }
            a.card href="/faults?open=1" { h3 { (l.t("未復旧の障害", "Open faults")) } p.big { (open.len()) } }
        }
        @if shown.is_empty() && q.only.is_none() {
            p.muted { (l.t("監視はまだありません。「標準監視を追加」から団体の Web・メール中継・プロキシ・DNS をまとめて登録できます。", "No monitors yet. \"Add standard monitors\" registers a municipality's web, mail relay, proxy and DNS in one form.")) }
        } @else {
            (board_table(l, operator).render(l, &shown, &q.table))
        }
    })
}

/// GET /monitors — the status board. Its counts and table refresh by themselves
/// (`/monitors/live`) while the page is open.
pub async fn list(State(store): State<Store>, PageAuth(a): PageAuth, uri: Uri, Query(q): Query<HashMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsRead)?;
            let scope = a.principal.scope();
            store.note_scope(&scope, "monitors").await?;
            let bq = BoardQuery::read(&q)?;
            if bq.table.wants_csv() {
                let rows: Vec<BoardRow> = board(&store, &scope, bq.tenant).await?.into_iter().filter(|r| bq.only.is_none_or(|s| r.status() == s)).collect();
                return Ok(board_table(l, a.principal.tenant_id().is_none()).csv(l, &rows, &bq.table));
            }
            let view = board_view(&store, &a, &bq).await?;
            let tenants = store.list_tenants(&scope).await?;
            let operator = a.principal.tenant_id().is_none();
            let can_write = a.principal.can(Permission::MonitorsWrite);
            let body = html! {
                div.toolbar {
                    @if operator {
                        form method="get" action="/monitors" {
                            select name="tenant" aria-label=(l.t("団体", "Tenant")) {
                                option value="" { (l.t("すべての団体", "All tenants")) }
                                @for t in &tenants { option value=(t.id) selected[Some(t.id) == bq.tenant] { (t.name) } }
                            }
                            button type="submit" { (l.t("絞り込み", "Filter")) }
                        }
                    }
                    a.button href="/monitors/notifications" { (l.t("障害通知", "Notifications")) }
                    @if can_write {
                        a.button href="/monitors/new" { (l.t("標準監視を追加", "Add standard monitors")) }
                        a.button href="/monitors/new-custom" { (l.t("個別に追加", "Add one monitor")) }
                        a.button href="/monitors/probes" { (l.t("リモートプローブ", "Remote probes")) }
                    }
                    a.button href="/faults" { (l.t("障害記録", "Fault records")) }
                    span.live-note role="status" { (l.t("● 自動更新中", "● Live")) }
                }
                details.legend {
                    summary { (l.t("状態の意味", "What the states mean")) }
                    dl {
                        @for st in Status::ALL {
                            dt { (badge(l, st)) }
                            dd { (l.t(status_help(st).0, status_help(st).1)) }
                        }
                    }
                }
                div #board data-live=(mamori_web::live::url("/monitors/live", uri.query())) { (view) }
            };
            Ok(layout(&a, l.t("サービス監視", "Service monitoring"), "/monitors", body))
        }
        .await,
    )
}

/// GET /monitors/live — the board's counts and table as a live stream.
pub async fn live(State(store): State<Store>, PageAuth(a): PageAuth, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(e) = a.require(Permission::MonitorsRead) {
        return mamori_web::layout::error_page(a.lang, &e);
    }
    let bq = match BoardQuery::read(&q) {
        Ok(bq) => std::sync::Arc::new(bq),
        Err(e) => return mamori_web::layout::error_page(a.lang, &e),
    };
    mamori_web::live::stream(a, mamori_web::live::EVERY, move |a| {
        let (store, bq) = (store.clone(), bq.clone());
        async move { board_view(&store, &a, &bq).await }
    })
}

fn tenant_select(l: Lang, tenants: &[Tenant], selected: &str) -> Markup {
    html! {
        label { (l.t("団体", "Tenant"))
            select name="tenant_id" required {
                option value="" { (l.t("選んでください", "Choose")) }
                @for t in tenants { option value=(t.id) selected[t.id.to_string() == selected] { (t.name) " (" (t.code) ")" } }
            }
        }
    }
}

fn standard_form(l: Lang, a: &Authed, tenants: &[Tenant], pairs: &Pairs, error: Option<&AppError>) -> Markup {
    let v = |k: &str| field(pairs, k).to_string();
    html! {
        p { (l.t("団体の Web サイト・メール中継・プロキシ・外部 DNS の監視をまとめて登録します。空欄の項目は登録しません。", "Registers monitoring of a municipality's web site, mail relay, proxy and external DNS in one go. Empty parts are skipped.")) }
        @if let Some(e) = error { (problems(l, e)) }
        form.grid method="post" action="/monitors/new" {
            input type="hidden" name="csrf" value=(a.csrf());
            @if a.principal.tenant_id().is_none() { (tenant_select(l, tenants, field(pairs, "tenant_id"))) }
            label { (l.t("表示名（団体名）", "Label (municipality)")) input type="text" name="label" value=(v("label")) required placeholder=(l.t("例: みどり市", "e.g. Midori City")); }
            label.wide { (l.t("Web サイトの URL（F01）", "Web site URL (F01)")) input type="url" name="web_url" value=(v("web_url")) placeholder="https://www.city.example.lg.jp/"; }
            label.wide { (l.t("ページに含まれるべき文字列（任意）", "Text the page must contain (optional)")) input type="text" name="web_keyword" value=(v("web_keyword")); }
            label { (l.t("メール中継サーバー ホスト:ポート（F02）", "Mail relay host:port (F02)")) input type="text" name="mail_relay" value=(v("mail_relay")) placeholder="mail.city.example.lg.jp:25"; }
            label { (l.t("プロキシ ホスト:ポート（F03）", "Proxy host:port (F03)")) input type="text" name="proxy" value=(v("proxy")) placeholder="proxy.pref.example.lg.jp:8080"; }
            label.wide { (l.t("プロキシ経由で取得する URL（空欄なら Web サイト）", "URL fetched through the proxy (empty: the web site)")) input type="url" name="proxy_test_url" value=(v("proxy_test_url")); }
            label { (l.t("DNS ゾーン（F04）", "DNS zone (F04)")) input type="text" name="dns_zone" value=(v("dns_zone")) placeholder="city.example.lg.jp"; }
            label { (l.t("ネームサーバー（IP、カンマ区切り）", "Name servers (IPs, comma-separated)")) input type="text" name="dns_servers" value=(v("dns_servers")) placeholder="192.0.2.1, 192.0.2.2"; }
            label { (l.t("監視間隔（秒）", "Interval (seconds)")) input type="number" name="interval_secs" min="10" max="86400" value=(if v("interval_secs").is_empty() { "60".to_string() } else { v("interval_secs") }); }
            label.wide { (l.t("団体独自 CA の証明書（PEM、任意）", "Municipality's own CA certificate (PEM, optional)")) textarea name="ca_pem" rows="3" { (v("ca_pem")) } }
            div.wide { button type="submit" { (l.t("監視を登録", "Create monitors")) } }
        }
    }
}

/// GET /monitors/new
pub async fn new_form(State(store): State<Store>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            let tenants = store.list_tenants(&a.principal.scope()).await?;
            Ok(layout(&a, l.t("標準監視を追加", "Add standard monitors"), "/monitors", standard_form(l, &a, &tenants, &Vec::new(), None)))
        }
        .await,
    )
}

/// POST /monitors/new
pub async fn create_set(State(store): State<Store>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let set = StandardSet {
                label: field(&pairs, "label").trim().into(),
                web_url: field(&pairs, "web_url").into(),
                web_keyword: field(&pairs, "web_keyword").into(),
                mail_relay: field(&pairs, "mail_relay").into(),
                proxy: field(&pairs, "proxy").into(),
                proxy_test_url: field(&pairs, "proxy_test_url").into(),
                dns_zone: field(&pairs, "dns_zone").into(),
                dns_servers: field(&pairs, "dns_servers").into(),
                ca_pem: field(&pairs, "ca_pem").into(),
                interval_secs: field(&pairs, "interval_secs").parse().ok(),
            };
            let result = async {
                let tenant = target_tenant(&a.principal, Some(field(&pairs, "tenant_id")))?;
                create_standard(&store, &a.principal, tenant, &set).await
            }
            .await;
            match result {
                Ok(_) => Ok(see_other("/monitors")),
                Err(e @ AppError::Invalid(_)) => {
                    let tenants = store.list_tenants(&a.principal.scope()).await?;
                    Ok(layout(&a, l.t("標準監視を追加", "Add standard monitors"), "/monitors", standard_form(l, &a, &tenants, &pairs, Some(&e))))
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

const EXAMPLES: [(&str, &str); 7] = [
    (
        "http",
        r#"{"name": "", "check": {"type": "http", "url": "https://www.city.example.lg.jp/", "keyword": "", "expect_status": "200-399", "cert_warn_days": 14}, "interval_secs": 60}"#,
    ),
    ("smtp", r#"{"name": "", "check": {"type": "smtp", "host": "mail.city.example.lg.jp", "port": 25, "starttls": "required"}, "interval_secs": 60}"#),
    (
        "proxy",
        r#"{"name": "", "check": {"type": "proxy", "proxy": "proxy.pref.example.lg.jp:8080", "url": "https://www.city.example.lg.jp/"}, "interval_secs": 60}"#,
    ),
    (
        "dns",
        r#"{"name": "", "check": {"type": "dns", "zone": "city.example.lg.jp", "servers": ["192.0.2.1", "192.0.2.2"], "records": [{"name": "www", "type": "A", "expect": []}], "dnssec": false}, "interval_secs": 300}"#,
    ),
    (
        "ldap",
        r#"{"name": "", "check": {"type": "ldap", "url": "ldaps://ad.city.example.lg.jp", "bind_dn": "CN=monitor,CN=Users,DC=city,DC=local", "bind_password": "", "base": "DC=city,DC=local", "extra_ports": [88, 3268]}, "interval_secs": 120}"#,
    ),
    ("tcp", r#"{"name": "", "check": {"type": "tcp", "host": "192.0.2.10", "port": 443}, "interval_secs": 60}"#),
    ("icmp", r#"{"name": "", "check": {"type": "icmp", "host": "192.0.2.10"}, "interval_secs": 60}"#),
];

fn custom_form(l: Lang, a: &Authed, tenants: &[Tenant], tenant: &str, doc: &str, action: &str, error: Option<&AppError>) -> Markup {
    html! {
        @if let Some(e) = error { (problems(l, e)) }
        p.hint { (l.t("設定は JSON で指定します。種別ごとのひな形:", "Settings are JSON. Templates per type:"))
            @for (k, _) in EXAMPLES { " " a href=(format!("/monitors/new-custom?type={k}")) { (k) } }
        }
        form.grid method="post" action=(action) {
            input type="hidden" name="csrf" value=(a.csrf());
            @if a.principal.tenant_id().is_none() && action == "/monitors/new-custom" { (tenant_select(l, tenants, tenant)) }
            label.wide { (l.t("監視の設定（JSON）", "Monitor settings (JSON)")) textarea name="spec" rows="14" spellcheck="false" { (doc) } }
            div.wide { button type="submit" { (l.t("保存", "Save")) } }
        }
    }
}

/// Reads the settings JSON of a monitor form.
fn spec_from_form(pairs: &Pairs) -> Result<mamori_core::monitor::MonitorSpec, AppError> {
    let doc: serde_json::Value = serde_json::from_str(field(pairs, "spec")).map_err(|e| {
        AppError::from(mamori_core::Problem::new("spec", "invalid_json", format!("JSON を読めません: {e}"), format!("cannot read the JSON: {e}")))
    })?;
    Ok(read_spec(doc)?.1)
}

/// GET /monitors/new-custom
pub async fn custom_new(State(store): State<Store>, PageAuth(a): PageAuth, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            let tenants = store.list_tenants(&a.principal.scope()).await?;
            let kind = q.get("type").map(String::as_str).unwrap_or("http");
            let doc = EXAMPLES.iter().find(|(k, _)| *k == kind).map(|(_, d)| *d).unwrap_or(EXAMPLES[0].1);
            let pretty = serde_json::from_str::<serde_json::Value>(doc).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_default();
            Ok(layout(&a, l.t("監視を個別に追加", "Add one monitor"), "/monitors", custom_form(l, &a, &tenants, "", &pretty, "/monitors/new-custom", None)))
        }
        .await,
    )
}

/// POST /monitors/new-custom
pub async fn custom_create(State(store): State<Store>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let result = async {
                let spec = spec_from_form(&pairs)?;
                let tenant = target_tenant(&a.principal, Some(field(&pairs, "tenant_id")))?;
                Ok::<_, AppError>(store.create_monitor(&a.principal.scope(), &a.principal.actor(), tenant, spec).await?)
            }
            .await;
            match result {
                Ok(m) => Ok(see_other(&format!("/monitors/{}", m.id))),
                Err(e @ AppError::Invalid(_)) => {
                    let tenants = store.list_tenants(&a.principal.scope()).await?;
                    let body = custom_form(l, &a, &tenants, field(&pairs, "tenant_id"), field(&pairs, "spec"), "/monitors/new-custom", Some(&e));
                    Ok(layout(&a, l.t("監視を個別に追加", "Add one monitor"), "/monitors", body))
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

fn fault_table(l: Lang, faults: &[Fault]) -> Markup {
    let now = mamori_core::time::now_ms();
    html! {
        table.faults {
            thead { tr {
                th { (l.t("発生", "Opened")) } th { (l.t("復旧", "Recovered")) } th { (l.t("障害時間", "Duration")) }
                th { (l.t("原因", "Cause")) } th { (l.t("対応", "Handling")) }
            } }
            tbody { @for f in faults { tr {
                td { a href=(format!("/faults/{}", f.id)) { (when(f.opened_at)) } }
                td { @if let Some(c) = f.closed_at { (when(c)) } @else { (badge(l, Status::Down)) } }
                td { (f.duration_ms(now) / 60_000) (l.t("分", " min")) }
                td { (f.cause.text(l.code())) }
                td { (f.acknowledged_by.as_deref().unwrap_or("—")) }
            } } }
        }
    }
}

/// GET /monitors/{id}
pub async fn show(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(l, async {
        a.require(Permission::MonitorsRead)?;
        let scope = a.principal.scope();
        let id: MonitorId = id.parse().map_err(|_| AppError::NotFound)?;
        let m = store.get_monitor(&scope, id).await?;
        let st = store.monitor_states(&scope, Some(m.tenant)).await?.into_iter().find(|s| s.monitor == id);
        let now = mamori_core::time::now_ms();
        // A monitor younger than a day shows its last hour by default (its whole life
        // would be a sliver at the edge of a 24-hour chart).
        let default_hours = if now - m.created_at < 86_400_000 { 1 } else { 24 };
        let hours: i64 = q.get("hours").and_then(|h| h.parse().ok()).filter(|h| [1, 24, 168].contains(h)).unwrap_or(default_hours);
        let from = now - hours * 3_600_000;
        let results = store.monitor_results(&scope, id, from, now + 1, 20_000).await?;
        let points: Vec<(i64, u32, bool)> = results.iter().map(|r| (r.at, r.rt_ms, r.status == Status::Down)).collect();
        let uptime = monthly_uptime(&store, &scope, &m, 6).await?;
        let faults = store.list_faults(&scope, &FaultFilter { monitor: Some(id), limit: Some(20), ..Default::default() }).await?;
        let status = if m.spec.enabled { st.as_ref().map(|s| s.status).unwrap_or(Status::Unknown) } else { Status::Paused };
        let can_write = a.principal.can(Permission::MonitorsWrite);
        let spec_json = serde_json::to_string_pretty(&m.spec.redacted()).unwrap_or_default();
        let body = html! {
            dl.facts {
                dt { (l.t("状態", "Status")) } dd { (badge(l, status)) @if let Some(s) = &st { " " (l.t("（", "(since ")) (when(s.since)) (l.t(" から）", ")")) } }
                dt { (l.t("理由", "Reason")) } dd { (st.as_ref().and_then(|s| s.reason.as_ref()).map(|r| r.text(l.code()).to_string()).unwrap_or_else(|| "—".into())) }
                dt { (l.t("種別", "Type")) } dd { (l.t(m.spec.check.kind_ja(), m.spec.check.kind())) }
                dt { (l.t("対象", "Target")) } dd { (m.spec.check.target()) }
                dt { (l.t("監視間隔", "Interval")) } dd { (m.spec.interval_secs) (l.t("秒（失敗時は", " s (retries every ")) (m.spec.retry_interval_secs.min(m.spec.interval_secs)) (l.t("秒間隔で", " s, ")) (m.spec.retries) (l.t("回再試行）", " times)")) }
                dt { (l.t("最終確認", "Last check")) } dd { (st.as_ref().filter(|s| s.last_check > 0).map(|s| format!("{}（{} ms）", when(s.last_check), s.last_rt_ms)).unwrap_or_else(|| "—".into())) }
            }
            nav.tabs {
                @for (h, ja, en) in [(1, "1時間", "1 hour"), (24, "24時間", "24 hours"), (168, "7日間", "7 days")] {
                    a href=(format!("/monitors/{id}?hours={h}")) class=[(h == hours).then_some("active")] { (l.t(ja, en)) }
                }
            }
            h2 { (l.t("応答時間", "Response time")) }
            (mamori_web::svg::response_chart(&points, from, now, [&when(from), &when((from + now) / 2), &when(now)], l.t("応答時間と失敗（赤）", "Response time and failures (red)")))
            h2 { (l.t("月別稼働率", "Uptime per month")) }
            @if uptime.is_empty() {
                p.muted { (l.t("まだ一度も確認していないため、稼働率はありません。", "Not checked yet, so there is no uptime.")) }
            } @else {
                table.compact {
                    thead { tr { th { (l.t("月", "Month")) } th { (l.t("稼働率", "Uptime")) } th { (l.t("障害件数", "Faults")) } th { (l.t("障害時間", "Down time")) } } }
                    tbody { @for u in &uptime { tr { td { (u.month) } td { (pct(u.uptime)) } td { (u.faults) } td { (u.down_minutes) (l.t("分", " min")) } } } }
                }
            }
            h2 { (l.t("障害記録", "Fault records")) }
            @if faults.is_empty() { p.muted { (l.t("障害記録はありません。", "No fault records.")) } } @else { (fault_table(l, &faults)) }
            h2 { (l.t("メンテナンス時間帯", "Maintenance windows")) }
            (maintenance_section(l, &a, id, &m.spec.maintenance, can_write, None))
            @if can_write {
                h2 { (l.t("設定", "Settings")) }
                div.actions {
                    form.inline method="post" action=(format!("/monitors/{id}/toggle")) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button type="submit" { @if m.spec.enabled { (l.t("一時停止", "Pause")) } @else { (l.t("再開", "Resume")) } }
                    }
                    form.inline method="post" action=(format!("/monitors/{id}/delete")) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button.danger type="submit" { (l.t("削除", "Delete")) }
                    }
                }
                (custom_form(l, &a, &[], "", &spec_json, &format!("/monitors/{id}"), None))
            }
        };
        Ok(layout(&a, &m.spec.name, "/monitors", body))
    }
    .await)
}

/// POST /monitors/{id} — save settings.
pub async fn update(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let id: MonitorId = id.parse().map_err(|_| AppError::NotFound)?;
            let result = async {
                let spec = spec_from_form(&pairs)?;
                Ok::<_, AppError>(store.update_monitor(&a.principal.scope(), &a.principal.actor(), id, spec).await?)
            }
            .await;
            match result {
                Ok(_) => Ok(see_other(&format!("/monitors/{id}"))),
                Err(e @ AppError::Invalid(_)) => {
                    let body = custom_form(l, &a, &[], "", field(&pairs, "spec"), &format!("/monitors/{id}"), Some(&e));
                    Ok(layout(&a, l.t("監視の設定", "Monitor settings"), "/monitors", body))
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("日曜日", "Sunday"),
    ("月曜日", "Monday"),
    ("火曜日", "Tuesday"),
    ("水曜日", "Wednesday"),
    ("木曜日", "Thursday"),
    ("金曜日", "Friday"),
    ("土曜日", "Saturday"),
];

/// A monitor's maintenance windows, each with its remove button, and the form adding one.
fn maintenance_section(
    l: Lang,
    a: &Authed,
    id: MonitorId,
    windows: &[mamori_core::monitor::Maintenance],
    can_write: bool,
    error: Option<(&AppError, &Pairs)>,
) -> Markup {
    use mamori_core::monitor::Maintenance;
    let kept = |k: &str| error.map(|(_, p)| field(p, k).to_string()).unwrap_or_default();
    html! {
        p.muted { (l.t("この時間帯は確認に失敗しても障害にせず、通知もしません（計画停止・保守作業に）。", "Inside a window failures open no fault and notify nobody (planned outages, maintenance).")) }
        @if windows.is_empty() { p { (l.t("設定されていません。", "None.")) } } @else {
            table.compact.maintenance { tbody { @for (i, w) in windows.iter().enumerate() { tr {
                td { @match w {
                    Maintenance::Once { start, end, .. } => { (l.t("1回", "Once")) ": " (start) " 〜 " (end) },
                    Maintenance::Weekly { weekday, start, minutes, .. } => {
                        (l.t("毎週", "Weekly")) " " (WEEKDAYS.get(usize::from(*weekday)).map(|d| l.t(d.0, d.1)).unwrap_or("?")) " " (start) (l.t(" から ", " for ")) (minutes) (l.t(" 分間", " min"))
                    },
                } }
                td { @match w { Maintenance::Once { note, .. } | Maintenance::Weekly { note, .. } => (note) } }
                td { @if can_write {
                    form.inline method="post" action=(format!("/monitors/{id}/maintenance/{i}/delete")) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button.danger type="submit" { (l.t("削除", "Remove")) }
                    }
                } }
            } } } }
        }
        @if can_write {
            @if let Some((e, _)) = error { (problems(l, e)) }
            form.grid #maintenance-form method="post" action=(format!("/monitors/{id}/maintenance")) {
                input type="hidden" name="csrf" value=(a.csrf());
                label { (l.t("種類", "Kind")) select name="kind" {
                    option value="once" selected[kept("kind") != "weekly"] { (l.t("1回だけ（開始〜終了）", "Once (start to end)")) }
                    option value="weekly" selected[kept("kind") == "weekly"] { (l.t("毎週（曜日・開始時刻・長さ）", "Weekly (day, start, length)")) }
                } }
                label { (l.t("開始（1回: 日時、毎週: 時刻）", "Start (once: date and time; weekly: time)")) input type="text" name="start" value=(kept("start")) placeholder="2026-12-24 22:00 / 03:00" maxlength="40"; }
                label { (l.t("終了（1回のとき）", "End (once)")) input type="text" name="end" value=(kept("end")) placeholder="2026-12-25 02:00" maxlength="40"; }
                label { (l.t("曜日（毎週のとき）", "Day (weekly)")) select name="weekday" {
                    @for (i, d) in WEEKDAYS.iter().enumerate() { option value=(i) selected[kept("weekday") == i.to_string()] { (l.t(d.0, d.1)) } }
                } }
                label { (l.t("長さ（分、毎週のとき）", "Length in minutes (weekly)")) input type="number" name="minutes" min="1" max="10080" value=(kept("minutes")); }
                label { (l.t("理由", "Why")) input type="text" name="note" value=(kept("note")) maxlength="200" placeholder=(l.t("例: サーバー更新作業", "e.g. server update")); }
                button type="submit" { (l.t("メンテナンス時間帯を追加", "Add the window")) }
            }
        }
    }
}

/// Reads the maintenance form into a window; every problem named.
fn maintenance_from_form(pairs: &Pairs) -> Result<mamori_core::monitor::Maintenance, AppError> {
    use mamori_core::monitor::Maintenance;
    use mamori_core::{Problem, Problems};
    let note = field(pairs, "note").trim().chars().take(200).collect::<String>();
    let mut problems = Problems::default();
    let w = match field(pairs, "kind") {
        "weekly" => {
            let start = field(pairs, "start").trim().to_string();
            let ok_time =
                start.split_once(':').is_some_and(|(h, m)| h.parse::<u32>().is_ok_and(|h| h < 24) && m.len() == 2 && m.parse::<u32>().is_ok_and(|m| m < 60));
            if !ok_time {
                problems.push(Problem::new(
                    "start",
                    "invalid_time",
                    "毎週の開始時刻は 03:00 のように「時:分」で入力してください",
                    "the weekly start is a time like 03:00",
                ));
            }
            let weekday = field(pairs, "weekday").parse::<u8>().ok().filter(|d| *d < 7);
            if weekday.is_none() {
                problems.push(Problem::new("weekday", "invalid_weekday", "曜日を選んでください", "choose a day"));
            }
            let minutes = field(pairs, "minutes").trim().parse::<u32>().ok().filter(|m| (1..=10_080).contains(m));
            if minutes.is_none() {
                problems.push(Problem::new("minutes", "invalid_minutes", "長さは1〜10080分（7日）で入力してください", "the length is 1-10080 minutes"));
            }
            Maintenance::Weekly { weekday: weekday.unwrap_or(0), start, minutes: minutes.unwrap_or(0), note }
        }
        _ => {
            let read = |k: &'static str, problems: &mut Problems| {
                let text = field(pairs, k).trim();
                match mamori_core::time::parse_time(text) {
                    Some(ms) => Some(ms),
                    None => {
                        problems.push(Problem::new(
                            k,
                            "invalid_time",
                            format!("日時「{text}」を読めません（例: 2026-12-24 22:00）"),
                            format!("cannot read '{text}' (e.g. 2026-12-24 22:00)"),
                        ));
                        None
                    }
                }
            };
            let (start, end) = (read("start", &mut problems), read("end", &mut problems));
            if let (Some(s), Some(e)) = (start, end)
                && e <= s
            {
                problems.push(Problem::new("end", "end_before_start", "終了は開始より後にしてください", "the end must come after the start"));
            }
            let fmt = |ms: Option<i64>| ms.map(mamori_core::time::format_rfc3339).unwrap_or_default();
            Maintenance::Once { start: fmt(start), end: fmt(end), note }
        }
    };
    problems.into_result(w).map_err(AppError::Invalid)
}

/// Changes one monitor's stored settings by `change`, for the page forms that edit a
/// part of them (the write right and the form's CSRF token checked first); returns its id.
async fn change_spec(
    store: &Store,
    a: &Authed,
    id: &str,
    pairs: &Pairs,
    change: impl FnOnce(&mut mamori_core::monitor::MonitorSpec) -> Result<(), AppError>,
) -> Result<MonitorId, AppError> {
    a.require(Permission::MonitorsWrite)?;
    a.check_csrf(field(pairs, "csrf"))?;
    let id: MonitorId = id.parse().map_err(|_| AppError::NotFound)?;
    let scope = a.principal.scope();
    let mut spec = store.get_monitor(&scope, id).await?.spec;
    change(&mut spec)?;
    store.update_monitor(&scope, &a.principal.actor(), id, spec).await?;
    Ok(id)
}

/// POST /monitors/{id}/maintenance — add a maintenance window.
pub async fn add_maintenance(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            let added = change_spec(&store, &a, &id, &pairs, |spec| {
                spec.maintenance.push(maintenance_from_form(&pairs)?);
                Ok(())
            })
            .await;
            match added {
                Ok(id) => Ok(see_other(&format!("/monitors/{id}"))),
                Err(e @ AppError::Invalid(_)) => {
                    let id: MonitorId = id.parse().map_err(|_| AppError::NotFound)?;
                    // Nothing was saved: the windows as they are, the input kept.
                    let current = store.get_monitor(&a.principal.scope(), id).await?.spec.maintenance;
                    let body = maintenance_section(l, &a, id, &current, true, Some((&e, &pairs)));
                    let mut r = layout(&a, l.t("メンテナンス時間帯", "Maintenance windows"), "/monitors", body);
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// POST /monitors/{id}/maintenance/{i}/delete — remove a maintenance window.
pub async fn delete_maintenance(State(store): State<Store>, PageAuth(a): PageAuth, Path((id, i)): Path<(String, usize)>, Form(pairs): Form<Pairs>) -> Response {
    page_result(
        a.lang,
        async {
            let id = change_spec(&store, &a, &id, &pairs, |spec| {
                if i >= spec.maintenance.len() {
                    return Err(AppError::NotFound);
                }
                spec.maintenance.remove(i);
                Ok(())
            })
            .await?;
            Ok(see_other(&format!("/monitors/{id}")))
        }
        .await,
    )
}

/// POST /monitors/{id}/toggle — pause or resume.
pub async fn toggle(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    page_result(
        a.lang,
        async {
            let id = change_spec(&store, &a, &id, &pairs, |spec| {
                spec.enabled = !spec.enabled;
                Ok(())
            })
            .await?;
            Ok(see_other(&format!("/monitors/{id}")))
        }
        .await,
    )
}

/// POST /monitors/{id}/delete
pub async fn delete(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let id: MonitorId = id.parse().map_err(|_| AppError::NotFound)?;
            store.delete_monitor(&a.principal.scope(), &a.principal.actor(), id).await?;
            Ok(see_other("/monitors"))
        }
        .await,
    )
}

/// GET /faults: fault records with their municipality, filtered by municipality,
/// state and time, sortable, paged, exported as CSV (`?format=csv`).
pub async fn faults(State(store): State<Store>, PageAuth(a): PageAuth, Query(q): Query<HashMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsRead)?;
            let scope = a.principal.scope();
            store.note_scope(&scope, "faults").await?;
            let mut filter = super::api::fault_filter(&q)?;
            filter.limit = Some(filter.limit.unwrap_or(5000));
            let faults = store.list_faults(&scope, &filter).await?;
            let tenants = store.list_tenants(&scope).await?;
            let names: HashMap<TenantId, String> = tenants.iter().map(|t| (t.id, t.name.clone())).collect();
            let rows: Vec<(Fault, String)> = faults
                .into_iter()
                .map(|f| {
                    let name = names.get(&f.tenant).cloned().unwrap_or_default();
                    (f, name)
                })
                .collect();
            let now = mamori_core::time::now_ms();
            let several = tenants.len() > 1;
            let table = fault_list(l, now, several);
            let tq = TableQuery::from_query(&q);
            if tq.wants_csv() {
                return Ok(table.csv(l, &rows, &tq));
            }
            let v = |k: &str| q.get(k).cloned().unwrap_or_default();
            let body = html! {
                form.filters method="get" action="/faults" {
                    @if several {
                        label { (l.t("団体", "Tenant")) select name="tenant" {
                            option value="" { (l.t("すべての団体", "All tenants")) }
                            @for t in &tenants { option value=(t.id) selected[filter.tenant == Some(t.id)] { (t.name) } }
                        } }
                    }
                    label { (l.t("状態", "State")) select name="open" {
                        option value="" { (l.t("すべて", "All")) }
                        option value="1" selected[filter.open_only] { (l.t("未復旧のみ", "Open only")) }
                    } }
                    label { (l.t("発生日時（から）", "Opened from")) input type="text" name="from" value=(v("from")) placeholder="2026-12-01"; }
                    label { (l.t("発生日時（まで）", "Opened until")) input type="text" name="to" value=(v("to")) placeholder="2026-12-31 23:59"; }
                    button type="submit" { (l.t("絞り込み", "Filter")) }
                    " " a href="/faults" { (l.t("条件を消す", "Clear")) }
                    " " a href="/monitors" { (l.t("監視一覧へ", "Status board")) }
                }
                @if rows.is_empty() { p.muted { (l.t("条件に合う障害記録はありません。", "No fault records match.")) } } @else { (table.render(l, &rows, &tq)) }
            };
            Ok(layout(&a, l.t("障害記録", "Fault records"), "/faults", body))
        }
        .await,
    )
}

/// The fault list's columns.
fn fault_list<'a>(l: Lang, now: i64, with_tenant: bool) -> Table<'a, (Fault, String)> {
    type Row = (Fault, String);
    let mut t = Table::new("/faults", "faults.csv").class("faults").default_sort("opened", true).column(
        "opened",
        ("発生", "Opened"),
        |r: &Row| html! { a href=(format!("/faults/{}", r.0.id)) { (when(r.0.opened_at)) } },
        |r| when(r.0.opened_at),
        num(|r: &Row| Some(r.0.opened_at as f64)),
    );
    t = t.nowrap();
    if with_tenant {
        t = t.text_column("tenant", ("団体", "Tenant"), |r: &Row| r.1.clone()).nowrap();
    }
    t.text_column("monitor", ("監視", "Monitor"), |r: &Row| r.0.monitor_name.clone())
        .column(
            "closed",
            ("復旧", "Recovered"),
            move |r: &Row| html! { @if let Some(c) = r.0.closed_at { (when(c)) } @else { (badge(l, Status::Down)) } },
            move |r| r.0.closed_at.map(when).unwrap_or_else(|| l.t("未復旧", "open").to_string()),
            num(|r: &Row| r.0.closed_at.map(|c| c as f64)),
        )
        .nowrap()
        .column(
            "duration",
            ("障害時間", "Duration"),
            move |r: &Row| html! { (r.0.duration_ms(now) / 60_000) (l.t("分", " min")) },
            move |r| (r.0.duration_ms(now) / 60_000).to_string(),
            num(move |r: &Row| Some(r.0.duration_ms(now) as f64)),
        )
        .nowrap()
        .column(
            "cause",
            ("原因", "Cause"),
            move |r: &Row| html! { (r.0.cause.text(l.code())) },
            move |r| r.0.cause.text(l.code()).to_string(),
            text(move |r: &Row| r.0.cause.code.clone()),
        )
        .column(
            "handling",
            ("対応", "Handling"),
            |r: &Row| html! { (r.0.acknowledged_by.as_deref().unwrap_or("—")) },
            |r| r.0.acknowledged_by.clone().unwrap_or_default(),
            text(|r: &Row| r.0.acknowledged_by.clone().unwrap_or_default()),
        )
}

/// GET /faults/{id}
pub async fn fault(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>) -> Response {
    let l = a.lang;
    page_result(l, async {
        a.require(Permission::MonitorsRead)?;
        let id: FaultId = id.parse().map_err(|_| AppError::NotFound)?;
        let f = store.get_fault(&a.principal.scope(), id).await?;
        let now = mamori_core::time::now_ms();
        let body = html! {
            dl.facts {
                dt { (l.t("監視", "Monitor")) } dd { a href=(format!("/monitors/{}", f.monitor)) { (f.monitor_name) } }
                dt { (l.t("原因", "Cause")) } dd { (f.cause.text(l.code())) " " span.muted { "(" (f.cause.code) ")" } }
                dt { (l.t("発生", "Opened")) } dd { (when(f.opened_at)) }
                dt { (l.t("復旧", "Recovered")) } dd { @if let Some(c) = f.closed_at { (when(c)) } @else { (badge(l, Status::Down)) " " (l.t("継続中", "ongoing")) } }
                dt { (l.t("障害時間", "Duration")) } dd { (f.duration_ms(now) / 60_000) (l.t("分", " min")) }
                dt { (l.t("対応者", "Acknowledged by")) } dd { (f.acknowledged_by.as_deref().unwrap_or("—")) }
            }
            h2 { (l.t("経過", "Timeline")) }
            ol.timeline { @for e in &f.timeline { li {
                time { (when(e.at)) } (if l == Lang::En { &e.en } else { &e.ja }) @if let Some(who) = &e.actor { " — " (who) }
            } } }
            h2 { (l.t("通知履歴", "Notifications")) }
            @if f.notifications.is_empty() { p.muted { (l.t("通知はまだ送られていません。", "No notification sent yet.")) } } @else {
                table.compact {
                    thead { tr { th { (l.t("日時", "Time")) } th { (l.t("経路", "Channel")) } th { (l.t("宛先", "To")) } th { (l.t("内容", "Kind")) } th { (l.t("段階", "Step")) } th { (l.t("結果", "Result")) } } }
                    tbody { @for n in &f.notifications { tr {
                        td { (when(n.at)) } td { (n.channel) } td { (n.target) }
                        td { (match n.reason.as_str() { "down" => l.t("障害", "down"), "repeat" => l.t("再通知", "reminder"), "up" => l.t("復旧", "recovery"), other => other }) }
                        td { (n.step + 1) }
                        td { @if n.ok { (l.t("送信済み", "sent")) } @else { span.error { (l.t("失敗: ", "failed: ")) (n.error.as_deref().unwrap_or("")) } } }
                    } } }
                }
            }
            @if a.principal.can(Permission::MonitorsWrite) {
                h2 { (l.t("対応記録", "Handling notes")) }
                form.grid method="post" action=(format!("/faults/{id}/comment")) {
                    input type="hidden" name="csrf" value=(a.csrf());
                    label.wide { (l.t("コメント", "Comment")) textarea name="text" rows="3" {} }
                    div.wide.actions {
                        button type="submit" name="acknowledge" value="0" { (l.t("コメントを追加", "Add comment")) }
                        @if f.acknowledged_by.is_none() && f.closed_at.is_none() { button type="submit" name="acknowledge" value="1" { (l.t("対応開始（再通知を止める）", "Acknowledge (stop reminders)")) } }
                    }
                }
            }
        };
        Ok(layout(&a, l.t("障害記録", "Fault record"), "/faults", body))
    }
    .await)
}

/// POST /faults/{id}/comment
pub async fn comment(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let fid: FaultId = id.parse().map_err(|_| AppError::NotFound)?;
            store.comment_fault(&a.principal.scope(), &a.principal.actor(), fid, field(&pairs, "text"), field(&pairs, "acknowledge") == "1").await?;
            Ok(see_other(&format!("/faults/{id}")))
        }
        .await,
    )
}

/// GET /monitors/probes
pub async fn probes(State(store): State<Store>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(l, async { probes_page(&store, &a, None).await }.await)
}

async fn probes_page(store: &Store, a: &Authed, new_token: Option<(String, String)>) -> Result<Response, AppError> {
    let l = a.lang;
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    let list = store.list_probes(&scope).await?;
    let tenants: HashMap<_, _> = store.list_tenants(&scope).await?.into_iter().map(|t| (t.id, t.name)).collect();
    let body = html! {
        p { (l.t("リモートプローブは団体のネットワーク内から監視を実行し、結果をこのコンソールに送ります。起動方法: ", "A remote probe runs checks from inside a municipality's network and reports here. Start it with: "))
            code { "mamori probe --server https://… --token mmp_…" } }
        @if let Some((name, token)) = &new_token {
            div.ok role="status" { (l.t("プローブ「", "Probe '")) (name) (l.t("」を登録しました。トークンは今だけ表示されます:", "' registered. The token is shown only now:")) pre { (token) } }
        }
        table.compact {
            thead { tr { th { (l.t("名前", "Name")) } th { (l.t("団体", "Tenant")) } th { (l.t("最終接続", "Last contact")) } th { (l.t("接続元", "From")) } th {} } }
            tbody { @for p in &list { tr {
                td { (p.name) }
                td { (p.tenant.and_then(|t| tenants.get(&t).cloned()).unwrap_or_else(|| l.t("県（共通）", "Prefecture (shared)").to_string())) }
                td { (p.last_seen_at.map(when).unwrap_or_else(|| "—".into())) }
                td { (p.last_ip.as_deref().unwrap_or("—")) }
                td { @if a.principal.can(Permission::MonitorsWrite) {
                    form.inline method="post" action=(format!("/monitors/probes/{}/delete", p.id)) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button.danger type="submit" { (l.t("削除", "Delete")) }
                    }
                } }
            } } }
        }
        @if a.principal.can(Permission::MonitorsWrite) {
            h2 { (l.t("プローブを登録", "Register a probe")) }
            form.grid method="post" action="/monitors/probes" {
                input type="hidden" name="csrf" value=(a.csrf());
                label { (l.t("名前", "Name")) input type="text" name="name" required maxlength="100"; }
                @if a.principal.tenant_id().is_none() {
                    label { (l.t("団体（空欄なら県の共通プローブ）", "Tenant (empty: the prefecture's shared probe)"))
                        select name="tenant_id" { option value="" { "—" } @for (id, n) in &tenants { option value=(id) { (n) } } }
                    }
                }
                div.wide { button type="submit" { (l.t("登録してトークンを発行", "Register and issue a token")) } }
            }
        }
    };
    Ok(layout(a, l.t("リモートプローブ", "Remote probes"), "/monitors", body))
}

/// POST /monitors/probes
pub async fn create_probe(State(store): State<Store>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let (p, token) = super::api::register_probe(&store, &a, field(&pairs, "name"), Some(field(&pairs, "tenant_id"))).await?;
            probes_page(&store, &a, Some((p.name, token))).await
        }
        .await,
    )
}

/// POST /monitors/probes/{id}/delete
pub async fn delete_probe(State(store): State<Store>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let id = id.parse().map_err(|_| AppError::NotFound)?;
            store.delete_probe(&a.principal.scope(), &a.principal.actor(), id).await?;
            Ok(see_other("/monitors/probes"))
        }
        .await,
    )
}

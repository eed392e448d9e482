//! Fault notifications (障害通知): whether they can be sent now (what the monitor says
//! of itself, on whichever node it runs), where a tenant's go at each escalation step,
//! and test notifications. A test is asked for on this page or with
//! `POST /api/v1/notifications/tests`, stored, sent by the node running the monitor to
//! every target of the tenant's policy, and its outcome per target shows here live.
//!
//! Requirements: notification of the faults found by F01–F05.

use crate::notify::{NotifyPolicy, redact_url, targets};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use mamori_core::monitor::{Notification, NotifyTestId};
use mamori_core::{Permission, Tenant, TenantId};
use mamori_store::{ComponentNotice, NotifyTest, Store};
use mamori_web::api::{ApiResult, accepted, body, int_param, ok, tenant_param};
use mamori_web::layout::{Pairs, field, layout, page_result, see_other, when};
use mamori_web::{ApiAuth, Path, Query};
use mamori_web::{AppError, Authed, Form, Lang, PageAuth};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// The tests a page shows.
const SHOWN: i64 = 20;

/// Whose notifications: a tenant's (its policy's targets) or none, the SOC's addresses
/// (operators only). A tenant's staff always get their own; naming another tenant is
/// answered as if it did not exist.
fn whose(a: &Authed, raw: Option<&str>) -> Result<Option<TenantId>, AppError> {
    let named = tenant_param("tenant_id", raw)?;
    match a.principal.tenant_id() {
        Some(own) if named.is_some_and(|t| t != own) => Err(AppError::NotFound),
        Some(own) => Ok(Some(own)),
        None => Ok(named),
    }
}

/// Whether the monitor runs, and what it says of notifications.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NotifyStatus {
    /// The nodes on which the monitor runs now (at most one holds it at a time).
    pub running_on: Vec<String>,
    /// What the running monitor says operators should know (no mail server, mail
    /// failing, …).
    pub notices: Vec<ComponentNotice>,
}

pub(super) async fn status(store: &Store) -> Result<NotifyStatus, AppError> {
    let mut s = NotifyStatus { running_on: Vec::new(), notices: Vec::new() };
    for c in store.running_components().await?.into_iter().filter(|c| c.name == "monitor" && matches!(c.state.as_str(), "active" | "degraded")) {
        s.running_on.push(c.node);
        s.notices.extend(c.notices);
    }
    Ok(s)
}

pub(super) fn status_view(l: Lang, s: &NotifyStatus) -> Markup {
    html! {
        @if s.running_on.is_empty() {
            div.notice role="alert" { (l.t(
                "いま監視を実行しているノードがありません（停止中か起動中）。障害の検知も通知も止まっています。テスト通知は、監視が動き出したときに送られます。",
                "No node runs the monitor now (stopped or starting): faults are neither detected nor notified. Test notifications go out once it runs.")) }
        }
        @for n in &s.notices {
            div.notice role="alert" { (l.t(&n.ja, &n.en)) " " span.muted { (l.t("（", "(since ")) (when(n.since)) (l.t(" から）", ")")) } }
        }
        @if !s.running_on.is_empty() && s.notices.is_empty() {
            p.ok role="status" { (l.t("監視は動作中です（", "The monitor runs (")) (s.running_on.join(", ")) (l.t("）。通知の送信に問題は報告されていません。", "); no trouble sending notifications is reported.")) }
        }
    }
}

fn outcome(l: Lang, t: &NotifyTest) -> Markup {
    let failed = t.results.iter().filter(|n| !n.ok).count();
    html! {
        @match (t.started_at, t.done_at) {
            (_, Some(_)) if t.results.is_empty() => span.st.st-degraded { (l.t("通知先なし", "No target")) },
            (_, Some(_)) if failed == 0 => span.st.st-up { (l.t("送信済み", "Sent")) },
            (_, Some(_)) => span.st.st-down { (l.t("失敗あり", "Failed")) " " (failed) "/" (t.results.len()) },
            (Some(_), None) => span.st.st-pending { (l.t("送信中", "Sending")) },
            (None, None) => span.st.st-unknown { (l.t("待機中", "Waiting")) },
        }
    }
}

fn delivery(l: Lang, n: &Notification) -> Markup {
    let channel = if n.channel == "email" { l.t("メール", "Mail") } else { "Webhook" };
    html! {
        li {
            (channel) " " code { (n.target) } " — "
            @if n.ok { (l.t("届きました（受信側が受け付けました）", "accepted by the receiver")) }
            @else { span.failed { (n.error.as_deref().unwrap_or(l.t("失敗", "failed"))) } }
        }
    }
}

/// The tenants an operator picks from (none for a tenant's own account).
async fn tenant_choice(store: &Store, a: &Authed) -> Result<Vec<mamori_core::Tenant>, AppError> {
    Ok(if a.principal.tenant_id().is_none() { store.list_tenants(&a.principal.scope()).await? } else { Vec::new() })
}

/// The live part: whether notifications can go now, and the recent tests (`tenants`:
/// the names an operator sees, from [`tenant_choice`]).
async fn live_view(store: &Store, a: &Authed, tenant: Option<TenantId>, tenants: &[mamori_core::Tenant]) -> Result<Markup, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    let s = status(store).await?;
    let tests = store.list_notify_tests(&scope, tenant, SHOWN).await?;
    let operator = a.principal.tenant_id().is_none();
    let names: HashMap<TenantId, String> = tenants.iter().map(|t| (t.id, t.name.clone())).collect();
    Ok(html! {
        (status_view(l, &s))
        h2 #tests { (l.t("テスト通知の履歴", "Test notifications")) }
        @if tests.is_empty() {
            p.muted { (l.t("テスト通知はまだ送っていません。", "No test notification sent yet.")) }
        } @else {
            table.compact {
                thead { tr {
                    th { (l.t("依頼時刻", "Asked")) }
                    @if operator { th { (l.t("宛先", "For")) } }
                    th { (l.t("依頼者", "By")) } th { (l.t("状態", "State")) } th { (l.t("送信結果", "Deliveries")) }
                } }
                tbody { @for t in &tests { tr {
                    td.nowrap { (when(t.requested_at)) }
                    @if operator { td.nowrap { (t.tenant.map(|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string())).unwrap_or_else(|| l.t("SOC の宛先", "The SOC").to_string())) } }
                    td { (t.requested_by) }
                    td.nowrap { (outcome(l, t)) }
                    td { ul.plain { @for n in &t.results { (delivery(l, n)) } } }
                } } }
            }
        }
    })
}

/// The targets of each step of `tenant`'s policy.
fn targets_view(l: Lang, a: &Authed, tenant: &Tenant, policy: &NotifyPolicy, own_policy: bool) -> Markup {
    let steps: Vec<(u32, Vec<String>, Vec<String>)> = policy
        .steps()
        .iter()
        .map(|s| {
            let (emails, hooks) = targets(s, Some(tenant), &[], false);
            (s.after_minutes, emails, hooks.iter().map(|h| redact_url(h)).collect())
        })
        .collect();
    let nobody = steps.iter().all(|(_, e, h)| e.is_empty() && h.is_empty());
    let contacts_wanted = policy.steps().iter().any(|s| s.tenant_contacts);
    let contact_mail = tenant.contacts.iter().any(|c| crate::notify::valid_email(&c.email));
    html! {
        h2 { (l.t("通知先", "Where notifications go")) }
        p {
            (tenant.name) (l.t(" の障害は、対応開始（確認）されるまで次の段階で通知されます。", "'s faults are notified in these steps until someone acknowledges them. "))
            (if own_policy { l.t("（団体独自の通知ポリシー）", "(the tenant's own policy)") } else { l.t("（県の既定の通知ポリシー）", "(the prefecture's default policy)") })
            @if policy.repeat_minutes > 0 { " " (l.t("未対応の間は", "While unacknowledged, notifications repeat every ")) (policy.repeat_minutes) (l.t("分ごとに再通知します。", " minutes.")) }
            @if policy.notify_recovery { " " (l.t("復旧も通知します。", "Recovery is notified too.")) }
        }
        @if nobody {
            div.notice role="alert" { (l.t("通知先が一つもありません。この団体の障害は、SOC の宛先のほかには誰にも通知されません。", "There is no target: this tenant's faults reach no one but the SOC's addresses.")) }
        }
        @if contacts_wanted && !contact_mail {
            div.notice role="alert" { (l.t("「団体の連絡先に送る」段階がありますが、団体情報の連絡先にメールアドレスがありません。", "A step sends to the tenant's contacts, but no contact has an e-mail address.")) }
        }
        table.compact {
            thead { tr { th { (l.t("段階", "Step")) } th { (l.t("通知する時点", "When")) } th { (l.t("メール", "Mail")) } th { "Webhook" } } }
            tbody { @for (i, (after, emails, hooks)) in steps.iter().enumerate() { tr {
                td.num { (i + 1) }
                td.nowrap { @if *after == 0 { (l.t("検知と同時", "At once")) } @else { (after) (l.t("分後", " min after")) } }
                td { @if emails.is_empty() { "—" } @else { ul.plain { @for e in emails { li { (e) } } } } }
                td { @if hooks.is_empty() { "—" } @else { ul.plain { @for h in hooks { li { code { (h) } } } } } }
            } } }
        }
        p.muted { (l.t("このほか、SOC の宛先（mamori.toml の [components.monitor] soc_emails）には、すべての障害の最初の通知が届きます。", "The SOC's addresses ([components.monitor] soc_emails in mamori.toml) also get the first notification of every fault.")) }
        @if a.principal.can(Permission::PoliciesRead) {
            p { a.button href=(format!("/settings/policies?component=monitor&tenant={}", tenant.id)) { (l.t("通知ポリシーを編集", "Edit the notification policy")) } }
        }
    }
}

/// GET /monitors/notifications
pub async fn page(State(store): State<Store>, PageAuth(a): PageAuth, uri: Uri, Query(q): Query<HashMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsRead)?;
            let scope = a.principal.scope();
            store.note_scope(&scope, "notify_tests").await?;
            let tenant = whose(&a, q.get("tenant").map(String::as_str))?;
            let tenants = tenant_choice(&store, &a).await?;
            let view = live_view(&store, &a, tenant, &tenants).await?;
            let chosen = match tenant {
                Some(t) => Some(store.get_tenant(&scope, t).await?.ok_or(AppError::NotFound)?),
                None => None,
            };
            let policy = match tenant {
                Some(t) => store.effective_policy(&scope, Some(t), "monitor").await?,
                None => None,
            };
            let own_policy = policy.as_ref().is_some_and(|p| p.tenant.is_some());
            let policy = policy.map(|p| NotifyPolicy::from_doc(&p.document)).unwrap_or_default();
            let body = html! {
                @if a.principal.tenant_id().is_none() {
                    div.toolbar { form method="get" action="/monitors/notifications" {
                        select name="tenant" aria-label=(l.t("団体", "Tenant")) {
                            option value="" { (l.t("SOC の宛先", "The SOC's addresses")) }
                            @for t in &tenants { option value=(t.id) selected[Some(t.id) == tenant] { (t.name) } }
                        }
                        button type="submit" { (l.t("表示", "Show")) }
                    } }
                }
                div #notify-live data-live=(mamori_web::live::url("/monitors/notifications/live", uri.query())) { (view) }
                @match &chosen {
                    Some(t) => (targets_view(l, &a, t, &policy, own_policy)),
                    None => p { (l.t("団体を選ぶと、その団体の障害の通知先を段階ごとに表示します。SOC の宛先（mamori.toml の [components.monitor] soc_emails）には、すべての障害の最初の通知が届きます。", "Choose a tenant to see where its fault notifications go at each step. The SOC's addresses ([components.monitor] soc_emails in mamori.toml) get the first notification of every fault.")) },
                }
                @if a.principal.can(Permission::MonitorsWrite) {
                    h2 { (l.t("テスト通知", "Test notification")) }
                    form method="post" action="/monitors/notifications/test" {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="tenant_id" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                        p { @match &chosen {
                            Some(t) => { (t.name) (l.t(" の通知先すべて（全段階のメールと Webhook）に、テストであることを明記した通知を送ります。", "'s targets at every step (mail and webhooks) get a notification that says it is a test.")) },
                            None => (l.t("SOC の宛先に、テストであることを明記したメールを送ります。", "The SOC's addresses get a mail that says it is a test.")),
                        } }
                        button type="submit" { (l.t("テスト通知を送る", "Send a test notification")) }
                    }
                }
            };
            Ok(layout(&a, l.t("障害通知", "Fault notifications"), "/monitors", body))
        }
        .await,
    )
}

/// GET /monitors/notifications/live — the page's state and tests as a live stream.
pub async fn live(State(store): State<Store>, PageAuth(a): PageAuth, Query(q): Query<HashMap<String, String>>) -> Response {
    let tenant = match a.require(Permission::MonitorsRead).and_then(|()| whose(&a, q.get("tenant").map(String::as_str))) {
        Ok(t) => t,
        Err(e) => return mamori_web::layout::error_page(a.lang, &e),
    };
    mamori_web::live::stream(a, mamori_web::live::EVERY, move |a| {
        let store = store.clone();
        async move { live_view(&store, &a, tenant, &tenant_choice(&store, &a).await?).await }
    })
}

/// POST /monitors/notifications/test
pub async fn request(State(store): State<Store>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::MonitorsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let tenant = whose(&a, Some(field(&pairs, "tenant_id")))?;
            store.request_notify_test(&a.principal.scope(), &a.principal.actor(), tenant).await?;
            let query = tenant.map(|t| format!("?tenant={t}")).unwrap_or_default();
            Ok(see_other(&format!("/monitors/notifications{query}#tests")))
        }
        .await,
    )
}

/// GET /api/v1/notifications/status
pub async fn api_status(State(store): State<Store>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    ok(json!(status(&store).await?))
}

/// GET /api/v1/notifications/tests
pub async fn api_tests(State(store): State<Store>, ApiAuth(a): ApiAuth, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let scope = a.principal.scope();
    store.note_scope(&scope, "notify_tests").await?;
    let tenant = tenant_param("tenant", q.get("tenant").map(String::as_str))?;
    let limit = int_param(q.get("limit").map(String::as_str), "limit", 50, 1..=1000)?;
    ok(json!(store.list_notify_tests(&scope, tenant, limit).await?))
}

/// GET /api/v1/notifications/tests/{id}
pub async fn api_test(State(store): State<Store>, ApiAuth(a): ApiAuth, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::MonitorsRead)?;
    let id: NotifyTestId = id.parse().map_err(|_| AppError::NotFound)?;
    ok(json!(store.get_notify_test(&a.principal.scope(), id).await?))
}

/// What `POST /api/v1/notifications/tests` reads.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTest {
    #[serde(default)]
    tenant_id: Option<String>,
}

/// POST /api/v1/notifications/tests — 202: the monitor sends it (on whichever node it
/// runs); `GET …/tests/{id}` tells how it went.
pub async fn api_request(State(store): State<Store>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::MonitorsWrite)?;
    let n: NewTest = if bytes.iter().all(u8::is_ascii_whitespace) { NewTest::default() } else { body(&bytes)? };
    let tenant = whose(&a, n.tenant_id.as_deref())?;
    accepted(json!(store.request_notify_test(&a.principal.scope(), &a.principal.actor(), tenant).await?))
}

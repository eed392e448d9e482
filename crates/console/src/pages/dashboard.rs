//! The dashboard: an overview per municipality (operators see all, tenant staff their own).

use super::{layout, page_result, when};
use crate::auth::PageAuth;
use crate::{AppError, AppState};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Severity};
use mamori_store::UserFilter;
use mamori_store::events::EventQuery;
use maud::html;

/// GET /
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth) -> Response {
    page_result(a.lang, render(&state, &a).await)
}

async fn render(state: &AppState, a: &crate::auth::Authed) -> Result<Response, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    let tenants = if a.principal.can(Permission::TenantsRead) { state.store.list_tenants(&scope).await? } else { Vec::new() };
    let now = mamori_core::time::now_ms();
    let day_ago = now - 86_400_000;
    let (all, high, recent) = if a.principal.can(Permission::EventsRead) {
        state.store.note_scope(&scope, "events").await?;
        let all = state.bus.events().count_by_tenant(&scope, day_ago, now + 1, None).await?;
        let high = state.bus.events().count_by_tenant(&scope, day_ago, now + 1, Some(Severity::HIGH)).await?;
        let q = EventQuery { from_ms: now - 7 * 86_400_000, to_ms: now + 1, min_severity: Some(Severity::HIGH), limit: 10, ..Default::default() };
        let recent = state.bus.events().query(&scope, &q).await?.events;
        (all, high, recent)
    } else {
        Default::default()
    };
    let users = if a.principal.can(Permission::UsersRead) { state.store.list_users(&scope, &UserFilter::default()).await? } else { Vec::new() };
    let name_of = |t: mamori_core::TenantId| tenants.iter().find(|x| x.id == t).map(|x| x.name.clone()).unwrap_or_else(|| t.to_string());
    // What needs someone now, as every part counts it, per municipality.
    let mut attention = Vec::new();
    for source in a.site.attention() {
        attention.extend(source.attention(a).await?);
    }
    let mut columns: Vec<(&str, &str)> = Vec::new();
    for x in &attention {
        if !columns.contains(&x.what) {
            columns.push(x.what);
        }
    }
    let mut needing: Vec<(mamori_core::TenantId, usize)> = Vec::new();
    for x in &attention {
        match needing.iter_mut().find(|(t, _)| *t == x.tenant) {
            Some((_, n)) => *n += x.count,
            None => needing.push((x.tenant, x.count)),
        }
    }
    needing.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| name_of(a.0).cmp(&name_of(b.0))));
    // What running components say operators should know (mail not configured, …),
    // from whichever node they run on; each once (a component on several nodes says
    // it on each).
    let notices: Vec<(String, mamori_store::ComponentNotice)> = if a.principal.tenant_id().is_none() {
        let mut seen = std::collections::HashSet::new();
        let running = state.store.running_components().await?;
        running
            .into_iter()
            .flat_map(|c| c.notices.into_iter().map(move |n| (c.name.clone(), n)))
            .filter(|(c, n)| seen.insert((c.clone(), n.code.clone())))
            .collect()
    } else {
        Vec::new()
    };
    let body = html! {
        @for (_, n) in &notices {
            div.notice role="alert" { (l.t(&n.ja, &n.en)) " " span.muted { (l.t("（", "(since ")) (when(n.since)) (l.t(" から）", ")")) } }
        }
        section #attention {
            h2 { (l.t("いま対応が必要なもの", "Needs attention now")) }
            @if needing.is_empty() {
                p.ok role="status" { (l.t("対応が必要なものはありません。", "Nothing needs attention.")) }
            } @else {
                table {
                    thead { tr { th { (l.t("団体", "Tenant")) } @for (ja, en) in &columns { th.num { (l.t(ja, en)) } } } }
                    tbody { @for (t, _) in &needing { tr {
                        td.nowrap { (name_of(*t)) }
                        @for c in &columns {
                            @let cell = attention.iter().find(|x| x.tenant == *t && x.what == *c);
                            td class=(if cell.is_some() { "num alert" } else { "num" }) {
                                @match cell { Some(x) => a href=(x.href) { (x.count) }, None => "0" }
                            }
                        }
                    } } }
                }
            }
        }

        section.cards {
            div.card { h3 { (l.t("団体数", "Tenants")) } p.big { (tenants.len()) } }
            div.card { h3 { (l.t("24時間のイベント", "Events, last 24 h")) } p.big { (all.values().sum::<u64>()) } }
            div.card.warn { h3 { (l.t("24時間の重要イベント（高以上）", "High or worse, last 24 h")) } p.big { (high.values().sum::<u64>()) } }
            div.card { h3 { (l.t("利用者数", "Accounts")) } p.big { (users.len()) } }
        }
        h2 { (l.t("団体別の状況", "By municipality")) }
        table {
            thead { tr {
                th { (l.t("団体コード", "Code")) } th { (l.t("団体名", "Name")) } th { (l.t("種別", "Type")) }
                th.num { (l.t("24時間のイベント", "Events 24 h")) } th.num { (l.t("高以上", "High+")) }
                th.num { (l.t("利用者", "Accounts")) } th { (l.t("契約サービス", "Services")) }
            } }
            tbody {
                @for t in &tenants {
                    tr {
                        td { (t.code) }
                        td { a href=(format!("/tenants/{}", t.id)) { (t.name) } }
                        td { (l.t(t.kind.ja(), t.kind.en())) }
                        td.num { a href=(format!("/events?tenant={}", t.id)) { (all.get(&t.id).copied().unwrap_or(0)) } }
                        @let h = high.get(&t.id).copied().unwrap_or(0);
                        td class=(if h > 0 { "num alert" } else { "num" }) { (h) }
                        td.num { (users.iter().filter(|u| u.tenant_id == Some(t.id)).count()) }
                        td { (t.services.keys().cloned().collect::<Vec<_>>().join(" ")) }
                    }
                }
            }
        }
        @if a.principal.can(Permission::EventsRead) {
            h2 { (l.t("直近7日の重要イベント", "High-severity events, last 7 days")) }
            @if recent.is_empty() { p.muted { (l.t("ありません", "None")) } }
            @else {
                table {
                    thead { tr { th { (l.t("日時", "Time")) } th { (l.t("団体", "Tenant")) } th { (l.t("重大度", "Severity")) } th { (l.t("内容", "Message")) } } }
                    tbody { @for e in &recent { tr {
                        td { a href=(format!("/events/{}", e.event.id)) { (when(e.event.time)) } }
                        td { (name_of(e.event.tenant)) }
                        td { span class=(format!("sev sev{}", e.event.severity.0)) { (l.t(e.event.severity.ja(), e.event.severity.en())) } }
                        td { (e.event.message) }
                    } } }
                }
            }
        }
    };
    Ok(layout(a, l.t("ダッシュボード", "Dashboard"), "/", body))
}

//! イベント検索 → 証拠保全 (`/events/holds`): legal holds on a tenant's events.
//! Everyone who may read events sees the holds of their scope; operators with
//! `events:write` place them (tenant, range, reason, reference) and release them.
//! Each change is audited (`events.hold`, `events.release`); a released hold stays
//! listed as a record with `?all=1`.

use super::{Pairs, field, layout, page_result, problems, see_other, when};
use crate::api::holds::hold_from;
use crate::auth::{Authed, PageAuth};
use crate::{AppError, AppState};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, TenantId};
use mamori_web::{Form, Path, Query};
use maud::{Markup, html};
use std::collections::HashMap;

/// Whether `a` may place and release holds: the guard of the handlers below.
fn may_change(a: &Authed) -> bool {
    a.require_operator(Permission::EventsWrite).is_ok()
}

async fn body(state: &AppState, a: &Authed, all: bool, error: Option<&AppError>, form: Option<&Pairs>) -> Result<Markup, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    state.store.note_scope(&scope, "event_holds").await?;
    let holds = state.store.list_event_holds(&scope, all).await?;
    let tenants = state.store.list_tenants(&scope).await?;
    let name = |t: TenantId| tenants.iter().find(|x| x.id == t).map(|x| format!("{}（{}）", x.name, x.code)).unwrap_or_else(|| t.to_string());
    let value = |k: &str| form.map(|f| field(f, k).to_string()).unwrap_or_default();
    Ok(html! {
        p { (l.t(
            "保全中のイベントは、保存期間を過ぎても削除されません。解除すると、次回の削除処理で通常どおり保存期間が適用されます。保全と解除は監査ログに記録されます。",
            "Events under a hold are not purged, whatever their retention. Once released, retention applies again at the next purge. Placing and releasing are recorded in the audit log.",
        )) }
        div.toolbar {
            @if all { a href="/events/holds" { (l.t("保全中のみ表示", "Show holds in force only")) } }
            @else { a href="/events/holds?all=1" { (l.t("解除済みも表示", "Show released holds too")) } }
        }
        @if holds.is_empty() {
            p.empty { (l.t("保全はありません。", "No holds.")) }
        } @else {
            table {
                thead { tr {
                    th { (l.t("団体", "Tenant")) } th { (l.t("期間", "Range")) } th { (l.t("理由", "Reason")) } th { (l.t("参照番号", "Reference")) }
                    th { (l.t("保全した人・日時", "Placed by")) } th { (l.t("状態", "State")) } th {}
                } }
                tbody { @for h in &holds { tr {
                    td { (name(h.tenant)) }
                    td.nowrap { (when(h.from_ms)) " 〜 " (when(h.to_ms)) }
                    td { (h.reason) }
                    td { (h.reference) }
                    td { (h.created_by) br; small { (when(h.created_at)) } }
                    td { @match (&h.released_by, h.released_at) {
                        (Some(by), Some(at)) => { span.badge { (l.t("解除済み", "Released")) } br; small { (by) " " (when(at)) } },
                        _ => span.badge.ok { (l.t("保全中", "In force")) },
                    } }
                    td { @if may_change(a) && h.released_at.is_none() {
                        form.inline method="post" action=(format!("/events/holds/{}/release", h.id)) {
                            input type="hidden" name="csrf" value=(a.csrf());
                            label.inline { input type="checkbox" name="confirm" required; (l.t("解除を確認", "Confirm")) }
                            button.danger type="submit" { (l.t("解除", "Release")) }
                        }
                    } }
                } } }
            }
        }
        @if may_change(a) {
            h2 { (l.t("保全する", "Place a hold")) }
            @if let Some(e) = error { (problems(l, e)) }
            form.grid method="post" action="/events/holds" {
                input type="hidden" name="csrf" value=(a.csrf());
                label { (l.t("団体", "Tenant")) select name="tenant" required {
                    @for t in &tenants { option value=(t.id) selected[value("tenant") == t.id.to_string()] { (t.name) "（" (t.code) "）" } }
                } }
                label { (l.t("開始（例: 2026-11-01）", "From (e.g. 2026-11-01)")) input type="text" name="from" required value=(value("from")); }
                label { (l.t("終了（日付のみはその日の終わりまで）", "To (a date alone: through that day)")) input type="text" name="to" required value=(value("to")); }
                label { (l.t("参照番号（事案番号・依頼文書の番号など）", "Reference (case number, letter)")) input type="text" name="reference" maxlength="200" value=(value("reference")); }
                label.wide { (l.t("理由", "Reason")) textarea name="reason" rows="2" required maxlength="500" { (value("reason")) } }
                div.wide { button type="submit" { (l.t("保全する", "Place the hold")) } }
            }
        }
    })
}

async fn render(state: &AppState, a: &Authed, all: bool, error: Option<&AppError>, form: Option<&Pairs>) -> Result<Response, AppError> {
    let l = a.lang;
    let mut r = layout(a, l.t("証拠保全", "Legal holds"), "/events", body(state, a, all, error, form).await?);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// GET /events/holds
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<HashMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::EventsRead)?;
            render(&state, &a, q.get("all").is_some_and(|v| v == "1"), None, None).await
        }
        .await,
    )
}

/// POST /events/holds
pub async fn place(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::EventsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let result = async {
                let tenant: TenantId = field(&pairs, "tenant").parse().map_err(|_| AppError::NotFound)?;
                let hold = hold_from(tenant, field(&pairs, "from"), field(&pairs, "to"), field(&pairs, "reason"), field(&pairs, "reference"))?;
                state.store.place_event_hold(&a.principal.scope(), &a.principal.actor(), hold).await?;
                Ok::<_, AppError>(())
            }
            .await;
            match result {
                Ok(()) => Ok(see_other("/events/holds")),
                Err(e @ AppError::Invalid(_)) => render(&state, &a, false, Some(&e), Some(&pairs)).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// POST /events/holds/{id}/release
pub async fn release(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::EventsWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            if field(&pairs, "confirm") != "on" {
                return Err(AppError::Invalid(
                    mamori_core::Problem::new("confirm", "required", "解除するには「解除を確認」に印を付けてください", "tick Confirm to release").into(),
                ));
            }
            let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
            state.store.release_event_hold(&a.principal.scope(), &a.principal.actor(), id).await?;
            Ok(see_other("/events/holds"))
        }
        .await,
    )
}

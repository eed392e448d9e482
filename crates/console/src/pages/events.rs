//! Event search: filters, a histogram (SVG), results with keyset paging, and the
//! detail of one event (its OCSF document and raw original).
//!
//! Requirements: event search of log collection and analysis (F18) and the SOC's
//! monitoring (F20).

use super::{layout, page_result, when};
use crate::auth::PageAuth;
use crate::{AppError, AppState, Lang};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Disposition, EventClass, Permission, Problem, Problems, Severity, TenantId};
use mamori_store::events::{EventQuery, FieldFilter};
use mamori_web::{Path, Query};
use maud::html;
use serde::Deserialize;

/// Search form, also the query string of the API (`GET /api/v1/events`).
#[derive(Deserialize, Default, Clone, Debug)]
pub struct SearchParams {
    /// Start: RFC 3339, `YYYY-MM-DD HH:MM` (JST) or Unix ms. Default: 24 hours ago.
    pub from: Option<String>,
    /// End (exclusive). Default: now.
    pub to: Option<String>,
    /// Tenant id (operators).
    pub tenant: Option<String>,
    /// OCSF class_uid.
    pub class: Option<String>,
    /// Lowest severity_id.
    pub severity: Option<String>,
    /// disposition_id.
    pub disposition: Option<String>,
    /// Full-text words (Japanese substrings match).
    pub q: Option<String>,
    /// Field filters, `path=value` one per line (or separated by `;`).
    pub fields: Option<String>,
    /// Page size (1–1000, default 50).
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl SearchParams {
    /// Builds the store query, checking every field.
    pub fn to_query(&self) -> Result<EventQuery, AppError> {
        let mut problems = Problems::default();
        let now = mamori_core::time::now_ms();
        let mut time = |field: &'static str, v: &Option<String>, default: i64| match nonempty(v) {
            None => default,
            Some(s) => mamori_core::time::parse_time(s).unwrap_or_else(|| {
                problems.push(Problem::new(
                    field,
                    "invalid_time",
                    format!("日時「{s}」を読めません（例: 2026-11-22 09:00）"),
                    format!("cannot read time '{s}' (e.g. 2026-11-22 09:00)"),
                ));
                default
            }),
        };
        let from_ms = time("from", &self.from, now - 86_400_000);
        let to_ms = time("to", &self.to, now + 1);
        let mut number = |field: &'static str, v: &Option<String>| -> Option<u32> {
            let s = nonempty(v)?;
            s.parse::<u32>()
                .map_err(|_| {
                    problems.push(Problem::new(field, "invalid_number", format!("{field} は数値で指定してください"), format!("{field} must be a number")))
                })
                .ok()
        };
        let class = number("class", &self.class);
        let severity = number("severity", &self.severity);
        let disposition = number("disposition", &self.disposition);
        let tenants = match nonempty(&self.tenant) {
            None => Vec::new(),
            Some(t) => match t.parse::<TenantId>() {
                Ok(t) => vec![t],
                Err(_) => {
                    problems.push(Problem::new("tenant", "invalid_tenant", "団体の指定が正しくありません", "tenant is not a valid id"));
                    Vec::new()
                }
            },
        };
        let mut fields = Vec::new();
        for line in self.fields.as_deref().unwrap_or("").split(['\n', ';']).map(str::trim).filter(|l| !l.is_empty()) {
            match FieldFilter::parse(line) {
                Ok(f) => fields.push(f),
                Err(p) => problems.push(p),
            }
        }
        problems
            .into_result(EventQuery {
                from_ms,
                to_ms,
                classes: class.map(EventClass).into_iter().collect(),
                min_severity: severity.map(|s| Severity(s.min(99) as u8)),
                dispositions: disposition.map(|d| Disposition(d.min(99) as u8)).into_iter().collect(),
                tenants,
                text: nonempty(&self.q).map(str::to_string),
                fields,
                limit: self.limit.unwrap_or(50),
                cursor: nonempty(&self.cursor).map(str::to_string),
            })
            .map_err(AppError::Invalid)
    }

    fn link_with_cursor(&self, cursor: &str) -> String {
        let mut s = String::from("/events?");
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("tenant", &self.tenant),
            ("class", &self.class),
            ("severity", &self.severity),
            ("disposition", &self.disposition),
            ("q", &self.q),
            ("fields", &self.fields),
        ] {
            if let Some(v) = nonempty(v) {
                s.push_str(&format!("{k}={}&", super::audit::urlencode(v)));
            }
        }
        s.push_str(&format!("cursor={}", super::audit::urlencode(cursor)));
        s
    }
}

/// GET /events
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth, Query(p): Query<SearchParams>) -> Response {
    let l = a.lang;
    page_result(l, async {
        a.require(Permission::EventsRead)?;
        let scope = a.principal.scope();
        let tenants = state.store.list_tenants(&scope).await?;
        let name_of = |t: TenantId| tenants.iter().find(|x| x.id == t).map(|x| x.name.clone()).unwrap_or_default();
        let (result, error) = match p.to_query() {
            Ok(q) => {
                state.store.note_scope(&scope, "events").await?;
                match (state.bus.events().query(&scope, &q).await, state.bus.events().histogram(&scope, &q, 60).await) {
                    (Ok(page), Ok(h)) => (Some((q, page, h)), None),
                    (Err(e), _) | (_, Err(e)) => (None, Some(AppError::from(e))),
                }
            }
            Err(e) => (None, Some(e)),
        };
        if let Some(AppError::Internal(_)) = &error {
            return Err(error.unwrap_or(AppError::Internal(String::new())));
        }
        let sel = |v: &Option<String>, x: String| nonempty(v) == Some(x.as_str());
        let body = html! {
            form.filters method="get" action="/events" {
                label { (l.t("開始", "From")) input type="text" name="from" value=(p.from.clone().unwrap_or_default()) placeholder=(l.t("既定: 24時間前", "default: 24 h ago")) title=(l.t("例: 2026-11-22 09:00", "e.g. 2026-11-22 09:00")); }
                label { (l.t("終了", "To")) input type="text" name="to" value=(p.to.clone().unwrap_or_default()) placeholder=(l.t("既定: 現在", "default: now")); }
                @if a.principal.tenant_id().is_none() {
                    label { (l.t("団体", "Tenant")) select name="tenant" {
                        option value="" { (l.t("すべて", "All")) }
                        @for t in &tenants { option value=(t.id) selected[sel(&p.tenant, t.id.to_string())] { (t.name) } }
                    } }
                }
                label { (l.t("種類", "Class")) select name="class" {
                    option value="" { (l.t("すべて", "All")) }
                    @for c in EventClass::KNOWN { option value=(c.0) selected[sel(&p.class, c.0.to_string())] { (l.t(c.ja(), c.en())) } }
                } }
                label { (l.t("重大度（以上）", "Severity (at least)")) select name="severity" {
                    option value="" { (l.t("すべて", "All")) }
                    @for s in Severity::ALL { option value=(s.0) selected[sel(&p.severity, s.0.to_string())] { (l.t(s.ja(), s.en())) } }
                } }
                label { (l.t("処理", "Disposition")) select name="disposition" {
                    option value="" { (l.t("すべて", "All")) }
                    @for d in Disposition::KNOWN { option value=(d.0) selected[sel(&p.disposition, d.0.to_string())] { (l.t(d.ja(), d.en())) } }
                } }
                label.half { (l.t("キーワード（全文検索）", "Words (full text)")) input type="search" name="q" value=(p.q.clone().unwrap_or_default()); }
                label.half { (l.t("項目の条件（例: src_endpoint.ip=192.0.2.1、複数は ; 区切り）", "Field conditions (e.g. src_endpoint.ip=192.0.2.1; separate with ;)"))
                    input type="text" name="fields" value=(p.fields.clone().unwrap_or_default());
                }
                button type="submit" { (l.t("検索", "Search")) }
            }
            @if let Some(e) = &error { (super::problems(l, e)) }
            @if let Some((q, page, h)) = &result {
                p.muted { (l.t("該当件数", "Matches")) ": " (h.total) " · " (when(q.from_ms)) " – " (when(q.to_ms)) }
                (mamori_web::svg::histogram(&h.counts, [&when(h.from_ms), &when(h.from_ms + h.bucket_ms * (h.counts.len() as i64) / 2), &when(h.from_ms + h.bucket_ms * h.counts.len() as i64)], l.t("イベント件数の推移", "Events over time")))
                table {
                    thead { tr { th { (l.t("日時", "Time")) } th { (l.t("団体", "Tenant")) } th { (l.t("種類", "Class")) } th { (l.t("重大度", "Severity")) } th { (l.t("処理", "Disposition")) } th { (l.t("送信元", "Source")) } th { (l.t("内容", "Message")) } } }
                    tbody { @for s in &page.events { @let e = &s.event; tr {
                        td.nowrap { a href=(format!("/events/{}", e.id)) { (when(e.time)) } }
                        td { (name_of(e.tenant)) }
                        td { (l.t(e.class.ja(), e.class.en())) }
                        td { span class=(format!("sev sev{}", e.severity.0)) { (l.t(e.severity.ja(), e.severity.en())) } }
                        td { (e.disposition.map(|d| l.t(d.ja(), d.en())).unwrap_or("")) }
                        td { (e.src.as_ref().and_then(|s| s.ip.clone()).unwrap_or_default()) }
                        td { (e.message) }
                    } } }
                }
                @if let Some(c) = &page.next_cursor { p { a href=(p.link_with_cursor(c)) { (l.t("次のページ", "Next page")) " →" } } }
            }
        };
        Ok(layout(&a, l.t("イベント検索", "Event search"), "/events", body))
    }
    .await)
}

/// GET /events/{id}
pub async fn show(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>) -> Response {
    let l: Lang = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::EventsRead)?;
            let scope = a.principal.scope();
            let id = id.parse().map_err(|_| AppError::NotFound)?;
            state.store.note_scope(&scope, "events").await?;
            let s = state.bus.events().get(&scope, id).await?.ok_or(AppError::NotFound)?;
            let tenant = state.store.get_tenant(&scope, s.event.tenant).await?;
            let e = &s.event;
            let body = html! {
                dl.facts {
                    dt { (l.t("日時", "Time")) } dd { (when(e.time)) }
                    dt { (l.t("団体", "Tenant")) } dd { (tenant.map(|t| t.name).unwrap_or_default()) }
                    dt { (l.t("種類", "Class")) } dd { (l.t(e.class.ja(), e.class.en())) " (" (e.class.0) ")" }
                    dt { (l.t("重大度", "Severity")) } dd { (l.t(e.severity.ja(), e.severity.en())) }
                    dt { (l.t("内容", "Message")) } dd { (e.message) }
                    dt { (l.t("製品", "Product")) } dd { (e.product.name) }
                }
                h2 { "OCSF" }
                pre { (serde_json::to_string_pretty(&s.doc).unwrap_or_default()) }
                @if let Some(raw) = &e.raw { h2 { (l.t("元のログ", "Original record")) } pre { (raw) } }
            };
            Ok(layout(&a, l.t("イベント詳細", "Event"), "/events", body))
        }
        .await,
    )
}

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
use mamori_store::events::StoredEvent;
use mamori_store::events::{EventQuery, FieldFilter};
use mamori_web::table::{Table, TableQuery, num};
use mamori_web::{Path, Query};
use maud::html;
use serde::Deserialize;
use std::collections::BTreeMap;

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
}

/// The most events a CSV export has (the newest first); a longer search is narrowed
/// by its time range.
pub const EXPORT_MAX: usize = 10_000;

/// Returns the events matching `q`, newest first, at most [`EXPORT_MAX`].
async fn export_events(state: &AppState, scope: &mamori_store::Scope, mut q: EventQuery) -> Result<Vec<StoredEvent>, AppError> {
    let mut out = Vec::new();
    q.cursor = None;
    loop {
        q.limit = (EXPORT_MAX - out.len()).min(mamori_store::events::MAX_LIMIT);
        let page = state.bus.events().query(scope, &q).await?;
        out.extend(page.events);
        match page.next_cursor {
            Some(c) if out.len() < EXPORT_MAX => q.cursor = Some(c),
            _ => return Ok(out),
        }
    }
}

fn endpoint(e: &Option<mamori_core::Endpoint>) -> String {
    match e {
        Some(mamori_core::Endpoint { ip: Some(ip), port: Some(port), .. }) => format!("{ip}:{port}"),
        Some(e) => e.ip.clone().or_else(|| e.hostname.clone()).unwrap_or_default(),
        None => String::new(),
    }
}

/// Search results: one page of the store's cursor, sortable within it; the CSV export
/// (`?format=csv`) has every match up to [`EXPORT_MAX`], with the id, UTC time,
/// destination and product besides.
fn table<'a>(l: Lang, names: &'a BTreeMap<TenantId, String>, next: Option<String>) -> Table<'a, StoredEvent> {
    let tenant = |s: &StoredEvent| names.get(&s.event.tenant).cloned().unwrap_or_default();
    let class = move |s: &StoredEvent| l.t(s.event.class.ja(), s.event.class.en()).to_string();
    let disposition = move |s: &StoredEvent| s.event.disposition.map(|d| l.t(d.ja(), d.en())).unwrap_or("").to_string();
    Table::new("/events", "events.csv")
        .keyset("cursor", next)
        .column(
            "time",
            ("日時", "Time"),
            |s: &StoredEvent| html! { a href=(format!("/events/{}", s.event.id)) { (when(s.event.time)) } },
            |s| when(s.event.time),
            num(|s: &StoredEvent| Some(s.event.time as f64)),
        )
        .nowrap()
        .text_column("tenant", ("団体", "Tenant"), tenant)
        .column("class", ("種類", "Class"), move |s: &StoredEvent| html! { (class(s)) }, class, num(|s: &StoredEvent| Some(f64::from(s.event.class.0))))
        .column(
            "severity",
            ("重大度", "Severity"),
            move |s: &StoredEvent| html! { span class=(format!("sev sev{}", s.event.severity.0)) { (l.t(s.event.severity.ja(), s.event.severity.en())) } },
            move |s| l.t(s.event.severity.ja(), s.event.severity.en()).to_string(),
            num(|s: &StoredEvent| Some(f64::from(s.event.severity.0))),
        )
        .text_column("disposition", ("処理", "Disposition"), disposition)
        .text_column("src", ("送信元", "Source"), |s: &StoredEvent| endpoint(&s.event.src))
        .text_column("dst", ("宛先", "Destination"), |s: &StoredEvent| endpoint(&s.event.dst))
        .csv_only()
        .text_column("message", ("内容", "Message"), |s: &StoredEvent| s.event.message.clone())
        .text_column("product", ("製品", "Product"), |s: &StoredEvent| s.event.product.name.clone())
        .csv_only()
        .column("id", ("イベント ID", "Event id"), |_: &StoredEvent| html! {}, |s| s.event.id.to_string(), None)
        .csv_only()
        .column("time_utc", ("日時（UTC）", "Time (UTC)"), |_: &StoredEvent| html! {}, |s| mamori_core::time::format_rfc3339(s.event.time), None)
        .csv_only()
        .column(
            "received_utc",
            ("受信日時（UTC）", "Received (UTC)"),
            |_: &StoredEvent| html! {},
            |s| s.event.received.map(mamori_core::time::format_rfc3339).unwrap_or_default(),
            None,
        )
        .csv_only()
}

/// GET /events
pub async fn page(
    State(state): State<AppState>,
    PageAuth(a): PageAuth,
    Query(p): Query<SearchParams>,
    Query(raw): Query<BTreeMap<String, String>>,
) -> Response {
    let l = a.lang;
    page_result(l, async {
        a.require(Permission::EventsRead)?;
        let scope = a.principal.scope();
        let tenants = state.store.list_tenants(&scope).await?;
        let names: BTreeMap<TenantId, String> = tenants.iter().map(|t| (t.id, t.name.clone())).collect();
        let tq = TableQuery::from_query(&raw);
        if tq.wants_csv() {
            let q = p.to_query()?;
            state.store.note_scope(&scope, "events").await?;
            let events = export_events(&state, &scope, q).await?;
            return Ok(table(l, &names, None).csv(l, &events, &tq));
        }
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
            div.toolbar { a href="/events/holds" { (l.t("証拠保全（保全中の期間）", "Legal holds")) } }
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
                (table(l, &names, page.next_cursor.clone()).render(l, &page.events, &tq))
                @if h.total > EXPORT_MAX as u64 {
                    p.muted { (l.t(&format!("CSV 出力は新しい順に {EXPORT_MAX} 件までです。それより古いものは期間を絞って出力してください。"), &format!("The CSV export has the newest {EXPORT_MAX} events; narrow the time range for older ones."))) }
                }
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
                    @if let Some(r) = e.received {
                        dt { (l.t("受信日時", "Received")) } dd { (when(r)) }
                    }
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

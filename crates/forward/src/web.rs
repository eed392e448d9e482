//! The forwarding page (転送, `/forwarding`) and `GET /api/v1/forwarding`: each
//! destination of this node with its cursor, lag, counts and last failure. Operators
//! only: destinations name tenants and receivers across the prefecture.

use crate::status::{self, Status};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use mamori_bus::Bus;
use mamori_core::Permission::EventsRead;
use mamori_store::Store;
use mamori_web::api::{ApiResult, ok, route};
use mamori_web::layout::{layout, page_result, when};
use mamori_web::{ApiAuth, Lang, NavEntry, PageAuth, RouteDoc, WebCx, WebPart};
use maud::{Markup, html};
use serde::Serialize;
use serde_json::json;

/// The API of the forwarder.
pub const ROUTES: &[RouteDoc] = &[route(
    "GET",
    "/api/v1/forwarding",
    "forwarding",
    "Event forwarding destinations of this node: cursor, lag, events sent, refused and lost, last failure (operator roles)",
    Some(EventsRead),
    &[],
    None,
)
.returns(200, "Forwarding")];

const PAGES: &[&str] = &["/forwarding"];

const NAV: &[NavEntry] = &[NavEntry::new("/forwarding", "イベント転送", "Forwarding", 31).needs(EventsRead).operators()];

#[derive(Clone)]
struct Cx {
    store: Store,
    bus: Bus,
}

/// One destination as the page and the API show it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Row {
    /// Its last written state.
    #[serde(flatten)]
    pub status: Status,
    /// Events acknowledged on this node not yet dealt with.
    pub lag: u64,
}

/// What `GET /api/v1/forwarding` returns.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Forwarding {
    /// The node.
    pub node: String,
    /// The end of the log it forwards.
    pub log_end: u64,
    /// Its destinations.
    pub destinations: Vec<Row>,
}

fn rows(bus: &Bus) -> Forwarding {
    let end = bus.end();
    let destinations = status::all(&status::dir(bus))
        .into_iter()
        .map(|s| {
            let lag = s.lag(end);
            Row { status: s, lag }
        })
        .collect();
    Forwarding { node: mamori_runtime::hostname(), log_end: end, destinations }
}

pub(crate) fn part(cx: &WebCx) -> WebPart {
    let router =
        Router::new().route("/forwarding", get(page)).route("/api/v1/forwarding", get(api)).with_state(Cx { store: cx.store.clone(), bus: cx.bus.clone() });
    WebPart::new("forward", router)
        .api(ROUTES)
        .pages(PAGES)
        .nav(NAV)
        .schemas(mamori_web::api::Schemas::default().with::<Forwarding>("Forwarding").into_map().into())
}

async fn api(State(cx): State<Cx>, ApiAuth(a): ApiAuth) -> ApiResult {
    a.require_operator(EventsRead)?;
    cx.store.note_scope(&a.principal.scope(), "forwarding").await?;
    ok(json!(rows(&cx.bus)))
}

fn state(l: Lang, s: &Status) -> Markup {
    if !s.enabled {
        html! { span.badge { (l.t("停止中", "Paused")) } }
    } else if let Some(since) = s.failing_since {
        html! { span.badge.bad { (l.t("送信できません", "Failing")) } " " small { (when(since)) (l.t(" から", " since")) } }
    } else {
        html! { span.badge.ok { (l.t("正常", "OK")) } }
    }
}

async fn page(State(cx): State<Cx>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(EventsRead)?;
            cx.store.note_scope(&a.principal.scope(), "forwarding").await?;
            let f = rows(&cx.bus);
            let body = html! {
                p { (l.t(
                    "外部の SOC 事業者や既存の SIEM へのイベント転送です。転送先ごとのカーソルで、すべてのイベントを少なくとも一度送ります。転送先は mamori.toml の [components.forward] で設定します。この表はこのノードの転送先です。",
                    "Event forwarding to outside SOC contractors and existing SIEMs: each destination reads by its own cursor and gets every event at least once. Destinations are set in [components.forward] of mamori.toml. This table shows this node's destinations.",
                )) }
                @if f.destinations.is_empty() {
                    p.empty { (l.t("転送先はありません。", "No destinations.")) }
                } @else {
                    table {
                        thead { tr {
                            th { (l.t("転送先", "Destination")) } th { (l.t("種類・宛先", "Kind and target")) } th { (l.t("対象", "Scope")) }
                            th { (l.t("状態", "State")) } th.num { (l.t("未送信", "Lag")) } th.num { (l.t("送信済み", "Sent")) }
                            th.num { (l.t("拒否", "Refused")) } th.num { (l.t("欠落", "Lost")) } th { (l.t("最終送信", "Last sent")) } th { (l.t("最後のエラー", "Last error")) }
                        } }
                        tbody { @for r in &f.destinations { tr {
                            td { (r.status.name) }
                            td { (r.status.kind) br; small { code { (r.status.target) } } }
                            td {
                                @if r.status.tenants.is_empty() { (l.t("全団体", "All tenants")) } @else { (r.status.tenants.join(", ")) }
                                br; small { @if r.status.classes.is_empty() { (l.t("全クラス", "All classes")) } @else { (r.status.classes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) } }
                            }
                            td { (state(l, &r.status)) }
                            td.num { (r.lag) }
                            td.num { (r.status.sent) }
                            td.num { (r.status.rejected) }
                            td.num { (r.status.skipped) }
                            td { @match r.status.last_sent { Some(t) => (when(t)), None => "—" } }
                            td { @match &r.status.last_error { Some(e) => { small { (when(e.at)) } br; (e.text) }, None => "—" } }
                        } } }
                    }
                }
            };
            Ok(layout(&a, l.t("イベント転送", "Event forwarding"), "/forwarding", body))
        }
        .await,
    )
}

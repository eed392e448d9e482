//! The monitoring pages and API, the monitor's web part: the status board, a
//! municipality's standard monitors, one monitor's history, fault records (障害記録)
//! and remote probes, under `/monitors`, `/faults`, `/api/v1/monitors`,
//! `/api/v1/faults`, `/api/v1/probes` and the probes' own `/api/v1/probe/*`.
//!
//! The handlers read the config store only, so they work on every node that serves
//! the console, whichever node runs the monitor; a probe may post its results to any
//! node (they are queued in the store for the node holding the monitor's lease).

mod api;
mod board;
mod notifications;
mod pages;

pub use board::{BoardRow, MonthUptime};

use axum::Router;
use axum::routing::{get, post};
use mamori_core::Permission::{MonitorsRead, MonitorsWrite};
use mamori_web::api::route;
use mamori_web::{FixtureCx, FixtureFuture, IsolationFixture, NavEntry, RouteDoc, WebCx, WebPart};
use serde_json::json;
use std::sync::Arc;

/// Every API endpoint of the monitor.
pub const ROUTES: &[RouteDoc] = &[
    route("GET", "/api/v1/monitors", "monitors", "Status board: monitors in scope with state and 30-day uptime", Some(MonitorsRead), &["tenant"], None)
        .returns(200, "BoardRows"),
    route("POST", "/api/v1/monitors", "monitors", "Create a monitor (operators name tenant_id)", Some(MonitorsWrite), &[], Some("MonitorSpec"))
        .returns(201, "Monitor"),
    route(
        "POST",
        "/api/v1/monitors/standard",
        "monitors",
        "Create a municipality's standard monitors (web, mail relay, proxy, DNS)",
        Some(MonitorsWrite),
        &[],
        Some("StandardSet"),
    )
    .returns(201, "Monitors"),
    route("GET", "/api/v1/monitors/{id}", "monitors", "Get a monitor and its state", Some(MonitorsRead), &[], None).returns(200, "MonitorWithState"),
    route(
        "PUT",
        "/api/v1/monitors/{id}",
        "monitors",
        "Replace a monitor's settings, every field (a masked password keeps the stored one; use PATCH to change some)",
        Some(MonitorsWrite),
        &[],
        Some("MonitorSpec"),
    )
    .returns(200, "Monitor"),
    route(
        "PATCH",
        "/api/v1/monitors/{id}",
        "monitors",
        "Change some of a monitor's settings (JSON merge patch; the others stay)",
        Some(MonitorsWrite),
        &[],
        Some("MonitorPatch"),
    )
    .returns(200, "Monitor"),
    route("DELETE", "/api/v1/monitors/{id}", "monitors", "Delete a monitor (its fault records stay)", Some(MonitorsWrite), &[], None).returns(200, "Deleted"),
    route("GET", "/api/v1/monitors/{id}/results", "monitors", "Check results, oldest first", Some(MonitorsRead), &["from", "to", "limit"], None)
        .returns(200, "ResultRows"),
    route("GET", "/api/v1/monitors/{id}/uptime", "monitors", "Availability per month (Japan time)", Some(MonitorsRead), &["months"], None)
        .returns(200, "MonthUptimes"),
    route(
        "GET",
        "/api/v1/faults",
        "monitors",
        "Fault records (障害記録), newest first",
        Some(MonitorsRead),
        &["tenant", "monitor", "open", "from", "to", "limit"],
        None,
    )
    .returns(200, "Faults"),
    route("GET", "/api/v1/faults/{id}", "monitors", "A fault record with timeline and notifications", Some(MonitorsRead), &[], None).returns(200, "Fault"),
    route("POST", "/api/v1/faults/{id}/comments", "monitors", "Comment on (or acknowledge) a fault", Some(MonitorsWrite), &[], Some("FaultComment"))
        .returns(200, "Fault"),
    route("GET", "/api/v1/probes", "monitors", "Remote probes in scope", Some(MonitorsRead), &[], None).returns(200, "Probes"),
    route("POST", "/api/v1/probes", "monitors", "Register a remote probe (its token is returned once)", Some(MonitorsWrite), &[], Some("NewProbe"))
        .returns(201, "CreatedProbe"),
    route("DELETE", "/api/v1/probes/{id}", "monitors", "Remove a remote probe (its monitors go back to the core)", Some(MonitorsWrite), &[], None)
        .returns(200, "Deleted"),
    route(
        "GET",
        "/api/v1/notifications/status",
        "monitors",
        "Whether fault notifications can be sent now: the nodes running the monitor and what it reports (no mail server, mail failing)",
        Some(MonitorsRead),
        &[],
        None,
    )
    .returns(200, "NotifyStatus"),
    route("GET", "/api/v1/notifications/tests", "monitors", "Test notifications, newest first", Some(MonitorsRead), &["tenant", "limit"], None)
        .returns(200, "NotifyTests"),
    route(
        "POST",
        "/api/v1/notifications/tests",
        "monitors",
        "Ask for a test notification to every target of a tenant's policy (operators: no tenant_id, the SOC's addresses); the monitor sends it",
        Some(MonitorsWrite),
        &[],
        Some("NewNotifyTest"),
    )
    .returns(202, "NotifyTest"),
    route("GET", "/api/v1/notifications/tests/{id}", "monitors", "A test notification and how each delivery went", Some(MonitorsRead), &[], None)
        .returns(200, "NotifyTest"),
    route("GET", "/api/v1/probe/monitors", "probe", "For a probe (probe token): its assigned monitors", None, &[], None).returns(200, "Assignments"),
    route("POST", "/api/v1/probe/results", "probe", "For a probe (probe token): submit check results (up to 1000)", None, &[], Some("CheckResults"))
        .returns(202, "ResultsAccepted"),
];

/// Every page of the monitor (GET).
pub const PAGES: &[&str] = &[
    "/monitors",
    "/monitors/live",
    "/monitors/new",
    "/monitors/new-custom",
    "/monitors/probes",
    "/monitors/notifications",
    "/monitors/notifications/live",
    "/monitors/{id}",
    "/faults",
    "/faults/{id}",
];

const NAV: &[NavEntry] =
    &[NavEntry::new("/monitors", "サービス監視", "Monitoring", 20).needs(MonitorsRead), NavEntry::new("/faults", "障害記録", "Faults", 21).needs(MonitorsRead)];

/// Returns the monitor's web part.
pub fn part(cx: &WebCx) -> WebPart {
    let router = Router::new()
        .route("/monitors", get(pages::list))
        .route("/monitors/live", get(pages::live))
        .route("/monitors/new", get(pages::new_form).post(pages::create_set))
        .route("/monitors/new-custom", get(pages::custom_new).post(pages::custom_create))
        .route("/monitors/probes", get(pages::probes).post(pages::create_probe))
        .route("/monitors/probes/{id}/delete", post(pages::delete_probe))
        .route("/monitors/notifications", get(notifications::page))
        .route("/monitors/notifications/live", get(notifications::live))
        .route("/monitors/notifications/test", post(notifications::request))
        .route("/monitors/{id}", get(pages::show).post(pages::update))
        .route("/monitors/{id}/toggle", post(pages::toggle))
        .route("/monitors/{id}/maintenance", post(pages::add_maintenance))
        .route("/monitors/{id}/maintenance/{i}/delete", post(pages::delete_maintenance))
        .route("/monitors/{id}/delete", post(pages::delete))
        .route("/faults", get(pages::faults))
        .route("/faults/{id}", get(pages::fault))
        .route("/faults/{id}/comment", post(pages::comment))
        .route("/api/v1/monitors", get(api::list).post(api::create))
        .route("/api/v1/monitors/standard", post(api::create_standard_set))
        .route("/api/v1/monitors/{id}", get(api::get).put(api::update).patch(api::patch).delete(api::delete))
        .route("/api/v1/monitors/{id}/results", get(api::results))
        .route("/api/v1/monitors/{id}/uptime", get(api::uptime))
        .route("/api/v1/faults", get(api::faults))
        .route("/api/v1/faults/{id}", get(api::fault))
        .route("/api/v1/faults/{id}/comments", post(api::comment))
        .route("/api/v1/probes", get(api::probes).post(api::create_probe))
        .route("/api/v1/probes/{id}", axum::routing::delete(api::delete_probe))
        .route("/api/v1/notifications/status", get(notifications::api_status))
        .route("/api/v1/notifications/tests", get(notifications::api_tests).post(notifications::api_request))
        .route("/api/v1/notifications/tests/{id}", get(notifications::api_test))
        .route("/api/v1/probe/monitors", get(api::probe_monitors))
        .route("/api/v1/probe/results", post(api::probe_results))
        .with_state(cx.store.clone());
    WebPart::new("monitor", router).api(ROUTES).pages(PAGES).nav(NAV).schemas(schemas()).fixture(Arc::new(Fixture)).attention(Arc::new(Attention))
}

/// The monitor's share of the dashboard: monitors failing now (障害, 依存先障害) and
/// fault records not recovered, per municipality.
struct Attention;

impl mamori_web::AttentionSource for Attention {
    fn attention<'a>(&'a self, a: &'a mamori_web::Authed) -> FixtureFuture<'a, Result<Vec<mamori_web::Attention>, mamori_web::AppError>> {
        Box::pin(async move {
            if !a.principal.can(MonitorsRead) {
                return Ok(Vec::new());
            }
            let store = a.site.store();
            let scope = a.principal.scope();
            let monitors: std::collections::HashMap<_, _> =
                store.list_monitors(&scope, None).await?.into_iter().filter(|m| m.spec.enabled).map(|m| (m.id, m.tenant)).collect();
            let mut failing: std::collections::BTreeMap<mamori_core::TenantId, usize> = Default::default();
            for s in store.monitor_states(&scope, None).await? {
                if matches!(s.status, mamori_core::monitor::Status::Down | mamori_core::monitor::Status::Unreachable)
                    && let Some(t) = monitors.get(&s.monitor)
                {
                    *failing.entry(*t).or_default() += 1;
                }
            }
            let mut open: std::collections::BTreeMap<mamori_core::TenantId, usize> = Default::default();
            let filter = mamori_store::FaultFilter { open_only: true, limit: Some(5000), ..Default::default() };
            for f in store.list_faults(&scope, &filter).await? {
                *open.entry(f.tenant).or_default() += 1;
            }
            let mut out: Vec<mamori_web::Attention> = failing
                .into_iter()
                .map(|(tenant, count)| mamori_web::Attention {
                    tenant,
                    what: ("障害中の監視", "Monitors failing"),
                    count,
                    href: format!("/monitors?tenant={tenant}&sort=status"),
                })
                .collect();
            out.extend(open.into_iter().map(|(tenant, count)| mamori_web::Attention {
                tenant,
                what: ("未復旧の障害", "Open faults"),
                count,
                href: format!("/faults?tenant={tenant}&open=1"),
            }));
            Ok(out)
        })
    }
}

/// The schemas of the monitor's requests (written by hand, with their limits) and
/// answers (derived from the types they are serialized from).
fn schemas() -> serde_json::Value {
    use mamori_core::monitor as m;
    let mut all = mamori_web::api::Schemas::default()
        .with::<Vec<BoardRow>>("BoardRows")
        .with::<m::Monitor>("Monitor")
        .with::<Vec<m::Monitor>>("Monitors")
        .with::<m::MonitorState>("MonitorState")
        .with::<Vec<m::ResultRow>>("ResultRows")
        .with::<Vec<MonthUptime>>("MonthUptimes")
        .with::<m::Fault>("Fault")
        .with::<Vec<m::Fault>>("Faults")
        .with::<mamori_store::Probe>("Probe")
        .with::<Vec<mamori_store::Probe>>("Probes")
        .with::<crate::probe::Assignments>("Assignments")
        .with::<notifications::NotifyStatus>("NotifyStatus")
        .with::<mamori_store::NotifyTest>("NotifyTest")
        .with::<Vec<mamori_store::NotifyTest>>("NotifyTests")
        .into_map();
    let r = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    all.insert(
        "MonitorWithState".into(),
        json!({"type": "object", "required": ["monitor", "state"], "properties": {"monitor": r("Monitor"), "state": {"nullable": true, "allOf": [r("MonitorState")]}}}),
    );
    all.insert(
        "CreatedProbe".into(),
        json!({"type": "object", "required": ["probe", "token"], "properties": {"probe": r("Probe"), "token": {"type": "string"}}}),
    );
    all.insert(
        "ResultsAccepted".into(),
        json!({"type": "object", "required": ["accepted", "refused"], "properties": {"accepted": {"type": "integer"}, "refused": {"type": "integer"}}}),
    );
    if let serde_json::Value::Object(requests) = requests() {
        all.extend(requests);
    }
    serde_json::Value::Object(all)
}

fn requests() -> serde_json::Value {
    let string = json!({"type": "string"});
    json!({
        "MonitorSpec": {"type": "object", "required": ["name", "check"], "description": "A monitor: name, check {type: http|smtp|proxy|dns|ldap|tcp|icmp, …}, interval_secs (10-86400, default 60), timeout_secs (default 10), retries (default 2), retry_interval_secs (default 20), depends_on, probe, enabled, maintenance [{kind: once|weekly, …}]; operators add tenant_id",
            "properties": {"tenant_id": {"type": "string", "format": "uuid"}, "name": string, "check": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "enum": ["http", "smtp", "proxy", "dns", "ldap", "tcp", "icmp"]}}, "additionalProperties": true},
                "interval_secs": {"type": "integer"}, "timeout_secs": {"type": "integer"}, "retries": {"type": "integer"}, "retry_interval_secs": {"type": "integer"},
                "depends_on": {"type": "string", "format": "uuid"}, "probe": {"type": "string", "format": "uuid"}, "enabled": {"type": "boolean"}, "maintenance": {"type": "array", "items": {"type": "object"}}}},
        "MonitorPatch": {"type": "object", "description": "JSON merge patch (RFC 7396) of a MonitorSpec: the fields named change, null removes an optional one", "additionalProperties": true},
        "StandardSet": {"type": "object", "required": ["label"], "properties": {"tenant_id": {"type": "string", "format": "uuid"}, "label": string, "web_url": string, "web_keyword": string, "mail_relay": string, "proxy": string, "proxy_test_url": string, "dns_zone": string, "dns_servers": string, "ca_pem": string, "interval_secs": {"type": "integer"}}},
        "NewNotifyTest": {"type": "object", "description": "Whose targets: a tenant's (staff of a tenant: their own, may be omitted); operators omit tenant_id for the SOC's addresses. An empty body is {}.", "properties": {"tenant_id": {"type": "string", "format": "uuid"}}, "additionalProperties": false},
        "FaultComment": {"type": "object", "properties": {"text": string, "acknowledge": {"type": "boolean"}}},
        "NewProbe": {"type": "object", "required": ["name"], "properties": {"name": string, "tenant_id": {"type": "string", "format": "uuid"}}},
        "CheckResults": {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["monitor", "at", "status", "rt_ms"], "properties": {"monitor": {"type": "string", "format": "uuid"}, "at": {"type": "integer"}, "status": {"type": "string", "enum": ["up", "degraded", "down"]}, "rt_ms": {"type": "integer"}, "reason": {"type": "object"}, "details": {"type": "object"}}}}
    })
}

/// The monitor's share of the isolation walk: a monitor, an open fault and a probe of
/// the tenant, all marked, and bodies and forms aimed at them.
struct Fixture;

const MARKER_MONITOR: &str = "MARKERB 公式サイト";
const MARKER_PROBE: &str = "marker-b-probe";
const MARKER_TESTER: &str = "marker-b-tester";

impl IsolationFixture for Fixture {
    fn seed<'a>(&'a self, cx: FixtureCx<'a>) -> FixtureFuture<'a, Result<mamori_web::Fixture, String>> {
        Box::pin(async move {
            let system = mamori_core::Actor::system();
            let spec: mamori_core::monitor::MonitorSpec =
                serde_json::from_value(json!({"name": MARKER_MONITOR, "check": {"type": "http", "url": "https://www.marker-b.example.lg.jp/"}}))
                    .map_err(|e| e.to_string())?;
            let m = cx.store.create_monitor(&cx.grant.scope(), &system, cx.tenant, spec).await.map_err(|e| e.to_string())?;
            let f = mamori_core::monitor::Fault {
                id: mamori_core::monitor::FaultId::new(),
                tenant: cx.tenant,
                monitor: m.id,
                monitor_name: MARKER_MONITOR.into(),
                opened_at: mamori_core::time::now_ms() - 60_000,
                closed_at: None,
                cause: mamori_core::monitor::Reason::new("connect_refused", "MARKERB 拒否", "refused"),
                acknowledged_by: None,
                timeline: vec![],
                notifications: vec![],
            };
            cx.store.open_fault(cx.grant, &f).await.map_err(|e| e.to_string())?;
            let p = cx.store.create_probe(&cx.grant.scope(), &system, Some(cx.tenant), MARKER_PROBE, "hash-of-marker-b").await.map_err(|e| e.to_string())?;
            let tester = mamori_core::Actor { name: MARKER_TESTER.into(), ..mamori_core::Actor::system() };
            let n = cx.store.request_notify_test(&cx.grant.scope(), &tester, Some(cx.tenant)).await.map_err(|e| e.to_string())?;
            let (m, f, p, t, n) = (m.id.to_string(), f.id.to_string(), p.id.to_string(), cx.tenant.to_string(), n.id.to_string());
            let takeover = json!({"tenant_id": t, "name": "乗っ取り", "check": {"type": "tcp", "host": "192.0.2.1", "port": 1}});
            let takeover_text = takeover.to_string();
            let form = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
            Ok(mamori_web::Fixture {
                markers: vec![MARKER_MONITOR.into(), MARKER_PROBE.into(), MARKER_TESTER.into(), "marker-b.example.lg.jp".into()],
                ids: vec![
                    ("/api/v1/monitors/".into(), m.clone()),
                    ("/api/v1/faults/".into(), f.clone()),
                    ("/api/v1/probes/".into(), p.clone()),
                    ("/api/v1/notifications/tests/".into(), n),
                    ("/monitors/".into(), m.clone()),
                    ("/faults/".into(), f.clone()),
                ],
                bodies: vec![
                    ("POST", "/api/v1/monitors", takeover.clone()),
                    ("PUT", "/api/v1/monitors/{id}", takeover),
                    ("PATCH", "/api/v1/monitors/{id}", json!({"name": "乗っ取り", "enabled": false})),
                    ("POST", "/api/v1/monitors/standard", json!({"tenant_id": t, "label": "乗っ取り", "web_url": "https://x.example/"})),
                    ("POST", "/api/v1/faults/{id}/comments", json!({"text": "乗っ取り", "acknowledge": true})),
                    ("POST", "/api/v1/probes", json!({"name": "乗っ取り", "tenant_id": t})),
                    ("POST", "/api/v1/probe/results", json!([])),
                    ("POST", "/api/v1/notifications/tests", json!({"tenant_id": t})),
                ],
                pages: vec![
                    ("/monitors", vec!["/monitors".into(), format!("/monitors?tenant={t}"), "/monitors?status=unknown".into(), "/monitors?format=csv".into()]),
                    ("/monitors/live", vec!["/monitors/live".into(), format!("/monitors/live?tenant={t}")]),
                    ("/monitors/{id}", vec![format!("/monitors/{m}"), format!("/monitors/{m}?hours=168")]),
                    ("/faults", vec!["/faults".into(), format!("/faults?tenant={t}"), "/faults?open=1".into()]),
                    ("/faults/{id}", vec![format!("/faults/{f}")]),
                    ("/monitors/notifications", vec!["/monitors/notifications".into(), format!("/monitors/notifications?tenant={t}")]),
                    ("/monitors/notifications/live", vec!["/monitors/notifications/live".into(), format!("/monitors/notifications/live?tenant={t}")]),
                ],
                forms: vec![
                    (format!("/monitors/{m}"), form(&[("spec", &takeover_text)])),
                    (format!("/monitors/{m}/toggle"), vec![]),
                    (
                        format!("/monitors/{m}/maintenance"),
                        form(&[("kind", "weekly"), ("start", "03:00"), ("weekday", "1"), ("minutes", "60"), ("note", "乗っ取り")]),
                    ),
                    (format!("/monitors/{m}/maintenance/0/delete"), vec![]),
                    (format!("/monitors/{m}/delete"), vec![]),
                    (format!("/faults/{f}/comment"), form(&[("text", "乗っ取り"), ("acknowledge", "1")])),
                    (format!("/monitors/probes/{p}/delete"), vec![]),
                    ("/monitors/notifications/test".into(), form(&[("tenant_id", &t)])),
                    ("/monitors/new".into(), form(&[("tenant_id", &t), ("label", "乗っ取り"), ("web_url", "https://x.example/")])),
                    ("/monitors/new-custom".into(), form(&[("tenant_id", &t), ("spec", &takeover_text)])),
                ],
            })
        })
    }

    fn snapshot<'a>(&'a self, cx: FixtureCx<'a>) -> FixtureFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let scope = cx.grant.scope();
            let monitors = cx.store.list_monitors(&scope, Some(cx.tenant)).await.map_err(|e| e.to_string())?;
            let filter = mamori_store::FaultFilter { tenant: Some(cx.tenant), ..Default::default() };
            let mut faults = Vec::new();
            for f in cx.store.list_faults(&scope, &filter).await.map_err(|e| e.to_string())? {
                faults.push(cx.store.get_fault(&scope, f.id).await.map_err(|e| e.to_string())?);
            }
            let probes = cx.store.list_probes(&cx.grant.tenant(cx.tenant)).await.map_err(|e| e.to_string())?;
            let tests = cx.store.list_notify_tests(&scope, Some(cx.tenant), 1000).await.map_err(|e| e.to_string())?;
            Ok(format!("{monitors:?}|{faults:?}|{probes:?}|{tests:?}"))
        })
    }
}

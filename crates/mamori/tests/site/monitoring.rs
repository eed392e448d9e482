//! The monitor's pages and API as the assembled console serves them.

use axum::http::StatusCode;
use mamori_console::testing::*;
use mamori_core::Role;
use serde_json::json;

/// A TCP monitor of tenant `t` called `name` (to an address nobody answers on).
async fn tcp_monitor(c: &Console, t: mamori_core::TenantId, name: &str) -> mamori_core::monitor::Monitor {
    let spec: mamori_core::monitor::MonitorSpec =
        serde_json::from_value(json!({"name": name, "check": {"type": "tcp", "host": "192.0.2.1", "port": 1}})).unwrap();
    c.state.store.create_monitor(&c.grant.scope(), &mamori_core::Actor::system(), t, spec).await.unwrap()
}

/// Opens a fault of monitor `m`, opened `ago_ms` before now, as the engine would.
async fn open_fault(c: &Console, m: &mamori_core::monitor::Monitor, ago_ms: i64, cause: mamori_core::monitor::Reason) -> mamori_core::monitor::Fault {
    let f = mamori_core::monitor::Fault {
        id: mamori_core::monitor::FaultId::new(),
        tenant: m.tenant,
        monitor: m.id,
        monitor_name: m.spec.name.clone(),
        opened_at: mamori_core::time::now_ms() - ago_ms,
        closed_at: None,
        cause,
        acknowledged_by: None,
        timeline: vec![],
        notifications: vec![],
    };
    c.state.store.open_fault(&c.grant, &f).await.unwrap();
    f
}

/// Saves monitor `m` as DOWN now for `reason`, as the engine would.
async fn save_down(c: &Console, m: &mamori_core::monitor::Monitor, reason: mamori_core::monitor::Reason, fault: Option<mamori_core::monitor::FaultId>) {
    let now = mamori_core::time::now_ms();
    let down = mamori_core::monitor::MonitorState {
        monitor: m.id,
        status: mamori_core::monitor::Status::Down,
        since: now,
        last_check: now,
        last_rt_ms: 0,
        reason: Some(reason),
        failures: 3,
        fault,
        content_hash: None,
    };
    c.state.store.save_monitor_batch(&c.grant, &[down], &[]).await.unwrap();
}

/// A monitor that was never checked shows no availability (not 100%), and no month
/// before it existed.
#[tokio::test]
async fn a_never_checked_monitor_has_no_uptime() {
    each_backend_with(mamori::components::registry, |c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let m = tcp_monitor(&c, t.id, "庁内").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let (_, token) = c.token(op, Role::OperatorAdmin, "op").await;
        let auth = Auth::Bearer(token);
        let (status, body) = c.api("GET", "/api/v1/monitors", &auth, None).await;
        assert_eq!(status, StatusCode::OK);
        let board: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(board[0]["uptime_30d"], serde_json::Value::Null, "{body}");
        let (_, body) = c.api("GET", &format!("/api/v1/monitors/{}/uptime", m.id), &auth, None).await;
        assert_eq!(body, "[]");
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get(&format!("/monitors/{}", m.id), &s).await;
        assert!(page.contains("まだ一度も確認していない"), "{page}");
        let (_, page) = c.get("/monitors", &s).await;
        assert!(page.contains("確認前") && page.contains("状態の意味"), "the board explains its states");
        assert!(page.contains("href=\"/monitors\"") && page.contains("href=\"/faults\""), "the monitor's navigation entries");
        // A bad month count is a JSON error naming it.
        let (status, body) = c.api("GET", &format!("/api/v1/monitors/{}/uptime?months=99", m.id), &auth, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("months"), "{body}");
    })
    .await;
}

/// The fault list names each fault's municipality, filters by it, sorts by any column
/// and exports what it shows as CSV.
#[tokio::test]
async fn the_fault_list_filters_sorts_and_exports() {
    each_backend_with(mamori::components::registry, |c| async move {
        let mut faults = Vec::new();
        for (five, name, range) in [("39341", "桜川市", "10.66.0.0/24"), ("39342", "青葉町", "10.67.0.0/24")] {
            let t = c.tenant(five, name, range).await;
            let m = tcp_monitor(&c, t.id, &format!("{name} Web")).await;
            let cause = mamori_core::monitor::Reason::new("connect_refused", "接続を拒否されました", "refused");
            let f = open_fault(&c, &m, 60_000 * (faults.len() as i64 + 1), cause).await;
            faults.push((t, f));
        }
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get("/faults", &s).await;
        assert!(page.contains("<th class=\"nowrap\" aria-sort=\"none\"><a class=\"sort\""), "sortable headings");
        let (sakura, aoba) = (page.find("桜川市 Web").unwrap(), page.find("青葉町 Web").unwrap());
        assert!(sakura < aoba, "newest first by default");
        let (_, page) = c.get("/faults?sort=opened&dir=asc", &s).await;
        assert!(page.find("青葉町 Web").unwrap() < page.find("桜川市 Web").unwrap(), "oldest first when asked");
        let (_, page) = c.get(&format!("/faults?tenant={}", faults[1].0.id), &s).await;
        assert!(page.contains("青葉町 Web") && !page.contains("桜川市 Web"), "filtered by municipality");
        let (status, headers, csv) = c.send(s.apply(axum::http::Request::get("/faults?format=csv&open=1")).body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[axum::http::header::CONTENT_DISPOSITION].to_str().unwrap().contains("faults.csv"));
        assert!(csv.starts_with("\u{feff}発生,団体,監視,復旧,障害時間,原因,対応\r\n"), "{csv}");
        assert!(csv.contains("桜川市,桜川市 Web,未復旧") && csv.contains("青葉町,青葉町 Web"), "{csv}");
        let (status, _) = c.get("/faults?from=someday", &s).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a bad time is an error, not ignored");
    })
    .await;
}

/// The board refreshes by itself: its live stream sends the counts and the table, then
/// both again when a monitor's state changes (written by a monitor on any node: the
/// stream reads the store), and ends when the session does. An API token gets no
/// live view.
#[tokio::test]
async fn the_board_streams_changes_and_stops_with_the_session() {
    each_backend_with(mamori::components::registry, |c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let m = tcp_monitor(&c, t.id, "庁内 Web").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get("/monitors?sort=name&dir=asc", &s).await;
        assert!(page.contains(r#"data-live="/monitors/live?sort=name&amp;dir=asc""#), "the board names its stream with its own query");
        assert!(page.contains(r#"src="/static/live.js""#));

        let (status, mut stream) = c.open("/monitors/live?sort=name&dir=asc", &s).await;
        assert_eq!(status, StatusCode::OK);
        let first = next_event(&mut stream).await.expect("the first update");
        assert!(first.starts_with("event: update\n") || first.contains("\nevent: update\n"), "{first}");
        assert!(first.contains("庁内 Web") && first.contains("status-unknown") && first.contains("aria-sort=\"ascending\""), "{first}");

        save_down(&c, &m, mamori_core::monitor::Reason::new("connect_refused", "接続が拒否されました", "connection refused"), None).await;
        let second = next_event(&mut stream).await.expect("an update once the monitor is down");
        assert!(second.contains("status-down") && second.contains("接続が拒否されました"), "{second}");

        // Logged out: the stream ends at its next round.
        let Auth::Session { csrf, .. } = &s else { unreachable!() };
        let (status, _, _) = c.post_form("/logout", &s, &[("csrf", csrf)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(next_event(&mut stream).await, None, "the stream of a logged-out session ends");

        let (_, token) = c.token(op, Role::OperatorAdmin, "op").await;
        let (status, _) = c.get("/monitors/live", &Auth::Bearer(token)).await;
        assert_ne!(status, StatusCode::OK, "live views are for console sessions");
    })
    .await;
}

/// The notification policy is edited in the form generated from its schema: steps added
/// in the spare group, a bad number named with the rest of the input kept, the changes
/// reviewed, then saved; the JSON stays there for experts.
#[tokio::test]
async fn the_notification_policy_is_edited_in_its_form() {
    each_backend_with(mamori::components::registry, |c| async move {
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let (status, page) = c.get("/settings/policies?component=monitor", &s).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"name="p.escalation.0.tenant_contacts" value="true" checked"#), "{page}");
        assert!(page.contains(r#"name="p.repeat_minutes" value="60" min="0" max="1440""#), "{page}");
        assert!(page.contains("再通知の間隔（分）") && page.contains("JSON で編集（上級者向け）"), "{page}");
        let Auth::Session { csrf, .. } = &s else { unreachable!() };

        let mut form: Vec<(&str, &str)> = vec![
            ("csrf", csrf),
            ("component", "monitor"),
            ("tenant", ""),
            ("mode", "fields"),
            ("p.escalation.n", "2"),
            ("p.escalation.0.after_minutes", "0"),
            ("p.escalation.0.tenant_contacts", "true"),
            ("p.escalation.0.emails", ""),
            ("p.escalation.0.webhooks", ""),
            ("p.escalation.1.after_minutes", "30"),
            ("p.escalation.1.emails", "kacho@city.example.lg.jp\r\nsoc@pref.example.lg.jp"),
            ("p.escalation.1.webhooks", ""),
            ("p.repeat_minutes", "三十"),
            ("p.notify_recovery", "true"),
        ];
        let (status, _, page) = c.post_form("/settings/policies", &s, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("「三十」は0〜1440の整数ではありません"), "{page}");
        assert!(page.contains("kacho@city.example.lg.jp\nsoc@pref.example.lg.jp</textarea>"), "the rest of the input is kept: {page}");

        form.retain(|(k, _)| *k != "p.repeat_minutes");
        form.push(("p.repeat_minutes", "30"));
        let (status, _, page) = c.post_form("/settings/policies", &s, &form).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("変更内容の確認") && page.contains("repeat_minutes"), "{page}");
        let i = page.find(r#"name="document" value=""#).expect("the reviewed document") + 23;
        let document = page[i..].split('"').next().unwrap().replace("&quot;", "\"").replace("&amp;", "&");
        let reviewed: serde_json::Value = serde_json::from_str(&document).unwrap();
        let want = json!({
            "escalation": [
                {"after_minutes": 0, "tenant_contacts": true, "emails": [], "webhooks": []},
                {"after_minutes": 30, "tenant_contacts": false, "emails": ["kacho@city.example.lg.jp", "soc@pref.example.lg.jp"], "webhooks": []}
            ],
            "repeat_minutes": 30,
            "notify_recovery": true
        });
        assert_eq!(reviewed, want);
        let confirm = [("csrf", csrf.as_str()), ("component", "monitor"), ("tenant", ""), ("document", &document), ("confirm", "1")];
        let (status, _, page) = c.post_form("/settings/policies", &s, &confirm).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("保存しました"), "{page}");
        let saved = c.state.store.policy(&c.grant.scope(), None, "monitor").await.unwrap().unwrap();
        assert_eq!(saved.document, want);

        // What the component's own rules refuse is named too (repeat 3 minutes).
        form.retain(|(k, _)| *k != "p.repeat_minutes");
        form.push(("p.repeat_minutes", "3"));
        let (status, _, page) = c.post_form("/settings/policies", &s, &form).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("再通知間隔は0（しない）または5〜1440分です"), "{page}");
    })
    .await;
}

/// The dashboard says what needs someone now, per municipality: monitors failing and
/// faults not recovered, linked to their lists; another municipality's staff see none
/// of it, and with nothing broken it says so.
#[tokio::test]
async fn the_dashboard_shows_what_is_broken_per_municipality() {
    each_backend_with(mamori::components::registry, |c| async move {
        let broken = c.tenant("39341", "桜川市", "10.66.0.0/24").await;
        let other = c.tenant("39342", "青葉町", "10.67.0.0/24").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        c.user("aoba-admin", "青葉町 管理者", Role::TenantAdmin, Some(other.id)).await;
        let s = c.login_operator_bypass(op).await;
        let (_, page) = c.get("/", &s).await;
        assert!(page.contains("対応が必要なものはありません"), "{page}");

        let m = tcp_monitor(&c, broken.id, "桜川 Web").await;
        let fault = open_fault(&c, &m, 60_000, mamori_core::monitor::Reason::new("connect_refused", "接続が拒否されました", "refused")).await;
        save_down(&c, &m, fault.cause.clone(), Some(fault.id)).await;

        let (_, page) = c.get("/", &s).await;
        let i = page.find("id=\"attention\"").expect("the attention section");
        let section = &page[i..page[i..].find("</section>").map_or(page.len(), |j| i + j)];
        assert!(section.contains("桜川市") && !section.contains("青葉町"), "only the municipality with something broken: {section}");
        assert!(section.contains("障害中の監視") && section.contains("未復旧の障害"), "{section}");
        assert!(section.contains(&format!("href=\"/faults?tenant={}&amp;open=1\"", broken.id)), "{section}");

        let aoba = c.login("aoba-admin", PASSWORD).await;
        let (_, page) = c.get("/", &aoba).await;
        assert!(page.contains("対応が必要なものはありません") && !page.contains("桜川"), "another municipality's staff see none of it");
    })
    .await;
}

/// Maintenance windows are added and removed in their own form on the monitor's page;
/// bad input names each field and saves nothing.
#[tokio::test]
async fn maintenance_windows_are_set_in_a_form() {
    each_backend_with(mamori::components::registry, |c| async move {
        let t = c.tenant("39341", "自分市", "10.66.0.0/24").await;
        let m = tcp_monitor(&c, t.id, "庁内 Web").await;
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let s = c.login_operator_bypass(op).await;
        let Auth::Session { csrf, .. } = &s else { unreachable!() };
        let path = format!("/monitors/{}/maintenance", m.id);
        let windows = || async { c.state.store.get_monitor(&c.grant.scope(), m.id).await.unwrap().spec.maintenance };

        let bad = [("csrf", csrf.as_str()), ("kind", "once"), ("start", "来週"), ("end", "2026-12-25 02:00"), ("note", "")];
        let (status, _, page) = c.post_form(&path, &s, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("日時「来週」を読めません"), "{page}");
        assert!(page.contains(r#"value="2026-12-25 02:00""#), "the input is kept: {page}");
        let reversed = [("csrf", csrf.as_str()), ("kind", "once"), ("start", "2026-12-25 02:00"), ("end", "2026-12-24 22:00"), ("note", "")];
        let (status, _, page) = c.post_form(&path, &s, &reversed).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("終了は開始より後にしてください"), "{page}");
        assert!(windows().await.is_empty(), "nothing saved");

        let once = [("csrf", csrf.as_str()), ("kind", "once"), ("start", "2026-12-24 22:00"), ("end", "2026-12-25 02:00"), ("note", "サーバー更新")];
        let (status, _, _) = c.post_form(&path, &s, &once).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let weekly = [("csrf", csrf.as_str()), ("kind", "weekly"), ("start", "03:00"), ("weekday", "1"), ("minutes", "90"), ("note", "定期保守")];
        let (status, _, _) = c.post_form(&path, &s, &weekly).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let saved = windows().await;
        assert_eq!(saved.len(), 2);
        assert!(saved[0].covers(mamori_core::time::parse_time("2026-12-24 23:00").unwrap()));
        assert!(matches!(&saved[1], mamori_core::monitor::Maintenance::Weekly { weekday: 1, minutes: 90, .. }));
        let (_, page) = c.get(&format!("/monitors/{}", m.id), &s).await;
        assert!(page.contains("毎週 月曜日 03:00 から 90 分間") && page.contains("サーバー更新"), "{page}");

        let (status, _, _) = c.post_form(&format!("{path}/0/delete"), &s, &[("csrf", csrf)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(matches!(windows().await.as_slice(), [mamori_core::monitor::Maintenance::Weekly { .. }]));
        let (status, _, _) = c.post_form(&format!("{path}/5/delete"), &s, &[("csrf", csrf)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

/// The notification page: where a municipality's fault notifications go at each step,
/// whether they can be sent now (what the monitor on another node reports), and a test
/// notification asked for by form or API, each municipality for itself only.
#[tokio::test]
async fn notifications_show_targets_and_notices_and_take_test_requests() {
    each_backend_with(mamori::components::registry, |c| async move {
        let mut input = tenant_input("39341", "桜川市", "10.66.0.0/24");
        input.contacts = vec![mamori_core::Contact {
            name: "情報 花子".into(),
            department: "情報政策課".into(),
            email: "joho@sakuragawa.example.lg.jp".into(),
            phone: String::new(),
        }];
        let t = c.state.store.create_tenant(&c.grant.scope(), &mamori_core::Actor::system(), input.check().unwrap()).await.unwrap();
        let other = c.tenant("39342", "青葉町", "10.67.0.0/24").await;
        c.user("sakura-admin", "桜川 管理者", Role::TenantAdmin, Some(t.id)).await;
        let s = c.login("sakura-admin", PASSWORD).await;

        // No node runs the monitor yet: said plainly, with the targets of each step.
        let (status, page) = c.get("/monitors/notifications", &s).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("いま監視を実行しているノードがありません"), "{page}");
        assert!(page.contains("joho@sakuragawa.example.lg.jp") && page.contains("検知と同時"), "the contact gets the first step: {page}");
        assert!(page.contains("県の既定の通知ポリシー"), "{page}");
        assert!(page.contains("data-live=\"/monitors/notifications/live\""));
        let (_, board) = c.get("/monitors", &s).await;
        assert!(board.contains("いま監視を実行しているノードがありません"), "the board warns too");

        // A test by form: audited, waiting until the monitor takes it.
        let (status, headers, _) = c.post_form("/monitors/notifications/test", &s, &[("csrf", s.csrf()), ("tenant_id", "")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[axum::http::header::LOCATION], format!("/monitors/notifications?tenant={}#tests", t.id));
        let (_, page) = c.get("/monitors/notifications", &s).await;
        assert!(page.contains("待機中") && page.contains("sakura-admin"), "{page}");
        let (status, _, _) = c.post_form("/monitors/notifications/test", &s, &[("csrf", s.csrf()), ("tenant_id", &other.id.to_string())]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not for another municipality");
        assert_eq!(c.state.store.list_notify_tests(&c.grant.scope(), Some(other.id), 10).await.unwrap().len(), 0);

        // By API: 202, then readable by id; a tenant user may read, not ask.
        let (_, token) = c.token(c.user("sakura-api", "API", Role::TenantAdmin, Some(t.id)).await, Role::TenantAdmin, "api").await;
        let api = Auth::Bearer(token);
        let (status, body) = c.api("POST", "/api/v1/notifications/tests", &api, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(asked["tenant"], json!(t.id.to_string()));
        let (status, body) = c.api("GET", &format!("/api/v1/notifications/tests/{}", asked["id"].as_str().unwrap()), &api, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = c.api("POST", "/api/v1/notifications/tests", &api, Some(json!({"tenant_id": other.id}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = c.api("POST", "/api/v1/notifications/tests", &api, Some(json!({"tenant": t.id}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown field is named, not ignored: {body}");
        let (_, list) = c.api("GET", "/api/v1/notifications/tests", &api, None).await;
        assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&list).unwrap().len(), 2, "{list}");
        let (_, token) = c.token(c.user("sakura-user", "職員", Role::TenantUser, Some(t.id)).await, Role::TenantUser, "user").await;
        let (status, _) = c.api("POST", "/api/v1/notifications/tests", &Auth::Bearer(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let audit = c
            .state
            .store
            .list_audit(&c.grant.scope(), &mamori_store::AuditFilter { action: Some("notify.test".into()), ..Default::default() }, None, 10)
            .await
            .unwrap();
        assert_eq!(audit.len(), 2);

        // The monitor runs on another node and says no mail server is configured: this
        // node's pages and the operators' dashboard say so.
        let health = mamori_runtime::Health::default();
        let reporter = health.reporter("monitor", mamori_runtime::Placement::Singleton);
        reporter.set_for_tests(mamori_runtime::State::Active);
        reporter.notice("no_mail_server", "メールサーバーが設定されていないため", "No mail server is configured");
        let now = mamori_core::time::now_ms();
        let report = mamori_store::NodeReport {
            id: "node-b".into(),
            name: "node-b".into(),
            version: "0".into(),
            started_at: now,
            seen_at: now,
            status: json!({"components": health.snapshot()}),
        };
        c.state.store.report_node(&report).await.unwrap();
        let (_, page) = c.get("/monitors/notifications", &s).await;
        assert!(page.contains("メールサーバーが設定されていないため") && !page.contains("いま監視を実行しているノードがありません"), "{page}");
        let (_, body) = c.api("GET", "/api/v1/notifications/status", &api, None).await;
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((st["running_on"].clone(), st["notices"][0]["code"].clone()), (json!(["node-b"]), json!("no_mail_server")), "{body}");
        let op = c.user("ope", "運用", Role::OperatorAdmin, None).await;
        let ops = c.login_operator_bypass(op).await;
        let (_, dash) = c.get("/", &ops).await;
        assert!(dash.contains("メールサーバーが設定されていないため"), "the dashboard shows it to operators");
        let (_, page) = c.get(&format!("/monitors/notifications?tenant={}", t.id), &ops).await;
        assert!(page.contains("joho@sakuragawa.example.lg.jp") && page.contains("通知ポリシーを編集"), "{page}");
        let (_, page) = c.get("/monitors/notifications", &ops).await;
        assert!(page.contains("SOC の宛先に、テストであることを明記したメールを送ります"), "operators test the SOC's addresses");
    })
    .await;
}

//! The audit log: filters, paging, chain verification and CSV export.

use super::{layout, page_result, when};
use crate::auth::PageAuth;
use crate::{AppError, AppState, Lang};
use axum::extract::State;
use axum::response::Response;
use mamori_core::Permission;
use mamori_store::AuditFilter;
use mamori_web::Query;
use mamori_web::table::{Table, TableQuery, num, text};
use maud::html;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Filters from the query string.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
    verify: Option<String>,
    /// `1`: the page shows the notes of cross-tenant reads too (the API and the CSV
    /// export always have every entry).
    reads: Option<String>,
}

impl AuditQuery {
    /// Returns the store filter, or the problems of the time fields.
    pub fn filter(&self) -> Result<AuditFilter, AppError> {
        let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, AppError> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => mamori_core::time::parse_time(s).map(Some).ok_or_else(|| {
                    mamori_core::Problem::new(
                        field,
                        "invalid_time",
                        format!("日時「{s}」を読めません（例: 2026-11-22 09:00）"),
                        format!("cannot read time '{s}' (e.g. 2026-11-22 09:00)"),
                    )
                    .into()
                }),
            }
        };
        Ok(AuditFilter {
            tenant: mamori_web::api::tenant_param("tenant", self.tenant.as_deref())?,
            actor: self.actor.clone().filter(|s| !s.trim().is_empty()),
            action: self.action.clone().filter(|s| !s.trim().is_empty()),
            from_ms: time("from", &self.from)?,
            to_ms: time("to", &self.to)?,
            without_reads: false,
        })
    }
}

const PAGE: i64 = 100;

/// The label of an audit action for people (ja, en); the code is shown beside it.
pub fn action_label(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        "access.cross_tenant" => ("全団体のデータの閲覧", "Read across tenants"),
        "access.grant" => ("全団体への権限の付与", "Cross-tenant grant"),
        "audit.export" => ("監査ログの出力", "Audit log exported"),
        "auth.login" => ("ログイン", "Login"),
        "auth.login_failed" => ("ログイン失敗", "Failed login"),
        "fault.acknowledge" => ("障害の確認", "Fault acknowledged"),
        "fault.comment" => ("障害へのコメント", "Fault comment"),
        "monitor.create" => ("監視の登録", "Monitor created"),
        "monitor.update" => ("監視の変更", "Monitor changed"),
        "monitor.delete" => ("監視の削除", "Monitor deleted"),
        "policy.update" => ("ポリシーの保存", "Policy saved"),
        "policy.schedule" => ("ポリシー変更の予約", "Policy change scheduled"),
        "policy.activate" => ("予約したポリシーの適用", "Scheduled policy applied"),
        "policy.cancel" => ("ポリシー予約の取り消し", "Scheduled policy cancelled"),
        "policy.rollback" => ("ポリシーを以前の版に戻す", "Policy rolled back"),
        "policy.submit" => ("ポリシー変更の承認申請", "Policy change submitted"),
        "policy.approve" => ("ポリシー変更の承認", "Policy change approved"),
        "policy.reject" => ("ポリシー変更の却下", "Policy change rejected"),
        "probe.create" => ("プローブの登録", "Probe registered"),
        "probe.delete" => ("プローブの削除", "Probe removed"),
        "notify.test" => ("テスト通知の依頼", "Test notification asked for"),
        "secret.create" => ("秘密情報の登録", "Secret stored"),
        "secret.update" => ("秘密情報の更新", "Secret replaced"),
        "secret.delete" => ("秘密情報の削除", "Secret deleted"),
        "secret.read" => ("秘密情報の読み出し", "Secret read"),
        "secret.reseal" => ("秘密情報の再暗号化", "Secret re-sealed"),
        "segment.create" => ("セグメントの追加", "Segment created"),
        "segment.update" => ("セグメントの変更", "Segment changed"),
        "segment.delete" => ("セグメントの削除", "Segment deleted"),
        "setting.update" => ("設定の変更", "Setting changed"),
        "tenant.create" => ("団体の登録", "Tenant created"),
        "tenant.update" => ("団体の変更", "Tenant changed"),
        "tenant.contacts_update" => ("団体の連絡先の変更", "Tenant contacts changed"),
        "tenant.delete" => ("団体の削除", "Tenant deleted"),
        "token.create" => ("API トークンの作成", "API token created"),
        "token.revoke" => ("API トークンの失効", "API token revoked"),
        "user.create" => ("利用者の登録", "Account created"),
        "user.update" => ("利用者の変更", "Account changed"),
        "user.delete" => ("利用者の削除", "Account deleted"),
        "user.lock" => ("アカウントのロック", "Account locked"),
        "user.unlock" => ("ロックの解除", "Account unlocked"),
        "user.password_change" => ("パスワードの変更", "Password changed"),
        "user.password_reset" => ("パスワードの再発行", "Password reset"),
        "user.totp_enroll" => ("二要素認証の設定", "TOTP enrolled"),
        "user.totp_reset" => ("二要素認証の解除", "TOTP removed"),
        _ => return None,
    })
}

type Entry = mamori_store::AuditEntry;

/// The audit log as a table: sortable within a page, paged by `before` (the oldest
/// sequence number shown), exported (every matching entry, audited) by
/// `/audit/export.csv`.
fn table<'a>(l: Lang, next: Option<i64>) -> Table<'a, Entry> {
    let action = move |e: &Entry| match action_label(&e.action) {
        Some((ja, en)) => l.t(ja, en).to_string(),
        None => e.action.clone(),
    };
    let target = |e: &Entry| format!("{} {}", e.target_kind, e.target_id.clone().unwrap_or_default());
    Table::new("/audit", "audit-log.csv")
        .keyset("before", next.map(|n| n.to_string()))
        .csv_path("/audit/export.csv")
        .column("seq", ("#", "#"), |e: &Entry| html! { (e.seq) }, |e| e.seq.to_string(), num(|e: &Entry| Some(e.seq as f64)))
        .column("time", ("日時", "Time"), |e: &Entry| html! { (when(e.time)) }, |e| when(e.time), num(|e: &Entry| Some(e.time as f64)))
        .nowrap()
        .text_column("actor", ("実行者", "Actor"), |e: &Entry| e.actor_name.clone())
        .text_column("source", ("接続元", "From"), |e: &Entry| e.source_ip.clone().unwrap_or_default())
        .column(
            "action",
            ("操作", "Action"),
            move |e: &Entry| {
                html! { @match action_label(&e.action) {
                    Some((ja, en)) => { (l.t(ja, en)) br; small { code { (e.action) } } }
                    None => code { (e.action) },
                } }
            },
            action,
            // By the code, which groups the actions by what they change (a label's
            // kanji would sort in no order a reader knows).
            text(|e: &Entry| e.action.clone()),
        )
        .nowrap()
        .column(
            "target",
            ("対象", "Target"),
            |e: &Entry| html! { (e.target_kind) " " small { (e.target_id.clone().unwrap_or_default()) } },
            target,
            text(target),
        )
        .column(
            "change",
            ("変更内容", "Change"),
            move |e: &Entry| {
                html! { @if e.before.is_some() || e.after.is_some() {
                    details { summary { (l.t("表示", "Show")) }
                        @if let Some(b) = &e.before { p { (l.t("変更前", "Before")) } pre { (serde_json::to_string_pretty(b).unwrap_or_default()) } }
                        @if let Some(af) = &e.after { p { (l.t("変更後", "After")) } pre { (serde_json::to_string_pretty(af).unwrap_or_default()) } }
                    }
                } }
            },
            |e| e.after.as_ref().map(ToString::to_string).unwrap_or_default(),
            None,
        )
}

/// GET /audit
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<AuditQuery>, Query(raw): Query<BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(l, async {
        a.require(Permission::AuditRead)?;
        let scope = a.principal.scope();
        let mut filter = q.filter()?;
        // Reads are left out unless asked for, by the box or by name (`access.`).
        filter.without_reads = q.reads.as_deref() != Some("1") && !q.action.as_deref().is_some_and(|a| a.trim().starts_with("access"));
        let entries = state.store.list_audit(&scope, &filter, q.before, PAGE).await?;
        let tenants = state.store.list_tenants(&scope).await?;
        let verify = if q.verify.is_some() && a.principal.tenant_id().is_none() { Some(state.store.verify_audit().await?) } else { None };
        let next = (entries.len() as i64 == PAGE).then(|| entries.last().map(|e| e.seq)).flatten();
        let mut raw = raw;
        raw.remove("verify");
        let tq = TableQuery::from_query(&raw);
        let body = html! {
            form.filters method="get" action="/audit" {
                label { (l.t("実行者", "Actor")) input type="text" name="actor" value=(q.actor.clone().unwrap_or_default()); }
                label { (l.t("操作（前方一致）", "Action (prefix)")) input type="text" name="action" value=(q.action.clone().unwrap_or_default()) placeholder="tenant."; }
                @if a.principal.tenant_id().is_none() {
                    label { (l.t("団体", "Tenant")) select name="tenant" {
                        option value="" { (l.t("すべて", "All")) }
                        @for t in &tenants { option value=(t.id) selected[q.tenant.as_deref() == Some(&t.id.to_string())] { (t.name) } }
                    } }
                }
                label { (l.t("開始", "From")) input type="text" name="from" value=(q.from.clone().unwrap_or_default()) placeholder="2026-11-01 00:00"; }
                label { (l.t("終了", "To")) input type="text" name="to" value=(q.to.clone().unwrap_or_default()); }
                label.check { input type="checkbox" name="reads" value="1" checked[q.reads.as_deref() == Some("1")]; (l.t("閲覧の記録も表示（他団体のデータを一覧した記録）", "Show reads too (operators listing other tenants' data)")) }
                button type="submit" { (l.t("絞り込み", "Filter")) }
                @if a.principal.tenant_id().is_none() { a.button href="/audit?verify=1" { (l.t("改ざん検査", "Verify chain")) } }
            }
            @if let Some(v) = &verify {
                @match &v.first_bad {
                    None => div.ok role="status" { (l.t("ハッシュチェーンは正常です", "The hash chain is intact")) " (" (v.entries) (l.t("件", " entries")) ", head " code { (v.head.get(..16).unwrap_or(&v.head)) } ")" },
                    Some((seq, why)) => div.error role="alert" { (l.t("改ざんを検出しました", "Tampering detected")) ": seq " (seq) " — " (why) },
                }
            }
            (table(l, next).render(l, &entries, &tq))
        };
        Ok(layout(&a, l.t("監査ログ", "Audit log"), "/audit", body))
    }
    .await)
}

/// GET /audit/export.csv
/// The entries in the order the page's sort asks for (by sequence number when it asks
/// for none), with their hashes, so that the chain can be checked outside.
pub async fn export(
    State(state): State<AppState>,
    PageAuth(a): PageAuth,
    Query(q): Query<AuditQuery>,
    Query(raw): Query<BTreeMap<String, String>>,
) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::AuditRead)?;
            let entries = export_entries(&state, &a.principal, &q).await?;
            let tq = TableQuery::from_query(&raw);
            let ordered: Vec<Entry> = table(l, None).ordered(&entries, &tq).into_iter().cloned().collect();
            Ok(super::tenants::csv_response("audit-log.csv", crate::csv_io::export_audit(&ordered)))
        }
        .await,
    )
}

/// Returns every matching entry for an export, and records the export in the log.
pub async fn export_entries(state: &AppState, p: &mamori_store::Principal, q: &AuditQuery) -> Result<Vec<mamori_store::AuditEntry>, AppError> {
    let scope = p.scope();
    let entries = state.store.export_audit(&scope, &q.filter()?).await?;
    state
        .store
        .record(mamori_store::Change {
            actor: &p.actor(),
            tenant: p.tenant_id(),
            action: "audit.export",
            target_kind: "audit_log",
            target_id: None,
            before: None,
            after: Some(serde_json::json!({"entries": entries.len()})),
        })
        .await?;
    Ok(entries)
}

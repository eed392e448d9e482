//! Settings: one's own account (language, password), the platform's security settings
//! (operator admins), per-tenant policies of components, and API tokens.

use super::{layout, page_result, problems, see_other, when};
use crate::auth::{Authed, PageAuth, check_password_policy};
use crate::{AppError, AppState, AuthSettings};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Problem, TenantId, TokenScope};
use mamori_web::Form;
use mamori_web::{Path, Query};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The tabs of the settings pages.
pub fn tabs(a: &Authed, active: &str) -> Markup {
    let l = a.lang;
    html! {
        nav.tabs {
            a href="/settings" class=[(active == "account").then_some("active")] { (l.t("アカウントとセキュリティ", "Account and security")) }
            @if a.principal.can(Permission::PoliciesRead) { a href="/settings/policies" class=[(active == "policies").then_some("active")] { (l.t("ポリシー", "Policies")) } }
            a href="/settings/tokens" class=[(active == "tokens").then_some("active")] { (l.t("API トークン", "API tokens")) }
            @if a.principal.can(Permission::PoliciesRead) { a href="/settings/secrets" class=[(active == "secrets").then_some("active")] { (l.t("秘密情報", "Secrets")) } }
        }
    }
}

async fn account_page(state: &AppState, a: &Authed, error: Option<&AppError>, saved: bool) -> Result<Response, AppError> {
    let l = a.lang;
    let s = state.auth_settings().await;
    let partitions = if a.principal.role() == mamori_core::Role::OperatorAdmin { state.bus.events().partitions().unwrap_or_default() } else { Vec::new() };
    let body = html! {
        (tabs(a, "account"))
        @if let Some(e) = error { (problems(l, e)) }
        @if saved { div.ok role="status" { (l.t("保存しました", "Saved")) } }
        h2 { (l.t("自分のアカウント", "My account")) }
        form.grid method="post" action="/settings" {
            input type="hidden" name="csrf" value=(a.csrf());
            label { (l.t("表示言語", "Language")) select name="lang" {
                option value="ja" selected[a.user.lang == "ja"] { "日本語" }
                option value="en" selected[a.user.lang == "en"] { "English" }
            } }
            label { (l.t("現在のパスワード（変更する場合）", "Current password (to change it)")) input type="password" name="current" autocomplete="current-password"; }
            label { (l.t("新しいパスワード", "New password")) input type="password" name="password" autocomplete="new-password"; }
            label { (l.t("新しいパスワード（確認）", "New password again")) input type="password" name="confirm" autocomplete="new-password"; }
            div.wide { button type="submit" { (l.t("保存", "Save")) } }
        }
        @if a.principal.can(Permission::SettingsWrite) {
            h2 { (l.t("ログインとセッション", "Login and sessions")) }
            form.grid method="post" action="/settings/security" {
                input type="hidden" name="csrf" value=(a.csrf());
                label { (l.t("ロックまでの連続失敗回数", "Failures before lockout")) input type="number" name="lockout_threshold" value=(s.lockout_threshold) min="3" max="20"; }
                label { (l.t("ロック時間（分）", "Lockout (minutes)")) input type="number" name="lockout_minutes" value=(s.lockout_minutes) min="1" max="1440"; }
                label { (l.t("無操作タイムアウト（分）", "Idle timeout (minutes)")) input type="number" name="session_idle_minutes" value=(s.session_idle_minutes) min="5" max="480"; }
                label { (l.t("セッション最長時間（時間）", "Session maximum (hours)")) input type="number" name="session_max_hours" value=(s.session_max_hours) min="1" max="24"; }
                label { (l.t("パスワード最小文字数", "Minimum password length")) input type="number" name="password_min_length" value=(s.password_min_length) min="10" max="128"; }
                fieldset.wide {
                    legend { (l.t("二要素認証（TOTP）を必須にするロール（運用ロールは常に必須）", "Roles that must use TOTP (operator roles always must)")) }
                    label.check { input type="checkbox" name="totp_tenant_admins" value="1" checked[s.totp_tenant_admins]; (l.t("団体管理者", "Tenant admins")) }
                    label.check { input type="checkbox" name="totp_tenant_users" value="1" checked[s.totp_tenant_users]; (l.t("団体利用者", "Tenant users")) }
                }
                div.wide { button type="submit" { (l.t("保存", "Save")) } }
            }
            h2 { (l.t("イベントストア", "Event store")) }
            table.compact {
                thead { tr { th { (l.t("日付（UTC）", "Day (UTC)")) } th.num { (l.t("サイズ", "Size")) } } }
                tbody { @for p in &partitions { tr { td { (p.day) } td.num { (format!("{:.1} MiB", p.bytes as f64 / 1_048_576.0)) } } } }
            }
        }
    };
    let mut r = layout(a, l.t("設定", "Settings"), "/settings", body);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// GET /settings
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<BTreeMap<String, String>>) -> Response {
    page_result(a.lang, account_page(&state, &a, None, q.contains_key("saved")).await)
}

/// The account form.
#[derive(Deserialize)]
pub struct AccountForm {
    csrf: String,
    lang: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// POST /settings
pub async fn save_account(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<AccountForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.check_csrf(&f.csrf)?;
            // One's own account is always in reach, whatever the role.
            let own = a.principal.own_account();
            let result: Result<(), AppError> = async {
                if !f.password.is_empty() {
                    if f.password != f.confirm {
                        return Err(Problem::new("confirm", "mismatch", "確認用のパスワードが一致しません", "the two passwords differ").into());
                    }
                    let rec = state.store.login_record_by_id(a.user.id).await?.ok_or(AppError::NotFound)?;
                    if !state.verify_password(f.current.clone(), rec.password_hash.clone()).await {
                        return Err(Problem::new("current", "wrong_password", "現在のパスワードが違います", "the current password is wrong").into());
                    }
                    let settings = state.auth_settings().await;
                    check_password_policy(&f.password, &a.user.username, settings.password_min_length)?;
                    let hash = state.hash_password(f.password.clone()).await?;
                    let keep = a.session.as_ref().map(|s| s.id_hash.as_str());
                    state.store.set_own_password(&own, &hash, keep).await?;
                }
                if f.lang != a.user.lang {
                    state.store.set_own_lang(&own, &f.lang).await?;
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    let mut r = see_other("/settings?saved=1");
                    if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
                        "mamori_lang={}; Path=/; SameSite=Lax; Max-Age=31536000",
                        if f.lang == "en" { "en" } else { "ja" }
                    )) {
                        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
                    }
                    Ok(r)
                }
                Err(e @ AppError::Invalid(_)) => account_page(&state, &a, Some(&e), false).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The security settings form.
#[derive(Deserialize)]
pub struct SecurityForm {
    csrf: String,
    lockout_threshold: i64,
    lockout_minutes: i64,
    session_idle_minutes: i64,
    session_max_hours: i64,
    password_min_length: usize,
    #[serde(default)]
    totp_tenant_admins: String,
    #[serde(default)]
    totp_tenant_users: String,
}

/// POST /settings/security
pub async fn save_security(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<SecurityForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::SettingsWrite)?;
            a.check_csrf(&f.csrf)?;
            let settings = AuthSettings {
                lockout_threshold: f.lockout_threshold,
                lockout_minutes: f.lockout_minutes,
                session_idle_minutes: f.session_idle_minutes,
                session_max_hours: f.session_max_hours,
                password_min_length: f.password_min_length,
                totp_tenant_admins: !f.totp_tenant_admins.is_empty(),
                totp_tenant_users: !f.totp_tenant_users.is_empty(),
            };
            match settings.check() {
                Ok(()) => {
                    state
                        .store
                        .put_setting(
                            &a.principal.scope(),
                            &a.principal.actor(),
                            "auth",
                            &serde_json::to_value(&settings).map_err(|e| AppError::Internal(e.to_string()))?,
                        )
                        .await?;
                    Ok(see_other("/settings?saved=1"))
                }
                Err(p) => account_page(&state, &a, Some(&AppError::Invalid(p)), false).await,
            }
        }
        .await,
    )
}

/// Which policy to show.
#[derive(Deserialize, Default)]
pub struct PolicyQuery {
    tenant: Option<String>,
    component: Option<String>,
}

async fn policies_page(
    state: &AppState,
    a: &Authed,
    q: &PolicyQuery,
    draft: Option<(&str, &str)>,
    error: Option<&AppError>,
    saved: bool,
    preview: Option<&[mamori_core::PolicyChange]>,
) -> Result<Response, AppError> {
    let when_text = draft.map(|d| d.1.trim().to_string()).unwrap_or_default();
    let draft = draft.map(|d| d.0);
    let l = a.lang;
    a.require(Permission::PoliciesRead)?;
    let scope = a.principal.scope();
    let tenants = state.store.list_tenants(&scope).await?;
    let components = state.registry.policy_components();
    let component = q.component.clone().filter(|c| components.contains(&c.as_str())).or_else(|| components.first().map(|c| c.to_string())).unwrap_or_default();
    let tenant: Option<TenantId> = match q.tenant.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(t.parse().map_err(|_| AppError::NotFound)?),
        None => a.principal.tenant_id(),
    };
    if let Some(t) = tenant
        && !scope.includes(t)
    {
        return Err(AppError::NotFound);
    }
    let versions = state.store.policy_versions(&scope, tenant, &component, 20).await?;
    let default_doc = state.registry.validator(&component).map(|v| v.default_policy()).unwrap_or_default();
    let in_force = versions.iter().filter(|v| v.revision > 0).map(|v| v.revision).max();
    let current = versions.iter().find(|v| Some(v.revision) == in_force).map(|p| serde_json::to_string_pretty(&p.document).unwrap_or_default());
    let text = draft.map(str::to_string).or(current).unwrap_or_else(|| serde_json::to_string_pretty(&default_doc).unwrap_or_default());
    // The form shows the draft (or what is in force, or the default) field by field.
    let schema = state.registry.validator(&component).and_then(|v| v.schema());
    let shown_doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| default_doc.clone());
    let writers = state.store.policy_writers(&component).await?;
    let can_write =
        a.principal.can(Permission::PoliciesWrite) && writers.contains(&a.principal.role()) && (tenant.is_some() || a.principal.tenant_id().is_none());
    let is_operator_admin = a.principal.role() == mamori_core::Role::OperatorAdmin;
    let minimums = match state.registry.validator(&component) {
        Some(v) => state.store.policy_minimums(v.as_ref()).await?,
        None => None,
    };
    let can_set_minimums = a.require_operator(Permission::SettingsWrite).is_ok();
    let needs_approval = state.store.policy_needs_approval(&component).await?;
    let submitted = saved && versions.first().is_some_and(|v| v.approval == mamori_core::Approval::Pending && v.created_by == a.principal.actor().name);
    let body = html! {
        (tabs(a, "policies"))
        form.filters method="get" action="/settings/policies" {
            label { (l.t("コンポーネント", "Component")) select name="component" { @for c in &components { option value=(c) selected[*c == component] { (c) } } } }
            label { (l.t("対象", "Applies to")) select name="tenant" {
                @if a.principal.tenant_id().is_none() { option value="" selected[tenant.is_none()] { (l.t("全団体の既定値", "Platform default")) } }
                @for t in &tenants { option value=(t.id) selected[tenant == Some(t.id)] { (t.name) } }
            } }
            button type="submit" { (l.t("表示", "Show")) }
        }
        @if let Some(e) = error { (problems(l, e)) p { (l.t("ポリシーは保存されていません。", "The policy was not saved.")) } }
        @if saved && submitted {
            div.ok role="status" #submitted { (l.t("承認待ちとして保存しました。県の承認者が承認すると適用されます。", "Saved for approval. It takes effect once a prefecture approver approves it.")) }
        } @else if saved { div.ok role="status" { (l.t("保存しました。稼働中のコンポーネントに数秒以内に反映されます。", "Saved. Running components pick it up within seconds.")) } }
        p #approval-setting {
            @if needs_approval { (l.t("このコンポーネントのポリシー変更は、県の承認者の承認後に適用されます。", "Changes of this component's policies take effect once a prefecture approver approves them.")) }
            @else { (l.t("このコンポーネントのポリシー変更に承認は不要です。", "Changes of this component's policies need no approval.")) }
            @if can_set_minimums {
                form.inline method="post" action="/settings/policies/approval" {
                    input type="hidden" name="csrf" value=(a.csrf());
                    input type="hidden" name="component" value=(component);
                    input type="hidden" name="required" value=(if needs_approval { "0" } else { "1" });
                    button type="submit" { @if needs_approval { (l.t("承認を不要にする", "Stop requiring approval")) } @else { (l.t("県の承認を必須にする", "Require the prefecture's approval")) } }
                }
            }
        }
        p.muted { (l.t("既定値", "Default")) ": " code { (default_doc.to_string()) } }
        @if let Some(m) = &minimums {
            p { (l.t("県が定める最低値（これを下回るポリシーは保存できません）", "Platform minimums (no policy below them can be saved)")) ": " code { (m.to_string()) } }
            @if can_set_minimums {
                form.inline method="post" action="/settings/policies/minimums" {
                    input type="hidden" name="csrf" value=(a.csrf());
                    input type="hidden" name="component" value=(component);
                    label { (l.t("最低値（JSON）", "Minimums (JSON)")) input type="text" name="document" value=(m.to_string()) maxlength="4096"; }
                    button type="submit" { (l.t("最低値を変更", "Change the minimums")) }
                }
            }
        }
        p { (l.t("このポリシーを変更できるロール", "Roles that may change this policy")) ": " (writers.iter().map(|r| l.t(r.ja(), r.as_str())).collect::<Vec<_>>().join("、")) }
        @if is_operator_admin {
            form.inline method="post" action="/settings/policies/writers" {
                input type="hidden" name="csrf" value=(a.csrf());
                input type="hidden" name="component" value=(component);
                @for r in [mamori_core::Role::SocAnalyst, mamori_core::Role::TenantAdmin] {
                    label.check { input type="checkbox" name="role" value=(r.as_str()) checked[writers.contains(&r)]; (l.t(r.ja(), r.as_str())) }
                }
                button type="submit" { (l.t("変更できるロールを保存", "Save who may change it")) }
            }
        }
        @if let Some(changes) = preview {
            h2 { (l.t("変更内容の確認", "Review the changes")) }
            div #policy-diff { (super::approvals::changes_table(l, changes)) }
            form method="post" action="/settings/policies" {
                input type="hidden" name="csrf" value=(a.csrf());
                input type="hidden" name="component" value=(component);
                input type="hidden" name="tenant" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                input type="hidden" name="document" value=(text);
                input type="hidden" name="effective_at" value=(when_text);
                input type="hidden" name="confirm" value="1";
                @if !when_text.is_empty() { p { (l.t("適用日時", "Takes effect at")) ": " (when_text) } }
                @if needs_approval { p { (l.t("保存すると承認待ちになり、県の承認者が承認してから適用されます。", "Once saved it waits for a prefecture approver, and takes effect when approved.")) } }
                button type="submit" { (l.t("この内容で保存", "Save these changes")) }
                " " a href=(format!("/settings/policies?component={component}&tenant={}", tenant.map(|t| t.to_string()).unwrap_or_default())) { (l.t("取り消す", "Cancel")) }
            }
        }
        @if can_write {
            @let when_field = html! { label { (l.t("適用日時（空欄: 保存後すぐ。例: 2026-12-24 09:00）", "Takes effect at (empty: when saved; e.g. 2026-12-24 09:00 JST)")) input type="text" name="effective_at" value=(when_text) maxlength="40"; } };
            @let json_form = html! {
                form method="post" action="/settings/policies" {
                    input type="hidden" name="csrf" value=(a.csrf());
                    input type="hidden" name="component" value=(component);
                    input type="hidden" name="tenant" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                    label { (l.t("ポリシー（JSON）", "Policy (JSON)")) textarea.code name="document" rows="10" { (text) } }
                    (when_field)
                    button type="submit" { (l.t("検証して変更内容を確認", "Validate and review the changes")) }
                }
            };
            @if let Some(schema) = &schema {
                form #policy-form method="post" action="/settings/policies" {
                    input type="hidden" name="csrf" value=(a.csrf());
                    input type="hidden" name="component" value=(component);
                    input type="hidden" name="tenant" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                    input type="hidden" name="mode" value="fields";
                    (mamori_web::form::render(l, schema, &shown_doc))
                    (when_field)
                    button type="submit" { (l.t("検証して変更内容を確認", "Validate and review the changes")) }
                }
                details.expert {
                    summary { (l.t("JSON で編集（上級者向け）", "Edit as JSON (for experts)")) }
                    (json_form)
                }
            } @else { (json_form) }
        } @else { pre { (text) } }
        h2 { (l.t("履歴", "History")) }
        table.compact {
            thead { tr { th { (l.t("版", "Version")) } th { (l.t("日時", "Time")) } th { (l.t("保存者", "By")) } th { (l.t("内容", "Document")) } th {} } }
            tbody { @for v in &versions { tr {
                td { (v.version)
                    @if v.approval == mamori_core::Approval::Pending { " " span.sev.sev3 { (l.t("承認待ち", "awaiting approval")) } }
                    @else if v.approval == mamori_core::Approval::Rejected {
                        " " span.sev.sev4 { (l.t("却下", "rejected")) }
                        @if let Some(d) = &v.decision { " " small { (d.by) ": " (d.note) } }
                    }
                    @else if v.revision < 0 { " " span.sev.sev3 { (l.t("予定 ", "scheduled ")) (when(v.effective_at)) } }
                    @else if Some(v.revision) == in_force { " " span.st.st-up { (l.t("適用中", "in force")) } }
                    @if v.approval == mamori_core::Approval::Approved && let Some(d) = &v.decision { " " small { (l.t("承認: ", "approved by ")) (d.by) } }
                }
                td { (when(v.created_at)) } td { (v.created_by) } td { code { (v.document.to_string()) } }
                td { @if can_write && v.revision < 0 && v.approval != mamori_core::Approval::Rejected {
                    form.inline method="post" action="/settings/policies/cancel" {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="component" value=(component);
                        input type="hidden" name="tenant" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                        input type="hidden" name="version" value=(v.version);
                        button.danger type="submit" { @if v.approval == mamori_core::Approval::Pending { (l.t("申請を取り下げる", "Withdraw")) } @else { (l.t("予定を取り消す", "Cancel")) } }
                    }
                } @else if can_write && v.revision > 0 && Some(v.revision) != in_force {
                    form.inline method="post" action="/settings/policies/rollback" {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="component" value=(component);
                        input type="hidden" name="tenant" value=(tenant.map(|t| t.to_string()).unwrap_or_default());
                        input type="hidden" name="version" value=(v.version);
                        button type="submit" { (l.t("この版に戻す", "Roll back to this version")) }
                    }
                } }
            } } }
        }
    };
    let mut r = layout(a, l.t("ポリシー", "Policies"), "/settings", body);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// GET /settings/policies
pub async fn policies(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<PolicyQuery>) -> Response {
    page_result(a.lang, policies_page(&state, &a, &q, None, None, false, None).await)
}

/// Reads the tenant field of a policy form: empty is the platform default.
fn form_tenant(field: &str) -> Result<Option<TenantId>, AppError> {
    match field.trim() {
        "" => Ok(None),
        t => t.parse::<TenantId>().map(Some).map_err(|_| AppError::NotFound),
    }
}

/// The policy form: the JSON document, or (`mode=fields`) the fields of the form
/// generated from the policy's schema (`p.…`).
pub struct PolicyForm {
    csrf: String,
    component: String,
    tenant: String,
    document: String,
    /// Set by the review step: save without showing the changes again.
    confirm: String,
    /// When it takes effect (empty: at once).
    effective_at: String,
    /// `fields`: the generated form was posted.
    mode: String,
}

impl PolicyForm {
    fn of(fields: &[(String, String)]) -> PolicyForm {
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        PolicyForm {
            csrf: get("csrf"),
            component: get("component"),
            tenant: get("tenant"),
            document: get("document"),
            confirm: get("confirm"),
            effective_at: get("effective_at"),
            mode: get("mode"),
        }
    }
}

/// POST /settings/policies: validates and shows the changes; saves once confirmed.
pub async fn save_policy(State(state): State<AppState>, PageAuth(a): PageAuth, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let l = a.lang;
    let mut f = PolicyForm::of(&fields);
    page_result(
        l,
        async {
            a.check_csrf(&f.csrf)?;
            let q = PolicyQuery { tenant: Some(f.tenant.clone()), component: Some(f.component.clone()) };
            let validator = state.registry.validator(&f.component).ok_or(AppError::NotFound)?;
            crate::api::require_policy_writer(&state, &a, &f.component).await?;
            let tenant = form_tenant(&f.tenant)?;
            let scope = a.principal.scope();
            if f.mode == "fields" {
                // The generated form: its fields laid over the document in force.
                let schema = validator.schema().ok_or(AppError::NotFound)?;
                let in_force = state.store.policy(&scope, tenant, &f.component).await?;
                let base = in_force.map_or_else(|| validator.default_policy(), |v| v.document);
                let (doc, problems) = mamori_web::form::read(&schema, &base, &fields);
                f.document = serde_json::to_string_pretty(&doc).unwrap_or_default();
                if !problems.is_empty() {
                    return policies_page(&state, &a, &q, Some((&f.document, &f.effective_at)), Some(&AppError::Invalid(problems)), false, None).await;
                }
            }
            let result = match serde_json::from_str::<serde_json::Value>(&f.document) {
                Ok(doc) if f.confirm != "1" => {
                    // The review step: check everything a save checks, then show the changes.
                    let checked = crate::api::effective_at(Some(&f.effective_at));
                    let reviewed = match checked {
                        Ok(_) => state.store.preview_policy(&scope, tenant, validator.as_ref(), &doc).await.map_err(AppError::from),
                        Err(e) => Err(e),
                    };
                    return match reviewed {
                        Ok((_, changes)) => policies_page(&state, &a, &q, Some((&f.document, &f.effective_at)), None, false, Some(&changes)).await,
                        Err(e @ AppError::Invalid(_)) => policies_page(&state, &a, &q, Some((&f.document, &f.effective_at)), Some(&e), false, None).await,
                        Err(e) => Err(e),
                    };
                }
                Ok(doc) => match crate::api::effective_at(Some(&f.effective_at))? {
                    Some(at) => state.store.schedule_policy(&scope, &a.principal.actor(), tenant, validator.as_ref(), doc, at).await.map_err(AppError::from),
                    None => state.store.put_policy(&scope, &a.principal.actor(), tenant, validator.as_ref(), doc).await.map_err(AppError::from),
                },
                Err(e) => Err(Problem::new(
                    "document",
                    "invalid_json",
                    format!("JSON として読めません（{} 行 {} 列）", e.line(), e.column()),
                    format!("not valid JSON (line {}, column {})", e.line(), e.column()),
                )
                .into()),
            };
            match result {
                Ok(_) => policies_page(&state, &a, &q, None, None, true, None).await,
                Err(e @ AppError::Invalid(_)) => policies_page(&state, &a, &q, Some((&f.document, &f.effective_at)), Some(&e), false, None).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The minimums form.
#[derive(Deserialize)]
pub struct MinimumsForm {
    csrf: String,
    component: String,
    document: String,
}

/// POST /settings/policies/minimums (operator admins)
pub async fn save_minimums(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<MinimumsForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::SettingsWrite)?;
            a.check_csrf(&f.csrf)?;
            let q = PolicyQuery { tenant: None, component: Some(f.component.clone()) };
            let validator = state.registry.validator(&f.component).ok_or(AppError::NotFound)?;
            let result = match serde_json::from_str::<serde_json::Value>(&f.document) {
                Ok(doc) => state.store.put_policy_minimums(&a.principal.scope(), &a.principal.actor(), validator.as_ref(), doc).await.map_err(AppError::from),
                Err(_) => Err(Problem::new("document", "invalid_json", "JSON として読めません", "not valid JSON").into()),
            };
            match result {
                Ok(()) => policies_page(&state, &a, &q, None, None, true, None).await,
                Err(e @ AppError::Invalid(_)) => policies_page(&state, &a, &q, None, Some(&e), false, None).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The rollback form.
#[derive(Deserialize)]
pub struct RollbackForm {
    csrf: String,
    component: String,
    tenant: String,
    version: i64,
}

/// POST /settings/policies/rollback
pub async fn rollback_policy(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<RollbackForm>) -> Response {
    page_result(
        a.lang,
        async {
            a.check_csrf(&f.csrf)?;
            let validator = state.registry.validator(&f.component).ok_or(AppError::NotFound)?;
            crate::api::require_policy_writer(&state, &a, &f.component).await?;
            let tenant = form_tenant(&f.tenant)?;
            let q = PolicyQuery { tenant: Some(f.tenant.clone()), component: Some(f.component.clone()) };
            match state.store.rollback_policy(&a.principal.scope(), &a.principal.actor(), tenant, validator.as_ref(), f.version).await.map_err(AppError::from) {
                Ok(_) => policies_page(&state, &a, &q, None, None, true, None).await,
                Err(e @ AppError::Invalid(_)) => policies_page(&state, &a, &q, None, Some(&e), false, None).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// POST /settings/policies/cancel: cancels a scheduled version.
pub async fn cancel_policy(State(state): State<AppState>, PageAuth(a): PageAuth, Form(f): Form<RollbackForm>) -> Response {
    page_result(
        a.lang,
        async {
            a.check_csrf(&f.csrf)?;
            state.registry.validator(&f.component).ok_or(AppError::NotFound)?;
            crate::api::require_policy_writer(&state, &a, &f.component).await?;
            let tenant = form_tenant(&f.tenant)?;
            state.store.cancel_scheduled_policy(&a.principal.scope(), &a.principal.actor(), tenant, &f.component, f.version).await?;
            let q = PolicyQuery { tenant: Some(f.tenant.clone()), component: Some(f.component.clone()) };
            policies_page(&state, &a, &q, None, None, true, None).await
        }
        .await,
    )
}

/// POST /settings/policies/writers and /settings/policies/approval (operator admins):
/// who may write a component's policies, and whether their changes need the
/// prefecture's approval.
pub async fn save_policy_access(
    State(state): State<AppState>,
    PageAuth(a): PageAuth,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Form(pairs): Form<super::Pairs>,
) -> Response {
    page_result(
        a.lang,
        async {
            a.require_operator(Permission::SettingsWrite)?;
            a.check_csrf(super::field(&pairs, "csrf"))?;
            let component = super::field(&pairs, "component").to_string();
            state.registry.validator(&component).ok_or(AppError::NotFound)?;
            let (scope, actor) = (a.principal.scope(), a.principal.actor());
            if uri.path().ends_with("/approval") {
                state.store.put_policy_approval(&scope, &actor, &component, super::field(&pairs, "required") == "1").await?;
            } else {
                let mut roles = Vec::new();
                for (_, v) in pairs.iter().filter(|(k, _)| k == "role") {
                    roles.push(mamori_core::Role::ALL.into_iter().find(|r| r.as_str() == v).ok_or(AppError::NotFound)?);
                }
                state.store.put_policy_writers(&scope, &actor, &component, &roles).await?;
            }
            let q = PolicyQuery { tenant: None, component: Some(component) };
            policies_page(&state, &a, &q, None, None, true, None).await
        }
        .await,
    )
}

async fn tokens_page(state: &AppState, a: &Authed, created: Option<&str>, error: Option<&AppError>) -> Result<Response, AppError> {
    let l = a.lang;
    let tokens = state.store.list_tokens(&a.principal.own_account()).await?;
    let now = mamori_core::time::now_ms();
    let body = html! {
        (tabs(a, "tokens"))
        @if let Some(t) = created {
            div.ok role="status" {
                p { (l.t("トークンを作成しました。この値は二度と表示されません。安全な場所に保管してください。", "Token created. It is not shown again; store it safely.")) }
                code #new-token { (t) }
            }
        }
        @if let Some(e) = error { (problems(l, e)) }
        p { (l.t("API トークンは、自分のロールの権限のうち選んだスコープだけを持ちます。", "A token has the chosen scopes, within your own role's permissions.")) }
        form.grid method="post" action="/settings/tokens" {
            input type="hidden" name="csrf" value=(a.csrf());
            label { (l.t("名前", "Name")) input type="text" name="name" required placeholder=(l.t("例: 監視スクリプト", "e.g. monitoring script")); }
            label { (l.t("有効日数", "Valid for (days)")) input type="number" name="days" value="90" min="1" max="400"; }
            fieldset.wide { legend { (l.t("スコープ", "Scopes")) }
                @for s in TokenScope::ALL { @if a.user.role.allows(s.permission()) {
                    label.check { input type="checkbox" name=(format!("scope_{}", s.as_str())); code { (s.as_str()) } }
                } }
            }
            div.wide { button type="submit" { (l.t("作成", "Create")) } }
        }
        table {
            thead { tr { th { (l.t("名前", "Name")) } th { (l.t("先頭", "Prefix")) } th { (l.t("スコープ", "Scopes")) } th { (l.t("有効期限", "Expires")) } th { (l.t("最終使用", "Last used")) } th {} } }
            tbody { @for t in &tokens { tr {
                td { (t.name) } td { code { (t.prefix) "…" } }
                td { (t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")) }
                td { (when(t.expires_at)) }
                td { (t.last_used_at.map(when).unwrap_or_default()) }
                td { @if t.revoked_at.is_some() { (l.t("失効済み", "Revoked")) } @else if t.expires_at <= now { (l.t("期限切れ", "Expired")) } @else {
                    form.inline method="post" action=(format!("/settings/tokens/{}/revoke", t.id)) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        button.danger type="submit" { (l.t("失効", "Revoke")) }
                    }
                } }
            } } }
        }
    };
    let mut r = layout(a, l.t("API トークン", "API tokens"), "/settings", body);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// GET /settings/tokens
pub async fn tokens(State(state): State<AppState>, PageAuth(a): PageAuth) -> Response {
    page_result(a.lang, tokens_page(&state, &a, None, None).await)
}

/// Creates a token for `a`'s own account; returns the secret (shown once).
pub async fn issue_token(state: &AppState, a: &Authed, name: &str, scopes: Vec<TokenScope>, days: i64) -> Result<(mamori_store::ApiToken, String), AppError> {
    if let Some(s) = scopes.iter().find(|s| !a.user.role.allows(s.permission())) {
        return Err(Problem::new(
            "scopes",
            "scope_beyond_role",
            format!("スコープ {} はあなたのロールにない権限です", s.as_str()),
            format!("scope {} exceeds your role", s.as_str()),
        )
        .into());
    }
    if a.principal.token().is_some() {
        return Err(AppError::Forbidden);
    }
    let expires_at = mamori_core::time::now_ms() + days.clamp(0, 400) * 86_400_000;
    let (new, secret) = crate::auth::mint_api_token(a.user.id, name, scopes, expires_at);
    let token = state.store.create_token(&a.principal.own_account(), new, a.user.tenant_id).await?;
    Ok((token, secret))
}

/// POST /settings/tokens
pub async fn create_token(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<super::Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            let get = |k: &str| super::field(&pairs, k);
            a.check_csrf(get("csrf"))?;
            let scopes: Vec<TokenScope> = pairs.iter().filter_map(|(k, _)| k.strip_prefix("scope_")).filter_map(|s| s.parse().ok()).collect();
            let days = get("days").trim().parse::<i64>().unwrap_or(0);
            match issue_token(&state, &a, get("name"), scopes, days).await {
                Ok((_, secret)) => tokens_page(&state, &a, Some(&secret), None).await,
                Err(e @ AppError::Invalid(_)) => tokens_page(&state, &a, None, Some(&e)).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// The revoke form.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// POST /settings/tokens/{id}/revoke
pub async fn revoke_token(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.check_csrf(&f.csrf)?;
            let id = id.parse().map_err(|_| AppError::NotFound)?;
            state.store.revoke_token(&a.principal.scope(), &a.principal.actor(), a.user.id, id).await?;
            Ok(see_other("/settings/tokens"))
        }
        .await,
    )
}

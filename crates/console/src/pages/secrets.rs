//! Settings → 秘密情報: keys, certificates and passwords components use. Values can be
//! stored and replaced, never shown again.
//!
//! Requirements: DKIM keys (F50), LDAP passwords of monitored AD servers (F05),
//! certificates (F09, F14).

use super::{Pairs, field, layout, page_result, problems, see_other, when};
use crate::api::secret_tenant;
use crate::auth::{Authed, PageAuth};
use crate::{AppError, AppState};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Role};
use mamori_vault::SecretKind;
use mamori_web::Form;
use maud::{Markup, html};
use zeroize::Zeroizing;

async fn body(state: &AppState, a: &Authed, error: Option<&AppError>) -> Result<Markup, AppError> {
    let l = a.lang;
    let scope = a.principal.scope();
    let secrets = state.vault.secrets.list(&scope).await?;
    let tenants = state.store.list_tenants(&scope).await?;
    let tenant_name = |t: Option<mamori_core::TenantId>| match t {
        None => l.t("プラットフォーム", "Platform").to_string(),
        Some(id) => tenants.iter().find(|x| x.id == id).map(|x| x.name.clone()).unwrap_or_else(|| id.to_string()),
    };
    let can_write = a.principal.can(Permission::PoliciesWrite);
    Ok(html! {
        (super::settings_tabs(a, "secrets"))
        p { (l.t("コンポーネントが使う鍵・証明書・パスワード（DKIM 鍵、LDAP のパスワードなど）です。値はマスターキーで暗号化して保存し、保存後は画面にも API にも表示しません。変更するときは新しい値で上書きしてください。",
                 "Keys, certificates and passwords components use (DKIM keys, LDAP passwords, …). Values are encrypted under the master key and never shown again, in the console or the API; to change one, store a new value.")) }
        table {
            thead { tr { th { (l.t("団体", "Tenant")) } th { (l.t("名前", "Name")) } th { (l.t("種類", "Kind")) } th { (l.t("更新日時", "Updated")) } th { (l.t("更新者", "By")) } th { (l.t("マスターキー", "Master key")) } th {} } }
            tbody { @for s in &secrets { tr {
                td { (tenant_name(s.tenant)) }
                td { code { (s.name) } }
                td { (s.kind.parse::<SecretKind>().map(|k| l.t(k.ja(), k.as_str())).unwrap_or(&s.kind)) }
                td.nowrap { (when(s.updated_at)) }
                td { (s.updated_by) }
                td { code { (s.key_id) } }
                td { @if can_write && (s.tenant.is_some() || a.principal.role() == Role::OperatorAdmin) {
                    form.inline method="post" action="/settings/secrets/delete" {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="tenant" value=(s.tenant.map(|t| t.to_string()).unwrap_or_else(|| "platform".into()));
                        input type="hidden" name="name" value=(s.name);
                        button.danger type="submit" { (l.t("削除", "Delete")) }
                    }
                } }
            } } }
        }
        @if can_write {
            h2 { (l.t("秘密情報を保存", "Store a secret")) }
            @if let Some(e) = error { (problems(l, e)) }
            form.grid method="post" action="/settings/secrets" autocomplete="off" {
                input type="hidden" name="csrf" value=(a.csrf());
                @if a.principal.role().is_operator() {
                    label { (l.t("団体", "Tenant"))
                        select name="tenant" {
                            @if a.principal.role() == Role::OperatorAdmin { option value="platform" { (l.t("プラットフォーム", "Platform")) } }
                            @for t in &tenants { option value=(t.id) { (t.name) } }
                        }
                    }
                }
                label { (l.t("名前（例: ldap/ad01、dkim/city.example.lg.jp）", "Name (e.g. ldap/ad01, dkim/city.example.lg.jp)")) input type="text" name="name" required maxlength="128"; }
                label { (l.t("種類", "Kind")) select name="kind" { @for k in SecretKind::ALL { option value=(k.as_str()) { (l.t(k.ja(), k.as_str())) } } } }
                label.wide { (l.t("値（保存後は表示されません）", "Value (not shown again once stored)")) textarea.code name="value" rows="4" required spellcheck="false" {} }
                div.wide { button type="submit" { (l.t("保存", "Save")) } }
            }
        }
    })
}

async fn render(state: &AppState, a: &Authed, error: Option<&AppError>) -> Result<Response, AppError> {
    let l = a.lang;
    let mut r = layout(a, l.t("秘密情報", "Secrets"), "/settings", body(state, a, error).await?);
    if let Some(e) = error {
        *r.status_mut() = e.status();
    }
    Ok(r)
}

/// GET /settings/secrets
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::PoliciesRead)?;
            render(&state, &a, None).await
        }
        .await,
    )
}

/// POST /settings/secrets
pub async fn save(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::PoliciesWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let value = Zeroizing::new(field(&pairs, "value").to_string());
            let result = async {
                let tenant = secret_tenant(&a, field(&pairs, "tenant"))?;
                let kind: SecretKind = field(&pairs, "kind").parse()?;
                state.vault.secrets.put(&a.principal.scope(), &a.principal.actor(), tenant, field(&pairs, "name"), kind, value.as_bytes()).await?;
                Ok::<_, AppError>(())
            }
            .await;
            match result {
                Ok(()) => Ok(see_other("/settings/secrets")),
                Err(e @ AppError::Invalid(_)) => render(&state, &a, Some(&e)).await,
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// POST /settings/secrets/delete
pub async fn delete(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<Pairs>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::PoliciesWrite)?;
            a.check_csrf(field(&pairs, "csrf"))?;
            let tenant = secret_tenant(&a, field(&pairs, "tenant"))?;
            state.vault.secrets.delete(&a.principal.scope(), &a.principal.actor(), tenant, field(&pairs, "name")).await?;
            Ok(see_other("/settings/secrets"))
        }
        .await,
    )
}

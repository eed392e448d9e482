//! Account pages: list, create, edit, reset password, unlock, reset TOTP, delete.

use super::{layout, page_result, problems, see_other, when};
use crate::auth::{Authed, PageAuth, random_token};
use crate::{AppError, AppState, Lang};
use axum::extract::State;
use axum::response::Response;
use mamori_core::{Permission, Reach, Role, Tenant, TenantId, UserId};
use mamori_store::{NewUser, User, UserFilter, UserPatch};
use mamori_web::Form;
use mamori_web::table::{Table, TableQuery, num, text};
use mamori_web::{Path, Query};
use maud::{Markup, html};
use serde::Deserialize;

/// GET /users: sortable, paged, exported as CSV (`?format=csv`).
pub async fn list(State(state): State<AppState>, PageAuth(a): PageAuth, Query(q): Query<std::collections::BTreeMap<String, String>>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersRead)?;
            let scope = a.principal.scope();
            let filter = UserFilter { tenant: mamori_web::api::tenant_param("tenant", q.get("tenant").map(String::as_str))? };
            let users = state.store.list_users(&scope, &filter).await?;
            let tenants = state.store.list_tenants(&scope).await?;
            let now = mamori_core::time::now_ms();
            let rows: Vec<(User, String)> = users
                .into_iter()
                .map(|u| {
                    let t = tenant_name(&tenants, &u, l);
                    (u, t)
                })
                .collect();
            type Row = (User, String);
            let last_login = |r: &Row| r.0.last_login_at.map(when).unwrap_or_default();
            let table = Table::new("/users", "users.csv")
                .default_sort("username", false)
                .column(
                    "username",
                    ("ログイン名", "Login"),
                    |r: &Row| html! { a href=(format!("/users/{}", r.0.id)) { (r.0.username) } },
                    |r| r.0.username.clone(),
                    text(|r: &Row| r.0.username.clone()),
                )
                .nowrap()
                .text_column("name", ("表示名", "Name"), |r: &Row| r.0.display_name.clone())
                .column(
                    "role",
                    ("ロール", "Role"),
                    move |r: &Row| html! { (l.t(r.0.role.ja(), r.0.role.en())) },
                    move |r| l.t(r.0.role.ja(), r.0.role.en()).to_string(),
                    text(|r: &Row| r.0.role.as_str().to_string()),
                )
                .text_column("tenant", ("所属団体", "Tenant"), |r: &Row| r.1.clone())
                .column(
                    "totp",
                    ("二要素認証", "2FA"),
                    |r: &Row| html! { @if r.0.totp_enabled { "✔" } @else { "—" } },
                    |r| if r.0.totp_enabled { "✔".into() } else { String::new() },
                    num(|r: &Row| Some(f64::from(u8::from(r.0.totp_enabled)))),
                )
                .text_column("status", ("状態", "Status"), move |r: &Row| status(l, &r.0, now).to_string())
                .column(
                    "last_login",
                    ("最終ログイン", "Last login"),
                    move |r: &Row| html! { (last_login(r)) },
                    last_login,
                    num(|r: &Row| r.0.last_login_at.map(|t| t as f64)),
                )
                .nowrap();
            let tq = TableQuery::from_query(&q);
            if tq.wants_csv() {
                return Ok(table.csv(l, &rows, &tq));
            }
            let body = html! {
                @if a.principal.can(Permission::UsersWrite) { div.toolbar { a.button href="/users/new" { (l.t("利用者を追加", "Add account")) } } }
                (table.render(l, &rows, &tq))
            };
            Ok(layout(&a, l.t("利用者", "Users"), "/users", body))
        }
        .await,
    )
}

fn tenant_name(tenants: &[Tenant], u: &User, l: Lang) -> String {
    let name = |t: &TenantId| tenants.iter().find(|x| x.id == *t).map(|x| x.name.clone()).unwrap_or_default();
    match (u.role.reach(), u.tenant_id) {
        (Reach::OwnTenant, Some(t)) => name(&t),
        (Reach::NamedTenants, _) => format!("{}{}", l.t("担当: ", "For: "), u.tenants.iter().map(name).collect::<Vec<_>>().join(l.t("、", ", "))),
        _ => l.t("（運用）", "(operator)").to_string(),
    }
}

/// An account's tenant, named tenants and expiry (Unix ms).
pub(crate) type AccountReach = (Option<TenantId>, Vec<TenantId>, Option<i64>);

/// Works out an account's tenant, named tenants and expiry from what a form or API body
/// gave for `role`: a tenant role takes `tenant` (else the caller's own), a maintenance
/// vendor the named `tenants` and the expiry date, an operator role neither.
pub(crate) fn reach_of(a: &Authed, role: Role, tenant: Option<TenantId>, tenants: Vec<TenantId>, expires_on: Option<&str>) -> Result<AccountReach, AppError> {
    let expires = expiry_of(expires_on)?;
    Ok(match role.reach() {
        Reach::OwnTenant => (tenant.or(a.principal.tenant_id()), Vec::new(), expires),
        Reach::NamedTenants => (None, tenants, expires),
        Reach::AllTenants => (None, Vec::new(), expires),
    })
}

/// Reads the last day an account works (`YYYY-MM-DD`, JST) as its expiry; empty or
/// absent: no end.
pub(crate) fn expiry_of(expires_on: Option<&str>) -> Result<Option<i64>, AppError> {
    match expires_on.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) => Ok(Some(mamori_core::time::end_of_day_jst(d).ok_or_else(|| {
            mamori_core::Problem::new(
                "expires_on",
                "invalid_date",
                "有効期限は YYYY-MM-DD の形の日付で入力してください",
                "the expiry must be a date YYYY-MM-DD",
            )
        })?)),
    }
}

/// Returns the expiry of an account as the last day it works (JST), or "".
fn expiry_day(u: &User) -> String {
    u.expires_at.map(|e| mamori_core::time::format_date_jst(e - 1)).unwrap_or_default()
}

fn status(l: Lang, u: &User, now: i64) -> &'static str {
    if u.disabled {
        l.t("無効", "Disabled")
    } else if u.expired_at(now) {
        l.t("期限切れ", "Expired")
    } else if u.locked_until > now {
        l.t("ロック中", "Locked")
    } else if u.must_change_password {
        l.t("パスワード変更待ち", "Must change password")
    } else {
        l.t("有効", "Active")
    }
}

/// The create/edit form.
#[derive(Deserialize, Default, Clone)]
pub struct UserForm {
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    disabled: Option<String>,
    /// The municipalities of a maintenance vendor (checkboxes `vendor_tenant`).
    #[serde(skip)]
    vendor_tenants: Vec<String>,
    /// The last day the account works (`YYYY-MM-DD`, JST); empty: no end.
    #[serde(default)]
    expires_on: String,
}

impl UserForm {
    /// Reads the form from its fields (the vendor's tenants are a repeated field).
    fn from_pairs(pairs: &super::Pairs) -> Self {
        let field = |k: &str| super::field(pairs, k).to_string();
        UserForm {
            csrf: field("csrf"),
            username: field("username"),
            display_name: field("display_name"),
            email: field("email"),
            role: field("role"),
            tenant: field("tenant"),
            disabled: pairs.iter().any(|(k, _)| k == "disabled").then(|| "on".into()),
            vendor_tenants: pairs.iter().filter(|(k, _)| k == "vendor_tenant").map(|(_, v)| v.clone()).collect(),
            expires_on: field("expires_on"),
        }
    }

    fn vendor_tenant_ids(&self) -> Vec<TenantId> {
        self.vendor_tenants.iter().filter_map(|t| t.parse().ok()).collect()
    }
}

fn user_form(a: &Authed, tenants: &[Tenant], action: &str, f: &UserForm, creating: bool, error: Option<&AppError>) -> Markup {
    let l = a.lang;
    html! {
        @if let Some(e) = error { (problems(l, e)) }
        form.grid method="post" action=(action) {
            input type="hidden" name="csrf" value=(a.csrf());
            @if creating {
                label { (l.t("ログイン名", "Login name")) input type="text" name="username" value=(f.username) required autocomplete="off"; }
            }
            label { (l.t("表示名", "Display name")) input type="text" name="display_name" value=(f.display_name) required; }
            label { (l.t("メール", "E-mail")) input type="email" name="email" value=(f.email); }
            label { (l.t("ロール", "Role"))
                select name="role" { @for r in Role::ALL { @if a.principal.role().may_grant(r) { option value=(r.as_str()) selected[f.role == r.as_str()] { (l.t(r.ja(), r.en())) } } } }
            }
            label { (l.t("所属団体（団体のロールのみ）", "Tenant (tenant roles only)"))
                select name="tenant" {
                    @if a.principal.tenant_id().is_none() { option value="" { (l.t("（運用側）", "(operator)")) } }
                    @for t in tenants { option value=(t.id) selected[f.tenant == t.id.to_string()] { (t.code) " " (t.name) } }
                }
            }
            label { (l.t("有効期限（この日まで有効。保守業者は必須）", "Valid until (this day included; required for vendors)"))
                input type="date" name="expires_on" value=(f.expires_on);
            }
            @if a.principal.role().may_grant(Role::MaintenanceVendor) {
                fieldset.wide {
                    legend { (l.t("担当団体（保守業者のみ）", "Tenants served (maintenance vendors only)")) }
                    @for t in tenants {
                        label.check { input type="checkbox" name="vendor_tenant" value=(t.id) checked[f.vendor_tenants.contains(&t.id.to_string())]; (t.code) " " (t.name) }
                    }
                }
            }
            @if !creating {
                label.check { input type="checkbox" name="disabled" checked[f.disabled.is_some()]; (l.t("このアカウントを無効にする", "Disable this account")) }
            }
            div.wide { button type="submit" { (l.t("保存", "Save")) } }
        }
    }
}

/// GET /users/new
pub async fn new_form(State(state): State<AppState>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersWrite)?;
            let tenants = state.store.list_tenants(&a.principal.scope()).await?;
            let f = UserForm { role: "tenant_user".into(), ..Default::default() };
            Ok(layout(&a, l.t("利用者を追加", "Add account"), "/users", user_form(&a, &tenants, "/users", &f, true, None)))
        }
        .await,
    )
}

fn parse_tenant(s: &str) -> Option<TenantId> {
    s.parse().ok()
}

/// POST /users
pub async fn create(State(state): State<AppState>, PageAuth(a): PageAuth, Form(pairs): Form<super::Pairs>) -> Response {
    let f = UserForm::from_pairs(&pairs);
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersWrite)?;
            a.check_csrf(&f.csrf)?;
            let scope = a.principal.scope();
            let result = async {
                let role: Role = f.role.parse()?;
                if !a.principal.role().may_grant(role) {
                    return Err(AppError::Forbidden);
                }
                let once = random_token(12);
                let hash = state.hash_password(once.clone()).await?;
                let (tenant, tenants, expires_at) = reach_of(&a, role, parse_tenant(&f.tenant), f.vendor_tenant_ids(), Some(&f.expires_on))?;
                let user = state
                    .store
                    .create_user(
                        &scope,
                        &a.principal.actor(),
                        NewUser {
                            username: f.username.clone(),
                            display_name: f.display_name.clone(),
                            email: f.email.clone(),
                            role,
                            tenant_id: tenant,
                            tenants,
                            expires_at,
                            password_hash: hash,
                            must_change_password: true,
                        },
                    )
                    .await?;
                Ok((user, once))
            }
            .await;
            match result {
                Ok((user, once)) => Ok(one_time(&a, &user, &once)),
                Err(e @ AppError::Invalid(_)) => {
                    let tenants = state.store.list_tenants(&scope).await?;
                    let mut r = layout(&a, l.t("利用者を追加", "Add account"), "/users", user_form(&a, &tenants, "/users", &f, true, Some(&e)));
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

fn one_time(a: &Authed, user: &User, password: &str) -> Response {
    let l = a.lang;
    layout(
        a,
        l.t("初期パスワード", "One-time password"),
        "/users",
        html! {
            div.ok role="status" {
                p { (l.t("次の初期パスワードを本人に安全な方法で伝えてください。この画面を閉じると再表示できません。初回ログイン時にパスワードの変更を求められます。",
                         "Give this one-time password to the person by a safe channel. It is not shown again; they must change it at first login.")) }
                p { (l.t("ログイン名", "Login")) ": " code #new-username { (user.username) } }
                p { (l.t("初期パスワード", "One-time password")) ": " code #one-time-password { (password) } }
            }
            p { a href=(format!("/users/{}", user.id)) { (l.t("利用者の詳細へ", "To the account")) } }
        },
    )
}

fn parse_id(s: &str) -> Result<UserId, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}

/// GET /users/{id}
pub async fn show(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersRead)?;
            let scope = a.principal.scope();
            let u = state.store.get_user(&scope, parse_id(&id)?).await?.ok_or(AppError::NotFound)?;
            let tenants = state.store.list_tenants(&scope).await?;
            Ok(layout(&a, &u.username, "/users", detail(&a, &u, &tenants, None)))
        }
        .await,
    )
}

fn detail(a: &Authed, u: &User, tenants: &[Tenant], error: Option<&AppError>) -> Markup {
    let l = a.lang;
    let now = mamori_core::time::now_ms();
    let f = UserForm {
        csrf: String::new(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        role: u.role.as_str().into(),
        tenant: u.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        disabled: u.disabled.then(|| "on".into()),
        vendor_tenants: u.tenants.iter().map(|t| t.to_string()).collect(),
        expires_on: expiry_day(u),
    };
    let can_write = a.principal.can(Permission::UsersWrite) && a.principal.role().may_grant(u.role);
    html! {
        dl.facts {
            dt { (l.t("ログイン名", "Login")) } dd { (u.username) }
            dt { (l.t("ロール", "Role")) } dd { (l.t(u.role.ja(), u.role.en())) }
            dt { (l.t("所属団体", "Tenant")) } dd { (tenant_name(tenants, u, l)) }
            @if u.expires_at.is_some() { dt { (l.t("有効期限", "Valid until")) } dd { (expiry_day(u)) } }
            dt { (l.t("状態", "Status")) } dd { (status(l, u, now)) }
            dt { (l.t("二要素認証", "Two-factor")) } dd { @if u.totp_enabled { (l.t("設定済み", "Enrolled")) } @else { (l.t("未設定", "Not enrolled")) } }
            dt { (l.t("最終ログイン", "Last login")) } dd { (u.last_login_at.map(when).unwrap_or_default()) }
            dt { (l.t("登録日時", "Created")) } dd { (when(u.created_at)) }
        }
        @if can_write {
            h2 { (l.t("編集", "Edit")) }
            (user_form(a, tenants, &format!("/users/{}", u.id), &f, false, error))
            h2 { (l.t("操作", "Actions")) }
            div.actions {
                @for (action, ja, en) in [("reset_password", "パスワードを再設定", "Reset password"), ("unlock", "ロック解除", "Unlock"), ("reset_totp", "二要素認証をリセット", "Reset two-factor")] {
                    form.inline method="post" action=(format!("/users/{}/action", u.id)) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="action" value=(action);
                        button type="submit" { (l.t(ja, en)) }
                    }
                }
                @if a.principal.user_id() != u.id {
                    form.inline method="post" action=(format!("/users/{}/action", u.id)) {
                        input type="hidden" name="csrf" value=(a.csrf());
                        input type="hidden" name="action" value="delete";
                        button.danger type="submit" { (l.t("アカウントを削除", "Delete account")) }
                    }
                }
            }
        }
    }
}

/// Returns the account `id` if it is in the caller's scope and of a role the caller may
/// give (so may manage).
async fn manageable(state: &AppState, a: &Authed, id: &str) -> Result<User, AppError> {
    let user = state.store.get_user(&a.principal.scope(), parse_id(id)?).await?.ok_or(AppError::NotFound)?;
    if a.principal.role().may_grant(user.role) { Ok(user) } else { Err(AppError::Forbidden) }
}

/// POST /users/{id}
pub async fn update(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(pairs): Form<super::Pairs>) -> Response {
    let f = UserForm::from_pairs(&pairs);
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersWrite)?;
            a.check_csrf(&f.csrf)?;
            let scope = a.principal.scope();
            let current = manageable(&state, &a, &id).await?;
            let id = current.id;
            let result = async {
                let role: Role = f.role.parse()?;
                if !a.principal.role().may_grant(role) {
                    return Err(AppError::Forbidden);
                }
                if id == a.principal.user_id() && (role != current.role || f.disabled.is_some()) {
                    return Err(mamori_core::Problem::new(
                        "role",
                        "self_change",
                        "自分自身のロール変更・無効化はできません",
                        "you cannot change your own role or disable yourself",
                    )
                    .into());
                }
                let (tenant, tenants, expires_at) = reach_of(&a, role, parse_tenant(&f.tenant), f.vendor_tenant_ids(), Some(&f.expires_on))?;
                let patch = UserPatch {
                    display_name: Some(f.display_name.clone()),
                    email: Some(f.email.clone()),
                    role: Some(role),
                    tenant_id: Some(tenant),
                    tenants: Some(tenants),
                    expires_at: Some(expires_at),
                    disabled: Some(f.disabled.is_some()),
                    lang: None,
                };
                Ok(state.store.update_user(&scope, &a.principal.actor(), id, patch).await?)
            }
            .await;
            match result {
                Ok(u) => Ok(see_other(&format!("/users/{}", u.id))),
                Err(e @ AppError::Invalid(_)) => {
                    let tenants = state.store.list_tenants(&scope).await?;
                    let mut r = layout(&a, &current.username, "/users", detail(&a, &current, &tenants, Some(&e)));
                    *r.status_mut() = e.status();
                    Ok(r)
                }
                Err(e) => Err(e),
            }
        }
        .await,
    )
}

/// An action form.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    action: String,
}

/// POST /users/{id}/action
pub async fn action(State(state): State<AppState>, PageAuth(a): PageAuth, Path(id): Path<String>, Form(f): Form<ActionForm>) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require(Permission::UsersWrite)?;
            a.check_csrf(&f.csrf)?;
            let scope = a.principal.scope();
            let user = manageable(&state, &a, &id).await?;
            let id = user.id;
            let actor = a.principal.actor();
            match f.action.as_str() {
                "reset_password" => {
                    let once = random_token(12);
                    let hash = state.hash_password(once.clone()).await?;
                    state.store.set_password(&scope, &actor, id, &hash, true, None).await?;
                    Ok(one_time(&a, &user, &once))
                }
                "unlock" => {
                    state.store.unlock_user(&scope, &actor, id).await?;
                    Ok(see_other(&format!("/users/{id}")))
                }
                "reset_totp" => {
                    state.store.set_totp(&scope, &actor, id, None, 0).await?;
                    state.store.delete_user_sessions(id, None).await?;
                    Ok(see_other(&format!("/users/{id}")))
                }
                "delete" if id != a.principal.user_id() => {
                    state.store.delete_user(&scope, &actor, id).await?;
                    Ok(see_other("/users"))
                }
                _ => Err(AppError::Invalid(mamori_core::Problem::new("action", "unknown_action", "不明な操作です", "unknown action").into())),
            }
        }
        .await,
    )
}

//! `/api/v1/users`

use super::{ApiResult, body, created, ok};
use crate::auth::{ApiAuth, Authed, random_token};
use crate::{AppError, AppState};
use axum::body::Bytes;
use axum::extract::State;
use mamori_core::{Permission, Problem, Role, TenantId, UserId};
use mamori_store::{NewUser, User, UserFilter, UserPatch};
use mamori_web::{Path, Query};
use serde::Deserialize;
use serde_json::json;

fn id(s: &str) -> Result<UserId, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}

#[derive(Deserialize)]
pub struct ListQuery {
    tenant: Option<String>,
}

pub async fn list(State(state): State<AppState>, ApiAuth(a): ApiAuth, Query(q): Query<ListQuery>) -> ApiResult {
    a.require(Permission::UsersRead)?;
    let filter = UserFilter { tenant: mamori_web::api::tenant_param("tenant", q.tenant.as_deref())? };
    ok(json!(state.store.list_users(&a.principal.scope(), &filter).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    display_name: String,
    #[serde(default)]
    email: String,
    role: String,
    #[serde(default)]
    tenant_id: Option<TenantId>,
    /// The municipalities of a maintenance vendor.
    #[serde(default)]
    tenants: Vec<TenantId>,
    /// The last day the account works (`YYYY-MM-DD`, JST); required for vendors.
    #[serde(default)]
    expires_on: Option<String>,
    /// An initial password; when absent a one-time password is generated and returned.
    #[serde(default)]
    password: Option<String>,
}

async fn hash(state: &AppState, password: String) -> Result<String, AppError> {
    state.hash_password(password).await
}

pub async fn create(State(state): State<AppState>, ApiAuth(a): ApiAuth, bytes: Bytes) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let b: NewUserBody = body(&bytes)?;
    let role: Role = b.role.parse()?;
    if !a.principal.role().may_grant(role) {
        return Err(AppError::Forbidden);
    }
    let (password, one_time) = match b.password {
        Some(p) => {
            let settings = state.auth_settings().await;
            crate::auth::check_password_policy(&p, &b.username, settings.password_min_length)?;
            (p, false)
        }
        None => (random_token(12), true),
    };
    let (tenant, tenants, expires_at) = crate::pages::users::reach_of(&a, role, b.tenant_id, b.tenants, b.expires_on.as_deref())?;
    // An operator role named with a tenant is refused, not silently cleared.
    let tenant = if role.is_operator() { b.tenant_id } else { tenant };
    let user = state
        .store
        .create_user(
            &a.principal.scope(),
            &a.principal.actor(),
            NewUser {
                username: b.username,
                display_name: b.display_name,
                email: b.email,
                role,
                tenant_id: tenant,
                tenants,
                expires_at,
                password_hash: hash(&state, password.clone()).await?,
                must_change_password: one_time,
            },
        )
        .await?;
    created(json!({ "user": user, "one_time_password": one_time.then_some(password) }))
}

async fn load(state: &AppState, a: &Authed, uid: &str) -> Result<User, AppError> {
    let u = state.store.get_user(&a.principal.scope(), id(uid)?).await?.ok_or(AppError::NotFound)?;
    Ok(u)
}

fn may_manage(a: &Authed, u: &User) -> Result<(), AppError> {
    if a.principal.role().may_grant(u.role) { Ok(()) } else { Err(AppError::Forbidden) }
}

pub async fn get(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>) -> ApiResult {
    a.require(Permission::UsersRead)?;
    ok(json!(load(&state, &a, &uid).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    display_name: Option<String>,
    email: Option<String>,
    role: Option<String>,
    #[serde(default, with = "double_option")]
    tenant_id: Option<Option<TenantId>>,
    disabled: Option<bool>,
    lang: Option<String>,
    tenants: Option<Vec<TenantId>>,
    /// The last day the account works (`YYYY-MM-DD`); null: no end.
    #[serde(default, with = "double_option")]
    expires_on: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub async fn update(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>, bytes: Bytes) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let u = load(&state, &a, &uid).await?;
    may_manage(&a, &u)?;
    let b: PatchBody = body(&bytes)?;
    let role = b.role.as_deref().map(str::parse::<Role>).transpose()?;
    if let Some(r) = role
        && !a.principal.role().may_grant(r)
    {
        return Err(AppError::Forbidden);
    }
    if u.id == a.principal.user_id() && (role.is_some_and(|r| r != u.role) || b.disabled == Some(true)) {
        return Err(
            Problem::new("role", "self_change", "自分自身のロール変更・無効化はできません", "you cannot change your own role or disable yourself").into()
        );
    }
    let expires_at = b.expires_on.map(|d| crate::pages::users::expiry_of(d.as_deref())).transpose()?;
    let patch = UserPatch {
        display_name: b.display_name,
        email: b.email,
        role,
        tenant_id: b.tenant_id,
        tenants: b.tenants,
        expires_at,
        disabled: b.disabled,
        lang: b.lang,
    };
    ok(json!(state.store.update_user(&a.principal.scope(), &a.principal.actor(), u.id, patch).await?))
}

pub async fn delete(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let u = load(&state, &a, &uid).await?;
    may_manage(&a, &u)?;
    if u.id == a.principal.user_id() {
        return Err(Problem::new("id", "self_delete", "自分自身は削除できません", "you cannot delete yourself").into());
    }
    state.store.delete_user(&a.principal.scope(), &a.principal.actor(), u.id).await?;
    ok(json!({"deleted": u.id}))
}

pub async fn reset_password(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let u = load(&state, &a, &uid).await?;
    may_manage(&a, &u)?;
    let once = random_token(12);
    state.store.set_password(&a.principal.scope(), &a.principal.actor(), u.id, &hash(&state, once.clone()).await?, true, None).await?;
    ok(json!({"one_time_password": once}))
}

pub async fn unlock(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let u = load(&state, &a, &uid).await?;
    may_manage(&a, &u)?;
    state.store.unlock_user(&a.principal.scope(), &a.principal.actor(), u.id).await?;
    ok(json!({"unlocked": u.id}))
}

pub async fn reset_totp(State(state): State<AppState>, ApiAuth(a): ApiAuth, Path(uid): Path<String>) -> ApiResult {
    a.require(Permission::UsersWrite)?;
    let u = load(&state, &a, &uid).await?;
    may_manage(&a, &u)?;
    state.store.set_totp(&a.principal.scope(), &a.principal.actor(), u.id, None, 0).await?;
    state.store.delete_user_sessions(u.id, None).await?;
    ok(json!({"totp_reset": u.id}))
}

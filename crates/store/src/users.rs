//! Accounts. Password hashes and TOTP secrets never leave this module except through
//! [`LoginRecord`], which only the authentication code asks for.

use crate::access::{OwnAccount, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Problem, Reach, Role, TenantId, UserId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

const COLUMNS: &str = "id, username, display_name, email, role, tenant_id, must_change_password, totp_secret IS NOT NULL, failed_logins, locked_until, disabled, lang, created_at, updated_at, last_login_at, expires_at, vendor_tenants";

/// An account as shown to people (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Municipality of a tenant role.
    pub tenant_id: Option<TenantId>,
    /// The municipalities a maintenance vendor's account is named for (empty for every
    /// other role).
    pub tenants: Vec<TenantId>,
    /// The account cannot log in or use tokens from this time on (Unix ms); None: never
    /// expires. Required for maintenance vendors.
    pub expires_at: Option<i64>,
    /// The next login must set a new password.
    pub must_change_password: bool,
    /// A TOTP second factor is enrolled.
    pub totp_enabled: bool,
    /// Failed logins since the last success.
    pub failed_logins: i64,
    /// Locked until (Unix ms); 0 when not locked.
    pub locked_until: i64,
    /// Disabled by an administrator.
    pub disabled: bool,
    /// Preferred console language (`ja` or `en`).
    pub lang: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Changed (Unix ms).
    pub updated_at: i64,
    /// Last successful login (Unix ms).
    pub last_login_at: Option<i64>,
}

/// What authentication needs: the account and its secrets.
#[derive(Clone, Debug)]
pub struct LoginRecord {
    /// The account.
    pub user: User,
    /// PHC string of the Argon2id hash.
    pub password_hash: String,
    /// Base32 TOTP secret, when enrolled.
    pub totp_secret: Option<String>,
    /// Last TOTP time step accepted (a code is never accepted twice).
    pub totp_last_step: i64,
}

/// A new account.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Municipality (required for tenant roles, refused for operator roles).
    pub tenant_id: Option<TenantId>,
    /// The municipalities of a maintenance vendor (required for that role only).
    pub tenants: Vec<TenantId>,
    /// Expiry (Unix ms); required for maintenance vendors.
    pub expires_at: Option<i64>,
    /// Argon2id hash of the initial password.
    pub password_hash: String,
    /// Force a password change at first login.
    pub must_change_password: bool,
}

/// Changes to an account's profile; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New e-mail.
    pub email: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New tenant.
    pub tenant_id: Option<Option<TenantId>>,
    /// New municipalities of a maintenance vendor.
    pub tenants: Option<Vec<TenantId>>,
    /// New expiry.
    pub expires_at: Option<Option<i64>>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// Language.
    pub lang: Option<String>,
}

/// Filters of the account list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Only this tenant's accounts (operators).
    pub tenant: Option<TenantId>,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("user: {e}"));
    let id: String = r.try_get(0)?;
    let role: String = r.try_get(4)?;
    let tenant: Option<String> = r.try_get(5)?;
    Ok(User {
        id: id.parse().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
        username: r.try_get(1)?,
        display_name: r.try_get(2)?,
        email: r.try_get(3)?,
        role: role.parse().map_err(|e: Problem| corrupt(e.en))?,
        tenant_id: tenant.map(|t| t.parse()).transpose().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
        must_change_password: r.try_get::<i64, _>(6)? != 0,
        totp_enabled: bool_col(r, 7)?,
        failed_logins: r.try_get(8)?,
        locked_until: r.try_get(9)?,
        disabled: r.try_get::<i64, _>(10)? != 0,
        lang: r.try_get(11)?,
        created_at: r.try_get(12)?,
        updated_at: r.try_get(13)?,
        last_login_at: r.try_get(14)?,
        expires_at: r.try_get(15)?,
        tenants: r
            .try_get::<String, _>(16)?
            .split_whitespace()
            .map(|t| t.parse().map_err(|e: uuid::Error| corrupt(e.to_string())))
            .collect::<Result<_, _>>()?,
    })
}

fn tenants_column(ts: &[TenantId]) -> String {
    ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ")
}

impl User {
    /// Returns true when the account may log in or use its tokens at `now` (Unix ms):
    /// not disabled and not expired.
    pub fn usable_at(&self, now: i64) -> bool {
        !self.disabled && self.expires_at.is_none_or(|e| now < e)
    }

    /// Returns true when the account has expired by `now`.
    pub fn expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// Reads a boolean expression column: SQLite returns an integer, PostgreSQL a bool.
fn bool_col(r: &sqlx::any::AnyRow, i: usize) -> Result<bool, StoreError> {
    match r.try_get::<bool, _>(i) {
        Ok(b) => Ok(b),
        Err(_) => Ok(r.try_get::<i64, _>(i)? != 0),
    }
}

/// Checks a login name: 3–64 characters of `a-z 0-9 . _ - @`.
pub fn check_username(name: &str) -> Result<String, Problem> {
    let n = name.trim().to_ascii_lowercase();
    if (3..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b)) {
        Ok(n)
    } else {
        Err(Problem::new(
            "username",
            "invalid_username",
            "ログイン名は3〜64文字の半角英小文字・数字・記号（. _ - @）で入力してください",
            "login name must be 3-64 characters of a-z, 0-9, '.', '_', '-', '@'",
        ))
    }
}

/// Checks that an account's tenants and expiry fit its role.
fn check_role_reach(role: Role, tenant: Option<TenantId>, tenants: &[TenantId], expires_at: Option<i64>) -> Result<(), Problem> {
    match (role.reach(), tenant, tenants.is_empty()) {
        (Reach::AllTenants, Some(_), _) | (Reach::NamedTenants, Some(_), _) => {
            Err(Problem::new("tenant_id", "operator_has_tenant", "このロールには所属団体を指定できません", "this role belongs to no tenant"))
        }
        (Reach::OwnTenant, None, _) => Err(Problem::new("tenant_id", "tenant_required", "団体のロールには所属団体が必要です", "tenant roles need a tenant")),
        (Reach::AllTenants | Reach::OwnTenant, _, false) => Err(Problem::new(
            "tenants",
            "tenants_not_allowed",
            "担当団体を指定できるのは保守業者のアカウントだけです",
            "only maintenance vendors are named for tenants",
        )),
        (Reach::NamedTenants, None, true) => Err(Problem::new(
            "tenants",
            "tenants_required",
            "保守業者のアカウントには担当団体を1つ以上指定してください",
            "a maintenance vendor needs at least one tenant",
        )),
        (Reach::NamedTenants, None, false) if expires_at.is_none() => Err(Problem::new(
            "expires_at",
            "expiry_required",
            "保守業者のアカウントには有効期限が必要です",
            "a maintenance vendor's account needs an expiry date",
        )),
        _ => Ok(()),
    }
}

/// Refuses tenant ids that name no tenant.
async fn check_tenants_exist(tx: &mut crate::Tx<'_>, tenant: Option<TenantId>, tenants: &[TenantId]) -> Result<(), StoreError> {
    for t in tenant.iter().chain(tenants) {
        let exists = sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(t.to_string()).fetch_optional(&mut **tx).await?;
        if exists.is_none() {
            return Err(Problem::new("tenant_id", "unknown_tenant", "指定された団体は存在しません", "the tenant does not exist").into());
        }
    }
    Ok(())
}

impl Store {
    /// Returns the accounts in `scope`.
    pub async fn list_users(&self, scope: &Scope, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        let tenant = match scope.tenants() {
            None => filter.tenant,
            Some(_) => match scope.tenant() {
                Some(t) => Some(t),
                // A scope of several tenants (a vendor's) manages no accounts.
                None => return Ok(Vec::new()),
            },
        };
        let rows = match tenant {
            Some(t) => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY username")).bind(t.to_string()).fetch_all(&self.db.pool).await?
            }
            None => sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY username")).fetch_all(&self.db.pool).await?,
        };
        self.note_scope(scope, "users").await?;
        rows.iter().map(from_row).collect()
    }

    /// Returns one account if it is in `scope`. Operator accounts are outside every
    /// tenant scope.
    pub async fn get_user(&self, scope: &Scope, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        let user = row.as_ref().map(from_row).transpose()?;
        Ok(user.filter(|u| in_scope(scope, u)))
    }

    /// Returns an account with its secrets, for authentication only.
    pub async fn login_record(&self, username: &str) -> Result<Option<LoginRecord>, StoreError> {
        self.login_record_where("username", &username.trim().to_ascii_lowercase()).await
    }

    /// Returns an account with its secrets by id, for authentication only.
    pub async fn login_record_by_id(&self, id: UserId) -> Result<Option<LoginRecord>, StoreError> {
        self.login_record_where("id", &id.to_string()).await
    }

    async fn login_record_where(&self, column: &'static str, value: &str) -> Result<Option<LoginRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS}, password_hash, totp_secret, totp_last_step FROM users WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.db.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                Ok(Some(LoginRecord { user: from_row(&r)?, password_hash: r.try_get(17)?, totp_secret: r.try_get(18)?, totp_last_step: r.try_get(19)? }))
            }
        }
    }

    /// Returns how many accounts exist.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&self.db.pool).await?.try_get(0)?)
    }

    /// Creates an account. A tenant scope may only create accounts of its own tenant.
    pub async fn create_user(&self, scope: &Scope, actor: &Actor, u: NewUser) -> Result<User, StoreError> {
        let username = check_username(&u.username)?;
        let mut tenants = u.tenants.clone();
        tenants.sort();
        tenants.dedup();
        check_role_reach(u.role, u.tenant_id, &tenants, u.expires_at)?;
        // A new account ends in the future; moving an existing one's end into the past
        // (a contract ended) is an update.
        if u.expires_at.is_some_and(|e| e <= mamori_core::time::now_ms()) {
            return Err(Problem::new("expires_on", "expiry_past", "有効期限には今日以降の日付を指定してください", "the expiry must not be in the past").into());
        }
        if !manages(scope, u.role, u.tenant_id) {
            return Err(StoreError::Forbidden("account outside your tenant"));
        }
        let display_name = u.display_name.trim().to_string();
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(
                Problem::new("display_name", "invalid_display_name", "表示名は1〜100文字で入力してください", "display name must be 1-100 characters").into()
            );
        }
        let (_guard, mut tx) = self.begin_write().await?;
        check_tenants_exist(&mut tx, u.tenant_id, &tenants).await?;
        let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1").bind(&username).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(Problem::new(
                "username",
                "duplicate_username",
                format!("ログイン名「{username}」は使用済みです"),
                format!("login name '{username}' is taken"),
            )
            .into());
        }
        let now = mamori_core::time::now_ms();
        let id = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, username, display_name, email, role, tenant_id, password_hash, must_change_password, created_at, updated_at, expires_at, vendor_tenants) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(id.to_string())
        .bind(&username)
        .bind(&display_name)
        .bind(u.email.trim())
        .bind(u.role.as_str())
        .bind(u.tenant_id.map(|t| t.to_string()))
        .bind(&u.password_hash)
        .bind(i64::from(u.must_change_password))
        .bind(now)
        .bind(now)
        .bind(u.expires_at)
        .bind(tenants_column(&tenants))
        .execute(&mut *tx)
        .await?;
        let user = load(&mut tx, id).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: user.tenant_id,
                action: "user.create",
                target_kind: "user",
                target_id: Some(id.to_string()),
                before: None,
                after: Some(json!(user)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes an account's profile, role or status.
    pub async fn update_user(&self, scope: &Scope, actor: &Actor, id: UserId, patch: UserPatch) -> Result<User, StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load_opt(&mut tx, id).await?.filter(|u| in_scope(scope, u)).ok_or(StoreError::NotFound)?;
        let role = patch.role.unwrap_or(before.role);
        let tenant = patch.tenant_id.unwrap_or(before.tenant_id);
        let mut tenants = patch.tenants.unwrap_or_else(|| before.tenants.clone());
        tenants.sort();
        tenants.dedup();
        let expires_at = patch.expires_at.unwrap_or(before.expires_at);
        check_role_reach(role, tenant, &tenants, expires_at)?;
        if !manages(scope, role, tenant) {
            return Err(StoreError::Forbidden("account outside your tenant"));
        }
        check_tenants_exist(&mut tx, None, &tenants).await?;
        let display_name = patch.display_name.map(|d| d.trim().to_string()).unwrap_or_else(|| before.display_name.clone());
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(
                Problem::new("display_name", "invalid_display_name", "表示名は1〜100文字で入力してください", "display name must be 1-100 characters").into()
            );
        }
        let lang = patch.lang.unwrap_or_else(|| before.lang.clone());
        if lang != "ja" && lang != "en" {
            return Err(Problem::new("lang", "invalid_lang", "言語は ja か en です", "language must be ja or en").into());
        }
        sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, role = $3, tenant_id = $4, disabled = $5, lang = $6, updated_at = $7, expires_at = $8, vendor_tenants = $9 WHERE id = $10",
        )
            .bind(&display_name)
            .bind(patch.email.map(|e| e.trim().to_string()).unwrap_or_else(|| before.email.clone()))
            .bind(role.as_str())
            .bind(tenant.map(|t| t.to_string()))
            .bind(i64::from(patch.disabled.unwrap_or(before.disabled)))
            .bind(&lang)
            .bind(mamori_core::time::now_ms())
            .bind(expires_at)
            .bind(tenants_column(&tenants))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let after = load(&mut tx, id).await?;
        if after.disabled || after.expired_at(mamori_core::time::now_ms()) || after.tenants != before.tenants {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: after.tenant_id,
                action: "user.update",
                target_kind: "user",
                target_id: Some(id.to_string()),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Sets a new password hash of an account in `scope` (an administrator's reset when
    /// `must_change`); ends the account's other sessions.
    pub async fn set_password(
        &self,
        scope: &Scope,
        actor: &Actor,
        id: UserId,
        hash: &str,
        must_change: bool,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write_password(Reaching::Scope(scope), actor, id, hash, must_change, keep_session).await
    }

    /// Sets a new password hash of one's own account; ends its other sessions.
    pub async fn set_own_password(&self, own: &OwnAccount, hash: &str, keep_session: Option<&str>) -> Result<(), StoreError> {
        self.write_password(Reaching::Own(own), own.actor(), own.user_id(), hash, false, keep_session).await
    }

    async fn write_password(
        &self,
        reach: Reaching<'_>,
        actor: &Actor,
        id: UserId,
        hash: &str,
        must_change: bool,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let user = load_opt(&mut tx, id).await?.filter(|u| reach.reaches(u)).ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, locked_until = 0, updated_at = $3 WHERE id = $4")
            .bind(hash)
            .bind(i64::from(must_change))
            .bind(mamori_core::time::now_ms())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(id.to_string())
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        // A reset by someone else answers a lost or taken-over account: the account's
        // API tokens go too.
        if must_change {
            revoke_all_tokens(&mut tx, id).await?;
        }
        let action = if must_change { "user.password_reset" } else { "user.password_change" };
        audit::append(
            &mut tx,
            Change { actor, tenant: user.tenant_id, action, target_kind: "user", target_id: Some(id.to_string()), before: None, after: None },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the TOTP secret of an account in `scope` (an administrator's reset), or
    /// enrolls one.
    pub async fn set_totp(&self, scope: &Scope, actor: &Actor, id: UserId, secret: Option<&str>, step: i64) -> Result<(), StoreError> {
        self.write_totp(Reaching::Scope(scope), actor, id, secret, step).await
    }

    /// Enrolls a TOTP secret for one's own account.
    pub async fn set_own_totp(&self, own: &OwnAccount, secret: &str, step: i64) -> Result<(), StoreError> {
        self.write_totp(Reaching::Own(own), own.actor(), own.user_id(), Some(secret), step).await
    }

    /// Sets the console language of one's own account (`ja` or `en`).
    pub async fn set_own_lang(&self, own: &OwnAccount, lang: &str) -> Result<User, StoreError> {
        if lang != "ja" && lang != "en" {
            return Err(Problem::new("lang", "invalid_lang", "言語は ja か en です", "language must be ja or en").into());
        }
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load_opt(&mut tx, own.user_id()).await?.ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET lang = $1, updated_at = $2 WHERE id = $3")
            .bind(lang)
            .bind(mamori_core::time::now_ms())
            .bind(own.user_id().to_string())
            .execute(&mut *tx)
            .await?;
        let after = load(&mut tx, own.user_id()).await?;
        audit::append(
            &mut tx,
            Change {
                actor: own.actor(),
                tenant: after.tenant_id,
                action: "user.update",
                target_kind: "user",
                target_id: Some(own.user_id().to_string()),
                before: Some(json!({"lang": before.lang})),
                after: Some(json!({"lang": after.lang})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn write_totp(&self, reach: Reaching<'_>, actor: &Actor, id: UserId, secret: Option<&str>, step: i64) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let user = load_opt(&mut tx, id).await?.filter(|u| reach.reaches(u)).ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2, updated_at = $3 WHERE id = $4")
            .bind(secret)
            .bind(step)
            .bind(mamori_core::time::now_ms())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if secret.is_none() {
            revoke_all_tokens(&mut tx, id).await?;
        }
        let action = if secret.is_some() { "user.totp_enroll" } else { "user.totp_reset" };
        audit::append(
            &mut tx,
            Change { actor, tenant: user.tenant_id, action, target_kind: "user", target_id: Some(id.to_string()), before: None, after: None },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a TOTP step as used, if it is newer than the last one. Returns false when
    /// the step was already used (a replayed code).
    pub async fn use_totp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a failed login; locks the account for `lock_ms` after `threshold` failures
    /// in a row. Returns true when the account is now locked.
    pub async fn login_failed(&self, id: UserId, threshold: i64, lock_ms: i64) -> Result<bool, StoreError> {
        let now = mamori_core::time::now_ms();
        sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1").bind(id.to_string()).execute(&self.db.pool).await?;
        let locked = sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2 AND failed_logins >= $3")
            .bind(now + lock_ms)
            .bind(id.to_string())
            .bind(threshold)
            .execute(&self.db.pool)
            .await?;
        if locked.rows_affected() == 1 {
            let (_guard, mut tx) = self.begin_write().await?;
            let user = load(&mut tx, id).await?;
            audit::append(
                &mut tx,
                Change {
                    actor: &Actor::system(),
                    tenant: user.tenant_id,
                    action: "user.lock",
                    target_kind: "user",
                    target_id: Some(id.to_string()),
                    before: None,
                    after: Some(json!({"locked_until": now + lock_ms})),
                },
            )
            .await?;
            tx.commit().await?;
        }
        Ok(locked.rows_affected() == 1)
    }

    /// Clears the failure count after a correct password or code.
    pub async fn reset_login_failures(&self, id: UserId) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1").bind(id.to_string()).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Records a successful login.
    pub async fn login_succeeded(&self, id: UserId) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0, last_login_at = $1 WHERE id = $2")
            .bind(mamori_core::time::now_ms())
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Lifts a lockout.
    pub async fn unlock_user(&self, scope: &Scope, actor: &Actor, id: UserId) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let user = load_opt(&mut tx, id).await?.filter(|u| in_scope(scope, u)).ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change { actor, tenant: user.tenant_id, action: "user.unlock", target_kind: "user", target_id: Some(id.to_string()), before: None, after: None },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an account with its sessions and tokens.
    pub async fn delete_user(&self, scope: &Scope, actor: &Actor, id: UserId) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load_opt(&mut tx, id).await?.filter(|u| in_scope(scope, u)).ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: before.tenant_id,
                action: "user.delete",
                target_kind: "user",
                target_id: Some(id.to_string()),
                before: Some(json!(before)),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn revoke_all_tokens(tx: &mut crate::Tx<'_>, id: UserId) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(mamori_core::time::now_ms())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Whose account a write may reach.
enum Reaching<'a> {
    /// Accounts in a scope (an administrator's change).
    Scope(&'a Scope),
    /// One's own account.
    Own(&'a OwnAccount),
}

impl Reaching<'_> {
    fn reaches(&self, u: &User) -> bool {
        match self {
            Reaching::Scope(s) => in_scope(s, u),
            Reaching::Own(own) => own.user_id() == u.id,
        }
    }
}

/// Returns true when `scope` reaches the account: every account for a cross-tenant
/// scope, the accounts of one's own municipality for a tenant scope.
fn in_scope(scope: &Scope, u: &User) -> bool {
    scope.is_all() || manages(scope, u.role, u.tenant_id)
}

/// Returns true when `scope` may manage an account of this role and tenant: every
/// account for a cross-tenant scope; tenant roles of its one tenant for a tenant scope.
fn manages(scope: &Scope, role: Role, tenant: Option<TenantId>) -> bool {
    if scope.is_all() {
        return true;
    }
    match (scope.tenant(), tenant) {
        (Some(own), Some(t)) => own == t && role.is_tenant(),
        _ => false,
    }
}

async fn load_opt(tx: &mut crate::Tx<'_>, id: UserId) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1")).bind(id.to_string()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(from_row).transpose()
}

async fn load(tx: &mut crate::Tx<'_>, id: UserId) -> Result<User, StoreError> {
    load_opt(tx, id).await?.ok_or(StoreError::NotFound)
}

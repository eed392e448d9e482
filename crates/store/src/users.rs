//! Accounts. Password hashes and TOTP secrets never leave this module except through
//! [`LoginRecord`], which only the authentication code asks for.

use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Problem, Role, Scope, TenantId, UserId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

const COLUMNS: &str = "id, username, display_name, email, role, tenant_id, must_change_password, totp_secret IS NOT NULL, failed_logins, locked_until, disabled, lang, created_at, updated_at, last_login_at";

/// An account as shown to people (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    })
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

fn check_role_tenant(role: Role, tenant: Option<TenantId>) -> Result<(), Problem> {
    match (role.is_operator(), tenant) {
        (true, Some(_)) => {
            Err(Problem::new("tenant_id", "operator_has_tenant", "運用側のロールには団体を指定できません", "operator roles belong to no tenant"))
        }
        (false, None) => Err(Problem::new("tenant_id", "tenant_required", "団体のロールには所属団体が必要です", "tenant roles need a tenant")),
        _ => Ok(()),
    }
}

impl Store {
    /// Returns the accounts in `scope`.
    pub async fn list_users(&self, scope: &Scope, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        let tenant = match scope {
            Scope::Tenant(t) => Some(*t),
            Scope::All(_) => filter.tenant,
            Scope::Nothing => return Ok(Vec::new()),
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
                Ok(Some(LoginRecord { user: from_row(&r)?, password_hash: r.try_get(15)?, totp_secret: r.try_get(16)?, totp_last_step: r.try_get(17)? }))
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
        check_role_tenant(u.role, u.tenant_id)?;
        match (scope, u.tenant_id) {
            (Scope::All(_), _) => {}
            (Scope::Tenant(own), Some(t)) if *own == t && !u.role.is_operator() => {}
            _ => return Err(StoreError::Forbidden("account outside your tenant")),
        }
        let display_name = u.display_name.trim().to_string();
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(
                Problem::new("display_name", "invalid_display_name", "表示名は1〜100文字で入力してください", "display name must be 1-100 characters").into()
            );
        }
        let (_guard, mut tx) = self.begin_write().await?;
        if let Some(t) = u.tenant_id {
            let exists = sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(t.to_string()).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(Problem::new("tenant_id", "unknown_tenant", "指定された団体は存在しません", "the tenant does not exist").into());
            }
        }
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
            "INSERT INTO users (id, username, display_name, email, role, tenant_id, password_hash, must_change_password, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        check_role_tenant(role, tenant)?;
        if let Scope::Tenant(own) = scope
            && (role.is_operator() || tenant != Some(*own))
        {
            return Err(StoreError::Forbidden("account outside your tenant"));
        }
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
        sqlx::query("UPDATE users SET display_name = $1, email = $2, role = $3, tenant_id = $4, disabled = $5, lang = $6, updated_at = $7 WHERE id = $8")
            .bind(&display_name)
            .bind(patch.email.map(|e| e.trim().to_string()).unwrap_or_else(|| before.email.clone()))
            .bind(role.as_str())
            .bind(tenant.map(|t| t.to_string()))
            .bind(i64::from(patch.disabled.unwrap_or(before.disabled)))
            .bind(&lang)
            .bind(mamori_core::time::now_ms())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let after = load(&mut tx, id).await?;
        if after.disabled {
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

    /// Sets a new password hash; ends the account's other sessions.
    pub async fn set_password(
        &self,
        scope: &Scope,
        actor: &Actor,
        id: UserId,
        hash: &str,
        must_change: bool,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let user = load_opt(&mut tx, id).await?.filter(|u| in_scope(scope, u)).ok_or(StoreError::NotFound)?;
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

    /// Enrolls (Some) or removes (None) the TOTP secret of an account.
    pub async fn set_totp(&self, scope: &Scope, actor: &Actor, id: UserId, secret: Option<&str>, step: i64) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let user = load_opt(&mut tx, id).await?.filter(|u| in_scope(scope, u)).ok_or(StoreError::NotFound)?;
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

fn in_scope(scope: &Scope, u: &User) -> bool {
    match (scope, u.tenant_id) {
        (Scope::All(_), _) => true,
        (Scope::Tenant(own), Some(t)) => *own == t,
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

//! Login and session settings that operators change in the console (the setting
//! `auth`): read by the login pages and by every request's authentication.

use mamori_core::{Problem, Problems, Role};
use mamori_store::Store;
use serde::{Deserialize, Serialize};

/// Security settings that operators change in the console (stored as settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Failed logins in a row before the account is locked.
    pub lockout_threshold: i64,
    /// How long a lockout lasts, in minutes.
    pub lockout_minutes: i64,
    /// A session ends after this many idle minutes.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after login, active or not.
    pub session_max_hours: i64,
    /// Shortest password accepted.
    pub password_min_length: usize,
    /// Tenant admins must use TOTP (operator roles always must).
    pub totp_tenant_admins: bool,
    /// Tenant users must use TOTP.
    pub totp_tenant_users: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            lockout_threshold: 5,
            lockout_minutes: 15,
            session_idle_minutes: 30,
            session_max_hours: 12,
            password_min_length: 12,
            totp_tenant_admins: true,
            totp_tenant_users: false,
        }
    }
}

impl AuthSettings {
    /// Returns the settings in force (the defaults when none are stored or the stored
    /// ones cannot be read).
    pub async fn load(store: &Store) -> AuthSettings {
        match store.setting("auth").await {
            Ok(Some(v)) => serde_json::from_value(v).unwrap_or_default(),
            _ => AuthSettings::default(),
        }
    }

    /// Returns whether accounts of `role` must use a TOTP second factor: operator roles
    /// always, tenant roles as these settings say.
    pub fn requires_totp(&self, role: Role) -> bool {
        match role {
            Role::TenantAdmin => self.totp_tenant_admins,
            Role::TenantUser => self.totp_tenant_users,
            _ => true,
        }
    }

    /// Checks ranges; returns every problem.
    pub fn check(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        if !(3..=20).contains(&self.lockout_threshold) {
            p.push(Problem::new("lockout_threshold", "range", "ロックまでの失敗回数は3〜20回です", "lockout threshold must be 3-20"));
        }
        if !(1..=1440).contains(&self.lockout_minutes) {
            p.push(Problem::new("lockout_minutes", "range", "ロック時間は1〜1440分です", "lockout must be 1-1440 minutes"));
        }
        if !(5..=480).contains(&self.session_idle_minutes) {
            p.push(Problem::new("session_idle_minutes", "range", "無操作タイムアウトは5〜480分です", "idle timeout must be 5-480 minutes"));
        }
        if !(1..=24).contains(&self.session_max_hours) {
            p.push(Problem::new("session_max_hours", "range", "セッションの最長時間は1〜24時間です", "session maximum must be 1-24 hours"));
        }
        if !(10..=128).contains(&self.password_min_length) {
            p.push(Problem::new("password_min_length", "range", "パスワードの最小文字数は10〜128です", "minimum password length must be 10-128"));
        }
        p.into_result(())
    }
}

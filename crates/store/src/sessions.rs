//! Console sessions. The cookie carries a random token; only its SHA-256 is stored, so
//! a copy of the database does not let anyone log in.

use crate::{Store, StoreError};
use mamori_core::UserId;
use sqlx::Row;

/// How far a session has come through login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStage {
    /// Password checked; waiting for the TOTP code.
    Totp,
    /// Password checked; an operator must enroll TOTP before going on.
    Enroll,
    /// Logged in, but the password must be changed before going on.
    ChangePassword,
    /// Fully logged in.
    Full,
}

impl SessionStage {
    fn as_str(&self) -> &'static str {
        match self {
            SessionStage::Totp => "totp",
            SessionStage::Enroll => "enroll",
            SessionStage::ChangePassword => "password",
            SessionStage::Full => "full",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [SessionStage::Totp, SessionStage::Enroll, SessionStage::ChangePassword, SessionStage::Full].into_iter().find(|x| x.as_str() == s)
    }
}

/// A stored session. Only the store makes one (from a [`NewSession`] after a correct
/// password), so a session is the proof of a password checked.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Session {
    /// SHA-256 (hex) of the cookie token.
    pub id_hash: String,
    /// Account.
    pub user_id: UserId,
    /// Login stage.
    pub stage: SessionStage,
    /// CSRF token of this session.
    pub csrf: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Expires (Unix ms).
    pub expires_at: i64,
    /// Last request (Unix ms).
    pub last_seen_at: i64,
    /// Address at login.
    pub ip: String,
    /// A TOTP secret offered for enrollment and not yet confirmed.
    pub pending_totp: Option<String>,
}

/// A session to store after a correct password.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// SHA-256 (hex) of the cookie token.
    pub id_hash: String,
    /// Account.
    pub user_id: UserId,
    /// Login stage.
    pub stage: SessionStage,
    /// CSRF token of this session.
    pub csrf: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Expires (Unix ms).
    pub expires_at: i64,
    /// Address at login.
    pub ip: String,
}

impl Store {
    /// Stores a new session and returns it.
    pub async fn create_session(&self, s: NewSession, user_agent: &str) -> Result<Session, StoreError> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, stage, csrf, created_at, expires_at, last_seen_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&s.id_hash)
            .bind(s.user_id.to_string())
            .bind(s.stage.as_str())
            .bind(&s.csrf)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(s.created_at)
            .bind(&s.ip)
            .bind(user_agent.chars().take(300).collect::<String>())
            .execute(&self.db.pool)
            .await?;
        Ok(Session {
            id_hash: s.id_hash,
            user_id: s.user_id,
            stage: s.stage,
            csrf: s.csrf,
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_seen_at: s.created_at,
            ip: s.ip,
            pending_totp: None,
        })
    }

    /// Returns the session with this token hash, if it has not expired.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, stage, csrf, created_at, expires_at, last_seen_at, ip, pending_totp FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user: String = r.try_get(1)?;
        let stage: String = r.try_get(2)?;
        Ok(Some(Session {
            id_hash: r.try_get(0)?,
            user_id: user.parse().map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?,
            stage: SessionStage::parse(&stage).ok_or_else(|| StoreError::Corrupt(format!("session stage '{stage}'")))?,
            csrf: r.try_get(3)?,
            created_at: r.try_get(4)?,
            expires_at: r.try_get(5)?,
            last_seen_at: r.try_get(6)?,
            ip: r.try_get(7)?,
            pending_totp: r.try_get(8)?,
        }))
    }

    /// Moves a session to another stage and extends it.
    pub async fn set_session_stage(&self, id_hash: &str, stage: SessionStage, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET stage = $1, expires_at = $2 WHERE id_hash = $3")
            .bind(stage.as_str())
            .bind(expires_at)
            .bind(id_hash)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Keeps (or clears) a TOTP secret offered for enrollment in this session.
    pub async fn set_session_pending_totp(&self, id_hash: &str, secret: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET pending_totp = $1 WHERE id_hash = $2").bind(secret).bind(id_hash).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Ends every session of an account except `keep`.
    pub async fn delete_user_sessions(&self, user: UserId, keep: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2").bind(user.to_string()).bind(keep.unwrap_or("")).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Notes activity on a session (sliding expiry).
    pub async fn touch_session(&self, id_hash: &str, now: i64, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
            .bind(now)
            .bind(expires_at)
            .bind(id_hash)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&self.db.pool).await?.rows_affected())
    }
}

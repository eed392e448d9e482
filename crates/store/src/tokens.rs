//! API tokens. A token is shown once at creation; only its SHA-256 is stored. It acts
//! with its owner's role narrowed to its scopes, until it expires or is revoked.

use crate::access::{CrossTenant, OwnAccount, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Problem, TokenId, TokenScope, UserId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// A stored token (without its secret).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ApiToken {
    /// Id.
    pub id: TokenId,
    /// Owner.
    pub user_id: UserId,
    /// Name given by the owner.
    pub name: String,
    /// First characters of the token, to recognize it.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<TokenScope>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Expires (Unix ms).
    pub expires_at: i64,
    /// Last use (Unix ms).
    pub last_used_at: Option<i64>,
    /// Revoked (Unix ms).
    pub revoked_at: Option<i64>,
}

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub name: String,
    /// SHA-256 (hex) of the secret.
    pub token_hash: String,
    /// Shown prefix.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<TokenScope>,
    /// Expiry (Unix ms).
    pub expires_at: i64,
}

/// Live (unrevoked, unexpired) tokens one account may hold.
pub const MAX_LIVE_TOKENS: i64 = 20;

const COLUMNS: &str = "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("token: {e}"));
    let id: String = r.try_get(0)?;
    let user: String = r.try_get(1)?;
    Ok(ApiToken {
        id: id.parse().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
        user_id: user.parse().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
        name: r.try_get(2)?,
        prefix: r.try_get(3)?,
        scopes: serde_json::from_str(&r.try_get::<String, _>(4)?)?,
        created_at: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
    })
}

impl Store {
    /// Creates a token of one's own account.
    pub async fn create_token(&self, owner: &OwnAccount, t: NewToken, tenant: Option<mamori_core::TenantId>) -> Result<ApiToken, StoreError> {
        if t.user_id != owner.user_id() {
            return Err(StoreError::Forbidden("a token is made by its owner"));
        }
        self.insert_token(owner.actor(), t, tenant).await
    }

    /// Creates a token for any account (the command line, for automation).
    pub async fn create_token_for(&self, grant: &CrossTenant, t: NewToken, tenant: Option<mamori_core::TenantId>) -> Result<ApiToken, StoreError> {
        self.insert_token(grant.actor(), t, tenant).await
    }

    async fn insert_token(&self, actor: &Actor, t: NewToken, tenant: Option<mamori_core::TenantId>) -> Result<ApiToken, StoreError> {
        let name = t.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Problem::new("name", "invalid_name", "トークン名は1〜100文字で入力してください", "token name must be 1-100 characters").into());
        }
        if t.scopes.is_empty() {
            return Err(Problem::new("scopes", "required", "スコープを1つ以上選んでください", "choose at least one scope").into());
        }
        let now = mamori_core::time::now_ms();
        if t.expires_at <= now || t.expires_at > now + 400 * 86_400_000 {
            return Err(Problem::new("expires_at", "invalid_expiry", "有効期限は1〜400日後の日付で指定してください", "expiry must be 1-400 days ahead").into());
        }
        let token = ApiToken {
            id: TokenId::new(),
            user_id: t.user_id,
            name,
            prefix: t.prefix,
            scopes: t.scopes,
            created_at: now,
            expires_at: t.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let (_guard, mut tx) = self.begin_write().await?;
        let live: i64 = sqlx::query("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2")
            .bind(t.user_id.to_string())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if live >= MAX_LIVE_TOKENS {
            return Err(Problem::new(
                "name",
                "too_many_tokens",
                format!("有効なトークンは1人{MAX_LIVE_TOKENS}個までです。不要なトークンを失効させてください"),
                format!("at most {MAX_LIVE_TOKENS} live tokens per account; revoke unused ones"),
            )
            .into());
        }
        sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(token.id.to_string())
            .bind(token.user_id.to_string())
            .bind(&token.name)
            .bind(&t.token_hash)
            .bind(&token.prefix)
            .bind(serde_json::to_string(&token.scopes)?)
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant,
                action: "token.create",
                target_kind: "api_token",
                target_id: Some(token.id.to_string()),
                before: None,
                after: Some(json!(token)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Returns one's own tokens.
    pub async fn list_tokens(&self, owner: &OwnAccount) -> Result<Vec<ApiToken>, StoreError> {
        self.tokens_of(owner.user_id()).await
    }

    /// Returns the tokens of an account in `scope` (administrators; none outside it).
    pub async fn account_tokens(&self, scope: &Scope, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        match self.get_user(scope, user).await? {
            Some(_) => self.tokens_of(user).await,
            None => Ok(Vec::new()),
        }
    }

    async fn tokens_of(&self, owner: UserId) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC"))
            .bind(owner.to_string())
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Returns the live token with this hash.
    pub async fn token_by_hash(&self, hash: &str, now: i64) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"))
            .bind(hash)
            .bind(now)
            .fetch_optional(&self.db.pool)
            .await?;
        let token = row.as_ref().map(from_row).transpose()?;
        if let Some(t) = &token {
            // At most one write a minute per token.
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
                .bind(now)
                .bind(t.id.to_string())
                .bind(now - 60_000)
                .execute(&self.db.pool)
                .await?;
        }
        Ok(token)
    }

    /// Revokes a token of `owner`.
    pub async fn revoke_token(&self, scope: &Scope, actor: &Actor, owner: UserId, id: TokenId) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(mamori_core::time::now_ms())
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: scope.tenant(),
                action: "token.revoke",
                target_kind: "api_token",
                target_id: Some(id.to_string()),
                before: None,
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

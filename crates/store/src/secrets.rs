//! Sealed secrets: the store keeps only what `mamori-vault` sealed, never a value.
//!
//! Metadata (name, kind, who changed it when, which master key) is readable within the
//! caller's scope; the sealed value only with a cross-tenant grant (components and the
//! CLI), and every such read is audited. Audit entries name the secret, never its value.
//!
//! Requirements: see `mamori-vault` (F05, F09, F14, F50).

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use base64::Engine;
use mamori_core::{Actor, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// A secret as listed: everything but the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SecretInfo {
    /// The tenant it belongs to; none for the platform's own.
    pub tenant: Option<TenantId>,
    /// Its name, e.g. `dkim/city.example.lg.jp` or `ldap/ad01`.
    pub name: String,
    /// What it is: `password`, `private_key`, `certificate`, `token` or `other`.
    pub kind: String,
    /// The master key it is sealed with.
    pub key_id: String,
    /// When it was first stored (Unix ms).
    pub created_at: i64,
    /// When it was last replaced (Unix ms).
    pub updated_at: i64,
    /// Who last replaced it.
    pub updated_by: String,
}

/// A sealed value and what it belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The tenant; none for the platform.
    pub tenant: Option<TenantId>,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Master key id.
    pub key_id: String,
    /// Nonce, ciphertext and tag.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("tenant", &self.tenant).field("name", &self.name).field("kind", &self.kind).field("key_id", &self.key_id).finish()
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn tenant_key(t: Option<TenantId>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

fn info_from_row(r: &sqlx::any::AnyRow) -> Result<SecretInfo, StoreError> {
    let tenant: Option<String> = r.try_get(0)?;
    Ok(SecretInfo {
        tenant: tenant.map(|t| t.parse()).transpose().map_err(|e: uuid::Error| StoreError::Corrupt(format!("secret tenant: {e}")))?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        key_id: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        updated_by: r.try_get(6)?,
    })
}

fn may_write(scope: &Scope, tenant: Option<TenantId>) -> Result<(), StoreError> {
    match tenant {
        None if scope.is_all() => Ok(()),
        None => Err(StoreError::Forbidden("only operators keep the platform's secrets")),
        Some(t) if scope.includes(t) => Ok(()),
        Some(_) => Err(StoreError::NotFound),
    }
}

/// Inserts a secret row; `suffix` may add an ON CONFLICT clause. Returns rows inserted.
async fn insert(tx: &mut crate::Tx<'_>, s: &SealedSecret, by: &str, now: i64, suffix: &str) -> Result<u64, StoreError> {
    let sql = format!(
        "INSERT INTO secrets (id, tenant_id, name, kind, key_id, sealed, created_at, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8){suffix}"
    );
    Ok(sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(s.tenant.map(|t| t.to_string()))
        .bind(&s.name)
        .bind(&s.kind)
        .bind(&s.key_id)
        .bind(B64.encode(&s.sealed))
        .bind(now)
        .bind(by)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

const INFO: &str = "tenant_id, name, kind, key_id, created_at, updated_at, updated_by";

impl Store {
    /// Lists the secrets in `scope` (a tenant sees its own; operators all), without values.
    pub async fn list_secrets(&self, scope: &Scope) -> Result<Vec<SecretInfo>, StoreError> {
        let rows = self.scoped_rows(scope, &format!("SELECT {INFO} FROM secrets WHERE 1 = 1"), "tenant_id", "tenant_id, name").await?;
        self.note_scope(scope, "secrets").await?;
        rows.iter().map(info_from_row).collect()
    }

    /// Stores or replaces a sealed secret (audited by name and kind, never the value).
    pub async fn put_sealed_secret(&self, scope: &Scope, actor: &Actor, s: SealedSecret) -> Result<SecretInfo, StoreError> {
        may_write(scope, s.tenant)?;
        let (_guard, mut tx) = self.begin_write().await?;
        let before = sqlx::query(&format!("SELECT {INFO} FROM secrets WHERE COALESCE(tenant_id, '') = $1 AND name = $2"))
            .bind(tenant_key(s.tenant))
            .bind(&s.name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(info_from_row)
            .transpose()?;
        let now = mamori_core::time::now_ms();
        if before.is_some() {
            sqlx::query(
                "UPDATE secrets SET kind = $1, key_id = $2, sealed = $3, updated_at = $4, updated_by = $5 WHERE COALESCE(tenant_id, '') = $6 AND name = $7",
            )
            .bind(&s.kind)
            .bind(&s.key_id)
            .bind(B64.encode(&s.sealed))
            .bind(now)
            .bind(&actor.name)
            .bind(tenant_key(s.tenant))
            .bind(&s.name)
            .execute(&mut *tx)
            .await?;
        } else {
            insert(&mut tx, &s, &actor.name, now, "").await?;
        }
        let info = SecretInfo {
            tenant: s.tenant,
            name: s.name.clone(),
            kind: s.kind.clone(),
            key_id: s.key_id.clone(),
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
            updated_by: actor.name.clone(),
        };
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: s.tenant,
                action: if before.is_some() { "secret.update" } else { "secret.create" },
                target_kind: "secret",
                target_id: Some(s.name.clone()),
                before: before.as_ref().map(|b| json!({"name": b.name, "kind": b.kind, "key_id": b.key_id})),
                after: Some(json!({"name": info.name, "kind": info.kind, "key_id": info.key_id})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Stores a sealed secret only if none of that tenant and name exists (keys the
    /// platform makes for itself: of two nodes making one at once, the first wins).
    /// Returns whether it was stored.
    pub async fn insert_sealed_secret_if_absent(&self, grant: &CrossTenant, s: SealedSecret) -> Result<bool, StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let now = mamori_core::time::now_ms();
        let n = insert(&mut tx, &s, &grant.actor().name, now, " ON CONFLICT DO NOTHING").await?;
        if n > 0 {
            audit::append(
                &mut tx,
                Change {
                    actor: grant.actor(),
                    tenant: s.tenant,
                    action: "secret.create",
                    target_kind: "secret",
                    target_id: Some(s.name.clone()),
                    before: None,
                    after: Some(json!({"name": s.name, "kind": s.kind, "key_id": s.key_id})),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Returns a sealed secret for a component or the CLI to open; the read is audited.
    pub async fn sealed_secret(&self, grant: &CrossTenant, tenant: Option<TenantId>, name: &str) -> Result<Option<SealedSecret>, StoreError> {
        let row = sqlx::query("SELECT kind, key_id, sealed FROM secrets WHERE COALESCE(tenant_id, '') = $1 AND name = $2")
            .bind(tenant_key(tenant))
            .bind(name)
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let sealed = B64.decode(r.try_get::<String, _>(2)?).map_err(|e| StoreError::Corrupt(format!("secret {name}: {e}")))?;
        self.record(Change {
            actor: grant.actor(),
            tenant,
            action: "secret.read",
            target_kind: "secret",
            target_id: Some(name.to_string()),
            before: None,
            after: None,
        })
        .await?;
        Ok(Some(SealedSecret { tenant, name: name.to_string(), kind: r.try_get(0)?, key_id: r.try_get(1)?, sealed }))
    }

    /// Deletes a secret (audited).
    pub async fn delete_secret(&self, scope: &Scope, actor: &Actor, tenant: Option<TenantId>, name: &str) -> Result<(), StoreError> {
        may_write(scope, tenant)?;
        let (_guard, mut tx) = self.begin_write().await?;
        let n =
            sqlx::query("DELETE FROM secrets WHERE COALESCE(tenant_id, '') = $1 AND name = $2").bind(tenant_key(tenant)).bind(name).execute(&mut *tx).await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        audit::append(
            &mut tx,
            Change { actor, tenant, action: "secret.delete", target_kind: "secret", target_id: Some(name.to_string()), before: None, after: None },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-seals every secret not sealed with `current_key` through `reseal`, in one
    /// transaction (a failure changes nothing). Returns how many were re-sealed.
    pub async fn reseal_secrets<F>(&self, grant: &CrossTenant, current_key: &str, mut reseal: F) -> Result<usize, StoreError>
    where
        F: FnMut(&SealedSecret) -> Result<(String, Vec<u8>), String>,
    {
        let (_guard, mut tx) = self.begin_write().await?;
        let rows =
            sqlx::query("SELECT id, tenant_id, name, kind, key_id, sealed FROM secrets WHERE key_id <> $1").bind(current_key).fetch_all(&mut *tx).await?;
        let mut done = 0;
        for r in &rows {
            let tenant: Option<String> = r.try_get(1)?;
            let name: String = r.try_get(2)?;
            let old = SealedSecret {
                tenant: tenant.map(|t| t.parse()).transpose().map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?,
                name: name.clone(),
                kind: r.try_get(3)?,
                key_id: r.try_get(4)?,
                sealed: B64.decode(r.try_get::<String, _>(5)?).map_err(|e| StoreError::Corrupt(format!("secret {name}: {e}")))?,
            };
            let (key_id, sealed) = reseal(&old).map_err(|e| StoreError::Config(format!("secret {name}: {e}")))?;
            sqlx::query("UPDATE secrets SET key_id = $1, sealed = $2 WHERE id = $3")
                .bind(&key_id)
                .bind(B64.encode(&sealed))
                .bind(r.try_get::<String, _>(0)?)
                .execute(&mut *tx)
                .await?;
            done += 1;
        }
        audit::append(
            &mut tx,
            Change {
                actor: grant.actor(),
                tenant: None,
                action: "secret.reseal",
                target_kind: "secret",
                target_id: None,
                before: None,
                after: Some(json!({"key_id": current_key, "resealed": done})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }
}

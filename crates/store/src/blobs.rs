//! Blob records and references: which blobs exist and who holds them. The objects live
//! in the blob backend of `mamori-vault`; this is the bookkeeping that decides when one
//! may go.
//!
//! A blob is reached through a reference, and a tenant reaches only blobs it holds a
//! reference to, so the same attachment quarantined for two towns is stored once and
//! still neither town sees that the other has it.
//!
//! Requirements: see `mamori-vault` (F11, F24, F30, F44, F45, F49, F51).

use crate::access::{CrossTenant, Scope};
use crate::{Dialect, Store, StoreError};
use mamori_core::{Problem, TenantId};
use serde::Serialize;
use sqlx::Row;
use std::future::Future;
use std::pin::Pin;

/// A stored blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobRecord {
    /// SHA-256 of the content, lower-case hex: the blob's address.
    pub sha256: String,
    /// Content size in bytes.
    pub size: i64,
    /// Size as stored (compressed and sealed).
    pub stored_size: i64,
    /// Master key it is sealed with.
    pub key_id: String,
    /// When first stored (Unix ms).
    pub created_at: i64,
}

/// One holder of a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// Who holds it, e.g. `mail:quarantine:<id>` or `case:42:evidence:3`.
    pub owner: String,
    /// The tenant on whose behalf; none for the platform.
    pub tenant: Option<TenantId>,
    /// The reference cannot be released before this (Unix ms; a hold, e.g. evidence).
    pub hold_until: i64,
    /// The reference ends by itself at this time (Unix ms; e.g. a quarantine period).
    pub expires_at: Option<i64>,
}

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<BlobRecord, StoreError> {
    Ok(BlobRecord { sha256: r.try_get(0)?, size: r.try_get(1)?, stored_size: r.try_get(2)?, key_id: r.try_get(3)?, created_at: r.try_get(4)? })
}

const RECORD: &str = "sha256, size, stored_size, key_id, created_at";

/// Deletes one object from the backend during collection.
pub type DeleteObject<'a> = Box<dyn FnMut(BlobRecord) -> Pin<Box<dyn Future<Output = std::io::Result<()>> + Send + 'a>> + Send + 'a>;

impl Store {
    /// Records a blob just written (or already there) and the reference `r` to it, in
    /// one transaction. A reference of the same owner is extended, never shortened.
    pub async fn record_blob(&self, scope: &Scope, rec: &BlobRecord, r: &BlobRef) -> Result<(), StoreError> {
        match r.tenant {
            Some(t) if !scope.includes(t) => return Err(StoreError::NotFound),
            None if !scope.is_all() => return Err(StoreError::Forbidden("only the platform holds blobs of no tenant")),
            _ => {}
        }
        let mut tx = self.db.pool.begin().await?;
        // The upsert takes the row's lock, so a collection of the same blob (which holds
        // it while deleting the object) finishes first or waits for this one.
        sqlx::query(&format!(
            "INSERT INTO blobs ({RECORD}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO UPDATE SET stored_size = excluded.stored_size, key_id = excluded.key_id"
        ))
        .bind(&rec.sha256)
        .bind(rec.size)
        .bind(rec.stored_size)
        .bind(&rec.key_id)
        .bind(rec.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO blob_refs (sha256, owner, tenant_id, hold_until, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (sha256, owner) DO UPDATE SET \
               hold_until = CASE WHEN excluded.hold_until > blob_refs.hold_until THEN excluded.hold_until ELSE blob_refs.hold_until END, \
               expires_at = CASE WHEN blob_refs.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL \
                                 WHEN excluded.expires_at > blob_refs.expires_at THEN excluded.expires_at ELSE blob_refs.expires_at END",
        )
        .bind(&rec.sha256)
        .bind(&r.owner)
        .bind(r.tenant.map(|t| t.to_string()))
        .bind(r.hold_until)
        .bind(r.expires_at)
        .bind(mamori_core::time::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Returns a blob's record if the scope holds a reference to it.
    pub async fn blob(&self, scope: &Scope, sha256: &str) -> Result<Option<BlobRecord>, StoreError> {
        let row = if scope.is_all() {
            sqlx::query(&format!("SELECT {RECORD} FROM blobs WHERE sha256 = $1")).bind(sha256).fetch_optional(&self.db.pool).await?
        } else {
            let mut sql = format!("SELECT {RECORD} FROM blobs b WHERE sha256 = $1 AND EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = b.sha256");
            let mut binds = vec![sha256.to_string()];
            if !scope.push_clause(None, "r.tenant_id", 0, &mut sql, &mut binds) {
                return Ok(None);
            }
            sql.push(')');
            crate::with_binds(&sql, &binds).fetch_optional(&self.db.pool).await?
        };
        row.as_ref().map(record_from_row).transpose()
    }

    /// Returns the references to a blob within the scope.
    pub async fn blob_refs(&self, scope: &Scope, sha256: &str) -> Result<Vec<BlobRef>, StoreError> {
        let rows = sqlx::query("SELECT owner, tenant_id, hold_until, expires_at FROM blob_refs WHERE sha256 = $1 ORDER BY owner")
            .bind(sha256)
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let tenant: Option<String> = r.try_get(1)?;
            let tenant = tenant.map(|t| t.parse()).transpose().map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?;
            let visible = match tenant {
                Some(t) => scope.includes(t),
                None => scope.is_all(),
            };
            if visible {
                out.push(BlobRef { owner: r.try_get(0)?, tenant, hold_until: r.try_get(2)?, expires_at: r.try_get(3)? });
            }
        }
        Ok(out)
    }

    /// Ends the reference `owner` holds on a blob. Refused while it is on hold.
    /// Returns whether there was one.
    pub async fn release_blob(&self, scope: &Scope, sha256: &str, owner: &str) -> Result<bool, StoreError> {
        let refs = self.blob_refs(scope, sha256).await?;
        let Some(r) = refs.into_iter().find(|r| r.owner == owner) else { return Ok(false) };
        let now = mamori_core::time::now_ms();
        if r.hold_until > now {
            return Err(Problem::new(
                "blob",
                "on_hold",
                format!("このファイルは {} まで保全されているため削除できません", mamori_core::time::format_jst(r.hold_until)),
                format!("the file is on hold until {} and cannot be released", mamori_core::time::format_jst(r.hold_until)),
            )
            .into());
        }
        let n = sqlx::query("DELETE FROM blob_refs WHERE sha256 = $1 AND owner = $2").bind(sha256).bind(owner).execute(&self.db.pool).await?;
        Ok(n.rows_affected() > 0)
    }

    /// Ends expired references, then deletes blobs no reference holds, at most `limit`:
    /// each one's row is locked, its object deleted through `delete`, then the row, so a
    /// concurrent store of the same content waits and writes it again. Returns (references
    /// expired, blobs deleted).
    pub async fn collect_blobs(&self, _grant: &CrossTenant, limit: i64, mut delete: DeleteObject<'_>) -> Result<(u64, u64), StoreError> {
        let now = mamori_core::time::now_ms();
        let expired = sqlx::query("DELETE FROM blob_refs WHERE expires_at IS NOT NULL AND expires_at <= $1 AND hold_until <= $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        let candidates: Vec<String> = sqlx::query("SELECT sha256 FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = b.sha256) LIMIT $1")
            .bind(limit)
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut deleted = 0;
        for sha in candidates {
            let mut tx = match self.db.dialect {
                Dialect::Sqlite => self.db.pool.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => self.db.pool.begin().await?,
            };
            let lock = match self.db.dialect {
                Dialect::Sqlite => format!("SELECT {RECORD} FROM blobs WHERE sha256 = $1"),
                Dialect::Postgres => format!("SELECT {RECORD} FROM blobs WHERE sha256 = $1 FOR UPDATE SKIP LOCKED"),
            };
            let Some(row) = sqlx::query(&lock).bind(&sha).fetch_optional(&mut *tx).await? else { continue };
            let rec = record_from_row(&row)?;
            // A new statement sees references committed since the candidates were chosen.
            let held: i64 = sqlx::query("SELECT COUNT(*) FROM blob_refs WHERE sha256 = $1").bind(&sha).fetch_one(&mut *tx).await?.try_get(0)?;
            if held > 0 {
                continue;
            }
            if let Err(e) = delete(rec).await {
                tracing::warn!(sha256 = %sha, error = %e, "blob object could not be deleted; kept for the next collection");
                continue;
            }
            sqlx::query("DELETE FROM blobs WHERE sha256 = $1").bind(&sha).execute(&mut *tx).await?;
            tx.commit().await?;
            deleted += 1;
        }
        Ok((expired, deleted))
    }

    /// Returns up to `limit` blobs sealed with another key than `current_key`.
    pub async fn blobs_sealed_with_other_key(&self, _grant: &CrossTenant, current_key: &str, limit: i64) -> Result<Vec<BlobRecord>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {RECORD} FROM blobs WHERE key_id <> $1 LIMIT $2")).bind(current_key).bind(limit).fetch_all(&self.db.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Records that a blob was re-sealed.
    pub async fn set_blob_key(&self, _grant: &CrossTenant, sha256: &str, key_id: &str, stored_size: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE blobs SET key_id = $1, stored_size = $2 WHERE sha256 = $3")
            .bind(key_id)
            .bind(stored_size)
            .bind(sha256)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Returns the count and total stored size of blobs.
    pub async fn blob_totals(&self, _grant: &CrossTenant) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query("SELECT COUNT(*), COALESCE(SUM(stored_size), 0) FROM blobs").fetch_one(&self.db.pool).await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }
}

//! Test notifications (「テスト通知を送る」): a request stored by whichever node serves
//! the console, taken and sent by the node that runs the monitor, its outcome written
//! back per target, so the person who asked sees on any node whether mail and webhooks
//! get through.
//!
//! A request names a tenant (its notification policy's targets) or none (operators:
//! the SOC's addresses). Asking is an audited change (`notify.test`); a tenant asks
//! for itself only and sees its own tests only.

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::monitor::{Notification, NotifyTestId};
use mamori_core::{Actor, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// A test notification and, once sent, how each delivery went.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NotifyTest {
    /// Its id.
    pub id: NotifyTestId,
    /// The tenant whose targets it goes to; none: the SOC's addresses.
    pub tenant: Option<TenantId>,
    /// Who asked (the account's name).
    pub requested_by: String,
    /// When (Unix ms).
    pub requested_at: i64,
    /// When the monitor took it (Unix ms); none while it waits.
    pub started_at: Option<i64>,
    /// When it was sent (Unix ms); none while it waits or is being sent.
    pub done_at: Option<i64>,
    /// Each delivery (e-mail address or webhook) with its outcome; empty when sent
    /// and there was no target.
    pub results: Vec<Notification>,
}

/// How long a taken request may stay unsent before another holder of the monitor
/// takes it again (the one that took it stopped).
pub const RETAKE_AFTER_MS: i64 = 120_000;

/// Tests a tenant keeps: older ones are deleted when a new one is asked for.
const KEEP: i64 = 50;

const COLUMNS: &str = "id, tenant_id, requested_by, requested_at, started_at, done_at, results";

fn from_row(r: &sqlx::any::AnyRow) -> Result<NotifyTest, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("notify_tests: {e}"));
    let tenant: Option<String> = r.try_get(1)?;
    Ok(NotifyTest {
        id: r.try_get::<String, _>(0)?.parse().map_err(|e| corrupt(&e))?,
        tenant: tenant.map(|t| t.parse()).transpose().map_err(|e| corrupt(&e))?,
        requested_by: r.try_get(2)?,
        requested_at: r.try_get(3)?,
        started_at: r.try_get(4)?,
        done_at: r.try_get(5)?,
        results: serde_json::from_str(&r.try_get::<String, _>(6)?)?,
    })
}

impl Store {
    /// Asks for a test notification to `tenant`'s targets (none: the SOC's, operators
    /// only). Audited as `notify.test`.
    pub async fn request_notify_test(&self, scope: &Scope, actor: &Actor, tenant: Option<TenantId>) -> Result<NotifyTest, StoreError> {
        let reach = match tenant {
            Some(t) => scope.includes(t),
            None => scope.is_all(),
        };
        if !reach {
            return Err(StoreError::Forbidden("a tenant tests its own notifications only"));
        }
        let now = mamori_core::time::now_ms();
        let t = NotifyTest {
            id: NotifyTestId::new(),
            tenant,
            requested_by: actor.name.clone(),
            requested_at: now,
            started_at: None,
            done_at: None,
            results: Vec::new(),
        };
        let (_guard, mut tx) = self.begin_write().await?;
        if let Some(id) = tenant
            && sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(id.to_string()).fetch_optional(&mut *tx).await?.is_none()
        {
            return Err(StoreError::NotFound);
        }
        let tenant_id = tenant.map(|t| t.to_string());
        // The oldest go: a tenant keeps its last KEEP tests.
        match &tenant_id {
            Some(id) => sqlx::query(
                "DELETE FROM notify_tests WHERE tenant_id = $1 AND id NOT IN (SELECT id FROM notify_tests WHERE tenant_id = $1 ORDER BY requested_at DESC LIMIT $2)",
            )
            .bind(id.clone())
            .bind(KEEP - 1),
            None => sqlx::query(
                "DELETE FROM notify_tests WHERE tenant_id IS NULL AND id NOT IN (SELECT id FROM notify_tests WHERE tenant_id IS NULL ORDER BY requested_at DESC LIMIT $1)",
            )
            .bind(KEEP - 1),
        }
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO notify_tests (id, tenant_id, requested_by, requested_at) VALUES ($1, $2, $3, $4)")
            .bind(t.id.to_string())
            .bind(tenant_id)
            .bind(&t.requested_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change { actor, tenant, action: "notify.test", target_kind: "notify_test", target_id: Some(t.id.to_string()), before: None, after: Some(json!(t)) },
        )
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Lists the tests in scope, newest first (`tenant` narrows an operator's list).
    pub async fn list_notify_tests(&self, scope: &Scope, tenant: Option<TenantId>, limit: i64) -> Result<Vec<NotifyTest>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM notify_tests WHERE 1 = 1");
        let mut binds = Vec::new();
        if !scope.push_clause(tenant, "tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(" ORDER BY requested_at DESC LIMIT {}", limit.clamp(1, 1000)));
        crate::with_binds(&sql, &binds).fetch_all(&self.db.pool).await?.iter().map(from_row).collect()
    }

    /// Returns one test in scope.
    pub async fn get_notify_test(&self, scope: &Scope, id: NotifyTestId) -> Result<NotifyTest, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM notify_tests WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        let t = row.as_ref().map(from_row).transpose()?.ok_or(StoreError::NotFound)?;
        let visible = match t.tenant {
            Some(tenant) => scope.includes(tenant),
            None => scope.is_all(),
        };
        if visible { Ok(t) } else { Err(StoreError::NotFound) }
    }

    /// Takes the tests waiting to be sent (and those taken long ago and never sent),
    /// oldest first. For the monitor's holder.
    pub async fn take_notify_tests(&self, _grant: &CrossTenant, limit: i64) -> Result<Vec<NotifyTest>, StoreError> {
        let now = mamori_core::time::now_ms();
        // Read first: most rounds find nothing, and take no write lock for it.
        if sqlx::query("SELECT 1 FROM notify_tests WHERE done_at IS NULL LIMIT 1").fetch_optional(&self.db.pool).await?.is_none() {
            return Ok(Vec::new());
        }
        let (_guard, mut tx) = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notify_tests WHERE done_at IS NULL AND (started_at IS NULL OR started_at < $1) ORDER BY requested_at LIMIT $2"
        ))
        .bind(now - RETAKE_AFTER_MS)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let mut t = from_row(r)?;
            sqlx::query("UPDATE notify_tests SET started_at = $1 WHERE id = $2").bind(now).bind(t.id.to_string()).execute(&mut *tx).await?;
            t.started_at = Some(now);
            out.push(t);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Writes how a test went. For the monitor's holder.
    pub async fn finish_notify_test(&self, _grant: &CrossTenant, id: NotifyTestId, results: &[Notification]) -> Result<(), StoreError> {
        sqlx::query("UPDATE notify_tests SET done_at = $1, results = $2 WHERE id = $3")
            .bind(mamori_core::time::now_ms())
            .bind(serde_json::to_string(results)?)
            .bind(id.to_string())
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

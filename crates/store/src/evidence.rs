//! Evidence preservation of events (証拠保全).
//!
//! - Legal holds: a tenant's events in a time range that retention keeps, whatever
//!   its days, until the hold is released. The case system puts one on the events of
//!   a case; operators put one by hand (`mamori events hold`) for a request of the
//!   police or an auditor. Placing and releasing are audited changes (`events.hold`,
//!   `events.release`); a released hold stays as a record.
//! - Seals: each seal of a day partition ([`crate::events::seal`]) is recorded in the
//!   hash-chained audit log (`events.seal`), apart from the data, so that
//!   `mamori events verify` can tell a rewritten manifest from a true one.

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Problem, Problems, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// A legal hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EventHold {
    /// Its id.
    #[schemars(with = "String")]
    pub id: uuid::Uuid,
    /// The tenant whose events it keeps.
    pub tenant: TenantId,
    /// From (Unix ms, included).
    pub from_ms: i64,
    /// To (Unix ms, excluded).
    pub to_ms: i64,
    /// Why.
    pub reason: String,
    /// What it is for (a case number, a letter's reference); may be empty.
    pub reference: String,
    /// Who placed it.
    pub created_by: String,
    /// When (Unix ms).
    pub created_at: i64,
    /// Who released it; none while it holds.
    pub released_by: Option<String>,
    /// When (Unix ms); none while it holds.
    pub released_at: Option<i64>,
}

/// A hold to place.
#[derive(Clone, Debug, Default)]
pub struct NewEventHold {
    /// The tenant.
    pub tenant: TenantId,
    /// From (Unix ms, included).
    pub from_ms: i64,
    /// To (Unix ms, excluded).
    pub to_ms: i64,
    /// Why (required).
    pub reason: String,
    /// What it is for.
    pub reference: String,
}

const COLUMNS: &str = "id, tenant_id, from_ms, to_ms, reason, reference, created_by, created_at, released_by, released_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<EventHold, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("event_holds: {e}"));
    Ok(EventHold {
        id: r.try_get::<String, _>(0)?.parse().map_err(|e| corrupt(&e))?,
        tenant: r.try_get::<String, _>(1)?.parse().map_err(|e| corrupt(&e))?,
        from_ms: r.try_get(2)?,
        to_ms: r.try_get(3)?,
        reason: r.try_get(4)?,
        reference: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        released_by: r.try_get(8)?,
        released_at: r.try_get(9)?,
    })
}

impl NewEventHold {
    fn check(&self) -> Result<(), Problems> {
        let mut p = Problems::default();
        if self.from_ms >= self.to_ms {
            p.push(Problem::new("to", "invalid_range", "保全する期間の終わりは始まりより後にしてください", "the hold's end must be after its start"));
        }
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            p.push(Problem::new("reason", "invalid_reason", "保全の理由を1〜500文字で入力してください", "give the hold's reason in 1-500 characters"));
        }
        if self.reference.chars().count() > 200 {
            p.push(Problem::new("reference", "invalid_reference", "参照番号は200文字までです", "the reference is at most 200 characters"));
        }
        p.into_result(())
    }
}

impl Store {
    /// Places a legal hold on a tenant's events in scope. Audited as `events.hold`.
    pub async fn place_event_hold(&self, scope: &Scope, actor: &Actor, hold: NewEventHold) -> Result<EventHold, StoreError> {
        if !scope.includes(hold.tenant) {
            return Err(StoreError::NotFound);
        }
        hold.check().map_err(StoreError::Invalid)?;
        let h = EventHold {
            id: uuid::Uuid::now_v7(),
            tenant: hold.tenant,
            from_ms: hold.from_ms,
            to_ms: hold.to_ms,
            reason: hold.reason.trim().to_string(),
            reference: hold.reference.trim().to_string(),
            created_by: actor.name.clone(),
            created_at: mamori_core::time::now_ms(),
            released_by: None,
            released_at: None,
        };
        let (_guard, mut tx) = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(h.tenant.to_string()).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO event_holds (id, tenant_id, from_ms, to_ms, reason, reference, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(h.id.to_string())
        .bind(h.tenant.to_string())
        .bind(h.from_ms)
        .bind(h.to_ms)
        .bind(&h.reason)
        .bind(&h.reference)
        .bind(&h.created_by)
        .bind(h.created_at)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(h.tenant),
                action: "events.hold",
                target_kind: "event_hold",
                target_id: Some(h.id.to_string()),
                before: None,
                after: Some(json!(h)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(h)
    }

    /// Releases a hold in scope: retention may then purge its events. Audited as
    /// `events.release`. Releasing a released hold changes nothing.
    pub async fn release_event_hold(&self, scope: &Scope, actor: &Actor, id: uuid::Uuid) -> Result<EventHold, StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM event_holds WHERE id = $1")).bind(id.to_string()).fetch_optional(&mut *tx).await?;
        let before = row.as_ref().map(from_row).transpose()?.filter(|h| scope.includes(h.tenant)).ok_or(StoreError::NotFound)?;
        if before.released_at.is_some() {
            return Ok(before);
        }
        let mut after = before.clone();
        after.released_by = Some(actor.name.clone());
        after.released_at = Some(mamori_core::time::now_ms());
        sqlx::query("UPDATE event_holds SET released_by = $1, released_at = $2 WHERE id = $3")
            .bind(&after.released_by)
            .bind(after.released_at)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(after.tenant),
                action: "events.release",
                target_kind: "event_hold",
                target_id: Some(id.to_string()),
                before: Some(json!(before)),
                after: Some(json!(after)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Lists the holds in scope, newest first; released ones too when asked.
    pub async fn list_event_holds(&self, scope: &Scope, include_released: bool) -> Result<Vec<EventHold>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM event_holds WHERE 1 = 1");
        if !include_released {
            sql.push_str(" AND released_at IS NULL");
        }
        let mut binds = Vec::new();
        if !scope.push_clause(None, "tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        sql.push_str(" ORDER BY created_at DESC LIMIT 10000");
        crate::with_binds(&sql, &binds).fetch_all(&self.db.pool).await?.iter().map(from_row).collect()
    }

    /// Every hold in force, for retention (which purges every tenant's events).
    pub async fn active_event_holds(&self, _grant: &CrossTenant) -> Result<Vec<crate::events::Hold>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM event_holds WHERE released_at IS NULL")).fetch_all(&self.db.pool).await?;
        rows.iter().map(|r| from_row(r).map(|h| crate::events::Hold { tenant: h.tenant, from_ms: h.from_ms, to_ms: h.to_ms })).collect()
    }
}

impl Store {
    /// Records seals of day partitions made by `node` in the audit log (`events.seal`).
    pub async fn record_event_seals(&self, grant: &CrossTenant, node: &str, seals: &[crate::events::seal::SealRecord]) -> Result<(), StoreError> {
        if seals.is_empty() {
            return Ok(());
        }
        let (_guard, mut tx) = self.begin_write().await?;
        for s in seals {
            let after = json!({ "node": node, "day": s.day, "digest": s.digest, "seal": s.seal });
            audit::append(
                &mut tx,
                Change {
                    actor: grant.actor(),
                    tenant: None,
                    action: "events.seal",
                    target_kind: "event_partition",
                    target_id: Some(s.day.clone()),
                    before: None,
                    after: Some(after),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every seal digest the audit log holds, by day.
    pub async fn event_seal_digests(&self, grant: &CrossTenant) -> Result<std::collections::HashMap<String, std::collections::HashSet<String>>, StoreError> {
        let mut out: std::collections::HashMap<String, std::collections::HashSet<String>> = std::collections::HashMap::new();
        for e in self.audit_of(grant, "events.seal").await? {
            if let (Some(day), Some(digest)) = (e.target_id, e.after.as_ref().and_then(|a| a.get("digest")).and_then(|d| d.as_str())) {
                out.entry(day).or_default().insert(digest.to_string());
            }
        }
        Ok(out)
    }

    /// Every audit entry of one action, newest first.
    async fn audit_of(&self, grant: &CrossTenant, action: &str) -> Result<Vec<crate::AuditEntry>, StoreError> {
        let filter = crate::AuditFilter { action: Some(action.into()), ..Default::default() };
        let mut out: Vec<crate::AuditEntry> = Vec::new();
        loop {
            let page = self.list_audit(&grant.scope(), &filter, out.last().map(|e| e.seq), 1000).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    /// Records an evidence export of a tenant's events (`events.export`): the SHA-256
    /// of its manifest, and the manifest.
    pub async fn record_event_export(&self, grant: &CrossTenant, tenant: TenantId, digest: &str, manifest: &serde_json::Value) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let after = json!({ "digest": digest, "manifest": manifest });
        audit::append(
            &mut tx,
            Change {
                actor: grant.actor(),
                tenant: Some(tenant),
                action: "events.export",
                target_kind: "event_export",
                target_id: Some(digest.to_string()),
                before: None,
                after: Some(after),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The manifest digests of every evidence export the audit log holds.
    pub async fn event_export_digests(&self, grant: &CrossTenant) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(self.audit_of(grant, "events.export").await?.into_iter().filter_map(|e| e.target_id).collect())
    }
}

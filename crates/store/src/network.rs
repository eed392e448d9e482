//! Network segments and the tenant directory: what the tenant resolver is built from.
//!
//! Segments are platform data (operators define them; everyone may read their names and
//! labels). The directory reads every tenant's ranges, domains and FQDNs, so it takes
//! the cross-tenant grant of the component that asks.

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Permission, Problem, Segment, SegmentName, TenantDirectory};
use serde_json::json;
use sqlx::Row;
use std::time::Duration;

fn segment_from_row(r: &sqlx::any::AnyRow) -> Result<Segment, StoreError> {
    let corrupt = |e: Problem| StoreError::Corrupt(format!("segment: {}", e.en));
    Ok(Segment {
        name: r.try_get::<String, _>(0)?.parse().map_err(corrupt)?,
        label: r.try_get(1)?,
        zone: r.try_get::<String, _>(2)?.parse().map_err(corrupt)?,
        notes: r.try_get(3)?,
    })
}

/// A fingerprint of the tenants and segments: it changes whenever one is added, changed
/// or deleted, so every node rebuilds its directory after a change made on another.
pub(crate) async fn directory_fingerprint(db: &crate::Db) -> Result<(i64, i64, i64, i64), StoreError> {
    let t = sqlx::query("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM tenants").fetch_one(&db.pool).await?;
    let s = sqlx::query("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM network_segments").fetch_one(&db.pool).await?;
    Ok((t.try_get(0)?, t.try_get(1)?, s.try_get(0)?, s.try_get(1)?))
}

impl Store {
    /// Returns every network segment, by name.
    pub async fn list_segments(&self) -> Result<Vec<Segment>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {SEGMENT} FROM network_segments ORDER BY name")).fetch_all(&self.db.pool).await?;
        rows.iter().map(segment_from_row).collect()
    }

    /// Creates or changes a segment (operators only; audited). Its zone cannot change
    /// while tenant ranges are on it: that would move their traffic to the other side.
    pub async fn put_segment(&self, scope: &Scope, actor: &Actor, segment: Segment) -> Result<Segment, StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators define network segments")?;
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load_segment(&mut tx, &segment.name).await?;
        if before.as_ref() == Some(&segment) {
            return Ok(segment);
        }
        if let Some(b) = &before
            && b.zone != segment.zone
        {
            let users = tenants_on(&mut tx, &segment.name).await?;
            if !users.is_empty() {
                return Err(Problem::new(
                    "zone",
                    "segment_in_use",
                    format!("セグメント「{}」には {} のネットワーク範囲があるため、接続系は変更できません", segment.name, users.join("、")),
                    format!("segment '{}' carries ranges of {}; its zone cannot change", segment.name, users.join(", ")),
                )
                .into());
            }
        }
        let now = mamori_core::time::now_ms();
        sqlx::query(
            "INSERT INTO network_segments (name, label, zone, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (name) DO UPDATE SET label = excluded.label, zone = excluded.zone, notes = excluded.notes, updated_at = excluded.updated_at",
        )
        .bind(segment.name.as_str())
        .bind(&segment.label)
        .bind(segment.zone.as_str())
        .bind(&segment.notes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: None,
                action: if before.is_some() { "segment.update" } else { "segment.create" },
                target_kind: "segment",
                target_id: Some(segment.name.to_string()),
                before: before.map(|b| json!(b)),
                after: Some(json!(segment)),
            },
        )
        .await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(segment)
    }

    /// Deletes a segment no tenant range is on (operators only; audited). The default
    /// segment stays.
    pub async fn delete_segment(&self, scope: &Scope, actor: &Actor, name: &SegmentName) -> Result<(), StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators define network segments")?;
        if name.as_str() == SegmentName::DEFAULT {
            return Err(Problem::new("segment", "default_segment", "標準セグメントは削除できません", "the default segment cannot be deleted").into());
        }
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load_segment(&mut tx, name).await?.ok_or(StoreError::NotFound)?;
        let users = tenants_on(&mut tx, name).await?;
        if !users.is_empty() {
            return Err(Problem::new(
                "segment",
                "segment_in_use",
                format!("セグメント「{name}」には {} のネットワーク範囲があるため削除できません", users.join("、")),
                format!("segment '{name}' carries ranges of {}; it cannot be deleted", users.join(", ")),
            )
            .into());
        }
        sqlx::query("DELETE FROM network_segments WHERE name = $1").bind(name.as_str()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: None,
                action: "segment.delete",
                target_kind: "segment",
                target_id: Some(name.to_string()),
                before: Some(json!(before)),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    /// Builds the tenant directory from every tenant and segment. Needs a cross-tenant
    /// grant: the directory holds every tenant's addresses.
    pub async fn tenant_directory(&self, grant: &CrossTenant) -> Result<TenantDirectory, StoreError> {
        let scope = grant.scope();
        let tenants = self.list_tenants(&scope).await?;
        let segments = self.list_segments().await?;
        Ok(TenantDirectory::build(segments, &tenants))
    }

    /// Returns a watch that moves whenever tenants or segments change, on this node or
    /// (see [`Store::spawn_directory_poller`]) on another.
    pub fn watch_directory(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.directory_rev.subscribe()
    }

    pub(crate) fn directory_changed(&self) {
        self.inner.directory_rev.send_modify(|r| *r += 1);
    }

    /// Polls the database for tenant and segment changes made by other nodes, every
    /// `every`. Returns the task; abort it to stop.
    pub fn spawn_directory_poller(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match directory_fingerprint(&store.db).await {
                    Ok(f) => {
                        if last.is_some_and(|l| l != f) {
                            store.directory_changed();
                        }
                        last = Some(f);
                    }
                    Err(e) => tracing::warn!(error = %e, "tenant directory poll failed"),
                }
            }
        })
    }
}

const SEGMENT: &str = "name, label, zone, notes";

async fn load_segment(tx: &mut crate::Tx<'_>, name: &SegmentName) -> Result<Option<Segment>, StoreError> {
    let row = sqlx::query(&format!("SELECT {SEGMENT} FROM network_segments WHERE name = $1")).bind(name.as_str()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(segment_from_row).transpose()
}

/// Returns the names of the tenants with a range on `segment`.
async fn tenants_on(tx: &mut crate::Tx<'_>, segment: &SegmentName) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT name, network_ranges FROM tenants ORDER BY code").fetch_all(&mut **tx).await?;
    let mut names = Vec::new();
    for r in &rows {
        let ranges: Vec<mamori_core::NetworkRange> = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
        if ranges.iter().any(|x| &x.segment == segment) {
            names.push(r.try_get(0)?);
        }
    }
    Ok(names)
}

//! Monitors, their state and results, fault records (障害記録) and remote probes.
//!
//! Monitor changes are audited like every other change. Results, states and fault
//! timelines are written by the monitoring engine (the system), in batches; they are
//! operational data, not audited changes.

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::monitor::{CheckResult, Fault, FaultEntry, FaultId, Monitor, MonitorId, MonitorSpec, MonitorState, Notification, ProbeId, Reason, ResultRow};
use mamori_core::{Actor, Problem, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

/// Most monitors one tenant may have.
pub const MAX_MONITORS_PER_TENANT: i64 = 500;
/// Most rows one results query returns.
pub const MAX_RESULT_ROWS: i64 = 20_000;

/// A remote probe (without its token). Only the store makes one, so a `Probe` in hand
/// is one that exists (and, from [`Store::probe_by_token`], one that authenticated).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Probe {
    /// Id.
    pub id: ProbeId,
    /// The tenant whose network it runs in (None: the platform's own).
    pub tenant: Option<TenantId>,
    /// Name.
    pub name: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last contact (Unix ms).
    pub last_seen_at: Option<i64>,
    /// Address of the last contact.
    pub last_ip: Option<String>,
}

/// What to list of faults.
#[derive(Clone, Debug, Default)]
pub struct FaultFilter {
    /// One tenant (operators).
    pub tenant: Option<TenantId>,
    /// One monitor.
    pub monitor: Option<MonitorId>,
    /// Only open faults.
    pub open_only: bool,
    /// Opened at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Opened before (Unix ms).
    pub to_ms: Option<i64>,
    /// Most rows (default 100, at most 1000).
    pub limit: Option<i64>,
}

fn corrupt<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

const MONITOR_COLUMNS: &str = "id, tenant_id, spec, created_at, updated_at";

fn monitor_from_row(r: &sqlx::any::AnyRow) -> Result<Monitor, StoreError> {
    Ok(Monitor {
        id: r.try_get::<String, _>(0)?.parse().map_err(corrupt)?,
        tenant: r.try_get::<String, _>(1)?.parse().map_err(corrupt)?,
        spec: serde_json::from_str(&r.try_get::<String, _>(2)?)?,
        created_at: r.try_get(3)?,
        updated_at: r.try_get(4)?,
    })
}

const FAULT_COLUMNS: &str = "id, tenant_id, monitor_id, monitor_name, opened_at, closed_at, cause, acknowledged_by";

fn fault_from_row(r: &sqlx::any::AnyRow) -> Result<Fault, StoreError> {
    Ok(Fault {
        id: r.try_get::<String, _>(0)?.parse().map_err(corrupt)?,
        tenant: r.try_get::<String, _>(1)?.parse().map_err(corrupt)?,
        monitor: r.try_get::<String, _>(2)?.parse().map_err(corrupt)?,
        monitor_name: r.try_get(3)?,
        opened_at: r.try_get(4)?,
        closed_at: r.try_get(5)?,
        cause: serde_json::from_str(&r.try_get::<String, _>(6)?)?,
        acknowledged_by: r.try_get(7)?,
        timeline: Vec::new(),
        notifications: Vec::new(),
    })
}

const PROBE_COLUMNS: &str = "id, tenant_id, name, created_at, last_seen_at, last_ip";

fn probe_from_row(r: &sqlx::any::AnyRow) -> Result<Probe, StoreError> {
    let tenant: Option<String> = r.try_get(1)?;
    Ok(Probe {
        id: r.try_get::<String, _>(0)?.parse().map_err(corrupt)?,
        tenant: tenant.map(|t| t.parse()).transpose().map_err(corrupt)?,
        name: r.try_get(2)?,
        created_at: r.try_get(3)?,
        last_seen_at: r.try_get(4)?,
        last_ip: r.try_get(5)?,
    })
}

impl Store {
    async fn check_references(
        &self,
        tx: &mut crate::Tx<'_>,
        scope: &Scope,
        tenant: TenantId,
        spec: &MonitorSpec,
        own: Option<MonitorId>,
    ) -> Result<(), StoreError> {
        // A tenant may not aim checks the core runs at the platform itself; on its own
        // probe (inside its network) loopback is the probe's, which is fine.
        if !scope.is_all()
            && spec.probe.is_none()
            && let Some(h) = spec.check.hosts().into_iter().find(|h| mamori_core::monitor::is_platform_internal(h))
        {
            return Err(Problem::new(
                "check",
                "internal_target",
                format!("「{h}」は監視基盤の内部アドレスのため、団体の監視には指定できません"),
                format!("'{h}' is internal to the platform and cannot be monitored by a tenant"),
            )
            .into());
        }
        if let Some(dep) = spec.depends_on {
            let row = sqlx::query("SELECT tenant_id FROM monitors WHERE id = $1").bind(dep.to_string()).fetch_optional(&mut **tx).await?;
            let same = row.map(|r| r.try_get::<String, _>(0)).transpose()?.is_some_and(|t| t == tenant.to_string());
            if !same || own == Some(dep) {
                return Err(Problem::new(
                    "depends_on",
                    "invalid_dependency",
                    "依存先には同じ団体の別の監視を指定してください",
                    "depends_on must be another monitor of the same tenant",
                )
                .into());
            }
            // No cycles: follow the chain from the dependency.
            let mut cur = Some(dep);
            for _ in 0..32 {
                let Some(c) = cur else { break };
                if Some(c) == own {
                    return Err(Problem::new("depends_on", "dependency_cycle", "依存関係が循環しています", "the dependency forms a cycle").into());
                }
                let row = sqlx::query("SELECT spec FROM monitors WHERE id = $1").bind(c.to_string()).fetch_optional(&mut **tx).await?;
                cur = match row {
                    Some(r) => serde_json::from_str::<MonitorSpec>(&r.try_get::<String, _>(0)?)?.depends_on,
                    None => None,
                };
            }
        }
        if let Some(p) = spec.probe {
            let row = sqlx::query("SELECT tenant_id FROM probes WHERE id = $1").bind(p.to_string()).fetch_optional(&mut **tx).await?;
            // A tenant's own probe, or (operators only) the prefecture's shared probes.
            let ok = match row {
                Some(r) => match r.try_get::<Option<String>, _>(0)? {
                    Some(t) => t == tenant.to_string(),
                    None => scope.is_all(),
                },
                None => false,
            };
            if !ok {
                return Err(Problem::new("probe", "invalid_probe", "指定のプローブは使えません", "unknown probe, or a probe of another tenant").into());
            }
        }
        Ok(())
    }

    /// Creates a monitor for `tenant`.
    pub async fn create_monitor(&self, scope: &Scope, actor: &Actor, tenant: TenantId, mut spec: MonitorSpec) -> Result<Monitor, StoreError> {
        if !scope.includes(tenant) {
            return Err(StoreError::NotFound);
        }
        spec.platform_targets = scope.is_all();
        spec.validate().map_err(StoreError::Invalid)?;
        let now = mamori_core::time::now_ms();
        let m = Monitor { id: MonitorId::new(), tenant, spec, created_at: now, updated_at: now };
        let (_guard, mut tx) = self.begin_write().await?;
        let exists = sqlx::query("SELECT COUNT(*) FROM tenants WHERE id = $1").bind(tenant.to_string()).fetch_one(&mut *tx).await?.try_get::<i64, _>(0)?;
        if exists == 0 {
            return Err(StoreError::NotFound);
        }
        let count =
            sqlx::query("SELECT COUNT(*) FROM monitors WHERE tenant_id = $1").bind(tenant.to_string()).fetch_one(&mut *tx).await?.try_get::<i64, _>(0)?;
        if count >= MAX_MONITORS_PER_TENANT {
            return Err(Problem::new("tenant", "too_many_monitors", "1団体の監視は500件までです", "at most 500 monitors per tenant").into());
        }
        self.check_references(&mut tx, scope, tenant, &m.spec, None).await?;
        sqlx::query("INSERT INTO monitors (id, tenant_id, name, kind, spec, probe_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(m.id.to_string())
            .bind(tenant.to_string())
            .bind(&m.spec.name)
            .bind(m.spec.check.kind())
            .bind(serde_json::to_string(&m.spec)?)
            .bind(m.spec.probe.map(|p| p.to_string()))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(tenant),
                action: "monitor.create",
                target_kind: "monitor",
                target_id: Some(m.id.to_string()),
                before: None,
                after: Some(json!(m.spec.redacted())),
            },
        )
        .await?;
        tx.commit().await?;
        self.bump_monitors();
        Ok(m)
    }

    /// Replaces a monitor's settings. A masked or empty password keeps the stored one.
    pub async fn update_monitor(&self, scope: &Scope, actor: &Actor, id: MonitorId, mut spec: MonitorSpec) -> Result<Monitor, StoreError> {
        let before = self.get_monitor(scope, id).await?;
        spec.keep_secrets_of(&before.spec);
        spec.platform_targets = scope.is_all();
        spec.validate().map_err(StoreError::Invalid)?;
        let now = mamori_core::time::now_ms();
        let (_guard, mut tx) = self.begin_write().await?;
        self.check_references(&mut tx, scope, before.tenant, &spec, Some(id)).await?;
        let n = sqlx::query("UPDATE monitors SET name = $1, kind = $2, spec = $3, probe_id = $4, updated_at = $5 WHERE id = $6 AND tenant_id = $7")
            .bind(&spec.name)
            .bind(spec.check.kind())
            .bind(serde_json::to_string(&spec)?)
            .bind(spec.probe.map(|p| p.to_string()))
            .bind(now)
            .bind(id.to_string())
            .bind(before.tenant.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(before.tenant),
                action: "monitor.update",
                target_kind: "monitor",
                target_id: Some(id.to_string()),
                before: Some(json!(before.spec.redacted())),
                after: Some(json!(spec.redacted())),
            },
        )
        .await?;
        tx.commit().await?;
        self.bump_monitors();
        Ok(Monitor { spec, updated_at: now, ..before })
    }

    /// Deletes a monitor with its results. Its fault records stay (they are history).
    pub async fn delete_monitor(&self, scope: &Scope, actor: &Actor, id: MonitorId) -> Result<(), StoreError> {
        let before = self.get_monitor(scope, id).await?;
        let (_guard, mut tx) = self.begin_write().await?;
        let dependents = sqlx::query("SELECT name, spec FROM monitors WHERE tenant_id = $1").bind(before.tenant.to_string()).fetch_all(&mut *tx).await?;
        for r in &dependents {
            let spec: MonitorSpec = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
            if spec.depends_on == Some(id) {
                let name: String = r.try_get(0)?;
                return Err(Problem::new(
                    "monitor",
                    "has_dependents",
                    format!("「{name}」がこの監視に依存しています。先に依存を外してください"),
                    format!("'{name}' depends on this monitor; remove the dependency first"),
                )
                .into());
            }
        }
        sqlx::query("DELETE FROM monitor_results WHERE monitor_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM monitor_state WHERE monitor_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM monitors WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(before.tenant),
                action: "monitor.delete",
                target_kind: "monitor",
                target_id: Some(id.to_string()),
                before: Some(json!(before.spec.redacted())),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        self.bump_monitors();
        Ok(())
    }

    /// Returns a monitor in scope (with its secrets: callers showing it use
    /// [`MonitorSpec::redacted`]).
    pub async fn get_monitor(&self, scope: &Scope, id: MonitorId) -> Result<Monitor, StoreError> {
        let row = sqlx::query(&format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        let m = row.as_ref().map(monitor_from_row).transpose()?.ok_or(StoreError::NotFound)?;
        if !scope.includes(m.tenant) {
            return Err(StoreError::NotFound);
        }
        Ok(m)
    }

    /// Returns the monitors in scope (optionally of one tenant), by tenant then name.
    pub async fn list_monitors(&self, scope: &Scope, tenant: Option<TenantId>) -> Result<Vec<Monitor>, StoreError> {
        let mut sql = format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE 1 = 1");
        let mut binds = Vec::new();
        if !scope.push_clause(tenant, "tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        sql.push_str(" ORDER BY tenant_id, name, id");
        crate::with_binds(&sql, &binds).fetch_all(&self.db.pool).await?.iter().map(monitor_from_row).collect()
    }

    /// Returns the monitors a probe runs.
    pub async fn probe_monitors(&self, probe: &Probe) -> Result<Vec<Monitor>, StoreError> {
        sqlx::query(&format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE probe_id = $1 ORDER BY id"))
            .bind(probe.id.to_string())
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(monitor_from_row)
            .collect()
    }

    /// Returns the stored states of the monitors in scope.
    pub async fn monitor_states(&self, scope: &Scope, tenant: Option<TenantId>) -> Result<Vec<MonitorState>, StoreError> {
        let mut sql = "SELECT s.state FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id WHERE 1 = 1".to_string();
        let mut binds = Vec::new();
        if !scope.push_clause(tenant, "m.tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        crate::with_binds(&sql, &binds).fetch_all(&self.db.pool).await?.iter().map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>(0)?)?)).collect()
    }

    /// Queues results a remote probe posted, for the node that runs the monitor. Any
    /// node takes them, so a probe may post to whichever node its address reaches.
    /// Results of monitors the probe does not run are dropped; returns how many were
    /// queued.
    pub async fn queue_probe_results(&self, probe: &Probe, results: &[CheckResult]) -> Result<u64, StoreError> {
        if results.is_empty() {
            return Ok(0);
        }
        let now = mamori_core::time::now_ms();
        let mut tx = self.db.pool.begin().await?;
        let mut queued = 0;
        for r in results {
            queued += sqlx::query(
                "INSERT INTO probe_inbox (monitor_id, result, received_at) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM monitors WHERE id = $1 AND probe_id = $4)",
            )
            .bind(r.monitor.to_string())
            .bind(serde_json::to_string(r)?)
            .bind(now)
            .bind(probe.id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Returns up to `limit` queued probe results, oldest first, with their sequence
    /// numbers (for [`Store::delete_probe_results`]). For the monitor's holder.
    pub async fn queued_probe_results(&self, _grant: &CrossTenant, limit: i64) -> Result<Vec<(i64, CheckResult)>, StoreError> {
        let rows = sqlx::query("SELECT seq, result FROM probe_inbox ORDER BY seq LIMIT $1").bind(limit).fetch_all(&self.db.pool).await?;
        rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)?, serde_json::from_str(&r.try_get::<String, _>(1)?)?))).collect()
    }

    /// Deletes queued probe results up to and including `seq`, once applied.
    pub async fn delete_probe_results(&self, _grant: &CrossTenant, seq: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM probe_inbox WHERE seq <= $1").bind(seq).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Saves states and results in one transaction (the engine's batch write).
    pub async fn save_monitor_batch(&self, _grant: &CrossTenant, states: &[MonitorState], results: &[CheckResult]) -> Result<(), StoreError> {
        if states.is_empty() && results.is_empty() {
            return Ok(());
        }
        // In-process writes go one at a time (as audited writes do), and every
        // transaction starts with a write: SQLite cannot upgrade a read transaction while
        // another connection writes, and would fail at once instead of waiting.
        let (_guard, mut tx) = self.begin_write().await?;
        for s in states {
            sqlx::query("DELETE FROM monitor_state WHERE monitor_id = $1").bind(s.monitor.to_string()).execute(&mut *tx).await?;
            // The monitor may have been deleted meanwhile; then there is nothing to save.
            sqlx::query("INSERT INTO monitor_state (monitor_id, state) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM monitors WHERE id = $3)")
                .bind(s.monitor.to_string())
                .bind(serde_json::to_string(s)?)
                .bind(s.monitor.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for r in results {
            sqlx::query("INSERT INTO monitor_results (monitor_id, at, status, rt_ms, reason) SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM monitors WHERE id = $6)")
                .bind(r.monitor.to_string())
                .bind(r.at)
                .bind(r.status.as_str())
                .bind(i64::from(r.rt_ms))
                .bind(r.reason.as_ref().map(serde_json::to_string).transpose()?)
                .bind(r.monitor.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Returns a monitor's results in `[from, to)`, oldest first.
    pub async fn monitor_results(&self, scope: &Scope, id: MonitorId, from_ms: i64, to_ms: i64, limit: i64) -> Result<Vec<ResultRow>, StoreError> {
        self.get_monitor(scope, id).await?;
        let rows =
            sqlx::query("SELECT at, status, rt_ms, reason FROM monitor_results WHERE monitor_id = $1 AND at >= $2 AND at < $3 ORDER BY at DESC LIMIT $4")
                .bind(id.to_string())
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit.clamp(1, MAX_RESULT_ROWS))
                .fetch_all(&self.db.pool)
                .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let reason: Option<String> = r.try_get(3)?;
                Ok(ResultRow {
                    at: r.try_get(0)?,
                    status: r.try_get::<String, _>(1)?.parse().map_err(|_| corrupt("status"))?,
                    rt_ms: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
                    reason: reason.map(|s| serde_json::from_str::<Reason>(&s)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    /// Deletes results older than `before_ms`; returns how many.
    pub async fn purge_monitor_results(&self, _grant: &CrossTenant, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM monitor_results WHERE at < $1").bind(before_ms).execute(&self.db.pool).await?.rows_affected())
    }

    /// Opens a fault record (the engine).
    pub async fn open_fault(&self, _grant: &CrossTenant, fault: &Fault) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        sqlx::query(&format!("INSERT INTO faults ({FAULT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(fault.id.to_string())
            .bind(fault.tenant.to_string())
            .bind(fault.monitor.to_string())
            .bind(&fault.monitor_name)
            .bind(fault.opened_at)
            .bind(fault.closed_at)
            .bind(serde_json::to_string(&fault.cause)?)
            .bind(fault.acknowledged_by.clone())
            .execute(&mut *tx)
            .await?;
        for e in &fault.timeline {
            insert_log(&mut tx, fault.id, e.at, "entry", serde_json::to_string(e)?).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes a fault at `at` with a last timeline entry (the engine).
    pub async fn close_fault(&self, _grant: &CrossTenant, id: FaultId, at: i64, entry: &FaultEntry) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        sqlx::query("UPDATE faults SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL").bind(at).bind(id.to_string()).execute(&mut *tx).await?;
        insert_log(&mut tx, id, entry.at, "entry", serde_json::to_string(entry)?).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a timeline entry made by the engine.
    pub async fn add_fault_entry(&self, _grant: &CrossTenant, id: FaultId, entry: &FaultEntry) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        insert_log(&mut tx, id, entry.at, "entry", serde_json::to_string(entry)?).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a notification sent (or tried) for a fault.
    pub async fn add_fault_notification(&self, _grant: &CrossTenant, id: FaultId, n: &Notification) -> Result<(), StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        insert_log(&mut tx, id, n.at, "notification", serde_json::to_string(n)?).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Returns a fault with its timeline and notifications.
    pub async fn get_fault(&self, scope: &Scope, id: FaultId) -> Result<Fault, StoreError> {
        let row = sqlx::query(&format!("SELECT {FAULT_COLUMNS} FROM faults WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        let mut f = row.as_ref().map(fault_from_row).transpose()?.ok_or(StoreError::NotFound)?;
        if !scope.includes(f.tenant) {
            return Err(StoreError::NotFound);
        }
        for r in sqlx::query("SELECT kind, body FROM fault_log WHERE fault_id = $1 ORDER BY seq").bind(id.to_string()).fetch_all(&self.db.pool).await? {
            let body: String = r.try_get(1)?;
            match r.try_get::<String, _>(0)?.as_str() {
                "notification" => f.notifications.push(serde_json::from_str(&body)?),
                _ => f.timeline.push(serde_json::from_str(&body)?),
            }
        }
        Ok(f)
    }

    /// Lists faults in scope, newest first (without timelines), at most 1000.
    pub async fn list_faults(&self, scope: &Scope, filter: &FaultFilter) -> Result<Vec<Fault>, StoreError> {
        self.query_faults(scope, filter, Some(filter.limit.unwrap_or(100).clamp(1, 1000))).await
    }

    /// Every fault in scope that overlaps the filter's period (for uptime figures, which
    /// must not be cut at a page size).
    pub async fn all_faults(&self, scope: &Scope, filter: &FaultFilter) -> Result<Vec<Fault>, StoreError> {
        self.query_faults(scope, filter, None).await
    }

    async fn query_faults(&self, scope: &Scope, filter: &FaultFilter, limit: Option<i64>) -> Result<Vec<Fault>, StoreError> {
        let mut sql = format!("SELECT {FAULT_COLUMNS} FROM faults WHERE 1 = 1");
        let mut binds = Vec::new();
        if !scope.push_clause(filter.tenant, "tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        if let Some(m) = filter.monitor {
            binds.push(m.to_string());
            sql.push_str(&format!(" AND monitor_id = ${}", binds.len()));
        }
        if filter.open_only {
            sql.push_str(" AND closed_at IS NULL");
        }
        let mut n = binds.len();
        let mut times = Vec::new();
        // A fault overlaps [from, to) when it opened before `to` and was open at `from`.
        if let Some(f) = filter.from_ms {
            n += 1;
            sql.push_str(&format!(" AND (closed_at IS NULL OR closed_at >= ${n})"));
            times.push(f);
        }
        if let Some(t) = filter.to_ms {
            n += 1;
            sql.push_str(&format!(" AND opened_at < ${n}"));
            times.push(t);
        }
        sql.push_str(" ORDER BY opened_at DESC");
        if let Some(l) = limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut q = crate::with_binds(&sql, &binds);
        for t in times {
            q = q.bind(t);
        }
        q.fetch_all(&self.db.pool).await?.iter().map(fault_from_row).collect()
    }

    /// Returns every open fault (the engine's own read, across tenants).
    pub async fn open_faults(&self, _grant: &CrossTenant) -> Result<Vec<Fault>, StoreError> {
        sqlx::query(&format!("SELECT {FAULT_COLUMNS} FROM faults WHERE closed_at IS NULL ORDER BY opened_at"))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(fault_from_row)
            .collect()
    }

    /// Adds a person's comment to a fault (audited).
    pub async fn comment_fault(&self, scope: &Scope, actor: &Actor, id: FaultId, text: &str, acknowledge: bool) -> Result<(), StoreError> {
        let f = self.get_fault(scope, id).await?;
        let text = text.trim();
        if text.chars().count() > 2000 || (text.is_empty() && !acknowledge) {
            return Err(Problem::new("comment", "invalid_comment", "コメントは1〜2000文字で入力してください", "a comment must be 1-2000 characters").into());
        }
        let now = mamori_core::time::now_ms();
        let (kind, ja, en) = if acknowledge {
            ("acknowledged", format!("{} が対応を開始しました。{text}", actor.name), format!("{} acknowledged. {text}", actor.name))
        } else {
            ("comment", text.to_string(), text.to_string())
        };
        let entry = FaultEntry { at: now, kind: kind.into(), ja: ja.trim().into(), en: en.trim().into(), actor: Some(actor.name.clone()) };
        let (_guard, mut tx) = self.begin_write().await?;
        insert_log(&mut tx, id, now, "entry", serde_json::to_string(&entry)?).await?;
        if acknowledge {
            sqlx::query("UPDATE faults SET acknowledged_by = $1 WHERE id = $2").bind(&actor.name).bind(id.to_string()).execute(&mut *tx).await?;
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(f.tenant),
                action: if acknowledge { "fault.acknowledge" } else { "fault.comment" },
                target_kind: "fault",
                target_id: Some(id.to_string()),
                before: None,
                after: Some(json!({"text": text})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Registers a remote probe; `token_hash` is the SHA-256 (hex) of its token.
    pub async fn create_probe(&self, scope: &Scope, actor: &Actor, tenant: Option<TenantId>, name: &str, token_hash: &str) -> Result<Probe, StoreError> {
        let reach = match tenant {
            Some(t) => scope.includes(t),
            None => scope.is_all(),
        };
        if !reach {
            return Err(StoreError::Forbidden("a tenant registers probes for itself only"));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Problem::new("name", "invalid_name", "プローブ名は1〜100文字で入力してください", "probe name must be 1-100 characters").into());
        }
        let p = Probe { id: ProbeId::new(), tenant, name: name.into(), created_at: mamori_core::time::now_ms(), last_seen_at: None, last_ip: None };
        let (_guard, mut tx) = self.begin_write().await?;
        // An operator names any tenant id: one that is not there is not found (not a
        // foreign-key failure).
        if let Some(t) = tenant
            && sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(t.to_string()).fetch_optional(&mut *tx).await?.is_none()
        {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO probes (id, tenant_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(p.id.to_string())
            .bind(tenant.map(|t| t.to_string()))
            .bind(&p.name)
            .bind(token_hash)
            .bind(p.created_at)
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change { actor, tenant, action: "probe.create", target_kind: "probe", target_id: Some(p.id.to_string()), before: None, after: Some(json!(p)) },
        )
        .await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Lists probes in scope: a tenant sees its own.
    pub async fn list_probes(&self, scope: &Scope) -> Result<Vec<Probe>, StoreError> {
        let mut sql = format!("SELECT {PROBE_COLUMNS} FROM probes WHERE 1 = 1");
        let mut binds = Vec::new();
        if !scope.push_clause(None, "tenant_id", 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        sql.push_str(" ORDER BY name");
        crate::with_binds(&sql, &binds).fetch_all(&self.db.pool).await?.iter().map(probe_from_row).collect()
    }

    /// Deletes a probe; its monitors go back to the core.
    pub async fn delete_probe(&self, scope: &Scope, actor: &Actor, id: ProbeId) -> Result<(), StoreError> {
        let p = self.list_probes(scope).await?.into_iter().find(|p| p.id == id).ok_or(StoreError::NotFound)?;
        let (_guard, mut tx) = self.begin_write().await?;
        let rows = sqlx::query("SELECT id, spec FROM monitors WHERE probe_id = $1").bind(id.to_string()).fetch_all(&mut *tx).await?;
        for r in rows {
            let mut spec: MonitorSpec = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
            spec.probe = None;
            sqlx::query("UPDATE monitors SET spec = $1, probe_id = NULL WHERE id = $2")
                .bind(serde_json::to_string(&spec)?)
                .bind(r.try_get::<String, _>(0)?)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM probes WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: p.tenant,
                action: "probe.delete",
                target_kind: "probe",
                target_id: Some(id.to_string()),
                before: Some(json!(p)),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        self.bump_monitors();
        Ok(())
    }

    /// Finds the probe of a token hash and notes the contact.
    pub async fn probe_by_token(&self, token_hash: &str, ip: Option<&str>) -> Result<Option<Probe>, StoreError> {
        let row = sqlx::query(&format!("SELECT {PROBE_COLUMNS} FROM probes WHERE token_hash = $1")).bind(token_hash).fetch_optional(&self.db.pool).await?;
        let Some(p) = row.as_ref().map(probe_from_row).transpose()? else { return Ok(None) };
        let now = mamori_core::time::now_ms();
        sqlx::query("UPDATE probes SET last_seen_at = $1, last_ip = $2 WHERE id = $3")
            .bind(now)
            .bind(ip.map(String::from))
            .bind(p.id.to_string())
            .execute(&self.db.pool)
            .await?;
        Ok(Some(Probe { last_seen_at: Some(now), last_ip: ip.map(String::from), ..p }))
    }

    /// Returns a watch that moves whenever a monitor or probe changes in this process.
    pub fn watch_monitors(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.monitors_changed.subscribe()
    }

    fn bump_monitors(&self) {
        self.inner.monitors_changed.send_modify(|v| *v += 1);
    }
}

async fn insert_log(tx: &mut crate::Tx<'_>, fault: FaultId, at: i64, kind: &str, body: String) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO fault_log (fault_id, at, kind, body) VALUES ($1, $2, $3, $4)")
        .bind(fault.to_string())
        .bind(at)
        .bind(kind)
        .bind(body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Returns the share of `[from, to)` (clipped to the monitor's life, from `created_at`
/// to `now`) not covered by the given faults, in percent; None when no time is left.
pub fn uptime_percent(created_at: i64, faults: &[Fault], from: i64, to: i64, now: i64) -> Option<f64> {
    let start = from.max(created_at);
    let end = to.min(now);
    if end <= start {
        return None;
    }
    let mut spans: Vec<(i64, i64)> = faults.iter().map(|f| (f.opened_at.max(start), f.closed_at.unwrap_or(now).min(end))).filter(|(a, b)| b > a).collect();
    spans.sort_unstable();
    let mut down = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for (a, b) in spans {
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                down += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = cur {
        down += b - a;
    }
    Some(100.0 * (1.0 - down as f64 / (end - start) as f64))
}

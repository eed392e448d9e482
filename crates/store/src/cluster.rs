//! Nodes and leases of the nodes that share one config store.
//!
//! - A **lease** gives one node the right to run a singleton component. It is taken
//!   or renewed in one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE` the lease is
//!   ours or has expired), so two nodes can never both hold it. Expiry is read from
//!   the database clock on PostgreSQL, so nodes whose clocks disagree still agree on
//!   who holds a lease. `epoch` grows each time the lease changes hands.
//! - A **node report** is what a running node says of itself every few seconds (its
//!   components and their states, as JSON) for the console's node list.
//!
//! Leases and reports are platform data of the component runtime, not tenant data:
//! they are not audited changes (nobody makes them), and only operators list them.

use crate::access::Scope;
use crate::{Dialect, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

/// A lease as held after a successful take or renewal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// Database time (Unix ms) at which the lease lapses unless renewed.
    pub expires_at: i64,
}

/// A lease as stored, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LeaseRecord {
    /// The lease's name, e.g. `component:monitor`.
    pub name: String,
    /// The node holding it (its process id, see [`NodeReport::id`]).
    pub holder: String,
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// When the current holder took it (Unix ms).
    pub acquired_at: i64,
    /// When it lapses unless renewed (Unix ms).
    pub expires_at: i64,
}

/// What a node says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct NodeReport {
    /// Unique per process: the node name, and a random suffix made at start.
    pub id: String,
    /// The node name (`[server] node_name`, else the host name).
    pub name: String,
    /// The Mamori version it runs.
    pub version: String,
    /// When the process started (Unix ms).
    pub started_at: i64,
    /// When it last reported (Unix ms, its own clock).
    pub seen_at: i64,
    /// Its components and their states.
    pub status: Value,
}

/// A component running on a node that reported lately, as the node said
/// ([`Store::running_components`]).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ComponentStatus {
    /// The node's name.
    #[serde(default)]
    pub node: String,
    /// The component.
    pub name: String,
    /// `active`, `standby`, `degraded`, `restarting`, …
    pub state: String,
    /// What operators should know of it while it runs.
    #[serde(default)]
    pub notices: Vec<ComponentNotice>,
}

/// A notice of a running component (e.g. `no_mail_server`).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ComponentNotice {
    /// Stable code.
    pub code: String,
    /// For people, in Japanese.
    pub ja: String,
    /// For people, in English.
    pub en: String,
    /// Since when (Unix ms).
    pub since: i64,
}

/// A node that has not reported for this long (Unix ms) is taken as stopped (nodes
/// report every few seconds).
pub const SILENT_AFTER_MS: i64 = 30_000;

impl Store {
    /// Returns the components of the nodes that reported lately (within
    /// [`SILENT_AFTER_MS`]), with their states and notices, so that any node's console
    /// shows what a component on another node says. Platform data without tenant data:
    /// any signed-in view may show it (the notices are written for everyone who reads
    /// the page).
    pub async fn running_components(&self) -> Result<Vec<ComponentStatus>, StoreError> {
        let since = mamori_core::time::now_ms() - SILENT_AFTER_MS;
        let rows = sqlx::query("SELECT name, status FROM nodes WHERE seen_at >= $1 ORDER BY name").bind(since).fetch_all(&self.db.pool).await?;
        let mut out = Vec::new();
        for r in rows {
            let node: String = r.try_get(0)?;
            let status: Value = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
            let components = status.get("components").and_then(Value::as_array).cloned().unwrap_or_default();
            // A report this build cannot read (another version's) is left out, not an error.
            out.extend(
                components.into_iter().filter_map(|c| serde_json::from_value::<ComponentStatus>(c).ok()).map(|c| ComponentStatus { node: node.clone(), ..c }),
            );
        }
        Ok(out)
    }

    /// Returns the time by the database's clock on PostgreSQL (shared by every node),
    /// by this machine's clock on SQLite (one machine).
    async fn clock_ms(&self) -> Result<i64, StoreError> {
        match self.db.dialect {
            Dialect::Sqlite => Ok(mamori_core::time::now_ms()),
            Dialect::Postgres => {
                let row = sqlx::query("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)").fetch_one(&self.db.pool).await?;
                Ok(row.try_get::<i64, _>(0)?)
            }
        }
    }

    /// Takes the lease `name` for `holder`, or renews it, for `ttl_ms` from now. Returns
    /// None when another holder has it and it has not lapsed.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<Lease>, StoreError> {
        let now = self.clock_ms().await?;
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.acquired_at \
             RETURNING epoch, expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| Ok(Lease { epoch: r.try_get(0)?, expires_at: r.try_get(1)? })).transpose()
    }

    /// Gives the lease up (on shutdown), so another node takes over at once instead of
    /// after the lease lapses. Does nothing when `holder` does not hold it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2").bind(name).bind(holder).execute(&self.db.pool).await?;
        Ok(())
    }

    /// Returns every lease. Operators only.
    pub async fn list_leases(&self, scope: &Scope) -> Result<Vec<LeaseRecord>, StoreError> {
        operators_only(scope)?;
        let rows = sqlx::query("SELECT name, holder, epoch, acquired_at, expires_at FROM leases ORDER BY name").fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRecord { name: r.try_get(0)?, holder: r.try_get(1)?, epoch: r.try_get(2)?, acquired_at: r.try_get(3)?, expires_at: r.try_get(4)? })
            })
            .collect()
    }

    /// Records what a node says of itself.
    pub async fn report_node(&self, report: &NodeReport) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, name, version, started_at, seen_at, status) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, status = excluded.status",
        )
        .bind(&report.id)
        .bind(&report.name)
        .bind(&report.version)
        .bind(report.started_at)
        .bind(report.seen_at)
        .bind(report.status.to_string())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Forgets nodes that have not reported since `before` (Unix ms).
    pub async fn forget_nodes(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM nodes WHERE seen_at < $1").bind(before).execute(&self.db.pool).await?.rows_affected())
    }

    /// Returns every node that reported, newest start first. Operators only.
    pub async fn list_nodes(&self, scope: &Scope) -> Result<Vec<NodeReport>, StoreError> {
        operators_only(scope)?;
        let rows =
            sqlx::query("SELECT id, name, version, started_at, seen_at, status FROM nodes ORDER BY name, started_at DESC").fetch_all(&self.db.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(NodeReport {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    version: r.try_get(2)?,
                    started_at: r.try_get(3)?,
                    seen_at: r.try_get(4)?,
                    status: serde_json::from_str(&r.try_get::<String, _>(5)?)?,
                })
            })
            .collect()
    }
}

fn operators_only(scope: &Scope) -> Result<(), StoreError> {
    if scope.is_all() { Ok(()) } else { Err(StoreError::Forbidden("only operators see the nodes of the platform")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store, crate::Authority) {
        let dir = tempfile::tempdir().unwrap();
        let (store, authority) = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        (dir, store, authority)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_takeover_after_lapse_or_release() {
        let (_d, s, _authority) = store().await;
        let a = s.acquire_lease("component:monitor", "a", 60_000).await.unwrap().expect("a takes the free lease");
        assert_eq!(a.epoch, 1);
        assert_eq!(s.acquire_lease("component:monitor", "b", 60_000).await.unwrap(), None, "b must not take a held lease");
        let renewed = s.acquire_lease("component:monitor", "a", 60_000).await.unwrap().expect("a renews");
        assert_eq!(renewed.epoch, 1, "a renewal keeps the epoch");
        // Another lease is independent.
        assert!(s.acquire_lease("component:retention", "b", 60_000).await.unwrap().is_some());
        // A lapsed lease changes hands and its epoch grows.
        s.acquire_lease("component:monitor", "a", -1).await.unwrap();
        let b = s.acquire_lease("component:monitor", "b", 60_000).await.unwrap().expect("b takes a lapsed lease");
        assert_eq!(b.epoch, 2);
        assert_eq!(s.acquire_lease("component:monitor", "a", 60_000).await.unwrap(), None);
        // Released: free at once; a release by a non-holder does nothing.
        s.release_lease("component:monitor", "a").await.unwrap();
        assert_eq!(s.acquire_lease("component:monitor", "a", 60_000).await.unwrap(), None);
        s.release_lease("component:monitor", "b").await.unwrap();
        assert_eq!(s.acquire_lease("component:monitor", "a", 60_000).await.unwrap().map(|l| l.epoch), Some(3));
    }

    #[tokio::test]
    async fn node_reports_are_for_operators() {
        let (_d, s, authority) = store().await;
        let mut r = NodeReport {
            id: "n1-x".into(),
            name: "n1".into(),
            version: "0.1.0".into(),
            started_at: 1,
            seen_at: 2,
            status: serde_json::json!({"components": []}),
        };
        s.report_node(&r).await.unwrap();
        r.seen_at = 5;
        s.report_node(&r).await.unwrap();
        let grant = authority.grant("test", "test").await.unwrap();
        let all = grant.scope();
        assert_eq!(s.list_nodes(&all).await.unwrap(), vec![r]);
        assert!(matches!(s.list_nodes(&grant.tenant(mamori_core::TenantId::new())).await, Err(StoreError::Forbidden(_))));
        assert_eq!(s.forget_nodes(10).await.unwrap(), 1);
        assert!(s.list_nodes(&all).await.unwrap().is_empty());
    }
}

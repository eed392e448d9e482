//! Persistence of Mamori.
//!
//! - [`Store`]: the config store (tenants, users, sessions, API tokens, policies,
//!   settings, audit log) on SQLite (default, one file under the data directory) or
//!   PostgreSQL (by URL), behind one API. Every function that reads or writes tenant data
//!   takes a [`Scope`] ([`access`]): a tenant-scoped caller cannot reach another
//!   tenant's rows, and a cross-tenant read by a person is recorded in the audit log.
//! - [`events::EventStore`]: the embedded, day-partitioned event store with full-text
//!   search and per-tenant retention.
//!
//! Every change goes through a `Store` method that writes the change and its audit
//! entry in one transaction.
#![deny(missing_docs)]

pub mod access;
mod audit;
mod blobs;
mod cluster;
mod db;
pub mod events;
mod evidence;
pub mod monitors;
mod network;
mod notify_tests;
mod policies;
mod secrets;
mod sessions;
mod settings;
mod tenants;
#[doc(hidden)]
pub mod testing;
mod tokens;
mod users;

pub use access::{Authenticated, Authority, CrossTenant, OwnAccount, Principal, Scope};
pub use audit::{AuditEntry, Change, GENESIS, VerifyReport};
pub use blobs::{BlobRecord, BlobRef, DeleteObject};
pub use cluster::{ComponentNotice, ComponentStatus, Lease, LeaseRecord, NodeReport, SILENT_AFTER_MS};
pub use db::{Db, Dialect, latest_schema_version, redact_url};
pub use evidence::{EventHold, NewEventHold};
pub use monitors::{FaultFilter, Probe};
pub use notify_tests::{NotifyTest, RETAKE_AFTER_MS};
pub use policies::PolicyWatch;
pub use secrets::{SealedSecret, SecretInfo};
pub use sessions::{NewSession, Session, SessionStage};
pub use tenants::ImportReport;
pub use tokens::{ApiToken, NewToken};
pub use users::{LoginRecord, NewUser, User, UserFilter, UserPatch};

use mamori_core::{ActorKind, Problem, Problems};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Returns the query with text parameters bound in order (those a scope clause pushed).
pub(crate) fn with_binds<'q>(sql: &'q str, binds: &'q [String]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    binds.iter().fold(sqlx::query(sql), |q, b| q.bind(b))
}

/// Errors of the config store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached.
    #[error("cannot connect to database {0}: {1}")]
    Connect(String, #[source] sqlx::Error),
    /// A query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration {0} failed: {1}")]
    Migration(i64, #[source] sqlx::Error),
    /// The configuration is wrong.
    #[error("store configuration: {0}")]
    Config(String),
    /// The record does not exist, or is outside the caller's scope (the two are
    /// deliberately indistinguishable).
    #[error("not found")]
    NotFound,
    /// The input is invalid; every problem is listed.
    #[error("invalid input: {0}")]
    Invalid(Problems),
    /// The caller's scope does not allow this change.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The caller may not do this, for a reason people are told (who may instead).
    #[error("refused: {}", .0.en)]
    Denied(Problem),
    /// A stored value could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<Problem> for StoreError {
    fn from(p: Problem) -> Self {
        StoreError::Invalid(p.into())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// The config store.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    inner: Arc<Inner>,
}

struct Inner {
    /// Serializes audit appends (and so every audited write) in this process.
    audit_lock: tokio::sync::Mutex<()>,
    /// Last time (ms) each (actor, resource) cross-tenant read was recorded.
    cross_seen: Mutex<HashMap<(String, String), i64>>,
    /// Newest policy revision known in this process.
    policy_rev: watch::Sender<i64>,
    /// Moves on every monitor or probe change in this process.
    monitors_changed: watch::Sender<u64>,
    /// Moves on every tenant or segment change seen (here, or by the poller).
    directory_rev: watch::Sender<u64>,
}

/// Cross-tenant reads of the same resource by the same actor are recorded at most once
/// in this window, so browsing does not flood the audit log.
const CROSS_TENANT_NOTE_MS: i64 = 10 * 60 * 1000;

impl Store {
    /// Connects to `url`, applies pending migrations, and returns the store with the
    /// [`Authority`] that mints cross-tenant grants: whoever opens the store holds it.
    pub async fn open(url: &str) -> Result<(Store, Authority), StoreError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        let rev = policies::current_revision(&db).await?;
        let (policy_rev, _) = watch::channel(rev);
        let store = Store {
            db,
            inner: Arc::new(Inner {
                audit_lock: tokio::sync::Mutex::new(()),
                cross_seen: Mutex::new(HashMap::new()),
                policy_rev,
                monitors_changed: watch::channel(0).0,
                directory_rev: watch::channel(0).0,
            }),
        };
        Ok((store.clone(), Authority::new(store)))
    }

    /// Returns the database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Returns the connection pool, for tests and admin commands that inspect tables.
    #[doc(hidden)]
    pub fn db_pool(&self) -> &sqlx::AnyPool {
        &self.db.pool
    }

    /// Begins an audited write: takes the audit lock and opens a transaction.
    pub(crate) async fn begin_write(&self) -> Result<(tokio::sync::MutexGuard<'_, ()>, Tx<'static>), StoreError> {
        let guard = self.inner.audit_lock.lock().await;
        // SQLite: take the write lock at BEGIN (waiting for the busy timeout), so a
        // transaction that reads first cannot fail at its first write when another
        // process (a CLI command, another tool) writes meanwhile.
        let tx = match self.db.dialect {
            Dialect::Sqlite => self.db.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.db.pool.begin().await?,
        };
        Ok((guard, tx))
    }

    /// Runs `select` (a query ending in a `WHERE` condition, no parameters) for the rows
    /// of `scope` by `column`, in `order`. A scope that reaches nothing reads nothing.
    pub(crate) async fn scoped_rows(&self, scope: &Scope, select: &str, column: &str, order: &str) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut sql = select.to_string();
        let mut binds = Vec::new();
        if !scope.push_clause(None, column, 0, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(order);
        Ok(with_binds(&sql, &binds).fetch_all(&self.db.pool).await?)
    }

    /// Records a standalone audit entry (for actions that change nothing in this store,
    /// such as an export or a login to a component).
    pub async fn record(&self, change: Change<'_>) -> Result<AuditEntry, StoreError> {
        let (_guard, mut tx) = self.begin_write().await?;
        let entry = audit::append(&mut tx, change).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Records that a person used a cross-tenant scope to read `resource`, at most once
    /// per actor and resource every ten minutes.
    pub async fn note_scope(&self, scope: &Scope, resource: &str) -> Result<(), StoreError> {
        let Some(grant) = scope.cross() else { return Ok(()) };
        self.note_cross_tenant(grant, resource).await
    }

    /// See [`Store::note_scope`].
    pub async fn note_cross_tenant(&self, grant: &CrossTenant, resource: &str) -> Result<(), StoreError> {
        let actor = grant.actor();
        if matches!(actor.kind, ActorKind::System | ActorKind::Cli) {
            return Ok(());
        }
        let now = mamori_core::time::now_ms();
        let key = (actor.name.clone(), resource.to_string());
        {
            let mut seen = self.inner.cross_seen.lock().map_err(|_| StoreError::Config("poisoned lock".into()))?;
            if seen.get(&key).is_some_and(|t| now - t < CROSS_TENANT_NOTE_MS) {
                return Ok(());
            }
            seen.insert(key, now);
        }
        self.record(Change { actor, tenant: None, action: "access.cross_tenant", target_kind: resource, target_id: None, before: None, after: None }).await?;
        Ok(())
    }

    /// Returns audit entries visible in `scope`, newest first, older than `before_seq`.
    pub async fn list_audit(&self, scope: &Scope, filter: &AuditFilter, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = format!("SELECT {} FROM audit_log WHERE seq < $1", audit::COLUMNS);
        let mut binds: Vec<String> = Vec::new();
        let mut n = 2;
        if !scope.push_clause(filter.tenant, "tenant_id", 1, &mut sql, &mut binds) {
            return Ok(Vec::new());
        }
        n += binds.len();
        if let Some(a) = filter.actor.as_deref().filter(|a| !a.is_empty()) {
            sql.push_str(&format!(" AND actor_name = ${n}"));
            binds.push(a.to_string());
            n += 1;
        }
        if let Some(a) = filter.action.as_deref().filter(|a| !a.is_empty()) {
            // A prefix, taken literally (`user.password_reset` has a `_`).
            sql.push_str(&format!(" AND action LIKE ${n} ESCAPE '\\'"));
            binds.push(format!("{}%", a.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
            n += 1;
        }
        if filter.without_reads {
            sql.push_str(" AND action <> 'access.cross_tenant'");
        }
        let mut times: Vec<i64> = Vec::new();
        if let Some(f) = filter.from_ms {
            sql.push_str(&format!(" AND time >= ${n}"));
            times.push(f);
            n += 1;
        }
        if let Some(t) = filter.to_ms {
            sql.push_str(&format!(" AND time < ${n}"));
            times.push(t);
            n += 1;
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${n}"));
        let mut q = sqlx::query(&sql).bind(before_seq.unwrap_or(i64::MAX));
        for b in &binds {
            q = q.bind(b);
        }
        for t in &times {
            q = q.bind(*t);
        }
        let rows = q.bind(limit.clamp(1, 10_000)).fetch_all(&self.db.pool).await?;
        self.note_scope(scope, "audit_log").await?;
        rows.iter().map(audit::from_row).collect()
    }

    /// Returns every audit entry visible in `scope` that matches `filter`, newest first,
    /// reading in pages (for exports, which must not be cut short).
    pub async fn export_audit(&self, scope: &Scope, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out: Vec<AuditEntry> = Vec::new();
        loop {
            let page = self.list_audit(scope, filter, out.last().map(|e| e.seq), 10_000).await?;
            let done = page.len() < 10_000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// Walks the whole audit chain and reports the first entry that breaks it.
    pub async fn verify_audit(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport { entries: 0, head: GENESIS.to_string(), first_bad: None };
        let mut prev = GENESIS.to_string();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(&format!("SELECT {} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 5000", audit::COLUMNS))
                .bind(after)
                .fetch_all(&self.db.pool)
                .await?;
            if rows.is_empty() {
                break;
            }
            let entries = rows.iter().map(audit::from_row).collect::<Result<Vec<_>, _>>()?;
            after = entries.last().map(|e| e.seq).unwrap_or(after);
            audit::verify_chain(entries.into_iter(), &mut report, &mut prev);
        }
        Ok(report)
    }

    /// Closes the database pool.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// Filters of the audit log view.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this tenant's entries (operators).
    pub tenant: Option<mamori_core::TenantId>,
    /// Only this actor name.
    pub actor: Option<String>,
    /// Only actions starting with this prefix (e.g. `user.`).
    pub action: Option<String>,
    /// From (Unix ms).
    pub from_ms: Option<i64>,
    /// To, exclusive (Unix ms).
    pub to_ms: Option<i64>,
    /// Leave out the notes of operators' cross-tenant reads (`access.cross_tenant`):
    /// the console's default view, so list views do not bury the changes.
    pub without_reads: bool,
}

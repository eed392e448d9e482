//! The config-store connection: SQLite (default) or PostgreSQL behind one sqlx `Any`
//! pool, and the migration runner.
//!
//! All SQL in this crate is written once, with `$1`-style placeholders, in the subset
//! both databases speak (sqlx binds `$N` for SQLite too). Where the dialects differ
//! (migrations), each has its own file.

use crate::StoreError;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// One migration, with its SQL for each dialect.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("migrations/0001_init.sqlite.sql"),
        postgres: include_str!("migrations/0001_init.postgres.sql"),
    },
    Migration {
        version: 2,
        name: "monitors",
        sqlite: include_str!("migrations/0002_monitors.sqlite.sql"),
        postgres: include_str!("migrations/0002_monitors.postgres.sql"),
    },
    Migration {
        version: 3,
        name: "cluster",
        sqlite: include_str!("migrations/0003_cluster.sqlite.sql"),
        postgres: include_str!("migrations/0003_cluster.postgres.sql"),
    },
    Migration {
        version: 4,
        name: "probe_inbox",
        sqlite: include_str!("migrations/0004_probe_inbox.sqlite.sql"),
        postgres: include_str!("migrations/0004_probe_inbox.postgres.sql"),
    },
    Migration {
        version: 5,
        name: "network",
        sqlite: include_str!("migrations/0005_network.sqlite.sql"),
        postgres: include_str!("migrations/0005_network.postgres.sql"),
    },
    Migration {
        version: 6,
        name: "vault",
        sqlite: include_str!("migrations/0006_vault.sqlite.sql"),
        postgres: include_str!("migrations/0006_vault.postgres.sql"),
    },
    Migration {
        version: 7,
        name: "policy_feed",
        sqlite: include_str!("migrations/0007_policy_feed.sqlite.sql"),
        postgres: include_str!("migrations/0007_policy_feed.postgres.sql"),
    },
    Migration {
        version: 8,
        name: "policy_schedule",
        sqlite: include_str!("migrations/0008_policy_schedule.sqlite.sql"),
        postgres: include_str!("migrations/0008_policy_schedule.postgres.sql"),
    },
    Migration {
        version: 9,
        name: "accounts_and_approval",
        sqlite: include_str!("migrations/0009_accounts_and_approval.sqlite.sql"),
        postgres: include_str!("migrations/0009_accounts_and_approval.postgres.sql"),
    },
    Migration {
        version: 10,
        name: "notify_tests",
        sqlite: include_str!("migrations/0010_notify_tests.sqlite.sql"),
        postgres: include_str!("migrations/0010_notify_tests.postgres.sql"),
    },
    Migration {
        version: 11,
        name: "event_holds",
        sqlite: include_str!("migrations/0011_event_holds.sqlite.sql"),
        postgres: include_str!("migrations/0011_event_holds.postgres.sql"),
    },
];

/// Returns the newest schema version this build knows.
pub fn latest_schema_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// A connected config store database.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

impl Db {
    /// Connects to `url`: `sqlite://PATH` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Config(format!("unsupported database url scheme in '{}'", redact_url(url))));
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new().max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 }).acquire_timeout(Duration::from_secs(30));
        let pool = options.connect(&url).await.map_err(|e| StoreError::Connect(redact_url(&url), e))?;
        if dialect == Dialect::Sqlite {
            // WAL lets readers run beside the writer and is a property of the file, so
            // setting it once is enough. sqlx turns foreign keys on for every
            // connection, and SQLite's default `synchronous=FULL` makes a commit durable
            // before it returns.
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        }
        Ok(Db { pool, dialect })
    }

    /// Returns the dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies every migration not yet applied; returns how many ran. Safe to call from
    /// several nodes at once on PostgreSQL (an advisory lock serializes them).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock(7411001)").execute(&mut *conn).await?;
        }
        let result = self.migrate_locked(&mut conn).await;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(7411001)").execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_locked(&self, conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> Result<usize, StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS mamori_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            .execute(&mut **conn)
            .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM mamori_migrations")
            .fetch_all(&mut **conn)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        if let Some(newest) = applied.iter().max()
            && *newest > latest_schema_version()
        {
            return Err(StoreError::Config(format!(
                "database schema version {newest} is newer than this build knows ({}); upgrade mamori",
                latest_schema_version()
            )));
        }
        let mut ran = 0;
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            let sql = match self.dialect {
                Dialect::Sqlite => m.sqlite,
                Dialect::Postgres => m.postgres,
            };
            let mut tx = sqlx::Acquire::begin(&mut **conn).await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| StoreError::Migration(m.version, e))?;
            sqlx::query("INSERT INTO mamori_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(mamori_core::time::now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            ran += 1;
        }
        Ok(ran)
    }

    /// Returns the applied schema version (0 for an empty database).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM mamori_migrations").fetch_one(&self.pool).await;
        match row {
            Ok(r) => Ok(r.try_get::<i64, _>(0)?),
            Err(_) => Ok(0),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Returns the URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(super::redact_url("postgres://mamori:s3cret@db:5432/m"), "postgres://mamori:***@db:5432/m");
        assert_eq!(super::redact_url("sqlite://data/mamori.db"), "sqlite://data/mamori.db");
    }
}

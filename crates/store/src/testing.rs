//! Support for tests that must run against both backends (used by this crate's and the
//! console's tests; not part of the product's API).
//!
//! [`backends`] returns a SQLite URL in the given directory and, when
//! `MAMORI_TEST_PG_URL` names a PostgreSQL server, a URL of a fresh database on it.
//! Under CI (`CI=true`) a missing `MAMORI_TEST_PG_URL` is an error, so the PostgreSQL
//! half of the suite can never be skipped silently.

use std::path::Path;

/// Returns `(name, url)` of every backend a test should run against.
pub async fn backends(dir: &Path) -> Vec<(&'static str, String)> {
    let mut out = vec![("sqlite", format!("sqlite://{}", dir.join("mamori.db").display()))];
    match std::env::var("MAMORI_TEST_PG_URL") {
        Ok(admin) if !admin.is_empty() => out.push(("postgres", fresh_postgres_database(&admin).await)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("MAMORI_TEST_PG_URL is not set under CI: the PostgreSQL tests must run (scripts/test starts a server)");
            }
            eprintln!("note: MAMORI_TEST_PG_URL is not set; PostgreSQL tests skipped");
        }
    }
    out
}

/// Creates a new, empty database on the server of `admin_url` and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("mamori_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap_or_else(|e| panic!("cannot reach test PostgreSQL: {e}"));
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// Creates a town with the code made from `five` (the check digit added) and returns it.
pub async fn town(store: &crate::Store, grant: &crate::CrossTenant, five: &str) -> mamori_core::TenantId {
    use mamori_core::{LocalGovCode, NewTenant};
    let code = LocalGovCode::from_five(five).unwrap_or_else(|p| panic!("test code {five}: {p}"));
    let t = NewTenant { code: code.to_string(), name: format!("町{five}"), kana: "マチ".into(), kind: "town".into(), ..Default::default() };
    let checked = t.check().unwrap_or_else(|p| panic!("test town {five}: {p:?}"));
    match store.create_tenant(&grant.scope(), grant.actor(), checked).await {
        Ok(t) => t.id,
        Err(e) => panic!("test town {five}: {e}"),
    }
}

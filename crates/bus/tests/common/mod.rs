//! What the bus tests share: events of one tenant and a grant over every tenant.

use mamori_core::{Event, EventClass, TenantId};
use mamori_store::CrossTenant;

pub const BASE: i64 = 1_780_000_000_000;

pub fn events(tenant: TenantId, from: usize, n: usize) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let mut e = Event::new(tenant, BASE + i as i64, EventClass::HTTP_ACTIVITY, format!("不正アクセスの試行 {i}"), "test");
            e.raw = Some(format!("GET /login?n={i} HTTP/1.1 403"));
            e
        })
        .collect()
}

pub async fn grant() -> (tempfile::TempDir, CrossTenant) {
    let dir = tempfile::tempdir().unwrap();
    let (_, authority) = mamori_store::Store::open(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
    let grant = authority.grant("test", "test").await.unwrap();
    (dir, grant)
}

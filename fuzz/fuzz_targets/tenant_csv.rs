//! Tenant CSV import: never panics, and whatever it accepts exports and imports back to
//! the same rows (no loss in the round trip).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::{Tenant, TenantId};

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = mamori_console::import_tenants_csv(data) else { return };
    let tenants: Vec<Tenant> = rows
        .iter()
        .map(|r| r.clone().into_tenant(TenantId::new(), 0, 0))
        .collect();
    let again = mamori_console::import_tenants_csv(mamori_console::export_tenants_csv(&tenants).as_bytes()).expect("an export re-imports");
    assert_eq!(again, rows);
});

//! Tenant CSV import: never panics, and whatever it accepts exports and imports back to
//! the same rows (no loss in the round trip).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::{Tenant, TenantId};

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = mamori_console::import_tenants_csv(data) else { return };
    let tenants: Vec<Tenant> = rows
        .iter()
        .map(|r| Tenant {
            id: TenantId::new(),
            code: r.code,
            name: r.name.clone(),
            kana: r.kana.clone(),
            kind: r.kind,
            contacts: r.contacts.clone(),
            network_ranges: r.network_ranges.clone(),
            services: r.services.clone(),
            notes: r.notes.clone(),
            created_at: 0,
            updated_at: 0,
        })
        .collect();
    let again = mamori_console::import_tenants_csv(mamori_console::export_tenants_csv(&tenants).as_bytes()).expect("an export re-imports");
    assert_eq!(again, rows);
});

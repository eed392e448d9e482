//! OCSF events from the API: never panic; an accepted event survives its own
//! serialization unchanged (what is stored is what was accepted).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::{Event, TenantId};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let tenant = TenantId::new();
    let Ok(e) = Event::from_ocsf(&doc, Some(tenant), |t| t == tenant) else { return };
    let back = Event::from_ocsf(&e.to_ocsf(), None, |t| t == tenant).expect("own output is accepted");
    assert_eq!((back.tenant, back.time, back.class, back.severity, back.disposition), (e.tenant, e.time, e.class, e.severity, e.disposition));
    assert_eq!((&back.message, &back.src, &back.dst, &back.user, &back.raw, &back.fields), (&e.message, &e.src, &e.dst, &e.user, &e.raw, &e.fields));
    let _ = e.search_text();
});

//! Event search parameters as typed into the console or sent to the API (times, field
//! conditions, cursors): never panic; every accepted query runs against a real event
//! store without error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_console::pages::SearchParams;
use mamori_core::{Actor, CrossTenant, Scope};
use mamori_store::events::EventStore;
use std::sync::OnceLock;

fn store() -> &'static (EventStore, tokio::runtime::Runtime) {
    static STORE: OnceLock<(EventStore, tokio::runtime::Runtime)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mamori-fuzz-events-{}", std::process::id()));
        (EventStore::open(&dir).expect("event store"), tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1f}').map(|s| Some(s.to_string()));
    let p = SearchParams {
        from: parts.next().flatten(),
        to: parts.next().flatten(),
        tenant: parts.next().flatten(),
        class: parts.next().flatten(),
        severity: parts.next().flatten(),
        disposition: parts.next().flatten(),
        q: parts.next().flatten(),
        fields: parts.next().flatten(),
        limit: Some(data.first().copied().unwrap_or(50) as usize),
        cursor: parts.next().flatten(),
    };
    let Ok(q) = p.to_query() else { return };
    let (events, rt) = store();
    let scope = Scope::All(CrossTenant::system(Actor::system()));
    match rt.block_on(events.query(&scope, &q)) {
        Ok(_) | Err(mamori_store::events::EventStoreError::BadQuery(_)) => {}
        Err(e) => panic!("accepted query failed: {e}"),
    }
});

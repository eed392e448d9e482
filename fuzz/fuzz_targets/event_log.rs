//! An event-log segment as read from a damaged disk: scanning it must never panic,
//! must stay fast (resynchronising is linear in practice), and gives only records
//! within the bounds a record may have.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, _damaged) = mamori_bus::log::intact_records(data);
    for (_offset, payload) in records {
        assert!(payload.len() <= mamori_bus::log::MAX_RECORD);
    }
});

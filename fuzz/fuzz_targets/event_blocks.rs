//! An event-store partition as read from a damaged disk: its directory and a block.
//! Reading must never panic nor allocate beyond the bounds of a block, whatever the
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| usize::from(*b) * data.len() / 256).unwrap_or(0);
    let (index, block) = data.split_at(split.min(data.len()));
    let _ = mamori_store::events::fuzz_partition_bytes(index, block);
});

//! A monitor document as the API and the console take it (JSON from a person or a
//! script): parsing and validation never panic, and a valid spec survives a round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::monitor::{MonitorSpec, StandardSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<MonitorSpec>(data) {
        if spec.validate().is_ok() {
            let again: MonitorSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(again, spec);
            let _ = spec.redacted();
            for m in &spec.maintenance {
                let _ = m.covers(0);
                let _ = m.covers(i64::MAX / 2);
            }
        }
    }
    if let Ok(set) = serde_json::from_slice::<StandardSet>(data) {
        if let Ok(specs) = set.specs() {
            for s in specs {
                assert!(s.validate().is_ok());
            }
        }
    }
});

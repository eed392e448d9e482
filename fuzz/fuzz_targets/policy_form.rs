//! A policy form as a browser posts it (any names, any values), read against a schema:
//! the monitor's notification policy, or (after a NUL byte) any JSON Schema the input
//! brings. Reading and rendering never panic, and what is read renders again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::PolicyValidator;
use mamori_web::{Lang, form};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let (schema, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => match serde_json::from_slice::<Value>(&data[..i]) {
            Ok(s) => (s, &data[i + 1..]),
            Err(_) => return,
        },
        None => (mamori_monitor::notify::MonitorPolicy.schema().unwrap_or_default(), data),
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let current = json!({"escalation": [{"after_minutes": 0, "tenant_contacts": true}], "repeat_minutes": 60, "notify_recovery": true});
    let (doc, _problems) = form::read(&schema, &current, &pairs);
    let _ = form::render(Lang::Ja, &schema, &doc).into_string();
    let _ = form::render(Lang::En, &schema, &Value::Null).into_string();
});

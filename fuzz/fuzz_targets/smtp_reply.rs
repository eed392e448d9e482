//! SMTP reply lines from a monitored (possibly hostile) server: the parser never
//! panics, and what it accepts is a real reply code.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if let Ok((code, _, _)) = mamori_monitor::check::parse_smtp_line(line) {
            assert!((200..600).contains(&code));
        }
    }
});

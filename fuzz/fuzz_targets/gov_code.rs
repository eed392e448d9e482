//! Local government codes and kana readings: never panic; a code that parses prints
//! back as itself and carries a correct check digit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_core::{LocalGovCode, validate_kana};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(code) = s.parse::<LocalGovCode>() {
        let text = code.to_string();
        assert_eq!(text, s.trim());
        let five: String = text.chars().take(5).collect();
        assert_eq!(LocalGovCode::from_five(&five).map(|c| c.to_string()).ok(), Some(text));
    }
    if let Ok(kana) = validate_kana(&s) {
        assert_eq!(validate_kana(&kana).as_deref(), Ok(kana.as_str()), "normalization is idempotent");
    }
});

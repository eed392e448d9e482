//! TOTP (RFC 6238) with HMAC-SHA1, 30-second steps and 6 digits: what every
//! authenticator app speaks. A code is accepted for the current step and one step either
//! side, and never twice (the store keeps the last step used).

use hmac::{Hmac, Mac};
use sha1::Sha1;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes bytes as RFC 4648 base32 without padding.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(char::from(ALPHABET[((buf >> (bits - 5)) & 31) as usize]));
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, spaces and padding ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = ALPHABET.iter().position(|a| char::from(*a) == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
        buf &= 0xff;
    }
    Some(out)
}

/// A TOTP generator for one secret.
pub struct Totp {
    key: Vec<u8>,
}

impl Totp {
    /// Returns a generator for a base32 secret.
    pub fn from_base32(secret: &str) -> Option<Self> {
        base32_decode(secret).filter(|k| k.len() >= 10).map(|key| Self { key })
    }

    /// Returns a new random secret (160 bits) in base32.
    pub fn new_secret() -> String {
        use rand::RngCore;
        let mut b = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut b);
        base32_encode(&b)
    }

    /// Returns the code of a time step.
    pub fn code_at_step(&self, step: i64) -> String {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&self.key) else { return String::new() };
        mac.update(&step.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let off = (h[19] & 0x0f) as usize;
        let bin = (u32::from(h[off] & 0x7f) << 24) | (u32::from(h[off + 1]) << 16) | (u32::from(h[off + 2]) << 8) | u32::from(h[off + 3]);
        format!("{:06}", bin % 1_000_000)
    }

    /// Returns the step of a time in ms.
    pub fn step_of(ms: i64) -> i64 {
        ms.div_euclid(30_000)
    }

    /// Returns the matching step (current ±1) for `code` at `now_ms`, if any.
    pub fn check(&self, code: &str, now_ms: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = Self::step_of(now_ms);
        [now, now - 1, now + 1].into_iter().find(|s| self.code_at_step(*s) == code)
    }

    /// Returns the `otpauth://` URI for authenticator apps.
    pub fn uri(secret: &str, account: &str, issuer: &str) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        };
        format!("otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30", enc(issuer), enc(account), enc(issuer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 key "12345678901234567890" (8-digit codes; the last 6 digits match).
        let t = Totp { key: b"12345678901234567890".to_vec() };
        for (secs, code8) in [(59i64, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")] {
            assert_eq!(t.code_at_step(secs / 30), code8[2..]);
        }
    }

    #[test]
    fn base32_round_trip() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("1!").is_none());
        let s = Totp::new_secret();
        assert_eq!(base32_decode(&s).unwrap().len(), 20);
    }

    #[test]
    fn window_and_format() {
        let t = Totp::from_base32(&Totp::new_secret()).unwrap();
        let now = 1_763_800_000_000;
        let code = t.code_at_step(Totp::step_of(now) - 1);
        assert_eq!(t.check(&code, now), Some(Totp::step_of(now) - 1));
        assert_eq!(t.check(&t.code_at_step(Totp::step_of(now) - 3), now), None);
        assert_eq!(t.check("12345", now), None);
        assert_eq!(t.check("abcdef", now), None);
    }
}

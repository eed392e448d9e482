//! Per-address login throttling. Account lockout stops guessing one account's password;
//! this stops one address from trying many accounts (password spraying): after
//! `MAX_FAILURES` failed attempts within `WINDOW_MS`, an address is refused until the
//! window ends, whatever login name it tries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed attempts allowed per address and window.
pub const MAX_FAILURES: u32 = 30;

impl LoginThrottle {
    /// Failed attempts allowed per address and window (same as [`MAX_FAILURES`]).
    pub const MAX: u32 = MAX_FAILURES;
}
/// Window length.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Addresses tracked at most; beyond, expired entries are dropped, then the oldest.
const MAX_TRACKED: usize = 100_000;

/// Failure counts per address.
#[derive(Default)]
pub struct LoginThrottle {
    by_ip: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl LoginThrottle {
    /// Returns true when `ip` may try to log in now.
    pub fn allowed(&self, ip: IpAddr, now_ms: i64) -> bool {
        let Ok(map) = self.by_ip.lock() else { return true };
        match map.get(&ip) {
            Some((start, n)) => now_ms - start >= WINDOW_MS || *n < MAX_FAILURES,
            None => true,
        }
    }

    /// Counts a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr, now_ms: i64) {
        let Ok(mut map) = self.by_ip.lock() else { return };
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now_ms - *start < WINDOW_MS);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(ip).or_insert((now_ms, 0));
        if now_ms - entry.0 >= WINDOW_MS {
            *entry = (now_ms, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_the_limit_until_the_window_ends() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(t.allowed(ip, 0));
            t.failed(ip, 0);
        }
        assert!(!t.allowed(ip, 1000));
        assert!(t.allowed(other, 1000), "other addresses are unaffected");
        assert!(t.allowed(ip, WINDOW_MS), "the window ends");
    }
}

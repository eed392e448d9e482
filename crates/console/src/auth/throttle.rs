//! Per-address login throttling. Account lockout stops guessing one account's password;
//! this stops one address from trying many accounts (password spraying): after
//! `MAX_FAILURES` failed attempts within `WINDOW_MS`, an address is refused until the
//! window ends, whatever login name it tries.

use mamori_http::ClientKey;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Per client (an IPv6 client by its /64): window start, failures, attempts in flight.
    by_ip: Mutex<HashMap<ClientKey, Entry>>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    start: i64,
    failures: u32,
    in_flight: u32,
}

/// One login attempt under way, counted against its address until it ends: parallel
/// attempts (many HTTP/2 streams at once, say) cannot get past the limit before their
/// failures are recorded. Mark it with [`Attempt::failed`]; an attempt dropped unmarked
/// counted as no failure.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: ClientKey,
    now_ms: i64,
    failed: AtomicBool,
}

impl Attempt<'_> {
    /// Records this attempt as failed.
    pub fn failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut map = self.throttle.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get_mut(&self.key) {
            e.in_flight = e.in_flight.saturating_sub(1);
            if self.failed.load(Ordering::Relaxed) {
                if self.now_ms - e.start >= WINDOW_MS {
                    e.start = self.now_ms;
                    e.failures = 0;
                }
                e.failures = e.failures.saturating_add(1);
            }
        }
    }
}

impl LoginThrottle {
    /// Starts an attempt from `ip`, or returns None when the address is refused now:
    /// its failures and the attempts still under way reach [`MAX_FAILURES`] within the
    /// window.
    pub fn begin(&self, ip: IpAddr, now_ms: i64) -> Option<Attempt<'_>> {
        // Counted as the connection caps count (an IPv6 client by its /64, which it
        // could otherwise rotate through).
        let key = ClientKey::of(ip);
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, e| now_ms - e.start < WINDOW_MS || e.in_flight > 0);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().filter(|(_, e)| e.in_flight == 0).min_by_key(|(_, e)| e.start).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let e = map.entry(key).or_insert(Entry { start: now_ms, failures: 0, in_flight: 0 });
        if now_ms - e.start >= WINDOW_MS {
            e.start = now_ms;
            e.failures = 0;
        }
        if e.failures.saturating_add(e.in_flight) >= MAX_FAILURES {
            return None;
        }
        e.in_flight += 1;
        Some(Attempt { throttle: self, key, now_ms, failed: AtomicBool::new(false) })
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
            t.begin(ip, 0).expect("allowed").failed();
        }
        assert!(t.begin(ip, 1000).is_none());
        assert!(t.begin(other, 1000).is_some(), "other addresses are unaffected");
        assert!(t.begin(ip, WINDOW_MS).is_some(), "the window ends");
    }

    #[test]
    fn successful_attempts_do_not_count_and_parallel_ones_cannot_overrun_the_limit() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            drop(t.begin(ip, 0).expect("successes are not failures"));
        }
        let in_flight: Vec<_> = (0..100).filter_map(|_| t.begin(ip, 0)).collect();
        assert_eq!(in_flight.len(), MAX_FAILURES as usize, "at most the limit at once");
        for a in &in_flight {
            a.failed();
        }
        drop(in_flight);
        assert!(t.begin(ip, 1).is_none());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let t = LoginThrottle::default();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            t.begin(ip, 0).expect("allowed").failed();
        }
        assert!(t.begin("2001:db8:1:2:ffff::1".parse().unwrap(), 1).is_none(), "another address of the same /64");
        assert!(t.begin("2001:db8:1:3::1".parse().unwrap(), 1).is_some());
    }
}

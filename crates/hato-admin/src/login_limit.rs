//! Limits on users' login (`POST /api/v1/auth/login`): password guessing is slowed per address
//! and per client IP, and password hashing — the expensive part — is bounded.
//!
//! - After `max_failures` failed logins for one address (or `max_failures_per_ip` from one client
//!   IP), that address (IP) is locked for `lockout_secs`; every further failure doubles the lock,
//!   up to an hour (exponential back-off, as NIST SP 800-63B §5.2.2 asks of verifiers: limit
//!   consecutive failed attempts). While locked, even the right password is answered
//!   `429 Too Many Requests` with `Retry-After` (RFC 6585 §4), so guessing learns nothing.
//! - A success resets the address's count (not the IP's: one user logging in must not clear a
//!   guesser's record from the same address).
//! - A record is forgotten an hour after its lock (or its last failure) ends.
//! - At most `max_concurrent_hashes` argon2 verifications run at once; a caller beyond that
//!   waits up to [`HASH_WAIT`], then gets 503.
//!
//! Memory is bounded: at most [`MAX_TRACKED`] addresses and as many IPs are remembered; when a
//! table is full, stale records go first, then the one that would be forgotten soonest.

use hato_core::Clock;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The longest lock (the back-off stops doubling here) and how long a record outlives its lock.
pub const MAX_LOCKOUT_SECS: i64 = 3600;
/// Records kept per table (addresses, IPs) at most.
pub const MAX_TRACKED: usize = 100_000;
/// How long a login waits for a free hashing slot before 503.
pub const HASH_WAIT: Duration = Duration::from_secs(5);
/// The longest key remembered for an address (RFC 5321 §4.5.3.1: a path is at most 256 octets).
const MAX_KEY_LEN: usize = 320;

/// The settings (`[admin]` in `hato.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    pub max_failures: u32,
    pub max_failures_per_ip: u32,
    pub lockout_secs: u64,
    pub max_concurrent_hashes: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 5,
            max_failures_per_ip: 20,
            lockout_secs: 60,
            max_concurrent_hashes: 4,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    /// Microseconds; 0 when never locked.
    locked_until: i64,
    last_failure: i64,
}

impl Record {
    fn forget_at(&self) -> i64 {
        self.locked_until.max(self.last_failure) + MAX_LOCKOUT_SECS * 1_000_000
    }
}

struct Table<K> {
    records: HashMap<K, Record>,
    threshold: u32,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(threshold: u32) -> Self {
        Table {
            records: HashMap::new(),
            threshold,
        }
    }

    /// Seconds left of `key`'s lock, if locked now.
    fn locked(&mut self, key: &K, now: i64) -> Option<u64> {
        let r = *self.records.get(key)?;
        if r.forget_at() <= now {
            self.records.remove(key);
            return None;
        }
        (r.locked_until > now).then(|| ((r.locked_until - now + 999_999) / 1_000_000) as u64)
    }

    fn fail(&mut self, key: &K, now: i64, base_secs: u64) {
        if let Some(r) = self.records.get(key)
            && r.forget_at() <= now
        {
            self.records.remove(key);
        }
        if !self.records.contains_key(key) && self.records.len() >= MAX_TRACKED {
            self.make_room(now);
        }
        let r = self.records.entry(key.clone()).or_insert(Record {
            failures: 0,
            locked_until: 0,
            last_failure: now,
        });
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        if r.failures >= self.threshold {
            // base, 2·base, 4·base, … up to an hour.
            let doublings = (r.failures - self.threshold).min(32);
            let secs = (base_secs as i64)
                .saturating_mul(1i64 << doublings)
                .min(MAX_LOCKOUT_SECS);
            r.locked_until = now + secs * 1_000_000;
        }
    }

    fn reset(&mut self, key: &K) {
        self.records.remove(key);
    }

    fn make_room(&mut self, now: i64) {
        self.records.retain(|_, r| r.forget_at() > now);
        if self.records.len() >= MAX_TRACKED
            && let Some(k) = self
                .records
                .iter()
                .min_by_key(|(_, r)| r.forget_at())
                .map(|(k, _)| k.clone())
        {
            self.records.remove(&k);
        }
    }
}

/// Why a login may not be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after_secs: u64,
}

pub struct LoginLimiter {
    limits: LoginLimits,
    clock: Arc<dyn Clock>,
    addresses: Mutex<Table<String>>,
    ips: Mutex<Table<IpAddr>>,
    hashes: Semaphore,
    hash_wait: Duration,
}

/// The key an address is counted under: its canonical form when it parses (so `Alice@X` and
/// `alice@x` share one count), else the text itself, lower-cased and cut to a bounded length.
pub fn address_key(text: &str) -> String {
    match hato_core::Address::parse(text) {
        Ok(a) => a.to_string(),
        Err(_) => text
            .trim()
            .to_lowercase()
            .chars()
            .take(MAX_KEY_LEN)
            .collect(),
    }
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits, clock: Arc<dyn Clock>) -> Self {
        LoginLimiter {
            addresses: Mutex::new(Table::new(limits.max_failures.max(1))),
            ips: Mutex::new(Table::new(limits.max_failures_per_ip.max(1))),
            hashes: Semaphore::new(limits.max_concurrent_hashes.max(1)),
            hash_wait: HASH_WAIT,
            limits,
            clock,
        }
    }

    /// The same limiter with another wait for a hashing slot (tests).
    pub fn with_hash_wait(mut self, wait: Duration) -> Self {
        self.hash_wait = wait;
        self
    }

    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// `Err` while the address or the client IP is locked (the longer of the two locks).
    pub fn check(&self, address: &str, ip: IpAddr) -> Result<(), Locked> {
        let now = self.clock.now().0;
        let by_address = self
            .addresses
            .lock()
            .ok()
            .and_then(|mut t| t.locked(&address.to_string(), now));
        let by_ip = self.ips.lock().ok().and_then(|mut t| t.locked(&ip, now));
        match by_address.max(by_ip) {
            Some(secs) => Err(Locked {
                retry_after_secs: secs.max(1),
            }),
            None => Ok(()),
        }
    }

    pub fn failed(&self, address: &str, ip: IpAddr) {
        let now = self.clock.now().0;
        let base = self.limits.lockout_secs;
        if let Ok(mut t) = self.addresses.lock() {
            t.fail(&address.to_string(), now, base);
        }
        if let Ok(mut t) = self.ips.lock() {
            t.fail(&ip, now, base);
        }
    }

    pub fn succeeded(&self, address: &str) {
        if let Ok(mut t) = self.addresses.lock() {
            t.reset(&address.to_string());
        }
    }

    /// A hashing slot, waiting at most [`HASH_WAIT`]; `None` when the server stays busy.
    pub async fn hash_permit(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(self.hash_wait, self.hashes.acquire())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Timestamp;
    use hato_core::clock::ManualClock;

    fn limiter(max: u32, per_ip: u32) -> (Arc<ManualClock>, LoginLimiter) {
        let clock = Arc::new(ManualClock::new(
            Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
        ));
        let l = LoginLimiter::new(
            LoginLimits {
                max_failures: max,
                max_failures_per_ip: per_ip,
                lockout_secs: 60,
                max_concurrent_hashes: 2,
            },
            clock.clone(),
        );
        (clock, l)
    }

    const A: &str = "alice@contoso.test";

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn locks_after_max_failures_until_the_lock_expires() {
        let (clock, l) = limiter(5, 100);
        for _ in 0..4 {
            l.failed(A, ip(1));
            assert!(l.check(A, ip(1)).is_ok());
        }
        l.failed(A, ip(1));
        assert_eq!(
            l.check(A, ip(1)),
            Err(Locked {
                retry_after_secs: 60
            })
        );
        // The address is locked from any IP.
        assert!(l.check(A, ip(2)).is_err());
        assert!(l.check("bob@contoso.test", ip(1)).is_ok());
        clock.advance_seconds(59);
        assert_eq!(
            l.check(A, ip(1)),
            Err(Locked {
                retry_after_secs: 1
            })
        );
        clock.advance_seconds(1);
        assert!(l.check(A, ip(1)).is_ok(), "expired");
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_an_hour() {
        let (clock, l) = limiter(5, 1000);
        for _ in 0..5 {
            l.failed(A, ip(1));
        }
        let mut want = 60;
        for _ in 0..8 {
            assert_eq!(
                l.check(A, ip(1)),
                Err(Locked {
                    retry_after_secs: want
                })
            );
            clock.advance_seconds(want as i64);
            assert!(l.check(A, ip(1)).is_ok());
            l.failed(A, ip(1));
            want = (want * 2).min(3600);
        }
        assert_eq!(want, 3600, "capped");
        assert_eq!(
            l.check(A, ip(1)),
            Err(Locked {
                retry_after_secs: 3600
            })
        );
    }

    #[test]
    fn a_success_resets_the_address_count() {
        let (clock, l) = limiter(3, 100);
        l.failed(A, ip(1));
        l.failed(A, ip(1));
        l.succeeded(A);
        l.failed(A, ip(1));
        l.failed(A, ip(1));
        assert!(l.check(A, ip(1)).is_ok(), "two failures since the success");
        l.failed(A, ip(1));
        assert!(l.check(A, ip(1)).is_err());
        // After the lock, a success (checked by the caller once the lock expired) starts over.
        clock.advance_seconds(60);
        l.succeeded(A);
        l.failed(A, ip(1));
        assert!(l.check(A, ip(1)).is_ok());
    }

    #[test]
    fn the_ip_limit_covers_every_address_from_that_ip() {
        let (_clock, l) = limiter(5, 6);
        for i in 0..6 {
            l.failed(&format!("user{i}@contoso.test"), ip(1));
        }
        // Each address failed once only, but the IP is locked for all of them.
        assert!(l.check("new@contoso.test", ip(1)).is_err());
        assert!(l.check("new@contoso.test", ip(2)).is_ok());
    }

    #[test]
    fn records_are_forgotten_an_hour_after_their_lock() {
        let (clock, l) = limiter(2, 100);
        l.failed(A, ip(1));
        l.failed(A, ip(1));
        clock.advance_seconds(60 + 3600);
        // Forgotten: the next failure starts a new count instead of doubling the lock.
        l.failed(A, ip(1));
        assert!(l.check(A, ip(1)).is_ok());
        l.failed(A, ip(1));
        assert_eq!(
            l.check(A, ip(1)),
            Err(Locked {
                retry_after_secs: 60
            })
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let (_clock, l) = limiter(5, u32::MAX);
        for i in 0..(MAX_TRACKED + 10) {
            l.failed(&format!("u{i}@x.test"), ip(1));
        }
        assert!(l.addresses.lock().unwrap().records.len() <= MAX_TRACKED);
    }

    #[test]
    fn addresses_count_in_canonical_form() {
        assert_eq!(address_key("alice@CONTOSO.test"), address_key(A));
        assert_eq!(address_key(&"x".repeat(10_000)).len(), MAX_KEY_LEN);
    }

    #[tokio::test]
    async fn hashing_slots_are_bounded() {
        let (_clock, l) = limiter(5, 5);
        let l = l.with_hash_wait(Duration::from_millis(50));
        let a = l.hash_permit().await.unwrap();
        let _b = l.hash_permit().await.unwrap();
        assert!(l.hash_permit().await.is_none(), "busy past HASH_WAIT");
        drop(a);
        assert!(l.hash_permit().await.is_some());
    }
}

//! Limits on the delist page's requests (`POST /delist`): each request may mail a confirmation
//! to the address it names, so requests are counted per web client IP (one client asking for
//! many addresses) and per address (many clients mailing one victim), each in a fixed window
//! that starts at its first request. Beyond either limit the page answers `429 Too Many
//! Requests` with `Retry-After` (RFC 6585 §4) until the window ends; a refused request is not
//! counted, so a client that keeps trying is not locked out longer.
//!
//! Memory is bounded: at most [`MAX_TRACKED`] clients and as many addresses are remembered.
//! Windows end in the order they began (one clock), so a queue in that order drops the ended
//! ones from its front, and when a table is full its oldest window goes first: every request
//! costs constant time (amortised), whatever the tables hold.

use crate::login_limit::address_key;
use hato_core::Clock;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Records kept per table (client IPs, addresses) at most.
pub const MAX_TRACKED: usize = 100_000;

/// How many requests a window allows, and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelistLimits {
    /// Requests from one web client IP per window.
    pub per_client_ip: u32,
    /// Requests naming one address per window.
    pub per_address: u32,
    pub window_secs: i64,
}

impl Default for DelistLimits {
    /// 10 requests per client IP and 3 per address an hour: a sender delisting its servers asks a
    /// few times; a flood of confirmation mail to one mailbox is cut at three an hour.
    fn default() -> Self {
        DelistLimits {
            per_client_ip: 10,
            per_address: 3,
            window_secs: 3600,
        }
    }
}

/// One key's window: when it began (microseconds) and how many requests it counted.
struct Window {
    start: i64,
    count: u32,
}

struct Table<K> {
    windows: HashMap<K, Window>,
    /// The keys in the order their windows began.
    order: VecDeque<(K, i64)>,
    limit: u32,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(limit: u32) -> Self {
        Table {
            windows: HashMap::new(),
            order: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Forgets the windows that ended by `now` (they are at the front).
    fn expire(&mut self, now: i64, window: i64) {
        while let Some((key, start)) = self.order.front() {
            if start + window > now {
                break;
            }
            if self.windows.get(key).is_some_and(|w| w.start == *start) {
                self.windows.remove(key);
            }
            self.order.pop_front();
        }
    }

    /// Microseconds until `key` may ask again, when it is at its limit now.
    fn blocked(&self, key: &K, window: i64) -> Option<i64> {
        self.windows
            .get(key)
            .filter(|w| w.count >= self.limit)
            .map(|w| w.start + window)
    }

    fn count(&mut self, key: &K, now: i64) {
        if let Some(w) = self.windows.get_mut(key) {
            w.count = w.count.saturating_add(1);
            return;
        }
        while self.windows.len() >= MAX_TRACKED {
            let Some((old, start)) = self.order.pop_front() else {
                break;
            };
            if self.windows.get(&old).is_some_and(|w| w.start == start) {
                self.windows.remove(&old);
            }
        }
        self.windows.insert(
            key.clone(),
            Window {
                start: now,
                count: 1,
            },
        );
        self.order.push_back((key.clone(), now));
    }
}

pub struct DelistLimiter {
    limits: DelistLimits,
    clock: Arc<dyn Clock>,
    tables: Mutex<(Table<IpAddr>, Table<String>)>,
}

/// A request over a limit: seconds until the window that stops it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

impl DelistLimiter {
    pub fn new(limits: DelistLimits, clock: Arc<dyn Clock>) -> Self {
        DelistLimiter {
            tables: Mutex::new((
                Table::new(limits.per_client_ip),
                Table::new(limits.per_address),
            )),
            limits,
            clock,
        }
    }

    pub fn limits(&self) -> &DelistLimits {
        &self.limits
    }

    /// Counts a request from `client` naming `address` (in canonical form when it parses, so
    /// `Alice@X` and `alice@x` share a count), or refuses it, uncounted, while the client or the
    /// address is at its limit.
    pub fn admit(&self, client: IpAddr, address: &str) -> Result<(), Limited> {
        let now = self.clock.now().0;
        let window = self.limits.window_secs.max(1) * 1_000_000;
        let address = address_key(address);
        let mut guard = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let (ips, addresses) = &mut *guard;
        ips.expire(now, window);
        addresses.expire(now, window);
        let until = ips
            .blocked(&client, window)
            .max(addresses.blocked(&address, window));
        if let Some(until) = until {
            let secs = (until - now + 999_999) / 1_000_000;
            return Err(Limited {
                retry_after_secs: secs.max(1) as u64,
            });
        }
        ips.count(&client, now);
        addresses.count(&address, now);
        Ok(())
    }

    /// How many client IPs and addresses are remembered (tests).
    pub fn tracked(&self) -> (usize, usize) {
        let guard = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0.windows.len(), guard.1.windows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Timestamp;
    use hato_core::clock::ManualClock;

    fn limiter(per_ip: u32, per_address: u32) -> (Arc<ManualClock>, DelistLimiter) {
        let clock = Arc::new(ManualClock::new(
            Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap(),
        ));
        let l = DelistLimiter::new(
            DelistLimits {
                per_client_ip: per_ip,
                per_address,
                window_secs: 3600,
            },
            clock.clone(),
        );
        (clock, l)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn an_address_is_limited_whichever_client_asks_until_its_window_ends() {
        let (clock, l) = limiter(100, 3);
        for n in 1..=3 {
            assert_eq!(l.admit(ip(n), "alice@contoso.test"), Ok(()));
        }
        assert_eq!(
            l.admit(ip(4), "Alice@CONTOSO.test"),
            Err(Limited {
                retry_after_secs: 3600
            })
        );
        assert_eq!(l.admit(ip(4), "bob@contoso.test"), Ok(()));
        clock.advance_seconds(3599);
        assert_eq!(
            l.admit(ip(4), "alice@contoso.test"),
            Err(Limited {
                retry_after_secs: 1
            })
        );
        clock.advance_seconds(1);
        assert_eq!(l.admit(ip(4), "alice@contoso.test"), Ok(()), "a new window");
    }

    #[test]
    fn a_client_is_limited_whatever_addresses_it_names() {
        let (clock, l) = limiter(5, 100);
        for n in 0..5 {
            assert_eq!(l.admit(ip(1), &format!("user{n}@contoso.test")), Ok(()));
        }
        clock.advance_seconds(600);
        assert_eq!(
            l.admit(ip(1), "new@contoso.test"),
            Err(Limited {
                retry_after_secs: 3000
            })
        );
        assert_eq!(l.admit(ip(2), "new@contoso.test"), Ok(()));
        // Refused requests are not counted: the window ends when it would have.
        for _ in 0..10 {
            assert!(l.admit(ip(1), "x@contoso.test").is_err());
        }
        clock.advance_seconds(3000);
        assert_eq!(l.admit(ip(1), "x@contoso.test"), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_and_each_request_costs_constant_time() {
        let (clock, l) = limiter(1_000_000, 1_000_000);
        let start = std::time::Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 50_000) {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + i));
            assert_eq!(l.admit(client, &format!("u{i}@x.test")), Ok(()));
            if i % 1000 == 0 {
                clock.advance_seconds(1);
            }
        }
        assert_eq!(l.tracked(), (MAX_TRACKED, MAX_TRACKED));
        // 150,000 requests with full tables: a scan per request would take minutes.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        // Windows that ended are forgotten.
        clock.advance_seconds(3600);
        assert_eq!(l.admit(ip(1), "a@x.test"), Ok(()));
        assert_eq!(l.tracked(), (1, 1));
    }
}

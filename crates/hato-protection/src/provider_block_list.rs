//! The provider's own block list: the platform operator's list of banned client IPs, like
//! Microsoft's blocked senders list (seed C1–C3; `exchange-online-behaviour.md` §3). It is the
//! first check at connect. A listed client gets `550 5.7.606 Access denied, banned sending IP
//! [IP]. To request removal from this list please visit URL and follow the directions.`, where
//! URL is the delist page (`edge.delist_url`); a tenant's IP allow list overrides the refusal for
//! that tenant's recipients (the edge policy's business, not this stage's).
//!
//! Entries are single IPv4 or IPv6 addresses or networks in CIDR form, parsed strictly
//! ([`IpNetwork`]). The check runs on every connection, so it reads an in-memory snapshot
//! ([`ProviderBlockList`]), replaced as a whole when the list changes, never the store; a lookup
//! costs one hash lookup per prefix length present in the list (at most 33 for IPv4, 129 for
//! IPv6), however many entries there are.

use crate::{BoxFuture, ConnectCheck, Outcome, ready};
use hato_core::{ClientContext, Reason, Refusal, Stage, Timestamp, reply};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

/// The widest IPv4 network an entry may be: a /8 (16 million addresses). Anything wider is taken
/// for a typing mistake (`0.0.0.0/0` would refuse all mail), not a listing.
pub const MIN_PREFIX_V4: u8 = 8;
/// The widest IPv6 network an entry may be: a /16, for the same reason.
pub const MIN_PREFIX_V6: u8 = 16;
/// The longest text read as an entry (the longest IPv6 form with a prefix is 49 characters);
/// past it the entry is refused without being parsed.
const MAX_ENTRY_LEN: usize = 64;

/// A single address or a network in CIDR form, in canonical form: the bits past the prefix are
/// zero, and an IPv4-mapped IPv6 address is never one (it is written as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not a block list entry; each names the entry (cut to 64 characters) and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(
        "{0:?} is not an IP address or network: give one IPv4 or IPv6 address (192.0.2.7, \
         2001:db8::7) or a network in CIDR form (192.0.2.0/24, 2001:db8::/32)"
    )]
    Syntax(String),
    #[error(
        "{entry:?}: the prefix length must be a whole number from {min} to {max} for {family} \
         (wider networks are refused as a likely mistake)"
    )]
    Prefix {
        entry: String,
        family: &'static str,
        min: u8,
        max: u8,
    },
    #[error("{entry:?} has address bits set past its prefix: the network is {network}")]
    HostBits { entry: String, network: String },
    #[error("{entry:?} is an IPv4-mapped IPv6 address: write it as IPv4 ({ipv4})")]
    Mapped { entry: String, ipv4: String },
}

/// The entry as an error quotes it: at most [`MAX_ENTRY_LEN`] characters.
fn quoted(text: &str) -> String {
    text.chars().take(MAX_ENTRY_LEN).collect()
}

/// The prefix's mask over a 32-bit (IPv4) address.
fn mask_v4(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// The prefix's mask over a 128-bit (IPv6) address.
fn mask_v6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

impl IpNetwork {
    /// One address (IPv4-mapped IPv6 addresses become IPv4, as a client's address is read).
    pub fn single(ip: IpAddr) -> Self {
        let addr = ip.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNetwork { addr, prefix }
    }

    /// Parses an entry strictly: `a.b.c.d`, `a.b.c.d/n` (n from [`MIN_PREFIX_V4`] to 32), an
    /// IPv6 address in any RFC 4291 §2.2 form, or `x::/n` (n from [`MIN_PREFIX_V6`] to 128). No
    /// spaces, zone ids, leading zeros in IPv4 octets or the prefix, bits set past the prefix,
    /// or IPv4-mapped IPv6 addresses (they would never match: clients are read as IPv4). A
    /// `/32` (`/128`) is the single address.
    pub fn parse(text: &str) -> Result<Self, EntryError> {
        let syntax = || EntryError::Syntax(quoted(text));
        if text.len() > MAX_ENTRY_LEN {
            return Err(syntax());
        }
        let (addr, prefix) = match text.split_once('/') {
            None => (text, None),
            Some((a, p)) => (a, Some(p)),
        };
        // std's parsers are strict already: no leading zeros in IPv4 octets (an octal reading
        // of `010` would list another network), no zone ids, no spaces.
        let addr = IpAddr::from_str(addr).map_err(|_| syntax())?;
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return Err(EntryError::Mapped {
                entry: quoted(text),
                ipv4: v4.to_string(),
            });
        }
        let (family, min, max) = match addr {
            IpAddr::V4(_) => ("IPv4", MIN_PREFIX_V4, 32),
            IpAddr::V6(_) => ("IPv6", MIN_PREFIX_V6, 128),
        };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let bad = || EntryError::Prefix {
                    entry: quoted(text),
                    family,
                    min,
                    max,
                };
                let digits_only =
                    !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
                if !digits_only || (p.len() > 1 && p.starts_with('0')) {
                    return Err(bad());
                }
                let n: u8 = p.parse().map_err(|_| bad())?;
                if !(min..=max).contains(&n) {
                    return Err(bad());
                }
                n
            }
        };
        let network = IpNetwork { addr, prefix }.masked();
        if network.addr != addr {
            return Err(EntryError::HostBits {
                entry: quoted(text),
                network: network.to_string(),
            });
        }
        Ok(network)
    }

    /// The same prefix with the bits past it cleared.
    fn masked(self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(self.prefix))),
        };
        IpNetwork { addr, ..self }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is one address (a /32 or /128).
    pub fn is_single(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Whether `ip` (read as a client's address: IPv4-mapped IPv6 is IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask_v4(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask_v6(self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    /// A single address without its prefix, a network as `address/prefix` (RFC 4632 §3.1,
    /// RFC 4291 §2.3), IPv6 in RFC 5952's form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for IpNetwork {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IpNetwork::parse(s)
    }
}

/// Why a text is not an expiry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an expiry: give a whole number of days, hours or minutes (7d, 12h, 30m), at \
     most 3650 days"
)]
pub struct ExpiryError(String);

/// The longest expiry: ten years (longer is "never", which is the default).
const MAX_EXPIRY_SECS: i64 = 3650 * 86_400;

/// Parses an entry's time to live, `7d`, `12h` or `30m`, into seconds: a whole number from 1 with
/// no sign, spaces or leading zeros, then one unit, at most ten years.
pub fn parse_expiry(text: &str) -> Result<i64, ExpiryError> {
    let bad = || ExpiryError(quoted(text));
    let unit = match text.as_bytes().last() {
        Some(b'd') => 86_400,
        Some(b'h') => 3_600,
        Some(b'm') => 60,
        _ => return Err(bad()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty()
        || digits.len() > 8
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let secs = n * unit;
    if secs > MAX_EXPIRY_SECS {
        return Err(bad());
    }
    Ok(secs)
}

/// One entry as the check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    pub network: IpNetwork,
    /// The operator's reason (for the connection log; never shown to the client: seed C1,
    /// listing criteria are not disclosed).
    pub reason: String,
    pub added: Timestamp,
    /// When it stops matching; `None`: never.
    pub expires: Option<Timestamp>,
}

impl ListedEntry {
    /// Whether the entry still matches at `now`: it stops at its expiry, exactly.
    pub fn active(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

/// The list as one lookup structure: for each prefix length present, a map from the network's
/// bits to its entry, longest prefix first, so the first active match is the most specific.
#[derive(Default)]
struct Snapshot {
    v4: Vec<(u8, HashMap<u32, Arc<ListedEntry>>)>,
    v6: Vec<(u8, HashMap<u128, Arc<ListedEntry>>)>,
    len: usize,
}

impl Snapshot {
    fn build(entries: impl IntoIterator<Item = ListedEntry>) -> Self {
        let mut v4: HashMap<u8, HashMap<u32, Arc<ListedEntry>>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, Arc<ListedEntry>>> = HashMap::new();
        let mut len = 0;
        for e in entries {
            let prefix = e.network.prefix;
            let inserted = match e.network.addr {
                IpAddr::V4(a) => v4
                    .entry(prefix)
                    .or_default()
                    .insert(u32::from(a), Arc::new(e))
                    .is_none(),
                IpAddr::V6(a) => v6
                    .entry(prefix)
                    .or_default()
                    .insert(u128::from(a), Arc::new(e))
                    .is_none(),
            };
            len += usize::from(inserted);
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        let mut v6: Vec<_> = v6.into_iter().collect();
        v4.sort_by_key(|(prefix, _)| std::cmp::Reverse(*prefix));
        v6.sort_by_key(|(prefix, _)| std::cmp::Reverse(*prefix));
        Snapshot { v4, v6, len }
    }

    fn lookup(&self, ip: IpAddr, now: Timestamp) -> Option<Arc<ListedEntry>> {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                self.v4.iter().find_map(|(prefix, map)| {
                    map.get(&(bits & mask_v4(*prefix)))
                        .filter(|e| e.active(now))
                        .cloned()
                })
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                self.v6.iter().find_map(|(prefix, map)| {
                    map.get(&(bits & mask_v6(*prefix)))
                        .filter(|e| e.active(now))
                        .cloned()
                })
            }
        }
    }
}

/// The provider's block list as the edge checks it: an in-memory snapshot, replaced whole by
/// [`ProviderBlockList::replace`] whenever the list changes (an entry added or removed, expired
/// entries purged), so a check never reads the store.
pub struct ProviderBlockList {
    delist_url: String,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while a new snapshot is read and installed ([`ProviderBlockList::reload_with`]), so
    /// that two reloads cannot finish in the wrong order and install the older list.
    reloading: Mutex<()>,
}

impl ProviderBlockList {
    /// An empty list whose refusals send clients to `delist_url`.
    pub fn new(delist_url: impl Into<String>) -> Self {
        ProviderBlockList {
            delist_url: delist_url.into(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: Mutex::new(()),
        }
    }

    /// The delist page's address, as the refusal gives it.
    pub fn delist_url(&self) -> &str {
        &self.delist_url
    }

    /// Installs these entries as the whole list (a later duplicate of a network replaces the
    /// earlier one).
    pub fn replace(&self, entries: impl IntoIterator<Item = ListedEntry>) {
        let snapshot = Arc::new(Snapshot::build(entries));
        match self.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            // A panic while the lock was held cannot have left a half-written `Arc`.
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// Reads the entries with `read` and installs them, one reload at a time: a reload that
    /// started later never loses to one that started earlier. On error the list stays as it was.
    pub fn reload_with<E>(
        &self,
        read: impl FnOnce() -> Result<Vec<ListedEntry>, E>,
    ) -> Result<usize, E> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let entries = read()?;
        let n = entries.len();
        self.replace(entries);
        Ok(n)
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How many entries the snapshot holds (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.current().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most specific entry that lists `ip` at `now`, if any.
    pub fn lookup(&self, ip: IpAddr, now: Timestamp) -> Option<Arc<ListedEntry>> {
        self.current().lookup(ip, now)
    }

    /// The stage's decision for a client connecting from `ip` at `now`: `Refuse` with
    /// `550 5.7.606` and the entry as the reason (entry, the operator's reason, when it was
    /// added and until when) when an entry lists it, else `Pass`.
    pub fn check(&self, ip: IpAddr, now: Timestamp) -> Outcome {
        let Some(entry) = self.lookup(ip, now) else {
            return Outcome::Pass;
        };
        let ip = ip.to_canonical();
        let network = entry.network.to_string();
        let reason = Reason::new(
            Stage::ProviderBlockList,
            format!("The client IP {ip} is on the provider's block list (entry {network})"),
        )
        .rule(network.clone())
        .figure("entry", network)
        .figure("reason", entry.reason.clone())
        .figure("added", entry.added.to_rfc3339())
        .figure(
            "expires",
            entry
                .expires
                .map_or_else(|| "never".to_string(), Timestamp::to_rfc3339),
        );
        Outcome::Refuse(Refusal::new(
            reply::banned_sending_ip(ip, &self.delist_url),
            reason,
        ))
    }
}

/// The first check at connect; its refusal is held for RCPT, where a tenant whose IP allow list
/// has the client lets it in for that tenant's recipients (seed C3).
impl ConnectCheck for ProviderBlockList {
    fn stage(&self) -> Stage {
        Stage::ProviderBlockList
    }

    fn check(&self, client: &ClientContext, now: Timestamp) -> BoxFuture<Outcome> {
        ready(ProviderBlockList::check(self, client.ip(), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::clock::{Clock, ManualClock};

    const URL: &str = "https://mx.hato.test/delist";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t0() -> Timestamp {
        Timestamp::parse_human("2026-11-28T12:00:00Z").unwrap()
    }

    fn entry(net: &str, reason: &str, expires: Option<Timestamp>) -> ListedEntry {
        ListedEntry {
            network: IpNetwork::parse(net).unwrap(),
            reason: reason.into(),
            added: t0(),
            expires,
        }
    }

    #[test]
    fn entries_parse_strictly_to_their_canonical_form() {
        for (text, canonical) in [
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7/32", "192.0.2.7"),
            ("192.0.2.0/24", "192.0.2.0/24"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("2001:db8::7", "2001:db8::7"),
            ("2001:DB8:0:0::7/128", "2001:db8::7"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001::/16", "2001::/16"),
        ] {
            let n = IpNetwork::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(n.to_string(), canonical, "{text}");
            assert_eq!(IpNetwork::parse(canonical), Ok(n), "{canonical} reads back");
        }
        assert!(IpNetwork::parse("192.0.2.7").unwrap().is_single());
        assert!(!IpNetwork::parse("192.0.2.0/24").unwrap().is_single());
    }

    #[test]
    fn bad_entries_are_refused_naming_the_entry_and_the_rule() {
        let syntax = [
            "",
            "192.0.2",
            "192.0.2.256",
            "192.0.2.07",
            "010.0.0.1",
            " 192.0.2.7",
            "192.0.2.7 ",
            "192.0.2.1-192.0.2.9",
            "fe80::1%eth0",
            "example.test",
        ];
        for text in syntax {
            let e = IpNetwork::parse(text).unwrap_err();
            assert!(matches!(e, EntryError::Syntax(_)), "{text}: {e:?}");
            assert!(
                e.to_string()
                    .starts_with(&format!("{text:?} is not an IP address or network")),
                "{e}"
            );
        }
        assert_eq!(
            IpNetwork::parse("192.0.2.0/33").unwrap_err().to_string(),
            "\"192.0.2.0/33\": the prefix length must be a whole number from 8 to 32 for IPv4 \
             (wider networks are refused as a likely mistake)"
        );
        for text in [
            "0.0.0.0/0",
            "10.0.0.0/7",
            "192.0.2.0/024",
            "192.0.2.0/+24",
            "192.0.2.0/x",
            "192.0.2.7/",
            "192.0.2.0/24/24",
        ] {
            assert!(
                matches!(
                    IpNetwork::parse(text),
                    Err(EntryError::Prefix { family: "IPv4", .. })
                ),
                "{text}"
            );
        }
        for text in ["::/0", "2001::/15", "2001:db8::/129"] {
            assert!(
                matches!(
                    IpNetwork::parse(text),
                    Err(EntryError::Prefix {
                        family: "IPv6",
                        min: 16,
                        max: 128,
                        ..
                    })
                ),
                "{text}"
            );
        }
        assert_eq!(
            IpNetwork::parse("192.0.2.7/24").unwrap_err().to_string(),
            "\"192.0.2.7/24\" has address bits set past its prefix: the network is 192.0.2.0/24"
        );
        assert_eq!(
            IpNetwork::parse("2001:db8::1/32").unwrap_err().to_string(),
            "\"2001:db8::1/32\" has address bits set past its prefix: the network is 2001:db8::/32"
        );
        assert_eq!(
            IpNetwork::parse("::ffff:192.0.2.7")
                .unwrap_err()
                .to_string(),
            "\"::ffff:192.0.2.7\" is an IPv4-mapped IPv6 address: write it as IPv4 (192.0.2.7)"
        );
        // A long text is quoted cut, and refused without being parsed.
        let long = "1".repeat(100_000);
        let e = IpNetwork::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn expiries_are_days_hours_or_minutes() {
        assert_eq!(parse_expiry("7d"), Ok(7 * 86_400));
        assert_eq!(parse_expiry("12h"), Ok(12 * 3_600));
        assert_eq!(parse_expiry("30m"), Ok(30 * 60));
        assert_eq!(parse_expiry("3650d"), Ok(3650 * 86_400));
        for bad in [
            "",
            "d",
            "0d",
            "07d",
            "-1d",
            "+1d",
            "1",
            "1s",
            "1 d",
            "1.5h",
            "3651d",
            "99999999999d",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_expiry("1w").unwrap_err().to_string(),
            "\"1w\" is not an expiry: give a whole number of days, hours or minutes (7d, 12h, \
             30m), at most 3650 days"
        );
    }

    #[test]
    fn a_listed_ipv4_client_is_refused_with_the_catalogue_reply_and_the_entry_as_reason() {
        let list = ProviderBlockList::new(URL);
        list.replace([entry("192.0.2.7", "spam run 2026-11", None)]);
        let Outcome::Refuse(r) = list.check(ip("192.0.2.7"), t0()) else {
            panic!("not refused")
        };
        assert_eq!(
            r.reply.to_string(),
            "550 5.7.606 Access denied, banned sending IP [192.0.2.7]. To request removal from \
             this list please visit https://mx.hato.test/delist and follow the directions."
        );
        assert_eq!(r.reason.stage, Stage::ProviderBlockList);
        assert_eq!(r.reason.rule.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            r.reason.to_string(),
            "provider_block_list [192.0.2.7]: The client IP 192.0.2.7 is on the provider's block \
             list (entry 192.0.2.7) (entry=192.0.2.7, reason=spam run 2026-11, \
             added=2026-11-28T12:00:00Z, expires=never)"
        );
        assert_eq!(list.check(ip("192.0.2.8"), t0()), Outcome::Pass);
        assert_eq!(list.check(ip("2001:db8::7"), t0()), Outcome::Pass);
    }

    #[test]
    fn a_cidr_entry_lists_every_address_in_it_and_no_other() {
        let list = ProviderBlockList::new(URL);
        list.replace([
            entry("198.51.100.0/24", "range", None),
            entry("2001:db8:bad::/48", "v6 range", None),
        ]);
        for listed in [
            "198.51.100.0",
            "198.51.100.1",
            "198.51.100.255",
            "2001:db8:bad::",
            "2001:db8:bad:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(list.check(ip(listed), t0()).refuses(), "{listed}");
        }
        for free in [
            "198.51.99.255",
            "198.51.101.0",
            "2001:db8:bae::",
            "2001:db8:bac:ffff::1",
            "::1",
        ] {
            assert_eq!(list.check(ip(free), t0()), Outcome::Pass, "{free}");
        }
    }

    #[test]
    fn an_ipv6_client_gets_its_address_in_brackets() {
        let list = ProviderBlockList::new(URL);
        list.replace([entry("2001:db8::/32", "v6", None)]);
        let Outcome::Refuse(r) = list.check(ip("2001:db8::25"), t0()) else {
            panic!("not refused")
        };
        assert_eq!(
            r.reply.text,
            "Access denied, banned sending IP [2001:db8::25]. To request removal from this list \
             please visit https://mx.hato.test/delist and follow the directions."
        );
        assert_eq!(r.reason.rule.as_deref(), Some("2001:db8::/32"));
    }

    /// A client on an IPv6 socket shows up as `::ffff:a.b.c.d`: it is the IPv4 client.
    #[test]
    fn an_ipv4_mapped_client_is_checked_and_shown_as_ipv4() {
        let list = ProviderBlockList::new(URL);
        list.replace([entry("192.0.2.0/24", "r", None)]);
        let Outcome::Refuse(r) = list.check(ip("::ffff:192.0.2.9"), t0()) else {
            panic!("not refused")
        };
        assert!(r.reply.text.contains("[192.0.2.9]"), "{}", r.reply);
    }

    #[test]
    fn the_most_specific_active_entry_decides() {
        let list = ProviderBlockList::new(URL);
        let soon = t0().plus_seconds(60);
        list.replace([
            entry("10.0.0.0/8", "wide", None),
            entry("10.1.0.0/16", "narrow, expiring", Some(soon)),
        ]);
        let rule = |at| match list.check(ip("10.1.2.3"), at) {
            Outcome::Refuse(r) => r.reason.rule.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(rule(t0()).as_deref(), Some("10.1.0.0/16"));
        // Once the narrow one expires, the wide one still lists the client.
        assert_eq!(rule(soon).as_deref(), Some("10.0.0.0/8"));
    }

    #[test]
    fn an_entry_stops_matching_at_its_expiry() {
        let clock = ManualClock::new(t0());
        let list = ProviderBlockList::new(URL);
        list.replace([entry(
            "192.0.2.7",
            "a week",
            Some(t0().plus_seconds(7 * 86_400)),
        )]);
        let Outcome::Refuse(r) = list.check(ip("192.0.2.7"), clock.now()) else {
            panic!("not refused")
        };
        assert_eq!(
            r.reason
                .figure_value("expires")
                .map(ToString::to_string)
                .as_deref(),
            Some("2026-12-05T12:00:00Z")
        );
        clock.advance_seconds(7 * 86_400 - 1);
        assert!(
            list.check(ip("192.0.2.7"), clock.now()).refuses(),
            "a second before"
        );
        clock.advance_seconds(1);
        assert_eq!(
            list.check(ip("192.0.2.7"), clock.now()),
            Outcome::Pass,
            "at its time"
        );
    }

    #[test]
    fn replacing_the_snapshot_changes_what_is_listed() {
        let list = ProviderBlockList::new(URL);
        assert!(list.is_empty());
        list.replace([entry("192.0.2.7", "r", None)]);
        assert!(list.check(ip("192.0.2.7"), t0()).refuses());
        let n = list
            .reload_with(|| Ok::<_, ()>(vec![entry("192.0.2.8", "r", None)]))
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(list.check(ip("192.0.2.7"), t0()), Outcome::Pass);
        assert!(list.check(ip("192.0.2.8"), t0()).refuses());
        // A failed reload keeps the list.
        assert_eq!(list.reload_with(|| Err("store down")), Err("store down"));
        assert!(list.check(ip("192.0.2.8"), t0()).refuses());
    }

    /// A lookup is a hash lookup per prefix length, not a scan of the entries: 200,000 single
    /// addresses and networks of every IPv4 length cost ~33 lookups per check. Timed loosely (a
    /// scan would take ~1 ms per check here, the lookup ~1 µs), so a slow machine still passes.
    #[test]
    fn a_check_does_not_scan_the_entries() {
        let list = ProviderBlockList::new(URL);
        let mut entries = Vec::new();
        for i in 0..200_000u32 {
            let a = Ipv4Addr::from(0x0b00_0000 + i * 2);
            entries.push(ListedEntry {
                network: IpNetwork::single(IpAddr::V4(a)),
                reason: String::new(),
                added: t0(),
                expires: None,
            });
        }
        for prefix in MIN_PREFIX_V4..32 {
            entries.push(entry(
                &format!("{}/{prefix}", Ipv4Addr::from(0xc000_0000 & mask_v4(prefix))),
                "",
                None,
            ));
        }
        list.replace(entries);
        assert_eq!(list.len(), 200_000 + 24);
        let start = std::time::Instant::now();
        let mut refused = 0;
        for i in 0..10_000u32 {
            refused += usize::from(
                list.check(IpAddr::V4(Ipv4Addr::from(0x0d00_0000 + i)), t0())
                    .refuses(),
            );
        }
        assert_eq!(refused, 0);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?} for 10,000 checks",
            start.elapsed()
        );
        assert!(list.check(ip("11.0.0.2"), t0()).refuses());
        assert!(!list.check(ip("11.0.0.3"), t0()).refuses());
    }
}

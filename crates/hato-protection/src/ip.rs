//! The entries of a tenant's IP allow and block lists (Exchange's `IPAllowList` and `IPBlockList`,
//! `exchange-online-behaviour.md` §3), and the structure a connection is looked up in.
//!
//! An entry is, as Exchange Online takes it, a single IPv4 address (`192.0.2.1`), a range
//! (`192.0.2.1-192.0.2.254`, at most 256 addresses) or a CIDR block of prefix /24 to /32
//! (`192.0.2.0/25`; host bits may be set, as in Exchange's own example `192.168.0.1/25`, and are
//! cleared). hato also takes IPv6, which Exchange does not: an address or a CIDR block /48 to /128
//! (a /48 is what one site is usually given; a /64 one network, RFC 6177). Each entry is stored
//! and shown in one canonical form decided by the addresses it covers ([`IpEntry`]'s `Display`),
//! so two spellings of one range are one entry.
//!
//! Looking a client up is a binary search ([`IpList`]), not a scan of the up to 1,273 entries of
//! a list: it runs for every recipient of every connection.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Exchange Online: "a range may contain at most 256 addresses".
pub const MAX_RANGE_ADDRESSES: u32 = 256;
/// Exchange Online takes IPv4 CIDR blocks /24 through /32 only.
pub const MIN_IPV4_PREFIX: u8 = 24;
/// hato's bound for IPv6 (Exchange takes none): a /48, one site's allocation.
pub const MIN_IPV6_PREFIX: u8 = 48;

/// A list entry: the addresses from `first` to `last` (same family; `first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpEntry {
    first: IpAddr,
    last: IpAddr,
}

/// Why a text is not a list entry: the entry as given, and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpEntryError {
    #[error(
        "{entry:?} is not an IP list entry: use an IPv4 address, a range a-b, a CIDR block (IPv4 /24 to /32, IPv6 /48 to /128) or an IPv6 address"
    )]
    Malformed { entry: String },
    #[error(
        "{entry:?}: an IPv4 CIDR block must be /24 to /32 (as in Exchange Online's connection filter); list a larger network as several /24 blocks"
    )]
    Ipv4PrefixTooShort { entry: String },
    #[error("{entry:?}: an IPv6 CIDR block must be /48 to /128")]
    Ipv6PrefixTooShort { entry: String },
    #[error("{entry:?}: a CIDR prefix must be at most /{max}")]
    PrefixTooLong { entry: String, max: u8 },
    #[error(
        "{entry:?}: a range may hold at most 256 addresses (as in Exchange Online's connection filter); this one holds {count}"
    )]
    RangeTooLarge { entry: String, count: u64 },
    #[error("{entry:?}: a range goes from the lower address to the higher")]
    RangeBackwards { entry: String },
    #[error(
        "{entry:?}: a range a-b is of IPv4 addresses; give IPv6 as an address or a CIDR block /48 to /128"
    )]
    Ipv6Range { entry: String },
    #[error(
        "{entry:?} is an IPv4-mapped IPv6 address; write it as IPv4 (the IPv4 rules apply to it)"
    )]
    Ipv4Mapped { entry: String },
}

impl IpEntry {
    /// One address.
    pub fn single(ip: IpAddr) -> Self {
        let ip = canonical_ip(ip);
        IpEntry {
            first: ip,
            last: ip,
        }
    }

    /// Reads an entry as an admin writes it (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, IpEntryError> {
        let t = text.trim();
        let entry = || t.to_string();
        let malformed = || IpEntryError::Malformed { entry: entry() };
        if let Some((a, b)) = t.split_once('-') {
            let (a, b) = (parse_ip(a.trim()), parse_ip(b.trim()));
            let (Some(a), Some(b)) = (a, b) else {
                return Err(malformed());
            };
            let (IpAddr::V4(a), IpAddr::V4(b)) = (a, b) else {
                if is_mapped(a) || is_mapped(b) {
                    return Err(IpEntryError::Ipv4Mapped { entry: entry() });
                }
                return Err(IpEntryError::Ipv6Range { entry: entry() });
            };
            let (a, b) = (u32::from(a), u32::from(b));
            if a > b {
                return Err(IpEntryError::RangeBackwards { entry: entry() });
            }
            let count = u64::from(b - a) + 1;
            if count > u64::from(MAX_RANGE_ADDRESSES) {
                return Err(IpEntryError::RangeTooLarge {
                    entry: entry(),
                    count,
                });
            }
            return Ok(IpEntry {
                first: IpAddr::V4(a.into()),
                last: IpAddr::V4(b.into()),
            });
        }
        let (address, prefix) = match t.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim())),
            None => (t, None),
        };
        let ip = parse_ip(address).ok_or_else(malformed)?;
        if is_mapped(ip) {
            return Err(IpEntryError::Ipv4Mapped { entry: entry() });
        }
        let Some(prefix) = prefix else {
            return Ok(IpEntry::single(ip));
        };
        // Digits only (no sign, no spaces inside), at most three of them.
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let bits: u8 = prefix.parse().map_err(|_| malformed())?;
        match ip {
            IpAddr::V4(v4) => {
                if bits > 32 {
                    return Err(IpEntryError::PrefixTooLong {
                        entry: entry(),
                        max: 32,
                    });
                }
                if bits < MIN_IPV4_PREFIX {
                    return Err(IpEntryError::Ipv4PrefixTooShort { entry: entry() });
                }
                let host = u32::MAX.checked_shr(u32::from(bits)).unwrap_or(0);
                let first = u32::from(v4) & !host;
                Ok(IpEntry {
                    first: IpAddr::V4(first.into()),
                    last: IpAddr::V4((first | host).into()),
                })
            }
            IpAddr::V6(v6) => {
                if bits > 128 {
                    return Err(IpEntryError::PrefixTooLong {
                        entry: entry(),
                        max: 128,
                    });
                }
                if bits < MIN_IPV6_PREFIX {
                    return Err(IpEntryError::Ipv6PrefixTooShort { entry: entry() });
                }
                let host = u128::MAX.checked_shr(u32::from(bits)).unwrap_or(0);
                let first = u128::from(v6) & !host;
                Ok(IpEntry {
                    first: IpAddr::V6(first.into()),
                    last: IpAddr::V6((first | host).into()),
                })
            }
        }
    }

    pub fn first(&self) -> IpAddr {
        self.first
    }

    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// Whether `ip` is one of the entry's addresses (an IPv4-mapped IPv6 client is its IPv4
    /// address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical_ip(ip), self.first, self.last) {
            (IpAddr::V4(ip), IpAddr::V4(a), IpAddr::V4(b)) => a <= ip && ip <= b,
            (IpAddr::V6(ip), IpAddr::V6(a), IpAddr::V6(b)) => a <= ip && ip <= b,
            _ => false,
        }
    }

    /// How many addresses the entry covers (at most 2^80 for a /48).
    pub fn addresses(&self) -> u128 {
        match (self.first, self.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(u32::from(b) - u32::from(a)) + 1,
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(b) - u128::from(a)).saturating_add(1),
            _ => 0,
        }
    }
}

impl FromStr for IpEntry {
    type Err = IpEntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IpEntry::parse(s)
    }
}

impl fmt::Display for IpEntry {
    /// The canonical form: an address for one address, `network/prefix` when the addresses are
    /// exactly one CIDR block, else the IPv4 range `first-last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            return write!(f, "{}", self.first);
        }
        let block = match (self.first, self.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                cidr_bits(u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => cidr_bits(u128::from(a), u128::from(b), 128),
            _ => None,
        };
        match block {
            Some(bits) => write!(f, "{}/{bits}", self.first),
            None => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// The prefix length when `a..=b` is exactly one aligned CIDR block of a `width`-bit family.
fn cidr_bits(a: u128, b: u128, width: u32) -> Option<u32> {
    let span = b.checked_sub(a)?.checked_add(1)?;
    if !span.is_power_of_two() || !a.is_multiple_of(span) {
        return None;
    }
    Some(width - span.trailing_zeros())
}

/// An address as written: `192.0.2.1`, `2001:db8::1`, or either in brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

fn is_mapped(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// A client's address as the lists see it: an IPv4-mapped IPv6 address (a dual-stack listener,
/// RFC 4291 §2.5.5.2) is the IPv4 client it stands for.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Entries of one family, sorted by their first address, with, for each position, the entry
/// reaching furthest among those up to it: the entry that holds an address, if any does, is the
/// furthest-reaching one among those starting at or before it, so a lookup is one binary search.
#[derive(Clone, Debug, Default)]
struct Intervals<T> {
    /// (first, last, index into the list's entries), by first.
    spans: Vec<(T, T, usize)>,
    /// `reach[i]`: the position in `spans` of the largest `last` among `spans[..=i]`.
    reach: Vec<usize>,
}

impl<T: Copy + Ord> Intervals<T> {
    fn new(mut spans: Vec<(T, T, usize)>) -> Self {
        spans.sort_unstable();
        let mut reach = Vec::with_capacity(spans.len());
        let mut best = 0;
        for (i, span) in spans.iter().enumerate() {
            if span.1 > spans[best].1 {
                best = i;
            }
            reach.push(best);
        }
        Intervals { spans, reach }
    }

    /// The index of an entry holding `x`.
    fn find(&self, x: T) -> Option<usize> {
        let starts_before = self.spans.partition_point(|s| {
            #[cfg(test)]
            tests::LOOKED_AT.with(|n| n.set(n.get() + 1));
            s.0 <= x
        });
        let i = starts_before.checked_sub(1)?;
        let span = self.spans[*self.reach.get(i)?];
        (span.1 >= x).then_some(span.2)
    }
}

/// An IP allow or block list, ready for lookups: O(log n) per client, built once per change of
/// the list.
#[derive(Clone, Debug, Default)]
pub struct IpList {
    entries: Vec<IpEntry>,
    v4: Intervals<u32>,
    v6: Intervals<u128>,
}

impl IpList {
    pub fn new(entries: impl IntoIterator<Item = IpEntry>) -> Self {
        let entries: Vec<IpEntry> = entries.into_iter().collect();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, e) in entries.iter().enumerate() {
            match (e.first, e.last) {
                (IpAddr::V4(a), IpAddr::V4(b)) => v4.push((u32::from(a), u32::from(b), i)),
                (IpAddr::V6(a), IpAddr::V6(b)) => v6.push((u128::from(a), u128::from(b), i)),
                _ => {}
            }
        }
        IpList {
            entries,
            v4: Intervals::new(v4),
            v6: Intervals::new(v6),
        }
    }

    /// An entry holding `ip`, if any.
    pub fn find(&self, ip: IpAddr) -> Option<&IpEntry> {
        let i = match canonical_ip(ip) {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)),
        }?;
        self.entries.get(i)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[IpEntry] {
        &self.entries
    }
}

/// Sugar for tests and callers holding addresses of one family.
impl From<Ipv4Addr> for IpEntry {
    fn from(ip: Ipv4Addr) -> Self {
        IpEntry::single(IpAddr::V4(ip))
    }
}

impl From<Ipv6Addr> for IpEntry {
    fn from(ip: Ipv6Addr) -> Self {
        IpEntry::single(IpAddr::V6(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// How many entries lookups on this thread looked at.
        pub(super) static LOOKED_AT: Cell<usize> = const { Cell::new(0) };
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn entry(s: &str) -> IpEntry {
        IpEntry::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Every accepted form, with its canonical text and the addresses it covers.
    #[test]
    fn the_accepted_forms_and_their_canonical_text() {
        for (text, canonical, first, last) in [
            ("192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"),
            (" 192.0.2.1\t", "192.0.2.1", "192.0.2.1", "192.0.2.1"),
            ("[192.0.2.1]", "192.0.2.1", "192.0.2.1", "192.0.2.1"),
            // Exchange's own examples.
            ("192.168.1.1", "192.168.1.1", "192.168.1.1", "192.168.1.1"),
            (
                "192.168.0.1-192.168.0.254",
                "192.168.0.1-192.168.0.254",
                "192.168.0.1",
                "192.168.0.254",
            ),
            // Host bits set, as in Exchange's example: the block they are in.
            (
                "192.168.0.1/25",
                "192.168.0.0/25",
                "192.168.0.0",
                "192.168.0.127",
            ),
            // Ranges: 256 addresses at most, spaces around the dash, a range that is a block.
            (
                "192.0.2.0 - 192.0.2.255",
                "192.0.2.0/24",
                "192.0.2.0",
                "192.0.2.255",
            ),
            (
                "192.0.2.10-192.0.3.9",
                "192.0.2.10-192.0.3.9",
                "192.0.2.10",
                "192.0.3.9",
            ),
            ("192.0.2.7-192.0.2.7", "192.0.2.7", "192.0.2.7", "192.0.2.7"),
            (
                "192.0.2.4-192.0.2.7",
                "192.0.2.4/30",
                "192.0.2.4",
                "192.0.2.7",
            ),
            // CIDR /24 to /32.
            (
                "198.51.100.0/24",
                "198.51.100.0/24",
                "198.51.100.0",
                "198.51.100.255",
            ),
            (
                "198.51.100.77/32",
                "198.51.100.77",
                "198.51.100.77",
                "198.51.100.77",
            ),
            (
                "198.51.100.77/31",
                "198.51.100.76/31",
                "198.51.100.76",
                "198.51.100.77",
            ),
            // IPv6: an address, CIDR /48 to /128.
            ("2001:db8::1", "2001:db8::1", "2001:db8::1", "2001:db8::1"),
            ("[2001:DB8::1]", "2001:db8::1", "2001:db8::1", "2001:db8::1"),
            (
                "2001:db8:1::/48",
                "2001:db8:1::/48",
                "2001:db8:1::",
                "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
            ),
            (
                "2001:db8:1:2:3::9/64",
                "2001:db8:1:2::/64",
                "2001:db8:1:2::",
                "2001:db8:1:2:ffff:ffff:ffff:ffff",
            ),
            (
                "2001:db8::5/128",
                "2001:db8::5",
                "2001:db8::5",
                "2001:db8::5",
            ),
        ] {
            let e = entry(text);
            assert_eq!(e.to_string(), canonical, "{text}");
            assert_eq!((e.first(), e.last()), (ip(first), ip(last)), "{text}");
            // The canonical text is an entry of the same addresses.
            assert_eq!(entry(canonical), e, "{text}");
        }
        assert_eq!(entry("192.0.2.0-192.0.2.255").addresses(), 256);
        assert_eq!(entry("2001:db8::/48").addresses(), 1 << 80);
    }

    /// Every refused form, with the message that names the entry and the rule.
    #[test]
    fn the_refused_forms_name_the_entry_and_the_rule() {
        for (text, message) in [
            (
                "",
                "\"\" is not an IP list entry: use an IPv4 address, a range a-b, a CIDR block (IPv4 /24 to /32, IPv6 /48 to /128) or an IPv6 address",
            ),
            (
                "mail.contoso.test",
                "\"mail.contoso.test\" is not an IP list entry",
            ),
            ("192.0.2", "\"192.0.2\" is not an IP list entry"),
            ("192.0.2.256", "\"192.0.2.256\" is not an IP list entry"),
            ("192.0.2.1/", "\"192.0.2.1/\" is not an IP list entry"),
            ("192.0.2.1/+24", "\"192.0.2.1/+24\" is not an IP list entry"),
            (
                "192.0.2.1/0024",
                "\"192.0.2.1/0024\" is not an IP list entry",
            ),
            (
                "192.0.2.1/24/25",
                "\"192.0.2.1/24/25\" is not an IP list entry",
            ),
            ("192.0.2.1-", "\"192.0.2.1-\" is not an IP list entry"),
            (
                "192.0.2.1-192.0.2.2-192.0.2.3",
                "\"192.0.2.1-192.0.2.2-192.0.2.3\" is not an IP list entry",
            ),
            (
                "192.0.2.0/24-192.0.3.0",
                "\"192.0.2.0/24-192.0.3.0\" is not an IP list entry",
            ),
            ("fe80::1%eth0", "\"fe80::1%eth0\" is not an IP list entry"),
            (
                "192.0.2.0/23",
                "\"192.0.2.0/23\": an IPv4 CIDR block must be /24 to /32 (as in Exchange Online's connection filter); list a larger network as several /24 blocks",
            ),
            (
                "10.0.0.0/8",
                "\"10.0.0.0/8\": an IPv4 CIDR block must be /24 to /32",
            ),
            (
                "0.0.0.0/0",
                "\"0.0.0.0/0\": an IPv4 CIDR block must be /24 to /32",
            ),
            (
                "192.0.2.0/33",
                "\"192.0.2.0/33\": a CIDR prefix must be at most /32",
            ),
            (
                "192.0.2.0-192.0.3.0",
                "\"192.0.2.0-192.0.3.0\": a range may hold at most 256 addresses (as in Exchange Online's connection filter); this one holds 257",
            ),
            (
                "192.0.2.9-192.0.2.1",
                "\"192.0.2.9-192.0.2.1\": a range goes from the lower address to the higher",
            ),
            (
                "2001:db8::1-2001:db8::9",
                "\"2001:db8::1-2001:db8::9\": a range a-b is of IPv4 addresses; give IPv6 as an address or a CIDR block /48 to /128",
            ),
            (
                "192.0.2.1-2001:db8::9",
                "\"192.0.2.1-2001:db8::9\": a range a-b is of IPv4 addresses",
            ),
            (
                "2001:db8::/47",
                "\"2001:db8::/47\": an IPv6 CIDR block must be /48 to /128",
            ),
            ("::/0", "\"::/0\": an IPv6 CIDR block must be /48 to /128"),
            (
                "2001:db8::/129",
                "\"2001:db8::/129\": a CIDR prefix must be at most /128",
            ),
            (
                "::ffff:192.0.2.1",
                "\"::ffff:192.0.2.1\" is an IPv4-mapped IPv6 address; write it as IPv4 (the IPv4 rules apply to it)",
            ),
            (
                "::ffff:0:0/96",
                "\"::ffff:0:0/96\" is an IPv4-mapped IPv6 address",
            ),
            (
                "::ffff:192.0.2.1-::ffff:192.0.2.9",
                "\"::ffff:192.0.2.1-::ffff:192.0.2.9\" is an IPv4-mapped IPv6 address",
            ),
        ] {
            let error = IpEntry::parse(text).expect_err(text).to_string();
            assert!(error.starts_with(message), "{text}: {error}");
        }
    }

    #[test]
    fn a_list_finds_the_entry_holding_an_address() {
        let list = IpList::new(
            [
                "192.0.2.0/24",
                "192.0.2.128/25",
                "198.51.100.7",
                "198.51.100.1-198.51.100.5",
                "2001:db8:1::/48",
            ]
            .map(entry),
        );
        let found = |a: &str| list.find(ip(a)).map(|e| e.to_string());
        assert_eq!(found("192.0.2.200").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(found("198.51.100.7").as_deref(), Some("198.51.100.7"));
        assert_eq!(found("198.51.100.6"), None);
        assert_eq!(
            found("198.51.100.3").as_deref(),
            Some("198.51.100.1-198.51.100.5")
        );
        // An IPv4 client on a dual-stack listener is its IPv4 address.
        assert_eq!(
            found("::ffff:198.51.100.7").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            found("2001:db8:1:ffff::1").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(found("2001:db8:2::1"), None);
        assert_eq!(found("10.0.0.1"), None);
        assert!(IpList::default().find(ip("192.0.2.1")).is_none());
        // A long entry before a short one still holds the addresses past the short one.
        let list = IpList::new(["192.0.2.0/24", "192.0.2.1", "192.0.2.3"].map(entry));
        assert_eq!(
            list.find(ip("192.0.2.2")).map(|e| e.to_string()).as_deref(),
            Some("192.0.2.0/24")
        );
    }

    /// A list of the most entries Exchange allows answers in a handful of comparisons: the
    /// lookup is a binary search (1,273 entries: about 11 steps), not a scan (up to 1,273).
    #[test]
    fn a_full_list_is_searched_not_scanned() {
        let entries: Vec<IpEntry> = (0..1273u32)
            .map(|i| IpEntry::single(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 2 * i))))
            .collect();
        let list = IpList::new(entries);
        assert!(list.find(ip("10.0.9.240")).is_some());
        assert!(list.find(ip("10.0.9.241")).is_none());
        // Counted: the entries one lookup looks at.
        for probe in [
            "10.0.0.0",
            "10.0.4.250",
            "10.0.9.240",
            "10.0.9.241",
            "192.0.2.1",
        ] {
            LOOKED_AT.with(|n| n.set(0));
            let _ = list.find(ip(probe));
            let looked_at = LOOKED_AT.with(|n| n.get());
            assert!(looked_at <= 12, "{probe}: {looked_at} entries looked at");
        }
    }

    /// IPv4 entries of every form, within 2,048 addresses of 192.0.0.0, so that they overlap
    /// and nest (where a lookup could go wrong).
    fn v4_entry() -> impl Strategy<Value = IpEntry> {
        let base = || 0xc000_0000u32..0xc000_0800;
        prop_oneof![
            base().prop_map(|a| IpEntry::from(Ipv4Addr::from(a))),
            (base(), MIN_IPV4_PREFIX..=32u8)
                .prop_map(|(a, p)| entry(&format!("{}/{p}", Ipv4Addr::from(a)))),
            (base(), 0..MAX_RANGE_ADDRESSES).prop_map(|(a, n)| {
                entry(&format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(a + n)))
            }),
        ]
    }

    fn v6_entry() -> impl Strategy<Value = IpEntry> {
        (any::<u128>(), MIN_IPV6_PREFIX..=128u8)
            .prop_map(|(a, p)| entry(&format!("{}/{p}", Ipv6Addr::from(a))))
            .prop_filter("mapped", |e| !is_mapped(e.first()))
    }

    proptest! {
        /// A CIDR block of every IPv4 prefix: /24 to /32 accepted with 2^(32-p) addresses,
        /// holding the address it was written with; shorter ones refused.
        #[test]
        fn ipv4_cidr_prefixes(a in any::<u32>(), p in 0u8..=40) {
            let text = format!("{}/{p}", Ipv4Addr::from(a));
            match IpEntry::parse(&text) {
                Ok(e) => {
                    prop_assert!((MIN_IPV4_PREFIX..=32).contains(&p));
                    prop_assert_eq!(e.addresses(), 1u128 << (32 - p));
                    prop_assert!(e.contains(IpAddr::V4(a.into())));
                    prop_assert_eq!(entry(&e.to_string()), e);
                }
                Err(IpEntryError::Ipv4PrefixTooShort { entry }) => {
                    prop_assert!(p < MIN_IPV4_PREFIX);
                    prop_assert_eq!(entry, text);
                }
                Err(IpEntryError::PrefixTooLong { max, .. }) => {
                    prop_assert!(p > 32);
                    prop_assert_eq!(max, 32);
                }
                Err(e) => prop_assert!(false, "{text}: {e}"),
            }
        }

        /// Every IPv6 prefix: /48 to /128 accepted, shorter refused.
        #[test]
        fn ipv6_cidr_prefixes(a in any::<u128>(), p in 0u8..=130) {
            let address = Ipv6Addr::from(a);
            prop_assume!(address.to_ipv4_mapped().is_none());
            let text = format!("{address}/{p}");
            match IpEntry::parse(&text) {
                Ok(e) => {
                    prop_assert!((MIN_IPV6_PREFIX..=128).contains(&p));
                    prop_assert!(e.contains(IpAddr::V6(address)));
                    prop_assert_eq!(e.addresses(), 1u128 << (128 - p));
                    prop_assert_eq!(entry(&e.to_string()), e);
                }
                Err(IpEntryError::Ipv6PrefixTooShort { .. }) => prop_assert!(p < MIN_IPV6_PREFIX),
                Err(IpEntryError::PrefixTooLong { .. }) => prop_assert!(p > 128),
                Err(e) => prop_assert!(false, "{text}: {e}"),
            }
        }

        /// Every IPv4 range: accepted exactly when it goes upwards and holds at most 256
        /// addresses, and then it holds both ends and nothing outside them.
        #[test]
        fn ipv4_ranges(a in any::<u32>(), d in -300i64..=300) {
            let b = (i64::from(a) + d).clamp(0, i64::from(u32::MAX)) as u32;
            let text = format!("{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b));
            let result = IpEntry::parse(&text);
            if a > b {
                prop_assert!(matches!(result, Err(IpEntryError::RangeBackwards { .. })), "{text}");
            } else if b - a >= MAX_RANGE_ADDRESSES {
                prop_assert!(matches!(result, Err(IpEntryError::RangeTooLarge { .. })), "{text}");
            } else {
                let e = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(e.addresses(), u128::from(b - a) + 1);
                prop_assert!(e.contains(IpAddr::V4(a.into())) && e.contains(IpAddr::V4(b.into())));
                if let Some(before) = a.checked_sub(1) {
                    prop_assert!(!e.contains(IpAddr::V4(before.into())));
                }
                if let Some(after) = b.checked_add(1) {
                    prop_assert!(!e.contains(IpAddr::V4(after.into())));
                }
                prop_assert_eq!(entry(&e.to_string()), e);
            }
        }

        /// Any text: parsing never panics, and what is accepted reads back as itself.
        #[test]
        fn any_text_is_read_or_refused(text in "[0-9a-fA-F:./\\- \\[\\]]{0,48}") {
            if let Ok(e) = IpEntry::parse(&text) {
                prop_assert_eq!(entry(&e.to_string()), e);
            }
        }

        /// The binary search finds an entry exactly when some entry holds the address, and the
        /// entry it finds holds it.
        #[test]
        fn a_list_agrees_with_a_scan(
            entries in prop::collection::vec(prop_oneof![v4_entry(), v6_entry()], 0..40),
            probes in prop::collection::vec(0xbfff_ff00u32..0xc000_0a00, 1..40),
            near in prop::collection::vec((any::<prop::sample::Index>(), -2i64..=2), 1..40),
        ) {
            let list = IpList::new(entries.clone());
            let mut addresses: Vec<IpAddr> = probes.iter().map(|&a| IpAddr::V4(a.into())).collect();
            // Addresses at and around the entries' ends, where mistakes would be.
            for (index, d) in near {
                if entries.is_empty() { break; }
                let e = entries[index.index(entries.len())];
                for end in [e.first(), e.last()] {
                    addresses.push(match end {
                        IpAddr::V4(v) => IpAddr::V4(((i64::from(u32::from(v)) + d).clamp(0, i64::from(u32::MAX)) as u32).into()),
                        IpAddr::V6(v) => IpAddr::V6(u128::from(v).wrapping_add(d as u128).into()),
                    });
                }
            }
            for a in addresses {
                let scanned = entries.iter().any(|e| e.contains(a));
                let found = list.find(a);
                prop_assert_eq!(found.is_some(), scanned, "{}", a);
                if let Some(e) = found {
                    prop_assert!(e.contains(a));
                }
            }
        }
    }
}

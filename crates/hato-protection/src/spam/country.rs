//! The country of an IP address, from a table bundled in the binary (`ip-country.bin`, built
//! by `scripts/ip-country-table.py` from the npm package `@ip-location-db/geo-whois-asn-country`:
//! the RIRs' WHOIS and ASN data, CC BY 4.0 by the NRO; see `NOTICE` beside this file). For the
//! spam filter's region block list (`EnableRegionBlockList`, `exchange-online-behaviour.md`
//! §6.3) and the antispam report's `CTRY`.
//!
//! The table is sorted range starts (IPv4 by address, IPv6 by /64 network), each holding until
//! the next; a lookup is one binary search over the embedded bytes, no allocation, nothing
//! parsed at start-up beyond the header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

static TABLE_BYTES: &[u8] = include_bytes!("ip-country.bin");

/// The code index that means "no country" (a gap between allocated ranges).
const NONE: u8 = 255;

struct Table {
    codes: &'static [u8],
    v4_starts: &'static [u8],
    v4_codes: &'static [u8],
    v6_starts: &'static [u8],
    v6_codes: &'static [u8],
}

/// Reads the header; `None` if the embedded file is not the format (a build-time mistake, so
/// every lookup answers "unknown" rather than anything wrong).
fn parse(bytes: &'static [u8]) -> Option<Table> {
    let rest = bytes.strip_prefix(b"HATOIPC1")?;
    let (count, rest) = split_u32(rest, 2)?;
    let (codes, rest) = split(rest, count * 2)?;
    let (n4, rest) = split_u32(rest, 4)?;
    let (v4_starts, rest) = split(rest, n4 * 4)?;
    let (v4_codes, rest) = split(rest, n4)?;
    let (n6, rest) = split_u32(rest, 4)?;
    let (v6_starts, rest) = split(rest, n6 * 8)?;
    let (v6_codes, _) = split(rest, n6)?;
    Some(Table {
        codes,
        v4_starts,
        v4_codes,
        v6_starts,
        v6_codes,
    })
}

fn split(bytes: &'static [u8], n: usize) -> Option<(&'static [u8], &'static [u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

/// A big-endian count of `width` (2 or 4) bytes.
fn split_u32(bytes: &'static [u8], width: usize) -> Option<(usize, &'static [u8])> {
    let (head, rest) = split(bytes, width)?;
    let n = head.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
    Some((n, rest))
}

fn table() -> Option<&'static Table> {
    static TABLE: OnceLock<Option<Table>> = OnceLock::new();
    TABLE.get_or_init(|| parse(TABLE_BYTES)).as_ref()
}

/// The index of the last start ≤ `key` among `starts` (fixed-width big-endian keys).
fn last_at_or_below(starts: &[u8], width: usize, key: u64) -> Option<usize> {
    let n = starts.len() / width;
    let at = |i: usize| {
        starts[i * width..(i + 1) * width]
            .iter()
            .fold(0u64, |k, b| (k << 8) | u64::from(*b))
    };
    // The number of starts ≤ key (a partition point: starts are sorted).
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at(mid) <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

fn code(table: &Table, index: u8) -> Option<&'static str> {
    if index == NONE {
        return None;
    }
    let at = usize::from(index) * 2;
    table
        .codes
        .get(at..at + 2)
        .and_then(|c| std::str::from_utf8(c).ok())
}

/// The country (ISO 3166-1 alpha-2, upper case) the address is registered in; `None` for
/// addresses that are not on the public Internet (loopback, private, link-local, shared,
/// documentation, multicast, unique-local) and for unallocated space. An IPv4-mapped IPv6
/// address is looked up as its IPv4 address.
pub fn country_of(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => country_of_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => country_of_v4(v4),
            None => country_of_v6(v6),
        },
    }
}

fn country_of_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if !is_public_v4(ip) {
        return None;
    }
    let table = table()?;
    let i = last_at_or_below(table.v4_starts, 4, u64::from(u32::from(ip)))?;
    code(table, *table.v4_codes.get(i)?)
}

fn country_of_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if !is_public_v6(ip) {
        return None;
    }
    let table = table()?;
    let network = (u128::from(ip) >> 64) as u64;
    let i = last_at_or_below(table.v6_starts, 8, network)?;
    code(table, *table.v6_codes.get(i)?)
}

/// Not loopback, private (RFC 1918), shared (RFC 6598), link-local, documentation (RFC 5737),
/// benchmarking (RFC 2544), multicast, reserved, "this network" or broadcast.
fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && c == 0))
}

/// Global unicast (2000::/3) outside the documentation prefix (RFC 3849).
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_reads() {
        let t = table().expect("the table parses");
        assert!(t.v4_starts.len() / 4 > 100_000);
        assert!(t.v6_starts.len() / 8 > 100_000);
    }

    #[test]
    fn public_addresses_have_their_registry_country_and_private_ones_none() {
        assert_eq!(country_of("1.0.1.1".parse().unwrap()), Some("CN"));
        assert_eq!(country_of("2a01:4f8::1".parse().unwrap()), Some("DE"));
        assert_eq!(country_of("::ffff:1.0.1.1".parse().unwrap()), Some("CN"));
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "100.64.0.1",
            "198.51.100.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "2001:db8::1",
        ] {
            assert_eq!(country_of(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn last_at_or_below_finds_the_range() {
        let starts: Vec<u8> = [10u32, 20, 30]
            .iter()
            .flat_map(|s| s.to_be_bytes())
            .collect();
        assert_eq!(last_at_or_below(&starts, 4, 5), None);
        assert_eq!(last_at_or_below(&starts, 4, 10), Some(0));
        assert_eq!(last_at_or_below(&starts, 4, 29), Some(1));
        assert_eq!(last_at_or_below(&starts, 4, 1000), Some(2));
    }
}

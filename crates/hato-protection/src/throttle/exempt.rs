//! Tenants' exemption lists: IP addresses and networks the throttle never defers (Exchange
//! Online exempts traffic that an inbound connector of type OnPremises identifies,
//! `exchange-online-behaviour.md` §8 and §9.1; hato's on-premises connectors will register their
//! IPs here).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address or a CIDR network of an exemption list: IPv4 `/24`–`/32` (Exchange Online's
/// connector `SenderIPAddresses`), IPv6 `/48`–`/128` (which Exchange lacks). Host bits are
/// cleared (`192.0.2.7/24` is `192.0.2.0/24`, as Exchange reads it); an IPv4-mapped IPv6
/// address is its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not an exemption entry; each names the entry and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "{0}: not an IP address or CIDR network (IPv4 a.b.c.d or a.b.c.d/24 to /32, IPv6 x:x::x or x:x::/48 to /128)"
    )]
    Syntax(String),
    #[error("{0}: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges)")]
    V4Prefix(String),
    #[error("{0}: an IPv6 network must be /48 to /128")]
    V6Prefix(String),
}

impl Network {
    /// `a.b.c.d`, `a.b.c.d/nn`, an IPv6 address or `x:x::/nn`.
    pub fn parse(text: &str) -> Result<Self, NetworkError> {
        let text = text.trim();
        let syntax = || NetworkError::Syntax(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                // Digits only: `u8::from_str` would also take `+24`.
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax());
                }
                let p: u8 = p.parse().map_err(|_| syntax())?;
                (a.parse::<IpAddr>().map_err(|_| syntax())?, Some(p))
            }
            None => (text.parse::<IpAddr>().map_err(|_| syntax())?, None),
        };
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match (v6.to_ipv4_mapped(), prefix) {
                (Some(v4), None) => (IpAddr::V4(v4), 32),
                (Some(v4), Some(p)) if p >= 96 => (IpAddr::V4(v4), p - 96),
                (Some(_), Some(_)) => return Err(NetworkError::V4Prefix(text.to_string())),
                (None, p) => (addr, p.unwrap_or(128)),
            },
            IpAddr::V4(_) => (addr, prefix.unwrap_or(32)),
        };
        match addr {
            IpAddr::V4(v4) => {
                if !(24..=32).contains(&prefix) {
                    return Err(NetworkError::V4Prefix(text.to_string()));
                }
                let mask = u32::MAX << (32 - u32::from(prefix));
                Ok(Network {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)),
                    prefix,
                })
            }
            IpAddr::V6(v6) => {
                if !(48..=128).contains(&prefix) {
                    return Err(NetworkError::V6Prefix(text.to_string()));
                }
                let mask = u128::MAX << (128 - u32::from(prefix));
                Ok(Network {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                })
            }
        }
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address as its IPv4 address) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (bits, len) = self.wide();
        let mask = u128::MAX << (128 - u32::from(len));
        wide(ip) & mask == bits
    }

    /// The network in IPv6's 128 bits (IPv4 as IPv4-mapped) and its prefix there.
    fn wide(&self) -> (u128, u8) {
        match self.addr {
            IpAddr::V4(_) => (wide(self.addr), self.prefix + 96),
            IpAddr::V6(_) => (wide(self.addr), self.prefix),
        }
    }
}

/// `ip` in 128 bits: IPv4 (and IPv4-mapped IPv6) as `::ffff:a.b.c.d`.
fn wide(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl fmt::Display for Network {
    /// A single address without a prefix, a network as `address/prefix`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::parse(s)
    }
}

/// One entry of a tenant's exemption list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exemption {
    /// The tenant's name.
    pub tenant: String,
    pub network: Network,
}

/// Every tenant's entries, for a lookup per connection: one hash set per prefix length in use,
/// so a lookup costs one probe per distinct length (at most 9 for IPv4 and 81 for IPv6), however
/// many entries there are.
#[derive(Debug, Default)]
pub(crate) struct Exemptions {
    by_prefix: Vec<(u8, HashMap<u128, Vec<Exemption>>)>,
}

impl Exemptions {
    pub(crate) fn new(entries: impl IntoIterator<Item = Exemption>) -> Self {
        let mut by_prefix: HashMap<u8, HashMap<u128, Vec<Exemption>>> = HashMap::new();
        for e in entries {
            let (bits, len) = e.network.wide();
            by_prefix
                .entry(len)
                .or_default()
                .entry(bits)
                .or_default()
                .push(e);
        }
        let mut by_prefix: Vec<_> = by_prefix.into_iter().collect();
        // Most specific first: the entry a status shows first is the narrowest.
        by_prefix.sort_by_key(|e| std::cmp::Reverse(e.0));
        Exemptions { by_prefix }
    }

    /// Every entry that covers `ip`, the narrowest first.
    pub(crate) fn matching(&self, ip: IpAddr) -> impl Iterator<Item = &Exemption> {
        let bits = wide(ip);
        self.by_prefix.iter().flat_map(move |(len, set)| {
            let mask = u128::MAX << (128 - u32::from(*len));
            set.get(&(bits & mask)).into_iter().flatten()
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

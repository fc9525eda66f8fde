//! DNS, as every stage that needs it sees it: a [`Resolver`] trait with the lookups hato makes
//! (addresses of a name, TXT records, MX, the PTR name of an IP address), asynchronous and
//! object-safe (boxed futures), and a typed [`DnsError`] that tells "the name has nothing" apart
//! from "the lookup failed" — the difference between "not listed" and "could not check" for a
//! DNS block list, and between "no record" and "try again" for domain verification (and later
//! SPF's `none` vs `temperror`, RFC 7208 §2.6).
//!
//! The implementation over hickory-resolver is the `hato-dns` crate; nothing here does I/O.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

/// The future a lookup returns: `'static` and `Send`, so a stage can move it into its own
/// (equally `'static`) decision future.
pub type DnsFuture<T> = Pin<Box<dyn Future<Output = Result<T, DnsError>> + Send + 'static>>;

/// The record types hato looks up (for errors and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    A,
    Aaaa,
    Txt,
    Mx,
    Ptr,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Txt => "TXT",
            RecordKind::Mx => "MX",
            RecordKind::Ptr => "PTR",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a lookup gave no records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (RCODE 3, NXDOMAIN; RFC 1035 §4.1.1, RFC 8020).
    #[error("{name}: no such domain (NXDOMAIN)")]
    NxDomain { name: String },
    /// The name exists but has no records of this type (NOERROR with an empty answer, "NODATA",
    /// RFC 2308 §2.2).
    #[error("{name}: no {kind} records")]
    NoRecords { name: String, kind: RecordKind },
    /// No answer within the resolver's timeout (`dns.timeout_ms`).
    #[error("{name}: {kind} lookup timed out after {ms} ms")]
    Timeout {
        name: String,
        kind: RecordKind,
        ms: u64,
    },
    /// The server answered with an error code: REFUSED (RCODE 5: a server that does not serve
    /// us, or a public resolver a list refuses), SERVFAIL (RCODE 2), …
    #[error("{name}: {kind} lookup refused by the server ({code})")]
    Refused {
        name: String,
        kind: RecordKind,
        code: String,
    },
    /// Anything else: the name is not a valid domain name, no server could be reached, the
    /// answer could not be read.
    #[error("{name}: {kind} lookup failed: {message}")]
    Failed {
        name: String,
        kind: RecordKind,
        message: String,
    },
}

impl DnsError {
    /// The name definitely has no such records (NXDOMAIN or NODATA): an answer, not a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DnsError::NxDomain { .. } | DnsError::NoRecords { .. })
    }

    /// The lookup did not get an answer (timeout, refusal, failure): the caller could not find
    /// out and, where it must decide anyway, fails open and says so.
    pub fn is_temporary(&self) -> bool {
        !self.is_not_found()
    }
}

/// One MX record (RFC 5321 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The exchange's name, lower case, without the final dot.
    pub exchange: String,
}

/// The DNS lookups hato makes. Names are absolute (no search list is applied) and given without
/// the final dot. Each future is bounded by the implementation's timeout, and an answer's size
/// by the DNS message it came in (at most 64 KiB over TCP).
pub trait Resolver: Send + Sync + 'static {
    /// The IPv4 addresses of `name` (A records, CNAMEs followed).
    fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>>;

    /// The IPv6 addresses of `name` (AAAA records, CNAMEs followed).
    fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>>;

    /// The TXT records of `name`, each one's character-strings joined into one text as RFC 7208
    /// §3.3 and RFC 6376 §3.6.2.2 read them (bytes that are not UTF-8 become U+FFFD).
    fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>>;

    /// The MX records of `name`, in the order of their preference.
    fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>>;

    /// The names of `ip` (PTR records of its `in-addr.arpa` / `ip6.arpa` name), lower case,
    /// without the final dot.
    fn lookup_ptr(&self, ip: IpAddr) -> DnsFuture<Vec<String>>;

    /// Forgets what a cache holds for `name`'s records of `kind`, so that the next lookup asks
    /// the server: for a check a person starts right after publishing a record (domain
    /// verification), which must not be answered by a "no such record" cached before. A
    /// resolver without a cache does nothing.
    fn forget(&self, _name: &str, _kind: RecordKind) {}
}

/// The name under which a DNS block list publishes `ip` in `zone` (RFC 5782 §2.1, §2.4): an
/// IPv4 address's octets in reverse order, an IPv6 address's 32 nibbles in reverse order, each
/// a label, then the zone. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack
/// listener may see an IPv4 client) is looked up as the IPv4 address it is.
pub fn reversed_name(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => reversed_v4(v4, zone),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => reversed_v4(v4, zone),
            None => {
                let mut name = String::with_capacity(64 + zone.len());
                for byte in v6.octets().iter().rev() {
                    for nibble in [byte & 0x0f, byte >> 4] {
                        name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                        name.push('.');
                    }
                }
                name.push_str(zone);
                name
            }
        },
    }
}

fn reversed_v4(ip: Ipv4Addr, zone: &str) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.{zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_names_follow_rfc_5782() {
        // RFC 5782 §2.1's example.
        assert_eq!(
            reversed_name("192.0.2.99".parse().unwrap(), "bad.example.com"),
            "99.2.0.192.bad.example.com"
        );
        // RFC 5782 §2.4's example: 2001:db8:1:2:3:4:567:89ab.
        assert_eq!(
            reversed_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
        assert_eq!(
            reversed_name("::ffff:192.0.2.1".parse().unwrap(), "z.test"),
            "1.2.0.192.z.test"
        );
    }

    #[test]
    fn not_found_is_an_answer_and_the_rest_are_failures() {
        let nx = DnsError::NxDomain {
            name: "a.test".into(),
        };
        let nodata = DnsError::NoRecords {
            name: "a.test".into(),
            kind: RecordKind::Txt,
        };
        let timeout = DnsError::Timeout {
            name: "a.test".into(),
            kind: RecordKind::A,
            ms: 1500,
        };
        assert!(nx.is_not_found() && nodata.is_not_found());
        assert!(timeout.is_temporary() && !timeout.is_not_found());
        assert_eq!(nodata.to_string(), "a.test: no TXT records");
        assert_eq!(
            timeout.to_string(),
            "a.test: A lookup timed out after 1500 ms"
        );
    }
}

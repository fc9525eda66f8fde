//! Where an outside recipient's mail goes: the next hop's hosts, in the order they are tried.
//!
//! MX delivery follows RFC 5321 §5.1: the domain's MX records by preference (equal preferences
//! in random order, so that load spreads as the domain's owner meant), each host's A then AAAA
//! addresses; no MX record → the domain itself as the only host (its A/AAAA, the "implicit
//! MX"); a null MX (`0 .`, RFC 7505) → the domain takes no mail. Everything an outside DNS
//! answer holds is bounded: at most [`MAX_HOSTS`] hosts and [`MAX_ADDRESSES`] addresses each,
//! as Postfix's `smtp_mx_address_limit` bounds its work.

use super::NextHop;
use hato_core::dns::{DnsError, Resolver};
use hato_core::reply::{self, Reply};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// The most hosts of one next hop that are tried (an MX answer may list hundreds).
pub const MAX_HOSTS: usize = 10;
/// The most addresses of one host that are tried.
pub const MAX_ADDRESSES: usize = 4;

/// One host to try, with its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its name (the MX exchange, the smart host, or the domain for an implicit MX); an IP
    /// literal's text for a host given by address.
    pub name: String,
    pub preference: u16,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
}

/// Why a next hop has no host to try.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// It never will (the domain does not exist, has a null MX, or no host at all): the
    /// recipients fail with this reply.
    #[error("{reason}")]
    Permanent { reply: Reply, reason: String },
    /// Not now (a lookup got no answer): the recipients are deferred with this reply.
    #[error("{reason}")]
    Temporary { reply: Reply, reason: String },
}

impl RouteError {
    pub fn reply(&self) -> &Reply {
        match self {
            RouteError::Permanent { reply, .. } | RouteError::Temporary { reply, .. } => reply,
        }
    }
}

/// The hosts of `hop`, in the order to try them, each on `port` unless it names its own.
pub async fn resolve(
    resolver: &dyn Resolver,
    hop: &NextHop,
    port: u16,
) -> Result<Vec<Host>, RouteError> {
    match hop {
        NextHop::Mx { domain } | NextHop::ConnectorMx { domain, .. } => {
            resolve_mx(resolver, domain, port).await
        }
        NextHop::SmartHosts { hosts, .. } => resolve_smart_hosts(resolver, hosts, port).await,
    }
}

/// A random key per call, for shuffling equal preferences (no `rand` dependency: the standard
/// library's hasher keys are random per process and per `RandomState`).
fn random_key() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// A random position below `n` (at least 1): where a smart hosts' round robin starts.
pub fn random_index(n: usize) -> usize {
    usize::try_from(random_key() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// RFC 5321 §5.1 for `domain`.
pub async fn resolve_mx(
    resolver: &dyn Resolver,
    domain: &str,
    port: u16,
) -> Result<Vec<Host>, RouteError> {
    let records = match resolver.lookup_mx(domain).await {
        Ok(records) => records,
        // No MX record: the domain itself is the one host (RFC 5321 §5.1, the implicit MX).
        Err(DnsError::NoRecords { .. }) => Vec::new(),
        Err(DnsError::NxDomain { .. }) => {
            return Err(RouteError::Permanent {
                reply: reply::dns_domain_does_not_exist(domain),
                reason: format!("The recipient's domain {domain} does not exist (NXDOMAIN)"),
            });
        }
        Err(e) => {
            return Err(RouteError::Temporary {
                reply: reply::dns_query_failed(&e),
                reason: format!("The MX lookup of {domain} got no answer: {e}"),
            });
        }
    };
    let is_null = |exchange: &str| exchange.is_empty() || exchange == ".";
    // RFC 7505 §3: a null MX is the domain's only MX record. Should others stand beside it
    // (a misconfiguration), the real ones are used.
    if !records.is_empty() && records.iter().all(|m| is_null(&m.exchange)) {
        return Err(RouteError::Permanent {
            reply: reply::null_mx(domain),
            reason: format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
        });
    }
    let implicit = records.is_empty();
    let mut targets: Vec<(u16, u64, String)> = records
        .into_iter()
        .filter(|m| !is_null(&m.exchange))
        .map(|m| (m.preference, random_key(), m.exchange))
        .collect();
    if implicit {
        targets.push((0, 0, domain.to_string()));
    }
    // By preference; equal preferences in random order (RFC 5321 §5.1).
    targets.sort_unstable_by_key(|t| (t.0, t.1));
    targets.dedup_by(|a, b| a.2 == b.2);
    targets.truncate(MAX_HOSTS);
    let mut hosts = Vec::with_capacity(targets.len());
    let mut failures = Vec::new();
    let mut temporary = false;
    for (preference, _, name) in targets {
        match addresses(resolver, &name).await {
            Ok(addresses) => hosts.push(Host {
                name,
                preference,
                addresses,
                port,
            }),
            Err(e) => {
                temporary |= e.is_temporary();
                failures.push(e.to_string());
            }
        }
    }
    if !hosts.is_empty() {
        return Ok(hosts);
    }
    if implicit && !temporary {
        return Err(RouteError::Permanent {
            reply: reply::no_mail_host(domain),
            reason: format!(
                "{domain} has no MX record and no address (A or AAAA) to deliver to: {}",
                failures.join("; ")
            ),
        });
    }
    let detail = failures.join("; ");
    Err(RouteError::Temporary {
        reply: reply::dns_query_failed(&detail),
        reason: format!("No MX host of {domain} has an address: {detail}"),
    })
}

/// A host's IPv4 then IPv6 addresses; an error only when it has none (the A lookup's error
/// when both failed alike, a temporary one when either did).
async fn addresses(resolver: &dyn Resolver, name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let a = resolver.lookup_a(name).await;
    let aaaa = resolver.lookup_aaaa(name).await;
    let mut out: Vec<IpAddr> = Vec::new();
    if let Ok(v4) = &a {
        out.extend(v4.iter().copied().map(IpAddr::V4));
    }
    if let Ok(v6) = &aaaa {
        out.extend(v6.iter().copied().map(IpAddr::V6));
    }
    out.dedup();
    out.truncate(MAX_ADDRESSES);
    if !out.is_empty() {
        return Ok(out);
    }
    match (a, aaaa) {
        (Err(e), _) if e.is_temporary() => Err(e),
        (_, Err(e)) if e.is_temporary() => Err(e),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(_)) => Err(DnsError::NoRecords {
            name: name.to_string(),
            kind: hato_core::dns::RecordKind::A,
        }),
    }
}

/// Smart hosts as an outbound connector names them: an IP (`192.0.2.1`, `[2001:db8::1]`) or a
/// host name, each with an optional `:port`, tried in the order given (the agent decides the
/// order: Exchange's round robin from a random start). A host name is resolved as a mail
/// domain: its MX hosts by preference, else its own A/AAAA (reference §9.2: "an FQDN smart
/// host is resolved MX first", RFC 5321 §5.1), so primary and backup hosts can be built with
/// an MX zone.
async fn resolve_smart_hosts(
    resolver: &dyn Resolver,
    given: &[String],
    port: u16,
) -> Result<Vec<Host>, RouteError> {
    let mut hosts = Vec::new();
    let mut failures = Vec::new();
    for spec in given.iter().take(MAX_HOSTS) {
        let (name, host_port) = split_port(spec, port);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = name.parse::<IpAddr>() {
            hosts.push(Host {
                name: name.to_string(),
                preference: 0,
                addresses: vec![ip],
                port: host_port,
            });
            continue;
        }
        match resolve_mx(resolver, name, host_port).await {
            Ok(found) => hosts.extend(found),
            Err(e) => failures.push(e.to_string()),
        }
    }
    hosts.truncate(MAX_HOSTS);
    if hosts.is_empty() {
        let detail = failures.join("; ");
        return Err(RouteError::Temporary {
            reply: reply::dns_query_failed(&detail),
            reason: format!("No smart host has an address: {detail}"),
        });
    }
    Ok(hosts)
}

/// `host:port` → (host, port); a bare IPv6 address or a name without a port keeps `default`.
pub fn split_port(spec: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = spec.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (host, port);
    }
    match spec.rsplit_once(':') {
        Some((host, p)) if !host.contains(':') => (host, p.parse().unwrap_or(default)),
        _ => (spec, default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::dns::{DnsFuture, Mx, RecordKind};
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Answers from a table; a missing name is NXDOMAIN, a name listed with `None` times out.
    #[derive(Default)]
    struct Table {
        mx: HashMap<String, Option<Vec<Mx>>>,
        a: HashMap<String, Vec<Ipv4Addr>>,
    }

    impl Resolver for Table {
        fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>> {
            let r = match self.a.get(name) {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                Some(_) => Err(DnsError::NoRecords {
                    name: name.into(),
                    kind: RecordKind::A,
                }),
                None => Err(DnsError::NxDomain { name: name.into() }),
            };
            Box::pin(async move { r })
        }
        fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>> {
            let r = Err(DnsError::NoRecords {
                name: name.into(),
                kind: RecordKind::Aaaa,
            });
            Box::pin(async move { r })
        }
        fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
            let r = Err(DnsError::NxDomain { name: name.into() });
            Box::pin(async move { r })
        }
        fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
            let r = match self.mx.get(name) {
                Some(Some(v)) if !v.is_empty() => Ok(v.clone()),
                Some(Some(_)) => Err(DnsError::NoRecords {
                    name: name.into(),
                    kind: RecordKind::Mx,
                }),
                Some(None) => Err(DnsError::Timeout {
                    name: name.into(),
                    kind: RecordKind::Mx,
                    ms: 10,
                }),
                None => Err(DnsError::NxDomain { name: name.into() }),
            };
            Box::pin(async move { r })
        }
        fn lookup_ptr(&self, _ip: IpAddr) -> DnsFuture<Vec<String>> {
            Box::pin(async { Ok(vec![]) })
        }
    }

    fn mx(preference: u16, exchange: &str) -> Mx {
        Mx {
            preference,
            exchange: exchange.into(),
        }
    }

    fn local(n: u8) -> Vec<Ipv4Addr> {
        vec![Ipv4Addr::new(127, 0, 0, n)]
    }

    #[tokio::test]
    async fn mx_hosts_by_preference_equal_ones_shuffled() {
        let mut t = Table::default();
        let mut records = vec![mx(20, "backup.b.test"), mx(10, "mx1.b.test")];
        records.push(mx(10, "mx2.b.test"));
        t.mx.insert("b.test".into(), Some(records));
        for (name, n) in [("backup.b.test", 3), ("mx1.b.test", 1), ("mx2.b.test", 2)] {
            t.a.insert(name.into(), local(n));
        }
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..64 {
            let hosts = resolve_mx(&t, "b.test", 25).await.unwrap();
            assert_eq!(hosts.len(), 3);
            assert_eq!(hosts[2].name, "backup.b.test");
            assert!(hosts[..2].iter().all(|h| h.preference == 10));
            firsts.insert(hosts[0].name.clone());
        }
        // 64 draws of a fair coin come up the same way with probability 2^-63.
        assert_eq!(firsts.len(), 2, "equal preferences are shuffled");
    }

    #[tokio::test]
    async fn no_mx_is_the_domain_itself_and_without_an_address_fails_for_good() {
        let mut t = Table::default();
        t.mx.insert("b.test".into(), Some(vec![]));
        t.a.insert("b.test".into(), local(9));
        let hosts = resolve_mx(&t, "b.test", 2525).await.unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!((hosts[0].name.as_str(), hosts[0].port), ("b.test", 2525));
        t.a.insert("b.test".into(), vec![]);
        let e = resolve_mx(&t, "b.test", 25).await.unwrap_err();
        assert!(matches!(e, RouteError::Permanent { .. }), "{e:?}");
        assert_eq!(e.reply().status, "5.4.4");
    }

    #[tokio::test]
    async fn null_mx_nxdomain_and_timeouts() {
        let mut t = Table::default();
        t.mx.insert("null.test".into(), Some(vec![mx(0, "")]));
        t.mx.insert("slow.test".into(), None);
        let e = resolve_mx(&t, "null.test", 25).await.unwrap_err();
        assert_eq!((e.reply().code, &*e.reply().status), (556, "5.1.10"));
        let e = resolve_mx(&t, "gone.test", 25).await.unwrap_err();
        assert_eq!((e.reply().code, &*e.reply().status), (550, "5.4.310"));
        let e = resolve_mx(&t, "slow.test", 25).await.unwrap_err();
        assert!(matches!(e, RouteError::Temporary { .. }));
        assert_eq!((e.reply().code, &*e.reply().status), (450, "4.4.312"));
    }

    #[tokio::test]
    async fn an_mx_answer_is_bounded() {
        let mut t = Table::default();
        let records: Vec<Mx> = (0..500).map(|i| mx(i, &format!("mx{i}.b.test"))).collect();
        for r in &records {
            t.a.insert(r.exchange.clone(), local(1));
        }
        t.mx.insert("b.test".into(), Some(records));
        assert_eq!(resolve_mx(&t, "b.test", 25).await.unwrap().len(), MAX_HOSTS);
    }

    #[test]
    fn smart_host_ports() {
        assert_eq!(split_port("relay.test:2525", 25), ("relay.test", 2525));
        assert_eq!(split_port("relay.test", 25), ("relay.test", 25));
        assert_eq!(split_port("[2001:db8::1]:26", 25), ("2001:db8::1", 26));
        assert_eq!(split_port("2001:db8::1", 25), ("2001:db8::1", 25));
    }
}

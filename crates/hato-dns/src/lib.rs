//! hato's DNS: [`HickoryResolver`], the [`hato_core::dns::Resolver`] over hickory-resolver.
//!
//! - **Servers**: the ones in the settings (`[dns] servers`, each `IP` or `IP:port`, asked over
//!   UDP and, for answers too big for a datagram, TCP), else the system's (`/etc/resolv.conf`).
//!   Tests point it at a server on loopback ([`testing`], feature `test-server`).
//! - **Cache**: hickory's, which keeps each answer for its TTL and each "no such name/record"
//!   for the zone's negative TTL (RFC 2308 §5), at most `cache_size` answers.
//! - **Timeout**: every lookup ends within `timeout_ms` (an answer, or [`DnsError::Timeout`]);
//!   each query to a server may take half of it, so one lost datagram is asked again in time.
//!
//! Names are asked as absolute names (no search list), and `/etc/hosts` is not read: what a
//! mail decision reads comes from the DNS.

use hato_core::dns::{DnsError, DnsFuture, Mx, RecordKind, Resolver};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[cfg(feature = "test-server")]
pub mod testing;

/// The `[dns]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSettings {
    /// The servers to ask, `IP` (port 53) or `IP:port` (`[IPv6]:port`); empty: the system's
    /// (`/etc/resolv.conf`).
    pub servers: Vec<String>,
    /// The longest a lookup may take, in milliseconds; a check that needed the answer then fails
    /// open and says so.
    pub timeout_ms: u64,
    /// The most answers kept in the cache (each for its TTL).
    pub cache_size: u64,
}

/// The default timeout: hickory's (and glibc's, `resolv.conf(5)`) 5 seconds per query.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// The default cache size, in answers.
pub const DEFAULT_CACHE_SIZE: u64 = 10_000;

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

/// What is wrong with the `[dns]` settings, or the system's resolver configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    #[error("dns.servers: {0:?} is not an IP address or IP:port")]
    BadServer(String),
    #[error("dns.timeout_ms must be between 1 and 60000 (is {0})")]
    BadTimeout(u64),
    #[error("dns.cache_size must be greater than 0")]
    BadCacheSize,
    #[error("dns.servers is empty and the system's resolver configuration cannot be read: {0}")]
    System(String),
}

impl DnsSettings {
    /// The servers as socket addresses (port 53 where none is given).
    pub fn server_addrs(&self) -> Result<Vec<SocketAddr>, DnsConfigError> {
        self.servers
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| DnsConfigError::BadServer(s.to_string()))
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), DnsConfigError> {
        self.server_addrs()?;
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(DnsConfigError::BadTimeout(self.timeout_ms));
        }
        if self.cache_size == 0 {
            return Err(DnsConfigError::BadCacheSize);
        }
        Ok(())
    }
}

/// The resolver hato uses: hickory-resolver on tokio, with a cache and a timeout.
#[derive(Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
    timeout: Duration,
}

impl HickoryResolver {
    /// A resolver for these settings. Needs no runtime to be built; its lookups run on tokio.
    pub fn new(settings: &DnsSettings) -> Result<Self, DnsConfigError> {
        settings.validate()?;
        let servers = settings.server_addrs()?;
        let provider = TokioRuntimeProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DnsConfigError::System(e.to_string()))?
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                provider,
            )
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        let opts: &mut ResolverOpts = builder.options_mut();
        // Half the budget per query and one retry: a lost UDP datagram is asked again within
        // the timeout (RFC 1035 §4.2.1: UDP is not reliable, retransmission is the client's).
        opts.timeout = (timeout / 2).max(Duration::from_millis(1));
        opts.attempts = 1;
        opts.cache_size = settings.cache_size;
        opts.use_hosts_file = ResolveHosts::Never;
        // Answers keep the CNAMEs they went through; only the asked type is read from them.
        opts.preserve_intermediates = true;
        let inner = builder
            .build()
            .map_err(|e| DnsConfigError::System(e.to_string()))?;
        Ok(HickoryResolver { inner, timeout })
    }

    /// Runs one lookup with the timeout as its bound, and maps hickory's error to hato's.
    fn lookup<T, F>(
        &self,
        name: &str,
        kind: RecordKind,
        run: impl FnOnce(TokioResolver, Name) -> F,
    ) -> DnsFuture<T>
    where
        F: Future<Output = Result<T, NetError>> + Send + 'static,
        T: Send + 'static,
    {
        let name_text = name.trim_end_matches('.').to_string();
        let parsed = absolute_name(&name_text);
        let timeout = self.timeout;
        let work = parsed.map(|n| run(self.inner.clone(), n));
        Box::pin(async move {
            let work = work.map_err(|message| DnsError::Failed {
                name: name_text.clone(),
                kind,
                message,
            })?;
            match tokio::time::timeout(timeout, work).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(map_error(&name_text, kind, timeout, &e)),
                Err(_) => Err(timed_out(&name_text, kind, timeout)),
            }
        })
    }
}

/// `name` as an absolute DNS name (U-labels become A-labels, RFC 5891).
fn absolute_name(name: &str) -> Result<Name, String> {
    let mut n = Name::from_utf8(name).map_err(|e| format!("not a domain name: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

fn timed_out(name: &str, kind: RecordKind, timeout: Duration) -> DnsError {
    DnsError::Timeout {
        name: name.to_string(),
        kind,
        ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

fn map_error(name: &str, kind: RecordKind, timeout: Duration, e: &NetError) -> DnsError {
    let name_s = name.to_string();
    if e.is_nx_domain() {
        return DnsError::NxDomain { name: name_s };
    }
    if e.is_no_records_found() {
        return DnsError::NoRecords { name: name_s, kind };
    }
    match e {
        NetError::Timeout => timed_out(name, kind, timeout),
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::Refused {
            name: name_s,
            kind,
            code: response_code_name(*code),
        },
        other => DnsError::Failed {
            name: name_s,
            kind,
            message: other.to_string(),
        },
    }
}

fn response_code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// A name as hato keeps names: lower case, without the final dot.
fn plain_name(name: &Name) -> String {
    name.to_lowercase()
        .to_utf8()
        .trim_end_matches('.')
        .to_string()
}

impl Resolver for HickoryResolver {
    fn lookup_a(&self, name: &str) -> DnsFuture<Vec<std::net::Ipv4Addr>> {
        self.lookup(name, RecordKind::A, |r, n| async move {
            let lookup = r.lookup(n, RecordType::A).await?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect())
        })
    }

    fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<std::net::Ipv6Addr>> {
        self.lookup(name, RecordKind::Aaaa, |r, n| async move {
            let lookup = r.lookup(n, RecordType::AAAA).await?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::AAAA(a) => Some(a.0),
                    _ => None,
                })
                .collect())
        })
    }

    fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
        self.lookup(name, RecordKind::Txt, |r, n| async move {
            let lookup = r.lookup(n, RecordType::TXT).await?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    // RFC 7208 §3.3: a record's strings are joined without anything between.
                    RData::TXT(txt) => {
                        Some(String::from_utf8_lossy(&txt.txt_data.concat()).into_owned())
                    }
                    _ => None,
                })
                .collect())
        })
    }

    fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
        self.lookup(name, RecordKind::Mx, |r, n| async move {
            let lookup = r.lookup(n, RecordType::MX).await?;
            let mut mx: Vec<Mx> = lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::MX(mx) => Some(Mx {
                        preference: mx.preference,
                        exchange: plain_name(&mx.exchange),
                    }),
                    _ => None,
                })
                .collect();
            mx.sort_by_key(|m| m.preference);
            Ok(mx)
        })
    }

    fn lookup_ptr(&self, ip: IpAddr) -> DnsFuture<Vec<String>> {
        let name = plain_name(&Name::from(ip));
        self.lookup(&name, RecordKind::Ptr, |r, n| async move {
            let lookup = r.lookup(n, RecordType::PTR).await?;
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::PTR(ptr) => Some(plain_name(&ptr.0)),
                    _ => None,
                })
                .collect())
        })
    }

    fn forget(&self, name: &str, kind: RecordKind) {
        let Ok(n) = absolute_name(name.trim_end_matches('.')) else {
            return;
        };
        let record_type = match kind {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Txt => RecordType::TXT,
            RecordKind::Mx => RecordType::MX,
            RecordKind::Ptr => RecordType::PTR,
        };
        self.inner.clear_lookup_cache(n, record_type);
    }
}

//! A real DNS server for tests: hickory-server's authoritative server, serving zones held in
//! memory, on `127.0.0.1`, over UDP and TCP on one port (what `[dns] servers = ["127.0.0.1:PORT"]`
//! asks), with records added and removed while it runs; and a server that never answers, for
//! timeouts. Nothing here leaves loopback.
//!
//! Each zone has an SOA whose minimum (the negative TTL, RFC 2308 §5) is
//! [`NEGATIVE_TTL`] seconds, so a resolver's cache keeps "no such name/record" answers as a
//! real zone makes it, and a test can tell whether something asked the server again.
//!
//! The server counts the queries it answered, by name and type ([`TestDnsServer::queries`]), so a
//! test can tell which lookups a piece of work made (relayed mail makes no SPF, DKIM or DMARC
//! lookups, say).

use hato_core::dns::RecordKind;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, PTR, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The negative TTL of every test zone, in seconds.
pub const NEGATIVE_TTL: u32 = 300;

/// Queries answered, by (lower-case name without the final dot, type: `MX`, `TXT`, …).
type Counts = Arc<Mutex<BTreeMap<(String, String), u64>>>;

/// The catalog, counting each query before it answers it.
struct Counting {
    catalog: Catalog,
    counts: Counts,
}

// The trait is declared with `#[async_trait]`; this is what that macro makes of the method,
// written out so that no macro crate is added for one impl.
impl RequestHandler for Counting {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        if let Ok(info) = request.request_info() {
            let name = info.query.name().to_string();
            let key = (
                name.trim_end_matches('.').to_ascii_lowercase(),
                info.query.query_type().to_string(),
            );
            *self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key)
                .or_default() += 1;
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
    }
}

/// An authoritative DNS server on loopback. Dropping it stops it.
pub struct TestDnsServer {
    addr: SocketAddr,
    zones: Vec<(Name, Arc<InMemoryZoneHandler>)>,
    serial: AtomicU32,
    counts: Counts,
    /// Owns the listeners' tasks: dropping the server aborts them.
    _server: Server<Counting>,
}

fn name(text: &str) -> io::Result<Name> {
    let mut n = Name::from_utf8(text.trim_end_matches('.'))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{text}: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

impl TestDnsServer {
    /// Starts a server authoritative for `zones` (e.g. `["dnsbl.test", "contoso.test"]`), on
    /// a free port of 127.0.0.1, UDP and TCP. Must run inside a tokio runtime, which then runs
    /// the server.
    pub async fn start(zones: &[&str]) -> io::Result<TestDnsServer> {
        let (udp, tcp) = bind_pair().await?;
        Self::serve(udp, tcp, zones)
    }

    /// Like [`start`](Self::start), on `addr`, UDP and TCP on the same port (port 0: one the
    /// kernel picks for UDP): for a resolver that asks only port 53 (the C library's, reading
    /// `nameserver` lines from resolv.conf, which name no port), on a loopback address of its
    /// own (`bench/edge.sh` serves Postfix and hato at `127.0.53.53:53`).
    pub async fn start_on(addr: SocketAddr, zones: &[&str]) -> io::Result<TestDnsServer> {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        let tcp = tokio::net::TcpListener::bind(udp.local_addr()?).await?;
        Self::serve(udp, tcp, zones)
    }

    fn serve(
        udp: tokio::net::UdpSocket,
        tcp: tokio::net::TcpListener,
        zones: &[&str],
    ) -> io::Result<TestDnsServer> {
        let addr = udp.local_addr()?;
        let mut catalog = Catalog::new();
        let mut handlers = Vec::new();
        for zone in zones {
            let origin = name(zone)?;
            let mut records = BTreeMap::new();
            let soa = Record::from_rdata(
                origin.clone(),
                3600,
                RData::SOA(SOA::new(
                    name(&format!("ns.{zone}"))?,
                    name(&format!("hostmaster.{zone}"))?,
                    1,
                    3600,
                    600,
                    86400,
                    NEGATIVE_TTL,
                )),
            );
            let mut set =
                hickory_server::proto::rr::RecordSet::new(origin.clone(), RecordType::SOA, 1);
            set.insert(soa, 1);
            records.insert(RrKey::new(LowerName::new(&origin), RecordType::SOA), set);
            let handler = InMemoryZoneHandler::new(
                origin.clone(),
                records,
                ZoneType::Primary,
                AxfrPolicy::Deny,
            )
            .map_err(io::Error::other)?;
            let handler = Arc::new(handler);
            catalog.upsert(
                LowerName::new(&origin),
                vec![handler.clone() as Arc<dyn ZoneHandler>],
            );
            handlers.push((origin, handler));
        }
        let counts = Counts::default();
        let mut server = Server::new(Counting {
            catalog,
            counts: counts.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 65_535);
        Ok(TestDnsServer {
            addr,
            zones: handlers,
            serial: AtomicU32::new(2),
            counts,
            _server: server,
        })
    }

    /// The queries answered so far: (name in lower case without the final dot, type such as
    /// `MX`, `TXT`, `A`) → how many.
    pub fn queries(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many queries for `name` (any case, with or without the final dot) of `kind` (`MX`,
    /// `TXT`, …) were answered.
    pub fn query_count(&self, name: &str, kind: &str) -> u64 {
        let key = (
            name.trim_end_matches('.').to_ascii_lowercase(),
            kind.to_ascii_uppercase(),
        );
        self.queries().get(&key).copied().unwrap_or(0)
    }

    /// Forgets the counts (a test's next step counts from zero).
    pub fn reset_queries(&self) {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// `127.0.0.1:PORT`, for `[dns] servers`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn zone_of(&self, owner: &Name) -> io::Result<&InMemoryZoneHandler> {
        self.zones
            .iter()
            .filter(|(origin, _)| origin.zone_of(owner))
            .max_by_key(|(origin, _)| origin.num_labels())
            .map(|(_, h)| h.as_ref())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{owner} is in no zone of this server"),
                )
            })
    }

    /// Adds a record (or replaces the only one of an SOA/CNAME).
    pub async fn add(&self, owner: &str, ttl: u32, data: RData) -> io::Result<()> {
        let owner = name(owner)?;
        let zone = self.zone_of(&owner)?;
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        if zone
            .upsert(Record::from_rdata(owner.clone(), ttl, data), serial)
            .await
        {
            Ok(())
        } else {
            Err(io::Error::other(format!("{owner}: record not added")))
        }
    }

    pub async fn add_a(&self, owner: &str, ttl: u32, ip: std::net::Ipv4Addr) -> io::Result<()> {
        self.add(owner, ttl, RData::A(A(ip))).await
    }

    pub async fn add_aaaa(&self, owner: &str, ttl: u32, ip: std::net::Ipv6Addr) -> io::Result<()> {
        self.add(owner, ttl, RData::AAAA(AAAA(ip))).await
    }

    /// A TXT record of these character-strings (each at most 255 bytes, RFC 1035 §3.3).
    pub async fn add_txt(&self, owner: &str, ttl: u32, strings: &[&str]) -> io::Result<()> {
        let data = TXT::new(strings.iter().map(|s| s.to_string()).collect());
        self.add(owner, ttl, RData::TXT(data)).await
    }

    pub async fn add_mx(
        &self,
        owner: &str,
        ttl: u32,
        preference: u16,
        exchange: &str,
    ) -> io::Result<()> {
        self.add(owner, ttl, RData::MX(MX::new(preference, name(exchange)?)))
            .await
    }

    /// The PTR record of `ip` (in a served `in-addr.arpa` / `ip6.arpa` zone).
    pub async fn add_ptr(&self, ip: IpAddr, ttl: u32, target: &str) -> io::Result<()> {
        let owner = Name::from(ip).to_utf8();
        self.add(&owner, ttl, RData::PTR(PTR(name(target)?))).await
    }

    /// Removes every record of `kind` at `owner`.
    pub async fn remove(&self, owner: &str, kind: RecordKind) -> io::Result<()> {
        let kind = match kind {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Txt => RecordType::TXT,
            RecordKind::Mx => RecordType::MX,
            RecordKind::Ptr => RecordType::PTR,
        };
        let owner = name(owner)?;
        let zone = self.zone_of(&owner)?;
        zone.records_mut()
            .await
            .remove(&RrKey::new(LowerName::new(&owner), kind));
        Ok(())
    }
}

/// A UDP socket and a TCP listener on the same free port of 127.0.0.1 (a resolver asks both at
/// one address). The port is the kernel's choice for UDP; if TCP's is taken, another is tried.
async fn bind_pair() -> io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// A "DNS server" that never answers: a UDP socket on 127.0.0.1 that nobody reads (queries sit
/// in its buffer until it is dropped). For lookups that must time out.
pub struct SilentDnsServer {
    socket: UdpSocket,
}

impl SilentDnsServer {
    pub fn start() -> io::Result<SilentDnsServer> {
        Ok(SilentDnsServer {
            socket: UdpSocket::bind("127.0.0.1:0")?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

//! A real DNS server for tests: hickory-server's authoritative server, serving zones held in
//! memory, on `127.0.0.1`, over UDP and TCP on one port (what `[dns] servers = ["127.0.0.1:PORT"]`
//! asks), with records added and removed while it runs; and a server that never answers, for
//! timeouts. Nothing here leaves loopback.
//!
//! Each zone has an SOA whose minimum (the negative TTL, RFC 2308 §5) is
//! [`NEGATIVE_TTL`] seconds, so a resolver's cache keeps "no such name/record" answers as a
//! real zone makes it, and a test can tell whether something asked the server again.

use hato_core::dns::RecordKind;
use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, PTR, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The negative TTL of every test zone, in seconds.
pub const NEGATIVE_TTL: u32 = 300;

/// An authoritative DNS server on loopback. Dropping it stops it.
pub struct TestDnsServer {
    addr: SocketAddr,
    zones: Vec<(Name, Arc<InMemoryZoneHandler>)>,
    serial: AtomicU32,
    /// Owns the listeners' tasks: dropping the server aborts them.
    _server: Server<Catalog>,
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
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 65_535);
        Ok(TestDnsServer {
            addr,
            zones: handlers,
            serial: AtomicU32::new(2),
            _server: server,
        })
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

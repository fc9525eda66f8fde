//! The outbound connector's TLS settings (`--tls-settings`, Exchange's `TlsSettings`,
//! `exchange-online-behaviour.md` §9.2) against a receiving SMTP server on loopback that offers
//! STARTTLS: the real outbound agent over a real store, routed by a test `NextHopSelector`
//! returning `NextHop::SmartHosts` (the seam outbound connectors use), and a small server here
//! (tokio-rustls) presenting a self-signed certificate, or one from a test CA (rcgen).
//!
//! - `encryption-only` delivers to a self-signed server;
//! - `certificate-validation` and `domain-validation` defer with Exchange's `450 4.7.320
//!   Certificate validation failed` against it;
//! - with the test CA trusted (`OutboundSettings::roots`, what `[outbound] extra_ca_file` sets)
//!   and a certificate naming the TLS domain, `certificate-validation`, `domain-validation` and a
//!   `*.` TLS domain deliver; a TLS domain the certificate does not name defers with 4.7.320;
//! - a server that does not offer STARTTLS gets nothing in the clear under `encryption-only`
//!   (`4.4.317`).

use hato_core::clock::ManualClock;
use hato_core::directory::{DomainType, Route, TenantId};
use hato_core::dns::{DnsError, DnsFuture, Mx, Resolver};
use hato_core::id::NodeId;
use hato_core::{Clock, Timestamp};
use hato_smtp::client::tls::TlsSettings;
use hato_store::*;
use hato_transport::outbound::{NextHop, NextHopSelector, OutboundAgent, OutboundSettings};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------------------------
// Certificates

struct Cert {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn keyed(cert: rcgen::Certificate, key: &rcgen::KeyPair) -> Cert {
    Cert {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn self_signed(names: &[&str]) -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    keyed(cert, &key)
}

/// A test CA: its PEM, and a certificate it issued for `names`.
fn ca_and_leaf(names: &[&str]) -> (String, Cert) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hato test CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
    (ca.pem(), keyed(leaf, &key))
}

// ---------------------------------------------------------------------------------------------
// The receiving server

#[derive(Default)]
struct Got {
    /// Each message: whether it came over TLS, its recipients.
    messages: Vec<(bool, Vec<String>)>,
}

/// An SMTP server on 127.0.0.1 offering STARTTLS with `cert` (none: no STARTTLS).
async fn receiver(cert: Option<Cert>) -> (SocketAddr, Arc<Mutex<Got>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Got::default()));
    let acceptor = cert.map(|c| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![c.cert], c.key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, g) = (acceptor.clone(), g.clone());
            tokio::spawn(async move {
                let mut r = BufReader::new(tcp);
                if r.get_mut()
                    .write_all(b"220 sink.test ESMTP\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let Some(acceptor) = acceptor else {
                    dialog(&mut r, false, false, &g).await;
                    return;
                };
                if dialog(&mut r, true, false, &g).await {
                    // A failed handshake (the client refused the certificate) ends it here.
                    if let Ok(tls) = acceptor.accept(r.into_inner()).await {
                        dialog(&mut BufReader::new(tls), false, true, &g).await;
                    }
                }
            });
        }
    });
    (addr, got)
}

/// One SMTP dialogue; returns true when the client asked for STARTTLS (and got 220).
async fn dialog<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    offer_starttls: bool,
    tls: bool,
    got: &Mutex<Got>,
) -> bool {
    let mut rcpts = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return false;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offer_starttls {
                b"250-sink.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
            } else {
                b"250-sink.test\r\n250 8BITMIME\r\n"
            }
        } else if upper.starts_with("STARTTLS") && offer_starttls {
            let _ = r
                .get_mut()
                .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                .await;
            return true;
        } else if upper.starts_with("MAIL") {
            rcpts.clear();
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT") {
            rcpts.push(line.trim().to_string());
            b"250 2.1.5 Ok\r\n"
        } else if upper.starts_with("DATA") {
            if r.get_mut().write_all(b"354 Go ahead\r\n").await.is_err() {
                return false;
            }
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return false;
                }
                if l == ".\r\n" {
                    break;
                }
            }
            got.lock().unwrap().messages.push((tls, rcpts.clone()));
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = r.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
            return false;
        } else {
            b"250 2.0.0 Ok\r\n"
        };
        if r.get_mut().write_all(reply).await.is_err() {
            return false;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

/// No DNS: the smart host is given by address.
struct NoDns;

fn none<T: Send + 'static>(name: &str) -> DnsFuture<T> {
    let e = DnsError::NxDomain { name: name.into() };
    Box::pin(async move { Err(e) })
}

impl Resolver for NoDns {
    fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>> {
        none(name)
    }
    fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>> {
        none(name)
    }
    fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
        none(name)
    }
    fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
        none(name)
    }
    fn lookup_ptr(&self, ip: IpAddr) -> DnsFuture<Vec<String>> {
        none(&ip.to_string())
    }
}

/// Every outside domain through one smart host with `tls`: an outbound connector's choice.
struct Connector {
    host: String,
    tls: TlsSettings,
}

impl NextHopSelector for Connector {
    fn next_hop(&self, _tenant: TenantId, _domain: &str) -> NextHop {
        NextHop::SmartHosts {
            hosts: vec![self.host.clone()],
            tls: self.tls.clone(),
        }
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    outbound: Arc<OutboundAgent>,
    tenant: i64,
}

/// The agent, sending to `receiver` with `tls`; `ca_pem` trusted beside the system's roots.
async fn world(receiver: SocketAddr, tls: TlsSettings, ca_pem: Option<&str>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let t = store.create_tenant("contoso").await.unwrap();
    store
        .add_domain("contoso.test", t.id, DomainType::Authoritative)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-12-01T12:00:00Z").unwrap(),
    ));
    let mut settings = OutboundSettings::new("mx.hato.test");
    if let Some(pem) = ca_pem {
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, pem).unwrap();
        settings.roots = Some(hato_smtp::client::tls::roots_with(&file).unwrap());
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let outbound = Arc::new(
        OutboundAgent::new(
            dyn_store,
            Arc::new(NoDns),
            clock.clone(),
            NodeId::new("node-test"),
            settings,
            Arc::new(Notify::new()),
        )
        .with_selector(Arc::new(Connector {
            host: receiver.to_string(),
            tls,
        })),
    );
    World {
        _dir: dir,
        store,
        clock,
        outbound,
        tenant: t.id,
    }
}

impl World {
    /// Queues a message from alice to `to` (an outside recipient) and lets the agent work on
    /// it once; returns bob's trace events.
    async fn send(&self, subject: &str, to: &str) -> Vec<TraceDetailRow> {
        self.store
            .enqueue(NewMessage {
                trace_id: subject.into(),
                received: self.clock.now(),
                sender: "alice@contoso.test".into(),
                client_ip: "127.0.0.1".into(),
                helo: "app.contoso.test".into(),
                message_id: Some(format!("<{subject}@contoso.test>")),
                subject: Some(subject.into()),
                content: format!(
                    "From: alice@contoso.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n"
                )
                .into_bytes(),
                recipients: vec![NewRecipient {
                    address: to.into(),
                    tenant_id: self.tenant,
                    route: Route::Remote,
                    extra_events: vec![],
                    receive_reason: None,
                    quarantine: None,
                    finished: None,
                    stamp: String::new(),
                    junk: false,
                    connector: None,
                    dsn: Default::default(),
                }],
                spooled: None,
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                receive_detail: "Received".into(),
                reports_on: vec![],
                dsn: Default::default(),
                high_risk: false,
            })
            .await
            .unwrap();
        let taken = self.outbound.clone().step().await.unwrap();
        assert_eq!(taken, 1, "the agent took the recipient");
        for _ in 0..2000 {
            if !self.outbound.busy() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!self.outbound.busy(), "the outbound agent never finished");
        let rows = self
            .store
            .trace(&TraceQuery {
                subject: Some(subject.into()),
                ..Default::default()
            })
            .unwrap()
            .rows;
        assert_eq!(rows.len(), 1, "{rows:?}");
        self.store
            .trace_detail(None, &rows[0].trace_id, Some(to))
            .unwrap()
    }
}

fn last(events: &[TraceDetailRow]) -> &TraceDetailRow {
    events.last().expect("an event")
}

/// Exchange's certificate failure: `450 4.7.320`, the host in the trace.
fn assert_certificate_failure(events: &[TraceDetailRow], what: &str) {
    let e = last(events);
    assert_eq!(e.event, "Defer", "{what}: {events:?}");
    assert_eq!(
        (e.status, e.enhanced_status.as_deref()),
        (Some(450), Some("4.7.320")),
        "{what}: {e:?}"
    );
    assert!(
        e.detail.contains("Certificate validation failed"),
        "{what}: {e:?}"
    );
}

fn assert_sent_over_tls(events: &[TraceDetailRow], what: &str) {
    let e = last(events);
    assert_eq!(e.event, "Send", "{what}: {events:?}");
    let reason = e.reason.as_ref().expect("a reason");
    assert!(reason.text.contains(" over TLS"), "{what}: {reason:?}");
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_only_delivers_to_a_self_signed_server() {
    let (addr, got) = receiver(Some(self_signed(&["mx.sink.test"]))).await;
    let w = world(addr, TlsSettings::EncryptionOnly, None).await;
    let events = w.send("encrypted", "bob@fabrikam.test").await;
    assert_sent_over_tls(&events, "encryption-only");
    let got = got.lock().unwrap();
    assert_eq!(got.messages.len(), 1);
    assert!(got.messages[0].0, "the message came over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_modes_defer_with_4_7_320_against_a_self_signed_server() {
    let (addr, got) = receiver(Some(self_signed(&["mx.sink.test"]))).await;
    for (i, tls) in [
        TlsSettings::CertificateValidation,
        TlsSettings::DomainValidation("mx.sink.test".into()),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("{tls:?}");
        let w = world(addr, tls, None).await;
        let events = w.send(&format!("refused{i}"), "bob@fabrikam.test").await;
        assert_certificate_failure(&events, &what);
        assert_eq!(
            last(&events).remote_host,
            format!("127.0.0.1 [{addr}]"),
            "{what}: the smart host"
        );
    }
    assert!(got.lock().unwrap().messages.is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_ca_trusted_the_tls_domain_decides() {
    let (ca, leaf) = ca_and_leaf(&["mx.sink.test"]);
    let (addr, got) = receiver(Some(leaf)).await;
    let cases = [
        (
            "certificate-validation",
            TlsSettings::CertificateValidation,
            true,
        ),
        (
            "domain-validation",
            TlsSettings::parse("domain-validation", Some("mx.sink.test")).unwrap(),
            true,
        ),
        (
            "domain-validation *.",
            TlsSettings::parse("domain-validation", Some("*.sink.test")).unwrap(),
            true,
        ),
        (
            "domain-validation, another name",
            TlsSettings::parse("domain-validation", Some("mail.other.test")).unwrap(),
            false,
        ),
    ];
    let mut delivered = 0;
    for (i, (what, tls, delivers)) in cases.into_iter().enumerate() {
        let w = world(addr, tls, Some(&ca)).await;
        let events = w.send(&format!("trusted{i}"), "bob@fabrikam.test").await;
        if delivers {
            assert_sent_over_tls(&events, what);
            delivered += 1;
        } else {
            assert_certificate_failure(&events, what);
        }
        assert_eq!(got.lock().unwrap().messages.len(), delivered, "{what}");
    }
    // Without the CA, the same server's certificate is not trusted.
    let w = world(addr, TlsSettings::CertificateValidation, None).await;
    let events = w.send("untrusted", "bob@fabrikam.test").await;
    assert_certificate_failure(&events, "no CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_only_sends_nothing_in_the_clear_to_a_server_without_starttls() {
    let (addr, got) = receiver(None).await;
    let w = world(addr, TlsSettings::EncryptionOnly, None).await;
    let events = w.send("clear", "bob@fabrikam.test").await;
    let e = last(&events);
    assert_eq!(e.event, "Defer", "{events:?}");
    assert_eq!(
        (e.status, e.enhanced_status.as_deref()),
        (Some(450), Some("4.4.317")),
        "{e:?}"
    );
    assert!(got.lock().unwrap().messages.is_empty());
    // No setting (as MX delivery): plain text is fine.
    let w = world(addr, TlsSettings::Opportunistic, None).await;
    let events = w.send("plain", "bob@fabrikam.test").await;
    assert_eq!(last(&events).event, "Send", "{events:?}");
    assert!(!got.lock().unwrap().messages[0].0);
}

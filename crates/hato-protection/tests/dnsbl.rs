//! The DNS block list check against a real DNS server on loopback (hickory-server, in process)
//! serving block list zones, and against one that never answers.

use hato_core::dns::Resolver;
use hato_core::{Reason, Stage};
use hato_dns::testing::{SilentDnsServer, TestDnsServer};
use hato_dns::{DnsSettings, HickoryResolver};
use hato_protection::Outcome;
use hato_protection::dnsbl::{Dnsbl, DnsblZoneSettings, zones_from_settings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ZEN: &str = "zen.dnsbl.test";
const OTHER: &str = "other.dnsbl.test";

fn zen_settings() -> DnsblZoneSettings {
    DnsblZoneSettings {
        zone: ZEN.into(),
        removal_url: "https://check.dnsbl.test/".into(),
        codes: [
            ("127.0.0.2", "SBL"),
            ("127.0.0.3", "SBL CSS"),
            ("127.0.0.4-127.0.0.7", "XBL"),
            ("127.0.0.9", "DROP"),
            ("127.0.0.10-127.0.0.11", "PBL"),
        ]
        .into_iter()
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect(),
    }
}

fn other_settings() -> DnsblZoneSettings {
    DnsblZoneSettings {
        zone: OTHER.into(),
        removal_url: "https://other.dnsbl.test/remove".into(),
        codes: Default::default(),
    }
}

fn resolver(addr: SocketAddr, timeout_ms: u64) -> Arc<dyn Resolver> {
    Arc::new(
        HickoryResolver::new(&DnsSettings {
            servers: vec![addr.to_string()],
            timeout_ms,
            cache_size: 100,
        })
        .expect("resolver"),
    )
}

fn dnsbl(addr: SocketAddr, timeout_ms: u64, zones: &[DnsblZoneSettings]) -> Dnsbl {
    Dnsbl::new(
        resolver(addr, timeout_ms),
        zones_from_settings(zones).expect("zones"),
    )
}

async fn server() -> TestDnsServer {
    TestDnsServer::start(&["dnsbl.test"])
        .await
        .expect("dns server")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn refusal(o: Outcome) -> (String, Reason) {
    match o {
        Outcome::Refuse(r) => (r.reply.to_string(), *r.reason),
        other => panic!("not refused: {other:?}"),
    }
}

fn note(o: Outcome) -> Reason {
    match o {
        Outcome::Note(r) => r,
        other => panic!("no note: {other:?}"),
    }
}

#[tokio::test]
async fn a_listed_client_is_refused_naming_the_zone_and_the_removal_page() {
    let dns = server().await;
    // 203.0.113.9 in SBL and XBL at once, as zen answers.
    dns.add_a(
        "9.113.0.203.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 4),
    )
    .await
    .unwrap();
    dns.add_a(
        "9.113.0.203.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 2),
    )
    .await
    .unwrap();
    let d = dnsbl(dns.addr(), 2000, &[zen_settings()]);
    let (reply, reason) = refusal(d.check(ip("203.0.113.9")).await);
    assert_eq!(
        reply,
        "550 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using zen.dnsbl.test; \
         To request removal from this list see https://check.dnsbl.test/"
    );
    assert_eq!(reason.stage, Stage::DnsBlockList);
    assert_eq!(reason.rule.as_deref(), Some(ZEN));
    assert_eq!(
        reason.text,
        "203.0.113.9 is listed in zen.dnsbl.test (127.0.0.2 SBL, 127.0.0.4 XBL); no allow list \
         overrides a DNS block list"
    );
    assert_eq!(
        reason.to_string(),
        "dns_block_list [zen.dnsbl.test]: 203.0.113.9 is listed in zen.dnsbl.test (127.0.0.2 SBL, \
         127.0.0.4 XBL); no allow list overrides a DNS block list (query=9.113.0.203.zen.dnsbl.test, \
         codes=127.0.0.2 SBL, 127.0.0.4 XBL)"
    );
    // An IPv4 client seen through a dual-stack listener is the same client.
    let (reply, _) = refusal(d.check(ip("::ffff:203.0.113.9")).await);
    assert!(reply.contains("Client host [203.0.113.9]"), "{reply}");
}

#[tokio::test]
async fn a_client_not_listed_passes() {
    let dns = server().await;
    dns.add_a("2.0.0.127.zen.dnsbl.test", 300, Ipv4Addr::new(127, 0, 0, 2))
        .await
        .unwrap();
    let d = dnsbl(dns.addr(), 2000, &[zen_settings()]);
    // NXDOMAIN: not listed, nothing to note.
    assert_eq!(d.check(ip("198.51.100.7")).await, Outcome::Pass);
    // RFC 5782 §5: 127.0.0.2 is the test entry every list has; it is listed.
    assert!(d.check(ip("127.0.0.2")).await.refuses());
    // No zones: nothing asked, nothing said.
    let none = Dnsbl::new(resolver(dns.addr(), 2000), Vec::new());
    assert!(none.is_empty());
    assert_eq!(none.check(ip("127.0.0.2")).await, Outcome::Pass);
}

#[tokio::test]
async fn a_refused_query_is_not_a_listing_and_is_noted() {
    let dns = server().await;
    // Spamhaus's answer to a query through a public resolver.
    dns.add_a(
        "7.100.51.198.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 255, 255, 254),
    )
    .await
    .unwrap();
    // An unknown code, and an answer outside 127.0.0.0/8 (NXDOMAIN rewritten by a resolver).
    dns.add_a(
        "8.100.51.198.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 200),
    )
    .await
    .unwrap();
    dns.add_a(
        "9.100.51.198.zen.dnsbl.test",
        300,
        Ipv4Addr::new(192, 0, 2, 80),
    )
    .await
    .unwrap();
    let d = dnsbl(dns.addr(), 2000, &[zen_settings()]);
    let r = note(d.check(ip("198.51.100.7")).await);
    assert_eq!(r.stage, Stage::DnsBlockList);
    assert_eq!(r.rule.as_deref(), Some(ZEN));
    assert_eq!(
        r.text,
        "198.51.100.7 could not be checked against zen.dnsbl.test, so it is let in unchecked (DNS \
         block lists fail open): zen.dnsbl.test: the list refused the query (127.255.255.254: \
         queries through a public resolver, or over the list's quota, are refused)"
    );
    let r = note(d.check(ip("198.51.100.8")).await);
    assert!(
        r.text
            .ends_with("zen.dnsbl.test: return code 127.0.0.200 is not among the zone's codes"),
        "{}",
        r.text
    );
    let r = note(d.check(ip("198.51.100.9")).await);
    assert!(
        r.text.ends_with(
            "zen.dnsbl.test: 192.0.2.80 is not a DNS block list answer (not in 127.0.0.0/8; a \
             resolver rewriting NXDOMAIN?)"
        ),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn ipv6_clients_are_asked_by_reversed_nibbles() {
    let dns = server().await;
    // RFC 5782 §2.4: 2001:db8:1:2:3:4:567:89ab.
    dns.add_a(
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 3),
    )
    .await
    .unwrap();
    let d = dnsbl(dns.addr(), 2000, &[zen_settings()]);
    let (reply, reason) = refusal(d.check(ip("2001:db8:1:2:3:4:567:89ab")).await);
    assert_eq!(
        reply,
        "550 5.7.1 Service unavailable; Client host [2001:db8:1:2:3:4:567:89ab] blocked using \
         zen.dnsbl.test; To request removal from this list see https://check.dnsbl.test/"
    );
    assert!(
        reason.text.contains("(127.0.0.3 SBL CSS)"),
        "{}",
        reason.text
    );
    assert_eq!(
        d.check(ip("2001:db8:1:2:3:4:567:89ac")).await,
        Outcome::Pass
    );
}

#[tokio::test]
async fn a_list_that_does_not_answer_fails_open_and_says_so() {
    let silent = SilentDnsServer::start().unwrap();
    let d = dnsbl(silent.addr(), 300, &[zen_settings()]);
    let start = Instant::now();
    let r = note(d.check(ip("203.0.113.9")).await);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        r.text,
        "203.0.113.9 could not be checked against zen.dnsbl.test, so it is let in unchecked (DNS \
         block lists fail open): zen.dnsbl.test: the lookup failed (9.113.0.203.zen.dnsbl.test: A \
         lookup timed out after 300 ms)"
    );
}

#[tokio::test]
async fn two_zones_are_asked_at_once_and_either_listing_refuses() {
    let dns = server().await;
    dns.add_a(
        "9.113.0.203.other.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 2),
    )
    .await
    .unwrap();
    dns.add_a(
        "10.113.0.203.zen.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 10),
    )
    .await
    .unwrap();
    dns.add_a(
        "10.113.0.203.other.dnsbl.test",
        300,
        Ipv4Addr::new(127, 0, 0, 2),
    )
    .await
    .unwrap();
    let d = dnsbl(dns.addr(), 2000, &[zen_settings(), other_settings()]);
    // Listed by the second zone only: refused, naming it (and its codes without meanings).
    let (reply, reason) = refusal(d.check(ip("203.0.113.9")).await);
    assert_eq!(
        reply,
        "550 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using other.dnsbl.test; \
         To request removal from this list see https://other.dnsbl.test/remove"
    );
    assert!(
        reason.text.contains("(127.0.0.2 listed)"),
        "{}",
        reason.text
    );
    // Listed by both: the first zone of the settings names the reply.
    let (reply, reason) = refusal(d.check(ip("203.0.113.10")).await);
    assert!(reply.contains("blocked using zen.dnsbl.test;"), "{reply}");
    assert!(reason.text.contains("(127.0.0.10 PBL)"), "{}", reason.text);
    assert_eq!(d.check(ip("203.0.113.11")).await, Outcome::Pass);

    // Both zones on a server that never answers: asked at once, so the check takes about one
    // timeout, not two, and both are in the note.
    let silent = SilentDnsServer::start().unwrap();
    let d = dnsbl(silent.addr(), 1000, &[zen_settings(), other_settings()]);
    let start = Instant::now();
    let r = note(d.check(ip("203.0.113.9")).await);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1900), "{took:?}");
    assert_eq!(r.rule.as_deref(), Some("zen.dnsbl.test, other.dnsbl.test"));
    assert_eq!(
        r.to_string(),
        "dns_block_list [zen.dnsbl.test, other.dnsbl.test]: 203.0.113.9 could not be checked \
         against zen.dnsbl.test, other.dnsbl.test, so it is let in unchecked (DNS block lists fail \
         open): zen.dnsbl.test: the lookup failed (9.113.0.203.zen.dnsbl.test: A lookup timed out \
         after 1000 ms); other.dnsbl.test: the lookup failed (9.113.0.203.other.dnsbl.test: A lookup \
         timed out after 1000 ms) (query=9.113.0.203.zen.dnsbl.test, \
         query=9.113.0.203.other.dnsbl.test)"
    );
}

//! The resolver against a real DNS server on loopback (hickory-server, in process): every lookup
//! over UDP, a big answer over TCP, the errors told apart, the cache honouring TTLs, and the
//! timeout of a server that never answers.

use hato_core::dns::{DnsError, Mx, RecordKind, Resolver};
use hato_dns::testing::{SilentDnsServer, TestDnsServer};
use hato_dns::{DnsConfigError, DnsSettings, HickoryResolver};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

fn resolver_for(addr: SocketAddr, timeout_ms: u64) -> HickoryResolver {
    HickoryResolver::new(&DnsSettings {
        servers: vec![addr.to_string()],
        timeout_ms,
        cache_size: 100,
    })
    .expect("resolver")
}

async fn server() -> TestDnsServer {
    TestDnsServer::start(&[
        "contoso.test",
        "2.0.192.in-addr.arpa",
        "8.b.d.0.1.0.0.2.ip6.arpa",
    ])
    .await
    .expect("dns server")
}

#[tokio::test]
async fn every_lookup_reads_its_records() {
    let dns = server().await;
    dns.add_a("mx.contoso.test", 300, Ipv4Addr::new(192, 0, 2, 10))
        .await
        .unwrap();
    dns.add_a("mx.contoso.test", 300, Ipv4Addr::new(192, 0, 2, 11))
        .await
        .unwrap();
    dns.add_aaaa("mx.contoso.test", 300, "2001:db8::10".parse().unwrap())
        .await
        .unwrap();
    // A TXT record of two character-strings is read as their concatenation (RFC 7208 §3.3).
    dns.add_txt("contoso.test", 300, &["v=spf1 ip4:192.0.2.0/24 ", "-all"])
        .await
        .unwrap();
    dns.add_txt("contoso.test", 300, &["hato-verification=abc"])
        .await
        .unwrap();
    dns.add_mx("contoso.test", 300, 20, "backup.contoso.test")
        .await
        .unwrap();
    dns.add_mx("contoso.test", 300, 10, "MX.Contoso.test")
        .await
        .unwrap();
    dns.add_ptr(IpAddr::from([192, 0, 2, 10]), 300, "mx.contoso.test")
        .await
        .unwrap();
    dns.add_ptr("2001:db8::10".parse().unwrap(), 300, "mx6.contoso.test")
        .await
        .unwrap();
    let r = resolver_for(dns.addr(), 2000);

    let mut a = r.lookup_a("mx.contoso.test").await.unwrap();
    a.sort();
    assert_eq!(
        a,
        [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)]
    );
    assert_eq!(
        r.lookup_aaaa("MX.contoso.test.").await.unwrap(),
        ["2001:db8::10".parse::<Ipv6Addr>().unwrap()]
    );
    let mut txt = r.lookup_txt("contoso.test").await.unwrap();
    txt.sort();
    assert_eq!(
        txt,
        ["hato-verification=abc", "v=spf1 ip4:192.0.2.0/24 -all"]
    );
    assert_eq!(
        r.lookup_mx("contoso.test").await.unwrap(),
        [
            Mx {
                preference: 10,
                exchange: "mx.contoso.test".into()
            },
            Mx {
                preference: 20,
                exchange: "backup.contoso.test".into()
            },
        ]
    );
    assert_eq!(
        r.lookup_ptr(IpAddr::from([192, 0, 2, 10])).await.unwrap(),
        ["mx.contoso.test"]
    );
    assert_eq!(
        r.lookup_ptr("2001:db8::10".parse().unwrap()).await.unwrap(),
        ["mx6.contoso.test"]
    );
}

#[tokio::test]
async fn an_answer_too_big_for_a_datagram_comes_over_tcp() {
    let dns = server().await;
    // 40 records of 250 bytes: ~10 KB, more than any UDP payload hickory offers (1232 bytes by
    // default), so the server truncates (TC) and the resolver asks again over TCP (RFC 7766).
    let strings: Vec<String> = (0..40)
        .map(|i| format!("{i:03}{}", "x".repeat(247)))
        .collect();
    for s in &strings {
        dns.add_txt("big.contoso.test", 300, &[s]).await.unwrap();
    }
    let r = resolver_for(dns.addr(), 3000);
    let mut txt = r.lookup_txt("big.contoso.test").await.unwrap();
    txt.sort();
    assert_eq!(txt, strings);
}

#[tokio::test]
async fn a_server_started_on_an_address_answers_there_over_udp_and_tcp() {
    // Another loopback address than 127.0.0.1 (all of 127.0.0.0/8 is local), port 0: UDP and
    // TCP end up on the same port, the kernel's choice.
    let addr: SocketAddr = "127.0.53.1:0".parse().unwrap();
    let dns = TestDnsServer::start_on(addr, &["contoso.test", "2.0.192.in-addr.arpa"])
        .await
        .expect("dns server");
    assert_eq!(dns.addr().ip(), addr.ip());
    assert_ne!(dns.addr().port(), 0);
    dns.add_a("mx.contoso.test", 300, Ipv4Addr::new(192, 0, 2, 10))
        .await
        .unwrap();
    dns.add_ptr(IpAddr::from([192, 0, 2, 10]), 300, "mx.contoso.test")
        .await
        .unwrap();
    let r = resolver_for(dns.addr(), 3000);
    assert_eq!(
        r.lookup_a("mx.contoso.test").await.unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 10)]
    );
    assert_eq!(
        r.lookup_ptr(IpAddr::from([192, 0, 2, 10])).await.unwrap(),
        vec!["mx.contoso.test".to_string()]
    );
    // A truncated answer is asked again over TCP at the same address and port.
    let strings: Vec<String> = (0..40)
        .map(|i| format!("{i:03}{}", "x".repeat(247)))
        .collect();
    for s in &strings {
        dns.add_txt("big.contoso.test", 300, &[s]).await.unwrap();
    }
    let mut txt = r.lookup_txt("big.contoso.test").await.unwrap();
    txt.sort();
    assert_eq!(txt, strings);
}

#[tokio::test]
async fn no_such_name_no_such_record_and_refusal_are_told_apart() {
    let dns = server().await;
    dns.add_a("www.contoso.test", 300, Ipv4Addr::new(192, 0, 2, 1))
        .await
        .unwrap();
    let r = resolver_for(dns.addr(), 2000);
    assert_eq!(
        r.lookup_a("nothing.contoso.test").await.unwrap_err(),
        DnsError::NxDomain {
            name: "nothing.contoso.test".into()
        }
    );
    let nodata = r.lookup_txt("www.contoso.test").await.unwrap_err();
    assert_eq!(
        nodata,
        DnsError::NoRecords {
            name: "www.contoso.test".into(),
            kind: RecordKind::Txt
        }
    );
    assert!(nodata.is_not_found());
    // A zone the server does not serve: an authoritative server answers REFUSED (RFC 8906 §3).
    let refused = r.lookup_a("www.fabrikam.test").await.unwrap_err();
    assert_eq!(
        refused,
        DnsError::Refused {
            name: "www.fabrikam.test".into(),
            kind: RecordKind::A,
            code: "REFUSED".into()
        }
    );
    assert!(refused.is_temporary());
    // Not a domain name at all: an error, not a panic, and no query.
    let bad = r.lookup_a("a..b").await.unwrap_err();
    assert!(matches!(bad, DnsError::Failed { .. }), "{bad:?}");
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl_and_forget_asks_again() {
    let dns = server().await;
    dns.add_a("long.contoso.test", 300, Ipv4Addr::new(192, 0, 2, 1))
        .await
        .unwrap();
    dns.add_a("zero.contoso.test", 0, Ipv4Addr::new(192, 0, 2, 1))
        .await
        .unwrap();
    let r = resolver_for(dns.addr(), 2000);
    assert_eq!(
        r.lookup_a("long.contoso.test").await.unwrap(),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );
    assert_eq!(
        r.lookup_a("zero.contoso.test").await.unwrap(),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );
    // The zone changes.
    for name in ["long.contoso.test", "zero.contoso.test"] {
        dns.remove(name, RecordKind::A).await.unwrap();
        dns.add_a(name, 300, Ipv4Addr::new(192, 0, 2, 2))
            .await
            .unwrap();
    }
    // A TTL of 300 s: the cached answer stands. A TTL of 0: asked again, the new one.
    assert_eq!(
        r.lookup_a("long.contoso.test").await.unwrap(),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );
    assert_eq!(
        r.lookup_a("zero.contoso.test").await.unwrap(),
        [Ipv4Addr::new(192, 0, 2, 2)]
    );
    // "No such record" is cached too, for the zone's negative TTL (RFC 2308 §5)...
    assert!(
        r.lookup_txt("long.contoso.test")
            .await
            .unwrap_err()
            .is_not_found()
    );
    dns.add_txt("long.contoso.test", 300, &["now"])
        .await
        .unwrap();
    assert!(
        r.lookup_txt("long.contoso.test")
            .await
            .unwrap_err()
            .is_not_found()
    );
    // ...until it is forgotten.
    r.forget("long.contoso.test", RecordKind::Txt);
    assert_eq!(r.lookup_txt("long.contoso.test").await.unwrap(), ["now"]);
    r.forget("long.contoso.test", RecordKind::A);
    assert_eq!(
        r.lookup_a("long.contoso.test").await.unwrap(),
        [Ipv4Addr::new(192, 0, 2, 2)]
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_timeout() {
    let silent = SilentDnsServer::start().unwrap();
    let r = resolver_for(silent.addr(), 300);
    let start = Instant::now();
    let err = r.lookup_a("www.contoso.test").await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(
        err,
        DnsError::Timeout {
            name: "www.contoso.test".into(),
            kind: RecordKind::A,
            ms: 300
        }
    );
    assert!(err.is_temporary());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn settings_are_checked() {
    let ok = DnsSettings {
        servers: vec!["127.0.0.1:5353".into(), "::1".into(), "[::1]:53".into()],
        ..DnsSettings::default()
    };
    assert_eq!(
        ok.server_addrs().unwrap(),
        [
            "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
            "[::1]:53".parse().unwrap(),
            "[::1]:53".parse().unwrap()
        ]
    );
    assert_eq!(ok.validate(), Ok(()));
    let bad = DnsSettings {
        servers: vec!["dns.example".into()],
        ..DnsSettings::default()
    };
    assert_eq!(
        bad.validate(),
        Err(DnsConfigError::BadServer("dns.example".into()))
    );
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "dns.servers: \"dns.example\" is not an IP address or IP:port"
    );
    for ms in [0, 60_001] {
        let s = DnsSettings {
            timeout_ms: ms,
            ..DnsSettings::default()
        };
        assert_eq!(s.validate(), Err(DnsConfigError::BadTimeout(ms)));
    }
    let s = DnsSettings {
        cache_size: 0,
        ..DnsSettings::default()
    };
    assert_eq!(s.validate(), Err(DnsConfigError::BadCacheSize));
    let d = DnsSettings::default();
    assert!(d.servers.is_empty());
    assert_eq!((d.timeout_ms, d.cache_size), (5000, 10_000));
}

/// The test server counts what it answered, by name and type: a cached answer is not asked
/// again, another type of the same name is its own count, names compare in any case.
#[tokio::test]
async fn the_test_server_counts_the_queries_it_answers() {
    let dns = server().await;
    dns.add_txt("contoso.test", 300, &["v=spf1 -all"])
        .await
        .unwrap();
    dns.add_mx("contoso.test", 300, 10, "mx.contoso.test")
        .await
        .unwrap();
    let r = resolver_for(dns.addr(), 2000);
    assert_eq!(dns.query_count("contoso.test", "TXT"), 0);
    r.lookup_txt("contoso.test").await.unwrap();
    r.lookup_txt("contoso.test").await.unwrap();
    r.lookup_mx("Contoso.Test").await.unwrap();
    assert_eq!(
        dns.query_count("contoso.test", "TXT"),
        1,
        "{:?}",
        dns.queries()
    );
    assert_eq!(
        dns.query_count("CONTOSO.test.", "mx"),
        1,
        "{:?}",
        dns.queries()
    );
    assert_eq!(dns.query_count("_dmarc.contoso.test", "TXT"), 0);
    // A name with no record is answered (NXDOMAIN) and counted too.
    assert!(r.lookup_txt("_dmarc.contoso.test").await.is_err());
    assert_eq!(dns.query_count("_dmarc.contoso.test", "TXT"), 1);
    dns.reset_queries();
    assert!(dns.queries().is_empty());
}

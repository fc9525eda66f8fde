//! Sender authentication against a real DNS server on loopback (hickory-server, in process)
//! publishing SPF, DKIM and DMARC records, with messages DKIM-signed and ARC-sealed here by
//! mail-auth's signer; lookups counted by a resolver that wraps the real one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use hato_core::Stage;
use hato_core::dns::{DnsFuture, Mx, RecordKind, Resolver};
use hato_dns::testing::{SilentDnsServer, TestDnsServer};
use hato_dns::{DnsSettings, HickoryResolver};
use hato_protection::spam::auth::{
    AuthInput, SenderAuth, authentication_results_for_tenant, spoofs_own_domain,
};
use hato_protection::spam::country::country_of;
use hato_protection::spam::{Asf, AuthResult, AuthSignals, DmarcPolicy};
use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};
use sha2::Digest;

const CLIENT: &str = "192.0.2.1";
const OTHER_CLIENT: &str = "198.51.100.7";

/// Counts every lookup, by name, on the way to the real resolver.
struct Counting {
    inner: Arc<dyn Resolver>,
    total: AtomicU32,
    names: Mutex<Vec<String>>,
}

impl Counting {
    fn new(inner: Arc<dyn Resolver>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            total: AtomicU32::new(0),
            names: Mutex::new(Vec::new()),
        })
    }

    fn note(&self, name: &str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        self.names.lock().unwrap().push(name.to_string());
    }

    fn total(&self) -> u32 {
        self.total.load(Ordering::SeqCst)
    }

    fn asked(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.names
            .lock()
            .unwrap()
            .iter()
            .filter(|n| pred(n))
            .count()
    }
}

impl Resolver for Counting {
    fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>> {
        self.note(name);
        self.inner.lookup_a(name)
    }
    fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>> {
        self.note(name);
        self.inner.lookup_aaaa(name)
    }
    fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
        self.note(name);
        self.inner.lookup_txt(name)
    }
    fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
        self.note(name);
        self.inner.lookup_mx(name)
    }
    fn lookup_ptr(&self, ip: IpAddr) -> DnsFuture<Vec<String>> {
        self.note(&ip.to_string());
        self.inner.lookup_ptr(ip)
    }
    fn forget(&self, name: &str, kind: RecordKind) {
        self.inner.forget(name, kind)
    }
}

fn resolver(addr: SocketAddr, timeout_ms: u64) -> Arc<dyn Resolver> {
    Arc::new(
        HickoryResolver::new(&DnsSettings {
            servers: vec![addr.to_string()],
            timeout_ms,
            cache_size: 1000,
        })
        .expect("resolver"),
    )
}

struct World {
    dns: TestDnsServer,
    counting: Arc<Counting>,
    auth: SenderAuth,
}

/// A DNS server authoritative for `test` (so the DMARC tree walk's `_dmarc.test` is answered
/// as a real TLD answers it: NXDOMAIN) and a checker over it.
async fn world() -> World {
    let dns = TestDnsServer::start(&["test"]).await.expect("dns server");
    let counting = Counting::new(resolver(dns.addr(), 2000));
    let auth = SenderAuth::new(counting.clone(), "mx.hato.test").expect("checker");
    World {
        dns,
        counting,
        auth,
    }
}

impl World {
    async fn txt(&self, owner: &str, text: &str) {
        // One TXT record of 255-byte character-strings (RFC 7208 §3.3 joins them).
        let chunks: Vec<&str> = text
            .as_bytes()
            .chunks(255)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        self.dns.add_txt(owner, 60, &chunks).await.unwrap();
    }

    async fn check(&self, message: &str, ip: &str, mail_from: Option<&str>) -> AuthSignals {
        self.check_bytes(message.as_bytes(), ip, mail_from).await
    }

    async fn check_bytes(&self, message: &[u8], ip: &str, mail_from: Option<&str>) -> AuthSignals {
        self.auth
            .check(&AuthInput {
                message,
                client_ip: ip.parse().unwrap(),
                helo: "client.example.test",
                mail_from,
                receiving_host: "mx.hato.test",
            })
            .await
    }
}

fn message(from: &str) -> String {
    format!(
        "From: Someone <{from}>\r\nTo: user@hato.test\r\nSubject: Quarterly report\r\n\r\nThe figures are attached.\r\n"
    )
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An Ed25519 key, its DNS record published at `<selector>._domainkey.<domain>`.
async fn dkim_key(w: &World, domain: &str, selector: &str) -> Vec<u8> {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    w.txt(
        &format!("{selector}._domainkey.{domain}"),
        &format!("v=DKIM1; k=ed25519; p={}", base64(&key.public_key())),
    )
    .await;
    pkcs8
}

fn sign(pkcs8: &[u8], domain: &str, selector: &str, message: &str) -> String {
    let key = Ed25519Key::from_pkcs8_der(pkcs8).unwrap();
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(["From", "To", "Subject"])
        .sign(message.as_bytes())
        .unwrap();
    format!("{}{message}", signature.to_header())
}

fn reason_of(s: &AuthSignals, rule: &str) -> String {
    s.reasons
        .iter()
        .find(|r| r.rule.as_deref() == Some(rule))
        .map(|r| {
            assert_eq!(r.stage, Stage::SenderAuthentication);
            r.text.clone()
        })
        .unwrap_or_else(|| panic!("no {rule} reason in {:?}", s.reasons))
}

#[tokio::test]
async fn spf_results_follow_rfc_7208() {
    let w = world().await;
    w.txt("pass.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    w.txt("soft.test", "v=spf1 ip4:203.0.113.5 ~all").await;
    w.txt("neutral.test", "v=spf1 ?all").await;
    w.txt("two.test", "v=spf1 -all").await;
    w.txt("two.test", "v=spf1 +all").await;
    w.txt("broken.test", "v=spf1 ip4:not-an-address -all").await;
    w.txt("inc.test", "v=spf1 include:pass.test -all").await;
    w.txt("mx.test", "v=spf1 mx -all").await;
    w.dns
        .add_mx("mx.test", 60, 10, "mail.mx.test")
        .await
        .unwrap();
    w.dns
        .add_a("mail.mx.test", 60, CLIENT.parse().unwrap())
        .await
        .unwrap();
    w.txt("redir.test", "v=spf1 redirect=pass.test").await;
    w.txt("exists.test", "v=spf1 exists:%{i}.ok.exists.test -all")
        .await;
    w.dns
        .add_a("192.0.2.1.ok.exists.test", 60, Ipv4Addr::new(127, 0, 0, 2))
        .await
        .unwrap();
    w.txt("other.test", "google-site-verification=abc").await;

    let cases = [
        ("a@pass.test", CLIENT, AuthResult::Pass),
        ("a@pass.test", OTHER_CLIENT, AuthResult::Fail),
        ("a@soft.test", CLIENT, AuthResult::SoftFail),
        ("a@neutral.test", CLIENT, AuthResult::Neutral),
        ("a@nothing.test", CLIENT, AuthResult::None),
        ("a@other.test", CLIENT, AuthResult::None),
        ("a@two.test", CLIENT, AuthResult::PermError),
        ("a@broken.test", CLIENT, AuthResult::PermError),
        ("a@inc.test", CLIENT, AuthResult::Pass),
        ("a@inc.test", OTHER_CLIENT, AuthResult::Fail),
        ("a@mx.test", CLIENT, AuthResult::Pass),
        ("a@mx.test", OTHER_CLIENT, AuthResult::Fail),
        ("a@redir.test", CLIENT, AuthResult::Pass),
        ("a@exists.test", CLIENT, AuthResult::Pass),
        ("a@exists.test", OTHER_CLIENT, AuthResult::Fail),
    ];
    for (from, ip, want) in cases {
        let s = w.check(&message("x@elsewhere.test"), ip, Some(from)).await;
        assert_eq!(s.spf, want, "{from} from {ip}: {}", reason_of(&s, "spf"));
    }
    // The null reverse-path is checked as postmaster@<HELO> (RFC 7208 §2.4).
    w.txt("client.example.test", "v=spf1 ip4:192.0.2.1 -all")
        .await;
    let s = w.check(&message("x@elsewhere.test"), CLIENT, None).await;
    assert_eq!(s.spf, AuthResult::Pass);
    assert!(
        s.authentication_results
            .contains("smtp.helo=client.example.test")
    );
}

#[tokio::test]
async fn spf_fail_sets_the_hard_fail_asf_and_the_from_domain_option() {
    let w = world().await;
    w.txt("contoso.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    let s = w
        .check(
            &message("ceo@contoso.test"),
            OTHER_CLIENT,
            Some("ceo@contoso.test"),
        )
        .await;
    assert_eq!(s.spf, AuthResult::Fail);
    let options: Vec<Asf> = s.asf.iter().map(|h| h.option).collect();
    assert_eq!(
        options,
        vec![
            Asf::MarkAsSpamSpfRecordHardFail,
            Asf::MarkAsSpamFromAddressAuthFail
        ]
    );
    // MAIL FROM elsewhere (passing), From in contoso.test from an address it does not
    // authorise: only the From-address option.
    w.txt("bulk.test", "v=spf1 ip4:198.51.100.0/24 -all").await;
    let s = w
        .check(
            &message("ceo@contoso.test"),
            OTHER_CLIENT,
            Some("b@bulk.test"),
        )
        .await;
    assert_eq!(s.spf, AuthResult::Pass);
    let options: Vec<Asf> = s.asf.iter().map(|h| h.option).collect();
    assert_eq!(options, vec![Asf::MarkAsSpamFromAddressAuthFail]);
}

#[tokio::test]
async fn a_dns_server_that_does_not_answer_is_a_temperror_never_a_pass() {
    let silent = SilentDnsServer::start().unwrap();
    let auth = SenderAuth::new(resolver(silent.addr(), 200), "mx.hato.test").unwrap();
    let w = world().await;
    let pkcs8 = dkim_key(&w, "contoso.test", "s1").await;
    let signed = sign(&pkcs8, "contoso.test", "s1", &message("a@contoso.test"));
    let s = auth
        .check(&AuthInput {
            message: signed.as_bytes(),
            client_ip: CLIENT.parse().unwrap(),
            helo: "client.example.test",
            mail_from: Some("a@contoso.test"),
            receiving_host: "mx.hato.test",
        })
        .await;
    assert_eq!(s.spf, AuthResult::TempError, "{}", reason_of(&s, "spf"));
    assert_eq!(s.dkim, AuthResult::TempError, "{}", reason_of(&s, "dkim"));
    assert_eq!(s.dmarc, AuthResult::TempError, "{}", reason_of(&s, "dmarc"));
    assert_eq!(s.authenticated_domain, None);
    assert!(s.authentication_results.contains("spf=temperror"));
    assert!(
        s.authentication_results
            .contains("dmarc=temperror action=temperror")
    );
    assert!(
        s.authentication_results
            .ends_with("compauth=none reason=301")
    );
}

#[tokio::test]
async fn dkim_pass_fail_and_none() {
    let w = world().await;
    let pkcs8 = dkim_key(&w, "contoso.test", "s1").await;
    let signed = sign(&pkcs8, "contoso.test", "s1", &message("a@contoso.test"));
    let s = w.check(&signed, OTHER_CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::Pass, "{}", reason_of(&s, "dkim"));
    assert!(
        s.authentication_results
            .contains("dkim=pass (signature was verified) header.d=contoso.test")
    );

    // The body changed after signing.
    let tampered = signed.replace("The figures are attached.", "Wire the money today.");
    let s = w
        .check(&tampered, OTHER_CLIENT, Some("a@contoso.test"))
        .await;
    assert_eq!(s.dkim, AuthResult::Fail);
    assert!(
        s.authentication_results
            .contains("dkim=fail (body hash did not verify) header.d=contoso.test")
    );

    // A signed header changed after signing.
    let tampered = signed.replace("Subject: Quarterly report", "Subject: Urgent");
    let s = w
        .check(&tampered, OTHER_CLIENT, Some("a@contoso.test"))
        .await;
    assert_eq!(s.dkim, AuthResult::Fail, "{}", reason_of(&s, "dkim"));

    // No key published for the selector.
    let other = sign(&pkcs8, "contoso.test", "gone", &message("a@contoso.test"));
    let s = w.check(&other, OTHER_CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::PermError, "{}", reason_of(&s, "dkim"));

    let s = w
        .check(
            &message("a@contoso.test"),
            OTHER_CLIENT,
            Some("a@contoso.test"),
        )
        .await;
    assert_eq!(s.dkim, AuthResult::None);
    assert!(
        s.authentication_results
            .contains("dkim=none (message not signed) header.d=none")
    );
}

#[tokio::test]
async fn dmarc_passes_aligned_through_spf_or_dkim_relaxed_and_strict() {
    let w = world().await;
    w.txt("_dmarc.contoso.test", "v=DMARC1; p=reject").await;
    w.txt("_dmarc.strict.test", "v=DMARC1; p=reject; adkim=s; aspf=s")
        .await;
    w.txt("contoso.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    w.txt("bounce.contoso.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .await;
    w.txt("bounce.strict.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .await;

    // Aligned through SPF, exactly.
    let s = w
        .check(&message("a@contoso.test"), CLIENT, Some("a@contoso.test"))
        .await;
    assert_eq!(s.dmarc, AuthResult::Pass, "{}", reason_of(&s, "dmarc"));
    assert_eq!(s.authenticated_domain.as_deref(), Some("contoso.test"));
    assert_eq!(s.dmarc_policy, DmarcPolicy::None);
    assert!(reason_of(&s, "dmarc").contains("SPF aligned"));

    // Relaxed: MAIL FROM in a subdomain of the From domain's Organizational Domain.
    let s = w
        .check(
            &message("a@contoso.test"),
            CLIENT,
            Some("b@bounce.contoso.test"),
        )
        .await;
    assert_eq!(s.dmarc, AuthResult::Pass, "{}", reason_of(&s, "dmarc"));

    // Strict: the same shape fails.
    let s = w
        .check(
            &message("a@strict.test"),
            CLIENT,
            Some("b@bounce.strict.test"),
        )
        .await;
    assert_eq!(s.spf, AuthResult::Pass);
    assert_eq!(s.dmarc, AuthResult::Fail, "{}", reason_of(&s, "dmarc"));
    assert_eq!(s.dmarc_policy, DmarcPolicy::Reject);
    assert_eq!(s.authenticated_domain, None);

    // Aligned through DKIM (relaxed: d= is the parent of the From domain), SPF failing.
    let pkcs8 = dkim_key(&w, "contoso.test", "s1").await;
    let signed = sign(
        &pkcs8,
        "contoso.test",
        "s1",
        &message("news@mail.contoso.test"),
    );
    let s = w
        .check(&signed, OTHER_CLIENT, Some("x@elsewhere.test"))
        .await;
    assert_eq!(s.dkim, AuthResult::Pass);
    assert_eq!(s.dmarc, AuthResult::Pass, "{}", reason_of(&s, "dmarc"));
    assert_eq!(s.authenticated_domain.as_deref(), Some("mail.contoso.test"));
    assert!(reason_of(&s, "dmarc").contains("DKIM aligned"));

    // Strict DKIM alignment: d=strict.test does not align with mail.strict.test.
    let pkcs8 = dkim_key(&w, "strict.test", "s1").await;
    let signed = sign(
        &pkcs8,
        "strict.test",
        "s1",
        &message("news@mail.strict.test"),
    );
    let s = w
        .check(&signed, OTHER_CLIENT, Some("x@elsewhere.test"))
        .await;
    assert_eq!(s.dkim, AuthResult::Pass);
    assert_eq!(s.dmarc, AuthResult::Fail, "{}", reason_of(&s, "dmarc"));
}

#[tokio::test]
async fn dmarc_failures_follow_p_sp_and_pct() {
    let w = world().await;
    w.txt("_dmarc.none.test", "v=DMARC1; p=none").await;
    w.txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine")
        .await;
    w.txt("_dmarc.reject.test", "v=DMARC1; p=reject; sp=quarantine")
        .await;
    w.txt("_dmarc.sampled.test", "v=DMARC1; p=reject; pct=0")
        .await;

    let fail = |from: &'static str| {
        let w = &w;
        async move {
            w.check(&message(from), OTHER_CLIENT, Some("x@elsewhere.test"))
                .await
        }
    };
    let s = fail("a@none.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::None)
    );
    assert!(
        s.authentication_results
            .contains("dmarc=fail action=none header.from=none.test")
    );
    assert!(
        s.authentication_results
            .ends_with("compauth=fail reason=001")
    );

    let s = fail("a@quarantine.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::Quarantine)
    );
    assert!(
        s.authentication_results
            .contains("dmarc=fail action=quarantine")
    );
    assert!(
        s.authentication_results
            .ends_with("compauth=fail reason=000")
    );

    let s = fail("a@reject.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::Reject)
    );
    assert!(
        s.authentication_results
            .contains("dmarc=fail action=reject header.from=reject.test")
    );

    // A subdomain without a record of its own gets the Organizational Domain's sp=.
    let s = fail("a@shop.reject.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::Quarantine)
    );
    assert!(reason_of(&s, "dmarc").contains("_dmarc.reject.test"));

    // pct=0: never applied; reject falls back to quarantine (RFC 7489 §6.6.4).
    let s = fail("a@sampled.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::Quarantine)
    );
    assert!(
        s.authentication_results
            .contains("dmarc=fail action=pct.reject")
    );
    assert!(
        s.authentication_results
            .ends_with("compauth=fail reason=001")
    );

    // No record at all.
    let s = fail("a@norecord.test").await;
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::None, DmarcPolicy::None)
    );
    assert!(
        s.authentication_results
            .contains("dmarc=none action=none header.from=norecord.test")
    );
}

#[tokio::test]
async fn arc_pass_fail_and_none() {
    let w = world().await;
    let pkcs8 = dkim_key(&w, "forwarder.test", "arc").await;
    let original = message("a@contoso.test");
    let parsed = AuthenticatedMessage::parse(original.as_bytes()).unwrap();
    let results = AuthenticationResults::new("forwarder.test");
    let set = ArcSealer::from_key(Ed25519Key::from_pkcs8_der(&pkcs8).unwrap())
        .domain("forwarder.test")
        .selector("arc")
        .headers(["From", "To", "Subject"])
        .seal(&parsed, &results, &ArcOutput::default())
        .unwrap();
    let sealed = format!("{}{original}", set.to_header());

    let s = w.check(&sealed, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.arc, AuthResult::Pass, "{}", reason_of(&s, "arc"));
    assert!(s.authentication_results.contains("; arc=pass; compauth="));

    let broken = sealed.replace("The figures are attached.", "Changed after sealing.");
    let s = w.check(&broken, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.arc, AuthResult::Fail, "{}", reason_of(&s, "arc"));
    assert!(s.authentication_results.contains("; arc=fail; "));

    let s = w.check(&original, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.arc, AuthResult::None);
    assert!(!s.authentication_results.contains("; arc="));
}

#[tokio::test]
async fn spoofing_the_tenants_own_domain() {
    let w = world().await;
    w.txt("_dmarc.contoso.test", "v=DMARC1; p=reject").await;
    w.txt("contoso.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    let s = w
        .check(
            &message("ceo@contoso.test"),
            OTHER_CLIENT,
            Some("ceo@contoso.test"),
        )
        .await;
    assert!(spoofs_own_domain(&s, &["contoso.test"]));
    assert!(!spoofs_own_domain(&s, &["fabrikam.test"]));
    assert!(
        authentication_results_for_tenant(&s, true).ends_with("compauth=fail reason=010"),
        "{}",
        s.authentication_results
    );
    // No DMARC record, nothing aligned: implicit failure, 6xx for the tenant.
    let s = w
        .check(
            &message("ceo@fabrikam.test"),
            OTHER_CLIENT,
            Some("x@elsewhere.test"),
        )
        .await;
    assert!(spoofs_own_domain(&s, &["fabrikam.test"]));
    assert!(authentication_results_for_tenant(&s, true).ends_with("compauth=fail reason=601"));
    // Sent from an address the domain authorises: authenticated, not spoofing.
    let s = w
        .check(
            &message("ceo@contoso.test"),
            CLIENT,
            Some("ceo@contoso.test"),
        )
        .await;
    assert!(!spoofs_own_domain(&s, &["contoso.test"]));
}

#[tokio::test]
async fn the_authentication_results_value_is_exchanges() {
    let w = world().await;
    w.txt("_dmarc.contoso.test", "v=DMARC1; p=quarantine").await;
    w.txt("contoso.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    let pkcs8 = dkim_key(&w, "contoso.test", "s1").await;
    let signed = sign(&pkcs8, "contoso.test", "s1", &message("a@contoso.test"));
    let s = w.check(&signed, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(
        s.authentication_results,
        "mx.hato.test; spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=contoso.test; \
         dkim=pass (signature was verified) header.d=contoso.test; \
         dmarc=pass action=none header.from=contoso.test; compauth=pass reason=100"
    );
    assert_eq!(s.from_domain.as_deref(), Some("contoso.test"));
    // One reason per check.
    for rule in ["spf", "dkim", "dmarc"] {
        reason_of(&s, rule);
    }
}

#[tokio::test]
async fn an_include_loop_ends_at_the_lookup_limit() {
    let w = world().await;
    w.txt("loop.test", "v=spf1 include:loop.test -all").await;
    let s = w
        .check(&message("a@loop.test"), CLIENT, Some("a@loop.test"))
        .await;
    assert_eq!(s.spf, AuthResult::PermError);
    assert!(reason_of(&s, "spf").contains("more than 10"));
    // The top record and 10 includes, for the MAIL FROM check and again for the From domain's
    // (MarkAsSpamFromAddressAuthFail uses the same domain here, so once).
    let spf_lookups = w.counting.asked(|n| n == "loop.test");
    assert!(spf_lookups <= 11, "{spf_lookups} lookups of loop.test");
}

#[tokio::test]
async fn more_than_ten_dns_terms_or_two_void_lookups_are_permerrors() {
    let w = world().await;
    for i in 0..12 {
        w.txt(
            &format!("c{i}.chain.test"),
            &format!("v=spf1 include:c{}.chain.test -all", i + 1),
        )
        .await;
    }
    w.txt("c12.chain.test", "v=spf1 +all").await;
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@c0.chain.test"))
        .await;
    assert_eq!(s.spf, AuthResult::PermError);
    assert!(w.counting.asked(|n| n.ends_with(".chain.test")) <= 11);

    w.txt(
        "void.test",
        "v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test a:n4.void.test +all",
    )
    .await;
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@void.test"))
        .await;
    assert_eq!(s.spf, AuthResult::PermError);
    assert!(reason_of(&s, "spf").contains("more than 2 lookups found nothing"));
    assert_eq!(w.counting.asked(|n| n == "n4.void.test"), 0);

    // MX with more than 10 exchanges.
    w.txt("manymx.test", "v=spf1 mx -all").await;
    for i in 0..12 {
        w.dns
            .add_mx("manymx.test", 60, i, &format!("m{i}.manymx.test"))
            .await
            .unwrap();
    }
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@manymx.test"))
        .await;
    assert_eq!(s.spf, AuthResult::PermError);
    assert_eq!(
        w.counting
            .asked(|n| n.starts_with('m') && n.ends_with(".manymx.test")),
        0
    );
}

#[tokio::test]
async fn a_huge_spf_record_is_read_once_and_judged() {
    let w = world().await;
    // About 40 KB of ip4 terms in one TXT record (read over TCP).
    let mut record = String::from("v=spf1");
    let mut n = 0;
    while record.len() < 40_000 {
        record.push_str(&format!(" ip4:10.{}.{}.0/24", n / 256 % 256, n % 256));
        n += 1;
    }
    record.push_str(" -all");
    w.txt("huge.test", &record).await;
    let before = w.counting.total();
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@huge.test"))
        .await;
    assert_eq!(s.spf, AuthResult::Fail, "{}", reason_of(&s, "spf"));
    assert_eq!(w.counting.asked(|n| n == "huge.test"), 1);
    // The message's lookups: the SPF record, the DMARC walk of x.test, the From domain's SPF.
    assert!(w.counting.total() - before <= 6);
    assert!(s.authentication_results.len() < 400);
}

#[tokio::test]
async fn only_the_first_five_dkim_signatures_are_verified() {
    let w = world().await;
    let mut signed = message("a@contoso.test");
    for i in 0..8 {
        let domain = format!("d{i}.test");
        let pkcs8 = dkim_key(&w, &domain, "s").await;
        signed = sign(&pkcs8, &domain, "s", &signed);
    }
    let s = w.check(&signed, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::Pass);
    assert_eq!(w.counting.asked(|n| n.contains("._domainkey.")), 5);
    assert!(reason_of(&s, "dkim").contains("3 more signatures not verified"));
    assert_eq!(s.authentication_results.matches("dkim=pass").count(), 5);
}

#[tokio::test]
async fn an_absurd_dkim_key_is_refused_without_more_lookups() {
    let w = world().await;
    let pkcs8 = dkim_key(&w, "contoso.test", "real").await;
    let signed = sign(&pkcs8, "contoso.test", "huge", &message("a@contoso.test"));
    // A 30 KB "RSA key" (about 240,000 bits).
    let junk: Vec<u8> = (0..30_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    w.txt(
        "huge._domainkey.contoso.test",
        &format!("v=DKIM1; k=rsa; p={}", base64(&junk)),
    )
    .await;
    let s = w.check(&signed, CLIENT, Some("a@contoso.test")).await;
    assert_ne!(s.dkim, AuthResult::Pass, "{}", reason_of(&s, "dkim"));
    assert_eq!(w.counting.asked(|n| n.contains("._domainkey.")), 1);
}

#[tokio::test]
async fn a_megabyte_header_costs_no_more_lookups_and_bounded_output() {
    let w = world().await;
    let long_domain = format!("{}.test", "a".repeat(1 << 20));
    let msg = format!(
        "From: x@{long_domain}\r\nSubject: {}\r\nTo: user@hato.test\r\n\r\nbody\r\n",
        "s".repeat(1 << 20)
    );
    let s = w.check(&msg, CLIENT, Some("a@nothing.test")).await;
    assert_eq!(s.from_domain, None);
    assert!(reason_of(&s, "dmarc").contains("not a valid domain name"));
    // SPF of nothing.test; no DMARC lookup for an invalid From domain.
    assert!(w.counting.total() <= 2, "{} lookups", w.counting.total());
    assert!(s.authentication_results.len() < 400);
    let text: usize = s.reasons.iter().map(|r| r.text.len()).sum();
    assert!(text < 4000, "{text} bytes of reasons");
}

#[tokio::test]
async fn an_arc_chain_of_fifty_sets_is_judged_without_lookups() {
    // 12: over hato's cap, under RFC 8617's 50 (mail-auth would fetch every seal's key);
    // 50: the most RFC 8617 allows.
    for sets in [12, 50] {
        let w = world().await;
        let mut msg = String::new();
        for i in (1..=sets).rev() {
            msg.push_str(&format!(
                "ARC-Seal: i={i}; a=rsa-sha256; cv={cv}; d=hop{i}.test; s=s; t=1; b=AAAA\r\n\
                 ARC-Message-Signature: i={i}; a=rsa-sha256; c=relaxed/relaxed; d=hop{i}.test; s=s; h=from; bh=AAAA; b=AAAA\r\n\
                 ARC-Authentication-Results: i={i}; hop{i}.test; spf=pass\r\n",
                cv = if i == 1 { "none" } else { "pass" }
            ));
        }
        msg.push_str(&message("a@contoso.test"));
        let s = w.check(&msg, CLIENT, Some("a@contoso.test")).await;
        assert_eq!(s.arc, AuthResult::Fail);
        assert_eq!(
            w.counting.asked(|n| n.contains("._domainkey.")),
            0,
            "{sets} sets: {}",
            reason_of(&s, "arc")
        );
        assert!(reason_of(&s, "arc").contains(&format!("{sets} ARC sets")));
    }
}

#[tokio::test]
async fn a_zero_length_cidr_is_a_permerror_not_a_crash() {
    let w = world().await;
    w.txt("everyone.test", "v=spf1 ip4:0.0.0.0/0 -all").await;
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@everyone.test"))
        .await;
    assert_eq!(s.spf, AuthResult::PermError);
}

#[tokio::test]
async fn the_clients_country_comes_from_the_bundled_table() {
    assert_eq!(country_of("1.0.1.1".parse().unwrap()), Some("CN"));
    assert_eq!(country_of("2a01:4f8::1".parse().unwrap()), Some("DE"));
    assert_eq!(country_of("2001:4860::8888".parse().unwrap()), Some("US"));
    assert_eq!(country_of("::ffff:1.0.1.1".parse().unwrap()), Some("CN"));
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "::1",
        "fd00::1",
        "192.0.2.1",
    ] {
        assert_eq!(country_of(private.parse().unwrap()), None, "{private}");
    }
    let w = world().await;
    let s = w
        .check(&message("a@x.test"), "1.0.1.1", Some("a@x.test"))
        .await;
    assert_eq!(s.country.as_deref(), Some("CN"));
    assert!(reason_of(&s, "country").contains("CN"));
    let s = w
        .check(&message("a@x.test"), CLIENT, Some("a@x.test"))
        .await;
    assert_eq!(s.country, None);
}

#[tokio::test]
async fn a_message_makes_at_most_max_lookups() {
    let w = world().await;
    // Two domains whose records are each within RFC 7208's limits but cost 111 lookups: ten
    // `mx` terms of ten exchanges, none of them the client.
    for domain in ["one.test", "two.test"] {
        let terms: Vec<String> = (0..10).map(|i| format!("mx:m{i}.{domain}")).collect();
        w.txt(domain, &format!("v=spf1 {} -all", terms.join(" ")))
            .await;
        for i in 0..10 {
            for j in 0..10 {
                let exchange = format!("x{j}.m{i}.{domain}");
                w.dns
                    .add_mx(&format!("m{i}.{domain}"), 60, j, &exchange)
                    .await
                    .unwrap();
                w.dns
                    .add_a(&exchange, 60, Ipv4Addr::new(203, 0, 113, 9))
                    .await
                    .unwrap();
            }
        }
    }
    let s = w
        .check(&message("a@two.test"), CLIENT, Some("a@one.test"))
        .await;
    assert_eq!(s.spf, AuthResult::Fail, "{}", reason_of(&s, "spf"));
    assert!(
        w.counting.total() <= hato_protection::spam::auth::MAX_LOOKUPS,
        "{} lookups",
        w.counting.total()
    );
    // The From domain's check ran out of lookups: not a fail, so no From-address ASF.
    assert!(
        s.asf
            .iter()
            .all(|h| h.option != Asf::MarkAsSpamFromAddressAuthFail)
    );
}

#[tokio::test]
async fn a_signature_over_thousands_of_fields_is_refused_without_a_lookup() {
    let w = world().await;
    dkim_key(&w, "contoso.test", "s1").await;
    // A correct body hash (relaxed canonicalisation leaves this body as it is), so that without
    // the cap the signature would reach the key lookup and the search of its 5000 names.
    let body_hash = base64(&sha2::Sha256::digest(b"The figures are attached.\r\n"));
    let names: Vec<String> = (0..5000).map(|i| format!("x-f{i}")).collect();
    let mut msg = format!(
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=contoso.test; s=s1; h={}; bh={body_hash}; b=AAAA\r\n",
        names.join(":")
    );
    for i in 0..2000 {
        msg.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    msg.push_str(&message("a@contoso.test"));
    let s = w.check(&msg, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::PermError, "{}", reason_of(&s, "dkim"));
    assert!(reason_of(&s, "dkim").contains("signs 5000 header fields"));
    assert_eq!(w.counting.asked(|n| n.contains("._domainkey.")), 0);
}

#[tokio::test]
async fn an_arc_message_signature_over_too_many_fields_fails_without_a_lookup() {
    let w = world().await;
    let names: Vec<String> = (0..100).map(|i| format!("x-f{i}")).collect();
    let msg = format!(
        "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hop.test; s=s; t=1; b=AAAA\r\n\
         ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=hop.test; s=s; h={}; bh=AAAA; b=AAAA\r\n\
         ARC-Authentication-Results: i=1; hop.test; spf=pass\r\n{}",
        names.join(":"),
        message("a@contoso.test")
    );
    let s = w.check(&msg, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.arc, AuthResult::Fail);
    assert!(reason_of(&s, "arc").contains("signs 100 header fields"));
    assert_eq!(w.counting.asked(|n| n.contains("._domainkey.")), 0);
}

#[tokio::test]
async fn a_large_signed_message_is_verified_off_the_async_workers() {
    let w = world().await;
    let pkcs8 = dkim_key(&w, "contoso.test", "s1").await;
    // Over OFFLOAD_BYTES: parsed, hashed and verified on the blocking pool.
    let body = "All work and no play makes Jack a dull boy.\r\n".repeat(8000);
    let big = format!("From: a@contoso.test\r\nTo: user@hato.test\r\nSubject: Long\r\n\r\n{body}");
    assert!(big.len() > hato_protection::spam::auth::dkim::OFFLOAD_BYTES);
    let signed = sign(&pkcs8, "contoso.test", "s1", &big);
    let s = w.check(&signed, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::Pass, "{}", reason_of(&s, "dkim"));
    let tampered = signed.replacen("Jack", "Jill", 1);
    let s = w.check(&tampered, CLIENT, Some("a@contoso.test")).await;
    assert_eq!(s.dkim, AuthResult::Fail, "{}", reason_of(&s, "dkim"));
}

#[tokio::test]
async fn without_a_dmarc_record_an_aligned_pass_is_a_best_guess_and_an_unaligned_one_soft() {
    let w = world().await;
    w.txt("plain.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    w.txt("relay.test", "v=spf1 ip4:192.0.2.0/24 -all").await;
    let s = w
        .check(&message("a@plain.test"), CLIENT, Some("a@plain.test"))
        .await;
    assert_eq!(s.dmarc, AuthResult::None);
    assert_eq!(
        s.authenticated_domain, None,
        "no record is not a DMARC pass"
    );
    assert!(
        s.authentication_results.ends_with(
            "dmarc=bestguesspass action=none header.from=plain.test; compauth=pass reason=109"
        ),
        "{}",
        s.authentication_results
    );
    let s = w
        .check(&message("a@plain.test"), CLIENT, Some("b@relay.test"))
        .await;
    assert!(
        s.authentication_results
            .ends_with("compauth=softpass reason=201")
    );
}

#[tokio::test]
async fn an_internationalised_from_domain_is_checked_as_its_a_label() {
    let w = world().await;
    // bücher.test is xn--bcher-kva.test in the DNS.
    w.txt("_dmarc.xn--bcher-kva.test", "v=DMARC1; p=reject")
        .await;
    let s = w
        .check(
            &message("info@bücher.test"),
            OTHER_CLIENT,
            Some("x@elsewhere.test"),
        )
        .await;
    assert_eq!(s.from_domain.as_deref(), Some("xn--bcher-kva.test"));
    assert_eq!(
        (s.dmarc, s.dmarc_policy),
        (AuthResult::Fail, DmarcPolicy::Reject)
    );
    assert!(spoofs_own_domain(&s, &["bücher.test"]));
    assert!(spoofs_own_domain(&s, &["XN--BCHER-KVA.TEST"]));
}

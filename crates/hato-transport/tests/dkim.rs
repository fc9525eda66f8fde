//! The outbound DKIM signer against hato's own inbound verification (the spam stage's sender
//! authentication) over a DNS server on loopback serving the records `hato dkim add` prints:
//! RSA and Ed25519 keys, the From domain's config only (never a parent's, never another
//! tenant's, never a disabled one), rotation, the signed header set with From oversigned and no
//! `l=`, a body streamed from a reader.

use std::net::SocketAddr;
use std::sync::Arc;

use hato_core::directory::DomainType;
use hato_dns::testing::TestDnsServer;
use hato_dns::{DnsSettings, HickoryResolver};
use hato_protection::spam::AuthResult;
use hato_protection::spam::auth::{AuthInput, SenderAuth};
use hato_store::*;
use hato_transport::dkim::{
    DkimSigner, dns_record_name, dns_record_text, dns_txt_strings, generate_key,
};

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    dns: TestDnsServer,
    auth: SenderAuth,
    signer: DkimSigner,
    contoso: i64,
    fabrikam: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let contoso = store.create_tenant("contoso").await.unwrap().id;
    let fabrikam = store.create_tenant("fabrikam").await.unwrap().id;
    for (d, t) in [
        ("contoso.test", contoso),
        ("sales.contoso.test", contoso),
        ("fabrikam.test", fabrikam),
    ] {
        store
            .add_domain(d, t, DomainType::Authoritative)
            .await
            .unwrap();
    }
    let dns = TestDnsServer::start(&["test"]).await.unwrap();
    let addr: SocketAddr = dns.addr();
    let resolver = Arc::new(
        HickoryResolver::new(&DnsSettings {
            servers: vec![addr.to_string()],
            timeout_ms: 2000,
            cache_size: 1000,
        })
        .unwrap(),
    );
    let auth = SenderAuth::new(resolver, "mx.hato.test").unwrap();
    let signer = DkimSigner::new(store.clone());
    World {
        _dir: dir,
        store,
        dns,
        auth,
        signer,
        contoso,
        fabrikam,
    }
}

impl World {
    /// `hato dkim add`: both selectors' keys, their records published.
    async fn add(
        &self,
        tenant: i64,
        domain: &str,
        key_type: DkimKeyType,
        bits: u32,
    ) -> DkimSigningConfig {
        let keys = [
            generate_key(key_type, bits).unwrap(),
            generate_key(key_type, bits).unwrap(),
        ];
        let c = self
            .store
            .add_dkim_signing_config(tenant, domain, true, keys)
            .await
            .unwrap();
        for s in &c.selectors {
            self.publish(domain, s).await;
        }
        c
    }

    async fn publish(&self, domain: &str, s: &DkimSelectorKey) {
        let text = dns_record_text(&s.key);
        let _ = self
            .dns
            .remove(
                &dns_record_name(&s.selector, domain),
                hato_core::dns::RecordKind::Txt,
            )
            .await;
        self.dns
            .add_txt(
                &dns_record_name(&s.selector, domain),
                300,
                &dns_txt_strings(&text),
            )
            .await
            .unwrap();
    }

    async fn verify(&self, message: &[u8]) -> (AuthResult, String) {
        let s = self
            .auth
            .check(&AuthInput {
                message,
                client_ip: "192.0.2.1".parse().unwrap(),
                helo: "out.hato.test",
                mail_from: Some("alice@contoso.test"),
                receiving_host: "mx.hato.test",
            })
            .await;
        (s.dkim, s.authentication_results)
    }
}

fn message(from: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <{from}>\r\nTo: bob@example.test\r\nCc: carol@example.test\r\n\
         Subject: quarterly figures\r\nDate: Tue, 1 Dec 2026 06:00:00 +0000\r\n\
         Message-ID: <1@contoso.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nX-Other: not signed\r\n\r\n{body}"
    )
    .into_bytes()
}

fn signed(sig: &str, message: &[u8]) -> Vec<u8> {
    let mut m = sig.as_bytes().to_vec();
    m.extend_from_slice(message);
    m
}

/// The tag `name=` of a DKIM-Signature field, unfolded.
fn tag(sig: &str, name: &str) -> Option<String> {
    let unfolded: String = sig
        .split_once(':')
        .unwrap()
        .1
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    unfolded
        .split(';')
        .find_map(|t| t.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[tokio::test]
async fn an_rsa_2048_signature_verifies_against_the_printed_record_and_a_changed_body_does_not() {
    let w = world().await;
    let c = w
        .add(w.contoso, "contoso.test", DkimKeyType::Rsa, 2048)
        .await;
    assert_eq!(c.selectors[0].key.bits, 2048);
    // A 2048-bit key's record needs more than one TXT string (RFC 1035's 255 bytes).
    assert!(dns_txt_strings(&dns_record_text(&c.selectors[0].key)).len() > 1);
    let m = message(
        "alice@contoso.test",
        "Hello Bob,\r\n\r\nthe figures.  \r\n\r\n\r\n",
    );
    let sig = w.signer.sign(w.contoso, &m).expect("signed");
    assert!(
        sig.starts_with("DKIM-Signature: ") && sig.ends_with("\r\n"),
        "{sig}"
    );
    assert_eq!(tag(&sig, "a").as_deref(), Some("rsa-sha256"), "{sig}");
    assert_eq!(tag(&sig, "c").as_deref(), Some("relaxed/relaxed"), "{sig}");
    assert_eq!(tag(&sig, "d").as_deref(), Some("contoso.test"), "{sig}");
    assert_eq!(tag(&sig, "s").as_deref(), Some("selector1"), "{sig}");
    assert_eq!(tag(&sig, "l"), None, "never l=: {sig}");
    let h: Vec<String> = tag(&sig, "h")
        .unwrap()
        .split(':')
        .map(|n| n.to_ascii_lowercase())
        .collect();
    for name in [
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "content-type",
        "mime-version",
    ] {
        assert!(h.contains(&name.to_string()), "{name} signed: {h:?}");
    }
    assert_eq!(
        h.iter().filter(|n| *n == "from").count(),
        2,
        "From oversigned: {h:?}"
    );
    assert!(!h.contains(&"x-other".to_string()), "{h:?}");
    let (result, ar) = w.verify(&signed(&sig, &m)).await;
    assert_eq!(result, AuthResult::Pass, "{ar}");
    assert!(
        ar.contains("dkim=pass (signature was verified) header.d=contoso.test"),
        "{ar}"
    );
    // Relaxed/relaxed: whitespace changes in transit still verify (RFC 6376 §3.4.4).
    let mut respaced = signed(&sig, &m);
    let text = String::from_utf8(respaced.clone())
        .unwrap()
        .replace("the figures.  ", "the   figures.");
    respaced = text.into_bytes();
    assert_eq!(w.verify(&respaced).await.0, AuthResult::Pass);
    // A changed body or an added From fails.
    let changed = String::from_utf8(signed(&sig, &m))
        .unwrap()
        .replace("figures", "fingers");
    let (result, ar) = w.verify(changed.as_bytes()).await;
    assert_eq!(result, AuthResult::Fail, "{ar}");
    let mut added = b"From: mallory@contoso.test\r\n".to_vec();
    added.extend_from_slice(&signed(&sig, &m));
    assert_ne!(w.verify(&added).await.0, AuthResult::Pass);
}

#[tokio::test]
async fn ed25519_signs_and_verifies() {
    let w = world().await;
    let c = w
        .add(w.contoso, "contoso.test", DkimKeyType::Ed25519, 0)
        .await;
    assert!(dns_record_text(&c.selectors[0].key).starts_with("v=DKIM1; k=ed25519; p="));
    let m = message("alice@contoso.test", "Hello.\r\n");
    let sig = w.signer.sign(w.contoso, &m).expect("signed");
    assert_eq!(tag(&sig, "a").as_deref(), Some("ed25519-sha256"), "{sig}");
    let (result, ar) = w.verify(&signed(&sig, &m)).await;
    assert_eq!(result, AuthResult::Pass, "{ar}");
}

#[tokio::test]
async fn only_the_tenants_enabled_config_of_exactly_the_from_domain_signs() {
    let w = world().await;
    w.add(w.contoso, "contoso.test", DkimKeyType::Ed25519, 0)
        .await;
    let m = message("alice@contoso.test", "Hello.\r\n");
    // Another tenant's mail claiming the domain is not signed with its key.
    assert_eq!(w.signer.sign(w.fabrikam, &m), None);
    // A subdomain without a config of its own is not signed (as in Exchange).
    assert_eq!(
        w.signer
            .sign(w.contoso, &message("a@sales.contoso.test", "x\r\n")),
        None
    );
    // Nor a domain without one, nor a message without a From domain.
    assert_eq!(
        w.signer
            .sign(w.contoso, &message("a@example.test", "x\r\n")),
        None
    );
    assert_eq!(
        w.signer.sign(w.contoso, b"To: b@example.test\r\n\r\nx\r\n"),
        None
    );
    // Disabled: unsigned at once (the signer reloads when the store's version moves).
    assert!(w.signer.sign(w.contoso, &m).is_some());
    w.store
        .set_dkim_signing_enabled(w.contoso, "contoso.test", false)
        .await
        .unwrap();
    assert_eq!(w.signer.sign(w.contoso, &m), None);
    w.store
        .set_dkim_signing_enabled(w.contoso, "contoso.test", true)
        .await
        .unwrap();
    assert!(w.signer.sign(w.contoso, &m).is_some());
    // Removed with the domain.
    w.store
        .remove_dkim_signing_config(w.contoso, "contoso.test")
        .await
        .unwrap();
    assert_eq!(w.signer.sign(w.contoso, &m), None);
}

#[tokio::test]
async fn after_a_rotation_selector2_signs_and_still_verifies() {
    let w = world().await;
    w.add(w.contoso, "contoso.test", DkimKeyType::Rsa, 2048)
        .await;
    let m = message("alice@contoso.test", "Hello.\r\n");
    let before = w.signer.sign(w.contoso, &m).unwrap();
    assert_eq!(tag(&before, "s").as_deref(), Some("selector1"));
    let r = w
        .store
        .rotate_dkim_signing_config(
            w.contoso,
            "contoso.test",
            generate_key(DkimKeyType::Rsa, 2048).unwrap(),
        )
        .await
        .unwrap();
    let after = w.signer.sign(w.contoso, &m).unwrap();
    assert_eq!(tag(&after, "s").as_deref(), Some("selector2"));
    let (result, ar) = w.verify(&signed(&after, &m)).await;
    assert_eq!(result, AuthResult::Pass, "{ar}");
    // selector1's new key: once its record is published, the next rotation signs with it.
    w.publish("contoso.test", &r.selectors[0]).await;
    w.store
        .rotate_dkim_signing_config(
            w.contoso,
            "contoso.test",
            generate_key(DkimKeyType::Rsa, 2048).unwrap(),
        )
        .await
        .unwrap();
    let again = w.signer.sign(w.contoso, &m).unwrap();
    assert_eq!(tag(&again, "s").as_deref(), Some("selector1"));
    assert_eq!(w.verify(&signed(&again, &m)).await.0, AuthResult::Pass);
}

/// A reader that hands out its bytes a few at a time, as a slow file would.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// A reader whose first read ends at byte `.1`, the rest read at most 64 KiB at a time.
struct Split<'a>(&'a [u8], usize);

impl std::io::Read for Split<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = if self.1 > 0 { self.1 } else { 65536 };
        let n = buf.len().min(self.0.len()).min(want);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        self.1 = 0;
        Ok(n)
    }
}

#[tokio::test]
async fn a_large_message_streams_from_a_reader_and_verifies() {
    let w = world().await;
    w.add(w.contoso, "contoso.test", DkimKeyType::Ed25519, 0)
        .await;
    let line = "0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    let m = message("alice@contoso.test", &line.repeat(40_000));
    assert!(m.len() > 3_000_000);
    let from_reader = w
        .signer
        .sign_reader(w.contoso, &mut std::io::Cursor::new(&m))
        .unwrap()
        .unwrap();
    let (result, ar) = w.verify(&signed(&from_reader, &m)).await;
    assert_eq!(result, AuthResult::Pass, "{ar}");
    // A read that ends inside the empty line after the header block: the end is still found
    // there (not looked for past it, which would read the whole message as header).
    let end = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let split = w
        .signer
        .sign_reader(w.contoso, &mut Split(&m, end))
        .unwrap()
        .unwrap();
    assert_eq!(tag(&split, "bh"), tag(&from_reader, "bh"));
    // Whatever the reads' sizes, the same body hash.
    let small = message("alice@contoso.test", &line.repeat(50));
    let trickled = w
        .signer
        .sign_reader(w.contoso, &mut Trickle(&small))
        .unwrap()
        .unwrap();
    let whole = w.signer.sign(w.contoso, &small).unwrap();
    assert_eq!(tag(&trickled, "bh"), tag(&whole, "bh"));
    assert_eq!(
        w.verify(&signed(&trickled, &small)).await.0,
        AuthResult::Pass
    );
}

/// The signer keeps its configs while the store's generation stays; removing the accepted
/// domain removes its config with it, and the next message is unsigned at once.
#[tokio::test]
async fn a_removed_domain_is_unsigned_at_once() {
    let w = world().await;
    w.add(w.contoso, "contoso.test", DkimKeyType::Ed25519, 0)
        .await;
    let m = message("alice@contoso.test", "Hello.\r\n");
    assert!(w.signer.sign(w.contoso, &m).is_some());
    assert!(
        w.signer.sign(w.contoso, &m).is_some(),
        "from the kept snapshot"
    );
    w.store.remove_domain("contoso.test").await.unwrap();
    assert_eq!(w.signer.sign(w.contoso, &m), None);
}

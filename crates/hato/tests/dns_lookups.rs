//! Which DNS lookups mail makes, counted by the DNS server on loopback
//! (`hato_dns::testing::TestDnsServer::queries`): mail relayed through an on-premises connector
//! and authenticated submission to an outside recipient make **no** SPF, DKIM or DMARC lookups
//! (the outbound verdict does not read sender authentication; only delivery's MX and address
//! lookups are made), while mail from outside to a tenant's mailbox does make them.

mod common;

use common::sink::Sink;
use common::*;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Submission with smtplib: STARTTLS, AUTH PLAIN, one message; prints the DATA reply.
const SUBMIT: &str = r#"
import json, smtplib, ssl, sys
plan = json.loads(sys.argv[1])
host, port = plan['addr'].rsplit(':', 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP(host, int(port), timeout=30)
c.ehlo('py.test')
c.starttls(context=ctx)
c.ehlo('py.test')
c.login(plan['user'], plan['password'])
refused = c.sendmail(plan['from'], plan['to'], plan['data'])
assert not refused, refused
c.quit()
print('sent')
"#;

/// The sender-authentication lookups among `queries`: SPF and DMARC (TXT of the domain and of
/// `_dmarc.`), DKIM (TXT under `_domainkey.`) for `domain`.
fn auth_lookups(dns: &Dns, domain: &str) -> Vec<String> {
    dns.queries()
        .into_iter()
        .filter(|((name, kind), _)| {
            kind == "TXT"
                && (name == domain
                    || name == &format!("_dmarc.{domain}")
                    || name.ends_with(&format!("._domainkey.{domain}")))
        })
        .map(|((name, kind), n)| format!("{name} {kind} x{n}"))
        .collect()
}

#[test]
fn relay_and_submission_make_no_sender_authentication_lookups_inbound_mail_does() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&[]);
    dns.mx("sink.test", 10, "mx.sink.test");
    dns.a("mx.sink.test", Ipv4Addr::LOCALHOST);
    // The domains publish SPF and DMARC, as real ones do: a lookup would find them.
    dns.txt("contoso.test", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.contoso.test", "v=DMARC1; p=reject");
    dns.txt("fabrikam.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.fabrikam.test", "v=DMARC1; p=none");
    let s = Server::start_with_config(
        "",
        "",
        &format!(
            "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {}\n",
            dns.addr(),
            sink.port
        ),
    );
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &["--password", PASSWORD]);
    s.ok(&[
        "connector",
        "inbound",
        "add",
        "Relay",
        "--tenant",
        "contoso",
        "--connector-type",
        "on-premises",
        "--sender-ip-addresses",
        "127.0.0.1",
    ]);
    dns.reset_queries();

    // 1. Relay through the on-premises connector, with a DKIM signature a verifier would look
    //    up (selector s1 of contoso.test).
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let reply = c.send_mail(
        "alice@contoso.test",
        &["user@sink.test"],
        "DKIM-Signature: v=1; a=rsa-sha256; d=contoso.test; s=s1; h=from:subject; bh=AAAA; b=AAAA\n\
         From: alice@contoso.test\nTo: user@sink.test\nSubject: relayed\n\nhello\n",
    );
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    c.cmd("QUIT");
    let relayed = trace_id_of(&reply);
    wait("the relayed message at the sink", 30, || {
        sink.messages() == 1
    });
    // The sink has the message as soon as the remote answered 250; the Send event is recorded
    // after that reply, so it may trail the sink by a moment.
    wait("the Send event of the relayed message", 30, || {
        s.events(&relayed, "user@sink.test")
            .iter()
            .any(|e| e["event"] == "Send")
    });
    assert!(
        dns.query_count("sink.test", "MX") >= 1,
        "delivery looked up the MX: {:?}",
        dns.queries()
    );
    assert!(
        dns.query_count("mx.sink.test", "A") >= 1,
        "{:?}",
        dns.queries()
    );
    assert_eq!(
        auth_lookups(&dns, "contoso.test"),
        Vec::<String>::new(),
        "relay made sender authentication lookups: {:?}",
        dns.queries()
    );

    // 2. Authenticated submission to an outside recipient.
    let out = python(
        SUBMIT,
        &[&json!({
            "addr": s.submission.to_string(),
            "user": "alice@contoso.test",
            "password": PASSWORD,
            "from": "alice@contoso.test",
            "to": ["other@sink.test"],
            "data": "From: alice@contoso.test\r\nTo: other@sink.test\r\nSubject: submitted\r\n\r\nhello\r\n",
        })
        .to_string()],
    );
    assert_eq!(out.trim(), "sent");
    wait("the submitted message at the sink", 30, || {
        sink.messages() == 2
    });
    assert_eq!(
        auth_lookups(&dns, "contoso.test"),
        Vec::<String>::new(),
        "submission made sender authentication lookups: {:?}",
        dns.queries()
    );

    // 3. Mail from outside to alice: SPF and DMARC of the sender's domain are looked up.
    dns.reset_queries();
    let mut c = Smtp::connect_from(s.smtp, "127.0.0.9");
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO mail.fabrikam.test").starts_with("250"));
    let reply = c.send_mail(
        "bob@fabrikam.test",
        &["alice@contoso.test"],
        "From: bob@fabrikam.test\nTo: alice@contoso.test\nSubject: inbound\n\nhello\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
    let lookups = auth_lookups(&dns, "fabrikam.test");
    assert!(
        lookups.iter().any(|l| l.starts_with("fabrikam.test TXT")),
        "SPF of the outside sender: {:?}",
        dns.queries()
    );
    assert!(
        lookups
            .iter()
            .any(|l| l.starts_with("_dmarc.fabrikam.test TXT")),
        "DMARC of the outside sender: {:?}",
        dns.queries()
    );
}

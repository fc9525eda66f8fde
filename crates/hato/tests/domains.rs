//! Accepted domains are verified, end to end: the real `hato serve`, its `[dns] servers` pointed
//! at a DNS server on loopback (hickory-server in this process) that serves the tenant's zone,
//! the CLI and raw SMTP.

mod common;

use common::*;
use serde_json::{Value, json};

impl Dns {
    fn hato(&self) -> Server {
        Server::start_with_config(
            "",
            "",
            &format!(
                "[dns]\nservers = [\"{}\"]\ntimeout_ms = 3000\n",
                self.addr()
            ),
        )
    }
}

fn tenant_admin(s: &Server, tenant: &str) -> String {
    s.ok(&["tenant", "add", tenant]);
    s.ok(&["token", "create", "--tenant", tenant])
        .trim()
        .to_string()
}

fn as_admin(s: &Server, token: &str, args: &[&str]) -> (bool, String, String) {
    s.cli_env(args, &[("HATO_TOKEN", token)])
}

fn ready(s: &Server) -> Smtp {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220 mx.hato.test"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    c
}

/// The reply to `RCPT TO:<rcpt>`, without its CRLF.
fn rcpt_reply(s: &Server, rcpt: &str) -> String {
    let mut c = ready(s);
    assert!(c.cmd("MAIL FROM:<bob@fabrikam.test>").starts_with("250"));
    c.cmd(&format!("RCPT TO:<{rcpt}>")).trim_end().to_string()
}

#[test]
fn a_tenant_admins_domain_takes_mail_once_its_dns_record_is_seen() {
    let dns = Dns::start(&["contoso.test"]);
    let s = dns.hato();
    let admin = tenant_admin(&s, "alpha");

    // Added by the tenant's admin: pending, with the record to publish.
    let (ok, out, err) = as_admin(&s, &admin, &["domain", "add", "contoso.test"]);
    assert!(ok, "{err}");
    let (_, v) = s.api_as(&admin, "GET", "/api/v1/domains/contoso.test", None);
    let record = v["verification_record"]
        .as_str()
        .expect("record")
        .to_string();
    let token = record.strip_prefix("hato-verification=").expect("prefix");
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{record}"
    );
    assert_eq!(
        out,
        format!(
            "domain contoso.test added to tenant alpha (authoritative)\n\
             pending verification: mail for it is refused until you publish the DNS TXT record\n  \
             contoso.test. TXT \"{record}\"\n\
             and run `hato domain verify contoso.test`\n"
        )
    );
    assert_eq!(
        v,
        json!({"domain": "contoso.test", "tenant": "alpha", "type": "authoritative",
               "status": "pending", "verification_record": record})
    );
    // `show` and `list` give the record too.
    let (ok, out, _) = as_admin(&s, &admin, &["domain", "show", "contoso.test"]);
    assert!(ok);
    assert_eq!(
        out,
        format!(
            "domain: contoso.test\ntenant: alpha\ntype: authoritative\nstatus: pending\n\
             verification_record: {record}\n\
             pending verification: mail for it is refused until you publish the DNS TXT record\n  \
             contoso.test. TXT \"{record}\"\n\
             and run `hato domain verify contoso.test`\n"
        )
    );
    let (_, out, _) = as_admin(&s, &admin, &["domain", "list"]);
    assert_eq!(
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [
            vec!["DOMAIN", "TENANT", "TYPE", "STATUS", "VERIFICATION_RECORD"],
            vec!["contoso.test", "alpha", "authoritative", "pending", &record],
        ]
    );

    // Its recipients can be prepared, but mail for them is refused as if it were nobody's.
    let (ok, _, err) = as_admin(&s, &admin, &["mailbox", "add", "alice@contoso.test"]);
    assert!(ok, "{err}");
    assert_eq!(
        rcpt_reply(&s, "alice@contoso.test"),
        "550 5.7.1 Unable to relay"
    );

    // Verifying without the record: a clear message, still pending. First no TXT record at
    // all, then only another one.
    let how_to = format!(
        "publish the DNS TXT record \"{record}\" at contoso.test and verify again (a change can \
         take as long as the zone's TTL to be seen)"
    );
    let (ok, _, err) = as_admin(&s, &admin, &["domain", "verify", "contoso.test"]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: contoso.test is not verified: contoso.test: no TXT records; {how_to} (HTTP 400)\n"
        )
    );
    dns.txt("contoso.test", "v=spf1 -all");
    let (ok, _, err) = as_admin(&s, &admin, &["domain", "verify", "contoso.test"]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "error: contoso.test is not verified: none of its 1 TXT record(s) is \"{record}\"; \
             {how_to} (HTTP 400)\n"
        )
    );
    // Another tenant's token in the record does not do either.
    dns.txt(
        "contoso.test",
        "hato-verification=00000000000000000000000000000000",
    );
    assert!(!as_admin(&s, &admin, &["domain", "verify", "contoso.test"]).0);
    assert_eq!(
        rcpt_reply(&s, "alice@contoso.test"),
        "550 5.7.1 Unable to relay"
    );

    // The record published (right after the failed tries, whose answers the resolver cached):
    // verified, and mail is taken.
    dns.txt("contoso.test", &record);
    let (ok, out, err) = as_admin(&s, &admin, &["domain", "verify", "contoso.test"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "domain contoso.test verified: mail for it is accepted\n"
    );
    let (_, v) = s.api_as(&admin, "GET", "/api/v1/domains/contoso.test", None);
    assert_eq!(v["status"], "verified");
    let mut c = ready(&s);
    let reply = c.send_mail(
        "bob@fabrikam.test",
        &["alice@contoso.test"],
        "Subject: hello\r\n\r\nhi\r\n",
    );
    assert!(reply.starts_with("250 2.6.0 <"), "{reply}");
    s.wait_for("delivery to alice", || {
        !s.mail("alice@contoso.test").is_empty()
    });

    // Verified stays verified, whatever the DNS says later.
    dns.remove_txt("contoso.test");
    let (ok, out, _) = as_admin(&s, &admin, &["domain", "verify", "contoso.test"]);
    assert!(ok);
    assert_eq!(
        out,
        "domain contoso.test verified: mail for it is accepted\n"
    );
    assert_eq!(
        rcpt_reply(&s, "alice@contoso.test"),
        "250 2.1.5 Recipient OK"
    );
}

#[test]
fn the_operators_domain_is_verified_at_once() {
    let dns = Dns::start(&["contoso.test"]);
    let s = dns.hato();
    s.ok(&["tenant", "add", "alpha"]);
    assert_eq!(
        s.ok(&["domain", "add", "contoso.test", "--tenant", "alpha"]),
        "domain contoso.test added to tenant alpha (authoritative)\n"
    );
    let (_, v) = s.api("GET", "/api/v1/domains/contoso.test", None);
    assert_eq!(v["status"], "verified");
    s.mailbox("alice@contoso.test", &[]);
    assert_eq!(
        rcpt_reply(&s, "alice@contoso.test"),
        "250 2.1.5 Recipient OK"
    );
}

#[test]
fn a_domain_another_tenant_holds_is_refused_without_naming_it() {
    let dns = Dns::start(&["contoso.test"]);
    let s = dns.hato();
    let alpha = tenant_admin(&s, "alpha");
    let beta = tenant_admin(&s, "beta");
    // alpha holds one domain pending and one verified (by the operator).
    assert!(as_admin(&s, &alpha, &["domain", "add", "pending.test"]).0);
    s.ok(&["domain", "add", "verified.test", "--tenant", "alpha"]);

    for domain in ["pending.test", "verified.test"] {
        let want = format!(
            "domain {domain} is already an accepted domain here (of this or another tenant; \
             which is not said); if your organisation owns it, ask the platform operator"
        );
        // beta's admin, and alpha's own admin, get the same answer, pending or verified.
        for token in [&beta, &alpha] {
            let (status, v) = s.api_as(
                token,
                "POST",
                "/api/v1/domains",
                Some(json!({"domain": domain})),
            );
            assert_eq!((status, v), (409, json!({"error": want})));
        }
        let (ok, _, err) = as_admin(&s, &beta, &["domain", "add", domain]);
        assert!(!ok);
        assert_eq!(err, format!("error: {want} (HTTP 409)\n"));
        assert!(!err.contains("alpha"), "{err}");
        // To beta the domain is as absent as one nobody holds.
        for path in [
            format!("/api/v1/domains/{domain}"),
            "/api/v1/domains/nobody.test".to_string(),
        ] {
            let missing = path.rsplit('/').next().unwrap_or("").to_string();
            let (status, v) = s.api_as(&beta, "GET", &path, None);
            assert_eq!(
                (status, v),
                (404, json!({"error": format!("domain {missing} not found")}))
            );
            let (status, v) = s.api_as(&beta, "POST", &format!("{path}/verify"), None);
            assert_eq!(
                (status, v),
                (404, json!({"error": format!("domain {missing} not found")}))
            );
        }
    }
    let (_, v) = s.api_as(&beta, "GET", "/api/v1/domains", None);
    assert_eq!(v, Value::Array(vec![]));
}

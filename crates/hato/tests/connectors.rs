//! Inbound connectors and RejectDirectSend against the real `hato serve`: the CLI and the API
//! (every setting as a flag, read back; Exchange's defaults; each bad value refused naming the
//! setting and nothing changed; the shared-IP refusal across tenants and --force; who may read
//! and change), the throttle exemptions an on-premises connector registers, and the SMTP
//! behaviours with real clients on loopback: relay by attribution (5.7.64 from elsewhere,
//! 5.7.1 for a domain no tenant has), the attribution rule for a shared IP, a restricted group
//! accepting the attributed tenant's sender, partner connectors' RequireTls and
//! RestrictDomainsToIPAddresses, RejectDirectSend on and off, and hato's own headers kept from
//! an on-premises connector with --cloud-services-mail-enabled.

mod common;

use common::{Dns, Server, Smtp, python, send_mime, trace_id_of};
use serde_json::{Value, json};

/// `show`'s lines as setting → value.
fn shown(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            l.split_once(": ")
                .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn admin_token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// The CLI's error line for a refused command.
fn refused(s: &Server, args: &[&str]) -> String {
    let (ok, out, err) = s.cli(args);
    assert!(!ok, "hato {args:?} succeeded: {out}");
    err.trim().to_string()
}

#[test]
fn inbound_connectors_through_the_cli_with_exchanges_names_and_defaults() {
    let s = Server::start();
    s.tenant("contoso");
    let out = s.ok(&[
        "connector",
        "inbound",
        "add",
        "Relay",
        "--tenant",
        "contoso",
        "--connector-type",
        "on-premises",
        "--sender-ip-addresses",
        "192.0.2.9/24,2001:DB8::/48",
        "--cloud-services-mail-enabled",
        "true",
        "--comment",
        "the Exchange server",
    ]);
    let v = shown(&out);
    assert_eq!(v["name"], "Relay");
    assert_eq!(v["connector-type"], "on-premises");
    assert_eq!(v["sender-ip-addresses"], "192.0.2.0/24,2001:db8::/48");
    assert_eq!(v["enabled"], "true", "Enabled defaults to true");
    assert_eq!(
        v["require-tls"], "true",
        "RequireTls defaults to true (the cmdlet page)"
    );
    assert_eq!(v["restrict-domains-to-ip-addresses"], "false");
    assert_eq!(v["cloud-services-mail-enabled"], "true");
    assert_eq!(v["comment"], "the Exchange server");

    let out = s.ok(&[
        "connector",
        "inbound",
        "add",
        "Fabrikam partner",
        "--tenant",
        "contoso",
        "--connector-type",
        "Partner",
        "--sender-domains",
        "Fabrikam.test,*.fabrikam.test",
        "--sender-ip-addresses",
        "198.51.100.0/24",
        "--restrict-domains-to-ip-addresses",
        "true",
        "--require-tls",
        "false",
    ]);
    let v = shown(&out);
    assert_eq!(v["sender-domains"], "fabrikam.test,*.fabrikam.test");
    assert_eq!(v["require-tls"], "false");

    let list = s.ok(&["connector", "inbound", "list", "--tenant", "contoso"]);
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split("  ").next().unwrap_or_default())
        .collect();
    assert_eq!(names, ["Fabrikam partner", "Relay"], "{list}");

    // set changes only what it names.
    let out = s.ok(&[
        "connector",
        "inbound",
        "set",
        "relay",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    let v = shown(&out);
    assert_eq!(v["enabled"], "false");
    assert_eq!(v["sender-ip-addresses"], "192.0.2.0/24,2001:db8::/48");
    let json: Value = serde_json::from_str(&s.ok(&[
        "connector",
        "inbound",
        "show",
        "Relay",
        "--tenant",
        "contoso",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["enabled"], false);
    assert_eq!(json["tls_sender_certificate_name"], Value::Null);

    // Each refusal names the setting; nothing changes.
    for (args, error) in [
        (
            vec!["add", "X", "--tenant", "contoso"],
            "error: --connector-type is required: on-premises (your organisation's mail server) or partner (another organisation or service)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "hybrid",
            ],
            "error: connector-type: \"hybrid\" is not one of on-premises, partner (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "on-premises",
            ],
            "error: an on-premises connector needs sender-ip-addresses or tls-sender-certificate-name: that is how hato recognises the organisation's server (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "on-premises",
                "--sender-ip-addresses",
                "10.0.0.0/16",
            ],
            "error: sender-ip-addresses: \"10.0.0.0/16\": an IPv4 CIDR block must be /24 to /32 (as in Exchange Online's connection filter); list a larger network as several /24 blocks (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
                "--sender-domains",
                "mail.*.fabrikam.test",
            ],
            "error: sender-domains: \"mail.*.fabrikam.test\" is not a domain (example.com), a wildcard for its subdomains (*.example.com) or * for any domain; a * may only start the value (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
                "--sender-domains",
                "fabrikam.test",
                "--restrict-domains-to-ip-addresses",
                "true",
            ],
            "error: restrict-domains-to-ip-addresses needs sender-ip-addresses: the IPs the domains must come from (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
                "--sender-domains",
                "fabrikam.test",
                "--restrict-domains-to-certificate",
                "true",
            ],
            "error: restrict-domains-to-certificate needs tls-sender-certificate-name: the name the sending server's certificate must carry (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
                "--sender-domains",
                "fabrikam.test",
                "--sender-ip-addresses",
                "198.51.100.1",
                "--tls-sender-certificate-name",
                "*.fabrikam.test",
            ],
            "error: a partner connector identifies its sender either by sender-ip-addresses or by tls-sender-certificate-name, not both (Exchange: do not mix IP addresses and certificates in one partner connector); make two connectors (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
                "--sender-domains",
                "fabrikam.test",
                "--cloud-services-mail-enabled",
                "true",
            ],
            "error: cloud-services-mail-enabled applies to on-premises connectors only (HTTP 400)",
        ),
        (
            vec![
                "add",
                "X",
                "--tenant",
                "contoso",
                "--connector-type",
                "partner",
            ],
            "error: a partner connector needs sender-domains: the sender domains it applies to (* for any domain) (HTTP 400)",
        ),
        (
            vec![
                "add",
                "relay",
                "--tenant",
                "contoso",
                "--connector-type",
                "on-premises",
                "--sender-ip-addresses",
                "192.0.2.1",
            ],
            "error: inbound connector \"relay\" already exists (HTTP 409)",
        ),
        (
            vec![
                "set",
                "Relay",
                "--tenant",
                "contoso",
                "--sender-ip-addresses",
                "",
            ],
            "error: an on-premises connector needs sender-ip-addresses or tls-sender-certificate-name: that is how hato recognises the organisation's server (HTTP 400)",
        ),
        (
            vec!["show", "Nope", "--tenant", "contoso"],
            "error: inbound connector \"Nope\" not found (HTTP 404)",
        ),
    ] {
        let mut all = vec!["connector", "inbound"];
        all.extend(args.iter().copied());
        assert_eq!(refused(&s, &all), error, "{args:?}");
    }
    let list_after = s.ok(&["connector", "inbound", "list", "--tenant", "contoso"]);
    assert_eq!(list_after.lines().count(), 3, "{list_after}");
    let v = shown(&s.ok(&[
        "connector",
        "inbound",
        "show",
        "Relay",
        "--tenant",
        "contoso",
    ]));
    assert_eq!(v["sender-ip-addresses"], "192.0.2.0/24,2001:db8::/48");

    assert_eq!(
        s.ok(&[
            "connector",
            "inbound",
            "remove",
            "Relay",
            "--tenant",
            "contoso"
        ])
        .trim(),
        "removed inbound connector Relay"
    );
    assert_eq!(
        refused(
            &s,
            &[
                "connector",
                "inbound",
                "remove",
                "Relay",
                "--tenant",
                "contoso"
            ]
        ),
        "error: inbound connector \"Relay\" not found (HTTP 404)"
    );
}

#[test]
fn only_the_tenants_global_admins_and_the_operator_see_and_change_its_connectors() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    let path = "/api/v1/tenants/contoso/connectors/inbound";
    let new = json!({ "name": "Relay", "connector_type": "on-premises", "sender_ip_addresses": ["192.0.2.1"] });
    let fabrikam = admin_token(&s, "fabrikam", "global-admin");
    let (status, _) = s.api_as(&fabrikam, "POST", path, Some(new.clone()));
    assert_eq!(status, 404, "another tenant's admin does not see contoso");
    let recipients = admin_token(&s, "contoso", "recipient-admin");
    let (status, v) = s.api_as(&recipients, "GET", path, None);
    assert_eq!(
        (status, v),
        (403, json!({ "error": "this needs the global admin role" }))
    );
    let contoso = admin_token(&s, "contoso", "global-admin");
    let (status, v) = s.api_as(&contoso, "POST", path, Some(new));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["tenant"], "contoso");
    let (status, v) = s.api_as(
        &contoso,
        "PATCH",
        &format!("{path}/relay"),
        Some(json!({ "bogus": 1 })),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = s.api("GET", path, None);
    assert_eq!(status, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");

    // RejectDirectSend: Exchange's default false, changed by the tenant's global admin.
    let config = "/api/v1/tenants/contoso/organization-config";
    let (status, v) = s.api_as(&contoso, "GET", config, None);
    assert_eq!(
        (status, v),
        (
            200,
            json!({ "tenant": "contoso", "reject_direct_send": false })
        )
    );
    let (status, _) = s.api_as(
        &fabrikam,
        "PATCH",
        config,
        Some(json!({ "reject_direct_send": true })),
    );
    assert_eq!(status, 404);
    let (status, v) = s.api_as(
        &contoso,
        "PATCH",
        config,
        Some(json!({ "reject_direct_send": true })),
    );
    assert_eq!(
        (status, v),
        (
            200,
            json!({ "tenant": "contoso", "reject_direct_send": true })
        )
    );
    let out = s.ok(&["organization-config", "show", "--tenant", "contoso"]);
    assert!(out.contains("reject-direct-send: true"), "{out}");
    let out = s.ok(&[
        "organization-config",
        "set",
        "--tenant",
        "contoso",
        "--reject-direct-send",
        "false",
    ]);
    assert!(out.contains("reject-direct-send: false"), "{out}");
}

#[test]
fn an_ip_on_another_tenants_on_premises_connector_is_refused_unless_forced() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    let add = |tenant: &str, name: &str, ip: &str, force: bool| {
        let mut args = vec![
            "connector",
            "inbound",
            "add",
            name,
            "--tenant",
            tenant,
            "--connector-type",
            "on-premises",
            "--sender-ip-addresses",
            ip,
        ];
        if force {
            args.push("--force");
        }
        s.cli(&args)
    };
    assert!(add("contoso", "Relay", "192.0.2.0/24", false).0);
    // The same tenant may overlap itself.
    assert!(add("contoso", "Printer", "192.0.2.7", false).0);
    let (ok, _, err) = add("fabrikam", "Relay", "192.0.2.77", false);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: sender-ip-addresses: 192.0.2.77 is on another organisation's on-premises \
         inbound connector. An IP shared by two organisations' on-premises connectors attributes \
         all its mail to one of them, so mail for the other is pulled through the first and \
         leaves traces there (the shared-IP pitfall); use a dedicated IP, or give --force to \
         register it anyway (HTTP 409)"
    );
    // Tenants do not see each other: the other one is not named.
    assert!(!err.contains("contoso"), "{err}");
    assert!(
        s.ok(&["connector", "inbound", "list", "--tenant", "fabrikam"])
            .contains("(none)")
    );
    assert!(add("fabrikam", "Relay", "192.0.2.77", true).0);
}

#[test]
fn an_on_premises_connectors_ips_are_exempt_from_throttling_while_it_is_enabled() {
    let s = Server::start();
    s.tenant("contoso");
    let exempt = |ip: &str| -> Value {
        let (status, v) = s.api("GET", &format!("/api/v1/throttle/{ip}"), None);
        assert_eq!(status, 200, "{v}");
        v["exemptions"].clone()
    };
    assert_eq!(exempt("192.0.2.99"), json!([]));
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
        "192.0.2.0/24",
    ]);
    // The throttle knows at once.
    assert_eq!(
        exempt("192.0.2.99"),
        json!([{ "tenant": "contoso", "network": "192.0.2.0/24" }])
    );
    let list = s.ok(&["throttle", "exempt", "list", "--tenant", "contoso"]);
    assert!(
        list.contains("192.0.2.0/24") && list.contains("Relay"),
        "{list}"
    );
    // It goes with the connector, not as an entry.
    let err = refused(
        &s,
        &[
            "throttle",
            "exempt",
            "remove",
            "192.0.2.0/24",
            "--tenant",
            "contoso",
        ],
    );
    assert!(
        err.contains("comes from the on-premises inbound connector \"Relay\""),
        "{err}"
    );
    s.ok(&[
        "connector",
        "inbound",
        "set",
        "Relay",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    assert_eq!(exempt("192.0.2.99"), json!([]));
    s.ok(&[
        "connector",
        "inbound",
        "set",
        "Relay",
        "--tenant",
        "contoso",
        "--enabled",
        "true",
    ]);
    assert_eq!(exempt("192.0.2.99").as_array().map(Vec::len), Some(1));
    s.ok(&[
        "connector",
        "inbound",
        "remove",
        "Relay",
        "--tenant",
        "contoso",
    ]);
    assert_eq!(exempt("192.0.2.99"), json!([]));
    assert!(
        s.ok(&["throttle", "exempt", "list", "--tenant", "contoso"])
            .contains("(none)")
    );
}

/// A session from `source` (a loopback address), after the banner and EHLO.
fn session(s: &Server, source: &str) -> Smtp {
    let mut c = Smtp::connect_from(s.smtp, source);
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    c
}

/// The reply to RCPT TO `to` in a new transaction from `from`.
fn rcpt(c: &mut Smtp, from: &str, to: &str) -> String {
    c.cmd("RSET");
    let mail = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(mail.starts_with("250"), "{mail}");
    c.cmd(&format!("RCPT TO:<{to}>"))
}

fn on_premises(s: &Server, tenant: &str, name: &str, ips: &str, extra: &[&str]) {
    let mut args = vec![
        "connector",
        "inbound",
        "add",
        name,
        "--tenant",
        tenant,
        "--connector-type",
        "on-premises",
        "--sender-ip-addresses",
        ips,
    ];
    args.extend_from_slice(extra);
    s.ok(&args);
}

#[test]
fn an_on_premises_connector_lets_its_tenants_domains_relay_and_nobody_else() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("alice@contoso.test", &[]);
    let relay_denied = "550 5.7.64 TenantAttribution; Relay Access Denied\r\n";
    // Before any connector: the tenant's domain cannot relay, and says why.
    let mut c = session(&s, "127.0.0.1");
    assert_eq!(
        rcpt(&mut c, "app@contoso.test", "someone@outside.example"),
        relay_denied
    );
    on_premises(&s, "contoso", "Relay", "127.0.0.1", &[]);

    let mut c = session(&s, "127.0.0.1");
    assert_eq!(
        rcpt(&mut c, "app@contoso.test", "someone@outside.example"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: relayed\r\n\r\nout it goes\r\n");
    let queued = c.cmd(".");
    assert!(queued.starts_with("250 2.6.0"), "{queued}");
    let id = trace_id_of(&queued);
    // Queued for outbound delivery under the attributed tenant, and traced there.
    let contoso = admin_token(&s, "contoso", "global-admin");
    let (status, events) = s.api_as(
        &contoso,
        "GET",
        &format!("/api/v1/trace/{id}?recipient=someone@outside.example"),
        None,
    );
    assert_eq!(status, 200, "{events}");
    assert_eq!(events[0]["event"], "Receive", "{events}");
    let fabrikam = admin_token(&s, "fabrikam", "global-admin");
    let (status, _) = s.api_as(&fabrikam, "GET", &format!("/api/v1/trace/{id}"), None);
    assert_eq!(
        status, 404,
        "another tenant does not see the relayed message"
    );
    s.wait_for(
        "the relayed recipient to wait for outbound delivery",
        || {
            s.events(&id, "someone@outside.example")
                .iter()
                .any(|e| e["event"] == "Defer")
        },
    );

    // Another tenant's domain, a domain no tenant has, the null sender: no relay.
    assert_eq!(
        rcpt(&mut c, "app@fabrikam.test", "someone@outside.example"),
        relay_denied
    );
    assert_eq!(
        rcpt(&mut c, "app@nowhere.example", "someone@outside.example"),
        "550 5.7.1 Unable to relay\r\n"
    );
    assert_eq!(
        rcpt(&mut c, "", "someone@outside.example"),
        "550 5.7.1 Unable to relay\r\n"
    );
    // The tenant's own recipients as always.
    assert!(rcpt(&mut c, "app@contoso.test", "alice@contoso.test").starts_with("250"));

    // From an IP no connector lists.
    let mut other = session(&s, "127.0.0.2");
    assert_eq!(
        rcpt(&mut other, "app@contoso.test", "someone@outside.example"),
        relay_denied
    );
    assert_eq!(
        rcpt(&mut other, "app@nowhere.example", "someone@outside.example"),
        "550 5.7.1 Unable to relay\r\n"
    );
    // A disabled connector attributes nothing.
    s.ok(&[
        "connector",
        "inbound",
        "set",
        "Relay",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    assert_eq!(
        rcpt(&mut c, "app@contoso.test", "someone@outside.example"),
        relay_denied
    );
}

#[test]
fn a_shared_ip_is_attributed_to_the_sender_domains_tenant_else_to_the_connector_made_first() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.tenant("tailspin");
    s.mailbox("bob@tailspin.test", &[]);
    // contoso registers 127.0.0.3 first and keeps hato's headers from it; fabrikam forces the
    // same IP, without.
    on_premises(
        &s,
        "contoso",
        "Relay",
        "127.0.0.0/24",
        &["--cloud-services-mail-enabled", "true"],
    );
    let (ok, _, err) = s.cli(&[
        "connector",
        "inbound",
        "add",
        "Relay",
        "--tenant",
        "fabrikam",
        "--connector-type",
        "on-premises",
        "--sender-ip-addresses",
        "127.0.0.3",
    ]);
    assert!(!ok && err.contains("shared-IP pitfall"), "{err}");
    on_premises(&s, "fabrikam", "Relay", "127.0.0.3", &["--force"]);

    let mut c = session(&s, "127.0.0.3");
    // Each tenant's own domain relays: the sender's domain picks the tenant.
    for (sender, tenant) in [
        ("app@fabrikam.test", "fabrikam"),
        ("app@contoso.test", "contoso"),
    ] {
        assert!(rcpt(&mut c, sender, "someone@outside.example").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(b"Subject: relayed\r\n\r\nhello\r\n");
        let id = trace_id_of(&c.cmd("."));
        let token = admin_token(&s, tenant, "global-admin");
        let (status, v) = s.api_as(&token, "GET", &format!("/api/v1/trace/{id}"), None);
        assert_eq!(status, 200, "{sender}: traced under {tenant}: {v}");
    }
    // A sender domain of neither (tailspin's): the connector made first, contoso's, which keeps
    // hato's own header fields; fabrikam's domain is attributed to fabrikam, which does not.
    let mut probe = |sender: &str, subject: &str| {
        assert!(rcpt(&mut c, sender, "bob@tailspin.test").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(
            format!(
                "Subject: {subject}\r\nX-Hato-Probe: from the on-premises server\r\n\r\nhello\r\n"
            )
            .as_bytes(),
        );
        assert!(c.cmd(".").starts_with("250"));
    };
    probe("app@tailspin.test", "first");
    probe("app@fabrikam.test", "second");
    s.wait_for("both messages delivered", || {
        s.mail("bob@tailspin.test").len() == 2
    });
    let mail = s.mail("bob@tailspin.test");
    let raw = |subject: &str| {
        let m = mail
            .iter()
            .find(|m| m["subject"] == subject)
            .expect(subject);
        s.raw_mail("bob@tailspin.test", m["id"].as_i64().unwrap())
    };
    assert!(raw("first").contains("X-Hato-Probe: from the on-premises server"));
    assert!(!raw("second").contains("X-Hato-Probe"));
    // tailspin's domain does not relay through contoso's connector.
    assert!(rcpt(&mut c, "app@tailspin.test", "someone@outside.example").starts_with("550 5.7.64"));
}

#[test]
fn a_restricted_group_accepts_the_attributed_tenants_sender() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    s.ok(&[
        "group",
        "add",
        "sales@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bob@contoso.test",
    ]);
    on_premises(&s, "contoso", "Relay", "127.0.0.1", &[]);
    // Unattributed, alice's address is only a claim.
    let mut other = session(&s, "127.0.0.2");
    assert!(
        rcpt(&mut other, "alice@contoso.test", "sales@contoso.test").starts_with("550 5.7.133")
    );
    // From the tenant's server the connector vouches for it, at RCPT and at delivery.
    let mut c = session(&s, "127.0.0.1");
    assert_eq!(
        rcpt(&mut c, "alice@contoso.test", "sales@contoso.test"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"From: alice@contoso.test\r\nSubject: to sales\r\n\r\nhello\r\n");
    assert!(c.cmd(".").starts_with("250 2.6.0"));
    s.wait_for("bob's copy", || {
        s.mail("bob@contoso.test")
            .iter()
            .any(|m| m["subject"] == "to sales")
    });
}

/// RCPT's reply over a session that did STARTTLS (Python's smtplib).
const OVER_TLS: &str = r#"
import smtplib, ssl, sys
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", port) as c:
    c.ehlo("client.test")
    c.starttls(context=ctx)
    c.ehlo("client.test")
    c.mail(sender)
    code, text = c.rcpt(rcpt)
    print(code, text.decode())
"#;

#[test]
fn partner_connectors_require_tls_and_restrict_their_domains_to_their_ips() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    // RequireTls by default.
    s.ok(&[
        "connector",
        "inbound",
        "add",
        "Fabrikam",
        "--tenant",
        "contoso",
        "--connector-type",
        "partner",
        "--sender-domains",
        "fabrikam.test",
    ]);
    s.ok(&[
        "connector",
        "inbound",
        "add",
        "Tailspin",
        "--tenant",
        "contoso",
        "--connector-type",
        "partner",
        "--sender-domains",
        "*.tailspin.test",
        "--sender-ip-addresses",
        "127.0.0.4",
        "--restrict-domains-to-ip-addresses",
        "true",
        "--require-tls",
        "false",
    ]);
    let mut plain = session(&s, "127.0.0.1");
    assert_eq!(
        rcpt(&mut plain, "ops@fabrikam.test", "alice@contoso.test"),
        "451 5.7.3 STARTTLS is required to send mail\r\n"
    );
    let tls = python(
        OVER_TLS,
        &[
            &s.smtp.port().to_string(),
            "ops@fabrikam.test",
            "alice@contoso.test",
        ],
    );
    assert_eq!(tls.trim(), "250 2.1.5 Recipient OK");
    // Other domains are not the connector's business.
    assert!(rcpt(&mut plain, "ops@example.test", "alice@contoso.test").starts_with("250"));

    let restricted = "550 5.7.51 TenantInboundAttribution; There is a partner connector configured that matched the message's recipient domain. The connector had either the RestrictDomainsToIPAddresses or RestrictDomainsToCertificate set\r\n";
    let mut elsewhere = session(&s, "127.0.0.5");
    assert_eq!(
        rcpt(
            &mut elsewhere,
            "ops@mail.tailspin.test",
            "alice@contoso.test"
        ),
        restricted
    );
    let mut inside = session(&s, "127.0.0.4");
    assert!(rcpt(&mut inside, "ops@mail.tailspin.test", "alice@contoso.test").starts_with("250"));
    // The refusal is in the connection log (written after the reply, so waited for), naming
    // the connector and its setting.
    s.wait_for("the refusal in the connection log", || {
        let (status, v) = s.api("GET", "/api/v1/connections?ip=127.0.0.5", None);
        assert_eq!(status, 200, "{v}");
        v.to_string()
            .contains("inbound connector Tailspin: RestrictDomainsToIPAddresses")
    });
    // Turned off, it restricts nothing.
    s.ok(&[
        "connector",
        "inbound",
        "set",
        "Tailspin",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    assert!(
        rcpt(
            &mut elsewhere,
            "ops@mail.tailspin.test",
            "alice@contoso.test"
        )
        .starts_with("250")
    );
}

#[test]
fn reject_direct_send_refuses_anonymous_mail_claiming_the_tenants_domains() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut c = session(&s, "127.0.0.1");
    assert!(rcpt(&mut c, "ceo@contoso.test", "alice@contoso.test").starts_with("250"));
    s.ok(&[
        "organization-config",
        "set",
        "--tenant",
        "contoso",
        "--reject-direct-send",
        "true",
    ]);
    assert_eq!(
        rcpt(&mut c, "ceo@contoso.test", "alice@contoso.test"),
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources\r\n"
    );
    // Mail from other domains is not direct send of the tenant's.
    assert!(rcpt(&mut c, "someone@fabrikam.test", "alice@contoso.test").starts_with("250"));
    // The tenant's own server, matched by its connector, is not direct send.
    on_premises(&s, "contoso", "Relay", "127.0.0.1", &[]);
    assert!(rcpt(&mut c, "ceo@contoso.test", "alice@contoso.test").starts_with("250"));
    let mut other = session(&s, "127.0.0.2");
    assert!(rcpt(&mut other, "ceo@contoso.test", "alice@contoso.test").starts_with("550 5.7.68"));
    s.ok(&[
        "organization-config",
        "set",
        "--tenant",
        "contoso",
        "--reject-direct-send",
        "false",
    ]);
    assert!(rcpt(&mut other, "ceo@contoso.test", "alice@contoso.test").starts_with("250"));
}

/// The messages of `address`'s `folder` (`inbox` or `junk`).
fn folder(s: &Server, address: &str, folder: &str) -> Vec<Value> {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/mailboxes/{address}/messages?folder={folder}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn mail_from_the_tenants_own_server_is_not_a_spoof_of_its_domain() {
    // The whole `test.` zone: contoso.test publishes no SPF or DMARC, so mail claiming it from
    // anywhere fails composite authentication, and the spam filter calls it a spoof of the
    // tenant's own domain (`tests/spam.rs`).
    let dns = Dns::start(&["test"]);
    let s = Server::start_with_config(
        "",
        "",
        &format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr()),
    );
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    let body = "Hi Alice,\n\nthe minutes of Tuesday's meeting are on the wiki page; could you look \
                at the second agenda item before Friday?\n\nThanks,\nCarol\n";
    on_premises(&s, "contoso", "Relay", "127.0.0.1", &[]);
    let reply = send_mime(
        &s,
        json!({"from": "ceo@contoso.test", "to": ["alice@contoso.test"], "subject": "from the server", "body": body}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.wait_for("alice's copy in her Inbox", || {
        folder(&s, "alice@contoso.test", "inbox").len() == 1
    });
    let m = &folder(&s, "alice@contoso.test", "inbox")[0];
    let raw = s.raw_mail("alice@contoso.test", m["id"].as_i64().unwrap());
    assert!(!raw.contains("CAT:SPOOF"), "{raw}");
    // The same mail once the connector is off: a spoof, to Junk.
    s.ok(&[
        "connector",
        "inbound",
        "set",
        "Relay",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    send_mime(
        &s,
        json!({"from": "ceo@contoso.test", "to": ["bob@contoso.test"], "subject": "from anywhere", "body": body}),
    );
    s.wait_for("bob's copy in Junk", || {
        folder(&s, "bob@contoso.test", "junk").len() == 1
    });
    let m = &folder(&s, "bob@contoso.test", "junk")[0];
    let raw = s.raw_mail("bob@contoso.test", m["id"].as_i64().unwrap());
    assert!(raw.contains(";CAT:SPOOF;"), "{raw}");
}

//! Outbound connectors end to end (issue 10, items 4 and 5; `exchange-online-behaviour.md`
//! §9.2): the real `hato serve` routing outside recipients through its tenants' outbound
//! connectors to Postfix's `smtp-sink` on loopback as a smart host (or by MX, answered by a DNS
//! server on loopback), internal-relay domains' unknown recipients relayed out, transport rules
//! routing to a connector, and `hato connector outbound validate`'s real test delivery.

mod common;

use common::*;
use serde_json::Value;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// hato with the loopback DNS, MX delivery on `mx_port`, quick retries, no connection cache
/// (the smart hosts' round robin is per connection: the tests count one per message); tenant contoso
/// (contoso.test) with alice's mailbox, and an on-premises inbound connector that lets
/// 127.0.0.1 relay for contoso.test.
fn hato(dns: &Dns, mx_port: u16) -> Server {
    let extra = format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {mx_port}\nretry_first_secs = 1\nretry_max_secs = 1\nconnection_cache_ms = 0\n",
        dns.addr()
    );
    let s = Server::start_with_config("", "", &extra);
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
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
    s
}

/// `hato connector outbound add NAME --tenant contoso ARGS…`.
fn outbound(s: &Server, name: &str, args: &[&str]) {
    let mut all = vec!["connector", "outbound", "add", name, "--tenant", "contoso"];
    all.extend_from_slice(args);
    s.ok(&all);
}

/// Sends a message from `from` to `to`; returns its trace id.
fn send(s: &Server, from: &str, to: &[&str], subject: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let reply = c.send_mail(
        from,
        to,
        &format!(
            "From: {from}\nTo: {}\nSubject: {subject}\nMessage-ID: <{subject}@contoso.test>\n\nhello\n",
            to.join(", ")
        ),
    );
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    c.cmd("QUIT");
    trace_id_of(&reply)
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event<'a>(events: &'a [Value], name: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event"] == name)
}

/// Waits until `recipient` of `id` has an event `name`; returns it.
fn wait_event(s: &Server, id: &str, recipient: &str, name: &str) -> Value {
    let mut found = None;
    wait(&format!("a {name} event for {recipient}"), 30, || {
        found = event(&s.events(id, recipient), name).cloned();
        found.is_some()
    });
    found.unwrap()
}

/// Waits until `recipient` of `id` has left the queue (sent or failed); returns the event.
fn wait_outcome(s: &Server, id: &str, recipient: &str) -> Value {
    let mut found = None;
    wait(&format!("an outcome for {recipient}"), 30, || {
        let events = s.events(id, recipient);
        found = event(&events, "Send")
            .or_else(|| event(&events, "Fail"))
            .cloned();
        found.is_some()
    });
    found.unwrap()
}

/// The connector a `Send` event names (its reason's `connector` figure), if any.
fn connector_of(send: &Value) -> Option<String> {
    send["reason"]["figures"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == "connector")
        .and_then(|f| f["value"].as_str().map(str::to_string))
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn cli_adds_changes_lists_shows_and_removes_with_clear_errors() {
    let dns = Dns::start(&["test"]);
    let s = hato(&dns, 25);
    outbound(
        &s,
        "Partner",
        &[
            "--recipient-domains",
            "Fabrikam.TEST,*.fabrikam.test",
            "--smart-hosts",
            "relay.fabrikam.test:2525,192.0.2.7,[2001:db8::1]:26",
            "--tls-settings",
            "domain-validation",
            "--tls-domain",
            "*.fabrikam.test",
            "--comment",
            "to the partner",
        ],
    );
    let show = s.ok(&[
        "connector",
        "outbound",
        "show",
        "partner",
        "--tenant",
        "contoso",
    ]);
    for line in [
        "name: Partner",
        "connector-type: partner",
        "enabled: true",
        "recipient-domains: fabrikam.test,*.fabrikam.test",
        "use-mx-record: false",
        "smart-hosts: relay.fabrikam.test:2525,192.0.2.7,[2001:db8::1]:26",
        "tls-settings: domain-validation",
        "tls-domain: *.fabrikam.test",
        "is-transport-rule-scoped: false",
        "comment: to the partner",
    ] {
        assert!(show.lines().any(|l| l == line), "{line:?} in\n{show}");
    }
    // Exchange's default: UseMXRecord without smart hosts.
    outbound(&s, "Mx", &["--recipient-domains", "tailspin.test"]);
    let mx: Value = serde_json::from_str(&s.ok(&[
        "connector",
        "outbound",
        "show",
        "Mx",
        "--tenant",
        "contoso",
        "--json",
    ]))
    .unwrap();
    assert_eq!(mx["use_mx_record"], true);
    assert_eq!(mx["tls_settings"], Value::Null);
    // set: only what is given; --use-mx-record clears the smart hosts.
    s.ok(&[
        "connector",
        "outbound",
        "set",
        "Partner",
        "--tenant",
        "contoso",
        "--use-mx-record",
        "--enabled",
        "false",
    ]);
    let v: Value = serde_json::from_str(&s.ok(&[
        "connector",
        "outbound",
        "show",
        "Partner",
        "--tenant",
        "contoso",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["use_mx_record"], true);
    assert_eq!(v["smart_hosts"], serde_json::json!([]));
    assert_eq!(v["enabled"], false);
    assert_eq!(v["tls_domain"], "*.fabrikam.test");
    let list = s.ok(&["connector", "outbound", "list", "--tenant", "contoso"]);
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["Mx", "Partner"], "{list}");
    assert!(list.contains("(MX)"), "{list}");

    // Input errors, each naming the setting.
    for (args, want) in [
        (
            vec![
                "--recipient-domains",
                "a.test",
                "--smart-hosts",
                "bad_host!",
            ],
            "smart-hosts: \"bad_host!\" is neither an IP address nor a host name",
        ),
        (
            vec![
                "--recipient-domains",
                "a.test",
                "--smart-hosts",
                "relay.test:0",
            ],
            "smart-hosts: \"relay.test:0\"",
        ),
        (
            vec![
                "--recipient-domains",
                "a.test",
                "--tls-settings",
                "domain-validation",
            ],
            "domain-validation needs --tls-domain",
        ),
        (
            vec!["--recipient-domains", "a.test", "--all-accepted-domains"],
            "recipient-domains and all-accepted-domains exclude each other",
        ),
        (
            vec!["--all-accepted-domains"],
            "all-accepted-domains applies to on-premises connectors only",
        ),
        (
            vec![],
            "a connector needs recipient-domains or all-accepted-domains",
        ),
        (
            vec!["--recipient-domains", "mail.*.a.test"],
            "recipient-domains: \"mail.*.a.test\"",
        ),
        (
            vec!["--recipient-domains", "a.test", "--tls-settings", "strict"],
            "tls-settings: \"strict\" is not one of",
        ),
        (
            vec!["--recipient-domains", "a.test", "--use-mx-record", "false"],
            "use-mx-record false needs smart-hosts",
        ),
    ] {
        let mut all = vec!["connector", "outbound", "add", "Bad", "--tenant", "contoso"];
        all.extend_from_slice(&args);
        let (ok, _, err) = s.cli(&all);
        assert!(!ok, "{args:?} was accepted");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (ok, _, err) = s.cli(&[
        "connector",
        "outbound",
        "add",
        "mx",
        "--tenant",
        "contoso",
        "--recipient-domains",
        "b.test",
    ]);
    assert!(
        !ok && err.contains("outbound connector"),
        "a taken name: {err}"
    );
    s.ok(&[
        "connector",
        "outbound",
        "remove",
        "Mx",
        "--tenant",
        "contoso",
    ]);
    let (ok, _, err) = s.cli(&["connector", "outbound", "show", "Mx", "--tenant", "contoso"]);
    assert!(!ok && err.contains("Mx"), "{err}");
    // Another tenant sees none of them.
    s.tenant("fabrikam");
    let (status, v) = s.api("GET", "/api/v1/tenants/fabrikam/connectors/outbound", None);
    assert_eq!((status, v), (200, serde_json::json!([])));
}

/// Exact beats all accepted domains beats the most specific wildcard; equal candidates go to
/// the name that sorts first; disabled and rule-scoped connectors are never chosen by domain
/// (their domains go by MX); a transport rule routes to a rule-scoped connector, and a rule
/// naming a disabled one is recorded as not applied. Every connector sends to the same sink:
/// the `Send` event names the connector that chose the hop.
#[test]
fn selection_order_and_transport_rule_routing() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&[]);
    let s = hato(&dns, sink.port);
    let hosts = format!("127.0.0.1:{}", sink.port);
    s.ok(&[
        "domain",
        "add",
        "hybrid.contoso.test",
        "--tenant",
        "contoso",
        "--type",
        "internal-relay",
    ]);
    outbound(
        &s,
        "B-Exact",
        &[
            "--recipient-domains",
            "fabrikam.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    outbound(
        &s,
        "a-exact",
        &[
            "--recipient-domains",
            "fabrikam.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    outbound(
        &s,
        "Hybrid",
        &[
            "--connector-type",
            "on-premises",
            "--all-accepted-domains",
            "--smart-hosts",
            &hosts,
        ],
    );
    outbound(
        &s,
        "Wild",
        &[
            "--recipient-domains",
            "*.contoso.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    outbound(
        &s,
        "Narrow",
        &[
            "--recipient-domains",
            "*.sales.contoso.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    outbound(
        &s,
        "Off",
        &[
            "--recipient-domains",
            "tailspin.test",
            "--smart-hosts",
            &hosts,
            "--enabled",
            "false",
        ],
    );
    outbound(
        &s,
        "Scoped",
        &[
            "--recipient-domains",
            "northwind.test",
            "--smart-hosts",
            &hosts,
            "--is-transport-rule-scoped",
        ],
    );
    // Domains no enabled connector takes go by MX (to the same sink).
    for d in ["tailspin.test", "northwind.test", "wingtip.test"] {
        dns.mx(d, 10, &format!("mx.{d}"));
        dns.a(&format!("mx.{d}"), LOOPBACK);
    }
    s.ok(&[
        "rule",
        "add",
        "To on-premises",
        "--tenant",
        "contoso",
        "--subject-contains-words",
        "routeme",
        "--route-message-outbound-connector",
        "Scoped",
    ]);
    s.ok(&[
        "rule",
        "add",
        "To a disabled one",
        "--tenant",
        "contoso",
        "--subject-contains-words",
        "viaoff",
        "--route-message-outbound-connector",
        "Off",
    ]);

    let cases = [
        ("bob@fabrikam.test", Some("a-exact")),
        ("nobody@hybrid.contoso.test", Some("Hybrid")),
        ("carol@x.contoso.test", Some("Wild")),
        ("dave@a.sales.contoso.test", Some("Narrow")),
        ("erin@tailspin.test", None),
        ("frank@northwind.test", None),
    ];
    let to: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let id = send(&s, "alice@contoso.test", &to, "selection");
    for (rcpt, want) in cases {
        let sent = wait_event(&s, &id, rcpt, "Send");
        assert_eq!(connector_of(&sent).as_deref(), want, "{rcpt}: {sent}");
        if want.is_none() {
            assert_eq!(
                sent["remote_host"],
                format!("mx.{}", rcpt.split('@').nth(1).unwrap())
            );
        }
    }

    // A rule routes wingtip.test's mail through the rule-scoped connector.
    let id = send(&s, "alice@contoso.test", &["gina@wingtip.test"], "routeme");
    let sent = wait_event(&s, &id, "gina@wingtip.test", "Send");
    assert_eq!(connector_of(&sent).as_deref(), Some("Scoped"), "{sent}");
    // A rule naming a disabled connector: not applied, said in its trace event; MX instead.
    let id = send(&s, "alice@contoso.test", &["hank@wingtip.test"], "viaoff");
    let sent = wait_event(&s, &id, "hank@wingtip.test", "Send");
    assert_eq!(connector_of(&sent), None, "{sent}");
    let rule = event(&s.events(&id, "hank@wingtip.test"), "TransportRule")
        .cloned()
        .expect("the rule's event");
    assert!(
        rule.to_string().contains("not applied") && rule.to_string().contains("is disabled"),
        "{rule}"
    );
    // A changed connector is taken at once: "Off" enabled now routes tailspin.test.
    s.ok(&[
        "connector",
        "outbound",
        "set",
        "Off",
        "--tenant",
        "contoso",
        "--enabled",
        "true",
    ]);
    let id = send(&s, "alice@contoso.test", &["ivan@tailspin.test"], "enabled");
    let sent = wait_event(&s, &id, "ivan@tailspin.test", "Send");
    assert_eq!(connector_of(&sent).as_deref(), Some("Off"), "{sent}");
}

/// Smart hosts: round robin from a random start with no priority, a dead host skipped for the
/// next, a host name resolved MX first (its MX host's address, on the smart host's port).
#[test]
fn smart_hosts_round_robin_skip_a_dead_host_and_resolve_names_by_mx() {
    let dns = Dns::start(&["test"]);
    let one = Sink::start(&[]);
    let two = Sink::start(&[]);
    let s = hato(&dns, 25);
    // The name's MX host, on the port the smart host names.
    dns.mx("hosts.partner.test", 10, "mx1.partner.test");
    dns.a("mx1.partner.test", LOOPBACK);
    let hosts = format!(
        "127.0.0.1:{},127.0.0.1:{},hosts.partner.test:{}",
        dead_port(),
        one.port,
        two.port
    );
    outbound(
        &s,
        "Partner",
        &[
            "--recipient-domains",
            "partner.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    // One message at a time, each on a connection of its own.
    let mut hosts_used = Vec::new();
    for i in 0..6 {
        let rcpt = format!("user{i}@partner.test");
        let id = send(&s, "alice@contoso.test", &[&rcpt], &format!("rr{i}"));
        let sent = wait_event(&s, &id, &rcpt, "Send");
        assert_eq!(connector_of(&sent).as_deref(), Some("Partner"));
        hosts_used.push(sent["remote_host"].as_str().unwrap().to_string());
    }
    // Starting at the dead host, the next one took it; three starts in turn: 4 and 2.
    let (at_one, at_two) = (one.messages(), two.messages());
    assert_eq!(at_one + at_two, 6, "{hosts_used:?}");
    assert_eq!((at_one, at_two), (4, 2), "{hosts_used:?}");
    assert_eq!(
        hosts_used
            .iter()
            .filter(|h| *h == "mx1.partner.test")
            .count(),
        2,
        "{hosts_used:?}"
    );
}

/// A smart host that answers 5xx fails the message at once (an NDR to the sender) without the
/// other host being tried: the good host sees exactly the messages that started there.
#[test]
fn a_5xx_smart_host_fails_at_once_without_trying_the_other() {
    let dns = Dns::start(&["test"]);
    let refusing = Sink::start(&["-f", "connect"]);
    let good = Sink::start(&[]);
    let s = hato(&dns, 25);
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", refusing.port, good.port);
    outbound(
        &s,
        "Partner",
        &[
            "--recipient-domains",
            "partner.test",
            "--smart-hosts",
            &hosts,
        ],
    );
    let (mut sent, mut failed) = (0, 0);
    for i in 0..4 {
        let rcpt = format!("user{i}@partner.test");
        let id = send(&s, "alice@contoso.test", &[&rcpt], &format!("m{i}"));
        let outcome = wait_outcome(&s, &id, &rcpt);
        if outcome["event"] == "Fail" {
            failed += 1;
            assert_eq!(outcome["status"].as_u64().unwrap() / 100, 5, "{outcome}");
        } else {
            sent += 1;
        }
        // Nothing was deferred on the way: the 5xx is final.
        assert!(event(&s.events(&id, &rcpt), "Defer").is_none());
    }
    // Round robin alternates the start: two each; the failed ones never reached the good host.
    assert_eq!((sent, failed), (2, 2));
    assert_eq!(good.sessions(), 2);
    s.wait_for("two NDRs", || {
        s.mail("alice@contoso.test")
            .iter()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Undeliverable")
            })
            .count()
            == 2
    });
}

/// An internal-relay domain's recipient no one in the directory answers to goes out through
/// the connector for that domain (a known one is delivered here); without a connector, by MX;
/// an authoritative domain's unknown recipient is still refused at RCPT. A relay domain routed
/// back to hato itself loops until the hop limit fails it with 5.4.14.
#[test]
fn internal_relay_unknown_recipients_leave_through_the_connector() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&[]);
    let s = hato(&dns, sink.port);
    for d in [
        "onprem.contoso.test",
        "bymx.contoso.test",
        "loop.contoso.test",
    ] {
        s.ok(&[
            "domain",
            "add",
            d,
            "--tenant",
            "contoso",
            "--type",
            "internal-relay",
        ]);
    }
    s.mailbox("known@onprem.contoso.test", &[]);
    outbound(
        &s,
        "OnPrem",
        &[
            "--recipient-domains",
            "onprem.contoso.test",
            "--smart-hosts",
            &format!("127.0.0.1:{}", sink.port),
        ],
    );
    dns.mx("bymx.contoso.test", 10, "mail.bymx.contoso.test");
    dns.a("mail.bymx.contoso.test", LOOPBACK);
    let id = send(
        &s,
        "someone@outside.test",
        &[
            "known@onprem.contoso.test",
            "gone@onprem.contoso.test",
            "gone@bymx.contoso.test",
        ],
        "relay",
    );
    let sent = wait_event(&s, &id, "gone@onprem.contoso.test", "Send");
    assert_eq!(connector_of(&sent).as_deref(), Some("OnPrem"), "{sent}");
    let events = s.events(&id, "gone@onprem.contoso.test");
    let relayed = event(&events, "AgentInfo").expect("the relay's event");
    assert!(
        relayed.to_string().contains("internal-relay domain"),
        "{relayed}"
    );
    let sent = wait_event(&s, &id, "gone@bymx.contoso.test", "Send");
    assert_eq!(sent["remote_host"], "mail.bymx.contoso.test");
    assert_eq!(connector_of(&sent), None);
    s.wait_for("the known one's copy", || {
        s.mail("known@onprem.contoso.test").len() == 1
    });
    sink.wait_for_messages(2);

    // Authoritative: refused at RCPT (directory-based edge blocking), never relayed.
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<someone@outside.test>").starts_with("250"));
    let r = c.cmd("RCPT TO:<gone@contoso.test>");
    assert!(r.starts_with("550 5.4.1"), "{r}");
    c.cmd("QUIT");

    // A relay domain whose connector points back at hato: each pass adds a Received field,
    // and at the limit the recipient fails with 5.4.14 instead of going round again.
    outbound(
        &s,
        "Loop",
        &[
            "--recipient-domains",
            "loop.contoso.test",
            "--smart-hosts",
            &s.smtp.to_string(),
        ],
    );
    send(
        &s,
        "someone@outside.test",
        &["round@loop.contoso.test"],
        "loop",
    );
    let mut failed = None;
    wait("the loop to end", 120, || {
        let (_, v) = s.api(
            "GET",
            "/api/v1/trace?recipient=round@loop.contoso.test&status=Failed",
            None,
        );
        failed = v["rows"].as_array().and_then(|r| r.first().cloned());
        failed.is_some()
    });
    let row = failed.unwrap();
    let events = s.events(row["trace_id"].as_str().unwrap(), "round@loop.contoso.test");
    let fail = event(&events, "Fail").expect("Fail");
    assert_eq!(fail["enhanced_status"], "5.4.14", "{fail}");
}

/// `validate` really delivers a test message and prints each command and reply; a refused one
/// prints its transcript too and exits non-zero.
#[test]
fn validate_delivers_a_test_message_and_prints_the_transcript() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&[]);
    let refusing = Sink::start(&["-f", "rcpt"]);
    let s = hato(&dns, 25);
    outbound(
        &s,
        "Good",
        &[
            "--recipient-domains",
            "partner.test",
            "--smart-hosts",
            &format!("127.0.0.1:{}", sink.port),
        ],
    );
    outbound(
        &s,
        "Refused",
        &[
            "--recipient-domains",
            "partner.test",
            "--smart-hosts",
            &format!("127.0.0.1:{}", refusing.port),
            "--enabled",
            "false",
        ],
    );
    let (ok, out, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Good",
        "--tenant",
        "contoso",
        "--recipient",
        "test@partner.test",
    ]);
    assert!(ok, "{out}{err}");
    for want in [
        "C: EHLO mx.hato.test",
        "C: MAIL FROM:<postmaster@mx.hato.test>",
        "C: RCPT TO:<test@partner.test>",
        "C: DATA",
        "S: 250",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want:?} in\n{out}"
        );
    }
    assert!(
        out.lines().last().unwrap().starts_with("OK: 127.0.0.1"),
        "{out}"
    );
    sink.wait_for_messages(1);

    let (ok, out, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Refused",
        "--tenant",
        "contoso",
        "--recipient",
        "test@partner.test",
    ]);
    assert!(!ok, "{out}");
    assert!(out.lines().any(|l| l.starts_with("S: 5")), "{out}");
    assert!(
        err.contains("FAILED") && err.contains("refused the test message"),
        "{err}"
    );
    // A connector nothing answers for: fails with the connection's error.
    s.ok(&[
        "connector",
        "outbound",
        "set",
        "Refused",
        "--tenant",
        "contoso",
        "--smart-hosts",
        &format!("127.0.0.1:{}", dead_port()),
    ]);
    let (ok, _, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Refused",
        "--tenant",
        "contoso",
        "--recipient",
        "test@partner.test",
    ]);
    assert!(!ok && err.contains("FAILED"), "{err}");
    let (ok, _, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Good",
        "--tenant",
        "contoso",
        "--recipient",
        "not an address",
    ]);
    assert!(!ok && err.contains("recipient"), "{err}");
    // TLS required (encryption-only) by a host that offers no STARTTLS: not sent.
    s.ok(&[
        "connector",
        "outbound",
        "set",
        "Good",
        "--tenant",
        "contoso",
        "--tls-settings",
        "encryption-only",
    ]);
    let (ok, out, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Good",
        "--tenant",
        "contoso",
        "--recipient",
        "test@partner.test",
    ]);
    assert!(
        !ok && err.contains("FAILED") && err.contains("TLS"),
        "{out}{err}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("C: MAIL")),
        "nothing sent in clear: {out}"
    );
    // Only global admins (and the operator): a recipient admin may not send through it.
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/tokens",
        Some(serde_json::json!({ "role": "recipient-admin" })),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api_as(
        v["token"].as_str().unwrap(),
        "POST",
        "/api/v1/tenants/contoso/connectors/outbound/Good/validate",
        Some(serde_json::json!({ "recipient": "test@partner.test" })),
    );
    assert_eq!(status, 403, "{v}");
    sink.wait_for_messages(1);
    assert_eq!(sink.messages(), 1, "only the first validation delivered");
}

/// TLS settings against another hato, whose STARTTLS certificate is self-signed: encryption-only
/// delivers over TLS; certificate-validation refuses the certificate, and the recipient is
/// deferred with Exchange's `450 4.7.320` (reference §9.4), as `validate` reports too.
#[test]
fn tls_settings_against_a_self_signed_certificate() {
    let dns = Dns::start(&["test"]);
    let b = Server::start_with_config(
        "",
        "",
        &format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr()),
    );
    b.tenant("fabrikam");
    b.mailbox("bob@fabrikam.test", &[]);
    let s = hato(&dns, 25);
    let host = format!("127.0.0.1:{}", b.smtp.port());
    outbound(
        &s,
        "Encrypted",
        &[
            "--recipient-domains",
            "fabrikam.test",
            "--smart-hosts",
            &host,
            "--tls-settings",
            "encryption-only",
        ],
    );
    let id = send(
        &s,
        "alice@contoso.test",
        &["bob@fabrikam.test"],
        "encrypted",
    );
    let sent = wait_event(&s, &id, "bob@fabrikam.test", "Send");
    assert!(sent.to_string().contains("tls_version"), "over TLS: {sent}");
    b.wait_for("bob's copy", || b.mail("bob@fabrikam.test").len() == 1);

    s.ok(&[
        "connector",
        "outbound",
        "set",
        "Encrypted",
        "--tenant",
        "contoso",
        "--tls-settings",
        "certificate-validation",
    ]);
    let (ok, out, err) = s.cli(&[
        "connector",
        "outbound",
        "validate",
        "Encrypted",
        "--tenant",
        "contoso",
        "--recipient",
        "bob@fabrikam.test",
    ]);
    assert!(!ok && err.contains("FAILED"), "{out}{err}");
    assert!(out.contains("C: STARTTLS"), "{out}");
    let id = send(
        &s,
        "alice@contoso.test",
        &["bob@fabrikam.test"],
        "validated",
    );
    let defer = wait_event(&s, &id, "bob@fabrikam.test", "Defer");
    assert_eq!(defer["enhanced_status"], "4.7.320", "{defer}");
    assert_eq!(
        connector_of(&defer).as_deref(),
        Some("Encrypted"),
        "{defer}"
    );
    assert_eq!(b.mail("bob@fabrikam.test").len(), 1, "not sent in clear");
}

// ---------------------------------------------------------------------------------------------
// Postfix's smtp-sink (as `tests/mx_delivery.rs` starts it)

struct Sink {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// The TCP port a process listens on, from its sockets in /proc.
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let link = std::fs::read_link(fd.ok()?.path()).ok()?;
        if let Some(inode) = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
        {
            inodes.push(inode.to_string());
        }
    }
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = f[1].split(':').nth(1)?;
            u16::from_str_radix(port, 16).ok()
        } else {
            None
        }
    })
}

impl Sink {
    fn start(extra: &[&str]) -> Sink {
        let bin = ["/usr/sbin", "/usr/bin", "/sbin"]
            .iter()
            .map(|d| std::path::Path::new(d).join("smtp-sink"))
            .find(|p| p.exists())
            .expect("smtp-sink not found: install Postfix (scripts/test.sh does)");
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let out = std::fs::File::create(dir.path().join("counters")).unwrap();
        let mut cmd = std::process::Command::new(bin);
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg("-c")
            .args(extra)
            .args(["127.0.0.1:0", "16"])
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(std::process::Stdio::inherit());
        let mut child = cmd.spawn().expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = listening_port(child.id()) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("smtp-sink exited: {status}");
            }
            assert!(Instant::now() < deadline, "smtp-sink never listened");
            std::thread::sleep(Duration::from_millis(20));
        };
        Sink { child, port, dir }
    }

    /// The last `sess=N quit=N mesg=N` line's figure `name` (0 before any).
    fn counter(&self, name: &str) -> usize {
        let text = std::fs::read_to_string(self.dir.path().join("counters")).unwrap_or_default();
        text.split(['\r', '\n'])
            .rfind(|l| l.contains("sess="))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    fn messages(&self) -> usize {
        self.counter("mesg")
    }

    fn sessions(&self) -> usize {
        self.counter("sess")
    }

    fn wait_for_messages(&self, n: usize) {
        wait(&format!("{n} messages at the sink"), 30, || {
            self.messages() >= n
        });
    }
}

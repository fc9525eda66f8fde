//! The checks at connect against a real `hato serve`: the provider's block list, DNS block lists
//! served by a real DNS server on loopback (or one that never answers), throttling by volume
//! and reputation, each with its exact reply, its connection log row and, for clients let in,
//! its note in the trace. Every client connects from a loopback address of its own
//! (127.0.0.7, 127.0.0.8, …), so each case has its own client IP.

mod common;
use common::*;

use hato_dns::testing::SilentDnsServer;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const BANNER: &str = "220 mx.hato.test ESMTP hato ready\r\n";

/// hato with two tenants (contoso: alice, carol, dave, erin, frank; fabrikam: bob) and
/// `sections` (whole TOML sections) in its settings.
fn server(sections: &str) -> Server {
    let s = Server::start_with_config("", "", sections);
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in [
        "alice@contoso.test",
        "carol@contoso.test",
        "dave@contoso.test",
        "erin@contoso.test",
        "frank@contoso.test",
        "bob@fabrikam.test",
    ] {
        s.mailbox(m, &[]);
    }
    s
}

/// A DNS block list zone `dnsbl.test` on `dns`, as hato's settings say it.
fn dnsbl_settings(dns: std::net::SocketAddr, timeout_ms: u64) -> String {
    format!(
        "[dns]\nservers = [\"{dns}\"]\ntimeout_ms = {timeout_ms}\n\n\
         [[dnsbl]]\nzone = \"dnsbl.test\"\nremoval_url = \"https://dnsbl.test/remove\"\n\
         codes = {{ \"127.0.0.2\" = \"spam source\", \"127.0.0.4\" = \"exploited host\" }}\n"
    )
}

/// The connection log as the operator sees it, once it has `want` rows for `ip`.
fn log_rows(s: &Server, ip: &str, want: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    s.wait_for(&format!("{want} connection log row(s) of {ip}"), || {
        let (status, v) = s.api("GET", &format!("/api/v1/connections?ip={ip}"), None);
        assert_eq!(status, 200, "{v}");
        rows = v["rows"].as_array().cloned().unwrap_or_default();
        rows.len() >= want
    });
    rows
}

/// The value of figure `name` of a reason.
fn figure<'a>(reason: &'a Value, name: &str) -> &'a Value {
    reason["figures"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["name"] == name))
        .map(|x| &x["value"])
        .unwrap_or(&Value::Null)
}

/// The trace events of `rcpt` for the message the reply `queued` acknowledged, once it has been
/// delivered.
fn delivered_events(s: &Server, queued: &str, rcpt: &str) -> Vec<Value> {
    assert!(queued.starts_with("250 2.6.0 "), "{queued}");
    let id = trace_id_of(queued);
    let mut events = Vec::new();
    s.wait_for(&format!("delivery to {rcpt}"), || {
        let (status, v) = s.api("GET", &format!("/api/v1/trace/{id}?recipient={rcpt}"), None);
        assert_eq!(status, 200, "{v}");
        events = v.as_array().cloned().unwrap_or_default();
        events.iter().any(|e| e["event"] == "Deliver")
    });
    events
}

/// What the checks at connect of `stage` noted about the client, in the `Receive` event of
/// `events` (a figure named after the stage), if anything.
fn noted<'a>(events: &'a [Value], stage: &str) -> Option<&'a str> {
    let receive = events.iter().find(|e| e["event"] == "Receive")?;
    figure(&receive["reason"], stage).as_str()
}

/// A session from `source` that got the banner and said EHLO.
fn session(s: &Server, source: &str) -> Smtp {
    let mut c = Smtp::connect_from(s.smtp, source);
    assert_eq!(c.read_reply(), BANNER, "the banner for {source}");
    assert!(c.cmd("EHLO client.test").starts_with("250-"));
    c
}

/// One message from `source` to `to`; the final reply.
fn send(s: &Server, source: &str, to: &[&str]) -> String {
    let mut c = session(s, source);
    let reply = c.send_mail(
        "sender@outside.test",
        to,
        "From: sender@outside.test\nSubject: edge\n\nhello\n",
    );
    c.cmd("QUIT");
    reply
}

/// The first reply of a connection from `source`, and whether the server then closed it.
fn first_reply(s: &Server, source: &str) -> (String, bool) {
    let mut c = Smtp::connect_from(s.smtp, source);
    let reply = c.read_reply();
    if reply == BANNER {
        c.cmd("QUIT");
        return (reply, true);
    }
    let closed = c.closed();
    (reply, closed)
}

#[test]
fn a_tenants_allow_list_beats_the_provider_block_list_but_never_a_dns_block_list() {
    let dns = Dns::start(&["dnsbl.test"]);
    // 127.0.0.8 is listed (a code the settings name); 127.0.0.9's query was refused by the
    // list (127.255.255.254, Spamhaus's "public resolver" answer): not a listing.
    dns.a("8.0.0.127.dnsbl.test", Ipv4Addr::new(127, 0, 0, 2));
    dns.a("9.0.0.127.dnsbl.test", Ipv4Addr::new(127, 255, 255, 254));
    let s = server(&dnsbl_settings(dns.addr(), 3000));
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-allow-list-add",
        "127.0.0.7",
        "--ip-allow-list-add",
        "127.0.0.8",
    ]);
    s.ok(&["blocklist", "add", "127.0.0.7", "--reason", "spam run"]);
    let delist = format!("http://{}/delist", s.admin);
    let banned = format!(
        "550 5.7.606 Access denied, banned sending IP [127.0.0.7]. To request removal from this list please visit {delist} and follow the directions.\r\n"
    );

    // On the provider's list: let in at connect, the refusal is given at RCPT to the
    // recipients of tenants that do not allow-list the client ...
    let mut c = session(&s, "127.0.0.7");
    assert!(c.cmd("MAIL FROM:<x@outside.test>").starts_with("250"));
    assert_eq!(c.cmd("RCPT TO:<bob@fabrikam.test>"), banned);
    assert_eq!(c.cmd("RCPT TO:<bob@fabrikam.test>"), banned);
    // ... and contoso, which allow-lists it, gets its mail.
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: allowed\r\n\r\nhello\r\n");
    let queued = c.cmd(".");
    c.cmd("QUIT");
    let events = delivered_events(&s, &queued, "alice@contoso.test");
    let receive = &events[0];
    assert_eq!(receive["event"], "Receive");
    assert_eq!(figure(&receive["reason"], "ipv"), "CAL", "{receive}");
    assert!(s.trace("recipient=bob@fabrikam.test").is_empty());

    // Listed by the DNS block list: refused instead of the banner, allow list or not.
    let (reply, closed) = first_reply(&s, "127.0.0.8");
    assert_eq!(
        reply,
        "550 5.7.1 Service unavailable; Client host [127.0.0.8] blocked using dnsbl.test; To request removal from this list see https://dnsbl.test/remove\r\n"
    );
    assert!(closed, "the connection is closed after the refusal");

    // A refused query is not a listing: in, with a note in the trace.
    let queued = send(&s, "127.0.0.9", &["alice@contoso.test"]);
    let events = delivered_events(&s, &queued, "alice@contoso.test");
    assert!(
        noted(&events, "dns_block_list")
            .is_some_and(|t| t.contains("could not be checked against dnsbl.test")
                && t.contains("127.255.255.254")),
        "{events:?}"
    );
    // One event per step: the notes are in the Receive event, not rows of their own.
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| *k != "Spam")
        .collect();
    assert_eq!(kinds, ["Receive", "Deliver"]);

    // The connection log: one row per refusal, the platform's (no tenant), with the reasons.
    let rows = log_rows(&s, "127.0.0.7", 1);
    assert_eq!(rows.len(), 1, "one row for the session: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["stage"], "provider_block_list");
    assert_eq!(row["tenant"], Value::Null);
    assert_eq!(row["reply"], banned.trim_end());
    assert_eq!(row["rule"], "127.0.0.7");
    assert_eq!(figure(&row["reason"], "reason"), "spam run");
    assert_eq!(row["helo"], "client.test");

    let rows = log_rows(&s, "127.0.0.8", 1);
    let row = &rows[0];
    assert_eq!(row["stage"], "dns_block_list");
    assert_eq!(row["rule"], "dnsbl.test");
    assert_eq!(
        (row["status"].as_u64(), row["enhanced_status"].as_str()),
        (Some(550), Some("5.7.1"))
    );
    assert_eq!(figure(&row["reason"], "codes"), "127.0.0.2 spam source");
    assert_eq!(figure(&row["reason"], "query"), "8.0.0.127.dnsbl.test");
    // Refused before EHLO: no name yet.
    assert_eq!(row["helo"], "");

    // The CLI shows the same rows.
    let out = s.ok(&["connections", "--ip", "127.0.0.8"]);
    assert!(out.contains("dns_block_list"), "{out}");
    assert!(out.contains("dnsbl.test"), "{out}");
}

#[test]
fn a_dns_block_list_that_does_not_answer_fails_open_and_says_so() {
    let silent = SilentDnsServer::start().expect("silent dns server");
    let s = server(&dnsbl_settings(silent.addr(), 400));
    let started = Instant::now();
    let queued = send(&s, "127.0.0.10", &["alice@contoso.test"]);
    // Bounded by the timeout, not by the client's patience.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let events = delivered_events(&s, &queued, "alice@contoso.test");
    let text = noted(&events, "dns_block_list").unwrap_or_default();
    assert!(
        text.starts_with("127.0.0.10 could not be checked against dnsbl.test, so it is let in unchecked (DNS block lists fail open)"),
        "{text}"
    );
    assert!(
        text.contains("timed out") || text.contains("timeout"),
        "{text}"
    );
    // Not a refusal: nothing in the connection log.
    let (status, v) = s.api("GET", "/api/v1/connections?ip=127.0.0.10", None);
    assert_eq!(status, 200);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(0), "{v}");
}

const LOW_LIMITS: &str = "[throttle]\nexempt_loopback = false\nprobation_recipients_per_hour = 4\nprobation_connections_per_minute = 1000\nunknown_recipient_min = 4\n";

#[test]
fn a_bursting_new_ip_is_throttled_until_released_and_other_ips_are_not() {
    let s = server(LOW_LIMITS);
    let five = [
        "alice@contoso.test",
        "carol@contoso.test",
        "dave@contoso.test",
        "erin@contoso.test",
        "frank@contoso.test",
    ];
    // A new IP on probation sends to five recipients within the hour: more than 4.
    let queued = send(&s, "127.0.0.11", &five);
    let events = delivered_events(&s, &queued, "alice@contoso.test");
    assert!(
        noted(&events, "throttling").is_some_and(|t| t.contains("on probation")),
        "{events:?}"
    );
    let busy = "451 4.7.500 Server busy. Please try again later from [127.0.0.11]. (AS1)\r\n";
    let (reply, closed) = first_reply(&s, "127.0.0.11");
    assert_eq!(reply, busy);
    assert!(closed);
    // Still throttled on the next try; another IP is not.
    assert_eq!(first_reply(&s, "127.0.0.11").0, busy);
    assert_eq!(first_reply(&s, "127.0.0.12").0, BANNER);

    // Its figures, the rule, since and until when.
    let status = s.ok(&["throttle", "status", "127.0.0.11", "--json"]);
    let v: Value = serde_json::from_str(&status).expect("json");
    assert_eq!(v["throttled"], true, "{v}");
    assert_eq!(v["throttle"]["rule"], "AS1", "{v}");
    assert_eq!(v["exempt_loopback"], false, "{v}");
    assert_eq!(v["throttle"]["limit"], 4, "{v}");
    assert!(v["throttle"]["until"].is_string(), "{v}");

    // In the connection log: the platform's deferral, once per session.
    let rows = log_rows(&s, "127.0.0.11", 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["stage"], "throttling");
        assert_eq!(row["rule"], "AS1");
        assert_eq!(row["reply"], busy.trim_end());
        assert_eq!(row["tenant"], Value::Null);
        assert_eq!(figure(&row["reason"], "limit"), 4);
    }

    // The operator ends it: in again at once.
    s.ok(&["throttle", "release", "127.0.0.11"]);
    assert_eq!(first_reply(&s, "127.0.0.11").0, BANNER);
}

#[test]
fn an_ip_a_tenant_exempts_is_not_throttled() {
    let s = server(LOW_LIMITS);
    s.ok(&[
        "throttle",
        "exempt",
        "add",
        "127.0.0.13",
        "--tenant",
        "contoso",
    ]);
    let five = [
        "alice@contoso.test",
        "carol@contoso.test",
        "dave@contoso.test",
        "erin@contoso.test",
        "frank@contoso.test",
    ];
    for _ in 0..3 {
        let queued = send(&s, "127.0.0.13", &five);
        assert!(queued.starts_with("250 2.6.0 "), "{queued}");
    }
    let queued = send(&s, "127.0.0.13", &["alice@contoso.test"]);
    let events = delivered_events(&s, &queued, "alice@contoso.test");
    assert_eq!(
        noted(&events, "throttling"),
        Some("exempt from throttling: on the exemption list of tenant contoso (127.0.0.13)"),
        "{events:?}"
    );
    // The same burst from an IP nobody exempts is throttled.
    send(&s, "127.0.0.14", &five);
    assert_eq!(
        first_reply(&s, "127.0.0.14").0,
        "451 4.7.500 Server busy. Please try again later from [127.0.0.14]. (AS1)\r\n"
    );
}

#[test]
fn connections_and_unknown_recipients_count_against_an_ip() {
    let s = server(
        "[throttle]\nexempt_loopback = false\nprobation_connections_per_minute = 3\nunknown_recipient_min = 4\nunknown_recipient_share_percent = 50\n",
    );
    // Connections: more than 3 in a minute from a new IP.
    let mut replies = Vec::new();
    for _ in 0..8 {
        let (reply, _) = first_reply(&s, "127.0.0.15");
        let busy = !reply.starts_with("220");
        replies.push(reply);
        if busy {
            break;
        }
    }
    assert!(replies[..3].iter().all(|r| r == BANNER), "{replies:?}");
    assert_eq!(
        replies.last().map(String::as_str),
        Some("451 4.7.500 Server busy. Please try again later from [127.0.0.15]. (AS6)\r\n"),
        "{replies:?}"
    );

    // RCPTs to recipients contoso does not have (directory-based edge blocking).
    let mut c = session(&s, "127.0.0.16");
    assert!(c.cmd("MAIL FROM:<x@outside.test>").starts_with("250"));
    for n in 0..4 {
        assert_eq!(
            c.cmd(&format!("RCPT TO:<nobody{n}@contoso.test>")),
            "550 5.4.1 Recipient address rejected: Access denied\r\n"
        );
    }
    c.cmd("QUIT");
    assert_eq!(
        first_reply(&s, "127.0.0.16").0,
        "451 4.7.500 Server busy. Please try again later from [127.0.0.16]. (AS5)\r\n"
    );
}

#[test]
fn loopback_clients_are_exempt_from_throttling_by_default_and_the_status_says_so() {
    let s = server("[throttle]\nprobation_recipients_per_hour = 4\n");
    let five = [
        "alice@contoso.test",
        "carol@contoso.test",
        "dave@contoso.test",
        "erin@contoso.test",
        "frank@contoso.test",
    ];
    for _ in 0..3 {
        let queued = send(&s, "127.0.0.17", &five);
        assert!(queued.starts_with("250 2.6.0 "), "{queued}");
    }
    let status = s.ok(&["throttle", "status", "127.0.0.17"]);
    assert!(
        status.contains(
            "exempt:             this host (a loopback client; throttle.exempt_loopback)"
        ),
        "{status}"
    );
    assert!(status.contains("throttled:          no"), "{status}");
}

#[test]
fn a_client_over_the_connection_limit_is_in_the_connection_log_once_a_minute() {
    let s = Server::start_with_config("max_connections_per_ip = 2", "", "");
    let held: Vec<Smtp> = (0..2)
        .map(|_| {
            let mut c = Smtp::connect_from(s.smtp, "127.0.0.18");
            assert_eq!(c.read_reply(), BANNER);
            c
        })
        .collect();
    let over = "421 4.7.0 Too many connections from your IP address; try again later\r\n";
    for _ in 0..3 {
        let (reply, closed) = first_reply(&s, "127.0.0.18");
        assert_eq!(reply, over);
        assert!(closed);
    }
    // A later refusal of another client: once its row is in, every earlier one is (the log is
    // written in order).
    let mut c = Smtp::connect_from(s.smtp, "127.0.0.19");
    assert_eq!(c.read_reply(), BANNER);
    assert_eq!(
        c.cmd("EHLO mx.hato.test"),
        "550 5.7.506 Access Denied, Bad HELO\r\n"
    );
    log_rows(&s, "127.0.0.19", 1);
    let rows = log_rows(&s, "127.0.0.18", 1);
    assert_eq!(rows.len(), 1, "three refusals, one row: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["stage"], "session");
    assert_eq!(row["rule"], "smtp.max_connections_per_ip");
    assert_eq!(row["reply"], over.trim_end());
    assert_eq!(row["tenant"], Value::Null);
    drop(held);
}

#[test]
fn hato_explain_shows_each_recipients_decisions_with_their_reasons() {
    let s = server("");
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-allow-list-add",
        "127.0.0.21",
    ]);
    let queued = send(
        &s,
        "127.0.0.21",
        &["alice@contoso.test", "bob@fabrikam.test"],
    );
    delivered_events(&s, &queued, "bob@fabrikam.test");
    delivered_events(&s, &queued, "alice@contoso.test");
    let id = trace_id_of(&queued);
    let out = s.ok(&["explain", &id]);
    assert!(out.starts_with(&format!("message {id}\n")), "{out}");
    // One block per recipient, each with its standing: allow-listed by contoso, not by fabrikam.
    let alice = out
        .split("\nalice@contoso.test: Deliver\n")
        .nth(1)
        .and_then(|rest| rest.split("\nbob@").next())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        alice.contains("Receive       connection_filter [IPAllowList]\n"),
        "{alice}"
    );
    assert!(alice.contains("      ipv = CAL\n"), "{alice}");
    assert!(alice.contains("      cip = 127.0.0.21\n"), "{alice}");
    assert!(alice.contains("Deliver       -\n"), "{alice}");
    let bob = out
        .split("\nbob@fabrikam.test: Deliver\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    assert!(bob.contains("      ipv = NLI\n"), "{bob}");
    // As JSON, for scripts; --recipient narrows it.
    let v: Value = serde_json::from_str(&s.ok(&[
        "explain",
        &id,
        "--recipient",
        "bob@fabrikam.test",
        "--json",
    ]))
    .expect("json");
    let recipients = v["recipients"].as_array().expect("recipients");
    assert_eq!(recipients.len(), 1, "{v}");
    assert_eq!(recipients[0]["recipient"], "bob@fabrikam.test");
    assert_eq!(recipients[0]["decisions"][0]["stage"], "connection_filter");
    // A trace id nobody has: a clear error.
    let (ok, _, err) = s.cli(&["explain", "00000000-0000-7000-8000-000000000000"]);
    assert!(!ok);
    assert!(!err.trim().is_empty());
}

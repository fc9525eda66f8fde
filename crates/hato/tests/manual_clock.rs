//! The test clock (`[testing] manual_clock = true`) end to end, and what it is for: retries,
//! the delay notice and expiry of an outside recipient with the real default settings (first
//! retry after 5 minutes, a delay notice after 4 hours, expiry after 24 hours), without waiting
//! real hours. The receiver is Postfix's smtp-sink answering every RCPT with a 4xx.

mod common;

use common::sink::Sink;
use common::*;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// hato on the test clock, MX delivery to `port` (the defaults otherwise), tenant contoso with
/// alice, and an on-premises connector that lets 127.0.0.1 relay for contoso.test.
/// No connection cache: each attempt has a session of its own, so the sink's count of sessions
/// is the count of attempts.
fn sender(dns: &Dns, port: u16, manual: bool) -> Server {
    let testing = if manual {
        "[testing]\nmanual_clock = true\n"
    } else {
        ""
    };
    let extra = format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {port}\nconnection_cache_ms = 0\n\n{testing}",
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

fn relay(s: &Server, to: &str, subject: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let reply = c.send_mail(
        "alice@contoso.test",
        &[to],
        &format!("From: alice@contoso.test\nTo: {to}\nSubject: {subject}\n\nhello\n"),
    );
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    c.cmd("QUIT");
    trace_id_of(&reply)
}

fn events_named(s: &Server, id: &str, rcpt: &str, name: &str) -> Vec<Value> {
    s.events(id, rcpt)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

fn reports(s: &Server, part: &str) -> Vec<Value> {
    s.mail("alice@contoso.test")
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains(part))
        .collect()
}

/// The clock API: the operator reads and moves the clock (forward only, and within a year);
/// others get 403; a server without the setting answers 404 and runs on the system clock.
#[test]
fn the_test_clock_is_the_operators_and_only_with_the_setting() {
    let dns = Dns::start(&["test"]);
    let s = sender(&dns, 9, true);
    let before = hato_core::Timestamp::parse_human(&s.clock_now()).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        hato_core::Timestamp::parse_human(&s.clock_now()).unwrap(),
        before,
        "the clock stands still until moved"
    );
    let after = hato_core::Timestamp::parse_human(&s.advance_clock(3600)).unwrap();
    assert_eq!(after.0 - before.0, 3_600_000_000);
    for bad in [
        json!({"advance_seconds": 0}),
        json!({"advance_seconds": -5}),
        json!({"seconds": 5}),
    ] {
        let (status, v) = s.api("POST", "/api/v1/testing/clock", Some(bad.clone()));
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let token = s
        .ok(&["token", "create", "--tenant", "contoso"])
        .trim()
        .to_string();
    let (status, v) = s.api_as(
        &token,
        "POST",
        "/api/v1/testing/clock",
        Some(json!({"advance_seconds": 60})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, _) = s.api_as("nonsense", "GET", "/api/v1/testing/clock", None);
    assert_eq!(status, 401);

    let plain = sender(&dns, 9, false);
    let (status, v) = plain.api(
        "POST",
        "/api/v1/testing/clock",
        Some(json!({"advance_seconds": 60})),
    );
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].to_string().contains("manual_clock"), "{v}");
}

/// A 4xx receiver, the real defaults: no retry before 5 minutes, one just after; a delay notice
/// to the sender once 4 hours have passed; at 24 hours the recipient fails with `4.4.7` and the
/// sender gets the NDR.
#[test]
fn retries_delay_notice_and_expiry_follow_the_default_settings_on_the_test_clock() {
    let dns = Dns::start(&["test"]);
    let sink = Sink::start(&["-r", "rcpt"]);
    dns.mx("sink.test", 10, "mx.sink.test");
    dns.a("mx.sink.test", Ipv4Addr::LOCALHOST);
    let s = sender(&dns, sink.port, true);

    let id = relay(&s, "user@sink.test", "slow");
    wait("the first attempt", 30, || {
        !events_named(&s, &id, "user@sink.test", "Defer").is_empty()
    });
    wait("the sink to count the session", 10, || sink.sessions() == 1);
    let defer = &events_named(&s, &id, "user@sink.test", "Defer")[0];
    assert_eq!(defer["status"], 450, "{defer}");

    // 4 minutes 50 seconds later: not yet.
    s.advance_clock(290);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.sessions(), 1, "no retry before the 5-minute back-off");
    // Past 5 minutes: the retry.
    s.advance_clock(15);
    wait("the retry after 5 minutes", 20, || sink.sessions() == 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.sessions(), 2, "one retry, not more");
    assert!(
        reports(&s, "Delivery delayed").is_empty(),
        "no delay notice yet"
    );

    // 4 hours after arrival: the delay notice (one), the recipient still queued.
    s.advance_clock(4 * 3600 - 305 + 5);
    wait("the delay notice", 20, || {
        !reports(&s, "Delivery delayed").is_empty()
    });
    assert!(events_named(&s, &id, "user@sink.test", "Fail").is_empty());
    let sessions = sink.sessions();
    assert!(sessions >= 3, "retried meanwhile: {sessions}");

    // 24 hours after arrival: 4.4.7 and the NDR.
    s.advance_clock(20 * 3600);
    wait("the expiry", 30, || {
        !events_named(&s, &id, "user@sink.test", "Fail").is_empty()
    });
    let fail = &events_named(&s, &id, "user@sink.test", "Fail")[0];
    assert_eq!(
        (&fail["status"], &fail["enhanced_status"]),
        (&Value::from(550), &Value::from("4.4.7")),
        "{fail}"
    );
    assert!(
        fail["detail"].to_string().contains("message expired"),
        "{fail}"
    );
    wait("the NDR", 20, || !reports(&s, "Undeliverable").is_empty());
    let ndr = &reports(&s, "Undeliverable")[0];
    let raw = s.raw_mail("alice@contoso.test", ndr["id"].as_i64().unwrap());
    assert!(raw.contains("4.4.7"), "{raw}");
    assert_eq!(reports(&s, "Delivery delayed").len(), 1, "one delay notice");
}

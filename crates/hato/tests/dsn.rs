//! Delivery status notifications end to end (RFC 3461, RFC 3464; issue 10 items 1 and 6): the
//! real `hato serve` takes RET/ENVID/NOTIFY/ORCPT, refuses bad ones with 501, honours NOTIFY for
//! NDRs, sends one delay notice for a recipient still deferred after `[outbound]
//! delay_notice_secs`, sends success notices (`delivered` for its own mailboxes, `relayed` when
//! the next hop does not offer DSN), and passes the parameters on to a next hop that does.
//!
//! Outside recipients are reached by MX (a DNS server on loopback) at scripted servers on
//! loopback; mail comes from alice of contoso.test, relayed through an on-premises connector
//! from 127.0.0.1, so her notices land in her mailbox.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A scripted SMTP server: `bounce…` recipients are refused (550 5.1.1), `never…` ones deferred
// (451 4.7.1) every time, others accepted. It offers DSN when told to, and records each
// MAIL and RCPT line as it came.

/// Each message: the envelope sender, recipients, the content.
type Messages = Arc<Mutex<Vec<(String, Vec<String>, String)>>>;

struct Remote {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    messages: Messages,
    stop: Arc<AtomicBool>,
}

impl Remote {
    fn start(ip: &str, port: u16, dsn: bool) -> Remote {
        let listener = TcpListener::bind((ip, port)).expect("bind the scripted server");
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, m, st) = (lines.clone(), messages.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (l, m) = (l.clone(), m.clone());
                std::thread::spawn(move || serve(conn, dsn, l, m));
            }
        });
        Remote {
            addr,
            lines,
            messages,
            stop,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn messages(&self) -> Vec<(String, Vec<String>, String)> {
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, dsn: bool, seen: Arc<Mutex<Vec<String>>>, messages: Messages) {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = conn.try_clone().unwrap();
    let mut input = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    if !say("220 remote.test ESMTP scripted\r\n") {
        return;
    }
    let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let path = |l: &str| {
            l.split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(a, _)| a.to_string())
                .unwrap_or_default()
        };
        let reply = if upper.starts_with("EHLO") {
            if dsn {
                "250-remote.test\r\n250-PIPELINING\r\n250 DSN\r\n".to_string()
            } else {
                "250-remote.test\r\n250 PIPELINING\r\n".to_string()
            }
        } else if upper.starts_with("MAIL FROM") {
            seen.lock().unwrap().push(line.trim_end().to_string());
            from = path(&line);
            rcpts.clear();
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT TO") {
            seen.lock().unwrap().push(line.trim_end().to_string());
            let to = path(&line);
            if to.starts_with("bounce") {
                format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown\r\n")
            } else if to.starts_with("never") {
                "451 4.7.1 Try again later\r\n".into()
            } else {
                rcpts.push(to);
                "250 2.1.5 Ok\r\n".into()
            }
        } else if upper.starts_with("DATA") {
            if rcpts.is_empty() {
                "554 5.5.1 No valid recipients\r\n".into()
            } else {
                if !say("354 End data with <CR><LF>.<CR><LF>\r\n") {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if input.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                messages
                    .lock()
                    .unwrap()
                    .push((from.clone(), rcpts.clone(), data));
                "250 2.0.0 Ok: queued as SCRIPTED\r\n".into()
            }
        } else if upper.starts_with("QUIT") {
            say("221 2.0.0 Bye\r\n");
            return;
        } else {
            "250 2.0.0 Ok\r\n".into()
        };
        if !say(&reply) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setup

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// hato with the loopback DNS, MX delivery to `port`, quick retries and `outbound` more lines
/// of `[outbound]`; tenant contoso (contoso.test) with alice's and bob's mailboxes, and an
/// on-premises connector that lets 127.0.0.1 relay for contoso.test.
fn sender(dns: &Dns, port: u16, outbound: &str) -> Server {
    let extra = format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {port}\nretry_first_secs = 1\nretry_max_secs = 1\n{outbound}\n",
        dns.addr()
    );
    let s = Server::start_with_config("", "", &extra);
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
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

fn mx_to(dns: &Dns, domain: &str, ip: Ipv4Addr) {
    dns.mx(domain, 10, &format!("mx.{domain}"));
    dns.a(&format!("mx.{domain}"), ip);
}

/// Sends a message from alice with `mail` as the MAIL line's parameters and each recipient's
/// RCPT parameters; returns the trace id.
fn send(s: &Server, mail: &str, to: &[(&str, &str)], subject: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let r = c.cmd(&format!("MAIL FROM:<alice@contoso.test> {mail}"));
    assert!(r.starts_with("250"), "MAIL: {r}");
    for (address, params) in to {
        let r = c.cmd(&format!("RCPT TO:<{address}> {params}"));
        assert!(r.starts_with("250"), "RCPT {address}: {r}");
    }
    assert!(c.cmd("DATA").starts_with("354"));
    let recipients: Vec<&str> = to.iter().map(|(a, _)| *a).collect();
    c.send(
        format!(
            "From: alice@contoso.test\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@contoso.test>\r\n\r\nTHE-BODY-OF-{subject}\r\n",
            recipients.join(", ")
        )
        .as_bytes(),
    );
    let reply = c.cmd(".");
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

fn wait_event(s: &Server, id: &str, recipient: &str, name: &str) -> Value {
    let mut found = None;
    wait(&format!("a {name} event for {recipient}"), 30, || {
        found = event(&s.events(id, recipient), name).cloned();
        found.is_some()
    });
    found.unwrap()
}

/// The raw messages in `mailbox` whose subject starts with `prefix`.
fn reports(s: &Server, mailbox: &str, prefix: &str) -> Vec<String> {
    s.mail(mailbox)
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").starts_with(prefix))
        .map(|m| s.raw_mail(mailbox, m["id"].as_i64().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Both listeners offer DSN in EHLO; bad DSN parameters get `501 5.5.4` saying what is wrong
/// (a repeated parameter, NEVER with others, bad xtext, ENVID over 100 characters), and the
/// session goes on.
#[test]
fn dsn_is_offered_and_bad_parameters_get_501() {
    let s = Server::start();
    for addr in [s.smtp, s.submission] {
        let mut c = Smtp::connect(addr);
        assert!(c.read_reply().starts_with("220"));
        let ehlo = c.cmd("EHLO client.test");
        assert!(ehlo.lines().any(|l| &l[4..] == "DSN"), "{addr}: {ehlo}");
    }
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    for (line, want) in [
        (
            "MAIL FROM:<x@fabrikam.test> RET=FULL RET=HDRS".to_string(),
            "501 5.5.4 Invalid DSN parameter RET: given more than once",
        ),
        (
            "MAIL FROM:<x@fabrikam.test> RET=BODY".to_string(),
            "501 5.5.4 Invalid DSN parameter RET: must be FULL or HDRS",
        ),
        (
            format!("MAIL FROM:<x@fabrikam.test> ENVID={}", "e".repeat(101)),
            "501 5.5.4 Invalid DSN parameter ENVID: longer than 100 characters",
        ),
        (
            "MAIL FROM:<x@fabrikam.test> ENVID=a+zz".to_string(),
            "501 5.5.4 Invalid DSN parameter ENVID: xtext",
        ),
    ] {
        let reply = c.cmd(&line);
        assert!(reply.starts_with(want), "{line}: {reply}");
    }
    assert!(
        c.cmd("MAIL FROM:<x@fabrikam.test> RET=HDRS ENVID=ok+2B1")
            .starts_with("250")
    );
    for (line, want) in [
        (
            "RCPT TO:<x@contoso.test> NOTIFY=NEVER,FAILURE",
            "501 5.5.4 Invalid DSN parameter NOTIFY: NEVER cannot be combined with other values",
        ),
        (
            "RCPT TO:<x@contoso.test> NOTIFY=DELAY NOTIFY=FAILURE",
            "501 5.5.4 Invalid DSN parameter NOTIFY: given more than once",
        ),
        (
            "RCPT TO:<x@contoso.test> NOTIFY=SOMETIMES",
            "501 5.5.4 Invalid DSN parameter NOTIFY: must be NEVER or a list of SUCCESS, FAILURE, DELAY",
        ),
        (
            "RCPT TO:<x@contoso.test> ORCPT=x@contoso.test",
            "501 5.5.4 Invalid DSN parameter ORCPT: must be addr-type;xtext",
        ),
    ] {
        let reply = c.cmd(line);
        assert!(reply.starts_with(want), "{line}: {reply}");
    }
}

/// NOTIFY=NEVER, and a NOTIFY without FAILURE, mean no NDR: of three refused recipients of one
/// message only the one without NOTIFY is reported; the others' trace has the Fail and a Dsn
/// event saying why no NDR went. ENVID and ORCPT appear in the NDR's report.
#[test]
fn notify_decides_which_failures_get_an_ndr() {
    let dns = Dns::start(&["test"]);
    let remote = Remote::start("127.0.0.1", 0, false);
    mx_to(&dns, "remote.test", LOOPBACK);
    let a = sender(&dns, remote.addr.port(), "");
    let id = send(
        &a,
        "RET=FULL ENVID=env+2B42",
        &[
            ("bounce1@remote.test", "NOTIFY=NEVER"),
            ("bounce2@remote.test", "NOTIFY=SUCCESS"),
            (
                "bounce3@remote.test",
                "ORCPT=rfc822;Original+2BThree@remote.test",
            ),
        ],
        "refused",
    );
    for r in [
        "bounce1@remote.test",
        "bounce2@remote.test",
        "bounce3@remote.test",
    ] {
        let fail = wait_event(&a, &id, r, "Fail");
        assert_eq!(fail["enhanced_status"], "5.1.1", "{r}: {fail}");
    }
    a.wait_for("the NDR", || {
        !reports(&a, "alice@contoso.test", "Undeliverable").is_empty()
    });
    for r in ["bounce1@remote.test", "bounce2@remote.test"] {
        let dsn = event(&a.events(&id, r), "Dsn")
            .cloned()
            .expect("a Dsn event");
        assert!(
            dsn["detail"].as_str().unwrap().contains("asked for none"),
            "{r}: {dsn}"
        );
    }
    let ndrs = reports(&a, "alice@contoso.test", "Undeliverable");
    assert_eq!(ndrs.len(), 1);
    let ndr = &ndrs[0];
    assert!(
        ndr.contains("Final-Recipient: rfc822; bounce3@remote.test"),
        "{ndr}"
    );
    assert!(!ndr.contains("Final-Recipient: rfc822; bounce1"), "{ndr}");
    assert!(!ndr.contains("Final-Recipient: rfc822; bounce2"), "{ndr}");
    assert!(ndr.contains("Original-Envelope-Id: env+42"), "{ndr}");
    assert!(
        ndr.contains("Original-Recipient: rfc822; Original+Three@remote.test"),
        "{ndr}"
    );
    // RET=FULL is served as HDRS: the headers, never the body.
    assert!(ndr.contains("text/rfc822-headers"), "{ndr}");
    assert!(!ndr.contains("THE-BODY-OF-refused"), "{ndr}");
}

/// A recipient still deferred `delay_notice_secs` after arrival gets its sender one delay
/// notice — one for the message, however often it is retried afterwards — with the last
/// deferral's reply, `Will-Retry-Until`, ENVID and ORCPT; a recipient whose NOTIFY leaves DELAY
/// out is not in it.
#[test]
fn a_delay_notice_goes_once_after_the_configured_delay() {
    let dns = Dns::start(&["test"]);
    let remote = Remote::start("127.0.0.1", 0, false);
    mx_to(&dns, "remote.test", LOOPBACK);
    let a = sender(
        &dns,
        remote.addr.port(),
        "delay_notice_secs = 2\nexpiration_secs = 600\n",
    );
    let id = send(
        &a,
        "ENVID=delay-env",
        &[
            ("never1@remote.test", "ORCPT=rfc822;first@remote.test"),
            ("never2@remote.test", "NOTIFY=FAILURE"),
        ],
        "slow",
    );
    wait_event(&a, &id, "never1@remote.test", "Defer");
    a.wait_for("the delay notice", || {
        !reports(&a, "alice@contoso.test", "Delivery delayed").is_empty()
    });
    let notice = &reports(&a, "alice@contoso.test", "Delivery delayed")[0];
    assert!(
        notice.contains("Subject: Delivery delayed: slow"),
        "{notice}"
    );
    assert!(notice.contains("message/delivery-status"), "{notice}");
    assert!(
        notice.contains("Final-Recipient: rfc822; never1@remote.test"),
        "{notice}"
    );
    assert!(notice.contains("Action: delayed"), "{notice}");
    assert!(notice.contains("Status: 4.7.1"), "{notice}");
    assert!(
        notice.contains("Diagnostic-Code: smtp; 451 4.7.1 Try again later"),
        "{notice}"
    );
    assert!(notice.contains("Will-Retry-Until: "), "{notice}");
    assert!(
        notice.contains("Original-Envelope-Id: delay-env"),
        "{notice}"
    );
    assert!(
        notice.contains("Original-Recipient: rfc822; first@remote.test"),
        "{notice}"
    );
    assert!(
        !notice.contains("Final-Recipient: rfc822; never2@remote.test"),
        "NOTIFY=FAILURE: {notice}"
    );
    assert!(!notice.contains("THE-BODY-OF-slow"), "{notice}");
    let dsn = event(&a.events(&id, "never1@remote.test"), "Dsn")
        .cloned()
        .expect("a Dsn event");
    assert!(
        dsn["detail"]
            .as_str()
            .unwrap()
            .contains("Delay notice sent"),
        "{dsn}"
    );
    assert!(event(&a.events(&id, "never2@remote.test"), "Dsn").is_none());
    // Retried several times more: still one notice.
    let asked = || {
        remote
            .lines()
            .iter()
            .filter(|l| l.contains("never1@remote.test"))
            .count()
    };
    let before = asked();
    wait("more retries", 30, || asked() >= before + 3);
    assert_eq!(
        reports(&a, "alice@contoso.test", "Delivery delayed").len(),
        1
    );
    let dsns = a
        .events(&id, "never1@remote.test")
        .iter()
        .filter(|e| e["event"] == "Dsn")
        .count();
    assert_eq!(dsns, 1);
}

/// NOTIFY=SUCCESS: a "delivered" notice for hato's own mailbox, a "relayed" one when the next
/// hop does not offer DSN; to a next hop that offers DSN the parameters go on (NOTIFY, ORCPT,
/// RET, ENVID) and hato sends no notice of its own. Without SUCCESS, nothing.
#[test]
fn success_notices_and_dsn_passed_on() {
    let dns = Dns::start(&["test"]);
    let plain = Remote::start("127.0.0.1", 0, false);
    let with_dsn = Remote::start("127.0.0.2", plain.addr.port(), true);
    mx_to(&dns, "remote.test", LOOPBACK);
    mx_to(&dns, "dsn.test", Ipv4Addr::new(127, 0, 0, 2));
    let a = sender(&dns, plain.addr.port(), "");

    // hato's own mailbox.
    let local = send(
        &a,
        "ENVID=local-1",
        &[("bob@contoso.test", "NOTIFY=SUCCESS,FAILURE")],
        "to-bob",
    );
    wait_event(&a, &local, "bob@contoso.test", "Deliver");
    a.wait_for("the delivered notice", || {
        !reports(&a, "alice@contoso.test", "Delivered:").is_empty()
    });
    let notice = &reports(&a, "alice@contoso.test", "Delivered:")[0];
    assert!(notice.contains("Action: delivered"), "{notice}");
    assert!(notice.contains("Status: 2.0.0"), "{notice}");
    assert!(
        notice.contains("Final-Recipient: rfc822; bob@contoso.test"),
        "{notice}"
    );
    assert!(notice.contains("Original-Envelope-Id: local-1"), "{notice}");

    // A next hop without DSN: relayed.
    let relayed = send(
        &a,
        "",
        &[
            ("ok@remote.test", "NOTIFY=SUCCESS"),
            ("quiet@remote.test", ""),
        ],
        "to-plain",
    );
    wait_event(&a, &relayed, "ok@remote.test", "Send");
    a.wait_for("the relayed notice", || {
        !reports(&a, "alice@contoso.test", "Relayed:").is_empty()
    });
    let notice = &reports(&a, "alice@contoso.test", "Relayed:")[0];
    assert!(notice.contains("Action: relayed"), "{notice}");
    assert!(
        notice.contains("Final-Recipient: rfc822; ok@remote.test"),
        "{notice}"
    );
    assert!(
        !notice.contains("Final-Recipient: rfc822; quiet@remote.test"),
        "no SUCCESS asked: {notice}"
    );
    assert!(
        plain.lines().iter().all(|l| !l.contains("NOTIFY")),
        "no DSN parameters to a server without DSN: {:?}",
        plain.lines()
    );

    // A next hop with DSN: the parameters go on, and the success is its to report.
    let passed = send(
        &a,
        "RET=HDRS ENVID=pass+2Bon",
        &[(
            "ok@dsn.test",
            "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig@dsn.test",
        )],
        "to-dsn",
    );
    wait_event(&a, &passed, "ok@dsn.test", "Send");
    let lines = with_dsn.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("MAIL FROM:<alice@contoso.test>")
                && l.contains("RET=HDRS")
                && l.contains("ENVID=pass+2Bon")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("RCPT TO:<ok@dsn.test>")
            && l.contains("NOTIFY=SUCCESS,DELAY")
            && l.contains("ORCPT=rfc822;orig@dsn.test")),
        "{lines:?}"
    );
    assert_eq!(with_dsn.messages().len(), 1);
    // The relayed and delivered notices came; none for the DSN hop (give the agent a moment).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(reports(&a, "alice@contoso.test", "Relayed:").len(), 1);
    assert!(
        event(&a.events(&passed, "ok@dsn.test"), "Dsn").is_none(),
        "{:?}",
        a.events(&passed, "ok@dsn.test")
    );
}

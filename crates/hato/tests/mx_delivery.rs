//! MX delivery end to end (issue 10, items 6 and 7): the real `hato serve` delivering outside
//! recipients by MX to servers on loopback — another hato, Postfix's smtp-sink, scripted
//! servers — with MX records from a DNS server on loopback and `[outbound] smtp_port` pointing
//! at the receiving server's port.
//!
//! The outside recipients come through an on-premises inbound connector (relay from 127.0.0.1
//! for the tenant's domains: route `remote`), or through a group's mail contact.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A scripted SMTP server: answers by the recipient's local part, records what it got.

#[derive(Default)]
struct Received {
    connections: usize,
    /// Each message: the envelope sender, recipients, the content.
    messages: Vec<(String, Vec<String>, String)>,
    /// How often each recipient was asked for.
    asked: HashMap<String, usize>,
}

/// Recipients whose local part starts with `bounce` are refused (550 5.1.1); `later` ones are
/// deferred (451 4.7.1) the first time; `never` ones every time. A silent server accepts
/// connections and never greets.
struct Remote {
    addr: SocketAddr,
    got: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
}

impl Remote {
    fn start(ip: &str, port: u16, silent: bool) -> Remote {
        let listener = TcpListener::bind((ip, port)).expect("bind the scripted server");
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, st) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                g.lock().unwrap().connections += 1;
                if silent {
                    held.push(conn);
                    continue;
                }
                let g = g.clone();
                std::thread::spawn(move || serve(conn, g));
            }
        });
        Remote { addr, got, stop }
    }

    fn messages(&self) -> Vec<(String, Vec<String>, String)> {
        self.got.lock().unwrap().messages.clone()
    }

    fn connections(&self) -> usize {
        self.got.lock().unwrap().connections
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, got: Arc<Mutex<Received>>) {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = conn.try_clone().unwrap();
    let mut lines = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    if !say("220 remote.test ESMTP scripted\r\n") {
        return;
    }
    let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let arg = |l: &str| {
            l.split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(a, _)| a.to_string())
                .unwrap_or_default()
        };
        let reply = if upper.starts_with("EHLO") {
            "250-remote.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".to_string()
        } else if upper.starts_with("MAIL FROM") {
            from = arg(&line);
            rcpts.clear();
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT TO") {
            let to = arg(&line);
            let n = {
                let mut g = got.lock().unwrap();
                let n = g.asked.entry(to.clone()).or_insert(0);
                *n += 1;
                *n
            };
            if to.starts_with("bounce") {
                format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown\r\n")
            } else if to.starts_with("never") || (to.starts_with("later") && n == 1) {
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
                    if lines.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                got.lock()
                    .unwrap()
                    .messages
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

/// The whole `test.` zone: a name not published is NXDOMAIN, as on the Internet.
fn dns() -> Dns {
    Dns::start(&["test"])
}

/// hato with the loopback DNS, MX delivery to `port`, quick retries, and `extra` more lines of
/// `[outbound]`; tenant contoso (contoso.test) with alice's mailbox, and an on-premises
/// connector that lets 127.0.0.1 relay for contoso.test.
fn sender(dns: &Dns, port: u16, outbound: &str) -> Server {
    let extra = format!(
        "[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n\n[outbound]\nsmtp_port = {port}\nretry_first_secs = 1\nretry_max_secs = 1\n{outbound}\n",
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

/// Relays a message from alice through the connector; returns its trace id.
fn relay(s: &Server, to: &[&str], subject: &str, body: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let reply = c.send_mail(
        "alice@contoso.test",
        to,
        &format!(
            "From: alice@contoso.test\nTo: {}\nSubject: {subject}\nMessage-ID: <{subject}@contoso.test>\n\n{body}\n",
            to.join(", ")
        ),
    );
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    c.cmd("QUIT");
    trace_id_of(&reply)
}

/// An MX domain `domain` whose one host (`mx.<domain>`) has address `ip`.
fn mx_to(dns: &Dns, domain: &str, ip: Ipv4Addr) {
    dns.mx(domain, 10, &format!("mx.{domain}"));
    dns.a(&format!("mx.{domain}"), ip);
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Waits up to `secs` for `f`.
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

/// Messages in alice's mailbox whose subject contains `part`.
fn ndrs(s: &Server, part: &str) -> Vec<Value> {
    s.mail("alice@contoso.test")
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains(part))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Two hato instances: A relays for contoso.test, B hosts fabrikam.test. The message reaches
/// bob's mailbox at B by MX; A's trace shows `Send` with the MX host, its address and B's 250;
/// B's trace shows it received.
#[test]
fn two_hato_instances_deliver_to_each_other_by_mx() {
    let dns = dns();
    let b = Server::start_with_config(
        "",
        "",
        &format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr()),
    );
    b.tenant("fabrikam");
    b.mailbox("bob@fabrikam.test", &[]);
    mx_to(&dns, "fabrikam.test", LOOPBACK);
    let a = sender(&dns, b.smtp.port(), "");

    let id = relay(
        &a,
        &["bob@fabrikam.test"],
        "across",
        "From one hato to another.",
    );
    let send = wait_event(&a, &id, "bob@fabrikam.test", "Send");
    assert_eq!(send["remote_host"], "mx.fabrikam.test", "{send}");
    assert_eq!(send["status"], 250, "{send}");
    assert_eq!(send["enhanced_status"], "2.6.0", "{send}");
    let reason = send["reason"].to_string();
    assert!(
        reason.contains(&format!("127.0.0.1:{}", b.smtp.port())) && reason.contains("normal"),
        "the remote address and the pool: {send}"
    );
    // B queued it under its own trace id, which A's Send event quotes from B's reply.
    let theirs = trace_id_of(&format!("250 2.6.0 {}", send["detail"].as_str().unwrap()));
    b.wait_for("bob's copy", || b.mail("bob@fabrikam.test").len() == 1);
    let item = &b.mail("bob@fabrikam.test")[0];
    assert_eq!(item["subject"], "across");
    let raw = b.raw_mail("bob@fabrikam.test", item["id"].as_i64().unwrap());
    assert!(raw.contains("From one hato to another."), "{raw}");
    assert!(raw.contains("Return-Path: <alice@contoso.test>"), "{raw}");
    let theirs_events = b.events(&theirs, "bob@fabrikam.test");
    assert_eq!(theirs_events[0]["event"], "Receive", "{theirs_events:?}");
    assert!(
        event(&theirs_events, "Deliver").is_some(),
        "{theirs_events:?}"
    );
}

/// Messages to one destination share a connection: smtp-sink, which holds each DATA a second,
/// counts one session for three messages while the destination's concurrency is 1.
#[test]
fn messages_to_one_destination_reuse_a_connection_at_smtp_sink() {
    let dns = dns();
    let sink = Sink::start(&["-w", "1"]);
    mx_to(&dns, "sink.test", LOOPBACK);
    let a = sender(
        &dns,
        sink.port,
        "initial_destination_concurrency = 1\ndestination_concurrency_limit = 1\n",
    );
    let ids: Vec<String> = (0..3)
        .map(|i| {
            relay(
                &a,
                &[&format!("user{i}@sink.test")],
                &format!("m{i}"),
                "hello",
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        wait_event(&a, id, &format!("user{i}@sink.test"), "Send");
    }
    sink.wait_for_counters("sess=1 quit=1 mesg=3");
}

/// The connection cache (Postfix's `smtp_connection_cache_time_limit`): a session whose
/// destination has nothing more queued stays open, idle, for `connection_cache_ms`, and the next
/// message to that destination goes over it; with `connection_cache_ms = 0` each message, sent
/// after the previous one left, gets a connection of its own.
#[test]
fn an_idle_session_carries_the_next_message_within_the_connection_cache_time() {
    let dns = dns();
    mx_to(&dns, "remote.test", LOOPBACK);
    for (cache_ms, sessions) in [(20_000, 1), (0, 3)] {
        let remote = Remote::start("127.0.0.1", 0, false);
        let a = sender(
            &dns,
            remote.addr.port(),
            &format!("connection_cache_ms = {cache_ms}\n"),
        );
        for i in 0..3 {
            let rcpt = format!("user{i}@remote.test");
            let id = relay(&a, &[&rcpt], &format!("cache{cache_ms}-{i}"), "hello");
            // Delivered before the next is sent: the destination's queue is empty between.
            wait_event(&a, &id, &rcpt, "Send");
        }
        assert_eq!(remote.messages().len(), 3);
        assert_eq!(
            remote.connections(),
            sessions,
            "connection_cache_ms = {cache_ms}"
        );
    }
}

/// A 5xx to RCPT fails the recipient with the remote reply and sends alice an NDR that quotes
/// the original's headers, never its body; a 4xx defers it with the remote reply, and it is
/// retried and sent.
#[test]
fn a_refused_recipient_fails_with_an_ndr_and_a_deferred_one_is_retried() {
    let dns = dns();
    let remote = Remote::start("127.0.0.1", 0, false);
    mx_to(&dns, "remote.test", LOOPBACK);
    let a = sender(&dns, remote.addr.port(), "");
    let body = "THE-DISTINCTIVE-BODY-STRING-7f3a";
    let id = relay(
        &a,
        &["bounce@remote.test", "later@remote.test"],
        "mixed",
        body,
    );
    let fail = wait_event(&a, &id, "bounce@remote.test", "Fail");
    assert_eq!(fail["status"], 550, "{fail}");
    assert_eq!(fail["enhanced_status"], "5.1.1", "{fail}");
    assert!(
        fail["reason"].to_string().contains("mx.remote.test"),
        "{fail}"
    );
    let defer = wait_event(&a, &id, "later@remote.test", "Defer");
    assert_eq!(
        (
            &defer["status"],
            &defer["enhanced_status"],
            &defer["remote_host"]
        ),
        (
            &Value::from(451),
            &Value::from("4.7.1"),
            &Value::from("mx.remote.test")
        ),
        "{defer}"
    );
    wait_event(&a, &id, "later@remote.test", "Send");
    // The NDR reaches alice's mailbox: the remote reply, the original's headers, not its body.
    a.wait_for("the NDR", || !ndrs(&a, "Undeliverable").is_empty());
    let ndr = &ndrs(&a, "Undeliverable")[0];
    let raw = a.raw_mail("alice@contoso.test", ndr["id"].as_i64().unwrap());
    assert!(raw.contains("550 5.1.1"), "{raw}");
    assert!(raw.contains("text/rfc822-headers"), "{raw}");
    assert!(raw.contains("Subject: mixed"), "{raw}");
    assert!(!raw.contains(body), "the NDR carries no body: {raw}");
    // The deferred recipient went in a later transaction; the refused one never arrived.
    let got = remote.messages();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|m| &m.1).collect::<Vec<_>>()
    );
    assert_eq!(got[0].1, vec!["later@remote.test".to_string()]);
    assert!(got[0].2.contains(body));
}

/// A dead MX host (nothing listens) is skipped for the next one; a domain without MX and
/// address, one that does not exist, and one with a null MX fail at once with their replies.
#[test]
fn mx_hosts_are_tried_in_order_and_unroutable_domains_fail() {
    let dns = dns();
    let remote = Remote::start("127.0.0.1", 0, false);
    dns.mx("multi.test", 10, "dead.multi.test");
    dns.a("dead.multi.test", Ipv4Addr::new(127, 0, 0, 3));
    dns.mx("multi.test", 20, "live.multi.test");
    dns.a("live.multi.test", LOOPBACK);
    // nohost.test exists (a TXT record) but has neither MX nor address.
    dns.txt("nohost.test", "v=spf1 -all");
    dns.mx("null.test", 0, ".");
    let a = sender(&dns, remote.addr.port(), "");

    let id = relay(&a, &["user@multi.test"], "multi", "hello");
    let send = wait_event(&a, &id, "user@multi.test", "Send");
    assert_eq!(send["remote_host"], "live.multi.test", "{send}");
    assert!(
        event(&a.events(&id, "user@multi.test"), "Defer").is_none(),
        "the dead host costs no deferral"
    );
    for (to, code, enhanced) in [
        ("user@nohost.test", 550, "5.4.4"),
        ("user@gone.test", 550, "5.4.310"),
        ("user@null.test", 556, "5.1.10"),
    ] {
        let id = relay(&a, &[to], to, "hello");
        let fail = wait_event(&a, &id, to, "Fail");
        assert_eq!(
            (&fail["status"], &fail["enhanced_status"]),
            (&Value::from(code), &Value::from(enhanced)),
            "{to}: {fail}"
        );
        assert!(
            event(&a.events(&id, to), "Defer").is_none(),
            "{to} fails at once"
        );
    }
    a.wait_for("three NDRs", || ndrs(&a, "Undeliverable").len() == 3);
}

/// A recipient deferred until the outbound expiration fails with 4.4.7 and its sender gets an
/// NDR.
#[test]
fn a_recipient_deferred_past_the_expiration_fails_with_4_4_7() {
    let dns = dns();
    let remote = Remote::start("127.0.0.1", 0, false);
    mx_to(&dns, "remote.test", LOOPBACK);
    let a = sender(&dns, remote.addr.port(), "expiration_secs = 3\n");
    let id = relay(&a, &["never@remote.test"], "expiring", "hello");
    let fail = wait_event(&a, &id, "never@remote.test", "Fail");
    assert_eq!(
        (&fail["status"], &fail["enhanced_status"]),
        (&Value::from(550), &Value::from("4.4.7")),
        "{fail}"
    );
    assert!(fail["reason"].to_string().contains("451 4.7.1"), "{fail}");
    let asked = remote.got.lock().unwrap().asked["never@remote.test"];
    assert!(asked >= 2, "retried before it expired: {asked}");
    a.wait_for("the NDR", || !ndrs(&a, "Undeliverable").is_empty());
}

/// An outside sender's bounce: the NDR leaves hato by MX (from the high-risk pool), quoting the
/// headers only; a sender that failed SPF gets none (no backscatter).
#[test]
fn ndrs_leave_by_mx_except_to_senders_that_failed_spf() {
    let dns = dns();
    let remote = Remote::start("127.0.0.1", 0, false);
    for domain in ["remote.test", "good.test", "forged.test"] {
        mx_to(&dns, domain, LOOPBACK);
    }
    dns.txt("good.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("forged.test", "v=spf1 ip4:192.0.2.1 -all");
    let a = sender(&dns, remote.addr.port(), "");
    a.ok(&[
        "contact",
        "add",
        "bounce@remote.test",
        "--tenant",
        "contoso",
    ]);
    a.ok(&[
        "group",
        "add",
        "team@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bounce@remote.test",
        "--require-sender-authentication",
        "false",
    ]);
    let body = "ANOTHER-DISTINCTIVE-BODY-91c2";
    let mut ids = Vec::new();
    for from in ["someone@good.test", "someone@forged.test"] {
        // From 127.0.0.2: the connector does not attribute it (plain direct send).
        let mut c = Smtp::connect_from(a.smtp, "127.0.0.2");
        assert!(c.read_reply().starts_with("220"));
        assert!(c.cmd("EHLO outside.test").starts_with("250"));
        let reply = c.send_mail(
            from,
            &["team@contoso.test"],
            &format!("From: {from}\nTo: team@contoso.test\nSubject: to the team\n\n{body}\n"),
        );
        assert!(reply.starts_with("250 2.6.0"), "{reply}");
        ids.push(trace_id_of(&reply));
    }
    for id in &ids {
        wait_event(&a, id, "bounce@remote.test", "Fail");
    }
    // good.test's sender gets its NDR at its MX host, from the null sender.
    wait("the NDR at good.test's MX", 30, || {
        remote
            .messages()
            .iter()
            .any(|m| m.1 == vec!["someone@good.test".to_string()])
    });
    let got = remote.messages();
    let ndr = got
        .iter()
        .find(|m| m.1 == vec!["someone@good.test".to_string()])
        .unwrap();
    assert_eq!(ndr.0, "", "an NDR has the null sender");
    assert!(ndr.2.contains("text/rfc822-headers"), "{}", ndr.2);
    assert!(ndr.2.contains("550 5.1.1"), "{}", ndr.2);
    assert!(!ndr.2.contains(body), "headers only: {}", ndr.2);
    // The forged sender's bounce says why no NDR went.
    let forged = a.events(&ids[1], "bounce@remote.test");
    let dsn = event(&forged, "Dsn").expect("a Dsn event");
    assert!(
        dsn["detail"]
            .as_str()
            .unwrap()
            .contains("failed SPF or DMARC"),
        "{dsn}"
    );
    // Nothing went to forged.test, however long one waits for the good one's NDR (above).
    assert!(
        !got.iter()
            .any(|m| m.1.iter().any(|r| r.ends_with("@forged.test"))),
        "no backscatter"
    );
    // The NDR left from the high-risk pool.
    let ndr_id = a
        .trace("recipient=someone@good.test")
        .first()
        .map(|r| r["trace_id"].as_str().unwrap().to_string())
        .expect("the NDR's trace row");
    let send = wait_event(&a, &ndr_id, "someone@good.test", "Send");
    assert!(send["reason"].to_string().contains("high-risk"), "{send}");
}

/// A destination that never greets holds its own connections only: with three connections in
/// all and two per destination, mail to another domain is delivered meanwhile.
#[test]
fn a_slow_destination_does_not_stop_mail_to_another() {
    let dns = dns();
    let fast = Remote::start("127.0.0.1", 0, false);
    let slow = Remote::start("127.0.0.2", fast.addr.port(), true);
    mx_to(&dns, "slow.test", Ipv4Addr::new(127, 0, 0, 2));
    mx_to(&dns, "fast.test", LOOPBACK);
    let a = sender(&dns, fast.addr.port(), "max_connections = 3\n");
    for i in 0..6 {
        relay(
            &a,
            &[&format!("user{i}@slow.test")],
            &format!("slow{i}"),
            "hello",
        );
    }
    // The slow destination's connections are open (and waiting for a greeting).
    wait("connections to the slow host", 20, || {
        slow.connections() >= 2
    });
    let id = relay(&a, &["user@fast.test"], "fast", "hello");
    let deadline = Instant::now();
    wait_event(&a, &id, "user@fast.test", "Send");
    assert!(deadline.elapsed() < Duration::from_secs(20));
    assert_eq!(fast.messages().len(), 1);
    assert_eq!(
        slow.connections(),
        2,
        "the slow destination keeps to its two connections"
    );
}

// ---------------------------------------------------------------------------------------------
// Postfix's smtp-sink (as `crates/hato-smtp/tests/client.rs` starts it)

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

    fn wait_for_counters(&self, want: &str) {
        let path = self.dir.path().join("counters");
        wait(&format!("the sink's counters to read {want}"), 30, || {
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .split(['\r', '\n'])
                .any(|c| c.trim() == want)
        });
    }
}

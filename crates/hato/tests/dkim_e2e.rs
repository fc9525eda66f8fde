//! DKIM across two hato instances (issue 10, item 6's check): A signs what it sends by MX (`hato
//! dkim add` on A, the records it prints served by a DNS server on loopback), B verifies on
//! arrival with its own resolver: `Authentication-Results` with `dkim=pass header.d=contoso.test`
//! in bob's copy, and the spam stage's figure in B's `hato explain`. A message altered in transit
//! (a relay on 127.0.0.2, the MX of northwind.test, changes its body before handing it to B)
//! arrives with `dkim=fail`.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const MESSAGE: &str = "From: Alice <alice@contoso.test>\nTo: {to}\nSubject: {subject}\n\
Date: Tue, 1 Dec 2026 06:00:00 +0000\nMessage-ID: <{subject}@contoso.test>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\n\
Hi,\n\nthe minutes of Tuesday's meeting are on the wiki page.\n\nAlice\n";

/// A relay that changes "wiki page" to "wiki site" in each message and hands it to `next`
/// (what a broken or malicious hop does); one message per connection is enough here.
fn tampering_relay(bind: SocketAddr, next: SocketAddr) {
    let listener = TcpListener::bind(bind).expect("bind the relay");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || relay_one(conn, next));
        }
    });
}

fn relay_one(conn: TcpStream, next: SocketAddr) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let mut out = conn.try_clone().unwrap();
    let mut lines = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    say("220 relay.northwind.test ESMTP\r\n");
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let arg = |l: &str| {
        l.split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(a, _)| a.to_string())
            .unwrap_or_default()
    };
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            say("250-relay.northwind.test\r\n250 8BITMIME\r\n");
        } else if upper.starts_with("MAIL FROM") {
            from = arg(&line);
            say("250 2.1.0 Ok\r\n");
        } else if upper.starts_with("RCPT TO") {
            to.push(arg(&line));
            say("250 2.1.5 Ok\r\n");
        } else if upper.starts_with("DATA") {
            say("354 Go ahead\r\n");
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
            let changed = data.replace("wiki page", "wiki site");
            let mut b = Smtp::connect(next);
            assert!(b.read_reply().starts_with("220"));
            assert!(b.cmd("EHLO relay.northwind.test").starts_with("250"));
            let rcpts: Vec<&str> = to.iter().map(String::as_str).collect();
            let reply = b.send_mail(&from, &rcpts, &changed);
            b.cmd("QUIT");
            say(&reply);
        } else if upper.starts_with("QUIT") {
            say("221 2.0.0 Bye\r\n");
            return;
        } else {
            say("250 2.0.0 Ok\r\n");
        }
    }
}

/// Publishes the records `hato dkim show --json` gives.
fn publish(dns: &Dns, config: &Value) {
    for sel in config["selectors"].as_array().unwrap() {
        let strings: Vec<&str> = sel["record_strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        dns.txt_strings(sel["record_name"].as_str().unwrap(), &strings);
    }
}

fn relay(a: &Server, to: &str, subject: &str) -> String {
    let mut c = a.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
    let content = MESSAGE.replace("{to}", to).replace("{subject}", subject);
    let reply = c.send_mail("alice@contoso.test", &[to], &content);
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    c.cmd("QUIT");
    trace_id_of(&reply)
}

/// The `Send` event of `recipient` at A, once there.
fn sent(a: &Server, id: &str, recipient: &str) -> Value {
    let mut found = None;
    a.wait_for(&format!("A's Send event for {recipient}"), || {
        found = a
            .events(id, recipient)
            .into_iter()
            .find(|e| e["event"] == "Send");
        found.is_some()
    });
    found.unwrap()
}

fn authentication_results(raw: &str) -> String {
    raw.lines()
        .find(|l| l.starts_with("Authentication-Results: mx.hato.test;"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no Authentication-Results: {raw}"))
}

fn only_message(b: &Server, address: &str) -> String {
    b.wait_for(&format!("the message for {address}"), || {
        b.mail(address).len() == 1
    });
    let item = &b.mail(address)[0];
    b.raw_mail(address, item["id"].as_i64().unwrap())
}

#[test]
fn a_signature_made_by_hato_a_is_verified_by_hato_b() {
    let dns = Dns::start(&["test"]);
    let dns_section = format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr());
    // B: bob at fabrikam.test (its MX on 127.0.0.1), carol at northwind.test (its MX the
    // tampering relay on 127.0.0.2, same port).
    let b = Server::start_with_config("", "", &dns_section);
    b.tenant("fabrikam");
    b.mailbox("bob@fabrikam.test", &[]);
    b.tenant("northwind");
    b.mailbox("carol@northwind.test", &[]);
    dns.mx("fabrikam.test", 10, "mx.fabrikam.test");
    dns.a("mx.fabrikam.test", Ipv4Addr::new(127, 0, 0, 1));
    dns.mx("northwind.test", 10, "mx.northwind.test");
    dns.a("mx.northwind.test", Ipv4Addr::new(127, 0, 0, 2));
    tampering_relay(SocketAddr::from(([127, 0, 0, 2], b.smtp.port())), b.smtp);

    // A: relays for contoso.test from 127.0.0.1, signs with its DKIM key.
    let a = Server::start_with_config(
        "",
        "",
        &format!(
            "{dns_section}\n[outbound]\nsmtp_port = {}\nretry_first_secs = 1\nretry_max_secs = 1\n",
            b.smtp.port()
        ),
    );
    a.tenant("contoso");
    a.mailbox("alice@contoso.test", &[]);
    a.ok(&[
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
    let out = a.ok(&["dkim", "add", "contoso.test", "--tenant", "contoso"]);
    assert!(
        out.contains("selector1._domainkey.contoso.test. IN TXT"),
        "{out}"
    );
    let config: Value = serde_json::from_str(&a.ok(&[
        "dkim",
        "show",
        "contoso.test",
        "--tenant",
        "contoso",
        "--json",
    ]))
    .expect("json");
    publish(&dns, &config);

    // Straight from A to B: signed by A, verified by B.
    let id = relay(&a, "bob@fabrikam.test", "minutes");
    let send = sent(&a, &id, "bob@fabrikam.test");
    assert_eq!(send["remote_host"], "mx.fabrikam.test", "{send}");
    let raw = only_message(&b, "bob@fabrikam.test");
    assert!(
        raw.contains("DKIM-Signature: ") && raw.contains("d=contoso.test"),
        "A signed it: {raw}"
    );
    assert!(
        raw.contains("dkim=pass (signature was verified) header.d=contoso.test"),
        "{}",
        authentication_results(&raw)
    );
    // B's explanation of its copy (its trace id is in its 250, which A's Send event quotes).
    let theirs = trace_id_of(&format!("250 2.6.0 {}", send["detail"].as_str().unwrap()));
    let explained = b.ok(&["explain", &theirs]);
    assert!(
        explained.contains("dkim = pass")
            && explained.contains("DKIM pass: d=contoso.test pass (signature was verified)"),
        "{explained}"
    );

    // Through the tampering relay: the body no longer matches the signature's hash.
    let id = relay(&a, "carol@northwind.test", "altered");
    let send = sent(&a, &id, "carol@northwind.test");
    assert_eq!(send["remote_host"], "mx.northwind.test", "{send}");
    let raw = only_message(&b, "carol@northwind.test");
    assert!(raw.contains("wiki site"), "the relay changed it: {raw}");
    assert!(
        raw.contains("dkim=fail (body hash did not verify) header.d=contoso.test"),
        "{}",
        authentication_results(&raw)
    );
}

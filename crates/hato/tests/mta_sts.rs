//! MTA-STS (RFC 8461) end to end (issue 10, item 6): the real `hato serve` (A) delivering by MX
//! to another hato (B) whose MX host is `mx.fabrikam.test`, with the `_mta-sts` TXT record, the
//! MX and the policy host's address from a DNS server on loopback, and the policy served over
//! HTTPS by a server in this test (`[outbound] mta_sts_port` points A at it) with a certificate
//! from a test CA that A trusts (`[outbound] extra_ca_file`).

mod common;

use common::tls::{Issued, TestCa};
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The policy server: HTTPS on loopback, one answer for every request, which the test sets.

#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

struct PolicyServer {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    /// Each request's first line and Host field.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl PolicyServer {
    fn start(cert: &Issued) -> PolicyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the policy server");
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(Answer {
            status: 404,
            content_type: "text/plain".into(),
            body: b"no policy".to_vec(),
        }));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = cert.server_config();
        let (a, r, st) = (answer.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (a, r, config) = (a.clone(), r.clone(), config.clone());
                std::thread::spawn(move || serve_https(conn, config, a, r));
            }
        });
        PolicyServer {
            addr,
            answer,
            requests,
            stop,
        }
    }

    fn answer(&self, status: u16, content_type: &str, body: &[u8]) {
        *self.answer.lock().unwrap() = Answer {
            status,
            content_type: content_type.into(),
            body: body.to_vec(),
        };
    }

    fn policy(&self, text: &str) {
        self.answer(200, "text/plain; charset=utf-8", text.as_bytes());
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_https(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
        if request.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let first = text.lines().next().unwrap_or("").to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("")
        .to_string();
    requests
        .lock()
        .unwrap()
        .push(format!("{first} host={host}"));
    let a = answer.lock().unwrap().clone();
    let location = if (300..400).contains(&a.status) {
        "Location: https://elsewhere.test/.well-known/mta-sts.txt\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{location}Connection: close\r\n\r\n",
        a.status,
        a.content_type,
        a.body.len()
    );
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(&a.body);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

// ---------------------------------------------------------------------------------------------
// Setup

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const TXT: &str = "_mta-sts.fabrikam.test";

struct World {
    dns: Dns,
    _dir: tempfile::TempDir,
    https: Option<PolicyServer>,
    b: Server,
    a: Server,
}

/// B hosts fabrikam.test (bob), its MX `mx.fabrikam.test` on loopback, presenting a certificate
/// for that name from the test CA (`valid_mx_cert`) or its own self-signed one; the policy
/// server for `mta-sts.fabrikam.test` with a certificate from the test CA; A relays for
/// contoso.test, trusts the test CA and fetches policies from the policy server's port. No
/// connection cache: the policy is applied when a session starts, and each message here must
/// start one to show the policy as it is then.
fn world(valid_mx_cert: bool) -> World {
    let dns = Dns::start(&["test"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write(dir.path());
    let https = PolicyServer::start(&ca.issue(&["mta-sts.fabrikam.test"]));
    let dns_section = format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr());
    let b_tls = if valid_mx_cert {
        let (cert, key) = ca.issue(&["mx.fabrikam.test"]).write(dir.path(), "mx");
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        )
    } else {
        String::new()
    };
    let b = Server::start_with_config(&b_tls, "", &dns_section);
    b.tenant("fabrikam");
    b.mailbox("bob@fabrikam.test", &[]);
    dns.mx("fabrikam.test", 10, "mx.fabrikam.test");
    dns.a("mx.fabrikam.test", LOOPBACK);
    dns.a("mta-sts.fabrikam.test", LOOPBACK);
    let a = Server::start_with_config(
        "",
        "",
        &format!(
            "{dns_section}\n[outbound]\nsmtp_port = {}\nretry_first_secs = 1\nretry_max_secs = 1\nconnection_cache_ms = 0\nmta_sts_port = {}\nextra_ca_file = \"{}\"\n",
            b.smtp.port(),
            https.addr.port(),
            ca_file.display()
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
    World {
        dns,
        _dir: dir,
        https: Some(https),
        b,
        a,
    }
}

impl World {
    fn https(&self) -> &PolicyServer {
        self.https.as_ref().expect("the policy server runs")
    }

    /// Publishes `_mta-sts.fabrikam.test` with `id` (TTL 1 s), replacing the record there, and
    /// waits out the TTL so that A's resolver asks again.
    fn publish(&self, id: &str) {
        self.dns.remove_txt(TXT);
        self.dns.txt_ttl(TXT, 1, &format!("v=STSv1; id={id}"));
        std::thread::sleep(Duration::from_millis(1100));
    }

    /// Relays a message from alice to bob through A; returns its trace id.
    fn send(&self, subject: &str) -> String {
        let mut c = self.a.smtp();
        assert!(c.read_reply().starts_with("220"));
        assert!(c.cmd("EHLO app.contoso.test").starts_with("250"));
        let reply = c.send_mail(
            "alice@contoso.test",
            &["bob@fabrikam.test"],
            &format!(
                "From: alice@contoso.test\nTo: bob@fabrikam.test\nSubject: {subject}\nMessage-ID: <{subject}@contoso.test>\n\nHello.\n"
            ),
        );
        assert!(reply.starts_with("250 2.6.0"), "{reply}");
        c.cmd("QUIT");
        trace_id_of(&reply)
    }

    /// Waits until bob's recipient of `id` has an event `name` at A; returns it.
    fn event(&self, id: &str, name: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.a.events(id, "bob@fabrikam.test");
            if let Some(e) = events.iter().find(|e| e["event"] == name) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for a {name} event: {events:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Subjects in bob's mailbox at B.
    fn delivered(&self) -> Vec<String> {
        self.b
            .mail("bob@fabrikam.test")
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn wait_delivered(&self, subject: &str) {
        self.b.wait_for(&format!("{subject} at B"), || {
            self.delivered().iter().any(|s| s == subject)
        });
    }
}

fn policy(mode: &str, mx: &[&str]) -> String {
    let mut p = format!("version: STSv1\nmode: {mode}\n");
    for m in mx {
        p.push_str(&format!("mx: {m}\n"));
    }
    p.push_str("max_age: 86400\n");
    p
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `enforce` with the MX host among the policy's patterns (a `*.` wildcard): delivered over TLS,
/// B's certificate checked for `mx.fabrikam.test` against the test CA; the `Send` event names
/// the policy; the fetch asked `mta-sts.fabrikam.test` for `/.well-known/mta-sts.txt`.
#[test]
fn enforce_with_a_matching_mx_delivers_over_validated_tls() {
    let w = world(true);
    w.https().policy(&policy(
        "enforce",
        &["other.fabrikam.test", "*.fabrikam.test"],
    ));
    w.publish("20261201T0000");
    let id = w.send("enforced");
    let send = w.event(&id, "Send");
    let reason = send["reason"].to_string();
    assert!(
        reason.contains("MTA-STS enforce (policy id 20261201T0000)"),
        "{send}"
    );
    assert!(reason.contains("tls_version"), "sent over TLS: {send}");
    assert_eq!(send["remote_host"], "mx.fabrikam.test", "{send}");
    w.wait_delivered("enforced");
    let requests = w.https().requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /.well-known/mta-sts.txt HTTP/1.1")
            && requests[0].contains("host=mta-sts.fabrikam.test:"),
        "{requests:?}"
    );
}

/// `enforce` when no MX host matches: nothing is sent; the recipient is deferred with
/// `450 4.7.5 MTA-STS policy not satisfied`, the reason naming the hosts and the patterns.
#[test]
fn enforce_without_a_matching_mx_defers_and_sends_nothing() {
    let w = world(true);
    w.https().policy(&policy("enforce", &["mx.elsewhere.test"]));
    w.publish("1");
    let id = w.send("refused-by-policy");
    let defer = w.event(&id, "Defer");
    assert_eq!(defer["status"], 450, "{defer}");
    assert_eq!(defer["enhanced_status"], "4.7.5", "{defer}");
    let text = defer.to_string();
    assert!(
        text.contains("MTA-STS policy not satisfied")
            && text.contains("mx.fabrikam.test")
            && text.contains("mx.elsewhere.test")
            && text.contains("MTA-STS enforce (policy id 1)"),
        "{defer}"
    );
    // Retries (every second here) keep to the policy.
    std::thread::sleep(Duration::from_secs(2));
    assert!(w.delivered().is_empty(), "{:?}", w.delivered());
    assert!(
        w.a.events(&id, "bob@fabrikam.test")
            .iter()
            .all(|e| e["event"] != "Send")
    );
}

/// `enforce` with a matching MX host whose certificate is B's own self-signed one (not for
/// its name, not from a trusted CA): deferred with Exchange's `450 4.7.320 Certificate
/// validation failed`, nothing sent in the clear.
#[test]
fn enforce_with_an_untrusted_mx_certificate_defers_with_4_7_320() {
    let w = world(false);
    w.https().policy(&policy("enforce", &["mx.fabrikam.test"]));
    w.publish("1");
    let id = w.send("untrusted");
    let defer = w.event(&id, "Defer");
    assert_eq!(
        (&defer["status"], &defer["enhanced_status"]),
        (&Value::from(450), &Value::from("4.7.320")),
        "{defer}"
    );
    assert!(defer.to_string().contains("MTA-STS enforce"), "{defer}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(w.delivered().is_empty());
}

/// `testing`: delivered as without a policy (B's self-signed certificate and an MX host outside
/// the patterns notwithstanding): tried with the policy's TLS first, then as without it; the
/// `Send` event says what the policy would have refused.
#[test]
fn testing_mode_delivers_and_notes_what_would_have_failed() {
    let w = world(false);
    w.https().policy(&policy("testing", &["mx.elsewhere.test"]));
    w.publish("t1");
    let id = w.send("tested");
    let send = w.event(&id, "Send");
    let reason = send["reason"].to_string();
    assert!(
        reason.contains("MTA-STS testing (policy id t1)")
            && reason.contains("mx.fabrikam.test does not match")
            && reason.contains(
                "TLS with mx.fabrikam.test failed: the server's certificate failed validation"
            )
            && reason.contains("delivered anyway"),
        "{send}"
    );
    assert!(reason.contains("tls_version"), "still over TLS: {send}");
    w.wait_delivered("tested");
}

/// `testing` that the MX satisfies (its name in the patterns, its certificate from the trusted
/// CA): the `Send` event names the policy and no failure.
#[test]
fn testing_mode_that_passes_notes_no_failure() {
    let w = world(true);
    w.https().policy(&policy("testing", &["mx.fabrikam.test"]));
    w.publish("t2");
    let id = w.send("tested-ok");
    let send = w.event(&id, "Send");
    let reason = send["reason"].to_string();
    assert!(reason.contains("MTA-STS testing (policy id t2)"), "{send}");
    assert!(!reason.contains("delivered anyway"), "{send}");
    w.wait_delivered("tested-ok");
}

/// No `_mta-sts` TXT record: plain MX delivery, and no policy is fetched (even though the
/// policy server would answer with an `enforce` policy no host matches).
#[test]
fn no_txt_record_means_delivery_as_before() {
    let w = world(false);
    w.https().policy(&policy("enforce", &["mx.elsewhere.test"]));
    let id = w.send("no-policy");
    let send = w.event(&id, "Send");
    assert!(!send["reason"].to_string().contains("MTA-STS"), "{send}");
    w.wait_delivered("no-policy");
    assert!(
        w.https().requests().is_empty(),
        "{:?}",
        w.https().requests()
    );
}

/// The cached policy applies when a refresh fails (RFC 8461 §5.1): the TXT id changes while the
/// policy server is down, and the `enforce` policy fetched before still governs delivery — and
/// still does after A restarts (from the store).
#[test]
fn a_cached_policy_applies_when_the_policy_server_is_down_even_after_a_restart() {
    let mut w = world(true);
    w.https().policy(&policy("enforce", &["mx.fabrikam.test"]));
    w.publish("v1");
    let id = w.send("first");
    let send = w.event(&id, "Send");
    assert!(
        send["reason"]
            .to_string()
            .contains("MTA-STS enforce (policy id v1)"),
        "{send}"
    );
    // The policy server goes away; the domain announces a new policy.
    w.https = None;
    w.publish("v2");
    let id = w.send("second");
    let send = w.event(&id, "Send");
    let reason = send["reason"].to_string();
    assert!(
        reason.contains(
            "MTA-STS enforce (policy id v1); cached policy used: fetching policy id v2 failed"
        ),
        "{send}"
    );
    // After a restart the memory is empty: the store has the policy.
    w.a.restart();
    let id = w.send("third");
    let send = w.event(&id, "Send");
    assert!(
        send["reason"]
            .to_string()
            .contains("MTA-STS enforce (policy id v1); cached policy used"),
        "{send}"
    );
    w.wait_delivered("third");
}

/// Answers that are no policy (RFC 8461 §3.3): a body over 64 KiB, a redirect (not followed),
/// another media type. Each is fetched (the id changes each time) and ignored: the `enforce`
/// policy inside, which no MX host matches, is not applied. A good answer then is.
#[test]
fn oversize_redirected_and_mistyped_policies_are_not_taken() {
    let w = world(false);
    let refusing = policy("enforce", &["mx.elsewhere.test"]);
    let mut big = refusing.clone().into_bytes();
    big.extend(std::iter::repeat_n(b'#', 70 * 1024));
    let cases: [(&str, u16, &str, Vec<u8>); 3] = [
        ("big", 200, "text/plain", big),
        ("moved", 301, "text/plain", refusing.clone().into_bytes()),
        ("html", 200, "text/html", refusing.clone().into_bytes()),
    ];
    for (i, (name, status, content_type, body)) in cases.iter().enumerate() {
        w.https().answer(*status, content_type, body);
        w.publish(name);
        let id = w.send(name);
        let send = w.event(&id, "Send");
        assert!(
            !send["reason"].to_string().contains("MTA-STS"),
            "{name}: {send}"
        );
        assert_eq!(w.https().requests().len(), i + 1, "{name}: fetched once");
    }
    w.https().policy(&policy("testing", &["mx.fabrikam.test"]));
    w.publish("good");
    let id = w.send("good");
    let send = w.event(&id, "Send");
    assert!(
        send["reason"]
            .to_string()
            .contains("MTA-STS testing (policy id good)"),
        "{send}"
    );
}

/// A policy is fetched once per TXT id: the same id uses the cache; a new id fetches again and
/// its policy applies.
#[test]
fn a_new_policy_id_triggers_a_refetch() {
    let w = world(true);
    w.https().policy(&policy("enforce", &["mx.fabrikam.test"]));
    w.publish("one");
    for subject in ["m1", "m2"] {
        let id = w.send(subject);
        let send = w.event(&id, "Send");
        assert!(
            send["reason"]
                .to_string()
                .contains("MTA-STS enforce (policy id one)"),
            "{send}"
        );
    }
    assert_eq!(w.https().requests().len(), 1, "the same id: cached");
    w.https().policy(&policy("testing", &["*.fabrikam.test"]));
    w.publish("two");
    let id = w.send("m3");
    let send = w.event(&id, "Send");
    assert!(
        send["reason"]
            .to_string()
            .contains("MTA-STS testing (policy id two)"),
        "{send}"
    );
    assert_eq!(w.https().requests().len(), 2, "a new id: fetched again");
    w.wait_delivered("m3");
}

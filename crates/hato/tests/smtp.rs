//! SMTP replies, limits and smuggling, against the real server over loopback sockets.

mod common;
use common::*;

fn ready(s: &Server) -> Smtp {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220 mx.hato.test"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    c
}

/// Sends a marker message to `to` and waits until each has it. The session commits a message
/// before its reply and the delivery agent takes the oldest due messages first, so once the
/// marker is delivered, any message queued before it has been queued and processed too: what
/// the mailboxes and the trace show then is final for everything before the marker.
fn deliver_marker(s: &Server, c: &mut Smtp, to: &[&str]) {
    let reply = c.send_mail("a@fabrikam.test", to, "Subject: marker\n\nafter the rest\n");
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    for rcpt in to {
        s.wait_for("the marker", || {
            s.mail(rcpt).iter().any(|m| m["subject"] == "marker")
        });
    }
}

fn contoso() -> Server {
    let s = Server::start_with("max_recipients = 3\nmax_message_size = 20000");
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    s.ok(&[
        "domain",
        "add",
        "relay.test",
        "--tenant",
        "contoso",
        "--type",
        "internal-relay",
    ]);
    s
}

#[test]
fn ehlo_lists_the_extensions() {
    let s = Server::start_with("max_message_size = 20000");
    let mut c = s.smtp();
    c.read_reply();
    let ehlo = c.cmd("EHLO client.test");
    for ext in [
        "250-SIZE 20000",
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(ext), "{ext} not in {ehlo}");
    }
    assert_eq!(
        c.cmd("VRFY alice"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 OK\r\n");
    assert_eq!(c.cmd("RSET"), "250 2.0.0 OK\r\n");
    assert!(c.cmd("QUIT").starts_with("221 2.0.0"));
    assert!(c.closed());
}

#[test]
fn recipient_replies() {
    let s = contoso();
    let mut c = ready(&s);
    assert!(
        c.cmd("MAIL FROM:<sender@fabrikam.test>")
            .starts_with("250 2.1.0")
    );
    assert_eq!(
        c.cmd("RCPT TO:<nobody@contoso.test>"),
        "550 5.4.1 Recipient address rejected: Access denied\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<someone@outside.test>"),
        "550 5.7.1 Unable to relay\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<Alice@CONTOSO.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<\"bob\"@contoso.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<unknown@relay.test>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<another@relay.test>"),
        "452 4.5.3 Too many recipients\r\n"
    );
    assert!(c.cmd("RCPT TO:<not an address>").starts_with("501"));
}

#[test]
fn size_limit_is_advertised_and_enforced() {
    let s = contoso();
    let mut c = ready(&s);
    assert_eq!(
        c.cmd("MAIL FROM:<a@fabrikam.test> SIZE=50000"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(c.cmd("MAIL FROM:<a@fabrikam.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@contoso.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = "x".repeat(100) + "\r\n";
    c.send(line.repeat(300).as_bytes());
    assert_eq!(
        c.cmd("."),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    // The session is still in step after the refusal.
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 OK\r\n");
    deliver_marker(&s, &mut c, &["alice@contoso.test"]);
    let subjects: Vec<String> = s
        .mail("alice@contoso.test")
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(subjects, ["marker"], "the refused message was delivered");
    assert_eq!(s.trace("").len(), 1, "the refused message was queued");
}

#[test]
fn syntax_and_sequence_errors() {
    let s = contoso();
    let mut c = s.smtp();
    c.read_reply();
    assert_eq!(
        c.cmd("MAIL FROM:<a@fabrikam.test>"),
        "503 5.5.1 Bad sequence of commands: send EHLO/HELO first\r\n"
    );
    assert!(c.cmd("HELO client.test").starts_with("250 mx.hato.test"));
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "503 5.5.1 Bad sequence of commands: need MAIL command\r\n"
    );
    assert_eq!(
        c.cmd("DATA"),
        "503 5.5.1 Bad sequence of commands: need MAIL command\r\n"
    );
    assert_eq!(c.cmd("FROB"), "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<a b@x>"),
        "501 5.1.7 Bad sender address syntax\r\n"
    );
    assert!(c.cmd("MAIL FROM:<a@fabrikam.test>").starts_with("250"));
    assert_eq!(
        c.cmd("MAIL FROM:<a@fabrikam.test>"),
        "503 5.5.1 Bad sequence of commands: sender already specified\r\n"
    );
    assert_eq!(c.cmd("DATA"), "554 5.5.1 No valid recipients\r\n");
    let long = format!("NOOP {}", "a".repeat(600));
    assert_eq!(
        c.cmd(&long),
        "500 5.5.2 Line too long (RFC 5321 4.5.3.1.4 allows 512 octets)\r\n"
    );
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 OK\r\n");
    assert!(c.cmd("AUTH PLAIN AGFAYg==").starts_with("502 5.5.1"));
}

#[test]
fn over_long_text_line_is_refused() {
    let s = contoso();
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<a@fabrikam.test>");
    c.cmd("RCPT TO:<alice@contoso.test>");
    c.cmd("DATA");
    c.send(format!("Subject: long\r\n\r\n{}\r\n", "y".repeat(1200)).as_bytes());
    assert!(c.cmd(".").starts_with("550 5.6.0"));
}

#[test]
fn pipelined_transaction_is_answered_in_order() {
    let s = contoso();
    let mut c = s.smtp();
    c.read_reply();
    c.send(b"EHLO p.test\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nRCPT TO:<nobody@contoso.test>\r\nDATA\r\n");
    assert!(c.read_reply().starts_with("250-"));
    assert!(c.read_reply().starts_with("250 2.1.0"));
    assert!(c.read_reply().starts_with("250 2.1.5"));
    assert!(c.read_reply().starts_with("550 5.4.1"));
    assert!(c.read_reply().starts_with("354"));
    c.send(b"Subject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n");
    assert!(c.read_reply().starts_with("250 2.6.0 <"));
    assert!(c.read_reply().starts_with("221"));
}

/// Each published smuggling end-of-data variant: the message is refused (bare CR/LF), and the
/// "smuggled" second transaction inside it is never executed.
#[test]
fn smtp_smuggling_is_impossible() {
    let s = contoso();
    let variants: [(&str, &[u8]); 9] = [
        ("LF.LF", b"\n.\n"),
        ("LF.CRLF", b"\n.\r\n"),
        ("CR.CR", b"\r.\r"),
        ("CRLF.LF", b"\r\n.\n"),
        ("CR.CRLF", b"\r.\r\n"),
        ("CRLF.CR", b"\r\n.\r"),
        ("LF.CR", b"\n.\r"),
        ("CR.LF", b"\r.\n"),
        ("CRLF.CRCRLF", b"\r\n.\r\r\n"),
    ];
    for (name, seq) in variants {
        let mut c = ready(&s);
        c.cmd("MAIL FROM:<a@fabrikam.test>");
        c.cmd("RCPT TO:<alice@contoso.test>");
        assert!(c.cmd("DATA").starts_with("354"));
        let mut data = format!("Subject: outer {name}\r\n\r\nhello").into_bytes();
        data.extend_from_slice(seq);
        data.extend_from_slice(
            format!("MAIL FROM:<ceo@contoso.test>\r\nRCPT TO:<bob@contoso.test>\r\nDATA\r\nSubject: smuggled {name}\r\n\r\nbad\r\n").as_bytes(),
        );
        c.send(&data);
        // Nothing has ended the data yet: the server waits quietly.
        c.send(b"\r\n.\r\n");
        let reply = c.read_reply();
        assert_eq!(reply, "550 5.6.11 Invalid characters\r\n", "variant {name}");
        assert_eq!(
            c.cmd("NOOP"),
            "250 2.0.0 OK\r\n",
            "variant {name}: session out of step"
        );
        c.cmd("QUIT");
    }
    let mut c = ready(&s);
    deliver_marker(&s, &mut c, &["alice@contoso.test", "bob@contoso.test"]);
    for mailbox in ["alice@contoso.test", "bob@contoso.test"] {
        let mail = s.mail(mailbox);
        assert_eq!(
            mail.len(),
            1,
            "a refused or smuggled message reached {mailbox}: {mail:?}"
        );
    }
    assert_eq!(
        s.trace("").len(),
        2,
        "refused messages leave no queue entry (only the marker's two rows)"
    );
}

#[test]
fn idle_timeout_closes_with_421() {
    let s = Server::start_with("idle_timeout_secs = 1");
    let mut c = s.smtp();
    c.read_reply();
    let started = std::time::Instant::now();
    let reply = c.read_reply();
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert!(c.closed());
}

#[test]
fn session_lifetime_is_capped() {
    let s = Server::start_with("session_timeout_secs = 2\nidle_timeout_secs = 60");
    let mut c = s.smtp();
    let started = std::time::Instant::now();
    assert!(c.read_reply().starts_with("220"));
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 OK\r\n");
    // The server ends the session itself at its deadline, long before the idle timeout (60 s)
    // would (a client that is never idle is `a_trickling_client_is_closed_at_the_session_timeout`).
    let reply = c.read_reply();
    let elapsed = started.elapsed();
    assert!(
        reply.starts_with("421 4.4.2 Session lasted too long"),
        "{reply:?} after {elapsed:?}"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(1900),
        "{elapsed:?}"
    );
    assert!(elapsed < std::time::Duration::from_secs(15), "{elapsed:?}");
    assert!(c.closed());
}

#[test]
fn connection_caps_each_have_their_reply() {
    let s = Server::start_with("max_connections_per_ip = 2");
    let mut a = s.smtp();
    let mut b = s.smtp();
    assert!(a.read_reply().starts_with("220") && b.read_reply().starts_with("220"));
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("421 4.7.0"), "per-IP cap");
    assert!(c.closed());
    // The slot is freed when the server is done with the connection: after QUIT, once it has
    // closed it (and a client may still race the release, so it tries again until let in).
    assert!(a.cmd("QUIT").starts_with("221"));
    assert!(a.closed());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut d = s.smtp();
        let banner = d.read_reply();
        if banner.starts_with("220") {
            break;
        }
        assert!(banner.starts_with("421 4.7.0"), "{banner}");
        assert!(
            std::time::Instant::now() < deadline,
            "a freed slot was never reusable"
        );
    }

    let s = Server::start_with("max_connections = 2\nmax_connections_per_ip = 10");
    let mut a = s.smtp();
    let mut b = s.smtp();
    assert!(a.read_reply().starts_with("220") && b.read_reply().starts_with("220"));
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("421 4.3.2"), "total cap");
}

#[test]
fn starttls_with_python_smtplib() {
    let s = contoso();
    let out = python(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
host, port = sys.argv[1].rsplit(':', 1)
with smtplib.SMTP(host, int(port)) as c:
    c.ehlo('py.test')
    assert c.has_extn('starttls')
    c.starttls(context=ctx)
    c.ehlo('py.test')
    assert not c.has_extn('starttls')
    msg = 'From: py@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: over tls\r\nMessage-ID: <tls-1@fabrikam.test>\r\n\r\nsecret\r\n'
    code, resp = c.docmd('MAIL', 'FROM:<py@fabrikam.test>')
    assert code == 250
    c.rcpt('alice@contoso.test')
    code, resp = c.data(msg)
    print(code, resp.decode())
"#,
        &[&s.smtp.to_string()],
    );
    assert!(out.starts_with("250 2.6.0 <"), "{out}");
    s.wait_for("delivery", || s.mail("alice@contoso.test").len() == 1);
    let id = s.mail("alice@contoso.test")[0]["id"].as_i64().unwrap();
    let raw = s.raw_mail("alice@contoso.test", id);
    assert!(
        raw.starts_with(
            "Return-Path: <py@fabrikam.test>\r\nReceived: from py.test (localhost [127.0.0.1])"
        ),
        "{raw}"
    );
    assert!(raw.contains("with ESMTPS"), "{raw}");
    assert!(raw.contains("(version=TLS1.3, cipher=TLS13_"), "{raw}");
    let rows = s.trace("message_id=tls-1@fabrikam.test");
    assert_eq!(rows.len(), 1);
    let detail = s
        .api(
            "GET",
            &format!("/api/v1/trace/{}", rows[0]["trace_id"].as_str().unwrap()),
            None,
        )
        .1;
    assert!(
        detail[0]["detail"].as_str().unwrap().contains("TLS1.3"),
        "{detail}"
    );
}

#[test]
fn swaks_plain_and_tls() {
    let s = contoso();
    let server = s.smtp.to_string();
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "swaks@fabrikam.test",
        "--to",
        "alice@contoso.test,bob@contoso.test",
        "--header",
        "Subject: via swaks",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("250 2.6.0 <"), "{out}");
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "-tls",
        "--from",
        "swaks@fabrikam.test",
        "--to",
        "alice@contoso.test",
        "--header",
        "Subject: via swaks tls",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("TLS started"), "{out}");
    let (ok, out) = swaks(&[
        "--server",
        &server,
        "--from",
        "swaks@fabrikam.test",
        "--to",
        "nobody@contoso.test",
    ]);
    assert!(!ok);
    assert!(
        out.contains("550 5.4.1 Recipient address rejected: Access denied"),
        "{out}"
    );
    s.wait_for("delivery", || {
        s.mail("alice@contoso.test").len() == 2 && s.mail("bob@contoso.test").len() == 1
    });
}

#[test]
fn smtputf8_addresses() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("jürgen@contoso.test", &[]);
    let out = python(
        r#"
import smtplib, sys
host, port = sys.argv[1].rsplit(':', 1)
with smtplib.SMTP(host, int(port)) as c:
    c.ehlo('py.test')
    assert c.has_extn('smtputf8')
    msg = 'From: müller@fabrikam.test\r\nTo: jürgen@contoso.test\r\nSubject: grüße\r\n\r\nhallo\r\n'.encode('utf-8')
    c.sendmail('müller@fabrikam.test', ['Jürgen@contoso.test'], msg, mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
    print('sent')
"#,
        &[&s.smtp.to_string()],
    );
    assert_eq!(out.trim(), "sent");
    s.wait_for("delivery", || s.mail("jürgen@contoso.test").len() == 1);
    let rows = s.trace("recipient=jürgen@contoso.test");
    assert_eq!(rows[0]["sender"], "müller@fabrikam.test");
    assert_eq!(rows[0]["subject"], "grüße");
    // Without SMTPUTF8, a non-ASCII address is refused.
    let mut c = ready(&s);
    assert!(
        c.cmd("MAIL FROM:<müller@fabrikam.test>")
            .starts_with("553 5.6.7")
    );
    // An internationalised domain added by its A-label answers to its U-label too (and back).
    s.ok(&["domain", "add", "xn--bcher-kva.test", "--tenant", "contoso"]);
    s.mailbox("info@bücher.test", &[]);
    let mut c = ready(&s);
    assert!(c.cmd("MAIL FROM:<a@fabrikam.test>").starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<info@xn--bcher-kva.test>")
            .starts_with("250"),
        "A-label"
    );
    c.cmd("RSET");
    assert!(
        c.cmd("MAIL FROM:<a@fabrikam.test> SMTPUTF8")
            .starts_with("250")
    );
    assert!(
        c.cmd("RCPT TO:<info@bücher.test>").starts_with("250"),
        "U-label"
    );
}

/// A client that pipelines commands and never reads its replies: once the server cannot write
/// for the command timeout, it gives up on the client (which then finds its connection reset),
/// and other clients are served meanwhile.
#[test]
fn a_client_that_never_reads_is_disconnected() {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let s = Server::start_with("idle_timeout_secs = 2\nsession_timeout_secs = 600");
    let stream = std::net::TcpStream::connect(s.smtp).unwrap();
    // A guard for the test itself: without the fix the writes block until this fires.
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let lines = std::sync::Arc::new(AtomicUsize::new(0));
    let sent = lines.clone();
    let writer = std::thread::spawn(move || {
        let mut stream = stream;
        let chunk = b"HELP\r\n".repeat(10_000);
        // 200,000 HELP lines, then more until the server gives up (or the guard fires).
        loop {
            if let Err(e) = stream.write_all(&chunk) {
                return (started.elapsed(), e.kind());
            }
            sent.fetch_add(10_000, Ordering::SeqCst);
            if started.elapsed() > Duration::from_secs(60) {
                return (started.elapsed(), std::io::ErrorKind::Other);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines.load(Ordering::SeqCst) < 20_000 {
        assert!(Instant::now() < deadline, "the server reads nothing");
        std::thread::yield_now();
    }
    // Another client is answered while the first one's replies pile up.
    let t0 = Instant::now();
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO other.test").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let (when, kind) = writer.join().unwrap();
    assert!(
        !matches!(
            kind,
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Other
        ),
        "the server kept the connection of a client that never reads ({kind:?} after {when:?}, {} lines sent)",
        lines.load(Ordering::SeqCst)
    );
    // The command timeout (2 s) after the replies stopped flowing, plus a margin.
    assert!(
        when < Duration::from_secs(10),
        "disconnected only after {when:?}"
    );
    assert!(lines.load(Ordering::SeqCst) >= 20_000);
}

/// A client that is never idle long enough for the command timeout (one byte every 300 ms) is
/// still closed when the session's time is up.
#[test]
fn a_trickling_client_is_closed_at_the_session_timeout() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let s = Server::start_with("idle_timeout_secs = 2\nsession_timeout_secs = 3");
    let mut c = s.smtp();
    let started = Instant::now();
    assert!(c.read_reply().starts_with("220"));
    let mut stream = c.writer();
    let trickle = std::thread::spawn(move || {
        // Part of a command line that never ends: no reply is due, and the client is never
        // silent for the command timeout.
        for b in b"NOOP ".iter().chain(std::iter::repeat(&b'a')).take(100) {
            if stream.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let reply = c.read_reply();
    let elapsed = started.elapsed();
    assert!(
        reply.starts_with("421 4.4.2 Session lasted too long"),
        "{reply:?} after {elapsed:?}"
    );
    assert!(elapsed >= Duration::from_millis(2900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    assert!(c.closed());
    trickle.join().unwrap();
}

/// RFC 5321 §4.5.1 and RFC 2142: `<postmaster>` (no domain) and `postmaster@`/`abuse@` of an
/// accepted domain (reserved: no recipient can have them) go to the platform's postmaster
/// mailbox (`smtp.postmaster`); `MAIL FROM:<postmaster>` is not the null sender.
#[test]
fn postmaster_mail_goes_to_the_platform_postmaster() {
    let s = Server::start_with("postmaster = \"pm@platform.test\"");
    s.tenant("platform");
    s.mailbox("pm@platform.test", &[]);
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.tenant("fabrikam");
    let mut c = ready(&s);
    assert_eq!(
        c.cmd("MAIL FROM:<postmaster>"),
        "501 5.1.7 Bad sender address syntax: a reverse-path needs a domain (RFC 5321 4.1.2)\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<alice@contoso.test>"),
        "503 5.5.1 Bad sequence of commands: need MAIL command\r\n",
        "MAIL FROM:<postmaster> must not start a transaction"
    );
    let mut trace_ids = Vec::new();
    for (to, subject) in [
        ("PostMaster", "to bare postmaster"),
        ("Postmaster@Contoso.test", "to contoso's postmaster"),
        ("abuse@contoso.test", "an abuse report"),
        ("postmaster@fabrikam.test", "to fabrikam's postmaster"),
    ] {
        let reply = c.send_mail("", &[to], &format!("Subject: {subject}\n\nhello\n"));
        assert!(reply.starts_with("250 2.6.0"), "{to}: {reply}");
        trace_ids.push(trace_id_of(&reply));
    }
    // postmaster@ and abuse@ of every domain are reserved for the platform: no tenant mailbox
    // can take them, so they all reach the platform's postmaster.
    s.wait_for("delivery", || s.mail("pm@platform.test").len() == 4);
    let mut subjects: Vec<String> = s
        .mail("pm@platform.test")
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "an abuse report",
            "to bare postmaster",
            "to contoso's postmaster",
            "to fabrikam's postmaster"
        ]
    );
    let rows = s.trace(&format!("trace_id={}", trace_ids[0]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["recipient"], "postmaster");
    assert_eq!(rows[0]["status"], "Delivered");
    let rows = s.trace(&format!("trace_id={}", trace_ids[1]));
    assert_eq!(rows[0]["recipient"], "postmaster@contoso.test");
    // Other unknown recipients of an authoritative domain are still refused.
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<a@outside.test>");
    assert!(
        c.cmd("RCPT TO:<nobody@contoso.test>")
            .starts_with("550 5.4.1")
    );
}

/// Without a platform postmaster mailbox, `<postmaster>` mail is accepted and waits in the queue
/// (a `Defer` event says why, once), also across a crash; once one is configured it is
/// delivered, byte for byte. The message is large, so its content waits as a queue file.
#[test]
fn postmaster_mail_waits_until_a_postmaster_is_configured() {
    let mut s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut body =
        String::from("Subject: for the postmaster\r\nMessage-ID: <pm-1@outside.test>\r\n\r\n");
    while body.len() < 3 * 1024 * 1024 {
        body.push_str("a long report line for the postmaster, repeated many times over\r\n");
    }
    let mut c = ready(&s);
    let reply = c.send_mail("reporter@outside.test", &["postmaster"], &body);
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    let trace_id = trace_id_of(&reply);
    let detail = |s: &Server| s.api("GET", &format!("/api/v1/trace/{trace_id}"), None).1;
    s.wait_for("the Defer event", || {
        detail(&s).as_array().is_some_and(|events| {
            events.iter().any(|e| {
                e["event"] == "Defer"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("No platform postmaster mailbox is configured"))
            })
        })
    });
    assert_eq!(
        s.trace("message_id=pm-1@outside.test")[0]["status"],
        "Pending"
    );
    assert_eq!(files_under(&s.data_dir().join("queue")), 1);

    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("[smtp]\n", "[smtp]\npostmaster = \"alice@contoso.test\"\n"),
    )
    .unwrap();
    s.restart();
    s.wait_for("delivery to the configured postmaster", || {
        s.mail("alice@contoso.test").len() == 1
    });
    let items = s.mail("alice@contoso.test");
    let raw = s.raw_mail("alice@contoso.test", items[0]["id"].as_i64().unwrap());
    let at = raw.find("Subject: for the postmaster\r\n").unwrap();
    assert_eq!(&raw[at..], body);
    assert_eq!(
        s.trace("message_id=pm-1@outside.test")[0]["status"],
        "Delivered"
    );
    let defers = detail(&s)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "Defer")
        .count();
    assert_eq!(defers, 1, "one Defer event per reason, not per retry");
    s.wait_for("the queue file to go", || {
        files_under(&s.data_dir().join("queue")) == 0
    });
}

#[test]
fn hatos_own_headers_from_outside_are_removed_in_memory_and_spooled() {
    // A spool threshold of 4 KiB: the second message goes to a spool file while it arrives.
    let s = Server::start_with("spool_threshold_bytes = 4096");
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let forged = "X-Hato-Antispam-Report: CIP:1.2.3.4;SCL:-1;SFV:SKN;\r\n\
                  \tIPV:CAL;\r\n\
                  Authentication-Results: mx.hato.test; spf=pass smtp.mailfrom=bank.test\r\n\
                  Authentication-Results: mx.bank.test; dkim=pass\r\n\
                  X-HATO-Verdict: clean\r\n";
    for (n, filler) in [(1, 0), (2, 200_000)] {
        let mut c = ready(&s);
        let body = format!(
            "Subject: forged {n}\r\n{forged}From: a@bank.test\r\n\r\nX-Hato-Antispam-Report: body line\r\n{}\r\n",
            vec!["b".repeat(900); filler / 900].join("\r\n")
        );
        let reply = c.send_mail("a@bank.test", &["alice@contoso.test"], &body);
        assert!(reply.starts_with("250 2.6.0"), "{reply}");
        c.cmd("QUIT");
    }
    s.wait_for("two deliveries", || s.mail("alice@contoso.test").len() == 2);
    for m in s.mail("alice@contoso.test") {
        let raw = s.raw_mail("alice@contoso.test", m["id"].as_i64().unwrap());
        let head = raw.split("\r\n\r\n").next().unwrap_or_default();
        // Only hato's own report is left: the forged fields are gone.
        assert_eq!(
            head.to_ascii_lowercase().matches("x-hato-").count(),
            1,
            "{head}"
        );
        assert!(
            head.contains("X-Hato-Antispam-Report: CIP:127.0.0.1;"),
            "{head}"
        );
        assert!(
            !head.contains("1.2.3.4") && !head.contains("IPV:CAL"),
            "{head}"
        );
        // The forged one is gone; hato's own (the spam filter's) is the only one claiming
        // this server.
        assert!(
            !head
                .contains("Authentication-Results: mx.hato.test; spf=pass smtp.mailfrom=bank.test"),
            "{head}"
        );
        assert!(
            head.matches("Authentication-Results: mx.hato.test;")
                .count()
                <= 1,
            "{head}"
        );
        // What is not ours stays, and so does the body.
        assert!(
            head.contains("Authentication-Results: mx.bank.test; dkim=pass"),
            "{head}"
        );
        assert!(raw.contains("\r\n\r\nX-Hato-Antispam-Report: body line\r\n"));
    }
}

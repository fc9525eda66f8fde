//! 250 means durable: kill the server (SIGKILL) right after the last acknowledged message, restart
//! it, and find every acknowledged message delivered exactly once.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[test]
fn acknowledged_mail_survives_sigkill_exactly_once() {
    let mut s = Server::start_with("max_connections_per_ip = 100");
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    const THREADS: usize = 8;
    const PER_THREAD: usize = 40;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let addr = s.smtp;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut c = Smtp::connect(addr);
                c.read_reply();
                c.cmd("EHLO crash.test");
                for i in 0..PER_THREAD {
                    let subject = format!("crash-{t}-{i}");
                    let reply = c.send_mail(
                        "x@fabrikam.test",
                        &["alice@contoso.test", "bob@contoso.test"],
                        &format!("Subject: {subject}\n\nbody {t} {i}\n"),
                    );
                    if reply.starts_with("250 2.6.0") {
                        acked.lock().unwrap().push(subject);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Kill at once: delivery of the last messages is surely still under way.
    s.kill();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), THREADS * PER_THREAD);
    s.restart();
    for mailbox in ["alice@contoso.test", "bob@contoso.test"] {
        // Every recipient out of Pending: the agent has nothing left to deliver, so no copy
        // can still arrive and the counts below are final.
        s.wait_for("all delivered after restart", || {
            s.mail(mailbox).len() >= acked.len() && s.trace("status=Pending").is_empty()
        });
        let mut seen: HashMap<String, usize> = HashMap::new();
        for item in s.mail(mailbox) {
            *seen
                .entry(item["subject"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        for subject in &acked {
            assert_eq!(seen.get(subject), Some(&1), "{subject} in {mailbox}");
        }
        assert_eq!(seen.len(), acked.len());
    }
    assert!(s.trace("status=Pending").is_empty());
    assert_eq!(
        s.trace("status=Delivered&page_size=5000").len(),
        2 * acked.len()
    );
}

#[test]
fn queued_mail_is_delivered_after_a_restart_and_a_clean_stop_exits_zero() {
    let mut s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut c = s.smtp();
    c.read_reply();
    c.cmd("EHLO x");
    assert!(
        c.send_mail(
            "x@fabrikam.test",
            &["alice@contoso.test"],
            "Subject: before stop\n\nx\n"
        )
        .starts_with("250")
    );
    drop(c);
    let status = s.stop();
    assert!(
        status.success(),
        "SIGTERM should stop hato cleanly: {status}"
    );
    s.restart();
    s.wait_for("delivery", || s.mail("alice@contoso.test").len() == 1);
}

/// A message larger than the spool threshold travels as a file: acknowledged, then SIGKILL,
/// then a restart, and it is delivered once, byte for byte; a spool file left by a crash before
/// its message was committed is removed at start-up; no queue file outlives its delivery.
#[test]
fn a_large_message_survives_sigkill_and_leaves_no_files() {
    let mut s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut body = String::from("Subject: large\r\nMessage-ID: <large-1@fabrikam.test>\r\n\r\n");
    let mut i = 0;
    while body.len() < 3 * 1024 * 1024 {
        body.push_str(&format!(
            "line {i:07} of a three-megabyte message, long enough\r\n"
        ));
        i += 1;
    }
    let mut c = s.smtp();
    c.read_reply();
    c.cmd("EHLO crash.test");
    let reply = c.send_mail("x@fabrikam.test", &["alice@contoso.test"], &body);
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    s.kill();
    let queued_at_kill = files_under(&s.data_dir().join("queue"));
    // A crash in the middle of receiving another large message left its spool file.
    std::fs::write(
        s.data_dir().join("spool").join("4242-7"),
        b"Subject: half\r\n",
    )
    .unwrap();
    s.restart();
    assert_eq!(
        files_under(&s.data_dir().join("spool")),
        0,
        "a stale spool file survived"
    );
    s.wait_for("delivery after restart", || {
        s.mail("alice@contoso.test").len() == 1
    });
    s.wait_for("the queue file to go", || {
        files_under(&s.data_dir().join("queue")) == 0
    });
    let items = s.mail("alice@contoso.test");
    assert_eq!(items.len(), 1, "delivered more than once");
    let raw = s.raw_mail("alice@contoso.test", items[0]["id"].as_i64().unwrap());
    let at = raw.find("Subject: large\r\n").expect("the message");
    assert_eq!(
        &raw[at..],
        body,
        "content changed (queue file had {queued_at_kill} file(s) at kill)"
    );
    let rows = s.trace("message_id=large-1@fabrikam.test");
    assert_eq!(rows[0]["status"], "Delivered");
}

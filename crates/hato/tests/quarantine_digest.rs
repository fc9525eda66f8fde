//! End-user quarantine notifications against the real `hato serve`: with notifications on and
//! a short interval, a recipient with a message held as spam gets a digest in their Inbox;
//! its release link, followed with an HTTP client, shows the message (GET) and releases it
//! (POST) into the Inbox, with `Release` by the recipient in trace; the link works once. A
//! recipient whose copy is held as malware (admin-only) gets no digest.
//!
//! The held message is queued while the server is stopped, its recipients carrying a stage's
//! quarantine decision as `Inbound` queues them (no stage makes spam verdicts yet), and the
//! restarted server's own delivery agent quarantines them (as `tests/quarantine.rs` does).

mod common;

use common::{Server, http_raw};
use hato_core::directory::Route;
use hato_core::{Clock, Reason, Stage, SystemClock};
use hato_store::*;
use mail_parser::MessageParser;

const HELD_TRACE_ID: &str = "0193a1b2-0000-7000-8000-0000000000d1";

fn queue_held_message(s: &mut Server) {
    s.stop();
    {
        let store = SqliteStore::open(&s.data_dir()).expect("store");
        let mailbox = |a: &str| store.mailbox_by_address(a).expect("read").expect("mailbox");
        let (alice, aaron) = (mailbox("alice@contoso.test"), mailbox("aaron@contoso.test"));
        let rcpt = |m: &hato_core::directory::Mailbox, kind, stage| NewRecipient {
            address: m.address.clone(),
            tenant_id: m.tenant_id,
            route: Route::Local(m.id),
            extra_events: vec![],
            receive_reason: None,
            finished: None,
            stamp: String::new(),
            junk: false,
            quarantine: Some(QuarantineHold {
                kind,
                policy: "Default".into(),
                reason: Reason::new(stage, "held by the test"),
                days: None,
                // Notifications on (ESNEnabled): only such items are in a digest, of any
                // kind (malware with a release request link, never a release).
                quarantine_policy: Some("DefaultFullAccessWithNotificationPolicy".into()),
            }),
            connector: None,
            dsn: Default::default(),
        };
        store
            .enqueue(NewMessage {
                trace_id: HELD_TRACE_ID.into(),
                received: SystemClock.now(),
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some("cheap watches".into()),
                content:
                    b"From: mallory@fabrikam.test\r\nSubject: cheap watches\r\n\r\nbuy now\r\n"
                        .to_vec(),
                spooled: None,
                recipients: vec![
                    rcpt(&alice, QuarantineKind::Spam, Stage::Spam),
                    rcpt(&aaron, QuarantineKind::Malware, Stage::Malware),
                ],
                receive_detail: "received".into(),
                reports_on: vec![],
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                dsn: Default::default(),
                high_risk: false,
            })
            .wait()
            .expect("enqueue");
    }
    s.restart();
}

fn form(s: &Server, path_and_query: &str, method: &str, body: &str) -> (u16, String) {
    let headers = if method == "POST" {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    } else {
        ""
    };
    let (status, bytes) = http_raw(s.admin, method, path_and_query, headers, body);
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn a_digest_is_delivered_and_its_release_link_releases_the_message() {
    let mut s = Server::start_with_config(
        "",
        "",
        "[quarantine]\nnotification_interval_secs = 1\nend_user_spam_notifications = true\n\
         end_user_spam_notification_frequency = 1\n",
    );
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("aaron@contoso.test", &[]);
    queue_held_message(&mut s);

    let mut digest_id = None;
    s.wait_for("alice's digest", || {
        digest_id = s
            .mail("alice@contoso.test")
            .iter()
            .find(|m| m["subject"] == "You have 1 new message in quarantine")
            .and_then(|m| m["id"].as_i64());
        digest_id.is_some()
    });
    let raw = s.raw_mail("alice@contoso.test", digest_id.expect("digest"));
    let msg = MessageParser::new().parse(raw.as_bytes()).expect("parses");
    let text = msg.body_text(0).expect("text part").into_owned();
    assert!(text.contains("Subject: cheap watches"), "{text}");
    assert!(text.contains("Sender: mallory@fabrikam.test"), "{text}");
    let link = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("Release: "))
        .expect("a release link")
        .to_string();
    let prefix = format!("http://{}/quarantine/release?t=", s.admin);
    assert!(link.starts_with(&prefix), "{link}");
    let token = &link[prefix.len()..];
    // Aaron's copy is malware, under a policy with notifications: his digest lists it with a
    // link that only requests its release (tests/console_s11.rs follows such a link).
    let mut aarons = None;
    s.wait_for("aaron's digest", || {
        aarons = s
            .mail("aaron@contoso.test")
            .iter()
            .find(|m| m["subject"] == "You have 1 new message in quarantine")
            .and_then(|m| m["id"].as_i64());
        aarons.is_some()
    });
    let raw = s.raw_mail("aaron@contoso.test", aarons.expect("digest"));
    let aaron_text = MessageParser::new()
        .parse(raw.as_bytes())
        .expect("parses")
        .body_text(0)
        .expect("text part")
        .into_owned();
    assert!(
        aaron_text.contains("Request release: ") && !aaron_text.contains("\nRelease: "),
        "{aaron_text}"
    );

    // Following the link shows the message and changes nothing.
    let path = &link[format!("http://{}", s.admin).len()..];
    let (status, page) = form(&s, path, "GET", "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<dd>cheap watches</dd>"), "{page}");
    assert!(
        page.contains("<button type=\"submit\">Release</button>"),
        "{page}"
    );
    assert!(
        !s.mail("alice@contoso.test")
            .iter()
            .any(|m| m["subject"] == "cheap watches")
    );
    // Pressing the button releases it to the Inbox.
    let (status, page) = form(&s, "/quarantine/release", "POST", &format!("t={token}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("released to the Inbox of alice@contoso.test"),
        "{page}"
    );
    let released = s
        .mail("alice@contoso.test")
        .into_iter()
        .find(|m| m["subject"] == "cheap watches")
        .expect("released into the mailbox");
    assert_eq!(released["folder"], "inbox", "{released}");
    let events: Vec<String> = s
        .events(HELD_TRACE_ID, "alice@contoso.test")
        .iter()
        .map(|e| format!("{} {}", e["event"], e["detail"]))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("Release") && e.contains("by alice@contoso.test")),
        "{events:?}"
    );
    // Once.
    let (status, page) = form(&s, "/quarantine/release", "POST", &format!("t={token}"));
    assert_eq!(status, 409, "{page}");
}

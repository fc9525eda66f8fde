//! `ESNEnabled` drives the end-user quarantine notification, as in Exchange: against the real
//! `hato serve` (test clock, notifications switched on for the server, a pass every second),
//! two anti-spam policies quarantine high confidence spam (GTUBE over SMTP) for alice under
//! `NotificationEnabledPolicy` and for bob under `DefaultFullAccessPolicy`. Alice gets a digest
//! in her Inbox; bob, whose item's quarantine policy has no notifications, gets none. After the
//! clock moves past the frequency, new spam gives alice a second digest and bob still none.

mod common;
use common::*;
use serde_json::json;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The subjects of the digests in `address`'s mailbox.
fn digests(s: &Server, address: &str) -> Vec<String> {
    s.mail(address)
        .iter()
        .filter_map(|m| m["subject"].as_str().map(str::to_string))
        .filter(|subject| subject.contains("in quarantine"))
        .collect()
}

/// The digests trace shows queued for `address` (delivered or not).
fn digests_in_trace(s: &Server, address: &str) -> usize {
    s.trace(&format!("recipient={address}"))
        .iter()
        .filter(|r| {
            r["subject"]
                .as_str()
                .is_some_and(|subject| subject.contains("in quarantine"))
        })
        .count()
}

/// GTUBE to alice and bob in one message; waits until both copies are held.
fn spam(s: &Server, subject: &str) {
    let reply = send_mime(
        s,
        json!({"from": "mallory@fabrikam.test",
               "to": ["alice@contoso.test", "bob@contoso.test"],
               "subject": subject, "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.wait_for(&format!("{subject} held for both"), || {
        let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["subject"] == subject)
            .count()
            == 2
    });
}

#[test]
fn only_the_recipient_whose_quarantine_policy_notifies_gets_a_digest() {
    let s = Server::start_with_config(
        "",
        "",
        "[quarantine]\nnotification_interval_secs = 1\nend_user_spam_notifications = true\n\
         end_user_spam_notification_frequency = 1\n\n[testing]\nmanual_clock = true\n",
    );
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    for (name, who, tag) in [
        ("Alice's", "alice@contoso.test", "NotificationEnabledPolicy"),
        ("Bob's", "bob@contoso.test", "DefaultFullAccessPolicy"),
    ] {
        s.ok(&[
            "spam-filter",
            "add",
            name,
            "--tenant",
            "contoso",
            "--sent-to",
            who,
            "--high-confidence-spam-action",
            "quarantine",
            "--high-confidence-spam-quarantine-tag",
            tag,
        ]);
    }
    spam(&s, "cheap watches");
    let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
    for it in v["items"].as_array().expect("items") {
        let want = if it["recipient"] == "alice@contoso.test" {
            "NotificationEnabledPolicy"
        } else {
            "DefaultFullAccessPolicy"
        };
        assert_eq!(it["quarantine_policy"], want, "{it}");
    }

    s.wait_for("alice's digest", || {
        digests(&s, "alice@contoso.test").len() == 1
    });
    assert_eq!(
        digests(&s, "alice@contoso.test"),
        ["You have 1 new message in quarantine"]
    );
    // A pass takes recipients by address and queues each one's digest before the next: one
    // for bob would be in trace by the time alice's is delivered. Bob has only the spam; and
    // a few more passes (one a second) bring him nothing.
    assert_eq!(digests_in_trace(&s, "bob@contoso.test"), 0);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(digests(&s, "bob@contoso.test").is_empty());
    assert!(s.mail("bob@contoso.test").is_empty());

    // Past the frequency (a day): new spam, a second digest for alice, still none for bob.
    s.advance_clock(2 * 86_400);
    spam(&s, "cheaper watches");
    s.wait_for("alice's second digest", || {
        digests(&s, "alice@contoso.test").len() == 2
    });
    assert_eq!(digests_in_trace(&s, "bob@contoso.test"), 0);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(s.mail("bob@contoso.test").is_empty());
}

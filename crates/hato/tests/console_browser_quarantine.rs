//! The console's Quarantine section in a real browser (Debian's chromium through
//! chromium-driver, `tests/browser/quarantine.py`): an EICAR message and a high-confidence-spam
//! message quarantined by the real pipeline; the admin releases the spam one and sees it
//! delivered in message trace; the user is refused the malware one (the page says why) and
//! reports a Junk Email message as not junk. Screenshots `quarantine-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::{Value, json};

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "browser-test-pw";

#[test]
fn release_as_admin_refused_as_user_for_malware_and_not_junk() {
    if !browser::available() {
        return;
    }
    let s = console::admin_and_user_fixture(PASSWORD);
    // First under the default policy: high confidence spam to Junk Email.
    let reply = send_mime(
        &s,
        json!({"from": "news@outside.test", "to": ["user@contoso.test"],
               "subject": "weekly offers", "body": format!("{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.wait_for("the message in Junk Email", || {
        s.mail("user@contoso.test")
            .iter()
            .any(|m| m["folder"] == "junk")
    });
    // Then a policy that quarantines it, and the malware filter's EICAR.
    s.ok(&[
        "spam-filter",
        "add",
        "Strict",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--sent-to",
        "user@contoso.test",
    ]);
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-action",
        "quarantine",
    ]);
    for spec in [
        json!({"from": "spammer@outside.test", "to": ["user@contoso.test"],
               "subject": "<script>x</script> spam for release", "body": format!("{GTUBE}\n")}),
        json!({"from": "mallory@outside.test", "to": ["user@contoso.test"],
               "subject": "invoice", "attachments": [{"name": "eicar.com", "text": EICAR}]}),
    ] {
        let reply = send_mime(&s, spec);
        assert!(reply.starts_with("250 "), "{reply}");
    }
    let mut items: Vec<Value> = Vec::new();
    s.wait_for("two quarantined items", || {
        let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        items = v["items"].as_array().cloned().unwrap_or_default();
        items.len() == 2
    });
    let id = |kind: &str| {
        items
            .iter()
            .find(|i| i["kind"] == kind)
            .and_then(|i| i["id"].as_i64())
            .expect("item")
            .to_string()
    };
    let shots = browser::screenshot_dir();
    browser::run(
        "quarantine.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "user@contoso.test",
            PASSWORD,
            &id("high-confidence-spam"),
            &id("malware"),
            &shots.to_string_lossy(),
        ],
    );
    // Delivered after the release (the browser saw it in trace; the mailbox has it).
    assert!(
        s.mail("user@contoso.test")
            .iter()
            .any(|m| m["subject"] == "<script>x</script> spam for release")
    );
    for name in [
        "quarantine-01-list",
        "quarantine-03-released",
        "quarantine-06-user-refused-malware",
        "quarantine-08-not-junk-in-inbox",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

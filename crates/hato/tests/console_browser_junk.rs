//! Junk email settings in a real browser (Debian's chromium through chromium-driver,
//! `tests/browser/junk.py`): a high-confidence-spam message quarantined by the real pipeline;
//! the user allows its sender from the item's page, sees it on the "Junk email settings" tab,
//! adds and removes a blocked domain; the admin opens the user's settings from Recipients.
//! Screenshots `junk-NN-*.png` go to `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

const PASSWORD: &str = "browser-test-pw";

#[test]
fn a_user_allows_a_quarantined_sender_and_edits_the_lists_in_a_browser() {
    if !browser::available() {
        return;
    }
    let (s, id) = browser::admin_and_user_with_held_spam(PASSWORD, None, "allow me");
    let shots = browser::screenshot_dir();
    browser::run(
        "junk.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "user@contoso.test",
            PASSWORD,
            &id,
            &shots.to_string_lossy(),
        ],
    );
    let (_, v) = s.api(
        "GET",
        "/api/v1/mailboxes/user@contoso.test/junk-email-configuration",
        None,
    );
    assert_eq!(
        v["trusted_senders_and_domains"],
        json!(["spammer@outside.test"]),
        "{v}"
    );
    assert_eq!(v["blocked_senders_and_domains"], json!([]), "{v}");
    for name in [
        "junk-02-sender-allowed",
        "junk-03-user-settings",
        "junk-04-admin-view",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

//! The console's Recipients and Groups pages in a real browser (Debian's chromium through
//! chromium-driver, `tests/browser/people.py`): a tenant admin creates a mailbox, creates a
//! group and adds that mailbox, approves a message sent by SMTP to a moderated group in the
//! moderation queue and sees it delivered, watches a dynamic group's live preview list a
//! member, and switches to Japanese. Screenshots `people-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

#[test]
fn create_a_mailbox_and_a_group_approve_a_moderated_message_preview_a_dynamic_group() {
    if !browser::available() {
        return;
    }
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("admin@contoso.test", &["--password", "browser-test-pw"]);
    s.mailbox("member@contoso.test", &[]);
    for body in [
        json!({ "type": "security", "tenant": "contoso", "name": "Global Admins",
                 "owners": ["admin@contoso.test"], "members": ["admin@contoso.test"] }),
        json!({ "type": "distribution", "tenant": "contoso", "name": "Moderated",
                 "address": "moderated@contoso.test", "owners": ["admin@contoso.test"],
                 "members": ["member@contoso.test"], "moderation_enabled": true,
                 "require_sender_authentication": false }),
    ] {
        let (status, v) = s.api("POST", "/api/v1/groups", Some(body));
        assert_eq!(status, 201, "{v}");
    }
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/Global%20Admins/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/mailboxes/member@contoso.test",
        Some(json!({ "department": "Sales" })),
    );
    assert_eq!(status, 200, "{v}");
    let shots = browser::screenshot_dir();
    browser::run(
        "people.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "browser-test-pw",
            &s.smtp.ip().to_string(),
            &s.smtp.port().to_string(),
            &shots.to_string_lossy(),
        ],
    );
    // What the browser did, seen through the API.
    let (status, m) = s.api("GET", "/api/v1/mailboxes/newbie@contoso.test", None);
    assert_eq!(
        (status, m["display_name"].as_str()),
        (200, Some("Newbie <New>"))
    );
    let (_, g) = s.api("GET", "/api/v1/groups/team@contoso.test", None);
    assert_eq!(g["members"], json!(["newbie@contoso.test"]));
    let (_, held) = s.api("GET", "/api/v1/moderation", None);
    assert_eq!(held[0]["state"], "approved", "{held}");
    for name in [
        "people-01-new-mailbox",
        "people-02-mailbox",
        "people-03-mailboxes",
        "people-04-group-member",
        "people-05-moderation-queue",
        "people-06-delivered",
        "people-07-dynamic-preview",
        "people-08-groups-ja",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

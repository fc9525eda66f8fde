//! The web console in a real browser: Debian's chromium, headless, driven through
//! chromium-driver by Selenium (`tests/browser/console.py`). Signs in, sends a message by SMTP
//! and finds it in message trace, opens its detail and sees the events, switches to Japanese.
//! Screenshots of each page go to `target/console-screenshots/`.
//!
//! `scripts/test.sh` installs chromium, chromium-driver and Selenium when missing and sets
//! HATO_REQUIRE_BROWSER=1, which makes their absence a failure; elsewhere the test says it is
//! skipped.

mod common;
use common::*;
use serde_json::json;

#[test]
fn sign_in_trace_a_message_open_its_detail_and_switch_to_japanese() {
    if !browser::available() {
        return;
    }
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("admin@contoso.test", &["--password", "browser-test-pw"]);
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Global Admins",
                     "owners": ["admin@contoso.test"], "members": ["admin@contoso.test"] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/Global%20Admins/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    let mut smtp = s.smtp();
    assert!(smtp.read_reply().starts_with("220"));
    assert!(smtp.cmd("EHLO client.example").starts_with("250"));
    let reply = smtp.send_mail(
        "someone@outside.test",
        &["admin@contoso.test"],
        "Subject: <script>alert(1)</script>\r\n\r\nhello\r\n",
    );
    let trace_id = trace_id_of(&reply);
    s.wait_for("delivery", || {
        s.trace(&format!("trace_id={trace_id}"))
            .iter()
            .any(|r| r["status"] == "Delivered")
    });
    let shots = browser::screenshot_dir();
    browser::run(
        "console.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "browser-test-pw",
            &trace_id,
            &shots.to_string_lossy(),
        ],
    );
    for name in [
        "01-sign-in",
        "02-message-trace",
        "03-trace-detail",
        "06-message-trace-ja",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

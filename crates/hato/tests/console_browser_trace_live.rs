//! Message trace's live updates and saved queries in a real browser (Debian's chromium through
//! chromium-driver, `tests/browser/trace_live.py`): with a query open, mail sent by SMTP shows
//! up on the page by itself (htmx polling, no inline script), mail outside the query does not;
//! a query saved, run and deleted; Home. Screenshots `trace-live-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

const PASSWORD: &str = "browser-test-pw";

#[test]
fn new_mail_shows_up_on_an_open_trace_page_and_queries_are_saved() {
    if !browser::available() {
        return;
    }
    let s = Server::start();
    s.tenant("contoso");
    for m in [
        "admin@contoso.test",
        "alice@contoso.test",
        "bob@contoso.test",
    ] {
        s.mailbox(m, &["--password", PASSWORD]);
    }
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
    let reply = send_mime(
        &s,
        json!({"from": "sender@outside.test", "to": ["alice@contoso.test"],
               "subject": "before the page", "body": "hello"}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let shots = browser::screenshot_dir();
    browser::run(
        "trace_live.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            PASSWORD,
            &s.smtp.ip().to_string(),
            &s.smtp.port().to_string(),
            &shots.to_string_lossy(),
        ],
    );
    // The browser's message went through the real pipeline.
    assert!(
        s.trace("recipient=alice%40contoso.test")
            .iter()
            .any(|r| r["subject"] == "live for alice")
    );
    for name in [
        "trace-live-01-open",
        "trace-live-02-new-row",
        "trace-live-04-saved",
        "trace-live-05-home",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

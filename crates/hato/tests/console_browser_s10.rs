//! The live trace's expired session and the delist decisions in a real browser (Debian's
//! chromium through chromium-driver, `tests/browser/s10.py`): with a trace query open, the
//! server's test clock moved past the idle time sends the page by itself to the sign-in page
//! (htmx follows `HX-Redirect`), which leads back to the query; the operator approves a pending
//! delist request with its button. Screenshots `s10-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

const PASSWORD: &str = "browser-test-pw";

#[test]
fn an_expired_session_leaves_the_live_trace_for_sign_in_and_a_delist_request_is_approved() {
    if !browser::available() {
        return;
    }
    let s = Server::start_with_config("", "", "[testing]\nmanual_clock = true\n");
    s.tenant("contoso");
    for m in ["admin@contoso.test", "alice@contoso.test"] {
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
    s.wait_for("the message in trace", || {
        !s.trace("recipient=alice%40contoso.test").is_empty()
    });
    s.ok(&["blocklist", "add", "192.0.2.0/24", "--reason", "spam run"]);
    let (status, _) = http_raw(
        s.admin,
        "POST",
        "/delist",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "address=alice%40contoso.test&ip=192.0.2.7",
    );
    assert_eq!(status, 200);
    let shots = browser::screenshot_dir();
    browser::run(
        "s10.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            PASSWORD,
            &s.token,
            &shots.to_string_lossy(),
        ],
    );
    let (_, v) = s.api("GET", "/api/v1/blocklist", None);
    assert_eq!(v, json!([]), "the approval removed the entry");
    for name in [
        "s10-01-trace-open",
        "s10-02-signed-out",
        "s10-03-back",
        "s10-05-delist-approved",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

//! Release requests in a real browser (Debian's chromium through chromium-driver,
//! `tests/browser/quarantine_requests.py`): a high-confidence-spam message quarantined by the
//! real pipeline under a quarantine policy that grants only request release; the user asks, the
//! admin finds it under "Release requested" and denies it. Screenshots `qrequest-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;
use serde_json::json;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "browser-test-pw";

#[test]
fn a_user_requests_release_and_the_admin_denies_it_in_a_browser() {
    if !browser::available() {
        return;
    }
    let s = console::admin_and_user_fixture(PASSWORD);
    s.ok(&[
        "quarantine-policy",
        "add",
        "RequestOnly",
        "--tenant",
        "contoso",
        "--permissions",
        "request-release,preview",
    ]);
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
        "--high-confidence-spam-action",
        "quarantine",
        "--high-confidence-spam-quarantine-tag",
        "RequestOnly",
    ]);
    let reply = send_mime(
        &s,
        json!({"from": "spammer@outside.test", "to": ["user@contoso.test"],
               "subject": "please release me", "body": format!("{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let mut id = String::new();
    s.wait_for("the held message", || {
        let (_, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        if let Some(i) = v["items"][0]["id"].as_i64() {
            id = i.to_string();
        }
        !id.is_empty()
    });
    let shots = browser::screenshot_dir();
    browser::run(
        "quarantine_requests.py",
        &[
            &format!("http://{}", s.admin),
            "admin@contoso.test",
            "user@contoso.test",
            PASSWORD,
            &id,
            &shots.to_string_lossy(),
        ],
    );
    let (_, v) = s.api("GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("held"), Some("denied")),
        "{v}"
    );
    for name in ["qrequest-02-user-requested", "qrequest-05-admin-denied"] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

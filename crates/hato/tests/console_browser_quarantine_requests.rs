//! Release requests in a real browser (Debian's chromium through chromium-driver,
//! `tests/browser/quarantine_requests.py`): a high-confidence-spam message quarantined by the
//! real pipeline under a quarantine policy that grants only request release; the user asks, the
//! admin finds it under "Release requested" and denies it. Screenshots `qrequest-NN-*.png` go to
//! `target/console-screenshots/`.

mod common;
use common::*;

const PASSWORD: &str = "browser-test-pw";

#[test]
fn a_user_requests_release_and_the_admin_denies_it_in_a_browser() {
    if !browser::available() {
        return;
    }
    let (s, id) = browser::admin_and_user_with_held_spam(
        PASSWORD,
        Some(("RequestOnly", "request-release,preview")),
        "please release me",
    );
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

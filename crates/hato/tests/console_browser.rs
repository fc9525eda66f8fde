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
use std::path::PathBuf;
use std::process::Command;

fn browser_available() -> bool {
    std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success())
}

#[test]
fn sign_in_trace_a_message_open_its_detail_and_switch_to_japanese() {
    if !browser_available() {
        assert!(
            std::env::var("HATO_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromium, chromium-driver or Python selenium is missing"
        );
        eprintln!(
            "skipped: no chromium, chromium-driver or Python selenium (scripts/test.sh installs them)"
        );
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
    // target/console-screenshots/ of the workspace (CARGO_TARGET_DIR when set).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let shots = target.join("console-screenshots");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://{}", s.admin))
        .arg("admin@contoso.test")
        .arg("browser-test-pw")
        .arg(&trace_id)
        .arg(&shots)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
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

//! Real-browser tests of the web console: Debian's chromium, headless, driven through
//! chromium-driver by Python Selenium scripts under `tests/browser/` (each imports
//! `tests/browser/hato_browser.py` for the driver, sign-in, screenshots and the CSP check).
//!
//! `scripts/test.sh` installs chromium, chromium-driver and Selenium when missing and sets
//! HATO_REQUIRE_BROWSER=1, which makes their absence a failure; elsewhere a browser test says it
//! is skipped.

use std::path::PathBuf;
use std::process::Command;

/// Whether the browser, its driver and Selenium are here. Panics when they are missing and
/// HATO_REQUIRE_BROWSER=1 (the test command's run), so a missing browser never passes silently.
pub fn available() -> bool {
    let here = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !here {
        assert!(
            std::env::var("HATO_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromium, chromium-driver or Python selenium is missing"
        );
        eprintln!(
            "skipped: no chromium, chromium-driver or Python selenium (scripts/test.sh installs them)"
        );
    }
    here
}

/// `target/console-screenshots/` of the workspace (CARGO_TARGET_DIR when set).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

/// Runs `tests/browser/<script>` with `args` and asserts that it ended well (exit 0, and "ok"
/// as its last line). Returns its output.
pub fn run(script: &str, args: &[&str]) -> String {
    let path = format!("{}/tests/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the browser run of {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// GTUBE, the standard anti-spam test string (high confidence spam).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The browser tests' quarantine setup: contoso's `admin@` and `user@`
/// (`console::admin_and_user_fixture`), an anti-spam policy "Strict" for `user@` quarantining
/// high confidence spam (under `tag`, a quarantine policy made with its name and permissions,
/// when given), and one such message
/// from `spammer@outside.test` with `subject` held by the real pipeline. The server and the
/// held item's id.
pub fn admin_and_user_with_held_spam(
    password: &str,
    tag: Option<(&str, &str)>,
    subject: &str,
) -> (super::Server, String) {
    let s = super::console::admin_and_user_fixture(password);
    if let Some((name, permissions)) = tag {
        s.ok(&[
            "quarantine-policy",
            "add",
            name,
            "--tenant",
            "contoso",
            "--permissions",
            permissions,
        ]);
    }
    let mut args = vec![
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
    ];
    if let Some((name, _)) = tag {
        args.extend(["--high-confidence-spam-quarantine-tag", name]);
    }
    s.ok(&args);
    let reply = super::send_mime(
        &s,
        serde_json::json!({"from": "spammer@outside.test", "to": ["user@contoso.test"],
               "subject": subject, "body": format!("{GTUBE}\n")}),
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
    (s, id)
}

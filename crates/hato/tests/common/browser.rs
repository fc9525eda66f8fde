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

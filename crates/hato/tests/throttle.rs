//! IP throttling through the real server: the state `hato serve` loads at start and saves at
//! shutdown, `hato throttle status` / `release`, and tenants' exemption lists, over the CLI and
//! the API. (The throttle's arithmetic is tested in `hato-protection`; the SMTP path calls it
//! once the edge policy is wired.)

mod common;

use common::*;
use hato_core::{Clock, SystemClock};
use hato_protection::throttle::{Throttle, ThrottleSettings};
use serde_json::{Value, json};
use std::net::IpAddr;

fn token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// The lines of `hato throttle status` that say what was decided (the figures after them move
/// with the clock).
fn decision(out: &str) -> Vec<&str> {
    out.lines()
        .take_while(|l| !l.starts_with("connections:"))
        .collect()
}

#[test]
fn the_saved_state_is_read_at_start_shown_released_by_the_operator_and_saved_at_shutdown() {
    let mut s = Server::start();
    s.tenant("contoso");
    // A throttle as the SMTP path will make one: a new IP that sent 150 recipients at once.
    let now = SystemClock.now();
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let th = Throttle::new(ThrottleSettings::default());
    th.record_connection(ip, now);
    th.record_message(ip, 150, now);
    assert!(th.check(ip, now).refuses());
    let state = s.data_dir().join("throttle.state");
    th.save(&state).unwrap();
    let t = th.status(ip, now).throttle.expect("throttled");
    let (since, until) = (t.since.to_rfc3339(), t.until.to_rfc3339());
    let first = th.status(ip, now).first_seen.unwrap();
    let probation = first.plus_seconds(3 * 86_400).to_rfc3339();
    let first = first.to_rfc3339();
    // Killed (no snapshot of its own at exit) and started again: it reads the file.
    s.restart();

    let out = s.ok(&["throttle", "status", "203.0.113.9"]);
    assert_eq!(
        decision(&out),
        [
            "ip:                 203.0.113.9 (tracked as 203.0.113.9)".to_string(),
            format!("throttled:          yes, by AS1 since {since} until {until} (strike 1)"),
            "rule:               AS1: a new IP on probation sent more recipients in the last \
             hour than probation allows"
                .to_string(),
            "fired on:           recipients_last_hour 150 > limit 100".to_string(),
            format!("first seen:         {first}; on probation until {probation}"),
        ],
        "{out}"
    );
    assert!(out.contains("\nrecipients:         "), "{out}");
    let v: Value = serde_json::from_str(&s.ok(&["throttle", "status", "203.0.113.9", "--json"]))
        .expect("JSON");
    assert_eq!(v["throttled"], true);
    assert_eq!(
        v["throttle"],
        json!({
            "rule": "AS1",
            "meaning": "a new IP on probation sent more recipients in the last hour than probation allows",
            "since": since, "until": until, "strikes": 1,
            "figure": "recipients_last_hour", "value": 150, "limit": 100,
        })
    );
    assert_eq!(v["figures"]["limit_recipients_per_hour"], 100);
    assert_eq!(v["figures"]["recipients_last_day"], 150);

    // A tenant's admin sees the decision, not the platform's figures, and may not release.
    let admin = token(&s, "contoso", "global-admin");
    let (status, v) = s.api_as(&admin, "GET", "/api/v1/throttle/203.0.113.9", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["throttled"].clone(), v["figures"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(
        (
            v["throttle"]["rule"].clone(),
            v["throttle"]["value"].clone()
        ),
        (json!("AS1"), Value::Null)
    );
    assert_eq!(v["throttle"]["until"], until.as_str());
    let (status, v) = s.api_as(&admin, "POST", "/api/v1/throttle/203.0.113.9/release", None);
    assert_eq!(
        (status, v),
        (
            403,
            json!({ "error": "only the platform operator may do this" })
        )
    );

    // The operator releases it.
    let out = s.ok(&["throttle", "release", "203.0.113.9"]);
    let resume = out
        .trim()
        .strip_prefix("throttle of 203.0.113.9 released; the rules apply to it again from ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let out = s.ok(&["throttle", "status", "203.0.113.9"]);
    assert!(out.contains("\nthrottled:          no\n"), "{out}");
    assert!(out.contains("\nreleased:           "), "{out}");
    assert!(out.contains(&format!("; rules resume {resume}\n")), "{out}");
    // Released again: there was nothing to end, and the grace period starts anew.
    let out = s.ok(&["throttle", "release", "203.0.113.9"]);
    let again = out
        .trim()
        .strip_prefix("203.0.113.9 was not throttled; the rules stay off for it until ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_eq!(again, resume_of(&s));

    // Stopped cleanly, it saves its state; started again, the release is still there.
    assert!(s.stop().success());
    let saved = Throttle::load(ThrottleSettings::default(), &state)
        .unwrap()
        .expect("a snapshot");
    let st = saved.status(ip, SystemClock.now());
    assert!(st.throttle.is_none() && st.release.is_some(), "{st:?}");
    s.restart();
    let v: Value = serde_json::from_str(&s.ok(&["throttle", "status", "203.0.113.9", "--json"]))
        .expect("JSON");
    assert_eq!(v["throttled"], false);
    assert_eq!(v["release"]["rules_resume"], again.as_str());

    // Not an IP address.
    let (status, v) = s.api("GET", "/api/v1/throttle/mail.example", None);
    assert_eq!(
        (status, v),
        (
            400,
            json!({ "error": "path parameter ip: \"mail.example\" is not an IP address" })
        )
    );
}

/// When the rules resume for 203.0.113.9, as the server says now.
fn resume_of(s: &Server) -> String {
    let (_, v) = s.api("GET", "/api/v1/throttle/203.0.113.9", None);
    v["release"]["rules_resume"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn tenants_keep_exemption_lists_that_the_throttle_applies_at_once() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    assert_eq!(
        s.ok(&[
            "throttle",
            "exempt",
            "add",
            "192.0.2.7/24",
            "--tenant",
            "contoso"
        ])
        .trim(),
        "192.0.2.0/24 exempted from throttling for tenant contoso"
    );
    // Refused entries name the entry and the rule.
    for (entry, error) in [
        (
            "10.0.0.0/16",
            "error: 10.0.0.0/16: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges) (HTTP 400)",
        ),
        (
            "2001:db8::/32",
            "error: 2001:db8::/32: an IPv6 network must be /48 to /128 (HTTP 400)",
        ),
        (
            "192.0.2.0/24",
            "error: throttle exemption 192.0.2.0/24 of tenant contoso already exists (HTTP 409)",
        ),
        (
            "mx.contoso.test",
            "error: mx.contoso.test: not an IP address or CIDR network (IPv4 a.b.c.d or a.b.c.d/24 to /32, IPv6 x:x::x or x:x::/48 to /128) (HTTP 400)",
        ),
    ] {
        let (ok, _, err) = s.cli(&["throttle", "exempt", "add", entry, "--tenant", "contoso"]);
        assert!(!ok);
        assert_eq!(err.trim(), error);
    }
    // A tenant's global admin adds to its own list (no tenant named), sees only its own.
    let fabrikam = token(&s, "fabrikam", "global-admin");
    let (status, v) = s.api_as(
        &fabrikam,
        "POST",
        "/api/v1/throttle/exemptions",
        Some(json!({ "network": "2001:DB8:7::/48" })),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["tenant"].clone(), v["network"].clone()),
        (json!("fabrikam"), json!("2001:db8:7::/48"))
    );
    assert!(
        v["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{v}"
    );
    let (status, v) = s.api_as(&fabrikam, "GET", "/api/v1/throttle/exemptions", None);
    assert_eq!(status, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let (status, _) = s.api_as(
        &fabrikam,
        "GET",
        "/api/v1/throttle/exemptions?tenant=contoso",
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = s.api_as(
        &fabrikam,
        "DELETE",
        "/api/v1/throttle/exemptions/192.0.2.0%2F24?tenant=contoso",
        None,
    );
    assert_eq!(status, 404);
    // A recipient admin reads but does not change the list.
    let recipients = token(&s, "fabrikam", "recipient-admin");
    let (status, v) = s.api_as(
        &recipients,
        "POST",
        "/api/v1/throttle/exemptions",
        Some(json!({ "network": "192.0.2.1" })),
    );
    assert_eq!(
        (status, v),
        (403, json!({ "error": "this needs the global admin role" }))
    );

    // The throttle knows at once: the operator sees every tenant's entry, a tenant its own.
    let (_, v) = s.api("GET", "/api/v1/throttle/192.0.2.99", None);
    assert_eq!(
        v["exemptions"],
        json!([{ "tenant": "contoso", "network": "192.0.2.0/24" }])
    );
    let out = s.ok(&["throttle", "status", "2001:db8:7:1::25"]);
    assert!(
        out.contains("\nexempt:             tenant fabrikam: 2001:db8:7::/48\n"),
        "{out}"
    );
    assert!(
        out.starts_with("ip:                 2001:db8:7:1::25 (tracked as 2001:db8:7:1::/64)\n"),
        "{out}"
    );
    let (_, v) = s.api_as(&fabrikam, "GET", "/api/v1/throttle/192.0.2.99", None);
    assert_eq!(v["exemptions"], json!([]));
    let (_, v) = s.api_as(&fabrikam, "GET", "/api/v1/throttle/2001:db8:7::1", None);
    assert_eq!(
        v["exemptions"],
        json!([{ "tenant": "fabrikam", "network": "2001:db8:7::/48" }])
    );

    let out = s.ok(&["throttle", "exempt", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("contoso   192.0.2.0/24     "), "{out}");
    assert!(lines[2].starts_with("fabrikam  2001:db8:7::/48  "), "{out}");
    assert_eq!(
        s.ok(&[
            "throttle",
            "exempt",
            "remove",
            "192.0.2.7/24",
            "--tenant",
            "contoso"
        ])
        .trim(),
        "192.0.2.7/24 no longer exempted"
    );
    let (ok, _, err) = s.cli(&[
        "throttle",
        "exempt",
        "remove",
        "192.0.2.0/24",
        "--tenant",
        "contoso",
    ]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: throttle exemption 192.0.2.0/24 not found (HTTP 404)"
    );
    let (_, v) = s.api("GET", "/api/v1/throttle/192.0.2.99", None);
    assert_eq!(v["exemptions"], json!([]));
    // A removed tenant's entries go with it.
    s.ok(&["tenant", "remove", "fabrikam"]);
    let v: Value = serde_json::from_str(&s.ok(&["throttle", "exempt", "list", "--json"])).unwrap();
    assert_eq!(v, json!([]));
}

#[test]
fn throttle_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hato.toml");
    std::fs::write(&config, "[throttle]\nipv6_prefix_length = 65\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: throttle.ipv6_prefix_length must be between 1 and 64 (is 65)"
    );
}

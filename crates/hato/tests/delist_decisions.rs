//! The operator's decisions on delist requests against the real server: requests made on the
//! public delist page (plain HTTP form posts), listed with their status and filtered by it in
//! the store's query (`GET /api/v1/blocklist/requests?status=&page=&limit=`); `hato delist
//! approve` removes the entry (the edge's copy reloaded: asking again finds the IP not listed),
//! `hato delist deny` keeps it and the requester's confirmation link then removes nothing (the
//! page says the request was declined); a request is decided once (409 saying by whom), one
//! with nothing to decide is refused too; only the operator decides (403, 401).

mod common;
use common::*;
use serde_json::{Value, json};

/// A request on the delist page for `ip`, answered to `who`@contoso.test (the page takes
/// three an hour per address).
fn ask(s: &Server, ip: &str, who: &str) {
    let (status, page) = http_form(
        s,
        "POST",
        "/delist",
        &format!("address={who}%40contoso.test&ip={ip}"),
    );
    assert_eq!(status, 200, "{page}");
}

fn requests(s: &Server, query: &str) -> Vec<Value> {
    let (status, v) = s.api("GET", &format!("/api/v1/blocklist/requests{query}"), None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The id of the newest request for `ip`.
fn id_for(s: &Server, ip: &str) -> i64 {
    requests(s, "")
        .iter()
        .find(|r| r["ip"] == ip)
        .and_then(|r| r["id"].as_i64())
        .unwrap_or_else(|| panic!("no request for {ip}"))
}

fn entries(s: &Server) -> Vec<String> {
    let (_, v) = s.api("GET", "/api/v1/blocklist", None);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| e["entry"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_operator_approves_or_denies_each_pending_request_once() {
    let s = Server::start();
    s.tenant("contoso");
    for m in ["alice", "bob", "carol"] {
        s.mailbox(&format!("{m}@contoso.test"), &[]);
    }
    for entry in ["192.0.2.7", "192.0.2.8", "198.51.100.0/24"] {
        s.ok(&["blocklist", "add", entry, "--reason", "spam run"]);
    }
    for (ip, who) in [
        ("192.0.2.7", "alice"),
        ("192.0.2.8", "alice"),
        ("198.51.100.9", "bob"),
        ("203.0.113.1", "bob"),
    ] {
        ask(&s, ip, who);
    }
    // Status: pending while an entry listed the IP and nobody decided; closed when nothing did.
    let all = requests(&s, "");
    let status: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["ip"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("203.0.113.1", "closed"),
            ("198.51.100.9", "pending"),
            ("192.0.2.8", "pending"),
            ("192.0.2.7", "pending")
        ]
    );
    let ips = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["ip"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        ips(requests(&s, "?status=pending&limit=2&page=2")),
        ["192.0.2.7"]
    );
    assert_eq!(ips(requests(&s, "?status=CLOSED")), ["203.0.113.1"]);
    let (status, v) = s.api("GET", "/api/v1/blocklist/requests?status=maybe", None);
    assert_eq!(
        (status, v["error"].as_str()),
        (
            400,
            Some("status: \"maybe\" is not one of pending, approved, denied, closed")
        )
    );

    // Only the operator decides.
    let (_, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/tokens",
        Some(json!({ "role": "global-admin" })),
    );
    let admin = v["token"].as_str().expect("token").to_string();
    let seven = id_for(&s, "192.0.2.7");
    for verb in ["approve", "deny"] {
        let path = format!("/api/v1/blocklist/requests/{seven}/{verb}");
        let (status, v) = s.api_as(&admin, "POST", &path, None);
        assert_eq!(
            (status, v["error"].as_str()),
            (403, Some("only the platform operator may do this"))
        );
        let (status, _) = s.api_as("", "POST", &path, None);
        assert_eq!(status, 401);
    }

    // Approve through the CLI: the entry goes, at once (asking again finds it not listed).
    assert_eq!(
        s.ok(&[
            "delist",
            "approve",
            &seven.to_string(),
            "--reason",
            "cleaned up"
        ]),
        format!(
            "delist request {seven} for 192.0.2.7 approved: 192.0.2.7 removed from the block list\n"
        )
    );
    assert_eq!(entries(&s), ["192.0.2.8", "198.51.100.0/24"]);
    let r = requests(&s, "?status=approved");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (&r[0]["id"], &r[0]["decided_by"], &r[0]["decision_reason"]),
        (&json!(seven), &json!("operator"), &json!("cleaned up"))
    );
    assert!(r[0]["decided"].is_string(), "{}", r[0]);
    ask(&s, "192.0.2.7", "carol");
    assert_eq!(requests(&s, "?limit=1")[0]["outcome"], "not_listed");

    // Decided once: again, either way, is a 409 saying by whom.
    let (ok, _, err) = s.cli(&["delist", "deny", &seven.to_string()]);
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "error: delist request {seven} was approved already, by operator on "
        )) && err.ends_with("(HTTP 409)\n"),
        "{err}"
    );
    // Nothing to decide, no such request.
    let closed = id_for(&s, "203.0.113.1");
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/blocklist/requests/{closed}/approve"),
        None,
    );
    assert_eq!(
        (status, v["error"].as_str()),
        (
            409,
            Some(&*format!(
                "delist request {closed} has nothing left to decide: nothing listed its IP when it was made"
            ))
        )
    );
    let (status, _) = s.api("POST", "/api/v1/blocklist/requests/999999/deny", None);
    assert_eq!(status, 404);
    // A reason is one line, and the body is JSON or nothing.
    let eight = id_for(&s, "192.0.2.8");
    let path = format!("/api/v1/blocklist/requests/{eight}/deny");
    let (status, v) = s.api("POST", &path, Some(json!({ "reason": "a\nb" })));
    assert_eq!(
        (status, v["error"].as_str()),
        (
            400,
            Some("reason: no control characters (one line of text)")
        )
    );
    let (status, v) = s.api("POST", &path, Some(json!({ "why": "x" })));
    assert_eq!(status, 400, "{v}");

    // Deny: the entry stays, and the link mailed for the request removes nothing.
    assert_eq!(
        s.ok(&[
            "delist",
            "deny",
            &eight.to_string(),
            "--reason",
            "still spamming"
        ]),
        format!("delist request {eight} for 192.0.2.8 denied: 192.0.2.8 stays on the block list\n")
    );
    s.wait_for("the confirmation mails", || {
        s.mail("alice@contoso.test").len() >= 2
    });
    let mail = s
        .mail("alice@contoso.test")
        .into_iter()
        .find(|m| m["subject"] == "Confirm the removal of 192.0.2.8 from the block list")
        .expect("the confirmation for 192.0.2.8");
    let raw = s.raw_mail("alice@contoso.test", mail["id"].as_i64().expect("id"));
    let token = raw
        .lines()
        .find_map(|l| {
            l.split_once("/delist/confirm?token=")
                .map(|(_, t)| t.trim())
        })
        .expect("a link")
        .to_string();
    let (status, page) = http_form(&s, "GET", &format!("/delist/confirm?token={token}"), "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("was declined, so this link removes nothing"),
        "{page}"
    );
    assert!(!page.contains("Delist IP"), "{page}");
    let (status, page) = http_form(&s, "POST", "/delist/confirm", &format!("token={token}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("was declined"), "{page}");
    assert_eq!(entries(&s), ["192.0.2.8", "198.51.100.0/24"]);
    assert_eq!(requests(&s, "?status=denied")[0]["id"], json!(eight));

    // A network entry, approved through the API with a reason: removed.
    let nine = id_for(&s, "198.51.100.9");
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/blocklist/requests/{nine}/approve"),
        Some(json!({ "reason": "the whole range is clean" })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["request"]["status"], &v["removed"]["entry"]),
        (&json!("approved"), &json!("198.51.100.0/24"))
    );
    assert_eq!(entries(&s), ["192.0.2.8"]);
    // The CLI's listing, filtered.
    let table = s.ok(&["delist", "list", "--status", "approved"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ID  "), "{table}");
    assert!(lines[1].contains("198.51.100.9") && lines[1].contains("operator"));
    assert!(lines[2].contains("192.0.2.7") && lines[2].contains("cleaned up"));
    assert!(requests(&s, "?status=pending").is_empty());
}

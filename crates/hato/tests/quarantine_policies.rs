//! Quarantine policies (Exchange's `New-QuarantinePolicy`) and release requests against the real
//! `hato serve`, through the API and the CLI: the anti-spam policy's `*QuarantineTag` picks the
//! policy an item is held under (mail arrives over SMTP, Python's smtplib; GTUBE is high
//! confidence spam, quarantined by a custom anti-spam policy), each item records it, and what
//! its user may do is that policy's: a user whose policy grants only *request release* is
//! refused a release with the API's words and asks instead; an admin sees the pending request,
//! denies or approves (releases) it; the user sees the status. Built-in policies cannot be
//! changed; one in use cannot be removed.

mod common;
use common::*;
use serde_json::{Value, json};

/// GTUBE, the standard anti-spam test string (high confidence spam).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "correct horse battery";

fn login(s: &Server, address: &str) -> String {
    let (status, v) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({ "address": address, "password": PASSWORD })),
    );
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// contoso with alice, bob and a recipient admin (ra); an anti-spam policy "Strict" for
/// contoso.test quarantining high confidence spam.
fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    for m in ["alice", "bob", "ra", "owner"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", PASSWORD]);
    }
    console::role_group(
        &s,
        "contoso",
        "Recipient Desk",
        "owner@contoso.test",
        &["ra@contoso.test"],
        "recipient-admin",
    );
    s.ok(&[
        "spam-filter",
        "add",
        "Strict",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--recipient-domain-is",
        "contoso.test",
        "--high-confidence-spam-action",
        "quarantine",
    ]);
    s
}

/// Sends GTUBE with `subject` to `to` and returns its quarantine item once held.
fn held(s: &Server, to: &str, subject: &str) -> Value {
    let reply = send_mime(
        s,
        json!({"from": "mallory@fabrikam.test", "to": [to], "subject": subject,
               "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let mut found = Value::Null;
    s.wait_for(&format!("{subject} in quarantine"), || {
        let (status, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        assert_eq!(status, 200, "{v}");
        if let Some(it) = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["subject"] == subject)
        {
            found = it.clone();
        }
        !found.is_null()
    });
    found
}

#[test]
fn quarantine_policy_cli_and_api_manage_custom_policies_beside_the_built_in_ones() {
    let s = setup();
    // The built-in policies with Exchange's permissions.
    let out = s.ok(&["quarantine-policy", "list", "--tenant", "contoso"]);
    let line = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    // name, permissions, value, notifications, built-in (No access: an empty cell).
    assert_eq!(
        line("AdminOnlyAccessPolicy"),
        ["AdminOnlyAccessPolicy", "0", "false", "true"]
    );
    assert_eq!(
        line("DefaultFullAccessPolicy"),
        [
            "DefaultFullAccessPolicy",
            "allow-sender,release,preview,delete",
            "39",
            "false",
            "true"
        ]
    );
    assert_eq!(
        line("DefaultFullAccessWithNotificationPolicy")[3..],
        ["true", "true"]
    );
    assert!(out.contains("NotificationEnabledPolicy"), "{out}");
    // A custom one by name and by Exchange's value.
    let out = s.ok(&[
        "quarantine-policy",
        "add",
        "RequestOnly",
        "--tenant",
        "contoso",
        "--permissions",
        "request-release,preview,view-header",
    ]);
    assert!(
        out.contains("permissions: view-header, request-release, preview"),
        "{out}"
    );
    assert!(
        out.contains("end-user-quarantine-permissions-value: 138"),
        "{out}"
    );
    let out = s.ok(&[
        "quarantine-policy",
        "set",
        "requestonly",
        "--tenant",
        "contoso",
        "--end-user-quarantine-permissions-value",
        "43",
        "--esn-enabled",
        "true",
    ]);
    assert!(
        out.contains("permissions: allow-sender, request-release, preview, delete"),
        "{out}"
    );
    assert!(out.contains("esn-enabled: true"), "{out}");
    let (status, v) = s.api(
        "GET",
        "/api/v1/tenants/contoso/quarantine-policies/RequestOnly",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["permissions_value"], 43);
    assert_eq!(v["built_in"], false);

    // Refusals, each with what is wrong.
    let (ok, _, err) = s.cli(&[
        "quarantine-policy",
        "set",
        "AdminOnlyAccessPolicy",
        "--tenant",
        "contoso",
        "--permissions",
        "release",
    ]);
    assert!(
        !ok && err.contains("is a built-in quarantine policy"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "quarantine-policy",
        "add",
        "Bad",
        "--tenant",
        "contoso",
        "--permissions",
        "fly",
    ]);
    assert!(!ok && err.contains("unknown permission \"fly\""), "{err}");
    let (ok, _, err) = s.cli(&[
        "quarantine-policy",
        "add",
        "requestonly",
        "--tenant",
        "contoso",
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = s.cli(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--spam-quarantine-tag",
        "NoSuchPolicy",
    ]);
    assert!(
        !ok && err.contains("spam_quarantine_tag: \"NoSuchPolicy\" is not a quarantine policy"),
        "{err}"
    );

    // A policy an anti-spam policy names is in use; named as the policy spells itself.
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--bulk-quarantine-tag",
        "requestONLY",
    ]);
    let out = s.ok(&["spam-filter", "show", "Strict", "--tenant", "contoso"]);
    assert!(out.contains("bulk-quarantine-tag: RequestOnly"), "{out}");
    assert!(
        out.contains("high-confidence-phish-quarantine-tag: AdminOnlyAccessPolicy"),
        "{out}"
    );
    let (ok, _, err) = s.cli(&[
        "quarantine-policy",
        "remove",
        "RequestOnly",
        "--tenant",
        "contoso",
    ]);
    assert!(
        !ok && err.contains(
            "quarantine policy RequestOnly is in use: the anti-spam policy Strict names it as bulk-quarantine-tag"
        ),
        "{err}"
    );
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--bulk-quarantine-tag",
        "DefaultFullAccessPolicy",
    ]);
    let out = s.ok(&[
        "quarantine-policy",
        "remove",
        "RequestOnly",
        "--tenant",
        "contoso",
    ]);
    assert!(
        out.contains("removed quarantine policy RequestOnly"),
        "{out}"
    );

    // Only global admins and the operator manage them.
    for who in ["alice@contoso.test", "ra@contoso.test"] {
        let token = login(&s, who);
        let (status, v) = s.api_as(
            &token,
            "GET",
            "/api/v1/tenants/contoso/quarantine-policies",
            None,
        );
        assert_eq!(status, 403, "{who}: {v}");
        let (status, v) = s.api_as(
            &token,
            "POST",
            "/api/v1/tenants/contoso/quarantine-policies",
            Some(json!({"name": "Mine", "permissions": ["release"]})),
        );
        assert_eq!(status, 403, "{who}: {v}");
    }
}

#[test]
fn a_user_requests_release_where_the_policy_permits_only_that_and_an_admin_decides() {
    let s = setup();
    // Today's behaviour by default: DefaultFullAccessPolicy, users release their spam.
    let first = held(&s, "alice@contoso.test", "default policy");
    assert_eq!(
        first["quarantine_policy"], "DefaultFullAccessPolicy",
        "{first}"
    );
    assert_eq!(
        first["permissions"],
        json!(["allow-sender", "release", "preview", "delete"])
    );
    let alice = login(&s, "alice@contoso.test");
    let id = first["id"].to_string();
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        None,
    );
    assert_eq!(
        (status, v["state"].as_str()),
        (200, Some("released")),
        "{v}"
    );

    // A custom policy that lets users only ask.
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
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-quarantine-tag",
        "RequestOnly",
    ]);
    let it = held(&s, "alice@contoso.test", "asks first");
    assert_eq!(it["quarantine_policy"], "RequestOnly", "{it}");
    assert_eq!(it["permissions"], json!(["request-release", "preview"]));
    let id = it["id"].to_string();
    let release = format!("/api/v1/quarantine/{id}/release");
    let (status, v) = s.api_as(&alice, "POST", &release, None);
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["error"],
        "the quarantine policy RequestOnly does not permit you to release this message: \
         request its release instead (an admin decides)"
    );
    let (status, v) = s.api_as(&alice, "DELETE", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["error"],
        "the quarantine policy RequestOnly does not permit you to delete this message"
    );
    // Preview is permitted.
    let (status, v) = s.api_as(
        &alice,
        "GET",
        &format!("/api/v1/quarantine/{id}/preview"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    // Nobody else asks for alice's item; an admin releases rather than asks; a recipient
    // admin does not manage quarantine.
    let bob = login(&s, "bob@contoso.test");
    let request = format!("/api/v1/quarantine/{id}/request-release");
    let (status, v) = s.api_as(&bob, "POST", &request, None);
    assert_eq!(status, 404, "{v}");
    let (status, v) = s.api("POST", &request, None);
    assert_eq!(status, 403, "{v}");
    let ra = login(&s, "ra@contoso.test");
    let (status, v) = s.api_as(&ra, "POST", &request, None);
    assert_eq!(status, 403, "{v}");

    // Alice asks through the CLI (her token); once.
    let (ok, out, err) = s.cli_env(
        &["quarantine", "request-release", &id],
        &[("HATO_TOKEN", alice.as_str())],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("requested the release of {id}")),
        "{out}"
    );
    let (ok, _, err) = s.cli_env(
        &["quarantine", "request-release", &id],
        &[("HATO_TOKEN", alice.as_str())],
    );
    assert!(
        !ok && err.contains("requested already by alice@contoso.test"),
        "{err}"
    );
    // She sees the status; the message waits.
    let (status, v) = s.api_as(&alice, "GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("held"), Some("pending"))
    );
    assert_eq!(v["requested_by"], "alice@contoso.test");
    // Admins find it under "release requested" (API and CLI); a user may not decide.
    let (status, v) = s.api(
        "GET",
        "/api/v1/quarantine?tenant=contoso&request=pending",
        None,
    );
    assert_eq!(status, 200, "{v}");
    let ids: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["id"].to_string())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&id));
    let out = s.ok(&[
        "quarantine",
        "list",
        "--tenant",
        "contoso",
        "--request",
        "pending",
    ]);
    assert!(
        out.contains("asks first") && !out.contains("default policy"),
        "{out}"
    );
    let (ok, _, err) = s.cli(&["quarantine", "list", "--request", "maybe"]);
    assert!(!ok && err.contains("unknown request maybe"), "{err}");
    let deny = format!("/api/v1/quarantine/{id}/deny-release");
    let (status, v) = s.api_as(&alice, "POST", &deny, None);
    assert_eq!(status, 403, "{v}");
    // The admin denies (CLI); alice sees it denied and cannot ask again.
    let out = s.ok(&["quarantine", "deny-release", &id]);
    assert!(
        out.contains(&format!("denied the release of {id}")),
        "{out}"
    );
    let (_, v) = s.api_as(&alice, "GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("held"), Some("denied")),
        "{v}"
    );
    let (status, v) = s.api_as(&alice, "POST", &request, None);
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("was denied by"),
        "{v}"
    );
    let (status, v) = s.api("POST", &deny, None);
    assert_eq!(status, 409, "{v}");

    // Another: asked, then approved by the admin's release; alice gets it.
    let it = held(&s, "alice@contoso.test", "approved later");
    let id = it["id"].to_string();
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/quarantine/{id}/request-release"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let out = s.ok(&["quarantine", "release", &id]);
    assert!(out.contains("released"), "{out}");
    let (_, v) = s.api_as(&alice, "GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(
        (v["state"].as_str(), v["release_request"].as_str()),
        (Some("released"), Some("approved")),
        "{v}"
    );
    let out = s.ok(&["quarantine", "show", &id]);
    assert!(out.contains("quarantine_policy: RequestOnly"), "{out}");
    assert!(out.contains("release_request: approved"), "{out}");
    s.wait_for("the approved message in alice's Inbox", || {
        s.mail("alice@contoso.test")
            .iter()
            .any(|m| m["subject"] == "approved later")
    });

    // A policy without any end-user permission hides the item from its user.
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-quarantine-tag",
        "AdminOnlyAccessPolicy",
    ]);
    let it = held(&s, "alice@contoso.test", "admins only");
    assert_eq!(it["quarantine_policy"], "AdminOnlyAccessPolicy", "{it}");
    let id = it["id"].to_string();
    let (status, v) = s.api_as(&alice, "GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["error"],
        "only admins may see or release messages quarantined as high-confidence-spam \
         (quarantine policy AdminOnlyAccessPolicy)"
    );
    let (status, v) = s.api_as(&alice, "GET", "/api/v1/quarantine", None);
    assert_eq!(status, 200, "{v}");
    let subjects: Vec<&str> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["subject"].as_str())
        .collect();
    assert!(!subjects.contains(&"admins only"), "{subjects:?}");
    assert!(subjects.contains(&"asks first"), "{subjects:?}");
}

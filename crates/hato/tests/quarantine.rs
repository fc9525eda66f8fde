//! The quarantine and the malware filter policy against the real `hato serve`, through the API
//! and the CLI. The content pipeline fills the quarantine from the SMTP path (see
//! `content.rs`); these tests also need kinds no stage makes yet (spam), so they queue a
//! message while the server is stopped whose recipients carry a stage's quarantine decision (as
//! `Inbound` queues them), and the restarted server's own delivery agent quarantines them.

mod common;

use common::Server;
use hato_core::directory::Route;
use hato_core::{Clock, Reason, Stage, SystemClock};
use hato_store::*;
use serde_json::{Value, json};

/// Queues a message to alice and bob of contoso, alice held as spam and bob as malware.
fn queue_held_message(s: &mut Server) {
    s.stop();
    {
        let store = SqliteStore::open(&s.data_dir()).expect("store");
        let mailbox = |a: &str| store.mailbox_by_address(a).expect("read").expect("mailbox");
        let (alice, bob) = (mailbox("alice@contoso.test"), mailbox("bob@contoso.test"));
        let rcpt = |m: &hato_core::directory::Mailbox, kind, stage| NewRecipient {
            address: m.address.clone(),
            tenant_id: m.tenant_id,
            route: Route::Local(m.id),
            extra_events: vec![],
            receive_reason: None,
            finished: None,
            stamp: String::new(),
            junk: false,
            quarantine: Some(QuarantineHold {
                kind,
                policy: "Default".into(),
                reason: Reason::new(stage, "held by the test"),
                days: None,
                quarantine_policy: None,
            }),
            connector: None,
            dsn: Default::default(),
        };
        store
            .enqueue(NewMessage {
                trace_id: "0193a1b2-0000-7000-8000-000000000001".into(),
                received: SystemClock.now(),
                sender: "mallory@fabrikam.test".into(),
                client_ip: "192.0.2.1".into(),
                helo: "mx.fabrikam.test".into(),
                message_id: None,
                subject: Some("held".into()),
                content: b"From: mallory@fabrikam.test\r\nSubject: held\r\n\r\nthe held text\r\n"
                    .to_vec(),
                spooled: None,
                recipients: vec![
                    rcpt(&alice, QuarantineKind::Spam, Stage::Spam),
                    rcpt(&bob, QuarantineKind::Malware, Stage::Malware),
                ],
                receive_detail: "received".into(),
                reports_on: vec![],
                authenticated: None,
                authenticated_from: None,
                sender_auth_failed: false,
                dsn: Default::default(),
                high_risk: false,
            })
            .wait()
            .expect("enqueue");
    }
    s.restart();
}

fn login(s: &Server, address: &str, password: &str) -> String {
    let (status, v) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({ "address": address, "password": password })),
    );
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().expect("token").to_string()
}

#[test]
fn quarantine_list_show_preview_release_delete() {
    let mut s = Server::start();
    s.tenant("contoso");
    for m in ["alice", "bob"] {
        s.mailbox(
            &format!("{m}@contoso.test"),
            &["--password", &format!("password-{m}")],
        );
    }
    queue_held_message(&mut s);
    let mut items = Vec::new();
    s.wait_for("two quarantined items", || {
        let (status, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        assert_eq!(status, 200, "{v}");
        items = v["items"].as_array().cloned().unwrap_or_default();
        items.len() == 2
    });
    let id_of = |kind: &str| {
        items
            .iter()
            .find(|i| i["kind"] == kind)
            .and_then(|i| i["id"].as_i64())
            .expect("item")
            .to_string()
    };
    let (spam, malware) = (id_of("spam"), id_of("malware"));
    // Nobody got the message.
    assert!(s.mail("alice@contoso.test").is_empty());
    assert!(s.mail("bob@contoso.test").is_empty());

    // The CLI lists, filters, shows and previews.
    let out = s.ok(&["quarantine", "list", "--tenant", "contoso"]);
    assert!(
        out.contains("bob@contoso.test") && out.contains("malware"),
        "{out}"
    );
    let out = s.ok(&["quarantine", "list", "--kind", "spam", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["items"][0]["recipient"], "alice@contoso.test");
    let out = s.ok(&["quarantine", "show", &malware]);
    assert!(
        out.contains("kind: malware") && out.contains("policy: Default"),
        "{out}"
    );
    assert!(out.contains("reason: held by the test"), "{out}");
    let out = s.ok(&["quarantine", "preview", &malware]);
    assert!(
        out.contains("Subject: held") && out.contains("the held text"),
        "{out}"
    );
    let (ok, _, err) = s.cli(&["quarantine", "list", "--kind", "virus"]);
    assert!(!ok && err.contains("unknown kind virus"), "{err}");

    // Bob may not release his malware; alice releases her spam.
    let bob = login(&s, "bob@contoso.test", "password-bob");
    let (status, v) = s.api_as(
        &bob,
        "POST",
        &format!("/api/v1/quarantine/{malware}/release"),
        None,
    );
    assert_eq!(status, 403, "{v}");
    let (ok, _, err) = s.cli_env(&["quarantine", "list", "--json"], &[("HATO_TOKEN", &bob)]);
    assert!(ok, "{err}");
    let alice = login(&s, "alice@contoso.test", "password-alice");
    let (ok, out, err) = s.cli_env(&["quarantine", "release", &spam], &[("HATO_TOKEN", &alice)]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("released {spam} to alice@contoso.test\n"));
    assert_eq!(s.mail("alice@contoso.test").len(), 1);

    // The admin releases bob's malware once; the second time is refused.
    s.ok(&["quarantine", "release", &malware]);
    assert_eq!(s.mail("bob@contoso.test").len(), 1);
    let (ok, _, err) = s.cli(&["quarantine", "release", &malware]);
    assert!(
        !ok && err.contains("was released by operator") && err.contains("409"),
        "{err}"
    );
    let trace = s.trace("recipient=bob@contoso.test");
    assert_eq!(trace[0]["status"], "Delivered", "{trace:?}");

    // Delete: the content goes, the item stays as deleted.
    let out = s.ok(&["quarantine", "delete", &malware]);
    assert_eq!(out, format!("deleted {malware}\n"));
    let (ok, _, err) = s.cli(&["quarantine", "preview", &malware]);
    assert!(!ok && err.contains("content is gone"), "{err}");
    // Nothing of the message is held any more: releasing it to all recipients does nothing.
    let out = s.ok(&["quarantine", "release", &spam, "--all-recipients", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v, json!({"released": [], "refused": []}));
    let out = s.ok(&[
        "quarantine",
        "list",
        "--trace-id",
        "0193a1b2-0000-7000-8000-000000000001",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{v}");
}

#[test]
fn malware_filter_show_and_set_with_exchanges_names_and_defaults() {
    let s = Server::start();
    s.tenant("contoso");
    let out = s.ok(&["malware-filter", "show", "--tenant", "contoso"]);
    for line in [
        "malware filter policy of contoso",
        "name: Default",
        "enable-file-filter: true",
        "file-type-action: reject",
        "action: delete-message",
        "enable-internal-sender-admin-notifications: false",
        "encrypted-archive-action: pass",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} in {out}");
    }
    let out = s.ok(&["malware-filter", "show", "--tenant", "contoso", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["file_types"].as_array().map(Vec::len), Some(53));

    // Refusals name the flag's setting and the value; nothing changes.
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--file-type-action",
        "bounce",
        "--file-types",
        "exe,j s",
    ]);
    assert!(!ok);
    assert!(
        err.contains("file_type_action: \"bounce\" is not one of reject, quarantine"),
        "{err}"
    );
    assert!(err.contains("file_types: \"j s\""), "{err}");
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--enable-file-filter",
        "maybe",
    ]);
    assert!(!ok && err.contains("--enable-file-filter"), "{err}");
    let (ok, _, err) = s.cli(&["malware-filter", "set", "--tenant", "contoso"]);
    assert!(!ok && err.contains("nothing to change"), "{err}");
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--enable-external-sender-admin-notifications",
        "true",
    ]);
    assert!(
        !ok && err.contains("set external_sender_admin_address too"),
        "{err}"
    );
    let (_, v) = s.api("GET", "/api/v1/malware-filter?tenant=contoso", None);
    assert_eq!(v["file_type_action"], "reject");

    // A change is kept.
    s.ok(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--file-types",
        ".EXE,js",
        "--file-type-action",
        "Quarantine",
        "--action",
        "delete-attachment-and-use-custom-alert",
        "--custom-alert-text",
        "An attachment was removed.",
        "--enable-external-sender-admin-notifications",
        "true",
        "--external-sender-admin-address",
        "security@contoso.test",
    ]);
    let (status, v) = s.api("GET", "/api/v1/malware-filter?tenant=contoso", None);
    assert_eq!(status, 200);
    assert_eq!(v["file_types"], json!(["exe", "js"]));
    assert_eq!(v["file_type_action"], "quarantine");
    assert_eq!(v["action"], "delete-attachment-and-use-custom-alert");
    assert_eq!(v["custom_alert_text"], "An attachment was removed.");
    assert_eq!(v["external_sender_admin_address"], "security@contoso.test");
    assert_eq!(v["enable_file_filter"], true);
}

#[test]
fn custom_malware_filter_policies_by_priority_with_conditions() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.ok(&[
        "group",
        "add",
        "sales@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
    ]);
    s.ok(&[
        "malware-filter",
        "new",
        "--tenant",
        "contoso",
        "--name",
        "Sales",
        "--sent-to-member-of",
        "sales@contoso.test",
        "--file-type-action",
        "quarantine",
    ]);
    s.ok(&[
        "malware-filter",
        "new",
        "--tenant",
        "contoso",
        "--name",
        "Alice",
        "--sent-to",
        "alice@contoso.test",
        "--priority",
        "0",
    ]);
    let out = s.ok(&["malware-filter", "list", "--tenant", "contoso"]);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["Alice", "Sales", "Default"], "{out}");
    assert!(
        out.contains("sent-to-member-of=sales@contoso.test"),
        "{out}"
    );
    let out = s.ok(&[
        "malware-filter",
        "show",
        "--tenant",
        "contoso",
        "--name",
        "sales",
    ]);
    assert!(out.lines().any(|l| l == "priority: 1"), "{out}");
    assert!(
        out.lines().any(|l| l == "file-type-action: quarantine"),
        "{out}"
    );

    // Refusals name the setting and the value.
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "new",
        "--tenant",
        "contoso",
        "--name",
        "Nobody",
        "--sent-to",
        "nobody@contoso.test",
    ]);
    assert!(
        !ok && err.contains("sent_to: \"nobody@contoso.test\" is not a recipient of this tenant"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "new",
        "--tenant",
        "contoso",
        "--name",
        "Bare",
    ]);
    assert!(!ok && err.contains("needs a condition"), "{err}");
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "new",
        "--tenant",
        "contoso",
        "--name",
        "Sales",
        "--recipient-domain-is",
        "contoso.test",
    ]);
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--priority",
        "0",
    ]);
    assert!(
        !ok && err.contains("the default policy applies to every recipient"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "malware-filter",
        "remove",
        "--tenant",
        "contoso",
        "--name",
        "Default",
    ]);
    assert!(!ok && err.contains("cannot be removed"), "{err}");

    // Moving Sales first, then removing Alice.
    s.ok(&[
        "malware-filter",
        "set",
        "--tenant",
        "contoso",
        "--name",
        "Sales",
        "--priority",
        "0",
    ]);
    s.ok(&[
        "malware-filter",
        "remove",
        "--tenant",
        "contoso",
        "--name",
        "Alice",
    ]);
    let (status, v) = s.api("GET", "/api/v1/malware-filters?tenant=contoso", None);
    assert_eq!(status, 200, "{v}");
    let order: Vec<(String, Value)> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["priority"].clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("Sales".to_string(), json!(0)),
            ("Default".to_string(), Value::Null)
        ]
    );
}

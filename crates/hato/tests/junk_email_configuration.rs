//! Mailboxes' safe and blocked senders (Exchange's `Set-MailboxJunkEmailConfiguration`) end to
//! end: `hato serve`, real SMTP clients (Python's smtplib), the CLI and the API. A blocked
//! sender's clean mail goes to that recipient's Junk Email with `SFV:BLK` while another
//! recipient of the same message gets it in the Inbox; a safe sender's spam reaches the Inbox
//! with `SFV:SFE` (SCL -1), its malware stays quarantined; the trace and `hato explain` say
//! why; who may change whose lists; Exchange's 1,024-entry limit; a quarantined item's
//! allow-sender / block-sender under its quarantine policy.

mod common;

use common::{Server, console, send_mime as send};
use serde_json::{Value, json};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const PASSWORD: &str = "correct horse battery";
const HAM_BODY: &str = "Hi,\n\nthe minutes of Tuesday's meeting are attached to the wiki page; \
could you look at the second agenda item before Friday? Bob thinks the budget figures need \
another pass.\n\nThanks,\nMallory\n";

/// contoso (alice, bob, carol, a recipient admin `ra`) and fabrikam (its admin `admin`).
fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    for m in ["alice", "bob", "carol", "ra"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", PASSWORD]);
    }
    console::role_group(
        &s,
        "contoso",
        "Recipient Desk",
        "alice@contoso.test",
        &["ra@contoso.test"],
        "recipient-admin",
    );
    s.tenant("fabrikam");
    s.mailbox("admin@fabrikam.test", &["--password", PASSWORD]);
    console::role_group(
        &s,
        "fabrikam",
        "Admins",
        "admin@fabrikam.test",
        &["admin@fabrikam.test"],
        "tenant-admin",
    );
    s
}

fn login(s: &Server, address: &str) -> String {
    let (status, v) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({ "address": address, "password": PASSWORD })),
    );
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().expect("token").to_string()
}

fn path(address: &str) -> String {
    format!("/api/v1/mailboxes/{address}/junk-email-configuration")
}

fn folder(s: &Server, address: &str, folder: &str) -> Vec<Value> {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/mailboxes/{address}/messages?folder={folder}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The raw form of the message with `subject` in `address`'s `name` folder, once there.
fn raw_in(s: &Server, address: &str, name: &str, subject: &str) -> String {
    let mut id = 0;
    s.wait_for(&format!("{subject:?} in {address}'s {name}"), || {
        if let Some(m) = folder(s, address, name)
            .iter()
            .find(|m| m["subject"] == subject)
        {
            id = m["id"].as_i64().unwrap_or_default();
        }
        id != 0
    });
    s.raw_mail(address, id)
}

fn trace_row(s: &Server, recipient: &str, subject: &str) -> Value {
    let mut row = Value::Null;
    s.wait_for(&format!("the trace of {subject:?} to {recipient}"), || {
        if let Some(r) = s
            .trace(&format!("recipient={recipient}"))
            .into_iter()
            .find(|r| r["subject"] == subject && r["status"] != "Pending")
        {
            row = r;
        }
        !row.is_null()
    });
    row
}

fn spam_event(s: &Server, trace_id: &str, recipient: &str) -> Value {
    s.events(trace_id, recipient)
        .into_iter()
        .find(|e| e["event"] == "Spam" && e["reason"]["stage"] == "spam")
        .unwrap_or_else(|| panic!("no Spam event for {recipient} of {trace_id}"))
}

fn figure(event: &Value, name: &str) -> Value {
    event["reason"]["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn a_blocked_sender_goes_to_one_recipients_junk_while_another_gets_it_in_the_inbox() {
    let s = setup();
    // Alice blocks mallory through the CLI with her own token.
    let alice = login(&s, "alice@contoso.test");
    let (ok, out, err) = s.cli_env(
        &[
            "junk-email-configuration",
            "set",
            "alice@contoso.test",
            "--add-blocked",
            "Mallory@Fabrikam.test",
        ],
        &[("HATO_TOKEN", &alice)],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("blocked-senders-and-domains (1):\n  mallory@fabrikam.test"),
        "{out}"
    );

    let subject = "minutes of Tuesday";
    let reply = send(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test", "bob@contoso.test"],
               "subject": subject, "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = raw_in(&s, "alice@contoso.test", "junk", subject);
    assert!(raw.contains(";SFV:BLK;"), "{raw}");
    assert!(raw.contains("\r\nX-Spam-Flag: YES\r\n"), "{raw}");
    let raw = raw_in(&s, "bob@contoso.test", "inbox", subject);
    assert!(raw.contains(";SFV:NSPM;"), "{raw}");
    assert!(folder(&s, "alice@contoso.test", "inbox").is_empty());
    assert!(folder(&s, "bob@contoso.test", "junk").is_empty());

    // The trace and `hato explain` say why, for alice only.
    let row = trace_row(&s, "alice@contoso.test", subject);
    let id = row["trace_id"].as_str().unwrap().to_string();
    let ev = spam_event(&s, &id, "alice@contoso.test");
    let text = ev["reason"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("the sender is on the recipient's blocked senders list")
            || text.contains("The sender is on the recipient's blocked senders list"),
        "{ev}"
    );
    assert_eq!(figure(&ev, "sfv"), "BLK", "{ev}");
    let bob_ev = spam_event(&s, &id, "bob@contoso.test");
    assert_eq!(figure(&bob_ev, "sfv"), "NSPM", "{bob_ev}");
    let out = s.ok(&["explain", &id, "--recipient", "alice@contoso.test"]);
    assert!(
        out.contains("blocked senders list (mallory@fabrikam.test)"),
        "{out}"
    );

    // Removed again: the next message reaches her Inbox (the pipeline's cache ended).
    s.ok(&[
        "junk-email-configuration",
        "set",
        "alice@contoso.test",
        "--remove-blocked",
        "mallory@fabrikam.test",
    ]);
    let reply = send(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test"],
               "subject": "second minutes", "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = raw_in(&s, "alice@contoso.test", "inbox", "second minutes");
    assert!(raw.contains(";SFV:NSPM;"), "{raw}");
}

#[test]
fn a_safe_senders_spam_reaches_the_inbox_but_its_malware_stays_quarantined() {
    let s = setup();
    // By domain, matched on the envelope sender (MAIL FROM), while the From differs; the same
    // sender blocked too: Safe Senders wins.
    let (status, v) = s.api(
        "PATCH",
        &path("alice@contoso.test"),
        Some(json!({ "add_trusted": ["@fabrikam.test"], "add_blocked": ["fabrikam.test"] })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["trusted_senders_and_domains"], json!(["fabrikam.test"]));
    let subject = "cheap pills";
    let reply = send(
        &s,
        json!({"from": "news@fabrikam.test", "header_from": "Deals <deals@northwind.test>",
               "to": ["alice@contoso.test", "bob@contoso.test"],
               "subject": subject, "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = raw_in(&s, "alice@contoso.test", "inbox", subject);
    assert!(
        raw.contains(";SCL:-1;") && raw.contains(";SFV:SFE;"),
        "{raw}"
    );
    assert!(raw.contains("\r\nX-Spam-Flag: NO\r\n"), "{raw}");
    let raw = raw_in(&s, "bob@contoso.test", "junk", subject);
    assert!(
        raw.contains(";SCL:9;") && raw.contains(";SFV:SPM;"),
        "{raw}"
    );
    let id = trace_row(&s, "alice@contoso.test", subject)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = spam_event(&s, &id, "alice@contoso.test");
    assert!(
        ev["reason"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("safe senders list (fabrikam.test)"),
        "{ev}"
    );

    // EICAR from the same safe sender: malware, held whatever the lists say.
    let subject = "invoice attached";
    let reply = send(
        &s,
        json!({"from": "news@fabrikam.test", "to": ["alice@contoso.test"], "subject": subject,
               "attachments": [{"name": "eicar.com", "text": EICAR}]}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let row = trace_row(&s, "alice@contoso.test", subject);
    assert_eq!(row["status"], "Quarantined", "{row}");
    let (status, v) = s.api(
        "GET",
        "/api/v1/quarantine?recipient=alice@contoso.test&kind=malware",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(
        !folder(&s, "alice@contoso.test", "inbox")
            .iter()
            .any(|m| m["subject"] == subject)
    );
}

#[test]
fn users_change_their_own_lists_admins_their_tenants_and_nobody_another_tenants() {
    let s = setup();
    let alice = login(&s, "alice@contoso.test");
    let ra = login(&s, "ra@contoso.test");
    let fabrikam = login(&s, "admin@fabrikam.test");
    let add = Some(json!({ "add_trusted": ["partner.test"] }));

    let (status, v) = s.api_as(&alice, "PATCH", &path("alice@contoso.test"), add.clone());
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.api_as(&alice, "GET", &path("alice@contoso.test"), None);
    assert_eq!((status, v["enabled"].clone()), (200, json!(true)), "{v}");
    assert_eq!(v["trusted_senders_and_domains"], json!(["partner.test"]));
    // Another user's: 403, read or write.
    let (status, v) = s.api_as(&alice, "PATCH", &path("bob@contoso.test"), add.clone());
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("bob@contoso.test"),
        "{v}"
    );
    let (status, _) = s.api_as(&alice, "GET", &path("bob@contoso.test"), None);
    assert_eq!(status, 403);
    let (ok, _, err) = s.cli_env(
        &["junk-email-configuration", "show", "bob@contoso.test"],
        &[("HATO_TOKEN", &alice)],
    );
    assert!(!ok && err.contains("junk email configuration"), "{err}");
    // A recipient admin: any mailbox of the tenant.
    let (status, v) = s.api_as(
        &ra,
        "PATCH",
        &path("bob@contoso.test"),
        Some(json!({ "enabled": false, "blocked_senders_and_domains": ["spam.test"] })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["enabled"], json!(false));
    // Another tenant's admin: as if it did not exist.
    let (status, _) = s.api_as(&fabrikam, "GET", &path("bob@contoso.test"), None);
    assert_eq!(status, 404);
    let (status, _) = s.api_as(&fabrikam, "PATCH", &path("bob@contoso.test"), add);
    assert_eq!(status, 404);
    // Bad input: a clear 400.
    let (status, v) = s.api_as(
        &alice,
        "PATCH",
        &path("alice@contoso.test"),
        Some(json!({ "add_blocked": ["not an address"] })),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is neither an address"),
        "{v}"
    );
    let (status, v) = s.api_as(
        &alice,
        "PATCH",
        &path("alice@contoso.test"),
        Some(json!({ "add_blocked": ["a.test"], "blocked_senders_and_domains": [] })),
    );
    assert_eq!(status, 400, "{v}");
}

#[test]
fn each_list_holds_at_most_1024_entries() {
    let s = setup();
    let full: Vec<String> = (0..1024).map(|i| format!("sender{i}@spam.test")).collect();
    let (status, v) = s.api(
        "PATCH",
        &path("carol@contoso.test"),
        Some(json!({ "blocked_senders_and_domains": full })),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["blocked_senders_and_domains"].as_array().map(Vec::len),
        Some(1024)
    );
    let (ok, out, err) = s.cli(&[
        "junk-email-configuration",
        "set",
        "carol@contoso.test",
        "--add-blocked",
        "one-more@spam.test",
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("at most 1024 entries") && err.contains("1025"),
        "{err}"
    );
    // Clearing it with '' works.
    let out = s.ok(&[
        "junk-email-configuration",
        "set",
        "carol@contoso.test",
        "--blocked-senders-and-domains",
        "",
    ]);
    assert!(out.contains("blocked-senders-and-domains (0):"), "{out}");
}

#[test]
fn a_quarantined_items_sender_is_allowed_or_blocked_as_its_quarantine_policy_permits() {
    let s = setup();
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
    let held = |subject: &str| -> Value {
        let reply = send(
            &s,
            json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test"],
                   "subject": subject, "body": format!("buy now\n{GTUBE}\n")}),
        );
        assert!(reply.starts_with("250 "), "{reply}");
        let mut found = Value::Null;
        s.wait_for("the quarantined item", || {
            let (_, v) = s.api(
                "GET",
                "/api/v1/quarantine?recipient=alice@contoso.test",
                None,
            );
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
    };
    let alice = login(&s, "alice@contoso.test");
    let it = held("first offer");
    let id = it["id"].as_i64().unwrap();
    let perms: Vec<&str> = it["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        perms.contains(&"allow-sender") && !perms.contains(&"block-sender"),
        "{it}"
    );
    // Block sender is not granted: 403, nothing listed.
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/quarantine/{id}/block-sender"),
        None,
    );
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("block sender"),
        "{v}"
    );
    // Bob cannot touch alice's item.
    let bob = login(&s, "bob@contoso.test");
    let (status, _) = s.api_as(
        &bob,
        "POST",
        &format!("/api/v1/quarantine/{id}/allow-sender"),
        None,
    );
    assert_eq!(status, 404);
    // Allow sender (through the CLI): on her Safe Senders; the item stays held.
    let (ok, out, err) = s.cli_env(
        &["quarantine", "allow-sender", &id.to_string()],
        &[("HATO_TOKEN", &alice)],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("added mallory@fabrikam.test to alice@contoso.test's safe senders"),
        "{out}"
    );
    let (_, v) = s.api("GET", &path("alice@contoso.test"), None);
    assert_eq!(
        v["trusted_senders_and_domains"],
        json!(["mallory@fabrikam.test"])
    );
    assert!(
        v["blocked_senders_and_domains"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, v) = s.api("GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(v["state"], "held", "{v}");
    // Her next message from mallory reaches the Inbox.
    let reply = send(
        &s,
        json!({"from": "mallory@fabrikam.test", "to": ["alice@contoso.test"],
               "subject": "second offer", "body": format!("buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = raw_in(&s, "alice@contoso.test", "inbox", "second offer");
    assert!(raw.contains(";SFV:SFE;"), "{raw}");

    // A policy granting block-sender: the item's sender goes on the Blocked Senders list.
    s.ok(&[
        "quarantine-policy",
        "add",
        "BlockAllowed",
        "--tenant",
        "contoso",
        "--permissions",
        "block-sender,preview",
    ]);
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-quarantine-tag",
        "BlockAllowed",
    ]);
    s.ok(&[
        "junk-email-configuration",
        "set",
        "alice@contoso.test",
        "--trusted-senders-and-domains",
        "",
    ]);
    let it = held("third offer");
    let id = it["id"].as_i64().unwrap();
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/quarantine/{id}/block-sender"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["entry"], "mallory@fabrikam.test");
    assert_eq!(v["list"], "blocked_senders_and_domains");
    let (status, _) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/quarantine/{id}/allow-sender"),
        None,
    );
    assert_eq!(status, 403);
    let (_, v) = s.api("GET", &path("alice@contoso.test"), None);
    assert_eq!(
        v["blocked_senders_and_domains"],
        json!(["mallory@fabrikam.test"])
    );
    // A recipient admin does not manage quarantine.
    let ra = login(&s, "ra@contoso.test");
    let (status, _) = s.api_as(
        &ra,
        "POST",
        &format!("/api/v1/quarantine/{id}/block-sender"),
        None,
    );
    assert_eq!(status, 403);
}

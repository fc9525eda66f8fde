//! The console's Quarantine section against the real server, without a browser: what each role
//! sees and may do (exactly as the API: a user only their own items of the kinds users manage,
//! a recipient admin refused, a global admin their tenant's, the operator every tenant's), a
//! forged POST and a POST without the CSRF token refused with 403, escaping of what mail
//! carries (a `<script>` in subject and body shows as text; an HTML body is never rendered),
//! the filters, release to one, to some and to all recipients, delete; a user's Junk Email and
//! Inbox with the not-junk and junk reports. Mail arrives over SMTP (Python's smtplib) and is
//! held by the real pipeline: EICAR by the malware filter, GTUBE by a spam filter policy whose
//! high-confidence spam action is Quarantine.

mod common;
use common::console::Client;
use common::*;
use serde_json::{Value, json};

/// EICAR's test file (eicar.org), the standard anti-malware test string.
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// GTUBE, the standard anti-spam test string (high confidence spam).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
const PASSWORD: &str = "correct horse battery";

/// contoso with users, a recipient admin and a global admin (through role groups), fabrikam
/// with a user; a spam filter policy for contoso.test quarantining high confidence spam.
fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in ["user", "bob", "carol", "ra", "ga", "owner"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", PASSWORD]);
    }
    s.mailbox("other@fabrikam.test", &["--password", PASSWORD]);
    console::admin_groups(&s);
    s
}

fn quarantine_policy(s: &Server) {
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
    ]);
    s.ok(&[
        "spam-filter",
        "set",
        "Strict",
        "--tenant",
        "contoso",
        "--high-confidence-spam-action",
        "quarantine",
    ]);
}

/// The quarantine's items of contoso (the API's list), once there are `n`.
fn items(s: &Server, n: usize) -> Vec<Value> {
    let mut items = Vec::new();
    s.wait_for(&format!("{n} quarantined items"), || {
        let (status, v) = s.api("GET", "/api/v1/quarantine?tenant=contoso", None);
        assert_eq!(status, 200, "{v}");
        items = v["items"].as_array().cloned().unwrap_or_default();
        items.len() >= n
    });
    assert_eq!(items.len(), n, "{items:?}");
    items
}

fn id_of(items: &[Value], recipient: &str, kind: &str, subject_part: &str) -> String {
    items
        .iter()
        .find(|i| {
            i["recipient"] == recipient
                && i["kind"] == kind
                && i["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains(subject_part))
        })
        .and_then(|i| i["id"].as_i64())
        .unwrap_or_else(|| panic!("an item {kind} to {recipient}: {items:?}"))
        .to_string()
}

fn state_of(s: &Server, id: &str) -> String {
    let (status, v) = s.api("GET", &format!("/api/v1/quarantine/{id}"), None);
    assert_eq!(status, 200, "{v}");
    v["state"].as_str().unwrap_or_default().to_string()
}

const SCRIPT_SUBJECT: &str = "<script>alert(1)</script> cheap pills";

/// Sends the held mail: GTUBE with `<script>` in subject and body to user, bob and carol
/// (three high-confidence-spam copies); an HTML-only GTUBE message to user; EICAR to user.
/// Returns the items.
fn held_mail(s: &Server) -> Vec<Value> {
    quarantine_policy(s);
    let reply = send_mime(
        s,
        json!({"from": "mallory@fabrikam.test",
               "to": ["user@contoso.test", "bob@contoso.test", "carol@contoso.test"],
               "subject": SCRIPT_SUBJECT,
               "body": format!("<script>alert(2)</script> buy now\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let html = python(
        r#"
import sys, smtplib
port = int(sys.argv[1])
gtube = sys.argv[2]
msg = ("From: mallory@fabrikam.test\r\nTo: user@contoso.test\r\nSubject: html only\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
       "<html><body><p>Hello <b>html</b> world " + gtube + "</p>"
       "<script>alert(3)</script><img src=\"http://tracker.test/x.png\"></body></html>\r\n")
s = smtplib.SMTP("127.0.0.1", port)
s.sendmail("mallory@fabrikam.test", ["user@contoso.test"], msg.encode())
s.quit()
print("sent")
"#,
        &[&s.smtp.port().to_string(), GTUBE],
    );
    assert!(html.contains("sent"), "{html}");
    let reply = send_mime(
        s,
        json!({"from": "mallory@fabrikam.test", "to": ["user@contoso.test"],
               "subject": "invoice attached",
               "attachments": [{"name": "eicar.com", "text": EICAR}]}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    items(s, 5)
}

#[test]
fn each_role_sees_and_does_exactly_what_the_api_allows() {
    let s = setup();
    let items = held_mail(&s);
    let user_spam = id_of(&items, "user@contoso.test", "high-confidence-spam", "cheap");
    let user_html = id_of(&items, "user@contoso.test", "high-confidence-spam", "html");
    let user_malware = id_of(&items, "user@contoso.test", "malware", "invoice");
    let bob_spam = id_of(&items, "bob@contoso.test", "high-confidence-spam", "cheap");

    // A global admin sees every item of the tenant.
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let a = ga.get("/quarantine");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.table_rows(), 5, "{}", a.body);
    assert!(a.body.contains("Malware") && a.body.contains("Strict"));

    // A user: their own items of the kinds users manage, nothing else.
    let mut user = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let a = user.get("/quarantine");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.table_rows(), 2, "{}", a.body);
    assert!(!a.body.contains("invoice attached"), "{}", a.body);
    assert!(!a.body.contains("bob@contoso.test"), "{}", a.body);
    // Another's item is not there for them (the API's 404); their own malware is the API's
    // 403, with its words.
    let a = user.get(&format!("/quarantine/{bob_spam}"));
    assert_eq!(a.status, 404, "{}", a.body);
    let a = user.get(&format!("/quarantine/{user_malware}"));
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body
            .contains("only admins may see or release messages quarantined as malware"),
        "{}",
        a.body
    );
    // Forged POSTs (a valid session and token, no button on any page): refused as the API
    // refuses them, nothing released or deleted.
    for path in [
        format!("/quarantine/{user_malware}/release"),
        format!("/quarantine/{user_malware}/delete"),
        format!("/quarantine/{user_spam}/release-all"),
    ] {
        let a = user.post_csrf(&path, &[]);
        assert_eq!(a.status, 403, "{path}: {}", a.body);
    }
    let a = user.post_csrf(
        &format!("/quarantine/{user_malware}/release-some"),
        &[(&format!("copy-{user_malware}"), "1")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(state_of(&s, &user_malware), "held");
    // Without the CSRF token, or from another origin: 403, nothing done.
    let a = user.post_with(&format!("/quarantine/{user_spam}/release"), &[], false);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(state_of(&s, &user_spam), "held");

    // A recipient admin does not manage quarantine (the API's 403).
    let mut ra = Client::signed_in_csrf(&s, "ra@contoso.test", PASSWORD);
    let a = ra.get("/quarantine");
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains("quarantine needs the global admin role"),
        "{}",
        a.body
    );
    let a = ra.post_csrf(&format!("/quarantine/{user_spam}/release"), &[]);
    assert_eq!(a.status, 403, "{}", a.body);

    // Another tenant's user never learns of contoso's items.
    let mut other = Client::signed_in_csrf(&s, "other@fabrikam.test", PASSWORD);
    let a = other.get(&format!("/quarantine/{user_spam}"));
    assert_eq!(a.status, 404, "{}", a.body);
    let a = other.get("/quarantine");
    assert_eq!((a.status, a.table_rows()), (200, 0), "{}", a.body);

    // The operator sees every tenant's.
    let mut op = Client::signed_in_csrf(&s, "operator", &s.token);
    let a = op.get("/quarantine");
    assert_eq!((a.status, a.table_rows()), (200, 5), "{}", a.body);

    // The user releases their own spam: delivered to their Inbox, traced.
    let a = user.post_csrf(&format!("/quarantine/{user_spam}/release"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some(format!("/quarantine/{user_spam}?done=released&n=1").as_str())
    );
    assert_eq!(state_of(&s, &user_spam), "released");
    s.wait_for("the released message in user's Inbox", || {
        s.mail("user@contoso.test")
            .iter()
            .any(|m| m["subject"] == SCRIPT_SUBJECT && m["folder"] == "inbox")
    });
    let a = user.get(&format!("/quarantine/{user_spam}?done=released&n=1"));
    assert!(a.body.contains("Released: 1 recipient"), "{}", a.body);
    // Once only: the API's 409.
    let a = user.post_csrf(&format!("/quarantine/{user_spam}/release"), &[]);
    assert_eq!(a.status, 409, "{}", a.body);
    // The user deletes their HTML one.
    let a = user.post_csrf(&format!("/quarantine/{user_html}/delete"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(state_of(&s, &user_html), "deleted");
    let a = user.get(&format!("/quarantine/{user_html}"));
    assert!(
        a.body.contains("Deleted") && a.body.contains("its content is gone"),
        "{}",
        a.body
    );
}

#[test]
fn what_mail_carries_is_escaped_and_html_is_never_rendered() {
    let s = setup();
    let items = held_mail(&s);
    let user_spam = id_of(&items, "user@contoso.test", "high-confidence-spam", "cheap");
    let user_html = id_of(&items, "user@contoso.test", "high-confidence-spam", "html");
    let user_malware = id_of(&items, "user@contoso.test", "malware", "invoice");
    let mut user = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    for page in [
        "/quarantine".to_string(),
        format!("/quarantine/{user_spam}"),
    ] {
        let a = user.get(&page);
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(
            a.body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; cheap pills"),
            "{page}: {}",
            a.body
        );
        assert!(!a.body.contains("<script>alert"), "{page}: {}", a.body);
    }
    // The preview: header fields and the plain text, escaped.
    let a = user.get(&format!("/quarantine/{user_spam}"));
    assert!(
        a.body
            .contains("&lt;script&gt;alert(2)&lt;/script&gt; buy now"),
        "{}",
        a.body
    );
    assert!(a.body.contains("mallory@fabrikam.test"), "{}", a.body);
    // Why: the spam stage, with its SCL.
    assert!(a.body.contains("scl = 9"), "{}", a.body);
    // An HTML-only message: its text, never its markup, nothing it names.
    let a = user.get(&format!("/quarantine/{user_html}"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Hello html world"), "{}", a.body);
    assert!(a.body.contains("The text of the HTML body"), "{}", a.body);
    for markup in ["<b>html</b>", "alert(3)", "tracker.test", "<img"] {
        assert!(!a.body.contains(markup), "{markup}: {}", a.body);
    }
    // The API's preview says the text is the HTML body's.
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/quarantine/{user_html}/preview"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["text_from_html"], true, "{v}");
    assert!(
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("Hello html world") && !t.contains('<')),
        "{v}"
    );
    // The admin sees the malware's name and the trace events with their reasons.
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    let a = ga.get(&format!("/quarantine/{user_malware}"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Eicar-Test-Signature"), "{}", a.body);
    assert!(a.body.contains("eicar.com"), "{}", a.body);
    assert!(a.body.contains(">Malware<"), "{}", a.body);
}

#[test]
fn filters_release_to_some_and_to_all_and_csv() {
    let s = setup();
    let items = held_mail(&s);
    let user_spam = id_of(&items, "user@contoso.test", "high-confidence-spam", "cheap");
    let bob_spam = id_of(&items, "bob@contoso.test", "high-confidence-spam", "cheap");
    let carol_spam = id_of(
        &items,
        "carol@contoso.test",
        "high-confidence-spam",
        "cheap",
    );
    let mut ga = Client::signed_in_csrf(&s, "ga@contoso.test", PASSWORD);
    for (query, rows) in [
        ("kind=malware", 1),
        ("kind=high-confidence-spam", 4),
        ("recipient=bob%40contoso.test", 1),
        ("policy=strict", 4),
        ("policy=Nope", 0),
        ("state=held", 5),
        ("state=released", 0),
        ("expires_before=2000-01-01", 0),
        ("expires_before=2999-01-01", 5),
    ] {
        let a = ga.get(&format!("/quarantine?{query}"));
        assert_eq!(a.status, 200, "{query}: {}", a.body);
        assert_eq!(a.table_rows(), rows, "{query}: {}", a.body);
    }
    // The API takes the same filters.
    for (query, n) in [
        ("policy=STRICT", 4),
        ("expires_before=2000-01-01", 0),
        ("expires_before=2999-01-01T00:00:00Z", 5),
    ] {
        let (status, v) = s.api("GET", &format!("/api/v1/quarantine?{query}"), None);
        assert_eq!(status, 200, "{query}: {v}");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(n), "{query}: {v}");
    }
    let (status, v) = s.api("GET", "/api/v1/quarantine?expires_before=soon", None);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("expires_before")),
        "{v}"
    );
    // A bad filter: the API's 400, with its words.
    let a = ga.get("/quarantine?kind=virus");
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("unknown kind virus"), "{}", a.body);
    let a = ga.get("/quarantine.csv?kind=malware");
    assert_eq!(a.status, 200);
    assert!(
        a.header("content-type")
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert_eq!(a.body.lines().count(), 2, "{}", a.body);
    assert!(a.body.contains("invoice attached"), "{}", a.body);

    // The detail offers the message's held copies; release to bob only.
    let a = ga.get(&format!("/quarantine/{user_spam}"));
    for id in [&user_spam, &bob_spam, &carol_spam] {
        assert!(
            a.body.contains(&format!("name=\"copy-{id}\"")),
            "{}",
            a.body
        );
    }
    let a = ga.post_csrf(
        &format!("/quarantine/{user_spam}/release-some"),
        &[(&format!("copy-{bob_spam}"), "1")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    s.wait_for("bob's released copy", || {
        s.mail("bob@contoso.test")
            .iter()
            .any(|m| m["subject"] == SCRIPT_SUBJECT)
    });
    assert_eq!(state_of(&s, &bob_spam), "released");
    assert_eq!(state_of(&s, &user_spam), "held");
    assert_eq!(state_of(&s, &carol_spam), "held");
    assert!(s.mail("carol@contoso.test").is_empty());
    assert!(s.mail("user@contoso.test").is_empty());
    // A copy of another message does not ride along.
    let malware = id_of(&items, "user@contoso.test", "malware", "invoice");
    let a = ga.post_csrf(
        &format!("/quarantine/{user_spam}/release-some"),
        &[(&format!("copy-{malware}"), "1")],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(state_of(&s, &malware), "held");
    // Nothing chosen: said so.
    let a = ga.post_csrf(&format!("/quarantine/{user_spam}/release-some"), &[]);
    assert_eq!(a.status, 400, "{}", a.body);

    // Release to all: the copies still held (user's and carol's).
    let a = ga.post_csrf(&format!("/quarantine/{carol_spam}/release-all"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some(format!("/quarantine/{carol_spam}?done=released&n=2").as_str())
    );
    for id in [&user_spam, &carol_spam] {
        assert_eq!(state_of(&s, id), "released");
    }
    s.wait_for("carol's copy", || !s.mail("carol@contoso.test").is_empty());
    let a = ga.get("/quarantine?state=released");
    assert_eq!(a.table_rows(), 3, "{}", a.body);
    // The admin releases the malware; the trace says who.
    let a = ga.post_csrf(&format!("/quarantine/{malware}/release"), &[]);
    assert_eq!(a.status, 303, "{}", a.body);
    let (status, v) = s.api("GET", &format!("/api/v1/quarantine/{malware}"), None);
    assert_eq!(status, 200);
    assert_eq!(v["decided_by"], "ga@contoso.test", "{v}");
}

#[test]
fn a_user_reports_not_junk_and_junk_from_their_own_folders() {
    let s = setup();
    // The default policy sends high confidence spam to Junk Email.
    let reply = send_mime(
        &s,
        json!({"from": "news@fabrikam.test", "to": ["user@contoso.test"],
               "subject": "<b>weekly</b> news", "body": format!("{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let trace_id = trace_id_of(&reply);
    s.wait_for("the message in Junk Email", || {
        s.mail("user@contoso.test")
            .iter()
            .any(|m| m["folder"] == "junk")
    });
    let id = s.mail("user@contoso.test")[0]["id"]
        .as_i64()
        .expect("id")
        .to_string();
    let mut user = Client::signed_in_csrf(&s, "user@contoso.test", PASSWORD);
    let a = user.get("/quarantine/mail?folder=junk");
    assert_eq!((a.status, a.table_rows()), (200, 1), "{}", a.body);
    assert!(
        a.body.contains("&lt;b&gt;weekly&lt;/b&gt; news"),
        "{}",
        a.body
    );
    let a = user.get("/quarantine/mail?folder=inbox");
    assert_eq!((a.status, a.table_rows()), (200, 0), "{}", a.body);
    // Another user cannot open it (the API's refusal), nor move it.
    let mut bob = Client::signed_in_csrf(&s, "bob@contoso.test", PASSWORD);
    let a = bob.get(&format!("/quarantine/mail/{id}"));
    assert_eq!(a.status, 404, "{}", a.body);
    let a = bob.post_csrf(
        &format!("/quarantine/mail/{id}/move"),
        &[("folder", "inbox")],
    );
    assert_eq!(a.status, 404, "{}", a.body);
    // Without the token: 403.
    let a = user.post_with(
        &format!("/quarantine/mail/{id}/move"),
        &[("folder", "inbox")],
        false,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = user.get(&format!("/quarantine/mail/{id}"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Not junk"), "{}", a.body);
    let a = user.post_csrf(
        &format!("/quarantine/mail/{id}/move"),
        &[("folder", "inbox")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.header("location"),
        Some("/quarantine/mail?folder=junk&done=not-junk")
    );
    assert_eq!(s.mail("user@contoso.test")[0]["folder"], "inbox");
    // Recorded for the admin: on the message's trace.
    let said = |what: &str| {
        s.events(&trace_id, "user@contoso.test").iter().any(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("Reported as {what} by user@contoso.test")))
        })
    };
    assert!(said("not junk"));
    let a = user.get("/quarantine/mail?folder=junk&done=not-junk");
    assert!(a.body.contains("Reported as not junk"), "{}", a.body);
    // And back: junk.
    let a = user.post_csrf(
        &format!("/quarantine/mail/{id}/move"),
        &[("folder", "junk")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(s.mail("user@contoso.test")[0]["folder"], "junk");
    assert!(said("junk"));
    // The operator has no mailbox: no folders to show, said so.
    let mut op = Client::signed_in_csrf(&s, "operator", &s.token);
    let a = op.get("/quarantine/mail?folder=junk");
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("without a mailbox"), "{}", a.body);
}

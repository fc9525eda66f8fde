//! The messages hato writes itself (approval requests, NDRs), end to end: nothing a sender or a
//! moderator writes can add a header field or a body of its own to them.

mod common;
use common::*;
use serde_json::{Value, json};

/// `x` CR LF `Reply-To: attacker@evil.test` CR LF CR LF `body of the attacker`, as an RFC 2047
/// encoded-word: one harmless-looking header line in the message as sent.
const MALICIOUS_SUBJECT: &str =
    "=?utf-8?b?eA0KUmVwbHktVG86IGF0dGFja2VyQGV2aWwudGVzdA0KDQpib2R5IG9mIHRoZSBhdHRhY2tlcg==?=";
/// What it decodes to once control characters are removed.
const SUBJECT_TEXT: &str = "xReply-To: attacker@evil.testbody of the attacker";

/// The names of the header fields of `raw`, in order (a line starting with white space continues
/// the field before it).
fn field_names(raw: &str) -> Vec<String> {
    let head = &raw[..raw.find("\r\n\r\n").expect("a header and a body")];
    head.split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// Asserts what every message hato writes keeps to, whatever went into it.
#[track_caller]
fn assert_only_hatos(raw: &str) {
    assert!(
        !raw.contains("\r\nReply-To:") && !raw.contains("\nReply-To:"),
        "a Reply-To field: {raw}"
    );
    assert!(
        !raw.contains("\nbody of the attacker"),
        "the attacker's body: {raw}"
    );
    for line in raw.split("\r\n") {
        assert!(line.len() <= 998, "{} octets: {line:.80}", line.len());
        assert!(!line.contains(['\r', '\n']), "bare CR or LF: {line:?}");
    }
}

fn item<'a>(items: &'a [Value], prefix: &str) -> Option<&'a Value> {
    items
        .iter()
        .find(|m| m["subject"].as_str().is_some_and(|s| s.starts_with(prefix)))
}

#[test]
fn a_subject_or_a_comment_cannot_inject_fields_into_approval_requests_or_ndrs() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &["--password", "password-alice"]);
    s.mailbox("bob@contoso.test", &[]);
    s.mailbox("carol@contoso.test", &[]);
    s.ok(&[
        "group",
        "add",
        "moderated@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "carol@contoso.test",
        "--moderation-enabled",
        "true",
        "--require-sender-authentication",
        "false",
    ]);
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    let reply = c.send_mail(
        "bob@contoso.test",
        &["moderated@contoso.test"],
        &format!(
            "From: bob@contoso.test\nSubject: {MALICIOUS_SUBJECT}\nMessage-ID: <m1@contoso.test>\n\nbob's own text\n"
        ),
    );
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");

    // The approval request to the moderator (alice, the owner).
    s.wait_for("the approval request", || {
        item(&s.mail("alice@contoso.test"), "Approval requested").is_some()
    });
    let items = s.mail("alice@contoso.test");
    let request = item(&items, "Approval requested").unwrap();
    let raw = s.raw_mail("alice@contoso.test", request["id"].as_i64().unwrap());
    assert_only_hatos(&raw);
    assert_eq!(
        request["subject"],
        format!("Approval requested: {SUBJECT_TEXT}")
    );
    assert_eq!(
        field_names(&raw),
        [
            "Return-Path",
            "Received",
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Date",
            "Auto-Submitted",
            "MIME-Version",
            "Content-Type"
        ]
    );
    let body = &raw[raw.find("\r\n\r\n").unwrap()..];
    assert!(
        body.contains(
            "A message to the group moderated@contoso.test is waiting for your approval."
        ),
        "{raw}"
    );
    assert!(
        body.contains(&format!("Subject: {SUBJECT_TEXT}\r\n")),
        "{raw}"
    );

    // The moderator rejects it with a comment that tries the same, and is long: bob's NDR.
    let (status, v) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"address": "alice@contoso.test", "password": "password-alice"})),
    );
    assert_eq!(status, 200, "{v}");
    let alice = v["token"].as_str().unwrap().to_string();
    let (status, held) = s.api_as(&alice, "GET", "/api/v1/moderation?state=pending", None);
    assert_eq!(status, 200, "{held}");
    let id = held[0]["id"].as_i64().expect("held message");
    // As long as a comment may be (1,000 characters), its last line over 998 bytes (RFC 5322
    // §2.1.1's limit) in two-byte characters.
    let attack = "off topic\r\nReply-To: attacker@evil.test\r\n\r\nbody of the attacker ";
    let comment = format!("{attack}{}", "ž".repeat(1000 - attack.chars().count()));
    assert!(comment.lines().last().is_some_and(|l| l.len() > 998));
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/moderation/{id}/reject"),
        Some(json!({ "comment": comment })),
    );
    assert_eq!(status, 200, "{v}");
    s.wait_for("bob's NDR", || {
        item(&s.mail("bob@contoso.test"), "Undeliverable").is_some()
    });
    let items = s.mail("bob@contoso.test");
    let ndr = item(&items, "Undeliverable").unwrap();
    let raw = s.raw_mail("bob@contoso.test", ndr["id"].as_i64().unwrap());
    assert_only_hatos(&raw);
    assert_eq!(ndr["subject"], format!("Undeliverable: {SUBJECT_TEXT}"));
    assert_eq!(
        field_names(&raw),
        [
            "Return-Path",
            "Received",
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Date",
            "Auto-Submitted",
            "In-Reply-To",
            "MIME-Version",
            "Content-Type"
        ]
    );
    assert!(
        raw.contains("off topic"),
        "the comment is reported: {raw:.3000}"
    );
    assert_eq!(
        s.mail("carol@contoso.test").len(),
        0,
        "rejected: never delivered"
    );
}

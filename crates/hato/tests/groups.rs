//! Groups end to end: mail to each type reaches exactly the right mailboxes once; dynamic
//! membership follows the directory; sender restrictions; moderation; nesting and loops;
//! Microsoft 365 group conversations, subscribers, calendar and files; joining and rights.

mod common;
use common::*;
use serde_json::{Value, json};

fn ready(s: &Server) -> Smtp {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    c
}

/// contoso with alice (Sales, Tokyo), bob (Sales, Osaka), carol (Engineering, Tokyo), dave
/// (Sales, Tokyo); every mailbox has the password "password-<name>".
fn contoso() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    for (m, dept, office) in [
        ("alice", "Sales", "Tokyo"),
        ("bob", "Sales", "Osaka"),
        ("carol", "Engineering", "Tokyo"),
        ("dave", "Sales", "Tokyo"),
    ] {
        s.mailbox(
            &format!("{m}@contoso.test"),
            &[
                "--department",
                dept,
                "--office",
                office,
                "--password",
                &format!("password-{m}"),
            ],
        );
    }
    s
}

fn count(s: &Server, mailbox: &str) -> usize {
    s.mail(mailbox).len()
}

fn counts(s: &Server) -> Vec<usize> {
    ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|m| count(s, &format!("{m}@contoso.test")))
        .collect()
}

fn login(s: &Server, who: &str) -> String {
    let (status, v) = s.api("POST", "/api/v1/auth/login", Some(json!({ "address": format!("{who}@contoso.test"), "password": format!("password-{who}") })));
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

fn open_group(s: &Server, args: &[&str]) {
    let mut a = vec!["group", "add"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--require-sender-authentication",
        "false",
    ]);
    s.ok(&a);
}

/// Sends to `to` and waits until nothing of the message is pending.
fn send_and_settle(s: &Server, to: &[&str], subject: &str) -> String {
    let mut c = ready(s);
    let reply = c.send_mail(
        "outside@fabrikam.test",
        to,
        &format!("Subject: {subject}\nMessage-ID: <{subject}@fabrikam.test>\n\nhello\n"),
    );
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    let id = trace_id_of(&reply);
    s.wait_for("routing", || {
        !s.trace(&format!("trace_id={id}"))
            .iter()
            .any(|r| r["status"] == "Pending")
    });
    id
}

#[test]
fn each_mail_enabled_type_reaches_exactly_its_members_once() {
    let s = contoso();
    open_group(
        &s,
        &[
            "sales@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--member",
            "dave@contoso.test",
        ],
    );
    open_group(
        &s,
        &[
            "managers@contoso.test",
            "--type",
            "mail-security",
            "--member",
            "carol@contoso.test",
            "--member-join-restriction",
            "closed",
            "--member-depart-restriction",
            "closed",
        ],
    );
    open_group(
        &s,
        &[
            "tokyo-sales@contoso.test",
            "--type",
            "dynamic",
            "--filter",
            "(Department -eq 'Sales') -and (Office -like 'Tokyo*')",
        ],
    );
    send_and_settle(&s, &["sales@contoso.test"], "dg");
    assert_eq!(counts(&s), [0, 1, 0, 1]);
    send_and_settle(&s, &["managers@contoso.test"], "mesg");
    assert_eq!(counts(&s), [0, 1, 1, 1]);
    send_and_settle(&s, &["tokyo-sales@contoso.test"], "ddg");
    assert_eq!(
        counts(&s),
        [1, 1, 1, 2],
        "alice and dave are Sales in Tokyo"
    );
    // All three at once, plus dave directly: everyone once.
    send_and_settle(
        &s,
        &[
            "sales@contoso.test",
            "managers@contoso.test",
            "tokyo-sales@contoso.test",
            "dave@contoso.test",
        ],
        "all",
    );
    assert_eq!(counts(&s), [2, 2, 2, 3]);
    // A security group has no address: it cannot be created with one, so mail to it is impossible.
    let (status, v) = s.api("POST", "/api/v1/groups", Some(json!({"type": "security", "tenant": "contoso", "address": "sec@contoso.test", "name": "Sec", "owners": ["alice@contoso.test"]})));
    assert_eq!(status, 400, "{v}");
    s.ok(&[
        "group",
        "add",
        "Security Team",
        "--type",
        "security",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bob@contoso.test",
        "--member-join-restriction",
        "closed",
        "--member-depart-restriction",
        "closed",
    ]);
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<outside@fabrikam.test>");
    assert!(
        c.cmd("RCPT TO:<security.team@contoso.test>")
            .starts_with("550 5.4.1")
    );
}

#[test]
fn trace_shows_the_group_expanded_then_each_member() {
    let s = contoso();
    open_group(
        &s,
        &[
            "sales@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--member",
            "dave@contoso.test",
        ],
    );
    let id = send_and_settle(&s, &["sales@contoso.test"], "traced");
    let rows = s.trace(&format!("trace_id={id}"));
    let status_of = |r: &str| {
        rows.iter()
            .find(|x| x["recipient"] == r)
            .map(|x| x["status"].clone())
    };
    assert_eq!(status_of("sales@contoso.test"), Some(json!("Expanded")));
    assert_eq!(status_of("bob@contoso.test"), Some(json!("Delivered")));
    assert_eq!(status_of("dave@contoso.test"), Some(json!("Delivered")));
    assert_eq!(rows.len(), 3);
    let (_, d) = s.api(
        "GET",
        &format!("/api/v1/trace/{id}?recipient=sales@contoso.test"),
        None,
    );
    let events: Vec<&str> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["Receive", "Expand"]);
    assert!(d[1]["detail"].as_str().unwrap().contains("2 recipient"));
}

#[test]
fn dynamic_membership_follows_an_attribute_change_between_two_sends() {
    let s = contoso();
    open_group(
        &s,
        &[
            "engineering@contoso.test",
            "--type",
            "dynamic",
            "--filter",
            "Department -eq 'Engineering'",
        ],
    );
    send_and_settle(&s, &["engineering@contoso.test"], "first");
    assert_eq!(counts(&s), [0, 0, 1, 0]);
    // Bob transfers to Engineering: one attribute change, no group edit.
    s.ok(&[
        "mailbox",
        "set",
        "bob@contoso.test",
        "--department",
        "Engineering",
    ]);
    send_and_settle(&s, &["engineering@contoso.test"], "second");
    assert_eq!(counts(&s), [0, 1, 2, 0]);
    // The preview agrees.
    let (_, v) = s.api(
        "POST",
        "/api/v1/groups/preview",
        Some(json!({"tenant": "contoso", "filter": "Department -eq 'Engineering'"})),
    );
    let addrs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["bob@contoso.test", "carol@contoso.test"]);
    // Precanned form: values OR-ed within a property, properties AND-ed.
    let (status, v) = s.api("POST", "/api/v1/groups", Some(json!({"type": "dynamic", "tenant": "contoso", "address": "canned@contoso.test",
        "owners": ["alice@contoso.test"], "require_sender_authentication": false,
        "precanned": {"included_recipients": ["MailboxUsers"], "conditional_department": ["sales", "engineering"]}})));
    assert_eq!(status, 201, "{v}");
    let (_, members) = s.api("GET", "/api/v1/groups/canned@contoso.test/members", None);
    assert_eq!(members.as_array().unwrap().len(), 4);
    // A filter that does not parse is refused with its position.
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "dynamic", "tenant": "contoso", "address": "bad@contoso.test",
        "owners": ["alice@contoso.test"], "recipient_filter": "Department -eq"}),
        ),
    );
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("position"), "{v}");
}

#[test]
fn outside_senders_are_refused_by_default_and_accepted_after_the_setting_changes() {
    let s = contoso();
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
        "--member",
        "bob@contoso.test",
    ]);
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<outside@fabrikam.test>");
    assert_eq!(
        c.cmd("RCPT TO:<sales@contoso.test>"),
        "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; the group sales@contoso.test accepts mail only from senders inside its organization\r\n"
    );
    // A spoofed internal sender over direct send is not authenticated either.
    c.cmd("RSET");
    c.cmd("MAIL FROM:<alice@contoso.test>");
    assert!(
        c.cmd("RCPT TO:<sales@contoso.test>")
            .starts_with("550 5.7.133")
    );
    s.ok(&[
        "group",
        "set",
        "sales@contoso.test",
        "--require-sender-authentication",
        "false",
    ]);
    send_and_settle(&s, &["sales@contoso.test"], "allowed-now");
    assert_eq!(count(&s, "bob@contoso.test"), 1);
}

#[test]
fn allowed_and_rejected_senders() {
    let s = contoso();
    s.ok(&[
        "contact",
        "add",
        "partner@fabrikam.test",
        "--tenant",
        "contoso",
        "--name",
        "Partner",
    ]);
    s.ok(&[
        "contact",
        "add",
        "spammer@fabrikam.test",
        "--tenant",
        "contoso",
    ]);
    open_group(
        &s,
        &[
            "vip@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--accept-messages-only-from",
            "partner@fabrikam.test",
        ],
    );
    open_group(
        &s,
        &[
            "news@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--reject-messages-from",
            "spammer@fabrikam.test",
        ],
    );
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<stranger@fabrikam.test>");
    assert!(
        c.cmd("RCPT TO:<vip@contoso.test>")
            .starts_with("550 5.7.124")
    );
    assert!(c.cmd("RCPT TO:<news@contoso.test>").starts_with("250"));
    // Direct send is anonymous: saying MAIL FROM:<partner@…> proves nothing, so the accept
    // list (which only an authenticated identity can satisfy) refuses it too.
    c.cmd("RSET");
    c.cmd("MAIL FROM:<partner@fabrikam.test>");
    assert!(
        c.cmd("RCPT TO:<vip@contoso.test>")
            .starts_with("550 5.7.124")
    );
    c.cmd("RSET");
    c.cmd("MAIL FROM:<spammer@fabrikam.test>");
    let r = c.cmd("RCPT TO:<news@contoso.test>");
    assert!(
        r.starts_with("550 5.7.1 ") && r.contains("news@contoso.test"),
        "{r}"
    );
}

#[test]
fn nested_groups_with_a_loop_deliver_one_copy_each() {
    let s = contoso();
    open_group(
        &s,
        &[
            "a@contoso.test",
            "--type",
            "distribution",
            "--member",
            "alice@contoso.test",
            "--member",
            "bob@contoso.test",
        ],
    );
    open_group(
        &s,
        &[
            "b@contoso.test",
            "--type",
            "distribution",
            "--member",
            "a@contoso.test",
            "--member",
            "bob@contoso.test",
        ],
    );
    open_group(
        &s,
        &[
            "c@contoso.test",
            "--type",
            "distribution",
            "--member",
            "b@contoso.test",
            "--member",
            "bob@contoso.test",
            "--member",
            "carol@contoso.test",
        ],
    );
    // Close the loop: a contains c.
    s.ok(&[
        "group",
        "members",
        "add",
        "a@contoso.test",
        "c@contoso.test",
    ]);
    let id = send_and_settle(&s, &["a@contoso.test"], "loop");
    assert_eq!(
        counts(&s),
        [1, 1, 1, 0],
        "bob is in three groups and gets one copy"
    );
    let rows = s.trace(&format!("trace_id={id}"));
    let expanded: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "Expanded")
        .map(|r| r["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(expanded.len(), 3, "{rows:?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r["recipient"] == "bob@contoso.test")
            .count(),
        1
    );
}

#[test]
fn a_restricted_nested_group_produces_an_ndr_naming_it() {
    let s = contoso();
    s.ok(&[
        "group",
        "add",
        "inner@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "carol@contoso.test",
    ]);
    open_group(
        &s,
        &[
            "outer@contoso.test",
            "--type",
            "distribution",
            "--member",
            "inner@contoso.test",
            "--member",
            "bob@contoso.test",
        ],
    );
    // The sender is a local mailbox (so the NDR can be read), but direct send is not authenticated.
    let mut c = ready(&s);
    let reply = c.send_mail(
        "dave@contoso.test",
        &["outer@contoso.test"],
        "Subject: nested\n\nx\n",
    );
    let id = trace_id_of(&reply);
    s.wait_for("NDR", || count(&s, "dave@contoso.test") == 1);
    assert_eq!(counts(&s), [0, 1, 0, 1]);
    let failed = s.trace(&format!("trace_id={id}&status=Failed"));
    assert_eq!(failed[0]["recipient"], "inner@contoso.test");
    let ndr = &s.mail("dave@contoso.test")[0];
    let raw = s.raw_mail("dave@contoso.test", ndr["id"].as_i64().unwrap());
    assert!(
        raw.contains("Final-Recipient: rfc822; inner@contoso.test"),
        "{raw}"
    );
    assert!(raw.contains("5.7.133"), "{raw}");
}

#[test]
fn contacts_expand_to_their_outside_address() {
    let s = contoso();
    s.ok(&[
        "contact",
        "add",
        "partner@fabrikam.test",
        "--tenant",
        "contoso",
    ]);
    open_group(
        &s,
        &[
            "mixed@contoso.test",
            "--type",
            "distribution",
            "--member",
            "partner@fabrikam.test",
            "--member",
            "bob@contoso.test",
        ],
    );
    let mut c = ready(&s);
    let reply = c.send_mail(
        "x@fabrikam.test",
        &["mixed@contoso.test"],
        "Subject: mixed\n\nx\n",
    );
    let id = trace_id_of(&reply);
    s.wait_for("expansion", || {
        s.trace(&format!("trace_id={id}&status=Delivered")).len() == 1
    });
    let pending = s.trace(&format!("trace_id={id}&status=Pending"));
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["recipient"], "partner@fabrikam.test");
}

#[test]
fn report_to_originator_off_sends_member_ndrs_to_the_owner() {
    let s = contoso();
    s.mailbox("full@contoso.test", &["--quota-mb", "1"]);
    open_group(
        &s,
        &[
            "list@contoso.test",
            "--type",
            "distribution",
            "--member",
            "full@contoso.test",
            "--report-to-originator",
            "false",
        ],
    );
    let mut c = ready(&s);
    let big = "Subject: big\n\n".to_string() + &("x".repeat(76) + "\n").repeat(15_000);
    c.send_mail("dave@contoso.test", &["list@contoso.test"], &big);
    s.wait_for("NDR to owner", || count(&s, "alice@contoso.test") == 1);
    assert_eq!(count(&s, "dave@contoso.test"), 0, "the sender gets no NDR");
    assert!(
        s.mail("alice@contoso.test")[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Undeliverable")
    );
}

fn held(s: &Server, token: &str) -> Vec<Value> {
    let (status, v) = s.api_as(token, "GET", "/api/v1/moderation?state=pending", None);
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn moderation_approve_and_reject() {
    let s = contoso();
    open_group(
        &s,
        &[
            "moderated@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--member",
            "carol@contoso.test",
            "--moderation-enabled",
            "true",
            "--bypass-moderation-from",
            "dave@contoso.test",
        ],
    );
    let alice = login(&s, "alice");
    // Two messages, each also to dave directly: the other recipient is not held.
    let mut c = ready(&s);
    let first = trace_id_of(&c.send_mail(
        "outside@fabrikam.test",
        &["moderated@contoso.test", "dave@contoso.test"],
        "Subject: please approve\n\nx\n",
    ));
    let second = trace_id_of(&c.send_mail(
        "bob@contoso.test",
        &["moderated@contoso.test"],
        "Subject: please reject\n\nx\n",
    ));
    s.wait_for("held", || held(&s, &alice).len() == 2);
    // The moderator (the owner, as no moderators are named) is asked to approve each one.
    s.wait_for("approval requests", || count(&s, "alice@contoso.test") == 2);
    let requests = s.mail("alice@contoso.test");
    assert!(
        requests
            .iter()
            .any(|m| m["subject"] == "Approval requested: please approve"),
        "{requests:?}"
    );
    let raw = s.raw_mail("alice@contoso.test", requests[0]["id"].as_i64().unwrap());
    assert!(
        raw.contains("hato moderation approve") && raw.contains("message/rfc822"),
        "{raw}"
    );
    s.wait_for("dave's copy", || count(&s, "dave@contoso.test") == 1);
    assert_eq!(
        counts(&s),
        [2, 0, 0, 1],
        "alice has the two approval requests"
    );
    // A member who is not a moderator sees nothing and may not decide.
    let carol = login(&s, "carol");
    assert!(held(&s, &carol).is_empty());
    let h = held(&s, &alice);
    let approve = h.iter().find(|x| x["trace_id"] == first.as_str()).unwrap()["id"]
        .as_i64()
        .unwrap();
    let reject = h.iter().find(|x| x["trace_id"] == second.as_str()).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = s.api_as(
        &carol,
        "POST",
        &format!("/api/v1/moderation/{approve}/approve"),
        Some(json!({})),
    );
    assert_eq!(status, 403);
    // The CLI, as the moderator.
    let token_file = s.dir.path().join("alice.token");
    std::fs::write(&token_file, &alice).unwrap();
    let (ok, out, err) = s.cli(&[
        "--as",
        token_file.to_str().unwrap(),
        "moderation",
        "approve",
        &approve.to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = s.cli(&[
        "--as",
        token_file.to_str().unwrap(),
        "moderation",
        "reject",
        &reject.to_string(),
        "--comment",
        "off topic",
    ]);
    assert!(ok, "{out}{err}");
    s.wait_for("approved copies", || counts(&s)[1..3] == [2, 1]);
    // Bob's own message was rejected: bob gets the NDR with the comment, nobody the message.
    s.wait_for("NDR", || {
        s.mail("bob@contoso.test")
            .iter()
            .any(|m| m["subject"].as_str().unwrap().starts_with("Undeliverable"))
    });
    let ndr = s
        .mail("bob@contoso.test")
        .into_iter()
        .find(|m| m["subject"].as_str().unwrap().starts_with("Undeliverable"))
        .unwrap();
    let raw = s.raw_mail("bob@contoso.test", ndr["id"].as_i64().unwrap());
    assert!(raw.contains("off topic"), "{raw}");
    assert_eq!(
        count(&s, "carol@contoso.test"),
        1,
        "carol got only the approved message"
    );
    // A bypass sender's address over direct send proves nothing: held like anyone's (the
    // authenticated bypass is tested in hato-transport's tests/sender_identity.rs).
    let mut c = ready(&s);
    let r = c.send_mail(
        "dave@contoso.test",
        &["moderated@contoso.test"],
        "Subject: bypass\n\nx\n",
    );
    let id = trace_id_of(&r);
    s.wait_for("held again", || {
        held(&s, &alice)
            .iter()
            .any(|h| h["trace_id"] == id.as_str())
    });
    assert!(
        s.trace(&format!("trace_id={id}&status=Delivered"))
            .is_empty()
    );
}

/// Direct send is anonymous: a `MAIL FROM` naming the group's owner (or its one allowed sender)
/// is an outside sender, so the message is held for moderation, and the accept list refuses it.
#[test]
fn a_forged_owner_is_moderated_and_refused_by_the_accept_list() {
    let s = contoso();
    open_group(
        &s,
        &[
            "moderated@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--moderation-enabled",
            "true",
        ],
    );
    open_group(
        &s,
        &[
            "board@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
            "--accept-messages-only-from",
            "alice@contoso.test",
        ],
    );
    let alice = login(&s, "alice");
    let mut c = ready(&s);
    c.cmd("MAIL FROM:<alice@contoso.test>");
    let r = c.cmd("RCPT TO:<board@contoso.test>");
    assert!(
        r.starts_with("550 5.7.124") && r.contains("board@contoso.test"),
        "{r}"
    );
    c.cmd("RSET");
    let id = trace_id_of(&c.send_mail(
        "alice@contoso.test",
        &["moderated@contoso.test"],
        "Subject: from the owner, supposedly\n\nx\n",
    ));
    s.wait_for("held", || {
        held(&s, &alice)
            .iter()
            .any(|h| h["trace_id"] == id.as_str())
    });
    // The real owner is asked to approve it; bob has nothing.
    s.wait_for("approval request", || count(&s, "alice@contoso.test") == 1);
    assert_eq!(count(&s, "bob@contoso.test"), 0);
    let rows = s.trace(&format!("trace_id={id}"));
    assert!(rows.iter().all(|r| r["status"] != "Delivered"), "{rows:?}");
}

fn mime_with_attachment_and_invite(
    subject: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
) -> String {
    let reply = in_reply_to
        .map(|r| format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Alice <alice@contoso.test>\r\nTo: team@contoso.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{reply}MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
--b1\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n\
UID:meeting-1@contoso.test\r\nSEQUENCE:0\r\nSUMMARY:Planning\r\nLOCATION:Room 1\r\nORGANIZER:mailto:alice@contoso.test\r\n\
DTSTART:20261201T010000Z\r\nDTEND:20261201T020000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n\
--b1\r\nContent-Type: application/pdf; name=\"plan.pdf\"\r\nContent-Disposition: attachment; filename=\"plan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )
}

#[test]
fn m365_group_conversations_subscribers_calendar_and_files() {
    let s = contoso();
    let (status, v) = s.api("POST", "/api/v1/groups", Some(json!({"type": "m365", "tenant": "contoso", "address": "team@contoso.test",
        "owners": ["alice@contoso.test"], "members": ["bob@contoso.test", "carol@contoso.test"], "require_sender_authentication": false})));
    assert_eq!(status, 201, "{v}");
    // auto_subscribe_new_members is on by default for Microsoft 365 groups.
    assert_eq!(
        v["subscribers"],
        json!(["bob@contoso.test", "carol@contoso.test"])
    );
    let carol = login(&s, "carol");
    let (status, _) = s.api_as(
        &carol,
        "POST",
        "/api/v1/groups/team@contoso.test/subscribers",
        Some(json!({"remove": ["carol@contoso.test"]})),
    );
    assert_eq!(status, 200);
    let mut c = ready(&s);
    c.send_mail(
        "alice@contoso.test",
        &["team@contoso.test"],
        &mime_with_attachment_and_invite("Planning", "p1@contoso.test", None),
    );
    c.send_mail(
        "bob@contoso.test",
        &["team@contoso.test"],
        &mime_with_attachment_and_invite(
            "Re: Planning",
            "p2@contoso.test",
            Some("p1@contoso.test"),
        ),
    );
    c.send_mail(
        "carol@contoso.test",
        &["team@contoso.test"],
        "Subject: Lunch\nMessage-ID: <l1@contoso.test>\n\nNoodles?\n",
    );
    c.send_mail(
        "dave@contoso.test",
        &["team@contoso.test"],
        "Subject: RE: planning\nMessage-ID: <p3@contoso.test>\n\nsubject fallback\n",
    );
    s.wait_for("subscriber copies", || count(&s, "bob@contoso.test") == 4);
    assert_eq!(count(&s, "carol@contoso.test"), 0, "carol unsubscribed");
    assert_eq!(
        count(&s, "alice@contoso.test"),
        0,
        "owners are not implicitly members or subscribers"
    );
    let bob = login(&s, "bob");
    let (status, conv) = s.api_as(
        &bob,
        "GET",
        "/api/v1/groups/team@contoso.test/conversations",
        None,
    );
    assert_eq!(status, 200, "{conv}");
    let conv = conv.as_array().unwrap();
    assert_eq!(conv.len(), 2, "{conv:?}");
    let planning = conv.iter().find(|c| c["topic"] == "Planning").unwrap();
    assert_eq!(
        planning["messages"], 3,
        "reply by In-Reply-To and by subject"
    );
    let (_, items) = s.api_as(
        &bob,
        "GET",
        &format!(
            "/api/v1/groups/team@contoso.test/conversations/{}",
            planning["id"]
        ),
        None,
    );
    assert_eq!(items.as_array().unwrap().len(), 3);
    // Stored once in the group mailbox.
    let (_, cal) = s.api_as(
        &bob,
        "GET",
        "/api/v1/groups/team@contoso.test/calendar",
        None,
    );
    let cal = cal.as_array().unwrap();
    assert_eq!(cal.len(), 1, "the same UID twice is one event");
    assert_eq!(cal[0]["summary"], "Planning");
    assert_eq!(cal[0]["start"], "2026-12-01T01:00:00Z");
    let (_, files) = s.api_as(&bob, "GET", "/api/v1/groups/team@contoso.test/files", None);
    let files = files.as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "plan.pdf");
    let (status, bytes) = http(
        s.admin,
        "GET",
        files[0]["download"].as_str().unwrap(),
        Some(&bob),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, b"%PDF-1.4\n");
    // A cancellation updates the calendar.
    let cancel = "Subject: Canceled: Planning\r\nMessage-ID: <p4@contoso.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n\
BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:meeting-1@contoso.test\r\nSEQUENCE:1\r\nSUMMARY:Planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    c.send_mail("alice@contoso.test", &["team@contoso.test"], cancel);
    s.wait_for("cancel", || {
        let (_, cal) = s.api_as(
            &bob,
            "GET",
            "/api/v1/groups/team@contoso.test/calendar",
            None,
        );
        cal[0]["cancelled"] == true
    });
    // A private group's content is for members only.
    s.ok(&[
        "group",
        "set",
        "team@contoso.test",
        "--access-type",
        "private",
    ]);
    let dave = login(&s, "dave");
    let (status, _) = s.api_as(
        &dave,
        "GET",
        "/api/v1/groups/team@contoso.test/conversations",
        None,
    );
    assert_eq!(status, 403);
}

#[test]
fn joining_and_leaving_follow_the_restrictions() {
    let s = contoso();
    open_group(
        &s,
        &[
            "open@contoso.test",
            "--type",
            "distribution",
            "--member-join-restriction",
            "open",
        ],
    );
    open_group(
        &s,
        &[
            "approval@contoso.test",
            "--type",
            "distribution",
            "--member-join-restriction",
            "approval-required",
            "--member-depart-restriction",
            "closed",
        ],
    );
    open_group(&s, &["closed@contoso.test", "--type", "distribution"]);
    let bob = login(&s, "bob");
    let join = |g: &str| {
        s.api_as(
            &bob,
            "POST",
            &format!("/api/v1/groups/{g}/join"),
            Some(json!({})),
        )
    };
    assert_eq!(join("open@contoso.test").1["result"], "joined");
    assert_eq!(join("approval@contoso.test").1["result"], "requested");
    assert_eq!(join("closed@contoso.test").0, 403);
    // The owner approves the request.
    let alice = login(&s, "alice");
    let (_, reqs) = s.api_as(
        &alice,
        "GET",
        "/api/v1/groups/approval@contoso.test/requests",
        None,
    );
    let id = reqs[0]["id"].as_i64().unwrap();
    // Bob may not approve his own request.
    assert_eq!(
        s.api_as(
            &bob,
            "POST",
            &format!("/api/v1/groups/approval@contoso.test/requests/{id}/approve"),
            Some(json!({}))
        )
        .0,
        403
    );
    assert_eq!(
        s.api_as(
            &alice,
            "POST",
            &format!("/api/v1/groups/approval@contoso.test/requests/{id}/approve"),
            Some(json!({}))
        )
        .0,
        200
    );
    let (_, g) = s.api("GET", "/api/v1/groups/approval@contoso.test", None);
    assert_eq!(g["members"], json!(["bob@contoso.test"]));
    // Leaving: open group yes, closed departure no.
    assert_eq!(
        s.api_as(
            &bob,
            "POST",
            "/api/v1/groups/open@contoso.test/leave",
            Some(json!({}))
        )
        .1["result"],
        "left"
    );
    assert_eq!(
        s.api_as(
            &bob,
            "POST",
            "/api/v1/groups/approval@contoso.test/leave",
            Some(json!({}))
        )
        .0,
        403
    );
    // Security groups can never be open.
    let (status, _) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "mail-security", "tenant": "contoso", "address": "sg@contoso.test",
        "owners": ["alice@contoso.test"], "member_join_restriction": "open"}),
        ),
    );
    assert_eq!(status, 400);
    // Microsoft 365: public groups take anyone, private ones need approval.
    s.api("POST", "/api/v1/groups", Some(json!({"type": "m365", "tenant": "contoso", "address": "pub@contoso.test", "owners": ["alice@contoso.test"]})));
    s.api("POST", "/api/v1/groups", Some(json!({"type": "m365", "tenant": "contoso", "address": "priv@contoso.test", "owners": ["alice@contoso.test"], "access_type": "private"})));
    assert_eq!(join("pub@contoso.test").1["result"], "joined");
    assert_eq!(join("priv@contoso.test").1["result"], "requested");
    let (_, g) = s.api("GET", "/api/v1/groups/pub@contoso.test", None);
    assert_eq!(
        g["subscribers"],
        json!(["bob@contoso.test"]),
        "auto-subscribed on joining"
    );
}

#[test]
fn security_groups_grant_full_access_at_once() {
    let s = contoso();
    s.mailbox("shared@contoso.test", &["--type", "shared"]);
    s.ok(&[
        "group",
        "add",
        "Helpdesk",
        "--type",
        "security",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bob@contoso.test",
        "--member-join-restriction",
        "closed",
        "--member-depart-restriction",
        "closed",
    ]);
    send_and_settle(&s, &["shared@contoso.test"], "ticket");
    let bob = login(&s, "bob");
    let read = |t: &str| {
        s.api_as(
            t,
            "GET",
            "/api/v1/mailboxes/shared@contoso.test/messages",
            None,
        )
        .0
    };
    assert_eq!(read(&bob), 403);
    s.ok(&[
        "mailbox",
        "permission",
        "add",
        "shared@contoso.test",
        "--user",
        "Helpdesk",
        "--right",
        "full-access",
    ]);
    assert_eq!(
        read(&bob),
        200,
        "membership of the security group grants the right"
    );
    let carol = login(&s, "carol");
    assert_eq!(read(&carol), 403);
    s.ok(&["group", "members", "add", "Helpdesk", "carol@contoso.test"]);
    assert_eq!(
        read(&carol),
        200,
        "a membership change changes rights at once"
    );
    s.ok(&["group", "members", "remove", "Helpdesk", "bob@contoso.test"]);
    assert_eq!(read(&bob), 403);
    // A user reads their own mailbox, and nobody else's.
    assert_eq!(
        s.api_as(
            &bob,
            "GET",
            "/api/v1/mailboxes/bob@contoso.test/messages",
            None
        )
        .0,
        200
    );
    assert_eq!(
        s.api_as(
            &bob,
            "GET",
            "/api/v1/mailboxes/alice@contoso.test/messages",
            None
        )
        .0,
        403
    );
    // Users are not admins.
    assert_eq!(s.api_as(&bob, "GET", "/api/v1/trace", None).0, 403);
    assert_eq!(
        s.api_as(
            &bob,
            "POST",
            "/api/v1/mailboxes",
            Some(json!({"address": "x@contoso.test"}))
        )
        .0,
        403
    );
}

#[test]
fn login_rules() {
    let s = contoso();
    let (status, _) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"address": "alice@contoso.test", "password": "wrong-password"})),
    );
    assert_eq!(status, 401);
    let (status, _) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({"address": "nobody@contoso.test", "password": "password-x"})),
    );
    assert_eq!(status, 401);
    let token = login(&s, "alice");
    assert_eq!(
        s.api_as(&token, "GET", "/api/v1/mailboxes/alice@contoso.test", None)
            .0,
        200
    );
    // A new password ends the old sessions.
    s.ok(&[
        "mailbox",
        "set",
        "alice@contoso.test",
        "--password",
        "another-password",
    ]);
    assert_eq!(
        s.api_as(&token, "GET", "/api/v1/mailboxes/alice@contoso.test", None)
            .0,
        401
    );
    let (ok, _, err) = s.cli(&[
        "mailbox",
        "set",
        "alice@contoso.test",
        "--password",
        "short",
    ]);
    assert!(!ok && err.contains("8 to 256"), "{err}");
    // hato login reads the password from standard input and saves the token.
    let file = s.dir.path().join("bob.token");
    let out = std::process::Command::new(BIN)
        .args([
            "--config",
            s.config.to_str().unwrap(),
            "login",
            "bob@contoso.test",
            "--save",
            file.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"password-bob\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let (ok, out, _) = s.cli(&[
        "--as",
        file.to_str().unwrap(),
        "mail",
        "list",
        "bob@contoso.test",
    ]);
    assert!(ok, "{out}");
}

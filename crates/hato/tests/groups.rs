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
        // The spam filter's verdict for the group address: tests/spam.rs.
        .filter(|e| *e != "Spam")
        .collect();
    assert_eq!(events, ["Receive", "Expand"]);
    let expand = d
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "Expand")
        .unwrap();
    assert!(expand["detail"].as_str().unwrap().contains("2 recipient"));
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
fn report_to_manager_alone_sends_member_ndrs_to_the_owner() {
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
            // The old name of --report-to-originator-enabled still works.
            "--report-to-originator",
            "false",
            "--report-to-manager-enabled",
            "true",
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
        "owners": ["alice@contoso.test"], "members": ["bob@contoso.test", "carol@contoso.test"], "require_sender_authentication": false,
        "auto_subscribe_new_members": true})));
    assert_eq!(status, 201, "{v}");
    // The owner is a member too; with auto_subscribe_new_members every new member is subscribed.
    assert_eq!(
        v["members"],
        json!([
            "alice@contoso.test",
            "bob@contoso.test",
            "carol@contoso.test"
        ])
    );
    assert_eq!(
        v["subscribers"],
        json!([
            "alice@contoso.test",
            "bob@contoso.test",
            "carol@contoso.test"
        ])
    );
    let alice = login(&s, "alice");
    let (status, _) = s.api_as(
        &alice,
        "POST",
        "/api/v1/groups/team@contoso.test/subscribers",
        Some(json!({"remove": ["alice@contoso.test"]})),
    );
    assert_eq!(status, 200);
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
    assert_eq!(count(&s, "alice@contoso.test"), 0, "alice unsubscribed");
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
    s.api("POST", "/api/v1/groups", Some(json!({"type": "m365", "tenant": "contoso", "address": "pub@contoso.test", "owners": ["alice@contoso.test"], "auto_subscribe_new_members": true})));
    s.api("POST", "/api/v1/groups", Some(json!({"type": "m365", "tenant": "contoso", "address": "priv@contoso.test", "owners": ["alice@contoso.test"], "access_type": "private"})));
    assert_eq!(join("pub@contoso.test").1["result"], "joined");
    assert_eq!(join("priv@contoso.test").1["result"], "requested");
    let (_, g) = s.api("GET", "/api/v1/groups/pub@contoso.test", None);
    // The owner is a member (subscribed at creation), bob on joining.
    assert_eq!(
        g["subscribers"],
        json!(["alice@contoso.test", "bob@contoso.test"]),
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

// ----- groups as Exchange does them (hardening) ---------------------------------------------------

fn error_of(v: &Value) -> String {
    v["error"].as_str().unwrap_or("").to_string()
}

fn big_message(subject: &str) -> String {
    format!("Subject: {subject}\n\n") + &("x".repeat(76) + "\n").repeat(15_000)
}

/// Members' NDRs follow ReportToOriginatorEnabled and ReportToManagerEnabled (Exchange §1.6):
/// both on, the sender and the first owner; both off, nobody.
#[test]
fn report_to_originator_and_manager_together_and_neither() {
    let s = contoso();
    s.mailbox("full1@contoso.test", &["--quota-mb", "1"]);
    s.mailbox("full2@contoso.test", &["--quota-mb", "1"]);
    open_group(
        &s,
        &[
            "both@contoso.test",
            "--type",
            "distribution",
            "--member",
            "full1@contoso.test",
            "--report-to-manager-enabled",
            "true",
        ],
    );
    open_group(
        &s,
        &[
            "neither@contoso.test",
            "--type",
            "distribution",
            "--member",
            "full2@contoso.test",
            "--report-to-originator-enabled",
            "false",
        ],
    );
    let (_, g) = s.api("GET", "/api/v1/groups/neither@contoso.test", None);
    assert_eq!(g["report_to_originator_enabled"], false, "{g}");
    assert_eq!(g["report_to_manager_enabled"], false, "{g}");
    let mut c = ready(&s);
    let id = trace_id_of(&c.send_mail(
        "dave@contoso.test",
        &["both@contoso.test", "neither@contoso.test"],
        &big_message("big"),
    ));
    s.wait_for("NDRs to the sender and the owner", || {
        count(&s, "dave@contoso.test") == 1 && count(&s, "alice@contoso.test") == 1
    });
    for who in ["dave@contoso.test", "alice@contoso.test"] {
        let m = &s.mail(who)[0];
        assert!(
            m["subject"].as_str().unwrap().starts_with("Undeliverable"),
            "{m}"
        );
        let raw = s.raw_mail(who, m["id"].as_i64().unwrap());
        assert!(raw.contains("full1@contoso.test"), "{who}: {raw}");
        assert!(
            !raw.contains("full2@contoso.test"),
            "{who}: nobody is told of full2"
        );
    }
    // full2 failed and owes no NDR: its trace never gets a DSN event.
    let (_, d) = s.api(
        "GET",
        &format!("/api/v1/trace/{id}?recipient=full2@contoso.test"),
        None,
    );
    let events: Vec<&str> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"Fail") && !events.contains(&"Dsn"),
        "{events:?}"
    );
}

#[test]
fn addresses_are_unique_across_mailboxes_groups_and_contacts() {
    let s = contoso();
    open_group(
        &s,
        &[
            "sales@contoso.test",
            "--type",
            "distribution",
            "--member",
            "bob@contoso.test",
        ],
    );
    s.ok(&[
        "mailbox",
        "set",
        "carol@contoso.test",
        "--alias",
        "c@contoso.test",
    ]);
    let conflict = |method: &str, path: &str, body: Value, what: &str| {
        let (status, v) = s.api(method, path, Some(body));
        assert_eq!(status, 409, "{what}: {v}");
        assert!(error_of(&v).contains("already exists"), "{what}: {v}");
    };
    // A mailbox (or alias) cannot take a group's address and steal its mail…
    conflict(
        "POST",
        "/api/v1/mailboxes",
        json!({"address": "sales@contoso.test"}),
        "mailbox",
    );
    conflict(
        "PATCH",
        "/api/v1/mailboxes/dave@contoso.test",
        json!({"aliases": ["sales@contoso.test"]}),
        "alias",
    );
    // …nor a group a mailbox's address or alias.
    for a in ["alice@contoso.test", "c@contoso.test"] {
        conflict(
            "POST",
            "/api/v1/groups",
            json!({"type": "distribution", "tenant": "contoso", "address": a, "owners": ["alice@contoso.test"]}),
            a,
        );
    }
    // A contact made while its domain was outside cannot be shadowed by a mailbox later.
    s.ok(&[
        "contact",
        "add",
        "partner@fabrikam.test",
        "--tenant",
        "contoso",
    ]);
    let (status, v) = s.api(
        "POST",
        "/api/v1/domains",
        Some(json!({"domain": "fabrikam.test", "tenant": "contoso"})),
    );
    assert_eq!(status, 201, "{v}");
    conflict(
        "POST",
        "/api/v1/mailboxes",
        json!({"address": "partner@fabrikam.test"}),
        "mailbox over a contact",
    );
    // Nothing changed: dave has no alias, and the group still gets its mail.
    let (_, dave) = s.api("GET", "/api/v1/mailboxes/dave@contoso.test", None);
    assert_eq!(dave["aliases"], json!([]));
    let (status, _) = s.api("GET", "/api/v1/mailboxes/sales@contoso.test", None);
    assert_eq!(status, 404);
    send_and_settle(&s, &["sales@contoso.test"], "still-the-group");
    assert_eq!(count(&s, "bob@contoso.test"), 1);
}

#[test]
fn postmaster_and_abuse_are_reserved_in_every_domain() {
    let s = contoso();
    let reserved = |method: &str, path: &str, body: Value, what: &str| {
        let (status, v) = s.api(method, path, Some(body));
        assert_eq!(status, 400, "{what}: {v}");
        let e = error_of(&v);
        assert!(
            e.contains("is reserved") && e.contains("RFC 5321"),
            "{what}: {e}"
        );
    };
    reserved(
        "POST",
        "/api/v1/mailboxes",
        json!({"address": "postmaster@contoso.test"}),
        "mailbox",
    );
    reserved(
        "POST",
        "/api/v1/mailboxes",
        json!({"address": "Abuse@contoso.test"}),
        "mailbox, any case",
    );
    reserved(
        "PATCH",
        "/api/v1/mailboxes/alice@contoso.test",
        json!({"aliases": ["abuse@contoso.test"]}),
        "alias",
    );
    reserved(
        "POST",
        "/api/v1/groups",
        json!({"type": "distribution", "tenant": "contoso", "address": "POSTMASTER@contoso.test", "owners": ["alice@contoso.test"]}),
        "group",
    );
    reserved(
        "POST",
        "/api/v1/contacts",
        json!({"address": "abuse@fabrikam.test", "tenant": "contoso"}),
        "contact",
    );
    let (_, alice) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(alice["aliases"], json!([]));
    let (_, groups) = s.api("GET", "/api/v1/groups", None);
    assert_eq!(groups, json!([]));
}

#[test]
fn the_last_owners_mailbox_goes_only_with_a_new_owner() {
    let s = contoso();
    open_group(&s, &["sales@contoso.test", "--type", "distribution"]);
    open_group(&s, &["team@contoso.test", "--type", "m365"]);
    let (status, v) = s.api("DELETE", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(status, 409, "{v}");
    let e = error_of(&v);
    assert!(
        e.contains("last owner of sales@contoso.test, team@contoso.test"),
        "{e}"
    );
    let (status, _) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(status, 200, "alice is still there");
    // The CLI passes ownership on.
    let (ok, out, err) = s.cli(&[
        "mailbox",
        "remove",
        "alice@contoso.test",
        "--transfer-ownership-to",
        "bob@contoso.test",
    ]);
    assert!(ok, "{out}{err}");
    let (status, _) = s.api("GET", "/api/v1/mailboxes/alice@contoso.test", None);
    assert_eq!(status, 404);
    for g in ["sales@contoso.test", "team@contoso.test"] {
        let (_, v) = s.api("GET", &format!("/api/v1/groups/{g}"), None);
        assert_eq!(v["owners"], json!(["bob@contoso.test"]), "{v}");
    }
    let (_, team) = s.api("GET", "/api/v1/groups/team@contoso.test", None);
    assert_eq!(
        team["members"],
        json!(["bob@contoso.test"]),
        "the new owner is a member"
    );
    // A mailbox that is one of several owners goes freely.
    s.ok(&[
        "group",
        "owners",
        "add",
        "sales@contoso.test",
        "carol@contoso.test",
        "--bypass-security-group-manager-check",
    ]);
    let (status, v) = s.api("DELETE", "/api/v1/mailboxes/carol@contoso.test", None);
    assert_eq!(status, 204, "{v}");
}

#[test]
fn private_and_hidden_groups_are_read_only_by_their_members() {
    let s = contoso();
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "m365", "tenant": "contoso", "address": "secret@contoso.test",
            "owners": ["alice@contoso.test"], "members": ["bob@contoso.test"],
            "access_type": "private", "require_sender_authentication": false}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "m365", "tenant": "contoso", "address": "hidden@contoso.test",
            "owners": ["alice@contoso.test"], "members": ["bob@contoso.test"],
            "hidden_group_membership_enabled": true, "require_sender_authentication": false}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    send_and_settle(
        &s,
        &["secret@contoso.test", "hidden@contoso.test"],
        "inside",
    );
    let ga = {
        let (_, v) = s.api(
            "POST",
            "/api/v1/tenants/contoso/tokens",
            Some(json!({"role": "global-admin"})),
        );
        v["token"].as_str().unwrap().to_string()
    };
    let bob = login(&s, "bob");
    let carol = login(&s, "carol");
    for g in ["secret@contoso.test", "hidden@contoso.test"] {
        for what in ["conversations", "calendar", "files"] {
            let path = format!("/api/v1/groups/{g}/{what}");
            for (who, token) in [
                ("operator", s.token.as_str()),
                ("global admin", &ga),
                ("carol", &carol),
            ] {
                let (status, v) = s.api_as(token, "GET", &path, None);
                assert_eq!(status, 403, "{who} reads {path}: {v}");
            }
            let (status, v) = s.api_as(&bob, "GET", &path, None);
            assert_eq!(status, 200, "bob (member) reads {path}: {v}");
        }
    }
    // The hidden group's members: hidden from non-members, admins included.
    for (who, token) in [
        ("operator", s.token.as_str()),
        ("global admin", &ga),
        ("carol", &carol),
    ] {
        let (_, v) = s.api_as(token, "GET", "/api/v1/groups/hidden@contoso.test", None);
        assert_eq!(v["members"], "hidden", "{who}: {v}");
        let (status, v) = s.api_as(
            token,
            "GET",
            "/api/v1/groups/hidden@contoso.test/members",
            None,
        );
        assert_eq!(status, 403, "{who}: {v}");
    }
    let (_, v) = s.api_as(&bob, "GET", "/api/v1/groups/hidden@contoso.test", None);
    assert_eq!(
        v["members"],
        json!(["alice@contoso.test", "bob@contoso.test"]),
        "{v}"
    );
    // Admins still manage it; the setting is for creation only.
    let (status, v) = s.api_as(
        &ga,
        "POST",
        "/api/v1/groups/hidden@contoso.test/members",
        Some(json!({"add": ["carol@contoso.test"]})),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.api(
        "PATCH",
        "/api/v1/groups/hidden@contoso.test",
        Some(json!({"hidden_group_membership_enabled": false})),
    );
    assert_eq!(status, 400, "{v}");
    let (_, v) = s.api_as(
        &carol,
        "GET",
        "/api/v1/groups/hidden@contoso.test/members",
        None,
    );
    assert_eq!(
        v.as_array().map(|a| a.len()),
        Some(3),
        "carol is a member now: {v}"
    );
}

#[test]
fn m365_owners_are_members_and_join_requests_go_to_the_owners() {
    let s = contoso();
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(json!({"type": "m365", "tenant": "contoso", "address": "club@contoso.test",
            "owners": ["alice@contoso.test"], "members": ["carol@contoso.test"], "access_type": "private"})),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        v["members"],
        json!(["alice@contoso.test", "carol@contoso.test"])
    );
    assert_eq!(
        v["subscribers"],
        json!([]),
        "AutoSubscribeNewMembers is off by default"
    );
    assert_eq!(v["auto_subscribe_new_members"], false);
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/club@contoso.test/owners",
        Some(json!({"add": ["dave@contoso.test"]})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["members"],
        json!([
            "alice@contoso.test",
            "carol@contoso.test",
            "dave@contoso.test"
        ])
    );
    // An owner cannot stop being a member while an owner.
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/club@contoso.test/members",
        Some(json!({"remove": ["dave@contoso.test"]})),
    );
    assert_eq!(status, 400, "{v}");
    // bob asks to join the private group: both owners get the request, once.
    let bob = login(&s, "bob");
    for _ in 0..2 {
        let (status, v) = s.api_as(
            &bob,
            "POST",
            "/api/v1/groups/club@contoso.test/join",
            Some(json!({})),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["result"], "requested");
    }
    s.wait_for("join request mail", || {
        count(&s, "alice@contoso.test") == 1 && count(&s, "dave@contoso.test") == 1
    });
    let m = &s.mail("alice@contoso.test")[0];
    assert_eq!(m["subject"], "Request to join club");
    assert!(
        m["from"]
            .as_str()
            .unwrap()
            .contains("postmaster@contoso.test"),
        "{m}"
    );
    let raw = s.raw_mail("alice@contoso.test", m["id"].as_i64().unwrap());
    assert!(
        raw.contains("bob@contoso.test")
            && raw.contains("hato group requests approve club@contoso.test"),
        "{raw}"
    );
    // A distribution or mail-enabled security group cannot contain a Microsoft 365 group.
    for kind in ["distribution", "mail-security"] {
        let (status, v) = s.api(
            "POST",
            "/api/v1/groups",
            Some(
                json!({"type": kind, "tenant": "contoso", "address": format!("{kind}@contoso.test"),
                "owners": ["alice@contoso.test"], "members": ["club@contoso.test"]}),
            ),
        );
        assert_eq!(status, 400, "{kind}: {v}");
        assert!(
            error_of(&v).contains("Microsoft 365 group cannot be a member"),
            "{v}"
        );
    }
}

#[test]
fn mail_security_moderation_needs_a_named_moderator_and_filters_only_filled_properties() {
    let s = contoso();
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "mail-security", "tenant": "contoso", "address": "msec@contoso.test",
            "owners": ["alice@contoso.test"], "moderation_enabled": true}),
        ),
    );
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("named moderator"), "{v}");
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "mail-security", "tenant": "contoso", "address": "msec@contoso.test",
            "owners": ["alice@contoso.test"]}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let patch = |body: Value| {
        let mut body = body;
        body["bypass_security_group_manager_check"] = json!(true);
        s.api("PATCH", "/api/v1/groups/msec@contoso.test", Some(body))
    };
    let (status, v) = patch(json!({"moderation_enabled": true}));
    assert_eq!(status, 400, "{v}");
    let (_, g) = s.api("GET", "/api/v1/groups/msec@contoso.test", None);
    assert_eq!(g["moderation_enabled"], false);
    let (status, v) =
        patch(json!({"moderation_enabled": true, "moderated_by": ["bob@contoso.test"]}));
    assert_eq!(status, 200, "{v}");
    // A distribution group may leave it to its owners.
    open_group(
        &s,
        &[
            "dl@contoso.test",
            "--type",
            "distribution",
            "--moderation-enabled",
            "true",
        ],
    );
    // A dynamic group's filter on a property hato never fills is refused, listing what works.
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({"type": "dynamic", "tenant": "contoso", "address": "managers@contoso.test",
            "owners": ["alice@contoso.test"], "recipient_filter": "Manager -eq 'alice'"}),
        ),
    );
    assert_eq!(status, 400, "{v}");
    let e = error_of(&v);
    assert!(
        e.contains("'Manager' is not filled in") && e.contains("Department, Company"),
        "{e}"
    );
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups/preview",
        Some(json!({"tenant": "contoso", "filter": "FirstName -eq 'Alice'"})),
    );
    assert_eq!(status, 400, "{v}");
}

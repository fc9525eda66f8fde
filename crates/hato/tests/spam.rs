//! The spam filter end to end: real SMTP clients (Python's smtplib) against `hato serve`, with a
//! DNS server on loopback for SPF and DMARC: the verdicts and their SCL, each action, policies
//! per recipient on one message, allowed and blocked senders, the IP allow list, a rule's SCL,
//! DMARC's p=reject and p=quarantine, a spoofed own domain, the headers a delivered message
//! carries, a user's junk report changing the next verdict.

mod common;

use common::{Dns, Server, send_mime as send};
use serde_json::{Value, json};

/// GTUBE, the standard anti-spam test string (high confidence spam everywhere).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

const HAM_BODY: &str = "Hi Alice,\n\nthe minutes of Tuesday's meeting are attached to the wiki page; \
could you look at the second agenda item before Friday? Bob thinks the budget figures need \
another pass.\n\nThanks,\nCarol\n";

fn setup_with(extra: &str) -> Server {
    let s = Server::start_with_config("", "", extra);
    s.tenant("contoso");
    for m in ["alice", "bob", "carol", "dave", "erin", "frank", "grace"] {
        s.mailbox(
            &format!("{m}@contoso.test"),
            &["--password", &format!("password-{m}")],
        );
    }
    s
}

fn setup() -> Server {
    setup_with("")
}

/// The messages of `address`'s folder (`inbox` or `junk`).
fn folder(s: &Server, address: &str, folder: &str) -> Vec<Value> {
    let (status, v) = s.api(
        "GET",
        &format!("/api/v1/mailboxes/{address}/messages?folder={folder}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The raw form of the only message in `address`'s `folder`, once it is there.
fn only_raw(s: &Server, address: &str, name: &str) -> String {
    s.wait_for(&format!("a message in {address}'s {name}"), || {
        folder(s, address, name).len() == 1
    });
    let m = &folder(s, address, name)[0];
    s.raw_mail(address, m["id"].as_i64().unwrap())
}

fn trace_id(s: &Server, recipient: &str, subject: &str) -> String {
    let mut id = String::new();
    s.wait_for(&format!("the trace of {subject:?} to {recipient}"), || {
        let rows = s.trace(&format!("recipient={recipient}"));
        if let Some(row) = rows.iter().find(|r| r["subject"] == subject) {
            id = row["trace_id"].as_str().unwrap_or_default().to_owned();
        }
        !id.is_empty()
    });
    id
}

fn final_status(s: &Server, trace_id: &str, recipient: &str) -> String {
    let mut status = String::new();
    s.wait_for(&format!("{recipient} of {trace_id} done"), || {
        let rows = s.trace(&format!("trace_id={trace_id}&recipient={recipient}"));
        status = rows
            .first()
            .and_then(|r| r["status"].as_str())
            .unwrap_or_default()
            .to_string();
        !status.is_empty() && status != "Pending"
    });
    status
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

fn spam_event(s: &Server, trace_id: &str, recipient: &str) -> Value {
    s.events(trace_id, recipient)
        .into_iter()
        .find(|e| e["event"] == "Spam" && e["reason"]["stage"] == "spam")
        .unwrap_or_else(|| panic!("no Spam event for {recipient} of {trace_id}"))
}

#[test]
fn gtube_is_high_confidence_spam_and_goes_to_junk_with_the_stamps() {
    let s = setup();
    let reply = send(
        &s,
        json!({"from": "sender@fabrikam.test", "to": ["alice@contoso.test"],
               "subject": "test of the spam filter", "body": format!("hello\n{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = only_raw(&s, "alice@contoso.test", "junk");
    assert!(folder(&s, "alice@contoso.test", "inbox").is_empty());
    assert!(
        raw.contains(";SCL:9;SRV:;IPV:NLI;SFV:SPM;") && raw.contains(";CAT:HSPM;"),
        "{raw}"
    );
    assert!(raw.contains("\r\nX-Spam-Flag: YES\r\n"), "{raw}");
    assert!(raw.contains("\r\nX-Spam-Status: Yes, score=9 "), "{raw}");
    assert!(
        raw.contains("\r\nAuthentication-Results: mx.hato.test;"),
        "{raw}"
    );
    let id = trace_id(&s, "alice@contoso.test", "test of the spam filter");
    let ev = spam_event(&s, &id, "alice@contoso.test");
    assert_eq!(figure(&ev, "scl"), 9, "{ev}");
    assert_eq!(figure(&ev, "cat"), "HSPM", "{ev}");
    assert_eq!(ev["reason"]["rule"], "Default", "{ev}");
    // And `hato explain` says why.
    let explained = s.ok(&["explain", &id]);
    assert!(explained.contains("GTUBE"), "{explained}");
    assert!(explained.contains("Junk Email"), "{explained}");
    // The verdict counts against the sending IP's reputation (the edge's throttling), once
    // per message; ordinary mail does not.
    s.wait_for("the spam verdict counted for 127.0.0.1", || {
        junk_history(&s) == 1
    });
    send(
        &s,
        json!({"from": "sender@fabrikam.test", "to": ["bob@contoso.test"],
               "subject": "ordinary", "body": HAM_BODY}),
    );
    only_raw(&s, "bob@contoso.test", "inbox");
    assert_eq!(junk_history(&s), 1);
}

fn junk_history(s: &Server) -> u64 {
    let (status, v) = s.api("GET", "/api/v1/throttle/127.0.0.1", None);
    assert_eq!(status, 200, "{v}");
    v["figures"]["junk_history"].as_u64().expect("junk_history")
}

#[test]
fn ordinary_mail_is_not_spam_and_reaches_the_inbox() {
    let s = setup();
    let reply = send(
        &s,
        json!({"from": "carol@fabrikam.test", "to": ["alice@contoso.test"],
               "subject": "Tuesday's minutes", "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = only_raw(&s, "alice@contoso.test", "inbox");
    assert!(raw.contains(";SFV:NSPM;"), "{raw}");
    assert!(raw.contains(";SCL:1;") || raw.contains(";SCL:0;"), "{raw}");
    assert!(raw.contains(";LANG:en;"), "{raw}");
    assert!(raw.contains("\r\nX-Spam-Flag: NO\r\n"), "{raw}");
}

fn policy(s: &Server, name: &str, priority: &str, recipient: &str, settings: &[&str]) {
    s.ok(&[
        "spam-filter",
        "add",
        name,
        "--tenant",
        "contoso",
        "--priority",
        priority,
        "--sent-to",
        recipient,
    ]);
    let mut args = vec!["spam-filter", "set", name, "--tenant", "contoso"];
    args.extend_from_slice(settings);
    s.ok(&args);
}

/// One message, seven recipients, seven policies: each recipient's own action.
#[test]
fn each_recipient_gets_the_action_of_its_own_policy() {
    let s = setup();
    let hcs = "--high-confidence-spam-action";
    policy(
        &s,
        "Quarantine bob",
        "0",
        "bob@contoso.test",
        &[hcs, "quarantine", "--quarantine-retention-period", "3"],
    );
    policy(
        &s,
        "Delete carol",
        "1",
        "carol@contoso.test",
        &[hcs, "delete"],
    );
    policy(
        &s,
        "Redirect dave",
        "2",
        "dave@contoso.test",
        &[
            hcs,
            "redirect",
            "--redirect-to-recipients",
            "erin@contoso.test",
        ],
    );
    policy(
        &s,
        "Header frank",
        "3",
        "frank@contoso.test",
        &[
            hcs,
            "add-x-header",
            "--add-x-header-value",
            "X-Contoso-Spam",
        ],
    );
    policy(
        &s,
        "Subject grace",
        "4",
        "grace@contoso.test",
        &[hcs, "modify-subject", "--modify-subject-value", "[SPAM]"],
    );
    let to = [
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@contoso.test",
        "dave@contoso.test",
        "frank@contoso.test",
        "grace@contoso.test",
    ];
    let reply = send(
        &s,
        json!({"from": "sender@fabrikam.test", "to": to, "subject": "many policies",
               "body": format!("{GTUBE}\n")}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let id = trace_id(&s, "alice@contoso.test", "many policies");
    // Default policy: Junk.
    only_raw(&s, "alice@contoso.test", "junk");
    // Quarantine, kept 3 days, high confidence spam.
    assert_eq!(final_status(&s, &id, "bob@contoso.test"), "Quarantined");
    let (status, q) = s.api("GET", "/api/v1/quarantine?recipient=bob@contoso.test", None);
    assert_eq!(status, 200, "{q}");
    let item = &q["items"][0];
    assert_eq!(item["kind"], "high-confidence-spam", "{q}");
    assert_eq!(item["policy"], "Quarantine bob", "{q}");
    let received =
        chrono::DateTime::parse_from_rfc3339(item["received"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(item["expires"].as_str().unwrap()).unwrap();
    assert_eq!((expires - received).num_days(), 3, "{item}");
    // Deleted: a Drop with Exchange's text, no NDR.
    assert_eq!(final_status(&s, &id, "carol@contoso.test"), "Failed");
    let drop = s
        .events(&id, "carol@contoso.test")
        .into_iter()
        .find(|e| e["event"] == "Drop")
        .expect("Drop");
    assert!(
        drop.to_string()
            .contains("550 4.3.2 QUEUE.TransportAgent; message deleted by transport agent"),
        "{drop}"
    );
    assert!(s.mail("carol@contoso.test").is_empty());
    // Redirected to erin, not delivered to dave.
    only_raw(&s, "erin@contoso.test", "inbox");
    assert!(s.mail("dave@contoso.test").is_empty());
    // The policy's header, in Junk.
    let raw = only_raw(&s, "frank@contoso.test", "junk");
    assert!(
        raw.contains("\r\nX-Contoso-Spam: This message appears to be spam.\r\n"),
        "{raw}"
    );
    // The subject tag, in Junk.
    let raw = only_raw(&s, "grace@contoso.test", "junk");
    assert!(
        raw.contains("\r\nSubject: [SPAM]many policies\r\n")
            || raw.contains("\r\nSubject: [SPAM] many policies\r\n"),
        "{raw}"
    );
    // No NDR to anyone: the sender is outside, and nothing failed but the deletion.
    assert!(
        s.mail("alice@contoso.test")
            .iter()
            .all(|m| !m["subject"].to_string().contains("Undeliverable"))
    );
}

#[test]
fn allowed_and_blocked_senders_stamp_ska_and_skb() {
    let s = setup();
    s.ok(&[
        "spam-filter",
        "set",
        "--tenant",
        "contoso",
        "--allowed-senders",
        "friend@fabrikam.test",
        "--blocked-sender-domains",
        "spammer.test",
    ]);
    send(
        &s,
        json!({"from": "friend@fabrikam.test", "to": ["alice@contoso.test"], "subject": "allowed",
               "body": format!("{GTUBE}\n")}),
    );
    let raw = only_raw(&s, "alice@contoso.test", "inbox");
    assert!(
        raw.contains(";SCL:-1;") && raw.contains(";SFV:SKA;"),
        "{raw}"
    );
    send(
        &s,
        json!({"from": "someone@spammer.test", "to": ["bob@contoso.test"], "subject": "blocked",
               "body": HAM_BODY}),
    );
    let raw = only_raw(&s, "bob@contoso.test", "junk");
    assert!(
        raw.contains(";SFV:SKB;") && raw.contains(";CAT:SPM;"),
        "{raw}"
    );
}

#[test]
fn the_ip_allow_list_and_a_rules_scl_skip_or_mark_the_filter() {
    let s = setup();
    s.ok(&[
        "rule",
        "add",
        "Mark spam",
        "--tenant",
        "contoso",
        "--subject-contains-words",
        "markme",
        "--set-scl",
        "6",
    ]);
    s.ok(&[
        "rule",
        "add",
        "Trust",
        "--tenant",
        "contoso",
        "--subject-contains-words",
        "trustme",
        "--set-scl",
        "-1",
    ]);
    send(
        &s,
        json!({"from": "a@fabrikam.test", "to": ["alice@contoso.test"], "subject": "markme",
               "body": HAM_BODY}),
    );
    let raw = only_raw(&s, "alice@contoso.test", "junk");
    assert!(
        raw.contains(";SCL:6;") && raw.contains(";SFV:SKS;"),
        "{raw}"
    );
    send(
        &s,
        json!({"from": "a@fabrikam.test", "to": ["bob@contoso.test"], "subject": "trustme",
               "body": format!("{GTUBE}\n")}),
    );
    let raw = only_raw(&s, "bob@contoso.test", "inbox");
    assert!(
        raw.contains(";SCL:-1;") && raw.contains(";SFV:SKN;"),
        "{raw}"
    );
    s.ok(&[
        "connection-filter",
        "set",
        "--tenant",
        "contoso",
        "--ip-allow-list-add",
        "127.0.0.1",
    ]);
    send(
        &s,
        json!({"from": "a@fabrikam.test", "to": ["carol@contoso.test"], "subject": "allowed ip",
               "body": format!("{GTUBE}\n")}),
    );
    let raw = only_raw(&s, "carol@contoso.test", "inbox");
    assert!(raw.contains(";SCL:-1;SRV:;IPV:CAL;SFV:SKN;"), "{raw}");
}

fn dns_setup() -> (Dns, Server) {
    // The whole `test.` zone: a name not published is NXDOMAIN, as on the Internet (DMARC walks
    // the tree up to the organisational domain).
    let dns = Dns::start(&["test"]);
    // fabrikam.test: SPF allows only 192.0.2.1 (not us), DMARC p=reject.
    dns.txt("fabrikam.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.fabrikam.test", "v=DMARC1; p=reject");
    // northwind.test: SPF allows loopback, DMARC p=quarantine.
    dns.txt("northwind.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.northwind.test", "v=DMARC1; p=quarantine");
    let extra = format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr());
    let s = setup_with(&extra);
    (dns, s)
}

#[test]
fn dmarc_reject_is_refused_in_the_session_and_quarantine_goes_to_junk() {
    let (dns, s) = dns_setup();
    // fabrikam.test fails SPF from 127.0.0.1 and has no DKIM: DMARC fails, p=reject.
    let reply = send(
        &s,
        json!({"from": "ceo@fabrikam.test", "to": ["alice@contoso.test"], "subject": "wire",
               "body": HAM_BODY}),
    );
    assert!(
        reply.starts_with("550 5.7.509 Access denied, sending domain fabrikam.test does not pass DMARC verification"),
        "{reply}"
    );
    // northwind.test passes SPF from loopback, aligned: DMARC pass, Inbox.
    send(
        &s,
        json!({"from": "news@northwind.test", "to": ["bob@contoso.test"], "subject": "aligned",
               "body": HAM_BODY}),
    );
    let raw = only_raw(&s, "bob@contoso.test", "inbox");
    assert!(
        raw.contains("spf=pass") && raw.contains("dmarc=pass"),
        "{raw}"
    );
    // A From in northwind.test with an envelope elsewhere: DMARC fails, p=quarantine → Junk.
    dns.txt("elsewhere.test", "v=spf1 -all");
    let reply = send(
        &s,
        json!({"from": "bounce@elsewhere.test", "header_from": "news@northwind.test",
               "to": ["carol@contoso.test"], "subject": "unaligned", "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = only_raw(&s, "carol@contoso.test", "junk");
    assert!(raw.contains("dmarc=fail"), "{raw}");
}

#[test]
fn a_spoofed_own_domain_is_phish_with_cat_spoof() {
    let (_dns, s) = dns_setup();
    let reply = send(
        &s,
        json!({"from": "ceo@contoso.test", "to": ["alice@contoso.test"], "subject": "urgent",
               "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let raw = only_raw(&s, "alice@contoso.test", "junk");
    assert!(raw.contains(";CAT:SPOOF;"), "{raw}");
}

#[test]
fn a_users_junk_report_changes_the_next_verdict() {
    let s = setup();
    // Mail the shipped model lets through (a colleague's note): alice says it is junk.
    let body = HAM_BODY;
    send(
        &s,
        json!({"from": "sales@gardens.test", "to": ["alice@contoso.test"], "subject": "Garden furniture",
               "body": body}),
    );
    only_raw(&s, "alice@contoso.test", "inbox");
    let id = trace_id(&s, "alice@contoso.test", "Garden furniture");
    // Alice reports it as junk (the CLI, as the tenant's admin, for her).
    s.ok(&[
        "report",
        "junk",
        &id,
        "--recipient",
        "alice@contoso.test",
        "--tenant",
        "contoso",
    ]);
    // The next one like it goes to Junk, for alice's tenant.
    let mut next_in_junk = false;
    s.wait_for("the report to be learned", || {
        send(
            &s,
            json!({"from": "sales@gardens.test", "to": ["bob@contoso.test"], "subject": "Garden furniture again",
                   "body": body}),
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        next_in_junk = !folder(&s, "bob@contoso.test", "junk").is_empty();
        next_in_junk
    });
    assert!(next_in_junk);
}

/// A distribution group of contoso with bob as its member, owned by alice.
fn restricted_group(s: &Server, address: &str, settings: &[&str]) {
    let mut args = vec![
        "group",
        "add",
        address,
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bob@contoso.test",
    ];
    args.extend_from_slice(settings);
    s.ok(&args);
}

/// The reply to RCPT TO `rcpt` after MAIL FROM `from`, on a fresh session.
fn rcpt_reply(s: &Server, from: &str, rcpt: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.fabrikam.test").starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
    c.cmd(&format!("RCPT TO:<{rcpt}>"))
}

#[test]
fn a_dmarc_aligned_pass_is_an_authenticated_identity_for_group_restrictions() {
    let (dns, s) = dns_setup();
    // partner.test publishes DMARC (p=none) but its SPF allows only 192.0.2.1: from loopback
    // its mail fails DMARC. plain.test's SPF allows loopback, and it publishes no DMARC at all.
    dns.txt("partner.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.partner.test", "v=DMARC1; p=none");
    dns.txt("plain.test", "v=spf1 ip4:127.0.0.0/8 -all");
    // contoso.test itself: SPF allows loopback, DMARC p=reject.
    dns.txt("contoso.test", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.contoso.test", "v=DMARC1; p=reject");
    for contact in [
        "news@northwind.test",
        "sales@partner.test",
        "info@plain.test",
    ] {
        s.ok(&["contact", "add", contact, "--tenant", "contoso"]);
    }
    restricted_group(
        &s,
        "partners@contoso.test",
        &[
            "--require-sender-authentication",
            "false",
            "--accept-messages-only-from",
            "news@northwind.test",
            "--accept-messages-only-from",
            "sales@partner.test",
            "--accept-messages-only-from",
            "info@plain.test",
        ],
    );
    restricted_group(
        &s,
        "staff@contoso.test",
        &["--require-sender-authentication", "true"],
    );

    // northwind.test passes DMARC aligned: the contact it names is an allowed sender, at the
    // DATA and again when the group is expanded at delivery (the identity is queued).
    let reply = send(
        &s,
        json!({"from": "news@northwind.test", "to": ["partners@contoso.test"],
               "subject": "partner news", "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    s.wait_for("the group's copy for bob", || {
        folder(&s, "bob@contoso.test", "inbox")
            .iter()
            .chain(folder(&s, "bob@contoso.test", "junk").iter())
            .any(|m| m["subject"] == "partner news")
    });
    let id = trace_id(&s, "partners@contoso.test", "partner news");
    assert_eq!(final_status(&s, &id, "partners@contoso.test"), "Expanded");

    // partner.test publishes DMARC, so its envelope sender is accepted at RCPT for now; the
    // message fails DMARC, so the DATA is refused with the group's refusal (nothing kept).
    let reply = rcpt_reply(&s, "sales@partner.test", "partners@contoso.test");
    assert!(reply.starts_with("250"), "{reply}");
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.fabrikam.test").starts_with("250"));
    let reply = c.send_mail(
        "sales@partner.test",
        &["partners@contoso.test"],
        "From: sales@partner.test\nTo: partners@contoso.test\nSubject: forged partner\n\nhello\n",
    );
    assert!(
        reply.starts_with("550 5.7.124") && reply.contains("partners@contoso.test"),
        "{reply}"
    );
    assert!(
        s.trace("recipient=bob@contoso.test")
            .iter()
            .all(|r| r["subject"] != "forged partner")
    );

    // plain.test publishes no DMARC: nothing after the DATA could vouch for the address, so
    // the refusal stays at RCPT.
    let reply = rcpt_reply(&s, "info@plain.test", "partners@contoso.test");
    assert!(reply.starts_with("550 5.7.124"), "{reply}");

    // The tenant's own domain passing DMARC makes alice an authenticated sender of the
    // organisation; a contact never is, however well its domain authenticates.
    let reply = send(
        &s,
        json!({"from": "alice@contoso.test", "to": ["staff@contoso.test"],
               "subject": "staff meeting", "body": HAM_BODY}),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    let id = trace_id(&s, "staff@contoso.test", "staff meeting");
    s.wait_for("the staff group expanded", || {
        final_status(&s, &id, "staff@contoso.test") == "Expanded"
    });
    let reply = rcpt_reply(&s, "news@northwind.test", "staff@contoso.test");
    assert!(reply.starts_with("550 5.7.133"), "{reply}");
}

/// A delivery report from MAILER-DAEMON to `to` about the message `original_id`.
fn bounce(to: &str, original_id: &str, subject: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.fabrikam.test\nTo: {to}\nSubject: {subject}\n\
         Message-ID: <{subject}@mx.fabrikam.test>\nMIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n\
         --b1\nContent-Type: text/plain\n\nThis is the mail system at host mx.fabrikam.test.\n\
         Your message could not be delivered to one or more recipients.\n\n\
         --b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.fabrikam.test\n\n\
         Final-Recipient: rfc822; nobody@fabrikam.test\nAction: failed\nStatus: 5.1.1\n\n\
         --b1\nContent-Type: text/rfc822-headers\n\nFrom: {to}\nTo: nobody@fabrikam.test\n\
         Subject: Quarterly figures\nMessage-ID: <{original_id}>\n\n--b1--\n"
    )
}

#[test]
fn ndr_backscatter_marks_only_reports_about_mail_hato_never_carried() {
    let s = setup();
    policy(
        &s,
        "backscatter",
        "0",
        "alice@contoso.test",
        &["--mark-as-spam-ndr-backscatter", "on"],
    );
    // alice's message, carried by hato (to bob here; to the Internet once hato sends out).
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.contoso.test").starts_with("250"));
    let reply = c.send_mail(
        "alice@contoso.test",
        &["bob@contoso.test"],
        "From: alice@contoso.test\nTo: bob@contoso.test\nSubject: Quarterly figures\n\
         Message-ID: <figures-1@contoso.test>\n\n\
         The figures for the quarter are on the shared drive.\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    trace_id(&s, "bob@contoso.test", "Quarterly figures");

    // A report about that message is a real NDR: the Inbox, and the trace says why.
    let reply = c.send_mail(
        "",
        &["alice@contoso.test"],
        &bounce("alice@contoso.test", "figures-1@contoso.test", "real-ndr"),
    );
    assert!(reply.starts_with("250"), "{reply}");
    let raw = only_raw(&s, "alice@contoso.test", "inbox");
    assert!(!raw.contains("X-CustomSpam"), "{raw}");
    let id = trace_id(&s, "alice@contoso.test", "real-ndr");
    let ev = spam_event(&s, &id, "alice@contoso.test");
    assert!(ev.to_string().contains("not backscatter"), "{ev}");

    // A report about a message alice never sent through hato is backscatter.
    let reply = c.send_mail(
        "",
        &["alice@contoso.test"],
        &bounce(
            "alice@contoso.test",
            "never-sent@contoso.test",
            "backscatter",
        ),
    );
    assert!(reply.starts_with("250"), "{reply}");
    let raw = only_raw(&s, "alice@contoso.test", "junk");
    assert!(raw.contains("X-CustomSpam: Backscatter NDR"), "{raw}");
}

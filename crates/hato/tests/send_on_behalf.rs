//! Send on behalf (Exchange's `Set-Mailbox -GrantSendOnBehalfTo`) end to end: the real `hato
//! serve`'s submission listener driven by Python's smtplib (STARTTLS, AUTH PLAIN). A delegate
//! sends with `From:` the mailbox and `Sender:` itself (RFC 5322 §3.6.2) only with the right;
//! without it, or without naming itself in `Sender:`, Exchange's `550 5.7.60`.

mod common;

use common::{Server, python};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
const DENIED: &str = "550 5.7.60 SMTP; Client does not have permissions to send as this sender";

/// Authenticates as `user` on the submission listener at `port` and sends `data` from the
/// envelope sender `from` to `to`; prints `CODE TEXT` of the step that ended it.
const SEND: &str = r#"
import smtplib, ssl, sys
port, user, password, sender, to, data = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
c.starttls(context=ctx)
c.login(user, password)
code, text = c.mail(sender)
if code != 250:
    print(code, text.decode())
else:
    c.rcpt(to)
    try:
        code, text = c.data(data.encode())
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    print(code, text.decode())
c.quit()
"#;

fn send(s: &Server, user: &str, envelope: &str, headers: &str, subject: &str) -> String {
    let data = format!(
        "{headers}To: carol@contoso.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@contoso.test>\r\n\r\nfrom a delegate\r\n"
    );
    python(
        SEND,
        &[
            &s.submission.port().to_string(),
            user,
            PASSWORD,
            envelope,
            "carol@contoso.test",
            &data,
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn a_delegate_sends_on_behalf_only_with_the_right_and_itself_in_sender() {
    let s = Server::start_with_config("", "", "[submission]\nlisten = [\"127.0.0.1:0\"]\n");
    s.tenant("contoso");
    for m in ["alice", "bob", "carol"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", PASSWORD]);
    }
    let on_behalf = "From: Bob <bob@contoso.test>\r\nSender: Alice <alice@contoso.test>\r\n";

    // Without the right: refused at the end of the data, as Exchange answers.
    let out = send(
        &s,
        "alice@contoso.test",
        "alice@contoso.test",
        on_behalf,
        "before",
    );
    assert_eq!(out, DENIED);

    // Set-Mailbox bob -GrantSendOnBehalfTo alice.
    let out = s.ok(&[
        "mailbox",
        "set",
        "bob@contoso.test",
        "--grant-send-on-behalf-to",
        "alice@contoso.test",
    ]);
    assert!(
        out.contains("alice@contoso.test may send on behalf of bob@contoso.test"),
        "{out}"
    );
    let (status, v) = s.api(
        "GET",
        "/api/v1/mailboxes/bob@contoso.test/permissions",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!([{"user": "alice@contoso.test", "right": "send-on-behalf"}])
    );

    let out = send(
        &s,
        "alice@contoso.test",
        "alice@contoso.test",
        on_behalf,
        "granted",
    );
    assert!(out.starts_with("250 2.6.0"), "{out}");
    s.wait_for("carol gets the message sent on behalf", || {
        s.mail("carol@contoso.test")
            .iter()
            .any(|m| m["subject"] == "granted")
    });
    let id = s
        .mail("carol@contoso.test")
        .iter()
        .find(|m| m["subject"] == "granted")
        .and_then(|m| m["id"].as_i64())
        .expect("the message");
    let raw = s.raw_mail("carol@contoso.test", id);
    assert!(raw.contains("From: Bob <bob@contoso.test>\r\n"), "{raw}");
    assert!(
        raw.contains("Sender: Alice <alice@contoso.test>\r\n"),
        "{raw}"
    );

    // The right is not send-as: From bob without Sender, or with someone else in Sender, or
    // bob as the envelope sender, is still 5.7.60.
    let out = send(
        &s,
        "alice@contoso.test",
        "alice@contoso.test",
        "From: bob@contoso.test\r\n",
        "no-sender",
    );
    assert_eq!(out, DENIED);
    let out = send(
        &s,
        "alice@contoso.test",
        "alice@contoso.test",
        "From: bob@contoso.test\r\nSender: carol@contoso.test\r\n",
        "other-sender",
    );
    assert_eq!(out, DENIED);
    let out = send(
        &s,
        "alice@contoso.test",
        "bob@contoso.test",
        on_behalf,
        "envelope",
    );
    assert_eq!(out, DENIED);
    // Carol has no right on bob at all.
    let out = send(
        &s,
        "carol@contoso.test",
        "carol@contoso.test",
        "From: bob@contoso.test\r\nSender: carol@contoso.test\r\n",
        "carol",
    );
    assert_eq!(out, DENIED);

    // Taken away: refused again.
    s.ok(&[
        "mailbox",
        "permission",
        "remove",
        "bob@contoso.test",
        "--user",
        "alice@contoso.test",
        "--right",
        "send-on-behalf",
    ]);
    let out = send(
        &s,
        "alice@contoso.test",
        "alice@contoso.test",
        on_behalf,
        "after",
    );
    assert_eq!(out, DENIED);
}

//! Client submission end to end (issue 10, item 2): the real `hato serve`'s submission listener
//! driven by Python's smtplib, as a mail client or a device would (STARTTLS, AUTH PLAIN/LOGIN),
//! against Exchange Online's documented answers (`exchange-online-behaviour.md` §9.3, §12).

mod common;

use common::{Server, python, trace_id_of};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A Python smtplib client: connects to `addr`, EHLO, STARTTLS (unless `"starttls": false`) and
/// EHLO again, tries each AUTH of `auth` with `mech`, then sends each of `messages`
/// (`from`, `to`, `data`). Prints one line per step: `STEP CODE TEXT`.
const CLIENT: &str = r#"
import json, smtplib, ssl, sys
plan = json.loads(sys.argv[1])
host, port = plan['addr'].rsplit(':', 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def say(step, code, text):
    if isinstance(text, bytes):
        text = text.decode()
    print(step, code, text.replace('\n', ' '))

c = smtplib.SMTP(host, int(port), timeout=30)
c.ehlo('py.test')
say('EHLO', 250, ' '.join(sorted(c.esmtp_features)))
if plan.get('starttls', True):
    c.starttls(context=ctx)
    c.ehlo('py.test')
    say('EHLO', 250, ' '.join(sorted(c.esmtp_features)))
try:
    for user, password in plan.get('auth', []):
        c.user, c.password = user, password
        mech = plan.get('mech', 'PLAIN')
        try:
            code, resp = c.auth(mech, getattr(c, 'auth_' + mech.lower()))
        except smtplib.SMTPAuthenticationError as e:
            code, resp = e.smtp_code, e.smtp_error
        say('AUTH', code, resp)
    for m in plan.get('messages', []):
        code, resp = c.mail(m['from'])
        say('MAIL', code, resp)
        if code != 250:
            c.rset()
            continue
        accepted = False
        for r in m['to']:
            code, resp = c.rcpt(r)
            say('RCPT', code, resp)
            accepted = accepted or code == 250
        if not accepted:
            c.rset()
            continue
        try:
            code, resp = c.data(m['data'])
        except smtplib.SMTPDataError as e:
            code, resp = e.smtp_code, e.smtp_error
        say('DATA', code, resp)
    c.quit()
except smtplib.SMTPServerDisconnected:
    say('CLOSED', 0, 'the server closed the connection')
"#;

/// Runs [`CLIENT`] with `plan` against the server's submission listener; its output lines.
fn client(s: &Server, mut plan: Value) -> Vec<String> {
    plan["addr"] = json!(s.submission.to_string());
    python(CLIENT, &[&plan.to_string()])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lines of `out` for `step`.
fn step<'a>(out: &'a [String], step: &str) -> Vec<&'a str> {
    out.iter()
        .filter_map(|l| l.strip_prefix(step))
        .map(|l| l.trim_start())
        .collect()
}

fn message(from: &str, to: &[&str], header_from: &str, subject: &str) -> Value {
    json!({
        "from": from,
        "to": to,
        "data": format!(
            "From: {header_from}\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@contoso.test>\r\n\r\nsent by a client\r\n",
            to.join(", ")
        ),
    })
}

/// Tenant contoso: alice (with a password and an alias), bob and carol.
fn contoso(submission: &str) -> Server {
    let extra = if submission.is_empty() {
        String::new()
    } else {
        format!("[submission]\nlisten = [\"127.0.0.1:0\"]\n{submission}\n")
    };
    let s = Server::start_with_config("", "", &extra);
    s.tenant("contoso");
    s.mailbox(
        "alice@contoso.test",
        &["--password", PASSWORD, "--alias", "a.smith@contoso.test"],
    );
    s.mailbox("bob@contoso.test", &["--password", PASSWORD]);
    s.mailbox("carol@contoso.test", &["--password", PASSWORD]);
    s
}

fn alice() -> Value {
    json!([["alice@contoso.test", PASSWORD]])
}

#[test]
fn starttls_and_auth_plain_or_login_submit_to_local_and_outside_recipients() {
    let s = contoso("");
    let out = client(
        &s,
        json!({
            "auth": alice(),
            "messages": [message("alice@contoso.test", &["bob@contoso.test"], "Alice <alice@contoso.test>", "plain-1")],
        }),
    );
    let ehlo = step(&out, "EHLO");
    assert!(
        !ehlo[0].contains("auth") && ehlo[0].contains("starttls"),
        "AUTH only inside TLS: {out:?}"
    );
    assert!(ehlo[1].contains("auth"), "{out:?}");
    assert_eq!(
        step(&out, "AUTH"),
        ["235 2.7.0 Authentication successful"],
        "{out:?}"
    );
    let data = step(&out, "DATA");
    assert!(data[0].starts_with("250 2.6.0"), "{out:?}");
    s.wait_for("delivery to bob", || s.mail("bob@contoso.test").len() == 1);
    let id = s.mail("bob@contoso.test")[0]["id"].as_i64().unwrap();
    let raw = s.raw_mail("bob@contoso.test", id);
    // RFC 3848: authenticated and over TLS.
    assert!(raw.contains("with ESMTPSA"), "{raw}");

    // AUTH LOGIN (smtplib sends the user name with the command), to an address outside any
    // tenant: queued for outbound delivery under alice's tenant.
    let out = client(
        &s,
        json!({
            "mech": "LOGIN",
            "auth": alice(),
            "messages": [message("alice@contoso.test", &["partner@outside.test"], "alice@contoso.test", "login-1")],
        }),
    );
    assert_eq!(
        step(&out, "AUTH"),
        ["235 2.7.0 Authentication successful"],
        "{out:?}"
    );
    let data = step(&out, "DATA");
    assert!(data[0].starts_with("250 2.6.0"), "{out:?}");
    let trace_id = trace_id_of(data[0]);
    s.wait_for("the outside recipient in the queue", || {
        s.ok(&["queue", "list", "--recipient", "partner@outside.test"])
            .contains("partner@outside.test")
    });
    let listing: Value = serde_json::from_str(&s.ok(&[
        "queue",
        "list",
        "--recipient",
        "partner@outside.test",
        "--json",
    ]))
    .unwrap();
    let row = &listing["rows"][0];
    assert_eq!(row["route"], "remote", "{listing}");
    assert_eq!(row["sender"], "alice@contoso.test", "{listing}");
    // Attributed to alice's tenant.
    assert!(
        s.ok(&["queue", "list", "--tenant", "contoso"])
            .contains("partner@outside.test")
    );
    let rows = s.trace(&format!("trace_id={trace_id}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["sender"], "alice@contoso.test", "{rows:?}");
}

#[test]
fn auth_before_starttls_and_mail_without_auth_are_refused() {
    let s = contoso("");
    let out = client(
        &s,
        json!({
            "starttls": false,
            "auth": alice(),
            "messages": [message("alice@contoso.test", &["bob@contoso.test"], "alice@contoso.test", "no-tls")],
        }),
    );
    assert_eq!(
        step(&out, "AUTH"),
        ["530 5.7.0 Must issue a STARTTLS command first"],
        "{out:?}"
    );
    assert_eq!(
        step(&out, "MAIL"),
        ["530 5.7.0 Must issue a STARTTLS command first"],
        "{out:?}"
    );
    let out = client(
        &s,
        json!({
            "messages": [message("alice@contoso.test", &["bob@contoso.test"], "alice@contoso.test", "anonymous")],
        }),
    );
    assert_eq!(
        step(&out, "MAIL"),
        ["530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM"],
        "{out:?}"
    );
    assert!(s.mail("bob@contoso.test").is_empty());
}

#[test]
fn wrong_passwords_are_refused_and_the_failure_limits_lock_the_account() {
    let s = contoso("");
    let wrong = json!(["alice@contoso.test", "not the password"]);
    // Three failures close the session (max_auth_failures_per_session): smtplib reads the 421
    // as the answer to its fourth AUTH, then finds the connection closed.
    let out = client(&s, json!({"auth": [wrong, wrong, wrong, wrong, wrong]}));
    assert_eq!(
        step(&out, "AUTH"),
        [
            "535 5.7.3 Authentication unsuccessful",
            "535 5.7.3 Authentication unsuccessful",
            "535 5.7.3 Authentication unsuccessful",
            "421 4.7.0 Too many failed authentication attempts; closing connection",
        ],
        "{out:?}"
    );
    assert_eq!(step(&out, "CLOSED").len(), 1, "{out:?}");
    // An unknown user gets the same answer.
    let out = client(
        &s,
        json!({"auth": [["nobody@contoso.test", "whatever password"]]}),
    );
    assert_eq!(
        step(&out, "AUTH"),
        ["535 5.7.3 Authentication unsuccessful"],
        "{out:?}"
    );
    // Two more failures for alice make five (auth_max_failures): locked, even for the right
    // password, which is not checked.
    let out = client(&s, json!({"auth": [wrong, wrong]}));
    assert_eq!(step(&out, "AUTH").len(), 2, "{out:?}");
    let out = client(&s, json!({"auth": alice()}));
    assert_eq!(
        step(&out, "AUTH"),
        ["454 4.7.0 Temporary authentication failure: too many failed attempts; try again later"],
        "{out:?}"
    );
    // Another account from the same IP is not locked (6 failures from it, 20 allowed).
    let out = client(&s, json!({"auth": [["bob@contoso.test", PASSWORD]]}));
    assert_eq!(
        step(&out, "AUTH"),
        ["235 2.7.0 Authentication successful"],
        "{out:?}"
    );
}

#[test]
fn the_per_ip_failure_limit_covers_every_account() {
    let s = contoso("auth_max_failures_per_ip = 2");
    let out = client(
        &s,
        json!({"auth": [["bob@contoso.test", "wrong one"], ["carol@contoso.test", "wrong two"]]}),
    );
    assert_eq!(step(&out, "AUTH").len(), 2, "{out:?}");
    let out = client(&s, json!({"auth": alice()}));
    assert!(
        step(&out, "AUTH")[0].starts_with("454 4.7.0"),
        "alice never failed, but the IP did: {out:?}"
    );
}

#[test]
fn send_as_needs_the_right_for_mail_from_and_the_from_header() {
    let s = contoso("");
    let bob_from = message(
        "bob@contoso.test",
        &["carol@contoso.test"],
        "bob@contoso.test",
        "as-bob",
    );
    let out = client(&s, json!({"auth": alice(), "messages": [bob_from]}));
    assert_eq!(
        step(&out, "MAIL"),
        ["550 5.7.60 SMTP; Client does not have permissions to send as this sender"],
        "{out:?}"
    );
    // The envelope is alice's, the From header bob's.
    let forged = message(
        "alice@contoso.test",
        &["carol@contoso.test"],
        "Bob <bob@contoso.test>",
        "forged-from",
    );
    let out = client(&s, json!({"auth": alice(), "messages": [forged]}));
    assert_eq!(
        step(&out, "DATA"),
        ["550 5.7.60 SMTP; Client does not have permissions to send as this sender"],
        "{out:?}"
    );
    // Her alias is hers.
    let alias = message(
        "a.smith@contoso.test",
        &["carol@contoso.test"],
        "a.smith@contoso.test",
        "alias",
    );
    let out = client(&s, json!({"auth": alice(), "messages": [alias]}));
    assert!(step(&out, "DATA")[0].starts_with("250 2.6.0"), "{out:?}");

    s.ok(&[
        "mailbox",
        "permission",
        "add",
        "bob@contoso.test",
        "--user",
        "alice@contoso.test",
        "--right",
        "send-as",
    ]);
    let out = client(&s, json!({"auth": alice(), "messages": [bob_from]}));
    assert_eq!(step(&out, "MAIL"), ["250 2.1.0 Sender OK"], "{out:?}");
    assert!(step(&out, "DATA")[0].starts_with("250 2.6.0"), "{out:?}");
    let out = client(&s, json!({"auth": alice(), "messages": [forged]}));
    assert!(step(&out, "DATA")[0].starts_with("250 2.6.0"), "{out:?}");
    s.wait_for("the three accepted messages", || {
        s.mail("carol@contoso.test").len() == 3
    });
    // Another tenant's address is never one to send as.
    s.tenant("fabrikam");
    s.mailbox("dan@fabrikam.test", &[]);
    let out = client(
        &s,
        json!({"auth": alice(), "messages": [message("dan@fabrikam.test", &["carol@contoso.test"], "dan@fabrikam.test", "other-tenant")]}),
    );
    assert!(step(&out, "MAIL")[0].starts_with("550 5.7.60"), "{out:?}");
}

#[test]
fn smtp_client_authentication_disabled_refuses_the_mailbox() {
    let s = contoso("");
    s.ok(&[
        "mailbox",
        "set",
        "alice@contoso.test",
        "--smtp-client-authentication-disabled",
        "true",
    ]);
    let shown = s.ok(&["mailbox", "show", "alice@contoso.test", "--json"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["smtp_client_authentication_disabled"], true);
    let out = client(&s, json!({"auth": alice()}));
    assert_eq!(
        step(&out, "AUTH"),
        [
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox"
        ],
        "{out:?}"
    );
    // A wrong password still gets the plain refusal: the setting is not told to a guesser.
    let out = client(&s, json!({"auth": [["alice@contoso.test", "a wrong one"]]}));
    assert_eq!(
        step(&out, "AUTH"),
        ["535 5.7.3 Authentication unsuccessful"]
    );
    let (ok, _, err) = s.cli(&[
        "mailbox",
        "set",
        "alice@contoso.test",
        "--smtp-client-authentication-disabled",
        "maybe",
    ]);
    assert!(!ok && err.contains("maybe"), "{err}");
    s.ok(&[
        "mailbox",
        "set",
        "alice@contoso.test",
        "--smtp-client-authentication-disabled",
        "false",
    ]);
    let out = client(&s, json!({"auth": alice()}));
    assert_eq!(step(&out, "AUTH"), ["235 2.7.0 Authentication successful"]);
}

#[test]
fn quotas_refuse_messages_per_minute_and_recipients_per_day() {
    let s = contoso("max_messages_per_minute = 2\nmax_recipients_per_day = 3");
    let one = message(
        "alice@contoso.test",
        &["bob@contoso.test"],
        "alice@contoso.test",
        "quota",
    );
    let out = client(&s, json!({"auth": alice(), "messages": [one, one, one]}));
    assert_eq!(
        step(&out, "MAIL"),
        [
            "250 2.1.0 Sender OK",
            "250 2.1.0 Sender OK",
            "554 5.2.2 Submission quota exceeded"
        ],
        "{out:?}"
    );
    // Carol's counts are her own: three recipients a day, the fourth refused.
    let four = message(
        "carol@contoso.test",
        &[
            "alice@contoso.test",
            "bob@contoso.test",
            "partner@outside.test",
            "other@outside.test",
        ],
        "carol@contoso.test",
        "four",
    );
    let out = client(
        &s,
        json!({"auth": [["carol@contoso.test", PASSWORD]], "messages": [four]}),
    );
    assert_eq!(
        step(&out, "RCPT"),
        [
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            "554 5.2.2 Submission quota exceeded"
        ],
        "{out:?}"
    );
    assert!(step(&out, "DATA")[0].starts_with("250 2.6.0"), "{out:?}");
}

#[test]
fn an_authenticated_submission_passes_a_group_that_requires_authenticated_senders() {
    let s = contoso("");
    s.ok(&[
        "group",
        "add",
        "staff@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "carol@contoso.test",
        "--member",
        "bob@contoso.test",
        "--require-sender-authentication",
        "true",
    ]);
    // The same sender over direct send (port 25) is not authenticated.
    let mut c = s.smtp();
    c.read_reply();
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<alice@contoso.test>");
    assert!(
        c.cmd("RCPT TO:<staff@contoso.test>")
            .starts_with("550 5.7.133"),
        "direct send is anonymous"
    );
    let out = client(
        &s,
        json!({"auth": alice(), "messages": [message("alice@contoso.test", &["staff@contoso.test"], "alice@contoso.test", "to-staff")]}),
    );
    assert_eq!(step(&out, "RCPT"), ["250 2.1.5 Recipient OK"], "{out:?}");
    assert!(step(&out, "DATA")[0].starts_with("250 2.6.0"), "{out:?}");
    s.wait_for("the group's member gets it", || {
        s.mail("bob@contoso.test").len() == 1
    });
}

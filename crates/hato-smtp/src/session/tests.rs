use super::*;
use hato_core::body::memory::MemorySpool;
use hato_core::directory::Route;
use hato_core::message::{Action, RecipientVerdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory of two mailboxes in `contoso.test` (authoritative) and relay domain `relay.test`.
struct MapPolicy;

fn lookup(rcpt: &Address) -> RcptVerdict {
    if rcpt.is_bare_postmaster() {
        return accept(rcpt, Route::Postmaster);
    }
    match (rcpt.local(), rcpt.domain()) {
        ("alice", "contoso.test") => accept(rcpt, Route::Local(1)),
        ("bob", "contoso.test") | ("用户", "contoso.test") => accept(rcpt, Route::Local(2)),
        (_, "contoso.test") => RcptVerdict::Reject(refusal(reply::RECIPIENT_REJECTED)),
        (_, "relay.test") => accept(rcpt, Route::Relay),
        _ => RcptVerdict::Reject(refusal(reply::UNABLE_TO_RELAY)),
    }
}

/// A test policy's refusal: the reply, for a reason that names the test.
fn refusal(reply: Reply) -> Refusal {
    Refusal::new(
        reply,
        Reason::new(Stage::Recipient, "refused by the test policy"),
    )
}

impl SmtpPolicy for MapPolicy {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        Decision::Ready(lookup(rcpt))
    }
}

fn accept(a: &Address, route: Route) -> RcptVerdict {
    RcptVerdict::Accept(AcceptedRecipient {
        address: a.clone(),
        tenant_id: 1,
        route,
    })
}

fn config(tls: bool) -> SessionConfig {
    SessionConfig {
        hostname: "mx.hato.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        tls_available: tls,
        max_errors: 20,
        ..SessionConfig::default()
    }
}

fn client() -> ClientContext {
    ClientContext::new(
        "192.0.2.7:40000".parse().unwrap(),
        "198.51.100.1:25".parse().unwrap(),
    )
}

/// A started session (the banner taken).
fn session(tls: bool) -> Session<MapPolicy> {
    let mut s = Session::new(config(tls), Arc::new(MapPolicy), client());
    let (banner, _) = run(&mut s, b"");
    assert_eq!(banner, "220 mx.hato.test ESMTP hato ready\r\n");
    s
}

/// Awaits a pending decision the way the I/O loop does.
fn block_on(decision: PendingDecision) -> Answer {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(decision)
}

/// The text sent, and the envelopes submitted, for some input (a session that has not started
/// yet is started first). Decisions are awaited; `<DECIDE>` marks each.
fn run<P: SmtpPolicy + ?Sized>(s: &mut Session<P>, input: &[u8]) -> (String, Vec<MessageContext>) {
    let mut text = String::new();
    let mut envs = Vec::new();
    let mut outs: std::collections::VecDeque<Output> = s.start().into();
    outs.extend(s.feed(input));
    while let Some(o) = outs.pop_front() {
        match o {
            Output::Send(b) => text.push_str(&String::from_utf8_lossy(&b)),
            Output::Decide(d) => {
                text.push_str("<DECIDE>");
                outs.extend(s.decided(block_on(d)));
            }
            Output::Submit(e) => {
                envs.push(*e);
                let n = envs.len();
                outs.extend(s.submitted(Ok(format!("id-{n}"))));
            }
            Output::StartTls => text.push_str("<TLS>"),
            Output::Close => text.push_str("<CLOSE>"),
        }
    }
    (text, envs)
}

fn codes(text: &str) -> Vec<&str> {
    text.split("\r\n")
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn ehlo_advertises_extensions() {
    let mut s = session(true);
    let (t, _) = run(&mut s, b"EHLO client.test\r\n");
    for ext in [
        "SIZE 1000",
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
    ] {
        assert!(t.contains(ext), "{ext} missing from {t}");
    }
    assert!(t.starts_with("250-mx.hato.test Hello [192.0.2.7]\r\n"));
    let (t, _) = run(&mut session(false), b"EHLO client.test\r\n");
    assert!(!t.contains("STARTTLS"));
    let (t, _) = run(&mut session(false), b"HELO client.test\r\n");
    assert_eq!(t, "250 mx.hato.test Hello [192.0.2.7]\r\n");
}

#[test]
fn a_whole_transaction_pipelined() {
    let mut s = session(false);
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<Sender@Example.ORG>\r\nRCPT TO:<Alice@Contoso.test>\r\nRCPT TO:<bob@contoso.test>\r\nDATA\r\n",
    );
    assert_eq!(codes(&t)[1..], ["250", "250", "250", "354"]);
    assert!(envs.is_empty());
    let (t, envs) = run(&mut s, b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(
        t,
        "250 2.6.0 <id-1> Queued mail for delivery\r\n221 2.0.0 mx.hato.test closing connection\r\n<CLOSE>"
    );
    let e = &envs[0];
    assert_eq!(
        e.envelope.sender.as_ref().unwrap().to_string(),
        "sender@example.org"
    );
    assert_eq!(e.envelope.recipients.len(), 2);
    assert_eq!(e.body.in_memory().unwrap(), b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(e.protocol, "ESMTP");
    assert_eq!(e.client.helo.as_deref(), Some("c"));
    assert_eq!(e.client.peer, "192.0.2.7:40000".parse().unwrap());
}

/// RFC 3461 §4: RET and ENVID with MAIL, NOTIFY and ORCPT with each RCPT reach the envelope
/// (ENVID and ORCPT decoded from xtext); a recipient without NOTIFY has none (the default
/// applies later); a repeated recipient keeps its first RCPT's parameters.
#[test]
fn dsn_parameters_reach_the_envelope() {
    let mut s = session(false);
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<x@fabrikam.test> RET=HDRS ENVID=QQ+2B314 SIZE=10\r\n\
          RCPT TO:<alice@contoso.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Alice+2Bx@contoso.test\r\n\
          RCPT TO:<bob@contoso.test>\r\n\
          RCPT TO:<alice@contoso.test> NOTIFY=NEVER\r\n\
          DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
    );
    assert_eq!(
        codes(&t),
        ["250", "250", "250", "250", "250", "354", "250"],
        "{t}"
    );
    let e = &envs[0].envelope;
    assert_eq!(e.dsn.ret, Some(hato_core::dsn::Ret::Headers));
    assert_eq!(e.dsn.envid.as_deref(), Some("QQ+314"));
    let alice = &e.recipients[0].dsn;
    assert_eq!(
        alice.notify,
        Some(hato_core::dsn::Notify {
            success: true,
            failure: false,
            delay: true
        })
    );
    assert_eq!(
        alice.orcpt.as_ref().map(|o| o.as_stored()).as_deref(),
        Some("rfc822;Alice+x@contoso.test")
    );
    assert_eq!(e.recipients[1].dsn, Default::default());
    assert_eq!(e.recipients.len(), 2);
}

/// Bad DSN parameters get `501 5.5.4` saying what is wrong (RFC 3461 §4: syntax, NEVER alone,
/// once each, ENVID ≤ 100 and ORCPT ≤ 500 characters); the transaction goes on.
#[test]
fn bad_dsn_parameters_are_refused_with_501() {
    let long_envid = format!("MAIL FROM:<x@fabrikam.test> ENVID={}\r\n", "e".repeat(101));
    let long_orcpt = format!(
        "RCPT TO:<alice@contoso.test> ORCPT=rfc822;{}@contoso.test\r\n",
        "o".repeat(500)
    );
    for (line, text) in [
        (
            "MAIL FROM:<x@fabrikam.test> RET=FULL RET=HDRS\r\n",
            "Invalid DSN parameter RET: given more than once",
        ),
        (
            "MAIL FROM:<x@fabrikam.test> ENVID=a ENVID=b\r\n",
            "Invalid DSN parameter ENVID: given more than once",
        ),
        (
            "MAIL FROM:<x@fabrikam.test> ENVID=a+2\r\n",
            "Invalid DSN parameter ENVID: xtext",
        ),
        (
            long_envid.as_str(),
            "Invalid DSN parameter ENVID: longer than 100 characters",
        ),
    ] {
        let mut s = session(false);
        let (t, _) = run(&mut s, format!("EHLO c\r\n{line}").as_bytes());
        let last = t.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("501 5.5.4 ") && last.contains(text),
            "{line}: {t}"
        );
    }
    for (line, text) in [
        (
            "RCPT TO:<alice@contoso.test> NOTIFY=NEVER,SUCCESS\r\n",
            "NEVER cannot be combined",
        ),
        (
            "RCPT TO:<alice@contoso.test> NOTIFY=SUCCESS,NEVER\r\n",
            "NEVER cannot be combined",
        ),
        (
            "RCPT TO:<alice@contoso.test> NOTIFY=FAILURE NOTIFY=DELAY\r\n",
            "NOTIFY: given more than once",
        ),
        (
            "RCPT TO:<alice@contoso.test> ORCPT=rfc822;a@b ORCPT=rfc822;c@d\r\n",
            "ORCPT: given more than once",
        ),
        (
            "RCPT TO:<alice@contoso.test> ORCPT=rfc822;a=b\r\n",
            "ORCPT: xtext",
        ),
        (long_orcpt.as_str(), "ORCPT: longer than 500 characters"),
    ] {
        let mut s = session(false);
        let (t, envs) = run(
            &mut s,
            format!(
                "EHLO c\r\nMAIL FROM:<x@fabrikam.test>\r\n{line}RCPT TO:<bob@contoso.test>\r\nDATA\r\n\r\nhi\r\n.\r\n"
            )
            .as_bytes(),
        );
        let replies: Vec<&str> = t.lines().collect();
        let refused = replies
            .iter()
            .find(|l| l.starts_with("501"))
            .copied()
            .unwrap_or_default();
        assert!(
            refused.starts_with("501 5.5.4 ") && refused.contains(text),
            "{line}: {t}"
        );
        // The refused RCPT is not a recipient; the transaction goes on with the others.
        assert_eq!(envs.len(), 1, "{t}");
        assert_eq!(envs[0].envelope.recipients.len(), 1);
    }
}

#[test]
fn two_messages_in_one_write_are_two_messages() {
    let mut s = session(false);
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\none\r\n.\r\n\
          MAIL FROM:<b@x.test>\r\nRCPT TO:<bob@contoso.test>\r\nDATA\r\ntwo\r\n.\r\n",
    );
    assert_eq!(envs.len(), 2);
    assert_eq!(envs[0].body.in_memory().unwrap(), b"one\r\n");
    assert_eq!(envs[1].body.in_memory().unwrap(), b"two\r\n");
    assert!(t.contains("<id-1>") && t.contains("<id-2>"));
}

#[test]
fn recipient_decisions() {
    let mut s = session(false);
    let (t, _) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<nobody@contoso.test>\r\nRCPT TO:<someone@gmail.test>\r\nRCPT TO:<any@relay.test>\r\n",
    );
    assert!(t.contains("550 5.4.1 Recipient address rejected: Access denied\r\n"));
    assert!(t.contains("550 5.7.1 Unable to relay\r\n"));
    assert!(t.ends_with("250 2.1.5 Recipient OK\r\n"));
}

#[test]
fn too_many_recipients() {
    let mut s = session(false);
    let (t, _) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nRCPT TO:<bob@contoso.test>\r\n\
          RCPT TO:<x@relay.test>\r\nRCPT TO:<y@relay.test>\r\n",
    );
    assert!(t.ends_with("452 4.5.3 Too many recipients\r\n"), "{t}");
}

#[test]
fn duplicate_recipient_gets_one_copy() {
    let mut s = session(false);
    let (_, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nRCPT TO:<ALICE@contoso.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(envs[0].envelope.recipients.len(), 1);
}

#[test]
fn bad_sequences() {
    let (t, _) = run(&mut session(false), b"MAIL FROM:<a@x.test>\r\n");
    assert_eq!(
        t,
        "503 5.5.1 Bad sequence of commands: send EHLO/HELO first\r\n"
    );
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nRCPT TO:<alice@contoso.test>\r\n",
    );
    assert!(t.ends_with("503 5.5.1 Bad sequence of commands: need MAIL command\r\n"));
    let (t, _) = run(&mut session(false), b"EHLO c\r\nDATA\r\n");
    assert!(t.ends_with("503 5.5.1 Bad sequence of commands: need MAIL command\r\n"));
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n",
    );
    assert!(t.ends_with("554 5.5.1 No valid recipients\r\n"));
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nMAIL FROM:<a@x.test>\r\n",
    );
    assert!(t.ends_with("503 5.5.1 Bad sequence of commands: sender already specified\r\n"));
}

#[test]
fn syntax_errors() {
    let (t, _) = run(&mut session(false), b"EHLO c\r\nFOO bar\r\n");
    assert!(t.ends_with("500 5.5.1 Command unrecognized\r\n"));
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<not an address>\r\n",
    );
    assert!(
        t.ends_with("501 5.1.7 Bad sender address syntax\r\n"),
        "{t}"
    );
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<@@>\r\n",
    );
    assert!(codes(&t).last() == Some(&"501"), "{t}");
    let (t, _) = run(&mut session(false), b"EHLO\r\n");
    assert!(t.starts_with("501 5.5.4"), "{t}");
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test> FOO=BAR\r\n",
    );
    assert!(
        t.ends_with("\r\n") && codes(&t).last() == Some(&"555"),
        "{t}"
    );
}

#[test]
fn over_long_command_line() {
    let mut s = session(false);
    let mut line = b"EHLO ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 600));
    line.extend_from_slice(b"\r\nNOOP\r\n");
    let (t, _) = run(&mut s, &line);
    assert_eq!(
        t,
        "500 5.5.2 Line too long (RFC 5321 4.5.3.1.4 allows 512 octets)\r\n250 2.0.0 OK\r\n"
    );
    // Fed in pieces, the result is the same.
    let mut s = session(false);
    let (t1, _) = run(&mut s, &line[..300]);
    let (t2, _) = run(&mut s, &line[300..]);
    assert_eq!(
        t1 + &t2,
        "500 5.5.2 Line too long (RFC 5321 4.5.3.1.4 allows 512 octets)\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn size_limits() {
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test> SIZE=2000\r\n",
    );
    assert!(t.ends_with("552 5.3.4 Message size exceeds fixed maximum message size\r\n"));
    let mut input =
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n".to_vec();
    for _ in 0..30 {
        input.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    input.extend_from_slice(b".\r\nNOOP\r\n");
    let (t, envs) = run(&mut session(false), &input);
    assert!(envs.is_empty());
    assert!(
        t.ends_with(
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
        ),
        "{t}"
    );
}

#[test]
fn bare_lf_is_refused_and_nothing_is_smuggled() {
    let mut s = session(false);
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n\
          Subject: one\r\n\r\nhello\n.\n\
          MAIL FROM:<evil@x.test>\r\nRCPT TO:<bob@contoso.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n",
    );
    assert!(envs.is_empty(), "nothing may be submitted");
    assert!(
        t.ends_with(
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n550 5.6.11 Invalid characters\r\n"
        ),
        "{t}"
    );
}

#[test]
fn vrfy_is_disabled_and_others_not_implemented() {
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nVRFY alice\r\nEXPN list\r\nNOOP\r\nRSET\r\nHELP\r\n",
    );
    assert_eq!(codes(&t)[1..], ["252", "502", "250", "250", "214"]);
}

#[test]
fn starttls_drops_pipelined_input_and_resets() {
    let mut s = session(true);
    let (t, _) = run(
        &mut s,
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@x.test>\r\n",
    );
    assert!(t.ends_with("220 2.0.0 SMTP server ready\r\n<TLS>"), "{t}");
    s.tls_established(TlsInfo {
        version: "TLS1.3".into(),
        cipher: "X".into(),
    });
    // The injected MAIL was discarded; after TLS the client must EHLO again.
    let (t, _) = run(&mut s, b"MAIL FROM:<a@x.test>\r\n");
    assert!(t.starts_with("503"), "{t}");
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(!t.contains("STARTTLS"));
    assert_eq!(envs[0].protocol, "ESMTPS");
    assert_eq!(envs[0].client.tls.as_ref().unwrap().version, "TLS1.3");
    let (t, _) = run(&mut s, b"STARTTLS\r\n");
    assert!(t.starts_with("503 5.5.1 TLS already active"));
    let (t, _) = run(&mut session(false), b"EHLO c\r\nSTARTTLS\r\n");
    assert!(t.ends_with("454 4.7.0 TLS not available\r\n"));
}

#[test]
fn smtputf8() {
    let (t, _) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<\xc3\xbc@x.test>\r\n",
    );
    assert!(
        t.ends_with("553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n"),
        "{t}"
    );
    let (t, envs) = run(
        &mut session(false),
        "EHLO c\r\nMAIL FROM:<ü@x.test> SMTPUTF8\r\nRCPT TO:<用户@contoso.test>\r\nDATA\r\nx\r\n.\r\n".as_bytes(),
    );
    assert!(t.contains("250 2.6.0"), "{t}");
    assert!(envs[0].envelope.smtputf8);
    assert_eq!(envs[0].protocol, "UTF8SMTP");
}

#[test]
fn null_sender() {
    let (_, envs) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(envs[0].envelope.sender.is_none());
}

#[test]
fn store_failure_is_a_temporary_error() {
    let mut s = session(false);
    let outs = s.feed(b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n");
    assert!(matches!(outs.last(), Some(Output::Submit(_))));
    let outs = s.submitted(Err(reply::STORE_FAILED));
    let text: String = outs
        .iter()
        .filter_map(|o| {
            if let Output::Send(b) = o {
                Some(String::from_utf8_lossy(b).into_owned())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        text,
        "451 4.3.0 Temporary error storing the message; try again later\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn too_many_errors_closes() {
    let input = b"BAD\r\n".repeat(22);
    let (t, _) = run(&mut session(false), &input);
    assert!(
        t.ends_with("421 4.7.0 Too many errors; closing connection\r\n<CLOSE>"),
        "{t}"
    );
    assert_eq!(t.matches("500 ").count(), 21);
}

// ----- hook points ---------------------------------------------------------------------------

/// A policy whose hooks answer asynchronously: RCPT after a number of polls that shrinks with
/// each call (the first answer is the slowest), and configurable refusals at the other hooks.
#[derive(Default)]
struct SlowPolicy {
    rcpt_calls: AtomicUsize,
    connect: Option<Reply>,
    ehlo: Option<Reply>,
    mail: Option<Reply>,
    end_of_data: Option<Reply>,
    /// What each hook saw of the client: (hook, HELO name).
    seen: std::sync::Mutex<Vec<(&'static str, Option<String>)>>,
}

/// Not ready when first polled, ready after `polls` more: an answer that takes a while, without
/// making the test wait for a clock.
async fn not_yet(polls: u64) {
    for _ in 0..polls {
        tokio::task::yield_now().await;
    }
}

fn later_verdict(refusal: Option<Reply>) -> Decision<Verdict> {
    Decision::later(async move {
        not_yet(1).await;
        refusal.map_or(Verdict::Accept, |r| Verdict::Reject(self::refusal(r)))
    })
}

impl SlowPolicy {
    fn saw(&self, hook: &'static str, client: &ClientContext) {
        self.seen.lock().unwrap().push((hook, client.helo.clone()));
    }
}

impl SmtpPolicy for SlowPolicy {
    fn connect(&self, client: &ClientContext) -> Decision<Verdict> {
        self.saw("connect", client);
        later_verdict(self.connect.clone())
    }

    fn ehlo(&self, client: &ClientContext, _host: &str) -> Decision<Verdict> {
        self.saw("ehlo", client);
        later_verdict(self.ehlo.clone())
    }

    fn mail(&self, client: &ClientContext, _sender: Option<&Address>) -> Decision<Verdict> {
        self.saw("mail", client);
        later_verdict(self.mail.clone())
    }

    fn rcpt(
        &self,
        client: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        self.saw("rcpt", client);
        let n = self.rcpt_calls.fetch_add(1, Ordering::SeqCst) as u64;
        let verdict = lookup(rcpt);
        Decision::later(async move {
            not_yet(3u64.saturating_sub(n).max(1)).await;
            verdict
        })
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        self.saw("end_of_data", &message.client);
        assert!(!message.envelope.recipients.is_empty());
        let verdict = later_verdict(self.end_of_data.clone());
        Decision::later(async move {
            let verdict = match verdict {
                Decision::Ready(v) => v,
                Decision::Pending(f) => f.await,
            };
            DataVerdict { message, verdict }
        })
    }
}

fn slow_session(policy: SlowPolicy) -> (Session<SlowPolicy>, Arc<SlowPolicy>) {
    let policy = Arc::new(policy);
    (
        Session::new(config(false), policy.clone(), client()),
        policy,
    )
}

fn text_of(outs: &[Output]) -> String {
    outs.iter()
        .map(|o| match o {
            Output::Send(b) => String::from_utf8_lossy(b).into_owned(),
            Output::Decide(_) => "<DECIDE>".into(),
            Output::Submit(_) => "<SUBMIT>".into(),
            Output::StartTls => "<TLS>".into(),
            Output::Close => "<CLOSE>".into(),
        })
        .collect()
}

/// Pipelined MAIL, three RCPTs whose answers come slowly (the first slowest) and DATA, with more
/// input arriving while the session waits: the replies keep the commands' order, the input that
/// arrives meanwhile is kept, and the message carries the accepted recipients in order.
#[test]
fn pipelined_commands_with_slow_rcpt_answers_keep_their_order() {
    let (mut s, policy) = slow_session(SlowPolicy::default());
    let (t, _) = run(&mut s, b"");
    assert_eq!(t, "<DECIDE>220 mx.hato.test ESMTP hato ready\r\n");
    let mut outs: std::collections::VecDeque<Output> = s
        .feed(
            b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@contoso.test>\r\n\
              RCPT TO:<nobody@contoso.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n",
        )
        .into();
    let mut text = String::new();
    let mut envelopes = Vec::new();
    let mut late_input: std::collections::VecDeque<&[u8]> =
        [&b"Subject: slow\r\n\r\nbody\r\n"[..], b".\r\nQUIT\r\n"].into();
    while let Some(o) = outs.pop_front() {
        match o {
            Output::Decide(d) => {
                text.push_str("<DECIDE>");
                // Input that arrives while a decision is pending is kept, not answered.
                if let Some(more) = late_input.pop_front() {
                    assert!(s.feed(more).is_empty(), "answered while deciding");
                }
                outs.extend(s.decided(block_on(d)));
            }
            Output::Submit(e) => {
                envelopes.push(*e);
                outs.extend(s.submitted(Ok("id-1".into())));
            }
            other => text.push_str(&text_of(&[other])),
        }
    }
    assert!(late_input.is_empty());
    let t = text.replace("250-", "").replace('\n', "");
    assert!(
        t.ends_with(
            "<DECIDE>250 2.1.0 Sender OK\r\
             <DECIDE>250 2.1.5 Recipient OK\r\
             <DECIDE>550 5.4.1 Recipient address rejected: Access denied\r\
             <DECIDE>250 2.1.5 Recipient OK\r\
             354 Start mail input; end with <CRLF>.<CRLF>\r\
             <DECIDE>250 2.6.0 <id-1> Queued mail for delivery\r\
             221 2.0.0 mx.hato.test closing connection\r<CLOSE>"
        ),
        "{text}"
    );
    let e = &envelopes[0];
    let rcpts: Vec<String> = e
        .envelope
        .recipients
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(rcpts, ["bob@contoso.test", "alice@contoso.test"]);
    assert_eq!(
        e.body.in_memory().unwrap(),
        b"Subject: slow\r\n\r\nbody\r\n"
    );
    // Every hook saw the client, with the HELO name once it was given.
    let seen = policy.seen.lock().unwrap().clone();
    assert_eq!(seen[0], ("connect", None));
    assert_eq!(seen[1], ("ehlo", None));
    assert!(
        seen[2..]
            .iter()
            .all(|(_, helo)| helo.as_deref() == Some("c")),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        [
            "connect",
            "ehlo",
            "mail",
            "rcpt",
            "rcpt",
            "rcpt",
            "end_of_data"
        ]
    );
}

/// A refusal at connect is sent instead of the banner and closes; what the client sent early
/// is never answered.
#[test]
fn connect_refusal_closes_before_the_banner() {
    let refusal = Reply::new(554, "5.7.1", "Service unavailable; client host blocked");
    let (mut s, _) = slow_session(SlowPolicy {
        connect: Some(refusal),
        ..Default::default()
    });
    let outs = s.start();
    assert!(matches!(outs.as_slice(), [Output::Decide(_)]), "{outs:?}");
    // A client that talks before the banner: kept until the decision, then dropped.
    assert!(s.feed(b"EHLO early\r\nMAIL FROM:<a@x.test>\r\n").is_empty());
    let Some(Output::Decide(d)) = outs.into_iter().next() else {
        unreachable!()
    };
    let after = s.decided(block_on(d));
    assert_eq!(
        text_of(&after),
        "554 5.7.1 Service unavailable; client host blocked\r\n<CLOSE>"
    );
    assert!(s.is_closed());
    assert!(s.feed(b"NOOP\r\n").is_empty());
}

/// Refusals at EHLO and MAIL are the replies to those commands; the session stays usable.
#[test]
fn ehlo_and_mail_refusals_answer_their_command() {
    let (mut s, _) = slow_session(SlowPolicy {
        ehlo: Some(Reply::new(550, "5.7.1", "HELO name refused")),
        ..Default::default()
    });
    let (t, _) = run(&mut s, b"EHLO bad\r\nMAIL FROM:<a@x.test>\r\n");
    assert!(
        t.ends_with("<DECIDE>550 5.7.1 HELO name refused\r\n503 5.5.1 Bad sequence of commands: send EHLO/HELO first\r\n"),
        "{t}"
    );
    let (mut s, _) = slow_session(SlowPolicy {
        mail: Some(Reply::new(550, "5.7.1", "Sender refused")),
        ..Default::default()
    });
    let (t, _) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\n",
    );
    assert!(
        t.ends_with("<DECIDE>550 5.7.1 Sender refused\r\n503 5.5.1 Bad sequence of commands: need MAIL command\r\n"),
        "{t}"
    );
}

/// A refusal at end-of-data is the reply to the DATA: nothing is submitted, and the next
/// transaction works.
#[test]
fn end_of_data_refusal_commits_nothing() {
    let refusal = Reply::new(550, "5.7.1", "Message content rejected");
    let (mut s, _) = slow_session(SlowPolicy {
        end_of_data: Some(refusal),
        ..Default::default()
    });
    let (t, envs) = run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\nbad\r\n.\r\n\
          MAIL FROM:<a@x.test>\r\nNOOP\r\n",
    );
    assert!(envs.is_empty(), "a refused message was submitted");
    assert!(
        t.ends_with(
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n<DECIDE>550 5.7.1 Message content rejected\r\n\
             <DECIDE>250 2.1.0 Sender OK\r\n250 2.0.0 OK\r\n"
        ),
        "{t}"
    );
}

/// An answer of the wrong kind (a bug in a policy or the loop) is a temporary refusal, never an
/// acceptance.
#[test]
fn a_mismatched_answer_is_a_temporary_refusal() {
    let (mut s, _) = slow_session(SlowPolicy::default());
    run(&mut s, b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
    let outs = s.feed(b"RCPT TO:<alice@contoso.test>\r\n");
    assert!(matches!(outs.as_slice(), [Output::Decide(_)]));
    let after = s.decided(Answer::Verdict(Verdict::Accept));
    assert_eq!(
        text_of(&after),
        "451 4.3.0 Temporary error evaluating policy; try again later\r\n"
    );
    // Answers nobody asked for are ignored.
    assert!(s.decided(Answer::Verdict(Verdict::Accept)).is_empty());
}

/// The wrong kind of answer to the end-of-data question: the message went with the question, so
/// nothing is submitted, and the client is told to try again.
#[test]
fn a_mismatched_answer_at_end_of_data_submits_nothing() {
    let (mut s, _) = slow_session(SlowPolicy::default());
    run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n",
    );
    let outs = s.feed(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    assert!(matches!(outs.as_slice(), [Output::Decide(_)]), "{outs:?}");
    let after = s.decided(Answer::Verdict(Verdict::Accept));
    assert_eq!(
        text_of(&after),
        "451 4.3.0 Temporary error evaluating policy; try again later\r\n"
    );
    // The session is ready for the next transaction.
    let (t, _) = run(&mut s, b"MAIL FROM:<a@x.test>\r\n");
    assert!(t.ends_with("250 2.1.0 Sender OK\r\n"), "{t}");
}

/// Records, at end-of-data, a verdict for the recipient the `X-Audit` field names, after
/// checking what the hook was given; refuses nothing.
struct Auditor;

impl SmtpPolicy for Auditor {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        Decision::Ready(lookup(rcpt))
    }

    fn end_of_data(&self, mut message: MessageContext) -> Decision<DataVerdict> {
        assert_eq!(message.client.helo.as_deref(), Some("c"));
        assert_eq!(message.protocol, "ESMTP");
        assert!(message.trace_id.is_none(), "no trace id before the commit");
        let audited = message
            .headers
            .first("x-audit")
            .map(|v| String::from_utf8_lossy(v).trim().to_string());
        let index = message
            .envelope
            .recipients
            .iter()
            .position(|r| Some(r.address.to_string()) == audited);
        if let Some(i) = index {
            let reason = Reason::new(Stage::TransportRule, "audited").rule("audit");
            message.record(
                i,
                RecipientVerdict {
                    action: Action::Deliver,
                    reason,
                },
            );
        }
        // Handed back later, as a stage that reads the body off the async workers does.
        Decision::later(async move { DataVerdict::accept(message) })
    }
}

/// The end-of-data hook gets the message by value (envelope, client, headers, body) and hands it
/// back; the verdict it recorded for one recipient is in the message the session submits, and
/// only for that recipient. A spooled message's header block is read back from its file.
#[test]
fn verdicts_recorded_at_end_of_data_are_submitted_with_the_message() {
    for spooled in [false, true] {
        let config = SessionConfig {
            max_message_size: 1_000_000,
            spool_threshold: if spooled { 64 } else { 1 << 20 },
            spool: Some(Arc::new(MemorySpool::default())),
            ..config(false)
        };
        let mut s = Session::new(config, Arc::new(Auditor), client());
        let (t, envs) = run(
            &mut s,
            format!(
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\n\
                 RCPT TO:<bob@contoso.test>\r\nDATA\r\nSubject: audit\r\nX-Audit: bob@contoso.test\r\n\r\n{}.\r\n",
                "body line\r\n".repeat(20)
            )
            .as_bytes(),
        );
        assert!(t.contains("<DECIDE>250 2.6.0"), "{t}");
        let m = &envs[0];
        assert_eq!(m.body.is_spooled(), spooled);
        assert_eq!(m.headers.first("Subject"), Some(&b" audit"[..]));
        let verdicts: Vec<usize> = m
            .envelope
            .recipients
            .iter()
            .map(|r| r.verdicts.len())
            .collect();
        assert_eq!(verdicts, [0, 1], "spooled: {spooled}");
        assert_eq!(
            m.envelope.recipients[1].verdicts[0].reason.rule.as_deref(),
            Some("audit")
        );
    }
}

// ----- spooling ---------------------------------------------------------------------------------

fn spooling_session(threshold: usize, spool: Arc<MemorySpool>) -> Session<MapPolicy> {
    let config = SessionConfig {
        max_message_size: 35 * 1024 * 1024,
        spool_threshold: threshold,
        spool: Some(spool),
        ..config(false)
    };
    let mut s = Session::new(config, Arc::new(MapPolicy), client());
    run(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n",
    );
    s
}

/// A 30 MB message arrives in 8 KiB reads: the session never holds more than the spool threshold
/// and one read of it in memory, and the whole message reaches the spool file and the envelope.
#[test]
fn memory_per_session_is_bounded_while_a_large_message_arrives() {
    const THRESHOLD: usize = 256 * 1024;
    const READ: usize = 8192;
    let spool = Arc::new(MemorySpool::default());
    let mut s = spooling_session(THRESHOLD, spool.clone());
    let line =
        b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234567\r\n";
    let mut stream = Vec::with_capacity(READ + line.len());
    let mut sent = 0usize;
    let mut peak = 0usize;
    while sent < 30 * 1024 * 1024 {
        while stream.len() < READ {
            stream.extend_from_slice(line);
        }
        let rest = stream.split_off(READ);
        assert!(s.feed(&stream).is_empty());
        sent += stream.len();
        stream = rest;
        peak = peak.max(s.memory_used());
    }
    stream.extend_from_slice(b".\r\n");
    let (t, mut envs) = run(&mut s, &stream);
    sent += stream.len() - 3;
    assert!(t.starts_with("250 2.6.0"), "{t}");
    assert!(peak <= THRESHOLD + READ, "a session held {peak} bytes");
    let e = &mut envs[0];
    assert!(e.body.is_spooled());
    assert_eq!(e.body.len(), sent as u64);
    assert_eq!(spool.files.lock().unwrap()[0].content.len(), sent);
    assert!(e.body.head(100).unwrap().starts_with(b"0123456789"));
}

/// A refused message's spool file and an abandoned one's are removed; one that is submitted
/// stays until the store takes it.
#[test]
fn refused_and_abandoned_messages_leave_no_spool_file() {
    let spool = Arc::new(MemorySpool::default());
    let big = format!("Subject: x\r\n\r\n{}", "text line\r\n".repeat(100));
    // Refused: a bare LF.
    let mut s = spooling_session(64, spool.clone());
    let (t, envs) = run(&mut s, format!("{big}bare\nLF\r\n.\r\n").as_bytes());
    assert!(
        envs.is_empty() && t.ends_with("550 5.6.11 Invalid characters\r\n"),
        "{t}"
    );
    // Abandoned: the connection ends inside the data.
    let mut s = spooling_session(64, spool.clone());
    run(&mut s, big.as_bytes());
    drop(s);
    {
        let files = spool.files.lock().unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| !f.exists), "spool files left behind");
    }
    // Submitted: the file is the envelope's.
    let mut s = spooling_session(64, spool.clone());
    let (_, envs) = run(&mut s, format!("{big}.\r\n").as_bytes());
    assert!(envs[0].body.is_spooled());
    assert!(spool.files.lock().unwrap()[2].exists);
    drop(envs);
    assert!(!spool.files.lock().unwrap()[2].exists);
}

/// A spool file that cannot be written (a full disk): the message is refused with a temporary
/// error after its end, and the session stays in step.
#[test]
fn a_spool_write_failure_is_a_temporary_error() {
    let spool = Arc::new(MemorySpool {
        fail_writes: true,
        ..Default::default()
    });
    let mut s = spooling_session(64, spool);
    let (t, envs) = run(
        &mut s,
        format!("{}.\r\nNOOP\r\n", "text line\r\n".repeat(100)).as_bytes(),
    );
    assert!(envs.is_empty());
    assert!(
        t.ends_with(
            "451 4.3.0 Temporary error storing the message; try again later\r\n250 2.0.0 OK\r\n"
        ),
        "{t}"
    );
}

// ----- RFC 5321 §4.5.1 postmaster ---------------------------------------------------------------

/// `RCPT TO:<postmaster>` (any case, no domain) is accepted and handed to the policy as the bare
/// postmaster; `MAIL FROM:<postmaster>` is not the null sender but a syntax error, while
/// `MAIL FROM:<>` stays the null sender.
#[test]
fn postmaster_without_a_domain() {
    let (t, envs) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<PostMaster>\r\n\
          RCPT TO:<>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(
        codes(&t)[1..],
        ["250", "250", "250", "501", "354", "250"],
        "{t}"
    );
    assert_eq!(
        envs[0].envelope.recipients.len(),
        1,
        "one copy for both spellings"
    );
    assert!(envs[0].envelope.recipients[0].address.is_bare_postmaster());
    assert_eq!(envs[0].envelope.recipients[0].route, Route::Postmaster);

    for line in [
        &b"MAIL FROM:<postmaster>\r\n"[..],
        b"MAIL FROM:<POSTMASTER>\r\n",
        b"MAIL FROM:<@relay.test:postmaster>\r\n",
    ] {
        let mut s = session(false);
        let (t, _) = run(&mut s, &[&b"EHLO c\r\n"[..], line].concat());
        assert!(
            t.ends_with("501 5.1.7 Bad sender address syntax: a reverse-path needs a domain (RFC 5321 4.1.2)\r\n"),
            "{t}"
        );
        // No transaction was started.
        let (t, _) = run(&mut s, b"RCPT TO:<alice@contoso.test>\r\n");
        assert!(t.starts_with("503 5.5.1"), "{t}");
    }
    let (t, envs) = run(
        &mut session(false),
        b"EHLO c\r\nMAIL FROM:< >\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(t.contains("250 2.1.0"), "{t}");
    assert!(envs[0].envelope.sender.is_none());
}

/// The submission listener's credential check for the AUTH tests: `alice@contoso.test` with
/// `secret`; counts the checks it was asked for.
struct AuthPolicy {
    checks: AtomicUsize,
    /// Answers from a future, as the real check does (the blocking pool).
    pending: bool,
}

impl AuthPolicy {
    fn new(pending: bool) -> Arc<Self> {
        Arc::new(AuthPolicy {
            checks: AtomicUsize::new(0),
            pending,
        })
    }
}

impl SmtpPolicy for AuthPolicy {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        Decision::Ready(lookup(rcpt))
    }

    fn auth(&self, _: &ClientContext, c: Credentials) -> Decision<AuthVerdict> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let verdict = if c.username == "alice@contoso.test" && c.password == "secret" {
            AuthVerdict::Accept(hato_core::client::AuthenticatedIdentity {
                tenant: 1,
                principal: hato_core::client::Principal::Mailbox(1),
                address: Address::parse("alice@contoso.test").unwrap(),
                method: hato_core::client::AuthMethod::SmtpAuth,
            })
        } else {
            AuthVerdict::Reject(refusal(reply::AUTH_FAILED))
        };
        if self.pending {
            Decision::later(async move { verdict })
        } else {
            Decision::Ready(verdict)
        }
    }
}

fn submission_config() -> SessionConfig {
    SessionConfig {
        submission: true,
        ..config(true)
    }
}

/// A submission session after the banner, EHLO, STARTTLS and EHLO again.
fn submission(policy: Arc<AuthPolicy>) -> Session<AuthPolicy> {
    let mut s = Session::new(submission_config(), policy, client());
    let (t, _) = run(&mut s, b"EHLO c\r\nSTARTTLS\r\n");
    assert!(t.ends_with("<TLS>"), "{t}");
    s.tls_established(TlsInfo {
        version: "TLS1.3".into(),
        cipher: "X".into(),
    });
    let (t, _) = run(&mut s, b"EHLO c\r\n");
    assert!(t.ends_with("250 AUTH PLAIN LOGIN\r\n"), "{t}");
    s
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn auth_is_offered_on_the_submission_listener_only_and_only_inside_tls() {
    let (t, _) = run(&mut session(true), b"EHLO c\r\n");
    assert!(!t.contains("AUTH"), "{t}");
    let (t, _) = run(
        &mut session(true),
        format!(
            "EHLO c\r\nAUTH PLAIN {}\r\n",
            b64("\0alice@contoso.test\0secret")
        )
        .as_bytes(),
    );
    assert!(t.ends_with("502 5.5.1 Command not implemented\r\n"), "{t}");

    let policy = AuthPolicy::new(false);
    let mut s = Session::new(submission_config(), policy.clone(), client());
    let (t, _) = run(&mut s, b"EHLO c\r\n");
    assert!(t.contains("STARTTLS") && !t.contains("AUTH"), "{t}");
    let (t, _) = run(
        &mut s,
        format!("AUTH PLAIN {}\r\n", b64("\0alice@contoso.test\0secret")).as_bytes(),
    );
    assert_eq!(t, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    let (t, _) = run(&mut s, b"MAIL FROM:<alice@contoso.test>\r\n");
    assert_eq!(t, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    assert_eq!(policy.checks.load(Ordering::SeqCst), 0);
}

#[test]
fn mail_on_the_submission_listener_needs_auth() {
    let mut s = submission(AuthPolicy::new(false));
    let (t, _) = run(&mut s, b"MAIL FROM:<alice@contoso.test>\r\n");
    assert_eq!(
        t,
        "530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM\r\n"
    );
}

#[test]
fn auth_plain_with_an_initial_response() {
    let policy = AuthPolicy::new(true);
    let mut s = submission(policy.clone());
    let line = format!("AUTH PLAIN {}\r\n", b64("\0alice@contoso.test\0secret"));
    let (t, _) = run(&mut s, line.as_bytes());
    assert_eq!(t, "<DECIDE>235 2.7.0 Authentication successful\r\n");
    assert_eq!(s.client().authenticated_mailbox(), Some(1));
    // The identity goes with the message, and the Received protocol says so (RFC 3848).
    let (t, envs) = run(
        &mut s,
        b"MAIL FROM:<alice@contoso.test>\r\nRCPT TO:<bob@contoso.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(
        t.ends_with("250 2.6.0 <id-1> Queued mail for delivery\r\n"),
        "{t}"
    );
    assert_eq!(envs[0].client.authenticated_mailbox(), Some(1));
    assert_eq!(envs[0].protocol, "ESMTPSA");
    // RFC 4954 §4: once authenticated, no second AUTH.
    let (t, _) = run(&mut s, line.as_bytes());
    assert!(t.starts_with("503 5.5.1"), "{t}");
    assert_eq!(policy.checks.load(Ordering::SeqCst), 1);
}

#[test]
fn auth_plain_with_a_continuation_and_an_authzid() {
    let mut s = submission(AuthPolicy::new(false));
    let (t, _) = run(&mut s, b"AUTH PLAIN\r\n");
    assert_eq!(t, "334 \r\n");
    // The authorization identity may be the user's own.
    let line = format!(
        "{}\r\n",
        b64("alice@contoso.test\0alice@contoso.test\0secret")
    );
    let (t, _) = run(&mut s, line.as_bytes());
    assert_eq!(t, "235 2.7.0 Authentication successful\r\n");
}

#[test]
fn auth_plain_refuses_another_authorization_identity_without_checking_the_password() {
    let policy = AuthPolicy::new(false);
    let mut s = submission(policy.clone());
    let line = format!(
        "AUTH PLAIN {}\r\n",
        b64("bob@contoso.test\0alice@contoso.test\0secret")
    );
    let (t, _) = run(&mut s, line.as_bytes());
    assert!(t.starts_with("535 5.7.3 "), "{t}");
    assert_eq!(policy.checks.load(Ordering::SeqCst), 0);
    assert_eq!(s.client().authenticated_mailbox(), None);
}

#[test]
fn auth_login_with_and_without_an_initial_response() {
    let mut s = submission(AuthPolicy::new(false));
    let (t, _) = run(&mut s, b"AUTH LOGIN\r\n");
    assert_eq!(t, "334 VXNlcm5hbWU6\r\n");
    let (t, _) = run(
        &mut s,
        format!("{}\r\n", b64("alice@contoso.test")).as_bytes(),
    );
    assert_eq!(t, "334 UGFzc3dvcmQ6\r\n");
    let (t, _) = run(&mut s, format!("{}\r\n", b64("secret")).as_bytes());
    assert_eq!(t, "235 2.7.0 Authentication successful\r\n");

    // Python's smtplib sends the user name with the command.
    let mut s = submission(AuthPolicy::new(false));
    let (t, _) = run(
        &mut s,
        format!(
            "AUTH LOGIN {}\r\n{}\r\n",
            b64("alice@contoso.test"),
            b64("wrong")
        )
        .as_bytes(),
    );
    assert_eq!(
        t,
        "334 UGFzc3dvcmQ6\r\n535 5.7.3 Authentication unsuccessful\r\n"
    );
}

#[test]
fn auth_cancel_bad_base64_and_unknown_mechanisms() {
    let policy = AuthPolicy::new(false);
    let mut s = submission(policy.clone());
    let (t, _) = run(&mut s, b"AUTH LOGIN\r\n*\r\n");
    assert_eq!(
        t,
        "334 VXNlcm5hbWU6\r\n501 5.7.0 Authentication cancelled\r\n"
    );
    let (t, _) = run(&mut s, b"AUTH PLAIN\r\n%%%not base64\r\n");
    assert_eq!(t, "334 \r\n501 5.5.2 Cannot decode response\r\n");
    let (t, _) = run(&mut s, b"AUTH PLAIN !!!!\r\n");
    assert_eq!(t, "501 5.5.2 Cannot decode response\r\n");
    // Base64, but not a PLAIN message (no NULs).
    let (t, _) = run(
        &mut s,
        format!("AUTH PLAIN {}\r\n", b64("alice")).as_bytes(),
    );
    assert_eq!(t, "501 5.5.2 Cannot decode response\r\n");
    let (t, _) = run(&mut s, b"AUTH CRAM-MD5\r\n");
    assert_eq!(t, "504 5.5.4 Unrecognized authentication type\r\n");
    // After all that the session is back to commands.
    let (t, _) = run(&mut s, b"NOOP\r\n");
    assert_eq!(t, "250 2.0.0 OK\r\n");
    assert_eq!(policy.checks.load(Ordering::SeqCst), 0);
}

#[test]
fn an_over_long_auth_line_is_refused_and_not_kept() {
    let mut s = submission(AuthPolicy::new(false));
    let (t, _) = run(&mut s, b"AUTH PLAIN\r\n");
    assert_eq!(t, "334 \r\n");
    // Fed in reads as the I/O loop does: the session keeps at most one line's limit of it.
    for _ in 0..10 {
        let (t, _) = run(&mut s, &[b'A'; 8192]);
        assert_eq!(t, "");
        assert!(
            s.memory_used() <= MAX_AUTH_LINE + 8192,
            "{}",
            s.memory_used()
        );
    }
    let (t, _) = run(&mut s, b"\r\n");
    assert_eq!(t, "500 5.5.6 Authentication Exchange line is too long\r\n");
    // An AUTH line of 12,288 octets may be long (RFC 4954 §4) where other commands may not.
    let long = format!("AUTH PLAIN {}\r\n", b64(&"x".repeat(5000)));
    assert!(long.len() > MAX_COMMAND_LINE && long.len() < MAX_AUTH_LINE);
    let (t, _) = run(&mut s, long.as_bytes());
    assert_eq!(t, "501 5.5.2 Cannot decode response\r\n");
    let (t, _) = run(&mut s, b"NOOP\r\n");
    assert_eq!(t, "250 2.0.0 OK\r\n");
}

#[test]
fn auth_in_a_transaction_is_refused_and_failures_close_the_session() {
    let mut s = submission(AuthPolicy::new(false));
    let ok = format!("AUTH PLAIN {}\r\n", b64("\0alice@contoso.test\0secret"));
    run(&mut s, ok.as_bytes());
    let (t, _) = run(&mut s, b"MAIL FROM:<alice@contoso.test>\r\n");
    assert_eq!(t, "250 2.1.0 Sender OK\r\n");
    let (t, _) = run(&mut s, ok.as_bytes());
    assert_eq!(
        t,
        "503 5.5.1 Bad sequence of commands: AUTH is not permitted during a mail transaction\r\n"
    );

    let mut s = submission(AuthPolicy::new(false));
    let bad = format!("AUTH PLAIN {}\r\n", b64("\0alice@contoso.test\0guess"));
    let (t, _) = run(&mut s, bad.as_bytes());
    assert_eq!(t, "535 5.7.3 Authentication unsuccessful\r\n");
    let (t, _) = run(&mut s, bad.as_bytes());
    assert_eq!(t, "535 5.7.3 Authentication unsuccessful\r\n");
    // The third failure (`max_auth_failures`) ends the session.
    let (t, _) = run(&mut s, format!("{bad}NOOP\r\n").as_bytes());
    assert_eq!(
        t,
        "535 5.7.3 Authentication unsuccessful\r\n\
         421 4.7.0 Too many failed authentication attempts; closing connection\r\n<CLOSE>"
    );
    assert!(s.is_closed());
}

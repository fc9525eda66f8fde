//! The client state machine in memory: the server's bytes in, what the client writes out.

use super::*;

/// A client whose outputs are kept: what it wrote, and the events.
struct Harness {
    client: Client,
    written: String,
    events: Vec<Output>,
}

impl Harness {
    fn new(starttls: StartTls) -> Self {
        Harness {
            client: Client::new(ClientConfig {
                helo_name: "client.test".into(),
                starttls,
                ..ClientConfig::default()
            }),
            written: String::new(),
            events: Vec::new(),
        }
    }

    /// Greeted and answered EHLO with `extensions`: ready.
    fn ready(extensions: &[&str]) -> Self {
        let mut h = Harness::new(StartTls::Never);
        h.feed("220 mx.test ESMTP\r\n");
        assert_eq!(h.take_written(), "EHLO client.test\r\n");
        h.feed(&ehlo(extensions));
        assert!(h.take_ready(), "{:?}", h.events);
        h
    }

    fn absorb(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send(bytes) => self.written.push_str(&String::from_utf8_lossy(&bytes)),
                other => self.events.push(other),
            }
        }
    }

    fn feed(&mut self, bytes: &str) {
        let out = self.client.feed(bytes.as_bytes());
        self.absorb(out);
    }

    fn send(&mut self, tx: &Transaction) {
        let out = self.client.send(tx).unwrap();
        self.absorb(out);
    }

    /// The writes since the last call, and each `Send` output separately.
    fn take_written(&mut self) -> String {
        std::mem::take(&mut self.written)
    }

    fn take_ready(&mut self) -> bool {
        let ready = matches!(self.events.as_slice(), [Output::Ready]);
        self.events.clear();
        ready
    }

    fn take_done(&mut self) -> TransactionResult {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Output::Done(_)))
            .unwrap_or_else(|| panic!("no Done in {:?}", self.events));
        match self.events.remove(i) {
            Output::Done(r) => r,
            _ => unreachable!(),
        }
    }

    fn take_failure(&mut self) -> ClientError {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Output::Failed(_)))
            .unwrap_or_else(|| panic!("no Failed in {:?}", self.events));
        match self.events.remove(i) {
            Output::Failed(e) => e,
            _ => unreachable!(),
        }
    }
}

fn ehlo(extensions: &[&str]) -> String {
    let mut lines = vec!["mx.test Hello".to_string()];
    lines.extend(extensions.iter().map(|e| e.to_string()));
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

fn tx(recipients: &[&str]) -> Transaction {
    Transaction::new(
        "sender@hato.test",
        recipients.iter().map(|r| Recipient::new(*r)).collect(),
        100,
    )
}

fn statuses(result: &TransactionResult) -> Vec<(String, Status)> {
    result
        .recipients
        .iter()
        .map(|r| (r.reply.to_string(), r.status()))
        .collect()
}

const FULL: &[&str] = &[
    "PIPELINING",
    "SIZE 10485760",
    "8BITMIME",
    "SMTPUTF8",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "CHUNKING",
];

#[test]
fn greeting_and_capabilities() {
    let mut h = Harness::new(StartTls::Never);
    assert_eq!(h.client.stage(), Stage::Greeting);
    // A multi-line greeting, split across reads.
    h.feed("220-mx.test ESMTP\r\n220-second");
    assert_eq!(h.take_written(), "");
    h.feed(" line\r\n220 last\r\n");
    assert_eq!(h.take_written(), "EHLO client.test\r\n");
    assert_eq!(h.client.greeting().unwrap().code, 220);
    h.feed(&ehlo(FULL));
    assert!(h.take_ready());
    let caps = h.client.capabilities().unwrap().clone();
    assert_eq!(
        caps,
        Capabilities {
            esmtp: true,
            pipelining: true,
            size: true,
            size_limit: Some(10_485_760),
            eight_bit_mime: true,
            smtputf8: true,
            starttls: false,
            dsn: true,
            enhanced_status_codes: true,
            chunking: true,
        }
    );
    // Lower case keywords count; SIZE without a number, or one too large for any counter,
    // is no fixed limit (smtp-proto alone would read the second as 999).
    let mut h = Harness::ready(&["pipelining", "SIZE"]);
    let caps = h.client.capabilities().unwrap().clone();
    assert!(caps.pipelining && caps.size && caps.size_limit.is_none());
    h = Harness::ready(&["SIZE 99999999999999999999999"]);
    assert_eq!(h.client.capabilities().unwrap().size_limit, None);
}

#[test]
fn ehlo_refused_falls_back_to_helo() {
    let mut h = Harness::new(StartTls::Never);
    h.feed("220 old.test SMTP\r\n");
    h.take_written();
    h.feed("500 5.5.1 Command unrecognized\r\n");
    assert_eq!(h.take_written(), "HELO client.test\r\n");
    assert!(h.events.is_empty());
    h.feed("250 old.test\r\n");
    assert!(h.take_ready());
    assert_eq!(h.client.capabilities(), Some(&Capabilities::default()));
    // Plain SMTP: one command at a time, no parameters.
    let mut t = tx(&["a@x.test"]);
    t.size = 5;
    h.send(&t);
    assert_eq!(h.take_written(), "MAIL FROM:<sender@hato.test>\r\n");
}

#[test]
fn ehlo_and_helo_refused_fail_the_host() {
    let mut h = Harness::new(StartTls::Never);
    h.feed("220 mx.test\r\n");
    h.take_written();
    h.feed("550 no\r\n");
    assert_eq!(h.take_written(), "HELO client.test\r\n");
    h.feed("550 5.7.1 go away\r\n");
    assert_eq!(h.take_written(), "QUIT\r\n");
    let e = h.take_failure();
    assert!(matches!(e, ClientError::HelloRefused(ref r) if r.code == 550));
    assert!(e.is_permanent());
    assert!(h.client.is_closed());
}

#[test]
fn refused_greetings() {
    // 554: permanent for the host, and the server waits for QUIT (RFC 5321 §3.1).
    let mut h = Harness::new(StartTls::Never);
    h.feed("554-5.7.1 not here\r\n554 5.7.1 go away\r\n");
    assert_eq!(h.take_written(), "QUIT\r\n");
    let e = h.take_failure();
    assert_eq!(e.reply().to_string(), "554 5.7.1 not here go away");
    assert!(e.is_permanent());
    // 421: temporary, and the server is gone.
    let mut h = Harness::new(StartTls::Never);
    h.feed("421 4.3.2 busy\r\n");
    assert_eq!(h.take_written(), "");
    let e = h.take_failure();
    assert!(!e.is_permanent());
    // Not a greeting at all.
    let mut h = Harness::new(StartTls::Never);
    h.feed("250 hello?\r\n");
    assert!(matches!(h.take_failure(), ClientError::Protocol(_)));
}

/// With PIPELINING, MAIL, every RCPT and DATA go in one write (RFC 2920 §3.1); the replies are
/// matched in order, one per recipient.
#[test]
fn pipelined_transaction_with_mixed_recipient_replies() {
    let mut h = Harness::ready(FULL);
    h.send(&tx(&[
        "ok@x.test",
        "unknown@x.test",
        "full@x.test",
        "ok2@x.test",
    ]));
    let out = h.take_written();
    assert_eq!(
        out,
        "MAIL FROM:<sender@hato.test> SIZE=100\r\n\
         RCPT TO:<ok@x.test>\r\n\
         RCPT TO:<unknown@x.test>\r\n\
         RCPT TO:<full@x.test>\r\n\
         RCPT TO:<ok2@x.test>\r\n\
         DATA\r\n"
    );
    assert_eq!(h.client.stage(), Stage::Mail);
    // The replies arrive in two reads, split inside one.
    h.feed("250 2.1.0 Sender OK\r\n250 2.1.5 OK\r\n550 5.1.1 User unkn");
    assert_eq!(h.client.stage(), Stage::Rcpt);
    assert!(h.events.is_empty());
    h.feed("own\r\n452 4.2.2 Mailbox full\r\n250 2.1.5 OK\r\n354 go ahead\r\n");
    assert!(matches!(h.events.as_slice(), [Output::SendData]));
    h.events.clear();
    assert_eq!(h.client.stage(), Stage::DataBlock);
    let out = h.client.data_sent(123);
    h.absorb(out);
    assert_eq!(h.take_written(), "");
    assert_eq!(h.client.stage(), Stage::EndOfData);
    h.feed("250 2.6.0 queued as 1234\r\n");
    let result = h.take_done();
    assert!(h.events.is_empty() && h.client.is_ready());
    assert_eq!(
        statuses(&result),
        [
            ("250 2.6.0 queued as 1234".to_string(), Status::Delivered),
            ("550 5.1.1 User unknown".to_string(), Status::Failed),
            ("452 4.2.2 Mailbox full".to_string(), Status::Deferred),
            ("250 2.6.0 queued as 1234".to_string(), Status::Delivered),
        ]
    );
    assert_eq!(result.recipients[0].rcpt.as_ref().unwrap().status, "2.1.5");
    assert_eq!(result.recipients[1].address, "unknown@x.test");
    assert_eq!(result.mail.as_ref().unwrap().code, 250);
    assert_eq!(result.data.as_ref().unwrap().code, 354);
    assert_eq!(result.delivered().count(), 2);
}

#[test]
fn without_pipelining_one_command_at_a_time() {
    let mut h = Harness::ready(&["8BITMIME"]);
    h.send(&tx(&["a@x.test", "b@x.test"]));
    assert_eq!(h.take_written(), "MAIL FROM:<sender@hato.test>\r\n");
    h.feed("250 OK\r\n");
    assert_eq!(h.take_written(), "RCPT TO:<a@x.test>\r\n");
    h.feed("550 5.1.1 no\r\n");
    assert_eq!(h.take_written(), "RCPT TO:<b@x.test>\r\n");
    h.feed("250 OK\r\n");
    assert_eq!(h.take_written(), "DATA\r\n");
    h.feed("354 go\r\n");
    assert!(matches!(h.events.as_slice(), [Output::SendData]));
    h.events.clear();
    let out = h.client.data_sent(10);
    h.absorb(out);
    h.feed("250 2.0.0 Ok\r\n");
    let result = h.take_done();
    assert_eq!(
        result
            .recipients
            .iter()
            .map(|r| r.status())
            .collect::<Vec<_>>(),
        [Status::Failed, Status::Delivered]
    );
    // A refused MAIL ends the transaction: no RCPT follows.
    h.send(&tx(&["a@x.test"]));
    assert_eq!(h.take_written(), "RSET\r\n");
    h.feed("250 OK\r\n");
    assert_eq!(h.take_written(), "MAIL FROM:<sender@hato.test>\r\n");
    h.feed("451 4.3.0 try later\r\n");
    assert_eq!(h.take_written(), "");
    let result = h.take_done();
    assert_eq!(statuses(&result)[0].0, "451 4.3.0 try later");
    assert!(result.recipients[0].rcpt.is_none());
}

/// No recipient accepted: without pipelining DATA is never sent; with it, DATA refused ends
/// the transaction, and DATA answered 354 gets an empty message (RFC 2920 §3.1).
#[test]
fn no_recipient_accepted() {
    let mut h = Harness::ready(&[]);
    h.send(&tx(&["a@x.test"]));
    h.take_written();
    h.feed("250 OK\r\n");
    assert_eq!(h.take_written(), "RCPT TO:<a@x.test>\r\n");
    h.feed("550 5.1.1 no\r\n");
    assert_eq!(h.take_written(), "", "no DATA");
    let result = h.take_done();
    assert_eq!(
        statuses(&result),
        [("550 5.1.1 no".to_string(), Status::Failed)]
    );
    assert!(result.data.is_none());

    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test", "b@x.test"]));
    h.take_written();
    h.feed("250 OK\r\n550 5.1.1 no\r\n450 4.7.1 later\r\n554 5.5.1 No valid recipients\r\n");
    assert_eq!(h.take_written(), "");
    let result = h.take_done();
    assert!(!h.events.iter().any(|e| matches!(e, Output::SendData)));
    assert_eq!(
        statuses(&result),
        [
            ("550 5.1.1 no".to_string(), Status::Failed),
            ("450 4.7.1 later".to_string(), Status::Deferred)
        ]
    );
    assert_eq!(result.data.unwrap().code, 554);
    assert!(h.client.is_ready());

    // The server says 354 although it accepted no recipient: a lone dot ends the data.
    h.send(&tx(&["a@x.test"]));
    assert!(h.take_written().starts_with("RSET\r\nMAIL FROM:"));
    h.feed("250 OK\r\n250 OK\r\n550 5.1.1 no\r\n354 go ahead\r\n");
    assert_eq!(h.take_written(), ".\r\n");
    assert!(!h.events.iter().any(|e| matches!(e, Output::SendData)));
    h.feed("554 5.5.1 no message for nobody\r\n");
    let result = h.take_done();
    assert_eq!(
        statuses(&result),
        [("550 5.1.1 no".to_string(), Status::Failed)]
    );
    assert_eq!(result.end_of_data.unwrap().code, 554);
}

#[test]
fn pipelined_mail_refusal_decides_for_every_recipient() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test", "b@x.test"]));
    h.take_written();
    h.feed("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n");
    let result = h.take_done();
    assert_eq!(
        statuses(&result),
        [
            ("550 5.7.1 sender refused".to_string(), Status::Failed),
            ("550 5.7.1 sender refused".to_string(), Status::Failed)
        ]
    );
    assert_eq!(result.recipients[0].rcpt.as_ref().unwrap().code, 503);
}

/// RFC 2920 §3.1's deadlock: a large group is written in parts, each read back before the next.
#[test]
fn large_pipelined_groups_are_split() {
    let mut h = Harness::new(StartTls::Never);
    h.client = Client::new(ClientConfig {
        helo_name: "client.test".into(),
        starttls: StartTls::Never,
        pipeline_group: 3,
        ..ClientConfig::default()
    });
    h.feed("220 mx.test\r\n");
    h.feed(&ehlo(&["PIPELINING"]));
    h.take_written();
    h.take_ready();
    h.send(&tx(&["a@x.test", "b@x.test", "c@x.test", "d@x.test"]));
    assert_eq!(
        h.take_written(),
        "MAIL FROM:<sender@hato.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
    );
    h.feed("250 OK\r\n250 OK\r\n");
    assert_eq!(h.take_written(), "");
    h.feed("250 OK\r\n");
    assert_eq!(
        h.take_written(),
        "RCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"
    );
}

#[test]
fn size_is_declared_and_an_oversized_message_is_not_sent() {
    let mut h = Harness::ready(&["PIPELINING", "SIZE 1000"]);
    let mut t = tx(&["a@x.test", "b@x.test"]);
    t.size = 1001;
    let out = h.client.send(&t).unwrap();
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))));
    h.absorb(out);
    let result = h.take_done();
    assert_eq!(
        result.refused,
        Some(LocalRefusal::TooBig {
            size: 1001,
            limit: 1000
        })
    );
    for r in &result.recipients {
        assert_eq!(r.reply.code, 552);
        assert_eq!(r.reply.status, "5.3.4");
        assert_eq!(r.status(), Status::Failed);
    }
    // Nothing went out: the session is as it was, and the next transaction needs no RSET.
    assert!(h.client.is_ready());
    t.size = 1000;
    h.send(&t);
    assert!(
        h.take_written()
            .starts_with("MAIL FROM:<sender@hato.test> SIZE=1000\r\n")
    );
    // Without SIZE there is no parameter and no limit.
    let mut h = Harness::ready(&["PIPELINING"]);
    t.size = 50_000_000;
    h.send(&t);
    assert!(
        h.take_written()
            .starts_with("MAIL FROM:<sender@hato.test>\r\n")
    );
}

/// RFC 6152 §3: an 8-bit body goes only to a server that offers 8BITMIME; hato does not
/// convert it, the caller gets the typed refusal.
#[test]
fn eight_bit_bodies() {
    let mut t = tx(&["a@x.test"]);
    t.body = Body::EightBitMime;
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&t);
    assert_eq!(h.take_written(), "");
    let result = h.take_done();
    assert_eq!(result.refused, Some(LocalRefusal::NeedsDowngrade));
    assert_eq!(
        result.recipients[0].reply.to_string(),
        reply_text(&hato_core::reply::REMOTE_LACKS_8BITMIME)
    );
    assert_eq!(result.recipients[0].reply.status, "5.6.3");
    let mut h = Harness::ready(&["PIPELINING", "8BITMIME"]);
    h.send(&t);
    assert!(
        h.take_written()
            .starts_with("MAIL FROM:<sender@hato.test> BODY=8BITMIME\r\n")
    );
}

fn reply_text(r: &hato_core::reply::Reply) -> String {
    r.to_string()
}

/// RFC 6531 §3.2: a non-ASCII address (or a message marked SMTPUTF8) only to a server that
/// offers SMTPUTF8.
#[test]
fn smtputf8() {
    let t = tx(&["j\u{f6}rg@b\u{fc}cher.test", "plain@x.test"]);
    let mut h = Harness::ready(&["PIPELINING", "8BITMIME"]);
    h.send(&t);
    assert_eq!(h.take_written(), "");
    let result = h.take_done();
    assert_eq!(result.refused, Some(LocalRefusal::NeedsSmtputf8));
    for r in &result.recipients {
        assert_eq!((r.reply.code, &*r.reply.status), (553, "5.6.7"));
    }
    // An ASCII envelope with SMTPUTF8 asked for (UTF-8 headers) is refused the same way.
    let mut ascii = tx(&["plain@x.test"]);
    ascii.smtputf8 = true;
    h.send(&ascii);
    assert_eq!(h.take_done().refused, Some(LocalRefusal::NeedsSmtputf8));
    // To a server that offers it: the parameter, and the address as it is.
    let mut h = Harness::ready(&["PIPELINING", "8BITMIME", "SMTPUTF8"]);
    h.send(&t);
    let written = h.take_written();
    assert!(written.starts_with("MAIL FROM:<sender@hato.test> SMTPUTF8\r\n"));
    assert!(written.contains("RCPT TO:<j\u{f6}rg@b\u{fc}cher.test>\r\n"));
}

/// DSN parameters go only to a server that offers DSN (RFC 3461 §4); otherwise the client
/// says which recipients are owed a "relayed" DSN (§5.2.2).
#[test]
fn dsn_parameters() {
    let mut t = tx(&["a@x.test", "b@x.test", "c@x.test"]);
    t.ret = Some(Ret::Headers);
    t.envid = Some("QQ314159 id=7".into());
    t.recipients[0].notify = Some(Notify {
        success: true,
        failure: true,
        delay: false,
    });
    t.recipients[0].orcpt = Some("orig+1@x.test".into());
    t.recipients[1].notify = Some(Notify::NEVER);
    let mut h = Harness::ready(&["PIPELINING", "DSN"]);
    h.send(&t);
    assert_eq!(
        h.take_written(),
        "MAIL FROM:<sender@hato.test> RET=HDRS ENVID=QQ314159+20id+3D7\r\n\
         RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2B1@x.test\r\n\
         RCPT TO:<b@x.test> NOTIFY=NEVER\r\n\
         RCPT TO:<c@x.test>\r\n\
         DATA\r\n"
    );
    h.feed("250 OK\r\n250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n");
    h.events.clear();
    let out = h.client.data_sent(1);
    h.absorb(out);
    h.feed("250 OK\r\n");
    let result = h.take_done();
    assert!(result.dsn_passed);
    assert!(result.recipients.iter().all(|r| !r.relayed_dsn));

    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&t);
    assert_eq!(
        h.take_written(),
        "MAIL FROM:<sender@hato.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n\
         RCPT TO:<c@x.test>\r\nDATA\r\n"
    );
    h.feed("250 OK\r\n250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n");
    h.events.clear();
    let out = h.client.data_sent(1);
    h.absorb(out);
    h.feed("250 OK\r\n");
    let result = h.take_done();
    assert!(!result.dsn_passed);
    assert_eq!(
        result
            .recipients
            .iter()
            .map(|r| r.relayed_dsn)
            .collect::<Vec<_>>(),
        [true, false, false]
    );
}

/// Connection reuse: RSET before each transaction after the first (in the same write with
/// PIPELINING), QUIT at the end.
#[test]
fn several_transactions_on_one_session() {
    let mut h = Harness::ready(FULL);
    for round in 0..3 {
        h.send(&tx(&["a@x.test"]));
        let written = h.take_written();
        if round == 0 {
            assert!(written.starts_with("MAIL FROM:"), "{written}");
        } else {
            assert!(written.starts_with("RSET\r\nMAIL FROM:"), "{written}");
            h.feed("250 2.0.0 OK\r\n");
        }
        h.feed("250 OK\r\n250 OK\r\n354 go\r\n");
        h.events.clear();
        let out = h.client.data_sent(5);
        h.absorb(out);
        h.feed(&format!("250 2.0.0 message {round}\r\n"));
        let result = h.take_done();
        assert_eq!(result.recipients[0].reply.text, format!("message {round}"));
    }
    let out = h.client.quit();
    h.absorb(out);
    assert_eq!(h.take_written(), "QUIT\r\n");
    assert_eq!(h.client.stage(), Stage::Quit);
    h.feed("221 2.0.0 bye\r\n");
    assert!(matches!(h.events.as_slice(), [Output::Closed]));
    assert!(h.client.is_closed());
}

#[test]
fn a_refused_rset_ends_the_session() {
    let mut h = Harness::ready(&[]);
    h.send(&tx(&["a@x.test"]));
    h.feed("250 OK\r\n");
    h.feed("550 no\r\n");
    h.take_done();
    h.take_written();
    h.send(&tx(&["b@x.test"]));
    assert_eq!(h.take_written(), "RSET\r\n");
    h.feed("500 what\r\n");
    assert_eq!(h.take_written(), "QUIT\r\n");
    let result = h.take_done();
    assert_eq!(result.recipients[0].status(), Status::Deferred);
    assert_eq!(result.recipients[0].reply.status, "4.5.0");
    assert!(matches!(h.take_failure(), ClientError::RsetRefused(_)));
}

/// A server sending continuation lines without end, or a line without CRLF, costs the client
/// at most its reply limit before the session fails.
#[test]
fn endless_replies_fail_the_session_in_bounded_memory() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test"]));
    let line = "250-".to_string() + &"x".repeat(1000) + "\r\n";
    let mut fed = 0;
    while h.events.is_empty() {
        h.feed(&line);
        fed += line.len();
        assert!(fed < 1_000_000, "never stopped");
    }
    assert!(fed <= DEFAULT_MAX_REPLY + line.len());
    let result = h.take_done();
    assert_eq!(result.recipients[0].status(), Status::Deferred);
    assert_eq!(
        h.take_failure(),
        ClientError::ReplyTooLong {
            limit: DEFAULT_MAX_REPLY
        }
    );

    let mut h = Harness::new(StartTls::Never);
    let chunk = "y".repeat(512);
    let mut fed = 0;
    while h.events.is_empty() {
        h.feed(&chunk);
        fed += chunk.len();
        assert!(fed < 1_000_000, "never stopped");
    }
    assert!(fed <= MAX_REPLY_LINE + chunk.len());
    assert_eq!(
        h.take_failure(),
        ClientError::ReplyTooLong {
            limit: MAX_REPLY_LINE
        }
    );
}

#[test]
fn opportunistic_starttls_forgets_what_came_before() {
    let mut h = Harness::new(StartTls::Opportunistic);
    h.feed("220 mx.test\r\n");
    h.take_written();
    h.feed(&ehlo(&["PIPELINING", "STARTTLS", "SIZE 100"]));
    assert_eq!(h.take_written(), "STARTTLS\r\n");
    assert!(h.events.is_empty());
    // A reply injected behind the 220, in plain text, is dropped (RFC 3207 §4.2).
    h.feed("220 2.0.0 Ready\r\n250 2.1.0 injected\r\n");
    assert!(matches!(h.events.as_slice(), [Output::StartTls]));
    h.events.clear();
    assert_eq!(h.client.stage(), Stage::TlsHandshake);
    let out = h.client.tls_established("TLS1.3 TLS13_AES_128_GCM_SHA256");
    h.absorb(out);
    assert_eq!(h.take_written(), "EHLO client.test\r\n");
    assert!(h.client.capabilities().is_none());
    h.feed(&ehlo(&["8BITMIME"]));
    assert!(h.take_ready());
    assert!(h.client.tls_active());
    let caps = h.client.capabilities().unwrap();
    assert!(!caps.pipelining && !caps.size && caps.eight_bit_mime);
    assert!(
        h.client
            .transcript()
            .lines()
            .iter()
            .any(|l| l == "* TLS established: TLS1.3 TLS13_AES_128_GCM_SHA256")
    );

    // Refused, opportunistic TLS goes on in plain text.
    let mut h = Harness::new(StartTls::Opportunistic);
    h.feed("220 mx.test\r\n");
    h.feed(&ehlo(&["STARTTLS"]));
    h.take_written();
    h.feed("454 4.7.0 TLS not available\r\n");
    assert!(h.take_ready());
    assert!(!h.client.tls_active());
}

#[test]
fn required_tls() {
    let mut h = Harness::new(StartTls::Required);
    h.feed("220 mx.test\r\n");
    h.take_written();
    h.feed(&ehlo(&["PIPELINING"]));
    assert_eq!(h.take_written(), "QUIT\r\n");
    let e = h.take_failure();
    assert_eq!(e, ClientError::TlsNotOffered);
    assert_eq!(e.reply().status, "4.4.317");

    let mut h = Harness::new(StartTls::Required);
    h.feed("220 mx.test\r\n");
    h.feed(&ehlo(&["STARTTLS"]));
    h.take_written();
    h.feed("454 4.7.0 TLS not available\r\n");
    assert_eq!(h.take_written(), "QUIT\r\n");
    assert!(matches!(h.take_failure(), ClientError::StartTlsRefused(_)));

    // Never: not even when offered.
    let mut h = Harness::new(StartTls::Never);
    h.feed("220 mx.test\r\n");
    h.take_written();
    h.feed(&ehlo(&["STARTTLS"]));
    assert_eq!(h.take_written(), "");
    assert!(h.take_ready());
}

/// RFC 5321 §3.8: 421 to any command ends the session; recipients not decided are deferred.
#[test]
fn service_closing_mid_transaction() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test", "b@x.test", "c@x.test"]));
    h.take_written();
    h.feed("250 OK\r\n550 5.1.1 no\r\n421 4.3.2 shutting down\r\n");
    let result = h.take_done();
    assert_eq!(
        statuses(&result),
        [
            ("550 5.1.1 no".to_string(), Status::Failed),
            ("421 4.3.2 shutting down".to_string(), Status::Deferred),
            ("421 4.3.2 shutting down".to_string(), Status::Deferred),
        ]
    );
    assert!(matches!(h.take_failure(), ClientError::ServiceClosing(_)));
    assert!(h.client.is_closed());
}

#[test]
fn connection_lost_mid_transaction() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test", "b@x.test"]));
    h.feed("250 OK\r\n550 5.1.1 no\r\n250 OK\r\n354 go\r\n");
    h.events.clear();
    let out = h.client.data_sent(10);
    h.absorb(out);
    let out = h.client.closed();
    h.absorb(out);
    let result = h.take_done();
    assert_eq!(result.recipients[0].status(), Status::Failed);
    assert_eq!(result.recipients[1].status(), Status::Deferred);
    assert_eq!(result.recipients[1].reply.status, "4.4.318");
    assert_eq!(
        h.take_failure(),
        ClientError::ConnectionClosed(Stage::EndOfData)
    );
    // Closing after QUIT is no failure.
    let mut h = Harness::ready(&[]);
    let out = h.client.quit();
    h.absorb(out);
    let out = h.client.closed();
    h.absorb(out);
    assert!(matches!(h.events.as_slice(), [Output::Closed]));
}

#[test]
fn replies_out_of_protocol_fail_the_session() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test"]));
    h.feed("250 OK\r\n354 what\r\n");
    assert!(matches!(h.take_failure(), ClientError::Protocol(_)));
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test"]));
    h.feed("250 OK\r\n250 OK\r\n250 data?\r\n");
    assert!(matches!(h.take_failure(), ClientError::Protocol(_)));
}

#[test]
fn transactions_the_client_will_not_start() {
    let mut h = Harness::new(StartTls::Never);
    assert_eq!(
        h.client.send(&tx(&["a@x.test"])).unwrap_err(),
        TransactionError::NotReady
    );
    let mut h = Harness::ready(&[]);
    assert_eq!(
        h.client.send(&tx(&[])).unwrap_err(),
        TransactionError::NoRecipients
    );
    assert!(matches!(
        h.client.send(&tx(&["a@x.test>\r\nDATA"])),
        Err(TransactionError::InvalidAddress(_))
    ));
    // Nothing was written, and the session is still ready.
    assert_eq!(h.take_written(), "");
    assert!(h.client.is_ready());
}

#[test]
fn the_transcript_has_commands_and_replies_not_content() {
    let mut h = Harness::ready(&["PIPELINING"]);
    h.send(&tx(&["a@x.test"]));
    h.feed("250 OK\r\n250 OK\r\n354 go\r\n");
    let out = h.client.data_sent(42);
    h.absorb(out);
    h.feed("250 2.0.0 done\r\n");
    let lines = h.client.transcript().lines().to_vec();
    assert_eq!(
        lines,
        [
            "S: 220 mx.test ESMTP",
            "C: EHLO client.test",
            "S: 250-mx.test Hello",
            "S: 250 PIPELINING",
            "C: MAIL FROM:<sender@hato.test>",
            "C: RCPT TO:<a@x.test>",
            "C: DATA",
            "S: 250 OK",
            "S: 250 OK",
            "S: 354 go",
            "C: (42 octets of message data)",
            "C: .",
            "S: 250 2.0.0 done",
        ]
    );
    // Bounded: a long session stops being recorded at the limit.
    let mut h = Harness::new(StartTls::Never);
    h.client = Client::new(ClientConfig {
        transcript_limit: 100,
        ..ClientConfig::default()
    });
    h.feed("220 mx.test\r\n");
    h.feed(&ehlo(&[
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K",
    ]));
    let lines = h.client.transcript().lines();
    assert_eq!(lines.last().unwrap(), "* (transcript cut at 100 bytes)");
    assert!(lines.len() < 12);
}

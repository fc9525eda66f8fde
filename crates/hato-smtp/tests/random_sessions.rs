//! Random sessions: whatever bytes a client sends, in whatever pieces, the session never panics,
//! answers with well-formed replies, and submits only messages whose data ended at a real
//! `<CRLF>.<CRLF>` and contain no bare CR or LF. Deterministic (a fixed xorshift seed), so a
//! failure is reproducible.

use hato_core::Address;
use hato_core::directory::Route;
use hato_smtp::{
    AcceptedRecipient, ClientContext, Decision, Output, RcptVerdict, Session, SessionConfig,
    SmtpPolicy,
};
use std::sync::Arc;

struct AcceptAll;

impl SmtpPolicy for AcceptAll {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        Decision::Ready(RcptVerdict::Accept(AcceptedRecipient {
            address: rcpt.clone(),
            tenant_id: 1,
            route: Route::Local(1),
        }))
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b"EHLO a.test\r\n",
    b"HELO b\r\n",
    b"MAIL FROM:<s@x.test>\r\n",
    b"MAIL FROM:<>\r\n",
    b"MAIL FROM:<\xc3\xbc@x.test> SMTPUTF8\r\n",
    b"RCPT TO:<r@y.test>\r\n",
    b"RCPT TO:<bad address>\r\n",
    b"DATA\r\n",
    b"Subject: hi\r\n\r\nbody\r\n",
    b"..dot\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\r\n.\r\r\n",
    b"\n",
    b"\r",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"STARTTLS\r\n",
    b"QUIT\r\n",
    b"BDAT 10 LAST\r\n",
    b"AUTH PLAIN\r\n",
    b"\x00\xff\xfe garbage",
];

/// Checks the content of a submitted message: no bare CR, no bare LF.
fn assert_clean(c: &[u8]) {
    for (i, b) in c.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(c.get(i + 1), Some(&b'\n'), "bare CR submitted"),
            b'\n' => assert!(i > 0 && c[i - 1] == b'\r', "bare LF submitted"),
            _ => {}
        }
    }
}

#[test]
fn random_input_never_breaks_the_session() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut submitted = 0usize;
    for _ in 0..3000 {
        let config = SessionConfig {
            max_message_size: 2000,
            max_recipients: 5,
            tls_available: rng.below(2) == 0,
            ..SessionConfig::default()
        };
        let client = ClientContext::new(
            "192.0.2.1:1025".parse().unwrap(),
            "192.0.2.2:25".parse().unwrap(),
        );
        let mut session = Session::new(config, Arc::new(AcceptAll), client);
        assert!(matches!(session.start().as_slice(), [Output::Send(_)]));
        // A stream of known pieces and random bytes, cut at random places.
        let mut stream = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            match rng.below(6) {
                0 => {
                    let n = rng.below(700);
                    stream.extend((0..n).map(|_| (rng.next() & 0xff) as u8));
                }
                1 | 2 => stream.extend_from_slice(PIECES[rng.below(PIECES.len())]),
                _ => {
                    // A whole transaction whose body mixes text, stuffed dots and, sometimes,
                    // smuggling sequences; it must be submitted only if it stays clean.
                    stream.extend_from_slice(
                        b"EHLO t.test\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r@y.test>\r\nDATA\r\n",
                    );
                    for _ in 0..rng.below(6) {
                        stream.extend_from_slice(PIECES[8 + rng.below(8)]);
                        stream.extend_from_slice(b"text line\r\n");
                    }
                    stream.extend_from_slice(b"\r\n.\r\n");
                }
            }
        }
        let mut pos = 0;
        while pos < stream.len() && !session.is_closed() {
            let end = (pos + rng.below(64) + 1).min(stream.len());
            let mut queue: std::collections::VecDeque<Output> =
                session.feed(&stream[pos..end]).into();
            pos = end;
            while let Some(out) = queue.pop_front() {
                match out {
                    Output::Submit(env) => {
                        submitted += 1;
                        assert!(!env.envelope.recipients.is_empty());
                        let content = env.body.in_memory().unwrap();
                        assert!(content.len() <= 2000);
                        assert_clean(content);
                        queue.extend(session.submitted(Ok("id".into())));
                    }
                    Output::StartTls => {
                        session.tls_established(hato_smtp::TlsInfo {
                            version: "TLS1.3".into(),
                            cipher: "X".into(),
                        });
                    }
                    Output::Send(bytes) => {
                        // Replies are CRLF-terminated lines that start with a 3-digit code.
                        assert!(bytes.ends_with(b"\r\n"));
                        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                            assert!(
                                line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit),
                                "{:?}",
                                String::from_utf8_lossy(line)
                            );
                        }
                    }
                    Output::Close => {}
                    Output::Decide(_) => unreachable!("AcceptAll decides at once"),
                }
            }
        }
    }
    assert!(
        submitted > 50,
        "the generator should also produce valid messages ({submitted})"
    );
}

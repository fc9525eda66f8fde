//! Fuzzes the SMTP session state machine: arbitrary bytes, cut into pieces by the first input
//! byte, must never make it panic; every reply must be a well-formed reply line; and no message
//! it submits may contain a bare CR or LF (the SMTP smuggling defence).

#![no_main]

use hato_core::Address;
use hato_core::directory::Route;
use hato_smtp::{
    AcceptedRecipient, ClientContext, Decision, Output, RcptVerdict, Session, SessionConfig,
    SmtpPolicy, TlsInfo,
};
use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let config = SessionConfig {
        max_message_size: 4096,
        max_recipients: 4,
        tls_available: true,
        ..SessionConfig::default()
    };
    let client = ClientContext::new(
        "192.0.2.1:1025".parse().expect("literal address"),
        "192.0.2.2:25".parse().expect("literal address"),
    );
    let mut session = Session::new(config, Arc::new(AcceptAll), client);
    let _ = session.start();
    for piece in input.chunks(chunk) {
        let mut queue: std::collections::VecDeque<Output> = session.feed(piece).into();
        while let Some(out) = queue.pop_front() {
            match out {
                Output::Submit(env) => {
                    let Some(c) = env.content.in_memory() else {
                        panic!("content spooled without a spool");
                    };
                    for (i, b) in c.iter().enumerate() {
                        match b {
                            b'\r' => assert_eq!(c.get(i + 1), Some(&b'\n'), "bare CR submitted"),
                            b'\n' => assert!(i > 0 && c[i - 1] == b'\r', "bare LF submitted"),
                            _ => {}
                        }
                    }
                    queue.extend(session.submitted(Ok("id".into())));
                }
                Output::StartTls => session.tls_established(TlsInfo {
                    version: "TLS1.3".into(),
                    cipher: "X".into(),
                }),
                Output::Send(bytes) => {
                    assert!(bytes.ends_with(b"\r\n"));
                    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        assert!(line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit));
                    }
                }
                Output::Close => return,
                Output::Decide(_) => unreachable!("AcceptAll decides at once"),
            }
        }
    }
});

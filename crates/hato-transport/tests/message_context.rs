//! The message context from the end of the data to the queue: an end-of-data stage reads the
//! headers and the (spooled) body inside its asynchronous decision, records a verdict with its
//! reason for one recipient, and that verdict reaches the recipient's trace as an event with the
//! reason; the other recipient's trace has no such event. The real session, the real commit
//! (`Inbound`) and the real store; only the policy is the test's.

use hato_core::body::memory::MemorySpool;
use hato_core::clock::ManualClock;
use hato_core::directory::Route;
use hato_core::message::{Action, RecipientVerdict};
use hato_core::reason::FigureValue;
use hato_core::{Address, ClientContext, MessageContext, Reason, Stage, Timestamp};
use hato_smtp::server::Submitter;
use hato_smtp::{
    AcceptedRecipient, DataVerdict, Decision, Output, RcptVerdict, Session, SessionConfig,
    SmtpPolicy,
};
use hato_store::*;
use hato_transport::inbound::Inbound;
use std::sync::Arc;
use tokio::sync::Notify;

/// Accepts alice and bob; at end-of-data, like a transport rule in audit mode, records a verdict
/// for the recipients the message's `X-Audit` field names, and refuses nothing. It reads the
/// whole body (from its spool file, off the async workers) to count its lines.
struct AuditPolicy;

impl SmtpPolicy for AuditPolicy {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        let mailbox = if rcpt.local() == "alice" { 1 } else { 2 };
        Decision::Ready(RcptVerdict::Accept(AcceptedRecipient {
            address: rcpt.clone(),
            tenant_id: 1,
            route: Route::Local(mailbox),
        }))
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        Decision::later(async move {
            let read = tokio::task::spawn_blocking(move || {
                let mut message = message;
                let lines = message
                    .body
                    .to_vec()
                    .map(|b| b.split(|&c| c == b'\n').count());
                (message, lines)
            })
            .await;
            let (mut message, lines) = read.expect("the body is read");
            let lines = lines.expect("the spool file is readable");
            let audited = message
                .headers
                .first("X-Audit")
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .unwrap_or_default();
            let index = message
                .envelope
                .recipients
                .iter()
                .position(|r| r.address.to_string() == audited);
            if let Some(i) = index {
                let reason = Reason::new(
                    Stage::TransportRule,
                    "Audited: the message names this recipient",
                )
                .rule("Audit named recipients")
                .figure("lines", lines);
                assert!(message.record(
                    i,
                    RecipientVerdict {
                        action: Action::Deliver,
                        reason,
                    },
                ));
            }
            DataVerdict::accept(message)
        })
    }
}

#[tokio::test]
async fn a_verdict_recorded_for_one_recipient_reaches_its_trace_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000_000)));
    let inbound = Inbound::new(
        store.clone(),
        clock,
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
    );
    // A small spool threshold: the body is in a spool file by the end of the data.
    let config = SessionConfig {
        hostname: "mx.hato.test".into(),
        spool_threshold: 256,
        spool: Some(Arc::new(MemorySpool::default())),
        ..SessionConfig::default()
    };
    let mut session = Session::new(
        config,
        Arc::new(AuditPolicy),
        ClientContext::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:25".parse().unwrap(),
        ),
    );
    let body = "a line of the body\r\n".repeat(50);
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<sender@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\n\
         RCPT TO:<bob@contoso.test>\r\nDATA\r\nSubject: audit\r\nX-Audit: bob@contoso.test\r\n\r\n\
         {body}.\r\nQUIT\r\n"
    );
    let mut outs: std::collections::VecDeque<Output> = session.start().into();
    outs.extend(session.feed(input.as_bytes()));
    let mut replies = String::new();
    let mut trace_id = None;
    while let Some(out) = outs.pop_front() {
        match out {
            Output::Send(bytes) => replies.push_str(&String::from_utf8_lossy(&bytes)),
            Output::Decide(d) => outs.extend(session.decided(d.await)),
            Output::Submit(message) => {
                assert!(message.body.is_spooled(), "the test wants a spooled body");
                let result = inbound.submit(*message).await;
                trace_id = result.as_ref().ok().cloned();
                outs.extend(session.submitted(result));
            }
            Output::StartTls | Output::Close => {}
        }
    }
    let trace_id = trace_id.unwrap_or_else(|| panic!("nothing was queued: {replies}"));
    assert!(replies.contains("250 2.6.0"), "{replies}");

    let events = |rcpt: &str| store.trace_detail(None, &trace_id, Some(rcpt)).unwrap();
    let bob = events("bob@contoso.test");
    let kinds: Vec<&str> = bob.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["Receive", "TransportRule"], "{bob:?}");
    let audit = &bob[1];
    assert_eq!(audit.detail, "Audited: the message names this recipient");
    assert_eq!((audit.status, &audit.enhanced_status), (None, &None));
    let reason = audit.reason.as_ref().expect("the verdict's reason");
    assert_eq!(reason.stage, Stage::TransportRule);
    assert_eq!(reason.rule.as_deref(), Some("Audit named recipients"));
    // The stage read the whole body: 2 header lines, the empty line, 50 body lines, and what
    // follows the last line break.
    assert_eq!(
        reason.figure_value("lines"),
        Some(&FigureValue::Integer(54))
    );

    let alice = events("alice@contoso.test");
    let kinds: Vec<&str> = alice.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["Receive"], "{alice:?}");
    assert!(alice.iter().all(|e| e.reason.is_none()));
}

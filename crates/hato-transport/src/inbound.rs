//! From a finished SMTP transaction to a durable queue entry.
//!
//! The final `250` is sent only once [`Inbound::submit`] resolves, i.e. once the message, its
//! envelope and its first trace events are committed (group commit, synced to disk). The
//! verdicts the end-of-data stages recorded for a recipient in the message context are among
//! those first events, each with its reason; the edge's note of the client's standing is the
//! reason of the recipient's `Receive` event.

use crate::summarize;
use hato_core::body::StoredBody;
use hato_core::directory::Route;
use hato_core::message::{Action, RecipientVerdict};
use hato_core::reply::{self, Reply};
use hato_core::{Clock, MessageContext, Refusal, id};
use hato_protection::connection_filter::is_standing;
use hato_smtp::server::Submitter;
use hato_store::{Finished, NewMessage, NewRecipient, QuarantineHold, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Notify;

pub struct Inbound {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hostname: String,
    /// Wakes the delivery agent when new mail is queued.
    queued: Arc<Notify>,
}

impl Inbound {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hostname: String,
        queued: Arc<Notify>,
    ) -> Self {
        Inbound {
            store,
            clock,
            hostname,
            queued,
        }
    }

    /// [`Inbound::prepare_all`] for a message whose recipients all get the same content (one
    /// queue entry); an error if the stages gave some of them content of their own.
    pub fn prepare(&self, message: MessageContext) -> std::io::Result<NewMessage> {
        let mut all = self.prepare_all(message)?;
        if all.len() != 1 {
            return Err(std::io::Error::other(format!(
                "the message makes {} queue entries, not one",
                all.len()
            )));
        }
        all.pop()
            .ok_or_else(|| std::io::Error::other("the message makes no queue entry"))
    }

    /// Builds the queue entries for `message`. The Received header (and a Message-ID, when the
    /// message has none) go in front of the content without copying it: for a spooled message
    /// they are the entry's `content` and the spool file is the rest. Each recipient's recorded
    /// verdicts become its events after `Receive`; the first verdict that does not deliver
    /// decides what becomes of it (quarantine, refused, dropped, redirected).
    ///
    /// Each recipient's own header fields (its antispam report) are queued with it and put on
    /// top at delivery. Recipients whose content the stages changed (a rule's header, subject
    /// or disclaimer, the malware alert copy) get a queue entry per distinct content, each with its own trace id, as Exchange bifurcates a message; the first entry
    /// keeps the message's trace id. Fails only when the spool file cannot be read.
    pub fn prepare_all(&self, mut message: MessageContext) -> std::io::Result<Vec<NewMessage>> {
        // A stage may have given the message its trace id already; else it gets one now.
        let trace_id = message
            .trace_id
            .take()
            .unwrap_or_else(|| id::new_trace_id(self.clock.as_ref()));
        let received = self.clock.now();
        let sender = message
            .envelope
            .sender
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let received_header =
            received_header(&self.hostname, &message, &trace_id, &received.to_rfc5322());
        // The header block was read once, when the data ended.
        let mut summary = summarize(message.headers.block());
        let mut message_id_field = String::new();
        if summary.message_id.is_empty() {
            // RFC 5322 §3.6.4: every message should have a Message-ID. Like Exchange, add one
            // when the sender did not, so the message can be found in trace by Message-ID.
            summary.message_id = format!("<{trace_id}@{}>", self.hostname);
            message_id_field = format!("Message-ID: {}\r\n", summary.message_id);
        }
        let tls = message
            .client
            .tls
            .as_ref()
            .map(|t| format!(" over {} ({})", t.version, t.cipher))
            .unwrap_or_default();
        let size = (received_header.len() + message_id_field.len()) as u64 + message.body.len();
        let receive_detail = format!(
            "Received by {} from {} [{}]{tls} with {}; {} bytes",
            self.hostname,
            message.client.helo_name(),
            message.client.ip(),
            message.protocol,
            size
        );
        // Direct send is anonymous. The session's client context carries the identity once
        // SMTP AUTH and attributed connectors exist; it is the one RCPT decided with.
        let authenticated = message.client.authenticated_mailbox();

        // The copies, in order of first use: (stamp, content) and their recipients.
        let mut copies: Vec<Copy> = Vec::new();
        let recipients = std::mem::take(&mut message.envelope.recipients);
        for r in recipients {
            let content = r.content;
            let disposition = disposition(
                &r.verdicts,
                content.quarantine_days,
                content.quarantine_tag.as_deref(),
            );
            let (standing, others): (Vec<RecipientVerdict>, Vec<RecipientVerdict>) =
                r.verdicts.into_iter().partition(|v| is_standing(&v.reason));
            let mut standing = standing.into_iter();
            let receive_reason = standing.next().map(|v| v.reason);
            let extra_events: Vec<_> = standing.chain(others).map(|v| v.event()).collect();
            let (quarantine, finished) = match disposition {
                Disposition::Deliver => (None, None),
                Disposition::Quarantine(hold) => (Some(hold), None),
                Disposition::Finished(f) => (None, Some(f)),
            };
            let address = r.address.to_string();
            if quarantine.is_some()
                && let Some(alert) = &content.alert
            {
                // The alert copy: delivered while the original waits in quarantine.
                copy_for(&mut copies, Body::Changed(alert.clone())).push(NewRecipient {
                    address: address.clone(),
                    tenant_id: r.tenant_id,
                    route: r.route,
                    extra_events: extra_events
                        .iter()
                        .filter(|e| e.event != hato_core::trace::TraceEvent::Quarantine)
                        .cloned()
                        .collect(),
                    receive_reason: receive_reason.clone(),
                    quarantine: None,
                    finished: None,
                    stamp: content.stamp.clone(),
                    junk: false,
                    connector: None,
                    dsn: r.dsn.clone(),
                });
            }
            let body = match (&quarantine, &finished, &content.changed) {
                // A quarantine keeps the message as it arrived; one done with already needs no
                // copy of its own.
                (Some(_), _, _) | (_, _, None) => Body::Received,
                (None, Some(_), Some(_)) => Body::Received,
                (None, None, Some(changed)) => Body::Changed(changed.clone()),
            };
            let new = NewRecipient {
                address,
                tenant_id: r.tenant_id,
                route: r.route,
                extra_events,
                receive_reason,
                quarantine,
                finished,
                stamp: content.stamp,
                junk: content.junk,
                connector: content.connector,
                dsn: r.dsn,
            };
            if new.finished.is_some() && !copies.is_empty() {
                copies[0].recipients.push(new);
            } else {
                copy_for(&mut copies, body).push(new);
            }
        }

        // The content as received, for every copy that wants it: a spooled one moves into the
        // queue with the first such copy, and is read for any other (bounded by the size limit).
        let received_copies = copies
            .iter()
            .filter(|c| matches!(c.body, Body::Received))
            .count();
        let (mut memory, mut spooled_body) =
            match std::mem::take(&mut message.body).into_stored()? {
                StoredBody::Memory(body) => (Some(body), None),
                StoredBody::Spooled(mut spooled) if received_copies > 1 => {
                    (Some(spooled.read_all()?), Some(spooled))
                }
                StoredBody::Spooled(spooled) => (None, Some(spooled)),
            };
        let mut received_left = received_copies;
        let mut out = Vec::with_capacity(copies.len());
        let copies_made = copies.len();
        for (n, copy) in copies.into_iter().enumerate() {
            let trace_id = if n == 0 {
                trace_id.clone()
            } else {
                id::new_trace_id(self.clock.as_ref())
            };
            let mut content =
                Vec::with_capacity(received_header.len() + message_id_field.len() + 80);
            content.extend_from_slice(received_header.as_bytes());
            content.extend_from_slice(message_id_field.as_bytes());
            let mut spooled = None;
            match &copy.body {
                Body::Changed(changed) => content.extend_from_slice(changed),
                Body::Received => {
                    received_left -= 1;
                    if let Some(s) = spooled_body.take() {
                        // The spool file moves into the queue with the first copy.
                        spooled = Some(s);
                    } else if received_left == 0 {
                        content.extend_from_slice(&memory.take().unwrap_or_default());
                    } else if let Some(body) = &memory {
                        content.extend_from_slice(body);
                    }
                }
            }
            let receive_detail = if n == 0 {
                receive_detail.clone()
            } else {
                // Exchange's bifurcation: the copy's own trace id, and the message's.
                format!(
                    "{receive_detail}; a copy of message {} for the recipients the stages gave other content (copy {} of {copies_made})",
                    trace_id_of_first(&out),
                    n + 1
                )
            };
            out.push(NewMessage {
                trace_id,
                received,
                sender: sender.clone(),
                client_ip: message.client.ip().to_string(),
                helo: message.client.helo.clone().unwrap_or_default(),
                message_id: Some(summary.message_id.clone()),
                subject: Some(summary.subject.clone()),
                content,
                spooled,
                recipients: copy.recipients,
                receive_detail,
                reports_on: Vec::new(),
                authenticated,
                authenticated_from: message.domain_authenticated.clone(),
                sender_auth_failed: message.sender_auth_failed,
                dsn: message.envelope.dsn.clone(),
                high_risk: message.high_risk,
            });
        }
        Ok(out)
    }
}

fn trace_id_of_first(out: &[NewMessage]) -> &str {
    out.first().map_or("", |m| m.trace_id.as_str())
}

/// The content of one queue entry.
enum Body {
    Received,
    Changed(std::sync::Arc<Vec<u8>>),
}

impl Body {
    fn same(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Received, Body::Received) => true,
            (Body::Changed(a), Body::Changed(b)) => std::sync::Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

struct Copy {
    body: Body,
    recipients: Vec<NewRecipient>,
}

fn copy_for(copies: &mut Vec<Copy>, body: Body) -> &mut Vec<NewRecipient> {
    let at = match copies.iter().position(|c| c.body.same(&body)) {
        Some(i) => i,
        None => {
            copies.push(Copy {
                body,
                recipients: Vec::new(),
            });
            copies.len() - 1
        }
    };
    &mut copies[at].recipients
}

/// What becomes of a recipient: decided by the first verdict that does not deliver, as the
/// stages ran in Exchange's order (malware, rules, spam; `exchange-online-behaviour.md` §2.3:
/// malware wins).
enum Disposition {
    Deliver,
    Quarantine(QuarantineHold),
    Finished(Finished),
}

fn disposition(verdicts: &[RecipientVerdict], days: Option<u16>, tag: Option<&str>) -> Disposition {
    for v in verdicts {
        match &v.action {
            Action::Deliver => continue,
            Action::Quarantine { kind, policy } => {
                return Disposition::Quarantine(QuarantineHold {
                    kind: *kind,
                    policy: policy.clone(),
                    reason: v.reason.clone(),
                    days: days.map(u32::from),
                    quarantine_policy: tag.map(str::to_owned),
                });
            }
            Action::Reject(reply) => {
                return Disposition::Finished(Finished::Failed(Refusal::new(
                    reply.clone(),
                    v.reason.clone(),
                )));
            }
            Action::Delete => return Disposition::Finished(Finished::Dropped(v.reason.clone())),
            Action::Redirect(_) => {
                return Disposition::Finished(Finished::Redirected(v.reason.clone()));
            }
        }
    }
    Disposition::Deliver
}

/// RFC 5321 §4.4 trace field, with the TLS parameters in Exchange's manner.
pub fn received_header(hostname: &str, e: &MessageContext, trace_id: &str, date: &str) -> String {
    let helo = helo_for_header(e.client.helo_name());
    // RFC 5321 §4.4 TCP-info: the address literal, after the client's forward-confirmed name
    // when it has one.
    let tcp_info = match &e.client.ptr {
        Some(name) => format!("({name} [{}])", e.client.ip()),
        None => format!("([{}])", e.client.ip()),
    };
    // RFC 5322 §2.1.1: fold before the TCP-info when a long HELO name would take the line past
    // 78 characters (the name itself, at most 255 characters, cannot be folded).
    let gap = if "Received: from ".len() + helo.len() + 1 + tcp_info.len() > 78 {
        "\r\n\t"
    } else {
        " "
    };
    let mut h = format!(
        "Received: from {helo}{gap}{tcp_info}\r\n\tby {hostname} (hato) with {}",
        e.protocol
    );
    if let Some(tls) = &e.client.tls {
        h.push_str(&format!(
            "\r\n\t(version={}, cipher={})",
            tls.version, tls.cipher
        ));
    }
    h.push_str(&format!("\r\n\tid {trace_id}"));
    if let [only] = e.envelope.recipients.as_slice() {
        // A message that is not SMTPUTF8 keeps its header ASCII (RFC 6532 is not in effect).
        let address = if e.envelope.smtputf8 {
            only.address.to_string()
        } else {
            only.address.to_ascii_form()
        };
        h.push_str(&format!("\r\n\tfor <{address}>"));
    }
    h.push_str(&format!(";\r\n\t{date}\r\n"));
    h
}

/// The client's HELO name as the `from` clause of a Received field may carry it (RFC 5321 §4.4:
/// a domain or an address literal): letters, digits and `.-_:[]`, each other character as `?`.
/// The name is the client's to choose, so nothing in it may end the field (CR, LF), open a
/// comment, or pass for another clause (`from x by trusted.example with ...`: spaces), and a
/// message that is not SMTPUTF8 keeps its header ASCII (RFC 6532 is not in effect).
fn helo_for_header(helo: &str) -> String {
    let name: String = helo
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

impl Submitter for Inbound {
    fn submit(
        &self,
        message: MessageContext,
    ) -> Pin<Box<dyn Future<Output = Result<String, Reply>> + Send>> {
        let messages = match self.prepare_all(message) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("could not read a spooled message: {e}");
                return Box::pin(std::future::ready(Err(reply::STORE_FAILED)));
            }
        };
        let trace_id = messages
            .first()
            .map(|m| m.trace_id.clone())
            .unwrap_or_default();
        let store = self.store.clone();
        // The delivery agent is woken only for work of its own: mail for a local recipient, a
        // quarantine hold, or a recipient refused on the way that owes an NDR. Mail that only
        // leaves (relay, submission to outside recipients) is the outbound agent's, and waking
        // the local agent for it cost each relayed message a pass over the queue for nothing
        // (`bench/relay.sh`).
        let queued = messages
            .iter()
            .any(wakes_delivery_agent)
            .then(|| self.queued.clone());
        Box::pin(async move {
            // Copies are committed in turn; the 250 waits for all of them. A copy that fails
            // fails the reply, and the client sends again (the copies before it may then be
            // delivered twice, which is better than losing a recipient's mail).
            for message in messages {
                let id = message.trace_id.clone();
                let pending = if message.spooled.is_some() {
                    // Syncing and moving the spool file blocks: not on an async worker.
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.enqueue(message)).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!("could not queue message {id}: {e}");
                            return Err(reply::STORE_FAILED);
                        }
                    }
                } else {
                    store.enqueue(message)
                };
                if let Err(e) = pending.await {
                    tracing::error!("could not queue message {id}: {e}");
                    return Err(reply::STORE_FAILED);
                }
            }
            if let Some(queued) = queued {
                queued.notify_one();
            }
            Ok(trace_id)
        })
    }
}

/// Whether `message` has work for the local delivery agent (`QueueStore::due_deliveries` takes
/// every recipient but an outside one that is not held; an NDR is built by that agent too).
fn wakes_delivery_agent(message: &NewMessage) -> bool {
    message
        .recipients
        .iter()
        .any(|r| r.route != Route::Remote || r.quarantine.is_some() || r.finished.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Address;
    use hato_core::message::{Envelope, Recipient};
    use hato_core::{ClientContext, TlsInfo};

    fn envelope(to: &str, smtputf8: bool, tls: bool) -> MessageContext {
        let envelope = Envelope {
            sender: Some(Address::parse("a@fabrikam.test").unwrap()),
            recipients: vec![Recipient {
                address: Address::parse(to).unwrap(),
                tenant_id: 1,
                route: Route::Local(1),
                verdicts: vec![],
                content: Default::default(),
                dsn: Default::default(),
            }],
            smtputf8,
            dsn: Default::default(),
        };
        MessageContext::new(
            envelope,
            ClientContext {
                helo: Some("client.test".into()),
                tls: tls.then(|| TlsInfo {
                    version: "TLS1.3".into(),
                    cipher: "TLS13_AES_128_GCM_SHA256".into(),
                }),
                ..ClientContext::new(
                    "192.0.2.1:40000".parse().unwrap(),
                    "192.0.2.2:25".parse().unwrap(),
                )
            },
            "ESMTPS",
            Vec::new().into(),
        )
        .unwrap()
    }

    #[test]
    fn received_header_follows_rfc_5321_4_4() {
        let h = received_header(
            "mx.hato.test",
            &envelope("info@xn--bcher-kva.test", false, true),
            "id-1",
            "Sat, 28 Nov 2026 21:00:00 +0000",
        );
        assert_eq!(
            h,
            "Received: from client.test ([192.0.2.1])\r\n\tby mx.hato.test (hato) with ESMTPS\r\n\t(version=TLS1.3, cipher=TLS13_AES_128_GCM_SHA256)\r\n\tid id-1\r\n\tfor <info@xn--bcher-kva.test>;\r\n\tSat, 28 Nov 2026 21:00:00 +0000\r\n"
        );
        let h = received_header(
            "mx.hato.test",
            &envelope("info@bücher.test", true, false),
            "id-2",
            "d",
        );
        assert!(
            h.contains("for <info@bücher.test>") && !h.contains("version="),
            "{h}"
        );
        // With the client's forward-confirmed name (the edge's reverse DNS), before its address.
        let mut e = envelope("info@contoso.test", false, false);
        e.client.ptr = Some("mail.fabrikam.test".into());
        let h = received_header("mx.hato.test", &e, "id-3", "d");
        assert!(
            h.starts_with("Received: from client.test (mail.fabrikam.test [192.0.2.1])\r\n"),
            "{h}"
        );
    }

    #[test]
    fn a_helo_name_cannot_add_clauses_fields_or_long_lines() {
        let mut e = envelope("info@contoso.test", false, false);
        for (helo, want) in [
            ("client.test", "from client.test ([192.0.2.1])"),
            ("[192.0.2.1]", "from [192.0.2.1] ([192.0.2.1])"),
            (
                "evil.test by mx.contoso.test (hato) with ESMTPS",
                "from evil.test?by?mx.contoso.test??hato??with?ESMTPS ([192.0.2.1])",
            ),
            (
                "a-rather-long-but-valid-host-name.of-a-department.example.com",
                "from a-rather-long-but-valid-host-name.of-a-department.example.com\r\n\t([192.0.2.1])",
            ),
            ("x\r\nX-Injected: 1", "from x??X-Injected:?1 ([192.0.2.1])"),
            ("bücher.test", "from b?cher.test ([192.0.2.1])"),
            ("", "from unknown ([192.0.2.1])"),
        ] {
            e.client.helo = Some(helo.into());
            let h = received_header("mx.hato.test", &e, "id-1", "d");
            assert!(
                h.starts_with(&format!("Received: {want}\r\n\tby ")),
                "{helo:?}: {h}"
            );
            // One field: every line but the first is a continuation.
            assert!(
                h.split("\r\n")
                    .skip(1)
                    .all(|l| l.is_empty() || l.starts_with('\t')),
                "{h}"
            );
        }
        e.client.helo = Some("a".repeat(255));
        let h = received_header("mx.hato.test", &e, "id-1", "d");
        let first = h.split("\r\n").next().unwrap();
        assert_eq!(first, format!("Received: from {}", "a".repeat(255)));
        assert!(h.split("\r\n").skip(1).all(|l| l.len() <= 78), "{h}");
    }

    /// Mail that only leaves does not wake the local delivery agent (it would find nothing of
    /// its own); mail for a local mailbox does.
    #[tokio::test]
    async fn only_mail_with_local_work_wakes_the_delivery_agent() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(hato_store::SqliteStore::open(dir.path()).unwrap());
        let queued = Arc::new(Notify::new());
        let inbound = Inbound::new(
            store,
            Arc::new(hato_core::SystemClock),
            "mx.hato.test".into(),
            queued.clone(),
        );
        let woken = || async {
            tokio::time::timeout(std::time::Duration::from_millis(200), queued.notified())
                .await
                .is_ok()
        };
        let mut out = envelope("bob@fabrikam.test", false, false);
        out.envelope.recipients[0].route = Route::Remote;
        out.body = b"Subject: out\r\n\r\nx\r\n".to_vec().into();
        inbound.submit(out).await.unwrap();
        assert!(!woken().await, "relayed mail is the outbound agent's");
        let mut local = envelope("alice@contoso.test", false, false);
        local.body = b"Subject: in\r\n\r\nx\r\n".to_vec().into();
        inbound.submit(local).await.unwrap();
        assert!(woken().await, "local mail wakes the delivery agent");
    }
}

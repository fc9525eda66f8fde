//! From a finished SMTP transaction to a durable queue entry.
//!
//! The final `250` is sent only once [`Inbound::submit`] resolves, i.e. once the message, its
//! envelope and its first trace events are committed (group commit, synced to disk). The
//! verdicts the end-of-data stages recorded for a recipient in the message context are among
//! those first events, each with its reason; the edge's note of the client's standing is the
//! reason of the recipient's `Receive` event.

use crate::summarize;
use hato_core::body::StoredBody;
use hato_core::message::RecipientVerdict;
use hato_core::reply::{self, Reply};
use hato_core::{Clock, MessageContext, id};
use hato_protection::connection_filter::is_standing;
use hato_smtp::server::Submitter;
use hato_store::{NewMessage, NewRecipient, QuarantineHold, Store};
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

    /// Builds the queue entry for `message`. The Received header (and a Message-ID, when the
    /// message has none) go in front of the content without copying it: for a spooled message
    /// they are the entry's `content` and the spool file is the rest. Each recipient's recorded
    /// verdicts become its events after `Receive`. Fails only when the spool file cannot be
    /// finished.
    pub fn prepare(&self, mut message: MessageContext) -> std::io::Result<NewMessage> {
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
        let mut content = Vec::with_capacity(received_header.len() + 80);
        content.extend_from_slice(received_header.as_bytes());
        if summary.message_id.is_empty() {
            // RFC 5322 §3.6.4: every message should have a Message-ID. Like Exchange, add one
            // when the sender did not, so the message can be found in trace by Message-ID.
            summary.message_id = format!("<{trace_id}@{}>", self.hostname);
            content.extend_from_slice(format!("Message-ID: {}\r\n", summary.message_id).as_bytes());
        }
        let size = content.len() as u64 + message.body.len();
        let spooled = match std::mem::take(&mut message.body).into_stored()? {
            StoredBody::Memory(body) => {
                content.extend_from_slice(&body);
                None
            }
            StoredBody::Spooled(spooled) => Some(spooled),
        };
        let tls = message
            .client
            .tls
            .as_ref()
            .map(|t| format!(" over {} ({})", t.version, t.cipher))
            .unwrap_or_default();
        let receive_detail = format!(
            "Received by {} from {} [{}]{tls} with {}; {} bytes",
            self.hostname,
            message.client.helo_name(),
            message.client.ip(),
            message.protocol,
            size
        );
        Ok(NewMessage {
            trace_id,
            received,
            sender,
            client_ip: message.client.ip().to_string(),
            helo: message.client.helo.clone().unwrap_or_default(),
            message_id: Some(summary.message_id),
            subject: Some(summary.subject),
            content,
            spooled,
            recipients: message
                .envelope
                .recipients
                .into_iter()
                .map(|r| {
                    // The edge's note of the client's standing with the recipient's tenant
                    // (IPV:CAL/NLI, client IP, PTR) is the reason of its Receive event; the
                    // other verdicts are events of their own.
                    // The first quarantine a stage asked for holds the recipient: stages run
                    // in Exchange's order (malware, rules, spam), and the first to quarantine
                    // decides the kind (exchange-online-behaviour.md §2.3: malware wins).
                    let quarantine = r.verdicts.iter().find_map(|v| {
                        v.action.quarantine().map(|(kind, policy)| QuarantineHold {
                            kind,
                            policy: policy.to_string(),
                            reason: v.reason.clone(),
                        })
                    });
                    let (standing, others): (Vec<RecipientVerdict>, Vec<RecipientVerdict>) =
                        r.verdicts.into_iter().partition(|v| is_standing(&v.reason));
                    let mut standing = standing.into_iter();
                    let receive_reason = standing.next().map(|v| v.reason);
                    NewRecipient {
                        address: r.address.to_string(),
                        tenant_id: r.tenant_id,
                        route: r.route,
                        extra_events: standing.chain(others).map(|v| v.event()).collect(),
                        receive_reason,
                        quarantine,
                    }
                })
                .collect(),
            receive_detail,
            reports_on: Vec::new(),
            // Direct send is anonymous. The session's client context carries the identity once
            // SMTP AUTH and attributed connectors exist; it is the one RCPT decided with.
            authenticated: message
                .client
                .identity
                .as_ref()
                .and_then(|i| match i.principal {
                    hato_core::client::Principal::Mailbox(m) => Some(m),
                    hato_core::client::Principal::Connector(_) => None,
                }),
        })
    }
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
        let message = match self.prepare(message) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("could not read a spooled message: {e}");
                return Box::pin(std::future::ready(Err(reply::STORE_FAILED)));
            }
        };
        let trace_id = message.trace_id.clone();
        let store = self.store.clone();
        let queued = self.queued.clone();
        Box::pin(async move {
            let pending = if message.spooled.is_some() {
                // Syncing and moving the spool file blocks: not on an async worker.
                match tokio::task::spawn_blocking(move || store.enqueue(message)).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!("could not queue message {trace_id}: {e}");
                        return Err(reply::STORE_FAILED);
                    }
                }
            } else {
                store.enqueue(message)
            };
            match pending.await {
                Ok(()) => {
                    queued.notify_one();
                    Ok(trace_id)
                }
                Err(e) => {
                    tracing::error!("could not queue message {trace_id}: {e}");
                    Err(reply::STORE_FAILED)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Address;
    use hato_core::directory::Route;
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
            }],
            smtputf8,
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
}

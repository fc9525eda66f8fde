//! What the stages that decide about a message see of it, and where they record what they
//! decided: the [`MessageContext`].
//!
//! The SMTP session builds it when the data ends and hands it, by value, to the end-of-data
//! hook; a stage may keep it in its asynchronous decision (to read the body from its spool file
//! off the async workers) and hands it back with its verdict. The commit before the final 250
//! turns it into the queue entry: each verdict recorded for a recipient becomes a trace event of
//! that recipient, with its reason (architecture decisions 2, 3 and 4: actions are recorded on
//! the message, decisions explain themselves, policies apply per recipient).

use crate::Address;
use crate::body::MessageBody;
use crate::client::ClientContext;
use crate::directory::{Route, TenantId};
use crate::header::{Headers, MAX_HEADER_BYTES};
use crate::reason::Reason;
use crate::reply::Reply;
use crate::trace::{EventRecord, TraceEvent};

/// The SMTP envelope (RFC 5321 §2.3.1) of a message, with where each recipient goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `None` for the null reverse-path `<>`.
    pub sender: Option<Address>,
    pub recipients: Vec<Recipient>,
    /// The client gave `SMTPUTF8` (RFC 6531) with MAIL.
    pub smtputf8: bool,
    /// The DSN parameters of MAIL (RFC 3461 `RET`, `ENVID`).
    pub dsn: crate::dsn::MessageDsn,
}

/// One accepted recipient, and what the stages decided for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub address: Address,
    pub tenant_id: TenantId,
    pub route: Route,
    /// The verdicts stages recorded for this recipient, in the order they were recorded.
    pub verdicts: Vec<RecipientVerdict>,
    /// What this recipient receives when the stages changed it (its antispam report, a rule's
    /// header or disclaimer, the malware alert copy); the message as received otherwise.
    pub content: RecipientContent,
    /// The DSN parameters of its RCPT (RFC 3461 `NOTIFY`, `ORCPT`).
    pub dsn: crate::dsn::RecipientDsn,
}

/// What the content stages make of the message for one recipient. Recipients whose content
/// differs get copies of their own when the message is queued (Exchange's bifurcation); the
/// common case, every recipient alike, stays one queued message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipientContent {
    /// Header fields hato puts on top for this recipient (its `X-Hato-Antispam-Report`), each
    /// ending with CRLF.
    pub stamp: String,
    /// The whole content as a stage changed it for this recipient (a transport rule's header,
    /// subject or disclaimer actions), instead of the content as received.
    pub changed: Option<std::sync::Arc<Vec<u8>>>,
    /// Delivered besides the quarantined original: the message with its attachments replaced
    /// by the malware alert text (`DeleteAttachmentAndUse…Alert`).
    pub alert: Option<std::sync::Arc<Vec<u8>>>,
    /// Delivered to the recipient's Junk Email folder instead of the Inbox (the spam filter's
    /// `MoveToJmf`, and its `AddXHeader`/`ModifySubject`, which deliver to Junk too).
    pub junk: bool,
    /// Days a quarantine this recipient's verdict asks for is kept (the anti-spam policy's
    /// `QuarantineRetentionPeriod`); `None`: the server's setting for the kind.
    pub quarantine_days: Option<u16>,
    /// The quarantine policy (Exchange's quarantine tag) the verdict that holds this recipient
    /// names: the anti-spam policy's `*QuarantineTag` for its verdict. `None`: the kind's
    /// default ([`QuarantineKind::default_quarantine_policy`]).
    pub quarantine_tag: Option<String>,
    /// The outbound connector a transport rule routes this recipient through
    /// (`RouteMessageOutboundConnector`): kept with the queued recipient for the outbound agent.
    pub connector: Option<String>,
}

/// What delivery does with a recipient because of a stage's verdict. Delivery carries every
/// action out (architecture decision 2); the actions the content stages need (Junk Email,
/// redirect, …) come with delivery's support for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver as routed: the stage found nothing to act on, or acts only by what it records
    /// (a rule in audit mode, a spam verdict below every threshold).
    Deliver,
    /// Hold the message for this recipient in the hosted quarantine instead of delivering it
    /// (Exchange: malware is always quarantined; a mail flow rule's `-Quarantine`; the spam
    /// filter's `Quarantine` action per verdict). `policy` names the policy or rule that decided
    /// (Exchange's quarantine shows it as "Policy name").
    Quarantine {
        kind: QuarantineKind,
        policy: String,
    },
    /// Refused for this recipient with this reply (a transport rule's reject, the common
    /// attachments filter's `Reject`): when every recipient is refused it is the reply to the
    /// DATA and nothing is kept; otherwise the recipient fails with an NDR (Exchange).
    Reject(Reply),
    /// Not delivered and nobody told (a transport rule's `DeleteMessage`).
    Delete,
    /// Delivered to these addresses instead (a transport rule's `RedirectMessageTo`).
    Redirect(Vec<Address>),
}

impl Action {
    /// The quarantine this action asks for, if it asks for one.
    pub fn quarantine(&self) -> Option<(QuarantineKind, &str)> {
        match self {
            Action::Quarantine { kind, policy } => Some((*kind, policy)),
            _ => None,
        }
    }

    /// Whether the recipient still gets the message (as received or changed).
    pub fn delivers(&self) -> bool {
        matches!(self, Action::Deliver)
    }
}

/// Why a message is in quarantine: Exchange's quarantine "Quarantine reason" (the detection
/// that put it there). The names are stable: they are stored and shown by the API and CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineKind {
    Malware,
    TransportRule,
    Spam,
    HighConfidenceSpam,
    Phish,
    HighConfidencePhish,
    Bulk,
}

impl QuarantineKind {
    pub const ALL: [QuarantineKind; 7] = [
        QuarantineKind::Malware,
        QuarantineKind::TransportRule,
        QuarantineKind::Spam,
        QuarantineKind::HighConfidenceSpam,
        QuarantineKind::Phish,
        QuarantineKind::HighConfidencePhish,
        QuarantineKind::Bulk,
    ];

    /// The name stored and shown (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::Malware => "malware",
            QuarantineKind::TransportRule => "transport-rule",
            QuarantineKind::Spam => "spam",
            QuarantineKind::HighConfidenceSpam => "high-confidence-spam",
            QuarantineKind::Phish => "phish",
            QuarantineKind::HighConfidencePhish => "high-confidence-phish",
            QuarantineKind::Bulk => "bulk",
        }
    }

    /// Case-insensitive; `_` may stand for `-` (`high_confidence_spam`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(&s))
    }

    /// Whether only admins may see and release items of this kind. Exchange: users can never
    /// release their own malware or high-confidence phishing messages, whatever the quarantine
    /// policy says (AdminOnlyAccessPolicy); they see spam, bulk and phish of their own
    /// (learn.microsoft.com, "Quarantined email messages in EOP", quarantine-about). Transport
    /// rule quarantine is admin-only too: only admins see it ("admins also see transport-rule
    /// quarantine").
    pub fn admin_only(self) -> bool {
        matches!(
            self,
            QuarantineKind::Malware
                | QuarantineKind::HighConfidencePhish
                | QuarantineKind::TransportRule
        )
    }
}

/// Exchange's built-in quarantine policy without end-user access: only admins see, preview and
/// release (malware, high confidence phishing and mail flow rule quarantine by default).
pub const ADMIN_ONLY_ACCESS_POLICY: &str = "AdminOnlyAccessPolicy";
/// Exchange's built-in quarantine policy with full end-user access (release, preview, delete,
/// allow sender), no notifications: the default policy's tag for spam, high confidence spam,
/// phish and bulk.
pub const DEFAULT_FULL_ACCESS_POLICY: &str = "DefaultFullAccessPolicy";
/// As [`DEFAULT_FULL_ACCESS_POLICY`], with quarantine notifications on.
pub const DEFAULT_FULL_ACCESS_WITH_NOTIFICATION_POLICY: &str =
    "DefaultFullAccessWithNotificationPolicy";

impl QuarantineKind {
    /// The quarantine policy an item of this kind gets when its stage names none: Exchange's
    /// defaults (exchange-online-behaviour.md §4.1 `QuarantineTag` of the malware policy, §6.3
    /// the default anti-spam policy's `*QuarantineTag`s; mail flow rule quarantine is always
    /// admin-only).
    pub fn default_quarantine_policy(self) -> &'static str {
        if self.admin_only() {
            ADMIN_ONLY_ACCESS_POLICY
        } else {
            DEFAULT_FULL_ACCESS_POLICY
        }
    }
}

impl std::fmt::Display for QuarantineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage's verdict for one recipient, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientVerdict {
    pub action: Action,
    pub reason: Reason,
}

impl RecipientVerdict {
    /// The trace event this verdict is recorded as: the stage's event
    /// ([`TraceEvent::for_stage`]), the reason's sentence as its detail.
    pub fn event(&self) -> EventRecord {
        EventRecord::because(
            TraceEvent::for_stage(self.reason.stage),
            self.reason.clone(),
        )
    }
}

/// A message between the end of its data and its commit: what the stages read, and where they
/// record their verdicts.
#[derive(Debug)]
pub struct MessageContext {
    pub envelope: Envelope,
    /// The client as it was at the end of the data (HELO name, TLS, identity).
    pub client: ClientContext,
    /// `with` protocol for the Received header (RFC 3848, RFC 6531 §3.7.3).
    pub protocol: &'static str,
    /// The header block, split into fields (at most [`MAX_HEADER_BYTES`] of it).
    pub headers: Headers,
    /// The content, dot-unstuffed, CRLF line endings: in memory, or in a spool file (removed if
    /// the message is dropped instead of committed).
    pub body: MessageBody,
    /// The message's trace id, once the commit has given it one (a stage may give it earlier;
    /// the commit keeps it).
    pub trace_id: Option<String>,
    /// The RFC 5322.From address when its domain passed DMARC aligned (set by the content
    /// stages' sender authentication): queued with the message as an identity for group
    /// restrictions at delivery.
    pub domain_authenticated: Option<String>,
    /// The sender failed SPF or DMARC (set by the content stages' sender authentication):
    /// queued with the message, so that no NDR is ever sent to a likely forged sender.
    pub sender_auth_failed: bool,
    /// The content stages judged this outbound message (authenticated submission, relay
    /// through an on-premises connector) spam: its outside recipients leave from the high-risk
    /// delivery pool (`exchange-online-behaviour.md` §7.2). Queued with the message.
    pub high_risk: bool,
}

impl MessageContext {
    /// The context of a received message. The header block is read from the body (from its
    /// spool file, for a spooled one): fails only when that read fails.
    pub fn new(
        envelope: Envelope,
        client: ClientContext,
        protocol: &'static str,
        mut body: MessageBody,
    ) -> std::io::Result<Self> {
        let headers = match body.in_memory() {
            Some(content) => Headers::parse(content, MAX_HEADER_BYTES),
            None => Headers::parse(&body.head(MAX_HEADER_BYTES + 1)?, MAX_HEADER_BYTES),
        };
        Ok(MessageContext {
            envelope,
            client,
            protocol,
            headers,
            body,
            trace_id: None,
            domain_authenticated: None,
            sender_auth_failed: false,
            high_risk: false,
        })
    }

    /// Records a stage's verdict for the recipient at `index` of the envelope; false when there
    /// is no such recipient.
    pub fn record(&mut self, index: usize, verdict: RecipientVerdict) -> bool {
        match self.envelope.recipients.get_mut(index) {
            Some(r) => {
                r.verdicts.push(verdict);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Stage;

    fn context(content: &[u8]) -> MessageContext {
        let rcpt = |a: &str| Recipient {
            address: Address::parse(a).unwrap(),
            tenant_id: 1,
            route: Route::Local(1),
            verdicts: vec![],
            content: RecipientContent::default(),
            dsn: Default::default(),
        };
        MessageContext::new(
            Envelope {
                sender: Address::parse("a@fabrikam.test").ok(),
                recipients: vec![rcpt("b@contoso.test"), rcpt("c@contoso.test")],
                smtputf8: false,
                dsn: Default::default(),
            },
            ClientContext::new(
                "192.0.2.1:40000".parse().unwrap(),
                "192.0.2.2:25".parse().unwrap(),
            ),
            "ESMTP",
            content.to_vec().into(),
        )
        .unwrap()
    }

    #[test]
    fn verdicts_are_recorded_per_recipient_and_become_their_stage_events() {
        let mut m = context(b"Subject: hello\r\nFrom: a@fabrikam.test\r\n\r\nbody\r\n");
        assert_eq!(m.headers.first("subject"), Some(&b" hello"[..]));
        let verdict = RecipientVerdict {
            action: Action::Deliver,
            reason: Reason::new(Stage::TransportRule, "Rule matched in audit mode")
                .rule("Audit external mail"),
        };
        assert!(m.record(1, verdict.clone()));
        assert!(!m.record(2, verdict.clone()), "no third recipient");
        assert!(m.envelope.recipients[0].verdicts.is_empty());
        assert_eq!(
            m.envelope.recipients[1].verdicts,
            std::slice::from_ref(&verdict)
        );
        let event = verdict.event();
        assert_eq!(event.event, TraceEvent::TransportRule);
        assert_eq!(event.detail, "Rule matched in audit mode");
        assert_eq!(event.reason, Some(verdict.reason));
    }
}

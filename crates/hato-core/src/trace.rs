//! Message trace vocabulary: the events each step appends and the per-recipient status.
//! Names follow Exchange Online's message trace (`Get-MessageTraceV2`, `Get-MessageTraceDetailV2`).

use crate::reason::{Reason, Refusal, Stage};
use crate::reply::Reply;
use serde::{Deserialize, Serialize};

/// One step in a recipient's journey. Open to extension: later stages add their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceEvent {
    Receive,
    Deliver,
    Fail,
    Defer,
    Expand,
    Spam,
    Malware,
    TransportRule,
    Quarantine,
    /// A quarantined message was released to its recipient (by whom: the event's detail).
    /// Exchange's trace has no documented event name for it; its antispam header marks a
    /// released message `SFV:SKQ` ("released from quarantine"), so the event is `Release`.
    Release,
    Drop,
    Send,
    Redirect,
    /// A delivery status notification (NDR) was generated for this recipient.
    Dsn,
    /// A stage recorded what it found without an event of its own (Exchange message tracking's
    /// `AGENTINFO`: an agent's information about the message).
    AgentInfo,
}

impl TraceEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceEvent::Receive => "Receive",
            TraceEvent::Deliver => "Deliver",
            TraceEvent::Fail => "Fail",
            TraceEvent::Defer => "Defer",
            TraceEvent::Expand => "Expand",
            TraceEvent::Spam => "Spam",
            TraceEvent::Malware => "Malware",
            TraceEvent::TransportRule => "TransportRule",
            TraceEvent::Quarantine => "Quarantine",
            TraceEvent::Release => "Release",
            TraceEvent::Drop => "Drop",
            TraceEvent::Send => "Send",
            TraceEvent::Redirect => "Redirect",
            TraceEvent::Dsn => "Dsn",
            TraceEvent::AgentInfo => "AgentInfo",
        }
    }

    /// The event a stage's verdict about a recipient is recorded as: the content stages have
    /// events of their own (Exchange's trace shows Malware, Transport rule and Spam events);
    /// the others record `AgentInfo`.
    pub fn for_stage(stage: Stage) -> Self {
        match stage {
            Stage::Malware => TraceEvent::Malware,
            Stage::TransportRule => TraceEvent::TransportRule,
            Stage::Spam | Stage::SenderAuthentication => TraceEvent::Spam,
            Stage::Session
            | Stage::Recipient
            | Stage::GroupRestriction
            | Stage::Moderation
            | Stage::Delivery
            | Stage::Queue
            | Stage::ConnectionFilter
            | Stage::ProviderBlockList
            | Stage::DnsBlockList
            | Stage::Throttling
            | Stage::EarlyTalker
            | Stage::Helo
            | Stage::ReverseDns
            | Stage::Connector => TraceEvent::AgentInfo,
        }
    }
}

/// One trace event as a step records it: structured fields (the reply's codes, the remote host,
/// the reason) besides the human detail, so that nothing reads codes back out of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub event: TraceEvent,
    /// The reply this event is about: the one that failed the recipient (a `Fail` event), later
    /// the remote server's answer (`Send`, `Defer`). Its code and enhanced code are stored; its
    /// text is the event's detail.
    pub reply: Option<Reply>,
    /// The server a delivery attempt talked to; empty until outbound delivery exists.
    pub remote_host: String,
    pub reason: Option<Reason>,
    /// What happened, for people.
    pub detail: String,
}

impl EventRecord {
    /// An event with only a detail.
    pub fn new(event: TraceEvent, detail: impl Into<String>) -> Self {
        EventRecord {
            event,
            reply: None,
            remote_host: String::new(),
            reason: None,
            detail: detail.into(),
        }
    }

    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// A `Fail` event: the reply that failed the recipient (its text is the detail; its codes
    /// are what the NDR reports) and why.
    pub fn fail(refusal: Refusal) -> Self {
        EventRecord {
            event: TraceEvent::Fail,
            detail: refusal.reply.text.to_string(),
            reply: Some(refusal.reply),
            remote_host: String::new(),
            reason: Some(*refusal.reason),
        }
    }

    /// An event whose detail is its reason's sentence (a `Defer` saying why the recipient waits,
    /// a stage's verdict).
    pub fn because(event: TraceEvent, reason: Reason) -> Self {
        EventRecord {
            event,
            reply: None,
            remote_host: String::new(),
            detail: reason.text.clone(),
            reason: Some(reason),
        }
    }
}

/// A recipient's state as message trace reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    Pending,
    Delivered,
    Failed,
    Expanded,
    Quarantined,
    FilteredAsSpam,
}

impl RecipientStatus {
    pub const ALL: [RecipientStatus; 6] = [
        RecipientStatus::Pending,
        RecipientStatus::Delivered,
        RecipientStatus::Failed,
        RecipientStatus::Expanded,
        RecipientStatus::Quarantined,
        RecipientStatus::FilteredAsSpam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Pending => "Pending",
            RecipientStatus::Delivered => "Delivered",
            RecipientStatus::Failed => "Failed",
            RecipientStatus::Expanded => "Expanded",
            RecipientStatus::Quarantined => "Quarantined",
            RecipientStatus::FilteredAsSpam => "FilteredAsSpam",
        }
    }

    /// Case-insensitive, as an admin types it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

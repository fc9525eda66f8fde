//! Message trace vocabulary: the events each step appends and the per-recipient status.
//! Names follow Exchange Online's message trace (`Get-MessageTraceV2`, `Get-MessageTraceDetailV2`).

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
    Drop,
    Send,
    Redirect,
    /// A delivery status notification (NDR) was generated for this recipient.
    Dsn,
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
            TraceEvent::Drop => "Drop",
            TraceEvent::Send => "Send",
            TraceEvent::Redirect => "Redirect",
            TraceEvent::Dsn => "Dsn",
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

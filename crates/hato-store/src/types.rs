//! Values that cross the store boundary.

use hato_core::Timestamp;
use hato_core::directory::{MailboxAttributes, MailboxId, MailboxType, TenantId};
use hato_core::trace::{RecipientStatus, TraceEvent};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct NewMailbox {
    pub tenant_id: TenantId,
    /// Canonical primary address.
    pub address: String,
    pub display_name: String,
    pub mailbox_type: MailboxType,
    pub aliases: Vec<String>,
    pub attributes: MailboxAttributes,
    pub quota_bytes: u64,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct MailboxChange {
    pub display_name: Option<String>,
    pub mailbox_type: Option<MailboxType>,
    /// Replaces the whole alias list.
    pub aliases: Option<Vec<String>>,
    pub attributes: Option<MailboxAttributes>,
    pub quota_bytes: Option<u64>,
}

pub use hato_core::directory::Route;

#[derive(Clone, Debug)]
pub struct NewRecipient {
    /// Canonical address.
    pub address: String,
    pub tenant_id: TenantId,
    pub route: Route,
    /// Events recorded with the recipient besides `Receive` (e.g. a `Defer` saying why it waits).
    pub extra_events: Vec<(TraceEvent, String)>,
}

#[derive(Clone, Debug)]
pub struct NewMessage {
    pub trace_id: String,
    pub received: Timestamp,
    /// Envelope sender; empty for the null reverse-path `<>`.
    pub sender: String,
    pub client_ip: String,
    pub helo: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The message as it will be stored, `Received` header included, without `Return-Path`.
    pub content: Vec<u8>,
    pub recipients: Vec<NewRecipient>,
    /// Detail of each recipient's `Receive` event.
    pub receive_detail: String,
    /// When this is an NDR: the recipient rows (of the original message) it reports on.
    pub reports_on: Vec<i64>,
}

#[derive(Clone, Debug)]
pub struct QueuedRecipient {
    pub id: i64,
    pub address: String,
    pub tenant_id: TenantId,
    pub route: Route,
}

#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub id: i64,
    pub trace_id: String,
    pub sender: String,
    pub received: Timestamp,
    pub content: Vec<u8>,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    Inbox,
    Junk,
}

impl Folder {
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Junk => "junk",
        }
    }

    /// The folder's display name, as in Exchange.
    pub fn display_name(self) -> &'static str {
        match self {
            Folder::Inbox => "Inbox",
            Folder::Junk => "Junk Email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "inbox" => Some(Folder::Inbox),
            "junk" | "junk email" | "junkemail" => Some(Folder::Junk),
            _ => None,
        }
    }
}

/// What delivery did (or must do) with one recipient.
#[derive(Clone, Debug)]
pub enum RecipientOutcome {
    /// Put the blob in the mailbox folder, unless that would exceed the mailbox quota, in which
    /// case the recipient fails with `554 5.2.2 mailbox full` instead.
    Store { mailbox: MailboxId, folder: Folder },
    /// Permanent failure with this reply text (an NDR follows unless the sender is null).
    Fail { reply: String },
}

/// Content made ready for storage by [`crate::MailStore::stage_blob`]: large content is already
/// in a synced blob file; small content travels with the delivery and is stored in its
/// transaction.
#[derive(Clone, Debug)]
pub struct StagedBlob {
    /// SHA-256 of the content, hex: the blob's name either way.
    pub hash: String,
    pub inline: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct DeliveryOutcome {
    pub message_id: i64,
    pub blob: StagedBlob,
    pub size: u64,
    pub from_header: String,
    pub subject: String,
    pub null_sender: bool,
    pub recipients: Vec<(i64, RecipientOutcome)>,
}

#[derive(Clone, Debug)]
pub struct FailedRecipient {
    pub id: i64,
    pub address: String,
    pub tenant_id: TenantId,
    /// The SMTP reply that failed it, e.g. `554 5.2.2 mailbox full; …`.
    pub reply: String,
}

/// A message some of whose recipients failed, and whose sender must get an NDR.
#[derive(Clone, Debug)]
pub struct NdrWork {
    pub message_id: i64,
    pub trace_id: String,
    pub sender: String,
    pub received: Timestamp,
    pub content: Vec<u8>,
    pub failed: Vec<FailedRecipient>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailItem {
    pub id: i64,
    pub received: String,
    pub from: String,
    pub subject: String,
    pub size: u64,
    pub folder: Folder,
    #[serde(skip)]
    pub blob: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectFilter {
    #[default]
    Contains,
    StartsWith,
}

#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    /// Confines the query to one tenant; `None` only for the platform operator.
    pub tenant: Option<TenantId>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub status: Option<RecipientStatus>,
    pub message_id: Option<String>,
    pub trace_id: Option<String>,
    pub from_ip: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub subject: Option<String>,
    pub subject_filter: SubjectFilter,
    pub limit: usize,
}

/// One row per recipient, like `Get-MessageTraceV2`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceRow {
    pub received: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub trace_id: String,
    pub message_id: String,
    pub from_ip: String,
    pub size: u64,
}

/// One event of a recipient, like `Get-MessageTraceDetailV2`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceDetailRow {
    pub recipient: String,
    pub time: String,
    pub event: String,
    pub detail: String,
}

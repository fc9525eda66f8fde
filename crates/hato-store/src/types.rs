//! Values that cross the store boundary.

use hato_core::Timestamp;
use hato_core::directory::{MailboxAttributes, MailboxId, MailboxType, TenantId};
use hato_core::id::NodeId;
use hato_core::reason::{Reason, Refusal};
use hato_core::reply::Reply;
use hato_core::trace::{EventRecord, RecipientStatus};
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
    /// Events recorded with the recipient after `Receive` (a `Defer` saying why it waits, the
    /// verdicts the end-of-data stages recorded for it).
    pub extra_events: Vec<EventRecord>,
    /// The reason of its `Receive` event: who sent it, as the edge saw the client for this
    /// recipient's tenant (`IPV:CAL`/`IPV:NLI`, client IP, PTR); `None` for messages hato
    /// generates.
    pub receive_reason: Option<Reason>,
    /// A stage decided to hold the message for this recipient in quarantine: delivery stores a
    /// quarantine item instead of delivering.
    pub quarantine: Option<QuarantineHold>,
    /// A stage finished with this recipient before the commit (refused it, deleted it, sent it
    /// elsewhere): it is queued already done, with its event, and never delivered.
    pub finished: Option<Finished>,
    /// Header fields put on top of the message for this recipient alone when it is delivered
    /// or quarantined (its `X-Hato-Antispam-Report`), each ending with CRLF; empty for none.
    pub stamp: String,
    /// Delivered to the Junk Email folder rather than the Inbox (the spam filter's verdict);
    /// group members inherit it with the stamp.
    pub junk: bool,
    /// The outbound connector a transport rule routes this (outside) recipient through
    /// (`RouteMessageOutboundConnector`); `None`: the connector its domain selects, or MX.
    pub connector: Option<String>,
    /// The DSN parameters of its RCPT (RFC 3461 `NOTIFY`, `ORCPT`): which reports its sender
    /// gets, and the original address they quote.
    pub dsn: hato_core::dsn::RecipientDsn,
}

/// How a recipient was done with before it was queued (see [`NewRecipient::finished`]).
#[derive(Clone, Debug)]
pub enum Finished {
    /// Failed with this reply: a `Fail` event, and an NDR to the sender (none for a null
    /// sender), as for a failure at delivery.
    Failed(Refusal),
    /// Dropped without telling anyone (a transport rule's `DeleteMessage`): status `Failed`, a
    /// `Drop` event, no NDR.
    Dropped(Reason),
    /// Sent to other recipients instead (a transport rule's `RedirectMessageTo`; they are
    /// recipients of the same message): status `Expanded`, a `Redirect` event.
    Redirected(Reason),
}

#[derive(Debug)]
pub struct NewMessage {
    pub trace_id: String,
    pub received: Timestamp,
    /// Envelope sender; empty for the null reverse-path `<>`.
    pub sender: String,
    pub client_ip: String,
    pub helo: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// The message as it will be stored, `Received` header included, without `Return-Path`;
    /// for a spooled message, only what hato puts in front of it (Received, Message-ID).
    pub content: Vec<u8>,
    /// A large message's content, in its spool file: moved (not copied) into the queue
    /// directory, after `content`.
    pub spooled: Option<hato_core::body::Spooled>,
    pub recipients: Vec<NewRecipient>,
    /// Detail of each recipient's `Receive` event.
    pub receive_detail: String,
    /// When this is an NDR: the recipient rows (of the original message) it reports on.
    pub reports_on: Vec<i64>,
    /// The mailbox the sender authenticated as (the identity the RCPT decision used); `None`
    /// for direct send. Routing at delivery uses it, never the envelope address.
    pub authenticated: Option<MailboxId>,
    /// The From address whose domain passed DMARC aligned (the content stages' sender
    /// authentication): an identity for group restrictions, as `authenticated` is.
    pub authenticated_from: Option<String>,
    /// The sender failed SPF or DMARC (the content stages' sender authentication): its address
    /// is likely forged, so a failure never sends it an NDR (no backscatter, issue 10 item 7;
    /// Exchange sends no NDR to a spoofed sender either).
    pub sender_auth_failed: bool,
    /// The DSN parameters of MAIL (RFC 3461 `RET`, `ENVID`).
    pub dsn: hato_core::dsn::MessageDsn,
    /// The content stages judged this outbound message spam: its outside recipients leave from
    /// the high-risk delivery pool (`exchange-online-behaviour.md` §7.2; migration 32).
    pub high_risk: bool,
}

#[derive(Clone, Debug)]
pub struct QueuedRecipient {
    pub id: i64,
    pub address: String,
    pub tenant_id: TenantId,
    pub route: Route,
    /// A moderator approved this (group) recipient: expand it without holding it again.
    pub approved: bool,
    /// Held in quarantine instead of delivered (see [`NewRecipient::quarantine`]).
    pub quarantine: Option<QuarantineHold>,
    /// See [`NewRecipient::stamp`].
    pub stamp: String,
    /// See [`NewRecipient::junk`].
    pub junk: bool,
    /// Attempts deferred so far (the outbound agent's backoff counts them).
    pub attempts: u32,
    /// See [`NewRecipient::connector`].
    pub connector: Option<String>,
    /// See [`NewRecipient::dsn`]: passed on to a next hop that offers DSN.
    pub dsn: hato_core::dsn::RecipientDsn,
}

#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub id: i64,
    pub trace_id: String,
    pub sender: String,
    pub received: Timestamp,
    /// The content kept in the database: the whole message, or for a spooled message (`spool`
    /// set) only what hato put in front of it.
    pub content: Vec<u8>,
    /// A large message's queue file: the rest of its content.
    pub spool: Option<std::path::PathBuf>,
    /// Why the spooled content could not be read (then `content` is empty): the message's
    /// recipients are deferred, not the whole queue.
    pub content_error: Option<String>,
    pub recipients: Vec<QueuedRecipient>,
    /// As [`NewMessage::authenticated`].
    pub authenticated: Option<MailboxId>,
    /// As [`NewMessage::authenticated_from`].
    pub authenticated_from: Option<String>,
    /// As [`NewMessage::dsn`]: passed on to a next hop that offers DSN.
    pub dsn: hato_core::dsn::MessageDsn,
    /// As [`NewMessage::high_risk`].
    pub high_risk: bool,
}

/// How much of a spooled message is read where only its header block is needed (Subject,
/// Message-ID, From; the headers an NDR quotes): more than any header block hato expects.
pub const HEAD_BYTES: usize = 256 * 1024;

impl QueuedMessage {
    /// The beginning of the message, at least its header block (up to [`HEAD_BYTES`] of its
    /// queue file).
    pub fn head(&self) -> crate::Result<std::borrow::Cow<'_, [u8]>> {
        use std::io::Read;
        let Some(path) = &self.spool else {
            return Ok(std::borrow::Cow::Borrowed(&self.content));
        };
        let mut head = self.content.clone();
        std::fs::File::open(path)?
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)?;
        Ok(std::borrow::Cow::Owned(head))
    }

    /// Reads a spooled message's queue file into `content`, for the routes that need the whole
    /// message in memory (group mailboxes, moderation requests).
    pub fn load_whole(&mut self) -> crate::Result<()> {
        use std::io::Read;
        if let Some(path) = &self.spool {
            let mut whole = self.content.clone();
            std::fs::File::open(path)?.read_to_end(&mut whole)?;
            self.content = whole;
            self.spool = None;
        }
        Ok(())
    }
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
    /// Permanent failure with this reply, for this reason (an NDR follows unless the sender is
    /// null).
    Fail(Refusal),
    /// Not now: a transient failure, tried again later (see [`Deferral`]).
    Defer(Deferral),
    /// Not delivered: a quarantine item holds the blob for this recipient until `expires`
    /// (its status becomes `Quarantined`, with a `Quarantine` trace event). `mailbox` is where
    /// a release delivers it, when the recipient was routed to one.
    Quarantine {
        hold: QuarantineHold,
        mailbox: Option<MailboxId>,
        expires: Timestamp,
    },
    /// Handed to another server (the outbound agent): status `Delivered`, a `Send` trace event
    /// with the remote host, its reply and how the session went.
    Sent(SentRecord),
    /// To be sent out after all (an internal-relay domain's recipient no one in the directory
    /// answers to, issue 10 item 5): its route becomes `remote`, so the outbound agent takes
    /// it at once (`due_remote`), with an `AgentInfo` event giving this reason.
    Outbound(Reason),
}

/// An MTA-STS policy (RFC 8461) as the outbound agent keeps it for a recipient domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaStsPolicyRecord {
    /// The recipient domain, lower case.
    pub domain: String,
    /// The `id` of the `_mta-sts` TXT record it was fetched for.
    pub id: String,
    /// The policy, as its text (`version: STSv1`, `mode: …`, …).
    pub policy: String,
    pub fetched: hato_core::Timestamp,
    /// `fetched` plus its `max_age`.
    pub expires: hato_core::Timestamp,
}

/// How an outside recipient left hato: what its `Send` event records (message trace's remote
/// host, Exchange's `OutboundIpPoolName`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRecord {
    /// The server's reply after the data (`250 2.0.0 Ok …`).
    pub reply: Reply,
    /// The host name the agent connected to (the MX or smart host).
    pub remote_host: String,
    /// Its address and port.
    pub remote_ip: String,
    /// The TLS protocol and cipher, when the session used TLS.
    pub tls: Option<hato_core::TlsInfo>,
    /// The delivery pool the session went out from (`normal`, `high-risk`).
    pub pool: String,
    /// The outbound connector that routed it (`None`: MX delivery without one).
    pub connector: Option<String>,
    /// The sender asked for a success notice (`NOTIFY=SUCCESS`) and the next hop did not offer
    /// DSN, so hato owes it a "relayed" notice (RFC 3461 §5.2.2).
    pub relayed_dsn: bool,
    /// The recipient domain's MTA-STS policy as it applied (`MTA-STS enforce (policy id …)`,
    /// or what a `testing` policy would have refused); `None`: no policy.
    pub mta_sts: Option<String>,
}

/// A transient failure of one recipient (or of the NDR it owes): the one way anything in the
/// queue waits and is tried again. Applying it counts the attempt, records the reply as the
/// recipient's last error and in a `Defer` trace event (one per distinct error in a row: a
/// recipient retried for two days with the same error gets one event, its row the count), and
/// schedules the next attempt at `retry_at` or, without one, on [`RETRY_SCHEDULE_SECS`]. A
/// recipient deferred at or after its expiry fails instead with `550 4.4.7 QUEUE.Expired;
/// message expired` and an NDR (none for a null sender), unless `keep_past_expiry`.
#[derive(Clone, Debug)]
pub struct Deferral {
    /// The transient reply that is now the recipient's last error (`451 4.4.4 …`).
    pub reply: Reply,
    /// Why, for admins: the stage, the rule, a sentence, the figures.
    pub reason: Reason,
    /// The server the attempt talked to; empty when it talked to none (until outbound delivery).
    pub remote_host: String,
    /// When to try again; `None`: after the backoff for this attempt ([`retry_delay_secs`]).
    pub retry_at: Option<Timestamp>,
    /// Keep the recipient queued past its expiry: only for a wait hato itself causes and an
    /// admin ends with a setting (mail for an unconfigured platform postmaster), where losing
    /// the mail would be worse than keeping it.
    pub keep_past_expiry: bool,
}

impl Deferral {
    /// A deferral on the backoff schedule, bounded by the recipient's expiry.
    pub fn new(reply: Reply, reason: Reason) -> Self {
        Deferral {
            reply,
            reason,
            remote_host: String::new(),
            retry_at: None,
            keep_past_expiry: false,
        }
    }

    /// Try again at `at` instead of after the backoff.
    pub fn retry_at(mut self, at: Timestamp) -> Self {
        self.retry_at = Some(at);
        self
    }

    /// Never expire while deferred this way (see [`Deferral::keep_past_expiry`]).
    pub fn kept_past_expiry(mut self) -> Self {
        self.keep_past_expiry = true;
        self
    }
}

/// How long a deferred recipient waits before its next attempt, by attempt: 1, 5, 15 and 30
/// minutes, then hourly (the shape of common MTAs' schedules: quick retries for a passing
/// problem, then a steady hourly pace until the message expires). Exchange retries deferred
/// mail for one to two days, on a schedule it does not publish (reference §9.4, §13.9).
pub const RETRY_SCHEDULE_SECS: [i64; 5] = [60, 300, 900, 1800, 3600];

/// The wait after the `attempt`-th failed attempt (1-based): [`RETRY_SCHEDULE_SECS`], then its
/// last step for every attempt after.
pub fn retry_delay_secs(attempt: u32) -> i64 {
    let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    RETRY_SCHEDULE_SECS
        .get(i)
        .or(RETRY_SCHEDULE_SECS.last())
        .copied()
        .unwrap_or(3600)
}

/// Exchange's `MessageExpirationTimeout` default: a message not delivered within 2 days of its
/// arrival expires (`queue.message_expiration_hours`).
pub const DEFAULT_MESSAGE_EXPIRATION_HOURS: u32 = 48;

/// What a deferred item was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueWork {
    /// The recipient's delivery (or routing): it stays `Pending`; at expiry it fails with an NDR.
    Delivery,
    /// The NDR a failed recipient owes: it stays owed; once the message expiration has passed
    /// since the failure, it is given up (a `Dsn` event says so).
    Ndr,
}

/// Recipients a step could not handle, what they were waiting for, and why.
#[derive(Clone, Debug)]
pub struct DeferredWork {
    pub recipients: Vec<i64>,
    pub work: QueueWork,
    pub deferral: Deferral,
}

/// A node's claim on the recipients [`crate::traits::QueueStore::due_deliveries`] hands it:
/// nobody else is handed them until `until`, or until the node completes or defers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: NodeId,
    pub until: Timestamp,
}

/// Content made ready for storage by [`crate::traits::MailStore::stage_blob`]: large content is already
/// in a synced blob file; small content travels with the delivery and is stored in its
/// transaction. The default (no hash) is for a delivery that files nothing.
#[derive(Clone, Debug, Default)]
pub struct StagedBlob {
    /// SHA-256 of the content, hex: the blob's name either way.
    pub hash: String,
    pub inline: Option<Vec<u8>>,
}

/// A [`DeliveryOutcome`] that [`crate::traits::QueueStore::complete_deliveries`] could not apply
/// (its writes were rolled back; the other outcomes of the batch were applied).
#[derive(Clone, Debug)]
pub struct FailedOutcome {
    pub message_id: i64,
    pub recipients: Vec<i64>,
    pub error: crate::error::StoreError,
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
    /// The SMTP reply that failed it (`554 5.2.2 mailbox full; …`), as its `Fail` event
    /// recorded it: code and enhanced code from their fields, the text from its detail.
    pub reply: Reply,
    /// The recipient's `ORCPT` (RFC 3461 §4.2), for the report's `Original-Recipient`.
    pub orcpt: Option<hato_core::dsn::Orcpt>,
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
    /// The message's `ENVID` (RFC 3461 §4.4), for the report's `Original-Envelope-Id`.
    pub envid: Option<String>,
}

/// Which delivery status notification other than an NDR a recipient owes its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// Still deferred a while after arrival (RFC 3464 `Action: delayed`): sent once per
    /// recipient unless its NOTIFY leaves DELAY out.
    Delay,
    /// Delivered (`Action: delivered`) or handed to a next hop without DSN (`Action:
    /// relayed`), for `NOTIFY=SUCCESS`.
    Success,
}

/// One recipient a notice reports on.
#[derive(Clone, Debug)]
pub struct NoticeRecipient {
    pub id: i64,
    pub address: String,
    pub tenant_id: TenantId,
    pub orcpt: Option<hato_core::dsn::Orcpt>,
    /// RFC 3464 §2.3.3 `Action`: `delayed`, `delivered` or `relayed`.
    pub action: &'static str,
    /// The last deferral's reply (delay) or none (success).
    pub reply: Option<Reply>,
    /// When the recipient expires (delay notices' `Will-Retry-Until`).
    pub expires: Timestamp,
    /// Routed outside every tenant (the outbound agent's own expiry applies to it).
    pub remote: bool,
}

/// A message some of whose recipients owe their sender a notice of one kind, grouped into one
/// report.
#[derive(Clone, Debug)]
pub struct NoticeWork {
    pub kind: NoticeKind,
    pub message_id: i64,
    pub trace_id: String,
    pub sender: String,
    pub received: Timestamp,
    pub envid: Option<String>,
    /// The original's beginning (at least its header block).
    pub content: Vec<u8>,
    pub recipients: Vec<NoticeRecipient>,
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
    /// Only recipients delivered here (`Inbound`) or leaving (`Outbound`).
    pub direction: Option<TraceDirection>,
    /// The page to return, from 1 (0 means 1), of `page_size` rows each.
    pub page: usize,
    /// Rows per page (0 means [`TRACE_PAGE_SIZE_DEFAULT`]). The store takes any size; the API
    /// keeps to Exchange's limits.
    pub page_size: usize,
}

/// Which way a recipient's copy went, by its route: delivered here (a mailbox, a group, the
/// postmaster) is inbound; relayed through a connector or sent to the Internet is outbound (the
/// admin centre's message trace "Direction").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceDirection {
    Inbound,
    Outbound,
}

impl TraceDirection {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "inbound" => Some(TraceDirection::Inbound),
            "outbound" => Some(TraceDirection::Outbound),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TraceDirection::Inbound => "Inbound",
            TraceDirection::Outbound => "Outbound",
        }
    }

    /// The routes (`recipients.route`) of this direction.
    pub fn routes(self) -> &'static [&'static str] {
        match self {
            TraceDirection::Inbound => &["local", "group", "postmaster"],
            TraceDirection::Outbound => &["relay", "remote"],
        }
    }
}

/// `Get-MessageTrace -PageSize`: 1,000 rows by default, at most 5,000.
pub const TRACE_PAGE_SIZE_DEFAULT: usize = 1000;
pub const TRACE_PAGE_SIZE_MAX: usize = 5000;
/// `Get-MessageTrace -Page`: at most page 1,000.
pub const TRACE_PAGE_MAX: usize = 1000;

/// One page of message trace, and whether rows follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TracePage {
    pub rows: Vec<TraceRow>,
    pub more: bool,
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

/// One event of a recipient, like `Get-MessageTraceDetailV2`. Events recorded before the
/// structured fields existed have them empty (`None`, `""`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceDetailRow {
    pub recipient: String,
    pub time: String,
    pub event: String,
    pub detail: String,
    /// The SMTP reply code of the reply the event is about (a `Fail` event's), e.g. 554.
    pub status: Option<u16>,
    /// Its RFC 3463 enhanced status code, e.g. `5.2.2`.
    pub enhanced_status: Option<String>,
    /// The server a delivery attempt talked to; empty until outbound delivery exists.
    pub remote_host: String,
    /// Why: the stage, rule, sentence and figures.
    pub reason: Option<Reason>,
}

// ----- the queue listing ----------------------------------------------------------------------

/// Where a recipient waiting in the queue stands, in the words of Exchange's `Get-QueueMessage`
/// (`Status`): being worked on, waiting for its first attempt, or waiting to be tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueStatus {
    /// A node holds its lease and is working on it now.
    Active,
    /// Not attempted yet (due now, or at its next attempt).
    Ready,
    /// At least one attempt was deferred; it waits for the next.
    Retry,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 3] = [QueueStatus::Active, QueueStatus::Ready, QueueStatus::Retry];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Active => "Active",
            QueueStatus::Ready => "Ready",
            QueueStatus::Retry => "Retry",
        }
    }

    /// Case-insensitive, as an admin types it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What an administrator does to queued recipients ([`crate::QueueStore::queue_act`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAction {
    /// Due now, whatever their back-off said (Postfix's `postqueue -i`, Exchange's
    /// `Retry-Queue`).
    Retry,
    /// Failed with `550 4.3.2 QUEUE.Admin` (Postfix's `postsuper -d`, Exchange's
    /// `Remove-Message`): with an NDR to the sender when `with_ndr` (Exchange's `-WithNDR`),
    /// traced as a `Drop` otherwise. `by` names the administrator in the trace.
    Delete { with_ndr: bool, by: String },
}

/// What [`crate::QueueStore::queue_act`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueActed {
    /// Recipients retried or deleted.
    pub changed: usize,
    /// Recipients left alone: a node is delivering them now, or a moderator holds them.
    pub busy: usize,
}

/// Which queued recipients to list: those still waiting for delivery (`Pending`, not held for
/// moderation, whose queue is [`crate::traits::ModerationStore::moderation_queue`]).
#[derive(Clone, Debug)]
pub struct QueueQuery {
    /// Confines the listing to one tenant; `None` only for the platform operator.
    pub tenant: Option<TenantId>,
    pub status: Option<QueueStatus>,
    /// A recipient address (canonical).
    pub recipient: Option<String>,
    /// The recipients' domain (canonical).
    pub domain: Option<String>,
    pub trace_id: Option<String>,
    /// The time leases are judged by: one that runs out before it is void.
    pub now: Timestamp,
    /// As [`TraceQuery::page`].
    pub page: usize,
    /// As [`TraceQuery::page_size`].
    pub page_size: usize,
}

impl QueueQuery {
    /// Every queued recipient, first page, as seen at `now`.
    pub fn at(now: Timestamp) -> Self {
        QueueQuery {
            tenant: None,
            status: None,
            recipient: None,
            domain: None,
            trace_id: None,
            now,
            page: 1,
            page_size: 0,
        }
    }
}

/// One page of the queue, and whether rows follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub more: bool,
}

/// One recipient waiting in the queue, oldest message first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueRow {
    pub trace_id: String,
    /// RFC 3339, UTC.
    pub received: String,
    pub sender: String,
    pub recipient: String,
    /// `local`, `relay`, `remote`, `group` or `postmaster`.
    pub route: String,
    /// `Active`, `Ready` or `Retry`.
    pub status: String,
    /// Attempts deferred so far.
    pub attempts: u32,
    pub last_error: Option<LastError>,
    /// RFC 3339, UTC; for an `Active` recipient, when its lease runs out (and, should its node
    /// die, anyone may take it).
    pub next_attempt: String,
    /// When it fails with `550 4.4.7` if still deferred (RFC 3339, UTC).
    pub expires: String,
    /// The node working on it and until when; `None` when none holds a lease that runs.
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
}

/// A recipient's last transient failure, as the deferral recorded it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastError {
    /// The reply's SMTP code (`451`).
    pub status: u16,
    /// Its RFC 3463 enhanced status code (`4.4.4`).
    pub enhanced_status: String,
    pub text: String,
    /// The server the attempt talked to; empty when it talked to none.
    pub remote_host: String,
    pub reason: Option<Reason>,
}

// ----- groups ---------------------------------------------------------------------------------

use hato_core::directory::{GroupId, GroupSettings, GroupType, MemberRef};

#[derive(Clone, Debug)]
pub struct NewGroup {
    pub tenant_id: TenantId,
    pub name: String,
    /// Canonical address; `None` only for security groups.
    pub address: Option<String>,
    pub group_type: GroupType,
    pub settings: GroupSettings,
    pub owners: Vec<MailboxId>,
    pub members: Vec<MemberRef>,
}

/// A change to a group; lists are deltas so concurrent changes do not overwrite each other.
#[derive(Clone, Debug, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub settings: Option<GroupSettings>,
    pub add_members: Vec<MemberRef>,
    pub remove_members: Vec<MemberRef>,
    pub add_owners: Vec<MailboxId>,
    pub remove_owners: Vec<MailboxId>,
    pub add_subscribers: Vec<MailboxId>,
    pub remove_subscribers: Vec<MailboxId>,
}

#[derive(Clone, Debug)]
pub struct NewContact {
    pub tenant_id: TenantId,
    pub address: String,
    pub display_name: String,
    pub attributes: MailboxAttributes,
}

/// An authenticated API token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub role: hato_core::auth::Role,
    pub tenant_id: Option<TenantId>,
    pub mailbox_id: Option<MailboxId>,
    pub expires: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinRequestKind {
    Join,
    Depart,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: i64,
    pub group_id: GroupId,
    pub mailbox_id: MailboxId,
    pub kind: JoinRequestKind,
    pub created: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModerationState {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ModerationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationState::Pending => "pending",
            ModerationState::Approved => "approved",
            ModerationState::Rejected => "rejected",
            ModerationState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ModerationState::Pending),
            "approved" => Some(ModerationState::Approved),
            "rejected" => Some(ModerationState::Rejected),
            "expired" => Some(ModerationState::Expired),
            _ => None,
        }
    }
}

/// A message held for a moderated group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMessage {
    pub id: i64,
    pub recipient_id: i64,
    pub group_id: GroupId,
    pub tenant_id: TenantId,
    pub trace_id: String,
    pub sender: String,
    pub subject: String,
    pub received: Timestamp,
    pub expires: Timestamp,
    pub state: ModerationState,
    pub decided_by: String,
    pub comment: String,
}

/// One member recipient produced by expanding a group recipient.
#[derive(Clone, Debug)]
pub struct ExpandedRecipient {
    pub address: String,
    pub tenant_id: TenantId,
    pub route: Route,
    /// For a member that is itself a group handled later (M365 group mailbox), its id.
    pub group_id: Option<GroupId>,
    /// Who gets NDRs for this recipient: `None` the message's sender; otherwise exactly these
    /// addresses (the sender and/or the group's first owner; empty: nobody), as the group's
    /// ReportToOriginatorEnabled / ReportToManagerEnabled say.
    pub report_to: Option<Vec<String>>,
    pub detail: String,
    /// A member that fails at once (e.g. a nested group's sender restriction): the reply and
    /// why.
    pub fail: Option<Refusal>,
}

/// What to do with a group recipient at routing.
#[derive(Clone, Debug)]
pub enum GroupOutcome {
    /// Mark it Expanded and add these recipients (already de-duplicated against the message).
    Expand {
        detail: String,
        /// Which group expanded, into how many.
        reason: Option<Reason>,
        members: Vec<ExpandedRecipient>,
    },
    /// Hold it for moderation until `expires`; the `Defer` event's detail is the reason's
    /// sentence.
    Hold {
        group_id: GroupId,
        tenant_id: TenantId,
        expires: Timestamp,
        reason: Reason,
    },
    /// Fail it with this reply, for this reason.
    Fail(Refusal),
}

/// A message filed in a Microsoft 365 group's mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupItem {
    pub id: i64,
    pub conversation_id: i64,
    pub received: String,
    pub from: String,
    pub subject: String,
    pub size: u64,
    pub message_id: String,
    #[serde(skip)]
    pub blob: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: i64,
    pub topic: String,
    pub last_activity: String,
    pub messages: u64,
}

/// A message to file in a Microsoft 365 group's mailbox.
#[derive(Clone, Debug)]
pub struct NewGroupItem {
    pub recipient_id: i64,
    pub group_id: GroupId,
    pub blob: StagedBlob,
    pub size: u64,
    pub from: String,
    pub subject: String,
    /// Message-ID without angle brackets.
    pub message_id: String,
    /// The conversation the message belongs to, as the transport's threading rule chose it
    /// (`hato_transport::groupmail::choose_conversation` over
    /// [`crate::traits::GroupMailboxStore::conversation_of_message`] and
    /// [`crate::traits::GroupMailboxStore::conversation_by_subject`]); `None`, or a conversation
    /// that no longer exists in the group, starts a new one.
    pub conversation: Option<i64>,
    pub normalized_subject: String,
    /// Calendar changes: (UID, Some(JSON of the event)) to add or replace, (UID, None) to remove.
    pub calendar: Vec<(String, Option<String>)>,
    pub now: Timestamp,
}

/// A tenant may list at most this many throttle exemptions (on-premises servers, not whole
/// provider ranges: entries are IPv4 /24 or narrower, IPv6 /48 or narrower).
pub const THROTTLE_EXEMPTIONS_MAX: usize = 1_000;

/// One entry of a tenant's throttle exemption list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleExemptionRow {
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant: String,
    /// The address or network, in canonical form (`192.0.2.0/24`, `2001:db8:1::/48`).
    pub network: String,
    pub created: Timestamp,
    /// The enabled on-premises inbound connector that registers it (Exchange exempts the
    /// traffic such a connector identifies, `exchange-online-behaviour.md` §8): it goes with
    /// the connector, not with `remove_throttle_exemption`. `None` for an entry added as such.
    pub connector: Option<String>,
}

// ----- the edge: tenants' connection filter policies and the connection log -------------------

/// Exchange Online keeps at most 1,273 entries in each list of a connection filter policy
/// (`edge.connection_filter_max_entries`; [`crate::SqliteStore::with_connection_filter_max_entries`]).
pub const DEFAULT_CONNECTION_FILTER_MAX_ENTRIES: usize = 1273;

/// A tenant's connection filter policy (Exchange's one `HostedConnectionFilterPolicy`,
/// `Default`): its IP allow and block lists, each entry in its canonical text, in the order they
/// were added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionFilterPolicy {
    pub ip_allow_list: Vec<String>,
    pub ip_block_list: Vec<String>,
    /// Bumped by every change; 0 for a tenant whose policy never changed (both lists empty).
    pub version: i64,
}

/// A change of a connection filter policy, as Exchange's `-IPAllowList @{Add=…; Remove=…}`:
/// entries (canonical texts) to remove from and to add to each list. Deltas, so that two admins
/// changing the lists at once do not undo each other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionFilterChange {
    pub ip_allow_list_add: Vec<String>,
    pub ip_allow_list_remove: Vec<String>,
    pub ip_block_list_add: Vec<String>,
    pub ip_block_list_remove: Vec<String>,
}

/// A connection the edge refused, deferred or cut, as the connection log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConnectionRecord {
    pub time: Timestamp,
    /// The client's address.
    pub ip: String,
    /// Its reverse DNS name, once looked up; empty otherwise.
    pub ptr: String,
    /// The EHLO/HELO name it gave; empty before it gave one.
    pub helo: String,
    /// The tenant whose policy refused (its connection filter); `None` for the platform's own
    /// stages (the provider's block list, DNS block lists, throttling, HELO and early talkers),
    /// whose refusals only the operator sees.
    pub tenant: Option<TenantId>,
    /// What the client was told.
    pub reply: Reply,
    /// Why: the stage (stored apart too, to filter on), the rule or list, the figures.
    pub reason: Reason,
    /// What the edge noted about the connection before it refused it (a DNS lookup that failed
    /// open, an IP on probation).
    pub notes: Vec<Reason>,
}

/// Which connection log rows to list, newest first, paged as message trace.
#[derive(Clone, Debug, Default)]
pub struct ConnectionQuery {
    /// Confines the listing to refusals made on this tenant's policy; `None` only for the
    /// platform operator (every row).
    pub tenant: Option<TenantId>,
    /// One client address (as [`std::net::IpAddr`] writes it).
    pub ip: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// As [`TraceQuery::page`].
    pub page: usize,
    /// As [`TraceQuery::page_size`].
    pub page_size: usize,
}

/// One page of the connection log, and whether rows follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionPage {
    pub rows: Vec<ConnectionRow>,
    pub more: bool,
}

/// One refused, deferred or cut connection.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionRow {
    /// RFC 3339, UTC.
    pub time: String,
    pub ip: String,
    pub ptr: String,
    pub helo: String,
    /// The stage that decided (`connection_filter`, `provider_block_list`, `dns_block_list`,
    /// `throttling`, `early_talker`, `helo`).
    pub stage: String,
    /// The list or rule (`IPBlockList`, a DNS zone, a throttle rule).
    pub rule: Option<String>,
    /// The reply's SMTP code and RFC 3463 enhanced code.
    pub status: u16,
    pub enhanced_status: String,
    /// The whole reply as the client got it.
    pub reply: String,
    /// The tenant whose policy refused; `None` for the platform's stages.
    pub tenant: Option<String>,
    /// A reason this hato cannot read (a newer writer's) is left out rather than the row.
    pub reason: Option<Reason>,
    pub notes: Vec<Reason>,
}

// ----- the provider's block list and its delist requests -----------------------------------------

/// An entry of the provider's block list as stored: the listed address or network in canonical
/// text (`hato_protection::IpNetwork`), why, by whom, since and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub id: i64,
    pub entry: String,
    pub reason: String,
    pub added_by: String,
    pub added: Timestamp,
    /// When it stops matching; `None`: never.
    pub expires: Option<Timestamp>,
}

/// An entry to add to the provider's block list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBlockEntry {
    /// Canonical text (the caller parses it: `hato_protection::IpNetwork`).
    pub entry: String,
    pub reason: String,
    pub added_by: String,
    pub added: Timestamp,
    pub expires: Option<Timestamp>,
}

/// What became of a delist request. Stored by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelistOutcome {
    /// No entry listed the IP: nothing was mailed.
    NotListed,
    /// A network entry listed the IP: the mail said that it cannot be removed by request.
    ListedInRange,
    /// A confirmation link was mailed and not used yet.
    ConfirmationSent,
    /// The link was followed and the entry removed.
    Removed,
    /// The link was followed after the entry had gone (removed or expired) already.
    NoLongerListed,
}

impl DelistOutcome {
    /// An entry listed the IP and the requester's link has not settled it: the operator may
    /// approve or deny.
    pub fn awaits_decision(self) -> bool {
        matches!(
            self,
            DelistOutcome::ListedInRange | DelistOutcome::ConfirmationSent
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DelistOutcome::NotListed => "not_listed",
            DelistOutcome::ListedInRange => "listed_in_range",
            DelistOutcome::ConfirmationSent => "confirmation_sent",
            DelistOutcome::Removed => "removed",
            DelistOutcome::NoLongerListed => "no_longer_listed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DelistOutcome::NotListed,
            DelistOutcome::ListedInRange,
            DelistOutcome::ConfirmationSent,
            DelistOutcome::Removed,
            DelistOutcome::NoLongerListed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A request made on the delist page, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelistRequest {
    pub requested: Timestamp,
    /// The address asked to be removed (canonical).
    pub ip: String,
    /// Where the answer was mailed (canonical).
    pub address: String,
    /// Who asked: the web client's IP.
    pub client_ip: String,
    pub outcome: DelistOutcome,
    /// The entry that listed the IP (its row id and text), when one did.
    pub entry: Option<(i64, String)>,
    /// The confirmation token's hash (never the token) and its expiry, when a link was mailed.
    pub token: Option<(String, Timestamp)>,
}

/// A recorded delist request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelistRequest {
    pub id: i64,
    pub requested: Timestamp,
    pub ip: String,
    pub address: String,
    pub client_ip: String,
    pub outcome: DelistOutcome,
    /// The entry that listed the IP when asked: its row id and text.
    pub entry_id: Option<i64>,
    pub entry: Option<String>,
    /// Until when its link works, when one was mailed.
    pub token_expires: Option<Timestamp>,
    /// When its link was used.
    pub confirmed: Option<Timestamp>,
    /// The operator's decision on it, when one was made (migration 38).
    pub decision: Option<DelistDecision>,
    /// Who decided (`operator`), when, and why (optional).
    pub decided_by: Option<String>,
    pub decided: Option<Timestamp>,
    pub decision_reason: Option<String>,
}

impl DelistRequest {
    /// Where the request stands (see [`DelistStatus`]).
    pub fn status(&self) -> DelistStatus {
        match self.decision {
            Some(DelistDecision::Approved) => DelistStatus::Approved,
            Some(DelistDecision::Denied) => DelistStatus::Denied,
            Some(DelistDecision::Closed) => DelistStatus::Closed,
            None if self.outcome.awaits_decision() => DelistStatus::Pending,
            None => DelistStatus::Closed,
        }
    }
}

/// The operator's decision on a delist request. Stored by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelistDecision {
    /// The entry is removed (the requester's IP is accepted again).
    Approved,
    /// The entry stays, and the request's confirmation link no longer removes it.
    Denied,
    /// Not the operator's decision: the pending request's entry was removed by hand (API,
    /// CLI or console), in the same write, so nothing is left to decide (status `closed`;
    /// who removed it, when, and "entry removed" as the reason).
    Closed,
}

impl DelistDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            DelistDecision::Approved => "approved",
            DelistDecision::Denied => "denied",
            DelistDecision::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DelistDecision::Approved,
            DelistDecision::Denied,
            DelistDecision::Closed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// Where a delist request stands: `pending` (an entry listed the IP and the operator has not
/// decided: whether the requester's own link was used or not, the entry may still be there),
/// `approved` / `denied` (the operator decided), `closed` (nothing to decide: nothing listed
/// the IP, or the requester's link already removed the entry or found it gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelistStatus {
    Pending,
    Approved,
    Denied,
    Closed,
}

impl DelistStatus {
    pub const ALL: [DelistStatus; 4] = [
        DelistStatus::Pending,
        DelistStatus::Approved,
        DelistStatus::Denied,
        DelistStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DelistStatus::Pending => "pending",
            DelistStatus::Approved => "approved",
            DelistStatus::Denied => "denied",
            DelistStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One page of delist requests, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelistRequestQuery {
    /// Only the requests in this state; `None`: all.
    pub status: Option<DelistStatus>,
    /// Requests skipped (the newest ones): `(page - 1) * page size`.
    pub offset: usize,
    pub limit: usize,
}

/// What deciding a delist request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelistDecided {
    /// The request as it stands now.
    pub request: DelistRequest,
    /// The entry an approval removed; `None` when it had gone already (or on a denial).
    pub removed: Option<BlockEntry>,
}

/// What following a confirmation link did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelistConfirmation {
    /// The entry is gone from the list.
    Removed { ip: String, entry: String },
    /// The entry the link was for had gone already (removed, expired, or listed anew since:
    /// a link removes only the entry it was mailed for).
    NoLongerListed { ip: String },
    /// The link was used before, at `at`.
    AlreadyUsed { ip: String, at: Timestamp },
    /// The link's time is up.
    Expired { ip: String },
    /// The operator denied the request: the link removes nothing.
    Denied { ip: String },
    /// No request has this token.
    Unknown,
}

/// A tenant's rules: at most this many (Exchange Online's 300).
pub const TRANSPORT_RULES_MAX: usize = 300;

/// A transport rule as stored: its columns and its definition (the rule's JSON, as
/// `hato-protection`'s `Rule` writes it; the columns win over the same fields in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportRuleRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    /// 0 first; unique and contiguous within the tenant.
    pub priority: u32,
    pub enabled: bool,
    pub definition: String,
    /// Messages the rule matched.
    pub hits: u64,
    pub created: Timestamp,
    pub modified: Timestamp,
}

/// A rule to add: at `priority` (the others from there shift down by one), or last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTransportRule {
    pub name: String,
    pub priority: Option<u32>,
    pub enabled: bool,
    pub definition: String,
}

/// A change of a rule: what is given changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportRuleChange {
    pub name: Option<String>,
    pub priority: Option<u32>,
    pub enabled: Option<bool>,
    pub definition: Option<String>,
}

// ----- quarantine ---------------------------------------------------------------------------------

pub use hato_core::message::QuarantineKind;

/// What a stage decided for a queued recipient that is to be held in quarantine instead of
/// delivered: recorded with the recipient when the message is queued, carried out by delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineHold {
    pub kind: QuarantineKind,
    /// The policy or rule that decided.
    pub policy: String,
    /// The stage's reason (stage, rule, sentence, figures).
    pub reason: Reason,
    /// Days the item is kept when the stage's policy says (the anti-spam policy's
    /// `QuarantineRetentionPeriod`, 1–30); `None`: the server's setting for the kind.
    pub days: Option<u32>,
    /// The quarantine policy (Exchange's quarantine tag) that governs what the recipient may
    /// do with the item; `None`: the kind's default
    /// ([`QuarantineKind::default_quarantine_policy`]).
    pub quarantine_policy: Option<String>,
}

/// Where a quarantined item stands. A released or deleted item stays listed (so a second
/// release is refused, not mistaken for a first) until it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineState {
    Held,
    Released,
    Deleted,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Held => "held",
            QuarantineState::Released => "released",
            QuarantineState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            QuarantineState::Held,
            QuarantineState::Released,
            QuarantineState::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One recipient's copy of a message held in quarantine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineItem {
    pub id: i64,
    pub tenant_id: TenantId,
    pub trace_id: String,
    /// The queue recipient it was held for (its trace rows, while trace keeps them).
    pub recipient_id: i64,
    /// The recipient's canonical address.
    pub recipient: String,
    /// The mailbox the recipient was routed to, if it was one.
    pub mailbox_id: Option<MailboxId>,
    /// The envelope sender (empty for `<>`).
    pub sender: String,
    pub from_header: String,
    pub subject: String,
    pub received: Timestamp,
    pub quarantined: Timestamp,
    pub kind: QuarantineKind,
    pub policy: String,
    /// The quarantine policy that applied (Exchange's quarantine tag): what the recipient may
    /// do with the item.
    pub quarantine_policy: String,
    pub reason: Option<Reason>,
    pub expires: Timestamp,
    pub size: u64,
    pub state: QuarantineState,
    /// Who released or deleted it, and when.
    pub decided_by: Option<String>,
    pub decided: Option<Timestamp>,
    /// The recipient's release request, if one was made.
    pub request: Option<ReleaseRequest>,
    /// The stored form's blob; `None` once the item is deleted.
    pub blob: Option<String>,
}

impl QuarantineItem {
    /// The end-user permissions of the item's recipient among `policies` (the built-in ones
    /// and the tenant's): its quarantine policy's (a policy removed since gives none: admins
    /// still act), adjusted for its kind ([`QuarantinePermissions::for_kind`]: release of
    /// malware and high confidence phish becomes request release); none ever for a transport
    /// rule's item (Exchange: mail flow rule quarantine is admin-only). The API, the console
    /// and the quarantine notifications all ask this.
    pub fn permissions_in(&self, policies: &[QuarantinePolicy]) -> QuarantinePermissions {
        if self.kind == QuarantineKind::TransportRule {
            return QuarantinePermissions::NO_ACCESS;
        }
        policies
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&self.quarantine_policy))
            .map(|p| p.permissions.for_kind(self.kind))
            .unwrap_or_default()
    }
}

/// A listing of quarantine items, newest first. Every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct QuarantineQuery {
    pub tenant: Option<TenantId>,
    /// Canonical recipient address.
    pub recipient: Option<String>,
    /// Only items held for this mailbox (a user's own).
    pub mailbox: Option<MailboxId>,
    /// Only the items of one message (its recipients' copies).
    pub trace_id: Option<String>,
    pub kind: Option<QuarantineKind>,
    /// Only the items held by this policy or rule (its name, any case).
    pub policy: Option<String>,
    /// Only the items that expire before this time (Exchange's quarantine "Expires" filter).
    pub expires_before: Option<Timestamp>,
    /// Leave out the kinds only admins see ([`QuarantineKind::admin_only`]).
    pub without_admin_only: bool,
    /// Only the items held under one of these quarantine policies (any case): a user's view,
    /// the policies that give end users access.
    pub quarantine_policies: Option<Vec<String>>,
    /// Only the items whose release request stands so (`Pending`: Exchange's "Release
    /// requested" filter).
    pub request: Option<ReleaseRequestState>,
    pub state: Option<QuarantineState>,
    /// At most this many rows (0: [`TRACE_PAGE_SIZE_DEFAULT`]), after skipping `offset`.
    pub limit: usize,
    pub offset: usize,
}

/// One page of a quarantine listing, and whether more rows follow.
#[derive(Clone, Debug)]
pub struct QuarantinePage {
    pub items: Vec<QuarantineItem>,
    pub more: bool,
}

/// Where a recipient's request to release an item stands (Exchange: a user whose quarantine
/// policy grants *request release* asks; an admin approves, which releases, or denies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseRequestState {
    Pending,
    Approved,
    Denied,
}

impl ReleaseRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseRequestState::Pending => "pending",
            ReleaseRequestState::Approved => "approved",
            ReleaseRequestState::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ReleaseRequestState::Pending,
            ReleaseRequestState::Approved,
            ReleaseRequestState::Denied,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// A recipient's release request: who asked and when, and who approved or denied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRequest {
    pub state: ReleaseRequestState,
    pub by: String,
    pub at: Timestamp,
    pub decided_by: Option<String>,
    pub decided: Option<Timestamp>,
}

/// One end-user permission of a quarantine policy: Exchange's
/// `-EndUserQuarantinePermissionsValue` bits (exchange-online-behaviour.md §6.4, 128 → 1:
/// PermissionToViewHeader, Download, AllowSender, BlockSender, RequestRelease, Release,
/// Preview, Delete), named in kebab case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuarantinePermission {
    ViewHeader,
    Download,
    AllowSender,
    BlockSender,
    RequestRelease,
    Release,
    Preview,
    Delete,
}

impl QuarantinePermission {
    pub const ALL: [QuarantinePermission; 8] = [
        QuarantinePermission::ViewHeader,
        QuarantinePermission::Download,
        QuarantinePermission::AllowSender,
        QuarantinePermission::BlockSender,
        QuarantinePermission::RequestRelease,
        QuarantinePermission::Release,
        QuarantinePermission::Preview,
        QuarantinePermission::Delete,
    ];

    /// The bit in Exchange's `EndUserQuarantinePermissionsValue`.
    pub fn bit(self) -> u8 {
        match self {
            QuarantinePermission::ViewHeader => 128,
            QuarantinePermission::Download => 64,
            QuarantinePermission::AllowSender => 32,
            QuarantinePermission::BlockSender => 16,
            QuarantinePermission::RequestRelease => 8,
            QuarantinePermission::Release => 4,
            QuarantinePermission::Preview => 2,
            QuarantinePermission::Delete => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QuarantinePermission::ViewHeader => "view-header",
            QuarantinePermission::Download => "download",
            QuarantinePermission::AllowSender => "allow-sender",
            QuarantinePermission::BlockSender => "block-sender",
            QuarantinePermission::RequestRelease => "request-release",
            QuarantinePermission::Release => "release",
            QuarantinePermission::Preview => "preview",
            QuarantinePermission::Delete => "delete",
        }
    }

    /// Kebab case, or Exchange's `PermissionTo…` name; case-insensitive, `_` for `-`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = s.strip_prefix("permissionto").unwrap_or(&s);
        if s == "view" {
            return Some(QuarantinePermission::ViewHeader);
        }
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s || p.as_str().replace('-', "") == s.replace('-', ""))
    }
}

/// A set of end-user permissions (Exchange's `EndUserQuarantinePermissionsValue`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QuarantinePermissions(pub u8);

impl QuarantinePermissions {
    /// Exchange's "No access" preset.
    pub const NO_ACCESS: QuarantinePermissions = QuarantinePermissions(0);
    /// Exchange's "Limited access" preset (43): allow sender, request release, preview,
    /// delete.
    pub const LIMITED_ACCESS: QuarantinePermissions = QuarantinePermissions(43);
    /// Exchange's "Full access" preset (39): allow sender, release, preview, delete.
    pub const FULL_ACCESS: QuarantinePermissions = QuarantinePermissions(39);

    pub fn has(self, p: QuarantinePermission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn with(self, p: QuarantinePermission) -> Self {
        QuarantinePermissions(self.0 | p.bit())
    }

    pub fn without(self, p: QuarantinePermission) -> Self {
        QuarantinePermissions(self.0 & !p.bit())
    }

    /// Whether a user sees the items at all: Exchange's "No access" (0) hides them.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        QuarantinePermission::ALL
            .into_iter()
            .filter(|p| self.has(*p))
            .map(QuarantinePermission::as_str)
            .collect()
    }

    /// What a recipient may do with an item of `kind` under these permissions: Exchange never
    /// lets users release their own malware or high confidence phishing, whatever the policy
    /// says: *release* becomes *request release* (exchange-online-behaviour.md §4.3, §6.4).
    pub fn for_kind(self, kind: QuarantineKind) -> Self {
        match kind {
            QuarantineKind::Malware | QuarantineKind::HighConfidencePhish
                if self.has(QuarantinePermission::Release) =>
            {
                self.without(QuarantinePermission::Release)
                    .with(QuarantinePermission::RequestRelease)
            }
            _ => self,
        }
    }
}

/// A quarantine policy (Exchange's `New-QuarantinePolicy`): what end users may do with the items
/// it governs, and whether they get quarantine notifications (`ESNEnabled`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantinePolicy {
    pub name: String,
    pub permissions: QuarantinePermissions,
    pub notifications: bool,
    /// One of Exchange's built-in policies (not stored, not changed, not removed).
    pub built_in: bool,
}

impl QuarantinePolicy {
    /// Exchange's built-in policies (exchange-online-behaviour.md §6.4): `AdminOnlyAccessPolicy`
    /// (no access), `DefaultFullAccessPolicy` (full access), `DefaultFullAccessWithNotification
    /// Policy` and `NotificationEnabledPolicy` (full access, notifications on).
    pub fn built_ins() -> Vec<QuarantinePolicy> {
        use hato_core::message::{
            ADMIN_ONLY_ACCESS_POLICY, DEFAULT_FULL_ACCESS_POLICY,
            DEFAULT_FULL_ACCESS_WITH_NOTIFICATION_POLICY,
        };
        let b = |name: &str, permissions, notifications| QuarantinePolicy {
            name: name.to_string(),
            permissions,
            notifications,
            built_in: true,
        };
        vec![
            b(
                ADMIN_ONLY_ACCESS_POLICY,
                QuarantinePermissions::NO_ACCESS,
                false,
            ),
            b(
                DEFAULT_FULL_ACCESS_POLICY,
                QuarantinePermissions::FULL_ACCESS,
                false,
            ),
            b(
                DEFAULT_FULL_ACCESS_WITH_NOTIFICATION_POLICY,
                QuarantinePermissions::FULL_ACCESS,
                true,
            ),
            b(
                "NotificationEnabledPolicy",
                QuarantinePermissions::FULL_ACCESS,
                true,
            ),
        ]
    }

    /// The built-in policy of this name (any case).
    pub fn built_in(name: &str) -> Option<QuarantinePolicy> {
        Self::built_ins()
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
    }
}

// ----- end-user quarantine notifications ----------------------------------------------------------

/// A recipient with items held since its last digest (of the kinds users manage, not expired):
/// what the digest task considers, with what it needs to decide whether one is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCandidate {
    pub tenant_id: TenantId,
    /// The canonical address the items were held for.
    pub recipient: String,
    /// When the last digest went out, if one did.
    pub last_sent: Option<Timestamp>,
    /// The newest quarantine time the last digest covered.
    pub covered_until: Option<Timestamp>,
    /// The newest quarantine time among the new items: the next digest covers up to it.
    pub newest: Timestamp,
}

/// One recipient's items for a digest: at most the limit asked for, newest first, and how
/// many there are in all.
#[derive(Clone, Debug)]
pub struct DigestItems {
    pub items: Vec<QuarantineItem>,
    pub total: usize,
}

/// What the store keeps of a recipient's last digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestRecord {
    pub last_sent: Timestamp,
    pub covered_until: Timestamp,
}

// ----- malware filter policy ----------------------------------------------------------------------

/// Exchange's default `FileTypes` of the common attachments filter (`New-MalwareFilterPolicy`,
/// 53 types; exchange-online-behaviour.md §4.2).
pub const DEFAULT_FILE_TYPES: [&str; 53] = [
    "ace", "ani", "apk", "app", "appx", "arj", "bat", "cab", "cmd", "com", "deb", "dex", "dll",
    "docm", "elf", "exe", "hta", "img", "iso", "jar", "jnlp", "kext", "lha", "lib", "library",
    "lnk", "lzh", "macho", "msc", "msi", "msix", "msp", "mst", "pif", "ppa", "ppam", "reg", "rev",
    "scf", "scr", "sct", "sys", "uif", "vb", "vbe", "vbs", "vxd", "wsc", "wsf", "wsh", "xll", "xz",
    "z",
];

/// `FileTypeAction`: what the common attachments filter does with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FileTypeAction {
    /// NDR to the sender; the message is not kept (Exchange's default).
    #[default]
    Reject,
    Quarantine,
}

/// `Action`: what the malware filter does with a message in which it found malware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MalwareAction {
    /// Quarantined; nothing is delivered (Exchange's default).
    #[default]
    DeleteMessage,
    /// Delivered with every attachment replaced by `Malware Alert Text.txt` holding the
    /// default alert text; the original is quarantined.
    DeleteAttachmentAndUseDefaultAlert,
    /// The same with `custom_alert_text`.
    DeleteAttachmentAndUseCustomAlert,
}

/// What the malware filter does with an encrypted archive it cannot look into (hato's own
/// setting: Exchange passes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptedArchiveAction {
    #[default]
    Pass,
    Quarantine,
}

/// A tenant's malware filter policy, as plain data: Exchange's `MalwareFilterPolicy` parameters
/// in snake case, with Exchange's defaults (`Default` is the tenant's default policy before
/// anyone changed it). Fields missing from a stored policy take their defaults, so a newer
/// hato reads an older row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MalwareFilterPolicy {
    /// `Name`: `Default` for the tenant's default policy.
    pub name: String,
    /// A custom policy's `Priority` (0 first; unique per tenant); `None` for the default
    /// policy, which comes after every custom one.
    pub priority: Option<u32>,
    /// A custom policy's rule is on (`Enable-`/`Disable-MalwareFilterRule`); a disabled one is
    /// skipped. The default policy cannot be disabled.
    pub enabled: bool,
    /// A custom policy's rule conditions (`New-MalwareFilterRule`): `SentTo` (addresses),
    /// `SentToMemberOf` (group addresses), `RecipientDomainIs` (domains). Conditions of different
    /// kinds must all hold, the values of one kind are alternatives; a custom policy with none
    /// applies to nobody (Exchange requires one). Canonical, lower case.
    pub sent_to: Vec<String>,
    pub sent_to_member_of: Vec<String>,
    pub recipient_domain_is: Vec<String>,
    pub enable_file_filter: bool,
    /// Lower-case extensions without the dot, as Exchange lists them.
    pub file_types: Vec<String>,
    pub file_type_action: FileTypeAction,
    pub action: MalwareAction,
    pub custom_alert_text: String,
    pub enable_internal_sender_admin_notifications: bool,
    pub internal_sender_admin_address: Option<String>,
    pub enable_external_sender_admin_notifications: bool,
    pub external_sender_admin_address: Option<String>,
    pub encrypted_archive_action: EncryptedArchiveAction,
    /// `QuarantineTag`: the quarantine policy of the items this policy quarantines (default
    /// `AdminOnlyAccessPolicy`). Whatever it permits, a user only ever requests the release
    /// of malware (`QuarantinePermissions::for_kind`).
    pub quarantine_tag: String,
}

impl Default for MalwareFilterPolicy {
    fn default() -> Self {
        MalwareFilterPolicy {
            name: DEFAULT_MALWARE_FILTER.into(),
            priority: None,
            enabled: true,
            sent_to: Vec::new(),
            sent_to_member_of: Vec::new(),
            recipient_domain_is: Vec::new(),
            enable_file_filter: true,
            file_types: DEFAULT_FILE_TYPES.iter().map(|t| t.to_string()).collect(),
            file_type_action: FileTypeAction::Reject,
            action: MalwareAction::DeleteMessage,
            custom_alert_text: String::new(),
            enable_internal_sender_admin_notifications: false,
            internal_sender_admin_address: None,
            enable_external_sender_admin_notifications: false,
            external_sender_admin_address: None,
            encrypted_archive_action: EncryptedArchiveAction::Pass,
            quarantine_tag: hato_core::message::ADMIN_ONLY_ACCESS_POLICY.into(),
        }
    }
}

/// See [`MalwareFilterStore::content_policy_versions`](crate::MalwareFilterStore::content_policy_versions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentPolicyVersions {
    pub directory: i64,
    pub transport_rules: i64,
    pub malware_filters: i64,
    /// The tenant's anti-spam policies (`SpamFilterStore`).
    pub spam_filters: i64,
    /// The tenant's personalised classifier model (`SpamFilterStore::spam_tenant_model`).
    pub spam_model: i64,
}

/// The name of every tenant's default malware filter policy.
pub const DEFAULT_MALWARE_FILTER: &str = "Default";

impl MalwareFilterPolicy {
    pub fn is_default(&self) -> bool {
        self.priority.is_none()
    }

    /// Whether this policy applies to `recipient` (canonical address): the default always; a
    /// custom one when enabled and every condition it has holds (`is_member_of(group)` answers
    /// for `SentToMemberOf`, through the directory).
    pub fn applies_to(&self, recipient: &str, is_member_of: impl Fn(&str) -> bool) -> bool {
        if self.is_default() {
            return true;
        }
        if !self.enabled
            || (self.sent_to.is_empty()
                && self.sent_to_member_of.is_empty()
                && self.recipient_domain_is.is_empty())
        {
            return false;
        }
        let recipient = recipient.to_lowercase();
        let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
        (self.sent_to.is_empty() || self.sent_to.contains(&recipient))
            && (self.recipient_domain_is.is_empty()
                || self.recipient_domain_is.iter().any(|d| *d == domain))
            && (self.sent_to_member_of.is_empty()
                || self.sent_to_member_of.iter().any(|g| is_member_of(g)))
    }
}

/// The policy for one recipient, as Exchange picks it: the first custom policy by priority
/// whose conditions hold, else the default (never a merge of several). `policies` as
/// [`MalwareFilterStore::malware_filters`](crate::MalwareFilterStore::malware_filters) lists
/// them (custom by priority, the default last); `None` only when the list has no default.
pub fn malware_policy_for<'a>(
    policies: &'a [MalwareFilterPolicy],
    recipient: &str,
    is_member_of: impl Fn(&str) -> bool,
) -> Option<&'a MalwareFilterPolicy> {
    policies
        .iter()
        .find(|p| p.applies_to(recipient, &is_member_of))
}

// ----- anti-spam policies and users' junk reports ------------------------------------------------

/// The name of every tenant's default anti-spam policy (Exchange's `Default`).
pub const DEFAULT_SPAM_FILTER: &str = "Default";

/// The recipient conditions and exceptions of a custom policy's rule (Exchange's
/// `HostedContentFilterRule`: `SentTo`, `SentToMemberOf`, `RecipientDomainIs` and their
/// `ExceptIf*` forms). Canonical, lower case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecipientConditions {
    pub sent_to: Vec<String>,
    pub sent_to_member_of: Vec<String>,
    pub recipient_domain_is: Vec<String>,
    pub except_if_sent_to: Vec<String>,
    pub except_if_sent_to_member_of: Vec<String>,
    pub except_if_recipient_domain_is: Vec<String>,
}

impl RecipientConditions {
    /// Whether any condition (not exception) is given: a rule needs one (Exchange refuses a
    /// `New-HostedContentFilterRule` without).
    pub fn has_condition(&self) -> bool {
        !(self.sent_to.is_empty()
            && self.sent_to_member_of.is_empty()
            && self.recipient_domain_is.is_empty())
    }

    /// Whether they hold for `recipient` (canonical address): every kind of condition given
    /// holds (one value of a kind is enough) and no exception does (Exchange: "conditions and
    /// exceptions of different types use AND logic; the values of one type use OR logic").
    pub fn hold_for(&self, recipient: &str, is_member_of: impl Fn(&str) -> bool) -> bool {
        if !self.has_condition() {
            return false;
        }
        let recipient = recipient.to_lowercase();
        let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
        let conditions = (self.sent_to.is_empty() || self.sent_to.contains(&recipient))
            && (self.recipient_domain_is.is_empty()
                || self.recipient_domain_is.iter().any(|d| *d == domain))
            && (self.sent_to_member_of.is_empty()
                || self.sent_to_member_of.iter().any(|g| is_member_of(g)));
        let excepted = self.except_if_sent_to.contains(&recipient)
            || self
                .except_if_recipient_domain_is
                .iter()
                .any(|d| *d == domain)
            || self
                .except_if_sent_to_member_of
                .iter()
                .any(|g| is_member_of(g));
        conditions && !excepted
    }
}

/// A tenant's anti-spam policy (Exchange's `HostedContentFilterPolicy` with its
/// `HostedContentFilterRule`): its name, place and conditions, and the settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpamFilterPolicyRecord {
    /// `Default` for the tenant's default policy.
    pub name: String,
    /// A custom policy's priority (0 first; unique per tenant); `None` for the default, which
    /// comes after every custom one.
    pub priority: Option<u32>,
    /// A custom policy's rule is on (`Enable-`/`Disable-HostedContentFilterRule`); the default
    /// is always on.
    pub enabled: bool,
    /// A custom policy's rule (the default has none: it applies to everyone).
    pub conditions: RecipientConditions,
    pub policy: hato_protection::spam::SpamFilterPolicy,
}

impl Default for SpamFilterPolicyRecord {
    fn default() -> Self {
        SpamFilterPolicyRecord {
            name: DEFAULT_SPAM_FILTER.into(),
            priority: None,
            enabled: true,
            conditions: RecipientConditions::default(),
            policy: hato_protection::spam::SpamFilterPolicy::default(),
        }
    }
}

impl SpamFilterPolicyRecord {
    pub fn is_default(&self) -> bool {
        self.priority.is_none()
    }

    /// Whether this policy applies to `recipient`: the default always; a custom one when
    /// enabled and its rule holds ([`RecipientConditions::hold_for`]).
    pub fn applies_to(&self, recipient: &str, is_member_of: impl Fn(&str) -> bool) -> bool {
        self.is_default() || (self.enabled && self.conditions.hold_for(recipient, is_member_of))
    }
}

/// The anti-spam policy for one recipient, as Exchange picks it: the first enabled custom
/// policy by priority whose rule holds, else the default (never a merge of several).
/// `policies` as [`SpamFilterStore::spam_filters`](crate::SpamFilterStore::spam_filters) lists
/// them (custom by priority, the default last); `None` only when the list has no default.
pub fn spam_policy_for<'a>(
    policies: &'a [SpamFilterPolicyRecord],
    recipient: &str,
    is_member_of: impl Fn(&str) -> bool,
) -> Option<&'a SpamFilterPolicyRecord> {
    policies
        .iter()
        .find(|p| p.applies_to(recipient, &is_member_of))
}

/// What a user says of a delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpamReportVerdict {
    Junk,
    NotJunk,
}

impl SpamReportVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            SpamReportVerdict::Junk => "junk",
            SpamReportVerdict::NotJunk => "not-junk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "junk" => Some(SpamReportVerdict::Junk),
            "not-junk" | "notjunk" => Some(SpamReportVerdict::NotJunk),
            _ => None,
        }
    }
}

/// A junk / not-junk report to record ([`SpamFilterStore::report_spam`](crate::SpamFilterStore::report_spam)).
#[derive(Clone, Debug)]
pub struct NewSpamReport {
    pub tenant: TenantId,
    pub trace_id: String,
    /// The recipient address as traced (canonical).
    pub recipient: String,
    /// Only a message delivered to this mailbox (a user reports their own mail); `None` for
    /// an admin of the tenant.
    pub mailbox: Option<MailboxId>,
    pub verdict: SpamReportVerdict,
    /// Who reports: a user's address, else the role (`tenant-admin of contoso`).
    pub reporter: String,
    pub now: Timestamp,
}

/// A stored report: what the classifier learns from, in order of `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpamReport {
    /// Increases with every report recorded (a replaced report gets a new id, after the others).
    pub id: i64,
    pub tenant: TenantId,
    pub trace_id: String,
    pub recipient: String,
    pub verdict: SpamReportVerdict,
    /// The verdict this report replaced (the same reporter said the opposite before), so a
    /// learner can take back what it learnt from that one.
    pub replaces: Option<SpamReportVerdict>,
    pub reporter: String,
    pub reported: Timestamp,
    /// The delivered message's content (a blob for [`MailStore::blob`](crate::MailStore::blob));
    /// kept from garbage collection while the report is stored.
    pub blob: String,
    /// The sending client's IP as traced (for its reputation).
    pub client_ip: String,
}

/// What [`SpamFilterStore::report_spam`](crate::SpamFilterStore::report_spam) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpamReportOutcome {
    pub report: SpamReport,
    /// `false` when the same reporter had already said the same of this message: nothing
    /// changed and nothing is to be counted again.
    pub recorded: bool,
}

/// What moving a message between Inbox and Junk Email did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailMove {
    pub item: MailItem,
    /// The report the move made (Junk→Inbox: not junk; Inbox→Junk: junk); `None` when the
    /// message stayed in its folder or its trace is gone (retention).
    pub report: Option<SpamReportOutcome>,
}

// ----- inbound connectors and the organisation's settings (issue 10, item 3) ------------------

/// A tenant may have at most this many inbound connectors.
pub const INBOUND_CONNECTORS_MAX: usize = 100;

/// A stored inbound connector: its name (unique per tenant, any case), its settings
/// (`hato_protection::connector::InboundConnector`, stored as JSON), when it was made and last
/// changed. `created` orders connectors that share an IP (the attribution rule's last resort).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundConnectorRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant: String,
    pub name: String,
    pub connector: hato_protection::connector::InboundConnector,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A tenant may have at most this many outbound connectors.
pub const OUTBOUND_CONNECTORS_MAX: usize = 100;

/// A stored outbound connector (issue 10, item 4): its name (unique per tenant, any case), its
/// settings (`hato_protection::outbound_connector::OutboundConnector`, stored as JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundConnectorRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant: String,
    pub name: String,
    pub connector: hato_protection::outbound_connector::OutboundConnector,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A tenant's organisation-wide settings (Exchange's `Set-OrganizationConfig`), those hato has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrganizationConfig {
    /// `RejectDirectSend` (default `false`): anonymous mail whose MAIL FROM domain is one of the
    /// tenant's accepted domains, from a client no inbound connector of the tenant matches, is
    /// refused (`550 5.7.68`).
    pub reject_direct_send: bool,
}

// ----- DKIM signing per tenant domain (issue 10, item 6) --------------------------------------

/// The key algorithm of a DKIM selector: `rsa` (rsa-sha256, RFC 6376 §3.3) or `ed25519`
/// (ed25519-sha256, RFC 8463).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DkimKeyType {
    Rsa,
    Ed25519,
}

impl DkimKeyType {
    /// The `k=` tag's value (RFC 6376 §3.6.1, RFC 8463 §4.2), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimKeyType::Rsa => "rsa",
            DkimKeyType::Ed25519 => "ed25519",
        }
    }

    pub fn parse(s: &str) -> Option<DkimKeyType> {
        match s {
            "rsa" => Some(DkimKeyType::Rsa),
            "ed25519" => Some(DkimKeyType::Ed25519),
            _ => None,
        }
    }
}

/// A key to store for a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDkimKey {
    pub key_type: DkimKeyType,
    /// RSA's modulus size in bits (1024 or 2048); 256 for Ed25519.
    pub bits: u32,
    /// The private key, PKCS#8 DER (RFC 5208). A secret: the database holds it.
    pub private_key: Vec<u8>,
    /// What the DNS record's `p=` carries, DER before base64: the SubjectPublicKeyInfo of an RSA
    /// key (RFC 6376 §3.6.1), the raw 32 bytes of an Ed25519 key (RFC 8463 §4.2).
    pub public_key: Vec<u8>,
}

/// One of a config's two selectors and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimSelectorKey {
    /// `selector1` or `selector2` (Exchange's names).
    pub selector: String,
    pub key: NewDkimKey,
    /// When this key was made (by the add, or by the rotation that replaced it).
    pub created: Timestamp,
}

/// A DKIM signing config of one accepted domain (Exchange's `New-DkimSigningConfig`): two
/// selectors, the one that signs, whether signing is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimSigningConfig {
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant: String,
    /// The accepted domain, canonical (lower case).
    pub domain: String,
    pub enabled: bool,
    /// 1 or 2: the selector that signs.
    pub active: u8,
    pub selectors: [DkimSelectorKey; 2],
    pub created: Timestamp,
    /// The last rotation, if any.
    pub rotated: Option<Timestamp>,
}

impl DkimSigningConfig {
    /// The selector that signs.
    pub fn active_selector(&self) -> &DkimSelectorKey {
        &self.selectors[usize::from(self.active.saturating_sub(1)).min(1)]
    }
}

// ----- Outbound spam (issue 10, item 8) --------------------------------------------------------

/// A restricted sender (Exchange's "Restricted entities", `Get-BlockedSenderAddress`,
/// `exchange-online-behaviour.md` §7.3): its submissions and relayed mail are refused with
/// `550 5.1.8`; it still receives mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestrictedSender {
    pub tenant_id: TenantId,
    /// The sender's address, canonical: the authenticated mailbox's primary address, or the
    /// MAIL FROM address an on-premises connector relayed for.
    pub sender: String,
    /// The policy's action that restricted it (`block-user`, `block-user-for-today`).
    pub action: String,
    /// Why, as the trace and the alert say it.
    pub reason: String,
    pub blocked_at: Timestamp,
    /// When the restriction lifts by itself (the next UTC day for `block-user-for-today`);
    /// `None`: when an admin unblocks it.
    pub until: Option<Timestamp>,
}

/// One message's recipients counted for its sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundRecipients {
    pub external: u32,
    pub internal: u32,
}

// ----- the web console ----------------------------------------------------------------------------

/// A console sign-in session (its id is kept only as a hash): who it acts as, and its times for
/// the absolute and idle expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub role: hato_core::auth::Role,
    pub tenant_id: Option<TenantId>,
    /// The mailbox a user or a role-group member signed in as; `None` for the operator.
    pub mailbox_id: Option<MailboxId>,
    /// Who signed in, as the console shows it (an address, or `operator`).
    pub name: String,
    pub created: Timestamp,
    pub last_seen: Timestamp,
}

/// Mail flow since a time, as the console's home page counts it (per recipient but `received`
/// and `refused`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailFlowCounts {
    /// Messages accepted.
    pub received: u64,
    /// Recipients delivered (to a mailbox, or handed to the next server).
    pub delivered: u64,
    /// Recipients that failed (an NDR was owed).
    pub failed: u64,
    /// Connections and commands the edge refused (connection log rows with a 4xx/5xx reply).
    pub refused: u64,
    /// Recipients with a malware verdict.
    pub malware: u64,
    /// Transport rule actions taken.
    pub rule_actions: u64,
    /// Recipients filtered as spam (to Junk Email or quarantine).
    pub spam: u64,
    /// Recipients quarantined (malware, spam or a rule).
    pub quarantined: u64,
}

/// An address and how many recipients it counted for: at least `count`, at most `count +
/// error` (`error` is 0 while the hour's summaries held a counter for every address they saw,
/// see `heavy_hitters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressCount {
    pub address: String,
    pub count: u64,
    pub error: u64,
}

/// Counters in each hour's summary of top senders or recipients (per tenant, and for every
/// tenant): with a day's 24 hours, Home reads at most 2 × 25 × 1,024 rows whatever the
/// traffic; an address sending more than 1/1,024 of an hour's mail always keeps its counter
/// (with 400,000 single-use senders a day, ~17,000 an hour: any sender of 17 or more an hour).
pub const TOP_CAPACITY: usize = 1024;

/// Whose saved message trace queries: a mailbox's (an admin signed in as their mailbox), or,
/// without a mailbox, the tenant's admins' (a token) or the operator's (neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedQueryOwner {
    pub tenant_id: Option<TenantId>,
    pub mailbox_id: Option<MailboxId>,
}

/// A message trace query saved under a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedTraceQuery {
    pub name: String,
    /// The query string the trace page and `GET /api/v1/trace` take (`sender=…&status=…`).
    pub query: String,
    pub created: Timestamp,
}

/// The most saved queries one owner keeps.
pub const SAVED_QUERIES_MAX: usize = 100;

/// An outbound pool's warm-up plan (issue 10 item 9; seed D4): how many recipients the pool may
/// deliver each UTC day of the plan, day 1 being the UTC day of `start`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WarmupPlan {
    /// The pool's name (`normal`, `high-risk`).
    pub pool: String,
    /// `30-day`, `15-day` or `custom`.
    pub kind: String,
    /// The monthly volume the plan was made from (`None` for `custom`).
    pub monthly_volume: Option<u64>,
    /// One allowance per plan day.
    pub daily_limits: Vec<u64>,
    pub start: Timestamp,
    pub created: Timestamp,
}

/// What one pool did on one UTC day (counted while the pool has a plan; kept, so a restart
/// does not reset them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarmupDay {
    pub pool: String,
    /// Days since 1970-01-01, UTC.
    pub day: i64,
    /// Recipients the remote servers accepted.
    pub sent: u64,
    /// Recipients deferred by pacing (the day's allowance used up).
    pub deferred: u64,
    /// Allowance taken away from the day by throttling replies.
    pub reduced: u64,
    /// Throttling back-offs that began on the day.
    pub throttled: u64,
}

/// A pool's back-off from a destination domain after a throttling reply (`421`/`451 4.7.x`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundBackoff {
    pub pool: String,
    pub domain: String,
    /// Throttling replies in a row (no success between): the back-off grows with it.
    pub count: u32,
    /// No delivery from the pool to the domain before this.
    pub until: Timestamp,
    /// The reply that began the back-off (`421 4.7.0 Try again later`).
    pub last_reply: String,
    pub last_host: String,
    pub updated: Timestamp,
}

/// A throttling reply to record (`WarmupStore::record_throttle`).
#[derive(Clone, Debug)]
pub struct ThrottleReply {
    pub pool: String,
    pub domain: String,
    pub reply: String,
    pub host: String,
    /// The UTC day it counts for.
    pub day: i64,
    /// The back-off after the first throttling reply in a row, and its cap; it doubles with
    /// each further one.
    pub first_secs: u64,
    pub max_secs: u64,
    /// Allowance to take away from the day (a warm-up plan in force), 0 for none.
    pub reduce_by: u64,
}

/// What a listing page of recipients (the console's Recipients page) asks the store for: one
/// tenant's (or every tenant's), those whose address or display name contains `filter` (any
/// case), sorted, one page. The store reads only that page (plus one row, to tell whether more
/// follow), so a tenant of 100,000 mailboxes costs one page's worth.
#[derive(Clone, Debug, Default)]
pub struct RecipientPage {
    pub tenant: Option<TenantId>,
    /// Lower-cased by the store; empty for every row.
    pub filter: String,
    pub sort: RecipientSort,
    pub descending: bool,
    pub offset: usize,
    /// At most 1,000 rows are read, whatever is asked.
    pub limit: usize,
}

/// The column a recipient listing is sorted by (the address breaks ties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecipientSort {
    #[default]
    Address,
    DisplayName,
    /// A mailbox's type (`user`, `shared`); contacts sort by address.
    Type,
    /// A mailbox's quota; contacts sort by address.
    Quota,
    /// What a mailbox uses; contacts sort by address.
    Used,
}

/// The most rows one [`RecipientPage`] reads.
pub const RECIPIENT_PAGE_MAX: usize = 1000;

/// A mailbox's junk email configuration (Exchange's `Get-MailboxJunkEmailConfiguration`):
/// whether its safe and blocked senders act, and the two lists (normalized entries, sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JunkEmailConfig {
    pub mailbox_id: MailboxId,
    /// `Enabled` (default true).
    pub enabled: bool,
    /// `TrustedSendersAndDomains`: Safe Senders.
    pub trusted_senders_and_domains: Vec<String>,
    /// `BlockedSendersAndDomains`: Blocked Senders.
    pub blocked_senders_and_domains: Vec<String>,
}

/// A change of one list: Exchange's multi-valued parameter, either a whole new value or
/// `@{Add=...; Remove=...}`. Entries are normalized by the store
/// (`hato_protection::spam::junk::normalize_entry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JunkListChange {
    #[default]
    Keep,
    Replace(Vec<String>),
    Edit {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

/// `Set-MailboxJunkEmailConfiguration`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JunkEmailChange {
    pub enabled: Option<bool>,
    pub trusted: JunkListChange,
    pub blocked: JunkListChange,
}

//! The queue runner: delivers queued recipients to local mailboxes, fails what cannot be
//! delivered, sends NDRs, and applies trace and connection log retention.
//!
//! Delivery is idempotent: a message's stored form (Return-Path + content) is written to the
//! content-addressed blob directory first, then one transaction files it in each mailbox and
//! marks the recipients delivered. A crash between the two only leaves a blob that the retried
//! delivery writes again under the same name, so every acknowledged message is delivered once.
//!
//! This module holds the agent and its loop (`run`, `step`, local delivery, relay recipients;
//! outside recipients are `crate::outbound`'s);
//! `groups.rs` routes group recipients (expansion, moderation, Microsoft 365 group mailboxes) and
//! `generated.rs` builds the messages hato writes itself (NDRs, approval requests, join requests,
//! delist notices). Both extend [`DeliveryAgent`] and use only what is here. `notify.rs` builds
//! the content stages' notices to admins (malware admin notifications, incident reports) with
//! `generated.rs`'s helpers.

mod generated;
mod groups;
mod notify;
#[cfg(test)]
mod tests;

pub use generated::{DelistNotice, DelistNoticeKind, delist_notice, join_request_notice};
pub(crate) use generated::{derived_trace_id, generated};
pub use notify::{
    INCIDENT_REPORT_MAX_ORIGINAL, IncidentReport, MAX_LISTED_CONDITIONS, MAX_LISTED_DETECTIONS,
    MAX_LISTED_RECIPIENTS, MalwareNotice, OutboundSpamAlert, ReportedRule, SenderScope,
    incident_report, incident_report_addresses, malware_admin_notification, notification_recipient,
    outbound_spam_alert, reported_rules,
};

use crate::groupmail;
use crate::routing::{Resolution, platform_postmaster, resolve};
use crate::summarize;
use hato_core::directory::Route;
use hato_core::id::NodeId;
use hato_core::message::QuarantineKind;
use hato_core::reply;
use hato_core::{Address, Clock, Reason, Refusal, Stage, Timestamp};
use hato_directory::Directory;
use hato_store::{
    Deferral, DeferredWork, DeliveryOutcome, Folder, GroupOutcome, Lease, ModerationState,
    NewGroupItem, NewMessage, QueueWork, QueuedMessage, QueuedRecipient, RecipientOutcome,
    StagedBlob, Store, StoreError,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Days of connection log kept unless told otherwise (`edge.connection_log_retention_days`).
pub const DEFAULT_CONNECTION_LOG_RETENTION_DAYS: u32 = 30;

/// Days a quarantined message is kept unless told otherwise (`[quarantine] retention_days`):
/// Exchange keeps malware and mail flow rule quarantine 30 days, not configurable, and spam
/// quarantine `QuarantineRetentionPeriod` days (1-30; 30 in the Standard and Strict presets).
pub const DEFAULT_QUARANTINE_RETENTION_DAYS: u32 = 30;

pub struct DeliveryAgent {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
    hostname: String,
    queued: Arc<Notify>,
    trace_retention_days: u32,
    /// Days of connection log kept (`edge.connection_log_retention_days`).
    connection_log_retention_days: AtomicU32,
    /// Days a quarantined message is kept, per kind (in `QuarantineKind::ALL`'s order).
    quarantine_retention_days: [AtomicU32; QuarantineKind::ALL.len()],
    /// The platform's postmaster mailbox address (`smtp.postmaster`), if any.
    postmaster: Option<Address>,
    /// This process's name on the leases of the recipients it works on.
    node: NodeId,
    /// A recipient still deferred this long after its message arrived gets its sender one delay
    /// notice (`[outbound] delay_notice_secs`).
    delay_notice_secs: AtomicU64,
    /// The outbound agent's expiry (`[outbound] expiration_secs`): outside recipients are tried
    /// no longer than this, whatever the store's expiry; 0 for none.
    remote_expiration_secs: AtomicU64,
}

/// Exchange sends a delay notice (a DSN with `Action: delayed`) after a message has waited 4
/// hours (reference §9.4: `DelayNotificationTimeout`, 4 hours by default).
pub const DEFAULT_DELAY_NOTICE_SECS: u64 = 4 * 3600;

const BATCH: usize = 512;
/// How often mail for an unconfigured platform postmaster is looked at again: a configuration
/// change (a restart, or the mailbox created) takes effect within this.
const POSTMASTER_RETRY_SECS: i64 = 10;
/// Blob files younger than this are never collected (a delivery may be about to reference one).
const BLOB_GC_MIN_AGE: Duration = Duration::from_secs(3600);
/// Exchange expires unanswered moderation requests after two days.
const MODERATION_EXPIRY_SECS: i64 = 2 * 86_400;

/// How long the recipients one step takes stay leased to this node: far longer than a step takes
/// (its work is bounded: `BATCH` recipients, `DUE_CONTENT_BUDGET` of content), so no other node
/// takes them while this one works; should this node die, others take them once it runs out.
/// The step ends every lease it took (completing or deferring each recipient); only a failure
/// of the store as a whole leaves them to run out.
const LEASE_SECS: i64 = 300;

/// A recipient (or an NDR) whose processing failed — a store error, a directory that cannot be
/// loaded, unreadable content: failures of hato itself, retried on the store's backoff schedule
/// until the message expires (a retry often finds the cause gone: a refused write, a directory
/// being changed).
fn processing_failed(recipients: Vec<i64>, error: &dyn std::fmt::Display) -> DeferredWork {
    DeferredWork {
        recipients,
        work: QueueWork::Delivery,
        deferral: Deferral::new(
            reply::processing_deferred(error),
            Reason::new(Stage::Queue, format!("Processing failed: {error}")),
        ),
    }
}

/// The routing decision for one group recipient (and what to file first, for a group mailbox).
struct GroupWork {
    recipient: i64,
    message: i64,
    outcome: GroupOutcome,
    /// For a Microsoft 365 group: the item to file, and the headers that thread it.
    item: Option<(NewGroupItem, groupmail::ThreadHeaders)>,
    /// For a held message: the approval request to the moderators.
    notice: Option<NewMessage>,
}

/// What one step prepares (without writing anything).
struct Prepared {
    outcomes: Vec<DeliveryOutcome>,
    groups: Vec<GroupWork>,
    /// Recipients that could not be prepared, and why.
    deferrals: Vec<DeferredWork>,
    /// Messages looked at.
    messages: usize,
}

/// RFC 5321 §4.4: the final delivery adds Return-Path with the envelope sender (without control
/// characters, so that no stored sender can end the field: RFC 5322 §2.2). For a spooled message
/// this is the part before its queue file.
fn stored_form(m: &QueuedMessage) -> Vec<u8> {
    let sender = crate::headers::without_controls(&m.sender);
    let mut stored = format!("Return-Path: <{sender}>\r\n").into_bytes();
    // The recipients' own fields (their antispam report; `deliver` is given recipients with
    // one stamp) go under hato's Received field, which starts every queued content, as
    // Exchange's antispam report sits under its Received fields.
    let stamp = m.recipients.first().map_or("", |r| r.stamp.as_str());
    let at = if stamp.is_empty() {
        0
    } else {
        first_field_end(&m.content)
    };
    stored.extend_from_slice(&m.content[..at]);
    stored.extend_from_slice(stamp.as_bytes());
    stored.extend_from_slice(&m.content[at..]);
    stored
}

/// Where the first header field of `content` ends (after its CRLF, past its folded lines):
/// linear in that field.
fn first_field_end(content: &[u8]) -> usize {
    let mut at = 0;
    while let Some(i) = content[at..].windows(2).position(|w| w == b"\r\n") {
        at += i + 2;
        if !matches!(content.get(at), Some(b' ' | b'\t')) {
            return at;
        }
    }
    0
}

/// Queues a message hato generated. Its trace id is derived from what it answers
/// (`generated::derived_trace_id`), so the store's refusal of a trace id it already has means
/// that a first attempt (before a crash, or a replayed step) queued this very message: done.
async fn enqueue_generated(store: &dyn Store, message: NewMessage) -> Result<(), StoreError> {
    match store.enqueue(message).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn calendar_to_json(c: &groupmail::CalendarItem) -> String {
    serde_json::json!({
        "uid": c.uid,
        "sequence": c.sequence,
        "cancelled": c.method == groupmail::CalendarMethod::Cancel,
        "summary": c.summary,
        "location": c.location,
        "organizer": c.organizer,
        "start": c.start,
        "end": c.end,
        "all_day": c.all_day,
    })
    .to_string()
}

fn calendar_from_json(text: &str) -> Option<groupmail::CalendarItem> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Some(groupmail::CalendarItem {
        method: if v["cancelled"].as_bool().unwrap_or(false) {
            groupmail::CalendarMethod::Cancel
        } else {
            groupmail::CalendarMethod::Request
        },
        uid: s("uid"),
        sequence: v["sequence"].as_u64().unwrap_or(0) as u32,
        summary: s("summary"),
        location: s("location"),
        organizer: s("organizer"),
        start: s("start"),
        end: s("end"),
        all_day: v["all_day"].as_bool().unwrap_or(false),
    })
}

impl DeliveryAgent {
    pub fn new(
        directory: Arc<Directory>,
        clock: Arc<dyn Clock>,
        hostname: String,
        queued: Arc<Notify>,
        trace_retention_days: u32,
        postmaster: Option<Address>,
        node: NodeId,
    ) -> Arc<Self> {
        let store = directory.store().clone();
        Arc::new(DeliveryAgent {
            store,
            directory,
            clock,
            hostname,
            queued,
            trace_retention_days,
            connection_log_retention_days: AtomicU32::new(DEFAULT_CONNECTION_LOG_RETENTION_DAYS),
            quarantine_retention_days: std::array::from_fn(|_| {
                AtomicU32::new(DEFAULT_QUARANTINE_RETENTION_DAYS)
            }),
            postmaster,
            node,
            delay_notice_secs: AtomicU64::new(DEFAULT_DELAY_NOTICE_SECS),
            remote_expiration_secs: AtomicU64::new(24 * 3600),
        })
    }

    /// Delay notices go out for recipients still deferred `secs` after arrival (4 hours by
    /// default).
    pub fn set_delay_notice_secs(&self, secs: u64) {
        self.delay_notice_secs.store(secs, Ordering::Relaxed);
    }

    /// The outbound agent's expiry, for the delay notice's `Will-Retry-Until` of outside
    /// recipients.
    pub fn set_remote_expiration_secs(&self, secs: u64) {
        self.remote_expiration_secs.store(secs, Ordering::Relaxed);
    }

    /// Connection log rows older than `days` go with the hourly retention, like trace
    /// (`edge.connection_log_retention_days`, 30 by default).
    pub fn set_connection_log_retention_days(&self, days: u32) {
        self.connection_log_retention_days
            .store(days, Ordering::Relaxed);
    }

    /// Messages quarantined for `kind` from now on are kept `days` days (30 by default), then
    /// purged with the hourly retention.
    pub fn set_quarantine_retention_days(&self, kind: QuarantineKind, days: u32) {
        if let Some(slot) = QuarantineKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.quarantine_retention_days.get(i))
        {
            slot.store(days, Ordering::Relaxed);
        }
    }

    /// How long a message quarantined now for `kind` is kept.
    pub fn quarantine_retention_days(&self, kind: QuarantineKind) -> u32 {
        QuarantineKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.quarantine_retention_days.get(i))
            .map_or(DEFAULT_QUARANTINE_RETENTION_DAYS, |d| {
                d.load(Ordering::Relaxed)
            })
    }

    /// The node id this agent leases recipients under.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_purge: Option<Timestamp> = None;
        loop {
            let worked = match self.clone().step().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("delivery step failed: {e}");
                    0
                }
            };
            let now = self.clock.now();
            if last_purge.is_none_or(|t| now.0 - t.0 > 3_600_000_000) {
                last_purge = Some(now);
                match self
                    .store
                    .purge_trace(now.minus_days(self.trace_retention_days))
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!("trace retention: removed {n} old message(s)"),
                    Ok(_) => {}
                    Err(e) => tracing::error!("trace retention failed: {e}"),
                }
                let days = self.connection_log_retention_days.load(Ordering::Relaxed);
                match self.store.purge_connections(now.minus_days(days)).await {
                    Ok(n) if n > 0 => {
                        tracing::info!("connection log retention: removed {n} old row(s)")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!("connection log retention failed: {e}"),
                }
                match self.store.purge_quarantine(now).await {
                    Ok(n) if n > 0 => {
                        tracing::info!("quarantine retention: removed {n} expired item(s)")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!("quarantine retention failed: {e}"),
                }
                // Between steps, so no blob is being staged while unreferenced ones go; after
                // the quarantine purge, so expired items' content goes in the same pass.
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.collect_garbage(BLOB_GC_MIN_AGE))
                    .await
                {
                    Ok(Ok((rows, files))) if rows + files > 0 => {
                        tracing::info!(
                            "blob garbage collection: removed {rows} stored and {files} file blob(s)"
                        )
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("blob garbage collection failed: {e}"),
                    Err(e) => tracing::error!("blob garbage collection stopped: {e}"),
                }
            }
            if worked == 0 {
                tokio::select! {
                    _ = self.queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass: a batch of deliveries and group routings, expired moderation requests, then
    /// the NDRs they caused. Returns how much it did.
    ///
    /// What fails for one message or tenant (its directory cannot be loaded, a write conflicts,
    /// its content is unreadable) defers that message's recipients on the backoff schedule until
    /// they expire, with a `Defer` event saying why; the rest of the batch goes on. Only a
    /// failure of the store as a whole (it cannot read the queue or record a deferral) ends the
    /// step with an error.
    pub async fn step(self: Arc<Self>) -> Result<usize, StoreError> {
        let this = self.clone();
        let Prepared {
            outcomes,
            groups,
            mut deferrals,
            messages,
        } = tokio::task::spawn_blocking(move || this.prepare_deliveries())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        let now = self.clock.now();
        if !outcomes.is_empty() {
            for failed in self.store.complete_deliveries(outcomes, now).await? {
                deferrals.push(processing_failed(failed.recipients, &failed.error));
            }
        }
        for work in groups {
            let recipient = work.recipient;
            if let Err(e) = self.apply_group_work(work, now).await {
                deferrals.push(processing_failed(vec![recipient], &e));
            }
        }
        if !deferrals.is_empty() {
            for d in &deferrals {
                tracing::warn!(
                    "deferring recipient(s) {:?}: {}",
                    d.recipients,
                    d.deferral.reason
                );
            }
            self.store.defer(deferrals, now).await?;
        }
        let expired = self.expire_moderation().await?;
        let ndrs = self.store.due_ndrs(now, BATCH)?;
        let m = ndrs.len();
        let mut ndr_deferrals = Vec::new();
        for work in ndrs {
            let queued = match self.ndr_message(&work) {
                Ok(message) => enqueue_generated(&*self.store, message).await,
                Err(e) => Err(e),
            };
            if let Err(e) = queued {
                tracing::warn!("deferring the NDR for message {}: {e}", work.trace_id);
                ndr_deferrals.push(DeferredWork {
                    recipients: work.failed.iter().map(|f| f.id).collect(),
                    work: QueueWork::Ndr,
                    deferral: Deferral::new(
                        reply::ndr_deferred(&e),
                        Reason::new(
                            Stage::Queue,
                            format!("Generating the non-delivery report failed: {e}"),
                        ),
                    ),
                });
            }
        }
        if !ndr_deferrals.is_empty() {
            self.store.defer(ndr_deferrals, now).await?;
        }
        let notices = self.send_notices(now).await?;
        if m + notices > 0 {
            // The NDRs and notices themselves may be local deliveries.
            self.queued.notify_one();
        }
        Ok(messages + m + expired + notices)
    }

    /// Queues the delay and success notices that are due (RFC 3461 §4.1, RFC 3464), one per
    /// message and kind, and marks the recipients they report on (a `Dsn` event each). A notice
    /// that cannot be queued now (the store refused) is tried at the next step; one that cannot
    /// be built is given up, and trace says so.
    async fn send_notices(&self, now: Timestamp) -> Result<usize, StoreError> {
        let delay =
            i64::try_from(self.delay_notice_secs.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let arrived_by = now.plus_seconds(delay.saturating_neg());
        let remote =
            i64::try_from(self.remote_expiration_secs.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let works = self.store.due_notices(arrived_by, BATCH)?;
        let mut n = 0;
        for work in works {
            let retry_until: Vec<Timestamp> = work
                .recipients
                .iter()
                .map(|r| {
                    if r.remote && remote > 0 {
                        r.expires.min(work.received.plus_seconds(remote))
                    } else {
                        r.expires
                    }
                })
                .collect();
            let what = match work.kind {
                hato_store::NoticeKind::Delay => "Delay notice",
                hato_store::NoticeKind::Success => "Delivery notice",
            };
            let detail = match self.notice_message(&work, &retry_until) {
                Ok(message) => {
                    let trace_id = message.trace_id.clone();
                    if let Err(e) = enqueue_generated(&*self.store, message).await {
                        tracing::warn!("{what} for message {}: {e}; tried again", work.trace_id);
                        continue;
                    }
                    format!("{what} sent to the sender (trace id {trace_id})")
                }
                Err(e) => format!("No {what} was sent: generating it failed: {e}"),
            };
            let ids = work.recipients.iter().map(|r| r.id).collect();
            self.store.notices_done(work.kind, ids, detail, now).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes one group routing decision. Each write recognises a first attempt's work, so a
    /// retry after a crash between them completes the routing without doing anything twice:
    /// filing (once per recipient), the approval request (its trace id is derived from the
    /// recipient), then the decision itself (members are added once, a hold is recorded once).
    async fn apply_group_work(&self, work: GroupWork, now: Timestamp) -> Result<(), StoreError> {
        if let Some((mut item, headers)) = work.item {
            // Threaded now, after the items filed before it are committed, so that a reply in
            // the same batch as its parent finds it.
            item.conversation = groups::group_conversation(&*self.store, item.group_id, &headers)?;
            self.store.file_group_item(item).await?;
        }
        if let Some(notice) = work.notice {
            enqueue_generated(&*self.store, notice).await?;
            self.queued.notify_one();
        }
        self.store
            .route_group_recipient(work.recipient, work.message, work.outcome, now)
            .await?;
        Ok(())
    }

    /// Unanswered moderation requests expire after two days (Exchange's moderation expiry); the
    /// recipient fails and the sender is told by NDR. One that cannot be expired is logged and
    /// left for the next step; the others go on.
    async fn expire_moderation(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let expired = self.store.expired_moderation(now)?;
        let mut done = 0;
        for id in &expired {
            match self
                .store
                .decide_moderation(
                    *id,
                    ModerationState::Expired,
                    "system".into(),
                    String::new(),
                    now,
                )
                .await
            {
                Ok(_) => done += 1,
                Err(e) => tracing::error!("could not expire held message {id}: {e}"),
            }
        }
        Ok(done)
    }

    /// Takes a batch of due recipients (leased to this node) and decides what to do with each.
    /// Blocks on the store: runs on the blocking pool.
    fn prepare_deliveries(&self) -> Result<Prepared, StoreError> {
        let now = self.clock.now();
        let lease = Lease {
            owner: self.node.clone(),
            until: now.plus_seconds(LEASE_SECS),
        };
        let due = self.store.due_deliveries(now, &lease, BATCH)?;
        let messages = due.len();
        let mut outcomes = Vec::with_capacity(messages);
        let mut groups = Vec::new();
        let mut deferrals = Vec::new();
        for mut message in due {
            if let Some(error) = message.content_error.take() {
                deferrals.push(processing_failed(
                    message.recipients.iter().map(|r| r.id).collect(),
                    &error,
                ));
                continue;
            }
            let (group_rcpts, others): (Vec<QueuedRecipient>, Vec<QueuedRecipient>) = message
                .recipients
                .drain(..)
                // A recipient held in quarantine is not routed further (a group is not expanded):
                // the whole recipient is held, as the stage decided for it.
                .partition(|r| matches!(r.route, Route::Group(_)) && r.quarantine.is_none());
            if !group_rcpts.is_empty()
                // Group mailboxes and moderation requests take the whole message; a queue file
                // that cannot be read defers this message alone.
                && let Err(e) = message.load_whole()
            {
                deferrals.push(processing_failed(
                    group_rcpts.iter().chain(&others).map(|r| r.id).collect(),
                    &e,
                ));
                continue;
            }
            for r in group_rcpts {
                match self.route_group(&message, &r) {
                    Ok(work) => groups.push(work),
                    Err(e) => deferrals.push(processing_failed(vec![r.id], &e)),
                }
            }
            if !others.is_empty() {
                // One stored form per distinct stamp (each recipient's own antispam report):
                // recipients alike share one blob.
                let mut stamps: Vec<(String, Vec<QueuedRecipient>)> = Vec::new();
                for r in others {
                    match stamps.iter_mut().find(|(s, _)| *s == r.stamp) {
                        Some((_, rs)) => rs.push(r),
                        None => stamps.push((r.stamp.clone(), vec![r])),
                    }
                }
                let last = stamps.pop();
                let mut parts = Vec::with_capacity(stamps.len() + 1);
                for (_, recipients) in stamps {
                    let mut part = message.clone();
                    part.recipients = recipients;
                    parts.push(part);
                }
                if let Some((_, recipients)) = last {
                    message.recipients = recipients;
                    parts.push(message);
                }
                for part in parts {
                    let ids = part.recipients.iter().map(|r| r.id).collect();
                    match self.deliver(part) {
                        Ok(outcome) => outcomes.push(outcome),
                        Err(e) => deferrals.push(processing_failed(ids, &e)),
                    }
                }
            }
        }
        Ok(Prepared {
            outcomes,
            groups,
            deferrals,
            messages,
        })
    }

    fn deliver(&self, m: QueuedMessage) -> Result<DeliveryOutcome, StoreError> {
        let mut recipients = Vec::with_capacity(m.recipients.len());
        // The message's `Received:` fields, counted once when a relay recipient needs them.
        let mut hops: Option<usize> = None;
        let now = self.clock.now();
        for r in &m.recipients {
            if let Some(hold) = &r.quarantine {
                // The policy's retention where it set one (the anti-spam policy), else the
                // server's for the kind.
                let days = hold
                    .days
                    .unwrap_or_else(|| self.quarantine_retention_days(hold.kind));
                recipients.push((
                    r.id,
                    RecipientOutcome::Quarantine {
                        hold: hold.clone(),
                        mailbox: match r.route {
                            Route::Local(mailbox) => Some(mailbox),
                            _ => None,
                        },
                        expires: now.plus_seconds(i64::from(days) * 86_400),
                    },
                ));
                continue;
            }
            let outcome = match r.route {
                Route::Local(mailbox) => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
                Route::Postmaster => self.postmaster_outcome()?,
                Route::Remote => outbound_outcome(now),
                Route::Relay | Route::Group(_) => {
                    let hops = *hops.get_or_insert_with(|| {
                        m.head().map(|h| received_count(&h)).unwrap_or_default()
                    });
                    self.relay_outcome(&r.address, hops)?
                }
            };
            // The spam filter's verdict: the Junk Email folder of whichever mailbox takes it.
            let outcome = match outcome {
                RecipientOutcome::Store { mailbox, .. } if r.junk => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Junk,
                },
                other => other,
            };
            recipients.push((r.id, outcome));
        }
        let summary = summarize(&m.head()?);
        // A quarantine item keeps the stored form too, for preview and release.
        let stores = recipients.iter().any(|(_, o)| {
            matches!(
                o,
                RecipientOutcome::Store { .. } | RecipientOutcome::Quarantine { .. }
            )
        });
        let (blob, size) = match &m.spool {
            // Nothing to file (failures, deferrals): nothing to stage.
            _ if !stores => (StagedBlob::default(), 0),
            // A large message is streamed from its queue file into the blob directory.
            Some(spool) => self.store.stage_spooled(stored_form(&m), spool)?,
            None => {
                let stored = stored_form(&m);
                let size = stored.len() as u64;
                (self.store.stage_blob(stored)?, size)
            }
        };
        Ok(DeliveryOutcome {
            message_id: m.id,
            blob,
            size,
            from_header: summary.from,
            subject: summary.subject,
            null_sender: m.sender.is_empty(),
            recipients,
        })
    }

    /// Mail for the platform's postmaster: to the mailbox `smtp.postmaster` names, or kept in
    /// the queue (with a `Defer` event saying why) until there is one. Kept past its expiry:
    /// Exchange would expire it, but the wait is a setting not made yet, and an admin would
    /// rather find the postmaster's mail than lose it.
    fn postmaster_outcome(&self) -> Result<RecipientOutcome, StoreError> {
        Ok(
            match platform_postmaster(&self.directory, self.postmaster.as_ref())? {
                Ok(mailbox) => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
                Err(reason) => RecipientOutcome::Defer(
                    Deferral::new(reply::POSTMASTER_NOT_CONFIGURED, reason)
                        .retry_at(self.clock.now().plus_seconds(POSTMASTER_RETRY_SECS))
                        .kept_past_expiry(),
                ),
            },
        )
    }

    /// A recipient queued for relay: the directory is asked again (a mailbox may exist by now);
    /// an internal-relay domain's recipient no one answers to is sent out (issue 10 item 5:
    /// the outbound connector for its domain, else MX), unless the message has passed through
    /// [`MAX_HOPS`] hosts already (`hops`, its `Received:` fields): a domain whose MX points
    /// back at hato would loop, so it fails with Exchange's `5.4.14` instead.
    fn relay_outcome(&self, address: &str, hops: usize) -> Result<RecipientOutcome, StoreError> {
        let fail = |reply, stage, text: String| {
            RecipientOutcome::Fail(Refusal::new(reply, Reason::new(stage, text)))
        };
        let Ok(addr) = Address::parse(address) else {
            return Ok(fail(
                reply::RECIPIENT_NOT_FOUND,
                Stage::Recipient,
                format!("The queued address {address} is not a valid address"),
            ));
        };
        Ok(match resolve(&self.directory, &addr)? {
            Resolution::Mailbox { mailbox, .. } => RecipientOutcome::Store {
                mailbox,
                folder: Folder::Inbox,
            },
            Resolution::Group { address, .. } => fail(
                reply::ADDRESS_NOW_A_GROUP,
                Stage::Recipient,
                format!(
                    "The group {address} took this address after the message was queued for relay; its restrictions were never checked for this message"
                ),
            ),
            Resolution::UnknownInRelayDomain { .. } if hops >= MAX_HOPS => fail(
                reply::HOP_COUNT_EXCEEDED,
                Stage::Delivery,
                format!(
                    "No recipient answers to {addr} in the internal-relay domain {}, but the message has passed through {hops} hosts already ({MAX_HOPS} at most): a mail loop (does the domain's MX point back at hato?)",
                    addr.domain()
                ),
            ),
            Resolution::UnknownInRelayDomain { .. } => RecipientOutcome::Outbound(
                Reason::new(
                    Stage::Delivery,
                    format!(
                        "No recipient answers to {addr} and {} is an internal-relay domain: relayed to the organisation's own server, through the outbound connector for the domain (or by MX)",
                        addr.domain()
                    ),
                )
                .figure("hops", hops),
            ),
            Resolution::Postmaster { .. } => self.postmaster_outcome()?,
            Resolution::UnknownInAuthoritativeDomain { .. } => fail(
                reply::RECIPIENT_NOT_FOUND,
                Stage::Recipient,
                format!(
                    "No recipient answers to {addr} any more, and {} is an authoritative domain now",
                    addr.domain()
                ),
            ),
            Resolution::NotAccepted => fail(
                reply::RECIPIENT_NOT_FOUND,
                Stage::Recipient,
                format!("{} is no longer an accepted domain", addr.domain()),
            ),
        })
    }
}

/// The most `Received:` fields a message relayed out of an internal-relay domain may carry
/// (RFC 5321 §6.3 asks for a loop limit; Postfix's `hopcount_limit` is 50 too).
pub const MAX_HOPS: usize = 50;

/// How many `Received:` fields the header block holds (RFC 5321 §4.4: one per host).
fn received_count(head: &[u8]) -> usize {
    let block = hato_core::header::header_block(head);
    block
        .split(|&b| b == b'\n')
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// A recipient outside every tenant (a mail contact reached through a group, relay through an
/// on-premises connector, an NDR to an outside sender) is the outbound agent's
/// (`crate::outbound`): the store hands it to `due_remote`, not to this step, unless a stage
/// held it in quarantine. Should one reach this step all the same (a row written by an older
/// hato while a newer one takes it), it waits a minute, which hands it to the outbound agent.
fn outbound_outcome(now: Timestamp) -> RecipientOutcome {
    RecipientOutcome::Defer(
        Deferral::new(
            reply::processing_deferred("an outside recipient reached local delivery"),
            Reason::new(
                Stage::Delivery,
                "An outside recipient is the outbound agent's: tried again by it",
            ),
        )
        .retry_at(now.plus_seconds(60)),
    )
}

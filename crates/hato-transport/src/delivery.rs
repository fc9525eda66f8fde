//! The queue runner: delivers queued recipients to local mailboxes, fails what cannot be
//! delivered, sends NDRs, and applies trace retention.
//!
//! Delivery is idempotent: a message's stored form (Return-Path + content) is written to the
//! content-addressed blob directory first, then one transaction files it in each mailbox and
//! marks the recipients delivered. A crash between the two only leaves a blob that the retried
//! delivery writes again under the same name, so every acknowledged message is delivered once.

use crate::groupmail;
use crate::ndr::{self, NdrInput};
use crate::routing::{Resolution, platform_postmaster, resolve};
use crate::summarize;
use hato_core::directory::{GroupType, Route};
use hato_core::reply;
use hato_core::trace::TraceEvent;
use hato_core::{Address, Clock, Timestamp, id};
use hato_directory::policy::{self, Sender};
use hato_directory::{Directory, DirectoryIndex};
use hato_store::{
    DeliveryOutcome, ExpandedRecipient, Folder, GroupOutcome, ModerationState, NdrWork,
    NewGroupItem, NewMessage, NewRecipient, QueuedMessage, QueuedRecipient, RecipientOutcome,
    StagedBlob, Store, StoreError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub struct DeliveryAgent {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
    hostname: String,
    queued: Arc<Notify>,
    trace_retention_days: u32,
    /// The platform's postmaster mailbox address (`smtp.postmaster`), if any.
    postmaster: Option<Address>,
}

const BATCH: usize = 512;
/// How often mail for an unconfigured platform postmaster is looked at again: a configuration
/// change (a restart, or the mailbox created) takes effect within this.
const POSTMASTER_RETRY_SECS: i64 = 10;
/// Blob files younger than this are never collected (a delivery may be about to reference one).
const BLOB_GC_MIN_AGE: Duration = Duration::from_secs(3600);
/// Exchange expires unanswered moderation requests after two days.
const MODERATION_EXPIRY_SECS: i64 = 2 * 86_400;

/// The routing decision for one group recipient (and what to file first, for a group mailbox).
struct GroupWork {
    recipient: i64,
    message: i64,
    outcome: GroupOutcome,
    item: Option<NewGroupItem>,
    /// For a held message: the approval request to the moderators.
    notice: Option<NewMessage>,
}

/// RFC 5321 §4.4: the final delivery adds Return-Path with the envelope sender. For a spooled
/// message this is the part before its queue file.
fn stored_form(m: &QueuedMessage) -> Vec<u8> {
    let mut stored = format!("Return-Path: <{}>\r\n", m.sender).into_bytes();
    stored.extend_from_slice(&m.content);
    stored
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
    ) -> Arc<Self> {
        let store = directory.store().clone();
        Arc::new(DeliveryAgent {
            store,
            directory,
            clock,
            hostname,
            queued,
            trace_retention_days,
            postmaster,
        })
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
                // Between steps, so no blob is being staged while unreferenced ones go.
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
    pub async fn step(self: Arc<Self>) -> Result<usize, StoreError> {
        let this = self.clone();
        let (outcomes, groups, n) = tokio::task::spawn_blocking(move || this.prepare_deliveries())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        let now = self.clock.now();
        if !outcomes.is_empty() {
            self.store.complete_deliveries(outcomes, now).await?;
        }
        for work in groups {
            if let Some(item) = work.item {
                self.store.file_group_item(item).await?;
            }
            let applied = self
                .store
                .route_group_recipient(work.recipient, work.message, work.outcome, now)
                .await?;
            if let (true, Some(notice)) = (applied, work.notice) {
                self.store.enqueue(notice).await?;
                self.queued.notify_one();
            }
        }
        let expired = self.expire_moderation().await?;
        let ndrs = self.store.due_ndrs(BATCH)?;
        let m = ndrs.len();
        for work in ndrs {
            let message = self.ndr_message(&work)?;
            self.store.enqueue(message).await?;
        }
        if m > 0 {
            // The NDRs themselves may be local deliveries.
            self.queued.notify_one();
        }
        Ok(n + m + expired)
    }

    /// Unanswered moderation requests expire after two days (Exchange's moderation expiry); the
    /// recipient fails and the sender is told by NDR.
    async fn expire_moderation(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let expired = self.store.expired_moderation(now)?;
        for id in &expired {
            self.store
                .decide_moderation(
                    *id,
                    ModerationState::Expired,
                    "system".into(),
                    String::new(),
                    now,
                )
                .await?;
        }
        Ok(expired.len())
    }

    fn prepare_deliveries(
        &self,
    ) -> Result<(Vec<DeliveryOutcome>, Vec<GroupWork>, usize), StoreError> {
        let due = self.store.due_deliveries(self.clock.now(), BATCH)?;
        let n = due.len();
        let mut outcomes = Vec::with_capacity(n);
        let mut groups = Vec::new();
        for mut message in due {
            let (group_rcpts, others): (Vec<QueuedRecipient>, Vec<QueuedRecipient>) = message
                .recipients
                .drain(..)
                .partition(|r| matches!(r.route, Route::Group(_)));
            if !group_rcpts.is_empty() {
                // Group mailboxes and moderation requests take the whole message.
                message.load_whole()?;
            }
            for r in group_rcpts {
                groups.push(self.route_group(&message, &r)?);
            }
            if !others.is_empty() {
                message.recipients = others;
                outcomes.push(self.deliver(message)?);
            }
        }
        Ok((outcomes, groups, n))
    }

    fn deliver(&self, m: QueuedMessage) -> Result<DeliveryOutcome, StoreError> {
        let mut recipients = Vec::with_capacity(m.recipients.len());
        for r in &m.recipients {
            let outcome = match r.route {
                Route::Local(mailbox) => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
                Route::Postmaster => self.postmaster_outcome()?,
                Route::Relay | Route::Remote | Route::Group(_) => self.relay_outcome(&r.address)?,
            };
            recipients.push((r.id, outcome));
        }
        let summary = summarize(&m.head()?);
        let stores = recipients
            .iter()
            .any(|(_, o)| matches!(o, RecipientOutcome::Store { .. }));
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

    /// Routing of a group recipient: its sender restrictions (again: the directory may have
    /// changed, and nested groups are only checked here), moderation, then one level of
    /// expansion — or, for a Microsoft 365 group, filing in the group mailbox and copies to its
    /// subscribers.
    fn route_group(&self, m: &QueuedMessage, r: &QueuedRecipient) -> Result<GroupWork, StoreError> {
        let work = |outcome| GroupWork {
            recipient: r.id,
            message: m.id,
            outcome,
            item: None,
            notice: None,
        };
        let Route::Group(group_id) = r.route else {
            return Ok(work(GroupOutcome::Fail {
                reply: reply::RECIPIENT_NOT_FOUND.to_string(),
            }));
        };
        let ix = self.directory.index(r.tenant_id)?;
        let Some(group) = ix.group(group_id) else {
            return Ok(work(GroupOutcome::Fail {
                reply: format!(
                    "{} (the group was removed after the message was accepted)",
                    reply::RECIPIENT_NOT_FOUND
                ),
            }));
        };
        let name = group.address.clone().unwrap_or_else(|| group.name.clone());
        let sender = Sender {
            address: (!m.sender.is_empty()).then_some(m.sender.as_str()),
            authenticated: false,
        };
        if !r.approved {
            if let Err(refusal) = policy::check_sender(&ix, group, sender) {
                return Ok(work(GroupOutcome::Fail {
                    reply: refusal.to_string(),
                }));
            }
            if policy::needs_moderation(&ix, group, sender) {
                let moderators: Vec<(i64, String)> = policy::moderators(group)
                    .into_iter()
                    .filter_map(|id| ix.mailbox(id).map(|mb| (id, mb.address.clone())))
                    .collect();
                let expires = self.clock.now().plus_seconds(MODERATION_EXPIRY_SECS);
                let names: Vec<&str> = moderators.iter().map(|(_, a)| a.as_str()).collect();
                let detail = format!(
                    "Held for moderation of group {name}; moderators: {}",
                    names.join(", ")
                );
                let notice = self.approval_request(m, r.tenant_id, &name, &moderators, expires);
                let mut w = work(GroupOutcome::Hold {
                    group_id,
                    tenant_id: r.tenant_id,
                    expires,
                    detail,
                });
                w.notice = notice;
                return Ok(w);
            }
        }
        let report_to = if group.settings.report_to_originator {
            None
        } else {
            group
                .owners
                .iter()
                .find_map(|o| ix.mailbox(*o))
                .map(|mb| mb.address.clone())
        };
        if group.group_type == GroupType::M365 {
            return self.to_group_mailbox(m, r, &ix, group_id, &name, report_to);
        }
        let members: Vec<ExpandedRecipient> = policy::expansion(&ix, group)
            .into_iter()
            .map(|mr| ExpandedRecipient {
                address: mr.address,
                tenant_id: r.tenant_id,
                route: mr.route,
                group_id: None,
                report_to: report_to.clone(),
                detail: format!("Recipient through group {name}"),
                fail: None,
            })
            .collect();
        let detail = format!(
            "Expanded group {name} ({}) to {} recipient(s)",
            group.group_type.as_str(),
            members.len()
        );
        Ok(work(GroupOutcome::Expand { detail, members }))
    }

    /// A Microsoft 365 group: the message is stored once in the group mailbox, threaded into a
    /// conversation, its invitations update the group calendar, and each subscriber gets a copy.
    fn to_group_mailbox(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
        ix: &DirectoryIndex,
        group_id: i64,
        name: &str,
        report_to: Option<String>,
    ) -> Result<GroupWork, StoreError> {
        let Some(group) = ix.group(group_id) else {
            return Ok(GroupWork {
                recipient: r.id,
                message: m.id,
                outcome: GroupOutcome::Fail {
                    reply: reply::RECIPIENT_NOT_FOUND.to_string(),
                },
                item: None,
                notice: None,
            });
        };
        let stored = stored_form(m);
        let summary = summarize(&m.content);
        let headers = groupmail::thread_headers(&m.content);
        let mut references = headers.in_reply_to.clone();
        references.extend(headers.references.iter().rev().cloned());
        // Only messages with invitations touch the calendar; the others need not read it.
        let invitations = groupmail::calendar_items(&m.content);
        let mut calendar: Vec<groupmail::CalendarItem> = if invitations.is_empty() {
            Vec::new()
        } else {
            self.store
                .group_calendar(group_id)?
                .into_iter()
                .filter_map(|(_, json)| calendar_from_json(&json))
                .collect()
        };
        let mut touched = Vec::new();
        for item in invitations {
            touched.push(item.uid.clone());
            groupmail::apply_to_calendar(&mut calendar, item);
        }
        let calendar_changes = calendar
            .iter()
            .filter(|c| touched.contains(&c.uid))
            .map(|c| (c.uid.clone(), Some(calendar_to_json(c))))
            .collect();
        let size = stored.len() as u64;
        let item = NewGroupItem {
            recipient_id: r.id,
            group_id,
            blob: self.store.stage_blob(stored)?,
            size,
            from: summary.from,
            subject: headers.subject.clone(),
            message_id: headers.message_id.clone().unwrap_or_default(),
            references,
            normalized_subject: headers.normalized_subject.clone(),
            calendar: calendar_changes,
            now: self.clock.now(),
        };
        let members: Vec<ExpandedRecipient> = group
            .subscribers
            .iter()
            .filter_map(|id| ix.mailbox(*id))
            .map(|mb| ExpandedRecipient {
                address: mb.address.clone(),
                tenant_id: r.tenant_id,
                route: Route::Local(mb.id),
                group_id: None,
                report_to: report_to.clone(),
                detail: format!("Subscriber copy from group {name}"),
                fail: None,
            })
            .collect();
        let detail = format!(
            "Stored in the group mailbox of {name}; copies to {} subscriber(s)",
            members.len()
        );
        Ok(GroupWork {
            recipient: r.id,
            message: m.id,
            outcome: GroupOutcome::Expand { detail, members },
            item: Some(item),
            notice: None,
        })
    }

    /// The message that tells a held message's moderators (Exchange sends an approval request):
    /// who sent what to which group, how to decide, when it expires, and the message itself.
    fn approval_request(
        &self,
        m: &QueuedMessage,
        tenant: i64,
        group: &str,
        moderators: &[(i64, String)],
        expires: Timestamp,
    ) -> Option<NewMessage> {
        if moderators.is_empty() {
            return None;
        }
        let now = self.clock.now();
        let trace_id = id::new_trace_id();
        let summary = summarize(&m.content);
        let sender = if m.sender.is_empty() {
            "<>"
        } else {
            m.sender.as_str()
        };
        let text = format!(
            "A message to the group {group} is waiting for your approval.\r\n\r\n\
             From: {sender}\r\nSubject: {}\r\nTrace id: {}\r\n\r\n\
             Approve or reject it:\r\n  hato moderation list --group {group}\r\n\
               hato moderation approve ID\r\n  hato moderation reject ID --comment \"why\"\r\n\r\n\
             If nobody decides, the request expires on {} and the sender is told.\r\n",
            summary.subject,
            m.trace_id,
            expires.to_rfc5322()
        );
        let mut original = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
        original.extend_from_slice(&m.content);
        let postmaster = format!(
            "postmaster@{}",
            group
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or(&self.hostname)
        );
        let body = mail_builder::mime::MimePart::new(
            "multipart/mixed",
            mail_builder::mime::BodyPart::Multipart(vec![
                mail_builder::mime::MimePart::new("text/plain", text),
                mail_builder::mime::MimePart::raw(mail_builder::mime::BodyPart::Binary(
                    original.into(),
                )),
            ]),
        );
        let to: Vec<&str> = moderators.iter().map(|(_, a)| a.as_str()).collect();
        let content = mail_builder::MessageBuilder::new()
            .from(("Mail Delivery System", postmaster.as_str()))
            .to(to)
            .subject(format!("Approval requested: {}", summary.subject))
            .message_id(format!("{trace_id}@{}", self.hostname))
            .date(now.0 / 1_000_000)
            .header(
                "Auto-Submitted",
                mail_builder::headers::raw::Raw::new("auto-generated"),
            )
            .body(body)
            .write_to_vec()
            .ok()?;
        let recipients = moderators
            .iter()
            .map(|(id, address)| NewRecipient {
                address: address.clone(),
                tenant_id: tenant,
                route: Route::Local(*id),
                extra_events: vec![],
            })
            .collect();
        let detail = format!(
            "Moderation request generated by {} for message {}",
            self.hostname, m.trace_id
        );
        Some(self.generated_message(trace_id, now, content, recipients, detail, vec![]))
    }

    /// Mail for the platform's postmaster: to the mailbox `smtp.postmaster` names, or kept in
    /// the queue (with a `Defer` event saying why) until there is one.
    fn postmaster_outcome(&self) -> Result<RecipientOutcome, StoreError> {
        Ok(
            match platform_postmaster(&self.directory, self.postmaster.as_ref())? {
                Ok(mailbox) => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
                Err(reason) => RecipientOutcome::Defer {
                    reason,
                    retry_at: self.clock.now().plus_seconds(POSTMASTER_RETRY_SECS),
                },
            },
        )
    }

    /// A recipient queued for relay: the directory is asked again (a mailbox may exist by now);
    /// otherwise it fails, as no outbound connector can take it yet.
    fn relay_outcome(&self, address: &str) -> Result<RecipientOutcome, StoreError> {
        let Ok(addr) = Address::parse(address) else {
            return Ok(RecipientOutcome::Fail {
                reply: reply::RECIPIENT_NOT_FOUND.to_string(),
            });
        };
        Ok(match resolve(&self.directory, &addr)? {
            Resolution::Mailbox { mailbox, .. } => RecipientOutcome::Store {
                mailbox,
                folder: Folder::Inbox,
            },
            Resolution::Group { .. } => RecipientOutcome::Fail {
                reply: format!(
                    "{} (a group took this address after the message was queued; resend it)",
                    reply::RECIPIENT_NOT_FOUND
                ),
            },
            Resolution::UnknownInRelayDomain { .. } => RecipientOutcome::Fail {
                reply: format!(
                    "{} (domain {} is internal-relay and hato has no outbound delivery yet)",
                    reply::NO_ROUTE_INTERNAL_RELAY,
                    addr.domain()
                ),
            },
            Resolution::Postmaster { .. } => self.postmaster_outcome()?,
            Resolution::UnknownInAuthoritativeDomain { .. } | Resolution::NotAccepted => {
                RecipientOutcome::Fail {
                    reply: reply::RECIPIENT_NOT_FOUND.to_string(),
                }
            }
        })
    }

    /// The NDR for `work`, addressed to the original sender, with a null reverse-path so that
    /// it can never cause another NDR (RFC 5321 §4.5.5).
    fn ndr_message(&self, work: &NdrWork) -> Result<NewMessage, StoreError> {
        let now = self.clock.now();
        let trace_id = id::new_trace_id();
        let tenant = work.failed.first().map(|f| f.tenant_id).unwrap_or_default();
        let (route, tenant_id, extra_events) = match Address::parse(&work.sender) {
            Ok(addr) => match resolve(&self.directory, &addr)? {
                Resolution::Mailbox { tenant, mailbox, .. } => (Route::Local(mailbox), tenant, vec![]),
                Resolution::Group { tenant, group, .. } => (Route::Group(group), tenant, vec![]),
                Resolution::UnknownInRelayDomain { tenant } | Resolution::UnknownInAuthoritativeDomain { tenant } => {
                    (Route::Relay, tenant, vec![])
                }
                Resolution::Postmaster { tenant: domain_tenant } => (Route::Postmaster, domain_tenant.unwrap_or(tenant), vec![]),
                Resolution::NotAccepted => (
                    Route::Remote,
                    tenant,
                    vec![(
                        TraceEvent::Defer,
                        "Waiting for outbound delivery to the sender's domain; hato cannot send to outside \
                         domains yet, so this NDR stays queued"
                            .to_string(),
                    )],
                ),
            },
            Err(_) => (Route::Remote, tenant, vec![]),
        };
        let content = ndr::build(&NdrInput {
            hostname: &self.hostname,
            sender: &work.sender,
            original_trace_id: &work.trace_id,
            original_received: work.received,
            original_content: &work.content,
            failed: &work.failed,
            now,
            ndr_trace_id: &trace_id,
        });
        let recipient = NewRecipient {
            address: work.sender.clone(),
            tenant_id,
            route,
            extra_events,
        };
        let detail = format!(
            "Non-delivery report generated by {} for message {}",
            self.hostname, work.trace_id
        );
        let reports_on = work.failed.iter().map(|f| f.id).collect();
        Ok(self.generated_message(trace_id, now, content, vec![recipient], detail, reports_on))
    }

    /// A message hato itself writes (NDR, approval request), from the null reverse-path so that
    /// it can never cause another NDR (RFC 5321 §4.5.5), with its own Received header.
    fn generated_message(
        &self,
        trace_id: String,
        now: Timestamp,
        content: Vec<u8>,
        recipients: Vec<NewRecipient>,
        receive_detail: String,
        reports_on: Vec<i64>,
    ) -> NewMessage {
        let mut stored = format!(
            "Received: from localhost by {} (hato) with local id {trace_id};\r\n\t{}\r\n",
            self.hostname,
            now.to_rfc5322()
        )
        .into_bytes();
        stored.extend_from_slice(&content);
        let summary = summarize(&stored);
        NewMessage {
            trace_id,
            received: now,
            sender: String::new(),
            client_ip: "127.0.0.1".into(),
            helo: self.hostname.clone(),
            message_id: Some(summary.message_id),
            subject: Some(summary.subject),
            content: stored,
            spooled: None,
            recipients,
            receive_detail,
            reports_on,
        }
    }
}

//! The durable queue: received messages, their recipients' delivery state, and NDR work.

use super::{SqliteStore, add_event, defer, release_spool, route_from, set_status};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::spool;
use crate::traits::QueueStore;
use crate::types::*;
use hato_core::Reason;
use hato_core::Timestamp;
use hato_core::directory::Route;
use hato_core::reason::{Refusal, Stage};
use hato_core::reply::{self, Reply};
use hato_core::trace::{EventRecord, RecipientStatus, TraceEvent};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

impl QueueStore for SqliteStore {
    /// A spooled message's file is synced and moved into the queue directory here, on the
    /// caller's thread (it blocks: call it from blocking code), before its row is committed.
    fn enqueue(&self, mut m: NewMessage) -> Pending<()> {
        let spooled_len = m.spooled.as_ref().map_or(0, |s| s.len);
        let spool = match m.spooled.take() {
            None => None,
            Some(spooled) => match self.queue.adopt(spooled, &m.trace_id) {
                Ok(name) => Some(name),
                Err(e) => return Pending::failed(e),
            },
        };
        // Removes the queue file if its row is not written (the savepoint rolls back).
        let unclaimed = spool
            .clone()
            .map(|name| spool::Unclaimed::new(self.queue.clone(), name));
        let expires = m.received.0.saturating_add(self.message_expiration);
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO messages(trace_id, received, sender, client_ip, helo, message_id, subject, size, content, authenticated_mailbox, spool, authenticated_from, sender_auth_failed, dsn_ret, dsn_envid, high_risk) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                m.trace_id,
                m.received.0,
                m.sender,
                m.client_ip,
                m.helo,
                m.message_id.as_deref().unwrap_or(""),
                m.subject.as_deref().unwrap_or(""),
                (m.content.len() as u64 + spooled_len) as i64,
                m.content,
                m.authenticated,
                spool,
                m.authenticated_from,
                m.sender_auth_failed,
                m.dsn.ret.map(hato_core::dsn::Ret::as_str),
                m.dsn.envid,
                m.high_risk
            ])?;
            let message = conn.last_insert_rowid();
            let mut insert = conn.prepare_cached(
                "INSERT INTO recipients(message_id, tenant_id, address, route, mailbox_id, group_id, status, next_attempt, updated, expires, \
                   quarantine_kind, quarantine_policy, quarantine_reason, stamp, junk, quarantine_days, connector, \
                   dsn_notify, dsn_orcpt, delay_notice, quarantine_tag) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7, 'Pending', ?6, ?6, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?;
            for r in &m.recipients {
                let (mailbox, group) = match r.route {
                    Route::Local(id) => (Some(id), None),
                    Route::Group(id) => (None, Some(id)),
                    _ => (None, None),
                };
                let hold = r.quarantine.as_ref();
                // RFC 3461 §4.1: no delay notice without DELAY in NOTIFY (FAILURE,DELAY when
                // not given); none to the null sender (RFC 5321 §4.5.5) nor, as for NDRs, to a
                // sender that failed SPF or DMARC (no backscatter).
                let no_delay_notice = m.sender.is_empty()
                    || m.sender_auth_failed
                    || !r.dsn.effective_notify().delay;
                insert.execute(params![
                    message, r.tenant_id, r.address, r.route.kind(), mailbox, m.received.0, group, expires,
                    hold.map(|h| h.kind.as_str()),
                    hold.map(|h| h.policy.as_str()),
                    hold.map(|h| h.reason.to_json()),
                    r.stamp,
                    r.junk,
                    hold.and_then(|h| h.days),
                    r.connector,
                    r.dsn.notify.map(|n| n.as_stored()),
                    r.dsn.orcpt.as_ref().map(hato_core::dsn::Orcpt::as_stored),
                    no_delay_notice,
                    hold.and_then(|h| h.quarantine_policy.as_deref())
                ])?;
                let id = conn.last_insert_rowid();
                let mut receive = EventRecord::new(TraceEvent::Receive, m.receive_detail.as_str());
                receive.reason = r.receive_reason.clone();
                add_event(conn, id, m.received.0, &receive)?;
                for event in &r.extra_events {
                    add_event(conn, id, m.received.0, event)?;
                }
                match &r.finished {
                    None => {}
                    Some(Finished::Failed(refusal)) => {
                        let ndr = if m.sender.is_empty() { 0 } else { 1 };
                        set_status(conn, id, RecipientStatus::Failed, ndr, m.received.0)?;
                        add_event(conn, id, m.received.0, &EventRecord::fail(refusal.clone()))?;
                    }
                    Some(Finished::Dropped(reason)) => {
                        set_status(conn, id, RecipientStatus::Failed, 0, m.received.0)?;
                        add_event(conn, id, m.received.0, &EventRecord::because(TraceEvent::Drop, reason.clone()))?;
                    }
                    Some(Finished::Redirected(reason)) => {
                        set_status(conn, id, RecipientStatus::Expanded, 0, m.received.0)?;
                        add_event(conn, id, m.received.0, &EventRecord::because(TraceEvent::Redirect, reason.clone()))?;
                    }
                }
            }
            if m.recipients.iter().any(|r| r.finished.is_some()) {
                // Nothing left to deliver (every recipient refused or dropped, none owing an
                // NDR): the content goes now rather than waiting for a delivery that never comes.
                release_spool(conn, message)?;
            }
            // An NDR reports on failed recipients of another message: mark them answered.
            for original in &m.reports_on {
                conn.prepare_cached("UPDATE recipients SET ndr_state = 2 WHERE id = ?1")?.execute([original])?;
                let detail = format!("Non-delivery report sent to the sender (trace id {})", m.trace_id);
                add_event(conn, *original, m.received.0, &EventRecord::new(TraceEvent::Dsn, detail))?;
                let msg: i64 = conn.query_row("SELECT message_id FROM recipients WHERE id = ?1", [original], |r| r.get(0))?;
                release_spool(conn, msg)?;
            }
            if let Some(file) = unclaimed {
                file.claimed();
            }
            Ok(())
        })
    }

    fn due_deliveries(
        &self,
        now: Timestamp,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>> {
        due(self, now, lease, limit, Due::Local)
    }

    fn due_remote(
        &self,
        now: Timestamp,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>> {
        due(self, now, lease, limit, Due::Remote)
    }

    fn complete_deliveries(
        &self,
        outcomes: Vec<DeliveryOutcome>,
        now: Timestamp,
    ) -> Pending<Vec<FailedOutcome>> {
        let expiration = self.message_expiration;
        self.write(move |conn| {
            let mut failed = Vec::new();
            for o in &outcomes {
                // Each outcome in its own savepoint: one that cannot be applied (a constraint, a
                // row in a bad state) is rolled back alone and handed back to be deferred, instead
                // of rolling back, and so blocking, every tenant's deliveries in the batch.
                conn.prepare_cached("SAVEPOINT outcome")?.execute([])?;
                match complete_one(conn, o, now, expiration) {
                    Ok(()) => {
                        conn.prepare_cached("RELEASE outcome")?.execute([])?;
                    }
                    Err(error) => {
                        conn.prepare_cached("ROLLBACK TO outcome")?.execute([])?;
                        conn.prepare_cached("RELEASE outcome")?.execute([])?;
                        failed.push(FailedOutcome {
                            message_id: o.message_id,
                            recipients: o.recipients.iter().map(|(id, _)| *id).collect(),
                            error,
                        });
                    }
                }
            }
            Ok(failed)
        })
    }

    fn due_ndrs(&self, now: Timestamp, limit: usize) -> Result<Vec<NdrWork>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, r.address, r.tenant_id, m.id, m.trace_id, m.sender, m.received, \
                   (SELECT e.id FROM trace_events e WHERE e.recipient_id = r.id AND e.event = 'Fail' ORDER BY e.id DESC LIMIT 1), \
                   r.report_to, r.dsn_orcpt, m.dsn_envid \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.ndr_state = 1 AND r.next_attempt <= ?2 ORDER BY r.message_id, r.id LIMIT ?1",
            )?;
            // One NDR per message and addressee: the sender, or who the group's report settings
            // name (the sender and/or its first owner).
            let mut by_key: BTreeMap<(i64, String), NdrWork> = BTreeMap::new();
            // The reply an NDR reports is the one the Fail event recorded: its code and enhanced
            // code from their fields, its text from the detail.
            let mut fail_event = conn.prepare_cached(
                "SELECT status, enhanced_status, detail FROM trace_events WHERE id = ?1",
            )?;
            let mut rows = stmt.query([limit as i64, now.0])?;
            while let Some(r) = rows.next()? {
                let event: Option<i64> = r.get(7)?;
                let recorded: Option<(Option<i64>, Option<String>, String)> = match event {
                    Some(id) => fail_event
                        .query_row([id], |e| Ok((e.get(0)?, e.get(1)?, e.get(2)?)))
                        .optional()?,
                    None => None,
                };
                let reply = match recorded {
                    Some((Some(code), Some(enhanced), text)) => match u16::try_from(code) {
                        Ok(code) => Reply::stored(code, enhanced, text),
                        Err(_) => reply::failure_without_code(text),
                    },
                    Some((_, _, text)) => reply::failure_without_code(text),
                    None => reply::failure_without_code("no failure was recorded"),
                };
                let failed = FailedRecipient {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    tenant_id: r.get(2)?,
                    reply,
                    orcpt: r
                        .get::<_, Option<String>>(9)?
                        .as_deref()
                        .and_then(hato_core::dsn::Orcpt::from_stored),
                };
                let message: i64 = r.get(3)?;
                let sender: String = r.get(5)?;
                let to: Vec<String> = match r.get::<_, Option<String>>(8)? {
                    None => vec![sender],
                    Some(list) => list.split('\n').filter(|a| !a.is_empty()).map(str::to_string).collect(),
                };
                for to in to {
                    match by_key.get_mut(&(message, to.clone())) {
                        Some(w) => w.failed.push(failed.clone()),
                        None => {
                            by_key.insert((message, to.clone()), NdrWork {
                                message_id: message,
                                trace_id: r.get(4)?,
                                sender: to,
                                received: Timestamp(r.get(6)?),
                                content: Vec::new(),
                                failed: vec![failed.clone()],
                                envid: r.get(10)?,
                            });
                        }
                    }
                }
            }
            let mut content = conn.prepare_cached("SELECT content, spool FROM messages WHERE id = ?1")?;
            let mut out = Vec::new();
            for ((id, _), mut w) in by_key {
                let (c, spool): (Option<Vec<u8>>, Option<String>) =
                    content.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                w.content = c.unwrap_or_default();
                // An NDR quotes the original's header block only; without its queue file it
                // still goes out, quoting what is left.
                if let Some(name) = spool {
                    match self.queue.head(&name, crate::HEAD_BYTES) {
                        Ok(head) => w.content.extend(head),
                        Err(e) => tracing::warn!("message {id}: queue file {name}: {e}"),
                    }
                }
                out.push(w);
            }
            Ok(out)
        })
    }
    fn due_notices(&self, arrived_by: Timestamp, limit: usize) -> Result<Vec<NoticeWork>> {
        self.read(|conn| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            // Both through their partial indexes: only recipients that may owe a notice. The
            // delay query stops at the newest message old enough (ids grow with arrival), so a
            // large backlog of recent deferrals is not read at every step.
            let mut delayed = conn.prepare_cached(
                "SELECT r.id, r.address, r.tenant_id, r.dsn_orcpt, r.route, r.expires, \
                   r.last_status, r.last_enhanced_status, r.last_detail, m.id \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.status = 'Pending' AND r.delay_notice = 0 AND r.attempts > 0 \
                   AND m.received <= ?1 AND m.sender != '' AND m.sender_auth_failed = 0 \
                   AND r.message_id <= coalesce( \
                     (SELECT id FROM messages WHERE received <= ?1 ORDER BY received DESC LIMIT 1), 0) \
                 ORDER BY r.message_id, r.id LIMIT ?2",
            )?;
            let mut succeeded = conn.prepare_cached(
                "SELECT r.id, r.address, r.tenant_id, r.dsn_orcpt, r.route, r.expires, \
                   r.success_notice, NULL, NULL, m.id \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.success_notice IN (1, 2) ORDER BY r.message_id, r.id LIMIT ?1",
            )?;
            let mut by_key: BTreeMap<(i64, bool), Vec<NoticeRecipient>> = BTreeMap::new();
            let mut add = |kind: NoticeKind, mut rows: rusqlite::Rows<'_>| -> Result<()> {
                while let Some(r) = rows.next()? {
                    let (action, reply) = match kind {
                        NoticeKind::Delay => {
                            let code: Option<i64> = r.get(6)?;
                            let reply = code.and_then(|c| u16::try_from(c).ok()).map(|c| {
                                Reply::stored(
                                    c,
                                    r.get::<_, Option<String>>(7).ok().flatten().unwrap_or_default(),
                                    r.get::<_, Option<String>>(8).ok().flatten().unwrap_or_default(),
                                )
                            });
                            ("delayed", reply)
                        }
                        NoticeKind::Success => match r.get::<_, i64>(6)? {
                            2 => ("relayed", None),
                            _ => ("delivered", None),
                        },
                    };
                    let route: String = r.get(4)?;
                    let message: i64 = r.get(9)?;
                    by_key
                        .entry((message, kind == NoticeKind::Success))
                        .or_default()
                        .push(NoticeRecipient {
                            id: r.get(0)?,
                            address: r.get(1)?,
                            tenant_id: r.get(2)?,
                            orcpt: r
                                .get::<_, Option<String>>(3)?
                                .as_deref()
                                .and_then(hato_core::dsn::Orcpt::from_stored),
                            action,
                            reply,
                            expires: Timestamp(r.get(5)?),
                            remote: route == "remote",
                        });
                }
                Ok(())
            };
            add(NoticeKind::Delay, delayed.query(params![arrived_by.0, limit])?)?;
            add(NoticeKind::Success, succeeded.query([limit])?)?;
            let mut message = conn.prepare_cached(
                "SELECT trace_id, sender, received, dsn_envid, content, spool FROM messages WHERE id = ?1",
            )?;
            let mut out = Vec::new();
            for ((id, success), recipients) in by_key {
                type Row = (String, String, i64, Option<String>, Option<Vec<u8>>, Option<String>);
                let (trace_id, sender, received, envid, content, spool): Row =
                    message.query_row([id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })?;
                let mut content = content.unwrap_or_default();
                // A notice quotes the original's header block only (as an NDR does).
                if let Some(name) = spool {
                    match self.queue.head(&name, crate::HEAD_BYTES) {
                        Ok(head) => content.extend(head),
                        Err(e) => tracing::warn!("message {id}: queue file {name}: {e}"),
                    }
                }
                out.push(NoticeWork {
                    kind: if success {
                        NoticeKind::Success
                    } else {
                        NoticeKind::Delay
                    },
                    message_id: id,
                    trace_id,
                    sender,
                    received: Timestamp(received),
                    envid,
                    content,
                    recipients,
                });
            }
            Ok(out)
        })
    }

    fn notices_done(
        &self,
        kind: NoticeKind,
        recipients: Vec<i64>,
        detail: String,
        now: Timestamp,
    ) -> Pending<()> {
        self.write(move |conn| {
            let sql = match kind {
                NoticeKind::Delay => "UPDATE recipients SET delay_notice = 1 WHERE id = ?1 AND delay_notice = 0",
                NoticeKind::Success => {
                    "UPDATE recipients SET success_notice = 3 WHERE id = ?1 AND success_notice IN (1, 2)"
                }
            };
            for id in &recipients {
                // Done once: a replayed call (two nodes, or a retry) records nothing twice.
                if conn.prepare_cached(sql)?.execute([id])? == 0 {
                    continue;
                }
                add_event(conn, *id, now.0, &EventRecord::new(TraceEvent::Dsn, detail.as_str()))?;
                if kind == NoticeKind::Success {
                    let msg: i64 = conn.query_row(
                        "SELECT message_id FROM recipients WHERE id = ?1",
                        [id],
                        |r| r.get(0),
                    )?;
                    release_spool(conn, msg)?;
                }
            }
            Ok(())
        })
    }

    fn defer(&self, work: Vec<DeferredWork>, now: Timestamp) -> Pending<()> {
        let expiration = self.message_expiration;
        self.write(move |conn| {
            for w in &work {
                for rcpt in &w.recipients {
                    defer(conn, *rcpt, w.work, &w.deferral, now, expiration)?;
                }
            }
            Ok(())
        })
    }

    fn queue(&self, q: &QueueQuery) -> Result<QueuePage> {
        queue_page(self, q)
    }

    fn queue_act(
        &self,
        tenant: Option<hato_core::directory::TenantId>,
        trace_id: &str,
        recipient: Option<&str>,
        action: QueueAction,
        now: Timestamp,
    ) -> Pending<QueueActed> {
        let trace_id = trace_id.to_lowercase();
        let recipient = recipient.map(str::to_lowercase);
        self.write(move |conn| {
            // The message's recipients still waiting for delivery (held ones are the
            // moderation queue's), in this tenant when one is named.
            let mut rows = conn.prepare_cached(
                "SELECT r.id, m.sender, coalesce(r.lease_until > ?2, 0), \
                   EXISTS (SELECT 1 FROM moderation h WHERE h.recipient_id = r.id AND h.state = 'pending') \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE m.trace_id = ?1 AND r.status = 'Pending' \
                   AND (?3 IS NULL OR r.tenant_id = ?3) AND (?4 IS NULL OR r.address = ?4) \
                 ORDER BY r.id",
            )?;
            let found: Vec<(i64, String, bool, bool)> = rows
                .query_map(params![trace_id, now.0, tenant, recipient], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<std::result::Result<_, _>>()?;
            drop(rows);
            let mut acted = QueueActed::default();
            for (id, sender, leased, held) in found {
                if leased || held {
                    acted.busy += 1;
                    continue;
                }
                match &action {
                    QueueAction::Retry => {
                        conn.prepare_cached(
                            "UPDATE recipients SET next_attempt = ?1, updated = ?1 WHERE id = ?2",
                        )?
                        .execute(params![now.0, id])?;
                    }
                    QueueAction::Delete { with_ndr, by } => {
                        let reason = Reason::new(
                            Stage::Delivery,
                            format!("Deleted from the queue by {by}"),
                        );
                        // No NDR to the null sender (RFC 5321 §4.5.5), nor without `-WithNDR`.
                        let ndr = i64::from(*with_ndr && !sender.is_empty());
                        set_status(conn, id, RecipientStatus::Failed, ndr, now.0)?;
                        let event = if *with_ndr {
                            EventRecord::fail(Refusal::new(reply::MESSAGE_DELETED_BY_ADMIN, reason))
                        } else {
                            let mut e = EventRecord::because(TraceEvent::Drop, reason);
                            e.detail = format!("{} ({by})", reply::MESSAGE_DELETED_BY_ADMIN.text);
                            e.reply = Some(reply::MESSAGE_DELETED_BY_ADMIN);
                            e
                        };
                        add_event(conn, id, now.0, &event)?;
                    }
                }
                acted.changed += 1;
            }
            if matches!(action, QueueAction::Delete { .. }) && acted.changed > 0 {
                // Nothing left to deliver (or to report on): the content goes now.
                let messages: Vec<i64> = conn
                    .prepare_cached("SELECT id FROM messages WHERE trace_id = ?1")?
                    .query_map([&trace_id], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?;
                for message in messages {
                    release_spool(conn, message)?;
                }
            }
            Ok(acted)
        })
    }
}

/// Which due recipients a caller takes: the local step takes every route but outside
/// recipients (and those held in quarantine whatever their route: delivery stores the hold);
/// the outbound agent takes the outside ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Due {
    Local,
    Remote,
}

impl Due {
    fn clause(self) -> &'static str {
        match self {
            Due::Local => " AND (r.route <> 'remote' OR r.quarantine_kind IS NOT NULL)",
            Due::Remote => " AND r.route = 'remote' AND r.quarantine_kind IS NULL",
        }
    }
}

/// Takes and leases due recipients of one kind, then reads their messages' content.
fn due(
    store: &SqliteStore,
    now: Timestamp,
    lease: &Lease,
    limit: usize,
    kind: Due,
) -> Result<Vec<QueuedMessage>> {
    // The choice and the lease are made in one write, so two callers (nodes) never take the
    // same recipient; the content is read afterwards, on a reader, to keep the writer's
    // transaction short.
    let (owner, until) = (lease.owner.as_str().to_string(), lease.until);
    let mut due = store
        .write(move |conn| take_due(conn, now, &owner, until, limit, kind))
        .wait()?;
    store.read(|conn| {
        let mut content =
            conn.prepare_cached("SELECT content, spool FROM messages WHERE id = ?1")?;
        for q in &mut due {
            // A message whose content cannot be read is returned with the reason, so that its
            // recipients are deferred alone instead of failing the whole batch.
            match content.query_row([q.id], |r| {
                Ok((
                    r.get::<_, Option<Vec<u8>>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            }) {
                Ok((Some(c), spool)) => {
                    q.content = c;
                    match spool.map(|name| store.queue.path(&name)).transpose() {
                        Ok(path) => q.spool = path,
                        Err(e) => q.content_error = Some(e.to_string()),
                    }
                }
                Ok((None, _)) => {
                    q.content_error = Some(
                        StoreError::Corrupt(format!("message {} lost its spooled content", q.id))
                            .to_string(),
                    )
                }
                Err(e) => q.content_error = Some(StoreError::from(e).to_string()),
            }
        }
        Ok(())
    })?;
    Ok(due)
}

/// Chooses the due recipients and leases them (inside the writer's transaction): the oldest
/// batch, and when it is full some of the newer work right after it; then whole messages while
/// their content (what the database holds of it) stays within the budget. Returns the messages
/// without their content.
fn take_due(
    conn: &rusqlite::Connection,
    now: Timestamp,
    owner: &str,
    until: Timestamp,
    limit: usize,
    kind: Due,
) -> Result<Vec<QueuedMessage>> {
    // A recipient whose lease still runs is someone else's (or this node's, still at work).
    const SELECT: &str = "SELECT r.id, r.address, r.tenant_id, r.route, r.mailbox_id, m.id, m.trace_id, m.sender, m.received, r.group_id, r.approved, r.next_attempt, m.authenticated_mailbox, coalesce(length(m.content), 0), \
         r.quarantine_kind, r.quarantine_policy, r.quarantine_reason, r.stamp, r.junk, r.quarantine_days, m.authenticated_from, r.attempts, r.connector, \
         r.dsn_notify, r.dsn_orcpt, m.dsn_ret, m.dsn_envid, m.high_risk, r.quarantine_tag \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.status = 'Pending' AND r.next_attempt <= ?1 AND (r.lease_until IS NULL OR r.lease_until <= ?1)";
    let due_sql = format!("{SELECT}{}", kind.clause());

    let mut by_message: BTreeMap<i64, (QueuedMessage, usize)> = BTreeMap::new();
    // Adds the rows of one query; returns how many there were and the latest next_attempt.
    let mut add = |mut rows: rusqlite::Rows<'_>| -> Result<(usize, i64)> {
        let (mut n, mut latest) = (0, i64::MIN);
        while let Some(r) = rows.next()? {
            n += 1;
            latest = latest.max(r.get(11)?);
            let message: i64 = r.get(5)?;
            let kind: String = r.get(3)?;
            let days_kept: Option<u32> = r.get(19)?;
            let tag: Option<String> = r.get(28)?;
            let rcpt = QueuedRecipient {
                id: r.get(0)?,
                address: r.get(1)?,
                tenant_id: r.get(2)?,
                route: route_from(&kind, r.get(4)?, r.get(9)?),
                approved: r.get::<_, i64>(10)? != 0,
                quarantine: hold_from(r.get(14)?, r.get(15)?, r.get(16)?).map(|h| QuarantineHold {
                    days: days_kept,
                    quarantine_policy: tag,
                    ..h
                }),
                stamp: r.get(17)?,
                junk: r.get::<_, i64>(18)? != 0,
                attempts: u32::try_from(r.get::<_, i64>(21)?.max(0)).unwrap_or(u32::MAX),
                connector: r.get(22)?,
                dsn: hato_core::dsn::RecipientDsn {
                    notify: r
                        .get::<_, Option<String>>(23)?
                        .as_deref()
                        .and_then(hato_core::dsn::Notify::from_stored),
                    orcpt: r
                        .get::<_, Option<String>>(24)?
                        .as_deref()
                        .and_then(hato_core::dsn::Orcpt::from_stored),
                },
            };
            if let Some((q, _)) = by_message.get_mut(&message) {
                q.recipients.push(rcpt);
            } else {
                let size = usize::try_from(r.get::<_, i64>(13)?).unwrap_or(usize::MAX);
                by_message.insert(
                    message,
                    (
                        QueuedMessage {
                            id: message,
                            trace_id: r.get(6)?,
                            sender: r.get(7)?,
                            received: Timestamp(r.get(8)?),
                            content: Vec::new(),
                            content_error: None,
                            spool: None,
                            recipients: vec![rcpt],
                            authenticated: r.get(12)?,
                            authenticated_from: r.get(20)?,
                            dsn: hato_core::dsn::MessageDsn {
                                ret: r
                                    .get::<_, Option<String>>(25)?
                                    .as_deref()
                                    .and_then(hato_core::dsn::Ret::from_stored),
                                envid: r.get(26)?,
                            },
                            high_risk: r.get::<_, i64>(27)? != 0,
                        },
                        size,
                    ),
                );
            }
        }
        Ok((n, latest))
    };
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let (n, latest) = add(conn
        .prepare_cached(&format!("{due_sql} ORDER BY r.next_attempt, r.id LIMIT ?2"))?
        .query(params![now.0, limit_sql])?)?;
    if n == limit && limit > 0 {
        // A full batch may be the first slice of one big expansion (100,000 member copies
        // share one next_attempt); newer work of other messages would wait behind all of
        // it. Take some of the newer work too, from the index right after the batch, so a
        // big message slows the others by one batch, not by its whole size.
        add(conn
            .prepare_cached(&format!(
                "{due_sql} AND r.next_attempt > ?3 ORDER BY r.next_attempt, r.id LIMIT ?2"
            ))?
            .query(params![now.0, (limit_sql / 4).max(1), latest])?)?;
    }
    let mut lease = conn
        .prepare_cached("UPDATE recipients SET lease_owner = ?1, lease_until = ?2 WHERE id = ?3")?;
    let mut out = Vec::with_capacity(by_message.len());
    // A bounded amount of content at once; the messages left out (not leased) come in the next
    // batch.
    let mut loaded = 0usize;
    for (_, (q, size)) in by_message {
        if loaded >= crate::DUE_CONTENT_BUDGET {
            break;
        }
        loaded = loaded.saturating_add(size);
        for r in &q.recipients {
            lease.execute(params![owner, until.0, r.id])?;
        }
        out.push(q);
    }
    Ok(out)
}

/// One page of the queue listing (see [`QueueStore::queue`]).
fn queue_page(store: &SqliteStore, q: &QueueQuery) -> Result<QueuePage> {
    // Held for moderation is not waiting in the delivery queue: the moderation queue lists it.
    let mut sql = String::from(
        "SELECT m.trace_id, m.received, m.sender, r.address, r.route, r.attempts, r.next_attempt, r.expires, \
           r.lease_owner, r.lease_until, r.last_status, r.last_enhanced_status, r.last_detail, r.last_remote_host, r.last_reason, \
           coalesce(r.lease_owner IS NOT NULL AND r.lease_until > ?1, 0) \
         FROM recipients r JOIN messages m ON m.id = r.message_id \
         WHERE r.status = 'Pending' \
           AND NOT EXISTS (SELECT 1 FROM moderation h WHERE h.recipient_id = r.id AND h.state = 'pending')",
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(q.now.0)];
    let mut arg = |sql: &mut String, clause: &str, v: Box<dyn rusqlite::ToSql>| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(t) = q.tenant {
        arg(&mut sql, " AND r.tenant_id = ?", Box::new(t));
    }
    if let Some(a) = &q.recipient {
        arg(&mut sql, " AND r.address = ?", Box::new(a.to_lowercase()));
    }
    if let Some(d) = &q.domain {
        // The domain is what follows the address's last `@` (a quoted local part may hold one).
        let escaped = d
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        arg(
            &mut sql,
            " AND r.address LIKE ? ESCAPE '\\'",
            Box::new(format!("%@{escaped}")),
        );
    }
    if let Some(t) = &q.trace_id {
        arg(&mut sql, " AND m.trace_id = ?", Box::new(t.to_lowercase()));
    }
    // ?1 is `now`: a lease that runs until later makes the recipient Active.
    match q.status {
        None => {}
        Some(QueueStatus::Active) => sql.push_str(" AND r.lease_until > ?1"),
        Some(QueueStatus::Ready) => {
            sql.push_str(" AND (r.lease_until IS NULL OR r.lease_until <= ?1) AND r.attempts = 0")
        }
        Some(QueueStatus::Retry) => {
            sql.push_str(" AND (r.lease_until IS NULL OR r.lease_until <= ?1) AND r.attempts > 0")
        }
    }
    let page_size = if q.page_size == 0 {
        TRACE_PAGE_SIZE_DEFAULT
    } else {
        q.page_size
    };
    let offset = q.page.max(1).saturating_sub(1).saturating_mul(page_size);
    let as_sql = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    // Oldest first, then by recipient row (unique): a total order, so consecutive pages neither
    // overlap nor skip a row, and new mail adds rows at the end. One row more than the page
    // tells whether another follows.
    sql.push_str(&format!(
        " ORDER BY m.received, r.id LIMIT {} OFFSET {}",
        as_sql(page_size.saturating_add(1)),
        as_sql(offset)
    ));
    store.read(|conn| {
        let mut stmt = conn.prepare(&sql)?;
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let mut rows = stmt
            .query_map(refs.as_slice(), |r| {
                let attempts = u32::try_from(r.get::<_, i64>(5)?.max(0)).unwrap_or(u32::MAX);
                // A lease that ran out is void: nobody is working on the recipient.
                let lease = match (
                    r.get::<_, bool>(15)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                ) {
                    (true, Some(owner), Some(until)) => Some((owner, Timestamp(until))),
                    _ => None,
                };
                let status = match (&lease, attempts) {
                    (Some(_), _) => QueueStatus::Active,
                    (None, 0) => QueueStatus::Ready,
                    (None, _) => QueueStatus::Retry,
                };
                let last_error = match (
                    r.get::<_, Option<i64>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ) {
                    (Some(code), Some(enhanced_status)) => Some(LastError {
                        status: u16::try_from(code).unwrap_or_default(),
                        enhanced_status,
                        text: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                        remote_host: r.get::<_, Option<String>>(13)?.unwrap_or_default(),
                        // A reason this hato cannot read leaves the error without one.
                        reason: r
                            .get::<_, Option<String>>(14)?
                            .as_deref()
                            .and_then(Reason::from_json),
                    }),
                    _ => None,
                };
                let next_attempt = match &lease {
                    Some((_, until)) => *until,
                    None => Timestamp(r.get(6)?),
                };
                Ok(QueueRow {
                    trace_id: r.get(0)?,
                    received: Timestamp(r.get(1)?).to_rfc3339(),
                    sender: r.get(2)?,
                    recipient: r.get(3)?,
                    route: r.get(4)?,
                    status: status.as_str().to_string(),
                    attempts,
                    last_error,
                    next_attempt: next_attempt.to_rfc3339(),
                    expires: Timestamp(r.get(7)?).to_rfc3339(),
                    lease_owner: lease.as_ref().map(|(owner, _)| owner.clone()),
                    lease_until: lease.map(|(_, until)| until.to_rfc3339()),
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        Ok(QueuePage { rows, more })
    })
}

/// Applies one delivery outcome (inside the caller's savepoint).
fn complete_one(
    conn: &rusqlite::Connection,
    o: &DeliveryOutcome,
    now: Timestamp,
    expiration: i64,
) -> Result<()> {
    if let Some(data) = &o.blob.inline {
        conn.prepare_cached("INSERT OR IGNORE INTO blobs(hash, data) VALUES (?1, ?2)")?
            .execute(params![o.blob.hash, data])?;
    }
    for (rcpt, outcome) in &o.recipients {
        // Only a recipient still pending is acted on: a retried batch delivers nothing twice.
        let status: Option<String> = conn
            .prepare_cached("SELECT status FROM recipients WHERE id = ?1")?
            .query_row([rcpt], |r| r.get(0))
            .optional()?;
        if status.as_deref() != Some("Pending") {
            continue;
        }
        let ndr_if_failed = if o.null_sender { 0 } else { 1 };
        match outcome {
            RecipientOutcome::Store { mailbox, folder } => {
                let quota: Option<(i64, i64, String)> = conn
                    .prepare_cached(
                        "SELECT used_bytes, quota_bytes, address FROM mailboxes WHERE id = ?1",
                    )?
                    .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                match quota {
                    None => {
                        set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                        let reason = Reason::new(
                            Stage::Recipient,
                            "The mailbox was removed after the message was accepted",
                        )
                        .figure("mailbox_id", *mailbox);
                        add_event(
                            conn,
                            *rcpt,
                            now.0,
                            &EventRecord::fail(Refusal::new(reply::MAILBOX_REMOVED, reason)),
                        )?;
                    }
                    Some((used, quota, address)) if used + o.size as i64 > quota => {
                        set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                        // The figures are for admins (trace); the sender's NDR gets the reply only.
                        let reason = Reason::new(
                            Stage::Delivery,
                            format!(
                                "The mailbox {address} uses {used} of its {quota} bytes; the message is {} bytes",
                                o.size
                            ),
                        )
                        .rule("mailbox quota")
                        .figure("size", o.size)
                        .figure("used", used)
                        .figure("limit", quota);
                        add_event(
                            conn,
                            *rcpt,
                            now.0,
                            &EventRecord::fail(Refusal::new(reply::MAILBOX_FULL, reason)),
                        )?;
                    }
                    Some((_, _, address)) => {
                        conn.prepare_cached(
                            "INSERT INTO mail_items(mailbox_id, folder, blob, received, from_header, subject, size, recipient_id) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?
                        .execute(params![mailbox, folder.as_str(), o.blob.hash, now.0, o.from_header, o.subject, o.size as i64, rcpt])?;
                        conn.prepare_cached(
                            "UPDATE mailboxes SET used_bytes = used_bytes + ?1 WHERE id = ?2",
                        )?
                        .execute(params![o.size as i64, mailbox])?;
                        set_status(conn, *rcpt, RecipientStatus::Delivered, 0, now.0)?;
                        owe_success_notice(conn, *rcpt, 1)?;
                        let detail = format!(
                            "Delivered to folder {} of mailbox {address}",
                            folder.display_name()
                        );
                        add_event(
                            conn,
                            *rcpt,
                            now.0,
                            &EventRecord::new(TraceEvent::Deliver, detail),
                        )?;
                    }
                }
            }
            RecipientOutcome::Fail(refusal) => {
                set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                add_event(conn, *rcpt, now.0, &EventRecord::fail(refusal.clone()))?;
            }
            RecipientOutcome::Defer(deferral) => {
                defer(conn, *rcpt, QueueWork::Delivery, deferral, now, expiration)?
            }
            RecipientOutcome::Quarantine {
                hold,
                mailbox,
                expires,
            } => quarantine_one(conn, o, *rcpt, hold, *mailbox, *expires, now)?,
            RecipientOutcome::Sent(sent) => {
                set_status(conn, *rcpt, RecipientStatus::Delivered, 0, now.0)?;
                if sent.relayed_dsn {
                    owe_success_notice(conn, *rcpt, 2)?;
                }
                add_event(conn, *rcpt, now.0, &send_event(sent))?;
            }
            RecipientOutcome::Outbound(reason) => {
                // Handed to the outbound agent: due now, unleased (the local agent's lease
                // would keep `due_remote` from it until it ran out).
                conn.prepare_cached(
                    "UPDATE recipients SET route = 'remote', mailbox_id = NULL, group_id = NULL, \
                     next_attempt = ?2, lease_owner = NULL, lease_until = NULL, updated = ?2 \
                     WHERE id = ?1",
                )?
                .execute(params![rcpt, now.0])?;
                let mut event = EventRecord::new(TraceEvent::AgentInfo, reason.text.as_str());
                event.reason = Some(reason.clone());
                add_event(conn, *rcpt, now.0, &event)?;
            }
        }
    }
    release_spool(conn, o.message_id)?;
    Ok(())
}

/// RFC 3461 §4.1 `NOTIFY=SUCCESS`: the recipient owes its sender a success notice, "delivered"
/// (`state` 1: hato filed it) or "relayed" (2: a next hop without DSN took it, §5.2.2). Nothing
/// for a recipient that did not ask; a next hop that offers DSN reports success itself.
fn owe_success_notice(conn: &rusqlite::Connection, rcpt: i64, state: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE recipients SET success_notice = ?1 \
         WHERE id = ?2 AND success_notice = 0 AND dsn_notify LIKE '%SUCCESS%' \
           AND EXISTS (SELECT 1 FROM messages m WHERE m.id = recipients.message_id \
                       AND m.sender != '' AND m.sender_auth_failed = 0)",
    )?
    .execute(params![state, rcpt])?;
    Ok(())
}

/// The `Send` event of a recipient another server took: the reply (its text the detail, its
/// codes in their fields), the remote host, and the rest as the reason's figures.
fn send_event(sent: &SentRecord) -> EventRecord {
    let tls = match &sent.tls {
        Some(t) => format!("over {} ({})", t.version, t.cipher),
        None => "without TLS".to_string(),
    };
    let through = match &sent.connector {
        Some(c) => format!(" through the outbound connector {c:?}"),
        None => String::new(),
    };
    let mut reason = Reason::new(
        Stage::Delivery,
        format!(
            "Sent to {} [{}]{through} {tls} from the {} pool",
            sent.remote_host, sent.remote_ip, sent.pool
        ),
    )
    .figure("remote_ip", sent.remote_ip.as_str())
    .figure("pool", sent.pool.as_str());
    if let Some(c) = &sent.connector {
        reason = reason.figure("connector", c.as_str());
    }
    if let Some(t) = &sent.tls {
        reason = reason
            .figure("tls_version", t.version.as_str())
            .figure("tls_cipher", t.cipher.as_str());
    }
    if let Some(sts) = &sent.mta_sts {
        reason = reason.figure("mta_sts", sts.as_str());
    }
    EventRecord {
        event: TraceEvent::Send,
        detail: sent.reply.text.to_string(),
        reply: Some(sent.reply.clone()),
        remote_host: sent.remote_host.clone(),
        reason: Some(reason),
    }
}

/// The quarantine decision queued with a recipient, as stored. A kind this hato does not know
/// (written by a newer one) is held as a transport rule's, so it is never delivered by mistake
/// and only admins see it; a reason it cannot read keeps its sentence as text.
fn hold_from(
    kind: Option<String>,
    policy: Option<String>,
    reason: Option<String>,
) -> Option<QuarantineHold> {
    let kind = kind?;
    let reason_json = reason.unwrap_or_default();
    Some(QuarantineHold {
        kind: QuarantineKind::parse(&kind).unwrap_or(QuarantineKind::TransportRule),
        policy: policy.unwrap_or_default(),
        reason: Reason::from_json(&reason_json)
            .unwrap_or_else(|| Reason::new(Stage::Queue, format!("Held in quarantine ({kind})"))),
        days: None,
        quarantine_policy: None,
    })
}

/// Holds one recipient's copy in quarantine (inside the caller's savepoint): one item per
/// recipient (`recipient_id` is unique, so a replayed batch stores nothing twice; the status
/// check in `complete_one` already skips a recipient no longer pending), the status
/// `Quarantined`, a `Quarantine` event with the stage's reason. No NDR: Exchange does not tell
/// the sender of a quarantined message.
fn quarantine_one(
    conn: &rusqlite::Connection,
    o: &DeliveryOutcome,
    rcpt: i64,
    hold: &QuarantineHold,
    mailbox: Option<hato_core::directory::MailboxId>,
    expires: Timestamp,
    now: Timestamp,
) -> Result<()> {
    let (tenant, address, trace_id, sender, received): (i64, String, String, String, i64) = conn
        .prepare_cached(
            "SELECT r.tenant_id, r.address, m.trace_id, m.sender, m.received \
             FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
        )?
        .query_row([rcpt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    conn.prepare_cached(
        "INSERT INTO quarantine(tenant_id, recipient_id, trace_id, recipient, mailbox_id, sender, from_header, subject, \
           received, quarantined, kind, policy, reason, expires, size, blob, quarantine_policy) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT(recipient_id) DO NOTHING",
    )?
    .execute(params![
        tenant,
        rcpt,
        trace_id,
        address,
        mailbox,
        sender,
        o.from_header,
        o.subject,
        received,
        now.0,
        hold.kind.as_str(),
        hold.policy,
        hold.reason.to_json(),
        expires.0,
        o.size as i64,
        o.blob.hash,
        // The quarantine policy the stage named, else Exchange's default for the kind.
        hold.quarantine_policy
            .as_deref()
            .unwrap_or(hold.kind.default_quarantine_policy())
    ])?;
    set_status(conn, rcpt, RecipientStatus::Quarantined, 0, now.0)?;
    let detail = format!(
        "Held in quarantine ({}) by {} until {}",
        hold.kind,
        if hold.policy.is_empty() {
            "an unnamed policy"
        } else {
            hold.policy.as_str()
        },
        expires.to_rfc3339()
    );
    let mut event = EventRecord::new(TraceEvent::Quarantine, detail);
    event.reason = Some(hold.reason.clone());
    add_event(conn, rcpt, now.0, &event)?;
    Ok(())
}

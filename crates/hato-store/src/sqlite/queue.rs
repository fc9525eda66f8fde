//! The durable queue: received messages, their recipients' delivery state, and NDR work.

use super::{SqliteStore, add_event, defer, release_spool, route_from, set_status};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::spool;
use crate::traits::QueueStore;
use crate::types::*;
use hato_core::Timestamp;
use hato_core::directory::Route;
use hato_core::reason::{Reason, Refusal, Stage};
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
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO messages(trace_id, received, sender, client_ip, helo, message_id, subject, size, content, authenticated_mailbox, spool) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                spool
            ])?;
            let message = conn.last_insert_rowid();
            let mut insert = conn.prepare_cached(
                "INSERT INTO recipients(message_id, tenant_id, address, route, mailbox_id, group_id, status, next_attempt, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7, 'Pending', ?6, ?6)",
            )?;
            for r in &m.recipients {
                let (mailbox, group) = match r.route {
                    Route::Local(id) => (Some(id), None),
                    Route::Group(id) => (None, Some(id)),
                    _ => (None, None),
                };
                insert.execute(params![message, r.tenant_id, r.address, r.route.kind(), mailbox, m.received.0, group])?;
                let id = conn.last_insert_rowid();
                add_event(conn, id, m.received.0, &EventRecord::new(TraceEvent::Receive, m.receive_detail.as_str()))?;
                for event in &r.extra_events {
                    add_event(conn, id, m.received.0, event)?;
                }
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

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedMessage>> {
        self.read(|conn| {
            const DUE: &str = "SELECT r.id, r.address, r.tenant_id, r.route, r.mailbox_id, m.id, m.trace_id, m.sender, m.received, r.group_id, r.approved, r.next_attempt, m.authenticated_mailbox \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.status = 'Pending' AND r.route IN ('local', 'relay', 'group', 'postmaster') AND r.next_attempt <= ?1";
            let mut by_message: BTreeMap<i64, QueuedMessage> = BTreeMap::new();
            // Adds the rows of one query; returns how many there were and the latest next_attempt.
            let mut add = |mut rows: rusqlite::Rows<'_>| -> Result<(usize, i64)> {
                let (mut n, mut latest) = (0, i64::MIN);
                while let Some(r) = rows.next()? {
                    n += 1;
                    latest = latest.max(r.get(11)?);
                    let message: i64 = r.get(5)?;
                    let kind: String = r.get(3)?;
                    let rcpt = QueuedRecipient {
                        id: r.get(0)?,
                        address: r.get(1)?,
                        tenant_id: r.get(2)?,
                        route: route_from(&kind, r.get(4)?, r.get(9)?),
                        approved: r.get::<_, i64>(10)? != 0,
                    };
                    if let Some(q) = by_message.get_mut(&message) {
                        q.recipients.push(rcpt);
                    } else {
                        by_message.insert(
                            message,
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
                            },
                        );
                    }
                }
                Ok((n, latest))
            };
            let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
            let (n, latest) = add(
                conn.prepare_cached(&format!("{DUE} ORDER BY r.next_attempt, r.id LIMIT ?2"))?
                    .query(params![now.0, limit_sql])?,
            )?;
            if n == limit && limit > 0 {
                // A full batch may be the first slice of one big expansion (100,000 member copies
                // share one next_attempt); newer work of other messages would wait behind all of
                // it. Take some of the newer work too, from the index right after the batch, so a
                // big message slows the others by one batch, not by its whole size.
                add(
                    conn.prepare_cached(&format!(
                        "{DUE} AND r.next_attempt > ?3 ORDER BY r.next_attempt, r.id LIMIT ?2"
                    ))?
                    .query(params![now.0, (limit_sql / 4).max(1), latest])?,
                )?;
            }
            let mut content = conn.prepare_cached("SELECT content, spool FROM messages WHERE id = ?1")?;
            let mut out = Vec::with_capacity(by_message.len());
            // A bounded amount of content at once; the messages left out come in the next batch.
            let mut loaded = 0;
            for (id, mut q) in by_message {
                if loaded >= crate::DUE_CONTENT_BUDGET {
                    break;
                }
                // A message whose content cannot be read is returned with the reason, so that its
                // recipients are deferred alone instead of failing the whole batch.
                match content.query_row([id], |r| Ok((r.get::<_, Option<Vec<u8>>>(0)?, r.get::<_, Option<String>>(1)?))) {
                    Ok((Some(c), spool)) => {
                        q.content = c;
                        match spool.map(|name| self.queue.path(&name)).transpose() {
                            Ok(path) => q.spool = path,
                            Err(e) => q.content_error = Some(e.to_string()),
                        }
                    }
                    Ok((None, _)) => q.content_error = Some(StoreError::Corrupt(format!("message {id} lost its spooled content")).to_string()),
                    Err(e) => q.content_error = Some(StoreError::from(e).to_string()),
                }
                loaded += q.content.len();
                out.push(q);
            }
            Ok(out)
        })
    }

    fn complete_deliveries(
        &self,
        outcomes: Vec<DeliveryOutcome>,
        now: Timestamp,
    ) -> Pending<Vec<FailedOutcome>> {
        self.write(move |conn| {
            let mut failed = Vec::new();
            for o in &outcomes {
                // Each outcome in its own savepoint: one that cannot be applied (a constraint, a
                // row in a bad state) is rolled back alone and handed back to be deferred, instead
                // of rolling back, and so blocking, every tenant's deliveries in the batch.
                conn.prepare_cached("SAVEPOINT outcome")?.execute([])?;
                match complete_one(conn, o, now) {
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
                   r.report_to \
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
    fn defer_recipients(
        &self,
        deferrals: Vec<Deferral>,
        policy: RetryPolicy,
        now: Timestamp,
    ) -> Pending<()> {
        self.write(move |conn| {
            for d in &deferrals {
                for rcpt in &d.recipients {
                    let row: Option<(String, i64, i64, bool)> = conn
                        .prepare_cached(
                            "SELECT r.status, r.attempts, r.message_id, m.sender = '' \
                             FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
                        )?
                        .query_row([rcpt], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()?;
                    let Some((status, attempts, message, null_sender)) = row else { continue };
                    if status != "Pending" {
                        continue;
                    }
                    let attempt = u32::try_from(attempts.max(0)).unwrap_or(u32::MAX).saturating_add(1);
                    if attempt >= policy.max_attempts {
                        conn.prepare_cached("UPDATE recipients SET attempts = ?1 WHERE id = ?2")?
                            .execute(params![attempt, rcpt])?;
                        set_status(conn, *rcpt, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                        let reason = Reason::new(Stage::Queue, format!("Processing failed {attempt} times; last: {}", d.reason))
                            .figure("attempts", attempt)
                            .figure("max_attempts", policy.max_attempts);
                        let refusal = Refusal::new(reply::processing_expired(attempt, &d.reason), reason);
                        add_event(conn, *rcpt, now.0, &EventRecord::fail(refusal))?;
                        release_spool(conn, message)?;
                    } else {
                        let retry = now.plus_seconds(policy.delay_secs(attempt));
                        conn.prepare_cached("UPDATE recipients SET attempts = ?1, next_attempt = ?2, updated = ?3 WHERE id = ?4")?
                            .execute(params![attempt, retry.0, now.0, rcpt])?;
                        let detail = format!(
                            "Processing failed (attempt {attempt} of {}): {}; next attempt at {}",
                            policy.max_attempts, d.reason, retry.to_rfc3339()
                        );
                        let reason = Reason::new(Stage::Queue, format!("Processing failed: {}", d.reason))
                            .figure("attempt", attempt)
                            .figure("max_attempts", policy.max_attempts)
                            .figure("next_attempt", retry.to_rfc3339());
                        add_event(conn, *rcpt, now.0, &EventRecord::new(TraceEvent::Defer, detail).with_reason(reason))?;
                    }
                }
            }
            Ok(())
        })
    }

    fn defer_ndrs(
        &self,
        deferrals: Vec<Deferral>,
        policy: RetryPolicy,
        now: Timestamp,
    ) -> Pending<()> {
        self.write(move |conn| {
            for d in &deferrals {
                for rcpt in &d.recipients {
                    let row: Option<(i64, i64, i64)> = conn
                        .prepare_cached("SELECT ndr_state, attempts, message_id FROM recipients WHERE id = ?1")?
                        .query_row([rcpt], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?;
                    let Some((1, attempts, message)) = row else { continue };
                    let attempt = u32::try_from(attempts.max(0)).unwrap_or(u32::MAX).saturating_add(1);
                    if attempt >= policy.max_attempts {
                        conn.prepare_cached("UPDATE recipients SET attempts = ?1, ndr_state = 3, updated = ?2 WHERE id = ?3")?
                            .execute(params![attempt, now.0, rcpt])?;
                        let detail = format!("No non-delivery report could be generated after {attempt} attempts: {}", d.reason);
                        let reason = Reason::new(Stage::Queue, format!("Generating the non-delivery report failed {attempt} times; last: {}", d.reason))
                            .figure("attempts", attempt)
                            .figure("max_attempts", policy.max_attempts);
                        add_event(conn, *rcpt, now.0, &EventRecord::new(TraceEvent::Dsn, detail).with_reason(reason))?;
                        release_spool(conn, message)?;
                    } else {
                        let retry = now.plus_seconds(policy.delay_secs(attempt));
                        conn.prepare_cached("UPDATE recipients SET attempts = ?1, next_attempt = ?2, updated = ?3 WHERE id = ?4")?
                            .execute(params![attempt, retry.0, now.0, rcpt])?;
                        let detail = format!(
                            "The non-delivery report could not be generated (attempt {attempt} of {}): {}; next attempt at {}",
                            policy.max_attempts, d.reason, retry.to_rfc3339()
                        );
                        let reason = Reason::new(Stage::Queue, format!("Generating the non-delivery report failed: {}", d.reason))
                            .figure("attempt", attempt)
                            .figure("max_attempts", policy.max_attempts)
                            .figure("next_attempt", retry.to_rfc3339());
                        add_event(conn, *rcpt, now.0, &EventRecord::new(TraceEvent::Defer, detail).with_reason(reason))?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Applies one delivery outcome (inside the caller's savepoint).
fn complete_one(conn: &rusqlite::Connection, o: &DeliveryOutcome, now: Timestamp) -> Result<()> {
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
            RecipientOutcome::Defer { reason, retry_at } => {
                defer(conn, *rcpt, reason, *retry_at, now)?
            }
        }
    }
    release_spool(conn, o.message_id)?;
    Ok(())
}

//! Routing decisions for group recipients (expansion, holding, failing) and the moderation queue.

use super::{SqliteStore, add_event, release_spool, set_status};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::ModerationStore;
use crate::types::{GroupOutcome, HeldMessage, ModerationState};
use hato_core::Timestamp;
use hato_core::directory::{GroupId, Route, TenantId};
use hato_core::reason::{Reason, Refusal, Stage};
use hato_core::reply;
use hato_core::trace::{EventRecord, RecipientStatus, TraceEvent};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

fn held_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<HeldMessage> {
    let state: String = r.get(9)?;
    Ok(HeldMessage {
        id: r.get(0)?,
        recipient_id: r.get(1)?,
        group_id: r.get(2)?,
        tenant_id: r.get(3)?,
        trace_id: r.get(4)?,
        sender: r.get(5)?,
        subject: r.get(6)?,
        received: Timestamp(r.get(7)?),
        expires: Timestamp(r.get(8)?),
        state: ModerationState::parse(&state).unwrap_or(ModerationState::Pending),
        decided_by: r.get(10)?,
        comment: r.get(11)?,
    })
}

const HELD_SELECT: &str = "SELECT h.id, h.recipient_id, h.group_id, h.tenant_id, m.trace_id, m.sender, m.subject, \
     m.received, h.expires, h.state, h.decided_by, h.comment \
     FROM moderation h JOIN recipients r ON r.id = h.recipient_id JOIN messages m ON m.id = r.message_id";

/// The addresses a message already has recipients for, as expansion adds members.
enum KnownAddresses {
    /// Few members: one indexed lookup each (cheaper than reading a big message's recipients);
    /// a member inserted meanwhile is seen by the next lookup (same transaction).
    Lookup { message: i64 },
    /// Many members: every address of the message, read once.
    Set(HashSet<String>),
}

/// Above this many members an expansion reads the message's addresses into a set.
const LOOKUP_MAX_MEMBERS: usize = 256;

impl KnownAddresses {
    fn new(conn: &Connection, message: i64, members: usize) -> Result<Self> {
        if members <= LOOKUP_MAX_MEMBERS {
            return Ok(KnownAddresses::Lookup { message });
        }
        let mut stmt =
            conn.prepare_cached("SELECT address FROM recipients WHERE message_id = ?1")?;
        let set = stmt
            .query_map([message], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<HashSet<_>, _>>()?;
        Ok(KnownAddresses::Set(set))
    }

    /// Records `address`; false when the message already had it.
    fn insert(&mut self, conn: &Connection, address: &str) -> Result<bool> {
        match self {
            KnownAddresses::Set(set) => Ok(set.insert(address.to_string())),
            KnownAddresses::Lookup { message } => {
                let known: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1 AND address = ?2)")?
                    .query_row(params![*message, address], |r| r.get(0))?;
                Ok(!known)
            }
        }
    }
}

impl ModerationStore for SqliteStore {
    fn route_group_recipient(
        &self,
        recipient: i64,
        message: i64,
        outcome: GroupOutcome,
        now: Timestamp,
    ) -> Pending<bool> {
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM recipients WHERE id = ?1", [recipient], |r| r.get(0))
                .optional()?;
            if status.as_deref() != Some("Pending") {
                return Ok(false);
            }
            match outcome {
                GroupOutcome::Expand { detail, reason, members } => {
                    set_status(conn, recipient, RecipientStatus::Expanded, 0, now.0)?;
                    let mut event = EventRecord::new(TraceEvent::Expand, detail);
                    event.reason = reason;
                    add_event(conn, recipient, now.0, &event)?;
                    let null_sender: bool = conn.query_row(
                        "SELECT sender = '' FROM messages WHERE id = ?1",
                        [message],
                        |r| r.get(0),
                    )?;
                    // "Is this member already a recipient of the message?" in linear time: a few
                    // members are looked up one by one (index on message_id, address); a big
                    // expansion reads the message's addresses once into a set instead of running
                    // a query per member.
                    let mut known = KnownAddresses::new(conn, message, members.len())?;
                    // Members are recipients of the same message: they expire with the group.
                    // They carry the group's stamp (its antispam report): the message is the same.
                    // And its Junk Email verdict, and whether a delay notice may go for it (not to a
                    // null or forged sender, nor when the group's NOTIFY left DELAY out).
                    let (expires, stamp, junk, delay_notice): (i64, String, i64, i64) = conn.query_row("SELECT expires, stamp, junk, delay_notice FROM recipients WHERE id = ?1", [recipient], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    let mut insert = conn.prepare_cached(
                        "INSERT INTO recipients(message_id, tenant_id, address, route, mailbox_id, group_id, status, next_attempt, updated, report_to, expires, stamp, junk, delay_notice) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'Pending', ?7, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?;
                    for m in members {
                        // A member already among the message's recipients, in any state, gets no
                        // second copy; a group already routed is not expanded again, which is
                        // what ends loops between groups.
                        if !known.insert(conn, &m.address)? {
                            continue;
                        }
                        let (mailbox, group) = match m.route {
                            Route::Local(id) => (Some(id), None),
                            Route::Group(id) => (None, Some(id)),
                            _ => (None, m.group_id),
                        };
                        // One address a line ('' = nobody); NULL = the sender.
                        let report_to = m.report_to.as_ref().map(|l| l.join("\n"));
                        insert.execute(params![message, m.tenant_id, m.address, m.route.kind(), mailbox, group, now.0, report_to, expires, stamp, junk, delay_notice])?;
                        let id = conn.last_insert_rowid();
                        add_event(conn, id, now.0, &EventRecord::new(TraceEvent::Expand, m.detail.as_str()))?;
                        if let Some(refusal) = &m.fail {
                            set_status(conn, id, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                            add_event(conn, id, now.0, &EventRecord::fail(refusal.clone()))?;
                        }
                    }
                }
                GroupOutcome::Hold { group_id, tenant_id, expires, reason } => {
                    let held = conn.execute(
                        "INSERT OR IGNORE INTO moderation(recipient_id, group_id, tenant_id, created, expires, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                        params![recipient, group_id, tenant_id, now.0, expires.0],
                    )?;
                    if held == 0 {
                        // Already held (this is a retry): nothing more to record.
                        return Ok(false);
                    }
                    // Not due again until a moderator decides (or it expires); nobody works on it.
                    conn.execute(
                        "UPDATE recipients SET next_attempt = ?1, updated = ?2, lease_owner = NULL, lease_until = NULL WHERE id = ?3",
                        params![i64::MAX, now.0, recipient],
                    )?;
                    add_event(conn, recipient, now.0, &EventRecord::because(TraceEvent::Defer, reason))?;
                }
                GroupOutcome::Fail(refusal) => {
                    let null_sender: bool = conn.query_row("SELECT sender = '' FROM messages WHERE id = ?1", [message], |r| r.get(0))?;
                    set_status(conn, recipient, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                    add_event(conn, recipient, now.0, &EventRecord::fail(refusal))?;
                }
            }
            release_spool(conn, message)?;
            Ok(true)
        })
    }

    fn moderation_queue(
        &self,
        tenant: Option<TenantId>,
        group: Option<GroupId>,
        state: Option<ModerationState>,
    ) -> Result<Vec<HeldMessage>> {
        self.read(|conn| {
            let sql = format!(
                "{HELD_SELECT} WHERE (?1 IS NULL OR h.tenant_id = ?1) AND (?2 IS NULL OR h.group_id = ?2) AND (?3 IS NULL OR h.state = ?3) ORDER BY h.id"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![tenant, group, state.map(ModerationState::as_str)], held_from)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn expired_moderation(&self, now: Timestamp) -> Result<Vec<i64>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM moderation WHERE state = 'pending' AND expires <= ?1 ORDER BY expires",
            )?;
            let ids = stmt
                .query_map([now.0], |r| r.get(0))?
                .collect::<std::result::Result<Vec<i64>, _>>()?;
            Ok(ids)
        })
    }

    fn decide_moderation(
        &self,
        id: i64,
        decision: ModerationState,
        by: String,
        comment: String,
        now: Timestamp,
    ) -> Pending<HeldMessage> {
        let expiration = self.message_expiration;
        self.write(move |conn| {
            let held = conn
                .prepare_cached(&format!("{HELD_SELECT} WHERE h.id = ?1"))?
                .query_row([id], held_from)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("held message {id}")))?;
            if held.state != ModerationState::Pending {
                return Err(StoreError::Invalid(format!("held message {id} was already {}", held.state.as_str())));
            }
            conn.execute(
                "UPDATE moderation SET state = ?1, decided_by = ?2, comment = ?3 WHERE id = ?4",
                params![decision.as_str(), by, comment, id],
            )?;
            let rcpt = held.recipient_id;
            let message: i64 = conn.query_row("SELECT message_id FROM recipients WHERE id = ?1", [rcpt], |r| r.get(0))?;
            // The rule is the group's moderation: its address (its name for a group without one,
            // or its id once it is gone).
            let group: String = conn
                .query_row("SELECT coalesce(address, name) FROM groups WHERE id = ?1", [held.group_id], |r| r.get(0))
                .optional()?
                .unwrap_or_else(|| format!("group {}", held.group_id));
            let rule = format!("{group}: ModerationEnabled");
            match decision {
                ModerationState::Approved => {
                    // Exchange resubmits an approved message: its time in the queue starts again
                    // (never shortened), so waiting for a moderator does not use it up.
                    conn.execute(
                        "UPDATE recipients SET approved = 1, next_attempt = ?1, updated = ?1, expires = max(expires, ?3) WHERE id = ?2",
                        params![now.0, rcpt, now.0.saturating_add(expiration)],
                    )?;
                    let reason = Reason::new(Stage::Moderation, format!("Approved by moderator {by}")).rule(rule);
                    add_event(conn, rcpt, now.0, &EventRecord::because(TraceEvent::Defer, reason))?;
                }
                ModerationState::Rejected | ModerationState::Expired => {
                    let null_sender = held.sender.is_empty();
                    set_status(conn, rcpt, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                    let refusal = if decision == ModerationState::Rejected {
                        let mut reason = Reason::new(Stage::Moderation, format!("The moderator {by} rejected the message")).rule(rule);
                        if !comment.is_empty() {
                            reason = reason.figure("comment", comment.as_str());
                        }
                        Refusal::new(reply::moderation_rejection(&by, &comment), reason)
                    } else {
                        let window: i64 = conn.query_row("SELECT expires - created FROM moderation WHERE id = ?1", [id], |r| r.get(0))?;
                        let hours = window.max(0) / 3_600_000_000;
                        let reason = Reason::new(Stage::Moderation, "No moderator approved or rejected the message before the request expired")
                            .rule(rule)
                            .figure("expiry_hours", hours);
                        Refusal::new(reply::MODERATION_EXPIRED, reason)
                    };
                    add_event(conn, rcpt, now.0, &EventRecord::fail(refusal))?;
                    release_spool(conn, message)?;
                }
                ModerationState::Pending => {}
            }
            Ok(HeldMessage { state: decision, decided_by: by, comment, ..held })
        })
    }
}

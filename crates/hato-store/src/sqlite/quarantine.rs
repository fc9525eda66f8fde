//! The hosted quarantine: items held per recipient (stored by delivery, `queue.rs`), their
//! listing, release into the Inbox, deletion and expiry.

use super::{SqliteStore, add_event, set_status};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::QuarantineStore;
use crate::types::*;
use hato_core::Reason;
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use hato_core::trace::{EventRecord, RecipientStatus, TraceEvent};
use rusqlite::{Connection, OptionalExtension, params};

const COLUMNS: &str = "id, tenant_id, trace_id, recipient_id, recipient, mailbox_id, sender, from_header, subject, \
     received, quarantined, kind, policy, reason, expires, size, state, decided_by, decided, blob, \
     quarantine_policy, request_state, requested_by, requested, request_decided_by, request_decided";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineItem> {
    let kind: String = r.get(11)?;
    let state: String = r.get(16)?;
    Ok(QuarantineItem {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        trace_id: r.get(2)?,
        recipient_id: r.get(3)?,
        recipient: r.get(4)?,
        mailbox_id: r.get(5)?,
        sender: r.get(6)?,
        from_header: r.get(7)?,
        subject: r.get(8)?,
        received: Timestamp(r.get(9)?),
        quarantined: Timestamp(r.get(10)?),
        // A kind written by a newer hato is shown as admin-only (a transport rule's) rather
        // than to users.
        kind: QuarantineKind::parse(&kind).unwrap_or(QuarantineKind::TransportRule),
        policy: r.get(12)?,
        reason: r
            .get::<_, Option<String>>(13)?
            .as_deref()
            .and_then(Reason::from_json),
        expires: Timestamp(r.get(14)?),
        size: u64::try_from(r.get::<_, i64>(15)?).unwrap_or_default(),
        state: QuarantineState::parse(&state).unwrap_or(QuarantineState::Deleted),
        decided_by: r.get(17)?,
        decided: r.get::<_, Option<i64>>(18)?.map(Timestamp),
        blob: r.get(19)?,
        quarantine_policy: r.get(20)?,
        request: match r.get::<_, Option<String>>(21)? {
            None => None,
            Some(state) => Some(ReleaseRequest {
                // A state written by a newer hato reads as pending: an admin still decides.
                state: ReleaseRequestState::parse(&state).unwrap_or(ReleaseRequestState::Pending),
                by: r.get::<_, Option<String>>(22)?.unwrap_or_default(),
                at: Timestamp(r.get::<_, Option<i64>>(23)?.unwrap_or_default()),
                decided_by: r.get(24)?,
                decided: r.get::<_, Option<i64>>(25)?.map(Timestamp),
            }),
        },
    })
}

pub(super) fn item(conn: &Connection, id: i64) -> Result<Option<QuarantineItem>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM quarantine WHERE id = ?1"))?
        .query_row([id], item_from_row)
        .optional()?)
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("quarantined message {id}"))
}

/// Refuses an item that is no longer held: a second release, a release after deletion.
fn still_held(it: &QuarantineItem) -> Result<()> {
    match it.state {
        QuarantineState::Held => Ok(()),
        QuarantineState::Released | QuarantineState::Deleted => Err(StoreError::InUse(format!(
            "quarantined message {} was {} by {} at {}",
            it.id,
            it.state.as_str(),
            it.decided_by.as_deref().unwrap_or("someone"),
            it.decided.map(Timestamp::to_rfc3339).unwrap_or_default()
        ))),
    }
}

impl QuarantineStore for SqliteStore {
    fn quarantine_items(&self, q: &QuarantineQuery) -> Result<QuarantinePage> {
        let mut sql = format!("SELECT {COLUMNS} FROM quarantine WHERE 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = q.tenant {
            arg(&mut sql, " AND tenant_id = ?", Box::new(t));
        }
        if let Some(a) = &q.recipient {
            arg(&mut sql, " AND recipient = ?", Box::new(a.to_lowercase()));
        }
        if let Some(m) = q.mailbox {
            arg(&mut sql, " AND mailbox_id = ?", Box::new(m));
        }
        if let Some(t) = &q.trace_id {
            arg(&mut sql, " AND trace_id = ?", Box::new(t.to_lowercase()));
        }
        if let Some(k) = q.kind {
            arg(&mut sql, " AND kind = ?", Box::new(k.as_str()));
        }
        if let Some(st) = q.state {
            arg(&mut sql, " AND state = ?", Box::new(st.as_str()));
        }
        if let Some(p) = &q.policy {
            arg(
                &mut sql,
                " AND policy = ? COLLATE NOCASE",
                Box::new(p.clone()),
            );
        }
        if let Some(t) = q.expires_before {
            arg(&mut sql, " AND expires < ?", Box::new(t.0));
        }
        if let Some(r) = q.request {
            arg(&mut sql, " AND request_state = ?", Box::new(r.as_str()));
        }
        // After the last `arg`: the names are bound here, one parameter each.
        if let Some(names) = &q.quarantine_policies {
            if names.is_empty() {
                sql.push_str(" AND 0");
            } else {
                let mut marks = Vec::new();
                for n in names {
                    args.push(Box::new(n.clone()));
                    marks.push(format!("?{}", args.len()));
                }
                sql.push_str(&format!(
                    " AND quarantine_policy COLLATE NOCASE IN ({})",
                    marks.join(", ")
                ));
            }
        }
        if q.without_admin_only {
            let user_kinds: Vec<String> = QuarantineKind::ALL
                .into_iter()
                .filter(|k| !k.admin_only())
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            sql.push_str(&format!(" AND kind IN ({})", user_kinds.join(", ")));
        }
        let limit = if q.limit == 0 {
            TRACE_PAGE_SIZE_DEFAULT
        } else {
            q.limit
        };
        let as_sql = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        // Newest first, then by id (unique): a total order, so pages neither overlap nor skip.
        // One row more than the page tells whether another follows.
        sql.push_str(&format!(
            " ORDER BY received DESC, id DESC LIMIT {} OFFSET {}",
            as_sql(limit.saturating_add(1)),
            as_sql(q.offset)
        ));
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            let mut items = stmt
                .query_map(refs.as_slice(), item_from_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let more = items.len() > limit;
            items.truncate(limit);
            Ok(QuarantinePage { items, more })
        })
    }

    fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>> {
        self.read(|conn| item(conn, id))
    }

    fn release_quarantined(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem> {
        let by = by.to_string();
        self.write(move |conn| {
            let it = item(conn, id)?.ok_or_else(|| not_found(id))?;
            still_held(&it)?;
            // The mailbox it was routed to; else (a relay or postmaster recipient, or a mailbox
            // removed and made again) the one that answers to the address now, in its tenant.
            let routed: Option<(i64, i64, i64, String)> = match it.mailbox_id {
                Some(m) => conn
                    .prepare_cached(
                        "SELECT id, used_bytes, quota_bytes, address FROM mailboxes WHERE id = ?1 AND tenant_id = ?2",
                    )?
                    .query_row(params![m, it.tenant_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?,
                None => None,
            };
            let mailbox = match routed {
                Some(m) => Some(m),
                None => conn
                    .prepare_cached(
                        "SELECT m.id, m.used_bytes, m.quota_bytes, m.address FROM addresses a \
                         JOIN mailboxes m ON m.id = a.mailbox_id WHERE a.address = ?1 AND m.tenant_id = ?2",
                    )?
                    .query_row(params![it.recipient, it.tenant_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?,
            };
            let Some((mailbox, used, quota, address)) = mailbox else {
                return Err(StoreError::NotFound(format!(
                    "a mailbox for {} (the quarantined message {id} can only be released to a mailbox)",
                    it.recipient
                )));
            };
            let size = i64::try_from(it.size).unwrap_or(i64::MAX);
            if used.saturating_add(size) > quota {
                return Err(StoreError::InUse(format!(
                    "the mailbox {address} is full: it uses {used} of its {quota} bytes and the message is {size} bytes"
                )));
            }
            let Some(blob) = it.blob.clone() else {
                return Err(StoreError::Corrupt(format!(
                    "quarantined message {id} has no content"
                )));
            };
            // The mailbox item takes the recipient's slot (its `recipient_id`): a quarantined
            // recipient was never delivered, so the slot is free, and a second release could
            // not file a second copy even if the state check above were bypassed.
            conn.prepare_cached(
                "INSERT INTO mail_items(mailbox_id, folder, blob, received, from_header, subject, size, recipient_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                mailbox,
                Folder::Inbox.as_str(),
                blob,
                now.0,
                it.from_header,
                it.subject,
                size,
                it.recipient_id
            ])?;
            conn.prepare_cached("UPDATE mailboxes SET used_bytes = used_bytes + ?1 WHERE id = ?2")?
                .execute(params![size, mailbox])?;
            conn.prepare_cached(
                "UPDATE quarantine SET state = 'released', decided_by = ?1, decided = ?2, \
                 request_state = CASE request_state WHEN 'pending' THEN 'approved' ELSE request_state END, \
                 request_decided_by = CASE request_state WHEN 'pending' THEN ?1 ELSE request_decided_by END, \
                 request_decided = CASE request_state WHEN 'pending' THEN ?2 ELSE request_decided END \
                 WHERE id = ?3",
            )?
            .execute(params![by, now.0, id])?;
            // The recipient's trace, while retention keeps it.
            let traced: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM recipients WHERE id = ?1)")?
                .query_row([it.recipient_id], |r| r.get(0))?;
            if traced {
                set_status(conn, it.recipient_id, RecipientStatus::Delivered, 0, now.0)?;
                add_event(
                    conn,
                    it.recipient_id,
                    now.0,
                    &EventRecord::new(
                        TraceEvent::Release,
                        format!("Released from quarantine by {by}"),
                    ),
                )?;
                add_event(
                    conn,
                    it.recipient_id,
                    now.0,
                    &EventRecord::new(
                        TraceEvent::Deliver,
                        format!(
                            "Delivered to folder {} of mailbox {address}",
                            Folder::Inbox.display_name()
                        ),
                    ),
                )?;
            }
            item(conn, id)?.ok_or_else(|| not_found(id))
        })
    }

    fn delete_quarantined(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem> {
        let by = by.to_string();
        self.write(move |conn| {
            let it = item(conn, id)?.ok_or_else(|| not_found(id))?;
            if it.state == QuarantineState::Deleted {
                return Err(StoreError::InUse(format!(
                    "quarantined message {id} was deleted already"
                )));
            }
            // The content goes with the next garbage collection unless a mailbox item (a
            // released copy) or another item still names the blob.
            conn.prepare_cached(
                "UPDATE quarantine SET state = 'deleted', blob = NULL, decided_by = ?1, decided = ?2 WHERE id = ?3",
            )?
            .execute(params![by, now.0, id])?;
            item(conn, id)?.ok_or_else(|| not_found(id))
        })
    }

    fn request_release(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem> {
        let by = by.to_string();
        self.write(move |conn| {
            let it = item(conn, id)?.ok_or_else(|| not_found(id))?;
            still_held(&it)?;
            if let Some(r) = &it.request {
                return Err(StoreError::InUse(match r.state {
                    ReleaseRequestState::Denied => format!(
                        "the release of quarantined message {id} was denied by {} at {}",
                        r.decided_by.as_deref().unwrap_or("an admin"),
                        r.decided.map(Timestamp::to_rfc3339).unwrap_or_default()
                    ),
                    _ => format!(
                        "the release of quarantined message {id} was requested already by {} at {}",
                        r.by,
                        r.at.to_rfc3339()
                    ),
                }));
            }
            conn.prepare_cached(
                "UPDATE quarantine SET request_state = 'pending', requested_by = ?1, requested = ?2, \
                 request_decided_by = NULL, request_decided = NULL WHERE id = ?3",
            )?
            .execute(params![by, now.0, id])?;
            item(conn, id)?.ok_or_else(|| not_found(id))
        })
    }

    fn deny_release(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem> {
        let by = by.to_string();
        self.write(move |conn| {
            let it = item(conn, id)?.ok_or_else(|| not_found(id))?;
            still_held(&it)?;
            if it.request.as_ref().map(|r| r.state) != Some(ReleaseRequestState::Pending) {
                return Err(StoreError::InUse(format!(
                    "quarantined message {id} has no pending release request"
                )));
            }
            conn.prepare_cached(
                "UPDATE quarantine SET request_state = 'denied', request_decided_by = ?1, request_decided = ?2 \
                 WHERE id = ?3",
            )?
            .execute(params![by, now.0, id])?;
            item(conn, id)?.ok_or_else(|| not_found(id))
        })
    }

    fn quarantine_policies(&self, tenant: TenantId) -> Result<Vec<QuarantinePolicy>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, permissions, notifications FROM quarantine_policies \
                 WHERE tenant_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([tenant], |r| {
                Ok(QuarantinePolicy {
                    name: r.get(0)?,
                    permissions: QuarantinePermissions(
                        u8::try_from(r.get::<_, i64>(1)?).unwrap_or_default(),
                    ),
                    notifications: r.get::<_, i64>(2)? != 0,
                    built_in: false,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn put_quarantine_policy(
        &self,
        tenant: TenantId,
        policy: QuarantinePolicy,
        create: bool,
        now: Timestamp,
    ) -> Pending<()> {
        self.write(move |conn| {
            let perms = i64::from(policy.permissions.0);
            if create {
                conn.prepare_cached(
                    "INSERT INTO quarantine_policies(tenant_id, name, permissions, notifications, updated) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![tenant, policy.name, perms, policy.notifications, now.0])
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("quarantine policy {}", policy.name))
                    }
                    other => other,
                })?;
            } else {
                let n = conn
                    .prepare_cached(
                        "UPDATE quarantine_policies SET permissions = ?3, notifications = ?4, updated = ?5 \
                         WHERE tenant_id = ?1 AND name = ?2",
                    )?
                    .execute(params![tenant, policy.name, perms, policy.notifications, now.0])?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!(
                        "quarantine policy {}",
                        policy.name
                    )));
                }
            }
            Ok(())
        })
    }

    fn remove_quarantine_policy(&self, tenant: TenantId, name: &str) -> Pending<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "DELETE FROM quarantine_policies WHERE tenant_id = ?1 AND name = ?2",
                )?
                .execute(params![tenant, name])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("quarantine policy {name}")));
            }
            Ok(())
        })
    }

    fn purge_quarantine(&self, now: Timestamp) -> Pending<usize> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM quarantine WHERE expires <= ?1")?
                .execute([now.0])?)
        })
    }
}

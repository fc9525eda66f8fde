//! Groups, contacts, permissions, role groups, users' credentials, moderation, expansion
//! bookkeeping and group mailboxes in the embedded store.

use crate::sqlite::{
    SqliteStore, add_event, bump_directory, now_micros, release_spool, set_status, tenant_of,
};
use crate::types::*;
use crate::{GroupStore, Pending, Result, StoreError};
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::{
    Contact, ContactId, Group, GroupId, GroupSettings, GroupType, MailboxAttributes, MailboxId,
    MailboxRight, MemberRef, Permission, Route, TenantDirectory, TenantId,
};
use hato_core::trace::{RecipientStatus, TraceEvent};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

fn member_kind(m: &MemberRef) -> (&'static str, i64) {
    match m {
        MemberRef::Mailbox(id) => ("mailbox", *id),
        MemberRef::Contact(id) => ("contact", *id),
        MemberRef::Group(id) => ("group", *id),
    }
}

fn member_from(kind: &str, id: i64) -> Option<MemberRef> {
    match kind {
        "mailbox" => Some(MemberRef::Mailbox(id)),
        "contact" => Some(MemberRef::Contact(id)),
        "group" => Some(MemberRef::Group(id)),
        _ => None,
    }
}

fn settings_json(s: &GroupSettings) -> Result<String> {
    serde_json::to_string(s).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Checks that a member exists in `tenant` (members never cross tenants).
fn check_member(conn: &Connection, tenant: TenantId, m: &MemberRef) -> Result<()> {
    let (table, id) = match m {
        MemberRef::Mailbox(id) => ("mailboxes", *id),
        MemberRef::Contact(id) => ("contacts", *id),
        MemberRef::Group(id) => ("groups", *id),
    };
    let owner: Option<i64> = conn
        .query_row(
            &format!("SELECT tenant_id FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .optional()?;
    if owner != Some(tenant) {
        return Err(StoreError::NotFound(format!("member {table} {id}")));
    }
    Ok(())
}

fn load_group(conn: &Connection, id: GroupId) -> Result<Group> {
    let row: Option<(i64, String, Option<String>, String, String)> = conn
        .prepare_cached(
            "SELECT tenant_id, name, address, type, settings FROM groups WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((tenant_id, name, address, kind, settings)) = row else {
        return Err(StoreError::NotFound(format!("group {id}")));
    };
    let group_type = GroupType::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("group {id} type {kind}")))?;
    let settings: GroupSettings = serde_json::from_str(&settings)
        .map_err(|e| StoreError::Corrupt(format!("group {id} settings: {e}")))?;
    let mut members = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT kind, member_id FROM group_members WHERE group_id = ?1 ORDER BY kind, member_id",
    )?;
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        if let Some(m) = member_from(&kind, r.get(1)?) {
            members.push(m);
        }
    }
    let ids = |sql: &str| -> Result<Vec<i64>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let v = stmt
            .query_map([id], |r| r.get(0))?
            .collect::<std::result::Result<Vec<i64>, _>>()?;
        Ok(v)
    };
    Ok(Group {
        id,
        tenant_id,
        name,
        address,
        group_type,
        settings,
        owners: ids("SELECT mailbox_id FROM group_owners WHERE group_id = ?1 ORDER BY mailbox_id")?,
        members,
        subscribers: ids(
            "SELECT mailbox_id FROM group_subscribers WHERE group_id = ?1 ORDER BY mailbox_id",
        )?,
    })
}

fn address_taken(conn: &Connection, address: &str) -> Result<bool> {
    let in_mailboxes: Option<i64> = conn
        .query_row(
            "SELECT mailbox_id FROM addresses WHERE address = ?1",
            [address],
            |r| r.get(0),
        )
        .optional()?;
    let in_groups: Option<i64> = conn
        .query_row("SELECT id FROM groups WHERE address = ?1", [address], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(in_mailboxes.is_some() || in_groups.is_some())
}

fn load_contact(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn contact_from(row: (i64, i64, String, String, String)) -> Result<Contact> {
    let (id, tenant_id, address, display_name, attrs) = row;
    let attributes: MailboxAttributes = serde_json::from_str(&attrs)
        .map_err(|e| StoreError::Corrupt(format!("contact {id}: {e}")))?;
    Ok(Contact {
        id,
        tenant_id,
        address,
        display_name,
        attributes,
    })
}

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

impl GroupStore for SqliteStore {
    fn directory_version(&self, tenant: TenantId) -> Result<i64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT version FROM tenant_directory_version WHERE tenant_id = ?1",
                )?
                .query_row([tenant], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    fn tenant_directory(&self, tenant: TenantId) -> Result<TenantDirectory> {
        self.read(|conn| {
            // One read transaction: a consistent snapshot even while writes go on.
            conn.execute_batch("BEGIN")?;
            let result = load_tenant_directory(conn, tenant);
            let _ = conn.execute_batch("COMMIT");
            result
        })
    }

    fn create_group(&self, g: NewGroup) -> Pending<Group> {
        self.write(move |conn| {
            if let Some(address) = &g.address {
                let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                let owner: Option<i64> = conn
                    .query_row("SELECT tenant_id FROM domains WHERE domain = ?1", [domain], |r| r.get(0))
                    .optional()?;
                if owner != Some(g.tenant_id) {
                    return Err(StoreError::Invalid(format!(
                        "{address}: the domain {domain} is not an accepted domain of this tenant"
                    )));
                }
                if address_taken(conn, address)? {
                    return Err(StoreError::Conflict(format!("address {address}")));
                }
            }
            conn.execute(
                "INSERT INTO groups(tenant_id, name, address, type, settings, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![g.tenant_id, g.name, g.address, g.group_type.as_str(), settings_json(&g.settings)?, now_micros()],
            )?;
            let id = conn.last_insert_rowid();
            for owner in &g.owners {
                check_member(conn, g.tenant_id, &MemberRef::Mailbox(*owner))?;
                conn.execute("INSERT OR IGNORE INTO group_owners(group_id, mailbox_id) VALUES (?1, ?2)", params![id, owner])?;
            }
            for m in &g.members {
                check_member(conn, g.tenant_id, m)?;
                let (kind, mid) = member_kind(m);
                conn.execute("INSERT OR IGNORE INTO group_members(group_id, kind, member_id) VALUES (?1, ?2, ?3)", params![id, kind, mid])?;
                if g.settings.auto_subscribe_new_members
                    && let MemberRef::Mailbox(mb) = m
                {
                    conn.execute("INSERT OR IGNORE INTO group_subscribers(group_id, mailbox_id) VALUES (?1, ?2)", params![id, mb])?;
                }
            }
            bump_directory(conn, g.tenant_id)?;
            load_group(conn, id)
        })
    }

    fn update_group(&self, id: GroupId, c: GroupChange) -> Pending<Group> {
        self.write(move |conn| {
            let current = load_group(conn, id)?;
            if let Some(name) = &c.name {
                conn.execute("UPDATE groups SET name = ?1 WHERE id = ?2", params![name, id])?;
            }
            let settings = c.settings.clone().unwrap_or_else(|| current.settings.clone());
            if c.settings.is_some() {
                conn.execute("UPDATE groups SET settings = ?1 WHERE id = ?2", params![settings_json(&settings)?, id])?;
            }
            for m in &c.remove_members {
                let (kind, mid) = member_kind(m);
                conn.execute("DELETE FROM group_members WHERE group_id = ?1 AND kind = ?2 AND member_id = ?3", params![id, kind, mid])?;
                if let MemberRef::Mailbox(mb) = m {
                    conn.execute("DELETE FROM group_subscribers WHERE group_id = ?1 AND mailbox_id = ?2", params![id, mb])?;
                }
            }
            for m in &c.add_members {
                check_member(conn, current.tenant_id, m)?;
                let (kind, mid) = member_kind(m);
                let added = conn.execute(
                    "INSERT OR IGNORE INTO group_members(group_id, kind, member_id) VALUES (?1, ?2, ?3)",
                    params![id, kind, mid],
                )?;
                if added > 0
                    && settings.auto_subscribe_new_members
                    && let MemberRef::Mailbox(mb) = m
                {
                    conn.execute("INSERT OR IGNORE INTO group_subscribers(group_id, mailbox_id) VALUES (?1, ?2)", params![id, mb])?;
                }
            }
            for o in &c.add_owners {
                check_member(conn, current.tenant_id, &MemberRef::Mailbox(*o))?;
                conn.execute("INSERT OR IGNORE INTO group_owners(group_id, mailbox_id) VALUES (?1, ?2)", params![id, o])?;
            }
            for o in &c.remove_owners {
                conn.execute("DELETE FROM group_owners WHERE group_id = ?1 AND mailbox_id = ?2", params![id, o])?;
            }
            for s in &c.add_subscribers {
                check_member(conn, current.tenant_id, &MemberRef::Mailbox(*s))?;
                conn.execute("INSERT OR IGNORE INTO group_subscribers(group_id, mailbox_id) VALUES (?1, ?2)", params![id, s])?;
            }
            for s in &c.remove_subscribers {
                conn.execute("DELETE FROM group_subscribers WHERE group_id = ?1 AND mailbox_id = ?2", params![id, s])?;
            }
            let updated = load_group(conn, id)?;
            // Exchange: a group always keeps at least one owner.
            if updated.owners.is_empty() {
                return Err(StoreError::Invalid("a group must keep at least one owner".into()));
            }
            bump_directory(conn, current.tenant_id)?;
            Ok(updated)
        })
    }

    fn remove_group(&self, id: GroupId) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "groups", id)?;
            conn.execute(
                "DELETE FROM group_members WHERE kind = 'group' AND member_id = ?1",
                [id],
            )?;
            let n = conn.execute("DELETE FROM groups WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("group {id}")));
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn group(&self, id: GroupId) -> Result<Option<Group>> {
        self.read(|conn| match load_group(conn, id) {
            Ok(g) => Ok(Some(g)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn groups(&self, tenant: Option<TenantId>) -> Result<Vec<Group>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM groups WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY name, id",
            )?;
            let ids = stmt
                .query_map([tenant], |r| r.get::<_, i64>(0))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            ids.into_iter().map(|id| load_group(conn, id)).collect()
        })
    }

    fn create_contact(&self, c: NewContact) -> Pending<Contact> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO contacts(tenant_id, address, display_name, attributes) VALUES (?1, ?2, ?3, ?4)",
                params![
                    c.tenant_id,
                    c.address,
                    c.display_name,
                    serde_json::to_string(&c.attributes).map_err(|e| StoreError::Invalid(e.to_string()))?
                ],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("contact {}", c.address)),
                other => other,
            })?;
            bump_directory(conn, c.tenant_id)?;
            Ok(Contact {
                id: conn.last_insert_rowid(),
                tenant_id: c.tenant_id,
                address: c.address,
                display_name: c.display_name,
                attributes: c.attributes,
            })
        })
    }

    fn contacts(&self, tenant: Option<TenantId>) -> Result<Vec<Contact>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, tenant_id, address, display_name, attributes FROM contacts WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY address",
            )?;
            let rows = stmt.query_map([tenant], load_contact)?.collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter().map(contact_from).collect()
        })
    }

    fn remove_contact(&self, id: ContactId) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "contacts", id)?;
            conn.execute(
                "DELETE FROM group_members WHERE kind = 'contact' AND member_id = ?1",
                [id],
            )?;
            let n = conn.execute("DELETE FROM contacts WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("contact {id}")));
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn set_password(&self, mailbox: MailboxId, hash: Option<String>) -> Pending<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE mailboxes SET password_hash = ?1 WHERE id = ?2",
                params![hash, mailbox],
            )?;
            // A changed password ends the mailbox's sessions.
            conn.execute("DELETE FROM tokens WHERE mailbox_id = ?1", [mailbox])?;
            Ok(())
        })
    }

    fn password_hash(&self, mailbox: MailboxId) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash FROM mailboxes WHERE id = ?1",
                    [mailbox],
                    |r| r.get(0),
                )
                .optional()?
                .flatten())
        })
    }

    fn grant(&self, p: Permission) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "mailboxes", p.mailbox)?;
            let (kind, id) = member_kind(&p.trustee);
            conn.execute(
                "INSERT OR IGNORE INTO permissions(mailbox_id, trustee_kind, trustee_id, right) VALUES (?1, ?2, ?3, ?4)",
                params![p.mailbox, kind, id, p.right.as_str()],
            )?;
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn revoke(&self, p: Permission) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "mailboxes", p.mailbox)?;
            let (kind, id) = member_kind(&p.trustee);
            let n = conn.execute(
                "DELETE FROM permissions WHERE mailbox_id = ?1 AND trustee_kind = ?2 AND trustee_id = ?3 AND right = ?4",
                params![p.mailbox, kind, id, p.right.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("permission".into()));
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn assign_role(&self, group: GroupId, role: Role, assign: bool) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "groups", group)?;
            if assign {
                conn.execute(
                    "INSERT OR IGNORE INTO role_groups(group_id, role) VALUES (?1, ?2)",
                    params![group, role.as_str()],
                )?;
            } else {
                conn.execute(
                    "DELETE FROM role_groups WHERE group_id = ?1 AND role = ?2",
                    params![group, role.as_str()],
                )?;
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn add_join_request(
        &self,
        group: GroupId,
        mailbox: MailboxId,
        kind: JoinRequestKind,
    ) -> Pending<JoinRequest> {
        self.write(move |conn| {
            let kind_text = match kind {
                JoinRequestKind::Join => "join",
                JoinRequestKind::Depart => "depart",
            };
            let now = now_micros();
            conn.execute(
                "INSERT OR IGNORE INTO join_requests(group_id, mailbox_id, kind, created) VALUES (?1, ?2, ?3, ?4)",
                params![group, mailbox, kind_text, now],
            )?;
            let (id, created): (i64, i64) = conn.query_row(
                "SELECT id, created FROM join_requests WHERE group_id = ?1 AND mailbox_id = ?2 AND kind = ?3",
                params![group, mailbox, kind_text],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(JoinRequest { id, group_id: group, mailbox_id: mailbox, kind, created: Timestamp(created) })
        })
    }

    fn join_requests(&self, group: GroupId) -> Result<Vec<JoinRequest>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, mailbox_id, kind, created FROM join_requests WHERE group_id = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([group], |r| {
                    let kind: String = r.get(2)?;
                    Ok(JoinRequest {
                        id: r.get(0)?,
                        group_id: group,
                        mailbox_id: r.get(1)?,
                        kind: if kind == "depart" { JoinRequestKind::Depart } else { JoinRequestKind::Join },
                        created: Timestamp(r.get(3)?),
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn remove_join_request(&self, id: i64) -> Pending<()> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM join_requests WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("request {id}")));
            }
            Ok(())
        })
    }

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
                GroupOutcome::Expand { detail, members } => {
                    set_status(conn, recipient, RecipientStatus::Expanded, 0, now.0)?;
                    add_event(conn, recipient, now.0, TraceEvent::Expand, &detail)?;
                    let null_sender: bool = conn.query_row(
                        "SELECT sender = '' FROM messages WHERE id = ?1",
                        [message],
                        |r| r.get(0),
                    )?;
                    let mut insert = conn.prepare_cached(
                        "INSERT INTO recipients(message_id, tenant_id, address, route, mailbox_id, group_id, status, next_attempt, updated, report_to) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'Pending', ?7, ?7, ?8)",
                    )?;
                    for m in members {
                        // A member already among the message's recipients, in any state, gets no
                        // second copy; a group already routed is not expanded again, which is
                        // what ends loops between groups.
                        let dup: Option<i64> = conn
                            .prepare_cached("SELECT id FROM recipients WHERE message_id = ?1 AND address = ?2 LIMIT 1")?
                            .query_row(params![message, m.address], |r| r.get(0))
                            .optional()?;
                        if dup.is_some() {
                            continue;
                        }
                        let (mailbox, group) = match m.route {
                            Route::Local(id) => (Some(id), None),
                            Route::Group(id) => (None, Some(id)),
                            _ => (None, m.group_id),
                        };
                        insert.execute(params![message, m.tenant_id, m.address, m.route.kind(), mailbox, group, now.0, m.report_to])?;
                        let id = conn.last_insert_rowid();
                        add_event(conn, id, now.0, TraceEvent::Expand, &m.detail)?;
                        if let Some(reply) = &m.fail {
                            set_status(conn, id, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                            add_event(conn, id, now.0, TraceEvent::Fail, reply)?;
                        } else if m.route == Route::Remote {
                            add_event(conn, id, now.0, TraceEvent::Defer,
                                "Waiting for outbound delivery to an outside address; hato cannot send to outside domains yet")?;
                        }
                    }
                }
                GroupOutcome::Hold { group_id, tenant_id, expires, detail } => {
                    conn.execute(
                        "INSERT OR IGNORE INTO moderation(recipient_id, group_id, tenant_id, created, expires, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                        params![recipient, group_id, tenant_id, now.0, expires.0],
                    )?;
                    // Not due again until a moderator decides (or it expires).
                    conn.execute("UPDATE recipients SET next_attempt = ?1, updated = ?2 WHERE id = ?3", params![i64::MAX, now.0, recipient])?;
                    add_event(conn, recipient, now.0, TraceEvent::Defer, &detail)?;
                }
                GroupOutcome::Fail { reply } => {
                    let null_sender: bool = conn.query_row("SELECT sender = '' FROM messages WHERE id = ?1", [message], |r| r.get(0))?;
                    set_status(conn, recipient, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                    add_event(conn, recipient, now.0, TraceEvent::Fail, &reply)?;
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
            match decision {
                ModerationState::Approved => {
                    conn.execute("UPDATE recipients SET approved = 1, next_attempt = ?1, updated = ?1 WHERE id = ?2", params![now.0, rcpt])?;
                    add_event(conn, rcpt, now.0, TraceEvent::Defer, &format!("Approved by moderator {by}"))?;
                }
                ModerationState::Rejected | ModerationState::Expired => {
                    let null_sender = held.sender.is_empty();
                    set_status(conn, rcpt, RecipientStatus::Failed, if null_sender { 0 } else { 1 }, now.0)?;
                    let reply = if decision == ModerationState::Rejected {
                        let why = if comment.is_empty() { String::new() } else { format!(": {comment}") };
                        format!("550 5.7.1 RESOLVER.MOD.Rejected; the moderator ({by}) rejected the message{why}")
                    } else {
                        "550 5.7.1 RESOLVER.MOD.Expired; no moderator approved the message within 2 days".to_string()
                    };
                    add_event(conn, rcpt, now.0, TraceEvent::Fail, &reply)?;
                    release_spool(conn, message)?;
                }
                ModerationState::Pending => {}
            }
            Ok(HeldMessage { state: decision, decided_by: by, comment, ..held })
        })
    }

    fn file_group_item(&self, item: NewGroupItem) -> Pending<bool> {
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM recipients WHERE id = ?1", [item.recipient_id], |r| r.get(0))
                .optional()?;
            if status.as_deref() != Some("Pending") {
                return Ok(false);
            }
            // Threading: a referenced message's conversation, else the same normalized subject.
            let mut conversation: Option<i64> = None;
            for reference in &item.references {
                conversation = conn
                    .prepare_cached("SELECT conversation_id FROM group_items WHERE group_id = ?1 AND message_id = ?2 LIMIT 1")?
                    .query_row(params![item.group_id, reference], |r| r.get(0))
                    .optional()?;
                if conversation.is_some() {
                    break;
                }
            }
            if conversation.is_none() && !item.normalized_subject.is_empty() {
                conversation = conn
                    .prepare_cached("SELECT id FROM conversations WHERE group_id = ?1 AND normalized = ?2 ORDER BY last_activity DESC LIMIT 1")?
                    .query_row(params![item.group_id, item.normalized_subject], |r| r.get(0))
                    .optional()?;
            }
            let conversation = match conversation {
                Some(c) => {
                    conn.execute("UPDATE conversations SET last_activity = ?1 WHERE id = ?2", params![item.now.0, c])?;
                    c
                }
                None => {
                    conn.execute(
                        "INSERT INTO conversations(group_id, topic, normalized, last_activity) VALUES (?1, ?2, ?3, ?4)",
                        params![item.group_id, item.subject, item.normalized_subject, item.now.0],
                    )?;
                    conn.last_insert_rowid()
                }
            };
            if let Some(data) = &item.blob.inline {
                conn.execute("INSERT OR IGNORE INTO blobs(hash, data) VALUES (?1, ?2)", params![item.blob.hash, data])?;
            }
            conn.execute(
                "INSERT INTO group_items(group_id, conversation_id, blob, received, from_header, subject, size, message_id, recipient_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![item.group_id, conversation, item.blob.hash, item.now.0, item.from, item.subject, item.size as i64, item.message_id, item.recipient_id],
            )?;
            for (uid, json) in &item.calendar {
                match json {
                    Some(j) => conn.execute(
                        "INSERT INTO group_calendar(group_id, uid, item) VALUES (?1, ?2, ?3) ON CONFLICT(group_id, uid) DO UPDATE SET item = excluded.item",
                        params![item.group_id, uid, j],
                    )?,
                    None => conn.execute("DELETE FROM group_calendar WHERE group_id = ?1 AND uid = ?2", params![item.group_id, uid])?,
                };
            }
            Ok(true)
        })
    }

    fn group_calendar(&self, group: GroupId) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT uid, item FROM group_calendar WHERE group_id = ?1 ORDER BY uid",
            )?;
            let rows = stmt
                .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn conversations(&self, group: GroupId) -> Result<Vec<Conversation>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.topic, c.last_activity, (SELECT count(*) FROM group_items i WHERE i.conversation_id = c.id) \
                 FROM conversations c WHERE c.group_id = ?1 ORDER BY c.last_activity DESC, c.id DESC",
            )?;
            let rows = stmt
                .query_map([group], |r| {
                    Ok(Conversation {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        last_activity: Timestamp(r.get(2)?).to_rfc3339(),
                        messages: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn group_items(&self, group: GroupId, conversation: Option<i64>) -> Result<Vec<GroupItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, conversation_id, received, from_header, subject, size, message_id, blob FROM group_items \
                 WHERE group_id = ?1 AND (?2 IS NULL OR conversation_id = ?2) ORDER BY received, id",
            )?;
            let rows = stmt
                .query_map(params![group, conversation], |r| {
                    Ok(GroupItem {
                        id: r.get(0)?,
                        conversation_id: r.get(1)?,
                        received: Timestamp(r.get(2)?).to_rfc3339(),
                        from: r.get(3)?,
                        subject: r.get(4)?,
                        size: r.get::<_, i64>(5)?.max(0) as u64,
                        message_id: r.get(6)?,
                        blob: r.get(7)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

/// Reads a whole tenant's directory in bulk (a handful of queries, whatever its size).
fn load_tenant_directory(conn: &Connection, tenant: TenantId) -> Result<TenantDirectory> {
    let version: i64 = conn
        .query_row(
            "SELECT version FROM tenant_directory_version WHERE tenant_id = ?1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let tenant_name: String = conn
        .query_row("SELECT name FROM tenants WHERE id = ?1", [tenant], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant}")))?;
    let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT a.mailbox_id, a.address FROM addresses a JOIN mailboxes m ON m.id = a.mailbox_id \
             WHERE m.tenant_id = ?1 AND a.is_primary = 0 ORDER BY a.address",
        )?;
        let mut rows = stmt.query([tenant])?;
        while let Some(r) = rows.next()? {
            aliases.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
    }
    let mut mailboxes = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT id, address, display_name, type, attributes, quota_bytes, used_bytes FROM mailboxes WHERE tenant_id = ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([tenant])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let kind: String = r.get(3)?;
            let attrs: String = r.get(4)?;
            mailboxes.push(hato_core::directory::Mailbox {
                id,
                tenant_id: tenant,
                tenant: tenant_name.clone(),
                address: r.get(1)?,
                display_name: r.get(2)?,
                mailbox_type: hato_core::directory::MailboxType::parse(&kind).unwrap_or_default(),
                aliases: aliases.remove(&id).unwrap_or_default(),
                attributes: serde_json::from_str(&attrs)
                    .map_err(|e| StoreError::Corrupt(format!("mailbox {id}: {e}")))?,
                quota_bytes: r.get::<_, i64>(5)?.max(0) as u64,
                used_bytes: r.get::<_, i64>(6)?.max(0) as u64,
            });
        }
    }
    let contacts = {
        let mut stmt = conn.prepare_cached("SELECT id, tenant_id, address, display_name, attributes FROM contacts WHERE tenant_id = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([tenant], load_contact)?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(contact_from)
            .collect::<Result<Vec<_>>>()?
    };
    let mut groups = Vec::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT id FROM groups WHERE tenant_id = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([tenant], |r| r.get::<_, i64>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for id in ids {
            groups.push(load_group(conn, id)?);
        }
    }
    let mut permissions = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT p.mailbox_id, p.trustee_kind, p.trustee_id, p.right FROM permissions p JOIN mailboxes m ON m.id = p.mailbox_id WHERE m.tenant_id = ?1",
        )?;
        let mut rows = stmt.query([tenant])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            let right: String = r.get(3)?;
            if let (Some(trustee), Some(right)) =
                (member_from(&kind, r.get(2)?), MailboxRight::parse(&right))
            {
                permissions.push(Permission {
                    mailbox: r.get(0)?,
                    trustee,
                    right,
                });
            }
        }
    }
    let mut role_groups = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT r.group_id, r.role FROM role_groups r JOIN groups g ON g.id = r.group_id WHERE g.tenant_id = ?1",
        )?;
        let mut rows = stmt.query([tenant])?;
        while let Some(r) = rows.next()? {
            let role: String = r.get(1)?;
            if let Some(role) = Role::parse(&role) {
                role_groups.push((r.get(0)?, role));
            }
        }
    }
    Ok(TenantDirectory {
        tenant_id: tenant,
        tenant_name,
        version,
        mailboxes,
        contacts,
        groups,
        permissions,
        role_groups,
    })
}

//! Groups: settings, owners, members and subscribers.

use super::{
    SqliteStore, address_holder, bump_directory, check_reserved, member_from, member_kind,
    tenant_of,
};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::GroupStore;
use crate::types::{GroupChange, NewGroup};
use hato_core::directory::{Group, GroupId, GroupSettings, GroupType, MemberRef, TenantId};
use rusqlite::{Connection, OptionalExtension, params};

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

pub(super) fn load_group(conn: &Connection, id: GroupId) -> Result<Group> {
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

/// Whether another group of `tenant` already has `name` (case-insensitive, as the API finds
/// groups by name). Checked inside the write, so two concurrent renames cannot both win.
fn name_taken(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
    except: Option<GroupId>,
) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM groups WHERE tenant_id = ?1")?;
    let mut rows = stmt.query([tenant])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let other: String = r.get(1)?;
        if Some(id) != except && other.to_lowercase() == name.to_lowercase() {
            return Ok(true);
        }
    }
    Ok(false)
}

impl GroupStore for SqliteStore {
    fn create_group(&self, g: NewGroup) -> Pending<Group> {
        let now = self.now_micros();
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
                check_reserved(address)?;
                if let Some(holder) = address_holder(conn, g.tenant_id, address)? {
                    return Err(StoreError::Conflict(format!("the address {address} (of {holder})")));
                }
            }
            if name_taken(conn, g.tenant_id, &g.name, None)? {
                return Err(StoreError::Conflict(format!("a group named {}", g.name)));
            }
            conn.execute(
                "INSERT INTO groups(tenant_id, name, address, type, settings, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![g.tenant_id, g.name, g.address, g.group_type.as_str(), settings_json(&g.settings)?, now],
            )?;
            let id = conn.last_insert_rowid();
            for owner in &g.owners {
                check_member(conn, g.tenant_id, &MemberRef::Mailbox(*owner))?;
                conn.execute("INSERT OR IGNORE INTO group_owners(group_id, mailbox_id) VALUES (?1, ?2)", params![id, owner])?;
            }
            // A Microsoft 365 group's owners are its members (Exchange: Add-UnifiedGroupLinks
            // needs an owner to be a member first).
            let mut members = g.members.clone();
            if g.group_type == GroupType::M365 {
                members.extend(g.owners.iter().map(|o| MemberRef::Mailbox(*o)));
            }
            for m in &members {
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
                if name_taken(conn, current.tenant_id, name, Some(id))? {
                    return Err(StoreError::Conflict(format!("a group named {name}")));
                }
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
            let mut add_members = c.add_members.clone();
            if current.group_type == GroupType::M365 {
                add_members.extend(c.add_owners.iter().map(|o| MemberRef::Mailbox(*o)));
            }
            for m in &add_members {
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
            // …and a Microsoft 365 group's owners stay its members.
            if updated.group_type == GroupType::M365
                && updated.owners.iter().any(|o| !updated.members.contains(&MemberRef::Mailbox(*o)))
            {
                return Err(StoreError::Invalid(
                    "an owner of a Microsoft 365 group is one of its members: remove them as an owner first".into(),
                ));
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
}

//! Mailboxes and their addresses (primary and aliases).

use super::{SqliteStore, address_holder, bump_directory, check_reserved, tenant_of};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::MailboxStore;
use crate::types::{MailboxChange, NewMailbox, RECIPIENT_PAGE_MAX, RecipientPage, RecipientSort};
use hato_core::directory::{Mailbox, MailboxAttributes, MailboxId, MailboxType, TenantId};
use rusqlite::{Connection, OptionalExtension, params};

const MAILBOX_COLUMNS: &str = "m.id, m.tenant_id, t.name, m.address, m.display_name, m.type, \
     m.attributes, m.quota_bytes, m.used_bytes";

fn mailbox_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<Mailbox> {
    let id: i64 = r.get(0)?;
    let attrs: String = r.get(6)?;
    let kind: String = r.get(5)?;
    let attributes: MailboxAttributes = serde_json::from_str(&attrs)
        .map_err(|e| StoreError::Corrupt(format!("mailbox {id} attributes: {e}")))?;
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM addresses WHERE mailbox_id = ?1 AND is_primary = 0 ORDER BY address",
    )?;
    let aliases = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Mailbox {
        id,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        address: r.get(3)?,
        display_name: r.get(4)?,
        mailbox_type: MailboxType::parse(&kind).unwrap_or_default(),
        aliases,
        attributes,
        quota_bytes: r.get::<_, i64>(7)?.max(0) as u64,
        used_bytes: r.get::<_, i64>(8)?.max(0) as u64,
    })
}

fn load_mailbox(conn: &Connection, id: MailboxId) -> Result<Mailbox> {
    let sql = format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id WHERE m.id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => mailbox_from_row(conn, r),
        None => Err(StoreError::NotFound(format!("mailbox {id}"))),
    }
}

/// Claims `address` for a mailbox: its domain must belong to `tenant`, it must not be reserved,
/// and no mailbox, group or contact may answer to it already.
fn claim_address(
    conn: &Connection,
    address: &str,
    tenant: TenantId,
    mailbox: MailboxId,
    primary: bool,
) -> Result<()> {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let owner: Option<i64> = conn
        .query_row(
            "SELECT tenant_id FROM domains WHERE domain = ?1",
            [domain],
            |r| r.get(0),
        )
        .optional()?;
    if owner != Some(tenant) {
        return Err(StoreError::Invalid(format!(
            "{address}: the domain {domain} is not an accepted domain of this tenant"
        )));
    }
    check_reserved(address)?;
    if let Some(holder) = address_holder(conn, tenant, address)? {
        return Err(StoreError::Conflict(format!(
            "the address {address} (of {holder})"
        )));
    }
    conn.execute(
        "INSERT INTO addresses(address, mailbox_id, is_primary) VALUES (?1, ?2, ?3)",
        params![address, mailbox, primary as i64],
    )?;
    Ok(())
}

fn attributes_json(a: &MailboxAttributes) -> Result<String> {
    serde_json::to_string(a).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl MailboxStore for SqliteStore {
    fn create_mailbox(&self, m: NewMailbox) -> Pending<Mailbox> {
        let now = self.now_micros();
        self.write(move |conn| {
            check_reserved(&m.address)?;
            if let Some(holder) = address_holder(conn, m.tenant_id, &m.address)? {
                return Err(StoreError::Conflict(format!(
                    "the address {} (of {holder})",
                    m.address
                )));
            }
            conn.execute(
                "INSERT INTO mailboxes(tenant_id, address, display_name, type, attributes, quota_bytes, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.tenant_id,
                    m.address,
                    m.display_name,
                    m.mailbox_type.as_str(),
                    attributes_json(&m.attributes)?,
                    m.quota_bytes as i64,
                    now
                ],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("address {}", m.address)),
                other => other,
            })?;
            let id = conn.last_insert_rowid();
            claim_address(conn, &m.address, m.tenant_id, id, true)?;
            for alias in &m.aliases {
                if alias != &m.address {
                    claim_address(conn, alias, m.tenant_id, id, false)?;
                }
            }
            bump_directory(conn, m.tenant_id)?;
            load_mailbox(conn, id)
        })
    }

    fn update_mailbox(&self, id: MailboxId, c: MailboxChange) -> Pending<Mailbox> {
        self.write(move |conn| {
            let current = load_mailbox(conn, id)?;
            if let Some(name) = &c.display_name {
                conn.execute(
                    "UPDATE mailboxes SET display_name = ?1 WHERE id = ?2",
                    params![name, id],
                )?;
            }
            if let Some(kind) = c.mailbox_type {
                conn.execute(
                    "UPDATE mailboxes SET type = ?1 WHERE id = ?2",
                    params![kind.as_str(), id],
                )?;
            }
            if let Some(a) = &c.attributes {
                conn.execute(
                    "UPDATE mailboxes SET attributes = ?1 WHERE id = ?2",
                    params![attributes_json(a)?, id],
                )?;
            }
            if let Some(q) = c.quota_bytes {
                conn.execute(
                    "UPDATE mailboxes SET quota_bytes = ?1 WHERE id = ?2",
                    params![q as i64, id],
                )?;
            }
            if let Some(aliases) = &c.aliases {
                conn.execute(
                    "DELETE FROM addresses WHERE mailbox_id = ?1 AND is_primary = 0",
                    [id],
                )?;
                for alias in aliases {
                    if alias != &current.address {
                        claim_address(conn, alias, current.tenant_id, id, false)?;
                    }
                }
            }
            bump_directory(conn, current.tenant_id)?;
            load_mailbox(conn, id)
        })
    }

    fn mailboxes(&self, tenant: Option<TenantId>) -> Result<Vec<Mailbox>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE ?1 IS NULL OR m.tenant_id = ?1 ORDER BY m.address"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([tenant])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(mailbox_from_row(conn, r)?);
            }
            Ok(out)
        })
    }

    fn mailbox_page(&self, q: &RecipientPage) -> Result<(Vec<Mailbox>, bool)> {
        let column = match q.sort {
            RecipientSort::Address => "m.address",
            RecipientSort::DisplayName => "m.display_name COLLATE NOCASE",
            RecipientSort::Type => "m.type",
            RecipientSort::Quota => "m.quota_bytes",
            RecipientSort::Used => "m.used_bytes",
        };
        let dir = if q.descending { "DESC" } else { "ASC" };
        let limit = q.limit.clamp(1, RECIPIENT_PAGE_MAX);
        let filter = q.filter.trim().to_lowercase();
        self.read(|conn| {
            // `instr` rather than LIKE: the filter is the person's text, with no wildcard to
            // escape. One page plus one row is read: the extra row says whether more follow.
            let sql = format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE (?1 IS NULL OR m.tenant_id = ?1) \
                 AND (?2 = '' OR instr(lower(m.address), ?2) > 0 OR instr(lower(m.display_name), ?2) > 0) \
                 ORDER BY {column} {dir}, m.address {dir} LIMIT ?3 OFFSET ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![
                q.tenant,
                filter,
                (limit + 1) as i64,
                q.offset.min(i64::MAX as usize) as i64
            ])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(mailbox_from_row(conn, r)?);
            }
            let more = out.len() > limit;
            out.truncate(limit);
            Ok((out, more))
        })
    }

    fn mailbox_by_address(&self, address: &str) -> Result<Option<Mailbox>> {
        self.read(|conn| {
            let id: Option<i64> = conn
                .prepare_cached("SELECT mailbox_id FROM addresses WHERE address = ?1")?
                .query_row([address], |r| r.get(0))
                .optional()?;
            id.map(|id| load_mailbox(conn, id)).transpose()
        })
    }

    fn remove_mailbox_transferring(
        &self,
        id: MailboxId,
        transfer_ownership_to: Option<MailboxId>,
    ) -> Pending<()> {
        self.write(move |conn| {
            let owner = tenant_of(conn, "mailboxes", id)?;
            // The groups it owns: (id, type, how it is named, how many owners it has).
            let mut stmt = conn.prepare_cached(
                "SELECT g.id, g.type, COALESCE(g.address, g.name), \
                   (SELECT COUNT(*) FROM group_owners o2 WHERE o2.group_id = g.id) \
                 FROM group_owners o JOIN groups g ON g.id = o.group_id WHERE o.mailbox_id = ?1 \
                 ORDER BY 3",
            )?;
            let owned = stmt
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            match transfer_ownership_to {
                Some(to) => {
                    if to == id || tenant_of(conn, "mailboxes", to)? != owner {
                        return Err(StoreError::Invalid(
                            "ownership goes to another mailbox of the same tenant".into(),
                        ));
                    }
                    for (group, kind, _, _) in &owned {
                        conn.execute(
                            "INSERT OR IGNORE INTO group_owners(group_id, mailbox_id) VALUES (?1, ?2)",
                            params![group, to],
                        )?;
                        // A Microsoft 365 group's owners are its members.
                        if kind == "m365" {
                            conn.execute(
                                "INSERT OR IGNORE INTO group_members(group_id, kind, member_id) VALUES (?1, 'mailbox', ?2)",
                                params![group, to],
                            )?;
                        }
                    }
                }
                None => {
                    // Exchange: a group always keeps an owner; nobody could manage it otherwise.
                    let last: Vec<&str> = owned
                        .iter()
                        .filter(|(_, _, _, n)| *n <= 1)
                        .map(|(_, _, name, _)| name.as_str())
                        .collect();
                    if !last.is_empty() {
                        return Err(StoreError::InUse(format!(
                            "the mailbox is the last owner of {}; pass ownership to another mailbox (transfer_ownership_to) or add an owner first",
                            last.join(", ")
                        )));
                    }
                }
            }
            // Memberships and rights have no foreign key to the mailbox (a member or trustee may be
            // any kind of recipient): they go with it.
            conn.execute(
                "DELETE FROM group_members WHERE kind = 'mailbox' AND member_id = ?1",
                [id],
            )?;
            conn.execute(
                "DELETE FROM permissions WHERE trustee_kind = 'mailbox' AND trustee_id = ?1",
                [id],
            )?;
            let n = conn.execute("DELETE FROM mailboxes WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("mailbox {id}")));
            }
            if let Some(t) = owner {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }
}

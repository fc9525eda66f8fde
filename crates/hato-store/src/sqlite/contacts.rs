//! Mail contacts: outside addresses in a tenant's directory.

use super::{SqliteStore, address_holder, bump_directory, check_reserved, tenant_of};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::ContactStore;
use crate::types::{NewContact, RECIPIENT_PAGE_MAX, RecipientPage, RecipientSort};
use hato_core::directory::{Contact, ContactId, MailboxAttributes, TenantId};
use rusqlite::params;

pub(super) fn load_contact(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, i64, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn contact_from(row: (i64, i64, String, String, String)) -> Result<Contact> {
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

impl ContactStore for SqliteStore {
    fn create_contact(&self, c: NewContact) -> Pending<Contact> {
        self.write(move |conn| {
            check_reserved(&c.address)?;
            if let Some(holder) = address_holder(conn, c.tenant_id, &c.address)? {
                return Err(StoreError::Conflict(format!(
                    "the address {} (of {holder})",
                    c.address
                )));
            }
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

    fn contact_page(&self, q: &RecipientPage) -> Result<(Vec<Contact>, bool)> {
        let column = match q.sort {
            RecipientSort::DisplayName => "display_name COLLATE NOCASE",
            _ => "address",
        };
        let dir = if q.descending { "DESC" } else { "ASC" };
        let limit = q.limit.clamp(1, RECIPIENT_PAGE_MAX);
        let filter = q.filter.trim().to_lowercase();
        self.read(|conn| {
            let sql = format!(
                "SELECT id, tenant_id, address, display_name, attributes FROM contacts \
                 WHERE (?1 IS NULL OR tenant_id = ?1) \
                 AND (?2 = '' OR instr(lower(address), ?2) > 0 OR instr(lower(display_name), ?2) > 0) \
                 ORDER BY {column} {dir}, address {dir} LIMIT ?3 OFFSET ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![
                        q.tenant,
                        filter,
                        (limit + 1) as i64,
                        q.offset.min(i64::MAX as usize) as i64
                    ],
                    load_contact,
                )?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut out = rows
                .into_iter()
                .map(contact_from)
                .collect::<Result<Vec<_>>>()?;
            let more = out.len() > limit;
            out.truncate(limit);
            Ok((out, more))
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
}

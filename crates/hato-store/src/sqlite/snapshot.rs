//! A tenant's whole directory read at once (what the directory index is built from), and its
//! version.

use super::contacts::{contact_from, load_contact};
use super::groups::load_group;
use super::{SqliteStore, member_from};
use crate::error::{Result, StoreError};
use crate::traits::SnapshotStore;
use hato_core::auth::Role;
use hato_core::directory::{MailboxRight, Permission, TenantDirectory, TenantId};
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

impl SnapshotStore for SqliteStore {
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

//! Tenants' connection filter policies: the IP allow and block lists.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::ConnectionFilterStore;
use crate::types::{ConnectionFilterChange, ConnectionFilterPolicy};
use hato_core::directory::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

/// The lists as stored (`connection_filter_entries.list`) and as named to admins.
const LISTS: [(&str, &str); 2] = [("allow", "ip_allow_list"), ("block", "ip_block_list")];

fn entries(conn: &Connection, tenant: TenantId, list: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT entry FROM connection_filter_entries WHERE tenant_id = ?1 AND list = ?2 ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![tenant, list], |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(rows)
}

fn version(conn: &Connection, tenant: TenantId) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT version FROM connection_filters WHERE tenant_id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn policy(conn: &Connection, tenant: TenantId) -> Result<ConnectionFilterPolicy> {
    Ok(ConnectionFilterPolicy {
        ip_allow_list: entries(conn, tenant, "allow")?,
        ip_block_list: entries(conn, tenant, "block")?,
        version: version(conn, tenant)?,
    })
}

impl ConnectionFilterStore for SqliteStore {
    fn connection_filter(&self, tenant: TenantId) -> Result<ConnectionFilterPolicy> {
        self.read(|conn| policy(conn, tenant))
    }

    fn connection_filter_version(&self, tenant: TenantId) -> Result<i64> {
        self.read(|conn| version(conn, tenant))
    }

    fn change_connection_filter(
        &self,
        tenant: TenantId,
        change: ConnectionFilterChange,
    ) -> Pending<ConnectionFilterPolicy> {
        let max = self.connection_filter_max_entries;
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .prepare_cached("SELECT id FROM tenants WHERE id = ?1")?
                .query_row([tenant], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("tenant {tenant}")));
            }
            let deltas = [
                (&change.ip_allow_list_remove, &change.ip_allow_list_add),
                (&change.ip_block_list_remove, &change.ip_block_list_add),
            ];
            for ((list, name), (remove, add)) in LISTS.iter().zip(deltas) {
                for entry in remove {
                    conn.prepare_cached(
                        "DELETE FROM connection_filter_entries WHERE tenant_id = ?1 AND list = ?2 AND entry = ?3",
                    )?
                    .execute(params![tenant, list, entry])?;
                }
                for entry in add {
                    conn.prepare_cached(
                        "INSERT OR IGNORE INTO connection_filter_entries(tenant_id, list, entry) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![tenant, list, entry])?;
                }
                // Counted inside the write: two changes at once cannot together pass the limit.
                let count: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM connection_filter_entries WHERE tenant_id = ?1 AND list = ?2",
                    )?
                    .query_row(params![tenant, list], |r| r.get(0))?;
                if usize::try_from(count).unwrap_or(usize::MAX) > max {
                    return Err(StoreError::Invalid(format!(
                        "{name} would hold {count} entries; a list holds at most {max} \
                         (edge.connection_filter_max_entries)"
                    )));
                }
            }
            conn.prepare_cached(
                "INSERT INTO connection_filters(tenant_id, version) VALUES (?1, 1) \
                 ON CONFLICT(tenant_id) DO UPDATE SET version = version + 1",
            )?
            .execute([tenant])?;
            // The edge keeps the built filters while the policy generation stays.
            super::policy_changed();
            policy(conn, tenant)
        })
    }
}

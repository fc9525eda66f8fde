//! Tenants' organisation settings (`Set-OrganizationConfig`; migration 25): a row once changed,
//! the defaults until then.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::OrganizationConfigStore;
use crate::types::OrganizationConfig;
use hato_core::directory::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

fn config(conn: &Connection, tenant: TenantId) -> Result<OrganizationConfig> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM tenants WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("tenant {tenant}")));
    }
    let reject: Option<bool> = conn
        .prepare_cached("SELECT reject_direct_send FROM organization_config WHERE tenant_id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    Ok(OrganizationConfig {
        reject_direct_send: reject.unwrap_or(false),
    })
}

impl OrganizationConfigStore for SqliteStore {
    fn organization_config(&self, tenant: TenantId) -> Result<OrganizationConfig> {
        self.read(|conn| config(conn, tenant))
    }

    fn set_organization_config(
        &self,
        tenant: TenantId,
        new: OrganizationConfig,
    ) -> Pending<OrganizationConfig> {
        let now = self.now_micros();
        self.write(move |conn| {
            config(conn, tenant)?;
            conn.execute(
                "INSERT INTO organization_config(tenant_id, reject_direct_send, updated) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(tenant_id) DO UPDATE SET reject_direct_send = excluded.reject_direct_send, updated = excluded.updated",
                params![tenant, new.reject_direct_send, now],
            )?;
            super::policy_changed();
            config(conn, tenant)
        })
    }

    fn reject_direct_send_tenants(&self) -> Result<Vec<TenantId>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT tenant_id FROM organization_config WHERE reject_direct_send = 1 ORDER BY tenant_id",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<TenantId>>>()?)
        })
    }
}

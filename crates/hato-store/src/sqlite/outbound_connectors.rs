//! Tenants' outbound connectors (migration 29): one row per connector, its settings as JSON.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::OutboundConnectorStore;
use crate::types::{OUTBOUND_CONNECTORS_MAX, OutboundConnectorRecord};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use hato_protection::outbound_connector::OutboundConnector;
use rusqlite::{Connection, OptionalExtension, params};

const COLUMNS: &str = "c.id, c.tenant_id, t.name, c.name, c.definition, c.created, c.updated";

fn select(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<OutboundConnectorRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM outbound_connectors c JOIN tenants t ON t.id = c.tenant_id \
         WHERE {filter}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, |r| {
        Ok((
            OutboundConnectorRecord {
                id: r.get(0)?,
                tenant_id: r.get(1)?,
                tenant: r.get(2)?,
                name: r.get(3)?,
                connector: OutboundConnector::default(),
                created: Timestamp(r.get(5)?),
                updated: Timestamp(r.get(6)?),
            },
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut record, json) = row?;
        // A definition that no longer reads is corrupt data, named.
        record.connector = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!(
                "outbound connector {:?} of tenant {}: {e}",
                record.name, record.tenant
            ))
        })?;
        out.push(record);
    }
    Ok(out)
}

fn one(conn: &Connection, tenant: TenantId, name: &str) -> Result<OutboundConnectorRecord> {
    select(
        conn,
        "c.tenant_id = ?1 AND c.name = ?2",
        params![tenant, name],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("outbound connector {name:?}")))
}

fn definition(c: &OutboundConnector) -> Result<String> {
    c.validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    serde_json::to_string(c).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl OutboundConnectorStore for SqliteStore {
    fn outbound_connectors(&self, tenant: TenantId) -> Result<Vec<OutboundConnectorRecord>> {
        self.read(|conn| {
            select(
                conn,
                "c.tenant_id = ?1 ORDER BY c.name COLLATE NOCASE",
                [tenant],
            )
        })
    }

    fn outbound_connector(&self, tenant: TenantId, name: &str) -> Result<OutboundConnectorRecord> {
        self.read(|conn| one(conn, tenant, name))
    }

    fn add_outbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: OutboundConnector,
    ) -> Pending<OutboundConnectorRecord> {
        let name = name.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            let json = definition(&connector)?;
            let tenant_name: String = conn
                .query_row("SELECT name FROM tenants WHERE id = ?1", [tenant], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant}")))?;
            let count: i64 = conn.query_row(
                "SELECT count(*) FROM outbound_connectors WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= OUTBOUND_CONNECTORS_MAX {
                return Err(StoreError::Invalid(format!(
                    "tenant {tenant_name} already has {OUTBOUND_CONNECTORS_MAX} outbound connectors, the most it may have"
                )));
            }
            let taken: Option<i64> = conn
                .query_row(
                    "SELECT id FROM outbound_connectors WHERE tenant_id = ?1 AND name = ?2",
                    params![tenant, name],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!("outbound connector {name:?}")));
            }
            conn.execute(
                "INSERT INTO outbound_connectors(tenant_id, name, enabled, definition, created, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![tenant, name, connector.enabled, json, now],
            )?;
            super::policy_changed();
            one(conn, tenant, &name)
        })
    }

    fn set_outbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: OutboundConnector,
    ) -> Pending<OutboundConnectorRecord> {
        let name = name.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            let json = definition(&connector)?;
            let current = one(conn, tenant, &name)?;
            conn.execute(
                "UPDATE outbound_connectors SET enabled = ?2, definition = ?3, updated = ?4 \
                 WHERE id = ?1",
                params![current.id, connector.enabled, json, now],
            )?;
            super::policy_changed();
            one(conn, tenant, &name)
        })
    }

    fn remove_outbound_connector(&self, tenant: TenantId, name: &str) -> Pending<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM outbound_connectors WHERE tenant_id = ?1 AND name = ?2",
                params![tenant, name],
            )?;
            super::policy_changed();
            if n == 0 {
                return Err(StoreError::NotFound(format!("outbound connector {name:?}")));
            }
            Ok(())
        })
    }

    fn all_outbound_connectors(&self) -> Result<Vec<OutboundConnectorRecord>> {
        self.read(|conn| {
            select(
                conn,
                "1 ORDER BY c.tenant_id, c.name COLLATE NOCASE",
                params![],
            )
        })
    }
}

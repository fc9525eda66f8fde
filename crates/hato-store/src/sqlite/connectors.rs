//! Tenants' inbound connectors (migration 25): one row per connector, its settings as JSON.
//! The shared-IP check runs inside the write that adds or changes a connector, so two admins
//! of different tenants registering the same IP at once cannot both pass it.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::ConnectorStore;
use crate::types::{INBOUND_CONNECTORS_MAX, InboundConnectorRecord};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use hato_protection::connector::{ConnectorType, InboundConnector, overlaps, sender_ip};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "c.id, c.tenant_id, t.name, c.name, c.definition, c.created, c.updated";

fn record(r: &Row<'_>) -> rusqlite::Result<(InboundConnectorRecord, String)> {
    Ok((
        InboundConnectorRecord {
            id: r.get(0)?,
            tenant_id: r.get(1)?,
            tenant: r.get(2)?,
            name: r.get(3)?,
            connector: InboundConnector::default(),
            created: Timestamp(r.get(5)?),
            updated: Timestamp(r.get(6)?),
        },
        r.get(4)?,
    ))
}

/// Reads the stored settings; a definition that no longer reads is corrupt data, named.
fn parsed(
    rows: impl Iterator<Item = rusqlite::Result<(InboundConnectorRecord, String)>>,
) -> Result<Vec<InboundConnectorRecord>> {
    let mut out = Vec::new();
    for row in rows {
        let (mut record, json) = row?;
        record.connector = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!(
                "inbound connector {:?} of tenant {}: {e}",
                record.name, record.tenant
            ))
        })?;
        out.push(record);
    }
    Ok(out)
}

fn select(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<InboundConnectorRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM inbound_connectors c JOIN tenants t ON t.id = c.tenant_id \
         WHERE {filter}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, record)?;
    parsed(rows)
}

fn one(conn: &Connection, tenant: TenantId, name: &str) -> Result<InboundConnectorRecord> {
    select(
        conn,
        "c.tenant_id = ?1 AND c.name = ?2",
        params![tenant, name],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("inbound connector {name:?}")))
}

fn tenant_name(conn: &Connection, tenant: TenantId) -> Result<String> {
    conn.query_row("SELECT name FROM tenants WHERE id = ?1", [tenant], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant}")))
}

/// The seed's E3 pitfall: an IP on on-premises connectors of two tenants is attributed to one
/// of them, and mail from it to the other is pulled through the first. Refuses `entries` that
/// share an address with another tenant's on-premises connector (enabled or not: enabling it
/// later must not create the clash silently).
fn check_shared_ips(conn: &Connection, tenant: TenantId, entries: &[String]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let others = select(
        conn,
        "c.tenant_id != ?1 AND c.connector_type = 'on-premises' ORDER BY c.created, c.id",
        [tenant],
    )?;
    for text in entries {
        let Ok(mine) = sender_ip(text) else { continue };
        for other in &others {
            for theirs in &other.connector.sender_ip_addresses {
                if sender_ip(theirs).is_ok_and(|t| overlaps(&mine, &t)) {
                    // The other organisation stays unnamed to this one's admins (tenants do
                    // not see each other); the operator finds it in the server's log.
                    tracing::warn!(
                        "tenant {tenant}'s connector address {text} overlaps {theirs} of the \
                         on-premises inbound connector {:?} of tenant {:?}",
                        other.name,
                        other.tenant
                    );
                    return Err(StoreError::InUse(format!(
                        "sender-ip-addresses: {text} is on another organisation's on-premises \
                         inbound connector. An IP shared by two organisations' on-premises \
                         connectors attributes all its mail to one of them, so mail for the \
                         other is pulled through the first and leaves traces there (the \
                         shared-IP pitfall); use a dedicated IP, or give --force to register it \
                         anyway"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn type_column(c: &InboundConnector) -> &'static str {
    c.connector_type.name()
}

fn definition(c: &InboundConnector) -> Result<String> {
    serde_json::to_string(c).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl ConnectorStore for SqliteStore {
    fn inbound_connectors(&self, tenant: TenantId) -> Result<Vec<InboundConnectorRecord>> {
        self.read(|conn| {
            select(
                conn,
                "c.tenant_id = ?1 ORDER BY c.name COLLATE NOCASE",
                [tenant],
            )
        })
    }

    fn inbound_connector(&self, tenant: TenantId, name: &str) -> Result<InboundConnectorRecord> {
        self.read(|conn| one(conn, tenant, name))
    }

    fn add_inbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: InboundConnector,
        force: bool,
    ) -> Pending<InboundConnectorRecord> {
        let name = name.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            connector
                .validate()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let tenant_name = tenant_name(conn, tenant)?;
            let count: i64 = conn.query_row(
                "SELECT count(*) FROM inbound_connectors WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= INBOUND_CONNECTORS_MAX {
                return Err(StoreError::Invalid(format!(
                    "tenant {tenant_name} already has {INBOUND_CONNECTORS_MAX} inbound connectors, the most it may have"
                )));
            }
            let taken: Option<i64> = conn
                .query_row(
                    "SELECT id FROM inbound_connectors WHERE tenant_id = ?1 AND name = ?2",
                    params![tenant, name],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!("inbound connector {name:?}")));
            }
            if !force && connector.connector_type == ConnectorType::OnPremises {
                check_shared_ips(conn, tenant, &connector.sender_ip_addresses)?;
            }
            conn.execute(
                "INSERT INTO inbound_connectors(tenant_id, name, connector_type, enabled, definition, created, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    tenant,
                    name,
                    type_column(&connector),
                    connector.enabled,
                    definition(&connector)?,
                    now
                ],
            )?;
            super::policy_changed();
            one(conn, tenant, &name)
        })
    }

    fn set_inbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: InboundConnector,
        force: bool,
    ) -> Pending<InboundConnectorRecord> {
        let name = name.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            connector
                .validate()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let current = one(conn, tenant, &name)?;
            if !force && connector.connector_type == ConnectorType::OnPremises {
                // Only what is new: a clash registered with --force earlier does not block
                // every later change of the connector.
                let was_on_premises =
                    current.connector.connector_type == ConnectorType::OnPremises;
                let new: Vec<String> = connector
                    .sender_ip_addresses
                    .iter()
                    .filter(|ip| {
                        !was_on_premises || !current.connector.sender_ip_addresses.contains(ip)
                    })
                    .cloned()
                    .collect();
                check_shared_ips(conn, tenant, &new)?;
            }
            conn.execute(
                "UPDATE inbound_connectors SET connector_type = ?2, enabled = ?3, definition = ?4, updated = ?5 \
                 WHERE id = ?1",
                params![
                    current.id,
                    type_column(&connector),
                    connector.enabled,
                    definition(&connector)?,
                    now
                ],
            )?;
            super::policy_changed();
            one(conn, tenant, &name)
        })
    }

    fn remove_inbound_connector(&self, tenant: TenantId, name: &str) -> Pending<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM inbound_connectors WHERE tenant_id = ?1 AND name = ?2",
                params![tenant, name],
            )?;
            super::policy_changed();
            if n == 0 {
                return Err(StoreError::NotFound(format!("inbound connector {name:?}")));
            }
            Ok(())
        })
    }

    fn connector_version(&self) -> Result<i64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT version FROM connector_version WHERE id = 1")?
                .query_row([], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    fn enabled_inbound_connectors(&self) -> Result<Vec<InboundConnectorRecord>> {
        self.read(|conn| select(conn, "c.enabled = 1 ORDER BY c.created, c.id", params![]))
    }
}

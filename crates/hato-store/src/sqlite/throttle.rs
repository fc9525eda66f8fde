//! Tenants' throttle exemption lists.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::ThrottleStore;
use crate::types::{THROTTLE_EXEMPTIONS_MAX, ThrottleExemptionRow};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use rusqlite::{OptionalExtension, params};

impl ThrottleStore for SqliteStore {
    fn add_throttle_exemption(
        &self,
        tenant: TenantId,
        network: &str,
    ) -> Pending<ThrottleExemptionRow> {
        let network = network.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            let name: String = conn
                .query_row("SELECT name FROM tenants WHERE id = ?1", [tenant], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant}")))?;
            // Counted in the write that adds, so two concurrent adds cannot both pass the bound.
            let count: i64 = conn.query_row(
                "SELECT count(*) FROM throttle_exemptions WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )?;
            if count as usize >= THROTTLE_EXEMPTIONS_MAX {
                return Err(StoreError::Invalid(format!(
                    "tenant {name} already has {THROTTLE_EXEMPTIONS_MAX} throttle exemptions, the most it may have"
                )));
            }
            let added = conn.execute(
                "INSERT OR IGNORE INTO throttle_exemptions(tenant_id, network, created) VALUES (?1, ?2, ?3)",
                params![tenant, network, now],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict(format!(
                    "throttle exemption {network} of tenant {name}"
                )));
            }
            Ok(ThrottleExemptionRow {
                tenant_id: tenant,
                tenant: name,
                network,
                created: Timestamp(now),
                connector: None,
            })
        })
    }

    fn remove_throttle_exemption(&self, tenant: TenantId, network: &str) -> Pending<()> {
        let network = network.to_string();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM throttle_exemptions WHERE tenant_id = ?1 AND network = ?2",
                params![tenant, network],
            )?;
            if n == 0 {
                // An entry an on-premises connector registers goes with the connector.
                let connector: Option<String> = conn
                    .query_row(
                        "SELECT c.name FROM inbound_connectors c, json_each(c.definition, '$.sender_ip_addresses') j \
                         WHERE c.tenant_id = ?1 AND c.connector_type = 'on-premises' AND c.enabled = 1 AND j.value = ?2 \
                         ORDER BY c.created LIMIT 1",
                        params![tenant, network],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(connector) = connector {
                    return Err(StoreError::InUse(format!(
                        "throttle exemption {network} comes from the on-premises inbound connector \
                         {connector:?}; it goes when the connector is removed or disabled"
                    )));
                }
                return Err(StoreError::NotFound(format!(
                    "throttle exemption {network}"
                )));
            }
            Ok(())
        })
    }

    fn throttle_exemptions(&self, tenant: Option<TenantId>) -> Result<Vec<ThrottleExemptionRow>> {
        self.read(|conn| {
            // The entries added as such, and the IPs of enabled on-premises inbound connectors
            // (registered while the connector exists and is enabled; migration 25).
            let mut stmt = conn.prepare_cached(
                "SELECT tenant_id, tenant, network, created, connector FROM ( \
                   SELECT e.tenant_id, t.name AS tenant, e.network, e.created, NULL AS connector \
                   FROM throttle_exemptions e JOIN tenants t ON t.id = e.tenant_id \
                   WHERE ?1 IS NULL OR e.tenant_id = ?1 \
                   UNION ALL \
                   SELECT c.tenant_id, t.name, j.value, c.created, c.name \
                   FROM inbound_connectors c JOIN tenants t ON t.id = c.tenant_id, \
                        json_each(c.definition, '$.sender_ip_addresses') j \
                   WHERE c.connector_type = 'on-premises' AND c.enabled = 1 \
                     AND (?1 IS NULL OR c.tenant_id = ?1)) \
                 ORDER BY tenant, network, connector",
            )?;
            let rows = stmt.query_map([tenant], |r| {
                Ok(ThrottleExemptionRow {
                    tenant_id: r.get(0)?,
                    tenant: r.get(1)?,
                    network: r.get(2)?,
                    created: Timestamp(r.get(3)?),
                    connector: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

//! DKIM signing configs per accepted domain (migration 27): `dkim_signing_configs` (enabled, the
//! active selector, created/rotated) and `dkim_keys` (two rows per config, `selector1` and
//! `selector2`), both removed with the domain and the tenant; `dkim_version` moved by triggers.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::DkimStore;
use crate::types::{DkimKeyType, DkimSelectorKey, DkimSigningConfig, NewDkimKey};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

const CONFIG_COLUMNS: &str = "SELECT c.domain, c.tenant_id, t.name, c.enabled, c.active_selector, \
     c.created, c.rotated FROM dkim_signing_configs c JOIN tenants t ON t.id = c.tenant_id";

struct ConfigRow {
    domain: String,
    tenant_id: TenantId,
    tenant: String,
    enabled: bool,
    active: u8,
    created: i64,
    rotated: Option<i64>,
}

fn config_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConfigRow> {
    Ok(ConfigRow {
        domain: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        enabled: r.get(3)?,
        active: r.get(4)?,
        created: r.get(5)?,
        rotated: r.get(6)?,
    })
}

fn selector_name(n: u8) -> String {
    format!("selector{n}")
}

/// A `dkim_keys` row: key type, bits, private key, public key, created.
type KeyRow = (String, u32, Vec<u8>, Vec<u8>, i64);

fn key(conn: &Connection, domain: &str, selector: u8) -> Result<DkimSelectorKey> {
    let row: Option<KeyRow> = conn
        .prepare_cached(
            "SELECT key_type, bits, private_key, public_key, created FROM dkim_keys \
             WHERE domain = ?1 AND selector = ?2",
        )?
        .query_row(params![domain, selector], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((kind, bits, private_key, public_key, created)) = row else {
        return Err(StoreError::Corrupt(format!(
            "DKIM config of {domain} has no key for selector{selector}"
        )));
    };
    let key_type = DkimKeyType::parse(&kind).ok_or_else(|| {
        StoreError::Corrupt(format!("DKIM key of {domain}: unknown key type {kind:?}"))
    })?;
    Ok(DkimSelectorKey {
        selector: selector_name(selector),
        key: NewDkimKey {
            key_type,
            bits,
            private_key,
            public_key,
        },
        created: Timestamp(created),
    })
}

fn complete(conn: &Connection, row: ConfigRow) -> Result<DkimSigningConfig> {
    let selectors = [key(conn, &row.domain, 1)?, key(conn, &row.domain, 2)?];
    Ok(DkimSigningConfig {
        tenant_id: row.tenant_id,
        tenant: row.tenant,
        domain: row.domain,
        enabled: row.enabled,
        active: row.active,
        selectors,
        created: Timestamp(row.created),
        rotated: row.rotated.map(Timestamp),
    })
}

fn configs(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<DkimSigningConfig>> {
    let mut stmt = conn.prepare_cached(&format!("{CONFIG_COLUMNS} {filter} ORDER BY c.domain"))?;
    let rows = stmt
        .query_map(args, config_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| complete(conn, r)).collect()
}

fn config(conn: &Connection, tenant: TenantId, domain: &str) -> Result<DkimSigningConfig> {
    let row = conn
        .prepare_cached(&format!(
            "{CONFIG_COLUMNS} WHERE c.tenant_id = ?1 AND c.domain = ?2"
        ))?
        .query_row(params![tenant, domain], config_row)
        .optional()?;
    match row {
        Some(r) => complete(conn, r),
        None => Err(StoreError::NotFound(format!(
            "DKIM signing config of {domain}"
        ))),
    }
}

fn put_key(conn: &Connection, domain: &str, selector: u8, k: &NewDkimKey, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO dkim_keys(domain, selector, key_type, bits, private_key, public_key, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT(domain, selector) DO UPDATE SET key_type = excluded.key_type, \
         bits = excluded.bits, private_key = excluded.private_key, \
         public_key = excluded.public_key, created = excluded.created",
        params![
            domain,
            selector,
            k.key_type.as_str(),
            k.bits,
            k.private_key,
            k.public_key,
            now
        ],
    )?;
    Ok(())
}

impl DkimStore for SqliteStore {
    fn add_dkim_signing_config(
        &self,
        tenant: TenantId,
        domain: &str,
        enabled: bool,
        keys: [NewDkimKey; 2],
    ) -> Pending<DkimSigningConfig> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = self.now_micros();
        self.write(move |conn| {
            // The signer's snapshot is kept under the policy generation (`dkim_generation`).
            super::policy_changed();
            let held: Option<(TenantId, String)> = conn
                .prepare_cached("SELECT tenant_id, status FROM domains WHERE domain = ?1")?
                .query_row([&domain], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            // Another tenant's domain reads as no domain of this tenant: the answer names no
            // other tenant (as `add_domain`'s conflict does not).
            match held {
                Some((owner, status)) if owner == tenant => {
                    if status != "verified" {
                        return Err(StoreError::Invalid(format!(
                            "domain {domain} is pending verification; verify it before signing its mail"
                        )));
                    }
                }
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "domain {domain} is not an accepted domain of this tenant"
                    )));
                }
            }
            let exists: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM dkim_signing_configs WHERE domain = ?1")?
                .query_row([&domain], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!(
                    "DKIM signing config of {domain}"
                )));
            }
            conn.execute(
                "INSERT INTO dkim_signing_configs(domain, tenant_id, enabled, active_selector, created) \
                 VALUES (?1, ?2, ?3, 1, ?4)",
                params![domain, tenant, enabled, now],
            )?;
            for (i, k) in keys.iter().enumerate() {
                put_key(conn, &domain, i as u8 + 1, k, now)?;
            }
            config(conn, tenant, &domain)
        })
    }

    fn dkim_signing_configs(&self, tenant: Option<TenantId>) -> Result<Vec<DkimSigningConfig>> {
        self.read(|conn| match tenant {
            Some(t) => configs(conn, "WHERE c.tenant_id = ?1", &[&t]),
            None => configs(conn, "", &[]),
        })
    }

    fn dkim_signing_config(&self, tenant: TenantId, domain: &str) -> Result<DkimSigningConfig> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.read(|conn| config(conn, tenant, &domain))
    }

    fn set_dkim_signing_enabled(
        &self,
        tenant: TenantId,
        domain: &str,
        enabled: bool,
    ) -> Pending<DkimSigningConfig> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.write(move |conn| {
            // The signer's snapshot is kept under the policy generation (`dkim_generation`).
            super::policy_changed();
            config(conn, tenant, &domain)?;
            conn.execute(
                "UPDATE dkim_signing_configs SET enabled = ?1 WHERE domain = ?2",
                params![enabled, domain],
            )?;
            config(conn, tenant, &domain)
        })
    }

    fn rotate_dkim_signing_config(
        &self,
        tenant: TenantId,
        domain: &str,
        new_key: NewDkimKey,
    ) -> Pending<DkimSigningConfig> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = self.now_micros();
        self.write(move |conn| {
            // The signer's snapshot is kept under the policy generation (`dkim_generation`).
            super::policy_changed();
            let before = config(conn, tenant, &domain)?;
            let next = if before.active == 1 { 2 } else { 1 };
            conn.execute(
                "UPDATE dkim_signing_configs SET active_selector = ?1, rotated = ?2 WHERE domain = ?3",
                params![next, now, domain],
            )?;
            put_key(conn, &domain, before.active, &new_key, now)?;
            config(conn, tenant, &domain)
        })
    }

    fn remove_dkim_signing_config(&self, tenant: TenantId, domain: &str) -> Pending<()> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.write(move |conn| {
            // The signer's snapshot is kept under the policy generation (`dkim_generation`).
            super::policy_changed();
            let n = conn.execute(
                "DELETE FROM dkim_signing_configs WHERE tenant_id = ?1 AND domain = ?2",
                params![tenant, domain],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "DKIM signing config of {domain}"
                )));
            }
            Ok(())
        })
    }

    fn dkim_generation(&self) -> Option<u64> {
        Some(self.policy_generation())
    }

    fn dkim_version(&self) -> Result<i64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT version FROM dkim_version WHERE id = 1")?
                .query_row([], |r| r.get(0))?)
        })
    }

    fn enabled_dkim_signing_configs(&self) -> Result<Vec<DkimSigningConfig>> {
        self.read(|conn| configs(conn, "WHERE c.enabled = 1", &[]))
    }
}

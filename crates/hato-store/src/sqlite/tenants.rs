//! Tenants and their accepted domains.

use super::{SqliteStore, bump_directory};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::TenantStore;
use hato_core::directory::{
    AcceptedDomain, DomainEntry, DomainStatus, DomainType, Tenant, TenantId, VERIFICATION_PREFIX,
};
use rusqlite::{Connection, OptionalExtension, params};

/// A status the store does not know (a row written by a newer version) counts as pending: mail
/// is taken only for a domain known to be verified.
fn read_status(text: &str) -> DomainStatus {
    DomainStatus::parse(text).unwrap_or(DomainStatus::Pending)
}

const DOMAIN_COLUMNS: &str = "SELECT d.domain, t.name, d.type, d.status, d.verification_token \
     FROM domains d JOIN tenants t ON t.id = d.tenant_id";

fn accepted_domain(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcceptedDomain> {
    let kind: String = r.get(2)?;
    let status: String = r.get(3)?;
    let token: String = r.get(4)?;
    Ok(AcceptedDomain {
        domain: r.get(0)?,
        tenant: r.get(1)?,
        domain_type: DomainType::parse(&kind).unwrap_or_default(),
        status: read_status(&status),
        verification_record: format!("{VERIFICATION_PREFIX}{token}"),
    })
}

fn domain_row(conn: &Connection, domain: &str) -> Result<Option<AcceptedDomain>> {
    Ok(conn
        .query_row(
            &format!("{DOMAIN_COLUMNS} WHERE d.domain = ?1"),
            [domain],
            accepted_domain,
        )
        .optional()?)
}

/// A verification token: 16 random bytes from the OS, hex (128 bits: not guessable, so only
/// whoever can publish records at the domain can publish it).
fn new_verification_token() -> String {
    hato_core::id::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SqliteStore {
    fn insert_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
        status: DomainStatus,
    ) -> Pending<AcceptedDomain> {
        let domain = domain.to_string();
        let token = new_verification_token();
        self.write(move |conn| {
            tenant_name(conn, tenant)?;
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT tenant_id FROM domains WHERE domain = ?1",
                    [&domain],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                // The same answer whichever tenant holds it, in whichever state: the caller
                // learns that the name is taken, not by whom nor whether it is verified.
                return Err(StoreError::Conflict(format!("domain {domain}")));
            }
            conn.execute(
                "INSERT INTO domains(domain, tenant_id, type, status, verification_token) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![domain, tenant, kind.as_str(), status.as_str(), token],
            )?;
            bump_directory(conn, tenant)?;
            domain_row(conn, &domain)?
                .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))
        })
    }
}

fn tenant_name(conn: &Connection, id: TenantId) -> Result<String> {
    conn.query_row("SELECT name FROM tenants WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
}

impl TenantStore for SqliteStore {
    fn create_tenant(&self, name: &str) -> Pending<Tenant> {
        let name = name.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT id FROM tenants WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("tenant {name}")));
            }
            conn.execute(
                "INSERT INTO tenants(name, created) VALUES (?1, ?2)",
                params![name, now],
            )?;
            Ok(Tenant {
                id: conn.last_insert_rowid(),
                name,
            })
        })
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, name FROM tenants ORDER BY name")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, name FROM tenants WHERE name = ?1",
                    [name],
                    |r| {
                        Ok(Tenant {
                            id: r.get(0)?,
                            name: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn remove_tenant(&self, id: TenantId) -> Pending<()> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM tenants WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("tenant {id}")));
            }
            bump_directory(conn, id)?;
            Ok(())
        })
    }

    fn add_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
    ) -> Pending<AcceptedDomain> {
        self.insert_domain(domain, tenant, kind, DomainStatus::Verified)
    }

    fn add_pending_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
    ) -> Pending<AcceptedDomain> {
        self.insert_domain(domain, tenant, kind, DomainStatus::Pending)
    }

    fn verify_domain(&self, domain: &str) -> Pending<AcceptedDomain> {
        let domain = domain.to_string();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE domains SET status = 'verified' WHERE domain = ?1 AND status != 'verified'",
                [&domain],
            )?;
            let d = domain_row(conn, &domain)?
                .ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?;
            if n > 0 {
                // Mail for it is taken from now on: the tenant's directory changed.
                let tenant: TenantId = conn.query_row(
                    "SELECT tenant_id FROM domains WHERE domain = ?1",
                    [&domain],
                    |r| r.get(0),
                )?;
                bump_directory(conn, tenant)?;
            }
            Ok(d)
        })
    }

    fn domains(&self, tenant: Option<TenantId>) -> Result<Vec<AcceptedDomain>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{DOMAIN_COLUMNS} WHERE ?1 IS NULL OR d.tenant_id = ?1 ORDER BY d.domain"
            ))?;
            let rows = stmt
                .query_map([tenant], accepted_domain)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn domain(&self, domain: &str) -> Result<Option<(TenantId, DomainType)>> {
        Ok(self
            .domain_entry(domain)?
            .map(|e| (e.tenant, e.domain_type)))
    }

    fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT tenant_id, type, status, verification_token FROM domains WHERE domain = ?1",
            )?;
            Ok(stmt
                .query_row([domain], |r| {
                    let kind: String = r.get(1)?;
                    let status: String = r.get(2)?;
                    let token: String = r.get(3)?;
                    Ok(DomainEntry {
                        tenant: r.get(0)?,
                        domain_type: DomainType::parse(&kind).unwrap_or_default(),
                        status: read_status(&status),
                        verification_record: format!("{VERIFICATION_PREFIX}{token}"),
                    })
                })
                .optional()?)
        })
    }

    fn remove_domain(&self, domain: &str) -> Pending<()> {
        let domain = domain.to_string();
        self.write(move |conn| {
            // Every address of the domain: mailboxes' (primary and aliases) and groups'. The
            // suffix is compared exactly (LIKE would read `_` and `%` in it as wildcards).
            let in_use: i64 = conn.query_row(
                "SELECT (SELECT count(*) FROM addresses \
                           WHERE substr(address, -length(?1) - 1) = '@' || ?1) \
                      + (SELECT count(*) FROM groups WHERE address IS NOT NULL \
                           AND substr(address, -length(?1) - 1) = '@' || ?1)",
                [&domain],
                |r| r.get(0),
            )?;
            if in_use > 0 {
                return Err(StoreError::Invalid(format!(
                    "domain {domain} is still used by {in_use} address(es); remove or change them first"
                )));
            }
            let owner: Option<i64> = conn
                .query_row("SELECT tenant_id FROM domains WHERE domain = ?1", [&domain], |r| r.get(0))
                .optional()?;
            let n = conn.execute("DELETE FROM domains WHERE domain = ?1", [&domain])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("domain {domain}")));
            }
            if let Some(t) = owner {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }
}

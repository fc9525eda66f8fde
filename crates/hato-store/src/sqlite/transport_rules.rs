//! Tenants' transport rules: priorities unique and contiguous from 0, as Exchange keeps them.
//!
//! Every change that moves priorities reads the tenant's order (at most
//! [`TRANSPORT_RULES_MAX`] ids), changes it in memory and writes it back in two passes (first
//! every row to a distinct negative number, then each to its place), so the
//! `UNIQUE(tenant_id, priority)` constraint holds at every step. The writer thread runs one write
//! at a time, so two inserts at once cannot give two rules one priority.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::TransportRuleStore;
use crate::types::{
    NewTransportRule, TRANSPORT_RULES_MAX, TransportRuleChange, TransportRuleRecord,
};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, tenant_id, name, priority, enabled, definition, hits, created, modified";

fn record(r: &Row<'_>) -> rusqlite::Result<TransportRuleRecord> {
    Ok(TransportRuleRecord {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        priority: r.get(3)?,
        enabled: r.get(4)?,
        definition: r.get(5)?,
        hits: r.get::<_, i64>(6)?.max(0) as u64,
        created: Timestamp(r.get(7)?),
        modified: Timestamp(r.get(8)?),
    })
}

fn all(conn: &Connection, tenant: TenantId) -> Result<Vec<TransportRuleRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM transport_rules WHERE tenant_id = ?1 ORDER BY priority"
    ))?;
    let rows = stmt
        .query_map([tenant], record)?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn by_name(conn: &Connection, tenant: TenantId, name: &str) -> Result<Option<TransportRuleRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM transport_rules WHERE tenant_id = ?1 AND name = ?2"
        ))?
        .query_row(params![tenant, name], record)
        .optional()?)
}

fn version(conn: &Connection, tenant: TenantId) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT version FROM transport_rule_versions WHERE tenant_id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn bump(conn: &Connection, tenant: TenantId) -> Result<()> {
    super::policy_changed();
    conn.prepare_cached(
        "INSERT INTO transport_rule_versions(tenant_id, version) VALUES (?1, 1) \
         ON CONFLICT(tenant_id) DO UPDATE SET version = version + 1",
    )?
    .execute([tenant])?;
    Ok(())
}

fn require_tenant(conn: &Connection, tenant: TenantId) -> Result<()> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM tenants WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("tenant {tenant}"))),
    }
}

/// The tenant's rule ids in priority order.
fn order(conn: &Connection, tenant: TenantId) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM transport_rules WHERE tenant_id = ?1 AND priority >= 0 ORDER BY priority",
    )?;
    let ids = stmt
        .query_map([tenant], |r| r.get(0))?
        .collect::<std::result::Result<Vec<i64>, _>>()?;
    Ok(ids)
}

/// Gives the rules `ids` the priorities 0, 1, … in that order.
fn renumber(conn: &Connection, tenant: TenantId, ids: &[i64]) -> Result<()> {
    conn.prepare_cached("UPDATE transport_rules SET priority = -1 - id WHERE tenant_id = ?1")?
        .execute([tenant])?;
    let mut stmt = conn.prepare_cached("UPDATE transport_rules SET priority = ?2 WHERE id = ?1")?;
    for (i, id) in ids.iter().enumerate() {
        stmt.execute(params![id, i as i64])?;
    }
    Ok(())
}

fn place(priority: Option<u32>, len: usize, name: &str) -> Result<usize> {
    match priority {
        None => Ok(len),
        Some(p) if (p as usize) <= len => Ok(p as usize),
        Some(p) => Err(StoreError::Invalid(format!(
            "priority {p} of rule {name}: the tenant's rules take 0 to {len}"
        ))),
    }
}

/// Adds a rule at its place among `ids` (the order, updated).
fn insert(
    conn: &Connection,
    tenant: TenantId,
    rule: &NewTransportRule,
    now: i64,
    ids: &mut Vec<i64>,
) -> Result<()> {
    if ids.len() >= TRANSPORT_RULES_MAX {
        return Err(StoreError::Invalid(format!(
            "a tenant has at most {TRANSPORT_RULES_MAX} transport rules"
        )));
    }
    if by_name(conn, tenant, &rule.name)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "transport rule {}",
            rule.name
        )));
    }
    let at = place(rule.priority, ids.len(), &rule.name)?;
    // A priority no row has until the renumbering (they are all ≥ 0 or −1 − id < −1).
    conn.prepare_cached(
        "INSERT INTO transport_rules(tenant_id, name, priority, enabled, definition, created, modified) \
         VALUES (?1, ?2, -1, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![tenant, rule.name, rule.enabled, rule.definition, now])?;
    ids.insert(at, conn.last_insert_rowid());
    renumber(conn, tenant, ids)
}

fn change(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
    c: &TransportRuleChange,
    now: i64,
) -> Result<TransportRuleRecord> {
    let Some(old) = by_name(conn, tenant, name)? else {
        return Err(StoreError::NotFound(format!("transport rule {name}")));
    };
    if let Some(new) = &c.name
        && !new.eq_ignore_ascii_case(&old.name)
        && by_name(conn, tenant, new)?.is_some()
    {
        return Err(StoreError::Conflict(format!("transport rule {new}")));
    }
    conn.prepare_cached(
        "UPDATE transport_rules SET name = coalesce(?2, name), enabled = coalesce(?3, enabled), \
         definition = coalesce(?4, definition), modified = ?5 WHERE id = ?1",
    )?
    .execute(params![old.id, c.name, c.enabled, c.definition, now])?;
    if let Some(p) = c.priority {
        let mut ids = order(conn, tenant)?;
        ids.retain(|id| *id != old.id);
        let at = place(Some(p), ids.len(), name)?;
        ids.insert(at, old.id);
        renumber(conn, tenant, &ids)?;
    }
    bump(conn, tenant)?;
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM transport_rules WHERE id = ?1"
    ))?
    .query_row([old.id], record)
    .map_err(Into::into)
}

impl TransportRuleStore for SqliteStore {
    fn transport_rules(&self, tenant: TenantId) -> Result<Vec<TransportRuleRecord>> {
        self.read(|conn| all(conn, tenant))
    }

    fn transport_rule(&self, tenant: TenantId, name: &str) -> Result<Option<TransportRuleRecord>> {
        self.read(|conn| by_name(conn, tenant, name))
    }

    fn transport_rules_version(&self, tenant: TenantId) -> Result<i64> {
        self.read(|conn| version(conn, tenant))
    }

    fn add_transport_rule(
        &self,
        tenant: TenantId,
        rule: NewTransportRule,
    ) -> Pending<TransportRuleRecord> {
        let now = self.now_micros();
        self.write(move |conn| {
            require_tenant(conn, tenant)?;
            let mut ids = order(conn, tenant)?;
            insert(conn, tenant, &rule, now, &mut ids)?;
            bump(conn, tenant)?;
            by_name(conn, tenant, &rule.name)?
                .ok_or_else(|| StoreError::NotFound(format!("transport rule {}", rule.name)))
        })
    }

    fn change_transport_rule(
        &self,
        tenant: TenantId,
        name: &str,
        c: TransportRuleChange,
    ) -> Pending<TransportRuleRecord> {
        let now = self.now_micros();
        let name = name.to_string();
        self.write(move |conn| change(conn, tenant, &name, &c, now))
    }

    fn remove_transport_rule(&self, tenant: TenantId, name: &str) -> Pending<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM transport_rules WHERE tenant_id = ?1 AND name = ?2")?
                .execute(params![tenant, name])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("transport rule {name}")));
            }
            let ids = order(conn, tenant)?;
            renumber(conn, tenant, &ids)?;
            bump(conn, tenant)
        })
    }

    fn import_transport_rules(
        &self,
        tenant: TenantId,
        rules: Vec<NewTransportRule>,
        replace: bool,
    ) -> Pending<Vec<TransportRuleRecord>> {
        let now = self.now_micros();
        self.write(move |conn| {
            require_tenant(conn, tenant)?;
            if replace {
                conn.prepare_cached("DELETE FROM transport_rules WHERE tenant_id = ?1")?
                    .execute([tenant])?;
            }
            // Given priorities first, in their order, then the others as they come: each goes
            // to its priority among those placed before it (or last), as adding them one by one.
            let mut sorted: Vec<&NewTransportRule> = rules.iter().collect();
            sorted.sort_by_key(|r| r.priority.unwrap_or(u32::MAX));
            let mut ids = order(conn, tenant)?;
            for r in sorted {
                let existing = by_name(conn, tenant, &r.name)?;
                match existing {
                    Some(old) if !replace => {
                        conn.prepare_cached(
                            "UPDATE transport_rules SET name = ?2, enabled = ?3, definition = ?4, \
                             modified = ?5 WHERE id = ?1",
                        )?
                        .execute(params![
                            old.id,
                            r.name,
                            r.enabled,
                            r.definition,
                            now
                        ])?;
                        if let Some(p) = r.priority {
                            ids.retain(|id| *id != old.id);
                            let at = place(Some(p), ids.len(), &r.name)?;
                            ids.insert(at, old.id);
                            renumber(conn, tenant, &ids)?;
                        }
                    }
                    _ => {
                        let at = r.priority.map(|p| p.min(ids.len() as u32));
                        let clamped = NewTransportRule {
                            priority: at,
                            ..r.clone()
                        };
                        insert(conn, tenant, &clamped, now, &mut ids)?;
                    }
                }
            }
            bump(conn, tenant)?;
            all(conn, tenant)
        })
    }

    fn count_transport_rule_hits(&self, hits: Vec<(i64, u64)>) -> Pending<()> {
        self.write(move |conn| {
            let mut stmt =
                conn.prepare_cached("UPDATE transport_rules SET hits = hits + ?2 WHERE id = ?1")?;
            for (id, n) in hits {
                stmt.execute(params![id, i64::try_from(n).unwrap_or(i64::MAX)])?;
            }
            Ok(())
        })
    }
}

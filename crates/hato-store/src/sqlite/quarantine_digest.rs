//! End-user quarantine notifications: which recipients have items held since their last
//! digest, the items a digest lists, when each recipient was last told, and the secret that
//! signs release links (migration 21). It reads quarantine rows with `quarantine.rs`'s row
//! reader (as `snapshot.rs` reads groups and contacts); nothing imports this module.

use super::SqliteStore;
use super::quarantine::item;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::QuarantineDigestStore;
use crate::types::*;
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use rusqlite::{OptionalExtension, params};

/// The item's quarantine policy has `ESNEnabled` (Exchange sends end-user quarantine
/// notifications for any quarantined item under such a policy, malware and high confidence
/// phish too — the digest then links to a release request, never a release —, and only for
/// those: exchange-online-behaviour.md §6.4): a
/// built-in one with notifications on, or the tenant's own with `notifications` set. An SQL
/// condition on the quarantine row `q` (a policy removed since notifies nobody).
fn notifies_sql() -> String {
    let built_in = QuarantinePolicy::built_ins()
        .into_iter()
        .filter(|p| p.notifications)
        .map(|p| format!("'{}'", p.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(q.quarantine_policy COLLATE NOCASE IN ({built_in}) OR EXISTS (SELECT 1 FROM \
         quarantine_policies p WHERE p.tenant_id = q.tenant_id AND p.name = q.quarantine_policy \
         AND p.notifications != 0))"
    )
}

/// The name of the release-link secret in `server_secrets`.
const RELEASE_SECRET: &str = "quarantine-release-link";

fn as_sql(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl QuarantineDigestStore for SqliteStore {
    fn digest_candidates(
        &self,
        now: Timestamp,
        after: Option<(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<DigestCandidate>> {
        let (after_tenant, after_recipient) = match after {
            Some((t, r)) => (t, r),
            // Before every tenant id (row ids start at 1) and every address.
            None => (i64::MIN, String::new()),
        };
        // One group per recipient; the page is keyed by (tenant, address), so a long list is
        // walked in bounded pages and none is skipped or seen twice.
        let sql = format!(
            "SELECT q.tenant_id, q.recipient, n.last_sent, n.covered_until, MAX(q.quarantined) \
             FROM quarantine q LEFT JOIN quarantine_notifications n \
               ON n.tenant_id = q.tenant_id AND n.recipient = q.recipient \
             WHERE q.state = 'held' AND q.expires > ?1 AND {} \
               AND (n.covered_until IS NULL OR q.quarantined > n.covered_until) \
               AND (q.tenant_id > ?2 OR (q.tenant_id = ?2 AND q.recipient > ?3)) \
             GROUP BY q.tenant_id, q.recipient \
             ORDER BY q.tenant_id, q.recipient LIMIT ?4",
            notifies_sql()
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![now.0, after_tenant, after_recipient, as_sql(limit)],
                    |r| {
                        Ok(DigestCandidate {
                            tenant_id: r.get(0)?,
                            recipient: r.get(1)?,
                            last_sent: r.get::<_, Option<i64>>(2)?.map(Timestamp),
                            covered_until: r.get::<_, Option<i64>>(3)?.map(Timestamp),
                            newest: Timestamp(r.get(4)?),
                        })
                    },
                )?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn digest_items(
        &self,
        tenant: TenantId,
        recipient: &str,
        since: Option<Timestamp>,
        until: Timestamp,
        now: Timestamp,
        limit: usize,
    ) -> Result<DigestItems> {
        let filter = format!(
            "FROM quarantine q WHERE q.tenant_id = ?1 AND q.recipient = ?2 AND q.state = 'held' \
             AND q.expires > ?3 AND q.quarantined > ?4 AND q.quarantined <= ?5 AND {}",
            notifies_sql()
        );
        let since = since.map_or(i64::MIN, |t| t.0);
        let recipient = recipient.to_lowercase();
        self.read(|conn| {
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) {filter}"))?
                .query_row(params![tenant, recipient, now.0, since, until.0], |r| {
                    r.get(0)
                })?;
            // Only the ids of the page, then each item by id: the listing reads at most
            // `limit` whole rows however many are held.
            let ids = conn
                .prepare_cached(&format!(
                    "SELECT q.id {filter} ORDER BY q.quarantined DESC, q.id DESC LIMIT ?6"
                ))?
                .query_map(
                    params![tenant, recipient, now.0, since, until.0, as_sql(limit)],
                    |r| r.get::<_, i64>(0),
                )?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(it) = item(conn, id)? {
                    items.push(it);
                }
            }
            Ok(DigestItems {
                items,
                total: usize::try_from(total).unwrap_or(0),
            })
        })
    }

    fn record_digest(
        &self,
        tenant: TenantId,
        recipient: &str,
        sent: Timestamp,
        covered_until: Timestamp,
    ) -> Pending<()> {
        let recipient = recipient.to_lowercase();
        self.write(move |conn| {
            // `MAX`: a digest recorded late (a slow pass) never moves the covered time back.
            conn.prepare_cached(
                "INSERT INTO quarantine_notifications(tenant_id, recipient, last_sent, covered_until) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(tenant_id, recipient) DO UPDATE SET last_sent = excluded.last_sent, \
                 covered_until = MAX(covered_until, excluded.covered_until)",
            )?
            .execute(params![tenant, recipient, sent.0, covered_until.0])?;
            Ok(())
        })
    }

    fn digest_record(&self, tenant: TenantId, recipient: &str) -> Result<Option<DigestRecord>> {
        let recipient = recipient.to_lowercase();
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT last_sent, covered_until FROM quarantine_notifications \
                     WHERE tenant_id = ?1 AND recipient = ?2",
                )?
                .query_row(params![tenant, recipient], |r| {
                    Ok(DigestRecord {
                        last_sent: Timestamp(r.get(0)?),
                        covered_until: Timestamp(r.get(1)?),
                    })
                })
                .optional()?)
        })
    }

    fn release_link_secret(&self, fresh: [u8; 32]) -> Pending<Vec<u8>> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO server_secrets(name, value) VALUES (?1, ?2)",
            )?
            .execute(params![RELEASE_SECRET, fresh.as_slice()])?;
            let value: Vec<u8> = conn
                .prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?
                .query_row([RELEASE_SECRET], |r| r.get(0))?;
            if value.len() < 32 {
                return Err(StoreError::Corrupt(format!(
                    "the release link secret is {} bytes, not 32",
                    value.len()
                )));
            }
            Ok(value)
        })
    }

    fn existing_release_link_secret(&self) -> Result<Option<Vec<u8>>> {
        self.read(|conn| {
            let value: Option<Vec<u8>> = conn
                .prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?
                .query_row([RELEASE_SECRET], |r| r.get(0))
                .optional()?;
            Ok(value.filter(|v| v.len() >= 32))
        })
    }
}

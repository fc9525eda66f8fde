//! The web console's sessions (hashes of their ids) and its home page's figures.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::ConsoleStore;
use crate::types::{AddressCount, ConsoleSession, MailFlowCounts};
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::TenantId;
use rusqlite::{OptionalExtension, params};

/// A count from SQLite (never negative) as an unsigned number.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl ConsoleStore for SqliteStore {
    fn add_console_session(&self, id_hash: &str, s: ConsoleSession) -> Pending<()> {
        let hash = id_hash.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO console_sessions(hash, role, tenant_id, mailbox_id, name, created, last_seen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![hash, s.role.as_str(), s.tenant_id, s.mailbox_id, s.name, s.created.0, s.last_seen.0],
            )?;
            Ok(())
        })
    }

    fn console_session(&self, id_hash: &str) -> Result<Option<ConsoleSession>> {
        self.read(|conn| {
            let row = conn
                .prepare_cached(
                    "SELECT role, tenant_id, mailbox_id, name, created, last_seen FROM console_sessions WHERE hash = ?1",
                )?
                .query_row([id_hash], |r| {
                    let role: String = r.get(0)?;
                    Ok(Role::parse(&role).map(|role| -> rusqlite::Result<ConsoleSession> {
                        Ok(ConsoleSession {
                            role,
                            tenant_id: r.get(1)?,
                            mailbox_id: r.get(2)?,
                            name: r.get(3)?,
                            created: Timestamp(r.get(4)?),
                            last_seen: Timestamp(r.get(5)?),
                        })
                    }))
                })
                .optional()?;
            // A role this hato does not know (a newer writer's) signs nobody in.
            Ok(row.flatten().transpose()?)
        })
    }

    fn touch_console_session(&self, id_hash: &str, now: Timestamp) -> Pending<()> {
        let hash = id_hash.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE console_sessions SET last_seen = MAX(last_seen, ?2) WHERE hash = ?1",
                params![hash, now.0],
            )?;
            Ok(())
        })
    }

    fn delete_console_session(&self, id_hash: &str) -> Pending<()> {
        let hash = id_hash.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM console_sessions WHERE hash = ?1", [hash])?;
            Ok(())
        })
    }

    fn purge_console_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Pending<usize> {
        self.write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM console_sessions WHERE last_seen < ?1 OR created < ?2",
                params![idle_before.0, created_before.0],
            )?)
        })
    }

    fn mail_flow_counts(
        &self,
        tenant: Option<TenantId>,
        since: Timestamp,
    ) -> Result<MailFlowCounts> {
        self.read(|conn| {
            // Per recipient of the messages received since `since` (messages_received), in one
            // pass; the content stages' actions are their trace events.
            let (received, delivered, failed, spam, quarantined) = conn
                .prepare_cached(
                    "SELECT COUNT(DISTINCT m.id), \
                       COALESCE(SUM(r.status = 'Delivered'), 0), COALESCE(SUM(r.status = 'Failed'), 0), \
                       COALESCE(SUM(r.status = 'FilteredAsSpam'), 0), COALESCE(SUM(r.status = 'Quarantined'), 0) \
                     FROM messages m JOIN recipients r ON r.message_id = m.id \
                     WHERE m.received >= ?1 AND (?2 IS NULL OR r.tenant_id = ?2)",
                )?
                .query_row(params![since.0, tenant], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?;
            let (malware, rules) = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(e.event = 'Malware'), 0), COALESCE(SUM(e.event = 'TransportRule'), 0) \
                     FROM trace_events e JOIN recipients r ON r.id = e.recipient_id \
                     WHERE e.event IN ('Malware', 'TransportRule') AND e.time >= ?1 \
                       AND (?2 IS NULL OR r.tenant_id = ?2)",
                )?
                .query_row(params![since.0, tenant], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })?;
            let refused: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM connection_log WHERE time >= ?1 AND status >= 400 \
                       AND (?2 IS NULL OR tenant_id = ?2)",
                )?
                .query_row(params![since.0, tenant], |r| r.get(0))?;
            Ok(MailFlowCounts {
                received: count(received),
                delivered: count(delivered),
                failed: count(failed),
                refused: count(refused),
                malware: count(malware),
                rule_actions: count(rules),
                spam: count(spam),
                quarantined: count(quarantined),
            })
        })
    }

    fn top_addresses(
        &self,
        tenant: Option<TenantId>,
        since: Timestamp,
        limit: usize,
    ) -> Result<(Vec<AddressCount>, Vec<AddressCount>)> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let top = |column: &str| -> Result<Vec<AddressCount>> {
                let sql = format!(
                    "SELECT {column}, COUNT(*) AS n FROM messages m JOIN recipients r ON r.message_id = m.id \
                     WHERE m.received >= ?1 AND (?2 IS NULL OR r.tenant_id = ?2) AND {column} <> '' \
                     GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?3"
                );
                let rows = conn
                    .prepare_cached(&sql)?
                    .query_map(params![since.0, tenant, limit], |r| {
                        Ok(AddressCount {
                            address: r.get(0)?,
                            count: count(r.get(1)?),
                        })
                    })?
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(rows)
            };
            Ok((top("m.sender")?, top("r.address")?))
        })
    }

    fn queued_recipients(&self, tenant: Option<TenantId>) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM recipients WHERE status = 'Pending' AND (?1 IS NULL OR tenant_id = ?1)",
                )?
                .query_row(params![tenant], |r| r.get(0))?;
            Ok(count(n))
        })
    }
}

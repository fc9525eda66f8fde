//! Outbound spam (migration 32): tenants' outbound spam filter policies, each sender's
//! recipient counts in the current UTC hour and day, and the restricted senders.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::OutboundSpamStore;
use crate::types::{OutboundRecipients, RestrictedSender};
use hato_core::Timestamp;
use hato_core::directory::TenantId;
use hato_protection::spam::outbound::{OutboundSpamPolicy, Tally, WindowedTally};
use rusqlite::{Connection, OptionalExtension, params};

const DAY_MICROS: i64 = 24 * 3_600 * 1_000_000;

fn tenant_exists(conn: &Connection, tenant: TenantId) -> Result<()> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM tenants WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("tenant {tenant}"))),
    }
}

fn policy(conn: &Connection, tenant: TenantId) -> Result<OutboundSpamPolicy> {
    tenant_exists(conn, tenant)?;
    let definition: Option<String> = conn
        .prepare_cached("SELECT definition FROM outbound_spam_policies WHERE tenant_id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    match definition {
        None => Ok(OutboundSpamPolicy::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            StoreError::Invalid(format!(
                "the outbound spam policy of tenant {tenant} cannot be read: {e}"
            ))
        }),
    }
}

const RESTRICTED_COLUMNS: &str = "tenant_id, sender, action, reason, blocked_at, until";

fn restricted_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<RestrictedSender> {
    Ok(RestrictedSender {
        tenant_id: r.get(0)?,
        sender: r.get(1)?,
        action: r.get(2)?,
        reason: r.get(3)?,
        blocked_at: Timestamp(r.get(4)?),
        until: r.get::<_, Option<i64>>(5)?.map(Timestamp),
    })
}

fn restricted(
    conn: &Connection,
    tenant: TenantId,
    sender: &str,
    now: Timestamp,
) -> Result<Option<RestrictedSender>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {RESTRICTED_COLUMNS} FROM restricted_senders \
             WHERE tenant_id = ?1 AND sender = ?2 AND (until IS NULL OR until > ?3)"
        ))?
        .query_row(params![tenant, sender, now.0], restricted_from)
        .optional()?)
}

impl OutboundSpamStore for SqliteStore {
    fn outbound_spam_filter(&self, tenant: TenantId) -> Result<OutboundSpamPolicy> {
        self.read(|conn| policy(conn, tenant))
    }

    fn set_outbound_spam_filter(
        &self,
        tenant: TenantId,
        new: OutboundSpamPolicy,
    ) -> Pending<OutboundSpamPolicy> {
        if let Err(e) = new.validate() {
            return Pending::failed(StoreError::Invalid(e));
        }
        let now = self.now_micros();
        let definition = match serde_json::to_string(&new) {
            Ok(d) => d,
            Err(e) => return Pending::failed(StoreError::Invalid(e.to_string())),
        };
        self.write(move |conn| {
            tenant_exists(conn, tenant)?;
            conn.execute(
                "INSERT INTO outbound_spam_policies(tenant_id, definition, updated) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(tenant_id) DO UPDATE SET definition = excluded.definition, updated = excluded.updated",
                params![tenant, definition, now],
            )?;
            // Senders keep the policy in memory while the policy generation stays.
            super::policy_changed();
            policy(conn, tenant)
        })
    }

    fn count_outbound_recipients(
        &self,
        tenant: TenantId,
        sender: &str,
        recipients: OutboundRecipients,
        now: Timestamp,
    ) -> Pending<(Tally, Tally)> {
        let sender = sender.to_string();
        self.write(move |conn| {
            let count = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
            let known: Option<WindowedTally> = conn
                .prepare_cached(
                    "SELECT hour_start, external_hour, internal_hour, day_start, day \
                     FROM outbound_sender_counts WHERE tenant_id = ?1 AND sender = ?2",
                )?
                .query_row(params![tenant, sender], |r| {
                    Ok(WindowedTally {
                        hour_start: r.get(0)?,
                        tally: Tally {
                            external_hour: count(r.get(1)?),
                            internal_hour: count(r.get(2)?),
                            day: count(r.get(4)?),
                        },
                        day_start: r.get(3)?,
                    })
                })
                .optional()?;
            let (before, after) =
                WindowedTally::count(known, now, recipients.external, recipients.internal);
            let day = after.day_start;
            conn.prepare_cached(
                "INSERT INTO outbound_sender_counts(tenant_id, sender, hour_start, external_hour, internal_hour, day_start, day) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT(tenant_id, sender) DO UPDATE SET hour_start = excluded.hour_start, \
                   external_hour = excluded.external_hour, internal_hour = excluded.internal_hour, \
                   day_start = excluded.day_start, day = excluded.day",
            )?
            .execute(params![
                tenant,
                sender,
                after.hour_start,
                after.tally.external_hour,
                after.tally.internal_hour,
                day,
                after.tally.day
            ])?;
            // Rows of earlier days count nothing any more: at most one sender's worth of rows
            // per day stays (bounded by the senders that sent today and yesterday).
            conn.prepare_cached(
                "DELETE FROM outbound_sender_counts WHERE rowid IN \
                 (SELECT rowid FROM outbound_sender_counts WHERE day_start < ?1 LIMIT 16)",
            )?
            .execute([day - DAY_MICROS])?;
            Ok((before, after.tally))
        })
    }

    fn restrict_sender(&self, r: RestrictedSender) -> Pending<()> {
        self.write(move |conn| {
            tenant_exists(conn, r.tenant_id)?;
            conn.execute(
                "INSERT INTO restricted_senders(tenant_id, sender, action, reason, blocked_at, until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(tenant_id, sender) DO UPDATE SET action = excluded.action, reason = excluded.reason, \
                   blocked_at = excluded.blocked_at, until = excluded.until",
                params![
                    r.tenant_id,
                    r.sender,
                    r.action,
                    r.reason,
                    r.blocked_at.0,
                    r.until.map(|t| t.0)
                ],
            )?;
            // MAIL FROM keeps restrictions in memory while the policy generation stays.
            super::policy_changed();
            Ok(())
        })
    }

    fn restricted_sender(
        &self,
        tenant: TenantId,
        sender: &str,
        now: Timestamp,
    ) -> Result<Option<RestrictedSender>> {
        self.read(|conn| restricted(conn, tenant, sender, now))
    }

    fn restricted_senders(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<Vec<RestrictedSender>> {
        self.read(|conn| {
            tenant_exists(conn, tenant)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RESTRICTED_COLUMNS} FROM restricted_senders \
                 WHERE tenant_id = ?1 AND (until IS NULL OR until > ?2) ORDER BY blocked_at, sender"
            ))?;
            let rows = stmt.query_map(params![tenant, now.0], restricted_from)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn remove_restricted_sender(
        &self,
        tenant: TenantId,
        sender: &str,
        now: Timestamp,
    ) -> Pending<RestrictedSender> {
        let sender = sender.to_string();
        self.write(move |conn| {
            tenant_exists(conn, tenant)?;
            let Some(found) = restricted(conn, tenant, &sender, now)? else {
                return Err(StoreError::NotFound(format!(
                    "{sender} is not a restricted sender"
                )));
            };
            conn.execute(
                "DELETE FROM restricted_senders WHERE tenant_id = ?1 AND sender = ?2",
                params![tenant, sender],
            )?;
            super::policy_changed();
            conn.execute(
                "DELETE FROM outbound_sender_counts WHERE tenant_id = ?1 AND sender = ?2",
                params![tenant, sender],
            )?;
            Ok(found)
        })
    }
}

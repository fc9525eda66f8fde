//! Outbound pools' warm-up (migration 33): plans, per-day counts, throttling back-offs.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::WarmupStore;
use crate::types::{OutboundBackoff, ThrottleReply, WarmupDay, WarmupPlan};
use hato_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// Day rows kept per pool: two plans' length, so the status of a finished plan still reads.
const DAYS_KEPT: i64 = 60;
/// Back-offs not renewed for this long (and not in force) go: a domain that throttled once a
/// week ago starts from the first step again.
const BACKOFF_KEPT_MICROS: i64 = 7 * 86_400_000_000;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn plan_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WarmupPlan, String)> {
    let limits: String = r.get(3)?;
    let monthly: Option<i64> = r.get(2)?;
    Ok((
        WarmupPlan {
            pool: r.get(0)?,
            kind: r.get(1)?,
            monthly_volume: monthly.map(to_u64),
            daily_limits: Vec::new(),
            start: Timestamp(r.get(4)?),
            created: Timestamp(r.get(5)?),
        },
        limits,
    ))
}

fn backoff_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboundBackoff> {
    let count: i64 = r.get(2)?;
    Ok(OutboundBackoff {
        pool: r.get(0)?,
        domain: r.get(1)?,
        count: u32::try_from(count).unwrap_or(u32::MAX),
        until: Timestamp(r.get(3)?),
        last_reply: r.get(4)?,
        last_host: r.get(5)?,
        updated: Timestamp(r.get(6)?),
    })
}

const BACKOFF_COLUMNS: &str = "pool, domain, count, until, last_reply, last_host, updated";

fn backoff(conn: &Connection, pool: &str, domain: &str) -> Result<Option<OutboundBackoff>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {BACKOFF_COLUMNS} FROM outbound_backoffs WHERE pool = ?1 AND domain = ?2"
        ))?
        .query_row(params![pool, domain], backoff_from)
        .optional()?)
}

fn add_counts(conn: &Connection, pool: &str, day: i64, counts: [u64; 4]) -> Result<()> {
    let [sent, deferred, reduced, throttled] = counts.map(to_i64);
    conn.prepare_cached(
        "INSERT INTO warmup_days(pool, day, sent, deferred, reduced, throttled) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(pool, day) DO UPDATE SET sent = sent + excluded.sent, \
           deferred = deferred + excluded.deferred, reduced = reduced + excluded.reduced, \
           throttled = throttled + excluded.throttled",
    )?
    .execute(params![pool, day, sent, deferred, reduced, throttled])?;
    conn.prepare_cached("DELETE FROM warmup_days WHERE pool = ?1 AND day < ?2")?
        .execute(params![pool, day - DAYS_KEPT])?;
    Ok(())
}

impl WarmupStore for SqliteStore {
    fn warmup_plans(&self) -> Result<Vec<WarmupPlan>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT pool, kind, monthly_volume, daily_limits, start, created \
                 FROM warmup_plans ORDER BY pool",
            )?;
            let rows = stmt.query_map([], plan_from)?;
            let mut plans = Vec::new();
            for row in rows {
                let (mut plan, limits) = row?;
                plan.daily_limits = serde_json::from_str(&limits).map_err(|e| {
                    StoreError::Database(format!("warm-up plan of pool {}: {e}", plan.pool))
                })?;
                plans.push(plan);
            }
            Ok(plans)
        })
    }

    fn set_warmup_plan(&self, mut plan: WarmupPlan) -> Pending<WarmupPlan> {
        plan.created = Timestamp(self.now_micros());
        self.write(move |conn| {
            let limits = serde_json::to_string(&plan.daily_limits)
                .map_err(|e| StoreError::Database(e.to_string()))?;
            conn.execute(
                "INSERT INTO warmup_plans(pool, kind, monthly_volume, daily_limits, start, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT(pool) DO UPDATE SET kind = excluded.kind, \
                   monthly_volume = excluded.monthly_volume, daily_limits = excluded.daily_limits, \
                   start = excluded.start, created = excluded.created",
                params![
                    plan.pool,
                    plan.kind,
                    plan.monthly_volume.map(to_i64),
                    limits,
                    plan.start.0,
                    plan.created.0
                ],
            )?;
            Ok(plan)
        })
    }

    fn clear_warmup_plan(&self, pool: &str) -> Pending<bool> {
        let pool = pool.to_string();
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM warmup_plans WHERE pool = ?1", [pool])? > 0)
        })
    }

    fn warmup_days(&self, day: i64) -> Result<Vec<WarmupDay>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT pool, day, sent, deferred, reduced, throttled FROM warmup_days \
                 WHERE day = ?1 ORDER BY pool",
            )?;
            let rows = stmt.query_map([day], |r| {
                Ok(WarmupDay {
                    pool: r.get(0)?,
                    day: r.get(1)?,
                    sent: to_u64(r.get(2)?),
                    deferred: to_u64(r.get(3)?),
                    reduced: to_u64(r.get(4)?),
                    throttled: to_u64(r.get(5)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn count_warmup(&self, pool: &str, day: i64, sent: u64, deferred: u64) -> Pending<()> {
        let pool = pool.to_string();
        self.write(move |conn| add_counts(conn, &pool, day, [sent, deferred, 0, 0]))
    }

    fn outbound_backoffs(&self) -> Result<Vec<OutboundBackoff>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {BACKOFF_COLUMNS} FROM outbound_backoffs ORDER BY pool, domain"
            ))?;
            let rows = stmt.query_map([], backoff_from)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn record_throttle(&self, t: ThrottleReply) -> Pending<(OutboundBackoff, bool)> {
        let now = self.now_micros();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM outbound_backoffs WHERE updated < ?1 AND until < ?2",
            )?
            .execute(params![now - BACKOFF_KEPT_MICROS, now])?;
            let previous = backoff(conn, &t.pool, &t.domain)?;
            if let Some(b) = previous.as_ref().filter(|b| b.until.0 > now) {
                // In force already: replies from sessions that began before it are the same
                // throttling, not a repeat.
                return Ok((b.clone(), false));
            }
            let count = previous.map_or(1, |b| b.count.saturating_add(1));
            let wait = t
                .first_secs
                .saturating_mul(1u64 << (count - 1).min(20))
                .min(t.max_secs.max(t.first_secs));
            let until = now.saturating_add(to_i64(wait).saturating_mul(1_000_000));
            conn.prepare_cached(
                "INSERT INTO outbound_backoffs(pool, domain, count, until, last_reply, last_host, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT(pool, domain) DO UPDATE SET count = excluded.count, \
                   until = excluded.until, last_reply = excluded.last_reply, \
                   last_host = excluded.last_host, updated = excluded.updated",
            )?
            .execute(params![t.pool, t.domain, count, until, t.reply, t.host, now])?;
            add_counts(conn, &t.pool, t.day, [0, 0, t.reduce_by, 1])?;
            let b = backoff(conn, &t.pool, &t.domain)?
                .ok_or_else(|| StoreError::Database("back-off not written".into()))?;
            Ok((b, true))
        })
    }

    fn clear_backoff(&self, pool: &str, domain: &str) -> Pending<()> {
        let (pool, domain) = (pool.to_string(), domain.to_string());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM outbound_backoffs WHERE pool = ?1 AND domain = ?2")?
                .execute(params![pool, domain])?;
            Ok(())
        })
    }
}

//! The web console's sessions (hashes of their ids) and its home page's figures.

use super::SqliteStore;
use crate::error::Result;
use crate::error::StoreError;
use crate::heavy_hitters::{Counter, SpaceSaving, merge_top};
use crate::pending::Pending;
use crate::traits::ConsoleStore;
use crate::types::TOP_CAPACITY;
use crate::types::{
    AddressCount, ConsoleSession, MailFlowCounts, SAVED_QUERIES_MAX, SavedQueryOwner,
    SavedTraceQuery,
};
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::TenantId;
use rusqlite::{OptionalExtension, params};
use std::collections::{HashMap, HashSet};

/// The first recipient row of the first message received at or after `since`
/// (messages_received, then one seek in an index on recipients' message_id); `i64::MAX` when
/// none is. Not `MIN(r.id) … WHERE r.message_id >= ?`: SQLite answers that by walking the
/// recipients from the lowest id until one matches, the whole month before the window
/// (0.9 s at a million rows).
fn first_recipient_since(conn: &rusqlite::Connection, since: Timestamp) -> Result<i64> {
    let id: Option<i64> = conn
        .prepare_cached(
            "SELECT r.id FROM recipients r WHERE r.message_id >= \
               (SELECT id FROM messages WHERE received >= ?1 ORDER BY received LIMIT 1) \
             ORDER BY r.message_id, r.id LIMIT 1",
        )?
        .query_row([since.0], |r| r.get(0))
        .optional()?;
    Ok(id.unwrap_or(i64::MAX))
}

/// `top_address_hours`' kinds, and its tenant of every tenant's summaries.
const SENDERS: i64 = 0;
const RECIPIENTS: i64 = 1;
const ALL_TENANTS: i64 = -1;

/// One hour's summary of one kind for one tenant, as a catch-up changes it.
struct Summary {
    ss: SpaceSaving,
    /// Addresses whose counter changed (to write) and whose counter was taken (to delete).
    changed: HashSet<String>,
    evicted: HashSet<String>,
}

/// `top_address_catch_up`: up to `max_rows` recipients after the last one read, fed into their
/// hours' summaries, in the writer's transaction (so no recipient is read twice or skipped by
/// two catch-ups at once). Rows of messages received before `from_hour` are skipped: no Home
/// window reaches them. Recipients are read by row id, in order, so the cost is the rows read
/// plus, per summary touched, its `TOP_CAPACITY` counters.
fn catch_up(conn: &rusqlite::Connection, from_hour: Timestamp, max_rows: usize) -> Result<usize> {
    let last: i64 = conn
        .prepare_cached("SELECT recipient_id FROM top_address_progress WHERE id = 0")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let newest: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM recipients")?
        .query_row([], |r| r.get(0))?;
    // Row ids without AUTOINCREMENT may be handed out again after the newest rows went (a
    // tenant's removal): follow them back rather than skip the new rows.
    let last = last.min(newest);
    let first = first_recipient_since(conn, from_hour)?;
    let start = last.saturating_add(1).max(first);
    let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
    let rows: Vec<(i64, i64, String, String, i64)> = conn
        .prepare_cached(
            "SELECT r.id, r.tenant_id, r.address, m.sender, m.received \
             FROM recipients r CROSS JOIN messages m ON m.id = r.message_id \
             WHERE r.id >= ?1 ORDER BY r.id LIMIT ?2",
        )?
        .query_map(params![start, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    let read = rows.len();
    let progress = match rows.last() {
        Some(r) => r.0,
        // Nothing after `start`: everything up to the newest row is done.
        None => newest.max(last),
    };
    let mut summaries: HashMap<(i64, i64, i64), Summary> = HashMap::new();
    let load =
        |summaries: &mut HashMap<(i64, i64, i64), Summary>, key: (i64, i64, i64)| -> Result<()> {
            if summaries.contains_key(&key) {
                return Ok(());
            }
            let counters = conn
                .prepare_cached(
                    "SELECT address, count, error FROM top_address_hours \
                 WHERE tenant_id = ?1 AND kind = ?2 AND hour = ?3",
                )?
                .query_map(params![key.0, key.1, key.2], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Counter {
                            count: count(r.get(1)?),
                            error: count(r.get(2)?),
                        },
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            summaries.insert(
                key,
                Summary {
                    ss: SpaceSaving::from_counters(TOP_CAPACITY, counters),
                    changed: HashSet::new(),
                    evicted: HashSet::new(),
                },
            );
            Ok(())
        };
    let mut feeds = Vec::new();
    for (_, tenant, recipient, sender, received) in &rows {
        if *received < from_hour.0 {
            continue;
        }
        let hour = hour_start(Timestamp(*received)).0;
        for t in [*tenant, ALL_TENANTS] {
            // The null sender (a bounce) is no sender to rank.
            if !sender.is_empty() {
                feeds.push(((t, SENDERS, hour), sender.as_str()));
            }
            if !recipient.is_empty() {
                feeds.push(((t, RECIPIENTS, hour), recipient.as_str()));
            }
        }
    }
    for (key, address) in feeds {
        load(&mut summaries, key)?;
        if let Some(s) = summaries.get_mut(&key) {
            if let Some(victim) = s.ss.offer(address) {
                s.changed.remove(&victim);
                s.evicted.insert(victim);
            }
            s.evicted.remove(address);
            s.changed.insert(address.to_string());
        }
    }
    for ((tenant, kind, hour), s) in &summaries {
        let mut delete = conn.prepare_cached(
            "DELETE FROM top_address_hours WHERE tenant_id = ?1 AND kind = ?2 AND hour = ?3 AND address = ?4",
        )?;
        for a in &s.evicted {
            delete.execute(params![tenant, kind, hour, a])?;
        }
        let mut upsert = conn.prepare_cached(
            "INSERT INTO top_address_hours(tenant_id, kind, hour, address, count, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tenant_id, kind, hour, address) \
             DO UPDATE SET count = excluded.count, error = excluded.error",
        )?;
        for a in &s.changed {
            if let Some(c) = s.ss.get(a) {
                let n = i64::try_from(c.count).unwrap_or(i64::MAX);
                let e = i64::try_from(c.error).unwrap_or(i64::MAX);
                upsert.execute(params![tenant, kind, hour, a, n, e])?;
            }
        }
    }
    conn.prepare_cached("UPDATE top_address_progress SET recipient_id = ?1 WHERE id = 0")?
        .execute([progress])?;
    conn.prepare_cached("DELETE FROM top_address_hours WHERE hour < ?1")?
        .execute([from_hour.0])?;
    Ok(read)
}

/// One hour in microseconds: the counters' unit (`mail_flow_hours`).
const HOUR: i64 = 3_600_000_000;

/// The start of the UTC hour `t` falls in.
fn hour_start(t: Timestamp) -> Timestamp {
    Timestamp(t.0 - t.0.rem_euclid(HOUR))
}

/// The key of an owner's saved queries: `tenant/mailbox`, `-` for what is not there.
fn owner_key(o: SavedQueryOwner) -> String {
    let part = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!("{}/{}", part(o.tenant_id), part(o.mailbox_id))
}

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
        since: &[Timestamp],
    ) -> Result<Vec<MailFlowCounts>> {
        self.read(|conn| {
            // One tenant: its own rows. Every tenant: each message once (the row of tenant
            // -1) for `received`, the sum of the tenants' rows (and of refusals without a
            // tenant, row 0) for the rest. 24 rows a day per tenant, found by index: no scan.
            const FIGURES: &str = "COALESCE(SUM(delivered), 0), COALESCE(SUM(failed), 0), \
                 COALESCE(SUM(refused), 0), COALESCE(SUM(malware), 0), \
                 COALESCE(SUM(rule_actions), 0), COALESCE(SUM(spam), 0), \
                 COALESCE(SUM(quarantined), 0)";
            let sql = if tenant.is_some() {
                format!(
                    "SELECT COALESCE(SUM(received), 0), {FIGURES} FROM mail_flow_hours \
                     WHERE tenant_id = ?1 AND hour >= ?2"
                )
            } else {
                format!(
                    "SELECT COALESCE(SUM((tenant_id = -1) * received), 0), {FIGURES} \
                     FROM mail_flow_hours WHERE ?1 IS NULL AND hour >= ?2"
                )
            };
            let mut stmt = conn.prepare_cached(&sql)?;
            since
                .iter()
                .map(|t| {
                    Ok(stmt.query_row(params![tenant, hour_start(*t).0], |r| {
                        let at = |k: usize| -> rusqlite::Result<u64> { Ok(count(r.get(k)?)) };
                        Ok(MailFlowCounts {
                            received: at(0)?,
                            delivered: at(1)?,
                            failed: at(2)?,
                            refused: at(3)?,
                            malware: at(4)?,
                            rule_actions: at(5)?,
                            spam: at(6)?,
                            quarantined: at(7)?,
                        })
                    })?)
                })
                .collect()
        })
    }

    fn mail_flow_recount(
        &self,
        tenant: Option<TenantId>,
        since: &[Timestamp],
    ) -> Result<Vec<MailFlowCounts>> {
        let since: Vec<Timestamp> = since.iter().map(|t| hour_start(*t)).collect();
        let since = since.as_slice();
        if since.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            // Messages are numbered as they arrive, so "received since T" is a range of row
            // ids: from the first recipient of the first message at or after T, one pass over
            // the recipients' rows in order counts every window at once, instead of a join over
            // a month of mail per window.
            let first = since
                .iter()
                .map(|t| first_recipient_since(conn, *t))
                .collect::<Result<Vec<i64>>>()?;
            let lowest = first.iter().copied().min().unwrap_or(i64::MAX);
            // ?1: the tenant; ?2: the lowest first id; ?3..: each window's first id.
            let mut cols = Vec::new();
            for w in 0..since.len() {
                let from = format!("id >= ?{}", w + 3);
                cols.push(format!(
                    "COUNT(DISTINCT CASE WHEN {from} THEN message_id END)"
                ));
                for status in ["Delivered", "Failed", "FilteredAsSpam", "Quarantined"] {
                    cols.push(format!(
                        "COALESCE(SUM(status = '{status}' AND {from}), 0)"
                    ));
                }
            }
            let sql = format!(
                "SELECT {} FROM recipients WHERE id >= ?2 AND (?1 IS NULL OR tenant_id = ?1)",
                cols.join(", ")
            );
            let mut args: Vec<Box<dyn rusqlite::ToSql>> =
                vec![Box::new(tenant), Box::new(lowest)];
            args.extend(
                first
                    .iter()
                    .map(|f| Box::new(*f) as Box<dyn rusqlite::ToSql>),
            );
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            let mut out: Vec<MailFlowCounts> =
                conn.prepare(&sql)?.query_row(refs.as_slice(), |r| {
                    (0..since.len())
                        .map(|w| {
                            let at = |k: usize| -> rusqlite::Result<u64> {
                                Ok(count(r.get::<_, i64>(w * 5 + k)?))
                            };
                            Ok(MailFlowCounts {
                                received: at(0)?,
                                delivered: at(1)?,
                                failed: at(2)?,
                                spam: at(3)?,
                                quarantined: at(4)?,
                                ..Default::default()
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })?;
            // The content stages' actions are their trace events (trace_events_event_time); the
            // edge's refusals, the connection log's rows with a 4xx/5xx reply.
            for (c, t) in out.iter_mut().zip(since) {
                let (malware, rules) = conn
                    .prepare_cached(
                        "SELECT COALESCE(SUM(e.event = 'Malware'), 0), COALESCE(SUM(e.event = 'TransportRule'), 0) \
                         FROM trace_events e JOIN recipients r ON r.id = e.recipient_id \
                         WHERE e.event IN ('Malware', 'TransportRule') AND e.time >= ?1 \
                           AND (?2 IS NULL OR r.tenant_id = ?2)",
                    )?
                    .query_row(params![t.0, tenant], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })?;
                let refused: i64 = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM connection_log WHERE time >= ?1 AND status >= 400 \
                           AND (?2 IS NULL OR tenant_id = ?2)",
                    )?
                    .query_row(params![t.0, tenant], |r| r.get(0))?;
                c.malware = count(malware);
                c.rule_actions = count(rules);
                c.refused = count(refused);
            }
            Ok(out)
        })
    }

    fn top_addresses(
        &self,
        tenant: Option<TenantId>,
        since: Timestamp,
        limit: usize,
    ) -> Result<(Vec<AddressCount>, Vec<AddressCount>)> {
        // Every tenant's summaries are kept under -1, so the operator's Home reads as few rows
        // as a tenant's.
        let key = tenant.unwrap_or(ALL_TENANTS);
        self.read(|conn| {
            let top = |kind: i64| -> Result<Vec<AddressCount>> {
                let mut hours: Vec<Vec<(String, Counter)>> = Vec::new();
                let mut last_hour = None;
                let mut stmt = conn.prepare_cached(
                    "SELECT hour, address, count, error FROM top_address_hours \
                     WHERE tenant_id = ?1 AND kind = ?2 AND hour >= ?3 ORDER BY hour",
                )?;
                let rows = stmt.query_map(params![key, kind, hour_start(since).0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        Counter {
                            count: count(r.get(2)?),
                            error: count(r.get(3)?),
                        },
                    ))
                })?;
                for row in rows {
                    let (hour, address, c) = row?;
                    if last_hour != Some(hour) {
                        hours.push(Vec::new());
                        last_hour = Some(hour);
                    }
                    if let Some(h) = hours.last_mut() {
                        h.push((address, c));
                    }
                }
                Ok(merge_top(&hours, TOP_CAPACITY, limit)
                    .into_iter()
                    .map(|m| AddressCount {
                        address: m.address,
                        count: m.lower,
                        error: m.upper - m.lower,
                    })
                    .collect())
            };
            Ok((top(SENDERS)?, top(RECIPIENTS)?))
        })
    }

    fn top_address_catch_up(&self, from: Timestamp, max_rows: usize) -> Pending<usize> {
        let max_rows = max_rows.max(1);
        self.write(move |conn| catch_up(conn, hour_start(from), max_rows))
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

    fn saved_trace_queries(&self, owner: SavedQueryOwner) -> Result<Vec<SavedTraceQuery>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT name, query, created FROM trace_saved_queries WHERE owner = ?1 \
                     ORDER BY name COLLATE NOCASE, id",
                )?
                .query_map([owner_key(owner)], |r| {
                    Ok(SavedTraceQuery {
                        name: r.get(0)?,
                        query: r.get(1)?,
                        created: Timestamp(r.get(2)?),
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn save_trace_query(
        &self,
        owner: SavedQueryOwner,
        name: &str,
        query: &str,
    ) -> Pending<SavedTraceQuery> {
        let (name, query) = (name.to_string(), query.to_string());
        let created = self.now_micros();
        self.write(move |conn| {
            let key = owner_key(owner);
            let replaced = conn.execute(
                "UPDATE trace_saved_queries SET name = ?3, query = ?4, created = ?5 \
                 WHERE owner = ?1 AND name = ?2",
                params![key, name, name, query, created],
            )?;
            if replaced == 0 {
                let n: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM trace_saved_queries WHERE owner = ?1",
                    [&key],
                    |r| r.get(0),
                )?;
                if count(n) >= SAVED_QUERIES_MAX as u64 {
                    return Err(StoreError::Invalid(format!(
                        "at most {SAVED_QUERIES_MAX} saved queries: delete one first"
                    )));
                }
                conn.execute(
                    "INSERT INTO trace_saved_queries(owner, tenant_id, mailbox_id, name, query, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![key, owner.tenant_id, owner.mailbox_id, name, query, created],
                )?;
            }
            Ok(SavedTraceQuery {
                name,
                query,
                created: Timestamp(created),
            })
        })
    }

    fn delete_trace_query(&self, owner: SavedQueryOwner, name: &str) -> Pending<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM trace_saved_queries WHERE owner = ?1 AND name = ?2",
                params![owner_key(owner), name],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("saved query {name}")));
            }
            Ok(())
        })
    }
}

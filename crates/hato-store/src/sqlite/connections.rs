//! The connection log: every connection the edge refused, deferred or cut, and its retention.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::ConnectionLogStore;
use crate::types::{
    ConnectionPage, ConnectionQuery, ConnectionRow, NewConnectionRecord, TRACE_PAGE_SIZE_DEFAULT,
};
use hato_core::reply::Reply;
use hato_core::{Reason, Timestamp};
use rusqlite::params;

impl ConnectionLogStore for SqliteStore {
    fn log_connection(&self, r: NewConnectionRecord) -> Pending<()> {
        let notes = serde_json::to_string(&r.notes).unwrap_or_else(|_| "[]".into());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO connection_log(time, ip, ptr, helo, tenant_id, stage, rule, status, \
                   enhanced_status, text, reason, notes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                r.time.0,
                r.ip,
                r.ptr,
                r.helo,
                r.tenant,
                r.reason.stage.as_str(),
                r.reason.rule,
                r.reply.code,
                r.reply.status.as_ref(),
                r.reply.text.as_ref(),
                r.reason.to_json(),
                notes
            ])?;
            Ok(())
        })
    }

    fn connections(&self, q: &ConnectionQuery) -> Result<ConnectionPage> {
        let page_size = if q.page_size == 0 {
            TRACE_PAGE_SIZE_DEFAULT
        } else {
            q.page_size
        };
        let offset = q.page.max(1).saturating_sub(1).saturating_mul(page_size);
        let as_sql = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.read(|conn| {
            // One row more than the page holds tells whether another page follows; `c.id` makes
            // the order total, so consecutive pages neither overlap nor skip a row.
            let mut stmt = conn.prepare_cached(
                "SELECT c.time, c.ip, c.ptr, c.helo, c.stage, c.rule, c.status, c.enhanced_status, \
                   c.text, t.name, c.reason, c.notes \
                 FROM connection_log c LEFT JOIN tenants t ON t.id = c.tenant_id \
                 WHERE (?1 IS NULL OR c.tenant_id = ?1) AND (?2 IS NULL OR c.ip = ?2) \
                   AND (?3 IS NULL OR c.time >= ?3) AND (?4 IS NULL OR c.time <= ?4) \
                 ORDER BY c.time DESC, c.id DESC LIMIT ?5 OFFSET ?6",
            )?;
            let mut rows = stmt
                .query_map(
                    params![
                        q.tenant,
                        q.ip,
                        q.start.map(|t| t.0),
                        q.end.map(|t| t.0),
                        as_sql(page_size.saturating_add(1)),
                        as_sql(offset)
                    ],
                    |r| {
                        let status = u16::try_from(r.get::<_, i64>(6)?).unwrap_or(0);
                        let enhanced: String = r.get(7)?;
                        let text: String = r.get(8)?;
                        let reply = Reply::stored(status, enhanced.clone(), text).to_string();
                        let notes: String = r.get(11)?;
                        Ok(ConnectionRow {
                            time: Timestamp(r.get(0)?).to_rfc3339(),
                            ip: r.get(1)?,
                            ptr: r.get(2)?,
                            helo: r.get(3)?,
                            stage: r.get(4)?,
                            rule: r.get(5)?,
                            status,
                            enhanced_status: enhanced,
                            reply,
                            tenant: r.get(9)?,
                            reason: Reason::from_json(&r.get::<_, String>(10)?),
                            // Notes this hato cannot read are left out, not the row.
                            notes: serde_json::from_str(&notes).unwrap_or_default(),
                        })
                    },
                )?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let more = rows.len() > page_size;
            rows.truncate(page_size);
            Ok(ConnectionPage { rows, more })
        })
    }

    fn purge_connections(&self, before: Timestamp) -> Pending<usize> {
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM connection_log WHERE time < ?1", [before.0])?)
        })
    }
}

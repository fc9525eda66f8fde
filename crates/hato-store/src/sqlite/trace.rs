//! Message trace queries and retention.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::TraceStore;
use crate::types::{
    SubjectFilter, TRACE_PAGE_SIZE_DEFAULT, TraceDetailRow, TracePage, TraceQuery, TraceRow,
};
use hato_core::directory::TenantId;
use hato_core::{Reason, Timestamp};
use rusqlite::params;

impl TraceStore for SqliteStore {
    fn trace(&self, q: &TraceQuery) -> Result<TracePage> {
        // The join's order decides the speed at a million rows, and SQLite's planner, drawn to
        // messages_received by the ORDER BY, picks the wrong one. One recipient's address is
        // selective (recipients_tenant_address): its rows first, then sorted. Otherwise the
        // messages are walked newest first (messages_received, or messages_sender_received for
        // one sender) and the walk stops once the page is full; `CROSS JOIN` keeps SQLite's
        // planner from starting at the tenant's every recipient and sorting them all.
        let one_recipient = q.recipient.as_deref().is_some_and(|r| !r.starts_with("*@"));
        let from = if one_recipient {
            "FROM recipients r CROSS JOIN messages m ON m.id = r.message_id"
        } else {
            "FROM messages m CROSS JOIN recipients r ON r.message_id = m.id"
        };
        let mut sql = format!(
            "SELECT m.received, m.sender, r.address, m.subject, r.status, m.trace_id, m.message_id, m.client_ip, m.size \
             {from} WHERE 1 = 1"
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = q.tenant {
            arg(&mut sql, " AND r.tenant_id = ?", Box::new(t));
        }
        // `*@domain` matches every address of the domain (Get-MessageTrace's wildcard
        // SenderAddress/RecipientAddress); anything else, one address.
        for (column, value) in [("m.sender", &q.sender), ("r.address", &q.recipient)] {
            let Some(v) = value else { continue };
            let v = v.to_lowercase();
            match v.strip_prefix("*@") {
                Some(domain) => arg(
                    &mut sql,
                    &format!(" AND {column} LIKE ? ESCAPE '\\'"),
                    Box::new(format!("%@{}", like_escape(domain))),
                ),
                None => arg(&mut sql, &format!(" AND {column} = ?"), Box::new(v)),
            }
        }
        if let Some(d) = q.direction {
            // The routes are hato's own words, never a caller's text.
            let list: Vec<String> = d.routes().iter().map(|r| format!("'{r}'")).collect();
            sql.push_str(&format!(" AND r.route IN ({})", list.join(", ")));
        }
        if let Some(s) = q.status {
            arg(&mut sql, " AND r.status = ?", Box::new(s.as_str()));
        }
        if let Some(s) = &q.message_id {
            // Accept the Message-ID with or without its angle brackets.
            let bare = s
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            arg(
                &mut sql,
                " AND m.message_id = ?",
                Box::new(format!("<{bare}>")),
            );
        }
        if let Some(s) = &q.trace_id {
            arg(&mut sql, " AND m.trace_id = ?", Box::new(s.to_lowercase()));
        }
        if let Some(s) = &q.from_ip {
            arg(&mut sql, " AND m.client_ip = ?", Box::new(s.clone()));
        }
        if let Some(t) = q.start {
            arg(&mut sql, " AND m.received >= ?", Box::new(t.0));
        }
        if let Some(t) = q.end {
            arg(&mut sql, " AND m.received <= ?", Box::new(t.0));
        }
        if let Some(s) = &q.subject {
            let escaped = like_escape(s);
            let pattern = match q.subject_filter {
                SubjectFilter::Contains => format!("%{escaped}%"),
                SubjectFilter::StartsWith => format!("{escaped}%"),
            };
            arg(
                &mut sql,
                " AND m.subject LIKE ? ESCAPE '\\'",
                Box::new(pattern),
            );
        }
        let page_size = if q.page_size == 0 {
            TRACE_PAGE_SIZE_DEFAULT
        } else {
            q.page_size
        };
        let offset = q.page.max(1).saturating_sub(1).saturating_mul(page_size);
        let as_sql = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        // One row more than the page holds tells whether another page follows. `r.id` is unique,
        // so the order is total and consecutive pages neither overlap nor skip a row.
        sql.push_str(&format!(
            " ORDER BY m.received DESC, r.id LIMIT {} OFFSET {}",
            as_sql(page_size.saturating_add(1)),
            as_sql(offset)
        ));
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            let mut rows = stmt
                .query_map(refs.as_slice(), |r| {
                    Ok(TraceRow {
                        received: Timestamp(r.get(0)?).to_rfc3339(),
                        sender: r.get(1)?,
                        recipient: r.get(2)?,
                        subject: r.get(3)?,
                        status: r.get(4)?,
                        trace_id: r.get(5)?,
                        message_id: r.get(6)?,
                        from_ip: r.get(7)?,
                        size: r.get::<_, i64>(8)?.max(0) as u64,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let more = rows.len() > page_size;
            rows.truncate(page_size);
            Ok(TracePage { rows, more })
        })
    }

    fn trace_detail(
        &self,
        tenant: Option<TenantId>,
        trace_id: &str,
        recipient: Option<&str>,
    ) -> Result<Vec<TraceDetailRow>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.address, e.time, e.event, e.detail, e.status, e.enhanced_status, e.remote_host, e.reason FROM trace_events e \
                 JOIN recipients r ON r.id = e.recipient_id JOIN messages m ON m.id = r.message_id \
                 WHERE m.trace_id = ?1 AND (?2 IS NULL OR r.tenant_id = ?2) AND (?3 IS NULL OR r.address = ?3) \
                 ORDER BY r.address, e.time, e.id",
            )?;
            let rows = stmt
                .query_map(params![trace_id.to_lowercase(), tenant, recipient.map(str::to_lowercase)], |r| {
                    Ok(TraceDetailRow {
                        recipient: r.get(0)?,
                        time: Timestamp(r.get(1)?).to_rfc3339(),
                        event: r.get(2)?,
                        detail: r.get(3)?,
                        status: r.get::<_, Option<i64>>(4)?.and_then(|c| u16::try_from(c).ok()),
                        enhanced_status: r.get(5)?,
                        remote_host: r.get(6)?,
                        // A reason this hato cannot read (a newer writer's) leaves the event
                        // without one rather than hiding it.
                        reason: r.get::<_, Option<String>>(7)?.as_deref().and_then(Reason::from_json),
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn purge_trace(&self, before: Timestamp) -> Pending<usize> {
        self.write(move |conn| {
            // A message still being worked on keeps its trace whatever its age. A queue file
            // left with a finished message goes with it.
            conn.execute(
                "INSERT INTO temp.spool_trash(name) SELECT spool FROM messages \
                 WHERE received < ?1 AND content IS NULL AND spool IS NOT NULL",
                [before.0],
            )?;
            let n = conn.execute(
                "DELETE FROM messages WHERE received < ?1 AND content IS NULL",
                [before.0],
            )?;
            // The home page's counters outlive the trace by its widest window (30 days), so
            // a short retention still shows a month of mail flow, and then go too.
            conn.execute(
                "DELETE FROM mail_flow_hours WHERE hour < ?1",
                [before.0.saturating_sub(31 * 86_400 * 1_000_000)],
            )?;
            Ok(n)
        })
    }
}

/// `text` as a literal inside a LIKE pattern with `ESCAPE '\\'`.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

//! Microsoft 365 group mailboxes: filed items, conversations and the group calendar.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::GroupMailboxStore;
use crate::types::{Conversation, GroupItem, NewGroupItem};
use hato_core::Timestamp;
use hato_core::directory::GroupId;
use rusqlite::{OptionalExtension, params};

impl GroupMailboxStore for SqliteStore {
    fn file_group_item(&self, item: NewGroupItem) -> Pending<bool> {
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM recipients WHERE id = ?1", [item.recipient_id], |r| r.get(0))
                .optional()?;
            if status.as_deref() != Some("Pending") {
                return Ok(false);
            }
            // Filed already (a retry after a crash between filing and routing): the first
            // attempt's item stands; filing again would break the one-item-per-recipient rule.
            let filed: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM group_items WHERE recipient_id = ?1)")?
                .query_row([item.recipient_id], |r| r.get(0))?;
            if filed {
                return Ok(false);
            }
            // The conversation the transport's threading rule chose, if it is still there.
            let existing = match item.conversation {
                Some(c) => conn
                    .prepare_cached("UPDATE conversations SET last_activity = ?1 WHERE id = ?2 AND group_id = ?3")?
                    .execute(params![item.now.0, c, item.group_id])?
                    > 0,
                None => false,
            };
            let conversation = match item.conversation {
                Some(c) if existing => c,
                _ => {
                    conn.execute(
                        "INSERT INTO conversations(group_id, topic, normalized, last_activity) VALUES (?1, ?2, ?3, ?4)",
                        params![item.group_id, item.subject, item.normalized_subject, item.now.0],
                    )?;
                    conn.last_insert_rowid()
                }
            };
            if let Some(data) = &item.blob.inline {
                conn.execute("INSERT OR IGNORE INTO blobs(hash, data) VALUES (?1, ?2)", params![item.blob.hash, data])?;
            }
            conn.execute(
                "INSERT INTO group_items(group_id, conversation_id, blob, received, from_header, subject, size, message_id, recipient_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![item.group_id, conversation, item.blob.hash, item.now.0, item.from, item.subject, item.size as i64, item.message_id, item.recipient_id],
            )?;
            for (uid, json) in &item.calendar {
                match json {
                    Some(j) => conn.execute(
                        "INSERT INTO group_calendar(group_id, uid, item) VALUES (?1, ?2, ?3) ON CONFLICT(group_id, uid) DO UPDATE SET item = excluded.item",
                        params![item.group_id, uid, j],
                    )?,
                    None => conn.execute("DELETE FROM group_calendar WHERE group_id = ?1 AND uid = ?2", params![item.group_id, uid])?,
                };
            }
            Ok(true)
        })
    }

    fn conversation_of_message(&self, group: GroupId, message_id: &str) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT conversation_id FROM group_items WHERE group_id = ?1 AND message_id = ?2 LIMIT 1")?
                .query_row(params![group, message_id], |r| r.get(0))
                .optional()?)
        })
    }

    fn conversation_by_subject(&self, group: GroupId, normalized: &str) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT id FROM conversations WHERE group_id = ?1 AND normalized = ?2 ORDER BY last_activity DESC LIMIT 1")?
                .query_row(params![group, normalized], |r| r.get(0))
                .optional()?)
        })
    }

    fn group_calendar_entries(
        &self,
        group: GroupId,
        uids: &[String],
    ) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT item FROM group_calendar WHERE group_id = ?1 AND uid = ?2",
            )?;
            let mut out = Vec::new();
            for uid in uids {
                if let Some(item) = stmt
                    .query_row(params![group, uid], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    out.push((uid.clone(), item));
                }
            }
            Ok(out)
        })
    }

    fn group_calendar(&self, group: GroupId) -> Result<Vec<(String, String)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT uid, item FROM group_calendar WHERE group_id = ?1 ORDER BY uid",
            )?;
            let rows = stmt
                .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn conversations(&self, group: GroupId) -> Result<Vec<Conversation>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.topic, c.last_activity, (SELECT count(*) FROM group_items i WHERE i.conversation_id = c.id) \
                 FROM conversations c WHERE c.group_id = ?1 ORDER BY c.last_activity DESC, c.id DESC",
            )?;
            let rows = stmt
                .query_map([group], |r| {
                    Ok(Conversation {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        last_activity: Timestamp(r.get(2)?).to_rfc3339(),
                        messages: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn group_items(&self, group: GroupId, conversation: Option<i64>) -> Result<Vec<GroupItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, conversation_id, received, from_header, subject, size, message_id, blob FROM group_items \
                 WHERE group_id = ?1 AND (?2 IS NULL OR conversation_id = ?2) ORDER BY received, id",
            )?;
            let rows = stmt
                .query_map(params![group, conversation], |r| {
                    Ok(GroupItem {
                        id: r.get(0)?,
                        conversation_id: r.get(1)?,
                        received: Timestamp(r.get(2)?).to_rfc3339(),
                        from: r.get(3)?,
                        subject: r.get(4)?,
                        size: r.get::<_, i64>(5)?.max(0) as u64,
                        message_id: r.get(6)?,
                        blob: r.get(7)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

//! Mailboxes' content: items, blobs (staging, reading) and blob garbage collection.

use super::SqliteStore;
use crate::error::Result;
use crate::traits::MailStore;
use crate::types::{Folder, MailItem, StagedBlob};
use hato_core::Timestamp;
use hato_core::directory::MailboxId;
use rusqlite::{OptionalExtension, params};

fn mail_item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailItem> {
    let folder: String = r.get(5)?;
    Ok(MailItem {
        id: r.get(0)?,
        received: Timestamp(r.get(1)?).to_rfc3339(),
        from: r.get(2)?,
        subject: r.get(3)?,
        size: r.get::<_, i64>(4)?.max(0) as u64,
        folder: Folder::parse(&folder).unwrap_or(Folder::Inbox),
        blob: r.get(6)?,
    })
}

impl MailStore for SqliteStore {
    fn mail_page(
        &self,
        mailbox: MailboxId,
        folder: Option<Folder>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<MailItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, received, from_header, subject, size, folder, blob FROM mail_items \
                 WHERE mailbox_id = ?1 AND (?2 IS NULL OR folder = ?2) ORDER BY received DESC, id DESC LIMIT ?3 OFFSET ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let offset = i64::try_from(offset).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![mailbox, folder.map(Folder::as_str), limit, offset], mail_item_from_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn mail_item(&self, mailbox: MailboxId, id: i64) -> Result<Option<MailItem>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, received, from_header, subject, size, folder, blob FROM mail_items \
                     WHERE mailbox_id = ?1 AND id = ?2",
                )?
                .query_row(params![mailbox, id], mail_item_from_row)
                .optional()?)
        })
    }

    fn stage_blob(&self, content: Vec<u8>) -> Result<StagedBlob> {
        if content.len() <= crate::blobs::INLINE_BLOB_MAX {
            Ok(StagedBlob {
                hash: crate::blobs::hash_of(&content),
                inline: Some(content),
            })
        } else {
            Ok(StagedBlob {
                hash: self.blobs.put(&content)?,
                inline: None,
            })
        }
    }

    fn stage_spooled(&self, head: Vec<u8>, spool: &std::path::Path) -> Result<(StagedBlob, u64)> {
        let (hash, size) = self.blobs.put_streamed(&head, spool)?;
        Ok((StagedBlob { hash, inline: None }, size))
    }

    fn collect_garbage(&self, min_age: std::time::Duration) -> Result<(usize, usize)> {
        let rows = self
            .write(|conn| {
                Ok(conn.execute(
                    "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM mail_items m WHERE m.blob = blobs.hash) \
                     AND NOT EXISTS (SELECT 1 FROM group_items g WHERE g.blob = blobs.hash) \
                     AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.blob = blobs.hash) \
                     AND NOT EXISTS (SELECT 1 FROM spam_reports s WHERE s.blob = blobs.hash)",
                    [],
                )?)
            })
            .wait()?;
        let mut files = 0;
        for (hash, age) in self.blobs.files()? {
            if age < min_age {
                continue;
            }
            let referenced = self.read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM mail_items WHERE blob = ?1) \
                         OR EXISTS (SELECT 1 FROM group_items WHERE blob = ?1) \
                         OR EXISTS (SELECT 1 FROM quarantine WHERE blob = ?1) \
                         OR EXISTS (SELECT 1 FROM spam_reports WHERE blob = ?1)",
                    )?
                    .query_row([&hash], |r| r.get::<_, bool>(0))?)
            })?;
            if !referenced {
                self.blobs.remove(&hash)?;
                files += 1;
            }
        }
        Ok((rows, files))
    }

    fn blob(&self, hash: &str) -> Result<Vec<u8>> {
        let inline: Option<Vec<u8>> = self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?
                .query_row([hash], |r| r.get(0))
                .optional()?)
        })?;
        match inline {
            Some(data) => Ok(data),
            None => self.blobs.get(hash),
        }
    }
}

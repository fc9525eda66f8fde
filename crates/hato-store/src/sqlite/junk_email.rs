//! Mailboxes' junk email configuration (Exchange's `Set-MailboxJunkEmailConfiguration`;
//! migration 39): `Enabled` in `junk_email_configs` (a row once changed), the Safe Senders and
//! Blocked Senders entries in `junk_email_senders`, keyed (mailbox, list, entry).

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::JunkEmailStore;
use crate::types::{JunkEmailChange, JunkEmailConfig, JunkListChange};
use hato_core::directory::MailboxId;
use hato_protection::spam::junk::{MAX_ENTRIES, normalize_entry};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;

const TRUSTED: &str = "trusted";
const BLOCKED: &str = "blocked";

fn config(conn: &Connection, mailbox: MailboxId) -> Result<JunkEmailConfig> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
    }
    let enabled: Option<bool> = conn
        .prepare_cached("SELECT enabled FROM junk_email_configs WHERE mailbox_id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?;
    let mut trusted = Vec::new();
    let mut blocked = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT list, entry FROM junk_email_senders WHERE mailbox_id = ?1 ORDER BY list, entry",
    )?;
    let rows = stmt.query_map([mailbox], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (list, entry) = row?;
        if list == TRUSTED {
            trusted.push(entry);
        } else {
            blocked.push(entry);
        }
    }
    Ok(JunkEmailConfig {
        mailbox_id: mailbox,
        enabled: enabled.unwrap_or(true),
        trusted_senders_and_domains: trusted,
        blocked_senders_and_domains: blocked,
    })
}

fn normalized(entries: &[String]) -> Result<Vec<String>> {
    entries
        .iter()
        .map(|e| normalize_entry(e).map_err(|e| StoreError::Invalid(e.to_string())))
        .collect()
}

/// The list after `change`, refused past [`MAX_ENTRIES`] (Exchange's limit on each list).
fn changed(current: &[String], change: &JunkListChange, name: &str) -> Result<Option<Vec<String>>> {
    let next: BTreeSet<String> = match change {
        JunkListChange::Keep => return Ok(None),
        JunkListChange::Replace(all) => {
            // Checked before normalizing: a huge request is refused without the work.
            if all.len() > MAX_ENTRIES * 2 {
                return Err(too_many(name, all.len()));
            }
            normalized(all)?.into_iter().collect()
        }
        JunkListChange::Edit { add, remove } => {
            if add.len() > MAX_ENTRIES * 2 || remove.len() > MAX_ENTRIES * 2 {
                return Err(too_many(name, add.len().max(remove.len())));
            }
            let remove: BTreeSet<String> = normalized(remove)?.into_iter().collect();
            let mut next: BTreeSet<String> = current
                .iter()
                .filter(|e| !remove.contains(*e))
                .cloned()
                .collect();
            next.extend(normalized(add)?);
            next
        }
    };
    if next.len() > MAX_ENTRIES {
        return Err(too_many(name, next.len()));
    }
    Ok(Some(next.into_iter().collect()))
}

fn too_many(name: &str, n: usize) -> StoreError {
    StoreError::Invalid(format!(
        "{name} holds at most {MAX_ENTRIES} entries (Exchange's limit); this change would make it {n}: remove some first"
    ))
}

fn replace_list(
    conn: &Connection,
    mailbox: MailboxId,
    list: &str,
    entries: &[String],
) -> Result<()> {
    conn.prepare_cached("DELETE FROM junk_email_senders WHERE mailbox_id = ?1 AND list = ?2")?
        .execute(params![mailbox, list])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO junk_email_senders(mailbox_id, list, entry) VALUES (?1, ?2, ?3)",
    )?;
    for e in entries {
        insert.execute(params![mailbox, list, e])?;
    }
    Ok(())
}

impl JunkEmailStore for SqliteStore {
    fn junk_email_config(&self, mailbox: MailboxId) -> Result<JunkEmailConfig> {
        self.read(|conn| config(conn, mailbox))
    }

    fn set_junk_email_config(
        &self,
        mailbox: MailboxId,
        change: JunkEmailChange,
    ) -> Pending<JunkEmailConfig> {
        let now = self.now_micros();
        self.write(move |conn| {
            let current = config(conn, mailbox)?;
            let trusted = changed(
                &current.trusted_senders_and_domains,
                &change.trusted,
                "TrustedSendersAndDomains",
            )?;
            let blocked = changed(
                &current.blocked_senders_and_domains,
                &change.blocked,
                "BlockedSendersAndDomains",
            )?;
            let enabled = change.enabled.unwrap_or(current.enabled);
            conn.prepare_cached(
                "INSERT INTO junk_email_configs(mailbox_id, enabled, updated) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(mailbox_id) DO UPDATE SET enabled = excluded.enabled, updated = excluded.updated",
            )?
            .execute(params![mailbox, enabled, now])?;
            if let Some(t) = &trusted {
                replace_list(conn, mailbox, TRUSTED, t)?;
            }
            if let Some(b) = &blocked {
                replace_list(conn, mailbox, BLOCKED, b)?;
            }
            // The content pipeline's cache of the lists ends with this commit.
            super::policy_changed();
            config(conn, mailbox)
        })
    }

    fn junk_email_entries(
        &self,
        mailbox: MailboxId,
        trusted: bool,
        filter: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, bool)> {
        let list = if trusted { TRUSTED } else { BLOCKED };
        let filter = filter.trim().to_lowercase();
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT entry FROM junk_email_senders WHERE mailbox_id = ?1 AND list = ?2 \
                 AND (?3 = '' OR instr(entry, ?3) > 0) ORDER BY entry LIMIT ?4 OFFSET ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    mailbox,
                    list,
                    filter,
                    limit.saturating_add(1).min(i64::MAX as usize) as i64,
                    offset.min(i64::MAX as usize) as i64
                ],
                |r| r.get::<_, String>(0),
            )?;
            let mut entries = rows.collect::<rusqlite::Result<Vec<String>>>()?;
            let more = entries.len() > limit;
            entries.truncate(limit);
            Ok((entries, more))
        })
    }
}

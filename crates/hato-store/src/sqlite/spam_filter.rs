//! Tenants' anti-spam policies (the default: a row once changed, else Exchange's defaults; custom
//! ones with their priorities, as the malware filter's), their personalised classifier models,
//! and users' junk / not-junk reports with the moves between Inbox and Junk Email that make them.

use super::{SqliteStore, add_event};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::SpamFilterStore;
use crate::types::{
    DEFAULT_SPAM_FILTER, Folder, MailItem, MailMove, NewSpamReport, SpamFilterPolicyRecord,
    SpamReport, SpamReportOutcome, SpamReportVerdict,
};
use hato_core::Timestamp;
use hato_core::directory::{MailboxId, TenantId};
use hato_core::trace::{EventRecord, TraceEvent};
use rusqlite::{Connection, OptionalExtension, params};

fn tenant_exists(conn: &Connection, tenant: TenantId) -> Result<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")?
        .query_row([tenant], |r| r.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("tenant {tenant}")))
    }
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("anti-spam policy {name}"))
}

fn from_row(tenant: TenantId, json: &str, priority: Option<i64>) -> Result<SpamFilterPolicyRecord> {
    let mut p: SpamFilterPolicyRecord = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("anti-spam policy of tenant {tenant}: {e}")))?;
    p.priority = priority.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    if p.priority.is_none() {
        p.name = DEFAULT_SPAM_FILTER.into();
        p.enabled = true;
    }
    Ok(p)
}

fn named(
    conn: &Connection,
    tenant: TenantId,
    name: &str,
) -> Result<Option<SpamFilterPolicyRecord>> {
    tenant_exists(conn, tenant)?;
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT settings, priority FROM spam_filter_policies WHERE tenant_id = ?1 AND name = ?2",
        )?
        .query_row(params![tenant, name.trim()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        Some((json, priority)) => Ok(Some(from_row(tenant, &json, priority)?)),
        // Exchange's defaults until an admin changes something.
        None if name.trim().eq_ignore_ascii_case(DEFAULT_SPAM_FILTER) => {
            Ok(Some(SpamFilterPolicyRecord::default()))
        }
        None => Ok(None),
    }
}

fn all(conn: &Connection, tenant: TenantId) -> Result<Vec<SpamFilterPolicyRecord>> {
    tenant_exists(conn, tenant)?;
    let mut stmt = conn.prepare_cached(
        "SELECT settings, priority FROM spam_filter_policies \
         WHERE tenant_id = ?1 AND priority IS NOT NULL ORDER BY priority",
    )?;
    let rows = stmt
        .query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut out = rows
        .into_iter()
        .map(|(json, priority)| from_row(tenant, &json, priority))
        .collect::<Result<Vec<_>>>()?;
    out.push(
        named(conn, tenant, DEFAULT_SPAM_FILTER)?
            .ok_or_else(|| StoreError::Corrupt("no default anti-spam policy".into()))?,
    );
    Ok(out)
}

fn custom_count(conn: &Connection, tenant: TenantId) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM spam_filter_policies WHERE tenant_id = ?1 AND priority IS NOT NULL",
        )?
        .query_row([tenant], |r| r.get(0))?)
}

/// Puts the custom policy `name` at `priority` and numbers the others 0, 1, 2, ... around it in
/// their order (Exchange: a rule given a priority another holds takes its place, and the others
/// move to make room); with `name` `None`, only renumbers (after a removal).
fn place(conn: &Connection, tenant: TenantId, name: Option<&str>, priority: i64) -> Result<()> {
    let mut names: Vec<String> = conn
        .prepare_cached(
            "SELECT name FROM spam_filter_policies WHERE tenant_id = ?1 AND priority IS NOT NULL ORDER BY priority",
        )?
        .query_map([tenant], |r| r.get(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if let Some(name) = name {
        names.retain(|n| !n.eq_ignore_ascii_case(name));
        let at = usize::try_from(priority).unwrap_or(0).min(names.len());
        names.insert(at, name.to_string());
    }
    let mut set = conn.prepare_cached(
        "UPDATE spam_filter_policies SET priority = ?1 WHERE tenant_id = ?2 AND name = ?3",
    )?;
    for (i, n) in names.iter().enumerate() {
        set.execute(params![i as i64, tenant, n])?;
    }
    Ok(())
}

/// Moves the tenant's version of its anti-spam policies (in the writing transaction) and the
/// store's policy generation (after the commit), so the content pipeline's cache of them ends.
fn bump(conn: &Connection, tenant: TenantId) -> Result<()> {
    super::policy_changed();
    conn.prepare_cached(
        "INSERT INTO spam_filter_versions(tenant_id, version) VALUES (?1, 1) \
         ON CONFLICT(tenant_id) DO UPDATE SET version = version + 1",
    )?
    .execute([tenant])?;
    Ok(())
}

fn store_row(
    conn: &Connection,
    tenant: TenantId,
    p: &SpamFilterPolicyRecord,
    now: i64,
) -> Result<()> {
    p.policy
        .validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    if !p.is_default() && !p.conditions.has_condition() {
        return Err(StoreError::Invalid(
            "a custom anti-spam policy needs a condition: sent-to, sent-to-member-of or recipient-domain-is"
                .into(),
        ));
    }
    bump(conn, tenant)?;
    let json = serde_json::to_string(p)
        .map_err(|e| StoreError::Invalid(format!("anti-spam policy: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO spam_filter_policies(tenant_id, name, priority, settings, updated) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(tenant_id, name) DO UPDATE SET priority = excluded.priority, settings = excluded.settings, updated = excluded.updated",
    )?
    .execute(params![tenant, p.name, p.priority.map(i64::from), json, now])?;
    Ok(())
}

fn custom_priority(
    conn: &Connection,
    tenant: TenantId,
    p: &SpamFilterPolicyRecord,
    adding: bool,
) -> Result<i64> {
    let count = custom_count(conn, tenant)?;
    // A new policy may take any place up to the end; a moved one up to the last place.
    let last = if adding { count } else { count - 1 };
    let priority = i64::from(p.priority.unwrap_or(0));
    if priority > last {
        return Err(StoreError::Invalid(format!(
            "priority {priority}: the tenant's custom anti-spam policies take priorities 0 to {last}"
        )));
    }
    Ok(priority)
}

// ----- reports --------------------------------------------------------------------------------

fn verdict_of(s: &str) -> rusqlite::Result<SpamReportVerdict> {
    SpamReportVerdict::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown report verdict {s:?}").into(),
        )
    })
}

const REPORT_COLUMNS: &str =
    "id, tenant_id, trace_id, recipient, verdict, replaces, reporter, reported, blob, client_ip";

fn report_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpamReport> {
    let replaces: Option<String> = r.get(5)?;
    Ok(SpamReport {
        id: r.get(0)?,
        tenant: r.get(1)?,
        trace_id: r.get(2)?,
        recipient: r.get(3)?,
        verdict: verdict_of(&r.get::<_, String>(4)?)?,
        replaces: replaces.as_deref().map(verdict_of).transpose()?,
        reporter: r.get(6)?,
        reported: Timestamp(r.get(7)?),
        blob: r.get(8)?,
        client_ip: r.get(9)?,
    })
}

/// The delivered message a report is about: its recipient row, content and sending client.
struct Delivered {
    tenant: TenantId,
    trace_id: String,
    recipient: String,
    recipient_row: i64,
    blob: String,
    client_ip: String,
}

/// Records `verdict` by `reporter` of `d` (see [`SpamFilterStore::report_spam`]); `how` says
/// on the trace how it was made (`moved from Junk Email to Inbox`).
fn record(
    conn: &Connection,
    d: &Delivered,
    verdict: SpamReportVerdict,
    reporter: &str,
    now: Timestamp,
    how: Option<&str>,
) -> Result<SpamReportOutcome> {
    let existing: Option<SpamReport> = conn
        .prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM spam_reports \
             WHERE tenant_id = ?1 AND trace_id = ?2 AND recipient = ?3 AND reporter = ?4"
        ))?
        .query_row(
            params![d.tenant, d.trace_id, d.recipient, reporter],
            report_from_row,
        )
        .optional()?;
    let replaces = match existing {
        // Idempotent: the same person saying the same of the same message counts once.
        Some(r) if r.verdict == verdict => {
            return Ok(SpamReportOutcome {
                report: r,
                recorded: false,
            });
        }
        Some(r) => {
            conn.prepare_cached("DELETE FROM spam_reports WHERE id = ?1")?
                .execute([r.id])?;
            Some(r.verdict)
        }
        None => None,
    };
    // A replacing report is a new row, after every other: whoever consumes them in order sees
    // it after the one it replaces.
    conn.prepare_cached(
        "INSERT INTO spam_reports(tenant_id, trace_id, recipient, reporter, verdict, replaces, reported, blob, client_ip) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        d.tenant,
        d.trace_id,
        d.recipient,
        reporter,
        verdict.as_str(),
        replaces.map(SpamReportVerdict::as_str),
        now.0,
        d.blob,
        d.client_ip
    ])?;
    let id = conn.last_insert_rowid();
    let said = match verdict {
        SpamReportVerdict::Junk => "junk",
        SpamReportVerdict::NotJunk => "not junk",
    };
    let detail = match how {
        Some(how) => format!("Reported as {said} by {reporter} ({how})"),
        None => format!("Reported as {said} by {reporter}"),
    };
    add_event(
        conn,
        d.recipient_row,
        now.0,
        &EventRecord::new(TraceEvent::AgentInfo, detail),
    )?;
    let report = conn
        .prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM spam_reports WHERE id = ?1"
        ))?
        .query_row([id], report_from_row)?;
    Ok(SpamReportOutcome {
        report,
        recorded: true,
    })
}

fn mail_item(
    conn: &Connection,
    mailbox: MailboxId,
    id: i64,
) -> Result<Option<(MailItem, Option<i64>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, received, from_header, subject, size, folder, blob, recipient_id FROM mail_items \
             WHERE mailbox_id = ?1 AND id = ?2",
        )?
        .query_row(params![mailbox, id], |r| {
            let folder: String = r.get(5)?;
            Ok((
                MailItem {
                    id: r.get(0)?,
                    received: Timestamp(r.get(1)?).to_rfc3339(),
                    from: r.get(2)?,
                    subject: r.get(3)?,
                    size: r.get::<_, i64>(4)?.max(0) as u64,
                    folder: Folder::parse(&folder).unwrap_or(Folder::Inbox),
                    blob: r.get(6)?,
                },
                r.get(7)?,
            ))
        })
        .optional()?)
}

impl SpamFilterStore for SqliteStore {
    fn spam_filter_named(&self, tenant: TenantId, name: &str) -> Result<SpamFilterPolicyRecord> {
        self.read(|conn| named(conn, tenant, name))?
            .ok_or_else(|| not_found(name))
    }

    fn spam_filters(&self, tenant: TenantId) -> Result<Vec<SpamFilterPolicyRecord>> {
        self.read(|conn| all(conn, tenant))
    }

    fn set_spam_filter(
        &self,
        tenant: TenantId,
        mut p: SpamFilterPolicyRecord,
    ) -> Pending<SpamFilterPolicyRecord> {
        let now = self.now_micros();
        self.write(move |conn| {
            let current = named(conn, tenant, &p.name)?.ok_or_else(|| not_found(&p.name))?;
            // The name is the stored one's (case as created); default stays default.
            p.name = current.name.clone();
            if current.is_default() {
                p.priority = None;
                p.enabled = true;
                store_row(conn, tenant, &p, now)?;
            } else {
                if p.priority.is_none() {
                    p.priority = current.priority;
                }
                let priority = custom_priority(conn, tenant, &p, false)?;
                store_row(conn, tenant, &p, now)?;
                place(conn, tenant, Some(&p.name), priority)?;
            }
            named(conn, tenant, &p.name)?.ok_or_else(|| not_found(&p.name))
        })
    }

    fn add_spam_filter(
        &self,
        tenant: TenantId,
        mut p: SpamFilterPolicyRecord,
    ) -> Pending<SpamFilterPolicyRecord> {
        let now = self.now_micros();
        self.write(move |conn| {
            tenant_exists(conn, tenant)?;
            p.name = p.name.trim().to_string();
            if p.name.is_empty() || p.name.eq_ignore_ascii_case(DEFAULT_SPAM_FILTER) {
                return Err(StoreError::Invalid(format!(
                    "name {:?}: a custom anti-spam policy needs a name other than {DEFAULT_SPAM_FILTER}",
                    p.name
                )));
            }
            if named(conn, tenant, &p.name)?.is_some() {
                return Err(StoreError::Conflict(format!("anti-spam policy {}", p.name)));
            }
            let count = custom_count(conn, tenant)?;
            if p.priority.is_none() {
                p.priority = Some(u32::try_from(count).unwrap_or(u32::MAX));
            }
            let priority = custom_priority(conn, tenant, &p, true)?;
            // Stored at the end first, then placed.
            p.priority = Some(u32::try_from(count).unwrap_or(u32::MAX));
            store_row(conn, tenant, &p, now)?;
            place(conn, tenant, Some(&p.name), priority)?;
            named(conn, tenant, &p.name)?.ok_or_else(|| not_found(&p.name))
        })
    }

    fn remove_spam_filter(&self, tenant: TenantId, name: &str) -> Pending<()> {
        let name = name.trim().to_string();
        self.write(move |conn| {
            tenant_exists(conn, tenant)?;
            if name.eq_ignore_ascii_case(DEFAULT_SPAM_FILTER) {
                return Err(StoreError::Invalid(
                    "the default anti-spam policy cannot be removed".into(),
                ));
            }
            let removed = conn
                .prepare_cached(
                    "DELETE FROM spam_filter_policies WHERE tenant_id = ?1 AND name = ?2 AND priority IS NOT NULL",
                )?
                .execute(params![tenant, name])?;
            if removed == 0 {
                return Err(not_found(&name));
            }
            bump(conn, tenant)?;
            place(conn, tenant, None, 0)
        })
    }

    fn spam_tenant_model(&self, tenant: TenantId) -> Result<Option<(Vec<u8>, i64)>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT model, version FROM spam_tenant_models WHERE tenant_id = ?1",
                )?
                .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    fn set_spam_tenant_model(&self, tenant: TenantId, model: Vec<u8>) -> Pending<i64> {
        let now = self.now_micros();
        self.write(move |conn| {
            tenant_exists(conn, tenant)?;
            // The model is part of what the content pipeline caches per tenant.
            super::policy_changed();
            Ok(conn
                .prepare_cached(
                    "INSERT INTO spam_tenant_models(tenant_id, model, version, updated) VALUES (?1, ?2, 1, ?3) \
                     ON CONFLICT(tenant_id) DO UPDATE SET model = excluded.model, version = version + 1, updated = excluded.updated \
                     RETURNING version",
                )?
                .query_row(params![tenant, model, now], |r| r.get(0))?)
        })
    }

    fn report_spam(&self, report: NewSpamReport) -> Pending<SpamReportOutcome> {
        self.write(move |conn| {
            let missing = || {
                StoreError::NotFound(format!(
                    "message {} delivered to {}",
                    report.trace_id, report.recipient
                ))
            };
            // The recipient as traced (an alias, say) or the primary address of the mailbox
            // it was delivered to: a user knows the message by either.
            let found: Option<(i64, String, String, String)> = conn
                .prepare_cached(
                    "SELECT rc.id, mi.blob, m.client_ip, rc.address FROM messages m \
                     JOIN recipients rc ON rc.message_id = m.id \
                     JOIN mail_items mi ON mi.recipient_id = rc.id \
                     WHERE m.trace_id = ?1 AND rc.tenant_id = ?2 \
                       AND (rc.address = ?3 OR mi.mailbox_id = \
                            (SELECT id FROM mailboxes WHERE address = ?3 AND tenant_id = ?2)) \
                       AND (?4 IS NULL OR mi.mailbox_id = ?4) \
                     ORDER BY rc.id LIMIT 1",
                )?
                .query_row(
                    params![
                        report.trace_id,
                        report.tenant,
                        report.recipient.to_lowercase(),
                        report.mailbox
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let (recipient_row, blob, client_ip, recipient) = found.ok_or_else(missing)?;
            let d = Delivered {
                tenant: report.tenant,
                trace_id: report.trace_id.clone(),
                recipient,
                recipient_row,
                blob,
                client_ip,
            };
            record(conn, &d, report.verdict, &report.reporter, report.now, None)
        })
    }

    fn spam_reports_after(
        &self,
        tenant: TenantId,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<SpamReport>> {
        self.read(|conn| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {REPORT_COLUMNS} FROM spam_reports \
                     WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                ))?
                .query_map(params![tenant, after_id, limit], report_from_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    fn move_mail(
        &self,
        mailbox: MailboxId,
        id: i64,
        folder: Folder,
        by: &str,
        now: Timestamp,
    ) -> Pending<MailMove> {
        let by = by.to_string();
        self.write(move |conn| {
            let (mut item, recipient_row) = mail_item(conn, mailbox, id)?
                .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
            if item.folder == folder {
                return Ok(MailMove { item, report: None });
            }
            let from = item.folder;
            conn.prepare_cached("UPDATE mail_items SET folder = ?1 WHERE id = ?2")?
                .execute(params![folder.as_str(), id])?;
            item.folder = folder;
            // The trace, while retention keeps it, names the message the report is about.
            let traced: Option<(TenantId, String, String, String)> = match recipient_row {
                Some(row) => conn
                    .prepare_cached(
                        "SELECT rc.tenant_id, m.trace_id, rc.address, m.client_ip FROM recipients rc \
                         JOIN messages m ON m.id = rc.message_id WHERE rc.id = ?1",
                    )?
                    .query_row([row], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?,
                None => None,
            };
            let report = match (traced, recipient_row) {
                (Some((tenant, trace_id, recipient, client_ip)), Some(recipient_row)) => {
                    let d = Delivered {
                        tenant,
                        trace_id,
                        recipient,
                        recipient_row,
                        blob: item.blob.clone(),
                        client_ip,
                    };
                    // Outlook: moving a message out of Junk Email reports it as not junk, into
                    // Junk Email as junk.
                    let verdict = match folder {
                        Folder::Junk => SpamReportVerdict::Junk,
                        Folder::Inbox => SpamReportVerdict::NotJunk,
                    };
                    let how = format!(
                        "moved from {} to {}",
                        from.display_name(),
                        folder.display_name()
                    );
                    Some(record(conn, &d, verdict, &by, now, Some(&how))?)
                }
                _ => None,
            };
            Ok(MailMove { item, report })
        })
    }

    fn carried_message_from(&self, message_id: &str, sender: &str) -> Result<bool> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE message_id = ?1 \
                     AND sender = ?2 COLLATE NOCASE)",
                )?
                .query_row(params![message_id, sender], |r| r.get::<_, bool>(0))?)
        })
    }
}

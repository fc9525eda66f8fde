//! The provider's block list and the requests made on its delist page.

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::BlockListStore;
use crate::types::{
    BlockEntry, DelistConfirmation, DelistDecided, DelistDecision, DelistOutcome, DelistRequest,
    DelistRequestQuery, DelistStatus, NewBlockEntry, NewDelistRequest,
};
use hato_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

const ENTRY_COLUMNS: &str = "id, entry, reason, added_by, added, expires";
const REQUEST_COLUMNS: &str = "id, requested, ip, address, client_ip, outcome, entry_id, entry, \
     token_expires, confirmed, decision, decided_by, decided, decision_reason";

fn entry_from(r: &Row<'_>) -> rusqlite::Result<BlockEntry> {
    Ok(BlockEntry {
        id: r.get(0)?,
        entry: r.get(1)?,
        reason: r.get(2)?,
        added_by: r.get(3)?,
        added: Timestamp(r.get(4)?),
        expires: r.get::<_, Option<i64>>(5)?.map(Timestamp),
    })
}

/// A request row; an outcome this version does not know is a corrupt row, not a panic.
fn request_from(r: &Row<'_>) -> rusqlite::Result<Result<DelistRequest>> {
    let outcome: String = r.get(5)?;
    let Some(outcome) = DelistOutcome::parse(&outcome) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "delist request {}: unknown outcome {outcome:?}",
            r.get::<_, i64>(0)?
        ))));
    };
    let decision = match r.get::<_, Option<String>>(10)? {
        None => None,
        Some(d) => match DelistDecision::parse(&d) {
            Some(d) => Some(d),
            None => {
                return Ok(Err(StoreError::Corrupt(format!(
                    "delist request {}: unknown decision {d:?}",
                    r.get::<_, i64>(0)?
                ))));
            }
        },
    };
    Ok(Ok(DelistRequest {
        id: r.get(0)?,
        requested: Timestamp(r.get(1)?),
        ip: r.get(2)?,
        address: r.get(3)?,
        client_ip: r.get(4)?,
        outcome,
        entry_id: r.get(6)?,
        entry: r.get(7)?,
        token_expires: r.get::<_, Option<i64>>(8)?.map(Timestamp),
        confirmed: r.get::<_, Option<i64>>(9)?.map(Timestamp),
        decision,
        decided_by: r.get(11)?,
        decided: r.get::<_, Option<i64>>(12)?.map(Timestamp),
        decision_reason: r.get(13)?,
    }))
}

/// The outcomes that leave a request for the operator to decide, as an SQL list of literals.
fn awaiting_sql() -> String {
    [
        DelistOutcome::NotListed,
        DelistOutcome::ListedInRange,
        DelistOutcome::ConfirmationSent,
        DelistOutcome::Removed,
        DelistOutcome::NoLongerListed,
    ]
    .into_iter()
    .filter(|o| o.awaits_decision())
    .map(|o| format!("'{}'", o.as_str()))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The `WHERE` clause of a status (see `DelistRequest::status`).
fn status_sql(status: Option<DelistStatus>) -> String {
    match status {
        None => "1".into(),
        Some(DelistStatus::Approved) => "decision = 'approved'".into(),
        Some(DelistStatus::Denied) => "decision = 'denied'".into(),
        Some(DelistStatus::Pending) => {
            format!("decision IS NULL AND outcome IN ({})", awaiting_sql())
        }
        Some(DelistStatus::Closed) => format!(
            "(decision = 'closed' OR (decision IS NULL AND outcome NOT IN ({})))",
            awaiting_sql()
        ),
    }
}

fn request_by_id(conn: &Connection, id: i64) -> Result<Option<DelistRequest>> {
    conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM delist_requests WHERE id = ?1"
    ))?
    .query_row([id], request_from)
    .optional()?
    .transpose()
}

/// The decision on a pending request and, for an approval, the entry's removal: one write.
fn decide(
    conn: &Connection,
    id: i64,
    decision: DelistDecision,
    by: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<DelistDecided> {
    let r = request_by_id(conn, id)?
        .ok_or_else(|| StoreError::NotFound(format!("delist request {id}")))?;
    if decision == DelistDecision::Closed {
        return Err(StoreError::Invalid(
            "a request is closed by removing its entry, not decided closed".into(),
        ));
    }
    match r.status() {
        DelistStatus::Pending => {}
        DelistStatus::Approved | DelistStatus::Denied => {
            return Err(StoreError::InUse(format!(
                "delist request {id} was {} already, by {} on {}",
                r.status().as_str(),
                r.decided_by.as_deref().unwrap_or("?"),
                r.decided.map(Timestamp::to_rfc3339).unwrap_or_default()
            )));
        }
        DelistStatus::Closed => {
            let removed;
            let why = match r.outcome {
                _ if r.decision == Some(DelistDecision::Closed) => {
                    removed = format!(
                        "{} removed its entry on {}",
                        r.decided_by.as_deref().unwrap_or("?"),
                        r.decided.map(Timestamp::to_rfc3339).unwrap_or_default()
                    );
                    removed.as_str()
                }
                DelistOutcome::NotListed => "nothing listed its IP when it was made",
                DelistOutcome::Removed => "its confirmation link removed the entry",
                _ => "its confirmation link found the entry gone",
            };
            return Err(StoreError::InUse(format!(
                "delist request {id} has nothing left to decide: {why}"
            )));
        }
    }
    let removed = match (decision, &r.entry) {
        (DelistDecision::Approved, Some(entry)) => conn
            .prepare_cached(&format!(
                "DELETE FROM block_list WHERE entry = ?1 RETURNING {ENTRY_COLUMNS}"
            ))?
            .query_row([entry], entry_from)
            .optional()?,
        _ => None,
    };
    conn.prepare_cached(
        "UPDATE delist_requests SET decision = ?2, decided_by = ?3, decided = ?4, \
         decision_reason = ?5 WHERE id = ?1",
    )?
    .execute(params![id, decision.as_str(), by, now.0, reason])?;
    let request = request_by_id(conn, id)?
        .ok_or_else(|| StoreError::NotFound(format!("delist request {id}")))?;
    Ok(DelistDecided { request, removed })
}

/// The reason recorded on a request closed by its entry's removal.
const ENTRY_REMOVED: &str = "entry removed";

fn not_listed(entry: &str) -> StoreError {
    StoreError::NotFound(format!("the block list entry {entry}"))
}

/// What a confirmation needs of the request its token belongs to.
struct TokenRow {
    id: i64,
    ip: String,
    entry_id: Option<i64>,
    expires: Option<i64>,
    confirmed: Option<i64>,
    denied: bool,
}

/// The token's request and whether it may still be used, then its use: one write.
fn confirm(conn: &Connection, token_hash: &str, now: Timestamp) -> Result<DelistConfirmation> {
    let found = conn
        .prepare_cached(
            "SELECT id, ip, entry_id, token_expires, confirmed, decision FROM delist_requests \
             WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                ip: r.get(1)?,
                entry_id: r.get(2)?,
                expires: r.get(3)?,
                confirmed: r.get(4)?,
                denied: r.get::<_, Option<String>>(5)?.as_deref()
                    == Some(DelistDecision::Denied.as_str()),
            })
        })
        .optional()?;
    let Some(TokenRow {
        id,
        ip,
        entry_id,
        expires,
        confirmed,
        denied,
    }) = found
    else {
        return Ok(DelistConfirmation::Unknown);
    };
    // The operator's denial outranks the requester's link (the link is not used up by it).
    if denied {
        return Ok(DelistConfirmation::Denied { ip });
    }
    if let Some(at) = confirmed {
        return Ok(DelistConfirmation::AlreadyUsed {
            ip,
            at: Timestamp(at),
        });
    }
    if expires.is_none_or(|e| now.0 >= e) {
        return Ok(DelistConfirmation::Expired { ip });
    }
    // Only the row the link was mailed for: an entry removed and listed anew has another id.
    let removed: Option<(String, Option<i64>)> = match entry_id {
        Some(entry_id) => conn
            .prepare_cached("DELETE FROM block_list WHERE id = ?1 RETURNING entry, expires")?
            .query_row([entry_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
        None => None,
    };
    let (outcome, answer) = match removed {
        Some((entry, expires)) if expires.is_none_or(|e| now.0 < e) => (
            DelistOutcome::Removed,
            DelistConfirmation::Removed {
                ip: ip.clone(),
                entry,
            },
        ),
        _ => (
            DelistOutcome::NoLongerListed,
            DelistConfirmation::NoLongerListed { ip: ip.clone() },
        ),
    };
    conn.prepare_cached("UPDATE delist_requests SET confirmed = ?2, outcome = ?3 WHERE id = ?1")?
        .execute(params![id, now.0, outcome.as_str()])?;
    Ok(answer)
}

impl BlockListStore for SqliteStore {
    fn add_block(&self, e: NewBlockEntry) -> Pending<BlockEntry> {
        self.write(move |conn| {
            // An expired entry that the purge has not reached yet does not hold the place.
            conn.prepare_cached(
                "DELETE FROM block_list WHERE entry = ?1 AND expires IS NOT NULL AND expires <= ?2",
            )?
            .execute(params![e.entry, e.added.0])?;
            let taken = conn
                .prepare_cached("SELECT 1 FROM block_list WHERE entry = ?1")?
                .exists([&e.entry])?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "the block list entry {}",
                    e.entry
                )));
            }
            let id = conn
                .prepare_cached(
                    "INSERT INTO block_list(entry, reason, added_by, added, expires) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )?
                .query_row(
                    params![
                        e.entry,
                        e.reason,
                        e.added_by,
                        e.added.0,
                        e.expires.map(|t| t.0)
                    ],
                    |r| r.get(0),
                )?;
            Ok(BlockEntry {
                id,
                entry: e.entry,
                reason: e.reason,
                added_by: e.added_by,
                added: e.added,
                expires: e.expires,
            })
        })
    }

    fn block_entries(&self, now: Timestamp) -> Result<Vec<BlockEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM block_list \
                 WHERE expires IS NULL OR expires > ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([now.0], entry_from)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn block_entry(&self, entry: &str) -> Result<Option<BlockEntry>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM block_list WHERE entry = ?1"
                ))?
                .query_row([entry], entry_from)
                .optional()?)
        })
    }

    fn remove_block(&self, entry: &str, by: &str, now: Timestamp) -> Pending<BlockEntry> {
        let (entry, by) = (entry.to_string(), by.to_string());
        self.write(move |conn| {
            let removed = conn
                .prepare_cached(&format!(
                    "DELETE FROM block_list WHERE entry = ?1 RETURNING {ENTRY_COLUMNS}"
                ))?
                .query_row([&entry], entry_from)
                .optional()?
                .ok_or_else(|| not_listed(&entry))?;
            // The requests waiting for the operator about this entry have nothing left to
            // decide: closed in the same write, saying who removed it and when.
            conn.prepare_cached(&format!(
                "UPDATE delist_requests SET decision = 'closed', decided_by = ?2, decided = ?3, \
                 decision_reason = '{ENTRY_REMOVED}' \
                 WHERE entry = ?1 AND decision IS NULL AND outcome IN ({})",
                awaiting_sql()
            ))?
            .execute(params![entry, by, now.0])?;
            Ok(removed)
        })
    }

    fn purge_block_list(
        &self,
        now: Timestamp,
        requests_before: Timestamp,
    ) -> Pending<(usize, usize)> {
        self.write(move |conn| {
            let entries = conn
                .prepare_cached(
                    "DELETE FROM block_list WHERE expires IS NOT NULL AND expires <= ?1",
                )?
                .execute([now.0])?;
            let requests = conn
                .prepare_cached("DELETE FROM delist_requests WHERE requested < ?1")?
                .execute([requests_before.0])?;
            Ok((entries, requests))
        })
    }

    fn add_delist_request(&self, r: NewDelistRequest) -> Pending<i64> {
        self.write(move |conn| {
            let (entry_id, entry) = r.entry.map_or((None, None), |(id, e)| (Some(id), Some(e)));
            let (token_hash, token_expires) =
                r.token.map_or((None, None), |(h, t)| (Some(h), Some(t.0)));
            Ok(conn
                .prepare_cached(
                    "INSERT INTO delist_requests(requested, ip, address, client_ip, outcome, \
                     entry_id, entry, token_hash, token_expires) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                )?
                .query_row(
                    params![
                        r.requested.0,
                        r.ip,
                        r.address,
                        r.client_ip,
                        r.outcome.as_str(),
                        entry_id,
                        entry,
                        token_hash,
                        token_expires
                    ],
                    |row| row.get(0),
                )?)
        })
    }

    fn delist_request_by_token(&self, token_hash: &str) -> Result<Option<DelistRequest>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM delist_requests WHERE token_hash = ?1"
            ))?
            .query_row([token_hash], request_from)
            .optional()?
            .transpose()
        })
    }

    fn confirm_delist(&self, token_hash: &str, now: Timestamp) -> Pending<DelistConfirmation> {
        let token_hash = token_hash.to_string();
        self.write(move |conn| confirm(conn, &token_hash, now))
    }

    fn delist_request_page(&self, q: &DelistRequestQuery) -> Result<Vec<DelistRequest>> {
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM delist_requests WHERE {} \
             ORDER BY id DESC LIMIT ?1 OFFSET ?2",
            status_sql(q.status)
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([limit, offset], request_from)?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|r| r))
                .collect()
        })
    }

    fn delist_request(&self, id: i64) -> Result<Option<DelistRequest>> {
        self.read(|conn| request_by_id(conn, id))
    }

    fn decide_delist(
        &self,
        id: i64,
        decision: DelistDecision,
        by: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Pending<DelistDecided> {
        let (by, reason) = (by.to_string(), reason.map(str::to_string));
        self.write(move |conn| decide(conn, id, decision, &by, reason.as_deref(), now))
    }
}

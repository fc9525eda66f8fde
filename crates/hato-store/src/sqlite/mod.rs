//! The embedded store: SQLite (WAL, `synchronous=FULL`), a blob directory, and the spool and
//! queue files of large messages (`crate::spool`).
//!
//! This module holds the connections, the writer thread (group commit) and the helpers several
//! resources share; each resource's trait implementation lives in its own child module and uses
//! only what is here, never another resource's module (`snapshot` reads across resources and
//! borrows the group and contact row readers).

mod contacts;
mod group_mailbox;
mod groups;
mod mail;
mod mailboxes;
mod moderation;
mod queue;
mod rights;
mod snapshot;
mod tenants;
mod tokens;
mod trace;

use crate::blobs::BlobDir;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::schema::MIGRATIONS;
use crate::spool::{self, FileSpool, QueueDir};
use hato_core::Reason;
use hato_core::directory::{MemberRef, Route, TenantId};
use hato_core::trace::{EventRecord, RecipientStatus, TraceEvent};
use hato_core::{Clock, SystemClock};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

/// How many queued writes one transaction may take (group commit batch size).
const MAX_BATCH: usize = 1024;
const READERS: usize = 4;

type Finisher = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// A queued write: given the connection inside the batch transaction (or the reason there is none),
/// it does its work and returns what to tell its caller once the batch's fate is known.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, &StoreError>) -> Finisher + Send>;

pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    blobs: BlobDir,
    spool: Arc<FileSpool>,
    queue: QueueDir,
    /// The time of the rows the store stamps itself (`created` of tenants, mailboxes, groups,
    /// tokens, join requests); every other time comes from its caller.
    clock: Arc<dyn Clock>,
}

fn open_connection(path: &Path, cache_kib: i64) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // WAL lets readers run beside the writer; synchronous=FULL syncs the WAL at every commit,
    // so a committed transaction survives power loss, not only a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A larger page cache (negative = KiB) keeps the hot index pages in memory instead of
    // re-reading them with a system call per miss (measured: pread was 7% of the server's time
    // under load with the 2 MB default).
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // Checkpoint the WAL into the database every ~40 MB instead of every ~4 MB: a page changed
    // by many transactions in between is copied once, not once per checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {version}, newer than this hato knows ({known}); \
             upgrade hato"
        )));
    }
    if version == known {
        return Ok(());
    }
    // A migration may rebuild a table (https://sqlite.org/lang_altertable.html#otheralter): with
    // foreign keys on, dropping the old table would cascade into its children. The pragma is a
    // no-op inside a transaction, so it is switched off around them, and each migration checks
    // the foreign keys itself before it commits.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = run_migrations(conn, version as usize);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

fn run_migrations(conn: &mut Connection, from: usize) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let violation: Option<(String, Option<i64>, String)> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((table, rowid, parent)) = violation {
            return Err(StoreError::Corrupt(format!(
                "schema migration {} left row {} of {table} pointing at a missing row of \
                 {parent}; the migration was rolled back",
                i + 1,
                rowid.unwrap_or_default()
            )));
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Runs `f` inside a savepoint, so that one failing write in a batch leaves the others intact.
fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
    // Cached statements: this runs once per write, so re-parsing the SQL each time shows.
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    match f(conn) {
        Ok(r) => {
            conn.prepare_cached("RELEASE op")?.execute([])?;
            Ok(r)
        }
        Err(e) => {
            conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
            conn.prepare_cached("RELEASE op")?.execute([])?;
            Err(e)
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, queue: QueueDir) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)
        {
            for job in batch {
                job(Err(&e))(None);
            }
            continue;
        }
        let finishers: Vec<Finisher> = batch.into_iter().map(|job| job(Ok(&conn))).collect();
        let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            spool::after_commit(&conn, &queue);
        }
        let err = committed.err();
        for finish in finishers {
            finish(err.as_ref());
        }
    }
}

impl SqliteStore {
    /// How many reads run at once, one per reader connection; a further read waits until one
    /// is free.
    pub const READERS: usize = READERS;

    /// Opens (creating on first start) the store under `data_dir`: `hato.db`, `blobs/`,
    /// `spool/` and `queue/`. Spool files (never committed) and queue files no message names (a
    /// crash between a commit and a removal) are removed. The rows it stamps itself carry the
    /// system clock's time.
    pub fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with_clock(data_dir, Arc::new(SystemClock))
    }

    /// [`SqliteStore::open`] with the clock that stamps the `created` column of the rows the
    /// store makes (the server's one clock; a manual clock in tests).
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let db_path = data_dir.join("hato.db");
        let mut conn = open_connection(&db_path, 16 * 1024)?;
        migrate(&mut conn)?;
        let spool = Arc::new(FileSpool::open(&data_dir.join("spool"))?);
        let queue = QueueDir::open(&data_dir.join("queue"))?;
        let (stale_spool, stale_queue) = (spool.clear()?, queue.sweep(&conn)?);
        if stale_spool + stale_queue > 0 {
            tracing::info!(
                "removed {stale_spool} uncommitted spool file(s) and {stale_queue} unreferenced queue file(s)"
            );
        }
        spool::prepare_connection(&conn)?;
        let writer_queue = queue.clone();
        let readers = (0..READERS)
            .map(|_| open_connection(&db_path, 8 * 1024).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("hato-store-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_queue))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers,
            next_reader: AtomicUsize::new(0),
            blobs: BlobDir::open(&data_dir.join("blobs"))?,
            spool,
            queue,
            clock,
        })
    }

    /// Where SMTP sessions put the content of large messages while it arrives
    /// (`<data_dir>/spool/`); [`crate::QueueStore::enqueue`] moves such a file into the queue.
    pub fn spool(&self) -> Arc<dyn hato_core::body::Spool> {
        self.spool.clone()
    }

    /// Stops the writer after the writes already handed to it are committed.
    pub fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(h) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }

    /// Hands `f` to the writer thread; it runs in the next group-committed transaction.
    pub fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Pending<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(e.clone()),
            };
            Box::new(move |commit_error: Option<&StoreError>| {
                let out = match commit_error {
                    Some(e) => Err(e.clone()),
                    None => result,
                };
                let _ = tx.send(out);
            })
        });
        let sent = match self.writer.lock() {
            Ok(w) => w.as_ref().map(|s| s.send(job).is_ok()).unwrap_or(false),
            Err(_) => false,
        };
        if sent {
            Pending::new(rx)
        } else {
            Pending::failed(StoreError::Closed)
        }
    }

    /// Runs a read on one of the reader connections.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i]
            .lock()
            .map_err(|_| StoreError::Database("reader connection poisoned".into()))?;
        f(&conn)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl SqliteStore {
    /// Now, by the store's clock, in the store's unit (microseconds). Read before a write is
    /// queued (the write's closure must own what it uses), so a row carries the time it was
    /// asked for, not the time its batch committed.
    pub(crate) fn now_micros(&self) -> i64 {
        self.clock.now().0
    }
}

// ----- directory ----------------------------------------------------------------------------------

/// Marks a tenant's directory as changed, in the same transaction as the change, so cached
/// indexes of that tenant (and only that tenant) reload.
pub(crate) fn bump_directory(conn: &Connection, tenant: TenantId) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tenant_directory_version(tenant_id, version) VALUES (?1, 1) \
         ON CONFLICT(tenant_id) DO UPDATE SET version = version + 1",
    )?
    .execute([tenant])?;
    Ok(())
}

/// The tenant of a row of a directory table (`mailboxes`, `groups`, `contacts`).
pub(crate) fn tenant_of(conn: &Connection, table: &str, id: i64) -> Result<Option<TenantId>> {
    Ok(conn
        .prepare_cached(&format!("SELECT tenant_id FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Who already answers to `address`: a mailbox (primary address or alias) or a group of any
/// tenant (their domains belong to one tenant, so these are unique everywhere), or a mail
/// contact of `tenant`. One address names one recipient: a mailbox must not take a group's
/// address (and steal its mail), nor a contact shadow a mailbox. Called inside the write that
/// takes the address, so two concurrent writes cannot both take it.
pub(crate) fn address_holder(
    conn: &Connection,
    tenant: TenantId,
    address: &str,
) -> Result<Option<String>> {
    let mailbox: Option<String> = conn
        .prepare_cached(
            "SELECT m.address FROM addresses a JOIN mailboxes m ON m.id = a.mailbox_id WHERE a.address = ?1",
        )?
        .query_row([address], |r| r.get(0))
        .optional()?;
    if let Some(m) = mailbox {
        return Ok(Some(format!("the mailbox {m}")));
    }
    let group: Option<String> = conn
        .prepare_cached("SELECT name FROM groups WHERE address = ?1")?
        .query_row([address], |r| r.get(0))
        .optional()?;
    if let Some(g) = group {
        return Ok(Some(format!("the group {g}")));
    }
    let contact: Option<String> = conn
        .prepare_cached("SELECT display_name FROM contacts WHERE tenant_id = ?1 AND address = ?2")?
        .query_row(params![tenant, address], |r| r.get(0))
        .optional()?;
    Ok(contact.map(|c| format!("the mail contact {c}")))
}

/// The role addresses every domain keeps for itself: `postmaster` (RFC 5321 §4.5.1: every
/// SMTP domain must accept mail for it) and `abuse` (RFC 2142 §2). hato routes them to the
/// platform's postmaster, so no mailbox, alias, group or contact may take them.
pub(crate) fn check_reserved(address: &str) -> Result<()> {
    let local = address.rsplit_once('@').map(|(l, _)| l).unwrap_or(address);
    for reserved in ["postmaster", "abuse"] {
        if local.eq_ignore_ascii_case(reserved) {
            return Err(StoreError::Invalid(format!(
                "{address} is reserved: {reserved}@ of every domain goes to the platform's postmaster (RFC 5321 §4.5.1, RFC 2142)"
            )));
        }
    }
    Ok(())
}

fn member_kind(m: &MemberRef) -> (&'static str, i64) {
    match m {
        MemberRef::Mailbox(id) => ("mailbox", *id),
        MemberRef::Contact(id) => ("contact", *id),
        MemberRef::Group(id) => ("group", *id),
    }
}

fn member_from(kind: &str, id: i64) -> Option<MemberRef> {
    match kind {
        "mailbox" => Some(MemberRef::Mailbox(id)),
        "contact" => Some(MemberRef::Contact(id)),
        "group" => Some(MemberRef::Group(id)),
        _ => None,
    }
}

// ----- recipients and their trace events ----------------------------------------------------------

/// Appends a trace event with its structured fields: the reply's code and enhanced code (its
/// text is the detail), the remote host, and the reason as JSON.
pub(crate) fn add_event(
    conn: &Connection,
    recipient: i64,
    time: i64,
    e: &EventRecord,
) -> Result<()> {
    let (status, enhanced) = match &e.reply {
        Some(r) => (Some(r.code), Some(r.status.as_ref())),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO trace_events(recipient_id, time, event, detail, status, enhanced_status, remote_host, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        recipient,
        time,
        e.event.as_str(),
        e.detail,
        status,
        enhanced,
        e.remote_host,
        e.reason.as_ref().map(Reason::to_json)
    ])?;
    Ok(())
}

pub(crate) fn set_status(
    conn: &Connection,
    recipient: i64,
    status: RecipientStatus,
    ndr_state: i64,
    now: i64,
) -> Result<()> {
    // A recipient whose group reports to nobody (report_to '') never owes an NDR. An NDR owed
    // now is due now, whatever the recipient waited for before (moderation holds it at the end
    // of time; deferrals push it later).
    conn.prepare_cached(
        "UPDATE recipients SET status = ?1, \
           ndr_state = CASE WHEN ?2 = 1 AND report_to IS '' THEN 0 ELSE ?2 END, \
           next_attempt = CASE WHEN ?2 = 1 AND report_to IS NOT '' THEN ?3 ELSE next_attempt END, \
           updated = ?3 WHERE id = ?4",
    )?
    .execute(params![status.as_str(), ndr_state, now, recipient])?;
    Ok(())
}

/// Drops the spooled content of a message once no recipient still needs it (for delivery or NDR);
/// its queue file, if it has one, is removed once this transaction commits.
pub(crate) fn release_spool(conn: &Connection, message: i64) -> Result<()> {
    let released = conn
        .prepare_cached(
            "UPDATE messages SET content = NULL WHERE id = ?1 AND content IS NOT NULL AND NOT EXISTS (\
               SELECT 1 FROM recipients WHERE message_id = ?1 AND (status = 'Pending' OR ndr_state = 1))",
        )?
        .execute([message])?;
    if released > 0 {
        spool::trash_queue_file(conn, message)?;
        conn.prepare_cached(
            "UPDATE messages SET spool = NULL WHERE id = ?1 AND spool IS NOT NULL",
        )?
        .execute([message])?;
    }
    Ok(())
}

/// A recipient that stays pending until `retry_at`; its `Defer` event (detail: the reason's
/// sentence) is written once per reason, not once per retry.
pub(crate) fn defer(
    conn: &Connection,
    rcpt: i64,
    reason: &Reason,
    retry_at: hato_core::Timestamp,
    now: hato_core::Timestamp,
) -> Result<()> {
    conn.prepare_cached("UPDATE recipients SET next_attempt = ?1, updated = ?2 WHERE id = ?3")?
        .execute(params![retry_at.0, now.0, rcpt])?;
    let last: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT event, detail FROM trace_events WHERE recipient_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([rcpt], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if last
        .as_ref()
        .is_none_or(|(event, detail)| event != TraceEvent::Defer.as_str() || *detail != reason.text)
    {
        add_event(
            conn,
            rcpt,
            now.0,
            &EventRecord::because(TraceEvent::Defer, reason.clone()),
        )?;
    }
    Ok(())
}

pub(crate) fn route_from(kind: &str, mailbox: Option<i64>, group: Option<i64>) -> Route {
    match (kind, mailbox, group) {
        ("local", Some(id), _) => Route::Local(id),
        ("group", _, Some(id)) => Route::Group(id),
        ("relay", _, _) => Route::Relay,
        ("postmaster", _, _) => Route::Postmaster,
        _ => Route::Remote,
    }
}

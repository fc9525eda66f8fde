//! The embedded store: SQLite (WAL, `synchronous=FULL`), a blob directory, and the spool and
//! queue files of large messages (`crate::spool`).
//!
//! This module holds the connections, the writer thread (group commit) and the helpers several
//! resources share; each resource's trait implementation lives in its own child module and uses
//! only what is here, never another resource's module (`snapshot` reads across resources and
//! borrows the group and contact row readers).

mod block_list;
mod connection_filter;
mod connections;
mod connectors;
mod console;
mod contacts;
mod dkim;
mod group_mailbox;
mod groups;
mod junk_email;
mod mail;
mod mailboxes;
mod malware_filter;
mod moderation;
mod mta_sts;
mod organization_config;
mod outbound_connectors;
mod outbound_spam;
mod quarantine;
mod quarantine_digest;
mod queue;
mod rights;
mod snapshot;
mod spam_filter;
mod tenants;
mod throttle;
mod tokens;
mod trace;
mod transport_rules;
mod warmup;

use crate::blobs::BlobDir;
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::schema::MIGRATIONS;
use crate::spool::{self, FileSpool, QueueDir};
use crate::types::{Deferral, QueueWork, retry_delay_secs};
use hato_core::directory::{MemberRef, Route, TenantId};
use hato_core::reply;
use hato_core::trace::{EventRecord, RecipientStatus, TraceEvent};
use hato_core::{Clock, Reason, Refusal, Stage, SystemClock, Timestamp};
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
    /// How long after its arrival a message's recipients expire (micros):
    /// [`SqliteStore::with_message_expiration`].
    message_expiration: i64,
    /// How many entries each list of a tenant's connection filter policy may hold:
    /// [`SqliteStore::with_connection_filter_max_entries`].
    connection_filter_max_entries: usize,
    /// Moves after every commit that changed what `content_policy_versions` versions (any
    /// tenant's): see [`policy_changed`].
    policy_generation: Arc<std::sync::atomic::AtomicU64>,
}

thread_local! {
    /// Set on the writer thread by a write that moves a content policy version, inside its
    /// transaction; read and cleared by the writer loop after the COMMIT.
    static POLICY_CHANGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the writer's current transaction as changing what the policy generation covers (a
/// tenant's directory, its policies, connectors, restricted senders: the list is
/// [`crate::MalwareFilterStore::content_policy_generation`]'s): once it commits, the store's policy generation moves
/// ([`crate::MalwareFilterStore::content_policy_generation`]). A job rolled back alone leaves
/// the mark: a generation moved for nothing only makes a cache read the versions again.
pub(crate) fn policy_changed() {
    POLICY_CHANGED.with(|c| c.set(true));
}

/// Hours in microseconds, the store's unit of time.
const HOUR_MICROS: i64 = 3_600_000_000;

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
    // Every statement the store runs is prepared once per connection and kept: the writer alone
    // runs more distinct statements (enqueue, outcomes, leases, counters, trace) than rusqlite's
    // default cache of 16 holds, and each eviction meant parsing the SQL again (measured: SQL
    // parsing was 6% of the server's time relaying through bench/relay.sh).
    conn.set_prepared_statement_cache_capacity(512);
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

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    queue: QueueDir,
    generation: Arc<std::sync::atomic::AtomicU64>,
) {
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
        let changed = POLICY_CHANGED.with(|c| c.replace(false));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            // Before the callers hear of the commit: whoever learns a policy changed sees the
            // new generation.
            if changed {
                generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
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
        // The embedded store serves one process at a time (so it can remove every spool file
        // above): any lease in it was taken by a process that is gone, a crash or a kill. Its
        // recipients are due again now rather than when that lease would have run out.
        let released = conn.execute(
            "UPDATE recipients SET lease_owner = NULL, lease_until = NULL \
             WHERE status = 'Pending' AND lease_owner IS NOT NULL",
            [],
        )?;
        if released > 0 {
            tracing::info!("released {released} recipient(s) leased by a process that is gone");
        }
        let writer_queue = queue.clone();
        let readers = (0..READERS)
            .map(|_| open_connection(&db_path, 8 * 1024).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let policy_generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer_generation = policy_generation.clone();
        let handle = std::thread::Builder::new()
            .name("hato-store-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_queue, writer_generation))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers,
            next_reader: AtomicUsize::new(0),
            blobs: BlobDir::open(&data_dir.join("blobs"))?,
            spool,
            queue,
            clock,
            message_expiration: i64::from(crate::types::DEFAULT_MESSAGE_EXPIRATION_HOURS)
                * HOUR_MICROS,
            connection_filter_max_entries: crate::types::DEFAULT_CONNECTION_FILTER_MAX_ENTRIES,
            policy_generation,
        })
    }

    /// See [`crate::MalwareFilterStore::content_policy_generation`].
    pub(crate) fn policy_generation(&self) -> u64 {
        self.policy_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Recipients queued from now on expire `hours` after their message arrived
    /// (`queue.message_expiration_hours`; 48 by default, Exchange's `MessageExpirationTimeout`).
    pub fn with_message_expiration(mut self, hours: u32) -> Self {
        self.message_expiration = i64::from(hours) * HOUR_MICROS;
        self
    }

    /// Each list of a tenant's connection filter policy holds at most `max` entries
    /// (`edge.connection_filter_max_entries`; 1,273 by default, Exchange Online's limit): a change
    /// that would make a list longer is refused.
    pub fn with_connection_filter_max_entries(mut self, max: usize) -> Self {
        self.connection_filter_max_entries = max;
        self
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
    policy_changed();
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
    // No backscatter (issue 10 item 7): a sender that failed SPF or DMARC at arrival is
    // likely forged, and an NDR would go to whoever the address really belongs to. Exchange
    // sends every NDR from its high-risk pool for the same reason; hato sends none at all.
    let ndr_state = if ndr_state == 1 && !notify_failure(conn, recipient)? {
        // RFC 3461 §4.1: NOTIFY=NEVER, or a NOTIFY without FAILURE, asks for no NDR; the Fail
        // itself stays in trace.
        add_event(
            conn,
            recipient,
            now,
            &EventRecord::new(
                TraceEvent::Dsn,
                "No non-delivery report: the sender asked for none (RCPT TO NOTIFY without \
                 FAILURE, RFC 3461 4.1)",
            ),
        )?;
        0
    } else if ndr_state == 1 && sender_auth_failed(conn, recipient)? {
        add_event(
            conn,
            recipient,
            now,
            &EventRecord::new(
                TraceEvent::Dsn,
                "No non-delivery report: the sender failed SPF or DMARC when the message \
                 arrived, so its address is likely forged (no backscatter)",
            ),
        )?;
        0
    } else {
        ndr_state
    };
    // A recipient whose group reports to nobody (report_to '') never owes an NDR. An NDR owed
    // now is due now, whatever the recipient waited for before (moderation holds it at the end
    // of time; deferrals push it later). Whoever held its lease is done with it.
    conn.prepare_cached(
        "UPDATE recipients SET status = ?1, \
           ndr_state = CASE WHEN ?2 = 1 AND report_to IS '' THEN 0 ELSE ?2 END, \
           next_attempt = CASE WHEN ?2 = 1 AND report_to IS NOT '' THEN ?3 ELSE next_attempt END, \
           lease_owner = NULL, lease_until = NULL, \
           updated = ?3 WHERE id = ?4",
    )?
    .execute(params![status.as_str(), ndr_state, now, recipient])?;
    Ok(())
}

/// Whether the sender of `recipient` wants to hear of its failure: its NOTIFY has FAILURE, or
/// it gave none (RFC 3461 §4.1: FAILURE,DELAY applies then, as Exchange does).
fn notify_failure(conn: &Connection, recipient: i64) -> Result<bool> {
    let notify: Option<Option<String>> = conn
        .prepare_cached("SELECT dsn_notify FROM recipients WHERE id = ?1")?
        .query_row([recipient], |r| r.get(0))
        .optional()?;
    Ok(match notify.flatten() {
        None => true,
        Some(n) => hato_core::dsn::Notify::from_stored(&n).is_none_or(|n| n.failure),
    })
}

/// Whether the message of `recipient` came from a sender that failed SPF or DMARC.
fn sender_auth_failed(conn: &Connection, recipient: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT m.sender_auth_failed FROM recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.id = ?1",
        )?
        .query_row([recipient], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some_and(|v| v != 0))
}

/// Drops the spooled content of a message once no recipient still needs it (for delivery or NDR);
/// its queue file, if it has one, is removed once this transaction commits.
pub(crate) fn release_spool(conn: &Connection, message: i64) -> Result<()> {
    let released = conn
        .prepare_cached(
            "UPDATE messages SET content = NULL WHERE id = ?1 AND content IS NOT NULL AND NOT EXISTS (\
               SELECT 1 FROM recipients WHERE message_id = ?1 \
                 AND (status = 'Pending' OR ndr_state = 1 OR success_notice IN (1, 2)))",
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

/// Applies one deferral (the one way anything in the queue waits; see [`Deferral`]) to a
/// recipient, for the work it was waiting for; `expiration` is the store's message expiration.
/// Counts the attempt, records the last error and ends the lease, then either schedules the next
/// attempt (with a `Defer` event, unless the last event already says the same) or, once the
/// recipient's time is up, fails it (delivery) or gives its NDR up.
pub(crate) fn defer(
    conn: &Connection,
    rcpt: i64,
    work: QueueWork,
    d: &Deferral,
    now: Timestamp,
    expiration: i64,
) -> Result<()> {
    match work {
        QueueWork::Delivery => defer_delivery(conn, rcpt, d, now),
        QueueWork::Ndr => defer_ndr(conn, rcpt, d, now, expiration),
    }
}

fn defer_delivery(conn: &Connection, rcpt: i64, d: &Deferral, now: Timestamp) -> Result<()> {
    let row: Option<(String, i64, i64, i64, i64, bool)> = conn
        .prepare_cached(
            "SELECT r.status, r.attempts, r.message_id, r.expires, m.received, m.sender = '' \
             FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
        )?
        .query_row([rcpt], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((status, attempts, message, expires, received, null_sender)) = row else {
        return Ok(());
    };
    if status != RecipientStatus::Pending.as_str() {
        return Ok(());
    }
    let attempt = next_attempt_number(attempts);
    record_last_error(conn, rcpt, attempt, d, now)?;
    let expires = Timestamp(expires);
    if d.keep_past_expiry || now < expires {
        // The last attempt is made at the expiry, not up to a backoff step after it.
        let mut retry = d
            .retry_at
            .unwrap_or_else(|| now.plus_seconds(retry_delay_secs(attempt)));
        if !d.keep_past_expiry {
            retry = retry.min(expires);
        }
        let bound = (!d.keep_past_expiry).then_some(expires);
        return schedule(conn, rcpt, attempt, d, retry, bound, now);
    }
    // Expired: Exchange's 4.4.7 (reference §12.2), the last error quoted for admins.
    set_status(
        conn,
        rcpt,
        RecipientStatus::Failed,
        if null_sender { 0 } else { 1 },
        now.0,
    )?;
    let hours = (expires.0 - received).max(0) / HOUR_MICROS;
    let mut reason = Reason::new(
        Stage::Queue,
        format!(
            "Not delivered within {hours} hours of its arrival: {attempt} attempt(s) were \
             deferred; last error: {} ({})",
            d.reply, d.reason.text
        ),
    )
    .rule("queue.message_expiration_hours")
    .figure("attempts", attempt)
    .figure("expires", expires.to_rfc3339())
    .figure("last_status", u32::from(d.reply.code))
    .figure("last_enhanced_status", d.reply.status.as_ref());
    if !d.remote_host.is_empty() {
        reason = reason.figure("last_remote_host", d.remote_host.as_str());
    }
    add_event(
        conn,
        rcpt,
        now.0,
        &EventRecord::fail(Refusal::new(reply::MESSAGE_EXPIRED, reason)),
    )?;
    if null_sender {
        // RFC 5321 §4.5.5 and RFC 3464: a message with a null reverse-path (an NDR) never
        // causes a report of its own; it is dropped, and trace says so.
        add_event(
            conn,
            rcpt,
            now.0,
            &EventRecord::because(
                TraceEvent::Drop,
                Reason::new(
                    Stage::Queue,
                    "Dropped: the message has a null sender (a delivery status notification), \
                     so no non-delivery report is sent for it (RFC 5321 4.5.5, RFC 3464)",
                ),
            ),
        )?;
    }
    release_spool(conn, message)
}

fn defer_ndr(
    conn: &Connection,
    rcpt: i64,
    d: &Deferral,
    now: Timestamp,
    expiration: i64,
) -> Result<()> {
    let row: Option<(i64, i64, i64, Option<i64>, i64)> = conn
        .prepare_cached(
            "SELECT r.ndr_state, r.attempts, r.message_id, \
               (SELECT max(e.time) FROM trace_events e WHERE e.recipient_id = r.id AND e.event = 'Fail'), \
               r.updated \
             FROM recipients r WHERE r.id = ?1",
        )?
        .query_row([rcpt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((1, attempts, message, failed_at, updated)) = row else {
        return Ok(());
    };
    let attempt = next_attempt_number(attempts);
    record_last_error(conn, rcpt, attempt, d, now)?;
    // The NDR has as long as a message would, counted from the failure it reports.
    let deadline = Timestamp(failed_at.unwrap_or(updated).saturating_add(expiration));
    if now < deadline {
        let retry = d
            .retry_at
            .unwrap_or_else(|| now.plus_seconds(retry_delay_secs(attempt)))
            .min(deadline);
        return schedule(conn, rcpt, attempt, d, retry, Some(deadline), now);
    }
    conn.prepare_cached("UPDATE recipients SET ndr_state = 3, updated = ?1 WHERE id = ?2")?
        .execute(params![now.0, rcpt])?;
    let hours = expiration / HOUR_MICROS;
    let reason = Reason::new(
        Stage::Queue,
        format!(
            "No non-delivery report could be generated within {hours} hours of the failure: \
             {attempt} attempt(s); last error: {} ({})",
            d.reply, d.reason.text
        ),
    )
    .rule("queue.message_expiration_hours")
    .figure("attempts", attempt);
    add_event(
        conn,
        rcpt,
        now.0,
        &EventRecord::new(
            TraceEvent::Dsn,
            format!("No non-delivery report was sent: generating it failed {attempt} time(s)"),
        )
        .with_reason(reason),
    )?;
    release_spool(conn, message)
}

/// The number of the attempt being deferred now (1-based).
fn next_attempt_number(attempts: i64) -> u32 {
    u32::try_from(attempts.max(0))
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// Counts the attempt, records its error as the recipient's last and ends its lease.
fn record_last_error(
    conn: &Connection,
    rcpt: i64,
    attempt: u32,
    d: &Deferral,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE recipients SET attempts = ?1, last_status = ?2, last_enhanced_status = ?3, \
           last_detail = ?4, last_remote_host = ?5, last_reason = ?6, \
           lease_owner = NULL, lease_until = NULL, updated = ?7 WHERE id = ?8",
    )?
    .execute(params![
        attempt,
        d.reply.code,
        d.reply.status.as_ref(),
        d.reply.text.as_ref(),
        d.remote_host,
        d.reason.to_json(),
        now.0,
        rcpt
    ])?;
    Ok(())
}

/// Sets the next attempt and writes the `Defer` event: the reply (its text the detail, its codes
/// in their fields), the remote host, and the reason with the attempt, the next attempt and the
/// expiry (`bound`; `None`: kept past it) as figures. The event is left out when the
/// recipient's last event is a `Defer` with the same reply and reason: one event per distinct
/// error in a row, however often it is retried (the row keeps the count). `Dsn` events (a delay
/// notice sent meanwhile) do not break the row.
fn schedule(
    conn: &Connection,
    rcpt: i64,
    attempt: u32,
    d: &Deferral,
    retry: Timestamp,
    bound: Option<Timestamp>,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached("UPDATE recipients SET next_attempt = ?1 WHERE id = ?2")?
        .execute(params![retry.0, rcpt])?;
    type Last = (String, Option<i64>, Option<String>, String, Option<String>);
    let last: Option<Last> = conn
        .prepare_cached(
            "SELECT event, status, enhanced_status, detail, json_extract(reason, '$.text') \
             FROM trace_events WHERE recipient_id = ?1 AND event != 'Dsn' ORDER BY id DESC LIMIT 1",
        )?
        .query_row([rcpt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let same = last.is_some_and(|(event, status, enhanced, detail, reason)| {
        event == TraceEvent::Defer.as_str()
            && status == Some(i64::from(d.reply.code))
            && enhanced.as_deref() == Some(d.reply.status.as_ref())
            && detail == d.reply.text
            && reason.as_deref() == Some(d.reason.text.as_str())
    });
    if same {
        return Ok(());
    }
    let reason = d
        .reason
        .clone()
        .figure("attempt", attempt)
        .figure("next_attempt", retry.to_rfc3339())
        .figure(
            "expires",
            bound.map_or_else(|| "never".to_string(), Timestamp::to_rfc3339),
        );
    let event = EventRecord {
        event: TraceEvent::Defer,
        reply: Some(d.reply.clone()),
        remote_host: d.remote_host.clone(),
        reason: Some(reason),
        detail: d.reply.text.to_string(),
    };
    add_event(conn, rcpt, now.0, &event)
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

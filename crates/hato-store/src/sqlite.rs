//! The embedded store: SQLite (WAL, `synchronous=FULL`), a blob directory, and the spool and
//! queue files of large messages (`spool.rs`).

use crate::blobs::BlobDir;
use crate::schema::MIGRATIONS;
use crate::spool::{self, FileSpool, QueueDir};
use crate::types::*;
use crate::{
    DirectoryStore, MailStore, Pending, QueueStore, Result, StoreError, TokenStore, TraceStore,
};
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::{
    AcceptedDomain, DomainType, Mailbox, MailboxAttributes, MailboxId, MailboxType, Tenant,
    TenantId,
};
use hato_core::reply;
use hato_core::trace::{RecipientStatus, TraceEvent};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::BTreeMap;
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
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
    /// Opens (creating on first start) the store under `data_dir`: `hato.db`, `blobs/`,
    /// `spool/` and `queue/`. Spool files (never committed) and queue files no message names (a
    /// crash between a commit and a removal) are removed.
    pub fn open(data_dir: &Path) -> Result<Self> {
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
        })
    }

    /// Where SMTP sessions put the content of large messages while it arrives
    /// (`<data_dir>/spool/`); [`QueueStore::enqueue`] moves such a file into the queue.
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

pub(crate) fn now_micros() -> i64 {
    hato_core::Clock::now(&hato_core::SystemClock).0
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

fn tenant_name(conn: &Connection, id: TenantId) -> Result<String> {
    conn.query_row("SELECT name FROM tenants WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
}

const MAILBOX_COLUMNS: &str = "m.id, m.tenant_id, t.name, m.address, m.display_name, m.type, \
     m.attributes, m.quota_bytes, m.used_bytes";

fn mailbox_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<Mailbox> {
    let id: i64 = r.get(0)?;
    let attrs: String = r.get(6)?;
    let kind: String = r.get(5)?;
    let attributes: MailboxAttributes = serde_json::from_str(&attrs)
        .map_err(|e| StoreError::Corrupt(format!("mailbox {id} attributes: {e}")))?;
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM addresses WHERE mailbox_id = ?1 AND is_primary = 0 ORDER BY address",
    )?;
    let aliases = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Mailbox {
        id,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        address: r.get(3)?,
        display_name: r.get(4)?,
        mailbox_type: MailboxType::parse(&kind).unwrap_or_default(),
        aliases,
        attributes,
        quota_bytes: r.get::<_, i64>(7)?.max(0) as u64,
        used_bytes: r.get::<_, i64>(8)?.max(0) as u64,
    })
}

fn load_mailbox(conn: &Connection, id: MailboxId) -> Result<Mailbox> {
    let sql = format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id WHERE m.id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => mailbox_from_row(conn, r),
        None => Err(StoreError::NotFound(format!("mailbox {id}"))),
    }
}

/// Checks that `address` is free (no mailbox answers to it) and its domain belongs to `tenant`.
fn claim_address(
    conn: &Connection,
    address: &str,
    tenant: TenantId,
    mailbox: MailboxId,
    primary: bool,
) -> Result<()> {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let owner: Option<i64> = conn
        .query_row(
            "SELECT tenant_id FROM domains WHERE domain = ?1",
            [domain],
            |r| r.get(0),
        )
        .optional()?;
    if owner != Some(tenant) {
        return Err(StoreError::Invalid(format!(
            "{address}: the domain {domain} is not an accepted domain of this tenant"
        )));
    }
    let taken: Option<i64> = conn
        .query_row(
            "SELECT mailbox_id FROM addresses WHERE address = ?1",
            [address],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!("address {address}")));
    }
    conn.execute(
        "INSERT INTO addresses(address, mailbox_id, is_primary) VALUES (?1, ?2, ?3)",
        params![address, mailbox, primary as i64],
    )?;
    Ok(())
}

fn attributes_json(a: &MailboxAttributes) -> Result<String> {
    serde_json::to_string(a).map_err(|e| StoreError::Invalid(e.to_string()))
}

impl DirectoryStore for SqliteStore {
    fn create_tenant(&self, name: &str) -> Pending<Tenant> {
        let name = name.to_string();
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT id FROM tenants WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("tenant {name}")));
            }
            conn.execute(
                "INSERT INTO tenants(name, created) VALUES (?1, ?2)",
                params![name, now_micros()],
            )?;
            Ok(Tenant {
                id: conn.last_insert_rowid(),
                name,
            })
        })
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, name FROM tenants ORDER BY name")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id, name FROM tenants WHERE name = ?1",
                    [name],
                    |r| {
                        Ok(Tenant {
                            id: r.get(0)?,
                            name: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn remove_tenant(&self, id: TenantId) -> Pending<()> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM tenants WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("tenant {id}")));
            }
            bump_directory(conn, id)?;
            Ok(())
        })
    }

    fn add_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
    ) -> Pending<AcceptedDomain> {
        let domain = domain.to_string();
        self.write(move |conn| {
            let name = tenant_name(conn, tenant)?;
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT tenant_id FROM domains WHERE domain = ?1",
                    [&domain],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("domain {domain}")));
            }
            conn.execute(
                "INSERT INTO domains(domain, tenant_id, type) VALUES (?1, ?2, ?3)",
                params![domain, tenant, kind.as_str()],
            )?;
            bump_directory(conn, tenant)?;
            Ok(AcceptedDomain {
                domain,
                tenant: name,
                domain_type: kind,
            })
        })
    }

    fn domains(&self, tenant: Option<TenantId>) -> Result<Vec<AcceptedDomain>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.domain, t.name, d.type FROM domains d JOIN tenants t ON t.id = d.tenant_id \
                 WHERE ?1 IS NULL OR d.tenant_id = ?1 ORDER BY d.domain",
            )?;
            let rows = stmt
                .query_map([tenant], |r| {
                    let kind: String = r.get(2)?;
                    Ok(AcceptedDomain {
                        domain: r.get(0)?,
                        tenant: r.get(1)?,
                        domain_type: DomainType::parse(&kind).unwrap_or_default(),
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn domain(&self, domain: &str) -> Result<Option<(TenantId, DomainType)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT tenant_id, type FROM domains WHERE domain = ?1")?;
            Ok(stmt
                .query_row([domain], |r| {
                    let kind: String = r.get(1)?;
                    Ok((r.get(0)?, DomainType::parse(&kind).unwrap_or_default()))
                })
                .optional()?)
        })
    }

    fn remove_domain(&self, domain: &str) -> Pending<()> {
        let domain = domain.to_string();
        self.write(move |conn| {
            let in_use: i64 = conn.query_row(
                "SELECT count(*) FROM addresses WHERE address LIKE '%@' || ?1",
                [&domain],
                |r| r.get(0),
            )?;
            if in_use > 0 {
                return Err(StoreError::Invalid(format!(
                    "domain {domain} is still used by {in_use} address(es); remove or change them first"
                )));
            }
            let owner: Option<i64> = conn
                .query_row("SELECT tenant_id FROM domains WHERE domain = ?1", [&domain], |r| r.get(0))
                .optional()?;
            let n = conn.execute("DELETE FROM domains WHERE domain = ?1", [&domain])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("domain {domain}")));
            }
            if let Some(t) = owner {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn create_mailbox(&self, m: NewMailbox) -> Pending<Mailbox> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO mailboxes(tenant_id, address, display_name, type, attributes, quota_bytes, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.tenant_id,
                    m.address,
                    m.display_name,
                    m.mailbox_type.as_str(),
                    attributes_json(&m.attributes)?,
                    m.quota_bytes as i64,
                    now_micros()
                ],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("address {}", m.address)),
                other => other,
            })?;
            let id = conn.last_insert_rowid();
            claim_address(conn, &m.address, m.tenant_id, id, true)?;
            for alias in &m.aliases {
                if alias != &m.address {
                    claim_address(conn, alias, m.tenant_id, id, false)?;
                }
            }
            bump_directory(conn, m.tenant_id)?;
            load_mailbox(conn, id)
        })
    }

    fn update_mailbox(&self, id: MailboxId, c: MailboxChange) -> Pending<Mailbox> {
        self.write(move |conn| {
            let current = load_mailbox(conn, id)?;
            if let Some(name) = &c.display_name {
                conn.execute(
                    "UPDATE mailboxes SET display_name = ?1 WHERE id = ?2",
                    params![name, id],
                )?;
            }
            if let Some(kind) = c.mailbox_type {
                conn.execute(
                    "UPDATE mailboxes SET type = ?1 WHERE id = ?2",
                    params![kind.as_str(), id],
                )?;
            }
            if let Some(a) = &c.attributes {
                conn.execute(
                    "UPDATE mailboxes SET attributes = ?1 WHERE id = ?2",
                    params![attributes_json(a)?, id],
                )?;
            }
            if let Some(q) = c.quota_bytes {
                conn.execute(
                    "UPDATE mailboxes SET quota_bytes = ?1 WHERE id = ?2",
                    params![q as i64, id],
                )?;
            }
            if let Some(aliases) = &c.aliases {
                conn.execute(
                    "DELETE FROM addresses WHERE mailbox_id = ?1 AND is_primary = 0",
                    [id],
                )?;
                for alias in aliases {
                    if alias != &current.address {
                        claim_address(conn, alias, current.tenant_id, id, false)?;
                    }
                }
            }
            bump_directory(conn, current.tenant_id)?;
            load_mailbox(conn, id)
        })
    }

    fn mailboxes(&self, tenant: Option<TenantId>) -> Result<Vec<Mailbox>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes m JOIN tenants t ON t.id = m.tenant_id \
                 WHERE ?1 IS NULL OR m.tenant_id = ?1 ORDER BY m.address"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([tenant])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(mailbox_from_row(conn, r)?);
            }
            Ok(out)
        })
    }

    fn mailbox_by_address(&self, address: &str) -> Result<Option<Mailbox>> {
        self.read(|conn| {
            let id: Option<i64> = conn
                .prepare_cached("SELECT mailbox_id FROM addresses WHERE address = ?1")?
                .query_row([address], |r| r.get(0))
                .optional()?;
            id.map(|id| load_mailbox(conn, id)).transpose()
        })
    }

    fn remove_mailbox(&self, id: MailboxId) -> Pending<()> {
        self.write(move |conn| {
            let owner = tenant_of(conn, "mailboxes", id)?;
            let n = conn.execute("DELETE FROM mailboxes WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("mailbox {id}")));
            }
            if let Some(t) = owner {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }
}

// ----- tokens -------------------------------------------------------------------------------------

impl TokenStore for SqliteStore {
    fn add_token(&self, token_hash: &str, info: TokenInfo) -> Pending<()> {
        let hash = token_hash.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tokens(hash, role, tenant_id, created, mailbox_id, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, info.role.as_str(), info.tenant_id, now_micros(), info.mailbox_id, info.expires.map(|t| t.0)],
            )?;
            Ok(())
        })
    }

    fn token(&self, token_hash: &str) -> Result<Option<TokenInfo>> {
        self.read(|conn| {
            let info = conn
                .prepare_cached(
                    "SELECT role, tenant_id, mailbox_id, expires FROM tokens WHERE hash = ?1",
                )?
                .query_row([token_hash], |r| {
                    let role: String = r.get(0)?;
                    Ok(
                        Role::parse(&role).map(|role| -> rusqlite::Result<TokenInfo> {
                            Ok(TokenInfo {
                                role,
                                tenant_id: r.get(1)?,
                                mailbox_id: r.get(2)?,
                                expires: r.get::<_, Option<i64>>(3)?.map(Timestamp),
                            })
                        }),
                    )
                })
                .optional()?;
            Ok(info.flatten().transpose()?)
        })
    }
}

// ----- queue --------------------------------------------------------------------------------------

pub(crate) fn add_event(
    conn: &Connection,
    recipient: i64,
    time: i64,
    event: TraceEvent,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO trace_events(recipient_id, time, event, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![recipient, time, event.as_str(), detail])?;
    Ok(())
}

pub(crate) fn set_status(
    conn: &Connection,
    recipient: i64,
    status: RecipientStatus,
    ndr_state: i64,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE recipients SET status = ?1, ndr_state = ?2, updated = ?3 WHERE id = ?4",
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

/// A recipient that stays pending until `retry_at`; its `Defer` event is written once per
/// reason, not once per retry.
fn defer(
    conn: &Connection,
    rcpt: i64,
    reason: &str,
    retry_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached("UPDATE recipients SET next_attempt = ?1, updated = ?2 WHERE id = ?3")?
        .execute(params![retry_at.0, now.0, rcpt])?;
    let last: Option<(String, String)> = conn
        .prepare_cached("SELECT event, detail FROM trace_events WHERE recipient_id = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([rcpt], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if last
        .as_ref()
        .is_none_or(|(event, detail)| event != TraceEvent::Defer.as_str() || detail != reason)
    {
        add_event(conn, rcpt, now.0, TraceEvent::Defer, reason)?;
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

impl QueueStore for SqliteStore {
    /// A spooled message's file is synced and moved into the queue directory here, on the
    /// caller's thread (it blocks: call it from blocking code), before its row is committed.
    fn enqueue(&self, mut m: NewMessage) -> Pending<()> {
        let spooled_len = m.spooled.as_ref().map_or(0, |s| s.len);
        let spool = match m.spooled.take() {
            None => None,
            Some(spooled) => match self.queue.adopt(spooled, &m.trace_id) {
                Ok(name) => Some(name),
                Err(e) => return Pending::failed(e),
            },
        };
        // Removes the queue file if its row is not written (the savepoint rolls back).
        let unclaimed = spool
            .clone()
            .map(|name| spool::Unclaimed::new(self.queue.clone(), name));
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO messages(trace_id, received, sender, client_ip, helo, message_id, subject, size, content, spool) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                m.trace_id,
                m.received.0,
                m.sender,
                m.client_ip,
                m.helo,
                m.message_id.as_deref().unwrap_or(""),
                m.subject.as_deref().unwrap_or(""),
                (m.content.len() as u64 + spooled_len) as i64,
                m.content,
                spool
            ])?;
            let message = conn.last_insert_rowid();
            let mut insert = conn.prepare_cached(
                "INSERT INTO recipients(message_id, tenant_id, address, route, mailbox_id, group_id, status, next_attempt, updated) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?7, 'Pending', ?6, ?6)",
            )?;
            for r in &m.recipients {
                let (mailbox, group) = match r.route {
                    Route::Local(id) => (Some(id), None),
                    Route::Group(id) => (None, Some(id)),
                    _ => (None, None),
                };
                insert.execute(params![message, r.tenant_id, r.address, r.route.kind(), mailbox, m.received.0, group])?;
                let id = conn.last_insert_rowid();
                add_event(conn, id, m.received.0, TraceEvent::Receive, &m.receive_detail)?;
                for (event, detail) in &r.extra_events {
                    add_event(conn, id, m.received.0, *event, detail)?;
                }
            }
            // An NDR reports on failed recipients of another message: mark them answered.
            for original in &m.reports_on {
                conn.prepare_cached("UPDATE recipients SET ndr_state = 2 WHERE id = ?1")?.execute([original])?;
                let detail = format!("Non-delivery report sent to the sender (trace id {})", m.trace_id);
                add_event(conn, *original, m.received.0, TraceEvent::Dsn, &detail)?;
                let msg: i64 = conn.query_row("SELECT message_id FROM recipients WHERE id = ?1", [original], |r| r.get(0))?;
                release_spool(conn, msg)?;
            }
            if let Some(file) = unclaimed {
                file.claimed();
            }
            Ok(())
        })
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedMessage>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, r.address, r.tenant_id, r.route, r.mailbox_id, m.id, m.trace_id, m.sender, m.received, r.group_id, r.approved \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.status = 'Pending' AND r.route IN ('local', 'relay', 'group', 'postmaster') AND r.next_attempt <= ?1 \
                 ORDER BY r.next_attempt, r.id LIMIT ?2",
            )?;
            let mut by_message: BTreeMap<i64, QueuedMessage> = BTreeMap::new();
            let mut rows = stmt.query(params![now.0, limit as i64])?;
            while let Some(r) = rows.next()? {
                let message: i64 = r.get(5)?;
                let kind: String = r.get(3)?;
                let rcpt = QueuedRecipient {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    tenant_id: r.get(2)?,
                    route: route_from(&kind, r.get(4)?, r.get(9)?),
                    approved: r.get::<_, i64>(10)? != 0,
                };
                if let Some(q) = by_message.get_mut(&message) {
                    q.recipients.push(rcpt);
                } else {
                    by_message.insert(
                        message,
                        QueuedMessage {
                            id: message,
                            trace_id: r.get(6)?,
                            sender: r.get(7)?,
                            received: Timestamp(r.get(8)?),
                            content: Vec::new(),
                            spool: None,
                            recipients: vec![rcpt],
                        },
                    );
                }
            }
            let mut content = conn.prepare_cached("SELECT content, spool FROM messages WHERE id = ?1")?;
            let mut out = Vec::with_capacity(by_message.len());
            // A bounded amount of content at once; the messages left out come in the next batch.
            let mut loaded = 0;
            for (id, mut q) in by_message {
                if loaded >= crate::DUE_CONTENT_BUDGET {
                    break;
                }
                let (c, spool): (Option<Vec<u8>>, Option<String>) =
                    content.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                q.content = c.ok_or_else(|| StoreError::Corrupt(format!("message {id} lost its spooled content")))?;
                q.spool = spool.map(|name| self.queue.path(&name)).transpose()?;
                loaded += q.content.len();
                out.push(q);
            }
            Ok(out)
        })
    }

    fn complete_deliveries(&self, outcomes: Vec<DeliveryOutcome>, now: Timestamp) -> Pending<()> {
        self.write(move |conn| {
            for o in &outcomes {
                if let Some(data) = &o.blob.inline {
                    conn.prepare_cached("INSERT OR IGNORE INTO blobs(hash, data) VALUES (?1, ?2)")?
                        .execute(params![o.blob.hash, data])?;
                }
                for (rcpt, outcome) in &o.recipients {
                    // Only a recipient still pending is acted on: a retried batch delivers nothing twice.
                    let status: Option<String> = conn
                        .prepare_cached("SELECT status FROM recipients WHERE id = ?1")?
                        .query_row([rcpt], |r| r.get(0))
                        .optional()?;
                    if status.as_deref() != Some("Pending") {
                        continue;
                    }
                    let ndr_if_failed = if o.null_sender { 0 } else { 1 };
                    match outcome {
                        RecipientOutcome::Store { mailbox, folder } => {
                            let quota: Option<(i64, i64, String)> = conn
                                .prepare_cached("SELECT used_bytes, quota_bytes, address FROM mailboxes WHERE id = ?1")?
                                .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                                .optional()?;
                            match quota {
                                None => {
                                    let text = reply::RECIPIENT_NOT_FOUND.to_string();
                                    set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                                    add_event(conn, *rcpt, now.0, TraceEvent::Fail, &format!("{text} (the mailbox was removed after the message was accepted)"))?;
                                }
                                Some((used, quota, _)) if used + o.size as i64 > quota => {
                                    let text = reply::MAILBOX_FULL.to_string();
                                    set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                                    add_event(conn, *rcpt, now.0, TraceEvent::Fail, &format!("{text} (mailbox uses {used} of {quota} bytes; message is {} bytes)", o.size))?;
                                }
                                Some((_, _, address)) => {
                                    conn.prepare_cached(
                                        "INSERT INTO mail_items(mailbox_id, folder, blob, received, from_header, subject, size, recipient_id) \
                                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                    )?
                                    .execute(params![mailbox, folder.as_str(), o.blob.hash, now.0, o.from_header, o.subject, o.size as i64, rcpt])?;
                                    conn.prepare_cached("UPDATE mailboxes SET used_bytes = used_bytes + ?1 WHERE id = ?2")?
                                        .execute(params![o.size as i64, mailbox])?;
                                    set_status(conn, *rcpt, RecipientStatus::Delivered, 0, now.0)?;
                                    add_event(conn, *rcpt, now.0, TraceEvent::Deliver, &format!(
                                        "Delivered to folder {} of mailbox {address}", folder.display_name()))?;
                                }
                            }
                        }
                        RecipientOutcome::Fail { reply } => {
                            set_status(conn, *rcpt, RecipientStatus::Failed, ndr_if_failed, now.0)?;
                            add_event(conn, *rcpt, now.0, TraceEvent::Fail, reply)?;
                        }
                        RecipientOutcome::Defer { reason, retry_at } => defer(conn, *rcpt, reason, *retry_at, now)?,
                    }
                }
                release_spool(conn, o.message_id)?;
            }
            Ok(())
        })
    }

    fn due_ndrs(&self, limit: usize) -> Result<Vec<NdrWork>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, r.address, r.tenant_id, m.id, m.trace_id, m.sender, m.received, \
                   (SELECT detail FROM trace_events e WHERE e.recipient_id = r.id AND e.event = 'Fail' ORDER BY e.id DESC LIMIT 1), \
                   r.report_to \
                 FROM recipients r JOIN messages m ON m.id = r.message_id \
                 WHERE r.ndr_state = 1 ORDER BY r.message_id, r.id LIMIT ?1",
            )?;
            // One NDR per message and addressee: the sender, or (report_to_originator off) the
            // group's owners.
            let mut by_key: BTreeMap<(i64, String), NdrWork> = BTreeMap::new();
            let mut rows = stmt.query([limit as i64])?;
            while let Some(r) = rows.next()? {
                let failed = FailedRecipient {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    tenant_id: r.get(2)?,
                    reply: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                };
                let message: i64 = r.get(3)?;
                let sender: String = r.get(5)?;
                let to = r.get::<_, Option<String>>(8)?.unwrap_or(sender);
                match by_key.get_mut(&(message, to.clone())) {
                    Some(w) => w.failed.push(failed),
                    None => {
                        by_key.insert((message, to.clone()), NdrWork {
                            message_id: message,
                            trace_id: r.get(4)?,
                            sender: to,
                            received: Timestamp(r.get(6)?),
                            content: Vec::new(),
                            failed: vec![failed],
                        });
                    }
                }
            }
            let mut content = conn.prepare_cached("SELECT content, spool FROM messages WHERE id = ?1")?;
            let mut out = Vec::new();
            for ((id, _), mut w) in by_key {
                let (c, spool): (Option<Vec<u8>>, Option<String>) =
                    content.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                w.content = c.unwrap_or_default();
                // An NDR quotes the original's header block only; without its queue file it
                // still goes out, quoting what is left.
                if let Some(name) = spool {
                    match self.queue.head(&name, crate::HEAD_BYTES) {
                        Ok(head) => w.content.extend(head),
                        Err(e) => tracing::warn!("message {id}: queue file {name}: {e}"),
                    }
                }
                out.push(w);
            }
            Ok(out)
        })
    }
}

// ----- mailboxes' content -------------------------------------------------------------------------

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
        if content.len() <= crate::INLINE_BLOB_MAX {
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

    fn stage_spooled(&self, head: Vec<u8>, spool: &Path) -> Result<(StagedBlob, u64)> {
        let (hash, size) = self.blobs.put_streamed(&head, spool)?;
        Ok((StagedBlob { hash, inline: None }, size))
    }

    fn collect_garbage(&self, min_age: std::time::Duration) -> Result<(usize, usize)> {
        let rows = self
            .write(|conn| {
                Ok(conn.execute(
                    "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM mail_items m WHERE m.blob = blobs.hash) \
                     AND NOT EXISTS (SELECT 1 FROM group_items g WHERE g.blob = blobs.hash)",
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
                         OR EXISTS (SELECT 1 FROM group_items WHERE blob = ?1)",
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

// ----- message trace ------------------------------------------------------------------------------

impl TraceStore for SqliteStore {
    fn trace(&self, q: &TraceQuery) -> Result<Vec<TraceRow>> {
        let mut sql = String::from(
            "SELECT m.received, m.sender, r.address, m.subject, r.status, m.trace_id, m.message_id, m.client_ip, m.size \
             FROM recipients r JOIN messages m ON m.id = r.message_id WHERE 1 = 1",
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = q.tenant {
            arg(&mut sql, " AND r.tenant_id = ?", Box::new(t));
        }
        if let Some(s) = &q.sender {
            arg(&mut sql, " AND m.sender = ?", Box::new(s.to_lowercase()));
        }
        if let Some(s) = &q.recipient {
            arg(&mut sql, " AND r.address = ?", Box::new(s.to_lowercase()));
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
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
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
        let limit = if q.limit == 0 { 5000 } else { q.limit };
        sql.push_str(&format!(" ORDER BY m.received DESC, r.id LIMIT {limit}"));
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            let rows = stmt
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
            Ok(rows)
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
                "SELECT r.address, e.time, e.event, e.detail FROM trace_events e \
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
            Ok(n)
        })
    }
}

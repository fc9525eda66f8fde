//! Large messages on disk: the SMTP session's spool files (`<data_dir>/spool/`) and the queue
//! files they become once committed (`<data_dir>/queue/`).
//!
//! A message larger than the session's spool threshold is written to a spool file while it
//! arrives. When it is queued, the store syncs that file, moves it (a rename: the content is not
//! copied) to `queue/<trace id>`, syncs the queue directory, and only then commits the message
//! row that names it, so the `250` still means durable. The Received header (and Message-ID)
//! hato puts in front stay in the row (`messages.content`); the queue file is the rest.
//!
//! When no recipient needs the content any more, the row forgets the file in the same
//! transaction and the file is removed after that transaction commits (a `TEMP` table carries
//! the names across, so a rolled-back change removes nothing). At start-up, spool files (never
//! committed) and queue files no row names (a crash between a commit and a removal, or between
//! a move and a commit) are removed.

use crate::{Result, StoreError};
use hato_core::body::{Spool, SpoolFile, Spooled};
use rusqlite::{Connection, OptionalExtension};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates spool files in `<data_dir>/spool/`.
#[derive(Debug)]
pub struct FileSpool {
    dir: PathBuf,
    counter: AtomicU64,
}

impl FileSpool {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(FileSpool {
            dir: dir.to_path_buf(),
            counter: AtomicU64::new(0),
        })
    }

    /// Removes every spool file: at start-up, none of them was committed.
    pub(crate) fn clear(&self) -> Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Spool for FileSpool {
    fn create(&self) -> io::Result<Box<dyn SpoolFile>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{}-{n}", std::process::id()));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Box::new(FileSpoolFile {
            file,
            path,
            keep: false,
        }))
    }
}

#[derive(Debug)]
struct FileSpoolFile {
    file: fs::File,
    path: PathBuf,
    keep: bool,
}

impl Write for FileSpoolFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl SpoolFile for FileSpoolFile {
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(ReadAt {
            file: &self.file,
            pos: 0,
        }))
    }

    fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for FileSpoolFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Reads a file from its start without moving the offset its writer uses.
struct ReadAt<'a> {
    file: &'a fs::File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The queue files of committed large messages, `<data_dir>/queue/<trace id>`.
#[derive(Debug, Clone)]
pub(crate) struct QueueDir {
    dir: PathBuf,
}

impl QueueDir {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(QueueDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of a queue file; the name comes from the database, so it is checked.
    pub(crate) fn path(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(StoreError::Corrupt(format!(
                "not a queue file name: {name:?}"
            )));
        }
        Ok(self.dir.join(name))
    }

    /// Makes a spooled message's content a durable queue file named `name`: synced, moved (or,
    /// for a spool file that is not a file, copied), and the move synced. Returns the name.
    pub(crate) fn adopt(&self, spooled: Spooled, name: &str) -> Result<String> {
        let Spooled { mut file, .. } = spooled;
        let target = self.path(name)?;
        file.flush()?;
        match file.path().map(Path::to_path_buf) {
            Some(from) => {
                file.sync()?;
                fs::rename(&from, &target)?;
                file.keep();
            }
            None => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)?;
                let copied = io::copy(&mut file.reader()?, &mut out).and_then(|_| out.sync_data());
                if let Err(e) = copied {
                    let _ = fs::remove_file(&target);
                    return Err(e.into());
                }
            }
        }
        // The rename (or the new file) is durable once the directory entry is synced.
        if let Err(e) = fs::File::open(&self.dir).and_then(|d| d.sync_all()) {
            let _ = fs::remove_file(&target);
            return Err(e.into());
        }
        Ok(name.to_string())
    }

    pub(crate) fn remove(&self, name: &str) {
        match self.path(name).map(fs::remove_file) {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Ok(Err(e)) => tracing::warn!("could not remove queue file {name}: {e}"),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// Removes queue files that no message names (start-up, before any write). Returns how many.
    pub(crate) fn sweep(&self, conn: &Connection) -> Result<usize> {
        let mut n = 0;
        let mut named = conn.prepare("SELECT 1 FROM messages WHERE spool = ?1")?;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = named.query_row([&name], |_| Ok(())).optional()?.is_some();
            if !known {
                fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The first `max` bytes of a queue file.
    pub(crate) fn head(&self, name: &str, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        fs::File::open(self.path(name)?)?
            .take(max as u64)
            .read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A queue file whose message row is being written: removed when dropped, unless the row was
/// written ([`Unclaimed::claimed`]).
pub(crate) struct Unclaimed {
    queue: QueueDir,
    name: Option<String>,
}

impl Unclaimed {
    pub(crate) fn new(queue: QueueDir, name: String) -> Self {
        Unclaimed {
            queue,
            name: Some(name),
        }
    }

    pub(crate) fn claimed(mut self) {
        self.name = None;
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            self.queue.remove(&name);
        }
    }
}

/// Creates the connection's table of queue files to remove after the next commit.
pub(crate) fn prepare_connection(conn: &Connection) -> Result<()> {
    conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS spool_trash(name TEXT NOT NULL)")?;
    Ok(())
}

/// Notes, inside the current transaction, that a message's queue file goes once it commits.
pub(crate) fn trash_queue_file(conn: &Connection, message: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO temp.spool_trash(name) SELECT spool FROM messages WHERE id = ?1 AND spool IS NOT NULL",
    )?
    .execute([message])?;
    Ok(())
}

/// After a commit: removes (on a thread of its own) the queue files the committed transaction
/// gave up.
pub(crate) fn after_commit(conn: &Connection, queue: &QueueDir) {
    let names: Result<Vec<String>> = (|| {
        let mut stmt = conn.prepare_cached("SELECT name FROM temp.spool_trash")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<Vec<String>, _>>()?;
        if !names.is_empty() {
            conn.prepare_cached("DELETE FROM temp.spool_trash")?
                .execute([])?;
        }
        Ok(names)
    })();
    match names {
        Ok(names) if names.is_empty() => {}
        Ok(names) => {
            // Unlinking large files takes a while; the writer thread has commits to make.
            let queue = queue.clone();
            let removal = std::thread::Builder::new()
                .name("hato-queue-cleanup".into())
                .spawn(move || {
                    for name in names {
                        queue.remove(&name);
                    }
                });
            if let Err(e) = removal {
                // The files stay until the next start-up's sweep.
                tracing::warn!("could not start removing queue files: {e}");
            }
        }
        Err(e) => tracing::warn!("could not read the queue files to remove: {e}"),
    }
}

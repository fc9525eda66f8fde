//! A message's content as it arrives: in memory up to a threshold, past it in a spool file, so
//! that a session holds a bounded amount of memory whatever the message's size.
//!
//! This module does no I/O of its own: the file comes from an injected [`Spool`] (the store's,
//! under its data directory; an in-memory stand-in in tests), and the store later moves that
//! file into its queue instead of copying the content.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// A file that holds a message's content past the in-memory threshold. Dropping it removes the
/// file, unless [`SpoolFile::keep`] was called because the store has taken it over.
pub trait SpoolFile: Write + Send + fmt::Debug {
    /// Where the file is, so that the store can move (rename) it into its queue; `None` for an
    /// in-memory stand-in, whose content the store then copies.
    fn path(&self) -> Option<&Path>;
    /// Makes what was written durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Reads the content from its start.
    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>>;
    /// The file now belongs to someone else: dropping this handle must leave it alone.
    fn keep(&mut self);
}

/// Creates spool files.
pub trait Spool: Send + Sync + fmt::Debug {
    fn create(&self) -> io::Result<Box<dyn SpoolFile>>;
}

/// Once content is spooled, bytes are gathered in a buffer of this size between writes, so that
/// the DATA receiver's small appends do not each cost a system call.
pub const SPOOL_WRITE_BUFFER: usize = 64 * 1024;

/// Where the content of a finished message is.
#[derive(Debug)]
pub enum StoredBody {
    Memory(Vec<u8>),
    Spooled(Spooled),
}

/// Content in a spool file, complete and flushed.
#[derive(Debug)]
pub struct Spooled {
    pub file: Box<dyn SpoolFile>,
    pub len: u64,
}

impl Spooled {
    /// The whole content, read from the file (which stays): for a copy that must be in
    /// memory. Bounded by the message size limit the DATA receiver enforced.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.file.reader()?.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Message content being received (or already received).
pub struct MessageBody {
    threshold: usize,
    spool: Option<Arc<dyn Spool>>,
    /// The content while it is in memory; the write buffer once it is spooled.
    mem: Vec<u8>,
    file: Option<Box<dyn SpoolFile>>,
    len: u64,
    /// The first write error; the rest of the content is then only counted.
    error: Option<io::Error>,
}

impl MessageBody {
    /// An empty body that stays in memory up to `threshold` bytes and continues in a file of
    /// `spool` past it (in memory whatever its size when there is no spool).
    pub fn new(threshold: usize, spool: Option<Arc<dyn Spool>>) -> Self {
        MessageBody {
            threshold,
            spool,
            mem: Vec::new(),
            file: None,
            len: 0,
            error: None,
        }
    }

    /// Content received so far, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_spooled(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes of memory the body holds (its in-memory content or its write buffer).
    pub fn memory_used(&self) -> usize {
        self.mem.capacity()
    }

    /// The content, when it is in memory.
    pub fn in_memory(&self) -> Option<&[u8]> {
        match self.file {
            None => Some(&self.mem),
            Some(_) => None,
        }
    }

    /// Appends content. A write error is kept for [`MessageBody::finish`]; what follows it is
    /// counted but not stored, so the receiver stays in step with the client.
    pub fn append(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.store(bytes) {
            self.error = Some(e);
            // Nothing more will be stored: free what is held.
            self.mem = Vec::new();
        }
    }

    fn store(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            let needed = self.mem.len() + bytes.len();
            match &self.spool {
                Some(spool) if needed > self.threshold => {
                    let mut file = spool.create()?;
                    file.write_all(&self.mem)?;
                    self.file = Some(file);
                    // The in-memory content is in the file now; from here on only a write
                    // buffer is held.
                    self.mem = Vec::with_capacity(SPOOL_WRITE_BUFFER);
                }
                _ => {
                    if needed > self.mem.capacity() {
                        // Grow by doubling, but never past the threshold when the rest can go
                        // to a file: the in-memory part stays within it.
                        let mut target = needed.max(self.mem.capacity() * 2).max(4096);
                        if self.spool.is_some() {
                            target = target.min(self.threshold);
                        }
                        self.mem.reserve_exact(target - self.mem.len());
                    }
                    self.mem.extend_from_slice(bytes);
                    return Ok(());
                }
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if self.mem.len() + bytes.len() > SPOOL_WRITE_BUFFER {
            file.write_all(&self.mem)?;
            self.mem.clear();
        }
        if bytes.len() >= SPOOL_WRITE_BUFFER {
            file.write_all(bytes)?;
        } else {
            self.mem.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Writes out what is buffered; the first write error, if there was one.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if let Some(file) = self.file.as_mut() {
            let written = file.write_all(&self.mem).and_then(|_| file.flush());
            self.mem.clear();
            if let Err(e) = written {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                self.mem = Vec::new();
                return Err(copy);
            }
        }
        Ok(())
    }

    /// The first `max` bytes of the content (or all of it, when shorter): enough for its header
    /// block.
    pub fn head(&mut self, max: usize) -> io::Result<Vec<u8>> {
        self.finish()?;
        match self.file.as_mut() {
            None => Ok(self.mem[..self.mem.len().min(max)].to_vec()),
            Some(file) => {
                let mut out = Vec::with_capacity(max.min(self.len as usize));
                file.reader()?.take(max as u64).read_to_end(&mut out)?;
                Ok(out)
            }
        }
    }

    /// The whole content (reads the spool file): for tests and small messages.
    pub fn to_vec(&mut self) -> io::Result<Vec<u8>> {
        self.head(usize::MAX)
    }

    /// The finished content, in memory or in its (flushed) spool file.
    pub fn into_stored(mut self) -> io::Result<StoredBody> {
        self.finish()?;
        let len = self.len;
        match self.file.take() {
            None => Ok(StoredBody::Memory(std::mem::take(&mut self.mem))),
            Some(file) => Ok(StoredBody::Spooled(Spooled { file, len })),
        }
    }
}

impl Default for MessageBody {
    fn default() -> Self {
        MessageBody::new(usize::MAX, None)
    }
}

impl From<Vec<u8>> for MessageBody {
    fn from(content: Vec<u8>) -> Self {
        MessageBody {
            len: content.len() as u64,
            mem: content,
            ..MessageBody::default()
        }
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBody")
            .field("len", &self.len)
            .field("spooled", &self.file.is_some())
            .field("error", &self.error)
            .finish()
    }
}

/// In-memory spool files, for tests: they record what was written and whether they were
/// removed.
pub mod memory {
    use super::*;
    use std::sync::Mutex;

    /// One file a [`MemorySpool`] created.
    #[derive(Debug, Default, Clone)]
    pub struct MemoryFileState {
        pub content: Vec<u8>,
        /// False once the file was removed (its handle dropped without `keep`).
        pub exists: bool,
    }

    pub type Files = Arc<Mutex<Vec<MemoryFileState>>>;

    #[derive(Debug, Default)]
    pub struct MemorySpool {
        /// Every file created.
        pub files: Files,
        /// When set, writes fail (a full disk).
        pub fail_writes: bool,
    }

    #[derive(Debug)]
    struct MemoryFile {
        files: Files,
        index: usize,
        fail: bool,
        kept: bool,
    }

    impl Spool for MemorySpool {
        fn create(&self) -> io::Result<Box<dyn SpoolFile>> {
            let mut files = self
                .files
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            files.push(MemoryFileState {
                content: Vec::new(),
                exists: true,
            });
            Ok(Box::new(MemoryFile {
                files: self.files.clone(),
                index: files.len() - 1,
                fail: self.fail_writes,
                kept: false,
            }))
        }
    }

    impl MemoryFile {
        fn with<R>(&self, f: impl FnOnce(&mut MemoryFileState) -> R) -> io::Result<R> {
            let mut files = self
                .files
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            files
                .get_mut(self.index)
                .map(f)
                .ok_or_else(|| io::Error::other("no such file"))
        }
    }

    impl Write for MemoryFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::Error::other("no space left on device"));
            }
            self.with(|f| f.content.extend_from_slice(buf))?;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SpoolFile for MemoryFile {
        fn path(&self) -> Option<&Path> {
            None
        }

        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }

        fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
            let content = self.with(|f| f.content.clone())?;
            Ok(Box::new(io::Cursor::new(content)))
        }

        fn keep(&mut self) {
            self.kept = true;
        }
    }

    impl Drop for MemoryFile {
        fn drop(&mut self) {
            if !self.kept {
                let _ = self.with(|f| {
                    f.content.clear();
                    f.exists = false;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemorySpool;
    use super::*;

    fn spool() -> Arc<MemorySpool> {
        Arc::new(MemorySpool::default())
    }

    #[test]
    fn small_content_stays_in_memory() {
        let s = spool();
        let mut body = MessageBody::new(100, Some(s.clone()));
        body.append(b"hello ");
        body.append(b"world");
        assert!(!body.is_spooled());
        assert_eq!(body.in_memory(), Some(&b"hello world"[..]));
        assert!(s.files.lock().unwrap().is_empty());
        assert!(
            matches!(body.into_stored().unwrap(), StoredBody::Memory(c) if c == b"hello world")
        );
    }

    #[test]
    fn past_the_threshold_content_continues_in_a_file() {
        let s = spool();
        let mut body = MessageBody::new(1000, Some(s.clone()));
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            let line = format!("line {i}\r\n");
            body.append(line.as_bytes());
            expected.extend_from_slice(line.as_bytes());
            // The in-memory part never exceeds the threshold, nor the write buffer once spooled.
            assert!(body.memory_used() <= SPOOL_WRITE_BUFFER.max(1000));
        }
        assert!(body.is_spooled());
        assert_eq!(body.len(), expected.len() as u64);
        assert_eq!(body.head(12).unwrap(), b"line 0\r\nline");
        assert_eq!(body.to_vec().unwrap(), expected);
        let StoredBody::Spooled(spooled) = body.into_stored().unwrap() else {
            panic!("not spooled")
        };
        assert_eq!(spooled.len, expected.len() as u64);
        assert_eq!(s.files.lock().unwrap()[0].content, expected);
    }

    #[test]
    fn a_dropped_body_removes_its_file() {
        let s = spool();
        let mut body = MessageBody::new(10, Some(s.clone()));
        body.append(&[b'x'; 100]);
        assert!(body.is_spooled());
        assert!(s.files.lock().unwrap()[0].exists);
        drop(body);
        assert!(
            !s.files.lock().unwrap()[0].exists,
            "the spool file was left behind"
        );
    }

    #[test]
    fn write_errors_are_kept_for_finish() {
        let s = Arc::new(MemorySpool {
            fail_writes: true,
            ..Default::default()
        });
        let mut body = MessageBody::new(10, Some(s));
        body.append(&[b'x'; 100]);
        body.append(&[b'y'; 100]);
        assert_eq!(body.len(), 200);
        assert!(body.finish().is_err());
        assert!(body.finish().is_err(), "the error stays");
        assert_eq!(body.memory_used(), 0);
    }

    #[test]
    fn without_a_spool_everything_stays_in_memory() {
        let mut body = MessageBody::new(10, None);
        body.append(&[b'x'; 100]);
        assert!(!body.is_spooled());
        assert_eq!(body.to_vec().unwrap().len(), 100);
    }
}

//! Content-addressed blob files: `<dir>/ab/cdef…` named by the SHA-256 of their content, written
//! to a temporary name, synced, then renamed into place, so a crash never leaves a partial blob
//! under a real name.

use crate::error::{Result, StoreError};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Content up to this size is kept in the database rather than as a file.
pub const INLINE_BLOB_MAX: usize = 64 * 1024;

#[derive(Debug)]
pub struct BlobDir {
    root: PathBuf,
    tmp_counter: AtomicU64,
}

pub fn hash_of(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

impl BlobDir {
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("tmp"))?;
        Ok(BlobDir {
            root: root.to_path_buf(),
            tmp_counter: AtomicU64::new(0),
        })
    }

    fn path_of(&self, hash: &str) -> Result<PathBuf> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!("not a blob hash: {hash}")));
        }
        Ok(self.root.join(&hash[..2]).join(&hash[2..]))
    }

    /// Writes `content` unless a blob with the same hash exists; returns the hash.
    pub fn put(&self, content: &[u8]) -> Result<String> {
        let hash = hash_of(content);
        let path = self.path_of(&hash)?;
        if path.exists() {
            // Mark it recently used, so garbage collection (which spares young files) cannot
            // remove it before the delivery that now references it commits.
            if let Ok(f) = fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            return Ok(hash);
        }
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Io("blob path has no parent".into()))?;
        fs::create_dir_all(dir)?;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(content)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, &path)?;
        // The rename is durable once the directory entry is synced.
        fs::File::open(dir)?.sync_all()?;
        Ok(hash)
    }

    /// [`BlobDir::put`] for content that is `head` followed by the file at `rest`, streamed:
    /// hashed in one pass, copied in another, never whole in memory. Returns the hash and size.
    pub fn put_streamed(&self, head: &[u8], rest: &Path) -> Result<(String, u64)> {
        let mut hasher = Sha256::new();
        hasher.update(head);
        let mut size = head.len() as u64;
        let mut buf = vec![0u8; 64 * 1024];
        let mut f = fs::File::open(rest)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let hash = hex::encode(hasher.finalize());
        let path = self.path_of(&hash)?;
        if path.exists() {
            if let Ok(f) = fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            return Ok((hash, size));
        }
        let dir = path
            .parent()
            .ok_or_else(|| StoreError::Io("blob path has no parent".into()))?;
        fs::create_dir_all(dir)?;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut out = fs::File::create(&tmp)?;
            out.write_all(head)?;
            // A file-to-file copy: the kernel moves the bytes (copy_file_range on Linux).
            std::io::copy(&mut fs::File::open(rest)?, &mut out)?;
            out.sync_data()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        fs::rename(&tmp, &path)?;
        fs::File::open(dir)?.sync_all()?;
        Ok((hash, size))
    }

    /// Every blob file with its hash and age, for garbage collection.
    pub fn files(&self) -> Result<Vec<(String, std::time::Duration)>> {
        let mut out = Vec::new();
        let now = std::time::SystemTime::now();
        for fan in fs::read_dir(&self.root)? {
            let fan = fan?;
            let prefix = fan.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !fan.path().is_dir() {
                continue; // tmp/ and anything that is not a blob
            }
            for f in fs::read_dir(fan.path())? {
                let f = f?;
                let hash = format!("{prefix}{}", f.file_name().to_string_lossy());
                let age = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or_default();
                out.push((hash, age));
            }
        }
        Ok(out)
    }

    pub fn remove(&self, hash: &str) -> Result<()> {
        match fs::remove_file(self.path_of(hash)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn get(&self, hash: &str) -> Result<Vec<u8>> {
        let path = self.path_of(hash)?;
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(format!("blob {hash}")),
            _ => StoreError::Io(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let a = blobs.put(b"hello").unwrap();
        let b = blobs.put(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(blobs.get(&a).unwrap(), b"hello");
        assert!(matches!(
            blobs.get(&"0".repeat(64)),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            blobs.get("../etc/passwd"),
            Err(StoreError::Invalid(_))
        ));
    }
}

//! The throttle's state on disk: a snapshot written every `throttle.snapshot_interval_secs` and
//! at shutdown, read at start, so a restart forgets nothing and a crash at most one interval.
//!
//! Format (little-endian): `HATOTHR1`, the record size (u32), then chunks — a count (u32) and
//! that many records of [`RECORD_BYTES`] — one per shard, written while only that shard is
//! locked, then the end mark (`u32::MAX`), the number of records (u64) and an FNV-1a 64 checksum
//! of everything before it (u64). A file that does not end so is refused whole: a snapshot cut
//! short by a crash while it was written never replaces the last good one (it is written to a
//! temporary file, synced, then renamed over it).

use super::record::Record;
use std::io::{self, Read, Write};

pub(crate) const MAGIC: &[u8; 8] = b"HATOTHR1";
/// Key (8) and the record's fields (63).
pub(crate) const RECORD_BYTES: usize = 71;
pub(crate) const END: u32 = u32::MAX;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a throttle snapshot of this version (header {0:?})")]
    Format(String),
    #[error("damaged throttle snapshot: {0}")]
    Corrupt(String),
}

/// FNV-1a, 64 bits: detects a damaged or truncated file (not tampering: the file is hato's own).
pub(crate) struct Checksum(u64);

impl Checksum {
    pub(crate) fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(crate) fn value(&self) -> u64 {
        self.0
    }
}

/// A writer that checksums what goes through it.
pub(crate) struct Summed<W> {
    pub(crate) inner: W,
    pub(crate) sum: Checksum,
}

impl<W: Write> Summed<W> {
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// A reader that checksums what it reads.
pub(crate) struct Reading<R> {
    pub(crate) inner: R,
    pub(crate) sum: Checksum,
}

impl<R: Read> Reading<R> {
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => SnapshotError::Corrupt("the file ends early".into()),
            _ => SnapshotError::Io(e),
        })?;
        self.sum.update(&b);
        Ok(b)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
}

pub(crate) fn encode(key: u64, r: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(&key.to_le_bytes());
    for v in [r.first_seen, r.last_update] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in r.connections.into_iter().chain(r.unknown) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in r.recipients_hour.into_iter().chain(r.recipients_day) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [r.baseline, r.messages, r.junk] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [r.since, r.until, r.trigger, r.limit] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&[r.state, r.rule, r.strikes]);
}

pub(crate) fn decode(b: &[u8; RECORD_BYTES], rules: usize) -> Result<(u64, Record), SnapshotError> {
    let mut at = 0;
    let mut next = |n: usize| {
        let s = &b[at..at + n];
        at += n;
        s
    };
    let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap_or_default());
    let u16_ = |s: &[u8]| u16::from_le_bytes(s.try_into().unwrap_or_default());
    let f32_ = |s: &[u8]| f32::from_le_bytes(s.try_into().unwrap_or_default());
    let key = u64_(next(8));
    let r = Record {
        first_seen: u32_(next(4)),
        last_update: u32_(next(4)),
        connections: [u16_(next(2)), u16_(next(2))],
        unknown: [u16_(next(2)), u16_(next(2))],
        recipients_hour: [u32_(next(4)), u32_(next(4))],
        recipients_day: [u32_(next(4)), u32_(next(4))],
        baseline: f32_(next(4)),
        messages: f32_(next(4)),
        junk: f32_(next(4)),
        since: u32_(next(4)),
        until: u32_(next(4)),
        trigger: u32_(next(4)),
        limit: u32_(next(4)),
        state: next(1)[0],
        rule: next(1)[0],
        strikes: next(1)[0],
    };
    let sane = |v: f32| v.is_finite() && v >= 0.0;
    if r.state > super::record::RELEASED
        || usize::from(r.rule) > rules
        || !(sane(r.baseline) && sane(r.messages) && sane(r.junk))
    {
        return Err(SnapshotError::Corrupt(format!(
            "a record out of range (key {key:#x})"
        )));
    }
    Ok((key, r))
}

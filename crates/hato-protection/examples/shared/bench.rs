//! What the benchmark examples share (`malware_bench`, `pipeline_bench`): the signature set
//! and the corpus as `bench/content.sh` gives them, and the one thread's CPU time.

use hato_protection::malware::SignatureStore;
use std::path::{Path, PathBuf};

/// Every file under `dir` but the corpus's own MANIFEST.tsv and README.md.
fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else if path
            .file_name()
            .is_some_and(|n| n != "MANIFEST.tsv" && n != "README.md")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The corpus's messages, sorted by path (the first `limit`, 0 = all), each without its mbox
/// `From ` line; says how many and how big on stderr.
pub fn corpus(dir: &str, limit: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths = Vec::new();
    files(Path::new(dir), &mut paths)?;
    paths.sort();
    if limit > 0 {
        paths.truncate(limit);
    }
    let mut messages = Vec::with_capacity(paths.len());
    for p in &paths {
        let mut raw = std::fs::read(p)?;
        if raw.starts_with(b"From ") {
            let end = raw
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| i + 1);
            raw.drain(..end);
        }
        messages.push(raw);
    }
    let bytes: usize = messages.iter().map(Vec::len).sum();
    eprintln!("corpus: {} messages, {} bytes", messages.len(), bytes);
    Ok(messages)
}

/// The signature directory, loaded; says what it holds on stderr.
pub fn signatures(dir: &str) -> Result<SignatureStore, Box<dyn std::error::Error>> {
    let store = SignatureStore::open(dir)?;
    let db = store.snapshot();
    eprintln!(
        "signatures: {} loaded, {} skipped",
        db.report.loaded,
        db.report.skipped.len()
    );
    Ok(store)
}

/// This thread's CPU time in nanoseconds (the first field of /proc/thread-self/schedstat).
pub fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

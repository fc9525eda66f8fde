//! Every message's features and scores, one line each, to check that a change to extraction or
//! scoring keeps them bit-identical (diff the output of two builds; issue 9's speed work may
//! not move a score).
//!
//! `cargo run --release -p hato-protection --example spam_scores -- CORPUS_DIR [MODEL] > out`
//! (CORPUS_DIR with ham/ and spam/, every file, sorted by name; MODEL: a model file, default
//! the shipped model). Per message: the score's bits offline and online (each message's true
//! label learned after it is scored, so the tenant deltas depend on every hashed bucket of
//! every message before), SCL, BCL, phish level, language, the heuristics' values as bits,
//! the extraction's counters, the ASF hits, the reasons with their named top features, and
//! the content, heuristics and online-learning parts as bits. A trailing line sums the time.

use hato_protection::spam::classifier::{Classifier, H, TenantModel};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

fn files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        let bytes = std::fs::read(e.path()).map_err(|err| format!("{name}: {err}"))?;
        out.push((name, bytes));
    }
    out.sort();
    Ok(out)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: spam_scores CORPUS_DIR [MODEL]")?;
    let classifier = match args.next() {
        Some(path) => {
            let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
            Classifier::load(&bytes).map_err(|e| format!("{path}: {e}"))?
        }
        None => Classifier::shipped().map_err(|e| e.to_string())?,
    };
    let dir = Path::new(&dir);
    let mut all = Vec::new();
    for (label, sub) in [(false, "ham"), (true, "spam")] {
        for (name, bytes) in files(&dir.join(sub))? {
            all.push((format!("{sub}/{name}"), bytes, label));
        }
    }
    let mut tenant = TenantModel::new(&classifier);
    let mut out = String::new();
    let start = Instant::now();
    for (name, raw, is_spam) in &all {
        let f = classifier.extract(raw);
        let offline = classifier.score(&f, None);
        let online = classifier.score(&f, Some(&tenant));
        tenant.learn(&classifier, &f, *is_spam);
        let heur: Vec<String> = H::ALL
            .iter()
            .map(|h| format!("{:x}", f.heuristic(*h).to_bits()))
            .collect();
        let signals = classifier.signals(&f, None);
        let _ = writeln!(
            out,
            "{name}\t{:08x}\t{:08x}\t{}\t{}\t{:?}\t{:?}\t{}\t{:?}\t{:?}\t{:?}\t{:?}\t{:?}\t{:?}",
            offline.score.to_bits(),
            online.score.to_bits(),
            offline.scl,
            f.bcl,
            f.phish,
            f.language,
            heur.join(","),
            f.stats,
            f.asf,
            f.bulk_evidence,
            f.phish_evidence,
            f.bounce_original_message_id,
            signals.reasons,
        );
    }
    let secs = start.elapsed().as_secs_f64();
    print!("{out}");
    eprintln!(
        "{} messages in {secs:.3} s (extract, score twice, learn, signals)",
        all.len()
    );
    Ok(())
}

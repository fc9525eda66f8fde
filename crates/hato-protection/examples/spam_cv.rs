//! Cross-validation of the spam classifier's training settings within the corpus's *train*
//! split (never the test split): how the shipped model's settings were chosen.
//!
//! `cargo run --release -p hato-protection --example spam_cv -- CORPUS_DIR` (with ham/ and
//! spam/); settings from the environment: BITS, EPOCHS, RATE, HAM_WEIGHT, TREES, DEPTH, SHRINK,
//! TARGET_FP, FOLDS; OUT=FILE writes the model (as `hato spam train --split train` does).

use hato_protection::spam::classifier::{
    BoostOptions, Classifier, Sample, Split, TrainOptions, corpus_split,
};
use std::path::Path;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), String> {
    let dir = std::env::args().nth(1).ok_or("usage: spam_cv CORPUS_DIR")?;
    let d = TrainOptions::default();
    let o = TrainOptions {
        bits: env("BITS", d.bits),
        content_epochs: env("EPOCHS", d.content_epochs),
        content_rate: env("RATE", d.content_rate),
        content_ham_weight: env("HAM_WEIGHT", d.content_ham_weight),
        boost: BoostOptions {
            trees: env("TREES", d.boost.trees),
            depth: env("DEPTH", d.boost.depth),
            shrinkage: env("SHRINK", d.boost.shrinkage),
            ..d.boost.clone()
        },
        target_fp: env("TARGET_FP", d.target_fp),
        folds: env("FOLDS", d.folds),
        ..d
    };
    let mut samples = Vec::new();
    let mut files = Vec::new();
    for (sub, spam) in [("ham", false), ("spam", true)] {
        let mut names: Vec<_> = std::fs::read_dir(Path::new(&dir).join(sub))
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| corpus_split(n) == Some(Split::Train))
            })
            .collect();
        names.sort();
        for p in names {
            let raw = std::fs::read(&p).map_err(|e| e.to_string())?;
            samples.push(Sample::new(
                &Classifier::extract_with_bits(&raw, o.bits),
                spam,
            ));
            files.push(p);
        }
    }
    let (c, r) = Classifier::train(&samples, &o);
    if let Ok(out) = std::env::var("OUT") {
        std::fs::write(&out, c.to_bytes()).map_err(|e| e.to_string())?;
    }
    println!(
        "{o:?}\ncv: auc {:.5} content {:.5} heuristics {:.5}; recall {:.2} % at fp {:.2} %",
        r.cv_auc,
        r.cv_auc_content,
        r.cv_auc_heuristics,
        r.cv_recall * 100.0,
        r.cv_false_positive_rate * 100.0
    );
    if std::env::var("DUMP").is_ok() {
        let mut idx: Vec<usize> = (0..samples.len()).collect();
        idx.sort_by(|a, b| r.oof_scores[*b].total_cmp(&r.oof_scores[*a]));
        println!("highest ham:");
        for i in idx.iter().filter(|i| !samples[**i].spam).take(15) {
            println!("  {:+.3} {}", r.oof_scores[*i], files[*i].display());
        }
        println!("lowest spam:");
        for i in idx.iter().rev().filter(|i| samples[**i].spam).take(25) {
            println!("  {:+.3} {}", r.oof_scores[*i], files[*i].display());
        }
    }
    Ok(())
}

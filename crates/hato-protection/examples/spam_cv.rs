//! Cross-validation of the spam classifier's training settings within the corpus's *train*
//! split (never the test split): how the shipped model's settings were chosen.
//!
//! `cargo run --release -p hato-protection --example spam_cv -- CORPUS_DIR` (with ham/ and
//! spam/); settings from the environment: BITS, EPOCHS, RATE, HAM_WEIGHT, TREES, DEPTH, SHRINK,
//! TARGET_FP, FOLDS; OUT=FILE writes the model (as `hato spam train --split train` does).
//!
//! - by default it prints the training's own cross-validation (out-of-fold scores, the SCL 5
//!   cut set on them), as `hato spam train` does; DUMP=1 lists the highest-scoring ham and the
//!   spam below the cut (what to read when looking for a new heuristic);
//! - NESTED=1 simulates shipping: for each of 5 outer folds of the train split, a model is
//!   trained exactly as `hato spam train` trains (its own inner cross-validation, fusion and
//!   cut) on the other four and judges the held-out fold at its own SCL 5 cut. The pooled
//!   recall and false-positive rate are what to expect on mail the model never saw, cut and
//!   all — the figure to choose settings by, not the test split.

use hato_protection::spam::classifier::{
    Classifier, Sample, Split, TrainOptions, auc, corpus_split,
};
use std::path::{Path, PathBuf};

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
        target_fp: env("TARGET_FP", d.target_fp),
        folds: env("FOLDS", d.folds),
        boost: hato_protection::spam::classifier::BoostOptions {
            trees: env("TREES", d.boost.trees),
            depth: env("DEPTH", d.boost.depth),
            shrinkage: env("SHRINK", d.boost.shrinkage),
            ..d.boost.clone()
        },
        ..d
    };
    let mut samples = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let nested = std::env::var("NESTED").is_ok();
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
            if nested {
                raws.push(raw);
            }
        }
    }
    println!(
        "{o:?}\n{} messages, {:.1} hashed features each",
        samples.len(),
        samples.iter().map(|s| s.hashed.len()).sum::<usize>() as f64 / samples.len().max(1) as f64
    );
    if nested {
        return nested_cv(&samples, &raws, &o);
    }
    let (c, r) = Classifier::train(&samples, &o);
    if let Ok(out) = std::env::var("OUT") {
        std::fs::write(&out, c.to_bytes()).map_err(|e| e.to_string())?;
    }
    println!(
        "cv: auc {:.5} content {:.5} heuristics {:.5}; recall {:.2} % at fp {:.2} %",
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
        let mut ham: Vec<f32> = idx
            .iter()
            .filter(|i| !samples[**i].spam)
            .map(|i| r.oof_scores[*i])
            .collect();
        ham.truncate((o.target_fp * r.ham as f64) as usize + 1);
        let cut = ham.last().copied().unwrap_or(0.0);
        println!("spam at or below the cut ({cut:+.3}):");
        for i in idx
            .iter()
            .rev()
            .filter(|i| samples[**i].spam && r.oof_scores[**i] <= cut)
        {
            println!("  {:+.3} {}", r.oof_scores[*i], files[*i].display());
        }
    }
    Ok(())
}

/// Outer 5-fold cross-validation of the whole training (inner cross-validation, fusion, cut):
/// each outer fold judged by a model that never saw it, at that model's own SCL 5 cut.
fn nested_cv(samples: &[Sample], raws: &[Vec<u8>], o: &TrainOptions) -> Result<(), String> {
    const OUTER: usize = 5;
    let n = samples.len();
    // Every 5th message in file-name order: deterministic, and each fold takes its share of
    // ham, spam and each of the corpus's subsets.
    let fold = |i: usize| i % OUTER;
    let (mut caught, mut spam, mut fp, mut ham) = (0usize, 0usize, 0usize, 0usize);
    let mut scores = vec![0f32; n];
    for k in 0..OUTER {
        let train: Vec<Sample> = (0..n)
            .filter(|i| fold(*i) != k)
            .map(|i| samples[i].clone())
            .collect();
        let (c, _) = Classifier::train(&train, o);
        let (mut kc, mut ks, mut kf, mut kh) = (0, 0, 0, 0);
        for i in (0..n).filter(|i| fold(*i) == k) {
            let s = c.score(&c.extract(&raws[i]), None);
            scores[i] = s.score;
            if samples[i].spam {
                ks += 1;
                kc += usize::from(s.scl >= 5);
            } else {
                kh += 1;
                kf += usize::from(s.scl >= 5);
            }
        }
        println!(
            "outer fold {k}: recall {:.2} % ({kc} of {ks}), fp {:.2} % ({kf} of {kh})",
            kc as f64 * 100.0 / ks.max(1) as f64,
            kf as f64 * 100.0 / kh.max(1) as f64
        );
        caught += kc;
        spam += ks;
        fp += kf;
        ham += kh;
    }
    let labels: Vec<bool> = samples.iter().map(|s| s.spam).collect();
    // The ranking alone, the cuts aside: recall where the pooled held-out ham allow a share.
    let mut ham_scores: Vec<f32> = (0..n).filter(|i| !labels[*i]).map(|i| scores[i]).collect();
    ham_scores.sort_by(|a, b| b.total_cmp(a));
    let at = |share: f64| {
        let cut =
            ham_scores[((share * ham_scores.len() as f64) as usize).min(ham_scores.len() - 1)];
        (0..n).filter(|i| labels[*i] && scores[*i] > cut).count() as f64 * 100.0
            / spam.max(1) as f64
    };
    println!(
        "nested ranking: recall {:.2} % at 0.1 % fp, {:.2} % at 0.3 %, {:.2} % at 0.5 %",
        at(0.001),
        at(0.003),
        at(0.005)
    );
    println!(
        "nested: recall {:.2} % ({caught} of {spam}) at fp {:.2} % ({fp} of {ham}), auc {:.5}",
        caught as f64 * 100.0 / spam.max(1) as f64,
        fp as f64 * 100.0 / ham.max(1) as f64,
        auc(&scores, &labels)
    );
    Ok(())
}

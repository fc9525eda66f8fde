//! `hato spam train|eval`: the spam classifier, offline (no server, no settings file).
//!
//! Both read labelled folders of raw messages (one file each, a leading mbox `From ` line
//! allowed), in sorted file-name order so a run is reproducible. `--split` picks files by the
//! 32-hex MD5 in their names as `../shared/corpus/README.md` says (train: first hex digit 0–b,
//! test: c–f).

use clap::{Subcommand, ValueEnum};
use hato_protection::spam::classifier::{
    Classifier, Sample, Split, TenantModel, TrainOptions, auc, corpus_split,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum SpamCmd {
    /// Train a model from labelled folders and write it (the shipped model is built so).
    Train {
        /// A folder of ham (legitimate mail), one message per file.
        #[arg(long, value_name = "DIR")]
        ham: PathBuf,
        /// A folder of spam, one message per file.
        #[arg(long, value_name = "DIR")]
        spam: PathBuf,
        /// Where to write the model.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Which files: by the MD5 in their names (train: 0–b, test: c–f), or all.
        #[arg(long, value_enum, default_value_t = SplitArg::All)]
        split: SplitArg,
        /// The share of ham allowed at SCL 5 or more on the training set's cross-validation.
        #[arg(long, default_value_t = TrainOptions::default().target_fp)]
        target_fp: f64,
    },
    /// Measure a model on labelled folders: spam recall and ham false positives at SCL >= 5,
    /// ROC AUC, messages per second.
    Eval {
        #[arg(long, value_name = "DIR")]
        ham: PathBuf,
        #[arg(long, value_name = "DIR")]
        spam: PathBuf,
        #[arg(long, value_enum, default_value_t = SplitArg::All)]
        split: SplitArg,
        /// A model file (default: the shipped model).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// Learn each message's true label after scoring it (TREC-style online evaluation),
        /// as a tenant's junk / not-junk reports do.
        #[arg(long)]
        online: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
    All,
}

impl SplitArg {
    fn keeps(self, name: &str) -> bool {
        match self {
            SplitArg::All => true,
            SplitArg::Train => corpus_split(name) == Some(Split::Train),
            SplitArg::Test => corpus_split(name) == Some(Split::Test),
        }
    }
}

/// The messages of a folder in the split, sorted by file name.
fn read_folder(dir: &Path, split: SplitArg) -> Result<Vec<(String, Vec<u8>)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_file && !name.starts_with('.') && split.keeps(&name) {
            paths.push((name, path));
        }
    }
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for (name, path) in paths {
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        out.push((name, bytes));
    }
    if out.is_empty() {
        return Err(format!(
            "no messages in {} for --split {}",
            dir.display(),
            format!("{split:?}").to_lowercase()
        ));
    }
    Ok(out)
}

/// This thread's CPU time in nanoseconds (the first field of /proc/thread-self/schedstat);
/// `None` where there is no such file.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn run(cmd: SpamCmd) -> Result<(), String> {
    match cmd {
        SpamCmd::Train {
            ham,
            spam,
            out,
            split,
            target_fp,
        } => {
            if !(0.0..0.5).contains(&target_fp) {
                return Err(
                    "--target-fp must be a share between 0 and 0.5 (0.003 is 0.3 %)".into(),
                );
            }
            let options = TrainOptions {
                target_fp,
                ..TrainOptions::default()
            };
            let ham = read_folder(&ham, split)?;
            let spam = read_folder(&spam, split)?;
            let mut samples = Vec::with_capacity(ham.len() + spam.len());
            for (label, set) in [(false, &ham), (true, &spam)] {
                for (_, raw) in set {
                    let f = Classifier::extract_with_bits(raw, options.bits);
                    samples.push(Sample::new(&f, label));
                }
            }
            let (classifier, report) = Classifier::train(&samples, &options);
            let bytes = classifier.to_bytes();
            std::fs::write(&out, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "trained on {} ham and {} spam; wrote {} ({} bytes)",
                report.ham,
                report.spam,
                out.display(),
                bytes.len()
            );
            println!(
                "cross-validation ({} folds, within these messages): AUC {:.5} (content {:.5}, heuristics {:.5}); at SCL >= 5: spam recall {:.2} %, ham false positives {:.2} %",
                options.folds,
                report.cv_auc,
                report.cv_auc_content,
                report.cv_auc_heuristics,
                report.cv_recall * 100.0,
                report.cv_false_positive_rate * 100.0
            );
            Ok(())
        }
        SpamCmd::Eval {
            ham,
            spam,
            split,
            model,
            online,
            json,
        } => {
            let classifier = match &model {
                Some(path) => {
                    let bytes = std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    Classifier::load(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
                }
                None => Classifier::shipped().map_err(|e| format!("the shipped model: {e}"))?,
            };
            let ham = read_folder(&ham, split)?;
            let spam = read_folder(&spam, split)?;
            // Interleaved by name so an online run sees ham and spam mixed, deterministically.
            let mut all: Vec<(&str, &[u8], bool)> = ham
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice(), false))
                .chain(spam.iter().map(|(n, b)| (n.as_str(), b.as_slice(), true)))
                .collect();
            all.sort_by(|a, b| {
                let key = |n: &str| n.rsplit('.').nth(1).unwrap_or(n).to_owned();
                key(a.0).cmp(&key(b.0)).then(a.0.cmp(b.0))
            });
            let mut tenant = TenantModel::new(&classifier);
            let mut scores = Vec::with_capacity(all.len());
            let mut labels = Vec::with_capacity(all.len());
            let (mut caught, mut false_pos) = (0usize, 0usize);
            let start = Instant::now();
            let cpu_start = thread_cpu_ns();
            for (_, raw, is_spam) in &all {
                let f = classifier.extract(raw);
                let s = classifier.score(&f, online.then_some(&tenant));
                if online {
                    tenant.learn(&classifier, &f, *is_spam);
                }
                if s.scl >= 5 {
                    if *is_spam {
                        caught += 1;
                    } else {
                        false_pos += 1;
                    }
                }
                scores.push(s.score);
                labels.push(*is_spam);
            }
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            // This thread's CPU time: on a shared machine the wall rate says more of the
            // neighbours than of the classifier.
            let cpu_secs = thread_cpu_ns()
                .zip(cpu_start)
                .map(|(b, a)| b.saturating_sub(a) as f64 / 1e9)
                .filter(|s| *s > 0.0);
            let n_spam = spam.len();
            let n_ham = ham.len();
            let recall = caught as f64 / n_spam as f64;
            let fpr = false_pos as f64 / n_ham as f64;
            let area = auc(&scores, &labels);
            let rate = all.len() as f64 / secs;
            let cpu_rate = cpu_secs.map(|c| all.len() as f64 / c);
            if json {
                let v = serde_json::json!({
                    "messages": all.len(),
                    "ham": n_ham,
                    "spam": n_spam,
                    "spam_caught": caught,
                    "ham_false_positives": false_pos,
                    "spam_recall": recall,
                    "ham_false_positive_rate": fpr,
                    "auc": area,
                    "messages_per_second": rate,
                    "messages_per_cpu_second": cpu_rate,
                    "online": online,
                });
                println!("{v}");
            } else {
                println!("messages: {} ({n_ham} ham, {n_spam} spam)", all.len());
                println!(
                    "spam recall: {:.2} % ({caught} of {n_spam}) at SCL >= 5",
                    recall * 100.0
                );
                println!(
                    "ham false positives: {:.2} % ({false_pos} of {n_ham})",
                    fpr * 100.0
                );
                println!("ROC AUC: {area:.5}");
                let cpu = cpu_rate
                    .map(|r| format!(", {r:.0} per CPU-second"))
                    .unwrap_or_default();
                println!(
                    "messages per second: {rate:.0}{cpu} (extract and score{}, one thread)",
                    if online { " and learn" } else { "" }
                );
            }
            Ok(())
        }
    }
}

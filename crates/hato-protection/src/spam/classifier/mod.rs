//! The spam classifier and the content heuristics (issue 9): what a message *is*, from its
//! bytes alone, as [`ContentSignals`].
//!
//! How the integrator calls it (once per message, on a blocking thread; [`Classifier`] is
//! `Send + Sync`, share it in an `Arc`):
//!
//! ```text
//! let classifier = Classifier::shipped()?;              // once, at start
//! let features = classifier.extract(&raw_message);      // once per message
//! let signals = classifier.signals(&features, tenant_model.as_ref()); // per tenant
//! // a user's junk / not-junk report:
//! tenant_model.learn(&classifier, &classifier.extract(&raw), true);
//! store(tenant_model.to_bytes()); … TenantModel::from_bytes(&bytes)?
//! ```
//!
//! - [`extract`](extract): the features (hashed text and header tokens from an allow-list of
//!   what the sender controls, and the named heuristics), bounded;
//! - [`heuristics`]: the heuristics' names, ASF options and phrase lists;
//! - [`model`]: the content model (logistic regression), the fusion, training, calibration and
//!   the file format;
//! - [`boost`]: the heuristics model (gradient-boosted trees);
//! - [`TenantModel`]: a tenant's sparse weight deltas on top of the shipped model, learned
//!   from its users' junk / not-junk reports.

pub mod boost;
pub mod extract;
pub mod heuristics;
mod lang;
pub mod model;

pub use boost::BoostOptions;
pub use extract::{Features, Stats};
pub use heuristics::H;
pub use model::{ModelError, Sample, TrainOptions, TrainReport, auc};

use crate::spam::{ContentSignals, PhishLevel};
use hato_core::{Reason, Stage};
use model::{Model, Reader, checksum, sigmoid};
use std::collections::HashMap;

/// The shipped model, built by `hato spam train` from the corpus's train split (README,
/// "The spam classifier").
static SHIPPED: &[u8] = include_bytes!("../../../data/spam-model.bin");

/// The classifier's spam probability from which its phish heuristics make a message phish
/// ([`Classifier::signals`]): the message is more likely spam than ham.
pub const PHISH_CONFIRMATION: f32 = 0.5;

/// A trained classifier: the shipped model or one loaded from a file.
#[derive(Clone, Debug)]
pub struct Classifier {
    model: Model,
}

/// What one message scored (before it becomes [`ContentSignals`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The fused score (log-odds of spam).
    pub score: f32,
    pub probability: f32,
    pub scl: i8,
}

impl Classifier {
    /// The model shipped in the binary.
    pub fn shipped() -> Result<Classifier, ModelError> {
        Classifier::load(SHIPPED)
    }

    /// A model from its file's bytes (`hato spam train --out`).
    pub fn load(bytes: &[u8]) -> Result<Classifier, ModelError> {
        Ok(Classifier {
            model: Model::from_bytes(bytes)?,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.model.to_bytes()
    }

    /// Trains a classifier on labelled samples (see [`model`]); deterministic.
    pub fn train(samples: &[Sample], options: &TrainOptions) -> (Classifier, TrainReport) {
        let (model, report) = model::train(samples, options);
        // Quantised as it will be stored, so the trained and the loaded classifier agree.
        let model = model.quantised().unwrap_or(model);
        (Classifier { model }, report)
    }

    /// The hash size (2^bits buckets) the model was trained with.
    pub fn bits(&self) -> u32 {
        self.model.bits
    }

    /// The features of one raw message (RFC 5322; a leading mbox `From ` line is skipped).
    /// Linear in the message, bounded in memory ([`extract`] caps); never fails.
    pub fn extract(&self, raw: &[u8]) -> Features {
        extract::extract(raw, self.model.bits)
    }

    /// Extraction with a given hash size, for training before a model exists.
    pub fn extract_with_bits(raw: &[u8], bits: u32) -> Features {
        extract::extract(raw, bits.clamp(10, 24))
    }

    /// The score, shipped model plus the tenant's deltas.
    pub fn score(&self, f: &Features, tenant: Option<&TenantModel>) -> Score {
        let mut s = self
            .model
            .fuse(self.model.content_score(f), self.model.heur_score(f));
        if let Some(t) = tenant {
            s += t.delta_score(f);
        }
        Score {
            score: s,
            probability: sigmoid(s),
            scl: self.model.scl(s),
        }
    }

    /// What the content says, for one tenant (`None`: the shipped model alone).
    pub fn signals(&self, f: &Features, tenant: Option<&TenantModel>) -> ContentSignals {
        let score = self.score(f, tenant);
        let mut reasons = Vec::new();
        let mut verdict = Reason::new(
            Stage::Spam,
            format!(
                "content classifier: spam probability {:.1} %, SCL {}",
                f64::from(score.probability) * 100.0,
                score.scl
            ),
        )
        .rule("classifier")
        .figure("scl", i64::from(score.scl))
        .figure("score", format!("{:+.3}", score.score));
        for (name, weight) in self.top_features(f, tenant, 6, 3) {
            verdict = verdict.figure(name, format!("{weight:+.3}"));
        }
        reasons.push(verdict);
        // The phish heuristics name what phish does (a credential request with a disguise);
        // whether this message is phish is confirmed by the classifier leaning spam. Alone
        // they put mailing-list and newsletter ham that asks to log in into Junk or quarantine
        // (6 of the 1,067 test-split ham over SMTP, 0.6 %, measured by bench/spam.sh part c).
        let phish = if score.probability >= PHISH_CONFIRMATION {
            f.phish
        } else {
            PhishLevel::None
        };
        if phish == PhishLevel::None && f.phish != PhishLevel::None {
            reasons.push(
                Reason::new(
                    Stage::Spam,
                    format!(
                        "phish traits ({}), but the classifier finds the message clean: not phish",
                        f.phish_evidence.join("; ")
                    ),
                )
                .rule("phish"),
            );
        }
        if phish != PhishLevel::None {
            let level = match phish {
                PhishLevel::HighConfidence => "high confidence phish",
                _ => "phish",
            };
            reasons.push(
                Reason::new(
                    Stage::Spam,
                    format!("{level}: {}", f.phish_evidence.join("; ")),
                )
                .rule("phish"),
            );
        }
        if f.bcl > 0 {
            reasons.push(
                Reason::new(
                    Stage::Spam,
                    format!("BCL {}: {}", f.bcl, f.bulk_evidence.join("; ")),
                )
                .rule("bulk")
                .figure("bcl", i64::from(f.bcl)),
            );
        }
        ContentSignals {
            spam_probability: f64::from(score.probability),
            scl: score.scl,
            bcl: f.bcl,
            phish,
            language: f.language.map(str::to_owned),
            asf: f.asf.clone(),
            reasons,
        }
    }

    /// The strongest contributions to the score: `spammy` towards spam, `hammy` towards ham,
    /// each `(readable name, contribution to the fused score)`.
    pub fn top_features(
        &self,
        f: &Features,
        tenant: Option<&TenantModel>,
        spammy: usize,
        hammy: usize,
    ) -> Vec<(String, f32)> {
        // (contribution, which): which < COUNT is a heuristic, else COUNT + index in hashed.
        // The top few on each side are kept while walking (linear; no sort of every feature).
        let mut top: Vec<(f32, usize)> = Vec::with_capacity(spammy + 1);
        let mut bottom: Vec<(f32, usize)> = Vec::with_capacity(hammy + 1);
        let mut consider = |c: f32, which: usize| {
            if c > 0.0 && spammy > 0 {
                keep_best(&mut top, spammy, (c, which));
            } else if c < 0.0 && hammy > 0 {
                keep_best(&mut bottom, hammy, (-c, which));
            }
        };
        let shares = self.model.heur.attribute(&f.heur);
        for (j, x) in f.heur.iter().enumerate() {
            if *x > 0.0 {
                let mut c = self.model.beta * shares[j];
                if let Some(t) = tenant {
                    c += t.get(TenantModel::heur_key(j)) * x;
                }
                consider(c, j);
            }
        }
        for (k, &b) in f.hashed.iter().enumerate() {
            let mut c = self.model.alpha
                * self.model.content.get(b as usize).copied().unwrap_or(0.0)
                * f.hashed_value;
            if let Some(t) = tenant {
                c += t.get(b) * f.hashed_value;
            }
            consider(c, heuristics::COUNT + k);
        }
        let mut out = Vec::with_capacity(top.len() + bottom.len());
        for (c, which) in top {
            out.push((self.feature_name(f, which), c));
        }
        for (c, which) in bottom {
            out.push((self.feature_name(f, which), -c));
        }
        out
    }

    fn feature_name(&self, f: &Features, which: usize) -> String {
        if which < heuristics::COUNT {
            return H::ALL[which].name().to_owned();
        }
        let k = which - heuristics::COUNT;
        let text = f.hashed_text(k);
        let origin = f.origins.get(k);
        match origin {
            Some(o) if o.aux => text.to_owned(),
            // A 4-gram may cut a multi-byte character: its bytes, the cut shown as U+FFFD.
            Some(o) if o.ngram => {
                let start = o.start as usize;
                let bytes = f.doc.as_bytes().get(start..start + usize::from(o.len));
                format!("4-gram:{:?}", String::from_utf8_lossy(bytes.unwrap_or(&[])))
            }
            _ => format!("word:{text}"),
        }
    }
}

/// Keeps the `k` largest by the first field, largest first.
fn keep_best(best: &mut Vec<(f32, usize)>, k: usize, item: (f32, usize)) {
    if best.len() == k && best.last().is_some_and(|l| l.0 >= item.0) {
        return;
    }
    let at = best.partition_point(|b| b.0 >= item.0);
    best.insert(at, item);
    best.truncate(k);
}

/// A tenant's personalisation: sparse deltas on the shipped model's weights, learned online
/// from its users' junk / not-junk reports. Bounded: at most [`TenantModel::MAX_ENTRIES`]
/// weights (the smallest are dropped when it is full).
#[derive(Clone, Debug, PartialEq)]
pub struct TenantModel {
    deltas: HashMap<u32, f32>,
    bits: u32,
    updates: u64,
    /// [`TenantModel::MAX_ENTRIES`]; lower in tests.
    pub(crate) max_entries: usize,
}

/// `HATOTM`, version, then the entries.
const TENANT_MAGIC: &[u8; 6] = b"HATOTM";
const TENANT_VERSION: u16 = 1;

impl TenantModel {
    /// Most weights kept (≈ 1.6 MB stored).
    pub const MAX_ENTRIES: usize = 200_000;
    /// The learning rate: the features are a unit vector, so one report moves that message's
    /// score by about `RATE × (label − probability)`.
    pub const RATE: f32 = 1.0;
    const HEUR_FLAG: u32 = 1 << 31;

    pub fn new(classifier: &Classifier) -> TenantModel {
        TenantModel {
            deltas: HashMap::new(),
            bits: classifier.bits(),
            updates: 0,
            max_entries: Self::MAX_ENTRIES,
        }
    }

    fn heur_key(j: usize) -> u32 {
        Self::HEUR_FLAG | j as u32
    }

    fn get(&self, key: u32) -> f32 {
        self.deltas.get(&key).copied().unwrap_or(0.0)
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    /// Reports learned so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    fn delta_score(&self, f: &Features) -> f32 {
        if self.deltas.is_empty() || self.bits_mismatch(f) {
            return 0.0;
        }
        let mut s = 0.0;
        for &b in &f.hashed {
            s += self.get(b) * f.hashed_value;
        }
        for (j, x) in f.heur.iter().enumerate() {
            if *x > 0.0 {
                s += self.get(Self::heur_key(j)) * x;
            }
        }
        s
    }

    fn bits_mismatch(&self, f: &Features) -> bool {
        // Features extracted for another hash size would index the wrong weights.
        f.hashed
            .last()
            .is_some_and(|b| self.bits < 32 && u64::from(*b) >= (1u64 << self.bits))
    }

    /// Learns one message's true label (a user's junk / not-junk report, or `hato spam eval
    /// --online`): one logistic-regression step on the shipped model plus these deltas.
    pub fn learn(&mut self, classifier: &Classifier, f: &Features, is_spam: bool) {
        if self.bits != classifier.bits() || self.bits_mismatch(f) {
            return;
        }
        let p = classifier.score(f, Some(self)).probability;
        let g = (if is_spam { 1.0 } else { 0.0 }) - p;
        if g.abs() < 1e-6 {
            return;
        }
        let step = Self::RATE * g;
        for &b in &f.hashed {
            *self.deltas.entry(b).or_insert(0.0) += step * f.hashed_value;
        }
        for (j, x) in f.heur.iter().enumerate() {
            if *x > 0.0 {
                *self.deltas.entry(Self::heur_key(j)).or_insert(0.0) += step * x;
            }
        }
        self.updates += 1;
        if self.deltas.len() > self.max_entries {
            self.prune(self.max_entries * 3 / 4);
        }
    }

    /// Keeps the `keep` largest deltas (by magnitude).
    fn prune(&mut self, keep: usize) {
        let mut mags: Vec<f32> = self.deltas.values().map(|v| v.abs()).collect();
        if mags.len() <= keep || keep == 0 {
            return;
        }
        let nth = mags.len() - keep;
        let (_, cutoff, _) = mags.select_nth_unstable_by(nth, |a, b| a.total_cmp(b));
        let cutoff = *cutoff;
        self.deltas.retain(|_, v| v.abs() >= cutoff);
        // Ties at the cutoff may leave a few more; drop arbitrary-but-deterministic extras.
        if self.deltas.len() > keep {
            let mut keys: Vec<u32> = self
                .deltas
                .iter()
                .filter(|(_, v)| v.abs() == cutoff)
                .map(|(k, _)| *k)
                .collect();
            keys.sort_unstable();
            for k in keys.into_iter().take(self.deltas.len() - keep) {
                self.deltas.remove(&k);
            }
        }
    }

    /// The stored form: `HATOTM`, version (u16), hash bits (u32), updates (u64), entry count
    /// (u32), entries sorted by key (u32 key, f32 delta), FNV-1a checksum (u64); little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<(&u32, &f32)> = self.deltas.iter().collect();
        entries.sort_unstable_by_key(|(k, _)| **k);
        let mut out = Vec::with_capacity(32 + entries.len() * 8);
        out.extend_from_slice(TENANT_MAGIC);
        out.extend_from_slice(&TENANT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.bits.to_le_bytes());
        out.extend_from_slice(&self.updates.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (k, v) in entries {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TenantModel, ModelError> {
        if bytes.len() < 8 + 8 || &bytes[..6] != TENANT_MAGIC {
            return Err(ModelError::Magic);
        }
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        if version != TENANT_VERSION {
            return Err(ModelError::Version(u32::from(version)));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(sum.try_into().map_err(|_| ModelError::Length("sum"))?);
        if checksum(body) != stored {
            return Err(ModelError::Checksum);
        }
        let mut r = Reader { b: body, at: 8 };
        let bits = r.u32()?;
        if !(10..=24).contains(&bits) {
            return Err(ModelError::Bits(bits));
        }
        let updates = r.u64()?;
        let count = r.u32()? as usize;
        if count > Self::MAX_ENTRIES {
            return Err(ModelError::Length("too many entries"));
        }
        let mut deltas = HashMap::with_capacity(count);
        for _ in 0..count {
            let k = r.u32()?;
            let v = r.f32()?;
            deltas.insert(k, v);
        }
        if r.at != body.len() {
            return Err(ModelError::Length("trailing bytes"));
        }
        Ok(TenantModel {
            deltas,
            bits,
            updates,
            max_entries: Self::MAX_ENTRIES,
        })
    }
}

/// Which split of the corpus a file belongs to, by the 32-hex MD5 in its name (the corpus
/// README: train = first hex digit 0–b, test = c–f). `None` when the name holds no MD5.
pub fn corpus_split(file_name: &str) -> Option<Split> {
    let b = file_name.as_bytes();
    let mut run = 0usize;
    for (i, c) in b.iter().enumerate() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run += 1;
            let boundary = b.get(i + 1).is_none_or(|n| !n.is_ascii_hexdigit());
            if run == 32 && boundary {
                let first = b[i + 1 - 32];
                return Some(if matches!(first, b'c'..=b'f') {
                    Split::Test
                } else {
                    Split::Train
                });
            }
        } else {
            run = 0;
        }
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

#[cfg(test)]
mod tests;

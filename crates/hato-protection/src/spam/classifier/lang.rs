//! The message's language: exactly what `whatlang::detect` (0.18) answers, its Latin-script
//! path computed here faster.
//!
//! whatlang scores a Latin-script text against each of its 37 Latin languages by looking up
//! every one of the language's 300 profile trigrams in a hash map of the text's trigrams
//! (11,100 lookups per message: a fifth of `hato spam eval`'s CPU, issue 9). Here the profiles
//! are inverted once (trigram → the languages and ranks it has), so a text costs one lookup per
//! distinct trigram of its own (at most 600), and the distances, the alphabet scores, the
//! fusion and the confidence are whatlang's own arithmetic in whatlang's order (the same
//! integer sums, the same `f64` expressions, the same unstable sorts over vectors built in the
//! same order), so the answer, confidence included, is bit for bit whatlang's. Other scripts
//! (and anything unexpected) go to `whatlang::detect` itself. `tests.rs` checks the two agree
//! on the corpus and on generated text.
//!
//! The profiles (`whatlang-latin-trigrams.txt`: one line per language, its ISO 639-3 code, a
//! tab, its 300 trigrams of 3 characters each, most frequent first) and the alphabets below
//! are whatlang 0.18.0's (`src/trigrams/profiles.rs`, `src/alphabets/latin.rs`), MIT licence,
//! copyright Serhii Potapov and contributors, <https://github.com/greyblake/whatlang-rs>.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;
use whatlang::{Lang, Script};

/// whatlang's `MAX_TRIGRAM_DISTANCE`: a profile trigram missing from the text costs this.
const MAX_TRIGRAM_DISTANCE: u32 = 300;
/// whatlang's `MAX_TOTAL_DISTANCE`.
const MAX_TOTAL_DISTANCE: u32 = MAX_TRIGRAM_DISTANCE * MAX_TRIGRAM_DISTANCE;
/// whatlang's `TEXT_TRIGRAMS_SIZE`: the text's most frequent trigrams kept.
const TEXT_TRIGRAMS_SIZE: usize = 600;
/// whatlang's `RELIABLE_CONFIDENCE_THRESHOLD`.
const RELIABLE_CONFIDENCE_THRESHOLD: f64 = 0.9;

static PROFILES: &str = include_str!("whatlang-latin-trigrams.txt");

/// whatlang's Latin alphabets (`src/alphabets/latin.rs`), in its order.
const LATIN_ALPHABETS: &[(&str, &str)] = &[
    ("afr", "abcdefghijklmnopqrstuvwxyzáèéêëíîïóôúû"),
    ("aka", "abdefghiklmnoprstuwyɔɛ"),
    ("aze", "abcdefghijklmnopqrstuvxyzçöüğışə̇"),
    ("cat", "abcdefghijklmnopqrstuvwxyz·àçèéíïòóúü"),
    ("ces", "abcdefghijklmnopqrstuvwxyzáéíóúýčďěňřšťůž"),
    (
        "cym",
        "abcdefghijklmnopqrstuvwxyzàáâäèéêëìíîïòóôöùúûüýÿŵŷẁẃẅỳ",
    ),
    ("dan", "abcdefghijklmnopqrstuvwxyzåæø"),
    ("deu", "abcdefghijklmnopqrstuvwxyzßäöü"),
    ("eng", "abcdefghijklmnopqrstuvwxyz"),
    ("epo", "abcdefghijklmnoprstuvzĉĝĥĵŝŭ"),
    ("est", "abcdefghijklmnopqrstuvwxyzäõöü"),
    ("fin", "abcdefghijklmnopqrstuvwxyzäöšž"),
    ("fra", "abcdefghijklmnopqrstuvwxyzàâçèéêëîïôùûüÿœ"),
    ("hrv", "abcdefghijklmnopqrstuvwxyzćčđšž"),
    ("hun", "abcdefghijklmnopqrstuvwxyzáéíóöúüőű"),
    ("ind", "abcdefghijklmnopqrstuvwxyz"),
    ("ita", "abcdefghijklmnopqrstuvwxyzàèéìòù"),
    ("jav", "abcdefghijklmnopqrstuvwxyzèé"),
    ("lat", "abcdefghijklmnopqrstuvwxyz"),
    ("lav", "abcdefghijklmnopqrstuvwxyzāčēģīķļņōŗšūž"),
    ("lit", "abcdefghijklmnopqrstuvwxyząčėęįšūųž"),
    ("nld", "abcdefghijklmnopqrstuvwxyzàèéëïĳ"),
    ("nob", "abcdefghijklmnopqrstuvwxyzåæø"),
    ("pol", "abcdefghijklmnopqrstuvwxyzóąćęłńśźż"),
    ("por", "abcdefghijklmnopqrstuvwxyzàáâãçéêíóôõú"),
    ("ron", "abcdefghijklmnopqrstuvwxyzâîăşţ"),
    ("slk", "abcdefghijklmnopqrstuvwxyzáäéíóôúýčďĺľňŕšťž"),
    ("slv", "abcdefghijklmnopqrstuvwxyzčšž"),
    ("sna", "abcdefghijklmnopqrstuvwxyz"),
    ("spa", "abcdefghijklmnopqrstuvwxyz¡¿áéíñóúü"),
    ("swe", "abcdefghijklmnopqrstuvwxyzäåö"),
    ("tgl", "abcdefghijklmnopqrstuvwxyzáéíñóú"),
    ("tuk", "abdefghijklmnoprstuwyzäçöüýňşž"),
    ("tur", "abcdefghijklmnopqrstuvwxyzçöüğış̇"),
    ("uzb", "abcdefghijklmnopqrstuvxyzʻ"),
    (
        "vie",
        "abcdefghijklmnopqrstuvwxyzàáâãèéêìíòóôõùúýăđĩũơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ",
    ),
    ("zul", "abcdefghijklmnopqrstuvwxyz"),
];

/// A trigram as one number: the three characters (each below 2^21) side by side, so numeric
/// order is whatlang's `Trigram` order (by the first character, then the second, the third).
fn pack(a: char, b: char, c: char) -> u64 {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

/// A multiplicative hash for the packed trigrams (the index is built from fixed data, never
/// from a sender's input, so no keyed hash is needed for it).
#[derive(Default)]
struct TrigramHasher(u64);

impl Hasher for TrigramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        let h = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

struct Latin {
    /// The languages in the profiles' order (whatlang's `LATIN_LANGS` of `profiles.rs`).
    langs: Vec<Lang>,
    /// Each language's profile length (300).
    profile_len: Vec<u32>,
    /// Trigram → (language index, rank in its profile).
    index: HashMap<u64, Vec<(u8, u16)>, BuildHasherDefault<TrigramHasher>>,
    /// whatlang's `Script::Latin.langs()` and each one's index in `alphabet_langs`.
    script_langs: Vec<Lang>,
    /// The alphabets inverted as whatlang's `build_inverted_map`: sorted characters and,
    /// for each, the languages (indexes into `script_langs`) whose alphabet has it.
    alphabet_chars: Vec<char>,
    alphabet_langs: Vec<Vec<u8>>,
}

fn latin() -> Option<&'static Latin> {
    static L: OnceLock<Option<Latin>> = OnceLock::new();
    L.get_or_init(build).as_ref()
}

fn build() -> Option<Latin> {
    let mut langs = Vec::new();
    let mut profile_len = Vec::new();
    let mut index: HashMap<u64, Vec<(u8, u16)>, BuildHasherDefault<TrigramHasher>> =
        HashMap::default();
    for line in PROFILES.lines().filter(|l| !l.is_empty()) {
        let (code, trigrams) = line.split_once('\t')?;
        let li = u8::try_from(langs.len()).ok()?;
        langs.push(Lang::from_code(code)?);
        let chars: Vec<char> = trigrams.chars().collect();
        if !chars.len().is_multiple_of(3) {
            return None;
        }
        for (rank, t) in chars.chunks_exact(3).enumerate() {
            let rank = u16::try_from(rank).ok()?;
            index
                .entry(pack(t[0], t[1], t[2]))
                .or_default()
                .push((li, rank));
        }
        profile_len.push(u32::try_from(chars.len() / 3).ok()?);
    }
    let script_langs: Vec<Lang> = Script::Latin.langs().to_vec();
    let mut by_char: HashMap<char, Vec<u8>> = HashMap::new();
    for (code, alphabet) in LATIN_ALPHABETS {
        let lang = Lang::from_code(*code)?;
        let li = u8::try_from(script_langs.iter().position(|l| *l == lang)?).ok()?;
        for c in alphabet.chars() {
            by_char.entry(c).or_default().push(li);
        }
    }
    let mut by_char: Vec<(char, Vec<u8>)> = by_char.into_iter().collect();
    by_char.sort_unstable_by_key(|(c, _)| *c);
    let (alphabet_chars, alphabet_langs) = by_char.into_iter().unzip();
    Some(Latin {
        langs,
        profile_len,
        index,
        script_langs,
        alphabet_chars,
        alphabet_langs,
    })
}

/// whatlang's `is_stop_char`: ASCII punctuation, digits and controls.
fn is_stop_char(ch: char) -> bool {
    matches!(ch, '\u{0000}'..='\u{0040}' | '\u{005B}'..='\u{0060}' | '\u{007B}'..='\u{007E}')
}

/// `whatlang::detect(text)` as (language, confidence): `None` where whatlang finds none.
pub(crate) fn detect(text: &str) -> Option<(Lang, f64)> {
    if whatlang::detect_script(text) == Some(Script::Latin)
        && let Some(l) = latin()
        && let Some(found) = detect_latin(l, text)
    {
        return found;
    }
    whatlang::detect(text).map(|i| (i.lang(), i.confidence()))
}

/// Whether whatlang calls a confidence reliable (`Info::is_reliable`).
pub(crate) fn is_reliable(confidence: f64) -> bool {
    confidence > RELIABLE_CONFIDENCE_THRESHOLD
}

/// whatlang's combined (alphabet and trigram) detection of a Latin-script text; the outer
/// `None` where this port does not answer (whatlang's own then does).
fn detect_latin(l: &Latin, text: &str) -> Option<Option<(Lang, f64)>> {
    // whatlang lower-cases with `str::to_lowercase`; ASCII text that has no capitals is
    // already what that gives.
    let lowered;
    let lower: &str = if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        text
    } else {
        lowered = text.to_lowercase();
        &lowered
    };

    // Alphabet scores (`alphabets::common::generic_alphabet_calculate_scores`).
    let mut char_scores = vec![0usize; l.alphabet_chars.len()];
    let mut max_raw_score = 0usize;
    for ch in lower.chars() {
        if is_stop_char(ch) {
            continue;
        }
        max_raw_score += 1;
        if let Ok(position) = l.alphabet_chars.binary_search(&ch) {
            char_scores[position] += 2;
        }
    }
    if max_raw_score == 0 {
        return None;
    }
    let mut lang_scores = vec![0usize; l.script_langs.len()];
    let mut common_score = 0usize;
    for (position, char_score) in char_scores.into_iter().enumerate() {
        if char_score > 0 {
            let languages = &l.alphabet_langs[position];
            if languages.len() == l.script_langs.len() {
                common_score += char_score;
            } else {
                for &li in languages {
                    lang_scores[usize::from(li)] += char_score;
                }
            }
        }
    }
    let mut alpha_raw: Vec<(Lang, usize)> = l
        .script_langs
        .iter()
        .enumerate()
        .map(|(i, &lang)| {
            let score = (lang_scores[i] + common_score).saturating_sub(max_raw_score);
            (lang, score)
        })
        .collect();
    alpha_raw.sort_unstable_by_key(|(_, score)| Reverse(*score));
    let alphabet_scores: Vec<(Lang, f64)> = alpha_raw
        .iter()
        .map(|&(lang, raw)| (lang, raw as f64 / max_raw_score as f64))
        .collect();

    // Trigram scores (`trigrams::detection::calculate_scores_in_profiles`): the text's
    // trigrams counted (`trigrams::utils::count`), ranked by count then trigram, descending.
    let mut grams: Vec<u64> = Vec::with_capacity(lower.len() + 1);
    let mut chars = lower
        .chars()
        .map(|c| if is_stop_char(c) { ' ' } else { c })
        .chain(Some(' '));
    let mut c1 = ' ';
    let mut c2 = chars.next().unwrap_or(' ');
    for c3 in chars {
        if !(c2 == ' ' && (c1 == ' ' || c3 == ' ')) {
            grams.push(pack(c1, c2, c3));
        }
        c1 = c2;
        c2 = c3;
    }
    grams.sort_unstable();
    let mut counted: Vec<(u32, u64)> = Vec::with_capacity(grams.len());
    for g in grams {
        match counted.last_mut() {
            Some((n, last)) if *last == g => *n += 1,
            _ => counted.push((1, g)),
        }
    }
    counted.sort_unstable_by(|a, b| b.cmp(a));
    counted.truncate(TEXT_TRIGRAMS_SIZE);
    let unique = counted.len() as u32;
    if unique == 0 {
        return None;
    }
    // Σ over a profile's trigrams of |text rank − profile rank|, or 300 when missing:
    // 300 × profile length plus, for each trigram the text has, |n − i| − 300.
    let mut dist: Vec<i64> = l
        .profile_len
        .iter()
        .map(|&n| i64::from(n) * i64::from(MAX_TRIGRAM_DISTANCE))
        .collect();
    for (n, &(_, g)) in counted.iter().enumerate() {
        if let Some(entries) = l.index.get(&g) {
            for &(li, i) in entries {
                let d = (n as i64 - i64::from(i)).abs() - i64::from(MAX_TRIGRAM_DISTANCE);
                dist[usize::from(li)] += d;
            }
        }
    }
    let mut lang_distances: Vec<(Lang, u32)> = Vec::with_capacity(l.langs.len());
    for (li, &lang) in l.langs.iter().enumerate() {
        let mut total = dist[li];
        if MAX_TRIGRAM_DISTANCE > unique {
            total -= i64::from((MAX_TRIGRAM_DISTANCE - unique) * MAX_TRIGRAM_DISTANCE);
        }
        // whatlang's sum is a u32 that cannot go below zero here (each missing trigram adds
        // 300, and the correction takes off at most that); a negative means this port went
        // wrong: let whatlang answer.
        let total = u32::try_from(total).ok()?;
        lang_distances.push((lang, total.clamp(0, MAX_TOTAL_DISTANCE)));
    }
    lang_distances.sort_unstable_by_key(|(_, d)| *d);
    let max_dist = unique * MAX_TRIGRAM_DISTANCE;
    let mut trigram_scores: Vec<(Lang, f64)> = Vec::with_capacity(lang_distances.len());
    for &(lang, d) in &lang_distances {
        let similarity = max_dist.checked_sub(d)?;
        trigram_scores.push((lang, similarity as f64 / max_dist as f64));
    }

    // The fusion (`combined::raw_detect`).
    let mut all_langs: Vec<Lang> = alphabet_scores.iter().map(|x| x.0).collect();
    for (lang, _) in &trigram_scores {
        if !all_langs.contains(lang) {
            all_langs.push(*lang);
        }
    }
    let alphabet_weight = (-(max_raw_score as f64 / 300.0) + 2.0 / 3.0).clamp(1.0 / 3.0, 2.0 / 3.0);
    let trigram_weight = 1.0 - alphabet_weight;
    let mut scores: Vec<(Lang, f64)> = Vec::with_capacity(all_langs.len());
    for lang in all_langs {
        let a = alphabet_scores
            .iter()
            .find(|(x, _)| *x == lang)
            .map(|x| x.1)
            .unwrap_or(0.0);
        let t = trigram_scores
            .iter()
            .find(|(x, _)| *x == lang)
            .map(|x| x.1)
            .unwrap_or(0.0);
        scores.push((lang, a * alphabet_weight + t * trigram_weight));
    }
    scores.sort_unstable_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Less));
    let mut it = scores.into_iter();
    let Some((lang1, score1)) = it.next() else {
        return Some(None);
    };
    let confidence = match it.next() {
        Some((_, score2)) => confidence(score1, score2, unique as usize),
        None => 1.0,
    };
    Some(Some((lang1, confidence)))
}

/// whatlang's `calculate_confidence`.
fn confidence(highest_score: f64, second_score: f64, count: usize) -> f64 {
    if highest_score == 0.0 {
        return 0.0;
    }
    if second_score == 0.0 {
        return highest_score;
    }
    let confident_rate = (3.0 / count as f64) + 0.015;
    let rate = (highest_score - second_score) / second_score;
    if rate > confident_rate {
        1.0
    } else {
        rate / confident_rate
    }
}

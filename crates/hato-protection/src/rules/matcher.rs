//! The matchers rule conditions compile to: words, patterns, IP ranges.
//!
//! Words and patterns run over text the sender controls (subject, body, header values, names),
//! so both are the `regex` crate's automata: time linear in the text whatever the pattern
//! (no backtracking), and every compiled program bounded ([`PATTERN_SIZE_LIMIT`]), so a hostile
//! pattern from an admin (`(a{1000}){1000}`) is refused when the rule is saved, not when mail
//! arrives. A condition's words are one alternation, its patterns one set: each text is read
//! once per condition, however many values it has.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::net::IpAddr;

/// A pattern: at most this many characters (Exchange Online's 128 per regular expression).
pub const PATTERN_MAX_CHARS: usize = 128;
/// A compiled pattern set's program and its lazy DFA's cache: at most this many bytes each.
/// Enough for Unicode classes (`\w` is about 100 KB compiled); `(a{1000}){1000}` is far over.
pub const PATTERN_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// The words of every words condition of a rule set whose words are all ASCII, in one
/// automaton: over each of a message's big texts (subject, body, attachment texts) one search
/// tells which conditions have a word there at all, instead of one search per condition. Each
/// such condition's [`Words`] knows its slot.
#[derive(Clone, Debug)]
pub(crate) struct CombinedWords {
    ac: aho_corasick::AhoCorasick,
    /// The slot of each pattern of `ac`.
    slot_of: Vec<u32>,
    slots: usize,
}

impl CombinedWords {
    /// Gives each of `words` with all-ASCII words a slot and builds the automaton; `None` when
    /// there is none (or the automaton cannot be built: then each condition searches alone).
    pub(crate) fn build<'w>(words: impl IntoIterator<Item = &'w mut Words>) -> Option<Self> {
        let mut patterns: Vec<String> = Vec::new();
        let mut slot_of = Vec::new();
        let mut owners: Vec<&'w mut Words> = Vec::new();
        for w in words {
            if w.prefilter.is_none() {
                continue;
            }
            let slot = owners.len() as u32;
            for word in &w.ascii_words {
                patterns.push(word.clone());
                slot_of.push(slot);
            }
            owners.push(w);
        }
        if owners.is_empty() {
            return None;
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&patterns)
            .ok()?;
        let slots = owners.len();
        for (slot, w) in owners.into_iter().enumerate() {
            w.slot = Some(slot as u32);
        }
        Some(CombinedWords { ac, slot_of, slots })
    }

    /// Which slots have one of their words somewhere in `text` (ASCII case-insensitively):
    /// one overlapping pass, linear in the text and the matches.
    fn present(&self, text: &str) -> Vec<u64> {
        let mut bits = vec![0u64; self.slots.div_ceil(64)];
        for m in self.ac.find_overlapping_iter(text) {
            let slot = self.slot_of[m.pattern().as_usize()] as usize;
            bits[slot / 64] |= 1 << (slot % 64);
        }
        bits
    }
}

/// What matchers share while one message is evaluated: the bytes they read — how the tests
/// check that matching is linear (a counter, not a timer; each search over a text adds the
/// text's length) — and, with a rule set's [`CombinedWords`], which words conditions have a
/// word in each of the message's big texts, found once per text.
#[derive(Default, Debug)]
pub(crate) struct Scanned<'a> {
    bytes: Cell<u64>,
    combined: Option<&'a CombinedWords>,
    /// The texts the combined search covers, by address and length: they are borrowed from
    /// the message for the whole evaluation, so no other text can have the same address and
    /// length while it lasts.
    texts: HashMap<(usize, usize), usize>,
    present: Vec<OnceCell<Vec<u64>>>,
}

impl<'a> Scanned<'a> {
    /// For one evaluation: `texts` (borrowed from the message) are searched once with
    /// `combined`.
    pub(crate) fn with_combined(combined: Option<&'a CombinedWords>, texts: &[&'a str]) -> Self {
        let Some(combined) = combined else {
            return Scanned::default();
        };
        let mut map = HashMap::with_capacity(texts.len());
        for t in texts {
            let n = map.len();
            map.entry((t.as_ptr() as usize, t.len())).or_insert(n);
        }
        let present = (0..map.len()).map(|_| OnceCell::new()).collect();
        Scanned {
            bytes: Cell::new(0),
            combined: Some(combined),
            texts: map,
            present,
        }
    }

    pub(crate) fn add(&self, n: usize) {
        self.bytes.set(self.bytes.get() + n as u64);
    }

    pub(crate) fn get(&self) -> u64 {
        self.bytes.get()
    }

    /// Whether the condition in `slot` has a word in `text`, when `text` is one the combined
    /// search covers; `None` otherwise (the condition searches alone).
    fn present(&self, text: &str, slot: u32) -> Option<bool> {
        let combined = self.combined?;
        let i = *self.texts.get(&(text.as_ptr() as usize, text.len()))?;
        let bits = self.present.get(i)?.get_or_init(|| {
            self.add(text.len());
            combined.present(text)
        });
        let slot = slot as usize;
        Some(
            bits.get(slot / 64)
                .is_some_and(|b| b & (1 << (slot % 64)) != 0),
        )
    }
}

/// Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar): a word
/// of these has no boundary to look for, so it matches inside a run of text, as a search in
/// those languages expects; a word of other scripts matches only between non-word characters.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

/// Whether, in `text`, every character that an ASCII letter matches case-insensitively is
/// ASCII: then an ASCII word occurs in it (as the words' regex finds it) only where an ASCII
/// case-insensitive search finds it too, and that much faster search may rule the regex out.
/// Under Unicode simple case folding (the `regex` crate's `(?i)`), the only characters outside
/// ASCII that fold together with an ASCII letter are U+212A KELVIN SIGN (with `k`) and U+017F
/// LATIN SMALL LETTER LONG S (with `s`) (Unicode `CaseFolding.txt`, status C and S): text
/// without them — most non-ASCII text, accented Latin, Cyrillic, CJK — is as good as ASCII
/// here. Linear: at most three passes over the text.
fn ascii_folds_stay_ascii(text: &str) -> bool {
    text.is_ascii() || !(text.contains('\u{212A}') || text.contains('\u{17F}'))
}

/// Words matched whole and case-insensitively (reference §5.3: "contoso" matches " Contoso"
/// but not "Acontoso"): one regular expression `(?:^|\W)(word|…)(?:\W|$)` with Unicode word
/// characters (letters, marks, digits, connector punctuation), so `ü` and `é` are letters and
/// `Müller` is not found in `Müllerstraße`.
#[derive(Clone, Debug)]
pub(crate) struct Words {
    re: Regex,
    /// The words, ASCII case-insensitively, when they are all ASCII: in a text without the
    /// two characters that fold with ASCII letters ([`ascii_folds_stay_ascii`]) the regex can
    /// only match where one of them occurs, and this search is many times faster than the
    /// regex's, so the regex runs only over texts that have one.
    prefilter: Option<aho_corasick::AhoCorasick>,
    /// The words, when they are all ASCII (for the rule set's [`CombinedWords`]).
    ascii_words: Vec<String>,
    /// This condition's slot in its rule set's [`CombinedWords`].
    slot: Option<u32>,
}

impl Words {
    pub(crate) fn new(words: &[String]) -> Result<Option<Self>, String> {
        if words.is_empty() {
            return Ok(None);
        }
        // Words of spaced scripts share one pair of boundaries (a Unicode `\W` class compiles
        // to tens of kilobytes: once, not once per word); a word beginning or ending in an
        // unspaced script gets its own alternative without the boundary on that side.
        let mut spaced = Vec::new();
        let mut alternatives = Vec::new();
        for w in words {
            let escaped = regex::escape(w);
            let first = w.chars().next().is_some_and(unspaced);
            let last = w.chars().last().is_some_and(unspaced);
            if !first && !last {
                spaced.push(escaped);
            } else {
                alternatives.push(format!(
                    "{}({escaped}){}",
                    if first { "" } else { r"(?:^|\W)" },
                    if last { "" } else { r"(?:\W|$)" }
                ));
            }
        }
        if !spaced.is_empty() {
            alternatives.insert(0, format!(r"(?:^|\W)({})(?:\W|$)", spaced.join("|")));
        }
        let re = RegexBuilder::new(&format!("(?i:{})", alternatives.join("|")))
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("too many or too long words: {e}"))?;
        let prefilter = if words.iter().all(|w| w.is_ascii()) {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(words)
                .ok()
        } else {
            None
        };
        let ascii_words = if prefilter.is_some() {
            words.to_vec()
        } else {
            Vec::new()
        };
        Ok(Some(Words {
            re,
            prefilter,
            ascii_words,
            slot: None,
        }))
    }

    /// Whether the rule set's combined search covers this condition.
    pub(crate) fn combined(&self) -> bool {
        self.slot.is_some()
    }

    /// The first word found in `text`, as it appears there.
    pub(crate) fn find<'t>(&self, text: &'t str, scanned: &Scanned<'_>) -> Option<&'t str> {
        if self.prefilter.is_some() && ascii_folds_stay_ascii(text) {
            // The rule set's one search over this text, else this condition's own.
            let present = match self.slot.and_then(|slot| scanned.present(text, slot)) {
                Some(present) => present,
                None => {
                    scanned.add(text.len());
                    self.prefilter.as_ref().is_some_and(|w| w.is_match(text))
                }
            };
            if !present {
                return None;
            }
        }
        scanned.add(text.len());
        // The fast search first (a DFA over the text); the slower one that reports the groups
        // only over what it matched: most texts match no word, and the groups are in the match.
        let found = self.re.find(text)?;
        let caps = self.re.captures(&text[found.range()])?;
        let offset = found.start();
        caps.iter()
            .skip(1)
            .flatten()
            .next()
            .map(|m| &text[offset + m.start()..offset + m.end()])
    }
}

/// Regular expressions (Exchange's `…MatchesPatterns`): any one matching. Refused at compile
/// time: longer than [`PATTERN_MAX_CHARS`], not a valid expression, or a program over
/// [`PATTERN_SIZE_LIMIT`].
#[derive(Clone, Debug)]
pub(crate) struct Patterns {
    set: RegexSet,
    texts: Vec<String>,
}

/// Compiles one pattern alone, for its error (a set's error does not say which pattern).
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("a pattern is not empty".into());
    }
    if p.chars().count() > PATTERN_MAX_CHARS {
        return Err(format!(
            "a pattern is at most {PATTERN_MAX_CHARS} characters (as in Exchange Online)"
        ));
    }
    RegexBuilder::new(p)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern compiles to more than {limit} bytes; write a smaller one")
            }
            other => format!("not a valid regular expression: {other}"),
        })
}

impl Patterns {
    pub(crate) fn new(patterns: &[String]) -> Result<Option<Self>, (String, String)> {
        if patterns.is_empty() {
            return Ok(None);
        }
        for p in patterns {
            check_pattern(p).map_err(|e| (p.clone(), e))?;
        }
        let set = RegexSetBuilder::new(patterns)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                (
                    patterns.join(" | "),
                    format!("the patterns together are too large: {e}"),
                )
            })?;
        Ok(Some(Patterns {
            set,
            texts: patterns.to_vec(),
        }))
    }

    /// The first pattern that matches `text`.
    pub(crate) fn find(&self, text: &str, scanned: &Scanned<'_>) -> Option<&str> {
        scanned.add(text.len());
        // Most texts match none: `is_match` stops at the first match and needs no overlapping
        // search; only a text that matches is read again (at most twice: still linear) for
        // which pattern matched first.
        if !self.set.is_match(text) {
            return None;
        }
        let m = self.set.matches(text);
        m.iter().next().map(|i| self.texts[i].as_str())
    }
}

/// `-SenderIpRanges`: an address, a range `first-last`, or a CIDR block (IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpRange {
    first: IpAddr,
    last: IpAddr,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpRange {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || "write an IP address, a range a.b.c.d-e.f.g.h, or a CIDR block".to_string();
        if let Some((addr, len)) = t.split_once('/') {
            let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
            let len: u32 = len.trim().parse().map_err(|_| bad())?;
            return match addr {
                IpAddr::V4(a) if len <= 32 => {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    let n = u32::from(a) & mask;
                    Ok(IpRange {
                        first: IpAddr::V4(n.into()),
                        last: IpAddr::V4((n | !mask).into()),
                    })
                }
                IpAddr::V6(a) if len <= 128 => {
                    let mask = if len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - len)
                    };
                    let n = u128::from(a) & mask;
                    Ok(IpRange {
                        first: IpAddr::V6(n.into()),
                        last: IpAddr::V6((n | !mask).into()),
                    })
                }
                _ => Err("the prefix length is at most 32 (IPv4) or 128 (IPv6)".into()),
            };
        }
        if let Some((a, b)) = t.split_once('-') {
            let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
            let b: IpAddr = b.trim().parse().map_err(|_| bad())?;
            let (a, b) = (canonical(a), canonical(b));
            if a.is_ipv4() != b.is_ipv4() || a > b {
                return Err("a range goes from a lower to a higher address of one family".into());
            }
            return Ok(IpRange { first: a, last: b });
        }
        let a: IpAddr = t.parse().map_err(|_| bad())?;
        let a = canonical(a);
        Ok(IpRange { first: a, last: a })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.first.is_ipv4() && self.first <= ip && ip <= self.last
    }
}

//! The matchers rule conditions compile to: words, patterns, IP ranges.
//!
//! Words and patterns run over text the sender controls (subject, body, header values, names),
//! so both are the `regex` crate's automata: time linear in the text whatever the pattern
//! (no backtracking), and every compiled program bounded ([`PATTERN_SIZE_LIMIT`]), so a hostile
//! pattern from an admin (`(a{1000}){1000}`) is refused when the rule is saved, not when mail
//! arrives. A condition's words are one alternation, its patterns one set: each text is read
//! once per condition, however many values it has.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::cell::Cell;
use std::net::IpAddr;

/// A pattern: at most this many characters (Exchange Online's 128 per regular expression).
pub const PATTERN_MAX_CHARS: usize = 128;
/// A compiled pattern set's program and its lazy DFA's cache: at most this many bytes each.
/// Enough for Unicode classes (`\w` is about 100 KB compiled); `(a{1000}){1000}` is far over.
pub const PATTERN_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Bytes read by matchers: how the tests check that matching is linear (a counter, not a
/// timer). Each match over a text adds the text's length.
#[derive(Default, Debug)]
pub(crate) struct Scanned(Cell<u64>);

impl Scanned {
    pub(crate) fn add(&self, n: usize) {
        self.0.set(self.0.get() + n as u64);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
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

/// Words matched whole and case-insensitively (reference §5.3: "contoso" matches " Contoso"
/// but not "Acontoso"): one regular expression `(?:^|\W)(word|…)(?:\W|$)` with Unicode word
/// characters (letters, marks, digits, connector punctuation), so `ü` and `é` are letters and
/// `Müller` is not found in `Müllerstraße`.
#[derive(Clone, Debug)]
pub(crate) struct Words {
    re: Regex,
    /// The words, ASCII case-insensitively, when they are all ASCII: in an ASCII text the
    /// regex can only match where one of them occurs (Unicode case folding of ASCII letters
    /// stays ASCII in ASCII text), and this search is many times faster than the regex's, so
    /// the regex runs only over texts that have one.
    prefilter: Option<aho_corasick::AhoCorasick>,
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
        Ok(Some(Words { re, prefilter }))
    }

    /// The first word found in `text`, as it appears there.
    pub(crate) fn find<'t>(&self, text: &'t str, scanned: &Scanned) -> Option<&'t str> {
        scanned.add(text.len());
        if let Some(words) = &self.prefilter
            && text.is_ascii()
            && !words.is_match(text)
        {
            return None;
        }
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
    pub(crate) fn find(&self, text: &str, scanned: &Scanned) -> Option<&str> {
        scanned.add(text.len());
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

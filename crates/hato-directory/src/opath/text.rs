//! Case-insensitive text primitives used by the evaluator.
//!
//! Exchange compares filter values without regard to case. hato folds case
//! with [`char::to_lowercase`], applied one character at a time, on both
//! sides: the filter's side once, when the filter is parsed ([`fold`]), the
//! subject's side on the fly, without allocating, every time a filter is
//! evaluated. Strings that are all ASCII (nearly every directory value)
//! take a byte-wise fast path.

use std::cmp::Ordering;

/// Lower-cases `s` the way the evaluator does (character by character, so
/// a final capital sigma folds to `σ`, not `ς`, on both sides alike).
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The folded characters of `s`, lazily.
fn folded(s: &str) -> impl Iterator<Item = char> + Clone + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// Whether the iterator starts with all of `prefix`.
fn starts_with<I, P>(mut it: I, prefix: P) -> bool
where
    I: Iterator<Item = char>,
    P: Iterator<Item = char>,
{
    for p in prefix {
        if it.next() != Some(p) {
            return false;
        }
    }
    true
}

/// Byte-wise comparison ignoring ASCII case. When it succeeds the texts
/// are equal under folding too: their non-ASCII bytes are identical, and
/// `lower` is already folded (folding is idempotent). When it fails, the
/// answer is "not equal" for an ASCII `s` (it folds byte by byte) and
/// unknown otherwise.
#[inline]
fn bytes_eq(s: &[u8], lower: &[u8]) -> bool {
    s.eq_ignore_ascii_case(lower)
}

/// `fold(s) == lower`, where `lower` is already folded.
#[inline]
pub(crate) fn eq(s: &str, lower: &str) -> bool {
    if s.len() == lower.len() && bytes_eq(s.as_bytes(), lower.as_bytes()) {
        return true;
    }
    // An ASCII string folds to ASCII of the same length, so the byte-wise
    // answer was final; only non-ASCII text can fold to a match of another
    // length (KELVIN SIGN, 3 bytes, folds to `k`).
    !s.is_ascii() && folded(s).eq(lower.chars())
}

/// `fold(s).starts_with(lower)`.
#[inline]
pub(crate) fn has_prefix(s: &str, lower: &str) -> bool {
    if s.as_bytes()
        .get(..lower.len())
        .is_some_and(|head| bytes_eq(head, lower.as_bytes()))
    {
        return true;
    }
    !s.is_ascii() && starts_with(folded(s), lower.chars())
}

/// `fold(s).ends_with(lower)`.
#[inline]
pub(crate) fn has_suffix(s: &str, lower: &str) -> bool {
    if s.len()
        .checked_sub(lower.len())
        .and_then(|start| s.as_bytes().get(start..))
        .is_some_and(|tail| bytes_eq(tail, lower.as_bytes()))
    {
        return true;
    }
    if s.is_ascii() {
        return false;
    }
    // `ToLowercase` is double-ended, so the folded text can be walked
    // backwards without building it.
    let rev = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    starts_with(rev, lower.chars().rev())
}

/// `fold(s).contains(lower)`; `lower` is not empty.
#[inline]
pub(crate) fn contains(s: &str, lower: &str) -> bool {
    if s.is_ascii() {
        let needle = lower.as_bytes();
        let Some((&first, _)) = needle.split_first() else {
            return true;
        };
        if needle.len() > s.len() {
            return false;
        }
        s.as_bytes().windows(needle.len()).any(|w| {
            w.first().map(u8::to_ascii_lowercase) == Some(first) && w.eq_ignore_ascii_case(needle)
        })
    } else {
        // Try every start position in the folded text, including ones
        // inside a multi-character folding (`İ` folds to `i` + U+0307).
        let mut it = folded(s);
        loop {
            if starts_with(it.clone(), lower.chars()) {
                return true;
            }
            if it.next().is_none() {
                return false;
            }
        }
    }
}

/// `fold(s).cmp(lower)` in code point order (the order of Rust's `str`).
#[inline]
pub(crate) fn cmp(s: &str, lower: &str) -> Ordering {
    if s.is_ascii() {
        // UTF-8 byte order is code point order.
        s.bytes().map(|b| b.to_ascii_lowercase()).cmp(lower.bytes())
    } else {
        folded(s).cmp(lower.chars())
    }
}

/// A decimal number as written (`-12`, `+3.50`), kept as text so that
/// comparing two of them is exact and allocation-free whatever their size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

/// An owned [`Decimal`], parsed once when the filter is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecimalBuf {
    negative: bool,
    int: Box<str>,
    frac: Box<str>,
}

impl DecimalBuf {
    pub(crate) fn as_decimal(&self) -> Decimal<'_> {
        Decimal {
            negative: self.negative,
            int: &self.int,
            frac: &self.frac,
        }
    }
}

impl<'a> Decimal<'a> {
    /// Parses `[+-]digits[.digits]`; anything else is not a number (so
    /// `1e3`, `0x10`, `NaN`, ` 5` compare as text).
    pub(crate) fn parse(s: &'a str) -> Option<Decimal<'a>> {
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, s.get(1..)?),
            Some(b'+') => (false, s.get(1..)?),
            _ => (false, s),
        };
        let (int, frac) = match rest.split_once('.') {
            Some((int, frac)) => {
                if frac.is_empty() {
                    return None;
                }
                (int, frac)
            }
            None => (rest, ""),
        };
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        Some(Decimal {
            // -0 and 0 are the same number.
            negative: negative && !(int.is_empty() && frac.is_empty()),
            int,
            frac,
        })
    }

    fn cmp_magnitude(&self, other: &Decimal<'_>) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }

    /// An owned copy, to keep with a parsed filter.
    pub(crate) fn to_owned(self) -> DecimalBuf {
        DecimalBuf {
            negative: self.negative,
            int: self.int.into(),
            frac: self.frac.into(),
        }
    }

    pub(crate) fn cmp(&self, other: &Decimal<'_>) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_matches_on_both_paths() {
        assert!(eq("SALES", "sales"));
        assert!(eq("ZÜRICH", "zürich"));
        assert!(!eq("Sales", "sale"));
        assert!(has_prefix("Tokyo HQ", "tokyo"));
        assert!(has_prefix("TÖKYO HQ", "tökyo"));
        assert!(!has_prefix("Tok", "tokyo"));
        assert!(has_suffix("Tokyo HQ", " hq"));
        assert!(has_suffix("ÉTÉ HQ", "é hq"));
        assert!(!has_suffix("HQ", "tokyo hq"));
        assert!(contains("North Building", "th bu"));
        assert!(contains("Nörth Building", "th bu"));
        assert!(!contains("North", "south"));
        // U+0130 folds to "i\u{307}": a match may start inside it.
        assert!(contains("\u{130}x", "\u{307}x"));
        assert!(contains("\u{212A}elvin", "kelvin"));
        assert_eq!(cmp("abc", "abd"), Ordering::Less);
        assert_eq!(cmp("ABD", "abc"), Ordering::Greater);
        assert_eq!(cmp("Äb", "äb"), Ordering::Equal);
    }

    #[test]
    fn folding_is_idempotent() {
        // The byte-wise fast paths rely on it: a folded character folds to
        // itself.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for d in c.to_lowercase() {
                let again: Vec<char> = d.to_lowercase().collect();
                assert_eq!(again, [d], "{c:?} -> {d:?}");
            }
        }
    }

    #[test]
    fn decimals_compare_exactly() {
        let d = |s| Decimal::parse(s).unwrap();
        assert_eq!(d("10").cmp(&d("9")), Ordering::Greater);
        assert_eq!(d("010").cmp(&d("10")), Ordering::Equal);
        assert_eq!(d("-0").cmp(&d("0.000")), Ordering::Equal);
        assert_eq!(d("-2").cmp(&d("-10")), Ordering::Greater);
        assert_eq!(d("2.5").cmp(&d("2.45")), Ordering::Greater);
        assert_eq!(d("+1.50").cmp(&d("1.5")), Ordering::Equal);
        assert_eq!(
            d("123456789012345678901234567890").cmp(&d("123456789012345678901234567891")),
            Ordering::Less
        );
        for bad in ["", "-", "+", "1.", ".5", "1e3", "0x1", "1.2.3", " 1", "NaN"] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
    }
}

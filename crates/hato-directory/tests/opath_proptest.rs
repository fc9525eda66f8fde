//! Property tests: the evaluator against a naive reference evaluator, the
//! canonical text round trip, precedence through a minimally parenthesised
//! rendering, and a parser that never panics.

use std::cmp::Ordering;
use std::collections::HashMap;

use hato_directory::opath::{
    Filter, FilterErrorKind, MAX_FILTER_LENGTH, Operator, Property, Value, parse,
};
use proptest::prelude::*;
use proptest::sample::select;

type Subject = HashMap<Property, String>;

const PROPERTIES: [Property; 5] = [
    Property::Department,
    Property::Office,
    Property::City,
    Property::CustomAttribute(1),
    Property::HiddenFromAddressListsEnabled,
];

/// Words for filter values and subject values, chosen to collide: case
/// variants, prefixes and suffixes of each other, numbers that compare
/// differently as text, non-ASCII letters, quotes.
const WORDS: &[&str] = &[
    "Sales",
    "sales",
    "SALES",
    "Sal",
    "les",
    "Tokyo",
    "Tokyo HQ",
    "tokyo annex",
    "HQ",
    "Zürich",
    "ZÜRICH",
    "zür",
    "ÜRICH",
    "rich",
    "été",
    "TÉ",
    "ße",
    "ÉTÉ",
    "straße",
    "O'Brien",
    "o'brien",
    "say \"hi\"",
    "10",
    "9",
    "010",
    "-3",
    "2.5",
    "2.50",
    "True",
    "false",
    "a*b",
    " ",
    "",
];

// ---------------------------------------------------------------- reference

/// Lower-cases the way the evaluator documents: character by character.
/// (`str::to_lowercase` differs only for a word-final capital sigma.)
fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Naive wildcard match: `*` matches any run of characters.
fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// A decimal number, or `None` for other text.
fn number(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    (digits(int) && digits(frac)).then(|| s.parse().expect("a decimal number"))
}

fn reference_eq(value: Option<&str>, operand: &Value) -> bool {
    match (value, operand) {
        (None, Value::Null) => true,
        (None, Value::Text(t)) => t.is_empty(),
        (None, Value::Bool(_)) => false,
        (Some(_), Value::Null) => false,
        (Some(v), Value::Bool(b)) => v == b.to_string(),
        (Some(v), Value::Text(t)) => v == lower(t),
    }
}

fn reference_like(value: Option<&str>, operand: &Value) -> bool {
    let Value::Text(t) = operand else {
        panic!("-like with {operand:?}")
    };
    match value {
        None => t.is_empty(),
        Some(v) => {
            let p: Vec<char> = lower(t).chars().collect();
            let v: Vec<char> = v.chars().collect();
            glob(&p, &v)
        }
    }
}

fn reference(filter: &Filter, subject: &Subject) -> bool {
    match filter {
        Filter::Not(inner) => !reference(inner, subject),
        Filter::And(l, r) => reference(l, subject) && reference(r, subject),
        Filter::Or(l, r) => reference(l, subject) || reference(r, subject),
        Filter::Comparison(c) => {
            let value = subject
                .get(&c.property())
                .filter(|v| !v.is_empty())
                .map(|v| lower(v));
            let value = value.as_deref();
            match c.operator() {
                Operator::Eq => reference_eq(value, c.value()),
                Operator::Ne => !reference_eq(value, c.value()),
                Operator::Like => reference_like(value, c.value()),
                Operator::NotLike => !reference_like(value, c.value()),
                op => {
                    let (Some(v), Value::Text(t)) = (value, c.value()) else {
                        return false;
                    };
                    let ordering = match (number(v), number(t)) {
                        (Some(a), Some(b)) => a.partial_cmp(&b).expect("finite"),
                        _ => v.cmp(&lower(t)),
                    };
                    match op {
                        Operator::Lt => ordering == Ordering::Less,
                        Operator::Gt => ordering == Ordering::Greater,
                        Operator::Le => ordering != Ordering::Greater,
                        _ => ordering != Ordering::Less,
                    }
                }
            }
        }
    }
}

// --------------------------------------------------------------- strategies

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(WORDS).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        6 => (word(), 0..4u8).prop_map(|(w, stars)| Value::Text(match stars {
            0 => w,
            1 => format!("{w}*"),
            2 => format!("*{w}"),
            _ => format!("*{w}*"),
        })),
    ]
}

fn comparison() -> impl Strategy<Value = Filter> {
    (select(&PROPERTIES[..]), select(&Operator::ALL[..]), value())
        .prop_filter_map("invalid comparison", |(p, op, v)| {
            Filter::compare(p, op, v).ok()
        })
}

fn filter() -> impl Strategy<Value = Filter> {
    comparison().prop_recursive(5, 40, 2, |inner| {
        prop_oneof![
            1 => inner.clone().prop_map(Filter::negate),
            2 => (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::and(l, r)),
            2 => (inner.clone(), inner).prop_map(|(l, r)| Filter::or(l, r)),
        ]
    })
}

fn subject() -> impl Strategy<Value = Subject> {
    proptest::collection::hash_map(select(&PROPERTIES[..]), word(), 0..5)
}

fn directory() -> impl Strategy<Value = Vec<Subject>> {
    proptest::collection::vec(subject(), 0..16)
}

// ------------------------------------------------- loose rendering (precedence)

/// Choices for [`loose`], drawn from a seed.
struct Style(u64);

impl Style {
    fn pick(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }

    fn case(&mut self, s: &str) -> String {
        match self.pick(3) {
            0 => s.to_owned(),
            1 => s.to_ascii_uppercase(),
            _ => s.to_ascii_lowercase(),
        }
    }

    fn space(&mut self) -> &'static str {
        [" ", "  ", "\t", "\n "][self.pick(4) as usize]
    }
}

fn precedence(f: &Filter) -> u8 {
    match f {
        Filter::Or(..) => 1,
        Filter::And(..) => 2,
        Filter::Not(_) => 3,
        Filter::Comparison(_) => 4,
    }
}

/// Renders with as few parentheses as precedence and left associativity
/// allow (plus some random extra ones), random case and spacing, and
/// either quote style.
fn loose(f: &Filter, min: u8, style: &mut Style) -> String {
    let body = match f {
        Filter::Or(l, r) => format!(
            "{}{}{}{}{}",
            loose(l, 1, style),
            style.space(),
            style.case("-or"),
            style.space(),
            loose(r, 2, style)
        ),
        Filter::And(l, r) => format!(
            "{}{}{}{}{}",
            loose(l, 2, style),
            style.space(),
            style.case("-and"),
            style.space(),
            loose(r, 3, style)
        ),
        Filter::Not(inner) => format!(
            "{}{}{}",
            style.case("-not"),
            style.space(),
            loose(inner, 3, style)
        ),
        Filter::Comparison(c) => {
            let value = match c.value() {
                Value::Null => style.case("$null"),
                Value::Bool(b) => style.case(if *b { "$true" } else { "$false" }),
                Value::Text(t) if style.pick(2) == 0 => format!("'{}'", t.replace('\'', "''")),
                Value::Text(t) => format!("\"{}\"", t.replace('"', "\"\"")),
            };
            format!(
                "{}{}{}{}{}",
                style.case(c.property().name()),
                style.space(),
                style.case(c.operator().name()),
                style.space(),
                value
            )
        }
    };
    if precedence(f) < min || style.pick(8) == 0 {
        format!("({body})")
    } else {
        body
    }
}

// ------------------------------------------------------------------- tests

/// Tokens for "token soup" inputs: mostly valid pieces in random order,
/// which reach far deeper into the parser than random characters do.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "-and",
    "-or",
    "-not",
    "-eq",
    "-ne",
    "-like",
    "-notlike",
    "-lt",
    "-gt",
    "-le",
    "-ge",
    "-AND",
    "-Eq",
    "Department",
    "office",
    "CITY",
    "CustomAttribute1",
    "Foo",
    "'Sales'",
    "'Tok*'",
    "'*yo'",
    "'*'",
    "'a*b'",
    "''",
    "'O''Brien'",
    "\"x\"",
    "'unterminated",
    "$null",
    "$true",
    "$bogus",
    "10",
    "-5",
    "*",
    "-",
    "$",
    "'",
    "\"",
    "é",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(select(TOKENS), 0..24).prop_map(|t| t.join(" "))
}

fn fixed_directory() -> Vec<Subject> {
    let entry = |pairs: &[(Property, &str)]| {
        pairs
            .iter()
            .map(|(p, v)| (*p, (*v).to_owned()))
            .collect::<Subject>()
    };
    vec![
        entry(&[]),
        entry(&[(Property::Department, "Sales"), (Property::Office, "Tokyo")]),
        entry(&[(Property::Department, "SALES"), (Property::City, "O'Brien")]),
        entry(&[
            (Property::CustomAttribute(1), "10"),
            (Property::Office, "x"),
        ]),
        entry(&[
            (Property::Department, "é"),
            (Property::CustomAttribute(1), "-5"),
        ]),
    ]
}

/// The canonical text parses back to the same tree, or is over the limit.
fn check_round_trip(f: &Filter) -> Result<(), TestCaseError> {
    let text = f.to_opath();
    if text.chars().count() <= MAX_FILTER_LENGTH {
        prop_assert_eq!(parse(&text), Ok(f.clone()), "canonical text {:?}", text);
    } else {
        prop_assert_eq!(
            parse(&text).map_err(|e| e.kind),
            Err(FilterErrorKind::TooLong)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn matches_agrees_with_reference(f in filter(), dir in directory()) {
        for s in &dir {
            prop_assert_eq!(f.matches(s), reference(&f, s), "filter {} on {:?}", f, s);
        }
    }

    #[test]
    fn single_comparisons_agree_with_reference(f in comparison(), s in subject()) {
        prop_assert_eq!(f.matches(&s), reference(&f, &s), "filter {} on {:?}", f, s);
    }

    #[test]
    fn one_property_comparisons_agree_with_reference(
        op in select(&Operator::ALL[..]),
        operand in value(),
        v in word(),
    ) {
        if let Ok(f) = Filter::compare(Property::Department, op, operand) {
            let s = Subject::from([(Property::Department, v)]);
            prop_assert_eq!(f.matches(&s), reference(&f, &s), "filter {} on {:?}", f, s);
        }
    }

    #[test]
    fn related_values_agree_with_reference(
        op in select(&Operator::ALL[..]),
        base in word(),
        stars in 0..4u8,
        case in 0..3u8,
        before in select(&["", "x", "É", " "][..]),
        after in select(&["", "y", "ß", "Σ"][..]),
    ) {
        // Subject and operand share a word, so that prefixes, suffixes and
        // infixes actually meet, across case and non-ASCII letters.
        let pattern = match stars {
            0 => base.clone(),
            1 => format!("{base}*"),
            2 => format!("*{base}"),
            _ => format!("*{base}*"),
        };
        let cased = match case {
            0 => base,
            1 => base.to_uppercase(),
            _ => base.to_lowercase(),
        };
        if let Ok(f) = Filter::compare(Property::Department, op, Value::Text(pattern)) {
            let s = Subject::from([(Property::Department, format!("{before}{cased}{after}"))]);
            prop_assert_eq!(f.matches(&s), reference(&f, &s), "filter {} on {:?}", f, s);
        }
    }

    #[test]
    fn canonical_text_round_trips(f in filter()) {
        check_round_trip(&f)?;
    }

    #[test]
    fn loose_text_parses_to_the_same_tree(f in filter(), seed in 1u64..) {
        let text = loose(&f, 0, &mut Style(seed));
        if text.chars().count() <= MAX_FILTER_LENGTH {
            prop_assert_eq!(parse(&text), Ok(f.clone()), "loose text {:?}", text);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in any::<String>()) {
        match parse(&s) {
            Ok(f) => check_round_trip(&f)?,
            Err(e) => prop_assert!(e.position <= s.chars().count().min(MAX_FILTER_LENGTH)),
        }
    }

    #[test]
    fn parse_never_panics_on_token_soup(s in soup()) {
        match parse(&s) {
            Ok(f) => {
                check_round_trip(&f)?;
                for subject in fixed_directory() {
                    prop_assert_eq!(f.matches(&subject), reference(&f, &subject));
                }
            }
            Err(e) => {
                prop_assert!(e.position <= s.chars().count(), "{} for {:?}", e, s);
                prop_assert!(!e.expected.is_empty() && !e.message.is_empty());
            }
        }
    }
}

#[test]
fn reference_helpers_are_sane() {
    let chars = |s: &str| s.chars().collect::<Vec<_>>();
    assert!(glob(&chars("to*"), &chars("tokyo")));
    assert!(glob(&chars("*yo"), &chars("tokyo")));
    assert!(glob(&chars("*ky*"), &chars("tokyo")));
    assert!(!glob(&chars("*ky"), &chars("tokyo")));
    assert!(glob(&chars("*"), &chars("")));
    assert_eq!(number("-2.50"), Some(-2.5));
    assert_eq!(number("1e3"), None);
    assert_eq!(number("1."), None);
}

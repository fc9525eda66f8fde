//! The filter types and their evaluation: what the parser builds, precanned filters turn into,
//! and the directory evaluates. Imports only the leaf modules (`property`, `text`); the parser and
//! the precanned forms import it, so nothing here refers back to them.

use super::property::Property;
use super::text;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What a filter is evaluated against: a mailbox, mail user, contact or
/// group in the directory.
///
/// A property that is `None` or `""` is "not set". Boolean properties
/// (such as [`Property::HiddenFromAddressListsEnabled`]) are reported as
/// `"True"` / `"False"` (any case).
pub trait FilterSubject {
    /// The value of `property` on this recipient.
    fn property(&self, property: Property) -> Option<&str>;
}

impl<T: FilterSubject + ?Sized> FilterSubject for &T {
    fn property(&self, property: Property) -> Option<&str> {
        (**self).property(property)
    }
}

impl FilterSubject for HashMap<Property, String> {
    fn property(&self, property: Property) -> Option<&str> {
        self.get(&property).map(String::as_str)
    }
}

impl FilterSubject for BTreeMap<Property, String> {
    fn property(&self, property: Property) -> Option<&str> {
        self.get(&property).map(String::as_str)
    }
}

/// A parse error, or a comparison that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct FilterError {
    /// 0-based offset, in characters (not bytes), of the text the error is
    /// about; [`MAX_FILTER_LENGTH`](super::MAX_FILTER_LENGTH) for a filter
    /// that is too long, `0` for errors from [`Comparison::new`], which has
    /// no text.
    pub position: usize,
    /// What sort of error this is, for callers that react to it.
    pub kind: FilterErrorKind,
    /// What would have been valid at `position`, e.g. `"')'"`.
    pub expected: String,
    /// A complete sentence for a person, e.g.
    /// `"expected ')', found the end of the filter"`.
    pub message: String,
}

/// The kinds of [`FilterError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Longer than Exchange's 2,048 characters.
    TooLong,
    /// Something other than a property name, `(` or `-not` where a
    /// condition should start (including an empty filter).
    ExpectedProperty,
    /// A word in property position that is not a known property.
    UnknownProperty,
    /// No comparison operator after a property name.
    ExpectedOperator,
    /// `-word` where a comparison operator belongs, not an operator.
    UnknownOperator,
    /// No value after a comparison operator.
    ExpectedValue,
    /// A quoted value without its closing quote.
    UnterminatedValue,
    /// `$something` other than `$null`, `$true`, `$false`.
    UnknownVariable,
    /// `$null`/`$true`/`$false` with an operator other than `-eq`/`-ne`.
    ValueNotAllowed,
    /// A `-like` pattern with a `*` that is not at its start or end.
    InvalidWildcard,
    /// A `(` without its `)`.
    ExpectedCloseParen,
    /// Text after a complete filter (e.g. a stray `)` or a missing `-and`).
    UnexpectedText,
}

impl FilterError {
    pub(crate) fn new(
        position: usize,
        kind: FilterErrorKind,
        expected: impl Into<String>,
        message: impl Into<String>,
    ) -> FilterError {
        FilterError {
            position,
            kind,
            expected: expected.into(),
            message: message.into(),
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `-eq`
    Eq,
    /// `-ne`
    Ne,
    /// `-like`
    Like,
    /// `-notlike`
    NotLike,
    /// `-lt`
    Lt,
    /// `-gt`
    Gt,
    /// `-le`
    Le,
    /// `-ge`
    Ge,
}

impl Operator {
    /// Every operator.
    pub const ALL: [Operator; 8] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Like,
        Operator::NotLike,
        Operator::Lt,
        Operator::Gt,
        Operator::Le,
        Operator::Ge,
    ];

    /// The operator's OPATH spelling, `-eq` and so on.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Eq => "-eq",
            Operator::Ne => "-ne",
            Operator::Like => "-like",
            Operator::NotLike => "-notlike",
            Operator::Lt => "-lt",
            Operator::Gt => "-gt",
            Operator::Le => "-le",
            Operator::Ge => "-ge",
        }
    }

    /// Parses `-eq`, `-EQ`, … (with the hyphen).
    pub fn parse(text: &str) -> Option<Operator> {
        Operator::ALL
            .iter()
            .copied()
            .find(|op| op.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The right-hand side of a comparison, as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `$null`: "not set".
    Null,
    /// `$true` / `$false`.
    Bool(bool),
    /// A quoted or bare text value, quotes removed and doubled quotes
    /// undone; `-like` patterns keep their `*`.
    Text(String),
}

impl Value {
    /// The value in canonical OPATH form: single-quoted text with inner
    /// quotes doubled, or `$null` / `$true` / `$false`.
    pub fn to_opath(&self) -> String {
        match self {
            Value::Null => "$null".to_owned(),
            Value::Bool(true) => "$true".to_owned(),
            Value::Bool(false) => "$false".to_owned(),
            Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
        }
    }
}

/// One `Property -operator value` condition, checked and prepared for fast
/// evaluation when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    property: Property,
    operator: Operator,
    value: Value,
    test: Test,
    /// `-ne` / `-notlike`: the result of `test` is inverted.
    negate: bool,
}

/// The prepared form of a comparison: values already case-folded,
/// `-like` patterns already split at their wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Test {
    /// Not set (`$null`, `''`).
    Unset,
    /// Set, and equal to this folded text.
    Exact(Box<str>),
    /// Set, and starting with this folded text (`'text*'`).
    Prefix(Box<str>),
    /// Set, and ending with this folded text (`'*text'`).
    Suffix(Box<str>),
    /// Set, and containing this non-empty folded text (`'*text*'`).
    Contains(Box<str>),
    /// Set (`'*'`).
    Set,
    /// Set, and ordered against the value as `-lt`/`-gt`/`-le`/`-ge` says.
    Order {
        operator: Operator,
        folded: Box<str>,
        /// The value as a decimal number, if it is one.
        number: Option<text::DecimalBuf>,
    },
}

impl Comparison {
    /// Builds a comparison, with the checks [`parse`](super::parse) makes: `$null`,
    /// `$true` and `$false` only with `-eq`/`-ne`; `-like` wildcards only at
    /// the start or end of the pattern; a valid property. Errors have
    /// position 0.
    pub fn new(property: Property, operator: Operator, value: Value) -> Result<Self, FilterError> {
        if !property.is_valid() {
            return Err(FilterError::new(
                0,
                FilterErrorKind::UnknownProperty,
                "CustomAttribute1 to CustomAttribute15",
                "custom attributes are numbered 1 to 15",
            ));
        }
        let (test, negate) = Self::prepare(operator, &value)
            .map_err(|(kind, expected, message)| FilterError::new(0, kind, expected, message))?;
        Ok(Comparison {
            property,
            operator,
            value,
            test,
            negate,
        })
    }

    /// Prepares the evaluation of `operator value`, or says why the pair
    /// is invalid as (kind, expected, message).
    fn prepare(
        operator: Operator,
        value: &Value,
    ) -> Result<(Test, bool), (FilterErrorKind, String, String)> {
        let text = match value {
            Value::Text(t) => t.as_str(),
            Value::Null | Value::Bool(_) => {
                if !matches!(operator, Operator::Eq | Operator::Ne) {
                    return Err((
                        FilterErrorKind::ValueNotAllowed,
                        "a quoted value".to_owned(),
                        format!(
                            "{} can only be compared with -eq or -ne, not {}",
                            value.to_opath(),
                            operator.name()
                        ),
                    ));
                }
                ""
            }
        };
        let equality = |value: &Value| match value {
            Value::Null => Test::Unset,
            Value::Bool(b) => Test::Exact(if *b { "true" } else { "false" }.into()),
            Value::Text(t) if t.is_empty() => Test::Unset,
            Value::Text(t) => Test::Exact(text::fold(t).into()),
        };
        let order = || Test::Order {
            operator,
            folded: text::fold(text).into(),
            number: text::Decimal::parse(text).map(text::Decimal::to_owned),
        };
        Ok(match operator {
            Operator::Eq => (equality(value), false),
            Operator::Ne => (equality(value), true),
            Operator::Like => (Self::pattern(text)?, false),
            Operator::NotLike => (Self::pattern(text)?, true),
            Operator::Lt | Operator::Gt | Operator::Le | Operator::Ge => (order(), false),
        })
    }

    /// Splits a `-like` pattern at its wildcards. Exchange allows `*` only
    /// as the first or last character (or both); `'**'` is the same as
    /// `'*'`.
    fn pattern(text: &str) -> Result<Test, (FilterErrorKind, String, String)> {
        if text == "*" {
            return Ok(Test::Set);
        }
        let (lead, rest) = match text.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (trail, core) = match rest.strip_suffix('*') {
            Some(core) => (true, core),
            None => (false, rest),
        };
        if core.contains('*') {
            return Err((
                FilterErrorKind::InvalidWildcard,
                "a pattern with '*' only at its start or end".to_owned(),
                format!(
                    "the wildcard '*' may only be the first or last character of a -like value \
                     (such as 'Sales*', '*Sales' or '*Sales*'), not in the middle of '{text}'"
                ),
            ));
        }
        let core: Box<str> = text::fold(core).into();
        Ok(match (lead, trail) {
            (false, false) if core.is_empty() => Test::Unset,
            (false, false) => Test::Exact(core),
            (false, true) => Test::Prefix(core),
            (true, false) => Test::Suffix(core),
            (true, true) if core.is_empty() => Test::Set,
            (true, true) => Test::Contains(core),
        })
    }

    /// `property -eq 'value'`, which needs no checks (the property must be
    /// valid).
    pub(crate) fn eq_text(property: Property, value: &str) -> Comparison {
        let test = if value.is_empty() {
            Test::Unset
        } else {
            Test::Exact(text::fold(value).into())
        };
        Comparison {
            property,
            operator: Operator::Eq,
            value: Value::Text(value.to_owned()),
            test,
            negate: false,
        }
    }

    /// `property -ne $null`.
    pub(crate) fn is_set(property: Property) -> Comparison {
        Comparison {
            property,
            operator: Operator::Ne,
            value: Value::Null,
            test: Test::Unset,
            negate: true,
        }
    }

    /// The property compared.
    pub fn property(&self) -> Property {
        self.property
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The value, as written.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Whether a recipient whose property has the value `value` satisfies
    /// this comparison. Allocation-free.
    #[inline]
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.filter(|v| !v.is_empty());
        let hit = match (&self.test, value) {
            (Test::Unset, value) => value.is_none(),
            // Every other test needs the property set; -ne / -notlike turn
            // this `false` into a match, as the LDAP negation does.
            (_, None) => false,
            (Test::Exact(t), Some(v)) => text::eq(v, t),
            (Test::Prefix(t), Some(v)) => text::has_prefix(v, t),
            (Test::Suffix(t), Some(v)) => text::has_suffix(v, t),
            (Test::Contains(t), Some(v)) => text::contains(v, t),
            (Test::Set, Some(_)) => true,
            (
                Test::Order {
                    operator,
                    folded,
                    number,
                },
                Some(v),
            ) => {
                let ordering = match (number, text::Decimal::parse(v)) {
                    (Some(right), Some(left)) => left.cmp(&right.as_decimal()),
                    _ => text::cmp(v, folded),
                };
                match operator {
                    Operator::Lt => ordering.is_lt(),
                    Operator::Gt => ordering.is_gt(),
                    Operator::Le => ordering.is_le(),
                    // Ge; `Order` is only built for the ordering operators.
                    _ => ordering.is_ge(),
                }
            }
        };
        hit != self.negate
    }

    /// Canonical OPATH text: `(Department -eq 'Sales')`.
    pub fn to_opath(&self) -> String {
        let mut out = String::new();
        self.write_opath(&mut out);
        out
    }

    fn write_opath(&self, out: &mut String) {
        out.push('(');
        out.push_str(self.property.name());
        out.push(' ');
        out.push_str(self.operator.name());
        out.push(' ');
        out.push_str(&self.value.to_opath());
        out.push(')');
    }
}

/// A parsed recipient filter.
///
/// Built by [`parse`](super::parse) or
/// [`Precanned::to_filter`](super::Precanned::to_filter), or by hand from
/// [`Comparison`]s. `-and` / `-or` chains are left-nested binary nodes,
/// as the parser's left associativity produces them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `Property -op value`.
    Comparison(Comparison),
    /// `-not filter`.
    Not(Box<Filter>),
    /// `left -and right`.
    And(Box<Filter>, Box<Filter>),
    /// `left -or right`.
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// `left -and right`.
    pub fn and(left: Filter, right: Filter) -> Filter {
        Filter::And(Box::new(left), Box::new(right))
    }

    /// `left -or right`.
    pub fn or(left: Filter, right: Filter) -> Filter {
        Filter::Or(Box::new(left), Box::new(right))
    }

    /// `-not inner` (a method named `not` would clash with `std::ops::Not`
    /// in readers' minds).
    pub fn negate(inner: Filter) -> Filter {
        Filter::Not(Box::new(inner))
    }

    /// A single comparison; see [`Comparison::new`] for the checks.
    pub fn compare(
        property: Property,
        operator: Operator,
        value: Value,
    ) -> Result<Filter, FilterError> {
        Comparison::new(property, operator, value).map(Filter::Comparison)
    }

    /// Whether `subject` is a member of a group with this filter.
    ///
    /// Exchange evaluates the filter each time mail is sent to the group,
    /// so this is called once per directory entry per message: it does not
    /// allocate, and `-and` / `-or` stop as soon as the outcome is known.
    /// Works with `&dyn FilterSubject` too.
    pub fn matches<S: FilterSubject + ?Sized>(&self, subject: &S) -> bool {
        match self {
            Filter::Comparison(c) => c.matches_value(subject.property(c.property)),
            Filter::Not(inner) => !inner.matches(subject),
            Filter::And(left, right) => left.matches(subject) && right.matches(subject),
            Filter::Or(left, right) => left.matches(subject) || right.matches(subject),
        }
    }

    /// The filter as canonical OPATH text, in the parenthesised style
    /// Exchange itself shows `RecipientFilter` in: every comparison, `-not`
    /// and `-and`/`-or` chain in parentheses, chains of one operator flat:
    /// `((Department -eq 'Sales') -and (Office -like 'Tokyo*'))`.
    /// `parse(&f.to_opath())` gives back `f` whenever the text is within
    /// [`MAX_FILTER_LENGTH`](super::MAX_FILTER_LENGTH). It can be longer
    /// than the text `f` was parsed from (parentheses, quotes and spaces are
    /// added), so a filter near the
    /// limit can have a canonical form over it, which `parse` then refuses:
    /// Exchange, too, counts its normalised form against the limit
    /// ("2048 characters including internal syntax").
    pub fn to_opath(&self) -> String {
        let mut out = String::new();
        self.write_opath(&mut out);
        out
    }

    fn write_opath(&self, out: &mut String) {
        match self {
            Filter::Comparison(c) => c.write_opath(out),
            Filter::Not(inner) => {
                out.push_str("(-not ");
                inner.write_opath(out);
                out.push(')');
            }
            Filter::And(..) | Filter::Or(..) => {
                out.push('(');
                self.write_chain(out);
                out.push(')');
            }
        }
    }

    /// Writes a left-nested chain of one operator flat, without the outer
    /// parentheses, the way Exchange shows it:
    /// `(a) -or (b) -or (c)` for `Or(Or(a, b), c)`; left associativity
    /// gives the same tree back. A right operand of the same operator
    /// keeps its parentheses.
    fn write_chain(&self, out: &mut String) {
        let (left, right, keyword) = match self {
            Filter::And(left, right) => (left, right, " -and "),
            Filter::Or(left, right) => (left, right, " -or "),
            Filter::Comparison(_) | Filter::Not(_) => {
                self.write_opath(out);
                return;
            }
        };
        if std::mem::discriminant(self) == std::mem::discriminant(&**left) {
            left.write_chain(out);
        } else {
            left.write_opath(out);
        }
        out.push_str(keyword);
        right.write_opath(out);
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_opath())
    }
}

/// A filter is stored as its OPATH text, like Exchange's `RecipientFilter`.
impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_opath())
    }
}

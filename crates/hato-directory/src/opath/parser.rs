//! Recursive-descent parser for OPATH filter text.
//!
//! The parser works on characters, so every error position is a character
//! offset an administrator can count to in the text they typed. It scans as
//! it goes rather than tokenising first, which lets each error say what was
//! expected at that point ("expected ')'", "expected an operator such as
//! -eq").

use super::filter::{Comparison, Filter, FilterError, FilterErrorKind, Operator, Value};
use super::property::Property;

/// Exchange's limit on the length of a `RecipientFilter`: 2,048 characters.
pub const MAX_FILTER_LENGTH: usize = 2048;

/// Parses OPATH filter text, such as
/// `(Department -eq 'Sales') -and (Office -like 'Tokyo*')`.
///
/// See the [module documentation](super) for the syntax. Errors carry the
/// 0-based character position of the offending text and what was expected
/// there; a filter longer than [`MAX_FILTER_LENGTH`] characters is refused
/// at position 2,048 without being read further.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    parse_with(text, None)
}

/// Parses as [`parse`] does, but accepts only the properties in `supported`: a filter naming
/// another property is refused at its position, with the list of supported ones, instead of
/// silently matching nobody where the directory does not fill that property.
pub fn parse_supported(text: &str, supported: &[Property]) -> Result<Filter, FilterError> {
    parse_with(text, Some(supported))
}

fn parse_with(text: &str, supported: Option<&[Property]>) -> Result<Filter, FilterError> {
    if text.chars().nth(MAX_FILTER_LENGTH).is_some() {
        return Err(FilterError::new(
            MAX_FILTER_LENGTH,
            FilterErrorKind::TooLong,
            format!("at most {MAX_FILTER_LENGTH} characters"),
            format!(
                "the filter is longer than {MAX_FILTER_LENGTH} characters, \
                 the most Exchange allows for a recipient filter"
            ),
        ));
    }
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        supported,
    };
    parser.parse_filter()
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    /// When set, the only properties a filter may name.
    supported: Option<&'a [Property]>,
}

/// An operator waiting for its right-hand operand, or an open parenthesis.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// `(` at this position.
    Open(usize),
    Not,
    And,
    Or,
}

/// How far [`reduce`] goes down the stack of pending operators.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduce {
    /// Only `-not`s (they bind tightest).
    Nots,
    /// `-and`s (and `-not`s).
    Ands,
    /// Everything up to the innermost open parenthesis.
    AndsAndOrs,
}

/// Applies pending operators from the top of the stack to the operands.
fn reduce(operands: &mut Vec<Filter>, pending: &mut Vec<Pending>, until: Reduce) {
    while let Some(top) = pending.last().copied() {
        let applies = match top {
            Pending::Open(_) => false,
            Pending::Not => true,
            Pending::And => until != Reduce::Nots,
            Pending::Or => until == Reduce::AndsAndOrs,
        };
        if !applies {
            return;
        }
        let combined = match top {
            Pending::Not => operands.pop().map(Filter::negate),
            _ => match (operands.pop(), operands.pop()) {
                (Some(right), Some(left)) if matches!(top, Pending::And) => {
                    Some(Filter::and(left, right))
                }
                (Some(right), Some(left)) => Some(Filter::or(left, right)),
                // Unreachable: binary operators are pushed after an operand
                // and reduced only after the next one.
                (Some(right), None) => Some(right),
                (None, _) => None,
            },
        };
        pending.pop();
        if let Some(f) = combined {
            operands.push(f);
        }
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters of an unquoted value: Exchange takes integers and system
/// values (`UserMailbox`) without quotes.
fn is_bare_value_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '*' | '+' | ':' | '/')
}

/// The property names for error messages, with the fifteen custom
/// attributes folded into one entry.
fn property_list() -> String {
    list_of(&Property::ALL)
}

fn list_of(properties: &[Property]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for &p in properties {
        match p {
            Property::CustomAttribute(1) => names.push("CustomAttribute1 to CustomAttribute15"),
            Property::CustomAttribute(_) => {}
            other => names.push(other.name()),
        }
    }
    names.join(", ")
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Describes the text at the current position for an error message.
    fn found(&self) -> String {
        let Some(rest) = self.chars.get(self.pos..).filter(|r| !r.is_empty()) else {
            return "the end of the filter".to_owned();
        };
        let mut len = rest
            .iter()
            .position(|c| c.is_whitespace() || matches!(c, '(' | ')'))
            .unwrap_or(rest.len())
            .max(1);
        let truncated = len > 24;
        len = len.min(24);
        let word: String = rest.iter().take(len).collect();
        if truncated {
            format!("'{word}…'")
        } else {
            format!("'{word}'")
        }
    }

    /// The word after a `-` at the current position (`and` for `-and`), and
    /// the position just past it.
    fn dash_word(&self) -> Option<(String, usize)> {
        if self.peek() != Some('-') {
            return None;
        }
        let start = self.pos + 1;
        let mut end = start;
        while self.chars.get(end).copied().is_some_and(is_identifier_char) {
            end += 1;
        }
        let word = self.chars.get(start..end)?.iter().collect();
        Some((word, end))
    }

    /// Consumes `-keyword` (any case) if it is next.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        match self.dash_word() {
            Some((word, end)) if word.eq_ignore_ascii_case(keyword) => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// Parses the whole text with an explicit operator stack
    /// (shunting-yard) instead of recursion, so that the deepest nesting the
    /// length limit allows (about a thousand parentheses) cannot overflow
    /// the stack of whatever thread parses it.
    fn parse_filter(&mut self) -> Result<Filter, FilterError> {
        let mut operands: Vec<Filter> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        loop {
            // Expecting a condition: `-not`s and `(`s, then a comparison.
            self.skip_whitespace();
            if self.eat_keyword("not") {
                pending.push(Pending::Not);
                continue;
            }
            match self.peek() {
                Some('(') => {
                    pending.push(Pending::Open(self.pos));
                    self.pos += 1;
                    continue;
                }
                Some(c) if is_identifier_char(c) => {
                    let comparison = self.parse_comparison()?;
                    operands.push(comparison);
                }
                _ => {
                    return Err(FilterError::new(
                        self.pos,
                        FilterErrorKind::ExpectedProperty,
                        "a property name, '(' or -not",
                        format!(
                            "expected a property name such as Department, '(' or -not, found {}",
                            self.found()
                        ),
                    ));
                }
            }

            // Expecting what follows a complete condition: `)`, `-and`,
            // `-or` or the end.
            loop {
                reduce(&mut operands, &mut pending, Reduce::Nots);
                self.skip_whitespace();
                if self.peek() == Some(')') {
                    reduce(&mut operands, &mut pending, Reduce::AndsAndOrs);
                    if let Some(Pending::Open(_)) = pending.last() {
                        pending.pop();
                        self.pos += 1;
                        // The group is a condition: a `-not` before it applies.
                        continue;
                    }
                    let expected = "-and, -or or the end of the filter";
                    return Err(FilterError::new(
                        self.pos,
                        FilterErrorKind::UnexpectedText,
                        expected,
                        format!("unmatched ')'; expected {expected}"),
                    ));
                }
                if self.eat_keyword("and") {
                    // Left associativity: an earlier -and is complete.
                    reduce(&mut operands, &mut pending, Reduce::Ands);
                    pending.push(Pending::And);
                    break;
                }
                if self.eat_keyword("or") {
                    reduce(&mut operands, &mut pending, Reduce::AndsAndOrs);
                    pending.push(Pending::Or);
                    break;
                }
                // Anything else ends the filter, or is an error.
                let open = pending.iter().rev().find_map(|p| match p {
                    Pending::Open(position) => Some(*position),
                    _ => None,
                });
                if let Some(open) = open {
                    return Err(FilterError::new(
                        self.pos,
                        FilterErrorKind::ExpectedCloseParen,
                        "')'",
                        format!(
                            "expected ')' to close the '(' at position {open} (or -and, -or), \
                             found {}",
                            self.found()
                        ),
                    ));
                }
                if self.pos < self.chars.len() {
                    let expected = "-and, -or or the end of the filter";
                    return Err(FilterError::new(
                        self.pos,
                        FilterErrorKind::UnexpectedText,
                        expected,
                        format!(
                            "unexpected text after the end of the filter: expected {expected}, \
                             found {}",
                            self.found()
                        ),
                    ));
                }
                reduce(&mut operands, &mut pending, Reduce::AndsAndOrs);
                return match (operands.pop(), operands.is_empty(), pending.is_empty()) {
                    (Some(filter), true, true) => Ok(filter),
                    // Unreachable: every operator was reduced above.
                    _ => Err(FilterError::new(
                        self.pos,
                        FilterErrorKind::UnexpectedText,
                        "the end of the filter",
                        "internal error: the filter could not be assembled",
                    )),
                };
            }
        }
    }

    fn parse_comparison(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        while self.peek().is_some_and(is_identifier_char) {
            self.pos += 1;
        }
        let name: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or(&[])
            .iter()
            .collect();
        let Some(property) = Property::parse(&name) else {
            return Err(FilterError::new(
                start,
                FilterErrorKind::UnknownProperty,
                "a property name",
                format!(
                    "unknown property '{name}'; expected a property name: {}",
                    match self.supported {
                        Some(s) => list_of(s),
                        None => property_list(),
                    }
                ),
            ));
        };
        if let Some(supported) = self.supported
            && !supported.contains(&property)
        {
            return Err(FilterError::new(
                start,
                FilterErrorKind::UnknownProperty,
                "a supported property name",
                format!(
                    "the property '{}' is not filled in by this directory, so the filter would match nobody; use one of: {}",
                    property.name(),
                    list_of(supported)
                ),
            ));
        }

        self.skip_whitespace();
        let operator_position = self.pos;
        let operator = match self.dash_word() {
            Some((word, end)) => match Operator::parse(&format!("-{word}")) {
                Some(op) => {
                    self.pos = end;
                    op
                }
                None if word.is_empty()
                    || ["and", "or", "not"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(&word)) =>
                {
                    return Err(self.expected_operator(property));
                }
                None => {
                    return Err(FilterError::new(
                        operator_position,
                        FilterErrorKind::UnknownOperator,
                        "a comparison operator",
                        format!(
                            "unknown operator '-{word}'; expected one of -eq, -ne, -like, \
                             -notlike, -lt, -gt, -le, -ge"
                        ),
                    ));
                }
            },
            None => return Err(self.expected_operator(property)),
        };

        self.skip_whitespace();
        let value_position = self.pos;
        let value = self.parse_value(operator)?;
        Comparison::new(property, operator, value)
            .map(Filter::Comparison)
            .map_err(|e| FilterError {
                position: value_position,
                ..e
            })
    }

    fn expected_operator(&self, property: Property) -> FilterError {
        FilterError::new(
            self.pos,
            FilterErrorKind::ExpectedOperator,
            "an operator such as -eq",
            format!(
                "expected an operator such as -eq, -like or -ne after {}, found {}",
                property.name(),
                self.found()
            ),
        )
    }

    fn parse_value(&mut self, operator: Operator) -> Result<Value, FilterError> {
        let start = self.pos;
        match self.peek() {
            Some(quote @ ('\'' | '"')) => {
                self.pos += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(FilterError::new(
                                start,
                                FilterErrorKind::UnterminatedValue,
                                format!("a closing {quote}"),
                                format!(
                                    "the value that starts at position {start} has no closing \
                                     {quote} (write a {quote} inside it twice)"
                                ),
                            ));
                        }
                        Some(c) if c == quote => {
                            // A doubled quote stands for one quote character.
                            if self.chars.get(self.pos + 1) == Some(&quote) {
                                text.push(quote);
                                self.pos += 2;
                            } else {
                                self.pos += 1;
                                return Ok(Value::Text(text));
                            }
                        }
                        Some(c) => {
                            text.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some('$') => {
                self.pos += 1;
                while self.peek().is_some_and(is_identifier_char) {
                    self.pos += 1;
                }
                let name: String = self
                    .chars
                    .get(start + 1..self.pos)
                    .unwrap_or(&[])
                    .iter()
                    .collect();
                match name.to_ascii_lowercase().as_str() {
                    "null" => Ok(Value::Null),
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => Err(FilterError::new(
                        start,
                        FilterErrorKind::UnknownVariable,
                        "$null, $true or $false",
                        format!("unknown variable '${name}'; expected $null, $true or $false"),
                    )),
                }
            }
            Some(c)
                if is_bare_value_char(c)
                    || (c == '-'
                        && self
                            .chars
                            .get(self.pos + 1)
                            .is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.pos += 1;
                while self.peek().is_some_and(is_bare_value_char) {
                    self.pos += 1;
                }
                Ok(Value::Text(
                    self.chars
                        .get(start..self.pos)
                        .unwrap_or(&[])
                        .iter()
                        .collect(),
                ))
            }
            _ => Err(FilterError::new(
                start,
                FilterErrorKind::ExpectedValue,
                "a quoted value",
                format!(
                    "expected a quoted value such as 'Sales', $null, $true or $false after {}, \
                     found {}",
                    operator.name(),
                    self.found()
                ),
            )),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text)
    }
}

/// A filter is read back from its OPATH text (see `Serialize` in `filter.rs`).
impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

//! Exchange OPATH recipient filters, the membership rule of dynamic
//! distribution groups.
//!
//! In Exchange a dynamic distribution group has no member list: its
//! `RecipientFilter` is a query over mail-enabled recipients, and
//! "membership is recalculated whenever an email message is sent to the
//! group" (`Set-DynamicDistributionGroup`). hato does the same, so that
//! moving a person to another department or office changes the groups they
//! receive mail through by changing their attributes alone. This module
//! parses the filter text once ([`parse`]) into a [`Filter`] that is cheap to
//! evaluate against each directory entry ([`Filter::matches`]), and turns
//! Exchange's "precanned" filters ([`Precanned`]) into the same form.
//!
//! # Syntax (Exchange's OPATH, as `New-DynamicDistributionGroup` takes it)
//!
//! ```text
//! filter     := or
//! or         := and ( "-or" and )*
//! and        := unary ( "-and" unary )*
//! unary      := "-not" unary | primary
//! primary    := "(" or ")" | comparison
//! comparison := Property operator value
//! operator   := -eq | -ne | -like | -notlike | -lt | -gt | -le | -ge
//! value      := 'text' | "text" | bareword | $null | $true | $false
//! ```
//!
//! * Operators and property names are case-insensitive (`-EQ`,
//!   `department`), as in PowerShell and Exchange.
//! * `-not` binds tightest, then `-and`, then `-or`; chains associate to
//!   the left (PowerShell's precedence for logical operators).
//! * Text values go in single quotes, a quote inside doubled
//!   (`'O''Brien'`); double quotes work the same way (`"O""Brien"`).
//!   Exchange also takes integers and system values unquoted
//!   (`CustomAttribute1 -gt 5`, `RecipientType -eq UserMailbox`); hato
//!   accepts a bare word made of letters, digits and `_ . @ * + : /`, or a
//!   `-` followed by a digit (`-5`). A bare word means the same as the
//!   quoted text.
//! * `$null`, `$true` and `$false` may only be used with `-eq` and `-ne`.
//! * Exchange's pages list `-lt` and `-gt`; `-le` and `-ge` (PowerShell's
//!   other two ordering operators) are accepted as well.
//! * The whole filter may be at most 2,048 characters, Exchange's limit for
//!   `RecipientFilter` ("including internal syntax"). hato counts the text
//!   it is given; see [`Filter::to_opath`] for the canonical form.
//! * Error positions are 0-based character (not byte) offsets.
//!
//! # Semantics
//!
//! Exchange translates an OPATH filter into an LDAP query over the
//! directory; hato keeps that query's meaning:
//!
//! * Text comparisons ignore case (Exchange's EAC: "Washington" ≠ "WA", but
//!   comparison is case-insensitive).
//! * A property that is not set (`None` or `""`) equals `$null` (and `''`,
//!   with `-eq` or `-like`) and nothing else; `-ne $null` is "the property
//!   is set".
//! * `$true` / `$false` equal the texts `True` / `False` (any case), the
//!   way Boolean properties are reported.
//! * `-ne` and `-notlike` are the exact negations of `-eq` and `-like`, so
//!   they match recipients on which the property is not set, as the LDAP
//!   `(!(department=Sales))` that Exchange generates does.
//! * `-like` takes `*` as its wildcard, only at the start, the end or both
//!   (`'Sales*'`, `'*Sales'`, `'*Sales*'`, `'*'`); a `*` elsewhere is refused
//!   when the filter is parsed, as Exchange does. (Exchange Online also
//!   refuses a leading `*` in a `RecipientFilter`; on-premises Exchange and
//!   hato accept it.) `'*'` is LDAP's presence test: it matches set values
//!   only. In `-eq` and `-ne` a `*` is an ordinary character.
//! * `-lt`, `-gt`, `-le`, `-ge` compare numerically when both sides are
//!   decimal numbers (`9 < 10`), otherwise as case-insensitive text in code
//!   point order; a property that is not set never matches them.

mod filter;
mod parser;
mod precanned;
mod property;
mod text;

pub use filter::{
    Comparison, Filter, FilterError, FilterErrorKind, FilterSubject, Operator, Value,
};
pub use parser::{MAX_FILTER_LENGTH, parse, parse_supported};
pub use precanned::{IncludedRecipients, Precanned};
pub use property::Property;

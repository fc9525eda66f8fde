//! Mail addresses as hato compares them.
//!
//! RFC 5321 §2.4 leaves the meaning of a local part to the host that owns the domain; hato owns its
//! accepted domains and, like Exchange Online, treats local parts case-insensitively. A quoted local
//! part whose content is also a valid dot-atom denotes the same mailbox as the unquoted form
//! (RFC 5321 §4.1.2: `"john.smith"@x` is `john.smith@x`). Domains are case-insensitive (RFC 1035 §2.3.3)
//! and a trailing dot is dropped. UTF-8 in either part is allowed (RFC 6531, SMTPUTF8).

use std::fmt;

/// A parsed address in canonical form: `local@domain`, both lower-cased, quotes removed where they
/// are not needed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address has no '@'")]
    NoAt,
    #[error("local part is empty or malformed")]
    BadLocalPart,
    #[error("domain is empty or malformed")]
    BadDomain,
    #[error("address is longer than 254 octets")]
    TooLong,
}

/// RFC 5321 §4.1.2 `atext`, extended to the non-ASCII characters for RFC 6531 but for controls
/// (C1 controls such as NEL, U+0085, end lines for some parsers of the headers an address is
/// written into).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

impl Address {
    /// Parses `local@domain` (without angle brackets) as given in MAIL FROM, RCPT TO or by an admin.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        if input.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let at = input.rfind('@').ok_or(AddressError::NoAt)?;
        let (raw_local, raw_domain) = (&input[..at], &input[at + 1..]);
        let local = canonical_local(raw_local)?;
        let domain = canonical_domain(raw_domain)?;
        Ok(Address { local, domain })
    }

    /// RFC 5321 §4.1.1.3 and §4.5.1: `<postmaster>` without a domain, a recipient every SMTP
    /// server must accept. It shows as `postmaster`; [`Address::parse`] never yields it.
    pub fn postmaster() -> Self {
        Address {
            local: "postmaster".into(),
            domain: String::new(),
        }
    }

    /// Whether this is `<postmaster>` without a domain.
    pub fn is_bare_postmaster(&self) -> bool {
        self.domain.is_empty()
    }

    /// RFC 2142: the role addresses (`postmaster@`, `abuse@`) every domain that takes mail
    /// should answer to.
    pub fn is_role_address(&self) -> bool {
        matches!(self.local.as_str(), "postmaster" | "abuse")
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The address with its domain as A-labels (`xn--…`), for places that must stay ASCII when the
    /// message is not SMTPUTF8 (RFC 5890); the canonical form when that is not possible.
    pub fn to_ascii_form(&self) -> String {
        if self.domain.is_ascii() {
            return self.to_string();
        }
        match idna::domain_to_ascii(&self.domain) {
            Ok(d) => format!("{}@{d}", self.local),
            Err(_) => self.to_string(),
        }
    }

    /// Whether the address needs SMTPUTF8 to be transported (RFC 6531 §3.4).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

fn canonical_local(raw: &str) -> Result<String, AddressError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(AddressError::BadLocalPart);
    }
    let text = if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        // Quoted string: undo quoted-pairs; keep the quotes only if the content needs them.
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        // RFC 5321 §4.1.2 qtextSMTP and quoted-pairSMTP: no control character, escaped or not.
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) if !e.is_control() => out.push(e),
                    _ => return Err(AddressError::BadLocalPart),
                },
                '"' => return Err(AddressError::BadLocalPart),
                c if c.is_control() => return Err(AddressError::BadLocalPart),
                c => out.push(c),
            }
        }
        if is_dot_atom(&out) {
            out
        } else {
            let escaped = out.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        }
    } else if is_dot_atom(raw) {
        raw.to_string()
    } else {
        return Err(AddressError::BadLocalPart);
    };
    Ok(text.to_lowercase())
}

fn canonical_domain(raw: &str) -> Result<String, AddressError> {
    let d = raw.strip_suffix('.').unwrap_or(raw);
    if d.is_empty() || d.len() > 253 {
        return Err(AddressError::BadDomain);
    }
    if let Some(literal) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        // Address literal (RFC 5321 §4.1.3): kept, never an accepted domain. Its content is
        // `dcontent`, printable ASCII but `[`, `]` and `\`: no space or control character, so
        // it can stand in a header field as it is.
        if literal.is_empty()
            || !literal
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'\\'))
        {
            return Err(AddressError::BadDomain);
        }
        return Ok(d.to_ascii_lowercase());
    }
    // Internationalised domain names (RFC 5890): an A-label (`xn--bcher-kva`) and its U-label
    // (`bücher`) are the same domain. Compare them in their Unicode form, after UTS #46 mapping.
    let mapped;
    let d = if !d.is_ascii() || d.to_ascii_lowercase().contains("xn--") {
        let (unicode, result) = idna::domain_to_unicode(d);
        if result.is_err() {
            return Err(AddressError::BadDomain);
        }
        mapped = unicode;
        mapped.as_str()
    } else {
        d
    };
    let valid = d.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !valid {
        return Err(AddressError::BadDomain);
    }
    Ok(d.to_lowercase())
}

/// Lower-cases and checks a domain name given by an admin (accepted domains).
pub fn canonical_domain_name(raw: &str) -> Result<String, AddressError> {
    canonical_domain(raw.trim())
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.is_empty() {
            return f.write_str(&self.local);
        }
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_in_both_parts() {
        let a = Address::parse("John.Smith@Contoso.TEST").unwrap();
        assert_eq!(a.to_string(), "john.smith@contoso.test");
        assert_eq!(a, Address::parse("john.smith@contoso.test").unwrap());
    }

    #[test]
    fn quoted_dot_atom_is_the_same_mailbox() {
        let a = Address::parse("\"john.smith\"@contoso.test").unwrap();
        assert_eq!(a, Address::parse("john.smith@contoso.test").unwrap());
    }

    #[test]
    fn quoted_local_part_keeps_quotes_when_needed() {
        let a = Address::parse("\"john smith\"@contoso.test").unwrap();
        assert_eq!(a.local(), "\"john smith\"");
        let b = Address::parse("\"a\\\"b\"@x.test").unwrap();
        assert_eq!(b.local(), "\"a\\\"b\"");
    }

    #[test]
    fn trailing_dot_in_domain_is_dropped() {
        assert_eq!(Address::parse("a@x.test.").unwrap().domain(), "x.test");
    }

    #[test]
    fn internationalised_addresses() {
        let a = Address::parse("Ünïcode@Bücher.Example").unwrap();
        assert_eq!(a.to_string(), "ünïcode@bücher.example");
        assert!(!a.is_ascii());
        assert!(Address::parse("用户@例子.测试").is_ok());
    }

    #[test]
    fn a_labels_and_u_labels_are_the_same_domain() {
        let u = Address::parse("jürgen@Bücher.Example").unwrap();
        let a = Address::parse("jürgen@xn--bcher-kva.example").unwrap();
        assert_eq!(u, a);
        assert_eq!(a.domain(), "bücher.example");
        assert_eq!(a.to_ascii_form(), "jürgen@xn--bcher-kva.example");
        assert_eq!(
            canonical_domain_name("XN--BCHER-KVA.example").unwrap(),
            "bücher.example"
        );
        assert!(Address::parse("a@xn--.example").is_err());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(Address::parse(""), Err(AddressError::Empty));
        assert_eq!(Address::parse("nobody"), Err(AddressError::NoAt));
        assert_eq!(Address::parse("@x.test"), Err(AddressError::BadLocalPart));
        assert_eq!(
            Address::parse("a..b@x.test"),
            Err(AddressError::BadLocalPart)
        );
        assert_eq!(
            Address::parse("a b@x.test"),
            Err(AddressError::BadLocalPart)
        );
        assert_eq!(Address::parse("a@"), Err(AddressError::BadDomain));
        assert_eq!(Address::parse("a@-x.test"), Err(AddressError::BadDomain));
        assert_eq!(Address::parse("a@x..test"), Err(AddressError::BadDomain));
        let long = format!("{}@x.test", "a".repeat(65));
        assert_eq!(Address::parse(&long), Err(AddressError::BadLocalPart));
    }

    #[test]
    fn bare_postmaster() {
        let p = Address::postmaster();
        assert!(p.is_bare_postmaster() && p.is_role_address());
        assert_eq!(p.to_string(), "postmaster");
        assert_eq!(p.to_ascii_form(), "postmaster");
        assert!(Address::parse("postmaster").is_err());
        let a = Address::parse("Abuse@Contoso.test").unwrap();
        assert!(a.is_role_address() && !a.is_bare_postmaster());
        assert!(
            !Address::parse("alice@contoso.test")
                .unwrap()
                .is_role_address()
        );
    }

    #[test]
    fn address_literal_is_accepted_as_is() {
        assert_eq!(
            Address::parse("a@[127.0.0.1]").unwrap().domain(),
            "[127.0.0.1]"
        );
        assert_eq!(
            Address::parse("a@[IPv6:2001:db8::1]").unwrap().domain(),
            "[ipv6:2001:db8::1]"
        );
    }

    #[test]
    fn control_characters_are_refused_anywhere() {
        for bad in [
            "a\u{85}b@x.test",
            "\"a\u{85}b\"@x.test",
            "\"a\\\u{0}b\"@x.test",
            "\"a\tb\"@x.test",
        ] {
            assert_eq!(
                Address::parse(bad),
                Err(AddressError::BadLocalPart),
                "{bad:?}"
            );
        }
        for bad in ["a@[1.2.3.4 x]", "a@[1.2.3.4>\u{0}]", "a@[1.2.3.4\t]"] {
            assert_eq!(Address::parse(bad), Err(AddressError::BadDomain), "{bad:?}");
        }
        // Other non-ASCII is still text (RFC 6531).
        assert!(Address::parse("\"jürgen müller\"@x.test").is_ok());
    }
}

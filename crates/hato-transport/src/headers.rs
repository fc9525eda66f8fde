//! Header fields of the messages hato writes itself (NDRs, approval requests): every value that
//! comes from outside — a subject, a display name, an address, a Message-ID — goes through here,
//! so that no value can end its field early and start another (header injection) or break the
//! line-length limits.
//!
//! - Control characters (CR, LF, NUL, TAB, ESC, DEL, C1 …) are removed: RFC 5322 §2.2 allows
//!   neither CR nor LF inside a field body except as folding, and none of the others is text.
//! - Unstructured text (RFC 5322 §3.2.5, e.g. `Subject`) that is not plain printable ASCII becomes
//!   RFC 2047 encoded-words (§2: at most 75 characters each, split only between characters,
//!   §5(1)); a display name likewise (§5(3), with the restricted Q alphabet of a phrase).
//! - Lines are folded at 78 characters (RFC 5322 §2.1.1 and §2.2.3: a CRLF inserted before
//!   existing white space, or between encoded-words, whose separating white space a decoder
//!   ignores, RFC 2047 §6.2). Only an address or Message-ID longer than a line is left unfolded
//!   (they cannot be folded), and those are bounded well below the 998-character limit.
//! - Addresses and Message-IDs are structured: one that is not well-formed is not written at all
//!   (the caller decides what replaces it) rather than written half-cleaned.
//!
//! Everything here is linear in the length of its input.

use hato_core::Timestamp;
use std::borrow::Cow;

/// RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, excluding the CRLF.
pub const MAX_LINE: usize = 78;
/// RFC 2047 §2: an encoded-word is at most 75 characters.
const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?q?` and `?=` around the encoded text.
const ENCODED_WORD_OVERHEAD: usize = 12;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address is at most 254.
const MAX_ADDRESS: usize = 254;
/// A display-name token written as it is (atom or quoted string) fits on the first line of any
/// address field after the field's name.
const MAX_PHRASE_TOKEN: usize = 60;
/// Message-IDs have no length limit of their own; this keeps their line below RFC 5322's 998.
const MAX_MSG_ID: usize = 900;

/// `text` without control characters (Unicode general category Cc: C0, DEL, C1).
pub fn without_controls(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(text.chars().filter(|c| !c.is_control()).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A mailbox for an address field: an optional display name and an address.
#[derive(Clone, Copy, Debug)]
pub struct Mailbox<'a> {
    pub name: Option<&'a str>,
    pub address: &'a str,
}

impl<'a> Mailbox<'a> {
    pub fn new(name: Option<&'a str>, address: &'a str) -> Self {
        Mailbox { name, address }
    }
}

/// A header block being written, field by field; every field ends with CRLF.
#[derive(Debug, Default)]
pub struct HeaderBlock {
    out: String,
}

impl HeaderBlock {
    pub fn new() -> Self {
        Self::default()
    }

    /// An unstructured field (RFC 5322 §3.2.5): `Subject`, `Comments`, …
    pub fn text(&mut self, name: &'static str, value: &str) -> &mut Self {
        let value = without_controls(value);
        let mut line = Line::start(&mut self.out, name);
        if is_plain_text(&value, MAX_LINE.saturating_sub(name.len() + 2)) {
            for word in value.split(' ') {
                line.token(word);
            }
        } else {
            line.encoded(&value, Alphabet::Text);
        }
        line.end();
        self
    }

    /// An address field (`From`, `To`, …: RFC 5322 §3.4). A mailbox whose address is not a
    /// well-formed addr-spec is left out; with none left, the field is the empty group
    /// `undisclosed-recipients:;` (RFC 5322 §3.4), so that the field is still there.
    pub fn mailboxes(&mut self, name: &'static str, list: &[Mailbox<'_>]) -> &mut Self {
        let valid: Vec<&Mailbox<'_>> = list.iter().filter(|m| is_addr_spec(m.address)).collect();
        let mut line = Line::start(&mut self.out, name);
        if valid.is_empty() {
            line.token("undisclosed-recipients:;");
        }
        for (i, m) in valid.iter().enumerate() {
            let display = m.name.map(without_controls).unwrap_or_default();
            let display = display.trim_matches(' ');
            if !display.is_empty() {
                line.phrase(display);
            }
            let comma = if i + 1 < valid.len() { "," } else { "" };
            if display.is_empty() {
                line.token(&format!("{}{comma}", m.address));
            } else {
                line.token(&format!("<{}>{comma}", m.address));
            }
        }
        line.end();
        self
    }

    /// A field of one msg-id (`Message-ID`, `In-Reply-To`; RFC 5322 §3.6.4), given with or
    /// without its angle brackets. Returns false, writing nothing, when `id` is not one.
    pub fn msg_id(&mut self, name: &'static str, id: &str) -> bool {
        let id = id.trim();
        let id = id
            .strip_prefix('<')
            .and_then(|i| i.strip_suffix('>'))
            .unwrap_or(id);
        if !is_msg_id(id) {
            return false;
        }
        let mut line = Line::start(&mut self.out, name);
        line.token(&format!("<{id}>"));
        line.end();
        true
    }

    /// `Date` (RFC 5322 §3.6.1).
    pub fn date(&mut self, name: &'static str, time: Timestamp) -> &mut Self {
        let mut line = Line::start(&mut self.out, name);
        for word in time.to_rfc5322().split(' ') {
            line.token(word);
        }
        line.end();
        self
    }

    /// A field whose whole value hato chooses (`Auto-Submitted: auto-replied`, `MIME-Version`).
    pub fn fixed(&mut self, name: &'static str, value: &'static str) -> &mut Self {
        self.structured(name, value)
    }

    /// A structured field hato composes from parts it has checked (the delivery-status fields
    /// of RFC 3464 §2.2, §2.3): control characters removed, folded at its spaces (runs of spaces
    /// are one, as in any structured field).
    pub fn structured(&mut self, name: &'static str, value: &str) -> &mut Self {
        let value = without_controls(value);
        let mut line = Line::start(&mut self.out, name);
        for word in value.split(' ').filter(|w| !w.is_empty()) {
            line.token(word);
        }
        line.end();
        self
    }

    pub fn as_str(&self) -> &str {
        &self.out
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

/// One field being written: tokens separated by single spaces, folded before a token that would
/// take the line past [`MAX_LINE`].
struct Line<'a> {
    out: &'a mut String,
    column: usize,
    /// Whether the current line holds a token yet (a fold before the first token of a field's
    /// first line would only leave its name alone).
    has_token: bool,
}

impl<'a> Line<'a> {
    fn start(out: &'a mut String, name: &'static str) -> Self {
        debug_assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "RFC 5322 §2.2: a field name is printable ASCII without a colon"
        );
        out.push_str(name);
        out.push(':');
        Line {
            out,
            column: name.len() + 1,
            has_token: false,
        }
    }

    /// Room on the current line for a token after its separating space.
    fn room(&self) -> usize {
        MAX_LINE.saturating_sub(self.column + 1)
    }

    fn fold(&mut self) {
        self.out.push_str("\r\n");
        self.column = 0;
        self.has_token = false;
    }

    fn token(&mut self, token: &str) {
        if self.has_token && token.chars().count() > self.room() {
            self.fold();
        }
        self.out.push(' ');
        self.out.push_str(token);
        self.column += 1 + token.chars().count();
        self.has_token = true;
    }

    /// A display name: atoms as they are, printable ASCII otherwise as a quoted string, anything
    /// else as encoded-words.
    fn phrase(&mut self, text: &str) {
        if is_plain_text(text, MAX_PHRASE_TOKEN) && text.split(' ').all(|w| w.chars().all(is_atext))
        {
            for word in text.split(' ') {
                self.token(word);
            }
            return;
        }
        if !text.contains("=?") && text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            let quoted = format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
            if quoted.len() <= MAX_PHRASE_TOKEN {
                self.token(&quoted);
                return;
            }
        }
        self.encoded(text, Alphabet::Phrase);
    }

    /// `text` as encoded-words, each filling the rest of its line (at most 75 characters).
    fn encoded(&mut self, text: &str, alphabet: Alphabet) {
        let base64 = base64_len(text.len()) < text.bytes().map(|b| alphabet.q_len(b)).sum();
        let cost = |bytes: &[u8], chunk_len: usize| -> usize {
            if base64 {
                base64_len(chunk_len)
            } else {
                bytes.iter().map(|b| alphabet.q_len(*b)).sum()
            }
        };
        let mut rest = text;
        while !rest.is_empty() {
            // A character encodes to at most 12 characters (4 bytes as =XX); fold first when the
            // line has no room for a word holding one.
            if self.has_token && self.room() < ENCODED_WORD_OVERHEAD + 12 {
                self.fold();
            }
            let limit = self
                .room()
                .min(MAX_ENCODED_WORD)
                .saturating_sub(ENCODED_WORD_OVERHEAD);
            let mut end = 0;
            let mut q_cost = 0;
            for (i, c) in rest.char_indices() {
                let next = i + c.len_utf8();
                let bytes = &rest.as_bytes()[i..next];
                let total = if base64 {
                    cost(bytes, next)
                } else {
                    q_cost + cost(bytes, bytes.len())
                };
                if total > limit && end > 0 {
                    break;
                }
                q_cost = total;
                end = next;
            }
            let (chunk, tail) = rest.split_at(end);
            let mut word = String::with_capacity(MAX_ENCODED_WORD);
            if base64 {
                word.push_str("=?utf-8?b?");
                base64_encode(chunk.as_bytes(), &mut word);
            } else {
                word.push_str("=?utf-8?q?");
                for b in chunk.bytes() {
                    alphabet.q_encode(b, &mut word);
                }
            }
            word.push_str("?=");
            self.out.push(' ');
            self.out.push_str(&word);
            self.column += 1 + word.len();
            self.has_token = true;
            rest = tail;
        }
    }

    fn end(self) {
        self.out.push_str("\r\n");
    }
}

/// Which characters the Q encoding may leave as they are (RFC 2047 §4.2, §5).
#[derive(Clone, Copy)]
enum Alphabet {
    /// In unstructured text (§5(1)): any printable ASCII but `=`, `?`, `_` and space.
    Text,
    /// In a phrase (§5(3)): only letters, digits and `!*+-/`.
    Phrase,
}

impl Alphabet {
    fn literal(self, b: u8) -> bool {
        match self {
            Alphabet::Text => b.is_ascii_graphic() && !matches!(b, b'=' | b'?' | b'_'),
            Alphabet::Phrase => b.is_ascii_alphanumeric() || b"!*+-/".contains(&b),
        }
    }

    fn q_len(self, b: u8) -> usize {
        if b == b' ' || self.literal(b) { 1 } else { 3 }
    }

    fn q_encode(self, b: u8, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        if b == b' ' {
            out.push('_');
        } else if self.literal(b) {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// RFC 4648 §4 base64 with padding, as RFC 2047 §4.1 uses it.
pub(crate) fn base64_encode(input: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Text that may stand in a field as it is: printable ASCII words separated by single spaces,
/// nothing a decoder would take for an encoded-word, and no word longer than `longest` (so that
/// each fits on a line).
fn is_plain_text(text: &str, longest: usize) -> bool {
    !text.is_empty()
        && !text.contains("=?")
        && text
            .split(' ')
            .all(|w| !w.is_empty() && w.len() <= longest && w.bytes().all(|b| b.is_ascii_graphic()))
}

/// RFC 5322 §3.2.3 `atext`, extended to every non-ASCII character but controls (RFC 6532 §3.2).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|a| !a.is_empty() && a.chars().all(is_atext))
}

/// RFC 5322 §3.4.1 `dtext` inside `[` `]`: printable ASCII but `[`, `]` and `\`.
fn is_domain_literal(s: &str) -> bool {
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|inner| {
            inner
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'\\'))
        })
}

/// RFC 5322 §3.4.1 `addr-spec` (UTF-8 allowed, RFC 6532): a dot-atom or quoted-string local
/// part, a dot-atom or domain-literal domain, no control characters anywhere.
pub fn is_addr_spec(address: &str) -> bool {
    if address.len() > MAX_ADDRESS || address.chars().any(char::is_control) {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) => is_quoted_content(inner),
        None => is_dot_atom(local),
    };
    local_ok && (is_dot_atom(domain) || is_domain_literal(domain))
}

/// The inside of a quoted string (RFC 5322 §3.2.4): any text but a bare `"` or `\`, which must
/// be escaped.
fn is_quoted_content(inner: &str) -> bool {
    let mut escaped = false;
    for c in inner.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return false,
            _ => {}
        }
    }
    !escaped
}

/// RFC 5322 §3.6.4 `msg-id` without its brackets: `id-left "@" id-right`, a dot-atom-text on
/// the left, a dot-atom-text or `no-fold-literal` on the right, ASCII only.
fn is_msg_id(id: &str) -> bool {
    if id.len() > MAX_MSG_ID || !id.is_ascii() {
        return false;
    }
    let Some((left, right)) = id.rsplit_once('@') else {
        return false;
    };
    is_dot_atom(left) && (is_dot_atom(right) || is_domain_literal(right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{HeaderName, HeaderValue, MessageParser};
    use proptest::prelude::*;

    /// Parses `block` as a message's header and returns (field name, raw value) pairs.
    fn fields(block: &str) -> Vec<String> {
        let text = format!("{block}\r\n");
        let msg = MessageParser::new()
            .parse_headers(text.as_bytes())
            .expect("parses");
        msg.headers().iter().map(|h| h.name().to_string()).collect()
    }

    /// What the encoding promises of any header block, whatever went in.
    fn assert_well_formed(block: &str, max_line: usize) {
        let bytes = block.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR in {block:?}"),
                b'\n' => assert_eq!(bytes[i - 1], b'\r', "bare LF in {block:?}"),
                _ => {}
            }
        }
        assert!(block.ends_with("\r\n"));
        for line in block.trim_end_matches("\r\n").split("\r\n") {
            assert!(!line.is_empty(), "an empty line ends the header: {block:?}");
            assert!(
                line.chars().count() <= max_line,
                "{} characters: {line:?}",
                line.chars().count()
            );
            assert!(
                !line.chars().any(char::is_control),
                "control character in {line:?}"
            );
        }
    }

    fn subject_of(block: &str) -> String {
        let text = format!("{block}\r\n");
        let msg = MessageParser::new().parse_headers(text.as_bytes()).unwrap();
        msg.subject().unwrap_or("").to_string()
    }

    #[test]
    fn the_injection_from_the_issue_stays_one_field() {
        let mut h = HeaderBlock::new();
        h.text(
            "Subject",
            "x\r\nReply-To: attacker@evil.test\r\n\r\nbody of the attacker",
        );
        assert_eq!(fields(h.as_str()), ["Subject"]);
        assert_eq!(
            subject_of(h.as_str()),
            "xReply-To: attacker@evil.testbody of the attacker"
        );
        assert_well_formed(h.as_str(), MAX_LINE);
    }

    #[test]
    fn plain_ascii_stays_readable_and_folds_at_spaces() {
        let mut h = HeaderBlock::new();
        h.text("Subject", "Quarterly report");
        assert_eq!(h.as_str(), "Subject: Quarterly report\r\n");
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let mut h = HeaderBlock::new();
        h.text("Subject", long);
        assert!(h.as_str().contains("\r\n word"), "{}", h.as_str());
        assert_eq!(subject_of(h.as_str()), long);
        assert_well_formed(h.as_str(), MAX_LINE);
    }

    #[test]
    fn non_ascii_and_lookalike_encoded_words_are_encoded() {
        for text in [
            "Grüße aus München",
            "=?utf-8?q?not_one?=",
            "  spaced  out  ",
            "日本語の件名",
        ] {
            let mut h = HeaderBlock::new();
            h.text("Subject", text);
            assert!(
                h.as_str().starts_with("Subject: =?utf-8?"),
                "{}",
                h.as_str()
            );
            assert_eq!(subject_of(h.as_str()), text);
            assert_well_formed(h.as_str(), MAX_LINE);
        }
    }

    #[test]
    fn addresses_and_ids_that_are_not_well_formed_are_not_written() {
        let mut h = HeaderBlock::new();
        h.mailboxes(
            "To",
            &[
                Mailbox::new(None, "a@b.test>\r\nBcc: c@d.test"),
                Mailbox::new(None, "\"quoted local\"@x.test"),
                Mailbox::new(Some("Smith, John"), "john@x.test"),
                Mailbox::new(Some("Jürgen"), "j@x.test"),
            ],
        );
        assert_eq!(
            h.as_str(),
            "To: \"quoted local\"@x.test, \"Smith, John\" <john@x.test>,\r\n =?utf-8?q?J=C3=BCrgen?= <j@x.test>\r\n"
        );
        let mut h = HeaderBlock::new();
        h.mailboxes("To", &[Mailbox::new(None, "a@[1.2.3.4 x]")]);
        assert_eq!(h.as_str(), "To: undisclosed-recipients:;\r\n");
        let mut h = HeaderBlock::new();
        assert!(!h.msg_id("In-Reply-To", "<a b@x>"));
        assert!(!h.msg_id("In-Reply-To", "a@x>\r\nBcc: x@y"));
        assert!(h.msg_id("In-Reply-To", "<m1@fabrikam.test>"));
        assert_eq!(h.as_str(), "In-Reply-To: <m1@fabrikam.test>\r\n");
    }

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64_encode(input.as_bytes(), &mut out);
            assert_eq!(out, want);
        }
    }

    /// Strings rich in what breaks headers: CR, LF, NUL, tabs, other controls, spaces, encoded-
    /// word markers, specials, and non-ASCII of every width.
    fn nasty() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ -~\r\n\t\0\u{7f}\u{85}]{0,200}",
            prop::collection::vec(
                prop_oneof![
                    Just("\r\n".to_string()),
                    Just("=?".to_string()),
                    Just("?=".to_string()),
                    Just(" ".to_string()),
                    Just("Reply-To: x@y.test".to_string()),
                    Just("\"".to_string()),
                    Just("<>,;:\\".to_string()),
                    "[a-z]{1,90}",
                    "[ü日😀]{1,5}",
                    "\\PC{0,5}",
                ],
                0..40
            )
            .prop_map(|v| v.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_parses_back_as_exactly_the_fields_written(
            subject in nasty(),
            name in nasty(),
            address in nasty(),
            id in nasty(),
        ) {
            let mut h = HeaderBlock::new();
            h.text("Subject", &subject);
            h.mailboxes("From", &[Mailbox::new(Some(&name), "postmaster@contoso.test")]);
            h.mailboxes("To", &[Mailbox::new(Some(&name), &address)]);
            let id_written = h.msg_id("In-Reply-To", &id);
            h.fixed("Auto-Submitted", "auto-replied");
            let block = h.as_str().to_string();

            let mut want = vec!["Subject", "From", "To"];
            if id_written {
                want.push("In-Reply-To");
            }
            want.push("Auto-Submitted");
            prop_assert_eq!(fields(&block), want);
            // Every line within 78 characters but for an address or an id, which cannot fold.
            let longest = if is_addr_spec(&address) || id_written { 998 } else { MAX_LINE };
            assert_well_formed(&block, longest);

            let text = format!("{block}\r\n");
            let msg = MessageParser::new().parse_headers(text.as_bytes()).unwrap();
            let subject_clean = without_controls(&subject);
            prop_assert_eq!(msg.subject().unwrap_or(""), subject_clean.as_ref());
            let from = msg.from().and_then(|a| a.first()).expect("From");
            prop_assert_eq!(from.address(), Some("postmaster@contoso.test"));
            let name_clean = without_controls(&name);
            let name_clean = name_clean.trim_matches(' ');
            prop_assert_eq!(from.name().unwrap_or(""), name_clean);
            if is_addr_spec(&address) {
                let to = msg.to().and_then(|a| a.first()).expect("To");
                prop_assert_eq!(to.name().unwrap_or(""), name_clean);
            } else {
                prop_assert!(block.contains("To: undisclosed-recipients:;\r\n"));
            }
            if id_written {
                let got = msg.header(HeaderName::InReplyTo).map(|v| match v {
                    HeaderValue::Text(t) => t.to_string(),
                    HeaderValue::TextList(l) => l.join(" "),
                    _ => String::new(),
                });
                let bare = id.trim().trim_start_matches('<').trim_end_matches('>').to_string();
                prop_assert_eq!(got, Some(bare));
            }
        }
    }
}

//! Removes the header fields a receiving server must not take from outside, while the data
//! arrives: hato's own `X-Hato-*` fields (its antispam report, its verdicts), so that no sender
//! can stamp itself `SCL:-1` or a verdict, and `Authentication-Results` fields that claim this
//! server's authserv-id (RFC 8601 §5: a receiver MUST remove or rename such fields arriving from
//! outside before adding its own). Exchange Online does the same with its `X-MS-Exchange-*`
//! headers unless the mail comes from the organisation's own connector ("keep internal
//! headers", seed E4).
//!
//! Streaming, over the unstuffed content: a field is decided from its first bytes (its name and,
//! for `Authentication-Results`, the start of its value), at most [`DECIDE_BYTES`] held; the
//! rest of the field, its folded lines included, is passed on or dropped as decided. Linear in
//! the message, bounded in memory, the same for a message in memory or one that goes to a spool
//! file, whatever the size of its header (a 35 MB header field costs one pass). After the empty
//! line that ends the header block, bytes pass through untouched.

/// The most of a field's start held before it is decided (a name longer than this is not one
/// of ours; an authserv-id is a domain name, at most 255 octets).
pub const DECIDE_BYTES: usize = 512;

/// Which fields are removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderDropRule {
    /// Field names starting with one of these (lower case) are removed.
    name_prefixes: Vec<String>,
    /// `Authentication-Results` fields whose authserv-id is this (lower case) are removed.
    authserv_id: Option<String>,
}

impl HeaderDropRule {
    /// hato's: `X-Hato-*`, the spam filter's `X-Spam-Flag`, `X-Spam-Status` and
    /// `X-CustomSpam` (a sender's own `X-Spam-Flag: NO` would otherwise sit beside hato's
    /// verdict for a client to read), and `Authentication-Results` claiming `hostname`.
    pub fn hato(hostname: &str) -> Self {
        HeaderDropRule {
            name_prefixes: vec![
                "x-hato-".into(),
                "x-spam-flag".into(),
                "x-spam-status".into(),
                "x-customspam".into(),
            ],
            authserv_id: Some(hostname.to_ascii_lowercase()),
        }
    }

    /// Whether the field whose first bytes are `start` (name, colon, the start of its value)
    /// is removed.
    fn drops(&self, start: &[u8]) -> bool {
        let Some(colon) = start.iter().position(|&b| b == b':') else {
            return false;
        };
        let name = start[..colon].trim_ascii();
        if self
            .name_prefixes
            .iter()
            .any(|p| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        {
            return true;
        }
        let Some(ours) = &self.authserv_id else {
            return false;
        };
        if !name.eq_ignore_ascii_case(b"authentication-results") {
            return false;
        }
        // RFC 8601 §2.2: authres-header-field = "Authentication-Results:" [CFWS] authserv-id
        // [CFWS authres-version] ...: the id comes after folding whitespace and comments and
        // ends at whitespace, `;` or a comment. One whose id cannot be found in what is held
        // (a field cut at DECIDE_BYTES, say after a long comment) is removed: a forgery must
        // not pass by hiding its id.
        match authserv_id(&start[colon + 1..]) {
            Some(id) => id.eq_ignore_ascii_case(ours.as_bytes()),
            None => true,
        }
    }

    /// Whether a field called `name` is decided by its name alone (ours, or not one whose value
    /// matters).
    fn by_name(&self, name: &[u8]) -> bool {
        let name = name.trim_ascii();
        self.authserv_id.is_none() || !name.eq_ignore_ascii_case(b"authentication-results")
    }
}

/// The authserv-id at the start of an `Authentication-Results` value, after any folding
/// whitespace and (nested) comments; `None` when `value` ends before the id does.
fn authserv_id(value: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    let mut depth = 0usize;
    while i < value.len() {
        let b = value[i];
        if depth > 0 {
            match b {
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
        } else if b == b'(' {
            depth = 1;
        } else if !b.is_ascii_whitespace() {
            let rest = &value[i..];
            let len = rest
                .iter()
                .position(|c| c.is_ascii_whitespace() || matches!(c, b';' | b'('))?;
            return Some(&rest[..len]);
        }
        i += 1;
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line of the header block, no field before it.
    LineStart,
    /// Holding the start of a field until it can be decided.
    Deciding,
    /// Holding, after a line feed: a space or tab continues the field being decided (an
    /// `Authentication-Results` whose id is on a folded line), anything else ends it.
    DecidingAfterLine,
    /// Inside a decided field's line.
    InField,
    /// After the line feed of a field's line: a space or tab continues the field (RFC 5322
    /// §2.2.3), anything else starts another, an empty line ends the header block.
    AfterLine,
    /// Past the header block.
    Body,
}

/// The filter's state for one message.
#[derive(Debug)]
pub struct HeaderFilter {
    rule: std::sync::Arc<HeaderDropRule>,
    state: State,
    start: Vec<u8>,
    /// Where the held start's colon is, once seen.
    colon: Option<usize>,
    dropping: bool,
    removed: usize,
}

impl HeaderFilter {
    pub fn new(rule: std::sync::Arc<HeaderDropRule>) -> Self {
        HeaderFilter {
            rule,
            state: State::LineStart,
            start: Vec::new(),
            colon: None,
            dropping: false,
            removed: 0,
        }
    }

    /// Past the header block: what comes is passed on as it is.
    pub fn in_body(&self) -> bool {
        self.state == State::Body
    }

    /// Fields removed so far.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Bytes held undecided (at most [`DECIDE_BYTES`]).
    pub fn held(&self) -> usize {
        self.start.len()
    }

    fn decide(&mut self, kept: &mut Vec<u8>) {
        self.dropping = self.rule.drops(&self.start);
        if self.dropping {
            self.removed += 1;
        } else {
            kept.extend_from_slice(&self.start);
        }
        self.start.clear();
        self.colon = None;
    }

    /// Whether the held start, `b` its last byte, is enough to decide the field: the end of the
    /// authserv-id's token (whitespace, `;` or `(` after the value began), or [`DECIDE_BYTES`].
    /// Constant time per byte.
    fn enough(&mut self, b: u8) -> bool {
        if self.start.len() >= DECIDE_BYTES {
            return true;
        }
        match self.colon {
            None => {
                if b == b':' {
                    self.colon = Some(self.start.len() - 1);
                    // Ours, or a field whose value does not matter: decided now.
                    let name = &self.start[..self.start.len() - 1];
                    return self.rule.by_name(name);
                }
                false
            }
            // An `Authentication-Results`: its id is complete once a `;` follows it (RFC 8601:
            // the id, an optional version, then `;`), or when the field ends.
            Some(_) => b == b';',
        }
    }

    /// Passes `bytes` on, without the removed fields' bytes, into `kept`.
    pub fn feed(&mut self, bytes: &[u8], kept: &mut Vec<u8>) {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Body {
                kept.extend_from_slice(&bytes[i..]);
                return;
            }
            let b = bytes[i];
            i += 1;
            match self.state {
                State::LineStart | State::AfterLine => {
                    if b == b'\r' || b == b'\n' {
                        // The empty line: the header block ends (a lone CR or LF is refused
                        // by the DATA receiver anyway).
                        self.state = State::Body;
                        kept.push(b);
                    } else if (b == b' ' || b == b'\t') && self.state == State::AfterLine {
                        self.state = State::InField;
                        if !self.dropping {
                            kept.push(b);
                        }
                    } else {
                        self.state = State::Deciding;
                        self.start.push(b);
                        self.enough(b);
                    }
                }
                State::Deciding => {
                    self.start.push(b);
                    if b == b'\n' {
                        self.state = State::DecidingAfterLine;
                    } else if self.enough(b) {
                        self.decide(kept);
                        self.state = State::InField;
                    }
                }
                State::DecidingAfterLine => {
                    if (b == b' ' || b == b'\t') && self.start.len() < DECIDE_BYTES {
                        self.start.push(b);
                        self.state = State::Deciding;
                    } else {
                        // The field ended (or is held as far as it may be): decide it, then
                        // look at this byte again as the start of a line.
                        self.decide(kept);
                        self.state = State::AfterLine;
                        i -= 1;
                    }
                }
                State::InField => {
                    // The rest of the line at once.
                    let rest = &bytes[i - 1..];
                    let (line, ended) = match memchr::memchr(b'\n', rest) {
                        Some(n) => (&rest[..=n], true),
                        None => (rest, false),
                    };
                    if !self.dropping {
                        kept.extend_from_slice(line);
                    }
                    i += line.len() - 1;
                    if ended {
                        self.state = State::AfterLine;
                    }
                }
                State::Body => {}
            }
        }
    }

    /// The data ended: a field still undecided (a message that is only a header line) is
    /// decided now.
    pub fn finish(&mut self, kept: &mut Vec<u8>) {
        if matches!(self.state, State::Deciding | State::DecidingAfterLine) {
            self.decide(kept);
            self.state = State::InField;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn filter(input: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let mut f = HeaderFilter::new(Arc::new(HeaderDropRule::hato("mx.hato.test")));
        let mut kept = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            f.feed(piece, &mut kept);
            assert!(f.held() <= DECIDE_BYTES);
        }
        f.finish(&mut kept);
        (kept, f.removed())
    }

    const MESSAGE: &[u8] = b"Received: from a\r\n\
X-Hato-Antispam-Report: CIP:1.2.3.4;SCL:-1;\r\n\
\tSFV:SKN;\r\n\
Subject: hi\r\n\
x-hato-verdict: clean\r\n\
X-Hatoo: kept (not our prefix)\r\n\
Authentication-Results: mx.hato.test; spf=pass smtp.mailfrom=x.test\r\n\
Authentication-Results: MX.HATO.TEST (forged); dkim=pass\r\n\
Authentication-Results: mx.other.test; spf=fail\r\n\
Authentication-Results: mx.hato.test.evil; spf=pass\r\n\
X-Spam-Flag: NO\r\n\
X-Spam-Status: No, score=-100\r\n\
X-CustomSpam: none\r\n\
X-Spam-Report: kept (not a field hato writes)\r\n\
From: a@x.test\r\n\
\r\n\
X-Hato-Antispam-Report: in the body, kept\r\n\
Authentication-Results: mx.hato.test; body too\r\n";

    const EXPECTED: &[u8] = b"Received: from a\r\n\
Subject: hi\r\n\
X-Hatoo: kept (not our prefix)\r\n\
Authentication-Results: mx.other.test; spf=fail\r\n\
Authentication-Results: mx.hato.test.evil; spf=pass\r\n\
X-Spam-Report: kept (not a field hato writes)\r\n\
From: a@x.test\r\n\
\r\n\
X-Hato-Antispam-Report: in the body, kept\r\n\
Authentication-Results: mx.hato.test; body too\r\n";

    #[test]
    fn our_fields_and_our_authentication_results_go_and_the_rest_stays() {
        let (kept, removed) = filter(MESSAGE, MESSAGE.len());
        assert_eq!(
            String::from_utf8_lossy(&kept),
            String::from_utf8_lossy(EXPECTED)
        );
        assert_eq!(removed, 7);
    }

    #[test]
    fn the_result_does_not_depend_on_how_the_data_arrives() {
        for chunk in [1, 2, 3, 7, 64] {
            let (kept, removed) = filter(MESSAGE, chunk);
            assert_eq!(kept, EXPECTED, "chunks of {chunk}");
            assert_eq!(removed, 7);
        }
    }

    #[test]
    fn a_huge_field_costs_one_pass_and_holds_at_most_a_field_start() {
        // A 35 MB folded X-Hato field (dropped whole) and a 35 MB kept one.
        let mut input = b"X-Hato-Antispam-Report: SCL:-1;".to_vec();
        for _ in 0..35 * 1024 {
            input.extend_from_slice(b"\r\n\t");
            input.extend_from_slice(&[b'a'; 1021]);
        }
        input.extend_from_slice(b"\r\nX-Long: ");
        let kept_field_start = input.len() - b"X-Long: ".len();
        input.extend_from_slice(&vec![b'b'; 35 * 1024 * 1024]);
        input.extend_from_slice(b"\r\n\r\nbody\r\n");
        let (kept, removed) = filter(&input, 64 * 1024);
        assert_eq!(removed, 1);
        assert_eq!(kept, &input[kept_field_start..]);
    }

    #[test]
    fn many_fields_that_cannot_be_decided_early_cost_one_pass() {
        // Fields whose start never shows whitespace after the colon: each is held up to
        // DECIDE_BYTES, never rescanned (a rescan per byte would make this quadratic).
        let field = [b"A:".as_slice(), &[b'x'; 600], b"\r\n"].concat();
        let input: Vec<u8> = field.repeat(50_000);
        let (kept, removed) = filter(&input, 4096);
        assert_eq!((kept.len(), removed), (input.len(), 0));
    }

    #[test]
    fn an_authserv_id_hidden_by_folding_or_comments_is_still_found() {
        let input = b"Authentication-Results:\r\n mx.hato.test; spf=pass\r\n\
Authentication-Results: (checked (twice)) MX.hato.test;\r\n\tdkim=pass\r\n\
Authentication-Results: (a comment) mx.other.test; spf=fail\r\n\
Authentication-Results:\r\n\t(c)\r\n mx.other.test;\r\n spf=none\r\n\
Subject: x\r\n\r\nbody\r\n";
        let expected = b"Authentication-Results: (a comment) mx.other.test; spf=fail\r\n\
Authentication-Results:\r\n\t(c)\r\n mx.other.test;\r\n spf=none\r\n\
Subject: x\r\n\r\nbody\r\n";
        for chunk in [1, 2, 5, 4096] {
            let (kept, removed) = filter(input, chunk);
            assert_eq!(
                String::from_utf8_lossy(&kept),
                String::from_utf8_lossy(expected),
                "chunks of {chunk}"
            );
            assert_eq!(removed, 2);
        }
    }

    #[test]
    fn an_authentication_results_whose_id_cannot_be_found_is_removed() {
        // The id behind more than DECIDE_BYTES of comment: removed rather than trusted.
        let comment = "x".repeat(DECIDE_BYTES);
        let input = format!(
            "Authentication-Results: ({comment}) mx.hato.test; spf=pass\r\nSubject: y\r\n\r\n"
        );
        let (kept, removed) = filter(input.as_bytes(), 7);
        assert_eq!((kept.as_slice(), removed), (&b"Subject: y\r\n\r\n"[..], 1));
    }

    #[test]
    fn a_message_of_one_unfinished_line_is_kept() {
        let (kept, removed) = filter(b"Subject", 3);
        assert_eq!((kept.as_slice(), removed), (&b"Subject"[..], 0));
        let (kept, removed) = filter(b"X-Hato-A: 1", 3);
        assert_eq!((kept.as_slice(), removed), (&b""[..], 1));
    }
}

//! hato's transport: what happens to a message between the SMTP session and the mailbox.
//!
//! - [`routing`]: the recipient decision at RCPT time (accepted domains, mailboxes, relay refusal).
//! - [`inbound`]: turning a finished SMTP transaction into a durable queue entry (the final 250).
//! - [`delivery`]: the queue runner: local delivery, quota, failures, NDRs, trace retention.
//! - [`ndr`]: RFC 3464 non-delivery reports.
//! - [`headers`]: the header fields of the messages hato writes, encoded and folded.

pub mod delivery;
pub mod groupmail;
pub mod headers;
pub mod inbound;
pub mod ndr;
pub mod routing;

/// Headers of a message: everything before the first empty line (RFC 5322 §2.1).
pub fn header_block(content: &[u8]) -> &[u8] {
    match memchr_find(content, b"\r\n\r\n") {
        Some(i) => &content[..i + 2],
        None => content,
    }
}

/// Linear: each position is compared with the needle's first byte, and only a match with more.
fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One header field of a header block: its name and its whole field (name, colon, value with its
/// folds, the final CRLF), as raw bytes.
pub struct HeaderField<'a> {
    pub name: &'a [u8],
    /// The value: everything after the colon up to (not including) the field's final CRLF.
    pub value: &'a [u8],
    pub field: &'a [u8],
}

/// The fields of a header block in order, in one pass (RFC 5322 §2.2: a field is a line with a
/// name and a colon, plus the lines after it that start with whitespace). Lines that are neither
/// are skipped. The header parser of `mail-parser` builds every field's value (a References field
/// of a million identifiers becomes a million strings); callers pick the few fields they need
/// with this and parse only those.
pub fn header_fields(block: &[u8]) -> impl Iterator<Item = HeaderField<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < block.len() {
            let start = pos;
            // The field ends at the first line break not followed by folding whitespace.
            let mut end = start;
            loop {
                match block[end..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        end += i + 1;
                        if !matches!(block.get(end), Some(b' ' | b'\t')) {
                            break;
                        }
                    }
                    None => {
                        end = block.len();
                        break;
                    }
                }
            }
            pos = end;
            let field = &block[start..end];
            let Some(colon) = field.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = field[..colon].trim_ascii_end();
            if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let value = &field[colon + 1..];
            let value = value
                .strip_suffix(b"\r\n")
                .or_else(|| value.strip_suffix(b"\n"))
                .unwrap_or(value);
            return Some(HeaderField { name, value, field });
        }
        None
    })
}

/// The fields called `names` (any case) of a header block, whole, followed by the empty line: a
/// small header block for `mail-parser` to decode.
pub(crate) fn only_fields(block: &[u8], names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in header_fields(block) {
        if names
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()))
        {
            out.extend_from_slice(f.field);
            if !f.field.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The Subject, Message-ID and From of a message, decoded, as trace and mailbox listings show them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub subject: String,
    /// With angle brackets, as message trace wants it; empty when the message has none.
    pub message_id: String,
    pub from: String,
}

/// Linear in the size of the header block, whatever is in it: only Subject, Message-ID and From
/// are handed to the header parser.
pub fn summarize(content: &[u8]) -> Summary {
    let fields = only_fields(header_block(content), &["Subject", "Message-ID", "From"]);
    let Some(msg) = mail_parser::MessageParser::new().parse_headers(&fields) else {
        return Summary::default();
    };
    let from = msg
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(addr)) => format!("{n} <{addr}>"),
            (None, Some(addr)) => addr.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    Summary {
        // Exchange's trace keeps the first 256 characters of a subject.
        subject: msg.subject().unwrap_or("").chars().take(256).collect(),
        message_id: msg
            .message_id()
            .map(|m| format!("<{m}>"))
            .unwrap_or_default(),
        from,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_decodes_headers() {
        let s = super::summarize(
            b"From: =?utf-8?q?J=C3=BCrgen?= <j@x.test>\r\nSubject: =?utf-8?b?w7xiZXI=?=\r\nMessage-ID: <abc@x.test>\r\n\r\nbody\r\n",
        );
        assert_eq!(s.subject, "über");
        assert_eq!(s.message_id, "<abc@x.test>");
        assert_eq!(s.from, "Jürgen <j@x.test>");
        assert_eq!(super::summarize(b"no headers at all").subject, "");
    }

    #[test]
    fn header_fields_are_split_at_unfolded_line_breaks() {
        let block = b"From: a@x.test\r\nReferences: <1@x>\r\n <2@x>\r\n\tmore\r\nnot a field\r\nX-Empty:\r\nSubject: s";
        let fields: Vec<(&[u8], &[u8])> = super::header_fields(block)
            .map(|f| (f.name, f.value))
            .collect();
        assert_eq!(
            fields,
            vec![
                (&b"From"[..], &b" a@x.test"[..]),
                (b"References", b" <1@x>\r\n <2@x>\r\n\tmore"),
                (b"X-Empty", b""),
                (b"Subject", b" s"),
            ]
        );
        assert_eq!(
            super::only_fields(block, &["subject", "FROM"]),
            b"From: a@x.test\r\nSubject: s\r\n\r\n"
        );
    }
}

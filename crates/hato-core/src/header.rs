//! Reading a message's header block: where it ends, and its fields split in one pass (RFC 5322
//! §2.2). Every step is linear in the bytes it is given, whatever is in them: a stage that needs
//! a few fields picks them from [`header_fields`] (or a [`Headers`]) and hands only those to a
//! full parser, instead of a parser that builds every field's value (a References field of a
//! million identifiers becomes a million strings).

use std::ops::Range;

/// Headers of a message: everything before the first empty line (RFC 5322 §2.1), with the CRLF
/// that ends the last field.
pub fn header_block(content: &[u8]) -> &[u8] {
    match find(content, b"\r\n\r\n") {
        Some(i) => &content[..i + 2],
        None => content,
    }
}

/// Linear: each position is compared with the needle's first byte, and only a match with more.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One header field of a header block: its name and its whole field (name, colon, value with its
/// folds, the final CRLF), as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderField<'a> {
    pub name: &'a [u8],
    /// The value: everything after the colon up to (not including) the field's final CRLF.
    pub value: &'a [u8],
    pub field: &'a [u8],
}

/// Where one field lies in its block: (name, value, whole field).
type Spans = (Range<usize>, Range<usize>, Range<usize>);

/// The fields of `block`, as positions in it, in one pass.
fn field_spans(block: &[u8]) -> impl Iterator<Item = Spans> + '_ {
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
            let value_len = value
                .strip_suffix(b"\r\n")
                .or_else(|| value.strip_suffix(b"\n"))
                .unwrap_or(value)
                .len();
            let value_start = start + colon + 1;
            return Some((
                start..start + name.len(),
                value_start..value_start + value_len,
                start..end,
            ));
        }
        None
    })
}

/// The fields of a header block in order, in one pass (RFC 5322 §2.2: a field is a line with a
/// name and a colon, plus the lines after it that start with whitespace). Lines that are neither
/// are skipped.
pub fn header_fields(block: &[u8]) -> impl Iterator<Item = HeaderField<'_>> {
    field_spans(block).map(move |(name, value, field)| HeaderField {
        name: &block[name],
        value: &block[value],
        field: &block[field],
    })
}

/// The fields called `names` (any case) of a header block, whole, followed by the empty line: a
/// small header block for a full parser to decode.
pub fn only_fields(block: &[u8], names: &[&str]) -> Vec<u8> {
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

/// At most this much of a message's header block is kept for the stages that read it (more than
/// any header block hato expects; the rest of a larger one is not looked at).
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// A message's header block, split into fields once, owned: what the stages that decide about a
/// message read of its headers ([`crate::message::MessageContext`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    block: Vec<u8>,
    fields: Vec<Spans>,
    truncated: bool,
}

impl Headers {
    /// The header block at the start of `content`, at most `max` bytes of it (cut after the last
    /// whole line within them): linear in `max`, whatever the content.
    pub fn parse(content: &[u8], max: usize) -> Self {
        let window = &content[..content.len().min(max)];
        let mut block = header_block(window);
        // A block that does not end within the window (no empty line in it, and more content
        // after it) is cut after its last whole line.
        let truncated = block.len() == window.len() && content.len() > window.len();
        if truncated {
            let end = block.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            block = &block[..end];
        }
        Headers {
            fields: field_spans(block).collect(),
            block: block.to_vec(),
            truncated,
        }
    }

    /// The header block as it was read (up to where it was cut).
    pub fn block(&self) -> &[u8] {
        &self.block
    }

    /// Whether the message's header block was longer than what was kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field, in order.
    pub fn fields(&self) -> impl Iterator<Item = HeaderField<'_>> {
        self.fields.iter().map(|(name, value, field)| HeaderField {
            name: &self.block[name.clone()],
            value: &self.block[value.clone()],
            field: &self.block[field.clone()],
        })
    }

    /// The raw values (after the colon, folds kept) of the fields called `name`, any case.
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.fields()
            .filter(move |f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value)
    }

    /// The first field called `name`'s raw value.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_split_at_unfolded_line_breaks() {
        let block = b"From: a@x.test\r\nReferences: <1@x>\r\n <2@x>\r\n\tmore\r\nnot a field\r\nX-Empty:\r\nSubject: s";
        let fields: Vec<(&[u8], &[u8])> = header_fields(block).map(|f| (f.name, f.value)).collect();
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
            only_fields(block, &["subject", "FROM"]),
            b"From: a@x.test\r\nSubject: s\r\n\r\n"
        );
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_block(b"A: 1\r\n"), b"A: 1\r\n");
    }

    #[test]
    fn headers_keep_their_fields_and_are_bounded() {
        let h = Headers::parse(
            b"From: a@x.test\r\nTo: b@x.test,\r\n c@x.test\r\nto: d@x.test\r\n\r\nSubject: body\r\n",
            MAX_HEADER_BYTES,
        );
        assert_eq!(h.len(), 3);
        assert!(!h.is_truncated());
        assert_eq!(h.first("from"), Some(&b" a@x.test"[..]));
        let to: Vec<&[u8]> = h.values("TO").collect();
        assert_eq!(to, [&b" b@x.test,\r\n c@x.test"[..], b" d@x.test"]);
        assert_eq!(h.first("Subject"), None, "the body is not the header");

        // A header block longer than the bound is cut after its last whole line.
        let long = b"A: 1\r\nB: 22222\r\nC: 3\r\n\r\nbody";
        let h = Headers::parse(long, 12);
        assert!(h.is_truncated());
        assert_eq!(h.block(), b"A: 1\r\n");
        assert_eq!(h.fields().map(|f| f.name).collect::<Vec<_>>(), [b"A"]);
        // Content shorter than the bound with no empty line is the header block, whole.
        let h = Headers::parse(b"A: 1\r\nB: 2", 100);
        assert!(!h.is_truncated() && h.len() == 2);
    }

    /// A 35 MB header (the largest message) of a million folded lines in one field, and one of
    /// a million small fields: each split in one pass (a quadratic splitter would not finish).
    #[test]
    fn splitting_a_35_mb_header_is_linear() {
        let mut one_field = b"References:".to_vec();
        let mut many_fields = Vec::new();
        let mut i = 0;
        while one_field.len() < 35_000_000 {
            one_field
                .extend_from_slice(format!(" <reference-{i:08}@fabrikam.test>\r\n").as_bytes());
            many_fields.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            i += 1;
        }
        one_field.extend_from_slice(b"Subject: last\r\n\r\nbody\r\n");
        let block = header_block(&one_field);
        let fields: Vec<HeaderField<'_>> = header_fields(block).collect();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value, b" last");
        assert_eq!(header_fields(&many_fields).count(), i);
        // What the stages keep of it is bounded.
        let h = Headers::parse(&one_field, MAX_HEADER_BYTES);
        assert!(h.is_truncated() && h.block().len() <= MAX_HEADER_BYTES);
        assert_eq!(h.len(), 1);
    }
}

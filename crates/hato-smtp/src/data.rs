//! The DATA phase receiver (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! smtp-proto's receiver ends the data at sequences such as `<CRLF>.<CR><CR><LF>`, which a strict
//! peer reads as content; that difference is what SMTP smuggling exploits. This receiver is strict:
//! only `<CRLF>.<CRLF>` ends the data (the DATA command's own CRLF counts as the first CRLF, so an
//! empty message is `.<CRLF>`). A bare CR or a bare LF anywhere in the data is noted so that the
//! session refuses the message (`550 5.6.11`) after reading it to its real end; nothing is split.

use crate::header_filter::{HeaderDropRule, HeaderFilter};
use hato_core::MessageBody;
use memchr::memchr2;
use std::sync::Arc;

/// Where the receiver puts the unstuffed content: a `Vec` (tests), or a [`MessageBody`] that
/// continues in a spool file past its threshold.
pub trait DataSink {
    /// Bytes stored so far.
    fn stored(&self) -> usize;
    fn store(&mut self, bytes: &[u8]);
}

impl DataSink for Vec<u8> {
    fn stored(&self) -> usize {
        self.len()
    }

    fn store(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl DataSink for MessageBody {
    fn stored(&self) -> usize {
        usize::try_from(self.len()).unwrap_or(usize::MAX)
    }

    fn store(&mut self, bytes: &[u8]) {
        self.append(bytes);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF).
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` then CR at the start of a line.
    DotCr,
    /// Inside a line.
    Mid,
    /// After a CR inside a line.
    Cr,
}

/// What was wrong with the data, once it has ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataFlaws {
    pub bare_cr_or_lf: bool,
    pub line_too_long: bool,
    pub too_big: bool,
}

#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    line_len: usize,
    max_size: usize,
    max_line: usize,
    flaws: DataFlaws,
    /// Removes the header fields a sender may not set (hato's own), as the content arrives.
    filter: Option<HeaderFilter>,
    /// What the filter kept of one push.
    kept: Vec<u8>,
}

/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including its CRLF.
pub const MAX_TEXT_LINE: usize = 1000;

impl DataReceiver {
    pub fn new(max_size: usize) -> Self {
        DataReceiver {
            state: State::LineStart,
            line_len: 0,
            max_size,
            max_line: MAX_TEXT_LINE,
            flaws: DataFlaws::default(),
            filter: None,
            kept: Vec::new(),
        }
    }

    /// Removes the header fields `rule` names from the content as it arrives.
    pub fn with_header_filter(mut self, rule: Arc<HeaderDropRule>) -> Self {
        self.filter = Some(HeaderFilter::new(rule));
        self
    }

    /// Header fields the filter removed.
    pub fn headers_removed(&self) -> usize {
        self.filter.as_ref().map_or(0, HeaderFilter::removed)
    }

    pub fn flaws(&self) -> DataFlaws {
        self.flaws
    }

    fn push<S: DataSink + ?Sized>(&mut self, out: &mut S, bytes: &[u8]) {
        self.line_len += bytes.len();
        if self.line_len > self.max_line {
            self.flaws.line_too_long = true;
        }
        if out.stored() + bytes.len() > self.max_size {
            // Keep reading to the end, but stop storing: the message will be refused.
            self.flaws.too_big = true;
        } else if !self.flaws.too_big {
            match &mut self.filter {
                Some(f) if !f.in_body() => {
                    self.kept.clear();
                    f.feed(bytes, &mut self.kept);
                    out.store(&self.kept);
                }
                _ => out.store(bytes),
            }
        }
    }

    fn push_byte<S: DataSink + ?Sized>(&mut self, out: &mut S, b: u8) {
        self.push(out, &[b]);
    }

    /// Consumes bytes from `input`, appending the unstuffed content to `out`. Returns how many
    /// bytes were consumed and whether the end of data was reached (the rest belongs to the next
    /// command).
    pub fn ingest<S: DataSink + ?Sized>(&mut self, input: &[u8], out: &mut S) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Mid => {
                    // Fast path: copy up to the next CR or LF in one go.
                    let rest = &input[i..];
                    match memchr2(b'\r', b'\n', rest) {
                        None => {
                            self.push(out, rest);
                            return (input.len(), false);
                        }
                        Some(pos) => {
                            self.push(out, &rest[..pos]);
                            i += pos;
                            let b = input[i];
                            i += 1;
                            if b == b'\r' {
                                self.push_byte(out, b'\r');
                                self.state = State::Cr;
                            } else {
                                self.flaws.bare_cr_or_lf = true;
                                self.push_byte(out, b'\n');
                            }
                        }
                    }
                }
                State::LineStart => {
                    let b = input[i];
                    i += 1;
                    self.line_len = 0;
                    match b {
                        b'.' => self.state = State::Dot,
                        b'\r' => {
                            self.push_byte(out, b);
                            self.state = State::Cr;
                        }
                        b'\n' => {
                            self.flaws.bare_cr_or_lf = true;
                            self.push_byte(out, b);
                            self.state = State::Mid;
                        }
                        _ => {
                            self.push_byte(out, b);
                            self.state = State::Mid;
                        }
                    }
                }
                State::Dot => {
                    let b = input[i];
                    i += 1;
                    // The leading dot was transparency stuffing (RFC 5321 §4.5.2); it is dropped.
                    self.line_len += 1;
                    match b {
                        b'\r' => self.state = State::DotCr,
                        b'\n' => {
                            self.flaws.bare_cr_or_lf = true;
                            self.push_byte(out, b);
                            self.state = State::Mid;
                        }
                        _ => {
                            self.push_byte(out, b);
                            self.state = State::Mid;
                        }
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    if b == b'\n' {
                        self.state = State::LineStart;
                        if let Some(f) = &mut self.filter
                            && !self.flaws.too_big
                        {
                            self.kept.clear();
                            f.finish(&mut self.kept);
                            out.store(&self.kept);
                        }
                        return (i + 1, true);
                    }
                    // `.<CR>x`: the CR was a bare CR. Store it and look at `x` again inside the line.
                    self.flaws.bare_cr_or_lf = true;
                    self.push_byte(out, b'\r');
                    self.state = State::Mid;
                }
                State::Cr => {
                    let b = input[i];
                    if b == b'\n' {
                        i += 1;
                        self.push_byte(out, b'\n');
                        self.state = State::LineStart;
                    } else {
                        // The previous CR was bare; look at `b` again inside the line.
                        self.flaws.bare_cr_or_lf = true;
                        self.state = State::Mid;
                        if b == b'\r' {
                            i += 1;
                            self.push_byte(out, b'\r');
                            self.state = State::Cr;
                            self.flaws.bare_cr_or_lf = true;
                        }
                    }
                }
            }
        }
        (input.len(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> (Vec<u8>, usize, bool, DataFlaws) {
        let mut r = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let (n, done) = r.ingest(data, &mut out);
        (out, n, done, r.flaws())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (out, n, done, flaws) = run(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(out, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(n, b"Subject: x\r\n\r\nbody\r\n.\r\n".len());
        assert_eq!(flaws, DataFlaws::default());
    }

    #[test]
    fn empty_message() {
        let (out, n, done, _) = run(b".\r\n");
        assert!(done);
        assert!(out.is_empty());
        assert_eq!(n, 3);
    }

    #[test]
    fn dot_unstuffing() {
        let (out, _, done, _) = run(b"..leading dot\r\n...\r\n.\r\n");
        assert!(done);
        assert_eq!(out, b".leading dot\r\n..\r\n");
    }

    #[test]
    fn byte_at_a_time_gives_the_same_result() {
        let data = b"a\r\n..b\r\n\r\nc\r\n.\r\nNEXT";
        let mut r = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let mut consumed = 0;
        for (i, b) in data.iter().enumerate() {
            let (n, done) = r.ingest(std::slice::from_ref(b), &mut out);
            consumed += n;
            if done {
                assert_eq!(i + 1, b"a\r\n..b\r\n\r\nc\r\n.\r\n".len());
                break;
            }
        }
        assert_eq!(consumed, b"a\r\n..b\r\n\r\nc\r\n.\r\n".len());
        assert_eq!(out, b"a\r\n.b\r\n\r\nc\r\n");
    }

    /// The published smuggling end-of-data variants must never end the data, and must be flagged.
    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for seq in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r",
            b"\r\n.\n",
            b"\r\n.\r",
            b"\r.\r\n",
            b"\r\n.\r\r\n",
            b"\n.\r",
            b"\r.\n",
        ] {
            let mut data = b"hello".to_vec();
            data.extend_from_slice(seq);
            data.extend_from_slice(b"MAIL FROM:<evil@x.test>\r\n");
            let (_, n, done, flaws) = run(&data);
            assert!(!done, "{seq:?} ended the data");
            assert_eq!(n, data.len());
            assert!(flaws.bare_cr_or_lf, "{seq:?} not flagged");
            // The real end still works afterwards.
            let mut r = DataReceiver::new(1 << 20);
            let mut out = Vec::new();
            data.extend_from_slice(b"\r\n.\r\n");
            let (n, done) = r.ingest(&data, &mut out);
            assert!(done && n == data.len() && r.flaws().bare_cr_or_lf);
        }
    }

    #[test]
    fn too_big_is_noted_and_not_stored() {
        let mut r = DataReceiver::new(10);
        let mut out = Vec::new();
        let (_, done) = r.ingest(b"0123456789abcdef\r\n.\r\n", &mut out);
        assert!(done);
        assert!(r.flaws().too_big);
        assert!(out.len() <= 10);
    }

    #[test]
    fn long_lines_are_noted() {
        let mut data = vec![b'a'; 999];
        data.extend_from_slice(b"\r\n.\r\n");
        assert!(run(&data).3.line_too_long, "999 octets + CRLF is over 1000");
        let mut data = vec![b'a'; 998];
        data.extend_from_slice(b"\r\n.\r\n");
        assert!(!run(&data).3.line_too_long);
        let mut data = vec![b'a'; 1001];
        data.extend_from_slice(b"\r\n.\r\n");
        assert!(run(&data).3.line_too_long);
    }
}

//! The message as it goes after DATA: dot-stuffed (RFC 5321 §4.5.2), with CRLF line ends, and
//! ended by `CRLF . CRLF` — streamed, a chunk at a time, so that a large message costs no more
//! memory than one chunk and its encoding.

/// Encodes message content for DATA, however it is split into chunks.
///
/// - A line that starts with `.` gets another in front (RFC 5321 §4.5.2), so that no line of
///   the message reads as the end of data.
/// - A bare LF, and a bare CR, become CRLF: RFC 5321 §2.3.8 allows CR and LF in the data only
///   together, receivers refuse them alone (Exchange's and hato's `550 5.6.11`), and a server
///   that took a bare one for a line end could read an end of data the message hid (SMTP
///   smuggling).
/// - [`DataEncoder::finish`] ends the last line if the content did not, then sends the lone
///   dot.
#[derive(Debug)]
pub struct DataEncoder {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The last byte was a CR, already sent as CRLF: an LF right after it is that same line end.
    after_cr: bool,
    /// Content bytes taken (before encoding).
    taken: u64,
}

impl Default for DataEncoder {
    fn default() -> Self {
        DataEncoder::new()
    }
}

impl DataEncoder {
    pub fn new() -> Self {
        DataEncoder {
            at_line_start: true,
            after_cr: false,
            taken: 0,
        }
    }

    /// Appends `chunk`, encoded, to `out` (which grows by at most twice the chunk's length).
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.taken += chunk.len() as u64;
        out.reserve(chunk.len() + chunk.len() / 16 + 4);
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            if self.at_line_start {
                self.at_line_start = false;
                if rest[0] == b'.' {
                    out.push(b'.');
                }
            }
            match memchr::memchr2(b'\r', b'\n', rest) {
                None => {
                    out.extend_from_slice(rest);
                    return;
                }
                Some(i) => {
                    out.extend_from_slice(&rest[..i]);
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    self.after_cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                }
            }
        }
    }

    /// Ends the data: a CRLF if the content's last line had none, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    /// Content bytes taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }
}

/// Whether content has bytes beyond ASCII, which only a server that offers 8BITMIME takes
/// (RFC 6152 §3): for callers that do not know how their message was received.
pub fn is_eight_bit(content: &[u8]) -> bool {
    content.iter().any(|b| *b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(content: &[u8]) -> Vec<u8> {
        let mut e = DataEncoder::new();
        let mut out = Vec::new();
        e.encode(content, &mut out);
        e.finish(&mut out);
        out
    }

    #[test]
    fn dot_lines_are_stuffed() {
        assert_eq!(
            encode(b".\r\n..\r\n.x\r\nx.\r\n.\r\n"),
            b"..\r\n...\r\n..x\r\nx.\r\n..\r\n.\r\n"
        );
        // The first line too, and a line that is only a dot at the very end.
        assert_eq!(encode(b"."), b"..\r\n.\r\n");
    }

    #[test]
    fn the_last_line_is_ended() {
        assert_eq!(
            encode(b"Subject: x\r\n\r\nno newline"),
            b"Subject: x\r\n\r\nno newline\r\n.\r\n"
        );
        assert_eq!(encode(b"ends\r\n"), b"ends\r\n.\r\n");
        assert_eq!(encode(b""), b".\r\n");
    }

    #[test]
    fn bare_line_ends_become_crlf() {
        assert_eq!(encode(b"a\nb\rc\r\n.d\n"), b"a\r\nb\r\nc\r\n..d\r\n.\r\n");
        // A CR at the end of the content is a line end already.
        assert_eq!(encode(b"a\r"), b"a\r\n.\r\n");
        // Smuggling: a bare-LF "end of data" inside the content is no end of data.
        assert_eq!(
            encode(b"x\n.\nMAIL FROM:<a@b>\n"),
            b"x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n"
        );
    }

    /// Split at every place (a CRLF or a dot across chunks), the encoding is the same.
    #[test]
    fn any_chunking_encodes_the_same() {
        let content: &[u8] = b".a\r\n.\r\nb\n.\rc\r\r\n..\r";
        let whole = encode(content);
        for cut in 0..=content.len() {
            for cut2 in cut..=content.len() {
                let mut e = DataEncoder::new();
                let mut out = Vec::new();
                e.encode(&content[..cut], &mut out);
                e.encode(&content[cut..cut2], &mut out);
                e.encode(&content[cut2..], &mut out);
                assert_eq!(e.taken(), content.len() as u64);
                e.finish(&mut out);
                assert_eq!(out, whole, "cut at {cut} and {cut2}");
            }
        }
    }

    /// Linear: 20 MB of dot lines in 64 KiB chunks encode in well under a second, and each
    /// chunk's output stays within twice its size.
    #[test]
    fn large_content_is_streamed() {
        let line = b".xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
        let chunk: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
        let mut e = DataEncoder::new();
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        let mut total = 0usize;
        for _ in 0..320 {
            out.clear();
            e.encode(&chunk, &mut out);
            assert!(out.len() <= 2 * chunk.len());
            total += out.len();
        }
        assert!(total > 20_000_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn eight_bit_content() {
        assert!(!is_eight_bit(b"plain ASCII\r\n"));
        assert!(is_eight_bit("caf\u{e9}".as_bytes()));
    }
}

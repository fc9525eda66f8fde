//! The server's replies as the client reads them (RFC 5321 §4.2), in bounded memory and linear
//! time whatever the server sends.
//!
//! smtp-proto's `ResponseReceiver` does not fit here: it keeps each part of an enhanced status
//! code in a `u8` that saturates, so Exchange's `5.7.606` or `4.4.316` would read as `5.7.255`,
//! and it caps a reply at 4 KiB with no way to raise it. The framing is simple enough to own.

use hato_core::reply::Reply;
use std::borrow::Cow;

/// The longest reply line read: eight times RFC 5321 §4.5.3.1.5's 512 octets, so that a server
/// sending a line without end fails fast.
pub const MAX_REPLY_LINE: usize = 4096;

/// The longest reply read by default (all its lines): far more than any EHLO reply.
pub const DEFAULT_MAX_REPLY: usize = 64 * 1024;

/// A complete reply: what it says, and its lines as received (for the EHLO keywords and the
/// transcript).
#[derive(Debug)]
pub(crate) struct RawReply {
    pub reply: Reply,
    pub lines: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// A line, or the whole reply, longer than allowed.
    TooLong(usize),
    /// Not an RFC 5321 reply.
    Malformed(String),
}

/// Reads replies from the bytes the server sends, however they are split.
#[derive(Debug)]
pub(crate) struct ReplyReader {
    /// Input not consumed yet: the reply being read, and whatever came after it.
    buf: Vec<u8>,
    /// Where the reply being read starts in `buf`.
    start: usize,
    /// Where its current (incomplete) line starts.
    line_start: usize,
    /// How far `buf` has been searched for line ends: no byte is looked at twice.
    scanned: usize,
    max_reply: usize,
}

impl ReplyReader {
    pub fn new(max_reply: usize) -> Self {
        ReplyReader {
            buf: Vec::new(),
            start: 0,
            line_start: 0,
            scanned: 0,
            max_reply,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets everything received and not read: RFC 3207 §4.2, nothing the server sent before
    /// the TLS handshake is used after it.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.line_start = 0;
        self.scanned = 0;
    }

    /// Bytes received and not read as replies yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete reply, if it has all arrived.
    pub fn next(&mut self) -> Result<Option<RawReply>, ReadError> {
        loop {
            let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                self.check_lengths(self.scanned)?;
                self.compact();
                return Ok(None);
            };
            let end = self.scanned + i + 1;
            self.check_lengths(end)?;
            self.scanned = end;
            let line = &self.buf[self.line_start..end];
            // RFC 5321 §4.2.1: `ddd-text` continues, `ddd text` (or `ddd` alone) ends.
            let last = line.get(3) != Some(&b'-');
            self.line_start = end;
            if last {
                let reply = parse(&self.buf[self.start..end]);
                self.start = end;
                return reply.map(Some);
            }
        }
    }

    fn check_lengths(&self, end: usize) -> Result<(), ReadError> {
        if end - self.line_start > MAX_REPLY_LINE {
            return Err(ReadError::TooLong(MAX_REPLY_LINE));
        }
        if end - self.start > self.max_reply {
            return Err(ReadError::TooLong(self.max_reply));
        }
        Ok(())
    }

    /// Drops the replies already read, once per call to [`ReplyReader::next`] that runs out of
    /// input, so that the bytes kept move at most once per read.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.line_start -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
    }
}

/// One complete reply (its lines, each ending in LF). Every line carries the same code (RFC 5321
/// §4.2.1); an enhanced status code (RFC 3463, RFC 2034 §4) at the start of each line's text is
/// taken from the first line and left out of the text. The lines' texts are joined with a space,
/// so that the text stays one line wherever it is recorded.
fn parse(bytes: &[u8]) -> Result<RawReply, ReadError> {
    let mut code = None;
    let mut status = String::new();
    let mut texts: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = clean(line);
        let this = match line {
            [a, b, c, rest @ ..]
                if a.is_ascii_digit()
                    && b.is_ascii_digit()
                    && c.is_ascii_digit()
                    && matches!(rest.first(), None | Some(b' ' | b'-')) =>
            {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => {
                return Err(ReadError::Malformed(format!(
                    "not an SMTP reply line: {:?}",
                    shorten(&text)
                )));
            }
        };
        if !(200..=599).contains(&this) {
            return Err(ReadError::Malformed(format!(
                "reply code {this} is not one of RFC 5321's (2xx to 5xx)"
            )));
        }
        match code {
            None => code = Some(this),
            Some(c) if c != this => {
                return Err(ReadError::Malformed(format!(
                    "a reply whose lines carry different codes ({c}, then {this}; RFC 5321 4.2.1)"
                )));
            }
            Some(_) => {}
        }
        let rest = text.get(4..).unwrap_or("");
        let rest = match enhanced(rest) {
            Some((esc, after)) => {
                if n == 0 {
                    status = esc.to_string();
                }
                after
            }
            None => rest,
        };
        if !rest.is_empty() {
            texts.push(rest.to_string());
        }
        lines.push(text);
    }
    let Some(code) = code else {
        return Err(ReadError::Malformed("an empty reply".into()));
    };
    Ok(RawReply {
        reply: Reply {
            code,
            status: Cow::Owned(status),
            text: Cow::Owned(texts.join(" ")),
        },
        lines,
    })
}

/// An RFC 3463 code (`class.subject.detail`: class 2, 4 or 5, then one to three digits each)
/// at the start of `text`, and the text after it.
fn enhanced(text: &str) -> Option<(&str, &str)> {
    let end = text.find(' ').unwrap_or(text.len());
    let token = &text[..end];
    let mut parts = token.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some()
        || !matches!(class, "2" | "4" | "5")
        || !digits(subject)
        || !digits(detail)
    {
        return None;
    }
    Some((token, text[end..].trim_start_matches(' ')))
}

/// A reply line as text: invalid UTF-8 replaced, control characters (which a server has no
/// business sending, and which would garble a log or a transcript) shown as spaces.
fn clean(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max: usize) -> Result<Vec<Reply>, ReadError> {
        let mut r = ReplyReader::new(max);
        r.push(input);
        let mut out = Vec::new();
        while let Some(reply) = r.next()? {
            out.push(reply.reply);
        }
        Ok(out)
    }

    #[test]
    fn codes_enhanced_codes_and_multiline_text() {
        let replies = read_all(
            b"250-mx.test Hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n\
              550 5.7.606 Access denied, banned sending IP\r\n\
              250\r\n\
              451-4.4.316 first\r\n451 4.4.316 second\r\n",
            DEFAULT_MAX_REPLY,
        )
        .unwrap();
        assert_eq!(replies.len(), 4);
        assert_eq!(replies[0].code, 250);
        assert_eq!(replies[0].text, "mx.test Hello PIPELINING SIZE 100");
        assert_eq!(
            replies[1].to_string(),
            "550 5.7.606 Access denied, banned sending IP"
        );
        assert_eq!(replies[2].to_string(), "250 ");
        assert_eq!(replies[3].to_string(), "451 4.4.316 first second");
    }

    #[test]
    fn replies_split_anywhere_read_the_same() {
        let input: &[u8] = b"220-a\r\n220 b\r\n250 2.1.5 Ok\r\n";
        for cut in 0..input.len() {
            let mut r = ReplyReader::new(DEFAULT_MAX_REPLY);
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                r.push(part);
                while let Some(reply) = r.next().unwrap() {
                    got.push(reply.reply.to_string());
                }
            }
            assert_eq!(got, ["220 a b", "250 2.1.5 Ok"], "cut at {cut}");
        }
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"hello\r\n"[..],
            b"25 x\r\n",
            b"2501\r\n",
            b"150 x\r\n",
            b"650 x\r\n",
            b"250-a\r\n550 b\r\n",
        ] {
            assert!(
                matches!(
                    read_all(bad, DEFAULT_MAX_REPLY),
                    Err(ReadError::Malformed(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A line without end, or endless continuation lines, stop at the limits; byte by byte, the
    /// reader looks at each byte once (the test would take minutes if it rescanned).
    #[test]
    fn endless_replies_stop_at_the_limits() {
        let mut r = ReplyReader::new(DEFAULT_MAX_REPLY);
        let mut err = None;
        for _ in 0..10 * MAX_REPLY_LINE {
            r.push(b"x");
            if let Err(e) = r.next() {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReadError::TooLong(MAX_REPLY_LINE)));

        let mut r = ReplyReader::new(DEFAULT_MAX_REPLY);
        let mut err = None;
        for _ in 0..1_000_000 {
            r.push(b"250-continued\r\n");
            if let Err(e) = r.next() {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReadError::TooLong(DEFAULT_MAX_REPLY)));
        assert!(r.buf.len() <= DEFAULT_MAX_REPLY + 16);
    }

    #[test]
    fn control_characters_and_bad_utf8_are_cleaned() {
        let replies = read_all(b"550 5.1.1 bad\x1b[31m \xff user\r\n", DEFAULT_MAX_REPLY).unwrap();
        assert_eq!(replies[0].text, "bad [31m \u{fffd} user");
    }
}

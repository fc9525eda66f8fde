//! The actions that change a message's content — set and remove header fields, prepend to the
//! subject, the HTML disclaimer — applied to a header block and a body the caller gives (the
//! integrator, per recipient group). Pure: bytes in, bytes out, linear in their size.

use super::eval::RuleAction;
use super::{DisclaimerFallback, DisclaimerLocation};
use hato_core::header::header_fields;

/// What became of a disclaimer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisclaimerOutcome {
    /// Inserted in the body.
    Inserted,
    /// The body could not be changed in place: the original is now an attachment (message/rfc822)
    /// of a message carrying the disclaimer (`Wrap`).
    Wrapped,
    /// Not inserted (`Ignore`).
    Ignored,
    /// Not inserted, and the rule says to reject (`Reject`): the caller rejects for the
    /// recipients concerned.
    Reject,
}

/// The changed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modified {
    /// The header block: fields, each ending with CRLF, without the empty line.
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    pub disclaimer: Option<DisclaimerOutcome>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Text for a header field: as it is when ASCII, else RFC 2047 encoded-words (`B`, UTF-8), each
/// at most 75 characters (§2), split at character boundaries.
fn header_text(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 → 60 characters of base64 + 12 of `=?utf-8?B??=`.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field);
    if !field.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// The block without the fields called `name`.
fn without(block: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len());
    for f in header_fields(block) {
        if !f.name.eq_ignore_ascii_case(name.as_bytes()) {
            push_field(&mut out, f.field);
        }
    }
    out
}

fn first_value<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header_fields(block)
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value)
}

/// Visible text of HTML, for a text/plain body: tags dropped, the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => in_tag = true,
            (true, '>') => in_tag = false,
            (false, c) => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Position of `needle` in `hay`, ASCII case-insensitive (linear for the short needles here).
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn rfind_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle))
}

/// Inserts the disclaimer into a single-part text/plain or text/html body in 7bit or 8bit
/// (changing an encoded or multipart body in place is what `Wrap` is for).
fn insert(header: &[u8], body: &[u8], text: &str, at: DisclaimerLocation) -> Option<Vec<u8>> {
    let ctype = first_value(header, "content-type")
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
        .unwrap_or_else(|| "text/plain".into());
    let cte = first_value(header, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
        .unwrap_or_else(|| "7bit".into());
    if cte != "7bit" && cte != "8bit" {
        return None;
    }
    let html = if ctype.starts_with("text/html") {
        true
    } else if ctype.starts_with("text/plain") {
        false
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(body.len() + text.len() + 16);
    if html {
        let snippet = format!("<div>{text}</div>");
        match at {
            DisclaimerLocation::Append => {
                let cut = rfind_ci(body, b"</body").unwrap_or(body.len());
                out.extend_from_slice(&body[..cut]);
                out.extend_from_slice(snippet.as_bytes());
                out.extend_from_slice(&body[cut..]);
            }
            DisclaimerLocation::Prepend => {
                let cut = find_ci(body, b"<body")
                    .and_then(|i| body[i..].iter().position(|&b| b == b'>').map(|j| i + j + 1))
                    .unwrap_or(0);
                out.extend_from_slice(&body[..cut]);
                out.extend_from_slice(snippet.as_bytes());
                out.extend_from_slice(&body[cut..]);
            }
        }
    } else {
        let plain = html_to_text(text)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        match at {
            DisclaimerLocation::Append => {
                out.extend_from_slice(body);
                if !body.is_empty() && !body.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(plain.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            DisclaimerLocation::Prepend => {
                out.extend_from_slice(plain.as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(body);
            }
        }
    }
    Some(out)
}

/// The original message as a message/rfc822 attachment of a new body carrying the disclaimer.
fn wrap(header: &[u8], body: &[u8], text: &str) -> (Vec<u8>, Vec<u8>) {
    // A boundary that does not occur in the original (RFC 2046 §5.1.1), derived from an FNV-1a
    // hash of it: to make the first guess collide, a sender would need a message containing its
    // own hash. Each try is linear; in practice there is one.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in header.iter().chain(body) {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let boundary = loop {
        let b = format!("hato-disclaimer-{hash:016x}");
        if find_ci(body, b.as_bytes()).is_none() && find_ci(header, b.as_bytes()).is_none() {
            break b;
        }
        hash = hash.wrapping_mul(0x0100_0000_01b3).wrapping_add(1);
    };
    let mut outer = Vec::new();
    for f in header_fields(header) {
        let n = f.name;
        if n.eq_ignore_ascii_case(b"content-type")
            || n.eq_ignore_ascii_case(b"content-transfer-encoding")
            || n.eq_ignore_ascii_case(b"mime-version")
        {
            continue;
        }
        push_field(&mut outer, f.field);
    }
    outer.extend_from_slice(b"MIME-Version: 1.0\r\n");
    outer.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n").as_bytes(),
    );
    let mut b = Vec::with_capacity(body.len() + header.len() + text.len() + 256);
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<div>{text}</div>\r\n--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(header);
    b.extend_from_slice(b"\r\n");
    b.extend_from_slice(body);
    if !body.ends_with(b"\r\n") {
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (outer, b)
}

/// Applies the content actions among `actions` (others are ignored) to a header block (fields,
/// each with its CRLF, no empty line) and a body, in the order given.
pub fn apply_content_actions(header: &[u8], body: &[u8], actions: &[RuleAction]) -> Modified {
    let mut header = header.to_vec();
    let mut body = body.to_vec();
    let mut disclaimer = None;
    for a in actions {
        match a {
            RuleAction::SetHeader { name, value } => {
                // Exchange's SetHeader adds the field or overwrites it (reference §5.4).
                header = without(&header, name);
                header.extend_from_slice(format!("{name}: {}\r\n", header_text(value)).as_bytes());
            }
            RuleAction::RemoveHeader { name } => header = without(&header, name),
            RuleAction::PrependSubject { text } => {
                let old = first_value(&header, "subject")
                    .map(|v| String::from_utf8_lossy(v).trim_start().to_string())
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(header.len() + text.len() + 12);
                let mut done = false;
                for f in header_fields(&header) {
                    if !done && f.name.eq_ignore_ascii_case(b"subject") {
                        out.extend_from_slice(
                            format!("Subject: {} {old}", header_text(text))
                                .trim_end()
                                .as_bytes(),
                        );
                        out.extend_from_slice(b"\r\n");
                        done = true;
                    } else {
                        push_field(&mut out, f.field);
                    }
                }
                if !done {
                    out.extend_from_slice(format!("Subject: {}\r\n", header_text(text)).as_bytes());
                }
                header = out;
            }
            RuleAction::Disclaimer {
                text,
                location,
                fallback,
            } => match insert(&header, &body, text, *location) {
                Some(b) => {
                    body = b;
                    disclaimer = Some(DisclaimerOutcome::Inserted);
                }
                None => match fallback {
                    DisclaimerFallback::Wrap => {
                        let (h, b) = wrap(&header, &body, text);
                        header = h;
                        body = b;
                        disclaimer = Some(DisclaimerOutcome::Wrapped);
                    }
                    DisclaimerFallback::Ignore => disclaimer = Some(DisclaimerOutcome::Ignored),
                    DisclaimerFallback::Reject => disclaimer = Some(DisclaimerOutcome::Reject),
                },
            },
            _ => {}
        }
    }
    Modified {
        header,
        body,
        disclaimer,
    }
}

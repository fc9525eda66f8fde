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

/// The block with `addresses` added to the first field called `name` (a new field at the end
/// when there is none), each on a folded line of its own (RFC 5322 §3.2.2) so no line grows
/// long. Addresses a rule names were checked when it was saved.
fn add_addresses(block: &[u8], name: &str, addresses: &[String]) -> Vec<u8> {
    if addresses.is_empty() {
        return block.to_vec();
    }
    let added: String = addresses.iter().map(|a| format!(",\r\n {a}")).collect();
    let mut out = Vec::with_capacity(block.len() + added.len() + name.len() + 4);
    let mut done = false;
    for f in header_fields(block) {
        if !done && f.name.eq_ignore_ascii_case(name.as_bytes()) {
            let field = f.field.strip_suffix(b"\r\n").unwrap_or(f.field);
            let field = field.strip_suffix(b"\n").unwrap_or(field);
            out.extend_from_slice(field);
            out.extend_from_slice(added.as_bytes());
            out.extend_from_slice(b"\r\n");
            done = true;
        } else {
            push_field(&mut out, f.field);
        }
    }
    if !done {
        out.extend_from_slice(format!("{name}: {}\r\n", &added[4..]).as_bytes());
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

/// Nested multiparts looked into, at most (a message of a million nested parts costs this many
/// levels, each read once).
const MAX_DEPTH: usize = 4;

/// A parameter of a header field's value (RFC 2045 §5.1), unquoted.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn field_text(header: &[u8], name: &str) -> Option<String> {
    first_value(header, name).map(|v| String::from_utf8_lossy(v).trim().to_string())
}

fn b64_value(c: u8) -> Option<u32> {
    B64.iter().position(|&x| x == c).map(|i| i as u32)
}

/// Base64 (RFC 2045 §6.8), characters outside the alphabet skipped.
fn unbase64(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        if c == b'=' {
            break;
        }
        let Some(v) = b64_value(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Base64 in lines of 76 characters.
fn base64_lines(data: &[u8]) -> Vec<u8> {
    let text = base64(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38 + 2);
    for chunk in text.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` decoded, soft line breaks removed.
fn unqp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'=' {
            match (data.get(i + 1), data.get(i + 2)) {
                (Some(b'\r'), Some(b'\n')) => i += 3,
                (Some(b'\n'), _) => i += 2,
                (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                    out.push(hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0));
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            }
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Quoted-printable, lines at most 76 characters, CRLF kept as line breaks.
fn qp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    let mut line = 0;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b'\r' && data.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            line = 0;
            i += 2;
            continue;
        }
        let at_end = matches!(data.get(i + 1), None | Some(b'\r'));
        let plain = (c == b' ' || c == b'\t') && !at_end || (33..=126).contains(&c) && c != b'=';
        let piece: Vec<u8> = if plain {
            vec![c]
        } else {
            format!("={c:02X}").into_bytes()
        };
        if line + piece.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            line = 0;
        }
        line += piece.len();
        out.extend_from_slice(&piece);
        i += 1;
    }
    out
}

/// The disclaimer added to decoded text: HTML before `</body>` (or after `<body…>`), text as
/// text.
fn add(body: &[u8], text: &str, html: bool, at: DisclaimerLocation) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + text.len() + 16);
    if html {
        let snippet = format!("<div>{text}</div>");
        let cut = match at {
            DisclaimerLocation::Append => rfind_ci(body, b"</body").unwrap_or(body.len()),
            DisclaimerLocation::Prepend => find_ci(body, b"<body")
                .and_then(|i| body[i..].iter().position(|&b| b == b'>').map(|j| i + j + 1))
                .unwrap_or(0),
        };
        out.extend_from_slice(&body[..cut]);
        out.extend_from_slice(snippet.as_bytes());
        out.extend_from_slice(&body[cut..]);
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
    out
}

/// Inserts the disclaimer into the message's text (a text/plain or text/html part in 7bit, 8bit,
/// quoted-printable or base64; in a multipart, every alternative of a multipart/alternative and
/// the first part of a mixed or related one), as Exchange does. `None` when there is no such
/// text, or it cannot be changed in place (a signed or encrypted message: RFC 1847; a charset
/// other than UTF-8 for a non-ASCII disclaimer): the fallback action decides then.
fn insert(
    header: &[u8],
    body: &[u8],
    text: &str,
    at: DisclaimerLocation,
) -> Option<(Vec<u8>, Vec<u8>)> {
    insert_at(header, body, text, at, 0)
}

fn insert_at(
    header: &[u8],
    body: &[u8],
    text: &str,
    at: DisclaimerLocation,
    depth: usize,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let raw = field_text(header, "content-type").unwrap_or_else(|| "text/plain".into());
    let media = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if let Some(sub) = media.strip_prefix("multipart/") {
        if depth >= MAX_DEPTH || sub == "signed" || sub == "encrypted" {
            return None;
        }
        let boundary = param(&raw, "boundary")?;
        let body = multipart(body, &boundary, sub == "alternative", text, at, depth)?;
        return Some((header.to_vec(), body));
    }
    if field_text(header, "content-disposition")
        .is_some_and(|d| d.to_ascii_lowercase().starts_with("attachment"))
    {
        return None;
    }
    let html = match media.as_str() {
        "text/html" => true,
        "text/plain" => false,
        _ => return None,
    };
    let charset = param(&raw, "charset")
        .unwrap_or_else(|| "us-ascii".into())
        .to_ascii_lowercase();
    if !text.is_ascii() && charset != "utf-8" && charset != "utf8" {
        return None;
    }
    let cte = field_text(header, "content-transfer-encoding")
        .unwrap_or_else(|| "7bit".into())
        .to_ascii_lowercase();
    let decoded = match cte.as_str() {
        "7bit" | "8bit" | "binary" => body.to_vec(),
        "quoted-printable" => unqp(body),
        "base64" => unbase64(body),
        _ => return None,
    };
    let changed = add(&decoded, text, html, at);
    Some(match cte.as_str() {
        "quoted-printable" => (header.to_vec(), qp(&changed)),
        "base64" => (header.to_vec(), base64_lines(&changed)),
        // A 7bit part that now holds 8-bit text is sent as quoted-printable (RFC 2045 §2.7).
        "7bit" if !changed.is_ascii() => {
            let mut h = without(header, "content-transfer-encoding");
            h.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
            (h, qp(&changed))
        }
        _ => (header.to_vec(), changed),
    })
}

/// A multipart body with the disclaimer in its text parts (RFC 2046 §5.1.1: a delimiter line is
/// `--boundary`, the CRLF before it belongs to it). Read once, line by line.
fn multipart(
    body: &[u8],
    boundary: &str,
    alternative: bool,
    text: &str,
    at: DisclaimerLocation,
    depth: usize,
) -> Option<Vec<u8>> {
    let delim = format!("--{boundary}");
    // (start, end) of each delimiter line, its line break included.
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = body[pos..end].trim_ascii_end();
        if line.starts_with(delim.as_bytes()) && matches!(&line[delim.len()..], b"" | b"--") {
            lines.push((
                pos,
                end,
                line.ends_with(b"--") && line.len() == delim.len() + 2,
            ));
        }
        pos = end;
    }
    let mut out = Vec::with_capacity(body.len() + text.len() * 2 + 64);
    let mut changed = false;
    let first = lines.first()?;
    out.extend_from_slice(&body[..first.0]);
    for (i, &(start, end, close)) in lines.iter().enumerate() {
        out.extend_from_slice(&body[start..end]);
        if close {
            out.extend_from_slice(&body[end..]);
            break;
        }
        let next = lines.get(i + 1).map_or(body.len(), |l| l.0);
        let part = &body[end..next];
        let (content, tail) = match part.strip_suffix(b"\r\n") {
            Some(c) => (c, &b"\r\n"[..]),
            None => (part, &b""[..]),
        };
        let wanted = alternative || i == 0;
        let (ph, pb) = match content.strip_prefix(b"\r\n") {
            Some(b) => (&b""[..], b),
            None => match find_ci(content, b"\r\n\r\n") {
                Some(k) => (&content[..k + 2], &content[k + 4..]),
                None => (content, &b""[..]),
            },
        };
        match wanted
            .then(|| insert_at(ph, pb, text, at, depth + 1))
            .flatten()
        {
            Some((h, b)) => {
                changed = true;
                out.extend_from_slice(&h);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&b);
            }
            None => out.extend_from_slice(content),
        }
        out.extend_from_slice(tail);
    }
    changed.then_some(out)
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
            // Exchange's AddToRecipients adds to the To field, CopyTo to the Cc field
            // (BlindCopyTo only to the envelope): the recipients see who else got it.
            RuleAction::AddToRecipients { to } => header = add_addresses(&header, "To", to),
            RuleAction::CopyTo { to } => header = add_addresses(&header, "Cc", to),
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
                Some((h, b)) => {
                    header = h;
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

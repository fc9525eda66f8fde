//! What rules read of a message ([`RuleMessage`]), and how to build it from a whole message
//! (`rule test`, and the integrator when it has no MIME walk of its own).
//!
//! Everything here is bounded: the body text kept is at most [`BODY_TEXT_MAX`], an attachment's
//! text at most [`ATTACHMENT_TEXT_MAX`] (Exchange scans the first 150 KB), header values are
//! those of the header block the session kept (at most `MAX_HEADER_BYTES`).

use hato_core::header::{Headers, MAX_HEADER_BYTES};
use mail_parser::{HeaderName, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The decoded text of the body parts kept for `SubjectOrBody…` conditions.
pub const BODY_TEXT_MAX: usize = 1024 * 1024;
/// An attachment's text kept for `AttachmentContainsWords`: Exchange reads the first 150 KB.
pub const ATTACHMENT_TEXT_MAX: usize = 150 * 1024;
/// Attachments listed per message; more are not looked at (a message of a million empty parts
/// costs a list of this many).
pub const ATTACHMENTS_MAX: usize = 1000;

/// `-MessageTypeMatches` (reference §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageType {
    Oof,
    AutoForward,
    Encrypted,
    Calendaring,
    PermissionControlled,
    Voicemail,
    Signed,
    ApprovalRequest,
    ReadReceipt,
}

/// One attachment, as the rules see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentFacts {
    pub name: String,
    pub size: u64,
    /// Executable content by its true type (PE, ELF, Mach-O, a script with `#!`), whatever its
    /// name says.
    pub executable: bool,
    pub password_protected: bool,
    /// Its text, when it has some (a text part; the malware walk's extraction), at most
    /// [`ATTACHMENT_TEXT_MAX`].
    pub text: String,
}

impl AttachmentFacts {
    /// The extension, lower case, without the dot (`""` when the name has none).
    pub fn extension(&self) -> String {
        match self.name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_lowercase(),
            _ => String::new(),
        }
    }
}

/// A message as the rules see it: the envelope, the header, the text, the attachments, what the
/// stages before found. The integrator fills it from the `MessageContext` and the malware
/// stage's walk; [`RuleMessage::from_message`] builds one from the raw message.
#[derive(Clone, Debug, Default)]
pub struct RuleMessage {
    /// `MAIL FROM` (canonical), `None` for `<>`.
    pub envelope_from: Option<String>,
    /// The addresses of the `From:` field (canonical; those that parse).
    pub header_from: Vec<String>,
    /// The envelope recipients, canonical: the evaluation answers for each.
    pub recipients: Vec<String>,
    /// The addresses in `To:` and `Cc:` (canonical).
    pub to_cc: Vec<String>,
    /// The subject, decoded (RFC 2047).
    pub subject: String,
    /// The text of the body parts, decoded, at most [`BODY_TEXT_MAX`].
    pub body_text: String,
    /// The header fields: name, value unfolded (at most the session's header block).
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<AttachmentFacts>,
    /// The whole message, in bytes.
    pub size: u64,
    /// The SCL so far (none before the spam filter, unless a connection allow list set −1).
    pub scl: Option<i8>,
    pub message_types: Vec<MessageType>,
    pub client_ip: Option<IpAddr>,
    /// The client authenticated (SMTP AUTH or a connector): `FromScope InOrganization` counts an
    /// accepted domain's sender as inside only then.
    pub authenticated: bool,
}

fn canonical(addr: &str) -> Option<String> {
    hato_core::Address::parse(addr.trim())
        .ok()
        .map(|a| a.to_string())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// Executable content by its first bytes.
pub(crate) fn is_executable(data: &[u8]) -> bool {
    data.starts_with(b"MZ")
        || data.starts_with(b"\x7fELF")
        || data.starts_with(b"#!")
        || data.starts_with(&[0xfe, 0xed, 0xfa, 0xce])
        || data.starts_with(&[0xfe, 0xed, 0xfa, 0xcf])
        || data.starts_with(&[0xce, 0xfa, 0xed, 0xfe])
        || data.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || data.starts_with(&[0xca, 0xfe, 0xba, 0xbe])
}

/// A ZIP whose first entry is encrypted (general purpose flag bit 0, APPNOTE 4.4.4), or a 7z
/// (its headers say no more without decoding: counted as protected only when the malware walk
/// says so). Office documents' encryption is an OLE container: `EncryptionInfo` in a CFB file.
pub(crate) fn is_password_protected(data: &[u8]) -> bool {
    if data.len() >= 8 && data.starts_with(b"PK\x03\x04") {
        return data[6] & 1 == 1;
    }
    if data.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        // UTF-16LE "EncryptionInfo", the stream of an encrypted OOXML document.
        let needle: Vec<u8> = "EncryptionInfo"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        return data.windows(needle.len()).any(|w| w == needle.as_slice());
    }
    false
}

/// A field's value unfolded (RFC 5322 §2.2.3: each CRLF, and each bare LF, removed) and
/// trimmed, built in one string: a message has dozens of fields, each read for every message.
fn unfolded(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(at) = rest.find('\n') {
        let line = &rest[..at];
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    let end = out.trim_end().len();
    out.truncate(end);
    let start = out.len() - out.trim_start().len();
    out.drain(..start);
    out
}

impl RuleMessage {
    /// The facts of a whole message (`content`: header and body, CRLF). The integrator passes the
    /// envelope's sender and recipients (canonical) and the client's IP; the SCL and
    /// authentication stay as given.
    pub fn from_message(
        content: &[u8],
        envelope_from: Option<String>,
        recipients: Vec<String>,
        client_ip: Option<IpAddr>,
    ) -> RuleMessage {
        let parsed = Self::parser().parse(content);
        Self::from_parsed(
            content,
            parsed.as_ref(),
            envelope_from,
            recipients,
            client_ip,
        )
    }

    /// The parser whose parse [`RuleMessage::from_parsed`] reads: MIME for the body and
    /// attachments, Subject, From, To and Cc (the other fields come from the header split);
    /// the malware walk reads the same parse ([`crate::malware::walk::walk_parsed`]).
    pub fn parser() -> MessageParser {
        MessageParser::new()
            .with_mime_headers()
            .header_text(HeaderName::Subject)
            .header_address(HeaderName::From)
            .header_address(HeaderName::To)
            .header_address(HeaderName::Cc)
            .default_header_ignore()
    }

    /// [`RuleMessage::from_message`] with `content` parsed already by
    /// [`RuleMessage::parser`] (`None`: it does not parse as a message).
    pub fn from_parsed(
        content: &[u8],
        parsed: Option<&mail_parser::Message<'_>>,
        envelope_from: Option<String>,
        recipients: Vec<String>,
        client_ip: Option<IpAddr>,
    ) -> RuleMessage {
        let headers = Headers::parse(content, MAX_HEADER_BYTES);
        let fields: Vec<(String, String)> = headers
            .fields()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    unfolded(f.value),
                )
            })
            .collect();
        let mut m = RuleMessage {
            envelope_from,
            recipients,
            client_ip,
            size: content.len() as u64,
            headers: fields,
            ..RuleMessage::default()
        };
        // The fields the rules read from the parse (the others come from the header split
        // above): MIME for the body and attachments, Subject, From, To and Cc.
        let Some(parsed) = parsed else {
            return m;
        };
        m.subject = parsed.subject().unwrap_or_default().to_string();
        if let Some(from) = parsed.from() {
            m.header_from = from
                .iter()
                .filter_map(|a| a.address())
                .filter_map(canonical)
                .collect();
        }
        for list in [parsed.to(), parsed.cc()].into_iter().flatten() {
            m.to_cc.extend(
                list.iter()
                    .filter_map(|a| a.address())
                    .filter_map(canonical),
            );
        }
        let mut body = String::new();
        for part in parsed.text_bodies().chain(parsed.html_bodies()) {
            if body.len() >= BODY_TEXT_MAX {
                break;
            }
            if let Some(text) = part.text_contents() {
                body.push_str(text);
                body.push('\n');
            }
        }
        truncate(&mut body, BODY_TEXT_MAX);
        m.body_text = body;
        for part in parsed.attachments().take(ATTACHMENTS_MAX) {
            let data = part.contents();
            let mut text = match &part.body {
                PartType::Text(t) | PartType::Html(t) => t.to_string(),
                _ => String::new(),
            };
            truncate(&mut text, ATTACHMENT_TEXT_MAX);
            m.attachments.push(AttachmentFacts {
                name: part.attachment_name().unwrap_or_default().to_string(),
                size: data.len() as u64,
                executable: is_executable(data),
                password_protected: is_password_protected(data),
                text,
            });
        }
        m.message_types = message_types(&m.headers, parsed);
        m
    }

    /// The value of each field called `name` (any case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The message's types by its header fields and structure: `Auto-Submitted` (RFC 3834),
/// S/MIME (RFC 8551) and multipart/signed, encrypted (RFC 1847), calendar parts (RFC 5545),
/// read receipts (RFC 8098), and Exchange's `Content-Class` values for the rest.
fn message_types(
    headers: &[(String, String)],
    parsed: &mail_parser::Message<'_>,
) -> Vec<MessageType> {
    let mut types = Vec::new();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let auto = value("auto-submitted");
    if auto.starts_with("auto-replied") {
        types.push(MessageType::Oof);
    }
    if auto.starts_with("auto-forwarded") {
        types.push(MessageType::AutoForward);
    }
    let ctype = value("content-type");
    if ctype.starts_with("multipart/encrypted") || ctype.contains("enveloped-data") {
        types.push(MessageType::Encrypted);
    }
    if ctype.starts_with("multipart/signed") || ctype.contains("signed-data") {
        types.push(MessageType::Signed);
    }
    if ctype.starts_with("multipart/report") && ctype.contains("disposition-notification") {
        types.push(MessageType::ReadReceipt);
    }
    let class = value("content-class");
    if class.contains("voice") {
        types.push(MessageType::Voicemail);
    }
    if class.contains("rpmsg") {
        types.push(MessageType::PermissionControlled);
    }
    if class.contains("approval") {
        types.push(MessageType::ApprovalRequest);
    }
    if parsed.parts.iter().any(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("text")
                && c.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("calendar"))
        })
    }) {
        types.push(MessageType::Calendaring);
    }
    types
}

#[cfg(test)]
mod unfold_tests {
    use super::unfolded;

    /// The same as removing every CRLF, then every LF, then trimming (what it replaces).
    #[test]
    fn a_value_is_unfolded_and_trimmed_as_before() {
        let reference = |v: &[u8]| {
            String::from_utf8_lossy(v)
                .replace("\r\n", "")
                .replace('\n', "")
                .trim()
                .to_string()
        };
        for v in [
            &b" plain"[..],
            b" folded\r\n\tvalue \r\n",
            b"\r\r\n x\n\ny\r",
            b" \xff\xfe bad utf-8\r\n ",
            b"\n",
            b"",
            b" a\rb\r\n\r\n c \t",
            " caf\u{e9}\r\n  \u{2003}".as_bytes(),
        ] {
            assert_eq!(unfolded(v), reference(v), "{v:?}");
        }
    }
}

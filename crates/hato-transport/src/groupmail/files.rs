//! The group's files: the attachments of its messages.

use super::mime::{attribute, content_type_string, is_calendar_type, part_bytes};
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// One attachment of a message, as the group's files list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Position among the message's attachments, from 0, in MIME order: what
    /// [`attachment_bytes`] takes. Stable because it depends only on the stored message.
    pub index: usize,
    /// The file name, decoded (RFC 2231 `filename*=`, RFC 2047 `=?...?=`), reduced to its last
    /// path component and without control characters (RFC 2183 §2.3: a receiver must not trust
    /// directory information), at most 255 characters. An attached message without a file name
    /// is named after its subject plus `.eml` (`/` and `\` replaced by `_`), as Outlook names
    /// attached items. Otherwise
    /// `attachment-N`, with N = `index + 1`.
    pub name: String,
    /// `type/subtype`, lower case, without parameters (`text/plain` when absent, RFC 2045 §5.2;
    /// `message/rfc822` for an attached message).
    pub content_type: String,
    /// Size of the decoded content (after base64/quoted-printable), in bytes.
    pub size: u64,
}

/// The attachments of a message, in MIME order.
///
/// A leaf MIME part of the message is an attachment when
/// - its Content-Disposition is `attachment` (RFC 2183 §2.2), or
/// - it has a file name (`filename` of the Content-Disposition, or the older `name` of the
///   Content-Type) — this includes inline images that have one, or
/// - it is an attached message (`message/rfc822`, `message/global`);
///
/// except
/// - an iTIP invitation (`text/calendar`, `application/ics`), which the group's calendar shows,
///   unless its disposition is explicitly `attachment`,
/// - a signature (`application/pkcs7-signature`, `application/x-pkcs7-signature`,
///   `application/pgp-signature`): part of the signing (RFC 8551, RFC 3156), not a file.
///
/// So the text and HTML bodies, and inline images without a file name (referenced from the HTML
/// by Content-ID), are not attachments.
///
/// An attached message is one attachment (its bytes are the whole `.eml`); the attachments inside
/// it are not listed separately: the file the sender shared is the message, and listing its
/// contents too would show the same file twice. A TNEF `winmail.dat` is listed as itself.
pub fn attachments(content: &[u8]) -> Vec<AttachmentInfo> {
    let Some(msg) = MessageParser::new().parse(content) else {
        return Vec::new();
    };
    attachment_parts(&msg)
        .enumerate()
        .map(|(index, part)| AttachmentInfo {
            index,
            name: attachment_name(part, index),
            content_type: content_type_string(part.content_type(), part),
            size: part_bytes(content, part).len() as u64,
        })
        .collect()
}

/// The decoded content of the attachment at `index` of [`attachments`]; `None` when there is no
/// such attachment. Text attachments keep their own charset (the bytes are the file as sent),
/// an attached message is its whole RFC 5322 text.
pub fn attachment_bytes(content: &[u8], index: usize) -> Option<Vec<u8>> {
    let msg = MessageParser::new().parse(content)?;
    let part = attachment_parts(&msg).nth(index)?;
    Some(part_bytes(content, part).into_owned())
}

fn attachment_parts<'m, 'x>(msg: &'m Message<'x>) -> impl Iterator<Item = &'m MessagePart<'x>> {
    msg.parts.iter().filter(|p| is_attachment(p))
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    if matches!(part.body, PartType::Multipart(_)) {
        return false;
    }
    let ct = content_type_string(part.content_type(), part);
    let explicit = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    if matches!(
        ct.as_str(),
        "application/pkcs7-signature"
            | "application/x-pkcs7-signature"
            | "application/pgp-signature"
    ) {
        return false;
    }
    if is_calendar_type(&ct) {
        return explicit;
    }
    explicit || raw_name(part).is_some() || is_nested_message(part, &ct)
}

fn is_nested_message(part: &MessagePart<'_>, content_type: &str) -> bool {
    matches!(part.body, PartType::Message(_))
        || content_type == "message/rfc822"
        || content_type == "message/global"
}

/// The non-empty file name parameter of a part, decoded by the MIME parser (RFC 2231 and
/// RFC 2047), `filename` of the disposition first.
fn raw_name<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    part.content_disposition()
        .and_then(|d| attribute(d, "filename"))
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            part.content_type()
                .and_then(|c| attribute(c, "name"))
                .filter(|n| !n.trim().is_empty())
        })
}

fn attachment_name(part: &MessagePart<'_>, index: usize) -> String {
    if let Some(name) = raw_name(part)
        .map(sanitize_file_name)
        .filter(|n| !n.is_empty())
    {
        return name;
    }
    if let Some(subject) = part
        .message()
        .and_then(|m| m.subject())
        .map(|s| sanitize_file_name(&s.replace(['/', '\\'], "_")))
        .filter(|s| !s.is_empty())
    {
        let stem: String = subject.chars().take(251).collect();
        return format!("{stem}.eml");
    }
    format!("attachment-{}", index + 1)
}

/// The last path component, without control characters, trimmed, at most 255 characters; empty
/// for `.` and `..`.
fn sanitize_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned == "." || cleaned == ".." {
        return String::new();
    }
    cleaned.chars().take(255).collect()
}

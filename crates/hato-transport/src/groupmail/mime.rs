//! MIME part helpers shared by the calendar and the files.

use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, Encoding, MessagePart, PartType};
use std::borrow::Cow;

pub(super) fn is_calendar_type(content_type: &str) -> bool {
    content_type == "text/calendar" || content_type == "application/ics"
}

/// `type/subtype` of a part, lower case.
pub(super) fn content_type_string(ct: Option<&ContentType<'_>>, part: &MessagePart<'_>) -> String {
    match ct {
        Some(ct) => {
            let main = ct.ctype().trim().to_ascii_lowercase();
            match ct.subtype().map(|s| s.trim().to_ascii_lowercase()) {
                Some(sub) if !sub.is_empty() => format!("{main}/{sub}"),
                _ if main == "text" => "text/plain".to_string(),
                _ => "application/octet-stream".to_string(),
            }
        }
        None if matches!(part.body, PartType::Message(_)) => "message/rfc822".to_string(),
        None => "text/plain".to_string(),
    }
}

/// A content-type or disposition parameter, by case-insensitive name.
pub(super) fn attribute<'a>(ct: &'a ContentType<'_>, name: &str) -> Option<&'a str> {
    ct.attributes()?
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_ref())
}
/// The decoded content of a leaf part, as bytes.
///
/// The MIME parser converts text parts to UTF-8; a file must keep its bytes, so text parts (and
/// unencoded attached messages, which the parser reads in place) are decoded again from the raw
/// message with the part's transfer encoding only.
pub(super) fn part_bytes<'a>(content: &'a [u8], part: &'a MessagePart<'_>) -> Cow<'a, [u8]> {
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => Cow::Borrowed(b.as_ref()),
        PartType::Multipart(_) => Cow::Borrowed(&[]),
        PartType::Message(m) if part.encoding != Encoding::None => Cow::Borrowed(m.raw_message()),
        _ => match redecode(content, part) {
            Some(bytes) => bytes,
            None => Cow::Borrowed(part.contents()),
        },
    }
}

fn redecode<'a>(content: &'a [u8], part: &MessagePart<'_>) -> Option<Cow<'a, [u8]>> {
    let raw = content.get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::None => Some(Cow::Borrowed(raw)),
        Encoding::Base64 => {
            let (end, bytes) = MessageStream::new(raw).decode_base64_mime(b"");
            (end != usize::MAX).then_some(bytes)
        }
        Encoding::QuotedPrintable => {
            let (end, bytes) = MessageStream::new(raw).decode_quoted_printable_mime(b"");
            (end != usize::MAX).then_some(bytes)
        }
    }
}

//! What an admin (or a user, for their own spam) sees of a quarantined message before releasing
//! it: its header fields and its plain text, bounded, as text. Nothing in it is rendered or run:
//! HTML parts are not shown (not even converted), attachments only by name, and control
//! characters are removed so no text can move a terminal's cursor or pass for another line of
//! the listing.

use hato_core::header::{Headers, MAX_HEADER_BYTES};
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// At most this much plain text is shown (characters after decoding).
pub const PREVIEW_TEXT_MAX: usize = 64 * 1024;
/// At most this many attachment names are listed.
pub const PREVIEW_ATTACHMENTS_MAX: usize = 100;

/// A message as the preview shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preview {
    /// Each header field as (name, raw value unfolded), at most [`MAX_HEADER_BYTES`] of them.
    pub headers: Vec<(String, String)>,
    /// The text/plain parts, decoded, at most [`PREVIEW_TEXT_MAX`] characters.
    pub text: String,
    /// The text was cut at the bound.
    pub truncated: bool,
    /// The text is the HTML body's converted to text (tags, `<style>`, `<script>` and
    /// comments dropped, entities decoded): the message has no plain text part to show.
    pub text_from_html: bool,
    /// The message has an HTML body, which the preview does not show as HTML.
    pub has_html: bool,
    /// The attachments' names (`(unnamed)` for one without), at most
    /// [`PREVIEW_ATTACHMENTS_MAX`].
    pub attachments: Vec<String>,
}

/// Control characters out (C0 but tab and line feed, DEL, C1): they are not text, and in a
/// terminal they are commands.
fn printable(s: &str, keep_newlines: bool) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t' || (keep_newlines && *c == '\n'))
        .collect()
}

/// The preview of `content` (a whole message as stored). Linear in its size: one parse by
/// mail-parser, the text copied once up to the bound.
pub fn preview(content: &[u8]) -> Preview {
    let headers = Headers::parse(content, MAX_HEADER_BYTES);
    let mut out = Preview {
        headers: headers
            .fields()
            .map(|f| {
                let value = String::from_utf8_lossy(f.value).replace("\r\n", "");
                (
                    printable(&String::from_utf8_lossy(f.name), false),
                    printable(value.trim(), false),
                )
            })
            .collect(),
        ..Preview::default()
    };
    let Some(message) = MessageParser::default().parse(content) else {
        return out;
    };
    out.has_html = message.html_body_count() > 0
        && message
            .html_bodies()
            .any(|p| matches!(p.body, PartType::Html(_)));
    // Characters shown so far: counted, not recounted per part, so many parts cost linear time.
    let mut shown = 0usize;
    for part in message.text_bodies() {
        // Only real text/plain parts: mail-parser lists an HTML part here when there is no
        // plain alternative, and it is not shown.
        let PartType::Text(text) = &part.body else {
            continue;
        };
        if shown > 0 {
            out.text.push('\n');
            shown += 1;
        }
        let room = PREVIEW_TEXT_MAX.saturating_sub(shown);
        let clean = printable(&text.replace("\r\n", "\n"), true);
        let len = clean.chars().count();
        if len > room {
            out.text.extend(clean.chars().take(room));
            out.truncated = true;
            break;
        }
        out.text.push_str(&clean);
        shown += len;
    }
    // No plain text part: the HTML body's text, as Exchange's quarantine preview shows an HTML
    // message as text. mail-parser's conversion is one pass over the bytes (linear), and the
    // result is bounded as the plain text is; nothing it names is fetched.
    if shown == 0 {
        for part in message.html_bodies() {
            let PartType::Html(html) = &part.body else {
                continue;
            };
            let text = mail_parser::decoders::html::html_to_text(html);
            let clean = printable(text.trim(), true);
            if clean.is_empty() {
                continue;
            }
            out.text_from_html = true;
            let len = clean.chars().count();
            if len > PREVIEW_TEXT_MAX {
                out.text.extend(clean.chars().take(PREVIEW_TEXT_MAX));
                out.truncated = true;
            } else {
                out.text.push_str(&clean);
            }
            break;
        }
    }
    out.attachments = message
        .attachments()
        .take(PREVIEW_ATTACHMENTS_MAX)
        .map(|a| {
            a.attachment_name()
                .map(|n| printable(n, false))
                .unwrap_or_else(|| "(unnamed)".into())
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_only_message_shows_its_text_never_its_markup() {
        let msg = b"From: a@fabrikam.test\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n\
<html><head><style>p{color:red}</style></head><body><p>Dear &amp; <b>valued</b></p>\
<script>alert(1)</script><img src=\"http://tracker.test/x.png\">bye</body></html>\r\n";
        let p = preview(msg);
        assert!(p.has_html && p.text_from_html, "{p:?}");
        assert!(p.text.contains("Dear & valued"), "{:?}", p.text);
        assert!(p.text.contains("bye"), "{:?}", p.text);
        for markup in ["<", "alert", "color", "tracker"] {
            assert!(!p.text.contains(markup), "{markup} in {:?}", p.text);
        }
    }

    #[test]
    fn shows_headers_and_plain_text_but_no_html_or_controls() {
        let msg = b"From: a@fabrikam.test\r\nSubject: hi\x1b[2J\r\n there\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n\
--c\r\nContent-Type: text/plain\r\n\r\nplain words\x07\r\n\
--c\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script><b>html words</b>\r\n--c--\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"eicar.com\"\r\n\r\nX5O\r\n--b--\r\n";
        let p = preview(msg);
        assert_eq!(p.headers[0], ("From".into(), "a@fabrikam.test".into()));
        assert_eq!(p.headers[1], ("Subject".into(), "hi[2J there".into()));
        assert!(p.text.contains("plain words"), "{:?}", p.text);
        assert!(!p.text.contains('\x07'));
        assert!(!p.text.contains("html words") && !p.text.contains("script"));
        assert!(p.has_html && !p.text_from_html);
        assert_eq!(p.attachments, ["eicar.com"]);
        assert!(!p.truncated);
    }

    #[test]
    fn an_html_only_message_shows_its_text_without_markup_or_links() {
        let p = preview(
            b"Subject: x\r\nContent-Type: text/html\r\n\r\n<p>hello</p><img src=http://x/>\r\n",
        );
        assert_eq!(p.text, "hello");
        assert!(p.has_html && p.text_from_html);
    }

    #[test]
    fn attachments_and_headers_are_bounded() {
        let mut msg = String::new();
        for i in 0..20_000 {
            msg.push_str(&format!("X-Filler-{i}: {}\r\n", "v".repeat(40)));
        }
        msg.push_str("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for i in 0..1_000 {
            msg.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\nx\r\n"
            ));
        }
        msg.push_str("--b--\r\n");
        let p = preview(msg.as_bytes());
        assert_eq!(p.attachments.len(), PREVIEW_ATTACHMENTS_MAX);
        // The header block is read up to MAX_HEADER_BYTES: far fewer than 20,000 fields.
        let bytes: usize = p.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        assert!(bytes <= MAX_HEADER_BYTES, "{bytes}");
        assert!(p.headers.len() < 20_000);
    }

    #[test]
    fn the_text_is_bounded() {
        let body = "a".repeat(PREVIEW_TEXT_MAX * 3);
        let p = preview(format!("Subject: big\r\n\r\n{body}").as_bytes());
        assert_eq!(p.text.chars().count(), PREVIEW_TEXT_MAX);
        assert!(p.truncated);
    }
}

//! The digest's bytes: what Exchange's quarantine notification says (each held message's
//! sender, subject, when it arrived, when it expires, why it was held, and a release link), in
//! the recipient policy's language, as a plain-text and an HTML part.
//!
//! Senders and subjects are the outside sender's text: they reach the header only through
//! [`crate::headers`] (the digest's own Subject never contains them), and the body only cut to
//! a bound, without control or bidirectional-override characters, and HTML-escaped in the HTML
//! part, so no sender can add a header field, a line of hato's text, markup or a link.

use crate::headers::{HeaderBlock, Mailbox, without_controls};
use hato_core::Timestamp;
use hato_core::message::QuarantineKind;

/// At most this many characters of a sender's subject are shown.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// At most this many characters of a sender's address are shown (RFC 5321's 254 and a margin
/// for the `<>` of the null sender).
pub const MAX_SENDER_CHARS: usize = 256;

/// The languages a digest is written in. Exchange's `EndUserSpamNotificationLanguage` takes
/// many more; any other is written in English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestLanguage {
    English,
    Japanese,
}

impl DigestLanguage {
    /// The language of a policy's `EndUserSpamNotificationLanguage` value (`Default`, `en`,
    /// `English`, `ja`, `Japanese`, case-insensitive; a region such as `ja-JP` counts as its
    /// language). `Default` is the organization's language (Exchange: `Default` = the org
    /// language), `tenant_language` here; English without one. Unknown values: English.
    pub fn resolve(policy_value: &str, tenant_language: Option<&str>) -> Self {
        let value = policy_value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("default") {
            return match tenant_language {
                Some(t) if !t.trim().eq_ignore_ascii_case("default") => Self::resolve(t, None),
                _ => DigestLanguage::English,
            };
        }
        let primary = value.split(['-', '_']).next().unwrap_or(value);
        if primary.eq_ignore_ascii_case("ja") || primary.eq_ignore_ascii_case("japanese") {
            DigestLanguage::Japanese
        } else {
            DigestLanguage::English
        }
    }

    /// The language's tag (RFC 5646), for `Content-Language` and `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            DigestLanguage::English => "en",
            DigestLanguage::Japanese => "ja",
        }
    }
}

/// One held message as a digest lists it.
#[derive(Clone, Debug)]
pub struct DigestEntry {
    /// The envelope sender (empty for the null sender).
    pub sender: String,
    pub subject: String,
    pub received: Timestamp,
    pub expires: Timestamp,
    pub kind: QuarantineKind,
    /// What the link offers.
    pub action: DigestAction,
    /// The release page's address with the item's token.
    pub link: String,
}

/// What an entry's link lets its recipient do, from the item's quarantine policy and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAction {
    /// Release it to the Inbox (the policy permits release).
    Release,
    /// Ask an admin to release it (malware and high confidence phish, whose release Exchange
    /// turns into request release, or a policy granting only that): never a release.
    RequestRelease,
    /// Neither: no link, only an admin releases it.
    AskAdmin,
}

/// A whole digest.
pub struct Digest<'a> {
    pub hostname: &'a str,
    /// The recipient's canonical address.
    pub to: &'a str,
    pub language: DigestLanguage,
    /// The entries listed, newest first.
    pub entries: &'a [DigestEntry],
    /// How many new items there are in all (`entries` lists at most the bound).
    pub total: usize,
    pub now: Timestamp,
    /// For the Message-ID.
    pub trace_id: &'a str,
}

/// What a language says.
struct Texts {
    from_name: &'static str,
    subject: fn(usize) -> String,
    intro: fn(&str) -> String,
    sender: &'static str,
    subject_label: &'static str,
    received: &'static str,
    expires: &'static str,
    reason: &'static str,
    release: &'static str,
    request_release: &'static str,
    ask_admin: &'static str,
    /// Said after the introduction when an entry's link requests rather than releases.
    request_note: &'static str,
    more: fn(usize) -> String,
    footer: fn(&str) -> String,
    kind: fn(QuarantineKind) -> &'static str,
    date: fn(Timestamp) -> String,
}

const ENGLISH: Texts = Texts {
    from_name: "Quarantine",
    subject: |n| {
        if n == 1 {
            "You have 1 new message in quarantine".into()
        } else {
            format!("You have {n} new messages in quarantine")
        }
    },
    intro: |to| {
        format!(
            "These messages to {to} were held in quarantine as spam, bulk mail or phishing, so \
             they were not delivered to your Inbox. To release one to your Inbox, open its \
             release link and press Release. Each link works only for that message, and only \
             until the message expires."
        )
    },
    sender: "Sender",
    subject_label: "Subject",
    received: "Received",
    expires: "Expires",
    reason: "Reason",
    release: "Release",
    request_release: "Request release",
    ask_admin: "Only an administrator can release this message.",
    request_note: "Messages held as malware or high confidence phishing are released only by an \
         administrator: their link asks for the release, and an administrator decides.",
    more: |m| {
        if m == 1 {
            "...and 1 more message, not listed here.".into()
        } else {
            format!("...and {m} more messages, not listed here.")
        }
    },
    footer: |host| {
        format!(
            "Messages are deleted from quarantine when they expire. This notification was sent \
             by {host}; do not reply to it."
        )
    },
    kind: |k| match k {
        QuarantineKind::Spam => "Spam",
        QuarantineKind::HighConfidenceSpam => "High confidence spam",
        QuarantineKind::Phish => "Phishing",
        QuarantineKind::HighConfidencePhish => "High confidence phishing",
        QuarantineKind::Bulk => "Bulk",
        QuarantineKind::Malware => "Malware",
        QuarantineKind::TransportRule => "Mail flow rule",
    },
    date: |t| t.to_rfc5322(),
};

const JAPANESE: Texts = Texts {
    from_name: "検疫",
    subject: |n| format!("検疫に新しいメッセージが {n} 件あります"),
    intro: |to| {
        format!(
            "{to} 宛ての次のメッセージは、迷惑メール、バルク メール、またはフィッシングとして\
             検疫に保留されたため、受信トレイに配信されていません。受信トレイに配信するには、\
             メッセージの解放リンクを開いて [解放] を押してください。各リンクはそのメッセージに\
             のみ有効で、メッセージの有効期限まで使用できます。"
        )
    },
    sender: "送信者",
    subject_label: "件名",
    received: "受信日時",
    expires: "有効期限",
    reason: "理由",
    release: "解放",
    request_release: "解放を要求",
    ask_admin: "このメッセージは管理者のみが解放できます。",
    request_note: "マルウェアまたは高確度のフィッシングとして保留されたメッセージは管理者のみが解放\
         できます。そのリンクからは解放を要求でき、管理者が判断します。",
    more: |m| format!("ほかに {m} 件のメッセージがあります (ここには表示されていません)。"),
    footer: |host| {
        format!(
            "検疫のメッセージは有効期限を過ぎると削除されます。この通知は {host} から送信されました。\
             この通知には返信しないでください。"
        )
    },
    kind: |k| match k {
        QuarantineKind::Spam => "迷惑メール",
        QuarantineKind::HighConfidenceSpam => "高確度の迷惑メール",
        QuarantineKind::Phish => "フィッシング",
        QuarantineKind::HighConfidencePhish => "高確度のフィッシング",
        QuarantineKind::Bulk => "バルク メール",
        QuarantineKind::Malware => "マルウェア",
        QuarantineKind::TransportRule => "メール フロー ルール",
    },
    date: |t| t.to_datetime().format("%Y/%m/%d %H:%M UTC").to_string(),
};

fn texts(language: DigestLanguage) -> &'static Texts {
    match language {
        DigestLanguage::English => &ENGLISH,
        DigestLanguage::Japanese => &JAPANESE,
    }
}

/// A kind of quarantine as a digest in `language` names it (the release page says the same).
pub fn kind_name(language: DigestLanguage, kind: QuarantineKind) -> &'static str {
    (texts(language).kind)(kind)
}

/// A time as a digest in `language` writes it.
pub fn date_text(language: DigestLanguage, at: Timestamp) -> String {
    (texts(language).date)(at)
}

/// Unicode's explicit bidirectional formatting characters (UAX #9 §2): a subject could use them
/// to show its text reversed or moved ("Trojan Source"), so they are taken out.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An outside sender's text as a digest shows it: at most `max` characters (then "…"), no
/// control or bidirectional formatting characters. Reads at most `max + 1` characters of it,
/// whatever its length.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for c in without_controls(text).chars() {
        if is_bidi_control(c) {
            continue;
        }
        if kept == max {
            out.push('…');
            return out;
        }
        out.push(c);
        kept += 1;
    }
    out
}

/// `text` safe inside HTML text and quoted attribute values: the five characters that could
/// end either or start markup become character references (HTML §13.1.4). Linear.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn sender_of(e: &DigestEntry) -> String {
    if e.sender.is_empty() {
        "<>".into()
    } else {
        clean(&e.sender, MAX_SENDER_CHARS)
    }
}

/// The note on requests, when an entry's link requests rather than releases.
fn requests(d: &Digest<'_>) -> bool {
    d.entries.iter().any(|e| e.action != DigestAction::Release)
}

/// An entry's link line in the plain text.
fn action_text(e: &DigestEntry, t: &Texts) -> String {
    match e.action {
        DigestAction::Release => format!("{}: {}", t.release, e.link),
        DigestAction::RequestRelease => format!("{}: {}", t.request_release, e.link),
        DigestAction::AskAdmin => t.ask_admin.to_string(),
    }
}

/// An entry's link paragraph in the HTML.
fn action_html(e: &DigestEntry, t: &Texts) -> String {
    match e.action {
        DigestAction::Release => format!("<a href=\"{}\">{}</a>", escape_html(&e.link), t.release),
        DigestAction::RequestRelease => format!(
            "<a href=\"{}\">{}</a>",
            escape_html(&e.link),
            t.request_release
        ),
        DigestAction::AskAdmin => escape_html(t.ask_admin),
    }
}

fn plain_text(d: &Digest<'_>, t: &Texts, to: &str) -> String {
    let mut out = format!("{}\r\n\r\n", (t.intro)(to));
    if requests(d) {
        out.push_str(&format!("{}\r\n\r\n", t.request_note));
    }
    for e in d.entries {
        out.push_str(&format!(
            "{}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n{}\r\n\r\n",
            t.sender,
            sender_of(e),
            t.subject_label,
            clean(&e.subject, MAX_SUBJECT_CHARS),
            t.received,
            (t.date)(e.received),
            t.expires,
            (t.date)(e.expires),
            t.reason,
            (t.kind)(e.kind),
            action_text(e, t),
        ));
    }
    let more = d.total.saturating_sub(d.entries.len());
    if more > 0 {
        out.push_str(&format!("{}\r\n\r\n", (t.more)(more)));
    }
    out.push_str(&format!("{}\r\n", (t.footer)(d.hostname)));
    out
}

fn html(d: &Digest<'_>, t: &Texts, to: &str) -> String {
    let title = escape_html(&(t.subject)(d.total));
    let mut out = format!(
        "<!DOCTYPE html>\r\n<html lang=\"{}\">\r\n<head>\r\n<meta charset=\"utf-8\">\r\n\
         <title>{title}</title>\r\n</head>\r\n<body>\r\n<h1>{title}</h1>\r\n<p>{}</p>\r\n",
        d.language.tag(),
        escape_html(&(t.intro)(to)),
    );
    if requests(d) {
        out.push_str(&format!("<p>{}</p>\r\n", escape_html(t.request_note)));
    }
    for e in d.entries {
        out.push_str(&format!(
            "<dl>\r\n<dt>{}</dt><dd>{}</dd>\r\n<dt>{}</dt><dd>{}</dd>\r\n\
             <dt>{}</dt><dd>{}</dd>\r\n<dt>{}</dt><dd>{}</dd>\r\n<dt>{}</dt><dd>{}</dd>\r\n\
             </dl>\r\n<p>{}</p>\r\n<hr>\r\n",
            t.sender,
            escape_html(&sender_of(e)),
            t.subject_label,
            escape_html(&clean(&e.subject, MAX_SUBJECT_CHARS)),
            t.received,
            escape_html(&(t.date)(e.received)),
            t.expires,
            escape_html(&(t.date)(e.expires)),
            t.reason,
            (t.kind)(e.kind),
            action_html(e, t),
        ));
    }
    let more = d.total.saturating_sub(d.entries.len());
    if more > 0 {
        out.push_str(&format!("<p>{}</p>\r\n", escape_html(&(t.more)(more))));
    }
    out.push_str(&format!(
        "<p><small>{}</small></p>\r\n</body>\r\n</html>\r\n",
        escape_html(&(t.footer)(d.hostname))
    ));
    out
}

/// The digest's bytes: header fields through [`HeaderBlock`] (from `postmaster@<hostname>`,
/// `Auto-Submitted: auto-generated`, RFC 3834 §5), then a `multipart/alternative` body written
/// by mail-builder (text first, HTML last: RFC 2046 §5.1.4 puts the preferred form last).
pub fn digest_content(d: &Digest<'_>) -> std::io::Result<Vec<u8>> {
    let t = texts(d.language);
    let to = clean(d.to, MAX_SENDER_CHARS);
    let text = plain_text(d, t, &to);
    let html = html(d, t, &to);
    let body = mail_builder::mime::MimePart::new(
        "multipart/alternative",
        mail_builder::mime::BodyPart::Multipart(vec![
            mail_builder::mime::MimePart::new("text/plain", text),
            mail_builder::mime::MimePart::new("text/html", html),
        ]),
    );
    let postmaster = format!("postmaster@{}", d.hostname);
    let mut h = HeaderBlock::new();
    h.mailboxes("From", &[Mailbox::new(Some(t.from_name), &postmaster)])
        .mailboxes("To", &[Mailbox::new(None, d.to)])
        .text("Subject", &(t.subject)(d.total));
    h.msg_id("Message-ID", &format!("{}@{}", d.trace_id, d.hostname));
    h.date("Date", d.now)
        .fixed("Auto-Submitted", "auto-generated")
        .fixed("MIME-Version", "1.0")
        .structured("Content-Language", d.language.tag());
    let mut out = h.into_bytes();
    body.write_part(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_human(s).unwrap()
    }

    fn entry(subject: &str, kind: QuarantineKind) -> DigestEntry {
        DigestEntry {
            sender: "mallory@fabrikam.test".into(),
            subject: subject.into(),
            received: at("2026-11-28T12:00:00Z"),
            expires: at("2026-12-28T12:00:00Z"),
            kind,
            action: DigestAction::Release,
            link: "https://mx.hato.test/quarantine/release?t=0123abcd".into(),
        }
    }

    fn digest(language: DigestLanguage, entries: &[DigestEntry], total: usize) -> Vec<u8> {
        digest_content(&Digest {
            hostname: "mx.hato.test",
            to: "alice@contoso.test",
            language,
            entries,
            total,
            now: at("2026-11-30T08:00:00Z"),
            trace_id: "0190f0f0-0000-8000-8000-000000000000",
        })
        .unwrap()
    }

    #[test]
    fn the_language_is_the_policys_or_the_organizations_or_english() {
        use DigestLanguage::*;
        for (policy, tenant, expected) in [
            ("default", None, English),
            ("Default", Some("ja"), Japanese),
            ("", Some("Japanese"), Japanese),
            ("default", Some("default"), English),
            ("ja", None, Japanese),
            ("ja-JP", Some("en"), Japanese),
            ("JAPANESE", None, Japanese),
            ("en", Some("ja"), English),
            // Not written yet: English.
            ("fr", Some("ja"), English),
        ] {
            assert_eq!(
                DigestLanguage::resolve(policy, tenant),
                expected,
                "{policy} {tenant:?}"
            );
        }
    }

    #[test]
    fn an_english_digest_has_a_text_and_an_html_part_listing_each_item() {
        let entries = [
            entry("cheap watches", QuarantineKind::Spam),
            entry("newsletter", QuarantineKind::Bulk),
        ];
        let bytes = digest(DigestLanguage::English, &entries, 2);
        let msg = MessageParser::new().parse(&bytes).expect("parses");
        assert_eq!(msg.subject(), Some("You have 2 new messages in quarantine"));
        assert_eq!(
            msg.from().and_then(|f| f.first()).and_then(|a| a.address()),
            Some("postmaster@mx.hato.test")
        );
        assert_eq!(
            msg.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert_eq!(msg.content_type().map(|c| c.ctype()), Some("multipart"));
        assert_eq!(
            msg.content_type().and_then(|c| c.subtype()),
            Some("alternative")
        );
        let text = msg.body_text(0).unwrap();
        for line in [
            "Sender: mallory@fabrikam.test",
            "Subject: cheap watches",
            "Received: Sat, 28 Nov 2026 12:00:00 +0000",
            "Expires: Mon, 28 Dec 2026 12:00:00 +0000",
            "Reason: Spam",
            "Reason: Bulk",
            "Release: https://mx.hato.test/quarantine/release?t=0123abcd",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("more message"), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(
            html.contains(
                "<a href=\"https://mx.hato.test/quarantine/release?t=0123abcd\">Release</a>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_japanese_digest_is_written_in_japanese() {
        let entries = [entry("安い時計", QuarantineKind::Phish)];
        let bytes = digest(DigestLanguage::Japanese, &entries, 3);
        let msg = MessageParser::new().parse(&bytes).expect("parses");
        assert_eq!(msg.subject(), Some("検疫に新しいメッセージが 3 件あります"));
        assert_eq!(
            msg.from().and_then(|f| f.first()).and_then(|a| a.name()),
            Some("検疫")
        );
        let text = msg.body_text(0).unwrap();
        for line in [
            "送信者: mallory@fabrikam.test",
            "件名: 安い時計",
            "受信日時: 2026/11/28 12:00 UTC",
            "有効期限: 2026/12/28 12:00 UTC",
            "理由: フィッシング",
            "解放: https://mx.hato.test/quarantine/release?t=0123abcd",
            "ほかに 2 件のメッセージがあります",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(msg.body_html(0).unwrap().contains("<html lang=\"ja\">"));
    }

    #[test]
    fn a_senders_subject_adds_no_header_field_no_line_and_no_markup() {
        let hostile = "x\r\nBcc: everyone@contoso.test\r\n\r\n<a href=\"https://evil.test\">\
                       Release</a><script>alert(1)</script>\u{202e}txt.exe";
        let entries = [DigestEntry {
            sender: "evil\r\nReply-To: x@evil.test".into(),
            ..entry(hostile, QuarantineKind::Spam)
        }];
        let bytes = digest(DigestLanguage::English, &entries, 1);
        let msg = MessageParser::new().parse(&bytes).expect("parses");
        let names: Vec<String> = msg.headers().iter().map(|h| h.name().to_string()).collect();
        assert!(
            !names.iter().any(|n| n == "Bcc" || n == "Reply-To"),
            "{names:?}"
        );
        let text = msg.body_text(0).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("Reply-To:")), "{text}");
        assert!(!text.contains('\u{202e}'), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("https://evil.test\">"), "{html}");
        assert!(
            html.contains("&lt;a href=&quot;https://evil.test&quot;&gt;Release&lt;/a&gt;"),
            "{html}"
        );
        // One release link, hato's.
        assert_eq!(html.matches("<a href=").count(), 1, "{html}");
    }

    #[test]
    fn what_a_sender_wrote_is_cut_to_a_bound_after_reading_only_that_much() {
        let long = "é".repeat(1_000_000);
        let cut = clean(&long, MAX_SUBJECT_CHARS);
        assert_eq!(cut.chars().count(), MAX_SUBJECT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(clean("short", MAX_SUBJECT_CHARS), "short");
        assert_eq!(clean("a\u{7}b\u{2066}c", 10), "abc");
        let entries = [entry(&long, QuarantineKind::Spam)];
        let bytes = digest(DigestLanguage::English, &entries, 1);
        assert!(bytes.len() < 8_000, "{}", bytes.len());
    }

    #[test]
    fn malware_links_to_a_release_request_and_a_rule_item_to_nothing() {
        let entries = [
            DigestEntry {
                action: DigestAction::RequestRelease,
                link: "https://mx.hato.test/quarantine/release?t=feed".into(),
                ..entry("invoice", QuarantineKind::Malware)
            },
            DigestEntry {
                action: DigestAction::AskAdmin,
                link: "https://mx.hato.test/quarantine/release?t=beef".into(),
                ..entry("ruled", QuarantineKind::TransportRule)
            },
        ];
        let bytes = digest(DigestLanguage::English, &entries, 2);
        let msg = MessageParser::new().parse(&bytes).expect("parses");
        let text = msg.body_text(0).unwrap();
        assert!(
            text.contains("Request release: https://mx.hato.test/quarantine/release?t=feed"),
            "{text}"
        );
        assert!(!text.contains("Release: https"), "{text}");
        assert!(!text.contains("t=beef"), "{text}");
        assert!(text.contains("Only an administrator can release this message."));
        assert!(text.contains("their link asks for the release"), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(
            html.contains(
                "<a href=\"https://mx.hato.test/quarantine/release?t=feed\">Request release</a>"
            ),
            "{html}"
        );
        assert!(!html.contains("t=beef"), "{html}");
        let ja = digest(DigestLanguage::Japanese, &entries, 2);
        let text = MessageParser::new()
            .parse(&ja)
            .expect("parses")
            .body_text(0)
            .unwrap()
            .to_string();
        assert!(text.contains("解放を要求: https://"), "{text}");
    }
}

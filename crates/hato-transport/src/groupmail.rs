//! Microsoft 365 group mailboxes: the pure logic behind a group's conversations, calendar and files.
//!
//! A group mailbox stores each message once and shows it three ways (Exchange Online behaviour
//! §1.9, seed requirement A6):
//!
//! - **Conversations**: [`thread_headers`] reads what threading needs, [`choose_conversation`]
//!   picks the conversation of a new message (RFC 5322 §3.6.4 references first, then the
//!   normalized subject, see [`normalize_subject`]).
//! - **Calendar**: [`calendar_items`] finds the iTIP (RFC 5546) meeting requests and cancellations
//!   in a message, [`apply_to_calendar`] folds them into the group's list of events.
//! - **Files**: [`attachments`] lists the attachments of a message, [`attachment_bytes`] returns
//!   the decoded content of one of them.
//!
//! Everything here is pure (no I/O, no clock) and total: the input is untrusted mail, so malformed
//! input gives an empty or partial answer, never a panic.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    ContentType, Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

// ---------------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------------

/// What threading needs from a message's headers (RFC 5322 §3.6.4).
///
/// Message identifiers are given without their angle brackets and without the folding whitespace
/// or comments around them, in the same form for all three fields, so that the `message_id` a
/// store records for one message compares equal to the `in_reply_to`/`references` entries of its
/// replies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadHeaders {
    /// The message's own `Message-ID`, without `<>`; `None` when it has none.
    pub message_id: Option<String>,
    /// The `In-Reply-To` identifiers (normally one: the parent), without `<>`, in header order.
    pub in_reply_to: Vec<String>,
    /// The `References` identifiers, without `<>`, oldest first as RFC 5322 §3.6.4 orders them.
    pub references: Vec<String>,
    /// The decoded (RFC 2047) `Subject`, as the sender wrote it.
    pub subject: String,
    /// [`normalize_subject`] of `subject`: the key for the subject fallback.
    pub normalized_subject: String,
}

/// Reads the threading headers of a message (only its header block is looked at).
///
/// Identifiers are extracted leniently: comments (RFC 5322 §3.2.2) are skipped, every `<...>` is an
/// identifier, and a header with no angle brackets at all (some old clients) contributes its
/// whitespace-separated words containing `@`. Repeated identifiers are kept once, in first
/// position. Several `References` or `In-Reply-To` fields (not allowed, but seen) are joined.
pub fn thread_headers(content: &[u8]) -> ThreadHeaders {
    let Some(msg) = MessageParser::new().parse_headers(content) else {
        return ThreadHeaders::default();
    };
    let raw_values = |name: &str| -> Vec<String> {
        msg.headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .filter_map(|h| content.get(h.offset_start() as usize..h.offset_end() as usize))
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
            .collect()
    };
    let ids_of = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for value in raw_values(name) {
            for id in message_ids(&value) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    };
    let subject = msg.subject().unwrap_or("").trim().to_string();
    ThreadHeaders {
        message_id: ids_of("Message-ID").into_iter().next(),
        in_reply_to: ids_of("In-Reply-To"),
        references: ids_of("References"),
        normalized_subject: normalize_subject(&subject),
        subject,
    }
}

/// The message identifiers in a raw `Message-ID`/`In-Reply-To`/`References` value, without `<>`.
fn message_ids(raw: &str) -> Vec<String> {
    let text = strip_comments(raw);
    let mut ids = Vec::new();
    let mut rest = text.as_str();
    let mut bracketed = false;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            break;
        };
        bracketed = true;
        // Folding can put whitespace inside a long identifier; it is not part of it.
        let id: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !id.is_empty() {
            ids.push(id);
        }
        rest = &after[end + 1..];
    }
    if !bracketed {
        ids.extend(
            text.split(|c: char| c.is_whitespace() || c == ',')
                .map(|w| w.trim_matches(|c: char| c == '"' || c == '<' || c == '>'))
                .filter(|w| w.contains('@'))
                .map(str::to_string),
        );
    }
    ids
}

/// Removes RFC 5322 §3.2.2 comments (nested, with quoted-pairs), leaving quoted strings and
/// angle-bracketed identifiers alone.
fn strip_comments(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if depth > 0 {
            match c {
                '\\' => {
                    chars.next();
                }
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '\\' if in_quotes => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
                continue;
            }
            '"' if !in_angle => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            '(' if !in_quotes && !in_angle => {
                depth = 1;
                out.push(' ');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Reply and forward prefixes, lower case, as Outlook and other clients write them in their
/// languages: English, German (AW, WG), Dutch (Antw, Doorst), Scandinavian and Finnish (SV, VS,
/// VB, VL, FS), French (RE, TR, Réf), Spanish and Portuguese (RV, RES, ENC), Italian (R, I, Rif),
/// Polish (Odp, PD), Hungarian (Vá, Tov), Turkish (YNT, İLT), Greek, Hebrew, Russian, Chinese,
/// Japanese, Korean. A prefix counts only when a colon follows it (see [`strip_reply_prefix`]).
const REPLY_PREFIXES: &[&str] = &[
    "re",
    "fw",
    "fwd",
    "aw",
    "wg",
    "antw",
    "doorst",
    "sv",
    "vs",
    "vb",
    "vl",
    "fs",
    "tr",
    "réf",
    "ref",
    "rv",
    "res",
    "enc",
    "r",
    "i",
    "rif",
    "odp",
    "pd",
    "vá",
    "tov",
    "ynt",
    "ilt",
    "i\u{307}lt",
    "απ",
    "σχετ",
    "πρθ",
    "השב",
    "הועבר",
    "отв",
    "пересл",
    "回复",
    "答复",
    "回覆",
    "答覆",
    "转发",
    "轉寄",
    "轉送",
    "转送",
    "返信",
    "転送",
    "회신",
    "답장",
    "전달",
];

/// The subject without reply/forward prefixes, leading list tags and the trailing `(fwd)`, with
/// whitespace collapsed and case folded: the key that relates a message to a conversation when
/// it carries no usable `References`/`In-Reply-To`.
///
/// This is the "base subject" of RFC 5256 §2.1 (IMAP THREAD=REFERENCES), extended the way
/// Exchange's conversation topic is: localized prefixes (`AW:`, `WG:`, `SV:`, `VS:`, `Antw:`,
/// `Réf :`, `回复：`, `転送:` ...; the full list is in this module's source), a counter (`Re[2]:`, `Re(2):`,
/// `Re^2:`), a space before the colon (French typography) and the full-width colon (`：`), all
/// repeated and nested with list tags (`Re: [list] Re: x`). A leading `[tag]` or `【tag】` is removed
/// only when something follows it, so a subject that is only a tag keeps it; `[Fwd: x]` becomes
/// `x`. Case folding is Unicode lower-casing (`str::to_lowercase`).
pub fn normalize_subject(subject: &str) -> String {
    let folded = subject.to_lowercase();
    let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = collapsed.as_str();
    loop {
        let t = s.trim();
        if let Some(rest) = t.strip_suffix("(fwd)") {
            s = rest;
        } else if let Some(rest) = strip_reply_prefix(t) {
            s = rest;
        } else if let Some(inner) = t.strip_prefix("[fwd:").and_then(|r| r.strip_suffix(']')) {
            s = inner;
        } else if let Some(rest) = strip_leading_tag(t) {
            s = rest;
        } else {
            return t.to_string();
        }
    }
}

/// `re:`, `re :`, `re[2]:`, `re(2):`, `re^2:`, `回复：` ... at the start of an already lower-cased,
/// trimmed subject; returns what follows the colon.
fn strip_reply_prefix(s: &str) -> Option<&str> {
    REPLY_PREFIXES.iter().find_map(|prefix| {
        let rest = s.strip_prefix(prefix)?.trim_start();
        let rest = strip_counter(rest).trim_start();
        rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))
    })
}

/// A reply counter after a prefix: `[2]`, `(2)` or `^2`; the input when there is none.
fn strip_counter(s: &str) -> &str {
    let digits_then = |rest: &str, close: Option<char>| -> Option<usize> {
        let n = rest.chars().take_while(char::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        match close {
            Some(c) => rest[n..].starts_with(c).then_some(n + 1),
            None => Some(n),
        }
    };
    let (open, close) = match s.chars().next() {
        Some('[') => ('[', Some(']')),
        Some('(') => ('(', Some(')')),
        Some('^') => ('^', None),
        _ => return s,
    };
    let rest = &s[open.len_utf8()..];
    match digits_then(rest, close) {
        Some(n) => &rest[n..],
        None => s,
    }
}

/// A leading `[tag]` or `【tag】` followed by something; returns that something.
fn strip_leading_tag(s: &str) -> Option<&str> {
    let (open, close) = if s.starts_with('[') {
        ('[', ']')
    } else if s.starts_with('【') {
        ('【', '】')
    } else {
        return None;
    };
    let inner = &s[open.len_utf8()..];
    let end = inner.find(close)?;
    let rest = &inner[end + close.len_utf8()..];
    (!rest.trim().is_empty()).then_some(rest)
}

/// At most this many identifiers of `References` (the newest) and `In-Reply-To` are looked up,
/// so a hostile message with thousands of references costs a bounded number of lookups.
pub const MAX_THREAD_LOOKUPS: usize = 64;

/// Decides the conversation of a new message.
///
/// 1. The conversation of the message it replies to: each `In-Reply-To` identifier, then the
///    `References` identifiers newest (last) first — RFC 5322 §3.6.4 puts the parent last, and
///    RFC 5256 §2.2 threads by the same rule — looked up with `by_message_id` (identifiers
///    without `<>`, as [`thread_headers`] gives them). At most [`MAX_THREAD_LOOKUPS`] of each.
/// 2. Otherwise, when the normalized subject is not empty, the conversation `by_subject` finds
///    for it (a reply whose parent this mailbox never got, clients that drop `References`).
///    An empty normalized subject (`""`, `"Re:"`) would group unrelated mail, so it is never
///    looked up. The caller decides how wide `by_subject` looks (for example only conversations
///    active in the last weeks, as generic subjects such as "question" recur).
/// 3. Otherwise `None`: the message starts a new conversation.
pub fn choose_conversation<C: Clone>(
    h: &ThreadHeaders,
    by_message_id: impl Fn(&str) -> Option<C>,
    by_subject: impl Fn(&str) -> Option<C>,
) -> Option<C> {
    h.in_reply_to
        .iter()
        .take(MAX_THREAD_LOOKUPS)
        .chain(h.references.iter().rev().take(MAX_THREAD_LOOKUPS))
        .find_map(|id| by_message_id(id))
        .or_else(|| {
            if h.normalized_subject.is_empty() {
                None
            } else {
                by_subject(&h.normalized_subject)
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// The iTIP method of a calendar object (RFC 5546 §1.4), from its `METHOD` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarMethod {
    /// A meeting invitation or update (RFC 5546 §3.2.2).
    Request,
    /// A meeting cancellation (RFC 5546 §3.2.5).
    Cancel,
    /// Anything else (`PUBLISH`, `REPLY`, `COUNTER`, ...), upper case; empty when the object has
    /// no method at all (a plain `.ics` file). [`apply_to_calendar`] ignores these.
    Other(String),
}

impl CalendarMethod {
    fn parse(value: &str) -> Self {
        let v = value.trim().to_ascii_uppercase();
        match v.as_str() {
            "REQUEST" => CalendarMethod::Request,
            "CANCEL" => CalendarMethod::Cancel,
            _ => CalendarMethod::Other(v),
        }
    }
}

/// A calendar item found in a message: one RFC 5545 `VEVENT` of a `text/calendar` part, with the
/// iTIP (RFC 5546) method of its `VCALENDAR`.
///
/// Times are not converted between zones (that needs the `VTIMEZONE` rules or a zone database):
/// `start`/`end` are RFC 3339 UTC (`2026-12-01T01:00:00Z`) when the value is UTC, the local time
/// followed by its `TZID` as given (`2026-12-01T10:00:00 Asia/Tokyo`, or with a Windows zone name
/// such as `Tokyo Standard Time` from Outlook), a floating local time without zone
/// (`2026-12-01T10:00:00`), a date (`2026-12-01`) for all-day events, or the raw value when it is
/// not a valid date or time. Recurrence rules are not expanded: a recurring meeting is its first
/// occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    pub method: CalendarMethod,
    /// The `UID` shared by the request, its updates and its cancellation (RFC 5545 §3.8.4.7).
    pub uid: String,
    /// The `SEQUENCE` revision (RFC 5545 §3.8.7.4), 0 when absent.
    pub sequence: u32,
    /// `SUMMARY`, unescaped (RFC 5545 §3.3.11). [`apply_to_calendar`] prefixes `Canceled: `.
    pub summary: String,
    /// `LOCATION`, unescaped.
    pub location: String,
    /// The `ORGANIZER` address without its `mailto:`.
    pub organizer: String,
    pub start: String,
    /// `DTEND`; else `DTSTART` + `DURATION`; else, as RFC 5545 §3.6.1 says, the day after an
    /// all-day start or the start itself.
    pub end: String,
    /// The start is a date (`VALUE=DATE`), or Outlook marked the event
    /// `X-MICROSOFT-CDO-ALLDAYEVENT:TRUE`.
    pub all_day: bool,
}

/// The calendar items of a message: every `VEVENT` of every `text/calendar` or `application/ics`
/// part of the message itself, in order.
///
/// - Lines are unfolded on the decoded bytes before the charset is applied (RFC 5545 §3.1: a fold
///   may split a UTF-8 sequence); property parameters may be quoted (§3.2); `SUMMARY` and
///   `LOCATION` are unescaped (§3.3.11: `\\`, `\;`, `\,`, `\n`/`\N`).
/// - The method is the `METHOD` of the enclosing `VCALENDAR`, else the `method` parameter of the
///   part's Content-Type (RFC 6047 §2.4 says they are the same).
/// - Only properties of the `VEVENT` itself count (not of its `VALARM`, nor of the `VTIMEZONE`s).
/// - Skipped: a `VEVENT` without `UID` (nothing could update or cancel it), and a `VEVENT` with
///   `RECURRENCE-ID` (an override of one occurrence of a recurring meeting: since items are
///   keyed by UID alone, applying it would replace or cancel the whole series).
/// - The same item found twice (Outlook may send the invitation both as the `text/calendar`
///   alternative and as an `.ics` attachment) is listed once.
/// - Invitations inside an attached message (`message/rfc822`) are not looked at: a forwarded
///   invitation was not sent to the group.
pub fn calendar_items(content: &[u8]) -> Vec<CalendarItem> {
    let Some(msg) = MessageParser::new().parse(content) else {
        return Vec::new();
    };
    let mut items: Vec<CalendarItem> = Vec::new();
    for part in &msg.parts {
        if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
            continue;
        }
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !is_calendar_type(&content_type_string(Some(ct), part)) {
            continue;
        }
        let bytes = part_bytes(content, part);
        let unfolded = unfold(&bytes);
        let text = decode_charset(&unfolded, attribute(ct, "charset"));
        let fallback = attribute(ct, "method").map(CalendarMethod::parse);
        for item in parse_icalendar(&text, fallback) {
            if !items.contains(&item) {
                items.push(item);
            }
        }
    }
    items
}

fn is_calendar_type(content_type: &str) -> bool {
    content_type == "text/calendar" || content_type == "application/ics"
}

/// Removes line folds (CRLF or LF followed by one space or tab, RFC 5545 §3.1).
fn unfold(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let fold = match bytes.get(i..) {
            Some([b'\r', b'\n', b' ' | b'\t', ..]) => 3,
            Some([b'\n', b' ' | b'\t', ..]) => 2,
            _ => 0,
        };
        if fold > 0 {
            i += fold;
        } else {
            if let Some(&b) = bytes.get(i) {
                out.push(b);
            }
            i += 1;
        }
    }
    out
}

/// Text in the given charset (UTF-8, the iCalendar default, when absent or unknown).
fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    match charset {
        Some(cs) if !cs.eq_ignore_ascii_case("utf-8") && !cs.eq_ignore_ascii_case("utf8") => {
            match charset_decoder(cs.as_bytes()) {
                Some(decode) => decode(bytes),
                None => String::from_utf8_lossy(bytes).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// One content line: `NAME *(;PARAM=VALUE) : VALUE` (RFC 5545 §3.1), name and parameter names
/// upper-cased, parameter values without their quotes.
struct ContentLine {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl ContentLine {
    fn parse(line: &str) -> Option<Self> {
        let mut in_quotes = false;
        let mut split_at = None;
        let mut segments = Vec::new();
        let mut seg_start = 0;
        for (i, c) in line.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ';' if !in_quotes => {
                    segments.push(&line[seg_start..i]);
                    seg_start = i + 1;
                }
                ':' if !in_quotes => {
                    split_at = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let colon = split_at?;
        segments.push(&line[seg_start..colon]);
        let mut segments = segments.into_iter();
        let name = segments.next()?.trim().to_ascii_uppercase();
        if name.is_empty() {
            return None;
        }
        let params = segments
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_uppercase(), v.to_string()))
            })
            .collect();
        Some(ContentLine {
            name,
            params,
            value: line[colon + 1..].to_string(),
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The properties of one `VEVENT` as they are read; the first occurrence of each wins.
#[derive(Default)]
struct EventBuilder {
    uid: Option<String>,
    sequence: Option<u32>,
    summary: Option<String>,
    location: Option<String>,
    organizer: Option<String>,
    dtstart: Option<ContentLine>,
    dtend: Option<ContentLine>,
    duration: Option<String>,
    recurrence_id: bool,
    ms_all_day: bool,
}

impl EventBuilder {
    fn set(&mut self, line: ContentLine) {
        let value = line.value.trim();
        match line.name.as_str() {
            "UID" => {
                self.uid.get_or_insert_with(|| value.to_string());
            }
            "SEQUENCE" => {
                self.sequence.get_or_insert(value.parse().unwrap_or(0));
            }
            "SUMMARY" => {
                self.summary.get_or_insert_with(|| unescape_text(value));
            }
            "LOCATION" => {
                self.location.get_or_insert_with(|| unescape_text(value));
            }
            "ORGANIZER" => {
                self.organizer.get_or_insert_with(|| strip_mailto(value));
            }
            "DURATION" => {
                self.duration.get_or_insert_with(|| value.to_string());
            }
            "RECURRENCE-ID" => self.recurrence_id = true,
            "X-MICROSOFT-CDO-ALLDAYEVENT" => {
                self.ms_all_day = value.eq_ignore_ascii_case("TRUE");
            }
            "DTSTART" => {
                self.dtstart.get_or_insert(line);
            }
            "DTEND" => {
                self.dtend.get_or_insert(line);
            }
            _ => {}
        }
    }

    fn build(self, method: &CalendarMethod) -> Option<CalendarItem> {
        let uid = self.uid.filter(|u| !u.is_empty())?;
        if self.recurrence_id {
            return None;
        }
        let start = self.dtstart.as_ref().map(Moment::parse);
        let end = match (&self.dtend, &self.duration, &start) {
            (Some(e), _, _) => Some(Moment::parse(e)),
            (None, Some(d), Some(s)) => Some(
                parse_duration(d)
                    .and_then(|d| s.add(d))
                    .unwrap_or_else(|| s.clone()),
            ),
            (None, None, Some(s @ Moment::Date(_))) => {
                Some(s.add(TimeDelta::days(1)).unwrap_or_else(|| s.clone()))
            }
            (None, _, Some(s)) => Some(s.clone()),
            (None, _, None) => None,
        };
        Some(CalendarItem {
            method: method.clone(),
            uid,
            sequence: self.sequence.unwrap_or(0),
            summary: self.summary.unwrap_or_default(),
            location: self.location.unwrap_or_default(),
            organizer: self.organizer.unwrap_or_default(),
            all_day: self.ms_all_day || matches!(start, Some(Moment::Date(_))),
            start: start.map(|m| m.to_string()).unwrap_or_default(),
            end: end.map(|m| m.to_string()).unwrap_or_default(),
        })
    }
}

/// Parses the `VCALENDAR`s of an (unfolded) iCalendar text into items.
fn parse_icalendar(text: &str, fallback_method: Option<CalendarMethod>) -> Vec<CalendarItem> {
    let mut items = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut method: Option<CalendarMethod> = None;
    let mut pending: Vec<EventBuilder> = Vec::new();
    let mut current: Option<EventBuilder> = None;

    let flush = |pending: &mut Vec<EventBuilder>,
                 method: &Option<CalendarMethod>,
                 items: &mut Vec<CalendarItem>| {
        let m = method
            .clone()
            .or_else(|| fallback_method.clone())
            .unwrap_or(CalendarMethod::Other(String::new()));
        items.extend(pending.drain(..).filter_map(|e| e.build(&m)));
    };

    for line in text.lines() {
        let Some(line) = ContentLine::parse(line) else {
            continue;
        };
        match line.name.as_str() {
            "BEGIN" => {
                let component = line.value.trim().to_ascii_uppercase();
                if component == "VCALENDAR" {
                    // A new calendar object: whatever an unterminated previous one held is done.
                    pending.extend(current.take());
                    flush(&mut pending, &method, &mut items);
                    method = None;
                    stack.clear();
                } else if component == "VEVENT" {
                    pending.extend(current.take());
                    current = Some(EventBuilder::default());
                }
                stack.push(component);
            }
            "END" => {
                let component = line.value.trim().to_ascii_uppercase();
                if let Some(pos) = stack.iter().rposition(|c| *c == component) {
                    stack.truncate(pos);
                }
                if component == "VEVENT" {
                    pending.extend(current.take());
                } else if component == "VCALENDAR" {
                    pending.extend(current.take());
                    flush(&mut pending, &method, &mut items);
                    method = None;
                }
            }
            _ => match stack.last().map(String::as_str) {
                Some("VEVENT") => {
                    if let Some(event) = current.as_mut() {
                        event.set(line);
                    }
                }
                Some("VCALENDAR") if line.name == "METHOD" => {
                    method = Some(CalendarMethod::parse(&line.value));
                }
                _ => {}
            },
        }
    }
    pending.extend(current.take());
    flush(&mut pending, &method, &mut items);
    items
}

/// Unescapes an RFC 5545 §3.3.11 TEXT value. Unknown escapes are kept as written, so a stray
/// backslash (a Windows path in a location) survives.
fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(e @ ('\\' | ';' | ',')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn strip_mailto(value: &str) -> String {
    let v = value.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => v[7..].trim().to_string(),
        _ => v.to_string(),
    }
}

/// A `DTSTART`/`DTEND` value (RFC 5545 §3.3.4 DATE, §3.3.5 DATE-TIME forms 1-3).
#[derive(Debug, Clone)]
enum Moment {
    Date(NaiveDate),
    Utc(NaiveDateTime),
    Local(NaiveDateTime, Option<String>),
    Raw(String),
}

impl Moment {
    fn parse(line: &ContentLine) -> Self {
        let v = line.value.trim();
        let is_date = line
            .param("VALUE")
            .is_some_and(|t| t.eq_ignore_ascii_case("DATE"))
            || (v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()));
        if is_date {
            return parse_date(v).map_or_else(|| Moment::Raw(v.to_string()), Moment::Date);
        }
        if let Some(utc) = v.strip_suffix('Z').or_else(|| v.strip_suffix('z')) {
            return parse_date_time(utc).map_or_else(|| Moment::Raw(v.to_string()), Moment::Utc);
        }
        match parse_date_time(v) {
            Some(dt) => Moment::Local(
                dt,
                line.param("TZID")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            ),
            None => Moment::Raw(v.to_string()),
        }
    }

    /// This moment moved by a duration (nominal days for dates and local times: DST changes
    /// inside the duration are not accounted for, there being no zone rules here).
    fn add(&self, d: TimeDelta) -> Option<Moment> {
        Some(match self {
            Moment::Date(date) => {
                Moment::Date(date.checked_add_signed(TimeDelta::try_days(d.num_days())?)?)
            }
            Moment::Utc(dt) => Moment::Utc(dt.checked_add_signed(d)?),
            Moment::Local(dt, tz) => Moment::Local(dt.checked_add_signed(d)?, tz.clone()),
            Moment::Raw(_) => return None,
        })
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moment::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Moment::Utc(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%SZ")),
            Moment::Local(dt, Some(tz)) => write!(f, "{} {tz}", dt.format("%Y-%m-%dT%H:%M:%S")),
            Moment::Local(dt, None) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S")),
            Moment::Raw(s) => f.write_str(s),
        }
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYYMMDD`.
fn parse_date(v: &str) -> Option<NaiveDate> {
    if v.len() != 8 {
        return None;
    }
    let year = i32::try_from(digits(v.get(0..4)?)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(v.get(4..6)?)?, digits(v.get(6..8)?)?)
}

/// `YYYYMMDDTHHMMSS` (a leap second 60 is read as 59).
fn parse_date_time(v: &str) -> Option<NaiveDateTime> {
    let (date, time) = v.split_once(['T', 't'])?;
    if time.len() != 6 {
        return None;
    }
    let date = parse_date(date)?;
    let sec = digits(time.get(4..6)?)?.min(59);
    let time = NaiveTime::from_hms_opt(digits(time.get(0..2)?)?, digits(time.get(2..4)?)?, sec)?;
    Some(date.and_time(time))
}

/// An RFC 5545 §3.3.6 duration: `[+|-]P` then `nW`, or `nD` and/or `T` with `nH`, `nM`, `nS`.
fn parse_duration(v: &str) -> Option<TimeDelta> {
    let v = v.trim();
    let (negative, v) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let v = v.strip_prefix(['P', 'p'])?;
    let mut total = TimeDelta::zero();
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in v.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let c = c.to_ascii_uppercase();
        if c == 'T' && number.is_empty() {
            in_time = true;
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        let part = match (c, in_time) {
            ('W', false) => TimeDelta::try_weeks(n)?,
            ('D', false) => TimeDelta::try_days(n)?,
            ('H', true) => TimeDelta::try_hours(n)?,
            ('M', true) => TimeDelta::try_minutes(n)?,
            ('S', true) => TimeDelta::try_seconds(n)?,
            _ => return None,
        };
        total = total.checked_add(&part)?;
        any = true;
    }
    if !any || !number.is_empty() {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// What [`apply_to_calendar`] puts before the summary of a cancelled event, as Exchange does.
pub const CANCELED_PREFIX: &str = "Canceled: ";

/// Folds one iTIP message into a calendar (the group's list of events, in arrival order).
///
/// - `Request` (RFC 5546 §3.2.2): adds the event, or replaces in place the event with that UID
///   when its `SEQUENCE` is higher or equal (an equal sequence is a resend or a minor update;
///   RFC 5546 §2.1.5 would compare DTSTAMP next, which the item does not carry, so the later
///   arrival wins). A lower sequence is a stale, reordered update and is ignored.
/// - `Cancel` (RFC 5546 §3.2.5): **the event is kept, marked cancelled**, as Exchange keeps a
///   cancelled meeting visible in the calendar as `Canceled: <subject>` until someone removes it.
///   The entry gets `method == CalendarMethod::Cancel`, the cancellation's sequence, its summary
///   prefixed with [`CANCELED_PREFIX`] (once), and keeps the event's other fields where the
///   cancellation omits them. It applies when its sequence is higher or equal. The kept entry
///   is also a tombstone: an older `Request` delivered late cannot bring the meeting back; only a
///   `Request` with a strictly higher sequence reinstates it (RFC 5546 §2.1.4: the organizer
///   increments SEQUENCE when a cancelled meeting is rescheduled). A cancellation of an unknown
///   UID is recorded the same way (it may have overtaken its request). Removing cancelled
///   entries from view is the caller's choice (`method == Cancel`).
/// - `Other` methods (`PUBLISH`, `REPLY`, `COUNTER`, none) and items without UID change nothing.
pub fn apply_to_calendar(calendar: &mut Vec<CalendarItem>, item: CalendarItem) {
    if item.uid.is_empty() {
        return;
    }
    let existing = calendar.iter_mut().find(|e| e.uid == item.uid);
    match item.method {
        CalendarMethod::Request => match existing {
            None => calendar.push(item),
            Some(e) => {
                let wins = if e.method == CalendarMethod::Cancel {
                    item.sequence > e.sequence
                } else {
                    item.sequence >= e.sequence
                };
                if wins {
                    *e = item;
                }
            }
        },
        CalendarMethod::Cancel => match existing {
            None => calendar.push(cancelled(item, None)),
            Some(e) => {
                if item.sequence >= e.sequence {
                    *e = cancelled(item, Some(e));
                }
            }
        },
        CalendarMethod::Other(_) => {}
    }
}

/// The cancelled entry for a cancellation, completed from the event it cancels.
fn cancelled(item: CalendarItem, previous: Option<&CalendarItem>) -> CalendarItem {
    let pick = |new: String, old: Option<&String>| {
        if new.is_empty() {
            old.cloned().unwrap_or_default()
        } else {
            new
        }
    };
    let all_day = if item.start.is_empty() {
        previous.is_some_and(|p| p.all_day)
    } else {
        item.all_day
    };
    let summary = pick(item.summary, previous.map(|p| &p.summary));
    let summary = strip_canceled(&summary);
    CalendarItem {
        method: CalendarMethod::Cancel,
        uid: item.uid,
        sequence: item.sequence,
        summary: format!("{CANCELED_PREFIX}{summary}").trim_end().to_string(),
        location: pick(item.location, previous.map(|p| &p.location)),
        organizer: pick(item.organizer, previous.map(|p| &p.organizer)),
        start: pick(item.start, previous.map(|p| &p.start)),
        end: pick(item.end, previous.map(|p| &p.end)),
        all_day,
    }
}

/// The summary without a leading "Canceled:"/"Cancelled:" (any case), so it is prefixed once.
fn strip_canceled(summary: &str) -> &str {
    let s = summary.trim();
    for p in ["canceled:", "cancelled:"] {
        if let Some(head) = s.get(..p.len())
            && head.eq_ignore_ascii_case(p)
        {
            return s[p.len()..].trim_start();
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

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

/// `type/subtype` of a part, lower case.
fn content_type_string(ct: Option<&ContentType<'_>>, part: &MessagePart<'_>) -> String {
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
fn attribute<'a>(ct: &'a ContentType<'_>, name: &str) -> Option<&'a str> {
    ct.attributes()?
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_ref())
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

/// The decoded content of a leaf part, as bytes.
///
/// The MIME parser converts text parts to UTF-8; a file must keep its bytes, so text parts (and
/// unencoded attached messages, which the parser reads in place) are decoded again from the raw
/// message with the part's transfer encoding only.
fn part_bytes<'a>(content: &'a [u8], part: &'a MessagePart<'_>) -> Cow<'a, [u8]> {
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

#[cfg(test)]
mod tests;

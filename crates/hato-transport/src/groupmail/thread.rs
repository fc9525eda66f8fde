//! Conversations: the threading headers of a message, subject normalisation, and the choice of a
//! new message's conversation.

use super::dedupe_in_order;
use mail_parser::MessageParser;

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
    /// The `In-Reply-To` identifiers (normally one: the parent), without `<>`, in header order;
    /// the first [`MAX_THREAD_LOOKUPS`] of them.
    pub in_reply_to: Vec<String>,
    /// The `References` identifiers, without `<>`, oldest first as RFC 5322 §3.6.4 orders them;
    /// only the newest [`MAX_THREAD_LOOKUPS`] (without repeats among the newest few hundred),
    /// the only ones threading looks up, so that a hostile field of a million identifiers costs
    /// one pass and bounded memory.
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
///
/// Linear in the size of the header block: the fields are split in one pass and only Subject is
/// handed to the header parser; a References field of a million identifiers costs a million
/// identifiers' worth of work, once.
pub fn thread_headers(content: &[u8]) -> ThreadHeaders {
    let block = crate::header_block(content);
    // Every identifier of the named fields, in order; `keep` decides which are kept.
    let ids_of = |name: &str, keep: &mut dyn FnMut(String)| {
        for f in
            crate::header_fields(block).filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        {
            message_ids(&String::from_utf8_lossy(f.value), &mut *keep);
        }
    };
    let first = |name: &str| {
        let mut ids = Vec::new();
        ids_of(name, &mut |id| {
            if ids.len() < MAX_THREAD_LOOKUPS {
                ids.push(id)
            }
        });
        dedupe_in_order(ids)
    };
    // The newest references: a window of the last ones, without repeats.
    let mut window = std::collections::VecDeque::with_capacity(4 * MAX_THREAD_LOOKUPS + 1);
    ids_of("References", &mut |id| {
        if window.len() == 4 * MAX_THREAD_LOOKUPS {
            window.pop_front();
        }
        window.push_back(id);
    });
    let mut references = dedupe_in_order(Vec::from(window));
    references.drain(..references.len().saturating_sub(MAX_THREAD_LOOKUPS));
    let subject_field = crate::only_fields(block, &["Subject"]);
    let subject = MessageParser::new()
        .parse_headers(&subject_field)
        .and_then(|m| m.subject().map(|s| s.trim().to_string()))
        .unwrap_or_default();
    ThreadHeaders {
        message_id: first("Message-ID").into_iter().next(),
        in_reply_to: first("In-Reply-To"),
        references,
        normalized_subject: normalize_subject(&subject),
        subject,
    }
}

/// The message identifiers in a raw `Message-ID`/`In-Reply-To`/`References` value, without `<>`.
fn message_ids(raw: &str, found: &mut dyn FnMut(String)) {
    // Most values have no comment: no need to copy them.
    let text: std::borrow::Cow<'_, str> = if raw.contains('(') {
        strip_comments(raw).into()
    } else {
        raw.into()
    };
    let mut rest = &*text;
    let mut bracketed = false;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            break;
        };
        bracketed = true;
        // Folding can put whitespace inside a long identifier; it is not part of it.
        let id = &after[..end];
        let id: String = if id.bytes().any(|b| b.is_ascii_whitespace()) || !id.is_ascii() {
            id.chars().filter(|c| !c.is_whitespace()).collect()
        } else {
            id.to_string()
        };
        if !id.is_empty() {
            found(id);
        }
        rest = &after[end + 1..];
    }
    if !bracketed {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .map(|w| w.trim_matches(|c: char| c == '"' || c == '<' || c == '>'))
            .filter(|w| w.contains('@'))
            .for_each(|w| found(w.to_string()));
    }
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
///
/// This is the one threading rule: the delivery agent files group mail with
/// [`try_choose_conversation`], which is this with lookups that can fail (store reads).
pub fn choose_conversation<C>(
    h: &ThreadHeaders,
    by_message_id: impl Fn(&str) -> Option<C>,
    by_subject: impl Fn(&str) -> Option<C>,
) -> Option<C> {
    let never = |r: Option<C>| Ok::<_, std::convert::Infallible>(r);
    match try_choose_conversation(h, |id| never(by_message_id(id)), |s| never(by_subject(s))) {
        Ok(c) => c,
        Err(never) => match never {},
    }
}

/// [`choose_conversation`] with fallible lookups: the first error ends the search and is returned.
pub fn try_choose_conversation<C, E>(
    h: &ThreadHeaders,
    mut by_message_id: impl FnMut(&str) -> Result<Option<C>, E>,
    mut by_subject: impl FnMut(&str) -> Result<Option<C>, E>,
) -> Result<Option<C>, E> {
    let candidates = h
        .in_reply_to
        .iter()
        .take(MAX_THREAD_LOOKUPS)
        .chain(h.references.iter().rev().take(MAX_THREAD_LOOKUPS));
    for id in candidates {
        if let Some(c) = by_message_id(id)? {
            return Ok(Some(c));
        }
    }
    if h.normalized_subject.is_empty() {
        Ok(None)
    } else {
        by_subject(&h.normalized_subject)
    }
}

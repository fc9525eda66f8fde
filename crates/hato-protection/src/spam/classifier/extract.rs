//! Feature extraction: one pass over what the *sender* controls, bounded.
//!
//! Read: the decoded text of every text part (HTML turned into its visible text, its structure
//! kept as heuristics), the Subject, the From display name and domain, Reply-To's domain, the
//! shape of Message-ID and Date, X-Mailer/User-Agent, the List-* and Precedence fields, MIME
//! structure and attachment types. An allow-list: nothing else of the header is read. In
//! particular never `Received`, `Delivered-To`, `Return-Path`, `X-Spam-*`, `X-Loop`,
//! `Envelope-To`, `X-Original-To` (what a corpus's collectors and relays add: a model that
//! learned them would learn the collector, not spam — issue 9), and never To/Cc addresses
//! (rewritten by the collectors; only whether a To is there at all).
//!
//! Everything is capped ([`MAX_RAW_BYTES`] parsed, [`MAX_TEXT_BYTES`] of text, [`MAX_HTML_BYTES`]
//! of HTML, [`MAX_URLS`], [`MAX_PARTS`], [`MAX_TOKENS`]); each cap is counted in [`Stats`] so
//! tests check memory and work stay bounded on hostile input.

use super::heuristics::{self as hs, H};
use crate::spam::{Asf, AsfHit, PhishLevel};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use mail_parser::{HeaderName, MessageParser, MimeHeaders, PartType};
use std::sync::OnceLock;

/// Bytes of the raw message parsed (a longer message is judged on its start: spam says what it
/// is early, and parsing costs time and memory in proportion to the input).
pub const MAX_RAW_BYTES: usize = 512 * 1024;
/// Bytes of decoded visible text kept over all parts.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Bytes of HTML examined over all HTML parts.
pub const MAX_HTML_BYTES: usize = 256 * 1024;
/// URLs examined (links, image sources, form actions, URLs in the text).
pub const MAX_URLS: usize = 1000;
/// MIME parts looked at (over nested messages).
pub const MAX_PARTS: usize = 256;
/// Word tokens hashed.
pub const MAX_TOKENS: usize = 8192;
/// The fewest hashed features a message's unit vector is spread over (see [`hashed_value`]).
pub const MIN_NORM_FEATURES: usize = 200;
/// Byte 4-grams are taken from the first this many bytes of the normalised text (TREC's
/// best content filters used the first few kilobytes: the rest adds cost, not accuracy).
pub const NGRAM_BYTES: usize = 6144;
/// Bytes of one header field value read.
pub const MAX_HEADER_VALUE: usize = 1024;
/// Longest evidence string kept.
const MAX_EVIDENCE: usize = 200;

/// What extraction examined, for the bounds' tests and for people.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub raw_bytes: usize,
    pub text_bytes: usize,
    pub html_bytes: usize,
    pub urls: usize,
    pub tokens: usize,
    pub parts: usize,
    pub header_bytes: usize,
    pub hashed_features: usize,
}

/// Where a hashed feature's text is, so a reason can name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// In `aux` (a prefixed token) rather than `doc`.
    pub aux: bool,
    /// A byte 4-gram of `doc` (not a word): told by how it was hashed, so a reason names it
    /// the same whichever of its occurrences is kept.
    pub ngram: bool,
    pub start: u32,
    pub len: u16,
}

/// A message's features: computed once per message by [`super::Classifier::extract`],
/// independent of any policy or tenant.
#[derive(Clone, Debug)]
pub struct Features {
    pub(crate) heur: [f32; hs::COUNT],
    /// Hashed feature buckets, sorted, unique (values are all `hashed_value`).
    pub(crate) hashed: Vec<u32>,
    pub(crate) origins: Vec<Origin>,
    /// 1/√n: the hashed features are a unit vector, so long and short messages weigh alike.
    pub(crate) hashed_value: f32,
    pub(crate) doc: String,
    pub(crate) aux: String,
    pub(crate) evidence: Vec<Option<String>>,
    /// The ASF heuristics the message triggered, with their evidence.
    pub asf: Vec<AsfHit>,
    /// Bulk complaint level estimated from bulk-mailer traits, 0–9.
    pub bcl: u8,
    pub bulk_evidence: Vec<String>,
    pub phish: PhishLevel,
    pub phish_evidence: Vec<String>,
    /// ISO 639-1.
    pub language: Option<&'static str>,
    /// For a bounce (`MarkAsSpamNdrBackscatter`): the Message-ID of the original message, so
    /// the caller can check whether this organisation sent it.
    pub bounce_original_message_id: Option<String>,
    pub stats: Stats,
}

impl Features {
    /// The value of one heuristic (0–1).
    pub fn heuristic(&self, h: H) -> f32 {
        self.heur[h as usize]
    }

    /// How many distinct link domains were kept as features (at most 64).
    pub fn url_domains_len(&self) -> usize {
        self.aux.matches("url-domain:").count()
    }

    /// The evidence recorded for a heuristic that fired.
    pub fn evidence(&self, h: H) -> Option<&str> {
        self.evidence.get(h as usize).and_then(|e| e.as_deref())
    }

    /// The text of hashed feature number `k` (an index into `hashed`).
    pub(crate) fn hashed_text(&self, k: usize) -> &str {
        let Some(o) = self.origins.get(k) else {
            return "";
        };
        let src = if o.aux { &self.aux } else { &self.doc };
        let start = o.start as usize;
        let end = start + o.len as usize;
        src.get(start..end).unwrap_or("")
    }
}

// Hash namespaces: the same word in a subject and in a body are different features.
const NS_NGRAM: u64 = 1;
const NS_WORD: u64 = 2;
const NS_SUBJECT: u64 = 3;
const NS_AUX: u64 = 4;

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn bucket(h: u64, bits: u32) -> u32 {
    // The multiply spreads FNV's low-entropy high bits before the top `bits` are taken.
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as u32
}

/// The phrase lists, one automaton (ASCII case-insensitive, linear in the text).
struct Phrases {
    ac: AhoCorasick,
    group: Vec<H>,
    brands: AhoCorasick,
}

fn phrases() -> Option<&'static Phrases> {
    static P: OnceLock<Option<Phrases>> = OnceLock::new();
    P.get_or_init(|| {
        let mut pats: Vec<&str> = Vec::new();
        let mut group = Vec::new();
        for (list, h) in [
            (hs::MONEY, H::TextMoney),
            (hs::URGENCY, H::TextUrgency),
            (hs::CREDENTIAL, H::TextCredential),
            (hs::SENSITIVE, H::TextSensitive),
            (hs::REMOVAL, H::TextRemoval),
            (hs::NOT_SPAM, H::TextNotSpam),
            (hs::MIME_LEAK, H::MimeLeak),
            (hs::TOLL_FREE, H::TextTollFree),
        ] {
            for p in list {
                pats.push(p);
                group.push(h);
            }
        }
        // A DFA, not the contiguous NFA the builder picks for more than 100 patterns: the
        // same matches (the match semantics are the builder's, not the automaton's), one
        // table lookup per byte of text, for a table of some hundred kilobytes built once.
        // (Should the DFA not build, the builder's own choice finds the same matches.)
        let build = |pats: &[&str]| {
            let mut b = AhoCorasickBuilder::new();
            b.ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard);
            b.clone()
                .kind(Some(AhoCorasickKind::DFA))
                .build(pats)
                .or_else(|_| b.build(pats))
                .ok()
        };
        let ac = build(&pats)?;
        let brands: Vec<&str> = hs::BRANDS.iter().map(|(b, _)| *b).collect();
        let brands = build(&brands)?;
        Some(Phrases { ac, group, brands })
    })
    .as_ref()
}

/// The extraction's working state.
struct Ex {
    bits: u32,
    heur: [f32; hs::COUNT],
    evidence: Vec<Option<String>>,
    doc: String,
    aux: String,
    hashed: Vec<(u32, Origin)>,
    stats: Stats,
    // Text statistics.
    letters: usize,
    capitals: usize,
    exclamations: usize,
    zero_width: usize,
    // URLs.
    url_domains: Vec<String>,
    url_count: usize,
    // HTML.
    html_parts: usize,
    plain_parts: usize,
    html_visible: usize,
    html_raw: usize,
    images: usize,
    remote_images: usize,
    entities_alnum: usize,
    comment_splits: usize,
    hidden_bytes: usize,
    password_input: bool,
    /// In-Reply-To or References present (a real reply).
    threaded: bool,
    /// Distinct text colours in the HTML (at most 8 kept).
    colours: Vec<String>,
    bulk_evidence: Vec<String>,
    phish_evidence: Vec<String>,
    bounce_id: Option<String>,
    msgid_domain: String,
}

impl Ex {
    fn set(&mut self, h: H, value: f32, evidence: impl FnOnce() -> String) {
        let i = h as usize;
        if value > self.heur[i] {
            self.heur[i] = value.min(1.0);
        }
        if value > 0.0 && self.evidence[i].is_none() {
            self.evidence[i] = Some(cut(&evidence(), MAX_EVIDENCE));
        }
    }

    fn flag(&mut self, h: H, evidence: impl FnOnce() -> String) {
        self.set(h, 1.0, evidence);
    }

    /// A prefixed token (`from-domain:example.com`), hashed, its text kept for reasons.
    fn aux_token(&mut self, prefix: &str, value: &str) {
        if self.stats.tokens >= MAX_TOKENS {
            return;
        }
        self.stats.tokens += 1;
        let start = self.aux.len();
        self.aux.push_str(prefix);
        self.aux.push_str(cut_str(value, 64));
        let text = &self.aux.as_bytes()[start..];
        let b = bucket(fnv(NS_AUX, text), self.bits);
        let len = (self.aux.len() - start).min(u16::MAX as usize) as u16;
        self.hashed.push((
            b,
            Origin {
                aux: true,
                ngram: false,
                start: start as u32,
                len,
            },
        ));
    }

    /// Appends decoded text to the document: whitespace collapsed, ASCII lower-cased,
    /// zero-width characters dropped (and counted: spam hides words behind them).
    fn push_text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if self.doc.len() >= MAX_TEXT_BYTES {
                break;
            }
            // ASCII, most of mail's text, byte by byte: what the general path below does for
            // these characters (`char::is_whitespace` is exactly 0x09–0x0d and space in ASCII).
            let b = bytes[i];
            if b.is_ascii() {
                i += 1;
                match b {
                    b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => {
                        if !self.doc.is_empty() && !self.doc.ends_with(' ') {
                            self.doc.push(' ');
                        }
                    }
                    _ => {
                        if b.is_ascii_alphabetic() {
                            self.letters += 1;
                            if b.is_ascii_uppercase() {
                                self.capitals += 1;
                            }
                        } else if b == b'!' {
                            self.exclamations += 1;
                        }
                        self.doc.push(char::from(b.to_ascii_lowercase()));
                    }
                }
                continue;
            }
            let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            match c {
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' => {
                    self.zero_width += 1;
                }
                c if c.is_whitespace() => {
                    if !self.doc.is_empty() && !self.doc.ends_with(' ') {
                        self.doc.push(' ');
                    }
                }
                c => {
                    if c.is_alphabetic() {
                        self.letters += 1;
                        if c.is_uppercase() {
                            self.capitals += 1;
                        }
                    } else if c == '!' {
                        self.exclamations += 1;
                    }
                    self.doc.push(c.to_ascii_lowercase());
                }
            }
        }
        self.stats.text_bytes = self.doc.len();
    }

    fn separate(&mut self) {
        if !self.doc.is_empty() && !self.doc.ends_with(' ') && self.doc.len() < MAX_TEXT_BYTES {
            self.doc.push(' ');
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn cut_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Extracts the features of a raw message (RFC 5322 + MIME; a leading mbox `From ` line is
/// skipped). Never fails: what does not parse is judged as what it is (no headers, no body).
pub(crate) fn extract(raw: &[u8], bits: u32) -> Features {
    let raw = strip_mbox_line(raw);
    let raw = &raw[..raw.len().min(MAX_RAW_BYTES)];
    let mut ex = Ex {
        bits,
        heur: [0.0; hs::COUNT],
        evidence: vec![None; hs::COUNT],
        doc: String::new(),
        aux: String::new(),
        hashed: Vec::new(),
        stats: Stats {
            raw_bytes: raw.len(),
            ..Stats::default()
        },
        letters: 0,
        capitals: 0,
        exclamations: 0,
        zero_width: 0,
        url_domains: Vec::new(),
        url_count: 0,
        html_parts: 0,
        plain_parts: 0,
        html_visible: 0,
        html_raw: 0,
        images: 0,
        remote_images: 0,
        entities_alnum: 0,
        comment_splits: 0,
        hidden_bytes: 0,
        password_input: false,
        threaded: false,
        colours: Vec::new(),
        bulk_evidence: Vec::new(),
        phish_evidence: Vec::new(),
        bounce_id: None,
        msgid_domain: String::new(),
    };
    let parsed = parser().parse(raw);
    let mut subject = String::new();
    let mut from_domain = String::new();
    let mut from_local = String::new();
    if let Some(msg) = &parsed {
        headers(
            &mut ex,
            msg,
            &mut subject,
            &mut from_domain,
            &mut from_local,
        );
        body(&mut ex, msg, 0);
    } else {
        ex.flag(H::FromMissing, || "the message does not parse".into());
        ex.flag(H::SubjectMissing, || "the message does not parse".into());
    }
    finish(ex, &subject, &from_domain, &from_local)
}

/// The parser reads the allow-list only: the fields extraction looks at are parsed (or kept
/// raw), every other field (Received, Delivered-To, X-Spam-*, …) is skipped unparsed — cheaper,
/// and what is never parsed cannot become a feature. Built once (its table of header names is
/// a hash map: building it per message was a dozen allocations).
fn parser() -> &'static MessageParser {
    static P: OnceLock<MessageParser> = OnceLock::new();
    P.get_or_init(build_parser)
}

fn build_parser() -> MessageParser {
    let mut p = MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject);
    for name in [
        "MIME-Version",
        "X-Mailer",
        "User-Agent",
        "List-Unsubscribe",
        "List-Id",
        "Precedence",
        "X-Priority",
        "X-MSMail-Priority",
        "Importance",
        "Organization",
        "X-MimeOLE",
        "Disposition-Notification-To",
    ] {
        p = p.header_raw(name);
    }
    p.default_header_ignore()
}

fn strip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match memchr::memchr(b'\n', raw) {
            Some(nl) => &raw[nl + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// A header field's raw value, cut to [`MAX_HEADER_VALUE`] and counted.
fn header<'a>(
    ex: &mut Ex,
    msg: &'a mail_parser::Message<'a>,
    name: &'static str,
) -> Option<&'a str> {
    let v = msg.header_raw(name)?;
    let v = cut_str(v.trim(), MAX_HEADER_VALUE);
    ex.stats.header_bytes += v.len();
    Some(v)
}

/// The shape of a string: runs of digits → `9`, lower → `a`, upper → `A`, other bytes kept
/// (`<20020902.1234.abc@host.example>` → `<9.9.a@a.a>`): spamware writes recognisable shapes.
fn shape(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut last = '\0';
    for c in s.chars().take(max) {
        let k = if c.is_ascii_digit() {
            '9'
        } else if c.is_ascii_lowercase() {
            'a'
        } else if c.is_ascii_uppercase() {
            'A'
        } else if c.is_alphanumeric() {
            'u'
        } else {
            c
        };
        if k != last || !matches!(k, '9' | 'a' | 'A' | 'u') {
            out.push(k);
        }
        last = k;
    }
    out
}

fn registrable(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let mut dots = host.rmatch_indices('.');
    let Some((last, _)) = dots.next() else {
        return host;
    };
    let Some((second, _)) = dots.next() else {
        return host;
    };
    let tld = &host[last + 1..];
    let sld = &host[second + 1..last];
    // co.uk, com.au, ne.jp: a short second-level label under a country code.
    if tld.len() == 2 && sld.len() <= 3 {
        if let Some((third, _)) = dots.next() {
            return &host[third + 1..];
        }
        return host;
    }
    &host[second + 1..]
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

fn headers(
    ex: &mut Ex,
    msg: &mail_parser::Message<'_>,
    subject_out: &mut String,
    from_domain_out: &mut String,
    from_local_out: &mut String,
) {
    // Subject (decoded, RFC 2047).
    match msg.subject() {
        Some(s) if !s.trim().is_empty() => {
            let s = cut_str(s, MAX_HEADER_VALUE);
            ex.stats.header_bytes += s.len();
            subject_out.push_str(s);
        }
        _ => ex.flag(H::SubjectMissing, || "no Subject".into()),
    }
    // From: display name words, domain, local part shape.
    let from = msg.from().and_then(|a| a.first());
    match from.and_then(|a| a.address()) {
        Some(addr) if addr.contains('@') => {
            let addr = cut_str(addr, 256).to_ascii_lowercase();
            let domain = domain_of(&addr).to_owned();
            let local = addr
                .rsplit_once('@')
                .map(|(l, _)| l)
                .unwrap_or("")
                .to_owned();
            ex.aux_token("from-domain:", registrable(&domain));
            if let Some((_, tld)) = domain.rsplit_once('.') {
                ex.aux_token("from-tld:", tld);
            }
            ex.aux_token("from-local-shape:", &shape(&local, 32));
            if local.bytes().filter(u8::is_ascii_digit).count() >= 3 {
                ex.flag(H::FromLocalDigits, || addr.clone());
            }
            if consonant_run(&local) >= 5 {
                ex.flag(H::FromLocalRandom, || addr.clone());
            }
            if hs::FREEMAIL.contains(&registrable(&domain)) || hs::FREEMAIL.contains(&&*domain) {
                ex.flag(H::FromFreemail, || domain.clone());
            }
            *from_domain_out = domain;
            *from_local_out = local;
        }
        _ => ex.flag(H::FromMissing, || "no From address".into()),
    }
    match from.and_then(|a| a.name()) {
        Some(name) if !name.trim().is_empty() => {
            let name = cut_str(name, 256);
            ex.stats.header_bytes += name.len();
            for w in words(name).take(8) {
                let w = w.to_lowercase();
                ex.aux_token("from-name:", &w);
            }
            let letters = name.chars().filter(|c| c.is_alphabetic()).count();
            let caps = name.chars().filter(|c| c.is_uppercase()).count();
            if name.contains(['!', '$']) || (letters >= 6 && caps == letters) {
                ex.flag(H::FromNameShouting, || name.to_owned());
            }
            if name.contains('@') {
                ex.flag(H::FromNameAddress, || name.to_owned());
            }
            // A display name holding an address of another domain ("service@bank.example"
            // <x@elsewhere.example>): the reader sees the name.
            if let Some(at) = name.find('@') {
                let tail = &name[at + 1..];
                let dom: String = tail
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if dom.contains('.')
                    && !from_domain_out.is_empty()
                    && registrable(&dom) != registrable(from_domain_out)
                {
                    let fd = from_domain_out.clone();
                    ex.flag(H::FromNameOtherAddress, || {
                        format!("display name shows {dom}, the address is at {fd}")
                    });
                }
            }
        }
        _ => ex.flag(H::FromNoName, || "From has no display name".into()),
    }
    // Reply-To at another domain.
    if let Some(rt) = msg
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
    {
        let rd = domain_of(rt).to_ascii_lowercase();
        if !rd.is_empty()
            && !from_domain_out.is_empty()
            && registrable(&rd) != registrable(from_domain_out)
        {
            let fd = from_domain_out.clone();
            ex.flag(H::ReplyToOther, || {
                format!("Reply-To at {rd}, From at {fd}")
            });
        }
    }
    // To: only whether there is one (collectors rewrote the addresses).
    match header(ex, msg, "To") {
        None => ex.flag(H::ToMissing, || "no To".into()),
        Some(v) if v.to_ascii_lowercase().contains("undisclosed") || v.is_empty() => {
            ex.flag(H::ToMissing, || format!("To: {v}"))
        }
        Some(_) => {}
    }
    // Date.
    match header(ex, msg, "Date") {
        None => ex.flag(H::DateMissing, || "no Date".into()),
        Some(raw) => {
            let raw = raw.to_owned();
            ex.aux_token("date-shape:", &shape(&raw, 48));
            let plausible = msg.date().is_some_and(|d| {
                d.is_valid() && (1990..=2100).contains(&d.year) && d.tz_hour <= 14
            });
            if !plausible {
                ex.flag(H::DateMalformed, || format!("Date: {raw}"));
            } else if let Some(why) = date_oddity(&raw) {
                ex.flag(H::DateOdd, || format!("Date: {raw} ({why})"));
            }
        }
    }
    // Message-ID (RFC 5322 §3.6.4: "<" id-left "@" id-right ">").
    match header(ex, msg, "Message-ID") {
        None => ex.flag(H::MsgIdMissing, || "no Message-ID".into()),
        Some(raw) => {
            let raw = raw.to_owned();
            let inner = raw.strip_prefix('<').and_then(|r| r.strip_suffix('>'));
            let ok = inner.is_some_and(|i| {
                let mut parts = i.split('@');
                let (l, r) = (parts.next(), parts.next());
                parts.next().is_none()
                    && l.is_some_and(|l| !l.is_empty())
                    && r.is_some_and(|r| r.contains('.') || r.starts_with('['))
                    && !i.contains(char::is_whitespace)
            });
            if !ok {
                ex.flag(H::MsgIdMalformed, || format!("Message-ID: {raw}"));
            }
            if let Some(d) = inner.and_then(|i| i.rsplit_once('@')).map(|(_, d)| d) {
                ex.msgid_domain = d.to_ascii_lowercase();
            }
            let local = inner
                .and_then(|i| i.split('@').next())
                .unwrap_or(raw.as_str());
            ex.aux_token("message-id-shape:", &shape(local, 40));
        }
    }
    // X-Mailer / User-Agent.
    let mailer = header(ex, msg, "X-Mailer")
        .or_else(|| header(ex, msg, "User-Agent"))
        .map(str::to_owned);
    match mailer {
        None => ex.flag(H::MailerMissing, || "no X-Mailer or User-Agent".into()),
        Some(m) => {
            if looks_generated(&m) {
                ex.flag(H::MailerRandom, || format!("X-Mailer: {m}"));
            }
            let lower = m.to_ascii_lowercase();
            for w in words(&lower).take(3) {
                let w = w.to_owned();
                ex.aux_token("mailer:", &w);
            }
            if let Some(b) = hs::BULK_MAILERS.iter().find(|b| lower.contains(*b)) {
                ex.flag(H::MailerBulk, || format!("X-Mailer: {m}"));
                ex.bulk_evidence
                    .push(format!("mass mailer {b:?} in X-Mailer"));
            }
        }
    }
    // Bulk traits.
    if let Some(v) = header(ex, msg, "List-Unsubscribe") {
        let v = v.to_owned();
        ex.flag(H::ListUnsubscribe, || format!("List-Unsubscribe: {v}"));
        ex.bulk_evidence.push("List-Unsubscribe".into());
    }
    if let Some(v) = header(ex, msg, "List-Id") {
        let v = v.to_owned();
        ex.flag(H::ListId, || format!("List-Id: {v}"));
    }
    if let Some(v) = header(ex, msg, "Precedence") {
        let v = v.to_ascii_lowercase();
        if matches!(v.as_str(), "bulk" | "junk" | "list") {
            ex.flag(H::PrecedenceBulk, || format!("Precedence: {v}"));
            ex.bulk_evidence.push(format!("Precedence: {v}"));
        }
    }
    // Header fields whose presence (or small value) says something of the sending program.
    for name in [
        "In-Reply-To",
        "References",
        "X-Priority",
        "X-MSMail-Priority",
        "Importance",
        "Organization",
        "X-MimeOLE",
        "Disposition-Notification-To",
        "Content-Transfer-Encoding",
    ] {
        if let Some(v) = header(ex, msg, name) {
            if matches!(name, "In-Reply-To" | "References") {
                ex.threaded = true;
            }
            let lname = name.to_ascii_lowercase();
            let v = if matches!(name, "In-Reply-To" | "References" | "Organization") {
                String::new()
            } else {
                cut(&v.to_ascii_lowercase(), 24)
            };
            ex.aux_token("has:", &format!("{lname}={v}"));
        }
    }
    // MIME structure.
    let root_ct = msg.root_part().content_type();
    if let Some(ct) = root_ct {
        let t = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        ex.aux_token("content-type:", &t);
        if msg.header_raw("MIME-Version").is_none() && t.starts_with("multipart/") {
            ex.flag(H::MimeVersionMissing, || {
                format!("{t} without MIME-Version")
            });
        }
        if t == "multipart/report"
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
        {
            ex.flag(H::Bounce, || {
                "multipart/report; report-type=delivery-status".into()
            });
        }
    }
    ex.stats.header_bytes += subject_out.len();
}

/// A token a program generated to be unique (`WA9c2D478J2W9yTmQNRm`): one word of ten or more
/// letters and digits mixing both and both cases. Names of mail programs have spaces, dots or
/// slashes between a name and a version; words are not in mixed case with digits.
fn looks_generated(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().filter(|c| c.is_ascii_uppercase()).count() >= 2
}

/// The longest run of consonants (ASCII letters other than a, e, i, o, u, y) in `s`:
/// generated addresses (`kxqzvbt@…`) have long ones, names and words rarely more than four.
fn consonant_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in s.bytes() {
        if b.is_ascii_alphabetic() && !b"aeiouyAEIOUY".contains(&b) {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// What is odd about a Date that parses (RFC 5322 §3.3 and the obsolete forms of §4.3): a
/// weekday that is not the date's, a 2-digit year, no zone or a zone by a name RFC 5322 does
/// not know. Mail programs write the current date correctly; mass mailers that forge or
/// hand-build it often do not. `None` when nothing is odd or the shape is not recognised.
fn date_oddity(raw: &str) -> Option<&'static str> {
    // Comments ("(EDT)") out; the header value is at most MAX_HEADER_VALUE bytes.
    let mut text = String::with_capacity(raw.len());
    let mut depth = 0usize;
    for c in raw.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => text.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let mut t = text.split_whitespace().peekable();
    let weekday = match t.peek() {
        Some(w) if w.bytes().all(|b| b.is_ascii_alphabetic()) => t.next(),
        _ => None,
    };
    let day: u32 = t.next()?.parse().ok()?;
    let month = t.next()?.to_ascii_lowercase();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| month.starts_with(m))? as u32
        + 1;
    let year_s = t.next()?;
    let mut year: i64 = year_s.parse().ok()?;
    let time = t.next()?;
    if !time.contains(':') {
        return None;
    }
    let zone = t.next();
    if year_s.len() < 4 {
        return Some("a 2-digit year");
    }
    match zone {
        None => return Some("no time zone"),
        Some(z) if z.starts_with(['+', '-']) => {
            let digits = &z[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Some("a malformed time zone");
            }
            let minutes = &digits[2..];
            if !matches!(minutes, "00" | "30" | "45") {
                return Some("a time zone of odd minutes");
            }
        }
        Some(z) => {
            let known = [
                "ut", "gmt", "z", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt",
            ];
            if !known.contains(&z.to_ascii_lowercase().as_str()) {
                return Some("a time zone by name");
            }
        }
    }
    if let Some(w) = weekday {
        // Sakamoto's day of the week (0 = Sunday).
        if !(1..=31).contains(&day) || !(1583..=9999).contains(&year) {
            return None;
        }
        const T: [i64; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
        if month < 3 {
            year -= 1;
        }
        let dow =
            (year + year / 4 - year / 100 + year / 400 + T[month as usize - 1] + i64::from(day))
                .rem_euclid(7) as usize;
        let names = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        if !w.to_ascii_lowercase().starts_with(names[dow]) {
            return Some("the weekday is not the date's");
        }
    }
    None
}

/// Words of a text: runs of alphanumerics (and `'`, `$`), at most 32 bytes each.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '$'))
        .filter(|w| w.len() >= 2)
        .map(|w| cut_str(w, 32))
}

fn body(ex: &mut Ex, msg: &mail_parser::Message<'_>, depth: usize) {
    for part in &msg.parts {
        if ex.stats.parts >= MAX_PARTS {
            return;
        }
        ex.stats.parts += 1;
        let ct = part.content_type();
        let subtype = ct
            .and_then(|c| c.subtype())
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(cs) = ct.and_then(|c| c.attribute("charset")) {
            let cs = cs.to_ascii_lowercase();
            ex.aux_token("charset:", &cs);
        }
        let name = part.attachment_name();
        // A text part with a file name that asks to be shown inline (RFC 2183 §2.1) is shown
        // as the message's text by mail programs: read it as text (spam names its only part
        // to slip past filters that skip attachments).
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let attached = name.is_some() && !inline;
        let declared_non_latin = ct.and_then(|c| c.attribute("charset")).is_some_and(|cs| {
            hs::NON_LATIN_CHARSETS
                .iter()
                .any(|n| cs.eq_ignore_ascii_case(n))
        });
        let base64 = part
            .content_transfer_encoding()
            .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
        match &part.body {
            PartType::Text(text) => {
                if subtype == "rfc822-headers" || subtype == "delivery-status" {
                    ex.flag(H::Bounce, || format!("a text/{subtype} part"));
                    find_original_id(ex, text);
                } else if !attached {
                    ex.plain_parts += 1;
                    if declared_non_latin && text.len() >= 100 && text.is_ascii() {
                        ex.flag(H::CharsetUnused, || {
                            format!("{} bytes of ASCII text declared non-Latin", text.len())
                        });
                    }
                    if base64 {
                        ex.flag(H::TextBase64, || "plain text in base64".into());
                    }
                    // RFC 2045 §5.2: without a charset parameter the text is US-ASCII.
                    let no_charset = ct.is_none_or(|c| c.attribute("charset").is_none());
                    if no_charset && text.bytes().any(|b| b >= 0x80) {
                        ex.flag(H::CharsetMismatch, || "8-bit text, no charset".into());
                    }
                    let t = cut_str(text, MAX_TEXT_BYTES);
                    text_urls(ex, t);
                    quoted_and_signature(ex, t);
                    ex.push_text(t);
                    ex.separate();
                } else {
                    attachment(ex, name, ct.map(|c| c.ctype()).unwrap_or("text"), &subtype);
                }
            }
            PartType::Html(html) => {
                if attached {
                    attachment(ex, name, "text", "html");
                    continue;
                }
                ex.html_parts += 1;
                if base64 {
                    ex.flag(H::HtmlBase64, || "HTML body in base64".into());
                }
                if declared_non_latin && html.len() >= 100 && html.is_ascii() {
                    ex.flag(H::CharsetUnused, || {
                        format!("{} bytes of ASCII HTML declared non-Latin", html.len())
                    });
                }
                let room = MAX_HTML_BYTES.saturating_sub(ex.stats.html_bytes);
                let h = cut_str(html, room);
                ex.stats.html_bytes += h.len();
                scan_html(ex, h);
                ex.separate();
            }
            PartType::Binary(_) | PartType::InlineBinary(_) => {
                let ctype = ct
                    .map(|c| c.ctype().to_ascii_lowercase())
                    .unwrap_or_default();
                if ctype == "message" && subtype == "delivery-status" {
                    ex.flag(H::Bounce, || "a message/delivery-status part".into());
                } else {
                    attachment(ex, name, &ctype, &subtype);
                }
            }
            PartType::Message(inner) => {
                if ex.heur[H::Bounce as usize] > 0.0 && ex.bounce_id.is_none() {
                    ex.bounce_id = inner.message_id().map(|id| cut(id, 256));
                }
                if depth < 2 {
                    body(ex, inner, depth + 1);
                }
            }
            PartType::Multipart(_) => {}
        }
    }
}

/// The original message's Message-ID in a bounce's returned headers.
fn find_original_id(ex: &mut Ex, text: &str) {
    if ex.bounce_id.is_some() {
        return;
    }
    let hay = cut_str(text, 64 * 1024);
    let finder = memchr::memmem::Finder::new(b"message-id:");
    let lower = hay.to_ascii_lowercase();
    if let Some(at) = finder.find(lower.as_bytes()) {
        let rest = hay[at + 11..].trim_start();
        let id: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(256)
            .collect();
        let id = id.trim_start_matches('<').trim_end_matches('>').to_owned();
        if !id.is_empty() {
            ex.bounce_id = Some(id);
        }
    }
}

fn attachment(ex: &mut Ex, name: Option<&str>, ctype: &str, subtype: &str) {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    ex.aux_token(
        "attachment:",
        &format!("{ctype}/{subtype}.{}", cut(&ext, 8)),
    );
    let shown = name.unwrap_or("(no name)").to_owned();
    if matches!(
        ext.as_str(),
        "exe"
            | "scr"
            | "pif"
            | "bat"
            | "com"
            | "cmd"
            | "vbs"
            | "js"
            | "jse"
            | "wsf"
            | "hta"
            | "lnk"
    ) {
        ex.flag(H::AttachExecutable, || shown.clone());
    }
    if matches!(ext.as_str(), "zip" | "rar" | "7z" | "gz" | "tar" | "iso") {
        ex.flag(H::AttachArchive, || shown.clone());
    }
    if ctype.eq_ignore_ascii_case("image") {
        ex.flag(H::AttachImage, || shown.clone());
    }
}

fn quoted_and_signature(ex: &mut Ex, text: &str) {
    let mut quoted = 0usize;
    for line in text.lines().take(2000) {
        if line.starts_with('>') {
            quoted += 1;
        }
        if line == "-- " || line == "--" {
            ex.flag(H::TextSignature, || "signature separator".into());
        }
    }
    if quoted >= 2 {
        ex.set(H::TextQuoted, hs::squash(quoted, 10), || {
            format!("{quoted} quoted lines")
        });
    }
}

/// URLs written in plain text (`http://`, `https://`, `www.`).
fn text_urls(ex: &mut Ex, text: &str) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && ex.stats.urls < MAX_URLS {
        let rest = &bytes[i..];
        let Some(at) = memchr::memchr2(b'h', b'w', rest) else {
            break;
        };
        let s = i + at;
        let tail = &bytes[s..];
        let starts = tail.len() > 8
            && (tail[..7].eq_ignore_ascii_case(b"http://")
                || tail[..8].eq_ignore_ascii_case(b"https://")
                || tail[..4].eq_ignore_ascii_case(b"www."));
        if starts && (s == 0 || !bytes[s - 1].is_ascii_alphanumeric()) {
            let end = tail
                .iter()
                .position(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'<' | b'>' | b'\''))
                .unwrap_or(tail.len());
            if let Some(u) = text.get(s..s + end) {
                url(ex, u, None);
            }
            i = s + end.max(1);
        } else {
            i = s + 1;
        }
    }
}

/// One URL: its host and port, disguises, and a token of its registrable domain.
/// `shown` is the anchor text a reader sees for it.
fn url(ex: &mut Ex, u: &str, shown: Option<&str>) {
    if ex.stats.urls >= MAX_URLS {
        return;
    }
    ex.stats.urls += 1;
    ex.url_count += 1;
    let u = cut_str(u.trim(), 2048);
    let lower = u.to_ascii_lowercase();
    let after_scheme = if let Some(r) = lower.strip_prefix("http://") {
        r
    } else if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if lower.starts_with("www.") {
        lower.as_str()
    } else {
        // mailto:, cid:, javascript: — only a token of the scheme.
        if let Some((scheme, _)) = lower.split_once(':')
            && scheme.len() <= 10
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        {
            if scheme == "javascript" {
                ex.flag(H::HtmlScript, || cut(u, 80));
            }
            ex.aux_token("url-scheme:", scheme);
        }
        return;
    };
    let authority_end = after_scheme
        .find(['/', '?', '#', '\\'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    let path = &after_scheme[authority_end..];
    let host_port = match authority.rsplit_once('@') {
        Some((_, hp)) => {
            ex.flag(H::UrlUserinfo, || cut(u, 120));
            hp
        }
        None => authority,
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (host_port, None),
    };
    let host = host.trim_end_matches('.');
    if let Some(p) = port
        && p != "80"
        && p != "443"
    {
        ex.flag(H::UrlOtherPort, || cut(u, 120));
    }
    if host.is_empty() {
        return;
    }
    let is_dotted_ip = host.split('.').count() == 4
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    let is_int_ip = host.bytes().all(|b| b.is_ascii_digit())
        || (host.starts_with("0x") && host[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if is_dotted_ip || host.starts_with('[') {
        ex.flag(H::UrlNumericIp, || cut(u, 120));
        ex.phish_evidence_once(|| format!("link to an IP address: {}", cut(u, 80)));
    }
    if is_int_ip || host.contains('%') {
        ex.flag(H::UrlObfuscated, || cut(u, 120));
    }
    if host.contains("xn--") || !host.is_ascii() {
        ex.flag(H::UrlPunycode, || host.to_owned());
    }
    let tld = host.rsplit('.').next().unwrap_or("");
    if tld == "biz" || tld == "info" {
        ex.flag(H::UrlBizInfo, || cut(u, 120));
    }
    if hs::RISKY_TLDS.contains(&tld) {
        ex.flag(H::UrlRiskyTld, || host.to_owned());
    }
    let reg = registrable(host).to_owned();
    if hs::SHORTENERS.contains(&reg.as_str()) || hs::SHORTENERS.contains(&host) {
        ex.flag(H::UrlShortener, || cut(u, 120));
    }
    if hs::LOGIN_PATH.iter().any(|w| path.contains(w)) {
        ex.flag(H::UrlLoginPath, || cut(u, 120));
    }
    if path.contains("unsubscribe") || path.contains("optout") || path.contains("opt-out") {
        ex.flag(H::UrlUnsubscribe, || cut(u, 120));
    }
    if let Some(shown) = shown {
        // The text a reader sees names a domain; the link goes to another one.
        let t = shown.trim().trim_end_matches('/').to_ascii_lowercase();
        let t = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
            .unwrap_or(&t);
        let shown_host = t.split(['/', '?', '#']).next().unwrap_or("");
        let looks_like_domain = shown_host.contains('.')
            && !shown_host.contains(' ')
            && shown_host
                .rsplit('.')
                .next()
                .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()));
        if looks_like_domain && registrable(shown_host) != reg && !is_dotted_ip {
            let sh = shown_host.to_owned();
            ex.flag(H::UrlAnchorMismatch, || {
                format!("text shows {sh}, link goes to {host}")
            });
            ex.phish_evidence_once(|| format!("link text shows {sh}, link goes to {host}"));
        } else if looks_like_domain && is_dotted_ip {
            let sh = shown_host.to_owned();
            ex.flag(H::UrlAnchorMismatch, || {
                format!("text shows {sh}, link goes to {host}")
            });
            ex.phish_evidence_once(|| format!("link text shows {sh}, link goes to {host}"));
        }
    }
    if !ex.url_domains.contains(&reg) && ex.url_domains.len() < 64 {
        ex.url_domains.push(reg.clone());
        ex.aux_token("url-domain:", &reg);
        ex.aux_token("url-tld:", tld);
    }
}

impl Ex {
    /// Notes a text colour (black and white are the page's own, not emphasis).
    fn colour(&mut self, c: &str) {
        let c = norm_color(c);
        if c.is_empty() || c == "000000" || c == "ffffff" || self.colours.len() >= 8 {
            return;
        }
        if !self.colours.contains(&c) {
            self.colours.push(c);
        }
    }

    fn phish_evidence_once(&mut self, e: impl FnOnce() -> String) {
        if self.phish_evidence.len() < 8 {
            let e = e();
            if !self.phish_evidence.contains(&e) {
                self.phish_evidence.push(e);
            }
        }
    }
}

/// An HTML element's attributes we read.
#[derive(Default)]
struct Attrs<'a> {
    href: Option<&'a str>,
    src: Option<&'a str>,
    action: Option<&'a str>,
    width: Option<&'a str>,
    height: Option<&'a str>,
    style: Option<&'a str>,
    color: Option<&'a str>,
    bgcolor: Option<&'a str>,
    size: Option<&'a str>,
    kind: Option<&'a str>,
    http_equiv: Option<&'a str>,
    event_handler: bool,
}

fn parse_attrs(s: &str) -> Attrs<'_> {
    let mut a = Attrs::default();
    let b = s.as_bytes();
    let mut i = 0;
    let mut count = 0;
    while i < b.len() && count < 64 {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = &s[ns..i];
        if name.is_empty() {
            i += 1;
            continue;
        }
        count += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = memchr::memchr(q, &b[vs..])
                    .map(|p| vs + p)
                    .unwrap_or(b.len());
                value = s.get(vs..ve).unwrap_or("");
                i = ve + 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s.get(vs..i).unwrap_or("");
            }
        }
        let n = name.as_bytes();
        if n.eq_ignore_ascii_case(b"href") {
            a.href = Some(value);
        } else if n.eq_ignore_ascii_case(b"src") {
            a.src = Some(value);
        } else if n.eq_ignore_ascii_case(b"action") {
            a.action = Some(value);
        } else if n.eq_ignore_ascii_case(b"width") {
            a.width = Some(value);
        } else if n.eq_ignore_ascii_case(b"height") {
            a.height = Some(value);
        } else if n.eq_ignore_ascii_case(b"style") {
            a.style = Some(value);
        } else if n.eq_ignore_ascii_case(b"color") {
            a.color = Some(value);
        } else if n.eq_ignore_ascii_case(b"bgcolor") {
            a.bgcolor = Some(value);
        } else if n.eq_ignore_ascii_case(b"size") {
            a.size = Some(value);
        } else if n.eq_ignore_ascii_case(b"type") {
            a.kind = Some(value);
        } else if n.eq_ignore_ascii_case(b"http-equiv") {
            a.http_equiv = Some(value);
        } else if n.len() > 2 && n[..2].eq_ignore_ascii_case(b"on") {
            a.event_handler = true;
        }
    }
    a
}

fn norm_color(c: &str) -> String {
    let c = c.trim().trim_start_matches('#').to_ascii_lowercase();
    match c.as_str() {
        "white" | "fff" => "ffffff".into(),
        "black" | "000" => "000000".into(),
        _ => c,
    }
}

/// The style's text colour, hidden-ness and tiny font.
fn style_facts(style: &str) -> (Option<String>, bool, bool) {
    let s: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    let hidden = s.contains("display:none")
        || s.contains("visibility:hidden")
        || s.contains("font-size:0;")
        || s.ends_with("font-size:0")
        || s.contains("font-size:0px")
        || s.contains("font-size:0pt");
    let tiny = s.contains("font-size:1px") || s.contains("font-size:2px");
    let color = s
        .split(';')
        .find_map(|d| d.strip_prefix("color:"))
        .map(norm_color);
    (color, hidden, tiny)
}

/// Finds `</name` (ASCII case-insensitive) from `from`; linear.
fn find_close(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr::memchr(b'<', b.get(i..)?) {
        let at = i + p;
        let rest = &b[at + 1..];
        if rest.len() > name.len()
            && rest[0] == b'/'
            && rest[1..=name.len()].eq_ignore_ascii_case(name)
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// One pass over an HTML body: visible text into the document; tags, links, images, hidden
/// text, entities and comments into heuristics. Linear: every byte is looked at a bounded
/// number of times (each search starts where the last ended).
fn scan_html(ex: &mut Ex, html: &str) {
    let b = html.as_bytes();
    ex.html_raw += b.len();
    let mut i = 0usize;
    let mut bg: Option<String> = None;
    // The open <a>: its href and where its text starts in the document.
    let mut anchor: Option<(String, usize)> = None;
    let mut anchors_seen = 0usize;
    while i < b.len() {
        let next = memchr::memchr(b'<', &b[i..])
            .map(|p| i + p)
            .unwrap_or(b.len());
        if next > i {
            let segment = &html[i..next];
            html_text(ex, segment);
        }
        if next >= b.len() {
            break;
        }
        i = next;
        // Comments: `<!-- … -->`; one between two letters splits a word.
        if b[i..].starts_with(b"<!--") {
            let end = memchr::memmem::find(&b[i + 4..], b"-->")
                .map(|p| i + 4 + p + 3)
                .unwrap_or(b.len());
            let before = i > 0 && b[i - 1].is_ascii_alphanumeric();
            let after = end < b.len() && b[end].is_ascii_alphanumeric();
            if before && after {
                ex.comment_splits += 1;
            }
            i = end;
            continue;
        }
        let Some(close) = memchr::memchr(b'>', &b[i + 1..]).map(|p| i + 1 + p) else {
            break;
        };
        let inner = &html[i + 1..close];
        i = close + 1;
        let closing = inner.starts_with('/');
        let name_src = inner.trim_start_matches('/');
        let name_len = name_src
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let name = name_src[..name_len].to_ascii_lowercase();
        let attrs = parse_attrs(&name_src[name_len..]);
        if closing {
            if name == "a"
                && let Some((href, start)) = anchor.take()
            {
                let shown = ex.doc.get(start..).unwrap_or("").to_owned();
                url(ex, &href, Some(&shown));
            }
            if matches!(name.as_str(), "p" | "div" | "td" | "tr" | "li" | "table") {
                ex.separate();
            }
            continue;
        }
        if attrs.event_handler {
            ex.flag(H::HtmlScript, || format!("<{name} on…=>"));
        }
        let mut hidden = false;
        if let Some(style) = attrs.style {
            let (color, h, tiny) = style_facts(style);
            hidden |= h;
            if tiny {
                ex.flag(H::HtmlTinyFont, || cut(style, 80));
            }
            if style_big_font(style) {
                ex.flag(H::HtmlBigFont, || cut(style, 80));
            }
            if let Some(c) = &color {
                ex.colour(c);
            }
            if let (Some(c), Some(bgc)) = (&color, &bg)
                && c == bgc
            {
                hidden = true;
            }
            if let Some(bgc) = style_bg(style) {
                bg = Some(bgc);
            }
        }
        if let Some(c) = attrs.bgcolor {
            bg = Some(norm_color(c));
        }
        match name.as_str() {
            "script" => {
                ex.flag(H::HtmlScript, || "<script>".into());
                i = find_close(b, i, b"script").unwrap_or(b.len());
                continue;
            }
            "style" => {
                i = find_close(b, i, b"style").unwrap_or(b.len());
                continue;
            }
            "title" => {
                i = find_close(b, i, b"title").unwrap_or(b.len());
                continue;
            }
            "iframe" | "frame" | "frameset" => {
                ex.flag(H::HtmlFrame, || format!("<{name}>"));
            }
            "object" | "applet" => ex.flag(H::HtmlObject, || format!("<{name}>")),
            "embed" => ex.flag(H::HtmlEmbed, || "<embed>".into()),
            "form" => {
                let act = attrs.action.unwrap_or("").to_owned();
                ex.flag(H::HtmlForm, || {
                    format!("<form action=\"{}\">", cut(&act, 80))
                });
                if !act.is_empty() {
                    url(ex, &act, None);
                }
            }
            "input"
                if attrs
                    .kind
                    .is_some_and(|k| k.eq_ignore_ascii_case("password")) =>
            {
                ex.password_input = true;
            }
            "meta"
                if attrs
                    .http_equiv
                    .is_some_and(|h| h.eq_ignore_ascii_case("refresh")) =>
            {
                ex.flag(H::HtmlMetaRefresh, || "<meta http-equiv=refresh>".into());
            }
            "img" => {
                ex.images += 1;
                if let Some(src) = attrs.src {
                    let remote = src.len() > 7
                        && (src
                            .get(..7)
                            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
                            || src
                                .get(..8)
                                .is_some_and(|s| s.eq_ignore_ascii_case("https://")));
                    if remote {
                        ex.remote_images += 1;
                        let src = src.to_owned();
                        ex.flag(H::HtmlRemoteImage, || {
                            format!("<img src=\"{}\">", cut(&src, 100))
                        });
                        let px = |v: Option<&str>| {
                            v.and_then(|v| v.trim().trim_end_matches("px").parse::<u32>().ok())
                        };
                        if let (Some(w), Some(h)) = (px(attrs.width), px(attrs.height))
                            && w <= 2
                            && h <= 2
                        {
                            ex.flag(H::HtmlWebBug, || {
                                format!("<img src=\"{}\" width={w} height={h}>", cut(&src, 100))
                            });
                            ex.bulk_evidence.push("a tracking pixel".into());
                        }
                        url(ex, &src, None);
                    }
                }
            }
            "a" => {
                if let Some(href) = attrs.href {
                    anchors_seen += 1;
                    if anchors_seen <= MAX_URLS {
                        anchor = Some((href.to_owned(), ex.doc.len()));
                    }
                }
            }
            "font" => {
                if let Some(size) = attrs.size {
                    let s = size.trim();
                    if s == "1" || s.starts_with('-') || s == "0" {
                        ex.flag(H::HtmlTinyFont, || format!("<font size={s}>"));
                    }
                    // HTML 4.01 §15.2.2: sizes 1-7, 3 the default; +2 and up, or 5 and up,
                    // is display type, which mail between people does not use.
                    let big = match s.strip_prefix('+') {
                        Some(rel) => rel.parse::<u32>().is_ok_and(|r| r >= 2),
                        None => s.parse::<u32>().is_ok_and(|v| v >= 5),
                    };
                    if big {
                        ex.flag(H::HtmlBigFont, || format!("<font size={s}>"));
                    }
                }
                if let Some(c) = attrs.color {
                    ex.colour(c);
                }
                if let (Some(c), Some(bgc)) = (attrs.color, &bg)
                    && norm_color(c) == *bgc
                {
                    hidden = true;
                }
            }
            "br" | "p" | "div" | "tr" | "td" | "li" | "table" | "hr" | "h1" | "h2" | "h3" => {
                ex.separate();
            }
            _ => {}
        }
        if hidden && !name.is_empty() && !matches!(name.as_str(), "br" | "img" | "hr" | "input") {
            // Skip to the element's end: text the reader never sees (hidden to poison a
            // statistical filter) is not the message's text.
            let end = find_close(b, i, name.as_bytes()).unwrap_or(b.len());
            ex.hidden_bytes += end - i;
            let shown = cut(&html[i..end], 60);
            ex.flag(H::HtmlInvisibleText, || format!("hidden <{name}>: {shown}"));
            i = end;
        }
    }
    if let Some((href, start)) = anchor.take() {
        let shown = ex.doc.get(start..).unwrap_or("").to_owned();
        url(ex, &href, Some(&shown));
    }
}

/// A font size of 24 px / 18 pt or more in a style (display type).
fn style_big_font(style: &str) -> bool {
    let s: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    s.split(';').any(|d| {
        let Some(v) = d.strip_prefix("font-size:") else {
            return false;
        };
        let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
        let unit = &v[digits.len()..];
        let n: u32 = digits.parse().unwrap_or(0);
        (unit.starts_with("px") && n >= 24) || (unit.starts_with("pt") && n >= 18)
    })
}

fn style_bg(style: &str) -> Option<String> {
    let s: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    s.split(';')
        .find_map(|d| {
            d.strip_prefix("background-color:")
                .or_else(|| d.strip_prefix("background:"))
        })
        .map(norm_color)
}

/// Text between tags: entities decoded (and counted) into the document.
fn html_text(ex: &mut Ex, segment: &str) {
    ex.html_visible += segment.len();
    if !segment.contains('&') {
        ex.push_text(segment);
        return;
    }
    let mut out = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp + 1..];
        let semi = tail.bytes().take(10).position(|c| c == b';');
        match semi {
            Some(end) => {
                let ent = &tail[..end];
                let decoded = if let Some(num) = ent.strip_prefix('#') {
                    let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        num.parse::<u32>().ok()
                    };
                    let c = code.and_then(char::from_u32);
                    if c.is_some_and(|c| c.is_ascii_alphanumeric()) {
                        ex.entities_alnum += 1;
                    }
                    c
                } else {
                    match ent.to_ascii_lowercase().as_str() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        "nbsp" => Some(' '),
                        "copy" => Some('©'),
                        "reg" => Some('®'),
                        _ => None,
                    }
                };
                match decoded {
                    Some(c) => out.push(c),
                    None => {
                        out.push('&');
                        out.push_str(ent);
                        out.push(';');
                    }
                }
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    ex.push_text(&out);
}

/// Word tokens, byte 4-grams, phrases and the text-wide heuristics, then the verdict-side
/// summaries (BCL, phish level, language) and the ASF hits.
fn finish(mut ex: Ex, subject: &str, from_domain: &str, from_local: &str) -> Features {
    let bits = ex.bits;
    // Subject words and shape.
    if !subject.is_empty() {
        let letters = subject.chars().filter(|c| c.is_alphabetic()).count();
        let caps = subject.chars().filter(|c| c.is_uppercase()).count();
        if letters >= 8 && caps * 10 >= letters * 6 {
            ex.flag(H::SubjectCaps, || subject.to_owned());
        }
        if subject.contains('!') || subject.contains('$') {
            ex.flag(H::SubjectPunct, || subject.to_owned());
        }
        let lower = subject.trim_start().to_ascii_lowercase();
        if lower.starts_with("re:") || lower.starts_with("fwd:") || lower.starts_with("fw:") {
            ex.flag(H::SubjectReply, || subject.to_owned());
        }
        // RFC 5322 §3.6.4: a reply carries In-Reply-To/References; "Re:" without them is a
        // reply in the subject only (mass mail posing as a conversation).
        if lower.starts_with("re:") && !ex.threaded {
            ex.flag(H::SubjectFakeReply, || subject.to_owned());
        }
        let trimmed = subject.trim_end();
        if let Some((head, last)) = trimmed.rsplit_once(' ') {
            let spaced = head.ends_with("  ");
            let core = last.trim_matches(|c: char| matches!(c, '[' | ']' | '(' | ')' | '#'));
            let digits = core.bytes().filter(u8::is_ascii_digit).count();
            let idlike = core.len() >= 4
                && core.bytes().all(|b| b.is_ascii_alphanumeric())
                && (digits == core.len()
                    || (digits > 0 && core.len() >= 5 && last != core)
                    || looks_generated(core));
            if spaced || idlike {
                ex.flag(H::SubjectTrailingId, || subject.to_owned());
            }
        }
        let subj_lower = subject.to_lowercase();
        for w in words(&subj_lower).take(64) {
            if ex.stats.tokens >= MAX_TOKENS {
                break;
            }
            ex.stats.tokens += 1;
            let start = ex.aux.len();
            ex.aux.push_str("subject:");
            ex.aux.push_str(w);
            let h = fnv(NS_SUBJECT, w.as_bytes());
            let len = (ex.aux.len() - start) as u16;
            ex.hashed.push((
                bucket(h, bits),
                Origin {
                    aux: true,
                    ngram: false,
                    start: start as u32,
                    len,
                },
            ));
        }
    }
    let doc = std::mem::take(&mut ex.doc);
    // Byte 4-grams of the first NGRAM_BYTES of the text.
    let nb = doc.as_bytes();
    let n_end = nb.len().min(NGRAM_BYTES);
    // Room for the 4-grams and about one word in five bytes, grown once rather than doubled.
    ex.hashed.reserve(n_end + doc.len().min(MAX_TOKENS * 5) / 5);
    if n_end >= 4 {
        for s in 0..=n_end - 4 {
            let g = u32::from_le_bytes([nb[s], nb[s + 1], nb[s + 2], nb[s + 3]]);
            let h = (u64::from(g) | (NS_NGRAM << 32)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            ex.hashed.push((
                bucket(h, bits),
                Origin {
                    aux: false,
                    ngram: true,
                    start: s as u32,
                    len: 4,
                },
            ));
        }
    }
    // Words of the whole text.
    let mut leet = 0usize;
    for piece in doc.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '$')) {
        // The piece's offset in the document (split yields subslices of it).
        let start = piece.as_ptr() as usize - doc.as_ptr() as usize;
        if piece.len() < 2 {
            continue;
        }
        if ex.stats.tokens >= MAX_TOKENS {
            break;
        }
        ex.stats.tokens += 1;
        let w = cut_str(piece, 32);
        if is_leet(w) {
            leet += 1;
        }
        ex.hashed.push((
            bucket(fnv(NS_WORD, w.as_bytes()), bits),
            Origin {
                aux: false,
                ngram: false,
                start: start as u32,
                len: w.len() as u16,
            },
        ));
    }
    if leet > 0 {
        ex.set(H::TextLeet, hs::squash(leet, 3), || {
            format!("{leet} words like v1agra")
        });
    }
    // Phrases (over subject and text), brands.
    let mut phrase_hits = [0usize; hs::COUNT];
    let mut brand_seen: Option<usize> = None;
    if let Some(p) = phrases() {
        for hay in [subject, doc.as_str()] {
            for m in p.ac.find_overlapping_iter(hay) {
                let h = p.group[m.pattern().as_usize()];
                phrase_hits[h as usize] += 1;
                if ex.evidence[h as usize].is_none() {
                    let shown = hay.get(m.start()..m.end()).unwrap_or("").to_owned();
                    ex.evidence[h as usize] = Some(shown);
                }
            }
            if brand_seen.is_none() {
                brand_seen = p.brands.find(hay).map(|m| m.pattern().as_usize());
            }
        }
    }
    for (h, full) in [
        (H::TextMoney, 5),
        (H::TextUrgency, 3),
        (H::TextCredential, 2),
        (H::TextSensitive, 1),
        (H::TextRemoval, 2),
        (H::TextNotSpam, 1),
        (H::MimeLeak, 1),
        (H::TextTollFree, 1),
    ] {
        let n = phrase_hits[h as usize];
        if n > 0 {
            let v = hs::squash(n, full);
            ex.heur[h as usize] = ex.heur[h as usize].max(v);
        }
    }
    // Text-wide traits.
    if ex.letters >= 40 {
        let share = ex.capitals as f32 / ex.letters as f32;
        if share > 0.25 {
            let (c, l) = (ex.capitals, ex.letters);
            ex.set(H::TextCaps, ((share - 0.25) / 0.35).min(1.0), || {
                format!("{c} of {l} letters are capitals")
            });
        }
    }
    if ex.exclamations >= 3 {
        let n = ex.exclamations;
        ex.set(H::TextExclamation, hs::squash(n, 15), || {
            format!("{n} exclamation marks")
        });
    }
    if ex.zero_width > 0 {
        let n = ex.zero_width;
        ex.set(H::TextZeroWidth, hs::squash(n, 5), || {
            format!("{n} zero-width characters")
        });
    }
    let text_len = doc.trim().len();
    if text_len < 50 {
        ex.flag(H::TextShort, || format!("{text_len} bytes of text"));
    }
    let attachments = ex.heur[H::AttachImage as usize] > 0.0
        || ex.heur[H::AttachArchive as usize] > 0.0
        || ex.heur[H::AttachExecutable as usize] > 0.0
        || ex.aux.contains("attachment:");
    if subject.trim().is_empty() && text_len == 0 && !attachments {
        ex.flag(H::TextEmpty, || "no subject, no text, no attachment".into());
    }
    if text_len < 400 && (1..=3).contains(&ex.url_count) {
        let n = ex.url_count;
        ex.flag(H::TextShortLink, || {
            format!("{text_len} bytes of text, {n} links")
        });
    }
    if ex.colours.len() >= 3 {
        let n = ex.colours.len();
        ex.set(H::HtmlFontColours, hs::squash(n - 2, 4), || {
            format!("text in {n} colours")
        });
    }
    // URLs.
    if ex.url_count > 0 {
        let n = ex.url_count;
        ex.set(H::UrlCount, hs::squash(n, 50), || format!("{n} links"));
    }
    if ex.url_domains.len() >= 5 {
        let n = ex.url_domains.len();
        ex.flag(H::UrlManyDomains, || format!("links to {n} domains"));
    }
    // HTML.
    if ex.html_parts > 0 {
        ex.flag(H::HtmlPresent, || "an HTML body".into());
        if ex.plain_parts == 0 {
            ex.flag(H::HtmlOnly, || "HTML without a text alternative".into());
        }
        if ex.images > 0 && text_len < 200 {
            let n = ex.images;
            ex.flag(H::HtmlImageOnly, || {
                format!("{n} images, {text_len} bytes of text")
            });
        }
        if ex.html_raw >= 500 {
            let ratio = ex.html_visible as f32 / ex.html_raw as f32;
            if ratio < 0.3 {
                ex.set(H::HtmlLowTextRatio, ((0.3 - ratio) / 0.3).min(1.0), || {
                    format!("{:.0} % of the HTML is text", ratio * 100.0)
                });
            }
        }
        if ex.entities_alnum >= 5 {
            let n = ex.entities_alnum;
            ex.set(H::HtmlEntitySoup, hs::squash(n, 30), || {
                format!("{n} letters written as entities")
            });
        }
        if ex.comment_splits >= 1 {
            let n = ex.comment_splits;
            ex.set(H::HtmlCommentSplit, hs::squash(n, 5), || {
                format!("{n} comments inside words")
            });
        }
    }
    if ex.stats.parts > 8 {
        let n = ex.stats.parts;
        ex.set(H::MimeManyParts, hs::squash(n - 8, 20), || {
            format!("{n} MIME parts")
        });
    }
    // A bounce by its subject and sender (RFC 3464 is the structure; many bounces are plain).
    let subj = subject.to_ascii_lowercase();
    let bounce_subject = [
        "undeliverable",
        "undelivered mail",
        "delivery status notification",
        "returned mail",
        "mail delivery failed",
        "delivery failure",
        "failure notice",
        "delivery has failed",
    ]
    .iter()
    .any(|s| subj.contains(s));
    let bounce_sender = matches!(from_local, "mailer-daemon" | "postmaster");
    if bounce_subject && (bounce_sender || ex.bounce_id.is_some()) {
        ex.flag(H::Bounce, || format!("bounce: {subject}"));
    }
    if ex.heur[H::Bounce as usize] > 0.0 && ex.bounce_id.is_none() {
        find_original_id(&mut ex, &doc);
    }
    // Who the links and the Message-ID belong to: a company's own mail links to and is
    // numbered by its own domain; spam's links go elsewhere.
    if !from_domain.is_empty() {
        let own = registrable(from_domain).to_owned();
        if !ex.url_domains.is_empty() && !ex.url_domains.contains(&own) {
            let n = ex.url_domains.len();
            ex.flag(H::UrlAllOffDomain, || {
                format!("none of {n} link domains is {own}")
            });
        }
        if !ex.msgid_domain.is_empty() && registrable(&ex.msgid_domain) == own {
            ex.flag(H::MsgIdFromDomain, || format!("Message-ID at {own}"));
        }
    }

    // BCL: bulk-mailer traits (Exchange's BCL rates the sender's complaints; here, how much
    // the message looks like mass mail). A discussion list (List-Id, footer) stays low.
    let mut points = 0u32;
    let hv = |h: H| ex.heur[h as usize] > 0.0;
    if hv(H::ListUnsubscribe) {
        points += 2;
        if !hv(H::ListId) {
            points += 1;
        }
    }
    if hv(H::UrlUnsubscribe) {
        points += 2;
    }
    if hv(H::TextRemoval) {
        points += 1;
    }
    if hv(H::HtmlWebBug) {
        points += 2;
    }
    if hv(H::MailerBulk) {
        points += 2;
    }
    if hv(H::PrecedenceBulk) {
        points += 1;
    }
    if hv(H::TextNotSpam) {
        points += 1;
    }
    if ex.remote_images >= 3 {
        points += 1;
    }
    let bcl = points.min(9) as u8;
    if hv(H::UrlUnsubscribe) {
        ex.bulk_evidence.push("an unsubscribe link".into());
    }
    if hv(H::TextRemoval) {
        ex.bulk_evidence.push("opt-out wording".into());
    }

    // Phish: asking for credentials, with disguised links or a form, or imitating a brand.
    let credential = hv(H::TextCredential) || ex.password_input;
    let mut disguises = 0;
    for h in [
        H::UrlAnchorMismatch,
        H::UrlNumericIp,
        H::UrlUserinfo,
        H::UrlPunycode,
        H::UrlObfuscated,
        H::HtmlForm,
        H::FromNameOtherAddress,
    ] {
        if hv(h) {
            disguises += 1;
        }
    }
    if hv(H::UrlLoginPath) && (hv(H::UrlNumericIp) || hv(H::UrlAnchorMismatch)) {
        disguises += 1;
    }
    if let Some(bi) = brand_seen {
        let (brand, home) = hs::BRANDS[bi];
        let links_elsewhere =
            !ex.url_domains.is_empty() && !ex.url_domains.iter().any(|d| d == home);
        let sender_elsewhere = !from_domain.is_empty() && registrable(from_domain) != home;
        if credential && links_elsewhere && sender_elsewhere {
            disguises += 1;
            ex.phish_evidence
                .push(format!("names {brand}, links and sender elsewhere"));
        }
    }
    if ex.password_input {
        ex.phish_evidence
            .push("a password field in the message".into());
    }
    let phish = if credential && disguises >= 2 {
        PhishLevel::HighConfidence
    } else if credential && disguises >= 1 {
        PhishLevel::Phish
    } else {
        PhishLevel::None
    };
    if phish != PhishLevel::None {
        if let Some(e) = ex.evidence[H::TextCredential as usize].clone() {
            ex.phish_evidence
                .insert(0, format!("asks for credentials: {e:?}"));
        }
    } else {
        ex.phish_evidence.clear();
    }

    let language = detect_language(&doc);

    // ASF hits: each ASF heuristic that fired, with its evidence, whatever its weight.
    let mut asf = Vec::new();
    for h in H::ALL {
        if let Some(option) = h.asf()
            && ex.heur[*h as usize] > 0.0
        {
            asf.push(AsfHit {
                option,
                evidence: ex.evidence[*h as usize].clone().unwrap_or_default(),
            });
        }
    }
    if let Some(id) = &ex.bounce_id
        && let Some(hit) = asf
            .iter_mut()
            .find(|a| a.option == Asf::MarkAsSpamNdrBackscatter)
    {
        hit.evidence = format!("original Message-ID <{id}> ({})", hit.evidence);
    }

    // Sorted unique buckets (a feature counts once: binary features, as TREC's best filters).
    let (buckets, origins) = sort_unique(std::mem::take(&mut ex.hashed), bits);
    let n = buckets.len();
    ex.stats.hashed_features = n;
    Features {
        heur: ex.heur,
        hashed: buckets,
        origins,
        hashed_value: hashed_value(n),
        doc,
        aux: ex.aux,
        evidence: ex.evidence,
        asf,
        bcl,
        bulk_evidence: ex.bulk_evidence,
        phish,
        phish_evidence: ex.phish_evidence,
        language,
        bounce_original_message_id: ex.bounce_id,
        stats: ex.stats,
    }
}

/// The hashed features sorted by bucket, each bucket once with the origin of its first
/// occurrence (a stable sort). Buckets are below 2^`bits` (`bucket`): a least-significant-digit
/// radix sort in two passes of half the bits each is linear, where a comparison sort of the
/// ~10,000 features of a long message was a tenth of extraction's time.
/// Each hashed feature's value: the features are binary and a message is a unit vector, so a
/// long message's words each count little and the model compares messages of any length —
/// but a message of one short line (20 features) would weigh each of its few words three
/// times as much as one of 200 features, and the model, which met almost no message that
/// short (1 % of the corpus has fewer than 110), judged "See you at 3pm." by three 4-grams
/// blown up. Spread over at least [`MIN_NORM_FEATURES`], a short message's words count as
/// much as a 200-feature message's and no more: too little text to judge says little either
/// way (docs/architecture.md, "The spam classifier").
fn hashed_value(n: usize) -> f32 {
    if n == 0 {
        0.0
    } else {
        1.0 / (n.max(MIN_NORM_FEATURES) as f32).sqrt()
    }
}

pub(crate) fn sort_unique(mut v: Vec<(u32, Origin)>, bits: u32) -> (Vec<u32>, Vec<Origin>) {
    // Below this a comparison sort beats clearing two digit histograms.
    const RADIX_FROM: usize = 1024;
    if v.len() < RADIX_FROM || bits > 24 {
        v.sort_by_key(|(b, _)| *b);
    } else {
        let low = bits / 2;
        let placeholder = Origin {
            aux: false,
            ngram: false,
            start: 0,
            len: 0,
        };
        let mut out = vec![(0u32, placeholder); v.len()];
        for (shift, width) in [(0, low), (low, bits - low)] {
            let mask = (1u32 << width) - 1;
            let mut at = vec![0usize; (1usize << width) + 1];
            for (b, _) in &v {
                at[((b >> shift) & mask) as usize + 1] += 1;
            }
            for d in 1..at.len() {
                at[d] += at[d - 1];
            }
            for item in &v {
                let d = ((item.0 >> shift) & mask) as usize;
                out[at[d]] = *item;
                at[d] += 1;
            }
            std::mem::swap(&mut v, &mut out);
        }
    }
    let mut buckets = Vec::with_capacity(v.len());
    let mut origins = Vec::with_capacity(v.len());
    for (b, o) in v {
        if buckets.last() != Some(&b) {
            buckets.push(b);
            origins.push(o);
        }
    }
    (buckets, origins)
}

/// `v1agra`, `fr33`, `c0ck`: letters on both sides of a digit standing for a letter.
fn is_leet(w: &str) -> bool {
    let b = w.as_bytes();
    if b.len() < 4 || !w.is_ascii() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return false;
    }
    b.windows(3).any(|t| {
        t[0].is_ascii_alphabetic()
            && matches!(t[1], b'0' | b'1' | b'3' | b'4' | b'5' | b'7')
            && t[2].is_ascii_alphabetic()
    })
}

/// The text's language, ISO 639-1, when whatlang is confident (on the first 512 bytes: enough
/// for its trigram profiles, and detection costs in proportion to the sample).
fn detect_language(doc: &str) -> Option<&'static str> {
    let sample = cut_str(doc, 512);
    if sample.chars().filter(|c| c.is_alphabetic()).count() < 20 {
        return None;
    }
    let (lang, confidence) = super::lang::detect(sample)?;
    if !super::lang::is_reliable(confidence) {
        return None;
    }
    iso639_1(lang.code())
}

/// ISO 639-3 (whatlang's codes) to ISO 639-1.
fn iso639_1(code: &str) -> Option<&'static str> {
    Some(match code {
        "eng" => "en",
        "jpn" => "ja",
        "cmn" => "zh",
        "kor" => "ko",
        "rus" => "ru",
        "ukr" => "uk",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "fra" => "fr",
        "deu" => "de",
        "nld" => "nl",
        "pol" => "pl",
        "ces" => "cs",
        "slk" => "sk",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "bul" => "bg",
        "mkd" => "mk",
        "bel" => "be",
        "ron" => "ro",
        "hun" => "hu",
        "fin" => "fi",
        "est" => "et",
        "lav" => "lv",
        "lit" => "lt",
        "swe" => "sv",
        "dan" => "da",
        "nob" => "nb",
        "tur" => "tr",
        "ell" => "el",
        "heb" => "he",
        "yid" => "yi",
        "ara" => "ar",
        "pes" => "fa",
        "urd" => "ur",
        "hin" => "hi",
        "ben" => "bn",
        "mar" => "mr",
        "guj" => "gu",
        "pan" => "pa",
        "tam" => "ta",
        "tel" => "te",
        "kan" => "kn",
        "mal" => "ml",
        "ori" => "or",
        "sin" => "si",
        "nep" => "ne",
        "tha" => "th",
        "vie" => "vi",
        "khm" => "km",
        "mya" => "my",
        "ind" => "id",
        "jav" => "jv",
        "tgl" => "tl",
        "kat" => "ka",
        "hye" => "hy",
        "aze" => "az",
        "uzb" => "uz",
        "tuk" => "tk",
        "amh" => "am",
        "afr" => "af",
        "zul" => "zu",
        "sna" => "sn",
        "aka" => "ak",
        "epo" => "eo",
        "lat" => "la",
        "cat" => "ca",
        _ => return None,
    })
}

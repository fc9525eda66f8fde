//! The group calendar: iTIP meeting requests and cancellations found in messages, folded into
//! the group's list of events.

use super::dedupe_in_order;
use super::mime::{attribute, content_type_string, is_calendar_type, part_bytes};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::collections::HashMap;

/// The iTIP method of a calendar object (RFC 5546 §1.4), from its `METHOD` property.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
/// - At most [`MAX_CALENDAR_ITEMS_READ`] `VEVENT`s are read; the others are only counted
///   (`unread`), so a 35 MB attachment of events costs memory for a thousand of them, not for
///   hundreds of thousands.
pub fn calendar_items(content: &[u8]) -> CalendarItems {
    // Only a multipart or a calendar message can hold an invitation; for the others (most mail)
    // the whole message need not be parsed. Only the Content-Type field is read for that.
    let top = crate::only_fields(crate::header_block(content), &["Content-Type"]);
    let could_hold_one = MessageParser::new()
        .parse_headers(&top)
        .and_then(|m| {
            m.content_type().map(|ct| {
                let main = ct.ctype().trim();
                main.eq_ignore_ascii_case("multipart")
                    || is_calendar_type(&format!(
                        "{}/{}",
                        main.to_ascii_lowercase(),
                        ct.subtype().unwrap_or("").trim().to_ascii_lowercase()
                    ))
            })
        })
        // RFC 2045 §5.2: no Content-Type means text/plain.
        .unwrap_or(false);
    if !could_hold_one {
        return CalendarItems::default();
    }
    let Some(msg) = MessageParser::new().parse(content) else {
        return CalendarItems::default();
    };
    let mut items: Vec<CalendarItem> = Vec::new();
    let mut budget = Budget {
        left: MAX_CALENDAR_ITEMS_READ,
        unread: 0,
    };
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
        items.extend(parse_icalendar(&text, fallback, &mut budget));
    }
    CalendarItems {
        // Linear, as a message may carry thousands of events.
        items: dedupe_in_order(items),
        unread: budget.unread,
    }
}

/// How many `VEVENT`s of one message [`calendar_items`] reads: enough for the
/// [`MAX_CALENDAR_ITEMS`] a message may apply, with room for the duplicates Outlook sends (the
/// invitation as an alternative and as an attachment) and for replies, which apply nothing.
pub const MAX_CALENDAR_ITEMS_READ: usize = 10 * MAX_CALENDAR_ITEMS;

/// The calendar items of a message, as [`calendar_items`] finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarItems {
    /// The items read, in order, each once.
    pub items: Vec<CalendarItem>,
    /// `VEVENT`s beyond [`MAX_CALENDAR_ITEMS_READ`], counted but not read.
    pub unread: usize,
}

/// What is left of [`MAX_CALENDAR_ITEMS_READ`] while a message's parts are read.
struct Budget {
    left: usize,
    unread: usize,
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

/// How deep components may nest (`VCALENDAR` > `VEVENT` > `VALARM` is 3; RFC 9073's
/// `PARTICIPANT` > `VLOCATION` one more). A `BEGIN` deeper than this is ignored, so an `END` is
/// matched against at most this many open components: unbounded, 100,000 unclosed `BEGIN:X`
/// followed by 100,000 `END:Y` (1.6 MB) took 30 s, each `END` searching the whole stack.
const MAX_NESTING: usize = 16;

/// Parses the `VCALENDAR`s of an (unfolded) iCalendar text into items.
fn parse_icalendar(
    text: &str,
    fallback_method: Option<CalendarMethod>,
    budget: &mut Budget,
) -> Vec<CalendarItem> {
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
                } else if stack.len() >= MAX_NESTING {
                    // Too deep to be a calendar: its lines count for the component it is in.
                    continue;
                } else if component == "VEVENT" {
                    pending.extend(current.take());
                    if budget.left == 0 {
                        // Counted, not read: its properties go nowhere.
                        budget.unread += 1;
                    } else {
                        budget.left -= 1;
                        current = Some(EventBuilder::default());
                    }
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

/// A group calendar, or the part of it a message touches: events by UID.
pub type Calendar = HashMap<String, CalendarItem>;

/// Folds one iTIP item into a calendar (events by UID: one map lookup per item).
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
pub fn apply_to_calendar(calendar: &mut Calendar, item: CalendarItem) {
    if item.uid.is_empty() {
        return;
    }
    let existing = calendar.get_mut(&item.uid);
    match item.method {
        CalendarMethod::Request => match existing {
            None => {
                calendar.insert(item.uid.clone(), item);
            }
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
            None => {
                calendar.insert(item.uid.clone(), cancelled(item, None));
            }
            Some(e) => {
                if item.sequence >= e.sequence {
                    *e = cancelled(item, Some(e));
                }
            }
        },
        CalendarMethod::Other(_) => {}
    }
}

/// At most this many calendar items of one message are applied (RFC 5546 puts one meeting in
/// an iTIP message; Outlook sends one event, or a handful for a series and its exceptions): a
/// message with thousands of events costs a bounded number of calendar lookups and writes.
pub const MAX_CALENDAR_ITEMS: usize = 100;

/// What one message does to a group calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarUpdate {
    /// The new state of each event the message touched, in the order first touched.
    pub changes: Vec<CalendarItem>,
    /// Items beyond [`MAX_CALENDAR_ITEMS`] that were ignored, and events that were not read.
    pub ignored: usize,
}

/// Folds the first [`MAX_CALENDAR_ITEMS`] requests and cancellations of a message (as
/// [`calendar_items`] lists them) into the calendar; the others, and the events it did not read,
/// are counted as ignored. `existing` is asked once, for the distinct
/// UIDs of those items, and returns the calendar's current events among them; each item is then
/// applied with [`apply_to_calendar`] through a map. Other methods (`REPLY`, `PUBLISH`, ...)
/// neither count nor change anything.
pub fn calendar_update<E>(
    read: CalendarItems,
    existing: impl FnOnce(&[String]) -> Result<Vec<CalendarItem>, E>,
) -> Result<CalendarUpdate, E> {
    let CalendarItems { items, unread } = read;
    let mut actionable = items.into_iter().filter(|i| {
        !i.uid.is_empty() && matches!(i.method, CalendarMethod::Request | CalendarMethod::Cancel)
    });
    let applied: Vec<CalendarItem> = actionable.by_ref().take(MAX_CALENDAR_ITEMS).collect();
    let ignored = actionable.count() + unread;
    if applied.is_empty() {
        return Ok(CalendarUpdate {
            changes: Vec::new(),
            ignored,
        });
    }
    let uids = dedupe_in_order(applied.iter().map(|i| i.uid.clone()).collect());
    let mut calendar: Calendar = existing(&uids)?
        .into_iter()
        .map(|e| (e.uid.clone(), e))
        .collect();
    for item in applied {
        apply_to_calendar(&mut calendar, item);
    }
    let changes = uids
        .into_iter()
        .filter_map(|uid| calendar.remove(&uid))
        .collect();
    Ok(CalendarUpdate { changes, ignored })
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

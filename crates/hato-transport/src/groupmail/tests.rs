use super::*;
use std::cell::Cell;
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// Threading
// ---------------------------------------------------------------------------------------------

const PARENT: &str = "From: Aiko <aiko@contoso.test>\r\n\
To: team@contoso.test\r\n\
Subject: Budget 2027\r\n\
Message-ID: <root-1@contoso.test>\r\n\
\r\n\
Numbers attached.\r\n";

const REPLY: &str = "From: Ben <ben@contoso.test>\r\n\
To: team@contoso.test\r\n\
Subject: =?utf-8?q?RE=3A_AW=3A_Budget_2027_=E2=80=93_draft?=\r\n\
Message-ID: <reply-2@fabrikam.test>\r\n\
In-Reply-To: <mid-1@contoso.test> (Aiko's message of \"Mon, 1 Dec 2026 <sic>\")\r\n\
References: <root-1@contoso.test>\r\n <mid-1@contoso.test>\r\n\
\x20<mid-1@contoso.test>\r\n\
\r\n\
Looks good.\r\n";

fn lookup<'a>(map: &'a HashMap<&'static str, u32>) -> impl Fn(&str) -> Option<u32> + 'a {
    move |k| map.get(k).copied()
}

#[test]
fn thread_headers_reads_ids_without_brackets_and_decoded_subject() {
    let h = thread_headers(REPLY.as_bytes());
    assert_eq!(h.message_id.as_deref(), Some("reply-2@fabrikam.test"));
    // The comment, and the angle brackets inside it, are not identifiers.
    assert_eq!(h.in_reply_to, vec!["mid-1@contoso.test"]);
    // Folded over lines, duplicate kept once, oldest first.
    assert_eq!(
        h.references,
        vec!["root-1@contoso.test", "mid-1@contoso.test"]
    );
    assert_eq!(h.subject, "RE: AW: Budget 2027 – draft");
    assert_eq!(h.normalized_subject, "budget 2027 – draft");

    let p = thread_headers(PARENT.as_bytes());
    assert_eq!(p.message_id.as_deref(), Some("root-1@contoso.test"));
    assert!(p.in_reply_to.is_empty() && p.references.is_empty());
}

#[test]
fn thread_headers_of_garbage_and_bare_ids() {
    assert_eq!(thread_headers(b""), ThreadHeaders::default());
    let h = thread_headers(b"Subject: x\r\nIn-Reply-To: old-style@host.test\r\n\r\nbody");
    assert_eq!(h.in_reply_to, vec!["old-style@host.test"]);
    assert_eq!(h.message_id, None);
}

#[test]
fn threads_by_in_reply_to_first() {
    let h = thread_headers(REPLY.as_bytes());
    let ids = HashMap::from([("mid-1@contoso.test", 2), ("root-1@contoso.test", 1)]);
    let by_subject = |_: &str| Some(99);
    assert_eq!(choose_conversation(&h, lookup(&ids), by_subject), Some(2));
}

#[test]
fn threads_by_references_newest_first_when_in_reply_to_is_unknown() {
    let h = ThreadHeaders {
        message_id: Some("new@x.test".into()),
        in_reply_to: vec!["unknown@x.test".into()],
        references: vec![
            "root@x.test".into(),
            "mid@x.test".into(),
            "unknown@x.test".into(),
        ],
        subject: "Re: Plan".into(),
        normalized_subject: "plan".into(),
    };
    let ids = HashMap::from([("root@x.test", 1), ("mid@x.test", 2)]);
    assert_eq!(choose_conversation(&h, lookup(&ids), |_| Some(99)), Some(2));
    let only_root = HashMap::from([("root@x.test", 1)]);
    assert_eq!(
        choose_conversation(&h, lookup(&only_root), |_| Some(99)),
        Some(1)
    );
}

#[test]
fn threads_by_normalized_subject_when_no_reference_is_known() {
    let h = thread_headers(
        b"Subject: RE: AW: [team] Budget 2027\r\nIn-Reply-To: <lost@x.test>\r\n\r\nhi\r\n",
    );
    let subjects = HashMap::from([("budget 2027", 7)]);
    let none = HashMap::new();
    assert_eq!(
        choose_conversation(&h, lookup(&none), lookup(&subjects)),
        Some(7)
    );
}

#[test]
fn new_conversation_when_nothing_matches() {
    let h = thread_headers(PARENT.as_bytes());
    let ids = HashMap::from([("other@x.test", 1)]);
    let subjects = HashMap::from([("budget 2026", 3)]);
    assert_eq!(
        choose_conversation(&h, lookup(&ids), lookup(&subjects)),
        None
    );
}

#[test]
fn empty_subject_is_never_matched_by_subject() {
    let calls = Cell::new(0);
    let by_subject = |_: &str| {
        calls.set(calls.get() + 1);
        Some(1)
    };
    for subject in ["", "Re:", "RE: FW:  ", "[list]"] {
        let mut h = thread_headers(format!("Subject: {subject}\r\n\r\nx\r\n").as_bytes());
        if subject == "[list]" {
            // A subject that is only a tag keeps it: it is matched.
            assert_eq!(h.normalized_subject, "[list]");
            continue;
        }
        assert_eq!(h.normalized_subject, "", "{subject:?}");
        assert_eq!(choose_conversation(&h, |_| None::<u32>, by_subject), None);
        h.subject = "something".into(); // only the normalized subject counts
        assert_eq!(choose_conversation(&h, |_| None::<u32>, by_subject), None);
    }
    assert_eq!(calls.get(), 0);
}

#[test]
fn reference_lookups_are_bounded() {
    let h = ThreadHeaders {
        references: (0..10_000).map(|i| format!("r{i}@x.test")).collect(),
        ..ThreadHeaders::default()
    };
    let calls = Cell::new(0);
    let by_id = |_: &str| {
        calls.set(calls.get() + 1);
        None::<u32>
    };
    assert_eq!(choose_conversation(&h, by_id, |_| None), None);
    assert_eq!(calls.get(), MAX_THREAD_LOOKUPS);
}

#[test]
fn normalize_subject_strips_prefixes_tags_and_case() {
    let cases = [
        ("Hello world", "hello world"),
        ("Re: Hello world", "hello world"),
        ("RE: RE: re:Hello   world ", "hello world"),
        ("Fwd: Fw: FW: Hello", "hello"),
        ("AW: WG: Angebot", "angebot"),
        ("SV: VS: Møte", "møte"),
        ("Antw: Doorst: Offerte", "offerte"),
        ("RE : TR : Réunion", "réunion"),
        ("Réf : Réunion", "réunion"),
        ("RV: ENC: Reunião", "reunião"),
        ("R: I: Riunione", "riunione"),
        ("Re[2]: Status", "status"),
        ("Re(3): Re^2: Status", "status"),
        ("Re: [list] Re: Status", "status"),
        ("[EXTERNAL] RE: [team-a] FW: Status", "status"),
        ("回复：回复: 会议纪要", "会议纪要"),
        ("答复: 会议", "会议"),
        ("転送: Re: 打ち合わせ", "打ち合わせ"),
        ("返信：【重要】 打ち合わせ", "打ち合わせ"),
        ("ΑΠ: ΣΧΕΤ: Συνάντηση", "συνάντηση"),
        ("회신: 전달: 회의", "회의"),
        ("[Fwd: Old style]", "old style"),
        ("Old style (fwd)", "old style"),
        ("Re:", ""),
        ("", ""),
        ("[list]", "[list]"),
        ("Rest: not a prefix", "rest: not a prefix"),
        ("Fwdx: not a prefix", "fwdx: not a prefix"),
        ("Regarding: the plan", "regarding: the plan"),
        ("Quarterly\t review\r\n  2027", "quarterly review 2027"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_subject(input), want, "{input:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// An Outlook invitation: multipart/alternative, Windows zone, folded lines, quoted CN with a
/// comma, escaped commas, a VALARM and VTIMEZONE whose properties must not leak into the event.
const OUTLOOK_INVITE: &str = "From: \"Sato, Hanako\" <hanako@contoso.test>\r\n\
To: project-x@contoso.test\r\n\
Subject: Design review\r\n\
Message-ID: <invite-1@contoso.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"_000_alt_\"\r\n\
\r\n\
--_000_alt_\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
Let's review the design.\r\n\
\r\n\
--_000_alt_\r\n\
Content-Type: text/calendar; charset=\"utf-8\"; method=REQUEST\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
BEGIN:VCALENDAR\r\n\
METHOD:REQUEST\r\n\
PRODID:Microsoft Exchange Server 2010\r\n\
VERSION:2.0\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Tokyo Standard Time\r\n\
BEGIN:STANDARD\r\n\
DTSTART:16010101T000000\r\n\
TZOFFSETFROM:+0900\r\n\
TZOFFSETTO:+0900\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
ORGANIZER;CN=\"Sato, Hanako\":mailto:hanako@contoso.test\r\n\
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=project-x:mailt\r\n o:project-x@contoso.test\r\n\
DESCRIPTION;LANGUAGE=en-US:Let's review the design.\\n\\nAgenda: UI\\, API\r\n\
UID:040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A601000000000000000010\r\n 000000F00DCAFE\r\n\
SUMMARY;LANGUAGE=en-US:Design review – phase 2\\, UI \\; API\r\n\
DTSTART;TZID=\"Tokyo Standard Time\":20261201T100000\r\n\
DTEND;TZID=Tokyo Standard Time:20261201T113000\r\n\
CLASS:PUBLIC\r\n\
PRIORITY:5\r\n\
DTSTAMP:20261120T013000Z\r\n\
TRANSP:OPAQUE\r\n\
STATUS:CONFIRMED\r\n\
SEQUENCE:1\r\n\
LOCATION;LANGUAGE=en-US:Room 5\\, Building A\\\\North\r\n\
X-MICROSOFT-CDO-ALLDAYEVENT:FALSE\r\n\
BEGIN:VALARM\r\n\
DESCRIPTION:REMINDER\r\n\
TRIGGER;RELATED=START:-PT15M\r\n\
ACTION:DISPLAY\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n\
\r\n\
--_000_alt_--\r\n";

#[test]
fn outlook_invitation() {
    let items = calendar_items(OUTLOOK_INVITE.as_bytes()).items;
    assert_eq!(
        items,
        vec![CalendarItem {
            method: CalendarMethod::Request,
            uid: "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A601000000000000000010000000F00DCAFE".into(),
            sequence: 1,
            summary: "Design review – phase 2, UI ; API".into(),
            location: "Room 5, Building A\\North".into(),
            organizer: "hanako@contoso.test".into(),
            start: "2026-12-01T10:00:00 Tokyo Standard Time".into(),
            end: "2026-12-01T11:30:00 Tokyo Standard Time".into(),
            all_day: false,
        }]
    );
    // The invitation itself is not a file of the group.
    assert!(attachments(OUTLOOK_INVITE.as_bytes()).is_empty());
}

/// A UTC meeting sent as a base64 `application/ics` attachment, end from DURATION.
const UTC_INVITE: &str = "From: lead@example.test\r\n\
To: group@example.test\r\n\
Subject: Launch review\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
See invite.\r\n\
--b1\r\n\
Content-Type: application/ics; name=\"invite.ics\"\r\n\
Content-Disposition: attachment; filename=\"invite.ics\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
QkVHSU46VkNBTEVOREFSDQpNRVRIT0Q6UkVRVUVTVA0KUFJPRElEOnRlc3QNClZFUlNJT046Mi4w\r\n\
DQpCRUdJTjpWRVZFTlQNClVJRDp1dGMtMUBleGFtcGxlLnRlc3QNClNFUVVFTkNFOjANClNVTU1B\r\n\
Ulk6TGF1bmNoIHJldmlldw0KRFRTVEFSVDoyMDI2MTIwMVQwMTAwMDBaDQpEVVJBVElPTjpQVDFI\r\n\
MzBNDQpPUkdBTklaRVI6TUFJTFRPOmxlYWRAZXhhbXBsZS50ZXN0DQpFTkQ6VkVWRU5UDQpFTkQ6\r\n\
VkNBTEVOREFSDQo=\r\n\
--b1--\r\n";

#[test]
fn utc_invitation_in_base64_ics_attachment() {
    let items = calendar_items(UTC_INVITE.as_bytes()).items;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.method, CalendarMethod::Request);
    assert_eq!(item.uid, "utc-1@example.test");
    assert_eq!(item.sequence, 0);
    assert_eq!(item.summary, "Launch review");
    assert_eq!(item.organizer, "lead@example.test");
    assert_eq!(item.start, "2026-12-01T01:00:00Z");
    assert_eq!(item.end, "2026-12-01T02:30:00Z");
    assert!(!item.all_day);
    // Explicitly attached: it is also a file.
    let files = attachments(UTC_INVITE.as_bytes());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "invite.ics");
    assert_eq!(files[0].content_type, "application/ics");
}

#[test]
fn base64_text_calendar_part() {
    // Outlook often sends the text/calendar alternative base64-encoded.
    let msg = UTC_INVITE
        .replace(
            "Content-Type: application/ics; name=\"invite.ics\"\r\nContent-Disposition: attachment; filename=\"invite.ics\"\r\n",
            "Content-Type: text/calendar; charset=\"utf-8\"; method=REQUEST\r\n",
        )
        .replace("multipart/mixed", "multipart/alternative");
    assert!(msg.contains("text/calendar"));
    let items = calendar_items(msg.as_bytes()).items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].uid, "utc-1@example.test");
    assert_eq!(items[0].end, "2026-12-01T02:30:00Z");
    assert!(attachments(msg.as_bytes()).is_empty());
}

fn single_part_calendar(method_param: &str, body: &str) -> String {
    format!(
        "From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/calendar; charset=utf-8{method_param}\r\n\r\n{body}"
    )
}

#[test]
fn all_day_events() {
    let msg = single_part_calendar(
        "; method=REQUEST",
        "BEGIN:VCALENDAR\r\n\
BEGIN:VEVENT\r\n\
UID:allday-1\r\n\
SUMMARY:Company holiday\r\n\
DTSTART;VALUE=DATE:20261224\r\n\
DTEND;VALUE=DATE:20261226\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:allday-2\r\n\
SUMMARY:Offsite\r\n\
DTSTART;VALUE=DATE:20261231\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:allday-3\r\n\
SUMMARY:Outlook all day\r\n\
DTSTART;TZID=W. Europe Standard Time:20261201T000000\r\n\
DTEND;TZID=W. Europe Standard Time:20261202T000000\r\n\
X-MICROSOFT-CDO-ALLDAYEVENT:TRUE\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n",
    );
    let items = calendar_items(msg.as_bytes()).items;
    assert_eq!(items.len(), 3);
    // No METHOD in the object: the Content-Type's method parameter (RFC 6047 §2.4).
    assert!(items.iter().all(|i| i.method == CalendarMethod::Request));
    assert_eq!(
        (
            items[0].start.as_str(),
            items[0].end.as_str(),
            items[0].all_day
        ),
        ("2026-12-24", "2026-12-26", true)
    );
    // No DTEND: one day (RFC 5545 §3.6.1), across the year end.
    assert_eq!(
        (
            items[1].start.as_str(),
            items[1].end.as_str(),
            items[1].all_day
        ),
        ("2026-12-31", "2027-01-01", true)
    );
    assert!(items[2].all_day);
    assert_eq!(
        items[2].start,
        "2026-12-01T00:00:00 W. Europe Standard Time"
    );
}

const CANCEL: &str = "From: hanako@contoso.test\r\n\
Subject: Canceled: Design review\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/calendar; charset=\"utf-8\"; method=CANCEL\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
BEGIN:VCALENDAR\r\n\
METHOD:CANCEL\r\n\
VERSION:2.0\r\n\
BEGIN:VEVENT\r\n\
ORGANIZER;CN=3D\"Sato, Hanako\":mailto:hanako@contoso.test\r\n\
UID:cancel-me@contoso.test\r\n\
SUMMARY:Canceled: Design review\r\n\
DTSTART:20261201T010000Z\r\n\
DTEND:20261201T023000Z\r\n\
SEQUENCE:2\r\n\
STATUS:CANCELLED\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn cancellation() {
    let items = calendar_items(CANCEL.as_bytes()).items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].method, CalendarMethod::Cancel);
    assert_eq!(items[0].uid, "cancel-me@contoso.test");
    assert_eq!(items[0].sequence, 2);
    assert_eq!(items[0].organizer, "hanako@contoso.test");
    assert_eq!(items[0].end, "2026-12-01T02:30:00Z");
}

#[test]
fn fold_inside_a_utf8_sequence_and_other_methods() {
    // "会議" with the fold between the 2nd and 3rd byte of 会 (RFC 5545 §3.1 allows it).
    let msg: &[u8] = b"Subject: x\r\nContent-Type: text/calendar; charset=UTF-8\r\n\r\n\
BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\nUID:u1\r\nSUMMARY:\xe4\xbc\r\n \x9a\xe8\xad\xb0\r\n\
DTSTART:20261201T010000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let items = calendar_items(msg).items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].summary, "会議");
    assert_eq!(items[0].method, CalendarMethod::Other("PUBLISH".into()));
    // Floating time, no DTEND: ends when it starts.
    assert_eq!(items[0].start, "2026-12-01T01:00:00");
    assert_eq!(items[0].end, "2026-12-01T01:00:00");
}

#[test]
fn skipped_events_and_duplicates() {
    let cal = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nSUMMARY:no uid\r\nDTSTART:20261201T010000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:series\r\nRECURRENCE-ID:20261208T010000Z\r\nSUMMARY:one occurrence\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:series\r\nSUMMARY:weekly\r\nRRULE:FREQ=WEEKLY\r\nDTSTART:20261201T010000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
    // The same object as the alternative and as an explicit attachment.
    let msg = format!(
        "Subject: weekly\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n\
--m\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{cal}\r\n\
--m\r\nContent-Type: text/calendar; method=REQUEST; name=meeting.ics\r\n\
Content-Disposition: attachment; filename=meeting.ics\r\n\r\n{cal}\r\n--m--\r\n"
    );
    let items = calendar_items(msg.as_bytes()).items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].summary, "weekly");
    assert_eq!(items[0].start, "2026-12-01T01:00:00Z");
    assert!(calendar_items(b"").items.is_empty());
    assert!(calendar_items(PARENT.as_bytes()).items.is_empty());
    let broken = single_part_calendar(
        "",
        "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:2026-12-01\r\nDURATION:P1X\r\n",
    );
    let items = calendar_items(broken.as_bytes()).items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].method, CalendarMethod::Other(String::new()));
    assert_eq!(
        (items[0].start.as_str(), items[0].end.as_str()),
        ("2026-12-01", "2026-12-01")
    );
}

fn event(method: CalendarMethod, uid: &str, sequence: u32, summary: &str) -> CalendarItem {
    CalendarItem {
        method,
        uid: uid.into(),
        sequence,
        summary: summary.into(),
        location: String::new(),
        organizer: "o@x.test".into(),
        start: "2026-12-01T01:00:00Z".into(),
        end: "2026-12-01T02:00:00Z".into(),
        all_day: false,
    }
}

#[test]
fn apply_to_calendar_follows_sequence() {
    use CalendarMethod::{Cancel, Other, Request};
    let mut cal = Calendar::new();
    apply_to_calendar(&mut cal, event(Request, "a", 0, "Plan"));
    apply_to_calendar(&mut cal, event(Request, "b", 0, "Other meeting"));
    assert_eq!(cal.len(), 2);

    // Update: higher sequence replaces in place.
    let mut moved = event(Request, "a", 1, "Plan (moved)");
    moved.location = "Room 7".into();
    apply_to_calendar(&mut cal, moved);
    assert_eq!(
        (cal["a"].summary.as_str(), cal["a"].sequence),
        ("Plan (moved)", 1)
    );
    // A stale update delivered late is ignored; an equal sequence replaces.
    apply_to_calendar(&mut cal, event(Request, "a", 0, "Plan"));
    assert_eq!(cal["a"].summary, "Plan (moved)");
    apply_to_calendar(&mut cal, event(Request, "a", 1, "Plan (moved, typo fixed)"));
    assert_eq!(cal["a"].summary, "Plan (moved, typo fixed)");

    // Cancel: kept, marked, completed from the event.
    let mut cancel = event(Cancel, "a", 2, "");
    cancel.start.clear();
    cancel.end.clear();
    cancel.organizer.clear();
    apply_to_calendar(&mut cal, cancel);
    assert_eq!(cal.len(), 2);
    assert_eq!(cal["a"].method, Cancel);
    assert_eq!(cal["a"].summary, "Canceled: Plan (moved, typo fixed)");
    assert_eq!(cal["a"].start, "2026-12-01T01:00:00Z");
    assert_eq!(cal["a"].organizer, "o@x.test");
    assert_eq!(cal["a"].sequence, 2);
    // The same cancellation again, with the organizer's own prefix: prefixed once.
    apply_to_calendar(&mut cal, event(Cancel, "a", 2, "Canceled: Plan"));
    assert_eq!(cal["a"].summary, "Canceled: Plan");
    // A late request cannot revive it, not even with the cancellation's sequence...
    apply_to_calendar(&mut cal, event(Request, "a", 1, "Plan"));
    apply_to_calendar(&mut cal, event(Request, "a", 2, "Plan"));
    assert_eq!(cal["a"].method, Cancel);
    // ... a rescheduled one (higher sequence) does.
    apply_to_calendar(&mut cal, event(Request, "a", 3, "Plan (rescheduled)"));
    assert_eq!(
        (cal["a"].method.clone(), cal["a"].summary.as_str()),
        (Request, "Plan (rescheduled)")
    );
    // A stale cancellation is ignored.
    apply_to_calendar(&mut cal, event(Cancel, "a", 2, "Plan"));
    assert_eq!(cal["a"].method, Request);

    // A cancellation that overtook its request leaves a tombstone.
    apply_to_calendar(&mut cal, event(Cancel, "c", 1, "Early"));
    apply_to_calendar(&mut cal, event(Request, "c", 0, "Early"));
    assert_eq!(cal["c"].summary, "Canceled: Early");

    // Other methods and UID-less items change nothing.
    let before = cal.clone();
    apply_to_calendar(&mut cal, event(Other("REPLY".into()), "b", 9, "Accepted"));
    apply_to_calendar(&mut cal, event(Other(String::new()), "d", 0, "plain ics"));
    apply_to_calendar(&mut cal, event(Request, "", 0, "no uid"));
    assert_eq!(cal, before);
    assert_eq!(cal["b"].summary, "Other meeting");
}

#[test]
fn parsed_items_fold_into_a_calendar() {
    let mut cal = Calendar::new();
    let request = OUTLOOK_INVITE.replace(
        "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A601000000000000000010\r\n 000000F00DCAFE",
        "cancel-me@contoso.test",
    );
    for item in calendar_items(request.as_bytes()).items {
        apply_to_calendar(&mut cal, item);
    }
    assert_eq!(cal.len(), 1);
    for item in calendar_items(CANCEL.as_bytes()).items {
        apply_to_calendar(&mut cal, item);
    }
    assert_eq!(cal.len(), 1);
    assert_eq!(
        cal["cancel-me@contoso.test"].summary,
        "Canceled: Design review"
    );
    assert_eq!(
        cal["cancel-me@contoso.test"].location,
        "Room 5, Building A\\North"
    );
    assert_eq!(cal["cancel-me@contoso.test"].start, "2026-12-01T01:00:00Z");
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

const PDF_BYTES: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n";

/// Body in multipart/alternative, an inline image with a file name and one without in
/// multipart/related, a base64 PDF with an RFC 2231 name, a quoted-printable Latin-1 text file,
/// an RFC 2047 name, and a hostile path.
const WITH_FILES: &str = "From: a@contoso.test\r\n\
To: team@contoso.test\r\n\
Subject: Files\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--outer\r\n\
Content-Type: multipart/related; boundary=\"rel\"\r\n\
\r\n\
--rel\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
See the report.\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>See the report.<img src=\"cid:logo\"><img src=\"cid:chart\"></p>\r\n\
--alt--\r\n\
--rel\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgoAAAANSUhEUg==\r\n\
--rel\r\n\
Content-Type: image/png; name=\"chart.png\"\r\n\
Content-Disposition: inline; filename=\"chart.png\"\r\n\
Content-ID: <chart>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgoAAAANSUhEUg==\r\n\
--rel--\r\n\
--outer\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment;\r\n\
\x20filename*=UTF-8''%E5%A0%B1%E5%91%8A.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjcKJeLjz9MKMSAwIG9iago8PD4+\r\n\
CmVuZG9iago=\r\n\
--outer\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe aus M=FCnchen,=\r\n\
\x20viele Gr=FC=DFe=3D\r\n\
Zeile 2\r\n\
--outer\r\n\
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\r\n\
\x20name=\"=?UTF-8?B?5aCx5ZGK5pu4LmRvY3g=?=\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
UEsDBA==\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"..\\\\..\\\\evil.exe\"\r\n\
\r\n\
MZ\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment\r\n\
\r\n\
raw\r\n\
--outer--\r\n";

#[test]
fn attachments_are_listed_in_order_with_decoded_names() {
    let files = attachments(WITH_FILES.as_bytes());
    let summary: Vec<(usize, &str, &str, u64)> = files
        .iter()
        .map(|f| (f.index, f.name.as_str(), f.content_type.as_str(), f.size))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "chart.png", "image/png", 16),
            (1, "報告.pdf", "application/pdf", PDF_BYTES.len() as u64),
            (2, "notes.txt", "text/plain", 40),
            (
                3,
                "報告書.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                4
            ),
            (4, "evil.exe", "application/octet-stream", 2),
            (5, "attachment-6", "application/octet-stream", 3),
        ]
    );
}

#[test]
fn attachment_bytes_round_trip() {
    let content = WITH_FILES.as_bytes();
    assert_eq!(
        attachment_bytes(content, 0).as_deref(),
        Some(&b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"[..])
    );
    assert_eq!(attachment_bytes(content, 1).as_deref(), Some(PDF_BYTES));
    // Quoted-printable decoded, soft line break joined, Latin-1 bytes kept as sent.
    assert_eq!(
        attachment_bytes(content, 2).as_deref(),
        Some(&b"Gr\xfc\xdfe aus M\xfcnchen, viele Gr\xfc\xdfe=\r\nZeile 2"[..])
    );
    assert_eq!(
        attachment_bytes(content, 3).as_deref(),
        Some(&b"PK\x03\x04"[..])
    );
    assert_eq!(attachment_bytes(content, 5).as_deref(), Some(&b"raw"[..]));
    assert_eq!(attachment_bytes(content, 6), None);
    for f in attachments(content) {
        assert_eq!(
            attachment_bytes(content, f.index).map(|b| b.len() as u64),
            Some(f.size)
        );
    }
}

#[test]
fn plain_message_has_no_attachments() {
    assert!(attachments(PARENT.as_bytes()).is_empty());
    assert!(attachments(REPLY.as_bytes()).is_empty());
    assert!(attachments(b"").is_empty());
    assert_eq!(attachment_bytes(PARENT.as_bytes(), 0), None);
    let html_only = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
--a\r\nContent-Type: text/plain\r\n\r\nhi\r\n--a\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n--a--\r\n";
    assert!(attachments(html_only.as_bytes()).is_empty());
}

#[test]
fn attached_message_is_one_file() {
    let msg = "From: a@contoso.test\r\n\
Subject: Fwd: Contract\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"o\"\r\n\
\r\n\
--o\r\n\
Content-Type: text/plain\r\n\
\r\n\
See below.\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: legal@fabrikam.test\r\n\
Subject: Contract =?utf-8?q?v2/final?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"i\"\r\n\
\r\n\
--i\r\n\
Content-Type: text/plain\r\n\
\r\n\
Attached.\r\n\
--i\r\n\
Content-Type: application/pdf; name=\"contract.pdf\"\r\n\
Content-Disposition: attachment; filename=\"contract.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjcKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iago=\r\n\
--i--\r\n\
--o\r\n\
Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\
\r\n\
sig\r\n\
--o--\r\n";
    let files = attachments(msg.as_bytes());
    assert_eq!(files.len(), 1, "{files:?}");
    // Named after its subject, the "/" made harmless.
    assert_eq!(files[0].name, "Contract v2_final.eml");
    assert_eq!(files[0].content_type, "message/rfc822");
    let bytes = attachment_bytes(msg.as_bytes(), 0).unwrap_or_default();
    assert!(
        bytes.starts_with(b"From: legal@fabrikam.test\r\n"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        bytes.ends_with(b"--i--"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(files[0].size, bytes.len() as u64);
}

#[test]
fn base64_text_attachment_keeps_its_charset() {
    let msg = "Subject: csv\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"m\"\r\n\
\r\n\
--m\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Data attached.\r\n\
--m\r\n\
Content-Type: text/csv; charset=shift_jis; name=\"data.csv\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
lryRTyySbA0K\r\n\
--m--\r\n";
    let files = attachments(msg.as_bytes());
    assert_eq!(files.len(), 1);
    assert_eq!(
        (
            files[0].name.as_str(),
            files[0].content_type.as_str(),
            files[0].size
        ),
        ("data.csv", "text/csv", 9)
    );
    assert_eq!(
        attachment_bytes(msg.as_bytes(), 0).as_deref(),
        Some(&[150u8, 188, 145, 79, 44, 146, 108, 13, 10][..])
    );
}

// ---------------------------------------------------------------------------------------------
// Pathological input: every step linear or bounded (counted, never timed)
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Equality and hash calls made on [`Counted`] values by the code under test.
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
}

/// A value that counts how often it is compared or hashed.
#[derive(Debug, Clone)]
struct Counted(String);

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        OPERATIONS.with(|c| c.set(c.get() + 1));
        self.0 == other.0
    }
}
impl Eq for Counted {}
impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        OPERATIONS.with(|c| c.set(c.get() + 1));
        self.0.hash(state);
    }
}

/// 100,000 references (every tenth a repeat of an earlier one), as a hostile References header.
fn many_references() -> Vec<String> {
    (0..100_000)
        .map(|i| {
            let n = if i % 10 == 9 { i / 2 } else { i };
            format!("ref{n}@x.test")
        })
        .collect()
}

#[test]
fn dedupe_of_100000_references_is_linear() {
    let ids = many_references();
    let expected: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        ids.iter().filter(|i| seen.insert(*i)).cloned().collect()
    };
    OPERATIONS.with(|c| c.set(0));
    let deduped = dedupe_in_order(ids.into_iter().map(Counted).collect());
    let operations = OPERATIONS.with(Cell::get);
    assert_eq!(
        deduped.into_iter().map(|c| c.0).collect::<Vec<_>>(),
        expected
    );
    // A hash and at most a few comparisons per identifier; `Vec::contains` needed ~5 billion.
    assert!(operations <= 3 * 100_000, "{operations} operations");
}

#[test]
fn a_header_with_100000_references_threads_with_bounded_lookups() {
    let ids = many_references();
    let mut content = String::from("Subject: Re: plan\r\nReferences:");
    for id in &ids {
        content.push_str(&format!(" <{id}>\r\n"));
    }
    content.push_str("In-Reply-To: <parent@x.test>\r\n\r\nbody\r\n");
    let h = thread_headers(content.as_bytes());
    // Only the newest are kept (the only ones looked up), oldest first, without repeats.
    let newest: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        let mut newest: Vec<String> = ids[ids.len() - 4 * MAX_THREAD_LOOKUPS..]
            .iter()
            .filter(|i| seen.insert(*i))
            .cloned()
            .collect();
        newest.drain(..newest.len() - MAX_THREAD_LOOKUPS);
        newest
    };
    assert_eq!(h.references, newest);
    assert_eq!(
        h.references.last().map(String::as_str),
        Some("ref49999@x.test")
    );
    assert_eq!(h.in_reply_to, vec!["parent@x.test"]);
    assert_eq!(h.normalized_subject, "plan");

    // Nothing known: MAX_THREAD_LOOKUPS for In-Reply-To and References each at most, then the
    // subject once.
    let calls = Cell::new(0);
    let subjects = Cell::new(0);
    let found = try_choose_conversation(
        &h,
        |_| {
            calls.set(calls.get() + 1);
            Ok::<Option<u32>, ()>(None)
        },
        |_| {
            subjects.set(subjects.get() + 1);
            Ok(None)
        },
    );
    assert_eq!(found, Ok(None));
    assert_eq!(calls.get(), 1 + MAX_THREAD_LOOKUPS);
    assert_eq!(subjects.get(), 1);

    // The newest reference is found at once; an error ends the search.
    let newest = h.references.last().cloned().unwrap();
    let found = try_choose_conversation(
        &ThreadHeaders {
            in_reply_to: vec![],
            ..h.clone()
        },
        |id| Ok::<_, ()>((id == newest).then_some(7)),
        |_| Ok(None),
    );
    assert_eq!(found, Ok(Some(7)));
    assert_eq!(
        try_choose_conversation(&h, |_| Err::<Option<u32>, _>("down"), |_| Ok(None)),
        Err("down")
    );
}

/// A message with `n` meeting requests, each with its own UID.
fn invitations(n: usize) -> String {
    let mut ics = String::from("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nVERSION:2.0\r\n");
    for i in 0..n {
        ics.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:event-{i}@x.test\r\nSEQUENCE:0\r\nSUMMARY:Meeting {i}\r\n\
             DTSTART:20261201T010000Z\r\nDTEND:20261201T020000Z\r\nEND:VEVENT\r\n"
        ));
    }
    ics.push_str("END:VCALENDAR\r\n");
    format!(
        "From: o@x.test\r\nSubject: many\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/calendar; charset=\"utf-8\"; method=REQUEST\r\n\r\n{ics}"
    )
}

#[test]
fn a_message_with_10000_events_updates_at_most_100() {
    let read = calendar_items(invitations(10_000).as_bytes());
    // A thousand are read, the others only counted: memory for the events a message may apply,
    // not for every event it carries.
    assert_eq!(read.items.len(), MAX_CALENDAR_ITEMS_READ);
    assert_eq!(read.unread, 10_000 - MAX_CALENDAR_ITEMS_READ);
    let items = read.items;
    assert_eq!(items[999].uid, "event-999@x.test");

    // The calendar already has event 5 at a higher sequence, and event 7 at a lower one.
    let mut known = items[5].clone();
    known.sequence = 3;
    known.summary = "Moved".into();
    let mut older = items[7].clone();
    older.summary = "Old".into();
    let lookups = Cell::new(0);
    let read = CalendarItems {
        items,
        unread: 10_000 - MAX_CALENDAR_ITEMS_READ,
    };
    let update = calendar_update(read, |uids| {
        lookups.set(lookups.get() + 1);
        assert_eq!(uids.len(), MAX_CALENDAR_ITEMS);
        Ok::<_, ()>(
            [known.clone(), older.clone()]
                .into_iter()
                .filter(|e| uids.contains(&e.uid))
                .collect(),
        )
    })
    .unwrap();
    assert_eq!(lookups.get(), 1);
    assert_eq!(update.changes.len(), MAX_CALENDAR_ITEMS);
    assert_eq!(update.ignored, 10_000 - MAX_CALENDAR_ITEMS);
    assert_eq!(update.changes[0].uid, "event-0@x.test");
    // A stale request does not replace a newer event; an equal sequence does.
    assert_eq!(update.changes[5].summary, "Moved");
    assert_eq!(update.changes[7].summary, "Meeting 7");
    assert!(update.changes.iter().all(|c| c.uid != "event-100@x.test"));

    // No request or cancellation at all: the calendar is not even read.
    let none = calendar_update(calendar_items(PARENT.as_bytes()), |_| {
        Err("must not be called")
    });
    assert_eq!(none, Ok(CalendarUpdate::default()));
}

/// Hostile calendar input a 35 MB message can carry stays linear and its result bounded: a
/// property folded 200,000 times, one of 100,000 parameters, 100,000 components that never end
/// followed by 2,000 `END`s that match none of them, and 10,000 events. The events are all
/// found, the folded summary is whole, components nested past any real calendar's depth are
/// ignored (so each `END` searches a bounded stack), and the update still applies at most 100.
#[test]
fn hostile_calendar_input_is_read_in_linear_time_with_a_bounded_result() {
    let folded = format!("SUMMARY:start{}", "\r\n x".repeat(200_000));
    let parameters = format!("LOCATION{}:Room 1", ";X-P=\"a;b:c\"".repeat(100_000));
    let mut ics = String::from("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n");
    ics.push_str(&format!(
        "BEGIN:VEVENT\r\nUID:long@x.test\r\n{folded}\r\n{parameters}\r\nEND:VEVENT\r\n"
    ));
    // Past the nesting limit, a VEVENT is not one.
    ics.push_str(&"BEGIN:X-DEEP\r\n".repeat(100_000));
    ics.push_str("BEGIN:VEVENT\r\nUID:too-deep@x.test\r\nEND:VEVENT\r\n");
    ics.push_str(&"END:X-NONE\r\n".repeat(2_000));
    ics.push_str("END:VCALENDAR\r\n");
    let many = invitations(10_000);
    let (head, many_ics) = many.split_once("\r\n\r\n").expect("a header block");
    let msg = format!(
        "From: o@x.test\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n{ics}\r\n\
         --b\r\n{}\r\n\r\n{many_ics}\r\n--b--\r\n",
        head.lines().last().expect("a Content-Type")
    );
    assert!(msg.len() > 3_000_000, "{}", msg.len());

    let read = calendar_items(msg.as_bytes());
    assert_eq!(read.items.len(), MAX_CALENDAR_ITEMS_READ);
    assert_eq!(read.unread, 1 + 10_000 - MAX_CALENDAR_ITEMS_READ);
    let items = &read.items;
    assert!(items.iter().all(|i| i.uid != "too-deep@x.test"));
    let long = &items[0];
    assert_eq!(long.uid, "long@x.test");
    assert_eq!(long.summary.len(), "start".len() + 200_000);
    assert!(long.summary.starts_with("startxxx") && long.summary.ends_with("xxx"));
    assert_eq!(long.location, "Room 1");
    assert_eq!(items[999].uid, "event-998@x.test");

    let update = calendar_update(read, |uids| {
        assert_eq!(uids.len(), MAX_CALENDAR_ITEMS);
        Ok::<_, ()>(Vec::new())
    })
    .expect("the update");
    assert_eq!(update.changes.len(), MAX_CALENDAR_ITEMS);
    assert_eq!(update.ignored, 10_001 - MAX_CALENDAR_ITEMS);
}

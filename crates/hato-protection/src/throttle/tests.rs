//! The throttle's arithmetic and decisions, on a manual clock.

use super::*;
use hato_core::Clock;
use hato_core::clock::ManualClock;
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Monday 2 March 2026, 00:00 UTC: hours and days start on the clock's round numbers.
fn clock() -> ManualClock {
    ManualClock::new(Timestamp::parse_human("2026-03-02T00:00:00Z").unwrap())
}

fn refusal(o: Outcome) -> Refusal {
    match o {
        Outcome::Refuse(r) => r,
        other => panic!("not refused: {other:?}"),
    }
}

fn note_rule(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Note(r) => r.rule.clone(),
        _ => None,
    }
}

fn figure(r: &Refusal, name: &str) -> String {
    r.reason
        .figure_value(name)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// One connection that sends one message of `rcpts` recipients, as the edge and delivery report
/// it; returns what `check` said.
fn deliver(th: &Throttle, a: IpAddr, rcpts: u32, now: Timestamp) -> Outcome {
    let o = th.check(a, now);
    if !o.refuses() {
        th.record_connection(a, now);
        th.record_message(a, rcpts, now);
    }
    o
}

#[test]
fn a_bursting_new_ip_is_throttled_by_the_probation_rule() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let a = ip("203.0.113.9");
    // Never seen: on probation from its first connection, said so as a note.
    assert_eq!(
        note_rule(&th.check(a, c.now())).as_deref(),
        Some("probation")
    );
    // 100 recipients in the hour: probation's limit, not above it.
    for _ in 0..10 {
        c.advance_seconds(60);
        let o = deliver(&th, a, 10, c.now());
        assert_eq!(note_rule(&o).as_deref(), Some("probation"), "{o:?}");
    }
    c.advance_seconds(60);
    th.record_message(a, 1, c.now());
    let r = refusal(th.check(a, c.now()));
    assert_eq!(
        r.reply.to_string(),
        "451 4.7.500 Server busy. Please try again later from [203.0.113.9]. (AS1)"
    );
    assert_eq!(r.reason.stage, Stage::Throttling);
    assert_eq!(r.reason.rule.as_deref(), Some("AS1"));
    assert_eq!(figure(&r, "recipients_last_hour"), "101");
    assert_eq!(figure(&r, "limit"), "100");
    assert_eq!(figure(&r, "since"), "2026-03-02T00:11:00Z");
    assert_eq!(figure(&r, "until"), "2026-03-02T01:11:00Z");
    assert_eq!(figure(&r, "strikes"), "1");
    assert_eq!(
        r.reason.text,
        "a new IP on probation sent more recipients in the last hour than probation allows; \
         throttled until 2026-03-02T01:11:00Z"
    );
    let s = th.status(a, c.now());
    let t = s.throttle.expect("throttled");
    assert_eq!((t.rule, t.value, t.limit, t.strikes), ("AS1", 101, 100, 1));
    assert!(s.on_probation && s.tracked);
    assert_eq!(s.limits.recipients_per_hour, Some(100));
}

#[test]
fn an_established_ip_sending_its_usual_volume_is_not_throttled_but_a_surge_is() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let a = ip("198.51.100.20");
    // Warm-up within probation (40 recipients an hour, 960 a day), then 80 an hour for four
    // weeks: never throttled.
    for hour in 0..31 * 24 {
        let per_message = if hour < 3 * 24 { 10 } else { 20 };
        for _ in 0..4 {
            let o = deliver(&th, a, per_message, c.now());
            assert!(!o.refuses(), "hour {hour}: {o:?}");
            c.advance_seconds(900);
        }
    }
    let s = th.status(a, c.now());
    assert!(!s.on_probation);
    assert!(
        (1_700..=1_920).contains(&s.daily_baseline),
        "{}",
        s.daily_baseline
    );
    // Its limit is ten times what its history supports.
    assert!(
        (s.daily_baseline * 10).abs_diff(s.limits.recipients_per_day) <= 10,
        "{s:?}"
    );
    assert_eq!(th.check(a, c.now()), Outcome::Pass);
    // A day of 24,000 recipients is far above that.
    let mut refused = None;
    for _ in 0..24 {
        match deliver(&th, a, 1_000, c.now()) {
            Outcome::Refuse(r) => {
                refused = Some(r);
                break;
            }
            _ => c.advance_seconds(HOUR.into()),
        }
    }
    let r = refused.expect("the surge is throttled");
    assert_eq!(r.reason.rule.as_deref(), Some("AS3"));
    assert!(r.reply.text.ends_with("(AS3)"), "{}", r.reply);
}

#[test]
fn a_throttle_ends_by_itself_and_each_repeat_lasts_twice_as_long_up_to_the_maximum() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let a = ip("192.0.2.77");
    let mut lengths = Vec::new();
    for _ in 0..7 {
        // A burst: 101 recipients at once.
        assert!(!deliver(&th, a, 101, c.now()).refuses());
        let r = refusal(th.check(a, c.now()));
        let s = th.status(a, c.now()).throttle.expect("throttled");
        lengths.push((s.until.0 - s.since.0) / 60_000_000);
        assert_eq!(r.reason.rule.as_deref(), Some("AS1"));
        // One second before its end it is still on; at its end it is over, by itself.
        c.advance_seconds((s.until.0 - s.since.0) / 1_000_000 - 1);
        assert!(th.check(a, c.now()).refuses());
        c.advance_seconds(1);
        assert!(!th.check(a, c.now()).refuses());
    }
    assert_eq!(lengths, [60, 120, 240, 480, 960, 1440, 1440]);
    // A month later the strikes are forgotten: an hour again (now by AS6, which applies to
    // established IPs too).
    c.advance_seconds(31 * DAY as i64);
    for _ in 0..=600 {
        th.record_connection(a, c.now());
    }
    let r = refusal(th.check(a, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS6"));
    assert_eq!(figure(&r, "strikes"), "1");
    let s = th.status(a, c.now()).throttle.expect("throttled");
    assert_eq!(s.until.0 - s.since.0, 3_600_000_000);
}

#[test]
fn spam_and_junk_reports_lower_the_limits_and_a_high_share_throttles() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let (clean, spammy) = (ip("203.0.113.1"), ip("203.0.113.2"));
    for a in [clean, spammy] {
        for _ in 0..5 {
            deliver(&th, a, 1, c.now());
        }
    }
    // Five messages judged spam: 5 of at least 20 is 25%, so 75% of the limits.
    for _ in 0..5 {
        th.record_spam(spammy, c.now());
    }
    assert_eq!(th.status(spammy, c.now()).junk_share_permille, 250);
    assert_eq!(
        th.status(spammy, c.now()).limits.recipients_per_hour,
        Some(75)
    );
    for a in [clean, spammy] {
        th.record_message(a, 75, c.now());
    }
    // 80 recipients: within the clean IP's 100, above the other's 75.
    assert!(!th.check(clean, c.now()).refuses());
    let r = refusal(th.check(spammy, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS1"));
    assert_eq!(
        (figure(&r, "recipients_last_hour"), figure(&r, "limit")),
        ("80".into(), "75".into())
    );
    // Half its mail reported as junk: AS4, whatever its volume.
    let b = ip("203.0.113.3");
    deliver(&th, b, 1, c.now());
    for _ in 0..9 {
        th.record_junk_report(b, c.now());
    }
    assert!(!th.check(b, c.now()).refuses(), "9 of 20 is 45%");
    th.record_junk_report(b, c.now());
    let r = refusal(th.check(b, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS4"));
    assert_eq!(figure(&r, "junk_share_permille"), "500");
}

#[test]
fn rcpts_to_unknown_recipients_throttle_by_their_share() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let (typos, harvester) = (ip("198.51.100.1"), ip("198.51.100.2"));
    // 9 unknown of 109 RCPTs: 8%.
    deliver(&th, typos, 100, c.now());
    for _ in 0..9 {
        th.record_unknown_recipient(typos, c.now());
    }
    assert!(!th.check(typos, c.now()).refuses());
    assert_eq!(
        th.status(typos, c.now()).unknown_recipient_share_permille,
        82
    );
    // 10 unknown and nothing else: 10 of at least 20, 50%.
    th.record_connection(harvester, c.now());
    for _ in 0..9 {
        th.record_unknown_recipient(harvester, c.now());
    }
    assert!(!th.check(harvester, c.now()).refuses(), "45%");
    th.record_unknown_recipient(harvester, c.now());
    let r = refusal(th.check(harvester, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS5"));
    assert_eq!(figure(&r, "unknown_recipient_share_permille"), "500");
}

#[test]
fn too_many_connections_in_a_minute_throttle() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let a = ip("192.0.2.200");
    // Probation allows 60 a minute: the 61st is admitted (the check sees the 60 before it), the
    // 62nd is not.
    for i in 0..=60 {
        assert!(!th.check(a, c.now()).refuses(), "connection {i}");
        th.record_connection(a, c.now());
    }
    let r = refusal(th.check(a, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS6"));
    assert_eq!(figure(&r, "connections_last_minute"), "61");
    assert_eq!(figure(&r, "limit"), "60");
    // An hour later the throttle is over, and the window it read starts from zero.
    c.advance_seconds(3600);
    assert!(!th.check(a, c.now()).refuses());
}

#[test]
fn an_exempt_ip_is_never_throttled_and_the_entry_takes_effect_at_once() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let (a, other) = (ip("192.0.2.10"), ip("192.0.3.10"));
    for x in [a, other] {
        deliver(&th, x, 500, c.now());
        assert!(th.check(x, c.now()).refuses());
    }
    th.set_exemptions([Exemption {
        tenant: "contoso".into(),
        network: Network::parse("192.0.2.0/24").unwrap(),
    }]);
    match th.check(a, c.now()) {
        Outcome::Note(r) => {
            assert_eq!(r.rule.as_deref(), Some("exemption"));
            assert_eq!(
                r.text,
                "exempt from throttling: on the exemption list of tenant contoso (192.0.2.0/24)"
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(th.check(other, c.now()).refuses());
    assert_eq!(th.status(a, c.now()).exemptions.len(), 1);
    // IPv6: a /48 covers the /64 the client is in; IPv4-mapped is IPv4.
    th.set_exemptions([
        Exemption {
            tenant: "fabrikam".into(),
            network: Network::parse("2001:db8:7::/48").unwrap(),
        },
        Exemption {
            tenant: "contoso".into(),
            network: Network::parse("192.0.2.10").unwrap(),
        },
    ]);
    assert!(!th.check(ip("2001:db8:7:1::25"), c.now()).refuses());
    assert!(th.exemptions_of(ip("2001:db8:8::25")).is_empty());
    assert_eq!(th.exemptions_of(ip("::ffff:192.0.2.10")).len(), 1);
    // Taken off the list, it is throttled again (its throttle has not ended).
    th.set_exemptions([]);
    assert!(th.check(a, c.now()).refuses());
}

#[test]
fn a_release_ends_the_throttle_and_holds_the_rules_off_for_the_grace_period() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let a = ip("203.0.113.50");
    deliver(&th, a, 200, c.now());
    assert!(th.check(a, c.now()).refuses());
    assert!(th.release(a, c.now()));
    assert!(!th.release(a, c.now()), "no throttle on any more");
    let s = th.status(a, c.now());
    assert!(s.throttle.is_none());
    let rel = s.release.expect("released");
    assert_eq!(rel.rules_resume.0 - rel.released.0, 24 * 3_600_000_000);
    // It may burst during the grace period …
    for _ in 0..10 {
        assert_eq!(
            note_rule(&deliver(&th, a, 200, c.now())).as_deref(),
            Some("release")
        );
    }
    // … and the rules apply again after it.
    c.advance_seconds(24 * 3600);
    deliver(&th, a, 200, c.now());
    let r = refusal(th.check(a, c.now()));
    assert_eq!(r.reason.rule.as_deref(), Some("AS1"));
    assert_eq!(figure(&r, "strikes"), "1", "a release forgets the strikes");
}

#[test]
fn ipv6_is_tracked_per_64_and_ipv4_mapped_as_ipv4() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    th.record_message(ip("2001:db8:1:2::1"), 60, c.now());
    th.record_message(ip("2001:db8:1:2:ffff::9"), 60, c.now());
    let s = th.status(ip("2001:db8:1:2::77"), c.now());
    assert_eq!(s.key, "2001:db8:1:2::/64");
    assert_eq!(s.recipients_last_hour, 120);
    assert!(th.check(ip("2001:db8:1:2::abcd"), c.now()).refuses());
    assert!(!th.check(ip("2001:db8:1:3::1"), c.now()).refuses());
    th.record_message(ip("::ffff:192.0.2.1"), 7, c.now());
    let s = th.status(ip("192.0.2.1"), c.now());
    assert_eq!((s.key.as_str(), s.recipients_last_hour), ("192.0.2.1", 7));
    assert_eq!(th.tracked(), 2);
}

#[test]
fn the_table_is_bounded_and_evicts_probationary_and_old_entries_before_throttled_ones() {
    let c = clock();
    let settings = ThrottleSettings {
        max_tracked_ips: 100,
        ..ThrottleSettings::default()
    };
    let th = Throttle::new(settings);
    let throttled: Vec<IpAddr> = (1..=10).map(|i| ip(&format!("10.9.0.{i}"))).collect();
    for a in &throttled {
        deliver(&th, *a, 500, c.now());
        assert!(th.check(*a, c.now()).refuses());
    }
    for i in 0..10_000u32 {
        if i % 10 == 0 {
            c.advance_seconds(1);
        }
        th.record_connection(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), c.now());
        assert!(th.tracked() <= 100);
    }
    for a in &throttled {
        assert!(th.status(*a, c.now()).throttle.is_some(), "{a} kept");
    }
    // The clean ones kept are the most recently seen.
    let last = IpAddr::from((0x0a00_0000u32 + 9_999).to_be_bytes());
    let first = IpAddr::from(0x0a00_0000u32.to_be_bytes());
    assert!(th.status(last, c.now()).tracked);
    assert!(!th.status(first, c.now()).tracked);
}

#[test]
fn a_snapshot_brings_every_record_back_and_a_damaged_one_is_refused() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let ips = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "198.51.100.9"].map(ip);
    deliver(&th, ips[0], 500, c.now());
    assert!(th.check(ips[0], c.now()).refuses());
    th.release(ips[1], c.now());
    c.advance_seconds(3 * DAY as i64);
    deliver(&th, ips[2], 30, c.now());
    th.record_spam(ips[2], c.now());
    th.record_unknown_recipient(ips[3], c.now());
    let mut bytes = Vec::new();
    assert_eq!(th.write_snapshot(&mut bytes).unwrap(), 4);
    let back = Throttle::read_snapshot(ThrottleSettings::default(), &bytes[..]).unwrap();
    assert_eq!(back.tracked(), 4);
    for a in ips {
        assert_eq!(back.status(a, c.now()), th.status(a, c.now()), "{a}");
    }
    // One byte changed, the end cut off, another file: refused, naming why.
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    let err = Throttle::read_snapshot(ThrottleSettings::default(), &flipped[..])
        .err()
        .unwrap();
    assert!(matches!(err, SnapshotError::Corrupt(_)), "{err}");
    for cut in [bytes.len() - 1, bytes.len() / 2, 10] {
        let err = Throttle::read_snapshot(ThrottleSettings::default(), &bytes[..cut])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "damaged throttle snapshot: the file ends early"
        );
    }
    let err = Throttle::read_snapshot(ThrottleSettings::default(), &b"GIF89a.............."[..])
        .err()
        .unwrap();
    assert!(matches!(err, SnapshotError::Format(_)), "{err}");
    // Through a file: written whole, read back; no file is no snapshot.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("throttle.state");
    assert!(
        Throttle::load(ThrottleSettings::default(), &path)
            .unwrap()
            .is_none()
    );
    assert_eq!(th.save(&path).unwrap(), 4);
    let back = Throttle::load(ThrottleSettings::default(), &path)
        .unwrap()
        .unwrap();
    assert_eq!(back.status(ips[0], c.now()), th.status(ips[0], c.now()));
    assert!(!dir.path().join("throttle.tmp").exists());
}

#[test]
fn exemption_entries_are_parsed_as_exchange_takes_them_and_refused_naming_the_rule() {
    for (text, shown) in [
        ("192.0.2.7", "192.0.2.7"),
        (" 192.0.2.7/32 ", "192.0.2.7"),
        ("192.0.2.7/24", "192.0.2.0/24"),
        ("192.0.2.128/25", "192.0.2.128/25"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7/120", "192.0.2.0/24"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:1:2::5/64", "2001:db8:1:2::/64"),
        ("2001:db8:1::/48", "2001:db8:1::/48"),
    ] {
        assert_eq!(Network::parse(text).unwrap().to_string(), shown, "{text}");
    }
    for (text, err) in [
        (
            "192.0.2.0/23",
            "192.0.2.0/23: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges)",
        ),
        (
            "0.0.0.0/0",
            "0.0.0.0/0: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges)",
        ),
        (
            "::ffff:192.0.2.0/100",
            "::ffff:192.0.2.0/100: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges)",
        ),
        (
            "2001:db8::/32",
            "2001:db8::/32: an IPv6 network must be /48 to /128",
        ),
        (
            "192.0.2.0/33",
            "192.0.2.0/33: an IPv4 network must be /24 to /32 (as Exchange Online's connector IP ranges)",
        ),
        (
            "192.0.2.1-192.0.2.9",
            "192.0.2.1-192.0.2.9: not an IP address or CIDR network (IPv4 a.b.c.d or a.b.c.d/24 to /32, IPv6 x:x::x or x:x::/48 to /128)",
        ),
    ] {
        assert_eq!(Network::parse(text).unwrap_err().to_string(), err, "{text}");
    }
    for bad in [
        "",
        "mail.example",
        "192.0.2.0/",
        "192.0.2.0/+24",
        "192.0.2.0/024x",
        "1.2.3",
    ] {
        assert!(
            matches!(Network::parse(bad), Err(NetworkError::Syntax(_))),
            "{bad}"
        );
    }
    let n = Network::parse("192.0.2.0/24").unwrap();
    assert!(n.contains(ip("192.0.2.255")) && n.contains(ip("::ffff:192.0.2.1")));
    assert!(!n.contains(ip("192.0.3.0")) && !n.contains(ip("2001:db8::1")));
}

#[test]
fn settings_are_checked_and_name_the_setting() {
    assert_eq!(ThrottleSettings::default().validate(), Ok(()));
    for (change, name) in [
        (
            ThrottleSettings {
                ipv6_prefix_length: 65,
                ..Default::default()
            },
            "throttle.ipv6_prefix_length must be between 1 and 64 (is 65)",
        ),
        (
            ThrottleSettings {
                max_tracked_ips: 0,
                ..Default::default()
            },
            "throttle.max_tracked_ips must be greater than 0",
        ),
        (
            ThrottleSettings {
                junk_share_percent: 101,
                ..Default::default()
            },
            "throttle.junk_share_percent must be between 1 and 100 (is 101)",
        ),
        (
            ThrottleSettings {
                throttle_minutes: 25 * 60,
                ..Default::default()
            },
            "throttle.throttle_minutes (1500) must not exceed throttle.max_throttle_hours (24) in minutes",
        ),
    ] {
        assert_eq!(change.validate().unwrap_err(), name);
    }
    assert_eq!(
        rule("as5").map(|r| r.figure),
        Some("unknown_recipient_share_permille")
    );
    assert!(rule("AS7").is_none());
}

#[test]
fn a_disabled_throttle_passes_everyone_and_records_nothing() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings {
        enabled: false,
        ..Default::default()
    });
    let a = ip("192.0.2.1");
    for _ in 0..100 {
        assert_eq!(deliver(&th, a, 1000, c.now()), Outcome::Pass);
    }
    assert_eq!(th.tracked(), 0);
}

proptest! {
    /// The estimate over the last hour lies between what the current hour bucket holds and what
    /// the two buckets hold together, and so does the exact count of the last 3,600 seconds.
    #[test]
    fn the_sliding_estimate_is_bounded_by_its_buckets(
        mut offsets in proptest::collection::vec(0i64..3 * 3600, 1..200),
        end in 0i64..3600,
    ) {
        let c = clock();
        let start = c.now();
        let th = Throttle::new(ThrottleSettings::default());
        let a = ip("192.0.2.1");
        offsets.sort_unstable();
        for o in &offsets {
            th.record_message(a, 1, start.plus_seconds(*o));
        }
        let t = offsets.last().copied().unwrap_or(0) + end;
        let now = start.plus_seconds(t);
        let est = th.status(a, now).recipients_last_hour;
        let bucket = t / 3600 * 3600;
        let current = offsets.iter().filter(|o| **o >= bucket).count() as u64;
        let both = offsets.iter().filter(|o| **o >= bucket - 3600).count() as u64;
        let exact = offsets.iter().filter(|o| **o > t - 3600).count() as u64;
        prop_assert!(current <= est && est <= both, "{current} <= {est} <= {both}");
        prop_assert!(current <= exact && exact <= both);
    }

    /// A steady daily volume is what the history says it supports, however long it has been
    /// kept up (from its first full day).
    #[test]
    fn a_steady_daily_volume_is_its_baseline(volume in 1u32..50_000, days in 1u32..90) {
        let c = clock();
        let th = Throttle::new(ThrottleSettings::default());
        let a = ip("198.51.100.7");
        c.advance_seconds(12 * 3600);
        for _ in 0..days {
            th.record_message(a, volume, c.now());
            c.advance_seconds(DAY.into());
        }
        let b = th.status(a, c.now()).daily_baseline as f64;
        let v = f64::from(volume);
        prop_assert!((b - v).abs() <= (v * 0.001).max(1.0), "{b} for {volume}");
    }

    /// Whatever arrives, the table stays within its bound, and no running throttle is evicted
    /// while there are other entries to evict.
    #[test]
    fn the_table_stays_bounded_and_keeps_its_throttles(
        events in proptest::collection::vec((0u32..2_000, 0u8..4, 0i64..30), 1..1_500),
    ) {
        let c = clock();
        let th = Throttle::new(ThrottleSettings { max_tracked_ips: 64, ..Default::default() });
        let offender = ip("203.0.113.1");
        deliver(&th, offender, 1_000, c.now());
        prop_assert!(th.check(offender, c.now()).refuses());
        let until = th.status(offender, c.now()).throttle.map(|t| t.until);
        for (n, kind, dt) in events {
            c.advance_seconds(dt);
            let a = IpAddr::from((0x0a00_0000 + n).to_be_bytes());
            match kind {
                0 => th.record_connection(a, c.now()),
                1 => th.record_message(a, n % 7, c.now()),
                2 => th.record_unknown_recipient(a, c.now()),
                _ => { th.check(a, c.now()); }
            }
            prop_assert!(th.tracked() <= 64);
            if Some(c.now()) < until {
                prop_assert!(th.status(offender, c.now()).throttle.is_some());
            }
        }
    }
}

#[test]
fn loopback_clients_are_exempt_unless_the_setting_is_off() {
    let c = clock();
    for a in [
        ip("127.0.0.1"),
        ip("127.3.2.1"),
        ip("::1"),
        ip("::ffff:127.0.0.1"),
    ] {
        let th = Throttle::new(ThrottleSettings::default());
        // Far above every probation limit: still let in, with a note that says why.
        for _ in 0..50 {
            let o = deliver(&th, a, 100, c.now());
            assert_eq!(note_rule(&o).as_deref(), Some("exemption"), "{a}: {o:?}");
        }
        let th = Throttle::new(ThrottleSettings {
            exempt_loopback: false,
            ..ThrottleSettings::default()
        });
        let throttled = (0..50).any(|_| deliver(&th, a, 100, c.now()).refuses());
        assert!(throttled, "{a} is throttled when loopback is not exempt");
    }
}

/// Throttles `a` by the probation rule at `now` (101 recipients in its first hour).
fn throttle_now(th: &Throttle, a: IpAddr, now: Timestamp) {
    th.record_message(a, 101, now);
    assert!(th.check(a, now).refuses(), "{a} throttled");
}

#[test]
fn the_list_of_throttled_ips_is_newest_first_paged_and_leaves_out_ended_exempt_and_released_ones() {
    let c = clock();
    let th = Throttle::new(ThrottleSettings::default());
    let (a, b, d, e) = (
        ip("203.0.113.1"),
        ip("203.0.113.2"),
        ip("2001:db8:1:2::7"),
        ip("198.51.100.9"),
    );
    throttle_now(&th, a, c.now());
    c.advance_seconds(60);
    throttle_now(&th, b, c.now());
    c.advance_seconds(60);
    throttle_now(&th, d, c.now());
    // A clean IP is tracked, not listed.
    assert!(!deliver(&th, e, 1, c.now()).refuses());
    let (all, total) = th.throttled(c.now(), 0, 10);
    assert_eq!(total, 3);
    let keys: Vec<&str> = all.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["2001:db8:1:2::/64", "203.0.113.2", "203.0.113.1"]);
    assert_eq!(all[2].rule, "AS1");
    assert_eq!(all[2].since.to_rfc3339(), "2026-03-02T00:00:00Z");
    assert_eq!(all[2].until.to_rfc3339(), "2026-03-02T01:00:00Z");
    assert_eq!(all[2].strikes, 1);
    // Paged: the second page of one holds the second newest; the total stays.
    let (page, total) = th.throttled(c.now(), 1, 1);
    assert_eq!(total, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].key, "203.0.113.2");
    assert!(th.throttled(c.now(), 3, 10).0.is_empty());
    // Released, exempted: no longer answered 451, so no longer listed.
    th.release(b, c.now());
    th.set_exemptions([Exemption {
        tenant: "contoso".into(),
        network: Network::parse("203.0.113.1").unwrap(),
    }]);
    let (rest, total) = th.throttled(c.now(), 0, 10);
    assert_eq!(total, 1);
    assert_eq!(rest[0].key, "2001:db8:1:2::/64");
    // An hour later the throttle has ended by itself.
    c.advance_seconds(3600);
    assert_eq!(th.throttled(c.now(), 0, 10).1, 0);
}

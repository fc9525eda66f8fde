//! Outbound pools' warm-up in the store (migration 33): plans kept over a reopen, day counts
//! added up and kept, throttling back-offs that grow only once the last one has ended and are
//! forgotten on a success.

use hato_core::Timestamp;
use hato_core::clock::{Clock, ManualClock};
use hato_store::*;
use std::sync::Arc;

/// A UTC day (days since 1970-01-01) the counts are kept under.
const DAY: i64 = 20_423;

fn plan(pool: &str, limits: Vec<u64>) -> WarmupPlan {
    WarmupPlan {
        pool: pool.into(),
        kind: "custom".into(),
        monthly_volume: None,
        daily_limits: limits,
        start: Timestamp::parse_human("2026-12-01").unwrap(),
        created: Timestamp(0),
    }
}

fn throttle(domain: &str, reduce_by: u64) -> ThrottleReply {
    ThrottleReply {
        pool: "normal".into(),
        domain: domain.into(),
        reply: "421 4.7.0 Try again later".into(),
        host: "mx.example.test [127.0.0.1:25]".into(),
        day: DAY,
        first_secs: 600,
        max_secs: 1800,
        reduce_by,
    }
}

#[test]
fn plans_and_day_counts_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        assert!(s.warmup_plans().unwrap().is_empty());
        s.set_warmup_plan(plan("normal", vec![10, 20]))
            .wait()
            .unwrap();
        s.set_warmup_plan(plan("high-risk", vec![5]))
            .wait()
            .unwrap();
        // Replacing keeps one plan per pool.
        s.set_warmup_plan(plan("normal", vec![50, 100, 200]))
            .wait()
            .unwrap();
        s.count_warmup("normal", DAY, 7, 0).wait().unwrap();
        s.count_warmup("normal", DAY, 3, 15).wait().unwrap();
        s.count_warmup("normal", DAY - 1, 1, 0).wait().unwrap();
        s.close();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let plans = s.warmup_plans().unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].pool, "high-risk");
    assert_eq!(plans[1].daily_limits, vec![50, 100, 200]);
    let days = s.warmup_days(DAY).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].sent, days[0].deferred), (10, 15));
    assert_eq!(s.warmup_days(DAY - 1).unwrap()[0].sent, 1);
    // Days more than 60 before the one counted go.
    s.count_warmup("normal", DAY + 61, 1, 0).wait().unwrap();
    assert!(s.warmup_days(DAY).unwrap().is_empty());
    assert!(s.clear_warmup_plan("normal").wait().unwrap());
    assert!(!s.clear_warmup_plan("normal").wait().unwrap());
    assert_eq!(s.warmup_plans().unwrap().len(), 1);
}

#[test]
fn a_back_off_grows_only_after_it_ended_and_a_success_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse_human("2026-12-01T10:00:00Z").unwrap(),
    ));
    let s = SqliteStore::open_with_clock(dir.path(), clock.clone()).unwrap();
    let (b, began) = s
        .record_throttle(throttle("example.test", 5))
        .wait()
        .unwrap();
    assert!(began);
    assert_eq!(b.count, 1);
    assert_eq!((b.until.0 - clock.now().0) / 1_000_000, 600);
    // Another reply while it is in force: the same back-off, nothing counted again.
    clock.advance_seconds(60);
    let (again, began) = s
        .record_throttle(throttle("example.test", 3))
        .wait()
        .unwrap();
    assert!(!began);
    assert_eq!(again, b);
    let day = &s.warmup_days(DAY).unwrap()[0];
    assert_eq!((day.throttled, day.reduced), (1, 5));
    // After it ended: the second in a row waits twice as long; the third is capped.
    clock.advance_seconds(600);
    let (second, began) = s
        .record_throttle(throttle("example.test", 2))
        .wait()
        .unwrap();
    assert!(began);
    assert_eq!(second.count, 2);
    assert_eq!((second.until.0 - clock.now().0) / 1_000_000, 1200);
    clock.advance_seconds(1200);
    let (third, _) = s
        .record_throttle(throttle("example.test", 0))
        .wait()
        .unwrap();
    assert_eq!((third.until.0 - clock.now().0) / 1_000_000, 1800);
    let day = &s.warmup_days(DAY).unwrap()[0];
    assert_eq!((day.throttled, day.reduced), (3, 7));
    // Another domain has its own.
    s.record_throttle(throttle("other.test", 0)).wait().unwrap();
    assert_eq!(s.outbound_backoffs().unwrap().len(), 2);
    // A delivery forgets it: the next throttling starts from the first step.
    s.clear_backoff("normal", "example.test").wait().unwrap();
    let left = s.outbound_backoffs().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].domain, "other.test");
    clock.advance_seconds(1800);
    let (fresh, _) = s
        .record_throttle(throttle("example.test", 0))
        .wait()
        .unwrap();
    assert_eq!(fresh.count, 1);
}

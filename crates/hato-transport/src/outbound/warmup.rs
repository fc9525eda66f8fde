//! Warm-up plans for outbound pools (issue 10 item 9): the arithmetic, without I/O.
//!
//! The seed (D4, from Microsoft's guidance on shared IPs) gives two flat plans: estimate the
//! monthly volume, then send monthly ÷ 30 a day for the first 30 days, or more aggressively
//! monthly ÷ 15 a day for 15 days ("月間 9万通 … 毎日3千通" / "毎日6千通"), and send less when
//! throttled. It describes no ramp from a small start, so the two plans are flat: every day of
//! the plan has the same allowance, monthly ÷ days rounded up (so the month's volume fits in the
//! plan), at least 1. A `custom` plan gives one allowance per day, for any ramp an operator
//! wants (e.g. `50,100,200,…`).
//!
//! Plan days are UTC days: day 1 is the UTC day of the plan's start, and each allowance is for
//! one UTC day, whatever time of day the plan was set. After the last day the plan is complete
//! and the pool is no longer paced. Before the first, it is not paced yet.
//!
//! What is counted is recipients delivered (accepted by the remote server): a receiving
//! provider's reputation systems count the mail they get per recipient, and the seed's "通数"
//! (pieces of mail delivered) is per recipient.

use hato_core::Timestamp;
use hato_store::WarmupPlan;

const DAY_MICROS: i64 = 86_400_000_000;
/// The longest custom plan: a year of days.
pub const MAX_PLAN_DAYS: usize = 366;
/// The largest daily allowance or monthly volume accepted.
pub const MAX_VOLUME: u64 = 1_000_000_000;

/// A plan's shape, as `--plan` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanKind {
    /// Monthly volume ÷ 30 a day for 30 days.
    ThirtyDay,
    /// Monthly volume ÷ 15 a day for 15 days (the seed's "more aggressive" plan).
    FifteenDay,
    /// One allowance per day, as given.
    Custom,
}

impl PlanKind {
    pub fn parse(s: &str) -> Option<PlanKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "30-day" | "30" => Some(PlanKind::ThirtyDay),
            "15-day" | "15" => Some(PlanKind::FifteenDay),
            "custom" => Some(PlanKind::Custom),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::ThirtyDay => "30-day",
            PlanKind::FifteenDay => "15-day",
            PlanKind::Custom => "custom",
        }
    }
}

/// Why a plan cannot be made; each names the flag (and the API field) at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("--plan: {0:?} is not a plan; use 30-day, 15-day or custom")]
    UnknownPlan(String),
    #[error("--monthly-volume: required with --plan {0}")]
    NoVolume(&'static str),
    #[error("--monthly-volume: must be at least 1 (got {0})")]
    ZeroVolume(u64),
    #[error("--monthly-volume: at most {MAX_VOLUME} (got {0})")]
    VolumeTooLarge(u64),
    #[error("--monthly-volume: not with --plan custom (give --daily-limits)")]
    VolumeWithCustom,
    #[error("--daily-limits: required with --plan custom (e.g. 50,100,200)")]
    NoLimits,
    #[error("--daily-limits: only with --plan custom")]
    LimitsWithoutCustom,
    #[error("--daily-limits: {0}")]
    BadLimits(String),
}

/// The daily allowances of a plan.
pub fn daily_limits(
    kind: PlanKind,
    monthly_volume: Option<u64>,
    custom: Option<&str>,
) -> Result<Vec<u64>, PlanError> {
    let days: u64 = match kind {
        PlanKind::ThirtyDay => 30,
        PlanKind::FifteenDay => 15,
        PlanKind::Custom => {
            if monthly_volume.is_some() {
                return Err(PlanError::VolumeWithCustom);
            }
            return parse_limits(custom.ok_or(PlanError::NoLimits)?);
        }
    };
    if custom.is_some() {
        return Err(PlanError::LimitsWithoutCustom);
    }
    let monthly = monthly_volume.ok_or(PlanError::NoVolume(kind.as_str()))?;
    if monthly == 0 {
        return Err(PlanError::ZeroVolume(monthly));
    }
    if monthly > MAX_VOLUME {
        return Err(PlanError::VolumeTooLarge(monthly));
    }
    let per_day = monthly.div_ceil(days).max(1);
    Ok(vec![per_day; days as usize])
}

/// `50,100,200`: one positive allowance per day, at most [`MAX_PLAN_DAYS`].
pub fn parse_limits(text: &str) -> Result<Vec<u64>, PlanError> {
    let bad = |m: String| PlanError::BadLimits(m);
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("empty; give one number per day, e.g. 50,100,200".into()));
    }
    let mut limits = Vec::new();
    for (i, part) in text.split(',').enumerate() {
        if i >= MAX_PLAN_DAYS {
            return Err(bad(format!("at most {MAX_PLAN_DAYS} days")));
        }
        let part = part.trim();
        let n: u64 = part.parse().map_err(|_| {
            bad(format!(
                "day {}: {part:?} is not a whole number of recipients",
                i + 1
            ))
        })?;
        if n == 0 {
            return Err(bad(format!("day {}: must be at least 1", i + 1)));
        }
        if n > MAX_VOLUME {
            return Err(bad(format!("day {}: at most {MAX_VOLUME}", i + 1)));
        }
        limits.push(n);
    }
    Ok(limits)
}

/// The UTC day of a time: days since 1970-01-01.
pub fn utc_day(t: Timestamp) -> i64 {
    t.0.div_euclid(DAY_MICROS)
}

/// The start (midnight UTC) of a UTC day.
pub fn day_start(day: i64) -> Timestamp {
    Timestamp(day.saturating_mul(DAY_MICROS))
}

/// Where a plan stands on a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanDay {
    /// Its first day is later.
    NotStarted,
    /// Day `n` (1-based) of `of`, with the day's allowance.
    Day { n: usize, of: usize, limit: u64 },
    /// Its last day has passed.
    Complete,
}

/// The plan's standing on the UTC day `day`.
pub fn plan_day(plan: &WarmupPlan, day: i64) -> PlanDay {
    let first = utc_day(plan.start);
    if day < first {
        return PlanDay::NotStarted;
    }
    let index = usize::try_from(day - first).unwrap_or(usize::MAX);
    match plan.daily_limits.get(index) {
        Some(&limit) => PlanDay::Day {
            n: index + 1,
            of: plan.daily_limits.len(),
            limit,
        },
        None => PlanDay::Complete,
    }
}

/// When the plan completes: the start of the UTC day after its last.
pub fn completes(plan: &WarmupPlan) -> Timestamp {
    let days = i64::try_from(plan.daily_limits.len()).unwrap_or(i64::MAX);
    day_start(utc_day(plan.start).saturating_add(days))
}

/// What a throttling reply takes from the day's allowance while a plan is in force: half of
/// what remains (rounded up, so one remaining goes too), the seed's "配信数を減らしましょう"
/// (send less when throttled) made a rule.
pub fn throttle_reduction(remaining: u64) -> u64 {
    remaining.div_ceil(2)
}

/// Whether a reply is a receiver's throttling: `421` or `451` with an enhanced status in class
/// 4.7 (`421 4.7.0 Try again later`, Exchange's `451 4.7.500-699` IP throttling, reference §8).
pub fn is_throttling(code: u16, enhanced: &str) -> bool {
    (code == 421 || code == 451) && enhanced.starts_with("4.7.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(limits: Vec<u64>, start: &str) -> WarmupPlan {
        WarmupPlan {
            pool: "normal".into(),
            kind: "custom".into(),
            monthly_volume: None,
            daily_limits: limits,
            start: Timestamp::parse_human(start).unwrap(),
            created: Timestamp(0),
        }
    }

    #[test]
    fn the_seeds_examples_give_its_figures() {
        // 90,000 a month: 3,000 a day for 30 days, or 6,000 a day for 15 days (seed D4).
        let thirty = daily_limits(PlanKind::ThirtyDay, Some(90_000), None).unwrap();
        assert_eq!(thirty, vec![3_000; 30]);
        let fifteen = daily_limits(PlanKind::FifteenDay, Some(90_000), None).unwrap();
        assert_eq!(fifteen, vec![6_000; 15]);
    }

    #[test]
    fn a_volume_that_does_not_divide_rounds_up_and_never_to_zero() {
        assert_eq!(
            daily_limits(PlanKind::ThirtyDay, Some(100), None).unwrap(),
            vec![4; 30]
        );
        assert_eq!(
            daily_limits(PlanKind::FifteenDay, Some(1), None).unwrap(),
            vec![1; 15]
        );
        assert_eq!(
            daily_limits(PlanKind::ThirtyDay, Some(300), None).unwrap()[0],
            10
        );
    }

    #[test]
    fn bad_input_names_the_flag() {
        let e = daily_limits(PlanKind::ThirtyDay, Some(0), None).unwrap_err();
        assert!(e.to_string().starts_with("--monthly-volume"), "{e}");
        let e = daily_limits(PlanKind::ThirtyDay, None, None).unwrap_err();
        assert!(e.to_string().starts_with("--monthly-volume"), "{e}");
        let e = daily_limits(PlanKind::Custom, None, None).unwrap_err();
        assert!(e.to_string().starts_with("--daily-limits"), "{e}");
        for bad in ["", "50,,100", "50,0", "ten", "-5", "50;100"] {
            let e = daily_limits(PlanKind::Custom, None, Some(bad)).unwrap_err();
            assert!(e.to_string().starts_with("--daily-limits"), "{bad}: {e}");
        }
        let long = vec!["1"; MAX_PLAN_DAYS + 1].join(",");
        assert!(parse_limits(&long).is_err());
        assert_eq!(
            daily_limits(PlanKind::Custom, None, Some(" 50, 100,200 ")).unwrap(),
            vec![50, 100, 200]
        );
        assert!(PlanKind::parse("weekly").is_none());
        assert_eq!(PlanKind::parse("15-day"), Some(PlanKind::FifteenDay));
    }

    #[test]
    fn plan_days_are_utc_days_from_the_start_day() {
        let p = plan(vec![10, 20, 40], "2026-12-01T18:30:00Z");
        let day = |s: &str| utc_day(Timestamp::parse_human(s).unwrap());
        assert_eq!(
            plan_day(&p, day("2026-11-30T23:59:59Z")),
            PlanDay::NotStarted
        );
        // The rest of the start's own day is day 1, the next midnight begins day 2.
        assert_eq!(
            plan_day(&p, day("2026-12-01T00:00:00Z")),
            PlanDay::Day {
                n: 1,
                of: 3,
                limit: 10
            }
        );
        assert_eq!(
            plan_day(&p, day("2026-12-02T00:00:00Z")),
            PlanDay::Day {
                n: 2,
                of: 3,
                limit: 20
            }
        );
        assert_eq!(
            plan_day(&p, day("2026-12-03T23:59:59Z")),
            PlanDay::Day {
                n: 3,
                of: 3,
                limit: 40
            }
        );
        assert_eq!(plan_day(&p, day("2026-12-04T00:00:00Z")), PlanDay::Complete);
        assert_eq!(completes(&p).to_rfc3339(), "2026-12-04T00:00:00Z");
        assert_eq!(
            day_start(day("2026-12-01T18:30:00Z")).to_rfc3339(),
            "2026-12-01T00:00:00Z"
        );
        // Before 1970 still floors (div_euclid), not towards zero.
        assert_eq!(utc_day(Timestamp(-1)), -1);
    }

    #[test]
    fn throttling_halves_what_remains_and_is_recognised_by_its_codes() {
        assert_eq!(throttle_reduction(10), 5);
        assert_eq!(throttle_reduction(7), 4);
        assert_eq!(throttle_reduction(1), 1);
        assert_eq!(throttle_reduction(0), 0);
        assert!(is_throttling(421, "4.7.0"));
        assert!(is_throttling(451, "4.7.650"));
        assert!(!is_throttling(451, "4.3.0"));
        assert!(!is_throttling(450, "4.7.1"));
        assert!(!is_throttling(550, "5.7.1"));
    }
}

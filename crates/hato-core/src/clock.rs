//! Time, injected: production uses the system clock, tests a clock they move by hand.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// Microseconds since the Unix epoch, UTC: how the store keeps every time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_micros())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0).single().unwrap_or_default()
    }

    /// RFC 3339, UTC, second precision: what the API and CLI show.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// RFC 5322 §3.3 date-time, for Received and Date header fields.
    pub fn to_rfc5322(self) -> String {
        self.to_datetime()
            .format("%a, %d %b %Y %H:%M:%S +0000")
            .to_string()
    }

    pub fn minus_days(self, days: u32) -> Self {
        Timestamp(self.0 - i64::from(days) * 86_400_000_000)
    }

    pub fn plus_seconds(self, secs: i64) -> Self {
        Timestamp(self.0 + secs * 1_000_000)
    }

    /// Parses what a person gives as a time: RFC 3339 (`2026-11-28T21:00:00Z`), a date
    /// (`2026-11-28`, midnight UTC) or `YYYY-MM-DD HH:MM[:SS]` (UTC).
    pub fn parse_human(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_datetime(dt.with_timezone(&Utc)));
        }
        for fmt in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Self::from_datetime(naive.and_utc()));
            }
        }
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| Self::from_datetime(n.and_utc()))
    }
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }
}

/// A clock that only moves when told to; for tests of expiry and retention.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn advance_seconds(&self, secs: i64) {
        self.0.fetch_add(secs * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_type() {
        let a = Timestamp::parse_human("2026-11-28T21:00:00Z").unwrap();
        assert_eq!(Timestamp::parse_human("2026-11-28 21:00").unwrap(), a);
        assert_eq!(a.to_rfc3339(), "2026-11-28T21:00:00Z");
        assert_eq!(
            Timestamp::parse_human("2026-11-28").unwrap().to_rfc3339(),
            "2026-11-28T00:00:00Z"
        );
        assert!(Timestamp::parse_human("yesterday").is_none());
        assert_eq!(a.to_rfc5322(), "Sat, 28 Nov 2026 21:00:00 +0000");
    }
}

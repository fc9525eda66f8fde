//! One sending IP's record: compact counters over sliding windows, decayed history, and its
//! throttle. 64 bytes, so that a million IPs fit in well under 100 MB (`bench/edge.sh`).
//!
//! Times are whole seconds since [`BASE`] (2020-01-01T00:00:00Z) in a `u32` (good until 2156):
//! half the size of `Timestamp`, and a second is finer than any rule needs.
//!
//! A window (a minute, an hour, a day) is two counters: the current bucket and the one before
//! it, aligned to the clock (`now / length`). The count over the last window is estimated as
//! the current bucket plus the previous one weighted by how much of it still lies within the
//! window (the sliding-window counter of rate limiters): never below what the current bucket
//! holds, never above both buckets together, and exact for a steady rate. Lists of timestamps
//! would be exact, but cost memory per message; an attacker controls how many messages there
//! are, not how large a record is.

use super::{Params, RULES};
use hato_core::Timestamp;

/// 2020-01-01T00:00:00Z in seconds since the Unix epoch: the zero of a record's times.
pub(crate) const BASE: i64 = 1_577_836_800;
pub(crate) const MINUTE: u32 = 60;
pub(crate) const HOUR: u32 = 3_600;
pub(crate) const DAY: u32 = 86_400;

/// A record's time for `t`: seconds since [`BASE`], saturating (before 2020 is 0).
pub(crate) fn secs(t: Timestamp) -> u32 {
    let s = t.0.div_euclid(1_000_000) - BASE;
    u32::try_from(s.max(0)).unwrap_or(u32::MAX)
}

/// The `Timestamp` of a record's time.
pub(crate) fn timestamp(s: u32) -> Timestamp {
    Timestamp((BASE + i64::from(s)) * 1_000_000)
}

// `state` 0: not throttled (perhaps once was: `until` and `strikes` remember the last one).
/// Throttled from `since` until `until` by `rule`.
pub(crate) const THROTTLED: u8 = 1;
/// Released by the operator at `since`; no rule fires until `until`.
pub(crate) const RELEASED: u8 = 2;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Record {
    pub(crate) first_seen: u32,
    /// The last time the windows were brought forward (any check or event).
    pub(crate) last_update: u32,
    /// Connections: this minute, the minute before.
    pub(crate) connections: [u16; 2],
    /// RCPTs to recipients that do not exist: this hour, the hour before.
    pub(crate) unknown: [u16; 2],
    /// Recipients of accepted messages: this hour, the hour before.
    pub(crate) recipients_hour: [u32; 2],
    /// Recipients of accepted messages: this (UTC) day, the day before.
    pub(crate) recipients_day: [u32; 2],
    /// The recipients of each completed day, summed with a day's weight falling by
    /// `Params::day_decay` per day since (an exponentially weighted history).
    pub(crate) baseline: f32,
    /// Messages accepted, decayed continuously with the same time constant.
    pub(crate) messages: f32,
    /// Messages judged spam or reported as junk, decayed like `messages`.
    pub(crate) junk: f32,
    pub(crate) since: u32,
    pub(crate) until: u32,
    /// The figure that fired the throttle, and its limit at the time.
    pub(crate) trigger: u32,
    pub(crate) limit: u32,
    pub(crate) state: u8,
    /// 1-based index into `RULES`; 0 when no throttle ever fired.
    pub(crate) rule: u8,
    /// Throttles in a row (each within the history of the last): each one lasts twice as long.
    pub(crate) strikes: u8,
}

/// Moves a window's buckets forward from `last` to `now`.
fn roll<T: Copy + Default>(w: &mut [T; 2], last: u32, now: u32, len: u32) {
    let (from, to) = (last / len, now / len);
    if to == from {
        return;
    }
    *w = if to == from + 1 {
        [T::default(), w[0]]
    } else {
        [T::default(); 2]
    };
}

/// The count over the last `len` seconds up to `now` (the buckets brought forward to `now`).
pub(crate) fn estimate<T: Copy + Into<u64>>(w: [T; 2], now: u32, len: u32) -> u64 {
    let left = u64::from(len - now % len);
    w[0].into() + w[1].into() * left / u64::from(len)
}

/// What fired: the rule (1-based), the figure and its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fired {
    pub(crate) rule: u8,
    pub(crate) value: u64,
    pub(crate) limit: u64,
}

/// The figures the rules read, at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Figures {
    pub(crate) probation: bool,
    pub(crate) connections_minute: u64,
    pub(crate) recipients_hour: u64,
    pub(crate) recipients_day: u64,
    pub(crate) unknown_hour: u64,
    /// Recipients per day its history supports (0 before its first full day).
    pub(crate) daily_baseline: f64,
    pub(crate) junk_permille: u64,
    pub(crate) unknown_permille: u64,
    pub(crate) limits: Limits,
}

/// The limits that apply to one record now (its probation and junk share taken into account).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// On probation only (AS1).
    pub(crate) recipients_hour: Option<u64>,
    /// AS2 on probation, AS3 after.
    pub(crate) recipients_day: u64,
    pub(crate) connections_minute: u64,
}

impl Record {
    pub(crate) fn new(now: u32) -> Self {
        Record {
            first_seen: now,
            last_update: now,
            ..Record::default()
        }
    }

    /// Brings every window forward to `now`, folds completed days into the history and decays
    /// it. Time that runs backwards (a clock set back) changes nothing.
    pub(crate) fn advance(&mut self, now: u32, p: &Params) {
        let last = self.last_update;
        if now <= last {
            return;
        }
        roll(&mut self.connections, last, now, MINUTE);
        roll(&mut self.unknown, last, now, HOUR);
        roll(&mut self.recipients_hour, last, now, HOUR);
        let (from, to) = (last / DAY, now / DAY);
        if to > from {
            // The day that ended joins the history; days without any event add nothing but
            // their decay.
            self.baseline = self.baseline * p.day_decay + self.recipients_day[0] as f32;
            let empty = i32::try_from(to - from - 1).unwrap_or(i32::MAX);
            if empty > 0 {
                self.baseline *= p.day_decay.powi(empty);
            }
        }
        roll(&mut self.recipients_day, last, now, DAY);
        let decay = (-((now - last) as f32) / p.tau_secs).exp();
        self.messages *= decay;
        self.junk *= decay;
        self.last_update = now;
    }

    pub(crate) fn on_probation(&self, now: u32, p: &Params) -> bool {
        now.saturating_sub(self.first_seen) < p.probation_secs
    }

    pub(crate) fn probation_until(&self, p: &Params) -> u32 {
        self.first_seen.saturating_add(p.probation_secs)
    }

    pub(crate) fn throttled(&self, now: u32) -> bool {
        self.state == THROTTLED && self.until > now
    }

    pub(crate) fn released(&self, now: u32) -> bool {
        self.state == RELEASED && self.until > now
    }

    /// Recipients per day its history supports: the weighted mean of its completed days (0
    /// before the first one has ended). With weights q^age (q = `day_decay`), d completed days
    /// of r recipients each sum to r (1 - q^d) / (1 - q), so dividing by that gives r back.
    pub(crate) fn daily_baseline(&self, now: u32, p: &Params) -> f64 {
        let days = (now / DAY).saturating_sub(self.first_seen / DAY);
        if days == 0 {
            return 0.0;
        }
        let q = f64::from(p.day_decay);
        let norm = (1.0 - q.powi(i32::try_from(days).unwrap_or(i32::MAX))) / (1.0 - q);
        f64::from(self.baseline) / norm
    }

    /// The figures at `now` (the record brought forward to `now` first).
    pub(crate) fn figures(&self, now: u32, p: &Params) -> Figures {
        let probation = self.on_probation(now, p);
        let recipients_hour = estimate(self.recipients_hour, now, HOUR);
        let recipients_day = estimate(self.recipients_day, now, DAY);
        let unknown_hour = estimate(self.unknown, now, HOUR);
        let daily_baseline = self.daily_baseline(now, p);
        // A share is counted over at least the rule's minimum: one junk report on an IP's first
        // message is 1/20, not 100%.
        let junk_permille = share(f64::from(self.junk), f64::from(self.messages), p.junk_min);
        let unknown_permille = share(
            unknown_hour as f64,
            (unknown_hour + recipients_hour) as f64,
            p.unknown_min,
        );
        // Mail judged spam or reported as junk lowers every volume limit by its share.
        let scaled = |limit: u64| limit.saturating_mul(1000 - junk_permille) / 1000;
        let limits = if probation {
            Limits {
                recipients_hour: Some(scaled(p.probation_per_hour)),
                recipients_day: scaled(p.probation_per_day),
                connections_minute: p.probation_connections_per_minute,
            }
        } else {
            let supported = (daily_baseline * f64::from(p.surge_factor)).ceil() as u64;
            Limits {
                recipients_hour: None,
                recipients_day: scaled(supported.max(p.surge_min_per_day)),
                connections_minute: p.connections_per_minute,
            }
        };
        Figures {
            probation,
            connections_minute: estimate(self.connections, now, MINUTE),
            recipients_hour,
            recipients_day,
            unknown_hour,
            daily_baseline,
            junk_permille,
            unknown_permille,
            limits,
        }
    }

    /// The first rule that fires, in the order of `RULES`.
    pub(crate) fn evaluate(&self, now: u32, p: &Params) -> Option<Fired> {
        let f = self.figures(now, p);
        let over = |rule: u8, value: u64, limit: u64| {
            (value > limit).then_some(Fired { rule, value, limit })
        };
        let at_least = |rule: u8, value: u64, limit: u64| {
            (value >= limit).then_some(Fired { rule, value, limit })
        };
        let probation = |rule: u8, value: u64, limit: Option<u64>| match limit {
            Some(limit) if f.probation => over(rule, value, limit),
            _ => None,
        };
        probation(1, f.recipients_hour, f.limits.recipients_hour)
            .or_else(|| probation(2, f.recipients_day, Some(f.limits.recipients_day)))
            .or_else(|| {
                (!f.probation)
                    .then(|| over(3, f.recipients_day, f.limits.recipients_day))
                    .flatten()
            })
            .or_else(|| at_least(4, f.junk_permille, p.junk_share_permille))
            .or_else(|| at_least(5, f.unknown_permille, p.unknown_share_permille))
            .or_else(|| over(6, f.connections_minute, f.limits.connections_minute))
    }

    /// Starts a throttle for `fired`. It lasts `throttle_minutes`, twice as long for each
    /// throttle before it within the history, at most `max_throttle_hours`. The windows the rule
    /// read start again from zero: the throttle settles the burst that caused it, so when it
    /// ends the IP is judged on what it sends afterwards (a sliding-window estimate would still
    /// carry the burst for up to a window after it), and mail sent above its limits does not
    /// become history that raises them.
    pub(crate) fn start_throttle(&mut self, fired: Fired, now: u32, p: &Params) {
        let repeated = self.state == THROTTLED && now.saturating_sub(self.until) < p.history_secs;
        self.strikes = if repeated {
            self.strikes.saturating_add(1)
        } else {
            1
        };
        let doublings = u32::from(self.strikes - 1).min(31);
        let secs = u64::from(p.throttle_secs)
            .saturating_mul(1 << doublings)
            .min(u64::from(p.max_throttle_secs));
        self.state = THROTTLED;
        self.rule = fired.rule;
        self.since = now;
        self.until = now.saturating_add(u32::try_from(secs).unwrap_or(u32::MAX));
        self.trigger = u32::try_from(fired.value).unwrap_or(u32::MAX);
        self.limit = u32::try_from(fired.limit).unwrap_or(u32::MAX);
        match RULES.get(usize::from(fired.rule) - 1).map(|r| r.name) {
            Some("AS1") => self.recipients_hour = [0; 2],
            Some("AS2" | "AS3") => {
                self.recipients_hour = [0; 2];
                self.recipients_day = [0; 2];
            }
            Some("AS5") => self.unknown = [0; 2],
            Some("AS6") => self.connections = [0; 2],
            // AS4, the junk share, is history: it decays by itself, over days.
            _ => {}
        }
    }

    /// Ends any throttle; no rule fires until `grace_until`.
    pub(crate) fn release(&mut self, now: u32, p: &Params) {
        self.state = RELEASED;
        self.since = now;
        self.until = now.saturating_add(p.release_grace_secs);
        self.strikes = 0;
    }

    /// Ends a release whose grace period is over: what the IP sent during it, which the
    /// operator vouched for, is not held against it (its short windows start again from zero;
    /// its days during the grace remain history).
    pub(crate) fn end_release(&mut self, now: u32) {
        if self.state == RELEASED && !self.released(now) {
            self.state = 0;
            self.connections = [0; 2];
            self.unknown = [0; 2];
            self.recipients_hour = [0; 2];
            self.recipients_day = [0; 2];
        }
    }

    /// How much the record is worth keeping when the table is full; the least is evicted first.
    /// In order: a running throttle (the later it ends, the more), then a record with a bad mark
    /// (junk, unknown recipients, a recent throttle, an operator's release), then an
    /// established IP, then one on probation; within each, the more recently seen and then the
    /// higher the volume, the more.
    pub(crate) fn value(&self, now: u32, p: &Params) -> u64 {
        let recent_throttle =
            self.state == THROTTLED && now.saturating_sub(self.until) < p.history_secs;
        let tier: u64 = if self.throttled(now) {
            3
        } else if recent_throttle
            || self.released(now)
            || self.junk >= 1.0
            || self.unknown != [0; 2]
        {
            2
        } else if !self.on_probation(now, p) {
            1
        } else {
            0
        };
        let time = if tier == 3 {
            self.until
        } else {
            self.last_update
        };
        let volume = f64::from(self.baseline) + f64::from(self.recipients_day[0]);
        let magnitude = (volume + 1.0).log2() as u64;
        (tier << 62) | (u64::from(time) << 16) | magnitude.min(0xffff)
    }
}

/// `part` of `whole` in thousandths, the whole counted as at least `min`; at most 1000.
fn share(part: f64, whole: f64, min: f64) -> u64 {
    let whole = whole.max(min).max(1.0);
    ((part * 1000.0 / whole) as u64).min(1000)
}

//! The outbound spam policy (Exchange's `HostedOutboundSpamFilterPolicy`,
//! `exchange-online-behaviour.md` §7): per-sender recipient limits and what happens when one is
//! reached, and the outbound spam verdict that sends a message through the high-risk delivery
//! pool. Pure decisions with reasons; the counting and the restricted senders live in the store,
//! the SMTP side in `hato_transport::outbound_spam`.

use crate::spam::ContentSignals;
use hato_core::{Reason, Stage};
use serde::{Deserialize, Serialize};

/// What a limit may be set to (`New-HostedOutboundSpamFilterPolicy`: 0-10000).
pub const MAX_RECIPIENT_LIMIT: u32 = 10_000;

/// The most addresses a notification or Bcc list holds.
pub const MAX_ADDRESSES: usize = 100;

/// What "0" means for each limit: the service default. Exchange documents one service-wide
/// recipient rate limit, 10,000 recipients a day (§7.1, "Service-wide sending limits referenced
/// by 0"), and no separate hourly figure; hato uses 10,000 for each limit left at 0, so the
/// hourly limits are then no stricter than the daily one.
pub const SERVICE_RECIPIENT_LIMIT: u32 = 10_000;

/// The SCL from which an outbound message is outbound spam, sent through the high-risk pool:
/// the SCL of Exchange's spam verdict (5-6 spam, 7-9 high confidence spam, §6.1).
pub const OUTBOUND_SPAM_SCL: i8 = 5;

/// `ActionWhenThresholdReached`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdAction {
    /// Alert only: the mail is sent, the admins are told.
    Alert,
    /// The sender is restricted until an admin unblocks it.
    BlockUser,
    /// The sender is restricted until the next day (UTC). Exchange's default.
    #[default]
    BlockUserForToday,
}

impl ThresholdAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdAction::Alert => "alert",
            ThresholdAction::BlockUser => "block-user",
            ThresholdAction::BlockUserForToday => "block-user-for-today",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "alert" => Some(ThresholdAction::Alert),
            "block-user" | "blockuser" => Some(ThresholdAction::BlockUser),
            "block-user-for-today" | "blockuserfortoday" => {
                Some(ThresholdAction::BlockUserForToday)
            }
            _ => None,
        }
    }

    /// Whether reaching a limit restricts the sender.
    pub fn blocks(self) -> bool {
        !matches!(self, ThresholdAction::Alert)
    }
}

/// A tenant's outbound spam filter policy. The defaults are those of Exchange's Default policy
/// (§7.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundSpamPolicy {
    /// `RecipientLimitExternalPerHour`: recipients outside the organisation per hour; 0 = the
    /// service default.
    pub recipient_limit_external_per_hour: u32,
    /// `RecipientLimitInternalPerHour`: recipients in the organisation per hour.
    pub recipient_limit_internal_per_hour: u32,
    /// `RecipientLimitPerDay`: all recipients per day.
    pub recipient_limit_per_day: u32,
    /// `ActionWhenThresholdReached`.
    pub action_when_threshold_reached: ThresholdAction,
    /// `NotifyOutboundSpam`: also tell `notify_outbound_spam_recipients` (the admins are always
    /// told, as Exchange's default alert policies tell the TenantAdmins group).
    pub notify_outbound_spam: bool,
    /// `NotifyOutboundSpamRecipients`.
    pub notify_outbound_spam_recipients: Vec<String>,
    /// `BccSuspiciousOutboundMail`: a copy of every outbound message judged spam goes to
    /// `bcc_suspicious_outbound_additional_recipients` (Exchange: only in the Default policy;
    /// hato has one policy per tenant).
    pub bcc_suspicious_outbound_mail: bool,
    /// `BccSuspiciousOutboundAdditionalRecipients`.
    pub bcc_suspicious_outbound_additional_recipients: Vec<String>,
}

/// Which limit a count reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    ExternalPerHour,
    InternalPerHour,
    PerDay,
}

impl Limit {
    /// Exchange's parameter name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ExternalPerHour => "RecipientLimitExternalPerHour",
            Limit::InternalPerHour => "RecipientLimitInternalPerHour",
            Limit::PerDay => "RecipientLimitPerDay",
        }
    }
}

/// A sender's recipients in the current windows (the hour and the day, UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub external_hour: u32,
    pub internal_hour: u32,
    pub day: u32,
}

/// A sender's counts with the UTC windows they were counted in: what the store keeps per
/// sender, and what the transport mirrors in memory (one rule for both, so they agree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowedTally {
    /// The start of the UTC hour the hourly counts are of (microseconds since the epoch).
    pub hour_start: i64,
    /// The start of the UTC day the daily count is of.
    pub day_start: i64,
    pub tally: Tally,
}

const HOUR_MICROS: i64 = 3_600 * 1_000_000;
const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// The start of the UTC hour and day `now` is in (Unix time has no leap seconds, so whole
/// days since the epoch are UTC days).
pub fn utc_windows(now: hato_core::Timestamp) -> (i64, i64) {
    (
        now.0 - now.0.rem_euclid(HOUR_MICROS),
        now.0 - now.0.rem_euclid(DAY_MICROS),
    )
}

impl WindowedTally {
    /// The counts in force at `now`: a window that is not the current one counts nothing (a
    /// clock set back keeps the later window's counts until it is reached again: they are not
    /// lost).
    pub fn at(known: Option<WindowedTally>, now: hato_core::Timestamp) -> Tally {
        let (hour, day) = utc_windows(now);
        match known {
            Some(k) => Tally {
                external_hour: if k.hour_start == hour {
                    k.tally.external_hour
                } else {
                    0
                },
                internal_hour: if k.hour_start == hour {
                    k.tally.internal_hour
                } else {
                    0
                },
                day: if k.day_start == day { k.tally.day } else { 0 },
            },
            None => Tally::default(),
        }
    }

    /// Counts one message's recipients at `now`: the counts before it and the new state.
    pub fn count(
        known: Option<WindowedTally>,
        now: hato_core::Timestamp,
        external: u32,
        internal: u32,
    ) -> (Tally, WindowedTally) {
        let (hour_start, day_start) = utc_windows(now);
        let before = Self::at(known, now);
        let tally = Tally {
            external_hour: before.external_hour.saturating_add(external),
            internal_hour: before.internal_hour.saturating_add(internal),
            day: before.day.saturating_add(external).saturating_add(internal),
        };
        (
            before,
            WindowedTally {
                hour_start,
                day_start,
                tally,
            },
        )
    }
}

/// A limit the message took the sender over, with the figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: Limit,
    /// The limit in force (the service default for 0).
    pub allowed: u32,
    /// The count with the message.
    pub count: u32,
    /// This message took the count over (the count was within the limit before it): the
    /// moment to alert.
    pub crossed: bool,
}

impl Exceeded {
    /// Why, for the trace, the refusal and the alert.
    pub fn reason(&self, sender: &str, action: ThresholdAction) -> Reason {
        let window = match self.limit {
            Limit::PerDay => "today (UTC)",
            _ => "this hour",
        };
        Reason::new(
            Stage::Spam,
            format!(
                "{sender} sent to {} recipients {window}, over the outbound spam policy's {} of {}; action {}",
                self.count,
                self.limit.name(),
                self.allowed,
                action.as_str()
            ),
        )
        .rule(self.limit.name())
        .figure("sender", sender.to_string())
        .figure("count", self.count)
        .figure("limit", self.allowed)
        .figure("action", action.as_str())
    }
}

impl OutboundSpamPolicy {
    /// The limits in force: each 0 is the service default.
    pub fn limits(&self) -> (u32, u32, u32) {
        let eff = |v: u32| {
            if v == 0 { SERVICE_RECIPIENT_LIMIT } else { v }
        };
        (
            eff(self.recipient_limit_external_per_hour),
            eff(self.recipient_limit_internal_per_hour),
            eff(self.recipient_limit_per_day),
        )
    }

    /// Checks the values an admin gave: the limits' range and the notification addresses'
    /// presence when notification is on.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            (
                "recipient_limit_external_per_hour",
                self.recipient_limit_external_per_hour,
            ),
            (
                "recipient_limit_internal_per_hour",
                self.recipient_limit_internal_per_hour,
            ),
            ("recipient_limit_per_day", self.recipient_limit_per_day),
        ] {
            if v > MAX_RECIPIENT_LIMIT {
                return Err(format!(
                    "{name} must be 0 (the service default) to {MAX_RECIPIENT_LIMIT}, not {v}"
                ));
            }
        }
        for (name, list) in [
            (
                "notify_outbound_spam_recipients",
                &self.notify_outbound_spam_recipients,
            ),
            (
                "bcc_suspicious_outbound_additional_recipients",
                &self.bcc_suspicious_outbound_additional_recipients,
            ),
        ] {
            if list.len() > MAX_ADDRESSES {
                return Err(format!("at most {MAX_ADDRESSES} {name}"));
            }
            for a in list {
                if hato_core::Address::parse(a).is_err() {
                    return Err(format!("{name}: {a:?} is not an email address"));
                }
            }
        }
        Ok(())
    }

    /// The first limit the counts `after` a message are over (`before` it: whether this
    /// message crossed it), in Exchange's parameter order; `None` within every limit.
    pub fn exceeded(&self, before: Tally, after: Tally) -> Option<Exceeded> {
        let (external, internal, day) = self.limits();
        [
            (
                Limit::ExternalPerHour,
                external,
                before.external_hour,
                after.external_hour,
            ),
            (
                Limit::InternalPerHour,
                internal,
                before.internal_hour,
                after.internal_hour,
            ),
            (Limit::PerDay, day, before.day, after.day),
        ]
        .into_iter()
        .find(|(_, allowed, _, count)| count > allowed)
        .map(|(limit, allowed, was, count)| Exceeded {
            limit,
            allowed,
            count,
            crossed: was <= allowed,
        })
    }
}

/// The start of the UTC day after the one `now` is in: when `BlockUserForToday` lifts
/// ("until the next day", §7.1; Unix time has no leap seconds, so whole days since the epoch
/// are UTC days).
pub fn next_utc_day(now: hato_core::Timestamp) -> hato_core::Timestamp {
    hato_core::Timestamp(now.0 - now.0.rem_euclid(DAY_MICROS) + DAY_MICROS)
}

/// The outbound spam verdict over the classifier's signals (GTUBE included) and the SCL a
/// transport rule set: `Some(reason)` when the message is outbound spam (SCL ≥
/// [`OUTBOUND_SPAM_SCL`], or phish), to be sent through the high-risk delivery pool — not
/// refused (§7.2). Sender authentication and the tenant's inbound anti-spam policy do not take
/// part: the sender is the tenant's own.
pub fn outbound_verdict(content: &ContentSignals, rule_scl: Option<i8>) -> Option<Reason> {
    let scl = content.scl.max(rule_scl.unwrap_or(0));
    let phish = content.phish != crate::spam::PhishLevel::None;
    if rule_scl == Some(-1) || (scl < OUTBOUND_SPAM_SCL && !phish) {
        return None;
    }
    let why = if phish && scl < OUTBOUND_SPAM_SCL {
        "the content is phish".to_string()
    } else {
        format!("SCL {scl}")
    };
    Some(
        Reason::new(
            Stage::Spam,
            format!(
                "Outbound spam ({why}, p = {:.3}): sent through the high-risk delivery pool",
                content.spam_probability
            ),
        )
        .rule("OutboundSpam")
        .figure("scl", i32::from(scl))
        .figure("pool", "high-risk"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_hours_and_days() {
        let t = hato_core::Timestamp::parse_human("2026-12-01T13:45:10Z").unwrap();
        let (h, d) = utc_windows(t);
        assert_eq!(
            hato_core::Timestamp(h),
            hato_core::Timestamp::parse_human("2026-12-01T13:00:00Z").unwrap()
        );
        assert_eq!(
            hato_core::Timestamp(d),
            hato_core::Timestamp::parse_human("2026-12-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn a_windowed_tally_counts_in_the_current_windows_only() {
        let t = |s: &str| hato_core::Timestamp::parse_human(s).unwrap();
        let (before, first) = WindowedTally::count(None, t("2026-12-01T13:45:10Z"), 3, 1);
        assert_eq!(before, tally(0, 0, 0));
        assert_eq!(first.tally, tally(3, 1, 4));
        // Same hour: everything adds up.
        let (before, second) = WindowedTally::count(Some(first), t("2026-12-01T13:59:59Z"), 2, 0);
        assert_eq!(before, tally(3, 1, 4));
        assert_eq!(second.tally, tally(5, 1, 6));
        // The next hour: the hourly counts start again, the day's goes on.
        let (before, third) = WindowedTally::count(Some(second), t("2026-12-01T14:00:00Z"), 1, 0);
        assert_eq!(before, tally(0, 0, 6));
        assert_eq!(third.tally, tally(1, 0, 7));
        // The next day: everything starts again.
        let (before, fourth) = WindowedTally::count(Some(third), t("2026-12-02T14:00:00Z"), 1, 1);
        assert_eq!(before, tally(0, 0, 0));
        assert_eq!(fourth.tally, tally(1, 1, 2));
        // A clock set back: the later windows' counts are not counted, and not lost either.
        assert_eq!(
            WindowedTally::at(Some(fourth), t("2026-12-01T14:00:00Z")),
            tally(0, 0, 0)
        );
    }

    fn tally(e: u32, i: u32, d: u32) -> Tally {
        Tally {
            external_hour: e,
            internal_hour: i,
            day: d,
        }
    }

    #[test]
    fn block_user_for_today_lifts_at_the_next_utc_day() {
        let t = hato_core::Timestamp::parse_human("2026-12-01T23:59:59Z").unwrap();
        assert_eq!(
            next_utc_day(t),
            hato_core::Timestamp::parse_human("2026-12-02T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn defaults_are_exchanges() {
        let p = OutboundSpamPolicy::default();
        assert_eq!(
            p.action_when_threshold_reached,
            ThresholdAction::BlockUserForToday
        );
        assert_eq!(p.limits(), (10_000, 10_000, 10_000));
        assert!(!p.notify_outbound_spam);
    }

    #[test]
    fn the_first_limit_over_is_named_and_crossing_is_told_once() {
        let p = OutboundSpamPolicy {
            recipient_limit_external_per_hour: 2,
            recipient_limit_internal_per_hour: 5,
            recipient_limit_per_day: 6,
            ..Default::default()
        };
        assert_eq!(p.exceeded(tally(0, 0, 0), tally(2, 3, 5)), None);
        let e = p.exceeded(tally(2, 0, 2), tally(3, 0, 3)).unwrap();
        assert_eq!(
            (e.limit, e.allowed, e.count, e.crossed),
            (Limit::ExternalPerHour, 2, 3, true)
        );
        let e = p.exceeded(tally(3, 0, 3), tally(4, 0, 4)).unwrap();
        assert!(!e.crossed);
        let e = p.exceeded(tally(0, 5, 5), tally(0, 5, 7)).unwrap();
        assert_eq!(e.limit, Limit::PerDay);
        assert!(
            e.reason("a@b.test", p.action_when_threshold_reached)
                .text
                .contains("RecipientLimitPerDay of 6")
        );
    }

    #[test]
    fn values_out_of_range_are_refused() {
        let p = OutboundSpamPolicy {
            recipient_limit_per_day: 10_001,
            ..Default::default()
        };
        assert!(
            p.validate()
                .unwrap_err()
                .contains("0 (the service default) to 10000")
        );
        let p = OutboundSpamPolicy {
            notify_outbound_spam_recipients: vec!["not an address".into()],
            ..Default::default()
        };
        assert!(p.validate().is_err());
        assert_eq!(
            ThresholdAction::parse("BlockUser"),
            Some(ThresholdAction::BlockUser)
        );
        assert_eq!(ThresholdAction::parse("block"), None);
    }

    #[test]
    fn spam_scl_and_phish_go_to_the_high_risk_pool() {
        let mut c = ContentSignals {
            scl: 1,
            ..Default::default()
        };
        assert!(outbound_verdict(&c, None).is_none());
        assert!(outbound_verdict(&c, Some(6)).is_some());
        c.scl = 9;
        let r = outbound_verdict(&c, None).unwrap();
        assert!(r.text.contains("SCL 9"), "{}", r.text);
        // A rule's SCL -1 skips filtering, as inbound.
        assert!(outbound_verdict(&c, Some(-1)).is_none());
    }
}

//! IP throttling by volume and reputation (seed D; `exchange-online-behaviour.md` §8): Exchange
//! Online's greylisting of sending IPs, with its criteria and timings disclosed.
//!
//! Per sending IP — an IPv4 address, an IPv6 /64 (`throttle.ipv6_prefix_length`), an
//! IPv4-mapped IPv6 address as its IPv4 address ([`hato_core::client_key`]) — the throttle keeps
//! a compact record (`record.rs`, 64 bytes): connections per minute, recipients per hour and per
//! day over sliding windows, a history of its daily volume, the share of its mail judged spam or
//! reported as junk, RCPTs to recipients that do not exist, and a probation period from the
//! first time it was seen. Rules [`RULES`] (`AS1`…`AS6`, each with its setting) decide that an
//! IP sends far more than its history supports, or that its reputation is bad; the IP is then
//! answered `451 4.7.500 Server busy. Please try again later from [IP]. (ASn)` until the
//! throttle ends by itself (`throttle_minutes`, doubling for each repeat, at most
//! `max_throttle_hours`) or the operator releases it.
//!
//! The edge calls [`Throttle::check`] at connect (synchronous, in memory: one hash lookup under
//! one of many locks), then records what it and delivery see: [`Throttle::record_connection`]
//! once a connection is admitted, [`Throttle::record_message`] for an accepted message with its
//! recipients, [`Throttle::record_unknown_recipient`] for a RCPT refused as unknown, and later
//! [`Throttle::record_spam`] / [`Throttle::record_junk_report`] from the content stages and
//! users' junk reports. Time comes from the caller (the injected clock), never the system.
//!
//! The table is bounded (`max_tracked_ips`): when a shard is full the least valuable eighth of
//! it is evicted (probationary and clean first, the least recently seen and lowest volume
//! first, running throttles last; `Record::value`). Its state is saved to a file and loaded
//! at start (`snapshot.rs`).

mod exempt;
mod record;
mod snapshot;
#[cfg(test)]
mod tests;

pub use exempt::{Exemption, Network, NetworkError};
pub use snapshot::SnapshotError;

use crate::{BoxFuture, ConnectCheck, Outcome, ready};
use exempt::Exemptions;
use hato_core::{ClientContext, Reason, Refusal, Stage, Timestamp, client_key, reply};
use record::{DAY, HOUR, Record, secs, timestamp};
use serde::{Deserialize, Serialize};
use snapshot::{Checksum, END, MAGIC, RECORD_BYTES, Reading, Summed};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

/// One throttle rule: its name in the reply (`(AS1)`), the figure it compares, what it means,
/// and the settings that set its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub figure: &'static str,
    pub meaning: &'static str,
    pub settings: &'static str,
}

/// The rules, in the order they are tried; the first that fires names the throttle. The
/// volume limits (AS1–AS3) are lowered by the IP's junk share: at 30% junk, 70% of them.
pub const RULES: [Rule; 6] = [
    Rule {
        name: "AS1",
        figure: "recipients_last_hour",
        meaning: "a new IP on probation sent more recipients in the last hour than probation allows",
        settings: "throttle.probation_recipients_per_hour",
    },
    Rule {
        name: "AS2",
        figure: "recipients_last_day",
        meaning: "a new IP on probation sent more recipients in the last 24 hours than probation allows",
        settings: "throttle.probation_recipients_per_day",
    },
    Rule {
        name: "AS3",
        figure: "recipients_last_day",
        meaning: "an established IP sent far more recipients in the last 24 hours than its history supports",
        settings: "throttle.surge_factor, throttle.surge_min_recipients_per_day",
    },
    Rule {
        name: "AS4",
        figure: "junk_share_permille",
        meaning: "too large a share of the IP's mail was judged spam or reported as junk",
        settings: "throttle.junk_share_percent, throttle.junk_min_messages",
    },
    Rule {
        name: "AS5",
        figure: "unknown_recipient_share_permille",
        meaning: "too large a share of the IP's recipients in the last hour do not exist (directory harvesting)",
        settings: "throttle.unknown_recipient_share_percent, throttle.unknown_recipient_min",
    },
    Rule {
        name: "AS6",
        figure: "connections_last_minute",
        meaning: "the IP opened more connections in the last minute than allowed",
        settings: "throttle.connections_per_minute, throttle.probation_connections_per_minute",
    },
];

/// `[throttle]` in `hato.toml`; every setting has its default (`Default`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Off: every IP passes (and nothing is recorded).
    pub enabled: bool,
    /// Loopback clients (127.0.0.0/8, ::1: this host's own programs) are never throttled, as
    /// Postfix exempts `$mynetworks` from its rate limits (`smtpd_client_event_limit_exceptions`)
    /// and postscreen permits them (`postscreen_access_list = permit_mynetworks`).
    pub exempt_loopback: bool,
    /// IPs (IPv4 addresses, IPv6 prefixes) tracked at most; ~80 MB per million.
    pub max_tracked_ips: usize,
    /// Seconds between snapshots of the state to `data_dir/throttle.state`.
    pub snapshot_interval_secs: u64,
    /// IPv6 senders share one record per prefix of this many bits (1–64).
    pub ipv6_prefix_length: u8,
    /// How long history counts: a day's mail weighs e^(-3 age / history_days) (5% after it).
    pub history_days: u32,
    /// Days from an IP's first connection during which the probation limits apply.
    pub probation_days: u32,
    /// AS1.
    pub probation_recipients_per_hour: u64,
    /// AS2.
    pub probation_recipients_per_day: u64,
    /// AS3: an established IP may send this many times its daily history in 24 hours …
    pub surge_factor: u32,
    /// … and at least this many recipients.
    pub surge_min_recipients_per_day: u64,
    /// AS4: the share of its mail judged spam or reported as junk …
    pub junk_share_percent: u32,
    /// … counted over at least this many messages.
    pub junk_min_messages: u32,
    /// AS5: the share of its RCPTs in the last hour to recipients that do not exist …
    pub unknown_recipient_share_percent: u32,
    /// … counted over at least this many RCPTs.
    pub unknown_recipient_min: u32,
    /// AS6, for established IPs …
    pub connections_per_minute: u64,
    /// … and for IPs on probation.
    pub probation_connections_per_minute: u64,
    /// The first throttle's length; each further one (within `history_days` of the last) twice
    /// the one before.
    pub throttle_minutes: u32,
    /// The longest throttle.
    pub max_throttle_hours: u32,
    /// After `hato throttle release`, no rule fires for this long.
    pub release_grace_hours: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            exempt_loopback: true,
            max_tracked_ips: 1_000_000,
            snapshot_interval_secs: 300,
            ipv6_prefix_length: 64,
            // D4: receivers keep about a month of history.
            history_days: 30,
            // §8: a new IP's throttling clears "as it builds history over a few days".
            probation_days: 3,
            probation_recipients_per_hour: 100,
            probation_recipients_per_day: 1_000,
            surge_factor: 10,
            surge_min_recipients_per_day: 5_000,
            junk_share_percent: 50,
            junk_min_messages: 20,
            unknown_recipient_share_percent: 50,
            unknown_recipient_min: 20,
            connections_per_minute: 600,
            probation_connections_per_minute: 60,
            throttle_minutes: 60,
            // D2: "about 24 hours in practice".
            max_throttle_hours: 24,
            release_grace_hours: 24,
        }
    }
}

impl ThrottleSettings {
    /// Checks the settings; the error names the setting (`throttle.…`) and its range.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_tracked_ips", self.max_tracked_ips as u64),
            ("snapshot_interval_secs", self.snapshot_interval_secs),
            ("history_days", u64::from(self.history_days)),
            (
                "probation_recipients_per_hour",
                self.probation_recipients_per_hour,
            ),
            (
                "probation_recipients_per_day",
                self.probation_recipients_per_day,
            ),
            ("surge_factor", u64::from(self.surge_factor)),
            (
                "surge_min_recipients_per_day",
                self.surge_min_recipients_per_day,
            ),
            ("junk_min_messages", u64::from(self.junk_min_messages)),
            (
                "unknown_recipient_min",
                u64::from(self.unknown_recipient_min),
            ),
            ("connections_per_minute", self.connections_per_minute),
            (
                "probation_connections_per_minute",
                self.probation_connections_per_minute,
            ),
            ("throttle_minutes", u64::from(self.throttle_minutes)),
            ("max_throttle_hours", u64::from(self.max_throttle_hours)),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("throttle.{name} must be greater than 0"));
            }
        }
        let ranges = [
            (
                "ipv6_prefix_length",
                u64::from(self.ipv6_prefix_length),
                1,
                64,
            ),
            ("history_days", u64::from(self.history_days), 1, 365),
            ("probation_days", u64::from(self.probation_days), 0, 365),
            (
                "junk_share_percent",
                u64::from(self.junk_share_percent),
                1,
                100,
            ),
            (
                "unknown_recipient_share_percent",
                u64::from(self.unknown_recipient_share_percent),
                1,
                100,
            ),
            (
                "max_throttle_hours",
                u64::from(self.max_throttle_hours),
                1,
                24 * 30,
            ),
            (
                "release_grace_hours",
                u64::from(self.release_grace_hours),
                0,
                24 * 30,
            ),
            (
                "max_tracked_ips",
                self.max_tracked_ips as u64,
                1,
                100_000_000,
            ),
        ];
        for (name, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!(
                    "throttle.{name} must be between {lo} and {hi} (is {v})"
                ));
            }
        }
        if u64::from(self.throttle_minutes) > u64::from(self.max_throttle_hours) * 60 {
            return Err(format!(
                "throttle.throttle_minutes ({}) must not exceed throttle.max_throttle_hours ({}) in minutes",
                self.throttle_minutes, self.max_throttle_hours
            ));
        }
        Ok(())
    }
}

/// The settings in the units the records use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) probation_secs: u32,
    pub(crate) history_secs: u32,
    /// A day's weight in the history after one more day: e^(-3 / history_days).
    pub(crate) day_decay: f32,
    /// The time constant of the decayed counts, in seconds (history_days / 3).
    pub(crate) tau_secs: f32,
    pub(crate) probation_per_hour: u64,
    pub(crate) probation_per_day: u64,
    pub(crate) surge_factor: u32,
    pub(crate) surge_min_per_day: u64,
    pub(crate) junk_share_permille: u64,
    pub(crate) junk_min: f64,
    pub(crate) unknown_share_permille: u64,
    pub(crate) unknown_min: f64,
    pub(crate) connections_per_minute: u64,
    pub(crate) probation_connections_per_minute: u64,
    pub(crate) throttle_secs: u32,
    pub(crate) max_throttle_secs: u32,
    pub(crate) release_grace_secs: u32,
}

impl Params {
    fn new(s: &ThrottleSettings) -> Self {
        let days = s.history_days.max(1) as f32;
        Params {
            probation_secs: s.probation_days.saturating_mul(DAY),
            history_secs: s.history_days.saturating_mul(DAY),
            day_decay: (-3.0 / days).exp(),
            tau_secs: days / 3.0 * DAY as f32,
            probation_per_hour: s.probation_recipients_per_hour,
            probation_per_day: s.probation_recipients_per_day,
            surge_factor: s.surge_factor,
            surge_min_per_day: s.surge_min_recipients_per_day,
            junk_share_permille: u64::from(s.junk_share_percent) * 10,
            junk_min: f64::from(s.junk_min_messages),
            unknown_share_permille: u64::from(s.unknown_recipient_share_percent) * 10,
            unknown_min: f64::from(s.unknown_recipient_min),
            connections_per_minute: s.connections_per_minute,
            probation_connections_per_minute: s.probation_connections_per_minute,
            throttle_secs: s.throttle_minutes.saturating_mul(60),
            max_throttle_secs: s.max_throttle_hours.saturating_mul(HOUR),
            release_grace_secs: s.release_grace_hours.saturating_mul(HOUR),
        }
    }
}

/// hashbrown (std's map) holds at most 7/8 of its buckets; 16,384 buckets hold 14,336 entries.
/// Shards are sized to fill such a table, so a full table wastes no half-empty doubling.
const SHARD_FILL: usize = 14_336;

/// IPv4 keys carry this in their upper half: as an IPv6 /64 it is multicast (`ffff:ffff::/32`),
/// never a sending address, so no IPv6 key can equal an IPv4 one.
const V4_TAG: u64 = 0xffff_ffff_0000_0000;

struct Shard {
    map: HashMap<u64, Record>,
    cap: usize,
}

impl Shard {
    /// Makes room for one more: evicts the least valuable eighth (at least one), and rebuilds
    /// the map so that its removed slots do not make the next insertion double the table.
    fn evict(&mut self, now: u32, p: &Params) {
        let n = self.map.len();
        let k = (n / 8).max(1);
        let mut values: Vec<u64> = self.map.values().map(|r| r.value(now, p)).collect();
        let threshold = *values.select_nth_unstable(k - 1).1;
        let below = values.iter().filter(|v| **v < threshold).count();
        drop(values);
        let mut ties = k - below;
        let old = std::mem::take(&mut self.map);
        let mut kept = HashMap::with_capacity_and_hasher(self.cap, RandomState::new());
        for (key, r) in old {
            let v = r.value(now, p);
            if v < threshold {
                continue;
            }
            if v == threshold && ties > 0 {
                ties -= 1;
                continue;
            }
            kept.insert(key, r);
        }
        self.map = kept;
    }

    /// The record of `key`, created (evicting if the shard is full) when there is none.
    fn upsert(&mut self, key: u64, now: u32, p: &Params) -> &mut Record {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict(now, p);
        }
        self.map.entry(key).or_insert_with(|| Record::new(now))
    }
}

/// A throttle that is on now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveThrottle {
    pub rule: &'static str,
    pub meaning: &'static str,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Throttles in a row; this one lasts `throttle_minutes` × 2^(strikes-1).
    pub strikes: u8,
    /// The figure that fired it, its value then, and its limit then.
    pub figure: &'static str,
    pub value: u64,
    pub limit: u64,
}

/// An IP throttled now, as [`Throttle::throttled`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottledIp {
    /// What it is tracked under: the IPv4 address, or the IPv6 prefix (`2001:db8:1:2::/64`).
    pub key: String,
    pub rule: &'static str,
    pub meaning: &'static str,
    pub since: Timestamp,
    pub until: Timestamp,
    pub strikes: u8,
}

/// An operator's release that still holds the rules off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub released: Timestamp,
    pub rules_resume: Timestamp,
}

/// The limits that apply to an IP now (after its probation and junk share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLimits {
    /// Only on probation (AS1).
    pub recipients_per_hour: Option<u64>,
    /// AS2 on probation, AS3 after.
    pub recipients_per_day: u64,
    /// AS6.
    pub connections_per_minute: u64,
}

/// What the throttle knows about one IP and why it decides what it decides
/// (`hato throttle status`).
#[derive(Clone, Debug, PartialEq)]
pub struct ThrottleStatus {
    /// The address asked about.
    pub ip: IpAddr,
    /// What it is tracked under: the IPv4 address, or the IPv6 prefix (`2001:db8:1:2::/64`).
    pub key: String,
    /// Whether the throttle has a record of it (an IP never seen is on probation from its first
    /// connection).
    pub tracked: bool,
    pub first_seen: Option<Timestamp>,
    pub on_probation: bool,
    pub probation_until: Option<Timestamp>,
    pub connections_last_minute: u64,
    pub recipients_last_hour: u64,
    pub recipients_last_day: u64,
    /// Recipients per day its history supports (0 before its first full day).
    pub daily_baseline: u64,
    /// Messages accepted and judged spam or reported as junk, in the decayed history.
    pub messages_history: u64,
    pub junk_history: u64,
    pub junk_share_permille: u64,
    pub unknown_recipients_last_hour: u64,
    pub unknown_recipient_share_permille: u64,
    pub limits: StatusLimits,
    pub throttle: Option<ActiveThrottle>,
    pub release: Option<Release>,
    /// The exemption entries that cover it (it is then never throttled).
    pub exemptions: Vec<Exemption>,
    /// A loopback client while `exempt_loopback` is on: never throttled either.
    pub exempt_loopback: bool,
}

/// The throttle: a bounded table of per-IP records in shards, each behind its own lock, and
/// the tenants' exemption lists.
pub struct Throttle {
    settings: ThrottleSettings,
    params: Params,
    shards: Box<[Mutex<Shard>]>,
    shard_of: RandomState,
    exemptions: RwLock<Exemptions>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let max = settings.max_tracked_ips.max(1);
        let count = max.div_ceil(SHARD_FILL);
        let cap = max.div_ceil(count);
        let shards = (0..count)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    cap,
                })
            })
            .collect();
        Throttle {
            params: Params::new(&settings),
            settings,
            shards,
            shard_of: RandomState::new(),
            exemptions: RwLock::new(Exemptions::default()),
        }
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// What `ip` is tracked under: IPv4 (and IPv4-mapped) per address, IPv6 per prefix.
    fn key(&self, ip: IpAddr) -> u64 {
        match client_key(ip, self.settings.ipv6_prefix_length.clamp(1, 64)) {
            IpAddr::V4(v4) => V4_TAG | u64::from(u32::from(v4)),
            IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64,
        }
    }

    fn key_text(&self, ip: IpAddr) -> String {
        let prefix = self.settings.ipv6_prefix_length.clamp(1, 64);
        match client_key(ip, prefix) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("{v6}/{prefix}"),
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let i = (self.shard_of.hash_one(key) % self.shards.len() as u64) as usize;
        // A panic while a record was changed leaves plain counters behind: still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many IPs are tracked.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    /// Replaces every tenant's exemption entries (after a change, and periodically from the
    /// store, so a removed tenant's entries go too).
    pub fn set_exemptions(&self, entries: impl IntoIterator<Item = Exemption>) {
        let set = Exemptions::new(entries);
        *self.exemptions.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    /// [`Throttle::set_exemptions`] from stored rows (tenant name, network text); a row whose
    /// network does not parse (written by another version) is skipped and counted.
    pub fn set_exemption_texts(&self, rows: impl IntoIterator<Item = (String, String)>) -> usize {
        let mut skipped = 0;
        let entries: Vec<Exemption> = rows
            .into_iter()
            .filter_map(|(tenant, text)| match Network::parse(&text) {
                Ok(network) => Some(Exemption { tenant, network }),
                Err(_) => {
                    skipped += 1;
                    None
                }
            })
            .collect();
        self.set_exemptions(entries);
        skipped
    }

    /// The entries that exempt `ip`, the narrowest first.
    pub fn exemptions_of(&self, ip: IpAddr) -> Vec<Exemption> {
        let set = self.exemptions.read().unwrap_or_else(|e| e.into_inner());
        if set.is_empty() {
            return Vec::new();
        }
        set.matching(ip).cloned().collect()
    }

    /// The decision at connect: `Refuse` with `451 4.7.500 … (ASn)` while `ip` is throttled (a
    /// rule that fires now starts a throttle); `Note` for an exempt IP, an IP on probation and
    /// one the operator released; `Pass` otherwise.
    pub fn check(&self, ip: IpAddr, now: Timestamp) -> Outcome {
        if !self.settings.enabled {
            return Outcome::Pass;
        }
        if self.settings.exempt_loopback && ip.to_canonical().is_loopback() {
            return Outcome::Note(
                Reason::new(
                    Stage::Throttling,
                    format!("exempt from throttling: {ip} is this host (throttle.exempt_loopback)"),
                )
                .rule("exemption")
                .figure("network", "loopback"),
            );
        }
        if let Some(e) = self.exemptions_of(ip).into_iter().next() {
            // Exempt at once, even while throttled: unlike Exchange, where registering a
            // connector after the throttle began does not lift it (seed D3), hato lets an
            // admin's registration take effect now.
            return Outcome::Note(
                Reason::new(
                    Stage::Throttling,
                    format!(
                        "exempt from throttling: on the exemption list of tenant {} ({})",
                        e.tenant, e.network
                    ),
                )
                .rule("exemption")
                .figure("tenant", e.tenant)
                .figure("network", e.network.to_string()),
            );
        }
        let t = secs(now);
        let key = self.key(ip);
        let record = {
            let mut shard = self.shard(key);
            let Some(r) = shard.map.get_mut(&key) else {
                return Outcome::Note(
                    Reason::new(
                        Stage::Throttling,
                        "never seen before: on probation from its first connection (AS1, AS2)",
                    )
                    .rule("probation")
                    .figure("probation_days", self.settings.probation_days),
                );
            };
            r.advance(t, &self.params);
            r.end_release(t);
            if !r.throttled(t)
                && !r.released(t)
                && let Some(fired) = r.evaluate(t, &self.params)
            {
                r.start_throttle(fired, t, &self.params);
            }
            *r
        };
        if record.throttled(t) {
            return Outcome::Refuse(self.refusal(ip, &record));
        }
        if record.released(t) {
            return Outcome::Note(
                Reason::new(
                    Stage::Throttling,
                    format!(
                        "released by the operator; the throttle rules resume at {}",
                        timestamp(record.until).to_rfc3339()
                    ),
                )
                .rule("release")
                .figure("released", timestamp(record.since).to_rfc3339())
                .figure("rules_resume", timestamp(record.until).to_rfc3339()),
            );
        }
        if record.on_probation(t, &self.params) {
            let until = timestamp(record.probation_until(&self.params)).to_rfc3339();
            return Outcome::Note(
                Reason::new(
                    Stage::Throttling,
                    format!("new IP on probation until {until}: lower limits (AS1, AS2)"),
                )
                .rule("probation")
                .figure("first_seen", timestamp(record.first_seen).to_rfc3339())
                .figure("probation_until", until),
            );
        }
        Outcome::Pass
    }

    fn refusal(&self, ip: IpAddr, r: &Record) -> Refusal {
        let rule = rule_of(r.rule).unwrap_or(&RULES[0]);
        let until = timestamp(r.until).to_rfc3339();
        Refusal::new(
            reply::server_busy(ip, rule.name),
            Reason::new(
                Stage::Throttling,
                format!("{}; throttled until {until}", rule.meaning),
            )
            .rule(rule.name)
            .figure(rule.figure, r.trigger)
            .figure("limit", r.limit)
            .figure("since", timestamp(r.since).to_rfc3339())
            .figure("until", until)
            .figure("strikes", u32::from(r.strikes)),
        )
    }

    /// Runs `f` on `ip`'s record (created when there is none) at `now`.
    fn update(&self, ip: IpAddr, now: Timestamp, f: impl FnOnce(&mut Record)) {
        if !self.settings.enabled {
            return;
        }
        let t = secs(now);
        let key = self.key(ip);
        let mut shard = self.shard(key);
        let r = shard.upsert(key, t, &self.params);
        r.advance(t, &self.params);
        f(r);
    }

    /// A connection the edge admitted (after `check` and the other connect stages).
    pub fn record_connection(&self, ip: IpAddr, now: Timestamp) {
        self.update(ip, now, |r| {
            r.connections[0] = r.connections[0].saturating_add(1);
        });
    }

    /// A message accepted from `ip` for `recipients` recipients.
    pub fn record_message(&self, ip: IpAddr, recipients: u32, now: Timestamp) {
        self.update(ip, now, |r| {
            r.messages += 1.0;
            r.recipients_hour[0] = r.recipients_hour[0].saturating_add(recipients);
            r.recipients_day[0] = r.recipients_day[0].saturating_add(recipients);
        });
    }

    /// A RCPT refused because the recipient does not exist (`550 5.4.1`).
    pub fn record_unknown_recipient(&self, ip: IpAddr, now: Timestamp) {
        self.update(ip, now, |r| {
            r.unknown[0] = r.unknown[0].saturating_add(1);
        });
    }

    /// A message from `ip` the spam filter judged spam.
    pub fn record_spam(&self, ip: IpAddr, now: Timestamp) {
        self.update(ip, now, |r| r.junk += 1.0);
    }

    /// A message from `ip` a user reported as junk (counted as a spam verdict is).
    pub fn record_junk_report(&self, ip: IpAddr, now: Timestamp) {
        self.update(ip, now, |r| r.junk += 1.0);
    }

    /// Ends `ip`'s throttle (if any) and holds the rules off for `release_grace_hours`; returns
    /// whether a throttle was on. An IP not tracked yet gets a record, released.
    pub fn release(&self, ip: IpAddr, now: Timestamp) -> bool {
        let t = secs(now);
        let key = self.key(ip);
        let mut shard = self.shard(key);
        let r = shard.upsert(key, t, &self.params);
        r.advance(t, &self.params);
        let was = r.throttled(t);
        r.release(t, &self.params);
        was
    }

    /// What the throttle knows about `ip` at `now`, changing nothing.
    pub fn status(&self, ip: IpAddr, now: Timestamp) -> ThrottleStatus {
        let t = secs(now);
        let key = self.key(ip);
        let found = self.shard(key).map.get(&key).copied();
        let tracked = found.is_some();
        let mut r = found.unwrap_or_else(|| Record::new(t));
        r.advance(t, &self.params);
        let f = r.figures(t, &self.params);
        let throttle = r.throttled(t).then(|| {
            let rule = rule_of(r.rule).unwrap_or(&RULES[0]);
            ActiveThrottle {
                rule: rule.name,
                meaning: rule.meaning,
                since: timestamp(r.since),
                until: timestamp(r.until),
                strikes: r.strikes,
                figure: rule.figure,
                value: u64::from(r.trigger),
                limit: u64::from(r.limit),
            }
        });
        ThrottleStatus {
            ip,
            key: self.key_text(ip),
            tracked,
            first_seen: tracked.then(|| timestamp(r.first_seen)),
            on_probation: f.probation,
            probation_until: tracked.then(|| timestamp(r.probation_until(&self.params))),
            connections_last_minute: f.connections_minute,
            recipients_last_hour: f.recipients_hour,
            recipients_last_day: f.recipients_day,
            daily_baseline: f.daily_baseline.round() as u64,
            messages_history: f64::from(r.messages).round() as u64,
            junk_history: f64::from(r.junk).round() as u64,
            junk_share_permille: f.junk_permille,
            unknown_recipients_last_hour: f.unknown_hour,
            unknown_recipient_share_permille: f.unknown_permille,
            limits: StatusLimits {
                recipients_per_hour: f.limits.recipients_hour,
                recipients_per_day: f.limits.recipients_day,
                connections_per_minute: f.limits.connections_minute,
            },
            throttle,
            release: r.released(t).then(|| Release {
                released: timestamp(r.since),
                rules_resume: timestamp(r.until),
            }),
            exemptions: self.exemptions_of(ip),
            exempt_loopback: self.settings.exempt_loopback && ip.to_canonical().is_loopback(),
        }
    }

    /// The IPs throttled at `now` (answered `451 4.7.500` at connect: not exempt, not
    /// released), the latest throttle first, then by key; `offset` and `limit` page them. Also
    /// returns how many there are. A pass over the table one shard (one lock) at a time; memory
    /// holds `offset + limit` entries at most, whatever the number throttled.
    pub fn throttled(
        &self,
        now: Timestamp,
        offset: usize,
        limit: usize,
    ) -> (Vec<ThrottledIp>, usize) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let t = secs(now);
        let keep = offset.saturating_add(limit);
        // Ordered by (since descending, key): the heap's greatest is the first to drop.
        // The rest of the entry (until, rule, strikes) rides along; it never decides the order.
        let mut heap: BinaryHeap<(Reverse<u32>, u64, u32, u8, u8)> = BinaryHeap::new();
        let mut total = 0usize;
        if !self.settings.enabled {
            return (Vec::new(), 0);
        }
        for shard in self.shards.iter() {
            let found: Vec<(u64, Record)> = {
                let s = shard.lock().unwrap_or_else(|e| e.into_inner());
                s.map
                    .iter()
                    .filter(|(_, r)| r.throttled(t))
                    .map(|(k, r)| (*k, *r))
                    .collect()
            };
            for (key, r) in found {
                let ip = self.key_ip(key);
                if (self.settings.exempt_loopback && ip.to_canonical().is_loopback())
                    || !self.exemptions_of(ip).is_empty()
                {
                    continue;
                }
                total += 1;
                if keep == 0 {
                    continue;
                }
                let entry = (Reverse(r.since), key, r.until, r.rule, r.strikes);
                if heap.len() < keep {
                    heap.push(entry);
                } else if heap
                    .peek()
                    .is_some_and(|top| (top.0, top.1) > (entry.0, entry.1))
                {
                    heap.pop();
                    heap.push(entry);
                }
            }
        }
        let list = heap
            .into_sorted_vec()
            .into_iter()
            .skip(offset)
            .map(|(Reverse(since), key, until, rule, strikes)| {
                let rule = rule_of(rule).unwrap_or(&RULES[0]);
                ThrottledIp {
                    key: self.key_text(self.key_ip(key)),
                    rule: rule.name,
                    meaning: rule.meaning,
                    since: timestamp(since),
                    until: timestamp(until),
                    strikes,
                }
            })
            .collect();
        (list, total)
    }

    /// The address a key stands for: the IPv4 address, or the first address of the IPv6
    /// prefix.
    fn key_ip(&self, key: u64) -> IpAddr {
        if key & V4_TAG == V4_TAG {
            IpAddr::V4(std::net::Ipv4Addr::from(key as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(key) << 64))
        }
    }

    // ----- snapshots ----------------------------------------------------------------------------

    /// Writes every record (`snapshot.rs` has the format), one shard at a time: a connection
    /// waits at most for one shard's copy, never for the disk. Returns the number written.
    pub fn write_snapshot(&self, out: impl Write) -> io::Result<u64> {
        let mut w = Summed {
            inner: out,
            sum: Checksum::new(),
        };
        w.put(MAGIC)?;
        w.put(&(RECORD_BYTES as u32).to_le_bytes())?;
        let mut buf = Vec::new();
        let mut total = 0u64;
        for shard in self.shards.iter() {
            buf.clear();
            let n = {
                let s = shard.lock().unwrap_or_else(|e| e.into_inner());
                buf.reserve(s.map.len() * RECORD_BYTES);
                for (key, r) in &s.map {
                    snapshot::encode(*key, r, &mut buf);
                }
                s.map.len()
            };
            if n == 0 {
                continue;
            }
            w.put(&(n as u32).to_le_bytes())?;
            w.put(&buf)?;
            total += n as u64;
        }
        w.put(&END.to_le_bytes())?;
        w.put(&total.to_le_bytes())?;
        let sum = w.sum.value();
        w.inner.write_all(&sum.to_le_bytes())?;
        w.inner.flush()?;
        Ok(total)
    }

    /// A throttle with `settings` and the records of a snapshot; refused whole if the snapshot
    /// is damaged or cut short. Records beyond `max_tracked_ips` are evicted as usual.
    pub fn read_snapshot(
        settings: ThrottleSettings,
        input: impl Read,
    ) -> Result<Self, SnapshotError> {
        let throttle = Throttle::new(settings);
        let mut r = Reading {
            inner: input,
            sum: Checksum::new(),
        };
        let magic: [u8; 8] = r.take()?;
        if &magic != MAGIC {
            return Err(SnapshotError::Format(
                String::from_utf8_lossy(&magic).into_owned(),
            ));
        }
        let size = r.u32()?;
        if size as usize != RECORD_BYTES {
            return Err(SnapshotError::Format(format!("record size {size}")));
        }
        let mut total = 0u64;
        loop {
            let n = r.u32()?;
            if n == END {
                break;
            }
            for _ in 0..n {
                let bytes: [u8; RECORD_BYTES] = r.take()?;
                let (key, record) = snapshot::decode(&bytes, RULES.len())?;
                let mut shard = throttle.shard(key);
                let slot = shard.upsert(key, record.last_update, &throttle.params);
                *slot = record;
                total += 1;
            }
        }
        let count = u64::from_le_bytes(r.take()?);
        let want = r.sum.value();
        let mut sum = [0u8; 8];
        r.inner
            .read_exact(&mut sum)
            .map_err(|_| SnapshotError::Corrupt("the file ends early".into()))?;
        if u64::from_le_bytes(sum) != want {
            return Err(SnapshotError::Corrupt("checksum mismatch".into()));
        }
        if count != total {
            return Err(SnapshotError::Corrupt(format!(
                "{total} records where the trailer says {count}"
            )));
        }
        Ok(throttle)
    }

    /// Writes a snapshot to `path`: to `path.tmp` first, synced, then renamed over `path` and
    /// the directory synced, so `path` is always a whole snapshot (the last or the one before).
    pub fn save(&self, path: &Path) -> io::Result<u64> {
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        let n = self.write_snapshot(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(n)
    }

    /// The throttle saved at `path`; `None` when there is no file.
    pub fn load(settings: ThrottleSettings, path: &Path) -> Result<Option<Self>, SnapshotError> {
        match std::fs::File::open(path) {
            Ok(f) => Self::read_snapshot(settings, BufReader::new(f)).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn rule_of(rule: u8) -> Option<&'static Rule> {
    usize::from(rule).checked_sub(1).and_then(|i| RULES.get(i))
}

/// At connect, after the block lists (it counts only the connections they let through); a
/// throttle is final: no allow list lifts it (seed D: it acts "before mail reaches the
/// system"). The check does not count the connection: the edge records it once every check
/// at connect has let the client in ([`Throttle::record_connection`]).
impl ConnectCheck for Throttle {
    fn stage(&self) -> Stage {
        Stage::Throttling
    }

    fn check(&self, client: &ClientContext, now: Timestamp) -> BoxFuture<Outcome> {
        ready(Throttle::check(self, client.ip(), now))
    }
}

/// A rule by its name (`AS1`…).
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

// The record is what a million IPs cost: keep it at 64 bytes.
const _: () = assert!(std::mem::size_of::<Record>() == 64);

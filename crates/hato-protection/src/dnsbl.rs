//! DNS block lists (RFC 5782), asked at connect: the operator names the zones (none by default:
//! hato never queries a public list unasked), what each return code means and where a listed
//! sender asks for removal. A client listed by any zone is refused with
//! `550 5.7.1 Service unavailable; Client host [IP] blocked using ZONE; To request removal from
//! this list see URL` (Spamhaus's rejection as Exchange Online words it, seed C2), and no allow
//! list overrides it (seed C3: "the third-party list cannot be bypassed"): the edge policy
//! treats the refusal as final.
//!
//! - The query is the client's address reversed under the zone (IPv4: octets, IPv6: nibbles,
//!   RFC 5782 §2.1, §2.4); every zone is asked at once.
//! - An A record in `127.0.0.0/8` lists the client, with the meaning the settings give its code
//!   (`127.0.0.4` = `XBL`); when a zone's codes are given, only those list (an unknown code is
//!   ignored and noted: a list that starts using a new code should be read before it refuses).
//! - `127.255.255.0/24` means the list refused the query (Spamhaus: through a public resolver,
//!   over the free quota, a typo in the zone): not listed, and noted.
//! - An answer outside `127.0.0.0/8` is not a DNS block list's (a resolver that rewrites
//!   NXDOMAIN into an advertising page's address): not listed, and noted.
//! - No such name (NXDOMAIN) or no A record: not listed.
//! - A lookup that times out or fails: not listed — the check **fails open** — and noted, so the
//!   connection log says that the client was let in unchecked.

use crate::{BoxFuture, ConnectCheck, Outcome};
use hato_core::dns::{DnsError, Resolver, reversed_name};
use hato_core::reply;
use hato_core::{ClientContext, Reason, Refusal, Stage, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// One zone as the settings give it (`[[dnsbl]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsblZoneSettings {
    /// The list's DNS zone, e.g. `zen.spamhaus.org`.
    pub zone: String,
    /// Where a listed sender asks for removal; quoted in the refusal.
    pub removal_url: String,
    /// Return codes (`127.0.0.2`, or a range `127.0.0.4-127.0.0.7`) and what each means
    /// (`SBL`, `XBL`, …). Empty: any code in `127.0.0.0/8` lists the client.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub codes: BTreeMap<String, String>,
}

/// What is wrong with a zone's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsblConfigError {
    #[error("dnsbl zone {0:?} is not a domain name")]
    BadZone(String),
    #[error(
        "dnsbl zone {zone}: removal_url {url:?} must be a URL on one line (it is quoted in the SMTP reply)"
    )]
    BadUrl { zone: String, url: String },
    #[error(
        "dnsbl zone {zone}: code {code:?} must be an address or a range (a-b) in 127.0.0.0/8, outside 127.255.255.0/24 (which means a refused query)"
    )]
    BadCode { zone: String, code: String },
    #[error("dnsbl zone {zone}: the meaning of code {code} must be text on one line")]
    BadMeaning { zone: String, code: String },
    #[error("dnsbl zone {zone}: codes {first} and {second} overlap")]
    Overlap {
        zone: String,
        first: String,
        second: String,
    },
    #[error("dnsbl zone {0} is given twice")]
    Duplicate(String),
}

/// One zone, checked and ready to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsblZone {
    zone: String,
    removal_url: String,
    /// `(first, last, meaning)`, sorted, not overlapping.
    codes: Vec<(u32, u32, String)>,
}

/// Text that goes into an SMTP reply or a log line: printable, on one line.
fn one_line(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(char::is_control)
}

fn in_loopback(ip: Ipv4Addr) -> bool {
    ip.octets()[0] == 127
}

/// `127.255.255.0/24`: the list refused the query.
fn refusal_code(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    (a, b, c) == (127, 255, 255)
}

impl DnsblZone {
    pub fn new(settings: &DnsblZoneSettings) -> Result<Self, DnsblConfigError> {
        let zone = hato_core::address::canonical_domain_name(&settings.zone)
            .ok()
            .filter(|z| !z.starts_with('[') && z.contains('.'))
            .ok_or_else(|| DnsblConfigError::BadZone(settings.zone.clone()))?;
        let url = settings.removal_url.trim();
        if !one_line(url) || url.contains(' ') {
            return Err(DnsblConfigError::BadUrl {
                zone,
                url: settings.removal_url.clone(),
            });
        }
        let mut codes = Vec::with_capacity(settings.codes.len());
        for (code, meaning) in &settings.codes {
            let bad = || DnsblConfigError::BadCode {
                zone: zone.clone(),
                code: code.clone(),
            };
            let (first, last) = match code.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (code.trim(), code.trim()),
            };
            let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
            let last: Ipv4Addr = last.parse().map_err(|_| bad())?;
            if !in_loopback(first)
                || !in_loopback(last)
                || refusal_code(first)
                || refusal_code(last)
                || u32::from(first) > u32::from(last)
            {
                return Err(bad());
            }
            if !one_line(meaning) {
                return Err(DnsblConfigError::BadMeaning {
                    zone: zone.clone(),
                    code: code.clone(),
                });
            }
            codes.push((
                u32::from(first),
                u32::from(last),
                meaning.trim().to_string(),
            ));
        }
        codes.sort();
        for pair in codes.windows(2) {
            if pair[1].0 <= pair[0].1 {
                let show = |c: &(u32, u32, String)| {
                    if c.0 == c.1 {
                        Ipv4Addr::from(c.0).to_string()
                    } else {
                        format!("{}-{}", Ipv4Addr::from(c.0), Ipv4Addr::from(c.1))
                    }
                };
                return Err(DnsblConfigError::Overlap {
                    zone,
                    first: show(&pair[0]),
                    second: show(&pair[1]),
                });
            }
        }
        Ok(DnsblZone {
            zone,
            removal_url: url.to_string(),
            codes,
        })
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn removal_url(&self) -> &str {
        &self.removal_url
    }

    /// What a return code means; `None` when codes are given and this is none of them.
    fn meaning(&self, code: Ipv4Addr) -> Option<&str> {
        if self.codes.is_empty() {
            return Some("listed");
        }
        let n = u32::from(code);
        // Sorted and disjoint: the last range starting at or before `n` is the only candidate.
        let i = self.codes.partition_point(|c| c.0 <= n);
        let (first, last, meaning) = self.codes.get(i.checked_sub(1)?)?;
        (*first <= n && n <= *last).then_some(meaning.as_str())
    }
}

/// Every zone's settings checked, and no zone twice.
pub fn zones_from_settings(
    settings: &[DnsblZoneSettings],
) -> Result<Vec<DnsblZone>, DnsblConfigError> {
    let mut zones: Vec<DnsblZone> = Vec::with_capacity(settings.len());
    for s in settings {
        let z = DnsblZone::new(s)?;
        if zones.iter().any(|other| other.zone == z.zone) {
            return Err(DnsblConfigError::Duplicate(z.zone));
        }
        zones.push(z);
    }
    Ok(zones)
}

/// What one zone said about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ZoneAnswer {
    NotListed,
    /// The codes that list it, with their meanings, in address order.
    Listed(Vec<(Ipv4Addr, String)>),
    /// Not listed, but worth a note: why.
    Noted(String),
}

/// The DNS block list check: the configured zones over a resolver.
#[derive(Clone)]
pub struct Dnsbl {
    resolver: Arc<dyn Resolver>,
    zones: Arc<[DnsblZone]>,
}

impl Dnsbl {
    pub fn new(resolver: Arc<dyn Resolver>, zones: Vec<DnsblZone>) -> Self {
        Dnsbl {
            resolver,
            zones: zones.into(),
        }
    }

    /// No zone configured: every check passes without a query.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Asks every zone about `ip` at once and decides: `Refuse` when any lists it (the first
    /// listing zone in the settings' order names the reply), else `Note` when any could not
    /// say (timeout, failure, refused query, an odd answer: the check failed open for it), else
    /// `Pass`. Bounded by the resolver's timeout.
    pub fn check(&self, ip: IpAddr) -> impl Future<Output = Outcome> + Send + 'static {
        let ip = ip.to_canonical();
        let lookups: Vec<_> = self
            .zones
            .iter()
            .map(|z| {
                let query = reversed_name(ip, &z.zone);
                let lookup = self.resolver.lookup_a(&query);
                (z.clone(), query, lookup)
            })
            .collect();
        async move {
            let (meta, futures): (Vec<_>, Vec<_>) =
                lookups.into_iter().map(|(z, q, f)| ((z, q), f)).unzip();
            let answers = futures_util::future::join_all(futures).await;
            let answers: Vec<(DnsblZone, String, ZoneAnswer)> = meta
                .into_iter()
                .zip(answers)
                .map(|((z, q), a)| {
                    let answer = read_answer(&z, a);
                    (z, q, answer)
                })
                .collect();
            decide(ip, &answers)
        }
    }
}

/// At connect, after the provider's block list; a listing is final: no allow list lifts it
/// (seed C3: "cannot be bypassed").
impl ConnectCheck for Dnsbl {
    fn stage(&self) -> Stage {
        Stage::DnsBlockList
    }

    fn check(&self, client: &ClientContext, _: Timestamp) -> BoxFuture<Outcome> {
        Box::pin(Dnsbl::check(self, client.ip()))
    }
}

fn read_answer(zone: &DnsblZone, answer: Result<Vec<Ipv4Addr>, DnsError>) -> ZoneAnswer {
    let mut codes = match answer {
        Ok(codes) => codes,
        Err(e) if e.is_not_found() => return ZoneAnswer::NotListed,
        Err(e) => return ZoneAnswer::Noted(format!("the lookup failed ({e})")),
    };
    codes.sort();
    codes.dedup();
    let mut listed = Vec::new();
    let mut odd = Vec::new();
    for code in codes {
        if refusal_code(code) {
            odd.push(format!(
                "the list refused the query ({code}: queries through a public resolver, or over the list's quota, are refused)"
            ));
        } else if !in_loopback(code) {
            odd.push(format!(
                "{code} is not a DNS block list answer (not in 127.0.0.0/8; a resolver rewriting NXDOMAIN?)"
            ));
        } else if let Some(meaning) = zone.meaning(code) {
            listed.push((code, meaning.to_string()));
        } else {
            odd.push(format!("return code {code} is not among the zone's codes"));
        }
    }
    if !listed.is_empty() {
        ZoneAnswer::Listed(listed)
    } else if !odd.is_empty() {
        ZoneAnswer::Noted(odd.join("; "))
    } else {
        ZoneAnswer::NotListed
    }
}

fn decide(ip: IpAddr, answers: &[(DnsblZone, String, ZoneAnswer)]) -> Outcome {
    for (zone, query, answer) in answers {
        if let ZoneAnswer::Listed(codes) = answer {
            let shown: Vec<String> = codes.iter().map(|(c, m)| format!("{c} {m}")).collect();
            let shown = shown.join(", ");
            let reason = Reason::new(
                Stage::DnsBlockList,
                format!(
                    "{ip} is listed in {} ({shown}); no allow list overrides a DNS block list",
                    zone.zone
                ),
            )
            .rule(zone.zone.clone())
            .figure("query", query.as_str())
            .figure("codes", shown);
            return Outcome::Refuse(Refusal::new(
                reply::dnsbl_listed(ip, &zone.zone, &zone.removal_url),
                reason,
            ));
        }
    }
    let noted: Vec<(&DnsblZone, &String, &String)> = answers
        .iter()
        .filter_map(|(z, q, a)| match a {
            ZoneAnswer::Noted(why) => Some((z, q, why)),
            _ => None,
        })
        .collect();
    if noted.is_empty() {
        return Outcome::Pass;
    }
    let zones: Vec<&str> = noted.iter().map(|(z, _, _)| z.zone.as_str()).collect();
    let what: Vec<String> = noted
        .iter()
        .map(|(z, _, why)| format!("{}: {why}", z.zone))
        .collect();
    let mut reason = Reason::new(
        Stage::DnsBlockList,
        format!(
            "{ip} could not be checked against {}, so it is let in unchecked (DNS block lists fail open): {}",
            zones.join(", "),
            what.join("; ")
        ),
    )
    .rule(zones.join(", "));
    for (_, query, _) in &noted {
        reason = reason.figure("query", query.as_str());
    }
    Outcome::Note(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(codes: &[(&str, &str)]) -> DnsblZoneSettings {
        DnsblZoneSettings {
            zone: "zen.spamhaus.org".into(),
            removal_url: "https://check.spamhaus.org/".into(),
            codes: codes
                .iter()
                .map(|(c, m)| (c.to_string(), m.to_string()))
                .collect(),
        }
    }

    #[test]
    fn codes_map_to_their_meanings() {
        let z = DnsblZone::new(&settings(&[
            ("127.0.0.2", "SBL"),
            ("127.0.0.3", "SBL CSS"),
            ("127.0.0.4-127.0.0.7", "XBL"),
            ("127.0.0.9", "DROP"),
            ("127.0.0.10-127.0.0.11", "PBL"),
        ]))
        .unwrap();
        for (code, want) in [
            ("127.0.0.1", None),
            ("127.0.0.2", Some("SBL")),
            ("127.0.0.3", Some("SBL CSS")),
            ("127.0.0.4", Some("XBL")),
            ("127.0.0.7", Some("XBL")),
            ("127.0.0.8", None),
            ("127.0.0.9", Some("DROP")),
            ("127.0.0.11", Some("PBL")),
            ("127.0.0.12", None),
        ] {
            assert_eq!(z.meaning(code.parse().unwrap()), want, "{code}");
        }
        let any = DnsblZone::new(&settings(&[])).unwrap();
        assert_eq!(any.meaning("127.0.0.77".parse().unwrap()), Some("listed"));
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        let err = |s: DnsblZoneSettings| DnsblZone::new(&s).unwrap_err().to_string();
        let mut s = settings(&[]);
        s.zone = "not a zone".into();
        assert_eq!(err(s), "dnsbl zone \"not a zone\" is not a domain name");
        let mut s = settings(&[]);
        s.removal_url = "https://x.test/\r\n250 OK".into();
        assert!(err(s).contains("must be a URL on one line"));
        for code in [
            "10.0.0.2",
            "127.0.0.9-127.0.0.2",
            "127.255.255.254",
            "127.0.0.2-128.0.0.1",
            "x",
        ] {
            assert_eq!(
                err(settings(&[(code, "X")])),
                format!(
                    "dnsbl zone zen.spamhaus.org: code {code:?} must be an address or a range (a-b) in 127.0.0.0/8, outside 127.255.255.0/24 (which means a refused query)"
                )
            );
        }
        assert_eq!(
            err(settings(&[
                ("127.0.0.2-127.0.0.5", "A"),
                ("127.0.0.4", "B")
            ])),
            "dnsbl zone zen.spamhaus.org: codes 127.0.0.2-127.0.0.5 and 127.0.0.4 overlap"
        );
        assert!(err(settings(&[("127.0.0.2", "")])).contains("meaning of code 127.0.0.2"));
        let dup = zones_from_settings(&[settings(&[]), settings(&[])]).unwrap_err();
        assert_eq!(
            dup.to_string(),
            "dnsbl zone zen.spamhaus.org is given twice"
        );
    }
}

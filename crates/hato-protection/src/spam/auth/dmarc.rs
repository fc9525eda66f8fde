//! DMARC (RFC 7489): the From domain's policy record, identifier alignment and `pct`.
//!
//! The policy record is the From domain's `_dmarc` record, else its Organizational Domain's
//! (RFC 7489 §6.6.3), whose `sp=` then applies. The Organizational Domain is found without a
//! public suffix list, by the DNS tree walk of DMARCbis (RFC 9989 §4.10): the `_dmarc` records
//! of the domain and its ancestors (at most [`MAX_WALK`] names, queried together), the first
//! with `psd=n` is the Organizational Domain, one below a `psd=y` record is, else the one with
//! the fewest labels that has a record. mail-auth 0.12 implements DMARCbis, which dropped
//! `pct`; the records are parsed here so `pct` (RFC 7489 §6.3, §6.6.4) is honoured.

use std::collections::HashMap;

use futures_util::future::join_all;
use tokio::sync::Mutex;

use super::Lookups;
use crate::spam::{AuthResult, DmarcPolicy};

/// RFC 9989 §4.10.1: a tree walk makes at most eight queries.
pub const MAX_WALK: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// A parsed `v=DMARC1` record (RFC 7489 §6.3), the tags hato uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub p: DmarcPolicy,
    pub sp: DmarcPolicy,
    pub pct: u8,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// `psd=y` / `psd=n` (RFC 9989), for the tree walk.
    pub psd: Option<bool>,
}

/// Parses a DMARC record; `None` when it is not a valid `v=DMARC1` record (RFC 7489 §6.6.3:
/// such records are ignored). Linear in the record.
pub fn parse(text: &str) -> Option<Record> {
    let mut tags = text.split(';').map(str::trim).filter(|t| !t.is_empty());
    let first = tags.next()?;
    let (name, value) = first.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("v") || value.trim() != "DMARC1" {
        return None;
    }
    let mut p = None;
    let mut sp = None;
    let mut pct = 100u8;
    let mut adkim = Alignment::Relaxed;
    let mut aspf = Alignment::Relaxed;
    let mut psd = None;
    let mut rua = false;
    for tag in tags {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => p = policy(value),
            "sp" => sp = policy(value),
            // RFC 7489 §6.3: an integer 0–100; anything else leaves the default.
            "pct" => {
                pct = value
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= 100)
                    .unwrap_or(100)
            }
            "adkim" if value.eq_ignore_ascii_case("s") => adkim = Alignment::Strict,
            "aspf" if value.eq_ignore_ascii_case("s") => aspf = Alignment::Strict,
            "psd" => psd = Some(value.eq_ignore_ascii_case("y")),
            "rua" => rua = true,
            _ => {}
        }
    }
    // RFC 7489 §6.6.3: a record without a valid `p=` is treated as `p=none` when it has `rua`,
    // otherwise it is not a record.
    let p = match p {
        Some(p) => p,
        None if rua => DmarcPolicy::None,
        None => return None,
    };
    Some(Record {
        p,
        sp: sp.unwrap_or(p),
        pct,
        adkim,
        aspf,
        psd,
    })
}

fn policy(value: &str) -> Option<DmarcPolicy> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Some(DmarcPolicy::None),
        "quarantine" => Some(DmarcPolicy::Quarantine),
        "reject" => Some(DmarcPolicy::Reject),
        _ => None,
    }
}

/// What a `_dmarc` name holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found {
    Record(Record),
    Nothing,
    /// The lookup failed (timeout, refusal): DMARC cannot be decided (temperror).
    Failed(String),
}

/// The `_dmarc` records read for one message, so the walks of the From domain, the MAIL FROM
/// domain and the DKIM domains ask for each name once.
pub struct Walker<'a, 'r> {
    lookups: &'a Lookups<'r>,
    memo: Mutex<HashMap<String, Found>>,
}

/// The domain and its ancestors, longest first, shortened to at most [`MAX_WALK`] names as
/// RFC 9989 §4.10.1 says (past eight labels, the walk jumps to the seven-label ancestor).
fn walk_names(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    let mut names = Vec::new();
    for start in 0..labels.len() {
        let remaining = labels.len() - start;
        if start > 0 && remaining >= MAX_WALK {
            continue;
        }
        names.push(labels[start..].join("."));
    }
    names.truncate(MAX_WALK);
    names
}

impl<'a, 'r> Walker<'a, 'r> {
    pub fn new(lookups: &'a Lookups<'r>) -> Self {
        Walker {
            lookups,
            memo: Mutex::new(HashMap::new()),
        }
    }

    async fn read(&self, domain: &str) -> Found {
        if let Some(found) = self.memo.lock().await.get(domain) {
            return found.clone();
        }
        let name = format!("_dmarc.{domain}");
        let found = match self.lookups.txt(&name).await {
            Ok(texts) => {
                // RFC 7489 §6.6.3: exactly one valid record, else none.
                let mut records = texts.iter().filter_map(|t| parse(t));
                match (records.next(), records.next()) {
                    (Some(record), None) => Found::Record(record),
                    _ => Found::Nothing,
                }
            }
            Err(e) if e.is_not_found() => Found::Nothing,
            Err(e) => Found::Failed(e.to_string()),
        };
        self.memo
            .lock()
            .await
            .insert(domain.to_string(), found.clone());
        found
    }

    /// The tree walk's records for `domain` and its ancestors, longest first.
    async fn walk(&self, domain: &str) -> Result<Vec<(String, Option<Record>)>, String> {
        let names = walk_names(domain);
        let found = join_all(names.iter().map(|n| self.read(n))).await;
        let mut out = Vec::with_capacity(names.len());
        for (name, found) in names.into_iter().zip(found) {
            match found {
                Found::Record(r) => out.push((name, Some(r))),
                Found::Nothing => out.push((name, None)),
                Found::Failed(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The Organizational Domain of `domain` (RFC 9989 §4.10.2); the domain itself when no
    /// ancestor publishes a record.
    pub async fn organizational_domain(&self, domain: &str) -> Result<String, String> {
        let walk = self.walk(domain).await?;
        Ok(org_of(&walk, domain))
    }
}

/// Whether `domain` or an ancestor publishes a DMARC record (the tree walk finds one): only
/// then can a message from the domain pass DMARC aligned. At most [`MAX_WALK`] TXT lookups,
/// concurrently. `Err` when a lookup failed (DMARC could not be decided).
pub async fn publishes_policy(
    resolver: &dyn hato_core::dns::Resolver,
    domain: &str,
) -> Result<bool, String> {
    let lookups = Lookups::new(resolver);
    let walker = Walker::new(&lookups);
    let walk = walker.walk(&domain.to_ascii_lowercase()).await?;
    Ok(walk.iter().any(|(_, record)| record.is_some()))
}

fn org_of(walk: &[(String, Option<Record>)], domain: &str) -> String {
    let mut fewest: Option<&str> = None;
    for (i, (name, record)) in walk.iter().enumerate() {
        let Some(record) = record else { continue };
        match record.psd {
            Some(false) => return name.clone(),
            Some(true) => {
                // One label below the public suffix domain, on the path to `domain`.
                return if i > 0 {
                    walk[i - 1].0.clone()
                } else {
                    domain.to_string()
                };
            }
            None => fewest = Some(name),
        }
    }
    fewest.unwrap_or(domain).to_string()
}

/// What DMARC decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarcOutcome {
    pub result: AuthResult,
    /// The policy to apply after `p`/`sp` and `pct` (only meaningful on `fail`).
    pub policy: DmarcPolicy,
    /// The policy the domain asked for (`p` or `sp`), before `pct`.
    pub requested: DmarcPolicy,
    /// `pct` chose not to apply the policy (Exchange's `action=pct.quarantine`/`pct.reject`).
    pub sampled_out: bool,
    /// No record, but an aligned SPF or DKIM pass (Exchange's `dmarc=bestguesspass`).
    pub best_guess_pass: bool,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
    pub why: String,
}

/// The inputs DMARC needs from SPF and DKIM.
pub struct DmarcQuery<'a> {
    pub from_domain: &'a str,
    /// The domain SPF checked (MAIL FROM's, or HELO's for the null reverse-path) when SPF
    /// passed.
    pub spf_pass_domain: Option<&'a str>,
    /// The `d=` of each DKIM signature that passed.
    pub dkim_pass_domains: Vec<&'a str>,
    /// A number that is the same every time this message is checked (`pct` sampling).
    pub sample: u64,
}

pub async fn evaluate(walker: &Walker<'_, '_>, query: &DmarcQuery<'_>) -> DmarcOutcome {
    let from = query.from_domain;
    let mut outcome = DmarcOutcome {
        result: AuthResult::None,
        policy: DmarcPolicy::None,
        requested: DmarcPolicy::None,
        sampled_out: false,
        best_guess_pass: false,
        spf_aligned: false,
        dkim_aligned: false,
        why: String::new(),
    };
    let walk = match walker.walk(from).await {
        Ok(walk) => walk,
        Err(e) => {
            outcome.result = AuthResult::TempError;
            outcome.why = format!("the DMARC record could not be read: {e}");
            return outcome;
        }
    };
    let org = org_of(&walk, from);
    // RFC 7489 §6.6.3: the From domain's record (p=), else the Organizational Domain's (sp=).
    let own = walk.first().and_then(|(_, r)| r.clone());
    let (record, requested, at) = match own {
        Some(r) => {
            let p = r.p;
            (Some(r), p, from.to_string())
        }
        None => match walk
            .iter()
            .find(|(n, _)| *n == org)
            .and_then(|(_, r)| r.clone())
        {
            Some(r) => {
                let sp = r.sp;
                (Some(r), sp, org.clone())
            }
            None => (None, DmarcPolicy::None, String::new()),
        },
    };
    let (adkim, aspf) = record
        .as_ref()
        .map_or((Alignment::Relaxed, Alignment::Relaxed), |r| {
            (r.adkim, r.aspf)
        });

    // RFC 7489 §3.1: alignment, strict (equal) or relaxed (same Organizational Domain).
    let aligned = |domain: &str, mode: Alignment| {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let org = org.clone();
        async move {
            if domain == from {
                return Ok(true);
            }
            if mode == Alignment::Strict {
                return Ok(false);
            }
            // Two domains with no common parent cannot share an Organizational Domain.
            if !shares_parent(&domain, from) {
                return Ok(false);
            }
            walker
                .organizational_domain(&domain)
                .await
                .map(|o| o == org)
        }
    };
    let mut failed_lookup = None;
    if let Some(spf_domain) = query.spf_pass_domain {
        match aligned(spf_domain, aspf).await {
            Ok(a) => outcome.spf_aligned = a,
            Err(e) => failed_lookup = Some(e),
        }
    }
    for d in &query.dkim_pass_domains {
        match aligned(d, adkim).await {
            Ok(true) => {
                outcome.dkim_aligned = true;
                break;
            }
            Ok(false) => {}
            Err(e) => failed_lookup = Some(e),
        }
    }
    let pass = outcome.spf_aligned || outcome.dkim_aligned;
    let Some(record) = record else {
        outcome.best_guess_pass = pass;
        outcome.why = format!("{from} publishes no DMARC record");
        return outcome;
    };
    outcome.requested = requested;
    if pass {
        outcome.result = AuthResult::Pass;
        outcome.why = format!(
            "{} aligned with {from} (policy at _dmarc.{at})",
            match (outcome.spf_aligned, outcome.dkim_aligned) {
                (true, true) => "SPF and DKIM",
                (true, false) => "SPF",
                _ => "DKIM",
            }
        );
        return outcome;
    }
    if let Some(e) = failed_lookup {
        outcome.result = AuthResult::TempError;
        outcome.why = format!("alignment could not be decided: {e}");
        return outcome;
    }
    outcome.result = AuthResult::Fail;
    // RFC 7489 §6.6.4: with pct < 100 the policy applies to that share of failing messages,
    // the others get the next weaker policy (quarantine → none, reject → quarantine).
    let applies = u64::from(record.pct) > query.sample % 100;
    outcome.policy = if applies {
        requested
    } else {
        outcome.sampled_out = requested != DmarcPolicy::None;
        match requested {
            DmarcPolicy::Reject => DmarcPolicy::Quarantine,
            _ => DmarcPolicy::None,
        }
    };
    outcome.why = format!(
        "neither SPF nor DKIM passed aligned with {from}; its policy (_dmarc.{at}) is {}{}",
        policy_name(requested),
        if record.pct < 100 {
            format!(
                ", pct={} {}",
                record.pct,
                if applies {
                    "applied to this message"
                } else {
                    "sampled this message out"
                }
            )
        } else {
            String::new()
        }
    );
    outcome
}

/// Whether the two domains have a common parent of at least two labels.
fn shares_parent(a: &str, b: &str) -> bool {
    let common = a
        .rsplit('.')
        .zip(b.rsplit('.'))
        .take_while(|(x, y)| x == y)
        .count();
    common >= 2
}

pub fn policy_name(policy: DmarcPolicy) -> &'static str {
    match policy {
        DmarcPolicy::None => "none",
        DmarcPolicy::Quarantine => "quarantine",
        DmarcPolicy::Reject => "reject",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_with_rfc_7489_defaults() {
        let r = parse("v=DMARC1; p=reject; pct=25; adkim=s").expect("a record");
        assert_eq!(r.p, DmarcPolicy::Reject);
        assert_eq!(r.sp, DmarcPolicy::Reject);
        assert_eq!(r.pct, 25);
        assert_eq!(r.adkim, Alignment::Strict);
        assert_eq!(r.aspf, Alignment::Relaxed);
        assert_eq!(
            parse("v=DMARC1; p=none; sp=quarantine").map(|r| r.sp),
            Some(DmarcPolicy::Quarantine)
        );
        assert_eq!(
            parse("v=DMARC1; rua=mailto:a@b.test").map(|r| r.p),
            Some(DmarcPolicy::None)
        );
        assert_eq!(parse("v=DMARC1; pct=50"), None);
        assert_eq!(parse("v=spf1 -all"), None);
        assert_eq!(
            parse("v=DMARC1; p=reject; pct=400").map(|r| r.pct),
            Some(100)
        );
    }

    #[test]
    fn the_walk_is_at_most_eight_names() {
        assert_eq!(
            walk_names("a.b.example.com"),
            vec!["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        let long = "a.b.c.d.e.f.g.h.i.j.example.com";
        let names = walk_names(long);
        assert_eq!(names.len(), MAX_WALK);
        assert_eq!(names[0], long);
        assert_eq!(names[1], "f.g.h.i.j.example.com");
    }

    #[test]
    fn organizational_domains_follow_the_tree_walk() {
        let rec = |psd| {
            Some(Record {
                p: DmarcPolicy::None,
                sp: DmarcPolicy::None,
                pct: 100,
                adkim: Alignment::Relaxed,
                aspf: Alignment::Relaxed,
                psd,
            })
        };
        let walk = vec![
            ("mail.example.com".to_string(), rec(None)),
            ("example.com".to_string(), rec(None)),
            ("com".to_string(), None),
        ];
        assert_eq!(org_of(&walk, "mail.example.com"), "example.com");
        let walk = vec![
            ("a.example.co.uk".to_string(), None),
            ("example.co.uk".to_string(), None),
            ("co.uk".to_string(), rec(Some(true))),
            ("uk".to_string(), None),
        ];
        assert_eq!(org_of(&walk, "a.example.co.uk"), "example.co.uk");
    }
}

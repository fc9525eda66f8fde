//! SPF (RFC 7208) `check_host()`, evaluated here with lookups through hato's
//! [`Resolver`](hato_core::dns::Resolver): mail-auth parses the records and expands the macros,
//! but its own evaluator asks its own hickory resolver (or caches filled beforehand, which a
//! recursive evaluation cannot know in advance), so the walk over the directives is ours.
//!
//! Bounds (RFC 7208 §4.6.4): at most [`MAX_DNS_MECHANISMS`] terms that cause DNS queries
//! (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`), at most [`MAX_VOID_LOOKUPS`] lookups
//! that return nothing, at most 10 address lookups per `mx` and per `ptr`; beyond any →
//! `permerror`. An include loop therefore ends at the 11th term. A record is at most what one
//! DNS answer holds (64 KiB), parsed once in linear time.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use hato_core::dns::DnsError;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf, Variables};

use super::Lookups;
use crate::spam::AuthResult;

/// RFC 7208 §4.6.4: "SPF implementations MUST limit the total number of those terms to 10".
pub const MAX_DNS_MECHANISMS: u32 = 10;
/// RFC 7208 §4.6.4: "SPF implementations SHOULD limit "void lookups" to two".
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: an `mx` term looks up at most 10 exchanges; a `ptr` term (and `%{p}`)
/// at most 10 names.
pub const MAX_ADDRESS_LOOKUPS: usize = 10;

/// What `check_host()` found, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfOutcome {
    pub result: AuthResult,
    /// A sentence for the reason: which term matched, or what went wrong.
    pub why: String,
}

impl SpfOutcome {
    fn new(result: AuthResult, why: impl Into<String>) -> Self {
        SpfOutcome {
            result,
            why: why.into(),
        }
    }
}

/// The inputs of `check_host()` (RFC 7208 §4.1).
pub struct SpfQuery<'a> {
    pub ip: IpAddr,
    /// The domain whose policy is checked: the MAIL FROM domain, or the HELO name for the null
    /// reverse-path (RFC 7208 §2.4).
    pub domain: &'a str,
    /// `<sender>`: the MAIL FROM address, or `postmaster@<HELO name>`.
    pub sender: &'a str,
    pub helo: &'a str,
    /// The receiving host's name (the `%{r}` macro).
    pub host: &'a str,
}

struct Eval<'a, 'r> {
    lookups: &'a Lookups<'r>,
    query: &'a SpfQuery<'a>,
    terms: u32,
    voids: u32,
}

enum Step {
    /// The term matched: its qualifier is the result.
    Match,
    NoMatch,
    /// Evaluation ends with this result (temperror, permerror).
    Stop(SpfOutcome),
}

/// `check_host()` for the query.
pub async fn check_host(lookups: &Lookups<'_>, query: &SpfQuery<'_>) -> SpfOutcome {
    let mut eval = Eval {
        lookups,
        query,
        terms: 0,
        voids: 0,
    };
    let domain = query.domain.trim_end_matches('.').to_ascii_lowercase();
    // RFC 7208 §4.3: a domain that is not a valid multi-label domain name gives `none`.
    if !valid_domain(&domain) {
        return SpfOutcome::new(
            AuthResult::None,
            format!("{domain:?} is not a domain name that can have an SPF record"),
        );
    }
    eval.check(domain).await
}

impl Eval<'_, '_> {
    /// One `check_host()` over `domain`: the top level (`none` when it has no record) or an
    /// `include`/`redirect` target. Boxed: includes recurse, bounded by the term limit.
    fn check(&mut self, domain: String) -> Pin<Box<dyn Future<Output = SpfOutcome> + Send + '_>> {
        Box::pin(async move {
            let record = match self.record(&domain).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    return SpfOutcome::new(
                        AuthResult::None,
                        format!("{domain} publishes no SPF record"),
                    );
                }
                Err(outcome) => return outcome,
            };
            let mut vars = self.vars(&domain);
            for directive in record.directives.iter() {
                let step = self
                    .mechanism(&directive.mechanism, &domain, &mut vars)
                    .await;
                match step {
                    Step::Stop(outcome) => return outcome,
                    Step::NoMatch => {}
                    Step::Match => {
                        let result = match directive.qualifier {
                            Qualifier::Pass => AuthResult::Pass,
                            Qualifier::Fail => AuthResult::Fail,
                            Qualifier::SoftFail => AuthResult::SoftFail,
                            Qualifier::Neutral => AuthResult::Neutral,
                        };
                        return SpfOutcome::new(
                            result,
                            format!(
                                "{domain}'s record ends in {} at \"{}\"",
                                result_name(result),
                                describe(&directive.mechanism, &vars, &domain)
                            ),
                        );
                    }
                }
            }
            // RFC 7208 §6.1: `redirect` applies when no directive matched (and there is no
            // `all`, which would have matched).
            if let Some(redirect) = &record.redirect {
                if let Some(stop) = self.count_term() {
                    return stop;
                }
                let target = expand(redirect, &vars, &domain);
                // RFC 7208 §6.1: a redirect to a domain without a record is a permerror.
                let outcome = self.check(target.clone()).await;
                return if outcome.result == AuthResult::None {
                    SpfOutcome::new(
                        AuthResult::PermError,
                        format!("{domain} redirects to {target}, which publishes no SPF record"),
                    )
                } else {
                    outcome
                };
            }
            // RFC 7208 §4.7: no match and no redirect: neutral.
            SpfOutcome::new(
                AuthResult::Neutral,
                format!("no term of {domain}'s record matched"),
            )
        })
    }

    /// The SPF record of `domain` (RFC 7208 §4.5): `Ok(None)` when it has none.
    async fn record(&mut self, domain: &str) -> Result<Option<Spf>, SpfOutcome> {
        let texts = match self.lookups.txt(domain).await {
            Ok(texts) => texts,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(SpfOutcome::new(
                    AuthResult::TempError,
                    format!("the SPF record could not be read: {e}"),
                ));
            }
        };
        let mut records = texts.iter().filter(|t| is_spf1(t));
        let Some(text) = records.next() else {
            return Ok(None);
        };
        // RFC 7208 §4.5: more than one record is a permerror.
        if records.next().is_some() {
            return Err(SpfOutcome::new(
                AuthResult::PermError,
                format!("{domain} publishes more than one SPF record"),
            ));
        }
        // mail-auth 0.12.1 computes a CIDR mask as `MAX << (32 - length)`, which overflows for
        // a zero length (spf/parse.rs): such a record (`ip4:0.0.0.0/0`, "everyone may send
        // for me") is refused before it reaches the parser.
        if has_zero_cidr(text) {
            return Err(SpfOutcome::new(
                AuthResult::PermError,
                format!("{domain}'s SPF record has a zero-length CIDR (/0), not accepted"),
            ));
        }
        match Spf::parse(text.as_bytes()) {
            Ok(spf) => Ok(Some(spf)),
            Err(_) => Err(SpfOutcome::new(
                AuthResult::PermError,
                format!("{domain}'s SPF record does not parse: {}", clip(text, 120)),
            )),
        }
    }

    fn vars(&self, domain: &str) -> Variables<'static> {
        let mut vars = Variables::new();
        vars.set_ip(&self.query.ip);
        vars.set_sender(self.query.sender.as_bytes().to_vec());
        vars.set_domain(domain.as_bytes().to_vec());
        vars.set_helo_domain(self.query.helo.as_bytes().to_vec());
        vars.set_host_domain(self.query.host.as_bytes().to_vec());
        // RFC 7208 §7.3: `%{p}` is "unknown" when not validated; hato does not spend up to 11
        // more lookups on a macro the RFC says not to use.
        vars.set_validated_domain(b"unknown".to_vec());
        vars
    }

    /// Counts one DNS-querying term; `Some(permerror)` past the limit.
    fn count_term(&mut self) -> Option<SpfOutcome> {
        self.terms += 1;
        (self.terms > MAX_DNS_MECHANISMS).then(|| {
            SpfOutcome::new(
                AuthResult::PermError,
                format!(
                    "more than {MAX_DNS_MECHANISMS} DNS-querying terms (RFC 7208 §4.6.4); an include loop or too many includes"
                ),
            )
        })
    }

    /// Counts a lookup that returned nothing; `Some(permerror)` past the limit.
    fn count_void(&mut self) -> Option<SpfOutcome> {
        self.voids += 1;
        (self.voids > MAX_VOID_LOOKUPS).then(|| {
            SpfOutcome::new(
                AuthResult::PermError,
                format!("more than {MAX_VOID_LOOKUPS} lookups found nothing (RFC 7208 §4.6.4)"),
            )
        })
    }

    async fn mechanism(
        &mut self,
        mechanism: &Mechanism,
        domain: &str,
        vars: &mut Variables<'static>,
    ) -> Step {
        let ip = self.query.ip;
        match mechanism {
            Mechanism::All => Step::Match,
            Mechanism::Ip4 { addr, mask } => match ip {
                IpAddr::V4(v4) => step(u32::from(v4) & mask == u32::from(*addr) & mask),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => step(u32::from(v4) & mask == u32::from(*addr) & mask),
                    None => Step::NoMatch,
                },
            },
            Mechanism::Ip6 { addr, mask } => match ip {
                IpAddr::V6(v6) => step(u128::from(v6) & mask == u128::from(*addr) & mask),
                IpAddr::V4(_) => Step::NoMatch,
            },
            Mechanism::A {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                if let Some(stop) = self.count_term() {
                    return Step::Stop(stop);
                }
                let name = expand(macro_string, vars, domain);
                match self.address_match(&name, *ip4_mask, *ip6_mask).await {
                    Ok(Some(found)) => step(found),
                    Ok(None) => match self.count_void() {
                        Some(stop) => Step::Stop(stop),
                        None => Step::NoMatch,
                    },
                    Err(e) => Step::Stop(temperror(&e)),
                }
            }
            Mechanism::Mx {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                if let Some(stop) = self.count_term() {
                    return Step::Stop(stop);
                }
                let name = expand(macro_string, vars, domain);
                let exchanges = match self.lookups.mx(&name).await {
                    Ok(mxs) => mxs,
                    Err(e) if e.is_not_found() => {
                        return match self.count_void() {
                            Some(stop) => Step::Stop(stop),
                            None => Step::NoMatch,
                        };
                    }
                    Err(e) => return Step::Stop(temperror(&e)),
                };
                // RFC 7208 §4.6.4: more than 10 exchanges is a permerror.
                if exchanges.len() > MAX_ADDRESS_LOOKUPS {
                    return Step::Stop(SpfOutcome::new(
                        AuthResult::PermError,
                        format!(
                            "{name} has {} MX records, more than {MAX_ADDRESS_LOOKUPS} (RFC 7208 §4.6.4)",
                            exchanges.len()
                        ),
                    ));
                }
                for mx in exchanges {
                    match self.address_match(&mx.exchange, *ip4_mask, *ip6_mask).await {
                        Ok(Some(true)) => return Step::Match,
                        Ok(_) => {}
                        Err(e) => return Step::Stop(temperror(&e)),
                    }
                }
                Step::NoMatch
            }
            Mechanism::Include { macro_string } => {
                if let Some(stop) = self.count_term() {
                    return Step::Stop(stop);
                }
                let target = expand(macro_string, vars, domain);
                let outcome = self.check(target.clone()).await;
                // RFC 7208 §5.2's table.
                match outcome.result {
                    AuthResult::Pass => Step::Match,
                    AuthResult::Fail | AuthResult::SoftFail | AuthResult::Neutral => Step::NoMatch,
                    AuthResult::TempError => Step::Stop(outcome),
                    AuthResult::PermError => Step::Stop(outcome),
                    AuthResult::None => Step::Stop(SpfOutcome::new(
                        AuthResult::PermError,
                        format!("{domain} includes {target}, which publishes no SPF record"),
                    )),
                }
            }
            Mechanism::Ptr { macro_string } => {
                if let Some(stop) = self.count_term() {
                    return Step::Stop(stop);
                }
                let target = expand(macro_string, vars, domain);
                let names = match self.lookups.ptr(ip).await {
                    Ok(names) => names,
                    Err(e) if e.is_not_found() => {
                        return match self.count_void() {
                            Some(stop) => Step::Stop(stop),
                            None => Step::NoMatch,
                        };
                    }
                    // RFC 7208 §5.5: a PTR lookup error is a no-match, not a temperror.
                    Err(_) => return Step::NoMatch,
                };
                for name in names.iter().take(MAX_ADDRESS_LOOKUPS) {
                    let under = name == &target
                        || name
                            .strip_suffix(target.as_str())
                            .is_some_and(|p| p.ends_with('.'));
                    if !under {
                        continue;
                    }
                    if let Ok(Some(true)) = self.address_match(name, u32::MAX, u128::MAX).await {
                        return Step::Match;
                    }
                }
                Step::NoMatch
            }
            Mechanism::Exists { macro_string } => {
                if let Some(stop) = self.count_term() {
                    return Step::Stop(stop);
                }
                let name = expand(macro_string, vars, domain);
                // RFC 7208 §5.7: an A lookup, whatever the client's address family.
                match self.lookups.a(&name).await {
                    Ok(addrs) if !addrs.is_empty() => Step::Match,
                    Ok(_) => Step::NoMatch,
                    Err(e) if e.is_not_found() => match self.count_void() {
                        Some(stop) => Step::Stop(stop),
                        None => Step::NoMatch,
                    },
                    Err(e) => Step::Stop(temperror(&e)),
                }
            }
        }
    }

    /// Whether one of `name`'s addresses of the client's family, masked, is the client's:
    /// `Ok(None)` when the name has none (a void lookup).
    async fn address_match(
        &self,
        name: &str,
        ip4_mask: u32,
        ip6_mask: u128,
    ) -> Result<Option<bool>, DnsError> {
        let client = match self.query.ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let found = match client {
            IpAddr::V4(v4) => match self.lookups.a(name).await {
                Ok(addrs) => addrs
                    .iter()
                    .any(|a| u32::from(*a) & ip4_mask == u32::from(v4) & ip4_mask),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            },
            IpAddr::V6(v6) => match self.lookups.aaaa(name).await {
                Ok(addrs) => addrs
                    .iter()
                    .any(|a| u128::from(*a) & ip6_mask == u128::from(v6) & ip6_mask),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        Ok(Some(found))
    }
}

fn step(matched: bool) -> Step {
    if matched { Step::Match } else { Step::NoMatch }
}

fn temperror(e: &DnsError) -> SpfOutcome {
    // RFC 7208 §2.6.6: a DNS failure (timeout, SERVFAIL) is a temperror, never a pass.
    SpfOutcome::new(AuthResult::TempError, format!("a lookup failed: {e}"))
}

/// Expands a domain-spec (RFC 7208 §7) to a name without the final dot, shortened from the
/// left to at most 253 characters as §7.3 says.
fn expand(macro_string: &Macro, vars: &Variables<'static>, domain: &str) -> String {
    let expanded = macro_string.eval(vars, domain, false);
    let mut name = expanded.trim_end_matches('.').to_ascii_lowercase();
    while name.len() > 253 {
        match name.find('.') {
            Some(dot) => name.drain(..=dot),
            None => return String::new(),
        };
    }
    name
}

fn describe(mechanism: &Mechanism, vars: &Variables<'static>, domain: &str) -> String {
    match mechanism {
        Mechanism::All => "all".into(),
        Mechanism::Ip4 { addr, mask } => format!("ip4:{addr}/{}", mask.count_ones()),
        Mechanism::Ip6 { addr, mask } => format!("ip6:{addr}/{}", mask.count_ones()),
        Mechanism::A { macro_string, .. } => format!("a:{}", expand(macro_string, vars, domain)),
        Mechanism::Mx { macro_string, .. } => format!("mx:{}", expand(macro_string, vars, domain)),
        Mechanism::Include { macro_string } => {
            format!("include:{}", expand(macro_string, vars, domain))
        }
        Mechanism::Ptr { macro_string } => format!("ptr:{}", expand(macro_string, vars, domain)),
        Mechanism::Exists { macro_string } => {
            format!("exists:{}", expand(macro_string, vars, domain))
        }
    }
}

/// RFC 7208 §4.5: a record begins with `v=spf1` followed by a space or its end.
fn is_spf1(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
        && (bytes.len() == 6 || bytes[6] == b' ')
}

/// Whether a term of the record has a CIDR length made only of zeros (`/0`, `//00`).
fn has_zero_cidr(text: &str) -> bool {
    text.split_ascii_whitespace().any(|term| {
        term.split('/')
            .skip(1)
            .any(|len| !len.is_empty() && len.bytes().all(|b| b == b'0'))
    })
}

/// A multi-label domain name of valid length (RFC 7208 §4.3).
pub(crate) fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(crate) fn result_name(result: AuthResult) -> &'static str {
    match result {
        AuthResult::None => "none",
        AuthResult::Pass => "pass",
        AuthResult::Fail => "fail",
        AuthResult::SoftFail => "softfail",
        AuthResult::Neutral => "neutral",
        AuthResult::TempError => "temperror",
        AuthResult::PermError => "permerror",
    }
}

/// At most `max` bytes of `text` (on a character boundary), for reasons.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_length_cidrs_are_found() {
        assert!(has_zero_cidr("v=spf1 ip4:0.0.0.0/0 -all"));
        assert!(has_zero_cidr("v=spf1 a//00 -all"));
        assert!(!has_zero_cidr(
            "v=spf1 ip4:10.0.0.0/8 ip6:2001:db8::/32 -all"
        ));
    }

    #[test]
    fn spf1_records_are_told_apart() {
        assert!(is_spf1("v=spf1 -all"));
        assert!(is_spf1("V=SPF1"));
        assert!(!is_spf1("v=spf10 -all"));
        assert!(!is_spf1("google-site-verification=x"));
    }
}

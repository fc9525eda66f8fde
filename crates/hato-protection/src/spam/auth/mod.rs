//! Sender authentication (issue 9; `exchange-online-behaviour.md` §6.6): SPF (RFC 7208), DKIM
//! (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) for one message, once, whatever its
//! recipients; the client's country beside them. The result is an [`AuthSignals`], with the
//! `Authentication-Results` value in Exchange's form and one [`Reason`] per check.
//!
//! DNS goes through [`hato_core::dns::Resolver`] only (each lookup bounded by its timeout; a
//! timeout is `temperror`, never a pass), counted per message by [`Lookups`], which stops at
//! [`MAX_LOOKUPS`] whatever the records say. mail-auth verifies the DKIM and ARC signatures
//! and parses the SPF records; it cannot take a resolver, so hato walks SPF itself ([`spf`]),
//! fetches the keys DKIM and ARC name before mail-auth verifies them ([`dkim`]), and decides
//! DMARC itself ([`dmarc`], for `pct`, which mail-auth 0.12's DMARCbis dropped).
//!
//! What an outside sender controls, bounded: SPF terms and void lookups (RFC 7208 §4.6.4),
//! DKIM signatures verified ([`dkim::MAX_DKIM_SIGNATURES`]), ARC sets ([`dkim::MAX_ARC_SETS`]),
//! DMARC tree walks ([`dmarc::MAX_WALK`] names each), the lookups of a message in all
//! ([`MAX_LOOKUPS`]), and every domain or text copied into the results (at most 253 bytes).

pub mod dkim;
pub mod dmarc;
pub mod spf;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hato_core::dns::{DnsError, Mx, RecordKind, Resolver};
use hato_core::{Reason, Stage};
use mail_auth::MessageAuthenticator;
use mail_auth::common::to_a_label;

use super::country::country_of;
use super::{Asf, AsfHit, AuthResult, AuthSignals, DmarcPolicy};
use spf::{clip, result_name, valid_domain};

/// The most DNS lookups one message's checks make, all together. RFC 7208 §4.6.4 alone allows
/// an SPF check about 110 (10 terms, 10 exchanges per `mx`); with the From domain's SPF, the
/// DKIM and ARC keys and the DMARC walks, 160 is more than an honest message needs; past it
/// every lookup fails as a `temperror` would.
pub const MAX_LOOKUPS: u32 = 160;

/// The checker could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderAuthError {
    #[error("the DKIM/ARC verifier could not be set up: {0}")]
    Verifier(String),
}

/// The resolver, counting the lookups of one message and refusing past [`MAX_LOOKUPS`].
pub struct Lookups<'r> {
    resolver: &'r dyn Resolver,
    count: AtomicU32,
}

impl<'r> Lookups<'r> {
    pub fn new(resolver: &'r dyn Resolver) -> Self {
        Lookups {
            resolver,
            count: AtomicU32::new(0),
        }
    }

    /// How many lookups were asked for.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    fn spend(&self, name: &str, kind: RecordKind) -> Result<(), DnsError> {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n > MAX_LOOKUPS {
            return Err(DnsError::Failed {
                name: clip(name, 253),
                kind,
                message: format!("more than {MAX_LOOKUPS} lookups for one message"),
            });
        }
        Ok(())
    }

    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.spend(name, RecordKind::Txt)?;
        self.resolver.lookup_txt(name).await
    }

    pub async fn a(&self, name: &str) -> Result<Vec<std::net::Ipv4Addr>, DnsError> {
        self.spend(name, RecordKind::A)?;
        self.resolver.lookup_a(name).await
    }

    pub async fn aaaa(&self, name: &str) -> Result<Vec<std::net::Ipv6Addr>, DnsError> {
        self.spend(name, RecordKind::Aaaa)?;
        self.resolver.lookup_aaaa(name).await
    }

    pub async fn mx(&self, name: &str) -> Result<Vec<Mx>, DnsError> {
        self.spend(name, RecordKind::Mx)?;
        self.resolver.lookup_mx(name).await
    }

    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        self.spend(&ip.to_string(), RecordKind::Ptr)?;
        self.resolver.lookup_ptr(ip).await
    }
}

/// One message as sender authentication sees it.
#[derive(Clone, Copy, Debug)]
pub struct AuthInput<'a> {
    /// The message as received (header and body), before hato adds any field.
    pub message: &'a [u8],
    pub client_ip: IpAddr,
    /// The EHLO/HELO name the client gave.
    pub helo: &'a str,
    /// The MAIL FROM address; `None` for the null reverse-path (`<>`).
    pub mail_from: Option<&'a str>,
    /// This server's host name (SPF's `%{r}`).
    pub receiving_host: &'a str,
}

/// The checker: one per process, shared by every SMTP session.
pub struct SenderAuth {
    resolver: Arc<dyn Resolver>,
    authserv_id: String,
    authenticator: MessageAuthenticator,
}

impl SenderAuth {
    /// `authserv_id` names this server in `Authentication-Results` (RFC 8601 §2.2: the host
    /// name, as `hato serve`'s `[smtp] hostname`).
    pub fn new(
        resolver: Arc<dyn Resolver>,
        authserv_id: impl Into<String>,
    ) -> Result<SenderAuth, SenderAuthError> {
        Ok(SenderAuth {
            resolver,
            authserv_id: authserv_id.into(),
            authenticator: dkim::offline_authenticator()?,
        })
    }

    /// Checks one message. Asynchronous (its lookups are concurrent where they can be); the
    /// signature checks are CPU work of at most [`dkim::MAX_DKIM_SIGNATURES`] RSA/Ed25519
    /// verifications plus the ARC chain.
    pub async fn check(&self, input: &AuthInput<'_>) -> AuthSignals {
        self.check_counted(input).await.0
    }

    /// [`check`](Self::check), and how many lookups it made.
    pub async fn check_counted(&self, input: &AuthInput<'_>) -> (AuthSignals, u32) {
        let lookups = Lookups::new(self.resolver.as_ref());
        let signals = self.run(&lookups, input).await;
        let count = lookups.count();
        (signals, count)
    }

    async fn run(&self, lookups: &Lookups<'_>, input: &AuthInput<'_>) -> AuthSignals {
        let mut signals = AuthSignals {
            country: country_of(input.client_ip).map(str::to_string),
            ..AuthSignals::default()
        };
        let helo = input.helo.trim().trim_end_matches('.').to_ascii_lowercase();
        let mail_from = input.mail_from.map(|a| match a.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", to_a_label(domain).to_ascii_lowercase()),
            None => a.to_ascii_lowercase(),
        });
        // RFC 7208 §2.4: the null reverse-path is checked as postmaster@<HELO name>.
        let (spf_domain, sender, identity) = match mail_from.as_deref() {
            Some(addr) => {
                let domain = addr.rsplit_once('@').map_or(addr, |(_, d)| d).to_string();
                (domain, addr.to_string(), "smtp.mailfrom")
            }
            None => (helo.clone(), format!("postmaster@{helo}"), "smtp.helo"),
        };
        let spf_domain = clip(spf_domain.trim_end_matches('.'), 253);
        let query = spf::SpfQuery {
            ip: input.client_ip,
            domain: &spf_domain,
            sender: &sender,
            helo: &helo,
            host: input.receiving_host,
        };
        let (spf, dkim) = futures_util::future::join(
            spf::check_host(lookups, &query),
            dkim::verify(&self.authenticator, lookups, input.message),
        )
        .await;
        signals.spf = spf.result;
        signals.reasons.push(
            Reason::new(
                Stage::SenderAuthentication,
                format!(
                    "SPF {} for {spf_domain} from {}: {}",
                    result_name(spf.result),
                    input.client_ip,
                    spf.why
                ),
            )
            .rule("spf"),
        );

        // DKIM: the best result of the signatures verified.
        signals.dkim = match &dkim.failed {
            Some(_) => AuthResult::TempError,
            None => best_dkim(&dkim.signatures),
        };
        let mut dkim_text = match dkim.signatures.len() {
            0 => "DKIM none: the message is not signed".to_string(),
            _ => format!(
                "DKIM {}: {}",
                result_name(signals.dkim),
                dkim.signatures
                    .iter()
                    .map(|s| format!(
                        "d={} {} ({})",
                        clip(&s.domain, 253),
                        result_name(s.result),
                        s.comment
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if let Some(why) = &dkim.failed {
            dkim_text = format!("DKIM temperror: {why}");
        }
        if dkim.skipped > 0 {
            dkim_text.push_str(&format!(
                "; {} more signatures not verified (hato verifies the first {})",
                dkim.skipped,
                dkim::MAX_DKIM_SIGNATURES
            ));
        }
        if dkim.malformed > 0 {
            dkim_text.push_str(&format!("; {} malformed signatures", dkim.malformed));
        }
        signals
            .reasons
            .push(Reason::new(Stage::SenderAuthentication, dkim_text).rule("dkim"));

        // The From domain: one domain, a valid name (RFC 7489 §6.6.1).
        // Internationalised domains are compared as A-labels (RFC 5890), as DNS holds them.
        let mut from_domains: Vec<String> = dkim
            .from
            .iter()
            .filter_map(|f| {
                f.rsplit_once('@')
                    .map(|(_, d)| to_a_label(d.trim_end_matches('.')).to_ascii_lowercase())
            })
            .collect();
        from_domains.sort();
        from_domains.dedup();
        let from_domain = match from_domains.as_slice() {
            [one] if valid_domain(one) => Some(one.clone()),
            _ => None,
        };
        signals.from_domain = from_domain.clone();

        // DMARC.
        let walker = dmarc::Walker::new(lookups);
        let dmarc = match &from_domain {
            Some(from) => {
                let query = dmarc::DmarcQuery {
                    from_domain: from,
                    spf_pass_domain: (spf.result == AuthResult::Pass)
                        .then_some(spf_domain.as_str()),
                    dkim_pass_domains: dkim
                        .signatures
                        .iter()
                        .filter(|s| s.result == AuthResult::Pass)
                        .map(|s| s.domain.as_str())
                        .collect(),
                    sample: fnv1a(input.message),
                };
                Some(dmarc::evaluate(&walker, &query).await)
            }
            None => None,
        };
        match &dmarc {
            Some(d) => {
                signals.dmarc = d.result;
                signals.dmarc_policy = if d.result == AuthResult::Fail {
                    d.policy
                } else {
                    DmarcPolicy::None
                };
                if d.result == AuthResult::Pass {
                    signals.authenticated_domain = from_domain.clone();
                }
                signals.reasons.push(
                    Reason::new(
                        Stage::SenderAuthentication,
                        format!("DMARC {}: {}", result_name(d.result), d.why),
                    )
                    .rule("dmarc"),
                );
            }
            None => signals.reasons.push(
                Reason::new(
                    Stage::SenderAuthentication,
                    match from_domains.len() {
                        0 => "DMARC none: the message has no From domain".to_string(),
                        1 => "DMARC none: the From domain is not a valid domain name".to_string(),
                        n => format!("DMARC none: the From field has {n} different domains"),
                    },
                )
                .rule("dmarc"),
            ),
        }

        // ARC.
        signals.arc = dkim.arc;
        if dkim.arc != AuthResult::None {
            signals.reasons.push(
                Reason::new(
                    Stage::SenderAuthentication,
                    format!(
                        "ARC {}: {} (reported only: hato trusts no ARC sealer, so it never overrides DMARC)",
                        result_name(dkim.arc),
                        dkim.arc_why
                    ),
                )
                .rule("arc"),
            );
        }

        // The ASF options sender authentication answers (§6.3).
        if spf.result == AuthResult::Fail {
            signals.asf.push(AsfHit {
                option: Asf::MarkAsSpamSpfRecordHardFail,
                evidence: format!("SPF fail for {spf_domain} from {}", input.client_ip),
            });
        }
        // MarkAsSpamFromAddressAuthFail, read as Exchange describes it ("SPF From record
        // fail"): SPF checked for the From domain fails and no DKIM signature of that domain
        // (aligned) passed. When MAIL FROM is in the From domain that is SPF's own result;
        // otherwise the From domain's record is checked too.
        if let Some(from) = &from_domain {
            let from_spf = if *from == spf_domain {
                spf.result
            } else {
                let sender = format!("postmaster@{from}");
                let query = spf::SpfQuery {
                    ip: input.client_ip,
                    domain: from,
                    sender: &sender,
                    helo: &helo,
                    host: input.receiving_host,
                };
                spf::check_host(lookups, &query).await.result
            };
            let dkim_aligned = dmarc.as_ref().is_some_and(|d| d.dkim_aligned);
            if from_spf == AuthResult::Fail && !dkim_aligned {
                signals.asf.push(AsfHit {
                    option: Asf::MarkAsSpamFromAddressAuthFail,
                    evidence: format!(
                        "SPF fail for the From domain {from} from {}, no aligned DKIM signature",
                        input.client_ip
                    ),
                });
            }
        }

        let compauth = compauth(&signals, dmarc.as_ref());
        signals.authentication_results = self.header(
            &signals,
            &spf_domain,
            identity,
            input.client_ip,
            &dkim,
            dmarc.as_ref(),
            compauth,
        );
        if let Some(country) = &signals.country {
            signals.reasons.push(
                Reason::new(
                    Stage::SenderAuthentication,
                    format!("the client {} is in {country}", input.client_ip),
                )
                .rule("country"),
            );
        }
        signals
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &self,
        signals: &AuthSignals,
        spf_domain: &str,
        identity: &str,
        ip: IpAddr,
        dkim: &dkim::DkimOutcome,
        dmarc: Option<&dmarc::DmarcOutcome>,
        compauth: (&'static str, &'static str),
    ) -> String {
        let mut parts = Vec::new();
        // §6.6: `spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=contoso.com`.
        parts.push(format!(
            "spf={} (sender IP is {ip}) {identity}={}",
            result_name(signals.spf),
            shown(spf_domain)
        ));
        if dkim.failed.is_some() {
            parts.push("dkim=temperror (verification did not complete) header.d=none".to_string());
        } else if dkim.signatures.is_empty() {
            parts.push("dkim=none (message not signed) header.d=none".to_string());
        }
        for s in &dkim.signatures {
            parts.push(format!(
                "dkim={} ({}) header.d={}",
                result_name(s.result),
                s.comment,
                shown(&s.domain)
            ));
        }
        let from = signals
            .from_domain
            .as_deref()
            .map_or("none".to_string(), shown);
        let (dmarc_result, action) = match dmarc {
            None => ("none", "none"),
            Some(d) => match d.result {
                AuthResult::Pass => ("pass", "none"),
                AuthResult::TempError => ("temperror", "temperror"),
                AuthResult::PermError => ("permerror", "permerror"),
                AuthResult::Fail if d.sampled_out => (
                    "fail",
                    match d.requested {
                        DmarcPolicy::Reject => "pct.reject",
                        _ => "pct.quarantine",
                    },
                ),
                AuthResult::Fail => ("fail", dmarc::policy_name(d.policy)),
                _ if d.best_guess_pass => ("bestguesspass", "none"),
                _ => ("none", "none"),
            },
        };
        parts.push(format!(
            "dmarc={dmarc_result} action={action} header.from={from}"
        ));
        if signals.arc != AuthResult::None {
            parts.push(format!("arc={}", result_name(signals.arc)));
        }
        parts.push(format!("compauth={} reason={}", compauth.0, compauth.1));
        format!("{}; {}", self.authserv_id, parts.join("; "))
    }
}

/// Exchange's composite authentication (§6.6): `pass` (1xx), `softpass` (2xx), `fail` (000
/// explicit: DMARC failed under p=quarantine/reject; 001 implicit: no or weak policy and no
/// aligned authentication), `none` (3xx: not checked). The tenant-dependent reasons 010 and 6xx
/// are given by [`authentication_results_for_tenant`]. The two digits after the first are
/// Microsoft's internal codes; hato's are: 100 DMARC pass, 109 no DMARC record but an aligned
/// pass (`bestguesspass`), 201 an unaligned SPF or DKIM pass, 301 a temporary error, 302 no
/// single From domain.
fn compauth(
    signals: &AuthSignals,
    dmarc: Option<&dmarc::DmarcOutcome>,
) -> (&'static str, &'static str) {
    let Some(d) = dmarc else {
        return ("none", "302");
    };
    match d.result {
        AuthResult::Pass => ("pass", "100"),
        AuthResult::TempError | AuthResult::PermError => ("none", "301"),
        AuthResult::Fail if d.policy != DmarcPolicy::None && !d.sampled_out => ("fail", "000"),
        AuthResult::Fail => ("fail", "001"),
        _ if d.best_guess_pass => ("pass", "109"),
        _ if signals.spf == AuthResult::Pass || signals.dkim == AuthResult::Pass => {
            ("softpass", "201")
        }
        _ => ("fail", "001"),
    }
}

/// The `Authentication-Results` value for one recipient tenant: when the message spoofs the
/// tenant's own domain ([`spoofs_own_domain`]), compauth's `fail reason=000` becomes `010`
/// (DMARC failed under p=quarantine/reject and the From domain is the tenant's) and `001`
/// becomes `601` (implicit failure and the tenant's own domain), as Exchange writes them.
pub fn authentication_results_for_tenant(signals: &AuthSignals, spoofs_own_domain: bool) -> String {
    let value = &signals.authentication_results;
    if !spoofs_own_domain {
        return value.clone();
    }
    if let Some(head) = value.strip_suffix("compauth=fail reason=000") {
        return format!("{head}compauth=fail reason=010");
    }
    if let Some(head) = value.strip_suffix("compauth=fail reason=001") {
        return format!("{head}compauth=fail reason=601");
    }
    value.clone()
}

/// Whether the message claims to come from one of the tenant's accepted domains (or a
/// subdomain of one) without authenticating as it: no aligned DMARC pass. Exchange calls this
/// spoofing of the organisation's own domain (`CAT:SPOOF`, phish; compauth `010`/`6xx`). A
/// message submitted by an authenticated user of the tenant never gets here (the caller knows
/// and passes `false`).
pub fn spoofs_own_domain<S: AsRef<str>>(signals: &AuthSignals, accepted_domains: &[S]) -> bool {
    let Some(from) = signals.from_domain.as_deref() else {
        return false;
    };
    if signals.authenticated_domain.as_deref() == Some(from) {
        return false;
    }
    let from = from.as_bytes();
    accepted_domains.iter().any(|accepted| {
        let accepted = to_a_label(accepted.as_ref().trim_end_matches('.'));
        let accepted = accepted.as_bytes();
        from.eq_ignore_ascii_case(accepted)
            || (from.len() > accepted.len()
                && from[from.len() - accepted.len()..].eq_ignore_ascii_case(accepted)
                && from[from.len() - accepted.len() - 1] == b'.')
    })
}

/// The best of the signatures' results (RFC 8601 §2.7.1: one pass is enough).
fn best_dkim(signatures: &[dkim::DkimSignatureOutcome]) -> AuthResult {
    const ORDER: [AuthResult; 6] = [
        AuthResult::Pass,
        AuthResult::Fail,
        AuthResult::TempError,
        AuthResult::PermError,
        AuthResult::Neutral,
        AuthResult::SoftFail,
    ];
    ORDER
        .into_iter()
        .find(|r| signatures.iter().any(|s| s.result == *r))
        .unwrap_or(AuthResult::None)
}

/// A domain as the header shows it: at most 253 bytes of the characters a domain has.
fn shown(domain: &str) -> String {
    let clean: String = domain
        .chars()
        .take(253)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '?'
            }
        })
        .collect();
    if clean.is_empty() {
        "none".into()
    } else {
        clean
    }
}

/// FNV-1a over the message: the same number every time this message is checked, for DMARC's
/// `pct` sampling (RFC 7489 §6.6.4 leaves the method to the receiver).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_domains_and_their_subdomains_are_spoofable() {
        let mut s = AuthSignals {
            from_domain: Some("mail.contoso.com".into()),
            ..AuthSignals::default()
        };
        assert!(spoofs_own_domain(&s, &["contoso.com"]));
        assert!(!spoofs_own_domain(&s, &["fabrikam.com", "oso.com"]));
        s.authenticated_domain = Some("mail.contoso.com".into());
        assert!(!spoofs_own_domain(&s, &["contoso.com"]));
    }

    #[test]
    fn own_domain_spoofing_changes_compauth_reasons() {
        let s = AuthSignals {
            authentication_results: "mx.test; dmarc=fail action=reject header.from=contoso.com; compauth=fail reason=000".into(),
            ..AuthSignals::default()
        };
        assert!(authentication_results_for_tenant(&s, true).ends_with("compauth=fail reason=010"));
        assert!(authentication_results_for_tenant(&s, false).ends_with("compauth=fail reason=000"));
        let s = AuthSignals {
            authentication_results: "mx.test; compauth=fail reason=001".into(),
            ..AuthSignals::default()
        };
        assert!(authentication_results_for_tenant(&s, true).ends_with("reason=601"));
    }
}

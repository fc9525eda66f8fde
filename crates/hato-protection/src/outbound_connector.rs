//! Outbound connectors (Exchange's `New-OutboundConnector`, `exchange-online-behaviour.md`
//! §9.2; seed F1–F7): their definition as stored, its validation (each refusal names the
//! setting as a CLI flag), and the rank a connector has for a recipient domain, from which the
//! outbound agent's selector picks one.
//!
//! **Selection** (§9.2, "most specific wins"): a connector whose `RecipientDomains` names the
//! domain exactly; else one for all accepted domains (when the domain is one of the tenant's);
//! else a wildcard (`*.contoso.com`), the longest parent first (`*.sales.contoso.com` before
//! `*.contoso.com`, and `*`, any domain, last: Exchange documents only the three tiers, and
//! within the wildcard tier the more specific pattern is the one an administrator meant);
//! among equal candidates the connector whose name sorts first (seed F6, "Aconnector" before
//! "Bconnector"). Disabled connectors and transport-rule-scoped ones (`IsTransportRuleScoped`:
//! used only when a mail flow rule routes to them) are never chosen by domain.
//!
//! Pure: no store, no sockets.

use crate::connector::{COMMENT_MAX, ConnectorType, LIST_MAX, domain_matches, sender_domain};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// At most this many `--smart-hosts` of one connector.
pub const SMART_HOSTS_MAX: usize = 20;

/// Exchange's `TlsSettings` of an outbound connector; `None` in the connector (Exchange's
/// `$null`) is opportunistic STARTTLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboundTls {
    /// `EncryptionOnly`: TLS required, any certificate.
    EncryptionOnly,
    /// `CertificateValidation`: TLS required, a certificate chain a trusted root signed.
    CertificateValidation,
    /// `DomainValidation`: as `CertificateValidation`, and the certificate names `tls_domain`.
    DomainValidation,
}

impl OutboundTls {
    pub fn name(self) -> &'static str {
        match self {
            OutboundTls::EncryptionOnly => "encryption-only",
            OutboundTls::CertificateValidation => "certificate-validation",
            OutboundTls::DomainValidation => "domain-validation",
        }
    }

    /// `encryption-only`, … and Exchange's `EncryptionOnly`, …, any case.
    pub fn parse(text: &str) -> Option<Self> {
        let folded: String = text
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match folded.as_str() {
            "encryptiononly" => Some(OutboundTls::EncryptionOnly),
            "certificatevalidation" => Some(OutboundTls::CertificateValidation),
            "domainvalidation" => Some(OutboundTls::DomainValidation),
            _ => None,
        }
    }
}

impl fmt::Display for OutboundTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An outbound connector's settings, `New-OutboundConnector`'s parameters in snake case
/// (stored as JSON). Lists hold canonical values (lower-case domains, smart hosts as
/// [`smart_host`] writes them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundConnector {
    /// `ConnectorType`: `partner` (default) or `on-premises` (the organisation's own servers;
    /// only it may serve all accepted domains).
    pub connector_type: ConnectorType,
    /// `RecipientDomains`: `contoso.com`, `*.contoso.com` (its subdomains), `*` (any domain).
    pub recipient_domains: Vec<String>,
    /// `AllAcceptedDomains` (on-premises only): recipients of any of the tenant's accepted
    /// domains (the internal-relay ones' unknown recipients, in a hybrid set-up).
    pub all_accepted_domains: bool,
    /// `SmartHosts`: IPs or host names, each with an optional port (`relay.contoso.com:2525`,
    /// `192.0.2.1`, `[2001:db8::1]:26`).
    pub smart_hosts: Vec<String>,
    /// `UseMXRecord`: the recipient domain's MX hosts; `true` exactly when there are no smart
    /// hosts (Exchange's default, `$true`, holds without them).
    pub use_mx_record: bool,
    /// `TlsSettings`; `None` is opportunistic STARTTLS.
    pub tls_settings: Option<OutboundTls>,
    /// `TlsDomain` (`domain-validation`): the name the certificate must carry, `*.` allowed.
    pub tls_domain: Option<String>,
    /// `IsTransportRuleScoped`: used only when a transport rule routes to it.
    pub is_transport_rule_scoped: bool,
    /// `Enabled`.
    pub enabled: bool,
    /// `Comment`.
    pub comment: String,
}

impl Default for OutboundConnector {
    /// `New-OutboundConnector`'s defaults.
    fn default() -> Self {
        OutboundConnector {
            connector_type: ConnectorType::Partner,
            recipient_domains: Vec::new(),
            all_accepted_domains: false,
            smart_hosts: Vec::new(),
            use_mx_record: true,
            tls_settings: None,
            tls_domain: None,
            is_transport_rule_scoped: false,
            enabled: true,
            comment: String::new(),
        }
    }
}

/// Why an outbound connector's settings are refused; each names the setting (as a CLI flag).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutboundConnectorError {
    #[error("connector-type: {0:?} is not one of on-premises, partner")]
    Type(String),
    #[error(
        "recipient-domains: {0:?} is not a domain (example.com), a wildcard for its subdomains (*.example.com) or * for any domain; a * may only start the value"
    )]
    Domain(String),
    #[error(
        "smart-hosts: {0:?} is neither an IP address nor a host name (each optionally with :port, 1 to 65535; an IPv6 address with a port in brackets: [2001:db8::1]:25)"
    )]
    SmartHost(String),
    #[error(
        "tls-settings: {0:?} is not one of encryption-only, certificate-validation, domain-validation"
    )]
    Tls(String),
    #[error(
        "tls-domain: {0:?} is not a host name (mail.example.com) or a wildcard for one level below a domain (*.example.com)"
    )]
    TlsDomain(String),
    #[error(
        "tls-settings domain-validation needs --tls-domain: the name the smart host's certificate must carry"
    )]
    DomainValidationWithoutDomain,
    #[error("tls-domain applies only with tls-settings domain-validation")]
    TlsDomainWithoutValidation,
    #[error(
        "recipient-domains and all-accepted-domains exclude each other: give the domains, or all accepted domains"
    )]
    DomainsAndAllAccepted,
    #[error(
        "all-accepted-domains applies to on-premises connectors only (Exchange's AllAcceptedDomains): add --connector-type on-premises"
    )]
    AllAcceptedNotOnPremises,
    #[error(
        "a connector needs recipient-domains or all-accepted-domains (or is-transport-rule-scoped, to be used only by transport rules)"
    )]
    NoDomains,
    #[error(
        "smart-hosts and use-mx-record exclude each other: the connector delivers to its smart hosts, or to the recipient domain's MX hosts"
    )]
    SmartHostsAndMx,
    #[error(
        "use-mx-record false needs smart-hosts: with neither, the connector has nowhere to send"
    )]
    NoDestination,
    #[error("{setting}: at most {max} entries ({count} given)")]
    TooMany {
        setting: &'static str,
        max: usize,
        count: usize,
    },
    #[error(
        "comment: at most {COMMENT_MAX} characters, no control characters other than line breaks"
    )]
    Comment,
}

/// One `--recipient-domains` entry, canonical: `example.com`, `*.example.com` or `*`.
pub fn recipient_domain(text: &str) -> Result<String, OutboundConnectorError> {
    sender_domain(text).map_err(|_| OutboundConnectorError::Domain(text.trim().to_string()))
}

/// Whether `label` is an LDH label (RFC 1123 §2.1), at most 63 octets.
fn is_ldh_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A smart host split into its host (an IP or a lower-case host name) and its port, if it has
/// one. `relay.test:2525`, `192.0.2.1`, `[2001:db8::1]:26`, `2001:db8::1`.
pub fn parse_smart_host(text: &str) -> Result<(SmartHost, Option<u16>), OutboundConnectorError> {
    let t = text.trim();
    let refused = || OutboundConnectorError::SmartHost(t.to_string());
    let port = |p: &str| -> Result<u16, OutboundConnectorError> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(refused()),
        }
    };
    if let Some(rest) = t.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(refused)?;
        let ip: IpAddr = inside.parse().map_err(|_| refused())?;
        let p = match after {
            "" => None,
            _ => Some(port(after.strip_prefix(':').ok_or_else(refused)?)?),
        };
        return Ok((SmartHost::Ip(ip), p));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok((SmartHost::Ip(ip), None));
    }
    let (host, p) = match t.rsplit_once(':') {
        Some((h, p)) => (h, Some(port(p)?)),
        None => (t, None),
    };
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Ok((SmartHost::Ip(IpAddr::V4(ip)), p));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    // A host name: LDH labels (RFC 1123 §2.1), at most 253 octets, and not all digits and
    // dots (which would be a malformed IPv4 address, not a name).
    if name.is_empty()
        || name.len() > 253
        || !name.split('.').all(is_ldh_label)
        || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(refused());
    }
    Ok((SmartHost::Name(name), p))
}

/// A smart host's host part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmartHost {
    Ip(IpAddr),
    Name(String),
}

/// One `--smart-hosts` entry, canonical: the host (an IPv6 address in brackets when a port
/// follows) and `:port` when given.
pub fn smart_host(text: &str) -> Result<String, OutboundConnectorError> {
    let (host, port) = parse_smart_host(text)?;
    Ok(match (host, port) {
        (SmartHost::Ip(IpAddr::V6(ip)), Some(p)) => format!("[{ip}]:{p}"),
        (SmartHost::Ip(ip), Some(p)) => format!("{ip}:{p}"),
        (SmartHost::Ip(ip), None) => ip.to_string(),
        (SmartHost::Name(n), Some(p)) => format!("{n}:{p}"),
        (SmartHost::Name(n), None) => n,
    })
}

/// `--tls-domain`, canonical: a host name or `*.` and one.
pub fn tls_domain(text: &str) -> Result<String, OutboundConnectorError> {
    crate::connector::certificate_name(text)
        .map_err(|_| OutboundConnectorError::TlsDomain(text.trim().to_string()))
}

/// How well a connector fits a recipient domain: lower is better (see the module's comment).
/// Compared as a tuple, then by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// 0 exact, 1 all accepted domains, 2 wildcard.
    pub tier: u8,
    /// Within the wildcard tier: the longer the pattern's parent, the more specific (stored
    /// as its complement so that lower is better); `*` is the least specific of all.
    pub breadth: usize,
}

impl OutboundConnector {
    /// Checks the settings together, as `New-`/`Set-OutboundConnector` do; entries are expected
    /// canonical and are checked again, so a stored definition is valid whatever wrote it.
    pub fn validate(&self) -> Result<(), OutboundConnectorError> {
        for (setting, count, max) in [
            ("recipient-domains", self.recipient_domains.len(), LIST_MAX),
            ("smart-hosts", self.smart_hosts.len(), SMART_HOSTS_MAX),
        ] {
            if count > max {
                return Err(OutboundConnectorError::TooMany {
                    setting,
                    max,
                    count,
                });
            }
        }
        for d in &self.recipient_domains {
            recipient_domain(d)?;
        }
        for h in &self.smart_hosts {
            smart_host(h)?;
        }
        if let Some(d) = &self.tls_domain {
            tls_domain(d)?;
        }
        if self.comment.chars().count() > COMMENT_MAX
            || self
                .comment
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(OutboundConnectorError::Comment);
        }
        if self.all_accepted_domains && !self.recipient_domains.is_empty() {
            return Err(OutboundConnectorError::DomainsAndAllAccepted);
        }
        if self.all_accepted_domains && self.connector_type != ConnectorType::OnPremises {
            return Err(OutboundConnectorError::AllAcceptedNotOnPremises);
        }
        if !self.all_accepted_domains
            && self.recipient_domains.is_empty()
            && !self.is_transport_rule_scoped
        {
            return Err(OutboundConnectorError::NoDomains);
        }
        match (self.use_mx_record, self.smart_hosts.is_empty()) {
            (true, false) => return Err(OutboundConnectorError::SmartHostsAndMx),
            (false, true) => return Err(OutboundConnectorError::NoDestination),
            _ => {}
        }
        match (self.tls_settings, &self.tls_domain) {
            (Some(OutboundTls::DomainValidation), None) => {
                return Err(OutboundConnectorError::DomainValidationWithoutDomain);
            }
            (Some(OutboundTls::DomainValidation), Some(_)) => {}
            (_, Some(_)) => return Err(OutboundConnectorError::TlsDomainWithoutValidation),
            (_, None) => {}
        }
        Ok(())
    }

    /// This connector's rank for `domain` (lower case) when chosen by domain: `None` when it
    /// does not apply (or is disabled, or rule-scoped). `accepted`: the domain is one of the
    /// tenant's accepted domains.
    pub fn rank(&self, domain: &str, accepted: bool) -> Option<Rank> {
        if !self.enabled || self.is_transport_rule_scoped {
            return None;
        }
        if self
            .recipient_domains
            .iter()
            .any(|p| !p.starts_with('*') && p == domain)
        {
            return Some(Rank {
                tier: 0,
                breadth: 0,
            });
        }
        if self.all_accepted_domains && accepted {
            return Some(Rank {
                tier: 1,
                breadth: 0,
            });
        }
        self.recipient_domains
            .iter()
            .filter(|p| p.starts_with('*') && domain_matches(p, domain))
            .map(|p| Rank {
                tier: 2,
                // `*.parent`: usize::MAX minus the parent's length; `*`: usize::MAX.
                breadth: usize::MAX - p.len().saturating_sub(2),
            })
            .min()
    }
}

/// Of `connectors` (name, settings), the one that routes `domain`: the best rank, then the
/// name that sorts first (any case).
pub fn select<'a>(
    connectors: impl IntoIterator<Item = (&'a str, &'a OutboundConnector)>,
    domain: &str,
    accepted: bool,
) -> Option<&'a str> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    connectors
        .into_iter()
        .filter_map(|(name, c)| c.rank(&domain, accepted).map(|r| (r, name)))
        .min_by(|a, b| (a.0, a.1.to_lowercase(), a.1).cmp(&(b.0, b.1.to_lowercase(), b.1)))
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(domains: &[&str]) -> OutboundConnector {
        OutboundConnector {
            recipient_domains: domains.iter().map(|s| s.to_string()).collect(),
            ..OutboundConnector::default()
        }
    }

    #[test]
    fn the_defaults_are_new_outbound_connectors() {
        let d = OutboundConnector::default();
        assert!(d.use_mx_record && d.enabled && !d.is_transport_rule_scoped);
        assert_eq!(d.tls_settings, None);
        assert_eq!(
            OutboundTls::parse("DomainValidation"),
            Some(OutboundTls::DomainValidation)
        );
        assert_eq!(
            OutboundTls::parse("encryption-only"),
            Some(OutboundTls::EncryptionOnly)
        );
        assert_eq!(OutboundTls::parse("none"), None);
    }

    #[test]
    fn smart_hosts_are_ips_or_host_names_with_an_optional_port() {
        for (given, canonical) in [
            ("Relay.Contoso.TEST", "relay.contoso.test"),
            ("relay.contoso.test:2525", "relay.contoso.test:2525"),
            ("192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:26", "192.0.2.1:26"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:26", "[2001:db8::1]:26"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(smart_host(given).unwrap(), canonical, "{given}");
        }
        for bad in [
            "",
            "relay_1.test",
            "relay.test:0",
            "relay.test:70000",
            "relay.test:+25",
            "a b.test",
            "[192.0.2.1",
            "[relay.test]:25",
            "300.1.2.3",
            "-relay.test",
            "192.0.2.0/24",
        ] {
            let e = smart_host(bad).unwrap_err().to_string();
            assert!(e.starts_with("smart-hosts: "), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_are_checked_together_and_each_refusal_names_the_setting() {
        assert!(to(&["contoso.test"]).validate().is_ok());
        assert_eq!(
            OutboundConnector::default().validate(),
            Err(OutboundConnectorError::NoDomains)
        );
        let rule_only = OutboundConnector {
            is_transport_rule_scoped: true,
            ..OutboundConnector::default()
        };
        assert!(rule_only.validate().is_ok());
        let both = OutboundConnector {
            all_accepted_domains: true,
            connector_type: ConnectorType::OnPremises,
            ..to(&["contoso.test"])
        };
        assert_eq!(
            both.validate(),
            Err(OutboundConnectorError::DomainsAndAllAccepted)
        );
        let partner_all = OutboundConnector {
            all_accepted_domains: true,
            ..OutboundConnector::default()
        };
        assert_eq!(
            partner_all.validate(),
            Err(OutboundConnectorError::AllAcceptedNotOnPremises)
        );
        let mx_and_hosts = OutboundConnector {
            smart_hosts: vec!["192.0.2.1".into()],
            ..to(&["contoso.test"])
        };
        assert_eq!(
            mx_and_hosts.validate(),
            Err(OutboundConnectorError::SmartHostsAndMx)
        );
        let nowhere = OutboundConnector {
            use_mx_record: false,
            ..to(&["contoso.test"])
        };
        assert_eq!(
            nowhere.validate(),
            Err(OutboundConnectorError::NoDestination)
        );
        let dv = OutboundConnector {
            tls_settings: Some(OutboundTls::DomainValidation),
            ..to(&["contoso.test"])
        };
        let e = dv.validate().unwrap_err().to_string();
        assert!(e.contains("needs --tls-domain"), "{e}");
        let dv = OutboundConnector {
            tls_domain: Some("mail.contoso.test".into()),
            ..dv
        };
        assert!(dv.validate().is_ok());
        let stray = OutboundConnector {
            tls_settings: Some(OutboundTls::EncryptionOnly),
            ..dv
        };
        assert_eq!(
            stray.validate(),
            Err(OutboundConnectorError::TlsDomainWithoutValidation)
        );
        let e = recipient_domain("mail.*.contoso.test")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("recipient-domains: "), "{e}");
    }

    #[test]
    fn exact_beats_all_accepted_beats_wildcard_then_the_name_sorts_first() {
        let exact = to(&["contoso.test"]);
        let all = OutboundConnector {
            connector_type: ConnectorType::OnPremises,
            all_accepted_domains: true,
            ..OutboundConnector::default()
        };
        let wild = to(&["*.contoso.test"]);
        let narrower = to(&["*.sales.contoso.test"]);
        let any = to(&["*"]);
        let set = [
            ("Z-exact", &exact),
            ("All", &all),
            ("Wild", &wild),
            ("Narrow", &narrower),
            ("Any", &any),
        ];
        // Exchange's examples (§9.2).
        assert_eq!(select(set, "contoso.test", true), Some("Z-exact"));
        assert_eq!(select(set, "fabrikam.test", true), Some("All"));
        assert_eq!(select(set, "a.contoso.test", false), Some("Wild"));
        assert_eq!(select(set, "a.sales.contoso.test", false), Some("Narrow"));
        assert_eq!(select(set, "fabrikam.test", false), Some("Any"));
        // All accepted domains beats a wildcard.
        assert_eq!(select(set, "a.contoso.test", true), Some("All"));
        // Equal candidates: the name that sorts first, in any case.
        let other = to(&["contoso.test"]);
        let two = [("beta", &exact), ("Alpha", &other)];
        assert_eq!(select(two, "CONTOSO.test", false), Some("Alpha"));
        // Disabled and rule-scoped connectors are never chosen by domain.
        let off = OutboundConnector {
            enabled: false,
            ..to(&["contoso.test"])
        };
        let scoped = OutboundConnector {
            is_transport_rule_scoped: true,
            ..to(&["contoso.test"])
        };
        let three = [("A", &off), ("B", &scoped), ("C", &wild)];
        assert_eq!(select(three, "contoso.test", false), None);
        assert_eq!(select(three, "x.contoso.test", false), Some("C"));
    }
}

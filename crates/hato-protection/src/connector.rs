//! Inbound connectors (Exchange's `New-InboundConnector`, `exchange-online-behaviour.md` §9.1;
//! seed E1–E4): their definition as stored, its validation (each refusal names the setting, as
//! the cmdlet's errors do), and the lookups the edge makes with them — which on-premises
//! connectors hold a client IP (tenant attribution for relay, §9.1 and §9.3), which partner
//! connector of a tenant applies to a sender domain.
//!
//! Pure: no store, no sockets. The edge (`hato-transport`) builds a [`ConnectorIndex`] from the
//! stored connectors once per change and asks it per MAIL FROM and RCPT.

use crate::ip::{IpEntry, IpEntryError, canonical_ip};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// At most this many entries in `--sender-ip-addresses` or `--sender-domains` of one connector.
pub const LIST_MAX: usize = 1_000;
/// At most this many characters of `--comment`.
pub const COMMENT_MAX: usize = 1_024;

/// Exchange's `ConnectorType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorType {
    /// `OnPremises`: the organisation's own servers. Matched by IP (or certificate), it
    /// attributes the client to the tenant: relay to outside domains, the tenant's domains
    /// vouched for, throttling exemption.
    OnPremises,
    /// `Partner`: another organisation or service; forces TLS or restricts a sender domain to
    /// given IPs.
    #[default]
    Partner,
}

impl ConnectorType {
    pub fn name(self) -> &'static str {
        match self {
            ConnectorType::OnPremises => "on-premises",
            ConnectorType::Partner => "partner",
        }
    }

    /// `on-premises` / `partner`, and Exchange's `OnPremises` / `Partner`, any case.
    pub fn parse(text: &str) -> Option<Self> {
        let folded: String = text
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match folded.as_str() {
            "onpremises" => Some(ConnectorType::OnPremises),
            "partner" => Some(ConnectorType::Partner),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inbound connector's settings, Exchange's `New-InboundConnector` parameters in snake case
/// (stored as JSON). Lists hold canonical values: IP entries in [`IpEntry`]'s form, domains and
/// the certificate name in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboundConnector {
    pub connector_type: ConnectorType,
    /// `SenderIPAddresses`: single addresses and CIDR blocks (IPv4 /24–/32 as Exchange; IPv6
    /// /48–/128, which Exchange lacks). How an on-premises server is recognised; for a partner
    /// connector, where its domains may come from (`restrict_domains_to_ip_addresses`).
    pub sender_ip_addresses: Vec<String>,
    /// `SenderDomains`: the sender domains a partner connector applies to (`example.com`,
    /// `*.example.com` for its subdomains, `*` for any domain).
    pub sender_domains: Vec<String>,
    /// `RequireTls`: a partner connector refuses its domains' mail over a session without
    /// STARTTLS. The default is `true`, as the `New-InboundConnector` page states; the reference
    /// marks that as surprising and unverified (`exchange-online-behaviour.md` §9.1 and §13
    /// item 13), so it is written out in every `show`. Exchange applies it to partner
    /// connectors only, and so does hato.
    pub require_tls: bool,
    /// `RestrictDomainsToIPAddresses` (partner): mail from `sender_domains` from any other IP is
    /// refused (`550 5.7.51`).
    pub restrict_domains_to_ip_addresses: bool,
    /// `RestrictDomainsToCertificate` (partner): mail from `sender_domains` must come over TLS
    /// with a client certificate named `tls_sender_certificate_name`.
    pub restrict_domains_to_certificate: bool,
    /// `TlsSenderCertificateName`: the name the sending server's certificate must carry
    /// (`*.example.com` allowed).
    pub tls_sender_certificate_name: Option<String>,
    /// `CloudServicesMailEnabled` (on-premises): the platform's own header fields (`X-Hato-*`,
    /// its `Authentication-Results`) in mail from this server are kept instead of removed (seed
    /// E4: "keep internal Exchange headers").
    pub cloud_services_mail_enabled: bool,
    /// `Enabled`.
    pub enabled: bool,
    /// `Comment`.
    pub comment: String,
}

impl Default for InboundConnector {
    /// `New-InboundConnector`'s defaults (the type has none there; it must be given).
    fn default() -> Self {
        InboundConnector {
            connector_type: ConnectorType::Partner,
            sender_ip_addresses: Vec::new(),
            sender_domains: Vec::new(),
            require_tls: true,
            restrict_domains_to_ip_addresses: false,
            restrict_domains_to_certificate: false,
            tls_sender_certificate_name: None,
            cloud_services_mail_enabled: false,
            enabled: true,
            comment: String::new(),
        }
    }
}

/// Why a connector's settings are refused; each names the setting (as a CLI flag) and the
/// value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("connector-type: {0:?} is not one of on-premises, partner")]
    Type(String),
    #[error("sender-ip-addresses: {0}")]
    Ip(IpEntryError),
    #[error(
        "sender-ip-addresses: {0:?} is a range; give single addresses or CIDR blocks (IPv4 /24 to /32, IPv6 /48 to /128), as Exchange's SenderIPAddresses takes"
    )]
    IpRange(String),
    #[error(
        "sender-domains: {0:?} is not a domain (example.com), a wildcard for its subdomains (*.example.com) or * for any domain; a * may only start the value"
    )]
    Domain(String),
    #[error(
        "tls-sender-certificate-name: {0:?} is not a host name (mail.example.com) or a wildcard for one level below a domain (*.example.com)"
    )]
    CertificateName(String),
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
    #[error(
        "an on-premises connector needs sender-ip-addresses or tls-sender-certificate-name: that is how hato recognises the organisation's server"
    )]
    OnPremisesUnmatched,
    #[error("{0} applies to partner connectors only")]
    PartnerOnly(&'static str),
    #[error("cloud-services-mail-enabled applies to on-premises connectors only")]
    OnPremisesOnly,
    #[error(
        "a partner connector needs sender-domains: the sender domains it applies to (* for any domain)"
    )]
    PartnerWithoutDomains,
    #[error(
        "sender-domains: * (any domain) is for partner connectors; an on-premises connector is matched by IP or certificate, not by sender domain"
    )]
    AnyDomainOnPremises,
    #[error(
        "restrict-domains-to-ip-addresses needs sender-ip-addresses: the IPs the domains must come from"
    )]
    RestrictWithoutIps,
    #[error(
        "restrict-domains-to-certificate needs tls-sender-certificate-name: the name the sending server's certificate must carry"
    )]
    RestrictWithoutCertificate,
    #[error(
        "a partner connector identifies its sender either by sender-ip-addresses or by tls-sender-certificate-name, not both (Exchange: do not mix IP addresses and certificates in one partner connector); make two connectors"
    )]
    Mixed,
}

/// One `--sender-ip-addresses` entry, canonical: an address or a CIDR block (ranges are
/// refused: Exchange's `SenderIPAddresses` takes single addresses and CIDR blocks, and every
/// entry must be a network the throttle's exemption list takes).
pub fn sender_ip(text: &str) -> Result<IpEntry, ConnectorError> {
    let entry = IpEntry::parse(text).map_err(ConnectorError::Ip)?;
    if entry.to_string().contains('-') {
        return Err(ConnectorError::IpRange(text.trim().to_string()));
    }
    Ok(entry)
}

/// Whether `label` is a DNS label (letters, digits, hyphens inside, at most 63 octets; other
/// than ASCII allowed for internationalised names, which are compared as written).
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control()))
}

/// A host name of at least two labels, lower case; `None` when it is not one.
fn host_name(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('.').to_lowercase();
    (t.len() <= 253 && t.contains('.') && t.split('.').all(is_label)).then_some(t)
}

/// One `--sender-domains` entry, canonical: `example.com`, `*.example.com` or `*`.
pub fn sender_domain(text: &str) -> Result<String, ConnectorError> {
    let t = text.trim();
    if t == "*" {
        return Ok("*".into());
    }
    let refused = || ConnectorError::Domain(t.to_string());
    let (wild, rest) = match t.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if rest.contains('*') {
        return Err(refused());
    }
    // A single label is a domain too (`*.test` is odd but well formed).
    let lower = rest.trim_end_matches('.').to_lowercase();
    if lower.is_empty() || lower.len() > 253 || !lower.split('.').all(is_label) {
        return Err(refused());
    }
    Ok(if wild { format!("*.{lower}") } else { lower })
}

/// `--tls-sender-certificate-name`, canonical: a host name or `*.` and one.
pub fn certificate_name(text: &str) -> Result<String, ConnectorError> {
    let t = text.trim();
    let refused = || ConnectorError::CertificateName(t.to_string());
    match t.strip_prefix("*.") {
        Some(rest) => host_name(rest)
            .map(|h| format!("*.{h}"))
            .ok_or_else(refused),
        None if t.contains('*') => Err(refused()),
        None => host_name(t).ok_or_else(refused),
    }
}

/// Whether `domain` (a sender's, any case) is one `pattern` (a canonical `--sender-domains`
/// entry) covers: the domain itself, `*.parent` for the parent's subdomains at any depth (not
/// the parent itself, which needs its own entry), `*` for any.
pub fn domain_matches(pattern: &str, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => domain
            .strip_suffix(parent)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => pattern == "*" || pattern == domain,
    }
}

impl InboundConnector {
    /// Checks the settings together, as `New-`/`Set-InboundConnector` do; each entry is
    /// expected in canonical form already ([`sender_ip`], [`sender_domain`],
    /// [`certificate_name`]) and is checked again, so a stored definition is valid whatever
    /// wrote it.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        for (setting, count) in [
            ("sender-ip-addresses", self.sender_ip_addresses.len()),
            ("sender-domains", self.sender_domains.len()),
        ] {
            if count > LIST_MAX {
                return Err(ConnectorError::TooMany {
                    setting,
                    max: LIST_MAX,
                    count,
                });
            }
        }
        for ip in &self.sender_ip_addresses {
            sender_ip(ip)?;
        }
        for d in &self.sender_domains {
            sender_domain(d)?;
        }
        if let Some(name) = &self.tls_sender_certificate_name {
            certificate_name(name)?;
        }
        if self.comment.chars().count() > COMMENT_MAX
            || self
                .comment
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(ConnectorError::Comment);
        }
        let has_ips = !self.sender_ip_addresses.is_empty();
        let has_certificate = self.tls_sender_certificate_name.is_some();
        match self.connector_type {
            ConnectorType::OnPremises => {
                if !has_ips && !has_certificate {
                    return Err(ConnectorError::OnPremisesUnmatched);
                }
                if self.restrict_domains_to_ip_addresses {
                    return Err(ConnectorError::PartnerOnly(
                        "restrict-domains-to-ip-addresses",
                    ));
                }
                if self.restrict_domains_to_certificate {
                    return Err(ConnectorError::PartnerOnly(
                        "restrict-domains-to-certificate",
                    ));
                }
                if self.sender_domains.iter().any(|d| d == "*") {
                    return Err(ConnectorError::AnyDomainOnPremises);
                }
            }
            ConnectorType::Partner => {
                if self.cloud_services_mail_enabled {
                    return Err(ConnectorError::OnPremisesOnly);
                }
                if self.sender_domains.is_empty() {
                    return Err(ConnectorError::PartnerWithoutDomains);
                }
                if self.restrict_domains_to_ip_addresses && !has_ips {
                    return Err(ConnectorError::RestrictWithoutIps);
                }
                if self.restrict_domains_to_certificate && !has_certificate {
                    return Err(ConnectorError::RestrictWithoutCertificate);
                }
                if has_ips && has_certificate {
                    return Err(ConnectorError::Mixed);
                }
            }
        }
        Ok(())
    }

    /// The IP entries (stored canonical; an entry that no longer parses is left out).
    pub fn ip_entries(&self) -> Vec<IpEntry> {
        self.sender_ip_addresses
            .iter()
            .filter_map(|t| sender_ip(t).ok())
            .collect()
    }

    /// Whether a partner connector restricts its domains (to IPs or to a certificate): such a
    /// connector beats one that only names the domain (§9.1's precedence note).
    pub fn restricts(&self) -> bool {
        self.restrict_domains_to_ip_addresses || self.restrict_domains_to_certificate
    }

    /// Whether this connector's `sender_domains` cover `domain`.
    pub fn covers_domain(&self, domain: &str) -> bool {
        self.sender_domains
            .iter()
            .any(|p| domain_matches(p, domain))
    }
}

/// Whether two entries share an address.
pub fn overlaps(a: &IpEntry, b: &IpEntry) -> bool {
    match (a.first(), a.last(), b.first(), b.last()) {
        (IpAddr::V4(a1), IpAddr::V4(a2), IpAddr::V4(b1), IpAddr::V4(b2)) => a1 <= b2 && b1 <= a2,
        (IpAddr::V6(a1), IpAddr::V6(a2), IpAddr::V6(b1), IpAddr::V6(b2)) => a1 <= b2 && b1 <= a2,
        _ => false,
    }
}

/// An address in 128 bits (IPv4 as IPv4-mapped), so both families share one table.
fn wide(ip: IpAddr) -> u128 {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// CIDR entries pointing at values, for "every value whose entry holds this IP": one hash table
/// per prefix length in use, so a lookup costs one probe per length (at most 9 for IPv4 and 81
/// for IPv6) whatever the number of entries — the client's IP is the outside sender's, the
/// entries the admins'.
#[derive(Clone, Debug)]
pub struct CidrIndex<T> {
    by_prefix: Vec<(u32, HashMap<u128, Vec<T>>)>,
}

impl<T> Default for CidrIndex<T> {
    fn default() -> Self {
        CidrIndex {
            by_prefix: Vec::new(),
        }
    }
}

impl<T: Clone> CidrIndex<T> {
    /// Entries that are not one CIDR block (ranges, which [`sender_ip`] refuses) are skipped.
    pub fn new(entries: impl IntoIterator<Item = (IpEntry, T)>) -> Self {
        let mut by_prefix: HashMap<u32, HashMap<u128, Vec<T>>> = HashMap::new();
        for (entry, value) in entries {
            let addresses = entry.addresses();
            if !addresses.is_power_of_two() {
                continue;
            }
            let host_bits = addresses.trailing_zeros();
            let len = 128 - host_bits;
            let mask = if host_bits == 128 {
                0
            } else {
                u128::MAX << host_bits
            };
            by_prefix
                .entry(len)
                .or_default()
                .entry(wide(entry.first()) & mask)
                .or_default()
                .push(value);
        }
        let mut by_prefix: Vec<_> = by_prefix.into_iter().collect();
        by_prefix.sort_by_key(|e| std::cmp::Reverse(e.0));
        CidrIndex { by_prefix }
    }

    /// Every value whose entry holds `ip`, the narrowest entries first.
    pub fn matching(&self, ip: IpAddr) -> Vec<T> {
        let bits = wide(ip);
        let mut out = Vec::new();
        for (len, table) in &self.by_prefix {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            if let Some(values) = table.get(&(bits & mask)) {
                out.extend(values.iter().cloned());
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_premises(ips: &[&str]) -> InboundConnector {
        InboundConnector {
            connector_type: ConnectorType::OnPremises,
            sender_ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
            ..InboundConnector::default()
        }
    }

    fn partner(domains: &[&str]) -> InboundConnector {
        InboundConnector {
            connector_type: ConnectorType::Partner,
            sender_domains: domains.iter().map(|s| s.to_string()).collect(),
            ..InboundConnector::default()
        }
    }

    #[test]
    fn the_defaults_are_new_inbound_connectors() {
        let d = InboundConnector::default();
        assert!(d.require_tls, "RequireTls $true per the cmdlet page");
        assert!(d.enabled);
        assert!(!d.restrict_domains_to_ip_addresses && !d.restrict_domains_to_certificate);
        assert!(!d.cloud_services_mail_enabled);
        assert_eq!(
            ConnectorType::parse("OnPremises"),
            Some(ConnectorType::OnPremises)
        );
        assert_eq!(
            ConnectorType::parse("on-premises"),
            Some(ConnectorType::OnPremises)
        );
        assert_eq!(
            ConnectorType::parse("Partner"),
            Some(ConnectorType::Partner)
        );
        assert_eq!(ConnectorType::parse("hybrid"), None);
    }

    #[test]
    fn sender_ips_are_addresses_and_cidr_blocks_in_exchanges_sizes() {
        assert_eq!(
            sender_ip("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(sender_ip(" 192.0.2.7 ").unwrap().to_string(), "192.0.2.7");
        assert_eq!(
            sender_ip("2001:db8::/48").unwrap().to_string(),
            "2001:db8::/48"
        );
        let e = sender_ip("192.0.2.0/23").unwrap_err().to_string();
        assert!(
            e.starts_with("sender-ip-addresses: ") && e.contains("/24 to /32"),
            "{e}"
        );
        let e = sender_ip("192.0.2.1-192.0.2.9").unwrap_err().to_string();
        assert!(e.contains("is a range"), "{e}");
        assert!(sender_ip("mail.example.com").is_err());
        // A range that is exactly one block is that block.
        assert_eq!(
            sender_ip("192.0.2.0-192.0.2.255").unwrap().to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn sender_domains_take_a_leading_wildcard_only() {
        assert_eq!(sender_domain("Example.COM").unwrap(), "example.com");
        assert_eq!(sender_domain("*.Example.com").unwrap(), "*.example.com");
        assert_eq!(sender_domain("*").unwrap(), "*");
        for bad in [
            "mail.*.example.com",
            "ex*ample.com",
            "*example.com",
            "**.x.com",
            "",
            "a b.com",
            "-a.com",
        ] {
            let e = sender_domain(bad).unwrap_err().to_string();
            assert!(e.starts_with("sender-domains: "), "{bad}: {e}");
        }
        assert!(domain_matches("example.com", "EXAMPLE.com"));
        assert!(!domain_matches("example.com", "sub.example.com"));
        assert!(domain_matches("*.example.com", "sub.example.com"));
        assert!(domain_matches("*.example.com", "a.b.example.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(!domain_matches("*.example.com", "badexample.com"));
        assert!(domain_matches("*", "anything.test"));
    }

    #[test]
    fn certificate_names_are_host_names_or_one_leading_wildcard() {
        assert_eq!(
            certificate_name("Mail.Example.com").unwrap(),
            "mail.example.com"
        );
        assert_eq!(certificate_name("*.example.com").unwrap(), "*.example.com");
        for bad in ["*", "*.com", "mail.*.com", "localhost", "a b.com"] {
            let e = certificate_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("tls-sender-certificate-name: "), "{bad}: {e}");
        }
    }

    #[test]
    fn exchanges_rules_between_settings_each_name_the_setting() {
        assert!(on_premises(&["192.0.2.1"]).validate().is_ok());
        let by_certificate = InboundConnector {
            tls_sender_certificate_name: Some("mail.example.com".into()),
            ..on_premises(&[])
        };
        assert!(by_certificate.validate().is_ok());
        let e = on_premises(&[]).validate().unwrap_err().to_string();
        assert!(
            e.contains("sender-ip-addresses or tls-sender-certificate-name"),
            "{e}"
        );

        let restricted = InboundConnector {
            restrict_domains_to_ip_addresses: true,
            ..partner(&["example.com"])
        };
        let e = restricted.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("restrict-domains-to-ip-addresses needs sender-ip-addresses"),
            "{e}"
        );
        let restricted = InboundConnector {
            sender_ip_addresses: vec!["192.0.2.0/24".into()],
            ..restricted
        };
        assert!(restricted.validate().is_ok());

        let by_certificate = InboundConnector {
            restrict_domains_to_certificate: true,
            ..partner(&["example.com"])
        };
        let e = by_certificate.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("restrict-domains-to-certificate needs tls-sender-certificate-name"),
            "{e}"
        );

        let mixed = InboundConnector {
            sender_ip_addresses: vec!["192.0.2.1".into()],
            tls_sender_certificate_name: Some("mail.example.com".into()),
            ..partner(&["example.com"])
        };
        assert_eq!(mixed.validate(), Err(ConnectorError::Mixed));

        let cloud = InboundConnector {
            cloud_services_mail_enabled: true,
            ..partner(&["example.com"])
        };
        let e = cloud.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "cloud-services-mail-enabled applies to on-premises connectors only"
        );
        let cloud = InboundConnector {
            cloud_services_mail_enabled: true,
            ..on_premises(&["192.0.2.1"])
        };
        assert!(cloud.validate().is_ok());

        let e = InboundConnector {
            restrict_domains_to_ip_addresses: true,
            ..on_premises(&["192.0.2.1"])
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "restrict-domains-to-ip-addresses applies to partner connectors only"
        );

        let e = partner(&[]).validate().unwrap_err().to_string();
        assert!(
            e.starts_with("a partner connector needs sender-domains"),
            "{e}"
        );
        assert!(partner(&["*"]).validate().is_ok());
        let e = InboundConnector {
            sender_domains: vec!["*".into()],
            ..on_premises(&["192.0.2.1"])
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("sender-domains: * (any domain) is for partner"),
            "{e}"
        );

        let e = InboundConnector {
            comment: "a\u{0}b".into(),
            ..partner(&["*"])
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("comment: "), "{e}");
        let many = InboundConnector {
            sender_domains: (0..=LIST_MAX).map(|i| format!("d{i}.test")).collect(),
            ..partner(&[])
        };
        let e = many.validate().unwrap_err().to_string();
        assert_eq!(e, "sender-domains: at most 1000 entries (1001 given)");
    }

    #[test]
    fn overlap_is_any_shared_address() {
        let e = |s: &str| sender_ip(s).unwrap();
        assert!(overlaps(&e("192.0.2.0/24"), &e("192.0.2.77")));
        assert!(overlaps(&e("192.0.2.128/25"), &e("192.0.2.0/24")));
        assert!(!overlaps(&e("192.0.2.0/25"), &e("192.0.2.128/25")));
        assert!(!overlaps(&e("192.0.2.1"), &e("2001:db8::/48")));
    }

    #[test]
    fn the_index_finds_every_entry_holding_an_ip() {
        let e = |s: &str| sender_ip(s).unwrap();
        let index = CidrIndex::new([
            (e("192.0.2.0/24"), "a"),
            (e("192.0.2.7"), "b"),
            (e("198.51.100.0/24"), "c"),
            (e("2001:db8:1::/48"), "d"),
        ]);
        assert_eq!(index.matching("192.0.2.7".parse().unwrap()), ["b", "a"]);
        assert_eq!(index.matching("192.0.2.8".parse().unwrap()), ["a"]);
        assert_eq!(
            index.matching("::ffff:192.0.2.8".parse().unwrap()),
            ["a"],
            "an IPv4-mapped client is its IPv4 address"
        );
        assert_eq!(index.matching("2001:db8:1:2::9".parse().unwrap()), ["d"]);
        assert!(index.matching("203.0.113.1".parse().unwrap()).is_empty());
    }
}

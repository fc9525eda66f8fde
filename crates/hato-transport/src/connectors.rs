//! Inbound connectors at the edge (`exchange-online-behaviour.md` §9.1 and §9.3; seed E, G):
//! every tenant's enabled connectors and RejectDirectSend settings, held as one snapshot that is
//! rebuilt only when the store's connector version moves (read once per MAIL FROM: one indexed
//! read), and the decisions made with it.
//!
//! - **Attribution** ([`Snapshot::attribute`]): a client whose IP is in an enabled on-premises
//!   connector's `--sender-ip-addresses` is attributed to that connector's tenant. When the IP
//!   is on several tenants' connectors (registered with `--force`, the seed's E3 pitfall), the
//!   tenant that owns the MAIL FROM domain among them wins, else the connector created first
//!   (then the lowest id): the first registration keeps the IP, as the pitfall describes mail
//!   being pulled into the tenant that set it up.
//! - **Partner connectors** of the recipient's tenant ([`Snapshot::partner_refusal`]): the ones
//!   whose `--sender-domains` cover the MAIL FROM domain; one that restricts (to IPs or a
//!   certificate) beats one that does not (§9.1's precedence note), then an exact domain beats a
//!   wildcard, then the name sorts first. RequireTls without STARTTLS → `451 5.7.3`; the client
//!   IP outside a RestrictDomainsToIPAddresses connector's IPs, or any client of a
//!   RestrictDomainsToCertificate connector (hato does not ask clients for certificates yet) →
//!   `550 5.7.51`.
//! - **RejectDirectSend** ([`Snapshot::rejects_direct_send`]): the tenant's setting, and whether
//!   any of its connectors matches the client by IP (an on-premises connector, or a partner
//!   connector's `--sender-ip-addresses`), which makes the mail not direct send.

use crate::cache::GenerationCache;
use hato_core::client::ConnectorAttribution;
use hato_core::directory::{DomainStatus, TenantId};
use hato_core::reply;
use hato_core::{Address, Reason, Refusal, Stage};
use hato_protection::connector::{CidrIndex, ConnectorType, InboundConnector, domain_matches};
use hato_protection::ip::IpEntry;
use hato_store::{InboundConnectorRecord, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// One enabled connector as the edge holds it.
#[derive(Debug)]
pub struct Held {
    pub id: i64,
    pub tenant: TenantId,
    pub tenant_name: String,
    pub name: String,
    pub connector: InboundConnector,
    ips: Vec<IpEntry>,
}

impl Held {
    fn holds(&self, ip: IpAddr) -> bool {
        self.ips.iter().any(|e| e.contains(ip))
    }
}

/// Every tenant's enabled connectors and RejectDirectSend settings at one version.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: i64,
    /// Oldest first (created, then id): the attribution rule's last resort is this order.
    connectors: Vec<Held>,
    /// Enabled on-premises connectors' IPs → their positions in `connectors`.
    on_premises: CidrIndex<usize>,
    /// Each tenant's enabled partner connectors (positions).
    partners: HashMap<TenantId, Vec<usize>>,
    reject_direct_send: HashSet<TenantId>,
}

impl Snapshot {
    fn build(version: i64, records: Vec<InboundConnectorRecord>, reject: Vec<TenantId>) -> Self {
        let connectors: Vec<Held> = records
            .into_iter()
            .map(|r| {
                let ips = r.connector.ip_entries();
                Held {
                    id: r.id,
                    tenant: r.tenant_id,
                    tenant_name: r.tenant,
                    name: r.name,
                    connector: r.connector,
                    ips,
                }
            })
            .collect();
        let on_premises = CidrIndex::new(
            connectors
                .iter()
                .enumerate()
                .filter(|(_, c)| c.connector.connector_type == ConnectorType::OnPremises)
                .flat_map(|(i, c)| c.ips.iter().map(move |e| (*e, i))),
        );
        let mut partners: HashMap<TenantId, Vec<usize>> = HashMap::new();
        for (i, c) in connectors.iter().enumerate() {
            if c.connector.connector_type == ConnectorType::Partner {
                partners.entry(c.tenant).or_default().push(i);
            }
        }
        Snapshot {
            version,
            connectors,
            on_premises,
            partners,
            reject_direct_send: reject.into_iter().collect(),
        }
    }

    /// Whether nothing here can change a decision (no connector, no RejectDirectSend): the edge
    /// then skips its per-transaction lookups.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.reject_direct_send.is_empty()
    }

    /// The on-premises connector `ip` is attributed to, with `sender_owner` the tenant whose
    /// verified accepted domain the MAIL FROM domain is (the rule in the module's comment).
    pub fn attribute(&self, ip: IpAddr, sender_owner: Option<TenantId>) -> Option<&Held> {
        let mut matched = self.on_premises.matching(ip);
        // Oldest first, one entry per connector (two of its entries may hold the IP).
        matched.sort_unstable();
        matched.dedup();
        let first = |tenant: Option<TenantId>| {
            matched
                .iter()
                .map(|&i| &self.connectors[i])
                .find(|c| tenant.is_none_or(|t| c.tenant == t))
        };
        sender_owner
            .and_then(|t| first(Some(t)))
            .or_else(|| first(None))
    }

    /// The attribution the edge sets at MAIL FROM for a client at `ip` whose MAIL FROM is
    /// `sender`, `owner` being the tenant that has its domain as a verified accepted domain.
    /// The connector vouches for the sender (relay to outside domains, seed E) only when that
    /// tenant is the connector's own.
    pub fn attribution(
        &self,
        ip: IpAddr,
        owner: Option<TenantId>,
        sender: Option<&Address>,
    ) -> Option<ConnectorAttribution> {
        self.attribute(ip, owner).map(|c| ConnectorAttribution {
            tenant: c.tenant,
            connector_id: c.id,
            connector: c.name.clone(),
            vouched_sender: sender
                .filter(|_| owner == Some(c.tenant))
                .map(|s| s.to_string()),
            keep_internal_headers: c.connector.cloud_services_mail_enabled,
        })
    }

    /// Every enabled on-premises connector whose `--sender-ip-addresses` hold `ip`, oldest
    /// first (the attribution rule's order), one entry per connector.
    pub fn holders(&self, ip: IpAddr) -> Vec<&Held> {
        let mut matched = self.on_premises.matching(ip);
        matched.sort_unstable();
        matched.dedup();
        matched.into_iter().map(|i| &self.connectors[i]).collect()
    }

    /// Whether the enabled connector `id` lists `ip` (an on-premises connector's IPs, or a
    /// partner connector's `--sender-ip-addresses`).
    pub fn connector_holds(&self, id: i64, ip: IpAddr) -> bool {
        self.connectors.iter().any(|c| c.id == id && c.holds(ip))
    }

    /// The partner connector of `tenant` that applies to mail from `sender_domain`, if any.
    pub fn partner_for(&self, tenant: TenantId, sender_domain: &str) -> Option<&Held> {
        let exact = |c: &Held| {
            c.connector
                .sender_domains
                .iter()
                .any(|p| !p.starts_with('*') && domain_matches(p, sender_domain))
        };
        self.partners
            .get(&tenant)?
            .iter()
            .map(|&i| &self.connectors[i])
            .filter(|c| c.connector.covers_domain(sender_domain))
            .min_by(|a, b| {
                // Restricting first, then an exact domain, then the name.
                (!a.connector.restricts(), !exact(a), a.name.to_lowercase()).cmp(&(
                    !b.connector.restricts(),
                    !exact(b),
                    b.name.to_lowercase(),
                ))
            })
    }

    /// The refusal a partner connector of `tenant` makes for mail from `sender_domain` sent by
    /// `ip`, over TLS or not.
    pub fn partner_refusal(
        &self,
        tenant: TenantId,
        sender_domain: &str,
        ip: IpAddr,
        tls: bool,
    ) -> Option<Refusal> {
        let c = self.partner_for(tenant, sender_domain)?;
        let refusal = |reply, setting: &str, text: String| {
            Refusal::new(
                reply,
                Reason::new(Stage::Connector, text)
                    .rule(format!("inbound connector {}: {setting}", c.name))
                    .figure("connector", c.name.clone())
                    .figure("sender_domain", sender_domain.to_string()),
            )
        };
        let p = &c.connector;
        if p.require_tls && !tls {
            return Some(refusal(
                reply::CONNECTOR_REQUIRES_TLS,
                "RequireTls",
                format!(
                    "The partner inbound connector {:?} covers {sender_domain} and requires TLS \
                     (--require-tls); the session did not STARTTLS",
                    c.name
                ),
            ));
        }
        if p.restrict_domains_to_ip_addresses && !c.holds(ip) {
            return Some(refusal(
                reply::PARTNER_CONNECTOR_RESTRICTED,
                "RestrictDomainsToIPAddresses",
                format!(
                    "The partner inbound connector {:?} restricts {sender_domain} to its \
                     --sender-ip-addresses ({}); the client {ip} is not one of them",
                    c.name,
                    p.sender_ip_addresses.join(", ")
                ),
            ));
        }
        if p.restrict_domains_to_certificate {
            // Fails closed: hato's listener does not ask clients for certificates yet, so no
            // client can show the name the connector wants.
            return Some(refusal(
                reply::PARTNER_CONNECTOR_RESTRICTED,
                "RestrictDomainsToCertificate",
                format!(
                    "The partner inbound connector {:?} restricts {sender_domain} to a TLS client \
                     certificate named {}; the client presented none (hato does not request \
                     client certificates)",
                    c.name,
                    p.tls_sender_certificate_name.as_deref().unwrap_or_default()
                ),
            ));
        }
        None
    }

    /// Whether `tenant` has RejectDirectSend on and none of its enabled connectors matches `ip`
    /// (on-premises, or a partner connector listing the IP).
    pub fn rejects_direct_send(&self, tenant: TenantId, ip: IpAddr) -> bool {
        self.reject_direct_send.contains(&tenant)
            && !self
                .connectors
                .iter()
                .any(|c| c.tenant == tenant && c.holds(ip))
    }
}

/// The snapshot, rebuilt from the store when its connector version moved; with the store's
/// policy generation ([`crate::cache`]; every connector, organization config and domain change
/// moves it), the version is not even read while the generation stays.
pub struct InboundConnectors {
    store: Arc<dyn Store>,
    held: Mutex<Arc<Snapshot>>,
    current: GenerationCache<(), Arc<Snapshot>>,
    /// The tenant that has a MAIL FROM domain as a verified accepted domain, by domain
    /// (lowercase); bounded, as an outside sender chooses the domains.
    owners: GenerationCache<String, Option<TenantId>>,
}

/// How many MAIL FROM domains' owners are kept.
const OWNER_CACHE: usize = 16_384;

impl InboundConnectors {
    pub fn new(store: Arc<dyn Store>) -> Self {
        InboundConnectors {
            store,
            held: Mutex::new(Arc::new(Snapshot {
                version: -1,
                ..Snapshot::default()
            })),
            current: GenerationCache::new(1),
            owners: GenerationCache::new(OWNER_CACHE),
        }
    }

    /// The current snapshot if it is known without a store read.
    pub fn cached_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .get(self.store.content_policy_generation(), &())
    }

    /// The current snapshot. Blocks (store reads): call it on the blocking pool.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        let generation = self.store.content_policy_generation();
        if let Some(held) = self.current.get(generation, &()) {
            return Ok(held);
        }
        let version = self.store.connector_version()?;
        let held = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if held.version == version {
            self.current.insert(generation, (), held.clone());
            return Ok(held);
        }
        let fresh = Arc::new(Snapshot::build(
            version,
            self.store.enabled_inbound_connectors()?,
            self.store.reject_direct_send_tenants()?,
        ));
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        self.current.insert(generation, (), fresh.clone());
        Ok(fresh)
    }

    /// The tenant that has `domain` as a verified accepted domain, if known without a read:
    /// `Some(owner)` when known.
    pub fn cached_owner(&self, domain: &str) -> Option<Option<TenantId>> {
        self.owners.get(
            self.store.content_policy_generation(),
            &domain.to_ascii_lowercase(),
        )
    }

    /// The tenant that has `domain` as a verified accepted domain. Blocks (a store read).
    pub fn owner(&self, domain: &str) -> Result<Option<TenantId>, StoreError> {
        let generation = self.store.content_policy_generation();
        let key = domain.to_ascii_lowercase();
        if let Some(owner) = self.owners.get(generation, &key) {
            return Ok(owner);
        }
        let owner = self
            .store
            .domain_entry(domain)?
            .filter(|e| e.status == DomainStatus::Verified)
            .map(|e| e.tenant);
        self.owners.insert(generation, key, owner);
        Ok(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Timestamp;

    fn record(
        id: i64,
        tenant: TenantId,
        name: &str,
        c: InboundConnector,
    ) -> InboundConnectorRecord {
        InboundConnectorRecord {
            id,
            tenant_id: tenant,
            tenant: format!("t{tenant}"),
            name: name.into(),
            connector: c,
            created: Timestamp(id),
            updated: Timestamp(id),
        }
    }

    fn on_premises(ips: &[&str]) -> InboundConnector {
        InboundConnector {
            connector_type: ConnectorType::OnPremises,
            sender_ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
            ..InboundConnector::default()
        }
    }

    fn partner(domains: &[&str], ips: &[&str], restrict: bool, tls: bool) -> InboundConnector {
        InboundConnector {
            connector_type: ConnectorType::Partner,
            sender_domains: domains.iter().map(|s| s.to_string()).collect(),
            sender_ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
            restrict_domains_to_ip_addresses: restrict,
            require_tls: tls,
            ..InboundConnector::default()
        }
    }

    #[test]
    fn a_shared_ip_goes_to_the_sender_domains_tenant_else_to_the_connector_made_first() {
        let s = Snapshot::build(
            1,
            vec![
                record(1, 10, "A", on_premises(&["192.0.2.0/24"])),
                record(2, 20, "B", on_premises(&["192.0.2.7"])),
                record(3, 30, "C", on_premises(&["198.51.100.1"])),
            ],
            vec![],
        );
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(s.attribute(ip, Some(20)).map(|c| c.tenant), Some(20));
        assert_eq!(s.attribute(ip, Some(10)).map(|c| c.tenant), Some(10));
        // The sender's tenant has no connector with the IP: the oldest connector.
        assert_eq!(s.attribute(ip, Some(30)).map(|c| c.tenant), Some(10));
        assert_eq!(s.attribute(ip, None).map(|c| c.name.as_str()), Some("A"));
        assert!(s.attribute("203.0.113.1".parse().unwrap(), None).is_none());
    }

    #[test]
    fn a_restricting_partner_connector_beats_one_that_only_names_the_domain() {
        let s = Snapshot::build(
            1,
            vec![
                record(1, 10, "Any", partner(&["*"], &[], false, false)),
                record(
                    2,
                    10,
                    "Fabrikam",
                    partner(
                        &["*.fabrikam.test", "fabrikam.test"],
                        &["198.51.100.0/24"],
                        true,
                        false,
                    ),
                ),
                record(3, 10, "Tls", partner(&["tailspin.test"], &[], false, true)),
            ],
            vec![10],
        );
        let inside: IpAddr = "198.51.100.9".parse().unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(
            s.partner_refusal(10, "fabrikam.test", inside, false)
                .is_none()
        );
        let r = s
            .partner_refusal(10, "mail.fabrikam.test", outside, true)
            .unwrap();
        assert_eq!(r.reply, reply::PARTNER_CONNECTOR_RESTRICTED);
        assert_eq!(
            r.reason.rule.as_deref(),
            Some("inbound connector Fabrikam: RestrictDomainsToIPAddresses")
        );
        // Another tenant's recipients are not this tenant's partners' business.
        assert!(
            s.partner_refusal(20, "fabrikam.test", outside, false)
                .is_none()
        );
        let r = s
            .partner_refusal(10, "tailspin.test", outside, false)
            .unwrap();
        assert_eq!(r.reply, reply::CONNECTOR_REQUIRES_TLS);
        assert!(
            s.partner_refusal(10, "tailspin.test", outside, true)
                .is_none()
        );
        assert!(
            s.partner_refusal(10, "other.test", outside, false)
                .is_none()
        );
        // RejectDirectSend: a connector listing the IP makes it not direct send.
        assert!(s.rejects_direct_send(10, outside));
        assert!(!s.rejects_direct_send(10, inside));
        assert!(!s.rejects_direct_send(20, outside));
    }
}

//! Outbound connectors in the outbound agent (issue 10, items 4 and 5;
//! `exchange-online-behaviour.md` §9.2): every tenant's connectors held as one snapshot,
//! rebuilt only when the store's connector version moves (a connector's change, an accepted
//! domain's), and the [`NextHopSelector`] that routes an outside recipient by them.
//!
//! - **By domain** ([`Snapshot::for_domain`]): the tenant's enabled connectors that are not
//!   transport-rule scoped, ranked as `hato_protection::outbound_connector` says (exact, then
//!   all accepted domains, then the most specific wildcard; the name that sorts first among
//!   equals). None → MX delivery.
//! - **By a transport rule** (`RouteMessageOutboundConnector`, kept with the recipient): the
//!   named connector of the tenant when it exists and is enabled (rule-scoped or not); when it
//!   is gone or disabled by the time the recipient leaves, the domain's choice, logged.
//! - The hop: the connector's smart hosts (round robin in the agent), or with
//!   `--use-mx-record` the recipient domain's MX hosts; both with the connector's TLS
//!   settings (none: opportunistic STARTTLS, Exchange's `$null`).

use crate::outbound::{HopChoice, NextHop, NextHopSelector};
use hato_core::directory::{DomainStatus, TenantId};
use hato_protection::outbound_connector::{OutboundConnector, OutboundTls, select};
use hato_smtp::client::tls::TlsSettings;
use hato_store::{OutboundConnectorRecord, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// One connector as the agent holds it.
#[derive(Debug, Clone)]
pub struct Held {
    pub name: String,
    pub connector: OutboundConnector,
}

impl Held {
    /// The connector's TLS settings as the SMTP client takes them.
    pub fn tls(&self) -> TlsSettings {
        tls_settings(&self.connector)
    }

    /// Where this connector sends mail for `domain`.
    pub fn hop(&self, domain: &str) -> NextHop {
        if self.connector.use_mx_record || self.connector.smart_hosts.is_empty() {
            NextHop::ConnectorMx {
                domain: domain.to_string(),
                tls: self.tls(),
            }
        } else {
            NextHop::SmartHosts {
                hosts: self.connector.smart_hosts.clone(),
                tls: self.tls(),
            }
        }
    }
}

/// `TlsSettings` of a connector for the SMTP client.
pub fn tls_settings(c: &OutboundConnector) -> TlsSettings {
    match c.tls_settings {
        None => TlsSettings::Opportunistic,
        Some(OutboundTls::EncryptionOnly) => TlsSettings::EncryptionOnly,
        Some(OutboundTls::CertificateValidation) => TlsSettings::CertificateValidation,
        Some(OutboundTls::DomainValidation) => {
            TlsSettings::DomainValidation(c.tls_domain.clone().unwrap_or_default())
        }
    }
}

/// Every tenant's outbound connectors at one version.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: i64,
    /// Each tenant's connectors, by name.
    by_tenant: HashMap<TenantId, Vec<Held>>,
    /// The verified accepted domains of tenants with an enabled all-accepted-domains
    /// connector (the only ones that need them).
    accepted: HashMap<TenantId, HashSet<String>>,
}

impl Snapshot {
    pub fn build(
        version: i64,
        records: Vec<OutboundConnectorRecord>,
        accepted: HashMap<TenantId, HashSet<String>>,
    ) -> Self {
        let mut by_tenant: HashMap<TenantId, Vec<Held>> = HashMap::new();
        for r in records {
            by_tenant.entry(r.tenant_id).or_default().push(Held {
                name: r.name,
                connector: r.connector,
            });
        }
        Snapshot {
            version,
            by_tenant,
            accepted,
        }
    }

    /// The connector that routes `tenant`'s mail for `domain` (lower case), if any.
    pub fn for_domain(&self, tenant: TenantId, domain: &str) -> Option<&Held> {
        let held = self.by_tenant.get(&tenant)?;
        let accepted = self
            .accepted
            .get(&tenant)
            .is_some_and(|d| d.contains(domain));
        let name = select(
            held.iter().map(|h| (h.name.as_str(), &h.connector)),
            domain,
            accepted,
        )?;
        held.iter().find(|h| h.name == name)
    }

    /// The tenant's connector of that name (any case), enabled or not.
    pub fn named(&self, tenant: TenantId, name: &str) -> Option<&Held> {
        self.by_tenant
            .get(&tenant)?
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// Whether `tenant` has a connector of that name that is enabled: what a transport rule's
    /// `RouteMessageOutboundConnector` needs to apply.
    pub fn usable(&self, tenant: TenantId, name: &str) -> Result<&Held, String> {
        match self.named(tenant, name) {
            Some(h) if h.connector.enabled => Ok(h),
            Some(h) => Err(format!("the outbound connector {:?} is disabled", h.name)),
            None => Err(format!("the tenant has no outbound connector {name:?}")),
        }
    }

    /// The choice for an outside recipient of `tenant` at `domain`; `ruled` the connector a
    /// transport rule named.
    pub fn choose(&self, tenant: TenantId, domain: &str, ruled: Option<&str>) -> HopChoice {
        if let Some(name) = ruled {
            match self.usable(tenant, name) {
                Ok(h) => {
                    return HopChoice {
                        hop: h.hop(domain),
                        connector: Some(h.name.clone()),
                    };
                }
                Err(why) => tracing::warn!(
                    "a transport rule routed a recipient at {domain} through {name:?}, but {why}: \
                     it is routed by its domain instead"
                ),
            }
        }
        match self.for_domain(tenant, domain) {
            Some(h) => HopChoice {
                hop: h.hop(domain),
                connector: Some(h.name.clone()),
            },
            None => HopChoice {
                hop: NextHop::Mx {
                    domain: domain.to_string(),
                },
                connector: None,
            },
        }
    }
}

/// The snapshot, rebuilt from the store when its connector version moved.
pub struct OutboundConnectors {
    store: Arc<dyn Store>,
    held: Mutex<Arc<Snapshot>>,
}

impl OutboundConnectors {
    pub fn new(store: Arc<dyn Store>) -> Self {
        OutboundConnectors {
            store,
            held: Mutex::new(Arc::new(Snapshot {
                version: -1,
                ..Snapshot::default()
            })),
        }
    }

    /// The snapshot held now (no store read; at most one batch of the agent old).
    pub fn current(&self) -> Arc<Snapshot> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current snapshot, rebuilt if the version moved. Blocks (store reads).
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        let version = self.store.connector_version()?;
        let held = self.current();
        if held.version == version {
            return Ok(held);
        }
        let records = self.store.all_outbound_connectors()?;
        let mut accepted: HashMap<TenantId, HashSet<String>> = HashMap::new();
        let wanting: HashSet<TenantId> = records
            .iter()
            .filter(|r| r.connector.enabled && r.connector.all_accepted_domains)
            .map(|r| r.tenant_id)
            .collect();
        for tenant in wanting {
            let domains = self
                .store
                .domains(Some(tenant))?
                .into_iter()
                .filter(|d| d.status == DomainStatus::Verified)
                .map(|d| d.domain.to_ascii_lowercase())
                .collect();
            accepted.insert(tenant, domains);
        }
        let fresh = Arc::new(Snapshot::build(version, records, accepted));
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }
}

impl NextHopSelector for OutboundConnectors {
    fn next_hop(&self, tenant: TenantId, domain: &str) -> NextHop {
        self.choose(tenant, domain, None).hop
    }

    fn choose(&self, tenant: TenantId, domain: &str, connector: Option<&str>) -> HopChoice {
        self.current().choose(tenant, domain, connector)
    }

    fn refresh(&self) {
        if let Err(e) = self.snapshot() {
            // The snapshot held stays: routing goes on with the connectors as they were.
            tracing::error!("outbound connectors could not be read: {e}");
        }
    }
}

/// What `hato connector outbound validate` reports: the SMTP transcript of each host tried,
/// whether the test message was taken, and a one-line summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    pub connector: String,
    pub recipient: String,
    pub delivered: bool,
    pub summary: String,
    /// `* ` notes, `C: ` commands, `S: ` replies, host by host.
    pub transcript: Vec<String>,
}

/// Sends a short test message from `sender` to `recipient` through the connector, as the agent
/// would (its smart hosts from a random start, or the recipient domain's MX hosts, with its TLS
/// settings; a host that does not answer, times out or refuses the session with 4xx is skipped
/// for the next; a smart host's 5xx ends it), and reports what each host said. A real delivery,
/// where Exchange's validation is only indicative (seed F4).
pub async fn validate(
    held: &Held,
    sender: &str,
    recipient: &str,
    resolver: &dyn hato_core::dns::Resolver,
    settings: &crate::outbound::OutboundSettings,
    date: &str,
) -> Validation {
    use crate::outbound::{RouteError, resolve};
    use hato_smtp::client::conn::{ConnectOptions, Message, deliver};
    use hato_smtp::client::{Recipient, Status, Transaction};

    let domain = recipient
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let mut hop = held.hop(&domain);
    if let NextHop::SmartHosts { hosts, .. } = &mut hop {
        let start = crate::outbound::random_index(hosts.len());
        hosts.rotate_left(start);
    }
    let mut out = Validation {
        connector: held.name.clone(),
        recipient: recipient.to_string(),
        delivered: false,
        summary: String::new(),
        transcript: Vec::new(),
    };
    let hosts = match resolve(resolver, &hop, settings.smtp_port).await {
        Ok(hosts) => hosts,
        Err(e) => {
            let kind = match e {
                RouteError::Permanent { .. } => "permanently",
                RouteError::Temporary { .. } => "for now",
            };
            out.summary = format!(
                "FAILED: no host to deliver to ({kind}): {e} [{}]",
                e.reply()
            );
            return out;
        }
    };
    let token = crate::outbound::random_index(usize::MAX);
    let content = format!(
        "From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: hato outbound connector validation: {name}\r\nDate: {date}\r\nMessage-ID: <validate.{token:x}@{helo}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis test message was sent by hato to validate the outbound connector {name}.\r\nNo action is needed.\r\n",
        name = held.name,
        helo = settings.normal.helo_name,
    );
    let mut last = String::from("no host answered");
    'hosts: for host in &hosts {
        for ip in &host.addresses {
            let address = std::net::SocketAddr::new(*ip, host.port);
            out.transcript
                .push(format!("* connecting to {} [{address}]", host.name));
            let mut options = ConnectOptions::new(address, settings.normal.helo_name.clone());
            options.host_name = Some(host.name.clone());
            options.source = settings.normal.source;
            options.tls = hop_tls(&hop);
            options.timeouts = settings.timeouts;
            let tx = Transaction::new(sender, vec![Recipient::new(recipient)], 0);
            let message = Message {
                head: content.clone().into_bytes(),
                file: None,
            };
            let delivery = deliver(options, vec![(tx, message)]).await;
            out.transcript
                .extend(delivery.report.transcript.lines().iter().cloned());
            let result = delivery.recipients().next().cloned();
            match (result, &delivery.report.error) {
                (Some(r), _) if r.status() == Status::Delivered => {
                    out.delivered = true;
                    out.summary = format!(
                        "OK: {} [{address}] took the test message for {recipient}: {}",
                        host.name, r.reply
                    );
                    break 'hosts;
                }
                (_, Some(error)) if delivery.report.transactions == 0 => {
                    // The session never got to the transaction: the next host, unless a
                    // smart host refused for good.
                    last = format!("{} [{address}]: {error}", host.name);
                    if error.is_permanent() && matches!(hop, NextHop::SmartHosts { .. }) {
                        break 'hosts;
                    }
                }
                (Some(r), _) => {
                    last = format!(
                        "{} [{address}] refused the test message: {}",
                        host.name, r.reply
                    );
                    break 'hosts;
                }
                (None, error) => {
                    last = format!(
                        "{} [{address}]: {}",
                        host.name,
                        error
                            .as_ref()
                            .map_or_else(|| "no result".to_string(), |e| e.to_string())
                    );
                    break 'hosts;
                }
            }
        }
    }
    if !out.delivered {
        out.summary = format!("FAILED: {last}");
    }
    out
}

fn hop_tls(hop: &NextHop) -> TlsSettings {
    match hop {
        NextHop::Mx { .. } => TlsSettings::Opportunistic,
        NextHop::SmartHosts { tls, .. } | NextHop::ConnectorMx { tls, .. } => tls.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Timestamp;
    use hato_protection::connector::ConnectorType;

    fn record(tenant: TenantId, name: &str, c: OutboundConnector) -> OutboundConnectorRecord {
        OutboundConnectorRecord {
            id: 1,
            tenant_id: tenant,
            tenant: format!("t{tenant}"),
            name: name.into(),
            connector: c,
            created: Timestamp(0),
            updated: Timestamp(0),
        }
    }

    fn to(domains: &[&str], hosts: &[&str]) -> OutboundConnector {
        OutboundConnector {
            recipient_domains: domains.iter().map(|s| s.to_string()).collect(),
            smart_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            use_mx_record: hosts.is_empty(),
            ..OutboundConnector::default()
        }
    }

    #[test]
    fn each_tenant_routes_by_its_own_connectors_else_by_mx() {
        let all = OutboundConnector {
            connector_type: ConnectorType::OnPremises,
            all_accepted_domains: true,
            smart_hosts: vec!["onprem.contoso.test".into()],
            use_mx_record: false,
            ..OutboundConnector::default()
        };
        let scoped = OutboundConnector {
            is_transport_rule_scoped: true,
            tls_settings: Some(OutboundTls::EncryptionOnly),
            ..to(&[], &["192.0.2.9:2525"])
        };
        let s = Snapshot::build(
            1,
            vec![
                record(1, "Fabrikam", to(&["fabrikam.test"], &["192.0.2.1"])),
                record(1, "Hybrid", all),
                record(1, "Scoped", scoped),
                record(2, "Other", to(&["*"], &[])),
            ],
            HashMap::from([(1, HashSet::from(["relay.contoso.test".to_string()]))]),
        );
        let c = s.choose(1, "fabrikam.test", None);
        assert_eq!(c.connector.as_deref(), Some("Fabrikam"));
        assert_eq!(
            c.hop,
            NextHop::SmartHosts {
                hosts: vec!["192.0.2.1".into()],
                tls: TlsSettings::Opportunistic
            }
        );
        assert_eq!(
            s.choose(1, "relay.contoso.test", None).connector.as_deref(),
            Some("Hybrid")
        );
        let mx = s.choose(1, "elsewhere.test", None);
        assert_eq!(
            (mx.hop, mx.connector),
            (
                NextHop::Mx {
                    domain: "elsewhere.test".into()
                },
                None
            )
        );
        // A rule-scoped connector only by a rule; a rule naming a missing one: by domain.
        let ruled = s.choose(1, "elsewhere.test", Some("scoped"));
        assert_eq!(ruled.connector.as_deref(), Some("Scoped"));
        assert_eq!(
            ruled.hop,
            NextHop::SmartHosts {
                hosts: vec!["192.0.2.9:2525".into()],
                tls: TlsSettings::EncryptionOnly
            }
        );
        assert_eq!(
            s.choose(1, "fabrikam.test", Some("Gone"))
                .connector
                .as_deref(),
            Some("Fabrikam")
        );
        // Another tenant's connectors are not this one's.
        let other = s.choose(2, "fabrikam.test", None);
        assert_eq!(other.connector.as_deref(), Some("Other"));
        assert_eq!(
            other.hop,
            NextHop::ConnectorMx {
                domain: "fabrikam.test".into(),
                tls: TlsSettings::Opportunistic
            }
        );
    }
}

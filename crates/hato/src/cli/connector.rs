//! `hato connector inbound add|set|list|show|remove|validate NAME --tenant T`: a tenant's inbound
//! connectors (Exchange's `New-`/`Set-`/`Get-`/`Remove-InboundConnector`), every parameter as a
//! kebab-case flag of its Exchange name with Exchange's default. Outbound connectors are under
//! `hato connector outbound` (`outbound_connector.rs`).

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum ConnectorCmd {
    /// Inbound connectors: mail from your organisation's servers (on-premises: relay through
    /// hato, attribution to the tenant, no throttling) or from partners (TLS required, domains
    /// restricted to IPs).
    #[command(subcommand)]
    Inbound(InboundCmd),
    /// Outbound connectors: where a tenant's mail for given domains goes (smart hosts or MX,
    /// TLS settings), and a real test delivery through one (validate).
    #[command(subcommand)]
    Outbound(super::outbound_connector::OutboundCmd),
}

#[derive(Subcommand)]
pub(super) enum InboundCmd {
    /// The tenant's inbound connectors, by name.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// One connector, every setting with its value.
    Show {
        #[arg(long)]
        tenant: String,
        name: String,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Add a connector (New-InboundConnector); --connector-type is required.
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a connector (Set-InboundConnector); only those given change, and
    /// nothing changes when one is refused.
    Set {
        #[arg(long)]
        tenant: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Remove a connector (Remove-InboundConnector).
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// Which connector the SMTP edge would attribute a connection from an IP to, and why;
    /// whether relay would be allowed; what a partner connector would refuse. hato's own
    /// (Exchange has no such check), computed by the edge's code on the connectors as stored.
    Validate {
        #[arg(long)]
        tenant: String,
        name: String,
        /// The sending server's IP.
        #[arg(long, value_name = "IP")]
        sender_ip_address: String,
        /// The MAIL FROM address (none: the null sender).
        #[arg(long, value_name = "ADDRESS")]
        sender_address: Option<String>,
        /// The name on the TLS certificate the server would present (implies STARTTLS).
        #[arg(long, value_name = "NAME")]
        tls_certificate_name: Option<String>,
        /// Whether the server uses STARTTLS (default: when a certificate name is given).
        #[arg(long, value_name = "true|false")]
        tls: Option<bool>,
        #[arg(long)]
        json: bool,
    },
}

/// New-InboundConnector's parameters. A list is replaced by `--X a,b` ("" clears it).
#[derive(Args)]
pub(super) struct Settings {
    /// ConnectorType: on-premises (your organisation's mail server) or partner (another
    /// organisation or service).
    #[arg(long, value_name = "on-premises|partner")]
    connector_type: Option<String>,
    /// SenderIPAddresses: addresses and CIDR blocks (IPv4 /24 to /32, IPv6 /48 to /128),
    /// comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "IP,IP,...")]
    sender_ip_addresses: Option<Vec<String>>,
    /// SenderDomains: example.com, *.example.com (its subdomains), * (any domain; partner
    /// connectors), comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    sender_domains: Option<Vec<String>>,
    /// RequireTls (partner connectors): refuse the domains' mail without STARTTLS. Default
    /// true, as Exchange's cmdlet page states.
    #[arg(long, value_name = "true|false")]
    require_tls: Option<bool>,
    /// RestrictDomainsToIPAddresses (partner): refuse the domains' mail from other IPs.
    #[arg(long, value_name = "true|false")]
    restrict_domains_to_ip_addresses: Option<bool>,
    /// RestrictDomainsToCertificate (partner): the domains' mail must come with a TLS client
    /// certificate named --tls-sender-certificate-name.
    #[arg(long, value_name = "true|false")]
    restrict_domains_to_certificate: Option<bool>,
    /// TlsSenderCertificateName: the sending server's certificate name (*.example.com
    /// allowed; "" clears).
    #[arg(long, value_name = "NAME")]
    tls_sender_certificate_name: Option<String>,
    /// CloudServicesMailEnabled (on-premises): keep hato's own header fields (X-Hato-*, its
    /// Authentication-Results) in mail from this server. Default false.
    #[arg(long, value_name = "true|false")]
    cloud_services_mail_enabled: Option<bool>,
    /// Enabled. Default true.
    #[arg(long, value_name = "true|false")]
    enabled: Option<bool>,
    /// Comment.
    #[arg(long)]
    comment: Option<String>,
    /// Register IPs that are on another tenant's on-premises connector anyway (the shared-IP
    /// pitfall: mail from such an IP is attributed to one tenant only).
    #[arg(long)]
    force: bool,
}

impl Settings {
    fn body(self) -> Map<String, Value> {
        let mut m = Map::new();
        let list = |v: Vec<String>| -> Value {
            Value::Array(
                v.into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .map(Value::String)
                    .collect(),
            )
        };
        if let Some(v) = self.connector_type {
            m.insert("connector_type".into(), json!(v));
        }
        if let Some(v) = self.sender_ip_addresses {
            m.insert("sender_ip_addresses".into(), list(v));
        }
        if let Some(v) = self.sender_domains {
            m.insert("sender_domains".into(), list(v));
        }
        for (key, v) in [
            ("require_tls", self.require_tls),
            (
                "restrict_domains_to_ip_addresses",
                self.restrict_domains_to_ip_addresses,
            ),
            (
                "restrict_domains_to_certificate",
                self.restrict_domains_to_certificate,
            ),
            (
                "cloud_services_mail_enabled",
                self.cloud_services_mail_enabled,
            ),
            ("enabled", self.enabled),
        ] {
            if let Some(v) = v {
                m.insert(key.into(), json!(v));
            }
        }
        if let Some(v) = self.tls_sender_certificate_name {
            m.insert("tls_sender_certificate_name".into(), json!(v));
        }
        if let Some(v) = self.comment {
            m.insert("comment".into(), json!(v));
        }
        if self.force {
            m.insert("force".into(), json!(true));
        }
        m
    }
}

/// The settings `show` prints, in Exchange's order.
const SETTINGS: &[&str] = &[
    "name",
    "connector_type",
    "enabled",
    "sender_ip_addresses",
    "sender_domains",
    "require_tls",
    "restrict_domains_to_ip_addresses",
    "restrict_domains_to_certificate",
    "tls_sender_certificate_name",
    "cloud_services_mail_enabled",
    "comment",
    "created",
    "updated",
];

fn connectors(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/connectors/inbound", enc(tenant))
}

fn connector(tenant: &str, name: &str) -> String {
    format!("{}/{}", connectors(tenant), enc(name))
}

fn joined(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub(super) fn run(c: &Client, cmd: ConnectorCmd) -> Result<(), String> {
    let cmd = match cmd {
        ConnectorCmd::Inbound(cmd) => cmd,
        ConnectorCmd::Outbound(cmd) => return super::outbound_connector::run(c, cmd),
    };
    let (v, json) = match cmd {
        InboundCmd::List { tenant, json } => {
            let v = c.json("GET", &connectors(&tenant), &[], None)?;
            if json {
                return print_rows(&v, &[], true);
            }
            let rows: Vec<Value> = v
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    json!({
                        "name": r["name"],
                        "connector_type": r["connector_type"],
                        "enabled": r["enabled"],
                        "sender_ip_addresses": joined(&r["sender_ip_addresses"]),
                        "sender_domains": joined(&r["sender_domains"]),
                    })
                })
                .collect();
            return print_rows(
                &Value::Array(rows),
                &[
                    "name",
                    "connector_type",
                    "enabled",
                    "sender_ip_addresses",
                    "sender_domains",
                ],
                false,
            );
        }
        InboundCmd::Show { tenant, name, json } => {
            (c.json("GET", &connector(&tenant, &name), &[], None)?, json)
        }
        InboundCmd::Add {
            tenant,
            name,
            settings,
            json,
        } => {
            if settings.connector_type.is_none() {
                return Err(
                    "--connector-type is required: on-premises (your organisation's mail server) or partner (another organisation or service)"
                        .into(),
                );
            }
            let mut body = settings.body();
            body.insert("name".into(), Value::String(name));
            let v = c.json("POST", &connectors(&tenant), &[], Some(Value::Object(body)))?;
            (v, json)
        }
        InboundCmd::Set {
            tenant,
            name,
            settings,
            json,
        } => {
            let body = settings.body();
            if body.keys().all(|k| k == "force") {
                return Err("nothing to change: give at least one setting (see --help)".into());
            }
            let v = c.json(
                "PATCH",
                &connector(&tenant, &name),
                &[],
                Some(Value::Object(body)),
            )?;
            (v, json)
        }
        InboundCmd::Validate {
            tenant,
            name,
            sender_ip_address,
            sender_address,
            tls_certificate_name,
            tls,
            json,
        } => {
            let mut body = Map::new();
            body.insert("sender_ip_address".into(), json!(sender_ip_address));
            if let Some(a) = sender_address {
                body.insert("sender_address".into(), json!(a));
            }
            if let Some(n) = tls_certificate_name {
                body.insert("tls_certificate_name".into(), json!(n));
            }
            if let Some(t) = tls {
                body.insert("tls".into(), json!(t));
            }
            let v = c.json(
                "POST",
                &format!("{}/validate", connector(&tenant, &name)),
                &[],
                Some(Value::Object(body)),
            )?;
            if json {
                return print_rows(&v, &[], true);
            }
            let text = |k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => "none".to_string(),
                other => other.to_string(),
            };
            println!(
                "inbound connector {} of {}: a connection from {}{}",
                text("connector"),
                text("tenant"),
                text("sender_ip_address"),
                v["sender_address"]
                    .as_str()
                    .map(|a| format!(" with MAIL FROM <{a}>"))
                    .unwrap_or_default()
            );
            println!("attributed-to: {}", text("attributed_to"));
            println!("attributed-here: {}", text("attributed_here"));
            println!("relay-allowed: {}", text("relay_allowed"));
            println!("refusal: {}", text("refusal"));
            for r in v["reasons"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!("  - {}", r.as_str().unwrap_or_default());
            }
            return Ok(());
        }
        InboundCmd::Remove { tenant, name } => {
            c.json("DELETE", &connector(&tenant, &name), &[], None)?;
            println!("removed inbound connector {name}");
            return Ok(());
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "inbound connector of {}",
        v["tenant"].as_str().unwrap_or_default()
    );
    for key in SETTINGS {
        let value = match &v[*key] {
            Value::Array(_) => joined(&v[*key]),
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        println!("{}: {value}", key.replace('_', "-"));
    }
    Ok(())
}

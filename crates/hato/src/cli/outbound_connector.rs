//! `hato connector outbound add|set|list|show|remove|validate NAME --tenant T`: a tenant's
//! outbound connectors (Exchange's `New-`/`Set-`/`Get-`/`Remove-OutboundConnector`, and the
//! EAC's validation as a real delivery), every parameter as a kebab-case flag of its Exchange
//! name with Exchange's default.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum OutboundCmd {
    /// The tenant's outbound connectors, by name.
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
    /// Add a connector (New-OutboundConnector): --recipient-domains or --all-accepted-domains
    /// (or --is-transport-rule-scoped), and --smart-hosts or the MX records (the default).
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a connector (Set-OutboundConnector); only those given change, and
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
    /// Remove a connector (Remove-OutboundConnector).
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// Deliver a short test message through the connector (its smart hosts or the MX hosts,
    /// its TLS settings) and print the SMTP transcript; exits non-zero when it was not taken.
    Validate {
        #[arg(long)]
        tenant: String,
        name: String,
        /// Where the test message goes.
        #[arg(long)]
        recipient: String,
        /// The test message's sender (default postmaster@ the server's host name).
        #[arg(long)]
        sender: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// New-OutboundConnector's parameters. A list is replaced by `--X a,b` ("" clears it); a
/// switch given alone is true.
#[derive(Args)]
pub(super) struct Settings {
    /// ConnectorType: partner (default) or on-premises (your organisation's servers; needed for
    /// --all-accepted-domains).
    #[arg(long, value_name = "partner|on-premises")]
    connector_type: Option<String>,
    /// RecipientDomains: example.com, *.example.com (its subdomains), * (any domain),
    /// comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    recipient_domains: Option<Vec<String>>,
    /// AllAcceptedDomains (on-premises): the recipients of every accepted domain of the
    /// tenant (an internal-relay domain's unknown recipients).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    all_accepted_domains: Option<bool>,
    /// SmartHosts: IPs or host names (a name's MX hosts first, else its A/AAAA), each with an
    /// optional :port ([IPv6]:port), comma-separated; tried round robin from a random start.
    #[arg(long, value_delimiter = ',', value_name = "HOST[:PORT],...")]
    smart_hosts: Option<Vec<String>>,
    /// UseMXRecord: deliver to the recipient domain's MX hosts (the default without smart
    /// hosts; true clears --smart-hosts).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    use_mx_record: Option<bool>,
    /// TlsSettings: encryption-only, certificate-validation, domain-validation (with
    /// --tls-domain); none given: STARTTLS when offered, any certificate ("" clears).
    #[arg(long, value_name = "SETTING")]
    tls_settings: Option<String>,
    /// TlsDomain (domain-validation): the name the certificate must carry, *.example.com
    /// allowed ("" clears).
    #[arg(long, value_name = "NAME")]
    tls_domain: Option<String>,
    /// IsTransportRuleScoped: used only when a transport rule routes to it
    /// (--route-message-outbound-connector).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    is_transport_rule_scoped: Option<bool>,
    /// Enabled. Default true.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
    enabled: Option<bool>,
    /// Comment.
    #[arg(long)]
    comment: Option<String>,
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
        for (key, v) in [
            ("connector_type", self.connector_type),
            ("tls_settings", self.tls_settings),
            ("tls_domain", self.tls_domain),
            ("comment", self.comment),
        ] {
            if let Some(v) = v {
                m.insert(key.into(), json!(v));
            }
        }
        if let Some(v) = self.recipient_domains {
            m.insert("recipient_domains".into(), list(v));
        }
        if let Some(v) = self.smart_hosts {
            m.insert("smart_hosts".into(), list(v));
        }
        for (key, v) in [
            ("all_accepted_domains", self.all_accepted_domains),
            ("use_mx_record", self.use_mx_record),
            ("is_transport_rule_scoped", self.is_transport_rule_scoped),
            ("enabled", self.enabled),
        ] {
            if let Some(v) = v {
                m.insert(key.into(), json!(v));
            }
        }
        m
    }
}

/// The settings `show` prints, in Exchange's order.
const SETTINGS: &[&str] = &[
    "name",
    "connector_type",
    "enabled",
    "recipient_domains",
    "all_accepted_domains",
    "use_mx_record",
    "smart_hosts",
    "tls_settings",
    "tls_domain",
    "is_transport_rule_scoped",
    "comment",
    "created",
    "updated",
];

fn connectors(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/connectors/outbound", enc(tenant))
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

pub(super) fn run(c: &Client, cmd: OutboundCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        OutboundCmd::List { tenant, json } => {
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
                    let domains = if r["all_accepted_domains"] == json!(true) {
                        "(all accepted domains)".to_string()
                    } else {
                        joined(&r["recipient_domains"])
                    };
                    let to = if r["use_mx_record"] == json!(true) {
                        "(MX)".to_string()
                    } else {
                        joined(&r["smart_hosts"])
                    };
                    json!({
                        "name": r["name"],
                        "enabled": r["enabled"],
                        "recipient_domains": domains,
                        "smart_hosts": to,
                        "tls_settings": r["tls_settings"].as_str().unwrap_or("-"),
                        "is_transport_rule_scoped": r["is_transport_rule_scoped"],
                    })
                })
                .collect();
            return print_rows(
                &Value::Array(rows),
                &[
                    "name",
                    "enabled",
                    "recipient_domains",
                    "smart_hosts",
                    "tls_settings",
                    "is_transport_rule_scoped",
                ],
                false,
            );
        }
        OutboundCmd::Show { tenant, name, json } => {
            (c.json("GET", &connector(&tenant, &name), &[], None)?, json)
        }
        OutboundCmd::Add {
            tenant,
            name,
            settings,
            json,
        } => {
            let mut body = settings.body();
            body.insert("name".into(), Value::String(name));
            let v = c.json("POST", &connectors(&tenant), &[], Some(Value::Object(body)))?;
            (v, json)
        }
        OutboundCmd::Set {
            tenant,
            name,
            settings,
            json,
        } => {
            let body = settings.body();
            if body.is_empty() {
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
        OutboundCmd::Remove { tenant, name } => {
            c.json("DELETE", &connector(&tenant, &name), &[], None)?;
            println!("removed outbound connector {name}");
            return Ok(());
        }
        OutboundCmd::Validate {
            tenant,
            name,
            recipient,
            sender,
            json,
        } => {
            let mut body = Map::new();
            body.insert("recipient".into(), json!(recipient));
            if let Some(s) = sender {
                body.insert("sender".into(), json!(s));
            }
            let v = c.json(
                "POST",
                &format!("{}/validate", connector(&tenant, &name)),
                &[],
                Some(Value::Object(body)),
            )?;
            if json {
                print_rows(&v, &[], true)?;
            } else {
                println!(
                    "validating outbound connector {} with a test message to {}",
                    v["connector"].as_str().unwrap_or_default(),
                    v["recipient"].as_str().unwrap_or_default()
                );
                for line in v["transcript"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    println!("{}", line.as_str().unwrap_or_default());
                }
            }
            let summary = v["summary"].as_str().unwrap_or_default().to_string();
            if v["delivered"] == json!(true) {
                if !json {
                    println!("{summary}");
                }
                return Ok(());
            }
            return Err(summary);
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "outbound connector of {}",
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

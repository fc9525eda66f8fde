//! `hato throttle …`: a sending IP's throttle status, the operator's release, tenants'
//! exemption lists.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum ThrottleCmd {
    /// What the throttle knows about a sending IP: throttled or not, by which rule, since and
    /// until when, its probation and (for the operator) the figures the rules read.
    Status {
        ip: String,
        #[arg(long)]
        json: bool,
    },
    /// End an IP's throttle (the operator); the rules stay off for it for
    /// throttle.release_grace_hours.
    Release { ip: String },
    /// The IPs throttled now, the latest throttle first: rule, since, until, strikes.
    List {
        /// 1-1000.
        #[arg(long, default_value_t = 1)]
        page: u32,
        /// 1-1000.
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[arg(long)]
        json: bool,
    },
    /// A tenant's exemption list: IPs and networks (IPv4 /24-/32, IPv6 /48-/128) never
    /// throttled, such as its on-premises servers.
    #[command(subcommand)]
    Exempt(ExemptCmd),
}

#[derive(Subcommand)]
pub(super) enum ExemptCmd {
    Add {
        /// IP address or CIDR network.
        network: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    Remove {
        network: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: ThrottleCmd) -> Result<(), String> {
    match cmd {
        ThrottleCmd::Status { ip, json } => {
            let v = c.json("GET", &format!("/api/v1/throttle/{}", enc(&ip)), &[], None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", status_text(&v));
            }
            Ok(())
        }
        ThrottleCmd::Release { ip } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/throttle/{}/release", enc(&ip)),
                &[],
                None,
            )?;
            let resume = text(&v["status"]["release"]["rules_resume"]);
            if v["was_throttled"].as_bool() == Some(true) {
                println!("throttle of {ip} released; the rules apply to it again from {resume}");
            } else {
                println!("{ip} was not throttled; the rules stay off for it until {resume}");
            }
            Ok(())
        }
        ThrottleCmd::List {
            page,
            page_size,
            json,
        } => {
            let q = [
                ("page", page.to_string()),
                ("page_size", page_size.to_string()),
            ];
            let v = c.json("GET", "/api/v1/throttle", &q, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(());
            }
            print_rows(
                &v["throttled"],
                &["ip", "rule", "since", "until", "strikes"],
                false,
            )?;
            let total = v["total"].as_u64().unwrap_or_default();
            let more = if v["more"].as_bool() == Some(true) {
                format!(" (more: --page {})", page.saturating_add(1))
            } else {
                String::new()
            };
            println!("{total} throttled{more}");
            Ok(())
        }
        ThrottleCmd::Exempt(ExemptCmd::Add { network, tenant }) => {
            let mut body = json!({ "network": network });
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            let v = c.json("POST", "/api/v1/throttle/exemptions", &[], Some(body))?;
            println!(
                "{} exempted from throttling for tenant {}",
                text(&v["network"]),
                text(&v["tenant"])
            );
            Ok(())
        }
        ThrottleCmd::Exempt(ExemptCmd::Remove { network, tenant }) => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            c.json(
                "DELETE",
                &format!("/api/v1/throttle/exemptions/{}", enc(&network)),
                &q,
                None,
            )?;
            println!("{network} no longer exempted");
            Ok(())
        }
        ThrottleCmd::Exempt(ExemptCmd::List { tenant, json }) => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let v = c.json("GET", "/api/v1/throttle/exemptions", &q, None)?;
            print_rows(&v, &["tenant", "network", "created", "connector"], json)
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Thousandths as a percentage with one decimal.
fn percent(v: &Value) -> String {
    let p = v.as_u64().unwrap_or_default();
    format!("{}.{}%", p / 10, p % 10)
}

/// The status as lines of `name: value`.
fn status_text(v: &Value) -> String {
    let mut out = Vec::new();
    let mut line =
        |name: &str, value: String| out.push(format!("{:<20}{value}", format!("{name}:")));
    line(
        "ip",
        format!("{} (tracked as {})", text(&v["ip"]), text(&v["key"])),
    );
    let t = &v["throttle"];
    if v["throttled"].as_bool() == Some(true) {
        line(
            "throttled",
            format!(
                "yes, by {} since {} until {} (strike {})",
                text(&t["rule"]),
                text(&t["since"]),
                text(&t["until"]),
                text(&t["strikes"])
            ),
        );
        line(
            "rule",
            format!("{}: {}", text(&t["rule"]), text(&t["meaning"])),
        );
        if !t["value"].is_null() {
            line(
                "fired on",
                format!(
                    "{} {} > limit {}",
                    text(&t["figure"]),
                    text(&t["value"]),
                    text(&t["limit"])
                ),
            );
        }
    } else {
        line("throttled", "no".into());
    }
    if v["tracked"].as_bool() == Some(true) {
        line(
            "first seen",
            format!(
                "{}; {} {}",
                text(&v["first_seen"]),
                if v["on_probation"].as_bool() == Some(true) {
                    "on probation until"
                } else {
                    "probation ended"
                },
                text(&v["probation_until"])
            ),
        );
    } else {
        line(
            "first seen",
            "never (on probation from its first connection)".into(),
        );
    }
    if !v["release"].is_null() {
        line(
            "released",
            format!(
                "{}; rules resume {}",
                text(&v["release"]["released"]),
                text(&v["release"]["rules_resume"])
            ),
        );
    }
    if v["exempt_loopback"].as_bool() == Some(true) {
        line(
            "exempt",
            "this host (a loopback client; throttle.exempt_loopback)".to_string(),
        );
    }
    for e in v["exemptions"].as_array().into_iter().flatten() {
        line(
            "exempt",
            format!("tenant {}: {}", text(&e["tenant"]), text(&e["network"])),
        );
    }
    let f = &v["figures"];
    if !f.is_null() {
        line(
            "connections",
            format!(
                "{} in the last minute (limit {})",
                text(&f["connections_last_minute"]),
                text(&f["limit_connections_per_minute"])
            ),
        );
        let hour_limit = match &f["limit_recipients_per_hour"] {
            Value::Null => String::new(),
            l => format!(" (limit {})", text(l)),
        };
        line(
            "recipients",
            format!(
                "{} in the last hour{hour_limit}, {} in the last 24 hours (limit {})",
                text(&f["recipients_last_hour"]),
                text(&f["recipients_last_day"]),
                text(&f["limit_recipients_per_day"])
            ),
        );
        line(
            "history",
            format!(
                "{} recipients a day; {} messages, {} junk ({})",
                text(&f["daily_baseline"]),
                text(&f["messages_history"]),
                text(&f["junk_history"]),
                percent(&f["junk_share_permille"])
            ),
        );
        line(
            "unknown recipients",
            format!(
                "{} in the last hour ({} of its RCPTs)",
                text(&f["unknown_recipients_last_hour"]),
                percent(&f["unknown_recipient_share_permille"])
            ),
        );
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

//! `hato junk-email-configuration show|set ADDRESS`: a mailbox's Safe Senders and Blocked
//! Senders (Exchange's `Get-`/`Set-MailboxJunkEmailConfiguration`). `--trusted-senders-and-domains`
//! and `--blocked-senders-and-domains` replace a whole list (`''` clears it), as Exchange's
//! `-TrustedSendersAndDomains a,b`; `--add-trusted`/`--remove-trusted` and
//! `--add-blocked`/`--remove-blocked` are Exchange's `@{Add=...; Remove=...}`.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum JunkEmailCmd {
    /// The mailbox's configuration: enabled, and both lists.
    Show {
        /// The mailbox's address (a user: their own).
        address: String,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Change it; only what is given changes.
    Set {
        address: String,
        /// Enabled: off, the lists do nothing. Default true.
        #[arg(long, value_name = "true|false")]
        enabled: Option<bool>,
        /// TrustedSendersAndDomains, the whole list ('' clears it): addresses or domains.
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        trusted_senders_and_domains: Option<Vec<String>>,
        /// BlockedSendersAndDomains, the whole list ('' clears it).
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        blocked_senders_and_domains: Option<Vec<String>>,
        /// Add to TrustedSendersAndDomains (@{Add=...}).
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        add_trusted: Vec<String>,
        /// Remove from TrustedSendersAndDomains (@{Remove=...}).
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        remove_trusted: Vec<String>,
        /// Add to BlockedSendersAndDomains.
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        add_blocked: Vec<String>,
        /// Remove from BlockedSendersAndDomains.
        #[arg(long, value_delimiter = ',', value_name = "A,D,...")]
        remove_blocked: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn path(address: &str) -> String {
    format!(
        "/api/v1/mailboxes/{}/junk-email-configuration",
        enc(address)
    )
}

/// A whole list as given: `''` (one empty value) is the empty list.
fn whole(v: Vec<String>) -> Vec<String> {
    v.into_iter().filter(|e| !e.trim().is_empty()).collect()
}

pub(super) fn run(c: &Client, cmd: JunkEmailCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        JunkEmailCmd::Show { address, json } => (c.json("GET", &path(&address), &[], None)?, json),
        JunkEmailCmd::Set {
            address,
            enabled,
            trusted_senders_and_domains,
            blocked_senders_and_domains,
            add_trusted,
            remove_trusted,
            add_blocked,
            remove_blocked,
            json,
        } => {
            let mut body = Map::new();
            if let Some(e) = enabled {
                body.insert("enabled".into(), json!(e));
            }
            if let Some(t) = trusted_senders_and_domains {
                body.insert("trusted_senders_and_domains".into(), json!(whole(t)));
            }
            if let Some(b) = blocked_senders_and_domains {
                body.insert("blocked_senders_and_domains".into(), json!(whole(b)));
            }
            for (name, list) in [
                ("add_trusted", add_trusted),
                ("remove_trusted", remove_trusted),
                ("add_blocked", add_blocked),
                ("remove_blocked", remove_blocked),
            ] {
                if !list.is_empty() {
                    body.insert(name.into(), json!(list));
                }
            }
            if body.is_empty() {
                return Err(
                    "nothing to change: give --enabled, a list, or --add-/--remove- entries".into(),
                );
            }
            (
                c.json("PATCH", &path(&address), &[], Some(Value::Object(body)))?,
                json,
            )
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "junk email configuration of {}",
        v["identity"].as_str().unwrap_or_default()
    );
    println!("enabled: {}", v["enabled"].as_bool().unwrap_or_default());
    for (label, key) in [
        ("trusted-senders-and-domains", "trusted_senders_and_domains"),
        ("blocked-senders-and-domains", "blocked_senders_and_domains"),
    ] {
        let entries: Vec<&str> = v[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!("{label} ({}):", entries.len());
        for e in entries {
            println!("  {e}");
        }
    }
    Ok(())
}

//! `hato blocklist …`: the provider's block list (operator only).

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum BlocklistCmd {
    /// List an IP address or network: its clients are refused with 550 5.7.606.
    Add {
        /// One IPv4 or IPv6 address, or a network in CIDR form (at most a /8, or /16 for IPv6).
        entry: String,
        /// Why (for the operator and the connection log; never shown to the client).
        #[arg(long)]
        reason: String,
        /// How long it stays listed: 7d, 12h, 30m. Default: until removed.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// The entries in force.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an entry (as listed).
    Remove { entry: String },
    /// The requests made on the delist page, newest first (kept 90 days), with their status;
    /// `hato delist` filters them and decides the pending ones.
    Requests {
        /// How many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

/// `expires` as the table shows it: `never` for an entry without one.
fn with_never(mut v: Value) -> Value {
    if let Some(rows) = v.as_array_mut() {
        for row in rows {
            if row["expires"].is_null() {
                row["expires"] = json!("never");
            }
        }
    }
    v
}

pub(super) fn run(c: &Client, cmd: BlocklistCmd) -> Result<(), String> {
    match cmd {
        BlocklistCmd::Add {
            entry,
            reason,
            expires,
        } => {
            let mut body = json!({ "entry": entry, "reason": reason });
            if let Some(e) = expires {
                body["expires_in"] = json!(e);
            }
            let v = c.json("POST", "/api/v1/blocklist", &[], Some(body))?;
            println!(
                "{} added to the block list, until {}",
                v["entry"].as_str().unwrap_or(""),
                v["expires"].as_str().unwrap_or("removed")
            );
            Ok(())
        }
        BlocklistCmd::List { json } => {
            let v = c.json("GET", "/api/v1/blocklist", &[], None)?;
            let v = if json { v } else { with_never(v) };
            print_rows(
                &v,
                &["entry", "expires", "added", "added_by", "reason"],
                json,
            )
        }
        BlocklistCmd::Remove { entry } => {
            c.json(
                "DELETE",
                &format!("/api/v1/blocklist/{}", enc(&entry)),
                &[],
                None,
            )?;
            println!("{entry} removed from the block list");
            Ok(())
        }
        BlocklistCmd::Requests { limit, json } => {
            let v = c.json(
                "GET",
                "/api/v1/blocklist/requests",
                &[("limit", limit.to_string())],
                None,
            )?;
            print_rows(
                &v,
                &[
                    "id",
                    "requested",
                    "ip",
                    "address",
                    "client_ip",
                    "outcome",
                    "entry",
                    "confirmed",
                    "status",
                ],
                json,
            )
        }
    }
}

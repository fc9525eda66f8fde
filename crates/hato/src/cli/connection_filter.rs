//! `hato connection-filter …`: a tenant's IP allow and block lists (Exchange's
//! `Get-`/`Set-HostedConnectionFilterPolicy -IPAllowList @{Add=…; Remove=…} -IPBlockList …`).

use super::client::Client;
use super::output::print_rows;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum ConnectionFilterCmd {
    /// The tenant's IP allow list and IP block list.
    Show {
        /// The tenant (the operator names one; a tenant's admin gets its own).
        #[arg(long)]
        tenant: Option<String>,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Add entries to or remove entries from the lists; each flag may be repeated. An entry is
    /// an IPv4 address, a range a-b of at most 256 addresses, a CIDR block /24 to /32, an IPv6
    /// address or CIDR block /48 to /128. An address on both lists is allowed.
    Set {
        #[arg(long)]
        tenant: Option<String>,
        /// Exchange's IPAllowList @{Add=…}: let these clients in (spam filtering skipped; the
        /// provider's block list lifted for this tenant).
        #[arg(long = "ip-allow-list-add", value_name = "ENTRY")]
        ip_allow_list_add: Vec<String>,
        #[arg(long = "ip-allow-list-remove", value_name = "ENTRY")]
        ip_allow_list_remove: Vec<String>,
        /// Exchange's IPBlockList @{Add=…}: refuse these clients (550 5.7.513).
        #[arg(long = "ip-block-list-add", value_name = "ENTRY")]
        ip_block_list_add: Vec<String>,
        #[arg(long = "ip-block-list-remove", value_name = "ENTRY")]
        ip_block_list_remove: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: ConnectionFilterCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        ConnectionFilterCmd::Show { tenant, json } => {
            let q = query(&tenant);
            (c.json("GET", "/api/v1/connection-filter", &q, None)?, json)
        }
        ConnectionFilterCmd::Set {
            tenant,
            ip_allow_list_add,
            ip_allow_list_remove,
            ip_block_list_add,
            ip_block_list_remove,
            json,
        } => {
            if ip_allow_list_add.is_empty()
                && ip_allow_list_remove.is_empty()
                && ip_block_list_add.is_empty()
                && ip_block_list_remove.is_empty()
            {
                return Err(
                    "nothing to change: give --ip-allow-list-add, --ip-allow-list-remove, \
                            --ip-block-list-add or --ip-block-list-remove"
                        .into(),
                );
            }
            let body = json!({
                "ip_allow_list": { "add": ip_allow_list_add, "remove": ip_allow_list_remove },
                "ip_block_list": { "add": ip_block_list_add, "remove": ip_block_list_remove },
            });
            let q = query(&tenant);
            let v = c.json("PATCH", "/api/v1/connection-filter", &q, Some(body))?;
            (v, json)
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    let mut rows = Vec::new();
    for (field, list) in [
        ("ip_allow_list", "IPAllowList"),
        ("ip_block_list", "IPBlockList"),
    ] {
        for entry in v[field].as_array().map(Vec::as_slice).unwrap_or_default() {
            rows.push(json!({ "list": list, "entry": entry }));
        }
    }
    println!(
        "connection filter policy of {}",
        v["tenant"].as_str().unwrap_or_default()
    );
    print_rows(&Value::Array(rows), &["list", "entry"], false)
}

fn query(tenant: &Option<String>) -> Vec<(&'static str, String)> {
    tenant.iter().map(|t| ("tenant", t.clone())).collect()
}

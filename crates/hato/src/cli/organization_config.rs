//! `hato organization-config show|set --tenant T`: a tenant's organisation-wide settings
//! (Exchange's `Get-`/`Set-OrganizationConfig`); `--reject-direct-send` (RejectDirectSend,
//! default false) so far.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(super) enum OrganizationConfigCmd {
    /// The tenant's settings.
    Show {
        #[arg(long)]
        tenant: String,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Change settings; only those given change.
    Set {
        #[arg(long)]
        tenant: String,
        /// RejectDirectSend: refuse anonymous mail claiming one of the tenant's accepted
        /// domains from a client no inbound connector of the tenant matches (550 5.7.68).
        /// Default false.
        #[arg(long, value_name = "true|false")]
        reject_direct_send: Option<bool>,
        #[arg(long)]
        json: bool,
    },
}

fn path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/organization-config", enc(tenant))
}

pub(super) fn run(c: &Client, cmd: OrganizationConfigCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        OrganizationConfigCmd::Show { tenant, json } => {
            (c.json("GET", &path(&tenant), &[], None)?, json)
        }
        OrganizationConfigCmd::Set {
            tenant,
            reject_direct_send,
            json,
        } => {
            let Some(reject) = reject_direct_send else {
                return Err("nothing to change: give --reject-direct-send true|false".into());
            };
            let body = json!({ "reject_direct_send": reject });
            (c.json("PATCH", &path(&tenant), &[], Some(body))?, json)
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "organization config of {}",
        v["tenant"].as_str().unwrap_or_default()
    );
    println!(
        "reject-direct-send: {}",
        v["reject_direct_send"].as_bool().unwrap_or_default()
    );
    Ok(())
}

//! `hato token …`

use super::client::Client;
use super::output::enc;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(super) enum TokenCmd {
    /// Create an admin token for a tenant and print it.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["global-admin", "recipient-admin"])]
        role: Option<String>,
    },
}

pub(super) fn run(c: &Client, cmd: TokenCmd) -> Result<(), String> {
    match cmd {
        TokenCmd::Create { tenant, role } => {
            let body = match role {
                Some(r) => json!({ "role": r }),
                None => json!({}),
            };
            let v = c.json(
                "POST",
                &format!("/api/v1/tenants/{}/tokens", enc(&tenant)),
                &[],
                Some(body),
            )?;
            println!("{}", v["token"].as_str().unwrap_or_default());
            Ok(())
        }
    }
}

//! `hato tenant …`

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(super) enum TenantCmd {
    Add {
        name: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
}

pub(super) fn run(c: &Client, cmd: TenantCmd) -> Result<(), String> {
    match cmd {
        TenantCmd::Add { name } => {
            c.json(
                "POST",
                "/api/v1/tenants",
                &[],
                Some(json!({ "name": name })),
            )?;
            println!("tenant {name} added");
            Ok(())
        }
        TenantCmd::List { json } => {
            let v = c.json("GET", "/api/v1/tenants", &[], None)?;
            print_rows(&v, &["name"], json)
        }
        TenantCmd::Remove { name } => {
            c.json(
                "DELETE",
                &format!("/api/v1/tenants/{}", enc(&name)),
                &[],
                None,
            )?;
            println!("tenant {name} removed");
            Ok(())
        }
    }
}

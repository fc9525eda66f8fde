//! `hato domain …`

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(super) enum DomainCmd {
    Add {
        domain: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long = "type", value_parser = ["authoritative", "internal-relay"])]
        domain_type: Option<String>,
    },
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        domain: String,
    },
}

pub(super) fn run(c: &Client, cmd: DomainCmd) -> Result<(), String> {
    match cmd {
        DomainCmd::Add {
            domain,
            tenant,
            domain_type,
        } => {
            let mut body = json!({ "domain": domain });
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            if let Some(t) = domain_type {
                body["type"] = json!(t);
            }
            let v = c.json("POST", "/api/v1/domains", &[], Some(body))?;
            println!(
                "domain {} added to tenant {} ({})",
                v["domain"].as_str().unwrap_or(""),
                v["tenant"].as_str().unwrap_or(""),
                v["type"].as_str().unwrap_or("")
            );
            Ok(())
        }
        DomainCmd::List { tenant, json } => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let v = c.json("GET", "/api/v1/domains", &q, None)?;
            print_rows(&v, &["domain", "tenant", "type"], json)
        }
        DomainCmd::Remove { domain } => {
            c.json(
                "DELETE",
                &format!("/api/v1/domains/{}", enc(&domain)),
                &[],
                None,
            )?;
            println!("domain {domain} removed");
            Ok(())
        }
    }
}

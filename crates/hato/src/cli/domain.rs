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
    /// One domain, with its status and verification record.
    Show {
        domain: String,
        #[arg(long)]
        json: bool,
    },
    /// Looks for the domain's verification record in the DNS now; verified, its mail is taken.
    Verify {
        domain: String,
    },
    Remove {
        domain: String,
    },
}

/// What to do about a domain still pending, for people.
fn pending_help(v: &serde_json::Value) -> String {
    let domain = v["domain"].as_str().unwrap_or("");
    format!(
        "pending verification: mail for it is refused until you publish the DNS TXT record\n  \
         {domain}. TXT \"{}\"\nand run `hato domain verify {domain}`",
        v["verification_record"].as_str().unwrap_or("")
    )
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
            if v["status"].as_str() == Some("pending") {
                println!("{}", pending_help(&v));
            }
            Ok(())
        }
        DomainCmd::List { tenant, json } => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let v = c.json("GET", "/api/v1/domains", &q, None)?;
            print_rows(
                &v,
                &["domain", "tenant", "type", "status", "verification_record"],
                json,
            )
        }
        DomainCmd::Show { domain, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/domains/{}", enc(&domain)),
                &[],
                None,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(());
            }
            for key in ["domain", "tenant", "type", "status", "verification_record"] {
                println!("{key}: {}", v[key].as_str().unwrap_or(""));
            }
            if v["status"].as_str() == Some("pending") {
                println!("{}", pending_help(&v));
            }
            Ok(())
        }
        DomainCmd::Verify { domain } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/domains/{}/verify", enc(&domain)),
                &[],
                None,
            )?;
            println!(
                "domain {} verified: mail for it is accepted",
                v["domain"].as_str().unwrap_or("")
            );
            Ok(())
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

//! `hato contact …`

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum ContactCmd {
    Add {
        address: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        company: Option<String>,
        #[arg(long)]
        office: Option<String>,
        #[arg(long)]
        city: Option<String>,
        #[arg(long)]
        title: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        address: String,
    },
}

pub(super) fn run(c: &Client, cmd: ContactCmd) -> Result<(), String> {
    match cmd {
        ContactCmd::Add {
            address,
            name,
            tenant,
            department,
            company,
            office,
            city,
            title,
        } => {
            let mut body = json!({ "address": address });
            for (k, v) in [
                ("name", name),
                ("tenant", tenant),
                ("department", department),
                ("company", company),
                ("office", office),
                ("city", city),
                ("title", title),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            c.json("POST", "/api/v1/contacts", &[], Some(body))?;
            println!("contact {address} added");
            Ok(())
        }
        ContactCmd::List { json } => {
            let v = c.json("GET", "/api/v1/contacts", &[], None)?;
            print_rows(&v, &["address", "name", "department", "company"], json)
        }
        ContactCmd::Remove { address } => {
            c.json(
                "DELETE",
                &format!("/api/v1/contacts/{}", enc(&address)),
                &[],
                None,
            )?;
            println!("contact {address} removed");
            Ok(())
        }
    }
}

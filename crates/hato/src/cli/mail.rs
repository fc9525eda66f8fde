//! `hato mail …`

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand)]
pub(super) enum MailCmd {
    /// Messages in a mailbox, newest first.
    List {
        address: String,
        #[arg(long, value_parser = ["inbox", "junk"])]
        folder: Option<String>,
        /// At most this many messages (newest first).
        #[arg(long)]
        limit: Option<usize>,
        /// Skip this many of the newest messages first.
        #[arg(long)]
        offset: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The raw RFC 5322 message.
    Show { address: String, id: String },
    /// Move a message between Inbox and Junk Email: out of Junk Email it is reported as not
    /// junk, into it as junk.
    Move {
        address: String,
        id: String,
        #[arg(long, value_parser = ["inbox", "junk"])]
        folder: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: MailCmd) -> Result<(), String> {
    match cmd {
        MailCmd::List {
            address,
            folder,
            limit,
            offset,
            json,
        } => {
            let mut q: Vec<(&str, String)> = folder.map(|f| ("folder", f)).into_iter().collect();
            q.extend(limit.map(|l| ("limit", l.to_string())));
            q.extend(offset.map(|o| ("offset", o.to_string())));
            let v = c.json(
                "GET",
                &format!("/api/v1/mailboxes/{}/messages", enc(&address)),
                &q,
                None,
            )?;
            print_rows(
                &v,
                &["id", "received", "from", "subject", "size", "folder"],
                json,
            )
        }
        MailCmd::Show { address, id } => {
            let r = c.request(
                "GET",
                &format!(
                    "/api/v1/mailboxes/{}/messages/{}/raw",
                    enc(&address),
                    enc(&id)
                ),
                &[],
                None,
            )?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)
                .map_err(|e| e.to_string())?;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| e.to_string())
        }
        MailCmd::Move {
            address,
            id,
            folder,
            json,
        } => {
            let v = c.json(
                "POST",
                &format!(
                    "/api/v1/mailboxes/{}/messages/{}/move",
                    enc(&address),
                    enc(&id)
                ),
                &[],
                Some(serde_json::json!({ "folder": folder })),
            )?;
            if json {
                return print_rows(&v, &[], true);
            }
            println!("moved message {id} of {address} to {folder}");
            match v["report"]["verdict"].as_str() {
                Some(verdict) => println!("reported as {}", verdict.replace('-', " ")),
                None => println!("no report made"),
            }
            Ok(())
        }
    }
}

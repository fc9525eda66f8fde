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
    }
}

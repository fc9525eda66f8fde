//! `hato moderation …`

use super::client::Client;
use super::output::print_rows;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum ModerationCmd {
    /// Messages held for the groups you moderate.
    List {
        #[arg(long)]
        group: Option<String>,
        #[arg(long, value_parser = ["pending", "approved", "rejected", "expired"])]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Approve {
        id: i64,
        /// Approve and stop moderating this sender: the sender joins the group's
        /// bypass_moderation_from (needs the right to change the group's settings).
        #[arg(long)]
        bypass_sender: bool,
    },
    Reject {
        id: i64,
        /// For the sender's NDR; at most 1,000 characters.
        #[arg(long)]
        comment: Option<String>,
    },
}

pub(super) fn run(c: &Client, cmd: ModerationCmd) -> Result<(), String> {
    match cmd {
        ModerationCmd::List { group, state, json } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(g) = group {
                q.push(("group", g));
            }
            if let Some(s) = state {
                q.push(("state", s));
            }
            let v = c.json("GET", "/api/v1/moderation", &q, None)?;
            print_rows(
                &v,
                &["id", "group", "sender", "subject", "state", "expires"],
                json,
            )
        }
        ModerationCmd::Approve { id, bypass_sender } => {
            c.json(
                "POST",
                &format!("/api/v1/moderation/{id}/approve"),
                &[],
                Some(json!({ "bypass_sender": bypass_sender })),
            )?;
            if bypass_sender {
                println!("message {id} approved; its sender is no longer moderated");
            } else {
                println!("message {id} approved");
            }
            Ok(())
        }
        ModerationCmd::Reject { id, comment } => {
            c.json(
                "POST",
                &format!("/api/v1/moderation/{id}/reject"),
                &[],
                Some(json!({ "comment": comment.unwrap_or_default() })),
            )?;
            println!("message {id} rejected");
            Ok(())
        }
    }
}

//! `hato delist …`: the requests made on the delist page and the operator's decision on each
//! pending one (operator only): approve (the block list entry is removed at once) or deny (it
//! stays, and the request's confirmation link removes nothing). A request is decided once.

use super::client::Client;
use super::output::print_rows;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum DelistCmd {
    /// The requests, newest first, with their status (pending, approved, denied, closed).
    List {
        /// Only the requests in this state: pending, approved, denied or closed.
        #[arg(long)]
        status: Option<String>,
        /// How many a page (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The page (1 first: the newest).
        #[arg(long, default_value_t = 1)]
        page: usize,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request: its block list entry is removed at once.
    Approve {
        /// The request's id (`hato delist list`).
        id: i64,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deny a pending request: the entry stays, and the link mailed for it removes nothing.
    Deny {
        /// The request's id (`hato delist list`).
        id: i64,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn decide(
    c: &Client,
    id: i64,
    verb: &str,
    reason: Option<String>,
    json: bool,
) -> Result<(), String> {
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let v = c.json(
        "POST",
        &format!("/api/v1/blocklist/requests/{id}/{verb}"),
        &[],
        Some(body),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let r = &v["request"];
    let ip = r["ip"].as_str().unwrap_or("");
    match (verb, v["removed"].get("entry").and_then(Value::as_str)) {
        ("approve", Some(entry)) => {
            println!("delist request {id} for {ip} approved: {entry} removed from the block list")
        }
        ("approve", None) => println!(
            "delist request {id} for {ip} approved: nothing to remove (the entry had gone already)"
        ),
        _ => println!(
            "delist request {id} for {ip} denied: {} stays on the block list",
            r["entry"].as_str().unwrap_or(ip)
        ),
    }
    Ok(())
}

pub(super) fn run(c: &Client, cmd: DelistCmd) -> Result<(), String> {
    match cmd {
        DelistCmd::List {
            status,
            limit,
            page,
            json,
        } => {
            let mut query = vec![("limit", limit.to_string()), ("page", page.to_string())];
            if let Some(s) = status {
                query.push(("status", s));
            }
            let v = c.json("GET", "/api/v1/blocklist/requests", &query, None)?;
            print_rows(
                &v,
                &[
                    "id",
                    "requested",
                    "ip",
                    "entry",
                    "address",
                    "outcome",
                    "status",
                    "decided_by",
                    "decided",
                    "decision_reason",
                ],
                json,
            )
        }
        DelistCmd::Approve { id, reason, json } => decide(c, id, "approve", reason, json),
        DelistCmd::Deny { id, reason, json } => decide(c, id, "deny", reason, json),
    }
}

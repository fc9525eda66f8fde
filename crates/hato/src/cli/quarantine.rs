//! `hato quarantine …`: messages held in quarantine (Exchange's `Get-QuarantineMessage`,
//! `Preview-QuarantineMessage`, `Release-QuarantineMessage`, `Delete-QuarantineMessage`).
//! Admins see their tenant's items; a user (`--as` a user's token) only their own, never malware.

use super::client::Client;
use super::output::print_rows;
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub(super) enum QuarantineCmd {
    /// Held messages, newest first.
    List {
        /// The tenant (default: your own; every tenant for the operator).
        #[arg(long)]
        tenant: Option<String>,
        /// Only those held for this recipient.
        #[arg(long)]
        recipient: Option<String>,
        /// malware, transport-rule, spam, high-confidence-spam, phish, high-confidence-phish
        /// or bulk.
        #[arg(long)]
        kind: Option<String>,
        /// held, released or deleted (default: all).
        #[arg(long)]
        state: Option<String>,
        /// The release request: pending ("release requested"), approved or denied.
        #[arg(long)]
        request: Option<String>,
        /// One message's copies.
        #[arg(long)]
        trace_id: Option<String>,
        /// 1-1000, default 1.
        #[arg(long)]
        page: Option<u32>,
        /// 1-5000, default 100.
        #[arg(long)]
        page_size: Option<u32>,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// One held message: who, why, by which policy, until when.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Its header fields and plain text (bounded; HTML is never shown, attachments by name).
    Preview {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Deliver it to the recipient's Inbox (once; the stage that held it is not run again).
    Release {
        id: i64,
        /// Release every recipient's held copy of this message (admins).
        #[arg(long)]
        all_recipients: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete it: its content goes, the item stays listed as deleted until it expires.
    Delete {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Ask an admin to release it (a user whose item's quarantine policy grants
    /// request-release); an admin approves with `release` or refuses with `deny-release`.
    RequestRelease {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Deny a user's pending release request (admins); the message stays held.
    DenyRelease {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Put its sender on the recipient's Safe Senders list (the item's quarantine policy must
    /// grant allow-sender); the message stays held.
    AllowSender {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Put its sender on the recipient's Blocked Senders list (the item's quarantine policy
    /// must grant block-sender).
    BlockSender {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

const COLUMNS: [&str; 9] = [
    "id",
    "received",
    "recipient",
    "sender",
    "subject",
    "kind",
    "policy",
    "state",
    "expires",
];

pub(super) fn run(c: &Client, cmd: QuarantineCmd) -> Result<(), String> {
    match cmd {
        QuarantineCmd::List {
            tenant,
            recipient,
            kind,
            state,
            request,
            trace_id,
            page,
            page_size,
            json,
        } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [
                ("tenant", tenant),
                ("recipient", recipient),
                ("kind", kind),
                ("state", state),
                ("request", request),
                ("trace_id", trace_id),
                ("page", page.map(|p| p.to_string())),
                ("page_size", page_size.map(|p| p.to_string())),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let v = c.json("GET", "/api/v1/quarantine", &q, None)?;
            if json {
                return print_rows(&v, &[], true);
            }
            print_rows(&v["items"], &COLUMNS, false)?;
            if v["more"].as_bool() == Some(true) {
                println!(
                    "(more: --page {})",
                    v["page"].as_u64().unwrap_or(1).saturating_add(1)
                );
            }
            Ok(())
        }
        QuarantineCmd::Show { id, json } => {
            let v = c.json("GET", &format!("/api/v1/quarantine/{id}"), &[], None)?;
            item(&v, json)
        }
        QuarantineCmd::Preview { id, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/quarantine/{id}/preview"),
                &[],
                None,
            )?;
            if json {
                return print_rows(&v, &[], true);
            }
            for h in v["headers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!(
                    "{}: {}",
                    h["name"].as_str().unwrap_or_default(),
                    h["value"].as_str().unwrap_or_default()
                );
            }
            println!();
            println!("{}", v["text"].as_str().unwrap_or_default());
            if v["truncated"].as_bool() == Some(true) {
                println!("[text cut at its bound]");
            }
            if v["text_from_html"].as_bool() == Some(true) {
                println!("[the HTML body's text, converted; its markup is not shown]");
            } else if v["has_html"].as_bool() == Some(true) {
                println!("[an HTML body is not shown]");
            }
            for a in v["attachments"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!("[attachment: {}]", a.as_str().unwrap_or_default());
            }
            Ok(())
        }
        QuarantineCmd::Release {
            id,
            all_recipients: true,
            json,
        } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/quarantine/{id}/release-all"),
                &[],
                None,
            )?;
            if json {
                return print_rows(&v, &[], true);
            }
            for r in v["released"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!(
                    "released {} to {}",
                    r["id"],
                    r["recipient"].as_str().unwrap_or_default()
                );
            }
            for r in v["refused"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!(
                    "not released {} to {}: {}",
                    r["id"],
                    r["recipient"].as_str().unwrap_or_default(),
                    r["error"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        QuarantineCmd::Release { id, json, .. } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/quarantine/{id}/release"),
                &[],
                None,
            )?;
            if !json {
                println!(
                    "released {id} to {}",
                    v["recipient"].as_str().unwrap_or_default()
                );
                return Ok(());
            }
            item(&v, json)
        }
        QuarantineCmd::RequestRelease { id, json } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/quarantine/{id}/request-release"),
                &[],
                None,
            )?;
            if !json {
                println!("requested the release of {id}");
                return Ok(());
            }
            item(&v, json)
        }
        QuarantineCmd::AllowSender { id, json } => list_sender(c, id, "allow-sender", json),
        QuarantineCmd::BlockSender { id, json } => list_sender(c, id, "block-sender", json),
        QuarantineCmd::DenyRelease { id, json } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/quarantine/{id}/deny-release"),
                &[],
                None,
            )?;
            if !json {
                println!("denied the release of {id}");
                return Ok(());
            }
            item(&v, json)
        }
        QuarantineCmd::Delete { id, json } => {
            let v = c.json("DELETE", &format!("/api/v1/quarantine/{id}"), &[], None)?;
            if !json {
                println!("deleted {id}");
                return Ok(());
            }
            item(&v, json)
        }
    }
}

fn item(v: &Value, json: bool) -> Result<(), String> {
    if json {
        return print_rows(v, &[], true);
    }
    for key in [
        "id",
        "tenant",
        "trace_id",
        "recipient",
        "sender",
        "from",
        "subject",
        "received",
        "quarantined",
        "expires",
        "kind",
        "policy",
        "quarantine_policy",
        "size",
        "state",
        "decided_by",
        "decided",
        "release_request",
        "requested_by",
        "requested",
        "request_decided_by",
        "request_decided",
    ] {
        let value = match &v[key] {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        println!("{key}: {value}");
    }
    if let Some(text) = v["reason"]["text"].as_str() {
        println!("reason: {text}");
    }
    Ok(())
}

/// `allow-sender` / `block-sender`: the entry added to which list.
fn list_sender(c: &Client, id: i64, action: &str, json: bool) -> Result<(), String> {
    let v = c.json(
        "POST",
        &format!("/api/v1/quarantine/{id}/{action}"),
        &[],
        None,
    )?;
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "added {} to {}'s {}",
        v["entry"].as_str().unwrap_or_default(),
        v["item"]["recipient"].as_str().unwrap_or_default(),
        match v["list"].as_str() {
            Some("trusted_senders_and_domains") => "safe senders (trusted-senders-and-domains)",
            _ => "blocked senders (blocked-senders-and-domains)",
        }
    );
    Ok(())
}

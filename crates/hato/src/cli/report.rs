//! `hato report junk|not-junk TRACE_ID --recipient A`: a user's report of a delivered message
//! (Outlook's Report message), stored for the classifier, recorded on the message's trace and
//! counted against the sending IP's reputation. Users report their own mail, global admins any
//! recipient of their tenant.

use super::client::Client;
use super::output::print_rows;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum ReportCmd {
    /// The message is junk (spam).
    Junk(ReportArgs),
    /// The message is not junk.
    NotJunk(ReportArgs),
}

#[derive(Args)]
pub(super) struct ReportArgs {
    /// The message's trace id (from `hato trace`).
    trace_id: String,
    /// The recipient whose copy is reported.
    #[arg(long)]
    recipient: String,
    /// The tenant (the operator names one; others report in their own).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    json: bool,
}

pub(super) fn run(c: &Client, cmd: ReportCmd) -> Result<(), String> {
    let (verdict, a) = match cmd {
        ReportCmd::Junk(a) => ("junk", a),
        ReportCmd::NotJunk(a) => ("not-junk", a),
    };
    let mut body = json!({
        "trace_id": a.trace_id,
        "recipient": a.recipient,
        "verdict": verdict,
    });
    if let Some(t) = a.tenant {
        body["tenant"] = Value::String(t);
    }
    let v = c.json("POST", "/api/v1/reports", &[], Some(body))?;
    if a.json {
        return print_rows(&v, &[], true);
    }
    let said = if verdict == "junk" {
        "junk"
    } else {
        "not junk"
    };
    if v["recorded"].as_bool() == Some(false) {
        println!(
            "already reported as {said}: message {} to {}",
            v["trace_id"].as_str().unwrap_or_default(),
            v["recipient"].as_str().unwrap_or_default()
        );
    } else {
        println!(
            "reported as {said}: message {} to {}",
            v["trace_id"].as_str().unwrap_or_default(),
            v["recipient"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

//! `hato trace …`

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct TraceArgs {
    #[command(subcommand)]
    detail: Option<TraceSub>,
    #[arg(long)]
    sender: Option<String>,
    #[arg(long)]
    recipient: Option<String>,
    /// Pending, Delivered, Failed, Expanded, Quarantined or FilteredAsSpam.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    message_id: Option<String>,
    #[arg(long)]
    trace_id: Option<String>,
    #[arg(long)]
    from_ip: Option<String>,
    /// Earliest receive time (2026-11-28T21:00:00Z, or 2026-11-28).
    #[arg(long)]
    start: Option<String>,
    #[arg(long)]
    end: Option<String>,
    /// Subject contains this text (or starts with it, with --subject-starts-with).
    #[arg(long)]
    subject: Option<String>,
    #[arg(long)]
    subject_starts_with: bool,
    /// Only this tenant's messages (operator).
    #[arg(long)]
    tenant: Option<String>,
    /// Rows per page, 1 to 5000 (Get-MessageTrace -PageSize).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=5000))]
    page_size: u64,
    /// Which page, 1 to 1000 (Get-MessageTrace -Page).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    page: u64,
    /// The whole answer: {"rows": [...], "page", "page_size", "more"}.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TraceSub {
    /// The events of a message's recipients.
    Detail {
        trace_id: String,
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, args: TraceArgs) -> Result<(), String> {
    match args {
        TraceArgs {
            detail:
                Some(TraceSub::Detail {
                    trace_id,
                    recipient,
                    json,
                }),
            ..
        } => {
            let q: Vec<(&str, String)> = recipient.map(|r| ("recipient", r)).into_iter().collect();
            let v = c.json(
                "GET",
                &format!("/api/v1/trace/{}", enc(&trace_id)),
                &q,
                None,
            )?;
            if json {
                return print_rows(&v, &[], true);
            }
            print_rows(
                &detail_table(&v),
                &[
                    "time",
                    "recipient",
                    "event",
                    "status",
                    "remote_host",
                    "detail",
                    "reason",
                ],
                false,
            )
        }
        t => {
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [
                ("sender", t.sender),
                ("recipient", t.recipient),
                ("status", t.status),
                ("message_id", t.message_id),
                ("trace_id", t.trace_id),
                ("from_ip", t.from_ip),
                ("start", t.start),
                ("end", t.end),
                ("subject", t.subject),
                ("tenant", t.tenant),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if t.subject_starts_with {
                q.push(("subject_filter", "starts_with".into()));
            }
            q.push(("page_size", t.page_size.to_string()));
            q.push(("page", t.page.to_string()));
            let v = c.json("GET", "/api/v1/trace", &q, None)?;
            if t.json {
                return print_rows(&v, &[], true);
            }
            print_rows(
                &v["rows"],
                &[
                    "received",
                    "sender",
                    "recipient",
                    "subject",
                    "status",
                    "trace_id",
                ],
                false,
            )?;
            // On stderr, so that the table on stdout stays only rows.
            match v["more"].as_bool() {
                Some(true) if t.page < 1000 => eprintln!(
                    "more rows follow: run the same command with --page {}",
                    t.page + 1
                ),
                Some(true) => eprintln!(
                    "more rows follow beyond the last page: narrow the search (--start, --end)"
                ),
                _ => {}
            }
            Ok(())
        }
    }
}

/// The trace detail as the table shows it: the reply's code and enhanced code in one column
/// (`554 5.2.2`), the reason on one line (`delivery [mailbox quota]: … (size=…, limit=…)`).
fn detail_table(events: &Value) -> Value {
    let rows = events.as_array().map(Vec::as_slice).unwrap_or_default();
    let rows: Vec<Value> = rows
        .iter()
        .map(|e| {
            let status = [&e["status"], &e["enhanced_status"]]
                .iter()
                .filter_map(|v| match v {
                    Value::Number(n) => Some(n.to_string()),
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ");
            let reason = match &e["reason"] {
                Value::Null => String::new(),
                r => serde_json::from_value::<hato_core::Reason>(r.clone())
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| r.to_string()),
            };
            json!({
                "time": e["time"],
                "recipient": e["recipient"],
                "event": e["event"],
                "status": status,
                "remote_host": e["remote_host"],
                "detail": e["detail"],
                "reason": reason,
            })
        })
        .collect();
    Value::Array(rows)
}

//! `hato queue …`: the recipients waiting in the queue (in the spirit of Exchange's `Get-Queue` /
//! `Get-QueueMessage`), and what an administrator does to them: retry now (`Retry-Queue`,
//! Postfix's `postqueue -i`) or delete (`Remove-Message`, Postfix's `postsuper -d`).

use super::client::Client;
use super::output::print_rows;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum QueueCmd {
    /// The recipients waiting for delivery, oldest message first: attempts, last error, next
    /// attempt, expiry, and the node working on them.
    List {
        #[arg(long)]
        recipient: Option<String>,
        /// The recipients' domain.
        #[arg(long)]
        domain: Option<String>,
        /// Active (a node is working on it), Ready (not attempted yet) or Retry (deferred).
        #[arg(long)]
        status: Option<String>,
        /// One message's recipients.
        #[arg(long)]
        trace_id: Option<String>,
        /// Only this tenant's recipients (operator).
        #[arg(long)]
        tenant: Option<String>,
        /// Rows per page, 1 to 5000.
        #[arg(long, value_name = "N", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(1..=5000))]
        page_size: u64,
        /// Which page, 1 to 1000.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..=1000))]
        page: u64,
        /// The whole answer: {"rows": [...], "page", "page_size", "more"}.
        #[arg(long)]
        json: bool,
    },
    /// One message's recipients waiting in the queue (`list --trace-id`).
    Show {
        trace_id: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Tries a queued message's recipients again now, whatever their back-off.
    Retry {
        trace_id: String,
        /// Only this recipient of the message.
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deletes a queued message's recipients: they fail with `550 4.3.2 QUEUE.Admin`, and the
    /// sender gets an NDR only with --with-ndr (Exchange's `Remove-Message -WithNDR`).
    Delete {
        trace_id: String,
        /// Only this recipient of the message.
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        with_ndr: bool,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: QueueCmd) -> Result<(), String> {
    let (recipient, domain, status, trace_id, tenant, page_size, page, json) = match cmd {
        QueueCmd::List {
            recipient,
            domain,
            status,
            trace_id,
            tenant,
            page_size,
            page,
            json,
        } => (
            recipient, domain, status, trace_id, tenant, page_size, page, json,
        ),
        QueueCmd::Show {
            trace_id,
            tenant,
            json,
        } => (None, None, None, Some(trace_id), tenant, 5000, 1, json),
        QueueCmd::Retry {
            trace_id,
            recipient,
            tenant,
            json,
        } => {
            let body = json!({ "trace_id": trace_id, "recipient": recipient, "tenant": tenant });
            return acted(c, "retry", "retried", body, json);
        }
        QueueCmd::Delete {
            trace_id,
            recipient,
            tenant,
            with_ndr,
            json,
        } => {
            let body = json!({ "trace_id": trace_id, "recipient": recipient, "tenant": tenant,
                               "with_ndr": with_ndr });
            return acted(c, "delete", "deleted", body, json);
        }
    };
    let mut q: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("recipient", recipient),
        ("domain", domain),
        ("status", status),
        ("trace_id", trace_id),
        ("tenant", tenant),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    q.push(("page_size", page_size.to_string()));
    q.push(("page", page.to_string()));
    let v = c.json("GET", "/api/v1/queue", &q, None)?;
    if json {
        return print_rows(&v, &[], true);
    }
    print_rows(
        &table(&v["rows"]),
        &[
            "received",
            "recipient",
            "route",
            "status",
            "attempts",
            "next_attempt",
            "expires",
            "last_error",
            "lease",
            "trace_id",
        ],
        false,
    )?;
    // On stderr, so that the table on stdout stays only rows.
    match v["more"].as_bool() {
        Some(true) if page < 1000 => eprintln!(
            "more rows follow: run the same command with --page {}",
            page + 1
        ),
        Some(true) => eprintln!("more rows follow beyond the last page: narrow the listing"),
        _ => {}
    }
    Ok(())
}

/// `retry` / `delete`, and what it did.
fn acted(c: &Client, action: &str, done: &str, body: Value, json: bool) -> Result<(), String> {
    let v = c.json("POST", &format!("/api/v1/queue/{action}"), &[], Some(body))?;
    if json {
        return print_rows(&v, &[], true);
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!(
        "{done} {} recipient(s) of message {}",
        n("changed"),
        v["trace_id"].as_str().unwrap_or_default()
    );
    if n("busy") > 0 {
        println!(
            "left alone {} recipient(s) being delivered right now or held for moderation",
            n("busy")
        );
    }
    Ok(())
}

/// The rows as the table shows them: the last error as its reply (`451 4.4.4 text`), the lease
/// as `owner until time`.
fn table(rows: &Value) -> Value {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let e = &r["last_error"];
            let last_error = [&e["status"], &e["enhanced_status"], &e["text"]]
                .iter()
                .filter_map(|v| match v {
                    Value::Number(n) => Some(n.to_string()),
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ");
            let lease = match (r["lease_owner"].as_str(), r["lease_until"].as_str()) {
                (Some(owner), Some(until)) => format!("{owner} until {until}"),
                _ => String::new(),
            };
            json!({
                "received": r["received"],
                "recipient": r["recipient"],
                "route": r["route"],
                "status": r["status"],
                "attempts": r["attempts"],
                "next_attempt": r["next_attempt"],
                "expires": r["expires"],
                "last_error": last_error,
                "lease": lease,
                "trace_id": r["trace_id"],
            })
        })
        .collect();
    Value::Array(rows)
}

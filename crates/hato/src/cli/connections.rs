//! `hato connections …`: the connection log, every connection the edge refused, deferred or cut
//! (a tenant's admins see the refusals made on their tenant's policy; the operator all).

use super::client::Client;
use super::output::print_rows;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub(super) struct ConnectionsArgs {
    /// One client's address.
    #[arg(long)]
    ip: Option<String>,
    /// Only refusals made on this tenant's policy (the operator; a tenant's admin gets its own).
    #[arg(long)]
    tenant: Option<String>,
    /// Earliest time (2026-11-28T21:00:00Z, or 2026-11-28).
    #[arg(long)]
    start: Option<String>,
    #[arg(long)]
    end: Option<String>,
    /// Rows per page, 1 to 5000.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=5000))]
    page_size: u64,
    /// Which page, 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    page: u64,
    /// The whole answer: {"rows": [...], "page", "page_size", "more"}, with each row's reason
    /// and notes.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(c: &Client, a: ConnectionsArgs) -> Result<(), String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("ip", a.ip),
        ("tenant", a.tenant),
        ("start", a.start),
        ("end", a.end),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    q.push(("page_size", a.page_size.to_string()));
    q.push(("page", a.page.to_string()));
    let v = c.json("GET", "/api/v1/connections", &q, None)?;
    if a.json {
        return print_rows(&v, &[], true);
    }
    print_rows(
        &table(&v["rows"]),
        &["time", "ip", "helo", "stage", "rule", "tenant", "reply"],
        false,
    )?;
    // On stderr, so that the table on stdout stays only rows.
    match v["more"].as_bool() {
        Some(true) if a.page < 1000 => eprintln!(
            "more rows follow: run the same command with --page {}",
            a.page + 1
        ),
        Some(true) => eprintln!("more rows follow beyond the last page: narrow the listing"),
        _ => {}
    }
    Ok(())
}

/// The rows as the table shows them (the reason and notes are in `--json`).
fn table(rows: &Value) -> Value {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "time": r["time"],
                    "ip": r["ip"],
                    "helo": r["helo"],
                    "stage": r["stage"],
                    "rule": r["rule"],
                    "tenant": r["tenant"],
                    "reply": r["reply"],
                })
            })
            .collect(),
    )
}

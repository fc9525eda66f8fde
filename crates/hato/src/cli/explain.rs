//! `hato explain TRACE_ID`: every decision the stages made about a message, per recipient, with
//! its reasons and figures — what Rspamd's symbol list and Exchange's antispam headers tell,
//! in one place, read from the message trace.

use super::client::Client;
use super::output::enc;
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Args)]
pub(super) struct ExplainArgs {
    /// The message's trace id (`hato trace` shows it; the 250 reply to DATA carries it).
    trace_id: String,
    /// Only this recipient.
    #[arg(long)]
    recipient: Option<String>,
    /// `{"trace_id", "recipients": [{"recipient", "outcome", "decisions": [...]}]}`.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(c: &Client, args: ExplainArgs) -> Result<(), String> {
    let q: Vec<(&str, String)> = args
        .recipient
        .clone()
        .map(|r| ("recipient", r))
        .into_iter()
        .collect();
    let events = c.json(
        "GET",
        &format!("/api/v1/trace/{}", enc(&args.trace_id)),
        &q,
        None,
    )?;
    let explained = explain(&args.trace_id, &events);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&explained).unwrap_or_default()
        );
    } else {
        print!("{}", text(&explained));
    }
    Ok(())
}

/// The trace detail's events grouped by recipient, in order, each with its stage's decision.
fn explain(trace_id: &str, events: &Value) -> Value {
    let mut by_recipient: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events.as_array().map(Vec::as_slice).unwrap_or_default() {
        let recipient = e["recipient"].as_str().unwrap_or_default().to_string();
        let reason = &e["reason"];
        let status = [&e["status"], &e["enhanced_status"]]
            .iter()
            .filter_map(|v| match v {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" ");
        by_recipient.entry(recipient).or_default().push(json!({
            "time": e["time"],
            "event": e["event"],
            "stage": reason["stage"],
            "rule": reason["rule"],
            "reply": status,
            "text": if reason.is_null() { e["detail"].clone() } else { reason["text"].clone() },
            "figures": reason["figures"].as_array().cloned().unwrap_or_default(),
        }));
    }
    let recipients: Vec<Value> = by_recipient
        .into_iter()
        .map(|(recipient, decisions)| {
            let outcome = decisions
                .last()
                .map(|d| d["event"].clone())
                .unwrap_or(Value::Null);
            json!({ "recipient": recipient, "outcome": outcome, "decisions": decisions })
        })
        .collect();
    json!({ "trace_id": trace_id, "recipients": recipients })
}

/// The explanation for people: a block per recipient, a line per decision, a line per figure.
fn text(explained: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "message {}",
        explained["trace_id"].as_str().unwrap_or("")
    );
    let recipients = explained["recipients"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if recipients.is_empty() {
        let _ = writeln!(out, "  (no recipient of this message is visible to you)");
    }
    for r in recipients {
        let _ = writeln!(
            out,
            "\n{}: {}",
            r["recipient"].as_str().unwrap_or(""),
            r["outcome"].as_str().unwrap_or("")
        );
        for d in r["decisions"].as_array().cloned().unwrap_or_default() {
            let stage = d["stage"].as_str().unwrap_or("-");
            let mut head = format!(
                "  {}  {:<13} {}",
                d["time"].as_str().unwrap_or(""),
                d["event"].as_str().unwrap_or(""),
                stage
            );
            if let Some(rule) = d["rule"].as_str() {
                let _ = write!(head, " [{rule}]");
            }
            if let Some(reply) = d["reply"].as_str().filter(|s| !s.is_empty()) {
                let _ = write!(head, " {reply}");
            }
            let _ = writeln!(out, "{head}");
            let _ = writeln!(out, "      {}", d["text"].as_str().unwrap_or(""));
            for f in d["figures"].as_array().cloned().unwrap_or_default() {
                let value = match &f["value"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                let _ = writeln!(
                    out,
                    "      {} = {}",
                    f["name"].as_str().unwrap_or(""),
                    value
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_grouped_per_recipient_with_their_figures() {
        let events = json!([
            {"time": "t1", "recipient": "a@x.test", "event": "Receive", "status": null,
             "enhanced_status": null, "detail": "Received",
             "reason": {"stage": "connection_filter", "text": "IPV:NLI",
                        "figures": [{"name": "ipv", "value": "NLI"}, {"name": "scl", "value": 5}]}},
            {"time": "t1", "recipient": "b@x.test", "event": "Receive", "status": null,
             "enhanced_status": null, "detail": "Received", "reason": null},
            {"time": "t2", "recipient": "a@x.test", "event": "Fail", "status": 554,
             "enhanced_status": "5.2.2", "detail": "mailbox full",
             "reason": {"stage": "delivery", "rule": "mailbox quota", "text": "full"}},
        ]);
        let e = explain("id-1", &events);
        let r = e["recipients"].as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["recipient"], "a@x.test");
        assert_eq!(r[0]["outcome"], "Fail");
        assert_eq!(r[0]["decisions"][1]["reply"], "554 5.2.2");
        assert_eq!(r[1]["decisions"][0]["text"], "Received");
        let t = text(&e);
        assert!(t.contains("a@x.test: Fail"), "{t}");
        assert!(t.contains("Receive       connection_filter\n"), "{t}");
        assert!(t.contains("      ipv = NLI\n      scl = 5\n"), "{t}");
        assert!(
            t.contains("delivery [mailbox quota] 554 5.2.2\n      full\n"),
            "{t}"
        );
    }
}

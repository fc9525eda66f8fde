//! `hato warmup …`: outbound pools' warm-up plans (issue 10 item 9) — set, clear, status.

use super::client::Client;
use super::output::enc;
use clap::Subcommand;
use hato_transport::outbound::warmup::{self, PlanKind};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum WarmupCmd {
    /// Give a pool a warm-up plan: it delivers at most the plan day's allowance of recipients
    /// each UTC day; the rest wait for the next day. 30-day: monthly volume ÷ 30 a day for 30
    /// days; 15-day: ÷ 15 for 15 days; custom: --daily-limits, one per day.
    Set {
        /// The pool (normal, high-risk).
        #[arg(long)]
        pool: String,
        /// 30-day, 15-day or custom.
        #[arg(long)]
        plan: String,
        /// The recipients a month the pool is to carry once warm (30-day, 15-day).
        #[arg(long)]
        monthly_volume: Option<u64>,
        /// One allowance per day, e.g. 50,100,200 (custom).
        #[arg(long)]
        daily_limits: Option<String>,
        /// Day 1 (a date or RFC 3339 time, UTC); default now.
        #[arg(long)]
        start: Option<String>,
    },
    /// Remove a pool's plan: no more pacing.
    Clear {
        #[arg(long)]
        pool: String,
    },
    /// Each pool's plan: day N of M, today's allowance, sent, remaining, deferred by pacing,
    /// throttling back-offs, when the plan completes.
    Status {
        #[arg(long)]
        pool: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: WarmupCmd) -> Result<(), String> {
    match cmd {
        WarmupCmd::Set {
            pool,
            plan,
            monthly_volume,
            daily_limits,
            start,
        } => {
            // Checked here too, so a mistake is named by its flag before anything is sent.
            let kind = PlanKind::parse(&plan)
                .ok_or_else(|| warmup::PlanError::UnknownPlan(plan.clone()).to_string())?;
            warmup::daily_limits(kind, monthly_volume, daily_limits.as_deref())
                .map_err(|e| e.to_string())?;
            let mut body = json!({ "plan": kind.as_str() });
            if let Some(v) = monthly_volume {
                body["monthly_volume"] = json!(v);
            }
            if let Some(v) = daily_limits {
                body["daily_limits"] = json!(v);
            }
            if let Some(v) = start {
                body["start"] = json!(v);
            }
            let v = c.json(
                "PUT",
                &format!("/api/v1/warmup/{}", enc(&pool)),
                &[],
                Some(body),
            )?;
            print!("{}", status_text(&v));
            Ok(())
        }
        WarmupCmd::Clear { pool } => {
            c.json(
                "DELETE",
                &format!("/api/v1/warmup/{}", enc(&pool)),
                &[],
                None,
            )?;
            println!("pool {pool}: warm-up plan removed; no more pacing");
            Ok(())
        }
        WarmupCmd::Status { pool, json } => {
            let v = match &pool {
                Some(p) => Value::Array(vec![c.json(
                    "GET",
                    &format!("/api/v1/warmup/{}", enc(p)),
                    &[],
                    None,
                )?]),
                None => c.json("GET", "/api/v1/warmup", &[], None)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for p in v.as_array().into_iter().flatten() {
                    print!("{}", status_text(p));
                }
            }
            Ok(())
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A pool's status as lines.
fn status_text(v: &Value) -> String {
    let pool = text(&v["pool"]);
    let mut out = String::new();
    let plan = &v["plan"];
    if plan.is_null() {
        out.push_str(&format!("pool {pool}: no warm-up plan\n"));
    } else {
        let volume = match &plan["monthly_volume"] {
            Value::Null => String::new(),
            m => format!(", {m} a month"),
        };
        let standing = match v["state"].as_str() {
            Some("active") => format!("day {} of {}", text(&v["day"]), text(&v["days"])),
            Some("not-started") => format!("starts {}", text(&plan["start"])),
            Some("complete") => "complete".to_string(),
            other => other.unwrap_or("-").to_string(),
        };
        out.push_str(&format!(
            "pool {pool}: plan {}{volume}, {standing}, completes {}\n",
            text(&plan["kind"]),
            text(&v["completes"])
        ));
        if v["state"] == "active" {
            out.push_str(&format!(
                "  today's allowance: {} (plan {}, lowered by {} after throttling)\n",
                text(&v["allowance"]),
                text(&v["daily_limit"]),
                text(&v["reduced"])
            ));
        }
    }
    out.push_str(&format!(
        "  sent today: {}, remaining: {}, deferred by pacing: {}\n",
        text(&v["sent_today"]),
        text(&v["remaining"]),
        text(&v["deferred_today"])
    ));
    out.push_str(&format!(
        "  throttling back-offs today: {}\n",
        text(&v["throttled_today"])
    ));
    for b in v["backoffs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  back-off from {} until {}{} ({} in a row; last: {} from {})\n",
            text(&b["domain"]),
            text(&b["until"]),
            if b["active"] == true {
                " (active)"
            } else {
                " (ended)"
            },
            text(&b["count"]),
            text(&b["last_reply"]),
            text(&b["last_host"])
        ));
    }
    out
}

//! `hato outbound-spam-filter show|set --tenant T` (Exchange's `Get-`/`Set-HostedOutboundSpamFilterPolicy`)
//! and `hato restricted list|remove --tenant T` (`Get-`/`Remove-BlockedSenderAddress`, the
//! "Restricted entities" page).

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum OutboundSpamFilterCmd {
    /// The tenant's policy (Exchange's defaults until changed).
    Show {
        #[arg(long)]
        tenant: String,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Change the policy; only the settings given change.
    Set {
        #[arg(long)]
        tenant: String,
        /// RecipientLimitExternalPerHour: recipients outside the organisation a sender may send
        /// to per hour, 0-10000; 0 (default) = the service default (10,000).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        recipient_limit_external_per_hour: Option<i64>,
        /// RecipientLimitInternalPerHour: recipients inside the organisation per hour, 0-10000.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        recipient_limit_internal_per_hour: Option<i64>,
        /// RecipientLimitPerDay: all recipients per day (UTC), 0-10000.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        recipient_limit_per_day: Option<i64>,
        /// ActionWhenThresholdReached: alert (only), block-user (until an admin unblocks it),
        /// block-user-for-today (default: until the next UTC day).
        #[arg(long, value_parser = ["alert", "block-user", "block-user-for-today"])]
        action_when_threshold_reached: Option<String>,
        /// NotifyOutboundSpam: alerts go to --notify-outbound-spam-recipients too (the tenant's
        /// global admins always get them). Default false.
        #[arg(long, value_name = "true|false")]
        notify_outbound_spam: Option<bool>,
        /// NotifyOutboundSpamRecipients, comma-separated ("" for none).
        #[arg(long, value_name = "ADDRESSES")]
        notify_outbound_spam_recipients: Option<String>,
        /// BccSuspiciousOutboundMail: a copy of each outbound message judged spam goes to
        /// --bcc-suspicious-outbound-additional-recipients. Default false.
        #[arg(long, value_name = "true|false")]
        bcc_suspicious_outbound_mail: Option<bool>,
        /// BccSuspiciousOutboundAdditionalRecipients, comma-separated ("" for none).
        #[arg(long, value_name = "ADDRESSES")]
        bcc_suspicious_outbound_additional_recipients: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(super) enum RestrictedCmd {
    /// The senders restricted from sending now (over the outbound spam policy's limits).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Unblock a restricted sender: it may send again at once.
    Remove {
        sender: String,
        #[arg(long)]
        tenant: String,
    },
}

/// A comma-separated list of addresses as JSON ("" for none).
fn list(text: &str) -> Value {
    json!(
        text.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
    )
}

fn policy_path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/outbound-spam-filter", enc(tenant))
}

fn restricted_path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/restricted-senders", enc(tenant))
}

pub(super) fn run(c: &Client, cmd: OutboundSpamFilterCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        OutboundSpamFilterCmd::Show { tenant, json } => {
            (c.json("GET", &policy_path(&tenant), &[], None)?, json)
        }
        OutboundSpamFilterCmd::Set {
            tenant,
            recipient_limit_external_per_hour,
            recipient_limit_internal_per_hour,
            recipient_limit_per_day,
            action_when_threshold_reached,
            notify_outbound_spam,
            notify_outbound_spam_recipients,
            bcc_suspicious_outbound_mail,
            bcc_suspicious_outbound_additional_recipients,
            json,
        } => {
            let mut body = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.to_string(), v);
                }
            };
            put(
                "recipient_limit_external_per_hour",
                recipient_limit_external_per_hour.map(Value::from),
            );
            put(
                "recipient_limit_internal_per_hour",
                recipient_limit_internal_per_hour.map(Value::from),
            );
            put(
                "recipient_limit_per_day",
                recipient_limit_per_day.map(Value::from),
            );
            put(
                "action_when_threshold_reached",
                action_when_threshold_reached.map(Value::from),
            );
            put(
                "notify_outbound_spam",
                notify_outbound_spam.map(Value::from),
            );
            put(
                "notify_outbound_spam_recipients",
                notify_outbound_spam_recipients.map(|l| list(&l)),
            );
            put(
                "bcc_suspicious_outbound_mail",
                bcc_suspicious_outbound_mail.map(Value::from),
            );
            put(
                "bcc_suspicious_outbound_additional_recipients",
                bcc_suspicious_outbound_additional_recipients.map(|l| list(&l)),
            );
            if body.is_empty() {
                return Err("nothing to change: give at least one setting (see --help)".into());
            }
            (
                c.json(
                    "PATCH",
                    &policy_path(&tenant),
                    &[],
                    Some(Value::Object(body)),
                )?,
                json,
            )
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    let n = |k: &str| v[k].as_u64().unwrap_or_default();
    let eff = &v["effective_limits"];
    let shown = |k: &str, e: &str| {
        let set = n(k);
        let e = eff[e].as_u64().unwrap_or_default();
        if set == 0 {
            format!("0 (the service default: {e})")
        } else {
            set.to_string()
        }
    };
    println!(
        "outbound spam filter policy of {}",
        v["tenant"].as_str().unwrap_or_default()
    );
    println!(
        "recipient-limit-external-per-hour: {}",
        shown("recipient_limit_external_per_hour", "external_per_hour")
    );
    println!(
        "recipient-limit-internal-per-hour: {}",
        shown("recipient_limit_internal_per_hour", "internal_per_hour")
    );
    println!(
        "recipient-limit-per-day: {}",
        shown("recipient_limit_per_day", "per_day")
    );
    println!(
        "action-when-threshold-reached: {}",
        v["action_when_threshold_reached"]
            .as_str()
            .unwrap_or_default()
    );
    println!(
        "notify-outbound-spam: {}",
        v["notify_outbound_spam"].as_bool().unwrap_or_default()
    );
    let joined = |k: &str| -> String {
        v[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
            .join(", ")
    };
    println!(
        "notify-outbound-spam-recipients: {}",
        joined("notify_outbound_spam_recipients")
    );
    println!(
        "bcc-suspicious-outbound-mail: {}",
        v["bcc_suspicious_outbound_mail"]
            .as_bool()
            .unwrap_or_default()
    );
    println!(
        "bcc-suspicious-outbound-additional-recipients: {}",
        joined("bcc_suspicious_outbound_additional_recipients")
    );
    Ok(())
}

pub(super) fn run_restricted(c: &Client, cmd: RestrictedCmd) -> Result<(), String> {
    match cmd {
        RestrictedCmd::List { tenant, json } => {
            let v = c.json("GET", &restricted_path(&tenant), &[], None)?;
            print_rows(
                &v,
                &["sender", "action", "blocked_at", "until", "reason"],
                json,
            )
        }
        RestrictedCmd::Remove { sender, tenant } => {
            c.json(
                "DELETE",
                &format!("{}/{}", restricted_path(&tenant), enc(&sender)),
                &[],
                None,
            )?;
            println!("{sender}: unblocked; it may send again");
            Ok(())
        }
    }
}

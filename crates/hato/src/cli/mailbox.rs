//! `hato mailbox …`, including `hato mailbox permission …`.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Args, Default)]
pub(super) struct MailboxFields {
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    #[arg(long = "type", value_parser = ["user", "shared"])]
    mailbox_type: Option<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    company: Option<String>,
    #[arg(long)]
    office: Option<String>,
    #[arg(long)]
    city: Option<String>,
    #[arg(long = "state")]
    state_or_province: Option<String>,
    #[arg(long = "country")]
    country_or_region: Option<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    custom1: Option<String>,
    #[arg(long)]
    custom2: Option<String>,
    #[arg(long)]
    custom3: Option<String>,
    #[arg(long)]
    custom4: Option<String>,
    #[arg(long)]
    custom5: Option<String>,
    #[arg(long)]
    custom6: Option<String>,
    #[arg(long)]
    custom7: Option<String>,
    #[arg(long)]
    custom8: Option<String>,
    #[arg(long)]
    custom9: Option<String>,
    #[arg(long)]
    custom10: Option<String>,
    #[arg(long)]
    custom11: Option<String>,
    #[arg(long)]
    custom12: Option<String>,
    #[arg(long)]
    custom13: Option<String>,
    #[arg(long)]
    custom14: Option<String>,
    #[arg(long)]
    custom15: Option<String>,
    /// A proxy address (repeat for several). With `set`, replaces the list.
    #[arg(long = "alias", value_name = "ADDRESS")]
    aliases: Vec<String>,
    #[arg(long)]
    quota_mb: Option<u64>,
    /// The password the user logs in with ("" clears it).
    #[arg(long)]
    password: Option<String>,
    /// Turn SMTP AUTH off for this mailbox (`true`) or on again (`false`): Exchange's
    /// `Set-CASMailbox -SmtpClientAuthenticationDisabled`. Default `false`.
    #[arg(long, value_name = "true|false")]
    smtp_client_authentication_disabled: Option<bool>,
}

impl MailboxFields {
    fn to_json(&self, replace_aliases: bool) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_string(), json!(v));
            }
        };
        put("display_name", &self.name);
        put("type", &self.mailbox_type);
        put("department", &self.department);
        put("company", &self.company);
        put("office", &self.office);
        put("city", &self.city);
        put("state_or_province", &self.state_or_province);
        put("country_or_region", &self.country_or_region);
        put("title", &self.title);
        let customs = [
            &self.custom1,
            &self.custom2,
            &self.custom3,
            &self.custom4,
            &self.custom5,
            &self.custom6,
            &self.custom7,
            &self.custom8,
            &self.custom9,
            &self.custom10,
            &self.custom11,
            &self.custom12,
            &self.custom13,
            &self.custom14,
            &self.custom15,
        ];
        for (i, v) in customs.into_iter().enumerate() {
            put(&format!("custom_attribute_{}", i + 1), v);
        }
        if !self.aliases.is_empty() || !replace_aliases {
            m.insert("aliases".into(), json!(self.aliases));
        }
        if let Some(q) = self.quota_mb {
            m.insert("quota_mb".into(), json!(q));
        }
        if let Some(p) = &self.password {
            m.insert("password".into(), json!(p));
        }
        if let Some(d) = self.smtp_client_authentication_disabled {
            m.insert("smtp_client_authentication_disabled".into(), json!(d));
        }
        m
    }
}

#[derive(Subcommand)]
pub(super) enum MailboxCmd {
    Add {
        address: String,
        #[command(flatten)]
        fields: MailboxFields,
    },
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Show {
        address: String,
        #[arg(long)]
        json: bool,
    },
    Set {
        address: String,
        #[command(flatten)]
        fields: MailboxFields,
        /// Exchange's `-GrantSendOnBehalfTo`: let this user or security group send on behalf of
        /// the mailbox (From: the mailbox, Sender: the delegate). Repeat for several; added to
        /// those who have it (`hato mailbox permission remove … --right send-on-behalf` takes
        /// it away).
        #[arg(long = "grant-send-on-behalf-to", value_name = "USER")]
        grant_send_on_behalf_to: Vec<String>,
    },
    Remove {
        address: String,
        /// Make this mailbox an owner of every group the removed one owns (needed when it is
        /// the last owner of a group).
        #[arg(long)]
        transfer_ownership_to: Option<String>,
    },
    /// Mailbox permissions (full-access, send-as, send-on-behalf) for users and security groups.
    #[command(subcommand)]
    Permission(PermissionCmd),
}

#[derive(Subcommand)]
pub(super) enum PermissionCmd {
    /// Grant a user or a security group a right on a mailbox.
    Add {
        mailbox: String,
        #[arg(long)]
        user: String,
        #[arg(long, value_parser = ["full-access", "send-as", "send-on-behalf"])]
        right: String,
    },
    Remove {
        mailbox: String,
        #[arg(long)]
        user: String,
        #[arg(long, value_parser = ["full-access", "send-as", "send-on-behalf"])]
        right: String,
    },
    List {
        mailbox: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(c: &Client, cmd: MailboxCmd) -> Result<(), String> {
    match cmd {
        MailboxCmd::Permission(p) => run_permission(c, p),
        MailboxCmd::Add { address, fields } => {
            let mut body = fields.to_json(false);
            body.insert("address".into(), json!(address));
            let v = c.json("POST", "/api/v1/mailboxes", &[], Some(Value::Object(body)))?;
            println!(
                "mailbox {} added to tenant {}",
                v["address"].as_str().unwrap_or(""),
                v["tenant"].as_str().unwrap_or("")
            );
            Ok(())
        }
        MailboxCmd::List { tenant, json } => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let v = c.json("GET", "/api/v1/mailboxes", &q, None)?;
            print_rows(
                &v,
                &[
                    "address",
                    "display_name",
                    "type",
                    "tenant",
                    "department",
                    "quota_mb",
                    "used_bytes",
                ],
                json,
            )
        }
        MailboxCmd::Show { address, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/mailboxes/{}", enc(&address)),
                &[],
                None,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else if let Value::Object(m) = &v {
                for (k, val) in m {
                    let text = match val {
                        Value::String(s) => s.clone(),
                        Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        other => other.to_string(),
                    };
                    if !text.is_empty() {
                        println!("{k:<20} {text}");
                    }
                }
            }
            Ok(())
        }
        MailboxCmd::Set {
            address,
            fields,
            grant_send_on_behalf_to,
        } => {
            let body = fields.to_json(true);
            if body.is_empty() && grant_send_on_behalf_to.is_empty() {
                return Err(
                    "nothing to change: give at least one field (see hato mailbox set --help)"
                        .into(),
                );
            }
            if !body.is_empty() {
                c.json(
                    "PATCH",
                    &format!("/api/v1/mailboxes/{}", enc(&address)),
                    &[],
                    Some(Value::Object(body)),
                )?;
            }
            for user in grant_send_on_behalf_to {
                c.json(
                    "POST",
                    &format!("/api/v1/mailboxes/{}/permissions", enc(&address)),
                    &[],
                    Some(json!({ "user": user, "right": "send-on-behalf" })),
                )?;
                println!("{user} may send on behalf of {address}");
            }
            println!("mailbox {address} changed");
            Ok(())
        }
        MailboxCmd::Remove {
            address,
            transfer_ownership_to,
        } => {
            let query: Vec<(&str, String)> = transfer_ownership_to
                .map(|to| ("transfer_ownership_to", to))
                .into_iter()
                .collect();
            c.json(
                "DELETE",
                &format!("/api/v1/mailboxes/{}", enc(&address)),
                &query,
                None,
            )?;
            println!("mailbox {address} removed");
            Ok(())
        }
    }
}

fn run_permission(c: &Client, cmd: PermissionCmd) -> Result<(), String> {
    match cmd {
        PermissionCmd::Add {
            mailbox,
            user,
            right,
        } => {
            c.json(
                "POST",
                &format!("/api/v1/mailboxes/{}/permissions", enc(&mailbox)),
                &[],
                Some(json!({ "user": user, "right": right })),
            )?;
            println!("{user} has {right} on {mailbox}");
            Ok(())
        }
        PermissionCmd::Remove {
            mailbox,
            user,
            right,
        } => {
            c.json(
                "DELETE",
                &format!("/api/v1/mailboxes/{}/permissions", enc(&mailbox)),
                &[],
                Some(json!({ "user": user, "right": right })),
            )?;
            println!("{right} of {user} on {mailbox} removed");
            Ok(())
        }
        PermissionCmd::List { mailbox, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/mailboxes/{}/permissions", enc(&mailbox)),
                &[],
                None,
            )?;
            print_rows(&v, &["user", "right"], json)
        }
    }
}

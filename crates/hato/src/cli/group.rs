//! `hato group …`: the same words as the API.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// A value for a yes/no setting.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "$true" => Ok(true),
        "false" | "no" | "off" | "0" | "$false" => Ok(false),
        _ => Err(format!("{s}: use true or false")),
    }
}

/// Settings shared by `group add` and `group set`. A list flag replaces the whole list; give it
/// once with an empty value to clear it.
#[derive(Args, Default)]
pub struct GroupSettingsArgs {
    #[arg(long, value_parser = parse_bool, value_name = "BOOL")]
    require_sender_authentication: Option<bool>,
    #[arg(long, value_name = "RECIPIENT")]
    accept_messages_only_from: Vec<String>,
    #[arg(long, value_name = "RECIPIENT")]
    reject_messages_from: Vec<String>,
    #[arg(long, value_parser = parse_bool, value_name = "BOOL")]
    moderation_enabled: Option<bool>,
    #[arg(long, value_name = "MAILBOX")]
    moderated_by: Vec<String>,
    #[arg(long, value_name = "RECIPIENT")]
    bypass_moderation_from: Vec<String>,
    #[arg(long, value_parser = ["open", "closed", "approval-required"])]
    member_join_restriction: Option<String>,
    #[arg(long, value_parser = ["open", "closed", "approval-required"])]
    member_depart_restriction: Option<String>,
    /// NDRs for members go to the sender (Exchange's ReportToOriginatorEnabled, default true).
    #[arg(long, alias = "report-to-originator", value_parser = parse_bool, value_name = "BOOL")]
    report_to_originator_enabled: Option<bool>,
    /// NDRs for members go to the first owner (ReportToManagerEnabled, default false).
    #[arg(long, value_parser = parse_bool, value_name = "BOOL")]
    report_to_manager_enabled: Option<bool>,
    /// Microsoft 365 groups: only members and owners see the members (creation only).
    #[arg(long, value_parser = parse_bool, value_name = "BOOL")]
    hidden_group_membership_enabled: Option<bool>,
    #[arg(long, value_parser = ["public", "private"])]
    access_type: Option<String>,
    #[arg(long, value_parser = parse_bool, value_name = "BOOL")]
    auto_subscribe_new_members: Option<bool>,
    /// Dynamic groups: an OPATH recipient filter, e.g. "(Department -eq 'Sales') -and (Office -like 'Tokyo*')".
    #[arg(long)]
    filter: Option<String>,
    /// Dynamic groups, precanned form: MailboxUsers, MailContacts, MailGroups, MailUsers, Resources, AllRecipients.
    #[arg(long, value_name = "TYPE")]
    included_recipients: Vec<String>,
    #[arg(long, value_name = "VALUE")]
    conditional_department: Vec<String>,
    #[arg(long, value_name = "VALUE")]
    conditional_company: Vec<String>,
    #[arg(long, value_name = "VALUE")]
    conditional_state_or_province: Vec<String>,
    /// N=VALUE, e.g. 3=Tokyo (repeat for several values or attributes).
    #[arg(long, value_name = "N=VALUE")]
    conditional_custom_attribute: Vec<String>,
}

fn list(v: &[String]) -> Value {
    json!(v.iter().filter(|s| !s.is_empty()).collect::<Vec<_>>())
}

impl GroupSettingsArgs {
    fn to_json(&self) -> Result<Map<String, Value>, String> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(b) = self.require_sender_authentication {
            put("require_sender_authentication", json!(b));
        }
        for (k, v) in [
            ("accept_messages_only_from", &self.accept_messages_only_from),
            ("reject_messages_from", &self.reject_messages_from),
            ("moderated_by", &self.moderated_by),
            ("bypass_moderation_from", &self.bypass_moderation_from),
        ] {
            if !v.is_empty() {
                put(k, list(v));
            }
        }
        if let Some(b) = self.moderation_enabled {
            put("moderation_enabled", json!(b));
        }
        for (k, v) in [
            ("member_join_restriction", &self.member_join_restriction),
            ("member_depart_restriction", &self.member_depart_restriction),
            ("access_type", &self.access_type),
            ("recipient_filter", &self.filter),
        ] {
            if let Some(v) = v {
                put(k, json!(v));
            }
        }
        if let Some(b) = self.report_to_originator_enabled {
            put("report_to_originator_enabled", json!(b));
        }
        if let Some(b) = self.report_to_manager_enabled {
            put("report_to_manager_enabled", json!(b));
        }
        if let Some(b) = self.hidden_group_membership_enabled {
            put("hidden_group_membership_enabled", json!(b));
        }
        if let Some(b) = self.auto_subscribe_new_members {
            put("auto_subscribe_new_members", json!(b));
        }
        if let Some(p) = self.precanned()? {
            put("precanned", p);
        }
        Ok(m)
    }

    fn precanned(&self) -> Result<Option<Value>, String> {
        if self.included_recipients.is_empty()
            && self.conditional_department.is_empty()
            && self.conditional_company.is_empty()
            && self.conditional_state_or_province.is_empty()
            && self.conditional_custom_attribute.is_empty()
        {
            return Ok(None);
        }
        let mut custom: Map<String, Value> = Map::new();
        for c in &self.conditional_custom_attribute {
            let (n, v) = c
                .split_once('=')
                .ok_or_else(|| format!("--conditional-custom-attribute {c}: use N=VALUE"))?;
            let entry = custom
                .entry(n.trim().to_string())
                .or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                a.push(json!(v));
            }
        }
        Ok(Some(json!({
            "included_recipients": self.included_recipients,
            "conditional_department": self.conditional_department,
            "conditional_company": self.conditional_company,
            "conditional_state_or_province": self.conditional_state_or_province,
            "conditional_custom_attributes": custom,
        })))
    }
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group: ADDRESS for mail-enabled types, a NAME for a security group.
    Add {
        ident: String,
        #[arg(long = "type", value_parser = ["distribution", "security", "mail-security", "dynamic", "m365"])]
        group_type: String,
        #[arg(long)]
        tenant: Option<String>,
        /// Display name (default: the address's local part).
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "owner", value_name = "MAILBOX")]
        owners: Vec<String>,
        #[arg(long = "member", value_name = "RECIPIENT")]
        members: Vec<String>,
        #[command(flatten)]
        settings: GroupSettingsArgs,
    },
    /// Change a group's settings.
    Set {
        ident: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: GroupSettingsArgs,
        #[arg(long)]
        bypass_security_group_manager_check: bool,
    },
    Show {
        ident: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        ident: String,
        #[arg(long)]
        bypass_security_group_manager_check: bool,
    },
    /// Members: add, remove, list.
    #[command(subcommand)]
    Members(ListCmd),
    /// Owners: add, remove.
    #[command(subcommand)]
    Owners(ListCmd),
    /// Subscribers of a Microsoft 365 group: add, remove.
    #[command(subcommand)]
    Subscribers(ListCmd),
    /// Join a group (as the logged-in user).
    Join { ident: String },
    /// Leave a group (as the logged-in user).
    Leave { ident: String },
    /// Join and leave requests waiting for an owner.
    #[command(subcommand)]
    Requests(RequestCmd),
    /// Make a security group a role group (its members act as admins), or stop it being one.
    Role {
        ident: String,
        #[arg(value_parser = ["global-admin", "recipient-admin"])]
        role: String,
        #[arg(long)]
        remove: bool,
    },
    /// The recipients a filter matches now.
    Preview {
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        settings: GroupSettingsArgs,
        #[arg(long)]
        json: bool,
    },
    /// A Microsoft 365 group's conversations (or one conversation's messages).
    Conversations {
        ident: String,
        id: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// A Microsoft 365 group's calendar.
    Calendar {
        ident: String,
        #[arg(long)]
        json: bool,
    },
    /// A Microsoft 365 group's files (attachments of its conversations).
    Files {
        ident: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ListCmd {
    Add {
        ident: String,
        #[arg(required = true)]
        recipients: Vec<String>,
        #[arg(long)]
        bypass_security_group_manager_check: bool,
    },
    Remove {
        ident: String,
        #[arg(required = true)]
        recipients: Vec<String>,
        #[arg(long)]
        bypass_security_group_manager_check: bool,
    },
    List {
        ident: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RequestCmd {
    List {
        ident: String,
        #[arg(long)]
        json: bool,
    },
    Approve {
        ident: String,
        id: i64,
    },
    Reject {
        ident: String,
        id: i64,
    },
}

const GROUP_COLUMNS: &[&str] = &["name", "address", "type", "tenant"];

fn show_group(v: &Value, json_out: bool) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    }
    if let Value::Object(m) = v {
        for (k, val) in m {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Null => continue,
                other => other.to_string(),
            };
            println!("{k:<30} {text}");
        }
    }
}

fn list_change(c: &ListCmd) -> (&str, Value) {
    match c {
        ListCmd::Add {
            ident,
            recipients,
            bypass_security_group_manager_check,
        } => (
            ident,
            json!({ "add": recipients, "bypass_security_group_manager_check": bypass_security_group_manager_check }),
        ),
        ListCmd::Remove {
            ident,
            recipients,
            bypass_security_group_manager_check,
        } => (
            ident,
            json!({ "remove": recipients, "bypass_security_group_manager_check": bypass_security_group_manager_check }),
        ),
        ListCmd::List { ident, .. } => (ident, Value::Null),
    }
}

pub(super) fn run(c: &Client, cmd: GroupCmd) -> Result<(), String> {
    match cmd {
        GroupCmd::Add {
            ident,
            group_type,
            tenant,
            name,
            owners,
            members,
            settings,
        } => {
            let mut body = settings.to_json()?;
            body.insert("type".into(), json!(group_type));
            if group_type == "security" {
                body.insert("name".into(), json!(name.unwrap_or(ident)));
            } else {
                body.insert("address".into(), json!(ident));
                if let Some(n) = name {
                    body.insert("name".into(), json!(n));
                }
            }
            if let Some(t) = tenant {
                body.insert("tenant".into(), json!(t));
            }
            if !owners.is_empty() {
                body.insert("owners".into(), json!(owners));
            }
            if !members.is_empty() {
                body.insert("members".into(), json!(members));
            }
            let v = c.json("POST", "/api/v1/groups", &[], Some(Value::Object(body)))?;
            println!(
                "group {} ({}) added",
                v["address"].as_str().or(v["name"].as_str()).unwrap_or(""),
                v["type"].as_str().unwrap_or("")
            );
            Ok(())
        }
        GroupCmd::Set {
            ident,
            name,
            settings,
            bypass_security_group_manager_check,
        } => {
            let mut body = settings.to_json()?;
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if body.is_empty() {
                return Err(
                    "nothing to change: give at least one setting (see hato group set --help)"
                        .into(),
                );
            }
            body.insert(
                "bypass_security_group_manager_check".into(),
                json!(bypass_security_group_manager_check),
            );
            c.json(
                "PATCH",
                &format!("/api/v1/groups/{}", enc(&ident)),
                &[],
                Some(Value::Object(body)),
            )?;
            println!("group {ident} changed");
            Ok(())
        }
        GroupCmd::Show { ident, json } => {
            let v = c.json("GET", &format!("/api/v1/groups/{}", enc(&ident)), &[], None)?;
            show_group(&v, json);
            Ok(())
        }
        GroupCmd::List { tenant, json } => {
            let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let v = c.json("GET", "/api/v1/groups", &q, None)?;
            print_rows(&v, GROUP_COLUMNS, json)
        }
        GroupCmd::Remove {
            ident,
            bypass_security_group_manager_check,
        } => {
            let q: Vec<(&str, String)> = if bypass_security_group_manager_check {
                vec![("bypass_security_group_manager_check", "true".into())]
            } else {
                vec![]
            };
            c.json(
                "DELETE",
                &format!("/api/v1/groups/{}", enc(&ident)),
                &q,
                None,
            )?;
            println!("group {ident} removed");
            Ok(())
        }
        GroupCmd::Members(ListCmd::List { ident, json }) => {
            let v = c.json(
                "GET",
                &format!("/api/v1/groups/{}/members", enc(&ident)),
                &[],
                None,
            )?;
            print_rows(&v, &["address", "kind", "name"], json)
        }
        GroupCmd::Members(l) => {
            let (ident, body) = list_change(&l);
            c.json(
                "POST",
                &format!("/api/v1/groups/{}/members", enc(ident)),
                &[],
                Some(body),
            )?;
            println!("members of {ident} changed");
            Ok(())
        }
        GroupCmd::Owners(ListCmd::List { ident, json })
        | GroupCmd::Subscribers(ListCmd::List { ident, json }) => {
            let v = c.json("GET", &format!("/api/v1/groups/{}", enc(&ident)), &[], None)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "owners": v["owners"], "subscribers": v["subscribers"] })
                    )
                    .unwrap_or_default()
                );
            } else {
                println!("owners: {}", v["owners"]);
                println!("subscribers: {}", v["subscribers"]);
            }
            Ok(())
        }
        GroupCmd::Owners(l) => {
            let (ident, body) = list_change(&l);
            c.json(
                "POST",
                &format!("/api/v1/groups/{}/owners", enc(ident)),
                &[],
                Some(body),
            )?;
            println!("owners of {ident} changed");
            Ok(())
        }
        GroupCmd::Subscribers(l) => {
            let (ident, body) = list_change(&l);
            c.json(
                "POST",
                &format!("/api/v1/groups/{}/subscribers", enc(ident)),
                &[],
                Some(body),
            )?;
            println!("subscribers of {ident} changed");
            Ok(())
        }
        GroupCmd::Join { ident } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/groups/{}/join", enc(&ident)),
                &[],
                Some(json!({})),
            )?;
            println!("{}", v["result"].as_str().unwrap_or(""));
            Ok(())
        }
        GroupCmd::Leave { ident } => {
            let v = c.json(
                "POST",
                &format!("/api/v1/groups/{}/leave", enc(&ident)),
                &[],
                Some(json!({})),
            )?;
            println!("{}", v["result"].as_str().unwrap_or(""));
            Ok(())
        }
        GroupCmd::Requests(RequestCmd::List { ident, json }) => {
            let v = c.json(
                "GET",
                &format!("/api/v1/groups/{}/requests", enc(&ident)),
                &[],
                None,
            )?;
            print_rows(&v, &["id", "mailbox", "kind", "created"], json)
        }
        GroupCmd::Requests(RequestCmd::Approve { ident, id }) => decide(c, &ident, id, "approve"),
        GroupCmd::Requests(RequestCmd::Reject { ident, id }) => decide(c, &ident, id, "reject"),
        GroupCmd::Role {
            ident,
            role,
            remove,
        } => {
            c.json(
                "POST",
                &format!("/api/v1/groups/{}/roles", enc(&ident)),
                &[],
                Some(json!({ "role": role, "assign": !remove })),
            )?;
            println!(
                "{ident}: role {role} {}",
                if remove { "removed" } else { "assigned" }
            );
            Ok(())
        }
        GroupCmd::Preview {
            tenant,
            settings,
            json,
        } => {
            let s = settings.to_json()?;
            let mut body = Map::new();
            if let Some(f) = s.get("recipient_filter") {
                body.insert("filter".into(), f.clone());
            }
            if let Some(p) = s.get("precanned") {
                body.insert("precanned".into(), p.clone());
            }
            if let Some(t) = tenant {
                body.insert("tenant".into(), json!(t));
            }
            let v = c.json(
                "POST",
                "/api/v1/groups/preview",
                &[],
                Some(Value::Object(body)),
            )?;
            print_rows(&v, &["address", "kind", "name"], json)
        }
        GroupCmd::Conversations { ident, id, json } => match id {
            None => {
                let v = c.json(
                    "GET",
                    &format!("/api/v1/groups/{}/conversations", enc(&ident)),
                    &[],
                    None,
                )?;
                print_rows(&v, &["id", "topic", "messages", "last_activity"], json)
            }
            Some(id) => {
                let v = c.json(
                    "GET",
                    &format!("/api/v1/groups/{}/conversations/{id}", enc(&ident)),
                    &[],
                    None,
                )?;
                print_rows(&v, &["id", "received", "from", "subject", "size"], json)
            }
        },
        GroupCmd::Calendar { ident, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/groups/{}/calendar", enc(&ident)),
                &[],
                None,
            )?;
            print_rows(
                &v,
                &["start", "end", "summary", "location", "organizer"],
                json,
            )
        }
        GroupCmd::Files { ident, json } => {
            let v = c.json(
                "GET",
                &format!("/api/v1/groups/{}/files", enc(&ident)),
                &[],
                None,
            )?;
            print_rows(
                &v,
                &["name", "size", "type", "conversation", "download"],
                json,
            )
        }
    }
}

fn decide(c: &Client, ident: &str, id: i64, decision: &str) -> Result<(), String> {
    c.json(
        "POST",
        &format!("/api/v1/groups/{}/requests/{id}/{decision}", enc(ident)),
        &[],
        Some(json!({})),
    )?;
    println!("request {id}: {decision}d");
    Ok(())
}

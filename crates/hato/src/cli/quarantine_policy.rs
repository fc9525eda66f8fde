//! `hato quarantine-policy list|show|add|set|remove --tenant T`: quarantine policies (Exchange's
//! `Get-`/`New-`/`Set-`/`Remove-QuarantinePolicy`): what end users may do with the items a
//! policy governs (`-EndUserQuarantinePermissionsValue`, or the permissions by name) and whether
//! they get quarantine notifications (`-ESNEnabled`). The built-in policies are listed too and
//! cannot be changed.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum QuarantinePolicyCmd {
    /// The tenant's quarantine policies: the built-in ones, then its own.
    List {
        #[arg(long)]
        tenant: String,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// One policy.
    Show {
        name: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// A new custom policy (New-QuarantinePolicy); no permissions unless given.
    Add {
        name: String,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Change a custom policy (Set-QuarantinePolicy); only what is given changes.
    Set {
        name: String,
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom policy (refused while an anti-spam policy names it).
    Remove {
        name: String,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(clap::Args)]
pub(super) struct Settings {
    /// The end-user permissions, comma-separated: view-header, download, allow-sender,
    /// block-sender, request-release, release, preview, delete ("" for none). They replace the
    /// policy's.
    #[arg(long, value_name = "LIST")]
    permissions: Option<String>,
    /// Exchange's EndUserQuarantinePermissionsValue (0-255: 128 view-header … 1 delete; 39 full
    /// access, 43 limited access, 0 no access), instead of --permissions.
    #[arg(long, value_name = "N")]
    end_user_quarantine_permissions_value: Option<u8>,
    /// ESNEnabled: quarantine notifications for the items it governs.
    #[arg(long, value_name = "true|false")]
    esn_enabled: Option<bool>,
}

impl Settings {
    fn body(&self, name: Option<&str>) -> Value {
        let mut m = Map::new();
        if let Some(n) = name {
            m.insert("name".into(), json!(n));
        }
        if let Some(p) = &self.permissions {
            let list: Vec<&str> = p
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            m.insert("permissions".into(), json!(list));
        }
        if let Some(v) = self.end_user_quarantine_permissions_value {
            m.insert("permissions_value".into(), json!(v));
        }
        if let Some(v) = self.esn_enabled {
            m.insert("notifications".into(), json!(v));
        }
        Value::Object(m)
    }
}

fn path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/quarantine-policies", enc(tenant))
}

const COLUMNS: [&str; 5] = [
    "name",
    "permissions",
    "permissions_value",
    "notifications",
    "built_in",
];

fn show(v: &Value, json: bool) -> Result<(), String> {
    if json {
        return print_rows(v, &[], true);
    }
    println!("name: {}", v["name"].as_str().unwrap_or_default());
    let perms: Vec<&str> = v["permissions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    println!("permissions: {}", perms.join(", "));
    println!(
        "end-user-quarantine-permissions-value: {}",
        v["permissions_value"]
    );
    println!("esn-enabled: {}", v["notifications"]);
    println!("built-in: {}", v["built_in"]);
    Ok(())
}

pub(super) fn run(c: &Client, cmd: QuarantinePolicyCmd) -> Result<(), String> {
    match cmd {
        QuarantinePolicyCmd::List { tenant, json } => {
            let mut v = c.json("GET", &path(&tenant), &[], None)?;
            if !json && let Some(rows) = v.as_array_mut() {
                // One cell: the permissions joined.
                for row in rows {
                    let joined = row["permissions"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    row["permissions"] = json!(joined);
                }
            }
            print_rows(&v, &COLUMNS, json)
        }
        QuarantinePolicyCmd::Show { name, tenant, json } => {
            let v = c.json(
                "GET",
                &format!("{}/{}", path(&tenant), enc(&name)),
                &[],
                None,
            )?;
            show(&v, json)
        }
        QuarantinePolicyCmd::Add {
            name,
            tenant,
            settings,
            json,
        } => {
            let v = c.json(
                "POST",
                &path(&tenant),
                &[],
                Some(settings.body(Some(&name))),
            )?;
            show(&v, json)
        }
        QuarantinePolicyCmd::Set {
            name,
            tenant,
            settings,
            json,
        } => {
            let body = settings.body(None);
            if body.as_object().is_some_and(Map::is_empty) {
                return Err("nothing to change: give --permissions, \
                    --end-user-quarantine-permissions-value or --esn-enabled"
                    .into());
            }
            let v = c.json(
                "PATCH",
                &format!("{}/{}", path(&tenant), enc(&name)),
                &[],
                Some(body),
            )?;
            show(&v, json)
        }
        QuarantinePolicyCmd::Remove { name, tenant } => {
            c.json(
                "DELETE",
                &format!("{}/{}", path(&tenant), enc(&name)),
                &[],
                None,
            )?;
            println!("removed quarantine policy {name}");
            Ok(())
        }
    }
}

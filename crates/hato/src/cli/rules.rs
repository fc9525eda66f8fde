//! `hato rule …`: a tenant's transport rules (Exchange's `New-`, `Set-`, `Get-`, `Remove-`,
//! `Enable-`, `Disable-TransportRule`, `Export-`/`Import-TransportRuleCollection`, and the EAC's
//! test). Every flag is a `New-TransportRule` parameter in kebab case, with its default; each
//! condition has its `--except-if-` twin; list flags are repeated (`--from a@x --from b@x`).

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::str::FromStr;

/// A size with Exchange's units: `1048576`, `500KB`, `10MB`, `1GB` (binary multiples, as
/// Exchange's ByteQuantifiedSize).
#[derive(Clone, Copy, Debug)]
pub(super) struct Size(u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u64 = digits
            .parse()
            .map_err(|_| "write a size in bytes or with B, KB, MB or GB (10MB)".to_string())?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            _ => return Err("the unit is B, KB, MB or GB".into()),
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| "the size is too large".into())
    }
}

/// An SCL: −1 (bypass spam filtering) or 0 to 9.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scl(i8);

impl FromStr for Scl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().parse::<i8>() {
            Ok(n) if (-1..=9).contains(&n) => Ok(Scl(n)),
            _ => Err("an SCL is -1 (bypass spam filtering) or 0 to 9".into()),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Scope {
    InOrganization,
    NotInOrganization,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum MessageType {
    Oof,
    AutoForward,
    Encrypted,
    Calendaring,
    PermissionControlled,
    Voicemail,
    Signed,
    ApprovalRequest,
    ReadReceipt,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Mode {
    Enforce,
    Audit,
    AuditAndNotify,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Location {
    Header,
    Envelope,
    HeaderOrEnvelope,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum ErrorAction {
    Ignore,
    Defer,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum DisclaimerLocation {
    Append,
    Prepend,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Fallback {
    Wrap,
    Ignore,
    Reject,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub(super) enum ImportMode {
    /// The tenant's rules become exactly those of the file (Import-TransportRuleCollection).
    #[default]
    Replace,
    /// Each rule of the file replaces the rule of its name or is added.
    Merge,
}

/// A flag's value as the rule's JSON has it.
trait Put {
    fn put(&self, m: &mut Map<String, Value>, key: &str);
}

impl Put for Vec<String> {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        if !self.is_empty() {
            m.insert(key.into(), json!(self));
        }
    }
}

impl Put for Option<String> {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        if let Some(v) = self {
            m.insert(key.into(), json!(v));
        }
    }
}

impl Put for bool {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        if *self {
            m.insert(key.into(), json!(true));
        }
    }
}

impl Put for Option<Size> {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        if let Some(Size(n)) = self {
            m.insert(key.into(), json!(n));
        }
    }
}

impl Put for Option<Scl> {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        if let Some(Scl(n)) = self {
            m.insert(key.into(), json!(n));
        }
    }
}

/// A choice, by its kebab-case name.
fn choice<T: ValueEnum>(v: &T) -> Value {
    v.to_possible_value()
        .map(|p| json!(p.get_name()))
        .unwrap_or(Value::Null)
}

macro_rules! impl_put_enum {
    ($($t:ty),*) => {$(
        impl Put for Option<$t> {
            fn put(&self, m: &mut Map<String, Value>, key: &str) {
                if let Some(v) = self {
                    m.insert(key.into(), choice(v));
                }
            }
        }
    )*};
}
impl_put_enum!(Scope, MessageType, DisclaimerLocation, Fallback);

/// The conditions and their `--except-if-` twins: one list, two flag sets.
macro_rules! conditions {
    ($( $(#[$doc:meta])* $field:ident / $except:ident : $ty:ty ; )*) => {
        /// Conditions (all must match; values within one flag are alternatives).
        #[derive(Args, Default)]
        #[command(next_help_heading = "Conditions")]
        pub(super) struct Conditions {
            $( $(#[$doc])* #[arg(long)] $field: $ty, )*
        }

        /// Exceptions (any one exempts the message).
        #[derive(Args, Default)]
        #[command(next_help_heading = "Exceptions")]
        pub(super) struct Exceptions {
            $( #[arg(long, hide_short_help = true)] $except: $ty, )*
        }

        /// The conditions' names as the rule's JSON has them.
        const CONDITION_FIELDS: &[&str] = &[$(stringify!($field)),*];

        impl Conditions {
            fn to_json(&self) -> Map<String, Value> {
                let mut m = Map::new();
                $( self.$field.put(&mut m, stringify!($field)); )*
                m
            }
        }

        impl Exceptions {
            fn to_json(&self) -> Map<String, Value> {
                let mut m = Map::new();
                $( self.$except.put(&mut m, stringify!($field)); )*
                m
            }
        }
    };
}

conditions! {
    /// The sender is this address.
    from / except_if_from: Vec<String>;
    from_scope / except_if_from_scope: Option<Scope>;
    /// The sender is a member of this group (its address).
    from_member_of / except_if_from_member_of: Vec<String>;
    from_address_contains_words / except_if_from_address_contains_words: Vec<String>;
    from_address_matches_patterns / except_if_from_address_matches_patterns: Vec<String>;
    sender_domain_is / except_if_sender_domain_is: Vec<String>;
    /// An IP address, a range a-b, or a CIDR block.
    sender_ip_ranges / except_if_sender_ip_ranges: Vec<String>;
    /// Attribute:word[,word…], e.g. Department:Sales.
    sender_ad_attribute_contains_words / except_if_sender_ad_attribute_contains_words: Vec<String>;
    sent_to / except_if_sent_to: Vec<String>;
    sent_to_scope / except_if_sent_to_scope: Option<Scope>;
    sent_to_member_of / except_if_sent_to_member_of: Vec<String>;
    recipient_domain_is / except_if_recipient_domain_is: Vec<String>;
    recipient_address_contains_words / except_if_recipient_address_contains_words: Vec<String>;
    any_of_to_cc_header / except_if_any_of_to_cc_header: Vec<String>;
    subject_contains_words / except_if_subject_contains_words: Vec<String>;
    /// A regular expression (Rust regex syntax; at most 128 characters).
    subject_matches_patterns / except_if_subject_matches_patterns: Vec<String>;
    subject_or_body_contains_words / except_if_subject_or_body_contains_words: Vec<String>;
    subject_or_body_matches_patterns / except_if_subject_or_body_matches_patterns: Vec<String>;
    attachment_name_matches_patterns / except_if_attachment_name_matches_patterns: Vec<String>;
    attachment_extension_matches_words / except_if_attachment_extension_matches_words: Vec<String>;
    attachment_contains_words / except_if_attachment_contains_words: Vec<String>;
    attachment_has_executable_content / except_if_attachment_has_executable_content: bool;
    attachment_is_password_protected / except_if_attachment_is_password_protected: bool;
    /// A size: 1048576, 500KB, 10MB.
    attachment_size_over / except_if_attachment_size_over: Option<Size>;
    message_size_over / except_if_message_size_over: Option<Size>;
    /// The header field --header-contains-words looks in.
    header_contains_message_header / except_if_header_contains_message_header: Option<String>;
    header_contains_words / except_if_header_contains_words: Vec<String>;
    header_matches_message_header / except_if_header_matches_message_header: Option<String>;
    header_matches_patterns / except_if_header_matches_patterns: Vec<String>;
    /// The SCL so far is at least this (-1 to 9).
    scl_over / except_if_scl_over: Option<Scl>;
    message_type_matches / except_if_message_type_matches: Option<MessageType>;
}

/// The actions: one struct, one JSON object.
macro_rules! actions {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ; )*) => {
        /// Actions.
        #[derive(Args, Default)]
        #[command(next_help_heading = "Actions")]
        pub(super) struct ActionArgs {
            $( $(#[$doc])* #[arg(long)] $field: $ty, )*
        }

        const ACTION_FIELDS: &[&str] = &[$(stringify!($field)),*];

        impl ActionArgs {
            fn to_json(&self) -> Map<String, Value> {
                let mut m = Map::new();
                $( self.$field.put(&mut m, stringify!($field)); )*
                m
            }
        }
    };
}

actions! {
    /// -1 (bypass spam filtering) or 0 to 9.
    set_scl: Option<Scl>;
    /// Reject with this text (550 5.7.1 unless --reject-message-enhanced-status-code).
    reject_message_reason_text: Option<String>;
    /// 5.7.1 or 5.7.900 to 5.7.999 (text: "Delivery not authorized, message refused").
    reject_message_enhanced_status_code: Option<String>;
    /// Drop the message silently.
    delete_message: bool;
    redirect_message_to: Vec<String>;
    blind_copy_to: Vec<String>;
    add_to_recipients: Vec<String>;
    copy_to: Vec<String>;
    prepend_subject: Option<String>;
    set_header_name: Option<String>;
    set_header_value: Option<String>;
    remove_header: Option<String>;
    apply_html_disclaimer_text: Option<String>;
    /// append (default) or prepend.
    apply_html_disclaimer_location: Option<DisclaimerLocation>;
    /// wrap (default), ignore or reject.
    apply_html_disclaimer_fallback_action: Option<Fallback>;
    /// Hold in quarantine (ends rule processing).
    quarantine: bool;
    route_message_outbound_connector: Option<String>;
    /// Send an incident report to this address.
    generate_incident_report: Option<String>;
}

/// The rule's properties.
#[derive(Args, Default)]
#[command(next_help_heading = "Properties")]
pub(super) struct Properties {
    /// 0 is first; the rules from there on move down (default: last).
    #[arg(long)]
    priority: Option<u32>,
    /// enforce (default), audit (only record what would happen), audit-and-notify.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// The rule applies from then on (2026-12-01, 2026-12-01 09:00 UTC, RFC 3339).
    #[arg(long)]
    activation_date: Option<String>,
    #[arg(long)]
    expiry_date: Option<String>,
    /// Where the sender conditions look: header (default), envelope, header-or-envelope.
    #[arg(long, value_enum)]
    sender_address_location: Option<Location>,
    /// ignore (default: the message goes on) or defer, when the rule cannot be evaluated.
    #[arg(long, value_enum)]
    rule_error_action: Option<ErrorAction>,
    #[arg(long)]
    comments: Option<String>,
    /// Later rules are not evaluated for the recipients this rule matched (true or false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    stop_rule_processing: Option<bool>,
    /// On (default) or off.
    #[arg(long)]
    enabled: Option<bool>,
}

impl Properties {
    fn put(&self, m: &mut Map<String, Value>) {
        if let Some(p) = self.priority {
            m.insert("priority".into(), json!(p));
        }
        let enums = [
            ("mode", self.mode.as_ref().map(choice)),
            (
                "sender_address_location",
                self.sender_address_location.as_ref().map(choice),
            ),
            (
                "rule_error_action",
                self.rule_error_action.as_ref().map(choice),
            ),
        ];
        for (k, v) in enums {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        self.activation_date.put(m, "activation_date");
        self.expiry_date.put(m, "expiry_date");
        self.comments.put(m, "comments");
        if let Some(b) = self.stop_rule_processing {
            m.insert("stop_rule_processing".into(), json!(b));
        }
        if let Some(b) = self.enabled {
            m.insert("enabled".into(), json!(b));
        }
    }
}

#[derive(Subcommand)]
pub(super) enum RuleCmd {
    /// Add a rule (New-TransportRule).
    #[command(allow_negative_numbers = true)]
    Add {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        properties: Properties,
        #[command(flatten)]
        conditions: Conditions,
        #[command(flatten)]
        exceptions: Exceptions,
        #[command(flatten)]
        actions: ActionArgs,
        #[arg(long)]
        json: bool,
    },
    /// Change a rule (Set-TransportRule): the flags given replace the rule's values.
    #[command(allow_negative_numbers = true)]
    Set {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
        /// A new name.
        #[arg(long = "name", value_name = "NEW-NAME")]
        new_name: Option<String>,
        /// Remove a condition, exception (except-if-…), action, or a date or the comments
        /// (repeatable): --clear subject-contains-words.
        #[arg(long, value_name = "FLAG")]
        clear: Vec<String>,
        #[command(flatten)]
        properties: Properties,
        #[command(flatten)]
        conditions: Conditions,
        #[command(flatten)]
        exceptions: Exceptions,
        #[command(flatten)]
        actions: ActionArgs,
        #[arg(long)]
        json: bool,
    },
    /// The tenant's rules in priority order (Get-TransportRule).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One rule, whole.
    Show {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove a rule; the rules after it move up.
    Remove {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Turn a rule on.
    Enable {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Turn a rule off.
    Disable {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Which rules match a message and what would happen, per recipient, without sending it.
    Test {
        #[arg(long)]
        tenant: Option<String>,
        /// The message (.eml).
        #[arg(long)]
        eml: PathBuf,
        /// The envelope sender (MAIL FROM); leave out for <>.
        #[arg(long)]
        from: Option<String>,
        /// A recipient (repeatable).
        #[arg(long, required = true)]
        to: Vec<String>,
        /// The client's IP.
        #[arg(long)]
        ip: Option<String>,
        /// The client authenticated (for --from-scope).
        #[arg(long)]
        authenticated: bool,
        /// The SCL so far (for --scl-over).
        #[arg(long, allow_negative_numbers = true)]
        scl: Option<Scl>,
        #[arg(long)]
        json: bool,
    },
    /// Write all the tenant's rules as one JSON document (Export-TransportRuleCollection):
    /// `hato rule export --tenant T > rules.json`.
    Export {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Import rules from a file `rule export` wrote (Import-TransportRuleCollection); every
    /// rule is checked first, nothing changes if one is bad.
    Import {
        file: PathBuf,
        #[arg(long)]
        tenant: Option<String>,
        /// replace (default): the rules become those of the file; merge: add or replace by name.
        #[arg(long, value_enum, default_value_t)]
        mode: ImportMode,
    },
}

/// The tenant named, else the caller's only one (a tenant admin sees just its own).
fn tenant_name(c: &Client, tenant: Option<String>) -> Result<String, String> {
    if let Some(t) = tenant {
        return Ok(t);
    }
    let all = c.json("GET", "/api/v1/tenants", &[], None)?;
    match all.as_array().map(Vec::as_slice) {
        Some([one]) => Ok(one["name"].as_str().unwrap_or_default().to_string()),
        _ => Err("name the tenant with --tenant".into()),
    }
}

fn base(c: &Client, tenant: Option<String>) -> Result<String, String> {
    Ok(format!(
        "/api/v1/tenants/{}/rules",
        enc(&tenant_name(c, tenant)?)
    ))
}

/// The rule's JSON from the flags given.
fn rule_json(
    properties: &Properties,
    conditions: &Conditions,
    exceptions: &Exceptions,
    actions: &ActionArgs,
) -> Map<String, Value> {
    let mut m = Map::new();
    properties.put(&mut m);
    for (key, section) in [
        ("conditions", conditions.to_json()),
        ("exceptions", exceptions.to_json()),
        ("actions", actions.to_json()),
    ] {
        if !section.is_empty() {
            m.insert(key.into(), Value::Object(section));
        }
    }
    m
}

/// `--clear FLAG` as a merge patch's `null`.
fn clear(patch: &mut Map<String, Value>, flag: &str) -> Result<(), String> {
    let field = flag.trim().trim_start_matches("--").replace('-', "_");
    let (section, name) = if let Some(rest) = field.strip_prefix("except_if_") {
        ("exceptions", rest.to_string())
    } else if CONDITION_FIELDS.contains(&field.as_str()) {
        ("conditions", field.clone())
    } else if ACTION_FIELDS.contains(&field.as_str()) {
        ("actions", field.clone())
    } else if ["activation_date", "expiry_date", "comments"].contains(&field.as_str()) {
        patch.insert(field, Value::Null);
        return Ok(());
    } else {
        return Err(format!(
            "--clear {flag}: not a condition, exception, action, date or the comments"
        ));
    };
    if section == "exceptions" && !CONDITION_FIELDS.contains(&name.as_str()) {
        return Err(format!("--clear {flag}: not an exception"));
    }
    let entry = patch
        .entry(section)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(o) = entry {
        o.insert(name, Value::Null);
    }
    Ok(())
}

fn print_rule(v: &Value, json: bool) -> Result<(), String> {
    if json {
        return print_rows(v, &[], true);
    }
    println!(
        "{} (priority {}, {}, mode {}, {} hits)",
        v["name"].as_str().unwrap_or_default(),
        v["priority"],
        if v["enabled"].as_bool().unwrap_or(false) {
            "enabled"
        } else {
            "disabled"
        },
        v["rule"]["mode"].as_str().unwrap_or("enforce"),
        v["hits"]
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&v["rule"]).unwrap_or_default()
    );
    Ok(())
}

fn switch(c: &Client, name: &str, tenant: Option<String>, how: &str) -> Result<(), String> {
    let path = format!("{}/{}/{how}", base(c, tenant)?, enc(name));
    let v = c.json("POST", &path, &[], None)?;
    println!(
        "rule {} is {}",
        v["name"].as_str().unwrap_or(name),
        if v["enabled"].as_bool().unwrap_or(false) {
            "enabled"
        } else {
            "disabled"
        }
    );
    Ok(())
}

pub(super) fn run(c: &Client, cmd: RuleCmd) -> Result<(), String> {
    match cmd {
        RuleCmd::Add {
            name,
            tenant,
            properties,
            conditions,
            exceptions,
            actions,
            json,
        } => {
            let mut rule = rule_json(&properties, &conditions, &exceptions, &actions);
            rule.insert("name".into(), json!(name));
            let v = c.json("POST", &base(c, tenant)?, &[], Some(Value::Object(rule)))?;
            print_rule(&v, json)
        }
        RuleCmd::Set {
            name,
            tenant,
            new_name,
            clear: cleared,
            properties,
            conditions,
            exceptions,
            actions,
            json,
        } => {
            let mut patch = rule_json(&properties, &conditions, &exceptions, &actions);
            if let Some(n) = new_name {
                patch.insert("name".into(), json!(n));
            }
            for f in &cleared {
                clear(&mut patch, f)?;
            }
            if patch.is_empty() {
                return Err("nothing to change: give the flags to set (or --clear FLAG)".into());
            }
            let path = format!("{}/{}", base(c, tenant)?, enc(&name));
            let v = c.json("PATCH", &path, &[], Some(Value::Object(patch)))?;
            print_rule(&v, json)
        }
        RuleCmd::List { tenant, json } => {
            let v = c.json("GET", &base(c, tenant)?, &[], None)?;
            if json {
                return print_rows(&v, &[], true);
            }
            let rows: Vec<Value> = v
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    json!({
                        "priority": r["priority"],
                        "name": r["name"],
                        "state": if r["enabled"].as_bool().unwrap_or(false) { "enabled" } else { "disabled" },
                        "mode": r["rule"]["mode"],
                        "hits": r["hits"],
                    })
                })
                .collect();
            print_rows(
                &Value::Array(rows),
                &["priority", "name", "state", "mode", "hits"],
                false,
            )
        }
        RuleCmd::Show { name, tenant } => {
            let path = format!("{}/{}", base(c, tenant)?, enc(&name));
            print_rule(&c.json("GET", &path, &[], None)?, false)
        }
        RuleCmd::Remove { name, tenant } => {
            let path = format!("{}/{}", base(c, tenant)?, enc(&name));
            c.json("DELETE", &path, &[], None)?;
            println!("removed rule {name}");
            Ok(())
        }
        RuleCmd::Enable { name, tenant } => switch(c, &name, tenant, "enable"),
        RuleCmd::Disable { name, tenant } => switch(c, &name, tenant, "disable"),
        RuleCmd::Test {
            tenant,
            eml,
            from,
            to,
            ip,
            authenticated,
            scl,
            json,
        } => {
            let content = std::fs::read(&eml)
                .map_err(|e| format!("--eml {}: cannot read it: {e}", eml.display()))?;
            let mut q = vec![("to", to.join(","))];
            if let Some(f) = from {
                q.push(("from", f));
            }
            if let Some(ip) = ip {
                q.push(("ip", ip));
            }
            if authenticated {
                q.push(("authenticated", "true".into()));
            }
            if let Some(Scl(n)) = scl {
                q.push(("scl", n.to_string()));
            }
            let path = format!("{}/test", base(c, tenant)?);
            let v = c.bytes(&path, &q, "message/rfc822", &content)?;
            if json {
                return print_rows(&v, &[], true);
            }
            for line in v["summary"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                println!("{}", line.as_str().unwrap_or_default());
            }
            Ok(())
        }
        RuleCmd::Export { tenant } => {
            let v = c.json("GET", &format!("{}/export", base(c, tenant)?), &[], None)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        RuleCmd::Import { file, tenant, mode } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("{}: cannot read it: {e}", file.display()))?;
            let mut doc: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a rule export (JSON): {e}", file.display()))?;
            let Some(o) = doc.as_object_mut() else {
                return Err(format!(
                    "{}: not a rule export (an object with \"rules\")",
                    file.display()
                ));
            };
            o.insert("mode".into(), choice(&mode));
            let v = c.json(
                "POST",
                &format!("{}/import", base(c, tenant)?),
                &[],
                Some(doc),
            )?;
            let n = v.as_array().map_or(0, Vec::len);
            println!("imported; the tenant has {n} rules");
            Ok(())
        }
    }
}

//! The command line. Every command but `serve` and `init` is a client of the admin API; it finds
//! the API's address and the operator token through the same settings file as the server.

use crate::config::{Config, TEMPLATE};
use crate::serve::{ADMIN_ADDR_FILE, OPERATOR_TOKEN_FILE};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hato",
    version,
    about = "hato: a self-hosted, multi-tenant mail platform"
)]
pub struct Cli {
    /// Settings file (default: ./hato.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A file holding the API token to act with (default: $HATO_TOKEN, else the operator token).
    #[arg(long = "as", global = true, value_name = "TOKEN-FILE")]
    as_token: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per run; boxing the large variants would only add noise.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the server (SMTP, delivery, admin API).
    Serve,
    /// Write a commented ./hato.toml with every setting and its default.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Accepted domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Mailboxes.
    #[command(subcommand)]
    Mailbox(MailboxCmd),
    /// Messages in mailboxes.
    #[command(subcommand)]
    Mail(MailCmd),
    /// Message trace: one row per recipient.
    Trace(TraceArgs),
    /// Groups: distribution, security, mail-security, dynamic, m365.
    #[command(subcommand)]
    Group(crate::cli_groups::GroupCmd),
    /// Mail contacts (outside addresses in the directory).
    #[command(subcommand)]
    Contact(crate::cli_groups::ContactCmd),
    /// Messages held for moderated groups.
    #[command(subcommand)]
    Moderation(crate::cli_groups::ModerationCmd),
    /// Log in as a mailbox user; prints the token (or saves it with --save, mode 0600).
    Login {
        address: String,
        /// Read the password from this file (default: the first line of standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Write the token to this file (use it with --as FILE).
        #[arg(long)]
        save: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TenantCmd {
    Add {
        name: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create an admin token for a tenant and print it.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["global-admin", "recipient-admin"])]
        role: Option<String>,
    },
}

#[derive(Subcommand)]
enum DomainCmd {
    Add {
        domain: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long = "type", value_parser = ["authoritative", "internal-relay"])]
        domain_type: Option<String>,
    },
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Remove {
        domain: String,
    },
}

#[derive(Args, Default)]
struct MailboxFields {
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
        m
    }
}

#[derive(Subcommand)]
enum MailboxCmd {
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
    },
    Remove {
        address: String,
    },
    /// Mailbox permissions (full-access, send-as) for users and security groups.
    #[command(subcommand)]
    Permission(crate::cli_groups::PermissionCmd),
}

#[derive(Subcommand)]
enum MailCmd {
    /// Messages in a mailbox, newest first.
    List {
        address: String,
        #[arg(long, value_parser = ["inbox", "junk"])]
        folder: Option<String>,
        /// At most this many messages (newest first).
        #[arg(long)]
        limit: Option<usize>,
        /// Skip this many of the newest messages first.
        #[arg(long)]
        offset: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The raw RFC 5322 message.
    Show { address: String, id: String },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct TraceArgs {
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

// ----- running ------------------------------------------------------------------------------------

pub fn run(cli: Cli) -> Result<(), String> {
    // `init` must work even where an existing ./hato.toml does not parse (that is what --force
    // is for), so it runs before any settings file is read.
    if let Command::Init { force } = cli.command {
        let path = PathBuf::from("hato.toml");
        if path.exists() && !force {
            return Err("./hato.toml already exists (use --force to overwrite it)".into());
        }
        std::fs::write(&path, TEMPLATE).map_err(|e| format!("cannot write ./hato.toml: {e}"))?;
        println!("wrote ./hato.toml");
        return Ok(());
    }
    let (config, _) = Config::load(cli.config.as_deref()).map_err(|e| one_line(&e.to_string()))?;
    match cli.command {
        Command::Serve => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                // Colour only for a person at a terminal, not in log files.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(crate::serve::serve(config))
                .map_err(|e| e.to_string())
        }
        Command::Init { .. } => Ok(()),
        Command::Login {
            address,
            password_file,
            save,
        } => {
            let password = match password_file {
                Some(f) => std::fs::read_to_string(&f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display()))?,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| e.to_string())?;
                    line
                }
            };
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let client = Client::anonymous(&config)?;
            let v = client.json(
                "POST",
                "/api/v1/auth/login",
                &[],
                Some(json!({ "address": address, "password": password })),
            )?;
            let token = v["token"].as_str().unwrap_or_default().to_string();
            match save {
                Some(path) => {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    writeln!(f, "{token}").map_err(|e| e.to_string())?;
                    println!(
                        "logged in as {}; token saved in {} (use --as {})",
                        v["address"].as_str().unwrap_or(""),
                        path.display(),
                        path.display()
                    );
                }
                None => println!("{token}"),
            }
            Ok(())
        }
        command => {
            let client = Client::new(&config, cli.as_token.as_deref())?;
            client.run(command)
        }
    }
}

/// Errors are one line: drops the source excerpt a TOML parse error shows (`  |`, `2 | ...`)
/// and joins the rest.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .trim_start()
                    .starts_with('|')
        })
        .collect::<Vec<_>>()
        .join(": ")
}

pub(crate) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

fn read_token(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("cannot read the API token from {}: {e}", path.display()))
}

impl Client {
    /// A client without a token (for logging in).
    fn anonymous(config: &Config) -> Result<Self, String> {
        let mut c = Self::with_token(config, String::new())?;
        c.token.clear();
        Ok(c)
    }

    fn new(config: &Config, as_token: Option<&std::path::Path>) -> Result<Self, String> {
        let token = match (
            as_token,
            std::env::var("HATO_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
        ) {
            (Some(path), _) => read_token(path)?,
            (None, Some(t)) => t.trim().to_string(),
            (None, None) => {
                read_token(&config.server.data_dir.join(OPERATOR_TOKEN_FILE)).map_err(|e| {
                    format!("{e} (has `hato serve` been started with this settings file?)")
                })?
            }
        };
        Self::with_token(config, token)
    }

    fn with_token(config: &Config, token: String) -> Result<Self, String> {
        let mut addr = config.admin.listen.clone();
        if addr.ends_with(":0") {
            addr = std::fs::read_to_string(config.server.data_dir.join(ADMIN_ADDR_FILE))
                .map(|a| a.trim().to_string())
                .map_err(|e| {
                    format!(
                        "the admin API port is 0 and the server's address file is unreadable: {e}"
                    )
                })?;
        }
        let addr = addr
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]");
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(60))
            .build();
        Ok(Client {
            base: format!("http://{addr}"),
            token,
            agent,
        })
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<ureq::Response, String> {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        for (k, v) in query {
            req = req.query(k, v);
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or(text);
                Err(format!("{msg} (HTTP {code})"))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(format!("cannot reach the admin API at {}: {t}", self.base))
            }
        }
    }

    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, String> {
        let r = self.request(method, path, query, body)?;
        if r.status() == 204 {
            return Ok(Value::Null);
        }
        r.into_json::<Value>()
            .map_err(|e| format!("unreadable answer from the API: {e}"))
    }

    fn run(&self, command: Command) -> Result<(), String> {
        match command {
            Command::Serve | Command::Init { .. } | Command::Login { .. } => Ok(()),
            Command::Group(g) => crate::cli_groups::run_group(self, g),
            Command::Contact(c) => crate::cli_groups::run_contact(self, c),
            Command::Moderation(m) => crate::cli_groups::run_moderation(self, m),
            Command::Mailbox(MailboxCmd::Permission(p)) => {
                crate::cli_groups::run_permission(self, p)
            }
            Command::Tenant(TenantCmd::Add { name }) => {
                self.json(
                    "POST",
                    "/api/v1/tenants",
                    &[],
                    Some(json!({ "name": name })),
                )?;
                println!("tenant {name} added");
                Ok(())
            }
            Command::Tenant(TenantCmd::List { json }) => {
                let v = self.json("GET", "/api/v1/tenants", &[], None)?;
                print_rows(&v, &["name"], json)
            }
            Command::Tenant(TenantCmd::Remove { name }) => {
                self.json(
                    "DELETE",
                    &format!("/api/v1/tenants/{}", enc(&name)),
                    &[],
                    None,
                )?;
                println!("tenant {name} removed");
                Ok(())
            }
            Command::Token(TokenCmd::Create { tenant, role }) => {
                let body = match role {
                    Some(r) => json!({ "role": r }),
                    None => json!({}),
                };
                let v = self.json(
                    "POST",
                    &format!("/api/v1/tenants/{}/tokens", enc(&tenant)),
                    &[],
                    Some(body),
                )?;
                println!("{}", v["token"].as_str().unwrap_or_default());
                Ok(())
            }
            Command::Domain(DomainCmd::Add {
                domain,
                tenant,
                domain_type,
            }) => {
                let mut body = json!({ "domain": domain });
                if let Some(t) = tenant {
                    body["tenant"] = json!(t);
                }
                if let Some(t) = domain_type {
                    body["type"] = json!(t);
                }
                let v = self.json("POST", "/api/v1/domains", &[], Some(body))?;
                println!(
                    "domain {} added to tenant {} ({})",
                    v["domain"].as_str().unwrap_or(""),
                    v["tenant"].as_str().unwrap_or(""),
                    v["type"].as_str().unwrap_or("")
                );
                Ok(())
            }
            Command::Domain(DomainCmd::List { tenant, json }) => {
                let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
                let v = self.json("GET", "/api/v1/domains", &q, None)?;
                print_rows(&v, &["domain", "tenant", "type"], json)
            }
            Command::Domain(DomainCmd::Remove { domain }) => {
                self.json(
                    "DELETE",
                    &format!("/api/v1/domains/{}", enc(&domain)),
                    &[],
                    None,
                )?;
                println!("domain {domain} removed");
                Ok(())
            }
            Command::Mailbox(MailboxCmd::Add { address, fields }) => {
                let mut body = fields.to_json(false);
                body.insert("address".into(), json!(address));
                let v = self.json("POST", "/api/v1/mailboxes", &[], Some(Value::Object(body)))?;
                println!(
                    "mailbox {} added to tenant {}",
                    v["address"].as_str().unwrap_or(""),
                    v["tenant"].as_str().unwrap_or("")
                );
                Ok(())
            }
            Command::Mailbox(MailboxCmd::List { tenant, json }) => {
                let q: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
                let v = self.json("GET", "/api/v1/mailboxes", &q, None)?;
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
            Command::Mailbox(MailboxCmd::Show { address, json }) => {
                let v = self.json(
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
            Command::Mailbox(MailboxCmd::Set { address, fields }) => {
                let body = fields.to_json(true);
                if body.is_empty() {
                    return Err(
                        "nothing to change: give at least one field (see hato mailbox set --help)"
                            .into(),
                    );
                }
                self.json(
                    "PATCH",
                    &format!("/api/v1/mailboxes/{}", enc(&address)),
                    &[],
                    Some(Value::Object(body)),
                )?;
                println!("mailbox {address} changed");
                Ok(())
            }
            Command::Mailbox(MailboxCmd::Remove { address }) => {
                self.json(
                    "DELETE",
                    &format!("/api/v1/mailboxes/{}", enc(&address)),
                    &[],
                    None,
                )?;
                println!("mailbox {address} removed");
                Ok(())
            }
            Command::Mail(MailCmd::List {
                address,
                folder,
                limit,
                offset,
                json,
            }) => {
                let mut q: Vec<(&str, String)> =
                    folder.map(|f| ("folder", f)).into_iter().collect();
                q.extend(limit.map(|l| ("limit", l.to_string())));
                q.extend(offset.map(|o| ("offset", o.to_string())));
                let v = self.json(
                    "GET",
                    &format!("/api/v1/mailboxes/{}/messages", enc(&address)),
                    &q,
                    None,
                )?;
                print_rows(
                    &v,
                    &["id", "received", "from", "subject", "size", "folder"],
                    json,
                )
            }
            Command::Mail(MailCmd::Show { address, id }) => {
                let r = self.request(
                    "GET",
                    &format!(
                        "/api/v1/mailboxes/{}/messages/{}/raw",
                        enc(&address),
                        enc(&id)
                    ),
                    &[],
                    None,
                )?;
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes)
                    .map_err(|e| e.to_string())?;
                std::io::stdout()
                    .write_all(&bytes)
                    .map_err(|e| e.to_string())
            }
            Command::Trace(TraceArgs {
                detail:
                    Some(TraceSub::Detail {
                        trace_id,
                        recipient,
                        json,
                    }),
                ..
            }) => {
                let q: Vec<(&str, String)> =
                    recipient.map(|r| ("recipient", r)).into_iter().collect();
                let v = self.json(
                    "GET",
                    &format!("/api/v1/trace/{}", enc(&trace_id)),
                    &q,
                    None,
                )?;
                print_rows(&v, &["time", "recipient", "event", "detail"], json)
            }
            Command::Trace(t) => {
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
                let v = self.json("GET", "/api/v1/trace", &q, None)?;
                print_rows(
                    &v,
                    &[
                        "received",
                        "sender",
                        "recipient",
                        "subject",
                        "status",
                        "trace_id",
                    ],
                    t.json,
                )
            }
        }
    }
}

/// Percent-encodes a path segment.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Prints a JSON array as a table with these columns, or as JSON.
pub(crate) fn print_rows(v: &Value, columns: &[&str], as_json: bool) -> Result<(), String> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return Ok(());
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    let cell = |row: &Value, c: &str| -> String {
        match &row[c] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in &rows {
        for (i, c) in columns.iter().enumerate() {
            widths[i] = widths[i].max(cell(row, c).chars().count().min(60));
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let short: String = c.chars().take(60).collect();
                format!("{short:<w$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!(
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    );
    for row in &rows {
        println!("{}", line(columns.iter().map(|c| cell(row, c)).collect()));
    }
    if rows.is_empty() {
        println!("(none)");
    }
    Ok(())
}

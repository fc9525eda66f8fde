//! The command line. Every command but `serve` and `init` is a client of the admin API; it finds
//! the API's address and the operator token through the same settings file as the server.
//!
//! One module per command group (`tenant.rs`, `mailbox.rs`, `group.rs`, ...), each with its
//! subcommands and a `run`; they share only `client.rs` (the API client) and `output.rs`
//! (tables, path encoding). A new resource gets `cli/<resource>.rs` and a variant below.

mod blocklist;
mod client;
mod connection_filter;
mod connections;
mod connector;
mod contact;
mod delist;
mod dkim;
mod domain;
mod explain;
mod group;
mod junk_email;
mod login;
mod mail;
mod mailbox;
mod malware_filter;
mod moderation;
mod organization_config;
mod outbound_connector;
mod outbound_spam;
mod output;
mod quarantine;
mod quarantine_policy;
mod queue;
mod report;
mod rules;
mod spam;
mod spam_filter;
mod tenant;
mod throttle;
mod token;
mod trace;
mod warmup;

use crate::config::{Config, template};
use clap::{Parser, Subcommand};
use client::Client;
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
    Tenant(tenant::TenantCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Accepted domains.
    #[command(subcommand)]
    Domain(domain::DomainCmd),
    /// Mailboxes.
    #[command(subcommand)]
    Mailbox(mailbox::MailboxCmd),
    /// Messages in mailboxes.
    #[command(subcommand)]
    Mail(mail::MailCmd),
    /// Message trace: one row per recipient.
    Trace(trace::TraceArgs),
    /// Every decision the stages made about a message, per recipient, with reasons and figures.
    Explain(explain::ExplainArgs),
    /// The queue: the recipients waiting for delivery (read-only).
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Groups: distribution, security, mail-security, dynamic, m365.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Mail contacts (outside addresses in the directory).
    #[command(subcommand)]
    Contact(contact::ContactCmd),
    /// Messages held for moderated groups.
    #[command(subcommand)]
    Moderation(moderation::ModerationCmd),
    /// IP throttling: a sending IP's status, releases, tenants' exemption lists.
    #[command(subcommand)]
    Throttle(throttle::ThrottleCmd),
    /// Outbound pools' warm-up plans: pacing to a daily allowance, throttling back-offs.
    #[command(subcommand)]
    Warmup(warmup::WarmupCmd),
    /// A tenant's connection filter policy: its IP allow and block lists.
    #[command(subcommand)]
    ConnectionFilter(connection_filter::ConnectionFilterCmd),
    /// A tenant's connectors: inbound (on-premises servers, partners) and outbound (smart
    /// hosts, MX, TLS per recipient domain).
    #[command(subcommand)]
    Connector(connector::ConnectorCmd),
    /// A tenant's organisation-wide settings (Set-OrganizationConfig): RejectDirectSend.
    #[command(subcommand)]
    OrganizationConfig(organization_config::OrganizationConfigCmd),
    /// A mailbox's safe and blocked senders (Set-MailboxJunkEmailConfiguration).
    #[command(subcommand)]
    JunkEmailConfiguration(junk_email::JunkEmailCmd),
    /// A tenant's outbound spam filter policy (Set-HostedOutboundSpamFilterPolicy): recipient
    /// limits per hour and day, and the action when one is reached.
    #[command(subcommand)]
    OutboundSpamFilter(outbound_spam::OutboundSpamFilterCmd),
    /// A tenant's restricted senders (over the outbound spam limits): list, unblock.
    #[command(subcommand)]
    Restricted(outbound_spam::RestrictedCmd),
    /// DKIM signing per accepted domain (New-DkimSigningConfig): keys, DNS records, rotation.
    #[command(subcommand)]
    Dkim(dkim::DkimCmd),
    /// The connection log: connections the edge refused, deferred or cut.
    Connections(connections::ConnectionsArgs),
    /// The provider's block list: IPs refused at connect (operator).
    #[command(subcommand)]
    Blocklist(blocklist::BlocklistCmd),
    /// Requests made on the delist page: list, approve, deny (operator).
    #[command(subcommand)]
    Delist(delist::DelistCmd),
    /// A tenant's transport (mail flow) rules: New-/Set-/Get-/Remove-/Enable-/Disable-TransportRule.
    #[command(subcommand)]
    Rule(rules::RuleCmd),
    /// Messages held in quarantine: list, show, preview, release, delete.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCmd),
    /// A tenant's quarantine policies (New-/Set-/Get-/Remove-QuarantinePolicy): end-user
    /// permissions and notifications of the items they govern.
    #[command(subcommand)]
    QuarantinePolicy(quarantine_policy::QuarantinePolicyCmd),
    /// A tenant's malware filter policy (common attachments filter, response, notifications).
    #[command(subcommand)]
    MalwareFilter(malware_filter::MalwareFilterCmd),
    /// The spam classifier, offline: train a model from labelled folders, or evaluate one.
    #[command(subcommand)]
    Spam(spam::SpamCmd),
    /// A tenant's anti-spam policies (HostedContentFilterPolicy): actions per verdict, bulk
    /// threshold, allowed/blocked senders, ASF options, block lists, notifications.
    #[command(subcommand)]
    SpamFilter(spam_filter::SpamFilterCmd),
    /// Report a delivered message as junk or not junk (the classifier learns from it).
    #[command(subcommand)]
    Report(report::ReportCmd),
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

// ----- running ------------------------------------------------------------------------------------

pub fn run(cli: Cli) -> Result<(), String> {
    // `init` must work even where an existing ./hato.toml does not parse (that is what --force
    // is for), so it runs before any settings file is read.
    if let Command::Init { force } = cli.command {
        let path = PathBuf::from("hato.toml");
        if path.exists() && !force {
            return Err("./hato.toml already exists (use --force to overwrite it)".into());
        }
        std::fs::write(&path, template()).map_err(|e| format!("cannot write ./hato.toml: {e}"))?;
        println!("wrote ./hato.toml");
        return Ok(());
    }
    // Offline: no server, and no settings file to read (a broken one must not stop training).
    if let Command::Spam(cmd) = cli.command {
        return spam::run(cmd);
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
        } => login::run(&config, address, password_file, save),
        command => {
            let client = Client::new(&config, cli.as_token.as_deref())?;
            dispatch(&client, command)
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

/// Runs a command that talks to the admin API.
fn dispatch(c: &Client, command: Command) -> Result<(), String> {
    match command {
        Command::Serve | Command::Init { .. } | Command::Login { .. } | Command::Spam(_) => Ok(()),
        Command::Group(g) => group::run(c, g),
        Command::Contact(cmd) => contact::run(c, cmd),
        Command::Moderation(m) => moderation::run(c, m),
        Command::Tenant(cmd) => tenant::run(c, cmd),
        Command::Token(cmd) => token::run(c, cmd),
        Command::Domain(cmd) => domain::run(c, cmd),
        Command::Mailbox(cmd) => mailbox::run(c, cmd),
        Command::Mail(cmd) => mail::run(c, cmd),
        Command::Trace(args) => trace::run(c, args),
        Command::Explain(args) => explain::run(c, args),
        Command::Queue(cmd) => queue::run(c, cmd),
        Command::Throttle(cmd) => throttle::run(c, cmd),
        Command::Warmup(cmd) => warmup::run(c, cmd),
        Command::ConnectionFilter(cmd) => connection_filter::run(c, cmd),
        Command::Connector(cmd) => connector::run(c, cmd),
        Command::OrganizationConfig(cmd) => organization_config::run(c, cmd),
        Command::JunkEmailConfiguration(cmd) => junk_email::run(c, cmd),
        Command::OutboundSpamFilter(cmd) => outbound_spam::run(c, cmd),
        Command::Restricted(cmd) => outbound_spam::run_restricted(c, cmd),
        Command::Dkim(cmd) => dkim::run(c, cmd),
        Command::Connections(args) => connections::run(c, args),
        Command::Blocklist(cmd) => blocklist::run(c, cmd),
        Command::Delist(cmd) => delist::run(c, cmd),
        Command::Rule(cmd) => rules::run(c, cmd),
        Command::Quarantine(cmd) => quarantine::run(c, cmd),
        Command::QuarantinePolicy(cmd) => quarantine_policy::run(c, cmd),
        Command::MalwareFilter(cmd) => malware_filter::run(c, cmd),
        Command::SpamFilter(cmd) => spam_filter::run(c, cmd),
        Command::Report(cmd) => report::run(c, cmd),
    }
}

//! Server settings (`hato.toml`). Tenant objects live in the store, not here.

use hato_core::reply;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub smtp: SmtpSection,
    /// The submission listener for mail clients (`[submission]`, RFC 6409).
    pub submission: SubmissionSection,
    pub admin: AdminSection,
    pub queue: QueueSection,
    pub trace: TraceSection,
    /// Days each kind of quarantined message is kept (`[quarantine]`).
    pub quarantine: QuarantineSection,
    /// IP throttling by volume and reputation (`hato_protection::throttle`).
    pub throttle: hato_protection::throttle::ThrottleSettings,
    pub edge: EdgeSection,
    /// The resolver (`[dns]`).
    pub dns: hato_dns::DnsSettings,
    /// DNS block lists asked at connect (`[[dnsbl]]`); none by default.
    pub dnsbl: Vec<hato_protection::DnsblZoneSettings>,
    /// The malware filter's engines (`[malware]`).
    pub malware: MalwareSection,
    /// The content stages after the data (`[content]`).
    pub content: ContentSection,
    /// The spam filter (`[spam]`).
    pub spam: SpamSection,
    /// Delivery to other servers (`[outbound]`).
    pub outbound: OutboundSection,
    /// Settings only end-to-end tests set (`[testing]`).
    pub testing: TestingSection,
}

/// Settings for end-to-end tests only; never for a server that carries real mail.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingSection {
    /// The server runs on a clock that starts at the real time and then moves only when the
    /// operator moves it forward (`POST /api/v1/testing/clock`): retries, delay notices, expiry
    /// and warm-up days without waiting real hours. Off unless set.
    pub manual_clock: bool,
}

/// Delivery to other servers: MX delivery of outside recipients (mail contacts, relay, NDRs to
/// outside senders), its pools, concurrency, retries and expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSection {
    /// The port MX hosts are reached on: 25 (RFC 5321 §4.5.4.2's "SMTP port"); tests point it
    /// at a receiving server's port on loopback.
    pub smtp_port: u16,
    /// The normal pool's EHLO name; empty: `server.hostname`.
    pub helo_name: String,
    /// The normal pool's source address; empty: the system chooses.
    pub source_address: String,
    /// Connections a destination starts with (Postfix's `initial_destination_concurrency`, 5;
    /// hato starts at 2).
    pub initial_destination_concurrency: usize,
    /// Connections a destination may grow to while deliveries succeed (Postfix's
    /// `default_destination_concurrency_limit`, 20).
    pub destination_concurrency_limit: usize,
    /// Connections at once, all destinations together.
    pub max_connections: usize,
    /// Milliseconds a session to a destination stays open, idle, for its next message
    /// (Postfix's `smtp_connection_cache_time_limit`, 2 s); 0: each session ends when its
    /// destination's queue is empty.
    pub connection_cache_ms: u64,
    /// Seconds before the first retry of a deferred recipient (Exchange retries about every
    /// 5 minutes, reference §9.4); doubled after each deferral up to `retry_max_secs`.
    pub retry_first_secs: u64,
    pub retry_max_secs: u64,
    /// Seconds after its arrival an outside recipient is tried before it fails with
    /// `550 4.4.7` and an NDR: 24 hours, Exchange's connector queue (reference §9.4, §13.9).
    /// Never later than `queue.message_expiration_hours`.
    pub expiration_secs: u64,
    /// Seconds after its arrival a recipient still deferred gets its sender one delay notice
    /// (RFC 3464 `Action: delayed`; none with `NOTIFY` without `DELAY`): 4 hours, Exchange's
    /// `DelayNotificationTimeout`. For every deferred recipient, local ones included.
    pub delay_notice_secs: u64,
    /// Seconds to wait for a TCP connection (RFC 5321 §4.5.3.2 leaves it to the client; 30).
    pub connect_timeout_secs: u64,
    /// Honour recipient domains' MTA-STS policies (RFC 8461) in MX delivery: on by default.
    pub mta_sts: bool,
    /// The port policies are fetched from (`https://mta-sts.<domain>/`: 443; tests point it
    /// at their HTTPS server on loopback).
    pub mta_sts_port: u16,
    /// Seconds a policy fetch may take in all (address lookup, TLS, the answer).
    pub mta_sts_timeout_secs: u64,
    /// A PEM file of CA certificates trusted beside the system's, for certificate checks of
    /// outbound TLS (connectors' `certificate-validation`/`domain-validation`, MTA-STS hosts)
    /// and of MTA-STS policy servers: a private CA, a test's. Empty: the system's only.
    pub extra_ca_file: PathBuf,
    /// The high-risk pool, which NDRs leave from (`[outbound.high_risk]`).
    /// The high-risk pool, which NDRs and outbound spam leave from (`[outbound.high_risk]`).
    pub high_risk: PoolSection,
}

/// A delivery pool's EHLO name and source address (empty: the normal pool's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSection {
    pub helo_name: String,
    pub source_address: String,
}

impl Default for OutboundSection {
    fn default() -> Self {
        OutboundSection {
            smtp_port: 25,
            helo_name: String::new(),
            source_address: String::new(),
            initial_destination_concurrency: 2,
            destination_concurrency_limit: 20,
            max_connections: 100,
            connection_cache_ms: 2000,
            retry_first_secs: 300,
            retry_max_secs: 3600,
            expiration_secs: 24 * 3600,
            delay_notice_secs: hato_transport::delivery::DEFAULT_DELAY_NOTICE_SECS,
            connect_timeout_secs: 30,
            mta_sts: true,
            mta_sts_port: 443,
            mta_sts_timeout_secs: 20,
            extra_ca_file: PathBuf::new(),
            high_risk: PoolSection::default(),
        }
    }
}

impl OutboundSection {
    /// The agent's settings (the pools' names, addresses and EHLO names resolved).
    pub fn settings(
        &self,
        hostname: &str,
    ) -> Result<hato_transport::outbound::OutboundSettings, ConfigError> {
        use hato_transport::outbound::{HIGH_RISK_POOL, NORMAL_POOL, OutboundSettings, Pool};
        let address = |name: &str, v: &str| -> Result<Option<std::net::IpAddr>, ConfigError> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(|_| {
                ConfigError::Invalid(format!("{name} must be an IP address, not {v:?}"))
            })
        };
        let helo = if self.helo_name.is_empty() {
            hostname.to_string()
        } else {
            self.helo_name.clone()
        };
        let source = address("outbound.source_address", &self.source_address)?;
        let mut s = OutboundSettings::new(hostname);
        s.smtp_port = self.smtp_port;
        s.normal = Pool {
            name: NORMAL_POOL.into(),
            helo_name: helo.clone(),
            source,
        };
        s.high_risk = Pool {
            name: HIGH_RISK_POOL.into(),
            helo_name: if self.high_risk.helo_name.is_empty() {
                helo
            } else {
                self.high_risk.helo_name.clone()
            },
            source: address(
                "outbound.high_risk.source_address",
                &self.high_risk.source_address,
            )?
            .or(source),
        };
        s.initial_concurrency = self.initial_destination_concurrency;
        s.max_concurrency = self.destination_concurrency_limit;
        s.max_connections = self.max_connections;
        s.connection_cache_time = std::time::Duration::from_millis(self.connection_cache_ms);
        s.retry_first = std::time::Duration::from_secs(self.retry_first_secs);
        s.retry_max = std::time::Duration::from_secs(self.retry_max_secs);
        s.expiration = std::time::Duration::from_secs(self.expiration_secs);
        s.timeouts.connect = std::time::Duration::from_secs(self.connect_timeout_secs);
        if !self.extra_ca_file.as_os_str().is_empty() {
            s.roots = Some(
                hato_smtp::client::tls::roots_with(&self.extra_ca_file)
                    .map_err(|e| ConfigError::Invalid(format!("outbound.extra_ca_file: {e}")))?,
            );
        }
        Ok(s)
    }
}

/// The malware filter's engines: the built-in one (EICAR out of the box, plus ClamAV-format
/// signature files from a directory) and, optionally, a ClamAV daemon. Which mail is filtered
/// and what happens to it is each tenant's malware filter policy (`hato malware-filter`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MalwareSection {
    /// A directory of ClamAV-format signature files (`.hdb`, `.hsb`, `.ndb`) for the built-in
    /// engine, reloaded when they change. Empty: the built-in signatures only (EICAR).
    pub signatures_dir: PathBuf,
    /// A ClamAV daemon asked about every message too (`INSTREAM`): `host:port` (its
    /// `TCPSocket`) or the path of its `LocalSocket`. Empty: none. A daemon that does not
    /// answer defers the message (451 4.7.0), never passes it.
    pub clamd: String,
    /// Seconds clamd has for one message (connect, send, verdict).
    pub clamd_timeout_secs: u64,
}

impl Default for MalwareSection {
    fn default() -> Self {
        MalwareSection {
            signatures_dir: PathBuf::new(),
            clamd: String::new(),
            clamd_timeout_secs: 30,
        }
    }
}

impl MalwareSection {
    /// `clamd` as an address: a path (it has a `/`) is a Unix socket, else `host:port`.
    pub fn clamd_address(&self) -> Option<hato_protection::malware::ClamdAddress> {
        use hato_protection::malware::ClamdAddress;
        let c = self.clamd.trim();
        if c.is_empty() {
            None
        } else if c.contains('/') {
            Some(ClamdAddress::Unix(PathBuf::from(c)))
        } else {
            Some(ClamdAddress::Tcp(c.to_string()))
        }
    }
}

/// The content stages between the end of the data and the final 250.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentSection {
    /// Run the malware filter and the transport rules on every message. Off only to measure
    /// or troubleshoot: mail is then accepted unscanned.
    pub pipeline: bool,
    /// MiB of messages the stages examine at once; more wait their turn (each costs memory a
    /// few times its size while it is parsed and unpacked).
    pub scan_budget_mb: u32,
}

impl Default for ContentSection {
    fn default() -> Self {
        ContentSection {
            pipeline: true,
            scan_budget_mb: hato_transport::content::DEFAULT_SCAN_BUDGET_MB,
        }
    }
}

/// The spam filter's engine. What happens to spam is each tenant's anti-spam policy (`hato
/// spam-filter`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamSection {
    /// Run the spam filter (after the malware filter and the transport rules). Off only to
    /// measure or troubleshoot: mail is then delivered unfiltered.
    pub enabled: bool,
    /// A classifier model file (`hato spam train --out`); empty: the model shipped in hato.
    pub model: PathBuf,
}

impl Default for SpamSection {
    fn default() -> Self {
        SpamSection {
            enabled: true,
            model: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub hostname: String,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    pub listen: Vec<String>,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// IPv6 clients are counted per prefix of this many bits for `max_connections_per_ip`.
    pub ipv6_prefix_length: u8,
    pub idle_timeout_secs: u64,
    pub data_timeout_secs: u64,
    pub session_timeout_secs: u64,
    /// Message content past this many bytes goes to a file in `<data_dir>/spool/` while it
    /// arrives, and stays a file in the queue.
    pub spool_threshold_bytes: usize,
    /// The mailbox (in any tenant) that gets `<postmaster>` mail, and mail to `postmaster@` and
    /// `abuse@` of every accepted domain (reserved) (RFC 5321 §4.5.1, RFC 2142). Empty:
    /// such mail waits in the queue until one is set.
    pub postmaster: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

impl SmtpSection {
    /// `postmaster`, parsed (validation has checked it); `None` when empty.
    pub fn postmaster_address(&self) -> Option<hato_core::Address> {
        hato_core::Address::parse(&self.postmaster).ok()
    }
}

/// The submission listener (RFC 6409): mail clients and devices send with STARTTLS and SMTP
/// AUTH, as to Exchange Online's `smtp.office365.com:587`. Its TLS certificate is `[smtp]`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmissionSection {
    /// Addresses to listen on; empty: no submission listener.
    pub listen: Vec<String>,
    /// Messages (MAIL FROM) per mailbox per minute; more get `554 5.2.2`.
    pub max_messages_per_minute: u32,
    /// Recipients per mailbox per day; more get `554 5.2.2`.
    pub max_recipients_per_day: u32,
    /// Failed AUTH for one address before it is locked.
    pub auth_max_failures: u32,
    /// Failed AUTH from one client IP (any addresses) before it is locked.
    pub auth_max_failures_per_ip: u32,
    /// The first lock; each further failure doubles it, up to an hour.
    pub auth_lockout_secs: u64,
    /// Password hashes computed at once for AUTH.
    pub auth_max_concurrent_hashes: usize,
    /// Failed AUTH in one session before it is closed.
    pub max_auth_failures_per_session: usize,
}

impl Default for SubmissionSection {
    fn default() -> Self {
        let limits = hato_transport::submission::SubmissionLimits::default();
        SubmissionSection {
            listen: vec!["127.0.0.1:2587".into()],
            max_messages_per_minute: limits.max_messages_per_minute,
            max_recipients_per_day: limits.max_recipients_per_day,
            auth_max_failures: 5,
            auth_max_failures_per_ip: 20,
            auth_lockout_secs: 300,
            auth_max_concurrent_hashes: 4,
            max_auth_failures_per_session: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    pub listen: String,
    /// Failed logins for one address before it is locked.
    pub login_max_failures: u32,
    /// Failed logins from one client IP (any addresses) before it is locked.
    pub login_max_failures_per_ip: u32,
    /// The first lock; each further failure doubles it, up to an hour.
    pub login_lockout_secs: u64,
    /// Password hashes computed at once; more logins wait, then get 503.
    pub login_max_concurrent_hashes: usize,
    /// The web console: a session unused this long ends (seconds; default 30 minutes).
    pub console_idle_secs: i64,
    /// A console session ends this long after sign-in, used or not (seconds; default 12 hours).
    pub console_max_secs: i64,
    /// Marks the console's session cookie `Secure`: set it when a TLS proxy serves the admin
    /// listener (which itself speaks plain HTTP).
    pub console_secure_cookies: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// Exchange's `MessageExpirationTimeout` (2 days by default, at most 90 days), in hours: a
    /// recipient still deferred this long after its message arrived fails with `550 4.4.7` and
    /// its sender gets an NDR.
    pub message_expiration_hours: u32,
}

/// Exchange accepts a `MessageExpirationTimeout` of at most 90 days.
const MESSAGE_EXPIRATION_HOURS_MAX: u32 = 90 * 24;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSection {
    pub retention_days: u32,
}

/// Days a quarantined message is kept, per kind of quarantine. Exchange keeps malware and mail
/// flow rule quarantine 30 days (fixed) and spam quarantine `QuarantineRetentionPeriod` days
/// (1-30); hato's defaults are 30 for every kind, and each may be 1-30.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineSection {
    pub malware_days: u32,
    pub transport_rule_days: u32,
    pub spam_days: u32,
    pub high_confidence_spam_days: u32,
    pub phish_days: u32,
    pub high_confidence_phish_days: u32,
    pub bulk_days: u32,
    /// Seconds between two looks for recipients owed a quarantine notification (the digest);
    /// each recipient gets one at most every `EndUserSpamNotificationFrequency` days.
    pub notification_interval_secs: u64,
    /// Held messages listed in one digest at most ("...and N more" after them).
    pub notification_max_items: usize,
    /// The release page's public address: digests' release links are `<release_url>?t=...`.
    /// Empty: the admin listener's `/quarantine/release`.
    pub release_url: String,
    /// The end-user spam notification settings every recipient gets until the anti-spam
    /// policies' own (`EnableEndUserSpamNotifications`, `EndUserSpamNotificationFrequency`,
    /// `EndUserSpamNotificationLanguage`) are read per recipient: off, 3 days, `default`, as
    /// Exchange's defaults.
    pub end_user_spam_notifications: bool,
    pub end_user_spam_notification_frequency: u16,
    pub end_user_spam_notification_language: String,
}

impl Default for QuarantineSection {
    fn default() -> Self {
        let d = hato_transport::delivery::DEFAULT_QUARANTINE_RETENTION_DAYS;
        QuarantineSection {
            malware_days: d,
            transport_rule_days: d,
            spam_days: d,
            high_confidence_spam_days: d,
            phish_days: d,
            high_confidence_phish_days: d,
            bulk_days: d,
            notification_interval_secs: 3600,
            notification_max_items: hato_transport::digest::DEFAULT_MAX_ITEMS,
            release_url: String::new(),
            end_user_spam_notifications: false,
            end_user_spam_notification_frequency: 3,
            end_user_spam_notification_language: "default".into(),
        }
    }
}

/// The longest `quarantine.release_url`: a release link is it, `?t=` and a token of at most
/// 606 characters, on one line of the digest's text (RFC 5322 §2.1.1: 998 at most).
const RELEASE_URL_MAX: usize = 300;

impl QuarantineSection {
    /// The release page's address: `release_url`, else `http://<admin listener>/quarantine/release`,
    /// with the server's hostname for a listener on all addresses.
    pub fn release_url(&self, admin: std::net::SocketAddr, hostname: &str) -> String {
        let url = self.release_url.trim_end_matches('/');
        if !url.is_empty() {
            url.to_string()
        } else if admin.ip().is_unspecified() {
            format!("http://{hostname}:{}/quarantine/release", admin.port())
        } else {
            format!("http://{admin}/quarantine/release")
        }
    }

    /// Each kind with its setting's name and its days.
    pub fn days(&self) -> [(hato_core::message::QuarantineKind, &'static str, u32); 7] {
        use hato_core::message::QuarantineKind as K;
        [
            (K::Malware, "quarantine.malware_days", self.malware_days),
            (
                K::TransportRule,
                "quarantine.transport_rule_days",
                self.transport_rule_days,
            ),
            (K::Spam, "quarantine.spam_days", self.spam_days),
            (
                K::HighConfidenceSpam,
                "quarantine.high_confidence_spam_days",
                self.high_confidence_spam_days,
            ),
            (K::Phish, "quarantine.phish_days", self.phish_days),
            (
                K::HighConfidencePhish,
                "quarantine.high_confidence_phish_days",
                self.high_confidence_phish_days,
            ),
            (K::Bulk, "quarantine.bulk_days", self.bulk_days),
        ]
    }
}

/// The edge: who is connecting, decided before any content is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeSection {
    /// Refuse a HELO/EHLO that names this server (its host name, an address it listens on)
    /// from a client that is another host (`550 5.7.506`).
    pub reject_bad_helo: bool,
    /// Look up each client's name by reverse DNS, forward-confirmed, at connect (the connection
    /// log's PTR, the trace, the Received header).
    pub reverse_dns: bool,
    /// Milliseconds to wait before the banner; a client that talks meanwhile is refused
    /// (`554 5.5.1`). 0: the banner at once.
    pub greeting_delay_ms: u64,
    /// Entries each list of a tenant's connection filter policy may hold.
    pub connection_filter_max_entries: usize,
    /// Days of connection log kept.
    pub connection_log_retention_days: u32,
    /// The delist page's public address: the `550 5.7.606` refusal of a client on the
    /// provider's block list names it, and confirmation links are `<delist_url>/confirm?...`.
    /// Empty: the admin listener's `/delist`.
    pub delist_url: String,
}

/// RFC 5321 §4.5.3.2.1: a client waits 5 minutes for the banner; a delay that long would turn
/// every client away.
const GREETING_DELAY_MS_LIMIT: u64 = 300_000;

impl Default for EdgeSection {
    fn default() -> Self {
        EdgeSection {
            reject_bad_helo: true,
            reverse_dns: true,
            // Off: every client would wait for the banner (Postfix postscreen waits 6 s).
            greeting_delay_ms: 0,
            // Exchange Online's limit per list.
            connection_filter_max_entries: hato_store::DEFAULT_CONNECTION_FILTER_MAX_ENTRIES,
            connection_log_retention_days: 30,
            delist_url: String::new(),
        }
    }
}

/// The longest `edge.delist_url`: it is part of an SMTP reply line (RFC 5321 §4.5.3.1.5 allows
/// 512 octets with the code and the rest of the text).
const DELIST_URL_MAX: usize = 200;

impl EdgeSection {
    /// The delist page's address: `delist_url`, else `http://<admin listener>/delist`, with the
    /// server's hostname for a listener on all addresses (0.0.0.0 or [::] is no address to give).
    pub fn delist_url(&self, admin: std::net::SocketAddr, hostname: &str) -> String {
        let url = self.delist_url.trim_end_matches('/');
        if !url.is_empty() {
            url.to_string()
        } else if admin.ip().is_unspecified() {
            format!("http://{hostname}:{}/delist", admin.port())
        } else {
            format!("http://{admin}/delist")
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("hato-data"),
        }
    }
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            listen: vec!["127.0.0.1:2525".into()],
            // Exchange Online's default maximum message size.
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 500,
            max_connections: 2000,
            max_connections_per_ip: 50,
            ipv6_prefix_length: 64,
            // RFC 5321 §4.5.3.2.7: a server should wait at least 5 minutes for a command.
            idle_timeout_secs: 300,
            // RFC 5321 §4.5.3.2.6: 10 minutes after the data's end; we use it per DATA read.
            data_timeout_secs: 600,
            session_timeout_secs: 1800,
            spool_threshold_bytes: 1024 * 1024,
            postmaster: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: "127.0.0.1:8025".into(),
            login_max_failures: 5,
            login_max_failures_per_ip: 20,
            login_lockout_secs: 60,
            login_max_concurrent_hashes: 4,
            console_idle_secs: 30 * 60,
            console_max_secs: 12 * 3600,
            console_secure_cookies: false,
        }
    }
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            message_expiration_hours: hato_store::DEFAULT_MESSAGE_EXPIRATION_HOURS,
        }
    }
}

impl Default for TraceSection {
    fn default() -> Self {
        TraceSection { retention_days: 90 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads `path`, or `./hato.toml` when it exists, or the defaults. Relative paths in a file
    /// are made relative to that file's directory.
    pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("hato.toml")).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok((Config::default(), None));
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| ConfigError::Read(path.clone(), e))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse(path.clone(), e.to_string()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let rebase = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.server.data_dir);
        rebase(&mut config.smtp.tls_cert);
        rebase(&mut config.smtp.tls_key);
        rebase(&mut config.outbound.extra_ca_file);
        config.validate()?;
        Ok((config, Some(path)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let o = &self.outbound;
        for (name, v) in [
            ("outbound.smtp_port", u64::from(o.smtp_port)),
            (
                "outbound.initial_destination_concurrency",
                o.initial_destination_concurrency as u64,
            ),
            (
                "outbound.destination_concurrency_limit",
                o.destination_concurrency_limit as u64,
            ),
            ("outbound.max_connections", o.max_connections as u64),
            ("outbound.retry_first_secs", o.retry_first_secs),
            ("outbound.retry_max_secs", o.retry_max_secs),
            ("outbound.expiration_secs", o.expiration_secs),
            ("outbound.delay_notice_secs", o.delay_notice_secs),
            ("outbound.connect_timeout_secs", o.connect_timeout_secs),
            ("outbound.mta_sts_port", u64::from(o.mta_sts_port)),
            ("outbound.mta_sts_timeout_secs", o.mta_sts_timeout_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        // A session kept idle holds one of `max_connections`: minutes of it would let idle
        // sessions crowd out new destinations (Postfix caps reuse at 300 s).
        if o.connection_cache_ms > 300_000 {
            return Err(ConfigError::Invalid(format!(
                "outbound.connection_cache_ms ({}) is above 300000 (5 minutes)",
                o.connection_cache_ms
            )));
        }
        if o.initial_destination_concurrency > o.destination_concurrency_limit {
            return Err(ConfigError::Invalid(format!(
                "outbound.initial_destination_concurrency ({}) is above outbound.destination_concurrency_limit ({})",
                o.initial_destination_concurrency, o.destination_concurrency_limit
            )));
        }
        o.settings(&self.server.hostname)?;
        let a = &self.admin;
        // Up to a year: beyond, a session is no longer a session.
        for (name, v) in [
            ("admin.console_idle_secs", a.console_idle_secs),
            ("admin.console_max_secs", a.console_max_secs),
        ] {
            if !(1..=366 * 86_400).contains(&v) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be from 1 to 31622400 seconds, not {v}"
                )));
            }
        }
        let s = &self.smtp;
        if s.listen.is_empty() {
            return Err(ConfigError::Invalid(
                "smtp.listen needs at least one address".into(),
            ));
        }
        for (name, v) in [
            ("smtp.max_message_size", s.max_message_size as u64),
            ("smtp.max_recipients", s.max_recipients as u64),
            ("smtp.max_connections", s.max_connections as u64),
            (
                "smtp.max_connections_per_ip",
                s.max_connections_per_ip as u64,
            ),
            ("smtp.idle_timeout_secs", s.idle_timeout_secs),
            ("smtp.data_timeout_secs", s.data_timeout_secs),
            ("smtp.session_timeout_secs", s.session_timeout_secs),
            ("smtp.spool_threshold_bytes", s.spool_threshold_bytes as u64),
            ("trace.retention_days", u64::from(self.trace.retention_days)),
            (
                "edge.connection_log_retention_days",
                u64::from(self.edge.connection_log_retention_days),
            ),
            (
                "edge.connection_filter_max_entries",
                self.edge.connection_filter_max_entries as u64,
            ),
            (
                "queue.message_expiration_hours",
                u64::from(self.queue.message_expiration_hours),
            ),
            (
                "admin.login_max_failures",
                u64::from(self.admin.login_max_failures),
            ),
            (
                "admin.login_max_failures_per_ip",
                u64::from(self.admin.login_max_failures_per_ip),
            ),
            ("admin.login_lockout_secs", self.admin.login_lockout_secs),
            (
                "admin.login_max_concurrent_hashes",
                self.admin.login_max_concurrent_hashes as u64,
            ),
            (
                "submission.max_messages_per_minute",
                u64::from(self.submission.max_messages_per_minute),
            ),
            (
                "submission.max_recipients_per_day",
                u64::from(self.submission.max_recipients_per_day),
            ),
            (
                "submission.auth_max_failures",
                u64::from(self.submission.auth_max_failures),
            ),
            (
                "submission.auth_max_failures_per_ip",
                u64::from(self.submission.auth_max_failures_per_ip),
            ),
            (
                "submission.auth_lockout_secs",
                self.submission.auth_lockout_secs,
            ),
            (
                "submission.auth_max_concurrent_hashes",
                self.submission.auth_max_concurrent_hashes as u64,
            ),
            (
                "submission.max_auth_failures_per_session",
                self.submission.max_auth_failures_per_session as u64,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be greater than 0"
                )));
            }
        }
        // The back-off stops doubling at an hour, so a longer first lock makes no sense.
        if self.submission.auth_lockout_secs > 3600 {
            return Err(ConfigError::Invalid(
                "submission.auth_lockout_secs must be at most 3600 (the longest lock)".into(),
            ));
        }
        if self.admin.login_lockout_secs > 3600 {
            return Err(ConfigError::Invalid(
                "admin.login_lockout_secs must be at most 3600 (the longest lock)".into(),
            ));
        }
        for (_, name, days) in self.quarantine.days() {
            // Exchange's QuarantineRetentionPeriod: 1-30 days.
            if !(1..=30).contains(&days) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be from 1 to 30 (days, as Exchange's QuarantineRetentionPeriod), not {days}"
                )));
            }
        }
        let q = &self.quarantine;
        if !(1..=86_400).contains(&q.notification_interval_secs) {
            return Err(ConfigError::Invalid(format!(
                "quarantine.notification_interval_secs must be from 1 to 86400 (a day), not {}",
                q.notification_interval_secs
            )));
        }
        if !(1..=500).contains(&q.notification_max_items) {
            return Err(ConfigError::Invalid(format!(
                "quarantine.notification_max_items must be from 1 to 500, not {}",
                q.notification_max_items
            )));
        }
        // Exchange's EndUserSpamNotificationFrequency: 1-15 days.
        if !(1..=15).contains(&q.end_user_spam_notification_frequency) {
            return Err(ConfigError::Invalid(format!(
                "quarantine.end_user_spam_notification_frequency must be from 1 to 15 (days, as \
                 Exchange's EndUserSpamNotificationFrequency), not {}",
                q.end_user_spam_notification_frequency
            )));
        }
        let url = &q.release_url;
        // It goes into a mail's text and HTML as it is: one printable ASCII word, an http(s)
        // address to which the token's query is added.
        if !url.is_empty()
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() > RELEASE_URL_MAX
                || !url.bytes().all(|b| b.is_ascii_graphic())
                || url.contains(['?', '#', '"', '<', '>', '&', '\'']))
        {
            return Err(ConfigError::Invalid(format!(
                "quarantine.release_url must be an http:// or https:// address of at most \
                 {RELEASE_URL_MAX} printable ASCII characters, without spaces, quotes, query or \
                 fragment (is {:?})",
                url.chars().take(RELEASE_URL_MAX + 20).collect::<String>()
            )));
        }
        if self.queue.message_expiration_hours > MESSAGE_EXPIRATION_HOURS_MAX {
            return Err(ConfigError::Invalid(format!(
                "queue.message_expiration_hours must be at most {MESSAGE_EXPIRATION_HOURS_MAX} \
                 (90 days, Exchange's longest MessageExpirationTimeout), not {}",
                self.queue.message_expiration_hours
            )));
        }
        self.throttle.validate().map_err(ConfigError::Invalid)?;
        if !(1..=600).contains(&self.malware.clamd_timeout_secs) {
            return Err(ConfigError::Invalid(format!(
                "malware.clamd_timeout_secs must be from 1 to 600, not {}",
                self.malware.clamd_timeout_secs
            )));
        }
        if (self.content.scan_budget_mb as u64) * 1024 * 1024 < s.max_message_size as u64 {
            return Err(ConfigError::Invalid(format!(
                "content.scan_budget_mb ({} MiB) must hold at least one message of smtp.max_message_size ({} bytes)",
                self.content.scan_budget_mb, s.max_message_size
            )));
        }
        let dir = &self.malware.signatures_dir;
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(ConfigError::Invalid(format!(
                "malware.signatures_dir is not a directory: {}",
                dir.display()
            )));
        }
        if self.edge.greeting_delay_ms >= GREETING_DELAY_MS_LIMIT {
            return Err(ConfigError::Invalid(format!(
                "edge.greeting_delay_ms must be less than {GREETING_DELAY_MS_LIMIT} (clients wait \
                 5 minutes for the greeting, RFC 5321 4.5.3.2.1), not {}",
                self.edge.greeting_delay_ms
            )));
        }
        if !(1..=128).contains(&s.ipv6_prefix_length) {
            return Err(ConfigError::Invalid(format!(
                "smtp.ipv6_prefix_length must be between 1 and 128 (is {})",
                s.ipv6_prefix_length
            )));
        }
        if !s.postmaster.trim().is_empty() && hato_core::Address::parse(&s.postmaster).is_err() {
            return Err(ConfigError::Invalid(format!(
                "smtp.postmaster is not an address: {:?}",
                s.postmaster
            )));
        }
        let url = &self.edge.delist_url;
        // It goes into an SMTP reply and a mail's text as it is: one printable ASCII word (no
        // CR or LF to end the reply early), an http(s) address that a query can follow.
        if !url.is_empty()
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() > DELIST_URL_MAX
                || !url.bytes().all(|b| b.is_ascii_graphic())
                || url.contains(['?', '#']))
        {
            return Err(ConfigError::Invalid(format!(
                "edge.delist_url must be an http:// or https:// address of at most \
                 {DELIST_URL_MAX} printable ASCII characters, without spaces, query or fragment \
                 (is {:?})",
                url.chars().take(DELIST_URL_MAX + 20).collect::<String>()
            )));
        }
        self.dns
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.dnsbl_zones()?;
        if s.tls_cert.as_os_str().is_empty() != s.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "smtp.tls_cert and smtp.tls_key go together: set both or neither".into(),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The DNS block list zones, checked (validation has checked them already).
    pub fn dnsbl_zones(&self) -> Result<Vec<hato_protection::DnsblZone>, ConfigError> {
        hato_protection::dnsbl::zones_from_settings(&self.dnsbl)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

/// The commented settings file `hato init` writes ([`TEMPLATE`] with the replies it mentions
/// taken from the reply catalogue, so the comments cannot drift from what hato sends).
pub fn template() -> String {
    let codes = |r: &hato_core::Reply| format!("{} {}", r.code, r.status);
    TEMPLATE
        .replace(
            "@TOO_MANY_RECIPIENTS@",
            &reply::TOO_MANY_RECIPIENTS.to_string(),
        )
        .replace(
            "@TOO_MANY_CONNECTIONS@",
            &codes(&reply::TOO_MANY_CONNECTIONS),
        )
        .replace(
            "@TOO_MANY_CONNECTIONS_FROM_IP@",
            &codes(&reply::TOO_MANY_CONNECTIONS_FROM_IP),
        )
        .replace("@TIMEOUT@", &codes(&reply::IDLE_TIMEOUT))
        .replace("@MESSAGE_EXPIRED@", &reply::MESSAGE_EXPIRED.to_string())
        .replace(
            "@MALWARE_SCAN_UNAVAILABLE@",
            &reply::MALWARE_SCAN_UNAVAILABLE.to_string(),
        )
        .replace(
            "@SERVER_BUSY@",
            &reply::server_busy("IP", "ASn").to_string(),
        )
        .replace("@BAD_HELO@", &reply::BAD_HELO.to_string())
        .replace("@MUST_STARTTLS@", &codes(&reply::MUST_STARTTLS))
        .replace(
            "@ANONYMOUS_SUBMISSION@",
            &codes(&reply::ANONYMOUS_SUBMISSION),
        )
        .replace("@SEND_AS_DENIED@", &codes(&reply::SEND_AS_DENIED))
        .replace(
            "@SUBMISSION_QUOTA_EXCEEDED@",
            &reply::SUBMISSION_QUOTA_EXCEEDED.to_string(),
        )
        .replace("@AUTH_LOCKED@", &codes(&reply::AUTH_LOCKED))
        .replace(
            "@TOO_MANY_AUTH_FAILURES@",
            &codes(&reply::TOO_MANY_AUTH_FAILURES),
        )
        .replace("@EARLY_TALKER@", &reply::EARLY_TALKER.to_string())
        .replace(
            "@CUSTOMER_BLOCK_LIST@",
            &reply::customer_block_list("IP", "DOMAIN").to_string(),
        )
        .replace(
            "@BANNED_SENDING_IP@",
            &codes(&reply::banned_sending_ip("", "")),
        )
        .replace(
            "@DNSBL_LISTED@",
            &reply::dnsbl_listed("IP", "ZONE", "URL").to_string(),
        )
}

/// The settings file's text; `@NAME@` stands for a reply of the catalogue ([`template`]).
const TEMPLATE: &str = r#"# hato settings. Every setting is shown with its default; uncomment the line to change it.
# Relative paths are relative to this file's directory. Tenants, domains and mailboxes are not
# set here: they live in the store and change through the admin API or the `hato` command line.

[server]
# Host name used in the SMTP banner, Received headers and NDRs.
#hostname = "localhost"
# Where hato keeps its database (hato.db), message blobs, large messages (spool/, queue/), TLS
# key and the operator token.
#data_dir = "hato-data"

[smtp]
# Addresses to accept SMTP on. Production: ["0.0.0.0:25", "[::]:25"].
#listen = ["127.0.0.1:2525"]
# Largest message accepted, in bytes (advertised in EHLO SIZE; 35 MB like Exchange Online).
#max_message_size = 36700160
# Recipients per message; more get "@TOO_MANY_RECIPIENTS@".
#max_recipients = 500
# Concurrent sessions from all clients ("@TOO_MANY_CONNECTIONS@" beyond) and from one IP
# ("@TOO_MANY_CONNECTIONS_FROM_IP@").
#max_connections = 2000
#max_connections_per_ip = 50
# IPv6 clients share one per-IP count per prefix of this many bits (128: per address). IPv4
# clients are counted per address.
#ipv6_prefix_length = 64
# Seconds to wait for a command, for message data, and for a whole session ("@TIMEOUT@").
# No write to a client (a reply, the TLS handshake) may take longer than idle_timeout_secs, and
# the session ends at session_timeout_secs whatever the client does.
#idle_timeout_secs = 300
#data_timeout_secs = 600
#session_timeout_secs = 1800
# A message larger than this many bytes is written to a file in data_dir/spool while it arrives
# (and kept as a file in data_dir/queue until delivered), so a session holds at most about this
# much of a message in memory.
#spool_threshold_bytes = 1048576
# The mailbox (of any tenant) that receives mail to <postmaster> (RFC 5321 4.5.1) and to
# postmaster@ and abuse@ of every accepted domain (reserved for it; RFC 2142).
# Empty: such mail is accepted and waits in the queue until a postmaster mailbox is set.
#postmaster = ""
# PEM certificate chain and key for STARTTLS. Empty: a self-signed certificate is generated at
# first start (in data_dir/tls) and reused.
#tls_cert = ""
#tls_key = ""

[submission]
# The submission listener for mail clients and devices (RFC 6409), as Exchange Online's
# smtp.office365.com:587: STARTTLS first ("@MUST_STARTTLS@" before it; the certificate is
# [smtp]'s), then AUTH PLAIN or LOGIN with a mailbox's address and password; MAIL without AUTH
# gets "@ANONYMOUS_SUBMISSION@". A mailbox sends as its own addresses, or as a mailbox it has
# send-as on ("@SEND_AS_DENIED@" otherwise), to any domain.
# Production: ["0.0.0.0:587", "[::]:587"]. Empty: no submission listener.
#listen = ["127.0.0.1:2587"]
# Per mailbox: messages a minute and recipients a day (Exchange Online's limits); beyond them
# "@SUBMISSION_QUOTA_EXCEEDED@".
#max_messages_per_minute = 30
#max_recipients_per_day = 10000
# After this many failed AUTH for one address, or from one client IP, it is locked for
# auth_lockout_secs ("@AUTH_LOCKED@" without checking the password, even the right one); each
# further failure doubles the lock, up to an hour. A success resets the address's count.
#auth_max_failures = 5
#auth_max_failures_per_ip = 20
#auth_lockout_secs = 300
# Password hashes (argon2) computed at once for AUTH; further attempts wait up to 5 s.
#auth_max_concurrent_hashes = 4
# Failed AUTH in one session before it is closed ("@TOO_MANY_AUTH_FAILURES@").
#max_auth_failures_per_session = 3

[admin]
# The admin HTTP API (JSON under /api/v1/). Keep it on loopback or behind a TLS proxy.
#listen = "127.0.0.1:8025"
# Users' login (POST /api/v1/auth/login): after this many failures for one address, or from one
# client IP, it is locked ("429 Too Many Requests" with Retry-After, even for the right password)
# for login_lockout_secs; each further failure doubles the lock, up to an hour. A success resets
# the address's count.
#login_max_failures = 5
#login_max_failures_per_ip = 20
#login_lockout_secs = 60
# Password hashes (argon2) computed at once; further logins wait up to 5 s, then get 503.
#login_max_concurrent_hashes = 4
# The web console at / (sign in with a mailbox's address and password; the operator as
# "operator" with the operator token; the login limits above apply). A session ends after this
# many seconds unused, this long after sign-in, or at sign-out. console_secure_cookies marks the
# session cookie Secure: set it when a TLS proxy serves this listener.
#console_idle_secs = 1800
#console_max_secs = 43200
#console_secure_cookies = false

[queue]
# Hours a message may wait in the queue (Exchange's MessageExpirationTimeout: 2 days; at most
# 90 days). A recipient still deferred this long after its message arrived fails with
# "@MESSAGE_EXPIRED@" and the sender gets an NDR. Deferred recipients are
# retried after 1, 5, 15 and 30 minutes, then hourly. Mail for the platform postmaster waits
# for smtp.postmaster without expiring.
#message_expiration_hours = 48

[trace]
# Days of message trace kept. One query may span all of it.
#retention_days = 90

[quarantine]
# Days a quarantined message is kept before it is removed for good, per kind, 1-30 (Exchange:
# 30 for malware and mail flow rules; QuarantineRetentionPeriod for spam). Released or deleted
# items stay listed until then.
#malware_days = 30
#transport_rule_days = 30
#spam_days = 30
#high_confidence_spam_days = 30
#phish_days = 30
#high_confidence_phish_days = 30
#bulk_days = 30
# End-user quarantine notifications: a digest mail to each recipient with new held spam, bulk
# or phishing (never malware, high confidence phishing or mail flow rule quarantine, which only
# admins release), with a release link per message. Seconds between two looks for recipients
# owed one, and messages listed in one digest at most.
#notification_interval_secs = 3600
#notification_max_items = 50
# The release page's public address (release links are <release_url>?t=...). Empty: the
# admin listener's /quarantine/release.
#release_url = ""
# Every recipient's notification settings for now (Exchange's EnableEndUserSpamNotifications,
# EndUserSpamNotificationFrequency in days (1-15), EndUserSpamNotificationLanguage: default,
# en or ja).
#end_user_spam_notifications = false
#end_user_spam_notification_frequency = 3
#end_user_spam_notification_language = "default"

[malware]
# The malware filter's engines. Which mail is filtered and what happens to it is each tenant's
# malware filter policy (hato malware-filter show|set). The EICAR test file is detected with no
# settings at all.
# A directory of ClamAV-format signature files (.hdb, .hsb, .ndb) for the built-in engine,
# reloaded when they change. Empty: the built-in signatures only.
#signatures_dir = ""
# A ClamAV daemon asked about every message too: "host:port" (its TCPSocket) or the path of its
# LocalSocket (e.g. "/run/clamav/clamd.ctl"). A daemon that does not answer defers the message
# with "@MALWARE_SCAN_UNAVAILABLE@", never passes it. Its StreamMaxLength must be at least
# smtp.max_message_size.
#clamd = ""
#clamd_timeout_secs = 30

[content]
# Run the malware filter and the transport rules on every message before the final 250. Off
# only to measure or troubleshoot: mail is then accepted unscanned.
#pipeline = true
# MiB of messages examined at once; more wait their turn (a message costs memory a few times
# its size while it is parsed and unpacked). At least smtp.max_message_size.
#scan_budget_mb = 64

[spam]
# The spam filter, after the malware filter and the transport rules: SCL, verdicts, sender
# authentication (SPF, DKIM, DMARC, ARC). What happens to spam is each tenant's anti-spam policy
# (`hato spam-filter`). Off only to measure or troubleshoot.
#enabled = true
# A classifier model built by `hato spam train`; empty: the model shipped in hato.
#model = ""

[throttle]
# IP throttling by volume and reputation, per sending IP (IPv4 address, IPv6 prefix). An IP that
# sends far more than its history supports, or whose mail is judged spam, gets
# "@SERVER_BUSY@" (the rule that fired) until the throttle ends by
# itself. `hato throttle status IP` shows the figures, the rule, since and until when; `hato
# throttle release IP` ends it; `hato throttle exempt add --tenant T IP|CIDR` exempts a tenant's
# own servers. The rules (docs/architecture.md lists them):
#   AS1  on probation: recipients in the last hour above probation_recipients_per_hour
#   AS2  on probation: recipients in the last 24 hours above probation_recipients_per_day
#   AS3  established: recipients in the last 24 hours above surge_factor x its daily history
#        (at least surge_min_recipients_per_day)
#   AS4  share of its mail judged spam or reported as junk at least junk_share_percent
#   AS5  share of its RCPTs in the last hour to unknown recipients at least
#        unknown_recipient_share_percent
#   AS6  connections in the last minute above (probation_)connections_per_minute
# The volume limits are lowered by the junk share (at 30% junk, 70% of them). Shares count at
# least junk_min_messages messages / unknown_recipient_min RCPTs.
#enabled = true
# Loopback clients (127.0.0.0/8, ::1: programs on this host) are never throttled, as Postfix
# exempts $mynetworks from its rate limits.
#exempt_loopback = true
# IPs tracked at most (about 80 MB per million); the least valuable are forgotten first (on
# probation, clean, least recently seen), throttled ones last.
#max_tracked_ips = 1000000
# The state is saved to data_dir/throttle.state this often and at shutdown, and read at start
# (a crash loses at most this interval).
#snapshot_interval_secs = 300
# IPv6 senders share one record per prefix of this many bits (1-64).
#ipv6_prefix_length = 64
# How long history counts: a day's mail weighs less each day, 5% after this many days.
#history_days = 30
# Days from its first connection during which an IP is on probation (lower limits).
#probation_days = 3
#probation_recipients_per_hour = 100
#probation_recipients_per_day = 1000
#surge_factor = 10
#surge_min_recipients_per_day = 5000
#junk_share_percent = 50
#junk_min_messages = 20
#unknown_recipient_share_percent = 50
#unknown_recipient_min = 20
#connections_per_minute = 600
#probation_connections_per_minute = 60
# The first throttle lasts throttle_minutes; each further one (within history_days of the last)
# twice the one before, at most max_throttle_hours.
#throttle_minutes = 60
#max_throttle_hours = 24
# After `hato throttle release`, no rule fires for the IP for this many hours.
#release_grace_hours = 24

[edge]
# Who is connecting, decided before any content is read. Every connection refused, deferred or
# cut here is in the connection log (`hato connections`).
# Refuse a client whose HELO/EHLO names this server (server.hostname, or an address it listens
# on) while it connects from another host: "@BAD_HELO@".
#reject_bad_helo = true
# Look up each client's name by reverse DNS at connect (PTR, then the name's addresses: only a
# name that resolves back to the client counts). It goes in the connection log, the trace and
# the Received header; a lookup that fails or times out (dns.timeout_ms) lets the client in
# unnamed and says so in the trace.
#reverse_dns = true
# Milliseconds to wait before the banner. A client that sends anything meanwhile has not waited
# for it (RFC 5321 4.3.1; Postfix postscreen's pregreet test) and gets "@EARLY_TALKER@"
# instead of the banner, and the connection is closed. 0: the banner at once. Every client waits
# this long for the banner (postscreen waits 6000); less than 300000.
#greeting_delay_ms = 0
# Entries each list of a tenant's connection filter policy may hold (its IP allow list and IP
# block list; a blocked client gets "@CUSTOMER_BLOCK_LIST@"). Exchange Online's limit is 1273.
#connection_filter_max_entries = 1273
# Days of connection log kept.
#connection_log_retention_days = 30
# The delist page's public address. A client on the provider's block list (hato blocklist) is
# refused with "@BANNED_SENDING_IP@ Access denied, banned sending IP [IP]. To request removal
# from this list please visit <delist_url> and follow the directions.", and the page mails
# confirmation links to <delist_url>/confirm. Empty: the admin listener's /delist
# (http://<admin.listen>/delist, with server.hostname when it listens on all addresses); behind
# a TLS proxy, give the proxy's https:// address of that page.
#delist_url = ""

[outbound]
# Delivery to other servers by MX (mail contacts, relay through on-premises connectors, NDRs to
# outside senders). The port MX hosts are reached on (25; a test points it at its receiver).
#smtp_port = 25
# The normal pool's EHLO name (empty: server.hostname) and source address (empty: the system's).
#helo_name = ""
#source_address = ""
# Connections per destination: the first ones, and the most it grows to while deliveries
# succeed (halved when its hosts cannot be reached). Connections at once, in all: a backlog to
# one slow destination holds its own few, never all of them.
#initial_destination_concurrency = 2
#destination_concurrency_limit = 20
#max_connections = 100
# Milliseconds a session stays open, idle, for the next message to its destination (Postfix's
# smtp_connection_cache_time_limit); 0: close it as soon as nothing more is queued for it.
#connection_cache_ms = 2000
# Seconds before the first retry of a deferred recipient, doubled after each, up to the most.
#retry_first_secs = 300
#retry_max_secs = 3600
# Seconds after its arrival an outside recipient is tried (24 hours: Exchange's connector
# queue); then it fails with "@MESSAGE_EXPIRED@" and the sender gets an NDR.
#expiration_secs = 86400
# Seconds after its arrival a recipient still deferred gets its sender one delay notice (4
# hours, as Exchange; none when its RCPT said NOTIFY without DELAY, RFC 3461).
#delay_notice_secs = 14400
# Seconds to wait for a TCP connection to a host before the next one is tried.
#connect_timeout_secs = 30
# MTA-STS (RFC 8461): a recipient domain publishing "_mta-sts" TXT and a policy at
# https://mta-sts.<domain>/.well-known/mta-sts.txt gets its mail only at the MX hosts the policy
# names, over TLS with a certificate valid for the host ("enforce"; otherwise deferred), or as
# before with the failures noted ("testing"). Policies are cached for their max_age, in the store.
#mta_sts = true
# The port policies are fetched from, and the seconds a fetch may take.
#mta_sts_port = 443
#mta_sts_timeout_secs = 20
# A PEM file of CA certificates trusted beside the system's, for outbound TLS certificate checks
# (connectors' certificate-validation and domain-validation, MTA-STS). Empty: the system's only.
#extra_ca_file = ""

[outbound.high_risk]
# The high-risk pool, which every NDR and every outbound message the spam filter judges spam
# (SCL 5 or more, or phish; submission and relay) leave from (Exchange's high-risk delivery
# pool): its EHLO name and source address (empty: the normal pool's).
#helo_name = ""
#source_address = ""

[testing]
# FOR TESTS ONLY, never on a server that carries real mail: a clock that starts at the real
# time and moves only when the operator moves it (POST /api/v1/testing/clock
# {"advance_seconds": N}), so end-to-end tests see retries, delay notices, expiry and warm-up
# days without waiting. Off, that API answers 404.
#manual_clock = false

[dns]
# The DNS servers hato asks (DNS block lists, domain verification), each "IP" or "IP:port", over
# UDP and (for large answers) TCP. Empty: the system's, from /etc/resolv.conf.
#servers = []
# The longest one lookup may take, in milliseconds. A DNS block list that has not answered by
# then lets the client in unchecked (it fails open), and the connection log says so.
#timeout_ms = 5000
# Answers kept in the cache, each for its TTL (and "no such record" for the zone's negative TTL).
#cache_size = 10000

# DNS block lists (RFC 5782), asked at connect for every client, all zones at once. None by
# default: hato never queries a public list unasked. A client a zone lists gets
# "@DNSBL_LISTED@",
# and no allow list overrides it. Give each zone, where a listed sender asks for removal, and
# what its return codes mean (a code or a range in 127.0.0.0/8; when codes are given, only they
# list a client). 127.255.255.x means the list refused the query (Spamhaus: through a public
# resolver, or over its free quota): not a listing, and noted in the connection log. Spamhaus
# ZEN, which must be asked through your own resolver:
#
## [[dnsbl]]
## zone = "zen.spamhaus.org"
## removal_url = "https://check.spamhaus.org/"
## codes = { "127.0.0.2" = "SBL", "127.0.0.3" = "SBL CSS", "127.0.0.4-127.0.0.7" = "XBL", "127.0.0.9" = "DROP", "127.0.0.10-127.0.0.11" = "PBL" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() {
        let template = template();
        // A marker left is a piece between two `@` of capitals and underscores only.
        let marker = template
            .split('@')
            .find(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        assert_eq!(marker, None, "a reply left out: {template}");
        assert!(template.contains("\"452 4.5.3 Too many recipients\""));
        assert!(template.contains("(\"421 4.3.2\" beyond) and from one IP\n# (\"421 4.7.0\")"));
        let c: Config = toml::from_str(&template).unwrap();
        assert_eq!(c.smtp.listen, vec!["127.0.0.1:2525"]);
        assert_eq!(c.smtp.max_message_size, 36_700_160);
        assert_eq!(c.admin.listen, "127.0.0.1:8025");
        let uncommented: String = template
            .lines()
            .map(|l| {
                l.strip_prefix('#')
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c2: Config = toml::from_str(&uncommented).unwrap();
        assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&c2).unwrap());
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("etc");
        std::fs::create_dir_all(&sub).unwrap();
        let file = sub.join("hato.toml");
        std::fs::write(&file, "[server]\ndata_dir = \"data\"\n").unwrap();
        let (c, _) = Config::load(Some(&file)).unwrap();
        assert_eq!(c.server.data_dir, sub.join("data"));
    }

    #[test]
    fn login_limits_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (text, name) in [
            (
                "[admin]\nlogin_max_failures = 0\n",
                "admin.login_max_failures",
            ),
            (
                "[admin]\nlogin_max_failures_per_ip = 0\n",
                "admin.login_max_failures_per_ip",
            ),
            (
                "[admin]\nlogin_lockout_secs = 0\n",
                "admin.login_lockout_secs",
            ),
            (
                "[admin]\nlogin_lockout_secs = 7200\n",
                "admin.login_lockout_secs",
            ),
            (
                "[admin]\nlogin_max_concurrent_hashes = 0\n",
                "admin.login_max_concurrent_hashes",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(Some(&file)).unwrap_err().to_string();
            assert!(err.contains(name), "{text}: {err}");
        }
        std::fs::write(&file, "[admin]\nlogin_max_failures = 3\n").unwrap();
        let (c, _) = Config::load(Some(&file)).unwrap();
        assert_eq!(c.admin.login_max_failures, 3);
        assert_eq!(c.admin.login_lockout_secs, 60);
    }

    #[test]
    fn ipv6_prefix_length_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (value, ok) in [
            ("0", false),
            ("1", true),
            ("64", true),
            ("128", true),
            ("129", false),
        ] {
            std::fs::write(&file, format!("[smtp]\nipv6_prefix_length = {value}\n")).unwrap();
            let result = Config::load(Some(&file));
            assert_eq!(result.is_ok(), ok, "{value}: {:?}", result.err());
        }
        assert_eq!(Config::default().smtp.ipv6_prefix_length, 64);
    }

    #[test]
    fn postmaster_must_be_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        std::fs::write(&file, "[smtp]\npostmaster = \"not an address\"\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
        std::fs::write(&file, "[smtp]\npostmaster = \"PM@Platform.test\"\n").unwrap();
        let (c, _) = Config::load(Some(&file)).unwrap();
        assert_eq!(
            c.smtp.postmaster_address().unwrap().to_string(),
            "pm@platform.test"
        );
        assert!(Config::default().smtp.postmaster_address().is_none());
    }

    #[test]
    fn quarantine_retention_is_per_kind_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (value, ok) in [("0", false), ("1", true), ("30", true), ("31", false)] {
            std::fs::write(&file, format!("[quarantine]\nspam_days = {value}\n")).unwrap();
            let result = Config::load(Some(&file));
            assert_eq!(result.is_ok(), ok, "{value}: {:?}", result.err());
            match result {
                Ok((c, _)) => assert_eq!(c.quarantine.spam_days.to_string(), value),
                Err(e) => assert!(e.to_string().contains("quarantine.spam_days"), "{e}"),
            }
        }
        assert_eq!(Config::default().quarantine.malware_days, 30);
    }

    #[test]
    fn quarantine_notification_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (line, ok, name) in [
            (
                "notification_interval_secs = 0",
                false,
                "notification_interval_secs",
            ),
            ("notification_interval_secs = 1", true, ""),
            (
                "notification_interval_secs = 86401",
                false,
                "notification_interval_secs",
            ),
            (
                "notification_max_items = 0",
                false,
                "notification_max_items",
            ),
            ("notification_max_items = 500", true, ""),
            (
                "end_user_spam_notification_frequency = 0",
                false,
                "frequency",
            ),
            ("end_user_spam_notification_frequency = 15", true, ""),
            (
                "end_user_spam_notification_frequency = 16",
                false,
                "frequency",
            ),
            (
                "release_url = \"https://mail.example.test/quarantine/release\"",
                true,
                "",
            ),
            (
                "release_url = \"ftp://mail.example.test/r\"",
                false,
                "release_url",
            ),
            (
                "release_url = \"https://mail.example.test/r?x=1\"",
                false,
                "release_url",
            ),
            (
                "release_url = \"https://mail.example.test/r\\\"><script>\"",
                false,
                "release_url",
            ),
            (
                "release_url = \"https://mail.example.test/r r\"",
                false,
                "release_url",
            ),
        ] {
            std::fs::write(&file, format!("[quarantine]\n{line}\n")).unwrap();
            let result = Config::load(Some(&file));
            assert_eq!(result.is_ok(), ok, "{line}: {:?}", result.err());
            if let Err(e) = result {
                assert!(e.to_string().contains(name), "{line}: {e}");
            }
        }
        let q = Config::default().quarantine;
        assert!(!q.end_user_spam_notifications);
        assert_eq!(q.end_user_spam_notification_frequency, 3);
        let admin: std::net::SocketAddr = "127.0.0.1:8025".parse().unwrap();
        assert_eq!(
            q.release_url(admin, "mx.hato.test"),
            "http://127.0.0.1:8025/quarantine/release"
        );
        assert_eq!(
            q.release_url("0.0.0.0:8025".parse().unwrap(), "mx.hato.test"),
            "http://mx.hato.test:8025/quarantine/release"
        );
    }

    #[test]
    fn message_expiration_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (value, ok) in [("0", false), ("1", true), ("2160", true), ("2161", false)] {
            std::fs::write(
                &file,
                format!("[queue]\nmessage_expiration_hours = {value}\n"),
            )
            .unwrap();
            let result = Config::load(Some(&file));
            assert_eq!(result.is_ok(), ok, "{value}: {:?}", result.err());
            if let Err(e) = result {
                assert!(
                    e.to_string().contains("queue.message_expiration_hours"),
                    "{e}"
                );
            }
        }
        assert_eq!(Config::default().queue.message_expiration_hours, 48);
        assert!(template().contains("\"550 4.4.7 QUEUE.Expired; message expired\""));
    }

    #[test]
    fn the_delist_url_is_checked_and_defaults_to_the_admin_listener() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        for (value, ok) in [
            ("https://mail.example.test/delist", true),
            ("http://[2001:db8::1]:8025/delist/", true),
            ("ftp://mail.example.test/delist", false),
            ("mail.example.test/delist", false),
            ("https://mail.example.test/de list", false),
            ("https://mail.example.test/delist\r\n250 OK", false),
            ("https://mail.example.test/delist?x=1", false),
            ("https://mail.example.test/délist", false),
        ] {
            std::fs::write(&file, format!("[edge]\ndelist_url = {value:?}\n")).unwrap();
            let result = Config::load(Some(&file));
            assert_eq!(result.is_ok(), ok, "{value}: {:?}", result.err());
            if let Err(e) = result {
                assert!(e.to_string().contains("edge.delist_url"), "{e}");
            }
        }
        let long = format!("https://x.test/{}", "a".repeat(200));
        std::fs::write(&file, format!("[edge]\ndelist_url = {long:?}\n")).unwrap();
        assert!(Config::load(Some(&file)).is_err());
        let edge = |url: &str| EdgeSection {
            delist_url: url.into(),
            ..EdgeSection::default()
        };
        let admin: std::net::SocketAddr = "127.0.0.1:8025".parse().unwrap();
        assert_eq!(
            edge("").delist_url(admin, "mx.hato.test"),
            "http://127.0.0.1:8025/delist"
        );
        assert_eq!(
            edge("").delist_url("[::1]:8025".parse().unwrap(), "mx.hato.test"),
            "http://[::1]:8025/delist"
        );
        assert_eq!(
            edge("").delist_url("0.0.0.0:8025".parse().unwrap(), "mx.hato.test"),
            "http://mx.hato.test:8025/delist"
        );
        assert_eq!(
            edge("https://mx.example.test/delist/").delist_url(admin, "mx.hato.test"),
            "https://mx.example.test/delist"
        );
        assert!(template().contains("refused with \"550 5.7.606 Access denied"));
        assert_eq!(Config::default().edge.delist_url, "");
    }

    #[test]
    fn dns_and_dnsbl_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        // The defaults: the system's resolver, no block list.
        let c = Config::default();
        assert!(c.dns.servers.is_empty() && c.dnsbl.is_empty());
        assert_eq!((c.dns.timeout_ms, c.dns.cache_size), (5000, 10_000));
        // The template's example zone, uncommented, is a valid setting.
        let example: String = template()
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(
            &file,
            format!("[dns]\nservers = [\"127.0.0.1:5353\"]\ntimeout_ms = 1500\n\n{example}\n"),
        )
        .unwrap();
        let (c, _) = Config::load(Some(&file)).unwrap();
        assert_eq!(c.dns.servers, ["127.0.0.1:5353"]);
        assert_eq!(c.dns.timeout_ms, 1500);
        let zones = c.dnsbl_zones().unwrap();
        assert_eq!(zones.len(), 1);
        assert_eq!(zones[0].zone(), "zen.spamhaus.org");
        assert_eq!(zones[0].removal_url(), "https://check.spamhaus.org/");
        assert_eq!(c.dnsbl[0].codes.len(), 5);
        assert!(template().contains(
            "\"550 5.7.1 Service unavailable; Client host [IP] blocked using ZONE; To request \
             removal from this list see URL\""
        ));
        for (text, error) in [
            (
                "[dns]\nservers = [\"dns.example\"]\n",
                "dns.servers: \"dns.example\" is not an IP address or IP:port",
            ),
            (
                "[dns]\ntimeout_ms = 0\n",
                "dns.timeout_ms must be between 1 and 60000 (is 0)",
            ),
            (
                "[[dnsbl]]\nzone = \"zen.spamhaus.org\"\nremoval_url = \"https://x.test/\"\ncodes = { \"10.0.0.2\" = \"SBL\" }\n",
                "dnsbl zone zen.spamhaus.org: code \"10.0.0.2\" must be",
            ),
            (
                "[[dnsbl]]\nzone = \"a.test\"\nremoval_url = \"u\"\n[[dnsbl]]\nzone = \"A.test\"\nremoval_url = \"u\"\n",
                "dnsbl zone a.test is given twice",
            ),
            (
                "[[dnsbl]]\nzone = \"a.test\"\n",
                "missing field `removal_url`",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::load(Some(&file)).unwrap_err().to_string();
            assert!(err.contains(error), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hato.toml");
        std::fs::write(&file, "[smtp]\nlisten_on = 1\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("listen_on"), "{err}");
    }
}

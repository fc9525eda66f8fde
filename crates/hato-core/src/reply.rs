//! The catalogue of SMTP replies hato sends or records (architecture decision 9): one named entry
//! each, so codes stay consistent and are documented in one place (RFC 5321 §4.2 reply codes,
//! RFC 3463 enhanced status codes, texts modelled on Exchange Online's where users know them).
//!
//! Every entry is declared once in [`replies!`]-form below, which makes the constant (or, for a
//! reply with a variable part, the function) and its line in [`catalogue`]; `docs/replies.md` is
//! that list as a table, kept in step by a test. A reply read back from where it was recorded
//! (trace events) is rebuilt with [`Reply::stored`].

use std::borrow::Cow;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// RFC 3463 enhanced status code, e.g. `5.4.1`; empty for the replies that carry none (the
    /// banner, 354, the EHLO greeting).
    pub status: Cow<'static, str>,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Self {
        Reply {
            code,
            status: Cow::Borrowed(status),
            text: Cow::Borrowed(text),
        }
    }

    pub fn with_text(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            status: Cow::Borrowed(status),
            text: Cow::Owned(text.into()),
        }
    }

    /// A reply as it was recorded (a trace event's status, enhanced status and text), for the
    /// NDR that reports it. Not for new replies: those are entries of the catalogue.
    pub fn stored(code: u16, status: impl Into<String>, text: impl Into<String>) -> Self {
        Reply {
            code,
            status: Cow::Owned(status.into()),
            text: Cow::Owned(text.into()),
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply as sent on the wire, CRLF-terminated.
    pub fn to_wire(&self) -> Vec<u8> {
        format!("{self}\r\n").into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status.is_empty() {
            write!(f, "{} {}", self.code, self.text)
        } else {
            write!(f, "{} {} {}", self.code, self.status, self.text)
        }
    }
}

/// One line of the catalogue: a constant, or a function with the variable parts named in braces
/// in its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The heading it is listed under.
    pub section: &'static str,
    /// The constant's name, or the function's name with its parameters (`queued(trace_id)`).
    pub name: &'static str,
    pub code: u16,
    pub status: &'static str,
    /// The text; a function's variable parts appear as `{parameter}`.
    pub text: &'static str,
    /// What it is for (the entry's doc comment).
    pub doc: &'static str,
}

/// Declares the catalogue: each `const NAME = (code, "status", "text");` becomes a constant,
/// each `fn name(p, …) = (code, "status", "text {p}");` a function taking every parameter as
/// `impl Display`, and each one a line of [`catalogue`], under the last `section "…";` before it.
macro_rules! replies {
    (@munch $section:literal [$($entry:expr,)*]) => {
        /// Every reply hato sends or records, in the order they are declared.
        pub fn catalogue() -> Vec<Entry> {
            vec![$($entry),*]
        }
    };
    (@munch $old:literal [$($entry:expr,)*] section $section:literal; $($rest:tt)*) => {
        replies!(@munch $section [$($entry,)*] $($rest)*);
    };
    (@munch $section:literal [$($entry:expr,)*]
        $(#[doc = $doc:literal])*
        const $name:ident = ($code:literal, $status:literal, $text:literal);
        $($rest:tt)*
    ) => {
        $(#[doc = $doc])*
        pub const $name: Reply = Reply::new($code, $status, $text);
        replies!(@munch $section [$($entry,)* Entry {
            section: $section,
            name: stringify!($name),
            code: $code,
            status: $status,
            text: $text,
            doc: concat!($($doc),*),
        },] $($rest)*);
    };
    (@munch $section:literal [$($entry:expr,)*]
        $(#[doc = $doc:literal])*
        fn $name:ident($($param:ident),*) = ($code:literal, $status:literal, $text:literal);
        $($rest:tt)*
    ) => {
        $(#[doc = $doc])*
        pub fn $name($($param: impl fmt::Display),*) -> Reply {
            Reply::with_text($code, $status, format!($text))
        }
        replies!(@munch $section [$($entry,)* Entry {
            section: $section,
            name: concat!(stringify!($name), "(", stringify!($($param),*), ")"),
            code: $code,
            status: $status,
            text: $text,
            doc: concat!($($doc),*),
        },] $($rest)*);
    };
    ($($body:tt)*) => {
        replies!(@munch "" [] $($body)*);
    };
}

replies! {
    section "Greeting, positive and intermediate replies";
    /// The banner (RFC 5321 §4.3.1), after the connect hook accepted the client.
    fn greeting(hostname) = (220, "", "{hostname} ESMTP hato ready");
    /// The first line of the reply to EHLO/HELO (the extensions follow it in EHLO's reply).
    fn hello(hostname, client_ip) = (250, "", "{hostname} Hello [{client_ip}]");
    /// RSET, NOOP.
    const OK = (250, "2.0.0", "OK");
    /// MAIL FROM accepted.
    const SENDER_OK = (250, "2.1.0", "Sender OK");
    /// RCPT TO accepted.
    const RECIPIENT_OK = (250, "2.1.5", "Recipient OK");
    /// DATA: send the message (RFC 5321 §4.1.1.4).
    const START_DATA = (354, "", "Start mail input; end with <CRLF>.<CRLF>");
    /// The final reply after DATA, sent only once the message is durable.
    fn queued(trace_id) = (250, "2.6.0", "<{trace_id}> Queued mail for delivery");
    /// STARTTLS: the TLS handshake follows (RFC 3207 §4).
    const READY_TO_START_TLS = (220, "2.0.0", "SMTP server ready");
    /// QUIT (RFC 5321 §4.1.1.10).
    fn closing(hostname) = (221, "2.0.0", "{hostname} closing connection");
    /// HELP (RFC 5321 §4.1.1.8).
    const HELP = (214, "2.0.0", "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS VRFY HELP");
    /// RFC 5321 §3.5.3: VRFY is disabled; 252 says we will still try to deliver.
    const VRFY_DISABLED = (252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");

    section "Recipient and relay decisions at RCPT (Exchange Online texts)";
    /// Directory-based edge blocking: unknown recipient of an authoritative domain.
    const RECIPIENT_REJECTED = (550, "5.4.1", "Recipient address rejected: Access denied");
    /// Domain not accepted by any tenant: direct send never relays.
    const UNABLE_TO_RELAY = (550, "5.7.1", "Unable to relay");
    /// More RCPTs than `smtp.max_recipients`; the client sends the rest in another transaction
    /// (RFC 5321 §4.5.3.1.10).
    const TOO_MANY_RECIPIENTS = (452, "4.5.3", "Too many recipients");
    /// A group that requires authenticated senders (RequireSenderAuthenticationEnabled), to a
    /// sender who did not authenticate (Exchange's 5.7.133).
    fn group_sender_not_authenticated(group) = (550, "5.7.133", "RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; the group {group} accepts mail only from senders inside its organization");
    /// A sender outside the group's AcceptMessagesOnlyFrom(SendersOrMembers) (Exchange's 5.7.124).
    fn group_sender_not_allowed(group) = (550, "5.7.124", "RESOLVER.RST.SenderNotAllowed; sender not in the allowed-senders list of the group {group}");
    /// A sender in the group's RejectMessagesFrom(SendersOrMembers).
    fn group_sender_rejected(group) = (550, "5.7.1", "RESOLVER.RST.NotAuthorized; the group {group} does not accept mail from this sender");

    section "Inbound connectors and tenant attribution (Exchange Online texts)";
    /// Relay to a domain no tenant accepts, with a MAIL FROM domain that is a tenant's accepted
    /// domain, from a client no enabled on-premises inbound connector of that tenant matches
    /// (Exchange Online's 5.7.64: the IP or certificate changed, or no connector exists).
    const TENANT_ATTRIBUTION_RELAY_DENIED = (550, "5.7.64", "TenantAttribution; Relay Access Denied");
    /// A partner inbound connector of the recipient's tenant covers the sender's domain and
    /// restricts it to its IPs (RestrictDomainsToIPAddresses) or to a certificate
    /// (RestrictDomainsToCertificate), and the client does not match: Exchange Online's 5.7.51.
    const PARTNER_CONNECTOR_RESTRICTED = (550, "5.7.51", "TenantInboundAttribution; There is a partner connector configured that matched the message's recipient domain. The connector had either the RestrictDomainsToIPAddresses or RestrictDomainsToCertificate set");
    /// A partner inbound connector with RequireTls covers the sender's domain and the session did
    /// not STARTTLS: Exchange on-premises' text for RequireTLS (Exchange Online's exact code for
    /// this is not documented; a 4xx lets the client try again with TLS).
    const CONNECTOR_REQUIRES_TLS = (451, "5.7.3", "STARTTLS is required to send mail");
    /// The recipient's tenant has RejectDirectSend on, and anonymous mail claims one of its
    /// accepted domains from a client none of its inbound connectors matches (Exchange Online's
    /// text, the April 2025 announcement of Set-OrganizationConfig -RejectDirectSend).
    const DIRECT_SEND_REJECTED = (550, "5.7.68", "TenantInboundAttribution; Direct Send not allowed for this organization from unauthorized sources");

    section "SMTP AUTH and client submission (RFC 4954, RFC 6409; Exchange Online texts)";
    /// AUTH accepted (RFC 4954 §6).
    const AUTH_SUCCEEDED = (235, "2.7.0", "Authentication successful");
    /// AUTH PLAIN without an initial response: the empty server challenge (RFC 4954 §4).
    const AUTH_CONTINUE = (334, "", "");
    /// AUTH LOGIN's first challenge, `Username:` in base64 (the draft-murchison-sasl-login form
    /// every client expects).
    const AUTH_LOGIN_USERNAME = (334, "", "VXNlcm5hbWU6");
    /// AUTH LOGIN's second challenge, `Password:` in base64.
    const AUTH_LOGIN_PASSWORD = (334, "", "UGFzc3dvcmQ6");
    /// Wrong user name or password, an unknown user, or a mailbox without a password (one answer
    /// for all, so the reply does not tell which addresses exist): Exchange Online's text.
    const AUTH_FAILED = (535, "5.7.3", "Authentication unsuccessful");
    /// AUTH PLAIN with an authorization identity (authzid) other than the user's own: hato does
    /// not let one user act as another through SASL (RFC 4616 §2 leaves it to the server).
    const AUTH_AUTHZID_REFUSED = (535, "5.7.3", "Authentication unsuccessful: the authorization identity must be empty or the user's own");
    /// The right password for a mailbox whose SMTP AUTH is off (`hato mailbox set
    /// --smtp-client-authentication-disabled true`, Exchange's `Set-CASMailbox
    /// -SmtpClientAuthenticationDisabled`): Exchange Online's 5.7.139 text.
    const AUTH_DISABLED_FOR_MAILBOX = (535, "5.7.139", "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox");
    /// Too many failed AUTH attempts for this user or from this IP (`submission.auth_max_failures`,
    /// `submission.auth_max_failures_per_ip`): refused without checking the password until the
    /// lock ends (RFC 4954 §6, temporary authentication failure).
    const AUTH_LOCKED = (454, "4.7.0", "Temporary authentication failure: too many failed attempts; try again later");
    /// The credential check could not run (store trouble, every hashing slot busy).
    const AUTH_TEMPORARY_FAILURE = (454, "4.7.0", "Temporary authentication failure");
    /// The client answered a challenge with `*` (RFC 4954 §4).
    const AUTH_CANCELLED = (501, "5.7.0", "Authentication cancelled");
    /// A response that is not base64, or not a PLAIN message (RFC 4954 §4, RFC 4616 §2).
    const AUTH_BAD_RESPONSE = (501, "5.5.2", "Cannot decode response");
    /// A line of the authentication exchange over 12,288 octets (RFC 4954 §4 and §6).
    const AUTH_LINE_TOO_LONG = (500, "5.5.6", "Authentication Exchange line is too long");
    /// A mechanism other than PLAIN and LOGIN (RFC 4954 §6).
    const AUTH_UNKNOWN_MECHANISM = (504, "5.5.4", "Unrecognized authentication type");
    /// AUTH once authenticated (RFC 4954 §4: at most one successful AUTH per session).
    const AUTH_ALREADY_DONE = (503, "5.5.1", "Bad sequence of commands: already authenticated");
    /// AUTH between MAIL and the end of the transaction (RFC 4954 §4).
    const AUTH_IN_TRANSACTION = (503, "5.5.1", "Bad sequence of commands: AUTH is not permitted during a mail transaction");
    /// AUTH or MAIL on the submission listener before STARTTLS (RFC 3207 §4; Exchange Online
    /// requires TLS before authentication).
    const MUST_STARTTLS = (530, "5.7.0", "Must issue a STARTTLS command first");
    /// After `submission.max_auth_failures_per_session` failed AUTH in one session.
    const TOO_MANY_AUTH_FAILURES = (421, "4.7.0", "Too many failed authentication attempts; closing connection");
    /// MAIL on the submission listener without AUTH: Exchange Online's 5.7.57 text.
    const ANONYMOUS_SUBMISSION = (530, "5.7.57", "Client was not authenticated to send anonymous mail during MAIL FROM");
    /// An authenticated submission from an address (MAIL FROM, or the From header field) that is
    /// not the mailbox's own and on which it has no SendAs right: Exchange Online's 5.7.60 text.
    const SEND_AS_DENIED = (550, "5.7.60", "SMTP; Client does not have permissions to send as this sender");
    /// A mailbox over its submission limits (`submission.max_messages_per_minute` at MAIL,
    /// `submission.max_recipients_per_day` at RCPT): Exchange Online's 5.2.2 text.
    const SUBMISSION_QUOTA_EXCEEDED = (554, "5.2.2", "Submission quota exceeded");
    /// A restricted sender (over its tenant's outbound spam policy limits with
    /// `BlockUser`/`BlockUserForToday`, `hato restricted list`): Exchange Online's 5.1.8 text
    /// (`exchange-online-behaviour.md` §7.3), at MAIL FROM and to the DATA of the message that
    /// crossed the limit.
    const BAD_OUTBOUND_SENDER = (550, "5.1.8", "Access denied, bad outbound sender");

    section "Edge protection: who is connecting (connection filter, HELO, early talkers)";
    /// The client's IP is on the IP block list of the recipient's tenant (its connection filter
    /// policy, Exchange's `IPBlockList`), and not on its IP allow list: Exchange Online's text for
    /// 5.7.513, with the recipient's domain. Given at RCPT to each recipient of that tenant; like
    /// Exchange, the refused message leaves no message-trace row (the connection log has it).
    fn customer_block_list(ip, domain) = (550, "5.7.513", "Service unavailable, Client host [{ip}] blocked by {domain} using Customer Block list");
    /// EHLO/HELO names this server (its host name, or an address it listens on) while the client
    /// is another host: Exchange Online's text for 5.7.506.
    const BAD_HELO = (550, "5.7.506", "Access Denied, Bad HELO");
    /// With a greeting delay (`edge.greeting_delay_ms`), the client sent something before the
    /// banner, as spambots that do not wait for it do: sent instead of the banner (554, RFC 5321
    /// §3.1) and the connection closed. Postfix postscreen's pregreet test answers `Protocol
    /// error` with 5.5.1 (a command out of sequence, RFC 3463); Exchange has no such test.
    const EARLY_TALKER = (554, "5.5.1", "Protocol error: the client sent data before the greeting");

    section "Message data";
    /// MAIL SIZE or the data beyond `smtp.max_message_size` (RFC 1870).
    const MESSAGE_TOO_BIG = (552, "5.3.4", "Message size exceeds fixed maximum message size");
    /// Bare CR or LF in the message data (SMTP smuggling defence; Exchange Online's code).
    const INVALID_CHARACTERS = (550, "5.6.11", "Invalid characters");
    /// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
    const TEXT_LINE_TOO_LONG = (550, "5.6.0", "Message has a line longer than 1000 octets (RFC 5321 4.5.3.1.6)");
    /// RFC 6531 §3.5: a non-ASCII address without the SMTPUTF8 parameter.
    const NEEDS_SMTPUTF8 = (553, "5.6.7", "Non-ASCII address requires SMTPUTF8");

    section "Syntax and sequence (RFC 5321 §4.2.2, RFC 3463)";
    /// A command line over RFC 5321's 512 octets.
    const COMMAND_LINE_TOO_LONG = (500, "5.5.2", "Line too long (RFC 5321 4.5.3.1.4 allows 512 octets)");
    /// A command hato does not know (LHLO too: this is not LMTP).
    const COMMAND_UNRECOGNIZED = (500, "5.5.1", "Command unrecognized");
    /// A command that cannot be parsed, when nothing more specific applies.
    const SYNTAX_ERROR = (501, "5.5.4", "Syntax error in parameters or arguments");
    /// A command with the wrong syntax; `syntax` is the form it takes.
    fn syntax(syntax) = (501, "5.5.4", "Syntax: {syntax}");
    /// A MAIL or RCPT parameter with a value it cannot have.
    fn invalid_parameter(parameter) = (501, "5.5.4", "Invalid parameter {parameter}");
    /// A MAIL or RCPT parameter hato does not implement (the session gives at most 40
    /// characters of it).
    fn unsupported_parameter(parameter) = (555, "5.5.4", "Unsupported parameter {parameter}");
    /// A DSN parameter of MAIL or RCPT (RFC 3461 §4: RET, ENVID, NOTIFY, ORCPT) that breaks
    /// its syntax, its length limit or the rule that it is given once; `problem` says which.
    fn invalid_dsn_parameter(parameter, problem) = (501, "5.5.4", "Invalid DSN parameter {parameter}: {problem}");
    /// MAIL FROM with an address that is not an RFC 5321 mailbox.
    const BAD_SENDER_SYNTAX = (501, "5.1.7", "Bad sender address syntax");
    /// `MAIL FROM:<postmaster>`: `<postmaster>` is a recipient only (RFC 5321 §4.1.1.3); a
    /// reverse-path is a mailbox with a domain (§4.1.2), and `<>` is the null sender.
    const SENDER_NEEDS_DOMAIN = (501, "5.1.7", "Bad sender address syntax: a reverse-path needs a domain (RFC 5321 4.1.2)");
    /// RCPT TO with an address that is not an RFC 5321 mailbox.
    const BAD_RECIPIENT_SYNTAX = (501, "5.1.3", "Bad recipient address syntax");
    /// EHLO or HELO without a name (RFC 5321 §4.1.1.1).
    const HELO_REQUIRES_DOMAIN = (501, "5.5.4", "Domain name required");
    /// EXPN, BDAT, ETRN, ATRN, BURL: not offered; AUTH outside the submission listener.
    const NOT_IMPLEMENTED = (502, "5.5.1", "Command not implemented");
    /// A transaction command before EHLO/HELO.
    const SEND_HELO_FIRST = (503, "5.5.1", "Bad sequence of commands: send EHLO/HELO first");
    /// A second MAIL in one transaction.
    const SENDER_ALREADY_GIVEN = (503, "5.5.1", "Bad sequence of commands: sender already specified");
    /// RCPT or DATA before MAIL.
    const NEED_MAIL = (503, "5.5.1", "Bad sequence of commands: need MAIL command");
    /// DATA when no RCPT was accepted (RFC 5321 §3.3).
    const NO_VALID_RECIPIENTS = (554, "5.5.1", "No valid recipients");
    /// STARTTLS inside TLS.
    const TLS_ALREADY_ACTIVE = (503, "5.5.1", "TLS already active");
    /// STARTTLS without a certificate.
    const TLS_NOT_AVAILABLE = (454, "4.7.0", "TLS not available");

    section "Session limits and temporary failures";
    /// More sessions than `smtp.max_connections`, instead of the banner.
    const TOO_MANY_CONNECTIONS = (421, "4.3.2", "Service not available, too many connections; try again later");
    /// More sessions from one client (IPv4 address, IPv6 prefix) than
    /// `smtp.max_connections_per_ip`, instead of the banner.
    const TOO_MANY_CONNECTIONS_FROM_IP = (421, "4.7.0", "Too many connections from your IP address; try again later");
    /// No command (or no write taken) within `smtp.idle_timeout_secs`.
    const IDLE_TIMEOUT = (421, "4.4.2", "Timeout waiting for command; closing connection");
    /// No message data within `smtp.data_timeout_secs`.
    const DATA_TIMEOUT = (421, "4.4.2", "Timeout receiving message data; closing connection");
    /// The session reached `smtp.session_timeout_secs`.
    const SESSION_TIMEOUT = (421, "4.4.2", "Session lasted too long; closing connection");
    /// More error replies in one session than the session allows.
    const TOO_MANY_ERRORS = (421, "4.7.0", "Too many errors; closing connection");
    /// hato is stopping; the client retries later.
    const SHUTTING_DOWN = (421, "4.3.2", "Service shutting down; try again later");
    /// The message could not be made durable (disk or database trouble): the client must retry.
    const STORE_FAILED = (451, "4.3.0", "Temporary error storing the message; try again later");
    /// A directory lookup at RCPT time failed (store trouble): the client must retry.
    const DIRECTORY_FAILED = (451, "4.3.0", "Temporary directory failure; try again later");
    /// A policy hook could not decide (its lookup failed or its answer was lost): the client
    /// must retry.
    const POLICY_FAILED = (451, "4.3.0", "Temporary error evaluating policy; try again later");
    /// IP throttling (Exchange Online's text, `exchange-online-behaviour.md` §8): the sending IP
    /// (IPv4 address, IPv6 /64) sends far more than its history supports, or its reputation is
    /// bad; `rule` names the throttle rule that fired (`AS1`…, listed in `docs/architecture.md`).
    /// Temporary: the client retries after the throttle ends (at most `throttle.max_throttle_hours`).
    fn server_busy(ip, rule) = (451, "4.7.500", "Server busy. Please try again later from [{ip}]. ({rule})");

    section "Delivery outcomes (recorded in trace, quoted by NDRs)";
    /// The mailbox's quota would be exceeded (Exchange's mailbox-full text; the figures are in
    /// the trace event's reason, not in what the sender reads).
    const MAILBOX_FULL = (554, "5.2.2", "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException");
    /// No recipient answers to the address any more (at delivery, for a recipient accepted
    /// earlier).
    const RECIPIENT_NOT_FOUND = (550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup");
    /// The recipient's mailbox was removed between RCPT and delivery.
    const MAILBOX_REMOVED = (550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup (the mailbox was removed after the message was accepted)");
    /// The recipient group was removed between RCPT and routing.
    const GROUP_REMOVED = (550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup (the group was removed after the message was accepted)");
    /// A recipient queued for relay whose address a group took meanwhile: the group's
    /// restrictions were never checked for this message, so it is not delivered to the group.
    const ADDRESS_NOW_A_GROUP = (550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup (a group took this address after the message was queued; resend it)");
    /// A message that passed through more hosts than hato accepts (its `Received:` fields,
    /// RFC 5321 §6.3): a mail loop, e.g. an internal-relay domain whose MX points back at
    /// hato. Exchange's code and text for it.
    const HOP_COUNT_EXCEEDED = (554, "5.4.14", "Hop count exceeded - possible mail loop");
    /// A moderator rejected a message to a moderated group, without a comment.
    fn moderation_rejected(moderator) = (550, "5.7.1", "RESOLVER.MOD.Rejected; the moderator ({moderator}) rejected the message");
    /// A moderator rejected a message to a moderated group, with a comment.
    fn moderation_rejected_with_comment(moderator, comment) = (550, "5.7.1", "RESOLVER.MOD.Rejected; the moderator ({moderator}) rejected the message: {comment}");
    /// No moderator decided within two days (Exchange's moderation expiry).
    const MODERATION_EXPIRED = (550, "5.7.1", "RESOLVER.MOD.Expired; no moderator approved the message within 2 days");
    /// A failure whose reply code was not recorded (an event written before hato stored the
    /// codes, in a form the upgrade could not read): RFC 3463's 5.0.0, other undefined status.
    fn failure_without_code(detail) = (550, "5.0.0", "{detail}");

    section "The queue: deferrals and expiry (recorded in trace and the queue listing)";
    /// A recipient whose processing failed (its tenant is gone, its directory cannot be loaded,
    /// a write was refused, its content is unreadable): tried again on the backoff schedule
    /// until the message expires.
    fn processing_deferred(error) = (451, "4.3.0", "Temporary error processing the message: {error}; it stays queued and is tried again");
    /// The NDR a failed recipient owes could not be generated or queued: tried again on the
    /// backoff schedule, given up (with a `Dsn` event) once the message expiration has passed
    /// since the failure.
    fn ndr_deferred(error) = (451, "4.3.0", "Temporary error generating the non-delivery report: {error}; it is tried again");
    /// Mail for the platform's postmaster while `smtp.postmaster` names no mailbox (RFC 3463
    /// X.3.5, system incorrectly configured): retried every 10 seconds and, unlike other
    /// queued mail, kept past its expiry, so that no mail for the postmaster is lost to a
    /// setting not made yet.
    const POSTMASTER_NOT_CONFIGURED = (451, "4.3.5", "No platform postmaster mailbox is configured; the message stays queued, without expiry, until smtp.postmaster names a mailbox");
    /// A recipient still deferred when its message expired (`queue.message_expiration_hours`
    /// after it was received, Exchange's MessageExpirationTimeout of 2 days): Exchange's text,
    /// 550 with 4.4.7 as Exchange writes it. The last error is in the trace event's reason.
    const MESSAGE_EXPIRED = (550, "4.4.7", "QUEUE.Expired; message expired");

    section "Edge protection: refusals by who is connecting";
    /// The client's IP is on the provider's own block list (seed C2; Exchange Online's reply
    /// for Microsoft's blocked senders list, 5.7.606-649): instead of the banner, or at RCPT for
    /// a tenant that has not allowed the IP. `url` is the delist page (`edge.delist_url`).
    fn banned_sending_ip(ip, url) = (550, "5.7.606", "Access denied, banned sending IP [{ip}]. To request removal from this list please visit {url} and follow the directions.");
    section "Edge protection: DNS block lists";
    /// At connect, a client a configured DNS block list (`[[dnsbl]]`) lists: the third-party
    /// list refusal of Exchange Online (seed C2), which no allow list overrides (seed C3); the
    /// zone's return codes and their meanings are in the reason.
    fn dnsbl_listed(ip, zone, removal_url) = (550, "5.7.1", "Service unavailable; Client host [{ip}] blocked using {zone}; To request removal from this list see {removal_url}");

    section "Content protection: the malware filter and transport rules (after the data)";
    /// A malware engine (clamd) did not answer or answered with an error: the message cannot
    /// be passed unscanned, so the client retries (seed B2: nothing bypasses the malware
    /// filter).
    const MALWARE_SCAN_UNAVAILABLE = (451, "4.7.0", "Temporary error scanning the message for malware; try again later");
    /// The common attachments filter with `FileTypeAction Reject`: the DATA reply when every
    /// recipient refuses, else the NDR of each recipient that does (Exchange: "the message is
    /// rejected with an NDR").
    fn blocked_file_type(types) = (550, "5.7.1", "Delivery not authorized, message refused: it contains a blocked file type ({types})");
    /// A transport rule with `RuleErrorAction Defer` could not be evaluated: tried again.
    const RULE_EVALUATION_DEFERRED = (451, "4.7.0", "Temporary error evaluating the organization's mail flow rules; try again later");
    /// A disclaimer rule whose `ApplyHtmlDisclaimerFallbackAction` is `Reject` could not insert
    /// its disclaimer (Exchange: the message is rejected with an NDR).
    const DISCLAIMER_REJECTED = (550, "5.7.1", "Delivery not authorized, message refused: the organization's disclaimer could not be applied");
    /// The From domain fails DMARC and publishes `p=reject`, which the anti-spam policy honours
    /// (Exchange's `DmarcRejectAction` default `Reject`; the text of Exchange's NDR).
    fn dmarc_reject(domain) = (550, "5.7.509", "Access denied, sending domain {domain} does not pass DMARC verification and has a DMARC policy of reject.");
    /// What message trace shows for a recipient the spam filter's `Delete` action dropped
    /// (Exchange's tracking text; never sent to anyone: a deleted message gets no NDR).
    const MESSAGE_DELETED_BY_AGENT = (550, "4.3.2", "QUEUE.TransportAgent; message deleted by transport agent");
    /// A queued recipient an administrator deleted (`hato queue delete`; Exchange's
    /// `Remove-Message`, whose NDR and trace say `QUEUE.Admin`).
    const MESSAGE_DELETED_BY_ADMIN = (550, "4.3.2", "QUEUE.Admin; message deleted by administrative action");

    section "Outbound: the SMTP client (what a recipient gets when a server was not asked, or the session failed)";
    /// The message is larger than the receiving server's `SIZE` (RFC 1870 §4): the client does
    /// not send it.
    fn remote_size_exceeded(limit) = (552, "5.3.4", "Message size exceeds the receiving server's fixed maximum message size ({limit} bytes)");
    /// A non-ASCII address, or a message that needs SMTPUTF8, for a server that does not offer
    /// it (RFC 6531 §3.2): not sent.
    const REMOTE_LACKS_SMTPUTF8 = (553, "5.6.7", "The receiving server does not support SMTPUTF8, which this message's non-ASCII addresses or headers need");
    /// An 8-bit message for a server without 8BITMIME (RFC 6152 §3): not sent, as hato does not
    /// convert messages to 7 bits (RFC 3463 X.6.3, conversion required but not supported).
    const REMOTE_LACKS_8BITMIME = (554, "5.6.3", "Conversion required but not supported: the receiving server does not accept 8-bit content (8BITMIME)");
    /// Exchange Online's text (`exchange-online-behaviour.md` §9.4): connecting, or waiting for
    /// a reply, took longer than its timeout.
    fn connection_timed_out(detail) = (450, "4.4.315", "Connection timed out [Message={detail}]");
    /// Exchange Online's text: the host refused the TCP connection.
    fn connection_refused(detail) = (450, "4.4.316", "Connection refused [Message={detail}]");
    /// Exchange Online's text: the host could not be reached, or TLS was required and the server
    /// did not offer it, refused it, or the handshake failed.
    fn cannot_connect(detail) = (450, "4.4.317", "Cannot connect to remote server [Message={detail}]");
    /// Exchange Online's text: the server closed the connection (or it broke) in the middle of
    /// the session.
    fn connection_closed_abruptly(detail) = (450, "4.4.318", "Connection was closed abruptly [Message={detail}]");
    /// Exchange Online's text: the server's certificate did not pass the outbound connector's
    /// TLS settings (`certificate-validation`, `domain-validation`).
    fn certificate_validation_failed(detail) = (450, "4.7.320", "Certificate validation failed [Message={detail}]");
    /// The recipient domain's MTA-STS policy is `enforce` (RFC 8461 §5) and none of its MX
    /// hosts matches the policy's `mx` patterns: nothing is sent, and the message is tried
    /// again later (§5.1: never delivered to a host outside the policy). hato's text, in
    /// Exchange's form; RFC 3463 X.7.5, cryptographic failure, as Postfix's TLS policy
    /// deferrals use. A matching host whose certificate fails gets `4.7.320` above.
    fn mta_sts_no_valid_mx(detail) = (450, "4.7.5", "MTA-STS policy not satisfied [Message={detail}]");
    /// The server's replies broke the protocol (malformed, out of order, over the client's
    /// 64 KiB limit): RFC 3463 X.5.0, other protocol status; tried again later.
    fn remote_protocol_error(detail) = (451, "4.5.0", "SMTP protocol error from the remote server [Message={detail}]");
    /// The queued message's content could not be read while it was being sent: the session is
    /// cut before the end of data (nothing is delivered) and the message tried again.
    fn content_unreadable(detail) = (451, "4.3.0", "The message could not be read from the queue [Message={detail}]");

    section "Outbound: warm-up and throttling back-off";
    /// The pool's warm-up plan allows no more recipients today (issue 10 item 9): the recipient
    /// waits for the next UTC day's allowance (RFC 3463 X.4.5, congestion: hato's own pacing).
    /// Never a failure by itself; the message's expiry still applies.
    fn warmup_daily_limit(limit, pool) = (451, "4.4.5", "Warm-up: daily limit {limit} of pool {pool} reached; the message waits for the next day's allowance");
    /// A receiver answered a throttling reply (`421`/`451 4.7.x`) to the pool: nothing more
    /// goes from the pool to the domain until the back-off ends.
    fn throttle_backoff(domain, pool, until) = (451, "4.4.5", "Backing off from {domain} for pool {pool} until {until} after a throttling reply");

    section "Outbound: MX delivery (routing an outside recipient)";
    /// Exchange Online's text (`exchange-online-behaviour.md` §9.4): the MX (or an MX host's
    /// address) lookup got no answer (timeout, SERVFAIL, REFUSED), or no MX host has an
    /// address: tried again later.
    fn dns_query_failed(detail) = (450, "4.4.312", "DNS query failed [Message={detail}]");
    /// The recipient's domain does not exist (NXDOMAIN for its MX lookup, RFC 8020): Exchange
    /// Online's text for it; permanent, the sender gets an NDR at once.
    fn dns_domain_does_not_exist(domain) = (550, "5.4.310", "DNS domain {domain} does not exist [Message=InfoDomainNonexistent]");
    /// The recipient's domain publishes a null MX (`0 .`, RFC 7505 §3): it accepts no mail.
    /// RFC 7505 §4.2 gives the reply code 556 and the enhanced code 5.1.10.
    fn null_mx(domain) = (556, "5.1.10", "Recipient address rejected: {domain} does not accept mail (null MX, RFC 7505)");
    /// The recipient's domain exists but has no MX, A or AAAA record: no host to deliver to
    /// (RFC 5321 §5.1; RFC 3463 X.4.4, unable to route).
    fn no_mail_host(domain) = (550, "5.4.4", "Unable to route: {domain} has no MX, A or AAAA record");
    /// A queued outside address the SMTP client cannot put in a command (RFC 3463 X.1.3).
    fn bad_remote_address(detail) = (550, "5.1.3", "Bad destination mailbox address syntax [Message={detail}]");
}

impl Reply {
    /// The reply a transport rule's admin wrote (`RejectMessageEnhancedStatusCode`, 5.7.1 or
    /// 5.7.900-5.7.999, and `RejectMessageReasonText`, checked when the rule was saved): not
    /// an entry of the catalogue, since its text is the tenant's.
    pub fn transport_rule(code: u16, status: &str, text: &str) -> Reply {
        Reply {
            code,
            status: Cow::Owned(status.to_string()),
            text: Cow::Owned(text.to_string()),
        }
    }
}

/// The reply for a moderator's rejection: with the comment when there is one.
pub fn moderation_rejection(moderator: &str, comment: &str) -> Reply {
    if comment.is_empty() {
        moderation_rejected(moderator)
    } else {
        moderation_rejected_with_comment(moderator, comment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wire_form() {
        assert_eq!(
            RECIPIENT_REJECTED.to_wire(),
            b"550 5.4.1 Recipient address rejected: Access denied\r\n"
        );
        assert_eq!(
            START_DATA.to_wire(),
            b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        );
        assert_eq!(
            queued("abc").to_string(),
            "250 2.6.0 <abc> Queued mail for delivery"
        );
        assert_eq!(
            greeting("mx.hato.test").to_string(),
            "220 mx.hato.test ESMTP hato ready"
        );
        assert!(TOO_MANY_RECIPIENTS.code == 452 && !TOO_MANY_RECIPIENTS.is_permanent());
        assert_eq!(
            moderation_rejection("m@x.test", "").to_string(),
            "550 5.7.1 RESOLVER.MOD.Rejected; the moderator (m@x.test) rejected the message"
        );
        assert_eq!(
            moderation_rejection("m@x.test", "no").text,
            "RESOLVER.MOD.Rejected; the moderator (m@x.test) rejected the message: no"
        );
        assert_eq!(
            server_busy("203.0.113.9", "AS1").to_string(),
            "451 4.7.500 Server busy. Please try again later from [203.0.113.9]. (AS1)"
        );
        assert_eq!(
            Reply::stored(554, "5.2.2", "mailbox full").to_string(),
            "554 5.2.2 mailbox full"
        );
        assert_eq!(
            customer_block_list("192.0.2.7", "contoso.test").to_string(),
            "550 5.7.513 Service unavailable, Client host [192.0.2.7] blocked by contoso.test using Customer Block list"
        );
        assert_eq!(BAD_HELO.to_string(), "550 5.7.506 Access Denied, Bad HELO");
        assert_eq!(
            EARLY_TALKER.to_string(),
            "554 5.5.1 Protocol error: the client sent data before the greeting"
        );
        assert_eq!(
            banned_sending_ip("2001:db8::7", "https://mx.hato.test/delist").to_string(),
            "550 5.7.606 Access denied, banned sending IP [2001:db8::7]. To request removal from \
             this list please visit https://mx.hato.test/delist and follow the directions."
        );
    }

    /// The replies whose enhanced code's class differs from the reply code's on purpose.
    const CLASS_EXCEPTIONS: [&str; 4] = [
        // Exchange's own text for an expired message: `550 4.4.7 QUEUE.Expired`.
        "MESSAGE_EXPIRED",
        // Exchange's tracking text for a deleted message: `550 4.3.2 QUEUE.TransportAgent`.
        "MESSAGE_DELETED_BY_AGENT",
        // Exchange's text for a message an administrator removed: `550 4.3.2 QUEUE.Admin`.
        "MESSAGE_DELETED_BY_ADMIN",
        // Exchange on-premises' RequireTLS refusal: `451 5.7.3 STARTTLS is required to send mail`.
        "CONNECTOR_REQUIRES_TLS",
    ];

    /// The whole catalogue: every entry has a reply code of RFC 5321 §4.2's classes, an RFC 3463
    /// enhanced code of the same class (or none, for the replies that carry none), a text, a
    /// unique name; and each entry is the reply its constant or function gives.
    #[test]
    fn the_catalogue_is_consistent() {
        let all = catalogue();
        assert!(all.len() > 50, "{} entries", all.len());
        let mut names = HashSet::new();
        for e in &all {
            assert!(names.insert(e.name), "{} twice", e.name);
            assert!((200..=599).contains(&e.code), "{e:?}");
            // AUTH PLAIN's challenge is empty (RFC 4954 §4: "334 " and no data).
            assert!(
                (!e.text.is_empty() || e.name == "AUTH_CONTINUE")
                    && !e.section.is_empty()
                    && !e.doc.trim().is_empty(),
                "{e:?}: every entry says what it is for"
            );
            if e.status.is_empty() {
                // RFC 4954 §4: a 334 challenge is base64 data, with no enhanced code.
                assert!(
                    [220, 250, 334, 354].contains(&e.code),
                    "{e:?} needs an enhanced code"
                );
                continue;
            }
            let parts: Vec<&str> = e.status.split('.').collect();
            assert!(
                parts.len() == 3
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
                "{e:?}"
            );
            let class = (e.code / 100).to_string();
            assert!(
                parts[0] == class || CLASS_EXCEPTIONS.contains(&e.name),
                "{e:?}: class {} with reply code {}",
                parts[0],
                e.code
            );
        }
        // Constants and functions give what the catalogue lists.
        let listed = |name: &str| all.iter().find(|e| e.name == name).copied();
        for (name, reply) in [
            ("MAILBOX_FULL", MAILBOX_FULL),
            ("RECIPIENT_REJECTED", RECIPIENT_REJECTED),
            ("POLICY_FAILED", POLICY_FAILED),
            ("MESSAGE_EXPIRED", MESSAGE_EXPIRED),
        ] {
            let e = listed(name).unwrap();
            assert_eq!(
                (e.code, e.status, e.text),
                (reply.code, &*reply.status, &*reply.text)
            );
        }
        assert_eq!(
            dnsbl_listed(
                "203.0.113.9",
                "zen.spamhaus.org",
                "https://check.spamhaus.org/"
            )
            .to_string(),
            "550 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using \
             zen.spamhaus.org; To request removal from this list see https://check.spamhaus.org/"
        );
        let e = listed("processing_deferred(error)").unwrap();
        let r = processing_deferred("{error}");
        assert_eq!((e.code, e.status, e.text), (r.code, &*r.status, &*r.text));
    }

    /// `docs/replies.md` is the catalogue as a table. Run with `HATO_WRITE_DOCS=1` to rewrite it
    /// after changing the catalogue.
    #[test]
    fn docs_replies_md_lists_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/replies.md");
        let want = catalogue_markdown(&catalogue());
        if std::env::var_os("HATO_WRITE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/replies.md differs from the reply catalogue in crates/hato-core/src/reply.rs; \
             run `HATO_WRITE_DOCS=1 cargo test -p hato-core docs_replies_md` to rewrite it"
        );
    }

    fn catalogue_markdown(all: &[Entry]) -> String {
        let cell = |s: &str| s.replace('|', "\\|");
        let mut out = String::from(
            "# SMTP replies\n\n\
             Every reply hato sends in an SMTP session or records for a recipient (message trace, \
             NDRs), as the catalogue in `crates/hato-core/src/reply.rs` declares them \
             (architecture decision 9). A name with parameters is a function: the parts in \
             braces are filled in. This file is checked by a test \
             (`docs_replies_md_lists_the_catalogue`); after changing the catalogue, rewrite it \
             with `HATO_WRITE_DOCS=1 cargo test -p hato-core docs_replies_md`.\n",
        );
        let mut section = "";
        for e in all {
            if e.section != section {
                section = e.section;
                out.push_str(&format!(
                    "\n## {section}\n\n| name | code | enhanced | text | use |\n|---|---|---|---|---|\n"
                ));
            }
            let doc = e.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} |\n",
                e.name,
                e.code,
                e.status,
                cell(e.text),
                cell(&doc)
            ));
        }
        out
    }
}

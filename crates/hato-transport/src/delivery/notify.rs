//! The notices hato mails to admins about what its content stages did: the malware filter
//! policy's admin notifications (`EnableInternalSenderAdminNotifications` +
//! `InternalSenderAdminAddress`, and the external twins, reference §4.1) and the transport
//! rules' incident reports (`GenerateIncidentReport`, §5.4).
//!
//! They are built like every message hato writes itself (`generated.rs`): from the null
//! reverse-path (RFC 5321 §4.5.5: nothing answers them with an NDR), `Auto-Submitted:
//! auto-generated` (RFC 3834 §5: no responder answers them either), a trace id derived from the
//! message they are about (a retry builds the same id and the store refuses it as queued
//! already), every header field through [`crate::headers`]. Every value that comes from the
//! message or its sender (subject, addresses, file names, matched text) goes into the text
//! only as [`clean`] makes it: one line, bidirectional controls made visible, bounded.
//!
//! The caller decides when a notice is due (the policy's switch and address, a rule's action)
//! and where it goes ([`notification_recipient`]); these functions only build the message.

use super::generated::{derived_trace_id, generated};
use crate::header_block;
use crate::headers::{HeaderBlock, Mailbox};
use crate::ndr::{postmaster_for, truncated_headers};
use crate::routing::{Resolution, resolve};
use hato_core::directory::{Route, TenantId};
use hato_core::{Address, Timestamp};
use hato_directory::Directory;
use hato_protection::malware::{Detection, MalwareOutcome};
use hato_protection::rules::{Evaluation, Mode, RuleAction};
use hato_store::{NewMessage, NewRecipient, StoreError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Recipients a notice lists by address; it counts the rest. Exchange's incident reports
/// include the first 10 recipients (Exchange 2013 "Mail flow rule actions",
/// `IncidentReportContent`); message trace keeps them all.
pub const MAX_LISTED_RECIPIENTS: usize = 10;
/// Detections a malware notification lists; it counts the rest (an archive may hold up to the
/// walk's 1,000 members, each a detection).
pub const MAX_LISTED_DETECTIONS: usize = 50;
/// Matched conditions an incident report lists per rule; it counts the rest.
pub const MAX_LISTED_CONDITIONS: usize = 50;
/// The most of the original an incident report attaches by default: a larger message is
/// represented by its header fields alone, so a 35 MB message does not make a 35 MB report.
pub const INCIDENT_REPORT_MAX_ORIGINAL: usize = 1 << 20;
/// The longest value (a subject, an address, an attachment's location, a matched text) a
/// notice repeats, in characters; a longer one is cut and ends in `...`.
const MAX_VALUE_CHARS: usize = 512;

/// Where a notice goes: `address` routed as a recipient (a local mailbox, a group, the relay,
/// the postmaster, or outside), the way the delist page's notice is. `tenant` is the tenant
/// whose policy or rule asks for it: the notice's trace rows are its, unless the address is a
/// mailbox or group of another tenant. Reads the directory, so call it from blocking code.
pub fn notification_recipient(
    directory: &Directory,
    address: &str,
    tenant: TenantId,
) -> Result<NewRecipient, StoreError> {
    let addr = Address::parse(address).map_err(|e| {
        StoreError::Invalid(format!(
            "notification address {address:?} is not valid: {e}"
        ))
    })?;
    let (route, tenant_id) = match resolve(directory, &addr)? {
        Resolution::Mailbox {
            tenant, mailbox, ..
        } => (Route::Local(mailbox), tenant),
        Resolution::Group { tenant, group, .. } => (Route::Group(group), tenant),
        Resolution::UnknownInRelayDomain { tenant }
        | Resolution::UnknownInAuthoritativeDomain { tenant } => (Route::Relay, tenant),
        Resolution::Postmaster { tenant: domain } => (Route::Postmaster, domain.unwrap_or(tenant)),
        Resolution::NotAccepted => (Route::Remote, tenant),
    };
    Ok(NewRecipient {
        address: addr.to_string(),
        tenant_id,
        route,
        extra_events: vec![],
        receive_reason: None,
        quarantine: None,
        finished: None,
        stamp: String::new(),
        junk: false,
        connector: None,
        dsn: Default::default(),
    })
}

/// Whether the sender of a message with malware is in the organisation: the policy has one
/// admin address for each (`InternalSenderAdminAddress`, `ExternalSenderAdminAddress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderScope {
    Internal,
    External,
}

/// What a malware admin notification is about: one message, under one policy (the policy of
/// the recipients listed; a message whose recipients fall under several policies gets one
/// notification per policy that asks for one).
#[derive(Clone, Copy, Debug)]
pub struct MalwareNotice<'a> {
    pub scope: SenderScope,
    /// An accepted domain of the tenant whose policy this is (the recipients' for inbound
    /// mail, the sender's for outbound): the notice comes from its postmaster, or from
    /// `postmaster@<hostname>` when it is empty or not a domain.
    pub org_domain: &'a str,
    /// `MAIL FROM`; empty for the null reverse-path.
    pub envelope_sender: &'a str,
    /// The `From:` header as [`crate::summarize`] gives it (`Name <address>`).
    pub from: &'a str,
    /// The recipients the policy applied to.
    pub recipients: &'a [String],
    /// Decoded, as [`crate::summarize`] gives it.
    pub subject: &'a str,
    /// With its angle brackets, as [`crate::summarize`] gives it; empty when it has none.
    pub message_id: &'a str,
    pub trace_id: &'a str,
    pub received: Timestamp,
    /// What the engines found (`MalwareVerdict::Malware`).
    pub detections: &'a [Detection],
    /// The malware filter policy's name (`Default` for the default policy).
    pub policy: &'a str,
    /// What the policy did with the message for these recipients.
    pub outcome: &'a MalwareOutcome,
}

/// The admin notification about a message with malware, queued like any mail to `admin` (see
/// [`notification_recipient`]). Plain text (UTF-8, quoted-printable); the message itself is not
/// attached: it is malware, and it is in the quarantine for admins to look at.
pub fn malware_admin_notification(
    n: &MalwareNotice<'_>,
    admin: NewRecipient,
    hostname: &str,
    at: Timestamp,
) -> NewMessage {
    let trace_id = derived_trace_id(
        n.received,
        &format!(
            "malware admin notification for {} to {}",
            n.trace_id, admin.address
        ),
    );
    let content = malware_notification_content(n, &admin.address, hostname, at, &trace_id);
    let detail = format!(
        "Malware admin notification generated by {hostname} for message {}",
        n.trace_id
    );
    generated(hostname, trace_id, at, content, vec![admin], detail, vec![])
}

/// The notification's bytes (see [`malware_admin_notification`]).
fn malware_notification_content(
    n: &MalwareNotice<'_>,
    to: &str,
    hostname: &str,
    at: Timestamp,
    trace_id: &str,
) -> Vec<u8> {
    let scope = match n.scope {
        SenderScope::Internal => "internal",
        SenderScope::External => "external",
    };
    let action = match n.outcome {
        MalwareOutcome::Quarantine => {
            "The message was quarantined (malware quarantine: 30 days, admins only); no recipient received it."
        }
        MalwareOutcome::QuarantineAndDeliverAlert { .. } => {
            "The original was quarantined; the recipients received the message with every attachment replaced by \"Malware Alert Text.txt\"."
        }
        MalwareOutcome::Reject => {
            "The message was refused and not kept; the sender was told in a non-delivery report."
        }
        MalwareOutcome::Deliver => "The message was delivered.",
    };
    let mut text = format!(
        "Malware was detected in a message from an {scope} sender.\r\n\r\n\
         Action: {action}\r\n\
         Malware filter policy: {}\r\n\r\n",
        clean(n.policy)
    );
    message_lines(
        &mut text,
        &Original {
            envelope_sender: n.envelope_sender,
            from: n.from,
            recipients: n.recipients,
            subject: n.subject,
            message_id: n.message_id,
            trace_id: n.trace_id,
            received: n.received,
        },
    );
    text.push_str(&format!("\r\nDetections: {}\r\n", n.detections.len()));
    for d in n.detections.iter().take(MAX_LISTED_DETECTIONS) {
        text.push_str(&format!(
            "  {} in {} (engine {})\r\n",
            clean(&d.name),
            clean(&d.location),
            clean(&d.engine)
        ));
    }
    more(&mut text, n.detections.len(), MAX_LISTED_DETECTIONS);
    text.push_str(&format!(
        "\r\nThe message is not attached: it contains malware. Admins see it in the quarantine:\r\n\
         \x20 hato quarantine list --kind malware\r\n\
         \x20 hato explain {}\r\n",
        clean(n.trace_id)
    ));
    let subject = if n.subject.is_empty() {
        format!("Malware detected ({scope} sender)")
    } else {
        format!("Malware detected ({scope} sender): {}", clean(n.subject))
    };
    let mut out = notice_header(hostname, n.org_domain, to, &subject, trace_id, at);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    out.extend_from_slice(quoted_printable(&text).as_bytes());
    out
}

/// What an outbound spam alert is about (Exchange's default alert policies "User restricted
/// from sending email" and "Email sending limit exceeded", which notify the TenantAdmins,
/// `exchange-online-behaviour.md` §7.1).
#[derive(Clone, Copy, Debug)]
pub struct OutboundSpamAlert<'a> {
    /// The sender over the limit (canonical address).
    pub sender: &'a str,
    /// The tenant's name, for the unblock command.
    pub tenant: &'a str,
    /// Why: the limit, the count, the action.
    pub reason: &'a hato_core::Reason,
    /// The sender was restricted (`BlockUser`, `BlockUserForToday`); otherwise only alerted.
    pub restricted: bool,
    /// When the restriction lifts by itself (`BlockUserForToday`).
    pub until: Option<Timestamp>,
}

/// The alert to one admin about a sender over its outbound spam policy's limits, queued like
/// any mail to `admin` (see [`notification_recipient`]); the admin's `Receive` event carries
/// the reason, so the trace records what happened to the sender.
pub fn outbound_spam_alert(
    a: &OutboundSpamAlert<'_>,
    mut admin: NewRecipient,
    hostname: &str,
    at: Timestamp,
) -> NewMessage {
    let trace_id = derived_trace_id(
        at,
        &format!(
            "outbound spam alert about {} at {} to {}",
            a.sender, at.0, admin.address
        ),
    );
    let sender = clean(a.sender);
    let (subject, what) = if a.restricted {
        (
            format!("User restricted from sending email: {sender}"),
            match a.until {
                Some(until) => format!(
                    "{sender} is restricted from sending email until {} (the next day, UTC).",
                    until.to_rfc5322()
                ),
                None => {
                    format!("{sender} is restricted from sending email until an admin unblocks it.")
                }
            },
        )
    } else {
        (
            format!("Email sending limit exceeded: {sender}"),
            format!("{sender} went over a sending limit; its mail is still sent (action: alert)."),
        )
    };
    let mut text = format!("{what}\r\n\r\nWhy: {}\r\n\r\n", clean(&a.reason.text));
    if a.restricted {
        text.push_str(&format!(
            "Its submissions and relayed mail are refused with \"550 5.1.8 Access denied, bad outbound sender\";\r\n\
             it still receives mail. Check the account (a compromised password sends spam), then unblock it:\r\n\
             \x20 hato restricted list --tenant {tenant}\r\n\
             \x20 hato restricted remove {sender} --tenant {tenant}\r\n",
            tenant = clean(a.tenant)
        ));
    } else {
        text.push_str(&format!(
            "The tenant's outbound spam policy decides the limits and the action:\r\n\
             \x20 hato outbound-spam-filter show --tenant {}\r\n",
            clean(a.tenant)
        ));
    }
    let domain = a
        .sender
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default();
    let mut content = notice_header(hostname, domain, &admin.address, &subject, &trace_id, at);
    content.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    content.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    content.extend_from_slice(quoted_printable(&text).as_bytes());
    let detail = format!(
        "Outbound spam alert generated by {hostname}: {}",
        clean(&a.reason.text)
    );
    admin.receive_reason = Some(a.reason.clone());
    generated(hostname, trace_id, at, content, vec![admin], detail, vec![])
}

/// A rule that matched, as an incident report shows it: merged over the recipients it matched
/// for (see [`reported_rules`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedRule {
    pub rule: String,
    pub priority: u32,
    pub mode: Mode,
    /// The conditions that matched, with the value that matched, without repeats.
    pub matched: Vec<(String, String)>,
    pub recipients: Vec<String>,
    /// What it did (enforce mode) or would have done (audit modes): the action's flag name,
    /// with its value where it has one (`redirect-message-to: soc@contoso.test`).
    pub actions: Vec<String>,
}

/// Every rule that matched in `evaluation`, for any recipient, in priority order: Exchange's
/// incident report lists the rules the message triggered (`RuleDetections`).
pub fn reported_rules(evaluation: &Evaluation) -> Vec<ReportedRule> {
    let mut out: Vec<ReportedRule> = Vec::new();
    // Rule (name, priority) → its place in `out`: one lookup per hit, however many rules.
    let mut index: HashMap<(&str, u32), usize> = HashMap::new();
    for slot in &evaluation.recipients {
        for hit in &slot.hits {
            let decisions = slot
                .decisions
                .iter()
                .filter(|d| d.reason.rule.as_deref() == Some(hit.rule.as_str()));
            let actions: Vec<String> = match hit.mode {
                Mode::Enforce => decisions.map(|d| describe(&d.action)).collect(),
                // The audited decision lists what it would have done, the incident report
                // among them (the one action that runs in audit modes, reference §5.2).
                Mode::Audit | Mode::AuditAndNotify => decisions
                    .filter_map(|d| match &d.action {
                        RuleAction::Audited { actions } => Some(actions.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect(),
            };
            let i = *index
                .entry((hit.rule.as_str(), hit.priority))
                .or_insert_with(|| {
                    out.push(ReportedRule {
                        rule: hit.rule.clone(),
                        priority: hit.priority,
                        mode: hit.mode,
                        matched: Vec::new(),
                        recipients: Vec::new(),
                        actions: Vec::new(),
                    });
                    out.len() - 1
                });
            let r = &mut out[i];
            // Each recipient is one slot, visited once: no search needed.
            r.recipients.push(slot.recipient.clone());
            for pair in &hit.matched {
                push_new(&mut r.matched, pair.clone());
            }
            for a in actions {
                push_new(&mut r.actions, a);
            }
        }
    }
    out.sort_by_key(|r| r.priority);
    out
}

/// The addresses `evaluation`'s rules ask an incident report for, each once (compared without
/// case), in the order they first appear: the caller builds one report for each.
pub fn incident_report_addresses(evaluation: &Evaluation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in evaluation.recipients.iter().flat_map(|s| &s.decisions) {
        if let RuleAction::IncidentReport { to } = &d.action
            && !out.iter().any(|a| a.eq_ignore_ascii_case(to))
        {
            out.push(to.clone());
        }
    }
    out
}

/// `item` appended unless it is there already. Linear per call: the lists it is used for are a
/// rule's conditions with their matched values and its actions, a few each.
fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// An action as a report names it: its flag, and the value an admin gave it.
fn describe(action: &RuleAction) -> String {
    let name = action.name();
    match action {
        RuleAction::Reject {
            code,
            enhanced_code,
            text,
        } => format!("{name}: {code} {enhanced_code} {text}"),
        RuleAction::Redirect { to }
        | RuleAction::BlindCopyTo { to }
        | RuleAction::AddToRecipients { to }
        | RuleAction::CopyTo { to } => format!("{name}: {}", to.join(", ")),
        RuleAction::SetScl { scl } => format!("{name}: {scl}"),
        RuleAction::SetHeader { name: field, value } => format!("{name}: {field}: {value}"),
        RuleAction::RemoveHeader { name: field } => format!("{name}: {field}"),
        RuleAction::PrependSubject { text } => format!("{name}: {text}"),
        RuleAction::RouteOutboundConnector { connector } => format!("{name}: {connector}"),
        RuleAction::IncidentReport { to } => format!("{name}: {to}"),
        RuleAction::Audited { actions } => format!("{name}: would {}", actions.join(", ")),
        RuleAction::Delete | RuleAction::Quarantine | RuleAction::Disclaimer { .. } => {
            name.to_string()
        }
    }
}

/// What an incident report is about: one message, the rules that matched it.
#[derive(Clone, Copy, Debug)]
pub struct IncidentReport<'a> {
    /// An accepted domain of the tenant whose rules these are: the report comes from its
    /// postmaster (see [`MalwareNotice::org_domain`]).
    pub org_domain: &'a str,
    /// `MAIL FROM`; empty for the null reverse-path.
    pub envelope_sender: &'a str,
    /// The `From:` header as [`crate::summarize`] gives it.
    pub from: &'a str,
    /// The message's recipients (of this tenant).
    pub recipients: &'a [String],
    pub subject: &'a str,
    /// With its angle brackets; empty when it has none. Exchange always includes it.
    pub message_id: &'a str,
    pub trace_id: &'a str,
    pub received: Timestamp,
    /// From [`reported_rules`].
    pub rules: &'a [ReportedRule],
    /// The message as the rules saw it: the whole of it, or at least its first
    /// `max_attached` bytes (`MessageBody::head(max_attached)`).
    pub original: &'a [u8],
    /// The size of the whole message.
    pub original_size: u64,
    /// The most of the original the report attaches ([`INCIDENT_REPORT_MAX_ORIGINAL`]): a
    /// larger message is attached as its header fields only (at most this much of them).
    pub max_attached: usize,
}

/// The incident report to `to` (see [`notification_recipient`]): the message's sender,
/// recipients, subject, Message-ID, trace id and arrival, the rules that matched with the
/// conditions and values that matched and the actions taken (or, in audit mode, that would
/// have been), and the original attached as `message/rfc822`, as Exchange's
/// `AttachOriginalMail` does; bounded by `max_attached` (see [`IncidentReport::max_attached`]).
pub fn incident_report(
    r: &IncidentReport<'_>,
    to: NewRecipient,
    hostname: &str,
    at: Timestamp,
) -> NewMessage {
    let trace_id = derived_trace_id(
        r.received,
        &format!("incident report for {} to {}", r.trace_id, to.address),
    );
    let content = incident_report_content(r, &to.address, hostname, at, &trace_id);
    let detail = format!(
        "Incident report generated by {hostname} for message {}",
        r.trace_id
    );
    generated(hostname, trace_id, at, content, vec![to], detail, vec![])
}

/// The report's bytes (see [`incident_report`]).
fn incident_report_content(
    r: &IncidentReport<'_>,
    to: &str,
    hostname: &str,
    at: Timestamp,
    trace_id: &str,
) -> Vec<u8> {
    let mut text = format!(
        "A message matched transport rules that ask for an incident report to {}.\r\n\r\n",
        clean(to)
    );
    message_lines(
        &mut text,
        &Original {
            envelope_sender: r.envelope_sender,
            from: r.from,
            recipients: r.recipients,
            subject: r.subject,
            message_id: r.message_id,
            trace_id: r.trace_id,
            received: r.received,
        },
    );
    text.push_str(&format!("\r\nRules that matched: {}\r\n", r.rules.len()));
    for rule in r.rules {
        let mode = match rule.mode {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::AuditAndNotify => "audit-and-notify",
        };
        text.push_str(&format!(
            "\r\nRule \"{}\" (priority {}, mode {mode})\r\n",
            clean(&rule.rule),
            rule.priority
        ));
        for recipient in rule.recipients.iter().take(MAX_LISTED_RECIPIENTS) {
            text.push_str(&format!("  Matched for: {}\r\n", clean(recipient)));
        }
        more(&mut text, rule.recipients.len(), MAX_LISTED_RECIPIENTS);
        for (condition, value) in rule.matched.iter().take(MAX_LISTED_CONDITIONS) {
            text.push_str(&format!(
                "  Condition {}: {}\r\n",
                clean(condition),
                clean(value)
            ));
        }
        more(&mut text, rule.matched.len(), MAX_LISTED_CONDITIONS);
        // Audit modes only record what the rule would do; only the incident report runs
        // (reference §5.2).
        let label = match rule.mode {
            Mode::Enforce => "Action",
            Mode::Audit | Mode::AuditAndNotify => "Would (audit mode, not done)",
        };
        for action in &rule.actions {
            text.push_str(&format!("  {label}: {}\r\n", clean(action)));
        }
    }

    let (attached, whole) = attachment(r);
    text.push_str("\r\n");
    if whole {
        text.push_str(&format!(
            "The original message is attached ({} bytes).\r\n",
            r.original_size
        ));
    } else {
        text.push_str(&format!(
            "The original message is {} bytes, more than the {} bytes a report attaches:\r\n\
             only its header fields are attached ({} bytes).\r\n",
            r.original_size,
            r.max_attached,
            attached.len()
        ));
    }

    let body = quoted_printable(&text);
    let boundary = boundary(body.as_bytes(), attached);
    let subject = if r.subject.is_empty() {
        "Incident report".to_string()
    } else {
        format!("Incident report: {}", clean(r.subject))
    };
    let mut out = notice_header(hostname, r.org_domain, to, &subject, trace_id, at);
    let mut h = HeaderBlock::new();
    h.structured(
        "Content-Type",
        &format!("multipart/mixed; boundary=\"{boundary}\""),
    );
    out.extend_from_slice(&h.into_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    // RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, so each part
    // ends exactly where its content does.
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    let content_type = if whole {
        "message/rfc822"
    } else {
        "text/rfc822-headers"
    };
    out.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Disposition: attachment\r\n\r\n");
    out.extend_from_slice(attached);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// What the report attaches, and whether it is the whole original: the whole original, as
/// `message/rfc822` (RFC 2046 §5.2.1), when it is within the bound and all there; else its header fields as `text/rfc822-headers`
/// (RFC 6522 §4, the type NDRs use for the same purpose: a message/rfc822 part holding a
/// header that announces a body it does not have would be malformed), at most `max_attached`
/// bytes of them, cut after a whole line (a folded field cut after one of its lines is still a
/// field, RFC 5322 §2.2.3). Looks at no more than `max_attached` bytes.
fn attachment<'a>(r: &IncidentReport<'a>) -> (&'a [u8], bool) {
    if r.original.len() as u64 == r.original_size && r.original.len() <= r.max_attached {
        return (r.original, true);
    }
    let head = &r.original[..r.original.len().min(r.max_attached)];
    let headers = truncated_headers(header_block(head), r.max_attached);
    // A header block longer than what was given ends mid-line: keep the whole lines.
    let end = if headers.ends_with(b"\r\n") {
        headers.len()
    } else {
        headers
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2)
    };
    (&headers[..end], false)
}

/// The multipart boundary: `hato-` and a SHA-256 prefix of what it separates. RFC 2046 §5.1.1
/// requires that it occur in no part; a sender cannot make its message contain the hash of
/// (its message and the report's text), so neither the attached original nor the text
/// quoting it can end a part early or add one.
fn boundary(text: &[u8], attached: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(text)
        .chain_update(attached)
        .finalize();
    let mut out = String::from("hato-");
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The header block both notices share, up to and including `MIME-Version`.
fn notice_header(
    hostname: &str,
    org_domain: &str,
    to: &str,
    subject: &str,
    trace_id: &str,
    at: Timestamp,
) -> Vec<u8> {
    let postmaster = postmaster_for(&format!("postmaster@{org_domain}"), hostname);
    let mut h = HeaderBlock::new();
    h.mailboxes(
        "From",
        &[Mailbox::new(Some("Mail Delivery System"), &postmaster)],
    )
    .mailboxes("To", &[Mailbox::new(None, to)])
    .text("Subject", subject);
    h.msg_id("Message-ID", &format!("{trace_id}@{hostname}"));
    h.date("Date", at)
        // RFC 3834 §5: generated by hato itself, not a reply to anyone.
        .fixed("Auto-Submitted", "auto-generated")
        .fixed("MIME-Version", "1.0");
    h.into_bytes()
}

/// The message a notice is about, as both notices describe it.
struct Original<'a> {
    envelope_sender: &'a str,
    from: &'a str,
    recipients: &'a [String],
    subject: &'a str,
    message_id: &'a str,
    trace_id: &'a str,
    received: Timestamp,
}

fn message_lines(text: &mut String, o: &Original<'_>) {
    let sender = if o.envelope_sender.is_empty() {
        "<>".to_string()
    } else {
        clean(o.envelope_sender)
    };
    text.push_str(&format!(
        "Sender (MAIL FROM): {sender}\r\nFrom: {}\r\nSubject: {}\r\nMessage-ID: {}\r\n\
         Received: {}\r\nTrace id: {}\r\nRecipients: {}\r\n",
        clean(o.from),
        clean(o.subject),
        clean(o.message_id),
        o.received.to_rfc5322(),
        clean(o.trace_id),
        o.recipients.len()
    ));
    for recipient in o.recipients.iter().take(MAX_LISTED_RECIPIENTS) {
        text.push_str(&format!("  {}\r\n", clean(recipient)));
    }
    more(text, o.recipients.len(), MAX_LISTED_RECIPIENTS);
}

/// `  and N more` when a list of `total` was cut at `listed`.
fn more(text: &mut String, total: usize, listed: usize) {
    if total > listed {
        text.push_str(&format!("  and {} more\r\n", total - listed));
    }
}

/// A value from the message for one line of a notice's text: control characters (CR, LF, NUL,
/// NEL, …) and the Unicode line and paragraph separators become spaces, so it stays on its
/// line; the bidirectional formatting characters become U+FFFD, so a file name such as
/// `invoice<U+202E>fdp.exe` shows what it is instead of `invoiceexe.pdf` (the "Trojan Source"
/// trick, CVE-2021-42574); at most [`MAX_VALUE_CHARS`] characters are kept, then `...`. Reads no
/// more of `text` than it keeps.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_VALUE_CHARS * 4));
    for (n, c) in text.chars().enumerate() {
        if n == MAX_VALUE_CHARS {
            out.push_str("...");
            break;
        }
        out.push(match c {
            c if c.is_control() => ' ',
            '\u{2028}' | '\u{2029}' => ' ',
            '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => '\u{fffd}',
            c => c,
        });
    }
    out
}

/// `text` (UTF-8, lines ending in CRLF) as quoted-printable (RFC 2045 §6.7): printable ASCII
/// but `=` as it is, everything else as `=XX`, a space or tab that ends a line encoded too
/// (rule 3), lines of at most 76 characters through soft line breaks (`=` CRLF, rule 5). So
/// whatever a value holds, every line of the body is short and ASCII.
fn quoted_printable(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut column = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let literal = ((b == b' ' || b == b'\t') && j + 1 < bytes.len())
                || ((33..=126).contains(&b) && b != b'=');
            let width = if literal { 1 } else { 3 };
            // Keep room for the soft break's `=`: at most 76 characters per line.
            if column + width > 75 {
                out.push_str("=\r\n");
                column = 0;
            }
            if literal {
                out.push(char::from(b));
            } else {
                out.push('=');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
            column += width;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_protection::rules::{NoDirectory, Rule, RuleMessage, RuleSet};
    use mail_parser::{MessageParser, MimeHeaders};
    use proptest::prelude::*;

    const HOST: &str = "mx.hato.test";
    const RECEIVED: Timestamp = Timestamp(1_800_000_000_000_000);
    const AT: Timestamp = Timestamp(1_800_000_060_000_000);

    fn admin(address: &str) -> NewRecipient {
        NewRecipient {
            address: address.into(),
            tenant_id: 7,
            route: Route::Local(42),
            extra_events: vec![],
            receive_reason: None,
            quarantine: None,
            finished: None,
            stamp: String::new(),
            junk: false,
            connector: None,
            dsn: Default::default(),
        }
    }

    fn eicar(location: &str) -> Detection {
        Detection {
            name: "Eicar-Test-Signature".into(),
            location: location.into(),
            true_type: Some("com"),
            engine: "hato".into(),
            item: Some(2),
        }
    }

    /// What `generated` put in front of the content: the Received field, then the content.
    fn content_of(m: &NewMessage) -> &[u8] {
        let end = m
            .content
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\r\n")
            .map(|(i, _)| i + 2)
            .nth(1)
            .expect("Received is two lines");
        assert!(
            m.content
                .starts_with(b"Received: from localhost by mx.hato.test")
        );
        &m.content[end..]
    }

    fn names(bytes: &[u8]) -> Vec<String> {
        let msg = MessageParser::new().parse(bytes).expect("parses");
        msg.headers().iter().map(|h| h.name().to_string()).collect()
    }

    /// A notice's fields; a report (multipart) has no Content-Transfer-Encoding of its own.
    const NOTICE_FIELDS: [&str; 9] = [
        "From",
        "To",
        "Subject",
        "Message-ID",
        "Date",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ];

    fn notice_fields() -> Vec<String> {
        NOTICE_FIELDS.iter().map(|s| s.to_string()).collect()
    }

    /// Every line of `bytes` ends in CRLF and has at most `max` octets.
    fn assert_lines(bytes: &[u8], max: usize) {
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR"),
                b'\n' => assert_eq!(bytes[i - 1], b'\r', "bare LF"),
                _ => {}
            }
        }
        for line in bytes.split(|b| *b == b'\n') {
            assert!(
                line.len() <= max + 1,
                "{} octets: {:?}",
                line.len(),
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_malware_notification_names_the_message_and_its_detections_without_it() {
        let recipients = vec![
            "alice@contoso.test".to_string(),
            "carol@contoso.test".to_string(),
        ];
        let detections = vec![eicar("part 2 (files.zip) / eicar.com")];
        let notice = MalwareNotice {
            scope: SenderScope::External,
            org_domain: "contoso.test",
            envelope_sender: "bob@fabrikam.test",
            from: "Bob <bob@fabrikam.test>",
            recipients: &recipients,
            subject: "Quarterly report",
            message_id: "<m1@fabrikam.test>",
            trace_id: "0190f0f0-0000-7000-8000-000000000001",
            received: RECEIVED,
            detections: &detections,
            policy: "Default",
            outcome: &MalwareOutcome::Quarantine,
        };
        let m = malware_admin_notification(&notice, admin("soc@contoso.test"), HOST, AT);
        // The null reverse-path (RFC 5321 §4.5.5), to the admin as the caller routed it.
        assert_eq!(m.sender, "");
        assert_eq!(m.recipients.len(), 1);
        assert_eq!(m.recipients[0].address, "soc@contoso.test");
        assert_eq!(m.recipients[0].route, Route::Local(42));
        assert_eq!(m.recipients[0].tenant_id, 7);
        assert_eq!(m.received, AT);
        assert_eq!(
            m.subject.as_deref(),
            Some("Malware detected (external sender): Quarterly report")
        );
        // Derived from the original: a retry builds the same id, the store refuses it.
        let again = malware_admin_notification(&notice, admin("soc@contoso.test"), HOST, AT);
        assert_eq!(m.trace_id, again.trace_id);
        let other = malware_admin_notification(&notice, admin("it@contoso.test"), HOST, AT);
        assert_ne!(m.trace_id, other.trace_id);
        assert_eq!(m.message_id, Some(format!("<{}@{HOST}>", m.trace_id)));

        let content = content_of(&m);
        assert_lines(content, 78);
        assert_eq!(names(content), notice_fields());
        let msg = MessageParser::new().parse(content).unwrap();
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("postmaster@contoso.test")
        );
        assert_eq!(
            msg.to().unwrap().first().unwrap().address(),
            Some("soc@contoso.test")
        );
        let raw = String::from_utf8_lossy(content);
        assert!(
            raw.contains("\r\nAuto-Submitted: auto-generated\r\n"),
            "{raw}"
        );
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("text", Some("plain")));
        assert_eq!(ct.attribute("charset"), Some("utf-8"));
        // Not attached: it is malware.
        assert_eq!(msg.attachment_count(), 0);
        let text = msg.body_text(0).unwrap();
        for line in [
            "Malware was detected in a message from an external sender.",
            "Action: The message was quarantined (malware quarantine: 30 days, admins only); no recipient received it.",
            "Malware filter policy: Default",
            "Sender (MAIL FROM): bob@fabrikam.test",
            "From: Bob <bob@fabrikam.test>",
            "Subject: Quarterly report",
            "Message-ID: <m1@fabrikam.test>",
            "Received: Fri, 15 Jan 2027 08:00:00 +0000",
            "Trace id: 0190f0f0-0000-7000-8000-000000000001",
            "Recipients: 2",
            "  alice@contoso.test",
            "  carol@contoso.test",
            "Detections: 1",
            "  Eicar-Test-Signature in part 2 (files.zip) / eicar.com (engine hato)",
            "  hato explain 0190f0f0-0000-7000-8000-000000000001",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        assert!(
            text.contains("The message is not attached: it contains malware."),
            "{text}"
        );
    }

    #[test]
    fn an_internal_sender_s_notification_says_so_and_names_the_alert_action() {
        let recipients: Vec<String> = (0..25).map(|i| format!("r{i}@fabrikam.test")).collect();
        let detections: Vec<Detection> = (0..60).map(|i| eicar(&format!("part {i}"))).collect();
        let notice = MalwareNotice {
            scope: SenderScope::Internal,
            org_domain: "",
            envelope_sender: "",
            from: "",
            recipients: &recipients,
            subject: "",
            message_id: "",
            trace_id: "t-2",
            received: RECEIVED,
            detections: &detections,
            policy: "Strict",
            outcome: &MalwareOutcome::QuarantineAndDeliverAlert {
                alert_text: "x".into(),
            },
        };
        let m = malware_admin_notification(&notice, admin("it@contoso.test"), HOST, AT);
        let content = content_of(&m);
        let msg = MessageParser::new().parse(content).unwrap();
        assert_eq!(msg.subject(), Some("Malware detected (internal sender)"));
        // Without an organisation domain, hato's own postmaster.
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("postmaster@mx.hato.test")
        );
        let text = msg.body_text(0).unwrap();
        assert!(text.contains("from an internal sender"), "{text}");
        assert!(
            text.contains("replaced by \"Malware Alert Text.txt\""),
            "{text}"
        );
        assert!(text.contains("Sender (MAIL FROM): <>\r\n"), "{text}");
        // Bounded lists, with what was left out counted.
        assert_eq!(text.lines().filter(|l| l.starts_with("  r")).count(), 10);
        assert!(text.contains("\r\n  and 15 more\r\n"), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("  Eicar-Test-Signature"))
                .count(),
            MAX_LISTED_DETECTIONS
        );
        assert!(text.contains("\r\n  and 10 more\r\n"), "{text}");
    }

    #[test]
    fn values_are_one_line_bounded_and_show_bidirectional_tricks() {
        assert_eq!(clean("a\r\nBcc: x@y\0z\u{85}w"), "a  Bcc: x@y z w");
        assert_eq!(clean("invoice\u{202e}fdp.exe"), "invoice\u{fffd}fdp.exe");
        assert_eq!(clean("a\u{2028}b\u{2029}c"), "a b c");
        let long = "x".repeat(10_000);
        assert_eq!(clean(&long), format!("{}...", "x".repeat(MAX_VALUE_CHARS)));
        assert_eq!(
            clean(&"ü".repeat(MAX_VALUE_CHARS)),
            "ü".repeat(MAX_VALUE_CHARS)
        );
    }

    #[test]
    fn quoted_printable_keeps_lines_short_and_decodes_back() {
        let text = format!(
            "plain line\r\n{}\r\ntrailing space \r\nGrüße = {}\r\n\r\n",
            "y".repeat(200),
            "日本".repeat(40)
        );
        let qp = quoted_printable(&text);
        assert!(qp.is_ascii());
        assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
        assert!(qp.contains("trailing space=20\r\n"), "{qp}");
        assert!(qp.contains("Gr=C3=BC=C3=9Fe =3D "), "{qp}");
        let part = format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}"
        );
        let msg = MessageParser::new().parse(part.as_bytes()).unwrap();
        assert_eq!(msg.body_text(0).unwrap(), text);
    }

    /// A tenant's rules, evaluated for real: one in audit mode and one enforced ask for a report
    /// to the same address (in two spellings), a third matches without asking.
    fn evaluation(original: &[u8]) -> Evaluation {
        let mut watch = Rule::named("Watch invoices");
        watch.priority = 0;
        watch.mode = Mode::Audit;
        watch.conditions.subject_contains_words = vec!["invoice".into()];
        watch.actions.quarantine = true;
        watch.actions.generate_incident_report = Some("soc@contoso.test".into());
        let mut tag = Rule::named("Tag partners");
        tag.priority = 1;
        tag.conditions.recipient_domain_is = vec!["contoso.test".into()];
        tag.actions.prepend_subject = Some("[Partner]".into());
        tag.actions.generate_incident_report = Some("SOC@contoso.test".into());
        let mut scl = Rule::named("Score");
        scl.priority = 2;
        scl.actions.set_scl = Some(6);
        let set = RuleSet::compile(vec![watch, tag, scl]).unwrap();
        let m = RuleMessage::from_message(
            original,
            Some("bob@fabrikam.test".into()),
            vec!["alice@contoso.test".into(), "dave@northwind.test".into()],
            None,
        );
        set.evaluate(&m, &NoDirectory, RECEIVED)
    }

    const ORIGINAL: &[u8] = b"From: Bob <bob@fabrikam.test>\r\nTo: alice@contoso.test\r\n\
        Subject: Your invoice\r\nMessage-ID: <m1@fabrikam.test>\r\n\r\nPlease pay.\r\n";

    fn report_of(
        original: &[u8],
        size: u64,
        rules: &[ReportedRule],
        recipients: &[String],
    ) -> NewMessage {
        let summary = crate::summarize(original);
        incident_report(
            &IncidentReport {
                org_domain: "contoso.test",
                envelope_sender: "bob@fabrikam.test",
                from: &summary.from,
                recipients,
                subject: &summary.subject,
                message_id: &summary.message_id,
                trace_id: "0190f0f0-0000-7000-8000-000000000002",
                received: RECEIVED,
                rules,
                original,
                original_size: size,
                max_attached: INCIDENT_REPORT_MAX_ORIGINAL,
            },
            admin("soc@contoso.test"),
            HOST,
            AT,
        )
    }

    #[test]
    fn rules_that_ask_for_a_report_are_merged_over_recipients_with_their_actions() {
        let evaluation = evaluation(ORIGINAL);
        assert_eq!(incident_report_addresses(&evaluation), ["soc@contoso.test"]);
        let rules = reported_rules(&evaluation);
        let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names, ["Watch invoices", "Tag partners", "Score"]);
        let watch = &rules[0];
        assert_eq!(watch.mode, Mode::Audit);
        assert_eq!(
            watch.recipients,
            ["alice@contoso.test", "dave@northwind.test"]
        );
        assert_eq!(
            watch.matched,
            [("subject-contains-words".to_string(), "invoice".to_string())]
        );
        // Audit mode: what it would have done (the incident report is the one that ran).
        assert_eq!(watch.actions, ["quarantine", "generate-incident-report"]);
        let tag = &rules[1];
        assert_eq!(tag.mode, Mode::Enforce);
        assert_eq!(tag.recipients, ["alice@contoso.test"]);
        assert_eq!(
            tag.actions,
            [
                "prepend-subject: [Partner]",
                "generate-incident-report: SOC@contoso.test"
            ]
        );
        assert_eq!(rules[2].actions, ["set-scl: 6"]);
    }

    #[test]
    fn an_incident_report_lists_the_rules_and_attaches_the_original() {
        let evaluation = evaluation(ORIGINAL);
        let rules = reported_rules(&evaluation);
        let recipients = vec![
            "alice@contoso.test".to_string(),
            "dave@northwind.test".to_string(),
        ];
        let m = report_of(ORIGINAL, ORIGINAL.len() as u64, &rules, &recipients);
        assert_eq!(m.sender, "");
        assert_eq!(m.recipients[0].address, "soc@contoso.test");
        assert_eq!(m.subject.as_deref(), Some("Incident report: Your invoice"));
        let again = report_of(ORIGINAL, ORIGINAL.len() as u64, &rules, &recipients);
        assert_eq!(m.trace_id, again.trace_id);
        // The boundary comes from the content: the same report is the same bytes.
        assert_eq!(content_of(&m), content_of(&again));

        let content = content_of(&m);
        assert_lines(content, 998);
        let msg = MessageParser::new().parse(content).unwrap();
        let fields: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
        assert_eq!(fields, &NOTICE_FIELDS[..8]);
        assert!(
            String::from_utf8_lossy(content).contains("\r\nAuto-Submitted: auto-generated\r\n")
        );
        let ct = msg.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("mixed")));
        let text = msg.body_text(0).unwrap();
        for line in [
            "A message matched transport rules that ask for an incident report to soc@contoso.test.",
            "Sender (MAIL FROM): bob@fabrikam.test",
            "From: Bob <bob@fabrikam.test>",
            "Subject: Your invoice",
            "Message-ID: <m1@fabrikam.test>",
            "Trace id: 0190f0f0-0000-7000-8000-000000000002",
            "Recipients: 2",
            "Rules that matched: 3",
            "Rule \"Watch invoices\" (priority 0, mode audit)",
            "  Matched for: dave@northwind.test",
            "  Condition subject-contains-words: invoice",
            "  Would (audit mode, not done): quarantine",
            "Rule \"Tag partners\" (priority 1, mode enforce)",
            "  Action: prepend-subject: [Partner]",
            "  Action: generate-incident-report: SOC@contoso.test",
            "Rule \"Score\" (priority 2, mode enforce)",
            "  Action: set-scl: 6",
            "The original message is attached (125 bytes).",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // The original, whole, as message/rfc822.
        assert_eq!(msg.attachment_count(), 1);
        let attached = msg.attachment(0).unwrap();
        let act = attached.content_type().unwrap();
        assert_eq!((act.ctype(), act.subtype()), ("message", Some("rfc822")));
        let inner = attached.message().expect("an embedded message");
        assert_eq!(inner.subject(), Some("Your invoice"));
        assert_eq!(inner.body_text(0).as_deref(), Some("Please pay.\r\n"));
        assert_eq!(ORIGINAL.len(), 125);
    }

    #[test]
    fn a_5_mb_original_is_attached_as_its_header_fields_only() {
        let mut original = ORIGINAL[..ORIGINAL.len() - b"Please pay.\r\n".len()].to_vec();
        while original.len() < 5 * 1024 * 1024 {
            original.extend_from_slice(&[b'A'; 76]);
            original.extend_from_slice(b"\r\n");
        }
        let header_len = crate::header_block(&original).len();
        let rules = reported_rules(&evaluation(&original));
        let recipients = vec!["alice@contoso.test".to_string()];
        // The caller may pass the whole message or only its head: the report is the same.
        let whole = report_of(&original, original.len() as u64, &rules, &recipients);
        let head = report_of(
            &original[..INCIDENT_REPORT_MAX_ORIGINAL],
            original.len() as u64,
            &rules,
            &recipients,
        );
        assert_eq!(content_of(&whole), content_of(&head));
        assert!(
            whole.content.len() < 8 * 1024,
            "{} bytes",
            whole.content.len()
        );
        let content = content_of(&whole);
        let msg = MessageParser::new().parse(content).unwrap();
        let text = msg.body_text(0).unwrap();
        let said = format!(
            "The original message is {} bytes, more than the {} bytes a report attaches:\r\n\
             only its header fields are attached ({header_len} bytes).",
            original.len(),
            INCIDENT_REPORT_MAX_ORIGINAL
        );
        assert!(text.contains(&said), "{text}");
        let raw = String::from_utf8_lossy(content);
        assert!(
            raw.contains("Content-Type: text/rfc822-headers\r\n"),
            "{raw}"
        );
        assert!(!raw.contains("message/rfc822"), "{raw}");
        assert!(
            raw.contains(
                "\r\nSubject: Your invoice\r\nMessage-ID: <m1@fabrikam.test>\r\n\r\n--hato-"
            ),
            "{raw}"
        );
        assert!(!raw.contains("AAAA"), "no body in the report");
    }

    #[test]
    fn a_header_longer_than_the_bound_is_cut_after_a_whole_line() {
        // A References field of 2 MB, one identifier per folded line.
        let mut original = b"From: bob@fabrikam.test\r\nSubject: s\r\nReferences:".to_vec();
        let mut i = 0;
        while original.len() < 2 * 1024 * 1024 {
            original.extend_from_slice(format!(" <ref-{i:08}@fabrikam.test>\r\n").as_bytes());
            i += 1;
        }
        original.extend_from_slice(b"\r\nbody\r\n");
        let size = original.len() as u64;
        let head = &original[..INCIDENT_REPORT_MAX_ORIGINAL];
        for given in [&original[..], head] {
            let m = report_of(given, size, &[], &[]);
            let content = content_of(&m);
            assert!(content.len() < INCIDENT_REPORT_MAX_ORIGINAL + 4096);
            let raw = String::from_utf8_lossy(content);
            let part = raw
                .split(
                    "Content-Type: text/rfc822-headers\r\nContent-Disposition: attachment\r\n\r\n",
                )
                .nth(1)
                .expect("the headers part");
            let attached = &part[..part.rfind("\r\n--hato-").unwrap()];
            assert!(attached.len() <= INCIDENT_REPORT_MAX_ORIGINAL);
            assert!(attached.len() > INCIDENT_REPORT_MAX_ORIGINAL - 100);
            assert!(
                attached.ends_with("@fabrikam.test>\r\n"),
                "cut inside a line"
            );
            assert!(attached.starts_with("From: bob@fabrikam.test\r\n"));
        }
    }

    #[test]
    fn an_original_holding_boundary_lookalikes_stays_one_attachment() {
        // Whatever the sender writes, it cannot guess the boundary (a hash of the whole).
        let original = b"Subject: x\r\n\r\n--hato-\r\n--hato--\r\n--\r\nContent-Type: text/plain\r\n\r\nadded\r\n";
        let m = report_of(original, original.len() as u64, &[], &[]);
        let msg = MessageParser::new().parse(content_of(&m)).unwrap();
        assert_eq!(msg.attachment_count(), 1);
        // The root, the text and the attached message: no part ends early, none is added.
        assert_eq!(msg.parts.len(), 3);
        let attached = msg.attachment(0).unwrap();
        assert_eq!(attached.contents(), &original[..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn no_value_adds_a_field_or_a_line(
            subject in "(\\PC|[\r\n\t\0\u{85}\u{2028}]|=\\?|\\?=| |\r\nBcc: x@y\\.test){0,80}",
            from in "(\\PC|[\r\n\0<>\"]|\r\nBcc: x@y\\.test){0,60}",
            sender in "(\\PC|[\r\n\0<>])*",
            name in "(\\PC|[\r\n\t\0]|\r\nX-Injected: 1){0,600}",
            location in "(\\PC|[\r\n\t\0\u{202e}]){0,80}",
            recipient in "(\\PC|[\r\n\0]){0,40}",
            value in "(\\PC|[\r\n\0]|\r\n\r\n--hato-){0,1200}",
        ) {
            let recipients = vec![recipient.clone()];
            let detections = vec![Detection {
                name: name.clone(),
                location: location.clone(),
                true_type: None,
                engine: "clamd".into(),
                item: None,
            }];
            let notice = MalwareNotice {
                scope: SenderScope::External,
                org_domain: "contoso.test",
                envelope_sender: &sender,
                from: &from,
                recipients: &recipients,
                subject: &subject,
                message_id: &from,
                trace_id: "t-1",
                received: RECEIVED,
                detections: &detections,
                policy: &name,
                outcome: &MalwareOutcome::Quarantine,
            };
            let m = malware_admin_notification(&notice, admin("soc@contoso.test"), HOST, AT);
            let content = content_of(&m);
            assert_lines(content, 78);
            prop_assert_eq!(names(content), notice_fields());
            let msg = MessageParser::new().parse(content).unwrap();
            let want = if subject.is_empty() {
                "Malware detected (external sender)".to_string()
            } else {
                format!("Malware detected (external sender): {}", clean(&subject))
            };
            let want = crate::headers::without_controls(&want);
            prop_assert_eq!(msg.subject().unwrap_or(""), want.as_ref());
            let text = msg.body_text(0).unwrap().into_owned();
            prop_assert_eq!(text.lines().count(), 20, "{}", text);
            prop_assert!(text.lines().any(|l| l.starts_with("  ") && l.ends_with(" (engine clamd)")));

            let rules = vec![ReportedRule {
                rule: name.clone(),
                priority: 3,
                mode: Mode::Enforce,
                matched: vec![(name.clone(), value.clone())],
                recipients: recipients.clone(),
                actions: vec![value.clone()],
            }];
            let original = format!("Subject: {subject}\r\n\r\n{value}\r\n");
            let r = incident_report(
                &IncidentReport {
                    org_domain: "contoso.test",
                    envelope_sender: &sender,
                    from: &from,
                    recipients: &recipients,
                    subject: &subject,
                    message_id: &from,
                    trace_id: "t-1",
                    received: RECEIVED,
                    rules: &rules,
                    original: original.as_bytes(),
                    original_size: original.len() as u64,
                    max_attached: INCIDENT_REPORT_MAX_ORIGINAL,
                },
                admin("soc@contoso.test"),
                HOST,
                AT,
            );
            let content = content_of(&r);
            let msg = MessageParser::new().parse(content).unwrap();
            let fields: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
            prop_assert_eq!(fields, &NOTICE_FIELDS[..8]);
            let text = msg.body_text(0).unwrap().into_owned();
            prop_assert_eq!(text.lines().count(), 19, "{}", text);
            prop_assert_eq!(msg.attachment_count(), 1);
            let attached = msg.attachment(0).unwrap();
            prop_assert_eq!(attached.contents(), original.as_bytes());
        }
    }
}

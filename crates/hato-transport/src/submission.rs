//! Client submission (RFC 6409) on the submission listener: what Exchange Online's SMTP AUTH
//! endpoint (`smtp.office365.com:587`, `exchange-online-behaviour.md` §9.3) does around the
//! directory's recipient decision and the content stages.
//!
//! - AUTH: the credential check is an [`Authenticator`] (the password hash and its failure
//!   limits live with the API's login, `hato_admin::smtp_auth`).
//! - MAIL FROM: the address must be one of the authenticated mailbox's own (primary or proxy)
//!   or one of a mailbox it has SendAs on (granted to it or to a security group it is in);
//!   otherwise `550 5.7.60 SMTP; Client does not have permissions to send as this sender`.
//!   Exchange gives 5.7.60 at the end of the data; hato refuses at MAIL FROM, before the client
//!   sends the message, and checks the From header field against the same rule after the data
//!   (a From of another address without SendAs is 5.7.60 too). Send on behalf (Exchange's
//!   `GrantSendOnBehalfTo`): a From of a mailbox the identity has SendOnBehalf on passes when
//!   the `Sender` field is the identity's own address (RFC 5322 §3.6.2); the envelope sender
//!   stays the delegate's own (the MAIL FROM rule above), so bounces go to who sent it.
//! - Quotas ([`Quotas`]): per mailbox, `max_messages_per_minute` (30 by default) counted at
//!   MAIL FROM and `max_recipients_per_day` (10,000) counted at RCPT, in fixed windows that start
//!   with the first count after the last one ended; over them, `554 5.2.2 Submission quota
//!   exceeded`. A transaction's MAIL and its accepted recipients count whether or not the
//!   message is then sent.
//! - None of the edge's stages (block lists, throttling, connection filters, inbound connectors,
//!   RejectDirectSend) run: the client is a user of a tenant, not a server on the internet. The
//!   content stages still do (the malware filter, transport rules); the spam filter does not
//!   filter an authenticated client's mail (`content.rs`).
//! - Recipients in a domain no tenant accepts are accepted with route `Remote` for the sender's
//!   tenant (`routing.rs`); the identity goes with the message, so group restrictions and
//!   moderation see an authenticated sender.

use hato_core::client::{AuthenticatedIdentity, Principal};
use hato_core::directory::{MailboxId, MailboxRight};
use hato_core::reply;
use hato_core::{Address, ClientContext, Clock, MessageContext, Reason, Refusal, Stage};
use hato_directory::{Addressee, Directory};
use hato_smtp::policy::BoxFuture;
pub use hato_smtp::{AuthVerdict, Credentials};
use hato_smtp::{DataVerdict, Decision, RcptVerdict, SmtpPolicy, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The credential check of SMTP AUTH: who `credentials` name, if the password is right and the
/// limits let the attempt be checked at all.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(
        &self,
        client: &ClientContext,
        credentials: Credentials,
    ) -> BoxFuture<AuthVerdict>;
}

/// The submission limits (`[submission]` in `hato.toml`), Exchange Online's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmissionLimits {
    pub max_messages_per_minute: u32,
    pub max_recipients_per_day: u32,
}

impl Default for SubmissionLimits {
    fn default() -> Self {
        // exchange-online-behaviour.md §9.3: 30 messages a minute, 10,000 recipients a day.
        SubmissionLimits {
            max_messages_per_minute: 30,
            max_recipients_per_day: 10_000,
        }
    }
}

const MINUTE_MICROS: i64 = 60 * 1_000_000;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Mailboxes counted at most; past this, the ones whose windows have all ended are dropped
/// (only authenticated mailboxes are counted, so the table is as large as the directory's
/// active senders, not as anything an outside sender controls).
pub const MAX_COUNTED_MAILBOXES: usize = 100_000;

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    minute_start: i64,
    messages: u32,
    day_start: i64,
    recipients: u32,
}

impl Counts {
    fn roll(&mut self, now: i64) {
        if now - self.minute_start >= MINUTE_MICROS || now < self.minute_start {
            self.minute_start = now;
            self.messages = 0;
        }
        if now - self.day_start >= DAY_MICROS || now < self.day_start {
            self.day_start = now;
            self.recipients = 0;
        }
    }

    fn idle(&self, now: i64) -> bool {
        now - self.minute_start >= MINUTE_MICROS && now - self.day_start >= DAY_MICROS
    }
}

/// Per-mailbox submission counts in memory (constant time per MAIL and RCPT, bounded table).
/// They start again at a restart, as the throttle's in-memory counts do.
pub struct Quotas {
    limits: SubmissionLimits,
    clock: Arc<dyn Clock>,
    counts: Mutex<HashMap<MailboxId, Counts>>,
}

impl Quotas {
    pub fn new(limits: SubmissionLimits, clock: Arc<dyn Clock>) -> Self {
        Quotas {
            limits,
            clock,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, mailbox: MailboxId, f: impl FnOnce(&mut Counts) -> R) -> R {
        let now = self.clock.now().0;
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(&mailbox) && map.len() >= MAX_COUNTED_MAILBOXES {
            map.retain(|_, c| !c.idle(now));
        }
        let c = map.entry(mailbox).or_insert(Counts {
            minute_start: now,
            messages: 0,
            day_start: now,
            recipients: 0,
        });
        c.roll(now);
        f(c)
    }

    /// Counts a message (a MAIL FROM) of `mailbox`, or refuses it over the per-minute limit.
    pub fn take_message(&self, mailbox: MailboxId) -> Result<(), Refusal> {
        let max = self.limits.max_messages_per_minute;
        self.with(mailbox, |c| {
            if c.messages >= max {
                return Err(quota_refusal(
                    format!(
                        "The mailbox submitted {} messages in the last minute, the most \
                     submission.max_messages_per_minute allows",
                        c.messages
                    ),
                    "submission.max_messages_per_minute",
                ));
            }
            c.messages += 1;
            Ok(())
        })
    }

    /// Counts a recipient of `mailbox`, or refuses it over the per-day limit.
    pub fn take_recipient(&self, mailbox: MailboxId) -> Result<(), Refusal> {
        let max = self.limits.max_recipients_per_day;
        self.with(mailbox, |c| {
            if c.recipients >= max {
                return Err(quota_refusal(
                    format!(
                        "The mailbox submitted to {} recipients in the last day, the most \
                     submission.max_recipients_per_day allows",
                        c.recipients
                    ),
                    "submission.max_recipients_per_day",
                ));
            }
            c.recipients += 1;
            Ok(())
        })
    }

    /// Gives back a recipient counted by [`Quotas::take_recipient`] that was then refused.
    pub fn return_recipient(&self, mailbox: MailboxId) {
        self.with(mailbox, |c| c.recipients = c.recipients.saturating_sub(1));
    }
}

/// The quota refusal: `text` says which count reached which setting (`rule`).
fn quota_refusal(text: String, rule: &str) -> Refusal {
    Refusal::new(
        reply::SUBMISSION_QUOTA_EXCEEDED,
        Reason::new(Stage::Session, text).rule(rule),
    )
}

/// The authenticated mailbox of a session, or the refusal of anonymous submission.
fn submitter(client: &ClientContext) -> Result<(AuthenticatedIdentity, MailboxId), Refusal> {
    match &client.identity {
        Some(identity) => match identity.principal {
            Principal::Mailbox(m) => Ok((identity.clone(), m)),
            Principal::Connector(_) => Err(anonymous()),
        },
        None => Err(anonymous()),
    }
}

fn anonymous() -> Refusal {
    Refusal::new(
        reply::ANONYMOUS_SUBMISSION,
        Reason::new(
            Stage::Session,
            "The submission listener takes mail only from an authenticated mailbox",
        ),
    )
}

/// Whether the mailbox `identity` authenticated as may send as `address`: one of its own
/// addresses, or a mailbox of its tenant it has SendAs on (directly or through a security
/// group). Blocks (the directory index).
pub fn may_send_as(
    directory: &Directory,
    identity: &AuthenticatedIdentity,
    mailbox: MailboxId,
    address: &Address,
) -> Result<bool, hato_store::StoreError> {
    let ix = directory.index(identity.tenant)?;
    Ok(match ix.lookup(&address.to_string()) {
        Some(Addressee::Mailbox(owner)) => {
            owner == mailbox || ix.has_right(mailbox, owner, MailboxRight::SendAs)
        }
        // A group's address, or another tenant's, or nobody's: Exchange's SendAs on a group is
        // not modelled (permissions are on mailboxes).
        Some(Addressee::Group(_)) | None => false,
    })
}

/// Whether the mailbox `identity` authenticated as may send on behalf of `address`
/// (Exchange's `GrantSendOnBehalfTo`): a mailbox of its tenant it has SendOnBehalf on (directly
/// or through a security group), and the message names the sender in its `Sender` field as one
/// of the identity's own addresses (RFC 5322 §3.6.2: `Sender:` is the agent responsible for the
/// transmission when it is not the author). Blocks (the directory index).
pub fn may_send_on_behalf(
    directory: &Directory,
    identity: &AuthenticatedIdentity,
    mailbox: MailboxId,
    address: &Address,
    sender_field: Option<&Address>,
) -> Result<bool, hato_store::StoreError> {
    let Some(sender_field) = sender_field else {
        return Ok(false);
    };
    let ix = directory.index(identity.tenant)?;
    let owner = match ix.lookup(&address.to_string()) {
        Some(Addressee::Mailbox(owner)) => owner,
        Some(Addressee::Group(_)) | None => return Ok(false),
    };
    let own_sender = matches!(
        ix.lookup(&sender_field.to_string()),
        Some(Addressee::Mailbox(m)) if m == mailbox
    );
    Ok(own_sender && ix.has_right(mailbox, owner, MailboxRight::SendOnBehalf))
}

fn send_as_denied(address: &str, field: &str, identity: &AuthenticatedIdentity) -> Refusal {
    Refusal::new(
        reply::SEND_AS_DENIED,
        Reason::new(
            Stage::Session,
            format!(
                "{} authenticated, and the {field} address {address} is neither one of its own \
                 nor of a mailbox it has SendAs on (nor, with its own address in Sender, of one \
                 it has SendOnBehalf on)",
                identity.address
            ),
        )
        .rule("SendAs"),
    )
}

fn directory_failed(error: &dyn std::fmt::Display) -> Refusal {
    Refusal::new(
        reply::DIRECTORY_FAILED,
        Reason::new(
            Stage::Session,
            format!("The send-as check could not read the directory: {error}"),
        ),
    )
}

/// The address of the Sender header field (RFC 5322 §3.6.2: one mailbox), canonical; `None`
/// without one, or when it is not one address.
fn sender_address(headers: &hato_core::header::Headers) -> Option<Address> {
    headers.first("Sender")?;
    let block = hato_core::header::only_fields(headers.block(), &["Sender"]);
    let parsed = mail_parser::MessageParser::new().parse_headers(&block[..])?;
    let value = parsed.header_values("Sender").next()?.as_address()?;
    let mut all = value.iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    Address::parse(first.address.as_deref()?).ok()
}

/// The addresses of the From header fields of a header block, canonical; `Err` with the text of
/// one that is not an address. At most the first 8 From fields are read (RFC 5322 §3.6 allows
/// one).
fn from_addresses(headers: &hato_core::header::Headers) -> Result<Vec<Address>, String> {
    if headers.first("From").is_none() {
        return Ok(Vec::new());
    }
    let block = hato_core::header::only_fields(headers.block(), &["From"]);
    let Some(parsed) = mail_parser::MessageParser::new().parse_headers(&block[..]) else {
        return Err(String::from_utf8_lossy(&block).trim().to_string());
    };
    let mut out = Vec::new();
    for from in parsed
        .header_values("From")
        .take(8)
        .filter_map(|v| v.as_address())
    {
        for addr in from.iter() {
            let text = addr.address.as_deref().unwrap_or_default();
            match Address::parse(text) {
                Ok(a) => out.push(a),
                Err(_) => return Err(text.chars().take(320).collect()),
            }
        }
    }
    if out.is_empty() {
        return Err(String::from_utf8_lossy(&block).trim().to_string());
    }
    Ok(out)
}

async fn decided<T>(d: Decision<T>) -> T {
    match d {
        Decision::Ready(v) => v,
        Decision::Pending(f) => f.await,
    }
}

/// The submission listener's policy around `inner` (the content stages around the directory's
/// recipient decision).
pub struct SubmissionPolicy<P> {
    inner: Arc<P>,
    directory: Arc<Directory>,
    authenticator: Arc<dyn Authenticator>,
    quotas: Arc<Quotas>,
}

impl<P: SmtpPolicy + 'static> SubmissionPolicy<P> {
    pub fn new(
        inner: P,
        directory: Arc<Directory>,
        authenticator: Arc<dyn Authenticator>,
        quotas: Arc<Quotas>,
    ) -> Self {
        SubmissionPolicy {
            inner: Arc::new(inner),
            directory,
            authenticator,
            quotas,
        }
    }
}

impl<P: SmtpPolicy + 'static> SmtpPolicy for SubmissionPolicy<P> {
    fn connect(&self, client: &ClientContext) -> Decision<Verdict> {
        self.inner.connect(client)
    }

    fn ehlo(&self, client: &ClientContext, host: &str) -> Decision<Verdict> {
        self.inner.ehlo(client, host)
    }

    fn auth(&self, client: &ClientContext, credentials: Credentials) -> Decision<AuthVerdict> {
        Decision::Pending(self.authenticator.authenticate(client, credentials))
    }

    fn mail(&self, client: &ClientContext, sender: Option<&Address>) -> Decision<Verdict> {
        let (identity, mailbox) = match submitter(client) {
            Ok(s) => s,
            Err(refusal) => return Decision::Ready(Verdict::Reject(refusal)),
        };
        let inner = self.inner.mail(client, sender);
        let directory = self.directory.clone();
        let quotas = self.quotas.clone();
        let sender = sender.cloned();
        Decision::later(async move {
            if let Some(sender) = sender {
                let who = identity.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let allowed = may_send_as(&directory, &who, mailbox, &sender);
                    (sender, allowed)
                })
                .await;
                match checked {
                    Ok((_, Ok(true))) => {}
                    Ok((sender, Ok(false))) => {
                        return Verdict::Reject(send_as_denied(
                            &sender.to_string(),
                            "MAIL FROM",
                            &identity,
                        ));
                    }
                    Ok((_, Err(e))) => {
                        tracing::error!("send-as check: {e}");
                        return Verdict::Reject(directory_failed(&e));
                    }
                    Err(e) => {
                        tracing::error!("send-as check: {e}");
                        return Verdict::Reject(directory_failed(&e));
                    }
                }
            }
            if let Err(refusal) = quotas.take_message(mailbox) {
                return Verdict::Reject(refusal);
            }
            decided(inner).await
        })
    }

    fn rcpt(
        &self,
        client: &ClientContext,
        sender: Option<&Address>,
        recipient: &Address,
    ) -> Decision<RcptVerdict> {
        let mailbox = match submitter(client) {
            Ok((_, m)) => m,
            Err(refusal) => return Decision::Ready(RcptVerdict::Reject(refusal)),
        };
        if let Err(refusal) = self.quotas.take_recipient(mailbox) {
            return Decision::Ready(RcptVerdict::Reject(refusal));
        }
        let inner = self.inner.rcpt(client, sender, recipient);
        let quotas = self.quotas.clone();
        Decision::later(async move {
            let verdict = decided(inner).await;
            if matches!(verdict, RcptVerdict::Reject(_)) {
                // Only recipients the message goes to count.
                quotas.return_recipient(mailbox);
            }
            verdict
        })
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        let (identity, mailbox) = match submitter(&message.client) {
            Ok(s) => s,
            Err(refusal) => {
                return Decision::Ready(DataVerdict {
                    message,
                    verdict: Verdict::Reject(refusal),
                });
            }
        };
        let froms = from_addresses(&message.headers);
        let sender_field = sender_address(&message.headers);
        let inner = self.inner.clone();
        let directory = self.directory.clone();
        Decision::later(async move {
            let froms = match froms {
                Ok(f) => f,
                Err(text) => {
                    return DataVerdict {
                        message,
                        verdict: Verdict::Reject(send_as_denied(&text, "From", &identity)),
                    };
                }
            };
            if !froms.is_empty() {
                let who = identity.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    for from in froms {
                        match may_send_as(&directory, &who, mailbox, &from).and_then(|ok| {
                            if ok {
                                return Ok(true);
                            }
                            may_send_on_behalf(
                                &directory,
                                &who,
                                mailbox,
                                &from,
                                sender_field.as_ref(),
                            )
                        }) {
                            Ok(true) => {}
                            Ok(false) => return Ok(Some(from)),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Ok(None)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                let refusal = match checked {
                    Ok(None) => None,
                    Ok(Some(from)) => Some(send_as_denied(&from.to_string(), "From", &identity)),
                    Err(e) => {
                        tracing::error!("send-as check: {e}");
                        Some(directory_failed(&e))
                    }
                };
                if let Some(refusal) = refusal {
                    return DataVerdict {
                        message,
                        verdict: Verdict::Reject(refusal),
                    };
                }
            }
            decided(inner.end_of_data(message)).await
        })
    }

    fn cut(&self, client: &ClientContext, refusal: &Refusal) {
        self.inner.cut(client, refusal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Timestamp;
    use hato_core::clock::ManualClock;

    fn quotas(messages: u32, recipients: u32) -> (Arc<ManualClock>, Quotas) {
        let clock = Arc::new(ManualClock::new(
            Timestamp::parse_human("2026-12-01T06:00:00Z").unwrap(),
        ));
        let q = Quotas::new(
            SubmissionLimits {
                max_messages_per_minute: messages,
                max_recipients_per_day: recipients,
            },
            clock.clone(),
        );
        (clock, q)
    }

    #[test]
    fn messages_per_minute_reset_when_the_minute_ends() {
        let (clock, q) = quotas(2, 100);
        q.take_message(1).unwrap();
        q.take_message(1).unwrap();
        let refused = q.take_message(1).unwrap_err();
        assert_eq!(refused.reply, reply::SUBMISSION_QUOTA_EXCEEDED);
        assert_eq!(
            refused.reason.rule.as_deref(),
            Some("submission.max_messages_per_minute")
        );
        // Another mailbox has counts of its own.
        q.take_message(2).unwrap();
        clock.advance_seconds(59);
        assert!(q.take_message(1).is_err());
        clock.advance_seconds(1);
        q.take_message(1).unwrap();
    }

    #[test]
    fn recipients_per_day_reset_when_the_day_ends_and_refused_ones_are_given_back() {
        let (clock, q) = quotas(100, 3);
        for _ in 0..3 {
            q.take_recipient(1).unwrap();
        }
        assert!(q.take_recipient(1).is_err());
        q.return_recipient(1);
        q.take_recipient(1).unwrap();
        assert!(q.take_recipient(1).is_err());
        clock.advance_seconds(24 * 3600 - 1);
        assert!(q.take_recipient(1).is_err());
        clock.advance_seconds(1);
        q.take_recipient(1).unwrap();
    }

    #[test]
    fn the_table_stays_bounded() {
        let (clock, q) = quotas(10, 10);
        for m in 0..MAX_COUNTED_MAILBOXES as i64 {
            q.take_message(m).unwrap();
        }
        clock.advance_seconds(24 * 3600);
        q.take_message(-1).unwrap();
        assert_eq!(q.counts.lock().unwrap().len(), 1);
    }

    fn headers(text: &str) -> hato_core::header::Headers {
        hato_core::header::Headers::parse(text.as_bytes(), 64 * 1024)
    }

    #[test]
    fn from_addresses_are_read_from_the_from_fields() {
        let h = headers("Subject: x\r\nFrom: \"Alice A.\" <Alice@Contoso.test>\r\n\r\nbody\r\n");
        assert_eq!(
            from_addresses(&h).unwrap(),
            [Address::parse("alice@contoso.test").unwrap()]
        );
        let h = headers("From: a@contoso.test, b@contoso.test\r\n\r\n");
        assert_eq!(from_addresses(&h).unwrap().len(), 2);
        assert!(
            from_addresses(&headers("Subject: none\r\n\r\n"))
                .unwrap()
                .is_empty()
        );
        assert!(from_addresses(&headers("From: not an address\r\n\r\n")).is_err());
    }
}

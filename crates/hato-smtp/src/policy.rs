//! The session's hook points (architecture decision 10): at connect (before the banner), EHLO,
//! MAIL, RCPT and end-of-data the session asks its [`SmtpPolicy`], giving it the
//! [`ClientContext`] and what the hook is about.
//!
//! A decision may be known at once ([`Decision::Ready`]) or only later ([`Decision::Pending`]: a
//! directory read, a DNS lookup). The session does no I/O and never polls a future: for a pending
//! decision it returns [`crate::Output::Decide`], keeps any pipelined input buffered, and goes on
//! when the I/O loop hands the answer to [`crate::Session::decided`].
//!
//! A refusal carries its reply and its reason ([`Refusal`]): the client gets the reply, the
//! session logs the reason (the connection log of the edge-protection stages will keep it). At end-of-data the hook gets
//! the [`MessageContext`] by value, may record a verdict with its reason for each recipient, and
//! hands it back; the verdicts become the recipients' trace events when the message is queued.

use hato_core::client::AuthenticatedIdentity;
use hato_core::directory::{Route, TenantId};
use hato_core::message::{MessageContext, Recipient};
use hato_core::reply;
use hato_core::{Address, ClientContext, Reason, Refusal, Stage};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed future a policy returns for a decision that takes time.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A policy's answer: now, or later.
pub enum Decision<T> {
    Ready(T),
    Pending(BoxFuture<T>),
}

impl<T> Decision<T> {
    /// A decision that an asynchronous computation will make.
    pub fn later(f: impl Future<Output = T> + Send + 'static) -> Self {
        Decision::Pending(Box::pin(f))
    }
}

/// Go on, or refuse with this reply for this reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject(Refusal),
}

/// A recipient the policy accepted at RCPT time, and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRecipient {
    pub address: Address,
    pub tenant_id: TenantId,
    pub route: Route,
}

impl From<AcceptedRecipient> for Recipient {
    fn from(r: AcceptedRecipient) -> Self {
        Recipient {
            address: r.address,
            tenant_id: r.tenant_id,
            route: r.route,
            verdicts: Vec::new(),
            content: Default::default(),
            dsn: Default::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptVerdict {
    Accept(AcceptedRecipient),
    Reject(Refusal),
}

/// What a client gave in SMTP AUTH (RFC 4954): PLAIN's authentication identity and password
/// (RFC 4616), or LOGIN's user name and password. The password never appears in `Debug` output
/// or in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: &'static str,
    /// The authentication identity (a mailbox address, as the user typed it).
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The credential check's answer: who the client is, or the refusal (`535 5.7.3`, `454 4.7.0`
/// while locked out, `535 5.7.139` for a mailbox whose SMTP AUTH is off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    Accept(AuthenticatedIdentity),
    Reject(Refusal),
}

/// The end-of-data hook's answer: the message handed back (with the verdicts the stages recorded
/// for its recipients), and whether the session goes on to commit it.
#[derive(Debug)]
pub struct DataVerdict {
    pub message: MessageContext,
    pub verdict: Verdict,
}

impl DataVerdict {
    pub fn accept(message: MessageContext) -> Self {
        DataVerdict {
            message,
            verdict: Verdict::Accept,
        }
    }
}

/// The decisions of a session's hook points. Every method but [`SmtpPolicy::rcpt`] accepts by
/// default, so a stage implements only the hooks it needs; `rcpt` has no default because
/// accepting a recipient means knowing its tenant and route.
///
/// The returned futures are `'static`: an implementation copies what it needs out of the
/// arguments before it returns; at end-of-data it owns the message context, so its future can
/// read the body and headers (a spooled body's file off the async workers) and hands the context
/// back in its [`DataVerdict`]. Work that blocks (store reads, spool files) must leave the async
/// workers (`tokio::task::spawn_blocking`), and must start only when the future is polled: the
/// session may call a hook outside any runtime (in unit tests).
pub trait SmtpPolicy: Send + Sync {
    /// Before the banner (RFC 5321 §3.1). A refusal is sent instead of the 220 and the
    /// connection is closed.
    fn connect(&self, _client: &ClientContext) -> Decision<Verdict> {
        Decision::Ready(Verdict::Accept)
    }

    /// EHLO or HELO with a syntactically valid name; a refusal is the reply to that command.
    fn ehlo(&self, _client: &ClientContext, _host: &str) -> Decision<Verdict> {
        Decision::Ready(Verdict::Accept)
    }

    /// MAIL FROM; `sender` is `None` for the null reverse-path. A refusal is the reply to MAIL.
    fn mail(&self, _client: &ClientContext, _sender: Option<&Address>) -> Decision<Verdict> {
        Decision::Ready(Verdict::Accept)
    }

    /// RCPT TO: accept the recipient (with its tenant and route) or refuse it.
    fn rcpt(
        &self,
        client: &ClientContext,
        sender: Option<&Address>,
        recipient: &Address,
    ) -> Decision<RcptVerdict>;

    /// SMTP AUTH (RFC 4954) with complete credentials, on a listener that offers it: the
    /// credential check. It is slow on purpose (a password hash), so an implementation runs it on
    /// the blocking pool and bounds how many run at once; it also keeps the failure limits.
    /// Without one, every attempt fails.
    fn auth(&self, _client: &ClientContext, _credentials: Credentials) -> Decision<AuthVerdict> {
        Decision::Ready(AuthVerdict::Reject(Refusal::new(
            reply::AUTH_FAILED,
            Reason::new(Stage::Session, "No credential check is configured"),
        )))
    }

    /// The data has ended and passed the DATA receiver's checks. The hook owns `message` until
    /// it answers: it may record a verdict for each recipient ([`MessageContext::record`]) and
    /// must hand the message back. A refusal is the reply to the DATA; nothing is committed.
    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        Decision::Ready(DataVerdict::accept(message))
    }

    /// The server turned the client away or cut its session by itself, without a hook's
    /// decision: a connection limit (`421 4.3.2`, `421 4.7.0`) or the session's time limit
    /// (`421 4.4.2`). For the record (the connection log); nothing to decide. Called on the
    /// connection's task: it must not block.
    fn cut(&self, _client: &ClientContext, _refusal: &Refusal) {}
}

/// The answer the I/O loop feeds back with [`crate::Session::decided`].
#[derive(Debug)]
pub enum Answer {
    Verdict(Verdict),
    Rcpt(RcptVerdict),
    Data(Box<DataVerdict>),
    Auth(AuthVerdict),
}

/// A decision the I/O loop must await ([`crate::Output::Decide`]).
pub struct PendingDecision(BoxFuture<Answer>);

impl PendingDecision {
    pub(crate) fn verdict(f: BoxFuture<Verdict>) -> Self {
        PendingDecision(Box::pin(async move { Answer::Verdict(f.await) }))
    }

    pub(crate) fn rcpt(f: BoxFuture<RcptVerdict>) -> Self {
        PendingDecision(Box::pin(async move { Answer::Rcpt(f.await) }))
    }

    pub(crate) fn auth(f: BoxFuture<AuthVerdict>) -> Self {
        PendingDecision(Box::pin(async move { Answer::Auth(f.await) }))
    }

    pub(crate) fn data(f: BoxFuture<DataVerdict>) -> Self {
        PendingDecision(Box::pin(async move { Answer::Data(Box::new(f.await)) }))
    }
}

impl Future for PendingDecision {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for PendingDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingDecision")
    }
}

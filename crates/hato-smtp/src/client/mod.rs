//! hato's SMTP client (RFC 5321), for the delivery agent (MX delivery, smart hosts) and
//! connector validation.
//!
//! [`Client`] is the session as a state machine fed the server's bytes (no I/O, like the
//! server's [`crate::session::Session`]): greeting, EHLO (HELO when refused), STARTTLS,
//! transactions with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
//! (RFC 6531) and DSN (RFC 3461), a reply per recipient, RSET between transactions on one
//! session, QUIT. [`DataEncoder`] dot-stuffs the content as it streams. [`conn`] is the tokio
//! loop around them: connect (from a given source address), per-stage timeouts (RFC 5321
//! §4.5.3.2), TLS by the outbound connector's settings ([`tls`]).

pub mod conn;
mod data;
mod reply;
mod session;
pub mod tls;
mod transaction;

pub use data::{DataEncoder, is_eight_bit};
pub use reply::{DEFAULT_MAX_REPLY, MAX_REPLY_LINE};
pub use session::{Capabilities, Client, ClientConfig, Output, Stage, StartTls, Transcript};
pub use transaction::{
    Body, LocalRefusal, Notify, Recipient, RecipientResult, Ret, Status, Transaction,
    TransactionError, TransactionResult, xtext,
};

use hato_core::reply::{self as replies, Reply};

/// Why a session ended before its time. [`ClientError::reply`] is what the recipients of a
/// transaction it cut short get.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out {0}")]
    Timeout(Stage),
    #[error("the connection was closed {0}")]
    ConnectionClosed(Stage),
    #[error("the server refused the session: {0}")]
    GreetingRefused(Reply),
    #[error("the server refused EHLO and HELO: {0}")]
    HelloRefused(Reply),
    #[error("TLS is required and the server does not offer STARTTLS")]
    TlsNotOffered,
    #[error("TLS is required and the server refused STARTTLS: {0}")]
    StartTlsRefused(Reply),
    #[error("the TLS handshake failed: {0}")]
    TlsHandshake(String),
    #[error("the server's certificate failed validation: {0}")]
    Certificate(String),
    #[error("the server refused RSET: {0}")]
    RsetRefused(Reply),
    #[error("the server is closing the session: {0}")]
    ServiceClosing(Reply),
    #[error("the server sent a reply longer than {limit} bytes")]
    ReplyTooLong { limit: usize },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the message could not be read: {0}")]
    Content(String),
}

impl ClientError {
    /// The reply recorded for the recipients the failure left undecided: the server's own
    /// when it refused the session, else Exchange Online's text for the kind of failure
    /// (`exchange-online-behaviour.md` §9.4), all temporary.
    pub fn reply(&self) -> Reply {
        match self {
            ClientError::ConnectionRefused(d) => replies::connection_refused(d),
            ClientError::Connect(d) => replies::cannot_connect(d),
            ClientError::Timeout(_) => replies::connection_timed_out(self),
            ClientError::ConnectionClosed(_) => replies::connection_closed_abruptly(self),
            ClientError::GreetingRefused(r)
            | ClientError::HelloRefused(r)
            | ClientError::ServiceClosing(r) => r.clone(),
            // Exchange counts "TLS required but not offered" as a failure to connect.
            ClientError::TlsNotOffered
            | ClientError::StartTlsRefused(_)
            | ClientError::TlsHandshake(_) => replies::cannot_connect(self),
            ClientError::Certificate(d) => replies::certificate_validation_failed(d),
            ClientError::RsetRefused(_)
            | ClientError::ReplyTooLong { .. }
            | ClientError::Protocol(_) => replies::remote_protocol_error(self),
            ClientError::Content(d) => replies::content_unreadable(d),
        }
    }

    /// Whether the host refused for good (a 5xx greeting, EHLO and HELO refused): trying it
    /// again later will not help. Everything else is temporary.
    pub fn is_permanent(&self) -> bool {
        self.reply().is_permanent()
    }
}

#[cfg(test)]
mod tests;

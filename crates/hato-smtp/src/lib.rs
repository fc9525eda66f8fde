//! hato's SMTP server (RFC 5321).
//!
//! [`session::Session`] is a state machine fed bytes that returns replies and actions; it does no
//! I/O and is tested in memory. [`server`] is the thin tokio loop around it: sockets, STARTTLS,
//! timeouts and connection limits.

pub mod data;
pub mod server;
pub mod session;

pub use session::{
    AcceptedRecipient, Envelope, Output, RcptVerdict, RecipientPolicy, Session, SessionConfig,
    TlsInfo,
};

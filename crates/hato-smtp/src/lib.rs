//! hato's SMTP server (RFC 5321).
//!
//! [`session::Session`] is a state machine fed bytes that returns replies and actions; it does no
//! I/O and is tested in memory. It asks its [`policy::SmtpPolicy`] at each hook point. [`server`] is the thin tokio loop around it: sockets, STARTTLS,
//! timeouts and connection limits.

pub mod data;
pub mod header_filter;
pub mod policy;
pub mod server;
pub mod session;

pub use hato_core::message::{Envelope, MessageContext};
pub use hato_core::{ClientContext, Refusal, TlsInfo};
pub use policy::{
    AcceptedRecipient, Answer, DataVerdict, Decision, PendingDecision, RcptVerdict, SmtpPolicy,
    Verdict,
};
pub use session::{Output, Session, SessionConfig};

//! hato's SMTP server and client (RFC 5321).
//!
//! [`session::Session`] is a state machine fed bytes that returns replies and actions; it does no
//! I/O and is tested in memory. It asks its [`policy::SmtpPolicy`] at each hook point. [`server`] is the thin tokio loop around it: sockets, STARTTLS,
//! timeouts and connection limits. [`client`] is the other side, built the same way: a sans-IO
//! client session and its tokio driver, for delivering mail out.

pub mod client;
pub mod data;
pub mod header_filter;
pub mod policy;
pub mod server;
pub mod session;

pub use hato_core::message::{Envelope, MessageContext};
pub use hato_core::{ClientContext, Refusal, TlsInfo};
pub use policy::{
    AcceptedRecipient, Answer, AuthVerdict, Credentials, DataVerdict, Decision, PendingDecision,
    RcptVerdict, SmtpPolicy, Verdict,
};
pub use session::{Output, Session, SessionConfig};

/// A TLS session's protocol and cipher as hato records them (`TLS1.3`,
/// `TLS13_AES_256_GCM_SHA384`), for the server's sessions and the client's alike.
pub(crate) fn tls_info(common: &rustls::CommonState) -> TlsInfo {
    TlsInfo {
        version: common
            .protocol_version()
            .map(|v| {
                v.as_str()
                    .unwrap_or("TLS")
                    .replace("TLSv1_", "TLS1.")
                    .replace("TLSv", "TLS")
            })
            .unwrap_or_default(),
        cipher: common
            .negotiated_cipher_suite()
            .map(|c| c.suite().as_str().unwrap_or("unknown").to_string())
            .unwrap_or_default(),
    }
}

//! Who is on the other end of an SMTP session, as every policy hook sees it (architecture
//! decision 10: hook points carry the client).
//!
//! Identity comes only from authentication (SMTP AUTH, an inbound connector, or a domain whose
//! DMARC-aligned authentication a tenant trusts), never from `MAIL FROM` alone.

use crate::Address;
use crate::directory::{MailboxId, TenantId};
use std::net::SocketAddr;

/// The TLS parameters of a session after STARTTLS (RFC 3207), as Received headers and trace show
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// e.g. `TLS1.3`
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`
    pub cipher: String,
}

/// How an identity was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// SMTP AUTH (RFC 4954) on the submission port.
    SmtpAuth,
    /// An inbound connector matched the client (by certificate name or IP range).
    Connector,
    /// The sender's domain passed DMARC-aligned authentication for a tenant that trusts it.
    DmarcAlignedDomain,
}

/// What an identity is: a mailbox (its user authenticated) or a tenant's connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Mailbox(MailboxId),
    Connector(i64),
}

/// The client as the platform knows it after authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedIdentity {
    pub tenant: TenantId,
    pub principal: Principal,
    /// The address the identity may send as.
    pub address: Address,
    pub method: AuthMethod,
}

/// Everything known about the client of a session at a hook point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientContext {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// Our address the client connected to (which listener, which port).
    pub local: SocketAddr,
    /// The client's reverse DNS name, once looked up and confirmed; `None` until then.
    pub ptr: Option<String>,
    /// The EHLO/HELO name, once given (cleared by STARTTLS, RFC 3207 §4.2).
    pub helo: Option<String>,
    /// Set after a successful STARTTLS.
    pub tls: Option<TlsInfo>,
    /// `None` for direct send, which never authenticates.
    pub identity: Option<AuthenticatedIdentity>,
}

impl ClientContext {
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        ClientContext {
            peer,
            local,
            ptr: None,
            helo: None,
            tls: None,
            identity: None,
        }
    }

    pub fn ip(&self) -> std::net::IpAddr {
        self.peer.ip()
    }

    /// The HELO name as given, or empty before one was given.
    pub fn helo_name(&self) -> &str {
        self.helo.as_deref().unwrap_or("")
    }
}

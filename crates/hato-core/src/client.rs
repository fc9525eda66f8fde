//! Who is on the other end of an SMTP session, as every policy hook sees it (architecture
//! decision 10: hook points carry the client).
//!
//! Identity comes only from authentication (SMTP AUTH, an inbound connector, or a domain whose
//! DMARC-aligned authentication a tenant trusts), never from `MAIL FROM` alone.

use crate::Address;
use crate::directory::{MailboxId, TenantId};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

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

/// The inbound connector a client was attributed to at MAIL FROM (an enabled on-premises
/// connector whose `--sender-ip-addresses` hold its IP; `exchange-online-behaviour.md` §9.1,
/// tenant attribution): the tenant whose server the client is. Kept in the session state
/// ([`Attribution`]) by the edge, read by routing (relay, group restrictions), the content
/// stages (no own-domain spoof) and the session's header filter (CloudServicesMailEnabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorAttribution {
    pub tenant: TenantId,
    /// The connector's row id and name (for reasons and logs).
    pub connector_id: i64,
    pub connector: String,
    /// The MAIL FROM address when its domain is a verified accepted domain of `tenant`: the
    /// connector vouches for it (relay to outside domains; an identity at the domain level
    /// for the tenant's groups). `None` for another domain or the null sender.
    pub vouched_sender: Option<String>,
    /// `--cloud-services-mail-enabled`: hato's own header fields from this client are kept.
    pub keep_internal_headers: bool,
}

/// The session's attribution, set at each MAIL FROM (a new transaction may name another
/// sender domain, and with it another tenant of a shared IP); `None` when no on-premises
/// connector holds the client's IP.
#[derive(Clone, Debug, Default)]
pub struct Attribution(pub Option<ConnectorAttribution>);

/// What the client sent before the banner. With a greeting delay the server waits before its
/// 220 (RFC 5321 §4.3.1: the client waits for it); a client that talks first is not waiting, as
/// spambots that fire their commands at once do not (Postfix postscreen's pregreet test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pregreet {
    /// How many bytes came before the banner (one read, at most the server's read buffer).
    pub bytes: usize,
    /// How long after the connection opened they came, in milliseconds.
    pub after_ms: u64,
}

/// What the policies of one session keep for the rest of it (the edge's notes at connect, a
/// refusal held until the recipient's tenant is known): one value per type, made with its
/// `Default` the first time it is asked for. Every copy of the session's client context shares
/// it, so the end-of-data hook sees, in the message context's client, what the hooks before it
/// recorded; STARTTLS keeps it (the connection is the same). It is dropped with the session.
///
/// It is not part of who the client is: two client contexts compare equal whatever their
/// sessions' state holds.
#[derive(Clone, Default)]
pub struct SessionState(Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send>>>>);

impl SessionState {
    /// Runs `f` on this session's `T`. `f` must not ask the same session's state again (the
    /// state is locked while it runs).
    pub fn with<T: Default + Send + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A panic elsewhere while the lock was held leaves the values as they were; they are
        // still the session's.
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        if !slot.is::<T>() {
            // Keyed by the type's id, so the value is always a `T`; should it not be, a fresh
            // one is better than a panic.
            *slot = Box::new(T::default());
        }
        match slot.downcast_mut::<T>() {
            Some(value) => f(value),
            None => f(&mut T::default()),
        }
    }
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionState { .. }")
    }
}

impl PartialEq for SessionState {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SessionState {}

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
    /// What the client sent before the banner, when the server waited for it
    /// (`edge.greeting_delay_ms`); `None` when it waited, or nobody watched.
    pub pregreet: Option<Pregreet>,
    /// What the session's policies keep while it lasts.
    pub session_state: SessionState,
}

impl ClientContext {
    /// The mailbox the client authenticated as (SMTP AUTH); `None` for direct send and for a
    /// connector, which vouches for a domain, not a mailbox. Group restrictions and routing
    /// take identity from here only, never from MAIL FROM.
    pub fn authenticated_mailbox(&self) -> Option<crate::directory::MailboxId> {
        self.identity.as_ref().and_then(|i| match i.principal {
            Principal::Mailbox(m) => Some(m),
            Principal::Connector(_) => None,
        })
    }

    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        ClientContext {
            peer,
            local,
            ptr: None,
            helo: None,
            tls: None,
            identity: None,
            pregreet: None,
            session_state: SessionState::default(),
        }
    }

    pub fn ip(&self) -> std::net::IpAddr {
        self.peer.ip()
    }

    /// The inbound connector the edge attributed this session's transaction to, if any.
    pub fn attribution(&self) -> Option<ConnectorAttribution> {
        self.session_state.with(|a: &mut Attribution| a.0.clone())
    }

    /// The HELO name as given, or empty before one was given.
    pub fn helo_name(&self) -> &str {
        self.helo.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Notes(Vec<&'static str>);

    #[test]
    fn copies_of_a_client_context_share_their_sessions_state_and_others_do_not() {
        let a = ClientContext::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:25".parse().unwrap(),
        );
        let copy = a.clone();
        a.session_state.with(|n: &mut Notes| n.0.push("at connect"));
        copy.session_state.with(|n: &mut Notes| n.0.push("at RCPT"));
        assert_eq!(
            a.session_state.with(|n: &mut Notes| n.0.clone()),
            ["at connect", "at RCPT"]
        );
        // Another type has a value of its own; another session starts empty.
        assert_eq!(a.session_state.with(|n: &mut u32| *n), 0);
        let other = ClientContext::new(a.peer, a.local);
        assert!(other.session_state.with(|n: &mut Notes| n.0.is_empty()));
        assert_eq!(other, a, "the state is not part of who the client is");
    }
}

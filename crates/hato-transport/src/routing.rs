//! The recipient decision at RCPT time, over the directory.
//!
//! - The domain is not an accepted domain of any tenant, or one still pending verification
//!   (its owner has not shown that it controls it): relay. A mailbox's user who authenticated
//!   with SMTP AUTH (the submission listener) relays: accepted with route `Remote` for the
//!   user's tenant. A client the edge attributed to a
//!   tenant (an on-premises inbound connector holds its IP, `hato_core::client::Attribution`)
//!   whose MAIL FROM domain is a verified accepted domain of that tenant relays: accepted with
//!   route `Remote` for that tenant (`exchange-online-behaviour.md` §9.1, §9.3). Another client
//!   whose MAIL FROM domain is some tenant's accepted domain is told why it may not
//!   (`550 5.7.64 TenantAttribution; Relay Access Denied`, Exchange Online's reply); anyone else
//!   gets `550 5.7.1 Unable to relay` (direct send never relays, seed G2).
//! - A mailbox answers to the address (primary or proxy address): accepted for local delivery,
//!   recorded under its primary address (so a person reached again through a group is
//!   recognised as the same recipient).
//! - A mail-enabled group answers to it: its sender restrictions are checked now, while the
//!   sender can still be told in-session (`550 5.7.133`, `550 5.7.124`, `550 5.7.1`); accepted
//!   groups are expanded at routing.
//! - Unknown in an authoritative domain (directory-based edge blocking) →
//!   `550 5.4.1 Recipient address rejected: Access denied`.
//! - Unknown in an internal-relay domain: accepted, to be relayed to the organisation's server.
//! - `<postmaster>` without a domain (RFC 5321 §4.5.1), and `postmaster@`/`abuse@` of every accepted
//!   domain (RFC 2142; reserved, so no recipient of a tenant has them): accepted for the platform's
//!   postmaster mailbox (`smtp.postmaster`), which the delivery agent resolves; until one is
//!   configured the mail waits in the queue.

use hato_core::Address;
use hato_core::ClientContext;
use hato_core::client::ConnectorAttribution;
use hato_core::directory::{
    DomainEntry, DomainStatus, DomainType, GroupId, MailboxId, Route, TenantId,
};
use hato_core::dns::Resolver;
use hato_core::reply;
use hato_core::{Reason, Refusal, Stage};
use hato_directory::policy::{Sender, check_sender};
use hato_directory::{Addressee, Directory, DirectoryIndex};
use hato_smtp::{AcceptedRecipient, Decision, RcptVerdict, SmtpPolicy};
use hato_store::StoreError;
use std::sync::Arc;

pub struct DirectoryPolicy {
    directory: Arc<Directory>,
    /// Set when sender authentication runs after the DATA (the spam filter's SPF/DKIM/DMARC)
    /// and the content stages check group restrictions again with its result: the resolver
    /// that tells whether a sender's domain publishes DMARC at all.
    domain_authentication: Option<Arc<dyn Resolver>>,
}

/// The RCPT decision, or one that waits on whether the sender's domain can authenticate.
enum Routed {
    Final(RcptVerdict),
    /// A restricted group refuses the unauthenticated sender but would accept what its
    /// envelope address names: accepted provisionally if `domain` publishes DMARC.
    IfDomainAuthenticates {
        accept: RcptVerdict,
        refuse: RcptVerdict,
        domain: String,
    },
}

/// Where a recipient goes now, according to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Mailbox {
        tenant: TenantId,
        mailbox: MailboxId,
        primary: String,
    },
    Group {
        tenant: TenantId,
        group: GroupId,
        address: String,
    },
    UnknownInRelayDomain {
        tenant: TenantId,
    },
    UnknownInAuthoritativeDomain {
        tenant: TenantId,
    },
    /// For the platform's postmaster mailbox; `tenant` is the accepted domain's (none for
    /// `<postmaster>`).
    Postmaster {
        tenant: Option<TenantId>,
    },
    NotAccepted,
}

/// Trace rows of `<postmaster>` mail belong to no tenant: only the operator sees them.
pub const NO_TENANT: TenantId = 0;

/// Where the recipient decision reads the directory from.
trait Lookup {
    type Error;
    fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>, Self::Error>;
    fn index(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, Self::Error>;
}

/// The directory as it is now, read from the store when the cache does not know (blocks).
impl Lookup for Directory {
    type Error = StoreError;
    fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>, StoreError> {
        Directory::domain_entry(self, domain)
    }
    fn index(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, StoreError> {
        Directory::index(self, tenant)
    }
}

/// Only what the directory holds in memory under the store's current generation: a decision
/// made from it is the one a read would make now, and it is made inline on the session's
/// worker, without the hop to a blocking thread (`bench/relay.sh`). A miss is [`NotCached`].
struct CachedOnly<'a>(&'a Directory);

/// [`CachedOnly`] would have to read the store.
struct NotCached;

impl Lookup for CachedOnly<'_> {
    type Error = NotCached;
    fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>, NotCached> {
        self.0.cached_domain_entry(domain).ok_or(NotCached)
    }
    fn index(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, NotCached> {
        self.0.cached_index(tenant).ok_or(NotCached)
    }
}

pub fn resolve(directory: &Directory, rcpt: &Address) -> Result<Resolution, StoreError> {
    resolve_in(directory, rcpt)
}

fn resolve_in<L: Lookup + ?Sized>(directory: &L, rcpt: &Address) -> Result<Resolution, L::Error> {
    if rcpt.is_bare_postmaster() {
        return Ok(Resolution::Postmaster { tenant: None });
    }
    // A domain pending verification is not accepted yet: its mail is refused (or, for mail
    // hato generates, routed outside) exactly as for a domain no tenant holds, since the
    // tenant has not shown that the domain is its own.
    let Some(DomainEntry {
        tenant,
        domain_type: kind,
        status: DomainStatus::Verified,
        ..
    }) = directory.domain_entry(rcpt.domain())?
    else {
        return Ok(Resolution::NotAccepted);
    };
    let ix = directory.index(tenant)?;
    match ix.lookup(&rcpt.to_string()) {
        Some(Addressee::Mailbox(id)) => {
            if let Some(mb) = ix.mailbox(id) {
                return Ok(Resolution::Mailbox {
                    tenant,
                    mailbox: id,
                    primary: mb.address.clone(),
                });
            }
        }
        Some(Addressee::Group(id)) => {
            if let Some(address) = ix.group(id).and_then(|g| g.address.clone()) {
                return Ok(Resolution::Group {
                    tenant,
                    group: id,
                    address,
                });
            }
        }
        None => {}
    }
    if rcpt.is_role_address() {
        return Ok(Resolution::Postmaster {
            tenant: Some(tenant),
        });
    }
    Ok(match kind {
        DomainType::Authoritative => Resolution::UnknownInAuthoritativeDomain { tenant },
        DomainType::InternalRelay => Resolution::UnknownInRelayDomain { tenant },
    })
}

impl DirectoryPolicy {
    pub fn new(directory: Arc<Directory>) -> Self {
        DirectoryPolicy {
            directory,
            domain_authentication: None,
        }
    }

    /// A group that refuses an unauthenticated sender, but would accept the directory object
    /// its envelope address names, accepts the RCPT provisionally when that address's domain
    /// publishes DMARC (RFC 7489 §6.6.3, the tree walk): whether the message passes DMARC
    /// aligned is known only after the DATA, where the content stages check the group's
    /// restrictions again with that identity and refuse the recipient otherwise. A domain
    /// without DMARC can never pass, so its forged senders are still refused at RCPT. Only when
    /// those stages run with sender authentication (`resolver` its DNS).
    pub fn with_domain_authentication(mut self, resolver: Option<Arc<dyn Resolver>>) -> Self {
        self.domain_authentication = resolver;
        self
    }

    /// The RCPT decision for a sender who authenticated as `identity` (`None` for direct send,
    /// which is never authenticated). The SMTP session passes the identity of its client context
    /// here once SMTP AUTH and attributed connectors exist; the message is then queued with the
    /// same identity, so routing at delivery decides as RCPT did.
    pub fn check_recipient_as(
        &self,
        sender: Option<&Address>,
        identity: Option<MailboxId>,
        rcpt: &Address,
    ) -> RcptVerdict {
        match Self::decide(&*self.directory, false, sender, identity, None, None, rcpt) {
            Ok(Routed::Final(v)) => v,
            // Without the DATA's sender authentication, nothing can lift the refusal.
            Ok(Routed::IfDomainAuthenticates { refuse, .. }) => refuse,
            Err(e) => {
                tracing::error!("directory lookup for {rcpt} failed: {e}");
                RcptVerdict::Reject(directory_failed(&e))
            }
        }
    }

    fn decide<L: Lookup + ?Sized>(
        directory: &L,
        domain_authentication: bool,
        sender: Option<&Address>,
        identity: Option<MailboxId>,
        attributed: Option<&ConnectorAttribution>,
        submitter: Option<TenantId>,
        rcpt: &Address,
    ) -> Result<Routed, L::Error> {
        let accept = |address: Address, tenant_id, route| {
            RcptVerdict::Accept(AcceptedRecipient {
                address,
                tenant_id,
                route,
            })
        };
        Ok(Routed::Final(match resolve_in(directory, rcpt)? {
            Resolution::Mailbox {
                tenant,
                mailbox,
                primary,
            } => accept(
                Address::parse(&primary).unwrap_or_else(|_| rcpt.clone()),
                tenant,
                Route::Local(mailbox),
            ),
            Resolution::Group {
                tenant,
                group,
                address,
            } => {
                let ix = directory.index(tenant)?;
                let sender_text = sender.map(|s| s.to_string());
                // Mail attributed to the group's tenant by its on-premises connector: the
                // connector vouches for the tenant's domains, so the MAIL FROM address is an
                // identity at the domain level, as a DMARC-aligned pass is.
                let connector_vouched = attributed
                    .filter(|a| a.tenant == tenant)
                    .and_then(|a| a.vouched_sender.as_deref());
                let who = Sender {
                    address: sender_text.as_deref(),
                    identity,
                    domain_authenticated: connector_vouched,
                };
                // What the sender would be if its domain authenticated the envelope address.
                let vouched = Sender {
                    domain_authenticated: sender_text.as_deref(),
                    ..who
                };
                let accepted = || {
                    accept(
                        Address::parse(&address).unwrap_or_else(|_| rcpt.clone()),
                        tenant,
                        Route::Group(group),
                    )
                };
                match ix.group(group).map(|g| (g, check_sender(&ix, g, who))) {
                    Some((_, Ok(()))) => accepted(),
                    Some((g, Err(refusal)))
                        if domain_authentication
                            && identity.is_none()
                            && check_sender(&ix, g, vouched).is_ok() =>
                    {
                        return Ok(Routed::IfDomainAuthenticates {
                            accept: accepted(),
                            refuse: RcptVerdict::Reject(refusal),
                            domain: sender.map(|s| s.domain().to_string()).unwrap_or_default(),
                        });
                    }
                    Some((_, Err(refusal))) => RcptVerdict::Reject(refusal),
                    None => RcptVerdict::Reject(Refusal::new(
                        reply::RECIPIENT_REJECTED,
                        Reason::new(
                            Stage::Recipient,
                            format!("The group {address} is not in the directory any more"),
                        ),
                    )),
                }
            }
            Resolution::UnknownInRelayDomain { tenant } => {
                accept(rcpt.clone(), tenant, Route::Relay)
            }
            Resolution::UnknownInAuthoritativeDomain { .. } => RcptVerdict::Reject(Refusal::new(
                reply::RECIPIENT_REJECTED,
                Reason::new(
                    Stage::Recipient,
                    format!(
                        "No recipient answers to {rcpt}, and {} is an authoritative domain (directory-based edge blocking)",
                        rcpt.domain()
                    ),
                )
                .rule(format!("accepted domain {}", rcpt.domain())),
            )),
            Resolution::Postmaster { tenant } => {
                accept(rcpt.clone(), tenant.unwrap_or(NO_TENANT), Route::Postmaster)
            }
            Resolution::NotAccepted => {
                if let Some(tenant) = submitter {
                    // An authenticated submission (SMTP AUTH) goes to any domain, queued for
                    // outbound delivery under the sender's tenant (exchange-online-behaviour.md
                    // §9.3: "internal and external" recipients).
                    return Ok(Routed::Final(accept(rcpt.clone(), tenant, Route::Remote)));
                }
                if let Some(a) = attributed
                    && a.vouched_sender.is_some()
                {
                    // Relay for the tenant whose server the client is; queued for outbound
                    // delivery under that tenant (its trace, its limits).
                    return Ok(Routed::Final(accept(rcpt.clone(), a.tenant, Route::Remote)));
                }
                // The sender claims a tenant's domain: relay needs that tenant's on-premises
                // connector to match the client (Exchange Online's 5.7.64).
                let owner = match sender {
                    Some(s) => directory
                        .domain_entry(s.domain())?
                        .filter(|e| e.status == DomainStatus::Verified)
                        .map(|e| e.tenant),
                    None => None,
                };
                if let (Some(owner), Some(s)) = (owner, sender) {
                    let text = match attributed {
                        Some(a) => format!(
                            "Relay to {} refused: the client is attributed to tenant {} by the \
                             on-premises inbound connector {:?}, but the sender domain {} is an \
                             accepted domain of tenant {owner}, not of that tenant",
                            rcpt.domain(),
                            a.tenant,
                            a.connector,
                            s.domain()
                        ),
                        None => format!(
                            "Relay to {} refused: the sender domain {} is an accepted domain of \
                             tenant {owner}, but no enabled on-premises inbound connector of that \
                             tenant matches the client's IP",
                            rcpt.domain(),
                            s.domain()
                        ),
                    };
                    return Ok(Routed::Final(RcptVerdict::Reject(Refusal::new(
                        reply::TENANT_ATTRIBUTION_RELAY_DENIED,
                        Reason::new(Stage::Connector, text).rule("inbound connectors"),
                    ))));
                }
                // Only for the log: a pending domain's mail is refused as any other's.
                let pending = directory
                    .domain_entry(rcpt.domain())?
                    .is_some_and(|e| e.status == DomainStatus::Pending);
                let text = if pending {
                    format!(
                        "{} is an accepted domain pending verification (its DNS TXT record \
                         hato-verification=... has not been seen yet): its mail is refused as \
                         for a domain no tenant accepts",
                        rcpt.domain()
                    )
                } else {
                    format!(
                        "{} is not an accepted domain of any tenant, and direct send never relays",
                        rcpt.domain()
                    )
                };
                RcptVerdict::Reject(Refusal::new(
                    reply::UNABLE_TO_RELAY,
                    Reason::new(Stage::Recipient, text),
                ))
            }
        }))
    }
}

/// The refusal when the directory cannot be read: the client retries.
fn directory_failed(error: &dyn std::fmt::Display) -> Refusal {
    Refusal::new(
        reply::DIRECTORY_FAILED,
        Reason::new(
            Stage::Recipient,
            format!("The directory lookup failed: {error}"),
        ),
    )
}

/// Where the platform's postmaster mail goes now: the mailbox `configured` (`smtp.postmaster`)
/// names, or why there is none.
pub fn platform_postmaster(
    directory: &Directory,
    configured: Option<&Address>,
) -> Result<Result<MailboxId, Reason>, StoreError> {
    let waiting = |text: String| Reason::new(Stage::Delivery, text).rule("smtp.postmaster");
    let Some(address) = configured else {
        return Ok(Err(waiting(
            "No platform postmaster mailbox is configured (smtp.postmaster is empty); the message \
             stays queued and is delivered once one is"
                .into(),
        )));
    };
    Ok(match resolve(directory, address)? {
        Resolution::Mailbox { mailbox, .. } => Ok(mailbox),
        _ => Err(waiting(format!(
            "No platform postmaster mailbox is configured (smtp.postmaster names {address}, which \
             is no mailbox); the message stays queued and is delivered once there is one"
        ))),
    })
}

impl SmtpPolicy for DirectoryPolicy {
    /// Decided inline when the directory's cache knows everything the decision reads (the
    /// usual case: the recipient's domain and the tenant's index under the store's current
    /// generation); otherwise the directory is read (and a tenant's index perhaps rebuilt) on
    /// the blocking pool, never on the async workers that run the sessions.
    fn rcpt(
        &self,
        client: &ClientContext,
        sender: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        let resolver = self.domain_authentication.clone();
        let domain_authentication = resolver.is_some();
        // Identity only from authentication (never from MAIL FROM): a mailbox's user.
        let identity = client.authenticated_mailbox();
        // Set by the edge at MAIL FROM (`EdgePolicy` with inbound connectors).
        let attributed = client.attribution();
        // A mailbox's user authenticated with SMTP AUTH (the submission listener): its tenant
        // relays.
        let submitter = client
            .identity
            .as_ref()
            .filter(|i| i.method == hato_core::client::AuthMethod::SmtpAuth)
            .map(|i| i.tenant);
        if let Ok(routed) = Self::decide(
            &CachedOnly(&self.directory),
            domain_authentication,
            sender,
            identity,
            attributed.as_ref(),
            submitter,
            rcpt,
        ) {
            return match routed {
                Routed::Final(verdict) => Decision::Ready(verdict),
                waiting => Decision::later(settle(waiting, resolver)),
            };
        }
        let directory = self.directory.clone();
        let sender = sender.cloned();
        let rcpt = rcpt.clone();
        Decision::later(async move {
            let lookup = tokio::task::spawn_blocking(move || {
                let verdict = Self::decide(
                    &*directory,
                    domain_authentication,
                    sender.as_ref(),
                    identity,
                    attributed.as_ref(),
                    submitter,
                    &rcpt,
                );
                (rcpt, verdict)
            })
            .await;
            match lookup {
                Ok((_, Ok(routed))) => settle(routed, resolver).await,
                Ok((rcpt, Err(e))) => {
                    tracing::error!("directory lookup for {rcpt} failed: {e}");
                    RcptVerdict::Reject(directory_failed(&e))
                }
                Err(e) => {
                    tracing::error!("directory lookup stopped: {e}");
                    RcptVerdict::Reject(directory_failed(&e))
                }
            }
        })
    }
}

/// The verdict of a decision, once whether the sender's domain publishes DMARC is known when
/// it depends on that.
async fn settle(routed: Routed, resolver: Option<Arc<dyn Resolver>>) -> RcptVerdict {
    match routed {
        Routed::Final(v) => v,
        Routed::IfDomainAuthenticates {
            accept,
            refuse,
            domain,
        } => match resolver {
            Some(resolver) => {
                match hato_protection::spam::auth::dmarc::publishes_policy(&*resolver, &domain)
                    .await
                {
                    Ok(true) => accept,
                    Ok(false) => refuse,
                    Err(e) => {
                        // Cannot tell: the refusal stands, as without DMARC.
                        tracing::warn!(
                            "DMARC record of {domain} not read ({e}); a group's restriction refuses as for an unauthenticated sender"
                        );
                        refuse
                    }
                }
            }
            None => refuse,
        },
    }
}

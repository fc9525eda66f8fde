//! The recipient decision at RCPT time, over the directory.
//!
//! - The domain is not an accepted domain of any tenant: direct send never relays →
//!   `550 5.7.1 Unable to relay`.
//! - A mailbox answers to the address (primary or proxy address): accepted for local delivery.
//! - Unknown in an authoritative domain (directory-based edge blocking) →
//!   `550 5.4.1 Recipient address rejected: Access denied`.
//! - Unknown in an internal-relay domain: accepted, to be relayed to the organisation's server.

use hato_core::Address;
use hato_core::directory::{DomainType, Route};
use hato_core::reply::{self, Reply};
use hato_smtp::{AcceptedRecipient, RcptVerdict, RecipientPolicy};
use hato_store::Store;
use std::sync::Arc;

pub struct DirectoryPolicy {
    store: Arc<dyn Store>,
}

/// Where a recipient goes now, according to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Mailbox { tenant: i64, mailbox: i64 },
    UnknownInRelayDomain { tenant: i64 },
    UnknownInAuthoritativeDomain { tenant: i64 },
    NotAccepted,
}

pub fn resolve(store: &dyn Store, rcpt: &Address) -> Result<Resolution, hato_store::StoreError> {
    let Some((tenant, kind)) = store.domain(rcpt.domain())? else {
        return Ok(Resolution::NotAccepted);
    };
    if let Some(mb) = store.mailbox_by_address(&rcpt.to_string())? {
        // A mailbox belongs to the tenant of its domain (the store checks this on creation).
        return Ok(Resolution::Mailbox {
            tenant: mb.tenant_id,
            mailbox: mb.id,
        });
    }
    Ok(match kind {
        DomainType::Authoritative => Resolution::UnknownInAuthoritativeDomain { tenant },
        DomainType::InternalRelay => Resolution::UnknownInRelayDomain { tenant },
    })
}

impl DirectoryPolicy {
    pub fn new(store: Arc<dyn Store>) -> Self {
        DirectoryPolicy { store }
    }
}

impl RecipientPolicy for DirectoryPolicy {
    fn check_recipient(&self, _sender: Option<&Address>, rcpt: &Address) -> RcptVerdict {
        let accept = |tenant_id, route| {
            RcptVerdict::Accept(AcceptedRecipient {
                address: rcpt.clone(),
                tenant_id,
                route,
            })
        };
        match resolve(self.store.as_ref(), rcpt) {
            Ok(Resolution::Mailbox { tenant, mailbox }) => accept(tenant, Route::Local(mailbox)),
            Ok(Resolution::UnknownInRelayDomain { tenant }) => accept(tenant, Route::Relay),
            Ok(Resolution::UnknownInAuthoritativeDomain { .. }) => {
                RcptVerdict::Reject(reply::RECIPIENT_REJECTED)
            }
            Ok(Resolution::NotAccepted) => RcptVerdict::Reject(reply::UNABLE_TO_RELAY),
            Err(e) => {
                tracing::error!("directory lookup for {rcpt} failed: {e}");
                RcptVerdict::Reject(Reply::new(
                    451,
                    "4.3.0",
                    "Temporary directory failure; try again later",
                ))
            }
        }
    }
}

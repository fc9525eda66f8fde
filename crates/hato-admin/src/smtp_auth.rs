//! SMTP AUTH's credential check (the submission listener, `hato_transport::submission`): a
//! mailbox address and its password, as the API's login checks them (`password.rs`, argon2),
//! within limits of its own ([`LoginLimiter`] with the `[submission] auth_*` settings).
//!
//! - While the address or the client's IP is locked (too many failures), the attempt is refused
//!   with `454 4.7.0` without checking the password, so guessing costs the guesser and not
//!   the server's CPU; the right password is refused too.
//! - An unknown address, or a mailbox without a password, costs the same argon2 work as a wrong
//!   password and gets the same `535 5.7.3`, so neither the reply nor the timing tells which
//!   addresses exist.
//! - The hash runs on tokio's blocking pool, at most `auth_max_concurrent_hashes` at once.
//! - The right password for a mailbox whose SMTP AUTH is off
//!   (`--smtp-client-authentication-disabled`) gets Exchange's `535 5.7.139`; only after the
//!   password is right, so the setting is not told to a guesser.
//! - The password is never logged.

use crate::login_limit::{LoginLimiter, address_key};
use hato_core::client::{AuthMethod, AuthenticatedIdentity, Principal};
use hato_core::reply::{self, Reply};
use hato_core::{Address, ClientContext, Reason, Refusal, Stage};
use hato_store::Store;
use hato_transport::submission::{AuthVerdict, Authenticator, Credentials};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub struct PasswordAuthenticator {
    store: Arc<dyn Store>,
    limiter: Arc<LoginLimiter>,
    /// IPv6 clients are counted per prefix of this many bits (as the SMTP listener's caps).
    ipv6_prefix_length: u8,
}

impl PasswordAuthenticator {
    pub fn new(store: Arc<dyn Store>, limiter: Arc<LoginLimiter>, ipv6_prefix_length: u8) -> Self {
        PasswordAuthenticator {
            store,
            limiter,
            ipv6_prefix_length,
        }
    }
}

fn refuse(reply: Reply, text: impl Into<String>) -> AuthVerdict {
    AuthVerdict::Reject(Refusal::new(
        reply,
        Reason::new(Stage::Session, text.into()).rule("SMTP AUTH"),
    ))
}

/// What the store says about the account named: its mailbox's id, tenant and primary address,
/// its password hash, and whether its SMTP AUTH is off.
struct Account {
    mailbox: i64,
    tenant: i64,
    address: String,
    hash: Option<String>,
    disabled: bool,
}

fn account(store: &dyn Store, username: &str) -> Result<Option<Account>, hato_store::StoreError> {
    let Ok(address) = Address::parse(username) else {
        return Ok(None);
    };
    let Some(mb) = store.mailbox_by_address(&address.to_string())? else {
        return Ok(None);
    };
    Ok(Some(Account {
        mailbox: mb.id,
        tenant: mb.tenant_id,
        hash: store.password_hash(mb.id)?,
        disabled: store.smtp_client_authentication_disabled(mb.id)?,
        address: mb.address,
    }))
}

impl Authenticator for PasswordAuthenticator {
    fn authenticate(
        &self,
        client: &ClientContext,
        credentials: Credentials,
    ) -> Pin<Box<dyn Future<Output = AuthVerdict> + Send>> {
        let key = address_key(&credentials.username);
        let ip = hato_core::client_key(client.ip(), self.ipv6_prefix_length);
        if let Err(locked) = self.limiter.check(&key, ip) {
            let verdict = refuse(
                reply::AUTH_LOCKED,
                format!(
                    "Too many failed attempts for {key} or from {ip}: locked for {} more \
                     seconds, the password was not checked",
                    locked.retry_after_secs
                ),
            );
            return Box::pin(async move { verdict });
        }
        let store = self.store.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let username = credentials.username.clone();
            let found = tokio::task::spawn_blocking(move || account(&*store, &username)).await;
            let found = match found {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::error!("SMTP AUTH: the account lookup failed: {e}");
                    return refuse(reply::AUTH_TEMPORARY_FAILURE, "The account lookup failed");
                }
                Err(e) => {
                    tracing::error!("SMTP AUTH: the account lookup failed: {e}");
                    return refuse(reply::AUTH_TEMPORARY_FAILURE, "The account lookup failed");
                }
            };
            let stored = found.as_ref().and_then(|a| a.hash.clone());
            let known = stored.is_some();
            let Some(hash) = stored.or_else(|| crate::password::dummy_hash().map(str::to_owned))
            else {
                return refuse(
                    reply::AUTH_TEMPORARY_FAILURE,
                    "Could not prepare the password check",
                );
            };
            let Some(permit) = limiter.hash_permit().await else {
                return refuse(
                    reply::AUTH_TEMPORARY_FAILURE,
                    "Every password-hashing slot stayed busy",
                );
            };
            let password = credentials.password;
            let verified =
                tokio::task::spawn_blocking(move || crate::password::verify(&password, &hash))
                    .await
                    .unwrap_or(false);
            drop(permit);
            let account = match found {
                Some(a) if verified && known => a,
                _ => {
                    limiter.failed(&key, ip);
                    return refuse(
                        reply::AUTH_FAILED,
                        format!(
                            "AUTH {} for {key}: unknown address, no password, or a wrong one",
                            credentials.mechanism
                        ),
                    );
                }
            };
            limiter.succeeded(&key);
            if account.disabled {
                return refuse(
                    reply::AUTH_DISABLED_FOR_MAILBOX,
                    format!(
                        "SMTP AUTH is off for {} (smtp_client_authentication_disabled)",
                        account.address
                    ),
                );
            }
            let Ok(address) = Address::parse(&account.address) else {
                return refuse(
                    reply::AUTH_TEMPORARY_FAILURE,
                    format!("The stored address {:?} does not parse", account.address),
                );
            };
            AuthVerdict::Accept(AuthenticatedIdentity {
                tenant: account.tenant,
                principal: Principal::Mailbox(account.mailbox),
                address,
                method: AuthMethod::SmtpAuth,
            })
        })
    }
}

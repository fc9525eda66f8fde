//! End-user quarantine notifications (Exchange's quarantine notifications, formerly end-user
//! spam notifications; exchange-online-behaviour.md §6.4): one digest mail per recipient, at the
//! frequency of the recipient's anti-spam policy (`EndUserSpamNotificationFrequency`, days), in
//! its language (`EndUserSpamNotificationLanguage`), listing the items held for the recipient
//! since the last digest under a quarantine policy with `ESNEnabled`, whatever their kind (the
//! store's query: an item under `AdminOnlyAccessPolicy` or `DefaultFullAccessPolicy` notifies
//! nobody), each with a link (a signed, expiring token for that one item and that one
//! recipient: [`token`]; the page is `hato-admin`'s `/quarantine/release`) that releases it
//! when the policy lets the recipient release it, and otherwise requests its release
//! (malware and high confidence phish, whose release Exchange turns into request release), or
//! none when the recipient may do neither ([`DigestAction`]).
//!
//! - [`NotificationSettingsSource`]: where a recipient's settings come from (the anti-spam
//!   policy store; [`DigestSettings::from_policy`] reads a `SpamFilterPolicy`).
//! - [`Digester`]: the pass (`run_once`, blocking) and the task (`run`) that `hato serve` starts.
//! - [`content`]: the mail itself; [`token`]: the release token.
//!
//! A digest is queued like every message hato writes (through the store to the recipient's
//! mailbox, so the delivery agent files it and trace shows it); then the store records when it
//! went out and the newest quarantine time it covered (`record_digest`), so a restart sends
//! nothing twice. A crash between the two queues the same digest again under the same derived
//! trace id, which the store refuses as queued already: it is then only recorded.

pub mod content;
pub mod token;

pub use content::{
    DigestAction, DigestEntry, DigestLanguage, clean, date_text, digest_content, escape_html,
    kind_name,
};
pub use token::{ReleaseClaim, TokenError};

use crate::delivery::{derived_trace_id, generated};
use crate::routing::{Resolution, resolve};
use hato_core::directory::{Route, TenantId};
use hato_core::{Address, Clock, Timestamp};
use hato_directory::Directory;
use hato_protection::spam::SpamFilterPolicy;
use hato_store::{
    DigestCandidate, NewRecipient, QuarantinePermission, QuarantinePolicy, Store, StoreError,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// At most this many held items are listed in one digest ("…and M more" after them): a
/// recipient with a huge quarantine still gets one mail of bounded size.
pub const DEFAULT_MAX_ITEMS: usize = 50;
/// Recipients read per page while looking for those owed a digest.
const CANDIDATE_PAGE: usize = 500;
const DAY_SECS: i64 = 86_400;

/// A recipient's notification settings, from its anti-spam policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestSettings {
    /// `EndUserSpamNotificationFrequency`: days between two digests (1-15).
    pub frequency_days: u16,
    pub language: DigestLanguage,
}

impl DigestSettings {
    /// The settings of the policy that applies to a recipient: `None` when its end-user spam
    /// notifications are off (`EnableEndUserSpamNotifications`, off by default).
    /// `tenant_language` is the organization's language, which `Default` means.
    pub fn from_policy(policy: &SpamFilterPolicy, tenant_language: Option<&str>) -> Option<Self> {
        policy
            .enable_end_user_spam_notifications
            .then(|| DigestSettings {
                frequency_days: policy.end_user_spam_notification_frequency.max(1),
                language: DigestLanguage::resolve(
                    &policy.end_user_spam_notification_language,
                    tenant_language,
                ),
            })
    }
}

/// Where the digest reads a recipient's settings: the anti-spam policy that applies to the
/// recipient (the first matching custom policy by priority, else the default; never merged).
/// Called from blocking code (the pass runs on tokio's blocking pool), so it may read the store.
pub trait NotificationSettingsSource: Send + Sync {
    /// `None`: no digest for this recipient (notifications off).
    fn settings(
        &self,
        tenant: TenantId,
        recipient: &Address,
    ) -> Result<Option<DigestSettings>, StoreError>;
}

/// The same settings for every recipient (tests; a server without per-recipient policies).
#[derive(Clone, Copy, Debug)]
pub struct FixedSettings(pub Option<DigestSettings>);

impl NotificationSettingsSource for FixedSettings {
    fn settings(&self, _: TenantId, _: &Address) -> Result<Option<DigestSettings>, StoreError> {
        Ok(self.0)
    }
}

/// What the digest needs besides the store.
#[derive(Clone, Debug)]
pub struct DigestOptions {
    pub hostname: String,
    /// The release page's public address (`…/quarantine/release`); links are `<it>?t=TOKEN`.
    pub release_url: String,
    /// Items listed per digest at most.
    pub max_items: usize,
    /// How often the task looks for recipients owed a digest.
    pub interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("writing a digest: {0}")]
    Build(#[from] std::io::Error),
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestPass {
    /// Recipients with new held items.
    pub considered: usize,
    /// Digests queued.
    pub sent: usize,
    /// Recipients whose frequency has not elapsed since their last digest.
    pub not_due: usize,
    /// Recipients whose notifications are off, or who are no mailbox any more.
    pub skipped: usize,
}

/// The digest: finds recipients owed one and queues it.
pub struct Digester {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    settings: Arc<dyn NotificationSettingsSource>,
    clock: Arc<dyn Clock>,
    options: DigestOptions,
    /// Wakes the delivery agent when a digest is queued.
    queued: Option<Arc<Notify>>,
    secret: OnceLock<Vec<u8>>,
}

impl Digester {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        settings: Arc<dyn NotificationSettingsSource>,
        clock: Arc<dyn Clock>,
        options: DigestOptions,
    ) -> Self {
        Digester {
            store,
            directory,
            settings,
            clock,
            options,
            queued: None,
            secret: OnceLock::new(),
        }
    }

    /// Wakes the delivery agent after queueing, instead of leaving it to its next look.
    pub fn with_queued(mut self, queued: Arc<Notify>) -> Self {
        self.queued = Some(queued);
        self
    }

    /// The server's release-link secret: made (32 random bytes from the OS) and stored the
    /// first time, read back after.
    fn secret(&self) -> Result<&[u8], DigestError> {
        if let Some(s) = self.secret.get() {
            return Ok(s);
        }
        let s = self
            .store
            .release_link_secret(hato_core::id::random_bytes())
            .wait()?;
        Ok(self.secret.get_or_init(|| s))
    }

    /// The task `hato serve` runs: a pass every `interval` (the first at once), until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.options.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.run_once()).await {
                Ok(Ok(pass)) if pass.sent > 0 => tracing::info!(
                    "quarantine notifications: {} digest(s) queued ({} recipient(s) not due, {} skipped)",
                    pass.sent,
                    pass.not_due,
                    pass.skipped
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("quarantine notifications failed: {e}"),
                Err(e) => tracing::error!("quarantine notifications did not finish: {e}"),
            }
        }
    }

    /// One pass at the clock's time: every recipient with new held items whose notifications
    /// are on and whose frequency has elapsed gets one digest. Blocking (store reads and
    /// writes, directory lookups): call it from blocking code.
    pub fn run_once(&self) -> Result<DigestPass, DigestError> {
        let now = self.clock.now();
        let mut pass = DigestPass::default();
        let mut after: Option<(TenantId, String)> = None;
        loop {
            let page = self
                .store
                .digest_candidates(now, after.take(), CANDIDATE_PAGE)?;
            let full = page.len() == CANDIDATE_PAGE;
            after = page.last().map(|c| (c.tenant_id, c.recipient.clone()));
            for c in page {
                pass.considered += 1;
                match self.one(&c, now)? {
                    Done::Sent => pass.sent += 1,
                    Done::NotDue => pass.not_due += 1,
                    Done::Skipped => pass.skipped += 1,
                }
            }
            if !full {
                break;
            }
        }
        if pass.sent > 0
            && let Some(q) = &self.queued
        {
            q.notify_one();
        }
        Ok(pass)
    }

    fn one(&self, c: &DigestCandidate, now: Timestamp) -> Result<Done, DigestError> {
        let Ok(address) = Address::parse(&c.recipient) else {
            return Ok(Done::Skipped);
        };
        let Some(settings) = self.settings.settings(c.tenant_id, &address)? else {
            return Ok(Done::Skipped);
        };
        if let Some(last) = c.last_sent
            && now < last.plus_seconds(i64::from(settings.frequency_days) * DAY_SECS)
        {
            return Ok(Done::NotDue);
        }
        // Only to a mailbox of the same tenant (Exchange notifies the recipient's mailbox):
        // a digest never leaves for an outside or relay address.
        let mailbox = match resolve(&self.directory, &address)? {
            Resolution::Mailbox {
                tenant, mailbox, ..
            } if tenant == c.tenant_id => mailbox,
            _ => return Ok(Done::Skipped),
        };
        let found = self.store.digest_items(
            c.tenant_id,
            &c.recipient,
            c.covered_until,
            c.newest,
            now,
            self.options.max_items,
        )?;
        if found.items.is_empty() {
            return Ok(Done::Skipped);
        }
        let secret = self.secret()?;
        let base = self.options.release_url.trim_end_matches('/');
        // What the recipient may do with each item decides its link (the release page checks
        // the same again when the link is used).
        let mut policies = QuarantinePolicy::built_ins();
        policies.extend(self.store.quarantine_policies(c.tenant_id)?);
        let entries: Vec<DigestEntry> = found
            .items
            .iter()
            .map(|it| {
                let token = token::sign(
                    secret,
                    &ReleaseClaim {
                        item: it.id,
                        recipient: it.recipient.clone(),
                        // The item's own expiry: a link outlives neither the item nor it.
                        expires: it.expires,
                    },
                );
                let perms = it.permissions_in(&policies);
                // Release where the policy lets the recipient release; for malware and high
                // confidence phish (whose release becomes request release) and policies that
                // grant only that, the release request; else no link (an admin's to release).
                let action = if perms.has(QuarantinePermission::Release) {
                    DigestAction::Release
                } else if perms.has(QuarantinePermission::RequestRelease) {
                    DigestAction::RequestRelease
                } else {
                    DigestAction::AskAdmin
                };
                DigestEntry {
                    sender: it.sender.clone(),
                    subject: it.subject.clone(),
                    received: it.received,
                    expires: it.expires,
                    kind: it.kind,
                    action,
                    // The page speaks the digest's language; English needs no parameter.
                    link: match settings.language {
                        DigestLanguage::English => format!("{base}?t={token}"),
                        other => format!("{base}?t={token}&l={}", other.tag()),
                    },
                }
            })
            .collect();
        // Derived from what it covers: the same digest, built again after a crash, has the same
        // id and is refused as queued already.
        let trace_id = derived_trace_id(
            c.newest,
            &format!(
                "quarantine digest for {} of tenant {} up to {}",
                c.recipient, c.tenant_id, c.newest.0
            ),
        );
        let bytes = digest_content(&content::Digest {
            hostname: &self.options.hostname,
            to: &c.recipient,
            language: settings.language,
            entries: &entries,
            total: found.total,
            now,
            trace_id: &trace_id,
        })?;
        let message = generated(
            &self.options.hostname,
            trace_id,
            now,
            bytes,
            vec![NewRecipient {
                address: c.recipient.clone(),
                tenant_id: c.tenant_id,
                route: Route::Local(mailbox),
                extra_events: vec![],
                receive_reason: None,
                quarantine: None,
                finished: None,
                stamp: String::new(),
                junk: false,
                connector: None,
                dsn: Default::default(),
            }],
            format!(
                "Quarantine notification generated by {} ({} held message(s))",
                self.options.hostname, found.total
            ),
            vec![],
        );
        match self.store.enqueue(message).wait() {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store
            .record_digest(c.tenant_id, &c.recipient, now, c.newest)
            .wait()?;
        Ok(Done::Sent)
    }
}

enum Done {
    Sent,
    NotDue,
    Skipped,
}

//! Outbound spam's limits and restricted senders around the content stages (issue 10 item 8;
//! `exchange-online-behaviour.md` §7.1, §7.3): what Exchange Online's outbound spam policy
//! does with a sender that sends to too many recipients.
//!
//! - **Who is an outbound sender**: an authenticated mailbox (submission; counted under its
//!   primary address, whatever address it sends as) or a sender an on-premises inbound
//!   connector relays for (the MAIL FROM address the connector vouches for). Other mail is
//!   inbound and none of this applies.
//! - **MAIL FROM**: a restricted sender gets `550 5.1.8 Access denied, bad outbound sender`
//!   (the restriction in force at the injected clock's now: `BlockUserForToday` lifts at the
//!   next UTC day by itself). It still receives mail: nothing here looks at recipients.
//! - **End of data**, once the content stages accepted the message: its recipients are counted
//!   for the sender in the store (outside recipients, route `Remote`, as external; the others
//!   as internal), in fixed UTC windows — the hour for the hourly limits, the day for the daily
//!   one — persisted, so a restart does not reset a day's count. Over a limit of the tenant's
//!   policy (0 = the service default, 10,000):
//!   - `BlockUser` / `BlockUserForToday`: the message is refused with 550 5.1.8 (Exchange blocks
//!     mail over the limits rather than sending it through the high-risk pool, §7.2), the sender
//!     is restricted (until an admin's `hato restricted remove`, or the next UTC day) and the
//!     tenant's admins get an alert ("User restricted from sending email").
//!   - `Alert`: the message goes; each of its recipients' trace says it was over the limit, and
//!     the admins get one alert when the count crosses the limit ("Email sending limit
//!     exceeded"), not one per message after it.
//!
//!   The admins are the members of the tenant's global admin role groups that have mailboxes
//!   (Exchange's TenantAdmins), plus `NotifyOutboundSpamRecipients` when `NotifyOutboundSpam`
//!   is on. The alert's trace (its `Receive` event's reason) records what happened to the
//!   sender; the refused message itself is not kept (nothing is committed for it).
//!
//! Cost: one write (group-committed) per accepted message, only for outbound senders, and not
//! waited for once the sender's counts are known in memory (the sender's first message after a
//! start or a policy change waits for it). The restriction, the policy and the counts are read
//! once and kept while the store's policy generation stays ([`crate::cache`]; restricting or
//! releasing a sender and changing the policy move it): at most 65,536 senders' answers are
//! kept. A store without a generation (another process may write) is read and waited for on
//! every message.

use crate::cache::GenerationCache;
use crate::delivery::{OutboundSpamAlert, notification_recipient, outbound_spam_alert};
use hato_core::client::Principal;
use hato_core::directory::{Route, TenantId};
use hato_core::message::{Action, RecipientVerdict};
use hato_core::{Address, ClientContext, Clock, MessageContext, Reason, Refusal, Stage, reply};
use hato_directory::Directory;
use hato_protection::spam::outbound::{
    OutboundSpamPolicy, Tally, ThresholdAction, WindowedTally, next_utc_day, utc_windows,
};
use hato_smtp::{
    AuthVerdict, Credentials, DataVerdict, Decision, RcptVerdict, SmtpPolicy, Verdict,
};
use hato_store::{OutboundRecipients, RestrictedSender, Store, StoreError};
use std::sync::Arc;

/// The sender an outbound message is counted and restricted under: the tenant and the
/// canonical address. `None` for inbound mail.
pub fn outbound_sender(client: &ClientContext) -> Option<(TenantId, String)> {
    if let Some(identity) = &client.identity
        && matches!(identity.principal, Principal::Mailbox(_))
    {
        return Some((identity.tenant, identity.address.to_string()));
    }
    let attribution = client.attribution()?;
    let sender = attribution.vouched_sender?;
    Some((attribution.tenant, sender))
}

/// What the layer shares between sessions.
pub struct OutboundSenders {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
    hostname: String,
    /// Restrictions read at MAIL FROM, by tenant and sender (a restriction's end is checked
    /// against the clock at each use: `BlockUserForToday` lifts by itself).
    restricted: GenerationCache<(TenantId, String), Option<RestrictedSender>>,
    /// The tenants' policies, read at the end of each DATA.
    policies: GenerationCache<TenantId, OutboundSpamPolicy>,
    /// Each sender's counts as this process counted them (and queued them to the store) while
    /// the policy generation stays (releasing a restricted sender, which resets its counts,
    /// moves it).
    counts: GenerationCache<(TenantId, String), WindowedTally>,
}

/// Whether `a` counts more than `b`: a later window, or more in the same (counts only grow in
/// a window).
fn later(a: &WindowedTally, b: &WindowedTally) -> bool {
    (a.day_start, a.hour_start, a.tally.day) > (b.day_start, b.hour_start, b.tally.day)
}

/// How many senders' restrictions (or their absence) are kept; past it the cache starts again.
const RESTRICTED_CACHE: usize = 65_536;
/// How many tenants' policies are kept.
const POLICY_CACHE: usize = 4_096;

impl OutboundSenders {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        clock: Arc<dyn Clock>,
        hostname: String,
    ) -> Self {
        OutboundSenders {
            store,
            directory,
            clock,
            hostname,
            restricted: GenerationCache::new(RESTRICTED_CACHE),
            policies: GenerationCache::new(POLICY_CACHE),
            counts: GenerationCache::new(RESTRICTED_CACHE),
        }
    }

    /// The refusal of a restricted sender, if it is one now.
    async fn check(self: Arc<Self>, tenant: TenantId, sender: String) -> Option<Refusal> {
        let now = self.clock.now();
        let generation = self.store.content_policy_generation();
        let key = (tenant, sender);
        let found = match self.restricted.get(generation, &key) {
            Some(found) => found,
            None => {
                let store = self.store.clone();
                let who = key.1.clone();
                let read =
                    tokio::task::spawn_blocking(move || store.restricted_sender(tenant, &who, now))
                        .await;
                let found = match read {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => return Some(store_failed(&e)),
                    Err(e) => return Some(store_failed(&e)),
                };
                self.restricted.insert(generation, key, found.clone());
                found
            }
        };
        found
            .filter(|r| r.until.is_none_or(|until| until > now))
            .map(|r| restricted_refusal(&r))
    }

    /// Counts an accepted message's recipients for its sender and applies the policy: `Err`
    /// with the reply to the DATA when the message is refused; the policy otherwise.
    async fn count(
        self: Arc<Self>,
        tenant: TenantId,
        sender: String,
        message: &mut MessageContext,
    ) -> Result<OutboundSpamPolicy, Refusal> {
        let mut recipients = OutboundRecipients::default();
        for r in &message.envelope.recipients {
            if r.route == Route::Remote {
                recipients.external = recipients.external.saturating_add(1);
            } else {
                recipients.internal = recipients.internal.saturating_add(1);
            }
        }
        let generation = self.store.content_policy_generation();
        let policy = match self.policies.get(generation, &tenant) {
            Some(policy) => policy,
            None => {
                let store = self.store.clone();
                let policy =
                    tokio::task::spawn_blocking(move || store.outbound_spam_filter(tenant))
                        .await
                        .map_err(|e| store_failed(&e))?
                        .map_err(|e| store_failed(&e))?;
                self.policies.insert(generation, tenant, policy.clone());
                policy
            }
        };
        let now = self.clock.now();
        let key = (tenant, sender.clone());
        let (before, after) = match self.count_in_memory(generation, &key, recipients, now) {
            Some(counted) => counted,
            None => {
                let (before, after) = self
                    .store
                    .count_outbound_recipients(tenant, &sender, recipients, now)
                    .await
                    .map_err(|e| store_failed(&e))?;
                let (hour_start, day_start) = utc_windows(now);
                let known = WindowedTally {
                    hour_start,
                    day_start,
                    tally: after,
                };
                // Two first messages of a sender that raced: the later count has it all.
                self.counts.merge(generation, key, known, |kept, new| {
                    if later(&new, kept) {
                        *kept = new;
                    }
                });
                (before, after)
            }
        };
        let Some(exceeded) = policy.exceeded(before, after) else {
            return Ok(policy);
        };
        let action = policy.action_when_threshold_reached;
        let reason = exceeded.reason(&sender, action);
        if !action.blocks() {
            for r in &mut message.envelope.recipients {
                r.verdicts.push(RecipientVerdict {
                    action: Action::Deliver,
                    reason: reason.clone(),
                });
            }
            if exceeded.crossed {
                self.alert(tenant, &sender, &policy, reason, None, false);
            }
            return Ok(policy);
        }
        // BlockUserForToday: "until the next day" (§7.1), UTC; BlockUser: until unblocked.
        let until = match action {
            ThresholdAction::BlockUserForToday => Some(next_utc_day(now)),
            ThresholdAction::BlockUser | ThresholdAction::Alert => None,
        };
        let restricted = RestrictedSender {
            tenant_id: tenant,
            sender: sender.clone(),
            action: action.as_str().to_string(),
            reason: reason.text.clone(),
            blocked_at: now,
            until,
        };
        if let Err(e) = self.store.restrict_sender(restricted.clone()).await {
            // The message is refused all the same; the next one over the limit tries again.
            tracing::error!("could not restrict {sender}: {e}");
        } else {
            tracing::warn!("{}", reason.text);
        }
        self.alert(tenant, &sender, &policy, reason.clone(), until, true);
        Err(Refusal::new(reply::BAD_OUTBOUND_SENDER, reason))
    }

    /// Counts the message from the sender's counts kept in memory, when they are: the store's
    /// write of the same count is queued under the cache's lock (so the writes reach the
    /// writer in the order they were counted in) and not awaited. The writer commits in order
    /// and the message's own enqueue is queued after this, so no message is durable without
    /// its count; a write that fails, or a store that counted otherwise, drops the sender's
    /// kept counts and the next message reads them again.
    fn count_in_memory(
        self: &Arc<Self>,
        generation: Option<u64>,
        key: &(TenantId, String),
        recipients: OutboundRecipients,
        now: hato_core::Timestamp,
    ) -> Option<(Tally, Tally)> {
        let (before, after, written) = self.counts.update(generation, key, |known| {
            let (before, after) =
                WindowedTally::count(Some(*known), now, recipients.external, recipients.internal);
            *known = after;
            let written = self
                .store
                .count_outbound_recipients(key.0, &key.1, recipients, now);
            (before, after.tally, written)
        })?;
        let this = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            match written.await {
                Ok((_, stored)) if stored == after => {}
                Ok((_, stored)) => {
                    tracing::warn!(
                        "the outbound count of {} was {stored:?} in the store, {after:?} in memory; it is read again",
                        key.1
                    );
                    this.counts.remove(&key);
                }
                Err(e) => {
                    tracing::error!("could not count the outbound recipients of {}: {e}", key.1);
                    this.counts.remove(&key);
                }
            }
        });
        Some((before, after))
    }

    /// `BccSuspiciousOutboundMail`: a message the content stages judged outbound spam gets the
    /// policy's additional recipients, routed as a notice is (after the counting: they are
    /// the tenant's, not the sender's). A failed lookup leaves the copy out, with a warning.
    async fn bcc(
        &self,
        tenant: TenantId,
        policy: &OutboundSpamPolicy,
        message: &mut MessageContext,
    ) {
        if !message.high_risk
            || !policy.bcc_suspicious_outbound_mail
            || policy
                .bcc_suspicious_outbound_additional_recipients
                .is_empty()
        {
            return;
        }
        let directory = self.directory.clone();
        let list = policy.bcc_suspicious_outbound_additional_recipients.clone();
        let routed = tokio::task::spawn_blocking(move || {
            list.iter()
                .filter_map(|a| match notification_recipient(&directory, a, tenant) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!("BccSuspiciousOutboundMail to {a}: {e}");
                        None
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for r in routed {
            let Ok(address) = Address::parse(&r.address) else {
                continue;
            };
            let canonical = address.to_string();
            if message
                .envelope
                .recipients
                .iter()
                .any(|m| m.address.to_string() == canonical)
            {
                continue;
            }
            message
                .envelope
                .recipients
                .push(hato_core::message::Recipient {
                    address,
                    tenant_id: r.tenant_id,
                    route: r.route,
                    verdicts: vec![RecipientVerdict {
                        action: Action::Deliver,
                        reason: Reason::new(
                            Stage::Spam,
                            "A copy of suspicious outbound mail (BccSuspiciousOutboundMail)",
                        )
                        .rule("BccSuspiciousOutboundMail"),
                    }],
                    content: hato_core::message::RecipientContent::default(),
                    // A hidden copy for the organisation: its sender gets no report about it
                    // (no NDR, delay or success notice, RFC 3461 NOTIFY=NEVER).
                    dsn: hato_core::dsn::RecipientDsn {
                        notify: Some(hato_core::dsn::Notify::NEVER),
                        orcpt: None,
                    },
                });
        }
    }

    /// Queues the alert to the tenant's admins (and the policy's notification addresses) without
    /// holding up the reply.
    fn alert(
        self: &Arc<Self>,
        tenant: TenantId,
        sender: &str,
        policy: &OutboundSpamPolicy,
        reason: Reason,
        until: Option<hato_core::Timestamp>,
        restricted: bool,
    ) {
        let this = self.clone();
        let sender = sender.to_string();
        let extra = if policy.notify_outbound_spam {
            policy.notify_outbound_spam_recipients.clone()
        } else {
            Vec::new()
        };
        tokio::spawn(async move {
            let at = this.clock.now();
            let builder = this.clone();
            let built = tokio::task::spawn_blocking(move || {
                let index = builder.directory.index(tenant)?;
                let tenant_name = index.tenant_name().to_string();
                let mut to: Vec<String> = index.admins().iter().map(|m| m.address.clone()).collect();
                for a in extra {
                    if !to.iter().any(|t| t.eq_ignore_ascii_case(&a)) {
                        to.push(a);
                    }
                }
                let mut out = Vec::new();
                for address in to {
                    match notification_recipient(&builder.directory, &address, tenant) {
                        Ok(admin) => out.push(outbound_spam_alert(
                            &OutboundSpamAlert {
                                sender: &sender,
                                tenant: &tenant_name,
                                reason: &reason,
                                restricted,
                                until,
                            },
                            admin,
                            &builder.hostname,
                            at,
                        )),
                        Err(e) => tracing::warn!("outbound spam alert to {address}: {e}"),
                    }
                }
                if out.is_empty() {
                    tracing::warn!(
                        "no admin to alert about {sender} (tenant {tenant_name} has no global admin role group with a mailbox): {}",
                        reason.text
                    );
                }
                Ok::<_, StoreError>(out)
            })
            .await;
            let notices = match built {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::warn!("could not build an outbound spam alert: {e}");
                    return;
                }
                Err(e) => {
                    tracing::warn!("could not build an outbound spam alert: {e}");
                    return;
                }
            };
            for n in notices {
                match this.store.enqueue(n).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => tracing::warn!("could not queue an outbound spam alert: {e}"),
                }
            }
        });
    }
}

fn restricted_refusal(r: &RestrictedSender) -> Refusal {
    let until = match r.until {
        Some(t) => format!("until {}", t.to_rfc5322()),
        None => "until an admin unblocks it".to_string(),
    };
    Refusal::new(
        reply::BAD_OUTBOUND_SENDER,
        Reason::new(
            Stage::Spam,
            format!(
                "{} is a restricted sender ({}, {until}): {}",
                r.sender, r.action, r.reason
            ),
        )
        .rule("RestrictedSender")
        .figure("sender", r.sender.clone()),
    )
}

fn store_failed(e: &dyn std::fmt::Display) -> Refusal {
    tracing::error!("outbound spam limits: {e}");
    Refusal::new(
        reply::STORE_FAILED,
        Reason::new(
            Stage::Spam,
            format!("The outbound spam limits could not be read or counted: {e}"),
        ),
    )
}

async fn decided<T>(d: Decision<T>) -> T {
    match d {
        Decision::Ready(v) => v,
        Decision::Pending(f) => f.await,
    }
}

/// The layer around `inner` (the content stages around the directory): inside the edge or the
/// submission policy, so the client's identity or attribution is known when it decides.
pub struct OutboundSenderPolicy<P> {
    inner: P,
    senders: Option<Arc<OutboundSenders>>,
}

impl<P> OutboundSenderPolicy<P> {
    /// `senders` `None`: no limits and no restrictions (the layer passes everything on).
    pub fn new(inner: P, senders: Option<Arc<OutboundSenders>>) -> Self {
        OutboundSenderPolicy { inner, senders }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: SmtpPolicy + 'static> SmtpPolicy for OutboundSenderPolicy<P> {
    fn connect(&self, client: &ClientContext) -> Decision<Verdict> {
        self.inner.connect(client)
    }

    fn ehlo(&self, client: &ClientContext, host: &str) -> Decision<Verdict> {
        self.inner.ehlo(client, host)
    }

    fn auth(&self, client: &ClientContext, credentials: Credentials) -> Decision<AuthVerdict> {
        self.inner.auth(client, credentials)
    }

    fn mail(&self, client: &ClientContext, sender: Option<&Address>) -> Decision<Verdict> {
        let inner = self.inner.mail(client, sender);
        let Some(senders) = self.senders.clone() else {
            return inner;
        };
        let client = client.clone();
        // The edge attributes the client at MAIL FROM before it awaits this: read it then.
        Decision::later(async move {
            if let Some((tenant, sender)) = outbound_sender(&client)
                && let Some(refusal) = senders.check(tenant, sender).await
            {
                return Verdict::Reject(refusal);
            }
            decided(inner).await
        })
    }

    fn rcpt(
        &self,
        client: &ClientContext,
        sender: Option<&Address>,
        recipient: &Address,
    ) -> Decision<RcptVerdict> {
        self.inner.rcpt(client, sender, recipient)
    }

    fn cut(&self, client: &ClientContext, refusal: &Refusal) {
        self.inner.cut(client, refusal)
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        let inner = self.inner.end_of_data(message);
        let Some(senders) = self.senders.clone() else {
            return inner;
        };
        Decision::later(async move {
            let mut verdict = decided(inner).await;
            if verdict.verdict != Verdict::Accept {
                return verdict;
            }
            let Some((tenant, sender)) = outbound_sender(&verdict.message.client) else {
                return verdict;
            };
            match senders
                .clone()
                .count(tenant, sender, &mut verdict.message)
                .await
            {
                Ok(policy) => senders.bcc(tenant, &policy, &mut verdict.message).await,
                Err(refusal) => verdict.verdict = Verdict::Reject(refusal),
            }
            verdict
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::client::{Attribution, AuthMethod, AuthenticatedIdentity, ConnectorAttribution};

    fn client() -> ClientContext {
        ClientContext::new(
            "192.0.2.7:40000".parse().unwrap(),
            "192.0.2.1:25".parse().unwrap(),
        )
    }

    #[test]
    fn outbound_senders_are_authenticated_mailboxes_and_relayed_tenant_senders() {
        // Direct send from the internet: inbound, none of this applies.
        assert_eq!(outbound_sender(&client()), None);
        let mut c = client();
        c.identity = Some(AuthenticatedIdentity {
            tenant: 3,
            principal: Principal::Mailbox(9),
            address: Address::parse("Alice@Contoso.test").unwrap(),
            method: AuthMethod::SmtpAuth,
        });
        assert_eq!(outbound_sender(&c), Some((3, "alice@contoso.test".into())));
        // Relay: the sender the on-premises connector vouches for (its tenant's domain).
        let c = client();
        c.session_state.with(|a: &mut Attribution| {
            a.0 = Some(ConnectorAttribution {
                tenant: 4,
                connector_id: 1,
                connector: "Relay".into(),
                vouched_sender: Some("app@fabrikam.test".into()),
                keep_internal_headers: false,
            })
        });
        assert_eq!(outbound_sender(&c), Some((4, "app@fabrikam.test".into())));
        // Attributed, but another domain's sender: not vouched for, not counted.
        let c = client();
        c.session_state.with(|a: &mut Attribution| {
            a.0 = Some(ConnectorAttribution {
                tenant: 4,
                connector_id: 1,
                connector: "Relay".into(),
                vouched_sender: None,
                keep_internal_headers: false,
            })
        });
        assert_eq!(outbound_sender(&c), None);
    }
}

//! The edge policy: the protection stages that decide by who is connecting, wrapped around the
//! recipient decision ([`DirectoryPolicy`]) at the session's hook points (`hato-protection`'s
//! fixed order; `exchange-online-behaviour.md` §3).
//!
//! - **connect**: the configured checks, in order ([`ConnectChecks`]), and meanwhile the
//!   client's forward-confirmed name ([`ReverseDns`]; it fills the PTR of the connection log, the
//!   trace's standing note and the Received header). A final refusal (DNS block lists,
//!   throttling, an early talker) is sent instead of the banner. A refusal a tenant's IP allow
//!   list overrides (the provider's block list) is held in the session's state and given at
//!   RCPT. A client let in counts as a connection for throttling.
//! - **EHLO**: the HELO check (`550 5.7.506 Access Denied, Bad HELO`).
//! - **MAIL FROM** (with inbound connectors, [`EdgePolicy::with_connectors`]): the client's
//!   attribution to a tenant by its on-premises connectors (`crate::connectors`), kept in the
//!   session state (`hato_core::client::Attribution`) for routing (relay, group identity), the
//!   content stages and the header filter; made again at each MAIL FROM.
//! - **RCPT**, before the connection filter, for a recipient of a tenant the client is not
//!   attributed to: the tenant's partner connector covering the MAIL FROM domain
//!   (`451 5.7.3` without STARTTLS under RequireTls, `550 5.7.51` outside its IPs under
//!   RestrictDomainsToIPAddresses), then its RejectDirectSend (`550 5.7.68` for anonymous mail
//!   claiming the tenant's domain from a client none of its connectors matches).
//! - **RCPT**: once the directory accepted the recipient, its tenant is known, and the tenant's
//!   connection filter policy decides: on its allow list, the client is let in for that tenant's
//!   recipients (even past a held refusal); else a held refusal is given; else on its block list,
//!   `550 5.7.513`. A refused RCPT creates no message, so, as in Exchange, it leaves no
//!   message-trace row.
//! - **end-of-data**: each recipient's verdict slot gets the client's standing for its tenant
//!   (`IPV:CAL` or `IPV:NLI`, client IP, PTR, and the notes of the checks at connect as figures
//!   named after their stages: the commit makes it the reason of the recipient's `Receive`
//!   event, one row, whatever the checks noted), which the spam stage reads
//!   (`hato_protection::connection_filter::is_allow_listed`).
//!
//! Throttling learns from the session as it goes: each connection let in, each RCPT refused for
//! an unknown recipient (directory-based edge blocking, `550 5.4.1`), each message accepted with
//! its number of recipients.
//!
//! Every refusal goes to the connection log, once per session for each stage and tenant, with
//! the notes made before it; the row is handed to the store's group commit and not waited for,
//! so no reply waits for it.

use crate::cache::GenerationCache;
use crate::connectors::{InboundConnectors, Snapshot};
use crate::routing::DirectoryPolicy;
use hato_core::client::{Attribution, ConnectorAttribution};
use hato_core::directory::Route;
use hato_core::directory::TenantId;
use hato_core::message::{Action, RecipientVerdict};
use hato_core::reply;
use hato_core::{Address, ClientContext, Clock, MessageContext, Reason, Refusal, Stage};
use hato_protection::connection_filter::{ConnectionFilter, trace_note};
use hato_protection::helo::HeloCheck;
use hato_protection::ip::canonical_ip;
use hato_protection::reverse_dns::ReverseDns;
use hato_protection::throttle::Throttle;
use hato_protection::{ConnectChecks, Outcome};
use hato_smtp::{DataVerdict, Decision, RcptVerdict, SmtpPolicy, Verdict};
use hato_store::{NewConnectionRecord, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// What the edge keeps for one session, in the client context's session state: the notes of
/// the checks at connect, the refusal held for RCPT, the tenants whose allow list has the
/// client (with the note that says so), and what went to the connection log already. Bounded:
/// the notes by the checks, the tenants by the platform's tenants.
#[derive(Default)]
struct EdgeSession {
    notes: Vec<Reason>,
    held: Option<Refusal>,
    allowed: HashMap<TenantId, Reason>,
    logged: HashSet<(Stage, Option<TenantId>)>,
    /// The client's forward-confirmed name, once looked up.
    ptr: Option<String>,
}

/// What the edge learnt of the transaction at MAIL FROM for its connector checks at RCPT: the
/// connectors' snapshot (none when there is nothing to check), the MAIL FROM domain and the
/// tenant that has it as a verified accepted domain.
#[derive(Default, Clone)]
struct ConnectorSession {
    snapshot: Option<Arc<Snapshot>>,
    sender_domain: Option<String>,
    sender_owner: Option<TenantId>,
}

/// Tenants' connection filters, built from the store once per change of their lists (the
/// policy's version is read for every RCPT, one indexed read; the lists only when it moved).
struct Filters {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<TenantId, (i64, Arc<ConnectionFilter>)>>,
    /// With the store's policy generation ([`crate::cache`]; every change to a connection
    /// filter moves it), not even the version is read while the generation stays.
    current: GenerationCache<TenantId, Arc<ConnectionFilter>>,
}

/// How many tenants' built filters are known without a read.
const FILTER_CACHE: usize = 4_096;

impl Filters {
    /// The tenant's filter if it is known without a store read.
    fn cached(&self, tenant: TenantId) -> Option<Arc<ConnectionFilter>> {
        self.current
            .get(self.store.content_policy_generation(), &tenant)
    }

    /// Blocks (store reads): call it on the blocking pool.
    fn get(&self, tenant: TenantId) -> Result<Arc<ConnectionFilter>, StoreError> {
        let generation = self.store.content_policy_generation();
        let filter = self.read(tenant)?;
        self.current.insert(generation, tenant, filter.clone());
        Ok(filter)
    }

    fn read(&self, tenant: TenantId) -> Result<Arc<ConnectionFilter>, StoreError> {
        let version = self.store.connection_filter_version(tenant)?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .filter(|(v, _)| *v == version)
            .map(|(_, f)| f.clone());
        if let Some(f) = cached {
            return Ok(f);
        }
        let policy = self.store.connection_filter(tenant)?;
        let (filter, bad) =
            ConnectionFilter::from_stored(&policy.ip_allow_list, &policy.ip_block_list);
        for e in bad {
            tracing::warn!("tenant {tenant}'s connection filter: {e}; the entry is ignored");
        }
        let filter = Arc::new(filter);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant, (policy.version, filter.clone()));
        Ok(filter)
    }
}

/// Writes the connection log.
#[derive(Clone)]
struct Log {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Log {
    /// Records `refusal` of `client` (made on `tenant`'s policy, or the platform's), unless this
    /// session already has a row for that stage and tenant (a client that tries 500 recipients
    /// of a tenant that blocks it is one row, not 500). `helo`: the name the refusal is about,
    /// when the client context does not have it yet.
    fn refused(
        &self,
        client: &ClientContext,
        helo: Option<&str>,
        tenant: Option<TenantId>,
        refusal: &Refusal,
    ) {
        let key = (refusal.reason.stage, tenant);
        let (first, notes, ptr) = client
            .session_state
            .with(|s: &mut EdgeSession| (s.logged.insert(key), s.notes.clone(), s.ptr.clone()));
        if !first {
            return;
        }
        let record = NewConnectionRecord {
            time: self.clock.now(),
            ip: canonical_ip(client.ip()).to_string(),
            ptr: client.ptr.clone().or(ptr).unwrap_or_default(),
            helo: helo
                .unwrap_or(client.helo_name())
                .chars()
                .take(255)
                .collect(),
            tenant,
            reply: refusal.reply.clone(),
            reason: (*refusal.reason).clone(),
            notes,
        };
        let pending = self.store.log_connection(record);
        // Not awaited by the reply: the writer commits the row with its next batch.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = pending.await {
                        tracing::warn!("could not write the connection log: {e}");
                    }
                });
            }
            // Outside a runtime (a unit test driving a session by hand) the write still
            // happens; nobody hears of its outcome.
            Err(_) => drop(pending),
        }
    }
}

/// The server's own cuts (connection limits, the session time limit) already in the connection
/// log: at most one row a minute for each client IP and setting, so a client hammering a limit
/// writes one row a minute, not one per attempt; bounded, and a flood from more IPs than it
/// holds is not recorded until it ages out (the reply still goes out).
#[derive(Default)]
struct Cuts {
    logged: Mutex<HashMap<(IpAddr, String), i64>>,
}

const CUTS_HELD: usize = 10_000;
const CUT_INTERVAL_SECS: i64 = 60;

impl Cuts {
    /// Whether a row for `ip` and `rule` at `now` (seconds) is due.
    fn due(&self, ip: IpAddr, rule: &str, now: i64) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (ip, rule.to_string());
        if logged
            .get(&key)
            .is_some_and(|t| now - *t < CUT_INTERVAL_SECS)
        {
            return false;
        }
        if logged.len() >= CUTS_HELD {
            logged.retain(|_, t| now - *t < CUT_INTERVAL_SECS);
            if logged.len() >= CUTS_HELD {
                return false;
            }
        }
        logged.insert(key, now);
        true
    }
}

/// The edge's stages around an inner policy (the directory's, in `hato serve`).
pub struct EdgePolicy<P = DirectoryPolicy> {
    inner: P,
    checks: ConnectChecks,
    helo: Option<HeloCheck>,
    reverse_dns: Option<ReverseDns>,
    throttle: Option<Arc<Throttle>>,
    filters: Arc<Filters>,
    connectors: Option<Arc<InboundConnectors>>,
    log: Log,
    cuts: Cuts,
}

impl<P: SmtpPolicy> EdgePolicy<P> {
    /// The tenants' connection filters over `inner`, without checks at connect or at EHLO.
    pub fn new(inner: P, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        EdgePolicy {
            inner,
            checks: ConnectChecks::new(),
            helo: None,
            reverse_dns: None,
            throttle: None,
            filters: Arc::new(Filters {
                store: store.clone(),
                cache: Mutex::new(HashMap::new()),
                current: GenerationCache::new(FILTER_CACHE),
            }),
            connectors: None,
            log: Log { store, clock },
            cuts: Cuts::default(),
        }
    }

    /// The checks at connect (the provider's block list, DNS block lists, throttling, the
    /// early-talker check), which run in their fixed order.
    pub fn with_checks(mut self, checks: ConnectChecks) -> Self {
        self.checks = checks;
        self
    }

    /// Refuse a HELO/EHLO that names this server (`edge.reject_bad_helo`).
    pub fn with_helo_check(mut self, check: HeloCheck) -> Self {
        self.helo = Some(check);
        self
    }

    /// Look up each client's forward-confirmed name at connect (`edge.reverse_dns`).
    pub fn with_reverse_dns(mut self, reverse_dns: ReverseDns) -> Self {
        self.reverse_dns = Some(reverse_dns);
        self
    }

    /// Tell `throttle` what each session does (connections, unknown recipients, messages).
    /// Its decision at connect is one of the checks ([`EdgePolicy::with_checks`]).
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Tenants' inbound connectors and RejectDirectSend: attribution at MAIL FROM, partner
    /// connectors and RejectDirectSend at RCPT.
    pub fn with_connectors(mut self, connectors: Arc<InboundConnectors>) -> Self {
        self.connectors = Some(connectors);
        self
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

/// An inner decision, awaited.
async fn decided<T>(d: Decision<T>) -> T {
    match d {
        Decision::Ready(v) => v,
        Decision::Pending(f) => f.await,
    }
}

/// The refusal when the tenant's lists cannot be read: the client retries.
fn policy_failed(error: &dyn std::fmt::Display) -> Refusal {
    Refusal::new(
        reply::POLICY_FAILED,
        Reason::new(
            Stage::ConnectionFilter,
            format!("The tenant's connection filter could not be read: {error}"),
        ),
    )
}

/// The recipient's domain as the 5.7.513 reply names it: A-labels, so the reply stays ASCII.
fn reply_domain(rcpt: &Address) -> String {
    let ascii = rcpt.to_ascii_form();
    match ascii.rsplit_once('@') {
        Some((_, d)) => d.to_string(),
        None => rcpt.domain().to_string(),
    }
}

impl<P: SmtpPolicy + 'static> SmtpPolicy for EdgePolicy<P> {
    fn connect(&self, client: &ClientContext) -> Decision<Verdict> {
        if self.checks.is_empty() && self.reverse_dns.is_none() && self.throttle.is_none() {
            return self.inner.connect(client);
        }
        let run = self.checks.run(client, self.log.clock.now());
        let name = self
            .reverse_dns
            .as_ref()
            .filter(|_| client.ptr.is_none())
            .map(|r| r.name(client.ip()));
        let inner = self.inner.connect(client);
        let client = client.clone();
        let log = self.log.clone();
        let throttle = self.throttle.clone();
        Decision::later(async move {
            // The name while the checks run: both wait on DNS, and the log wants the name.
            let name = async move {
                match name {
                    Some(lookup) => lookup.await,
                    None => Default::default(),
                }
            };
            let (out, name) = tokio::join!(run, name);
            for note in out.notes.iter().filter(|n| n.stage == Stage::DnsBlockList) {
                // A list that could not say lets the client in unchecked: the operator must
                // hear of it (a resolver the list refuses, a zone that stopped answering).
                tracing::warn!("{}", note.text);
            }
            client.session_state.with(|s: &mut EdgeSession| {
                s.ptr = name.name;
                s.notes.extend(name.note);
                s.notes.extend(out.notes);
                s.held = out.held;
            });
            if let Some(refusal) = out.refused {
                log.refused(&client, None, None, &refusal);
                return Verdict::Reject(refusal);
            }
            if let Some(throttle) = throttle {
                throttle.record_connection(canonical_ip(client.ip()), log.clock.now());
            }
            decided(inner).await
        })
    }

    fn ehlo(&self, client: &ClientContext, host: &str) -> Decision<Verdict> {
        if let Some(check) = &self.helo
            && let Outcome::Refuse(refusal) = check.check(client, host)
        {
            self.log.refused(client, Some(host), None, &refusal);
            return Decision::Ready(Verdict::Reject(refusal));
        }
        self.inner.ehlo(client, host)
    }

    fn mail(&self, client: &ClientContext, sender: Option<&Address>) -> Decision<Verdict> {
        let Some(connectors) = self.connectors.clone() else {
            return self.inner.mail(client, sender);
        };
        let inner = self.inner.mail(client, sender);
        let client = client.clone();
        let sender = sender.cloned();
        Decision::later(async move {
            let ip = canonical_ip(client.ip());
            // Known without a store read (the common case: nothing changed since the last
            // message), decided here; else on the blocking pool.
            let known = connectors.cached_snapshot().and_then(|snapshot| {
                let owner = match &sender {
                    Some(s) => connectors.cached_owner(s.domain())?,
                    None => None,
                };
                Some((snapshot, owner))
            });
            let work = match known {
                Some((snapshot, owner)) => Ok(Ok(attribute_with(snapshot, owner, ip, sender))),
                None => {
                    tokio::task::spawn_blocking(move || attribute(&connectors, ip, sender)).await
                }
            };
            let (attributed, session) = match work {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::error!("inbound connectors: {e}");
                    return Verdict::Reject(connectors_failed(&e));
                }
                Err(e) => {
                    tracing::error!("inbound connectors: {e}");
                    return Verdict::Reject(connectors_failed(&e));
                }
            };
            client
                .session_state
                .with(|a: &mut Attribution| a.0 = attributed);
            client
                .session_state
                .with(|s: &mut ConnectorSession| *s = session);
            decided(inner).await
        })
    }

    fn rcpt(
        &self,
        client: &ClientContext,
        sender: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        let inner = self.inner.rcpt(client, sender, rcpt);
        let client = client.clone();
        let domain = reply_domain(rcpt);
        let filters = self.filters.clone();
        let log = self.log.clone();
        let throttle = self.throttle.clone();
        Decision::later(async move {
            // The directory first: only then is the recipient's tenant known. Its refusals
            // (unknown recipient, relay) are not the edge's; an unknown recipient counts
            // against the client's reputation (a directory harvest, AS5).
            let verdict = decided(inner).await;
            let accepted = match verdict {
                RcptVerdict::Accept(accepted) => accepted,
                RcptVerdict::Reject(refusal) => {
                    if let Some(throttle) = throttle
                        && refusal.reply == reply::RECIPIENT_REJECTED
                    {
                        throttle
                            .record_unknown_recipient(canonical_ip(client.ip()), log.clock.now());
                    }
                    return RcptVerdict::Reject(refusal);
                }
            };
            let tenant = accepted.tenant_id;
            if let Some(refusal) = connector_refusal(&client, tenant, accepted.route) {
                log.refused(&client, None, Some(tenant), &refusal);
                return RcptVerdict::Reject(refusal);
            }
            let read = match filters.cached(tenant) {
                Some(filter) => Ok(Ok(filter)),
                None => tokio::task::spawn_blocking(move || filters.get(tenant)).await,
            };
            let filter = match read {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => {
                    tracing::error!("connection filter of tenant {tenant}: {e}");
                    return RcptVerdict::Reject(policy_failed(&e));
                }
                Err(e) => {
                    tracing::error!("connection filter of tenant {tenant}: {e}");
                    return RcptVerdict::Reject(policy_failed(&e));
                }
            };
            let outcome = filter.decide(canonical_ip(client.ip()), &domain);
            let held = client.session_state.with(|s: &mut EdgeSession| {
                if let Outcome::Note(note) = &outcome {
                    s.allowed.entry(tenant).or_insert_with(|| note.clone());
                }
                s.held.clone()
            });
            match outcome {
                // On the tenant's allow list: in, whatever the provider's list says (seed C3).
                Outcome::Note(_) => RcptVerdict::Accept(accepted),
                outcome => {
                    if let Some(refusal) = held {
                        // The platform's refusal, for every tenant that does not allow-list
                        // the client; only the operator sees its row.
                        log.refused(&client, None, None, &refusal);
                        return RcptVerdict::Reject(refusal);
                    }
                    match outcome {
                        Outcome::Refuse(refusal) => {
                            log.refused(&client, None, Some(tenant), &refusal);
                            RcptVerdict::Reject(refusal)
                        }
                        Outcome::Pass | Outcome::Note(_) => RcptVerdict::Accept(accepted),
                    }
                }
            }
        })
    }

    fn cut(&self, client: &ClientContext, refusal: &Refusal) {
        let rule = refusal.reason.rule.as_deref().unwrap_or_default();
        let now = self.log.clock.now().0 / 1_000_000;
        if self.cuts.due(canonical_ip(client.ip()), rule, now) {
            self.log.refused(client, None, None, refusal);
        }
        self.inner.cut(client, refusal);
    }

    fn end_of_data(&self, mut message: MessageContext) -> Decision<DataVerdict> {
        let (notes, allowed, ptr) = message
            .client
            .session_state
            .with(|s: &mut EdgeSession| (s.notes.clone(), s.allowed.clone(), s.ptr.clone()));
        let ip = canonical_ip(message.client.ip());
        if message.client.ptr.is_none() {
            // The Received header and the later stages read it from the message's context.
            message.client.ptr = ptr;
        }
        let ptr = message.client.ptr.clone();
        if message.domain_authenticated.is_none() {
            // The connector vouches for the MAIL FROM address (its tenant's domain): queued as
            // the identity group restrictions use at delivery, as RCPT used it.
            message.domain_authenticated =
                message.client.attribution().and_then(|a| a.vouched_sender);
        }
        let tenants: Vec<TenantId> = message
            .envelope
            .recipients
            .iter()
            .map(|r| r.tenant_id)
            .collect();
        for (i, tenant) in tenants.into_iter().enumerate() {
            // The client's standing with the tenant, with the notes of the checks at connect.
            let standing = trace_note(ip, ptr.as_deref(), allowed.get(&tenant), &notes);
            message.record(
                i,
                RecipientVerdict {
                    action: Action::Deliver,
                    reason: standing,
                },
            );
        }
        let recipients = u32::try_from(message.envelope.recipients.len()).unwrap_or(u32::MAX);
        let inner = self.inner.end_of_data(message);
        let Some(throttle) = self.throttle.clone() else {
            return inner;
        };
        let clock = self.log.clock.clone();
        Decision::later(async move {
            let verdict = decided(inner).await;
            if verdict.verdict == Verdict::Accept {
                throttle.record_message(ip, recipients, clock.now());
            }
            verdict
        })
    }
}

/// The attribution for a transaction of a client at `ip` whose MAIL FROM is `sender`, and what
/// the RCPT checks need. Blocks (store reads).
fn attribute(
    connectors: &InboundConnectors,
    ip: IpAddr,
    sender: Option<Address>,
) -> Result<(Option<ConnectorAttribution>, ConnectorSession), StoreError> {
    let snapshot = connectors.snapshot()?;
    if snapshot.is_empty() {
        return Ok((None, ConnectorSession::default()));
    }
    let owner = match &sender {
        Some(s) => connectors.owner(s.domain())?,
        None => None,
    };
    Ok(attribute_with(snapshot, owner, ip, sender))
}

/// [`attribute`] once the snapshot and the MAIL FROM domain's owner (the tenant that has it
/// as a verified accepted domain) are known.
fn attribute_with(
    snapshot: Arc<Snapshot>,
    owner: Option<TenantId>,
    ip: IpAddr,
    sender: Option<Address>,
) -> (Option<ConnectorAttribution>, ConnectorSession) {
    if snapshot.is_empty() {
        return (None, ConnectorSession::default());
    }
    let attributed = snapshot.attribution(ip, owner, sender.as_ref());
    if let Some(a) = &attributed {
        tracing::debug!(
            "client {ip} attributed to tenant {} by the inbound connector {:?}",
            a.tenant,
            a.connector
        );
    }
    let session = ConnectorSession {
        snapshot: Some(snapshot),
        sender_domain: sender.map(|s| s.domain().to_string()),
        sender_owner: owner,
    };
    (attributed, session)
}

/// The partner connector's or RejectDirectSend's refusal of a recipient of `tenant`, if any.
/// Neither applies to a client attributed to the tenant itself (its own server), nor to a
/// recipient the client relays (route `Remote`, decided by attribution).
fn connector_refusal(client: &ClientContext, tenant: TenantId, route: Route) -> Option<Refusal> {
    if route == Route::Remote {
        return None;
    }
    let session = client
        .session_state
        .with(|s: &mut ConnectorSession| s.clone());
    let snapshot = session.snapshot?;
    let domain = session.sender_domain?;
    if client.attribution().is_some_and(|a| a.tenant == tenant) {
        return None;
    }
    let ip = canonical_ip(client.ip());
    if let Some(refusal) = snapshot.partner_refusal(tenant, &domain, ip, client.tls.is_some()) {
        return Some(refusal);
    }
    // RejectDirectSend (`Set-OrganizationConfig`): anonymous mail that claims the tenant's own
    // domain from a client none of its connectors matches.
    if client.identity.is_none()
        && session.sender_owner == Some(tenant)
        && snapshot.rejects_direct_send(tenant, ip)
    {
        return Some(Refusal::new(
            reply::DIRECT_SEND_REJECTED,
            Reason::new(
                Stage::Connector,
                format!(
                    "The tenant has RejectDirectSend on: anonymous mail from {domain}, one of its \
                     accepted domains, from {ip}, which none of its inbound connectors matches"
                ),
            )
            .rule("RejectDirectSend")
            .figure("sender_domain", domain),
        ));
    }
    None
}

/// The refusal when the connectors cannot be read: the client retries.
fn connectors_failed(error: &dyn std::fmt::Display) -> Refusal {
    Refusal::new(
        reply::POLICY_FAILED,
        Reason::new(
            Stage::Connector,
            format!("The inbound connectors could not be read: {error}"),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_recorded_once_a_minute_per_ip_and_setting_and_the_record_is_bounded() {
        let cuts = Cuts::default();
        let ip = |n: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        assert!(cuts.due(ip(1), "smtp.max_connections_per_ip", 0));
        assert!(!cuts.due(ip(1), "smtp.max_connections_per_ip", 59));
        assert!(cuts.due(ip(1), "smtp.session_timeout_secs", 59));
        assert!(cuts.due(ip(1), "smtp.max_connections_per_ip", 60));
        // A flood from more IPs than it holds: the map stays at its bound.
        for n in 2..(CUTS_HELD as u32 + 100) {
            cuts.due(ip(n), "smtp.max_connections", 100);
        }
        assert!(cuts.logged.lock().unwrap().len() <= CUTS_HELD);
        assert!(!cuts.due(ip(999_999), "smtp.max_connections", 100));
        // A minute on, the old entries age out and make room.
        assert!(cuts.due(ip(999_999), "smtp.max_connections", 161));
    }
}

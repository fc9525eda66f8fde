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

use crate::routing::DirectoryPolicy;
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

/// Tenants' connection filters, built from the store once per change of their lists (the
/// policy's version is read for every RCPT, one indexed read; the lists only when it moved).
struct Filters {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<TenantId, (i64, Arc<ConnectionFilter>)>>,
}

impl Filters {
    /// Blocks (store reads): call it on the blocking pool.
    fn get(&self, tenant: TenantId) -> Result<Arc<ConnectionFilter>, StoreError> {
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

/// The edge's stages around an inner policy (the directory's, in `hato serve`).
pub struct EdgePolicy<P = DirectoryPolicy> {
    inner: P,
    checks: ConnectChecks,
    helo: Option<HeloCheck>,
    reverse_dns: Option<ReverseDns>,
    throttle: Option<Arc<Throttle>>,
    filters: Arc<Filters>,
    log: Log,
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
            }),
            log: Log { store, clock },
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
        self.inner.mail(client, sender)
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
            let read = tokio::task::spawn_blocking(move || filters.get(tenant)).await;
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

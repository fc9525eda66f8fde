//! The content pipeline: what happens between the end of the data and the final `250`
//! (`exchange-online-behaviour.md` §2: malware filter → transport rules → spam filter; seed B1).
//!
//! [`ContentPolicy`] wraps the recipient decision at the session's end-of-data hook (inside the
//! edge, so the edge's note of the client's standing is in each recipient's slot first). For each
//! message it:
//!
//! 1. reads the content once (a spooled one from its file) and scans it with the built-in
//!    engine (MIME walk, archives, signatures), on the blocking pool; meanwhile each recipient
//!    tenant's malware policies and transport rules are read (rules compiled once per change);
//! 2. asks the external engines (clamd): one that does not answer defers the whole message
//!    (`451 4.7.0`), never passes it;
//! 3. decides per recipient (architecture decision 4: the first matching custom policy by
//!    priority, else the default, never merged): the malware verdict first — nothing bypasses
//!    it — then, for recipients still delivered, the transport rules' decisions in priority
//!    order (`hato_protection::rules`). Each decision is recorded in the recipient's slot with
//!    its reason, so trace, `hato explain` and the quarantine show why;
//! 4. answers: when every recipient is refused, the refusal is the reply to the DATA and
//!    nothing is kept (no backscatter); otherwise the message is accepted and the refused
//!    recipients fail with an NDR, the deleted ones are dropped, the redirected ones replaced.
//!
//! Rules that change content (headers, subject, disclaimer) and the malware alert copy give a
//! recipient content of its own ([`RecipientContent`]); every recipient gets its
//! `X-Hato-Antispam-Report` (Exchange's `X-Forefront-Antispam-Report` grammar). The commit
//! queues one entry per distinct content ([`crate::inbound`]).

use crate::delivery::{
    INCIDENT_REPORT_MAX_ORIGINAL, IncidentReport, MalwareNotice, ReportedRule, SenderScope,
    incident_report, incident_report_addresses, malware_admin_notification, notification_recipient,
    reported_rules,
};
use crate::routing::{NO_TENANT, Resolution, resolve};
use crate::spam_stage::{self, AuthRequest, SpamFilter};
use hato_core::directory::{Route, TenantId};
use hato_core::header::{Headers, header_block};
use hato_core::message::{Action, QuarantineKind, Recipient, RecipientContent, RecipientVerdict};
use hato_core::{Address, Clock, MessageBody, MessageContext, Reason, Refusal, Reply, Stage};
use hato_core::{id, reply};
use hato_directory::Directory;
use hato_directory::policy::{Sender as GroupSender, check_sender};
use hato_directory::rules::RuleDirectoryView;
use hato_protection::connection_filter::is_allow_listed;
use hato_protection::malware::{
    EncryptedArchiveAction, FileTypeAction, MalwareAction, MalwareOutcome, MalwarePolicy,
    MalwareVerdict, ScanReport, Scanner, alert, decide,
};
use hato_protection::rules::{
    DisclaimerOutcome, Evaluation, HitBatch, RecipientRules, RuleAction, RuleDirectory,
    RuleMessage, RuleSetCache, apply_content_actions,
};
use hato_protection::spam::auth::{authentication_results_for_tenant, spoofs_own_domain};
use hato_protection::spam::classifier::{Features, TenantModel};
use hato_protection::spam::decide::{Sfv, SpamDecision};
use hato_protection::spam::{Asf, AuthSignals, ContentSignals, SpamSignals};
use hato_smtp::{DataVerdict, Decision, RcptVerdict, SmtpPolicy, Verdict};
use hato_store::{
    ContentPolicyVersions, MalwareFilterPolicy, SpamFilterPolicyRecord, Store, StoreError,
    spam_policy_for,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The content stages, shared by every session.
pub struct ContentPipeline {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
    scanner: Arc<Scanner>,
    rules: RuleSetCache,
    hits: HitBatch,
    hostname: String,
    budget: ScanBudget,
    /// The spam filter; `None`: not run (`[spam] enabled = false`).
    spam: Option<Arc<SpamFilter>>,
    /// Where a spam verdict counts against the sending IP (the edge's throttling); `None`: off.
    throttle: Option<Arc<hato_protection::throttle::Throttle>>,
    /// The tenants' outbound connectors, for transport rules that route to one
    /// (`RouteMessageOutboundConnector`); `None`: such a rule's action is not applied.
    outbound_connectors: Option<Arc<crate::outbound_connectors::OutboundConnectors>>,
    /// Each tenant's facts, with the store's policy generation they are known to be current
    /// at (`None`: check the versions).
    facts: std::sync::Mutex<HashMap<TenantId, KnownFacts>>,
    /// Recipient mailboxes' safe and blocked senders (their junk email configuration).
    junk: crate::junk_lists::JunkListCache,
}

/// A tenant's facts and the policy generation they are known current at.
type KnownFacts = (Option<u64>, Arc<TenantFacts>);

/// A message up to this size, in memory, whose tenants' facts are cached and current and ask
/// for no store read ([`TenantFacts::reads_nothing_more`]), is examined on the async worker
/// instead of the blocking pool: pure CPU, tens of microseconds, where the hand-off costs about
/// as much again. (Should a policy change land between the check and the examination, the
/// examination reads the versions once, a single indexed read.)
const INLINE_MAX_BYTES: u64 = 64 * 1024;
/// What the transport rules may search on the async worker for one message: a tenant's rules'
/// searches per text ([`hato_protection::rules::RuleSet::passes_per_text`]) times the message's
/// size (each search is linear, a few hundred MB/s; half a MiB is well under a millisecond).
/// More goes to the blocking pool.
const INLINE_SCAN_BYTES: u64 = 512 * 1024;

/// Tenants whose facts are kept at most (a platform with more starts over: a cache, not a
/// bound on tenants).
const FACTS_CACHED: usize = 10_000;

/// Message bytes being examined at once, in KiB: each message holds its size (at least 1 KiB,
/// at most the whole budget) while the stages read it, so many large messages at once wait
/// their turn instead of each taking memory (a message costs a few times its size while it is
/// parsed and unpacked).
struct ScanBudget {
    permits: tokio::sync::Semaphore,
    kib: u32,
}

impl ScanBudget {
    fn new(mb: u32) -> Self {
        let kib = mb.clamp(1, 1 << 20) * 1024;
        ScanBudget {
            permits: tokio::sync::Semaphore::new(kib as usize),
            kib,
        }
    }

    /// Waits until `bytes` fit; the turn lasts as long as the permit.
    async fn turn(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.kib);
        // The semaphore is never closed: no error to handle.
        self.permits.acquire_many(kib).await.ok()
    }
}

/// Message bytes the stages examine at once by default: 64 MiB, room for one message of the
/// largest size `smtp.max_message_size` allows by default (35 MB) and a second large one beside
/// it. A 30 MB message costs about 100 MB while it is parsed and unpacked: with 200 sessions
/// each sending one, the server's peak RSS was 239 MB at 64 MiB, 150 MB at 40 and 363 MB at
/// 128 (`bash bench/memory.sh`, target < 300 MB).
pub const DEFAULT_SCAN_BUDGET_MB: u32 = 64;

/// The recipients of a message with malware under one policy that asks for an admin
/// notification, and what the policy did.
struct Notify {
    tenant: TenantId,
    policy: MalwareFilterPolicy,
    outcome: MalwareOutcome,
    recipients: Vec<String>,
}

/// What a tenant's rules asked to be reported (`GenerateIncidentReport`) for one message.
struct Incident {
    tenant: TenantId,
    addresses: Vec<String>,
    rules: Vec<ReportedRule>,
    recipients: Vec<String>,
}

/// A recipient's tenant as the stages need it for one message.
/// Kept between messages while the store's versions of them stay
/// (`content_policy_versions`: one read per tenant and message).
struct TenantFacts {
    versions: ContentPolicyVersions,
    /// The policies in the order they are tried, each with its form for the decision.
    malware_policies: Vec<(MalwareFilterPolicy, MalwarePolicy)>,
    index: Arc<hato_directory::DirectoryIndex>,
    /// Read only when the tenant has rules (they ask for them).
    accepted_domains: Vec<String>,
    rules: Arc<hato_protection::rules::RuleSet>,
    /// The anti-spam policies in the order they are tried (custom by priority, the default).
    spam_policies: Vec<SpamFilterPolicyRecord>,
    /// The tenant's personalised classifier (its users' junk / not-junk reports), if any.
    tenant_model: Option<Arc<TenantModel>>,
}

impl TenantFacts {
    /// Whether deciding for this tenant's recipients reads nothing from the store whatever the
    /// message: no redirecting anti-spam policy and no admin notification (their addresses are
    /// routed through the directory). What the rules decide is known only after they ran
    /// ([`Examined::reads_store`]).
    fn reads_nothing_more(&self) -> bool {
        use hato_protection::spam::SpamAction;
        let redirects = |p: &hato_protection::spam::SpamFilterPolicy| {
            [
                p.spam_action,
                p.high_confidence_spam_action,
                p.phish_spam_action,
                p.high_confidence_phish_action,
                p.bulk_spam_action,
            ]
            .contains(&SpamAction::Redirect)
        };
        // A redirect's addresses are routed through the directory.
        !self.spam_policies.iter().any(|p| redirects(&p.policy))
            && self.malware_policies.iter().all(|(p, _)| {
                !p.enable_internal_sender_admin_notifications
                    && !p.enable_external_sender_admin_notifications
            })
    }

    /// Whether the rules' searches over a message of `len` bytes stay within
    /// [`INLINE_SCAN_BYTES`]: then it may be examined on the async worker.
    fn rules_inline(&self, len: u64) -> bool {
        self.rules.is_empty()
            || (self.rules.passes_per_text() as u64).saturating_mul(len) <= INLINE_SCAN_BYTES
    }

    fn view(&self) -> RuleDirectoryView<'_> {
        RuleDirectoryView {
            index: &self.index,
            accepted_domains: &self.accepted_domains,
        }
    }
}

/// What the first, blocking step found.
struct Examined {
    raw: Arc<Vec<u8>>,
    report: ScanReport,
    tenants: HashMap<TenantId, Arc<TenantFacts>>,
    /// Per recipient of the envelope, in order: the rules' evaluation for it.
    rules: Vec<RecipientRules>,
    /// Reasons of rules that could not be evaluated and were skipped, per tenant.
    skipped: HashMap<TenantId, Vec<Reason>>,
    incidents: Vec<Incident>,
    /// The classifier's features of the message (when the spam filter runs), and whether it
    /// carries GTUBE.
    features: Option<Features>,
    gtube: bool,
    /// For a delivery report: per recipient, whether hato carried the message it reports on
    /// from that recipient (then it is a real NDR, not backscatter).
    carried: Vec<bool>,
}

/// The most recipients of one delivery report checked against the messages hato carried
/// (a report goes back to one sender; the rest stay unverified).
const BACKSCATTER_CHECKS: usize = 100;

impl Examined {
    /// Whether deciding reads the store: a rule added recipients (routed through the
    /// directory) or asked for an incident report (addressed through it).
    fn reads_store(&self) -> bool {
        !self.incidents.is_empty()
            || self.rules.iter().any(|r| {
                r.decisions.iter().any(|d| {
                    matches!(
                        d.action,
                        RuleAction::Redirect { .. }
                            | RuleAction::BlindCopyTo { .. }
                            | RuleAction::AddToRecipients { .. }
                            | RuleAction::CopyTo { .. }
                            | RuleAction::RouteOutboundConnector { .. }
                    )
                })
            })
    }
}

/// What a recipient's antispam report takes from the spam filter: the decision, the message's
/// language, the client's country.
type SpamOutcomeStamp = (SpamDecision, Option<String>, Option<String>);

/// Why the pipeline could not decide: the client retries.
fn deferral(reply: Reply, stage: Stage, text: impl Into<String>) -> Refusal {
    Refusal::new(reply, Reason::new(stage, text))
}

impl ContentPipeline {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<Directory>,
        clock: Arc<dyn Clock>,
        scanner: Arc<Scanner>,
        hostname: String,
    ) -> Self {
        ContentPipeline {
            store,
            directory,
            clock,
            scanner,
            rules: RuleSetCache::new(),
            hits: HitBatch::new(),
            hostname,
            budget: ScanBudget::new(DEFAULT_SCAN_BUDGET_MB),
            facts: std::sync::Mutex::new(HashMap::new()),
            junk: Default::default(),
            spam: None,
            throttle: None,
            outbound_connectors: None,
        }
    }

    /// Transport rules route recipients through these outbound connectors.
    pub fn with_outbound_connectors(
        mut self,
        connectors: Arc<crate::outbound_connectors::OutboundConnectors>,
    ) -> Self {
        self.outbound_connectors = Some(connectors);
        self
    }

    /// Whether `RouteMessageOutboundConnector { connector }` applies to a recipient routed
    /// `route` of `tenant`: only to mail leaving hato (outside recipients, and an internal-relay
    /// domain's, which may be relayed out), through an existing, enabled connector of the
    /// tenant. The connector's canonical name, or why not. Blocks (a store read when the
    /// connectors changed): the decision runs on the blocking pool when a rule routes
    /// (`Examined::reads_store`).
    fn outbound_connector_for(
        &self,
        tenant: TenantId,
        route: Route,
        connector: &str,
    ) -> Result<String, String> {
        if !matches!(route, Route::Remote | Route::Relay) {
            return Err("the recipient is inside the organisation".into());
        }
        let Some(connectors) = &self.outbound_connectors else {
            return Err("outbound connectors are not in use on this server".into());
        };
        let snapshot = connectors
            .snapshot()
            .map_err(|e| format!("the outbound connectors could not be read: {e}"))?;
        snapshot.usable(tenant, connector).map(|h| h.name.clone())
    }

    /// The spam filter, when it runs.
    pub fn spam_filter(&self) -> Option<&Arc<SpamFilter>> {
        self.spam.as_ref()
    }

    /// Runs the spam filter after the transport rules.
    pub fn with_spam_filter(mut self, spam: Arc<SpamFilter>) -> Self {
        self.spam = Some(spam);
        self
    }

    /// Spam verdicts count against the sending IP's reputation in `throttle` (Exchange's IP
    /// throttling counts "a high volume of spam" from an IP, `exchange-online-behaviour.md` §3).
    pub fn with_throttle(mut self, throttle: Arc<hato_protection::throttle::Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// What sender authentication needs of a message, when the spam filter runs and a
    /// tenant's recipient will be filtered as inbound mail: not for an authenticated client's
    /// mail, and not when every recipient is outside (mail relayed out through an on-premises
    /// connector: SPF, DKIM and DMARC judge who may send *to* the tenant; outbound mail gets the
    /// outbound spam verdict, which does not read them, and their DNS lookups would cost every
    /// relayed message their round trips).
    fn auth_request(&self, message: &MessageContext) -> Option<AuthRequest> {
        self.spam.as_ref()?;
        if message.client.identity.is_some()
            || message
                .envelope
                .recipients
                .iter()
                .all(|r| r.tenant_id == NO_TENANT || r.route == Route::Remote)
        {
            return None;
        }
        Some(AuthRequest {
            client_ip: message.client.ip(),
            helo: message.client.helo_name().to_owned(),
            mail_from: message.envelope.sender.as_ref().map(|s| s.to_string()),
        })
    }

    /// Sender authentication of `raw` (the message as received), once per message.
    async fn authenticate(&self, raw: &[u8], request: Option<AuthRequest>) -> Option<AuthSignals> {
        let spam = self.spam.as_ref()?;
        let request = request?;
        Some(spam.authenticate(raw, &request, &self.hostname).await)
    }

    /// At most `mb` MiB of messages examined at once (see [`DEFAULT_SCAN_BUDGET_MB`]).
    pub fn with_scan_budget_mb(mut self, mb: u32) -> Self {
        self.budget = ScanBudget::new(mb);
        self
    }

    /// Writes the rules' hit counts gathered since the last call (one store write for many
    /// messages; `hato serve` calls it every few seconds).
    pub async fn flush_hits(&self) {
        let hits = self.hits.take();
        if hits.is_empty() {
            return;
        }
        if let Err(e) = self.store.count_transport_rule_hits(hits).await {
            tracing::warn!("could not count transport rule hits: {e}");
        }
    }

    /// Runs the stages over `message` and answers the DATA.
    pub async fn run(self: Arc<Self>, message: MessageContext) -> DataVerdict {
        // Held until the decisions are made.
        let _turn = self.budget.turn(message.body.len()).await;
        // Sender authentication first for a message in memory (its lookups wait on the
        // resolver, not a worker); a spooled one's after its examination has read it.
        let request = self.auth_request(&message);
        let auth = match message.body.in_memory() {
            Some(raw) => self.authenticate(raw, request.clone()).await,
            None => None,
        };
        let spooled = message.body.in_memory().is_none();
        if self.inline(&message) {
            let mut message = message;
            let examined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.examine(&mut message)
            }));
            let examined = match examined {
                Ok(Ok(examined)) => examined,
                Ok(Err(refusal)) => return refuse(message, refusal),
                Err(_) => {
                    tracing::error!("the content stages failed on a message; it is deferred");
                    return refuse(message, policy_failed("the content stages failed"));
                }
            };
            // Recipients the rules add are routed through the directory, their incident
            // reports addressed: those decisions leave the async worker.
            if examined.reads_store() {
                return self.clone().decide_blocking(message, examined, auth).await;
            }
            let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.decide(&mut message, examined, auth)
            }));
            return match decided {
                Ok(decided) => self.answer(message, decided),
                Err(_) => {
                    tracing::error!("the content decisions failed on a message; it is deferred");
                    refuse(message, policy_failed("the content decisions failed"))
                }
            };
        }
        // Only for the hand-offs, which cannot give the message back if they are lost.
        let lost = Lost {
            envelope: message.envelope.clone(),
            client: message.client.clone(),
            protocol: message.protocol,
        };
        let this = self.clone();
        // Without external engines (and with sender authentication done), the decisions follow
        // the examination on the same blocking thread: one hop off the async workers per
        // message, not two.
        let one_hop = self.scanner.engines.is_empty() && !(spooled && self.spam.is_some());
        let auth_now = if one_hop { auth.clone() } else { None };
        let examined = tokio::task::spawn_blocking(move || {
            let mut message = message;
            let examined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let examined = this.examine(&mut message)?;
                Ok(if one_hop {
                    Step::Decided(this.decide(&mut message, examined, auth_now))
                } else {
                    Step::Examined(Box::new(examined))
                })
            }));
            (message, examined)
        })
        .await;
        let (message, examined) = match examined {
            Ok((message, Ok(Ok(Step::Examined(examined))))) => (message, *examined),
            Ok((message, Ok(Ok(Step::Decided(decided))))) => return self.answer(message, decided),
            Ok((message, Ok(Err(refusal)))) => return refuse(message, refusal),
            Ok((message, Err(_))) => {
                tracing::error!("the content stages failed on a message; it is deferred");
                return refuse(message, policy_failed("the content stages failed"));
            }
            Err(e) => {
                tracing::error!("the content stages were lost: {e}");
                return lost.refuse("the content stages were lost");
            }
        };
        let mut examined = examined;
        // The external engines, each on the whole message (clamd walks MIME itself).
        for engine in &self.scanner.engines {
            match engine.scan(&examined.raw).await {
                Ok(hato_protection::malware::EngineVerdict::Clean) => {}
                Ok(hato_protection::malware::EngineVerdict::Found(names)) => {
                    for name in names {
                        examined
                            .report
                            .detections
                            .push(hato_protection::malware::Detection {
                                name,
                                location: "message".to_owned(),
                                true_type: None,
                                engine: engine.name().to_owned(),
                                item: None,
                            });
                    }
                }
                Err(e) => {
                    tracing::warn!("{e}; the message is deferred");
                    return refuse(
                        message,
                        deferral(
                            reply::MALWARE_SCAN_UNAVAILABLE,
                            Stage::Malware,
                            e.to_string(),
                        ),
                    );
                }
            }
        }
        // A spooled message's sender authentication, now that its content is read.
        let auth = match auth {
            Some(auth) => Some(auth),
            None if spooled => self.authenticate(&examined.raw, request).await,
            None => None,
        };
        self.clone().decide_blocking(message, examined, auth).await
    }

    /// Step 3 on the blocking pool, and the answer.
    async fn decide_blocking(
        self: Arc<Self>,
        message: MessageContext,
        examined: Examined,
        auth: Option<AuthSignals>,
    ) -> DataVerdict {
        // Only for the hand-off, which cannot give the message back if it is lost.
        let lost = Lost {
            envelope: message.envelope.clone(),
            client: message.client.clone(),
            protocol: message.protocol,
        };
        let this = self.clone();
        let decided = tokio::task::spawn_blocking(move || {
            let mut message = message;
            let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                this.decide(&mut message, examined, auth)
            }));
            (message, decided)
        })
        .await;
        match decided {
            Ok((message, Ok(decided))) => self.answer(message, decided),
            Ok((message, Err(_))) => {
                tracing::error!("the content decisions failed on a message; it is deferred");
                refuse(message, policy_failed("the content decisions failed"))
            }
            Err(e) => {
                tracing::error!("the content decisions were lost: {e}");
                lost.refuse("the content decisions were lost")
            }
        }
    }

    /// The reply to the DATA once the decisions are made; the notices go to the queue.
    fn answer(&self, message: MessageContext, decided: Decided) -> DataVerdict {
        self.queue_notices(decided.notices);
        match decided.refusal {
            None => DataVerdict::accept(message),
            Some(refusal) => refuse(message, refusal),
        }
    }

    /// Queues the notices without holding up the reply: each is committed with the store's
    /// next batch; one queued already (a retried message) is not queued twice.
    fn queue_notices(&self, notices: Vec<hato_store::NewMessage>) {
        for notice in notices {
            let pending = self.store.enqueue(notice);
            tokio::spawn(async move {
                match pending.await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => tracing::warn!("could not queue a notice to admins: {e}"),
                }
            });
        }
    }

    /// A tenant's policies, rules and directory as the stages need them: the cached ones while
    /// the store's versions of them stay, else read again (blocks: store reads).
    fn tenant_facts(&self, tenant: TenantId) -> Result<Arc<TenantFacts>, StoreError> {
        // Read before anything else: a change committed after this read moves it again.
        let generation = self.store.content_policy_generation();
        if let Some(facts) = self.current_facts(tenant, generation) {
            return Ok(facts);
        }
        let versions = self.store.content_policy_versions(tenant)?;
        let cached = self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&tenant)
            .filter(|(_, f)| f.versions == versions)
            .map(|(known, f)| {
                // Still current: at this generation too.
                *known = generation;
                f.clone()
            });
        if let Some(facts) = cached {
            return Ok(facts);
        }
        let malware_policies = self
            .store
            .malware_filters(tenant)?
            .into_iter()
            .map(|p| {
                let decision = malware_policy(&p);
                (p, decision)
            })
            .collect();
        let index = self.directory.index(tenant)?;
        let rules = self.rules.get(tenant, versions.transport_rules, || {
            self.store.transport_rules(tenant).map(|rows| {
                rows.into_iter()
                    .filter_map(|row| {
                        match hato_protection::rules::Rule::from_stored(
                            &row.definition,
                            &row.name,
                            row.priority,
                            row.enabled,
                        ) {
                            Ok(rule) => Some((row.id, rule)),
                            Err(e) => {
                                tracing::warn!(
                                    "tenant {tenant}'s transport rule {} cannot be read: {e}",
                                    row.id
                                );
                                None
                            }
                        }
                    })
                    .collect()
            })
        })?;
        let (spam_policies, tenant_model) = if self.spam.is_some() {
            let model = match self.store.spam_tenant_model(tenant)? {
                Some((bytes, _)) => match TenantModel::from_bytes(&bytes) {
                    Ok(m) => Some(Arc::new(m)),
                    Err(e) => {
                        tracing::warn!(
                            "tenant {tenant}'s personalised spam model cannot be read ({e}); the shipped model alone decides"
                        );
                        None
                    }
                },
                None => None,
            };
            (self.store.spam_filters(tenant)?, model)
        } else {
            (Vec::new(), None)
        };
        // Rules ask for them, and the spam filter (a spoof of the tenant's own domains).
        let accepted_domains = if rules.is_empty() && self.spam.is_none() {
            Vec::new()
        } else {
            self.store
                .domains(Some(tenant))?
                .into_iter()
                .map(|d| d.domain)
                .collect()
        };
        let facts = Arc::new(TenantFacts {
            versions,
            malware_policies,
            index,
            accepted_domains,
            rules,
            spam_policies,
            tenant_model,
        });
        let mut cache = self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= FACTS_CACHED {
            cache.clear();
        }
        cache.insert(tenant, (generation, facts.clone()));
        Ok(facts)
    }

    /// The tenant's cached facts when they are known current at `generation` (no store read).
    fn current_facts(&self, tenant: TenantId, generation: Option<u64>) -> Option<Arc<TenantFacts>> {
        let generation = generation?;
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tenant)
            .filter(|(known, _)| *known == Some(generation))
            .map(|(_, f)| f.clone())
    }

    /// Whether `message` may be examined on the async worker ([`INLINE_MAX_BYTES`]): small, in
    /// memory, no external engine, and every recipient tenant's facts current without a store
    /// read, with rules whose searches over it are short ([`INLINE_SCAN_BYTES`]).
    fn inline(&self, message: &MessageContext) -> bool {
        // A delivery report (RFC 3464 §2: sent from the null reverse-path) may need a store
        // read for the backscatter check: not on the async worker.
        if !self.scanner.engines.is_empty()
            || message.body.len() > INLINE_MAX_BYTES
            || message.body.in_memory().is_none()
            || message.envelope.sender.is_none()
        {
            return false;
        }
        let generation = self.store.content_policy_generation();
        message.envelope.recipients.iter().all(|r| {
            r.tenant_id == NO_TENANT
                || self
                    .current_facts(r.tenant_id, generation)
                    .is_some_and(|f| f.reads_nothing_more() && f.rules_inline(message.body.len()))
                    // The spam stage reads a mailbox's safe and blocked senders (not for an
                    // authenticated client's mail, which it does not filter).
                    && match r.route {
                        Route::Local(m) if self.spam.is_some() && message.client.identity.is_none() => {
                            self.junk.cached(generation, m).is_some()
                        }
                        _ => true,
                    }
        })
    }

    /// Step 1 (blocking): the content once, the built-in scan, each tenant's policies and
    /// rules, the rules' evaluation.
    fn examine(&self, message: &mut MessageContext) -> Result<Examined, Refusal> {
        let raw = match message.body.in_memory() {
            Some(content) => content.to_vec(),
            None => message.body.to_vec().map_err(|e| {
                tracing::error!("could not read a spooled message: {e}");
                deferral(
                    reply::STORE_FAILED,
                    Stage::Malware,
                    format!("The message's spool file could not be read: {e}"),
                )
            })?,
        };
        if let Err(e) = self.scanner.signatures.refresh_if_due() {
            tracing::warn!("malware signatures not reloaded: {e}; the set in use stays");
        }
        let failed = |e: StoreError| {
            tracing::error!("content policies could not be read: {e}");
            policy_failed(&format!("The content policies could not be read: {e}"))
        };
        let mut order: Vec<TenantId> = Vec::new();
        for r in &message.envelope.recipients {
            // `<postmaster>` mail (`NO_TENANT`): the platform's, under the default policy.
            if r.tenant_id != NO_TENANT && !order.contains(&r.tenant_id) {
                order.push(r.tenant_id);
            }
        }
        let mut facts_in_order = Vec::with_capacity(order.len());
        for tenant in order {
            facts_in_order.push((tenant, self.tenant_facts(tenant).map_err(failed)?));
        }
        // One parse of the message for the malware walk and, when a tenant has rules, for the
        // rules' view of it (`RuleMessage`): the MIME structure and the text parts' decoding
        // once, not twice.
        let parser = facts_in_order
            .iter()
            .any(|(_, f)| !f.rules.is_empty())
            .then(RuleMessage::parser);
        let parsed = parser.as_ref().and_then(|p| p.parse(&raw));
        let report = match &parser {
            Some(_) => self.scanner.scan_builtin_parsed(&raw, parsed.as_ref()),
            None => self.scanner.scan_builtin(&raw),
        };
        let mut tenants: HashMap<TenantId, Arc<TenantFacts>> = HashMap::new();
        let mut rules = vec![RecipientRules::default(); message.envelope.recipients.len()];
        let mut skipped = HashMap::new();
        let mut incidents = Vec::new();
        let mut rule_message: Option<RuleMessage> = None;
        for (tenant, facts) in facts_in_order {
            let set = facts.rules.clone();
            if !set.is_empty() {
                let m = rule_message.get_or_insert_with(|| {
                    let mut m = RuleMessage::from_parsed(
                        &raw,
                        parsed.as_ref(),
                        message.envelope.sender.as_ref().map(|s| s.to_string()),
                        Vec::new(),
                        Some(message.client.ip()),
                    );
                    m.authenticated = message.client.identity.is_some();
                    m
                });
                // The tenant's recipients only: a rule sees the recipients of its own tenant.
                let indices: Vec<usize> = message
                    .envelope
                    .recipients
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.tenant_id == tenant)
                    .map(|(i, _)| i)
                    .collect();
                m.recipients = indices
                    .iter()
                    .map(|i| message.envelope.recipients[*i].address.to_string())
                    .collect();
                let evaluation: Evaluation = set.evaluate(m, &facts.view(), self.clock.now());
                if let Some(reason) = evaluation.defer {
                    return Err(Refusal::new(reply::RULE_EVALUATION_DEFERRED, reason));
                }
                self.hits.add(&evaluation);
                for reason in &evaluation.skipped {
                    tracing::warn!("tenant {tenant}: {}", reason.text);
                }
                let addresses = incident_report_addresses(&evaluation);
                if !addresses.is_empty() {
                    incidents.push(Incident {
                        tenant,
                        addresses,
                        rules: reported_rules(&evaluation),
                        recipients: m.recipients.clone(),
                    });
                }
                skipped.insert(tenant, evaluation.skipped);
                for (slot, result) in indices.into_iter().zip(evaluation.recipients) {
                    rules[slot] = result;
                }
            }
            tenants.insert(tenant, facts);
        }
        // The classifier's features, once for every tenant (each scores them with its own
        // personalisation when deciding).
        // An authenticated client's mail to outside recipients is classified too: the outbound
        // spam verdict (`decide`) picks its delivery pool.
        let outbound = message
            .envelope
            .recipients
            .iter()
            .any(|r| r.route == Route::Remote);
        let (features, gtube) = match &self.spam {
            Some(spam)
                if !tenants.is_empty() && (message.client.identity.is_none() || outbound) =>
            {
                (
                    Some(spam.classifier.extract(&raw)),
                    spam_stage::is_gtube(&raw),
                )
            }
            _ => (None, false),
        };
        let carried = self.carried_originals(message, features.as_ref());
        // It borrows the content, which the examination keeps.
        drop(parsed);
        Ok(Examined {
            raw: Arc::new(raw),
            report,
            tenants,
            rules,
            skipped,
            incidents,
            features,
            gtube,
            carried,
        })
    }

    /// For a delivery report (the classifier found the Message-ID of the message it reports
    /// on): per recipient, whether hato carried that message from this recipient — Exchange's
    /// NDR backscatter option marks only reports about mail the organisation never sent
    /// (`exchange-online-behaviour.md` §6, `MarkAsSpamNdrBackscatter`). One indexed read per
    /// recipient, at most [`BACKSCATTER_CHECKS`]; a failed read leaves the report unverified.
    fn carried_originals(
        &self,
        message: &MessageContext,
        features: Option<&Features>,
    ) -> Vec<bool> {
        let Some(id) = features.and_then(|f| f.bounce_original_message_id.as_deref()) else {
            return Vec::new();
        };
        let id = format!("<{}>", id.trim_start_matches('<').trim_end_matches('>'));
        message
            .envelope
            .recipients
            .iter()
            .take(BACKSCATTER_CHECKS)
            .map(|r| {
                self.store
                    .carried_message_from(&id, &r.address.to_string())
                    .unwrap_or_else(|e| {
                        tracing::warn!(
                            "could not look up the message a delivery report is about: {e}"
                        );
                        false
                    })
            })
            .collect()
    }

    /// Step 3 (blocking): each recipient's decisions, recorded in its slot; the content each
    /// recipient gets; the recipients rules add. `Some(refusal)` when every recipient is
    /// refused: the reply to the DATA.
    fn decide(
        &self,
        message: &mut MessageContext,
        examined: Examined,
        auth: Option<AuthSignals>,
    ) -> Decided {
        let Examined {
            raw,
            report,
            tenants,
            rules,
            skipped,
            incidents,
            features,
            gtube,
            carried,
        } = examined;
        // What the spam filter reads of the envelope and header, once.
        let envelope_sender = message
            .envelope
            .sender
            .as_ref()
            .map(|s| s.to_string().to_ascii_lowercase());
        let from_address = message
            .headers
            .first("from")
            .and_then(spam_stage::from_address);
        // The From address its domain vouched for (a DMARC-aligned pass, RFC 7489 §3.1): an
        // identity for group restrictions now and, queued with the message, at delivery. Else
        // what the edge set: the MAIL FROM address an on-premises connector vouches for.
        let dmarc_vouched = auth
            .as_ref()
            .and_then(|a| a.authenticated_domain.as_deref())
            .and_then(|domain| {
                from_address.as_ref().filter(|f| {
                    f.rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                })
            })
            .cloned();
        let connector_vouched = message.client.attribution().and_then(|a| a.vouched_sender);
        message.domain_authenticated = dmarc_vouched.or(connector_vouched);
        // An SPF hard fail (RFC 7208 §8.4: the domain says this client may not send for it) or
        // a DMARC fail (RFC 7489 §6.6.2) marks the sender as likely forged: the message is
        // queued with it, and none of its failures sends an NDR (no backscatter, issue 10
        // item 7).
        message.sender_auth_failed = auth.as_ref().is_some_and(|a| {
            a.spf == hato_protection::spam::AuthResult::Fail
                || a.dmarc == hato_protection::spam::AuthResult::Fail
        });
        // The tenant the client's on-premises connector attributes it to: its own domains are
        // not spoofed by its own server (the connector vouches for them).
        let attributed_tenant = message.client.attribution().map(|a| a.tenant);
        let group_sender_address = message.envelope.sender.as_ref().map(|s| s.to_string());
        let group_sender_identity = message.client.authenticated_mailbox();
        // Each tenant's view of the content (its personalisation), computed once.
        let mut content_by_tenant: HashMap<TenantId, ContentSignals> = HashMap::new();
        // Per recipient: the spam filter's decision, the message's language, the client's
        // country (for its antispam report).
        let mut spam_decisions: Vec<Option<SpamOutcomeStamp>> = Vec::new();
        let mut spam_headers: Vec<String> = Vec::new();
        // The trace id now, so the notices can name the message; the commit keeps it.
        let trace_id = message
            .trace_id
            .get_or_insert_with(|| id::new_trace_id(self.clock.as_ref()))
            .clone();
        // Recipients under each malware policy that asks for an admin notification.
        let mut notify: Vec<Notify> = Vec::new();
        let default_policy = {
            let p = MalwareFilterPolicy::default();
            let d = malware_policy(&p);
            (p, d)
        };
        let mut alerts: HashMap<String, Option<Arc<Vec<u8>>>> = HashMap::new();
        // Per recipient: the rules' content actions (recipients with the same list share
        // one changed copy) and the SCL a rule set.
        let mut content_actions: Vec<Vec<RuleAction>> = Vec::new();
        let mut scl: Vec<Option<i8>> = Vec::new();
        let mut categories: Vec<Option<&'static str>> = Vec::new();
        let mut added: Vec<(Address, TenantId, Reason, usize)> = Vec::new();
        // The outbound spam verdict of any outside recipient: the message's pool.
        let mut outbound_spam = false;
        for (i, (r, rr)) in message
            .envelope
            .recipients
            .iter_mut()
            .zip(rules)
            .enumerate()
        {
            let address = r.address.to_string();
            let facts = tenants.get(&r.tenant_id);
            // A group's sender restrictions again, with what sender authentication found: RCPT
            // accepted the group provisionally when a DMARC-authenticated sender would pass.
            if let (Route::Group(g), Some(f)) = (r.route, facts)
                && let Some(group) = f.index.group(g)
                && let Err(refusal) = check_sender(
                    &f.index,
                    group,
                    GroupSender {
                        address: group_sender_address.as_deref(),
                        identity: group_sender_identity,
                        domain_authenticated: message.domain_authenticated.as_deref(),
                    },
                )
            {
                r.verdicts.push(RecipientVerdict {
                    action: Action::Reject(refusal.reply),
                    reason: *refusal.reason,
                });
            }
            let (stored, policy) = facts
                .and_then(|f| {
                    f.malware_policies.iter().find(|(p, _)| {
                        p.applies_to(&address, |g| f.view().is_member_of(&address, g))
                    })
                })
                .map(|(p, d)| (p, d))
                .unwrap_or((&default_policy.0, &default_policy.1));
            let malware = decide(&report, policy);
            let action = match &malware.outcome {
                MalwareOutcome::Deliver => Action::Deliver,
                MalwareOutcome::Quarantine | MalwareOutcome::QuarantineAndDeliverAlert { .. } => {
                    Action::Quarantine {
                        kind: QuarantineKind::Malware,
                        policy: stored.name.clone(),
                    }
                }
                MalwareOutcome::Reject => {
                    let types = match &malware.verdict {
                        MalwareVerdict::BlockedFileType(m) => {
                            let mut t: Vec<&str> = m.iter().map(|m| m.file_type.as_str()).collect();
                            t.sort_unstable();
                            t.dedup();
                            t.join(", ")
                        }
                        _ => String::new(),
                    };
                    Action::Reject(reply::blocked_file_type(&types))
                }
            };
            if matches!(action, Action::Quarantine { .. }) {
                // The malware policy's `QuarantineTag` governs the item (Exchange); a user may
                // still only request release of malware (`QuarantinePermissions::for_kind`).
                r.content.quarantine_tag = Some(stored.quarantine_tag.clone());
            }
            for reason in malware.reasons {
                r.verdicts.push(RecipientVerdict {
                    action: action.clone(),
                    reason: reason.figure("policy", stored.name.clone()),
                });
            }
            if let MalwareOutcome::QuarantineAndDeliverAlert { alert_text } = &malware.outcome {
                let copy = alerts
                    .entry(alert_text.clone())
                    .or_insert_with(|| {
                        match alert::replace_attachments(&raw, alert_text, &report) {
                            Ok(c) => Some(Arc::new(c)),
                            Err(e) => {
                                tracing::warn!(
                                    "the malware alert copy could not be built ({e}); the message is only quarantined"
                                );
                                None
                            }
                        }
                    })
                    .clone();
                r.content.alert = copy;
            }
            categories.push(malware.verdict.category());
            if matches!(malware.verdict, MalwareVerdict::Malware(_))
                && (stored.enable_internal_sender_admin_notifications
                    || stored.enable_external_sender_admin_notifications)
            {
                match notify
                    .iter_mut()
                    .find(|n| n.tenant == r.tenant_id && n.policy.name == stored.name)
                {
                    Some(n) => n.recipients.push(address.clone()),
                    None => notify.push(Notify {
                        tenant: r.tenant_id,
                        policy: stored.clone(),
                        outcome: malware.outcome.clone(),
                        recipients: vec![address.clone()],
                    }),
                }
            }
            let mut actions = Vec::new();
            let mut rule_scl = None;
            if action.delivers() {
                for reason in skipped.get(&r.tenant_id).into_iter().flatten() {
                    r.verdicts.push(RecipientVerdict {
                        action: Action::Deliver,
                        reason: reason.clone(),
                    });
                }
                for d in rr.decisions {
                    let rule_name = d.reason.rule.clone().unwrap_or_default();
                    let mut not_applied: Option<String> = None;
                    let action = match &d.action {
                        RuleAction::Reject {
                            code,
                            enhanced_code,
                            text,
                        } => Action::Reject(Reply::transport_rule(*code, enhanced_code, text)),
                        RuleAction::Delete => Action::Delete,
                        RuleAction::Quarantine => Action::Quarantine {
                            kind: QuarantineKind::TransportRule,
                            policy: rule_name.to_string(),
                        },
                        RuleAction::Redirect { to } => {
                            let to: Vec<Address> =
                                to.iter().filter_map(|a| Address::parse(a).ok()).collect();
                            for a in &to {
                                added.push((a.clone(), r.tenant_id, d.reason.clone(), i));
                            }
                            Action::Redirect(to)
                        }
                        RuleAction::BlindCopyTo { to }
                        | RuleAction::AddToRecipients { to }
                        | RuleAction::CopyTo { to } => {
                            for a in to.iter().filter_map(|a| Address::parse(a).ok()) {
                                added.push((a, r.tenant_id, d.reason.clone(), i));
                            }
                            if !matches!(d.action, RuleAction::BlindCopyTo { .. }) {
                                // Named in the To or Cc field too.
                                actions.push(d.action.clone());
                            }
                            Action::Deliver
                        }
                        RuleAction::SetScl { scl } => {
                            rule_scl = Some(*scl);
                            Action::Deliver
                        }
                        RuleAction::SetHeader { .. }
                        | RuleAction::RemoveHeader { .. }
                        | RuleAction::PrependSubject { .. }
                        | RuleAction::Disclaimer { .. } => {
                            actions.push(d.action.clone());
                            Action::Deliver
                        }
                        RuleAction::RouteOutboundConnector { connector } => {
                            // Kept with the queued recipient: the outbound agent sends it
                            // through this connector (Exchange's RouteMessageOutboundConnector).
                            match self.outbound_connector_for(r.tenant_id, r.route, connector) {
                                Ok(name) => r.content.connector = Some(name),
                                Err(why) => not_applied = Some(why),
                            }
                            Action::Deliver
                        }
                        RuleAction::IncidentReport { .. } | RuleAction::Audited { .. } => {
                            Action::Deliver
                        }
                    };
                    let mut reason = d.reason;
                    if let Some(why) = not_applied {
                        reason.text = format!(
                            "{} (route-message-outbound-connector not applied: {why})",
                            reason.text
                        );
                        reason = reason.figure("not_applied", why);
                    }
                    r.verdicts.push(RecipientVerdict { action, reason });
                }
            }
            // The spam filter, for a recipient every stage so far delivers to.
            let mut spam_decision = None;
            let mut spam_header = String::new();
            // Outbound mail (an outside recipient of a tenant's sender: submission or relay
            // through an on-premises connector) is not filtered as inbound: judged spam, it
            // leaves through the high-risk delivery pool (reference §2.5, §7.2), not refused.
            if r.route == Route::Remote {
                if let (Some(spam), Some(features)) = (&self.spam, &features)
                    && r.verdicts.iter().all(|v| v.action.delivers())
                {
                    let content = content_by_tenant
                        .entry(r.tenant_id)
                        .or_insert_with(|| {
                            let model = facts.and_then(|f| f.tenant_model.as_deref());
                            let c = spam.classifier.signals(features, model);
                            if gtube {
                                spam_stage::gtube_signals(c)
                            } else {
                                c
                            }
                        })
                        .clone();
                    if let Some(reason) =
                        hato_protection::spam::outbound::outbound_verdict(&content, rule_scl)
                    {
                        outbound_spam = true;
                        r.verdicts.push(RecipientVerdict {
                            action: Action::Deliver,
                            reason,
                        });
                    }
                }
            } else if let (Some(spam), Some(features), Some(facts)) = (&self.spam, &features, facts)
                && r.verdicts.iter().all(|v| v.action.delivers())
            {
                let content = content_by_tenant
                    .entry(r.tenant_id)
                    .or_insert_with(|| {
                        let c = spam
                            .classifier
                            .signals(features, facts.tenant_model.as_deref());
                        if gtube {
                            spam_stage::gtube_signals(c)
                        } else {
                            c
                        }
                    })
                    .clone();
                let mut content = content;
                if carried.get(i).copied().unwrap_or(false)
                    && let Some(at) = content
                        .asf
                        .iter()
                        .position(|a| a.option == Asf::MarkAsSpamNdrBackscatter)
                {
                    let hit = content.asf.remove(at);
                    content.reasons.push(Reason::new(
                        Stage::Spam,
                        format!(
                            "A delivery report about a message hato carried from {address}: not backscatter ({})",
                            hit.evidence
                        ),
                    ));
                }
                let default_record;
                let record = match spam_policy_for(&facts.spam_policies, &address, |g| {
                    facts.view().is_member_of(&address, g)
                }) {
                    Some(record) => record,
                    None => {
                        default_record = SpamFilterPolicyRecord::default();
                        &default_record
                    }
                };
                let spoofs = attributed_tenant != Some(r.tenant_id)
                    && auth
                        .as_ref()
                        .is_some_and(|a| spoofs_own_domain(a, &facts.accepted_domains));
                let mut tenant_auth = auth.clone();
                if spoofs && let Some(a) = tenant_auth.as_mut() {
                    a.authentication_results = authentication_results_for_tenant(a, true);
                }
                let signals = SpamSignals {
                    content,
                    auth: tenant_auth.clone().unwrap_or_default(),
                    ip_allow_listed: is_allow_listed(r),
                    rule_scl,
                    envelope_sender: envelope_sender.clone(),
                    from_address: from_address.clone(),
                    spoofs_own_domain: spoofs,
                };
                let mut d = hato_protection::spam::decide::decide(&signals, &record.policy);
                // The mailbox's own safe and blocked senders (its junk email configuration,
                // `spam::junk`): per recipient, after the filter's verdict.
                if let Route::Local(mailbox) = r.route {
                    match self.junk.lists(self.store.as_ref(), mailbox) {
                        Ok(lists) => {
                            let m = hato_protection::spam::junk::user_list_match(&lists, &signals);
                            d = hato_protection::spam::junk::apply_user_lists(d, &m);
                        }
                        Err(e) => {
                            tracing::error!(
                                "a mailbox's junk email configuration could not be read: {e}"
                            );
                            return Decided {
                                refusal: Some(deferral(
                                    reply::POLICY_FAILED,
                                    Stage::Spam,
                                    format!(
                                        "The junk email configuration of {address} could not be read: {e}"
                                    ),
                                )),
                                notices: Vec::new(),
                            };
                        }
                    }
                }
                let applied =
                    spam_stage::apply(&d, &record.name, &signals.content, tenant_auth.as_ref(), r);
                if matches!(
                    d.outcome,
                    hato_protection::spam::decide::SpamOutcome::Quarantine { .. }
                ) {
                    // The policy's `*QuarantineTag` for the verdict governs the item (Exchange).
                    r.content.quarantine_tag =
                        Some(record.policy.quarantine_tag(d.quarantine_kind()).to_owned());
                }
                spam_header = applied.header;
                if let Some(text) = applied.subject_prefix {
                    actions.push(RuleAction::PrependSubject { text });
                }
                if !applied.redirect.is_empty() {
                    let why = Reason::new(
                        Stage::Spam,
                        format!("Redirected by the anti-spam policy {:?}", record.name),
                    )
                    .rule(record.name.clone());
                    for a in applied.redirect {
                        added.push((a, r.tenant_id, why.clone(), i));
                    }
                }
                spam_decision = Some((d, signals.content.language, signals.auth.country));
            }
            content_actions.push(actions);
            scl.push(rule_scl);
            spam_headers.push(spam_header);
            spam_decisions.push(spam_decision);
        }
        message.high_risk = outbound_spam;
        // Once per message, however many recipients: the filter itself judged it spam (not a
        // tenant's blocked-sender list or a rule, which say nothing of the IP).
        if let Some(throttle) = &self.throttle
            && spam_decisions
                .iter()
                .flatten()
                .any(|(d, _, _)| d.sfv == Sfv::Spm && d.scl >= 5)
        {
            throttle.record_spam(message.client.ip(), self.clock.now());
        }

        // Recipients the rules added (redirect, Bcc, To, Cc): routed as RCPT would have,
        // each once, with the content of the recipient whose rule added it.
        for (address, tenant, reason, source) in added {
            let canonical = address.to_string();
            if message
                .envelope
                .recipients
                .iter()
                .any(|r| r.address.to_string().eq_ignore_ascii_case(&canonical))
            {
                continue;
            }
            let (tenant_id, route) = match resolve(&self.directory, &address) {
                Ok(Resolution::Mailbox {
                    tenant, mailbox, ..
                }) => (tenant, Route::Local(mailbox)),
                Ok(Resolution::Group { tenant, group, .. }) => (tenant, Route::Group(group)),
                Ok(Resolution::Postmaster { tenant: t }) => {
                    (t.unwrap_or(NO_TENANT), Route::Postmaster)
                }
                // Unknown in one of the tenants' domains: relay, which asks the directory
                // again at delivery and fails it with an NDR if no one answers.
                Ok(
                    Resolution::UnknownInRelayDomain { tenant }
                    | Resolution::UnknownInAuthoritativeDomain { tenant },
                ) => (tenant, Route::Relay),
                Ok(Resolution::NotAccepted) => (tenant, Route::Remote),
                Err(e) => {
                    tracing::error!("a rule's added recipient could not be routed: {e}");
                    return Decided {
                        refusal: Some(policy_failed(&format!(
                            "The recipient {canonical} a transport rule added could not be routed: {e}"
                        ))),
                        notices: Vec::new(),
                    };
                }
            };
            let text = format!(
                "Added as a recipient by transport rule {:?}",
                reason.rule.as_deref().unwrap_or_default()
            );
            let mut added_reason = Reason::new(Stage::TransportRule, text);
            added_reason.rule = reason.rule.clone();
            added_reason.figures = reason.figures.clone();
            message.envelope.recipients.push(Recipient {
                address,
                tenant_id,
                route,
                verdicts: vec![RecipientVerdict {
                    action: Action::Deliver,
                    reason: added_reason,
                }],
                content: RecipientContent::default(),
                dsn: Default::default(),
            });
            content_actions.push(content_actions.get(source).cloned().unwrap_or_default());
            scl.push(scl.get(source).copied().flatten());
            categories.push(None);
            spam_headers.push(spam_headers.get(source).cloned().unwrap_or_default());
            spam_decisions.push(spam_decisions.get(source).cloned().flatten());
        }

        // Content the rules changed: once per distinct list of actions.
        let mut changed: Vec<Changed> = Vec::new();
        for (i, r) in message.envelope.recipients.iter_mut().enumerate() {
            let actions = &content_actions[i];
            if actions.is_empty() {
                continue;
            }
            let at = match changed.iter().position(|(a, _, _)| a == actions) {
                Some(at) => at,
                None => {
                    let header = header_block(&raw);
                    let body = raw.get(header.len() + 2..).unwrap_or_default();
                    let m = apply_content_actions(header, body, actions);
                    let mut content = m.header;
                    content.extend_from_slice(b"\r\n");
                    content.extend_from_slice(&m.body);
                    changed.push((actions.clone(), Arc::new(content), m.disclaimer));
                    changed.len() - 1
                }
            };
            let (_, content, disclaimer) = &changed[at];
            if *disclaimer == Some(DisclaimerOutcome::Reject) {
                let rule = actions
                    .iter()
                    .find(|a| matches!(a, RuleAction::Disclaimer { .. }))
                    .map(|a| a.name())
                    .unwrap_or_default();
                r.verdicts.push(RecipientVerdict {
                    action: Action::Reject(reply::DISCLAIMER_REJECTED),
                    reason: Reason::new(
                        Stage::TransportRule,
                        "The disclaimer could not be inserted and its fallback action is reject",
                    )
                    .figure("action", rule),
                });
            } else {
                r.content.changed = Some(content.clone());
            }
        }

        // Each recipient's antispam report.
        let ip = message.client.ip();
        let helo = header_safe(message.client.helo_name());
        let ptr = header_safe(message.client.ptr.as_deref().unwrap_or_default());
        for (i, r) in message.envelope.recipients.iter_mut().enumerate() {
            let spam = spam_decisions.get(i).and_then(Option::as_ref);
            r.content.stamp = antispam_report(&AntispamFields {
                ip: &ip.to_string(),
                helo: &helo,
                ptr: &ptr,
                allow_listed: is_allow_listed(r),
                scl: scl.get(i).copied().flatten(),
                category: categories.get(i).copied().flatten(),
                spam: spam.map(|(d, _, _)| d),
                language: spam.and_then(|(_, l, _)| l.as_deref()),
                country: spam.and_then(|(_, _, c)| c.as_deref()),
            });
            if let Some(header) = spam_headers.get(i) {
                r.content.stamp.push_str(header);
            }
        }

        // Every recipient refused: that is the reply to the DATA (no NDR, nothing kept).
        let mut refusals = message.envelope.recipients.iter().map(|r| {
            r.verdicts.iter().find_map(|v| match &v.action {
                Action::Deliver => None,
                Action::Reject(reply) => Some(Some(Refusal::new(reply.clone(), v.reason.clone()))),
                _ => Some(None),
            })
        });
        let first = refusals.next().flatten().flatten();
        let refusal = match first {
            Some(refusal) if refusals.all(|r| matches!(r, Some(Some(_)))) => Some(refusal),
            _ => None,
        };
        let notices = self.notices(
            message, &trace_id, &raw, &report, &tenants, notify, incidents,
        );
        Decided { refusal, notices }
    }

    /// The malware admin notifications (one per policy that asks for one, to its internal or
    /// external admin address by where the sender is) and the rules' incident reports (one per
    /// address, with the rules that asked), built now and queued once the DATA is answered.
    #[allow(clippy::too_many_arguments)]
    fn notices(
        &self,
        message: &MessageContext,
        trace_id: &str,
        raw: &[u8],
        report: &ScanReport,
        tenants: &HashMap<TenantId, Arc<TenantFacts>>,
        notify: Vec<Notify>,
        incidents: Vec<Incident>,
    ) -> Vec<hato_store::NewMessage> {
        if notify.is_empty() && incidents.is_empty() {
            return Vec::new();
        }
        let summary = crate::summarize(message.headers.block());
        let message_id = if summary.message_id.is_empty() {
            // What the commit adds (crate::inbound).
            format!("<{trace_id}@{}>", self.hostname)
        } else {
            summary.message_id.clone()
        };
        let sender = message
            .envelope
            .sender
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let now = self.clock.now();
        let domain_of = |rs: &[String]| {
            rs.first()
                .and_then(|a| a.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for Notify {
            tenant,
            policy,
            outcome,
            recipients,
        } in notify
        {
            let internal = tenants.get(&tenant).is_some_and(|f| {
                !sender.is_empty()
                    && f.view()
                        .sender_in_organization(&sender, message.client.identity.is_some())
            });
            let (scope, enabled, admin) = if internal {
                (
                    SenderScope::Internal,
                    policy.enable_internal_sender_admin_notifications,
                    policy.internal_sender_admin_address.clone(),
                )
            } else {
                (
                    SenderScope::External,
                    policy.enable_external_sender_admin_notifications,
                    policy.external_sender_admin_address.clone(),
                )
            };
            let Some(admin) = admin.filter(|a| enabled && !a.trim().is_empty()) else {
                continue;
            };
            let to = match notification_recipient(&self.directory, &admin, tenant) {
                Ok(to) => to,
                Err(e) => {
                    tracing::warn!("no malware admin notification to {admin}: {e}");
                    continue;
                }
            };
            let org_domain = domain_of(&recipients);
            out.push(malware_admin_notification(
                &MalwareNotice {
                    scope,
                    org_domain: &org_domain,
                    envelope_sender: &sender,
                    from: &summary.from,
                    recipients: &recipients,
                    subject: &summary.subject,
                    message_id: &message_id,
                    trace_id,
                    received: now,
                    detections: &report.detections,
                    policy: &policy.name,
                    outcome: &outcome,
                },
                to,
                &self.hostname,
                now,
            ));
        }
        // A report attaches the original as the recipients would get it: a message with
        // malware in it is represented by its header fields alone.
        let original = if report.detections.is_empty() {
            raw
        } else {
            header_block(raw)
        };
        for incident in incidents {
            let org_domain = domain_of(&incident.recipients);
            for address in &incident.addresses {
                let to = match notification_recipient(&self.directory, address, incident.tenant) {
                    Ok(to) => to,
                    Err(e) => {
                        tracing::warn!("no incident report to {address}: {e}");
                        continue;
                    }
                };
                out.push(incident_report(
                    &IncidentReport {
                        org_domain: &org_domain,
                        envelope_sender: &sender,
                        from: &summary.from,
                        recipients: &incident.recipients,
                        subject: &summary.subject,
                        message_id: &message_id,
                        trace_id,
                        received: now,
                        rules: &incident.rules,
                        original,
                        original_size: raw.len() as u64,
                        max_attached: INCIDENT_REPORT_MAX_ORIGINAL,
                    },
                    to,
                    &self.hostname,
                    now,
                ));
            }
        }
        out
    }
}

/// What the DATA is answered with when a blocking step was lost (it cannot hand the message
/// back then; the client is told to retry, and the body's spool file went with it).
struct Lost {
    envelope: hato_core::message::Envelope,
    client: hato_core::ClientContext,
    protocol: &'static str,
}

impl Lost {
    fn refuse(&self, why: &str) -> DataVerdict {
        let message = MessageContext {
            envelope: self.envelope.clone(),
            client: self.client.clone(),
            protocol: self.protocol,
            headers: Headers::parse(b"", 0),
            body: MessageBody::default(),
            trace_id: None,
            domain_authenticated: None,
            sender_auth_failed: false,
            high_risk: false,
        };
        refuse(message, policy_failed(why))
    }
}

/// How far the first blocking step got.
enum Step {
    /// Examined; the external engines come next.
    Examined(Box<Examined>),
    /// Examined and decided (no external engine).
    Decided(Decided),
}

/// What the decisions come to: the refusal of the DATA when every recipient is refused, and
/// the notices to queue.
struct Decided {
    refusal: Option<Refusal>,
    notices: Vec<hato_store::NewMessage>,
}

/// A content the rules changed: the actions, the result, what became of a disclaimer.
type Changed = (Vec<RuleAction>, Arc<Vec<u8>>, Option<DisclaimerOutcome>);

/// The reply to the DATA for a refusal; the message goes back to the session, which drops it.
fn refuse(message: MessageContext, refusal: Refusal) -> DataVerdict {
    DataVerdict {
        message,
        verdict: Verdict::Reject(refusal),
    }
}

fn policy_failed(why: &str) -> Refusal {
    deferral(reply::POLICY_FAILED, Stage::Malware, why)
}

/// The store's policy as the malware decision takes it.
fn malware_policy(p: &MalwareFilterPolicy) -> MalwarePolicy {
    MalwarePolicy {
        enable_file_filter: p.enable_file_filter,
        file_types: p.file_types.clone(),
        file_type_action: match p.file_type_action {
            hato_store::FileTypeAction::Reject => FileTypeAction::Reject,
            hato_store::FileTypeAction::Quarantine => FileTypeAction::Quarantine,
        },
        action: match p.action {
            hato_store::MalwareAction::DeleteMessage => MalwareAction::DeleteMessage,
            hato_store::MalwareAction::DeleteAttachmentAndUseDefaultAlert => {
                MalwareAction::DeleteAttachmentAndUseDefaultAlert
            }
            hato_store::MalwareAction::DeleteAttachmentAndUseCustomAlert => {
                MalwareAction::DeleteAttachmentAndUseCustomAlert
            }
        },
        custom_alert_text: Some(p.custom_alert_text.clone()).filter(|t| !t.trim().is_empty()),
        encrypted_archive_action: match p.encrypted_archive_action {
            hato_store::EncryptedArchiveAction::Pass => EncryptedArchiveAction::Pass,
            hato_store::EncryptedArchiveAction::Quarantine => EncryptedArchiveAction::Quarantine,
        },
        enable_internal_sender_admin_notifications: p.enable_internal_sender_admin_notifications,
        internal_sender_admin_address: p.internal_sender_admin_address.clone(),
        enable_external_sender_admin_notifications: p.enable_external_sender_admin_notifications,
        external_sender_admin_address: p.external_sender_admin_address.clone(),
    }
}

/// A name as a field of the antispam report may carry it: letters, digits and `.-_:[]`, each
/// other character `?` — nothing the client chose can end the field or add one (`;`).
fn header_safe(name: &str) -> String {
    name.chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// What one recipient's antispam report says.
pub struct AntispamFields<'a> {
    pub ip: &'a str,
    pub helo: &'a str,
    pub ptr: &'a str,
    /// The tenant's connection filter allow-lists the client (`IPV:CAL`).
    pub allow_listed: bool,
    /// The SCL a transport rule set (`-SetSCL`).
    pub scl: Option<i8>,
    /// The malware filter's category (`MALW`, `FTBP`) for a delivered alert copy.
    pub category: Option<&'static str>,
    /// The spam filter's decision, when it ran for the recipient: its SCL, SFV, CAT, BCL and
    /// SRV replace what the fields above would give.
    pub spam: Option<&'a SpamDecision>,
    /// `LANG`: the message's language (ISO 639-1).
    pub language: Option<&'a str>,
    /// `CTRY`: the client's country (ISO 3166-1 alpha-2).
    pub country: Option<&'a str>,
}

/// `X-Hato-Antispam-Report`, in the grammar of Exchange's `X-Forefront-Antispam-Report`
/// (`exchange-online-behaviour.md` §6.5): `CIP` the client IP, `CTRY` the client's country,
/// `LANG` the message's language, `SCL`, `SRV` (`BULK` at or above the bulk threshold), `IPV`
/// (`CAL` allow-listed, else `NLI`), `SFV` (the spam filter's stamp; `SKN` when the allow list
/// or an SCL −1 rule skips filtering, `SKS` when a rule set 5–9), `H` the HELO name, `PTR` the
/// client's name, `CAT`, `BCL` (Exchange writes it in `X-Microsoft-Antispam`), `DIR:INB`.
pub fn antispam_report(f: &AntispamFields<'_>) -> String {
    let (scl, sfv, category, bcl, srv) = match f.spam {
        Some(d) => (
            d.scl.to_string(),
            d.sfv.as_str(),
            d.verdict.category().or(f.category),
            d.bcl.to_string(),
            if d.bulk { "BULK" } else { "" },
        ),
        None => {
            let (scl, sfv) = match (f.allow_listed, f.scl) {
                (_, Some(-1)) | (true, None) => ("-1".to_string(), "SKN"),
                (_, Some(s)) if s >= 5 => (s.to_string(), "SKS"),
                (true, Some(s)) => (s.to_string(), "SKN"),
                (false, Some(s)) => (s.to_string(), ""),
                (false, None) => (String::new(), ""),
            };
            (scl, sfv, f.category, String::new(), "")
        }
    };
    format!(
        "X-Hato-Antispam-Report: CIP:{};CTRY:{};LANG:{};SCL:{scl};SRV:{srv};IPV:{};SFV:{sfv};H:{};PTR:{};CAT:{};BCL:{bcl};DIR:INB;\r\n",
        f.ip,
        header_safe(f.country.unwrap_or_default()),
        header_safe(f.language.unwrap_or_default()),
        if f.allow_listed { "CAL" } else { "NLI" },
        f.helo,
        f.ptr,
        category.unwrap_or("NONE"),
    )
}

/// The content stages around an inner policy (the directory's, in `hato serve`): every hook
/// but end-of-data is the inner policy's.
pub struct ContentPolicy<P> {
    inner: P,
    pipeline: Option<Arc<ContentPipeline>>,
}

impl<P> ContentPolicy<P> {
    /// `pipeline` `None`: the stages do not run (`[content] pipeline = false`).
    pub fn new(inner: P, pipeline: Option<Arc<ContentPipeline>>) -> Self {
        ContentPolicy { inner, pipeline }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: SmtpPolicy + 'static> SmtpPolicy for ContentPolicy<P> {
    fn connect(&self, client: &hato_core::ClientContext) -> Decision<Verdict> {
        self.inner.connect(client)
    }

    fn ehlo(&self, client: &hato_core::ClientContext, host: &str) -> Decision<Verdict> {
        self.inner.ehlo(client, host)
    }

    fn mail(
        &self,
        client: &hato_core::ClientContext,
        sender: Option<&Address>,
    ) -> Decision<Verdict> {
        self.inner.mail(client, sender)
    }

    fn rcpt(
        &self,
        client: &hato_core::ClientContext,
        sender: Option<&Address>,
        recipient: &Address,
    ) -> Decision<RcptVerdict> {
        self.inner.rcpt(client, sender, recipient)
    }

    fn cut(&self, client: &hato_core::ClientContext, refusal: &Refusal) {
        self.inner.cut(client, refusal)
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        let inner = self.inner.end_of_data(message);
        let Some(pipeline) = self.pipeline.clone() else {
            return inner;
        };
        Decision::later(async move {
            let verdict = match inner {
                Decision::Ready(v) => v,
                Decision::Pending(f) => f.await,
            };
            if verdict.verdict != Verdict::Accept {
                return verdict;
            }
            pipeline.run(verdict.message).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_antispam_report_follows_exchanges_grammar() {
        let f = |allow_listed, scl, category| {
            antispam_report(&AntispamFields {
                ip: "192.0.2.1",
                helo: "mail.fabrikam.test",
                ptr: "mail.fabrikam.test",
                allow_listed,
                scl,
                category,
                spam: None,
                language: None,
                country: None,
            })
        };
        assert_eq!(
            f(false, None, None),
            "X-Hato-Antispam-Report: CIP:192.0.2.1;CTRY:;LANG:;SCL:;SRV:;IPV:NLI;SFV:;H:mail.fabrikam.test;PTR:mail.fabrikam.test;CAT:NONE;BCL:;DIR:INB;\r\n"
        );
        assert!(f(true, None, None).contains(";SCL:-1;SRV:;IPV:CAL;SFV:SKN;"));
        assert!(f(false, Some(-1), None).contains(";SCL:-1;SRV:;IPV:NLI;SFV:SKN;"));
        assert!(f(false, Some(6), None).contains(";SCL:6;SRV:;IPV:NLI;SFV:SKS;"));
        assert!(f(false, Some(2), None).contains(";SCL:2;"));
        assert!(f(false, None, Some("MALW")).contains(";CAT:MALW;"));
        // The spam filter's decision fills SCL, SRV, SFV, CAT, BCL; LANG and CTRY come along.
        let signals = hato_protection::spam::SpamSignals {
            content: hato_protection::spam::ContentSignals {
                scl: 1,
                bcl: 8,
                ..Default::default()
            },
            ..Default::default()
        };
        let d = hato_protection::spam::decide::decide(&signals, &Default::default());
        let report = antispam_report(&AntispamFields {
            ip: "192.0.2.1",
            helo: "h",
            ptr: "p",
            allow_listed: false,
            scl: None,
            category: None,
            spam: Some(&d),
            language: Some("ja"),
            country: Some("JP;SCL:-1"),
        });
        assert!(
            report.contains("CTRY:JP?SCL:-1;LANG:ja;SCL:6;SRV:BULK;IPV:NLI;SFV:SPM;"),
            "{report}"
        );
        assert!(report.contains(";CAT:BULK;BCL:8;DIR:INB;"), "{report}");
    }

    #[tokio::test]
    async fn large_messages_take_turns_within_the_scan_budget() {
        let budget = ScanBudget::new(1);
        let first = budget.turn(800 * 1024).await;
        assert!(first.is_some());
        // A second 800 KiB message does not fit beside the first: it waits.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.turn(800 * 1024),
        )
        .await;
        assert!(waiting.is_err(), "the second message must wait its turn");
        // Small ones fit beside it, and one bigger than the whole budget takes all of it.
        assert!(budget.turn(100).await.is_some());
        drop(first);
        let all = budget.turn(50 * 1024 * 1024).await;
        assert!(all.is_some());
        assert_eq!(budget.permits.available_permits(), 0);
        drop(all);
        assert_eq!(budget.permits.available_permits(), 1024);
    }

    #[test]
    fn a_client_chosen_name_cannot_add_fields_to_the_report() {
        assert_eq!(header_safe("evil;SCL:-1\r\nX: y"), "evil?SCL:-1??X:?y");
        assert_eq!(header_safe(&"a".repeat(1000)).len(), 255);
    }
}

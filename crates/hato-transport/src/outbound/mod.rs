//! The outbound agent: delivers recipients outside every tenant (`Route::Remote`: mail contacts
//! reached through groups, relay through on-premises connectors, NDRs to outside senders) to
//! other servers over SMTP (issue 10, items 6 and 7).
//!
//! The local [`crate::delivery::DeliveryAgent`] no longer touches them: the store hands them to
//! this agent (`QueueStore::due_remote`), leased like any due recipient. The agent groups them
//! by destination — the next hop ([`NextHop`], chosen per tenant and recipient domain by a
//! [`NextHopSelector`]: MX by default, outbound connectors later) and the delivery pool — and
//! works each destination's queue with up to its concurrency of connections:
//!
//! - **One connection, many messages.** A connection takes the destination's next job after
//!   each transaction (RSET between, pipelined when the server offers PIPELINING), until the
//!   queue is empty or the session ends.
//! - **Concurrency per destination** starts at `initial_concurrency` (2) and grows by one for
//!   every connection that delivered, up to `max_concurrency` (20); a connection that could not
//!   be opened halves it (at least 1), as Postfix's `default_destination_concurrency_limit` and
//!   its "positive/negative feedback" do.
//! - **A bounded active set**: at most `max_connections` (100) connections at once in all, and a
//!   destination never more than its concurrency, so a backlog to one slow destination holds at
//!   most its own few connections and new mail to other destinations keeps flowing.
//! - **A dead destination** (no host answers) defers every job queued for it at once with the
//!   last host's error, rather than walking its hosts again for each message.
//!
//! Each recipient's outcome goes to the store as the local agent's do: `Sent` (a `Send` trace
//! event with the remote host, IP, reply, TLS and pool), `Defer` (the remote reply or
//! Exchange's `4.4.31x` text, the remote host; the backoff below), `Fail` (a 5xx, a null MX,
//! a domain that does not exist: an NDR to the sender, which the local agent builds and this one
//! then delivers when the sender is outside).
//!
//! **Retries**: after the `n`-th deferral, `retry_first` × 2^(n-1), at most `retry_max` (5
//! minutes, then 10, 20, 40, 60, 60 …). **Expiry**: a recipient still deferred `expiration`
//! after its message arrived (24 hours, Exchange's connector queue, reference §9.4) fails with
//! `550 4.4.7 QUEUE.Expired` and an NDR; the last attempt is made at the expiry.
//!
//! **Warm-up pacing** ([`warmup`], issue 10 item 9): a pool with a warm-up plan in force
//! delivers at most the plan day's allowance of recipients per UTC day. Recipients are reserved
//! against the allowance when they are taken from the store; those beyond it are deferred to
//! the start of the next UTC day (`451 4.4.5 Warm-up: daily limit N of pool P reached`, one
//! `Defer` event per message: the store writes no second one with the same text), never failed
//! for it — only the normal expiry applies. The day's sent count is written after each
//! transaction, so a restart keeps it.
//!
//! **Throttling back-off**: a `421`/`451 4.7.x` from a receiver (and no recipient of the domain
//! accepted in that transaction) makes the pool back off from the recipient domain: nothing from
//! the pool goes to it for twice the first retry wait (10 minutes by default), doubling with
//! each throttling in a row, at most 4 × `retry_max` (4 hours); a delivery to the domain ends
//! it. While a warm-up plan is in force, each throttling also takes half of what remains of the
//! pool's allowance for the day.

pub mod mta_sts;
mod route;
pub mod warmup;

pub use route::{
    Host, MAX_ADDRESSES, MAX_HOSTS, RouteError, random_index, resolve, resolve_mx, split_port,
};

use crate::spam_stage::from_address;
use hato_core::directory::TenantId;
use hato_core::dns::Resolver;
use hato_core::header::{Headers, MAX_HEADER_BYTES};
use hato_core::id::NodeId;
use hato_core::reply;
use hato_core::{Clock, Reason, Refusal, Stage, Timestamp};
use hato_smtp::client::conn::{ConnectOptions, Connection, Message, SendError, Timeouts};
use hato_smtp::client::tls::TlsSettings;
use hato_smtp::client::{
    Body, ClientError, Recipient, RecipientResult, Status, Transaction, is_eight_bit,
};
use hato_smtp::client::{Notify as ClientNotify, Ret as ClientRet};
use hato_store::{
    Deferral, DeferredWork, DeliveryOutcome, Lease, OutboundBackoff, QueueWork, QueuedMessage,
    QueuedRecipient, RecipientOutcome, SentRecord, StagedBlob, Store, StoreError, ThrottleReply,
    WarmupDay, WarmupPlan,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

/// Where a destination's mail goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// The recipient domain's MX hosts (RFC 5321 §5.1), on `[outbound] smtp_port`.
    Mx { domain: String },
    /// Smart hosts (an outbound connector's `--smart-hosts`): IPs or names, each with an
    /// optional `:port` (a name's MX hosts first, else its A/AAAA), with the connector's TLS
    /// settings. Each connection starts at the next host of a round robin that began at a
    /// random one (Exchange: no priority between smart hosts, reference §9.2).
    SmartHosts {
        hosts: Vec<String>,
        tls: TlsSettings,
    },
    /// The recipient domain's MX hosts as an outbound connector with `--use-mx-record` sends
    /// to them: with the connector's TLS settings.
    ConnectorMx { domain: String, tls: TlsSettings },
}

/// A next hop and the outbound connector that chose it (`None`: plain MX delivery), which the
/// trace's `Send` event names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HopChoice {
    pub hop: NextHop,
    pub connector: Option<String>,
}

impl NextHop {
    /// The part of a destination's key that names the hop.
    fn key(&self) -> String {
        match self {
            NextHop::Mx { domain } => format!("mx:{domain}"),
            NextHop::SmartHosts { hosts, tls } => format!("smart:{}:{tls:?}", hosts.join(",")),
            NextHop::ConnectorMx { domain, tls } => format!("connector-mx:{domain}:{tls:?}"),
        }
    }

    fn tls(&self) -> TlsSettings {
        match self {
            // MX delivery to the Internet: STARTTLS when offered, any certificate (as Exchange
            // and Postfix's `may` level send).
            NextHop::Mx { .. } => TlsSettings::Opportunistic,
            NextHop::SmartHosts { tls, .. } | NextHop::ConnectorMx { tls, .. } => tls.clone(),
        }
    }
}

/// Chooses the next hop of an outside recipient: "where does this tenant's mail for this
/// domain go". The default, [`MxRouting`], is MX delivery; outbound connectors
/// (`crate::outbound_connectors`) plug in here.
pub trait NextHopSelector: Send + Sync {
    fn next_hop(&self, tenant: TenantId, domain: &str) -> NextHop;

    /// The next hop and the connector that chose it; `connector` is the one a transport rule
    /// routed the recipient through (`RouteMessageOutboundConnector`), if any.
    fn choose(&self, tenant: TenantId, domain: &str, connector: Option<&str>) -> HopChoice {
        let _ = connector;
        HopChoice {
            hop: self.next_hop(tenant, domain),
            connector: None,
        }
    }

    /// Brings what the selector holds up to date (store reads: called on the blocking pool
    /// before each batch of due recipients is routed).
    fn refresh(&self) {}
}

/// Every outside domain by its MX records.
pub struct MxRouting;

impl NextHopSelector for MxRouting {
    fn next_hop(&self, _tenant: TenantId, domain: &str) -> NextHop {
        NextHop::Mx {
            domain: domain.to_string(),
        }
    }
}

/// Signs a message before it leaves (DKIM, the signing work's): given the tenant, the domain of
/// its From address and the message as it will be sent, the header field(s) to put on top
/// (each ending with CRLF), or `None` to send it unsigned. Called on the blocking pool: it may
/// read a large message's queue file (`message.file`) to hash the body.
pub trait OutboundSigner: Send + Sync {
    fn sign(&self, tenant: TenantId, from_domain: &str, message: &Message) -> Option<Vec<u8>>;
}

/// A delivery pool: where a session comes from. Exchange sends spam and every NDR from a
/// separate, lower-reputation high-risk pool (reference §7.2); the trace names the pool
/// (`OutboundIpPoolName`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// The EHLO name.
    pub helo_name: String,
    /// The local address to connect from; `None` lets the system choose.
    pub source: Option<IpAddr>,
}

/// The normal pool's name in trace.
pub const NORMAL_POOL: &str = "normal";
/// The high-risk pool's name in trace.
pub const HIGH_RISK_POOL: &str = "high-risk";

/// `[outbound]`, as the agent takes it.
#[derive(Clone, Debug)]
pub struct OutboundSettings {
    /// The port MX hosts are reached on (25; tests point it at a receiving server's port).
    pub smtp_port: u16,
    pub normal: Pool,
    /// NDRs (null sender) and outbound spam (`QueuedMessage::high_risk`) leave from here.
    pub high_risk: Pool,
    /// Connections a destination starts with.
    pub initial_concurrency: usize,
    /// Connections a destination may grow to.
    pub max_concurrency: usize,
    /// Connections at once, all destinations together.
    pub max_connections: usize,
    /// How long a session whose destination has nothing more queued stays open for the next
    /// message to it (Postfix's `smtp_connection_cache_time_limit`, 2 s): mail that arrives
    /// steadily goes over open sessions instead of a new connection, banner and EHLO each.
    /// Zero: a session ends as soon as its destination's queue is empty.
    pub connection_cache_time: Duration,
    /// The wait after the first deferral; doubled after each, up to `retry_max`.
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// How long after its arrival an outside recipient is tried.
    pub expiration: Duration,
    pub timeouts: Timeouts,
    /// Trust anchors for certificate checks instead of the system's (the system's plus
    /// `[outbound] extra_ca_file`); `None`: the system's.
    pub roots: Option<Arc<rustls::RootCertStore>>,
}

impl OutboundSettings {
    /// The defaults, with `hostname` as both pools' EHLO name.
    pub fn new(hostname: &str) -> Self {
        let pool = |name: &str| Pool {
            name: name.to_string(),
            helo_name: hostname.to_string(),
            source: None,
        };
        OutboundSettings {
            smtp_port: 25,
            normal: pool(NORMAL_POOL),
            high_risk: pool(HIGH_RISK_POOL),
            initial_concurrency: 2,
            max_concurrency: 20,
            max_connections: 100,
            connection_cache_time: Duration::from_secs(2),
            retry_first: Duration::from_secs(300),
            retry_max: Duration::from_secs(3600),
            expiration: Duration::from_secs(24 * 3600),
            timeouts: Timeouts::default(),
            roots: None,
        }
    }

    /// The wait after the `attempt`-th deferral (1-based).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled.min(self.retry_max).max(Duration::from_secs(1))
    }
}

/// How long the recipients the agent holds stay leased to it: far longer than a destination's
/// backlog takes at its concurrency (the agent holds at most [`MAX_HELD`] recipients); should
/// this node die, others take them once it runs out.
const LEASE_SECS: i64 = 3600;
/// The most recipients the agent holds in memory (queued for destinations or being sent);
/// more wait in the store.
const MAX_HELD: usize = 10_000;
/// Recipients taken from the store at once.
const BATCH: usize = 512;
/// How often the store is asked for due recipients when nothing wakes the agent.
const POLL: Duration = Duration::from_millis(500);

/// A message's envelope and content, shared by its jobs.
struct OutMessage {
    id: i64,
    trace_id: String,
    sender: String,
    received: Timestamp,
    content: Vec<u8>,
    spool: Option<PathBuf>,
    /// MAIL's RET and ENVID, passed on to a next hop that offers DSN.
    dsn: hato_core::dsn::MessageDsn,
    /// Judged outbound spam by the content stages: sent from the high-risk pool.
    high_risk: bool,
}

/// The open session a transaction goes over, as its recipients' outcomes record it.
struct Peer<'a> {
    host: &'a str,
    address: SocketAddr,
    pool: &'a Pool,
    /// The outbound connector that routed it.
    connector: Option<&'a str>,
    /// The recipient domain's MTA-STS policy as it applied (the `Send` event's `mta_sts`).
    mta_sts: Option<String>,
}

/// One transaction to make: a message to the recipients of one destination.
struct Job {
    message: Arc<OutMessage>,
    recipients: Vec<QueuedRecipient>,
    /// The pool it leaves from.
    pool: String,
    /// Recipients counted against the pool's warm-up allowance while under way (all of them
    /// when the pool is paced, else 0).
    reserved: u64,
}

/// A paced pool's standing on the current UTC day.
#[derive(Default)]
struct Pace {
    day: i64,
    /// Delivered today (the store's count, or more: what finished since it was read).
    sent: u64,
    /// Allowance taken away by throttling today.
    reduced: u64,
    /// Reserved by jobs under way.
    in_flight: u64,
}

/// A destination: a next hop from a pool, its queue and its connections.
struct Dest {
    hop: NextHop,
    /// The outbound connector that chose the hop.
    connector: Option<String>,
    pool: Pool,
    jobs: VecDeque<Job>,
    active: usize,
    limit: usize,
    /// Open sessions (counted in `active`) waiting for a job: jobs for them start no new
    /// connection.
    idle: usize,
    /// Notified once per job queued, waking one waiting session.
    ready: Arc<Notify>,
    /// Transactions that delivered since the limit last grew.
    credit: usize,
}

#[derive(Default)]
struct State {
    dests: HashMap<String, Dest>,
    /// Recipient ids queued or being sent: a lease that runs out while one waits must not
    /// hand it to this agent a second time.
    held: HashSet<i64>,
    /// Smart hosts' round robin: per list of smart hosts, the position the next connection
    /// starts at (the first one random).
    round_robin: HashMap<String, usize>,
    /// Warm-up plans by pool, as last read from the store.
    plans: HashMap<String, WarmupPlan>,
    /// Pools' standing today.
    pace: HashMap<String, Pace>,
    /// Throttling back-offs by pool and domain, as last read from the store (and since).
    backoffs: HashMap<(String, String), OutboundBackoff>,
}

impl State {
    /// The pool's standing on `day`, started afresh when the day has changed.
    fn pace(&mut self, pool: &str, day: i64) -> &mut Pace {
        let p = self.pace.entry(pool.to_string()).or_default();
        if p.day != day {
            p.day = day;
            p.sent = 0;
            p.reduced = 0;
        }
        p
    }

    /// The allowance of the pool's plan on `day`, when a plan is in force.
    fn allowance(&self, pool: &str, day: i64) -> Option<u64> {
        match warmup::plan_day(self.plans.get(pool)?, day) {
            warmup::PlanDay::Day { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// What the pool may still deliver on `day`; `None`: not paced.
    fn remaining(&mut self, pool: &str, day: i64) -> Option<u64> {
        let limit = self.allowance(pool, day)?;
        let p = self.pace(pool, day);
        Some(limit.saturating_sub(p.sent + p.reduced + p.in_flight))
    }

    /// The back-off in force from `domain` for `pool` at `now`.
    fn backoff(&self, pool: &str, domain: &str, now: Timestamp) -> Option<&OutboundBackoff> {
        self.backoffs
            .get(&(pool.to_string(), domain.to_string()))
            .filter(|b| b.until > now)
    }
}

/// A recipient's domain, lower case (the key of back-offs).
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The deferral of a recipient held back by a back-off in force.
fn backoff_deferral(b: &OutboundBackoff) -> Deferral {
    let until = b.until.to_rfc3339();
    Deferral::new(
        reply::throttle_backoff(&b.domain, &b.pool, &until),
        Reason::new(
            Stage::Delivery,
            format!(
                "throttling back-off: pool {} waits for {} until {until} after {} throttling \
                 reply(ies) in a row (the last: {} from {})",
                b.pool, b.domain, b.count, b.last_reply, b.last_host
            ),
        )
        .rule("outbound.throttle_backoff")
        .figure("backoff_until", until.as_str()),
    )
    .retry_at(b.until)
}

/// The deferral of a recipient beyond the pool's warm-up allowance.
fn paced_deferral(limit: u64, pool: &str, today: i64) -> Deferral {
    let next = warmup::day_start(today + 1);
    Deferral::new(
        reply::warmup_daily_limit(limit, pool),
        Reason::new(
            Stage::Delivery,
            format!("warm-up: daily limit {limit} of pool {pool} reached"),
        )
        .rule("warmup.daily_limit")
        .figure("limit", limit)
        .figure("pool", pool)
        .figure("next_day", next.to_rfc3339()),
    )
    .retry_at(next)
}

/// How a connection went, for the destination's concurrency.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Health {
    /// It delivered (or the hop failed for reasons of its own: DNS).
    Good,
    /// No host could be reached.
    Dead,
}

pub struct OutboundAgent {
    store: Arc<dyn Store>,
    resolver: Arc<dyn Resolver>,
    clock: Arc<dyn Clock>,
    node: NodeId,
    settings: OutboundSettings,
    selector: Arc<dyn NextHopSelector>,
    signer: Option<Arc<dyn OutboundSigner>>,
    /// MTA-STS for MX delivery (RFC 8461); `None`: not honoured (`[outbound] mta_sts = false`).
    mta_sts: Option<Arc<mta_sts::MtaSts>>,
    /// Notified when a failure owes an NDR: the local agent builds it.
    queued: Arc<Notify>,
    /// A connection ended: look at the destinations again.
    wake: Notify,
    state: Mutex<State>,
    connections: Arc<Semaphore>,
}

impl OutboundAgent {
    pub fn new(
        store: Arc<dyn Store>,
        resolver: Arc<dyn Resolver>,
        clock: Arc<dyn Clock>,
        node: NodeId,
        settings: OutboundSettings,
        queued: Arc<Notify>,
    ) -> Self {
        let connections = Arc::new(Semaphore::new(settings.max_connections.max(1)));
        OutboundAgent {
            store,
            resolver,
            clock,
            node,
            settings,
            selector: Arc::new(MxRouting),
            signer: None,
            mta_sts: None,
            queued,
            wake: Notify::new(),
            state: Mutex::new(State::default()),
            connections,
        }
    }

    /// Routes through `selector` instead of MX alone (outbound connectors).
    pub fn with_selector(mut self, selector: Arc<dyn NextHopSelector>) -> Self {
        self.selector = selector;
        self
    }

    /// Signs each message with `signer` before it is sent (DKIM).
    pub fn with_signer(mut self, signer: Arc<dyn OutboundSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Honours the MTA-STS policies of recipient domains for MX delivery.
    pub fn with_mta_sts(mut self, mta_sts: Arc<mta_sts::MtaSts>) -> Self {
        self.mta_sts = Some(mta_sts);
        self
    }

    pub fn settings(&self) -> &OutboundSettings {
        &self.settings
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind (queues, counts): go on.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs until `shutdown` turns true. Connections under way when it does are left to the
    /// process's end; their recipients' leases run out, and the store releases a dead
    /// process's leases when it opens.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.clone().take_work().await {
                Ok(_) => {}
                Err(e) => tracing::error!("outbound: taking due recipients failed: {e}"),
            }
            self.dispatch();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass without waiting: takes due recipients and starts connections for them. Returns
    /// how many recipients it took (tests drive the agent with it).
    pub async fn step(self: Arc<Self>) -> Result<usize, StoreError> {
        let n = self.clone().take_work().await?;
        self.dispatch();
        Ok(n)
    }

    /// Whether recipients are queued or being sent.
    pub fn busy(&self) -> bool {
        !self.state().held.is_empty()
    }

    /// Takes due outside recipients from the store into the destinations' queues.
    async fn take_work(self: Arc<Self>) -> Result<usize, StoreError> {
        let room = MAX_HELD.saturating_sub(self.state().held.len()).min(BATCH);
        if room == 0 {
            return Ok(0);
        }
        let now = self.clock.now();
        let lease = Lease {
            owner: self.node.clone(),
            until: now.plus_seconds(LEASE_SECS),
        };
        let store = self.store.clone();
        let selector = self.selector.clone();
        let today = warmup::utc_day(now);
        let (due, plans, days, backoffs) = tokio::task::spawn_blocking(move || {
            selector.refresh();
            // The pools' plans, today's counts and the back-offs: a few small rows, read each
            // pass so a plan set through the API (or counts of another node) apply at once.
            let plans = store.warmup_plans()?;
            let days = store.warmup_days(today)?;
            let backoffs = store.outbound_backoffs()?;
            let due = store.due_remote(now, &lease, room)?;
            Ok::<_, StoreError>((due, plans, days, backoffs))
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))??;
        self.refresh_warmup(today, plans, days, backoffs);
        let (taken, unreadable, held_back) = self.queue_due(due, now);
        if !unreadable.is_empty() {
            self.store.defer(unreadable, now).await?;
        }
        let mut paced: HashMap<String, u64> = HashMap::new();
        for (job, deferral) in held_back {
            if deferral.reason.rule.as_deref() == Some("warmup.daily_limit") {
                *paced.entry(job.pool.clone()).or_default() += job.recipients.len() as u64;
            }
            let outcomes = job
                .recipients
                .iter()
                .map(|r| (r.id, RecipientOutcome::Defer(deferral.clone())))
                .collect();
            self.finish(job, outcomes).await;
        }
        for (pool, n) in paced {
            tracing::info!(
                "outbound: warm-up: {n} recipient(s) of pool {pool} wait for the next day"
            );
            self.store.count_warmup(&pool, today, 0, n).await?;
        }
        Ok(taken)
    }

    /// Takes what the store says of warm-up plans, today's counts and back-offs.
    fn refresh_warmup(
        &self,
        today: i64,
        plans: Vec<WarmupPlan>,
        days: Vec<WarmupDay>,
        backoffs: Vec<OutboundBackoff>,
    ) {
        let mut state = self.state();
        state.plans = plans.into_iter().map(|p| (p.pool.clone(), p)).collect();
        state.backoffs = backoffs
            .into_iter()
            .map(|b| ((b.pool.clone(), b.domain.clone()), b))
            .collect();
        for d in days {
            // Counts only grow within a day: a read older than a finish that followed it must
            // not take back what the finish added.
            let p = state.pace(&d.pool, today);
            p.sent = p.sent.max(d.sent);
            p.reduced = p.reduced.max(d.reduced);
        }
    }

    /// Wakes the agent to look at the store now (the test clock moved, say).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Puts due recipients in their destinations' queues (those it holds already are left
    /// out); returns how many it took, and the deferrals of messages whose content is
    /// unreadable. Not async: the state's lock is never held across an await.
    /// Recipients held back (a back-off in force, the pool's warm-up allowance used up) are
    /// returned with their deferrals.
    #[allow(clippy::type_complexity)]
    fn queue_due(
        &self,
        due: Vec<QueuedMessage>,
        now: Timestamp,
    ) -> (usize, Vec<DeferredWork>, Vec<(Job, Deferral)>) {
        let mut taken = 0;
        let mut unreadable = Vec::new();
        let mut held_back = Vec::new();
        let today = warmup::utc_day(now);
        let mut state = self.state();
        for mut m in due {
            let fresh: Vec<QueuedRecipient> = m
                .recipients
                .drain(..)
                .filter(|r| !state.held.contains(&r.id))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            if let Some(error) = m.content_error.take() {
                unreadable.push(DeferredWork {
                    recipients: fresh.iter().map(|r| r.id).collect(),
                    work: QueueWork::Delivery,
                    deferral: Deferral::new(
                        reply::processing_deferred(&error),
                        Reason::new(Stage::Queue, format!("Processing failed: {error}")),
                    ),
                });
                continue;
            }
            taken += fresh.len();
            let message = Arc::new(out_message(m));
            // Recipients by destination, in one pass (a map keyed by tenant and domain, then
            // by destination): linear in the recipients, whatever their domains.
            type DomainKey = (TenantId, String, Option<String>);
            let mut by_domain: HashMap<DomainKey, Vec<QueuedRecipient>> = HashMap::new();
            for r in fresh {
                state.held.insert(r.id);
                let domain = domain_of(&r.address);
                by_domain
                    .entry((r.tenant_id, domain, r.connector.clone()))
                    .or_default()
                    .push(r);
            }
            let pool = if message.sender.is_empty() || message.high_risk {
                // Every NDR, and every message the content stages judged outbound spam,
                // leaves from the high-risk pool (reference §7.2).
                self.settings.high_risk.clone()
            } else {
                self.settings.normal.clone()
            };
            let mut jobs: HashMap<String, (HopChoice, Vec<QueuedRecipient>, u64)> = HashMap::new();
            for ((tenant, domain, connector), mut recipients) in by_domain {
                let job = |recipients: Vec<QueuedRecipient>| Job {
                    message: message.clone(),
                    recipients,
                    pool: pool.name.clone(),
                    reserved: 0,
                };
                if let Some(b) = state.backoff(&pool.name, &domain, now) {
                    held_back.push((job(recipients), backoff_deferral(b)));
                    continue;
                }
                let mut reserved = 0;
                if let Some(remaining) = state.remaining(&pool.name, today) {
                    let take = recipients
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let rest = recipients.split_off(take);
                    reserved = take as u64;
                    state.pace(&pool.name, today).in_flight += reserved;
                    if !rest.is_empty() {
                        let limit = state.allowance(&pool.name, today).unwrap_or_default();
                        held_back.push((job(rest), paced_deferral(limit, &pool.name, today)));
                    }
                    if recipients.is_empty() {
                        continue;
                    }
                }
                let choice = self.selector.choose(tenant, &domain, connector.as_deref());
                // The connector is part of the key: the trace names it for each recipient.
                let key = format!(
                    "{}|{}|{}",
                    choice.hop.key(),
                    choice.connector.as_deref().unwrap_or_default(),
                    pool.name
                );
                let entry = jobs.entry(key).or_insert_with(|| (choice, Vec::new(), 0));
                entry.1.extend(recipients);
                entry.2 += reserved;
            }
            for (key, (choice, recipients, reserved)) in jobs {
                let dest = state.dests.entry(key).or_insert_with(|| Dest {
                    hop: choice.hop,
                    connector: choice.connector,
                    pool: pool.clone(),
                    jobs: VecDeque::new(),
                    active: 0,
                    limit: self.settings.initial_concurrency.max(1),
                    idle: 0,
                    ready: Arc::new(Notify::new()),
                    credit: 0,
                });
                dest.jobs.push_back(Job {
                    message: message.clone(),
                    recipients,
                    pool: pool.name.clone(),
                    reserved,
                });
                if dest.idle > 0 {
                    dest.ready.notify_one();
                }
            }
        }
        (taken, unreadable, held_back)
    }

    /// Starts connections where a destination has jobs and room, while the active set has.
    fn dispatch(self: &Arc<Self>) {
        let mut state = self.state();
        let mut starts = Vec::new();
        'dests: for (key, dest) in state.dests.iter_mut() {
            // Jobs that sessions waiting idle will take start no connection.
            while dest.active < dest.limit && dest.jobs.len() > dest.idle {
                let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                    break 'dests;
                };
                let Some(job) = dest.jobs.pop_front() else {
                    break;
                };
                dest.active += 1;
                starts.push((
                    key.clone(),
                    HopChoice {
                        hop: dest.hop.clone(),
                        connector: dest.connector.clone(),
                    },
                    dest.pool.clone(),
                    job,
                    permit,
                ));
            }
        }
        // A destination with nothing queued or under way is forgotten (its concurrency too:
        // it starts low again with its next backlog, as Postfix's destinations do).
        state
            .dests
            .retain(|_, d| d.active > 0 || !d.jobs.is_empty());
        drop(state);
        for (key, hop, pool, job, permit) in starts {
            tokio::spawn(self.clone().connection(key, hop, pool, job, permit));
        }
    }

    /// A transaction delivered: the destination's concurrency grows by one after as many
    /// deliveries as it has connections (Postfix's positive feedback of 1/concurrency per
    /// delivery), up to the limit; with a backlog, the agent starts the new connection.
    fn delivered(&self, key: &str) {
        let max = self.settings.max_concurrency.max(1);
        let mut grew = false;
        if let Some(dest) = self.state().dests.get_mut(key) {
            dest.credit += 1;
            if dest.credit >= dest.limit && dest.limit < max {
                dest.limit += 1;
                dest.credit = 0;
                grew = dest.jobs.len() > dest.idle;
            }
        }
        if grew {
            self.wake.notify_one();
        }
    }

    /// The destination's next job for an open session: at once if one is queued, else the
    /// first queued within the connection cache time; `None` when none comes.
    async fn next_job_for_open_session(&self, key: &str) -> Option<Job> {
        let limit = self.settings.connection_cache_time;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ready = {
                let mut state = self.state();
                let dest = state.dests.get_mut(key)?;
                if let Some(job) = dest.jobs.pop_front() {
                    return Some(job);
                }
                if limit.is_zero() || tokio::time::Instant::now() >= deadline {
                    return None;
                }
                dest.idle += 1;
                dest.ready.clone()
            };
            // A job queued between the lock's release and this wait leaves its notification
            // stored (`notify_one`), so it is not missed.
            let woke = tokio::time::timeout_at(deadline, ready.notified()).await;
            if let Some(dest) = self.state().dests.get_mut(key) {
                dest.idle = dest.idle.saturating_sub(1);
            }
            if woke.is_err() {
                return self.next_job(key);
            }
        }
    }

    /// The destination's next job, if any.
    fn next_job(&self, key: &str) -> Option<Job> {
        self.state()
            .dests
            .get_mut(key)
            .and_then(|d| d.jobs.pop_front())
    }

    /// Every job queued for the destination.
    fn drain(&self, key: &str) -> Vec<Job> {
        self.state()
            .dests
            .get_mut(key)
            .map(|d| d.jobs.drain(..).collect())
            .unwrap_or_default()
    }

    /// One connection's life: delivers the first job and then the destination's next ones.
    async fn connection(
        self: Arc<Self>,
        key: String,
        hop: HopChoice,
        pool: Pool,
        first: Job,
        permit: OwnedSemaphorePermit,
    ) {
        let health = self.deliver_destination(&key, &hop, &pool, first).await;
        {
            let mut state = self.state();
            if let Some(dest) = state.dests.get_mut(&key) {
                dest.active = dest.active.saturating_sub(1);
                // Growth comes from deliveries (`delivered`); a destination that could not be
                // reached at all loses half its connections.
                if health == Health::Dead {
                    dest.limit = (dest.limit / 2).max(1);
                }
            }
        }
        drop(permit);
        self.wake.notify_one();
    }

    async fn deliver_destination(
        &self,
        key: &str,
        choice: &HopChoice,
        pool: &Pool,
        first: Job,
    ) -> Health {
        // Jobs a back-off holds back (one that began after they were queued) are deferred
        // without a connection; the first job not held back opens one.
        let mut candidate = first;
        let first = loop {
            if let Some(job) = self.hold_back(candidate).await {
                break job;
            }
            match self.next_job(key) {
                Some(next) => candidate = next,
                None => return Health::Good,
            }
        };
        let hop = &self.rotated(&choice.hop);
        let connector = choice.connector.as_deref();
        let hosts = match route::resolve(&*self.resolver, hop, self.settings.smtp_port).await {
            Ok(hosts) => hosts,
            Err(e) => {
                // The hop's answer is the same for everything queued for it.
                let mut jobs = vec![first];
                jobs.extend(self.drain(key));
                for job in jobs {
                    let outcome = match &e {
                        RouteError::Permanent { reply, reason } => {
                            RecipientOutcome::Fail(Refusal::new(
                                reply.clone(),
                                Reason::new(Stage::Delivery, reason.clone()),
                            ))
                        }
                        RouteError::Temporary { .. } => RecipientOutcome::Defer(Deferral::new(
                            e.reply().clone(),
                            Reason::new(Stage::Delivery, e.to_string()),
                        )),
                    };
                    let outcomes = job
                        .recipients
                        .iter()
                        .map(|r| (r.id, outcome.clone()))
                        .collect();
                    self.finish(job, through(outcomes, connector)).await;
                }
                return Health::Good;
            }
        };
        let (targets, sts) = match self.apply_mta_sts(hop, hosts).await {
            Ok(t) => t,
            Err((reply, reason)) => {
                // An enforced policy no MX host satisfies: everything queued waits (§5.1: the
                // message is not delivered elsewhere), and is tried again later.
                let mut jobs = vec![first];
                jobs.extend(self.drain(key));
                for job in jobs {
                    let outcomes = job
                        .recipients
                        .iter()
                        .map(|r| {
                            (
                                r.id,
                                RecipientOutcome::Defer(Deferral::new(
                                    reply.clone(),
                                    Reason::new(Stage::Delivery, reason.clone())
                                        .rule("outbound.mta_sts"),
                                )),
                            )
                        })
                        .collect();
                    self.finish(job, outcomes).await;
                }
                return Health::Good;
            }
        };
        let mut pending = Some(first);
        let mut delivered = false;
        while let Some(job) = pending.take() {
            let (mut conn, host, address, tls_note) = match self.connect(&targets, hop, pool).await
            {
                Ok(c) => c,
                Err((error, host)) => {
                    // No host answered: everything queued for the destination waits (or
                    // fails, when every host refused for good) with the last host's error.
                    let mut jobs = vec![job];
                    jobs.extend(self.drain(key));
                    let mut reason = format!(
                        "No host of {} could take the message; the last, {host}, failed: {error}",
                        hop_name(hop)
                    );
                    if let Some(sts) = &sts {
                        reason.push_str(&format!(" ({})", sts.text));
                    }
                    for job in jobs {
                        let outcomes = job
                            .recipients
                            .iter()
                            .map(|r| (r.id, self.session_failed(&error, &host, &reason)))
                            .collect();
                        self.finish(job, through(outcomes, connector)).await;
                    }
                    return if delivered {
                        Health::Good
                    } else {
                        Health::Dead
                    };
                }
            };
            let mut next = Some(job);
            while let Some(job) = next.take() {
                // A back-off that began after the job was queued (another connection's
                // throttling reply) holds it back too.
                let Some(job) = self.hold_back(job).await else {
                    next = self.next_job(key);
                    continue;
                };
                let peer = Peer {
                    host: &host,
                    address,
                    pool,
                    connector,
                    mta_sts: sts.as_ref().map(|s| s.note_for(&host, tls_note.as_deref())),
                };
                let outcomes = self.send(&mut conn, &job, &peer).await;
                let sent = outcomes
                    .iter()
                    .any(|(_, o)| matches!(o, RecipientOutcome::Sent(_)));
                delivered |= sent;
                self.finish(job, through(outcomes, connector)).await;
                if sent {
                    self.delivered(key);
                }
                if !conn.is_open() {
                    // The session ended (the server closed it, a failure): the next job gets a
                    // new one.
                    pending = self.next_job(key);
                    break;
                }
                next = self.next_job_for_open_session(key).await;
            }
            if conn.is_open() {
                conn.quit().await;
            }
        }
        Health::Good
    }

    /// Smart hosts in the order this connection tries them: the list turned to start at the
    /// next position of its round robin, which started at a random one (reference §9.2: first
    /// pick random, then round robin, no priority). Other hops as they are.
    fn rotated(&self, hop: &NextHop) -> NextHop {
        let NextHop::SmartHosts { hosts, tls } = hop else {
            return hop.clone();
        };
        if hosts.len() < 2 {
            return hop.clone();
        }
        let start = {
            let mut state = self.state();
            let next = state
                .round_robin
                .entry(hop.key())
                .or_insert_with(|| route::random_index(hosts.len()));
            let start = *next % hosts.len();
            *next = start + 1;
            start
        };
        let mut order = hosts.clone();
        order.rotate_left(start);
        NextHop::SmartHosts {
            hosts: order,
            tls: tls.clone(),
        }
    }

    /// The hosts to try, each with its TLS settings: the hop's own, unless the recipient
    /// domain's MTA-STS policy (MX delivery only) says otherwise. Under `enforce` (RFC 8461
    /// §4.1, §4.2, §5.1) only the MX hosts matching the policy's patterns remain, each to be
    /// reached over TLS with a certificate valid for its own name (`domain-validation`, which
    /// fails with Exchange's `4.7.320` and moves on to the next host); none left: the reply
    /// and reason to defer with. Under `testing` the hosts stay as they are, each tried first
    /// as `enforce` would (`domain-validation` for its name) and, when TLS fails so, again as
    /// without a policy; what would have failed is noted (the `Send` event's `mta_sts`, the log).
    async fn apply_mta_sts(
        &self,
        hop: &NextHop,
        hosts: Vec<Host>,
    ) -> Result<(Vec<Target>, Option<StsNote>), (hato_core::Reply, String)> {
        let plain = |hosts: Vec<Host>| {
            hosts
                .into_iter()
                .map(|host| Target {
                    host,
                    tls: hop.tls(),
                    fallback: None,
                })
                .collect()
        };
        let (Some(sts), NextHop::Mx { domain }) = (&self.mta_sts, hop) else {
            return Ok((plain(hosts), None));
        };
        let Some(applied) = sts.policy(domain).await else {
            return Ok((plain(hosts), None));
        };
        let policy = &applied.policy;
        let text = applied.describe();
        match policy.mode {
            mta_sts::Mode::None => Ok((plain(hosts), None)),
            mta_sts::Mode::Testing => {
                let failing: Vec<String> = hosts
                    .iter()
                    .filter(|h| !policy.matches(&h.name))
                    .map(|h| h.name.clone())
                    .collect();
                for name in &failing {
                    tracing::warn!(
                        "outbound: {domain}: MX host {name} does not match the MTA-STS policy \
                         (testing mode: delivered anyway)"
                    );
                }
                let note = StsNote {
                    text,
                    testing_mismatch: failing,
                    patterns: policy.mx.join(", "),
                };
                let targets = hosts
                    .into_iter()
                    .map(|host| Target {
                        tls: TlsSettings::DomainValidation(host.name.to_ascii_lowercase()),
                        fallback: Some(hop.tls()),
                        host,
                    })
                    .collect();
                Ok((targets, Some(note)))
            }
            mta_sts::Mode::Enforce => {
                let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
                let kept: Vec<Target> = hosts
                    .into_iter()
                    .filter(|h| policy.matches(&h.name))
                    .map(|host| Target {
                        tls: TlsSettings::DomainValidation(host.name.to_ascii_lowercase()),
                        fallback: None,
                        host,
                    })
                    .collect();
                if kept.is_empty() {
                    let detail = format!(
                        "no MX host of {domain} ({}) matches its MTA-STS policy's mx patterns ({})",
                        names.join(", "),
                        policy.mx.join(", ")
                    );
                    return Err((
                        reply::mta_sts_no_valid_mx(&detail),
                        format!("{detail}: {text}"),
                    ));
                }
                Ok((
                    kept,
                    Some(StsNote {
                        text,
                        testing_mismatch: Vec::new(),
                        patterns: policy.mx.join(", "),
                    }),
                ))
            }
        }
    }

    /// Opens a session with the first host (in order) that answers: a host that refuses the
    /// connection, times out or refuses the session is skipped for the next (RFC 5321 §5.1).
    /// Fails with the last error and host when none does. A smart host that refuses the
    /// session for good (a 5xx greeting or EHLO) ends the walk: the recipients fail at once
    /// without the other smart hosts being tried (issue 10 item 4; Exchange's behaviour is
    /// unconfirmed there, reference §9.2, and a 5xx is permanent by RFC 5321 §4.2.1).
    /// A target with a fallback whose TLS fails (an MTA-STS `testing` policy's check) is tried again with the fallback; the
    /// failure is returned with the session, for trace.
    async fn connect(
        &self,
        hosts: &[Target],
        hop: &NextHop,
        pool: &Pool,
    ) -> Result<(Connection, String, SocketAddr, Option<String>), (ClientError, String)> {
        let mut last = (
            ClientError::Connect("no host to connect to".to_string()),
            hop_name(hop),
        );
        for Target {
            host,
            tls,
            fallback,
        } in hosts
        {
            for ip in &host.addresses {
                let address = SocketAddr::new(*ip, host.port);
                let mut options = ConnectOptions::new(address, pool.helo_name.clone());
                options.host_name = Some(host.name.clone());
                options.source = pool.source;
                options.tls = tls.clone();
                options.roots = self.settings.roots.clone();
                options.timeouts = self.settings.timeouts;
                let mut opened = Connection::open(options.clone()).await.map_err(|f| f.error);
                let mut tls_failure = None;
                if let (Err(e), Some(fallback)) = (&opened, fallback)
                    && is_tls_failure(e)
                {
                    tracing::warn!(
                        "outbound: {} [{address}]: TLS as the MTA-STS policy asks failed \
                         (testing mode: tried as without it): {e}",
                        host.name
                    );
                    tls_failure = Some(e.to_string());
                    options.tls = fallback.clone();
                    opened = Connection::open(options).await.map_err(|f| f.error);
                }
                match opened {
                    Ok(conn) => return Ok((conn, host.name.clone(), address, tls_failure)),
                    Err(error) => {
                        tracing::info!("outbound: {} [{address}] failed: {error}", host.name);
                        let permanent = error.is_permanent();
                        last = (error, format!("{} [{address}]", host.name));
                        if permanent && matches!(hop, NextHop::SmartHosts { .. }) {
                            return Err(last);
                        }
                    }
                }
            }
        }
        Err(last)
    }

    /// One transaction on an open session; the recipients' outcomes.
    async fn send(
        &self,
        conn: &mut Connection,
        job: &Job,
        peer: &Peer<'_>,
    ) -> Vec<(i64, RecipientOutcome)> {
        let (host, address) = (peer.host, peer.address);
        let prepared = match self.prepare(job).await {
            Ok(p) => p,
            Err(e) => {
                return job
                    .recipients
                    .iter()
                    .map(|r| (r.id, processing_defer(&e)))
                    .collect();
            }
        };
        let (tx, message) = prepared;
        let result = match conn.send(tx, &message).await {
            Ok(result) => result,
            Err(SendError::Failed { error, result }) => {
                // The replies that came decide their recipients; the rest have the failure's.
                tracing::info!("outbound: session with {host} [{address}] failed: {error}");
                *result
            }
            Err(SendError::Invalid(e)) => {
                let refusal = Refusal::new(
                    reply::bad_remote_address(&e),
                    Reason::new(
                        Stage::Delivery,
                        format!("The SMTP client cannot send it: {e}"),
                    ),
                );
                return job
                    .recipients
                    .iter()
                    .map(|r| (r.id, RecipientOutcome::Fail(refusal.clone())))
                    .collect();
            }
            Err(SendError::Unreadable(e)) => {
                return job
                    .recipients
                    .iter()
                    .map(|r| (r.id, processing_defer(&e)))
                    .collect();
            }
        };
        let tls = conn.tls().cloned();
        job.recipients
            .iter()
            .zip(
                result
                    .recipients
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(r, res)| {
                let outcome = match res {
                    Some(res) => self.recipient_outcome(res, peer, tls.clone()),
                    None => processing_defer(&"the SMTP client gave no result for this recipient"),
                };
                (r.id, outcome)
            })
            .collect()
    }

    fn recipient_outcome(
        &self,
        res: &RecipientResult,
        peer: &Peer<'_>,
        tls: Option<hato_core::TlsInfo>,
    ) -> RecipientOutcome {
        let (host, address) = (peer.host, peer.address);
        match res.status() {
            Status::Delivered => RecipientOutcome::Sent(SentRecord {
                reply: res.reply.clone(),
                remote_host: host.to_string(),
                remote_ip: address.to_string(),
                tls,
                pool: peer.pool.name.clone(),
                connector: peer.connector.map(str::to_string),
                relayed_dsn: res.relayed_dsn,
                mta_sts: peer.mta_sts.clone(),
            }),
            Status::Failed => RecipientOutcome::Fail(Refusal::new(
                res.reply.clone(),
                Reason::new(
                    Stage::Delivery,
                    format!("{host} [{address}] refused the recipient: {}", res.reply),
                )
                .figure("remote_host", host)
                .figure("remote_ip", address.to_string()),
            )),
            Status::Deferred => {
                let mut d = Deferral::new(
                    res.reply.clone(),
                    Reason::new(
                        Stage::Delivery,
                        format!("{host} [{address}] answered: {}", res.reply),
                    ),
                );
                d.remote_host = host.to_string();
                RecipientOutcome::Defer(d)
            }
        }
    }

    /// The outcome of a recipient whose destination could not be reached.
    fn session_failed(&self, error: &ClientError, host: &str, reason: &str) -> RecipientOutcome {
        let reply = error.reply();
        if reply.is_permanent() {
            return RecipientOutcome::Fail(Refusal::new(
                reply,
                Reason::new(Stage::Delivery, reason.to_string()).figure("remote_host", host),
            ));
        }
        let mut d = Deferral::new(reply, Reason::new(Stage::Delivery, reason.to_string()));
        d.remote_host = host.to_string();
        RecipientOutcome::Defer(d)
    }

    /// The transaction and the content of a job, signed when a signer is set.
    async fn prepare(&self, job: &Job) -> Result<(Transaction, Message), String> {
        let m = job.message.clone();
        let tenant = job
            .recipients
            .first()
            .map(|r| r.tenant_id)
            .unwrap_or_default();
        let signer = self.signer.clone();
        let recipients: Vec<Recipient> = job.recipients.iter().map(client_recipient).collect();
        tokio::task::spawn_blocking(move || {
            let mut message = Message {
                head: m.content.clone(),
                file: m.spool.clone(),
            };
            let eight_bit = match &m.spool {
                None => is_eight_bit(&m.content),
                Some(path) => is_eight_bit(&m.content) || file_is_eight_bit(path)?,
            };
            let head = head_of(&m.content, m.spool.as_deref())?;
            let headers = Headers::parse(&head, MAX_HEADER_BYTES);
            // RFC 6532 headers (UTF-8 beyond ASCII) need SMTPUTF8 (RFC 6531 §3.2).
            let utf8_headers = !hato_core::header::header_block(&head).is_ascii();
            if let Some(signer) = signer {
                let from_domain = headers
                    .first("from")
                    .and_then(from_address)
                    .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()));
                if let Some(domain) = from_domain
                    && let Some(field) = signer.sign(tenant, &domain, &message)
                {
                    let mut signed = field;
                    signed.extend_from_slice(&message.head);
                    message.head = signed;
                }
            }
            let mut tx = Transaction::new(m.sender.clone(), recipients, 0);
            tx.body = if eight_bit {
                Body::EightBitMime
            } else {
                Body::SevenBit
            };
            tx.smtputf8 = utf8_headers;
            tx.ret = m.dsn.ret.map(|r| match r {
                hato_core::dsn::Ret::Full => ClientRet::Full,
                hato_core::dsn::Ret::Headers => ClientRet::Headers,
            });
            tx.envid = m.dsn.envid.clone();
            Ok((tx, message))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The job without its recipients a back-off in force holds back (those are deferred
    /// here); `None` when none is left.
    async fn hold_back(&self, mut job: Job) -> Option<Job> {
        let now = self.clock.now();
        let mut held: Vec<(QueuedRecipient, Deferral)> = Vec::new();
        {
            let state = self.state();
            if state.backoffs.is_empty() {
                return Some(job);
            }
            let (keep, back): (Vec<_>, Vec<_>) = job.recipients.drain(..).partition(|r| {
                state
                    .backoff(&job.pool, &domain_of(&r.address), now)
                    .is_none()
            });
            job.recipients = keep;
            for r in back {
                if let Some(b) = state.backoff(&job.pool, &domain_of(&r.address), now) {
                    let d = backoff_deferral(b);
                    held.push((r, d));
                }
            }
        }
        if held.is_empty() {
            return Some(job);
        }
        let reserved = if job.reserved > 0 {
            let n = held.len() as u64;
            job.reserved = job.reserved.saturating_sub(n);
            n
        } else {
            0
        };
        let outcomes = held
            .iter()
            .map(|(r, d)| (r.id, RecipientOutcome::Defer(d.clone())))
            .collect();
        let back = Job {
            message: job.message.clone(),
            recipients: held.into_iter().map(|(r, _)| r).collect(),
            pool: job.pool.clone(),
            reserved,
        };
        self.finish(back, outcomes).await;
        (!job.recipients.is_empty()).then_some(job)
    }

    /// What the outcomes say of the receivers' throttling, per recipient domain: a back-off
    /// ends with a delivery to its domain; a throttling reply (and no delivery to the domain in
    /// the same transaction) begins or grows one, and takes half of what remains of the pool's
    /// warm-up allowance today. Returns when each throttled domain's back-off ends.
    async fn throttling(
        &self,
        job: &Job,
        outcomes: &[(i64, RecipientOutcome)],
        now: Timestamp,
    ) -> HashMap<String, Timestamp> {
        let domains: HashMap<i64, String> = job
            .recipients
            .iter()
            .map(|r| (r.id, domain_of(&r.address)))
            .collect();
        let mut delivered: HashSet<&str> = HashSet::new();
        let mut throttled: HashMap<&str, (String, String)> = HashMap::new();
        for (id, outcome) in outcomes {
            let Some(domain) = domains.get(id) else {
                continue;
            };
            match outcome {
                RecipientOutcome::Sent(_) => {
                    delivered.insert(domain);
                }
                // Only what a remote server answered (local deferrals name no host).
                RecipientOutcome::Defer(d)
                    if !d.remote_host.is_empty()
                        && warmup::is_throttling(d.reply.code, &d.reply.status) =>
                {
                    throttled
                        .entry(domain)
                        .or_insert_with(|| (d.reply.to_string(), d.remote_host.clone()));
                }
                _ => {}
            }
        }
        let mut ends = HashMap::new();
        for domain in &delivered {
            let key = (job.pool.clone(), domain.to_string());
            let had = self.state().backoffs.remove(&key).is_some();
            if had && let Err(e) = self.store.clear_backoff(&job.pool, domain).await {
                tracing::error!("outbound: ending the back-off from {domain} failed: {e}");
            }
        }
        let today = warmup::utc_day(now);
        for (domain, (reply, host)) in throttled {
            if delivered.contains(domain) {
                continue;
            }
            let reduce_by = self
                .state()
                .remaining(&job.pool, today)
                .map(warmup::throttle_reduction)
                .unwrap_or(0);
            let first = self.settings.retry_first.as_secs().saturating_mul(2).max(1);
            let record = ThrottleReply {
                pool: job.pool.clone(),
                domain: domain.to_string(),
                reply: reply.clone(),
                host,
                day: today,
                first_secs: first,
                max_secs: self
                    .settings
                    .retry_max
                    .as_secs()
                    .saturating_mul(4)
                    .max(first),
                reduce_by,
            };
            match self.store.record_throttle(record).await {
                Ok((b, began)) => {
                    if began {
                        tracing::warn!(
                            "outbound: {domain} throttles pool {} ({reply}): backing off until {} \
                             ({} in a row){}",
                            job.pool,
                            b.until.to_rfc3339(),
                            b.count,
                            if reduce_by > 0 {
                                format!("; today's warm-up allowance lowered by {reduce_by}")
                            } else {
                                String::new()
                            }
                        );
                        let mut state = self.state();
                        state.pace(&job.pool, today).reduced += reduce_by;
                    }
                    ends.insert(domain.to_string(), b.until);
                    self.state()
                        .backoffs
                        .insert((job.pool.clone(), domain.to_string()), b);
                }
                Err(e) => tracing::error!("outbound: recording a throttling reply failed: {e}"),
            }
        }
        ends
    }

    /// Applies a job's outcomes: deferrals on the outbound backoff (or until a throttling
    /// back-off, the next warm-up day), bounded by the outbound expiry; then the store. What
    /// the store cannot apply is deferred as a processing failure.
    async fn finish(&self, job: Job, outcomes: Vec<(i64, RecipientOutcome)>) {
        let now = self.clock.now();
        let backoff_ends = self.throttling(&job, &outcomes, now).await;
        let expires = job
            .message
            .received
            .plus_seconds(i64::try_from(self.settings.expiration.as_secs()).unwrap_or(i64::MAX));
        let attempts: HashMap<i64, u32> =
            job.recipients.iter().map(|r| (r.id, r.attempts)).collect();
        let domains: HashMap<i64, String> = job
            .recipients
            .iter()
            .map(|r| (r.id, domain_of(&r.address)))
            .collect();
        let mut owes_ndr = false;
        let mut sent = 0u64;
        let recipients = outcomes
            .into_iter()
            .map(|(id, outcome)| {
                let outcome = match outcome {
                    RecipientOutcome::Defer(d) if now >= expires => {
                        expired(d, job.message.received, expires, attempts.get(&id).copied())
                    }
                    RecipientOutcome::Defer(mut d) => {
                        let attempt = attempts.get(&id).copied().unwrap_or(0).saturating_add(1);
                        let wait = self.settings.retry_delay(attempt);
                        let wait = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
                        let backoff = domains.get(&id).and_then(|d| backoff_ends.get(d));
                        // A throttled domain's recipients wait for the back-off; a held-back
                        // one keeps its own time (the back-off's end, the next warm-up day).
                        let retry = match (backoff, d.retry_at) {
                            (Some(&until), _) => {
                                d.reason = d.reason.figure("backoff_until", until.to_rfc3339());
                                until
                            }
                            (None, Some(at)) => at,
                            (None, None) => now.plus_seconds(wait),
                        };
                        // The last attempt is made at the expiry.
                        d.retry_at = Some(retry.min(expires));
                        RecipientOutcome::Defer(d)
                    }
                    other => other,
                };
                sent += u64::from(matches!(outcome, RecipientOutcome::Sent(_)));
                owes_ndr |= matches!(outcome, RecipientOutcome::Fail(_));
                (id, outcome)
            })
            .collect();
        let outcome = DeliveryOutcome {
            message_id: job.message.id,
            blob: StagedBlob::default(),
            size: 0,
            from_header: String::new(),
            subject: String::new(),
            null_sender: job.message.sender.is_empty(),
            recipients,
        };
        let ids: Vec<i64> = job.recipients.iter().map(|r| r.id).collect();
        match self.store.complete_deliveries(vec![outcome], now).await {
            Ok(failed) => {
                for f in failed {
                    tracing::warn!(
                        "outbound: message {}: recording the outcome failed: {}",
                        job.message.trace_id,
                        f.error
                    );
                    let work = DeferredWork {
                        recipients: f.recipients,
                        work: QueueWork::Delivery,
                        deferral: Deferral::new(
                            reply::processing_deferred(&f.error),
                            Reason::new(Stage::Queue, format!("Processing failed: {}", f.error)),
                        ),
                    };
                    if let Err(e) = self.store.defer(vec![work], now).await {
                        tracing::error!("outbound: deferring failed too: {e}");
                    }
                }
            }
            // The store as a whole failed: the leases run out and the recipients come back.
            Err(e) => tracing::error!(
                "outbound: message {}: recording outcomes failed: {e}",
                job.message.trace_id
            ),
        }
        let today = warmup::utc_day(now);
        let counted = sent > 0 && self.state().plans.contains_key(&job.pool);
        if counted && let Err(e) = self.store.count_warmup(&job.pool, today, sent, 0).await {
            tracing::error!(
                "outbound: counting pool {}'s deliveries failed: {e}",
                job.pool
            );
        }
        let mut state = self.state();
        for id in ids {
            state.held.remove(&id);
        }
        let pace = state.pace(&job.pool, today);
        pace.in_flight = pace.in_flight.saturating_sub(job.reserved);
        if counted {
            pace.sent += sent;
        }
        drop(state);
        if owes_ndr {
            self.queued.notify_one();
        }
    }
}

/// A host to try, with the TLS settings to try it with, and those to try it with again when
/// TLS fails so (an MTA-STS `testing` policy's check; `None`: none).
struct Target {
    host: Host,
    tls: TlsSettings,
    fallback: Option<TlsSettings>,
}

/// A session that failed for TLS (not offered, refused, the handshake, the certificate).
fn is_tls_failure(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::TlsNotOffered
            | ClientError::StartTlsRefused(_)
            | ClientError::TlsHandshake(_)
            | ClientError::Certificate(_)
    )
}

/// What an MTA-STS policy made of a destination, for trace.
struct StsNote {
    /// `MTA-STS enforce (policy id …)`.
    text: String,
    /// Under `testing`, the MX hosts the policy would have refused.
    testing_mismatch: Vec<String>,
    patterns: String,
}

impl StsNote {
    /// The `Send` event's note for a session with `host`, whose TLS as the policy asks failed
    /// with `tls_failure` (testing mode).
    fn note_for(&self, host: &str, tls_failure: Option<&str>) -> String {
        let mut failures = Vec::new();
        if self.testing_mismatch.iter().any(|h| h == host) {
            failures.push(format!(
                "{host} does not match the policy's mx patterns ({})",
                self.patterns
            ));
        }
        if let Some(e) = tls_failure {
            failures.push(format!("TLS with {host} failed: {e}"));
        }
        if failures.is_empty() {
            return self.text.clone();
        }
        format!(
            "{}: {}; delivered anyway (testing mode)",
            self.text,
            failures.join("; ")
        )
    }
}

/// `550 4.4.7` for a recipient deferred at or after the outbound expiry, the last error quoted
/// (as the store's own expiry does).
fn expired(
    d: Deferral,
    received: Timestamp,
    expires: Timestamp,
    attempts: Option<u32>,
) -> RecipientOutcome {
    let hours = (expires.0 - received.0).max(0) / 3_600_000_000;
    let attempt = attempts.unwrap_or(0).saturating_add(1);
    let mut reason = Reason::new(
        Stage::Queue,
        format!(
            "Not delivered within {hours} hours of its arrival: {attempt} attempt(s) were \
             deferred; last error: {} ({})",
            d.reply, d.reason.text
        ),
    )
    .rule("outbound.expiration_secs")
    .figure("attempts", attempt)
    .figure("expires", expires.to_rfc3339())
    .figure("last_status", u32::from(d.reply.code))
    .figure("last_enhanced_status", d.reply.status.as_ref());
    if !d.remote_host.is_empty() {
        reason = reason.figure("last_remote_host", d.remote_host.as_str());
    }
    RecipientOutcome::Fail(Refusal::new(reply::MESSAGE_EXPIRED, reason))
}

/// The outcomes with the outbound connector that routed them named in their reasons (figure
/// `connector`), so a `Defer` or `Fail` in the trace says which connector's hosts answered, as
/// the `Send` event does.
fn through(
    outcomes: Vec<(i64, RecipientOutcome)>,
    connector: Option<&str>,
) -> Vec<(i64, RecipientOutcome)> {
    let Some(name) = connector else {
        return outcomes;
    };
    outcomes
        .into_iter()
        .map(|(id, o)| {
            let o = match o {
                RecipientOutcome::Defer(mut d) => {
                    d.reason = d.reason.figure("connector", name);
                    RecipientOutcome::Defer(d)
                }
                RecipientOutcome::Fail(mut r) => {
                    r.reason = Box::new(r.reason.figure("connector", name));
                    RecipientOutcome::Fail(r)
                }
                other => other,
            };
            (id, o)
        })
        .collect()
}

fn processing_defer(error: &dyn std::fmt::Display) -> RecipientOutcome {
    RecipientOutcome::Defer(Deferral::new(
        reply::processing_deferred(error),
        Reason::new(Stage::Queue, format!("Processing failed: {error}")),
    ))
}

fn hop_name(hop: &NextHop) -> String {
    match hop {
        NextHop::Mx { domain } => domain.clone(),
        NextHop::SmartHosts { hosts, .. } => hosts.join(", "),
        NextHop::ConnectorMx { domain, .. } => domain.clone(),
    }
}

fn out_message(m: QueuedMessage) -> OutMessage {
    OutMessage {
        id: m.id,
        trace_id: m.trace_id,
        sender: m.sender,
        received: m.received,
        content: m.content,
        spool: m.spool,
        dsn: m.dsn,
        high_risk: m.high_risk,
    }
}

/// The client's DSN request for a queued recipient (RFC 3461 §5.2.1: an MTA relaying to a
/// server that offers DSN passes NOTIFY and ORCPT on). An ORCPT is passed on only when it is an
/// `rfc822` address the client can write unchanged; otherwise none (§4.2 makes it optional).
fn client_recipient(r: &QueuedRecipient) -> Recipient {
    let orcpt = r
        .dsn
        .orcpt
        .as_ref()
        .filter(|o| {
            o.addr_type == "rfc822"
                && !o.address.is_empty()
                && o.address.len() <= 254
                && o.address
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        })
        .map(|o| o.address.clone());
    Recipient {
        address: r.address.clone(),
        notify: r.dsn.notify.map(|n| ClientNotify {
            success: n.success,
            failure: n.failure,
            delay: n.delay,
        }),
        orcpt,
    }
}

/// The beginning of a message, at least its header block (up to `MAX_HEADER_BYTES` of its
/// queue file after what the store holds).
fn head_of(content: &[u8], spool: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut head = content.to_vec();
    if let Some(path) = spool {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_HEADER_BYTES as u64).read_to_end(&mut head))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(head)
}

/// Whether a queue file holds a byte beyond ASCII (BODY=8BITMIME, RFC 6152): one pass, 64 KiB
/// at a time.
fn file_is_eight_bit(path: &std::path::Path) -> Result<bool, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(false);
        }
        if is_eight_bit(&buf[..n]) {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_first_wait_up_to_its_cap() {
        let s = OutboundSettings::new("mx.hato.test");
        let mins: Vec<u64> = (1..=7).map(|a| s.retry_delay(a).as_secs() / 60).collect();
        assert_eq!(mins, [5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(s.retry_delay(u32::MAX), Duration::from_secs(3600));
    }
}

//! `hato serve`: the store, the SMTP listeners, the delivery agent and the admin API in one
//! process.

use crate::config::Config;
use hato_core::auth::Role;
use hato_core::{Clock, SystemClock, id};
use hato_protection::early_talker::EarlyTalker;
use hato_protection::helo::HeloCheck;
use hato_protection::malware::{Clamd, Scanner, SignatureStore};
use hato_protection::reverse_dns::ReverseDns;
use hato_protection::spam::auth::SenderAuth;
use hato_protection::spam::classifier::Classifier;
use hato_protection::{ConnectChecks, Dnsbl};
use hato_smtp::SessionConfig;
use hato_smtp::server::{ServerConfig, SmtpServer};
use hato_store::{SqliteStore, Store, TokenStore, hash_token};
use hato_transport::content::{ContentPipeline, ContentPolicy};
use hato_transport::outbound_spam::{OutboundSenderPolicy, OutboundSenders};

/// The stages inside the edge and the submission policy: the outbound spam limits and
/// restricted senders around the content stages around the directory's recipient decision.
type Stages = OutboundSenderPolicy<ContentPolicy<DirectoryPolicy>>;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::digest::{
    DigestOptions, DigestSettings, Digester, FixedSettings, NotificationSettingsSource,
};
use hato_transport::edge::EdgePolicy;
use hato_transport::inbound::Inbound;
use hato_transport::outbound_connectors::OutboundConnectors;
use hato_transport::routing::DirectoryPolicy;
use hato_transport::spam_stage::SpamFilter;
use hato_transport::submission::SubmissionPolicy;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("store: {0}")]
    Store(#[from] hato_store::StoreError),
    #[error("{0}")]
    Io(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("edge: {0}")]
    Edge(#[from] hato_protection::NotAConnectStage),
    #[error("DNS: {0}")]
    Dns(#[from] hato_dns::DnsConfigError),
}

pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// Where the running server writes its admin API address (useful when the port is 0).
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// The operator token: created at first start (file mode 0600), registered in the store.
async fn ensure_operator_token(
    store: &SqliteStore,
    data_dir: &Path,
) -> Result<PathBuf, ServeError> {
    let path = data_dir.join(OPERATOR_TOKEN_FILE);
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = id::new_token();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| ServeError::Io(format!("{}: {e}", path.display())))?;
            writeln!(f, "{t}")
                .and_then(|_| f.sync_all())
                .map_err(|e| ServeError::Io(format!("{}: {e}", path.display())))?;
            t
        }
    };
    let hash = hash_token(&token);
    if store.token(&hash)?.is_none() {
        let info = hato_store::TokenInfo {
            role: Role::Operator,
            tenant_id: None,
            mailbox_id: None,
            expires: None,
        };
        store.add_token(&hash, info).await?;
    }
    Ok(path)
}

/// The STARTTLS configuration: the configured certificate, or a self-signed one made once.
fn tls_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let (cert_path, key_path) = if config.smtp.tls_cert.as_os_str().is_empty() {
        let dir = config.server.data_dir.join("tls");
        let cert = dir.join("self-signed.crt");
        let key = dir.join("self-signed.key");
        if !cert.exists() || !key.exists() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| ServeError::Io(format!("{}: {e}", dir.display())))?;
            let tls_err = |e: rcgen::Error| ServeError::Tls(e.to_string());
            let mut params = rcgen::CertificateParams::new(vec![config.server.hostname.clone()])
                .map_err(tls_err)?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, config.server.hostname.clone());
            let key_pair = rcgen::KeyPair::generate().map_err(tls_err)?;
            let certificate = params.self_signed(&key_pair).map_err(tls_err)?;
            std::fs::write(&cert, certificate.pem())
                .map_err(|e| ServeError::Io(format!("{}: {e}", cert.display())))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&key)
                .map_err(|e| ServeError::Io(format!("{}: {e}", key.display())))?;
            f.write_all(key_pair.serialize_pem().as_bytes())
                .map_err(|e| ServeError::Io(format!("{}: {e}", key.display())))?;
            tracing::info!(
                "generated a self-signed certificate for {} in {}",
                config.server.hostname,
                dir.display()
            );
        }
        (cert, key)
    } else {
        (config.smtp.tls_cert.clone(), config.smtp.tls_key.clone())
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "{}: no certificate in the file",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key_path.display())))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServeError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(Arc::new(tls))
}

/// What the edge's checks at connect are made of (made before the edge, shared with the admin
/// API: the block list it edits, the throttle it shows and releases).
struct EdgeParts {
    block_list: Arc<hato_protection::ProviderBlockList>,
    throttle: Arc<hato_protection::throttle::Throttle>,
    resolver: Arc<dyn hato_core::dns::Resolver>,
}

/// The edge's stages around the directory's recipient decision: at connect the provider's block
/// list, the DNS block lists when zones are configured, throttling when it is enabled, the
/// early-talker check when there is a greeting delay (`hato-protection` runs them in their
/// fixed order, whatever the order here), the reverse DNS name when it is on; at EHLO the HELO
/// check when it is on.
fn edge_policy(
    config: &Config,
    parts: &EdgeParts,
    directory: Stages,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Result<EdgePolicy<Stages>, ServeError> {
    let edge = &config.edge;
    let mut checks = ConnectChecks::new().with(parts.block_list.clone())?;
    let zones = config
        .dnsbl_zones()
        .map_err(|e| ServeError::Io(e.to_string()))?;
    if !zones.is_empty() {
        checks = checks.with(Arc::new(Dnsbl::new(parts.resolver.clone(), zones)))?;
    }
    if config.throttle.enabled {
        checks = checks.with(parts.throttle.clone())?;
    }
    if edge.greeting_delay_ms > 0 {
        checks = checks.with(Arc::new(EarlyTalker))?;
    }
    // Tenants' inbound connectors and RejectDirectSend: attribution, relay, partner checks.
    let connectors = Arc::new(hato_transport::connectors::InboundConnectors::new(
        store.clone(),
    ));
    let mut policy = EdgePolicy::new(directory, store, clock)
        .with_checks(checks)
        .with_connectors(connectors);
    if config.throttle.enabled {
        policy = policy.with_throttle(parts.throttle.clone());
    }
    if edge.reverse_dns {
        policy = policy.with_reverse_dns(ReverseDns::new(parts.resolver.clone()));
    }
    if edge.reject_bad_helo {
        // The addresses the listeners name; each client's own local address counts too (a
        // listener on 0.0.0.0 names none).
        let ours = config
            .smtp
            .listen
            .iter()
            .filter_map(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip());
        policy = policy.with_helo_check(HeloCheck::new(&config.server.hostname, ours));
    }
    Ok(policy)
}

/// The content stages as the settings make them: the built-in malware engine with its
/// signature directory (reloaded when it changes), clamd when one is named; `None` when
/// `[content] pipeline` is off.
fn content_pipeline(
    config: &Config,
    store: &Arc<dyn Store>,
    directory: &Arc<hato_directory::Directory>,
    clock: &Arc<dyn Clock>,
    resolver: &Arc<dyn hato_core::dns::Resolver>,
    throttle: Option<Arc<hato_protection::throttle::Throttle>>,
    outbound_connectors: Arc<OutboundConnectors>,
) -> Result<Option<Arc<ContentPipeline>>, ServeError> {
    if !config.content.pipeline {
        println!(
            "hato: the content stages are off ([content] pipeline = false): mail is not scanned"
        );
        return Ok(None);
    }
    let malware = &config.malware;
    let signatures = if malware.signatures_dir.as_os_str().is_empty() {
        SignatureStore::builtin()
    } else {
        SignatureStore::open(&malware.signatures_dir).map_err(|e| {
            ServeError::Io(format!(
                "malware.signatures_dir {}: {e}",
                malware.signatures_dir.display()
            ))
        })?
    };
    let mut engines: Vec<Arc<dyn hato_protection::malware::MalwareEngine>> = Vec::new();
    if let Some(address) = malware.clamd_address() {
        let mut clamd = Clamd::new(address);
        clamd.timeout = Duration::from_secs(malware.clamd_timeout_secs);
        engines.push(Arc::new(clamd));
    }
    let scanner = Scanner {
        signatures: Arc::new(signatures),
        engines,
        ..Scanner::default()
    };
    println!(
        "hato: malware filter: the built-in engine (EICAR{}){}",
        if malware.signatures_dir.as_os_str().is_empty() {
            String::new()
        } else {
            format!(
                " and {} signatures from {}",
                scanner.signatures.snapshot().len(),
                malware.signatures_dir.display()
            )
        },
        if malware.clamd.is_empty() {
            String::new()
        } else {
            format!(" and clamd at {}", malware.clamd)
        }
    );
    let mut pipeline = ContentPipeline::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        Arc::new(scanner),
        config.server.hostname.clone(),
    )
    .with_scan_budget_mb(config.content.scan_budget_mb)
    // Transport rules' RouteMessageOutboundConnector checks the connector it names.
    .with_outbound_connectors(outbound_connectors);
    if let Some(spam) = spam_filter(config, resolver)? {
        pipeline = pipeline.with_spam_filter(spam);
        // Spam verdicts count against the sending IP's reputation (the edge's throttling).
        if let Some(throttle) = throttle {
            pipeline = pipeline.with_throttle(throttle);
        }
    }
    Ok(Some(Arc::new(pipeline)))
}

/// The spam filter as the settings make it: the shipped classifier or `[spam] model`, and
/// sender authentication over the process's resolver; `None` when `[spam] enabled` is off.
fn spam_filter(
    config: &Config,
    resolver: &Arc<dyn hato_core::dns::Resolver>,
) -> Result<Option<Arc<SpamFilter>>, ServeError> {
    if !config.spam.enabled {
        println!("hato: the spam filter is off ([spam] enabled = false)");
        return Ok(None);
    }
    let classifier = if config.spam.model.as_os_str().is_empty() {
        Classifier::shipped().map_err(|e| ServeError::Io(format!("the shipped spam model: {e}")))?
    } else {
        let bytes = std::fs::read(&config.spam.model).map_err(|e| {
            ServeError::Io(format!("spam.model {}: {e}", config.spam.model.display()))
        })?;
        Classifier::load(&bytes).map_err(|e| {
            ServeError::Io(format!("spam.model {}: {e}", config.spam.model.display()))
        })?
    };
    let auth = SenderAuth::new(resolver.clone(), config.server.hostname.clone())
        .map_err(|e| ServeError::Io(format!("sender authentication: {e}")))?;
    println!(
        "hato: spam filter: the {} classifier, SPF/DKIM/DMARC/ARC",
        if config.spam.model.as_os_str().is_empty() {
            "shipped".to_owned()
        } else {
            config.spam.model.display().to_string()
        }
    );
    Ok(Some(Arc::new(SpamFilter::new(
        Arc::new(classifier),
        Arc::new(auth),
    ))))
}

/// Where the quarantine digest reads each recipient's notification settings: the recipient's
/// anti-spam policy when it turns them on, else `[quarantine] end_user_spam_notification*` (the
/// server-wide switch; Exchange's defaults: off). Which items a digest lists is the items'
/// quarantine policies' business: only those held under a policy with `ESNEnabled` (the
/// store's `digest_candidates`/`digest_items`), as Exchange sends quarantine notifications
/// only for such policies; a recipient whose items all have it off gets nothing.
fn digest_settings(
    config: &Config,
    store: &Arc<dyn Store>,
    directory: &Arc<hato_directory::Directory>,
) -> Arc<dyn NotificationSettingsSource> {
    let q = &config.quarantine;
    let policy = hato_protection::spam::SpamFilterPolicy {
        enable_end_user_spam_notifications: q.end_user_spam_notifications,
        end_user_spam_notification_frequency: q.end_user_spam_notification_frequency,
        end_user_spam_notification_language: q.end_user_spam_notification_language.clone(),
        ..Default::default()
    };
    Arc::new(PolicyDigestSettings {
        store: store.clone(),
        directory: directory.clone(),
        fallback: FixedSettings(DigestSettings::from_policy(&policy, None)),
    })
}

/// A recipient's digest settings from its anti-spam policy (the first matching custom policy
/// by priority, else the default: `--enable-end-user-spam-notifications`,
/// `--end-user-spam-notification-frequency`, `--end-user-spam-notification-language`); when
/// the policy does not ask for them, the server's `[quarantine] end_user_spam_notification*`.
struct PolicyDigestSettings {
    store: Arc<dyn Store>,
    directory: Arc<hato_directory::Directory>,
    fallback: FixedSettings,
}

impl NotificationSettingsSource for PolicyDigestSettings {
    fn settings(
        &self,
        tenant: hato_core::directory::TenantId,
        recipient: &hato_core::Address,
    ) -> Result<Option<DigestSettings>, hato_store::StoreError> {
        let policies = self.store.spam_filters(tenant)?;
        let index = self.directory.index(tenant)?;
        use hato_protection::rules::RuleDirectory;
        let view = hato_directory::rules::RuleDirectoryView {
            index: &index,
            accepted_domains: &[],
        };
        let address = recipient.to_string();
        let own =
            hato_store::spam_policy_for(&policies, &address, |g| view.is_member_of(&address, g))
                .and_then(|record| DigestSettings::from_policy(&record.policy, None));
        match own {
            Some(settings) => Ok(Some(settings)),
            None => self.fallback.settings(tenant, recipient),
        }
    }
}

/// The submission listener's server (RFC 6409): the SMTP listener's settings and certificate,
/// without the greeting delay, with AUTH and the submission rules (`hato_transport::submission`)
/// around the content stages and the directory; none of the edge's stages.
fn submission_server(
    config: &Config,
    smtp: &ServerConfig,
    store: &Arc<dyn Store>,
    directory: &Arc<hato_directory::Directory>,
    clock: &Arc<dyn Clock>,
    stages: Stages,
    submitter: Arc<Inbound>,
) -> Arc<SmtpServer<SubmissionPolicy<Stages>>> {
    let s = &config.submission;
    let limiter = hato_admin::LoginLimiter::new(
        hato_admin::LoginLimits {
            max_failures: s.auth_max_failures,
            max_failures_per_ip: s.auth_max_failures_per_ip,
            lockout_secs: s.auth_lockout_secs,
            max_concurrent_hashes: s.auth_max_concurrent_hashes,
        },
        clock.clone(),
    );
    let authenticator = hato_admin::smtp_auth::PasswordAuthenticator::new(
        store.clone(),
        Arc::new(limiter),
        config.smtp.ipv6_prefix_length,
    );
    let quotas = hato_transport::submission::Quotas::new(
        hato_transport::submission::SubmissionLimits {
            max_messages_per_minute: s.max_messages_per_minute,
            max_recipients_per_day: s.max_recipients_per_day,
        },
        clock.clone(),
    );
    let policy = SubmissionPolicy::new(
        stages,
        directory.clone(),
        Arc::new(authenticator),
        Arc::new(quotas),
    );
    let mut server_config = smtp.clone();
    server_config.session.submission = true;
    server_config.greeting_delay = Duration::ZERO;
    SmtpServer::new(server_config, Arc::new(policy), submitter)
}

/// Writes the transport rules' hit counts every few seconds, and once more when stopping.
async fn count_rule_hits(pipeline: Arc<ContentPipeline>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => pipeline.flush_hits().await,
            _ = stop.changed() => break,
        }
    }
    pipeline.flush_hits().await;
}

/// Recipients read by each of Home's top-address catch-ups: one short write at a time (a few
/// ms), so the relay's writes queued behind it wait little.
const TOP_BATCH: usize = 5_000;

/// Keeps Home's top senders and recipients (`ConsoleStore::top_address_catch_up`'s hourly
/// summaries) up with the trace: every 2 seconds, and once more when stopping, all recipients
/// written since, a batch at a time. Off the write path, so a recipient's write costs what it
/// did (per-address counters in a trigger made it 2.4x dearer, docs/architecture.md).
async fn keep_top_addresses(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => catch_up_top_addresses(&*store, &*clock).await,
            _ = stop.changed() => break,
        }
    }
    catch_up_top_addresses(&*store, &*clock).await;
}

async fn catch_up_top_addresses(store: &dyn Store, clock: &dyn Clock) {
    // Home lists the top of the last 24 hours, from the start of that hour.
    let from = clock.now().plus_seconds(-25 * 3600);
    loop {
        match store.top_address_catch_up(from, TOP_BATCH).await {
            Ok(n) if n >= TOP_BATCH => tokio::task::yield_now().await,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!("Home's top senders and recipients: {e}");
                break;
            }
        }
    }
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let data_dir = config.server.data_dir.clone();
    // The one clock of the process: the store stamps its rows with it, the SMTP side, the
    // delivery agent and the API read it, so a test can move them all together.
    // `[testing] manual_clock` (end-to-end tests only): a clock held at the real time of the
    // start, which the operator moves forward through the API.
    let test_clock = config.testing.manual_clock.then(|| {
        let manual = Arc::new(hato_core::clock::ManualClock::new(SystemClock.now()));
        Arc::new(hato_admin::TestClock::new(manual))
    });
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(tc) => {
            println!(
                "hato: TEST CLOCK ([testing] manual_clock): time stands at {} until moved \
                 through POST /api/v1/testing/clock; never use this setting for real mail",
                tc.now().to_rfc3339()
            );
            tc.clone()
        }
        None => Arc::new(SystemClock),
    };
    let store = Arc::new(
        SqliteStore::open_with_clock(&data_dir, clock.clone())?
            .with_message_expiration(config.queue.message_expiration_hours)
            .with_connection_filter_max_entries(config.edge.connection_filter_max_entries),
    );
    let token_path = ensure_operator_token(&store, &data_dir).await?;
    // Made here, before the SMTP path uses it, so its state is loaded, shown and kept.
    let throttle = crate::throttle::open(&config.throttle, &data_dir, &*store);
    let tls = tls_config(&config)?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let queued = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);

    let server_config = ServerConfig {
        session: SessionConfig {
            hostname: config.server.hostname.clone(),
            max_message_size: config.smtp.max_message_size,
            max_recipients: config.smtp.max_recipients,
            tls_available: true,
            max_errors: 20,
            spool_threshold: config.smtp.spool_threshold_bytes,
            spool: Some(store.spool()),
            // No sender may stamp hato's verdicts on its own mail (RFC 8601 §5).
            header_filter: Some(Arc::new(hato_smtp::header_filter::HeaderDropRule::hato(
                &config.server.hostname,
            ))),
            submission: false,
            max_auth_failures: config.submission.max_auth_failures_per_session,
        },
        max_connections: config.smtp.max_connections,
        max_connections_per_ip: config.smtp.max_connections_per_ip,
        ipv6_prefix_length: config.smtp.ipv6_prefix_length,
        idle_timeout: Duration::from_secs(config.smtp.idle_timeout_secs),
        data_timeout: Duration::from_secs(config.smtp.data_timeout_secs),
        session_timeout: Duration::from_secs(config.smtp.session_timeout_secs),
        tls: Some(tls),
        greeting_delay: Duration::from_millis(config.edge.greeting_delay_ms),
    };
    // The one resolver of the process (its cache is shared): the DNS block lists and reverse
    // DNS at connect, domain verification.
    let resolver: Arc<dyn hato_core::dns::Resolver> =
        Arc::new(hato_dns::HickoryResolver::new(&config.dns)?);
    let directory = Arc::new(hato_directory::Directory::new(dyn_store.clone()));
    let mut tasks = Vec::new();
    // The admin listener first: the delist page's address, which the block list's refusals
    // name, may be its address.
    let admin_listener = tokio::net::TcpListener::bind(&config.admin.listen)
        .await
        .map_err(|e| {
            ServeError::Io(format!(
                "cannot listen for the admin API on {}: {e}",
                config.admin.listen
            ))
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| ServeError::Io(e.to_string()))?;
    std::fs::write(data_dir.join(ADMIN_ADDR_FILE), admin_addr.to_string())
        .map_err(|e| ServeError::Io(e.to_string()))?;
    println!("hato: admin API listening on http://{admin_addr}/api/v1/");
    println!("hato: web console at http://{admin_addr}/");
    println!(
        "hato: data in {}; operator token in {}",
        data_dir.display(),
        token_path.display()
    );
    // The provider's block list: loaded now, reloaded after each change and purged of expired
    // entries every minute. Its snapshot (`block_list.list()`) is what the edge checks.
    let delist_url = config.edge.delist_url(admin_addr, &config.server.hostname);
    let block_list = Arc::new(hato_admin::BlockListService::new(
        delist_url.clone(),
        hato_admin::DelistLimits::default(),
        clock.clone(),
    ));
    let listed = block_list.reload(&*dyn_store, clock.now())?;
    println!("hato: delist page at {delist_url} ({listed} block list entries)");
    tasks.push(tokio::spawn(block_list.clone().run_maintenance(
        dyn_store.clone(),
        clock.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(keep_top_addresses(
        dyn_store.clone(),
        clock.clone(),
        stop_rx.clone(),
    )));
    let parts = EdgeParts {
        block_list: block_list.list(),
        throttle: throttle.clone(),
        resolver: resolver.clone(),
    };
    // The content stages (malware filter, transport rules) inside the edge: the edge's note
    // of the client's standing is in each recipient's slot before they run.
    let throttle_spam = config.throttle.enabled.then(|| throttle.clone());
    // Tenants' outbound connectors: the outbound agent routes by them, transport rules name
    // them. One snapshot for both, rebuilt when the store's connector version moves.
    let outbound_connectors = Arc::new(OutboundConnectors::new(dyn_store.clone()));
    let content = content_pipeline(
        &config,
        &dyn_store,
        &directory,
        &clock,
        &resolver,
        throttle_spam,
        outbound_connectors.clone(),
    )?;
    // RCPT accepts a restricted group provisionally only when the DATA's checks can settle it.
    let domain_authentication = content
        .as_ref()
        .is_some_and(|p| p.spam_filter().is_some())
        .then(|| resolver.clone());
    if let Some(pipeline) = &content {
        tasks.push(tokio::spawn(count_rule_hits(
            pipeline.clone(),
            stop_rx.clone(),
        )));
        // Users' junk / not-junk reports into their tenants' personalised classifiers.
        if let Some(spam) = pipeline.spam_filter() {
            let learner = hato_transport::spam_learning::ReportLearner::new(
                dyn_store.clone(),
                spam.classifier.clone(),
            );
            tasks.push(tokio::spawn(learner.run(stop_rx.clone())));
        }
    }
    let submission_content = content.clone();
    // Outbound spam's recipient limits and restricted senders (always on, as Exchange's
    // outbound spam policy is), for submission and relay alike.
    let senders = Arc::new(OutboundSenders::new(
        dyn_store.clone(),
        directory.clone(),
        clock.clone(),
        config.server.hostname.clone(),
    ));
    let policy = Arc::new(edge_policy(
        &config,
        &parts,
        OutboundSenderPolicy::new(
            ContentPolicy::new(
                DirectoryPolicy::new(directory.clone())
                    .with_domain_authentication(domain_authentication),
                content,
            ),
            Some(senders.clone()),
        ),
        dyn_store.clone(),
        clock.clone(),
    )?);
    let inbound = Arc::new(Inbound::new(
        dyn_store.clone(),
        clock.clone(),
        config.server.hostname.clone(),
        queued.clone(),
    ));
    let submission_server = submission_server(
        &config,
        &server_config,
        &dyn_store,
        &directory,
        &clock,
        OutboundSenderPolicy::new(
            ContentPolicy::new(DirectoryPolicy::new(directory.clone()), submission_content),
            Some(senders),
        ),
        inbound.clone(),
    );
    let smtp = SmtpServer::new(server_config, policy, inbound);
    for addr in &config.smtp.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen for SMTP on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Io(e.to_string()))?;
        println!("hato: SMTP listening on {local}");
        tasks.push(tokio::spawn(smtp.clone().run(listener, stop_rx.clone())));
    }
    for addr in &config.submission.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen for submission on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Io(e.to_string()))?;
        println!("hato: submission listening on {local}");
        tasks.push(tokio::spawn(
            submission_server.clone().run(listener, stop_rx.clone()),
        ));
    }

    let login = hato_admin::LoginLimiter::new(
        hato_admin::LoginLimits {
            max_failures: config.admin.login_max_failures,
            max_failures_per_ip: config.admin.login_max_failures_per_ip,
            lockout_secs: config.admin.login_lockout_secs,
            max_concurrent_hashes: config.admin.login_max_concurrent_hashes,
        },
        clock.clone(),
    );
    let outbound_settings = config
        .outbound
        .settings(&config.server.hostname)
        .map_err(|e| ServeError::Io(e.to_string()))?;
    let app = hato_admin::router(hato_admin::AppState {
        store: dyn_store.clone(),
        directory: directory.clone(),
        clock: clock.clone(),
        login: Arc::new(login),
        hostname: config.server.hostname.clone(),
        throttle: throttle.clone(),
        block_list,
        resolver: resolver.clone(),
        outbound: Some(Arc::new(outbound_settings.clone())),
        console: hato_admin::ConsoleSettings {
            idle_secs: config.admin.console_idle_secs,
            max_secs: config.admin.console_max_secs,
            secure_cookies: config.admin.console_secure_cookies,
        },
        test_clock: test_clock.clone(),
    });
    let (mta_sts_resolver, mta_sts_resolver2) = (resolver.clone(), resolver.clone());
    let mta_sts_clock = clock.clone();
    let outbound_resolver = resolver;
    let throttle_path = data_dir.join(crate::throttle::STATE_FILE);
    let snapshots = tokio::spawn(crate::throttle::keep(
        throttle.clone(),
        dyn_store.clone(),
        throttle_path.clone(),
        Duration::from_secs(config.throttle.snapshot_interval_secs),
        stop_rx.clone(),
    ));
    let mut admin_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = admin_stop.changed().await;
        };
        // With connect info: login limits count failures per client IP.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(admin_listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("admin API stopped: {e}");
        }
    }));

    // Random at each start: leases this process takes on queue entries carry it, so the logs
    // tell which process held what.
    let node = id::NodeId::random();
    let (digest_clock, digest_queued) = (clock.clone(), queued.clone());
    let (outbound_clock, outbound_queued, outbound_node) =
        (clock.clone(), queued.clone(), node.clone());
    tracing::info!("node id {node}: queue entries this process works on are leased to it");
    if let Some(tc) = &test_clock {
        // The delivery agent (delay notices, expiry, NDRs) looks at the queue when moved.
        let q = queued.clone();
        tc.on_advance(move || q.notify_one());
    }
    let agent = DeliveryAgent::new(
        directory.clone(),
        clock,
        config.server.hostname.clone(),
        queued,
        config.trace.retention_days,
        config.smtp.postmaster_address(),
        node,
    );
    agent.set_connection_log_retention_days(config.edge.connection_log_retention_days);
    agent.set_delay_notice_secs(config.outbound.delay_notice_secs);
    agent.set_remote_expiration_secs(config.outbound.expiration_secs);
    for (kind, _, days) in config.quarantine.days() {
        agent.set_quarantine_retention_days(kind, days);
    }
    let delivery = tokio::spawn(agent.run(stop_rx.clone()));
    // Outside recipients (mail contacts, relay, NDRs to outside senders): delivered by MX.
    let outbound = hato_transport::outbound::OutboundAgent::new(
        dyn_store.clone(),
        outbound_resolver,
        outbound_clock,
        outbound_node,
        outbound_settings,
        outbound_queued,
    )
    // Outbound connectors (`hato connector outbound`): smart hosts or MX per recipient domain,
    // a transport rule's choice, the TLS settings; no connector → MX.
    .with_selector(outbound_connectors.clone())
    // DKIM: each tenant's enabled signing configs (`hato dkim`) sign its mail as it leaves.
    .with_signer(Arc::new(hato_transport::dkim::DkimSigner::new(
        dyn_store.clone(),
    )));
    // MTA-STS (RFC 8461) for MX delivery: policies fetched over HTTPS with the same trust
    // anchors as outbound TLS, kept in the store.
    let outbound = if config.outbound.mta_sts {
        use hato_transport::outbound::mta_sts::{HttpsFetcher, MtaSts};
        let roots = match &outbound.settings().roots {
            Some(r) => r.clone(),
            None => hato_smtp::client::tls::system_trust_roots().unwrap_or_else(|e| {
                tracing::warn!("MTA-STS: {e}: no policy can be fetched");
                Arc::new(rustls::RootCertStore::empty())
            }),
        };
        let fetcher = HttpsFetcher::new(
            mta_sts_resolver,
            roots,
            config.outbound.mta_sts_port,
            Duration::from_secs(config.outbound.mta_sts_timeout_secs),
        )
        .map_err(ServeError::Io)?;
        let store: Arc<dyn hato_store::MtaStsStore> = dyn_store.clone();
        outbound.with_mta_sts(Arc::new(
            MtaSts::new(mta_sts_resolver2, mta_sts_clock, Arc::new(fetcher)).with_store(store),
        ))
    } else {
        outbound
    };
    let outbound = Arc::new(outbound);
    if let Some(tc) = &test_clock {
        // Retries, back-offs and the next warm-up day are due when the clock moves.
        let agent = outbound.clone();
        tc.on_advance(move || agent.wake());
    }
    tasks.push(tokio::spawn(outbound.run(stop_rx.clone())));
    // End-user quarantine notifications: a look for recipients owed a digest every
    // `notification_interval_secs`; release links lead to the admin listener's page.
    let release_url = config
        .quarantine
        .release_url(admin_addr, &config.server.hostname);
    println!("hato: quarantine release page at {release_url}");
    let digester = Digester::new(
        dyn_store.clone(),
        directory.clone(),
        digest_settings(&config, &dyn_store, &directory),
        digest_clock,
        DigestOptions {
            hostname: config.server.hostname.clone(),
            release_url,
            max_items: config.quarantine.notification_max_items,
            interval: Duration::from_secs(config.quarantine.notification_interval_secs),
        },
    )
    .with_queued(digest_queued);
    tasks.push(tokio::spawn(Arc::new(digester).run(stop_rx.clone())));

    wait_for_signal().await;
    println!("hato: shutting down");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), delivery).await;
    let _ = snapshots.await;
    // Once nothing records any more: the last snapshot.
    crate::throttle::save(throttle, throttle_path).await;
    store.close();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! MTA-STS (RFC 8461) for MX delivery: whether a recipient domain asks senders to deliver only
//! to the MX hosts it names, over TLS with a certificate valid for the host.
//!
//! - **Discovery** (§3.1): the TXT record at `_mta-sts.<domain>` (`v=STSv1; id=…`), through
//!   the injected [`Resolver`]. No record (or not exactly one `v=STSv1` record, or a bad id):
//!   the domain has no policy, unless one is cached.
//! - **Policy fetch** (§3.3): `https://mta-sts.<domain>/.well-known/mta-sts.txt` over HTTPS
//!   with the certificate checked against the trust anchors (the system's, plus `[outbound]
//!   extra_ca_file`) for the name `mta-sts.<domain>`; only a `200` answers (no redirect is
//!   followed), its media type `text/plain`, its body at most [`MAX_POLICY_BYTES`], the whole
//!   fetch within a timeout. The host's addresses come from the same resolver. HTTP/1.1 by
//!   hyper (already in the tree through axum), TLS by tokio-rustls with ring as everywhere.
//! - **Policy** (§3.2): `version: STSv1`, `mode` (`enforce`, `testing`, `none`), `mx`
//!   patterns (a leading `*.` stands for one label, §4.1), `max_age` in seconds (at most
//!   31557600, about a year).
//! - **Cache** (§5.1): a fetched policy is kept for its `max_age`; while the TXT id stays the
//!   same it is not fetched again; a new id triggers a fetch, and when that fetch fails (or
//!   the TXT lookup does) the cached policy, if it has not expired, still applies. Policies are
//!   kept in memory (at most [`MAX_CACHED`] domains) and, through [`MtaStsStore`], in the store,
//!   so that a restart keeps them.
//! - **What a policy asks** is [`Verdict`]: under `enforce`, only the MX hosts matching the
//!   patterns, each with `domain-validation` TLS for its own name (§4.1–§4.2); under `testing`,
//!   delivery as without a policy, the failures noted (TLSRPT, RFC 8460, is not sent).

use hato_core::dns::Resolver;
use hato_core::{Clock, Timestamp};
use hato_store::{MtaStsPolicyRecord, MtaStsStore};
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest policy body taken (RFC 8461 §3.3 leaves the limit to the sender; a policy is a
/// few hundred bytes, and 64 KiB is what Postfix's mta-sts-resolver also allows).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The longest `max_age` honoured (RFC 8461 §3.2: "maximum value of 31557600").
pub const MAX_AGE_CAP: u64 = 31_557_600;
/// The most MX patterns kept from one policy.
pub const MAX_MX_PATTERNS: usize = 100;
/// The most domains whose policies are kept in memory.
pub const MAX_CACHED: usize = 10_000;

/// A policy's mode (RFC 8461 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy (RFC 8461 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The MX patterns, lower case, without a final dot.
    pub mx: Vec<String>,
    /// Seconds it may be cached, capped at [`MAX_AGE_CAP`].
    pub max_age: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy has no \"version: STSv1\" field")]
    Version,
    #[error("the policy's mode is missing or not enforce, testing or none ({0:?})")]
    Mode(String),
    #[error("the policy's max_age is missing or not a number of seconds ({0:?})")]
    MaxAge(String),
    #[error("the policy's mode is {0} but it names no mx")]
    NoMx(&'static str),
}

impl Policy {
    /// Parses a policy body: lines of `key: value` separated by LF or CRLF (RFC 8461 §3.2);
    /// unknown keys are ignored; of a key other than `mx` given twice, the first counts.
    /// Linear in the body.
    pub fn parse(body: &str) -> Result<Policy, PolicyError> {
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "version" => {
                    version.get_or_insert(value);
                }
                "mode" => {
                    mode.get_or_insert(value);
                }
                "max_age" => {
                    max_age.get_or_insert(value);
                }
                "mx" if mx.len() < MAX_MX_PATTERNS => {
                    mx.push(value.trim_end_matches('.').to_ascii_lowercase());
                }
                _ => {}
            }
        }
        if version != Some("STSv1") {
            return Err(PolicyError::Version);
        }
        let mode = match mode {
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            other => return Err(PolicyError::Mode(other.unwrap_or("").to_string())),
        };
        let age = max_age.unwrap_or("");
        // 1*10DIGIT (RFC 8461 §3.2).
        if age.is_empty() || age.len() > 10 || !age.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PolicyError::MaxAge(age.to_string()));
        }
        let max_age = age
            .parse::<u64>()
            .map_err(|_| PolicyError::MaxAge(age.to_string()))?
            .min(MAX_AGE_CAP);
        mx.retain(|p| !p.is_empty());
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::NoMx(mode.as_str()));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether the MX host `host` matches one of the patterns: the same name, or one label
    /// more than a `*.` pattern's rest (RFC 8461 §4.1: `*.example.com` matches
    /// `mx1.example.com`, not `example.com` nor `a.b.example.com`). Case and a final dot
    /// do not count.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| match p.strip_prefix("*.") {
            Some(rest) => host
                .split_once('.')
                .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
            None => *p == host,
        })
    }

    /// The text stored for a cached policy (the fields, one a line, as a policy body).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "version: STSv1\nmode: {}\nmax_age: {}\n",
            self.mode.as_str(),
            self.max_age
        );
        for mx in &self.mx {
            s.push_str("mx: ");
            s.push_str(mx);
            s.push('\n');
        }
        s
    }
}

/// The policy id of a domain's `_mta-sts` TXT records (RFC 8461 §3.1): exactly one record
/// beginning `v=STSv1`, whose `id` is 1 to 32 letters and digits; anything else is no record.
pub fn txt_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| {
        let r = r.trim_start();
        r.starts_with("v=STSv1") && matches!(r.as_bytes().get(7), None | Some(b';' | b' ' | b'\t'))
    });
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    let mut id = None;
    for field in record.split(';') {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        if key.trim() == "id" && id.is_none() {
            id = Some(value.trim());
        }
    }
    let id = id?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(id.to_string())
}

// ---------------------------------------------------------------------------------------------
// Fetching

/// Why a policy could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("mta-sts.{domain} has no address: {detail}")]
    Resolve { domain: String, detail: String },
    #[error("connecting to {0} failed: {1}")]
    Connect(SocketAddr, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the policy server answered {0} (only 200 is taken; redirects are not followed)")]
    Status(u16),
    #[error("the policy's media type is {0:?}, not text/plain")]
    MediaType(String),
    #[error("the policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("the policy is not UTF-8")]
    NotUtf8,
    #[error("the fetch took longer than {0} seconds")]
    Timeout(u64),
}

pub type FetchFuture = Pin<Box<dyn Future<Output = Result<String, FetchError>> + Send + 'static>>;

/// Fetches the policy body of a domain (the HTTPS fetch; tests may give their own).
pub trait PolicyFetcher: Send + Sync {
    fn fetch(&self, domain: &str) -> FetchFuture;
}

/// The HTTPS fetch of RFC 8461 §3.3.
pub struct HttpsFetcher {
    resolver: Arc<dyn Resolver>,
    config: Arc<rustls::ClientConfig>,
    /// 443; tests point it at their server on loopback (`[outbound] mta_sts_port`).
    port: u16,
    timeout: Duration,
}

impl HttpsFetcher {
    /// Checks certificates against `roots` (the system's and `extra_ca_file`'s).
    pub fn new(
        resolver: Arc<dyn Resolver>,
        roots: Arc<RootCertStore>,
        port: u16,
        timeout: Duration,
    ) -> Result<HttpsFetcher, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsFetcher {
            resolver,
            config: Arc::new(config),
            port,
            timeout,
        })
    }
}

impl PolicyFetcher for HttpsFetcher {
    fn fetch(&self, domain: &str) -> FetchFuture {
        let host = format!("mta-sts.{domain}");
        let (resolver, config, port) = (self.resolver.clone(), self.config.clone(), self.port);
        let timeout = self.timeout;
        let domain = domain.to_string();
        Box::pin(async move {
            match tokio::time::timeout(timeout, fetch(resolver, config, domain, host, port)).await {
                Ok(r) => r,
                Err(_) => Err(FetchError::Timeout(timeout.as_secs())),
            }
        })
    }
}

async fn fetch(
    resolver: Arc<dyn Resolver>,
    config: Arc<rustls::ClientConfig>,
    domain: String,
    host: String,
    port: u16,
) -> Result<String, FetchError> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    let mut failures = Vec::new();
    match resolver.lookup_a(&host).await {
        Ok(v4) => addresses.extend(v4.into_iter().map(IpAddr::V4)),
        Err(e) => failures.push(e.to_string()),
    }
    match resolver.lookup_aaaa(&host).await {
        Ok(v6) => addresses.extend(v6.into_iter().map(IpAddr::V6)),
        Err(e) => failures.push(e.to_string()),
    }
    addresses.truncate(super::MAX_ADDRESSES);
    if addresses.is_empty() {
        return Err(FetchError::Resolve {
            domain,
            detail: failures.join("; "),
        });
    }
    let name = ServerName::try_from(host.clone())
        .map_err(|_| FetchError::Tls(host.clone(), "not a valid DNS name".into()))?;
    let mut last = None;
    for ip in addresses {
        let address = SocketAddr::new(ip, port);
        let tcp = match tokio::net::TcpStream::connect(address).await {
            Ok(t) => t,
            Err(e) => {
                last = Some(FetchError::Connect(address, e.to_string()));
                continue;
            }
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| FetchError::Tls(host.clone(), e.to_string()))?;
        return get(tls, &host, port).await;
    }
    Err(last.unwrap_or_else(|| FetchError::Http("no address to connect to".into())))
}

/// `GET /.well-known/mta-sts.txt` on an open TLS stream, HTTP/1.1.
async fn get<S>(io: S, host: &str, port: u16) -> Result<String, FetchError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let http = |e: &dyn std::fmt::Display| FetchError::Http(e.to_string());
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| http(&e))?;
    // The Host field names the port when it is not HTTPS's (RFC 9110 §7.2).
    let authority = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, authority)
        .header(hyper::header::USER_AGENT, "hato")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| http(&e))?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(|e| http(&e))?;
        let status = response.status().as_u16();
        // RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed", and only a 200 is a policy.
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let media = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let essence = media.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("text/plain") {
            // The server's text goes into trace: a bounded part of it.
            let shown: String = media.chars().take(100).collect();
            return Err(FetchError::MediaType(shown));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_POLICY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Http(e.to_string())
                }
            })?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| FetchError::NotUtf8)
    };
    // The connection is driven beside the exchange, and dropped with it.
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            r = &mut exchange => return r,
            c = &mut conn, if !conn_done => {
                conn_done = true;
                if let Err(e) = c {
                    return Err(http(&e));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cache and the verdict

/// A policy as cached: the TXT id it came with, when it was fetched, when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedPolicy {
    pub domain: String,
    pub id: String,
    pub policy: Policy,
    pub fetched: Timestamp,
    pub expires: Timestamp,
}

impl CachedPolicy {
    fn record(&self) -> MtaStsPolicyRecord {
        MtaStsPolicyRecord {
            domain: self.domain.clone(),
            id: self.id.clone(),
            policy: self.policy.to_text(),
            fetched: self.fetched,
            expires: self.expires,
        }
    }

    /// A kept policy; `None` when its text no longer parses.
    fn from_record(r: MtaStsPolicyRecord) -> Option<CachedPolicy> {
        Some(CachedPolicy {
            policy: Policy::parse(&r.policy).ok()?,
            domain: r.domain,
            id: r.id,
            fetched: r.fetched,
            expires: r.expires,
        })
    }
}

/// A domain's policy as it applies to one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub id: String,
    pub policy: Policy,
    /// Whether it came from the cache because the TXT lookup or the fetch failed.
    pub stale: bool,
    /// Why the cache was used, if it was for a failure.
    pub note: Option<String>,
}

impl Applied {
    /// A short description for trace: `enforce (id 2026a)`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "MTA-STS {} (policy id {})",
            self.policy.mode.as_str(),
            self.id
        );
        if let Some(note) = &self.note {
            s.push_str("; cached policy used: ");
            s.push_str(note);
        }
        s
    }
}

/// MTA-STS for the outbound agent: discovery, fetch and cache.
pub struct MtaSts {
    resolver: Arc<dyn Resolver>,
    clock: Arc<dyn Clock>,
    fetcher: Arc<dyn PolicyFetcher>,
    store: Option<Arc<dyn MtaStsStore>>,
    cache: Mutex<HashMap<String, CachedPolicy>>,
    /// One look-up and fetch per domain at a time: the destination's other connections wait
    /// for its answer instead of fetching the same policy again.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl MtaSts {
    pub fn new(
        resolver: Arc<dyn Resolver>,
        clock: Arc<dyn Clock>,
        fetcher: Arc<dyn PolicyFetcher>,
    ) -> Self {
        MtaSts {
            resolver,
            clock,
            fetcher,
            store: None,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps fetched policies in `store` too, and reads it for a domain not in memory.
    pub fn with_store(mut self, store: Arc<dyn MtaStsStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedPolicy>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached policy of `domain` that has not expired (memory first, then the store).
    async fn cached(&self, domain: &str, now: Timestamp) -> Option<CachedPolicy> {
        if let Some(c) = self.cache().get(domain).cloned() {
            return (c.expires > now).then_some(c);
        }
        let store = self.store.clone()?;
        let d = domain.to_string();
        let loaded = match tokio::task::spawn_blocking(move || store.mta_sts_policy(&d)).await {
            Ok(Ok(Some(r))) => CachedPolicy::from_record(r)?,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => {
                tracing::warn!("outbound: reading the MTA-STS policy of {domain} failed: {e}");
                return None;
            }
            Err(_) => return None,
        };
        if loaded.expires <= now {
            return None;
        }
        self.remember(loaded.clone());
        Some(loaded)
    }

    fn remember(&self, policy: CachedPolicy) {
        let now = self.clock.now();
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED && !cache.contains_key(&policy.domain) {
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= MAX_CACHED
                && let Some(k) = cache.keys().next().cloned()
            {
                cache.remove(&k);
            }
        }
        cache.insert(policy.domain.clone(), policy);
    }

    /// The policy that applies to delivery to `domain` now, or `None` when it has none (RFC
    /// 8461 §5.1): the TXT record's id; the cached policy while the id is the same; otherwise
    /// a fetch, and the cached policy when the fetch (or the TXT lookup) fails.
    pub async fn policy(&self, domain: &str) -> Option<Applied> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let gate = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(domain.clone())
            .or_default()
            .clone();
        let held = gate.lock().await;
        let applied = self.policy_now(&domain).await;
        drop(held);
        drop(gate);
        let mut inflight = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Nobody else holds or waits for the gate: it goes (the map stays as small as the
        // look-ups under way).
        if inflight
            .get(&domain)
            .is_some_and(|g| Arc::strong_count(g) == 1)
        {
            inflight.remove(&domain);
        }
        applied
    }

    async fn policy_now(&self, domain: &str) -> Option<Applied> {
        let domain = domain.to_string();
        let now = self.clock.now();
        let txt = self
            .resolver
            .lookup_txt(&format!("_mta-sts.{domain}"))
            .await;
        let cached = self.cached(&domain, now).await;
        let id = match txt {
            Ok(records) => txt_id(&records),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                // §5.1: a failed lookup is no reason to drop a policy that is still valid.
                return cached.map(|c| Applied {
                    id: c.id,
                    policy: c.policy,
                    stale: true,
                    note: Some(format!("the TXT lookup failed: {e}")),
                });
            }
        };
        let Some(id) = id else {
            // No record: a cached policy that has not expired still applies (§5.1; a domain
            // that ends its policy publishes `mode: none` first, §8.3).
            return cached.map(|c| Applied {
                id: c.id,
                policy: c.policy,
                stale: false,
                note: None,
            });
        };
        if let Some(c) = &cached
            && c.id == id
        {
            return Some(Applied {
                id,
                policy: c.policy.clone(),
                stale: false,
                note: None,
            });
        }
        let fetched = self
            .fetcher
            .fetch(&domain)
            .await
            .map_err(|e| e.to_string())
            .and_then(|body| Policy::parse(&body).map_err(|e| e.to_string()));
        match fetched {
            Ok(policy) => {
                let max_age = i64::try_from(policy.max_age).unwrap_or(i64::MAX);
                let entry = CachedPolicy {
                    domain: domain.clone(),
                    id: id.clone(),
                    policy: policy.clone(),
                    fetched: now,
                    expires: now.plus_seconds(max_age),
                };
                self.remember(entry.clone());
                if let Some(store) = &self.store
                    && let Err(e) = store.save_mta_sts_policy(entry.record()).await
                {
                    tracing::warn!("outbound: keeping the MTA-STS policy of {domain} failed: {e}");
                }
                Some(Applied {
                    id,
                    policy,
                    stale: false,
                    note: None,
                })
            }
            Err(e) => {
                tracing::info!("outbound: MTA-STS policy of {domain} (id {id}): {e}");
                cached.map(|c| Applied {
                    id: c.id,
                    policy: c.policy,
                    stale: true,
                    note: Some(format!("fetching policy id {id} failed: {e}")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_rfc_8461_writes_them() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, 604800);
        // LF alone, spaces, unknown keys, a max_age over the cap.
        let p = Policy::parse(
            "version:STSv1\nmode : testing\nfoo: bar\nmx:  mx.b.test \nmax_age: 9999999999\n",
        )
        .unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Testing, MAX_AGE_CAP));
        assert_eq!(
            Policy::parse("version: STSv1\nmode: none\nmax_age: 0")
                .unwrap()
                .mode,
            Mode::None
        );
        for (bad, want) in [
            ("mode: enforce\nmx: a\nmax_age: 1", PolicyError::Version),
            (
                "version: STSv1\nmode: strict\nmx: a\nmax_age: 1",
                PolicyError::Mode("strict".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1",
                PolicyError::MaxAge("-1".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a",
                PolicyError::MaxAge("".into()),
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 5",
                PolicyError::NoMx("enforce"),
            ),
        ] {
            assert_eq!(Policy::parse(bad), Err(want), "{bad:?}");
        }
        let round = p.to_text();
        assert_eq!(Policy::parse(&round), Ok(p));
    }

    #[test]
    fn mx_patterns_match_the_name_or_one_label_under_a_wildcard() {
        let p = Policy {
            mode: Mode::Enforce,
            mx: vec!["mail.example.com".into(), "*.example.net".into()],
            max_age: 1,
        };
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("MAIL.Example.com."));
        assert!(p.matches("mx1.example.net"));
        assert!(!p.matches("example.net"));
        assert!(!p.matches("a.b.example.net"));
        assert!(!p.matches("other.example.com"));
        assert!(!p.matches(".example.net"));
    }

    use hato_core::clock::ManualClock;
    use hato_core::dns::{DnsError, DnsFuture, Mx, RecordKind};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `_mta-sts.b.test`'s TXT records: `Ok(None)` none, `Err(())` the lookup times out.
    struct Txt(Mutex<Result<Option<String>, ()>>);

    impl Resolver for Txt {
        fn lookup_a(&self, name: &str) -> DnsFuture<Vec<Ipv4Addr>> {
            let e = DnsError::NxDomain { name: name.into() };
            Box::pin(async move { Err(e) })
        }
        fn lookup_aaaa(&self, name: &str) -> DnsFuture<Vec<Ipv6Addr>> {
            let e = DnsError::NxDomain { name: name.into() };
            Box::pin(async move { Err(e) })
        }
        fn lookup_txt(&self, name: &str) -> DnsFuture<Vec<String>> {
            let r = match &*self.0.lock().unwrap() {
                Ok(Some(t)) => Ok(vec![t.clone()]),
                Ok(None) => Err(DnsError::NxDomain { name: name.into() }),
                Err(()) => Err(DnsError::Timeout {
                    name: name.into(),
                    kind: RecordKind::Txt,
                    ms: 1,
                }),
            };
            Box::pin(async move { r })
        }
        fn lookup_mx(&self, name: &str) -> DnsFuture<Vec<Mx>> {
            let e = DnsError::NxDomain { name: name.into() };
            Box::pin(async move { Err(e) })
        }
        fn lookup_ptr(&self, _ip: IpAddr) -> DnsFuture<Vec<String>> {
            Box::pin(async { Ok(vec![]) })
        }
    }

    /// Answers with its body, or fails; counts the fetches.
    struct Fetcher {
        body: Mutex<Option<String>>,
        count: AtomicUsize,
    }

    impl PolicyFetcher for Fetcher {
        fn fetch(&self, _domain: &str) -> FetchFuture {
            self.count.fetch_add(1, Ordering::SeqCst);
            let r = self
                .body
                .lock()
                .unwrap()
                .clone()
                .ok_or(FetchError::Status(404));
            // A fetch takes time: lookups that do not wait for it would fetch too.
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                r
            })
        }
    }

    struct Setup {
        txt: Arc<Txt>,
        fetcher: Arc<Fetcher>,
        clock: Arc<ManualClock>,
        sts: MtaSts,
    }

    fn setup() -> Setup {
        let txt = Arc::new(Txt(Mutex::new(Ok(Some("v=STSv1; id=1".into())))));
        let fetcher = Arc::new(Fetcher {
            body: Mutex::new(Some(
                "version: STSv1\nmode: enforce\nmx: mx.b.test\nmax_age: 3600\n".into(),
            )),
            count: AtomicUsize::new(0),
        });
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000_000)));
        let sts = MtaSts::new(txt.clone(), clock.clone(), fetcher.clone());
        Setup {
            txt,
            fetcher,
            clock,
            sts,
        }
    }

    #[tokio::test]
    async fn a_cached_policy_lives_for_its_max_age() {
        let s = setup();
        let p = s.sts.policy("B.test.").await.expect("a policy");
        assert_eq!(
            (p.id.as_str(), p.policy.mode, p.stale),
            ("1", Mode::Enforce, false)
        );
        // Within max_age, the same id: no fetch; the TXT record gone: still the cached policy.
        s.clock.advance_seconds(3599);
        assert!(s.sts.policy("b.test").await.is_some());
        *s.txt.0.lock().unwrap() = Ok(None);
        assert!(s.sts.policy("b.test").await.is_some());
        assert_eq!(s.fetcher.count.load(Ordering::SeqCst), 1);
        // Expired, and no record: no policy.
        s.clock.advance_seconds(2);
        assert_eq!(s.sts.policy("b.test").await, None);
    }

    #[tokio::test]
    async fn failures_fall_back_to_the_cache_until_it_expires() {
        let s = setup();
        assert!(s.sts.policy("b.test").await.is_some());
        // The TXT lookup fails: the cached policy, marked stale.
        *s.txt.0.lock().unwrap() = Err(());
        let p = s.sts.policy("b.test").await.expect("cached");
        assert!(
            p.stale
                && p.note
                    .as_deref()
                    .unwrap_or("")
                    .contains("TXT lookup failed")
        );
        // A new id whose fetch fails: the cached policy, marked stale.
        *s.txt.0.lock().unwrap() = Ok(Some("v=STSv1; id=2".into()));
        *s.fetcher.body.lock().unwrap() = None;
        let p = s.sts.policy("b.test").await.expect("cached");
        assert_eq!((p.id.as_str(), p.stale), ("1", true));
        assert_eq!(s.fetcher.count.load(Ordering::SeqCst), 2);
        // Once it expired, a failed fetch leaves no policy (RFC 8461 §5.1: deliver as
        // without one).
        s.clock.advance_seconds(3601);
        assert_eq!(s.sts.policy("b.test").await, None);
        // A body that is no policy is as good as no answer.
        *s.fetcher.body.lock().unwrap() = Some("<html>".into());
        assert_eq!(s.sts.policy("b.test").await, None);
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_domain_fetch_once() {
        let s = Arc::new(setup());
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.sts.policy("b.test").await })
            })
            .collect();
        for r in runs {
            assert!(r.await.unwrap().is_some());
        }
        assert_eq!(s.fetcher.count.load(Ordering::SeqCst), 1);
        assert!(s.sts.inflight.lock().unwrap().is_empty());
    }

    #[test]
    fn the_txt_record_gives_one_id_or_none() {
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            txt_id(&r(&["v=STSv1; id=20160831085700Z;"])),
            Some("20160831085700Z".into())
        );
        assert_eq!(
            txt_id(&r(&["v=spf1 -all", "v=STSv1;id=abc"])),
            Some("abc".into())
        );
        assert_eq!(txt_id(&r(&["v=STSv1; id=a", "v=STSv1; id=b"])), None);
        assert_eq!(txt_id(&r(&["v=STSv1"])), None);
        assert_eq!(txt_id(&r(&["v=STSv1; id=not-alnum"])), None);
        assert_eq!(
            txt_id(&r(&[&format!("v=STSv1; id={}", "a".repeat(33))])),
            None
        );
        assert_eq!(txt_id(&r(&["v=STSv10; id=a"])), None);
        assert_eq!(txt_id(&r(&[])), None);
    }
}

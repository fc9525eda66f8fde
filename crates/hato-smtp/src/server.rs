//! The SMTP listener: accepts connections, enforces connection limits and timeouts, performs
//! STARTTLS, and drives a [`Session`] per connection. Everything protocol-related is in the
//! session; this loop only moves bytes.

use crate::policy::SmtpPolicy;
use crate::session::{Output, Session, SessionConfig};
use hato_core::MessageContext;
use hato_core::reply::{self, Reply};
use hato_core::{ClientContext, Reason, Refusal, Stage};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Commits a message durably and returns its trace id, or the reply to give instead.
pub trait Submitter: Send + Sync + 'static {
    fn submit(
        &self,
        message: MessageContext,
    ) -> Pin<Box<dyn Future<Output = Result<String, Reply>> + Send>>;
}

#[derive(Clone)]
pub struct ServerConfig {
    pub session: SessionConfig,
    pub max_connections: usize,
    /// The per-client cap: per IPv4 address, per IPv6 prefix of `ipv6_prefix_length` bits.
    pub max_connections_per_ip: usize,
    /// 1–128; 64 by default, as one host or site usually holds a whole /64 (RFC 4291 §2.5.4).
    pub ipv6_prefix_length: u8,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub session_timeout: Duration,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long to wait before the banner, watching for a client that talks first
    /// (`edge.greeting_delay_ms`; zero, the default, sends the banner at once).
    pub greeting_delay: Duration,
}

/// What a client's connections are counted under for the per-IP cap (shared with the throttle,
/// which keeps its reputation per the same key).
pub use hato_core::client_key;

/// Counts open connections, in total and per client key ([`client_key`]).
#[derive(Default)]
struct ConnectionCounts {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place in [`ConnectionCounts`]; gives it back when dropped.
struct Slot {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut map) = self.counts.per_ip.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCounts {
    /// A place for one more connection of the client counted under `ip` (a [`client_key`]).
    fn try_take(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_ip: usize,
    ) -> Result<Slot, Reply> {
        if self.total.fetch_add(1, Ordering::SeqCst) >= max_total {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(reply::TOO_MANY_CONNECTIONS);
        }
        let mut map = match self.per_ip.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let n = map.entry(ip).or_insert(0);
        if *n >= max_ip {
            drop(map);
            self.total.fetch_sub(1, Ordering::SeqCst);
            return Err(reply::TOO_MANY_CONNECTIONS_FROM_IP);
        }
        *n += 1;
        Ok(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

pub struct SmtpServer<P: SmtpPolicy + 'static> {
    config: ServerConfig,
    policy: Arc<P>,
    submitter: Arc<dyn Submitter>,
    counts: Arc<ConnectionCounts>,
}

impl<P: SmtpPolicy + 'static> SmtpServer<P> {
    pub fn new(config: ServerConfig, policy: Arc<P>, submitter: Arc<dyn Submitter>) -> Arc<Self> {
        Arc::new(SmtpServer {
            config,
            policy,
            submitter,
            counts: Arc::default(),
        })
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.changed() => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(10);
                    let server = self.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move { server.connection(stream, peer, shutdown).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Tells the policy the server turned `client` away with `reply` because of `setting`.
    fn cut(&self, client: &ClientContext, reply: &Reply, setting: &str) {
        let text = match setting {
            "smtp.session_timeout_secs" => format!(
                "The session lasted {} s, the longest a session may last",
                self.config.session_timeout.as_secs()
            ),
            "smtp.max_connections" => format!(
                "{} connections were open, the most the server takes at once",
                self.config.max_connections
            ),
            _ => format!(
                "{} connections were open from the client's {}, the most one client may have",
                self.config.max_connections_per_ip,
                if client.ip().is_ipv6() {
                    "network"
                } else {
                    "address"
                }
            ),
        };
        let refusal = Refusal::new(
            reply.clone(),
            Reason::new(Stage::Session, text).rule(setting),
        );
        self.policy.cut(client, &refusal);
    }

    fn session_cut(&self, session: &Session<P>) {
        self.cut(
            session.client(),
            &reply::SESSION_TIMEOUT,
            "smtp.session_timeout_secs",
        );
    }

    async fn connection(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let ip = peer.ip();
        let key = client_key(ip, self.config.ipv6_prefix_length);
        let limits = Limits {
            idle: self.config.idle_timeout,
            deadline: Instant::now() + self.config.session_timeout,
        };
        let _slot = match self.counts.try_take(
            key,
            self.config.max_connections,
            self.config.max_connections_per_ip,
        ) {
            Ok(s) => s,
            Err(r) => {
                let setting = if r == reply::TOO_MANY_CONNECTIONS {
                    "smtp.max_connections"
                } else {
                    "smtp.max_connections_per_ip"
                };
                let local = stream.local_addr().unwrap_or(peer);
                self.cut(&ClientContext::new(peer, local), &r, setting);
                last_words(&mut stream, &r, limits).await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let mut session = Session::new(
            self.config.session.clone(),
            self.policy.clone(),
            ClientContext::new(peer, local),
        );
        if !self.config.greeting_delay.is_zero() {
            // RFC 5321 §4.3.1: the client waits for the banner. One read while the delay runs
            // (at most READ_BUFFER bytes, kept by the session): a client that talks first is
            // not waiting (Postfix postscreen's pregreet test), and the connect hook decides.
            let mut early = vec![0u8; READ_BUFFER];
            let started = Instant::now();
            let wait = self.config.greeting_delay.min(limits.remaining());
            let mut shutdown = shutdown.clone();
            let read = tokio::select! {
                r = tokio::time::timeout(wait, stream.read(&mut early)) => r,
                _ = shutdown.changed() => {
                    last_words(&mut stream, &reply::SHUTTING_DOWN, limits).await;
                    return;
                }
            };
            match read {
                // Waited the delay out: the client is not talking out of turn.
                Err(_) => {}
                // Gone before the banner.
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => session.talked_early(&early[..n], started.elapsed()),
            }
        }
        let start = session.start();
        match self
            .drive(&mut stream, &mut session, start, limits, shutdown.clone())
            .await
        {
            Next::Close => {}
            Next::StartTls => {
                let Some(tls) = self.config.tls.clone() else {
                    return;
                };
                // A client that trickles its handshake is held to the same limits as one that
                // trickles commands.
                let handshake =
                    tokio::time::timeout(limits.for_write(), TlsAcceptor::from(tls).accept(stream))
                        .await;
                let mut tls_stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {ip} failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
                let (_, conn) = tls_stream.get_ref();
                session.tls_established(crate::tls_info(conn));
                self.drive(&mut tls_stream, &mut session, Vec::new(), limits, shutdown)
                    .await;
                // close_notify is a write like any other.
                let _ = tokio::time::timeout(limits.idle, tls_stream.shutdown()).await;
            }
        }
    }

    /// Moves bytes between the client and the session until the session ends, a limit is
    /// reached, or a TLS handshake is due.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        session: &mut Session<P>,
        first: Vec<Output>,
        limits: Limits,
        mut shutdown: watch::Receiver<bool>,
    ) -> Next {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut pending_out: Vec<u8> = Vec::new();
        let mut queue: std::collections::VecDeque<Output> = first.into();
        loop {
            while let Some(output) = queue.pop_front() {
                match output {
                    Output::Send(bytes) => pending_out.extend_from_slice(&bytes),
                    Output::Decide(decision) => {
                        // Replies to the commands before it go out first.
                        if send(stream, &mut pending_out, limits).await.is_err() {
                            return Next::Close;
                        }
                        let answer = tokio::select! {
                            r = tokio::time::timeout(limits.remaining(), decision) => r,
                            _ = shutdown.changed() => {
                                last_words(stream, &reply::SHUTTING_DOWN, limits).await;
                                return Next::Close;
                            }
                        };
                        match answer {
                            Ok(answer) => queue.extend(session.decided(answer)),
                            Err(_) => {
                                self.session_cut(session);
                                last_words(stream, &reply::SESSION_TIMEOUT, limits).await;
                                return Next::Close;
                            }
                        }
                    }
                    Output::Submit(message) => {
                        // Replies to pipelined commands before the DATA go out first.
                        if send(stream, &mut pending_out, limits).await.is_err() {
                            return Next::Close;
                        }
                        // Not interrupted by a shutdown: once handed to the store, the message
                        // may become durable, and the client should learn that it did.
                        let submitted = self.submitter.submit(*message);
                        match tokio::time::timeout(limits.remaining(), submitted).await {
                            Ok(result) => queue.extend(session.submitted(result)),
                            Err(_) => {
                                self.session_cut(session);
                                last_words(stream, &reply::SESSION_TIMEOUT, limits).await;
                                return Next::Close;
                            }
                        }
                    }
                    Output::StartTls => {
                        if send(stream, &mut pending_out, limits).await.is_err() {
                            return Next::Close;
                        }
                        return Next::StartTls;
                    }
                    Output::Close => {
                        let _ = send(stream, &mut pending_out, limits).await;
                        return Next::Close;
                    }
                }
            }
            if send(stream, &mut pending_out, limits).await.is_err() {
                return Next::Close;
            }
            if limits.remaining().is_zero() {
                self.session_cut(session);
                last_words(stream, &reply::SESSION_TIMEOUT, limits).await;
                return Next::Close;
            }
            let wait = if session.in_data() {
                self.config.data_timeout
            } else {
                self.config.idle_timeout
            };
            let wait = wait.min(limits.remaining());
            let read = tokio::select! {
                r = tokio::time::timeout(wait, stream.read(&mut buf)) => r,
                _ = shutdown.changed() => {
                    last_words(stream, &reply::SHUTTING_DOWN, limits).await;
                    return Next::Close;
                }
            };
            let n = match read {
                Err(_) => {
                    let r = if limits.remaining().is_zero() {
                        self.session_cut(session);
                        reply::SESSION_TIMEOUT
                    } else {
                        session.timeout_reply()
                    };
                    last_words(stream, &r, limits).await;
                    return Next::Close;
                }
                Ok(Err(_)) | Ok(Ok(0)) => return Next::Close,
                Ok(Ok(n)) => n,
            };
            queue.extend(session.feed(&buf[..n]));
        }
    }
}

/// How much one read takes at most; the session keeps no more than this of unprocessed input
/// while it waits for a decision or a commit, because nothing is read meanwhile.
pub const READ_BUFFER: usize = 8192;

/// The time limits of one connection.
#[derive(Clone, Copy)]
struct Limits {
    /// The command timeout: no read, and no write, may take longer.
    idle: Duration,
    /// The end of the session, whatever the client does.
    deadline: Instant,
}

impl Limits {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// A write may take the command timeout, but never outlast the session: a client that
    /// reads slowly (or not at all) cannot keep its connection by it.
    fn for_write(&self) -> Duration {
        self.idle.min(self.remaining())
    }
}

#[derive(Debug)]
struct WriteFailed;

/// Writes and flushes what is pending, within [`Limits::for_write`]. A client that does not
/// take its replies in time is not waited for any longer: the caller closes the connection.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &mut Vec<u8>,
    limits: Limits,
) -> Result<(), WriteFailed> {
    if bytes.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(limits.for_write(), write).await {
        Ok(Ok(())) => {
            bytes.clear();
            Ok(())
        }
        Ok(Err(_)) | Err(_) => Err(WriteFailed),
    }
}

/// The last reply before closing (a timeout, a shutdown, a connection cap): it gets the command
/// timeout even when the session's time is up, so that a reading client learns why.
async fn last_words<S: AsyncWrite + Unpin>(stream: &mut S, r: &Reply, limits: Limits) {
    let write = async {
        stream.write_all(&r.to_wire()).await?;
        stream.flush().await
    };
    let _ = tokio::time::timeout(limits.idle, write).await;
}

enum Next {
    Close,
    StartTls,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_prefix_shares_one_count() {
        let counts: Arc<ConnectionCounts> = Arc::default();
        let take = |a: &str| counts.try_take(client_key(ip(a), 64), 100, 2);
        let a = take("2001:db8:1:2::1").unwrap();
        let _b = take("2001:db8:1:2::2").unwrap();
        assert_eq!(
            take("2001:db8:1:2:dead:beef::3").err(),
            Some(reply::TOO_MANY_CONNECTIONS_FROM_IP)
        );
        // Another /64, and IPv4 addresses, have counts of their own.
        let _c = take("2001:db8:1:3::1").unwrap();
        let _d = take("192.0.2.1").unwrap();
        let _e = take("192.0.2.1").unwrap();
        assert!(take("::ffff:192.0.2.1").is_err(), "mapped counts as IPv4");
        let _f = take("192.0.2.2").unwrap();
        // A closed connection frees its place.
        drop(a);
        let _g = take("2001:db8:1:2::9").unwrap();
        assert_eq!(counts.total.load(Ordering::SeqCst), 6);
    }
}

//! The SMTP listener: accepts connections, enforces connection limits and timeouts, performs
//! STARTTLS, and drives a [`Session`] per connection. Everything protocol-related is in the
//! session; this loop only moves bytes.

use crate::policy::SmtpPolicy;
use crate::session::{Envelope, Output, Session, SessionConfig};
use hato_core::reply::{self, Reply};
use hato_core::{ClientContext, TlsInfo};
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
        envelope: Envelope,
    ) -> Pin<Box<dyn Future<Output = Result<String, Reply>> + Send>>;
}

#[derive(Clone)]
pub struct ServerConfig {
    pub session: SessionConfig,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub session_timeout: Duration,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Counts open connections, in total and per client IP.
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

    async fn connection(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let ip = peer.ip();
        let _slot = match self.counts.try_take(
            ip,
            self.config.max_connections,
            self.config.max_connections_per_ip,
        ) {
            Ok(s) => s,
            Err(r) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stream.write_all(&r.to_wire()))
                        .await;
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
        let deadline = Instant::now() + self.config.session_timeout;
        let start = session.start();
        match self
            .drive(&mut stream, &mut session, start, deadline, shutdown.clone())
            .await
        {
            Next::Close => {}
            Next::StartTls => {
                let Some(tls) = self.config.tls.clone() else {
                    return;
                };
                let handshake = tokio::time::timeout(
                    self.config.idle_timeout,
                    TlsAcceptor::from(tls).accept(stream),
                )
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
                let info = TlsInfo {
                    version: conn
                        .protocol_version()
                        .map(|v| {
                            v.as_str()
                                .unwrap_or("TLS")
                                .replace("TLSv1_", "TLS1.")
                                .replace("TLSv", "TLS")
                        })
                        .unwrap_or_default(),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| c.suite().as_str().unwrap_or("unknown").to_string())
                        .unwrap_or_default(),
                };
                session.tls_established(info);
                self.drive(
                    &mut tls_stream,
                    &mut session,
                    Vec::new(),
                    deadline,
                    shutdown,
                )
                .await;
                let _ = tls_stream.shutdown().await;
            }
        }
    }

    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        session: &mut Session<P>,
        first: Vec<Output>,
        deadline: Instant,
        mut shutdown: watch::Receiver<bool>,
    ) -> Next {
        let mut buf = vec![0u8; 8192];
        let mut pending_out: Vec<u8> = Vec::new();
        let mut queue: std::collections::VecDeque<Output> = first.into();
        loop {
            while let Some(output) = queue.pop_front() {
                match output {
                    Output::Send(bytes) => pending_out.extend_from_slice(&bytes),
                    Output::Decide(decision) => {
                        // Replies to the commands before it go out first.
                        if !pending_out.is_empty()
                            && write_all(stream, &mut pending_out).await.is_err()
                        {
                            return Next::Close;
                        }
                        let answer = decision.await;
                        queue.extend(session.decided(answer));
                    }
                    Output::Submit(envelope) => {
                        // Replies to pipelined commands before the DATA go out first.
                        if !pending_out.is_empty()
                            && write_all(stream, &mut pending_out).await.is_err()
                        {
                            return Next::Close;
                        }
                        let result = self.submitter.submit(*envelope).await;
                        queue.extend(session.submitted(result));
                    }
                    Output::StartTls => {
                        if write_all(stream, &mut pending_out).await.is_err() {
                            return Next::Close;
                        }
                        return Next::StartTls;
                    }
                    Output::Close => {
                        let _ = write_all(stream, &mut pending_out).await;
                        return Next::Close;
                    }
                }
            }
            if !pending_out.is_empty() && write_all(stream, &mut pending_out).await.is_err() {
                return Next::Close;
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = stream.write_all(&reply::SESSION_TIMEOUT.to_wire()).await;
                return Next::Close;
            }
            let wait = if session.in_data() {
                self.config.data_timeout
            } else {
                self.config.idle_timeout
            };
            let wait = wait.min(deadline - now);
            let read = tokio::select! {
                r = tokio::time::timeout(wait, stream.read(&mut buf)) => r,
                _ = shutdown.changed() => {
                    let _ = stream.write_all(&reply::SHUTTING_DOWN.to_wire()).await;
                    return Next::Close;
                }
            };
            let n = match read {
                Err(_) => {
                    let r = if Instant::now() >= deadline {
                        reply::SESSION_TIMEOUT
                    } else {
                        session.timeout_reply()
                    };
                    let _ = stream.write_all(&r.to_wire()).await;
                    return Next::Close;
                }
                Ok(Err(_)) | Ok(Ok(0)) => return Next::Close,
                Ok(Ok(n)) => n,
            };
            queue.extend(session.feed(&buf[..n]));
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &mut Vec<u8>,
) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await?;
    bytes.clear();
    Ok(())
}

enum Next {
    Close,
    StartTls,
}

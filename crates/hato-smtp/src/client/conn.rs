//! The SMTP client on tokio: connects (from a chosen source address), moves bytes between the
//! socket and a [`Client`], performs STARTTLS by the connector's [`TlsSettings`], streams the
//! message, and holds every wait to its stage's timeout. Everything protocol-related is in the
//! state machine.

use super::tls::{self, TlsSettings};
use super::{
    Capabilities, Client, ClientConfig, ClientError, DataEncoder, Output, Stage, Transaction,
    TransactionError, TransactionResult, Transcript,
};
use super::{RecipientResult, Status};
use hato_core::TlsInfo;
use hato_core::reply::Reply;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long each stage may take: RFC 5321 §4.5.3.2's minimums where it gives them, Postfix's
/// defaults where it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Postfix's `smtp_connect_timeout`.
    pub connect: Duration,
    /// §4.5.3.2.1: 5 minutes.
    pub greeting: Duration,
    /// EHLO/HELO: Postfix's `smtp_helo_timeout`, 5 minutes.
    pub hello: Duration,
    /// STARTTLS and the handshake: Postfix's `smtp_starttls_timeout`, 5 minutes.
    pub starttls: Duration,
    /// §4.5.3.2.2: 5 minutes.
    pub mail: Duration,
    /// §4.5.3.2.3: 5 minutes.
    pub rcpt: Duration,
    /// §4.5.3.2.4: 2 minutes for the 354.
    pub data_init: Duration,
    /// §4.5.3.2.5: 3 minutes for each block of content written.
    pub data_block: Duration,
    /// §4.5.3.2.6: 10 minutes for the reply after the end of data.
    pub data_done: Duration,
    /// Postfix's `smtp_rset_timeout`, 20 seconds: RSET also checks that a reused session is
    /// alive, and should not hold a delivery long when it is not.
    pub rset: Duration,
    /// Postfix's `smtp_quit_timeout`, 5 minutes.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: min(5),
            hello: min(5),
            starttls: min(5),
            mail: min(5),
            rcpt: min(5),
            data_init: min(2),
            data_block: min(3),
            data_done: min(10),
            rset: Duration::from_secs(20),
            quit: min(5),
        }
    }
}

impl Timeouts {
    /// The same limit for every stage (tests).
    pub fn uniform(limit: Duration) -> Self {
        Timeouts {
            connect: limit,
            greeting: limit,
            hello: limit,
            starttls: limit,
            mail: limit,
            rcpt: limit,
            data_init: limit,
            data_block: limit,
            data_done: limit,
            rset: limit,
            quit: limit,
        }
    }

    pub fn for_stage(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Connect => self.connect,
            Stage::Greeting => self.greeting,
            Stage::Hello => self.hello,
            Stage::StartTls | Stage::TlsHandshake => self.starttls,
            Stage::Idle | Stage::Rset => self.rset,
            Stage::Mail => self.mail,
            Stage::Rcpt => self.rcpt,
            Stage::Data => self.data_init,
            Stage::DataBlock => self.data_block,
            Stage::EndOfData => self.data_done,
            Stage::Quit => self.quit,
        }
    }
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub address: SocketAddr,
    /// The server's host name (the MX or smart host), for TLS's SNI and the report; `None`
    /// for a server given by its address.
    pub host_name: Option<String>,
    /// The local address to connect from (a delivery pool's, such as the high-risk pool's);
    /// `None` lets the system choose.
    pub source: Option<IpAddr>,
    /// Our name in EHLO/HELO (the pool's).
    pub helo_name: String,
    pub tls: TlsSettings,
    /// Trust anchors for certificate checks instead of the system's.
    pub roots: Option<Arc<RootCertStore>>,
    pub timeouts: Timeouts,
    pub max_reply_bytes: usize,
    pub transcript_limit: usize,
}

impl ConnectOptions {
    pub fn new(address: SocketAddr, helo_name: impl Into<String>) -> Self {
        let defaults = ClientConfig::default();
        ConnectOptions {
            address,
            host_name: None,
            source: None,
            helo_name: helo_name.into(),
            tls: TlsSettings::default(),
            roots: None,
            timeouts: Timeouts::default(),
            max_reply_bytes: defaults.max_reply_bytes,
            transcript_limit: defaults.transcript_limit,
        }
    }
}

/// A message's content: bytes in memory, then (for a large queued message) the rest in a
/// file, as the queue keeps them.
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub head: Vec<u8>,
    pub file: Option<PathBuf>,
}

impl From<Vec<u8>> for Message {
    fn from(head: Vec<u8>) -> Self {
        Message { head, file: None }
    }
}

/// What is known of a session when it ends (or now).
#[derive(Clone, Debug)]
pub struct SessionReport {
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    pub host_name: Option<String>,
    pub greeting: Option<Reply>,
    pub capabilities: Option<Capabilities>,
    /// The TLS protocol and cipher, when the session used TLS.
    pub tls: Option<TlsInfo>,
    /// Transactions that went to the server (not those refused before).
    pub transactions: usize,
    pub transcript: Transcript,
    /// Why the session ended early.
    pub error: Option<ClientError>,
}

/// A session that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OpenError {
    pub error: ClientError,
    pub report: SessionReport,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent: the transaction cannot be (see [`TransactionError`]).
    #[error(transparent)]
    Invalid(#[from] TransactionError),
    /// Nothing was sent: the message's file cannot be read. The session is still usable.
    #[error("the message could not be read: {0}")]
    Unreadable(String),
    /// The session failed (during this transaction, or before it): it is over. The result
    /// has the replies that came, and the failure's reply for each recipient left undecided.
    #[error("{error}")]
    Failed {
        error: ClientError,
        result: Box<TransactionResult>,
    },
}

/// An open session, ready for transactions.
pub struct Connection {
    stream: Option<Stream>,
    client: Client,
    options: ConnectOptions,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    local: Option<SocketAddr>,
    tls: Option<TlsInfo>,
    transactions: usize,
    error: Option<ClientError>,
    buf: Vec<u8>,
}

/// What [`Connection::drive`] stopped at.
enum Event {
    Ready,
    Done(TransactionResult),
    Closed,
    Failed(ClientError, Option<TransactionResult>),
}

/// How much is read, and how much message content is encoded, at a time.
const CHUNK: usize = 64 * 1024;

impl Connection {
    /// Connects, reads the greeting, says EHLO and performs STARTTLS as the settings ask.
    pub async fn open(options: ConnectOptions) -> Result<Connection, Box<OpenError>> {
        let client = Client::new(ClientConfig {
            helo_name: options.helo_name.clone(),
            starttls: options.tls.starttls(),
            max_reply_bytes: options.max_reply_bytes,
            transcript_limit: options.transcript_limit,
            ..ClientConfig::default()
        });
        let mut conn = Connection {
            stream: None,
            client,
            tls_config: None,
            local: None,
            tls: None,
            transactions: 0,
            error: None,
            buf: vec![0; 8192],
            options,
        };
        if conn.options.tls != TlsSettings::Disabled {
            match tls::client_config(&conn.options.tls, conn.options.roots.clone()) {
                Ok(c) => conn.tls_config = Some(c),
                Err(e) => {
                    // Without trust anchors no certificate can pass validation.
                    let error = match e {
                        tls::TlsError::NoRoots => ClientError::Certificate(e.to_string()),
                        _ => ClientError::TlsHandshake(e.to_string()),
                    };
                    return Err(conn.open_failed(error));
                }
            }
        }
        let stream = match connect(&conn.options).await {
            Ok(s) => s,
            Err(e) => return Err(conn.open_failed(e)),
        };
        conn.local = stream.local_addr().ok();
        conn.client.note(&format!(
            "connected to {}{} from {}",
            conn.options.address,
            conn.options
                .host_name
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            conn.local
                .map(|a| a.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        conn.stream = Some(Stream::Plain(stream));
        match conn.drive(Vec::new(), None).await {
            Event::Ready => Ok(conn),
            Event::Failed(e, _) => Err(conn.open_failed(e)),
            Event::Done(_) | Event::Closed => {
                let e = ClientError::Protocol("the session ended before it was ready".into());
                Err(conn.open_failed(e))
            }
        }
    }

    fn open_failed(&mut self, error: ClientError) -> Box<OpenError> {
        if self.error.is_none() {
            self.client.note(&format!("session failed: {error}"));
            self.error = Some(error.clone());
        }
        Box::new(OpenError {
            error,
            report: self.report(),
        })
    }

    /// Sends one message. `tx.size` is set from the content.
    pub async fn send(
        &mut self,
        mut tx: Transaction,
        message: &Message,
    ) -> Result<TransactionResult, SendError> {
        if let Some(e) = &self.error {
            let result = unsent(&tx, e.reply());
            return Err(SendError::Failed {
                error: e.clone(),
                result: Box::new(result),
            });
        }
        // The file is opened before anything is sent, so that a missing one costs no
        // session (a read error once the data flows does: the session is cut before its end).
        let file = match &message.file {
            None => None,
            Some(path) => {
                let opened = async {
                    let f = tokio::fs::File::open(path).await?;
                    let len = f.metadata().await?.len();
                    Ok::<_, std::io::Error>((f, len))
                };
                match opened.await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        return Err(SendError::Unreadable(format!("{}: {e}", path.display())));
                    }
                }
            }
        };
        tx.size = message.head.len() as u64 + file.as_ref().map_or(0, |(_, len)| *len);
        let outputs = self.client.send(&tx)?;
        let content = Content {
            head: &message.head,
            file: file.map(|(f, _)| f),
            path: message.file.clone(),
        };
        match self.drive(outputs, Some(content)).await {
            Event::Done(result) => {
                if result.refused.is_none() {
                    self.transactions += 1;
                }
                Ok(result)
            }
            Event::Failed(error, result) => {
                self.transactions += 1;
                Err(SendError::Failed {
                    result: Box::new(result.unwrap_or_else(|| unsent(&tx, error.reply()))),
                    error,
                })
            }
            Event::Ready | Event::Closed => {
                let error = ClientError::Protocol("the transaction ended without a result".into());
                self.error = Some(error.clone());
                Err(SendError::Failed {
                    result: Box::new(unsent(&tx, error.reply())),
                    error,
                })
            }
        }
    }

    /// Ends the session with QUIT (when it is still up) and reports on it.
    pub async fn quit(mut self) -> SessionReport {
        if self.error.is_none() && self.client.is_ready() {
            let outputs = self.client.quit();
            self.drive(outputs, None).await;
        }
        self.close().await;
        self.report()
    }

    /// Whether the session can take another transaction.
    pub fn is_open(&self) -> bool {
        self.error.is_none() && self.client.is_ready()
    }

    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.client.capabilities()
    }

    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    pub fn report(&self) -> SessionReport {
        SessionReport {
            remote: self.options.address,
            local: self.local,
            host_name: self.options.host_name.clone(),
            greeting: self.client.greeting().cloned(),
            capabilities: self.client.capabilities().cloned(),
            tls: self.tls.clone(),
            transactions: self.transactions,
            transcript: self.client.transcript().clone(),
            error: self.error.clone(),
        }
    }

    /// Carries out the client's outputs and feeds it what the server sends, until the client
    /// is ready, a transaction is done, or the session is over.
    async fn drive(&mut self, first: Vec<Output>, mut content: Option<Content<'_>>) -> Event {
        let mut queue: VecDeque<Output> = first.into();
        let mut pending: Vec<u8> = Vec::new();
        let mut done = None;
        loop {
            while let Some(output) = queue.pop_front() {
                match output {
                    Output::Send(bytes) => pending.extend_from_slice(&bytes),
                    Output::StartTls => {
                        if let Err(e) = self.write(&mut pending).await {
                            queue.extend(self.client.abort(e));
                            continue;
                        }
                        match self.handshake().await {
                            Ok(description) => {
                                queue.extend(self.client.tls_established(&description))
                            }
                            Err(e) => queue.extend(self.client.abort(e)),
                        }
                    }
                    Output::SendData => {
                        if let Err(e) = self.write(&mut pending).await {
                            queue.extend(self.client.abort(e));
                            continue;
                        }
                        let sent = match content.take() {
                            Some(c) => self.stream_content(c).await,
                            None => Err(ClientError::Protocol(
                                "DATA accepted with no message to send".into(),
                            )),
                        };
                        match sent {
                            Ok(bytes) => queue.extend(self.client.data_sent(bytes)),
                            Err(e) => queue.extend(self.client.abort(e)),
                        }
                    }
                    Output::Ready => {
                        if let Err(e) = self.write(&mut pending).await {
                            queue.extend(self.client.abort(e));
                            continue;
                        }
                        return Event::Ready;
                    }
                    Output::Done(result) => done = Some(result),
                    Output::Closed => {
                        let _ = self.write(&mut pending).await;
                        self.close().await;
                        return Event::Closed;
                    }
                    Output::Failed(e) => {
                        // A QUIT the client owes the server goes out if it can.
                        let _ = self.write(&mut pending).await;
                        self.close().await;
                        self.error = Some(e.clone());
                        return Event::Failed(e, done);
                    }
                }
            }
            if let Err(e) = self.write(&mut pending).await {
                queue.extend(self.client.abort(e));
                continue;
            }
            if let Some(result) = done.take() {
                return Event::Done(result);
            }
            let stage = self.client.stage();
            if !self.client.awaits_reply() {
                let e = ClientError::Protocol(format!("the client stalled {stage}"));
                queue.extend(self.client.abort(e));
                continue;
            }
            let limit = self.options.timeouts.for_stage(stage);
            let Some(stream) = self.stream.as_mut() else {
                queue.extend(self.client.abort(ClientError::ConnectionClosed(stage)));
                continue;
            };
            match tokio::time::timeout(limit, stream.read(&mut self.buf)).await {
                Err(_) => queue.extend(self.client.abort(ClientError::Timeout(stage))),
                Ok(Ok(0)) => queue.extend(self.client.closed()),
                Ok(Ok(n)) => queue.extend(self.client.feed(&self.buf[..n])),
                Ok(Err(e)) => {
                    tracing::debug!("reading from {}: {e}", self.options.address);
                    queue.extend(self.client.abort(ClientError::ConnectionClosed(stage)));
                }
            }
        }
    }

    /// Writes what is pending within the timeout of the stage it starts.
    async fn write(&mut self, pending: &mut Vec<u8>) -> Result<(), ClientError> {
        if pending.is_empty() {
            return Ok(());
        }
        let stage = self.client.stage();
        let limit = self.options.timeouts.for_stage(stage);
        let result = self.write_within(pending, limit, stage).await;
        pending.clear();
        result
    }

    async fn write_within(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        stage: Stage,
    ) -> Result<(), ClientError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::ConnectionClosed(stage));
        };
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!("writing to {}: {e}", self.options.address);
                Err(ClientError::ConnectionClosed(stage))
            }
            Err(_) => Err(ClientError::Timeout(stage)),
        }
    }

    /// The message after DATA, a chunk at a time, each write within the data block timeout
    /// (RFC 5321 §4.5.3.2.5). Returns the octets written.
    async fn stream_content(&mut self, mut content: Content<'_>) -> Result<u64, ClientError> {
        let limit = self.options.timeouts.data_block;
        let mut encoder = DataEncoder::new();
        let mut out = Vec::with_capacity(2 * CHUNK);
        let mut sent = 0u64;
        for chunk in content.head.chunks(CHUNK) {
            encoder.encode(chunk, &mut out);
            self.write_within(&out, limit, Stage::DataBlock).await?;
            sent += out.len() as u64;
            out.clear();
        }
        if let Some(file) = content.file.as_mut() {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file.read(&mut buf).await.map_err(|e| {
                    let path = content.path.as_ref().map(|p| p.display().to_string());
                    ClientError::Content(format!("{}: {e}", path.unwrap_or_default()))
                })?;
                if n == 0 {
                    break;
                }
                encoder.encode(&buf[..n], &mut out);
                self.write_within(&out, limit, Stage::DataBlock).await?;
                sent += out.len() as u64;
                out.clear();
            }
        }
        encoder.finish(&mut out);
        self.write_within(&out, limit, Stage::DataBlock).await?;
        sent += out.len() as u64;
        Ok(sent)
    }

    /// The TLS handshake after the server's 220 to STARTTLS.
    async fn handshake(&mut self) -> Result<String, ClientError> {
        let stage = Stage::TlsHandshake;
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(ClientError::Protocol("STARTTLS inside TLS".into()));
        };
        let Some(config) = self.tls_config.clone() else {
            return Err(ClientError::TlsHandshake("TLS is disabled".into()));
        };
        // SNI names the host connected to; a server given by address gets none (RFC 6066 §3).
        let name = self
            .options
            .host_name
            .as_deref()
            .and_then(|h| ServerName::try_from(h.to_string()).ok())
            .unwrap_or(ServerName::IpAddress(self.options.address.ip().into()));
        let connect = TlsConnector::from(config).connect(name, tcp);
        let stream = match tokio::time::timeout(self.options.timeouts.starttls, connect).await {
            Err(_) => return Err(ClientError::Timeout(stage)),
            Ok(Err(e)) => {
                let rustls_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                return Err(match rustls_error {
                    Some(r) if tls::is_certificate_error(r) => {
                        ClientError::Certificate(r.to_string())
                    }
                    Some(r) => ClientError::TlsHandshake(r.to_string()),
                    None => ClientError::TlsHandshake(e.to_string()),
                });
            }
            Ok(Ok(s)) => s,
        };
        let info = crate::tls_info(stream.get_ref().1);
        let description = format!("{} {}", info.version, info.cipher);
        self.tls = Some(info);
        self.stream = Some(Stream::Tls(Box::new(stream)));
        Ok(description)
    }

    /// Closes the connection (TLS's close_notify first), within the QUIT timeout.
    async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = tokio::time::timeout(self.options.timeouts.quit, stream.shutdown()).await;
        }
    }
}

/// The message being sent: its bytes in memory, then its file, opened.
struct Content<'a> {
    head: &'a [u8],
    file: Option<tokio::fs::File>,
    path: Option<PathBuf>,
}

/// A result for a transaction nothing was sent of: every recipient gets `reply`.
fn unsent(tx: &Transaction, reply: Reply) -> TransactionResult {
    TransactionResult {
        recipients: tx
            .recipients
            .iter()
            .map(|r| RecipientResult {
                address: r.address.clone(),
                rcpt: None,
                reply: reply.clone(),
                relayed_dsn: false,
            })
            .collect(),
        mail: None,
        data: None,
        end_of_data: None,
        refused: None,
        dsn_passed: false,
    }
}

async fn connect(options: &ConnectOptions) -> Result<TcpStream, ClientError> {
    let address = options.address;
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ClientError::Connect(format!("{address}: {e}")))?;
    if let Some(source) = options.source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| ClientError::Connect(format!("binding to {source}: {e}")))?;
    }
    match tokio::time::timeout(options.timeouts.connect, socket.connect(address)).await {
        Err(_) => Err(ClientError::Timeout(Stage::Connect)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(ClientError::ConnectionRefused(format!("{address}: {e}")))
        }
        Ok(Err(e)) => Err(ClientError::Connect(format!("{address}: {e}"))),
        Ok(Ok(stream)) => {
            // Commands are small and each waits for its reply: no Nagle delay.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

/// One session's deliveries, as [`deliver`] made them.
#[derive(Debug)]
pub struct Delivery {
    pub results: Vec<Result<TransactionResult, SendError>>,
    pub report: SessionReport,
}

impl Delivery {
    /// Each recipient's outcome, in the order given, whatever happened to its transaction.
    pub fn recipients(&self) -> impl Iterator<Item = &RecipientResult> {
        self.results.iter().flat_map(|r| match r {
            Ok(result) => result.recipients.iter(),
            Err(SendError::Failed { result, .. }) => result.recipients.iter(),
            Err(_) => [].iter(),
        })
    }

    pub fn delivered(&self) -> usize {
        self.recipients()
            .filter(|r| r.status() == Status::Delivered)
            .count()
    }
}

/// Opens a session, sends each message on it in turn, and quits: the session reuse the
/// delivery agent needs for several messages to one destination.
pub async fn deliver(options: ConnectOptions, messages: Vec<(Transaction, Message)>) -> Delivery {
    let mut conn = match Connection::open(options).await {
        Ok(c) => c,
        Err(failure) => {
            let OpenError { error, report } = *failure;
            let results = messages
                .iter()
                .map(|(tx, _)| {
                    Err(SendError::Failed {
                        error: error.clone(),
                        result: Box::new(unsent(tx, error.reply())),
                    })
                })
                .collect();
            return Delivery { results, report };
        }
    };
    let mut results = Vec::with_capacity(messages.len());
    for (tx, message) in messages {
        results.push(conn.send(tx, &message).await);
    }
    let report = conn.quit().await;
    Delivery { results, report }
}

/// The connection, before and after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

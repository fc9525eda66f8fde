//! The SMTP client's tokio driver against real servers on loopback: Postfix's `smtp-sink`
//! (pipelining, several transactions on one connection, counted at the sink; `scripts/test.sh`
//! installs Postfix), hato's own server with a self-signed certificate (STARTTLS and the
//! outbound connector's TLS settings, per-recipient replies, content as received), and small
//! scripted servers for what no real server does on purpose (no greeting, endless replies,
//! replies held until the whole pipelined group is in).

use hato_core::directory::Route;
use hato_core::reply::Reply;
use hato_core::{Address, Reason, Refusal, Stage as ReasonStage};
use hato_smtp::client::conn::{self, ConnectOptions, Connection, Message, SendError, Timeouts};
use hato_smtp::client::tls::TlsSettings;
use hato_smtp::client::{
    Body, ClientError, Notify, Recipient, Ret, Stage, Status, Transaction, TransactionResult,
};
use hato_smtp::server::{ServerConfig, SmtpServer, Submitter};
use hato_smtp::{
    AcceptedRecipient, ClientContext, Decision, MessageContext, RcptVerdict, SessionConfig,
    SmtpPolicy,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

fn options(address: SocketAddr) -> ConnectOptions {
    let mut o = ConnectOptions::new(address, "client.hato.test");
    o.timeouts = Timeouts::uniform(Duration::from_secs(10));
    o
}

fn transaction(recipients: &[&str]) -> Transaction {
    Transaction::new(
        "sender@hato.test",
        recipients.iter().map(|r| Recipient::new(*r)).collect(),
        0,
    )
}

fn statuses(result: &TransactionResult) -> Vec<Status> {
    result.recipients.iter().map(|r| r.status()).collect()
}

// ---------------------------------------------------------------------------------------------
// Postfix's smtp-sink

/// An smtp-sink on a loopback port the system chose, dumping each message to a file and
/// printing its counters; stopped (by its process id) when dropped.
struct Sink {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(dir).join("smtp-sink");
        if p.exists() {
            return p;
        }
    }
    panic!("smtp-sink not found: install Postfix (scripts/test.sh does)");
}

/// The effective user id, from /proc (smtp-sink run as root must be told whom to become).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// The TCP port a process listens on, from its sockets in /proc (smtp-sink does not say which
/// port it got for port 0).
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let link = std::fs::read_link(fd.ok()?.path()).ok()?;
        if let Some(inode) = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
        {
            inodes.push(inode.to_string());
        }
    }
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address, st (0A: LISTEN), inode
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = f[1].split(':').nth(1)?;
            u16::from_str_radix(port, 16).ok()
        } else {
            None
        }
    })
}

fn start_sink(extra: &[&str]) -> Sink {
    let dir = tempfile::tempdir().unwrap();
    // smtp-sink drops to `nobody` when started as root, and writes its dumps as that user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = std::fs::File::create(dir.path().join("counters")).unwrap();
    let mut cmd = Command::new(smtp_sink());
    if running_as_root() {
        cmd.args(["-u", "nobody"]);
    }
    let dump = format!("{}/msg.", dir.path().display());
    cmd.arg("-c")
        .args(["-d", &dump])
        .args(extra)
        .args(["127.0.0.1:0", "16"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start smtp-sink");
    let deadline = Instant::now() + WAIT;
    let port = loop {
        if let Some(port) = listening_port(child.id()) {
            break port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("smtp-sink exited: {status}");
        }
        assert!(Instant::now() < deadline, "smtp-sink never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    Sink {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
    }
}

impl Sink {
    /// Waits until the sink's counters read `want` (`sess=… quit=… mesg=…`).
    fn wait_for_counters(&self, want: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(self.dir.path().join("counters")).unwrap();
            if text.split(['\r', '\n']).any(|c| c.trim() == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sink's counters never read {want:?}: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages the sink dumped.
    fn dumps(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name()?.to_str()?.to_string();
                name.starts_with("msg.")
                    .then(|| std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        out.sort();
        out
    }
}

/// Several messages on one connection with PIPELINING: the sink counts one session, one QUIT
/// and every message; DSN parameters reach it (it offers DSN), and the content arrives whole
/// (dot lines unstuffed by the sink, as they were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_transactions_reuse_one_connection_at_smtp_sink() {
    let sink = start_sink(&[]);
    let mut conn = Connection::open(options(sink.address)).await.unwrap();
    let caps = conn.capabilities().unwrap().clone();
    assert!(
        caps.pipelining && caps.dsn && caps.eight_bit_mime,
        "{caps:?}"
    );
    for n in 0..3 {
        let mut tx = transaction(&[&format!("a{n}@sink.test"), &format!("b{n}@sink.test")]);
        tx.ret = Some(Ret::Headers);
        tx.envid = Some(format!("env{n}"));
        tx.body = Body::EightBitMime;
        tx.recipients[0].notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        tx.recipients[0].orcpt = Some(format!("orig{n}@sink.test"));
        let content = format!(
            "Subject: {n}\r\n\r\n.hidden line {n}\r\n.\r\ncaf\u{e9}\r\nlast line without end"
        );
        let result = conn
            .send(tx, &Message::from(content.into_bytes()))
            .await
            .unwrap();
        assert_eq!(
            statuses(&result),
            [Status::Delivered, Status::Delivered],
            "{result:?}"
        );
        assert!(result.dsn_passed);
    }
    let report = conn.quit().await;
    assert_eq!(report.transactions, 3);
    assert!(report.error.is_none(), "{:?}", report.error);
    sink.wait_for_counters("sess=1 quit=1 mesg=3");
    let dumps = sink.dumps();
    assert_eq!(dumps.len(), 3);
    for dump in &dumps {
        // Named at random by the sink: each message is found by its subject.
        let subject = dump
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_string();
        // The sink offers no SIZE, so none is declared.
        assert!(!dump.contains("SIZE="), "{dump}");
        assert!(
            dump.contains(&format!(
                "X-Mail-Args: <sender@hato.test> BODY=8BITMIME RET=HDRS ENVID=env{subject}"
            )),
            "{dump}"
        );
        assert!(
            dump.contains(&format!(
                "X-Rcpt-Args: <a{subject}@sink.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig{subject}@sink.test"
            )),
            "{dump}"
        );
        assert!(
            dump.contains(&format!(
                "\n.hidden line {subject}\n.\ncaf\u{e9}\nlast line without end\n"
            )),
            "{dump}"
        );
    }
}

/// Without PIPELINING (`smtp-sink -p`) the client sends one command at a time, and reuses the
/// connection all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_at_a_time_without_pipelining_at_smtp_sink() {
    let sink = start_sink(&["-p"]);
    let messages = (0..2)
        .map(|n| {
            (
                transaction(&[&format!("r{n}@sink.test")]),
                Message::from(format!("Subject: {n}\r\n\r\nbody\r\n").into_bytes()),
            )
        })
        .collect();
    let delivery = conn::deliver(options(sink.address), messages).await;
    assert_eq!(delivery.delivered(), 2, "{delivery:?}");
    assert!(!delivery.report.capabilities.as_ref().unwrap().pipelining);
    sink.wait_for_counters("sess=1 quit=1 mesg=2");
    // The transcript has the second transaction's RSET, each command on its own.
    let lines = delivery.report.transcript.lines();
    assert!(lines.iter().any(|l| l == "C: RSET"), "{lines:?}");
}

// ---------------------------------------------------------------------------------------------
// hato's own server

/// Accepts every recipient but `unknown…` (550 5.1.1) and `later…` (450 4.2.1).
struct Policy;

const UNKNOWN: Reply = Reply::new(550, "5.1.1", "unknown user (test)");
const LATER: Reply = Reply::new(450, "4.2.1", "try later (test)");

impl SmtpPolicy for Policy {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        let refuse = |r: Reply| {
            RcptVerdict::Reject(Refusal::new(r, Reason::new(ReasonStage::Session, "test")))
        };
        let local = rcpt.to_string();
        Decision::Ready(if local.starts_with("unknown") {
            refuse(UNKNOWN)
        } else if local.starts_with("later") {
            refuse(LATER)
        } else {
            RcptVerdict::Accept(AcceptedRecipient {
                address: rcpt.clone(),
                tenant_id: 1,
                route: Route::Local(1),
            })
        })
    }
}

/// What hato's server received.
#[derive(Debug)]
struct Received {
    recipients: Vec<String>,
    content: Vec<u8>,
    client_ip: IpAddr,
    tls: bool,
}

#[derive(Default)]
struct Keep(Mutex<Vec<Received>>);

struct Keeper(Arc<Keep>);

impl Submitter for Keeper {
    fn submit(
        &self,
        mut message: MessageContext,
    ) -> Pin<Box<dyn Future<Output = Result<String, Reply>> + Send>> {
        let received = Received {
            recipients: message
                .envelope
                .recipients
                .iter()
                .map(|r| r.address.to_string())
                .collect(),
            content: message.body.to_vec().unwrap(),
            client_ip: message.client.ip(),
            tls: message.client.tls.is_some(),
        };
        self.0.0.lock().unwrap().push(received);
        Box::pin(async { Ok("trace-1".to_string()) })
    }
}

/// A certificate for `mx.hato.test`, self-signed, and the server config that presents it.
struct Certificate {
    der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn certificate(names: &[&str]) -> Certificate {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    let der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .unwrap();
    Certificate {
        der,
        server: Arc::new(server),
    }
}

fn roots(cert: &Certificate) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    store.add(cert.der.clone()).unwrap();
    Arc::new(store)
}

/// hato's server on a loopback port, with STARTTLS when given a certificate.
async fn hato_server(tls: Option<&Certificate>) -> (SocketAddr, Arc<Keep>) {
    let keep = Arc::new(Keep::default());
    let config = ServerConfig {
        session: SessionConfig {
            hostname: "mx.hato.test".into(),
            tls_available: tls.is_some(),
            ..SessionConfig::default()
        },
        max_connections: 20,
        max_connections_per_ip: 20,
        ipv6_prefix_length: 64,
        idle_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(60),
        tls: tls.map(|c| c.server.clone()),
        greeting_delay: Duration::ZERO,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let smtp = SmtpServer::new(config, Arc::new(Policy), Arc::new(Keeper(keep.clone())));
    tokio::spawn(async move {
        let _stop = stop;
        smtp.run(listener, stop_rx).await
    });
    (addr, keep)
}

/// Per-recipient replies over a real session, and the content as the (strict) server stored
/// it: dot lines intact, bare line ends and the missing last one made CRLF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_recipient_replies_and_content_at_hato() {
    let (addr, keep) = hato_server(None).await;
    let mut conn = Connection::open(options(addr)).await.unwrap();
    let content = b"Subject: mixed\r\n\r\n.leading dot\n.\r\nbare LF\nend".to_vec();
    let tx = transaction(&[
        "ok@hato.test",
        "unknown@hato.test",
        "later@hato.test",
        "ok2@hato.test",
    ]);
    let result = conn.send(tx, &Message::from(content)).await.unwrap();
    assert_eq!(
        statuses(&result),
        [
            Status::Delivered,
            Status::Failed,
            Status::Deferred,
            Status::Delivered
        ]
    );
    assert_eq!(result.recipients[1].reply, UNKNOWN);
    assert_eq!(result.recipients[2].reply, LATER);
    assert_eq!(
        result.recipients[0].reply.to_string(),
        "250 2.6.0 <trace-1> Queued mail for delivery"
    );
    // hato's server offers no DSN: nothing was asked, nothing is owed.
    assert!(!result.dsn_passed);
    let report = conn.quit().await;
    assert!(report.tls.is_none());
    let received = keep.0.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].recipients, ["ok@hato.test", "ok2@hato.test"]);
    assert_eq!(
        received[0].content,
        b"Subject: mixed\r\n\r\n.leading dot\r\n.\r\nbare LF\r\nend\r\n"
    );
}

/// A large message streamed from its queue file (after the bytes in memory), and a file that
/// cannot be opened: refused before anything is sent, the session still usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_from_a_file() {
    let (addr, keep) = hato_server(None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queued");
    let mut body = Vec::new();
    for i in 0..100_000 {
        body.extend_from_slice(format!(".line {i} of the spooled part\r\n").as_bytes());
    }
    std::fs::write(&path, &body).unwrap();
    let message = Message {
        head: b"Received: by hato\r\nSubject: big\r\n\r\n".to_vec(),
        file: Some(path),
    };
    let mut conn = Connection::open(options(addr)).await.unwrap();
    let missing = Message {
        head: Vec::new(),
        file: Some(dir.path().join("missing")),
    };
    let err = conn
        .send(transaction(&["a@hato.test"]), &missing)
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Unreadable(_)), "{err:?}");
    assert!(conn.is_open());
    let result = conn
        .send(transaction(&["a@hato.test"]), &message)
        .await
        .unwrap();
    assert_eq!(statuses(&result), [Status::Delivered]);
    conn.quit().await;
    let received = keep.0.lock().unwrap();
    let mut want = message.head.clone();
    want.extend_from_slice(&body);
    assert_eq!(received[0].content.len(), want.len());
    assert!(received[0].content == want);
}

/// The high-risk pool's own source address: the server sees the connection come from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_address_is_bound() {
    let (addr, keep) = hato_server(None).await;
    let source: IpAddr = "127.0.0.2".parse().unwrap();
    let mut o = options(addr);
    o.source = Some(source);
    let delivery = conn::deliver(
        o,
        vec![(
            transaction(&["a@hato.test"]),
            Message::from(b"x\r\n".to_vec()),
        )],
    )
    .await;
    assert_eq!(delivery.delivered(), 1, "{delivery:?}");
    assert_eq!(delivery.report.local.unwrap().ip(), source);
    assert_eq!(keep.0.lock().unwrap()[0].client_ip, source);
}

// TLS: the outbound connector's settings against hato's server and a self-signed certificate.

/// One message to hato's server (offering STARTTLS with a self-signed certificate for
/// `mx.hato.test` when `with_tls`), with these settings; `trust` gives that certificate as the
/// client's root instead of the system's.
async fn tls_session(
    settings: TlsSettings,
    trust: bool,
    with_tls: bool,
) -> Result<(conn::SessionReport, Vec<Received>), ClientError> {
    let cert = certificate(&["mx.hato.test"]);
    let (addr, keep) = hato_server(with_tls.then_some(&cert)).await;
    let mut o = options(addr);
    o.host_name = Some("mx.hato.test".into());
    o.tls = settings;
    o.roots = trust.then(|| roots(&cert));
    let mut conn = Connection::open(o).await.map_err(|e| e.error)?;
    let result = conn
        .send(
            transaction(&["a@hato.test"]),
            &Message::from(b"x\r\n".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(statuses(&result), [Status::Delivered]);
    let report = conn.quit().await;
    let received = std::mem::take(&mut *keep.0.lock().unwrap());
    Ok((report, received))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_only_takes_a_self_signed_certificate() {
    let (report, received) = tls_session(TlsSettings::EncryptionOnly, false, true)
        .await
        .unwrap();
    let tls = report.tls.expect("TLS used");
    assert!(tls.version.starts_with("TLS1."), "{tls:?}");
    assert!(!tls.cipher.is_empty());
    assert!(received[0].tls, "the server saw the message over TLS");
    // RFC 3207 §4.2: EHLO again after the handshake.
    let ehlos = report
        .transcript
        .lines()
        .iter()
        .filter(|l| l.starts_with("C: EHLO"))
        .count();
    assert_eq!(ehlos, 2, "{}", report.transcript);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opportunistic_tls_is_used_when_offered() {
    let (report, received) = tls_session(TlsSettings::Opportunistic, false, true)
        .await
        .unwrap();
    assert!(report.tls.is_some() && received[0].tls);
    // And plain text when not offered.
    let (report, received) = tls_session(TlsSettings::Opportunistic, false, false)
        .await
        .unwrap();
    assert!(report.tls.is_none() && !received[0].tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_validation_needs_a_trusted_root() {
    // The system's roots do not vouch for a self-signed certificate.
    let err = tls_session(TlsSettings::CertificateValidation, false, true)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Certificate(_)), "{err:?}");
    assert_eq!(err.reply().status, "4.7.320");
    assert!(!err.is_permanent());
    // Given as the root, it passes; its names are not checked.
    let (report, _) = tls_session(TlsSettings::CertificateValidation, true, true)
        .await
        .unwrap();
    assert!(report.tls.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_validation_checks_the_tls_domain() {
    for good in ["mx.hato.test", "*.hato.test"] {
        let settings = TlsSettings::parse("domain-validation", Some(good)).unwrap();
        let (report, _) = tls_session(settings, true, true)
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        assert!(report.tls.is_some());
    }
    for bad in ["other.test", "*.other.test", "*.mx.hato.test", "hato.test"] {
        let settings = TlsSettings::parse("domain-validation", Some(bad)).unwrap();
        let err = tls_session(settings, true, true).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Certificate(m) if m.contains("not valid for")
                || m.contains("NotValidForName")),
            "{bad}: {err:?}"
        );
        assert_eq!(err.reply().status, "4.7.320");
    }
    // The chain is checked before the name: the right name on an untrusted certificate fails.
    let settings = TlsSettings::parse("domain-validation", Some("mx.hato.test")).unwrap();
    let err = tls_session(settings, false, true).await.unwrap_err();
    assert!(matches!(err, ClientError::Certificate(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_fails_without_starttls() {
    let err = tls_session(TlsSettings::EncryptionOnly, false, false)
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::TlsNotOffered);
    assert_eq!(err.reply().status, "4.4.317");
}

// ---------------------------------------------------------------------------------------------
// Scripted servers

/// A server on loopback that runs `script` on its first connection.
async fn scripted<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            script(stream).await;
        }
    });
    addr
}

/// Reads until `needle` has arrived (or the client closes), within the test's deadline.
async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// RFC 2920: the server answers nothing of the transaction until MAIL, both RCPTs and DATA
/// have all arrived — a client that waited for MAIL's reply before its RCPTs would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_sends_the_whole_group_before_reading() {
    let (tx_seen, rx_seen) = tokio::sync::oneshot::channel();
    let addr = scripted(|mut s| async move {
        s.write_all(b"220 pipe.test\r\n").await.unwrap();
        read_until(&mut s, "EHLO").await;
        s.write_all(b"250-pipe.test\r\n250 PIPELINING\r\n")
            .await
            .unwrap();
        let group = read_until(&mut s, "DATA\r\n").await;
        s.write_all(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n354 go\r\n")
            .await
            .unwrap();
        let data = read_until(&mut s, "\r\n.\r\n").await;
        s.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
        read_until(&mut s, "QUIT").await;
        s.write_all(b"221 bye\r\n").await.unwrap();
        let _ = tx_seen.send((group, data));
    })
    .await;
    let mut o = options(addr);
    // Short enough that waiting for MAIL's reply alone would fail the test.
    o.timeouts = Timeouts::uniform(Duration::from_secs(3));
    let delivery = conn::deliver(
        o,
        vec![(
            transaction(&["a@pipe.test", "b@pipe.test"]),
            Message::from(b"hello\r\n".to_vec()),
        )],
    )
    .await;
    let result = delivery.results[0].as_ref().expect("delivered");
    assert_eq!(statuses(result), [Status::Delivered, Status::Failed]);
    let (group, data) = tokio::time::timeout(WAIT, rx_seen).await.unwrap().unwrap();
    assert_eq!(
        group,
        "MAIL FROM:<sender@hato.test>\r\nRCPT TO:<a@pipe.test>\r\nRCPT TO:<b@pipe.test>\r\nDATA\r\n"
    );
    assert_eq!(data, "hello\r\n.\r\n");
}

/// RFC 5321 §4.5.3.2.1: a server that never greets is given up on at the greeting timeout,
/// with Exchange's 4.4.315 for the recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_at_the_greeting() {
    let addr = scripted(|mut s| async move {
        // Holds the connection open, saying nothing, until the client leaves.
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(WAIT, s.read(&mut buf)).await;
    })
    .await;
    let mut o = options(addr);
    o.timeouts.greeting = Duration::from_millis(300);
    let started = Instant::now();
    let delivery = conn::deliver(
        o,
        vec![(transaction(&["a@x.test"]), Message::from(b"x\r\n".to_vec()))],
    )
    .await;
    // The greeting's own timeout, not the others' 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        delivery.report.error,
        Some(ClientError::Timeout(Stage::Greeting))
    );
    let r = delivery.recipients().next().unwrap();
    assert_eq!(r.status(), Status::Deferred);
    assert_eq!(r.reply.status, "4.4.315");
}

/// A server that sends continuation lines without end costs the client its reply limit, then
/// the session fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_reply_fails_the_session() {
    let addr = scripted(|mut s| async move {
        let line = b"220-and more and more and more and more and more\r\n";
        // Until the client hangs up (the write fails), or the deadline.
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline && s.write_all(line).await.is_ok() {}
    })
    .await;
    let err = Connection::open(options(addr))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err.error, ClientError::ReplyTooLong { .. }),
        "{:?}",
        err.error
    );
    assert_eq!(err.error.reply().status, "4.5.0");
}

/// A refused connection is Exchange's 4.4.316.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection() {
    // A port that was just free: nothing listens on it.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = Connection::open(options(addr))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err.error, ClientError::ConnectionRefused(_)),
        "{:?}",
        err.error
    );
    assert_eq!(err.error.reply().status, "4.4.316");
    assert_eq!(err.report.error, Some(err.error.clone()));
}

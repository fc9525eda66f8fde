//! The greeting delay: the server waits before its banner, and what a client sends meanwhile
//! reaches the connect hook (`ClientContext::pregreet`), which decides. Real sockets on loopback.

use hato_core::directory::Route;
use hato_core::reply::Reply;
use hato_core::{Address, Reason, Refusal, Stage};
use hato_smtp::server::{ServerConfig, SmtpServer, Submitter};
use hato_smtp::{
    AcceptedRecipient, ClientContext, Decision, MessageContext, RcptVerdict, SessionConfig,
    SmtpPolicy, Verdict,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Refuses at connect a client that talked before the banner (when `refuse` is set), and keeps
/// what the connect hook saw.
struct Watch {
    refuse: bool,
    seen: Mutex<Vec<Option<hato_core::Pregreet>>>,
}

const REFUSAL: Reply = Reply::new(554, "5.5.1", "talked first (test)");

impl SmtpPolicy for Watch {
    fn connect(&self, client: &ClientContext) -> Decision<Verdict> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(client.pregreet);
        }
        Decision::Ready(match client.pregreet {
            Some(_) if self.refuse => Verdict::Reject(Refusal::new(
                REFUSAL,
                Reason::new(Stage::EarlyTalker, "talked first"),
            )),
            _ => Verdict::Accept,
        })
    }

    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        Decision::Ready(RcptVerdict::Accept(AcceptedRecipient {
            address: rcpt.clone(),
            tenant_id: 1,
            route: Route::Local(1),
        }))
    }
}

struct Nothing;

impl Submitter for Nothing {
    fn submit(
        &self,
        _: MessageContext,
    ) -> Pin<Box<dyn Future<Output = Result<String, Reply>> + Send>> {
        Box::pin(async { Ok("id".to_string()) })
    }
}

const DELAY: Duration = Duration::from_millis(400);

async fn server(refuse: bool, delay: Duration) -> (std::net::SocketAddr, Arc<Watch>) {
    let policy = Arc::new(Watch {
        refuse,
        seen: Mutex::new(Vec::new()),
    });
    let config = ServerConfig {
        session: SessionConfig {
            hostname: "mx.hato.test".into(),
            ..SessionConfig::default()
        },
        max_connections: 10,
        max_connections_per_ip: 10,
        ipv6_prefix_length: 64,
        idle_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(30),
        tls: None,
        greeting_delay: delay,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let smtp = SmtpServer::new(config, policy.clone(), Arc::new(Nothing));
    tokio::spawn(async move {
        let _keep = _stop;
        smtp.run(listener, stop_rx).await
    });
    (addr, policy)
}

/// Everything the server sends until it closes.
async fn transcript(stream: TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut all = String::new();
    loop {
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return all,
            Ok(Ok(_)) => all.push_str(&line),
            Err(_) => panic!("the server neither answered nor closed: {all}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_talks_before_the_banner_is_seen_by_the_connect_hook_and_refused() {
    let (addr, policy) = server(true, DELAY).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"EHLO early.test\r\nMAIL FROM:<a@b.test>\r\n")
        .await
        .unwrap();
    let text = transcript(c).await;
    // The refusal instead of the banner, then the connection closed; the commands never ran.
    assert_eq!(text, "554 5.5.1 talked first (test)\r\n");
    let seen = policy.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let p = seen[0].expect("the talk was seen");
    assert_eq!(p.bytes, 39);
    assert!(p.after_ms < DELAY.as_millis() as u64, "{p:?}");
}

#[tokio::test]
async fn a_client_that_waits_gets_the_banner_after_the_delay() {
    let (addr, policy) = server(true, DELAY).await;
    let started = Instant::now();
    let c = TcpStream::connect(addr).await.unwrap();
    let mut reader = BufReader::new(c);
    let mut banner = String::new();
    reader.read_line(&mut banner).await.unwrap();
    assert_eq!(banner, "220 mx.hato.test ESMTP hato ready\r\n");
    assert!(started.elapsed() >= DELAY, "{:?}", started.elapsed());
    reader.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    let rest = transcript(reader.into_inner()).await;
    assert_eq!(rest, "221 2.0.0 mx.hato.test closing connection\r\n");
    assert_eq!(*policy.seen.lock().unwrap(), [None]);
}

/// A policy that lets an early talker in anyway gets its commands read, in order, after the
/// banner: nothing it sent is lost or read twice.
#[tokio::test]
async fn what_an_admitted_early_talker_sent_is_read_as_its_first_commands() {
    let (addr, _) = server(false, DELAY).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"NOOP\r\nQUIT\r\n").await.unwrap();
    let text = transcript(c).await;
    assert_eq!(
        text,
        "220 mx.hato.test ESMTP hato ready\r\n250 2.0.0 OK\r\n221 2.0.0 mx.hato.test closing connection\r\n"
    );
}

/// Without a delay (the default) nothing waits and nothing is watched.
#[tokio::test]
async fn without_a_delay_the_banner_comes_at_once() {
    let (addr, policy) = server(true, Duration::ZERO).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"QUIT\r\n").await.unwrap();
    let text = transcript(c).await;
    assert!(
        text.starts_with("220 mx.hato.test ESMTP hato ready\r\n"),
        "{text}"
    );
    assert_eq!(*policy.seen.lock().unwrap(), [None]);
}

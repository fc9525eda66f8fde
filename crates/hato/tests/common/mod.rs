//! Test harness: the real `hato serve` on free loopback ports, with a temporary data directory,
//! and the clients the tests talk to it with (raw SMTP, the CLI, the HTTP API).
#![allow(dead_code)]

pub mod browser;
pub mod clamd;
pub mod console;
pub mod sink;
pub mod tls;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hato");

pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp: SocketAddr,
    /// The submission listener (`[submission]`; a free port unless `extra` sets its own).
    pub submission: SocketAddr,
    pub admin: SocketAddr,
    pub token: String,
    child: Option<Child>,
    extra: String,
}

impl Server {
    /// Starts hato with default settings (plus `extra` TOML lines in the `[smtp]` section).
    pub fn start() -> Server {
        Self::start_with("")
    }

    pub fn start_with(extra_smtp: &str) -> Server {
        Self::start_with_sections(extra_smtp, "")
    }

    /// Starts hato with `extra_smtp` TOML lines in `[smtp]` and `extra_admin` in `[admin]`.
    pub fn start_with_sections(extra_smtp: &str, extra_admin: &str) -> Server {
        Self::start_with_config(extra_smtp, extra_admin, "")
    }

    /// Starts hato with `extra_smtp` in `[smtp]`, `extra_admin` in `[admin]`, and `extra` (whole
    /// sections) at the end. Without a `[dns]` section in `extra`, the resolver is a loopback
    /// port nothing listens on: no test's lookup leaves the machine.
    pub fn start_with_config(extra_smtp: &str, extra_admin: &str, extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("hato.toml");
        let dns = if extra.contains("[dns]") {
            ""
        } else {
            "[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout_ms = 2000\n"
        };
        // Never the default port 2587: tests run side by side.
        let submission = if extra.contains("[submission]") {
            ""
        } else {
            "[submission]\nlisten = [\"127.0.0.1:0\"]\n"
        };
        let text = format!(
            "[server]\nhostname = \"mx.hato.test\"\ndata_dir = \"data\"\n\n[smtp]\nlisten = [\"127.0.0.1:0\"]\n{extra_smtp}\n\n[admin]\nlisten = \"127.0.0.1:0\"\n{extra_admin}\n\n{dns}\n{submission}\n{extra}\n"
        );
        std::fs::write(&config, text).expect("write config");
        let mut s = Server {
            dir,
            config,
            smtp: "127.0.0.1:1".parse().unwrap(),
            submission: "127.0.0.1:1".parse().unwrap(),
            admin: "127.0.0.1:1".parse().unwrap(),
            token: String::new(),
            child: None,
            extra: extra_smtp.to_string(),
        };
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hato serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut smtp, mut admin) = (None, None);
        let mut submission = None;
        // The submission listener starts after the SMTP one (and only when configured).
        let wants_submission = std::fs::read_to_string(&self.config)
            .map(|t| !t.contains("[submission]\nlisten = []"))
            .unwrap_or(true);
        while smtp.is_none() || admin.is_none() || (wants_submission && submission.is_none()) {
            assert!(Instant::now() < deadline, "hato serve did not start");
            let Some(Ok(line)) = lines.next() else {
                panic!("hato serve exited early")
            };
            if let Some(a) = line.strip_prefix("hato: SMTP listening on ") {
                smtp = Some(a.trim().parse().expect("smtp addr"));
            }
            if let Some(a) = line.strip_prefix("hato: submission listening on ") {
                submission = Some(a.trim().parse().expect("submission addr"));
            }
            if let Some(a) = line.strip_prefix("hato: admin API listening on http://") {
                admin = Some(
                    a.trim()
                        .trim_end_matches("/api/v1/")
                        .parse()
                        .expect("admin addr"),
                );
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.smtp = smtp.unwrap();
        if let Some(a) = submission {
            self.submission = a;
        }
        self.admin = admin.unwrap();
        self.token = std::fs::read_to_string(self.data_dir().join("operator.token"))
            .expect("token")
            .trim()
            .to_string();
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let c = self.child.take().expect("running");
        let pid = c.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let mut c = c;
        c.wait().expect("wait")
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs the CLI with this server's settings file.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.cli_env(args, &[])
    }

    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("HATO_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run hato");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the CLI and insists that it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "hato {args:?} failed: {err}{out}");
        out
    }

    /// A tenant `name` with an authoritative domain `name.test`.
    pub fn tenant(&self, name: &str) {
        self.ok(&["tenant", "add", name]);
        self.ok(&["domain", "add", &format!("{name}.test"), "--tenant", name]);
    }

    pub fn mailbox(&self, address: &str, extra: &[&str]) {
        let mut args = vec!["mailbox", "add", address];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// An API call with the operator token; returns (status, JSON body or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(&self.token.clone(), method, path, body)
    }

    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, bytes) = http(self.admin, method, path, Some(token), body);
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Messages in a mailbox (the API's listing).
    pub fn mail(&self, address: &str) -> Vec<Value> {
        let (status, v) = self.api(
            "GET",
            &format!("/api/v1/mailboxes/{address}/messages"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    pub fn raw_mail(&self, address: &str, id: i64) -> String {
        let (status, bytes) = http(
            self.admin,
            "GET",
            &format!("/api/v1/mailboxes/{address}/messages/{id}/raw"),
            Some(&self.token),
            None,
        );
        assert_eq!(status, 200);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until `f` holds (delivery is asynchronous), for up to 20 s.
    pub fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The trace events of a message for one recipient (`GET /api/v1/trace/{id}?recipient=`).
    pub fn events(&self, trace_id: &str, recipient: &str) -> Vec<Value> {
        let (status, v) = self.api(
            "GET",
            &format!("/api/v1/trace/{trace_id}?recipient={recipient}"),
            None,
        );
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// The rows of the first page of a message trace (`query` may set `page_size`).
    /// [`Server::events`] without the spam filter's verdict (every filtered recipient has one
    /// `Spam` event; `tests/spam.rs` checks them), for tests about the other steps.
    pub fn events_but_spam(&self, trace_id: &str, recipient: &str) -> Vec<Value> {
        self.events(trace_id, recipient)
            .into_iter()
            .filter(|e| e["event"] != "Spam")
            .collect()
    }

    pub fn trace(&self, query: &str) -> Vec<Value> {
        let (status, v) = self.api("GET", &format!("/api/v1/trace?{query}"), None);
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["more"], false,
            "the rows fill more than one page: {query}"
        );
        v["rows"].as_array().cloned().unwrap_or_default()
    }

    pub fn smtp(&self) -> Smtp {
        Smtp::connect(self.smtp)
    }

    /// Moves the server's test clock `secs` forward (the server must have been started with
    /// `[testing] manual_clock = true`); returns its time after the move (RFC 3339).
    pub fn advance_clock(&self, secs: i64) -> String {
        let (status, v) = self.api(
            "POST",
            "/api/v1/testing/clock",
            Some(serde_json::json!({ "advance_seconds": secs })),
        );
        assert_eq!(status, 200, "moving the test clock: {v}");
        v["now"].as_str().unwrap_or_default().to_string()
    }

    /// The server's time (its test clock's), RFC 3339.
    pub fn clock_now(&self) -> String {
        let (status, v) = self.api("GET", "/api/v1/testing/clock", None);
        assert_eq!(status, 200, "reading the test clock: {v}");
        v["now"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.1 client for the API (Connection: close).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_raw(
        addr,
        method,
        path,
        &format!("{auth}Content-Type: application/json\r\n"),
        &body,
    )
}

/// A plain HTML form's request to the admin listener (`POST`: url-encoded `body`): the status
/// and the page (the delist and release pages).
pub fn http_form(s: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let headers = if method == "POST" {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    } else {
        ""
    };
    let (status, bytes) = http_raw(s.admin, method, path, headers, body);
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Sends a request with exactly these extra header lines (each ending in CRLF) and body.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut payload = resp[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    (status, payload)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
    out
}

/// A raw SMTP client: exact bytes out, whole replies in.
pub struct Smtp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        Self::from_stream(TcpStream::connect(addr).expect("connect smtp"))
    }

    /// A connection from `source` (a loopback address of the test's own, e.g. `127.0.0.7`), so
    /// the server sees its own client IP for each case.
    pub fn connect_from(addr: SocketAddr, source: &str) -> Smtp {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let from: SocketAddr = format!("{source}:0").parse().expect("source address");
        socket.bind(&from.into()).expect("bind the source address");
        socket.connect(&addr.into()).expect("connect smtp");
        Self::from_stream(socket.into())
    }

    fn from_stream(stream: TcpStream) -> Smtp {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Smtp { stream, reader }
    }

    /// Reads one (possibly multi-line) reply; empty string when the server closed.
    pub fn read_reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return reply,
                Ok(_) => {}
            }
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return reply;
            }
        }
    }

    /// A second handle on the connection, for writing from another thread.
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().expect("clone stream")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a command line (CRLF added) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// Whether the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    /// A whole transaction; returns the final reply after DATA.
    pub fn send_mail(&mut self, from: &str, to: &[&str], content: &str) -> String {
        assert!(self.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
        for r in to {
            let reply = self.cmd(&format!("RCPT TO:<{r}>"));
            assert!(reply.starts_with("250"), "RCPT {r}: {reply}");
        }
        assert!(self.cmd("DATA").starts_with("354"));
        let mut data = content.replace("\r\n", "\n").replace('\n', "\r\n");
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        self.send(data.as_bytes());
        self.cmd(".")
    }
}

/// Runs a Python script with the given arguments; returns stdout, panicking on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs swaks; returns its transcript.
pub fn swaks(args: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks must be installed (apt-get install swaks)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The trace id in a `250 2.6.0 <id> Queued mail for delivery` reply.
pub fn trace_id_of(reply: &str) -> String {
    let start = reply.find('<').expect("trace id") + 1;
    let end = reply[start..].find('>').expect("trace id end") + start;
    reply[start..end].to_string()
}

pub fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += files_under(&p);
            } else {
                n += 1;
            }
        }
    }
    n
}

/// A real DNS server on loopback (hickory's, in this process) serving `zones` from memory, for
/// `[dns] servers`. Its tasks run on a runtime of its own while the test goes on.
pub struct Dns {
    runtime: tokio::runtime::Runtime,
    server: hato_dns::testing::TestDnsServer,
}

impl Dns {
    pub fn start(zones: &[&str]) -> Dns {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(hato_dns::testing::TestDnsServer::start(zones))
            .expect("dns server");
        Dns { runtime, server }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn txt(&self, owner: &str, text: &str) {
        self.runtime
            .block_on(self.server.add_txt(owner, 300, &[text]))
            .expect("add txt");
    }

    /// A TXT record of several character-strings (a long DKIM key's record).
    pub fn txt_strings(&self, owner: &str, strings: &[&str]) {
        self.runtime
            .block_on(self.server.add_txt(owner, 300, strings))
            .expect("add txt");
    }

    /// A TXT record with a TTL of `ttl` seconds (a record a test changes: resolvers cache it
    /// for no longer).
    pub fn txt_ttl(&self, owner: &str, ttl: u32, text: &str) {
        self.runtime
            .block_on(self.server.add_txt(owner, ttl, &[text]))
            .expect("add txt");
    }

    pub fn remove_txt(&self, owner: &str) {
        self.runtime
            .block_on(self.server.remove(owner, hato_core::dns::RecordKind::Txt))
            .expect("remove txt");
    }

    pub fn a(&self, owner: &str, ip: std::net::Ipv4Addr) {
        self.runtime
            .block_on(self.server.add_a(owner, 300, ip))
            .expect("add a");
    }

    /// The queries the server answered: (lower-case name, type) → how many.
    pub fn queries(&self) -> std::collections::BTreeMap<(String, String), u64> {
        self.server.queries()
    }

    /// How many queries for `name` of `kind` (`MX`, `TXT`, `A`) the server answered.
    pub fn query_count(&self, name: &str, kind: &str) -> u64 {
        self.server.query_count(name, kind)
    }

    pub fn reset_queries(&self) {
        self.server.reset_queries()
    }

    /// An MX record (`exchange` "." is a null MX, RFC 7505).
    pub fn mx(&self, owner: &str, preference: u16, exchange: &str) {
        self.runtime
            .block_on(self.server.add_mx(owner, 300, preference, exchange))
            .expect("add mx");
    }
}

/// Sends a message with Python's smtplib (a real client). `spec`: from, to, subject, body,
/// headers {name: value}, attachments [{name, text | hex | file | zeros | zip: [{name, ...}]
/// (with "encrypt": true, marked password-protected)}].
/// Returns the reply to DATA (`code text`).
const SEND_MIME: &str = r#"
import sys, json, smtplib, io, zipfile, email.policy
from email.message import EmailMessage
spec = json.loads(sys.argv[1])
port = int(sys.argv[2])
msg = EmailMessage()
msg["From"] = spec.get("header_from", spec["from"])
msg["To"] = ", ".join(spec["to"])
msg["Subject"] = spec.get("subject", "hello")
for k, v in spec.get("headers", {}).items():
    msg[k] = v
msg.set_content(spec.get("body", "Hello there.\n"))
def data_of(a):
    if "text" in a: return a["text"].encode()
    if "hex" in a: return bytes.fromhex(a["hex"])
    if "file" in a: return open(a["file"], "rb").read()
    if "zeros" in a: return bytes(a["zeros"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for m in a["zip"]:
            z.writestr(m["name"], data_of(m))
    b = bytearray(buf.getvalue())
    if a.get("encrypt"):
        # Marked encrypted (general purpose flag bit 0, local and central headers), as a
        # password-protected archive is.
        b[6] |= 1
        c = b.find(b"PK\x01\x02")
        b[c + 8] |= 1
    return bytes(b)
for a in spec.get("attachments", []):
    msg.add_attachment(data_of(a), maintype="application", subtype="octet-stream", filename=a["name"])
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo("client.fabrikam.test")
s.mail(spec["from"])
for t in spec["to"]:
    code, text = s.rcpt(t)
    assert code == 250, (t, code, text)
code, text = s.data(msg.as_bytes(policy=email.policy.SMTP))
print(code, text.decode())
s.quit()
"#;

/// See [`SEND_MIME`].
pub fn send_mime(s: &Server, spec: Value) -> String {
    python(SEND_MIME, &[&spec.to_string(), &s.smtp.port().to_string()])
        .trim()
        .to_string()
}

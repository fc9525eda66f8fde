//! The client session as a state machine (sans I/O): the server's bytes in, what to do out.
//!
//! The caller ([`super::conn`] on tokio, or a test) connects, then feeds what the server sends
//! ([`Client::feed`]) and carries out the [`Output`]s: bytes to write, a TLS handshake, the
//! message content to stream. Once the session is set up ([`Output::Ready`]) it gives
//! transactions ([`Client::send`]), each ending in [`Output::Done`] with a reply per recipient,
//! and ends with [`Client::quit`].

use super::reply::{RawReply, ReadError, ReplyReader};
use super::transaction::{LocalRefusal, RecipientResult, Transaction, TransactionResult};
use super::{ClientError, TransactionError};
use hato_core::reply::Reply;
use std::collections::VecDeque;

/// When to use STARTTLS (RFC 3207).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartTls {
    /// Never, even when offered.
    Never,
    /// When the server offers it; in plain text when it does not, or refuses it.
    #[default]
    Opportunistic,
    /// Always: a server that does not offer it, or refuses it, fails the session.
    Required,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The name given in EHLO/HELO (RFC 5321 §4.1.1.1): the sending host's, or its pool's.
    pub helo_name: String,
    pub starttls: StartTls,
    /// The longest reply taken (all its lines); a longer one fails the session.
    pub max_reply_bytes: usize,
    /// The transcript keeps this many bytes of the session, then notes that it stops.
    pub transcript_limit: usize,
    /// With PIPELINING, at most this many commands go in one write before their replies are
    /// read: RFC 2920 §3.1 warns of the deadlock when the server's replies to a large group
    /// fill both ends' buffers while the client is still writing.
    pub pipeline_group: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo_name: "localhost".into(),
            starttls: StartTls::Opportunistic,
            max_reply_bytes: super::reply::DEFAULT_MAX_REPLY,
            transcript_limit: 256 * 1024,
            pipeline_group: 100,
        }
    }
}

/// What the server offers, from its EHLO reply (all false after HELO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The server answered EHLO (not only HELO).
    pub esmtp: bool,
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: SIZE offered (the client then declares each message's size).
    pub size: bool,
    /// RFC 1870 §4: the server's fixed maximum; `None` when it gave none (or `SIZE 0`).
    pub size_limit: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 3030; noted, not used (the client sends DATA).
    pub chunking: bool,
}

impl Capabilities {
    /// From a 250 reply to EHLO: the keywords through smtp-proto's EHLO parser; the SIZE value
    /// read here, because smtp-proto 0.2.5 wraps a value too large for its counter around to a
    /// small number (`SIZE 99999999999999999999999` would read as 999 and refuse most mail).
    fn from_ehlo(raw: &RawReply) -> Capabilities {
        let mut wire = Vec::new();
        for line in &raw.lines {
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        match smtp_proto::EhloResponse::parse(&mut wire.iter()) {
            Ok(ehlo) => {
                use smtp_proto::*;
                caps.pipelining = ehlo.has_capability(EXT_PIPELINING);
                caps.eight_bit_mime = ehlo.has_capability(EXT_8BIT_MIME);
                caps.smtputf8 = ehlo.has_capability(EXT_SMTP_UTF8);
                caps.starttls = ehlo.has_capability(EXT_START_TLS);
                caps.dsn = ehlo.has_capability(EXT_DSN);
                caps.enhanced_status_codes = ehlo.has_capability(EXT_ENHANCED_STATUS_CODES);
                caps.chunking = ehlo.has_capability(EXT_CHUNKING);
            }
            // A reply smtp-proto cannot read offers nothing it could: plain SMTP, which every
            // server takes (RFC 5321 §3.2).
            Err(e) => tracing::debug!("EHLO reply not understood ({e:?}); using no extension"),
        }
        for line in raw.lines.iter().skip(1) {
            let mut words = line.get(4..).unwrap_or("").split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("SIZE")) {
                caps.size = true;
                // No number, 0, or one beyond u64: no fixed maximum known.
                caps.size_limit = words
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|n| *n > 0);
            }
        }
        caps
    }
}

/// What the client waits for: the timeouts of RFC 5321 §4.5.3.2 are per stage, and errors say
/// where they happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Connect,
    Greeting,
    Hello,
    StartTls,
    TlsHandshake,
    /// Between transactions.
    Idle,
    Rset,
    Mail,
    Rcpt,
    /// The reply to DATA.
    Data,
    /// Writing the message content.
    DataBlock,
    /// The reply after the end of data.
    EndOfData,
    Quit,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "while connecting",
            Stage::Greeting => "waiting for the greeting",
            Stage::Hello => "after EHLO/HELO",
            Stage::StartTls => "after STARTTLS",
            Stage::TlsHandshake => "during the TLS handshake",
            Stage::Idle => "between transactions",
            Stage::Rset => "after RSET",
            Stage::Mail => "after MAIL FROM",
            Stage::Rcpt => "after RCPT TO",
            Stage::Data => "after DATA",
            Stage::DataBlock => "while sending the message",
            Stage::EndOfData => "after the end of data",
            Stage::Quit => "after QUIT",
        })
    }
}

#[derive(Debug)]
pub enum Output {
    /// Bytes to write to the server.
    Send(Vec<u8>),
    /// Perform the TLS handshake now (after writing what came before), then call
    /// [`Client::tls_established`].
    StartTls,
    /// Stream the message content now through a [`super::DataEncoder`], then call
    /// [`Client::data_sent`].
    SendData,
    /// The session is set up: give a transaction ([`Client::send`]) or end it
    /// ([`Client::quit`]).
    Ready,
    /// A transaction ended; the session is ready for the next (unless [`Output::Failed`]
    /// follows).
    Done(TransactionResult),
    /// The session ended after QUIT.
    Closed,
    /// The session failed and is over: write what came before, then close the connection.
    Failed(ClientError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Handshake,
    Ready,
    /// A transaction's commands are out; their replies are awaited.
    Busy,
    /// The caller streams the content.
    Data,
    Quit,
    Closed,
}

/// The reply a command of a transaction waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Rset,
    Mail,
    Rcpt(usize),
    Data,
    /// The lone dot sent after DATA was answered 354 while no recipient was accepted (RFC 2920
    /// §3.1).
    LoneDot,
    EndOfData,
}

/// A transaction under way.
struct Running {
    recipients: Vec<(String, bool)>,
    rcpt: Vec<Option<Reply>>,
    result: TransactionResult,
    /// Commands written, in order, whose replies have not come.
    expect: VecDeque<Expect>,
    /// Commands not written yet (without PIPELINING, all but the one whose reply is awaited).
    unsent: VecDeque<(Expect, Vec<u8>)>,
    mail_ok: bool,
    accepted: usize,
}

/// The session's transcript, for `hato connector outbound validate` and for the trace: each
/// line `C:` (sent), `S:` (received) or `*` (what happened), the message content left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    lines: Vec<String>,
    bytes: usize,
    limit: usize,
    truncated: bool,
}

impl Transcript {
    fn new(limit: usize) -> Self {
        Transcript {
            limit,
            ..Transcript::default()
        }
    }

    fn push(&mut self, prefix: &str, text: &str) {
        if self.truncated {
            return;
        }
        if self.bytes + prefix.len() + text.len() > self.limit {
            self.truncated = true;
            self.lines
                .push(format!("* (transcript cut at {} bytes)", self.limit));
            return;
        }
        self.bytes += prefix.len() + text.len();
        self.lines.push(format!("{prefix}{text}"));
    }

    pub(crate) fn note(&mut self, text: &str) {
        self.push("* ", text);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

pub struct Client {
    config: ClientConfig,
    state: State,
    reader: ReplyReader,
    caps: Option<Capabilities>,
    tls: bool,
    greeting: Option<Reply>,
    transcript: Transcript,
    running: Option<Running>,
    /// A transaction went out on this session: the next starts with RSET.
    used: bool,
}

fn positive(r: &Reply) -> bool {
    (200..300).contains(&r.code)
}

impl Client {
    /// A client about to read the server's greeting.
    pub fn new(config: ClientConfig) -> Self {
        Client {
            reader: ReplyReader::new(config.max_reply_bytes),
            transcript: Transcript::new(config.transcript_limit),
            config,
            state: State::Greeting,
            caps: None,
            tls: false,
            greeting: None,
            running: None,
            used: false,
        }
    }

    /// What the client waits for now.
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Greeting => Stage::Greeting,
            State::Ehlo | State::Helo => Stage::Hello,
            State::StartTls => Stage::StartTls,
            State::Handshake => Stage::TlsHandshake,
            State::Ready => Stage::Idle,
            State::Busy => match self.running.as_ref().and_then(|r| r.expect.front()) {
                Some(Expect::Rset) => Stage::Rset,
                Some(Expect::Mail) => Stage::Mail,
                Some(Expect::Rcpt(_)) => Stage::Rcpt,
                Some(Expect::Data) => Stage::Data,
                Some(Expect::LoneDot | Expect::EndOfData) | None => Stage::EndOfData,
            },
            State::Data => Stage::DataBlock,
            State::Quit | State::Closed => Stage::Quit,
        }
    }

    /// Whether the client waits for the server's bytes (the I/O loop reads only then).
    pub fn awaits_reply(&self) -> bool {
        matches!(
            self.state,
            State::Greeting
                | State::Ehlo
                | State::Helo
                | State::StartTls
                | State::Busy
                | State::Quit
        )
    }

    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// What the server offered in its last EHLO (after TLS, what it offered then).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    pub fn tls_active(&self) -> bool {
        self.tls
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub(crate) fn note(&mut self, text: &str) {
        self.transcript.note(text);
    }

    /// Bytes from the server.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::Closed {
            return out;
        }
        self.reader.push(bytes);
        self.process(&mut out);
        out
    }

    /// The server closed the connection (or it broke).
    pub fn closed(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        match self.state {
            State::Closed => {}
            // The server may close without answering QUIT (RFC 5321 §4.1.1.10 asks it to
            // answer; nothing is lost if it does not).
            State::Quit => {
                self.state = State::Closed;
                out.push(Output::Closed);
            }
            _ => {
                let stage = self.stage();
                self.fail(ClientError::ConnectionClosed(stage), false, &mut out);
            }
        }
        out
    }

    /// The I/O loop failed (a timeout, a write that did not go, a TLS handshake, content that
    /// could not be read): ends the session, with the transaction under way deferred.
    pub fn abort(&mut self, error: ClientError) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Closed {
            self.fail(error, false, &mut out);
        }
        out
    }

    /// The TLS handshake after STARTTLS succeeded (`description`: protocol and cipher, for the
    /// transcript). RFC 3207 §4.2: what the server said before no longer holds; EHLO again.
    pub fn tls_established(&mut self, description: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Handshake {
            return out;
        }
        self.tls = true;
        self.caps = None;
        self.reader.clear();
        self.transcript
            .note(&format!("TLS established: {description}"));
        self.command(format!("EHLO {}", self.config.helo_name), &mut out);
        self.state = State::Ehlo;
        out
    }

    /// Starts a transaction. The session must be ready ([`Output::Ready`], or the [`Output::Done`]
    /// of the one before). A message the server cannot take as it is ends at once, with nothing
    /// sent ([`TransactionResult::refused`]).
    pub fn send(&mut self, tx: &Transaction) -> Result<Vec<Output>, TransactionError> {
        if self.state != State::Ready {
            return Err(TransactionError::NotReady);
        }
        tx.check()?;
        let caps = self.caps.clone().unwrap_or_default();
        let mut out = Vec::new();
        let refusal = if tx.needs_smtputf8() && !caps.smtputf8 {
            Some(LocalRefusal::NeedsSmtputf8)
        } else if tx.body == super::Body::EightBitMime && !caps.eight_bit_mime {
            Some(LocalRefusal::NeedsDowngrade)
        } else {
            match caps.size_limit {
                Some(limit) if tx.size > limit => Some(LocalRefusal::TooBig {
                    size: tx.size,
                    limit,
                }),
                _ => None,
            }
        };
        if let Some(refusal) = refusal {
            let reply = refusal.reply();
            self.transcript.note(&format!("not sent: {reply}"));
            out.push(Output::Done(TransactionResult {
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
                refused: Some(refusal),
                dsn_passed: false,
            }));
            return Ok(out);
        }
        let mut unsent = VecDeque::new();
        if self.used {
            // Reusing the session: RSET clears whatever the last transaction left (RFC 5321
            // §4.1.1.5) and shows the server still answers before a new one starts.
            unsent.push_back((Expect::Rset, b"RSET\r\n".to_vec()));
        }
        unsent.push_back((Expect::Mail, tx.mail_command(&caps)));
        for (i, r) in tx.recipients.iter().enumerate() {
            unsent.push_back((Expect::Rcpt(i), r.rcpt_command(&caps)));
        }
        unsent.push_back((Expect::Data, b"DATA\r\n".to_vec()));
        self.used = true;
        self.running = Some(Running {
            recipients: tx
                .recipients
                .iter()
                .map(|r| (r.address.clone(), r.notify.is_some_and(|n| n.success)))
                .collect(),
            rcpt: vec![None; tx.recipients.len()],
            result: TransactionResult {
                recipients: Vec::new(),
                mail: None,
                data: None,
                end_of_data: None,
                refused: None,
                dsn_passed: caps.dsn && tx.asks_dsn(),
            },
            expect: VecDeque::new(),
            unsent,
            mail_ok: false,
            accepted: 0,
        });
        self.state = State::Busy;
        self.advance(&mut out);
        Ok(out)
    }

    /// The content and the end of data went out (`bytes` of them): the final reply is awaited.
    pub fn data_sent(&mut self, bytes: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Data {
            return out;
        }
        self.transcript
            .push("C: ", &format!("({bytes} octets of message data)"));
        self.transcript.push("C: ", ".");
        if let Some(running) = self.running.as_mut() {
            running.expect.push_back(Expect::EndOfData);
        }
        self.state = State::Busy;
        self.process(&mut out);
        out
    }

    /// Ends the session (RFC 5321 §4.1.1.10). Between transactions only; otherwise the
    /// connection is just closed.
    pub fn quit(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        match self.state {
            State::Closed | State::Quit => {}
            State::Ready => {
                self.command("QUIT".into(), &mut out);
                self.state = State::Quit;
            }
            _ => {
                self.state = State::Closed;
                out.push(Output::Closed);
            }
        }
        out
    }

    fn command(&mut self, line: String, out: &mut Vec<Output>) {
        self.transcript.push("C: ", &line);
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        out.push(Output::Send(bytes));
    }

    fn process(&mut self, out: &mut Vec<Output>) {
        while self.awaits_reply() {
            match self.reader.next() {
                Ok(Some(raw)) => {
                    for line in &raw.lines {
                        self.transcript.push("S: ", line);
                    }
                    self.on_reply(raw, out);
                }
                Ok(None) => return,
                Err(ReadError::TooLong(limit)) => {
                    return self.fail(ClientError::ReplyTooLong { limit }, false, out);
                }
                Err(ReadError::Malformed(what)) => {
                    return self.fail(ClientError::Protocol(what), false, out);
                }
            }
        }
        // Nothing is asked of the server now: what it sends meanwhile waits, within the limit
        // of one reply.
        if self.state != State::Closed && self.reader.buffered() > self.config.max_reply_bytes {
            let limit = self.config.max_reply_bytes;
            self.fail(ClientError::ReplyTooLong { limit }, false, out);
        }
    }

    fn on_reply(&mut self, raw: RawReply, out: &mut Vec<Output>) {
        let reply = raw.reply.clone();
        match self.state {
            State::Greeting => match reply.code {
                220 => {
                    self.greeting = Some(reply);
                    self.command(format!("EHLO {}", self.config.helo_name), out);
                    self.state = State::Ehlo;
                }
                // RFC 5321 §3.1: a server that greets with 554 waits for QUIT; one that
                // says 421 closes.
                400.. => {
                    let quit = reply.code != 421;
                    self.fail(ClientError::GreetingRefused(reply), quit, out);
                }
                _ => self.fail(
                    ClientError::Protocol(format!("the greeting was {reply}")),
                    false,
                    out,
                ),
            },
            State::Ehlo => match reply.code {
                200..=299 => {
                    self.caps = Some(Capabilities::from_ehlo(&raw));
                    self.hello_done(out);
                }
                421 => self.fail(ClientError::ServiceClosing(reply), false, out),
                // RFC 5321 §3.2: a server that does not take EHLO gets HELO.
                500.. => {
                    self.command(format!("HELO {}", self.config.helo_name), out);
                    self.state = State::Helo;
                }
                400.. => self.fail(ClientError::HelloRefused(reply), true, out),
                _ => self.fail(
                    ClientError::Protocol(format!("EHLO was answered {reply}")),
                    false,
                    out,
                ),
            },
            State::Helo => match reply.code {
                200..=299 => {
                    self.caps = Some(Capabilities::default());
                    self.hello_done(out);
                }
                421 => self.fail(ClientError::ServiceClosing(reply), false, out),
                400.. => self.fail(ClientError::HelloRefused(reply), true, out),
                _ => self.fail(
                    ClientError::Protocol(format!("HELO was answered {reply}")),
                    false,
                    out,
                ),
            },
            State::StartTls => match reply.code {
                220 => {
                    // RFC 3207 §4.2: anything the server sent after its 220 is not read, so
                    // that nothing injected before the handshake passes for a reply after it.
                    self.reader.clear();
                    self.state = State::Handshake;
                    out.push(Output::StartTls);
                }
                421 => self.fail(ClientError::ServiceClosing(reply), false, out),
                _ if self.config.starttls == StartTls::Required => {
                    self.fail(ClientError::StartTlsRefused(reply), true, out)
                }
                _ => {
                    self.transcript
                        .note("STARTTLS refused; continuing without TLS");
                    self.state = State::Ready;
                    out.push(Output::Ready);
                }
            },
            State::Busy => self.transaction_reply(reply, out),
            State::Quit => {
                self.state = State::Closed;
                out.push(Output::Closed);
            }
            State::Handshake | State::Ready | State::Data | State::Closed => {}
        }
    }

    /// EHLO or HELO answered: STARTTLS, or ready.
    fn hello_done(&mut self, out: &mut Vec<Output>) {
        let offered = self.caps.as_ref().is_some_and(|c| c.starttls);
        if !self.tls && offered && self.config.starttls != StartTls::Never {
            self.command("STARTTLS".into(), out);
            self.state = State::StartTls;
        } else if !self.tls && self.config.starttls == StartTls::Required {
            self.fail(ClientError::TlsNotOffered, true, out);
        } else {
            self.state = State::Ready;
            out.push(Output::Ready);
        }
    }

    fn transaction_reply(&mut self, reply: Reply, out: &mut Vec<Output>) {
        let Some(running) = self.running.as_mut() else {
            return self.fail(
                ClientError::Protocol(format!("a reply nothing asked for: {reply}")),
                false,
                out,
            );
        };
        let Some(expect) = running.expect.pop_front() else {
            return self.fail(
                ClientError::Protocol(format!("a reply nothing asked for: {reply}")),
                false,
                out,
            );
        };
        let intermediate = (300..400).contains(&reply.code);
        if intermediate && expect != Expect::Data {
            return self.fail(
                ClientError::Protocol(format!("{reply} is no answer to a command but DATA")),
                false,
                out,
            );
        }
        let closing = reply.code == 421;
        match expect {
            Expect::Rset => {
                if !positive(&reply) && !closing {
                    return self.fail(ClientError::RsetRefused(reply), true, out);
                }
            }
            Expect::Mail => {
                running.mail_ok = positive(&reply);
                running.result.mail = Some(reply.clone());
            }
            Expect::Rcpt(i) => {
                if positive(&reply) && running.mail_ok {
                    running.accepted += 1;
                }
                if let Some(slot) = running.rcpt.get_mut(i) {
                    *slot = Some(reply.clone());
                }
            }
            Expect::Data => {
                running.result.data = Some(reply.clone());
                if reply.code == 354 {
                    if running.mail_ok && running.accepted > 0 {
                        self.state = State::Data;
                        out.push(Output::SendData);
                        return;
                    }
                    // RFC 2920 §3.1: DATA was pipelined behind recipients that were all
                    // refused, and the server still said 354: an empty message ends it.
                    running.expect.push_back(Expect::LoneDot);
                    self.transcript.push("C: ", ".");
                    out.push(Output::Send(b".\r\n".to_vec()));
                    return;
                }
                if positive(&reply) {
                    return self.fail(
                        ClientError::Protocol(format!("DATA was answered {reply}")),
                        false,
                        out,
                    );
                }
            }
            Expect::LoneDot | Expect::EndOfData => {
                running.result.end_of_data = Some(reply.clone());
            }
        }
        if closing {
            // RFC 5321 §3.8: 421 means the server is closing the session, whatever the
            // command.
            return self.fail(ClientError::ServiceClosing(reply), false, out);
        }
        if running.expect.is_empty() {
            self.advance(out);
        }
    }

    /// Writes the next commands of the transaction, or ends it.
    fn advance(&mut self, out: &mut Vec<Output>) {
        let group = match self.caps.as_ref() {
            Some(c) if c.pipelining => self.config.pipeline_group.max(1),
            _ => 1,
        };
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let started = running.result.mail.is_some();
        let go_on = match running.unsent.front() {
            None => false,
            Some(_) if started && !running.mail_ok => false,
            // Without an accepted recipient there is nothing to send (RFC 5321 §3.3).
            Some((Expect::Data, _)) => running.accepted > 0,
            Some(_) => true,
        };
        if !go_on {
            return self.finish(None, out);
        }
        let mut bytes = Vec::new();
        let mut lines = Vec::new();
        while let Some((expect, command)) = running.unsent.pop_front() {
            lines.push(String::from_utf8_lossy(&command).trim_end().to_string());
            bytes.extend_from_slice(&command);
            running.expect.push_back(expect);
            // RFC 2920 §3.1: DATA ends a group; so does the group's size.
            if expect == Expect::Data || running.expect.len() >= group {
                break;
            }
        }
        for line in lines {
            self.transcript.push("C: ", &line);
        }
        out.push(Output::Send(bytes));
    }

    /// Ends the transaction under way: each recipient's outcome from the replies, or from the
    /// failure for what was not answered.
    fn finish(&mut self, failure: Option<&ClientError>, out: &mut Vec<Output>) {
        let Some(running) = self.running.take() else {
            return;
        };
        let dsn = self.caps.as_ref().is_some_and(|c| c.dsn);
        let unanswered = || match failure {
            Some(e) => e.reply(),
            None => ClientError::Protocol("the server left a command unanswered".into()).reply(),
        };
        let Running {
            recipients,
            rcpt,
            mut result,
            mail_ok,
            ..
        } = running;
        for ((address, notify_success), rcpt) in recipients.into_iter().zip(rcpt) {
            let reply = match &rcpt {
                // A refused MAIL says more than the 503s pipelined RCPTs get after it.
                _ if result.mail.is_some() && !mail_ok => {
                    result.mail.clone().unwrap_or_else(unanswered)
                }
                Some(r) if !positive(r) => r.clone(),
                None => unanswered(),
                Some(_) => match &result.data {
                    Some(d) if d.code != 354 => d.clone(),
                    Some(_) => result.end_of_data.clone().unwrap_or_else(unanswered),
                    None => unanswered(),
                },
            };
            let relayed_dsn = !dsn && notify_success && positive(&reply);
            result.recipients.push(RecipientResult {
                address,
                rcpt,
                reply,
                relayed_dsn,
            });
        }
        if self.state != State::Closed {
            self.state = State::Ready;
        }
        out.push(Output::Done(result));
    }

    /// Ends the session: QUIT first when the server is in step and waits for it, the
    /// transaction under way deferred with the failure's reply.
    fn fail(&mut self, error: ClientError, quit: bool, out: &mut Vec<Output>) {
        if quit {
            self.command("QUIT".into(), out);
        }
        self.transcript.note(&format!("session failed: {error}"));
        self.state = State::Closed;
        self.finish(Some(&error), out);
        out.push(Output::Failed(error));
    }
}

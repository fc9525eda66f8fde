//! The SMTP session as a state machine (sans I/O).
//!
//! The caller starts it ([`Session::start`]: the connect hook, then the banner), feeds it the
//! bytes that arrive ([`Session::feed`]) and carries out what it returns: bytes to send, a policy
//! decision to await ([`Output::Decide`]; the session waits for [`Session::decided`]), a message to
//! commit durably ([`Output::Submit`]; the final reply waits for [`Session::submitted`]), a TLS
//! handshake to perform ([`Output::StartTls`]), or a close. While it waits, input that arrives is
//! kept, not processed (pipelining, RFC 2920).

use crate::data::DataReceiver;
use crate::policy::{
    AcceptedRecipient, Answer, AuthVerdict, Credentials, DataVerdict, Decision, PendingDecision,
    RcptVerdict, SmtpPolicy, Verdict,
};
use base64::Engine as _;
use hato_core::body::Spool;
use hato_core::dsn::{self, DsnError, MessageDsn, RecipientDsn};
use hato_core::message::{Envelope, MessageContext};
use hato_core::reply::{self, Reply};
use hato_core::{Address, ClientContext, MessageBody, Pregreet, Reason, Refusal, Stage, TlsInfo};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Error as ProtoError, MAIL_SMTPUTF8, Request};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;

/// RFC 3461 §4 ("the maximum command line length ... is increased"): a MAIL line may carry
/// ENVID (100 characters) and RET, a RCPT line ORCPT (500) and NOTIFY, on top of RFC 5321's
/// 512 octets.
pub const MAX_MAIL_LINE: usize = MAX_COMMAND_LINE + 100 + 16;
pub const MAX_RCPT_LINE: usize = MAX_COMMAND_LINE + 500 + 40;

/// RFC 4954 §4: an AUTH command line, and each line of the authentication exchange, may be up
/// to 12,288 octets; longer ones get `500 5.5.6`. The session holds no more of one.
pub const MAX_AUTH_LINE: usize = 12_288;

#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our host name: banner, EHLO reply.
    pub hostname: String,
    /// Advertised in EHLO `SIZE` (RFC 1870); larger messages get `552 5.3.4`.
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Whether STARTTLS can be offered.
    pub tls_available: bool,
    /// After this many error replies the session is closed (`421 4.7.0`).
    pub max_errors: usize,
    /// Message content past this many bytes continues in a file of `spool`, so that a session
    /// holds at most this much of it in memory.
    pub spool_threshold: usize,
    /// Creates the spool files; without one, content stays in memory whatever its size.
    pub spool: Option<std::sync::Arc<dyn Spool>>,
    /// Header fields removed from every message as it arrives (hato's own `X-Hato-*` and its
    /// `Authentication-Results`: `crate::header_filter`); `None` keeps every field.
    pub header_filter: Option<std::sync::Arc<crate::header_filter::HeaderDropRule>>,
    /// The submission listener (RFC 6409): EHLO offers `AUTH PLAIN LOGIN` once TLS is up,
    /// AUTH and MAIL need STARTTLS first (`530 5.7.0`), and MAIL needs AUTH (`530 5.7.57`).
    /// Elsewhere AUTH is not offered (`502 5.5.1`).
    pub submission: bool,
    /// After this many failed AUTH attempts in one session, it is closed (`421 4.7.0`): a
    /// guesser must reconnect, and the per-user and per-IP limits of the credential check
    /// count every attempt.
    pub max_auth_failures: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".into(),
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 500,
            tls_available: false,
            max_errors: 20,
            spool_threshold: 1024 * 1024,
            spool: None,
            header_filter: None,
            submission: false,
            max_auth_failures: 3,
        }
    }
}

#[derive(Debug)]
pub enum Output {
    /// Bytes to send to the client.
    Send(Vec<u8>),
    /// Send what came before, await this policy decision, then call [`Session::decided`] with
    /// its answer.
    Decide(PendingDecision),
    /// Perform the TLS handshake now (after sending what came before), then call
    /// [`Session::tls_established`].
    StartTls,
    /// Commit this message durably, then call [`Session::submitted`] with the outcome.
    Submit(Box<MessageContext>),
    /// Send what came before and close the connection.
    Close,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Phase {
    /// Before the banner: [`Session::start`] has not run, or the connect hook is deciding.
    Greeting,
    /// Before EHLO/HELO.
    Connected,
    /// After EHLO/HELO, no transaction.
    Ready,
    /// MAIL accepted; RCPTs may follow.
    Mail,
    /// Reading message data.
    Data,
    /// Waiting for a policy decision ([`Session::decided`]).
    Deciding,
    /// Waiting for the store to commit a message.
    Committing,
    /// Waiting for the TLS handshake.
    Handshake,
    /// In an AUTH exchange: the next line answers a 334 challenge (RFC 4954 §4).
    Auth,
    Closed,
}

/// What a pending decision is about, and what the session needs to act on its answer.
enum Waiting {
    Connect,
    Hello {
        host: String,
        esmtp: bool,
    },
    Mail {
        sender: Option<Address>,
        smtputf8: bool,
        dsn: MessageDsn,
    },
    Rcpt(RecipientDsn),
    /// The end-of-data hook holds the message until it answers.
    EndOfData,
    /// The credential check.
    Auth,
}

/// Which challenge of an AUTH exchange the client is answering.
enum AuthStep {
    /// PLAIN without an initial response: the whole PLAIN message (RFC 4616 §2).
    Plain,
    /// LOGIN: the user name, then the password.
    LoginUsername,
    LoginPassword {
        username: String,
    },
}

pub struct Session<P: SmtpPolicy + ?Sized> {
    config: SessionConfig,
    policy: std::sync::Arc<P>,
    client: ClientContext,
    phase: Phase,
    /// While deciding: the question, and the phase to go back to.
    waiting: Option<(Waiting, Phase)>,
    esmtp: bool,
    sender: Option<Address>,
    smtputf8: bool,
    /// MAIL's DSN parameters (RFC 3461 §4.3, §4.4).
    dsn: MessageDsn,
    recipients: Vec<AcceptedRecipient>,
    /// Each accepted recipient's DSN parameters (RFC 3461 §4.1, §4.2), in `recipients`' order.
    recipient_dsn: Vec<RecipientDsn>,
    content: MessageBody,
    data: Option<DataReceiver>,
    /// Input not yet processed (a partial line, or commands pipelined behind a DATA that is
    /// being committed).
    input: Vec<u8>,
    /// Discarding an over-long command line until its end.
    discarding_line: bool,
    errors: usize,
    /// The AUTH exchange under way (phase `Auth`).
    auth_step: Option<AuthStep>,
    /// Failed AUTH attempts in this session.
    auth_failures: usize,
}

impl<P: SmtpPolicy + ?Sized> Session<P> {
    pub fn new(config: SessionConfig, policy: std::sync::Arc<P>, client: ClientContext) -> Self {
        Session {
            config,
            policy,
            client,
            phase: Phase::Greeting,
            waiting: None,
            esmtp: false,
            sender: None,
            smtputf8: false,
            dsn: MessageDsn::default(),
            recipients: Vec::new(),
            recipient_dsn: Vec::new(),
            content: MessageBody::default(),
            data: None,
            input: Vec::new(),
            discarding_line: false,
            errors: 0,
            auth_step: None,
            auth_failures: 0,
        }
    }

    /// The 220 banner (RFC 5321 §4.3.1).
    pub fn greeting(&self) -> Vec<u8> {
        reply::greeting(&self.config.hostname).to_wire()
    }

    /// Opens the session: asks the connect hook, then sends the banner (or the refusal and a
    /// close, RFC 5321 §3.1).
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Greeting && self.waiting.is_none() {
            let decision = self.policy.connect(&self.client);
            self.ask(decision, Waiting::Connect, &mut out);
            self.process(&mut out);
        }
        out
    }

    /// What the client sent before the banner, while the I/O loop waited out the greeting delay
    /// (one read): the connect hook sees it in the client context ([`Pregreet`]) and decides
    /// (the edge refuses early talkers); should it let the client in anyway, the bytes are read
    /// as the client's first commands. Only before [`Session::start`]; later calls change
    /// nothing.
    pub fn talked_early(&mut self, bytes: &[u8], after: std::time::Duration) {
        if self.phase != Phase::Greeting || self.waiting.is_some() || bytes.is_empty() {
            return;
        }
        self.client.pregreet = Some(Pregreet {
            bytes: bytes.len(),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        });
        self.input.extend_from_slice(bytes);
    }

    /// The client as the hooks see it.
    pub fn client(&self) -> &ClientContext {
        &self.client
    }

    /// The answer to the [`Output::Decide`] returned last. Continues with any pipelined input.
    pub fn decided(&mut self, answer: Answer) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Deciding {
            return out;
        }
        let Some((waiting, before)) = self.waiting.take() else {
            return out;
        };
        self.phase = before;
        self.resolve(waiting, answer, &mut out);
        self.process(&mut out);
        out
    }

    pub fn in_data(&self) -> bool {
        self.phase == Phase::Data
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Bytes of memory the session holds for input and message content: at most one read of
    /// input, plus the content up to the spool threshold (or the spool's write buffer).
    pub fn memory_used(&self) -> usize {
        self.input.capacity() + self.content.memory_used()
    }

    pub fn tls(&self) -> Option<&TlsInfo> {
        self.client.tls.as_ref()
    }

    /// The reply for a read timeout in the current phase.
    pub fn timeout_reply(&self) -> Reply {
        if self.phase == Phase::Data {
            reply::DATA_TIMEOUT
        } else {
            reply::IDLE_TIMEOUT
        }
    }

    /// Feeds received bytes; returns what to do. Stops early at a commit or a TLS handshake;
    /// the rest of the input is kept for later.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Output> {
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        self.process(&mut out);
        out
    }

    /// The outcome of committing the message from [`Output::Submit`]: the trace id, or the reply
    /// to give when it could not be stored. Continues with any pipelined input.
    pub fn submitted(&mut self, result: Result<String, Reply>) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Committing {
            return out;
        }
        let r = match result {
            Ok(trace_id) => reply::queued(&trace_id),
            Err(r) => r,
        };
        self.phase = Phase::Ready;
        self.reset_transaction();
        self.reply(&mut out, r);
        self.process(&mut out);
        out
    }

    /// The TLS handshake succeeded: RFC 3207 §4.2 — forget everything learnt before it; the
    /// client must EHLO again.
    pub fn tls_established(&mut self, info: TlsInfo) {
        self.client.tls = Some(info);
        self.phase = Phase::Connected;
        self.client.helo = None;
        self.esmtp = false;
        self.reset_transaction();
        self.input.clear();
    }

    fn reset_transaction(&mut self) {
        self.sender = None;
        self.smtputf8 = false;
        self.dsn = MessageDsn::default();
        self.recipients.clear();
        self.recipient_dsn.clear();
        // A message not committed leaves nothing behind: this drops its spool file.
        self.content = MessageBody::default();
        self.data = None;
        if self.phase == Phase::Mail || self.phase == Phase::Data {
            self.phase = Phase::Ready;
        }
    }

    fn reply(&mut self, out: &mut Vec<Output>, r: Reply) {
        if r.code >= 400 {
            self.errors += 1;
        }
        out.push(Output::Send(r.to_wire()));
        if r.code >= 400 && self.errors > self.config.max_errors && self.phase != Phase::Closed {
            out.push(Output::Send(reply::TOO_MANY_ERRORS.to_wire()));
            out.push(Output::Close);
            self.phase = Phase::Closed;
        }
    }

    fn process(&mut self, out: &mut Vec<Output>) {
        let mut pos = 0;
        loop {
            match self.phase {
                Phase::Greeting
                | Phase::Deciding
                | Phase::Committing
                | Phase::Handshake
                | Phase::Closed => break,
                Phase::Data => {
                    let Some(mut receiver) = self.data.take() else {
                        self.phase = Phase::Ready;
                        continue;
                    };
                    let (n, done) = receiver.ingest(&self.input[pos..], &mut self.content);
                    pos += n;
                    if done {
                        self.end_of_data(receiver, out);
                    } else {
                        self.data = Some(receiver);
                        break;
                    }
                }
                _ => {
                    let rest = &self.input[pos..];
                    let limit = self.line_limit(rest);
                    match memchr::memchr(b'\n', rest) {
                        None => {
                            if rest.len() >= limit {
                                // Keep nothing of an over-long line; answer when it ends.
                                self.discarding_line = true;
                                pos = self.input.len();
                            }
                            break;
                        }
                        Some(i) => {
                            let line_end = pos + i + 1;
                            let too_long = self.discarding_line || i + 1 > limit;
                            self.discarding_line = false;
                            let line = self.input[pos..line_end].to_vec();
                            pos = line_end;
                            if too_long && self.phase == Phase::Auth {
                                self.auth_step = None;
                                self.phase = Phase::Ready;
                                self.reply(out, reply::AUTH_LINE_TOO_LONG);
                            } else if too_long {
                                self.reply(out, reply::COMMAND_LINE_TOO_LONG);
                            } else if self.phase == Phase::Auth {
                                self.auth_response(&line, out);
                            } else {
                                self.command(&line, out);
                            }
                        }
                    }
                }
            }
        }
        if self.phase == Phase::Handshake || self.phase == Phase::Closed {
            // RFC 3207 §4.2: nothing pipelined after STARTTLS may be used (CVE-2011-0411).
            self.input.clear();
        } else {
            self.input.drain(..pos);
        }
    }

    /// The longest line taken where `rest` starts: an AUTH command or a response in an AUTH
    /// exchange on the submission listener may be longer than other commands (RFC 4954 §4).
    fn line_limit(&self, rest: &[u8]) -> usize {
        if self.phase == Phase::Auth
            || (self.config.submission
                && !self.discarding_line
                && rest.len() >= 5
                && rest[..5].eq_ignore_ascii_case(b"AUTH "))
        {
            MAX_AUTH_LINE
        } else if self.discarding_line || rest.len() < 5 {
            MAX_COMMAND_LINE
        } else if rest[..5].eq_ignore_ascii_case(b"RCPT ") {
            MAX_RCPT_LINE
        } else if rest[..5].eq_ignore_ascii_case(b"MAIL ") {
            MAX_MAIL_LINE
        } else {
            MAX_COMMAND_LINE
        }
    }

    fn end_of_data(&mut self, receiver: DataReceiver, out: &mut Vec<Output>) {
        let flaws = receiver.flaws();
        let refusal = if flaws.too_big {
            Some(reply::MESSAGE_TOO_BIG)
        } else if flaws.bare_cr_or_lf {
            Some(reply::INVALID_CHARACTERS)
        } else if flaws.line_too_long {
            Some(reply::TEXT_LINE_TOO_LONG)
        } else {
            None
        };
        // The content's own trouble (a spool write failed): the client may try again.
        let refusal = refusal.or_else(|| {
            self.content.finish().err().map(|e| {
                tracing::error!("could not spool message data: {e}");
                reply::STORE_FAILED
            })
        });
        if let Some(r) = refusal {
            self.reset_transaction();
            self.phase = Phase::Ready;
            self.reply(out, r);
            return;
        }
        let mut recipient_dsn = std::mem::take(&mut self.recipient_dsn).into_iter();
        let envelope = Envelope {
            sender: self.sender.take(),
            recipients: std::mem::take(&mut self.recipients)
                .into_iter()
                .map(|r| {
                    let mut r: hato_core::message::Recipient = r.into();
                    r.dsn = recipient_dsn.next().unwrap_or_default();
                    r
                })
                .collect(),
            smtputf8: self.smtputf8,
            dsn: std::mem::take(&mut self.dsn),
        };
        // RFC 3848 §1 (RFC 6531 §3.7.4 for UTF8): "A" when the client authenticated.
        let authenticated = self.client.authenticated_mailbox().is_some();
        let protocol = match (
            self.esmtp,
            self.client.tls.is_some(),
            self.smtputf8,
            authenticated,
        ) {
            (_, true, true, true) => "UTF8SMTPSA",
            (_, true, true, false) => "UTF8SMTPS",
            (_, false, true, true) => "UTF8SMTPA",
            (_, false, true, false) => "UTF8SMTP",
            (true, true, false, true) => "ESMTPSA",
            (true, true, false, false) => "ESMTPS",
            (true, false, false, true) => "ESMTPA",
            (true, false, false, false) => "ESMTP",
            (false, true, false, _) => "SMTPS",
            (false, false, false, _) => "SMTP",
        };
        let content = std::mem::take(&mut self.content);
        // Reading a spooled message's header block back from its file is the same kind of work
        // as the spool writes before it; a failure is the store's trouble, and the client may
        // try again.
        let message = match MessageContext::new(envelope, self.client.clone(), protocol, content) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("could not read the spooled message's header: {e}");
                self.reset_transaction();
                self.phase = Phase::Ready;
                self.reply(out, reply::STORE_FAILED);
                return;
            }
        };
        match self.policy.end_of_data(message) {
            Decision::Ready(v) => self.resolve(Waiting::EndOfData, Answer::Data(Box::new(v)), out),
            Decision::Pending(f) => self.wait(Waiting::EndOfData, PendingDecision::data(f), out),
        }
    }

    /// Acts on a decision now, or returns it to the I/O loop to await.
    fn ask(&mut self, decision: Decision<Verdict>, waiting: Waiting, out: &mut Vec<Output>) {
        match decision {
            Decision::Ready(v) => self.resolve(waiting, Answer::Verdict(v), out),
            Decision::Pending(f) => self.wait(waiting, PendingDecision::verdict(f), out),
        }
    }

    fn wait(&mut self, waiting: Waiting, decision: PendingDecision, out: &mut Vec<Output>) {
        self.waiting = Some((waiting, self.phase));
        self.phase = Phase::Deciding;
        out.push(Output::Decide(decision));
    }

    /// Carries out a hook's answer. The phase is the one the command was given in.
    fn resolve(&mut self, waiting: Waiting, answer: Answer, out: &mut Vec<Output>) {
        // An answer of the wrong kind is a bug in the I/O loop or the policy: a temporary
        // failure, never an acceptance.
        let verdict = |answer: Answer| match answer {
            Answer::Verdict(v) => v,
            Answer::Rcpt(_) | Answer::Data(_) | Answer::Auth(_) => {
                Verdict::Reject(mismatched_answer())
            }
        };
        match waiting {
            Waiting::Connect => match verdict(answer) {
                Verdict::Accept => {
                    self.phase = Phase::Connected;
                    out.push(Output::Send(self.greeting()));
                }
                Verdict::Reject(r) => {
                    self.log_refusal("connect", &r);
                    out.push(Output::Send(r.reply.to_wire()));
                    out.push(Output::Close);
                    self.phase = Phase::Closed;
                }
            },
            Waiting::Hello { host, esmtp } => match verdict(answer) {
                Verdict::Accept => self.hello_accepted(host, esmtp, out),
                Verdict::Reject(r) => self.refuse(out, "EHLO", r),
            },
            Waiting::Mail {
                sender,
                smtputf8,
                dsn,
            } => match verdict(answer) {
                Verdict::Accept => {
                    self.sender = sender;
                    self.smtputf8 = smtputf8;
                    self.dsn = dsn;
                    self.phase = Phase::Mail;
                    self.reply(out, reply::SENDER_OK);
                }
                Verdict::Reject(r) => self.refuse(out, "MAIL", r),
            },
            Waiting::Rcpt(dsn) => match answer {
                Answer::Rcpt(RcptVerdict::Accept(accepted)) => {
                    // The same recipient twice in one transaction gets one copy (with the
                    // DSN parameters of its first RCPT).
                    if !self
                        .recipients
                        .iter()
                        .any(|r| r.address == accepted.address)
                    {
                        self.recipients.push(accepted);
                        self.recipient_dsn.push(dsn);
                    }
                    self.reply(out, reply::RECIPIENT_OK);
                }
                Answer::Rcpt(RcptVerdict::Reject(r)) => self.refuse(out, "RCPT", r),
                Answer::Verdict(_) | Answer::Data(_) | Answer::Auth(_) => {
                    self.refuse(out, "RCPT", mismatched_answer())
                }
            },
            Waiting::EndOfData => match answer {
                Answer::Data(data) => {
                    let DataVerdict { message, verdict } = *data;
                    match verdict {
                        Verdict::Accept => {
                            self.phase = Phase::Committing;
                            out.push(Output::Submit(Box::new(message)));
                        }
                        Verdict::Reject(r) => {
                            // Nothing is committed; dropping the message drops its content.
                            drop(message);
                            self.reset_transaction();
                            self.phase = Phase::Ready;
                            self.refuse(out, "DATA", r);
                        }
                    }
                }
                // The message went with the wrong answer: it cannot be committed.
                Answer::Verdict(_) | Answer::Rcpt(_) | Answer::Auth(_) => {
                    self.reset_transaction();
                    self.phase = Phase::Ready;
                    self.refuse(out, "DATA", mismatched_answer());
                }
            },
            Waiting::Auth => {
                self.phase = Phase::Ready;
                match answer {
                    Answer::Auth(AuthVerdict::Accept(identity)) => {
                        tracing::info!(
                            client = %self.client.ip(),
                            "AUTH succeeded for {}",
                            identity.address
                        );
                        self.client.identity = Some(identity);
                        self.reply(out, reply::AUTH_SUCCEEDED);
                    }
                    Answer::Auth(AuthVerdict::Reject(r)) => self.auth_failed(out, r),
                    Answer::Verdict(_) | Answer::Rcpt(_) | Answer::Data(_) => {
                        self.auth_failed(out, mismatched_answer())
                    }
                }
            }
        }
    }

    /// A failed AUTH: its reply, and the session closed once it has failed too often.
    fn auth_failed(&mut self, out: &mut Vec<Output>, refusal: Refusal) {
        self.auth_failures += 1;
        self.refuse(out, "AUTH", refusal);
        if self.auth_failures >= self.config.max_auth_failures && self.phase != Phase::Closed {
            out.push(Output::Send(reply::TOO_MANY_AUTH_FAILURES.to_wire()));
            out.push(Output::Close);
            self.phase = Phase::Closed;
        }
    }

    /// AUTH (RFC 4954 §4), offered on the submission listener only, after STARTTLS.
    fn auth(&mut self, mechanism: u64, initial: &str, out: &mut Vec<Output>) {
        if !self.config.submission {
            return self.reply(out, reply::NOT_IMPLEMENTED);
        }
        match self.phase {
            Phase::Connected => return self.reply(out, reply::SEND_HELO_FIRST),
            Phase::Mail => return self.reply(out, reply::AUTH_IN_TRANSACTION),
            _ => {}
        }
        if self.client.tls.is_none() {
            return self.reply(out, reply::MUST_STARTTLS);
        }
        if self.client.identity.is_some() {
            return self.reply(out, reply::AUTH_ALREADY_DONE);
        }
        let step = match mechanism {
            AUTH_PLAIN => AuthStep::Plain,
            AUTH_LOGIN => AuthStep::LoginUsername,
            _ => return self.reply(out, reply::AUTH_UNKNOWN_MECHANISM),
        };
        if initial.is_empty() {
            let challenge = match step {
                AuthStep::Plain => reply::AUTH_CONTINUE,
                _ => reply::AUTH_LOGIN_USERNAME,
            };
            self.auth_step = Some(step);
            self.phase = Phase::Auth;
            out.push(Output::Send(challenge.to_wire()));
            return;
        }
        // RFC 4954 §4: "=" is an initial response of zero length.
        let initial = if initial == "=" { "" } else { initial };
        self.auth_step = Some(step);
        self.phase = Phase::Auth;
        self.auth_answer(initial.as_bytes(), out);
    }

    /// A line answering a 334 challenge.
    fn auth_response(&mut self, line: &[u8], out: &mut Vec<Output>) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"*" {
            // RFC 4954 §4: the client cancels the exchange.
            self.auth_step = None;
            self.phase = Phase::Ready;
            return self.reply(out, reply::AUTH_CANCELLED);
        }
        self.auth_answer(line, out);
    }

    /// The client's answer (base64) to the current step: the next challenge, or the complete
    /// credentials for the credential check.
    fn auth_answer(&mut self, encoded: &[u8], out: &mut Vec<Output>) {
        let Some(step) = self.auth_step.take() else {
            self.phase = Phase::Ready;
            return self.reply(out, reply::AUTH_BAD_RESPONSE);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim_ascii())
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        let Some(decoded) = decoded else {
            self.phase = Phase::Ready;
            return self.reply(out, reply::AUTH_BAD_RESPONSE);
        };
        let credentials = match step {
            AuthStep::LoginUsername => {
                self.auth_step = Some(AuthStep::LoginPassword { username: decoded });
                out.push(Output::Send(reply::AUTH_LOGIN_PASSWORD.to_wire()));
                return;
            }
            AuthStep::LoginPassword { username } => Credentials {
                mechanism: "LOGIN",
                username,
                password: decoded,
            },
            AuthStep::Plain => {
                // RFC 4616 §2: message = [authzid] NUL authcid NUL passwd.
                let mut parts = decoded.splitn(3, '\0');
                let (Some(authzid), Some(authcid), Some(password)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    self.phase = Phase::Ready;
                    return self.reply(out, reply::AUTH_BAD_RESPONSE);
                };
                if authcid.is_empty() {
                    self.phase = Phase::Ready;
                    return self.reply(out, reply::AUTH_BAD_RESPONSE);
                }
                if !authzid.is_empty() && authzid != authcid {
                    // Acting as another user is not offered; counted as a failure, and the
                    // password is not checked.
                    self.phase = Phase::Ready;
                    let refusal = Refusal::new(
                        reply::AUTH_AUTHZID_REFUSED,
                        Reason::new(
                            Stage::Session,
                            "AUTH PLAIN named an authorization identity other than the user's own",
                        ),
                    );
                    return self.auth_failed(out, refusal);
                }
                Credentials {
                    mechanism: "PLAIN",
                    username: authcid.to_string(),
                    password: password.to_string(),
                }
            }
        };
        self.phase = Phase::Ready;
        match self.policy.auth(&self.client, credentials) {
            Decision::Ready(v) => self.resolve(Waiting::Auth, Answer::Auth(v), out),
            Decision::Pending(f) => self.wait(Waiting::Auth, PendingDecision::auth(f), out),
        }
    }

    /// A hook's refusal: the reply to the command, and its reason in the log (the client learns
    /// only the reply).
    fn refuse(&mut self, out: &mut Vec<Output>, command: &str, refusal: Refusal) {
        self.log_refusal(command, &refusal);
        self.reply(out, refusal.reply);
    }

    /// At debug level: directory-based edge blocking refuses much of what spammers send, and
    /// the connection log of the edge-protection stages is where refusals will be kept.
    fn log_refusal(&self, command: &str, refusal: &Refusal) {
        tracing::debug!(
            client = %self.client.ip(),
            "{command} refused with {}: {}",
            refusal.reply,
            refusal.reason
        );
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<Output>) {
        // RFC 3461's parameters are hato's to parse (smtp-proto's limits are not RFC 3461's);
        // the rest of the line goes to smtp-proto.
        let (line, dsn_params) = split_dsn_parameters(line);
        let line = &line[..];
        let parsed = Request::parse(&mut line.iter());
        let request = match parsed {
            Ok(r) => r,
            Err(e) => {
                let r = match e {
                    ProtoError::UnknownCommand => reply::COMMAND_UNRECOGNIZED,
                    ProtoError::InvalidSenderAddress => reply::BAD_SENDER_SYNTAX,
                    ProtoError::InvalidRecipientAddress => reply::BAD_RECIPIENT_SYNTAX,
                    ProtoError::SyntaxError { syntax } => reply::syntax(syntax),
                    ProtoError::InvalidParameter { param } => reply::invalid_parameter(param),
                    // The client's text is echoed; at most 40 characters of it.
                    ProtoError::UnsupportedParameter { param } => {
                        reply::unsupported_parameter(param.chars().take(40).collect::<String>())
                    }
                    _ => reply::SYNTAX_ERROR,
                };
                self.reply(out, r);
                return;
            }
        };
        match request {
            Request::Ehlo { host } => self.hello(host.as_ref(), true, out),
            Request::Helo { host } => self.hello(host.as_ref(), false, out),
            Request::Lhlo { .. } => self.reply(out, reply::COMMAND_UNRECOGNIZED),
            Request::Mail { from } => {
                if from.address.is_empty() && !path_is_empty(line) {
                    // `MAIL FROM:<postmaster>` is not the null sender.
                    return self.reply(out, reply::SENDER_NEEDS_DOMAIN);
                }
                let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
                let dsn = dsn::parse_mail_parameters(&dsn_params);
                self.mail(from.address.as_ref(), from.size, smtputf8, dsn, out)
            }
            Request::Rcpt { to } => {
                let postmaster = to.address.is_empty() && !path_is_empty(line);
                let dsn = dsn::parse_rcpt_parameters(&dsn_params);
                self.rcpt(to.address.as_ref(), postmaster, dsn, out)
            }
            Request::Data => self.data(out),
            Request::Rset => {
                self.reset_transaction();
                self.reply(out, reply::OK);
            }
            Request::Noop { .. } => self.reply(out, reply::OK),
            Request::Quit => {
                out.push(Output::Send(
                    reply::closing(&self.config.hostname).to_wire(),
                ));
                out.push(Output::Close);
                self.phase = Phase::Closed;
            }
            // RFC 5321 §3.5.3: VRFY disabled; 252 neither confirms nor denies.
            Request::Vrfy { .. } => self.reply(out, reply::VRFY_DISABLED),
            Request::Help { .. } => self.reply(out, reply::HELP),
            Request::StartTls => self.starttls(out),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response.as_ref(), out),
            Request::Expn { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.reply(out, reply::NOT_IMPLEMENTED),
        }
    }

    fn hello(&mut self, host: &str, esmtp: bool, out: &mut Vec<Output>) {
        if host.trim().is_empty() {
            self.reply(out, reply::HELO_REQUIRES_DOMAIN);
            return;
        }
        let host: String = host.chars().take(255).collect();
        let decision = self.policy.ehlo(&self.client, &host);
        self.ask(decision, Waiting::Hello { host, esmtp }, out);
    }

    fn hello_accepted(&mut self, host: String, esmtp: bool, out: &mut Vec<Output>) {
        // RFC 5321 §4.1.4: EHLO/HELO in a transaction resets it.
        self.reset_transaction();
        self.client.helo = Some(host);
        self.esmtp = esmtp;
        self.phase = Phase::Ready;
        let hello = reply::hello(&self.config.hostname, self.client.ip());
        if !esmtp {
            out.push(Output::Send(hello.to_wire()));
            return;
        }
        // RFC 5321 §4.1.1.1 and §4.2.1: the greeting, then one extension a line, each with the
        // greeting's code.
        let code = hello.code;
        let mut lines = vec![
            hello.text.into_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "PIPELINING".to_string(),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            // RFC 3461: NOTIFY, ORCPT, RET and ENVID are taken and honoured (on the inbound
            // listener and submission alike, as Exchange Online offers DSN on both).
            "DSN".to_string(),
        ];
        if self.config.tls_available && self.client.tls.is_none() {
            lines.push("STARTTLS".to_string());
        }
        // RFC 4954 §4 and RFC 6409: PLAIN and LOGIN send the password itself, so they are offered
        // only inside TLS (Exchange Online: "STARTTLS required, TLS 1.2+").
        if self.config.submission && self.client.tls.is_some() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        let mut text = String::new();
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            text.push_str(&format!(
                "{code}{}{l}\r\n",
                if i == last { ' ' } else { '-' }
            ));
        }
        out.push(Output::Send(text.into_bytes()));
    }

    fn mail(
        &mut self,
        address: &str,
        size: usize,
        smtputf8: bool,
        dsn: Result<MessageDsn, DsnError>,
        out: &mut Vec<Output>,
    ) {
        match self.phase {
            Phase::Connected => return self.reply(out, reply::SEND_HELO_FIRST),
            Phase::Mail => return self.reply(out, reply::SENDER_ALREADY_GIVEN),
            _ => {}
        }
        let dsn = match dsn {
            Ok(d) => d,
            Err(e) => return self.reply(out, reply::invalid_dsn_parameter(e.parameter, e.problem)),
        };
        if self.config.submission {
            // RFC 6409 §4.1 lets a submission server require authentication; Exchange Online
            // requires TLS, then AUTH, and refuses anonymous MAIL with 5.7.57.
            if self.client.tls.is_none() {
                return self.reply(out, reply::MUST_STARTTLS);
            }
            if self.client.identity.is_none() {
                return self.reply(out, reply::ANONYMOUS_SUBMISSION);
            }
        }
        if size > self.config.max_message_size {
            return self.reply(out, reply::MESSAGE_TOO_BIG);
        }
        let sender = if address.is_empty() {
            None
        } else {
            match Address::parse(address) {
                Ok(a) => {
                    // RFC 6531 §3.3: what the client sent decides, not our canonical (Unicode)
                    // form of an A-label domain.
                    if !address.is_ascii() && !smtputf8 {
                        return self.reply(out, reply::NEEDS_SMTPUTF8);
                    }
                    Some(a)
                }
                Err(_) => return self.reply(out, reply::BAD_SENDER_SYNTAX),
            }
        };
        let decision = self.policy.mail(&self.client, sender.as_ref());
        self.ask(
            decision,
            Waiting::Mail {
                sender,
                smtputf8,
                dsn,
            },
            out,
        );
    }

    /// `postmaster`: the path was `<postmaster>` without a domain (RFC 5321 §4.1.1.3), which
    /// every server accepts (§4.5.1); the policy routes it.
    fn rcpt(
        &mut self,
        address: &str,
        postmaster: bool,
        dsn: Result<RecipientDsn, DsnError>,
        out: &mut Vec<Output>,
    ) {
        match self.phase {
            Phase::Connected => return self.reply(out, reply::SEND_HELO_FIRST),
            Phase::Mail => {}
            _ => return self.reply(out, reply::NEED_MAIL),
        }
        let dsn = match dsn {
            Ok(d) => d,
            Err(e) => return self.reply(out, reply::invalid_dsn_parameter(e.parameter, e.problem)),
        };
        if self.recipients.len() >= self.config.max_recipients {
            return self.reply(out, reply::TOO_MANY_RECIPIENTS);
        }
        let rcpt = match Address::parse(address) {
            _ if postmaster => Address::postmaster(),
            Ok(a) => a,
            Err(_) => return self.reply(out, reply::BAD_RECIPIENT_SYNTAX),
        };
        if !address.is_ascii() && !self.smtputf8 {
            return self.reply(out, reply::NEEDS_SMTPUTF8);
        }
        match self.policy.rcpt(&self.client, self.sender.as_ref(), &rcpt) {
            Decision::Ready(v) => self.resolve(Waiting::Rcpt(dsn), Answer::Rcpt(v), out),
            Decision::Pending(f) => self.wait(Waiting::Rcpt(dsn), PendingDecision::rcpt(f), out),
        }
    }

    fn data(&mut self, out: &mut Vec<Output>) {
        match self.phase {
            Phase::Connected => return self.reply(out, reply::SEND_HELO_FIRST),
            Phase::Mail => {}
            _ => return self.reply(out, reply::NEED_MAIL),
        }
        if self.recipients.is_empty() {
            return self.reply(out, reply::NO_VALID_RECIPIENTS);
        }
        self.content = MessageBody::new(self.config.spool_threshold, self.config.spool.clone());
        let receiver = DataReceiver::new(self.config.max_message_size);
        // hato's own header fields are kept from the tenant's own server when its on-premises
        // inbound connector says so (CloudServicesMailEnabled; seed E4, "keep internal
        // headers"): the edge attributed the client at MAIL FROM, before this.
        let keep_internal = self
            .client
            .attribution()
            .is_some_and(|a| a.keep_internal_headers);
        self.data = Some(match &self.config.header_filter {
            Some(rule) if !keep_internal => receiver.with_header_filter(rule.clone()),
            _ => receiver,
        });
        self.phase = Phase::Data;
        out.push(Output::Send(reply::START_DATA.to_wire()));
    }

    fn starttls(&mut self, out: &mut Vec<Output>) {
        if self.client.tls.is_some() {
            return self.reply(out, reply::TLS_ALREADY_ACTIVE);
        }
        if !self.config.tls_available {
            return self.reply(out, reply::TLS_NOT_AVAILABLE);
        }
        if self.phase == Phase::Connected {
            return self.reply(out, reply::SEND_HELO_FIRST);
        }
        out.push(Output::Send(reply::READY_TO_START_TLS.to_wire()));
        out.push(Output::StartTls);
        self.phase = Phase::Handshake;
    }
}

/// The refusal for an answer of the wrong kind.
fn mismatched_answer() -> Refusal {
    Refusal::new(
        reply::POLICY_FAILED,
        Reason::new(
            Stage::Session,
            "The policy answered another question than the one it was asked",
        ),
    )
}

/// A MAIL or RCPT line without its DSN parameters (RET, ENVID, NOTIFY, ORCPT), and those
/// parameters; any other line as it is. One pass over the line.
fn split_dsn_parameters(line: &[u8]) -> (std::borrow::Cow<'_, [u8]>, String) {
    let verb = line.get(..4).unwrap_or_default();
    if !verb.eq_ignore_ascii_case(b"MAIL") && !verb.eq_ignore_ascii_case(b"RCPT") {
        return (line.into(), String::new());
    }
    let start = parameters_start(line);
    let params = String::from_utf8_lossy(trim_line_end(&line[start..]));
    let is_dsn = |p: &&str| {
        let key = p.split_once('=').map_or(*p, |(k, _)| k);
        ["RET", "ENVID", "NOTIFY", "ORCPT"]
            .iter()
            .any(|d| key.eq_ignore_ascii_case(d))
    };
    let (dsn, other): (Vec<&str>, Vec<&str>) = params
        .split([' ', '\t'])
        .filter(|p| !p.is_empty())
        .partition(is_dsn);
    if dsn.is_empty() {
        return (line.into(), String::new());
    }
    let mut rest = line[..start].to_vec();
    for p in other {
        rest.push(b' ');
        rest.extend_from_slice(p.as_bytes());
    }
    rest.extend_from_slice(b"\r\n");
    (rest.into(), dsn.join(" "))
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where the esmtp-parameters of a MAIL or RCPT line start: after the path's closing `>` (a `>`
/// inside a quoted local part or after a backslash does not close it; RFC 5321 §4.1.2), without
/// the line ending. At most a command line's length, read once.
fn parameters_start(line: &[u8]) -> usize {
    let line = trim_line_end(line);
    match memchr::memchr(b'<', line) {
        Some(open) => {
            let (mut quoted, mut escaped) = (false, false);
            let mut end = line.len();
            for (i, &b) in line.iter().enumerate().skip(open + 1) {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    quoted = !quoted;
                } else if b == b'>' && !quoted {
                    end = i + 1;
                    break;
                }
            }
            end
        }
        // `MAIL FROM:addr PARAMS` without brackets: the parameters follow the first space after
        // the colon.
        None => memchr::memchr(b':', line)
            .and_then(|c| {
                line[c + 1..]
                    .iter()
                    .position(|b| *b != b' ')
                    .map(|p| c + 1 + p)
            })
            .and_then(|s| memchr::memchr(b' ', &line[s..]).map(|p| s + p))
            .unwrap_or(line.len()),
    }
}

/// Whether the path in a MAIL or RCPT line is `<>` (or absent). smtp-proto returns an empty
/// address both for `<>` and for `<postmaster>` (any case, with or without a source route); the
/// line tells them apart.
fn path_is_empty(line: &[u8]) -> bool {
    let Some(open) = memchr::memchr(b'<', line) else {
        return true;
    };
    let inner = &line[open + 1..];
    let close = memchr::memchr(b'>', inner).unwrap_or(inner.len());
    inner[..close].iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests;

//! What the client is asked to send (a [`Transaction`]) and what came of it (a
//! [`TransactionResult`], one [`RecipientResult`] per recipient).

use hato_core::reply::{self, Reply};

/// The body type the message declares (RFC 6152, `BODY=` of MAIL FROM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// Seven-bit content (RFC 5321's default): no `BODY` parameter is sent.
    #[default]
    SevenBit,
    /// Content with octets beyond ASCII: `BODY=8BITMIME`, only to a server that offers it.
    EightBitMime,
}

/// DSN `RET` (RFC 3461 §4.3): what a failure report returns of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// DSN `NOTIFY` (RFC 3461 §4.1): when the recipient's sender wants a report. All false is
/// `NOTIFY=NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    fn parameter(&self) -> String {
        if *self == Notify::NEVER {
            return "NEVER".into();
        }
        let mut words = Vec::new();
        if self.success {
            words.push("SUCCESS");
        }
        if self.failure {
            words.push("FAILURE");
        }
        if self.delay {
            words.push("DELAY");
        }
        words.join(",")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path's address (no angle brackets).
    pub address: String,
    /// DSN `NOTIFY`; `None` sends none (the server's default: failures and delays).
    pub notify: Option<Notify>,
    /// DSN `ORCPT` (RFC 3461 §4.2): the recipient's original address, as the sender gave it.
    pub orcpt: Option<String>,
}

impl Recipient {
    pub fn new(address: impl Into<String>) -> Self {
        Recipient {
            address: address.into(),
            notify: None,
            orcpt: None,
        }
    }
}

/// One message to send: the envelope and what the client must know of the content before
/// sending it. The content itself goes after DATA ([`super::Output::SendData`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    /// The reverse-path's address; empty for the null sender (`MAIL FROM:<>`).
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// The content's size in octets, for `SIZE=` (RFC 1870 §3) and the check against the
    /// server's limit.
    pub size: u64,
    pub body: Body,
    /// The message needs SMTPUTF8 (RFC 6531): its headers are UTF-8, or the sender said so.
    /// An envelope address beyond ASCII needs it whatever this says.
    pub smtputf8: bool,
    /// DSN `RET` and `ENVID` (RFC 3461 §4.3, §4.4; ENVID printable ASCII, at most 100
    /// characters).
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

impl Transaction {
    pub fn new(sender: impl Into<String>, recipients: Vec<Recipient>, size: u64) -> Self {
        Transaction {
            sender: sender.into(),
            recipients,
            size,
            ..Transaction::default()
        }
    }

    /// Whether the envelope or the message needs SMTPUTF8 (RFC 6531 §3.2).
    pub fn needs_smtputf8(&self) -> bool {
        self.smtputf8
            || !self.sender.is_ascii()
            || self.recipients.iter().any(|r| !r.address.is_ascii())
    }

    /// Whether the sender asked for anything DSN carries (RFC 3461).
    pub fn asks_dsn(&self) -> bool {
        self.ret.is_some()
            || self.envid.is_some()
            || self
                .recipients
                .iter()
                .any(|r| r.notify.is_some() || r.orcpt.is_some())
    }

    /// Refuses what cannot go on the wire: no recipient, an address that would break the
    /// command line, an ENVID DSN cannot carry.
    pub(crate) fn check(&self) -> Result<(), TransactionError> {
        if self.recipients.is_empty() {
            return Err(TransactionError::NoRecipients);
        }
        check_address(&self.sender, true)?;
        for r in &self.recipients {
            check_address(&r.address, false)?;
            if let Some(o) = &r.orcpt {
                check_address(o, false)?;
            }
        }
        if let Some(envid) = &self.envid
            && (envid.is_empty()
                || envid.len() > 100
                || !envid.bytes().all(|b| (0x20..0x7f).contains(&b)))
        {
            return Err(TransactionError::InvalidEnvid(envid.clone()));
        }
        Ok(())
    }

    /// `MAIL FROM` with the parameters the server takes.
    pub(crate) fn mail_command(&self, caps: &super::Capabilities) -> Vec<u8> {
        let mut line = format!("MAIL FROM:<{}>", self.sender);
        if caps.size {
            line.push_str(&format!(" SIZE={}", self.size));
        }
        if self.body == Body::EightBitMime && caps.eight_bit_mime {
            line.push_str(" BODY=8BITMIME");
        }
        if self.needs_smtputf8() && caps.smtputf8 {
            line.push_str(" SMTPUTF8");
        }
        if caps.dsn {
            match self.ret {
                Some(Ret::Full) => line.push_str(" RET=FULL"),
                Some(Ret::Headers) => line.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &self.envid {
                line.push_str(" ENVID=");
                line.push_str(&xtext(envid));
            }
        }
        line.push_str("\r\n");
        line.into_bytes()
    }
}

impl Recipient {
    /// `RCPT TO` with the DSN parameters when the server takes them.
    pub(crate) fn rcpt_command(&self, caps: &super::Capabilities) -> Vec<u8> {
        let mut line = format!("RCPT TO:<{}>", self.address);
        if caps.dsn {
            if let Some(n) = &self.notify {
                line.push_str(" NOTIFY=");
                line.push_str(&n.parameter());
            }
            if let Some(o) = &self.orcpt {
                line.push_str(" ORCPT=");
                line.push_str(&orcpt(o));
            }
        }
        line.push_str("\r\n");
        line.into_bytes()
    }
}

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets. Nothing that
/// would end the command or the path early (CR, LF, `<`, `>`, spaces, other controls) goes into
/// one.
fn check_address(address: &str, may_be_empty: bool) -> Result<(), TransactionError> {
    let bad = (address.is_empty() && !may_be_empty)
        || address.len() > 254
        || address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>');
    if bad {
        return Err(TransactionError::InvalidAddress(
            address.chars().take(300).collect(),
        ));
    }
    Ok(())
}

/// RFC 3461 §4: xtext — printable ASCII but `+` and `=` as is, every other octet as `+XX`.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// An `ORCPT` value: `rfc822;` and the address in xtext (RFC 3461 §4.2), or for an address
/// beyond ASCII `utf-8;` and its utf-8-addr-xtext (RFC 6533 §3: printable ASCII but `+`, `=`
/// and `\` as is, every other character as `\x{HEX}`), which is ASCII and so goes to any
/// server.
fn orcpt(address: &str) -> String {
    if address.is_ascii() {
        return format!("rfc822;{}", xtext(address));
    }
    let mut out = String::from("utf-8;");
    for c in address.chars() {
        if ('!'..='~').contains(&c) && !matches!(c, '+' | '=' | '\\') {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:02X}}}", u32::from(c)));
        }
    }
    out
}

/// A transaction the client will not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("a transaction needs at least one recipient")]
    NoRecipients,
    #[error("not an address that can go in an SMTP command: {0:?}")]
    InvalidAddress(String),
    #[error("ENVID must be 1 to 100 printable ASCII characters (RFC 3461 4.4): {0:?}")]
    InvalidEnvid(String),
    #[error("the session is not ready for a transaction")]
    NotReady,
}

/// Why the client sent nothing of a transaction: the server could not take the message as it
/// is. Every recipient gets the refusal's reply, a permanent failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalRefusal {
    /// Larger than the server's `SIZE` (RFC 1870 §4).
    TooBig { size: u64, limit: u64 },
    /// SMTPUTF8 needed, not offered (RFC 6531 §3.2).
    NeedsSmtputf8,
    /// An 8-bit body for a server without 8BITMIME (RFC 6152 §3). hato does not convert the
    /// message to 7 bits: the caller decides (an NDR, or a conversion of its own).
    NeedsDowngrade,
}

impl LocalRefusal {
    pub fn reply(&self) -> Reply {
        match self {
            LocalRefusal::TooBig { limit, .. } => reply::remote_size_exceeded(limit),
            LocalRefusal::NeedsSmtputf8 => reply::REMOTE_LACKS_SMTPUTF8,
            LocalRefusal::NeedsDowngrade => reply::REMOTE_LACKS_8BITMIME,
        }
    }
}

/// What became of one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The server took the message for it (a 2xx after the data).
    Delivered,
    /// A temporary failure (4xx, or the session failed): try again later.
    Deferred,
    /// A permanent failure (5xx): the sender gets an NDR.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientResult {
    pub address: String,
    /// The server's reply to its RCPT TO, when it was sent and answered.
    pub rcpt: Option<Reply>,
    /// The reply that decided: the refusal of its RCPT (or of MAIL, or of DATA), the reply after
    /// the data, a local refusal's, or for a session that failed the failure's
    /// ([`super::ClientError::reply`]).
    pub reply: Reply,
    /// RFC 3461 §5.2.2: the server took the message without offering DSN while the recipient's
    /// NOTIFY asked for SUCCESS; the caller owes the sender a "relayed" DSN.
    pub relayed_dsn: bool,
}

impl RecipientResult {
    pub fn status(&self) -> Status {
        match self.reply.code {
            200..=399 => Status::Delivered,
            500.. => Status::Failed,
            _ => Status::Deferred,
        }
    }
}

/// A transaction's outcome: per recipient, in the order given, and the replies to the
/// transaction's commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionResult {
    pub recipients: Vec<RecipientResult>,
    pub mail: Option<Reply>,
    /// The reply to DATA (354 when the server took the content).
    pub data: Option<Reply>,
    /// The reply after the end of data.
    pub end_of_data: Option<Reply>,
    /// Set when the client sent nothing: the server cannot take this message.
    pub refused: Option<LocalRefusal>,
    /// Whether the DSN parameters went to the server (it offers DSN, RFC 3461 §4). When the
    /// sender asked for DSN and they did not, the client is where DSN ends; see
    /// [`RecipientResult::relayed_dsn`].
    pub dsn_passed: bool,
}

impl TransactionResult {
    pub fn delivered(&self) -> impl Iterator<Item = &RecipientResult> {
        self.recipients
            .iter()
            .filter(|r| r.status() == Status::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_and_orcpt_encoding() {
        assert_eq!(xtext("a+b=c d@x.test"), "a+2Bb+3Dc+20d@x.test");
        assert_eq!(orcpt("user@example.test"), "rfc822;user@example.test");
        assert_eq!(orcpt("us+er@example.test"), "rfc822;us+2Ber@example.test");
        assert_eq!(
            orcpt("j\u{f6}rg+x@b\u{fc}cher.test"),
            "utf-8;j\\x{F6}rg\\x{2B}x@b\\x{FC}cher.test"
        );
    }

    #[test]
    fn addresses_that_would_break_the_command_are_refused() {
        for bad in [
            "a@b.test>\r\nRCPT TO:<c@d.test",
            "a b@c.test",
            "a<b@c.test",
            "a\tb@c.test",
            &format!("{}@x.test", "a".repeat(250)),
        ] {
            let tx = Transaction::new("s@x.test", vec![Recipient::new(bad)], 1);
            assert!(
                matches!(tx.check(), Err(TransactionError::InvalidAddress(_))),
                "{bad:?}"
            );
        }
        let tx = Transaction::new("", vec![Recipient::new("")], 1);
        assert!(matches!(
            tx.check(),
            Err(TransactionError::InvalidAddress(_))
        ));
        assert_eq!(
            Transaction::new("", vec![], 1).check(),
            Err(TransactionError::NoRecipients)
        );
        let mut tx = Transaction::new("", vec![Recipient::new("a@b.test")], 1);
        assert_eq!(tx.check(), Ok(()));
        tx.envid = Some("caf\u{e9}".into());
        assert!(matches!(tx.check(), Err(TransactionError::InvalidEnvid(_))));
    }
}

//! The catalogue of SMTP replies hato produces: one named entry each, so codes stay consistent and
//! are documented in one place (RFC 5321 §4.2 reply codes, RFC 3463 enhanced status codes, texts
//! modelled on Exchange Online's where users know them).

use std::borrow::Cow;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// RFC 3463 enhanced status code, e.g. `5.4.1`.
    pub status: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Self {
        Reply {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    pub fn with_text(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            status,
            text: Cow::Owned(text.into()),
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply as sent on the wire, CRLF-terminated.
    pub fn to_wire(&self) -> Vec<u8> {
        format!("{self}\r\n").into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status.is_empty() {
            write!(f, "{} {}", self.code, self.text)
        } else {
            write!(f, "{} {} {}", self.code, self.status, self.text)
        }
    }
}

// --- Positive replies -------------------------------------------------------------------------
pub const OK: Reply = Reply::new(250, "2.0.0", "OK");
pub const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender OK");
pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient OK");
pub const START_DATA: Reply = Reply::new(354, "", "Start mail input; end with <CRLF>.<CRLF>");
pub const READY_TO_START_TLS: Reply = Reply::new(220, "2.0.0", "SMTP server ready");
pub const BYE: Reply = Reply::new(221, "2.0.0", "Service closing transmission channel");
pub const HELP: Reply = Reply::new(
    214,
    "2.0.0",
    "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS VRFY HELP",
);
/// RFC 5321 §3.5.3: VRFY is disabled; 252 says we will still try to deliver.
pub const VRFY_DISABLED: Reply = Reply::new(
    252,
    "2.5.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
);

/// The final reply after DATA, sent only once the message is durable.
pub fn queued(trace_id: &str) -> Reply {
    Reply::with_text(
        250,
        "2.6.0",
        format!("<{trace_id}> Queued mail for delivery"),
    )
}

// --- Recipient and relay decisions (Exchange Online texts) ---------------------------------------
/// Directory-based edge blocking: unknown recipient of an authoritative domain.
pub const RECIPIENT_REJECTED: Reply =
    Reply::new(550, "5.4.1", "Recipient address rejected: Access denied");
/// Domain not accepted by any tenant: direct send never relays.
pub const UNABLE_TO_RELAY: Reply = Reply::new(550, "5.7.1", "Unable to relay");
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
pub const MESSAGE_TOO_BIG: Reply = Reply::new(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size",
);
/// Bare CR or LF in the message data (SMTP smuggling defence; Exchange Online's code).
pub const INVALID_CHARACTERS: Reply = Reply::new(550, "5.6.11", "Invalid characters");
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
pub const TEXT_LINE_TOO_LONG: Reply = Reply::new(
    550,
    "5.6.0",
    "Message has a line longer than 1000 octets (RFC 5321 4.5.3.1.6)",
);
/// RFC 6531 §3.5: a non-ASCII address without the SMTPUTF8 parameter.
pub const NEEDS_SMTPUTF8: Reply = Reply::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");

// --- Syntax and sequence (RFC 5321 §4.2.2, RFC 3463) ------------------------------------------------
pub const COMMAND_LINE_TOO_LONG: Reply = Reply::new(
    500,
    "5.5.2",
    "Line too long (RFC 5321 4.5.3.1.4 allows 512 octets)",
);
pub const COMMAND_UNRECOGNIZED: Reply = Reply::new(500, "5.5.1", "Command unrecognized");
pub const SYNTAX_ERROR: Reply = Reply::new(501, "5.5.4", "Syntax error in parameters or arguments");
pub const BAD_SENDER_SYNTAX: Reply = Reply::new(501, "5.1.7", "Bad sender address syntax");
/// `MAIL FROM:<postmaster>`: `<postmaster>` is a recipient only (RFC 5321 §4.1.1.3); a
/// reverse-path is a mailbox with a domain (§4.1.2), and `<>` is the null sender.
pub const SENDER_NEEDS_DOMAIN: Reply = Reply::new(
    501,
    "5.1.7",
    "Bad sender address syntax: a reverse-path needs a domain (RFC 5321 4.1.2)",
);
pub const BAD_RECIPIENT_SYNTAX: Reply = Reply::new(501, "5.1.3", "Bad recipient address syntax");
pub const HELO_REQUIRES_DOMAIN: Reply = Reply::new(501, "5.5.4", "Domain name required");
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
pub const SEND_HELO_FIRST: Reply = Reply::new(
    503,
    "5.5.1",
    "Bad sequence of commands: send EHLO/HELO first",
);
pub const SENDER_ALREADY_GIVEN: Reply = Reply::new(
    503,
    "5.5.1",
    "Bad sequence of commands: sender already specified",
);
pub const NEED_MAIL: Reply =
    Reply::new(503, "5.5.1", "Bad sequence of commands: need MAIL command");
pub const NEED_RCPT: Reply =
    Reply::new(503, "5.5.1", "Bad sequence of commands: need RCPT command");
pub const NO_VALID_RECIPIENTS: Reply = Reply::new(554, "5.5.1", "No valid recipients");
pub const TLS_ALREADY_ACTIVE: Reply = Reply::new(503, "5.5.1", "TLS already active");
pub const TLS_NOT_AVAILABLE: Reply = Reply::new(454, "4.7.0", "TLS not available");
pub const PARAMETER_NOT_SUPPORTED: Reply = Reply::new(
    555,
    "5.5.4",
    "MAIL FROM/RCPT TO parameters not recognized or not implemented",
);

// --- Session limits -----------------------------------------------------------------------------
pub const TOO_MANY_CONNECTIONS: Reply = Reply::new(
    421,
    "4.3.2",
    "Service not available, too many connections; try again later",
);
pub const TOO_MANY_CONNECTIONS_FROM_IP: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many connections from your IP address; try again later",
);
pub const IDLE_TIMEOUT: Reply = Reply::new(
    421,
    "4.4.2",
    "Timeout waiting for command; closing connection",
);
pub const DATA_TIMEOUT: Reply = Reply::new(
    421,
    "4.4.2",
    "Timeout receiving message data; closing connection",
);
pub const SESSION_TIMEOUT: Reply =
    Reply::new(421, "4.4.2", "Session lasted too long; closing connection");
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0", "Too many errors; closing connection");
pub const SHUTTING_DOWN: Reply = Reply::new(421, "4.3.2", "Service shutting down; try again later");
/// The message could not be made durable (disk or database trouble): the client must retry.
pub const STORE_FAILED: Reply = Reply::new(
    451,
    "4.3.0",
    "Temporary error storing the message; try again later",
);
/// A directory lookup at RCPT time failed (store trouble): the client must retry.
pub const DIRECTORY_FAILED: Reply =
    Reply::new(451, "4.3.0", "Temporary directory failure; try again later");
/// A policy hook could not decide (its lookup failed or its answer was lost): the client must
/// retry.
pub const POLICY_FAILED: Reply = Reply::new(
    451,
    "4.3.0",
    "Temporary error evaluating policy; try again later",
);

// --- Delivery outcomes (used in trace and NDRs) -------------------------------------------------
pub const MAILBOX_FULL: Reply = Reply::new(
    554,
    "5.2.2",
    "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException",
);
pub const NO_ROUTE_INTERNAL_RELAY: Reply = Reply::new(
    550,
    "5.4.4",
    "Unable to route: no outbound connector for this internal-relay domain",
);
/// A recipient whose processing kept failing (deferred with backoff until its attempts ran
/// out): Exchange's text for a message that was not delivered before it expired.
pub const MESSAGE_EXPIRED: Reply = Reply::new(550, "4.4.7", "QUEUE.Expired; message expired");
pub const RECIPIENT_NOT_FOUND: Reply = Reply::new(
    550,
    "5.1.10",
    "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(
            RECIPIENT_REJECTED.to_wire(),
            b"550 5.4.1 Recipient address rejected: Access denied\r\n"
        );
        assert_eq!(
            START_DATA.to_wire(),
            b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        );
        assert_eq!(
            queued("abc").to_string(),
            "250 2.6.0 <abc> Queued mail for delivery"
        );
        assert!(TOO_MANY_RECIPIENTS.code == 452 && !TOO_MANY_RECIPIENTS.is_permanent());
    }
}

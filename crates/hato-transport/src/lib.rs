//! hato's transport: what happens to a message between the SMTP session and the mailbox.
//!
//! - [`routing`]: the recipient decision at RCPT time (accepted domains, mailboxes, relay refusal).
//! - [`edge`]: the edge's protection stages around it (checks at connect, HELO, the tenants'
//!   connection filters, the connection log).
//! - [`content`]: the content stages after the data (malware filter, transport rules), per
//!   recipient, before the final 250.
//! - [`submission`]: client submission on the submission listener (AUTH's credential check as
//!   a trait, send-as, quotas).
//! - [`inbound`]: turning a finished SMTP transaction into a durable queue entry (the final 250).
//! - [`delivery`]: the queue runner: local delivery, quota, failures, NDRs, trace retention.
//! - [`digest`]: end-user quarantine notifications (the digest mail, its task, release tokens).
//! - [`ndr`]: RFC 3464 non-delivery reports.
//! - [`headers`]: the header fields of the messages hato writes, encoded and folded.

/// Moved to `hato-store` (the directory's recipient lookups use it too).
pub use hato_store::cache;
pub mod connectors;
pub mod content;
pub mod delivery;
pub mod digest;
pub mod dkim;
pub mod edge;
pub mod groupmail;
pub mod headers;
pub mod inbound;
mod junk_lists;
pub mod ndr;
pub mod outbound;
pub mod outbound_connectors;
pub mod outbound_spam;
pub mod preview;
pub mod routing;
pub mod spam_learning;
pub mod spam_stage;
pub mod submission;

// The header block and its fields are split in hato-core (`hato_core::header`), where the
// stages that decide about a message read them too.
pub(crate) use hato_core::header::only_fields;
pub use hato_core::header::{HeaderField, header_block, header_fields};

/// The Subject, Message-ID and From of a message, decoded, as trace and mailbox listings show them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub subject: String,
    /// With angle brackets, as message trace wants it; empty when the message has none.
    pub message_id: String,
    pub from: String,
}

/// Linear in the size of the header block, whatever is in it: only Subject, Message-ID and From
/// are handed to the header parser.
pub fn summarize(content: &[u8]) -> Summary {
    let fields = only_fields(header_block(content), &["Subject", "Message-ID", "From"]);
    let Some(msg) = mail_parser::MessageParser::new().parse_headers(&fields) else {
        return Summary::default();
    };
    let from = msg
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(addr)) => format!("{n} <{addr}>"),
            (None, Some(addr)) => addr.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    Summary {
        // Exchange's trace keeps the first 256 characters of a subject.
        subject: msg.subject().unwrap_or("").chars().take(256).collect(),
        message_id: msg
            .message_id()
            .map(|m| format!("<{m}>"))
            .unwrap_or_default(),
        from,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_decodes_headers() {
        let s = super::summarize(
            b"From: =?utf-8?q?J=C3=BCrgen?= <j@x.test>\r\nSubject: =?utf-8?b?w7xiZXI=?=\r\nMessage-ID: <abc@x.test>\r\n\r\nbody\r\n",
        );
        assert_eq!(s.subject, "über");
        assert_eq!(s.message_id, "<abc@x.test>");
        assert_eq!(s.from, "Jürgen <j@x.test>");
        assert_eq!(super::summarize(b"no headers at all").subject, "");
    }
}

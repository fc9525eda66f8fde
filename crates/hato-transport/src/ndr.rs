//! Non-delivery reports: RFC 3464 `multipart/report; report-type=delivery-status`, with a
//! human-readable first part modelled on Exchange Online's (cause, how to fix it, and the
//! diagnostic block for admins), the machine-readable status, and the original headers.
//!
//! The other delivery status notifications RFC 3461 lets a sender ask for are built here too
//! ([`build_notice`]): the delay notice (`Action: delayed`) and the success notices
//! (`Action: delivered`, `relayed`). Every report carries the original's header block only,
//! whatever `RET` asked: `RET=FULL` is treated as `HDRS` (RFC 3461 §4.3 lets an MTA return
//! headers only), so that an outside sender can never make hato store or send large content
//! back (issue 10 item 7).

use crate::headers::{HeaderBlock, Mailbox, is_addr_spec, without_controls};
use crate::{header_block, summarize};
use hato_core::{Reply, Timestamp};
use hato_store::{FailedRecipient, NoticeRecipient};
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};

pub struct NdrInput<'a> {
    pub hostname: &'a str,
    /// Original envelope sender: the NDR's recipient.
    pub sender: &'a str,
    pub original_trace_id: &'a str,
    pub original_received: Timestamp,
    pub original_content: &'a [u8],
    pub failed: &'a [FailedRecipient],
    pub now: Timestamp,
    /// For the NDR's own Message-ID.
    pub ndr_trace_id: &'a str,
    /// The original's `ENVID` (RFC 3461 §4.4): the report's `Original-Envelope-Id`.
    pub envid: Option<&'a str>,
}

/// Cause and fix, in words a sender understands, chosen by enhanced status code as Exchange does.
fn explain(code: &str) -> (&'static str, &'static str) {
    match code {
        "5.2.2" => (
            "The recipient's mailbox is full and can't accept messages now.",
            "Try to resend the message later, or contact the recipient in another way and ask them to free up space.",
        ),
        "5.1.10" | "5.1.1" => (
            "The recipient's email address wasn't found at the destination domain.",
            "Check the recipient's address for typing errors and resend the message.",
        ),
        "4.4.7" => (
            "The message couldn't be delivered before it expired: every attempt to deliver it in the meantime failed.",
            "Try to resend the message later. If it fails again, forward this report to your email admin.",
        ),
        "5.4.4" => (
            "The recipient's organisation routes this domain to its own mail server, but no route to it is configured.",
            "The recipient's email admin must configure an outbound connector for this domain. Tell them about this report.",
        ),
        _ => (
            "The message couldn't be delivered.",
            "Forward this report to your email admin; the diagnostic information below tells them why.",
        ),
    }
}

/// The postmaster of the domain of `address` (whose mail hato failed to deliver, or the group
/// whose moderators it asks), else of hato's own host name.
pub fn postmaster_for(address: &str, hostname: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| format!("postmaster@{domain}"))
        .filter(|p| is_addr_spec(p))
        .unwrap_or_else(|| format!("postmaster@{hostname}"))
}

/// A reply as the delivery-status fields carry it (RFC 3464 §2.3.6: US-ASCII text): at most
/// `MAX_DIAGNOSTIC` characters, so that even a reply without spaces (a long moderation comment)
/// stays within RFC 5322's line limit; message trace keeps the whole text.
fn diagnostic(reply: &Reply) -> String {
    const MAX_DIAGNOSTIC: usize = 900;
    let text = ascii(&reply.to_string());
    if text.len() <= MAX_DIAGNOSTIC {
        return text;
    }
    format!("{}...", &text[..MAX_DIAGNOSTIC - 3])
}

/// Builds the NDR message (without an envelope: that is the caller's, with a null sender).
/// Every header field is written by [`crate::headers`], so nothing from the original message
/// (its subject, its Message-ID) or its envelope can add a field or a body of its own.
pub fn build(input: &NdrInput<'_>) -> std::io::Result<Vec<u8>> {
    let original = summarize(input.original_content);
    let headers = truncated_headers(header_block(input.original_content), MAX_NDR_HEADERS);
    let recipients: Vec<String> = input
        .failed
        .iter()
        .map(|f| without_controls(&f.address).into_owned())
        .collect();

    let mut text = format!(
        "Your message to {} couldn't be delivered.\r\n\r\n",
        recipients.join(", ")
    );
    for (f, address) in input.failed.iter().zip(&recipients) {
        let (cause, fix) = explain(&f.reply.status);
        text.push_str(&format!(
            "{address}\r\n  Cause: {cause}\r\n  How to fix it: {fix}\r\n\r\n"
        ));
    }
    text.push_str(
        "More info for email admins\r\n\r\nDiagnostic information for administrators:\r\n\r\n",
    );
    text.push_str(&format!("Generating server: {}\r\n\r\n", input.hostname));
    for (f, address) in input.failed.iter().zip(&recipients) {
        text.push_str(&format!(
            "{address}\r\nRemote server: {}\r\n{}\r\n{}\r\n\r\n",
            input.hostname,
            status_of(&f.reply),
            ascii(&f.reply.to_string())
        ));
    }
    text.push_str(&format!(
        "Message trace id: {}\r\n",
        input.original_trace_id
    ));

    // RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields.
    let mut status = per_message_fields(input.hostname, input.envid, input.original_received);
    for (f, address) in input.failed.iter().zip(&recipients) {
        let mut fields = HeaderBlock::new();
        original_recipient(&mut fields, f.orcpt.as_ref());
        fields
            .structured("Final-Recipient", &format!("rfc822; {address}"))
            .fixed("Action", "failed")
            .structured("Status", status_of(&f.reply))
            .structured(
                "Diagnostic-Code",
                &format!("smtp; {}", diagnostic(&f.reply)),
            );
        status.push_str("\r\n");
        status.push_str(fields.as_str());
    }

    let mut status_part = b"Content-Type: message/delivery-status\r\n\r\n".to_vec();
    status_part.extend_from_slice(status.as_bytes());
    let mut headers_part = b"Content-Type: text/rfc822-headers\r\n\r\n".to_vec();
    headers_part.extend_from_slice(headers);

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", text),
            MimePart::raw(BodyPart::Binary(status_part.into())),
            MimePart::raw(BodyPart::Binary(headers_part.into())),
        ]),
    );
    let subject = if original.subject.is_empty() {
        "Undeliverable:".to_string()
    } else {
        format!("Undeliverable: {}", original.subject)
    };
    let postmaster = postmaster_for(
        input.failed.first().map_or("", |f| f.address.as_str()),
        input.hostname,
    );
    let mut h = HeaderBlock::new();
    h.mailboxes(
        "From",
        &[Mailbox::new(Some("Mail Delivery System"), &postmaster)],
    )
    .mailboxes("To", &[Mailbox::new(None, input.sender)])
    .text("Subject", &subject);
    h.msg_id(
        "Message-ID",
        &format!("{}@{}", input.ndr_trace_id, input.hostname),
    );
    h.date("Date", input.now)
        // RFC 3834 §5: an automatic response; nobody should answer it automatically.
        .fixed("Auto-Submitted", "auto-replied");
    // An original Message-ID that is not a msg-id is not repeated (In-Reply-To is optional).
    h.msg_id("In-Reply-To", &original.message_id);
    h.fixed("MIME-Version", "1.0");
    let mut out = h.into_bytes();
    report.write_part(&mut out)?;
    Ok(out)
}

/// RFC 3464 §2.2: the per-message fields: `Original-Envelope-Id` when the sender gave ENVID
/// (§2.2.1; RFC 3461 §6.3 requires it then), the reporting MTA, the arrival date.
fn per_message_fields(hostname: &str, envid: Option<&str>, received: Timestamp) -> String {
    let mut fields = HeaderBlock::new();
    if let Some(envid) = envid {
        fields.structured("Original-Envelope-Id", &ascii(envid));
    }
    fields
        .structured("Reporting-MTA", &format!("dns; {hostname}"))
        .structured("Arrival-Date", &received.to_rfc5322());
    fields.as_str().to_string()
}

/// RFC 3464 §2.3.1: `Original-Recipient` when the sender gave ORCPT (RFC 3461 §6.3 requires
/// it then), before `Final-Recipient`.
fn original_recipient(fields: &mut HeaderBlock, orcpt: Option<&hato_core::dsn::Orcpt>) {
    if let Some(o) = orcpt {
        fields.structured(
            "Original-Recipient",
            &format!("{}; {}", ascii(&o.addr_type), ascii(&o.address)),
        );
    }
}

/// A delay or success notice (RFC 3464, for RFC 3461's `NOTIFY=DELAY` and `NOTIFY=SUCCESS`).
pub struct NoticeInput<'a> {
    pub hostname: &'a str,
    /// Original envelope sender: the notice's recipient.
    pub sender: &'a str,
    pub original_trace_id: &'a str,
    pub original_received: Timestamp,
    pub original_content: &'a [u8],
    pub envid: Option<&'a str>,
    /// The recipients reported on, all of one kind (delayed, or delivered/relayed).
    pub recipients: &'a [NoticeRecipient],
    /// Delay notices: until when delivery is tried (`Will-Retry-Until`, RFC 3464 §2.3.8), per
    /// recipient in `recipients`' order.
    pub retry_until: &'a [Timestamp],
    pub now: Timestamp,
    pub notice_trace_id: &'a str,
}

/// Builds a delay or success notice: the same `multipart/report` as an NDR, with Exchange's
/// subjects (`Delivery delayed:`, `Delivered:`, `Relayed:`) and the original's headers only.
pub fn build_notice(input: &NoticeInput<'_>) -> std::io::Result<Vec<u8>> {
    let original = summarize(input.original_content);
    let headers = truncated_headers(header_block(input.original_content), MAX_NDR_HEADERS);
    let addresses: Vec<String> = input
        .recipients
        .iter()
        .map(|r| without_controls(&r.address).into_owned())
        .collect();
    let delayed = input.recipients.iter().any(|r| r.action == "delayed");
    let relayed = input.recipients.iter().all(|r| r.action == "relayed");
    let mut text = String::new();
    if delayed {
        text.push_str(&format!(
            "Delivery is delayed to these recipients: {}\r\n\r\n\
             This message hasn't been delivered yet. Delivery will continue to be attempted; \
             you don't need to resend it. You'll be notified if it can't be delivered in the end.\r\n\r\n",
            addresses.join(", ")
        ));
        for ((r, address), until) in input
            .recipients
            .iter()
            .zip(&addresses)
            .zip(input.retry_until)
        {
            let last = r
                .reply
                .as_ref()
                .map(|reply| ascii(&reply.to_string()))
                .unwrap_or_default();
            text.push_str(&format!(
                "{address}\r\n  Trying until: {}\r\n  Last error: {last}\r\n\r\n",
                until.to_rfc5322()
            ));
        }
    } else if relayed {
        text.push_str(&format!(
            "Your message was relayed to these recipients' servers, which don't send delivery \
             notifications; no further notification may come: {}\r\n\r\n",
            addresses.join(", ")
        ));
    } else {
        text.push_str(&format!(
            "Your message has been delivered to the following recipients: {}\r\n\r\n",
            addresses.join(", ")
        ));
    }
    text.push_str(&format!(
        "Reporting server: {}\r\nMessage trace id: {}\r\n",
        input.hostname, input.original_trace_id
    ));

    let mut status = per_message_fields(input.hostname, input.envid, input.original_received);
    for (i, (r, address)) in input.recipients.iter().zip(&addresses).enumerate() {
        let mut fields = HeaderBlock::new();
        original_recipient(&mut fields, r.orcpt.as_ref());
        fields.structured("Final-Recipient", &format!("rfc822; {address}"));
        match r.action {
            "delayed" => {
                fields.fixed("Action", "delayed");
                let (status, code) = match &r.reply {
                    // RFC 3464 §2.3.4: a delay's status is a 4.x.x one.
                    Some(reply) if !reply.is_permanent() => {
                        (status_of(reply).to_string(), Some(reply))
                    }
                    Some(reply) => ("4.0.0".to_string(), Some(reply)),
                    None => ("4.0.0".to_string(), None),
                };
                fields.structured("Status", &status);
                if let Some(reply) = code {
                    fields.structured("Diagnostic-Code", &format!("smtp; {}", diagnostic(reply)));
                }
                if let Some(until) = input.retry_until.get(i) {
                    fields.structured("Will-Retry-Until", &until.to_rfc5322());
                }
            }
            "relayed" => {
                fields.fixed("Action", "relayed").fixed("Status", "2.0.0");
            }
            _ => {
                fields.fixed("Action", "delivered").fixed("Status", "2.0.0");
            }
        }
        status.push_str("\r\n");
        status.push_str(fields.as_str());
    }

    let mut status_part = b"Content-Type: message/delivery-status\r\n\r\n".to_vec();
    status_part.extend_from_slice(status.as_bytes());
    let mut headers_part = b"Content-Type: text/rfc822-headers\r\n\r\n".to_vec();
    headers_part.extend_from_slice(headers);
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", text),
            MimePart::raw(BodyPart::Binary(status_part.into())),
            MimePart::raw(BodyPart::Binary(headers_part.into())),
        ]),
    );
    let prefix = if delayed {
        "Delivery delayed:"
    } else if relayed {
        "Relayed:"
    } else {
        "Delivered:"
    };
    let subject = if original.subject.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {}", original.subject)
    };
    let postmaster = postmaster_for(
        input.recipients.first().map_or("", |r| r.address.as_str()),
        input.hostname,
    );
    let mut h = HeaderBlock::new();
    h.mailboxes(
        "From",
        &[Mailbox::new(Some("Mail Delivery System"), &postmaster)],
    )
    .mailboxes("To", &[Mailbox::new(None, input.sender)])
    .text("Subject", &subject);
    h.msg_id(
        "Message-ID",
        &format!("{}@{}", input.notice_trace_id, input.hostname),
    );
    h.date("Date", input.now)
        // RFC 3834 §5: an automatic response; nobody should answer it automatically.
        .fixed("Auto-Submitted", "auto-replied");
    h.msg_id("In-Reply-To", &original.message_id);
    h.fixed("MIME-Version", "1.0");
    let mut out = h.into_bytes();
    report.write_part(&mut out)?;
    Ok(out)
}

/// At most this much of the original's header block goes into an NDR. A header may be up to the
/// whole 35 MB message size; Exchange likewise returns the original headers truncated, and a
/// report should not cost its recipient (or the queue) the size of the original.
pub const MAX_NDR_HEADERS: usize = 64 * 1024;

/// `headers`, or its longest prefix of at most `max` bytes that ends with a line break (CRLF):
/// every line in it is whole, and a folded field cut after one of its lines is still a
/// well-formed field (RFC 5322 §2.2.3). RFC 5321 §4.5.3.1.6 limits a line to 1000 octets, so
/// such a prefix is never much shorter than `max`; a block without any line break is cut at
/// `max`. Looks at no more than `max` bytes.
pub fn truncated_headers(headers: &[u8], max: usize) -> &[u8] {
    if headers.len() <= max {
        return headers;
    }
    let window = &headers[..max];
    let end = window
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .map_or(max, |i| i + 2);
    &headers[..end]
}

/// The RFC 3464 `Status` of a failed recipient: its reply's enhanced status code as recorded,
/// or RFC 3463's "other undefined status" of the reply's class for a reply recorded without one.
fn status_of(reply: &Reply) -> &str {
    let recorded = &*reply.status;
    let valid = recorded.split('.').count() == 3
        && recorded.starts_with(['4', '5'])
        && recorded
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match (valid, reply.is_permanent()) {
        (true, _) => recorded,
        (false, true) => "5.0.0",
        (false, false) => "4.0.0",
    }
}

/// SMTP responses in reports are US-ASCII.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};
    use proptest::prelude::*;

    #[test]
    fn ndr_is_a_delivery_status_report() {
        let failed = vec![FailedRecipient {
            id: 1,
            address: "alice@contoso.test".into(),
            tenant_id: 1,
            reply: hato_core::reply::MAILBOX_FULL,
            orcpt: None,
        }];
        let original = b"From: bob@fabrikam.test\r\nSubject: Quarterly report\r\nMessage-ID: <m1@fabrikam.test>\r\n\r\nbody\r\n";
        let bytes = build(&NdrInput {
            hostname: "mx.hato.test",
            sender: "bob@fabrikam.test",
            original_trace_id: "trace-1",
            original_received: Timestamp(1_800_000_000_000_000),
            original_content: original,
            failed: &failed,
            now: Timestamp(1_800_000_100_000_000),
            ndr_trace_id: "ndr-1",
            envid: None,
        })
        .unwrap();
        let msg = MessageParser::new().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Undeliverable: Quarterly report"));
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("postmaster@contoso.test")
        );
        let ct = msg.content_type().unwrap();
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.contains("Content-Type: message/delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822; alice@contoso.test"));
        assert!(text.contains("Action: failed"));
        assert!(text.contains("Status: 5.2.2"));
        assert!(text.contains("Diagnostic-Code: smtp; 554 5.2.2 mailbox full"));
        assert!(text.contains("Content-Type: text/rfc822-headers"));
        assert!(text.contains("Message-ID: <m1@fabrikam.test>"));
        let body = msg.body_text(0).unwrap();
        assert!(body.contains("mailbox is full"), "{body}");
        assert!(body.contains("Generating server: mx.hato.test"));
        assert!(body.contains("How to fix it"));
    }

    fn failed(address: &str, text: &str) -> Vec<FailedRecipient> {
        vec![FailedRecipient {
            id: 1,
            address: address.into(),
            tenant_id: 1,
            reply: Reply::stored(550, "5.7.1", text),
            orcpt: None,
        }]
    }

    fn ndr_for(original: &[u8], sender: &str, failed: &[FailedRecipient]) -> Vec<u8> {
        build(&NdrInput {
            hostname: "mx.hato.test",
            sender,
            original_trace_id: "trace-1",
            original_received: Timestamp(1_800_000_000_000_000),
            original_content: original,
            failed,
            now: Timestamp(1_800_000_100_000_000),
            ndr_trace_id: "ndr-1",
            envid: None,
        })
        .unwrap()
    }

    /// Every line ends in CRLF, none is longer than RFC 5322's 998 characters (§2.1.1), and the
    /// delivery-status part holds only its fields (each line a field or a folded continuation).
    fn assert_lines(bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR"),
                b'\n' => assert_eq!(bytes[i - 1], b'\r', "bare LF"),
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(bytes);
        for line in text.split("\r\n") {
            assert!(line.len() <= 998, "{} octets: {line:?}", line.len());
        }
        let status = text
            .split("Content-Type: message/delivery-status\r\n\r\n")
            .nth(1)
            .expect("status part");
        let status = &status[..status.find("\r\n--").expect("part ends")];
        for line in status.split("\r\n").filter(|l| !l.is_empty()) {
            let field = line.split(':').next().unwrap_or_default();
            assert!(
                line.starts_with(' ')
                    || [
                        "Reporting-MTA",
                        "Arrival-Date",
                        "Final-Recipient",
                        "Action",
                        "Status",
                        "Diagnostic-Code"
                    ]
                    .contains(&field),
                "{line:?} in {status}"
            );
        }
    }

    #[test]
    fn a_subject_and_message_id_that_decode_to_fields_stay_where_they_are() {
        // The subject decodes to CR LF, a field and a body; the Message-ID has a field folded in.
        let original = b"From: bob@fabrikam.test\r\n\
            Subject: =?utf-8?b?eA0KUmVwbHktVG86IGF0dGFja2VyQGV2aWwudGVzdA0KDQpib2R5IG9mIHRoZSBhdHRhY2tlcg==?=\r\n\
            Message-ID: <m1@fabrikam.test>\r\n\tBcc: victim@contoso.test\r\n\r\nbody\r\n";
        let long_comment = format!("rejected by the moderator: {}", "x".repeat(5000));
        let bytes = ndr_for(
            original,
            "bob@fabrikam.test",
            &failed("alice@contoso.test", &long_comment),
        );
        assert_lines(&bytes);
        let msg = MessageParser::new().parse(&bytes).unwrap();
        let names: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
        assert_eq!(
            names,
            [
                "From",
                "To",
                "Subject",
                "Message-ID",
                "Date",
                "Auto-Submitted",
                "In-Reply-To",
                "MIME-Version",
                "Content-Type"
            ]
        );
        assert!(
            String::from_utf8_lossy(&bytes).contains("\r\nIn-Reply-To: <m1@fabrikam.test>\r\n")
        );
        assert_eq!(
            msg.subject(),
            Some("Undeliverable: xReply-To: attacker@evil.testbody of the attacker")
        );
        let body = msg.body_text(0).unwrap();
        assert!(
            body.starts_with("Your message to alice@contoso.test"),
            "{body}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_original_or_envelope_yields_exactly_the_ndr_fields(
            subject in "(\\PC|[\r\n\t\0\u{85}]|=\\?|\\?=| ){0,120}",
            message_id in "[ -~\t]{0,60}",
            sender in "(\\PC|[\r\n\0<>\"]){0,40}",
            address in "(\\PC|[\r\n\0]){0,40}",
            reply in "(\\PC|[\r\n\0 ]){0,1200}",
        ) {
            let mut encoded = String::new();
            crate::headers::base64_encode(subject.as_bytes(), &mut encoded);
            let original = format!(
                "From: bob@fabrikam.test\r\nSubject: =?utf-8?b?{encoded}?=\r\nMessage-ID: {message_id}\r\n\r\nbody\r\n"
            );
            let bytes = ndr_for(original.as_bytes(), &sender, &failed(&address, &reply));
            assert_lines(&bytes);
            let summary = summarize(original.as_bytes());
            let mut want = vec!["From", "To", "Subject", "Message-ID", "Date", "Auto-Submitted"];
            if HeaderBlock::new().msg_id("In-Reply-To", &summary.message_id) {
                want.push("In-Reply-To");
            }
            want.extend(["MIME-Version", "Content-Type"]);
            let msg = MessageParser::new().parse(&bytes).unwrap();
            let names: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
            prop_assert_eq!(names, want);
            let subject_want = if summary.subject.is_empty() {
                "Undeliverable:".to_string()
            } else {
                format!("Undeliverable: {}", summary.subject)
            };
            let subject_want = without_controls(&subject_want);
            prop_assert_eq!(msg.subject().unwrap_or(""), subject_want.as_ref());
        }
    }

    /// RFC 3464 §2.2.1 and §2.3.1 (RFC 3461 §6.3): ENVID and ORCPT come back in the report,
    /// before the fields they belong with.
    #[test]
    fn ndr_quotes_envid_and_orcpt() {
        let mut failed = failed("a@contoso.test", "refused");
        failed[0].orcpt = Some(hato_core::dsn::Orcpt {
            addr_type: "rfc822".into(),
            address: "Original@contoso.test".into(),
        });
        let bytes = build(&NdrInput {
            hostname: "mx.hato.test",
            sender: "bob@fabrikam.test",
            original_trace_id: "trace-1",
            original_received: Timestamp(1_800_000_000_000_000),
            original_content: b"Subject: s\r\n\r\nbody\r\n",
            failed: &failed,
            now: Timestamp(1_800_000_100_000_000),
            ndr_trace_id: "ndr-1",
            envid: Some("ENV-1"),
        })
        .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("Original-Envelope-Id: ENV-1\r\nReporting-MTA: dns; mx.hato.test\r\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "Original-Recipient: rfc822; Original@contoso.test\r\nFinal-Recipient: rfc822; a@contoso.test\r\n"
            ),
            "{text}"
        );
    }

    fn notice_recipient(
        address: &str,
        action: &'static str,
        reply: Option<Reply>,
    ) -> NoticeRecipient {
        NoticeRecipient {
            id: 1,
            address: address.into(),
            tenant_id: 1,
            orcpt: None,
            action,
            reply,
            expires: Timestamp(1_800_086_400_000_000),
            remote: true,
        }
    }

    fn notice(recipients: &[NoticeRecipient]) -> String {
        let until: Vec<Timestamp> = recipients.iter().map(|r| r.expires).collect();
        let bytes = build_notice(&NoticeInput {
            hostname: "mx.hato.test",
            sender: "bob@contoso.test",
            original_trace_id: "trace-1",
            original_received: Timestamp(1_800_000_000_000_000),
            original_content:
                b"Subject: Plans\r\nMessage-ID: <m1@contoso.test>\r\n\r\nSECRET-BODY\r\n",
            envid: Some("E1"),
            recipients,
            retry_until: &until,
            now: Timestamp(1_800_014_400_000_000),
            notice_trace_id: "notice-1",
        })
        .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// RFC 3464 §2.3.3-2.3.8: a delay notice says `delayed`, the 4.x.x status and reply of the
    /// last deferral, and until when hato tries; headers only.
    #[test]
    fn a_delay_notice_is_a_delivery_status_report() {
        let text = notice(&[notice_recipient(
            "x@fabrikam.test",
            "delayed",
            Some(Reply::stored(451, "4.4.316", "Connection refused")),
        )]);
        let msg = mail_parser::MessageParser::new()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(msg.subject(), Some("Delivery delayed: Plans"));
        for want in [
            "report-type=\"delivery-status\"",
            "Original-Envelope-Id: E1",
            "Final-Recipient: rfc822; x@fabrikam.test\r\nAction: delayed\r\nStatus: 4.4.316\r\n\
             Diagnostic-Code: smtp; 451 4.4.316 Connection refused\r\nWill-Retry-Until: ",
            "Auto-Submitted: auto-replied",
            "In-Reply-To: <m1@contoso.test>",
            "Content-Type: text/rfc822-headers",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(!text.contains("SECRET-BODY"));
        // A permanent reply is never a delay's status.
        let text = notice(&[notice_recipient(
            "x@fabrikam.test",
            "delayed",
            Some(Reply::stored(550, "5.1.1", "odd")),
        )]);
        assert!(text.contains("Status: 4.0.0"), "{text}");
    }

    #[test]
    fn success_notices_say_delivered_or_relayed() {
        let text = notice(&[notice_recipient("a@contoso.test", "delivered", None)]);
        assert!(text.contains("Subject: Delivered: Plans"), "{text}");
        assert!(
            text.contains("Action: delivered\r\nStatus: 2.0.0"),
            "{text}"
        );
        assert!(!text.contains("Will-Retry-Until"), "{text}");
        let text = notice(&[notice_recipient("x@fabrikam.test", "relayed", None)]);
        assert!(text.contains("Subject: Relayed: Plans"), "{text}");
        assert!(text.contains("Action: relayed\r\nStatus: 2.0.0"), "{text}");
    }

    #[test]
    fn ndr_of_a_35_mb_header_keeps_a_bounded_prefix_cut_at_a_field() {
        // A References field of ~1 million identifiers, one per folded line (RFC 5321 lines are
        // at most 1000 octets): the worst case of the 35 MB message size limit.
        let mut original =
            b"From: bob@fabrikam.test\r\nMessage-ID: <m1@fabrikam.test>\r\nReferences:".to_vec();
        let mut i = 0;
        while original.len() < 35_000_000 {
            original.extend_from_slice(format!(" <reference-{i:08}@fabrikam.test>\r\n").as_bytes());
            i += 1;
        }
        original.extend_from_slice(b"Subject: After the references\r\n\r\nbody\r\n");
        let headers = header_block(&original);
        assert_eq!(headers.len(), original.len() - b"\r\nbody\r\n".len());
        let summary = summarize(&original);
        assert_eq!(summary.subject, "After the references");
        assert_eq!(summary.message_id, "<m1@fabrikam.test>");

        let failed = vec![FailedRecipient {
            id: 1,
            address: "alice@contoso.test".into(),
            tenant_id: 1,
            reply: hato_core::reply::MESSAGE_EXPIRED,
            orcpt: None,
        }];
        let bytes = build(&NdrInput {
            hostname: "mx.hato.test",
            sender: "bob@fabrikam.test",
            original_trace_id: "trace-1",
            original_received: Timestamp(1_800_000_000_000_000),
            original_content: &original,
            failed: &failed,
            now: Timestamp(1_800_000_100_000_000),
            ndr_trace_id: "ndr-1",
            envid: None,
        })
        .unwrap();
        // The report holds at most MAX_NDR_HEADERS of the original, plus its own few KB.
        assert!(
            bytes.len() < MAX_NDR_HEADERS + 8 * 1024,
            "{} bytes",
            bytes.len()
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Undeliverable: After the references"));
        assert!(text.contains("Message-ID: <m1@fabrikam.test>"));
        assert!(text.contains("<reference-00000000@fabrikam.test>"));
        assert!(text.contains("couldn't be delivered before it expired"));

        // The cut: the longest prefix within the bound that ends a line.
        let cut = truncated_headers(headers, MAX_NDR_HEADERS);
        assert!(cut.len() <= MAX_NDR_HEADERS && cut.len() > MAX_NDR_HEADERS - 100);
        assert!(cut.ends_with(b"@fabrikam.test>\r\n"), "cut inside a line");
        let fields = b"A: 1\r\nB: 2\r\n 3\r\nC: 4\r\n";
        assert_eq!(truncated_headers(fields, 100), &fields[..]);
        assert_eq!(truncated_headers(fields, 12), b"A: 1\r\nB: 2\r\n");
        assert_eq!(truncated_headers(fields, 13), b"A: 1\r\nB: 2\r\n");
        assert_eq!(truncated_headers(fields, 17), b"A: 1\r\nB: 2\r\n 3\r\n");
        assert_eq!(truncated_headers(b"no line break at all", 5), b"no li");
    }

    /// The status and diagnostic come from the reply as recorded (code, enhanced code, text),
    /// never from reading codes out of its text: a text that starts with another code, or with
    /// none, changes nothing.
    #[test]
    fn the_status_is_the_recorded_enhanced_code() {
        let status_and_diagnostic = |reply: Reply| {
            let bytes = ndr_for(
                b"From: bob@fabrikam.test\r\nSubject: s\r\n\r\nbody\r\n",
                "bob@fabrikam.test",
                &[FailedRecipient {
                    id: 1,
                    address: "alice@contoso.test".into(),
                    tenant_id: 1,
                    reply,
                    orcpt: None,
                }],
            );
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .to_string()
            };
            (field("Status: "), field("Diagnostic-Code: "), text)
        };
        let (status, diagnostic, text) =
            status_and_diagnostic(Reply::stored(554, "5.2.2", "mailbox full"));
        assert_eq!(status, "5.2.2");
        assert_eq!(diagnostic, "smtp; 554 5.2.2 mailbox full");
        assert!(text.contains("mailbox is full"), "{text}");
        let (status, diagnostic, _) =
            status_and_diagnostic(Reply::stored(550, "5.1.10", "451 4.3.0 another reply"));
        assert_eq!(status, "5.1.10");
        assert_eq!(diagnostic, "smtp; 550 5.1.10 451 4.3.0 another reply");
        // A reply recorded without a usable enhanced code gets its class's undefined status.
        let (status, _, _) = status_and_diagnostic(Reply::stored(550, "", "old"));
        assert_eq!(status, "5.0.0");
        let (status, _, _) = status_and_diagnostic(Reply::stored(450, "x\r\nBcc: y", "t"));
        assert_eq!(status, "4.0.0");
    }
}

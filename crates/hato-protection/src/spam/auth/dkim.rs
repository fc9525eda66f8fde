//! DKIM (RFC 6376) and ARC (RFC 8617) with mail-auth's verifiers, their key lookups made
//! through hato's resolver beforehand.
//!
//! Unlike SPF, the keys a message needs are known from the message itself: one
//! `<s>._domainkey.<d>` TXT record per DKIM signature, per ARC-Message-Signature and per
//! ARC-Seal. hato reads them through [`Lookups`] (concurrently, each bounded by the resolver's
//! timeout) and hands mail-auth a cache holding exactly those answers; any other name it asks
//! for gets "not fetched" (a temporary error), so mail-auth's own resolver never sends a query.
//!
//! Bounds: the first [`MAX_DKIM_SIGNATURES`] DKIM-Signature fields are verified (the others
//! are left out of the copy mail-auth parses, so their body hashes are not computed either);
//! a chain of more than [`MAX_ARC_SETS`] ARC sets is judged `fail` without a lookup; a
//! signature that signs more than [`MAX_SIGNED_FIELDS`] fields is a `permerror` (ARC: `fail`)
//! without a lookup.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use futures_util::future::join_all;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::{DomainKey, VerifySignature};
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, MessageAuthenticator, Parameters, ResolverCache,
    Txt,
};

use super::Lookups;
use crate::spam::AuthResult;

/// How many DKIM signatures are verified per message; the rest are named in the reason and
/// ignored (a sender needs one aligned signature; a message with dozens is an attack on the
/// verifier's time and DNS lookups).
pub const MAX_DKIM_SIGNATURES: usize = 5;
/// How many ARC sets a chain may have for hato to verify it. RFC 8617 §4.2.1 allows 50; each
/// set costs a key lookup and a signature check, and real chains have a handful of hops.
pub const MAX_ARC_SETS: usize = 10;
/// How many header fields a DKIM signature or ARC message signature may sign (its `h=` list)
/// for hato to check it. mail-auth finds each listed name among the message's fields by a
/// linear search per name, so a list of thousands of names against thousands of fields would
/// cost their product; real signers list a few dozen (oversigning included).
pub const MAX_SIGNED_FIELDS: usize = 64;

/// One DKIM signature's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimSignatureOutcome {
    pub result: AuthResult,
    /// The signing domain (`d=`), lower case.
    pub domain: String,
    /// Exchange's parenthesised comment: "signature was verified", "body hash did not verify".
    pub comment: String,
}

/// What DKIM and ARC found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DkimOutcome {
    pub signatures: Vec<DkimSignatureOutcome>,
    /// Signatures beyond [`MAX_DKIM_SIGNATURES`], not verified.
    pub skipped: usize,
    /// Malformed signature fields (mail-auth could not parse them).
    pub malformed: usize,
    pub arc: AuthResult,
    pub arc_why: String,
    /// The RFC 5322.From addresses, lower case.
    pub from: Vec<String>,
    /// Verification could not run to its end (a lost blocking task): DKIM is a `temperror`.
    pub failed: Option<String>,
}

impl DkimOutcome {
    fn failed(why: &str) -> DkimOutcome {
        DkimOutcome {
            failed: Some(why.to_string()),
            arc_why: why.to_string(),
            ..DkimOutcome::default()
        }
    }
}

/// The answers fetched for this message: mail-auth's lookups are served from here only.
#[derive(Clone)]
struct Fetched(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for Fetched {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(self.0.get(name).cloned().unwrap_or_else(|| {
            Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
                "not fetched by hato".into(),
            )))
        }))
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// mail-auth's verifier with a hickory resolver that has no name servers: every lookup is
/// answered by [`Fetched`], so it never sends a query (and could not if it tried).
pub(crate) fn offline_authenticator() -> Result<MessageAuthenticator, super::SenderAuthError> {
    mail_auth::hickory_resolver::TokioResolver::builder_with_config(
        ResolverConfig::from_parts(None, Vec::new(), Vec::new()),
        mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    )
    .with_options(ResolverOpts::default())
    .build()
    .map(MessageAuthenticator)
    .map_err(|e| super::SenderAuthError::Verifier(e.to_string()))
}

/// The header section's fields, each with its raw bytes (name, colon, value, folded lines,
/// final line break), and where the body starts. Linear: one pass over the bytes.
fn header_fields(raw: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            if pos > start {
                fields.push(&raw[start..pos]);
            }
            return (fields, line_end);
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && pos > start {
            fields.push(&raw[start..pos]);
            start = pos;
        }
        pos = line_end;
    }
    if pos > start {
        fields.push(&raw[start..pos]);
    }
    (fields, raw.len())
}

fn field_is(field: &[u8], name: &str) -> bool {
    field.len() > name.len()
        && field[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && matches!(field[name.len()], b':' | b' ' | b'\t')
}

/// The message mail-auth is given: the original, less DKIM-Signature fields past the cap and,
/// when the ARC chain is too long, less every ARC field. Returns the copy (or `None` when
/// nothing was dropped), the DKIM fields dropped, and the ARC sets counted.
fn bounded_copy(raw: &[u8]) -> (Option<Vec<u8>>, usize, usize) {
    let (fields, body) = header_fields(raw);
    let dkim = fields
        .iter()
        .filter(|f| field_is(f, "DKIM-Signature"))
        .count();
    let arc_sets = fields.iter().filter(|f| field_is(f, "ARC-Seal")).count();
    let drop_arc = arc_sets > MAX_ARC_SETS;
    if dkim <= MAX_DKIM_SIGNATURES && !drop_arc {
        return (None, 0, arc_sets);
    }
    let mut copy = Vec::with_capacity(raw.len());
    let mut kept_dkim = 0;
    for field in &fields {
        if field_is(field, "DKIM-Signature") {
            kept_dkim += 1;
            if kept_dkim > MAX_DKIM_SIGNATURES {
                continue;
            }
        }
        if drop_arc
            && (field_is(field, "ARC-Seal")
                || field_is(field, "ARC-Message-Signature")
                || field_is(field, "ARC-Authentication-Results"))
        {
            continue;
        }
        copy.extend_from_slice(field);
    }
    copy.extend_from_slice(b"\r\n");
    copy.extend_from_slice(&raw[body.min(raw.len())..]);
    (
        Some(copy),
        dkim.saturating_sub(MAX_DKIM_SIGNATURES),
        arc_sets,
    )
}

/// Messages larger than this are parsed, hashed and verified on tokio's blocking pool, so a
/// worker thread is never held for long: the body hashes are linear in the message (SHA-256 at
/// some hundreds of MB/s), a few milliseconds per megabyte and canonicalisation.
pub const OFFLOAD_BYTES: usize = 128 * 1024;

/// The message as mail-auth is given it, its caps applied: signatures over too many fields
/// taken out (their outcomes kept), an ARC chain with such a signature emptied.
struct Bounded<'x> {
    message: AuthenticatedMessage<'x>,
    oversized: Vec<DkimSignatureOutcome>,
    oversized_arc: Option<usize>,
}

fn parse_bounded(bytes: &[u8]) -> Option<Bounded<'_>> {
    let mut message = AuthenticatedMessage::parse(bytes)?;
    // Signatures over too many fields are judged here, before any lookup.
    let mut oversized = Vec::new();
    message.dkim_headers.retain(|h| {
        let fine = h.header.h.len() <= MAX_SIGNED_FIELDS;
        if !fine {
            oversized.push(DkimSignatureOutcome {
                result: AuthResult::PermError,
                domain: h.header.d.to_ascii_lowercase(),
                comment: format!(
                    "signature signs {} header fields, more than hato checks ({MAX_SIGNED_FIELDS})",
                    h.header.h.len()
                ),
            });
        }
        fine
    });
    let oversized_arc = message
        .ams_headers
        .iter()
        .map(|h| h.header.h.len())
        .max()
        .filter(|n| *n > MAX_SIGNED_FIELDS);
    if oversized_arc.is_some() {
        message.ams_headers.clear();
        message.as_headers.clear();
    }
    Some(Bounded {
        message,
        oversized,
        oversized_arc,
    })
}

/// The key records the signatures and seals name, as mail-auth will ask for them.
fn key_names(header: &[u8]) -> Vec<String> {
    let Some(bounded) = parse_bounded(header) else {
        return Vec::new();
    };
    let m = &bounded.message;
    let mut names: Vec<String> = m
        .dkim_headers
        .iter()
        .map(|h| h.header.domain_key())
        .chain(m.ams_headers.iter().map(|h| h.header.domain_key()))
        .chain(m.as_headers.iter().map(|h| h.header.domain_key()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Runs `work` here when the input is small, else on tokio's blocking pool (with its own copy
/// of the bytes). `None` if the blocking task was lost (it panicked or the runtime is going
/// down).
async fn cpu<T: Send + 'static>(
    bytes: &[u8],
    work: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> Option<T> {
    if bytes.len() <= OFFLOAD_BYTES {
        return Some(work(bytes));
    }
    let owned = bytes.to_vec();
    tokio::task::spawn_blocking(move || work(&owned)).await.ok()
}

/// Polls a future that cannot wait: mail-auth's verifiers are `async` for their lookups, and
/// every lookup is answered at once by [`Fetched`]. `None` if one did wait.
fn now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Verifies the message's DKIM signatures and ARC chain.
pub async fn verify(
    authenticator: &MessageAuthenticator,
    lookups: &Lookups<'_>,
    raw: &[u8],
) -> DkimOutcome {
    let (copy, skipped, arc_sets) = bounded_copy(raw);
    let bytes = copy.as_deref().unwrap_or(raw);
    let (_, body) = header_fields(bytes);
    let header = &bytes[..body.min(bytes.len())];

    let Some(names) = cpu(header, key_names).await else {
        return DkimOutcome::failed("the signature parser stopped");
    };
    let answers = join_all(names.iter().map(|name| async move {
        let lookup_name = name.trim_end_matches('.');
        let txt = match lookups.txt(lookup_name).await {
            Ok(records) => key_record(&records),
            Err(e) if e.is_not_found() => Txt::Error(mail_auth::Error::Dns(
                mail_auth::DnsError::RecordNotFound(ResponseCode::NXDomain),
            )),
            Err(e) => Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
                e.to_string(),
            ))),
        };
        (Box::<str>::from(name.as_str()), txt)
    }))
    .await;
    let fetched = Fetched(answers.into_iter().collect());
    let authenticator = authenticator.clone();
    cpu(bytes, move |bytes| {
        verify_now(&authenticator, bytes, &fetched, skipped, arc_sets)
    })
    .await
    .unwrap_or_else(|| DkimOutcome::failed("the verifier stopped"))
}

/// Parses, hashes and verifies, all answers at hand.
fn verify_now(
    authenticator: &MessageAuthenticator,
    bytes: &[u8],
    fetched: &Fetched,
    skipped: usize,
    arc_sets: usize,
) -> DkimOutcome {
    let Some(Bounded {
        message,
        oversized,
        oversized_arc,
    }) = parse_bounded(bytes)
    else {
        return DkimOutcome {
            arc_why: "the message has no header fields".into(),
            ..DkimOutcome::default()
        };
    };
    let Some(outputs) =
        now(authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(fetched)))
    else {
        return DkimOutcome::failed("a DKIM key was asked for that was not fetched");
    };
    let mut outcome = DkimOutcome {
        skipped,
        from: message
            .from
            .iter()
            .map(|f| f.to_ascii_lowercase())
            .collect(),
        ..DkimOutcome::default()
    };
    for output in &outputs {
        match output.signature() {
            Some(signature) => outcome
                .signatures
                .push(signature_outcome(output, &signature.d)),
            None => outcome.malformed += 1,
        }
    }
    outcome.signatures.extend(oversized);

    if let Some(fields) = oversized_arc {
        outcome.arc = AuthResult::Fail;
        outcome.arc_why = format!(
            "an ARC message signature signs {fields} header fields, more than hato checks ({MAX_SIGNED_FIELDS}); not verified"
        );
    } else if arc_sets > MAX_ARC_SETS {
        outcome.arc = AuthResult::Fail;
        outcome.arc_why = format!(
            "a chain of {arc_sets} ARC sets, more than hato verifies ({MAX_ARC_SETS}); not verified"
        );
    } else if arc_sets == 0 && message.ams_headers.is_empty() {
        outcome.arc = AuthResult::None;
        outcome.arc_why = "no ARC set".into();
    } else {
        let Some(arc) =
            now(authenticator.verify_arc(Parameters::new(&message).with_txt_cache(fetched)))
        else {
            outcome.arc = AuthResult::TempError;
            outcome.arc_why = "an ARC key was asked for that was not fetched".into();
            return outcome;
        };
        let (result, why) = match arc.result() {
            DkimResult::Pass => (
                AuthResult::Pass,
                format!("a chain of {arc_sets} ARC sets verified"),
            ),
            DkimResult::None => (AuthResult::None, "no ARC set".to_string()),
            DkimResult::TempError(e) => {
                (AuthResult::TempError, format!("ARC key lookup failed: {e}"))
            }
            // RFC 8617 §4.4 has only none, pass and fail: a broken or unverifiable chain fails.
            DkimResult::Fail(e) | DkimResult::Neutral(e) | DkimResult::PermError(e) => (
                AuthResult::Fail,
                format!("the ARC chain does not verify: {e}"),
            ),
        };
        outcome.arc = result;
        outcome.arc_why = why;
    }
    outcome
}

/// The key record among a name's TXT records (RFC 6376 §3.6.2.2: the first that parses).
fn key_record(records: &[String]) -> Txt {
    let mut last = mail_auth::Error::Dns(mail_auth::DnsError::InvalidRecordType);
    for record in records {
        match DomainKey::parse(record.as_bytes()) {
            Ok(key) => return Txt::from(key),
            Err(e) => last = e,
        }
    }
    Txt::Error(last)
}

fn signature_outcome(output: &DkimOutput<'_>, domain: &str) -> DkimSignatureOutcome {
    use mail_auth::dkim::DkimError;
    let (result, comment) = match output.result() {
        DkimResult::Pass => (AuthResult::Pass, "signature was verified".to_string()),
        // RFC 6376 §6.1.3: a body hash mismatch is a failed verification (mail-auth says
        // "neutral"); Exchange writes "body hash did not verify".
        DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) => {
            (AuthResult::Fail, "body hash did not verify".to_string())
        }
        DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::SignatureExpired)) => {
            (AuthResult::Fail, "signature has expired".to_string())
        }
        DkimResult::Fail(mail_auth::Error::Crypto(
            mail_auth::common::crypto::CryptoError::FailedVerification,
        )) => (AuthResult::Fail, "signature did not verify".to_string()),
        DkimResult::Fail(e) => (AuthResult::Fail, format!("signature did not verify: {e}")),
        DkimResult::Neutral(e) => (
            AuthResult::PermError,
            format!("signature could not be checked: {e}"),
        ),
        DkimResult::PermError(e) => (AuthResult::PermError, format!("no usable key: {e}")),
        DkimResult::TempError(e) => (AuthResult::TempError, format!("key lookup failed: {e}")),
        DkimResult::None => (AuthResult::None, "no signature".to_string()),
    };
    DkimSignatureOutcome {
        result,
        domain: domain.to_ascii_lowercase(),
        comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_split_on_unfolded_lines() {
        let raw = b"A: 1\r\n 2\r\nB: 3\r\n\r\nbody";
        let (fields, body) = header_fields(raw);
        assert_eq!(fields, vec![&b"A: 1\r\n 2\r\n"[..], &b"B: 3\r\n"[..]]);
        assert_eq!(&raw[body..], b"body");
    }

    #[test]
    fn signatures_past_the_cap_are_left_out() {
        let mut raw = Vec::new();
        for i in 0..8 {
            raw.extend_from_slice(format!("DKIM-Signature: v=1; d=x{i}.test\r\n").as_bytes());
        }
        raw.extend_from_slice(b"From: a@b.test\r\n\r\nbody\r\n");
        let (copy, skipped, _) = bounded_copy(&raw);
        let copy = copy.expect("a copy");
        let (fields, _) = header_fields(&copy);
        assert_eq!(skipped, 3);
        assert_eq!(
            fields
                .iter()
                .filter(|f| field_is(f, "dkim-signature"))
                .count(),
            MAX_DKIM_SIGNATURES
        );
        assert!(copy.ends_with(b"\r\n\r\nbody\r\n"));
    }
}

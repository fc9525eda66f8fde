//! The spam filter's decision carried onto a recipient (architecture decision 2: delivery
//! carries the action out; this records it): the verdict and its reasons into the recipient's
//! slot (one `Spam` trace event for the verdict, one for sender authentication), the action as
//! the pipeline's [`Action`] (Junk Email, quarantine with the policy's retention, redirect,
//! delete, the DMARC refusal), and the header fields and subject the recipient's copy gets.

use hato_core::message::{Action, Recipient, RecipientVerdict};
use hato_core::{Address, Reason, Stage, reply};
use hato_protection::spam::auth::{AuthInput, SenderAuth};
use hato_protection::spam::classifier::Classifier;
use hato_protection::spam::decide::{SpamDecision, SpamOutcome};
use hato_protection::spam::{AuthResult, AuthSignals, ContentSignals};
use std::sync::Arc;

/// The spam filter's parts shared by every session: the classifier (the shipped model, or
/// `[spam] model`) and sender authentication (over the process's resolver).
pub struct SpamFilter {
    pub classifier: Arc<Classifier>,
    pub auth: Arc<SenderAuth>,
}

impl SpamFilter {
    pub fn new(classifier: Arc<Classifier>, auth: Arc<SenderAuth>) -> Self {
        SpamFilter { classifier, auth }
    }

    /// Sender authentication of one message, once whatever its recipients (asynchronous: its
    /// DNS lookups wait on the resolver, never on a worker). `raw` is the message as received.
    pub async fn authenticate(
        &self,
        raw: &[u8],
        request: &AuthRequest,
        hostname: &str,
    ) -> AuthSignals {
        let input = AuthInput {
            message: raw,
            client_ip: request.client_ip,
            helo: &request.helo,
            mail_from: request.mail_from.as_deref(),
            receiving_host: hostname,
        };
        self.auth.check(&input).await
    }
}

/// What sender authentication needs of the envelope and the client (owned: the check awaits
/// DNS answers while the session's message waits).
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub client_ip: std::net::IpAddr,
    pub helo: String,
    /// `MAIL FROM`; `None` for the null reverse-path.
    pub mail_from: Option<String>,
}

/// The RFC 5322 From field's address, lower case (`"Name" <a@b>` → `a@b`), from its raw
/// value; at most the first 998 bytes are looked at.
pub(crate) fn from_address(value: &[u8]) -> Option<String> {
    let value = String::from_utf8_lossy(&value[..value.len().min(998)]);
    let inner = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.trim(),
    };
    let address = inner.trim().to_ascii_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
}

/// The most reasons of the classifier and heuristics kept as figures of the verdict's reason
/// (the strongest first: the classifier gives them in that order).
const SIGNALS_KEPT: usize = 12;

/// GTUBE, the Generic Test for Unsolicited Bulk Email (SpamAssassin's, which Rspamd and other
/// filters honour too): a message carrying it is high confidence spam, so an administrator can
/// test the spam policy's actions end to end, as the EICAR file tests the malware filter.
pub const GTUBE: &[u8] = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// Whether `raw` carries GTUBE (one pass, linear in the message).
pub(crate) fn is_gtube(raw: &[u8]) -> bool {
    memchr::memmem::find(raw, GTUBE).is_some()
}

/// The content signals of a GTUBE message: SCL 9, and why.
pub(crate) fn gtube_signals(mut content: ContentSignals) -> ContentSignals {
    content.spam_probability = 1.0;
    content.scl = 9;
    content.reasons.insert(
        0,
        Reason::new(
            Stage::Spam,
            "The message carries GTUBE, the standard anti-spam test string",
        ),
    );
    content
}

/// What the recipient's copy of the message gets besides the verdict in its slot.
#[derive(Debug, Default)]
pub(crate) struct SpamApplied {
    /// Header fields put on top for this recipient (after its antispam report), each ending
    /// with CRLF.
    pub header: String,
    /// Put before the subject (`ModifySubject`): the recipient gets a changed copy.
    pub subject_prefix: Option<String>,
    /// Sent here instead (`Redirect`): routed as RCPT would have.
    pub redirect: Vec<Address>,
}

fn result_name(r: AuthResult) -> &'static str {
    match r {
        AuthResult::None => "none",
        AuthResult::Pass => "pass",
        AuthResult::Fail => "fail",
        AuthResult::SoftFail => "softfail",
        AuthResult::Neutral => "neutral",
        AuthResult::TempError => "temperror",
        AuthResult::PermError => "permerror",
    }
}

/// Sender authentication's results as figures of the verdict's reason (one trace event per
/// recipient for the whole stage: the checks are the same for every recipient).
fn with_auth(mut reason: Reason, auth: &AuthSignals) -> Reason {
    reason = reason
        .figure("spf", result_name(auth.spf))
        .figure("dkim", result_name(auth.dkim))
        .figure("dmarc", result_name(auth.dmarc))
        .figure("arc", result_name(auth.arc));
    if let Some(d) = &auth.from_domain {
        reason = reason.figure("from_domain", d.clone());
    }
    if let Some(c) = &auth.country {
        reason = reason.figure("country", c.clone());
    }
    for r in auth.reasons.iter().take(SIGNALS_KEPT) {
        reason = reason.figure("check", r.text.clone());
    }
    reason
}

/// A field value on one line, without anything that could end the field or start another.
fn one_line(value: &str, max: usize) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Records `decision` (under the policy called `policy`) on `r` and says what its copy gets.
pub(crate) fn apply(
    decision: &SpamDecision,
    policy: &str,
    content: &ContentSignals,
    auth: Option<&AuthSignals>,
    r: &mut Recipient,
) -> SpamApplied {
    let mut applied = SpamApplied::default();
    let action = match &decision.outcome {
        SpamOutcome::Deliver => Action::Deliver,
        SpamOutcome::Junk => {
            r.content.junk = true;
            Action::Deliver
        }
        SpamOutcome::Quarantine { days } => {
            r.content.quarantine_days = Some(*days);
            Action::Quarantine {
                kind: decision.quarantine_kind(),
                policy: policy.to_owned(),
            }
        }
        SpamOutcome::Redirect { to } => {
            let to: Vec<Address> = to.iter().filter_map(|a| Address::parse(a).ok()).collect();
            applied.redirect = to.clone();
            Action::Redirect(to)
        }
        SpamOutcome::Delete => Action::Delete,
        SpamOutcome::RejectDmarc { domain } => Action::Reject(reply::dmarc_reject(domain)),
    };
    let text = match &decision.outcome {
        SpamOutcome::Delete => format!(
            "{} (SCL {}): the policy deletes it; {}",
            decision.verdict.name(),
            decision.scl,
            reply::MESSAGE_DELETED_BY_AGENT
        ),
        SpamOutcome::Junk => format!(
            "{} (SCL {}): delivered to the Junk Email folder",
            decision.verdict.name(),
            decision.scl
        ),
        _ => format!("{} (SCL {})", decision.verdict.name(), decision.scl),
    };
    // The recipient's own safe or blocked senders list said something: the trace's sentence
    // says it first (`spam::junk`).
    let text = match decision
        .reasons
        .iter()
        .find(|w| w.rule.as_deref() == Some(hato_protection::spam::junk::RULE))
    {
        Some(why) => format!("{}. {text}", why.text),
        None => text,
    };
    let mut reason = Reason::new(Stage::Spam, text)
        .rule(policy)
        .figure("scl", i64::from(decision.scl))
        .figure("bcl", u64::from(decision.bcl))
        .figure("sfv", decision.sfv.as_str())
        .figure("verdict", decision.verdict.name())
        .figure("probability", format!("{:.4}", content.spam_probability));
    if let Some(cat) = decision.verdict.category() {
        reason = reason.figure("cat", cat);
    }
    if let Some(setting) = decision.action_setting {
        reason = reason.figure(setting, decision.action.name());
    }
    if let Some(lang) = &content.language {
        reason = reason.figure("language", lang.clone());
    }
    for why in decision
        .reasons
        .iter()
        .filter(|w| w.stage == Stage::Spam)
        .take(SIGNALS_KEPT)
    {
        reason = reason.figure("signal", why.text.clone());
    }
    if let Some(auth) = auth {
        reason = with_auth(reason, auth);
    }
    r.verdicts.push(RecipientVerdict { action, reason });

    for (name, value) in decision
        .headers
        .iter()
        .cloned()
        .chain(decision.spam_status_fields())
    {
        applied.header.push_str(&one_line(&name, 255));
        applied.header.push_str(": ");
        applied.header.push_str(&one_line(&value, 998));
        applied.header.push_str("\r\n");
    }
    if let Some(auth) = auth
        && !auth.authentication_results.is_empty()
    {
        applied.header.push_str("Authentication-Results: ");
        applied
            .header
            .push_str(&one_line(&auth.authentication_results, 4000));
        applied.header.push_str("\r\n");
    }
    applied.subject_prefix = decision.subject_prefix.clone();
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::directory::Route;
    use hato_core::message::RecipientContent;
    use hato_protection::spam::SpamSignals;
    use hato_protection::spam::decide::decide;
    use hato_protection::spam::policy::{SpamAction, SpamFilterPolicy};

    fn recipient() -> Recipient {
        Recipient {
            address: Address::parse("alice@contoso.test").unwrap(),
            tenant_id: 1,
            route: Route::Local(1),
            verdicts: Vec::new(),
            content: RecipientContent::default(),
            dsn: Default::default(),
        }
    }

    fn spam(scl: i8) -> SpamSignals {
        SpamSignals {
            content: ContentSignals {
                scl,
                spam_probability: 0.97,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn junk_quarantine_and_delete_become_the_pipelines_actions() {
        let mut r = recipient();
        let d = decide(&spam(6), &SpamFilterPolicy::default());
        let applied = apply(&d, "Default", &d_content(6), None, &mut r);
        assert!(r.content.junk);
        assert_eq!(r.verdicts.last().unwrap().action, Action::Deliver);
        assert!(applied.header.contains("X-Spam-Flag: YES\r\n"));

        let mut r = recipient();
        let p = SpamFilterPolicy {
            spam_action: SpamAction::Quarantine,
            quarantine_retention_period: 4,
            ..Default::default()
        };
        let d = decide(&spam(5), &p);
        apply(&d, "Strict", &d_content(5), None, &mut r);
        assert_eq!(r.content.quarantine_days, Some(4));
        assert!(matches!(
            r.verdicts.last().unwrap().action,
            Action::Quarantine { ref policy, .. } if policy == "Strict"
        ));

        let mut r = recipient();
        let p = SpamFilterPolicy {
            high_confidence_spam_action: SpamAction::Delete,
            ..Default::default()
        };
        let d = decide(&spam(9), &p);
        apply(&d, "Default", &d_content(9), None, &mut r);
        let v = r.verdicts.last().unwrap();
        assert_eq!(v.action, Action::Delete);
        assert!(v.reason.text.contains("550 4.3.2 QUEUE.TransportAgent"));
    }

    fn d_content(scl: i8) -> ContentSignals {
        spam(scl).content
    }

    #[test]
    fn the_from_address_is_read_from_the_fields_value() {
        assert_eq!(
            from_address(b" \"Carol, CEO\" <Carol@Fabrikam.TEST>").as_deref(),
            Some("carol@fabrikam.test")
        );
        assert_eq!(from_address(b"a@b.test").as_deref(), Some("a@b.test"));
        assert_eq!(from_address(b"undisclosed"), None);
        assert!(from_address(&vec![b'a'; 100_000]).is_none());
    }

    #[test]
    fn gtube_is_high_confidence_spam() {
        let mut m = b"Subject: test\r\n\r\n".to_vec();
        assert!(!is_gtube(&m));
        m.extend_from_slice(GTUBE);
        assert!(is_gtube(&m));
        let c = gtube_signals(ContentSignals::default());
        let d = decide(
            &SpamSignals {
                content: c.clone(),
                ..Default::default()
            },
            &SpamFilterPolicy::default(),
        );
        assert_eq!((d.scl, d.verdict.category()), (9, Some("HSPM")));
        assert!(c.reasons[0].text.contains("GTUBE"));
    }

    #[test]
    fn header_values_cannot_add_fields() {
        let mut r = recipient();
        let auth = AuthSignals {
            authentication_results: "mx.hato.test; spf=pass\r\nX-Evil: 1".into(),
            ..Default::default()
        };
        let p = SpamFilterPolicy {
            spam_action: SpamAction::AddXHeader,
            add_x_header_value: "X-Junk".into(),
            ..Default::default()
        };
        let d = decide(&spam(6), &p);
        let applied = apply(&d, "Default", &d_content(6), Some(&auth), &mut r);
        assert!(!applied.header.contains("\r\nX-Evil"));
        assert!(
            applied
                .header
                .contains("X-Junk: This message appears to be spam.\r\n")
        );
        assert!(
            applied
                .header
                .contains("Authentication-Results: mx.hato.test; spf=passX-Evil: 1\r\n")
        );
        // One verdict, sender authentication's results among its figures.
        assert_eq!(r.verdicts.len(), 1);
        assert!(
            r.verdicts[0]
                .reason
                .figures
                .iter()
                .any(|f| f.name == "dmarc")
        );
    }
}

//! The spam filter's decision for one recipient: the signals of the message (content, sender
//! authentication, the client's standing, a transport rule's SCL) under the recipient's
//! anti-spam policy give the verdict, the SCL, the antispam report's `SFV`/`CAT`/`SRV`, the
//! action and its reasons.
//!
//! The order is Exchange's (`exchange-online-behaviour.md` §2.3, §2.4, §6):
//!
//! 1. **Skips** (SCL −1): a transport rule's `SetSCL -1` (`SFV:SKN`), the connection filter's
//!    IP allow list (`IPV:CAL`, `SFV:SKN`), the policy's allowed senders and domains
//!    (`SFV:SKA`) — unless the sender is also blocked (block wins, as in the Tenant
//!    Allow/Block List). Even then high confidence phish is quarantined (§2.4: nothing lets
//!    it through).
//! 2. **Marked before filtering**: blocked senders and domains (`SFV:SKB`, spam), a rule's
//!    `SetSCL 5–9` (`SFV:SKS`, spam or high confidence spam by the SCL).
//! 3. **The filter** (`SFV:SPM` when it finds spam, else `SFV:NSPM`): the classifier's SCL, the
//!    ASF options switched `on`, the language and region block lists, DMARC failures, spoofing
//!    of the tenant's own domains, bulk at or above the policy's threshold.
//!
//! 4. **The recipient's own lists** (`super::junk`, applied by the caller after this decision):
//!    Safe Senders (`SFV:SFE`) and Blocked Senders (`SFV:BLK`).
//!
//! When several verdicts apply the most severe wins: high confidence phish, phish, high
//! confidence spam, spoof, spam, bulk (§2.3). A DMARC failure under `p=reject` is refused
//! (`550 5.7.509`, Exchange's `DmarcRejectAction` default) unless a skip applies.

use super::policy::{AsfMode, BulkMode, SpamAction, SpamFilterPolicy, TestModeAction};
use super::{Asf, AuthResult, DmarcPolicy, PhishLevel, SpamSignals};
use hato_core::{Reason, Stage};
use serde::{Deserialize, Serialize};

/// The verdict (§6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamVerdict {
    /// Filtering skipped (SCL −1) or nothing found.
    NotSpam,
    Bulk,
    Spam,
    /// The From domain is one of the tenant's own and did not authenticate (phish, `CAT:SPOOF`).
    Spoof,
    HighConfidenceSpam,
    Phish,
    HighConfidencePhish,
}

impl SpamVerdict {
    /// The antispam report's `CAT` (§6.5); `None` when not spam.
    pub fn category(self) -> Option<&'static str> {
        match self {
            SpamVerdict::NotSpam => None,
            SpamVerdict::Bulk => Some("BULK"),
            SpamVerdict::Spam => Some("SPM"),
            SpamVerdict::Spoof => Some("SPOOF"),
            SpamVerdict::HighConfidenceSpam => Some("HSPM"),
            SpamVerdict::Phish => Some("PHSH"),
            SpamVerdict::HighConfidencePhish => Some("HPHSH"),
        }
    }

    /// A name for people and the trace.
    pub fn name(self) -> &'static str {
        match self {
            SpamVerdict::NotSpam => "not spam",
            SpamVerdict::Bulk => "bulk",
            SpamVerdict::Spam => "spam",
            SpamVerdict::Spoof => "spoof",
            SpamVerdict::HighConfidenceSpam => "high confidence spam",
            SpamVerdict::Phish => "phish",
            SpamVerdict::HighConfidencePhish => "high confidence phish",
        }
    }

    /// Precedence (§2.3): the higher wins.
    fn rank(self) -> u8 {
        match self {
            SpamVerdict::NotSpam => 0,
            SpamVerdict::Bulk => 1,
            SpamVerdict::Spam => 2,
            SpamVerdict::Spoof => 3,
            SpamVerdict::HighConfidenceSpam => 4,
            SpamVerdict::Phish => 5,
            SpamVerdict::HighConfidencePhish => 6,
        }
    }
}

/// The antispam report's `SFV` (§6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sfv {
    /// Spam, by the filter.
    Spm,
    /// Marked spam before filtering (a rule's SCL 5–9).
    Sks,
    /// Marked not spam before filtering (a rule's SCL −1, the IP allow list).
    Skn,
    /// The policy's allowed senders or domains.
    Ska,
    /// The policy's blocked senders or domains.
    Skb,
    /// Released from quarantine.
    Skq,
    /// The recipient's Safe Senders: filtering skipped, allowed (`spam::junk`).
    Sfe,
    /// The recipient's Blocked Senders: to the Junk Email folder (`spam::junk`).
    Blk,
    /// Not spam.
    Nspm,
}

impl Sfv {
    pub fn as_str(self) -> &'static str {
        match self {
            Sfv::Spm => "SPM",
            Sfv::Sks => "SKS",
            Sfv::Skn => "SKN",
            Sfv::Ska => "SKA",
            Sfv::Skb => "SKB",
            Sfv::Skq => "SKQ",
            Sfv::Sfe => "SFE",
            Sfv::Blk => "BLK",
            Sfv::Nspm => "NSPM",
        }
    }
}

/// What happens to the message for this recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum SpamOutcome {
    /// To the Inbox (or as routed).
    Deliver,
    /// To the Junk Email folder.
    Junk,
    /// Held in quarantine for this many days.
    Quarantine { days: u16 },
    /// Sent to these addresses instead.
    Redirect { to: Vec<String> },
    /// Nothing delivered, nobody told.
    Delete,
    /// Refused: the domain's DMARC policy is reject and the policy honours it (`550 5.7.509`).
    RejectDmarc { domain: String },
}

/// The decision for one recipient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpamDecision {
    pub verdict: SpamVerdict,
    /// −1, 0, 1, 5–9 (never 2–4).
    pub scl: i8,
    pub bcl: u8,
    pub sfv: Sfv,
    /// `SRV:BULK`: the BCL is at or above the policy's threshold.
    pub bulk: bool,
    /// The policy setting whose action applies (`spam-action`, …), when one does.
    pub action_setting: Option<&'static str>,
    pub action: SpamAction,
    pub outcome: SpamOutcome,
    /// Header fields to add (name, value): `X-CustomSpam` of the ASF options, the policy's
    /// `AddXHeader` header.
    pub headers: Vec<(String, String)>,
    /// Put before the subject (`ModifySubject`).
    pub subject_prefix: Option<String>,
    pub reasons: Vec<Reason>,
}

impl SpamDecision {
    /// The quarantine kind for a quarantined verdict.
    pub fn quarantine_kind(&self) -> hato_core::message::QuarantineKind {
        use hato_core::message::QuarantineKind as K;
        match self.verdict {
            SpamVerdict::HighConfidencePhish => K::HighConfidencePhish,
            SpamVerdict::Phish | SpamVerdict::Spoof => K::Phish,
            SpamVerdict::HighConfidenceSpam => K::HighConfidenceSpam,
            SpamVerdict::Bulk => K::Bulk,
            SpamVerdict::Spam | SpamVerdict::NotSpam => K::Spam,
        }
    }

    /// `X-Spam-Flag` / `X-Spam-Status` for clients that read SpamAssassin's fields.
    pub fn spam_status_fields(&self) -> [(String, String); 2] {
        let spam = self.scl >= 5;
        let tests = match self.verdict.category() {
            Some(cat) => format!("HATO_{cat},SFV_{}", self.sfv.as_str()),
            None => format!("SFV_{}", self.sfv.as_str()),
        };
        [
            ("X-Spam-Flag".into(), if spam { "YES" } else { "NO" }.into()),
            (
                "X-Spam-Status".into(),
                format!(
                    "{}, score={} required=5 bcl={} tests={tests}",
                    if spam { "Yes" } else { "No" },
                    self.scl,
                    self.bcl
                ),
            ),
        ]
    }
}

/// `X-CustomSpam`'s value for an ASF option acted on (Exchange's texts).
pub fn custom_spam_text(option: Asf) -> &'static str {
    match option {
        Asf::IncreaseScoreWithImageLinks => "Image links to remote sites",
        Asf::IncreaseScoreWithNumericIps => "Numeric IP in URL",
        Asf::IncreaseScoreWithRedirectToOtherPort => "URL redirect to other port",
        Asf::IncreaseScoreWithBizOrInfoUrls => "URL to .biz or .info websites",
        Asf::MarkAsSpamEmptyMessages => "Empty Message",
        Asf::MarkAsSpamJavaScriptInHtml => "Javascript or VBscript tags in HTML",
        Asf::MarkAsSpamFramesInHtml => "Frame or IFrame in HTML",
        Asf::MarkAsSpamObjectTagsInHtml => "Object tag in html",
        Asf::MarkAsSpamEmbedTagsInHtml => "Embed tag in html",
        Asf::MarkAsSpamFormTagsInHtml => "Form tag in html",
        Asf::MarkAsSpamWebBugsInHtml => "Web bug",
        Asf::MarkAsSpamSensitiveWordList => "Sensitive word in subject/body",
        Asf::MarkAsSpamSpfRecordHardFail => "SPF Record Fail",
        Asf::MarkAsSpamFromAddressAuthFail => "SPF From Record Fail",
        Asf::MarkAsSpamNdrBackscatter => "Backscatter NDR",
    }
}

/// `X-CustomSpam`'s value for an ASF option in test mode with `TestModeAction AddXHeader`.
pub const TEST_MODE_TEXT: &str = "This message was filtered by the custom spam filter option";

fn reason(text: impl Into<String>) -> Reason {
    Reason::new(Stage::Spam, text)
}

fn matches_list(address: Option<&str>, senders: &[String], domains: &[String]) -> Option<String> {
    let address = address?;
    if let Some(s) = senders.iter().find(|s| s.eq_ignore_ascii_case(address)) {
        return Some(s.clone());
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d)?;
    domains
        .iter()
        .find(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain))
        .cloned()
}

/// The sender the lists match: the From address and the envelope sender, each tried.
fn list_match(signals: &SpamSignals, senders: &[String], domains: &[String]) -> Option<String> {
    matches_list(signals.from_address.as_deref(), senders, domains)
        .or_else(|| matches_list(signals.envelope_sender.as_deref(), senders, domains))
}

/// The verdict's SCL (the highest of what the filter found, within the verdict's range).
fn scl_for(verdict: SpamVerdict, found: i8) -> i8 {
    match verdict {
        SpamVerdict::NotSpam => found.clamp(0, 1),
        SpamVerdict::Bulk | SpamVerdict::Spam | SpamVerdict::Spoof | SpamVerdict::Phish => {
            found.clamp(5, 6)
        }
        SpamVerdict::HighConfidenceSpam | SpamVerdict::HighConfidencePhish => found.clamp(7, 9),
    }
}

/// Decides for one recipient under `policy`.
pub fn decide(signals: &SpamSignals, policy: &SpamFilterPolicy) -> SpamDecision {
    let content = &signals.content;
    let auth = &signals.auth;
    let mut reasons: Vec<Reason> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let bcl = content.bcl.min(9);
    let bulk_hit = bcl >= policy.bulk_threshold;

    let blocked = list_match(
        signals,
        &policy.blocked_senders,
        &policy.blocked_sender_domains,
    );
    let allowed = list_match(
        signals,
        &policy.allowed_senders,
        &policy.allowed_sender_domains,
    );
    // Skips, in the order Exchange stamps them.
    let skip = if signals.rule_scl == Some(-1) {
        reasons.push(
            reason("A transport rule set the SCL to -1: spam filtering skipped")
                .figure("scl", "-1"),
        );
        Some(Sfv::Skn)
    } else if signals.ip_allow_listed {
        reasons.push(reason(
            "The client's IP is on the tenant's IP allow list (IPV:CAL): spam filtering skipped",
        ));
        Some(Sfv::Skn)
    } else if let (Some(entry), None) = (&allowed, &blocked) {
        reasons.push(
            reason("The sender is on the policy's allowed senders: spam filtering skipped")
                .figure("entry", entry.clone()),
        );
        Some(Sfv::Ska)
    } else {
        None
    };
    if let Some(sfv) = skip {
        // Nothing lets high confidence phish through (§2.4).
        if content.phish == PhishLevel::HighConfidence {
            reasons.extend(content.reasons.iter().cloned());
            reasons.push(reason(
                "High confidence phish is acted on even when filtering is skipped",
            ));
            return finish(
                policy,
                SpamVerdict::HighConfidencePhish,
                9,
                bcl,
                sfv,
                bulk_hit,
                headers,
                reasons,
            );
        }
        return SpamDecision {
            verdict: SpamVerdict::NotSpam,
            scl: -1,
            bcl,
            sfv,
            bulk: false,
            action_setting: None,
            action: SpamAction::NoAction,
            outcome: SpamOutcome::Deliver,
            headers,
            subject_prefix: None,
            reasons,
        };
    }

    // DMARC p=reject, honoured (Exchange's `DmarcRejectAction` default `Reject`, §6.6).
    if auth.dmarc == AuthResult::Fail
        && auth.dmarc_policy == DmarcPolicy::Reject
        && blocked.is_none()
    {
        let domain = auth.from_domain.clone().unwrap_or_default();
        reasons.extend(auth.reasons.iter().cloned());
        reasons.push(
            reason(format!(
                "{domain} does not pass DMARC and publishes p=reject: the message is refused"
            ))
            .figure("dmarc", "fail")
            .figure("policy", "reject"),
        );
        return SpamDecision {
            verdict: SpamVerdict::Spoof,
            scl: 6,
            bcl,
            sfv: Sfv::Spm,
            bulk: bulk_hit,
            action_setting: None,
            action: SpamAction::Delete,
            outcome: SpamOutcome::RejectDmarc { domain },
            headers,
            subject_prefix: None,
            reasons,
        };
    }

    let mut verdict = SpamVerdict::NotSpam;
    let mut scl: i8 = content.scl.clamp(0, 9);
    let mut raise = |v: SpamVerdict, s: i8, why: Reason, reasons: &mut Vec<Reason>| {
        if v.rank() > verdict.rank() {
            verdict = v;
        }
        scl = scl.max(s);
        reasons.push(why);
    };

    let sfv = if let Some(entry) = &blocked {
        raise(
            SpamVerdict::Spam,
            6,
            reason("The sender is on the policy's blocked senders").figure("entry", entry.clone()),
            &mut reasons,
        );
        Sfv::Skb
    } else if let Some(s) = signals.rule_scl.filter(|s| *s >= 5) {
        let v = if s >= 7 {
            SpamVerdict::HighConfidenceSpam
        } else {
            SpamVerdict::Spam
        };
        raise(
            v,
            s,
            reason(format!("A transport rule set the SCL to {s}")).figure("scl", s.to_string()),
            &mut reasons,
        );
        Sfv::Sks
    } else {
        Sfv::Spm
    };

    // The classifier.
    reasons.extend(content.reasons.iter().cloned());
    if content.scl >= 7 {
        raise(
            SpamVerdict::HighConfidenceSpam,
            content.scl,
            reason(format!(
                "The classifier found high confidence spam (p = {:.3})",
                content.spam_probability
            ))
            .figure("scl", content.scl.to_string()),
            &mut reasons,
        );
    } else if content.scl >= 5 {
        raise(
            SpamVerdict::Spam,
            content.scl,
            reason(format!(
                "The classifier found spam (p = {:.3})",
                content.spam_probability
            ))
            .figure("scl", content.scl.to_string()),
            &mut reasons,
        );
    }
    match content.phish {
        PhishLevel::HighConfidence => raise(
            SpamVerdict::HighConfidencePhish,
            9,
            reason("The content is high confidence phish"),
            &mut reasons,
        ),
        PhishLevel::Phish => raise(
            SpamVerdict::Phish,
            6,
            reason("The content is phish"),
            &mut reasons,
        ),
        PhishLevel::None => {}
    }

    // ASF options: `on` acts, `test` only adds a header (when asked).
    let mut seen = Vec::new();
    for hit in content.asf.iter().chain(auth.asf.iter()) {
        if seen.contains(&hit.option) {
            continue;
        }
        seen.push(hit.option);
        match policy.asf_mode(hit.option) {
            AsfMode::Off => {}
            AsfMode::Test => {
                if policy.test_mode_action == TestModeAction::AddXHeader
                    && !headers.iter().any(|(_, v)| v == TEST_MODE_TEXT)
                {
                    headers.push(("X-CustomSpam".into(), TEST_MODE_TEXT.into()));
                }
                reasons.push(
                    reason(format!(
                        "ASF option {} (test mode) matched: {}",
                        hit.option.name(),
                        hit.evidence
                    ))
                    .figure("asf", hit.option.name()),
                );
            }
            AsfMode::On => {
                headers.push(("X-CustomSpam".into(), custom_spam_text(hit.option).into()));
                let (v, s) = if hit.option.marks_as_spam() {
                    (SpamVerdict::HighConfidenceSpam, 9)
                } else {
                    (SpamVerdict::Spam, 5)
                };
                raise(
                    v,
                    s,
                    reason(format!(
                        "ASF option {} matched: {}",
                        hit.option.name(),
                        hit.evidence
                    ))
                    .figure("asf", hit.option.name()),
                    &mut reasons,
                );
            }
        }
    }

    // Language and region block lists.
    if policy.enable_language_block_list
        && let Some(lang) = &content.language
        && policy
            .language_block_list
            .iter()
            .any(|l| l.eq_ignore_ascii_case(lang))
    {
        raise(
            SpamVerdict::Spam,
            6,
            reason(format!("The message is in a blocked language ({lang})"))
                .figure("language", lang.clone()),
            &mut reasons,
        );
    }
    if policy.enable_region_block_list
        && let Some(country) = &auth.country
        && policy
            .region_block_list
            .iter()
            .any(|c| c.eq_ignore_ascii_case(country))
    {
        raise(
            SpamVerdict::Spam,
            6,
            reason(format!("The client is in a blocked region ({country})"))
                .figure("country", country.clone()),
            &mut reasons,
        );
    }

    // Sender authentication: spoofing the tenant's own domain, DMARC p=quarantine.
    if signals.spoofs_own_domain {
        raise(
            SpamVerdict::Spoof,
            6,
            reason(format!(
                "The From domain {} is this organisation's own and the message did not authenticate",
                auth.from_domain.as_deref().unwrap_or_default()
            )),
            &mut reasons,
        );
    }
    if auth.dmarc == AuthResult::Fail && auth.dmarc_policy == DmarcPolicy::Quarantine {
        raise(
            SpamVerdict::Spam,
            6,
            reason(format!(
                "{} does not pass DMARC and publishes p=quarantine: to Junk",
                auth.from_domain.as_deref().unwrap_or_default()
            ))
            .figure("dmarc", "fail")
            .figure("policy", "quarantine"),
            &mut reasons,
        );
    }

    // Bulk.
    if bulk_hit {
        let why = reason(format!(
            "Bulk complaint level {bcl} is at or above the policy's threshold {}",
            policy.bulk_threshold
        ))
        .figure("bcl", bcl.to_string())
        .figure("threshold", policy.bulk_threshold.to_string());
        match policy.mark_as_spam_bulk_mail {
            // Bulk marked as spam gets SCL 6 (§6.1).
            BulkMode::On => raise(SpamVerdict::Bulk, 6, why, &mut reasons),
            BulkMode::Off => reasons.push(why),
        }
    }

    let sfv = if verdict == SpamVerdict::NotSpam && sfv == Sfv::Spm {
        Sfv::Nspm
    } else {
        sfv
    };
    if verdict == SpamVerdict::NotSpam {
        scl = scl.clamp(0, 1);
        if sfv == Sfv::Nspm && scl == 0 {
            scl = 1;
        }
    }
    finish(policy, verdict, scl, bcl, sfv, bulk_hit, headers, reasons)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    policy: &SpamFilterPolicy,
    verdict: SpamVerdict,
    found: i8,
    bcl: u8,
    sfv: Sfv,
    bulk: bool,
    mut headers: Vec<(String, String)>,
    mut reasons: Vec<Reason>,
) -> SpamDecision {
    let scl = scl_for(verdict, found);
    let (setting, action) = match verdict {
        SpamVerdict::NotSpam => (None, SpamAction::NoAction),
        SpamVerdict::Bulk => (Some("bulk-spam-action"), policy.bulk_spam_action),
        SpamVerdict::Spam => (Some("spam-action"), policy.spam_action),
        SpamVerdict::HighConfidenceSpam => (
            Some("high-confidence-spam-action"),
            policy.high_confidence_spam_action,
        ),
        SpamVerdict::Phish | SpamVerdict::Spoof => {
            (Some("phish-spam-action"), policy.phish_spam_action)
        }
        SpamVerdict::HighConfidencePhish => (
            Some("high-confidence-phish-action"),
            // Only quarantine or redirect (validated; a stored policy from elsewhere still
            // never lets it through).
            match policy.high_confidence_phish_action {
                SpamAction::Redirect if !policy.redirect_to_recipients.is_empty() => {
                    SpamAction::Redirect
                }
                _ => SpamAction::Quarantine,
            },
        ),
    };
    let mut subject_prefix = None;
    let outcome = match action {
        SpamAction::NoAction => SpamOutcome::Deliver,
        SpamAction::MoveToJmf => SpamOutcome::Junk,
        SpamAction::AddXHeader => {
            headers.push((
                policy.x_header_name().to_owned(),
                super::policy::X_HEADER_TEXT.into(),
            ));
            SpamOutcome::Junk
        }
        SpamAction::ModifySubject => {
            if !policy.modify_subject_value.is_empty() {
                subject_prefix = Some(policy.modify_subject_value.clone());
            }
            SpamOutcome::Junk
        }
        SpamAction::Redirect if !policy.redirect_to_recipients.is_empty() => {
            SpamOutcome::Redirect {
                to: policy.redirect_to_recipients.clone(),
            }
        }
        // A redirect with nowhere to go (refused by validation) quarantines rather than
        // delivers.
        SpamAction::Redirect | SpamAction::Quarantine => SpamOutcome::Quarantine {
            days: policy.quarantine_retention_period.clamp(1, 30),
        },
        SpamAction::Delete => SpamOutcome::Delete,
    };
    if let Some(setting) = setting {
        reasons.push(
            reason(format!(
                "Verdict {} (SCL {scl}): {setting} is {}",
                verdict.name(),
                action.name()
            ))
            .figure("scl", scl.to_string())
            .figure("action", action.name()),
        );
    }
    SpamDecision {
        verdict,
        scl,
        bcl,
        sfv,
        bulk,
        action_setting: setting,
        action,
        outcome,
        headers,
        subject_prefix,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::{AsfHit, AuthSignals, ContentSignals};

    fn signals(scl: i8) -> SpamSignals {
        SpamSignals {
            content: ContentSignals {
                spam_probability: if scl >= 5 { 0.99 } else { 0.01 },
                scl,
                ..Default::default()
            },
            from_address: Some("sender@fabrikam.test".into()),
            envelope_sender: Some("bounce@mailer.fabrikam.test".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_scale_never_uses_two_to_four_and_defaults_send_spam_to_junk() {
        let p = SpamFilterPolicy::default();
        let ham = decide(&signals(1), &p);
        assert_eq!(
            (ham.verdict, ham.scl, ham.sfv, ham.outcome.clone()),
            (SpamVerdict::NotSpam, 1, Sfv::Nspm, SpamOutcome::Deliver)
        );
        for (content, verdict, scl) in [
            (5, SpamVerdict::Spam, 5),
            (6, SpamVerdict::Spam, 6),
            (7, SpamVerdict::HighConfidenceSpam, 7),
            (9, SpamVerdict::HighConfidenceSpam, 9),
        ] {
            let d = decide(&signals(content), &p);
            assert_eq!((d.verdict, d.scl, d.sfv), (verdict, scl, Sfv::Spm));
            assert_eq!(d.outcome, SpamOutcome::Junk);
            assert!(!(2..=4).contains(&d.scl));
        }
        // Whatever a classifier says below 5, the stamp is 0 or 1.
        for s in [0, 2, 3, 4] {
            let d = decide(&signals(s), &p);
            assert!(matches!(d.scl, 0 | 1), "{s} → {}", d.scl);
        }
    }

    #[test]
    fn each_verdict_takes_its_own_action() {
        let p = SpamFilterPolicy {
            spam_action: SpamAction::Quarantine,
            high_confidence_spam_action: SpamAction::Delete,
            phish_spam_action: SpamAction::Redirect,
            bulk_spam_action: SpamAction::AddXHeader,
            add_x_header_value: "X-Bulk".into(),
            redirect_to_recipients: vec!["soc@contoso.test".into()],
            quarantine_retention_period: 20,
            ..Default::default()
        };
        assert_eq!(
            decide(&signals(5), &p).outcome,
            SpamOutcome::Quarantine { days: 20 }
        );
        assert_eq!(decide(&signals(8), &p).outcome, SpamOutcome::Delete);
        let mut phish = signals(1);
        phish.content.phish = PhishLevel::Phish;
        let d = decide(&phish, &p);
        assert_eq!(d.verdict.category(), Some("PHSH"));
        assert_eq!(
            d.outcome,
            SpamOutcome::Redirect {
                to: vec!["soc@contoso.test".into()]
            }
        );
        let mut bulk = signals(1);
        bulk.content.bcl = 7;
        let d = decide(&bulk, &p);
        assert_eq!((d.verdict, d.scl, d.bulk), (SpamVerdict::Bulk, 6, true));
        assert_eq!(d.outcome, SpamOutcome::Junk);
        assert!(
            d.headers
                .contains(&("X-Bulk".into(), super::super::policy::X_HEADER_TEXT.into()))
        );
        // Below the threshold, or MarkAsSpamBulkMail off: the BCL only.
        bulk.content.bcl = 6;
        assert_eq!(decide(&bulk, &p).verdict, SpamVerdict::NotSpam);
        bulk.content.bcl = 9;
        let off = SpamFilterPolicy {
            mark_as_spam_bulk_mail: BulkMode::Off,
            ..p.clone()
        };
        let d = decide(&bulk, &off);
        assert_eq!((d.verdict, d.bcl, d.bulk), (SpamVerdict::NotSpam, 9, true));
    }

    #[test]
    fn high_confidence_phish_is_quarantined_whatever_allows_it() {
        let p = SpamFilterPolicy {
            allowed_sender_domains: vec!["fabrikam.test".into()],
            ..Default::default()
        };
        let mut s = signals(1);
        s.content.phish = PhishLevel::HighConfidence;
        s.ip_allow_listed = true;
        let d = decide(&s, &p);
        assert_eq!(d.verdict, SpamVerdict::HighConfidencePhish);
        assert_eq!(d.outcome, SpamOutcome::Quarantine { days: 15 });
        assert_eq!(
            d.quarantine_kind(),
            hato_core::message::QuarantineKind::HighConfidencePhish
        );
    }

    #[test]
    fn allow_and_block_lists_stamp_ska_and_skb_and_block_wins() {
        let mut p = SpamFilterPolicy {
            allowed_senders: vec!["Sender@Fabrikam.test".into()],
            ..Default::default()
        };
        let d = decide(&signals(9), &p);
        assert_eq!(
            (d.scl, d.sfv, d.outcome),
            (-1, Sfv::Ska, SpamOutcome::Deliver)
        );
        p.blocked_sender_domains = vec!["mailer.fabrikam.test".into()];
        let d = decide(&signals(1), &p);
        assert_eq!((d.verdict, d.scl, d.sfv), (SpamVerdict::Spam, 6, Sfv::Skb));
        assert_eq!(d.outcome, SpamOutcome::Junk);
        // Another domain's mail is untouched.
        let mut other = signals(1);
        other.from_address = Some("a@northwind.test".into());
        other.envelope_sender = None;
        assert_eq!(decide(&other, &p).sfv, Sfv::Nspm);
    }

    #[test]
    fn rule_scl_and_ip_allow_list_skip_or_mark() {
        let p = SpamFilterPolicy::default();
        let mut s = signals(9);
        s.rule_scl = Some(-1);
        let d = decide(&s, &p);
        assert_eq!(
            (d.scl, d.sfv, d.verdict),
            (-1, Sfv::Skn, SpamVerdict::NotSpam)
        );
        let mut s = signals(9);
        s.ip_allow_listed = true;
        assert_eq!(decide(&s, &p).sfv, Sfv::Skn);
        let mut s = signals(1);
        s.rule_scl = Some(5);
        let d = decide(&s, &p);
        assert_eq!((d.scl, d.sfv, d.verdict), (5, Sfv::Sks, SpamVerdict::Spam));
        s.rule_scl = Some(8);
        let d = decide(&s, &p);
        assert_eq!((d.scl, d.verdict), (8, SpamVerdict::HighConfidenceSpam));
    }

    #[test]
    fn asf_options_act_when_on_and_only_stamp_in_test_mode() {
        let mut s = signals(1);
        s.content.asf = vec![AsfHit {
            option: Asf::IncreaseScoreWithNumericIps,
            evidence: "http://198.51.100.7/".into(),
        }];
        s.auth.asf = vec![AsfHit {
            option: Asf::MarkAsSpamSpfRecordHardFail,
            evidence: "spf=fail".into(),
        }];
        let mut p = SpamFilterPolicy::default();
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::NotSpam);
        p.asf.insert(Asf::IncreaseScoreWithNumericIps, AsfMode::On);
        let d = decide(&s, &p);
        assert_eq!((d.verdict, d.scl), (SpamVerdict::Spam, 5));
        assert!(
            d.headers
                .contains(&("X-CustomSpam".into(), "Numeric IP in URL".into()))
        );
        p.asf.insert(Asf::MarkAsSpamSpfRecordHardFail, AsfMode::On);
        let d = decide(&s, &p);
        assert_eq!((d.verdict, d.scl), (SpamVerdict::HighConfidenceSpam, 9));
        assert!(
            d.headers
                .contains(&("X-CustomSpam".into(), "SPF Record Fail".into()))
        );
        let test = SpamFilterPolicy {
            asf: [(Asf::IncreaseScoreWithNumericIps, AsfMode::Test)].into(),
            test_mode_action: TestModeAction::AddXHeader,
            ..Default::default()
        };
        let d = decide(&s, &test);
        assert_eq!(d.verdict, SpamVerdict::NotSpam);
        assert_eq!(
            d.headers,
            vec![("X-CustomSpam".into(), TEST_MODE_TEXT.into())]
        );
    }

    #[test]
    fn language_and_region_block_lists_mark_spam() {
        let mut s = signals(1);
        s.content.language = Some("ru".into());
        s.auth.country = Some("KP".into());
        let mut p = SpamFilterPolicy {
            language_block_list: vec!["ru".into()],
            region_block_list: vec!["kp".into()],
            ..Default::default()
        };
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::NotSpam);
        p.enable_language_block_list = true;
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::Spam);
        p.enable_language_block_list = false;
        p.enable_region_block_list = true;
        let d = decide(&s, &p);
        assert_eq!(d.verdict, SpamVerdict::Spam);
        assert!(d.reasons.iter().any(|r| r.text.contains("KP")));
    }

    #[test]
    fn dmarc_and_spoofing_follow_the_domains_policy() {
        let p = SpamFilterPolicy::default();
        let mut s = signals(1);
        s.auth = AuthSignals {
            dmarc: AuthResult::Fail,
            dmarc_policy: DmarcPolicy::Reject,
            from_domain: Some("fabrikam.test".into()),
            ..Default::default()
        };
        assert_eq!(
            decide(&s, &p).outcome,
            SpamOutcome::RejectDmarc {
                domain: "fabrikam.test".into()
            }
        );
        s.auth.dmarc_policy = DmarcPolicy::Quarantine;
        let d = decide(&s, &p);
        assert_eq!(
            (d.verdict, d.outcome),
            (SpamVerdict::Spam, SpamOutcome::Junk)
        );
        s.auth.dmarc_policy = DmarcPolicy::None;
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::NotSpam);
        s.spoofs_own_domain = true;
        let d = decide(&s, &p);
        assert_eq!(d.verdict.category(), Some("SPOOF"));
        // An allow-listed client skips it all, p=reject included.
        s.auth.dmarc_policy = DmarcPolicy::Reject;
        s.ip_allow_listed = true;
        assert_eq!(decide(&s, &p).outcome, SpamOutcome::Deliver);
    }

    #[test]
    fn precedence_is_exchanges() {
        let p = SpamFilterPolicy::default();
        let mut s = signals(9);
        s.content.bcl = 9;
        s.spoofs_own_domain = true;
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::HighConfidenceSpam);
        s.content.phish = PhishLevel::Phish;
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::Phish);
        s.content.scl = 5;
        s.content.phish = PhishLevel::None;
        assert_eq!(decide(&s, &p).verdict, SpamVerdict::Spoof);
    }

    #[test]
    fn spam_status_fields_read_like_spamassassins() {
        let d = decide(&signals(6), &SpamFilterPolicy::default());
        let [flag, status] = d.spam_status_fields();
        assert_eq!(flag, ("X-Spam-Flag".into(), "YES".into()));
        assert!(
            status.1.starts_with("Yes, score=6 required=5"),
            "{}",
            status.1
        );
        let d = decide(&signals(1), &SpamFilterPolicy::default());
        assert_eq!(d.spam_status_fields()[0].1, "NO");
    }
}

//! A mailbox's own safe and blocked senders (Exchange's mailbox junk email configuration,
//! `Set-MailboxJunkEmailConfiguration`'s `TrustedSendersAndDomains` and
//! `BlockedSendersAndDomains`) and what they make of the spam filter's decision for that
//! mailbox. `exchange-online-behaviour.md` §2.4 ("Who wins"):
//!
//! | verdict | Safe Senders | Blocked Senders |
//! |---|---|---|
//! | malware, high confidence phish | quarantined | quarantined |
//! | phish, high confidence spam, spam | Inbox | the policy's action for the verdict |
//! | bulk, not spam | Inbox | Junk Email folder |
//!
//! A sender on both lists is safe (Safe Senders wins). The lists match the RFC 5322.From
//! address and the RFC 5321.MailFrom address, each as itself or by its domain. Safe delivery
//! stamps `SFV:SFE` (SCL −1), a blocked sender's Junk `SFV:BLK` (§6.5).
//!
//! Malware never reaches the spam filter (the malware stage holds it first); high confidence
//! phish keeps the filter's decision. A DMARC `p=reject` refusal is not a verdict of the table
//! and stays: the lists match the From address, which is exactly what a forger writes.

use super::SpamSignals;
use super::decide::{Sfv, SpamDecision, SpamOutcome, SpamVerdict};
use super::policy::SpamAction;
use hato_core::{Reason, Stage};
use std::collections::HashSet;

/// Exchange's limit on each list: 1,024 entries (`TrustedSendersAndDomains`,
/// `BlockedSendersAndDomains`).
pub const MAX_ENTRIES: usize = 1024;

/// The longest entry: an RFC 5321 §4.5.3.1.3 path (256 octets) holds any address.
pub const MAX_ENTRY_LEN: usize = 256;

/// Why an entry cannot be on a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("an empty entry: give an address (someone@example.com) or a domain (example.com)")]
    Empty,
    #[error("{0:?} is longer than {MAX_ENTRY_LEN} characters")]
    TooLong(String),
    #[error(
        "{0:?} is neither an address (someone@example.com) nor a domain (example.com): no spaces, commas, quotes, brackets or control characters"
    )]
    Malformed(String),
}

/// An entry as the lists keep it: lower case, an address (`someone@example.com`) or a domain
/// (`example.com`; `@example.com` and `*@example.com`, as Outlook writes them, mean the same).
pub fn normalize_entry(text: &str) -> Result<String, EntryError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(EntryError::Empty);
    }
    if t.len() > MAX_ENTRY_LEN {
        return Err(EntryError::TooLong(t.chars().take(40).collect()));
    }
    let t = t.strip_prefix('*').unwrap_or(t);
    let t = t.strip_prefix('@').unwrap_or(t).to_lowercase();
    let malformed = || EntryError::Malformed(text.trim().to_owned());
    if t.chars().any(|c| {
        c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | '"' | '<' | '>' | '(' | ')' | '[' | ']' | '\\' | '*'
            )
    }) {
        return Err(malformed());
    }
    let (local, domain) = match t.rsplit_once('@') {
        Some((l, d)) => (Some(l), d),
        None => (None, t.as_str()),
    };
    if local.is_some_and(|l| l.is_empty() || l.contains('@')) {
        return Err(malformed());
    }
    if domain.is_empty() || domain.split('.').any(str::is_empty) {
        return Err(malformed());
    }
    Ok(t)
}

/// One mailbox's lists, ready to be matched (sets of normalized entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserJunkLists {
    /// `Enabled`: off, the lists do nothing (Exchange: the junk email rule is off).
    pub enabled: bool,
    pub trusted: HashSet<String>,
    pub blocked: HashSet<String>,
}

/// The entries of the lists a message's senders matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserListMatch {
    /// The Safe Senders entry that matched.
    pub safe: Option<String>,
    /// The Blocked Senders entry that matched.
    pub blocked: Option<String>,
}

impl UserJunkLists {
    /// Nothing to match: off, or both lists empty.
    pub fn is_inert(&self) -> bool {
        !self.enabled || (self.trusted.is_empty() && self.blocked.is_empty())
    }

    /// Which entries `from` (RFC 5322.From) and `mail_from` (RFC 5321.MailFrom), each lower
    /// case, match: four set lookups.
    pub fn matches(&self, from: Option<&str>, mail_from: Option<&str>) -> UserListMatch {
        if self.is_inert() {
            return UserListMatch::default();
        }
        let find = |set: &HashSet<String>| -> Option<String> {
            [from, mail_from].into_iter().flatten().find_map(|a| {
                if set.contains(a) {
                    return Some(a.to_owned());
                }
                let (_, domain) = a.rsplit_once('@')?;
                set.contains(domain).then(|| domain.to_owned())
            })
        };
        UserListMatch {
            safe: find(&self.trusted),
            blocked: find(&self.blocked),
        }
    }
}

/// The `rule` of the reasons the lists add (the trace shows it as the deciding list).
pub const RULE: &str = "junk email configuration";

fn reason(text: String, entry: &str) -> Reason {
    Reason::new(Stage::Spam, text)
        .rule(RULE)
        .figure("entry", entry.to_owned())
}

/// The spam filter's `decision` for a mailbox whose lists matched `m` (§2.4, above).
pub fn apply_user_lists(mut decision: SpamDecision, m: &UserListMatch) -> SpamDecision {
    // High confidence phish stays quarantined, a DMARC p=reject refusal stays refused.
    let kept = decision.verdict == SpamVerdict::HighConfidencePhish
        || matches!(decision.outcome, SpamOutcome::RejectDmarc { .. });
    if let Some(entry) = &m.safe {
        if kept {
            decision.reasons.insert(
                0,
                reason(
                    format!(
                        "The sender is on the recipient's safe senders list ({entry}), but {} is acted on whatever the lists say",
                        decision.verdict.name()
                    ),
                    entry,
                ),
            );
            return decision;
        }
        let found = decision.verdict;
        decision.reasons.insert(
            0,
            reason(
                format!(
                    "The sender is on the recipient's safe senders list ({entry}): delivered to the Inbox"
                ),
                entry,
            )
            .figure("filter_verdict", found.name()),
        );
        return SpamDecision {
            verdict: SpamVerdict::NotSpam,
            scl: -1,
            sfv: Sfv::Sfe,
            bulk: decision.bulk,
            bcl: decision.bcl,
            action_setting: None,
            action: SpamAction::NoAction,
            outcome: SpamOutcome::Deliver,
            // The Inbox, unchanged: no policy header, no subject tag.
            headers: Vec::new(),
            subject_prefix: None,
            reasons: decision.reasons,
        };
    }
    let Some(entry) = &m.blocked else {
        return decision;
    };
    if kept {
        decision.reasons.insert(
            0,
            reason(
                format!(
                    "The sender is on the recipient's blocked senders list ({entry}); {} is acted on as the policy says",
                    decision.verdict.name()
                ),
                entry,
            ),
        );
        return decision;
    }
    match decision.verdict {
        // Phish, spoof, high confidence spam, spam: the policy's action for the verdict.
        SpamVerdict::Phish
        | SpamVerdict::Spoof
        | SpamVerdict::HighConfidenceSpam
        | SpamVerdict::Spam => {
            decision.reasons.insert(
                0,
                reason(
                    format!(
                        "The sender is on the recipient's blocked senders list ({entry}); the verdict {} takes the policy's action",
                        decision.verdict.name()
                    ),
                    entry,
                ),
            );
            decision
        }
        // Bulk and not spam: the Junk Email folder, `SFV:BLK`.
        SpamVerdict::Bulk | SpamVerdict::NotSpam | SpamVerdict::HighConfidencePhish => {
            decision.reasons.insert(
                0,
                reason(
                    format!(
                        "The sender is on the recipient's blocked senders list ({entry}): to the Junk Email folder"
                    ),
                    entry,
                )
                .figure("filter_verdict", decision.verdict.name()),
            );
            if decision.outcome != SpamOutcome::Junk {
                decision.outcome = SpamOutcome::Junk;
                decision.action = SpamAction::MoveToJmf;
                decision.action_setting = None;
                decision.subject_prefix = None;
            }
            decision.sfv = Sfv::Blk;
            // Junk mail reads as spam to clients (X-Spam-Flag), as Exchange's blocked senders
            // are SCL 6 or more.
            decision.scl = decision.scl.max(6);
            decision
        }
    }
}

/// The lists' match for `signals`' senders.
pub fn user_list_match(lists: &UserJunkLists, signals: &SpamSignals) -> UserListMatch {
    lists.matches(
        signals.from_address.as_deref(),
        signals.envelope_sender.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::decide::decide;
    use crate::spam::policy::SpamFilterPolicy;
    use crate::spam::{ContentSignals, PhishLevel};

    fn lists(trusted: &[&str], blocked: &[&str]) -> UserJunkLists {
        UserJunkLists {
            enabled: true,
            trusted: trusted.iter().map(|s| s.to_string()).collect(),
            blocked: blocked.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn signals(scl: i8) -> SpamSignals {
        SpamSignals {
            content: ContentSignals {
                scl,
                spam_probability: if scl >= 5 { 0.99 } else { 0.01 },
                ..Default::default()
            },
            from_address: Some("carol@fabrikam.test".into()),
            envelope_sender: Some("bounce@mailer.fabrikam.test".into()),
            ..Default::default()
        }
    }

    fn run(s: &SpamSignals, p: &SpamFilterPolicy, l: &UserJunkLists) -> SpamDecision {
        apply_user_lists(decide(s, p), &user_list_match(l, s))
    }

    #[test]
    fn entries_are_addresses_or_domains_in_lower_case() {
        assert_eq!(
            normalize_entry(" Carol@Fabrikam.TEST ").unwrap(),
            "carol@fabrikam.test"
        );
        assert_eq!(normalize_entry("@Fabrikam.test").unwrap(), "fabrikam.test");
        assert_eq!(normalize_entry("*@fabrikam.test").unwrap(), "fabrikam.test");
        assert_eq!(normalize_entry("fabrikam.test").unwrap(), "fabrikam.test");
        for bad in [
            "",
            " ",
            "a b@c.test",
            "a@",
            "@",
            "a@b..test",
            "<a@b.test>",
            "a,b",
            "x@y@z",
        ] {
            assert!(normalize_entry(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            normalize_entry(&"a".repeat(300)),
            Err(EntryError::TooLong(_))
        ));
    }

    #[test]
    fn the_from_and_the_envelope_sender_match_as_addresses_or_domains() {
        let l = lists(&["mailer.fabrikam.test"], &["carol@fabrikam.test"]);
        let m = l.matches(
            Some("carol@fabrikam.test"),
            Some("bounce@mailer.fabrikam.test"),
        );
        assert_eq!(m.safe.as_deref(), Some("mailer.fabrikam.test"));
        assert_eq!(m.blocked.as_deref(), Some("carol@fabrikam.test"));
        // A subdomain is another domain.
        assert_eq!(
            l.matches(Some("a@x.mailer.fabrikam.test"), None),
            UserListMatch::default()
        );
        // Off: nothing matches.
        let off = UserJunkLists {
            enabled: false,
            ..l
        };
        assert_eq!(
            off.matches(Some("carol@fabrikam.test"), None),
            UserListMatch::default()
        );
    }

    #[test]
    fn safe_senders_go_to_the_inbox_but_high_confidence_phish_stays_held() {
        let p = SpamFilterPolicy::default();
        let l = lists(&["fabrikam.test"], &[]);
        for scl in [1, 5, 9] {
            let d = run(&signals(scl), &p, &l);
            assert_eq!(
                (d.verdict, d.scl, d.sfv, d.outcome.clone()),
                (SpamVerdict::NotSpam, -1, Sfv::Sfe, SpamOutcome::Deliver),
                "{scl}"
            );
            assert!(
                d.reasons[0]
                    .text
                    .contains("safe senders list (fabrikam.test)")
            );
        }
        let mut phish = signals(1);
        phish.content.phish = PhishLevel::Phish;
        assert_eq!(run(&phish, &p, &l).sfv, Sfv::Sfe);
        let mut bulk = signals(1);
        bulk.content.bcl = 9;
        assert_eq!(run(&bulk, &p, &l).outcome, SpamOutcome::Deliver);
        phish.content.phish = PhishLevel::HighConfidence;
        let d = run(&phish, &p, &l);
        assert_eq!(d.verdict, SpamVerdict::HighConfidencePhish);
        assert!(matches!(d.outcome, SpamOutcome::Quarantine { .. }));
    }

    #[test]
    fn blocked_senders_junk_bulk_and_clean_mail_and_leave_spam_to_the_policy() {
        let p = SpamFilterPolicy {
            spam_action: SpamAction::Quarantine,
            bulk_spam_action: SpamAction::Quarantine,
            ..Default::default()
        };
        let l = lists(&[], &["carol@fabrikam.test"]);
        let d = run(&signals(1), &p, &l);
        assert_eq!(
            (d.sfv, d.outcome.clone(), d.verdict),
            (Sfv::Blk, SpamOutcome::Junk, SpamVerdict::NotSpam)
        );
        assert!(d.scl >= 6);
        assert!(d.reasons[0].text.contains("blocked senders list"));
        let mut bulk = signals(1);
        bulk.content.bcl = 8;
        let d = run(&bulk, &p, &l);
        assert_eq!((d.sfv, d.outcome), (Sfv::Blk, SpamOutcome::Junk));
        // Spam: the policy's spam action (quarantine here), the filter's stamp.
        let d = run(&signals(6), &p, &l);
        assert_eq!(d.outcome, SpamOutcome::Quarantine { days: 15 });
        assert_eq!(d.sfv, Sfv::Spm);
        assert!(d.reasons[0].text.contains("blocked senders list"));
    }

    #[test]
    fn safe_senders_win_over_blocked_senders() {
        let l = lists(&["carol@fabrikam.test"], &["carol@fabrikam.test"]);
        let d = run(&signals(1), &SpamFilterPolicy::default(), &l);
        assert_eq!(d.sfv, Sfv::Sfe);
    }
}

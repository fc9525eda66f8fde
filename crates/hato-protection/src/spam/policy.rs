//! The anti-spam policy: Exchange's `HostedContentFilterPolicy` parameters in Rust form with the
//! Default policy's defaults (`exchange-online-behaviour.md` §6.3, §6.4; PowerShell-created
//! policies have the same).

use super::Asf;
use hato_core::message::{ADMIN_ONLY_ACCESS_POLICY, DEFAULT_FULL_ACCESS_POLICY, QuarantineKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to a message with a spam, high confidence spam, phish or bulk verdict
/// (`SpamAction`, `HighConfidenceSpamAction`, `PhishSpamAction`, `HighConfidencePhishAction`,
/// `BulkSpamAction`; §6.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpamAction {
    /// Delivered to the recipient's Junk Email folder (the default for spam and bulk).
    #[default]
    MoveToJmf,
    /// The header named by `AddXHeaderValue` is added; delivered (to Junk for spam/HCS).
    AddXHeader,
    /// `ModifySubjectValue` is put before the subject; delivered to Junk.
    ModifySubject,
    /// Sent to `RedirectToRecipients` instead of the recipient.
    Redirect,
    /// Nothing delivered, no NDR; trace `Drop` with `550 4.3.2 QUEUE.TransportAgent; message
    /// deleted by transport agent`.
    Delete,
    /// Held in quarantine for `QuarantineRetentionPeriod` days.
    Quarantine,
    /// Bulk only: nothing.
    NoAction,
}

impl SpamAction {
    pub const ALL: [SpamAction; 7] = [
        SpamAction::MoveToJmf,
        SpamAction::AddXHeader,
        SpamAction::ModifySubject,
        SpamAction::Redirect,
        SpamAction::Delete,
        SpamAction::Quarantine,
        SpamAction::NoAction,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SpamAction::MoveToJmf => "move-to-jmf",
            SpamAction::AddXHeader => "add-x-header",
            SpamAction::ModifySubject => "modify-subject",
            SpamAction::Redirect => "redirect",
            SpamAction::Delete => "delete",
            SpamAction::Quarantine => "quarantine",
            SpamAction::NoAction => "no-action",
        }
    }

    /// Accepts the kebab-case name and Exchange's PascalCase one (`MoveToJmf`).
    pub fn parse(s: &str) -> Option<Self> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        SpamAction::ALL
            .into_iter()
            .find(|a| a.name().replace('-', "") == folded)
    }
}

/// An ASF option's setting (§6.3: `Off`, `On`, `Test`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AsfMode {
    #[default]
    Off,
    On,
    /// Only recorded (`TestModeAction`: an `X-CustomSpam` header), never acted on.
    Test,
}

/// `TestModeAction`: what an ASF option in `test` mode does when it fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestModeAction {
    #[default]
    None,
    /// `X-CustomSpam: This message was filtered by the custom spam filter option`.
    AddXHeader,
}

/// `MarkAsSpamBulkMail`: `On` (default) gives bulk mail at or above the threshold the bulk
/// verdict; `Off` only stamps the BCL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BulkMode {
    On,
    Off,
}

/// A tenant's anti-spam policy. The defaults are those of Exchange's Default policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpamFilterPolicy {
    /// `SpamAction` (default `MoveToJmf`).
    pub spam_action: SpamAction,
    /// `HighConfidenceSpamAction` (default `MoveToJmf`).
    pub high_confidence_spam_action: SpamAction,
    /// `PhishSpamAction` (default `MoveToJmf`, as for policies created with PowerShell).
    pub phish_spam_action: SpamAction,
    /// `HighConfidencePhishAction`: `Quarantine` (default) or `Redirect` only.
    pub high_confidence_phish_action: SpamAction,
    /// `BulkSpamAction` (default `MoveToJmf`).
    pub bulk_spam_action: SpamAction,
    /// `BulkThreshold`, 1–9 (default 7): the bulk verdict at BCL ≥ this.
    pub bulk_threshold: u8,
    /// `MarkAsSpamBulkMail` (default `On`).
    pub mark_as_spam_bulk_mail: BulkMode,
    /// `QuarantineRetentionPeriod`, 1–30 days (default 15).
    pub quarantine_retention_period: u16,
    /// `RedirectToRecipients`: where `Redirect` sends the message.
    pub redirect_to_recipients: Vec<String>,
    /// `ModifySubjectValue`: put before the subject by `ModifySubject`.
    pub modify_subject_value: String,
    /// `AddXHeaderValue`: the header *name* added by `AddXHeader` (≤ 255 characters, no spaces or
    /// colons; the value is always `This message appears to be spam.`).
    pub add_x_header_value: String,
    /// `AllowedSenders` / `AllowedSenderDomains`: skip filtering, `SFV:SKA`.
    pub allowed_senders: Vec<String>,
    pub allowed_sender_domains: Vec<String>,
    /// `BlockedSenders` / `BlockedSenderDomains`: spam, `SFV:SKB`.
    pub blocked_senders: Vec<String>,
    pub blocked_sender_domains: Vec<String>,
    /// The ASF options (every one `Off` by default).
    pub asf: BTreeMap<Asf, AsfMode>,
    /// `TestModeAction` (default `None`).
    pub test_mode_action: TestModeAction,
    /// `EnableLanguageBlockList` + `LanguageBlockList` (ISO 639-1 codes, lower case).
    pub enable_language_block_list: bool,
    pub language_block_list: Vec<String>,
    /// `EnableRegionBlockList` + `RegionBlockList` (ISO 3166-1 alpha-2 codes, upper case).
    pub enable_region_block_list: bool,
    pub region_block_list: Vec<String>,
    /// `EnableEndUserSpamNotifications` (default off), `EndUserSpamNotificationFrequency`
    /// (1–15 days, default 3), `EndUserSpamNotificationLanguage` (`default`, `en`, `ja`, …).
    pub enable_end_user_spam_notifications: bool,
    pub end_user_spam_notification_frequency: u16,
    pub end_user_spam_notification_language: String,
    /// `SpamQuarantineTag`, `HighConfidenceSpamQuarantineTag`, `PhishQuarantineTag`,
    /// `HighConfidencePhishQuarantineTag`, `BulkQuarantineTag`: the quarantine policy an item
    /// this policy quarantines for the verdict gets (Exchange's defaults:
    /// `DefaultFullAccessPolicy`, and `AdminOnlyAccessPolicy` for high confidence phishing).
    pub spam_quarantine_tag: String,
    pub high_confidence_spam_quarantine_tag: String,
    pub phish_quarantine_tag: String,
    pub high_confidence_phish_quarantine_tag: String,
    pub bulk_quarantine_tag: String,
}

/// `AddXHeaderValue`'s fallback when the configured name is not a valid field name (§6.3).
pub const FALLBACK_X_HEADER: &str = "X-This-Is-Spam";
/// The fixed value of the header `AddXHeader` adds (§6.3).
pub const X_HEADER_TEXT: &str = "This message appears to be spam.";

impl Default for SpamFilterPolicy {
    fn default() -> Self {
        SpamFilterPolicy {
            spam_action: SpamAction::MoveToJmf,
            high_confidence_spam_action: SpamAction::MoveToJmf,
            phish_spam_action: SpamAction::MoveToJmf,
            high_confidence_phish_action: SpamAction::Quarantine,
            bulk_spam_action: SpamAction::MoveToJmf,
            bulk_threshold: 7,
            mark_as_spam_bulk_mail: BulkMode::On,
            quarantine_retention_period: 15,
            redirect_to_recipients: Vec::new(),
            modify_subject_value: String::new(),
            add_x_header_value: String::new(),
            allowed_senders: Vec::new(),
            allowed_sender_domains: Vec::new(),
            blocked_senders: Vec::new(),
            blocked_sender_domains: Vec::new(),
            asf: BTreeMap::new(),
            test_mode_action: TestModeAction::None,
            enable_language_block_list: false,
            language_block_list: Vec::new(),
            enable_region_block_list: false,
            region_block_list: Vec::new(),
            enable_end_user_spam_notifications: false,
            end_user_spam_notification_frequency: 3,
            end_user_spam_notification_language: "default".to_owned(),
            spam_quarantine_tag: DEFAULT_FULL_ACCESS_POLICY.to_owned(),
            high_confidence_spam_quarantine_tag: DEFAULT_FULL_ACCESS_POLICY.to_owned(),
            phish_quarantine_tag: DEFAULT_FULL_ACCESS_POLICY.to_owned(),
            high_confidence_phish_quarantine_tag: ADMIN_ONLY_ACCESS_POLICY.to_owned(),
            bulk_quarantine_tag: DEFAULT_FULL_ACCESS_POLICY.to_owned(),
        }
    }
}

/// What is wrong with a policy's settings (a CLI/API answers with the message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpamPolicyError {
    #[error("bulk-threshold must be between 1 and 9 (is {0})")]
    BulkThreshold(u8),
    #[error("quarantine-retention-period must be between 1 and 30 days (is {0})")]
    RetentionPeriod(u16),
    #[error("end-user-spam-notification-frequency must be between 1 and 15 days (is {0})")]
    NotificationFrequency(u16),
    #[error("{setting} cannot be {action}: allowed are {allowed}")]
    ActionNotAllowed {
        setting: &'static str,
        action: &'static str,
        allowed: &'static str,
    },
    #[error("{setting} is redirect but redirect-to-recipients is empty")]
    RedirectWithoutRecipients { setting: &'static str },
    #[error("{0}")]
    Invalid(String),
}

impl SpamFilterPolicy {
    /// The ASF option's mode (`Off` unless set).
    pub fn asf_mode(&self, option: Asf) -> AsfMode {
        self.asf.get(&option).copied().unwrap_or_default()
    }

    /// The header `AddXHeader` adds: `AddXHeaderValue` when it is a valid field name (RFC 5322
    /// §3.6.8 ftext, ≤ 255 characters, no spaces or colons), else [`FALLBACK_X_HEADER`].
    pub fn x_header_name(&self) -> &str {
        let name = self.add_x_header_value.as_str();
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if valid { name } else { FALLBACK_X_HEADER }
    }

    /// The `*QuarantineTag` for an item of `kind` this policy quarantines (the spam kinds;
    /// another kind gets its default).
    pub fn quarantine_tag(&self, kind: QuarantineKind) -> &str {
        match kind {
            QuarantineKind::Spam => &self.spam_quarantine_tag,
            QuarantineKind::HighConfidenceSpam => &self.high_confidence_spam_quarantine_tag,
            QuarantineKind::Phish => &self.phish_quarantine_tag,
            QuarantineKind::HighConfidencePhish => &self.high_confidence_phish_quarantine_tag,
            QuarantineKind::Bulk => &self.bulk_quarantine_tag,
            other => other.default_quarantine_policy(),
        }
    }

    /// The quarantine tags with their settings' names, for a check that each names a policy.
    pub fn quarantine_tags(&self) -> [(&'static str, &str); 5] {
        [
            ("spam-quarantine-tag", &self.spam_quarantine_tag),
            (
                "high-confidence-spam-quarantine-tag",
                &self.high_confidence_spam_quarantine_tag,
            ),
            ("phish-quarantine-tag", &self.phish_quarantine_tag),
            (
                "high-confidence-phish-quarantine-tag",
                &self.high_confidence_phish_quarantine_tag,
            ),
            ("bulk-quarantine-tag", &self.bulk_quarantine_tag),
        ]
    }

    /// Checks the settings as `Set-HostedContentFilterPolicy` does.
    pub fn validate(&self) -> Result<(), SpamPolicyError> {
        for (setting, tag) in self.quarantine_tags() {
            if tag.trim().is_empty() {
                return Err(SpamPolicyError::Invalid(format!(
                    "{setting} must name a quarantine policy"
                )));
            }
        }
        if !(1..=9).contains(&self.bulk_threshold) {
            return Err(SpamPolicyError::BulkThreshold(self.bulk_threshold));
        }
        if !(1..=30).contains(&self.quarantine_retention_period) {
            return Err(SpamPolicyError::RetentionPeriod(
                self.quarantine_retention_period,
            ));
        }
        if !(1..=15).contains(&self.end_user_spam_notification_frequency) {
            return Err(SpamPolicyError::NotificationFrequency(
                self.end_user_spam_notification_frequency,
            ));
        }
        let verdict_actions = [
            ("spam-action", self.spam_action),
            (
                "high-confidence-spam-action",
                self.high_confidence_spam_action,
            ),
            ("phish-spam-action", self.phish_spam_action),
        ];
        for (setting, action) in verdict_actions {
            if action == SpamAction::NoAction {
                return Err(SpamPolicyError::ActionNotAllowed {
                    setting,
                    action: action.name(),
                    allowed: "move-to-jmf, add-x-header, modify-subject, redirect, delete, quarantine",
                });
            }
        }
        if !matches!(
            self.high_confidence_phish_action,
            SpamAction::Quarantine | SpamAction::Redirect
        ) {
            return Err(SpamPolicyError::ActionNotAllowed {
                setting: "high-confidence-phish-action",
                action: self.high_confidence_phish_action.name(),
                allowed: "quarantine, redirect",
            });
        }
        let all = [
            ("spam-action", self.spam_action),
            (
                "high-confidence-spam-action",
                self.high_confidence_spam_action,
            ),
            ("phish-spam-action", self.phish_spam_action),
            (
                "high-confidence-phish-action",
                self.high_confidence_phish_action,
            ),
            ("bulk-spam-action", self.bulk_spam_action),
        ];
        for (setting, action) in all {
            if action == SpamAction::Redirect && self.redirect_to_recipients.is_empty() {
                return Err(SpamPolicyError::RedirectWithoutRecipients { setting });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_exchanges_default_policy() {
        let p = SpamFilterPolicy::default();
        assert_eq!(p.spam_action, SpamAction::MoveToJmf);
        assert_eq!(p.high_confidence_phish_action, SpamAction::Quarantine);
        assert_eq!(p.bulk_threshold, 7);
        assert_eq!(p.quarantine_retention_period, 15);
        assert_eq!(p.end_user_spam_notification_frequency, 3);
        assert!(Asf::ALL.iter().all(|a| p.asf_mode(*a) == AsfMode::Off));
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn validation_follows_the_cmdlet() {
        let mut p = SpamFilterPolicy {
            high_confidence_phish_action: SpamAction::MoveToJmf,
            ..Default::default()
        };
        assert!(matches!(
            p.validate(),
            Err(SpamPolicyError::ActionNotAllowed { .. })
        ));
        p.high_confidence_phish_action = SpamAction::Redirect;
        assert_eq!(
            p.validate(),
            Err(SpamPolicyError::RedirectWithoutRecipients {
                setting: "high-confidence-phish-action"
            })
        );
        p.redirect_to_recipients = vec!["soc@contoso.test".into()];
        assert_eq!(p.validate(), Ok(()));
        p.bulk_threshold = 0;
        assert_eq!(p.validate(), Err(SpamPolicyError::BulkThreshold(0)));
        p.bulk_threshold = 9;
        p.quarantine_retention_period = 31;
        assert_eq!(p.validate(), Err(SpamPolicyError::RetentionPeriod(31)));
    }

    #[test]
    fn actions_parse_both_spellings_and_x_header_falls_back() {
        assert_eq!(SpamAction::parse("MoveToJmf"), Some(SpamAction::MoveToJmf));
        assert_eq!(
            SpamAction::parse("add-x-header"),
            Some(SpamAction::AddXHeader)
        );
        assert_eq!(SpamAction::parse("junk"), None);
        let mut p = SpamFilterPolicy::default();
        assert_eq!(p.x_header_name(), FALLBACK_X_HEADER);
        p.add_x_header_value = "X-This-is-my-custom-header".into();
        assert_eq!(p.x_header_name(), "X-This-is-my-custom-header");
        p.add_x_header_value = "Bad Header".into();
        assert_eq!(p.x_header_name(), FALLBACK_X_HEADER);
    }
}

//! Transport (mail flow) rules: Exchange's `New-TransportRule` as data, checked, compiled and
//! evaluated per recipient (reference §5).
//!
//! - [`Rule`] is what an admin writes and what the store keeps (JSON, also the export format):
//!   properties, [`Conditions`] (and the same set as exceptions, Exchange's `ExceptIf…` twins)
//!   and [`Actions`], with the field names of `New-TransportRule`'s parameters in snake case
//!   (the CLI's flags are the same names in kebab case).
//! - [`Rule::validate`] checks and normalises a rule; its errors name the flag and the value.
//! - [`RuleSet::compile`] (in `eval.rs`) turns a tenant's rules into matchers once (the
//!   integrator caches it per store version); [`RuleSet::evaluate`] is pure: a [`RuleMessage`]
//!   and a [`RuleDirectory`] in, per recipient the rules that matched and their decisions out.
//! - `apply.rs` applies the actions that change content (headers, subject, disclaimer) to a
//!   header block and body it is given; `message.rs` builds a [`RuleMessage`] from an `.eml`.

mod apply;
mod cache;
mod eval;
mod matcher;
mod message;
#[cfg(test)]
mod tests;

pub use apply::{DisclaimerOutcome, Modified, apply_content_actions};
pub use cache::{HitBatch, RuleSetCache};
pub use eval::{
    Evaluation, NoDirectory, RecipientRules, RuleAction, RuleDecision, RuleDirectory, RuleHit,
    RuleSet,
};
pub use matcher::{PATTERN_MAX_CHARS, PATTERN_SIZE_LIMIT};
pub use message::{ATTACHMENT_TEXT_MAX, AttachmentFacts, BODY_TEXT_MAX, MessageType, RuleMessage};

use hato_core::{Address, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A rule's name: at most this many characters (Exchange's `Name` limit).
pub const NAME_MAX_CHARS: usize = 64;
/// `RejectMessageReasonText`: at most 1,024 characters in Exchange Online (reference §5.4).
pub const REJECT_TEXT_MAX_CHARS: usize = 1024;
/// `ApplyHtmlDisclaimerText`: at most 5,000 characters (reference §5.4).
pub const DISCLAIMER_MAX_CHARS: usize = 5000;
/// A rule's JSON form: at most this many bytes. Exchange documents 8 KB per rule; hato allows
/// twice that so a full disclaimer and its conditions fit.
pub const RULE_MAX_BYTES: usize = 16 * 1024;
/// A tenant's rules: at most this many (Exchange Online's 300).
pub const RULES_MAX: usize = 300;
/// A tenant's patterns, all rules together: at most this many characters (Exchange Online's
/// 20 KB of regular expression text).
pub const PATTERN_TEXT_MAX: usize = 20 * 1024;
/// Exchange's default `RejectMessageReasonText` when only an enhanced code is given.
pub const DEFAULT_REJECT_TEXT: &str = "Delivery not authorized, message refused";
/// Exchange's default `RejectMessageEnhancedStatusCode`.
pub const DEFAULT_REJECT_CODE: &str = "5.7.1";

/// `-Mode`: `Enforce` acts; `Audit` only records what would happen (only the incident report
/// runs); `AuditAndNotify` as `Audit` plus notifications (reference §5.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
    AuditAndNotify,
}

/// `-SenderAddressLocation`: where the sender conditions look (reference §5.2): the `From:`
/// header (Exchange's default), the envelope's `MAIL FROM`, or either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderAddressLocation {
    #[default]
    Header,
    Envelope,
    HeaderOrEnvelope,
}

/// `-RuleErrorAction`: when the rule cannot be evaluated, send the message anyway (`Ignore`,
/// the default) or defer it (`Defer`: a 4xx, tried again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleErrorAction {
    #[default]
    Ignore,
    Defer,
}

/// `-FromScope` / `-SentToScope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    InOrganization,
    NotInOrganization,
}

/// `-ApplyHtmlDisclaimerLocation`: `Append` (the default) or `Prepend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisclaimerLocation {
    #[default]
    Append,
    Prepend,
}

/// `-ApplyHtmlDisclaimerFallbackAction`: what happens when the disclaimer cannot be inserted
/// (the content cannot be changed in place): `Wrap` (the default: the original becomes an
/// attachment of a new message carrying the disclaimer), `Ignore`, `Reject`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisclaimerFallback {
    #[default]
    Wrap,
    Ignore,
    Reject,
}

/// The conditions of a rule, or its exceptions (each field is both a condition and, under
/// `exceptions`, its `ExceptIf…` twin). Fields left out do not take part; values within one
/// field are alternatives (OR); the fields given must all match (AND) — for exceptions, any one
/// matching exempts (OR). Reference §5.1, §5.3.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// `-From`: the sender is one of these addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// `-FromScope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_scope: Option<Scope>,
    /// `-FromMemberOf`: the sender is a member of one of these groups (by address).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_member_of: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_address_contains_words: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_address_matches_patterns: Vec<String>,
    /// `-SenderDomainIs`: exactly these domains (use patterns for subdomains, as in Exchange).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sender_domain_is: Vec<String>,
    /// `-SenderIpRanges`: an address, a range `a-b` or a CIDR block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sender_ip_ranges: Vec<String>,
    /// `-SenderADAttributeContainsWords`: `Attribute:word,word` (e.g. `Department:Sales`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sender_ad_attribute_contains_words: Vec<String>,
    /// `-SentTo`: the recipient is one of these addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sent_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to_scope: Option<Scope>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sent_to_member_of: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipient_domain_is: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipient_address_contains_words: Vec<String>,
    /// `-AnyOfToCcHeader`: one of these addresses is in `To:` or `Cc:`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any_of_to_cc_header: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_contains_words: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_matches_patterns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_or_body_contains_words: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_or_body_matches_patterns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_name_matches_patterns: Vec<String>,
    /// `-AttachmentExtensionMatchesWords`: extensions without the dot (`exe`, `docm`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_extension_matches_words: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_contains_words: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attachment_has_executable_content: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attachment_is_password_protected: bool,
    /// `-AttachmentSizeOver`, bytes: an attachment of at least this size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_size_over: Option<u64>,
    /// `-MessageSizeOver`, bytes: the whole message, at least this size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_size_over: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_contains_message_header: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_contains_words: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_matches_message_header: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header_matches_patterns: Vec<String>,
    /// `-SCLOver`: the SCL so far is at least this (−1 to 9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scl_over: Option<i8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type_matches: Option<MessageType>,
}

/// What a rule does (reference §5.4). All given actions apply; some end the evaluation of
/// later rules (reject, delete, quarantine: as `StopRuleProcessing`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Actions {
    /// `-SetSCL`: −1 (bypass spam filtering) or 0 to 9; an input to the spam filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_scl: Option<i8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_message_reason_text: Option<String>,
    /// `5.7.1` or `5.7.900`–`5.7.999`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_message_enhanced_status_code: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delete_message: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirect_message_to: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blind_copy_to: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_to_recipients: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copy_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepend_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_header_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_header_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_html_disclaimer_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_html_disclaimer_location: Option<DisclaimerLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_html_disclaimer_fallback_action: Option<DisclaimerFallback>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quarantine: bool,
    /// Recorded only: the outbound issue routes by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_message_outbound_connector: Option<String>,
    /// `-GenerateIncidentReport`: the address the report goes to (recorded; the report itself
    /// is the integrator's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_incident_report: Option<String>,
}

/// A transport rule, as stored, exported and imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// 0 first; unique within a tenant (the store keeps it so).
    #[serde(default)]
    pub priority: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub mode: Mode,
    /// RFC 3339 (UTC); the rule applies from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_date: Option<String>,
    /// RFC 3339 (UTC); the rule no longer applies from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_date: Option<String>,
    #[serde(default)]
    pub sender_address_location: SenderAddressLocation,
    #[serde(default)]
    pub rule_error_action: RuleErrorAction,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comments: String,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub exceptions: Conditions,
    #[serde(default)]
    pub actions: Actions,
    #[serde(default)]
    pub stop_rule_processing: bool,
}

fn yes() -> bool {
    true
}

impl Rule {
    /// A rule as the store keeps it: its definition (JSON), with the store's columns for name,
    /// priority and enabled (they win over the same fields in the JSON).
    pub fn from_stored(
        definition: &str,
        name: &str,
        priority: u32,
        enabled: bool,
    ) -> Result<Rule, serde_json::Error> {
        let mut rule: Rule = serde_json::from_str(definition)?;
        rule.name = name.to_string();
        rule.priority = priority;
        rule.enabled = enabled;
        Ok(rule)
    }

    /// A rule with a name and nothing else (Exchange's defaults).
    pub fn named(name: impl Into<String>) -> Self {
        Rule {
            name: name.into(),
            priority: 0,
            enabled: true,
            mode: Mode::Enforce,
            activation_date: None,
            expiry_date: None,
            sender_address_location: SenderAddressLocation::Header,
            rule_error_action: RuleErrorAction::Ignore,
            comments: String::new(),
            conditions: Conditions::default(),
            exceptions: Conditions::default(),
            actions: Actions::default(),
            stop_rule_processing: false,
        }
    }
}

/// What is wrong with a rule: the flag (kebab case, as the CLI names it; the JSON field is the
/// same in snake case), the value, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    pub field: String,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "--{}: {}", self.field, self.problem)
        } else {
            write!(f, "--{} {:?}: {}", self.field, self.value, self.problem)
        }
    }
}

impl RuleError {
    pub(crate) fn new(field: &str, value: impl Into<String>, problem: impl Into<String>) -> Self {
        RuleError {
            field: field.replace('_', "-"),
            value: value.into(),
            problem: problem.into(),
        }
    }
}

/// `field` with the `except-if-` prefix when it is an exception's.
fn flag(prefix: &str, field: &str) -> String {
    format!("{prefix}{field}")
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A list of addresses, each canonical (RFC 5321/6531), or the first that is not one.
fn addresses(field: &str, values: &mut [String]) -> Result<(), RuleError> {
    for v in values.iter_mut() {
        let a = Address::parse(v.trim())
            .map_err(|e| RuleError::new(field, v.as_str(), format!("not an address: {e}")))?;
        *v = a.to_string();
    }
    Ok(())
}

fn domains(field: &str, values: &mut [String]) -> Result<(), RuleError> {
    for v in values.iter_mut() {
        let d = hato_core::address::canonical_domain_name(v)
            .map_err(|e| RuleError::new(field, v.as_str(), format!("not a domain: {e}")))?;
        *v = d;
    }
    Ok(())
}

/// Words: each non-empty, on one line; trimmed.
fn words(field: &str, values: &mut [String]) -> Result<(), RuleError> {
    for v in values.iter_mut() {
        let t = v.trim();
        if t.is_empty() || has_control(t) {
            return Err(RuleError::new(
                field,
                v.as_str(),
                "a word is non-empty text without control characters",
            ));
        }
        *v = t.to_string();
    }
    Ok(())
}

/// An RFC 5322 §3.6.8 field name: printable US-ASCII except `:`.
fn header_name(field: &str, name: &str) -> Result<(), RuleError> {
    if name.is_empty()
        || name.len() > 76
        || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    {
        return Err(RuleError::new(
            field,
            name,
            "a header field name is 1 to 76 printable ASCII characters without ':' (RFC 5322 §3.6.8)",
        ));
    }
    Ok(())
}

/// `5.7.1` or `5.7.900` to `5.7.999` (reference §5.4).
pub fn valid_reject_code(code: &str) -> bool {
    if code == "5.7.1" {
        return true;
    }
    code.strip_prefix("5.7.")
        .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u16>().ok())
        .is_some_and(|n| (900..=999).contains(&n))
}

fn scl(field: &str, v: i8) -> Result<(), RuleError> {
    if (-1..=9).contains(&v) {
        Ok(())
    } else {
        Err(RuleError::new(
            field,
            v.to_string(),
            "an SCL is -1 (bypass spam filtering) or 0 to 9",
        ))
    }
}

/// The attributes `-SenderADAttributeContainsWords` may name (Exchange's list, of the ones
/// hato's directory can hold).
pub const SENDER_ATTRIBUTES: [&str; 24] = [
    "City",
    "Company",
    "Country",
    "CustomAttribute1",
    "CustomAttribute2",
    "CustomAttribute3",
    "CustomAttribute4",
    "CustomAttribute5",
    "CustomAttribute6",
    "CustomAttribute7",
    "CustomAttribute8",
    "CustomAttribute9",
    "CustomAttribute10",
    "CustomAttribute11",
    "CustomAttribute12",
    "CustomAttribute13",
    "CustomAttribute14",
    "CustomAttribute15",
    "Department",
    "DisplayName",
    "Email",
    "Office",
    "State",
    "Title",
];

/// `Attribute:word,word` → (canonical attribute name, words).
pub(crate) fn split_attribute(entry: &str) -> Option<(&'static str, Vec<String>)> {
    let (attr, words) = entry.split_once(':')?;
    let attr = SENDER_ATTRIBUTES
        .iter()
        .find(|a| a.eq_ignore_ascii_case(attr.trim()))?;
    let words: Vec<String> = words
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    (!words.is_empty()).then_some((*attr, words))
}

impl Conditions {
    /// Whether no condition is given.
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    fn validate(&mut self, prefix: &str) -> Result<(), RuleError> {
        let f = |name: &str| flag(prefix, name);
        addresses(&f("from"), &mut self.from)?;
        addresses(&f("from_member_of"), &mut self.from_member_of)?;
        words(
            &f("from_address_contains_words"),
            &mut self.from_address_contains_words,
        )?;
        domains(&f("sender_domain_is"), &mut self.sender_domain_is)?;
        for r in &self.sender_ip_ranges {
            matcher::IpRange::parse(r)
                .map_err(|p| RuleError::new(&f("sender_ip_ranges"), r.as_str(), p))?;
        }
        for e in &self.sender_ad_attribute_contains_words {
            if split_attribute(e).is_none() {
                return Err(RuleError::new(
                    &f("sender_ad_attribute_contains_words"),
                    e.as_str(),
                    format!(
                        "write Attribute:word[,word…] with one of {}",
                        SENDER_ATTRIBUTES.join(", ")
                    ),
                ));
            }
        }
        addresses(&f("sent_to"), &mut self.sent_to)?;
        addresses(&f("sent_to_member_of"), &mut self.sent_to_member_of)?;
        domains(&f("recipient_domain_is"), &mut self.recipient_domain_is)?;
        words(
            &f("recipient_address_contains_words"),
            &mut self.recipient_address_contains_words,
        )?;
        addresses(&f("any_of_to_cc_header"), &mut self.any_of_to_cc_header)?;
        words(
            &f("subject_contains_words"),
            &mut self.subject_contains_words,
        )?;
        words(
            &f("subject_or_body_contains_words"),
            &mut self.subject_or_body_contains_words,
        )?;
        words(
            &f("attachment_contains_words"),
            &mut self.attachment_contains_words,
        )?;
        words(
            &f("attachment_extension_matches_words"),
            &mut self.attachment_extension_matches_words,
        )?;
        for e in self.attachment_extension_matches_words.iter_mut() {
            *e = e.trim_start_matches('.').to_lowercase();
        }
        words(&f("header_contains_words"), &mut self.header_contains_words)?;
        match (
            &self.header_contains_message_header,
            self.header_contains_words.is_empty(),
        ) {
            (Some(name), false) => header_name(&f("header_contains_message_header"), name)?,
            (None, true) => {}
            (Some(_), true) => {
                return Err(RuleError::new(
                    &f("header_contains_words"),
                    "",
                    format!(
                        "give the words to look for in --{}",
                        f("header-contains-message-header")
                    ),
                ));
            }
            (None, false) => {
                return Err(RuleError::new(
                    &f("header_contains_message_header"),
                    "",
                    "name the header field --header-contains-words looks in",
                ));
            }
        }
        match (
            &self.header_matches_message_header,
            self.header_matches_patterns.is_empty(),
        ) {
            (Some(name), false) => header_name(&f("header_matches_message_header"), name)?,
            (None, true) => {}
            (Some(_), true) => {
                return Err(RuleError::new(
                    &f("header_matches_patterns"),
                    "",
                    "give the patterns to look for in the header field",
                ));
            }
            (None, false) => {
                return Err(RuleError::new(
                    &f("header_matches_message_header"),
                    "",
                    "name the header field --header-matches-patterns looks in",
                ));
            }
        }
        if let Some(v) = self.scl_over {
            scl(&f("scl_over"), v)?;
        }
        Ok(())
    }
}

impl Actions {
    /// Whether no action is given.
    pub fn is_empty(&self) -> bool {
        *self == Actions::default()
    }

    fn validate(&mut self) -> Result<(), RuleError> {
        if let Some(v) = self.set_scl {
            scl("set_scl", v)?;
        }
        if let Some(t) = &self.reject_message_reason_text {
            // It becomes the text of an SMTP reply (RFC 5321 §4.2): one line, no controls.
            if t.trim().is_empty() || has_control(t) || t.chars().count() > REJECT_TEXT_MAX_CHARS {
                return Err(RuleError::new(
                    "reject_message_reason_text",
                    t.as_str(),
                    format!("the text is 1 to {REJECT_TEXT_MAX_CHARS} characters on one line"),
                ));
            }
        }
        if let Some(c) = &self.reject_message_enhanced_status_code {
            if !valid_reject_code(c.trim()) {
                return Err(RuleError::new(
                    "reject_message_enhanced_status_code",
                    c.as_str(),
                    "the code is 5.7.1 or 5.7.900 to 5.7.999",
                ));
            }
            self.reject_message_enhanced_status_code = Some(c.trim().to_string());
        }
        addresses("redirect_message_to", &mut self.redirect_message_to)?;
        addresses("blind_copy_to", &mut self.blind_copy_to)?;
        addresses("add_to_recipients", &mut self.add_to_recipients)?;
        addresses("copy_to", &mut self.copy_to)?;
        if let Some(p) = &self.prepend_subject
            && (p.is_empty() || has_control(p) || p.chars().count() > 256)
        {
            return Err(RuleError::new(
                "prepend_subject",
                p.as_str(),
                "the text is 1 to 256 characters on one line",
            ));
        }
        match (&self.set_header_name, &self.set_header_value) {
            (Some(n), Some(v)) => {
                header_name("set_header_name", n)?;
                if has_control(v) || v.len() > 998 {
                    return Err(RuleError::new(
                        "set_header_value",
                        v.as_str(),
                        "the value is at most 998 bytes on one line (RFC 5322 §2.1.1)",
                    ));
                }
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(RuleError::new(
                    "set_header_value",
                    "",
                    "--set-header-name needs --set-header-value",
                ));
            }
            (None, Some(_)) => {
                return Err(RuleError::new(
                    "set_header_name",
                    "",
                    "--set-header-value needs --set-header-name",
                ));
            }
        }
        if let Some(n) = &self.remove_header {
            header_name("remove_header", n)?;
        }
        match &self.apply_html_disclaimer_text {
            Some(t) if t.trim().is_empty() || t.chars().count() > DISCLAIMER_MAX_CHARS => {
                return Err(RuleError::new(
                    "apply_html_disclaimer_text",
                    t.chars().take(40).collect::<String>(),
                    format!("the disclaimer is 1 to {DISCLAIMER_MAX_CHARS} characters"),
                ));
            }
            None if self.apply_html_disclaimer_location.is_some()
                || self.apply_html_disclaimer_fallback_action.is_some() =>
            {
                return Err(RuleError::new(
                    "apply_html_disclaimer_text",
                    "",
                    "the disclaimer's location and fallback action need its text",
                ));
            }
            _ => {}
        }
        if let Some(c) = &self.route_message_outbound_connector
            && (c.trim().is_empty() || has_control(c) || c.len() > 64)
        {
            return Err(RuleError::new(
                "route_message_outbound_connector",
                c.as_str(),
                "a connector's name is 1 to 64 characters",
            ));
        }
        if let Some(a) = self.generate_incident_report.as_mut() {
            let parsed = Address::parse(a.trim()).map_err(|e| {
                RuleError::new(
                    "generate_incident_report",
                    a.as_str(),
                    format!("not an address: {e}"),
                )
            })?;
            *a = parsed.to_string();
        }
        Ok(())
    }
}

/// A date property, normalised to RFC 3339.
fn date(field: &str, value: &mut Option<String>) -> Result<Option<Timestamp>, RuleError> {
    let Some(v) = value.as_ref() else {
        return Ok(None);
    };
    let t = Timestamp::parse_human(v).ok_or_else(|| {
        RuleError::new(
            field,
            v.as_str(),
            "give a date (2026-12-01), a time in UTC (2026-12-01 09:00) or RFC 3339",
        )
    })?;
    *value = Some(t.to_rfc3339());
    Ok(Some(t))
}

impl Rule {
    /// Checks the rule and puts its values in canonical form (addresses, domains, dates);
    /// compiles its patterns, so a rule that validates also compiles. The first problem is
    /// returned, naming the flag and the value.
    pub fn validate(&mut self) -> Result<(), RuleError> {
        let name = self.name.trim();
        if name.is_empty() || has_control(name) || name.chars().count() > NAME_MAX_CHARS {
            return Err(RuleError::new(
                "name",
                self.name.as_str(),
                format!("a rule's name is 1 to {NAME_MAX_CHARS} characters on one line"),
            ));
        }
        self.name = name.to_string();
        if self.comments.chars().count() > 1024 {
            return Err(RuleError::new("comments", "", "at most 1,024 characters"));
        }
        self.conditions.validate("")?;
        self.exceptions.validate("except_if_")?;
        self.actions.validate()?;
        if self.actions.is_empty() && !self.stop_rule_processing {
            return Err(RuleError::new(
                "actions",
                "",
                "a rule needs at least one action (or --stop-rule-processing)",
            ));
        }
        let from = date("activation_date", &mut self.activation_date)?;
        let until = date("expiry_date", &mut self.expiry_date)?;
        if let (Some(a), Some(e)) = (from, until)
            && e <= a
        {
            return Err(RuleError::new(
                "expiry_date",
                self.expiry_date.clone().unwrap_or_default(),
                "the expiry date is after the activation date",
            ));
        }
        let size = serde_json::to_vec(self).map(|v| v.len()).unwrap_or(0);
        if size > RULE_MAX_BYTES {
            return Err(RuleError::new(
                "name",
                self.name.as_str(),
                format!("the rule takes {size} bytes; a rule takes at most {RULE_MAX_BYTES}"),
            ));
        }
        eval::CompiledRule::compile(self.clone())?;
        Ok(())
    }

    /// The characters of all its patterns (counted against [`PATTERN_TEXT_MAX`] per tenant).
    pub fn pattern_chars(&self) -> usize {
        [&self.conditions, &self.exceptions]
            .iter()
            .flat_map(|c| {
                [
                    &c.from_address_matches_patterns,
                    &c.subject_matches_patterns,
                    &c.subject_or_body_matches_patterns,
                    &c.attachment_name_matches_patterns,
                    &c.header_matches_patterns,
                ]
            })
            .flat_map(|l| l.iter())
            .map(|p| p.chars().count())
            .sum()
    }
}

/// Checks a tenant's whole set of rules (an import, or the rules after a change): each rule,
/// unique names, at most [`RULES_MAX`] rules and [`PATTERN_TEXT_MAX`] characters of patterns.
pub fn validate_all(rules: &mut [Rule]) -> Result<(), RuleError> {
    if rules.len() > RULES_MAX {
        return Err(RuleError::new(
            "import",
            rules.len().to_string(),
            format!("a tenant has at most {RULES_MAX} rules"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut chars = 0;
    for r in rules.iter_mut() {
        r.validate().map_err(|mut e| {
            e.problem = format!("{} (rule {:?})", e.problem, r.name);
            e
        })?;
        if !names.insert(r.name.to_lowercase()) {
            return Err(RuleError::new(
                "name",
                r.name.as_str(),
                "two rules have this name",
            ));
        }
        chars += r.pattern_chars();
    }
    if chars > PATTERN_TEXT_MAX {
        return Err(RuleError::new(
            "patterns",
            chars.to_string(),
            format!("a tenant's rules hold at most {PATTERN_TEXT_MAX} characters of patterns"),
        ));
    }
    Ok(())
}

//! Evaluating a tenant's rules over a message, per recipient (reference §5.1).
//!
//! Rules run in priority order. For each rule, the conditions on the message (sender, subject,
//! attachments, …) are evaluated once; the conditions on recipients (`SentTo`, `SentToScope`,
//! `SentToMemberOf`, `RecipientDomainIs`, `RecipientAddressContainsWords`) for each recipient,
//! so a rule whose condition is on recipients applies to those recipients only (Exchange splits
//! the message). Conditions AND, values within one OR, exceptions OR. A recipient for whom a
//! rule stopped processing (`StopRuleProcessing`, or an action that ends it: reject, delete,
//! quarantine) sees no later rule.

use super::matcher::{CombinedWords, IpRange, Patterns, Scanned, Words};
use super::message::{MessageType, RuleMessage};
use super::{
    Actions, Conditions, DEFAULT_REJECT_CODE, DEFAULT_REJECT_TEXT, DisclaimerFallback,
    DisclaimerLocation, Mode, Rule, RuleError, RuleErrorAction, Scope, SenderAddressLocation,
    split_attribute,
};
use hato_core::{Reason, Stage, Timestamp};
use serde::Serialize;

/// What rules need of the directory; the integrator implements it over `hato-directory`.
pub trait RuleDirectory {
    /// `FromScope InOrganization`: the sender is a recipient of the tenant, or its domain is an
    /// accepted domain and the client authenticated (reference §5.3).
    fn sender_in_organization(&self, address: &str, authenticated: bool) -> bool;
    /// `SentToScope InOrganization`: the recipient is in the tenant (a mailbox, group, contact
    /// or an accepted domain's address).
    fn recipient_in_organization(&self, address: &str) -> bool;
    /// `address` is a member of the group `group` (nested membership counts).
    fn is_member_of(&self, address: &str, group: &str) -> bool;
    /// A directory attribute of the sender (`Department`, `City`, `CustomAttribute1`, …).
    fn attribute(&self, address: &str, attribute: &str) -> Option<String>;
}

/// A directory that knows nobody: everyone is outside, no one is a member, no attributes.
pub struct NoDirectory;

impl RuleDirectory for NoDirectory {
    fn sender_in_organization(&self, _: &str, _: bool) -> bool {
        false
    }
    fn recipient_in_organization(&self, _: &str) -> bool {
        false
    }
    fn is_member_of(&self, _: &str, _: &str) -> bool {
        false
    }
    fn attribute(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// An action of a matched rule, as delivery (the integrator) carries it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RuleAction {
    /// Refuse for this recipient: in the session when every recipient is refused, else an NDR.
    Reject {
        code: u16,
        enhanced_code: String,
        text: String,
    },
    /// Dropped silently, no NDR.
    Delete,
    /// To these addresses instead of the recipient.
    Redirect {
        to: Vec<String>,
    },
    BlindCopyTo {
        to: Vec<String>,
    },
    AddToRecipients {
        to: Vec<String>,
    },
    CopyTo {
        to: Vec<String>,
    },
    /// An input to the spam filter: −1 skips it.
    SetScl {
        scl: i8,
    },
    SetHeader {
        name: String,
        value: String,
    },
    RemoveHeader {
        name: String,
    },
    PrependSubject {
        text: String,
    },
    Disclaimer {
        text: String,
        location: DisclaimerLocation,
        fallback: DisclaimerFallback,
    },
    Quarantine,
    /// Recorded: the outbound issue routes by it.
    RouteOutboundConnector {
        connector: String,
    },
    /// An incident report to this address (runs in audit mode too).
    IncidentReport {
        to: String,
    },
    /// A rule in audit mode matched: what it would have done, without effect.
    Audited {
        actions: Vec<String>,
    },
}

impl RuleAction {
    /// The action's name, as Exchange's parameter in kebab case.
    pub fn name(&self) -> &'static str {
        match self {
            RuleAction::Reject { .. } => "reject-message",
            RuleAction::Delete => "delete-message",
            RuleAction::Redirect { .. } => "redirect-message-to",
            RuleAction::BlindCopyTo { .. } => "blind-copy-to",
            RuleAction::AddToRecipients { .. } => "add-to-recipients",
            RuleAction::CopyTo { .. } => "copy-to",
            RuleAction::SetScl { .. } => "set-scl",
            RuleAction::SetHeader { .. } => "set-header",
            RuleAction::RemoveHeader { .. } => "remove-header",
            RuleAction::PrependSubject { .. } => "prepend-subject",
            RuleAction::Disclaimer { .. } => "apply-html-disclaimer",
            RuleAction::Quarantine => "quarantine",
            RuleAction::RouteOutboundConnector { .. } => "route-message-outbound-connector",
            RuleAction::IncidentReport { .. } => "generate-incident-report",
            RuleAction::Audited { .. } => "audit",
        }
    }

    /// Whether it ends the evaluation of later rules (reference §5.1, §5.4).
    fn ends_processing(&self) -> bool {
        matches!(
            self,
            RuleAction::Reject { .. } | RuleAction::Delete | RuleAction::Quarantine
        )
    }
}

/// One action for one recipient, with its reason (stage `TransportRule`, the rule's name, the
/// figures: priority, mode, each condition that matched with the value that matched, the action).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleDecision {
    #[serde(flatten)]
    pub action: RuleAction,
    pub reason: Reason,
}

/// A rule that matched for a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    /// The store's id (for the hit counters); 0 for a rule not from the store.
    pub id: i64,
    pub rule: String,
    pub priority: u32,
    pub mode: Mode,
    /// The conditions that matched: (condition, the value that matched).
    pub matched: Vec<(String, String)>,
}

/// The rules that matched for one recipient, and what follows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecipientRules {
    pub recipient: String,
    pub hits: Vec<RuleHit>,
    pub decisions: Vec<RuleDecision>,
}

impl RecipientRules {
    /// The reject decision, if the recipient is rejected.
    pub fn rejection(&self) -> Option<&RuleDecision> {
        self.decisions
            .iter()
            .find(|d| matches!(d.action, RuleAction::Reject { .. }))
    }
}

/// What the rules decided for a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// In the order of [`RuleMessage::recipients`].
    pub recipients: Vec<RecipientRules>,
    /// A rule could not be evaluated and its `RuleErrorAction` is `Defer`: the message is
    /// deferred (a 4xx) rather than delivered without it.
    pub defer: Option<Reason>,
    /// Rules that could not be evaluated and were skipped (`RuleErrorAction Ignore`).
    pub skipped: Vec<Reason>,
    /// Bytes of text the matchers read: linear in the message (each text once per condition).
    pub scanned_bytes: u64,
}

impl Evaluation {
    /// The (rule id, hits) to add to the store's counters: a rule counts once per message
    /// however many recipients it matched.
    pub fn hit_counts(&self) -> Vec<(i64, u64)> {
        let mut ids: Vec<i64> = self
            .recipients
            .iter()
            .flat_map(|r| r.hits.iter().map(|h| h.id))
            .filter(|id| *id != 0)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| (id, 1)).collect()
    }
}

/// A condition set, compiled.
#[derive(Clone, Debug, Default)]
struct Compiled {
    from: Vec<String>,
    from_scope: Option<Scope>,
    from_member_of: Vec<String>,
    from_words: Option<Words>,
    from_patterns: Option<Patterns>,
    sender_domain_is: Vec<String>,
    ip_ranges: Vec<(IpRange, String)>,
    attributes: Vec<(&'static str, Words, String)>,
    sent_to: Vec<String>,
    sent_to_scope: Option<Scope>,
    sent_to_member_of: Vec<String>,
    recipient_domain_is: Vec<String>,
    recipient_words: Option<Words>,
    any_of_to_cc: Vec<String>,
    subject_words: Option<Words>,
    subject_patterns: Option<Patterns>,
    subject_or_body_words: Option<Words>,
    subject_or_body_patterns: Option<Patterns>,
    attachment_name_patterns: Option<Patterns>,
    attachment_extensions: Vec<String>,
    attachment_words: Option<Words>,
    attachment_executable: bool,
    attachment_password: bool,
    attachment_size_over: Option<u64>,
    message_size_over: Option<u64>,
    header_words: Option<(String, Words)>,
    header_patterns: Option<(String, Patterns)>,
    scl_over: Option<i8>,
    message_type: Option<MessageType>,
}

fn words(prefix: &str, field: &str, values: &[String]) -> Result<Option<Words>, RuleError> {
    Words::new(values).map_err(|e| RuleError::new(&format!("{prefix}{field}"), values.join(","), e))
}

fn patterns(prefix: &str, field: &str, values: &[String]) -> Result<Option<Patterns>, RuleError> {
    Patterns::new(values).map_err(|(v, e)| RuleError::new(&format!("{prefix}{field}"), v, e))
}

impl Compiled {
    fn new(c: &Conditions, prefix: &str) -> Result<Self, RuleError> {
        let mut attributes = Vec::new();
        for e in &c.sender_ad_attribute_contains_words {
            let (attr, ws) = split_attribute(e).ok_or_else(|| {
                RuleError::new(
                    &format!("{prefix}sender_ad_attribute_contains_words"),
                    e.as_str(),
                    "write Attribute:word[,word…]",
                )
            })?;
            let w = words(prefix, "sender_ad_attribute_contains_words", &ws)?;
            if let Some(w) = w {
                attributes.push((attr, w, e.clone()));
            }
        }
        let mut ip_ranges = Vec::new();
        for r in &c.sender_ip_ranges {
            let range = IpRange::parse(r)
                .map_err(|p| RuleError::new(&format!("{prefix}sender_ip_ranges"), r.as_str(), p))?;
            ip_ranges.push((range, r.clone()));
        }
        let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        Ok(Compiled {
            from: lower(&c.from),
            from_scope: c.from_scope,
            from_member_of: c.from_member_of.clone(),
            from_words: words(
                prefix,
                "from_address_contains_words",
                &c.from_address_contains_words,
            )?,
            from_patterns: patterns(
                prefix,
                "from_address_matches_patterns",
                &c.from_address_matches_patterns,
            )?,
            sender_domain_is: lower(&c.sender_domain_is),
            ip_ranges,
            attributes,
            sent_to: lower(&c.sent_to),
            sent_to_scope: c.sent_to_scope,
            sent_to_member_of: c.sent_to_member_of.clone(),
            recipient_domain_is: lower(&c.recipient_domain_is),
            recipient_words: words(
                prefix,
                "recipient_address_contains_words",
                &c.recipient_address_contains_words,
            )?,
            any_of_to_cc: lower(&c.any_of_to_cc_header),
            subject_words: words(prefix, "subject_contains_words", &c.subject_contains_words)?,
            subject_patterns: patterns(
                prefix,
                "subject_matches_patterns",
                &c.subject_matches_patterns,
            )?,
            subject_or_body_words: words(
                prefix,
                "subject_or_body_contains_words",
                &c.subject_or_body_contains_words,
            )?,
            subject_or_body_patterns: patterns(
                prefix,
                "subject_or_body_matches_patterns",
                &c.subject_or_body_matches_patterns,
            )?,
            attachment_name_patterns: patterns(
                prefix,
                "attachment_name_matches_patterns",
                &c.attachment_name_matches_patterns,
            )?,
            attachment_extensions: c
                .attachment_extension_matches_words
                .iter()
                .map(|e| e.trim_start_matches('.').to_lowercase())
                .collect(),
            attachment_words: words(
                prefix,
                "attachment_contains_words",
                &c.attachment_contains_words,
            )?,
            attachment_executable: c.attachment_has_executable_content,
            attachment_password: c.attachment_is_password_protected,
            attachment_size_over: c.attachment_size_over,
            message_size_over: c.message_size_over,
            header_words: match (
                &c.header_contains_message_header,
                words(prefix, "header_contains_words", &c.header_contains_words)?,
            ) {
                (Some(n), Some(w)) => Some((n.clone(), w)),
                _ => None,
            },
            header_patterns: match (
                &c.header_matches_message_header,
                patterns(
                    prefix,
                    "header_matches_patterns",
                    &c.header_matches_patterns,
                )?,
            ) {
                (Some(n), Some(p)) => Some((n.clone(), p)),
                _ => None,
            },
            scl_over: c.scl_over,
            message_type: c.message_type_matches,
        })
    }
}

/// Conditions (all must match: stops at the first that does not) or exceptions (any exempts:
/// stops at the first that matches), with the values that matched.
struct Tally {
    all: bool,
    decided: Option<bool>,
    hits: Vec<(String, String)>,
}

impl Tally {
    fn conditions() -> Self {
        Tally {
            all: true,
            decided: None,
            hits: Vec::new(),
        }
    }
    fn exceptions() -> Self {
        Tally {
            all: false,
            decided: None,
            hits: Vec::new(),
        }
    }

    /// Checks one present condition, unless the outcome is already known. `name`: whether it
    /// is an exception, and the condition's name; spelled out only for a hit (each message
    /// checks every rule's conditions, and most fail).
    fn check(&mut self, name: (bool, &'static str), f: impl FnOnce() -> Option<String>) {
        if self.decided.is_some() {
            return;
        }
        match f() {
            Some(v) => {
                self.hits.push((ext_prefix(name.0, name.1), v));
                if !self.all {
                    self.decided = Some(true);
                }
            }
            None => {
                if self.all {
                    self.decided = Some(false);
                }
            }
        }
    }

    /// For conditions: all matched (no condition: matches); for exceptions: one matched.
    fn outcome(&self) -> bool {
        if self.all {
            self.decided != Some(false)
        } else {
            self.decided == Some(true)
        }
    }
}

fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

fn ext_prefix(except: bool, name: &str) -> String {
    if except {
        format!("except-if-{name}")
    } else {
        name.to_string()
    }
}

impl Compiled {
    /// The conditions on the message (not on a recipient).
    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        t: &mut Tally,
        except: bool,
        m: &RuleMessage,
        senders: &[&str],
        dir: &dyn RuleDirectory,
        scanned: &Scanned<'_>,
    ) {
        // The condition's name is built only for a hit (`Tally::check`): most checks fail.
        let n = |name: &'static str| (except, name);
        // `SenderAddressLocation` applies to From, FromAddressContainsWords,
        // FromAddressMatchesPatterns, FromMemberOf and SenderDomainIs only (reference §5.2);
        // the scope and the directory attributes are the header sender's.
        let header_senders = &m.header_from;
        if !self.from.is_empty() {
            t.check(n("from"), || {
                senders
                    .iter()
                    .find(|s| self.from.iter().any(|f| f == *s))
                    .map(|s| s.to_string())
            });
        }
        if let Some(scope) = self.from_scope {
            t.check(n("from-scope"), || {
                let inside = header_senders
                    .iter()
                    .any(|s| dir.sender_in_organization(s, m.authenticated));
                let want = scope == Scope::InOrganization;
                (!header_senders.is_empty() && inside == want).then(|| {
                    if want {
                        "in-organization"
                    } else {
                        "not-in-organization"
                    }
                    .to_string()
                })
            });
        }
        if !self.from_member_of.is_empty() {
            t.check(n("from-member-of"), || {
                senders.iter().find_map(|s| {
                    self.from_member_of
                        .iter()
                        .find(|g| dir.is_member_of(s, g))
                        .cloned()
                })
            });
        }
        if let Some(w) = &self.from_words {
            t.check(n("from-address-contains-words"), || {
                senders
                    .iter()
                    .find_map(|s| w.find(s, scanned).map(str::to_string))
            });
        }
        if let Some(p) = &self.from_patterns {
            t.check(n("from-address-matches-patterns"), || {
                senders
                    .iter()
                    .find_map(|s| p.find(s, scanned).map(str::to_string))
            });
        }
        if !self.sender_domain_is.is_empty() {
            t.check(n("sender-domain-is"), || {
                senders
                    .iter()
                    .map(|s| domain(s))
                    .find(|d| self.sender_domain_is.iter().any(|x| x == d))
                    .map(str::to_string)
            });
        }
        if !self.ip_ranges.is_empty() {
            t.check(n("sender-ip-ranges"), || {
                let ip = m.client_ip?;
                self.ip_ranges
                    .iter()
                    .find(|(r, _)| r.contains(ip))
                    .map(|(_, text)| text.clone())
            });
        }
        if !self.attributes.is_empty() {
            t.check(n("sender-ad-attribute-contains-words"), || {
                header_senders.iter().find_map(|s| {
                    self.attributes.iter().find_map(|(attr, w, _)| {
                        let value = dir.attribute(s, attr)?;
                        w.find(&value, scanned).map(|word| format!("{attr}:{word}"))
                    })
                })
            });
        }
        if !self.any_of_to_cc.is_empty() {
            t.check(n("any-of-to-cc-header"), || {
                m.to_cc
                    .iter()
                    .find(|a| self.any_of_to_cc.iter().any(|x| x == *a))
                    .cloned()
            });
        }
        if let Some(w) = &self.subject_words {
            t.check(n("subject-contains-words"), || {
                w.find(&m.subject, scanned).map(str::to_string)
            });
        }
        if let Some(p) = &self.subject_patterns {
            t.check(n("subject-matches-patterns"), || {
                p.find(&m.subject, scanned).map(str::to_string)
            });
        }
        if let Some(w) = &self.subject_or_body_words {
            t.check(n("subject-or-body-contains-words"), || {
                w.find(&m.subject, scanned)
                    .or_else(|| w.find(&m.body_text, scanned))
                    .map(str::to_string)
            });
        }
        if let Some(p) = &self.subject_or_body_patterns {
            t.check(n("subject-or-body-matches-patterns"), || {
                p.find(&m.subject, scanned)
                    .or_else(|| p.find(&m.body_text, scanned))
                    .map(str::to_string)
            });
        }
        if let Some(p) = &self.attachment_name_patterns {
            t.check(n("attachment-name-matches-patterns"), || {
                m.attachments
                    .iter()
                    .find(|a| p.find(&a.name, scanned).is_some())
                    .map(|a| a.name.clone())
            });
        }
        if !self.attachment_extensions.is_empty() {
            t.check(n("attachment-extension-matches-words"), || {
                m.attachments
                    .iter()
                    .map(|a| a.extension())
                    .find(|e| self.attachment_extensions.contains(e))
            });
        }
        if let Some(w) = &self.attachment_words {
            t.check(n("attachment-contains-words"), || {
                m.attachments.iter().find_map(|a| {
                    w.find(&a.text, scanned)
                        .map(|word| format!("{}: {word}", a.name))
                })
            });
        }
        if self.attachment_executable {
            t.check(n("attachment-has-executable-content"), || {
                m.attachments
                    .iter()
                    .find(|a| a.executable)
                    .map(|a| a.name.clone())
            });
        }
        if self.attachment_password {
            t.check(n("attachment-is-password-protected"), || {
                m.attachments
                    .iter()
                    .find(|a| a.password_protected)
                    .map(|a| a.name.clone())
            });
        }
        if let Some(size) = self.attachment_size_over {
            t.check(n("attachment-size-over"), || {
                m.attachments
                    .iter()
                    .find(|a| a.size >= size)
                    .map(|a| a.size.to_string())
            });
        }
        if let Some(size) = self.message_size_over {
            t.check(n("message-size-over"), || {
                (m.size >= size).then(|| m.size.to_string())
            });
        }
        if let Some((name, w)) = &self.header_words {
            t.check(n("header-contains-words"), || {
                m.header_values(name)
                    .find_map(|v| w.find(v, scanned))
                    .map(|word| format!("{name}: {word}"))
            });
        }
        if let Some((name, p)) = &self.header_patterns {
            t.check(n("header-matches-patterns"), || {
                m.header_values(name)
                    .find_map(|v| p.find(v, scanned))
                    .map(|pat| format!("{name}: {pat}"))
            });
        }
        if let Some(scl) = self.scl_over {
            t.check(n("scl-over"), || {
                m.scl.filter(|s| *s >= scl).map(|s| s.to_string())
            });
        }
        if let Some(ty) = self.message_type {
            t.check(n("message-type-matches"), || {
                m.message_types.contains(&ty).then(|| {
                    serde_json::to_value(ty)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
            });
        }
    }

    /// The conditions on one recipient.
    fn recipient(
        &self,
        t: &mut Tally,
        except: bool,
        rcpt: &str,
        dir: &dyn RuleDirectory,
        scanned: &Scanned<'_>,
    ) {
        let n = |name: &'static str| (except, name);
        if !self.sent_to.is_empty() {
            t.check(n("sent-to"), || {
                self.sent_to
                    .iter()
                    .any(|a| a == rcpt)
                    .then(|| rcpt.to_string())
            });
        }
        if let Some(scope) = self.sent_to_scope {
            t.check(n("sent-to-scope"), || {
                let want = scope == Scope::InOrganization;
                (dir.recipient_in_organization(rcpt) == want).then(|| {
                    if want {
                        "in-organization"
                    } else {
                        "not-in-organization"
                    }
                    .to_string()
                })
            });
        }
        if !self.sent_to_member_of.is_empty() {
            t.check(n("sent-to-member-of"), || {
                self.sent_to_member_of
                    .iter()
                    .find(|g| dir.is_member_of(rcpt, g))
                    .cloned()
            });
        }
        if !self.recipient_domain_is.is_empty() {
            t.check(n("recipient-domain-is"), || {
                let d = domain(rcpt);
                self.recipient_domain_is
                    .iter()
                    .any(|x| x == d)
                    .then(|| d.to_string())
            });
        }
        if let Some(w) = &self.recipient_words {
            t.check(n("recipient-address-contains-words"), || {
                w.find(rcpt, scanned).map(str::to_string)
            });
        }
    }
}

/// A rule, compiled: its matchers built once.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    id: i64,
    rule: Rule,
    conditions: Compiled,
    exceptions: Compiled,
    activation: Option<Timestamp>,
    expiry: Option<Timestamp>,
}

impl CompiledRule {
    pub(crate) fn compile(rule: Rule) -> Result<Self, RuleError> {
        let conditions = Compiled::new(&rule.conditions, "")?;
        let exceptions = Compiled::new(&rule.exceptions, "except_if_")?;
        let parse = |d: &Option<String>| d.as_deref().and_then(Timestamp::parse_human);
        Ok(CompiledRule {
            id: 0,
            activation: parse(&rule.activation_date),
            expiry: parse(&rule.expiry_date),
            rule,
            conditions,
            exceptions,
        })
    }

    /// In force at `now`: enabled, activated, not expired.
    fn active(&self, now: Timestamp) -> bool {
        self.rule.enabled
            && self.activation.is_none_or(|a| now >= a)
            && self.expiry.is_none_or(|e| now < e)
    }
}

/// A rule that could not be compiled (stored before a limit was lowered, or corrupt).
#[derive(Clone, Debug)]
struct Broken {
    rule: Rule,
    error: String,
}

#[derive(Clone, Debug)]
enum Entry {
    Ok(Box<CompiledRule>),
    Broken(Box<Broken>),
}

/// A tenant's rules, compiled and in priority order.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Entry>,
    /// The words conditions over the subject, body and attachment texts, searched together.
    combined: Option<CombinedWords>,
    /// [`RuleSet::passes_per_text`], counted once: the SMTP path asks it for every message.
    passes: usize,
}

/// The actions of a rule as decisions, in Exchange's order of the parameter list.
fn actions_of(a: &Actions) -> Vec<RuleAction> {
    let mut out = Vec::new();
    if a.reject_message_reason_text.is_some() || a.reject_message_enhanced_status_code.is_some() {
        out.push(RuleAction::Reject {
            code: 550,
            enhanced_code: a
                .reject_message_enhanced_status_code
                .clone()
                .unwrap_or_else(|| DEFAULT_REJECT_CODE.to_string()),
            text: a
                .reject_message_reason_text
                .clone()
                .unwrap_or_else(|| DEFAULT_REJECT_TEXT.to_string()),
        });
    }
    if a.delete_message {
        out.push(RuleAction::Delete);
    }
    if a.quarantine {
        out.push(RuleAction::Quarantine);
    }
    if !a.redirect_message_to.is_empty() {
        out.push(RuleAction::Redirect {
            to: a.redirect_message_to.clone(),
        });
    }
    if !a.blind_copy_to.is_empty() {
        out.push(RuleAction::BlindCopyTo {
            to: a.blind_copy_to.clone(),
        });
    }
    if !a.add_to_recipients.is_empty() {
        out.push(RuleAction::AddToRecipients {
            to: a.add_to_recipients.clone(),
        });
    }
    if !a.copy_to.is_empty() {
        out.push(RuleAction::CopyTo {
            to: a.copy_to.clone(),
        });
    }
    if let Some(scl) = a.set_scl {
        out.push(RuleAction::SetScl { scl });
    }
    if let (Some(name), Some(value)) = (&a.set_header_name, &a.set_header_value) {
        out.push(RuleAction::SetHeader {
            name: name.clone(),
            value: value.clone(),
        });
    }
    if let Some(name) = &a.remove_header {
        out.push(RuleAction::RemoveHeader { name: name.clone() });
    }
    if let Some(text) = &a.prepend_subject {
        out.push(RuleAction::PrependSubject { text: text.clone() });
    }
    if let Some(text) = &a.apply_html_disclaimer_text {
        out.push(RuleAction::Disclaimer {
            text: text.clone(),
            location: a.apply_html_disclaimer_location.unwrap_or_default(),
            fallback: a.apply_html_disclaimer_fallback_action.unwrap_or_default(),
        });
    }
    if let Some(c) = &a.route_message_outbound_connector {
        out.push(RuleAction::RouteOutboundConnector {
            connector: c.clone(),
        });
    }
    if let Some(to) = &a.generate_incident_report {
        out.push(RuleAction::IncidentReport { to: to.clone() });
    }
    out
}

impl RuleSet {
    /// Compiles rules (checked already, or not: the first that does not compile is the error).
    pub fn compile(rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for r in rules {
            compiled.push(CompiledRule::compile(r)?);
        }
        compiled.sort_by_key(|c| c.rule.priority);
        Ok(RuleSet::new(
            compiled
                .into_iter()
                .map(|c| Entry::Ok(Box::new(c)))
                .collect(),
        ))
    }

    /// Compiles a tenant's stored rules (store id, rule). A rule that does not compile is kept
    /// as broken: evaluation skips it (`RuleErrorAction Ignore`) or defers the message (`Defer`).
    pub fn from_stored(rules: Vec<(i64, Rule)>) -> RuleSet {
        let mut entries: Vec<(u32, Entry)> = rules
            .into_iter()
            .map(|(id, rule)| {
                let priority = rule.priority;
                let entry = match CompiledRule::compile(rule.clone()) {
                    Ok(mut c) => {
                        c.id = id;
                        Entry::Ok(Box::new(c))
                    }
                    Err(e) => Entry::Broken(Box::new(Broken {
                        rule,
                        error: e.to_string(),
                    })),
                };
                (priority, entry)
            })
            .collect();
        entries.sort_by_key(|(p, _)| *p);
        RuleSet::new(entries.into_iter().map(|(_, e)| e).collect())
    }

    /// The set of `rules` in order, with their words conditions over the message's big texts
    /// in one automaton.
    fn new(mut rules: Vec<Entry>) -> RuleSet {
        let words = rules.iter_mut().flat_map(|e| match e {
            Entry::Ok(rule) => {
                let CompiledRule {
                    conditions,
                    exceptions,
                    ..
                } = &mut **rule;
                vec![conditions, exceptions]
            }
            Entry::Broken(_) => Vec::new(),
        });
        let words = words.flat_map(|c| {
            [
                c.subject_words.as_mut(),
                c.subject_or_body_words.as_mut(),
                c.attachment_words.as_mut(),
            ]
            .into_iter()
            .flatten()
        });
        let combined = CombinedWords::build(words);
        let mut set = RuleSet {
            rules,
            combined,
            passes: 0,
        };
        set.passes = set.count_passes();
        set
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// How many times, at most, evaluating these rules reads one text of a message: the
    /// combined words search, and each pattern or words condition that searches alone. (Times
    /// the message's size, a bound on the bytes one evaluation searches.)
    pub fn passes_per_text(&self) -> usize {
        self.passes
    }

    fn count_passes(&self) -> usize {
        let alone = |c: &Compiled| {
            let patterns = [
                &c.from_patterns,
                &c.subject_patterns,
                &c.subject_or_body_patterns,
                &c.attachment_name_patterns,
            ]
            .into_iter()
            .filter(|p| p.is_some())
            .count()
                + usize::from(c.header_patterns.is_some());
            let words = [
                &c.from_words,
                &c.recipient_words,
                &c.subject_words,
                &c.subject_or_body_words,
                &c.attachment_words,
            ]
            .into_iter()
            .flatten()
            .filter(|w| !w.combined())
            .count()
                + usize::from(c.header_words.is_some())
                + c.attributes.len();
            patterns + words
        };
        usize::from(self.combined.is_some())
            + self
                .rules
                .iter()
                .map(|e| match e {
                    Entry::Ok(r) => alone(&r.conditions) + alone(&r.exceptions),
                    Entry::Broken(_) => 0,
                })
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates the rules in force at `now` over `m`, for each of its recipients. Pure: reads
    /// only its arguments.
    pub fn evaluate(&self, m: &RuleMessage, dir: &dyn RuleDirectory, now: Timestamp) -> Evaluation {
        // The texts the words conditions of many rules read, each searched once for all.
        let mut texts: Vec<&str> = vec![&m.subject, &m.body_text];
        texts.extend(m.attachments.iter().map(|a| a.text.as_str()));
        let scanned = Scanned::with_combined(self.combined.as_ref(), &texts);
        let recipients: Vec<String> = m.recipients.iter().map(|r| r.to_lowercase()).collect();
        let mut out = Evaluation {
            recipients: recipients
                .iter()
                .map(|r| RecipientRules {
                    recipient: r.clone(),
                    ..RecipientRules::default()
                })
                .collect(),
            ..Evaluation::default()
        };
        let mut stopped = vec![false; recipients.len()];
        // The senders each `SenderAddressLocation` reads, lower case, once per message (not
        // once per rule): the header's From addresses, then the envelope's.
        let header_from: Vec<String> = m.header_from.iter().map(|s| s.to_lowercase()).collect();
        let envelope_from: Option<String> = m.envelope_from.as_ref().map(|s| s.to_lowercase());
        let both: Vec<&str> = header_from
            .iter()
            .chain(envelope_from.iter())
            .map(String::as_str)
            .collect();
        for entry in &self.rules {
            if stopped.iter().all(|s| *s) {
                break;
            }
            let rule = match entry {
                Entry::Ok(rule) => rule,
                Entry::Broken(b) => {
                    if !b.rule.enabled {
                        continue;
                    }
                    let reason = Reason::new(
                        Stage::TransportRule,
                        format!("Transport rule {:?} could not be evaluated", b.rule.name),
                    )
                    .rule(b.rule.name.as_str())
                    .figure("error", b.error.as_str());
                    match b.rule.rule_error_action {
                        RuleErrorAction::Ignore => out.skipped.push(reason),
                        RuleErrorAction::Defer => {
                            out.defer.get_or_insert(reason);
                        }
                    }
                    continue;
                }
            };
            if !rule.active(now) {
                continue;
            }
            let r = &rule.rule;
            let senders: &[&str] = match r.sender_address_location {
                SenderAddressLocation::Header => &both[..header_from.len()],
                SenderAddressLocation::Envelope => &both[header_from.len()..],
                SenderAddressLocation::HeaderOrEnvelope => &both,
            };
            // The message's part of the conditions and exceptions, once per rule.
            let mut conds = Tally::conditions();
            rule.conditions
                .message(&mut conds, false, m, senders, dir, &scanned);
            if !conds.outcome() {
                continue;
            }
            let mut excepts = Tally::exceptions();
            rule.exceptions
                .message(&mut excepts, true, m, senders, dir, &scanned);
            if excepts.outcome() {
                continue;
            }
            let actions = actions_of(&r.actions);
            for (i, rcpt) in recipients.iter().enumerate() {
                if stopped[i] {
                    continue;
                }
                let mut c = Tally {
                    all: true,
                    decided: None,
                    hits: conds.hits.clone(),
                };
                rule.conditions
                    .recipient(&mut c, false, rcpt, dir, &scanned);
                if !c.outcome() {
                    continue;
                }
                let mut e = Tally::exceptions();
                rule.exceptions.recipient(&mut e, true, rcpt, dir, &scanned);
                if e.outcome() {
                    continue;
                }
                let slot = &mut out.recipients[i];
                slot.hits.push(RuleHit {
                    id: rule.id,
                    rule: r.name.clone(),
                    priority: r.priority,
                    mode: r.mode,
                    matched: c.hits.clone(),
                });
                let reason = |text: String, action: &str| {
                    let mut reason = Reason::new(Stage::TransportRule, text)
                        .rule(r.name.as_str())
                        .figure("priority", r.priority)
                        .figure(
                            "mode",
                            match r.mode {
                                Mode::Enforce => "enforce",
                                Mode::Audit => "audit",
                                Mode::AuditAndNotify => "audit-and-notify",
                            },
                        );
                    for (cond, value) in &c.hits {
                        reason = reason.figure(cond.as_str(), value.as_str());
                    }
                    reason.figure("action", action)
                };
                match r.mode {
                    Mode::Enforce => {
                        for a in &actions {
                            slot.decisions.push(RuleDecision {
                                reason: reason(
                                    format!("Transport rule {:?} matched: {}", r.name, a.name()),
                                    a.name(),
                                ),
                                action: a.clone(),
                            });
                        }
                        if r.stop_rule_processing || actions.iter().any(RuleAction::ends_processing)
                        {
                            stopped[i] = true;
                        }
                    }
                    Mode::Audit | Mode::AuditAndNotify => {
                        // Audit: recorded, without effect; only the incident report runs
                        // (reference §5.2). Stop-processing still applies, as in Exchange's
                        // test modes.
                        let would: Vec<String> =
                            actions.iter().map(|a| a.name().to_string()).collect();
                        slot.decisions.push(RuleDecision {
                            reason: reason(
                                format!(
                                    "Transport rule {:?} matched in audit mode; would: {}",
                                    r.name,
                                    would.join(", ")
                                ),
                                "audit",
                            ),
                            action: RuleAction::Audited { actions: would },
                        });
                        for a in actions
                            .iter()
                            .filter(|a| matches!(a, RuleAction::IncidentReport { .. }))
                        {
                            slot.decisions.push(RuleDecision {
                                reason: reason(
                                    format!("Transport rule {:?} matched: {}", r.name, a.name()),
                                    a.name(),
                                ),
                                action: a.clone(),
                            });
                        }
                        if r.stop_rule_processing {
                            stopped[i] = true;
                        }
                    }
                }
            }
        }
        out.scanned_bytes = scanned.get();
        out
    }
}

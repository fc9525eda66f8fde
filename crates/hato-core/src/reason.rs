//! Why a stage decided what it decided (architecture decision 3: a decision explains itself).
//!
//! Every stage that accepts, refuses, fails, defers or marks a message says which stage it is,
//! which rule or list decided (when one did), a sentence for people, and the figures that led
//! to it (`size`, `limit`, `scl`, …). The reasons go to message trace (as data, not text parsed
//! back), and later to the antispam report header and `hato explain`.

use crate::reply::Reply;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The stage that decided. Names are stable: they are stored in trace events (as JSON) and
/// shown by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The SMTP session itself: protocol rules (RFC 5321), limits, timeouts.
    Session,
    /// The recipient decision over the directory (accepted domains, mailboxes, groups, relay).
    Recipient,
    /// A group's sender restrictions (RequireSenderAuthenticationEnabled,
    /// AcceptMessagesOnlyFrom, RejectMessagesFrom).
    GroupRestriction,
    /// A moderated group's hold, approval, rejection or expiry.
    Moderation,
    /// Delivery into a mailbox (quota, folder) or to a route.
    Delivery,
    /// The queue: retries, processing failures, expiry.
    Queue,
    /// The tenant's connection filter policy (IP allow and block lists).
    ConnectionFilter,
    /// The provider's own block list.
    ProviderBlockList,
    /// DNS block lists (Spamhaus-style).
    DnsBlockList,
    /// IP throttling by volume and reputation.
    Throttling,
    /// A client that talked before the banner (Postfix postscreen's pregreet test).
    EarlyTalker,
    /// A HELO/EHLO name claiming to be this server.
    Helo,
    /// The client's name by reverse DNS, forward-confirmed: not a refusal, a note when the
    /// lookup failed or the name did not resolve back to the client.
    ReverseDns,
    /// The malware filter.
    Malware,
    /// Mail flow (transport) rules.
    TransportRule,
    /// The spam filter (SCL and verdicts).
    Spam,
    /// Sender authentication: SPF, DKIM, DMARC, ARC (RFC 7208, 6376, 7489, 8617), and spoofing
    /// of the tenant's own domains.
    SenderAuthentication,
    /// Inbound connectors: tenant attribution and relay, partner connectors' TLS and IP
    /// restrictions, the organisation's RejectDirectSend.
    Connector,
}

impl Stage {
    pub const ALL: [Stage; 18] = [
        Stage::Session,
        Stage::Recipient,
        Stage::GroupRestriction,
        Stage::Moderation,
        Stage::Delivery,
        Stage::Queue,
        Stage::ConnectionFilter,
        Stage::ProviderBlockList,
        Stage::DnsBlockList,
        Stage::Throttling,
        Stage::EarlyTalker,
        Stage::Helo,
        Stage::ReverseDns,
        Stage::Malware,
        Stage::TransportRule,
        Stage::Spam,
        Stage::SenderAuthentication,
        Stage::Connector,
    ];

    /// The name stored and shown (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Session => "session",
            Stage::Recipient => "recipient",
            Stage::GroupRestriction => "group_restriction",
            Stage::Moderation => "moderation",
            Stage::Delivery => "delivery",
            Stage::Queue => "queue",
            Stage::ConnectionFilter => "connection_filter",
            Stage::ProviderBlockList => "provider_block_list",
            Stage::DnsBlockList => "dns_block_list",
            Stage::Throttling => "throttling",
            Stage::EarlyTalker => "early_talker",
            Stage::Helo => "helo",
            Stage::ReverseDns => "reverse_dns",
            Stage::Malware => "malware",
            Stage::TransportRule => "transport_rule",
            Stage::Spam => "spam",
            Stage::SenderAuthentication => "sender_authentication",
            Stage::Connector => "connector",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One figure's value: a whole number (bytes, counts, an SCL) or a piece of text (a time, an
/// address, a score written as a decimal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FigureValue {
    Integer(i64),
    Text(String),
}

impl fmt::Display for FigureValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FigureValue::Integer(n) => write!(f, "{n}"),
            FigureValue::Text(s) => f.write_str(s),
        }
    }
}

impl From<i64> for FigureValue {
    fn from(n: i64) -> Self {
        FigureValue::Integer(n)
    }
}

impl From<i32> for FigureValue {
    fn from(n: i32) -> Self {
        FigureValue::Integer(n.into())
    }
}

impl From<u32> for FigureValue {
    fn from(n: u32) -> Self {
        FigureValue::Integer(n.into())
    }
}

impl From<u64> for FigureValue {
    /// Beyond `i64::MAX` (never a size or a count hato meets) the value is kept as text.
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| FigureValue::Text(n.to_string()), FigureValue::Integer)
    }
}

impl From<usize> for FigureValue {
    fn from(n: usize) -> Self {
        (n as u64).into()
    }
}

impl From<&str> for FigureValue {
    fn from(s: &str) -> Self {
        FigureValue::Text(s.to_string())
    }
}

impl From<String> for FigureValue {
    fn from(s: String) -> Self {
        FigureValue::Text(s)
    }
}

/// One named figure of a reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: FigureValue,
}

/// Why a stage decided: the stage, the rule or list that decided (if one did), a sentence for
/// people, and the figures, in the order the stage gives them (a JSON array keeps it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub stage: Stage,
    /// The rule, list or setting that decided: a group's address, a transport rule's name,
    /// `smtp.postmaster`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A sentence for people.
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
}

impl Reason {
    pub fn new(stage: Stage, text: impl Into<String>) -> Self {
        Reason {
            stage,
            rule: None,
            text: text.into(),
            figures: Vec::new(),
        }
    }

    /// The rule or list that decided.
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Adds a figure after those already there.
    pub fn figure(mut self, name: impl Into<String>, value: impl Into<FigureValue>) -> Self {
        self.figures.push(Figure {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The value of the figure called `name`, if there is one.
    pub fn figure_value(&self, name: &str) -> Option<&FigureValue> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }

    /// The reason as stored in a trace event.
    pub fn to_json(&self) -> String {
        // Serializing this struct cannot fail: only strings, integers and sequences of them.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored reason; `None` when the text is not one (a row written by a newer or broken
    /// writer): the event is still shown, without its reason.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl fmt::Display for Reason {
    /// `stage [rule]: text (name=value, …)`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.stage)?;
        if let Some(rule) = &self.rule {
            write!(f, " [{rule}]")?;
        }
        write!(f, ": {}", self.text)?;
        if !self.figures.is_empty() {
            let figures: Vec<String> = self
                .figures
                .iter()
                .map(|fig| format!("{}={}", fig.name, fig.value))
                .collect();
            write!(f, " ({})", figures.join(", "))?;
        }
        Ok(())
    }
}

/// A stage's decision: its verdict with the reasons for it. The verdict type is the stage's own
/// (accept or refuse at a hook, an SCL and action for spam, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reasoned<V> {
    pub verdict: V,
    pub reasons: Vec<Reason>,
}

impl<V> Reasoned<V> {
    /// A verdict without reasons: nothing in particular decided it (a default).
    pub fn plain(verdict: V) -> Self {
        Reasoned {
            verdict,
            reasons: Vec::new(),
        }
    }

    pub fn because(verdict: V, reason: Reason) -> Self {
        Reasoned {
            verdict,
            reasons: vec![reason],
        }
    }
}

/// A refusal or failure: the reply the client or the NDR gets, and why, for trace and logs. The
/// reply is what the sender may learn; the reason may say more (figures, rule names) for admins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reply: Reply,
    /// Boxed: a refusal travels in `Result`s and verdicts that are mostly acceptances.
    pub reason: Box<Reason>,
}

impl Refusal {
    pub fn new(reply: Reply, reason: Reason) -> Self {
        Refusal {
            reply,
            reason: Box::new(reason),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reply, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_survives_json_with_its_figures_in_order() {
        let r = Reason::new(Stage::Delivery, "The mailbox is full")
            .rule("quota")
            .figure("size", 2048u64)
            .figure("used", 1_000_000i64)
            .figure("limit", 1_000_500usize)
            .figure("folder", "Inbox");
        let json = r.to_json();
        assert_eq!(
            json,
            r#"{"stage":"delivery","rule":"quota","text":"The mailbox is full","figures":[{"name":"size","value":2048},{"name":"used","value":1000000},{"name":"limit","value":1000500},{"name":"folder","value":"Inbox"}]}"#
        );
        assert_eq!(Reason::from_json(&json), Some(r.clone()));
        assert_eq!(
            r.figure_value("limit"),
            Some(&FigureValue::Integer(1_000_500))
        );
        assert_eq!(
            r.to_string(),
            "delivery [quota]: The mailbox is full (size=2048, used=1000000, limit=1000500, folder=Inbox)"
        );
        // Without a rule or figures, neither is written, and both read back as absent.
        let bare = Reason::new(Stage::Spam, "SCL 1");
        assert_eq!(bare.to_json(), r#"{"stage":"spam","text":"SCL 1"}"#);
        assert_eq!(Reason::from_json(&bare.to_json()), Some(bare));
        assert_eq!(Reason::from_json("not json"), None);
    }

    #[test]
    fn every_stage_has_its_stored_name() {
        for s in Stage::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), s);
        }
        // A u64 too large for JSON's integers is kept as text rather than wrapped.
        assert_eq!(
            FigureValue::from(u64::MAX),
            FigureValue::Text(u64::MAX.to_string())
        );
    }
}
